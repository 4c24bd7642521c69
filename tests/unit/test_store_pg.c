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
#include "table.h"

/* The test role's password: no error message may contain it. */
#define PG_PASSWORD "pw-Sekr1t-7c1e"
#define PG_USER "msgtrk_test"

static const struct store_backend *B;

/* The private server. */
static struct {
	char bin[PATH_MAX];
	char dir[64];
	int port;
	char uri[256];
	char runas[64]; /* "runuser -u postgres -- " when root */
	PGconn *admin; /* raw SQL, as the tests' own connection */
} pg;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	fflush(NULL);
	rc = system(cmd);
	return rc == 0 ? 0 : -1;
}

static int
pg_start(void)
{
	return sh("%s%s/pg_ctl -D %s/data -l %s/server.log -w -t 30 "
	          "-o '-p %d -k %s -c listen_addresses=127.0.0.1 "
	          "-c fsync=off' start >/dev/null",
	    pg.runas, pg.bin, pg.dir, pg.dir, pg.port, pg.dir);
}

static int
pg_stop(void)
{
	return sh("%s%s/pg_ctl -D %s/data -w -t 30 -m fast stop >/dev/null",
	    pg.runas, pg.bin, pg.dir);
}

static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* Sets up and starts the server.  Returns 0, or -1 with the reason
 * printed (the caller skips). */
static int
pg_setup(void)
{
	const char *env = getenv("MSGTRK_PG_BIN");
	char p[PATH_MAX + 16];
	struct passwd *pw;
	FILE *f;

	if (env != NULL)
		snprintf(pg.bin, sizeof(pg.bin), "%s", env);
	else if ((f = popen("pg_config --bindir 2>/dev/null", "r")) != NULL) {
		if (fgets(pg.bin, sizeof(pg.bin), f) == NULL)
			pg.bin[0] = '\0';
		pclose(f);
		pg.bin[strcspn(pg.bin, "\n")] = '\0';
	}
	snprintf(p, sizeof(p), "%s/initdb", pg.bin);
	if (pg.bin[0] == '\0' || access(p, X_OK) == -1) {
		printf("no PostgreSQL server binaries (initdb)\n");
		return -1;
	}
	snprintf(pg.dir, sizeof(pg.dir), "/tmp/test_store_pg.XXXXXX");
	if (mkdtemp(pg.dir) == NULL)
		return -1;
	/* initdb refuses to run as root. */
	if (geteuid() == 0) {
		if ((pw = getpwnam("postgres")) == NULL) {
			printf("running as root and no user postgres\n");
			return -1;
		}
		if (chown(pg.dir, pw->pw_uid, pw->pw_gid) == -1)
			return -1;
		snprintf(pg.runas, sizeof(pg.runas), "runuser -u postgres -- ");
	}
	snprintf(p, sizeof(p), "%s/pw", pg.dir);
	if ((f = fopen(p, "w")) == NULL)
		return -1;
	fprintf(f, "%s\n", PG_PASSWORD);
	fclose(f);
	if (geteuid() == 0 && (pw = getpwnam("postgres")) != NULL &&
	    chown(p, pw->pw_uid, pw->pw_gid) == -1)
		return -1;
	if (sh("%s%s/initdb -D %s/data -U %s --pwfile=%s/pw "
	       "-A scram-sha-256 -E UTF8 --no-locale >%s/initdb.log 2>&1",
	        pg.runas, pg.bin, pg.dir, PG_USER, pg.dir, pg.dir) == -1) {
		printf("initdb failed (see %s/initdb.log)\n", pg.dir);
		return -1;
	}
	if ((pg.port = free_port()) == -1 || pg_start() == -1) {
		printf("pg_ctl start failed (see %s/server.log)\n", pg.dir);
		return -1;
	}
	snprintf(pg.uri, sizeof(pg.uri),
	    "postgresql://" PG_USER ":" PG_PASSWORD "@127.0.0.1:%d/postgres",
	    pg.port);
	pg.admin = PQconnectdb(pg.uri);
	if (PQstatus(pg.admin) != CONNECTION_OK) {
		printf("admin connection: %s", PQerrorMessage(pg.admin));
		return -1;
	}
	/* A test that waits on a lock the store holds fails, not hangs. */
	PQclear(PQexec(pg.admin,
	    "SET client_min_messages = warning;"
	    "SET lock_timeout = 10000"));
	return 0;
}

static void
pg_teardown(void)
{
	PQfinish(pg.admin);
	pg.admin = NULL;
	if (pg.port > 0)
		(void)pg_stop();
	if (pg.dir[0] != '\0')
		(void)sh("rm -rf %s", pg.dir);
}

/* The admin connection, reconnected after a server restart. */
static PGconn *
admin(void)
{
	if (PQstatus(pg.admin) != CONNECTION_OK)
		PQreset(pg.admin);
	if (PQstatus(pg.admin) != CONNECTION_OK)
		fail_msg("admin: %s", PQerrorMessage(pg.admin));
	return pg.admin;
}

/* Runs sql on the admin connection; one retry, as the first use after
 * a server restart finds the connection lost. */
static PGresult *
raw_query(const char *sql, ExecStatusType want)
{
	PGresult *res = PQexec(admin(), sql);

	if (PQresultStatus(res) != want) {
		PQclear(res);
		res = PQexec(admin(), sql);
	}
	if (PQresultStatus(res) != want)
		fail_msg("%s: %s", sql, PQresultErrorMessage(res));
	return res;
}

static void
raw_exec(const char *sql)
{
	PQclear(raw_query(sql, PGRES_COMMAND_OK));
}

static long long
raw_int(const char *sql)
{
	PGresult *res = raw_query(sql, PGRES_TUPLES_OK);
	long long v;

	if (PQntuples(res) != 1)
		fail_msg("%s: %d rows", sql, PQntuples(res));
	v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

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
	raw_exec("DROP TABLE IF EXISTS rcpt, msg, msgtrk_schema CASCADE");
}

static void
tmp_open(struct tmp *t)
{
	memset(t, 0, sizeof(*t));
	db_empty();
	t->st = B->open(pg.uri, "/nonexistent", t->err, sizeof(t->err));
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
pgc_open(char *err, size_t errsize)
{
	return B->open(pg.uri, NULL, err, errsize);
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
	    "SELECT version FROM msgtrk_schema" },
	.collide_sql = NULL, /* envids are compared exactly */
	.mt_msgs = 1000,
	.mt_sync_every = 1,
};

/* Beyond the shared rows: bytea may hold a NUL, and the server's own
 * message for a missing table. */
static const struct sc_corrupt_row corrupt_rows[] = {
	{ "nul byte in reply", "UPDATE rcpt SET reply = '\\x410042'",
	    "lookup_envid: Q1: corrupt recipient record" },
	{ "table dropped", "DROP TABLE rcpt",
	    "lookup_envid: postgresql: relation \"rcpt\" does not exist" },
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
	rd = B->open(pg.uri, NULL, t.err, sizeof(t.err));
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
	assert_int_equal(B->lookup_envid(rd, "e1@x", &out, &n), -1);
	assert_null(out);
	assert_non_null(strstr(B->error(rd), "lookup_envid: postgresql"));
	assert_no_password(B->error(rd));

	/* back: the next calls reconnect */
	assert_int_equal(pg_start(), 0);
	assert_int_equal(B->begin(t.st), 0);
	sc_put(B, t.st, &k.m);
	assert_int_equal(B->commit(t.st), 0);
	assert_int_equal(B->lookup_envid(rd, "e2@x", &out, &n), 1);
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
	assert_int_equal(B->lookup_envid(rd, "e1@x", &out, &n), 1);
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
	    "open: postgresql: schema version 2 is newer than this "
	    "program's (1)" },
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
		st = B->open(pg.uri, NULL, err, sizeof(err));
		assert_non_null(st);
		B->close(st);
		raw_exec("UPDATE msgtrk_schema SET version = 2");
		break;
	case OC_FOREIGN:
		raw_exec("CREATE TABLE msg (x int)");
		break;
	}
	err[0] = '\0';
	st = B->open(u, NULL, err, sizeof(err));
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
