/*
 * test_mtqp_answer: the pure logic of the MTQP side.
 *   - mtqp_server_part(): store record -> message/tracking-status, with
 *     every field-presence rule of RFC 3886 (Remote-MTA and
 *     Last-Attempt-Date only after an attempt, Will-Retry-Until only while
 *     queued, 2.1.9 only with relayed, status class fitting the action);
 *     every output is parsed back with the tstatus parser;
 *   - mtqp_server_rewrite(): firewall mode's P11 (unanswered transferred
 *     -> relayed/2.1.9) and hide_internal_hosts (RFC 3887 Example #12);
 *   - mtqp_server_rate_key() and mtqp_server_rate_fail(): the failed-TRACK
 *     limit per client (IPv4 address, IPv6 /64) over all its sessions,
 *     and its bounded table (fails closed when full);
 *   - mtqp_server_chain_allowed(): the hops firewall mode may contact
 *     (mtqp_chain_hosts, and the default rule without it);
 *   - trail_parse_server() and trail_remote_host(): "host[:port]" and
 *     "dns; host" as followed by the trail.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "msgtrk/buf.h"
#include "msgtrk/tstatus.h"
#include "common/conf.h"
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
 * mtqp_server_rate_key, mtqp_server_rate_fail
 */

#define MS0 ((int64_t)1000000)
#define PERIOD ((int64_t)MTQP_SERVER_FAIL_REFILL * 1000)

static struct sockaddr_storage
sa_of(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	else
		ss.ss_family = AF_UNIX;
	return ss;
}

static int64_t
fail_at(struct mtqp_server_rate *r, const char *addr, int64_t now)
{
	struct sockaddr_storage ss = sa_of(addr);

	return mtqp_server_rate_fail(r, (const struct sockaddr *)&ss, now);
}

struct key_case {
	const char *a, *b;
	int same; /* 1: one client */
};

static const struct key_case key_cases[] = {
	{ "127.0.0.1", "127.0.0.1", 1 }, { "127.0.0.1", "127.0.0.2", 0 },
	{ "127.0.0.1", "::ffff:127.0.0.1", 1 },
	{ "192.0.2.7", "::ffff:192.0.2.8", 0 },
	{ "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", 1 },
	{ "2001:db8:1:2:aaaa::1", "2001:db8:1:2:bbbb::2", 1 },
	{ "2001:db8:1:2::1", "2001:db8:1:3::1", 0 }, { "::1", "::2", 1 },
	{ "::1", "127.0.0.1", 0 },
	{ "::7f00:1", "127.0.0.1", 0 }, /* IPv4-compatible is not mapped */
};

static const char *
key_name(const void *row)
{
	static char name[128];
	const struct key_case *c = row;

	snprintf(
	    name, sizeof(name), "%s %s %s", c->a, c->same ? "=" : "!=", c->b);
	return name;
}

static void
test_rate_key(void **state)
{
	const struct key_case *c = *state;
	struct sockaddr_storage a = sa_of(c->a), b = sa_of(c->b);
	unsigned char ka[MTQP_SERVER_RATE_KEY_LEN],
	    kb[MTQP_SERVER_RATE_KEY_LEN];
	struct mtqp_server_rate *r = calloc(1, sizeof(*r));
	int i;

	assert_non_null(r);
	assert_int_equal(mtqp_server_rate_key((struct sockaddr *)&a, ka), 0);
	assert_int_equal(mtqp_server_rate_key((struct sockaddr *)&b, kb), 0);
	assert_int_equal(memcmp(ka, kb, sizeof(ka)) == 0, c->same);
	/* The same through the table: a's burst leaves b limited only if
	 * they are one client. */
	for (i = 0; i < MTQP_SERVER_FAIL_BURST; i++)
		assert_true(fail_at(r, c->a, MS0) == 0);
	assert_true((fail_at(r, c->b, MS0) > 0) == c->same);
	free(r);
}

/* The burst, then one slot per period, each failure taking the next. */
static void
test_rate_sequence(void **state)
{
	struct mtqp_server_rate *r = calloc(1, sizeof(*r));
	int64_t w;
	int i;

	(void)state;
	assert_non_null(r);
	for (i = 0; i < MTQP_SERVER_FAIL_BURST; i++)
		assert_true(fail_at(r, "192.0.2.1", MS0) == 0);
	for (i = 1; i <= 5; i++) {
		w = fail_at(r, "192.0.2.1", MS0);
		assert_true(w == i * PERIOD);
	}
	/* Another client is not touched. */
	assert_true(fail_at(r, "192.0.2.2", MS0) == 0);
	/* Idle long enough: a whole burst again. */
	for (i = 0; i < MTQP_SERVER_FAIL_BURST; i++)
		assert_true(fail_at(r, "192.0.2.1", MS0 + 1000 * PERIOD) == 0);
	assert_true(fail_at(r, "192.0.2.1", MS0 + 1000 * PERIOD) == PERIOD);
	/* A clock that went back gives nothing back. */
	assert_true(fail_at(r, "192.0.2.1", MS0) > PERIOD);
	free(r);
}

/* The flood: n sessions of one client (or n addresses of one
 * /64), each sending its next failed TRACK as soon as the previous answer
 * came, for 10 s.  Answers in those 10 s: at most the burst plus what one
 * period refills, whatever n. */
static size_t
flood(const char *const *addrs, size_t n, int64_t span)
{
	struct mtqp_server_rate *r = calloc(1, sizeof(*r));
	int64_t next[64];
	size_t i, answered = 0;

	assert_non_null(r);
	assert_true(n <= 64);
	for (i = 0; i < n; i++)
		next[i] = MS0;
	for (;;) {
		size_t k = 0;

		/* The session whose request comes first. */
		for (i = 1; i < n; i++)
			if (next[i] < next[k])
				k = i;
		if (next[k] >= MS0 + span)
			break;
		next[k] += fail_at(r, addrs[k], next[k]);
		if (next[k] < MS0 + span)
			answered++;
		next[k] += 1; /* the client's next request */
	}
	free(r);
	return answered;
}

static void
test_rate_flood(void **state)
{
	const char *v4[30],
	    *v6[8] = { "2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:1::3",
		    "2001:db8:0:1:1::4", "2001:db8:0:1:2::5",
		    "2001:db8:0:1:3::6", "2001:db8:0:1:4::7",
		    "2001:db8:0:1:ffff::8" };
	size_t i, one, many, six;
	size_t max = MTQP_SERVER_FAIL_BURST + 10 / MTQP_SERVER_FAIL_REFILL;

	(void)state;
	for (i = 0; i < 30; i++)
		v4[i] = "127.0.0.1";
	one = flood(v4, 1, 10000);
	many = flood(v4, 30, 10000);
	six = flood(v6, 8, 10000);
	print_message("flood 10 s: 1 session %zu, 30 sessions %zu, 8 addresses "
	              "of one /64 %zu answers (at most %zu)\n",
	    one, many, six, max);
	assert_true(one <= max);
	assert_true(many <= max);
	assert_true(six <= max);
	assert_true(many == one);
}

/* A full table reuses the entry whose bucket has been full again the
 * longest; while every entry still limits its client, newcomers are
 * limited too (no fresh burst by cycling addresses). */
static void
test_rate_table_full(void **state)
{
	struct mtqp_server_rate *r = calloc(1, sizeof(*r));
	char a[64];
	size_t i;
	int k;

	(void)state;
	assert_non_null(r);
	for (i = 0; i < MTQP_SERVER_RATE_ENTRIES; i++) {
		snprintf(a, sizeof(a), "10.%zu.%zu.1", i / 256, i % 256);
		assert_true(fail_at(r, a, MS0 + (int64_t)i) == 0);
	}
	/* Every entry is limiting (tat in the future): a newcomer shares
	 * the overflow slot: one now, the next a period later. */
	assert_true(fail_at(r, "198.51.100.1", MS0 + 2000) == 0);
	assert_true(fail_at(r, "198.51.100.2", MS0 + 2000) == PERIOD);
	assert_true(fail_at(r, "198.51.100.3", MS0 + 2000) == 2 * PERIOD);
	assert_true(r->rl.overflowed == 3);
	/* Known clients keep their own buckets meanwhile. */
	assert_true(fail_at(r, "10.0.5.1", MS0 + 2000) == 0);
	/* Once the first entry (10.0.0.1) is full again it is reused: the
	 * newcomer gets a burst of its own. */
	for (k = 0; k < MTQP_SERVER_FAIL_BURST; k++)
		assert_true(fail_at(r, "203.0.113.9", MS0 + PERIOD) == 0);
	assert_true(fail_at(r, "203.0.113.9", MS0 + PERIOD) == PERIOD);
	/* 10.0.0.1 was the one evicted: it starts over. */
	assert_true(fail_at(r, "10.0.0.1", MS0 + PERIOD + 1) == 0);
	/* Not an address: the overflow slot. */
	assert_true(fail_at(r, "not-an-address", MS0 + 2 * PERIOD) > 0);
	free(r);
}

/*
 * mtqp_server_chain_allowed: firewall mode's hop rule
 */

enum { L_NONE, L_MIXED, L_NAMES, L_NETS };

struct allow_case {
	const char *name;
	int list;
	const char *host;
	const char *sa; /* NULL: the name step */
	const char *via; /* NULL: named by our own record */
	int want;
};

static const struct allow_case allow_cases[] = {
	/* mtqp_chain_hosts = hop2.test, 10.0.0.0/8, [2001:db8::5] */
	{ "mixed listed name", L_MIXED, "hop2.test", NULL, NULL, 1 },
	{ "mixed name any case, dot", L_MIXED, "HOP2.Test.", NULL, NULL, 1 },
	{ "mixed unlisted name", L_MIXED, "evil.test", NULL, NULL, 0 },
	{ "mixed suffix is not a name", L_MIXED, "x.hop2.test", NULL, NULL, 0 },
	{ "mixed literal inside", L_MIXED, "[10.1.2.3]", NULL, NULL, 1 },
	{ "mixed bare literal inside", L_MIXED, "10.1.2.3", NULL, NULL, 1 },
	{ "mixed literal outside", L_MIXED, "[192.168.1.1]", NULL, NULL, 0 },
	{ "mixed v6 literal listed", L_MIXED, "[2001:db8::5]", NULL, NULL, 1 },
	{ "mixed v6 literal other", L_MIXED, "[2001:db8::6]", NULL, NULL, 0 },
	{ "mixed address inside", L_MIXED, "hop2.test", "10.9.9.9", NULL, 1 },
	{ "mixed name resolving outside", L_MIXED, "hop2.test", "192.168.0.9",
	    NULL, 0 },
	{ "mixed mapped address inside", L_MIXED, "hop2.test",
	    "::ffff:10.0.0.1", NULL, 1 },
	{ "mixed list beats via", L_MIXED, "hop2.test", "10.0.0.1", "8.8.4.4",
	    1 },
	/* mtqp_chain_hosts = hop2.test */
	{ "names listed", L_NAMES, "hop2.test", NULL, NULL, 1 },
	{ "names other", L_NAMES, "hop3.test", NULL, NULL, 0 },
	{ "names any address of a listed name", L_NAMES, "hop2.test",
	    "192.168.0.9", NULL, 1 },
	{ "names no literal", L_NAMES, "[10.0.0.1]", NULL, NULL, 0 },
	{ "names no bare literal", L_NAMES, "127.0.0.1", NULL, NULL, 0 },
	/* mtqp_chain_hosts = 127.0.0.0/8, [::1] */
	{ "nets any name", L_NETS, "whatever.test", NULL, NULL, 1 },
	{ "nets address inside", L_NETS, "whatever.test", "127.0.0.5", NULL,
	    1 },
	{ "nets address outside", L_NETS, "whatever.test", "10.0.0.1", NULL,
	    0 },
	{ "nets v6 listed", L_NETS, "whatever.test", "::1", NULL, 1 },
	{ "nets v6 other", L_NETS, "whatever.test", "::2", NULL, 0 },
	/* none: an outside server names only outside hops */
	{ "default any name", L_NONE, "x.test", NULL, "8.8.4.4", 1 },
	{ "default own record inside", L_NONE, "x.test", "10.0.0.1", NULL, 1 },
	{ "default inside names inside", L_NONE, "x.test", "10.0.0.1",
	    "127.0.0.1", 1 },
	{ "default inside names outside", L_NONE, "x.test", "1.1.1.1",
	    "192.168.1.1", 1 },
	{ "default outside names outside", L_NONE, "x.test", "1.1.1.1",
	    "8.8.4.4", 1 },
	{ "default outside names rfc1918", L_NONE, "x.test", "10.0.0.1",
	    "8.8.4.4", 0 },
	{ "default outside names loopback", L_NONE, "x.test", "127.0.0.1",
	    "8.8.4.4", 0 },
	{ "default outside names cgnat", L_NONE, "x.test", "100.64.0.1",
	    "8.8.4.4", 0 },
	{ "default outside names link-local", L_NONE, "x.test", "169.254.1.1",
	    "8.8.4.4", 0 },
	{ "default outside names v6 loopback", L_NONE, "x.test", "::1",
	    "8.8.4.4", 0 },
	{ "default outside names ula", L_NONE, "x.test", "fd00::1",
	    "2001:4860::1", 0 },
	{ "default outside names fe80", L_NONE, "x.test", "fe80::1",
	    "2001:4860::1", 0 },
	{ "default outside names mapped", L_NONE, "x.test", "::ffff:10.0.0.1",
	    "8.8.4.4", 0 },
	{ "default outside names nat64 inside", L_NONE, "x.test",
	    "64:ff9b::a00:1", "8.8.4.4", 0 },
	{ "default outside names v6 global", L_NONE, "x.test", "2001:4860::8",
	    "8.8.4.4", 1 },
	{ "default outside literal inside", L_NONE, "[10.0.0.1]", NULL,
	    "8.8.4.4", 0 },
	{ "default outside literal outside", L_NONE, "[1.1.1.1]", NULL,
	    "8.8.4.4", 1 },
	{ "default mapped via inside", L_NONE, "x.test", "10.0.0.1",
	    "::ffff:127.0.0.1", 1 },
};

static const char *
allow_name(const void *row)
{
	return ((const struct allow_case *)row)->name;
}

static void
add_net(struct conf *c, const char *addr, int prefix)
{
	struct conf_net *n = &c->mtqp_chain_nets[c->n_mtqp_chain_nets++];

	n->family = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(n->family, addr, n->addr), 1);
	n->prefix = prefix;
}

static void
test_allow(void **state)
{
	const struct allow_case *t = *state;
	static char *names[] = { "hop2.test" };
	struct conf c;
	struct sockaddr_storage sa, via;
	const char *why = NULL;
	int r;

	memset(&c, 0, sizeof(c));
	if (t->list != L_NONE)
		c.mtqp_chain_hosts_set = 1;
	if (t->list == L_MIXED || t->list == L_NAMES) {
		c.mtqp_chain_names = names;
		c.n_mtqp_chain_names = 1;
	}
	if (t->list == L_MIXED) {
		add_net(&c, "10.0.0.0", 8);
		add_net(&c, "2001:db8::5", 128);
	}
	if (t->list == L_NETS) {
		add_net(&c, "127.0.0.0", 8);
		add_net(&c, "::1", 128);
	}
	if (t->sa != NULL)
		sa = sa_of(t->sa);
	if (t->via != NULL)
		via = sa_of(t->via);
	r = mtqp_server_chain_allowed(&c, t->host,
	    t->sa != NULL ? (struct sockaddr *)&sa : NULL,
	    t->via != NULL ? (struct sockaddr *)&via : NULL, &why);
	assert_int_equal(r, t->want);
	if (r == 0)
		assert_string_equal(why,
		    t->list == L_NONE ? "outside-to-internal"
		                      : "mtqp_chain_hosts");
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
		cmocka_unit_test(test_rate_sequence),
		cmocka_unit_test(test_rate_flood),
		cmocka_unit_test(test_rate_table_full),
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
	    "mtqp_server_rate_key", test_rate_key, key_cases, key_name);
	failed += TABLE_RUN(
	    "trail_parse_server", test_server, server_cases, server_name);
	failed += TABLE_RUN(
	    "mtqp_server_chain_allowed", test_allow, allow_cases, allow_name);
	failed += TABLE_RUN(
	    "trail_remote_host", test_remote, remote_cases, remote_name);
	failed += cmocka_run_group_tests_name("mtqp_answer", once, NULL, NULL);
	return failed;
}
