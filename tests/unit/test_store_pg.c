/*
 * test_store_pg: the PostgreSQL store backend against a private server
 * that this program starts (initdb + pg_ctl on a free 127.0.0.1 port, in
 * a fresh temporary directory) and stops at the end.  The behaviour table
 * is test_store.c's (the SQLite backend is the reference), plus what only
 * a server has: lost connections, reconnection, credentials that must not
 * leak into messages.
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
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store/store.h"
#include "table.h"

#define CERT "AAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define NOW ((time_t)1700000000)
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

/* A message with nrcpt recipients; strings point at static text. */
struct mk {
	struct store_msg m;
	struct store_rcpt r[4];
};

static void
mk_msg(struct mk *k, const char *qid, const char *envid, size_t nrcpt)
{
	size_t i;

	memset(k, 0, sizeof(*k));
	snprintf(k->m.qid, sizeof(k->m.qid), "%s", qid);
	k->m.envid = (char *)envid;
	snprintf(k->m.certifier, sizeof(k->m.certifier), "%s", CERT);
	k->m.sender = (char *)"alice@src.test";
	k->m.reporting_mta = (char *)"dns; relay.test";
	k->m.arrival = NOW;
	k->m.expires = NOW + 9 * 86400;
	k->m.queued = 1;
	k->m.nrcpt = nrcpt;
	k->m.rcpts = k->r;
	for (i = 0; i < nrcpt && i < 4; i++) {
		k->r[i].idx = (uint32_t)i;
		k->r[i].orcpt = (char *)"rfc822;bob@dst.test";
		k->r[i].final_rcpt = (char *)"rfc822;bob@dst.test";
		k->r[i].action = STORE_ACTION_QUEUED;
		k->r[i].will_retry_until = NOW + 5 * 86400;
	}
}

static void
put(struct store *st, const struct store_msg *m)
{
	if (B->put_msg(st, m) != 0)
		fail_msg("put_msg %s: %s", m->qid, B->error(st));
}

static void
assert_str_or_null(const char *got, const char *want)
{
	if (want == NULL)
		assert_null(got);
	else {
		assert_non_null(got);
		assert_string_equal(got, want);
	}
}

static void
assert_rcpt_equal(const struct store_rcpt *g, const struct store_rcpt *w)
{
	assert_int_equal(g->idx, w->idx);
	assert_str_or_null(g->orcpt, w->orcpt);
	assert_str_or_null(g->final_rcpt, w->final_rcpt);
	assert_int_equal(g->action, w->action);
	assert_string_equal(g->status, w->status);
	assert_str_or_null(g->remote_mta, w->remote_mta);
	assert_int_equal(g->last_attempt, w->last_attempt);
	assert_int_equal(g->will_retry_until, w->will_retry_until);
	assert_str_or_null(g->reply, w->reply);
}

static void
assert_msg_head_equal(const struct store_msg *g, const struct store_msg *w)
{
	assert_string_equal(g->qid, w->qid);
	assert_str_or_null(g->envid, w->envid);
	assert_string_equal(g->certifier, w->certifier);
	assert_string_equal(g->sender, w->sender);
	assert_str_or_null(g->reporting_mta, w->reporting_mta);
	assert_int_equal(g->arrival, w->arrival);
	assert_int_equal(g->expires, w->expires);
	assert_int_equal(g->queued, w->queued);
}

static void
assert_msg_equal(const struct store_msg *g, const struct store_msg *w)
{
	size_t i;

	assert_msg_head_equal(g, w);
	assert_int_equal(g->nrcpt, w->nrcpt);
	for (i = 0; i < w->nrcpt; i++)
		assert_rcpt_equal(&g->rcpts[i], &w->rcpts[i]);
}

/* Collects search results as "qid/idx" words. */
struct hits {
	char text[1024];
	size_t n;
	size_t stop_after; /* 0: never stop */
};

static int
hits_fn(void *arg, const struct store_msg *m, const struct store_rcpt *r)
{
	struct hits *h = arg;
	size_t len = strlen(h->text);

	snprintf(h->text + len, sizeof(h->text) - len, "%s%s/%u",
	    len ? " " : "", m->qid, r->idx);
	h->n++;
	assert_int_equal(m->nrcpt, 0);
	return h->stop_after != 0 && h->n >= h->stop_after ? -1 : 0;
}

static int
search_text(struct store *st, const struct store_query *q, struct hits *h)
{
	memset(h, 0, sizeof(*h));
	return B->search(st, q, hits_fn, h);
}

static struct store_query
query_all(void)
{
	struct store_query q;

	memset(&q, 0, sizeof(q));
	q.action = -1;
	return q;
}

static void
fetch_check(struct store *st, const struct store_msg *want)
{
	struct store_msg *out = NULL;
	size_t n = 0;

	if (want->envid == NULL)
		return;
	if (B->lookup_envid(st, want->envid, &out, &n) != 1)
		fail_msg("lookup_envid: %s", B->error(st));
	assert_int_equal(n, 1);
	assert_msg_equal(&out[0], want);
	store_msgs_free(out, n);
}

/*
 * Round trips: every action and every optional field present or absent
 * (test_store.c's rt_rows), plus bytes that are not UTF-8.
 */
struct rt_row {
	const char *name;
	const char *envid;
	const char *certifier;
	const char *sender;
	const char *reporting_mta;
	time_t arrival, expires;
	int queued;
	enum store_action action;
	const char *orcpt;
	const char *final_rcpt;
	const char *status;
	const char *remote_mta;
	time_t last_attempt, will_retry_until;
	const char *reply;
};

#define FULL_MSG \
	"e1@src.test", CERT, "alice@src.test", "dns; relay.test", NOW, \
	    NOW + 777600, 0
#define FULL_RCPT(a, st) \
	(a), "rfc822;bob@dst.test", "rfc822;bob@dst.test", (st), \
	    "dns; hop2.test", NOW + 60, 0, "250 2.0.0 Ok: queued as X1"

static const struct rt_row rt_rows[] = {
	{ "queued", "e1@src.test", CERT, "alice@src.test", "dns; relay.test",
	    NOW, NOW + 1, 1, STORE_ACTION_QUEUED, "rfc822;bob@dst.test",
	    "rfc822;bob@dst.test", "", NULL, 0, NOW + 432000, NULL },
	{ "delayed", FULL_MSG, STORE_ACTION_DELAYED, "rfc822;bob@dst.test",
	    "rfc822;bob@dst.test", "4.4.1", "dns; hop2.test", NOW + 60,
	    NOW + 432000, "451 4.4.1 try later" },
	{ "delivered", FULL_MSG, FULL_RCPT(STORE_ACTION_DELIVERED, "2.0.0") },
	{ "transferred", FULL_MSG,
	    FULL_RCPT(STORE_ACTION_TRANSFERRED, "2.0.0") },
	{ "relayed", FULL_MSG, FULL_RCPT(STORE_ACTION_RELAYED, "2.1.9") },
	{ "expanded", FULL_MSG, FULL_RCPT(STORE_ACTION_EXPANDED, "2.0.0") },
	{ "failed", FULL_MSG, FULL_RCPT(STORE_ACTION_FAILED, "5.1.1") },
	{ "no envid", NULL, CERT, "alice@src.test", NULL, NOW, NOW + 1, 1,
	    STORE_ACTION_QUEUED, "rfc822;bob@dst.test", NULL, "", NULL, 0, 0,
	    NULL },
	{ "no certifier", "e2@src.test", "", "alice@src.test", "dns; r.test",
	    NOW, NOW + 1, 0, FULL_RCPT(STORE_ACTION_DELIVERED, "2.0.0") },
	{ "null sender", "e3@src.test", CERT, "", "dns; r.test", NOW, NOW + 1,
	    0, FULL_RCPT(STORE_ACTION_FAILED, "5.0.0") },
	{ "no reporting mta", "e4@src.test", CERT, "a@b.test", NULL, NOW,
	    NOW + 1, 0, FULL_RCPT(STORE_ACTION_RELAYED, "2.1.9") },
	{ "zero times", "e5@src.test", CERT, "a@b.test", "dns; r.test", 0, 0, 0,
	    STORE_ACTION_DELIVERED, "rfc822;x@y.test", "rfc822;x@y.test",
	    "2.0.0", NULL, 0, 0, NULL },
	{ "all rcpt strings null", "e6@src.test", CERT, "a@b.test", NULL, NOW,
	    NOW + 1, 1, STORE_ACTION_QUEUED, NULL, NULL, "", NULL, 0, 0, NULL },
	{ "final differs from orcpt", "e7@src.test", CERT, "a@b.test", NULL,
	    NOW, NOW + 1, 0, STORE_ACTION_DELIVERED, "rfc822;alias@dst.test",
	    "rfc822;real@dst.test", "2.0.0", NULL, NOW, 0, NULL },
	{ "final without orcpt", "e8@src.test", CERT, "a@b.test", NULL, NOW,
	    NOW + 1, 0, STORE_ACTION_DELIVERED, NULL, "rfc822;real@dst.test",
	    "2.0.0", NULL, NOW, 0, NULL },
	{ "orcpt without final", "e9@src.test", CERT, "a@b.test", NULL, NOW,
	    NOW + 1, 0, STORE_ACTION_DELIVERED, "rfc822;a@dst.test", NULL,
	    "2.0.0", NULL, NOW, 0, NULL },
	{ "final is the integer-like text 1", "e10@src.test", CERT, "a@b.test",
	    NULL, NOW, NOW + 1, 0, STORE_ACTION_DELIVERED, "rfc822;a@d.test",
	    "1", "2.0.0", NULL, NOW, 0, NULL },
	{ "negative and large times", "e11@src.test", CERT, "a@b.test", NULL,
	    -1, (time_t)INT64_MAX, 0, STORE_ACTION_FAILED, "rfc822;a@d.test",
	    "rfc822;a@d.test", "5.7.1", "dns; [127.0.0.1]", (time_t)INT64_MIN,
	    (time_t)INT64_MAX, "" },
	{ "max envid",
	    "0123456789012345678901234567890123456789012345678901"
	    "234567890123456789012345678901234567890123456@x",
	    CERT, "a@b.test", NULL, NOW, NOW + 1, 0, STORE_ACTION_DELIVERED,
	    "rfc822;a@d.test", "rfc822;a@d.test", "2.0.0", NULL, NOW, 0, NULL },
	{ "utf8 and quotes", "e'12\"@src.test", CERT, "\xc3\xa9@b.test", NULL,
	    NOW, NOW + 1, 0, STORE_ACTION_DELIVERED, "utf-8;\xc3\xa9@d.test",
	    "rfc822;x@d.test", "2.0.0", "dns; h'); DROP TABLE msg;--", NOW, 0,
	    "250 ok; \"quoted\"" },
	/* A peer's reply or a decoded envid may hold any byte but NUL: a
	 * text column in a UTF8 database would refuse these. */
	{ "bytes that are not utf-8", "e\xff\xfe@src.test", CERT, "\x80@b.test",
	    "dns; \xc0", NOW, NOW + 1, 0, STORE_ACTION_FAILED,
	    "rfc822;\xe9@d.test", "rfc822;\xa0x@d.test", "5.0.0",
	    "dns; \xf5.test", NOW, 0, "550 \xff\xfe\x01\x7f bad" },
	{ "backslashes", "e\\\\13@src.test", CERT, "a\\b@b.test", NULL, NOW,
	    NOW + 1, 0, STORE_ACTION_DELIVERED, "rfc822;\\x00@d.test",
	    "rfc822;\\\\@d.test", "2.0.0", NULL, NOW, 0, "\\x41" },
};

static const char *
rt_name(const void *row)
{
	return ((const struct rt_row *)row)->name;
}

static void
rt_fill(const struct rt_row *row, struct mk *k)
{
	mk_msg(k, "Q1", row->envid, 1);
	snprintf(k->m.certifier, sizeof(k->m.certifier), "%s", row->certifier);
	k->m.sender = (char *)row->sender;
	k->m.reporting_mta = (char *)row->reporting_mta;
	k->m.arrival = row->arrival;
	k->m.expires = row->expires;
	k->m.queued = row->queued;
	k->r[0].action = row->action;
	k->r[0].orcpt = (char *)row->orcpt;
	k->r[0].final_rcpt = (char *)row->final_rcpt;
	snprintf(k->r[0].status, sizeof(k->r[0].status), "%s", row->status);
	k->r[0].remote_mta = (char *)row->remote_mta;
	k->r[0].last_attempt = row->last_attempt;
	k->r[0].will_retry_until = row->will_retry_until;
	k->r[0].reply = (char *)row->reply;
}

static void
test_roundtrip(void **state)
{
	const struct rt_row *row = *state;
	struct store_query q = query_all();
	struct tmp t;
	struct mk k;
	struct hits h;

	tmp_open(&t);
	rt_fill(row, &k);
	put(t.st, &k.m);
	fetch_check(t.st, &k.m);
	assert_int_equal(search_text(t.st, &q, &h), 0);
	assert_string_equal(h.text, "Q1/0");
	/* after a reopen, too */
	B->close(t.st);
	t.st = B->open(pg.uri, NULL, t.err, sizeof(t.err));
	assert_non_null(t.st);
	fetch_check(t.st, &k.m);
	tmp_done(&t);
}

struct cmp_arg {
	const struct store_msg *want;
	int calls;
};

static int
cmp_fn(void *arg, const struct store_msg *m, const struct store_rcpt *r)
{
	struct cmp_arg *c = arg;

	assert_msg_head_equal(m, c->want);
	assert_rcpt_equal(r, &c->want->rcpts[c->calls]);
	c->calls++;
	return 0;
}

static void
test_search_fields(void **state)
{
	const struct rt_row *row = *state;
	struct store_query q = query_all();
	struct cmp_arg c = { NULL, 0 };
	struct tmp t;
	struct mk k;

	tmp_open(&t);
	rt_fill(row, &k);
	put(t.st, &k.m);
	c.want = &k.m;
	if (B->search(t.st, &q, cmp_fn, &c) != 0)
		fail_msg("search: %s", B->error(t.st));
	assert_int_equal(c.calls, 1);
	tmp_done(&t);
}

/*
 * Invalid writes: each fails with the same message as SQLite's, stores
 * nothing, and poisons the batch it is in.
 */
enum bad_field {
	BAD_NULL_MSG,
	BAD_QID_EMPTY,
	BAD_QID_LONG,
	BAD_QID_CHAR,
	BAD_ENVID_EMPTY,
	BAD_ENVID_LONG,
	BAD_CERT_SHORT,
	BAD_SENDER_NULL,
	BAD_SENDER_LONG,
	BAD_RMTA_LONG,
	BAD_NO_ARRAY,
	BAD_ACTION,
	BAD_ACTION_NEG,
	BAD_STATUS_LONG,
	BAD_ORCPT_LONG,
	BAD_FINAL_LONG,
	BAD_REMOTE_LONG,
	BAD_REPLY_LONG,
};

struct bad_row {
	const char *name;
	enum bad_field field;
	const char *err;
};

static const struct bad_row bad_rows[] = {
	{ "null message", BAD_NULL_MSG, "put_msg: invalid queue id" },
	{ "empty qid", BAD_QID_EMPTY, "put_msg: invalid queue id" },
	{ "33-char qid", BAD_QID_LONG, "put_msg: invalid queue id" },
	{ "qid with dash", BAD_QID_CHAR, "put_msg: invalid queue id" },
	{ "empty envid", BAD_ENVID_EMPTY, "envid empty or longer than 100" },
	{ "101-char envid", BAD_ENVID_LONG, "envid empty or longer than 100" },
	{ "26-char certifier", BAD_CERT_SHORT, "certifier is not 27" },
	{ "null sender", BAD_SENDER_NULL, "sender missing" },
	{ "long sender", BAD_SENDER_LONG, "longer than 2048" },
	{ "long reporting mta", BAD_RMTA_LONG, "longer than 2048" },
	{ "rcpts missing", BAD_NO_ARRAY, "1 recipients but no array" },
	{ "action 7", BAD_ACTION, "invalid action 7" },
	{ "action -1", BAD_ACTION_NEG, "invalid action -1" },
	{ "status not terminated", BAD_STATUS_LONG, "status too long" },
	{ "long orcpt", BAD_ORCPT_LONG, "longer than 2048 bytes" },
	{ "long final", BAD_FINAL_LONG, "longer than 2048 bytes" },
	{ "long remote mta", BAD_REMOTE_LONG, "longer than 2048 bytes" },
	{ "long reply", BAD_REPLY_LONG, "longer than 2048 bytes" },
};

static const char *
bad_name(const void *row)
{
	return ((const struct bad_row *)row)->name;
}

static void
test_bad_put(void **state)
{
	const struct bad_row *row = *state;
	static char longs[STORE_TEXT_MAX + 2];
	struct store_msg *mp;
	struct tmp t;
	struct mk k;

	memset(longs, 'a', STORE_TEXT_MAX + 1);
	longs[STORE_TEXT_MAX + 1] = '\0';
	tmp_open(&t);
	mk_msg(&k, "Q1", "e@x", 1);
	mp = &k.m;
	switch (row->field) {
	case BAD_NULL_MSG:
		mp = NULL;
		break;
	case BAD_QID_EMPTY:
		k.m.qid[0] = '\0';
		break;
	case BAD_QID_LONG:
		memset(k.m.qid, 'A', STORE_QID_MAX + 1);
		break;
	case BAD_QID_CHAR:
		snprintf(k.m.qid, sizeof(k.m.qid), "AB-C");
		break;
	case BAD_ENVID_EMPTY:
		k.m.envid = (char *)"";
		break;
	case BAD_ENVID_LONG:
		k.m.envid = longs + STORE_TEXT_MAX + 1 - 101;
		break;
	case BAD_CERT_SHORT:
		k.m.certifier[26] = '\0';
		break;
	case BAD_SENDER_NULL:
		k.m.sender = NULL;
		break;
	case BAD_SENDER_LONG:
		k.m.sender = longs;
		break;
	case BAD_RMTA_LONG:
		k.m.reporting_mta = longs;
		break;
	case BAD_NO_ARRAY:
		k.m.rcpts = NULL;
		break;
	case BAD_ACTION:
		k.r[0].action = (enum store_action)7;
		break;
	case BAD_ACTION_NEG:
		k.r[0].action = (enum store_action) - 1;
		break;
	case BAD_STATUS_LONG:
		memset(k.r[0].status, '5', sizeof(k.r[0].status));
		break;
	case BAD_ORCPT_LONG:
		k.r[0].orcpt = longs;
		break;
	case BAD_FINAL_LONG:
		k.r[0].final_rcpt = longs;
		break;
	case BAD_REMOTE_LONG:
		k.r[0].remote_mta = longs;
		break;
	case BAD_REPLY_LONG:
		k.r[0].reply = longs;
		break;
	}
	assert_int_equal(B->put_msg(t.st, mp), -1);
	if (strstr(B->error(t.st), row->err) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", B->error(t.st), row->err);
	if (row->field >= BAD_ACTION) {
		struct mk ok;

		mk_msg(&ok, "Q2", "e2@x", 1);
		put(t.st, &ok.m);
		assert_int_equal(B->put_rcpt(t.st, "Q2", &k.r[0]), -1);
		assert_non_null(strstr(B->error(t.st), "put_rcpt: Q2:"));
		assert_non_null(strstr(B->error(t.st), row->err));
	}
	/* inside a batch, the batch is poisoned */
	assert_int_equal(B->begin(t.st), 0);
	assert_int_equal(B->put_msg(t.st, mp), -1);
	assert_int_equal(B->commit(t.st), -1);
	assert_int_equal(B->rollback(t.st), 0);
	assert_int_equal(
	    raw_int("SELECT count(*) FROM msg WHERE qid = 'Q1'"), 0);
	tmp_done(&t);
}

/*
 * Upserts: the journal replays, so the same put twice is one row.
 */
static void
test_upsert_idempotent(void **state)
{
	struct store_msg *out;
	struct tmp t;
	struct mk k;
	size_t n;

	(void)state;
	tmp_open(&t);
	mk_msg(&k, "Q1", "e1@x", 3);
	k.r[1].orcpt = (char *)"rfc822;c@d.test";
	k.r[2].orcpt = (char *)"rfc822;e@f.test";
	put(t.st, &k.m);
	put(t.st, &k.m);
	assert_int_equal(count_rows("msg"), 1);
	assert_int_equal(count_rows("rcpt"), 3);
	k.m.nrcpt = 1;
	k.m.sender = (char *)"other@src.test";
	k.m.envid = (char *)"e2@x";
	k.r[0].action = STORE_ACTION_DELIVERED;
	put(t.st, &k.m);
	assert_int_equal(count_rows("msg"), 1);
	assert_int_equal(count_rows("rcpt"), 1);
	assert_int_equal(B->lookup_envid(t.st, "e1@x", &out, &n), 0);
	assert_null(out);
	assert_int_equal(n, 0);
	assert_int_equal(B->lookup_envid(t.st, "e2@x", &out, &n), 1);
	assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	assert_int_equal(B->begin(t.st), 0);
	put(t.st, &k.m);
	put(t.st, &k.m);
	assert_int_equal(B->commit(t.st), 0);
	assert_int_equal(count_rows("msg"), 1);
	assert_int_equal(count_rows("rcpt"), 1);
	/* zero recipients removes them all; the message is still found */
	k.m.nrcpt = 0;
	put(t.st, &k.m);
	assert_int_equal(count_rows("rcpt"), 0);
	assert_int_equal(B->lookup_envid(t.st, "e2@x", &out, &n), 1);
	assert_int_equal(out[0].nrcpt, 0);
	assert_null(out[0].rcpts);
	store_msgs_free(out, n);
	tmp_done(&t);
}

static void
test_put_rcpt(void **state)
{
	struct store_rcpt r;
	struct store_msg *out;
	struct tmp t;
	struct mk k;
	size_t n;

	(void)state;
	tmp_open(&t);
	mk_msg(&k, "Q1", "e1@x", 2);
	put(t.st, &k.m);
	r = k.r[1];
	r.action = STORE_ACTION_TRANSFERRED;
	snprintf(r.status, sizeof(r.status), "2.0.0");
	r.remote_mta = (char *)"dns; hop2.test";
	r.last_attempt = NOW + 10;
	r.will_retry_until = 0;
	r.reply = (char *)"250 2.0.0 Ok";
	assert_int_equal(B->put_rcpt(t.st, "Q1", &r), 0);
	assert_int_equal(B->put_rcpt(t.st, "Q1", &r), 0); /* replayed */
	k.r[1] = r;
	assert_int_equal(B->lookup_envid(t.st, "e1@x", &out, &n), 1);
	assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	r.idx = 2;
	r.final_rcpt = (char *)"rfc822;new@dst.test";
	assert_int_equal(B->put_rcpt(t.st, "Q1", &r), 0);
	k.r[2] = r;
	k.m.nrcpt = 3;
	assert_int_equal(B->lookup_envid(t.st, "e1@x", &out, &n), 1);
	assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	assert_int_equal(count_rows("rcpt"), 3);
	assert_int_equal(B->put_rcpt(t.st, "NOPE", &r), -1);
	assert_string_equal(B->error(t.st), "put_rcpt: NOPE: no such message");
	assert_int_equal(B->put_rcpt(t.st, NULL, &r), -1);
	assert_string_equal(B->error(t.st), "put_rcpt: invalid queue id");
	assert_int_equal(B->put_rcpt(t.st, "Q1", NULL), -1);
	assert_string_equal(B->error(t.st), "put_rcpt: Q1: no recipient");
	tmp_done(&t);
}

static void
test_set_done_purge(void **state)
{
	struct store_query q = query_all();
	struct store_msg *out;
	struct hits h;
	struct tmp t;
	struct mk k;
	size_t n;

	(void)state;
	tmp_open(&t);
	mk_msg(&k, "Q1", "e1@x", 2);
	k.m.expires = NOW - 1;
	put(t.st, &k.m);
	assert_int_equal(B->purge(t.st, NOW, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(B->lookup_envid(t.st, "e1@x", &out, &n), 1);
	assert_int_equal(out[0].queued, 1);
	store_msgs_free(out, n);
	assert_int_equal(B->set_done(t.st, "Q1"), 0);
	assert_int_equal(B->set_done(t.st, "Q1"), 0);
	assert_int_equal(B->lookup_envid(t.st, "e1@x", &out, &n), 1);
	assert_int_equal(out[0].queued, 0);
	store_msgs_free(out, n);
	assert_int_equal(B->purge(t.st, NOW, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(B->lookup_envid(t.st, "e1@x", &out, &n), 0);
	assert_int_equal(search_text(t.st, &q, &h), 0);
	assert_int_equal(h.n, 0);
	assert_int_equal(count_rows("rcpt"), 0);
	assert_int_equal(B->set_done(t.st, "NOPE"), 0);
	assert_int_equal(B->set_done(t.st, "a/b"), -1);
	assert_string_equal(B->error(t.st), "set_done: invalid queue id");
	tmp_done(&t);
}

struct purge_row {
	const char *name;
	time_t expires_delta;
	int queued;
	size_t purged;
};

static const struct purge_row purge_rows[] = {
	{ "expired, done", -1, 0, 1 },
	{ "long expired, done", -86400 * 365, 0, 1 },
	{ "expires now, done", 0, 0, 0 },
	{ "future, done", 1, 0, 0 },
	{ "expired, queued", -1, 1, 0 },
	{ "long expired, queued", -86400 * 365, 1, 0 },
	{ "future, queued", 1, 1, 0 },
};

static const char *
purge_name(const void *row)
{
	return ((const struct purge_row *)row)->name;
}

static void
test_purge_row(void **state)
{
	const struct purge_row *row = *state;
	struct tmp t;
	struct mk k, other;
	size_t n;

	tmp_open(&t);
	mk_msg(&k, "Q1", "e1@x", 2);
	k.m.expires = NOW + row->expires_delta;
	k.m.queued = row->queued;
	put(t.st, &k.m);
	mk_msg(&other, "Q2", "e2@x", 1);
	other.m.queued = 0;
	other.m.expires = NOW + 1;
	put(t.st, &other.m);
	assert_int_equal(B->purge(t.st, NOW, &n), 0);
	assert_int_equal(n, row->purged);
	assert_int_equal(count_rows("msg"), 2 - row->purged);
	assert_int_equal(count_rows("rcpt"), 3 - 2 * row->purged);
	assert_int_equal(B->begin(t.st), 0);
	assert_int_equal(B->purge(t.st, NOW + 2, &n), 0);
	assert_int_equal(n, row->queued ? 1 : 2 - row->purged);
	assert_int_equal(B->rollback(t.st), 0);
	assert_int_equal(count_rows("msg"), 2 - row->purged);
	tmp_done(&t);
}

/* more than one purge chunk, with queued ones interleaved */
static void
test_purge_many(void **state)
{
	struct tmp t;
	struct mk k;
	size_t i, n;
	char qid[24];

	(void)state;
	tmp_open(&t);
	assert_int_equal(B->begin(t.st), 0);
	for (i = 0; i < 1500; i++) {
		snprintf(qid, sizeof(qid), "Q%zu", i);
		mk_msg(&k, qid, NULL, 2);
		k.m.expires = NOW - (time_t)i;
		k.m.queued = i % 3 == 0;
		put(t.st, &k.m);
	}
	assert_int_equal(B->commit(t.st), 0);
	assert_int_equal(B->purge(t.st, NOW, &n), 0);
	assert_int_equal(n, 1000);
	assert_int_equal(count_rows("msg"), 500);
	assert_int_equal(count_rows("rcpt"), 1000);
	assert_int_equal(
	    raw_int("SELECT count(*) FROM msg WHERE NOT queued"), 0);
	assert_int_equal(B->purge(t.st, NOW, &n), 0);
	assert_int_equal(n, 0);
	tmp_done(&t);
}

/*
 * search: filters, combinations, order and limit over one data set.
 */
static void
search_fixture(struct store *st)
{
	struct mk k;

	mk_msg(&k, "A", "env-a@x", 2);
	k.m.arrival = NOW;
	k.m.sender = (char *)"Alice@Src.test";
	k.r[0].orcpt = (char *)"rfc822;bob@dst.test";
	k.r[0].final_rcpt = (char *)"rfc822;bob@dst.test";
	k.r[0].action = STORE_ACTION_TRANSFERRED;
	k.r[1].orcpt = (char *)"rfc822; Carol@Dst.test ";
	k.r[1].final_rcpt = (char *)"rfc822;carol@dst.test";
	k.r[1].action = STORE_ACTION_FAILED;
	put(st, &k.m);
	mk_msg(&k, "B", "env-b@x", 1);
	k.m.arrival = NOW + 100;
	k.m.sender = (char *)"dave@src.test";
	k.r[0].orcpt = (char *)"rfc822;list@dst.test";
	k.r[0].final_rcpt = (char *)"rfc822;bob@dst.test";
	k.r[0].action = STORE_ACTION_EXPANDED;
	put(st, &k.m);
	mk_msg(&k, "C", "env-a@x", 1);
	k.m.arrival = NOW + 200;
	k.m.sender = (char *)"";
	k.r[0].orcpt = (char *)"rfc822;alice@src.test";
	k.r[0].final_rcpt = NULL;
	put(st, &k.m);
	mk_msg(&k, "D", NULL, 1);
	k.m.arrival = NOW + 100;
	k.m.sender = (char *)"alice@src.test";
	k.r[0].orcpt = NULL;
	k.r[0].final_rcpt = (char *)"rfc822;erin@dst.test";
	k.r[0].action = STORE_ACTION_DELIVERED;
	put(st, &k.m);
}

struct search_row {
	const char *name;
	const char *envid, *sender, *rcpt;
	time_t since;
	int action;
	size_t limit;
	const char *want;
};

static const struct search_row search_rows[] = {
	{ "all", NULL, NULL, NULL, 0, -1, 0, "C/0 D/0 B/0 A/0 A/1" },
	{ "limit 1", NULL, NULL, NULL, 0, -1, 1, "C/0" },
	{ "limit 4", NULL, NULL, NULL, 0, -1, 4, "C/0 D/0 B/0 A/0" },
	{ "limit above count", NULL, NULL, NULL, 0, -1, 99,
	    "C/0 D/0 B/0 A/0 A/1" },
	{ "envid", "env-a@x", NULL, NULL, 0, -1, 0, "C/0 A/0 A/1" },
	{ "envid is case-sensitive", "ENV-A@x", NULL, NULL, 0, -1, 0, "" },
	{ "envid unknown", "nope", NULL, NULL, 0, -1, 0, "" },
	{ "sender", NULL, "alice@src.test", NULL, 0, -1, 0, "D/0 A/0 A/1" },
	{ "sender any case", NULL, "ALICE@SRC.TEST", NULL, 0, -1, 0,
	    "D/0 A/0 A/1" },
	{ "null sender", NULL, "", NULL, 0, -1, 0, "C/0" },
	{ "rcpt via orcpt and final", NULL, NULL, "bob@dst.test", 0, -1, 0,
	    "B/0 A/0" },
	{ "rcpt with type prefix", NULL, NULL, "rfc822;bob@dst.test", 0, -1, 0,
	    "B/0 A/0" },
	{ "rcpt spaced and cased", NULL, NULL, "RFC822; CAROL@dst.TEST", 0, -1,
	    0, "A/1" },
	{ "rcpt only in final", NULL, NULL, "erin@dst.test", 0, -1, 0, "D/0" },
	{ "rcpt only in orcpt", NULL, NULL, "list@dst.test", 0, -1, 0, "B/0" },
	{ "rcpt partial is no match", NULL, NULL, "bob@dst", 0, -1, 0, "" },
	{ "rcpt like pattern is no match", NULL, NULL, "%@dst.test", 0, -1, 0,
	    "" },
	{ "since", NULL, NULL, NULL, NOW + 100, -1, 0, "C/0 D/0 B/0" },
	{ "since excludes all", NULL, NULL, NULL, NOW + 201, -1, 0, "" },
	{ "action queued", NULL, NULL, NULL, 0, STORE_ACTION_QUEUED, 0, "C/0" },
	{ "action failed", NULL, NULL, NULL, 0, STORE_ACTION_FAILED, 0, "A/1" },
	{ "action delayed none", NULL, NULL, NULL, 0, STORE_ACTION_DELAYED, 0,
	    "" },
	{ "envid and action", "env-a@x", NULL, NULL, 0,
	    STORE_ACTION_TRANSFERRED, 0, "A/0" },
	{ "sender and rcpt", NULL, "alice@src.test", "bob@dst.test", 0, -1, 0,
	    "A/0" },
	{ "sender and since", NULL, "alice@src.test", NULL, NOW + 1, -1, 0,
	    "D/0" },
	{ "rcpt and since", NULL, NULL, "bob@dst.test", NOW + 1, -1, 0, "B/0" },
	{ "all five", "env-a@x", "alice@src.test", "carol@dst.test", NOW,
	    STORE_ACTION_FAILED, 1, "A/1" },
	{ "all five, no match", "env-a@x", "alice@src.test", "carol@dst.test",
	    NOW, STORE_ACTION_DELIVERED, 0, "" },
	{ "envid and limit", "env-a@x", NULL, NULL, 0, -1, 2, "C/0 A/0" },
};

static const char *
search_name(const void *row)
{
	return ((const struct search_row *)row)->name;
}

/* One store for the whole search table (rows only read it). */
static struct tmp search_db;

static void
test_search(void **state)
{
	const struct search_row *row = *state;
	struct store_query q;
	struct hits h;

	if (search_db.st == NULL) {
		tmp_open(&search_db);
		search_fixture(search_db.st);
	}
	memset(&q, 0, sizeof(q));
	q.envid = row->envid;
	q.sender = row->sender;
	q.rcpt = row->rcpt;
	q.since = row->since;
	q.action = row->action;
	q.limit = row->limit;
	if (search_text(search_db.st, &q, &h) != 0)
		fail_msg("search: %s", B->error(search_db.st));
	assert_string_equal(h.text, row->want);
	/* the prepared statement gives the same answer again */
	assert_int_equal(search_text(search_db.st, &q, &h), 0);
	assert_string_equal(h.text, row->want);
}

static void
test_search_stop_and_errors(void **state)
{
	struct store_query q = query_all();
	char longs[STORE_TEXT_MAX + 2];
	struct store_msg *out;
	struct hits h;
	struct tmp t;
	size_t n;

	(void)state;
	tmp_open(&t);
	search_fixture(t.st);
	memset(&h, 0, sizeof(h));
	h.stop_after = 2;
	assert_int_equal(B->search(t.st, &q, hits_fn, &h), 0);
	assert_string_equal(h.text, "C/0 D/0");
	/* the connection is usable right after a stopped search */
	assert_int_equal(B->lookup_envid(t.st, "env-b@x", &out, &n), 1);
	store_msgs_free(out, n);
	q.action = 7;
	assert_int_equal(search_text(t.st, &q, &h), -1);
	assert_string_equal(B->error(t.st), "search: invalid action 7");
	q.action = -2;
	assert_int_equal(search_text(t.st, &q, &h), -1);
	q.action = -1;
	memset(longs, 'x', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	q.rcpt = longs;
	assert_int_equal(search_text(t.st, &q, &h), -1);
	assert_string_equal(B->error(t.st), "search: rcpt longer than 2048");
	assert_int_equal(B->search(t.st, NULL, hits_fn, &h), -1);
	assert_int_equal(B->search(t.st, &q, NULL, &h), -1);
	tmp_done(&t);
}

static void
test_lookup_many(void **state)
{
	struct store_msg *out;
	struct tmp t;
	struct mk k;
	size_t i, n;
	char qid[24];

	(void)state;
	tmp_open(&t);
	assert_int_equal(B->begin(t.st), 0);
	for (i = 0; i < STORE_LOOKUP_MAX + 5; i++) {
		snprintf(qid, sizeof(qid), "M%zu", i);
		mk_msg(&k, qid, "same@x", 3);
		k.r[1].idx = 1;
		k.r[2].idx = 7;
		put(t.st, &k.m);
	}
	mk_msg(&k, "OTHER", "other@x", 1);
	put(t.st, &k.m);
	assert_int_equal(B->commit(t.st), 0);
	assert_int_equal(B->lookup_envid(t.st, "same@x", &out, &n), 1);
	assert_int_equal(n, STORE_LOOKUP_MAX);
	for (i = 0; i < n; i++) {
		snprintf(qid, sizeof(qid), "M%zu", i);
		assert_string_equal(out[i].qid, qid);
		assert_int_equal(out[i].nrcpt, 3);
		assert_int_equal(out[i].rcpts[2].idx, 7);
	}
	store_msgs_free(out, n);
	assert_int_equal(B->lookup_envid(t.st, "other@x", &out, &n), 1);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].qid, "OTHER");
	store_msgs_free(out, n);
	assert_int_equal(B->lookup_envid(t.st, "none@x", &out, &n), 0);
	assert_int_equal(
	    B->lookup_envid(t.st,
	        "01234567890123456789012345678901234567890123456789"
	        "01234567890123456789012345678901234567890123456789x",
	        &out, &n),
	    0);
	assert_int_equal(B->lookup_envid(t.st, "", &out, &n), 0);
	assert_int_equal(B->lookup_envid(t.st, NULL, &out, &n), -1);
	assert_string_equal(B->error(t.st), "lookup_envid: no envid");
	tmp_done(&t);
}

/* Records this code did not write are reported, not trusted. */
struct corrupt_row {
	const char *name;
	const char *sql;
	const char *err;
};

static const struct corrupt_row corrupt_rows[] = {
	{ "action out of range", "UPDATE rcpt SET action = 99",
	    "lookup_envid: Q1: corrupt recipient record" },
	{ "negative action", "UPDATE rcpt SET action = -1",
	    "lookup_envid: Q1: corrupt recipient record" },
	{ "status too long", "UPDATE rcpt SET status = '2.0.0000000'",
	    "lookup_envid: Q1: corrupt recipient record" },
	{ "nul byte in reply", "UPDATE rcpt SET reply = '\\x410042'",
	    "lookup_envid: Q1: corrupt recipient record" },
	{ "qid too long",
	    "UPDATE msg SET qid = '0123456789012345678901234567890123'",
	    "lookup_envid: corrupt message record" },
	{ "certifier too long", "UPDATE msg SET certifier = '" CERT "XX'",
	    "lookup_envid: corrupt message record" },
	{ "table dropped", "DROP TABLE rcpt",
	    "lookup_envid: postgresql: relation \"rcpt\" does not exist" },
};

static const char *
corrupt_name(const void *row)
{
	return ((const struct corrupt_row *)row)->name;
}

static void
test_corrupt(void **state)
{
	const struct corrupt_row *row = *state;
	struct store_msg *out = (struct store_msg *)1;
	struct tmp t;
	struct mk k;
	size_t n = 99;

	tmp_open(&t);
	mk_msg(&k, "Q1", "e1@x", 2);
	put(t.st, &k.m);
	raw_exec(row->sql);
	assert_int_equal(B->lookup_envid(t.st, "e1@x", &out, &n), -1);
	assert_null(out);
	assert_int_equal(n, 0);
	if (strstr(B->error(t.st), row->err) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", B->error(t.st), row->err);
	tmp_done(&t);
}

static void
test_batches(void **state)
{
	struct tmp t;
	struct mk k;
	size_t n;

	(void)state;
	tmp_open(&t);
	mk_msg(&k, "Q1", "e1@x", 1);
	assert_int_equal(B->begin(t.st), 0);
	put(t.st, &k.m);
	/* not visible to another connection before commit */
	assert_int_equal(count_rows("msg"), 0);
	assert_int_equal(B->rollback(t.st), 0);
	assert_int_equal(count_rows("msg"), 0);
	assert_int_equal(B->commit(t.st), -1);
	assert_string_equal(B->error(t.st), "commit: no batch is open");
	assert_int_equal(B->rollback(t.st), 0);
	assert_int_equal(B->begin(t.st), 0);
	assert_int_equal(B->begin(t.st), -1);
	assert_string_equal(B->error(t.st), "begin: a batch is already open");
	assert_int_equal(B->sync(t.st), -1);
	assert_string_equal(B->error(t.st), "sync: a batch is open");
	put(t.st, &k.m);
	assert_int_equal(B->put_rcpt(t.st, "NOPE", &k.r[0]), -1);
	assert_int_equal(B->commit(t.st), -1);
	assert_string_equal(B->error(t.st),
	    "commit: a write in this batch failed; roll it back");
	assert_int_equal(B->rollback(t.st), 0);
	assert_int_equal(count_rows("msg"), 0);
	/* a server-side error inside the batch (the transaction is then
	 * aborted on the server): commit refuses too */
	raw_exec("ALTER TABLE msg ADD CONSTRAINT no_q2 CHECK (qid <> 'Q2')");
	assert_int_equal(B->begin(t.st), 0);
	put(t.st, &k.m);
	mk_msg(&k, "Q2", "e2@x", 1);
	assert_int_equal(B->put_msg(t.st, &k.m), -1);
	assert_non_null(strstr(B->error(t.st), "put_msg: postgresql: "));
	assert_int_equal(B->commit(t.st), -1);
	assert_int_equal(B->rollback(t.st), 0);
	raw_exec("ALTER TABLE msg DROP CONSTRAINT no_q2");
	assert_int_equal(count_rows("msg"), 0);
	/* outside a batch, a failing put_msg leaves nothing half-written */
	raw_exec("ALTER TABLE rcpt ADD CONSTRAINT no_idx1 CHECK (idx <> 1)");
	mk_msg(&k, "Q3", "e3@x", 2);
	assert_int_equal(B->put_msg(t.st, &k.m), -1);
	raw_exec("ALTER TABLE rcpt DROP CONSTRAINT no_idx1");
	assert_int_equal(count_rows("msg"), 0);
	assert_int_equal(count_rows("rcpt"), 0);
	/* and the next batch is clean */
	mk_msg(&k, "Q1", "e1@x", 1);
	assert_int_equal(B->begin(t.st), 0);
	put(t.st, &k.m);
	assert_int_equal(B->set_done(t.st, "Q1"), 0);
	assert_int_equal(B->commit(t.st), 0);
	assert_int_equal(B->sync(t.st), 0);
	assert_int_equal(count_rows("msg"), 1);
	assert_int_equal(raw_int("SELECT count(*) FROM msg WHERE queued"), 0);
	assert_int_equal(B->begin(t.st), 0);
	assert_int_equal(B->purge(t.st, 0, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(B->commit(t.st), 0);
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
	struct mk k;
	size_t n;

	(void)state;
	tmp_open(&t);
	rd = B->open(pg.uri, NULL, t.err, sizeof(t.err));
	assert_non_null(rd);
	mk_msg(&k, "Q1", "e1@x", 1);
	put(t.st, &k.m);

	/* down: every call fails with a message, never blocks for long */
	assert_int_equal(pg_stop(), 0);
	mk_msg(&k, "Q2", "e2@x", 1);
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
	put(t.st, &k.m);
	assert_int_equal(B->commit(t.st), 0);
	assert_int_equal(B->lookup_envid(rd, "e2@x", &out, &n), 1);
	store_msgs_free(out, n);

	/* lost inside a batch: the batch fails, nothing of it lands */
	assert_int_equal(B->begin(t.st), 0);
	mk_msg(&k, "Q3", "e3@x", 1);
	put(t.st, &k.m);
	assert_int_equal(pg_stop(), 0);
	assert_int_equal(pg_start(), 0);
	mk_msg(&k, "Q4", "e4@x", 1);
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
	put(t.st, &k.m);
	assert_int_equal(B->commit(t.st), 0);
	assert_int_equal(count_rows("msg"), 3);
	B->close(rd);
	tmp_done(&t);
}

/*
 * Two handles, two threads: the queue's writer and the MTQP reader.
 */
#define MT_MSGS 1000
#define MT_BATCH 64

struct mt {
	struct store *st;
	volatile int done;
	volatile int committed;
	int errors;
	char err[512];
};

static void *
mt_writer(void *arg)
{
	struct mt *w = arg;
	struct mk k;
	char qid[24], envid[32];
	int i;

	for (i = 0; i < MT_MSGS; i++) {
		if (i % MT_BATCH == 0 && B->begin(w->st) == -1)
			goto fail;
		snprintf(qid, sizeof(qid), "W%d", i);
		snprintf(envid, sizeof(envid), "mt%d@x", i);
		mk_msg(&k, qid, envid, 1);
		if (B->put_msg(w->st, &k.m) == -1)
			goto fail;
		if (i % MT_BATCH == MT_BATCH - 1 || i == MT_MSGS - 1) {
			if (B->commit(w->st) == -1)
				goto fail;
			__atomic_store_n(
			    &w->committed, i + 1, __ATOMIC_RELEASE);
			if (B->sync(w->st) == -1)
				goto fail;
		}
	}
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
fail:
	snprintf(w->err, sizeof(w->err), "%s", B->error(w->st));
	w->errors++;
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

struct mt_reader {
	struct store *st;
	struct mt *w;
	int errors;
	size_t lookups, missing;
	char err[512];
};

static void *
mt_reader(void *arg)
{
	struct mt_reader *r = arg;
	struct store_query q = query_all();
	struct store_msg *out;
	struct hits h;
	char envid[32];
	size_t n, purged;
	int c, i = 0;

	q.limit = 5;
	while (!__atomic_load_n(&r->w->done, __ATOMIC_ACQUIRE) ||
	    r->lookups < 100) {
		c = __atomic_load_n(&r->w->committed, __ATOMIC_ACQUIRE);
		if (c == 0)
			continue;
		snprintf(envid, sizeof(envid), "mt%d@x", i++ % c);
		switch (B->lookup_envid(r->st, envid, &out, &n)) {
		case 1:
			store_msgs_free(out, n);
			break;
		case 0:
			r->missing++;
			break;
		default:
			goto fail;
		}
		r->lookups++;
		if (r->lookups % 50 == 0 &&
		    (search_text(r->st, &q, &h) == -1 ||
		        B->purge(r->st, NOW, &purged) == -1))
			goto fail;
	}
	return NULL;
fail:
	snprintf(r->err, sizeof(r->err), "%s", B->error(r->st));
	r->errors++;
	return NULL;
}

static void
test_two_threads(void **state)
{
	struct mt w;
	struct mt_reader r;
	struct store_query q = query_all();
	struct hits h;
	pthread_t tw, tr;
	struct tmp t;

	(void)state;
	tmp_open(&t);
	memset(&w, 0, sizeof(w));
	memset(&r, 0, sizeof(r));
	w.st = t.st;
	r.w = &w;
	r.st = B->open(pg.uri, NULL, t.err, sizeof(t.err));
	assert_non_null(r.st);
	assert_int_equal(pthread_create(&tw, NULL, mt_writer, &w), 0);
	assert_int_equal(pthread_create(&tr, NULL, mt_reader, &r), 0);
	pthread_join(tw, NULL);
	pthread_join(tr, NULL);
	if (w.errors)
		fail_msg("writer: %s", w.err);
	if (r.errors)
		fail_msg("reader: %s", r.err);
	assert_int_equal(r.missing, 0);
	assert_true(r.lookups >= 100);
	q.limit = 0;
	assert_int_equal(search_text(r.st, &q, &h), 0);
	assert_int_equal(h.n, MT_MSGS);
	B->close(r.st);
	tmp_done(&t);
}

/* Handles opened at the same moment on an empty database: one creates
 * the schema, the others wait for it (advisory lock) and find it. */
struct opener {
	struct store *st;
	char err[512];
};

static void *
opener_run(void *arg)
{
	struct opener *o = arg;

	o->st = B->open(pg.uri, NULL, o->err, sizeof(o->err));
	return NULL;
}

static void
test_concurrent_open(void **state)
{
	struct opener o[4];
	pthread_t th[4];
	struct mk k;
	size_t i;

	(void)state;
	db_empty();
	for (i = 0; i < 4; i++) {
		memset(&o[i], 0, sizeof(o[i]));
		assert_int_equal(
		    pthread_create(&th[i], NULL, opener_run, &o[i]), 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 4; i++)
		if (o[i].st == NULL)
			fail_msg("open %zu: %s", i, o[i].err);
	mk_msg(&k, "Q1", "e@x", 1);
	put(o[0].st, &k.m);
	for (i = 0; i < 4; i++)
		B->close(o[i].st);
	assert_int_equal(raw_int("SELECT count(*) FROM msgtrk_schema"), 1);
	assert_int_equal(raw_int("SELECT version FROM msgtrk_schema"), 1);
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
#define BULK_BATCH 64

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
test_bulk(void **state)
{
	char qid[24], envid[64];
	struct store_msg *out;
	struct tmp t;
	struct mk k;
	double t0, t1;
	size_t i, n;

	(void)state;
	tmp_open(&t);
	t0 = now_sec();
	for (i = 0; i < BULK_MSGS; i++) {
		if (i % BULK_BATCH == 0)
			assert_int_equal(B->begin(t.st), 0);
		snprintf(qid, sizeof(qid), "B%zu", i);
		snprintf(envid, sizeof(envid), "%020zx@client.example.org",
		    i * 11400714819323198485u);
		mk_msg(&k, qid, envid, 1);
		put(t.st, &k.m);
		if (i % BULK_BATCH == BULK_BATCH - 1 || i == BULK_MSGS - 1)
			assert_int_equal(B->commit(t.st), 0);
	}
	t1 = now_sec();
	printf("bulk: %d messages (1 rcpt) in batches of %d: %.0f msg/s\n",
	    BULK_MSGS, BULK_BATCH, BULK_MSGS / (t1 - t0));
	t0 = now_sec();
	for (i = 0; i < 2000; i++) {
		snprintf(envid, sizeof(envid), "%020zx@client.example.org",
		    (i * 7919 % BULK_MSGS) * 11400714819323198485u);
		assert_int_equal(B->lookup_envid(t.st, envid, &out, &n), 1);
		store_msgs_free(out, n);
	}
	t1 = now_sec();
	printf("bulk: lookup_envid %.0f/s\n", 2000 / (t1 - t0));
	tmp_done(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upsert_idempotent),
		cmocka_unit_test(test_put_rcpt),
		cmocka_unit_test(test_set_done_purge),
		cmocka_unit_test(test_purge_many),
		cmocka_unit_test(test_search_stop_and_errors),
		cmocka_unit_test(test_lookup_many),
		cmocka_unit_test(test_batches),
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_two_threads),
		cmocka_unit_test(test_concurrent_open),
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
	failed += TABLE_RUN("roundtrip", test_roundtrip, rt_rows, rt_name);
	failed +=
	    TABLE_RUN("search_fields", test_search_fields, rt_rows, rt_name);
	failed += TABLE_RUN("bad_put", test_bad_put, bad_rows, bad_name);
	failed += TABLE_RUN("purge", test_purge_row, purge_rows, purge_name);
	failed += TABLE_RUN("search", test_search, search_rows, search_name);
	tmp_done(&search_db);
	failed +=
	    TABLE_RUN("corrupt", test_corrupt, corrupt_rows, corrupt_name);
	failed += TABLE_RUN("open_fail", test_open_fail, open_rows, open_name);
	failed += cmocka_run_group_tests_name("store_pg", tests, NULL, NULL);
	pg_teardown();
	return failed;
}
