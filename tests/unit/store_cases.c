/*
 * store_cases: the behaviour tables every store backend runs.  See
 * store_cases.h.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_cases.h"

#define B (sc->b)
#define CERT SC_CERT
#define NOW SC_NOW

/* The backend under test (store_cases_run()). */
static const struct store_cases *sc;

/* A fresh empty store and a handle on it. */
static struct store *
sc_open(void)
{
	char err[512];
	struct store *st;

	sc->empty();
	if ((st = sc->open(0, err, sizeof(err))) == NULL)
		fail_msg("open: %s", err);
	return st;
}

/* Another handle on the same store. */
static struct store *
sc_reopen(void)
{
	char err[512];
	struct store *st;

	if ((st = sc->open(0, err, sizeof(err))) == NULL)
		fail_msg("reopen: %s", err);
	return st;
}

static size_t
count_rows(const char *table)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	return (size_t)sc->raw_int(sql);
}

void
sc_mk_msg(struct sc_mk *k, const char *qid, const char *envid, size_t nrcpt)
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

void
sc_put(
    const struct store_backend *b, struct store *st, const struct store_msg *m)
{
	if (b->put_msg(st, m) != 0)
		fail_msg("put_msg %s: %s", m->qid, b->error(st));
}

static void
put(struct store *st, const struct store_msg *m)
{
	sc_put(B, st, m);
}

/* lookup() with the certifier of sc_mk_msg's messages. */
static int
lk(struct store *st, const char *envid, struct store_msg **out, size_t *n)
{
	return B->lookup(st, envid, CERT, out, n);
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

void
sc_assert_msg_equal(const struct store_msg *g, const struct store_msg *w)
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

/* Fetches the single message with want's envid and certifier (none:
 * nothing to do; without a certifier lookup never finds it). */
static void
fetch_check(struct store *st, const struct store_msg *want)
{
	struct store_msg *out = NULL;
	size_t n = 0;

	if (want->envid == NULL)
		return;
	if (want->certifier[0] == '\0') {
		assert_int_equal(B->lookup(st, want->envid, CERT, &out, &n), 0);
		assert_null(out);
		return;
	}
	if (B->lookup(st, want->envid, want->certifier, &out, &n) != 1)
		fail_msg("lookup: %s", B->error(st));
	assert_int_equal(n, 1);
	sc_assert_msg_equal(&out[0], want);
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
rt_fill(const struct rt_row *row, struct sc_mk *k)
{
	sc_mk_msg(k, "Q1", row->envid, 1);
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
	struct store *st;
	struct sc_mk k;
	struct hits h;

	st = sc_open();
	rt_fill(row, &k);
	put(st, &k.m);
	fetch_check(st, &k.m);
	/* search hands the same values to its callback */
	assert_int_equal(search_text(st, &q, &h), 0);
	assert_string_equal(h.text, "Q1/0");
	/* after a reopen, too */
	B->close(st);
	st = sc_reopen();
	fetch_check(st, &k.m);
	sc->discard(st);
}

/* search's callback sees the same fields as lookup. */
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
	struct store *st;
	struct sc_mk k;

	st = sc_open();
	rt_fill(row, &k);
	put(st, &k.m);
	c.want = &k.m;
	if (B->search(st, &q, cmp_fn, &c) != 0)
		fail_msg("search: %s", B->error(st));
	assert_int_equal(c.calls, 1);
	sc->discard(st);
}

/*
 * Invalid writes: each fails with a precise error (the same on every
 * backend), stores nothing, and poisons the batch it is in.
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
	BAD_SECRET_NO_LOGIN,
	BAD_LOGIN_NO_SECRET,
	BAD_LOGIN_EMPTY,
	BAD_LOGIN_LONG,
	BAD_SECRET_LONG,
	BAD_SUBJECT_LONG,
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
	{ "secret without login", BAD_SECRET_NO_LOGIN,
	    "login and secret go together" },
	{ "login without secret", BAD_LOGIN_NO_SECRET,
	    "login and secret go together" },
	{ "empty login", BAD_LOGIN_EMPTY, "login, secret or subject empty" },
	{ "256-octet login", BAD_LOGIN_LONG, "or too long" },
	{ "172-char secret", BAD_SECRET_LONG, "or too long" },
	{ "201-octet subject", BAD_SUBJECT_LONG, "or too long" },
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
	struct store *st;
	struct hits h;
	struct sc_mk k;

	memset(longs, 'a', STORE_TEXT_MAX + 1);
	longs[STORE_TEXT_MAX + 1] = '\0';
	st = sc_open();
	sc_mk_msg(&k, "Q1", "e@x", 1);
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
	case BAD_SECRET_NO_LOGIN:
		k.m.secret = (char *)"c2VjcmV0";
		break;
	case BAD_LOGIN_NO_SECRET:
		k.m.login = (char *)"alice";
		break;
	case BAD_LOGIN_EMPTY:
		k.m.login = (char *)"";
		k.m.secret = (char *)"c2VjcmV0";
		break;
	case BAD_LOGIN_LONG:
		k.m.login = longs + STORE_TEXT_MAX + 1 - (STORE_LOGIN_MAX + 1);
		k.m.secret = (char *)"c2VjcmV0";
		break;
	case BAD_SECRET_LONG:
		k.m.login = (char *)"alice";
		k.m.secret =
		    longs + STORE_TEXT_MAX + 1 - (STORE_SECRET_MAX + 1);
		break;
	case BAD_SUBJECT_LONG:
		k.m.login = (char *)"alice";
		k.m.secret = (char *)"c2VjcmV0";
		k.m.subject =
		    longs + STORE_TEXT_MAX + 1 - (STORE_SUBJECT_MAX + 1);
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
	assert_int_equal(B->put_msg(st, mp), -1);
	if (strstr(B->error(st), row->err) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", B->error(st), row->err);
	/* the same recipient through put_rcpt, once a message exists */
	if (row->field >= BAD_ACTION) {
		struct sc_mk ok;

		sc_mk_msg(&ok, "Q2", "e2@x", 1);
		put(st, &ok.m);
		assert_int_equal(B->put_rcpt(st, "Q2", &k.r[0]), -1);
		assert_non_null(strstr(B->error(st), "put_rcpt: Q2:"));
		assert_non_null(strstr(B->error(st), row->err));
	}
	/* inside a batch, the batch is poisoned */
	assert_int_equal(B->begin(st), 0);
	assert_int_equal(B->put_msg(st, mp), -1);
	assert_int_equal(B->commit(st), -1);
	assert_int_equal(B->rollback(st), 0);
	/* nothing of Q1 was stored */
	assert_int_equal(
	    sc->raw_int("SELECT count(*) FROM msg WHERE qid = 'Q1'"), 0);
	assert_int_equal(search_text(st, &q, &h), 0);
	assert_true(strstr(h.text, "Q1/") == NULL);
	sc->discard(st);
}

/*
 * Upserts: the journal replays, so the same put twice is one row.
 */
static void
test_upsert_idempotent(void **state)
{
	struct store_msg *out;
	struct store *st;
	struct sc_mk k;
	size_t n;

	(void)state;
	st = sc_open();
	sc_mk_msg(&k, "Q1", "e1@x", 3);
	k.r[1].orcpt = (char *)"rfc822;c@d.test";
	k.r[2].orcpt = (char *)"rfc822;e@f.test";
	put(st, &k.m);
	put(st, &k.m);
	assert_int_equal(count_rows("msg"), 1);
	assert_int_equal(count_rows("rcpt"), 3);
	/* a replay with fewer recipients and new values replaces all */
	k.m.nrcpt = 1;
	k.m.sender = (char *)"other@src.test";
	k.m.envid = (char *)"e2@x";
	k.r[0].action = STORE_ACTION_DELIVERED;
	put(st, &k.m);
	assert_int_equal(count_rows("msg"), 1);
	assert_int_equal(count_rows("rcpt"), 1);
	assert_int_equal(lk(st, "e1@x", &out, &n), 0);
	assert_null(out);
	assert_int_equal(n, 0);
	assert_int_equal(lk(st, "e2@x", &out, &n), 1);
	sc_assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	/* the same inside a batch */
	assert_int_equal(B->begin(st), 0);
	put(st, &k.m);
	put(st, &k.m);
	assert_int_equal(B->commit(st), 0);
	assert_int_equal(count_rows("msg"), 1);
	assert_int_equal(count_rows("rcpt"), 1);
	/* zero recipients removes them all; the message is still found */
	k.m.nrcpt = 0;
	put(st, &k.m);
	assert_int_equal(count_rows("rcpt"), 0);
	assert_int_equal(lk(st, "e2@x", &out, &n), 1);
	assert_int_equal(out[0].nrcpt, 0);
	assert_null(out[0].rcpts);
	store_msgs_free(out, n);
	sc->discard(st);
}

static void
test_put_rcpt(void **state)
{
	struct store_rcpt r;
	struct store_msg *out;
	struct store *st;
	struct sc_mk k;
	size_t n;

	(void)state;
	st = sc_open();
	sc_mk_msg(&k, "Q1", "e1@x", 2);
	put(st, &k.m);
	/* the first attempt moves recipient 1 on */
	r = k.r[1];
	r.action = STORE_ACTION_TRANSFERRED;
	snprintf(r.status, sizeof(r.status), "2.0.0");
	r.remote_mta = (char *)"dns; hop2.test";
	r.last_attempt = NOW + 10;
	r.will_retry_until = 0;
	r.reply = (char *)"250 2.0.0 Ok";
	assert_int_equal(B->put_rcpt(st, "Q1", &r), 0);
	assert_int_equal(B->put_rcpt(st, "Q1", &r), 0); /* replayed */
	k.r[1] = r;
	assert_int_equal(lk(st, "e1@x", &out, &n), 1);
	sc_assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	/* a new index is created */
	r.idx = 2;
	r.final_rcpt = (char *)"rfc822;new@dst.test";
	assert_int_equal(B->put_rcpt(st, "Q1", &r), 0);
	k.r[2] = r;
	k.m.nrcpt = 3;
	assert_int_equal(lk(st, "e1@x", &out, &n), 1);
	sc_assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	assert_int_equal(count_rows("rcpt"), 3);
	/* unknown message: nothing written, not an error (a replayed state
	 * record whose message was purged); bad qid: an error */
	assert_int_equal(B->put_rcpt(st, "NOPE", &r), 0);
	assert_int_equal(count_rows("rcpt"), 3);
	assert_int_equal(count_rows("msg"), 1);
	assert_int_equal(B->put_rcpt(st, NULL, &r), -1);
	assert_string_equal(B->error(st), "put_rcpt: invalid queue id");
	assert_int_equal(B->put_rcpt(st, "Q1", NULL), -1);
	assert_string_equal(B->error(st), "put_rcpt: Q1: no recipient");
	sc->discard(st);
}

static void
test_set_done_purge(void **state)
{
	struct store_query q = query_all();
	struct store_msg *out;
	struct store *st;
	struct hits h;
	struct sc_mk k;
	size_t n;

	(void)state;
	st = sc_open();
	sc_mk_msg(&k, "Q1", "e1@x", 2);
	k.m.expires = NOW - 1;
	put(st, &k.m);
	/* expired but queued: kept */
	assert_int_equal(B->purge(st, NOW, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(lk(st, "e1@x", &out, &n), 1);
	assert_int_equal(out[0].queued, 1);
	store_msgs_free(out, n);
	assert_int_equal(B->set_done(st, "Q1"), 0);
	assert_int_equal(B->set_done(st, "Q1"), 0); /* replayed */
	assert_int_equal(lk(st, "e1@x", &out, &n), 1);
	assert_int_equal(out[0].queued, 0);
	store_msgs_free(out, n);
	assert_int_equal(B->purge(st, NOW, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(lk(st, "e1@x", &out, &n), 0);
	assert_int_equal(search_text(st, &q, &h), 0);
	assert_int_equal(h.n, 0);
	assert_int_equal(count_rows("rcpt"), 0);
	/* unknown qid: nothing to do; invalid qid: an error */
	assert_int_equal(B->set_done(st, "NOPE"), 0);
	assert_int_equal(B->set_done(st, "a/b"), -1);
	assert_string_equal(B->error(st), "set_done: invalid queue id");
	sc->discard(st);
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
	struct store *st;
	struct sc_mk k, other;
	size_t n;

	st = sc_open();
	sc_mk_msg(&k, "Q1", "e1@x", 2);
	k.m.expires = NOW + row->expires_delta;
	k.m.queued = row->queued;
	put(st, &k.m);
	/* a neighbour that must survive */
	sc_mk_msg(&other, "Q2", "e2@x", 1);
	other.m.queued = 0;
	other.m.expires = NOW + 1;
	put(st, &other.m);
	assert_int_equal(B->purge(st, NOW, &n), 0);
	assert_int_equal(n, row->purged);
	assert_int_equal(count_rows("msg"), 2 - row->purged);
	assert_int_equal(count_rows("rcpt"), 3 - 2 * row->purged);
	/* inside a batch too, undone by rollback */
	assert_int_equal(B->begin(st), 0);
	assert_int_equal(B->purge(st, NOW + 2, &n), 0);
	assert_int_equal(n, row->queued ? 1 : 2 - row->purged);
	assert_int_equal(B->rollback(st), 0);
	assert_int_equal(count_rows("msg"), 2 - row->purged);
	sc->discard(st);
}

/* more than one purge chunk, with queued ones interleaved */
static void
test_purge_many(void **state)
{
	struct store *st;
	struct sc_mk k;
	size_t i, n;
	char qid[24];

	(void)state;
	st = sc_open();
	assert_int_equal(B->begin(st), 0);
	for (i = 0; i < 1500; i++) {
		snprintf(qid, sizeof(qid), "Q%zu", i);
		sc_mk_msg(&k, qid, NULL, 2);
		k.m.expires = NOW - (time_t)i;
		k.m.queued = i % 3 == 0;
		put(st, &k.m);
	}
	assert_int_equal(B->commit(st), 0);
	assert_int_equal(B->purge(st, NOW, &n), 0);
	assert_int_equal(n, 1000); /* every third one is queued */
	assert_int_equal(count_rows("msg"), 500);
	assert_int_equal(count_rows("rcpt"), 1000);
	assert_int_equal(
	    sc->raw_int("SELECT count(*) FROM msg WHERE NOT queued"), 0);
	assert_int_equal(B->purge(st, NOW, &n), 0);
	assert_int_equal(n, 0);
	sc->discard(st);
}

/*
 * search: filters, combinations, order and limit over one data set.
 */
static void
search_fixture(struct store *st)
{
	struct sc_mk k;

	/* A: oldest, two recipients */
	sc_mk_msg(&k, "A", "env-a@x", 2);
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
	sc_mk_msg(&k, "B", "env-b@x", 1);
	k.m.arrival = NOW + 100;
	k.m.sender = (char *)"dave@src.test";
	k.r[0].orcpt = (char *)"rfc822;list@dst.test";
	k.r[0].final_rcpt = (char *)"rfc822;bob@dst.test";
	k.r[0].action = STORE_ACTION_EXPANDED;
	put(st, &k.m);
	/* C: newest, null sender, queued */
	sc_mk_msg(&k, "C", "env-a@x", 1);
	k.m.arrival = NOW + 200;
	k.m.sender = (char *)"";
	k.r[0].orcpt = (char *)"rfc822;alice@src.test";
	k.r[0].final_rcpt = NULL;
	put(st, &k.m);
	/* D: same arrival as B, no envid */
	sc_mk_msg(&k, "D", NULL, 1);
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

/* One store for the whole search table (rows only read it), made by the
 * first row and discarded after the table. */
static struct store *search_st;

static void
test_search(void **state)
{
	const struct search_row *row = *state;
	struct store_query q;
	struct hits h;

	if (search_st == NULL) {
		search_st = sc_open();
		search_fixture(search_st);
	}
	memset(&q, 0, sizeof(q));
	q.envid = row->envid;
	q.sender = row->sender;
	q.rcpt = row->rcpt;
	q.since = row->since;
	q.action = row->action;
	q.limit = row->limit;
	if (search_text(search_st, &q, &h) != 0)
		fail_msg("search: %s", B->error(search_st));
	assert_string_equal(h.text, row->want);
	/* the cached statement gives the same answer again */
	assert_int_equal(search_text(search_st, &q, &h), 0);
	assert_string_equal(h.text, row->want);
}

static void
test_search_stop_and_errors(void **state)
{
	struct store_query q = query_all();
	char longs[STORE_TEXT_MAX + 2];
	struct store_msg *out;
	struct store *st;
	struct hits h;
	size_t n;

	(void)state;
	st = sc_open();
	search_fixture(st);
	memset(&h, 0, sizeof(h));
	h.stop_after = 2;
	assert_int_equal(B->search(st, &q, hits_fn, &h), 0);
	assert_string_equal(h.text, "C/0 D/0");
	/* the handle is usable right after a stopped search */
	assert_int_equal(lk(st, "env-b@x", &out, &n), 1);
	store_msgs_free(out, n);
	q.action = 7;
	assert_int_equal(search_text(st, &q, &h), -1);
	assert_string_equal(B->error(st), "search: invalid action 7");
	q.action = -2;
	assert_int_equal(search_text(st, &q, &h), -1);
	q.action = -1;
	memset(longs, 'x', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	q.rcpt = longs;
	assert_int_equal(search_text(st, &q, &h), -1);
	assert_string_equal(B->error(st), "search: rcpt longer than 2048");
	assert_int_equal(B->search(st, NULL, hits_fn, &h), -1);
	assert_int_equal(B->search(st, &q, NULL, &h), -1);
	sc->discard(st);
}

/*
 * lookup: several messages per envid and certifier, oldest first, capped.
 */
static void
test_lookup_many(void **state)
{
	struct store_msg *out;
	struct store *st;
	struct sc_mk k;
	size_t i, n;
	char qid[24];

	(void)state;
	st = sc_open();
	assert_int_equal(B->begin(st), 0);
	for (i = 0; i < STORE_LOOKUP_MAX + 5; i++) {
		snprintf(qid, sizeof(qid), "M%zu", i);
		sc_mk_msg(&k, qid, "same@x", 3);
		k.r[1].idx = 1;
		k.r[2].idx = 7; /* sparse indexes keep their order */
		put(st, &k.m);
	}
	sc_mk_msg(&k, "OTHER", "other@x", 1);
	put(st, &k.m);
	assert_int_equal(B->commit(st), 0);
	assert_int_equal(lk(st, "same@x", &out, &n), 1);
	assert_int_equal(n, STORE_LOOKUP_MAX);
	for (i = 0; i < n; i++) {
		snprintf(qid, sizeof(qid), "M%zu", i);
		assert_string_equal(out[i].qid, qid);
		assert_int_equal(out[i].nrcpt, 3);
		assert_int_equal(out[i].rcpts[2].idx, 7);
	}
	store_msgs_free(out, n);
	/* equal envid keys never mix two envids */
	if (sc->collide_sql != NULL)
		sc->raw_exec(sc->collide_sql);
	assert_int_equal(lk(st, "other@x", &out, &n), 1);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].qid, "OTHER");
	store_msgs_free(out, n);
	/* not found, overlong, empty, NULL */
	assert_int_equal(lk(st, "none@x", &out, &n), 0);
	assert_int_equal(
	    lk(st,
	        "01234567890123456789012345678901234567890123456789"
	        "01234567890123456789012345678901234567890123456789x",
	        &out, &n),
	    0);
	assert_int_equal(lk(st, "", &out, &n), 0);
	assert_int_equal(lk(st, NULL, &out, &n), -1);
	assert_string_equal(B->error(st), "lookup: no envid");
	/* a certifier that cannot be stored matches nothing */
	assert_int_equal(B->lookup(st, "same@x", "", &out, &n), 0);
	assert_int_equal(B->lookup(st, "same@x", CERT "A", &out, &n), 0);
	assert_int_equal(B->lookup(st, "same@x", CERT + 1, &out, &n), 0);
	assert_null(out);
	assert_int_equal(B->lookup(st, "same@x", NULL, &out, &n), -1);
	assert_string_equal(B->error(st), "lookup: no certifier");
	sc->discard(st);
}

/*
 * Pre-squatting: messages sent earlier with the victim's envid and other
 * certifiers (or none) never hide the victim's message, and are never
 * read for it.
 */
#define DECOYS 70

static void
test_lookup_decoys(void **state)
{
	char qid[24], cert[DECOYS][STORE_CERTIFIER_LEN + 1];
	struct store_msg *out;
	struct store *st;
	struct sc_mk k;
	size_t i, n;

	(void)state;
	st = sc_open();
	assert_int_equal(B->begin(st), 0);
	for (i = 0; i < DECOYS; i++) {
		snprintf(qid, sizeof(qid), "D%zu", i);
		snprintf(cert[i], sizeof(cert[i]), "DECOY%022zu", i);
		sc_mk_msg(&k, qid, "victim@x", 2);
		if (i % 10 == 9)
			k.m.certifier[0] = '\0'; /* not tracked */
		else
			memcpy(k.m.certifier, cert[i], sizeof(k.m.certifier));
		put(st, &k.m);
	}
	assert_int_equal(B->commit(st), 0);
	sc_mk_msg(&k, "VICTIM", "victim@x", 3);
	put(st, &k.m);
	assert_int_equal(lk(st, "victim@x", &out, &n), 1);
	assert_int_equal(n, 1);
	sc_assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	/* a wrong certifier: nothing, as for an unknown envid */
	assert_int_equal(
	    B->lookup(st, "victim@x", "WRONGAAAAAAAAAAAAAAAAAAAAAA", &out, &n),
	    0);
	assert_null(out);
	assert_int_equal(n, 0);
	assert_int_equal(lk(st, "unknown@x", &out, &n), 0);
	/* each decoy answers to its own certifier only */
	assert_int_equal(B->lookup(st, "victim@x", cert[3], &out, &n), 1);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].qid, "D3");
	store_msgs_free(out, n);
	/* the one without a certifier: never by lookup */
	assert_int_equal(B->lookup(st, "victim@x", cert[9], &out, &n), 0);
	sc->discard(st);
}

/*
 * Replay after the store lost messages (purged, or a store that missed
 * them): state records of unknown messages are no-ops, the batch
 * commits.
 */
static void
test_replay_unknown(void **state)
{
	struct store_msg *out;
	struct store *st;
	struct sc_mk k, gone;
	size_t n;

	(void)state;
	st = sc_open();
	sc_mk_msg(&gone, "GONE", "gone@x", 2);
	gone.r[1].action = STORE_ACTION_DELIVERED;
	sc_mk_msg(&k, "REAL", "real@x", 1);
	assert_int_equal(B->begin(st), 0);
	assert_int_equal(B->put_rcpt(st, "GONE", &gone.r[1]), 0);
	assert_int_equal(B->set_done(st, "GONE"), 0);
	assert_int_equal(B->put_rcpt(st, "GONE2", &gone.r[0]), 0);
	put(st, &k.m);
	assert_int_equal(B->put_rcpt(st, "GONE", &gone.r[0]), 0);
	assert_int_equal(B->set_done(st, "REAL"), 0);
	if (B->commit(st) != 0)
		fail_msg("commit: %s", B->error(st));
	assert_int_equal(count_rows("msg"), 1);
	assert_int_equal(count_rows("rcpt"), 1);
	assert_int_equal(lk(st, "real@x", &out, &n), 1);
	assert_int_equal(out[0].queued, 0);
	store_msgs_free(out, n);
	assert_int_equal(lk(st, "gone@x", &out, &n), 0);
	/* and outside a batch */
	assert_int_equal(B->put_rcpt(st, "GONE", &gone.r[0]), 0);
	assert_int_equal(count_rows("rcpt"), 1);
	sc->discard(st);
}

/*
 * The mark: recorded with the batch, per journal, durable across
 * handles; a rolled back batch leaves the earlier mark.
 */
static void
test_mark(void **state)
{
	struct store_mark m, g;
	struct store *st, *st2;
	struct sc_mk k;

	(void)state;
	st = sc_open();
	memset(&g, 0, sizeof(g));
	snprintf(g.journal, sizeof(g.journal), "node-1");
	assert_int_equal(B->get_mark(st, &g), 0);
	memset(&m, 0, sizeof(m));
	snprintf(m.journal, sizeof(m.journal), "node-1");
	m.seg = 7;
	m.off = 4096;
	/* only inside a batch */
	assert_int_equal(B->set_mark(st, &m), -1);
	assert_string_equal(B->error(st), "set_mark: no batch is open");
	assert_int_equal(B->begin(st), 0);
	sc_mk_msg(&k, "Q1", "e1@x", 1);
	put(st, &k.m);
	assert_int_equal(B->set_mark(st, &m), 0);
	/* not visible to another handle before the commit */
	st2 = sc_reopen();
	assert_int_equal(B->get_mark(st2, &g), 0);
	assert_int_equal(B->commit(st), 0);
	assert_int_equal(B->get_mark(st2, &g), 1);
	assert_int_equal(g.seg, 7);
	assert_int_equal(g.off, 4096);
	/* moves on; another journal has its own */
	assert_int_equal(B->begin(st), 0);
	m.seg = 8;
	m.off = 0;
	assert_int_equal(B->set_mark(st, &m), 0);
	snprintf(m.journal, sizeof(m.journal), "node 2 ~");
	m.seg = (uint64_t)INT64_MAX;
	m.off = (uint64_t)INT64_MAX;
	assert_int_equal(B->set_mark(st, &m), 0);
	assert_int_equal(B->commit(st), 0);
	assert_int_equal(B->get_mark(st2, &g), 1);
	assert_int_equal(g.seg, 8);
	assert_int_equal(g.off, 0);
	snprintf(g.journal, sizeof(g.journal), "node 2 ~");
	assert_int_equal(B->get_mark(st2, &g), 1);
	assert_true(
	    g.seg == (uint64_t)INT64_MAX && g.off == (uint64_t)INT64_MAX);
	/* a rolled back batch keeps the mark it had */
	assert_int_equal(B->begin(st), 0);
	snprintf(m.journal, sizeof(m.journal), "node-1");
	m.seg = 9;
	assert_int_equal(B->set_mark(st, &m), 0);
	assert_int_equal(B->rollback(st), 0);
	snprintf(g.journal, sizeof(g.journal), "node-1");
	assert_int_equal(B->get_mark(st2, &g), 1);
	assert_int_equal(g.seg, 8);
	/* invalid marks fail and poison the batch */
	assert_int_equal(B->begin(st), 0);
	m.seg = (uint64_t)INT64_MAX + 1;
	assert_int_equal(B->set_mark(st, &m), -1);
	assert_string_equal(
	    B->error(st), "set_mark: node-1: position out of range");
	assert_int_equal(B->commit(st), -1);
	assert_int_equal(B->rollback(st), 0);
	m.seg = 1;
	assert_int_equal(B->begin(st), 0);
	m.journal[0] = '\0';
	assert_int_equal(B->set_mark(st, &m), -1);
	assert_string_equal(B->error(st), "set_mark: invalid journal id");
	assert_int_equal(B->commit(st), -1);
	assert_int_equal(B->rollback(st), 0);
	memset(m.journal, 'j', sizeof(m.journal)); /* 65, unterminated */
	assert_int_equal(B->begin(st), 0);
	assert_int_equal(B->set_mark(st, &m), -1);
	assert_int_equal(B->rollback(st), 0);
	snprintf(m.journal, sizeof(m.journal), "tab\there");
	assert_int_equal(B->begin(st), 0);
	assert_int_equal(B->set_mark(st, &m), -1);
	assert_int_equal(B->rollback(st), 0);
	assert_int_equal(B->get_mark(st, &m), -1);
	assert_string_equal(B->error(st), "get_mark: invalid journal id");
	memset(m.journal, 'j', STORE_JOURNAL_MAX); /* 64: the longest */
	m.journal[STORE_JOURNAL_MAX] = '\0';
	assert_int_equal(B->begin(st), 0);
	assert_int_equal(B->set_mark(st, &m), 0);
	assert_int_equal(B->commit(st), 0);
	assert_int_equal(B->get_mark(st2, &m), 1);
	assert_int_equal(count_rows("mark"), 3);
	B->close(st2);
	/* kept across a reopen */
	B->close(st);
	st = sc_reopen();
	snprintf(g.journal, sizeof(g.journal), "node-1");
	assert_int_equal(B->get_mark(st, &g), 1);
	assert_int_equal(g.seg, 8);
	sc->discard(st);
}

/*
 * Read-only handles: reads work, writes fail, nothing is created.
 */
static void
test_readonly(void **state)
{
	struct store_query q = query_all();
	struct store_msg *out;
	struct store_mark m;
	struct store *st, *ro;
	char err[512];
	struct hits h;
	struct sc_mk k;
	size_t n;

	(void)state;
	st = sc_open();
	sc_mk_msg(&k, "Q1", "e1@x", 2);
	put(st, &k.m);
	if ((ro = sc->open(STORE_OPEN_READONLY, err, sizeof(err))) == NULL)
		fail_msg("open read-only: %s", err);
	assert_int_equal(lk(ro, "e1@x", &out, &n), 1);
	sc_assert_msg_equal(&out[0], &k.m);
	store_msgs_free(out, n);
	assert_int_equal(search_text(ro, &q, &h), 0);
	assert_string_equal(h.text, "Q1/0 Q1/1");
	memset(&m, 0, sizeof(m));
	snprintf(m.journal, sizeof(m.journal), "j");
	assert_int_equal(B->get_mark(ro, &m), 0);
	sc_mk_msg(&k, "Q2", "e2@x", 1);
	assert_int_equal(B->put_msg(ro, &k.m), -1);
	assert_int_equal(B->set_done(ro, "Q1"), -1);
	assert_int_equal(B->purge(ro, NOW + 86400 * 365, &n), -1);
	assert_int_equal(count_rows("msg"), 1);
	/* the writer goes on meanwhile, and the reader sees it */
	put(st, &k.m);
	assert_int_equal(lk(ro, "e2@x", &out, &n), 1);
	store_msgs_free(out, n);
	B->close(ro);
	sc->discard(st);
}

/* Records this code did not write are reported, not trusted.  A
 * certifier too long never matches one asked for: search reports it. */
static const struct sc_corrupt_row corrupt_rows[] = {
	{ "action out of range", "UPDATE rcpt SET action = 99",
	    "lookup: Q1: corrupt recipient record" },
	{ "negative action", "UPDATE rcpt SET action = -1",
	    "lookup: Q1: corrupt recipient record" },
	{ "status too long", "UPDATE rcpt SET status = '2.0.0000000'",
	    "lookup: Q1: corrupt recipient record" },
	{ "qid too long",
	    "UPDATE msg SET qid = '0123456789012345678901234567890123'",
	    "lookup: corrupt message record" },
	{ "certifier too long", "UPDATE msg SET certifier = '" CERT "XX'",
	    "search: corrupt record" },
	{ "action out of range, search", "UPDATE rcpt SET action = 99",
	    "search: corrupt record" },
};

const char *
sc_corrupt_name(const void *row)
{
	return ((const struct sc_corrupt_row *)row)->name;
}

void
sc_test_corrupt(void **state)
{
	const struct sc_corrupt_row *row = *state;
	struct store_msg *out = (struct store_msg *)1;
	struct store *st;
	struct sc_mk k;
	size_t n = 99;

	st = sc_open();
	sc_mk_msg(&k, "Q1", "e1@x", 2);
	put(st, &k.m);
	sc->raw_exec(row->sql);
	if (strncmp(row->err, "search:", 7) == 0) {
		struct store_query q = query_all();
		struct hits h;

		assert_int_equal(search_text(st, &q, &h), -1);
	} else {
		assert_int_equal(lk(st, "e1@x", &out, &n), -1);
		assert_null(out);
		assert_int_equal(n, 0);
	}
	if (strstr(B->error(st), row->err) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", B->error(st), row->err);
	sc->discard(st);
}

/*
 * Batches.
 */
static void
test_batches(void **state)
{
	struct store *st;
	struct sc_mk k;
	size_t n;

	(void)state;
	st = sc_open();
	sc_mk_msg(&k, "Q1", "e1@x", 1);
	/* not visible to another connection before commit; rollback
	 * discards */
	assert_int_equal(B->begin(st), 0);
	put(st, &k.m);
	assert_int_equal(count_rows("msg"), 0);
	assert_int_equal(B->rollback(st), 0);
	assert_int_equal(count_rows("msg"), 0);
	/* misuse */
	assert_int_equal(B->commit(st), -1);
	assert_string_equal(B->error(st), "commit: no batch is open");
	assert_int_equal(B->rollback(st), 0);
	assert_int_equal(B->begin(st), 0);
	assert_int_equal(B->begin(st), -1);
	assert_string_equal(B->error(st), "begin: a batch is already open");
	assert_int_equal(B->sync(st), -1);
	assert_string_equal(B->error(st), "sync: a batch is open");
	/* a failed write poisons the batch */
	put(st, &k.m);
	assert_int_equal(B->set_done(st, "NO/PE"), -1);
	assert_int_equal(B->commit(st), -1);
	assert_string_equal(
	    B->error(st), "commit: a write in this batch failed; roll it back");
	assert_int_equal(B->rollback(st), 0);
	assert_int_equal(count_rows("msg"), 0);
	/* and the next batch is clean */
	assert_int_equal(B->begin(st), 0);
	put(st, &k.m);
	assert_int_equal(B->set_done(st, "Q1"), 0);
	assert_int_equal(B->commit(st), 0);
	assert_int_equal(B->sync(st), 0);
	assert_int_equal(B->sync(st), 0);
	assert_int_equal(count_rows("msg"), 1);
	assert_int_equal(
	    sc->raw_int("SELECT count(*) FROM msg WHERE queued"), 0);
	/* purge of nothing in a batch, then commit */
	assert_int_equal(B->begin(st), 0);
	assert_int_equal(B->purge(st, 0, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(B->commit(st), 0);
	sc->discard(st);
}

/*
 * Two handles, two threads: the queue's writer and the MTQP reader.
 */
#define MT_BATCH 64

struct mt {
	struct store *st;
	volatile int done; /* written by the writer */
	volatile int committed;
	int errors;
	char err[512];
};

static void *
mt_writer(void *arg)
{
	struct mt *w = arg;
	struct sc_mk k;
	char qid[24], envid[32];
	int i;

	for (i = 0; i < sc->mt_msgs; i++) {
		if (i % MT_BATCH == 0 && B->begin(w->st) == -1)
			goto fail;
		snprintf(qid, sizeof(qid), "W%d", i);
		snprintf(envid, sizeof(envid), "mt%d@x", i);
		sc_mk_msg(&k, qid, envid, 1);
		if (B->put_msg(w->st, &k.m) == -1)
			goto fail;
		if (i % MT_BATCH == MT_BATCH - 1 || i == sc->mt_msgs - 1) {
			if (B->commit(w->st) == -1)
				goto fail;
			__atomic_store_n(
			    &w->committed, i + 1, __ATOMIC_RELEASE);
			if ((i / MT_BATCH) % sc->mt_sync_every == 0 &&
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
		switch (lk(r->st, envid, &out, &n)) {
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

	(void)state;
	memset(&w, 0, sizeof(w));
	memset(&r, 0, sizeof(r));
	w.st = sc_open();
	r.w = &w;
	r.st = sc_reopen();
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
	assert_int_equal(h.n, (size_t)sc->mt_msgs);
	B->close(r.st);
	sc->discard(w.st);
}

/* Handles opened at the same moment on an empty store: one creates the
 * schema, the others wait for it and find it. */
struct opener {
	struct store *st;
	char err[512];
};

static void *
opener_run(void *arg)
{
	struct opener *o = arg;

	o->st = sc->open(0, o->err, sizeof(o->err));
	return NULL;
}

static void
test_concurrent_open(void **state)
{
	struct opener o[4];
	pthread_t th[4];
	struct sc_mk k;
	size_t i;

	(void)state;
	sc->empty();
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
	sc_mk_msg(&k, "Q1", "e@x", 1);
	put(o[0].st, &k.m);
	for (i = 0; i < 4; i++)
		B->close(o[i].st);
	for (i = 0; i < 2 && sc->schema_sql[i] != NULL; i++)
		assert_int_equal(sc->raw_int(sc->schema_sql[i]), 1);
	sc->discard(NULL);
}

#define BULK_BATCH 64

double
sc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double
sc_bulk_put(const struct store_backend *b, struct store *st, size_t nmsgs)
{
	char qid[24], envid[64], sender[48], orcpt[64], reply[64];
	struct sc_mk k;
	double t0;
	size_t i;

	t0 = sc_now();
	for (i = 0; i < nmsgs; i++) {
		if (i % BULK_BATCH == 0)
			assert_int_equal(b->begin(st), 0);
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
		sc_mk_msg(&k, qid, envid, 1);
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
		sc_put(b, st, &k.m);
		if (i % BULK_BATCH == BULK_BATCH - 1 || i == nmsgs - 1)
			assert_int_equal(b->commit(st), 0);
	}
	return sc_now() - t0;
}

void
sc_bulk_lookup(const struct store_backend *b, struct store *st, size_t nmsgs,
    size_t nlookups)
{
	char envid[64];
	struct store_msg *out;
	double t0;
	size_t i, n;

	t0 = sc_now();
	for (i = 0; i < nlookups; i++) {
		snprintf(envid, sizeof(envid), "%020zx@client.example.org",
		    (i * 7919 % nmsgs) * 11400714819323198485u);
		assert_int_equal(b->lookup(st, envid, SC_CERT, &out, &n), 1);
		assert_int_equal(n, 1);
		store_msgs_free(out, n);
	}
	printf("bulk: lookup %.0f/s\n", nlookups / (sc_now() - t0));
}

/*
 * Automatic tracking: the kept secret of a login's messages (the sent
 * table), listed newest first, replaced on replay, never shown to
 * another login, gone with the message at purge.
 */
static void
sent_mk(struct sc_mk *k, const char *qid, const char *envid, const char *login,
    const char *secret, time_t arrival)
{
	sc_mk_msg(k, qid, envid, 2);
	k->r[1].orcpt = (char *)"rfc822;carol@dst.test";
	k->r[1].final_rcpt = (char *)"rfc822;carol@dst.test";
	k->r[1].action = STORE_ACTION_TRANSFERRED;
	snprintf(k->r[1].status, sizeof(k->r[1].status), "2.0.0");
	k->m.login = (char *)login;
	k->m.secret = (char *)secret;
	k->m.subject = (char *)"Report \"Q3\" ready";
	k->m.arrival = arrival;
}

static void
test_sent(void **state)
{
	struct store_msg *out;
	struct store *st;
	struct sc_mk k;
	size_t n, i;

	(void)state;
	st = sc_open();
	assert_int_equal(B->list_sent(st, "alice", 0, &out, &n), 0);
	assert_null(out);
	sent_mk(&k, "Q1", "e1@x", "alice", "c2VjcmV0MQ", NOW);
	put(st, &k.m);
	sent_mk(&k, "Q2", "e2@x", "alice", "c2VjcmV0Mg", NOW + 10);
	k.m.subject = NULL;
	put(st, &k.m);
	/* the same arrival: the one written later comes first */
	sent_mk(&k, "Q3", "e3@x", "alice", "c2VjcmV0Mw", NOW + 10);
	put(st, &k.m);
	sent_mk(&k, "Q4", "e4@x", "Alice", "c2VjcmV0NA", NOW + 20);
	put(st, &k.m);
	/* authenticated, but its own MTRK: no sent row */
	sent_mk(&k, "Q5", "e5@x", NULL, NULL, NOW + 30);
	put(st, &k.m);
	assert_int_equal(count_rows("sent"), 4);

	assert_int_equal(B->list_sent(st, "alice", 0, &out, &n), 1);
	assert_int_equal(n, 3);
	assert_string_equal(out[0].qid, "Q3");
	assert_string_equal(out[1].qid, "Q2");
	assert_string_equal(out[2].qid, "Q1");
	assert_string_equal(out[0].envid, "e3@x");
	assert_string_equal(out[0].secret, "c2VjcmV0Mw");
	assert_string_equal(out[0].login, "alice");
	assert_string_equal(out[0].subject, "Report \"Q3\" ready");
	assert_null(out[1].subject);
	assert_int_equal(out[0].arrival, NOW + 10);
	assert_string_equal(out[2].certifier, CERT);
	for (i = 0; i < n; i++) {
		assert_int_equal(out[i].nrcpt, 2);
		assert_string_equal(
		    out[i].rcpts[1].final_rcpt, "rfc822;carol@dst.test");
		assert_int_equal(
		    out[i].rcpts[1].action, STORE_ACTION_TRANSFERRED);
	}
	store_msgs_free(out, n);
	/* a limit; logins are exact (auth gives them canonical) */
	assert_int_equal(B->list_sent(st, "alice", 2, &out, &n), 1);
	assert_int_equal(n, 2);
	assert_string_equal(out[1].qid, "Q2");
	store_msgs_free(out, n);
	assert_int_equal(B->list_sent(st, "Alice", 0, &out, &n), 1);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].secret, "c2VjcmV0NA");
	store_msgs_free(out, n);
	assert_int_equal(B->list_sent(st, "bob", 0, &out, &n), 0);
	assert_int_equal(B->list_sent(st, "", 0, &out, &n), 0);
	assert_int_equal(B->list_sent(st, NULL, 0, &out, &n), -1);
	assert_string_equal(B->error(st), "list_sent: no login");
	/* lookup() never returns the secret */
	assert_int_equal(lk(st, "e1@x", &out, &n), 1);
	assert_null(out[0].secret);
	assert_null(out[0].login);
	store_msgs_free(out, n);

	/* a replayed put replaces, never adds */
	sent_mk(&k, "Q1", "e1@x", "alice", "c2VjcmV0MQ", NOW);
	k.m.queued = 0;
	k.m.expires = NOW - 1;
	put(st, &k.m);
	put(st, &k.m);
	assert_int_equal(count_rows("sent"), 4);
	/* inside a batch, undone by rollback */
	assert_int_equal(B->begin(st), 0);
	sent_mk(&k, "Q6", "e6@x", "alice", "c2VjcmV0Ng", NOW + 40);
	put(st, &k.m);
	assert_int_equal(B->rollback(st), 0);
	assert_int_equal(count_rows("sent"), 4);
	/* purge takes the kept secret with the message */
	assert_int_equal(B->purge(st, NOW, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(count_rows("sent"), 3);
	assert_int_equal(B->list_sent(st, "alice", 0, &out, &n), 1);
	assert_int_equal(n, 2);
	assert_string_equal(out[1].qid, "Q2");
	store_msgs_free(out, n);
	sc->discard(st);
}

/* More than STORE_SENT_MAX: the newest STORE_SENT_MAX. */
static void
test_sent_max(void **state)
{
	struct store_msg *out;
	struct store *st;
	struct sc_mk k;
	size_t i, n;
	char qid[24];

	(void)state;
	st = sc_open();
	assert_int_equal(B->begin(st), 0);
	for (i = 0; i < STORE_SENT_MAX + 5; i++) {
		snprintf(qid, sizeof(qid), "Q%zu", i);
		sent_mk(&k, qid, NULL, "alice", "c2VjcmV0", NOW + (time_t)i);
		k.m.nrcpt = 1;
		put(st, &k.m);
	}
	assert_int_equal(B->commit(st), 0);
	assert_int_equal(B->list_sent(st, "alice", 0, &out, &n), 1);
	assert_int_equal(n, STORE_SENT_MAX);
	snprintf(qid, sizeof(qid), "Q%d", STORE_SENT_MAX + 4);
	assert_string_equal(out[0].qid, qid);
	assert_string_equal(out[n - 1].qid, "Q5");
	store_msgs_free(out, n);
	assert_int_equal(
	    B->list_sent(st, "alice", STORE_SENT_MAX + 100, &out, &n), 1);
	assert_int_equal(n, STORE_SENT_MAX);
	store_msgs_free(out, n);
	sc->discard(st);
}

int
store_cases_run(const struct store_cases *c)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upsert_idempotent),
		cmocka_unit_test(test_put_rcpt),
		cmocka_unit_test(test_set_done_purge),
		cmocka_unit_test(test_purge_many),
		cmocka_unit_test(test_search_stop_and_errors),
		cmocka_unit_test(test_lookup_many),
		cmocka_unit_test(test_lookup_decoys),
		cmocka_unit_test(test_replay_unknown),
		cmocka_unit_test(test_mark),
		cmocka_unit_test(test_readonly),
		cmocka_unit_test(test_batches),
		cmocka_unit_test(test_two_threads),
		cmocka_unit_test(test_concurrent_open),
		cmocka_unit_test(test_sent),
		cmocka_unit_test(test_sent_max),
	};
	int failed = 0;

	sc = c;
	failed += TABLE_RUN("roundtrip", test_roundtrip, rt_rows, rt_name);
	failed +=
	    TABLE_RUN("search_fields", test_search_fields, rt_rows, rt_name);
	failed += TABLE_RUN("bad_put", test_bad_put, bad_rows, bad_name);
	failed += TABLE_RUN("purge", test_purge_row, purge_rows, purge_name);
	failed += TABLE_RUN("search", test_search, search_rows, search_name);
	if (search_st != NULL)
		sc->discard(search_st);
	search_st = NULL;
	failed += TABLE_RUN(
	    "corrupt", sc_test_corrupt, corrupt_rows, sc_corrupt_name);
	failed += cmocka_run_group_tests_name(c->name, tests, NULL, NULL);
	return failed;
}
