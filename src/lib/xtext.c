/*
 * xtext: RFC 3461 §4 encoding.  See msgtrk/xtext.h.
 */
#include <string.h>

#include "msgtrk/xtext.h"

static int
xtext_isxchar(int c)
{
	return c >= '!' && c <= '~' && c != '+' && c != '=';
}

/* RFC 3461 §4: "two upper case hexadecimal digits". */
static int
xtext_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
xtext_isprint(int c)
{
	return (c >= 0x20 && c <= 0x7e) || c == '\t';
}

/* Decodes into out when out != NULL; with out == NULL only checks.
 * limit is the maximum decoded length. */
static int
xtext_run(const char *in, size_t n, unsigned int flags, char *out, size_t limit,
    size_t *len_out, enum xtext_error *err_out)
{
	enum xtext_error err = XTEXT_OK;
	size_t i, o = 0;
	int c, hi, lo;

	for (i = 0; i < n; i++) {
		c = (unsigned char)in[i];
		if (c == '\0') {
			err = XTEXT_ERR_NUL;
			break;
		}
		if (c == '+') {
			/* A NUL is reported as such even inside a hexchar. */
			if ((i + 1 < n && in[i + 1] == '\0') ||
			    (i + 2 < n && in[i + 2] == '\0')) {
				err = XTEXT_ERR_NUL;
				break;
			}
			if (n - i < 3) {
				err = XTEXT_ERR_HEX;
				break;
			}
			hi = xtext_hexval((unsigned char)in[i + 1]);
			lo = xtext_hexval((unsigned char)in[i + 2]);
			if (hi < 0 || lo < 0) {
				err = XTEXT_ERR_HEX;
				break;
			}
			c = hi << 4 | lo;
			i += 2;
		} else if (!xtext_isxchar(c)) {
			err = XTEXT_ERR_CHAR;
			break;
		}
		if ((flags & XTEXT_PRINTABLE) && !xtext_isprint(c)) {
			err = XTEXT_ERR_NONPRINT;
			break;
		}
		/* Check the limit before storing: never write past it. */
		if (o >= limit) {
			err = XTEXT_ERR_TOOLONG;
			break;
		}
		if (out != NULL)
			out[o] = (char)c;
		o++;
	}
	if (out != NULL)
		out[err == XTEXT_OK ? o : 0] = '\0';
	if (err_out != NULL)
		*err_out = err;
	if (err != XTEXT_OK)
		return -1;
	if (len_out != NULL)
		*len_out = o;
	return 0;
}

int
xtext_decode(const char *in, size_t n, unsigned int flags, char *out,
    size_t outsize, size_t *len_out, enum xtext_error *err_out)
{
	if (outsize == 0) {
		if (err_out != NULL)
			*err_out = XTEXT_ERR_TOOLONG;
		return -1;
	}
	return xtext_run(in, n, flags, out, outsize - 1, len_out, err_out);
}

int
xtext_valid(const char *in, size_t n, unsigned int flags)
{
	return xtext_run(in, n, flags, NULL, (size_t)-1, NULL, NULL) == 0;
}

size_t
xtext_encoded_len(const void *in, size_t n)
{
	const unsigned char *p = in;
	size_t i, len = 0;

	for (i = 0; i < n; i++)
		len += xtext_isxchar(p[i]) ? 1 : 3;
	return len;
}

int
xtext_encode(struct buf *b, const void *in, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = in;
	size_t i, start = b->len;

	if (xtext_encoded_len(in, n) > b->max - b->len)
		return -1;
	for (i = 0; i < n; i++) {
		int r;

		if (xtext_isxchar(p[i]))
			r = buf_addc(b, p[i]);
		else {
			char hc[3] = { '+', hex[p[i] >> 4], hex[p[i] & 0x0f] };

			r = buf_add(b, hc, sizeof(hc));
		}
		if (r == -1) {
			buf_truncate(b, start);
			return -1;
		}
	}
	return 0;
}

const char *
xtext_strerror(enum xtext_error err)
{
	switch (err) {
	case XTEXT_OK:
		return "ok";
	case XTEXT_ERR_NUL:
		return "NUL octet";
	case XTEXT_ERR_CHAR:
		return "invalid character";
	case XTEXT_ERR_HEX:
		return "bad hexchar";
	case XTEXT_ERR_TOOLONG:
		return "decoded text too long";
	case XTEXT_ERR_NONPRINT:
		return "decoded text not printable";
	}
	return "unknown error";
}
