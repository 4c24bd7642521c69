/*
 * test_store: the tracking store registry and its SQLite backend, on real
 * files in fresh temporary directories: the behaviour every backend shares
 * (store_cases.c), then what is SQLite's own (the file after sync(), open
 * failures on a data_dir, the file's size).
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store.h"
#include "store_cases.h"
#include "table.h"

#define B (&store_backend_sqlite)
#define NOW SC_NOW

/* A temporary data_dir, removed with everything in it. */
struct tmp {
	char dir[64];
	char err[512];
	struct store *st;
};

static void
tmp_make(struct tmp *t)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_store.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
}

static void
tmp_open(struct tmp *t)
{
	tmp_make(t);
	t->st = B->open("sqlite", t->dir, 0, t->err, sizeof(t->err));
	if (t->st == NULL)
		fail_msg("open %s: %s", t->dir, t->err);
}

static void
tmp_rm(const char *dir, const char *name)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	unlink(p);
	rmdir(p);
}

static void
tmp_done(struct tmp *t)
{
	B->close(t->st);
	t->st = NULL;
	chmod(t->dir, 0700);
	tmp_rm(t->dir, "tracking.db");
	tmp_rm(t->dir, "tracking.db-wal");
	tmp_rm(t->dir, "tracking.db-shm");
	tmp_rm(t->dir, "sub");
	rmdir(t->dir);
}

/* Runs sql on the store file with a separate raw connection. */
static void
raw_exec(const char *dir, const char *sql)
{
	char p[128];
	sqlite3 *db;

	snprintf(p, sizeof(p), "%s/tracking.db", dir);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

static sqlite3_int64
raw_int(const char *dir, const char *sql)
{
	char p[128];
	sqlite3 *db;
	sqlite3_stmt *s;
	sqlite3_int64 v;

	snprintf(p, sizeof(p), "%s/tracking.db", dir);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* The store of the shared cases (store_cases.c): one data_dir per case. */
static struct tmp cur;

static void
sq_empty(void)
{
	tmp_make(&cur);
}

static struct store *
sq_open(int flags, char *err, size_t errsize)
{
	return B->open("sqlite", cur.dir, flags, err, errsize);
}

static void
sq_discard(struct store *st)
{
	cur.st = st;
	tmp_done(&cur);
}

static void
sq_raw_exec(const char *sql)
{
	raw_exec(cur.dir, sql);
}

static long long
sq_raw_int(const char *sql)
{
	return (long long)raw_int(cur.dir, sql);
}

static const struct store_cases sq_cases = {
	.name = "store",
	.b = &store_backend_sqlite,
	.empty = sq_empty,
	.open = sq_open,
	.discard = sq_discard,
	.raw_exec = sq_raw_exec,
	.raw_int = sq_raw_int,
	.schema_sql = { "SELECT user_version = 3 FROM pragma_user_version",
	    NULL },
	/* The envid index keys a hash (store_sqlite.c): give M0 the hash
	 * of other@x. */
	.collide_sql = "UPDATE msg SET envid_h = (SELECT envid_h FROM msg"
	               " WHERE qid = 'OTHER') WHERE qid = 'M0'",
	.mt_msgs = 3000,
	.mt_sync_every = 8,
};

/* Beyond the shared rows: SQLite's own message for a missing table. */
static const struct sc_corrupt_row corrupt_rows[] = {
	{ "table dropped", "DROP TABLE rcpt", "lookup: no such table" },
};

/* After sync() everything is in tracking.db itself: a copy of that file
 * alone (no -wal) holds the data.  A plain reopen keeps it too. */
static void
copy_file(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in, out;

	in = open(from, O_RDONLY);
	assert_true(in >= 0);
	out = open(to, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	close(out);
}

static void
test_sync_and_reopen(void **state)
{
	struct store_msg *out;
	struct tmp t, c;
	struct sc_mk k;
	char from[128], to[128];
	size_t n;

	(void)state;
	tmp_open(&t);
	sc_mk_msg(&k, "Q1", "e1@x", 2);
	sc_put(B, t.st, &k.m);
	assert_int_equal(B->sync(t.st), 0);
	tmp_make(&c);
	snprintf(from, sizeof(from), "%s/tracking.db", t.dir);
	snprintf(to, sizeof(to), "%s/tracking.db", c.dir);
	copy_file(from, to);
	c.st = B->open("sqlite", c.dir, 0, c.err, sizeof(c.err));
	assert_non_null(c.st);
	assert_int_equal(B->lookup(c.st, "e1@x", SC_CERT, &out, &n), 1);
	sc_assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	tmp_done(&c);
	/* reopen without sync: the WAL is replayed */
	k.m.queued = 0;
	sc_put(B, t.st, &k.m);
	B->close(t.st);
	t.st = B->open("sqlite", t.dir, 0, t.err, sizeof(t.err));
	assert_non_null(t.st);
	assert_int_equal(B->lookup(t.st, "e1@x", SC_CERT, &out, &n), 1);
	sc_assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	tmp_done(&t);
}

/*
 * Files: tracking.db, -wal and -shm are 0600 whatever the umask and
 * data_dir's mode; a wider one an older version left is narrowed.
 */
static void
assert_mode(const char *dir, const char *name, mode_t want)
{
	char p[128];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (stat(p, &sb) == -1)
		fail_msg("%s: %s", p, strerror(errno));
	if ((sb.st_mode & 07777) != want)
		fail_msg("%s: mode %04o, want %04o", p,
		    (unsigned)(sb.st_mode & 07777), (unsigned)want);
}

static void
test_file_modes(void **state)
{
	static const mode_t masks[] = { 022, 0, 077 };
	struct sc_mk k;
	struct tmp t;
	mode_t old;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		tmp_make(&t);
		assert_int_equal(chmod(t.dir, 0755), 0);
		old = umask(masks[i]);
		t.st = B->open("sqlite", t.dir, 0, t.err, sizeof(t.err));
		umask(old);
		if (t.st == NULL)
			fail_msg("open: %s", t.err);
		sc_mk_msg(&k, "Q1", "e1@x", 1);
		sc_put(B, t.st, &k.m);
		assert_mode(t.dir, "tracking.db", 0600);
		assert_mode(t.dir, "tracking.db-wal", 0600);
		assert_mode(t.dir, "tracking.db-shm", 0600);
		tmp_done(&t);
	}
	/* an older version's 0644 files are narrowed at open */
	tmp_open(&t);
	sc_put(B, t.st, &k.m);
	B->close(t.st);
	raw_exec(t.dir, "PRAGMA journal_mode = DELETE");
	{
		char p[128];

		snprintf(p, sizeof(p), "%s/tracking.db", t.dir);
		assert_int_equal(chmod(p, 0644), 0);
	}
	old = umask(022);
	t.st = B->open("sqlite", t.dir, 0, t.err, sizeof(t.err));
	umask(old);
	assert_non_null(t.st);
	sc_put(B, t.st, &k.m);
	assert_mode(t.dir, "tracking.db", 0600);
	assert_mode(t.dir, "tracking.db-wal", 0600);
	assert_mode(t.dir, "tracking.db-shm", 0600);
	tmp_done(&t);
}

/* Read-only: a missing store is an error and nothing is created. */
static void
test_readonly_missing(void **state)
{
	char want[160];
	struct tmp t;
	DIR *d;
	struct dirent *e;
	int n = 0;

	(void)state;
	tmp_make(&t);
	assert_null(B->open(
	    "sqlite", t.dir, STORE_OPEN_READONLY, t.err, sizeof(t.err)));
	snprintf(
	    want, sizeof(want), "no tracking store at %s/tracking.db", t.dir);
	assert_string_equal(t.err, want);
	assert_non_null(d = opendir(t.dir));
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	assert_int_equal(n, 0);
	/* an empty file is no store either, and is left as it is */
	raw_exec(t.dir, "SELECT 1");
	assert_null(B->open(
	    "sqlite", t.dir, STORE_OPEN_READONLY, t.err, sizeof(t.err)));
	assert_non_null(strstr(t.err, "tracking.db: no tracking store schema"));
	assert_int_equal(raw_int(t.dir, "PRAGMA user_version"), 0);
	tmp_done(&t);
}

/*
 * A store written by the previous version (schema 1: no mark table, the
 * envid index on envid_h alone) opens: read-only as it is, read-write
 * upgraded in place.
 */
static void
test_upgrade_v1(void **state)
{
	struct store_msg *out;
	struct store_mark m;
	struct sc_mk k;
	struct store *ro;
	struct tmp t;
	size_t n;

	(void)state;
	tmp_open(&t);
	sc_mk_msg(&k, "Q1", "e1@x", 2);
	sc_put(B, t.st, &k.m);
	B->close(t.st);
	t.st = NULL;
	raw_exec(t.dir,
	    "BEGIN; DROP TABLE mark; DROP INDEX msg_envid_cert;"
	    "DROP TABLE sent;"
	    "CREATE INDEX msg_envid ON msg(envid_h) WHERE envid_h IS NOT NULL;"
	    "PRAGMA user_version = 1; COMMIT");
	ro =
	    B->open("sqlite", t.dir, STORE_OPEN_READONLY, t.err, sizeof(t.err));
	if (ro == NULL)
		fail_msg("open read-only: %s", t.err);
	assert_int_equal(B->lookup(ro, "e1@x", SC_CERT, &out, &n), 1);
	sc_assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	memset(&m, 0, sizeof(m));
	snprintf(m.journal, sizeof(m.journal), "j");
	assert_int_equal(B->get_mark(ro, &m), -1);
	assert_non_null(strstr(B->error(ro), "no such table: mark"));
	B->close(ro);
	assert_int_equal(raw_int(t.dir, "PRAGMA user_version"), 1);
	t.st = B->open("sqlite", t.dir, 0, t.err, sizeof(t.err));
	if (t.st == NULL)
		fail_msg("open: %s", t.err);
	assert_int_equal(raw_int(t.dir, "PRAGMA user_version"), 3);
	assert_int_equal(
	    raw_int(t.dir,
	        "SELECT count(*) FROM sqlite_master WHERE name IN"
	        " ('mark', 'msg_envid_cert', 'sent', 'sent_login')"),
	    4);
	assert_int_equal(raw_int(t.dir,
	                     "SELECT count(*) FROM sqlite_master"
	                     " WHERE name = 'msg_envid'"),
	    0);
	assert_int_equal(B->lookup(t.st, "e1@x", SC_CERT, &out, &n), 1);
	sc_assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	assert_int_equal(B->get_mark(t.st, &m), 0);
	/* lookup's probe uses the new index on both columns */
	{
		char p[128], plan[1024] = "";
		sqlite3_stmt *s;
		sqlite3 *db;

		snprintf(p, sizeof(p), "%s/tracking.db", t.dir);
		assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db,
		                     "EXPLAIN QUERY PLAN SELECT id FROM msg"
		                     " WHERE envid_h = 1 AND envid = 'x'"
		                     " AND certifier = 'y' ORDER BY id",
		                     -1, &s, NULL),
		    SQLITE_OK);
		while (sqlite3_step(s) == SQLITE_ROW)
			snprintf(plan + strlen(plan),
			    sizeof(plan) - strlen(plan), "%s;",
			    sqlite3_column_text(s, 3));
		sqlite3_finalize(s);
		sqlite3_close(db);
		if (strstr(plan,
		        "msg_envid_cert (envid_h=? AND certifier=?)") == NULL ||
		    strstr(plan, "TEMP B-TREE") != NULL)
			fail_msg("plan: %s", plan);
	}
	tmp_done(&t);
}

/*
 * open() failures.
 */
enum open_case {
	OC_MISSING_DIR,
	OC_DIR_IS_FILE,
	OC_READONLY_DIR,
	OC_GARBAGE,
	OC_NEWER,
	OC_FOREIGN,
	OC_BAD_URI,
	OC_NULL_URI,
	OC_NO_DIR,
	OC_LONG_DIR,
	OC_DB_IS_DIR,
};

struct open_row {
	const char *name;
	enum open_case c;
	const char *err;
};

static const struct open_row open_rows[] = {
	{ "missing directory", OC_MISSING_DIR, "/nope: No such file or dir" },
	{ "data_dir is a file", OC_DIR_IS_FILE, "/sub: not a directory" },
	{ "read-only directory", OC_READONLY_DIR,
	    ": directory not writable: Permission denied" },
	{ "garbage file", OC_GARBAGE, "tracking.db: file is not a database" },
	{ "newer schema", OC_NEWER,
	    "tracking.db: schema version 4 is newer than this program's (3)" },
	{ "foreign database", OC_FOREIGN,
	    "tracking.db: not a msgtrk tracking store (no schema version)" },
	{ "postgresql uri", OC_BAD_URI,
	    "sqlite: unsupported store \"postgresql://h/db\"" },
	{ "null uri", OC_NULL_URI, "sqlite: unsupported store \"\"" },
	{ "empty data_dir", OC_NO_DIR, "sqlite: no data_dir" },
	{ "data_dir too long", OC_LONG_DIR, "sqlite: data_dir path too long" },
	{ "tracking.db is a directory", OC_DB_IS_DIR, "tracking.db: " },
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
	const char *uri = "sqlite";
	char dir[PATH_MAX + 16], p[128], *longdir = NULL;
	struct store *st;
	struct tmp t;
	int fd;

	tmp_make(&t);
	snprintf(dir, sizeof(dir), "%s", t.dir);
	switch (row->c) {
	case OC_MISSING_DIR:
		snprintf(dir, sizeof(dir), "%s/nope", t.dir);
		break;
	case OC_DIR_IS_FILE:
		snprintf(dir, sizeof(dir), "%s/sub", t.dir);
		fd = open(dir, O_CREAT | O_WRONLY, 0600);
		assert_true(fd >= 0);
		close(fd);
		break;
	case OC_READONLY_DIR:
		assert_int_equal(chmod(t.dir, 0555), 0);
		/* root (CAP_DAC_OVERRIDE) writes anyway: try as nobody */
		if (geteuid() == 0) {
			pid_t pid;
			int status;

			fflush(NULL);
			pid = fork();
			assert_true(pid >= 0);
			if (pid == 0) {
				if (setgid(65534) == -1 || setuid(65534) == -1)
					_exit(2);
				st = B->open(uri, dir, 0, t.err, sizeof(t.err));
				_exit(st == NULL &&
				            strstr(t.err, row->err) != NULL
				        ? 0
				        : 1);
			}
			assert_int_equal(waitpid(pid, &status, 0), pid);
			assert_true(WIFEXITED(status));
			assert_int_equal(WEXITSTATUS(status), 0);
			tmp_done(&t);
			return;
		}
		break;
	case OC_GARBAGE:
		snprintf(p, sizeof(p), "%s/tracking.db", t.dir);
		fd = open(p, O_CREAT | O_WRONLY, 0600);
		assert_true(fd >= 0);
		for (int i = 0; i < 64; i++)
			assert_int_equal(
			    write(fd, "this is not a database at all!!\n", 32),
			    32);
		close(fd);
		break;
	case OC_NEWER:
		st = B->open("sqlite", t.dir, 0, t.err, sizeof(t.err));
		assert_non_null(st);
		B->close(st);
		raw_exec(t.dir, "PRAGMA user_version = 4");
		break;
	case OC_FOREIGN:
		raw_exec(t.dir, "CREATE TABLE other (x)");
		break;
	case OC_BAD_URI:
		uri = "postgresql://h/db";
		break;
	case OC_NULL_URI:
		uri = NULL;
		break;
	case OC_NO_DIR:
		dir[0] = '\0';
		break;
	case OC_LONG_DIR:
		longdir = malloc(PATH_MAX + 1);
		assert_non_null(longdir);
		memset(longdir, 'd', PATH_MAX);
		longdir[PATH_MAX] = '\0';
		break;
	case OC_DB_IS_DIR:
		snprintf(p, sizeof(p), "%s/tracking.db", t.dir);
		assert_int_equal(mkdir(p, 0700), 0);
		break;
	}
	t.err[0] = '\0';
	st = B->open(
	    uri, longdir != NULL ? longdir : dir, 0, t.err, sizeof(t.err));
	free(longdir);
	assert_null(st);
	if (strstr(t.err, row->err) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", t.err, row->err);
	tmp_done(&t);
}

/*
 * Registry and helpers.
 */
/* store_pg.c, in the registry when built with libpq. */

struct find_row {
	const char *uri;
	const struct store_backend *want;
};

static const struct find_row find_rows[] = {
	{ "sqlite", &store_backend_sqlite },
	{ "sqlite://", &store_backend_sqlite },
	{ "SQLite", NULL },
	{ "sqlite3", NULL },
	{ "sqlit", NULL },
	{ "", NULL },
	{ "postgresql://localhost/msgtrk", &store_backend_pg },
	{ "postgres://localhost/msgtrk", NULL },
	{ "mysql://x", NULL },
	{ NULL, NULL },
};

static const char *
find_name(const void *row)
{
	const char *u = ((const struct find_row *)row)->uri;

	return u == NULL ? "(null)" : u[0] == '\0' ? "(empty)" : u;
}

static void
test_find(void **state)
{
	const struct find_row *row = *state;

	assert_ptr_equal(store_backend_find(row->uri), row->want);
}

struct action_row {
	int action;
	const char *want;
};

static const struct action_row action_rows[] = {
	{ STORE_ACTION_QUEUED, "delayed" },
	{ STORE_ACTION_DELAYED, "delayed" },
	{ STORE_ACTION_DELIVERED, "delivered" },
	{ STORE_ACTION_TRANSFERRED, "transferred" },
	{ STORE_ACTION_RELAYED, "relayed" },
	{ STORE_ACTION_EXPANDED, "expanded" },
	{ STORE_ACTION_FAILED, "failed" },
	{ 7, "unknown" },
	{ -1, "unknown" },
};

static const char *
action_name(const void *row)
{
	return ((const struct action_row *)row)->want;
}

static void
test_action_name(void **state)
{
	const struct action_row *row = *state;

	assert_string_equal(
	    store_action_name((enum store_action)row->action), row->want);
}

static void
test_free_helpers(void **state)
{
	struct store_msg m, *arr;

	(void)state;
	store_msgs_free(NULL, 3);
	store_msg_clear(NULL);
	memset(&m, 0, sizeof(m));
	store_msg_clear(&m);
	arr = calloc(2, sizeof(*arr));
	assert_non_null(arr);
	arr[1].envid = strdup("x");
	arr[1].rcpts = calloc(1, sizeof(*arr[1].rcpts));
	arr[1].nrcpt = 1;
	arr[1].rcpts[0].reply = strdup("r");
	store_msgs_free(arr, 2);
	B->close(NULL);
}

/*
 * Bulk: 100,000 messages of one recipient in batches of 64, as the
 * queue's writer thread would commit them.  Prints (does not assert) the
 * rate and the file's bytes per recipient (issue 5: <= 400).
 */
#define BULK_MSGS 100000

static void
test_bulk(void **state)
{
	struct tmp t;
	double put_s, t0, sync_s;
	sqlite3_int64 pages, psize;

	(void)state;
	tmp_open(&t);
	put_s = sc_bulk_put(B, t.st, BULK_MSGS);
	t0 = sc_now();
	assert_int_equal(B->sync(t.st), 0);
	sync_s = sc_now() - t0;
	pages = raw_int(t.dir, "PRAGMA page_count");
	psize = raw_int(t.dir, "PRAGMA page_size");
	printf("bulk: %d messages (1 rcpt) in batches of 64: %.0f msg/s "
	       "(%.2f s), sync %.3f s\n",
	    BULK_MSGS, BULK_MSGS / put_s, put_s, sync_s);
	printf("bulk: file %lld bytes = %.1f bytes per recipient "
	       "(msg %.1f, rcpt %.1f, qid idx %.1f, envid idx %.1f, "
	       "expires idx %.1f)\n",
	    (long long)(pages * psize), (double)(pages * psize) / BULK_MSGS,
	    (double)raw_int(t.dir,
	        "SELECT count(*) * 4096 FROM dbstat "
	        "WHERE name = 'msg'") /
	        BULK_MSGS,
	    (double)raw_int(t.dir,
	        "SELECT count(*) * 4096 FROM dbstat "
	        "WHERE name = 'rcpt'") /
	        BULK_MSGS,
	    (double)raw_int(t.dir,
	        "SELECT count(*) * 4096 FROM dbstat "
	        "WHERE name LIKE 'sqlite_autoindex_msg%'") /
	        BULK_MSGS,
	    (double)raw_int(t.dir,
	        "SELECT count(*) * 4096 FROM dbstat "
	        "WHERE name = 'msg_envid_cert'") /
	        BULK_MSGS,
	    (double)raw_int(t.dir,
	        "SELECT count(*) * 4096 FROM dbstat "
	        "WHERE name = 'msg_expires'") /
	        BULK_MSGS);
	/* lookups by envid over the filled store */
	sc_bulk_lookup(B, t.st, BULK_MSGS, 20000);
	tmp_done(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sync_and_reopen),
		cmocka_unit_test(test_file_modes),
		cmocka_unit_test(test_readonly_missing),
		cmocka_unit_test(test_upgrade_v1),
		cmocka_unit_test(test_free_helpers),
		cmocka_unit_test(test_bulk),
	};
	int failed = 0;

	failed += store_cases_run(&sq_cases);
	failed += TABLE_RUN(
	    "corrupt", sc_test_corrupt, corrupt_rows, sc_corrupt_name);
	failed += TABLE_RUN("open_fail", test_open_fail, open_rows, open_name);
	failed += TABLE_RUN("backend_find", test_find, find_rows, find_name);
	failed += TABLE_RUN(
	    "action_name", test_action_name, action_rows, action_name);
	failed +=
	    cmocka_run_group_tests_name("store_sqlite", tests, NULL, NULL);
	return failed;
}
