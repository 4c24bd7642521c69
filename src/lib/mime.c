/*
 * mime: folded header fields and multipart framing.  See msgtrk/mime.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include <openssl/rand.h>

#include "msgtrk/mime.h"

/* "=_" cannot occur in base64 or quoted-printable text (RFC 2045), so a
 * boundary that starts with it never collides with an encoded body. */
#define MIME_BOUNDARY_PREFIX "=_msgtrk"

int
mime_boundary(char *out, size_t outsize)
{
	static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
	unsigned char rnd[32];
	size_t pl = sizeof(MIME_BOUNDARY_PREFIX) - 1, i;

	_Static_assert(
	    sizeof(MIME_BOUNDARY_PREFIX) - 1 + sizeof(rnd) == MIME_BOUNDARY_LEN,
	    "boundary length");
	if (outsize <= MIME_BOUNDARY_LEN)
		return -1;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	memcpy(out, MIME_BOUNDARY_PREFIX, pl);
	for (i = 0; i < sizeof(rnd); i++)
		out[pl + i] = b32[rnd[i] & 31];
	out[MIME_BOUNDARY_LEN] = '\0';
	explicit_bzero(rnd, sizeof(rnd));
	return 0;
}

int
mime_field(struct buf *b, const char *name, const char *value)
{
	size_t start = b->len, line, i, n;

	if (strpbrk(value, "\r\n") != NULL) {
		errno = EINVAL;
		return -1;
	}
	if (buf_adds(b, name) == -1 || buf_add(b, ": ", 2) == -1)
		goto fail;
	line = b->len - start;
	for (i = 0; value[i] != '\0'; i += n) {
		/* One segment: its leading blanks, then a run of non-blanks. */
		n = strspn(value + i, " \t");
		n += strcspn(value + i + n, " \t");
		/* Fold before the segment's blank (RFC 5322 §2.2.3) when
		 * the line would pass the soft limit and has content. */
		if (line + n > MIME_LINE_SOFT_MAX && i > 0 &&
		    (value[i] == ' ' || value[i] == '\t')) {
			if (buf_add(b, "\r\n", 2) == -1)
				goto fail;
			line = 0;
		}
		if (line + n > MIME_LINE_HARD_MAX) {
			errno = EINVAL;
			goto fail;
		}
		if (buf_add(b, value + i, n) == -1)
			goto fail;
		line += n;
	}
	if (buf_add(b, "\r\n", 2) == -1)
		goto fail;
	return 0;
fail:
	buf_truncate(b, start);
	return -1;
}

int
mime_fieldf(struct buf *b, const char *name, const char *fmt, ...)
{
	struct buf v;
	va_list ap;
	int r;

	buf_init(&v, MIME_LINE_HARD_MAX * 4);
	va_start(ap, fmt);
	r = buf_vaddf(&v, fmt, ap);
	va_end(ap);
	if (r == 0)
		r = mime_field(b, name, buf_cstr(&v));
	buf_reset(&v);
	return r;
}

int
mime_part_begin(struct buf *b, const char *boundary, int first)
{
	return buf_addf(b, "%s--%s\r\n", first ? "" : "\r\n", boundary);
}

int
mime_multipart_end(struct buf *b, const char *boundary)
{
	return buf_addf(b, "\r\n--%s--\r\n", boundary);
}
