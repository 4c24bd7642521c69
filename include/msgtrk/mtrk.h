/*
 * mtrk: the MTRK secret A and certifier B of RFC 3885 §3.1, and the value
 * of the MTRK= MAIL parameter.
 *
 * The originator picks a random secret A, sends B = SHA-1(A) in base64 on
 * MAIL as "MTRK=" B [":" timeout], and later proves the right to track by
 * presenting base64(A) in an MTQP TRACK command (RFC 3887 §4), which the
 * server hashes and compares with the stored B.
 *
 * Names follow digest mtrk-rfc3885 §3.2: A = secret, B = certifier.  The
 * certifier is the 20-octet SHA-1 output in base64 WITHOUT padding, i.e.
 * 27 characters (RFC 3885 §3.2: "the 160 bit SHA-1 will be a 27 octet
 * string"; §3.1 says "128-bit hash", which SHA-1 is not).
 */
#ifndef MSGTRK_MTRK_H
#define MSGTRK_MTRK_H

#include <stddef.h>

#include "msgtrk/buf.h"

/* RFC 3885 §3.1: "A ... MUST be at least 128 bits and MUST NOT be longer
 * than 1024 bits". */
#define MTRK_SECRET_MIN 16
#define MTRK_SECRET_MAX 128
/* The length of the secrets we generate: 256 bits. */
#define MTRK_SECRET_LEN 32
/* Room for the base64 of a secret of MTRK_SECRET_MAX octets, padded, and
 * its NUL. */
#define MTRK_SECRET_B64_SIZE 176
/* SHA-1 output, and its unpadded base64 (RFC 3885 §3.2). */
#define MTRK_HASH_LEN 20
#define MTRK_CERTIFIER_LEN 27
/* RFC 3885 §3.1: mtrk-timeout = 1*9DIGIT. */
#define MTRK_TIMEOUT_DIGITS 9
#define MTRK_TIMEOUT_MAX 999999999UL
/* Longest MTRK= value: certifier ":" 9 digits (digest §3.4), with NUL. */
#define MTRK_VALUE_SIZE (MTRK_CERTIFIER_LEN + 1 + MTRK_TIMEOUT_DIGITS + 1)

enum mtrk_error {
	MTRK_OK = 0,
	MTRK_ERR_EMPTY, /* no value, or an empty certifier */
	MTRK_ERR_NUL, /* a NUL octet in the input */
	MTRK_ERR_CERT_LEN, /* certifier is not 27 characters */
	MTRK_ERR_CERT_CHAR, /* certifier character outside base64 */
	MTRK_ERR_CERT_NONCANON, /* last character has non-zero unused bits */
	MTRK_ERR_TIMEOUT, /* ":" not followed by 1-9 digits only */
	MTRK_ERR_TIMEOUT_LEN, /* more than 9 timeout digits */
	MTRK_ERR_COLON, /* a second ':' */
	MTRK_ERR_SECRET, /* secret not base64 of 16-128 octets */
	MTRK_ERR_MISMATCH, /* the secret does not hash to the certifier */
	MTRK_ERR_RANDOM, /* the random source failed */
	MTRK_ERR_INTERNAL, /* hashing failed, or an output too small */
};

/* The parsed value of an MTRK= parameter. */
struct mtrk_param {
	char certifier[MTRK_CERTIFIER_LEN + 1]; /* exactly as received */
	int has_timeout; /* 1 if ":" timeout was given */
	unsigned long timeout; /* 0..MTRK_TIMEOUT_MAX */
};

/* Fills secret_out with MTRK_SECRET_LEN octets from the CSPRNG
 * (RAND_bytes).  Returns 0, or -1 if the random source fails. */
int mtrk_secret_new(unsigned char secret_out[MTRK_SECRET_LEN]);

/* Computes the certifier of the n-octet secret (MTRK_SECRET_MIN..
 * MTRK_SECRET_MAX): unpadded base64 of SHA-1 over the raw octets (digest
 * §4.2), 27 characters and a NUL into out.  Returns 0, or -1 if n is out
 * of range or hashing fails. */
int mtrk_certifier(
    const void *secret, size_t n, char out[MTRK_CERTIFIER_LEN + 1]);

/* Encodes the n-octet secret (MTRK_SECRET_MIN..MTRK_SECRET_MAX) as
 * UNPADDED base64 into out, NUL-terminated, for the keyring, the TRACK
 * command and the mtqp: URI (RFC 3887 §4: "mtrk-secret = base64", which
 * has no '=').  outsize must exceed the PADDED length
 * (B64_LEN_PADDED(n)); MTRK_SECRET_B64_SIZE is always enough.  Returns
 * the length, or -1. */
int mtrk_secret_encode(const void *secret, size_t n, char *out, size_t outsize);

/* Decodes a base64 secret, padded or not (MTQP digest table P7), of
 * MTRK_SECRET_MIN..MTRK_SECRET_MAX octets into out (outsize octets).
 * Returns the number of octets, or -1 (not strict base64, wrong length,
 * out too small).  The caller wipes out after use. */
int mtrk_secret_decode(const char *s, size_t n, void *out, size_t outsize);

/* Checks a presented secret (base64, padded or not, n characters) against
 * a stored certifier (27 characters, NUL-terminated).  The hash of the
 * decoded secret and the decoded certifier are compared with
 * CRYPTO_memcmp over MTRK_HASH_LEN octets, so the time taken does not
 * depend on how much of them matches.  The decoded secret and its hash
 * are wiped.  Returns 0 if the secret matches, else -1 with *err_out (may
 * be NULL) set: MTRK_ERR_SECRET for a malformed secret (MTQP answers
 * -BAD), MTRK_ERR_CERT_* for a malformed stored certifier,
 * MTRK_ERR_MISMATCH for a well-formed secret that does not match. */
int mtrk_verify(const char *secret_b64, size_t n, const char *certifier,
    enum mtrk_error *err_out);

/* Checks that the n characters at s are a certifier as we accept them
 * (digest §3.3 [DECISION]): exactly 27 characters of the RFC 3885 base64
 * set (no '=', never xtext-decoded), last character canonical (one of
 * "AEIMQUYcgkosw048").  Returns 0, or -1 with *err_out set. */
int mtrk_certifier_check(const char *s, size_t n, enum mtrk_error *err_out);

/* Parses the n octets of an MTRK= esmtp-value (the text after "MTRK="):
 *	mtrk-parameter  = "MTRK=" mtrk-certifier [ ":" mtrk-timeout ]
 *	mtrk-timeout    = 1*9DIGIT
 * with the validation profile of digest §3.3.  Returns 0 and fills *out,
 * or -1 with *err_out (may be NULL) set. */
int mtrk_param_parse(
    const char *s, size_t n, struct mtrk_param *out, enum mtrk_error *err_out);

/* Appends the esmtp-param "MTRK=" certifier [":" timeout] to b, for the
 * client and the relay (RFC 3885 §3.1: pass "the remaining life"; the
 * caller must not call this when that is <= 0, RFC 3885 §3.1 "MUST NOT be
 * passed").  has_timeout selects the ":" part; timeout must be at most
 * MTRK_TIMEOUT_MAX.  Returns 0, or -1 (invalid certifier or timeout, or b
 * full; b is then unchanged). */
int mtrk_param_format(struct buf *b, const char *certifier, int has_timeout,
    unsigned long timeout);

/* A short constant description of err, for logs. */
const char *mtrk_strerror(enum mtrk_error err);

#endif /* MSGTRK_MTRK_H */
