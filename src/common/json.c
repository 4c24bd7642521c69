/*
 * json: string escaping for msgtrk's JSON output and a reader for
 * keyring lines.  See json.h.
 */
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "msgtrk/date.h"

/* Length of the valid UTF-8 sequence at s (n octets available), or 0
 * (RFC 3629 §4: no overlongs, no surrogates, nothing above U+10FFFF). */
static size_t
json_utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned long cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

int
json_str(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t start = b->len, i, l;
	int rc = 0;

	rc |= buf_addc(b, '"');
	for (i = 0; i < n && rc == 0; i += l) {
		l = 1;
		switch (p[i]) {
		case '"':
			rc = buf_adds(b, "\\\"");
			break;
		case '\\':
			rc = buf_adds(b, "\\\\");
			break;
		case '\n':
			rc = buf_adds(b, "\\n");
			break;
		case '\r':
			rc = buf_adds(b, "\\r");
			break;
		case '\t':
			rc = buf_adds(b, "\\t");
			break;
		case '\b':
			rc = buf_adds(b, "\\b");
			break;
		case '\f':
			rc = buf_adds(b, "\\f");
			break;
		default:
			if (p[i] < 0x20 || p[i] == 0x7f)
				rc = buf_addf(b, "\\u%04x", p[i]);
			else if ((l = json_utf8_len(p + i, n - i)) == 0) {
				l = 1;
				rc = buf_adds(b, "\\ufffd");
			} else
				rc = buf_add(b, p + i, l);
		}
	}
	if (rc == 0)
		rc = buf_addc(b, '"');
	if (rc != 0) {
		buf_truncate(b, start);
		return -1;
	}
	return 0;
}

int
json_cstr(struct buf *b, const char *s)
{
	if (s == NULL)
		return buf_adds(b, "null");
	return json_str(b, s, strlen(s));
}

int
json_date(struct buf *b, time_t t)
{
	struct date d = { t, 0 };
	char s[DATE_MAX];

	if (t == 0 || date_format(&d, s, sizeof(s)) == -1)
		return buf_adds(b, "null");
	return json_cstr(b, s);
}

int
json_key(struct buf *b, int first, const char *key)
{
	size_t start = b->len;

	if ((!first && buf_addc(b, ',') == -1) ||
	    json_str(b, key, strlen(key)) == -1 || buf_addc(b, ':') == -1) {
		buf_truncate(b, start);
		return -1;
	}
	return 0;
}

/*
 * Reader
 */

struct json_rd {
	const char *s;
	size_t n, pos;
	char *err;
	size_t errsize;
};

static int
json_fail(struct json_rd *r, const char *what)
{
	snprintf(r->err, r->errsize, "offset %zu: %s", r->pos, what);
	return -1;
}

static void
json_ws(struct json_rd *r)
{
	while (r->pos < r->n &&
	    (r->s[r->pos] == ' ' || r->s[r->pos] == '\t' ||
	        r->s[r->pos] == '\n' || r->s[r->pos] == '\r'))
		r->pos++;
}

static int
json_hex4(struct json_rd *r, unsigned long *out)
{
	unsigned long v = 0;
	int i, c;

	if (r->n - r->pos < 4)
		return json_fail(r, "truncated \\u escape");
	for (i = 0; i < 4; i++) {
		c = (unsigned char)r->s[r->pos + i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned long)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned long)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned long)(c - 'A' + 10);
		else
			return json_fail(r, "bad hex digit in \\u escape");
	}
	r->pos += 4;
	*out = v;
	return 0;
}

/* Appends code point cp as UTF-8 to out (len *len, size JSON_STRING_MAX
 * + 1). */
static int
json_put_cp(struct json_rd *r, char *out, size_t *len, unsigned long cp)
{
	unsigned char u[4];
	size_t k = 0;

	if (cp < 0x80)
		u[k++] = (unsigned char)cp;
	else if (cp < 0x800) {
		u[k++] = (unsigned char)(0xc0 | (cp >> 6));
		u[k++] = (unsigned char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		u[k++] = (unsigned char)(0xe0 | (cp >> 12));
		u[k++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[k++] = (unsigned char)(0x80 | (cp & 0x3f));
	} else {
		u[k++] = (unsigned char)(0xf0 | (cp >> 18));
		u[k++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		u[k++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[k++] = (unsigned char)(0x80 | (cp & 0x3f));
	}
	if (*len + k > JSON_STRING_MAX)
		return json_fail(r, "string too long");
	memcpy(out + *len, u, k);
	*len += k;
	return 0;
}

/* Reads a string at r->pos (which is '"') into out (JSON_STRING_MAX + 1
 * octets).  No NUL may come out of it (\u0000 is refused). */
static int
json_string(struct json_rd *r, char *out, size_t *len_out)
{
	size_t len = 0, l;
	unsigned long cp, lo;

	r->pos++;
	for (;;) {
		unsigned char c;

		if (r->pos >= r->n)
			return json_fail(r, "unterminated string");
		c = (unsigned char)r->s[r->pos];
		if (c == '"') {
			r->pos++;
			break;
		}
		if (c < 0x20)
			return json_fail(r, "control character in string");
		if (c != '\\') {
			if ((l = json_utf8_len(
			         (const unsigned char *)r->s + r->pos,
			         r->n - r->pos)) == 0)
				return json_fail(r, "invalid UTF-8");
			if (len + l > JSON_STRING_MAX)
				return json_fail(r, "string too long");
			memcpy(out + len, r->s + r->pos, l);
			len += l;
			r->pos += l;
			continue;
		}
		if (++r->pos >= r->n)
			return json_fail(r, "unterminated escape");
		c = (unsigned char)r->s[r->pos++];
		switch (c) {
		case '"':
		case '\\':
		case '/':
			cp = c;
			break;
		case 'b':
			cp = '\b';
			break;
		case 'f':
			cp = '\f';
			break;
		case 'n':
			cp = '\n';
			break;
		case 'r':
			cp = '\r';
			break;
		case 't':
			cp = '\t';
			break;
		case 'u':
			if (json_hex4(r, &cp) == -1)
				return -1;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return json_fail(r, "lone low surrogate");
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (r->n - r->pos < 2 || r->s[r->pos] != '\\' ||
				    r->s[r->pos + 1] != 'u')
					return json_fail(
					    r, "lone high surrogate");
				r->pos += 2;
				if (json_hex4(r, &lo) == -1)
					return -1;
				if (lo < 0xdc00 || lo > 0xdfff)
					return json_fail(
					    r, "bad low surrogate");
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
			}
			if (cp == 0)
				return json_fail(r, "\\u0000 in string");
			break;
		default:
			return json_fail(r, "bad escape");
		}
		if (json_put_cp(r, out, &len, cp) == -1)
			return -1;
	}
	out[len] = '\0';
	*len_out = len;
	return 0;
}

static int
json_expect(struct json_rd *r, char c, const char *what)
{
	json_ws(r);
	if (r->pos >= r->n || r->s[r->pos] != c)
		return json_fail(r, what);
	r->pos++;
	return 0;
}

int
json_read_object(const char *s, size_t n, json_member_fn fn, void *arg,
    char *err, size_t errsize)
{
	struct json_rd r = { s, n, 0, err, errsize };
	char key[JSON_STRING_MAX + 1], val[JSON_STRING_MAX + 1];
	size_t klen, vlen, members = 0;
	long idx;

	if (json_expect(&r, '{', "expected '{'") == -1)
		return -1;
	json_ws(&r);
	if (r.pos < n && s[r.pos] == '}') {
		r.pos++;
		goto end;
	}
	for (;;) {
		json_ws(&r);
		if (r.pos >= n || s[r.pos] != '"')
			return json_fail(&r, "expected a member name");
		if (++members > JSON_MEMBERS_MAX)
			return json_fail(&r, "too many members");
		if (json_string(&r, key, &klen) == -1)
			return -1;
		if (json_expect(&r, ':', "expected ':'") == -1)
			return -1;
		json_ws(&r);
		if (r.pos < n && s[r.pos] == '"') {
			if (json_string(&r, val, &vlen) == -1)
				return -1;
			if (fn(arg, key, val, vlen, -1, err, errsize) == -1)
				return -1;
		} else if (n - r.pos >= 4 &&
		    memcmp(s + r.pos, "null", 4) == 0) {
			r.pos += 4;
			if (fn(arg, key, NULL, 0, -1, err, errsize) == -1)
				return -1;
		} else if (r.pos < n && s[r.pos] == '[') {
			r.pos++;
			json_ws(&r);
			idx = 0;
			if (r.pos < n && s[r.pos] == ']')
				r.pos++;
			else
				for (;;) {
					json_ws(&r);
					if (r.pos >= n || s[r.pos] != '"')
						return json_fail(&r,
						    "expected a string in "
						    "array");
					if (idx >= JSON_ARRAY_MAX)
						return json_fail(
						    &r, "array too long");
					if (json_string(&r, val, &vlen) == -1)
						return -1;
					if (fn(arg, key, val, vlen, idx++, err,
					        errsize) == -1)
						return -1;
					json_ws(&r);
					if (r.pos < n && s[r.pos] == ']') {
						r.pos++;
						break;
					}
					if (json_expect(&r, ',',
					        "expected ',' or ']'") == -1)
						return -1;
				}
		} else
			return json_fail(
			    &r, "expected a string, null or an array");
		json_ws(&r);
		if (r.pos < n && s[r.pos] == '}') {
			r.pos++;
			break;
		}
		if (json_expect(&r, ',', "expected ',' or '}'") == -1)
			return -1;
	}
end:
	json_ws(&r);
	if (r.pos != n)
		return json_fail(&r, "text after the object");
	return 0;
}
