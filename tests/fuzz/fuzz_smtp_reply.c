/*
 * fuzz_smtp_reply: the client-side reply reader and the EHLO parser.  Byte
 * 0 picks the flags and seeds the chunk sizes; the rest is a server's
 * byte stream, fed whole, in pseudo-random chunks and (when short) one
 * octet at a time: the replies and the final error must be identical.
 * Invariants: codes 200-599, 1 to SMTP_REPLY_LINES_MAX lines, the text
 * never longer than the input nor holding NUL or CR, lines joined by LF
 * are the text, a status has the reply's class; every 250 reply parses
 * as EHLO with nkw + nbad == nlines - 1 and pointers inside the text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/buf.h"
#include "msgtrk/smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct smtp_reply_ehlo ehlo;

static void
record(struct buf *t, char tag, const void *p, size_t n)
{
	if (buf_addc(t, tag) == -1 || buf_add(t, &n, sizeof(n)) == -1 ||
	    buf_add(t, p, n) == -1)
		abort();
}

static void
check(const struct smtp_reply_msg *m, size_t in_len)
{
	size_t i, len, sum = 0;
	const char *l;

	if (m->code < 200 || m->code > 599 || m->nlines < 1 ||
	    m->nlines > SMTP_REPLY_LINES_MAX || m->text_len > in_len ||
	    strlen(m->text) != m->text_len ||
	    memchr(m->text, '\r', m->text_len) != NULL)
		abort();
	if (m->status[0] != '\0' &&
	    (m->status[0] != '0' + m->code / 100 ||
	        strlen(m->status) > SMTP_REPLY_STATUS_MAX))
		abort();
	for (i = 0; i < m->nlines; i++) {
		l = smtp_reply_line(m, i, &len);
		if (l == NULL || l < m->text ||
		    l + len > m->text + m->text_len ||
		    memchr(l, '\n', len) != NULL)
			abort();
		sum += len + (i > 0);
	}
	if (sum != m->text_len || smtp_reply_line(m, i, &len) != NULL)
		abort();
	if (smtp_reply_ehlo(m, &ehlo) != (m->code == 250 ? 0 : -1))
		abort();
	if (m->code != 250)
		return;
	if (ehlo.nkw + ehlo.nbad != m->nlines - 1)
		abort();
	for (i = 0; i < ehlo.nkw; i++) {
		if (ehlo.kw[i].keyword_len == 0 ||
		    ehlo.kw[i].keyword < m->text ||
		    ehlo.kw[i].params + ehlo.kw[i].params_len >
		        m->text + m->text_len ||
		    smtp_reply_ehlo_find(&ehlo, "X_NOT") != NULL)
			abort();
	}
	if ((ehlo.ext & SMTP_EHLO_SIZE) &&
	    smtp_reply_ehlo_find(&ehlo, "size") == NULL)
		abort();
}

static void
run(const uint8_t *in, size_t n, unsigned int flags, int chunk, uint32_t seed,
    struct buf *t)
{
	struct smtp_reply_parser *p;
	const struct smtp_reply_msg *m;
	enum smtp_reply_error err;
	size_t off = 0, k;
	int rc = 0;

	if ((p = smtp_reply_parser_new(flags)) == NULL)
		abort();
	while (off < n && rc != -1) {
		if (chunk == 0)
			k = n;
		else if (chunk == 1)
			k = 1;
		else {
			seed = seed * 1103515245u + 12345u;
			k = 1 + (seed >> 16) % 97;
		}
		if (k > n - off)
			k = n - off;
		if (smtp_reply_push(p, in + off, k) != 0)
			abort();
		off += k;
		while ((rc = smtp_reply_next(p, &m, &err)) == 1) {
			check(m, n);
			record(t, 'R', &m->code, sizeof(m->code));
			record(t, 'S', m->status, strlen(m->status));
			record(t, 'T', m->text, m->text_len);
		}
		if (rc == -1) {
			if (err == SMTP_REPLY_OK ||
			    smtp_reply_next(p, &m, NULL) != -1)
				abort();
			record(t, 'E', &err, sizeof(err));
		}
	}
	if (rc != -1) {
		k = smtp_reply_pending(p);
		record(t, 'P', &k, sizeof(k));
	}
	smtp_reply_parser_free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf a, b;
	unsigned int flags;

	if (size < 1)
		return 0;
	flags = data[0] & 1 ? SMTP_REPLY_STRICT_CRLF : 0;
	buf_init(&a, 1 << 26);
	buf_init(&b, 1 << 26);
	run(data + 1, size - 1, flags, 0, 0, &a);
	run(data + 1, size - 1, flags, 2, data[0], &b);
	if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort();
	if (size <= 4096) {
		buf_clear(&b);
		run(data + 1, size - 1, flags, 1, 0, &b);
		if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
			abort();
	}
	buf_reset(&a);
	buf_reset(&b);
	return 0;
}
