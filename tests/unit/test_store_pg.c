/*
 * test_store_pg: the PostgreSQL store backend against a private server
 * that this program starts (initdb + pg_ctl on a free 127.0.0.1 port, in
 * a fresh temporary directory) and stops at the end.  The behaviour table
 * is store_cases.c's, shared with test_store.c (the SQLite backend is the
 * reference), plus what only a server has: errors raised by the server,
 * lost connections, reconnection, credentials that must not leak into
 * messages.
 *
 * Without PostgreSQL binaries (pg_config --bindir, or MSGTRK_PG_BIN), or
 * when the server cannot be started, it fails (make test installs them).
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store/store.h"
#include "store_cases.h"
#include "store_pg_server.h"
#include "table.h"

static const struct store_backend *B;

static size_t
count_rows(const char *table)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	return (size_t)raw_int(sql);
}

/* An empty database (no schema) and a handle on it. */
struct tmp {
	char err[512];
	struct store *st;
};

static void
db_empty(void)
{
	raw_exec("DROP TABLE IF EXISTS sent, rcpt, msg, mark, msgtrk_schema "
	         "CASCADE");
}

static void
tmp_open(struct tmp *t)
{
	memset(t, 0, sizeof(*t));
	db_empty();
	t->st = B->open(pg.uri, "/nonexistent", 0, t->err, sizeof(t->err));
	if (t->st == NULL)
		fail_msg("open: %s", t->err);
}

static void
tmp_done(struct tmp *t)
{
	B->close(t->st);
	t->st = NULL;
}

static void
assert_no_password(const char *s)
{
	if (strstr(s, PG_PASSWORD) != NULL)
		fail_msg("message holds the password: %s", s);
}

/* The store of the shared cases (store_cases.c): the database emptied
 * for each case. */
static struct store *
pgc_open(int flags, char *err, size_t errsize)
{
	return B->open(pg.uri, NULL, flags, err, errsize);
}

static void
pgc_discard(struct store *st)
{
	B->close(st);
}

static long long
pgc_raw_int(const char *sql)
{
	return raw_int(sql);
}

static struct store_cases pg_cases = {
	.name = "store_pg",
	.empty = db_empty,
	.open = pgc_open,
	.discard = pgc_discard,
	.raw_exec = raw_exec,
	.raw_int = pgc_raw_int,
	.schema_sql = { "SELECT count(*) FROM msgtrk_schema",
	    "SELECT (version = 3)::int FROM msgtrk_schema" },
	.collide_sql = NULL, /* envids are compared exactly */
	.mt_msgs = 1000,
	.mt_sync_every = 1,
};

/* Beyond the shared rows: bytea may hold a NUL, and the server's own
 * message for a missing table. */
static const struct sc_corrupt_row corrupt_rows[] = {
	{ "nul byte in reply", "UPDATE rcpt SET reply = '\\x410042'",
	    "lookup: Q1: corrupt recipient record" },
	{ "table dropped", "DROP TABLE rcpt",
	    "lookup: postgresql: relation \"rcpt\" does not exist" },
};

/*
 * Batches: errors the server raises inside one.
 */
static void
test_batches_server(void **state)
{
	struct tmp t;
	struct sc_mk k;

	(void)state;
	tmp_open(&t);
	/* a server-side error inside the batch (the transaction is then
	 * aborted on the server): commit refuses too */
	raw_exec("ALTER TABLE msg ADD CONSTRAINT no_q2 CHECK (qid <> 'Q2')");
	assert_int_equal(B->begin(t.st), 0);
	sc_mk_msg(&k, "Q1", "e1@x", 1);
	sc_put(B, t.st, &k.m);
	sc_mk_msg(&k, "Q2", "e2@x", 1);
	assert_int_equal(B->put_msg(t.st, &k.m), -1);
	assert_non_null(strstr(B->error(t.st), "put_msg: postgresql: "));
	assert_int_equal(B->commit(t.st), -1);
	assert_int_equal(B->rollback(t.st), 0);
	raw_exec("ALTER TABLE msg DROP CONSTRAINT no_q2");
	assert_int_equal(count_rows("msg"), 0);
	/* outside a batch, a failing put_msg leaves nothing half-written */
	raw_exec("ALTER TABLE rcpt ADD CONSTRAINT no_idx1 CHECK (idx <> 1)");
	sc_mk_msg(&k, "Q3", "e3@x", 2);
	assert_int_equal(B->put_msg(t.st, &k.m), -1);
	raw_exec("ALTER TABLE rcpt DROP CONSTRAINT no_idx1");
	assert_int_equal(count_rows("msg"), 0);
	assert_int_equal(count_rows("rcpt"), 0);
	/* and the next batch is clean */
	sc_mk_msg(&k, "Q1", "e1@x", 1);
	assert_int_equal(B->begin(t.st), 0);
	sc_put(B, t.st, &k.m);
	assert_int_equal(B->commit(t.st), 0);
	assert_int_equal(count_rows("msg"), 1);
	tmp_done(&t);
}

/*
 * The server goes away and comes back.
 */
static void
test_restart(void **state)
{
	struct store_msg *out;
	struct store *rd;
	struct tmp t;
	struct sc_mk k;
	size_t n;

	(void)state;
	tmp_open(&t);
	rd = B->open(pg.uri, NULL, 0, t.err, sizeof(t.err));
	assert_non_null(rd);
	sc_mk_msg(&k, "Q1", "e1@x", 1);
	sc_put(B, t.st, &k.m);

	/* down: every call fails with a message, never blocks for long */
	assert_int_equal(pg_stop(), 0);
	sc_mk_msg(&k, "Q2", "e2@x", 1);
	assert_int_equal(B->put_msg(t.st, &k.m), -1);
	assert_non_null(strstr(B->error(t.st), "put_msg: postgresql"));
	assert_no_password(B->error(t.st));
	assert_int_equal(B->begin(t.st), -1);
	assert_non_null(strstr(B->error(t.st), "begin: postgresql"));
	assert_no_password(B->error(t.st));
	assert_int_equal(B->rollback(t.st), 0);
	out = (struct store_msg *)1;
	assert_int_equal(B->lookup(rd, "e1@x", SC_CERT, &out, &n), -1);
	assert_null(out);
	assert_non_null(strstr(B->error(rd), "lookup: postgresql"));
	assert_no_password(B->error(rd));

	/* back: the next calls reconnect */
	assert_int_equal(pg_start(), 0);
	assert_int_equal(B->begin(t.st), 0);
	sc_put(B, t.st, &k.m);
	assert_int_equal(B->commit(t.st), 0);
	assert_int_equal(B->lookup(rd, "e2@x", SC_CERT, &out, &n), 1);
	store_msgs_free(out, n);

	/* lost inside a batch: the batch fails, nothing of it lands */
	assert_int_equal(B->begin(t.st), 0);
	sc_mk_msg(&k, "Q3", "e3@x", 1);
	sc_put(B, t.st, &k.m);
	assert_int_equal(pg_stop(), 0);
	assert_int_equal(pg_start(), 0);
	sc_mk_msg(&k, "Q4", "e4@x", 1);
	assert_int_equal(B->put_msg(t.st, &k.m), -1);
	assert_int_equal(B->put_msg(t.st, &k.m), -1); /* no reset mid-batch */
	assert_non_null(strstr(B->error(t.st), "lost during the batch"));
	assert_int_equal(B->commit(t.st), -1);
	assert_int_equal(B->rollback(t.st), 0);
	assert_int_equal(count_rows("msg"), 2);
	/* a reader that missed the restart answers on its first call */
	assert_int_equal(B->lookup(rd, "e1@x", SC_CERT, &out, &n), 1);
	store_msgs_free(out, n);
	/* the writer is back for the next batch */
	assert_int_equal(B->begin(t.st), 0);
	sc_put(B, t.st, &k.m);
	assert_int_equal(B->commit(t.st), 0);
	assert_int_equal(count_rows("msg"), 3);
	B->close(rd);
	tmp_done(&t);
}

/*
 * sync() vouches for the connection: -1 once it was lost, until a call
 * reconnects.  (It used to return 0 whatever the state.)
 */
static void
test_sync_health(void **state)
{
	struct tmp t;
	struct sc_mk k;

	(void)state;
	tmp_open(&t);
	sc_mk_msg(&k, "Q1", "e1@x", 1);
	sc_put(B, t.st, &k.m);
	assert_int_equal(B->sync(t.st), 0);
	assert_int_equal(pg_stop(), 0);
	assert_int_equal(B->put_msg(t.st, &k.m), -1);
	assert_int_equal(B->sync(t.st), -1);
	assert_non_null(strstr(B->error(t.st), "sync: postgresql"));
	assert_no_password(B->error(t.st));
	assert_int_equal(pg_start(), 0);
	assert_int_equal(B->begin(t.st), 0);
	sc_put(B, t.st, &k.m);
	assert_int_equal(B->commit(t.st), 0);
	assert_int_equal(B->sync(t.st), 0);
	tmp_done(&t);
}

/* The option of the one TCP connection to the server besides the admin
 * one. */
static int
store_sockopt(int level, int name)
{
	struct sockaddr_in sin;
	socklen_t len;
	int fd, found = -1, v = -1;

	for (fd = 0; fd < 1024; fd++) {
		len = sizeof(sin);
		if (fd == PQsocket(pg.admin) ||
		    getpeername(fd, (struct sockaddr *)&sin, &len) == -1 ||
		    sin.sin_family != AF_INET || ntohs(sin.sin_port) != pg.port)
			continue;
		if (found != -1)
			fail_msg(
			    "two connections to the server: %d, %d", found, fd);
		found = fd;
	}
	if (found == -1)
		fail_msg("no connection to the server");
	len = sizeof(v);
	if (getsockopt(found, level, name, &v, &len) == -1)
		fail_msg("getsockopt: %s", strerror(errno));
	return v;
}

/* Client-side bounds: set unless the URI sets them. */
static void
test_client_bounds(void **state)
{
	struct store_msg *out;
	char uri[512], err[512];
	struct store *st;
	PGresult *res;
	double t0;
	size_t n;

	(void)state;
	db_empty();
	(void)admin();
	st = B->open(pg.uri, NULL, 0, err, sizeof(err));
	if (st == NULL)
		fail_msg("open: %s", err);
	assert_int_equal(store_sockopt(SOL_SOCKET, SO_KEEPALIVE), 1);
	assert_int_equal(store_sockopt(IPPROTO_TCP, TCP_KEEPIDLE), 10);
	assert_int_equal(store_sockopt(IPPROTO_TCP, TCP_KEEPINTVL), 5);
	assert_int_equal(store_sockopt(IPPROTO_TCP, TCP_KEEPCNT), 3);
	assert_int_equal(store_sockopt(IPPROTO_TCP, TCP_USER_TIMEOUT), 15000);
	B->close(st);
	/* the URI's own values win, statement_timeout included */
	snprintf(uri, sizeof(uri),
	    "%s?keepalives_idle=33&tcp_user_timeout=777"
	    "&options=-c%%20statement_timeout%%3D300",
	    pg.uri);
	st = B->open(uri, NULL, 0, err, sizeof(err));
	if (st == NULL)
		fail_msg("open: %s", err);
	assert_int_equal(store_sockopt(IPPROTO_TCP, TCP_KEEPIDLE), 33);
	assert_int_equal(store_sockopt(IPPROTO_TCP, TCP_USER_TIMEOUT), 777);
	/* a lookup that waits on a lock is cancelled by the server */
	res = PQexec(admin(), "BEGIN; LOCK TABLE msg IN ACCESS EXCLUSIVE MODE");
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	t0 = sc_now();
	assert_int_equal(B->lookup(st, "e@x", SC_CERT, &out, &n), -1);
	assert_true(sc_now() - t0 < 5.0);
	assert_non_null(strstr(B->error(st), "statement timeout"));
	raw_exec("ROLLBACK");
	assert_int_equal(B->lookup(st, "e@x", SC_CERT, &out, &n), 0);
	B->close(st);
}

/* A schema 1 database (no mark table, msg_envid on envid alone) opens:
 * read-only as it is, read-write upgraded. */
static void
test_upgrade_v1(void **state)
{
	struct store_msg *out;
	struct store_mark m;
	struct store *ro;
	struct sc_mk k;
	struct tmp t;
	size_t n;

	(void)state;
	tmp_open(&t);
	sc_mk_msg(&k, "Q1", "e1@x", 2);
	sc_put(B, t.st, &k.m);
	tmp_done(&t);
	raw_exec(
	    "DROP TABLE mark; DROP INDEX msg_envid_cert; DROP TABLE sent;"
	    "CREATE INDEX msg_envid ON msg (envid) WHERE envid IS NOT NULL;"
	    "UPDATE msgtrk_schema SET version = 1");
	ro = B->open(pg.uri, NULL, STORE_OPEN_READONLY, t.err, sizeof(t.err));
	if (ro == NULL)
		fail_msg("open read-only: %s", t.err);
	assert_int_equal(B->lookup(ro, "e1@x", SC_CERT, &out, &n), 1);
	sc_assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	memset(&m, 0, sizeof(m));
	snprintf(m.journal, sizeof(m.journal), "j");
	assert_int_equal(B->get_mark(ro, &m), -1);
	assert_int_equal(B->put_msg(ro, &k.m), -1);
	assert_non_null(strstr(B->error(ro), "read-only transaction"));
	B->close(ro);
	assert_int_equal(raw_int("SELECT version FROM msgtrk_schema"), 1);
	t.st = B->open(pg.uri, NULL, 0, t.err, sizeof(t.err));
	if (t.st == NULL)
		fail_msg("open: %s", t.err);
	assert_int_equal(raw_int("SELECT version FROM msgtrk_schema"), 3);
	assert_int_equal(raw_int("SELECT count(*) FROM pg_class WHERE relname"
	                         " IN ('mark', 'msg_envid_cert', 'sent',"
	                         " 'sent_login')"),
	    4);
	assert_int_equal(
	    raw_int(
	        "SELECT count(*) FROM pg_class WHERE relname = 'msg_envid'"),
	    0);
	assert_int_equal(B->lookup(t.st, "e1@x", SC_CERT, &out, &n), 1);
	sc_assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	assert_int_equal(B->get_mark(t.st, &m), 0);
	tmp_done(&t);
}

/*
 * open() failures.  None may quote the password.
 */
enum open_case {
	OC_NOT_PG,
	OC_NULL_URI,
	OC_BAD_URI,
	OC_WRONG_PASSWORD,
	OC_NO_SERVER,
	OC_NO_DATABASE,
	OC_NEWER,
	OC_FOREIGN,
};

struct open_row {
	const char *name;
	enum open_case c;
	const char *err;
};

static const struct open_row open_rows[] = {
	{ "sqlite", OC_NOT_PG,
	    "postgresql: the store must be a postgresql:// URI" },
	{ "null uri", OC_NULL_URI,
	    "postgresql: the store must be a postgresql:// URI" },
	{ "unparsable uri", OC_BAD_URI, "postgresql: invalid connection URI" },
	{ "wrong password", OC_WRONG_PASSWORD,
	    "open: postgresql: connection to server at \"127.0.0.1\"" },
	{ "no server", OC_NO_SERVER, "Connection refused" },
	{ "no such database", OC_NO_DATABASE,
	    "database \"nodb\" does not exist" },
	{ "newer schema", OC_NEWER,
	    "open: postgresql: schema version 4 is newer than this "
	    "program's (3)" },
	{ "foreign tables", OC_FOREIGN,
	    "open: postgresql: not a msgtrk tracking store" },
};

static const char *
open_name(const void *row)
{
	return ((const struct open_row *)row)->name;
}

static void
test_open_fail(void **state)
{
	const struct open_row *row = *state;
	char uri[512], err[512];
	const char *u = uri;
	struct store *st;

	db_empty();
	snprintf(uri, sizeof(uri), "%s", pg.uri);
	switch (row->c) {
	case OC_NOT_PG:
		u = "sqlite";
		break;
	case OC_NULL_URI:
		u = NULL;
		break;
	case OC_BAD_URI:
		snprintf(uri, sizeof(uri),
		    "postgresql://" PG_USER ":" PG_PASSWORD
		    "%%zz@127.0.0.1:%d/postgres",
		    pg.port);
		break;
	case OC_WRONG_PASSWORD:
		snprintf(uri, sizeof(uri),
		    "postgresql://" PG_USER ":x" PG_PASSWORD
		    "@127.0.0.1:%d/postgres",
		    pg.port);
		break;
	case OC_NO_SERVER:
		snprintf(uri, sizeof(uri),
		    "postgresql://" PG_USER ":" PG_PASSWORD
		    "@127.0.0.1:%d/postgres",
		    free_port());
		break;
	case OC_NO_DATABASE:
		snprintf(uri, sizeof(uri),
		    "postgresql://" PG_USER ":" PG_PASSWORD
		    "@127.0.0.1:%d/nodb",
		    pg.port);
		break;
	case OC_NEWER:
		st = B->open(pg.uri, NULL, 0, err, sizeof(err));
		assert_non_null(st);
		B->close(st);
		raw_exec("UPDATE msgtrk_schema SET version = 4");
		break;
	case OC_FOREIGN:
		raw_exec("CREATE TABLE msg (x int)");
		break;
	}
	err[0] = '\0';
	st = B->open(u, NULL, 0, err, sizeof(err));
	assert_null(st);
	if (strstr(err, row->err) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, row->err);
	assert_no_password(err);
	assert_null(strchr(err, '\n'));
	db_empty();
}

/*
 * Registry: postgresql:// URIs select this backend.
 */
struct find_row {
	const char *uri;
	int pg;
};

static const struct find_row find_rows[] = {
	{ "postgresql://localhost/msgtrk", 1 },
	{ "postgresql://u:p@h:5432/db?sslmode=require", 1 },
	{ "postgres://localhost/msgtrk", 0 },
	{ "postgresq://x", 0 },
	{ "sqlite", 0 },
};

static const char *
find_name(const void *row)
{
	return ((const struct find_row *)row)->uri;
}

static void
test_find(void **state)
{
	const struct find_row *row = *state;
	const struct store_backend *b = store_backend_find(row->uri);

	if (row->pg) {
		assert_non_null(b);
		assert_string_equal(b->name, "postgresql");
	} else
		assert_true(b == NULL || strcmp(b->name, "postgresql") != 0);
}

/*
 * Bulk: prints (does not assert) the rate of batches of 64 one-recipient
 * messages and of lookups, for comparison with test_store's figures.
 */
#define BULK_MSGS 5000

static void
test_bulk(void **state)
{
	struct tmp t;
	double put_s;

	(void)state;
	tmp_open(&t);
	put_s = sc_bulk_put(B, t.st, BULK_MSGS);
	printf("bulk: %d messages (1 rcpt) in batches of 64: %.0f msg/s\n",
	    BULK_MSGS, BULK_MSGS / put_s);
	sc_bulk_lookup(B, t.st, BULK_MSGS, 2000);
	tmp_done(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batches_server),
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_sync_health),
		cmocka_unit_test(test_client_bounds),
		cmocka_unit_test(test_upgrade_v1),
		cmocka_unit_test(test_bulk),
	};
	int failed = 0;

	failed += TABLE_RUN("backend_find", test_find, find_rows, find_name);
	B = store_backend_find("postgresql://");
	if (B == NULL || pg_setup() == -1) {
		/* build-aux/deps.sh installs the server: a failure. */
		printf("FAIL store_pg: no PostgreSQL server to test against\n");
		pg_teardown();
		return failed + 1;
	}
	pg_cases.b = B;
	failed += store_cases_run(&pg_cases);
	failed += TABLE_RUN(
	    "corrupt", sc_test_corrupt, corrupt_rows, sc_corrupt_name);
	failed += TABLE_RUN("open_fail", test_open_fail, open_rows, open_name);
	failed +=
	    cmocka_run_group_tests_name("store_pg_server", tests, NULL, NULL);
	pg_teardown();
	return failed;
}
