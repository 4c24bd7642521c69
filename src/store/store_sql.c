/*
 * store_sql: the tracking store's SQL, once for every backend, over the
 * driver interface of store_sql.h.  See store.h for the contract.
 *
 * Schemas.  Each dialect keeps the schema its backend always had, so a
 * store written by an earlier version opens (and is upgraded in place):
 * - SQLite (sizes for issue 5's "<= 400 bytes per tracked recipient"):
 *   msg has an integer key (rowid alias), so rcpt rows and the indexes
 *   carry a 1-4 byte varint instead of the queue id; rcpt is WITHOUT
 *   ROWID, clustered on (msg, idx); the envid is indexed through a 47-bit
 *   hash of it (envid_h, 6 bytes) rather than a second copy; msg_expires
 *   is partial on queued = 0, exactly the rows purge() may delete;
 *   final_rcpt equal to orcpt (the usual case) is stored as the integer
 *   1 (no payload), which the SELECTs turn back into orcpt.  The version
 *   is PRAGMA user_version.
 * - PostgreSQL: every string but the queue id is bytea (store.h strings
 *   are bytes: a text column would refuse bytes invalid in the database
 *   encoding and wedge the queue's retries); search() compares keys
 *   computed here (sender_key, orcpt_key, final_key: ASCII lower case,
 *   address part only), so it does not depend on the server's locale;
 *   recipients go with their message (ON DELETE CASCADE).  The version
 *   is in msgtrk_schema.
 * Version 2 added the mark table and the msg_envid_cert index on (envid,
 * certifier) that lookup() probes (it replaces msg_envid: its prefix
 * serves search() by envid).  Version 3 added the sent table: one row per
 * message submitted with automatic tracking (the login, the secret
 * msgtrkd made, the Subject), keyed by the message's id and deleted with
 * it, indexed by (login, submitted) for list_sent().
 *
 * Statements are named-parameter SQL; store_sql.c binds every value each
 * statement may want (the envid hash, the search keys) and each dialect's
 * text uses those its schema has.  Statements are prepared on first use
 * and kept.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "msgtrk/str.h"
#include "store/store.h"
#include "store/store_sql.h"

/* The schema version this code writes (SQLite's user_version, the
 * PostgreSQL msgtrk_schema row). */
#define SX_SCHEMA 3
/* Messages deleted per purge transaction when purge() runs on its own,
 * so a writer on another handle never waits long for the lock. */
#define SX_PURGE_CHUNK 512
/* 47 bits: the largest positive integer SQLite stores in 6 bytes. */
#define SX_ENVID_HASH_MASK 0x7fffffffffffULL

/* Statements. */
enum sx_stmt {
	SX_MSG_UPSERT,
	SX_RCPT_TRIM,
	SX_RCPT_UPSERT,
	SX_RCPT_PUT,
	SX_SET_DONE,
	SX_MARK_SET,
	SX_MARK_GET,
	SX_LOOKUP,
	SX_PURGE,
	SX_PURGE_RCPT,
	SX_SENT_UPSERT,
	SX_SENT_LIST,
	SX_PURGE_SENT,
	SX_COUNT
};

/* search(): one statement per combination of filters, prepared on first
 * use and kept. */
enum {
	SX_F_ENVID = 1 << 0,
	SX_F_SENDER = 1 << 1,
	SX_F_RCPT = 1 << 2,
	SX_F_SINCE = 1 << 3,
	SX_F_ACTION = 1 << 4,
	SX_F_VARIANTS = 1 << 5
};

/* Column positions of the rows lookup() and search() read: the message,
 * then its recipient from MC_COUNT on. */
enum {
	MC_ID,
	MC_QID,
	MC_ENVID,
	MC_CERT,
	MC_SENDER,
	MC_RMTA,
	MC_ARRIVAL,
	MC_EXPIRES,
	MC_QUEUED,
	MC_COUNT
};
enum {
	RC_IDX,
	RC_ORCPT,
	RC_FINAL,
	RC_ACTION,
	RC_STATUS,
	RC_RMTA,
	RC_LAST,
	RC_WRU,
	RC_REPLY,
	RC_COUNT
};
/* list_sent(): the sent row's columns after the recipient's. */
enum { SC_LOGIN = MC_COUNT + RC_COUNT, SC_SECRET, SC_SUBJECT };

#define SX_MSG_COLS \
	"m.id, m.qid, m.envid, m.certifier, m.sender, m.reporting_mta," \
	" m.arrival, m.expires, m.queued"
/* SQLite: final_rcpt 1 means "same as orcpt". */
#define SX_RCPT_COLS_SQLITE \
	"r.idx, r.orcpt," \
	" CASE WHEN typeof(r.final_rcpt) = 'integer' THEN r.orcpt" \
	" ELSE r.final_rcpt END," \
	" r.action, r.status, r.remote_mta, r.last_attempt, r.will_retry," \
	" r.reply"
#define SX_RCPT_COLS_PG \
	"r.idx, r.orcpt, r.final_rcpt, r.action, r.status, r.remote_mta," \
	" r.last_attempt, r.will_retry, r.reply"

#define SX_MSG_SET \
	" envid = excluded.envid, certifier = excluded.certifier," \
	" sender = excluded.sender, reporting_mta = excluded.reporting_mta," \
	" arrival = excluded.arrival, expires = excluded.expires," \
	" queued = excluded.queued"
#define SX_RCPT_SET \
	" orcpt = excluded.orcpt, final_rcpt = excluded.final_rcpt," \
	" action = excluded.action, status = excluded.status," \
	" remote_mta = excluded.remote_mta," \
	" last_attempt = excluded.last_attempt," \
	" will_retry = excluded.will_retry, reply = excluded.reply"
/* The recipient columns written, and their values. */
#define SX_RCPT_INS_SQLITE \
	"idx, orcpt, final_rcpt, action, status, remote_mta, last_attempt," \
	" will_retry, reply"
#define SX_RCPT_VAL_SQLITE \
	":idx, :orcpt, CASE WHEN :final = :orcpt THEN 1 ELSE :final END," \
	" :action, :status, :rmta, :last, :wru, :reply"
#define SX_RCPT_INS_PG \
	"idx, orcpt, orcpt_key, final_rcpt, final_key, action, status," \
	" remote_mta, last_attempt, will_retry, reply"
#define SX_RCPT_VAL_PG \
	":idx, :orcpt, :orcpt_key, :final, :final_key, :action, :status," \
	" :rmta, :last, :wru, :reply"
#define SX_RCPT_SET_PG \
	SX_RCPT_SET ", orcpt_key = excluded.orcpt_key," \
	            " final_key = excluded.final_key"

#define SX_BOTH(sql) \
	{ \
		[SQL_DIALECT_SQLITE] = (sql), [SQL_DIALECT_PG] = (sql) \
	}

static const char *const sx_sql[SX_COUNT][SQL_DIALECTS] = {
	[SX_MSG_UPSERT] = {
	    [SQL_DIALECT_SQLITE] =
	        "INSERT INTO msg (qid, envid, envid_h, certifier, sender,"
	        " reporting_mta, arrival, expires, queued)"
	        " VALUES (:qid, :envid, :envid_h, :cert, :sender, :rmta,"
	        " :arrival, :expires, :queued)"
	        " ON CONFLICT (qid) DO UPDATE SET" SX_MSG_SET
	        ", envid_h = excluded.envid_h RETURNING id",
	    [SQL_DIALECT_PG] =
	        "INSERT INTO msg (qid, envid, certifier, sender, sender_key,"
	        " reporting_mta, arrival, expires, queued)"
	        " VALUES (:qid, :envid, :cert, :sender, :sender_key, :rmta,"
	        " :arrival, :expires, :queued)"
	        " ON CONFLICT (qid) DO UPDATE SET" SX_MSG_SET
	        ", sender_key = excluded.sender_key RETURNING id",
	},
	[SX_RCPT_TRIM] =
	    SX_BOTH("DELETE FROM rcpt WHERE msg = :msg AND idx >= :n"),
	[SX_RCPT_UPSERT] = {
	    [SQL_DIALECT_SQLITE] =
	        "INSERT INTO rcpt (msg, " SX_RCPT_INS_SQLITE ")"
	        " VALUES (:msg, " SX_RCPT_VAL_SQLITE ")"
	        " ON CONFLICT (msg, idx) DO UPDATE SET" SX_RCPT_SET,
	    [SQL_DIALECT_PG] =
	        "INSERT INTO rcpt (msg, " SX_RCPT_INS_PG ")"
	        " VALUES (:msg, " SX_RCPT_VAL_PG ")"
	        " ON CONFLICT (msg, idx) DO UPDATE SET" SX_RCPT_SET_PG,
	},
	/* The message's id from its qid in the same statement: nothing is
	 * written when the message is unknown. */
	[SX_RCPT_PUT] = {
	    [SQL_DIALECT_SQLITE] =
	        "INSERT INTO rcpt (msg, " SX_RCPT_INS_SQLITE ")"
	        " SELECT id, " SX_RCPT_VAL_SQLITE " FROM msg WHERE qid = :qid"
	        " ON CONFLICT (msg, idx) DO UPDATE SET" SX_RCPT_SET,
	    [SQL_DIALECT_PG] =
	        "INSERT INTO rcpt (msg, " SX_RCPT_INS_PG ")"
	        " SELECT id, " SX_RCPT_VAL_PG " FROM msg WHERE qid = :qid"
	        " ON CONFLICT (msg, idx) DO UPDATE SET" SX_RCPT_SET_PG,
	},
	[SX_SET_DONE] =
	    SX_BOTH("UPDATE msg SET queued = false WHERE qid = :qid"),
	[SX_MARK_SET] = SX_BOTH(
	    "INSERT INTO mark (journal, pos_seg, pos_off)"
	    " VALUES (:journal, :seg, :off)"
	    " ON CONFLICT (journal) DO UPDATE SET pos_seg = excluded.pos_seg,"
	    " pos_off = excluded.pos_off"),
	[SX_MARK_GET] = SX_BOTH(
	    "SELECT pos_seg, pos_off FROM mark WHERE journal = :journal"),
	/* One statement, so one round trip and one snapshot: a message and
	 * its recipients are never seen half-written by the writer.  One
	 * probe of msg_envid_cert.  SQLite reads rows as they are stepped,
	 * already in (id, idx) order from the index and rcpt's key, and
	 * lookup() stops after STORE_LOOKUP_MAX messages; PostgreSQL gets
	 * the whole result at once, so its SQL caps the messages. */
	[SX_LOOKUP] = {
	    [SQL_DIALECT_SQLITE] =
	        "SELECT " SX_MSG_COLS ", " SX_RCPT_COLS_SQLITE
	        " FROM msg m LEFT JOIN rcpt r ON r.msg = m.id"
	        " WHERE m.envid_h = :envid_h AND m.envid = :envid"
	        " AND m.certifier = :cert ORDER BY m.id, r.idx",
	    [SQL_DIALECT_PG] =
	        "SELECT " SX_MSG_COLS ", " SX_RCPT_COLS_PG
	        " FROM (SELECT * FROM msg WHERE envid = :envid"
	        " AND certifier = :cert ORDER BY id LIMIT :max) m"
	        " LEFT JOIN rcpt r ON r.msg = m.id ORDER BY m.id, r.idx",
	},
	/* SQLite returns the ids, whose recipients SX_PURGE_RCPT deletes;
	 * PostgreSQL's go with them (ON DELETE CASCADE). */
	[SX_PURGE] = {
	    [SQL_DIALECT_SQLITE] =
	        "DELETE FROM msg WHERE id IN (SELECT id FROM msg"
	        " WHERE queued = 0 AND expires < :now LIMIT :limit)"
	        " RETURNING id",
	    [SQL_DIALECT_PG] =
	        "DELETE FROM msg WHERE id IN (SELECT id FROM msg"
	        " WHERE NOT queued AND expires < :now LIMIT :limit)",
	},
	[SX_PURGE_RCPT] = {
	    [SQL_DIALECT_SQLITE] = "DELETE FROM rcpt WHERE msg = :msg",
	    [SQL_DIALECT_PG] = NULL,
	},
	[SX_SENT_UPSERT] = SX_BOTH(
	    "INSERT INTO sent (msg, login, secret, subject, submitted)"
	    " VALUES (:msg, :login, :secret, :subject, :submitted)"
	    " ON CONFLICT (msg) DO UPDATE SET login = excluded.login,"
	    " secret = excluded.secret, subject = excluded.subject,"
	    " submitted = excluded.submitted"),
	/* The newest :max of login's messages (sent_login), each with its
	 * recipients, in one statement (one snapshot, as lookup()). */
	[SX_SENT_LIST] = {
	    [SQL_DIALECT_SQLITE] =
	        "SELECT " SX_MSG_COLS ", " SX_RCPT_COLS_SQLITE
	        ", s.login, s.secret, s.subject"
	        " FROM (SELECT * FROM sent WHERE login = :login"
	        " ORDER BY submitted DESC, msg DESC LIMIT :max) s"
	        " JOIN msg m ON m.id = s.msg LEFT JOIN rcpt r ON r.msg = m.id"
	        " ORDER BY s.submitted DESC, s.msg DESC, r.idx",
	    [SQL_DIALECT_PG] =
	        "SELECT " SX_MSG_COLS ", " SX_RCPT_COLS_PG
	        ", s.login, s.secret, s.subject"
	        " FROM (SELECT * FROM sent WHERE login = :login"
	        " ORDER BY submitted DESC, msg DESC LIMIT :max) s"
	        " JOIN msg m ON m.id = s.msg LEFT JOIN rcpt r ON r.msg = m.id"
	        " ORDER BY s.submitted DESC, s.msg DESC, r.idx",
	},
	/* PostgreSQL's go with the message (ON DELETE CASCADE). */
	[SX_PURGE_SENT] = {
	    [SQL_DIALECT_SQLITE] = "DELETE FROM sent WHERE msg = :msg",
	    [SQL_DIALECT_PG] = NULL,
	},
};

/* search() filters, per dialect. */
/* SQLite: the address part of a "type;addr" column, as store_addr_key. */
#define SX_ADDR(c) \
	"lower(trim(substr(" c ", instr(" c ", ';') + 1), ' ' || char(9)))"

static const char *const sx_filter[5][SQL_DIALECTS] = {
	{ [SQL_DIALECT_SQLITE] =
	        " AND m.envid_h = :envid_h AND m.envid = :envid",
	    [SQL_DIALECT_PG] = " AND m.envid = :envid" },
	{ [SQL_DIALECT_SQLITE] = " AND m.sender = :sender COLLATE NOCASE",
	    [SQL_DIALECT_PG] = " AND m.sender_key = :sender_key" },
	{ [SQL_DIALECT_SQLITE] = " AND (" SX_ADDR(
	      "r.orcpt") " = :rcpt_key OR"
	                 " (typeof(r.final_rcpt) = 'text' AND " SX_ADDR(
	                     "r.final_rcpt") " = :rcpt_key))",
	    [SQL_DIALECT_PG] =
	        " AND (r.orcpt_key = :rcpt_key OR r.final_key = :rcpt_key)" },
	SX_BOTH(" AND m.arrival >= :since"),
	SX_BOTH(" AND r.action = :action"),
};

static const char *const sx_rcpt_cols[SQL_DIALECTS] = {
	[SQL_DIALECT_SQLITE] = SX_RCPT_COLS_SQLITE,
	[SQL_DIALECT_PG] = SX_RCPT_COLS_PG,
};

/* Schema, per dialect: creation of version SX_SCHEMA, and the steps
 * from each older version. */
struct sx_schema {
	/* Serialises schema work between handles, taken before the
	 * transaction starts (so that it sees what the last holder
	 * committed) and released after it ends; NULL: SQLite's BEGIN
	 * IMMEDIATE does it. */
	const char *lock;
	const char *unlock;
	/* One row: (a schema version is recorded, other objects exist). */
	const char *probe;
	/* One row: the version. */
	const char *version;
	/* What a database with other objects and no version is. */
	const char *foreign;
	/* Prefix of the driver's own errors at open (NULL: the driver's
	 * where(); PostgreSQL's errors already name it). */
	const char *error_prefix;
	const char *const *create;
	/* up_from[v]: from version v to v + 1 (run one after the other). */
	const char *const *up_from[SX_SCHEMA];
};

#define SX_MARK_TABLE \
	"CREATE TABLE IF NOT EXISTS mark (journal TEXT PRIMARY KEY," \
	" pos_seg BIGINT NOT NULL, pos_off BIGINT NOT NULL)"
/* SQLite: msg is the rowid, msg.id's value (rcpt's way). */
#define SX_SENT_TABLE_SQLITE \
	"CREATE TABLE IF NOT EXISTS sent (msg INTEGER PRIMARY KEY," \
	" login TEXT NOT NULL, secret TEXT NOT NULL, subject TEXT," \
	" submitted INTEGER NOT NULL)"
#define SX_SENT_TABLE_PG \
	"CREATE TABLE IF NOT EXISTS sent (" \
	" msg bigint PRIMARY KEY REFERENCES msg (id) ON DELETE CASCADE," \
	" login bytea NOT NULL, secret bytea NOT NULL, subject bytea," \
	" submitted bigint NOT NULL)"
#define SX_SENT_INDEX \
	"CREATE INDEX IF NOT EXISTS sent_login ON sent (login, submitted)"

static const char *const sx_sqlite_create[] = {
	"CREATE TABLE msg ("
	" id INTEGER PRIMARY KEY,"
	" qid TEXT NOT NULL UNIQUE,"
	" envid TEXT,"
	" envid_h INTEGER,"
	" certifier TEXT NOT NULL,"
	" sender TEXT NOT NULL,"
	" reporting_mta TEXT,"
	" arrival INTEGER NOT NULL,"
	" expires INTEGER NOT NULL,"
	" queued INTEGER NOT NULL)",
	"CREATE INDEX msg_envid_cert ON msg(envid_h, certifier)"
	" WHERE envid_h IS NOT NULL",
	"CREATE INDEX msg_expires ON msg(expires) WHERE queued = 0",
	"CREATE TABLE rcpt ("
	" msg INTEGER NOT NULL,"
	" idx INTEGER NOT NULL,"
	" orcpt TEXT,"
	" final_rcpt,"
	" action INTEGER NOT NULL,"
	" status TEXT,"
	" remote_mta TEXT,"
	" last_attempt INTEGER NOT NULL,"
	" will_retry INTEGER NOT NULL,"
	" reply TEXT,"
	" PRIMARY KEY (msg, idx)) WITHOUT ROWID",
	SX_MARK_TABLE " WITHOUT ROWID",
	SX_SENT_TABLE_SQLITE,
	SX_SENT_INDEX,
	"PRAGMA user_version = 3",
	NULL,
};

static const char *const sx_sqlite_up1[] = {
	SX_MARK_TABLE " WITHOUT ROWID",
	"CREATE INDEX IF NOT EXISTS msg_envid_cert ON msg(envid_h, certifier)"
	" WHERE envid_h IS NOT NULL",
	"DROP INDEX IF EXISTS msg_envid",
	"PRAGMA user_version = 2",
	NULL,
};

static const char *const sx_sqlite_up2[] = {
	SX_SENT_TABLE_SQLITE,
	SX_SENT_INDEX,
	"PRAGMA user_version = 3",
	NULL,
};

static const char *const sx_pg_create[] = {
	"CREATE TABLE msgtrk_schema (version integer NOT NULL)",
	"CREATE TABLE msg ("
	" id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	" qid text NOT NULL UNIQUE,"
	" envid bytea,"
	" certifier bytea NOT NULL,"
	" sender bytea NOT NULL,"
	" sender_key bytea NOT NULL,"
	" reporting_mta bytea,"
	" arrival bigint NOT NULL,"
	" expires bigint NOT NULL,"
	" queued boolean NOT NULL)",
	"CREATE INDEX msg_envid_cert ON msg (envid, certifier)"
	" WHERE envid IS NOT NULL",
	"CREATE INDEX msg_expires ON msg (expires) WHERE NOT queued",
	"CREATE TABLE rcpt ("
	" msg bigint NOT NULL REFERENCES msg (id) ON DELETE CASCADE,"
	" idx bigint NOT NULL,"
	" orcpt bytea,"
	" orcpt_key bytea,"
	" final_rcpt bytea,"
	" final_key bytea,"
	" action smallint NOT NULL,"
	" status bytea,"
	" remote_mta bytea,"
	" last_attempt bigint NOT NULL,"
	" will_retry bigint NOT NULL,"
	" reply bytea,"
	" PRIMARY KEY (msg, idx))",
	SX_MARK_TABLE,
	SX_SENT_TABLE_PG,
	SX_SENT_INDEX,
	"INSERT INTO msgtrk_schema (version) VALUES (3)",
	NULL,
};

static const char *const sx_pg_up1[] = {
	SX_MARK_TABLE,
	"CREATE INDEX IF NOT EXISTS msg_envid_cert ON msg (envid, certifier)"
	" WHERE envid IS NOT NULL",
	"DROP INDEX IF EXISTS msg_envid",
	"UPDATE msgtrk_schema SET version = 2",
	NULL,
};

static const char *const sx_pg_up2[] = {
	SX_SENT_TABLE_PG,
	SX_SENT_INDEX,
	"UPDATE msgtrk_schema SET version = 3",
	NULL,
};

static const struct sx_schema sx_schema_defs[SQL_DIALECTS] = {
	[SQL_DIALECT_SQLITE] = {
	    .lock = NULL,
	    .probe = "SELECT (SELECT user_version FROM pragma_user_version)"
	             " <> 0, (SELECT count(*) FROM sqlite_master) <> 0",
	    .version = "SELECT user_version FROM pragma_user_version",
	    .foreign = "no schema version",
	    .create = sx_sqlite_create,
	    .up_from = { [1] = sx_sqlite_up1, [2] = sx_sqlite_up2 },
	},
	[SQL_DIALECT_PG] = {
	    /* Key of the advisory lock that serialises schema work. */
	    .lock = "SELECT pg_advisory_lock(7166130761327460353)",
	    .unlock = "SELECT pg_advisory_unlock(7166130761327460353)",
	    .probe = "SELECT to_regclass('msgtrk_schema') IS NOT NULL,"
	             " to_regclass('msg') IS NOT NULL"
	             " OR to_regclass('rcpt') IS NOT NULL",
	    .version = "SELECT max(version) FROM msgtrk_schema",
	    .foreign = "tables msg or rcpt exist without msgtrk_schema",
	    .error_prefix = "open",
	    .create = sx_pg_create,
	    .up_from = { [1] = sx_pg_up1, [2] = sx_pg_up2 },
	},
};

struct store {
	const struct sql_driver *drv;
	struct sql_conn *c;
	enum sql_dialect dia;
	int flags;
	struct sql_stmt *stmt[SX_COUNT];
	struct sql_stmt *search[SX_F_VARIANTS];
	int batch; /* begin() ran, and no commit or rollback since */
	int batch_failed; /* a write failed inside the batch */
	char err[SQL_ERR_MAX];
};

static int sx_errx(struct store *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static int
sx_errx(struct store *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* Records the driver's message for a failed operation. */
static int
sx_fail(struct store *st, const char *op)
{
	return sx_errx(st, "%s: %s", op, st->drv->error(st->c));
}

/* A failure inside the caller's batch poisons it: commit() refuses. */
static int
sx_fail_put(struct store *st)
{
	if (st->batch)
		st->batch_failed = 1;
	return -1;
}

/* The prepared statement id (prepared now if it is the first use). */
static struct sql_stmt *
sx_stmt(struct store *st, enum sx_stmt id, const char *op)
{
	if (st->stmt[id] == NULL &&
	    (st->stmt[id] = st->drv->prepare(st->c, sx_sql[id][st->dia], 0)) ==
	        NULL)
		sx_fail(st, op);
	return st->stmt[id];
}

/* Makes the connection usable for op; a lost one fails the batch. */
static int
sx_ready(struct store *st, const char *op)
{
	if (st->drv->ready(st->c, st->batch) == 0)
		return 0;
	sx_fail(st, op);
	return sx_fail_put(st);
}

/* After a failed read outside a batch: 1 if the connection had been
 * lost and is back (the caller tries once more), else 0 with the first
 * failure's message kept. */
static int
sx_retry(struct store *st)
{
	char saved[SQL_ERR_MAX];

	if (st->batch || !st->drv->lost(st->c))
		return 0;
	str_copy(saved, st->err, sizeof(saved));
	if (st->drv->ready(st->c, 0) == -1) {
		str_copy(st->err, saved, sizeof(st->err));
		return 0;
	}
	return 1;
}

/* Runs s (bound) to completion; -1 with op's error on failure. */
static int
sx_exec(struct store *st, struct sql_stmt *s, const char *op)
{
	int rc = st->drv->step(s);

	if (rc == SQL_ROW)
		while ((rc = st->drv->step(s)) == SQL_ROW)
			;
	if (rc != SQL_DONE) {
		sx_fail(st, op);
		st->drv->reset(s);
		return -1;
	}
	st->drv->reset(s);
	return 0;
}

/* Opens a transaction unless a batch is open; *own_out says whether this
 * call opened it (and must end it). */
static int
sx_own_begin(struct store *st, const char *op, int *own_out)
{
	*own_out = 0;
	if (st->batch)
		return 0;
	if (st->drv->begin(st->c) == -1)
		return sx_fail(st, op);
	*own_out = 1;
	return 0;
}

static int
sx_own_end(struct store *st, const char *op, int own, int ok)
{
	char saved[SQL_ERR_MAX];

	if (!own)
		return ok ? 0 : sx_fail_put(st);
	if (ok) {
		if (st->drv->commit(st->c) == 0)
			return 0;
		sx_fail(st, op);
	}
	str_copy(saved, st->err, sizeof(saved));
	(void)st->drv->rollback(st->c);
	str_copy(st->err, saved, sizeof(st->err));
	return -1;
}

/* The key of SQLite's envid index: FNV-1a 64 of the decoded envid, cut
 * to 47 bits so SQLite stores it in 6 bytes.  Lookups compare the envid
 * too, so a collision only costs one more row read. */
static int64_t
sx_envid_hash(const char *envid)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const unsigned char *p;

	for (p = (const unsigned char *)envid; *p != '\0'; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return (int64_t)(h & SX_ENVID_HASH_MASK);
}

int
store_sql_begin(struct store *st)
{
	if (st->batch)
		return sx_errx(st, "begin: a batch is already open");
	if (sx_ready(st, "begin") == -1)
		return -1;
	if (st->drv->begin(st->c) == -1)
		return sx_fail(st, "begin");
	st->batch = 1;
	st->batch_failed = 0;
	return 0;
}

int
store_sql_commit(struct store *st)
{
	if (!st->batch)
		return sx_errx(st, "commit: no batch is open");
	if (st->batch_failed)
		return sx_errx(
		    st, "commit: a write in this batch failed; roll it back");
	if (st->drv->commit(st->c) == -1) {
		st->batch_failed = 1;
		return sx_fail(st, "commit");
	}
	st->batch = 0;
	return 0;
}

int
store_sql_rollback(struct store *st)
{
	st->batch_failed = 0;
	if (!st->batch)
		return 0;
	st->batch = 0;
	/* A failed COMMIT or a lost connection may have ended the
	 * transaction already: the driver then has nothing to undo. */
	if (st->drv->rollback(st->c) == -1)
		return sx_fail(st, "rollback");
	return 0;
}

/* Binds the values of recipient r (and its search keys, in keys of
 * 2 * (STORE_TEXT_MAX + 1) bytes).  The fields were checked
 * (store_check_rcpt), so the keys fit. */
static int
sx_bind_rcpt(struct store *st, struct sql_stmt *s, const struct store_rcpt *r,
    char *keys)
{
	const struct sql_driver *d = st->drv;
	char *okey = keys, *fkey = keys + STORE_TEXT_MAX + 1;
	int rc = 0;

	if (r->orcpt == NULL ||
	    store_addr_key(r->orcpt, okey, STORE_TEXT_MAX + 1) == -1)
		okey = NULL;
	if (r->final_rcpt == NULL ||
	    store_addr_key(r->final_rcpt, fkey, STORE_TEXT_MAX + 1) == -1)
		fkey = NULL;
	rc |= d->bind_int(s, ":idx", r->idx);
	rc |= d->bind_text(s, ":orcpt", r->orcpt);
	rc |= d->bind_text(s, ":orcpt_key", okey);
	rc |= d->bind_text(s, ":final", r->final_rcpt);
	rc |= d->bind_text(s, ":final_key", fkey);
	rc |= d->bind_int(s, ":action", (int64_t)r->action);
	rc |=
	    d->bind_text(s, ":status", r->status[0] != '\0' ? r->status : NULL);
	rc |= d->bind_text(s, ":rmta", r->remote_mta);
	rc |= d->bind_int(s, ":last", (int64_t)r->last_attempt);
	rc |= d->bind_int(s, ":wru", (int64_t)r->will_retry_until);
	rc |= d->bind_text(s, ":reply", r->reply);
	return rc == 0 ? 0 : -1;
}

/* The sent row of an automatically tracked message (id: its msg row). */
static int
sx_put_sent(struct store *st, const struct store_msg *m, int64_t id)
{
	const struct sql_driver *d = st->drv;
	struct sql_stmt *s;
	int rc;

	if ((s = sx_stmt(st, SX_SENT_UPSERT, "put_msg")) == NULL)
		return -1;
	rc = d->bind_int(s, ":msg", id);
	rc |= d->bind_text(s, ":login", m->login);
	rc |= d->bind_text(s, ":secret", m->secret);
	rc |= d->bind_text(s, ":subject", m->subject);
	rc |= d->bind_int(s, ":submitted", (int64_t)m->arrival);
	if (rc != 0) {
		sx_fail(st, "put_msg");
		d->reset(s);
		return -1;
	}
	return sx_exec(st, s, "put_msg");
}

/* put_msg's statements inside the (own or caller's) transaction. */
static int
sx_put_msg_rows(struct store *st, const struct store_msg *m, char *keys)
{
	const struct sql_driver *d = st->drv;
	char *sender_key = keys;
	struct sql_stmt *s;
	int64_t id;
	size_t i;
	int rc;

	str_copy(sender_key, m->sender, STORE_TEXT_MAX + 1);
	str_lower(sender_key);
	if ((s = sx_stmt(st, SX_MSG_UPSERT, "put_msg")) == NULL)
		return -1;
	rc = d->bind_text(s, ":qid", m->qid);
	rc |= d->bind_text(s, ":envid", m->envid);
	if (m->envid != NULL)
		rc |= d->bind_int(s, ":envid_h", sx_envid_hash(m->envid));
	else
		rc |= d->bind_text(s, ":envid_h", NULL);
	rc |= d->bind_text(s, ":cert", m->certifier);
	rc |= d->bind_text(s, ":sender", m->sender);
	rc |= d->bind_text(s, ":sender_key", sender_key);
	rc |= d->bind_text(s, ":rmta", m->reporting_mta);
	rc |= d->bind_int(s, ":arrival", (int64_t)m->arrival);
	rc |= d->bind_int(s, ":expires", (int64_t)m->expires);
	rc |= d->bind_int(s, ":queued", m->queued != 0);
	if (rc != 0 || d->step(s) != SQL_ROW) {
		sx_fail(st, "put_msg");
		d->reset(s);
		return -1;
	}
	id = d->column_int(s, 0);
	if (d->step(s) != SQL_DONE) {
		sx_fail(st, "put_msg");
		d->reset(s);
		return -1;
	}
	d->reset(s);
	if (m->login != NULL && sx_put_sent(st, m, id) == -1)
		return -1;

	/* Replace: drop recipients beyond the new list, upsert the rest. */
	if ((s = sx_stmt(st, SX_RCPT_TRIM, "put_msg")) == NULL)
		return -1;
	if ((d->bind_int(s, ":msg", id) |
	        d->bind_int(s, ":n", (int64_t)m->nrcpt)) != 0) {
		sx_fail(st, "put_msg");
		d->reset(s);
		return -1;
	}
	if (sx_exec(st, s, "put_msg") == -1)
		return -1;
	if ((s = sx_stmt(st, SX_RCPT_UPSERT, "put_msg")) == NULL)
		return -1;
	for (i = 0; i < m->nrcpt; i++) {
		if (d->bind_int(s, ":msg", id) != 0 ||
		    sx_bind_rcpt(st, s, &m->rcpts[i], keys) == -1) {
			sx_fail(st, "put_msg");
			d->reset(s);
			return -1;
		}
		if (sx_exec(st, s, "put_msg") == -1)
			return -1;
	}
	return 0;
}

int
store_sql_put_msg(struct store *st, const struct store_msg *m)
{
	char *keys;
	int own, ok;

	if (store_check_msg(m, st->err, sizeof(st->err)) == -1)
		return sx_fail_put(st);
	if (sx_ready(st, "put_msg") == -1)
		return -1;
	if ((keys = malloc(2 * (STORE_TEXT_MAX + 1))) == NULL) {
		sx_errx(st, "put_msg: out of memory");
		return sx_fail_put(st);
	}
	if (sx_own_begin(st, "put_msg", &own) == -1) {
		free(keys);
		return sx_fail_put(st);
	}
	ok = sx_put_msg_rows(st, m, keys) == 0;
	free(keys);
	return sx_own_end(st, "put_msg", own, ok);
}

int
store_sql_put_rcpt(
    struct store *st, const char *qid, const struct store_rcpt *r)
{
	struct sql_stmt *s;
	char *keys;
	int rc;

	if (store_check_rcpt("put_rcpt", qid, r, st->err, sizeof(st->err)) ==
	    -1)
		return sx_fail_put(st);
	if (sx_ready(st, "put_rcpt") == -1)
		return -1;
	if ((s = sx_stmt(st, SX_RCPT_PUT, "put_rcpt")) == NULL)
		return sx_fail_put(st);
	if ((keys = malloc(2 * (STORE_TEXT_MAX + 1))) == NULL) {
		sx_errx(st, "put_rcpt: out of memory");
		return sx_fail_put(st);
	}
	/* One statement: atomic on its own outside a batch.  No row is
	 * written for an unknown qid, and that is not an error (store.h). */
	if (st->drv->bind_text(s, ":qid", qid) != 0 ||
	    sx_bind_rcpt(st, s, r, keys) == -1) {
		sx_fail(st, "put_rcpt");
		st->drv->reset(s);
		rc = -1;
	} else
		rc = sx_exec(st, s, "put_rcpt");
	free(keys);
	return rc == 0 ? 0 : sx_fail_put(st);
}

int
store_sql_set_done(struct store *st, const char *qid)
{
	struct sql_stmt *s;

	if (store_check_qid(qid) == -1) {
		sx_errx(st, "set_done: invalid queue id");
		return sx_fail_put(st);
	}
	if (sx_ready(st, "set_done") == -1)
		return -1;
	if ((s = sx_stmt(st, SX_SET_DONE, "set_done")) == NULL)
		return sx_fail_put(st);
	if (st->drv->bind_text(s, ":qid", qid) != 0) {
		sx_fail(st, "set_done");
		st->drv->reset(s);
		return sx_fail_put(st);
	}
	if (sx_exec(st, s, "set_done") == -1)
		return sx_fail_put(st);
	return 0;
}

int
store_sql_set_mark(struct store *st, const struct store_mark *m)
{
	const struct sql_driver *d = st->drv;
	struct sql_stmt *s;

	if (!st->batch)
		return sx_errx(st, "set_mark: no batch is open");
	if (m == NULL || store_check_journal(m->journal) == -1) {
		sx_errx(st, "set_mark: invalid journal id");
		return sx_fail_put(st);
	}
	if (m->seg > INT64_MAX || m->off > INT64_MAX) {
		sx_errx(st, "set_mark: %s: position out of range", m->journal);
		return sx_fail_put(st);
	}
	if (sx_ready(st, "set_mark") == -1)
		return -1;
	if ((s = sx_stmt(st, SX_MARK_SET, "set_mark")) == NULL)
		return sx_fail_put(st);
	if ((d->bind_text(s, ":journal", m->journal) |
	        d->bind_int(s, ":seg", (int64_t)m->seg) |
	        d->bind_int(s, ":off", (int64_t)m->off)) != 0) {
		sx_fail(st, "set_mark");
		d->reset(s);
		return sx_fail_put(st);
	}
	if (sx_exec(st, s, "set_mark") == -1)
		return sx_fail_put(st);
	return 0;
}

static int
sx_get_mark_once(struct store *st, struct store_mark *m)
{
	const struct sql_driver *d = st->drv;
	struct sql_stmt *s;
	int64_t seg, off;
	int rc;

	if ((s = sx_stmt(st, SX_MARK_GET, "get_mark")) == NULL)
		return -1;
	if (d->bind_text(s, ":journal", m->journal) != 0) {
		sx_fail(st, "get_mark");
		d->reset(s);
		return -1;
	}
	rc = d->step(s);
	if (rc == SQL_DONE) {
		d->reset(s);
		return 0;
	}
	if (rc != SQL_ROW) {
		sx_fail(st, "get_mark");
		d->reset(s);
		return -1;
	}
	seg = d->column_int(s, 0);
	off = d->column_int(s, 1);
	if ((rc = d->step(s)) != SQL_DONE) {
		if (rc == SQL_ERROR)
			sx_fail(st, "get_mark");
		else
			sx_errx(st, "get_mark: %s: two marks", m->journal);
		d->reset(s);
		return -1;
	}
	d->reset(s);
	if (seg < 0 || off < 0)
		return sx_errx(
		    st, "get_mark: %s: corrupt mark record", m->journal);
	m->seg = (uint64_t)seg;
	m->off = (uint64_t)off;
	return 1;
}

int
store_sql_get_mark(struct store *st, struct store_mark *m)
{
	int rc = -1, tries = 0;

	if (m == NULL || store_check_journal(m->journal) == -1)
		return sx_errx(st, "get_mark: invalid journal id");
	do {
		if (sx_ready(st, "get_mark") == -1)
			return -1;
		rc = sx_get_mark_once(st, m);
	} while (rc == -1 && tries++ == 0 && sx_retry(st));
	return rc;
}

/* Reads column col as a string: 0 with *out (NULL for SQL NULL), or -1
 * if it holds a NUL byte (a record this code did not write). */
static int
sx_col(struct store *st, struct sql_stmt *s, int col, const char **out)
{
	size_t len;

	*out = st->drv->column_text(s, col, &len);
	if (*out != NULL && strlen(*out) != len)
		return -1;
	return 0;
}

/* Copies a string column (NULL stays NULL).  Returns 0, or -1 (a NUL
 * inside, or no memory). */
static int
sx_col_dup(struct store *st, struct sql_stmt *s, int col, char **out)
{
	const char *v;

	*out = NULL;
	if (sx_col(st, s, col, &v) == -1)
		return -1;
	if (v != NULL && (*out = strdup(v)) == NULL)
		return -1;
	return 0;
}

/* Copies a column into a fixed field; "" for NULL.  Returns -1 if it
 * does not fit. */
static int
sx_col_fixed(
    struct store *st, struct sql_stmt *s, int col, char *dst, size_t size)
{
	const char *v;

	dst[0] = '\0';
	if (sx_col(st, s, col, &v) == -1)
		return -1;
	if (v == NULL)
		return 0;
	return str_copy(dst, v, size) < size ? 0 : -1;
}

/* Fills a message's fixed fields and times from a row; strings are left
 * to the caller. */
static int
sx_row_msg(struct store *st, struct sql_stmt *s, struct store_msg *m)
{
	const struct sql_driver *d = st->drv;

	if (sx_col_fixed(st, s, MC_QID, m->qid, sizeof(m->qid)) == -1 ||
	    sx_col_fixed(st, s, MC_CERT, m->certifier, sizeof(m->certifier)) ==
	        -1)
		return -1;
	m->arrival = (time_t)d->column_int(s, MC_ARRIVAL);
	m->expires = (time_t)d->column_int(s, MC_EXPIRES);
	m->queued = d->column_int(s, MC_QUEUED) != 0;
	return 0;
}

/* Same for a recipient. */
static int
sx_row_rcpt(struct store *st, struct sql_stmt *s, struct store_rcpt *r)
{
	const struct sql_driver *d = st->drv;
	int64_t a = d->column_int(s, MC_COUNT + RC_ACTION);

	if (d->column_null(s, MC_COUNT + RC_ACTION) ||
	    a < STORE_ACTION_QUEUED || a > STORE_ACTION_FAILED ||
	    sx_col_fixed(st, s, MC_COUNT + RC_STATUS, r->status,
	        sizeof(r->status)) == -1)
		return -1;
	r->action = (enum store_action)a;
	r->idx = (uint32_t)d->column_int(s, MC_COUNT + RC_IDX);
	r->last_attempt = (time_t)d->column_int(s, MC_COUNT + RC_LAST);
	r->will_retry_until = (time_t)d->column_int(s, MC_COUNT + RC_WRU);
	return 0;
}

/* Adds the message of the current row to *msgs (sent: the row has the
 * sent columns too).  op names the operation in errors. */
static struct store_msg *
sx_lookup_msg(struct store *st, struct sql_stmt *s, const char *op, int sent,
    struct store_msg **msgs, size_t *n)
{
	struct store_msg *nm, *m;

	if ((*n & (*n - 1)) == 0) { /* 0, 1, 2, 4...: grow */
		if ((nm = realloc(*msgs, (*n ? *n * 2 : 1) * sizeof(**msgs))) ==
		    NULL) {
			sx_errx(st, "%s: out of memory", op);
			return NULL;
		}
		*msgs = nm;
	}
	m = &(*msgs)[(*n)++];
	memset(m, 0, sizeof(*m));
	if (sx_row_msg(st, s, m) == -1) {
		sx_errx(st, "%s: corrupt message record", op);
		return NULL;
	}
	if (sx_col_dup(st, s, MC_ENVID, &m->envid) == -1 ||
	    sx_col_dup(st, s, MC_SENDER, &m->sender) == -1 ||
	    sx_col_dup(st, s, MC_RMTA, &m->reporting_mta) == -1 ||
	    (m->sender == NULL && (m->sender = strdup("")) == NULL) ||
	    (sent &&
	        (sx_col_dup(st, s, SC_LOGIN, &m->login) == -1 ||
	            sx_col_dup(st, s, SC_SECRET, &m->secret) == -1 ||
	            sx_col_dup(st, s, SC_SUBJECT, &m->subject) == -1))) {
		sx_errx(st, "%s: %s: corrupt or out of memory", op, m->qid);
		return NULL;
	}
	return m;
}

/* Adds the recipient of the current row to m. */
static int
sx_lookup_rcpt(
    struct store *st, struct sql_stmt *s, const char *op, struct store_msg *m)
{
	struct store_rcpt *nr, *r;
	size_t n = m->nrcpt;

	if ((n & (n - 1)) == 0) {
		if (n > SIZE_MAX / 2 / sizeof(*r) ||
		    (nr = realloc(m->rcpts, (n ? n * 2 : 1) * sizeof(*r))) ==
		        NULL)
			return sx_errx(st, "%s: out of memory", op);
		m->rcpts = nr;
	}
	r = &m->rcpts[m->nrcpt++];
	memset(r, 0, sizeof(*r));
	if (sx_row_rcpt(st, s, r) == -1 ||
	    sx_col_dup(st, s, MC_COUNT + RC_ORCPT, &r->orcpt) == -1 ||
	    sx_col_dup(st, s, MC_COUNT + RC_FINAL, &r->final_rcpt) == -1 ||
	    sx_col_dup(st, s, MC_COUNT + RC_RMTA, &r->remote_mta) == -1 ||
	    sx_col_dup(st, s, MC_COUNT + RC_REPLY, &r->reply) == -1)
		return sx_errx(
		    st, "%s: %s: corrupt recipient record", op, m->qid);
	return 0;
}

/* Reads the rows of s (bound) into messages with their recipients, at
 * most max messages.  Returns 1 (*out, *n_out), 0 (none) or -1; s is
 * reset. */
static int
sx_collect(struct store *st, struct sql_stmt *s, const char *op, int sent,
    size_t max, struct store_msg **out, size_t *n_out)
{
	const struct sql_driver *d = st->drv;
	struct store_msg *msgs = NULL, *m = NULL;
	int64_t id = 0;
	size_t n = 0;
	int rc;

	/* Rows come by message, then idx; a message without recipients
	 * has one row with NULL recipient columns (LEFT JOIN). */
	while ((rc = d->step(s)) == SQL_ROW) {
		if (m == NULL || d->column_int(s, MC_ID) != id) {
			if (n == max) {
				rc = SQL_DONE;
				break;
			}
			id = d->column_int(s, MC_ID);
			if ((m = sx_lookup_msg(st, s, op, sent, &msgs, &n)) ==
			    NULL)
				goto fail;
		}
		if (!d->column_null(s, MC_COUNT + RC_IDX) &&
		    sx_lookup_rcpt(st, s, op, m) == -1)
			goto fail;
	}
	if (rc != SQL_DONE) {
		sx_fail(st, op);
		goto fail;
	}
	d->reset(s);
	if (n == 0)
		return 0;
	*out = msgs;
	*n_out = n;
	return 1;
fail:
	d->reset(s);
	store_msgs_free(msgs, n);
	return -1;
}

static int
sx_lookup_once(struct store *st, const char *envid, const char *certifier,
    struct store_msg **out, size_t *n_out)
{
	const struct sql_driver *d = st->drv;
	struct sql_stmt *s;

	if ((s = sx_stmt(st, SX_LOOKUP, "lookup")) == NULL)
		return -1;
	if ((d->bind_text(s, ":envid", envid) |
	        d->bind_int(s, ":envid_h", sx_envid_hash(envid)) |
	        d->bind_text(s, ":cert", certifier) |
	        d->bind_int(s, ":max", STORE_LOOKUP_MAX)) != 0) {
		sx_fail(st, "lookup");
		d->reset(s);
		return -1;
	}
	return sx_collect(st, s, "lookup", 0, STORE_LOOKUP_MAX, out, n_out);
}

int
store_sql_lookup(struct store *st, const char *envid, const char *certifier,
    struct store_msg **out, size_t *n_out)
{
	int rc = -1, tries = 0;

	*out = NULL;
	*n_out = 0;
	if (envid == NULL)
		return sx_errx(st, "lookup: no envid");
	if (certifier == NULL)
		return sx_errx(st, "lookup: no certifier");
	/* Nothing else can have been stored (put_msg refuses it). */
	if (envid[0] == '\0' ||
	    strnlen(envid, STORE_ENVID_MAX + 1) > STORE_ENVID_MAX ||
	    strnlen(certifier, STORE_CERTIFIER_LEN + 1) != STORE_CERTIFIER_LEN)
		return 0;
	do {
		if (sx_ready(st, "lookup") == -1)
			return -1;
		rc = sx_lookup_once(st, envid, certifier, out, n_out);
	} while (rc == -1 && tries++ == 0 && sx_retry(st));
	return rc;
}

static int
sx_list_sent_once(struct store *st, const char *login, size_t max,
    struct store_msg **out, size_t *n_out)
{
	const struct sql_driver *d = st->drv;
	struct sql_stmt *s;

	if ((s = sx_stmt(st, SX_SENT_LIST, "list_sent")) == NULL)
		return -1;
	if ((d->bind_text(s, ":login", login) |
	        d->bind_int(s, ":max", (int64_t)max)) != 0) {
		sx_fail(st, "list_sent");
		d->reset(s);
		return -1;
	}
	return sx_collect(st, s, "list_sent", 1, max, out, n_out);
}

int
store_sql_list_sent(struct store *st, const char *login, size_t limit,
    struct store_msg **out, size_t *n_out)
{
	int rc = -1, tries = 0;

	*out = NULL;
	*n_out = 0;
	if (login == NULL)
		return sx_errx(st, "list_sent: no login");
	/* Nothing else can have been stored (put_msg refuses it). */
	if (login[0] == '\0' ||
	    strnlen(login, STORE_LOGIN_MAX + 1) > STORE_LOGIN_MAX)
		return 0;
	if (limit == 0 || limit > STORE_SENT_MAX)
		limit = STORE_SENT_MAX;
	do {
		if (sx_ready(st, "list_sent") == -1)
			return -1;
		rc = sx_list_sent_once(st, login, limit, out, n_out);
	} while (rc == -1 && tries++ == 0 && sx_retry(st));
	return rc;
}

/* One purge pass: deletes up to limit expired messages and their
 * recipients.  *n_out: how many messages. */
static int
sx_purge_pass(struct store *st, time_t now, int64_t limit, size_t *n_out)
{
	const struct sql_driver *d = st->drv;
	struct sql_stmt *s, *r = NULL, *ps = NULL;
	int rc;

	*n_out = 0;
	if ((s = sx_stmt(st, SX_PURGE, "purge")) == NULL ||
	    (sx_sql[SX_PURGE_RCPT][st->dia] != NULL &&
	        (r = sx_stmt(st, SX_PURGE_RCPT, "purge")) == NULL) ||
	    (sx_sql[SX_PURGE_SENT][st->dia] != NULL &&
	        (ps = sx_stmt(st, SX_PURGE_SENT, "purge")) == NULL))
		return -1;
	if ((d->bind_int(s, ":now", (int64_t)now) |
	        d->bind_int(s, ":limit", limit)) != 0) {
		sx_fail(st, "purge");
		goto fail;
	}
	/* RETURNING rows are all computed by the first step, so deleting
	 * the recipients between steps is safe. */
	while ((rc = d->step(s)) == SQL_ROW) {
		if (r == NULL)
			continue;
		if (d->bind_int(r, ":msg", d->column_int(s, 0)) != 0) {
			sx_fail(st, "purge");
			d->reset(r);
			goto fail;
		}
		if (sx_exec(st, r, "purge") == -1)
			goto fail;
		/* The secret kept for its sender goes with the message. */
		if (ps != NULL) {
			if (d->bind_int(ps, ":msg", d->column_int(s, 0)) != 0) {
				sx_fail(st, "purge");
				d->reset(ps);
				goto fail;
			}
			if (sx_exec(st, ps, "purge") == -1)
				goto fail;
		}
		(*n_out)++;
	}
	if (rc != SQL_DONE) {
		sx_fail(st, "purge");
		goto fail;
	}
	if (r == NULL)
		*n_out = (size_t)d->changes(s);
	d->reset(s);
	return 0;
fail:
	d->reset(s);
	return -1;
}

int
store_sql_purge(struct store *st, time_t now, size_t *n_out)
{
	size_t n;
	int own;

	*n_out = 0;
	if (sx_ready(st, "purge") == -1)
		return -1;
	if (st->batch) {
		/* Inside the caller's batch: one pass, the caller commits. */
		if (sx_purge_pass(st, now, INT64_MAX, n_out) == -1)
			return sx_fail_put(st);
		return 0;
	}
	do {
		if (sx_own_begin(st, "purge", &own) == -1)
			return -1;
		if (sx_purge_pass(st, now, SX_PURGE_CHUNK, &n) == -1)
			return sx_own_end(st, "purge", own, 0);
		if (sx_own_end(st, "purge", own, 1) == -1)
			return -1;
		*n_out += n;
	} while (n == SX_PURGE_CHUNK);
	return 0;
}

static struct sql_stmt *
sx_search_stmt(struct store *st, int mask)
{
	char sql[2048];
	int n;

	if (st->search[mask] != NULL)
		return st->search[mask];
	n = snprintf(sql, sizeof(sql),
	    "SELECT " SX_MSG_COLS ", %s FROM msg m JOIN rcpt r ON r.msg = m.id"
	    " WHERE true%s%s%s%s%s"
	    " ORDER BY m.arrival DESC, m.id DESC, r.idx LIMIT :limit",
	    sx_rcpt_cols[st->dia],
	    mask & SX_F_ENVID ? sx_filter[0][st->dia] : "",
	    mask & SX_F_SENDER ? sx_filter[1][st->dia] : "",
	    mask & SX_F_RCPT ? sx_filter[2][st->dia] : "",
	    mask & SX_F_SINCE ? sx_filter[3][st->dia] : "",
	    mask & SX_F_ACTION ? sx_filter[4][st->dia] : "");
	if (n < 0 || (size_t)n >= sizeof(sql)) {
		sx_errx(st, "search: query too long");
		return NULL;
	}
	if ((st->search[mask] = st->drv->prepare(st->c, sql, SQL_STREAM)) ==
	    NULL)
		sx_fail(st, "search");
	return st->search[mask];
}

/* Hands the current row to fn; strings point into the driver's row. */
static int
sx_search_row(struct store *st, struct sql_stmt *s,
    int (*fn)(void *, const struct store_msg *, const struct store_rcpt *),
    void *arg, int *stop)
{
	struct store_msg m;
	struct store_rcpt r;
	const char *v[7];
	const int cols[7] = { MC_ENVID, MC_SENDER, MC_RMTA, MC_COUNT + RC_ORCPT,
		MC_COUNT + RC_FINAL, MC_COUNT + RC_RMTA, MC_COUNT + RC_REPLY };
	size_t i;

	memset(&m, 0, sizeof(m));
	memset(&r, 0, sizeof(r));
	if (sx_row_msg(st, s, &m) == -1 || sx_row_rcpt(st, s, &r) == -1)
		return sx_errx(st, "search: corrupt record");
	for (i = 0; i < 7; i++)
		if (sx_col(st, s, cols[i], &v[i]) == -1)
			return sx_errx(st, "search: corrupt record");
	m.envid = (char *)v[0];
	m.sender = (char *)(v[1] != NULL ? v[1] : "");
	m.reporting_mta = (char *)v[2];
	r.orcpt = (char *)v[3];
	r.final_rcpt = (char *)v[4];
	r.remote_mta = (char *)v[5];
	r.reply = (char *)v[6];
	if (fn(arg, &m, &r) != 0)
		*stop = 1;
	return 0;
}

int
store_sql_search(struct store *st, const struct store_query *q,
    int (*fn)(void *, const struct store_msg *, const struct store_rcpt *),
    void *arg)
{
	const struct sql_driver *d = st->drv;
	char *keys = NULL, *rkey, *skey;
	struct sql_stmt *s;
	size_t rows = 0;
	int mask = 0, rc, stop = 0, tries = 0, ret = -1;

	if (q == NULL || fn == NULL)
		return sx_errx(st, "search: no query or callback");
	if (q->action < -1 || q->action > STORE_ACTION_FAILED)
		return sx_errx(st, "search: invalid action %d", q->action);
	if ((keys = malloc(2 * (STORE_TEXT_MAX + 1))) == NULL)
		return sx_errx(st, "search: out of memory");
	rkey = keys;
	skey = keys + STORE_TEXT_MAX + 1;
	if (q->envid != NULL)
		mask |= SX_F_ENVID;
	if (q->sender != NULL) {
		if (str_copy(skey, q->sender, STORE_TEXT_MAX + 1) >=
		    STORE_TEXT_MAX + 1) {
			sx_errx(st, "search: sender longer than %d",
			    STORE_TEXT_MAX);
			goto done;
		}
		str_lower(skey);
		mask |= SX_F_SENDER;
	}
	if (q->rcpt != NULL) {
		if (store_addr_key(q->rcpt, rkey, STORE_TEXT_MAX + 1) == -1) {
			sx_errx(
			    st, "search: rcpt longer than %d", STORE_TEXT_MAX);
			goto done;
		}
		mask |= SX_F_RCPT;
	}
	if (q->since != 0)
		mask |= SX_F_SINCE;
	if (q->action != -1)
		mask |= SX_F_ACTION;
again:
	if (sx_ready(st, "search") == -1 ||
	    (s = sx_search_stmt(st, mask)) == NULL)
		goto done;
	rc = d->bind_text(s, ":envid", q->envid);
	if (q->envid != NULL)
		rc |= d->bind_int(s, ":envid_h", sx_envid_hash(q->envid));
	rc |= d->bind_text(s, ":sender", q->sender);
	rc |= d->bind_text(s, ":sender_key", q->sender != NULL ? skey : NULL);
	rc |= d->bind_text(s, ":rcpt_key", q->rcpt != NULL ? rkey : NULL);
	rc |= d->bind_int(s, ":since", (int64_t)q->since);
	rc |= d->bind_int(s, ":action", q->action);
	rc |= d->bind_int(s, ":limit",
	    q->limit == 0 || q->limit > INT64_MAX ? INT64_MAX
	                                          : (int64_t)q->limit);
	if (rc != 0) {
		sx_fail(st, "search");
		d->reset(s);
		goto done;
	}
	while (!stop && (rc = d->step(s)) == SQL_ROW) {
		rows++;
		if (sx_search_row(st, s, fn, arg, &stop) == -1) {
			d->reset(s);
			goto done;
		}
	}
	if (!stop && rc != SQL_DONE) {
		sx_fail(st, "search");
		d->reset(s);
		/* Retried only while fn has seen nothing. */
		if (rows == 0 && tries++ == 0 && sx_retry(st))
			goto again;
		goto done;
	}
	d->reset(s);
	ret = 0;
done:
	free(keys);
	return ret;
}

int
store_sql_sync(struct store *st)
{
	if (st->batch)
		return sx_errx(st, "sync: a batch is open");
	if (st->drv->sync(st->c) == -1)
		return sx_fail(st, "sync");
	return 0;
}

const char *
store_sql_error(struct store *st)
{
	return st->err;
}

void
store_sql_close(struct store *st)
{
	size_t i;

	if (st == NULL)
		return;
	for (i = 0; i < SX_COUNT; i++)
		if (st->stmt[i] != NULL)
			st->drv->finalize(st->stmt[i]);
	for (i = 0; i < SX_F_VARIANTS; i++)
		if (st->search[i] != NULL)
			st->drv->finalize(st->search[i]);
	st->drv->close(st->c);
	free(st);
}

/* Runs one statement of the schema work and returns its first row's
 * first two columns (0 when absent). */
static int
sx_schema_exec(struct store *st, const char *sql, int64_t *a, int64_t *b)
{
	const struct sql_driver *d = st->drv;
	struct sql_stmt *s;
	int rc;

	if ((s = d->prepare(st->c, sql, 0)) == NULL)
		return -1;
	rc = d->step(s);
	if (rc == SQL_ROW) {
		if (a != NULL)
			*a = d->column_int(s, 0);
		if (b != NULL)
			*b = d->column_int(s, 1);
		while ((rc = d->step(s)) == SQL_ROW)
			;
	}
	d->finalize(s);
	return rc == SQL_DONE ? 0 : -1;
}

/* Reads the schema's state: whether a version is recorded (and which),
 * whether other objects exist. */
static int
sx_probe(struct store *st, int64_t *have_version, int64_t *have_objects,
    int64_t *version)
{
	const struct sx_schema *sc = &sx_schema_defs[st->dia];

	*have_version = *have_objects = *version = 0;
	if (sx_schema_exec(st, sc->probe, have_version, have_objects) == -1 ||
	    (*have_version &&
	        sx_schema_exec(st, sc->version, version, NULL) == -1))
		return -1;
	return 0;
}

/* Checks the schema's version, and creates the schema in an empty store
 * or upgrades an older one (not when read-only; an older schema is then
 * read as it is).  A current schema is only read, so a handle opening
 * while another is in a batch does not wait for its lock; otherwise the
 * work runs in one transaction under the schema lock, after probing
 * again (another handle may have done it meanwhile). */
static int
sx_schema(struct store *st, char *err, size_t errsize)
{
	const struct sx_schema *sc = &sx_schema_defs[st->dia];
	const struct sql_driver *d = st->drv;
	const char *where = d->where(st->c);
	const char *const *list = NULL;
	int64_t have_version, have_objects, version, v;
	int ro = (st->flags & STORE_OPEN_READONLY) != 0, locked = 0;
	size_t i;

	if (sx_probe(st, &have_version, &have_objects, &version) == -1)
		goto fail_db;
	if (have_version && version == SX_SCHEMA)
		return 0;
	if (!ro && (!have_version || version < SX_SCHEMA)) {
		if (sc->lock != NULL &&
		    sx_schema_exec(st, sc->lock, NULL, NULL) == -1)
			goto fail_db;
		locked = 1;
		if (d->begin(st->c) == -1)
			goto fail_db;
		locked = 2;
		if (sx_probe(st, &have_version, &have_objects, &version) == -1)
			goto fail_db;
	}
	if (have_version && version > SX_SCHEMA) {
		snprintf(err, errsize,
		    "%s: schema version %lld is newer than this program's (%d)",
		    where, (long long)version, SX_SCHEMA);
		goto fail;
	}
	if (have_version && version < 1) {
		snprintf(
		    err, errsize, "%s: the schema holds no version", where);
		goto fail;
	}
	if (!have_version && have_objects) {
		snprintf(err, errsize, "%s: not a msgtrk tracking store (%s)",
		    where, sc->foreign);
		goto fail;
	}
	if (ro) {
		if (!have_version) {
			snprintf(err, errsize, "%s: no tracking store schema",
			    where);
			return -1;
		}
		return 0;
	}
	/* Created at SX_SCHEMA, or upgraded one version at a time. */
	for (v = have_version ? version : SX_SCHEMA; v <= SX_SCHEMA; v++) {
		list = have_version ? (v < SX_SCHEMA ? sc->up_from[v] : NULL)
		                    : sc->create;
		for (i = 0; list != NULL && list[i] != NULL; i++)
			if (sx_schema_exec(st, list[i], NULL, NULL) == -1) {
				snprintf(err, errsize, "%s: %s the schema: %s",
				    sc->error_prefix != NULL ? sc->error_prefix
				                             : where,
				    have_version ? "upgrading" : "creating",
				    d->error(st->c));
				goto fail;
			}
	}
	if (locked == 2 && d->commit(st->c) == -1)
		goto fail_db;
	if (locked && sc->unlock != NULL &&
	    sx_schema_exec(st, sc->unlock, NULL, NULL) == -1) {
		locked = 0;
		goto fail_db;
	}
	return 0;
fail_db:
	snprintf(err, errsize, "%s: %s",
	    sc->error_prefix != NULL ? sc->error_prefix : where,
	    d->error(st->c));
fail:
	if (locked == 2)
		(void)d->rollback(st->c);
	if (locked && sc->unlock != NULL)
		(void)sx_schema_exec(st, sc->unlock, NULL, NULL);
	return -1;
}

struct store *
store_sql_open(const struct sql_driver *drv, const char *uri,
    const char *data_dir, int flags, char *err, size_t errsize)
{
	struct store *st;

	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errsize, "%s: out of memory", drv->name);
		return NULL;
	}
	st->drv = drv;
	st->dia = drv->dialect;
	st->flags = flags;
	if ((st->c = drv->open(uri, data_dir, flags, err, errsize)) == NULL) {
		free(st);
		return NULL;
	}
	if (sx_schema(st, err, errsize) == -1) {
		store_sql_close(st);
		return NULL;
	}
	return st;
}
