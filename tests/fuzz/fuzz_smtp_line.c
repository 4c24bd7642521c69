/*
 * fuzz_smtp_line: the server-side line and DATA reader.  Byte 0 picks the
 * line limit, byte 1 the DATA size limit, byte 2 seeds the chunk sizes;
 * the rest is a client's byte stream, run as a session (lines until
 * "DATA", content until the final dot, lines again).  The same stream is
 * fed whole and in pseudo-random chunks (and one octet at a time when
 * short): the transcripts must be identical.  Invariants: no line is
 * longer than the limit or holds CR or LF; the content stored is never
 * more than the input nor than the size limit; what is handed out never
 * exceeds what was pushed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/buf.h"
#include "msgtrk/smtp_line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
	size_t limit;
	uint64_t max_size;
	size_t in_len;
	size_t out_total; /* octets handed out (lines + content) */
};

static void
record(struct buf *t, char tag, const void *p, size_t n)
{
	if (buf_addc(t, tag) == -1 || buf_add(t, &n, sizeof(n)) == -1 ||
	    buf_add(t, p, n) == -1)
		abort();
}

static void
drain(struct fz *f, struct smtp_line *r, int *indata, struct buf *content,
    struct buf *t)
{
	const struct smtp_data_info *di;
	enum smtp_line_error err;
	const char *line;
	size_t len;
	int rc;

	for (;;) {
		if (*indata) {
			rc = smtp_line_data(r, content, &err);
			if (rc == -1)
				abort();
			if (rc == 0)
				return;
			di = smtp_line_data_info(r);
			if (content->len > di->size || di->size > f->in_len ||
			    (f->max_size != 0 && content->len > f->max_size) ||
			    ((di->flags & SMTP_DATA_F_TOO_BIG) == 0) !=
			        (content->len == di->size))
				abort();
			f->out_total += content->len;
			record(t, 'D', content->data, content->len);
			record(t, 'I', di, sizeof(*di));
			buf_clear(content);
			*indata = 0;
			continue;
		}
		rc = smtp_line_next(r, &line, &len, &err);
		if (rc == 0)
			return;
		if (rc == -1) {
			if (smtp_line_cmd_error(err) == SMTP_CMD_OK)
				abort();
			record(t, 'E', &err, sizeof(err));
			continue;
		}
		if (len + 2 > f->limit || memchr(line, '\r', len) != NULL ||
		    memchr(line, '\n', len) != NULL)
			abort();
		f->out_total += len + 2;
		record(t, 'L', line, len);
		if (len == 4 && memcmp(line, "DATA", 4) == 0) {
			if (smtp_line_data_begin(r, f->max_size) != 0)
				abort();
			*indata = 1;
		}
	}
}

/* chunk: 0 whole, 1 one octet at a time, else pseudo-random sizes. */
static void
session(struct fz *f, const uint8_t *in, size_t n, int chunk, uint32_t seed,
    struct buf *t)
{
	struct smtp_line *r;
	struct buf content;
	size_t off = 0, k;
	int indata = 0;

	r = smtp_line_new(f->limit);
	if (r == NULL)
		abort();
	buf_init(&content, 1 << 20);
	f->out_total = 0;
	while (off < n || off == 0) {
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
		if (smtp_line_push(r, in + off, k) != 0)
			abort();
		off += k;
		drain(f, r, &indata, &content, t);
		if (n == 0)
			break;
	}
	if (indata) {
		record(t, 'U', content.data, content.len);
		f->out_total += content.len;
	}
	k = smtp_line_pending(r);
	record(t, 'P', &k, sizeof(k));
	if (f->out_total > n)
		abort();
	buf_reset(&content);
	smtp_line_free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f;
	struct buf a, b;
	uint32_t seed;

	if (size < 3)
		return 0;
	memset(&f, 0, sizeof(f));
	f.limit = data[0] < 128 ? SMTP_LINE_LIMIT_MIN + data[0] : 0;
	if (f.limit == 0)
		f.limit = SMTP_LINE_LIMIT_DEFAULT;
	f.max_size = data[1] < 200 ? data[1] : 0;
	seed = data[2];
	data += 3;
	size -= 3;
	f.in_len = size;
	buf_init(&a, 1 << 26);
	buf_init(&b, 1 << 26);
	session(&f, data, size, 0, 0, &a);
	session(&f, data, size, 2, seed, &b);
	if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort();
	if (size <= 4096) {
		buf_clear(&b);
		session(&f, data, size, 1, 0, &b);
		if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
			abort();
	}
	buf_reset(&a);
	buf_reset(&b);
	return 0;
}
