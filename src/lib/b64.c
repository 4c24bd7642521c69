/*
 * b64: strict base64 over OpenSSL's EVP codec.  See msgtrk/b64.h.
 *
 * OpenSSL's EVP_DecodeBlock() is lenient (it skips leading and trailing
 * whitespace and reports padding as zero octets), so the strict checks are
 * made here first and the octet count corrected for padding.
 */
#include <string.h>

#include <openssl/evp.h>

#include "msgtrk/b64.h"

/* Large enough for every use in the suite (certifiers, secrets of up to
 * 512 bits, RFC 3887 does not bound them: P7 in the MTQP digest). */
#define B64_DECODE_MAX 1024

static int
b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
b64_ischar(int c)
{
	return b64_value(c) != -1;
}

int
b64_encode(
    const void *in, size_t n, enum b64_pad pad, char *out, size_t outsize)
{
	size_t plen = B64_LEN_PADDED(n), len;

	if (n > (size_t)B64_DECODE_MAX * 3 || outsize <= plen)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	len = plen;
	if (pad == B64_PAD_NONE)
		while (len > 0 && out[len - 1] == '=')
			len--;
	out[len] = '\0';
	return (int)len;
}

int
b64_decode(
    const char *in, size_t n, enum b64_pad pad, void *out, size_t outsize)
{
	unsigned char tmp[B64_DECODE_MAX * 3 / 4 + 3];
	char padded[B64_DECODE_MAX + 4];
	size_t data = n, npad, octets, i;
	int last, r;

	if (n == 0 || n > B64_DECODE_MAX)
		return -1;
	/* Split off the padding, at most two '='. */
	while (data > 0 && in[data - 1] == '=' && n - data < 2)
		data--;
	npad = n - data;
	if (npad > 0 && pad == B64_PAD_NONE)
		return -1;
	if (npad > 0 && n % 4 != 0)
		return -1;
	if (pad == B64_PAD_REQUIRED && n % 4 != 0)
		return -1;
	if (data % 4 == 1)
		return -1;
	if (npad > 0 && (4 - data % 4) % 4 != npad)
		return -1;
	for (i = 0; i < data; i++)
		if (b64_value((unsigned char)in[i]) == -1)
			return -1;
	/* Canonical form: the bits past the last octet must be zero. */
	last = data > 0 ? b64_value((unsigned char)in[data - 1]) : 0;
	if ((data % 4 == 2 && (last & 0x0f) != 0) ||
	    (data % 4 == 3 && (last & 0x03) != 0))
		return -1;
	octets = data / 4 * 3 + (data % 4 == 0 ? 0 : data % 4 - 1);
	if (octets > outsize)
		return -1;
	memcpy(padded, in, data);
	for (i = data; i % 4 != 0; i++)
		padded[i] = '=';
	r = EVP_DecodeBlock(tmp, (const unsigned char *)padded, (int)i);
	if (r < 0 || (size_t)r < octets)
		return -1;
	memcpy(out, tmp, octets);
	explicit_bzero(tmp, sizeof(tmp));
	explicit_bzero(padded, sizeof(padded));
	return (int)octets;
}
