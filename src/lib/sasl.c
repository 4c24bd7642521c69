/*
 * sasl: PLAIN and LOGIN responses (see sasl.h).  Every buffer that held
 * decoded octets is wiped before returning.
 */
#include <string.h>

#include "msgtrk/b64.h"
#include "msgtrk/sasl.h"
#include "msgtrk/str.h"

/* What a line of SASL_LINE_MAX characters decodes to at most: room for
 * every line accepted, so that a field over its bound is reported as too
 * long rather than as bad base64. */
#define SASL_DECODED_MAX (SASL_LINE_MAX / 4 * 3)

enum sasl_mech
sasl_mech_parse(const char *name)
{
	if (name == NULL)
		return SASL_MECH_UNKNOWN;
	if (str_casecmp(name, "PLAIN") == 0)
		return SASL_MECH_PLAIN;
	if (str_casecmp(name, "LOGIN") == 0)
		return SASL_MECH_LOGIN;
	return SASL_MECH_UNKNOWN;
}

int
sasl_is_cancel(const char *line, size_t n)
{
	return n == 1 && line[0] == '*';
}

int
sasl_is_empty_response(const char *line, size_t n)
{
	return n == 1 && line[0] == '=';
}

void
sasl_clear(struct sasl_creds *c)
{
	if (c != NULL)
		explicit_bzero(c, sizeof(*c));
}

/* Returns 1 if the n octets at s are well-formed UTF-8 (RFC 3629 §4: no
 * overlong forms, no surrogates, nothing past U+10FFFF), else 0. */
static int
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0, k, len;
	unsigned int cp, min;

	while (i < n) {
		unsigned char b = s[i];

		if (b < 0x80) {
			i++;
			continue;
		}
		if (b >= 0xc2 && b <= 0xdf) {
			len = 2;
			cp = b & 0x1f;
			min = 0x80;
		} else if (b >= 0xe0 && b <= 0xef) {
			len = 3;
			cp = b & 0x0f;
			min = 0x800;
		} else if (b >= 0xf0 && b <= 0xf4) {
			len = 4;
			cp = b & 0x07;
			min = 0x10000;
		} else
			return 0;
		if (n - i < len)
			return 0;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

/* A login: 1..255 octets of UTF-8 without NUL or control characters. */
static enum sasl_error
check_login(const unsigned char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return SASL_ERR_EMPTY;
	if (n > SASL_FIELD_MAX)
		return SASL_ERR_TOO_LONG;
	for (i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return s[i] == '\0' ? SASL_ERR_FORMAT : SASL_ERR_UTF8;
	return utf8_valid(s, n) ? SASL_OK : SASL_ERR_UTF8;
}

/* A password: 1..255 octets of UTF-8 without NUL (RFC 4616 §2 "1*SAFE"). */
static enum sasl_error
check_password(const unsigned char *s, size_t n)
{
	if (n == 0)
		return SASL_ERR_EMPTY;
	if (n > SASL_FIELD_MAX)
		return SASL_ERR_TOO_LONG;
	if (memchr(s, '\0', n) != NULL)
		return SASL_ERR_FORMAT;
	return utf8_valid(s, n) ? SASL_OK : SASL_ERR_UTF8;
}

/* Decodes n base64 characters into out (outsize octets).  Returns the
 * octet count or -1 with *err set.  Padding is optional: RFC 4954 asks
 * for RFC 4648 base64, and some clients drop the '='. */
static int
decode(const char *b64, size_t n, unsigned char *out, size_t outsize,
    enum sasl_error *err)
{
	int r;

	if (n > SASL_LINE_MAX) {
		*err = SASL_ERR_TOO_LONG;
		return -1;
	}
	if (n == 0) {
		/* Nothing: no octets at all (an empty LOGIN line, or
		 * PLAIN's "="-less empty answer). */
		return 0;
	}
	if ((r = b64_decode(b64, n, B64_PAD_OPTIONAL, out, outsize)) < 0) {
		*err = SASL_ERR_BASE64;
		return -1;
	}
	return r;
}

int
sasl_plain_decode(
    const char *b64, size_t n, struct sasl_creds *c, enum sasl_error *err_out)
{
	unsigned char msg[SASL_DECODED_MAX];
	const unsigned char *authzid, *authcid, *passwd, *nul1, *nul2;
	size_t zlen, clen, plen, len;
	enum sasl_error err = SASL_OK;
	int r;

	sasl_clear(c);
	if (sasl_is_empty_response(b64, n))
		n = 0;
	if ((r = decode(b64, n, msg, sizeof(msg), &err)) < 0)
		goto fail;
	len = (size_t)r;
	if ((nul1 = memchr(msg, '\0', len)) == NULL ||
	    (nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg))) ==
	        NULL) {
		err = SASL_ERR_FORMAT;
		goto fail;
	}
	authzid = msg;
	zlen = (size_t)(nul1 - msg);
	authcid = nul1 + 1;
	clen = (size_t)(nul2 - authcid);
	passwd = nul2 + 1;
	plen = len - (size_t)(passwd - msg);
	if (zlen > SASL_FIELD_MAX) {
		err = SASL_ERR_TOO_LONG;
		goto fail;
	}
	if ((err = check_login(authcid, clen)) != SASL_OK ||
	    (err = check_password(passwd, plen)) != SASL_OK)
		goto fail;
	if (zlen > 0) {
		/* "act as authcid" is the only authorization granted here
		 * (PRODUCT.md): an authzid that differs in any octet, case
		 * included, is refused. */
		if (check_login(authzid, zlen) != SASL_OK) {
			err = SASL_ERR_UTF8;
			goto fail;
		}
		if (zlen != clen || memcmp(authzid, authcid, clen) != 0) {
			err = SASL_ERR_AUTHZID;
			goto fail;
		}
	}
	memcpy(c->login, authcid, clen);
	c->login[clen] = '\0';
	c->login_len = clen;
	memcpy(c->password, passwd, plen);
	c->password[plen] = '\0';
	c->password_len = plen;
	explicit_bzero(msg, sizeof(msg));
	*err_out = SASL_OK;
	return 0;

fail:
	explicit_bzero(msg, sizeof(msg));
	sasl_clear(c);
	*err_out = err;
	return -1;
}

int
sasl_login_decode(struct sasl_creds *c, enum sasl_login_step step,
    const char *b64, size_t n, enum sasl_error *err_out)
{
	unsigned char v[SASL_DECODED_MAX];
	enum sasl_error err = SASL_OK;
	size_t len;
	int r;

	if ((r = decode(b64, n, v, sizeof(v), &err)) < 0)
		goto fail;
	len = (size_t)r;
	if (step == SASL_LOGIN_USERNAME) {
		if ((err = check_login(v, len)) != SASL_OK)
			goto fail;
		memcpy(c->login, v, len);
		c->login[len] = '\0';
		c->login_len = len;
	} else {
		if ((err = check_password(v, len)) != SASL_OK)
			goto fail;
		memcpy(c->password, v, len);
		c->password[len] = '\0';
		c->password_len = len;
	}
	explicit_bzero(v, sizeof(v));
	*err_out = SASL_OK;
	return 0;

fail:
	explicit_bzero(v, sizeof(v));
	sasl_clear(c);
	*err_out = err;
	return -1;
}

const char *
sasl_login_challenge(enum sasl_login_step step)
{
	/* base64("Username:") and base64("Password:"), as every LOGIN
	 * client expects them (draft-murchison-sasl-login §2). */
	return step == SASL_LOGIN_USERNAME ? "334 VXNlcm5hbWU6"
	                                   : "334 UGFzc3dvcmQ6";
}

const char *
sasl_plain_challenge(void)
{
	return "334 ";
}

const char *
sasl_strerror(enum sasl_error err)
{
	switch (err) {
	case SASL_OK:
		return "ok";
	case SASL_ERR_BASE64:
		return "invalid base64";
	case SASL_ERR_TOO_LONG:
		return "too long";
	case SASL_ERR_FORMAT:
		return "malformed response";
	case SASL_ERR_EMPTY:
		return "empty login or password";
	case SASL_ERR_UTF8:
		return "invalid characters";
	case SASL_ERR_AUTHZID:
		return "authorization identity not allowed";
	}
	return "?";
}
