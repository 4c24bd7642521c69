/*
 * mime: writing MIME structures shared by the tracking-status (RFC 3886),
 * multipart/related (RFC 2387) and DSN (RFC 3464) generators: folded
 * header fields and multipart framing with unpredictable boundaries.
 */
#ifndef MSGTRK_MIME_H
#define MSGTRK_MIME_H

#include <stddef.h>

#include "msgtrk/buf.h"

/* RFC 2046 §5.1.1: a boundary is 1 to 70 characters. */
#define MIME_BOUNDARY_LEN_MAX 70
/* RFC 5322 §2.1.1: lines SHOULD be at most 78 characters, MUST be at most
 * 998, excluding CRLF. */
#define MIME_LINE_SOFT_MAX 78
#define MIME_LINE_HARD_MAX 998

/* Length of the boundaries mime_boundary() makes, without the NUL: a fixed
 * prefix and 32 random base32 characters (160 bits from the CSPRNG), so a
 * peer cannot predict one and smuggle it into a part. */
#define MIME_BOUNDARY_LEN 40

/* Writes a fresh boundary of MIME_BOUNDARY_LEN characters plus NUL into out
 * (outsize > MIME_BOUNDARY_LEN).  Returns 0, or -1 if the random source
 * fails. */
int mime_boundary(char *out, size_t outsize);

/* Appends the header field "name: value" CRLF, folding the value at spaces
 * so that lines stay within MIME_LINE_SOFT_MAX where a space allows it.
 * The value must not contain CR, LF or NUL (-1, errno EINVAL); a value
 * with a run longer than MIME_LINE_HARD_MAX without a space also fails.
 * Returns 0 or -1 (buffer limit: errno ENOSPC). */
int mime_field(struct buf *b, const char *name, const char *value);

/* As mime_field() with a printf-formatted value. */
int mime_fieldf(struct buf *b, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends the delimiter line that opens a body part: CRLF "--" boundary
 * CRLF.  The first delimiter of a body may omit the leading CRLF (first
 * != 0).  Returns 0 or -1. */
int mime_part_begin(struct buf *b, const char *boundary, int first);

/* Appends the close delimiter: CRLF "--" boundary "--" CRLF. */
int mime_multipart_end(struct buf *b, const char *boundary);

#endif /* MSGTRK_MIME_H */
