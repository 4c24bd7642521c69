/*
 * cli/sendmail_msg.c: what "msgtrk sendmail" does to a message before
 * submitting it (sendmail.h): RFC 5322 address lists and the rewrite of
 * the header section.  No I/O: table-tested (tests/unit/test_sendmail.c)
 * and fuzzed (tests/fuzz/fuzz_sendmail.c), since a header may carry text
 * from anyone (a web form behind PHP's mail()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "cli/cli.h"
#include "cli/send.h"
#include "cli/sendmail.h"
#include "msgtrk/b64.h"
#include "msgtrk/buf.h"
#include "msgtrk/date.h"
#include "msgtrk/str.h"

/* RFC 2047 §2: an encoded-word is at most 75 characters; 45 octets make
 * 60 base64 characters plus the 12 of "=?UTF-8?B?" and "?=". */
#define SENDMAIL_EW_CHUNK 45

void
sendmail_rcpts_free(struct sendmail_rcpts *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* Adds addr (n octets) to r unless it is there already. */
static int
sendmail_rcpt_add(struct sendmail_rcpts *r, const char *addr, size_t n,
    const char *domain, char *err, size_t errsize)
{
	char a[SEND_ADDR_MAX + 2];
	size_t i;
	int w;

	if (memchr(addr, '@', n) != NULL)
		w = snprintf(a, sizeof(a), "%.*s", (int)n, addr);
	else
		w = snprintf(a, sizeof(a), "%.*s@%s", (int)n, addr, domain);
	if (w < 0 || (size_t)w > SEND_ADDR_MAX) {
		snprintf(err, errsize, "address longer than %d octets",
		    SEND_ADDR_MAX);
		return -1;
	}
	if (!cli_addr_ok(a)) {
		char q[128];

		str_printable(q, sizeof(q), addr, n);
		snprintf(err, errsize, "\"%s\": not an address", q);
		return -1;
	}
	for (i = 0; i < r->n; i++)
		if (strcmp(r->v[i], a) == 0)
			return 0;
	if (r->n >= SEND_RCPT_MAX) {
		snprintf(
		    err, errsize, "more than %d recipients", SEND_RCPT_MAX);
		return -1;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 8;
		char **v = realloc(r->v, cap * sizeof(*v));

		if (v == NULL) {
			snprintf(err, errsize, "out of memory");
			return -1;
		}
		r->v = v;
		r->cap = cap;
	}
	if ((r->v[r->n] = strdup(a)) == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	r->n++;
	return 0;
}

/* One element of an address list: the angle address if there was one,
 * else the text outside comments, trimmed.  Empty elements (a trailing
 * comma, an empty group, "<>") are skipped. */
static int
sendmail_flush(struct sendmail_rcpts *r, const struct buf *cur,
    const struct buf *ang, int had_angle, const char *domain, char *err,
    size_t errsize)
{
	const char *p = had_angle ? ang->data : cur->data;
	size_t n = had_angle ? ang->len : cur->len;
	const char *colon;

	while (n > 0 && (*p == ' ' || *p == '\t'))
		p++, n--;
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	/* RFC 5322 §4.4 obs-route: "<@a,@b:user@c>" is "user@c". */
	if (had_angle && n > 0 && p[0] == '@' &&
	    (colon = memchr(p, ':', n)) != NULL) {
		n -= (size_t)(colon + 1 - p);
		p = colon + 1;
	}
	if (n == 0)
		return 0;
	return sendmail_rcpt_add(r, p, n, domain, err, errsize);
}

int
sendmail_addrlist(const char *s, size_t n, const char *domain,
    struct sendmail_rcpts *r, char *err, size_t errsize)
{
	struct buf cur, ang;
	int quoted = 0, in_angle = 0, had_angle = 0, rc = -1;
	size_t i, depth = 0;

	buf_init(&cur, SEND_ADDR_MAX + 64);
	buf_init(&ang, SEND_ADDR_MAX + 64);
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		struct buf *b = in_angle ? &ang : &cur;

		if (quoted) {
			if (ch == '\\' && i + 1 < n) {
				if (buf_addc(b, ch) == -1)
					goto toolong;
				ch = (unsigned char)s[++i];
			} else if (ch == '"')
				quoted = 0;
			if (buf_addc(b, ch) == -1)
				goto toolong;
			continue;
		}
		if (depth > 0) { /* RFC 5322 §3.2.2: comments nest */
			if (ch == '\\')
				i++;
			else if (ch == '(')
				depth++;
			else if (ch == ')')
				depth--;
			continue;
		}
		switch (ch) {
		case '(':
			depth = 1;
			break;
		case '"':
			quoted = 1;
			if (buf_addc(b, ch) == -1)
				goto toolong;
			break;
		case '<':
			if (in_angle) {
				snprintf(err, errsize, "'<' inside <...>");
				goto done;
			}
			in_angle = had_angle = 1;
			buf_clear(&ang);
			break;
		case '>':
			if (!in_angle) {
				snprintf(err, errsize, "'>' without '<'");
				goto done;
			}
			in_angle = 0;
			break;
		case ':':
			if (in_angle) {
				if (buf_addc(b, ch) == -1)
					goto toolong;
				break;
			}
			/* A group's display name (RFC 5322 §3.4). */
			buf_clear(&cur);
			had_angle = 0;
			break;
		case ',':
		case ';':
			if (in_angle) {
				if (buf_addc(b, ch) == -1)
					goto toolong;
				break;
			}
			if (sendmail_flush(r, &cur, &ang, had_angle, domain,
			        err, errsize) == -1)
				goto done;
			buf_clear(&cur);
			buf_clear(&ang);
			had_angle = 0;
			break;
		case '\r':
		case '\n':
			break; /* folding */
		case ' ':
		case '\t':
			if (!in_angle && buf_addc(b, ' ') == -1)
				goto toolong;
			break;
		default:
			/* Text after an angle address is not part of it. */
			if (!in_angle && had_angle)
				break;
			if (buf_addc(b, ch) == -1)
				goto toolong;
		}
	}
	if (quoted || depth > 0 || in_angle) {
		snprintf(err, errsize, "unbalanced %s",
		    quoted          ? "quote"
		        : depth > 0 ? "comment"
		                    : "'<'");
		goto done;
	}
	if (sendmail_flush(r, &cur, &ang, had_angle, domain, err, errsize) ==
	    -1)
		goto done;
	rc = 0;
	goto done;
toolong:
	snprintf(err, errsize, "address longer than %d octets", SEND_ADDR_MAX);
done:
	buf_reset(&cur);
	buf_reset(&ang);
	return rc;
}

/* The length of the line at p (n octets left), with its LF if any. */
static size_t
sendmail_line(const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);

	return nl ? (size_t)(nl - p) + 1 : n;
}

/* 1 if the line (with its line end) is empty. */
static int
sendmail_blank(const char *p, size_t n)
{
	return n == 0 || (n == 1 && p[0] == '\n') ||
	    (n == 2 && p[0] == '\r' && p[1] == '\n');
}

/* The length of the field name if the line starts a header field (RFC
 * 5322 §3.6.8: printable ASCII but ':', then ':'), else 0. */
static size_t
sendmail_field(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch == ':')
			return i;
		if (ch < 33 || ch > 126)
			return 0;
	}
	return 0;
}

static int
sendmail_is(const char *p, size_t n, const char *name)
{
	return n == strlen(name) && str_ncasecmp(p, name, n) == 0;
}

/* Appends the From: field: the full name as an atom phrase, a quoted
 * string, or RFC 2047 encoded words (8-bit text). */
static int
sendmail_add_from(struct buf *out, const char *from, const char *fullname)
{
	const unsigned char *f = (const unsigned char *)fullname;
	int atoms = 1, ascii = 1;
	size_t i, n;

	if (fullname == NULL || fullname[0] == '\0')
		return buf_addf(out, "From: %s\n", from);
	n = strlen(fullname);
	for (i = 0; i < n; i++) {
		if (f[i] >= 0x80 || f[i] < 0x20)
			ascii = 0;
		if (f[i] != ' ' &&
		    (f[i] < 0x21 || f[i] > 0x7e ||
		        strchr("()<>[]:;@\\,.\"", f[i]) != NULL))
			atoms = 0;
	}
	if (atoms)
		return buf_addf(out, "From: %s <%s>\n", fullname, from);
	if (ascii) {
		if (buf_adds(out, "From: \"") == -1)
			return -1;
		for (i = 0; i < n; i++)
			if (((f[i] == '"' || f[i] == '\\') &&
			        buf_addc(out, '\\') == -1) ||
			    buf_addc(out, (char)f[i]) == -1)
				return -1;
		return buf_addf(out, "\" <%s>\n", from);
	}
	if (buf_adds(out, "From:") == -1)
		return -1;
	for (i = 0; i < n;) {
		char enc[96];
		size_t k =
		    n - i > SENDMAIL_EW_CHUNK ? SENDMAIL_EW_CHUNK : n - i;

		/* Whole characters in each word (RFC 2047 §5). */
		while (i + k < n && k > 1 && (f[i + k] & 0xc0) == 0x80)
			k--;
		if (b64_encode(f + i, k, B64_PAD_REQUIRED, enc, sizeof(enc)) ==
		        -1 ||
		    buf_addf(out, " =?UTF-8?B?%s?=", enc) == -1)
			return -1;
		i += k;
	}
	return buf_addf(out, " <%s>\n", from);
}

int
sendmail_rewrite(const struct buf *in, const struct sendmail_msg_opts *mo,
    struct buf *out, struct sendmail_rcpts *rcpts, char *err, size_t errsize)
{
	const char *p = in->data, *end;
	size_t len = in->len, off = 0, hdr_end, l, k;
	int has_from = 0, has_date = 0, has_msgid = 0, need_blank = 0;
	int in_bcc = 0, in_rcpt = 0;
	char aerr[512];
	struct buf kept;
	int rc = -1;

	if (p == NULL)
		p = "";
	/* Without -i a line "." alone ends the message. */
	if (mo->dot_ends)
		for (off = 0; off < len; off += l) {
			l = sendmail_line(p + off, len - off);
			if ((l == 1 && p[off] == '.') ||
			    (l == 2 && p[off] == '.' && p[off + 1] == '\n') ||
			    (l == 3 && memcmp(p + off, ".\r\n", 3) == 0)) {
				len = off;
				break;
			}
		}
	off = 0;
	/* An mbox "From " line is no header field. */
	if (len >= 5 && memcmp(p, "From ", 5) == 0)
		off = sendmail_line(p, len);
	/* The header section: fields and their continuation lines, up to
	 * an empty line or a line that is neither. */
	buf_init(&kept, SENDMAIL_HEADER_MAX);
	for (hdr_end = off; hdr_end < len; hdr_end += l) {
		const char *line = p + hdr_end;

		l = sendmail_line(line, len - hdr_end);
		if (sendmail_blank(line, l))
			break;
		if (line[0] == ' ' || line[0] == '\t') {
			if (hdr_end == off) { /* no field to continue */
				need_blank = 1;
				break;
			}
		} else if ((k = sendmail_field(line, l)) > 0) {
			in_bcc = sendmail_is(line, k, "Bcc");
			in_rcpt = mo->extract &&
			    (in_bcc || sendmail_is(line, k, "To") ||
			        sendmail_is(line, k, "Cc"));
			has_from |= sendmail_is(line, k, "From");
			has_date |= sendmail_is(line, k, "Date");
			has_msgid |= sendmail_is(line, k, "Message-ID");
			if (in_rcpt) {
				/* The field body with its continuations. */
				size_t e = hdr_end + l, m;

				while (e < len && (p[e] == ' ' || p[e] == '\t'))
					e += sendmail_line(p + e, len - e);
				m = e - hdr_end - k - 1;
				if (sendmail_addrlist(line + k + 1, m,
				        mo->domain, rcpts, aerr,
				        sizeof(aerr)) == -1) {
					snprintf(err, errsize, "%.*s: %s",
					    (int)(k < 20 ? k : 20), line, aerr);
					goto done;
				}
			}
		} else {
			need_blank = 1;
			break;
		}
		if (!in_bcc && buf_add(&kept, line, l) == -1) {
			snprintf(err, errsize,
			    "header section larger than %lu octets",
			    SENDMAIL_HEADER_MAX);
			goto done;
		}
	}
	/* The header section without its line end on the last field (a
	 * message that is only a header) gets one. */
	if (kept.len > 0 && kept.data[kept.len - 1] != '\n' &&
	    buf_addc(&kept, '\n') == -1) {
		snprintf(err, errsize, "header section too large");
		goto done;
	}
	if (!has_from && sendmail_add_from(out, mo->from, mo->fullname) == -1)
		goto toolarge;
	if (!has_date) {
		struct tm tm;
		struct date d = { mo->now, 0 };
		char date[DATE_MAX];

		if (localtime_r(&mo->now, &tm) != NULL)
			d.gmtoff = (int)tm.tm_gmtoff;
		if (date_format(&d, date, sizeof(date)) == -1 ||
		    buf_addf(out, "Date: %s\n", date) == -1)
			goto toolarge;
	}
	if (!has_msgid) {
		unsigned char rnd[12];
		char hex[2 * sizeof(rnd) + 1];
		size_t i;

		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			snprintf(
			    err, errsize, "no random bytes for Message-ID");
			goto done;
		}
		for (i = 0; i < sizeof(rnd); i++)
			snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
		if (buf_addf(out, "Message-ID: <%lld.%s@%s>\n",
		        (long long)mo->now, hex, mo->domain) == -1)
			goto toolarge;
	}
	end = p + len;
	if (buf_add(out, kept.data, kept.len) == -1 ||
	    (need_blank && buf_addc(out, '\n') == -1) ||
	    buf_add(out, p + hdr_end, (size_t)(end - (p + hdr_end))) == -1)
		goto toolarge;
	rc = 0;
	goto done;
toolarge:
	snprintf(
	    err, errsize, "message larger than %lu octets", SEND_MESSAGE_MAX);
done:
	buf_reset(&kept);
	return rc;
}
