/*
 * test_hdrscan: the header scan of a submission (RFC 6409 §8: Date: and
 * Message-ID: added when missing; the Subject kept for the sender's
 * list).  A table of contents, each fed whole, byte by byte and split at
 * every offset (tests/unit/table.h); the transcript is the flags and the
 * Subject.  Then the bound: a header longer than HDRSCAN_MAX is "cut".
 */
#include <stdio.h>
#include <string.h>

#include "msgtrk/buf.h"
#include "msgtrk/hdrscan.h"
#include "table.h"

struct scan_row {
	const char *name;
	const char *in;
	const char *want; /* "D M S C|subject" */
};

static const struct scan_row scan_rows[] = {
	{ "all three",
	    "Date: Sun, 22 Nov 2026 06:37:36 +0000\r\n"
	    "Message-ID: <a@b>\r\nSubject: hello\r\n\r\nbody\r\n",
	    "DMS-|hello" },
	{ "none", "From: a@b\r\nTo: c@d\r\n\r\nbody\r\n", "----|" },
	{ "subject only", "Subject: hi there\r\n\r\n", "--S-|hi there" },
	{ "names ignore case",
	    "DATE: x\r\nmessage-id: <x@y>\r\nsUbJeCt: s\r\n\r\n", "DMS-|s" },
	{ "folded subject",
	    "Subject: a long\r\n  subject\r\n\tfolded\r\nDate: x\r\n\r\n",
	    "D-S-|a long subject folded" },
	{ "blanks collapse and trail", "Subject:   a \t  b   \r\n\r\n",
	    "--S-|a b" },
	{ "first subject kept", "Subject: one\r\nSubject: two\r\n\r\n",
	    "--S-|one" },
	{ "8-bit and control replaced", "Subject: caf\xc3\xa9\x01!\r\n\r\n",
	    "--S-|caf??"
	    "?!" },
	{ "encoded word kept", "Subject: =?UTF-8?B?w6k=?=\r\n\r\n",
	    "--S-|=?UTF-8?B?w6k=?=" },
	{ "empty subject", "Subject:\r\n\r\n", "--S-|" },
	/* fields in the body are not the header's */
	{ "date in body", "From: a@b\r\n\r\nDate: x\r\nMessage-ID: <y>\r\n",
	    "----|" },
	{ "no header at all", "hello\r\nDate: x\r\n", "----|" },
	{ "body starts with blank line", "\r\nDate: x\r\n", "----|" },
	{ "first line folded", " Date: x\r\n", "----|" },
	{ "colon first", ": x\r\nDate: y\r\n", "----|" },
	{ "space in name ends", "Not a field: x\r\nDate: y\r\n", "----|" },
	{ "obsolete blank before colon", "Date : x\r\nSubject\t: s\r\n\r\n",
	    "D-S-|s" },
	{ "prefix names are not ours",
	    "Resent-Date: x\r\nX-Message-ID: y\r\nSubjects: z\r\n\r\n",
	    "----|" },
	{ "longer names are not ours",
	    "Date-and-a-very-long-name-of-forty-octets: x\r\n\r\n", "----|" },
	{ "header without an end", "Date: x\r\nMessage-ID: <m@n>", "DM--|" },
	{ "bare LF lines", "Date: x\nSubject: s\n\nDate: y\n", "D-S-|s" },
	{ "bare CR at line start", "Subject: s\r\n\rDate: y\r\n", "--S-|s" },
	{ "CR inside a value", "Subject: a\rb\r\n\r\n", "--S-|ab" },
	{ "empty content", "", "----|" },
};

static const char *
scan_name(const void *row)
{
	return ((const struct scan_row *)row)->name;
}

static void
scan_feed(const void *ctx, const char *in, size_t n, const size_t *cuts,
    size_t ncuts, struct buf *out)
{
	struct hdrscan h;
	unsigned int f;
	size_t i, from = 0;

	(void)ctx;
	hdrscan_init(&h);
	for (i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : n;

		hdrscan_push(&h, in + from, to - from);
		from = to;
	}
	f = hdrscan_end(&h);
	buf_clear(out);
	buf_addf(out, "%c%c%c%c|%s", (f & HDRSCAN_F_DATE) ? 'D' : '-',
	    (f & HDRSCAN_F_MESSAGE_ID) ? 'M' : '-',
	    (f & HDRSCAN_F_SUBJECT) ? 'S' : '-',
	    (f & HDRSCAN_F_CUT) ? 'C' : '-', hdrscan_subject(&h));
}

static void
test_scan(void **state)
{
	const struct scan_row *r = *state;

	table_check_splits(scan_feed, r, r->in, strlen(r->in), r->want);
}

/* The bound: a header that goes on past HDRSCAN_MAX is cut (a Date: may
 * follow); one whose empty line comes at HDRSCAN_MAX is whole. */
static void
test_bound(void **state)
{
	static char big[HDRSCAN_MAX + 64];
	struct hdrscan h;
	size_t n;

	(void)state;
	/* X-Pad: aaaa...\r\n up to HDRSCAN_MAX - 2, then the empty line */
	memset(big, 'a', sizeof(big));
	memcpy(big, "X-Pad: ", 7);
	n = HDRSCAN_MAX - 2;
	memcpy(big + n - 2, "\r\n\r\n", 4);
	hdrscan_init(&h);
	hdrscan_push(&h, big, n + 2);
	assert_true(hdrscan_done(&h));
	assert_int_equal(hdrscan_end(&h), 0);
	/* one octet more before the empty line: cut */
	memset(big, 'a', sizeof(big));
	memcpy(big, "X-Pad: ", 7);
	memcpy(big + n - 1, "\r\n\r\nDate: x\r\n", 13);
	hdrscan_init(&h);
	hdrscan_push(&h, big, n + 12);
	assert_true(hdrscan_done(&h));
	assert_int_equal(hdrscan_end(&h), HDRSCAN_F_CUT);
	/* a Subject over HDRSCAN_SUBJECT_MAX is cut to it */
	memset(big, 'b', sizeof(big));
	memcpy(big, "Subject: ", 9);
	memcpy(big + 9 + 300, "\r\n\r\n", 4);
	hdrscan_init(&h);
	hdrscan_push(&h, big, 9 + 300 + 4);
	assert_int_equal(hdrscan_end(&h), HDRSCAN_F_SUBJECT);
	assert_int_equal(strlen(hdrscan_subject(&h)), HDRSCAN_SUBJECT_MAX);
	/* a blank at the cut is not kept (fuzz_hdrscan found it) */
	memset(big, 'b', sizeof(big));
	memcpy(big, "Subject: ", 9);
	big[9 + HDRSCAN_SUBJECT_MAX - 1] = ' ';
	memcpy(big + 9 + 300, "\r\n\r\n", 4);
	hdrscan_init(&h);
	hdrscan_push(&h, big, 9 + 300 + 4);
	assert_int_equal(hdrscan_end(&h), HDRSCAN_F_SUBJECT);
	assert_int_equal(strlen(hdrscan_subject(&h)), HDRSCAN_SUBJECT_MAX - 1);
	assert_true(hdrscan_subject(&h)[HDRSCAN_SUBJECT_MAX - 2] == 'b');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bound),
	};
	int failed = 0;

	failed += TABLE_RUN("hdrscan", test_scan, scan_rows, scan_name);
	failed +=
	    cmocka_run_group_tests_name("hdrscan_bound", tests, NULL, NULL);
	return failed != 0;
}
