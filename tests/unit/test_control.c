/*
 * test_control: the control socket's line protocol (msgtrk/control.h):
 * requests and replies parsed from tables, each row fed whole, one byte
 * at a time and split at every position (table_check_splits), and the
 * emitters, whose every line must parse back to what was emitted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/buf.h"
#include "msgtrk/control.h"
#include "table.h"

static const char *const errnames[] = {
	[CONTROL_E_NONE] = "E_NONE",
	[CONTROL_E_LINE_TOO_LONG] = "E_LINE_TOO_LONG",
	[CONTROL_E_NUL] = "E_NUL",
	[CONTROL_E_BYTE] = "E_BYTE",
	[CONTROL_E_EMPTY] = "E_EMPTY",
	[CONTROL_E_SYNTAX] = "E_SYNTAX",
	[CONTROL_E_VERB] = "E_VERB",
	[CONTROL_E_ARGS] = "E_ARGS",
	[CONTROL_E_QID] = "E_QID",
	[CONTROL_E_TEXT] = "E_TEXT",
	[CONTROL_E_INPUT_FULL] = "E_INPUT_FULL",
};

static void
render_req(struct buf *out, const struct control_req *req)
{
	size_t i;

	buf_adds(out, control_verb_name(req->verb));
	for (i = 0; i < req->nqid; i++)
		buf_addf(out, " %s", req->qid[i]);
}

static void
render_reply(struct buf *out, const struct control_reply *r)
{
	switch (r->kind) {
	case CONTROL_R_OK:
		buf_addf(out, "OK %s", r->qid);
		break;
	case CONTROL_R_ERROR:
		buf_addf(out, "ERROR %s [%s]", r->qid, r->text);
		break;
	case CONTROL_R_DONE:
		buf_addf(out, "DONE %lu %lu [%s]", r->nok, r->nfail, r->text);
		break;
	case CONTROL_R_BAD:
		buf_addf(out, "BAD [%s]", r->text);
		break;
	default:
		fail_msg("bad reply kind");
	}
}

/* Feeds the len bytes at in, cut at the ncuts offsets, and renders every
 * result into out, "|"-separated; ctx non-NULL: as replies. */
static void
render(const void *ctx, const char *in, size_t len, const size_t *cuts,
    size_t ncuts, struct buf *out)
{
	struct control_parser *p = control_parser_new();
	struct control_req req;
	struct control_reply rep;
	size_t off = 0, i, end;
	int r;

	assert_non_null(p);
	buf_clear(out);
	for (i = 0; i <= ncuts; i++) {
		end = i < ncuts ? cuts[i] : len;
		if (end < off)
			end = off;
		assert_int_equal(control_push(p, in + off, end - off), 0);
		off = end;
		for (;;) {
			r = ctx != NULL ? control_next_reply(p, &rep)
			                : control_next_req(p, &req);
			if (r == 0)
				break;
			if (out->len > 0)
				buf_addc(out, '|');
			if (r == -1)
				buf_addf(out, "!%s",
				    errnames[control_parser_error(p)]);
			else if (ctx != NULL)
				render_reply(out, &rep);
			else
				render_req(out, &req);
		}
		assert_int_equal(control_parser_pending(p), 0);
	}
	control_parser_free(p);
}

struct row {
	const char *name;
	const char *in;
	size_t len; /* 0: strlen(in) */
	const char *want;
};

#define Q1 "008DnnSuN7skvIto"
#define Q2 "008DnnSuN7skvItp"
#define Q32 "abcdefghijklmnopqrstuvwxyz012345"

static const struct row req_rows[] = {
	{ "hold", "hold " Q1 "\n", 0, "hold " Q1 },
	{ "hold two", "hold " Q1 " " Q2 "\n", 0, "hold " Q1 " " Q2 },
	{ "hold crlf", "hold " Q1 "\r\n", 0, "hold " Q1 },
	{ "release", "release a\n", 0, "release a" },
	{ "delete", "delete Z9\n", 0, "delete Z9" },
	{ "flush all", "flush\n", 0, "flush" },
	{ "flush one", "flush " Q1 "\n", 0, "flush " Q1 },
	{ "reload", "reload\n", 0, "reload" },
	{ "reload crlf", "reload\r\n", 0, "reload" },
	{ "pipelined", "flush\nhold a\nreload\n", 0, "flush|hold a|reload" },
	{ "qid 32", "hold " Q32 "\n", 0, "hold " Q32 },
	{ "qid 33", "hold " Q32 "6\n", 0, "!E_QID" },
	{ "qid bang", "hold a!b\n", 0, "!E_QID" },
	{ "qid dot", "delete a.b\n", 0, "!E_QID" },
	{ "qid dash", "hold -a\n", 0, "!E_QID" },
	{ "second qid bad", "hold a b_c\n", 0, "!E_QID" },
	{ "hold none", "hold\n", 0, "!E_ARGS" },
	{ "release none", "release\n", 0, "!E_ARGS" },
	{ "delete none", "delete\n", 0, "!E_ARGS" },
	{ "reload arg", "reload a\n", 0, "!E_ARGS" },
	{ "upper verb", "HOLD a\n", 0, "!E_VERB" },
	{ "unknown verb", "purge a\n", 0, "!E_VERB" },
	{ "verb prefix", "hol a\n", 0, "!E_VERB" },
	{ "verb longer", "holds a\n", 0, "!E_VERB" },
	{ "leading space", " hold a\n", 0, "!E_SYNTAX" },
	{ "trailing space", "hold a \n", 0, "!E_SYNTAX" },
	{ "double space", "hold  a\n", 0, "!E_SYNTAX" },
	{ "space only", " \n", 0, "!E_SYNTAX" },
	{ "tab", "hold\ta\n", 0, "!E_BYTE" },
	{ "empty", "\n", 0, "!E_EMPTY" },
	{ "empty crlf", "\r\n", 0, "!E_EMPTY" },
	{ "bare cr inside", "hold\ra\n", 0, "!E_BYTE" },
	{ "two crs", "hold a\r\r\n", 0, "!E_BYTE" },
	{ "nul", "hold a\0b\n", 9, "!E_NUL" },
	{ "nul first fault", "\x01hold\0\n", 7, "!E_BYTE" },
	{ "8bit", "hold \xc3\xa9\n", 0, "!E_BYTE" },
	{ "del", "hold a\x7f\n", 0, "!E_BYTE" },
	{ "escape", "\x1b[2J\n", 0, "!E_BYTE" },
	{ "error then good", "hold\nflush\n", 0, "!E_ARGS|flush" },
	{ "no lf yet", "hold a", 0, "" },
	{ "line after partial", "hold a\nflu", 0, "hold a" },
};

/* 100 qids is the most; 101 is refused, as a flush or a hold. */
static char *
gen_qids(const char *verb, int n)
{
	struct buf b;
	int i;

	buf_init(&b, 1 << 20);
	buf_adds(&b, verb);
	for (i = 0; i < n; i++)
		buf_addf(&b, " Q%d", i);
	buf_addc(&b, '\n');
	return buf_release(&b);
}

static const char *
row_name(const void *row)
{
	return ((const struct row *)row)->name;
}

static void
test_req_row(void **state)
{
	const struct row *row = *state;

	table_check_splits(render, NULL, row->in,
	    row->len ? row->len : strlen(row->in), row->want);
}

static const struct row reply_rows[] = {
	{ "ok", "ok " Q1 "\n", 0, "OK " Q1 },
	{ "ok crlf", "ok " Q1 "\r\n", 0, "OK " Q1 },
	{ "error", "error " Q1 " no such message\n", 0,
	    "ERROR " Q1 " [no such message]" },
	{ "error spaces kept", "error a  two  spaces \n", 0,
	    "ERROR a [ two  spaces ]" },
	{ "done", "done 1 1\n", 0, "DONE 1 1 []" },
	{ "done zero", "done 0 0\n", 0, "DONE 0 0 []" },
	{ "done max", "done 4294967295 4294967295\n", 0,
	    "DONE 4294967295 4294967295 []" },
	{ "done text", "done 0 1 /etc/aliases:3: bad line\n", 0,
	    "DONE 0 1 [/etc/aliases:3: bad line]" },
	{ "bad", "bad permission denied\n", 0, "BAD [permission denied]" },
	{ "answer", "ok a\nerror b busy\ndone 1 1\n", 0,
	    "OK a|ERROR b [busy]|DONE 1 1 []" },
	{ "ok no qid", "ok\n", 0, "!E_QID" },
	{ "ok two words", "ok a b\n", 0, "!E_ARGS" },
	{ "ok trailing space", "ok a \n", 0, "!E_ARGS" },
	{ "ok bad qid", "ok a.b\n", 0, "!E_QID" },
	{ "error no text", "error a\n", 0, "!E_TEXT" },
	{ "error empty text", "error a \n", 0, "!E_TEXT" },
	{ "error no qid", "error\n", 0, "!E_QID" },
	{ "done one count", "done 1\n", 0, "!E_SYNTAX" },
	{ "done no counts", "done\n", 0, "!E_SYNTAX" },
	{ "done over 32 bits", "done 4294967296 0\n", 0, "!E_SYNTAX" },
	{ "done 11 digits", "done 00000000001 0\n", 0, "!E_SYNTAX" },
	{ "done sign", "done -1 0\n", 0, "!E_SYNTAX" },
	{ "done empty text", "done 1 0 \n", 0, "!E_TEXT" },
	{ "bad no text", "bad\n", 0, "!E_TEXT" },
	{ "bad empty text", "bad \n", 0, "!E_TEXT" },
	{ "unknown kind", "OK a\n", 0, "!E_VERB" },
	{ "leading space", " ok a\n", 0, "!E_SYNTAX" },
	{ "empty", "\n", 0, "!E_EMPTY" },
	{ "8bit text", "bad caf\xc3\xa9\n", 0, "!E_BYTE" },
	{ "nul", "bad a\0\n", 7, "!E_NUL" },
};

static void
test_reply_row(void **state)
{
	const struct row *row = *state;

	table_check_splits(render, "", row->in,
	    row->len ? row->len : strlen(row->in), row->want);
}

/* Lines at and past CONTROL_LINE_MAX, and requests at and past
 * CONTROL_QIDS_MAX: fed whole and byte by byte. */
struct long_row {
	const char *name;
	char *(*gen)(void);
	const char *want;
	int reply;
};

/* "hold " and qids to exactly n octets before the LF. */
static char *
gen_hold_len(size_t n, const char *tail)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	buf_adds(&b, "hold");
	while (b.len + 33 <= n)
		buf_adds(&b, " " Q32);
	if (b.len < n) {
		buf_addc(&b, ' ');
		while (b.len < n)
			buf_addc(&b, 'x');
	}
	buf_adds(&b, tail);
	return buf_release(&b);
}

static char *
gen_line_max(void)
{
	return gen_hold_len(CONTROL_LINE_MAX, "\n");
}

static char *
gen_line_max_crlf(void)
{
	/* The CR counts: one octet too many. */
	return gen_hold_len(CONTROL_LINE_MAX, "\r\nflush\n");
}

static char *
gen_line_over(void)
{
	return gen_hold_len(CONTROL_LINE_MAX + 1, "\nflush\n");
}

static char *
gen_line_far_over(void)
{
	return gen_hold_len(5 * CONTROL_LINE_MAX, "\nreload\n");
}

static char *
gen_line_no_end(void)
{
	return gen_hold_len(CONTROL_LINE_MAX + 10, "");
}

static char *
gen_hold100(void)
{
	return gen_qids("hold", CONTROL_QIDS_MAX);
}

static char *
gen_hold101(void)
{
	return gen_qids("hold", CONTROL_QIDS_MAX + 1);
}

static char *
gen_flush101(void)
{
	return gen_qids("flush", CONTROL_QIDS_MAX + 1);
}

static char *
gen_text_max(void)
{
	struct buf b;
	int i;

	buf_init(&b, 1 << 20);
	buf_adds(&b, "bad ");
	for (i = 0; i < CONTROL_TEXT_MAX; i++)
		buf_addc(&b, 't');
	buf_adds(&b, "\nbad x");
	for (i = 0; i < CONTROL_TEXT_MAX; i++)
		buf_addc(&b, 't');
	buf_adds(&b, "\n");
	return buf_release(&b);
}

static const struct long_row long_rows[] = {
	/* a line of exactly CONTROL_LINE_MAX octets is taken whole (124
	 * qids: too many for one request) */
	{ "line max", gen_line_max, "!E_ARGS", 0 },
	{ "line max plus cr", gen_line_max_crlf, "!E_LINE_TOO_LONG|flush", 0 },
	{ "line over", gen_line_over, "!E_LINE_TOO_LONG|flush", 0 },
	{ "line far over", gen_line_far_over, "!E_LINE_TOO_LONG|reload", 0 },
	{ "line over, no end yet", gen_line_no_end, "!E_LINE_TOO_LONG", 0 },
	{ "hold 100", gen_hold100, "hold 100", 0 },
	{ "hold 101", gen_hold101, "!E_ARGS", 0 },
	{ "flush 101", gen_flush101, "!E_ARGS", 0 },
	{ "reply text max", gen_text_max, "BAD 1000|!E_TEXT", 1 },
};

static const char *
long_name(const void *row)
{
	return ((const struct long_row *)row)->name;
}

/* Takes every complete line out of p into out. */
static void
render_short_drain(const void *ctx, struct control_parser *p, struct buf *out)
{
	struct control_req req;
	struct control_reply rep;
	int r;

	for (;;) {
		r = ctx != NULL ? control_next_reply(p, &rep)
		                : control_next_req(p, &req);
		if (r == 0)
			break;
		if (out->len > 0)
			buf_addc(out, '|');
		if (r == -1)
			buf_addf(out, "!%s", errnames[control_parser_error(p)]);
		else if (ctx != NULL)
			buf_addf(out, "BAD %zu", strlen(rep.text));
		else if (req.nqid > 1)
			buf_addf(out, "%s %zu", control_verb_name(req.verb),
			    req.nqid);
		else
			buf_adds(out, control_verb_name(req.verb));
	}
}

/* Renders verbs with a qid count ("hold 100") and the first word's
 * length for a long reply, so the rows stay short. */
static void
render_short(const void *ctx, const char *in, size_t len, const size_t *cuts,
    size_t ncuts, struct buf *out)
{
	struct control_parser *p = control_parser_new();
	size_t off = 0, i, end;

	assert_non_null(p);
	buf_clear(out);
	for (i = 0; i <= ncuts; i++) {
		end = i < ncuts ? cuts[i] : len;
		if (end < off)
			end = off;
		/* Pieces larger than the parser takes go in as it drains. */
		while (off < end) {
			size_t n = end - off;

			if (n > control_parser_room(p))
				n = control_parser_room(p);
			assert_int_equal(control_push(p, in + off, n), 0);
			off += n;
			render_short_drain(ctx, p, out);
		}
	}
	control_parser_free(p);
}

static void
test_long_row(void **state)
{
	const struct long_row *row = *state;
	char *in = row->gen();
	size_t len = strlen(in);
	struct buf out;
	size_t *cuts, i;

	/* Whole, byte by byte and at a few splits (every split of 4 KiB
	 * lines would take long for nothing more). */
	buf_init(&out, 1 << 20);
	cuts = calloc(len + 1, sizeof(*cuts));
	assert_non_null(cuts);
	render_short(row->reply ? "" : NULL, in, len, NULL, 0, &out);
	assert_string_equal(buf_cstr(&out), row->want);
	for (i = 0; i + 1 < len; i++)
		cuts[i] = i + 1;
	render_short(
	    row->reply ? "" : NULL, in, len, cuts, len ? len - 1 : 0, &out);
	assert_string_equal(buf_cstr(&out), row->want);
	for (i = 0; i < len; i += 97) {
		cuts[0] = i;
		render_short(row->reply ? "" : NULL, in, len, cuts, 1, &out);
		assert_string_equal(buf_cstr(&out), row->want);
	}
	free(cuts);
	buf_reset(&out);
	free(in);
}

/* The over-long line is reported at its CONTROL_LINE_MAX + 1st octet,
 * before its end arrives, and the rest of it is skipped. */
static void
test_long_early(void **state)
{
	struct control_parser *p = control_parser_new();
	struct control_req req;
	char line[CONTROL_LINE_MAX];

	(void)state;
	memset(line, 'a', sizeof(line));
	assert_int_equal(control_push(p, line, sizeof(line)), 0);
	assert_int_equal(control_next_req(p, &req), 0);
	assert_int_equal(control_push(p, "a", 1), 0);
	assert_int_equal(control_next_req(p, &req), -1);
	assert_int_equal(control_parser_error(p), CONTROL_E_LINE_TOO_LONG);
	assert_int_equal(control_push(p, line, sizeof(line)), 0);
	assert_int_equal(control_next_req(p, &req), 0);
	assert_int_equal(control_push(p, "\nreload\n", 8), 0);
	assert_int_equal(control_next_req(p, &req), 1);
	assert_int_equal(req.verb, CONTROL_RELOAD);
	assert_int_equal(control_parser_error(p), CONTROL_E_NONE);
	control_parser_free(p);
	control_parser_free(NULL);
}

static void
test_input_full(void **state)
{
	struct control_parser *p = control_parser_new();
	struct control_req req;
	char *big = malloc(CONTROL_INPUT_MAX + 1);
	size_t i, n = 0;
	int r;

	(void)state;
	for (i = 0; i + 7 <= CONTROL_INPUT_MAX; i += 7)
		memcpy(big + i, "reload\n", 7);
	assert_int_equal(control_parser_room(p), CONTROL_INPUT_MAX);
	assert_int_equal(control_push(p, big, i), 0);
	assert_int_equal(control_parser_room(p), CONTROL_INPUT_MAX - i);
	assert_int_equal(control_push(p, big, CONTROL_INPUT_MAX - i + 1), -1);
	assert_int_equal(control_parser_error(p), CONTROL_E_INPUT_FULL);
	assert_int_equal(control_parser_pending(p), i);
	while ((r = control_next_req(p, &req)) == 1)
		n++;
	assert_int_equal(r, 0);
	assert_int_equal(n, i / 7);
	assert_int_equal(control_parser_room(p), CONTROL_INPUT_MAX);
	free(big);
	control_parser_free(p);
}

/* Emitters: each line parses back to what was emitted. */
static void
test_emit(void **state)
{
	const char *qids[CONTROL_QIDS_MAX + 1];
	struct control_parser *p = control_parser_new();
	struct control_req req;
	struct control_reply rep;
	struct buf b;
	char long_text[3 * CONTROL_TEXT_MAX];
	size_t i;

	(void)state;
	buf_init(&b, 1 << 20);
	for (i = 0; i <= CONTROL_QIDS_MAX; i++)
		qids[i] = i % 2 ? Q1 : Q32;
	assert_int_equal(
	    control_req_format(&b, CONTROL_HOLD, qids, CONTROL_QIDS_MAX), 0);
	assert_true(b.len <= CONTROL_LINE_MAX + 1);
	assert_int_equal(control_push(p, b.data, b.len), 0);
	assert_int_equal(control_next_req(p, &req), 1);
	assert_int_equal(req.verb, CONTROL_HOLD);
	assert_int_equal(req.nqid, CONTROL_QIDS_MAX);
	assert_string_equal(req.qid[99], Q1);
	buf_clear(&b);
	/* What the grammar does not allow is not emitted. */
	assert_int_equal(
	    control_req_format(&b, CONTROL_HOLD, qids, CONTROL_QIDS_MAX + 1),
	    -1);
	assert_int_equal(control_req_format(&b, CONTROL_HOLD, qids, 0), -1);
	assert_int_equal(control_req_format(&b, CONTROL_RELOAD, qids, 1), -1);
	assert_int_equal(control_req_format(&b, CONTROL_NONE, NULL, 0), -1);
	qids[0] = "a b";
	assert_int_equal(control_req_format(&b, CONTROL_FLUSH, qids, 1), -1);
	qids[0] = "";
	assert_int_equal(control_req_format(&b, CONTROL_FLUSH, qids, 1), -1);
	assert_int_equal(b.len, 0);
	assert_int_equal(control_req_format(&b, CONTROL_FLUSH, NULL, 0), 0);
	assert_int_equal(control_req_format(&b, CONTROL_RELOAD, NULL, 0), 0);
	assert_string_equal(buf_cstr(&b), "flush\nreload\n");
	buf_clear(&b);
	assert_int_equal(control_reply_ok(&b, Q1), 0);
	assert_int_equal(control_reply_error(&b, Q2, "no such message"), 0);
	assert_int_equal(control_reply_error(&b, Q2, ""), 0);
	assert_int_equal(control_reply_done(&b, 1, 2, NULL), 0);
	assert_int_equal(control_reply_done(&b, 0, 1, "a\nb\\c\xff"), 0);
	assert_int_equal(control_reply_bad(&b, NULL), 0);
	assert_string_equal(buf_cstr(&b),
	    "ok " Q1 "\n"
	    "error " Q2 " no such message\n"
	    "error " Q2 " -\n"
	    "done 1 2\n"
	    "done 0 1 a\\x0ab\\x5cc\\xff\n"
	    "bad -\n");
	assert_int_equal(control_reply_ok(&b, "a.b"), -1);
	assert_int_equal(control_reply_ok(&b, NULL), -1);
	assert_int_equal(control_reply_error(&b, "", "x"), -1);
	assert_int_equal(control_reply_done(&b, 4294967296UL, 0, NULL), -1);
	assert_int_equal(control_push(p, b.data, b.len), 0);
	assert_int_equal(control_next_reply(p, &rep), 1);
	assert_int_equal(rep.kind, CONTROL_R_OK);
	assert_int_equal(control_next_reply(p, &rep), 1);
	assert_int_equal(rep.kind, CONTROL_R_ERROR);
	assert_string_equal(rep.text, "no such message");
	assert_int_equal(control_next_reply(p, &rep), 1);
	assert_string_equal(rep.text, "-");
	assert_int_equal(control_next_reply(p, &rep), 1);
	assert_int_equal(rep.kind, CONTROL_R_DONE);
	assert_int_equal(rep.nfail, 2);
	assert_int_equal(control_next_reply(p, &rep), 1);
	assert_string_equal(rep.text, "a\\x0ab\\x5cc\\xff");
	assert_int_equal(control_next_reply(p, &rep), 1);
	assert_int_equal(rep.kind, CONTROL_R_BAD);
	assert_int_equal(control_next_reply(p, &rep), 0);
	/* A long text is cut at CONTROL_TEXT_MAX, never inside an escape,
	 * and still parses. */
	buf_clear(&b);
	memset(long_text, '\x01', sizeof(long_text) - 1);
	long_text[0] = 'a';
	long_text[sizeof(long_text) - 1] = '\0';
	assert_int_equal(control_reply_bad(&b, long_text), 0);
	assert_int_equal(b.len, 4 + 997 + 1);
	assert_int_equal(control_push(p, b.data, b.len), 0);
	assert_int_equal(control_next_reply(p, &rep), 1);
	assert_int_equal(strlen(rep.text), 997);
	buf_reset(&b);
	control_parser_free(p);
}

static void
test_names(void **state)
{
	int e;

	(void)state;
	for (e = CONTROL_E_NONE; e <= CONTROL_E_INPUT_FULL; e++)
		assert_non_null(control_strerror(e));
	assert_string_equal(
	    control_strerror((enum control_error)99), "unknown error");
	assert_int_equal(control_verb_find("hold"), CONTROL_HOLD);
	assert_int_equal(control_verb_find("reload"), CONTROL_RELOAD);
	assert_int_equal(control_verb_find("Hold"), CONTROL_NONE);
	assert_int_equal(control_verb_find(""), CONTROL_NONE);
	assert_int_equal(control_verb_find(NULL), CONTROL_NONE);
	assert_string_equal(control_verb_name(CONTROL_DELETE), "delete");
	assert_null(control_verb_name(CONTROL_NONE));
	assert_null(control_verb_name((enum control_verb)42));
	assert_int_equal(control_qid_check(Q32, 32), 0);
	assert_int_equal(control_qid_check(Q32 "x", 33), -1);
	assert_int_equal(control_qid_check("", 0), -1);
	assert_int_equal(control_qid_check(NULL, 1), -1);
}

int
main(void)
{
	const struct CMUnitTest misc[] = {
		cmocka_unit_test(test_long_early),
		cmocka_unit_test(test_input_full),
		cmocka_unit_test(test_emit),
		cmocka_unit_test(test_names),
	};
	int failed = 0;

	failed += TABLE_RUN("req", test_req_row, req_rows, row_name);
	failed += TABLE_RUN("reply", test_reply_row, reply_rows, row_name);
	failed += TABLE_RUN("long", test_long_row, long_rows, long_name);
	failed += cmocka_run_group_tests_name("misc", misc, NULL, NULL);
	return failed;
}
