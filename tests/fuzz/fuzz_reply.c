/*
 * fuzz_reply: what msgtrkd keeps of a remote reply and what a DSN makes
 * of it.  The input is a server's byte stream; every reply the reader
 * returns goes through reply_format() (src/delivery/reply.c, included
 * here: the fuzz build links libmsgtrk only), is escaped as the delivery
 * code stores it, and is cut into Diagnostic-Code lines by
 * reply_diag_lines().  Invariants: the kept text is at most
 * REPLY_TEXT_MAX octets, begins with the reply's code (reply_is_smtp),
 * holds no CR or LF; the lines are 1..DSN_DIAG_LINES_MAX, each non-empty,
 * without edge blanks, at most DSN_DIAG_LINE_MAX octets; and
 * dsn_generate() takes them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/reply.c"
#include "msgtrk/buf.h"
#include "msgtrk/dsn.h"
#include "msgtrk/smtp_reply.h"
#include "msgtrk/str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct smtp_reply_msg *m)
{
	char text[REPLY_TEXT_MAX + 1], kept[4 * REPLY_TEXT_MAX + 1];
	char lines[sizeof(kept) + DSN_DIAG_LINES_MAX + 1];
	size_t len, n, k;
	const char *l, *e;
	struct dsn_rcpt r;
	struct dsn d;
	struct buf b;

	len = reply_format(m, text, sizeof(text));
	if (len > REPLY_TEXT_MAX || strlen(text) != len ||
	    !reply_is_smtp(text) || strpbrk(text, "\r\n") != NULL)
		abort();
	str_printable(kept, sizeof(kept), text, len);
	n = reply_diag_lines(kept, lines, sizeof(lines));
	if (n < 1 || n > DSN_DIAG_LINES_MAX)
		abort();
	for (k = 0, l = lines; k < n; k++, l = e + 1) {
		e = strchr(l, '\n');
		if (e == NULL)
			e = l + strlen(l);
		if (e == l || (size_t)(e - l) > DSN_DIAG_LINE_MAX ||
		    *l == ' ' || e[-1] == ' ')
			abort();
		if (*e == '\0' && k + 1 != n)
			abort();
	}
	memset(&r, 0, sizeof(r));
	r.final_rcpt = "x@dest.test";
	r.action = TSTATUS_ACTION_FAILED;
	r.status = "5.0.0";
	r.remote_mta = "[127.0.0.1]";
	r.diagnostic = lines;
	memset(&d, 0, sizeof(d));
	d.sender = "a@src.test";
	d.date.t = 1700000000;
	d.message_id = "<dsn@mx.test>";
	d.reporting_mta = "mx.test";
	d.rcpt = &r;
	d.nrcpt = 1;
	d.boundary = "=_fuzz-reply";
	buf_init(&b, 1 << 20);
	if (dsn_generate(&d, &b, NULL) == -1 &&
	    strstr(kept, "=_fuzz-reply") == NULL)
		abort();
	buf_reset(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_reply_parser *p = smtp_reply_parser_new(0);
	const struct smtp_reply_msg *m;
	size_t off = 0, n;

	if (p == NULL)
		abort();
	while (off < size) {
		n = size - off;
		if (n > smtp_reply_room(p))
			n = smtp_reply_room(p);
		if (n == 0 || smtp_reply_push(p, data + off, n) == -1)
			break;
		off += n;
		while (smtp_reply_next(p, &m, NULL) == 1)
			check(m);
	}
	smtp_reply_parser_free(p);
	return 0;
}
