/*
 * store_sqlite: the embedded tracking store, one SQLite 3 file
 * <data_dir>/tracking.db in WAL mode.  See store.h for the contract.
 *
 * Durability.  The queue journal is the source of truth (store.h), so
 * commits run with synchronous=NORMAL: in WAL mode a commit then only
 * appends to the WAL, without fsync.  sync() runs a FULL checkpoint.  In
 * WAL mode with synchronous=NORMAL "the WAL file is synchronized before
 * each checkpoint and the database file is synchronized after each
 * completed checkpoint" (sqlite.org/pragma.html#pragma_synchronous), so
 * once a checkpoint has copied back every frame of the WAL, everything
 * committed so far is in tracking.db and fsync'd; FULL waits (busy
 * timeout) for the writer and for readers on older snapshots, and sync()
 * fails unless the checkpoint completed.  Raising synchronous to FULL for
 * that step would add nothing: it only adds a WAL fsync per commit.  The
 * directory is fsync'd once per handle too, for the file's own entry.
 *
 * Threads.  One handle per thread (store.h), so connections are opened
 * with SQLITE_OPEN_NOMUTEX; WAL lets the reader handle run while the
 * writer commits, and busy_timeout covers the short exclusive steps
 * (checkpoints, purge chunks, schema creation).
 *
 * Schema (version STORE_SQLITE_SCHEMA in PRAGMA user_version).  Sized for
 * issue 5's "<= 400 bytes per tracked recipient, indexes included":
 * - msg has an integer key (rowid alias), so rcpt rows and the indexes
 *   carry a 1-4 byte varint instead of the queue id;
 * - rcpt is WITHOUT ROWID, clustered on (msg, idx): no second b-tree, and
 *   a message's recipients are adjacent;
 * - msg_envid indexes a 47-bit hash of the envid (6 bytes) rather than
 *   the envid again, and is partial (only messages with an envid);
 *   msg_expires is partial on queued = 0, exactly the rows purge() may
 *   delete;
 * - final_rcpt equal to orcpt (the usual case) is stored as the integer 1
 *   (serial type 9: no payload) instead of a second copy of the address.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "msgtrk/str.h"
#include "store/store.h"

/* PRAGMA user_version of the schema below. */
#define STORE_SQLITE_SCHEMA 1
#define STORE_SQLITE_FILE "tracking.db"
/* How long a handle waits for a lock held by the other handle: purge
 * chunks and checkpoints hold it for milliseconds. */
#define STORE_SQLITE_BUSY_MS 10000
/* Messages deleted per purge transaction when purge() runs on its own,
 * so the writer thread never waits long for the lock. */
#define STORE_SQLITE_PURGE_CHUNK 512
/* Page cache per handle, in KiB (negative cache_size means KiB). */
#define STORE_SQLITE_CACHE_KIB 16384
/* Bytes of the file read through a memory map rather than read(2)
 * (SQLite's mmap_size): a TRACK's page reads then cost no system call.
 * Writes still go through write(2), so a full disk is an error, not a
 * signal. */
#define STORE_SQLITE_MMAP_BYTES 1073741824
#define STORE_SQLITE_ERR_MAX 512
/* 47 bits: the largest positive integer SQLite stores in 6 bytes. */
#define STORE_SQLITE_ENVID_HASH_MASK 0x7fffffffffffULL
/* Pages of WAL before a commit checkpoints on its own (default 1000).
 * The queue calls sync() regularly, which checkpoints anyway; this bounds
 * the WAL (64 MiB) if it does not, and a larger WAL lets pages dirtied by
 * many batches (random envid index leaves) be copied back once. */
#define STORE_SQLITE_AUTOCHECKPOINT 16384
/* Marker stored in rcpt.final_rcpt when it equals orcpt. */
#define STORE_SQLITE_SAME_AS_ORCPT 1

static const char schema_sql[] =
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
    " queued INTEGER NOT NULL);"
    "CREATE INDEX msg_envid ON msg(envid_h) WHERE envid_h IS NOT NULL;"
    "CREATE INDEX msg_expires ON msg(expires) WHERE queued = 0;"
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
    " PRIMARY KEY (msg, idx)) WITHOUT ROWID;"
    "PRAGMA user_version = 1;";

enum sq_stmt {
	SQ_BEGIN,
	SQ_COMMIT,
	SQ_ROLLBACK,
	SQ_MSG_UPSERT,
	SQ_RCPT_TRIM,
	SQ_RCPT_UPSERT,
	SQ_RCPT_PUT,
	SQ_SET_DONE,
	SQ_LOOKUP_MSG,
	SQ_LOOKUP_RCPT,
	SQ_PURGE_MSG,
	SQ_PURGE_RCPT,
	SQ_COUNT
};

#define SQ_RCPT_COLS \
	"orcpt, final_rcpt, action, status, remote_mta, last_attempt," \
	" will_retry, reply"
#define SQ_RCPT_SET \
	" orcpt = excluded.orcpt, final_rcpt = excluded.final_rcpt," \
	" action = excluded.action, status = excluded.status," \
	" remote_mta = excluded.remote_mta," \
	" last_attempt = excluded.last_attempt," \
	" will_retry = excluded.will_retry, reply = excluded.reply"
#define SQ_MSG_COLS \
	"m.id, m.qid, m.envid, m.certifier, m.sender, m.reporting_mta," \
	" m.arrival, m.expires, m.queued"
#define SQ_RCPT_RCOLS \
	"r.idx, r.orcpt, r.final_rcpt, r.action, r.status, r.remote_mta," \
	" r.last_attempt, r.will_retry, r.reply"

/* Column positions in the SELECTs built from SQ_MSG_COLS and
 * SQ_RCPT_RCOLS. */
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

static const char *const stmt_sql[SQ_COUNT] = {
	[SQ_BEGIN] = "BEGIN IMMEDIATE",
	[SQ_COMMIT] = "COMMIT",
	[SQ_ROLLBACK] = "ROLLBACK",
	[SQ_MSG_UPSERT] =
	    "INSERT INTO msg (qid, envid, certifier, sender, reporting_mta,"
	    " arrival, expires, queued, envid_h)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
	    " ON CONFLICT (qid) DO UPDATE SET envid = excluded.envid,"
	    " envid_h = excluded.envid_h,"
	    " certifier = excluded.certifier, sender = excluded.sender,"
	    " reporting_mta = excluded.reporting_mta,"
	    " arrival = excluded.arrival, expires = excluded.expires,"
	    " queued = excluded.queued RETURNING id",
	[SQ_RCPT_TRIM] = "DELETE FROM rcpt WHERE msg = ?1 AND idx >= ?2",
	[SQ_RCPT_UPSERT] =
	    "INSERT INTO rcpt (msg, idx, " SQ_RCPT_COLS ") VALUES"
	    " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
	    " ON CONFLICT (msg, idx) DO UPDATE SET" SQ_RCPT_SET,
	[SQ_RCPT_PUT] =
	    "INSERT INTO rcpt (msg, idx, " SQ_RCPT_COLS ")"
	    " SELECT id, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 FROM msg"
	    " WHERE qid = ?1"
	    " ON CONFLICT (msg, idx) DO UPDATE SET" SQ_RCPT_SET,
	[SQ_SET_DONE] = "UPDATE msg SET queued = 0 WHERE qid = ?1",
	[SQ_LOOKUP_MSG] =
	    "SELECT " SQ_MSG_COLS " FROM msg m"
	    " WHERE m.envid_h = ?3 AND m.envid = ?1 ORDER BY m.id LIMIT ?2",
	[SQ_LOOKUP_RCPT] = "SELECT " SQ_RCPT_RCOLS " FROM rcpt r"
	                   " WHERE r.msg = ?1 ORDER BY r.idx",
	[SQ_PURGE_MSG] = "DELETE FROM msg WHERE id IN (SELECT id FROM msg"
	                 " WHERE queued = 0 AND expires < ?1 LIMIT ?2)"
	                 " RETURNING id",
	[SQ_PURGE_RCPT] = "DELETE FROM rcpt WHERE msg = ?1",
};

/* search(): one statement per combination of filters, prepared on first
 * use and kept. */
enum {
	SQ_F_ENVID = 1 << 0,
	SQ_F_SENDER = 1 << 1,
	SQ_F_RCPT = 1 << 2,
	SQ_F_SINCE = 1 << 3,
	SQ_F_ACTION = 1 << 4,
	SQ_F_VARIANTS = 1 << 5
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[SQ_COUNT];
	sqlite3_stmt *search[SQ_F_VARIANTS];
	int batch_failed; /* a put failed inside begin/commit */
	int dir_synced;
	char dir[PATH_MAX];
	char err[STORE_SQLITE_ERR_MAX];
};

static int sq_errx(struct store *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static int
sq_errx(struct store *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* Records SQLite's message for a failed operation. */
static int
sq_fail(struct store *st, const char *op)
{
	return sq_errx(st, "%s: %s", op, sqlite3_errmsg(st->db));
}

/* A failure inside the caller's batch poisons it: commit() refuses. */
static int
sq_fail_put(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		st->batch_failed = 1;
	return -1;
}

static void
sq_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Steps a statement that returns no row to completion and resets it. */
static int
sq_exec(struct store *st, sqlite3_stmt *s, const char *op)
{
	int rc;

	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE) {
		sq_fail(st, op);
		sq_done(s);
		return -1;
	}
	sq_done(s);
	return 0;
}

static int
sq_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		return sqlite3_bind_null(s, i);
	return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

/* The key of msg_envid: FNV-1a 64 of the decoded envid, cut to 47 bits
 * so SQLite stores it in 6 bytes (serial type 5).  The index holds this
 * instead of a second copy of the envid; lookups compare the envid too,
 * so a collision only costs one more row read. */
static sqlite3_int64
sq_envid_hash(const char *envid)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const unsigned char *p;

	for (p = (const unsigned char *)envid; *p != '\0'; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return (sqlite3_int64)(h & STORE_SQLITE_ENVID_HASH_MASK);
}

/* Binds ?2..?10 of SQ_RCPT_UPSERT / SQ_RCPT_PUT. */
static int
sq_bind_rcpt(sqlite3_stmt *s, const struct store_rcpt *r)
{
	int rc = SQLITE_OK;

	rc |= sqlite3_bind_int64(s, 2, r->idx);
	rc |= sq_bind_text(s, 3, r->orcpt);
	if (r->final_rcpt != NULL && r->orcpt != NULL &&
	    strcmp(r->final_rcpt, r->orcpt) == 0)
		rc |= sqlite3_bind_int(s, 4, STORE_SQLITE_SAME_AS_ORCPT);
	else
		rc |= sq_bind_text(s, 4, r->final_rcpt);
	rc |= sqlite3_bind_int(s, 5, (int)r->action);
	rc |= sq_bind_text(s, 6, r->status[0] != '\0' ? r->status : NULL);
	rc |= sq_bind_text(s, 7, r->remote_mta);
	rc |= sqlite3_bind_int64(s, 8, (sqlite3_int64)r->last_attempt);
	rc |= sqlite3_bind_int64(s, 9, (sqlite3_int64)r->will_retry_until);
	rc |= sq_bind_text(s, 10, r->reply);
	return rc == SQLITE_OK ? 0 : -1;
}

/* Opens an IMMEDIATE transaction if none is open; *own_out says whether
 * this call opened it (and must end it). */
static int
sq_own_begin(struct store *st, const char *op, int *own_out)
{
	*own_out = 0;
	if (!sqlite3_get_autocommit(st->db))
		return 0;
	if (sq_exec(st, st->stmt[SQ_BEGIN], op) == -1)
		return -1;
	*own_out = 1;
	return 0;
}

static int
sq_own_end(struct store *st, const char *op, int own, int ok)
{
	if (!own)
		return ok ? 0 : sq_fail_put(st);
	if (ok && sq_exec(st, st->stmt[SQ_COMMIT], op) == 0)
		return 0;
	if (!sqlite3_get_autocommit(st->db)) {
		sqlite3_step(st->stmt[SQ_ROLLBACK]);
		sq_done(st->stmt[SQ_ROLLBACK]);
	}
	return -1;
}

static int
sq_begin(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		return sq_errx(st, "begin: a batch is already open");
	st->batch_failed = 0;
	return sq_exec(st, st->stmt[SQ_BEGIN], "begin");
}

static int
sq_commit(struct store *st)
{
	if (sqlite3_get_autocommit(st->db))
		return sq_errx(st, "commit: no batch is open");
	if (st->batch_failed)
		return sq_errx(
		    st, "commit: a write in this batch failed; roll it back");
	return sq_exec(st, st->stmt[SQ_COMMIT], "commit");
}

static int
sq_rollback(struct store *st)
{
	st->batch_failed = 0;
	/* A failed COMMIT (SQLITE_FULL, SQLITE_IOERR) may already have
	 * rolled back: nothing left to undo is not an error. */
	if (sqlite3_get_autocommit(st->db))
		return 0;
	return sq_exec(st, st->stmt[SQ_ROLLBACK], "rollback");
}

static int
sq_put_msg(struct store *st, const struct store_msg *m)
{
	sqlite3_stmt *s;
	sqlite3_int64 id;
	size_t i;
	int own, rc;

	if (store_check_msg(m, st->err, sizeof(st->err)) == -1)
		return sq_fail_put(st);

	if (sq_own_begin(st, "put_msg", &own) == -1)
		return sq_fail_put(st);

	s = st->stmt[SQ_MSG_UPSERT];
	rc = sq_bind_text(s, 1, m->qid);
	rc |= sq_bind_text(s, 2, m->envid);
	rc |= sq_bind_text(s, 3, m->certifier);
	rc |= sq_bind_text(s, 4, m->sender);
	rc |= sq_bind_text(s, 5, m->reporting_mta);
	rc |= sqlite3_bind_int64(s, 6, (sqlite3_int64)m->arrival);
	rc |= sqlite3_bind_int64(s, 7, (sqlite3_int64)m->expires);
	rc |= sqlite3_bind_int(s, 8, m->queued != 0);
	if (m->envid != NULL)
		rc |= sqlite3_bind_int64(s, 9, sq_envid_hash(m->envid));
	else
		rc |= sqlite3_bind_null(s, 9);
	if (rc != SQLITE_OK || sqlite3_step(s) != SQLITE_ROW) {
		sq_fail(st, "put_msg");
		sq_done(s);
		goto fail;
	}
	id = sqlite3_column_int64(s, 0);
	if (sqlite3_step(s) != SQLITE_DONE) {
		sq_fail(st, "put_msg");
		sq_done(s);
		goto fail;
	}
	sq_done(s);

	/* Replace: drop recipients beyond the new list, upsert the rest. */
	s = st->stmt[SQ_RCPT_TRIM];
	if (sqlite3_bind_int64(s, 1, id) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, (sqlite3_int64)m->nrcpt) != SQLITE_OK) {
		sq_fail(st, "put_msg");
		sq_done(s);
		goto fail;
	}
	if (sq_exec(st, s, "put_msg") == -1)
		goto fail;
	s = st->stmt[SQ_RCPT_UPSERT];
	for (i = 0; i < m->nrcpt; i++) {
		if (sqlite3_bind_int64(s, 1, id) != SQLITE_OK ||
		    sq_bind_rcpt(s, &m->rcpts[i]) == -1) {
			sq_fail(st, "put_msg");
			sq_done(s);
			goto fail;
		}
		if (sq_exec(st, s, "put_msg") == -1)
			goto fail;
	}
	return sq_own_end(st, "put_msg", own, 1);
fail:
	return sq_own_end(st, "put_msg", own, 0);
}

static int
sq_put_rcpt(struct store *st, const char *qid, const struct store_rcpt *r)
{
	sqlite3_stmt *s = st->stmt[SQ_RCPT_PUT];

	if (store_check_rcpt("put_rcpt", qid, r, st->err, sizeof(st->err)) ==
	    -1)
		return sq_fail_put(st);
	if (sq_bind_text(s, 1, qid) != SQLITE_OK || sq_bind_rcpt(s, r) == -1) {
		sq_fail(st, "put_rcpt");
		sq_done(s);
		return sq_fail_put(st);
	}
	if (sq_exec(st, s, "put_rcpt") == -1)
		return sq_fail_put(st);
	if (sqlite3_changes(st->db) == 0) {
		sq_errx(st, "put_rcpt: %s: no such message", qid);
		return sq_fail_put(st);
	}
	return 0;
}

static int
sq_set_done(struct store *st, const char *qid)
{
	sqlite3_stmt *s = st->stmt[SQ_SET_DONE];

	if (store_check_qid(qid) == -1) {
		sq_errx(st, "set_done: invalid queue id");
		return sq_fail_put(st);
	}
	if (sq_bind_text(s, 1, qid) != SQLITE_OK) {
		sq_fail(st, "set_done");
		sq_done(s);
		return sq_fail_put(st);
	}
	if (sq_exec(st, s, "set_done") == -1)
		return sq_fail_put(st);
	return 0;
}

/* Copies a text column (NULL stays NULL).  Returns 0, or -1 on ENOMEM. */
static int
sq_col_dup(sqlite3_stmt *s, int col, char **out)
{
	const unsigned char *v;

	*out = NULL;
	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return 0;
	if ((v = sqlite3_column_text(s, col)) == NULL)
		return -1;
	if ((*out = strdup((const char *)v)) == NULL)
		return -1;
	return 0;
}

/* Copies a text column into a fixed field; "" for NULL.  Returns -1 if it
 * does not fit (a record this code did not write). */
static int
sq_col_fixed(sqlite3_stmt *s, int col, char *dst, size_t size)
{
	const unsigned char *v = sqlite3_column_text(s, col);

	if (v == NULL) {
		dst[0] = '\0';
		return 0;
	}
	return str_copy(dst, (const char *)v, size) < size ? 0 : -1;
}

static int
sq_col_action(sqlite3_stmt *s, int col, enum store_action *out)
{
	sqlite3_int64 a = sqlite3_column_int64(s, col);

	if (a < STORE_ACTION_QUEUED || a > STORE_ACTION_FAILED)
		return -1;
	*out = (enum store_action)a;
	return 0;
}

/* Fills the message's fixed fields and times from a row of SQ_MSG_COLS;
 * strings are left to the caller. */
static int
sq_row_msg(sqlite3_stmt *s, struct store_msg *m)
{
	if (sq_col_fixed(s, MC_QID, m->qid, sizeof(m->qid)) == -1 ||
	    sq_col_fixed(s, MC_CERT, m->certifier, sizeof(m->certifier)) == -1)
		return -1;
	m->arrival = (time_t)sqlite3_column_int64(s, MC_ARRIVAL);
	m->expires = (time_t)sqlite3_column_int64(s, MC_EXPIRES);
	m->queued = sqlite3_column_int(s, MC_QUEUED) != 0;
	return 0;
}

/* Same for a recipient row starting at column off. */
static int
sq_row_rcpt(sqlite3_stmt *s, int off, struct store_rcpt *r)
{
	if (sq_col_fixed(s, off + RC_STATUS, r->status, sizeof(r->status)) ==
	        -1 ||
	    sq_col_action(s, off + RC_ACTION, &r->action) == -1)
		return -1;
	r->idx = (uint32_t)sqlite3_column_int64(s, off + RC_IDX);
	r->last_attempt = (time_t)sqlite3_column_int64(s, off + RC_LAST);
	r->will_retry_until = (time_t)sqlite3_column_int64(s, off + RC_WRU);
	return 0;
}

static int
sq_final_is_orcpt(sqlite3_stmt *s, int off)
{
	return sqlite3_column_type(s, off + RC_FINAL) == SQLITE_INTEGER;
}

/* Reads every recipient of message id into m. */
static int
sq_lookup_rcpts(struct store *st, sqlite3_int64 id, struct store_msg *m)
{
	sqlite3_stmt *s = st->stmt[SQ_LOOKUP_RCPT];
	struct store_rcpt *r, *nr;
	size_t cap = 0;
	int rc;

	if (sqlite3_bind_int64(s, 1, id) != SQLITE_OK) {
		sq_fail(st, "lookup_envid");
		goto fail;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (m->nrcpt == cap) {
			cap = cap ? cap * 2 : 4;
			if (cap > SIZE_MAX / sizeof(*r) ||
			    (nr = realloc(m->rcpts, cap * sizeof(*r))) ==
			        NULL) {
				sq_errx(st, "lookup_envid: out of memory");
				goto fail;
			}
			m->rcpts = nr;
		}
		r = &m->rcpts[m->nrcpt];
		memset(r, 0, sizeof(*r));
		m->nrcpt++;
		if (sq_row_rcpt(s, 0, r) == -1) {
			sq_errx(st,
			    "lookup_envid: %s: corrupt recipient record",
			    m->qid);
			goto fail;
		}
		if (sq_col_dup(s, RC_ORCPT, &r->orcpt) == -1 ||
		    sq_col_dup(s, RC_RMTA, &r->remote_mta) == -1 ||
		    sq_col_dup(s, RC_REPLY, &r->reply) == -1) {
			sq_errx(st, "lookup_envid: out of memory");
			goto fail;
		}
		if (sq_final_is_orcpt(s, 0)) {
			if (r->orcpt != NULL &&
			    (r->final_rcpt = strdup(r->orcpt)) == NULL) {
				sq_errx(st, "lookup_envid: out of memory");
				goto fail;
			}
		} else if (sq_col_dup(s, RC_FINAL, &r->final_rcpt) == -1) {
			sq_errx(st, "lookup_envid: out of memory");
			goto fail;
		}
	}
	if (rc != SQLITE_DONE) {
		sq_fail(st, "lookup_envid");
		goto fail;
	}
	sq_done(s);
	return 0;
fail:
	sq_done(s);
	return -1;
}

static int
sq_lookup_envid(
    struct store *st, const char *envid, struct store_msg **out, size_t *n_out)
{
	sqlite3_stmt *s = st->stmt[SQ_LOOKUP_MSG];
	struct store_msg *msgs = NULL, *nm, *m;
	size_t n = 0, cap = 0;
	int rc;

	*out = NULL;
	*n_out = 0;
	if (envid == NULL)
		return sq_errx(st, "lookup_envid: no envid");
	/* Nothing longer can have been stored (put_msg refuses it). */
	if (envid[0] == '\0' ||
	    strnlen(envid, STORE_ENVID_MAX + 1) > STORE_ENVID_MAX)
		return 0;
	if (sq_bind_text(s, 1, envid) != SQLITE_OK ||
	    sqlite3_bind_int(s, 2, STORE_LOOKUP_MAX) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 3, sq_envid_hash(envid)) != SQLITE_OK) {
		sq_fail(st, "lookup_envid");
		goto fail;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 2;
			if ((nm = realloc(msgs, cap * sizeof(*nm))) == NULL) {
				sq_errx(st, "lookup_envid: out of memory");
				goto fail;
			}
			msgs = nm;
		}
		m = &msgs[n++];
		memset(m, 0, sizeof(*m));
		if (sq_row_msg(s, m) == -1) {
			sq_errx(st, "lookup_envid: corrupt message record");
			goto fail;
		}
		if (sq_col_dup(s, MC_ENVID, &m->envid) == -1 ||
		    sq_col_dup(s, MC_SENDER, &m->sender) == -1 ||
		    sq_col_dup(s, MC_RMTA, &m->reporting_mta) == -1) {
			sq_errx(st, "lookup_envid: out of memory");
			goto fail;
		}
		if (m->sender == NULL && (m->sender = strdup("")) == NULL) {
			sq_errx(st, "lookup_envid: out of memory");
			goto fail;
		}
		if (sq_lookup_rcpts(st, sqlite3_column_int64(s, MC_ID), m) ==
		    -1)
			goto fail;
	}
	if (rc != SQLITE_DONE) {
		sq_fail(st, "lookup_envid");
		goto fail;
	}
	sq_done(s);
	if (n == 0)
		return 0;
	*out = msgs;
	*n_out = n;
	return 1;
fail:
	sq_done(s);
	store_msgs_free(msgs, n);
	return -1;
}

/* One purge pass: deletes up to limit (-1: all) expired messages and
 * their recipients.  *n_out: how many messages. */
static int
sq_purge_pass(struct store *st, time_t now, int limit, size_t *n_out)
{
	sqlite3_stmt *s = st->stmt[SQ_PURGE_MSG];
	sqlite3_stmt *r = st->stmt[SQ_PURGE_RCPT];
	int rc;

	*n_out = 0;
	if (sqlite3_bind_int64(s, 1, (sqlite3_int64)now) != SQLITE_OK ||
	    sqlite3_bind_int(s, 2, limit) != SQLITE_OK) {
		sq_fail(st, "purge");
		goto fail;
	}
	/* RETURNING rows are computed by the first step, so deleting the
	 * recipients between steps is safe. */
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (sqlite3_bind_int64(r, 1, sqlite3_column_int64(s, 0)) !=
		    SQLITE_OK) {
			sq_fail(st, "purge");
			sq_done(r);
			goto fail;
		}
		if (sq_exec(st, r, "purge") == -1)
			goto fail;
		(*n_out)++;
	}
	if (rc != SQLITE_DONE) {
		sq_fail(st, "purge");
		goto fail;
	}
	sq_done(s);
	return 0;
fail:
	sq_done(s);
	return -1;
}

static int
sq_purge(struct store *st, time_t now, size_t *n_out)
{
	size_t n;
	int own;

	*n_out = 0;
	if (!sqlite3_get_autocommit(st->db)) {
		/* Inside the caller's batch: one pass, the caller commits. */
		if (sq_purge_pass(st, now, -1, n_out) == -1)
			return sq_fail_put(st);
		return 0;
	}
	do {
		if (sq_own_begin(st, "purge", &own) == -1)
			return -1;
		if (sq_purge_pass(st, now, STORE_SQLITE_PURGE_CHUNK, &n) == -1)
			return sq_own_end(st, "purge", own, 0);
		if (sq_own_end(st, "purge", own, 1) == -1)
			return -1;
		*n_out += n;
	} while (n == STORE_SQLITE_PURGE_CHUNK);
	return 0;
}

/* SQL for the address part of a "type;addr" column, as store_addr_key(). */
#define SQ_ADDR(c) \
	"lower(trim(substr(" c ", instr(" c ", ';') + 1), ' ' || char(9)))"

static sqlite3_stmt *
sq_search_stmt(struct store *st, int mask)
{
	char sql[2048];
	int n;

	if (st->search[mask] != NULL)
		return st->search[mask];
	n = snprintf(sql, sizeof(sql),
	    "SELECT " SQ_MSG_COLS ", " SQ_RCPT_RCOLS
	    " FROM msg m JOIN rcpt r ON r.msg = m.id WHERE 1%s%s%s%s%s"
	    " ORDER BY m.arrival DESC, m.id DESC, r.idx LIMIT :limit",
	    mask & SQ_F_ENVID ? " AND m.envid_h = :envid_h AND m.envid = :envid"
	                      : "",
	    mask & SQ_F_SENDER ? " AND m.sender = :sender COLLATE NOCASE" : "",
	    mask & SQ_F_RCPT
	        ? " AND (" SQ_ADDR(
	              "r.orcpt") " = :rcpt OR"
	                         " (typeof(r.final_rcpt) = 'text' AND " SQ_ADDR(
	                             "r.final_rcpt") " = :rcpt))"
	        : "",
	    mask & SQ_F_SINCE ? " AND m.arrival >= :since" : "",
	    mask & SQ_F_ACTION ? " AND r.action = :action" : "");
	if (n < 0 || (size_t)n >= sizeof(sql)) {
		sq_errx(st, "search: query too long");
		return NULL;
	}
	if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	        &st->search[mask], NULL) != SQLITE_OK) {
		sq_fail(st, "search");
		st->search[mask] = NULL;
		return NULL;
	}
	return st->search[mask];
}

static int
sq_bind_named_text(sqlite3_stmt *s, const char *name, const char *v)
{
	int i = sqlite3_bind_parameter_index(s, name);

	return i == 0 ? SQLITE_OK : sq_bind_text(s, i, v);
}

static int
sq_bind_named_int(sqlite3_stmt *s, const char *name, sqlite3_int64 v)
{
	int i = sqlite3_bind_parameter_index(s, name);

	return i == 0 ? SQLITE_OK : sqlite3_bind_int64(s, i, v);
}

static int
sq_search(struct store *st, const struct store_query *q,
    int (*fn)(void *, const struct store_msg *, const struct store_rcpt *),
    void *arg)
{
	char rkey[STORE_TEXT_MAX + 1];
	struct store_msg m;
	struct store_rcpt r;
	sqlite3_stmt *s;
	int mask = 0, rc;

	if (q == NULL || fn == NULL)
		return sq_errx(st, "search: no query or callback");
	if (q->action < -1 || q->action > STORE_ACTION_FAILED)
		return sq_errx(st, "search: invalid action %d", q->action);
	if (q->envid != NULL)
		mask |= SQ_F_ENVID;
	if (q->sender != NULL)
		mask |= SQ_F_SENDER;
	if (q->rcpt != NULL) {
		if (store_addr_key(q->rcpt, rkey, sizeof(rkey)) == -1)
			return sq_errx(
			    st, "search: rcpt longer than %d", STORE_TEXT_MAX);
		mask |= SQ_F_RCPT;
	}
	if (q->since != 0)
		mask |= SQ_F_SINCE;
	if (q->action != -1)
		mask |= SQ_F_ACTION;
	if ((s = sq_search_stmt(st, mask)) == NULL)
		return -1;
	rc = sq_bind_named_text(s, ":envid", q->envid);
	if (q->envid != NULL)
		rc |= sq_bind_named_int(s, ":envid_h", sq_envid_hash(q->envid));
	rc |= sq_bind_named_text(s, ":sender", q->sender);
	rc |= sq_bind_named_text(s, ":rcpt", q->rcpt != NULL ? rkey : NULL);
	rc |= sq_bind_named_int(s, ":since", (sqlite3_int64)q->since);
	rc |= sq_bind_named_int(s, ":action", q->action);
	rc |= sq_bind_named_int(s, ":limit",
	    q->limit == 0 || q->limit > INT64_MAX ? -1
	                                          : (sqlite3_int64)q->limit);
	if (rc != SQLITE_OK) {
		sq_fail(st, "search");
		goto fail;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&m, 0, sizeof(m));
		memset(&r, 0, sizeof(r));
		if (sq_row_msg(s, &m) == -1 ||
		    sq_row_rcpt(s, MC_COUNT, &r) == -1) {
			sq_errx(st, "search: corrupt record");
			goto fail;
		}
		/* Column text stays valid until the next step. */
		m.envid = (char *)sqlite3_column_text(s, MC_ENVID);
		m.sender = (char *)sqlite3_column_text(s, MC_SENDER);
		m.reporting_mta = (char *)sqlite3_column_text(s, MC_RMTA);
		r.orcpt = (char *)sqlite3_column_text(s, MC_COUNT + RC_ORCPT);
		r.final_rcpt = sq_final_is_orcpt(s, MC_COUNT)
		    ? r.orcpt
		    : (char *)sqlite3_column_text(s, MC_COUNT + RC_FINAL);
		r.remote_mta =
		    (char *)sqlite3_column_text(s, MC_COUNT + RC_RMTA);
		r.reply = (char *)sqlite3_column_text(s, MC_COUNT + RC_REPLY);
		if (m.sender == NULL)
			m.sender = (char *)"";
		if (fn(arg, &m, &r) != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		sq_fail(st, "search");
		goto fail;
	}
	sq_done(s);
	return 0;
fail:
	sq_done(s);
	return -1;
}

static int
sq_sync_dir(struct store *st)
{
	int fd;

	if ((fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return sq_errx(st, "sync: %s: %s", st->dir, strerror(errno));
	if (fsync(fd) == -1) {
		sq_errx(st, "sync: fsync %s: %s", st->dir, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int
sq_sync(struct store *st)
{
	int nlog = 0, nckpt = 0;

	if (!sqlite3_get_autocommit(st->db))
		return sq_errx(st, "sync: a batch is open");
	if (sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_FULL,
	        &nlog, &nckpt) != SQLITE_OK)
		return sq_fail(st, "sync: checkpoint");
	if (nlog < 0 || nckpt != nlog)
		return sq_errx(st,
		    "sync: checkpoint copied %d of %d WAL frames", nckpt, nlog);
	if (!st->dir_synced) {
		if (sq_sync_dir(st) == -1)
			return -1;
		st->dir_synced = 1;
	}
	return 0;
}

static const char *
sq_error(struct store *st)
{
	return st->err;
}

static void
sq_close(struct store *st)
{
	size_t i;

	if (st == NULL)
		return;
	for (i = 0; i < SQ_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	for (i = 0; i < SQ_F_VARIANTS; i++)
		sqlite3_finalize(st->search[i]);
	sqlite3_close(st->db);
	free(st);
}

/* Runs one statement that may return one row; *val_out (if not NULL)
 * gets its first column as an integer, or its text copied into txt. */
static int
sq_pragma(struct store *st, const char *sql, sqlite3_int64 *val_out, char *txt,
    size_t txtsize)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (val_out != NULL)
			*val_out = sqlite3_column_int64(s, 0);
		if (txt != NULL && sqlite3_column_text(s, 0) != NULL)
			str_copy(txt, (const char *)sqlite3_column_text(s, 0),
			    txtsize);
		rc = sqlite3_step(s);
	}
	if (rc != SQLITE_DONE) {
		/* finalize keeps the error message for sqlite3_errmsg() */
		sqlite3_finalize(s);
		return -1;
	}
	sqlite3_finalize(s);
	return 0;
}

/* Creates the schema in an empty file, or checks its version. */
static int
sq_schema(struct store *st, const char *path, char *err, size_t errsize)
{
	sqlite3_int64 version = 0, ntables = 0;

	/* IMMEDIATE: two handles opening at once must not both create. */
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	        SQLITE_OK ||
	    sq_pragma(st, "PRAGMA user_version", &version, NULL, 0) == -1 ||
	    sq_pragma(st, "SELECT count(*) FROM sqlite_master", &ntables, NULL,
	        0) == -1) {
		snprintf(err, errsize, "%s: %s", path, sqlite3_errmsg(st->db));
		goto fail;
	}
	if (version > STORE_SQLITE_SCHEMA) {
		snprintf(err, errsize,
		    "%s: schema version %lld is newer than this program's (%d)",
		    path, (long long)version, STORE_SQLITE_SCHEMA);
		goto fail;
	}
	if (version == 0 && ntables != 0) {
		snprintf(err, errsize,
		    "%s: not a msgtrk tracking store (no schema version, "
		    "%lld objects)",
		    path, (long long)ntables);
		goto fail;
	}
	if (version == 0 &&
	    sqlite3_exec(st->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errsize, "%s: creating the schema: %s", path,
		    sqlite3_errmsg(st->db));
		goto fail;
	}
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errsize, "%s: %s", path, sqlite3_errmsg(st->db));
		goto fail;
	}
	return 0;
fail:
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static struct store *
sq_open(const char *uri, const char *data_dir, char *err, size_t errsize)
{
	char path[PATH_MAX], mode[16] = "", pragmas[256];
	struct store *st = NULL;
	struct stat sb;
	size_t i;
	int n, rc;

	if (uri == NULL || strcmp(uri, "sqlite") != 0) {
		snprintf(err, errsize, "sqlite: unsupported store \"%.100s\"",
		    uri != NULL ? uri : "");
		return NULL;
	}
	if (data_dir == NULL || data_dir[0] == '\0') {
		snprintf(err, errsize, "sqlite: no data_dir");
		return NULL;
	}
	n = snprintf(path, sizeof(path), "%s/%s", data_dir, STORE_SQLITE_FILE);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errsize, "sqlite: data_dir path too long");
		return NULL;
	}
	/* SQLite says only "unable to open database file": say why. */
	if (stat(data_dir, &sb) == -1) {
		snprintf(err, errsize, "%s: %s", data_dir, strerror(errno));
		return NULL;
	}
	if (!S_ISDIR(sb.st_mode)) {
		snprintf(err, errsize, "%s: not a directory", data_dir);
		return NULL;
	}
	/* WAL mode creates tracking.db-wal and -shm next to the file, so
	 * the directory must be writable even when the file exists. */
	if (faccessat(AT_FDCWD, data_dir, W_OK | X_OK, AT_EACCESS) == -1) {
		snprintf(err, errsize, "%s: directory not writable: %s",
		    data_dir, strerror(errno));
		return NULL;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errsize, "sqlite: out of memory");
		return NULL;
	}
	str_copy(st->dir, data_dir, sizeof(st->dir));
	if (sqlite3_open_v2(path, &st->db,
	        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	            SQLITE_OPEN_NOMUTEX,
	        NULL) != SQLITE_OK) {
		int e = st->db != NULL ? sqlite3_system_errno(st->db) : ENOMEM;

		snprintf(err, errsize, "%s: %s%s%s%s", path,
		    st->db != NULL ? sqlite3_errmsg(st->db) : "out of memory",
		    e != 0 ? " (" : "", e != 0 ? strerror(e) : "",
		    e != 0 ? ")" : "");
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, STORE_SQLITE_BUSY_MS);
	/* journal_mode is the first statement to read the file: a garbage
	 * file fails here with "file is not a database".  Two handles
	 * turning a new file to WAL at once can get SQLITE_BUSY without the
	 * busy handler being called (SQLite avoids a deadlock that way):
	 * retry, bounded by STORE_SQLITE_BUSY_MS (only at open). */
	for (i = 0; (rc = sq_pragma(st, "PRAGMA journal_mode = WAL", NULL, mode,
	                 sizeof(mode))) == -1 &&
	     (sqlite3_errcode(st->db) & 0xff) == SQLITE_BUSY &&
	     i < STORE_SQLITE_BUSY_MS / 10;
	     i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	if (rc == -1) {
		int e = sqlite3_system_errno(st->db);

		snprintf(err, errsize, "%s: %s%s%s%s", path,
		    sqlite3_errmsg(st->db), e != 0 ? " (" : "",
		    e != 0 ? strerror(e) : "", e != 0 ? ")" : "");
		goto fail;
	}
	if (strcmp(mode, "wal") != 0) {
		snprintf(err, errsize, "%s: cannot use WAL mode (got \"%s\")",
		    path, mode);
		goto fail;
	}
	snprintf(pragmas, sizeof(pragmas),
	    "PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY;"
	    "PRAGMA mmap_size = %lld; PRAGMA wal_autocheckpoint = %d;"
	    "PRAGMA cache_size = -%d;",
	    (long long)STORE_SQLITE_MMAP_BYTES, STORE_SQLITE_AUTOCHECKPOINT,
	    STORE_SQLITE_CACHE_KIB);
	if (sqlite3_exec(st->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errsize, "%s: %s", path, sqlite3_errmsg(st->db));
		goto fail;
	}
	if (sq_schema(st, path, err, errsize) == -1)
		goto fail;
	for (i = 0; i < SQ_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
		        SQLITE_PREPARE_PERSISTENT, &st->stmt[i],
		        NULL) != SQLITE_OK) {
			snprintf(err, errsize, "%s: %s", path,
			    sqlite3_errmsg(st->db));
			goto fail;
		}
	}
	return st;
fail:
	sq_close(st);
	return NULL;
}

/* SCAFFOLD (replaced by the store branch). */
static int
sq_set_mark(struct store *st, const struct store_mark *m)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
	    "CREATE TABLE IF NOT EXISTS mark (journal TEXT PRIMARY KEY, "
	    "seg INTEGER, off INTEGER); INSERT OR REPLACE INTO mark "
	    "VALUES ('%s', %llu, %llu)",
	    m->journal, (unsigned long long)m->seg, (unsigned long long)m->off);
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		st->batch_failed = 1;
		return sq_errx(st, "set_mark: %s", sqlite3_errmsg(st->db));
	}
	return 0;
}

static int
mark_row(void *arg, int n, char **v, char **names)
{
	struct store_mark *m = arg;

	(void)names;
	if (n == 2 && v[0] && v[1]) {
		m->seg = strtoull(v[0], NULL, 10);
		m->off = strtoull(v[1], NULL, 10);
		m->journal[STORE_JOURNAL_MAX] = 1;
	}
	return 0;
}

static int
sq_get_mark(struct store *st, struct store_mark *m)
{
	char sql[256];

	m->journal[STORE_JOURNAL_MAX] = 0;
	snprintf(sql, sizeof(sql),
	    "CREATE TABLE IF NOT EXISTS mark (journal TEXT PRIMARY KEY, "
	    "seg INTEGER, off INTEGER); SELECT seg, off FROM mark WHERE "
	    "journal = '%s'",
	    m->journal);
	if (sqlite3_exec(st->db, sql, mark_row, m, NULL) != SQLITE_OK)
		return sq_errx(st, "get_mark: %s", sqlite3_errmsg(st->db));
	if (m->journal[STORE_JOURNAL_MAX] == 1) {
		m->journal[STORE_JOURNAL_MAX] = 0;
		return 1;
	}
	return 0;
}

const struct store_backend store_backend_sqlite = {
	.set_mark = sq_set_mark,
	.get_mark = sq_get_mark,
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.put_msg = sq_put_msg,
	.put_rcpt = sq_put_rcpt,
	.set_done = sq_set_done,
	.lookup_envid = sq_lookup_envid,
	.purge = sq_purge,
	.search = sq_search,
	.sync = sq_sync,
	.error = sq_error,
};
