/*
 * mtrk: RFC 3885 secrets, certifiers and the MTRK= value.  See
 * msgtrk/mtrk.h.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "msgtrk/b64.h"
#include "msgtrk/mtrk.h"

static void
mtrk_seterr(enum mtrk_error *err_out, enum mtrk_error err)
{
	if (err_out != NULL)
		*err_out = err;
}

/* SHA-1 of n octets into md.  Returns 0 or -1. */
static int
mtrk_sha1(const void *p, size_t n, unsigned char md[MTRK_HASH_LEN])
{
	unsigned int mdlen = 0;

	if (EVP_Digest(p, n, md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen != MTRK_HASH_LEN)
		return -1;
	return 0;
}

int
mtrk_secret_new(unsigned char secret_out[MTRK_SECRET_LEN])
{
	if (RAND_bytes(secret_out, MTRK_SECRET_LEN) != 1) {
		explicit_bzero(secret_out, MTRK_SECRET_LEN);
		return -1;
	}
	return 0;
}

int
mtrk_certifier(const void *secret, size_t n, char out[MTRK_CERTIFIER_LEN + 1])
{
	unsigned char md[MTRK_HASH_LEN];
	char tmp[B64_LEN_PADDED(MTRK_HASH_LEN) + 1];
	int r;

	if (n < MTRK_SECRET_MIN || n > MTRK_SECRET_MAX)
		return -1;
	if (mtrk_sha1(secret, n, md) == -1)
		return -1;
	/* b64_encode() wants room for the padded form. */
	r = b64_encode(md, sizeof(md), B64_PAD_NONE, tmp, sizeof(tmp));
	explicit_bzero(md, sizeof(md));
	if (r != MTRK_CERTIFIER_LEN)
		return -1;
	memcpy(out, tmp, MTRK_CERTIFIER_LEN + 1);
	return 0;
}

int
mtrk_secret_encode(const void *secret, size_t n, char *out, size_t outsize)
{
	if (n < MTRK_SECRET_MIN || n > MTRK_SECRET_MAX)
		return -1;
	return b64_encode(secret, n, B64_PAD_NONE, out, outsize);
}

int
mtrk_secret_decode(const char *s, size_t n, void *out, size_t outsize)
{
	int r;

	/* b64_decode() refuses more than outsize octets: check the upper
	 * limit through it, then the lower one. */
	if (outsize > MTRK_SECRET_MAX)
		outsize = MTRK_SECRET_MAX;
	r = b64_decode(s, n, B64_PAD_OPTIONAL, out, outsize);
	if (r == -1)
		return -1;
	if (r < MTRK_SECRET_MIN) {
		explicit_bzero(out, (size_t)r);
		return -1;
	}
	return r;
}

/* RFC 3885 base64 (no '='); the canonical last characters are those whose
 * value has the two low bits clear. */
int
mtrk_certifier_check(const char *s, size_t n, enum mtrk_error *err_out)
{
	size_t i;

	if (n == 0) {
		mtrk_seterr(err_out, MTRK_ERR_EMPTY);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (s[i] == '\0') {
			mtrk_seterr(err_out, MTRK_ERR_NUL);
			return -1;
		}
		if (!b64_ischar((unsigned char)s[i])) {
			mtrk_seterr(err_out, MTRK_ERR_CERT_CHAR);
			return -1;
		}
	}
	if (n != MTRK_CERTIFIER_LEN) {
		mtrk_seterr(err_out, MTRK_ERR_CERT_LEN);
		return -1;
	}
	if (strchr("AEIMQUYcgkosw048", s[n - 1]) == NULL) {
		mtrk_seterr(err_out, MTRK_ERR_CERT_NONCANON);
		return -1;
	}
	mtrk_seterr(err_out, MTRK_OK);
	return 0;
}

int
mtrk_verify(const char *secret_b64, size_t n, const char *certifier,
    enum mtrk_error *err_out)
{
	unsigned char secret[MTRK_SECRET_MAX], want[MTRK_HASH_LEN],
	    got[MTRK_HASH_LEN];
	enum mtrk_error err;
	int len, r = -1;

	if (certifier == NULL ||
	    mtrk_certifier_check(certifier,
	        strnlen(certifier, MTRK_CERTIFIER_LEN + 1), &err) == -1) {
		mtrk_seterr(
		    err_out, certifier == NULL ? MTRK_ERR_CERT_LEN : err);
		return -1;
	}
	if (b64_decode(certifier, MTRK_CERTIFIER_LEN, B64_PAD_NONE, want,
	        sizeof(want)) != MTRK_HASH_LEN) {
		mtrk_seterr(err_out, MTRK_ERR_CERT_NONCANON);
		return -1;
	}
	len = mtrk_secret_decode(secret_b64, n, secret, sizeof(secret));
	if (len == -1) {
		mtrk_seterr(err_out, MTRK_ERR_SECRET);
		goto done;
	}
	if (mtrk_sha1(secret, (size_t)len, got) == -1) {
		mtrk_seterr(err_out, MTRK_ERR_INTERNAL);
		goto done;
	}
	/* Constant time over the fixed-size hashes: no early exit. */
	if (CRYPTO_memcmp(got, want, MTRK_HASH_LEN) != 0) {
		mtrk_seterr(err_out, MTRK_ERR_MISMATCH);
		goto done;
	}
	mtrk_seterr(err_out, MTRK_OK);
	r = 0;
done:
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(got, sizeof(got));
	explicit_bzero(want, sizeof(want));
	return r;
}

int
mtrk_param_parse(
    const char *s, size_t n, struct mtrk_param *out, enum mtrk_error *err_out)
{
	const char *colon;
	size_t clen, i;
	unsigned long t = 0;

	if (memchr(s, '\0', n) != NULL) {
		mtrk_seterr(err_out, MTRK_ERR_NUL);
		return -1;
	}
	colon = memchr(s, ':', n);
	clen = colon != NULL ? (size_t)(colon - s) : n;
	if (mtrk_certifier_check(s, clen, err_out) == -1)
		return -1;
	if (colon != NULL) {
		const char *ts = colon + 1;
		size_t tn = n - clen - 1;

		if (memchr(ts, ':', tn) != NULL) {
			mtrk_seterr(err_out, MTRK_ERR_COLON);
			return -1;
		}
		if (tn == 0) {
			mtrk_seterr(err_out, MTRK_ERR_TIMEOUT);
			return -1;
		}
		for (i = 0; i < tn; i++) {
			if (ts[i] < '0' || ts[i] > '9') {
				mtrk_seterr(err_out, MTRK_ERR_TIMEOUT);
				return -1;
			}
			/* Check the bound before accumulating the digit. */
			if (i == MTRK_TIMEOUT_DIGITS) {
				mtrk_seterr(err_out, MTRK_ERR_TIMEOUT_LEN);
				return -1;
			}
			t = t * 10 + (unsigned long)(ts[i] - '0');
		}
	}
	memcpy(out->certifier, s, MTRK_CERTIFIER_LEN);
	out->certifier[MTRK_CERTIFIER_LEN] = '\0';
	out->has_timeout = colon != NULL;
	out->timeout = t;
	mtrk_seterr(err_out, MTRK_OK);
	return 0;
}

int
mtrk_param_format(struct buf *b, const char *certifier, int has_timeout,
    unsigned long timeout)
{
	if (certifier == NULL ||
	    mtrk_certifier_check(certifier,
	        strnlen(certifier, MTRK_CERTIFIER_LEN + 1), NULL) == -1 ||
	    timeout > MTRK_TIMEOUT_MAX)
		return -1;
	if (has_timeout)
		return buf_addf(b, "MTRK=%s:%lu", certifier, timeout);
	return buf_addf(b, "MTRK=%s", certifier);
}

const char *
mtrk_strerror(enum mtrk_error err)
{
	switch (err) {
	case MTRK_OK:
		return "ok";
	case MTRK_ERR_EMPTY:
		return "empty value";
	case MTRK_ERR_NUL:
		return "NUL octet";
	case MTRK_ERR_CERT_LEN:
		return "certifier is not 27 characters";
	case MTRK_ERR_CERT_CHAR:
		return "certifier character not base64";
	case MTRK_ERR_CERT_NONCANON:
		return "certifier not canonical";
	case MTRK_ERR_TIMEOUT:
		return "bad timeout";
	case MTRK_ERR_TIMEOUT_LEN:
		return "timeout longer than 9 digits";
	case MTRK_ERR_COLON:
		return "second colon";
	case MTRK_ERR_SECRET:
		return "malformed secret";
	case MTRK_ERR_MISMATCH:
		return "secret does not match";
	case MTRK_ERR_RANDOM:
		return "random source failed";
	case MTRK_ERR_INTERNAL:
		return "internal error";
	}
	return "unknown error";
}
