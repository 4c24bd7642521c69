/*
 * test_mtqp_session: one MTQP session's protocol (src/mtqp/mtqp_proto.c)
 * driven without sockets: lines are pushed in, the answers collected from
 * the send op, the store is a table of records built here (the lookup
 * op), the rate limit and STARTTLS are ops the test answers.
 *
 * Each row of sessions[] is a transcript: the greeting and every answer,
 * then "|state" and "|close=reason" when the session ended.  It is fed
 * whole, one byte at a time and split everywhere (table_check_splits):
 * the transcript must not depend on how the input arrived.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/conf.h"
#include "msgtrk/buf.h"
#include "msgtrk/mtqp.h"
#include "msgtrk/str.h"
#include "mtqp/mtqp_proto.h"
#include "store/store.h"
#include "table.h"

#define S "AAECAwQFBgcICQoLDA0ODxAR" /* the secret that opens ENVID */
#define BOGUS "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define ENVID "QQ314159@client.example.org"

#define GREET "+OK/MTQP mx.test MTQP server ready\r\n"
#define GREET_TLS "+OK+/MTQP mx.test MTQP server ready\r\nSTARTTLS\r\n.\r\n"
#define GREET_TLS_REQ \
	"+OK+/MTQP mx.test MTQP server ready\r\nSTARTTLS required\r\n.\r\n"
#define NOINFO "-ERR/noinfo no information about this message\r\n"
#define BAD_VERB "-BAD unrecognized command\r\n"

static SSL_CTX *tls_ctx; /* a certificate for mx.test */

/* What the ops saw. */
struct io {
	struct buf out;
	const char *closed;
	int busy;
	int starttls;
	int lookups;
	int fails;
	/* behaviour */
	int send_fails;
	int store_failed;
	int store_error;
	long fail_wait;
	int starttls_rc;
	/* the lookup completes later (mtqp_proto_looked_up by the test) */
	int defer;
	int deferred; /* a lookup waits */
	struct mtqp_proto *proto;
	uint64_t results[MTQP_TRACK_RESULTS]; /* /metrics counters */
};

static int
io_send(void *arg, const struct buf *b)
{
	struct io *io = arg;

	if (io->send_fails)
		return -1;
	assert_int_equal(buf_add(&io->out, b->data, b->len), 0);
	return 0;
}

static void
io_close(void *arg, const char *reason)
{
	struct io *io = arg;

	assert_null(io->closed); /* once */
	io->closed = reason;
}

static void
io_busy(void *arg, int busy)
{
	struct io *io = arg;

	io->busy = busy;
}

static int
io_starttls(void *arg)
{
	struct io *io = arg;

	io->starttls++;
	return io->starttls_rc;
}

static char *
dup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

/* The test store: one message for ENVID, opened by S, with one
 * delivered and one transferred recipient. */
static int
io_find(struct io *io, const char *envid, const char *secret,
    struct store_msg **all_out, size_t *nall_out, unsigned char **ok_out)
{
	struct store_msg *m;

	*all_out = NULL;
	*nall_out = 0;
	*ok_out = NULL;
	if (io->store_error)
		return -1;
	if (strcmp(envid, ENVID) != 0)
		return 0;
	m = calloc(1, sizeof(*m));
	assert_non_null(m);
	str_copy(m->qid, "Q1", sizeof(m->qid));
	m->envid = dup(ENVID);
	m->sender = dup("a@client.example.org");
	m->reporting_mta = dup("mx.test");
	m->arrival = 1700000000;
	m->nrcpt = 2;
	m->rcpts = calloc(2, sizeof(*m->rcpts));
	assert_non_null(m->rcpts);
	m->rcpts[0].orcpt = dup("rfc822;x@dest.test");
	m->rcpts[0].action = STORE_ACTION_DELIVERED;
	m->rcpts[0].last_attempt = 1700000005;
	m->rcpts[1].idx = 1;
	m->rcpts[1].orcpt = dup("rfc822;y@dest.test");
	m->rcpts[1].action = STORE_ACTION_TRANSFERRED;
	m->rcpts[1].remote_mta = dup("dns; hop2.test");
	m->rcpts[1].last_attempt = 1700000006;
	*all_out = m;
	*nall_out = 1;
	*ok_out = calloc(1, 1);
	assert_non_null(*ok_out);
	(*ok_out)[0] = strcmp(secret, S) == 0;
	return (*ok_out)[0];
}

/* ops->lookup: the answer at once (from inside the call, which the
 * contract allows), or later when io->defer is set. */
static int
io_lookup(void *arg, const char *envid, const char *secret)
{
	struct io *io = arg;
	struct store_msg *msgs;
	unsigned char *ok;
	size_t n;
	int kept;

	io->lookups++;
	if (io->defer) {
		io->deferred = 1;
		return 0;
	}
	kept = io_find(io, envid, secret, &msgs, &n, &ok);
	mtqp_proto_looked_up(io->proto, kept, msgs, n, ok);
	return 0;
}

static int
io_store_failed(void *arg)
{
	return ((struct io *)arg)->store_failed;
}

static long
io_fail(void *arg)
{
	struct io *io = arg;

	io->fails++;
	return io->fail_wait;
}

static const struct mtqp_proto_ops ops = {
	.send = io_send,
	.close = io_close,
	.busy = io_busy,
	.starttls = io_starttls,
	.lookup = io_lookup,
	.store_failed = io_store_failed,
	.fail = io_fail,
};

/* Session flavours. */
enum { NO_TLS = 0, TLS = 1, TLS_REQUIRED = 2 };

struct session_row {
	const char *name;
	int tls; /* NO_TLS, TLS, TLS_REQUIRED */
	int store; /* 1 store_failed, 2 store_error, 3 send fails */
	const char *in;
	const char *want;
};

static const struct session_row sessions[] = {
	{ "greeting", NO_TLS, 0, "", GREET "|ready" },
	{ "greeting with STARTTLS", TLS, 0, "", GREET_TLS "|ready" },
	{ "greeting with STARTTLS required", TLS_REQUIRED, 0, "",
	    GREET_TLS_REQ "|ready" },
	{ "unknown command", NO_TLS, 0, "FROB\r\n", GREET BAD_VERB "|ready" },
	{ "syntax error", NO_TLS, 0, "TRACK noat " S "\r\n",
	    GREET "-BAD invalid envelope id\r\n|ready" },
	{ "bare LF", NO_TLS, 0, "QUIT\n",
	    GREET "-BAD command not terminated by CRLF\r\n|ready" },
	{ "comment", NO_TLS, 0, "COMMENT hello there\r\n",
	    GREET "+OK comment noted\r\n|ready" },
	{ "quit", NO_TLS, 0, "QUIT\r\n",
	    GREET "+OK goodbye\r\n|closed|close=quit" },
	{ "nothing after quit", NO_TLS, 0, "QUIT\r\nCOMMENT late\r\n",
	    GREET "+OK goodbye\r\n|closed|close=quit" },
	{ "track unknown", NO_TLS, 0, "TRACK nobody@x.test " S "\r\n",
	    GREET NOINFO "|ready" },
	{ "track wrong secret", NO_TLS, 0, "TRACK " ENVID " " BOGUS "\r\n",
	    GREET NOINFO "|ready" },
	{ "track tls required", TLS_REQUIRED, 0, "TRACK " ENVID " " S "\r\n",
	    GREET_TLS_REQ "-ERR/tls-required issue STARTTLS first\r\n|ready" },
	{ "track store lagging", NO_TLS, 1, "TRACK " ENVID " " S "\r\n",
	    GREET "-TEMP/unavailable tracking store unavailable\r\n|ready" },
	{ "track store error", NO_TLS, 2, "TRACK " ENVID " " S "\r\n",
	    GREET "-TEMP/unavailable tracking store unavailable\r\n|ready" },
	{ "starttls without tls", NO_TLS, 0, "STARTTLS mx.test\r\n",
	    GREET "-ERR/unsupported TLS not available\r\n|ready" },
	{ "starttls bad fqdn", TLS, 0, "STARTTLS other.test\r\n",
	    GREET_TLS "-BAD/bad-fqdn name not in the certificate\r\n|ready" },
	{ "starttls bad domain syntax", TLS, 0, "STARTTLS nodots\r\n",
	    GREET_TLS "-BAD/bad-fqdn invalid domain name\r\n|ready" },
	{ "starttls", TLS, 0, "STARTTLS mx.test\r\n",
	    GREET_TLS "+OK begin TLS negotiation\r\n|tls" },
	{ "starttls trailing dot", TLS, 0, "STARTTLS mx.test.\r\n",
	    GREET_TLS "-BAD/bad-fqdn invalid domain name\r\n|ready" },
	/* P10: what is pipelined behind STARTTLS is never answered. */
	{ "starttls pipelined", TLS, 0,
	    "STARTTLS mx.test\r\nCOMMENT injected\r\nQUIT\r\n",
	    GREET_TLS "+OK begin TLS negotiation\r\n|tls" },
	{ "pipelined in order", NO_TLS, 0,
	    "COMMENT one\r\nFROB\r\nTRACK nobody@x.test " S "\r\nQUIT\r\n",
	    GREET "+OK comment noted\r\n" BAD_VERB NOINFO
	          "+OK goodbye\r\n|closed|close=quit" },
	{ "error limit", NO_TLS, 0,
	    "FROB\r\nFROB\r\nFROB\r\nFROB\r\nFROB\r\nFROB\r\nFROB\r\nFROB\r\n"
	    "FROB\r\nFROB\r\nCOMMENT late\r\n",
	    GREET BAD_VERB BAD_VERB BAD_VERB BAD_VERB BAD_VERB BAD_VERB BAD_VERB
	        BAD_VERB BAD_VERB BAD_VERB
	    "-ERR/unavailable too many errors\r\n|closed|close=errors" },
	{ "errors of every kind count", TLS_REQUIRED, 0,
	    "FROB\r\nTRACK a@b " S "\r\nSTARTTLS other.test\r\nFROB\r\n"
	    "FROB\r\nFROB\r\nFROB\r\nFROB\r\nFROB\r\nFROB\r\n",
	    GREET_TLS_REQ BAD_VERB
	    "-ERR/tls-required issue STARTTLS first\r\n"
	    "-BAD/bad-fqdn name not in the "
	    "certificate\r\n" BAD_VERB BAD_VERB BAD_VERB BAD_VERB BAD_VERB
	        BAD_VERB BAD_VERB
	    "-ERR/unavailable too many errors\r\n|closed|close=errors" },
	{ "output refused", NO_TLS, 3, "COMMENT x\r\n",
	    "|closed|close=output" },
};

static const char *
session_name(const void *row)
{
	return ((const struct session_row *)row)->name;
}

static struct conf *
test_conf(int tls)
{
	static struct conf c;

	memset(&c, 0, sizeof(c));
	str_copy(c.hostname, "mx.test", sizeof(c.hostname));
	c.mtqp_unknown = CONF_MTQP_NOINFO;
	c.mtqp_tls_required = tls == TLS_REQUIRED;
	return &c;
}

static struct mtqp_proto *
open_session(struct io *io, int tls)
{
	struct mtqp_proto_params p;
	struct mtqp_proto *s;

	memset(&p, 0, sizeof(p));
	p.conf = test_conf(tls);
	p.tls_server = tls != NO_TLS ? tls_ctx : NULL;
	p.id = 1;
	p.addr = "192.0.2.1";
	p.ops = &ops;
	p.io = io;
	p.results = io->results;
	assert_non_null(s = mtqp_proto_new(&p));
	io->proto = s;
	return s;
}

static const char *
state_name(enum mtqp_proto_state st)
{
	switch (st) {
	case MTQP_PROTO_READY:
		return "ready";
	case MTQP_PROTO_BUSY:
		return "busy";
	case MTQP_PROTO_TLS:
		return "tls";
	case MTQP_PROTO_CLOSED:
		return "closed";
	}
	return "?";
}

static void
feed(const void *ctx, const char *in, size_t len, const size_t *cuts,
    size_t ncuts, struct buf *out)
{
	const struct session_row *row = ctx;
	struct io io;
	struct mtqp_proto *s;
	size_t off = 0, i, end;

	memset(&io, 0, sizeof(io));
	buf_init(&io.out, 1024 * 1024);
	io.store_failed = row->store == 1;
	io.store_error = row->store == 2;
	io.send_fails = row->store == 3;
	s = open_session(&io, row->tls);
	(void)mtqp_proto_greet(s);
	for (i = 0; i <= ncuts; i++) {
		end = i < ncuts ? cuts[i] : len;
		if (end < off)
			end = off;
		if (mtqp_proto_state(s) == MTQP_PROTO_READY) {
			assert_int_equal(
			    mtqp_proto_push(s, in + off, end - off), 0);
			(void)mtqp_proto_run(s);
		}
		off = end;
	}
	buf_clear(out);
	buf_add(out, io.out.data, io.out.len);
	buf_addf(out, "|%s", state_name(mtqp_proto_state(s)));
	if (io.closed != NULL)
		buf_addf(out, "|close=%s", io.closed);
	assert_int_equal(io.starttls, mtqp_proto_state(s) == MTQP_PROTO_TLS);
	mtqp_proto_free(s);
	buf_reset(&io.out);
}

static void
test_session_row(void **state)
{
	const struct session_row *row = *state;

	table_check_splits(feed, row, row->in, strlen(row->in), row->want);
}

/* Helpers for the sequences below. */
static void
say(struct mtqp_proto *s, const char *line)
{
	assert_int_equal(mtqp_proto_push(s, line, strlen(line)), 0);
	(void)mtqp_proto_run(s);
}

static void
heard(struct io *io, const char *want)
{
	buf_addc(&io->out, '\0');
	assert_string_equal(io->out.data, want);
	buf_clear(&io->out);
}

/* TRACK found: one message/tracking-status part, both recipients. */
static void
test_track_found(void **state)
{
	struct io io;
	struct mtqp_proto *s;
	const char *d;

	(void)state;
	memset(&io, 0, sizeof(io));
	buf_init(&io.out, 1024 * 1024);
	s = open_session(&io, NO_TLS);
	say(s, "TRACK " ENVID " " S "\r\n");
	buf_addc(&io.out, '\0');
	d = io.out.data;
	assert_true(strncmp(d, "+OK+ tracking information\r\n", 27) == 0);
	assert_non_null(strstr(d, "Content-Type: multipart/related"));
	assert_non_null(strstr(d, "Original-Envelope-Id: " ENVID "\r\n"));
	assert_non_null(strstr(d, "Original-Recipient: rfc822; x@dest.test"));
	assert_non_null(strstr(d, "Action: delivered\r\n"));
	assert_non_null(strstr(d, "Action: transferred\r\n"));
	assert_non_null(strstr(d, "Remote-MTA: dns; hop2.test\r\n"));
	assert_true(strcmp(d + strlen(d) - 5, "\r\n.\r\n") == 0);
	assert_int_equal(io.fails, 0); /* a success is not limited */
	buf_clear(&io.out);
	/* The xtext spelling and the bracketed one find the same. */
	say(s, "TRACK QQ314159+40client.example.org " S "\r\n");
	buf_addc(&io.out, '\0');
	assert_true(strncmp(io.out.data, "+OK+", 4) == 0);
	buf_clear(&io.out);
	say(s, "TRACK <" ENVID "> " S "\r\n");
	buf_addc(&io.out, '\0');
	assert_true(strncmp(io.out.data, "+OK+", 4) == 0);
	assert_int_equal(io.lookups, 4); /* as sent, then unbracketed */
	assert_int_equal(mtqp_proto_state(s), MTQP_PROTO_READY);
	mtqp_proto_free(s);
	buf_reset(&io.out);
}

/* /metrics: every TRACK answer is counted by its result, as logged. */
static void
test_track_results(void **state)
{
	static const uint64_t want[MTQP_TRACK_RESULTS] = { 1, 2, 1, 1, 1, 2 };
	struct io io;
	struct mtqp_proto *s;
	int i;

	(void)state;
	memset(&io, 0, sizeof(io));
	buf_init(&io.out, 1024 * 1024);
	s = open_session(&io, NO_TLS);
	say(s, "TRACK " ENVID " " S "\r\n"); /* found */
	say(s, "TRACK " ENVID " " BOGUS "\r\n"); /* unknown */
	say(s, "TRACK other@client.example.org " S "\r\n"); /* unknown */
	say(s, "FROB\r\n"); /* bad-command */
	say(s, "TRACK\r\n"); /* bad-command */
	io.store_failed = 1;
	say(s, "TRACK " ENVID " " S "\r\n"); /* store-unavailable */
	io.store_failed = 0;
	io.store_error = 1;
	say(s, "TRACK " ENVID " " S "\r\n"); /* error */
	mtqp_proto_free(s);
	buf_clear(&io.out);
	s = open_session(&io, TLS_REQUIRED);
	say(s, "TRACK " ENVID " " S "\r\n"); /* tls-required */
	for (i = 0; i < MTQP_TRACK_RESULTS; i++)
		if (io.results[i] != want[i])
			fail_msg("%s: %llu, want %llu",
			    mtqp_track_result_name((enum mtqp_track_result)i),
			    (unsigned long long)io.results[i],
			    (unsigned long long)want[i]);
	assert_string_equal(mtqp_track_result_name(MTQP_TRACK_RESULTS), "?");
	mtqp_proto_free(s);
	buf_reset(&io.out);
}

/* The store is read off the loop: the session is busy, reads nothing, and
 * answers in order once the lookup completes; a lookup that times out is
 * -TEMP; a pipelined command waits behind it. */
static void
test_track_async(void **state)
{
	struct io io;
	struct mtqp_proto *s;
	struct store_msg *msgs;
	unsigned char *ok;
	size_t n;
	int kept;

	(void)state;
	memset(&io, 0, sizeof(io));
	buf_init(&io.out, 1024 * 1024);
	s = open_session(&io, NO_TLS);
	buf_clear(&io.out);
	io.defer = 1;
	say(s, "TRACK " ENVID " " S "\r\nCOMMENT behind\r\n");
	assert_int_equal(io.deferred, 1);
	assert_int_equal(mtqp_proto_state(s), MTQP_PROTO_BUSY);
	assert_int_equal(io.busy, 1);
	assert_int_equal(io.out.len, 0); /* nothing, not even the COMMENT */
	kept = io_find(&io, ENVID, S, &msgs, &n, &ok);
	mtqp_proto_looked_up(s, kept, msgs, n, ok);
	assert_int_equal(mtqp_proto_state(s), MTQP_PROTO_READY);
	(void)mtqp_proto_run(s);
	buf_addc(&io.out, '\0');
	assert_true(strncmp(io.out.data, "+OK+", 4) == 0);
	assert_non_null(strstr(io.out.data, "\r\n.\r\n+OK"));
	buf_clear(&io.out);
	/* a store that does not answer in time: -TEMP */
	io.deferred = 0;
	say(s, "TRACK " ENVID " " S "\r\n");
	assert_int_equal(io.deferred, 1);
	mtqp_proto_looked_up(s, MTQP_PROTO_LOOKUP_TIMEOUT, NULL, 0, NULL);
	buf_addc(&io.out, '\0');
	assert_string_equal(
	    io.out.data, "-TEMP/unavailable tracking store unavailable\r\n");
	assert_int_equal(mtqp_proto_state(s), MTQP_PROTO_READY);
	/* a late completion after the answer is ignored (and freed) */
	kept = io_find(&io, ENVID, S, &msgs, &n, &ok);
	mtqp_proto_looked_up(s, kept, msgs, n, ok);
	assert_int_equal(mtqp_proto_state(s), MTQP_PROTO_READY);
	mtqp_proto_free(s);
	buf_reset(&io.out);
}

/* mtqp_unknown = opaque: a positive answer, the same for unknown and
 * wrong secret. */
static void
test_track_opaque(void **state)
{
	struct io io;
	struct mtqp_proto *s;
	struct conf *c;

	(void)state;
	memset(&io, 0, sizeof(io));
	buf_init(&io.out, 1024 * 1024);
	s = open_session(&io, NO_TLS);
	c = test_conf(NO_TLS);
	c->mtqp_unknown = CONF_MTQP_OPAQUE;
	say(s, "TRACK " ENVID " " BOGUS "\r\n");
	buf_addc(&io.out, '\0');
	assert_true(strncmp(io.out.data, "+OK+", 4) == 0);
	assert_non_null(strstr(io.out.data, "Action: opaque"));
	assert_int_equal(io.fails, 1); /* a failure is limited */
	mtqp_proto_free(s);
	buf_reset(&io.out);
}

/* Over the failed-TRACK limit: the same bytes later; nothing behind the
 * TRACK is answered before it (RFC 3887 §8). */
static void
test_track_delayed(void **state)
{
	struct io io;
	struct mtqp_proto *s;

	(void)state;
	memset(&io, 0, sizeof(io));
	buf_init(&io.out, 1024 * 1024);
	s = open_session(&io, NO_TLS);
	io.fail_wait = 6000;
	say(s, "TRACK nobody@x.test " S "\r\nCOMMENT after\r\n");
	heard(&io, "");
	assert_int_equal(mtqp_proto_state(s), MTQP_PROTO_BUSY);
	assert_int_equal(io.busy, 1);
	/* Input keeps coming while busy: kept, not answered. */
	assert_int_equal(mtqp_proto_push(s, "QUIT\r\n", 6), 0);
	assert_int_equal(mtqp_proto_run(s), MTQP_PROTO_BUSY);
	heard(&io, "");
	mtqp_proto_wake(s);
	assert_int_equal(io.busy, 0);
	heard(&io, NOINFO);
	assert_int_equal(mtqp_proto_run(s), MTQP_PROTO_CLOSED);
	heard(&io, "+OK comment noted\r\n+OK goodbye\r\n");
	assert_string_equal(io.closed, "quit");
	/* A wake-up after the end changes nothing. */
	mtqp_proto_wake(s);
	heard(&io, "");
	mtqp_proto_free(s);
	buf_reset(&io.out);
}

/* After the handshake: a new greeting without STARTTLS, the error count
 * restarts, TRACK is allowed, STARTTLS again is -BAD/tls-in-progress. */
static void
test_tls_done(void **state)
{
	struct io io;
	struct mtqp_proto *s;
	int i;

	(void)state;
	memset(&io, 0, sizeof(io));
	buf_init(&io.out, 1024 * 1024);
	s = open_session(&io, TLS_REQUIRED);
	(void)mtqp_proto_greet(s);
	heard(&io, GREET_TLS_REQ);
	for (i = 0; i < MTQP_PROTO_ERRORS_MAX - 1; i++)
		say(s, "FROB\r\n");
	buf_clear(&io.out);
	say(s, "STARTTLS mx.test\r\nCOMMENT injected\r\n");
	heard(&io, "+OK begin TLS negotiation\r\n");
	assert_int_equal(io.starttls, 1);
	assert_int_equal(mtqp_proto_state(s), MTQP_PROTO_TLS);
	/* Nothing is read during the handshake. */
	mtqp_proto_tls_done(s);
	heard(&io, GREET);
	assert_int_equal(mtqp_proto_run(s), MTQP_PROTO_READY);
	heard(&io, ""); /* the injected COMMENT is gone */
	say(s, "STARTTLS mx.test\r\n");
	heard(&io, "-BAD/tls-in-progress TLS already active\r\n");
	say(s, "TRACK " ENVID " " S "\r\n");
	buf_addc(&io.out, '\0');
	assert_true(strncmp(io.out.data, "+OK+", 4) == 0);
	assert_int_equal(mtqp_proto_state(s), MTQP_PROTO_READY);
	assert_null(io.closed);
	mtqp_proto_free(s);
	buf_reset(&io.out);
}

/* TLS cannot start: closed. */
static void
test_tls_setup_fails(void **state)
{
	struct io io;
	struct mtqp_proto *s;

	(void)state;
	memset(&io, 0, sizeof(io));
	buf_init(&io.out, 1024 * 1024);
	io.starttls_rc = -1;
	s = open_session(&io, TLS);
	say(s, "STARTTLS mx.test\r\n");
	heard(&io, "+OK begin TLS negotiation\r\n");
	assert_int_equal(mtqp_proto_state(s), MTQP_PROTO_CLOSED);
	assert_string_equal(io.closed, "tls-setup");
	mtqp_proto_free(s);
	buf_reset(&io.out);
}

/* MTQP_PROTO_COMMANDS_MAX commands, then -ERR/unavailable and close. */
static void
test_commands_max(void **state)
{
	struct io io;
	struct mtqp_proto *s;
	char chunk[4096];
	size_t n = 0, sent = 0, i;
	const char *line = "COMMENT\r\n";

	(void)state;
	memset(&io, 0, sizeof(io));
	buf_init(&io.out, 4 * 1024 * 1024);
	s = open_session(&io, NO_TLS);
	for (i = 0; i + 9 <= sizeof(chunk); i += 9)
		memcpy(chunk + i, line, 9);
	while (sent <= MTQP_PROTO_COMMANDS_MAX &&
	    mtqp_proto_state(s) == MTQP_PROTO_READY) {
		n = i / 9;
		assert_int_equal(mtqp_proto_push(s, chunk, i), 0);
		(void)mtqp_proto_run(s);
		sent += n;
	}
	assert_int_equal(mtqp_proto_state(s), MTQP_PROTO_CLOSED);
	assert_string_equal(io.closed, "commands");
	buf_addc(&io.out, '\0');
	assert_true(strlen(io.out.data) ==
	    MTQP_PROTO_COMMANDS_MAX * strlen("+OK comment noted\r\n") +
	        strlen("-ERR/unavailable too many commands\r\n"));
	mtqp_proto_free(s);
	buf_reset(&io.out);
}

/* The push limit: never more than the room. */
static void
test_room(void **state)
{
	struct io io;
	struct mtqp_proto *s;
	static char big[MTQP_CMD_INPUT_MAX + 1];

	(void)state;
	memset(&io, 0, sizeof(io));
	buf_init(&io.out, 1024 * 1024);
	s = open_session(&io, NO_TLS);
	assert_int_equal(mtqp_proto_room(s), MTQP_CMD_INPUT_MAX);
	assert_int_equal(mtqp_proto_push(s, big, sizeof(big)), -1);
	assert_int_equal(mtqp_proto_push(s, "COMM", 4), 0);
	assert_int_equal(mtqp_proto_room(s), MTQP_CMD_INPUT_MAX - 4);
	mtqp_proto_free(s);
	mtqp_proto_free(NULL);
	buf_reset(&io.out);
}

/* A self-signed certificate for mx.test. */
static SSL_CTX *
make_tls(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n;
	X509_EXTENSION *ext;
	X509V3_CTX v3;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(k);
	assert_non_null(x);
	assert_non_null(ctx);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(
	    n, "CN", MBSTRING_ASC, (const unsigned char *)"mx.test", -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext =
	    X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:mx.test");
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, k), 1);
	X509_free(x);
	EVP_PKEY_free(k);
	return ctx;
}

static int
setup(void **state)
{
	(void)state;
	tls_ctx = make_tls();
	return tls_ctx == NULL ? -1 : 0;
}

int
main(void)
{
	const struct CMUnitTest once[] = {
		cmocka_unit_test(test_track_found),
		cmocka_unit_test(test_track_results),
		cmocka_unit_test(test_track_opaque),
		cmocka_unit_test(test_track_async),
		cmocka_unit_test(test_track_delayed),
		cmocka_unit_test(test_tls_done),
		cmocka_unit_test(test_tls_setup_fails),
		cmocka_unit_test(test_commands_max),
		cmocka_unit_test(test_room),
	};
	int failed = 0;

	(void)setup(NULL);
	failed +=
	    TABLE_RUN("session", test_session_row, sessions, session_name);
	failed += cmocka_run_group_tests_name("mtqp_session", once, NULL, NULL);
	SSL_CTX_free(tls_ctx);
	return failed;
}
