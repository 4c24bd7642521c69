/*
 * sql_pg: the PostgreSQL driver of the tracking store (store_sql.h),
 * through libpq.  The SQL is store_sql.c's; tests/unit/test_store_pg.c
 * runs the same behaviour table against it as against SQLite.
 *
 * Connection.  The config value is a libpq URI
 * (postgresql://user:pass@host:port/db?...), handed to libpq as it is
 * (PQconnectdbParams with expand_dbname), after our defaults, so the
 * URI's own values win.  The URI may hold a password: it never goes into
 * an error message, and a URI libpq cannot parse is reported without
 * libpq's text (which quotes it).
 *
 * Bounded blocking, client side, unless the URI says otherwise:
 * - connect_timeout (PG_CONNECT_TIMEOUT s) bounds each connection
 *   attempt;
 * - tcp_user_timeout (PG_TCP_USER_TIMEOUT ms) drops the connection when
 *   data sent stays unacknowledged that long (a vanished server);
 * - keepalives (idle PG_KEEPALIVES_IDLE s, then every
 *   PG_KEEPALIVES_INTERVAL s, PG_KEEPALIVES_COUNT probes) drop an idle
 *   connection whose peer vanished while we wait for an answer;
 * - statement_timeout (PG_STATEMENT_TIMEOUT_MS ms; SET on each session
 *   unless the URI's options set it) has the server cancel a statement
 *   that runs too long (a lock wait, a huge purge).
 * None of them bounds a server that is stopped (SIGSTOP) or hung while
 * its host still runs: the kernel ACKs our data and the keepalive
 * probes, so the TCP timers never fire, and statement_timeout is a timer
 * of the stopped server itself.  Callers therefore keep store calls off
 * the event loop and bound them with a deadline (store_reader.h).
 *
 * Failures.  A lost connection makes the call in progress fail with
 * libpq's message; the next call outside a transaction reconnects once
 * (ready()), so the store comes back when the server does (the queue
 * retries its failed batches), and store_sql.c retries a failed read at
 * once when the connection was lost, so the first TRACK after a server
 * restart answers.  Inside a batch nothing is retried: the server rolled
 * the transaction back with the connection, so the batch fails.
 *
 * Durability.  Every session runs with synchronous_commit = on (SET
 * here, whatever the server's default): COMMIT returns only after the
 * transaction's WAL is flushed to disk, so a commit that returned is
 * durable, and sync() has only to check that the connection is healthy
 * and no transaction is open.
 *
 * Statements: named parameters (":qid") become $n at prepare; they are
 * prepared on the server at first run on each connection (again after
 * a reconnection) and run with binary results.  Strings are sent as
 * binary parameters (bytea columns take them as bytes), integers as text.
 * SQL_STREAM statements use single-row mode, so the whole log never sits
 * in memory at once.
 *
 * Threads.  One handle is one connection, used by one thread at a time.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "msgtrk/str.h"
#include "store/store.h"
#include "store/store_sql.h"

#define PG_CONNECT_TIMEOUT "5"
#define PG_TCP_USER_TIMEOUT "15000"
#define PG_KEEPALIVES_IDLE "10"
#define PG_KEEPALIVES_INTERVAL "5"
#define PG_KEEPALIVES_COUNT "3"
#define PG_STATEMENT_TIMEOUT_MS "30000"
/* Parameters of the widest statement (a recipient upsert has 13). */
#define PG_PARAMS_MAX 16
/* Decimal int64 with sign and NUL. */
#define PG_INT_MAX 24

struct sql_conn {
	PGconn *conn;
	int flags;
	int own_timeout; /* the URI's options set statement_timeout */
	int session_ok; /* the session settings are in place */
	unsigned int gen; /* bumped at each new connection */
	unsigned int next_id; /* statement names */
	char err[SQL_ERR_MAX];
};

struct sql_stmt {
	struct sql_conn *c;
	char name[32];
	char *sql; /* with $n */
	int flags;
	int nparams;
	char *pname[PG_PARAMS_MAX]; /* ":qid" for $1... */
	unsigned int gen; /* prepared on this connection, 0: not yet */
	const char *v[PG_PARAMS_MAX];
	int len[PG_PARAMS_MAX];
	int fmt[PG_PARAMS_MAX];
	char ints[PG_PARAMS_MAX][PG_INT_MAX];
	int running; /* executed; rows are being read */
	int streaming; /* results still due on the connection */
	PGresult *res;
	int row, nrows;
	uint64_t changes;
};

static int pg_errx(struct sql_conn *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static int
pg_errx(struct sql_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* libpq's messages end in a newline and may span lines: keep the first. */
static int
pg_fail_msg(struct sql_conn *c, const char *msg)
{
	int n = (int)strcspn(msg != NULL ? msg : "", "\r\n");

	if (PQstatus(c->conn) == CONNECTION_BAD)
		return pg_errx(c, "postgresql connection lost: %.*s", n,
		    msg != NULL && n > 0 ? msg : "no detail");
	return pg_errx(c, "postgresql: %.*s", n,
	    msg != NULL && n > 0 ? msg : "unknown error");
}

/* Records the error of a failed result (or of the connection when res
 * is NULL) and frees res. */
static int
pg_fail(struct sql_conn *c, PGresult *res)
{
	const char *m = NULL;

	if (res != NULL)
		m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (m == NULL)
		m = PQerrorMessage(c->conn);
	pg_fail_msg(c, m);
	PQclear(res);
	return -1;
}

static const char *
pg_error(struct sql_conn *c)
{
	return c->err;
}

static const char *
pg_where(struct sql_conn *c)
{
	(void)c;
	return "open: postgresql";
}

/* Runs a statement without parameters; 0 if it gave status want. */
static int
pg_simple(struct sql_conn *c, const char *sql, ExecStatusType want)
{
	PGresult *res = PQexec(c->conn, sql);

	if (PQresultStatus(res) != want)
		return pg_fail(c, res);
	PQclear(res);
	return 0;
}

/* The settings of every session (store.h, and the header above). */
static int
pg_session(struct sql_conn *c)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SET synchronous_commit = on;%s%s",
	    c->own_timeout ? ""
	                   : " SET statement_timeout = " PG_STATEMENT_TIMEOUT_MS
	                     ";",
	    c->flags & STORE_OPEN_READONLY
	        ? " SET default_transaction_read_only = on;"
	        : "");
	if (pg_simple(c, sql, PGRES_COMMAND_OK) == -1)
		return -1;
	c->session_ok = 1;
	return 0;
}

static int
pg_ready(struct sql_conn *c, int in_tx)
{
	if (PQstatus(c->conn) == CONNECTION_OK && c->session_ok)
		return 0;
	/* A lost connection took the transaction with it. */
	if (in_tx)
		return pg_errx(
		    c, "postgresql connection lost during the batch");
	if (PQstatus(c->conn) != CONNECTION_OK) {
		c->session_ok = 0;
		PQreset(c->conn);
		if (PQstatus(c->conn) != CONNECTION_OK)
			return pg_fail(c, NULL);
		c->gen++;
	}
	return pg_session(c);
}

static int
pg_lost(struct sql_conn *c)
{
	return PQstatus(c->conn) == CONNECTION_BAD;
}

/* Copies sql into s->sql with each :name turned into $n (the same name,
 * the same n), skipping string literals and :: casts. */
static int
pg_translate(struct sql_stmt *s, const char *sql)
{
	const char *p = sql, *e;
	char *o;
	int i;

	if ((o = s->sql = malloc(strlen(sql) * 2 + 1)) == NULL)
		return -1;
	while (*p != '\0') {
		if (*p == '\'') {
			e = strchr(p + 1, '\'');
			e = e != NULL ? e + 1 : p + strlen(p);
			memcpy(o, p, (size_t)(e - p));
			o += e - p;
			p = e;
		} else if (p[0] == ':' && p[1] == ':') {
			*o++ = *p++;
			*o++ = *p++;
		} else if (p[0] == ':' &&
		    ((p[1] >= 'a' && p[1] <= 'z') || p[1] == '_')) {
			for (e = p + 1; (*e >= 'a' && *e <= 'z') ||
			     (*e >= '0' && *e <= '9') || *e == '_';
			     e++)
				;
			for (i = 0; i < s->nparams; i++)
				if (strlen(s->pname[i]) == (size_t)(e - p) &&
				    memcmp(s->pname[i], p, (size_t)(e - p)) ==
				        0)
					break;
			if (i == s->nparams) {
				if (i == PG_PARAMS_MAX ||
				    (s->pname[i] = strndup(
				         p, (size_t)(e - p))) == NULL)
					return -1;
				s->nparams++;
			}
			o += sprintf(o, "$%d", i + 1);
			p = e;
		} else
			*o++ = *p++;
	}
	*o = '\0';
	return 0;
}

static void
pg_finalize(struct sql_stmt *s)
{
	int i;

	if (s == NULL)
		return;
	PQclear(s->res);
	for (i = 0; i < s->nparams; i++)
		free(s->pname[i]);
	free(s->sql);
	free(s);
}

static struct sql_stmt *
pg_prepare(struct sql_conn *c, const char *sql, int flags)
{
	struct sql_stmt *s;

	if ((s = calloc(1, sizeof(*s))) == NULL || pg_translate(s, sql) == -1) {
		pg_finalize(s);
		pg_errx(c,
		    "postgresql: out of memory, or more than %d "
		    "parameters",
		    PG_PARAMS_MAX);
		return NULL;
	}
	s->c = c;
	s->flags = flags;
	s->row = -1;
	snprintf(s->name, sizeof(s->name), "msgtrk_%u", ++c->next_id);
	return s;
}

static int
pg_param(struct sql_stmt *s, const char *name)
{
	int i;

	for (i = 0; i < s->nparams; i++)
		if (strcmp(s->pname[i], name) == 0)
			return i;
	return -1;
}

static int
pg_bind_text(struct sql_stmt *s, const char *name, const char *v)
{
	int i = pg_param(s, name);

	if (i == -1)
		return 0;
	s->v[i] = v;
	s->len[i] = v != NULL ? (int)strlen(v) : 0;
	s->fmt[i] = 1;
	return 0;
}

static int
pg_bind_int(struct sql_stmt *s, const char *name, int64_t v)
{
	int i = pg_param(s, name);

	if (i == -1)
		return 0;
	snprintf(s->ints[i], sizeof(s->ints[i]), "%lld", (long long)v);
	s->v[i] = s->ints[i];
	s->len[i] = 0;
	s->fmt[i] = 0;
	return 0;
}

/* Reads what is left of a streamed result. */
static void
pg_drain(struct sql_stmt *s)
{
	PGresult *res;

	while ((res = PQgetResult(s->c->conn)) != NULL)
		PQclear(res);
	s->streaming = 0;
}

static void
pg_reset(struct sql_stmt *s)
{
	PQclear(s->res);
	s->res = NULL;
	if (s->streaming)
		pg_drain(s);
	s->running = 0;
	s->row = -1;
	s->nrows = 0;
	memset(s->v, 0, sizeof(s->v));
}

/* Sends the statement (prepared first on this connection if need be). */
static int
pg_run(struct sql_stmt *s)
{
	struct sql_conn *c = s->c;
	PGresult *res;
	const char *ct;

	if (s->nparams > 0 && s->gen != c->gen) {
		res = PQprepare(c->conn, s->name, s->sql, s->nparams, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			return pg_fail(c, res);
		PQclear(res);
		s->gen = c->gen;
	}
	s->running = 1;
	s->changes = 0;
	if (s->flags & SQL_STREAM) {
		int sent = s->nparams > 0
		    ? PQsendQueryPrepared(
		          c->conn, s->name, s->nparams, s->v, s->len, s->fmt, 1)
		    : PQsendQueryParams(
		          c->conn, s->sql, 0, NULL, NULL, NULL, NULL, 1);

		if (!sent)
			return pg_fail(c, NULL);
		s->streaming = 1;
		if (!PQsetSingleRowMode(c->conn)) {
			pg_fail(c, NULL);
			pg_drain(s);
			return -1;
		}
		return 0;
	}
	res = s->nparams > 0
	    ? PQexecPrepared(
	          c->conn, s->name, s->nparams, s->v, s->len, s->fmt, 1)
	    : PQexecParams(c->conn, s->sql, 0, NULL, NULL, NULL, NULL, 1);
	switch (PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
	case PGRES_COMMAND_OK:
		ct = PQcmdTuples(res);
		s->changes = strtoull(ct, NULL, 10);
		s->res = res;
		s->nrows = PQntuples(res);
		s->row = -1;
		return 0;
	default:
		return pg_fail(c, res);
	}
}

static int
pg_step(struct sql_stmt *s)
{
	PGresult *res;

	if (!s->running && pg_run(s) == -1)
		return SQL_ERROR;
	if (!s->streaming) {
		if (s->row + 1 < s->nrows) {
			s->row++;
			return SQL_ROW;
		}
		return SQL_DONE;
	}
	PQclear(s->res);
	s->res = NULL;
	if ((res = PQgetResult(s->c->conn)) == NULL) {
		s->streaming = 0;
		return SQL_DONE;
	}
	switch (PQresultStatus(res)) {
	case PGRES_SINGLE_TUPLE:
		s->res = res;
		s->nrows = 1;
		s->row = 0;
		return SQL_ROW;
	case PGRES_TUPLES_OK:
		s->changes = strtoull(PQcmdTuples(res), NULL, 10);
		PQclear(res);
		pg_drain(s);
		return SQL_DONE;
	default:
		pg_fail(s->c, res);
		pg_drain(s);
		return SQL_ERROR;
	}
}

static int
pg_column_null(struct sql_stmt *s, int col)
{
	return s->res == NULL || s->row < 0 || PQgetisnull(s->res, s->row, col);
}

/* Integers come in binary: boolean, int2, int4 or int8, big-endian. */
static int64_t
pg_column_int(struct sql_stmt *s, int col)
{
	const unsigned char *p;
	uint64_t v = 0;
	int n, i;

	if (pg_column_null(s, col))
		return 0;
	n = PQgetlength(s->res, s->row, col);
	p = (const unsigned char *)PQgetvalue(s->res, s->row, col);
	if (n != 1 && n != 2 && n != 4 && n != 8)
		return 0;
	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	switch (n) {
	case 2:
		return (int16_t)v;
	case 4:
		return (int32_t)v;
	default:
		return (int64_t)v;
	}
}

/* libpq NUL-terminates every value, binary ones too. */
static const char *
pg_column_text(struct sql_stmt *s, int col, size_t *len)
{
	*len = 0;
	if (pg_column_null(s, col))
		return NULL;
	*len = (size_t)PQgetlength(s->res, s->row, col);
	return PQgetvalue(s->res, s->row, col);
}

static uint64_t
pg_changes(struct sql_stmt *s)
{
	return s->changes;
}

static int
pg_begin(struct sql_conn *c)
{
	return pg_simple(c, "BEGIN", PGRES_COMMAND_OK);
}

static int
pg_commit(struct sql_conn *c)
{
	PGresult *res;

	/* COMMIT of a transaction in error rolls back and says "ROLLBACK"
	 * without an error: check the state first. */
	if (PQtransactionStatus(c->conn) != PQTRANS_INTRANS)
		return pg_fail_msg(c,
		    PQstatus(c->conn) == CONNECTION_BAD
		        ? PQerrorMessage(c->conn)
		        : "the transaction failed; roll it back");
	res = PQexec(c->conn, "COMMIT");
	if (PQresultStatus(res) != PGRES_COMMAND_OK ||
	    strcmp(PQcmdStatus(res), "COMMIT") != 0)
		return pg_fail(c, res);
	PQclear(res);
	return 0;
}

static int
pg_rollback(struct sql_conn *c)
{
	/* With the connection gone the server has rolled back already; a
	 * failed COMMIT has ended the transaction too. */
	if (PQstatus(c->conn) != CONNECTION_OK ||
	    PQtransactionStatus(c->conn) == PQTRANS_IDLE)
		return 0;
	return pg_simple(c, "ROLLBACK", PGRES_COMMAND_OK);
}

static int
pg_sync(struct sql_conn *c)
{
	/* With synchronous_commit = on (pg_session), a COMMIT that
	 * returned is on disk: sync() vouches for the connection only. */
	if (PQstatus(c->conn) != CONNECTION_OK)
		return pg_fail_msg(c, PQerrorMessage(c->conn));
	if (PQtransactionStatus(c->conn) != PQTRANS_IDLE)
		return pg_errx(c, "postgresql: the connection is not idle");
	return 0;
}

static void
pg_close(struct sql_conn *c)
{
	if (c == NULL)
		return;
	PQfinish(c->conn);
	free(c);
}

/* libpq prints server notices and warnings to stderr by default; a
 * backend never logs (store.h). */
static void
pg_notice_ignore(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static struct sql_conn *
pg_open(
    const char *uri, const char *data_dir, int flags, char *err, size_t errsize)
{
	/* Our defaults first: with expand_dbname the URI's parameters
	 * override earlier keywords. */
	const char *const keys[] = { "connect_timeout", "tcp_user_timeout",
		"keepalives", "keepalives_idle", "keepalives_interval",
		"keepalives_count", "fallback_application_name", "dbname",
		NULL };
	const char *vals[] = { PG_CONNECT_TIMEOUT, PG_TCP_USER_TIMEOUT, "1",
		PG_KEEPALIVES_IDLE, PG_KEEPALIVES_INTERVAL, PG_KEEPALIVES_COUNT,
		"msgtrkd", uri, NULL };
	PQconninfoOption *opts, *o;
	struct sql_conn *c;
	char *perr = NULL;
	int own_timeout = 0;

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
	for (o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, "options") == 0 && o->val != NULL &&
		    strstr(o->val, "statement_timeout") != NULL)
			own_timeout = 1;
	PQconninfoFree(opts);
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errsize, "postgresql: out of memory");
		return NULL;
	}
	c->flags = flags;
	c->own_timeout = own_timeout;
	c->gen = 1;
	c->conn = PQconnectdbParams(keys, vals, 1);
	if (c->conn == NULL) {
		snprintf(err, errsize, "postgresql: out of memory");
		goto fail;
	}
	/* Kept across PQreset(). */
	PQsetNoticeProcessor(c->conn, pg_notice_ignore, NULL);
	if (PQstatus(c->conn) != CONNECTION_OK) {
		const char *m = PQerrorMessage(c->conn);

		snprintf(err, errsize, "open: postgresql: %.*s",
		    (int)strcspn(m, "\r\n"), m);
		goto fail;
	}
	if (pg_session(c) == -1) {
		snprintf(err, errsize, "open: %s", c->err);
		goto fail;
	}
	return c;
fail:
	pg_close(c);
	return NULL;
}

const struct sql_driver sql_driver_pg = {
	.name = "postgresql",
	.dialect = SQL_DIALECT_PG,
	.open = pg_open,
	.close = pg_close,
	.where = pg_where,
	.ready = pg_ready,
	.lost = pg_lost,
	.prepare = pg_prepare,
	.finalize = pg_finalize,
	.bind_text = pg_bind_text,
	.bind_int = pg_bind_int,
	.step = pg_step,
	.reset = pg_reset,
	.column_null = pg_column_null,
	.column_int = pg_column_int,
	.column_text = pg_column_text,
	.changes = pg_changes,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.sync = pg_sync,
	.error = pg_error,
};

static struct store *
pg_store_open(
    const char *uri, const char *data_dir, int flags, char *err, size_t errsize)
{
	return store_sql_open(
	    &sql_driver_pg, uri, data_dir, flags, err, errsize);
}

const struct store_backend store_backend_pg =
    STORE_SQL_BACKEND("postgresql", pg_store_open);
