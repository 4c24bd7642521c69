/*
 * envid: RFC 3885 §3.2 unique-envid.  See msgtrk/envid.h.
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "msgtrk/b64.h"
#include "msgtrk/envid.h"

static int
envid_fail(enum envid_error *err_out, enum envid_error err)
{
	if (err_out != NULL)
		*err_out = err;
	return -1;
}

int
envid_check_unique(
    const char *s, size_t n, size_t *at_out, enum envid_error *err_out)
{
	size_t i, at = n;

	if (n == 0)
		return envid_fail(err_out, ENVID_ERR_EMPTY);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0')
			return envid_fail(err_out, ENVID_ERR_NUL);
		/* RFC 3461 §4.4: "printable (graphic and white space)
		 * characters from the US-ASCII repertoire". */
		if ((c < 0x20 || c > 0x7e) && c != '\t')
			return envid_fail(err_out, ENVID_ERR_NONPRINT);
		if (i == ENVID_MAX)
			return envid_fail(err_out, ENVID_ERR_TOOLONG);
		if (c == '@')
			at = i;
	}
	if (at == n)
		return envid_fail(err_out, ENVID_ERR_NO_AT);
	if (at == 0)
		return envid_fail(err_out, ENVID_ERR_NO_LOCAL);
	if (at == n - 1)
		return envid_fail(err_out, ENVID_ERR_NO_FQHN);
	if (at_out != NULL)
		*at_out = at;
	if (err_out != NULL)
		*err_out = ENVID_OK;
	return 0;
}

/* A host name: LDH labels separated by single dots. */
static int
envid_hostname_ok(const char *h, size_t n)
{
	size_t i;

	if (n == 0 || n > ENVID_FQHN_MAX || h[0] == '.' || h[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		char c = h[i];

		if (c == '.' && h[i + 1] == '.')
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

int
envid_generate(const char *fqhn, const unsigned char *rnd, char *out,
    size_t outsize, enum envid_error *err_out)
{
	static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
	unsigned char r[ENVID_RANDOM_LEN], md[EVP_MAX_MD_SIZE];
	char host[B64_LEN_PADDED(EVP_MAX_MD_SIZE) + 1];
	const char *h = fqhn;
	unsigned int mdlen = 0, bits = 0, acc = 0;
	size_t hlen, i, o = 0, j = 0;

	if (fqhn == NULL)
		return envid_fail(err_out, ENVID_ERR_FQHN);
	hlen = strnlen(fqhn, ENVID_FQHN_MAX + 1);
	if (!envid_hostname_ok(fqhn, hlen))
		return envid_fail(err_out, ENVID_ERR_FQHN);
	/* RFC 3885 §3.2: "In some cases, the total length of (local-envid +
	 * fqhn + 1) ... may exceed the total acceptable length of ENVID
	 * (100).  In this case, the fqhn SHOULD be replaced by the
	 * SHA1(fqhn) encoded into BASE64." */
	if (ENVID_LOCAL_LEN + 1 + hlen > ENVID_MAX) {
		if (EVP_Digest(fqhn, hlen, md, &mdlen, EVP_sha1(), NULL) != 1 ||
		    b64_encode(md, mdlen, B64_PAD_NONE, host, sizeof(host)) !=
		        ENVID_FQHN_HASH_LEN)
			return envid_fail(err_out, ENVID_ERR_INTERNAL);
		h = host;
		hlen = ENVID_FQHN_HASH_LEN;
	}
	if (outsize <= ENVID_LOCAL_LEN + 1 + hlen)
		return envid_fail(err_out, ENVID_ERR_BUFSIZE);
	if (rnd != NULL)
		memcpy(r, rnd, sizeof(r));
	else if (RAND_bytes(r, sizeof(r)) != 1)
		return envid_fail(err_out, ENVID_ERR_RANDOM);
	/* Base32 (RFC 4648 §6 alphabet, lower case): 5 bits a character,
	 * the first 100 of the 104 random bits. */
	for (i = 0; i < ENVID_LOCAL_LEN; i++) {
		if (bits < 5) {
			acc = (acc << 8 | r[j++]) & 0xffff;
			bits += 8;
		}
		out[o++] = b32[(acc >> (bits - 5)) & 0x1f];
		bits -= 5;
	}
	out[o++] = '@';
	memcpy(out + o, h, hlen);
	o += hlen;
	out[o] = '\0';
	explicit_bzero(r, sizeof(r));
	if (err_out != NULL)
		*err_out = ENVID_OK;
	return 0;
}

const char *
envid_strerror(enum envid_error err)
{
	switch (err) {
	case ENVID_OK:
		return "ok";
	case ENVID_ERR_EMPTY:
		return "empty";
	case ENVID_ERR_NUL:
		return "NUL octet";
	case ENVID_ERR_TOOLONG:
		return "longer than 100 characters";
	case ENVID_ERR_NONPRINT:
		return "not printable US-ASCII";
	case ENVID_ERR_NO_AT:
		return "no '@'";
	case ENVID_ERR_NO_LOCAL:
		return "empty local-envid";
	case ENVID_ERR_NO_FQHN:
		return "empty fqhn";
	case ENVID_ERR_FQHN:
		return "invalid host name";
	case ENVID_ERR_RANDOM:
		return "random source failed";
	case ENVID_ERR_BUFSIZE:
		return "output buffer too small";
	case ENVID_ERR_INTERNAL:
		return "internal error";
	}
	return "unknown error";
}
