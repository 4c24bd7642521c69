/*
 * test_mtqp_answer: the pure logic of the MTQP side.
 *   - mtqp_server_part(): store record -> message/tracking-status, with
 *     every field-presence rule of RFC 3886 (Remote-MTA and
 *     Last-Attempt-Date only after an attempt, Will-Retry-Until only while
 *     queued, 2.1.9 only with relayed, status class fitting the action);
 *     every output is parsed back with the tstatus parser;
 *   - mtqp_server_rewrite(): firewall mode's P11 (unanswered transferred
 *     -> relayed/2.1.9) and hide_internal_hosts (RFC 3887 Example #12);
 *   - mtqp_server_bucket_take(): the failed-TRACK token bucket;
 *   - trail_parse_server() and trail_remote_host(): "host[:port]" and
 *     "dns; host" as followed by the trail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "msgtrk/buf.h"
#include "msgtrk/tstatus.h"
#include "mtqp/mtqp_server.h"
#include "mtqp/trail.h"
#include "store/store.h"
#include "table.h"

#define T0 ((time_t)1700000000)

/*
 * mtqp_server_part
 */

struct part_case {
	const char *name;
	int action; /* enum store_action, or 99 (unknown) */
	const char *status; /* stored */
	const char *remote; /* stored remote_mta or NULL */
	time_t last_attempt;
	time_t will_retry;
	int queued;
	const char *orcpt;
	const char *final; /* NULL: the orcpt */
	const char *reporting; /* NULL: the hostname */
	/* expected */
	enum mtqp_server_part_error err;
	const char *action_out;
	const char *status_out;
	const char *remote_out; /* NULL: absent */
	int last_out, retry_out;
};

static const struct part_case part_cases[] = {
	{ "queued no attempt", STORE_ACTION_QUEUED, "", NULL, 0, T0 + 100, 1,
	    "rfc822;x@d.test", NULL, NULL, MTQP_SERVER_PART_OK, "delayed",
	    "4.0.0", NULL, 0, 1 },
	{ "delayed after attempt", STORE_ACTION_DELAYED, "4.4.1",
	    "dns; mx.d.test", T0 + 5, T0 + 100, 1, "rfc822;x@d.test", NULL,
	    NULL, MTQP_SERVER_PART_OK, "delayed", "4.4.1", "dns; mx.d.test", 1,
	    1 },
	{ "delayed not queued: no will-retry", STORE_ACTION_DELAYED, "4.4.1",
	    "dns; mx.d.test", T0 + 5, T0 + 100, 0, "rfc822;x@d.test", NULL,
	    NULL, MTQP_SERVER_PART_OK, "delayed", "4.4.1", "dns; mx.d.test", 1,
	    0 },
	{ "delayed queued without deadline", STORE_ACTION_DELAYED, "4.4.1",
	    NULL, T0 + 5, 0, 1, "rfc822;x@d.test", NULL, NULL,
	    MTQP_SERVER_PART_OK, "delayed", "4.4.1", NULL, 1, 0 },
	{ "delayed class 5 stored -> 4.0.0", STORE_ACTION_DELAYED, "5.1.1",
	    NULL, T0 + 5, T0 + 100, 1, "rfc822;x@d.test", NULL, NULL,
	    MTQP_SERVER_PART_OK, "delayed", "4.0.0", NULL, 1, 1 },
	{ "transferred", STORE_ACTION_TRANSFERRED, "2.0.0", "dns; b.test",
	    T0 + 5, 0, 0, "rfc822;x@d.test", NULL, NULL, MTQP_SERVER_PART_OK,
	    "transferred", "2.0.0", "dns; b.test", 1, 0 },
	{ "transferred while queued: no will-retry", STORE_ACTION_TRANSFERRED,
	    "2.0.0", "dns; b.test", T0 + 5, T0 + 100, 1, "rfc822;x@d.test",
	    NULL, NULL, MTQP_SERVER_PART_OK, "transferred", "2.0.0",
	    "dns; b.test", 1, 0 },
	{ "transferred ip literal", STORE_ACTION_TRANSFERRED, "2.0.0",
	    "dns; [127.0.0.1]", T0 + 5, 0, 0, "rfc822;x@d.test", NULL, NULL,
	    MTQP_SERVER_PART_OK, "transferred", "2.0.0", "dns; [127.0.0.1]", 1,
	    0 },
	{ "relayed forced 2.1.9", STORE_ACTION_RELAYED, "2.0.0",
	    "dns; old.test", T0 + 5, 0, 0, "rfc822;x@d.test", NULL, NULL,
	    MTQP_SERVER_PART_OK, "relayed", "2.1.9", "dns; old.test", 1, 0 },
	{ "relayed no status", STORE_ACTION_RELAYED, "", "dns; old.test",
	    T0 + 5, 0, 0, "rfc822;x@d.test", NULL, NULL, MTQP_SERVER_PART_OK,
	    "relayed", "2.1.9", "dns; old.test", 1, 0 },
	{ "delivered 2.1.9 stored -> 2.0.0", STORE_ACTION_DELIVERED, "2.1.9",
	    NULL, T0 + 5, 0, 0, "rfc822;x@d.test", NULL, NULL,
	    MTQP_SERVER_PART_OK, "delivered", "2.0.0", NULL, 1, 0 },
	{ "delivered keeps 2.6.0", STORE_ACTION_DELIVERED, "2.6.0", NULL,
	    T0 + 5, 0, 0, "rfc822;x@d.test", NULL, NULL, MTQP_SERVER_PART_OK,
	    "delivered", "2.6.0", NULL, 1, 0 },
	{ "delivered class 4 stored", STORE_ACTION_DELIVERED, "4.0.0", NULL,
	    T0 + 5, 0, 0, "rfc822;x@d.test", NULL, NULL, MTQP_SERVER_PART_OK,
	    "delivered", "2.0.0", NULL, 1, 0 },
	{ "expanded", STORE_ACTION_EXPANDED, "", NULL, T0 + 5, 0, 0,
	    "rfc822;list@d.test", NULL, NULL, MTQP_SERVER_PART_OK, "expanded",
	    "2.0.0", NULL, 1, 0 },
	{ "failed remote status", STORE_ACTION_FAILED, "5.1.1",
	    "dns; mx.d.test", T0 + 5, 0, 0, "rfc822;x@d.test", NULL, NULL,
	    MTQP_SERVER_PART_OK, "failed", "5.1.1", "dns; mx.d.test", 1, 0 },
	{ "failed class 4 kept", STORE_ACTION_FAILED, "4.4.7", NULL, T0 + 5, 0,
	    0, "rfc822;x@d.test", NULL, NULL, MTQP_SERVER_PART_OK, "failed",
	    "4.4.7", NULL, 1, 0 },
	{ "failed class 2 -> 5.0.0", STORE_ACTION_FAILED, "2.0.0", NULL, T0 + 5,
	    0, 0, "rfc822;x@d.test", NULL, NULL, MTQP_SERVER_PART_OK, "failed",
	    "5.0.0", NULL, 1, 0 },
	{ "failed without attempt (lifetime)", STORE_ACTION_FAILED, "5.4.7",
	    "dns; mx.d.test", 0, 0, 0, "rfc822;x@d.test", NULL, NULL,
	    MTQP_SERVER_PART_OK, "failed", "5.4.7", NULL, 0, 0 },
	{ "garbage status -> default", STORE_ACTION_DELIVERED, "x", NULL,
	    T0 + 5, 0, 0, "rfc822;x@d.test", NULL, NULL, MTQP_SERVER_PART_OK,
	    "delivered", "2.0.0", NULL, 1, 0 },
	{ "final differs", STORE_ACTION_DELIVERED, "2.0.0", NULL, T0 + 5, 0, 0,
	    "rfc822;a@d.test", "rfc822;b@d.test", NULL, MTQP_SERVER_PART_OK,
	    "delivered", "2.0.0", NULL, 1, 0 },
	{ "blanks around semicolon", STORE_ACTION_DELIVERED, "2.0.0", NULL,
	    T0 + 5, 0, 0, "rfc822 ;  x@d.test ", NULL, NULL,
	    MTQP_SERVER_PART_OK, "delivered", "2.0.0", NULL, 1, 0 },
	{ "stored reporting mta", STORE_ACTION_DELIVERED, "2.0.0", NULL, T0 + 5,
	    0, 0, "rfc822;x@d.test", NULL, "old-name.test", MTQP_SERVER_PART_OK,
	    "delivered", "2.0.0", NULL, 1, 0 },
	{ "orcpt without type", STORE_ACTION_DELIVERED, "2.0.0", NULL, T0, 0, 0,
	    "x@d.test", NULL, NULL, MTQP_SERVER_PART_BAD_ADDRESS, NULL, NULL,
	    NULL, 0, 0 },
	{ "orcpt empty value", STORE_ACTION_DELIVERED, "2.0.0", NULL, T0, 0, 0,
	    "rfc822; ", NULL, NULL, MTQP_SERVER_PART_BAD_ADDRESS, NULL, NULL,
	    NULL, 0, 0 },
	{ "orcpt empty type", STORE_ACTION_DELIVERED, "2.0.0", NULL, T0, 0, 0,
	    ";x@d.test", NULL, NULL, MTQP_SERVER_PART_BAD_ADDRESS, NULL, NULL,
	    NULL, 0, 0 },
	{ "remote without type", STORE_ACTION_TRANSFERRED, "2.0.0", "b.test",
	    T0, 0, 0, "rfc822;x@d.test", NULL, NULL,
	    MTQP_SERVER_PART_BAD_ADDRESS, NULL, NULL, NULL, 0, 0 },
	{ "unknown action", 99, "2.0.0", NULL, T0, 0, 0, "rfc822;x@d.test",
	    NULL, NULL, MTQP_SERVER_PART_BAD_ACTION, NULL, NULL, NULL, 0, 0 },
	{ "8-bit address refused", STORE_ACTION_DELIVERED, "2.0.0", NULL, T0, 0,
	    0, "rfc822;x\xc3\xa9@d.test", NULL, NULL, MTQP_SERVER_PART_GENERATE,
	    NULL, NULL, NULL, 0, 0 },
};

static const char *
part_name(const void *row)
{
	return ((const struct part_case *)row)->name;
}

/* Parses body; returns the parser (owning *out). */
static struct tstatus_parser *
parse_back(const struct buf *b, const struct tstatus **out)
{
	struct tstatus_parser *p = tstatus_parser_new(NULL);

	assert_non_null(p);
	assert_int_equal(tstatus_parser_push(p, b->data, b->len), 0);
	if (tstatus_parser_end(p, out) != 1)
		fail_msg("parse back: %s line %zu\n%s",
		    tstatus_strerror(tstatus_parser_error(p)),
		    tstatus_parser_line(p), b->data);
	return p;
}

static void
test_part(void **state)
{
	const struct part_case *c = *state;
	struct store_rcpt r;
	struct store_msg m;
	struct buf b;
	enum mtqp_server_part_error e;
	enum tstatus_error te;
	const struct tstatus *t;
	struct tstatus_parser *p;
	const char *final = c->final != NULL ? c->final : c->orcpt;

	memset(&r, 0, sizeof(r));
	memset(&m, 0, sizeof(m));
	r.orcpt = (char *)c->orcpt;
	r.final_rcpt = (char *) final;
	r.action = (enum store_action)c->action;
	snprintf(r.status, sizeof(r.status), "%s", c->status);
	r.remote_mta = (char *)c->remote;
	r.last_attempt = c->last_attempt;
	r.will_retry_until = c->will_retry;
	snprintf(m.qid, sizeof(m.qid), "Q1");
	m.envid = (char *)"e1@sender.test";
	m.reporting_mta = (char *)c->reporting;
	m.arrival = T0;
	m.queued = c->queued;
	m.nrcpt = 1;
	m.rcpts = &r;
	buf_init(&b, TSTATUS_SIZE_MAX);
	assert_int_equal(buf_adds(&b, "keep"), 0);
	if (c->err != MTQP_SERVER_PART_OK) {
		assert_int_equal(
		    mtqp_server_part(&m, "me.test", &b, &e, &te), -1);
		assert_int_equal(e, c->err);
		/* out left as it was */
		assert_int_equal(b.len, 4);
		assert_string_equal(
		    mtqp_server_part_strerror(e) != NULL ? "x" : "", "x");
		buf_reset(&b);
		return;
	}
	assert_int_equal(mtqp_server_part(&m, "me.test", &b, &e, &te), 0);
	assert_int_equal(e, MTQP_SERVER_PART_OK);
	{
		struct buf body;

		buf_init(&body, TSTATUS_SIZE_MAX);
		assert_int_equal(buf_add(&body, b.data + 4, b.len - 4), 0);
		p = parse_back(&body, &t);
		buf_reset(&body);
	}
	assert_string_equal(t->envid, "e1@sender.test");
	assert_string_equal(t->reporting_mta.type, "dns");
	assert_string_equal(t->reporting_mta.value,
	    c->reporting != NULL ? c->reporting : "me.test");
	assert_true(t->arrival.t == T0);
	assert_int_equal(t->nrcpt, 1);
	assert_string_equal(
	    tstatus_action_name(t->rcpt[0].action), c->action_out);
	assert_string_equal(t->rcpt[0].status, c->status_out);
	assert_string_equal(t->rcpt[0].orig_rcpt.type, "rfc822");
	if (c->remote_out == NULL)
		assert_null(t->rcpt[0].remote_mta.type);
	else {
		char rm[256];

		snprintf(rm, sizeof(rm), "%s; %s", t->rcpt[0].remote_mta.type,
		    t->rcpt[0].remote_mta.value);
		assert_string_equal(rm, c->remote_out);
	}
	assert_int_equal(t->rcpt[0].has_last_attempt, c->last_out);
	if (c->last_out)
		assert_true(t->rcpt[0].last_attempt.t == c->last_attempt);
	assert_int_equal(t->rcpt[0].has_will_retry, c->retry_out);
	if (c->retry_out)
		assert_true(t->rcpt[0].will_retry.t == c->will_retry);
	tstatus_parser_free(p);
	buf_reset(&b);
}

/* No recipient, and more than TSTATUS_RCPT_MAX. */
static void
test_part_counts(void **state)
{
	struct store_msg m;
	struct store_rcpt *r;
	struct buf b;
	enum mtqp_server_part_error e;
	const struct tstatus *t;
	struct tstatus_parser *p;
	size_t i;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.envid = (char *)"e@x.test";
	m.arrival = T0;
	buf_init(&b, TSTATUS_SIZE_MAX);
	assert_int_equal(mtqp_server_part(&m, "me.test", &b, &e, NULL), -1);
	assert_int_equal(e, MTQP_SERVER_PART_NO_RCPT);
	r = calloc(TSTATUS_RCPT_MAX + 1, sizeof(*r));
	assert_non_null(r);
	for (i = 0; i <= TSTATUS_RCPT_MAX; i++) {
		r[i].orcpt = (char *)"rfc822;a@b.test";
		r[i].action = STORE_ACTION_DELIVERED;
		r[i].last_attempt = T0;
	}
	m.rcpts = r;
	m.nrcpt = TSTATUS_RCPT_MAX + 1;
	assert_int_equal(mtqp_server_part(&m, "me.test", &b, &e, NULL), -1);
	assert_int_equal(e, MTQP_SERVER_PART_NO_RCPT);
	/* Exactly the maximum works and parses back with every block. */
	m.nrcpt = TSTATUS_RCPT_MAX;
	assert_int_equal(mtqp_server_part(&m, "me.test", &b, &e, NULL), 0);
	p = parse_back(&b, &t);
	assert_int_equal(t->nrcpt, TSTATUS_RCPT_MAX);
	tstatus_parser_free(p);
	free(r);
	buf_reset(&b);
}

/*
 * mtqp_server_rewrite
 */

#define PART_A \
	"Original-Envelope-Id: e@s.test\r\n" \
	"Reporting-MTA: dns; a.test\r\n" \
	"Arrival-Date: Mon, 1 Jan 2001 15:15:15 -0500\r\n" \
	"\r\n" \
	"Original-Recipient: rfc822; x@d.test\r\n" \
	"Final-Recipient: rfc822; x@d.test\r\n" \
	"Action: transferred\r\n" \
	"Status: 2.0.0 (ok)\r\n" \
	"Remote-MTA: dns; B.test.\r\n" \
	"Last-Attempt-Date: Mon, 1 Jan 2001 15:16:15 -0500\r\n" \
	"\r\n" \
	"Original-Recipient: rfc822; y@d.test\r\n" \
	"Final-Recipient: rfc822; y@d.test\r\n" \
	"Action: delivered\r\n" \
	"Status: 2.0.0\r\n" \
	"Remote-MTA: dns; ext.example\r\n" \
	"Last-Attempt-Date: Mon, 1 Jan 2001 15:16:15 -0500\r\n" \
	"\r\n" \
	"Original-Recipient: rfc822; z@d.test\r\n" \
	"Final-Recipient: rfc822; z@d.test\r\n" \
	"Action: delayed\r\n" \
	"Status: 4.4.1\r\n" \
	"Remote-MTA: x-other; b.test\r\n" \
	"Last-Attempt-Date: Mon, 1 Jan 2001 15:16:15 -0500\r\n" \
	"Will-Retry-Until: Tue, 2 Jan 2001 15:16:15 -0500\r\n" \
	"X-Ext: kept\r\n"

struct rewrite_case {
	const char *name;
	unsigned char relay[3];
	const char *hide[2];
	size_t nhide;
	int hide_all;
	/* expected per recipient */
	const char *action[3];
	const char *status[3];
	const char *remote[3]; /* "type; value" */
	const char *reporting;
};

static const struct rewrite_case rewrite_cases[] = {
	{ "nothing", { 0, 0, 0 }, { NULL, NULL }, 0, 0,
	    { "transferred", "delivered", "delayed" },
	    { "2.0.0", "2.0.0", "4.4.1" },
	    { "dns; B.test.", "dns; ext.example", "x-other; b.test" },
	    "dns; a.test" },
	{ "P11 relay transferred", { 1, 0, 0 }, { NULL, NULL }, 0, 0,
	    { "relayed", "delivered", "delayed" },
	    { "2.1.9", "2.0.0", "4.4.1" },
	    { "dns; B.test.", "dns; ext.example", "x-other; b.test" },
	    "dns; a.test" },
	{ "P11 mask ignores non-transferred", { 0, 1, 1 }, { NULL, NULL }, 0, 0,
	    { "transferred", "delivered", "delayed" },
	    { "2.0.0", "2.0.0", "4.4.1" },
	    { "dns; B.test.", "dns; ext.example", "x-other; b.test" },
	    "dns; a.test" },
	{ "hide case and dot insensitive", { 0, 0, 0 }, { "b.test", NULL }, 1,
	    0, { "transferred", "delivered", "delayed" },
	    { "2.0.0", "2.0.0", "4.4.1" },
	    { "dns; me.test", "dns; ext.example", "x-other; b.test" },
	    "dns; a.test" },
	{ "hide reporting", { 0, 0, 0 }, { "a.test", "b.test." }, 2, 0,
	    { "transferred", "delivered", "delayed" },
	    { "2.0.0", "2.0.0", "4.4.1" },
	    { "dns; me.test", "dns; ext.example", "x-other; b.test" },
	    "dns; me.test" },
	{ "hide no match", { 0, 0, 0 }, { "c.test", NULL }, 1, 0,
	    { "transferred", "delivered", "delayed" },
	    { "2.0.0", "2.0.0", "4.4.1" },
	    { "dns; B.test.", "dns; ext.example", "x-other; b.test" },
	    "dns; a.test" },
	{ "hide prefix is not a match", { 0, 0, 0 }, { "b.tes", NULL }, 1, 0,
	    { "transferred", "delivered", "delayed" },
	    { "2.0.0", "2.0.0", "4.4.1" },
	    { "dns; B.test.", "dns; ext.example", "x-other; b.test" },
	    "dns; a.test" },
	{ "hide all dns only", { 0, 0, 0 }, { NULL, NULL }, 0, 1,
	    { "transferred", "delivered", "delayed" },
	    { "2.0.0", "2.0.0", "4.4.1" },
	    { "dns; me.test", "dns; me.test", "x-other; b.test" },
	    "dns; me.test" },
	{ "relay and hide", { 1, 0, 0 }, { "b.test", NULL }, 1, 0,
	    { "relayed", "delivered", "delayed" },
	    { "2.1.9", "2.0.0", "4.4.1" },
	    { "dns; me.test", "dns; ext.example", "x-other; b.test" },
	    "dns; a.test" },
};

static const char *
rewrite_name(const void *row)
{
	return ((const struct rewrite_case *)row)->name;
}

static void
test_rewrite(void **state)
{
	const struct rewrite_case *c = *state;
	struct tstatus_parser *in, *outp;
	const struct tstatus *t, *u;
	struct buf b, src;
	enum mtqp_server_part_error e;
	size_t i;

	buf_init(&src, TSTATUS_SIZE_MAX);
	assert_int_equal(buf_adds(&src, PART_A), 0);
	in = parse_back(&src, &t);
	buf_init(&b, TSTATUS_SIZE_MAX);
	assert_int_equal(mtqp_server_rewrite(t, c->relay, c->hide, c->nhide,
	                     c->hide_all, "me.test", &b, &e, NULL),
	    0);
	assert_int_equal(e, MTQP_SERVER_PART_OK);
	outp = parse_back(&b, &u);
	assert_int_equal(u->nrcpt, 3);
	{
		char rm[256];

		snprintf(rm, sizeof(rm), "%s; %s", u->reporting_mta.type,
		    u->reporting_mta.value);
		assert_string_equal(rm, c->reporting);
	}
	for (i = 0; i < 3; i++) {
		char rm[256];

		assert_string_equal(
		    tstatus_action_name(u->rcpt[i].action), c->action[i]);
		assert_string_equal(u->rcpt[i].status, c->status[i]);
		snprintf(rm, sizeof(rm), "%s; %s", u->rcpt[i].remote_mta.type,
		    u->rcpt[i].remote_mta.value);
		assert_string_equal(rm, c->remote[i]);
		/* Everything else survives. */
		assert_string_equal(
		    u->rcpt[i].orig_rcpt.value, t->rcpt[i].orig_rcpt.value);
		assert_int_equal(u->rcpt[i].has_last_attempt, 1);
	}
	/* The relayed block lost its comment; the others keep theirs. */
	if (c->relay[0])
		assert_null(u->rcpt[0].status_comment);
	else
		assert_non_null(u->rcpt[0].status_comment);
	assert_int_equal(u->rcpt[2].has_will_retry, 1);
	assert_int_equal(u->rcpt[2].next, 1);
	assert_string_equal(u->rcpt[2].ext[0].name, "X-Ext");
	tstatus_parser_free(outp);
	tstatus_parser_free(in);
	buf_reset(&b);
	buf_reset(&src);
}

static void
test_rewrite_errors(void **state)
{
	struct tstatus t;
	struct tstatus_rcpt r;
	struct buf b;
	enum mtqp_server_part_error e;
	enum tstatus_error te;

	(void)state;
	memset(&t, 0, sizeof(t));
	memset(&r, 0, sizeof(r));
	buf_init(&b, TSTATUS_SIZE_MAX);
	t.envid = "e@s.test";
	t.reporting_mta.type = "dns";
	t.reporting_mta.value = "a.test";
	t.arrival.t = T0;
	assert_int_equal(
	    mtqp_server_rewrite(&t, NULL, NULL, 0, 0, "me.test", &b, &e, NULL),
	    -1);
	assert_int_equal(e, MTQP_SERVER_PART_NO_RCPT);
	/* A transferred block without Last-Attempt-Date cannot become a
	 * valid relayed one: the generator refuses, out is untouched. */
	r.orig_rcpt.type = r.final_rcpt.type = "rfc822";
	r.orig_rcpt.value = r.final_rcpt.value = "x@d.test";
	r.action = TSTATUS_ACTION_TRANSFERRED;
	r.status = "2.0.0";
	t.rcpt = &r;
	t.nrcpt = 1;
	{
		unsigned char m[1] = { 1 };

		assert_int_equal(mtqp_server_rewrite(
		                     &t, m, NULL, 0, 0, "me.test", &b, &e, &te),
		    -1);
	}
	assert_int_equal(e, MTQP_SERVER_PART_GENERATE);
	assert_int_not_equal(te, TSTATUS_OK);
	assert_int_equal(b.len, 0);
	/* A hidden name replaced by an invalid "me" is refused too. */
	r.has_last_attempt = 1;
	r.last_attempt.t = T0;
	r.remote_mta.type = "dns";
	r.remote_mta.value = "b.test";
	{
		const char *h[1] = { "b.test" };

		assert_int_equal(mtqp_server_rewrite(&t, NULL, h, 1, 0,
		                     "bad name\x01", &b, &e, &te),
		    -1);
		assert_int_equal(e, MTQP_SERVER_PART_GENERATE);
		assert_int_equal(mtqp_server_rewrite(
		                     &t, NULL, h, 1, 0, "me.test", &b, &e, &te),
		    0);
		assert_non_null(strstr(b.data, "Remote-MTA: dns; me.test"));
	}
	assert_string_equal(
	    mtqp_server_part_strerror(MTQP_SERVER_PART_NOMEM), "out of memory");
	assert_string_equal(
	    mtqp_server_part_strerror((enum mtqp_server_part_error)77),
	    "unknown error");
	buf_reset(&b);
}

/*
 * mtqp_server_bucket_take
 */

struct bucket_case {
	const char *name;
	unsigned int tokens;
	time_t stamp;
	time_t now;
	int want; /* return */
	unsigned int tokens_after;
	time_t stamp_after;
};

#define R MTQP_SERVER_FAIL_REFILL
#define B MTQP_SERVER_FAIL_BURST
static const struct bucket_case bucket_cases[] = {
	{ "full", B, T0, T0, 1, B - 1, T0 },
	{ "last token", 1, T0, T0, 1, 0, T0 },
	{ "empty", 0, T0, T0, 0, 0, T0 },
	{ "refill one period", 0, T0, T0 + R, 1, 0, T0 + R },
	{ "refill less than a period", 0, T0, T0 + R - 1, 0, 0, T0 },
	{ "remainder carried", 0, T0, T0 + 2 * R + 1, 1, 1, T0 + 2 * R },
	{ "refill to exactly full", 0, T0, T0 + B *R + 3, 1, B - 1,
	    T0 + B *R + 3 },
	{ "refill capped at burst", 0, T0, T0 + 100000, 1, B - 1, T0 + 100000 },
	{ "huge gap", 0, 0, T0, 1, B - 1, T0 },
	{ "clock went back: no refill", 0, T0, T0 - 3600, 0, 0, T0 },
	{ "clock went back with tokens", 2, T0, T0 - 3600, 1, 1, T0 },
};
#undef R
#undef B

static const char *
bucket_name(const void *row)
{
	return ((const struct bucket_case *)row)->name;
}

static void
test_bucket(void **state)
{
	const struct bucket_case *c = *state;
	struct mtqp_server_bucket b = { c->tokens, c->stamp };

	assert_int_equal(mtqp_server_bucket_take(&b, c->now), c->want);
	assert_int_equal(b.tokens, c->tokens_after);
	assert_true(b.stamp == c->stamp_after);
}

/* A burst of failures, then the steady rate. */
static void
test_bucket_sequence(void **state)
{
	struct mtqp_server_bucket b = { MTQP_SERVER_FAIL_BURST, T0 };
	time_t now = T0;
	int i, ok = 0;

	(void)state;
	for (i = 0; i < MTQP_SERVER_FAIL_BURST + 5; i++)
		ok += mtqp_server_bucket_take(&b, now);
	assert_int_equal(ok, MTQP_SERVER_FAIL_BURST);
	/* One hour at one attempt a second: one in FAIL_REFILL passes. */
	ok = 0;
	for (i = 0; i < 3600; i++)
		ok += mtqp_server_bucket_take(&b, ++now);
	assert_int_equal(ok, 3600 / MTQP_SERVER_FAIL_REFILL);
}

/*
 * trail_parse_server
 */

struct server_case {
	const char *in;
	int ok;
	const char *host;
	unsigned int port;
};

static const struct server_case server_cases[] = {
	{ "b.test", 1, "b.test", 0 },
	{ "b.test:1038", 1, "b.test", 1038 },
	{ "b.test:1", 1, "b.test", 1 },
	{ "b.test:65535", 1, "b.test", 65535 },
	{ "127.0.0.1", 1, "127.0.0.1", 0 },
	{ "127.0.0.1:11038", 1, "127.0.0.1", 11038 },
	{ "[127.0.0.1]:11038", 1, "[127.0.0.1]", 11038 },
	{ "[::1]:11038", 1, "[::1]", 11038 },
	{ "[::1]", 1, "[::1]", 0 },
	{ "::1", 1, "::1", 0 },
	{ "2001:db8::1", 1, "2001:db8::1", 0 },
	{ "", 0, NULL, 0 },
	{ ":1038", 0, NULL, 0 },
	{ "b.test:", 0, NULL, 0 },
	{ "b.test:0", 0, NULL, 0 },
	{ "b.test:65536", 0, NULL, 0 },
	{ "b.test:99999999999999999999", 0, NULL, 0 },
	{ "b.test:-1", 0, NULL, 0 },
	{ "b.test:+1", 0, NULL, 0 },
	{ "b.test:10x", 0, NULL, 0 },
	{ "b.test: 10", 0, NULL, 0 },
	{ "[::1", 0, NULL, 0 },
	{ "[]:1", 0, NULL, 0 },
	{ "[::1]x", 0, NULL, 0 },
	{ "[::1]:", 0, NULL, 0 },
};

static const char *
server_name(const void *row)
{
	return ((const struct server_case *)row)->in;
}

static void
test_server(void **state)
{
	const struct server_case *c = *state;
	char host[300];
	unsigned int port = 7;

	if (!c->ok) {
		assert_int_equal(
		    trail_parse_server(c->in, host, sizeof(host), &port), -1);
		return;
	}
	assert_int_equal(
	    trail_parse_server(c->in, host, sizeof(host), &port), 0);
	assert_string_equal(host, c->host);
	assert_int_equal(port, c->port);
}

static void
test_server_long(void **state)
{
	char in[600], host[64];
	unsigned int port;

	(void)state;
	memset(in, 'a', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	assert_int_equal(trail_parse_server(in, host, sizeof(host), &port), -1);
	memcpy(in + 100, ":25", 4);
	assert_int_equal(trail_parse_server(in, host, sizeof(host), &port), -1);
	in[0] = '[';
	in[100] = ']';
	assert_int_equal(trail_parse_server(in, host, sizeof(host), &port), -1);
	/* exactly fits: 63 characters */
	memset(in, 'a', 63);
	in[63] = '\0';
	assert_int_equal(trail_parse_server(in, host, sizeof(host), &port), 0);
	in[63] = 'a';
	in[64] = '\0';
	assert_int_equal(trail_parse_server(in, host, sizeof(host), &port), -1);
}

/*
 * trail_remote_host
 */

struct remote_case {
	const char *name;
	const char *type, *value;
	int ok;
	const char *host;
};

static const struct remote_case remote_cases[] = {
	{ "dns name", "dns", "b.test", 1, "b.test" },
	{ "DNS upper", "DNS", "B.Test", 1, "B.Test" },
	{ "ip literal", "dns", "[127.0.0.1]", 1, "[127.0.0.1]" },
	/* RFC 5321 §4.1.3's IPv6 literal, and the untagged form of older
	 * servers: one host for the client and the loop check. */
	{ "ipv6 literal", "dns", "[IPv6:::1]", 1, "[::1]" },
	{ "ipv6 literal lower tag", "dns", "[ipv6:2001:DB8:0::1]", 1,
	    "[2001:db8::1]" },
	{ "ipv6 untagged", "dns", "[::1]", 1, "[::1]" },
	{ "ipv6 untagged long", "dns", "[0:0:0:0:0:0:0:1]", 1, "[::1]" },
	{ "ipv6 mapped", "dns", "[IPv6:::ffff:192.0.2.1]", 1,
	    "[::ffff:192.0.2.1]" },
	{ "ipv4 tagged", "dns", "[IPv6:127.0.0.1]", 0, NULL },
	{ "literal name", "dns", "[b.test]", 0, NULL },
	{ "literal empty", "dns", "[]", 0, NULL },
	{ "literal unterminated", "dns", "[::1", 0, NULL },
	{ "literal junk", "dns", "[::1]x", 0, NULL },
	{ "literal tag only", "dns", "[IPv6:]", 0, NULL },
	{ "literal space", "dns", "[ 127.0.0.1]", 0, NULL },
	{ "absent", NULL, NULL, 0, NULL },
	{ "other type", "x-local", "b.test", 0, NULL },
	{ "empty value", "dns", "", 0, NULL },
	{ "null value", "dns", NULL, 0, NULL },
};

static const char *
remote_name(const void *row)
{
	return ((const struct remote_case *)row)->name;
}

static void
test_remote(void **state)
{
	const struct remote_case *c = *state;
	struct tstatus_typed m = { c->type, c->value };
	char out[256];

	if (!c->ok) {
		assert_int_equal(trail_remote_host(&m, out, sizeof(out)), -1);
		return;
	}
	assert_int_equal(trail_remote_host(&m, out, sizeof(out)), 0);
	assert_string_equal(out, c->host);
}

static void
test_remote_long(void **state)
{
	char v[300], out[256];
	struct tstatus_typed m = { "dns", v };

	(void)state;
	memset(v, 'a', sizeof(v) - 1);
	v[sizeof(v) - 1] = '\0';
	assert_int_equal(trail_remote_host(&m, out, sizeof(out)), -1);
	v[255] = '\0';
	assert_int_equal(trail_remote_host(&m, out, sizeof(out)), 0);
	v[255] = 'a';
	v[256] = '\0';
	assert_int_equal(trail_remote_host(&m, out, sizeof(out)), -1);
}

static void
test_end_names(void **state)
{
	(void)state;
	assert_string_equal(trail_end_name(TRAIL_END_DELIVERED), "delivered");
	assert_string_equal(trail_end_name(TRAIL_END_HOP_LIMIT), "hop-limit");
	assert_string_equal(trail_end_name(TRAIL_END_TIMEOUT), "timeout");
	assert_string_equal(trail_end_name((enum trail_end)0), "unknown");
}

int
main(void)
{
	const struct CMUnitTest once[] = {
		cmocka_unit_test(test_part_counts),
		cmocka_unit_test(test_rewrite_errors),
		cmocka_unit_test(test_bucket_sequence),
		cmocka_unit_test(test_server_long),
		cmocka_unit_test(test_remote_long),
		cmocka_unit_test(test_end_names),
	};
	int failed = 0;

	failed +=
	    TABLE_RUN("mtqp_server_part", test_part, part_cases, part_name);
	failed += TABLE_RUN(
	    "mtqp_server_rewrite", test_rewrite, rewrite_cases, rewrite_name);
	failed += TABLE_RUN(
	    "mtqp_server_bucket_take", test_bucket, bucket_cases, bucket_name);
	failed += TABLE_RUN(
	    "trail_parse_server", test_server, server_cases, server_name);
	failed += TABLE_RUN(
	    "trail_remote_host", test_remote, remote_cases, remote_name);
	failed += cmocka_run_group_tests_name("mtqp_answer", once, NULL, NULL);
	return failed;
}
