/*
 * test_smtp_reply: the client-side SMTP reply reader and EHLO parser.
 *
 * Every row is a byte stream as a server sends it.  What the parser hands
 * out becomes a transcript:
 *   R:<code> s=<status> n=<lines> t=<text>   a complete reply
 *   E:<error>                                 the (final) error
 *   P:<n>                                     octets still buffered
 * with CR, LF, backslash and non-printable octets escaped.  Each row is
 * fed whole, one octet at a time, split at every offset and (when short)
 * at every pair of offsets: the transcript must be the same every time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

#include "msgtrk/buf.h"
#include "msgtrk/smtp_reply.h"

#define S(s) s, sizeof(s) - 1

struct rep_row {
	const char *name;
	const char *in;
	size_t n;
	unsigned int flags;
	const char *want;
};

static void
esc(struct buf *t, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r')
			buf_adds(t, "\\r");
		else if (c == '\n')
			buf_adds(t, "\\n");
		else if (c == '\\')
			buf_adds(t, "\\\\");
		else if (c < 0x20 || c >= 0x7f)
			buf_addf(t, "\\x%02x", c);
		else
			buf_addc(t, c);
	}
}

/* Returns 1 once the parser failed. */
static int
drain(struct smtp_reply_parser *p, struct buf *t)
{
	const struct smtp_reply_msg *m;
	enum smtp_reply_error err, err2;
	struct buf joined;
	const char *l;
	size_t i, len;
	int rc;

	for (;;) {
		rc = smtp_reply_next(p, &m, &err);
		if (rc == 0) {
			assert_int_equal(err, SMTP_REPLY_OK);
			return 0;
		}
		if (rc == -1) {
			assert_int_not_equal(err, SMTP_REPLY_OK);
			buf_addf(t, "E:%s\n", smtp_reply_error_name(err));
			/* errors are final */
			assert_int_equal(smtp_reply_next(p, &m, &err2), -1);
			assert_int_equal(err2, err);
			return 1;
		}
		assert_true(m->code >= 200 && m->code <= 599);
		assert_true(
		    m->nlines >= 1 && m->nlines <= SMTP_REPLY_LINES_MAX);
		assert_int_equal(strlen(m->text), m->text_len);
		/* the lines, joined by LF, are the text */
		buf_init(&joined, SMTP_REPLY_TOTAL_MAX);
		for (i = 0; i < m->nlines; i++) {
			l = smtp_reply_line(m, i, &len);
			assert_non_null(l);
			if (i > 0)
				buf_addc(&joined, '\n');
			buf_add(&joined, l, len);
		}
		assert_null(smtp_reply_line(m, m->nlines, &len));
		assert_int_equal(joined.len, m->text_len);
		assert_memory_equal(buf_cstr(&joined), m->text, m->text_len);
		buf_reset(&joined);
		buf_addf(
		    t, "R:%d s=%s n=%zu t=", m->code, m->status, m->nlines);
		esc(t, m->text, m->text_len);
		buf_adds(t, "\n");
	}
}

static void
run(const void *ctx, const char *in, size_t n, const size_t *cuts, size_t ncuts,
    struct buf *t)
{
	const struct rep_row *row = ctx;
	struct smtp_reply_parser *p;
	size_t off = 0, i, end;
	int failed = 0;

	p = smtp_reply_parser_new(row->flags);
	assert_non_null(p);
	buf_clear(t);
	for (i = 0; i <= ncuts && !failed; i++) {
		end = i < ncuts ? cuts[i] : n;
		assert_int_equal(smtp_reply_push(p, in + off, end - off), 0);
		off = end;
		failed = drain(p, t);
	}
	if (!failed)
		buf_addf(t, "P:%zu\n", smtp_reply_pending(p));
	smtp_reply_parser_free(p);
}

static void
test_rep(void **state)
{
	const struct rep_row *row = *state;

	table_check_splits(run, row, row->in, row->n, row->want);
}

static const char *
rep_name(const void *p)
{
	return ((const struct rep_row *)p)->name;
}

#define STRICT SMTP_REPLY_STRICT_CRLF

static const struct rep_row rep_rows[] = {
	{ "empty", S(""), 0, "P:0\n" },
	{ "one", S("250 OK\r\n"), 0, "R:250 s= n=1 t=OK\nP:0\n" },
	{ "greeting", S("220 mx.example.org ESMTP ready\r\n"), 0,
	    "R:220 s= n=1 t=mx.example.org ESMTP ready\nP:0\n" },
	{ "rfc5321-multiline",
	    S("250-First line\r\n250-Second line\r\n250-234 Text beginning "
	      "with numbers\r\n250 The last line\r\n"),
	    0,
	    "R:250 s= n=4 t=First line\\nSecond line\\n234 Text beginning "
	    "with numbers\\nThe last line\nP:0\n" },
	{ "code-only", S("250\r\n"), 0, "R:250 s= n=1 t=\nP:0\n" },
	{ "code-sp", S("250 \r\n"), 0, "R:250 s= n=1 t=\nP:0\n" },
	{ "dash-empty", S("250-\r\n250\r\n"), 0, "R:250 s= n=2 t=\\n\nP:0\n" },
	{ "partial", S("250 O"), 0, "P:5\n" },
	{ "partial-second-line", S("250-a\r\n250 b"), 0, "P:5\n" },
	{ "partial-cr", S("250 OK\r"), 0, "P:7\n" },
	{ "pipelined", S("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 Go ahead\r\n"), 0,
	    "R:250 s=2.1.0 n=1 t=Ok\nR:250 s=2.1.5 n=1 t=Ok\nR:354 s= n=1 "
	    "t=Go ahead\nP:0\n" },
	{ "pipelined-partial", S("250 a\r\n250-b\r\n25"), 0,
	    "R:250 s= n=1 t=a\nP:2\n" },
	/* RFC 2034 enhanced status codes */
	{ "status", S("250 2.1.0 Sender ok\r\n"), 0,
	    "R:250 s=2.1.0 n=1 t=Sender ok\nP:0\n" },
	{ "status-only", S("550 5.1.1\r\n"), 0, "R:550 s=5.1.1 n=1 t=\nP:0\n" },
	{ "status-sp-only", S("550 5.1.1 \r\n"), 0,
	    "R:550 s=5.1.1 n=1 t=\nP:0\n" },
	{ "status-max", S("550 5.123.456 x\r\n"), 0,
	    "R:550 s=5.123.456 n=1 t=x\nP:0\n" },
	{ "status-4-digits", S("550 5.1234.1 x\r\n"), 0,
	    "R:550 s= n=1 t=5.1234.1 x\nP:0\n" },
	{ "status-detail-4-digits", S("550 5.1.1234 x\r\n"), 0,
	    "R:550 s= n=1 t=5.1.1234 x\nP:0\n" },
	{ "status-class-mismatch", S("550 2.1.0 x\r\n"), 0,
	    "R:550 s= n=1 t=2.1.0 x\nP:0\n" },
	{ "status-class-3", S("354 3.0.0 go\r\n"), 0,
	    "R:354 s= n=1 t=3.0.0 go\nP:0\n" },
	{ "status-no-sp", S("550 5.1.1x\r\n"), 0,
	    "R:550 s= n=1 t=5.1.1x\nP:0\n" },
	{ "status-missing-detail", S("550 5.1. x\r\n"), 0,
	    "R:550 s= n=1 t=5.1. x\nP:0\n" },
	{ "status-missing-subject", S("550 5..1 x\r\n"), 0,
	    "R:550 s= n=1 t=5..1 x\nP:0\n" },
	{ "status-two-sp", S("550 5.1.1  x\r\n"), 0,
	    "R:550 s=5.1.1 n=1 t= x\nP:0\n" },
	{ "status-multi",
	    S("550-5.1.1 The email account\r\n550-5.1.1 does "
	      "not exist.\r\n550 5.1.1 See help\r\n"),
	    0,
	    "R:550 s=5.1.1 n=3 t=The email account\\ndoes not exist.\\nSee "
	    "help\nP:0\n" },
	{ "status-multi-missing", S("250-2.0.0 a\r\n250 b\r\n"), 0,
	    "R:250 s=2.0.0 n=2 t=a\\nb\nP:0\n" },
	{ "status-multi-other", S("250-2.0.0 a\r\n250 2.1.5 b\r\n"), 0,
	    "R:250 s=2.0.0 n=2 t=a\\n2.1.5 b\nP:0\n" },
	{ "status-multi-prefix-only", S("250-2.0.0 a\r\n250 2.0.0x\r\n"), 0,
	    "R:250 s=2.0.0 n=2 t=a\\n2.0.0x\nP:0\n" },
	{ "status-multi-code-only", S("250-2.0.0 a\r\n250\r\n"), 0,
	    "R:250 s=2.0.0 n=2 t=a\\n\nP:0\n" },
	{ "status-only-on-second", S("250-a\r\n250 2.0.0 b\r\n"), 0,
	    "R:250 s= n=2 t=a\\n2.0.0 b\nP:0\n" },
	/* codes: first digit 2-5, any second and third (RFC 5321 §4.2) */
	{ "code-260", S("260 odd\r\n"), 0, "R:260 s= n=1 t=odd\nP:0\n" },
	{ "code-599", S("599 x\r\n"), 0, "R:599 s= n=1 t=x\nP:0\n" },
	{ "code-200", S("200 x\r\n"), 0, "R:200 s= n=1 t=x\nP:0\n" },
	{ "code-150", S("150 x\r\n"), 0, "E:code\n" },
	{ "code-650", S("650 x\r\n"), 0, "E:code\n" },
	{ "code-two-digits", S("25 x\r\n"), 0, "E:code\n" },
	{ "code-short-line", S("25\r\n"), 0, "E:code\n" },
	{ "code-letter", S("2a0 x\r\n"), 0, "E:code\n" },
	{ "code-empty-line", S("\r\n"), 0, "E:code\n" },
	{ "code-leading-sp", S(" 250 x\r\n"), 0, "E:code\n" },
	{ "code-after-good", S("250 a\r\nabc\r\n"), 0,
	    "R:250 s= n=1 t=a\nE:code\n" },
	{ "separator-letter", S("250x\r\n"), 0, "E:separator\n" },
	{ "separator-tab", S("250\tx\r\n"), 0, "E:separator\n" },
	{ "separator-four-digits", S("2500 x\r\n"), 0, "E:separator\n" },
	/* RFC 5321 §4.2.1: the same code on every line */
	{ "mismatch", S("250-a\r\n251 b\r\n"), 0, "E:mismatch\n" },
	{ "mismatch-class", S("250-a\r\n550 b\r\n"), 0, "E:mismatch\n" },
	{ "mismatch-after-two", S("250-a\r\n250-b\r\n251-c\r\n"), 0,
	    "E:mismatch\n" },
	/* octets */
	{ "nul", S("250 a\0b\r\n"), 0, "E:nul\n" },
	{ "nul-early", S("250 \0"), 0, "E:nul\n" },
	{ "nul-in-code", S("2\00050 x\r\n"), 0, "E:nul\n" },
	{ "8bit-kept", S("250 caf\xc3\xa9\r\n"), 0,
	    "R:250 s= n=1 t=caf\\xc3\\xa9\nP:0\n" },
	{ "ctrl-kept", S("250 a\tb\x01\x7f\r\n"), 0,
	    "R:250 s= n=1 t=a\\x09b\\x01\\x7f\nP:0\n" },
	/* line endings */
	{ "bare-cr", S("250 a\rb\r\n"), 0, "E:bare-cr\n" },
	{ "cr-cr-lf", S("250 a\r\r\n"), 0, "E:bare-cr\n" },
	{ "bare-lf-lenient", S("250 OK\n"), 0, "R:250 s= n=1 t=OK\nP:0\n" },
	{ "bare-lf-mixed", S("250-a\n250-b\r\n250 c\n"), 0,
	    "R:250 s= n=3 t=a\\nb\\nc\nP:0\n" },
	{ "bare-lf-strict", S("250 OK\n"), STRICT, "E:bare-lf\n" },
	{ "bare-lf-strict-second", S("250 OK\r\n250 x\n"), STRICT,
	    "R:250 s= n=1 t=OK\nE:bare-lf\n" },
	{ "crlf-strict", S("250 OK\r\n"), STRICT, "R:250 s= n=1 t=OK\nP:0\n" },
	{ "lf-only-line-lenient", S("\n"), 0, "E:code\n" },
	/* CVE-2011-0411: bytes behind the 220 to STARTTLS are visible */
	{ "starttls-injected", S("220 2.0.0 Ready\r\n250 injected\r\n"), 0,
	    "R:220 s=2.0.0 n=1 t=Ready\nR:250 s= n=1 t=injected\nP:0\n" },
};

/* Limits, at their edges, with inputs built at run time. */
static void
test_limits(void **state)
{
	static const struct rep_row row = { "limits", NULL, 0, 0, NULL };
	struct buf in, want;
	size_t i;

	(void)state;
	buf_init(&in, 1 << 20);
	buf_init(&want, 1 << 20);
	/* a line of exactly SMTP_REPLY_LINE_MAX with CRLF */
	buf_adds(&in, "250 ");
	for (i = 4; i < SMTP_REPLY_LINE_MAX - 2; i++)
		buf_addc(&in, 'x');
	buf_adds(&in, "\r\n");
	assert_int_equal(in.len, SMTP_REPLY_LINE_MAX);
	buf_addf(&want, "R:250 s= n=1 t=%.*s\nP:0\n", SMTP_REPLY_LINE_MAX - 6,
	    in.data + 4);
	table_check_splits(run, &row, in.data, in.len, buf_cstr(&want));
	/* one more octet */
	buf_truncate(&in, in.len - 2);
	buf_adds(&in, "y\r\n");
	table_check_splits(run, &row, in.data, in.len, "E:line-too-long\n");
	/* and without any line end: refused before it completes */
	buf_truncate(&in, in.len - 2);
	table_check_splits(run, &row, in.data, in.len, "E:line-too-long\n");
	/* the limit holds for bare-LF lines too */
	buf_truncate(&in, SMTP_REPLY_LINE_MAX - 2);
	buf_adds(&in, "\n");
	buf_clear(&want);
	buf_addf(&want, "R:250 s= n=1 t=%.*s\nP:0\n", SMTP_REPLY_LINE_MAX - 6,
	    in.data + 4);
	table_check_splits(run, &row, in.data, in.len, buf_cstr(&want));
	buf_truncate(&in, in.len - 1);
	buf_adds(&in, "z\n");
	table_check_splits(run, &row, in.data, in.len, "E:line-too-long\n");

	/* SMTP_REPLY_LINES_MAX lines: accepted; one more: refused */
	buf_clear(&in);
	buf_clear(&want);
	buf_adds(&want, "R:250 s= n=100 t=");
	for (i = 0; i < SMTP_REPLY_LINES_MAX; i++) {
		buf_addf(&in, "250%c%zu\r\n",
		    i + 1 < SMTP_REPLY_LINES_MAX ? '-' : ' ', i);
		buf_addf(&want, "%s%zu", i > 0 ? "\\n" : "", i);
	}
	buf_adds(&want, "\nP:0\n");
	table_check_splits(run, &row, in.data, in.len, buf_cstr(&want));
	buf_clear(&in);
	for (i = 0; i < SMTP_REPLY_LINES_MAX; i++)
		buf_addf(&in, "250-%zu\r\n", i);
	table_check_splits(run, &row, in.data, in.len, "E:too-many-lines\n");

	/* SMTP_REPLY_TOTAL_MAX octets in all: 32 lines of 2048 */
	buf_clear(&in);
	for (i = 0; i < 32; i++) {
		size_t k;

		buf_adds(&in, i < 31 ? "250-" : "250 ");
		for (k = 4; k < SMTP_REPLY_LINE_MAX - 2; k++)
			buf_addc(&in, 'a');
		buf_adds(&in, "\r\n");
	}
	assert_int_equal(in.len, SMTP_REPLY_TOTAL_MAX);
	{
		struct smtp_reply_parser *p = smtp_reply_parser_new(0);
		const struct smtp_reply_msg *m;

		assert_non_null(p);
		assert_int_equal(smtp_reply_push(p, in.data, in.len), 0);
		assert_int_equal(smtp_reply_next(p, &m, NULL), 1);
		assert_int_equal(m->nlines, 32);
		assert_int_equal(
		    m->text_len, 32 * (SMTP_REPLY_LINE_MAX - 6) + 31);
		smtp_reply_parser_free(p);
	}
	/* a 33rd line: over the total at its first octet */
	in.data[31 * SMTP_REPLY_LINE_MAX + 3] = '-';
	buf_adds(&in, "250 x\r\n");
	{
		struct smtp_reply_parser *p = smtp_reply_parser_new(0);
		const struct smtp_reply_msg *m;
		enum smtp_reply_error err;

		assert_non_null(p);
		assert_int_equal(smtp_reply_push(p, in.data, 32768), 0);
		assert_int_equal(smtp_reply_next(p, &m, NULL), 0);
		assert_int_equal(
		    smtp_reply_push(p, in.data + 32768, in.len - 32768), 0);
		assert_int_equal(smtp_reply_next(p, &m, &err), -1);
		assert_int_equal(err, SMTP_REPLY_ERR_TOO_BIG);
		smtp_reply_parser_free(p);
	}
	buf_reset(&in);
	buf_reset(&want);
}

static void
test_api(void **state)
{
	struct smtp_reply_parser *p;
	const struct smtp_reply_msg *m;
	enum smtp_reply_error err;
	char *big;

	(void)state;
	smtp_reply_parser_free(NULL);
	p = smtp_reply_parser_new(0);
	assert_non_null(p);
	assert_int_equal(smtp_reply_room(p), SMTP_REPLY_INPUT_MAX);
	big = calloc(1, SMTP_REPLY_INPUT_MAX + 1);
	assert_non_null(big);
	assert_int_equal(smtp_reply_push(p, big, SMTP_REPLY_INPUT_MAX + 1), -1);
	assert_int_equal(smtp_reply_pending(p), 0);
	/* an error is final until cleared */
	assert_int_equal(smtp_reply_push(p, "abc\r\n", 5), 0);
	assert_int_equal(smtp_reply_next(p, &m, &err), -1);
	assert_int_equal(err, SMTP_REPLY_ERR_CODE);
	assert_int_equal(smtp_reply_push(p, "250 ok\r\n", 8), 0);
	assert_int_equal(smtp_reply_next(p, &m, NULL), -1);
	smtp_reply_parser_clear(p);
	assert_int_equal(smtp_reply_pending(p), 0);
	assert_int_equal(smtp_reply_push(p, "250 ok\r\n221 bye\r\n", 17), 0);
	assert_int_equal(smtp_reply_next(p, &m, &err), 1);
	assert_int_equal(m->code, 250);
	/* STARTTLS check: the 221 is still buffered */
	assert_int_equal(smtp_reply_pending(p), 9);
	assert_int_equal(smtp_reply_next(p, &m, &err), 1);
	assert_int_equal(m->code, 221);
	assert_int_equal(smtp_reply_pending(p), 0);
	assert_int_equal(smtp_reply_next(p, &m, &err), 0);
	assert_string_equal(
	    smtp_reply_error_name(SMTP_REPLY_ERR_COUNT), "unknown");
	assert_string_equal(
	    smtp_reply_error_name(SMTP_REPLY_ERR_NOMEM), "nomem");
	free(big);
	smtp_reply_parser_free(p);
}

/* EHLO responses (RFC 5321 §4.1.1.1). */
struct ehlo_row {
	const char *name;
	const char *in;
	int rc;
	const char *domain;
	unsigned int ext;
	uint64_t size;
	size_t nbad;
	const char *kws; /* "KW[params];" for each keyword line */
};

static const struct ehlo_row ehlo_rows[] = {
	{ "ours",
	    "250-mx.example.org Hello client\r\n250-PIPELINING\r\n250-SIZE "
	    "52428800\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n"
	    "250-MTRK\r\n250 STARTTLS\r\n",
	    0, "mx.example.org",
	    SMTP_EHLO_PIPELINING | SMTP_EHLO_SIZE | SMTP_EHLO_8BITMIME |
	        SMTP_EHLO_ENHANCEDSTATUSCODES | SMTP_EHLO_DSN | SMTP_EHLO_MTRK |
	        SMTP_EHLO_STARTTLS,
	    52428800, 0,
	    "PIPELINING[];SIZE[52428800];8BITMIME[];ENHANCEDSTATUSCODES[];"
	    "DSN[];MTRK[];STARTTLS[];" },
	{ "single-line", "250 mx.example.org\r\n", 0, "mx.example.org", 0, 0, 0,
	    "" },
	{ "single-line-greet", "250 mx.example.org at your service\r\n", 0,
	    "mx.example.org", 0, 0, 0, "" },
	{ "case-insensitive",
	    "250-x\r\n250-pipelining\r\n250-Size 1000\r\n"
	    "250 starttls\r\n",
	    0, "x", SMTP_EHLO_PIPELINING | SMTP_EHLO_SIZE | SMTP_EHLO_STARTTLS,
	    1000, 0, "pipelining[];Size[1000];starttls[];" },
	{ "unknown-kept",
	    "250-x\r\n250-AUTH PLAIN LOGIN\r\n250-X-FOO a b\r\n"
	    "250-CHUNKING\r\n250 SMTPUTF8\r\n",
	    0, "x", 0, 0, 0,
	    "AUTH[PLAIN LOGIN];X-FOO[a b];CHUNKING[];SMTPUTF8[];" },
	{ "bad-keywords",
	    "250-x\r\n250-AUTH=LOGIN\r\n250--X\r\n250-\r\n"
	    "250- DSN\r\n250 DSN\r\n",
	    0, "x", SMTP_EHLO_DSN, 0, 4, "DSN[];" },
	{ "size-none", "250-x\r\n250 SIZE\r\n", 0, "x", SMTP_EHLO_SIZE, 0, 0,
	    "SIZE[];" },
	{ "size-zero", "250-x\r\n250 SIZE 0\r\n", 0, "x", SMTP_EHLO_SIZE, 0, 0,
	    "SIZE[0];" },
	{ "size-bad", "250-x\r\n250 SIZE 10M\r\n", 0, "x", SMTP_EHLO_SIZE, 0, 0,
	    "SIZE[10M];" },
	{ "size-20-digits-saturated",
	    "250-x\r\n250 SIZE 99999999999999999999\r\n", 0, "x",
	    SMTP_EHLO_SIZE, UINT64_MAX, 0, "SIZE[99999999999999999999];" },
	{ "size-max", "250-x\r\n250 SIZE 18446744073709551615\r\n", 0, "x",
	    SMTP_EHLO_SIZE, UINT64_MAX, 0, "SIZE[18446744073709551615];" },
	{ "size-21-digits", "250-x\r\n250 SIZE 000000000000000000001\r\n", 0,
	    "x", SMTP_EHLO_SIZE, 0, 0, "SIZE[000000000000000000001];" },
	{ "size-first-wins", "250-x\r\n250-SIZE 10\r\n250 SIZE 20\r\n", 0, "x",
	    SMTP_EHLO_SIZE, 10, 0, "SIZE[10];SIZE[20];" },
	{ "mtrk-with-param", "250-x\r\n250 MTRK future\r\n", 0, "x",
	    SMTP_EHLO_MTRK, 0, 0, "MTRK[future];" },
	{ "not-prefix", "250-x\r\n250-SIZEX\r\n250 DSNS\r\n", 0, "x", 0, 0, 0,
	    "SIZEX[];DSNS[];" },
	{ "lhlo",
	    "250-lmtp.example.org\r\n250-PIPELINING\r\n250 "
	    "ENHANCEDSTATUSCODES\r\n",
	    0, "lmtp.example.org",
	    SMTP_EHLO_PIPELINING | SMTP_EHLO_ENHANCEDSTATUSCODES, 0, 0,
	    "PIPELINING[];ENHANCEDSTATUSCODES[];" },
	{ "refused", "502 5.5.1 EHLO not supported\r\n", -1, "", 0, 0, 0, "" },
	{ "not-250", "251 x\r\n", -1, "", 0, 0, 0, "" },
};

static void
test_ehlo(void **state)
{
	const struct ehlo_row *row = *state;
	struct smtp_reply_parser *p;
	const struct smtp_reply_msg *m;
	static struct smtp_reply_ehlo e;
	const struct smtp_reply_ehlo_kw *kw;
	struct buf kws;
	size_t i;

	p = smtp_reply_parser_new(0);
	assert_non_null(p);
	assert_int_equal(smtp_reply_push(p, row->in, strlen(row->in)), 0);
	assert_int_equal(smtp_reply_next(p, &m, NULL), 1);
	assert_int_equal(smtp_reply_ehlo(m, &e), row->rc);
	assert_int_equal(e.domain_len, strlen(row->domain));
	if (e.domain_len > 0)
		assert_memory_equal(e.domain, row->domain, e.domain_len);
	assert_int_equal(e.ext, row->ext);
	assert_true(e.size == row->size);
	assert_int_equal(e.nbad, row->nbad);
	buf_init(&kws, 1 << 16);
	for (i = 0; i < e.nkw; i++) {
		buf_add(&kws, e.kw[i].keyword, e.kw[i].keyword_len);
		buf_addc(&kws, '[');
		buf_add(&kws, e.kw[i].params, e.kw[i].params_len);
		buf_adds(&kws, "];");
	}
	assert_string_equal(buf_cstr(&kws), row->kws);
	buf_reset(&kws);
	/* lookups ignore case and find the first */
	for (i = 0; i < e.nkw; i++) {
		char name[64];
		size_t k;

		assert_true(e.kw[i].keyword_len < sizeof(name));
		for (k = 0; k < e.kw[i].keyword_len; k++) {
			char c = e.kw[i].keyword[k];

			name[k] =
			    (char)(k % 2 ? (c >= 'a' && c <= 'z' ? c - 32 : c)
			                 : (c >= 'A' && c <= 'Z' ? c + 32 : c));
		}
		name[k] = '\0';
		kw = smtp_reply_ehlo_find(&e, name);
		assert_non_null(kw);
		assert_true(kw <= &e.kw[i]);
		assert_int_equal(kw->keyword_len, e.kw[i].keyword_len);
	}
	assert_null(smtp_reply_ehlo_find(&e, "NO-SUCH-KEYWORD"));
	assert_null(smtp_reply_ehlo_find(&e, ""));
	smtp_reply_parser_free(p);
}

static const char *
ehlo_name(const void *p)
{
	return ((const struct ehlo_row *)p)->name;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_api),
	};
	int fails = 0;

	fails += TABLE_RUN("reply", test_rep, rep_rows, rep_name);
	fails += TABLE_RUN("ehlo", test_ehlo, ehlo_rows, ehlo_name);
	fails += cmocka_run_group_tests_name("smtp_reply", tests, NULL, NULL);
	return fails;
}
