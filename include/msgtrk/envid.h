/*
 * envid: the unique-envid of RFC 3885 §3.2, which MTRK requires in place
 * of a free-form RFC 3461 ENVID:
 *
 *	unique-envid    = local-envid "@" fqhn
 *	local-envid     = xtext
 *	fqhn            = xtext
 *
 * Everything here works on the DECODED value (xtext_decode() first,
 * xtext_encode() after generating).
 */
#ifndef MSGTRK_ENVID_H
#define MSGTRK_ENVID_H

#include <stddef.h>

/* RFC 3461 §4.4 and §5.4(a): ENVID up to 100 characters; RFC 3885 §3.2
 * calls 100 "the total acceptable length of ENVID".  We count decoded
 * characters (digest §12.3 [DECISION]). */
#define ENVID_MAX 100
/* RFC 3461 §5.4: "user agents which use SMTP as a message submission
 * protocol SHOULD NOT generate ENVID parameters which are longer than 38
 * characters". */
#define ENVID_SUBMIT_MAX 38
/* RFC 3885 §3.2: base64(SHA-1(fqhn)) "will be a 27 octet string". */
#define ENVID_FQHN_HASH_LEN 27
/* RFC 5321 §4.5.3.1.2: a domain name is at most 255 octets. */
#define ENVID_FQHN_MAX 255
/* Our local-envid: 20 characters of lower-case RFC 4648 base32 carrying
 * 100 bits from the CSPRNG, taken from ENVID_RANDOM_LEN random octets. */
#define ENVID_LOCAL_LEN 20
#define ENVID_RANDOM_LEN 13

enum envid_error {
	ENVID_OK = 0,
	ENVID_ERR_EMPTY, /* no characters at all */
	ENVID_ERR_NUL, /* a NUL octet */
	ENVID_ERR_TOOLONG, /* longer than ENVID_MAX */
	ENVID_ERR_NONPRINT, /* not printable US-ASCII (RFC 3461 §4.4) */
	ENVID_ERR_NO_AT, /* no '@' */
	ENVID_ERR_NO_LOCAL, /* nothing before the last '@' */
	ENVID_ERR_NO_FQHN, /* nothing after the last '@' */
	ENVID_ERR_FQHN, /* generate: host name not LDH labels/dots */
	ENVID_ERR_RANDOM, /* generate: the random source failed */
	ENVID_ERR_BUFSIZE, /* generate: output buffer too small */
	ENVID_ERR_INTERNAL, /* generate: hashing failed */
};

/* Checks that the n octets at s (a decoded ENVID) are an ENVID we accept
 * with MTRK: 1..ENVID_MAX characters of printable US-ASCII (0x20-0x7E,
 * HTAB), with an '@' that has at least one character on each side of the
 * LAST '@' (digest §7 [DECISION]; the local-envid may itself contain '@',
 * the fqhn cannot).  Sets *at_out (may be NULL) to the offset of that '@'.
 * Returns 0, or -1 with *err_out (may be NULL) set. */
int envid_check_unique(
    const char *s, size_t n, size_t *at_out, enum envid_error *err_out);

/* Generates a fresh decoded unique-envid for a message sent from host
 * fqhn (a host name: 1..ENVID_FQHN_MAX octets of letters, digits, '-' and
 * '.', no empty label).  The local-envid is ENVID_LOCAL_LEN base32
 * characters made from rnd (ENVID_RANDOM_LEN octets), or from RAND_bytes
 * when rnd is NULL (pass rnd only to make tests deterministic).  As RFC
 * 3885 §3.2 says, when local-envid + "@" + fqhn would exceed ENVID_MAX the
 * fqhn is replaced by the unpadded base64 of SHA-1 over the host name as
 * given (27 characters, which may contain '+' and '/').  The result
 * (NUL-terminated, at most ENVID_MAX characters) goes to out; outsize >
 * ENVID_MAX is always enough.  Encode it with xtext_encode() for the wire.
 * It is at most ENVID_SUBMIT_MAX characters when fqhn has at most 17.
 * Returns 0, or -1 with *err_out (may be NULL) set. */
int envid_generate(const char *fqhn, const unsigned char *rnd, char *out,
    size_t outsize, enum envid_error *err_out);

/* A short constant description of err, for logs. */
const char *envid_strerror(enum envid_error err);

#endif /* MSGTRK_ENVID_H */
