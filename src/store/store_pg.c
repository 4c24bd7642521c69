/*
 * store_pg: the tracking store in a PostgreSQL database, through libpq.
 * See store.h for the contract; the semantics are those of store_sqlite.c
 * (the reference backend) and tests/unit/test_store_pg.c runs the same
 * behaviour table against this one.
 *
 * Connection.  The config value is a libpq URI
 * (postgresql://user:pass@host:port/db?...), handed to libpq as it is
 * (PQconnectdbParams with expand_dbname), after our defaults for
 * connect_timeout and tcp_user_timeout, so the URI's own values win.  The
 * URI may hold a password: it never goes into an error message, and a URI
 * libpq cannot parse is reported without libpq's text (which quotes it).
 *
 * Bounded blocking.  Connecting waits at most connect_timeout; every
 * statement at most statement_timeout (SET on each connection); a peer
 * that vanishes without a FIN is dropped after tcp_user_timeout.  A lost
 * connection makes the call in progress fail (-1, with libpq's message);
 * the next call outside a batch tries one PQreset(), so the store comes
 * back when the server does (the queue retries its failed batches).  A
 * read outside a batch that finds the connection broken resets and tries
 * once more at once, so the first TRACK after a server restart answers.
 * Inside a batch nothing is retried: the server rolled the transaction
 * back with the connection, so the batch fails and the caller rolls back.
 *
 * Durability.  sync() has nothing to do: with PostgreSQL's default
 * synchronous_commit = on, COMMIT returns only after the transaction's
 * WAL is flushed to disk, so everything committed is already durable.
 * (A server run with synchronous_commit = off breaks that promise; the
 * journal then covers only what the queue still holds.)
 *
 * Encoding.  Every string but the queue id is stored as bytea: the
 * store.h strings are bytes (a peer's reply, an xtext-decoded envid), and
 * a text column would refuse bytes that are not valid in the database
 * encoding, which would wedge the queue's retries.  The case-insensitive
 * filters of search() compare keys computed here (sender_key, orcpt_key,
 * final_key: ASCII lower case, address part only), so they do not depend
 * on the server's locale either.
 *
 * Threads.  One handle is one connection, used by one thread at a time
 * (store.h): the daemon's writer and readers hold two connections.
 */
#include <endian.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "msgtrk/str.h"
#include "store/store.h"

/* Version of the schema below, kept in msgtrk_schema. */
#define STORE_PG_SCHEMA 1
/* Defaults the URI may override.  connect_timeout is in seconds; it
 * bounds each connection attempt (libpq: "Maximum time to wait while
 * connecting").  tcp_user_timeout (milliseconds) bounds how long data
 * sent to a vanished server stays unacknowledged before the kernel drops
 * the connection. */
#define STORE_PG_CONNECT_TIMEOUT "5"
#define STORE_PG_TCP_USER_TIMEOUT "15000"
/* Milliseconds any one statement may run (a purge chunk, a batch's
 * statement, a search): beyond it the server cancels it. */
#define STORE_PG_STATEMENT_TIMEOUT_MS "30000"
/* Messages deleted per purge statement when purge() runs on its own. */
#define STORE_PG_PURGE_CHUNK 512
/* Key of the advisory lock that serialises schema creation: handles that
 * open an empty database at once must not both create it. */
#define STORE_PG_SCHEMA_LOCK "7166130761327460353"
#define STORE_PG_ERR_MAX 512
/* Parameters of the widest statement (a recipient upsert). */
#define STORE_PG_PARAMS_MAX 12
/* Decimal int64 with sign and NUL. */
#define STORE_PG_INT_MAX 24

static const char *const schema_sql[] = {
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
	"CREATE INDEX msg_envid ON msg (envid) WHERE envid IS NOT NULL",
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
	"INSERT INTO msgtrk_schema (version) VALUES (1)",
};

enum pg_stmt {
	PG_MSG_UPSERT,
	PG_RCPT_TRIM,
	PG_RCPT_UPSERT,
	PG_RCPT_PUT,
	PG_SET_DONE,
	PG_LOOKUP,
	PG_PURGE,
	PG_COUNT
};

#define PG_RCPT_COLS \
	"orcpt, orcpt_key, final_rcpt, final_key, action, status," \
	" remote_mta, last_attempt, will_retry, reply"
#define PG_RCPT_SET \
	" orcpt = excluded.orcpt, orcpt_key = excluded.orcpt_key," \
	" final_rcpt = excluded.final_rcpt, final_key = excluded.final_key," \
	" action = excluded.action, status = excluded.status," \
	" remote_mta = excluded.remote_mta," \
	" last_attempt = excluded.last_attempt," \
	" will_retry = excluded.will_retry, reply = excluded.reply"
#define PG_MSG_COLS \
	"m.qid, m.envid, m.certifier, m.sender, m.reporting_mta," \
	" m.arrival, m.expires, m.queued"
#define PG_RCPT_RCOLS \
	"r.idx, r.orcpt, r.final_rcpt, r.action, r.status, r.remote_mta," \
	" r.last_attempt, r.will_retry, r.reply"

/* Column positions in the SELECTs built from PG_MSG_COLS and
 * PG_RCPT_RCOLS. */
enum {
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

struct pg_stmt_def {
	const char *name;
	const char *sql;
	int nparams;
};

/* $1 of the recipient statements is the message (id or qid); $2..$12
 * are bound by pg_bind_rcpt(). */
static const struct pg_stmt_def stmt_defs[PG_COUNT] = {
	[PG_MSG_UPSERT] = { "msgtrk_msg_upsert",
	    "INSERT INTO msg (qid, envid, certifier, sender, sender_key,"
	    " reporting_mta, arrival, expires, queued)"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
	    " ON CONFLICT (qid) DO UPDATE SET envid = excluded.envid,"
	    " certifier = excluded.certifier, sender = excluded.sender,"
	    " sender_key = excluded.sender_key,"
	    " reporting_mta = excluded.reporting_mta,"
	    " arrival = excluded.arrival, expires = excluded.expires,"
	    " queued = excluded.queued RETURNING id",
	    9 },
	[PG_RCPT_TRIM] = { "msgtrk_rcpt_trim",
	    "DELETE FROM rcpt WHERE msg = $1 AND idx >= $2", 2 },
	[PG_RCPT_UPSERT] = { "msgtrk_rcpt_upsert",
	    "INSERT INTO rcpt (msg, idx, " PG_RCPT_COLS ") VALUES"
	    " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
	    " ON CONFLICT (msg, idx) DO UPDATE SET" PG_RCPT_SET,
	    12 },
	[PG_RCPT_PUT] = { "msgtrk_rcpt_put",
	    "INSERT INTO rcpt (msg, idx, " PG_RCPT_COLS ")"
	    " SELECT id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12"
	    " FROM msg WHERE qid = $1"
	    " ON CONFLICT (msg, idx) DO UPDATE SET" PG_RCPT_SET,
	    12 },
	[PG_SET_DONE] = { "msgtrk_set_done",
	    "UPDATE msg SET queued = false WHERE qid = $1", 1 },
	/* One statement, so one snapshot: a message and its recipients
	 * are never seen half-written by the other handle. */
	[PG_LOOKUP] = { "msgtrk_lookup",
	    "SELECT " PG_MSG_COLS ", " PG_RCPT_RCOLS ", m.id"
	    " FROM (SELECT * FROM msg WHERE envid = $1 ORDER BY id"
	    " LIMIT $2) m LEFT JOIN rcpt r ON r.msg = m.id"
	    " ORDER BY m.id, r.idx",
	    2 },
	/* $2 NULL: no limit (LIMIT NULL is LIMIT ALL). */
	[PG_PURGE] = { "msgtrk_purge",
	    "DELETE FROM msg WHERE id IN (SELECT id FROM msg"
	    " WHERE NOT queued AND expires < $1 LIMIT $2)",
	    2 },
};

/* search(): one statement per combination of filters, prepared on first
 * use on each connection. */
enum {
	PG_F_ENVID = 1 << 0,
	PG_F_SENDER = 1 << 1,
	PG_F_RCPT = 1 << 2,
	PG_F_SINCE = 1 << 3,
	PG_F_ACTION = 1 << 4,
	PG_F_VARIANTS = 1 << 5
};

struct store {
	PGconn *conn;
	int prepared; /* stmt_defs are prepared on this connection */
	unsigned char search_prepared[PG_F_VARIANTS];
	int batch; /* begin() ran and no commit/rollback since */
	int batch_failed; /* a put failed inside begin/commit */
	char err[STORE_PG_ERR_MAX];
};

/* Parameters of one statement: text values (format 0) or bytea (1). */
struct pg_params {
	int n;
	const char *v[STORE_PG_PARAMS_MAX];
	int len[STORE_PG_PARAMS_MAX];
	int fmt[STORE_PG_PARAMS_MAX];
	char ints[STORE_PG_PARAMS_MAX][STORE_PG_INT_MAX];
};

static int pg_errx(struct store *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static int
pg_errx(struct store *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* libpq's messages end in a newline and may span lines: keep the first. */
static int
pg_fail_msg(struct store *st, const char *op, const char *msg)
{
	int n = (int)strcspn(msg != NULL ? msg : "", "\r\n");

	if (PQstatus(st->conn) == CONNECTION_BAD)
		return pg_errx(st, "%s: postgresql connection lost: %.*s", op,
		    n, msg != NULL && n > 0 ? msg : "no detail");
	return pg_errx(st, "%s: postgresql: %.*s", op, n,
	    msg != NULL && n > 0 ? msg : "unknown error");
}

/* Records the error of a failed result (or of the connection when res
 * is NULL) and frees res. */
static int
pg_fail(struct store *st, const char *op, PGresult *res)
{
	const char *m = NULL;

	if (res != NULL)
		m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (m == NULL)
		m = PQerrorMessage(st->conn);
	pg_fail_msg(st, op, m);
	PQclear(res);
	return -1;
}

/* A failure inside the caller's batch poisons it: commit() refuses. */
static int
pg_fail_put(struct store *st)
{
	if (st->batch)
		st->batch_failed = 1;
	return -1;
}

static void
pg_param_bytes(struct pg_params *p, const char *v)
{
	p->v[p->n] = v;
	p->len[p->n] = v != NULL ? (int)strlen(v) : 0;
	p->fmt[p->n] = 1;
	p->n++;
}

static void
pg_param_int(struct pg_params *p, long long v)
{
	snprintf(p->ints[p->n], sizeof(p->ints[p->n]), "%lld", v);
	p->v[p->n] = p->ints[p->n];
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->n++;
}

static void
pg_param_text(struct pg_params *p, const char *v)
{
	p->v[p->n] = v;
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	p->n++;
}

/* Runs a statement without parameters; 0 if it gave status want. */
static int
pg_simple(
    struct store *st, const char *op, const char *sql, ExecStatusType want)
{
	PGresult *res = PQexec(st->conn, sql);

	if (PQresultStatus(res) != want)
		return pg_fail(st, op, res);
	PQclear(res);
	return 0;
}

/* Sets up a fresh connection: the statement bound and the prepared
 * statements. */
static int
pg_session(struct store *st, const char *op)
{
	PGresult *res;
	size_t i;

	memset(st->search_prepared, 0, sizeof(st->search_prepared));
	st->prepared = 0;
	/* DEALLOCATE: a session set up halfway before may hold some. */
	if (pg_simple(st, op,
	        "SET statement_timeout = " STORE_PG_STATEMENT_TIMEOUT_MS,
	        PGRES_COMMAND_OK) == -1 ||
	    pg_simple(st, op, "DEALLOCATE ALL", PGRES_COMMAND_OK) == -1)
		return -1;
	for (i = 0; i < PG_COUNT; i++) {
		res = PQprepare(st->conn, stmt_defs[i].name, stmt_defs[i].sql,
		    stmt_defs[i].nparams, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			return pg_fail(st, op, res);
		PQclear(res);
	}
	st->prepared = 1;
	return 0;
}

/* Makes sure the connection is usable before a call: outside a batch,
 * one PQreset() if it was lost.  Inside a batch a lost connection took
 * the transaction with it: the batch fails. */
static int
pg_ready(struct store *st, const char *op)
{
	if (PQstatus(st->conn) == CONNECTION_OK && st->prepared)
		return 0;
	if (st->batch) {
		st->batch_failed = 1;
		return pg_errx(
		    st, "%s: postgresql connection lost during the batch", op);
	}
	if (PQstatus(st->conn) != CONNECTION_OK) {
		PQreset(st->conn);
		if (PQstatus(st->conn) != CONNECTION_OK)
			return pg_fail(st, op, NULL);
	}
	return pg_session(st, op);
}

/* After a failed read outside a batch: 1 if the connection was lost and
 * is back (the caller tries once more), else 0. */
static int
pg_retry(struct store *st, const char *op)
{
	char saved[STORE_PG_ERR_MAX];

	if (st->batch || PQstatus(st->conn) != CONNECTION_BAD)
		return 0;
	str_copy(saved, st->err, sizeof(saved));
	if (pg_ready(st, op) == -1) {
		/* report the first failure, not the reconnect's */
		str_copy(st->err, saved, sizeof(st->err));
		return 0;
	}
	return 1;
}

static PGresult *
pg_exec(struct store *st, enum pg_stmt s, const struct pg_params *p)
{
	return PQexecPrepared(
	    st->conn, stmt_defs[s].name, p->n, p->v, p->len, p->fmt, 1);
}

/* Keys of one recipient, as search() compares them. */
struct pg_rcpt_keys {
	char orcpt[STORE_TEXT_MAX + 1];
	char final[STORE_TEXT_MAX + 1];
};

/* Binds $2..$12 of PG_RCPT_UPSERT / PG_RCPT_PUT ($1 is the caller's).
 * The fields were checked (store_check_rcpt), so the keys fit. */
static void
pg_bind_rcpt(
    struct pg_params *p, const struct store_rcpt *r, struct pg_rcpt_keys *k)
{
	pg_param_int(p, r->idx);
	pg_param_bytes(p, r->orcpt);
	if (r->orcpt != NULL &&
	    store_addr_key(r->orcpt, k->orcpt, sizeof(k->orcpt)) == 0)
		pg_param_bytes(p, k->orcpt);
	else
		pg_param_bytes(p, NULL);
	pg_param_bytes(p, r->final_rcpt);
	if (r->final_rcpt != NULL &&
	    store_addr_key(r->final_rcpt, k->final, sizeof(k->final)) == 0)
		pg_param_bytes(p, k->final);
	else
		pg_param_bytes(p, NULL);
	pg_param_int(p, (long long)r->action);
	pg_param_bytes(p, r->status[0] != '\0' ? r->status : NULL);
	pg_param_bytes(p, r->remote_mta);
	pg_param_int(p, (long long)r->last_attempt);
	pg_param_int(p, (long long)r->will_retry_until);
	pg_param_bytes(p, r->reply);
}

/* Opens a transaction if no batch is open; *own_out says whether this
 * call opened it (and must end it). */
static int
pg_own_begin(struct store *st, const char *op, int *own_out)
{
	*own_out = 0;
	if (st->batch)
		return 0;
	if (pg_simple(st, op, "BEGIN", PGRES_COMMAND_OK) == -1)
		return -1;
	*own_out = 1;
	return 0;
}

static int
pg_own_end(struct store *st, const char *op, int own, int ok)
{
	char saved[STORE_PG_ERR_MAX];

	if (!own)
		return ok ? 0 : pg_fail_put(st);
	if (ok && pg_simple(st, op, "COMMIT", PGRES_COMMAND_OK) == 0)
		return 0;
	if (PQstatus(st->conn) == CONNECTION_OK &&
	    PQtransactionStatus(st->conn) != PQTRANS_IDLE) {
		str_copy(saved, st->err, sizeof(saved));
		(void)pg_simple(st, op, "ROLLBACK", PGRES_COMMAND_OK);
		str_copy(st->err, saved, sizeof(st->err));
	}
	return -1;
}

static int
pg_begin(struct store *st)
{
	if (st->batch)
		return pg_errx(st, "begin: a batch is already open");
	if (pg_ready(st, "begin") == -1)
		return -1;
	st->batch_failed = 0;
	if (pg_simple(st, "begin", "BEGIN", PGRES_COMMAND_OK) == -1)
		return -1;
	st->batch = 1;
	return 0;
}

static int
pg_commit(struct store *st)
{
	PGresult *res;

	if (!st->batch)
		return pg_errx(st, "commit: no batch is open");
	if (st->batch_failed)
		return pg_errx(
		    st, "commit: a write in this batch failed; roll it back");
	/* COMMIT of a transaction in error rolls back and says "ROLLBACK"
	 * without an error: check the state first. */
	if (PQtransactionStatus(st->conn) != PQTRANS_INTRANS) {
		st->batch_failed = 1;
		return pg_fail_msg(st, "commit",
		    PQstatus(st->conn) == CONNECTION_BAD
		        ? PQerrorMessage(st->conn)
		        : "the transaction failed; roll it back");
	}
	res = PQexec(st->conn, "COMMIT");
	if (PQresultStatus(res) != PGRES_COMMAND_OK ||
	    strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		st->batch_failed = 1;
		return pg_fail(st, "commit", res);
	}
	PQclear(res);
	st->batch = 0;
	return 0;
}

static int
pg_rollback(struct store *st)
{
	st->batch_failed = 0;
	if (!st->batch)
		return 0;
	st->batch = 0;
	/* With the connection gone the server has rolled back already; a
	 * failed COMMIT has ended the transaction too. */
	if (PQstatus(st->conn) != CONNECTION_OK ||
	    PQtransactionStatus(st->conn) == PQTRANS_IDLE)
		return 0;
	return pg_simple(st, "rollback", "ROLLBACK", PGRES_COMMAND_OK);
}

/* Reads a big-endian int8 (binary result) column. */
static long long
pg_col_int(const PGresult *res, int row, int col)
{
	uint64_t v;

	if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8)
		return 0;
	memcpy(&v, PQgetvalue(res, row, col), sizeof(v));
	return (long long)be64toh(v);
}

static int
pg_put_msg(struct store *st, const struct store_msg *m)
{
	char sender_key[STORE_TEXT_MAX + 1], idbuf[STORE_PG_INT_MAX];
	struct pg_rcpt_keys *keys = NULL;
	struct pg_params p;
	PGresult *res;
	size_t i;
	int own;

	if (store_check_msg(m, st->err, sizeof(st->err)) == -1)
		return pg_fail_put(st);
	if (pg_ready(st, "put_msg") == -1)
		return pg_fail_put(st);
	if ((keys = malloc(sizeof(*keys))) == NULL) {
		pg_errx(st, "put_msg: out of memory");
		return pg_fail_put(st);
	}
	str_copy(sender_key, m->sender, sizeof(sender_key));
	str_lower(sender_key);
	if (pg_own_begin(st, "put_msg", &own) == -1) {
		free(keys);
		return pg_fail_put(st);
	}

	memset(&p, 0, sizeof(p));
	pg_param_text(&p, m->qid);
	pg_param_bytes(&p, m->envid);
	pg_param_bytes(&p, m->certifier);
	pg_param_bytes(&p, m->sender);
	pg_param_bytes(&p, sender_key);
	pg_param_bytes(&p, m->reporting_mta);
	pg_param_int(&p, (long long)m->arrival);
	pg_param_int(&p, (long long)m->expires);
	pg_param_text(&p, m->queued ? "true" : "false");
	res = pg_exec(st, PG_MSG_UPSERT, &p);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    PQgetlength(res, 0, 0) != 8) {
		pg_fail(st, "put_msg", res);
		goto fail;
	}
	snprintf(idbuf, sizeof(idbuf), "%lld", pg_col_int(res, 0, 0));
	PQclear(res);

	/* Replace: drop recipients beyond the new list, upsert the rest. */
	memset(&p, 0, sizeof(p));
	pg_param_text(&p, idbuf);
	pg_param_int(&p, (long long)m->nrcpt);
	res = pg_exec(st, PG_RCPT_TRIM, &p);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_fail(st, "put_msg", res);
		goto fail;
	}
	PQclear(res);
	for (i = 0; i < m->nrcpt; i++) {
		memset(&p, 0, sizeof(p));
		pg_param_text(&p, idbuf);
		pg_bind_rcpt(&p, &m->rcpts[i], keys);
		res = pg_exec(st, PG_RCPT_UPSERT, &p);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			pg_fail(st, "put_msg", res);
			goto fail;
		}
		PQclear(res);
	}
	free(keys);
	return pg_own_end(st, "put_msg", own, 1);
fail:
	free(keys);
	return pg_own_end(st, "put_msg", own, 0);
}

static int
pg_put_rcpt(struct store *st, const char *qid, const struct store_rcpt *r)
{
	struct pg_rcpt_keys *keys;
	struct pg_params p;
	PGresult *res;
	int changed;

	if (store_check_rcpt("put_rcpt", qid, r, st->err, sizeof(st->err)) ==
	    -1)
		return pg_fail_put(st);
	if (pg_ready(st, "put_rcpt") == -1)
		return pg_fail_put(st);
	if ((keys = malloc(sizeof(*keys))) == NULL) {
		pg_errx(st, "put_rcpt: out of memory");
		return pg_fail_put(st);
	}
	memset(&p, 0, sizeof(p));
	pg_param_text(&p, qid);
	pg_bind_rcpt(&p, r, keys);
	res = pg_exec(st, PG_RCPT_PUT, &p);
	free(keys);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_fail(st, "put_rcpt", res);
		return pg_fail_put(st);
	}
	changed = strcmp(PQcmdTuples(res), "0") != 0;
	PQclear(res);
	if (!changed) {
		pg_errx(st, "put_rcpt: %s: no such message", qid);
		return pg_fail_put(st);
	}
	return 0;
}

static int
pg_set_done(struct store *st, const char *qid)
{
	struct pg_params p;
	PGresult *res;

	if (store_check_qid(qid) == -1) {
		pg_errx(st, "set_done: invalid queue id");
		return pg_fail_put(st);
	}
	if (pg_ready(st, "set_done") == -1)
		return pg_fail_put(st);
	memset(&p, 0, sizeof(p));
	pg_param_text(&p, qid);
	res = pg_exec(st, PG_SET_DONE, &p);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_fail(st, "set_done", res);
		return pg_fail_put(st);
	}
	PQclear(res);
	return 0;
}

/* Copies a bytea or text column (NULL stays NULL).  Returns -1 on ENOMEM
 * or on a NUL byte inside (a record this code did not write). */
static int
pg_col_dup(const PGresult *res, int row, int col, char **out)
{
	int n;

	*out = NULL;
	if (PQgetisnull(res, row, col))
		return 0;
	n = PQgetlength(res, row, col);
	if (memchr(PQgetvalue(res, row, col), '\0', (size_t)n) != NULL)
		return -1;
	if ((*out = malloc((size_t)n + 1)) == NULL)
		return -1;
	memcpy(*out, PQgetvalue(res, row, col), (size_t)n);
	(*out)[n] = '\0';
	return 0;
}

/* Copies a column into a fixed field; "" for NULL.  Returns -1 if it
 * does not fit. */
static int
pg_col_fixed(const PGresult *res, int row, int col, char *dst, size_t size)
{
	int n = PQgetlength(res, row, col);

	dst[0] = '\0';
	if (PQgetisnull(res, row, col))
		return 0;
	if ((size_t)n >= size ||
	    memchr(PQgetvalue(res, row, col), '\0', (size_t)n) != NULL)
		return -1;
	memcpy(dst, PQgetvalue(res, row, col), (size_t)n);
	dst[n] = '\0';
	return 0;
}

/* Reads a binary smallint column. */
static int
pg_col_action(const PGresult *res, int row, int col, enum store_action *out)
{
	uint16_t v;
	int16_t a;

	if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 2)
		return -1;
	memcpy(&v, PQgetvalue(res, row, col), sizeof(v));
	a = (int16_t)be16toh(v);
	if (a < STORE_ACTION_QUEUED || a > STORE_ACTION_FAILED)
		return -1;
	*out = (enum store_action)a;
	return 0;
}

/* Fills the message's fixed fields and times from a row of PG_MSG_COLS;
 * strings are left to the caller. */
static int
pg_row_msg(const PGresult *res, int row, struct store_msg *m)
{
	if (pg_col_fixed(res, row, MC_QID, m->qid, sizeof(m->qid)) == -1 ||
	    pg_col_fixed(
	        res, row, MC_CERT, m->certifier, sizeof(m->certifier)) == -1 ||
	    PQgetlength(res, row, MC_QUEUED) != 1)
		return -1;
	m->arrival = (time_t)pg_col_int(res, row, MC_ARRIVAL);
	m->expires = (time_t)pg_col_int(res, row, MC_EXPIRES);
	m->queued = PQgetvalue(res, row, MC_QUEUED)[0] != 0;
	return 0;
}

/* Same for a recipient row starting at column off. */
static int
pg_row_rcpt(const PGresult *res, int row, int off, struct store_rcpt *r)
{
	if (pg_col_fixed(res, row, off + RC_STATUS, r->status,
	        sizeof(r->status)) == -1 ||
	    pg_col_action(res, row, off + RC_ACTION, &r->action) == -1)
		return -1;
	r->idx = (uint32_t)pg_col_int(res, row, off + RC_IDX);
	r->last_attempt = (time_t)pg_col_int(res, row, off + RC_LAST);
	r->will_retry_until = (time_t)pg_col_int(res, row, off + RC_WRU);
	return 0;
}

/* Builds the messages of a PG_LOOKUP result.  Rows come ordered by
 * message, then idx; a message without recipients has one row of NULLs
 * (LEFT JOIN). */
static int
pg_lookup_rows(struct store *st, const PGresult *res, struct store_msg **out,
    size_t *n_out)
{
	struct store_msg *msgs = NULL, *m = NULL;
	struct store_rcpt *r, *nr;
	int row, nrows = PQntuples(res), idcol = MC_COUNT + RC_COUNT;
	long long id = 0;
	size_t n = 0, cap = 0, rcap = 0;

	for (row = 0; row < nrows; row++) {
		if (m == NULL || pg_col_int(res, row, idcol) != id) {
			if (n == cap) {
				cap = cap ? cap * 2 : 2;
				if ((m = realloc(msgs, cap * sizeof(*m))) ==
				    NULL) {
					pg_errx(
					    st, "lookup_envid: out of memory");
					goto fail;
				}
				msgs = m;
			}
			m = &msgs[n++];
			memset(m, 0, sizeof(*m));
			rcap = 0;
			id = pg_col_int(res, row, idcol);
			if (pg_row_msg(res, row, m) == -1) {
				pg_errx(
				    st, "lookup_envid: corrupt message record");
				goto fail;
			}
			if (pg_col_dup(res, row, MC_ENVID, &m->envid) == -1 ||
			    pg_col_dup(res, row, MC_SENDER, &m->sender) == -1 ||
			    pg_col_dup(res, row, MC_RMTA, &m->reporting_mta) ==
			        -1) {
				pg_errx(st,
				    "lookup_envid: %s: corrupt or "
				    "out of memory",
				    m->qid);
				goto fail;
			}
			if (m->sender == NULL &&
			    (m->sender = strdup("")) == NULL) {
				pg_errx(st, "lookup_envid: out of memory");
				goto fail;
			}
		}
		if (PQgetisnull(res, row, MC_COUNT + RC_IDX))
			continue; /* no recipients */
		if (m->nrcpt == rcap) {
			rcap = rcap ? rcap * 2 : 4;
			if (rcap > SIZE_MAX / sizeof(*r) ||
			    (nr = realloc(m->rcpts, rcap * sizeof(*r))) ==
			        NULL) {
				pg_errx(st, "lookup_envid: out of memory");
				goto fail;
			}
			m->rcpts = nr;
		}
		r = &m->rcpts[m->nrcpt];
		memset(r, 0, sizeof(*r));
		m->nrcpt++;
		if (pg_row_rcpt(res, row, MC_COUNT, r) == -1 ||
		    pg_col_dup(res, row, MC_COUNT + RC_ORCPT, &r->orcpt) ==
		        -1 ||
		    pg_col_dup(res, row, MC_COUNT + RC_FINAL, &r->final_rcpt) ==
		        -1 ||
		    pg_col_dup(res, row, MC_COUNT + RC_RMTA, &r->remote_mta) ==
		        -1 ||
		    pg_col_dup(res, row, MC_COUNT + RC_REPLY, &r->reply) ==
		        -1) {
			pg_errx(st,
			    "lookup_envid: %s: corrupt recipient record",
			    m->qid);
			goto fail;
		}
	}
	if (n == 0)
		return 0;
	*out = msgs;
	*n_out = n;
	return 1;
fail:
	store_msgs_free(msgs, n);
	return -1;
}

static int
pg_lookup_envid(
    struct store *st, const char *envid, struct store_msg **out, size_t *n_out)
{
	struct pg_params p;
	PGresult *res;
	int rc, tries = 0;

	*out = NULL;
	*n_out = 0;
	if (envid == NULL)
		return pg_errx(st, "lookup_envid: no envid");
	/* Nothing longer can have been stored (put_msg refuses it). */
	if (envid[0] == '\0' ||
	    strnlen(envid, STORE_ENVID_MAX + 1) > STORE_ENVID_MAX)
		return 0;
again:
	if (pg_ready(st, "lookup_envid") == -1)
		return -1;
	memset(&p, 0, sizeof(p));
	pg_param_bytes(&p, envid);
	pg_param_int(&p, STORE_LOOKUP_MAX);
	res = pg_exec(st, PG_LOOKUP, &p);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_fail(st, "lookup_envid", res);
		if (tries++ == 0 && pg_retry(st, "lookup_envid"))
			goto again;
		return -1;
	}
	rc = pg_lookup_rows(st, res, out, n_out);
	PQclear(res);
	return rc;
}

/* One purge statement: deletes up to limit (0: all) expired messages;
 * their recipients go with them (ON DELETE CASCADE). */
static int
pg_purge_pass(struct store *st, time_t now, int limit, size_t *n_out)
{
	struct pg_params p;
	PGresult *res;

	*n_out = 0;
	memset(&p, 0, sizeof(p));
	pg_param_int(&p, (long long)now);
	if (limit > 0)
		pg_param_int(&p, limit);
	else
		pg_param_text(&p, NULL);
	res = pg_exec(st, PG_PURGE, &p);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return pg_fail(st, "purge", res);
	*n_out = (size_t)strtoull(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return 0;
}

static int
pg_purge(struct store *st, time_t now, size_t *n_out)
{
	size_t n;

	*n_out = 0;
	if (pg_ready(st, "purge") == -1)
		return pg_fail_put(st);
	if (st->batch) {
		/* Inside the caller's batch: one pass, the caller commits. */
		if (pg_purge_pass(st, now, 0, n_out) == -1)
			return pg_fail_put(st);
		return 0;
	}
	/* Each chunk is one statement, so its own transaction. */
	do {
		if (pg_purge_pass(st, now, STORE_PG_PURGE_CHUNK, &n) == -1)
			return -1;
		*n_out += n;
	} while (n == STORE_PG_PURGE_CHUNK);
	return 0;
}

static int
pg_search_stmt(struct store *st, int mask, char *name, size_t namesize)
{
	char sql[2048];
	PGresult *res;
	int n, i = 1;
	char envid[32] = "", sender[48] = "", rcpt[96] = "", since[40] = "",
	     action[40] = "";

	snprintf(name, namesize, "msgtrk_search_%d", mask);
	if (st->search_prepared[mask])
		return 0;
	/* Placeholders are numbered in the order the filters appear. */
	if (mask & PG_F_ENVID)
		snprintf(envid, sizeof(envid), " AND m.envid = $%d", i++);
	if (mask & PG_F_SENDER)
		snprintf(
		    sender, sizeof(sender), " AND m.sender_key = $%d", i++);
	if (mask & PG_F_RCPT) {
		snprintf(rcpt, sizeof(rcpt),
		    " AND (r.orcpt_key = $%d OR r.final_key = $%d)", i, i);
		i++;
	}
	if (mask & PG_F_SINCE)
		snprintf(since, sizeof(since), " AND m.arrival >= $%d", i++);
	if (mask & PG_F_ACTION)
		snprintf(action, sizeof(action), " AND r.action = $%d", i++);
	n = snprintf(sql, sizeof(sql),
	    "SELECT " PG_MSG_COLS ", " PG_RCPT_RCOLS
	    " FROM msg m JOIN rcpt r ON r.msg = m.id WHERE true%s%s%s%s%s"
	    " ORDER BY m.arrival DESC, m.id DESC, r.idx LIMIT $%d",
	    envid, sender, rcpt, since, action, i);
	if (n < 0 || (size_t)n >= sizeof(sql))
		return pg_errx(st, "search: query too long");
	res = PQprepare(st->conn, name, sql, i, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return pg_fail(st, "search", res);
	PQclear(res);
	st->search_prepared[mask] = 1;
	return 0;
}

/* Hands one row of a search result to fn; strings point into res. */
static int
pg_search_row(struct store *st, const PGresult *res,
    int (*fn)(void *, const struct store_msg *, const struct store_rcpt *),
    void *arg, int *stop)
{
	struct store_msg m;
	struct store_rcpt r;
	const int cols[] = { MC_ENVID, MC_SENDER, MC_RMTA, MC_COUNT + RC_ORCPT,
		MC_COUNT + RC_FINAL, MC_COUNT + RC_RMTA, MC_COUNT + RC_REPLY };
	char *s[sizeof(cols) / sizeof(cols[0])];
	size_t i;

	memset(&m, 0, sizeof(m));
	memset(&r, 0, sizeof(r));
	if (pg_row_msg(res, 0, &m) == -1 ||
	    pg_row_rcpt(res, 0, MC_COUNT, &r) == -1)
		return pg_errx(st, "search: corrupt record");
	/* libpq NUL-terminates every value, binary ones too. */
	for (i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
		int n = PQgetlength(res, 0, cols[i]);

		s[i] = PQgetisnull(res, 0, cols[i])
		    ? NULL
		    : PQgetvalue(res, 0, cols[i]);
		if (s[i] != NULL && strlen(s[i]) != (size_t)n)
			return pg_errx(st, "search: corrupt record");
	}
	m.envid = s[0];
	m.sender = s[1] != NULL ? s[1] : (char *)"";
	m.reporting_mta = s[2];
	r.orcpt = s[3];
	r.final_rcpt = s[4];
	r.remote_mta = s[5];
	r.reply = s[6];
	if (fn(arg, &m, &r) != 0)
		*stop = 1;
	return 0;
}

static int
pg_search(struct store *st, const struct store_query *q,
    int (*fn)(void *, const struct store_msg *, const struct store_rcpt *),
    void *arg)
{
	char rkey[STORE_TEXT_MAX + 1], skey[STORE_TEXT_MAX + 1], name[64];
	struct pg_params p;
	PGresult *res;
	int mask = 0, rc = 0, stop = 0, sent;

	if (q == NULL || fn == NULL)
		return pg_errx(st, "search: no query or callback");
	if (q->action < -1 || q->action > STORE_ACTION_FAILED)
		return pg_errx(st, "search: invalid action %d", q->action);
	if (q->envid != NULL)
		mask |= PG_F_ENVID;
	if (q->sender != NULL) {
		if (str_copy(skey, q->sender, sizeof(skey)) >= sizeof(skey))
			return pg_errx(st, "search: sender longer than %d",
			    STORE_TEXT_MAX);
		str_lower(skey);
		mask |= PG_F_SENDER;
	}
	if (q->rcpt != NULL) {
		if (store_addr_key(q->rcpt, rkey, sizeof(rkey)) == -1)
			return pg_errx(
			    st, "search: rcpt longer than %d", STORE_TEXT_MAX);
		mask |= PG_F_RCPT;
	}
	if (q->since != 0)
		mask |= PG_F_SINCE;
	if (q->action != -1)
		mask |= PG_F_ACTION;
	if (pg_ready(st, "search") == -1 ||
	    pg_search_stmt(st, mask, name, sizeof(name)) == -1)
		return -1;
	memset(&p, 0, sizeof(p));
	if (mask & PG_F_ENVID)
		pg_param_bytes(&p, q->envid);
	if (mask & PG_F_SENDER)
		pg_param_bytes(&p, skey);
	if (mask & PG_F_RCPT)
		pg_param_bytes(&p, rkey);
	if (mask & PG_F_SINCE)
		pg_param_int(&p, (long long)q->since);
	if (mask & PG_F_ACTION)
		pg_param_int(&p, q->action);
	if (q->limit == 0 || q->limit > INT64_MAX)
		pg_param_text(&p, NULL);
	else
		pg_param_int(&p, (long long)q->limit);
	/* Row by row: the whole log never sits in memory at once. */
	sent = PQsendQueryPrepared(st->conn, name, p.n, p.v, p.len, p.fmt, 1);
	if (!sent || !PQsetSingleRowMode(st->conn)) {
		if (sent)
			while ((res = PQgetResult(st->conn)) != NULL)
				PQclear(res);
		return pg_fail(st, "search", NULL);
	}
	/* Every result is read, even after fn stopped or a row failed: the
	 * connection is usable again only then. */
	while ((res = PQgetResult(st->conn)) != NULL) {
		switch (PQresultStatus(res)) {
		case PGRES_SINGLE_TUPLE:
			if (rc == 0 && !stop &&
			    pg_search_row(st, res, fn, arg, &stop) == -1)
				rc = -1;
			PQclear(res);
			break;
		case PGRES_TUPLES_OK:
			PQclear(res);
			break;
		default:
			if (rc == 0)
				pg_fail(st, "search", res);
			else
				PQclear(res);
			rc = -1;
			break;
		}
	}
	return rc;
}

static int
pg_sync(struct store *st)
{
	if (st->batch)
		return pg_errx(st, "sync: a batch is open");
	/* Nothing to do: with synchronous_commit = on (PostgreSQL's
	 * default), a COMMIT that succeeded is already on disk. */
	return 0;
}

static const char *
pg_error(struct store *st)
{
	return st->err;
}

static void
pg_close(struct store *st)
{
	if (st == NULL)
		return;
	PQfinish(st->conn);
	free(st);
}

/* Creates the schema in a database without it, or checks its version,
 * in one transaction under an advisory lock. */
static int
pg_schema(struct store *st, char *err, size_t errsize)
{
	PGresult *res = NULL;
	long long version = 0;
	size_t i;
	int have_schema, have_tables;

	if (pg_simple(st, "open", "BEGIN", PGRES_COMMAND_OK) == -1)
		goto fail;
	res = PQexec(st->conn,
	    "SELECT pg_advisory_xact_lock(" STORE_PG_SCHEMA_LOCK "),"
	    " to_regclass('msgtrk_schema') IS NOT NULL,"
	    " to_regclass('msg') IS NOT NULL"
	    " OR to_regclass('rcpt') IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		pg_fail(st, "open", res);
		res = NULL;
		goto fail;
	}
	have_schema = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	have_tables = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	PQclear(res);
	res = NULL;
	if (have_schema) {
		res =
		    PQexec(st->conn, "SELECT max(version) FROM msgtrk_schema");
		if (PQresultStatus(res) != PGRES_TUPLES_OK ||
		    PQntuples(res) != 1) {
			pg_fail(st, "open", res);
			res = NULL;
			goto fail;
		}
		version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		res = NULL;
		if (version > STORE_PG_SCHEMA) {
			pg_errx(st,
			    "open: postgresql: schema version %lld is newer "
			    "than this program's (%d)",
			    version, STORE_PG_SCHEMA);
			goto fail;
		}
		if (version < 1) {
			pg_errx(st,
			    "open: postgresql: msgtrk_schema holds "
			    "no version");
			goto fail;
		}
	} else if (have_tables) {
		pg_errx(st,
		    "open: postgresql: not a msgtrk tracking store "
		    "(tables msg or rcpt exist without msgtrk_schema)");
		goto fail;
	} else {
		for (i = 0; i < sizeof(schema_sql) / sizeof(schema_sql[0]); i++)
			if (pg_simple(st, "open: creating the schema",
			        schema_sql[i], PGRES_COMMAND_OK) == -1)
				goto fail;
	}
	if (pg_simple(st, "open", "COMMIT", PGRES_COMMAND_OK) == -1)
		goto fail;
	return 0;
fail:
	PQclear(res);
	snprintf(err, errsize, "%s", st->err);
	if (PQstatus(st->conn) == CONNECTION_OK &&
	    PQtransactionStatus(st->conn) != PQTRANS_IDLE)
		PQclear(PQexec(st->conn, "ROLLBACK"));
	return -1;
}

/* libpq prints server notices and warnings to stderr by default; a
 * backend never logs (store.h). */
static void
pg_notice_ignore(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static struct store *
pg_open(const char *uri, const char *data_dir, char *err, size_t errsize)
{
	/* Our defaults first: with expand_dbname the URI's parameters
	 * override earlier keywords. */
	const char *const keys[] = { "connect_timeout", "tcp_user_timeout",
		"fallback_application_name", "dbname", NULL };
	const char *vals[] = { STORE_PG_CONNECT_TIMEOUT,
		STORE_PG_TCP_USER_TIMEOUT, "msgtrkd", uri, NULL };
	PQconninfoOption *opts;
	struct store *st;
	char *perr = NULL;

	(void)data_dir;
	if (uri == NULL || strncmp(uri, "postgresql://", 13) != 0) {
		snprintf(err, errsize,
		    "postgresql: the store must be a postgresql:// URI");
		return NULL;
	}
	/* libpq's parse errors quote the URI, password included. */
	if ((opts = PQconninfoParse(uri, &perr)) == NULL) {
		PQfreemem(perr);
		snprintf(err, errsize, "postgresql: invalid connection URI");
		return NULL;
	}
	PQconninfoFree(opts);
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errsize, "postgresql: out of memory");
		return NULL;
	}
	st->conn = PQconnectdbParams(keys, vals, 1);
	if (st->conn == NULL) {
		snprintf(err, errsize, "postgresql: out of memory");
		goto fail;
	}
	/* Kept across PQreset(). */
	PQsetNoticeProcessor(st->conn, pg_notice_ignore, NULL);
	if (PQstatus(st->conn) != CONNECTION_OK) {
		const char *m = PQerrorMessage(st->conn);

		snprintf(err, errsize, "open: postgresql: %.*s",
		    (int)strcspn(m, "\r\n"), m);
		goto fail;
	}
	if (pg_schema(st, err, errsize) == -1)
		goto fail;
	if (pg_session(st, "open") == -1) {
		snprintf(err, errsize, "%s", st->err);
		goto fail;
	}
	return st;
fail:
	pg_close(st);
	return NULL;
}

/* SCAFFOLD (replaced by the store branch). */
static int
pg_set_mark(struct store *st, const struct store_mark *m)
{
	(void)st;
	(void)m;
	return 0;
}

static int
pg_get_mark(struct store *st, struct store_mark *m)
{
	(void)st;
	(void)m;
	return 0;
}

const struct store_backend store_backend_pg = {
	.set_mark = pg_set_mark,
	.get_mark = pg_get_mark,
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.put_msg = pg_put_msg,
	.put_rcpt = pg_put_rcpt,
	.set_done = pg_set_done,
	.lookup_envid = pg_lookup_envid,
	.purge = pg_purge,
	.search = pg_search,
	.sync = pg_sync,
	.error = pg_error,
};
