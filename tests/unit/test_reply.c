/*
 * test_reply: remote replies kept whole (reply_format over the real reply
 * parser, whole and split at every offset), told apart from msgtrkd's own
 * texts (reply_is_smtp), and cut back into Diagnostic-Code lines that the
 * DSN generator takes (reply_diag_lines, then dsn_generate).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/reply.h"
#include "msgtrk/buf.h"
#include "msgtrk/dsn.h"
#include "msgtrk/smtp_reply.h"
#include "msgtrk/str.h"
#include "table.h"

/* --- reply_format ---------------------------------------------------- */

struct format_case {
	const char *name;
	const char *wire; /* what the server sent */
	const char *want; /* every reply, each followed by "|" */
};

static const struct format_case format_cases[] = {
	{ "exim 550 5.1.1",
	    "550 5.1.1 <x@dest.test>: mailbox does not exist\r\n",
	    "550 5.1.1 <x@dest.test>: mailbox does not exist|" },
	{ "postfix user unknown",
	    "550 5.1.1 <n@dest.test>: Recipient address rejected: User "
	    "unknown in local recipient table\r\n",
	    "550 5.1.1 <n@dest.test>: Recipient address rejected: User "
	    "unknown in local recipient table|" },
	{ "no enhanced code", "550 <x>: nope\r\n", "550 <x>: nope|" },
	{ "multi-line",
	    "550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n",
	    "550-5.7.1 first 550-5.7.1 second 550 5.7.1 third|" },
	{ "multi-line no status", "550-first\r\n550 second\r\n",
	    "550-first 550 second|" },
	/* RFC 2034 §4: the code prefaces every line; a line without it is
	 * written with the reply's. */
	{ "multi-line status on first only",
	    "550-5.1.1 first\r\n550 second\r\n",
	    "550-5.1.1 first 550 5.1.1 second|" },
	{ "code alone", "250\r\n", "250|" },
	{ "code and space", "250 \r\n", "250|" },
	{ "code and status", "250 2.0.0\r\n", "250 2.0.0|" },
	{ "empty continuation", "250-\r\n250 Ok\r\n", "250- 250 Ok|" },
	{ "lmtp saved", "250 2.0.0 <a@dest.test> Saved\r\n",
	    "250 2.0.0 <a@dest.test> Saved|" },
	{ "354", "354 End data with <CR><LF>.<CR><LF>\r\n",
	    "354 End data with <CR><LF>.<CR><LF>|" },
	{ "bare LF", "451 4.3.0 try later\n", "451 4.3.0 try later|" },
	{ "8-bit and controls kept raw", "550 caf\xc3\xa9\x01\t!\r\n",
	    "550 caf\xc3\xa9\x01\t!|" },
	{ "pipelined replies", "250 2.1.0 Ok\r\n550 5.1.1 no\r\n354 go\r\n",
	    "250 2.1.0 Ok|550 5.1.1 no|354 go|" },
};

static const char *
format_name(const void *row)
{
	return ((const struct format_case *)row)->name;
}

static void
feed_format(const void *ctx, const char *in, size_t n, const size_t *cuts,
    size_t ncuts, struct buf *out)
{
	struct smtp_reply_parser *p = smtp_reply_parser_new(0);
	const struct smtp_reply_msg *r;
	char text[REPLY_TEXT_MAX + 1];
	size_t i, from = 0, to;

	(void)ctx;
	assert_non_null(p);
	buf_clear(out);
	for (i = 0; i <= ncuts; i++) {
		to = i < ncuts ? cuts[i] : n;
		assert_int_equal(smtp_reply_push(p, in + from, to - from), 0);
		from = to;
		while (smtp_reply_next(p, &r, NULL) == 1) {
			size_t len = reply_format(r, text, sizeof(text));

			assert_int_equal(len, strlen(text));
			buf_add(out, text, len);
			buf_addc(out, '|');
		}
	}
	smtp_reply_parser_free(p);
}

static void
test_format(void **state)
{
	const struct format_case *c = *state;

	table_check_splits(feed_format, c, c->wire, strlen(c->wire), c->want);
}

/* A reply longer than REPLY_TEXT_MAX is cut there; a small buffer cuts
 * earlier; lines of 2000 octets (the parser's limit) are fine. */
static void
test_format_limits(void **state)
{
	struct smtp_reply_parser *p = smtp_reply_parser_new(0);
	const struct smtp_reply_msg *r;
	char *wire, text[REPLY_TEXT_MAX + 50], small[8];
	size_t n = 0, i;

	(void)state;
	assert_non_null(p);
	wire = malloc(3 * 2100);
	assert_non_null(wire);
	for (i = 0; i < 3; i++) {
		n +=
		    (size_t)sprintf(wire + n, "550%c5.1.1 ", i < 2 ? '-' : ' ');
		memset(wire + n, 'a' + (int)i, 1500);
		n += 1500;
		memcpy(wire + n, "\r\n", 2);
		n += 2;
	}
	assert_int_equal(smtp_reply_push(p, wire, n), 0);
	assert_int_equal(smtp_reply_next(p, &r, NULL), 1);
	assert_int_equal(r->nlines, 3);
	assert_int_equal(reply_format(r, text, sizeof(text)), REPLY_TEXT_MAX);
	assert_int_equal(strlen(text), REPLY_TEXT_MAX);
	assert_memory_equal(text, "550-5.1.1 aaa", 13);
	assert_int_equal(reply_format(r, small, sizeof(small)), 7);
	assert_string_equal(small, "550-5.1");
	assert_int_equal(reply_format(r, small, 1), 0);
	assert_string_equal(small, "");
	assert_int_equal(reply_format(r, small, 0), 0);
	smtp_reply_parser_free(p);
	free(wire);
}

/* --- reply_is_smtp ---------------------------------------------------- */

struct smtp_case {
	const char *in;
	int want;
};

static const struct smtp_case smtp_cases[] = {
	{ "550 5.1.1 <x>: mailbox does not exist", 1 },
	{ "550-5.7.1 a 550 5.7.1 b", 1 },
	{ "250", 1 },
	{ "421 4.4.2 bye", 1 },
	{ "599 x", 1 },
	{ "200 x", 1 },
	{ "No such local recipient", 0 },
	{ "[127.0.0.1]: connection refused", 0 },
	{ "mx.dest.test: timeout", 0 },
	{ "TLS required and not available", 0 },
	{ "8-bit message and the next hop has no 8BITMIME (RFC 6152 §3)", 0 },
	{ "600 x", 0 },
	{ "199 x", 0 },
	{ "55 x", 0 },
	{ "5505 x", 0 },
	{ "550x", 0 },
	{ "", 0 },
};

static const char *
smtp_name(const void *row)
{
	return ((const struct smtp_case *)row)->in;
}

static void
test_is_smtp(void **state)
{
	const struct smtp_case *c = *state;

	assert_int_equal(reply_is_smtp(c->in), c->want);
}

/* --- reply_diag_lines -------------------------------------------------- */

struct diag_case {
	const char *name;
	const char *in;
	size_t lines;
	const char *want; /* NULL: checked by its properties only */
};

#define X10 "xxxxxxxxx "
#define X100 X10 X10 X10 X10 X10 X10 X10 X10 X10 X10
#define Y100 \
	"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy" \
	"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"

static const struct diag_case diag_cases[] = {
	{ "one line", "550 5.1.1 <x@dest.test>: mailbox does not exist", 1,
	    "550 5.1.1 <x@dest.test>: mailbox does not exist" },
	{ "three lines", "550-5.7.1 first 550-5.7.1 second 550 5.7.1 third", 3,
	    "550-5.7.1 first\n550-5.7.1 second\n550 5.7.1 third" },
	{ "code in the last line's text",
	    "550-5.7.1 first 550 5.7.1 see 550 here", 2,
	    "550-5.7.1 first\n550 5.7.1 see 550 here" },
	{ "code in a single line's text", "550 5.1.1 a 550-b", 1,
	    "550 5.1.1 a 550-b" },
	{ "other code is text", "550-a 450 b 550 c", 2, "550-a 450 b\n550 c" },
	{ "local text", "No such local recipient", 1,
	    "No such local recipient" },
	{ "local text with a code inside", "x 550-y 550 z", 1,
	    "x 550-y 550 z" },
	{ "blanks", "  550 a  ", 1, "550 a" },
	{ "empty", "", 0, "" },
	{ "blank", "   ", 0, "" },
	/* 1000 octets with a SPACE every 10: broken within 510. */
	{ "long with spaces",
	    "550 " X100 X100 X100 X100 X100 X100 X100 X100 X100
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	    2, NULL },
	{ "long without spaces",
	    "550-" Y100 Y100 Y100 Y100 Y100 Y100 Y100 Y100 Y100 Y100 " 550 end",
	    3, NULL },
	{ "17 lines",
	    "250-a 250-b 250-c 250-d 250-e 250-f 250-g 250-h 250-i "
	    "250-j 250-k 250-l 250-m 250-n 250-o 250-p 250 q",
	    DSN_DIAG_LINES_MAX,
	    "250-a\n250-b\n250-c\n250-d\n250-e\n250-f\n250-g\n250-h\n250-i\n"
	    "250-j\n250-k\n250-l\n250-m\n250-n\n250-o\n250-p" },
	{ "escaped", "550 caf\\xc3\\xa9", 1, "550 caf\\xc3\\xa9" },
};

static const char *
diag_name(const void *row)
{
	return ((const struct diag_case *)row)->name;
}

static void
test_diag(void **state)
{
	const struct diag_case *c = *state;
	size_t outsize = strlen(c->in) + DSN_DIAG_LINES_MAX + 1;
	char *out = malloc(outsize), *joined = malloc(outsize), *line, *sp;
	struct dsn_rcpt r;
	struct dsn d;
	struct buf b;
	size_t n = 0;

	assert_non_null(out);
	assert_non_null(joined);
	assert_int_equal(reply_diag_lines(c->in, out, outsize), c->lines);
	if (c->want != NULL)
		assert_string_equal(out, c->want);
	/* Every line non-empty, without edge blanks, within the limit;
	 * joined by a SPACE the lines give the text back (RFC 3461 §9.2)
	 * unless a line had to be cut or lines were dropped. */
	joined[0] = '\0';
	for (line = strtok_r(out, "\n", &sp); line != NULL;
	     line = strtok_r(NULL, "\n", &sp)) {
		assert_true(strlen(line) > 0);
		assert_true(strlen(line) <= DSN_DIAG_LINE_MAX);
		assert_true(line[0] != ' ' && line[strlen(line) - 1] != ' ');
		if (n++ > 0)
			strcat(joined, " ");
		strcat(joined, line);
	}
	assert_int_equal(n, c->lines);
	if (c->lines > 0 && c->lines < DSN_DIAG_LINES_MAX &&
	    strstr(c->name, "without spaces") == NULL) {
		const char *s = c->in;
		size_t len = strlen(s);

		while (*s == ' ')
			s++, len--;
		while (len > 0 && s[len - 1] == ' ')
			len--;
		assert_int_equal(strlen(joined), len);
		assert_memory_equal(joined, s, len);
	}
	/* ... and the DSN generator takes them. */
	if (c->lines > 0) {
		reply_diag_lines(c->in, out, outsize);
		memset(&r, 0, sizeof(r));
		r.final_rcpt = "x@dest.test";
		r.action = TSTATUS_ACTION_FAILED;
		r.status = "5.1.1";
		r.remote_mta = "[127.0.0.1]";
		r.diagnostic = out;
		memset(&d, 0, sizeof(d));
		d.sender = "a@src.test";
		d.date.t = 1700000000;
		d.message_id = "<dsn@mx.test>";
		d.reporting_mta = "mx.test";
		d.rcpt = &r;
		d.nrcpt = 1;
		d.boundary = "=_b";
		buf_init(&b, 1 << 20);
		if (dsn_generate(&d, &b, NULL) == -1)
			fail_msg("dsn_generate refused the lines");
		buf_reset(&b);
	}
	free(out);
	free(joined);
}

/* A buffer too small for the next line stops before it. */
static void
test_diag_small(void **state)
{
	char out[12];

	(void)state;
	assert_int_equal(
	    reply_diag_lines("550-a 550-bbbbbbbbbb 550 c", out, sizeof(out)),
	    1);
	assert_string_equal(out, "550-a");
	assert_int_equal(reply_diag_lines("550 a", out, 0), 0);
}

int
main(void)
{
	const struct CMUnitTest once[] = {
		cmocka_unit_test(test_format_limits),
		cmocka_unit_test(test_diag_small),
	};
	int failed = 0;

	failed +=
	    TABLE_RUN("reply_format", test_format, format_cases, format_name);
	failed +=
	    TABLE_RUN("reply_is_smtp", test_is_smtp, smtp_cases, smtp_name);
	failed +=
	    TABLE_RUN("reply_diag_lines", test_diag, diag_cases, diag_name);
	failed += cmocka_run_group_tests_name("reply", once, NULL, NULL);
	return failed;
}
