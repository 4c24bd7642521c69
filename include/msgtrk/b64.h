/*
 * b64: strict base64 (RFC 4648 §4, the alphabet of RFC 2045 §6.8) over
 * OpenSSL's codec.  Strict means: only alphabet characters, no whitespace,
 * padding only where the mode allows it, and canonical encodings only (the
 * unused low bits of the last character are zero), so that decode followed
 * by encode gives back the input.  Used for MTRK certifiers (RFC 3885 §3.1,
 * unpadded: '=' is not an esmtp-value character) and MTQP secrets
 * (RFC 3887 §4, padded or not).
 */
#ifndef MSGTRK_B64_H
#define MSGTRK_B64_H

#include <stddef.h>

/* Encoded length (without NUL) of n octets. */
#define B64_LEN_PADDED(n) (((n) + 2) / 3 * 4)
#define B64_LEN_UNPADDED(n) (((n)*4 + 2) / 3)

enum b64_pad {
	B64_PAD_NONE, /* no '=' allowed, length % 4 != 1 */
	B64_PAD_REQUIRED, /* length % 4 == 0, '=' as RFC 4648 §4 says */
	B64_PAD_OPTIONAL, /* either of the above */
};

/* Encodes n octets into out (outsize > encoded length), padded or not
 * (pad is B64_PAD_NONE or B64_PAD_REQUIRED).  Returns the encoded length,
 * or -1 if out is too small. */
int b64_encode(
    const void *in, size_t n, enum b64_pad pad, char *out, size_t outsize);

/* Decodes the n characters at in into out (outsize octets).  Returns the
 * number of octets, or -1 on any violation of the strict rules above, or
 * if out is too small. */
int b64_decode(
    const char *in, size_t n, enum b64_pad pad, void *out, size_t outsize);

/* Returns 1 if c is one of the 64 alphabet characters, else 0. */
int b64_ischar(int c);

#endif /* MSGTRK_B64_H */
