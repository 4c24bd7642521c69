/*
 * test_mtqp_resp: MTQP response writer, reader and greeting parser
 * (RFC 3887 §2.3, §3).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/buf.h"
#include "msgtrk/mtqp.h"
#include "table.h"

static const char *const errnames[] = {
	[MTQP_RESP_E_NONE] = "E_NONE",
	[MTQP_RESP_E_LINE_TOO_LONG] = "E_LINE_TOO_LONG",
	[MTQP_RESP_E_BODY_TOO_LARGE] = "E_BODY_TOO_LARGE",
	[MTQP_RESP_E_NUL] = "E_NUL",
	[MTQP_RESP_E_BARE_CR] = "E_BARE_CR",
	[MTQP_RESP_E_BARE_LF] = "E_BARE_LF",
	[MTQP_RESP_E_STATUS] = "E_STATUS",
	[MTQP_RESP_E_REASON] = "E_REASON",
	[MTQP_RESP_E_TEXT] = "E_TEXT",
	[MTQP_RESP_E_INPUT_FULL] = "E_INPUT_FULL",
};

static const char *const statnames[] = {
	[MTQP_OK] = "+OK",
	[MTQP_OK_MULTI] = "+OK+",
	[MTQP_TEMP] = "-TEMP",
	[MTQP_ERR] = "-ERR",
	[MTQP_BAD] = "-BAD",
};

/*
 * Writer
 */

struct line_row {
	const char *name;
	enum mtqp_status status;
	const char *reasons;
	const char *text;
	const char *want; /* NULL: must fail with EINVAL */
};

static const struct line_row line_rows[] = {
	{ "ok", MTQP_OK, NULL, NULL, "+OK\r\n" },
	{ "ok text", MTQP_OK, "", "fine", "+OK fine\r\n" },
	{ "ok multi", MTQP_OK_MULTI, NULL, "Tracking information follows",
	    "+OK+ Tracking information follows\r\n" },
	{ "greeting line", MTQP_OK, "MTQP", "MTQP server ready",
	    "+OK/MTQP MTQP server ready\r\n" },
	{ "temp admin", MTQP_TEMP, "MTQP/admin",
	    "Service down for admin, call back later",
	    "-TEMP/MTQP/admin Service down for admin, call back later\r\n" },
	{ "err unavailable", MTQP_ERR, "MTQP/unavailable", "Service down",
	    "-ERR/MTQP/unavailable Service down\r\n" },
	{ "err noinfo", MTQP_ERR, "noinfo", NULL, "-ERR/noinfo\r\n" },
	{ "err insecure", MTQP_ERR, "insecure", "TLS too weak",
	    "-ERR/insecure TLS too weak\r\n" },
	{ "bad", MTQP_BAD, NULL, "unrecognized command",
	    "-BAD unrecognized command\r\n" },
	{ "bad tls-in-progress", MTQP_BAD, "tls-in-progress", NULL,
	    "-BAD/tls-in-progress\r\n" },
	{ "bad bad-fqdn", MTQP_BAD, "bad-fqdn", "x", "-BAD/bad-fqdn x\r\n" },
	{ "namechar underscore", MTQP_ERR, "a_b-9", NULL, "-ERR/a_b-9\r\n" },
	{ "text tab", MTQP_OK, NULL, "a\tb", "+OK a\tb\r\n" },
	{ "reason empty token", MTQP_ERR, "a//b", NULL, NULL },
	{ "reason leading slash", MTQP_ERR, "/a", NULL, NULL },
	{ "reason trailing slash", MTQP_ERR, "a/", NULL, NULL },
	{ "reason space", MTQP_ERR, "a b", NULL, NULL },
	{ "reason dot", MTQP_ERR, "a.b", NULL, NULL },
	{ "text crlf", MTQP_OK, NULL, "a\r\nb", NULL },
	{ "text 8bit", MTQP_OK, NULL, "caf\xc3\xa9", NULL },
	{ "bad status", (enum mtqp_status)0, NULL, NULL, NULL },
};

static const char *
line_name(const void *row)
{
	return ((const struct line_row *)row)->name;
}

static void
test_line_row(void **state)
{
	const struct line_row *row = *state;
	struct buf b;

	buf_init(&b, 4096);
	assert_int_equal(buf_adds(&b, "x"), 0);
	if (row->want == NULL) {
		errno = 0;
		assert_int_equal(
		    mtqp_resp_line(&b, row->status, row->reasons, row->text),
		    -1);
		assert_int_equal(errno, EINVAL);
		assert_string_equal(buf_cstr(&b), "x");
	} else {
		assert_int_equal(
		    mtqp_resp_line(&b, row->status, row->reasons, row->text),
		    0);
		assert_string_equal(buf_cstr(&b) + 1, row->want);
	}
	buf_reset(&b);
}

/* Status line length: 998 octets fit, 999 do not. */
static void
test_line_limit(void **state)
{
	char text[1000];
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	memset(text, 'a', sizeof(text));
	text[998 - 4] = '\0'; /* "+OK " + 994 = 998 */
	assert_int_equal(mtqp_resp_line(&b, MTQP_OK, NULL, text), 0);
	assert_int_equal(b.len, 1000);
	buf_clear(&b);
	text[998 - 4] = 'a';
	text[999 - 4] = '\0';
	assert_int_equal(mtqp_resp_line(&b, MTQP_OK, NULL, text), -1);
	assert_int_equal(b.len, 0);
	/* Buffer limit: ENOSPC, nothing left behind. */
	buf_reset(&b);
	buf_init(&b, 10);
	assert_int_equal(mtqp_resp_line(&b, MTQP_OK, "MTQP", "ready"), -1);
	assert_int_equal(b.len, 0);
	buf_reset(&b);
}

struct data_row {
	const char *name;
	const char *data;
	const char *want; /* NULL: EINVAL */
};

static const struct data_row data_rows[] = {
	{ "empty", "", ".\r\n" },
	{ "one line", "a\r\n", "a\r\n.\r\n" },
	{ "empty line", "\r\n", "\r\n.\r\n" },
	{ "dot line", ".\r\n", "..\r\n.\r\n" },
	{ "dot text", ".x\r\n", "..x\r\n.\r\n" },
	{ "double dot", "..\r\n", "...\r\n.\r\n" },
	{ "dot middle", "a\r\n.b\r\nc.\r\n", "a\r\n..b\r\nc.\r\n.\r\n" },
	{ "no final crlf", "a\r\nb", NULL },
	{ "bare lf", "a\nb\r\n", NULL },
	{ "bare cr", "a\rb\r\n", NULL },
	{ "leading lf", "\n", NULL },
};

static const char *
data_name(const void *row)
{
	return ((const struct data_row *)row)->name;
}

static void
test_data_row(void **state)
{
	const struct data_row *row = *state;
	struct buf b;
	int r;

	buf_init(&b, 4096);
	r = mtqp_resp_data(&b, row->data, strlen(row->data));
	if (row->want == NULL) {
		assert_int_equal(r, -1);
		assert_int_equal(b.len, 0);
	} else {
		assert_int_equal(r, 0);
		assert_string_equal(buf_cstr(&b), row->want);
	}
	buf_reset(&b);
}

static void
test_data_limits(void **state)
{
	char d[1002];
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	/* NUL in data */
	assert_int_equal(mtqp_resp_data(&b, "a\0\r\n", 4), -1);
	/* 998 octets: fine; with a leading dot 997 is the most. */
	memset(d, 'a', 998);
	memcpy(d + 998, "\r\n", 2);
	assert_int_equal(mtqp_resp_data(&b, d, 1000), 0);
	buf_clear(&b);
	d[0] = '.';
	assert_int_equal(mtqp_resp_data(&b, d, 1000), -1);
	assert_int_equal(mtqp_resp_data(&b, d + 1, 999), 0);
	buf_clear(&b);
	memset(d, 'a', 999);
	memcpy(d + 999, "\r\n", 2);
	assert_int_equal(mtqp_resp_data(&b, d, 1001), -1);
	assert_int_equal(b.len, 0);
	/* multi: a failing body leaves nothing */
	assert_int_equal(mtqp_resp_multi(&b, NULL, "x", "a", 1), -1);
	assert_int_equal(mtqp_resp_multi(&b, "a//", "x", "a\r\n", 3), -1);
	assert_int_equal(b.len, 0);
	buf_reset(&b);
}

/* Golden outputs for the writer. */
static void
test_golden(void **state)
{
	static const char *const opts[] = {
		"STARTTLS required",
		"vnd.com.example.extinfo",
	};
	static const char *const bad_opts[] = { " leading" };
	static const char *const bad_opts2[] = { "a\r\nb" };
	static const char body[] =
	    "Content-Type: multipart/related; boundary=\"b\";\r\n"
	    " type=\"message/tracking-status\"\r\n"
	    ".Dot-Stuffed-Header: as an example\r\n"
	    "\r\n"
	    "--b\r\n"
	    "Content-Type: message/tracking-status\r\n"
	    "\r\n"
	    "Original-Envelope-Id: a@b\r\n"
	    "\r\n"
	    "--b--\r\n";
	struct buf b;

	(void)state;
	buf_init(&b, 1 << 16);
	assert_int_equal(
	    mtqp_resp_greeting(&b, NULL, 0, "MTQP server ready"), 0);
	golden_check("mtqp/greeting-plain.txt", b.data, b.len);
	buf_clear(&b);
	assert_int_equal(
	    mtqp_resp_greeting(&b, opts, 2, "MTQP server ready"), 0);
	golden_check("mtqp/greeting-options.txt", b.data, b.len);
	buf_clear(&b);
	assert_int_equal(mtqp_resp_greeting(&b, bad_opts, 1, NULL), -1);
	assert_int_equal(mtqp_resp_greeting(&b, bad_opts2, 1, NULL), -1);
	assert_int_equal(b.len, 0);
	assert_int_equal(
	    mtqp_resp_multi(&b, NULL, "Tracking information follows", body,
	        sizeof(body) - 1),
	    0);
	golden_check("mtqp/track-multi.txt", b.data, b.len);
	buf_clear(&b);
	assert_int_equal(mtqp_resp_line(&b, MTQP_TEMP, "MTQP/admin",
	                     "Service down for admin, call back later"),
	    0);
	assert_int_equal(mtqp_resp_line(&b, MTQP_ERR, "noinfo", NULL), 0);
	assert_int_equal(
	    mtqp_resp_line(&b, MTQP_BAD, NULL, "unrecognized command"), 0);
	assert_int_equal(mtqp_resp_line(&b, MTQP_OK, NULL, "bye"), 0);
	golden_check("mtqp/single-lines.txt", b.data, b.len);
	buf_reset(&b);
}

/*
 * Reader
 */

/* Reads the len bytes at in, cut at the ncuts offsets, with the limits
 * ctx (NULL: defaults), and renders every response into out as
 * "STATUS[r1,r2](text){body}" with CRLF shown as "~", "!E_..." on error. */
static void
render(const void *ctx, const char *in, size_t len, const size_t *cuts,
    size_t ncuts, struct buf *out)
{
	struct mtqp_resp_reader *r = mtqp_resp_reader_new(ctx);
	struct mtqp_resp resp;
	size_t off = 0, end, c, i;
	int rc = 0;

	assert_non_null(r);
	buf_clear(out);
	for (c = 0; c <= ncuts && rc != -1; c++) {
		end = c < ncuts ? cuts[c] : len;
		if (end < off)
			end = off;
		assert_int_equal(
		    mtqp_resp_reader_push(r, in + off, end - off), 0);
		off = end;
		while ((rc = mtqp_resp_reader_next(r, &resp)) == 1) {
			buf_addf(out, "%s%s[", out->len ? "|" : "",
			    statnames[resp.status]);
			for (i = 0; i < resp.nreasons; i++)
				buf_addf(
				    out, "%s%s", i ? "," : "", resp.reasons[i]);
			buf_addf(out, "](%s)", resp.text);
			if (resp.status == MTQP_OK_MULTI) {
				buf_addc(out, '{');
				for (i = 0; i < resp.body_len; i++) {
					if (resp.body[i] == '\r' &&
					    resp.body[i + 1] == '\n') {
						buf_addc(out, '~');
						i++;
					} else
						buf_addc(out, resp.body[i]);
				}
				buf_addc(out, '}');
			} else
				assert_int_equal(resp.body_len, 0);
		}
		if (rc == -1) {
			buf_addf(out, "%s!%s", out->len ? "|" : "",
			    errnames[mtqp_resp_reader_error(r)]);
			/* Errors are final. */
			assert_int_equal(mtqp_resp_reader_next(r, &resp), -1);
		}
	}
	mtqp_resp_reader_free(r);
}

/* render() of the whole input at once, into out. */
static const char *
render_whole(const struct mtqp_resp_limits *lim, const char *in, size_t len,
    struct buf *out)
{
	render(lim, in, len, NULL, 0, out);
	return buf_cstr(out);
}

struct read_row {
	const char *name;
	const char *in;
	size_t len;
	const char *want;
};

static const struct read_row read_rows[] = {
	{ "ok", "+OK\r\n", 0, "+OK[]()" },
	{ "ok text", "+OK fine thanks\r\n", 0, "+OK[](fine thanks)" },
	{ "ok tab text", "+OK\t\tx\r\n", 0, "+OK[](x)" },
	{ "greeting", "+OK/MTQP MTQP server ready\r\n", 0,
	    "+OK[MTQP](MTQP server ready)" },
	{ "temp", "-TEMP/MTQP/admin Service down\r\n", 0,
	    "-TEMP[MTQP,admin](Service down)" },
	{ "err", "-ERR/noinfo\r\n", 0, "-ERR[noinfo]()" },
	{ "bad", "-BAD/tls-in-progress nope\r\n", 0,
	    "-BAD[tls-in-progress](nope)" },
	{ "unknown reason kept", "-ERR/x_y-1\r\n", 0, "-ERR[x_y-1]()" },
	{ "multi", "+OK+ here\r\na\r\nb\r\n.\r\n", 0, "+OK+[](here){a~b~}" },
	{ "multi empty", "+OK+/MTQP ready\r\n.\r\n", 0, "+OK+[MTQP](ready){}" },
	{ "multi empty line", "+OK+\r\n\r\n.\r\n", 0, "+OK+[](){~}" },
	{ "unstuff", "+OK+\r\n..x\r\n..\r\n...\r\n.a\r\n.\r\n", 0,
	    "+OK+[](){.x~.~..~a~}" },
	{ "dot space not end", "+OK+\r\n. \r\n.\r\n", 0, "+OK+[](){ ~}" },
	{ "multi then single", "+OK+\r\nx\r\n.\r\n+OK\r\n", 0,
	    "+OK+[](){x~}|+OK[]()" },
	{ "two multi", "+OK+\r\nx\r\n.\r\n+OK+\r\ny\r\n.\r\n", 0,
	    "+OK+[](){x~}|+OK+[](){y~}" },
	{ "8bit in body ok", "+OK+\r\n\xc3\xa9\r\n.\r\n", 0,
	    "+OK+[](){\xc3\xa9~}" },
	{ "status line in body is data", "+OK+\r\n-ERR\r\n.\r\n", 0,
	    "+OK+[](){-ERR~}" },
	{ "unterminated multi", "+OK+\r\nx\r\n", 0, "" },
	{ "ok lower", "+ok\r\n", 0, "!E_STATUS" },
	{ "okx", "+OKx\r\n", 0, "!E_STATUS" },
	{ "ok++", "+OK++\r\n", 0, "!E_STATUS" },
	{ "empty line", "\r\n", 0, "!E_STATUS" },
	{ "smtp reply", "250 ok\r\n", 0, "!E_STATUS" },
	{ "empty reason", "-ERR//x\r\n", 0, "!E_REASON" },
	{ "reason bad char", "-ERR/a.b\r\n", 0, "!E_REASON" },
	{ "reason then junk", "-ERR/a,b\r\n", 0, "!E_REASON" },
	{ "reason trailing slash", "-ERR/a/\r\n", 0, "!E_REASON" },
	{ "reason 32", "-ERR/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 0,
	    "-ERR[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]()" },
	{ "reason 33", "-ERR/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 0,
	    "!E_REASON" },
	{ "reasons 8", "-ERR/a/b/c/d/e/f/g/h\r\n", 0,
	    "-ERR[a,b,c,d,e,f,g,h]()" },
	{ "reasons 9", "-ERR/a/b/c/d/e/f/g/h/i\r\n", 0, "!E_REASON" },
	{ "text ctl", "+OK a\x01\r\n", 0, "!E_TEXT" },
	{ "text 8bit", "+OK caf\xc3\xa9\r\n", 0, "!E_TEXT" },
	{ "bare lf", "+OK\n", 0, "!E_BARE_LF" },
	{ "bare lf body", "+OK+\r\nx\n.\r\n", 0, "!E_BARE_LF" },
	{ "bare cr", "+O\rK\r\n", 0, "!E_BARE_CR" },
	{ "bare cr body", "+OK+\r\na\rb\r\n.\r\n", 0, "!E_BARE_CR" },
	{ "nul", "+OK\0\r\n", 6, "!E_NUL" },
	{ "nul body", "+OK+\r\na\0\r\n.\r\n", 11, "!E_NUL" },
	{ "ok then garbage", "+OK\r\nfoo\r\n", 0, "+OK[]()|!E_STATUS" },
};

static const char *
read_name(const void *row)
{
	return ((const struct read_row *)row)->name;
}

static void
test_read_row(void **state)
{
	const struct read_row *row = *state;

	table_check_splits(render, NULL, row->in,
	    row->len ? row->len : strlen(row->in), row->want);
}

/* Line and body limits, checked before the line ends. */
static void
test_read_limits(void **state)
{
	struct mtqp_resp_limits lim = { .body_max = 11, .input_max = 0 };
	struct mtqp_resp_reader *r;
	struct mtqp_resp resp;
	char line[1200];
	struct buf out;

	(void)state;
	buf_init(&out, 1 << 20);
	/* 998 octets of status line: fine. */
	memcpy(line, "+OK ", 4);
	memset(line + 4, 'a', 994);
	memcpy(line + 998, "\r\n", 2);
	assert_int_equal(
	    strncmp(render_whole(NULL, line, 1000, &out), "+OK[](aaa", 9), 0);
	/* 999 octets: the error comes before the CRLF. */
	r = mtqp_resp_reader_new(NULL);
	memset(line + 4, 'a', 995);
	assert_int_equal(mtqp_resp_reader_push(r, line, 998), 0);
	assert_int_equal(mtqp_resp_reader_next(r, &resp), 0);
	assert_int_equal(mtqp_resp_reader_push(r, line, 1), 0);
	assert_int_equal(mtqp_resp_reader_next(r, &resp), -1);
	assert_int_equal(mtqp_resp_reader_error(r), MTQP_RESP_E_LINE_TOO_LONG);
	mtqp_resp_reader_free(r);
	/* 998 octets + CR, then LF: fine. */
	r = mtqp_resp_reader_new(NULL);
	memcpy(line + 998, "\r\n", 2);
	line[998 - 1] = 'a';
	assert_int_equal(mtqp_resp_reader_push(r, line, 999), 0);
	assert_int_equal(mtqp_resp_reader_next(r, &resp), 0);
	assert_int_equal(mtqp_resp_reader_push(r, "\n", 1), 0);
	assert_int_equal(mtqp_resp_reader_next(r, &resp), 1);
	mtqp_resp_reader_free(r);
	/* Data line of 999 octets. */
	memcpy(line, "+OK+\r\n", 6);
	memset(line + 6, 'b', 999);
	memcpy(line + 1005, "\r\n.\r\n", 5);
	assert_string_equal(
	    render_whole(NULL, line, 1010, &out), "!E_LINE_TOO_LONG");
	/* Body limit: 11 octets after un-stuffing, CRLFs included. */
	assert_string_equal(
	    render_whole(&lim, "+OK+\r\nabc\r\n..def\r\n.\r\n", 21, &out),
	    "+OK+[](){abc~.def~}");
	assert_string_equal(
	    render_whole(&lim, "+OK+\r\nabc\r\ndefgh\r\n.\r\n", 21, &out),
	    "!E_BODY_TOO_LARGE");
	/* Input limit. */
	lim.input_max = 4;
	r = mtqp_resp_reader_new(&lim);
	assert_int_equal(mtqp_resp_reader_push(r, "+OK\r\n", 5), -1);
	assert_int_equal(mtqp_resp_reader_error(r), MTQP_RESP_E_INPUT_FULL);
	assert_int_equal(mtqp_resp_reader_push(r, "+OK\r", 4), 0);
	assert_int_equal(mtqp_resp_reader_pending(r), 4);
	assert_int_equal(mtqp_resp_reader_next(r, &resp), 0);
	assert_int_equal(mtqp_resp_reader_pending(r), 0);
	assert_int_equal(mtqp_resp_reader_push(r, "\n+OK", 4), 0);
	assert_int_equal(mtqp_resp_reader_next(r, &resp), 1);
	assert_int_equal(mtqp_resp_reader_pending(r), 3);
	mtqp_resp_reader_free(r);
	mtqp_resp_reader_free(NULL);
	buf_reset(&out);
}

/* Writer output read back gives the same data (round trip). */
static void
test_roundtrip(void **state)
{
	static const char *const datas[] = {
		"",
		"a\r\n",
		".\r\n",
		"..\r\n.x\r\n\r\n.\r\n",
		"Content-Type: text/plain\r\n\r\n.hidden\r\n...\r\n",
	};
	struct mtqp_resp_reader *r;
	struct mtqp_resp resp;
	struct buf b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(datas) / sizeof(datas[0]); i++) {
		buf_init(&b, 4096);
		assert_int_equal(
		    mtqp_resp_multi(&b, "x/y", "t", datas[i], strlen(datas[i])),
		    0);
		r = mtqp_resp_reader_new(NULL);
		assert_int_equal(mtqp_resp_reader_push(r, b.data, b.len), 0);
		assert_int_equal(mtqp_resp_reader_next(r, &resp), 1);
		assert_int_equal(resp.status, MTQP_OK_MULTI);
		assert_true(mtqp_resp_has_reason(&resp, "X"));
		assert_true(mtqp_resp_has_reason(&resp, "y"));
		assert_false(mtqp_resp_has_reason(&resp, "z"));
		assert_int_equal(resp.body_len, strlen(datas[i]));
		assert_memory_equal(resp.body, datas[i], resp.body_len);
		assert_int_equal(mtqp_resp_reader_pending(r), 0);
		mtqp_resp_reader_free(r);
		buf_reset(&b);
	}
}

/*
 * Greeting
 */

struct greet_row {
	const char *name;
	const char *in;
	int rc;
	enum mtqp_greeting_error err;
	int ok, admin, starttls, required;
	size_t noptions;
};

static const struct greet_row greet_rows[] = {
	{ "plain", "+OK/MTQP MTQP server ready\r\n", 0, 0, 1, 0, 0, 0, 0 },
	{ "mtqp case", "+OK/mtqp\r\n", 0, 0, 1, 0, 0, 0, 0 },
	{ "empty list", "+OK+/MTQP x\r\n.\r\n", 0, 0, 1, 0, 0, 0, 0 },
	{ "starttls", "+OK+/MTQP\r\nSTARTTLS\r\n.\r\n", 0, 0, 1, 0, 1, 0, 1 },
	{ "starttls required", "+OK+/MTQP\r\nSTARTTLS required\r\n.\r\n", 0, 0,
	    1, 0, 1, 1, 1 },
	{ "starttls REQUIRED tab", "+OK+/MTQP\r\nstarttls\tREQUIRED \r\n.\r\n",
	    0, 0, 1, 0, 1, 1, 1 },
	{ "starttls required continued",
	    "+OK+/MTQP\r\nSTARTTLS\r\n required\r\n.\r\n", 0, 0, 1, 0, 1, 1,
	    1 },
	{ "starttls bad param", "+OK+/MTQP\r\nSTARTTLS optional\r\n.\r\n", -1,
	    MTQP_GREETING_E_OPTION, 0, 0, 0, 0, 0 },
	{ "starttls required junk",
	    "+OK+/MTQP\r\nSTARTTLS required now\r\n.\r\n", -1,
	    MTQP_GREETING_E_OPTION, 0, 0, 0, 0, 0 },
	{ "starttlsx", "+OK+/MTQP\r\nSTARTTLSX required\r\n.\r\n", 0, 0, 1, 0,
	    0, 0, 1 },
	{ "starttls twice", "+OK+/MTQP\r\nSTARTTLS\r\nSTARTTLS\r\n.\r\n", -1,
	    MTQP_GREETING_E_OPTION, 0, 0, 0, 0, 0 },
	{ "vendor", "+OK+/MTQP\r\nvnd.com.example.x a b\r\n c\r\n.\r\n", 0, 0,
	    1, 0, 0, 0, 1 },
	{ "leading continuation", "+OK+/MTQP\r\n x\r\n.\r\n", -1,
	    MTQP_GREETING_E_OPTION, 0, 0, 0, 0, 0 },
	{ "empty option line", "+OK+/MTQP\r\nSTARTTLS\r\n\r\n.\r\n", -1,
	    MTQP_GREETING_E_OPTION, 0, 0, 0, 0, 0 },
	{ "8bit option", "+OK+/MTQP\r\nvnd.\xc3\xa9\r\n.\r\n", -1,
	    MTQP_GREETING_E_OPTION, 0, 0, 0, 0, 0 },
	{ "no mtqp", "+OK ready\r\n", -1, MTQP_GREETING_E_NOT_MTQP, 0, 0, 0, 0,
	    0 },
	{ "temp admin", "-TEMP/MTQP/admin down\r\n", 0, 0, 0, 1, 0, 0, 0 },
	{ "err unavailable", "-ERR/MTQP/unavailable down\r\n", 0, 0, 0, 0, 0, 0,
	    0 },
	{ "unknown reason", "-ERR/MTQP/later\r\n", 0, 0, 0, 0, 0, 0, 0 },
	{ "negative no reason", "-ERR/MTQP down\r\n", -1,
	    MTQP_GREETING_E_NO_REASON, 0, 0, 0, 0, 0 },
	{ "negative no mtqp", "-ERR/admin down\r\n", -1,
	    MTQP_GREETING_E_NOT_MTQP, 0, 0, 0, 0, 0 },
	{ "bad", "-BAD/MTQP\r\n", -1, MTQP_GREETING_E_STATUS, 0, 0, 0, 0, 0 },
};

static const char *
greet_name(const void *row)
{
	return ((const struct greet_row *)row)->name;
}

static void
check_greeting(const char *in, size_t len, const struct greet_row *row)
{
	struct mtqp_resp_reader *r = mtqp_resp_reader_new(NULL);
	struct mtqp_resp resp;
	struct mtqp_greeting g;
	enum mtqp_greeting_error err;

	assert_int_equal(mtqp_resp_reader_push(r, in, len), 0);
	assert_int_equal(mtqp_resp_reader_next(r, &resp), 1);
	assert_int_equal(mtqp_greeting_parse(&resp, &g, &err), row->rc);
	assert_int_equal(err, row->err);
	assert_int_equal(g.ok, row->ok);
	assert_int_equal(g.admin, row->admin);
	assert_int_equal(g.starttls, row->starttls);
	assert_int_equal(g.starttls_required, row->required);
	assert_int_equal(g.noptions, row->noptions);
	mtqp_resp_reader_free(r);
}

static void
test_greet_row(void **state)
{
	const struct greet_row *row = *state;

	check_greeting(row->in, strlen(row->in), row);
}

/* The RFC 3887 §3.1 greetings (tests/golden/rfc3887/). */
struct gfix_row {
	const char *file;
	struct greet_row want;
};

static const struct gfix_row gfix_rows[] = {
	{ "rfc3887/ex01-greeting-no-options.server",
	    { NULL, NULL, 0, 0, 1, 0, 0, 0, 0 } },
	{ "rfc3887/ex02-greeting-temp-admin.server",
	    { NULL, NULL, 0, 0, 0, 1, 0, 0, 0 } },
	{ "rfc3887/ex03-greeting-err-unavailable.server",
	    { NULL, NULL, 0, 0, 0, 0, 0, 0, 0 } },
	{ "rfc3887/ex04-greeting-empty-options.server",
	    { NULL, NULL, 0, 0, 1, 0, 0, 0, 0 } },
	{ "rfc3887/ex05-greeting-options.server",
	    { NULL, NULL, 0, 0, 1, 0, 1, 0, 3 } },
};

static const char *
gfix_name(const void *row)
{
	return ((const struct gfix_row *)row)->file;
}

static void
test_gfix_row(void **state)
{
	const struct gfix_row *row = *state;
	size_t len;
	char *in = golden_read(row->file, &len);

	check_greeting(in, len, &row->want);
	free(in);
}

/* Writer greetings parse back. */
static void
test_greeting_roundtrip(void **state)
{
	static const char *const opts[] = { "STARTTLS required", "vnd.x.y" };
	struct mtqp_resp_reader *r = mtqp_resp_reader_new(NULL);
	struct mtqp_resp resp;
	struct mtqp_greeting g;
	enum mtqp_greeting_error err;
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(mtqp_resp_greeting(&b, opts, 2, "ready"), 0);
	assert_int_equal(mtqp_resp_greeting(&b, NULL, 0, "ready"), 0);
	assert_int_equal(mtqp_resp_reader_push(r, b.data, b.len), 0);
	assert_int_equal(mtqp_resp_reader_next(r, &resp), 1);
	assert_int_equal(mtqp_greeting_parse(&resp, &g, &err), 0);
	assert_true(g.ok && g.starttls && g.starttls_required);
	assert_int_equal(g.noptions, 2);
	assert_int_equal(mtqp_resp_reader_next(r, &resp), 1);
	assert_int_equal(mtqp_greeting_parse(&resp, &g, &err), 0);
	assert_true(g.ok && !g.starttls);
	buf_reset(&b);
	mtqp_resp_reader_free(r);
}

static void
test_strerror(void **state)
{
	int e;

	(void)state;
	for (e = 0; e <= MTQP_RESP_E_INPUT_FULL; e++)
		assert_string_not_equal(mtqp_resp_strerror(e), "unknown error");
	assert_string_equal(
	    mtqp_resp_strerror((enum mtqp_resp_error)99), "unknown error");
}

int
main(void)
{
	const struct CMUnitTest misc[] = {
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_data_limits),
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_read_limits),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_greeting_roundtrip),
		cmocka_unit_test(test_strerror),
	};
	int failed = 0;

	failed += TABLE_RUN("line", test_line_row, line_rows, line_name);
	failed += TABLE_RUN("data", test_data_row, data_rows, data_name);
	failed += TABLE_RUN("read", test_read_row, read_rows, read_name);
	failed += TABLE_RUN("greeting", test_greet_row, greet_rows, greet_name);
	failed +=
	    TABLE_RUN("greeting-fixture", test_gfix_row, gfix_rows, gfix_name);
	failed += cmocka_run_group_tests_name("misc", misc, NULL, NULL);
	return failed;
}
