/*
 * test_smtp_line: the server-side SMTP line and DATA reader.
 *
 * Every row is a byte stream as a client sends it, run as a small
 * session: lines are read until one is "DATA", then content until the
 * final dot, then lines again.  What the reader hands out becomes a
 * transcript:
 *   L:<line>        a command line (without CRLF)
 *   E:<error>       a line error (smtp_line_error_name)
 *   D:<content> f=<flags> s=<size> l=<lines> h=<hdr lines>/<hdr end>
 *       8=<8bit octets> 0=<NUL octets>       end of DATA
 *   U:<content>     DATA still open at the end of input
 *   P:<n>           octets still buffered at the end
 * with CR, LF, backslash and non-printable octets escaped (\r \n \\ \xHH).
 * Each row is fed whole, one octet at a time, split at every offset, and
 * (when short) split at every pair of offsets: the transcript must be the
 * same every time.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

#include "msgtrk/buf.h"
#include "msgtrk/smtp_cmd.h"
#include "msgtrk/smtp_line.h"

/* A literal with its length, so rows can hold NUL octets. */
#define S(s) s, sizeof(s) - 1

struct sess_row {
	const char *name;
	const char *in;
	size_t n;
	size_t limit; /* 0: default */
	uint64_t max_size; /* DATA size limit, 0: none */
	size_t outmax; /* max of the content buf, 0: 1 MiB */
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

static void
flags_str(struct buf *t, unsigned int f)
{
	static const struct {
		unsigned int bit;
		const char *name;
	} names[] = {
		{ SMTP_DATA_F_BARE_LF, "bare-lf" },
		{ SMTP_DATA_F_BARE_CR, "bare-cr" },
		{ SMTP_DATA_F_NUL, "nul" },
		{ SMTP_DATA_F_8BIT, "8bit" },
		{ SMTP_DATA_F_TOO_BIG, "too-big" },
		{ SMTP_DATA_F_LONG_LINE, "long-line" },
		{ SMTP_DATA_F_STORE_FAILED, "store-failed" },
	};
	size_t i;
	int first = 1;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(f & names[i].bit))
			continue;
		buf_adds(t, first ? "" : ",");
		buf_adds(t, names[i].name);
		first = 0;
	}
	if (first)
		buf_adds(t, "-");
}

struct sess {
	struct smtp_line *r;
	struct buf content;
	int indata;
	uint64_t max_size;
};

static void
drain(struct sess *s, struct buf *t)
{
	const struct smtp_data_info *di;
	enum smtp_line_error err;
	const char *line;
	size_t len;
	int rc;

	for (;;) {
		if (s->indata) {
			rc = smtp_line_data(s->r, &s->content, &err);
			assert_int_not_equal(rc, -1);
			if (rc == 0)
				return;
			di = smtp_line_data_info(s->r);
			buf_adds(t, "D:");
			esc(t, s->content.data == NULL ? "" : s->content.data,
			    s->content.len);
			buf_adds(t, " f=");
			flags_str(t, di->flags);
			buf_addf(t, " s=%llu l=%llu h=%llu/%d 8=%llu 0=%llu\n",
			    (unsigned long long)di->size,
			    (unsigned long long)di->lines,
			    (unsigned long long)di->header_lines,
			    di->header_end, (unsigned long long)di->eightbit,
			    (unsigned long long)di->nul);
			assert_true(di->size >= s->content.len);
			buf_clear(&s->content);
			s->indata = 0;
			continue;
		}
		rc = smtp_line_next(s->r, &line, &len, &err);
		if (rc == 0) {
			assert_int_equal(err, SMTP_LINE_OK);
			return;
		}
		if (rc == -1) {
			assert_int_not_equal(err, SMTP_LINE_ERR_STATE);
			assert_int_not_equal(
			    smtp_line_cmd_error(err), SMTP_CMD_OK);
			buf_addf(t, "E:%s\n", smtp_line_error_name(err));
			continue;
		}
		assert_int_equal(rc, 1);
		assert_int_equal(err, SMTP_LINE_OK);
		buf_adds(t, "L:");
		esc(t, line, len);
		buf_adds(t, "\n");
		if (len == 4 && memcmp(line, "DATA", 4) == 0) {
			assert_int_equal(
			    smtp_line_data_begin(s->r, s->max_size), 0);
			s->indata = 1;
		}
	}
}

/* Runs the session over in, cut at the ncuts offsets (ascending). */
static void
run(const void *ctx, const char *in, size_t n, const size_t *cuts, size_t ncuts,
    struct buf *t)
{
	const struct sess_row *row = ctx;
	struct sess s;
	size_t off = 0, i, end;

	memset(&s, 0, sizeof(s));
	s.r = smtp_line_new(row->limit);
	assert_non_null(s.r);
	s.max_size = row->max_size;
	buf_init(&s.content, row->outmax ? row->outmax : 1 << 20);
	buf_clear(t);
	for (i = 0; i <= ncuts; i++) {
		end = i < ncuts ? cuts[i] : n;
		assert_int_equal(smtp_line_push(s.r, in + off, end - off), 0);
		off = end;
		drain(&s, t);
	}
	if (s.indata) {
		buf_adds(t, "U:");
		esc(t, s.content.data == NULL ? "" : s.content.data,
		    s.content.len);
		buf_adds(t, "\n");
		assert_int_equal(smtp_line_pending(s.r), 0);
	}
	buf_addf(t, "P:%zu\n", smtp_line_pending(s.r));
	buf_reset(&s.content);
	smtp_line_free(s.r);
}

static void
test_sess(void **state)
{
	const struct sess_row *row = *state;

	table_check_splits(run, row, row->in, row->n, row->want);
}

static const char *
sess_name(const void *p)
{
	return ((const struct sess_row *)p)->name;
}

/* Command phase. */
static const struct sess_row cmd_rows[] = {
	{ "empty", S(""), 0, 0, 0, "P:0\n" },
	{ "one-line", S("NOOP\r\n"), 0, 0, 0, "L:NOOP\nP:0\n" },
	{ "empty-line", S("\r\n"), 0, 0, 0, "L:\nP:0\n" },
	{ "pipelined-group",
	    S("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"
	      "RCPT TO:<e@f>\r\nNOOP\r\n"),
	    0, 0, 0,
	    "L:MAIL FROM:<a@b>\nL:RCPT TO:<c@d>\nL:RCPT TO:<e@f>\nL:NOOP\n"
	    "P:0\n" },
	{ "partial", S("NOOP"), 0, 0, 0, "P:4\n" },
	{ "partial-cr", S("NOOP\r"), 0, 0, 0, "P:5\n" },
	{ "line-then-partial", S("NOOP\r\nQU"), 0, 0, 0, "L:NOOP\nP:2\n" },
	/* RFC 5321 §2.3.8: a bare LF is no terminator; reported at once,
	 * the rest of that line up to CRLF dropped. */
	{ "bare-lf-alone", S("NOOP\n"), 0, 0, 0, "E:bare-lf\nP:0\n" },
	{ "bare-lf-rest-dropped", S("NOOP\nQUIT\r\nRSET\r\n"), 0, 0, 0,
	    "E:bare-lf\nL:RSET\nP:0\n" },
	{ "bare-lf-lines", S("EHLO x\nMAIL FROM:<>\nRCPT TO:<a@b>\n"), 0, 0, 0,
	    "E:bare-lf\nP:0\n" },
	{ "bare-lf-first", S("\nNOOP\r\n"), 0, 0, 0, "E:bare-lf\nP:0\n" },
	{ "bare-lf-then-crlf", S("\n\r\nNOOP\r\n"), 0, 0, 0,
	    "E:bare-lf\nL:NOOP\nP:0\n" },
	{ "empty-then-bare-lf", S("\r\n\n"), 0, 0, 0, "L:\nE:bare-lf\nP:0\n" },
	{ "lf-cr", S("NOOP\n\r"), 0, 0, 0, "E:bare-lf\nP:0\n" },
	{ "bare-cr", S("NO\rOP\r\nQUIT\r\n"), 0, 0, 0,
	    "E:bare-cr\nL:QUIT\nP:0\n" },
	{ "cr-cr-lf", S("NOOP\r\r\nQUIT\r\n"), 0, 0, 0,
	    "E:bare-cr\nL:QUIT\nP:0\n" },
	{ "cr-first", S("\rNOOP\r\nQUIT\r\n"), 0, 0, 0,
	    "E:bare-cr\nL:QUIT\nP:0\n" },
	{ "bare-cr-then-lf", S("A\rB\nC\r\nD\r\n"), 0, 0, 0,
	    "E:bare-cr\nL:D\nP:0\n" },
	{ "bare-cr-pending", S("NOOP\rX"), 0, 0, 0, "E:bare-cr\nP:0\n" },
	/* NUL and 8-bit octets reach smtp_cmd_parse(), which refuses
	 * them: one place only. */
	{ "nul-passes", S("NO\0OP\r\n"), 0, 0, 0, "L:NO\\x00OP\nP:0\n" },
	{ "8bit-passes", S("HELO caf\xc3\xa9\r\n"), 0, 0, 0,
	    "L:HELO caf\\xc3\\xa9\nP:0\n" },
	{ "tab-passes", S("NOOP\tx\r\n"), 0, 0, 0, "L:NOOP\\x09x\nP:0\n" },
	/* limits, CRLF included: limit 8 allows 6 octets before CRLF */
	{ "limit-exact", S("123456\r\n"), 8, 0, 0, "L:123456\nP:0\n" },
	{ "limit-plus-1", S("1234567\r\nNOOP\r\n"), 8, 0, 0,
	    "E:too-long\nL:NOOP\nP:0\n" },
	{ "limit-minus-1", S("12345\r\n"), 8, 0, 0, "L:12345\nP:0\n" },
	{ "limit-no-end", S("123456789012345"), 8, 0, 0, "E:too-long\nP:0\n" },
	{ "limit-exact-partial", S("123456"), 8, 0, 0, "P:6\n" },
	{ "limit-exact-partial-cr", S("123456\r"), 8, 0, 0, "P:7\n" },
	{ "limit-over-long", S("1234567890123456789\r\nQUIT\r\n"), 8, 0, 0,
	    "E:too-long\nL:QUIT\nP:0\n" },
	{ "limit-then-bare-lf", S("123456789\nabc\r\nNOOP\r\n"), 8, 0, 0,
	    "E:too-long\nL:NOOP\nP:0\n" },
	{ "limit-then-bare-cr", S("123456789\rabc\r\nNOOP\r\n"), 8, 0, 0,
	    "E:too-long\nL:NOOP\nP:0\n" },
	{ "limit-cr-at-edge", S("1234567\r\nA\r\n"), 8, 0, 0,
	    "E:too-long\nL:A\nP:0\n" },
	{ "limit-bare-cr-before-limit", S("123456\rX\r\nA\r\n"), 8, 0, 0,
	    "E:bare-cr\nL:A\nP:0\n" },
	{ "limit-bare-lf-at-edge", S("123456\nA\r\nB\r\n"), 8, 0, 0,
	    "E:bare-lf\nL:B\nP:0\n" },
	{ "limit-twice", S("123456789\r\n123456789\r\nOK\r\n"), 8, 0, 0,
	    "E:too-long\nE:too-long\nL:OK\nP:0\n" },
	{ "limit-min-ok", S("X\r\n\r\n"), 3, 0, 0, "L:X\nL:\nP:0\n" },
	{ "limit-min-over", S("XY\r\nZ\r\n"), 3, 0, 0,
	    "E:too-long\nL:Z\nP:0\n" },
	{ "limit-discard-crlf-split", S("12345678\r\r\nA\r\n"), 8, 0, 0,
	    "E:too-long\nL:A\nP:0\n" },
};

/* DATA phase (content follows a "DATA" line). */
static const struct sess_row data_rows[] = {
	{ "empty-message", S("DATA\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD: f=- s=0 l=0 h=0/0 8=0 0=0\nP:0\n" },
	{ "simple", S("DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:Subject: x\\r\\n\\r\\nbody\\r\\n f=- s=20 l=3 h=1/1 "
	    "8=0 0=0\nP:0\n" },
	{ "pipelined-quit", S("DATA\r\nhi\r\n.\r\nQUIT\r\n"), 0, 0, 0,
	    "L:DATA\nD:hi\\r\\n f=- s=4 l=1 h=0/0 8=0 0=0\nL:QUIT\nP:0\n" },
	{ "pipelined-rset-partial", S("DATA\r\nhi\r\n.\r\nRSET\r\nMA"), 0, 0, 0,
	    "L:DATA\nD:hi\\r\\n f=- s=4 l=1 h=0/0 8=0 0=0\nL:RSET\nP:2\n" },
	{ "whole-transaction",
	    S("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nFrom: a@b\r\n"
	      "\r\nx\r\n.\r\nQUIT\r\n"),
	    0, 0, 0,
	    "L:MAIL FROM:<a@b>\nL:RCPT TO:<c@d>\nL:DATA\nD:From: a@b\\r\\n"
	    "\\r\\nx\\r\\n f=- s=16 l=3 h=1/1 8=0 0=0\nL:QUIT\nP:0\n" },
	{ "two-messages", S("DATA\r\na\r\n.\r\nRSET\r\nDATA\r\nb\r\n.\r\n"), 0,
	    0, 0,
	    "L:DATA\nD:a\\r\\n f=- s=3 l=1 h=0/0 8=0 0=0\nL:RSET\nL:DATA\n"
	    "D:b\\r\\n f=- s=3 l=1 h=0/0 8=0 0=0\nP:0\n" },
	{ "unfinished", S("DATA\r\nabc"), 0, 0, 0, "L:DATA\nU:abc\nP:0\n" },
	{ "unfinished-dot-cr", S("DATA\r\nabc\r\n.\r"), 0, 0, 0,
	    "L:DATA\nU:abc\\r\\n\nP:0\n" },
	{ "no-final-crlf-content", S("DATA\r\nabc\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:abc\\r\\n f=- s=5 l=1 h=0/0 8=0 0=0\nP:0\n" },
	/* RFC 5321 §4.5.2 dot-unstuffing */
	{ "unstuff", S("DATA\r\n..foo\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:.foo\\r\\n f=- s=6 l=1 h=0/0 8=0 0=0\nP:0\n" },
	{ "unstuff-two-dots", S("DATA\r\n..\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:.\\r\\n f=- s=3 l=1 h=0/0 8=0 0=0\nP:0\n" },
	{ "unstuff-three-dots", S("DATA\r\n...\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:..\\r\\n f=- s=4 l=1 h=0/0 8=0 0=0\nP:0\n" },
	{ "unstuff-dot-space", S("DATA\r\n. \r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD: \\r\\n f=- s=3 l=1 h=0/0 8=0 0=0\nP:0\n" },
	{ "dot-mid-line", S("DATA\r\na.b\r\na.\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:a.b\\r\\na.\\r\\n f=- s=9 l=2 h=0/0 8=0 0=0\nP:0\n" },
	{ "dot-line-mid-message", S("DATA\r\na\r\n..\r\nb\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:a\\r\\n.\\r\\nb\\r\\n f=- s=9 l=3 h=0/0 8=0 0=0\n"
	    "P:0\n" },
	/* SMTP smuggling: none of these ends DATA, all are flagged */
	{ "smuggle-lf-dot-lf",
	    S("DATA\r\nx\n.\nMAIL FROM:<evil@x>\r\n.\r\nQUIT\r\n"), 0, 0, 0,
	    "L:DATA\nD:x\\n.\\nMAIL FROM:<evil@x>\\r\\n f=bare-lf s=24 l=1 "
	    "h=0/0 8=0 0=0\nL:QUIT\nP:0\n" },
	{ "smuggle-cr-dot-lf", S("DATA\r\nx\r.\nMAIL FROM:<e@x>\r\n.\r\n"), 0,
	    0, 0,
	    "L:DATA\nD:x\\r.\\nMAIL FROM:<e@x>\\r\\n f=bare-lf,bare-cr s=21 "
	    "l=1 h=0/0 8=0 0=0\nP:0\n" },
	{ "smuggle-lf-dot-crlf", S("DATA\r\nx\n.\r\nMAIL FROM:<e@x>\r\n.\r\n"),
	    0, 0, 0,
	    "L:DATA\nD:x\\n.\\r\\nMAIL FROM:<e@x>\\r\\n f=bare-lf s=22 l=2 "
	    "h=0/0 8=0 0=0\nP:0\n" },
	{ "smuggle-cr-dot-crlf", S("DATA\r\nx\r.\r\nMAIL FROM:<e@x>\r\n.\r\n"),
	    0, 0, 0,
	    "L:DATA\nD:x\\r.\\r\\nMAIL FROM:<e@x>\\r\\n f=bare-cr s=22 l=2 "
	    "h=0/0 8=0 0=0\nP:0\n" },
	{ "smuggle-crlf-dot-lf", S("DATA\r\nx\r\n.\nMAIL FROM:<e@x>\r\n.\r\n"),
	    0, 0, 0,
	    "L:DATA\nD:x\\r\\n\\nMAIL FROM:<e@x>\\r\\n f=bare-lf s=21 l=2 "
	    "h=0/0 8=0 0=0\nP:0\n" },
	{ "smuggle-crlf-dot-cr-x",
	    S("DATA\r\nx\r\n.\rMAIL FROM:<e@x>\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:x\\r\\n\\rMAIL FROM:<e@x>\\r\\n f=bare-cr s=21 l=2 "
	    "h=0/0 8=0 0=0\nP:0\n" },
	{ "smuggle-crlf-dot-cr-cr-lf", S("DATA\r\nx\r\n.\r\r\nQUIT\r\n.\r\n"),
	    0, 0, 0,
	    "L:DATA\nD:x\\r\\n\\r\\r\\nQUIT\\r\\n f=bare-cr s=12 l=3 h=0/0 "
	    "8=0 0=0\nP:0\n" },
	{ "smuggle-lf-dot-lf-at-start", S("DATA\r\n\n.\nQUIT\r\n.\r\n"), 0, 0,
	    0,
	    "L:DATA\nD:\\n.\\nQUIT\\r\\n f=bare-lf s=9 l=1 h=0/0 8=0 0=0\n"
	    "P:0\n" },
	{ "smuggle-dot-lf-at-start", S("DATA\r\n.\nQUIT\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:\\nQUIT\\r\\n f=bare-lf s=7 l=1 h=0/0 8=0 0=0\nP:0\n" },
	{ "smuggle-dot-cr-at-start", S("DATA\r\n.\rQUIT\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:\\rQUIT\\r\\n f=bare-cr s=7 l=1 h=0/0 8=0 0=0\nP:0\n" },
	{ "smuggle-cr-cr-lf-dot", S("DATA\r\nx\r\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:x\\r\\r\\n f=bare-cr s=4 l=1 h=0/0 8=0 0=0\nP:0\n" },
	{ "bare-lf-in-content", S("DATA\r\na\nb\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:a\\nb\\r\\n f=bare-lf s=5 l=1 h=0/0 8=0 0=0\nP:0\n" },
	{ "bare-cr-in-content", S("DATA\r\na\rb\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:a\\rb\\r\\n f=bare-cr s=5 l=1 h=0/0 8=0 0=0\nP:0\n" },
	/* octets */
	{ "nul", S("DATA\r\na\0b\0\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:a\\x00b\\x00\\r\\n f=nul s=6 l=1 h=0/0 8=0 0=2\n"
	    "P:0\n" },
	{ "8bit", S("DATA\r\ncaf\xc3\xa9\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:caf\\xc3\\xa9\\r\\n f=8bit s=7 l=1 h=0/0 8=2 0=0\n"
	    "P:0\n" },
	{ "8bit-ff-and-nul", S("DATA\r\n\xff\0\x80\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:\\xff\\x00\\x80\\r\\n f=nul,8bit s=5 l=1 h=0/0 8=2 "
	    "0=1\nP:0\n" },
	/* header section */
	{ "hdr-folded",
	    S("DATA\r\nSubject: x\r\n\tcont\r\nFrom: a\r\n\r\nb\r\n"
	      ".\r\n"),
	    0, 0, 0,
	    "L:DATA\nD:Subject: x\\r\\n\\x09cont\\r\\nFrom: "
	    "a\\r\\n\\r\\nb\\r\\n "
	    "f=- s=33 l=5 h=3/1 8=0 0=0\nP:0\n" },
	{ "hdr-none", S("DATA\r\nhello world\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:hello world\\r\\n f=- s=13 l=1 h=0/0 8=0 0=0\nP:0\n" },
	{ "hdr-no-separator", S("DATA\r\nSubject: x\r\nnot a header\r\n.\r\n"),
	    0, 0, 0,
	    "L:DATA\nD:Subject: x\\r\\nnot a header\\r\\n f=- s=26 l=2 h=1/0 "
	    "8=0 0=0\nP:0\n" },
	{ "hdr-only", S("DATA\r\nSubject: x\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:Subject: x\\r\\n f=- s=12 l=1 h=1/0 8=0 0=0\nP:0\n" },
	{ "hdr-leading-fold", S("DATA\r\n x: y\r\n\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD: x: y\\r\\n\\r\\n f=- s=9 l=2 h=0/0 8=0 0=0\nP:0\n" },
	{ "hdr-empty-first", S("DATA\r\n\r\nbody\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:\\r\\nbody\\r\\n f=- s=8 l=2 h=0/1 8=0 0=0\nP:0\n" },
	{ "hdr-space-before-colon", S("DATA\r\nSubject : x\r\n\r\n.\r\n"), 0, 0,
	    0,
	    "L:DATA\nD:Subject : x\\r\\n\\r\\n f=- s=15 l=2 h=0/0 8=0 0=0\n"
	    "P:0\n" },
	{ "hdr-dot-stuffed-name", S("DATA\r\n..X: y\r\n\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:.X: y\\r\\n\\r\\n f=- s=9 l=2 h=1/1 8=0 0=0\nP:0\n" },
	{ "hdr-empty-name", S("DATA\r\n: y\r\n\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:: y\\r\\n\\r\\n f=- s=7 l=2 h=0/0 8=0 0=0\nP:0\n" },
	{ "hdr-bare-cr-line", S("DATA\r\nA: b\r\n\rx\r\n.\r\n"), 0, 0, 0,
	    "L:DATA\nD:A: b\\r\\n\\rx\\r\\n f=bare-cr s=10 l=2 h=1/0 8=0 0=0\n"
	    "P:0\n" },
	/* size limit (RFC 1870): stop storing, read on, flag */
	{ "size-exact", S("DATA\r\nhello\r\n.\r\n"), 0, 7, 0,
	    "L:DATA\nD:hello\\r\\n f=- s=7 l=1 h=0/0 8=0 0=0\nP:0\n" },
	{ "size-plus-1", S("DATA\r\nhello\r\n.\r\nQUIT\r\n"), 0, 6, 0,
	    "L:DATA\nD:hello\\r f=too-big s=7 l=1 h=0/0 8=0 0=0\nL:QUIT\n"
	    "P:0\n" },
	{ "size-small", S("DATA\r\nhello world\r\n.\r\n"), 0, 5, 0,
	    "L:DATA\nD:hello f=too-big s=13 l=1 h=0/0 8=0 0=0\nP:0\n" },
	{ "size-one", S("DATA\r\n..ab\r\n.\r\n"), 0, 1, 0,
	    "L:DATA\nD:. f=too-big s=5 l=1 h=0/0 8=0 0=0\nP:0\n" },
	{ "outbuf-full", S("DATA\r\nhello world\r\n.\r\nQUIT\r\n"), 0, 0, 4,
	    "L:DATA\nD:hell f=too-big s=13 l=1 h=0/0 8=0 0=0\nL:QUIT\nP:0\n" },
	{ "outbuf-exact", S("DATA\r\nhi\r\n.\r\n"), 0, 0, 4,
	    "L:DATA\nD:hi\\r\\n f=- s=4 l=1 h=0/0 8=0 0=0\nP:0\n" },
	/* the DATA line itself is an ordinary line: limits apply */
	{ "data-after-bad-line", S("NOOP\nDATA\r\nDATA\r\n.\r\n"), 0, 0, 0,
	    "E:bare-lf\nL:DATA\nD: f=- s=0 l=0 h=0/0 8=0 0=0\nP:0\n" },
};

/* Lines at the default limit (SMTP_CMD_LINE_MAX_MAILRCPT, 2048 with
 * CRLF), built at run time. */
static void
test_default_limit(void **state)
{
	static const struct sess_row row = { "default", NULL, 0, 0, 0, 0,
		NULL };
	static char in[4200];
	size_t n;
	struct buf want;

	(void)state;
	assert_int_equal(SMTP_LINE_LIMIT_DEFAULT, SMTP_CMD_LINE_MAX_MAILRCPT);
	buf_init(&want, 1 << 16);
	/* 2046 + CRLF = 2048: accepted */
	memset(in, 'a', 2046);
	memcpy(in + 2046, "\r\n", 2);
	n = 2048;
	buf_adds(&want, "L:");
	buf_add(&want, in, 2046);
	buf_adds(&want, "\nP:0\n");
	table_check_splits(run, &row, in, n, buf_cstr(&want));
	/* 2047 + CRLF = 2049: refused, then the next line is read */
	memset(in, 'a', 2047);
	memcpy(in + 2047, "\r\nQUIT\r\n", 8);
	n = 2055;
	table_check_splits(run, &row, in, n, "E:too-long\nL:QUIT\nP:0\n");
	/* 4000 octets, no CRLF: refused once, nothing kept */
	memset(in, 'a', 4000);
	table_check_splits(run, &row, in, 4000, "E:too-long\nP:0\n");
	buf_reset(&want);
}

/* RFC 5321 §4.5.3.1.6: text lines of 1000 octets with CRLF. */
static void
test_long_line(void **state)
{
	static const struct sess_row row = { "long", NULL, 0, 0, 0, 0, NULL };
	char in[1200];
	char want[4000];
	size_t n;

	(void)state;
	memcpy(in, "DATA\r\n", 6);
	memset(in + 6, 'x', 998);
	memcpy(in + 6 + 998, "\r\n.\r\n", 5);
	n = 6 + 998 + 5;
	snprintf(want, sizeof(want),
	    "L:DATA\nD:%.998s\\r\\n f=- s=1000 l=1 h=0/0 8=0 0=0\nP:0\n",
	    in + 6);
	table_check_splits(run, &row, in, n, want);
	memset(in + 6, 'x', 999);
	memcpy(in + 6 + 999, "\r\n.\r\n", 5);
	n = 6 + 999 + 5;
	snprintf(want, sizeof(want),
	    "L:DATA\nD:%.999s\\r\\n f=long-line s=1001 l=1 h=0/0 8=0 0=0\n"
	    "P:0\n",
	    in + 6);
	table_check_splits(run, &row, in, n, want);
}

/* CVE-2011-0411: whatever follows STARTTLS in the same read is visible. */
static void
test_starttls_pending(void **state)
{
	static const char in[] = "STARTTLS\r\nMAIL FROM:<a@b>\r\n";
	struct smtp_line *r;
	const char *line;
	size_t len;

	(void)state;
	r = smtp_line_new(0);
	assert_non_null(r);
	assert_int_equal(smtp_line_push(r, in, sizeof(in) - 1), 0);
	assert_int_equal(smtp_line_pending(r), sizeof(in) - 1);
	assert_int_equal(smtp_line_next(r, &line, &len, NULL), 1);
	assert_int_equal(len, 8);
	assert_memory_equal(line, "STARTTLS", 8);
	assert_int_equal(smtp_line_pending(r), 17);
	smtp_line_clear(r);
	assert_int_equal(smtp_line_pending(r), 0);
	assert_int_equal(smtp_line_next(r, &line, &len, NULL), 0);
	/* the clean case */
	assert_int_equal(smtp_line_push(r, "STARTTLS\r\n", 10), 0);
	assert_int_equal(smtp_line_next(r, &line, &len, NULL), 1);
	assert_int_equal(smtp_line_pending(r), 0);
	smtp_line_free(r);
}

/* Room, ENOSPC, phases, API edges. */
static void
test_api(void **state)
{
	struct smtp_line *r;
	enum smtp_line_error err;
	struct buf out;
	const char *line;
	size_t len;
	char *big;

	(void)state;
	assert_null(smtp_line_new(2));
	assert_null(smtp_line_new(SMTP_LINE_INPUT_MAX + 1));
	r = smtp_line_new(SMTP_LINE_INPUT_MAX);
	assert_non_null(r);
	smtp_line_free(r);
	smtp_line_free(NULL);
	r = smtp_line_new(0);
	assert_non_null(r);
	buf_init(&out, 1024);
	/* content outside DATA, lines inside DATA: STATE */
	assert_int_equal(smtp_line_data(r, &out, &err), -1);
	assert_int_equal(err, SMTP_LINE_ERR_STATE);
	assert_int_equal(smtp_line_data_begin(r, 0), 0);
	assert_int_equal(smtp_line_data_begin(r, 0), -1);
	assert_int_equal(smtp_line_next(r, &line, &len, &err), -1);
	assert_int_equal(err, SMTP_LINE_ERR_STATE);
	assert_int_equal(smtp_line_cmd_error(err), SMTP_CMD_OK);
	smtp_line_clear(r);
	assert_int_equal(smtp_line_next(r, &line, &len, NULL), 0);
	/* room and back-pressure */
	big = calloc(1, SMTP_LINE_INPUT_MAX + 1);
	assert_non_null(big);
	assert_int_equal(smtp_line_room(r), SMTP_LINE_INPUT_MAX);
	assert_int_equal(smtp_line_push(r, big, SMTP_LINE_INPUT_MAX + 1), -1);
	assert_int_equal(smtp_line_pending(r), 0);
	assert_int_equal(smtp_line_push(r, "NOOP\r\nNO", 8), 0);
	assert_int_equal(smtp_line_room(r), SMTP_LINE_INPUT_MAX - 8);
	assert_int_equal(smtp_line_next(r, &line, &len, NULL), 1);
	assert_int_equal(smtp_line_room(r), SMTP_LINE_INPUT_MAX - 2);
	assert_int_equal(smtp_line_push(r, big, SMTP_LINE_INPUT_MAX - 1), -1);
	assert_int_equal(smtp_line_push(r, big, SMTP_LINE_INPUT_MAX - 2), 0);
	assert_int_equal(smtp_line_room(r), 0);
	assert_int_equal(smtp_line_push(r, "x", 1), -1);
	assert_int_equal(smtp_line_push(r, "", 0), 0);
	/* "NO" + NULs: too long at the limit, all of it dropped */
	assert_int_equal(smtp_line_next(r, &line, &len, &err), -1);
	assert_int_equal(err, SMTP_LINE_ERR_TOO_LONG);
	assert_int_equal(smtp_line_next(r, &line, &len, &err), 0);
	assert_int_equal(smtp_line_pending(r), 0);
	/* error mapping to the smtp_cmd reply table */
	assert_int_equal(smtp_line_cmd_error(SMTP_LINE_ERR_TOO_LONG),
	    SMTP_CMD_ERR_LINE_TOO_LONG);
	assert_int_equal(
	    smtp_line_cmd_error(SMTP_LINE_ERR_BARE_LF), SMTP_CMD_ERR_BAD_CHAR);
	assert_int_equal(
	    smtp_line_cmd_error(SMTP_LINE_ERR_BARE_CR), SMTP_CMD_ERR_BAD_CHAR);
	assert_int_equal(smtp_line_cmd_error(SMTP_LINE_OK), SMTP_CMD_OK);
	assert_string_equal(
	    smtp_line_error_name(SMTP_LINE_ERR_COUNT), "unknown");
	assert_string_equal(smtp_line_error_name(SMTP_LINE_OK), "ok");
	/* the info of the last DATA survives until the next begin */
	smtp_line_clear(r);
	assert_int_equal(smtp_line_push(r, "DATA\r\nab\r\n.\r\n", 13), 0);
	assert_int_equal(smtp_line_next(r, &line, &len, NULL), 1);
	assert_int_equal(smtp_line_data_begin(r, 0), 0);
	assert_int_equal(smtp_line_data(r, &out, NULL), 1);
	assert_int_equal(smtp_line_data_info(r)->size, 4);
	assert_int_equal(smtp_line_next(r, &line, &len, NULL), 0);
	assert_int_equal(smtp_line_data_info(r)->size, 4);
	free(big);
	buf_reset(&out);
	smtp_line_free(r);
}

/* A big message streamed through in 4 KiB pushes, out emptied after
 * each: the reader never holds more than one push. */
static void
test_stream(void **state)
{
	struct smtp_line *r;
	struct buf out;
	char chunk[4096];
	size_t i, total = 0;
	int rc = 0;

	(void)state;
	r = smtp_line_new(0);
	assert_non_null(r);
	buf_init(&out, sizeof(chunk));
	assert_int_equal(smtp_line_data_begin(r, 100000), 0);
	memset(chunk, 'y', sizeof(chunk));
	for (i = 0; i < sizeof(chunk); i += 64)
		memcpy(chunk + i + 62, "\r\n", 2);
	for (i = 0; i < 50; i++) {
		assert_int_equal(smtp_line_push(r, chunk, sizeof(chunk)), 0);
		rc = smtp_line_data(r, &out, NULL);
		assert_int_equal(rc, 0);
		total += out.len;
		buf_clear(&out);
		assert_int_equal(smtp_line_pending(r), 0);
	}
	assert_int_equal(smtp_line_push(r, ".\r\n", 3), 0);
	assert_int_equal(smtp_line_data(r, &out, NULL), 1);
	assert_int_equal(total, 100000);
	assert_int_equal(smtp_line_data_info(r)->size, 50 * sizeof(chunk));
	assert_int_equal(smtp_line_data_info(r)->lines, 50 * 64);
	assert_int_equal(smtp_line_data_info(r)->flags, SMTP_DATA_F_TOO_BIG);
	buf_reset(&out);
	smtp_line_free(r);
}

/*
 * The reader against a model: the DATA reader of RFC 5321 §4.5.2 one
 * octet at a time, with the statistics of smtp_line.h kept per octet
 * (the reader counts runs of ordinary octets at once and hands out lines
 * in runs).  Random messages over an alphabet of the octets that matter
 * (".", CR, LF, NUL, 8-bit, ":", space, tab), with lines short and near
 * SMTP_LINE_TEXT_MAX, fed in random pieces: content and statistics must
 * be the model's.
 */
struct model {
	enum { M_BOL, M_DOT, M_DOT_CR, M_MID, M_CR, M_END } ds;
	enum { H_BOL, H_BOL_CR, H_NAME, H_VALUE, H_BODY } hs;
	int prev_cr;
	size_t linelen;
	struct smtp_data_info info;
	struct buf out;
};

static int
model_ftext(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

static void
model_octet(struct model *m, unsigned char c)
{
	struct smtp_data_info *in = &m->info;

	buf_addc(&m->out, (char)c);
	in->size++;
	if (m->prev_cr && c != '\n')
		in->flags |= SMTP_DATA_F_BARE_CR;
	if (c == '\n' && m->prev_cr) {
		in->lines++;
		if (m->linelen + 1 > SMTP_LINE_TEXT_MAX)
			in->flags |= SMTP_DATA_F_LONG_LINE;
		m->linelen = 0;
	} else {
		if (c == '\n')
			in->flags |= SMTP_DATA_F_BARE_LF;
		else if (c == 0) {
			in->flags |= SMTP_DATA_F_NUL;
			in->nul++;
		} else if (c >= 0x80) {
			in->flags |= SMTP_DATA_F_8BIT;
			in->eightbit++;
		}
		m->linelen++;
	}
	switch (m->hs) {
	case H_BOL:
		if (c == ' ' || c == '\t')
			m->hs = in->header_lines > 0 ? H_VALUE : H_BODY;
		else if (c == '\r')
			m->hs = H_BOL_CR;
		else
			m->hs = model_ftext(c) ? H_NAME : H_BODY;
		break;
	case H_BOL_CR:
		if (c == '\n')
			in->header_end = 1;
		m->hs = H_BODY;
		break;
	case H_NAME:
		if (c == ':')
			m->hs = H_VALUE;
		else if (!model_ftext(c))
			m->hs = H_BODY;
		break;
	case H_VALUE:
		if (c == '\n' && m->prev_cr) {
			in->header_lines++;
			m->hs = H_BOL;
		}
		break;
	case H_BODY:
		break;
	}
	m->prev_cr = c == '\r';
}

/* One input octet; returns 1 at the end of data. */
static int
model_input(struct model *m, unsigned char c)
{
	for (;;) {
		switch (m->ds) {
		case M_BOL:
			if (c == '.') {
				m->ds = M_DOT;
				return 0;
			}
			m->ds = M_MID;
			continue;
		case M_DOT:
			if (c == '\r') {
				m->ds = M_DOT_CR;
				return 0;
			}
			m->ds = M_MID; /* the dot is deleted */
			continue;
		case M_DOT_CR:
			if (c == '\n') {
				m->ds = M_END;
				return 1;
			}
			model_octet(m, '\r');
			m->ds = M_MID;
			continue;
		case M_CR:
			if (c == '\n') {
				model_octet(m, '\n');
				m->ds = M_BOL;
				return 0;
			}
			m->ds = M_MID;
			continue;
		case M_MID:
			model_octet(m, c);
			if (c == '\r')
				m->ds = M_CR;
			return 0;
		case M_END:
			return 1;
		}
	}
}

static uint64_t model_seed = 0x9e3779b97f4a7c15ULL;

static uint32_t
model_rand(void)
{
	model_seed ^= model_seed << 13;
	model_seed ^= model_seed >> 7;
	model_seed ^= model_seed << 17;
	return (uint32_t)(model_seed >> 16);
}

/* A random message (without the final "." CRLF) into b. */
static void
model_message(struct buf *b)
{
	static const unsigned char odd[] = { '.', '\r', '\n', 0, 0x80, 0xff,
		':', ' ', '\t', '.', '\r', '\n' };
	size_t nlines = model_rand() % 40, i, j, len;
	int rate = (int)(model_rand() % 4); /* odd octets: none to many */

	for (i = 0; i < nlines; i++) {
		switch (model_rand() % 8) {
		case 0:
			len = 0;
			break;
		case 1: /* around the line limit */
			len = SMTP_LINE_TEXT_MAX - 4 + model_rand() % 8;
			break;
		case 2:
			len = model_rand() % 300;
			break;
		default:
			len = model_rand() % 90;
		}
		for (j = 0; j < len; j++) {
			unsigned char c;

			if (rate > 0 &&
			    model_rand() % (unsigned)(40 / rate) == 0)
				c = odd[model_rand() % sizeof(odd)];
			else if (j == 0 && model_rand() % 6 == 0)
				c = '.';
			else if (i < 3 && j == 4)
				c = ':';
			else
				c = (unsigned char)('a' + model_rand() % 26);
			buf_addc(b, (char)c);
		}
		buf_adds(b, "\r\n");
	}
}

static void
test_model(void **state)
{
	struct buf msg, out;
	int round;

	(void)state;
	buf_init(&msg, 1 << 20);
	buf_init(&out, 1 << 20);
	for (round = 0; round < 3000; round++) {
		struct smtp_line *r = smtp_line_new(0);
		const struct smtp_data_info *got;
		struct model m;
		size_t i, end = 0, at = 0;
		int done = 0;

		assert_non_null(r);
		memset(&m, 0, sizeof(m));
		buf_init(&m.out, 1 << 20);
		buf_clear(&msg);
		buf_clear(&out);
		model_message(&msg);
		buf_adds(&msg, ".\r\n");
		for (i = 0; i < msg.len && !done; i++)
			if (model_input(&m, (unsigned char)msg.data[i])) {
				done = 1;
				end = i + 1;
			}
		assert_true(done);
		assert_int_equal(smtp_line_data_begin(r, 0), 0);
		/* Pieces of 1 to 9000 octets, smaller more often. */
		for (done = 0; at < end && !done;) {
			size_t k =
			    1 + model_rand() % (model_rand() % 2 ? 16 : 9000);
			int rc;

			if (k > end - at)
				k = end - at;
			assert_int_equal(
			    smtp_line_push(r, msg.data + at, k), 0);
			at += k;
			rc = smtp_line_data(r, &out, NULL);
			assert_true(rc == 0 || rc == 1);
			done = rc == 1;
		}
		assert_true(done);
		assert_int_equal(at, end);
		assert_int_equal(smtp_line_pending(r), 0);
		got = smtp_line_data_info(r);
		assert_int_equal(out.len, m.out.len);
		assert_memory_equal(out.data, m.out.data, out.len);
		assert_int_equal(got->flags, m.info.flags);
		assert_int_equal(got->size, m.info.size);
		assert_int_equal(got->lines, m.info.lines);
		assert_int_equal(got->eightbit, m.info.eightbit);
		assert_int_equal(got->nul, m.info.nul);
		assert_int_equal(got->header_lines, m.info.header_lines);
		assert_int_equal(got->header_end, m.info.header_end);
		buf_reset(&m.out);
		smtp_line_free(r);
	}
	buf_reset(&msg);
	buf_reset(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_limit),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_starttls_pending),
		cmocka_unit_test(test_api),
		cmocka_unit_test(test_stream),
		cmocka_unit_test(test_model),
	};
	int fails = 0;

	fails += TABLE_RUN("cmd", test_sess, cmd_rows, sess_name);
	fails += TABLE_RUN("data", test_sess, data_rows, sess_name);
	fails += cmocka_run_group_tests_name("smtp_line", tests, NULL, NULL);
	return fails;
}
