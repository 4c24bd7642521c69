/*
 * xtext: the encoding of the ENVID and ORCPT esmtp-values (RFC 3461 §4):
 *
 *	xtext = *( xchar / hexchar )
 *	xchar = any ASCII CHAR between "!" (33) and "~" (126) inclusive,
 *	        except for "+" and "=".
 *	hexchar = ASCII "+" immediately followed by two upper case
 *	          hexadecimal digits
 *
 * Decoding is strict, as the project decided (digest mtrk-rfc3885 §12.3):
 * a '+' not followed by two UPPER-case hex digits ("+2b", "+2", "+") is an
 * error, as is any octet outside 33-126 and a bare '='.
 */
#ifndef MSGTRK_XTEXT_H
#define MSGTRK_XTEXT_H

#include <stddef.h>

#include "msgtrk/buf.h"

/* Why a decode failed.  XTEXT_OK is 0. */
enum xtext_error {
	XTEXT_OK = 0,
	XTEXT_ERR_NUL, /* a NUL octet in the encoded text */
	XTEXT_ERR_CHAR, /* an octet that is not an xchar nor '+' */
	XTEXT_ERR_HEX, /* '+' not followed by two upper-case hex digits */
	XTEXT_ERR_TOOLONG, /* the decoded text does not fit the output */
	XTEXT_ERR_NONPRINT, /* XTEXT_PRINTABLE: decoded octet not printable */
};

/* Flags for xtext_decode(). */
/* RFC 3461 §4.2 (ORCPT) and §4.4 (ENVID): the decoded text "must consist
 * only of printable US-ASCII characters".  We accept 0x20-0x7E and HTAB
 * (digest §12.3 [DECISION]). */
#define XTEXT_PRINTABLE 0x01

/* Decodes the n octets at in into out (outsize octets; the decoded text
 * may be at most outsize - 1 octets long, and is NUL-terminated).  Sets
 * *len_out (may be NULL) to the decoded length; without XTEXT_PRINTABLE
 * the decoded text may contain NUL ("+00"), so use the length.  Returns 0,
 * or -1 with *err_out (may be NULL) set; out is then unspecified but
 * NUL-terminated when outsize > 0.  An empty input decodes to "". */
int xtext_decode(const char *in, size_t n, unsigned int flags, char *out,
    size_t outsize, size_t *len_out, enum xtext_error *err_out);

/* Returns 1 if the n octets at in are valid xtext, else 0 (no limit on
 * the decoded length; XTEXT_PRINTABLE as for xtext_decode()). */
int xtext_valid(const char *in, size_t n, unsigned int flags);

/* Appends the xtext encoding of the n octets at in to b: xchars as
 * themselves, everything else (including '+', '=', SP, controls, NUL and
 * 8-bit octets) as "+XX" with upper-case hex.  Returns 0, or -1 if b
 * would grow past its maximum (b is then unchanged). */
int xtext_encode(struct buf *b, const void *in, size_t n);

/* Length of the xtext encoding of the n octets at in. */
size_t xtext_encoded_len(const void *in, size_t n);

/* A short constant description of err, for logs ("bad hexchar"). */
const char *xtext_strerror(enum xtext_error err);

#endif /* MSGTRK_XTEXT_H */
