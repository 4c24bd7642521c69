/*
 * reply: remote replies as kept and shown.  See reply.h.
 */
#include <string.h>

#include "delivery/reply.h"
#include "msgtrk/dsn.h"

/* Appends n octets of s to out (len so far, cap the limit); returns 0,
 * or -1 once the limit is reached (what fits is written). */
static int
put(char *out, size_t *len, size_t cap, const char *s, size_t n)
{
	int full = 0;

	if (n > cap - *len) {
		n = cap - *len;
		full = 1;
	}
	memcpy(out + *len, s, n);
	*len += n;
	return full || *len == cap ? -1 : 0;
}

size_t
reply_format(const struct smtp_reply_msg *r, char *out, size_t outsize)
{
	char code[5];
	const char *t;
	size_t cap, len = 0, i, tl, sl = strlen(r->status);

	if (outsize == 0)
		return 0;
	cap = outsize - 1 < REPLY_TEXT_MAX ? outsize - 1 : REPLY_TEXT_MAX;
	for (i = 0; i < r->nlines; i++) {
		t = smtp_reply_line(r, i, &tl);
		/* "550-" before the last line, "550 " on it (RFC 5321
		 * §4.2.1); one SPACE between lines (RFC 3461 §9.2). */
		code[0] = (char)('0' + r->code / 100 % 10);
		code[1] = (char)('0' + r->code / 10 % 10);
		code[2] = (char)('0' + r->code % 10);
		code[3] = i + 1 < r->nlines ? '-' : ' ';
		if ((i > 0 && put(out, &len, cap, " ", 1) == -1) ||
		    put(out, &len, cap, code,
		        code[3] == ' ' && sl == 0 && tl == 0 ? 3 : 4) == -1)
			break;
		if (sl > 0 &&
		    (put(out, &len, cap, r->status, sl) == -1 ||
		        (tl > 0 && put(out, &len, cap, " ", 1) == -1)))
			break;
		if (put(out, &len, cap, t, tl) == -1)
			break;
	}
	out[len] = '\0';
	return len;
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int
reply_is_smtp(const char *s)
{
	return s != NULL && s[0] >= '2' && s[0] <= '5' && is_digit(s[1]) &&
	    is_digit(s[2]) && (s[3] == ' ' || s[3] == '-' || s[3] == '\0');
}

size_t
reply_diag_lines(const char *s, char *out, size_t outsize)
{
	size_t n = strlen(s), len = 0, lines = 0, cut, k;
	const char *p = s, *end = s + n;
	int smtp = reply_is_smtp(s);
	int more = 0; /* in a line "DDD-...": " DDD" begins the next */

	if (outsize == 0)
		return 0;
	while (p < end && *p == ' ')
		p++;
	while (p < end && lines < DSN_DIAG_LINES_MAX) {
		/* A piece that begins a line of the reply says whether one
		 * follows; the rest of a line cut for length does not. */
		if (smtp && end - p >= 4 && memcmp(p, s, 3) == 0 &&
		    (p[3] == '-' || p[3] == ' '))
			more = p[3] == '-';
		/* The line: up to the next line of the reply ... */
		cut = (size_t)(end - p);
		if (more)
			for (k = 4; k + 4 <= (size_t)(end - p); k++)
				if (p[k] == ' ' &&
				    memcmp(p + k + 1, s, 3) == 0 &&
				    (k + 4 == (size_t)(end - p) ||
				        p[k + 4] == ' ' || p[k + 4] == '-')) {
					cut = k;
					break;
				}
		/* ... and at most DSN_DIAG_LINE_MAX octets. */
		if (cut > DSN_DIAG_LINE_MAX) {
			for (k = DSN_DIAG_LINE_MAX; k > 0 && p[k] != ' '; k--)
				;
			cut = k > 0 ? k : DSN_DIAG_LINE_MAX;
		}
		while (cut > 0 && p[cut - 1] == ' ')
			cut--;
		if (len + (lines > 0) + cut + 1 > outsize)
			break;
		if (lines > 0)
			out[len++] = '\n';
		memcpy(out + len, p, cut);
		len += cut;
		lines++;
		p += cut;
		while (p < end && *p == ' ')
			p++;
	}
	out[len] = '\0';
	return lines;
}
