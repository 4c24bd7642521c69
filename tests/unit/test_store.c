/*
 * test_store: the tracking store registry and its SQLite backend, on real
 * files in fresh temporary directories.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store.h"
#include "table.h"

#define B (&store_backend_sqlite)
#define CERT "AAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define NOW ((time_t)1700000000)

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
	t->st = B->open("sqlite", t->dir, t->err, sizeof(t->err));
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
	struct store_msg last_m;
	struct store_rcpt last_r;
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

/* Fetches the single message with this envid, or by qid via search. */
static void
fetch_check(struct store *st, const struct store_msg *want)
{
	struct store_msg *out = NULL;
	size_t n = 0;

	if (want->envid == NULL)
		return;
	assert_int_equal(B->lookup_envid(st, want->envid, &out, &n), 1);
	assert_int_equal(n, 1);
	assert_msg_equal(&out[0], want);
	store_msgs_free(out, n);
}

/*
 * Round trips: every action and every optional field present or absent.
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
	/* search hands the same values to its callback */
	memset(&h, 0, sizeof(h));
	assert_int_equal(search_text(t.st, &q, &h), 0);
	assert_string_equal(h.text, "Q1/0");
	/* after a reopen, too */
	B->close(t.st);
	t.st = B->open("sqlite", t.dir, t.err, sizeof(t.err));
	assert_non_null(t.st);
	fetch_check(t.st, &k.m);
	tmp_done(&t);
}

/* search's callback sees the same fields as lookup_envid. */
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
	assert_int_equal(B->search(t.st, &q, cmp_fn, &c), 0);
	assert_int_equal(c.calls, 1);
	tmp_done(&t);
}

/*
 * Invalid writes: each fails with a precise error and stores nothing.
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
	struct store_query q = query_all();
	struct store_msg *mp;
	struct hits h;
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
	/* the same recipient through put_rcpt, once a message exists */
	if (row->field >= BAD_ACTION) {
		struct mk ok;

		mk_msg(&ok, "Q2", "e2@x", 1);
		put(t.st, &ok.m);
		assert_int_equal(B->put_rcpt(t.st, "Q2", &k.r[0]), -1);
		assert_non_null(strstr(B->error(t.st), "put_rcpt: Q2:"));
		assert_non_null(strstr(B->error(t.st), row->err));
	}
	/* nothing of Q1 was stored */
	assert_int_equal(search_text(t.st, &q, &h), 0);
	assert_true(strstr(h.text, "Q1/") == NULL);
	tmp_done(&t);
}

/*
 * Upserts: the journal replays, so the same put twice is one row.
 */
static size_t
count_rows(const char *dir, const char *table)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	return (size_t)raw_int(dir, sql);
}

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
	assert_int_equal(count_rows(t.dir, "msg"), 1);
	assert_int_equal(count_rows(t.dir, "rcpt"), 3);
	/* a replay with fewer recipients and new values replaces all */
	k.m.nrcpt = 1;
	k.m.sender = (char *)"other@src.test";
	k.m.envid = (char *)"e2@x";
	k.r[0].action = STORE_ACTION_DELIVERED;
	put(t.st, &k.m);
	assert_int_equal(count_rows(t.dir, "msg"), 1);
	assert_int_equal(count_rows(t.dir, "rcpt"), 1);
	assert_int_equal(B->lookup_envid(t.st, "e1@x", &out, &n), 0);
	assert_null(out);
	assert_int_equal(n, 0);
	assert_int_equal(B->lookup_envid(t.st, "e2@x", &out, &n), 1);
	assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	/* the same inside a batch */
	assert_int_equal(B->begin(t.st), 0);
	put(t.st, &k.m);
	put(t.st, &k.m);
	assert_int_equal(B->commit(t.st), 0);
	assert_int_equal(count_rows(t.dir, "msg"), 1);
	assert_int_equal(count_rows(t.dir, "rcpt"), 1);
	/* zero recipients removes them all */
	k.m.nrcpt = 0;
	put(t.st, &k.m);
	assert_int_equal(count_rows(t.dir, "rcpt"), 0);
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
	/* the first attempt moves recipient 1 on */
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
	/* a new index is created */
	r.idx = 2;
	r.final_rcpt = (char *)"rfc822;new@dst.test";
	assert_int_equal(B->put_rcpt(t.st, "Q1", &r), 0);
	k.r[2] = r;
	k.m.nrcpt = 3;
	assert_int_equal(B->lookup_envid(t.st, "e1@x", &out, &n), 1);
	assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	assert_int_equal(count_rows(t.dir, "rcpt"), 3);
	/* unknown message, bad qid */
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
	/* expired but queued: kept */
	assert_int_equal(B->purge(t.st, NOW, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(B->lookup_envid(t.st, "e1@x", &out, &n), 1);
	assert_int_equal(out[0].queued, 1);
	store_msgs_free(out, n);
	assert_int_equal(B->set_done(t.st, "Q1"), 0);
	assert_int_equal(B->set_done(t.st, "Q1"), 0); /* replayed */
	assert_int_equal(B->lookup_envid(t.st, "e1@x", &out, &n), 1);
	assert_int_equal(out[0].queued, 0);
	store_msgs_free(out, n);
	assert_int_equal(B->purge(t.st, NOW, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(B->lookup_envid(t.st, "e1@x", &out, &n), 0);
	assert_int_equal(search_text(t.st, &q, &h), 0);
	assert_int_equal(h.n, 0);
	assert_int_equal(count_rows(t.dir, "rcpt"), 0);
	/* unknown qid: nothing to do; invalid qid: an error */
	assert_int_equal(B->set_done(t.st, "NOPE"), 0);
	assert_int_equal(B->set_done(t.st, "a/b"), -1);
	assert_string_equal(B->error(t.st), "set_done: invalid queue id");
	tmp_done(&t);
}

/* purge by expiry and queued state, relative to now */
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
	/* a neighbour that must survive */
	mk_msg(&other, "Q2", "e2@x", 1);
	other.m.queued = 0;
	other.m.expires = NOW + 1;
	put(t.st, &other.m);
	assert_int_equal(B->purge(t.st, NOW, &n), 0);
	assert_int_equal(n, row->purged);
	assert_int_equal(count_rows(t.dir, "msg"), 2 - row->purged);
	assert_int_equal(count_rows(t.dir, "rcpt"), 3 - 2 * row->purged);
	/* inside a batch too, undone by rollback */
	assert_int_equal(B->begin(t.st), 0);
	assert_int_equal(B->purge(t.st, NOW + 2, &n), 0);
	assert_int_equal(n, row->queued ? 1 : 2 - row->purged);
	assert_int_equal(B->rollback(t.st), 0);
	assert_int_equal(count_rows(t.dir, "msg"), 2 - row->purged);
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
	assert_int_equal(n, 1000); /* every third one is queued */
	assert_int_equal(count_rows(t.dir, "msg"), 500);
	assert_int_equal(count_rows(t.dir, "rcpt"), 1000);
	assert_int_equal(raw_int(t.dir, "SELECT min(queued) FROM msg"), 1);
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

	/* A: oldest, two recipients */
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
	/* B: newer, alias expansion target differs */
	mk_msg(&k, "B", "env-b@x", 1);
	k.m.arrival = NOW + 100;
	k.m.sender = (char *)"dave@src.test";
	k.r[0].orcpt = (char *)"rfc822;list@dst.test";
	k.r[0].final_rcpt = (char *)"rfc822;bob@dst.test";
	k.r[0].action = STORE_ACTION_EXPANDED;
	put(st, &k.m);
	/* C: newest, null sender, queued */
	mk_msg(&k, "C", "env-a@x", 1);
	k.m.arrival = NOW + 200;
	k.m.sender = (char *)"";
	k.r[0].orcpt = (char *)"rfc822;alice@src.test";
	k.r[0].final_rcpt = NULL;
	put(st, &k.m);
	/* D: same arrival as B, no envid */
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
	{ "rcpt stored as same-as-orcpt marker", NULL, NULL, "1", 0, -1, 0,
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

static void
test_search(void **state)
{
	const struct search_row *row = *state;
	struct store_query q;
	struct hits h;
	struct tmp t;

	tmp_open(&t);
	search_fixture(t.st);
	memset(&q, 0, sizeof(q));
	q.envid = row->envid;
	q.sender = row->sender;
	q.rcpt = row->rcpt;
	q.since = row->since;
	q.action = row->action;
	q.limit = row->limit;
	assert_int_equal(search_text(t.st, &q, &h), 0);
	assert_string_equal(h.text, row->want);
	/* the cached statement gives the same answer again */
	assert_int_equal(search_text(t.st, &q, &h), 0);
	assert_string_equal(h.text, row->want);
	tmp_done(&t);
}

static void
test_search_stop_and_errors(void **state)
{
	struct store_query q = query_all();
	char longs[STORE_TEXT_MAX + 2];
	struct hits h;
	struct tmp t;

	(void)state;
	tmp_open(&t);
	search_fixture(t.st);
	memset(&h, 0, sizeof(h));
	h.stop_after = 2;
	assert_int_equal(B->search(t.st, &q, hits_fn, &h), 0);
	assert_string_equal(h.text, "C/0 D/0");
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

/*
 * lookup_envid: several messages per envid, oldest first, capped.
 */
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
		k.r[2].idx = 7; /* sparse indexes keep their order */
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
	/* equal envid hashes never mix two envids: give M0 the hash of
	 * other@x */
	raw_exec(t.dir,
	    "UPDATE msg SET envid_h = (SELECT envid_h FROM msg"
	    " WHERE qid = 'OTHER') WHERE qid = 'M0'");
	assert_int_equal(B->lookup_envid(t.st, "other@x", &out, &n), 1);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].qid, "OTHER");
	store_msgs_free(out, n);
	/* not found, overlong, empty, NULL */
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
	{ "qid too long",
	    "UPDATE msg SET qid = '0123456789012345678901234567890123'",
	    "lookup_envid: corrupt message record" },
	{ "certifier too long", "UPDATE msg SET certifier = '" CERT "XX'",
	    "lookup_envid: corrupt message record" },
	{ "table dropped", "DROP TABLE rcpt", "lookup_envid: no such table" },
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
	raw_exec(t.dir, row->sql);
	assert_int_equal(B->lookup_envid(t.st, "e1@x", &out, &n), -1);
	assert_null(out);
	assert_int_equal(n, 0);
	if (strstr(B->error(t.st), row->err) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", B->error(t.st), row->err);
	tmp_done(&t);
}

/*
 * Batches.
 */
static void
test_batches(void **state)
{
	struct tmp t;
	struct mk k;
	size_t n;

	(void)state;
	tmp_open(&t);
	mk_msg(&k, "Q1", "e1@x", 1);
	/* rollback discards */
	assert_int_equal(B->begin(t.st), 0);
	put(t.st, &k.m);
	assert_int_equal(B->rollback(t.st), 0);
	assert_int_equal(count_rows(t.dir, "msg"), 0);
	/* misuse */
	assert_int_equal(B->commit(t.st), -1);
	assert_string_equal(B->error(t.st), "commit: no batch is open");
	assert_int_equal(B->rollback(t.st), 0);
	assert_int_equal(B->begin(t.st), 0);
	assert_int_equal(B->begin(t.st), -1);
	assert_string_equal(B->error(t.st), "begin: a batch is already open");
	assert_int_equal(B->sync(t.st), -1);
	assert_string_equal(B->error(t.st), "sync: a batch is open");
	/* a failed write poisons the batch */
	put(t.st, &k.m);
	assert_int_equal(B->put_rcpt(t.st, "NOPE", &k.r[0]), -1);
	assert_int_equal(B->commit(t.st), -1);
	assert_string_equal(B->error(t.st),
	    "commit: a write in this batch failed; roll it back");
	assert_int_equal(B->rollback(t.st), 0);
	assert_int_equal(count_rows(t.dir, "msg"), 0);
	/* and the next batch is clean */
	assert_int_equal(B->begin(t.st), 0);
	put(t.st, &k.m);
	assert_int_equal(B->set_done(t.st, "Q1"), 0);
	assert_int_equal(B->commit(t.st), 0);
	assert_int_equal(B->sync(t.st), 0);
	assert_int_equal(B->sync(t.st), 0);
	assert_int_equal(count_rows(t.dir, "msg"), 1);
	assert_int_equal(raw_int(t.dir, "SELECT queued FROM msg"), 0);
	/* purge of nothing in a batch, then commit */
	assert_int_equal(B->begin(t.st), 0);
	assert_int_equal(B->purge(t.st, 0, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(B->commit(t.st), 0);
	tmp_done(&t);
}

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
	struct mk k;
	char from[128], to[128];
	size_t n;

	(void)state;
	tmp_open(&t);
	mk_msg(&k, "Q1", "e1@x", 2);
	put(t.st, &k.m);
	assert_int_equal(B->sync(t.st), 0);
	tmp_make(&c);
	snprintf(from, sizeof(from), "%s/tracking.db", t.dir);
	snprintf(to, sizeof(to), "%s/tracking.db", c.dir);
	copy_file(from, to);
	c.st = B->open("sqlite", c.dir, c.err, sizeof(c.err));
	assert_non_null(c.st);
	assert_int_equal(B->lookup_envid(c.st, "e1@x", &out, &n), 1);
	assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	tmp_done(&c);
	/* reopen without sync: the WAL is replayed */
	k.m.queued = 0;
	put(t.st, &k.m);
	B->close(t.st);
	t.st = B->open("sqlite", t.dir, t.err, sizeof(t.err));
	assert_non_null(t.st);
	assert_int_equal(B->lookup_envid(t.st, "e1@x", &out, &n), 1);
	assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	tmp_done(&t);
}

/*
 * Two handles, two threads: the queue's writer and the MTQP reader.
 */
#define MT_MSGS 3000
#define MT_BATCH 64

struct mt {
	struct store *st;
	volatile int done; /* written by the writer */
	volatile int committed;
	int errors;
	size_t lookups, found;
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
		if (i % MT_BATCH == 0 && w->st != NULL && B->begin(w->st) == -1)
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
			/* as the queue does before deleting a segment */
			if (i % (MT_BATCH * 8) == MT_BATCH - 1 &&
			    B->sync(w->st) == -1)
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
			r->missing++; /* committed before: must be there */
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
	r.st = B->open("sqlite", t.dir, t.err, sizeof(t.err));
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
	/* the reader handle sees every message */
	q.limit = 0;
	assert_int_equal(search_text(r.st, &q, &h), 0);
	assert_int_equal(h.n, MT_MSGS);
	B->close(r.st);
	tmp_done(&t);
}

/* Both handles opened at the same moment on a new file: one creates the
 * schema, the other waits and finds it. */
struct opener {
	const char *dir;
	struct store *st;
	char err[512];
};

static void *
opener_run(void *arg)
{
	struct opener *o = arg;

	o->st = B->open("sqlite", o->dir, o->err, sizeof(o->err));
	return NULL;
}

static void
test_concurrent_open(void **state)
{
	struct opener o[4];
	pthread_t th[4];
	struct tmp t;
	struct mk k;
	size_t i;

	(void)state;
	tmp_make(&t);
	for (i = 0; i < 4; i++) {
		memset(&o[i], 0, sizeof(o[i]));
		o[i].dir = t.dir;
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
	assert_int_equal(raw_int(t.dir, "PRAGMA user_version"), 1);
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
	    "tracking.db: schema version 2 is newer than this program's (1)" },
	{ "foreign database", OC_FOREIGN,
	    "tracking.db: not a msgtrk tracking store (no schema version, "
	    "1 objects)" },
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
				st = B->open(uri, dir, t.err, sizeof(t.err));
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
		st = B->open("sqlite", t.dir, t.err, sizeof(t.err));
		assert_non_null(st);
		B->close(st);
		raw_exec(t.dir, "PRAGMA user_version = 2");
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
	st =
	    B->open(uri, longdir != NULL ? longdir : dir, t.err, sizeof(t.err));
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
	char qid[24], envid[64], sender[48], orcpt[64], reply[64];
	struct store_msg *out;
	struct tmp t;
	struct mk k;
	double t0, t1, t2;
	sqlite3_int64 pages, psize;
	size_t i, n;

	(void)state;
	tmp_open(&t);
	t0 = now_sec();
	for (i = 0; i < BULK_MSGS; i++) {
		if (i % BULK_BATCH == 0)
			assert_int_equal(B->begin(t.st), 0);
		/* realistic sizes: a 12-char queue id, a msgtrk-style
		 * unique envid (20 base32 chars @ host), 27-char certifier */
		snprintf(qid, sizeof(qid), "4%011zX",
		    i * 2654435761u % 0xffffffffffu);
		snprintf(envid, sizeof(envid), "%020zx@client.example.org",
		    i * 11400714819323198485u);
		snprintf(
		    sender, sizeof(sender), "user%zu@example.org", i % 977);
		snprintf(orcpt, sizeof(orcpt),
		    "rfc822;rcpt%zu@dest.example.net", i % 5003);
		snprintf(
		    reply, sizeof(reply), "250 2.0.0 Ok: queued as %s", qid);
		mk_msg(&k, qid, envid, 1);
		k.m.sender = sender;
		k.m.reporting_mta = (char *)"dns; mx1.example.org";
		k.m.arrival = NOW + (time_t)i / 1000;
		k.m.expires = k.m.arrival + 9 * 86400;
		k.m.queued = 0;
		k.r[0].orcpt = orcpt;
		k.r[0].final_rcpt = orcpt;
		k.r[0].action = STORE_ACTION_TRANSFERRED;
		snprintf(k.r[0].status, sizeof(k.r[0].status), "2.0.0");
		k.r[0].remote_mta = (char *)"dns; mx.dest.example.net";
		k.r[0].last_attempt = k.m.arrival + 1;
		k.r[0].will_retry_until = 0;
		k.r[0].reply = reply;
		put(t.st, &k.m);
		if (i % BULK_BATCH == BULK_BATCH - 1 || i == BULK_MSGS - 1)
			assert_int_equal(B->commit(t.st), 0);
	}
	t1 = now_sec();
	assert_int_equal(B->sync(t.st), 0);
	t2 = now_sec();
	pages = raw_int(t.dir, "PRAGMA page_count");
	psize = raw_int(t.dir, "PRAGMA page_size");
	printf("bulk: %d messages (1 rcpt) in batches of %d: %.0f msg/s "
	       "(%.2f s), sync %.3f s\n",
	    BULK_MSGS, BULK_BATCH, BULK_MSGS / (t1 - t0), t1 - t0, t2 - t1);
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
	        "WHERE name = 'msg_envid'") /
	        BULK_MSGS,
	    (double)raw_int(t.dir,
	        "SELECT count(*) * 4096 FROM dbstat "
	        "WHERE name = 'msg_expires'") /
	        BULK_MSGS);
	/* lookups by envid over the filled store */
	t0 = now_sec();
	for (i = 0; i < 20000; i++) {
		snprintf(envid, sizeof(envid), "%020zx@client.example.org",
		    (i * 7919 % BULK_MSGS) * 11400714819323198485u);
		assert_int_equal(B->lookup_envid(t.st, envid, &out, &n), 1);
		store_msgs_free(out, n);
	}
	t1 = now_sec();
	printf("bulk: lookup_envid %.0f/s\n", 20000 / (t1 - t0));
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
		cmocka_unit_test(test_sync_and_reopen),
		cmocka_unit_test(test_two_threads),
		cmocka_unit_test(test_concurrent_open),
		cmocka_unit_test(test_free_helpers),
		cmocka_unit_test(test_bulk),
	};
	int failed = 0;

	failed += TABLE_RUN("roundtrip", test_roundtrip, rt_rows, rt_name);
	failed +=
	    TABLE_RUN("search_fields", test_search_fields, rt_rows, rt_name);
	failed += TABLE_RUN("bad_put", test_bad_put, bad_rows, bad_name);
	failed += TABLE_RUN("purge", test_purge_row, purge_rows, purge_name);
	failed += TABLE_RUN("search", test_search, search_rows, search_name);
	failed +=
	    TABLE_RUN("corrupt", test_corrupt, corrupt_rows, corrupt_name);
	failed += TABLE_RUN("open_fail", test_open_fail, open_rows, open_name);
	failed += TABLE_RUN("backend_find", test_find, find_rows, find_name);
	failed += TABLE_RUN(
	    "action_name", test_action_name, action_rows, action_name);
	failed += cmocka_run_group_tests_name("store", tests, NULL, NULL);
	return failed;
}
