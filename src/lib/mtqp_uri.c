/*
 * mtqp_uri: the mtqp: URI scheme (RFC 3887 §9).  See msgtrk/mtqp.h.
 *
 *   mtqp-uri = "mtqp://" authority "/track/" unique-envid "/" mtrk-secret
 *
 * §9.4: "If the "/", "?" and "%" octets appear in unique-envid or
 * mtrk-secret, they are further required to be represented by a "%"
 * followed by two hexadecimal characters."
 */
#include <errno.h>
#include <string.h>

#include "msgtrk/buf.h"
#include "msgtrk/mtqp.h"
#include "msgtrk/str.h"

const char *
mtqp_uri_strerror(enum mtqp_uri_error err)
{
	switch (err) {
	case MTQP_URI_E_NONE:
		return "no error";
	case MTQP_URI_E_TOO_LONG:
		return "URI too long";
	case MTQP_URI_E_CHAR:
		return "invalid character in URI";
	case MTQP_URI_E_SCHEME:
		return "not an mtqp: URI";
	case MTQP_URI_E_HOST:
		return "invalid host";
	case MTQP_URI_E_PORT:
		return "invalid port";
	case MTQP_URI_E_PATH:
		return "path is not /track/<envid>/<secret>";
	case MTQP_URI_E_PERCENT:
		return "invalid percent-encoding";
	case MTQP_URI_E_ENVID:
		return "invalid envelope id";
	case MTQP_URI_E_SECRET:
		return "invalid secret";
	}
	return "unknown error";
}

static int
mtqp_uri_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int
mtqp_uri_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* RFC 3986 pchar minus pct-encoded: what we write without encoding. */
static int
mtqp_uri_pchar(int c)
{
	return mtqp_uri_alnum(c) || strchr("-._~!$&'()*+,;=:@", c) != NULL;
}

/* Checks the host: a reg-name / IPv4 of letters, digits, "-" and "."
 * in non-empty labels, or an IP-literal "[" HEXDIG / ":" / "." "]". */
static int
mtqp_uri_host_ok(const char *s, size_t n)
{
	size_t i, label = 0;

	if (n == 0 || n > MTQP_DOMAIN_MAX)
		return 0;
	if (s[0] == '[') {
		if (n < 3 || s[n - 1] != ']')
			return 0;
		for (i = 1; i < n - 1; i++)
			if (mtqp_uri_hexval((unsigned char)s[i]) == -1 &&
			    s[i] != ':' && s[i] != '.')
				return 0;
		return 1;
	}
	for (i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!mtqp_uri_alnum((unsigned char)s[i]) && s[i] != '-')
			return 0;
		if (++label > MTQP_LABEL_MAX)
			return 0;
	}
	return 1;
}

/* %-decodes the n octets at s into dst (dstsize).  Returns the decoded
 * length, or -1 with *err_out set. */
static int
mtqp_uri_decode(const char *s, size_t n, char *dst, size_t dstsize,
    enum mtqp_uri_error toolong, enum mtqp_uri_error *err_out)
{
	size_t i, o = 0;
	int hi, lo, c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == '%') {
			if (n - i < 3 ||
			    (hi = mtqp_uri_hexval((unsigned char)s[i + 1])) ==
			        -1 ||
			    (lo = mtqp_uri_hexval((unsigned char)s[i + 2])) ==
			        -1) {
				*err_out = MTQP_URI_E_PERCENT;
				return -1;
			}
			c = hi * 16 + lo;
			if (c == '\0') {
				*err_out = MTQP_URI_E_CHAR;
				return -1;
			}
			i += 2;
		}
		if (o + 1 >= dstsize) {
			*err_out = toolong;
			return -1;
		}
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return (int)o;
}

int
mtqp_uri_parse(
    const char *s, size_t n, struct mtqp_uri *u, enum mtqp_uri_error *err_out)
{
	const char *auth, *path, *sl, *colon;
	size_t i, alen, hlen;
	unsigned long port;
	int d;

	memset(u, 0, sizeof(*u));
	u->port = MTQP_PORT;
	*err_out = MTQP_URI_E_NONE;
	if (n > MTQP_URI_MAX) {
		*err_out = MTQP_URI_E_TOO_LONG;
		return -1;
	}
	/* Only visible ASCII: RFC 3986 §2 has no place for the rest. */
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 ||
		    (unsigned char)s[i] >= 0x7f) {
			*err_out = MTQP_URI_E_CHAR;
			return -1;
		}
	/* RFC 3986 §3.1: schemes are case-insensitive. */
	if (n < 7 || !str_casestarts(s, n, "mtqp://")) {
		*err_out = MTQP_URI_E_SCHEME;
		return -1;
	}
	auth = s + 7;
	sl = memchr(auth, '/', n - 7);
	alen = sl == NULL ? n - 7 : (size_t)(sl - auth);
	/* The authority ends at "/"; "?" or "#" before it is no path. */
	if (sl == NULL || memchr(auth, '?', alen) != NULL ||
	    memchr(auth, '#', alen) != NULL) {
		*err_out = alen == 0 ? MTQP_URI_E_HOST : MTQP_URI_E_PATH;
		return -1;
	}
	/* No userinfo: MTQP has no user (§11: no SASL). */
	if (memchr(auth, '@', alen) != NULL) {
		*err_out = MTQP_URI_E_HOST;
		return -1;
	}
	colon = NULL;
	for (i = alen; i > 0; i--)
		if (auth[i - 1] == ':' || auth[i - 1] == ']') {
			if (auth[i - 1] == ':')
				colon = auth + i - 1;
			break;
		}
	hlen = colon == NULL ? alen : (size_t)(colon - auth);
	if (!mtqp_uri_host_ok(auth, hlen)) {
		*err_out = MTQP_URI_E_HOST;
		return -1;
	}
	memcpy(u->host, auth, hlen);
	u->host[hlen] = '\0';
	if (colon != NULL && colon + 1 < auth + alen) {
		/* port = *DIGIT; an empty port means the default
		 * (RFC 3986 §3.2.3). */
		port = 0;
		for (i = hlen + 1; i < alen; i++) {
			if (auth[i] < '0' || auth[i] > '9' || i - hlen > 5) {
				*err_out = MTQP_URI_E_PORT;
				return -1;
			}
			port = port * 10 + (unsigned long)(auth[i] - '0');
		}
		if (port == 0 || port > 65535) {
			*err_out = MTQP_URI_E_PORT;
			return -1;
		}
		u->port = (unsigned int)port;
		u->port_given = 1;
	}
	/* §9.3: "The path element "/track/" MUST BE treated case
	 * insensitively". */
	path = auth + alen;
	n -= (size_t)(path - s);
	if (n < 7 || !str_casestarts(path, n, "/track/")) {
		*err_out = MTQP_URI_E_PATH;
		return -1;
	}
	path += 7;
	n -= 7;
	if (memchr(path, '?', n) != NULL || memchr(path, '#', n) != NULL) {
		*err_out = MTQP_URI_E_PATH;
		return -1;
	}
	sl = memchr(path, '/', n);
	if (sl == NULL || sl == path || sl == path + n - 1 ||
	    memchr(sl + 1, '/', n - (size_t)(sl + 1 - path)) != NULL) {
		*err_out = MTQP_URI_E_PATH;
		return -1;
	}
	/* §9.3: the envid and secret "MUST NOT" be treated
	 * case-insensitively: they are kept as they are. */
	d = mtqp_uri_decode(path, (size_t)(sl - path), u->envid,
	    sizeof(u->envid), MTQP_URI_E_ENVID, err_out);
	if (d == -1)
		goto fail;
	if (mtqp_cmd_envid_check(u->envid, (size_t)d) == -1) {
		*err_out = MTQP_URI_E_ENVID;
		goto fail;
	}
	d = mtqp_uri_decode(sl + 1, n - (size_t)(sl + 1 - path), u->secret,
	    sizeof(u->secret), MTQP_URI_E_SECRET, err_out);
	if (d == -1)
		goto fail;
	if (mtqp_cmd_secret_check(u->secret, (size_t)d) == -1) {
		*err_out = MTQP_URI_E_SECRET;
		goto fail;
	}
	return 0;
fail:
	explicit_bzero(u, sizeof(*u));
	return -1;
}

static int
mtqp_uri_encode(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;
	int c;

	for (i = 0; s[i] != '\0'; i++) {
		c = (unsigned char)s[i];
		if (mtqp_uri_pchar(c)) {
			if (buf_addc(b, c) == -1)
				return -1;
		} else if (buf_addc(b, '%') == -1 ||
		    buf_addc(b, hex[c >> 4]) == -1 ||
		    buf_addc(b, hex[c & 15]) == -1)
			return -1;
	}
	return 0;
}

int
mtqp_uri_format(struct buf *b, const struct mtqp_uri *u)
{
	size_t start = b->len;

	if (!mtqp_uri_host_ok(u->host, strnlen(u->host, sizeof(u->host))) ||
	    u->port == 0 || u->port > 65535 ||
	    mtqp_cmd_envid_check(
	        u->envid, strnlen(u->envid, sizeof(u->envid))) == -1 ||
	    mtqp_cmd_secret_check(
	        u->secret, strnlen(u->secret, sizeof(u->secret))) == -1) {
		errno = EINVAL;
		return -1;
	}
	if (buf_addf(b, "mtqp://%s", u->host) == -1)
		goto fail;
	if ((u->port_given || u->port != MTQP_PORT) &&
	    buf_addf(b, ":%u", u->port) == -1)
		goto fail;
	if (buf_adds(b, "/track/") == -1 ||
	    mtqp_uri_encode(b, u->envid) == -1 || buf_addc(b, '/') == -1 ||
	    mtqp_uri_encode(b, u->secret) == -1)
		goto fail;
	if (b->len - start > MTQP_URI_MAX) {
		errno = EINVAL;
		goto fail;
	}
	return 0;
fail:
	buf_truncate(b, start);
	return -1;
}
