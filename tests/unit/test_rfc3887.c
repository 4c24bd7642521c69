/*
 * test_rfc3887: the RFC 3887 §4.1 and §8.1 examples (fixed as
 * tests/golden/rfc3887/README says) through every codec a client and a
 * server use: the command parser and mtrk_verify on the client side of
 * each transcript; the response reader, the multipart/related splitter and
 * the tracking-status parser on the server side; then the answer is
 * generated again from what was parsed and must parse to the same thing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/buf.h"
#include "msgtrk/mtqp.h"
#include "msgtrk/mtrk.h"
#include "msgtrk/related.h"
#include "msgtrk/tstatus.h"
#include "table.h"

#define PARTS_MAX 8

/* What each answer must say: per part, the action of each recipient. */
struct example {
	const char *name;
	const char *certifier; /* what the TRACK secret must hash to */
	int nparts;
	const char *envid;
	const char *actions[PARTS_MAX]; /* per part: "delivered,failed" */
};

static const char cert1[] = "Mq+KYZwlZiIrsLoGidq8xIDDgdU";
static const char cert2[] = "o3wd5jmiLLYfMOr9UH30hnb5rGI";

static const struct example examples[] = {
	{ "ex06-track-delivered", cert1, 1, "12345-20010101@example.com",
	    { "delivered" } },
	{ "ex07-track-transferred", cert1, 1, "12345-20010101@example.com",
	    { "transferred" } },
	{ "ex08-track-delayed-dot-stuffed", cert1, 1,
	    "12345-20010101@example.com", { "delayed" } },
	{ "ex09-track-relayed-failed", cert1, 1, "12345-20010101@example.com",
	    { "relayed,failed" } },
	{ "ex10-track-firewall", cert1, 2, "12345-20010101@example.com",
	    { "transferred", "delivered" } },
	{ "ex11-track-firewall-combined", cert1, 1,
	    "12345-20010101@example.com", { "relayed,delivered" } },
	{ "ex12-track-firewall-hidden", cert1, 2, "12345-20010101@example.com",
	    { "relayed", "delivered" } },
	{ "ex14-pipelining-batch", cert1, 1, "tracking-id@example.com",
	    { "delivered" } },
};

static const char *
example_name(const void *row)
{
	return ((const struct example *)row)->name;
}

static char *
read_fixture(const char *name, const char *ext, size_t *len)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "rfc3887/%s.%s", name, ext);
	return golden_read(rel, len);
}

/* Joins the actions of a parsed body: "relayed,failed". */
static void
actions_of(const struct tstatus *t, char *out, size_t size)
{
	size_t i;

	out[0] = '\0';
	for (i = 0; i < t->nrcpt; i++) {
		if (i > 0)
			strncat(out, ",", size - strlen(out) - 1);
		strncat(out, tstatus_action_name(t->rcpt[i].action),
		    size - strlen(out) - 1);
	}
}

static void
check_part(const struct example *ex, int part, const char *body, size_t len)
{
	struct tstatus_parser *p = tstatus_parser_new(NULL), *q;
	const struct tstatus *t, *t2;
	enum tstatus_error err;
	char acts[256], acts2[256];
	struct buf again;

	assert_non_null(p);
	assert_int_equal(tstatus_parser_push(p, body, len), 0);
	if (tstatus_parser_end(p, &t) != 1)
		fail_msg("%s part %d: %s at line %zu", ex->name, part,
		    tstatus_strerror(tstatus_parser_error(p)),
		    tstatus_parser_line(p));
	assert_string_equal(t->envid, ex->envid);
	actions_of(t, acts, sizeof(acts));
	assert_string_equal(acts, ex->actions[part]);
	/* Generate what was parsed (our writer's form), parse it again. */
	buf_init(&again, 1 << 20);
	assert_int_equal(tstatus_generate(t, &again, &err), 0);
	q = tstatus_parser_new(NULL);
	assert_int_equal(tstatus_parser_push(q, again.data, again.len), 0);
	assert_int_equal(tstatus_parser_end(q, &t2), 1);
	assert_string_equal(t2->envid, t->envid);
	assert_int_equal(t2->nrcpt, t->nrcpt);
	actions_of(t2, acts2, sizeof(acts2));
	assert_string_equal(acts2, acts);
	tstatus_parser_free(q);
	buf_reset(&again);
	tstatus_parser_free(p);
}

static void
test_example(void **state)
{
	const struct example *ex = *state;
	struct mtqp_cmd_parser *cp = mtqp_cmd_parser_new();
	struct mtqp_resp_reader *rr = mtqp_resp_reader_new(NULL);
	struct related_part parts[PARTS_MAX];
	enum related_error rerr;
	struct mtqp_cmd cmd;
	struct mtqp_resp resp;
	size_t clen, slen, n;
	char *client = read_fixture(ex->name, "client", &clen);
	char *server = read_fixture(ex->name, "server", &slen);
	int i;

	/* The client's TRACK: the secret proves the right to ask. */
	assert_int_equal(mtqp_cmd_push(cp, client, clen), 0);
	assert_int_equal(mtqp_cmd_next(cp, &cmd), 1);
	assert_int_equal(cmd.verb, MTQP_CMD_TRACK);
	assert_string_equal(cmd.envid, ex->envid);
	assert_int_equal(
	    mtrk_verify(cmd.secret, strlen(cmd.secret), ex->certifier, NULL),
	    0);
	assert_int_equal(mtrk_verify(cmd.secret, strlen(cmd.secret),
	                     ex->certifier == cert1 ? cert2 : cert1, NULL),
	    -1);
	mtqp_cmd_clear(&cmd);

	/* The server's answer. */
	assert_int_equal(mtqp_resp_reader_push(rr, server, slen), 0);
	assert_int_equal(mtqp_resp_reader_next(rr, &resp), 1);
	assert_int_equal(resp.status, MTQP_OK_MULTI);
	assert_int_equal(related_split_entity(resp.body, resp.body_len, parts,
	                     PARTS_MAX, &n, &rerr),
	    0);
	assert_int_equal((int)n, ex->nparts);
	for (i = 0; i < (int)n; i++)
		check_part(ex, i, parts[i].body, parts[i].body_len);
	mtqp_resp_reader_free(rr);
	mtqp_cmd_parser_free(cp);
	free(client);
	free(server);
}

int
main(void)
{
	return TABLE_RUN("rfc3887", test_example, examples, example_name);
}
