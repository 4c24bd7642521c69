/*
 * dovecot_proto: see dovecot_proto.h.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dovecot_proto.h"

void
dovecot_reader_init(struct dovecot_reader *r)
{
	r->len = 0;
	r->ready = 0;
	r->line[0] = '\0';
}

int
dovecot_reader_feed(
    struct dovecot_reader *r, const char *in, size_t n, size_t *used_out)
{
	const char *nl;
	size_t take;

	if (r->ready) {
		r->len = 0;
		r->ready = 0;
	}
	*used_out = 0;
	nl = memchr(in, '\n', n);
	take = nl != NULL ? (size_t)(nl - in) : n;
	if (take > DOVECOT_LINE_MAX - r->len)
		return -1;
	memcpy(r->line + r->len, in, take);
	r->len += take;
	r->line[r->len] = '\0';
	if (nl == NULL) {
		*used_out = n;
		return 0;
	}
	*used_out = take + 1;
	r->ready = 1;
	return 1;
}

/* The next TAB-separated field of [*p, end): sets *f and *fn, moves *p
 * past it.  Returns 0 when there is none. */
static int
next_field(const char **p, const char *end, const char **f, size_t *fn)
{
	const char *tab;

	if (*p == NULL)
		return 0;
	tab = memchr(*p, '\t', (size_t)(end - *p));
	*f = *p;
	*fn = tab != NULL ? (size_t)(tab - *p) : (size_t)(end - *p);
	*p = tab != NULL ? tab + 1 : NULL;
	return 1;
}

/* A decimal number 0..UINT_MAX without sign or leading blank. */
static int
number(const char *s, size_t n, unsigned *out)
{
	unsigned long v = 0;
	size_t i;

	if (n == 0 || n > 10)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > UINT_MAX)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int
field_is(const char *f, size_t n, const char *name)
{
	return strlen(name) == n && memcmp(f, name, n) == 0;
}

/* Unescapes a user= value into out (DOVECOT_USER_MAX + 1 bytes).  A
 * login with a control character (NUL, TAB, LF... once unescaped) is
 * refused: it would reach logs and lookups. */
static int
unescape_user(const char *s, size_t n, char *out)
{
	size_t i, o = 0;
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == 0x01) {
			if (++i == n)
				return -1;
			switch (s[i]) {
			case '0':
				c = 0;
				break;
			case '1':
				c = 0x01;
				break;
			case 't':
				c = '\t';
				break;
			case 'r':
				c = '\r';
				break;
			case 'n':
			case 'l':
				c = '\n';
				break;
			default:
				c = (unsigned char)s[i];
			}
		}
		if (c < 0x20 || c == 0x7f)
			return -1;
		if (o == DOVECOT_USER_MAX)
			return -1;
		out[o++] = (char)c;
	}
	if (o == 0)
		return -1;
	out[o] = '\0';
	return 0;
}

int
dovecot_parse(const char *line, size_t n, struct dovecot_reply *out)
{
	const char *end = line + n, *p = line, *f;
	size_t fn;

	memset(out, 0, sizeof(*out));
	if (!next_field(&p, end, &f, &fn))
		return 0;
	if (field_is(f, fn, "VERSION")) {
		out->kind = DOVECOT_VERSION;
		if (!next_field(&p, end, &f, &fn) ||
		    number(f, fn, &out->major) == -1 ||
		    !next_field(&p, end, &f, &fn) ||
		    number(f, fn, &out->minor) == -1)
			return -1;
		return 0;
	}
	if (field_is(f, fn, "MECH")) {
		out->kind = DOVECOT_MECH;
		if (!next_field(&p, end, &f, &fn) || fn == 0 ||
		    fn > DOVECOT_MECH_MAX)
			return -1;
		memcpy(out->mech, f, fn);
		out->mech[fn] = '\0';
		while (next_field(&p, end, &f, &fn))
			if (field_is(f, fn, "plaintext"))
				out->plaintext = 1;
		return 0;
	}
	if (field_is(f, fn, "SPID") || field_is(f, fn, "CUID") ||
	    field_is(f, fn, "COOKIE") || field_is(f, fn, "DONE")) {
		out->kind = field_is(f, fn, "SPID") ? DOVECOT_SPID
		    : field_is(f, fn, "CUID")       ? DOVECOT_CUID
		    : field_is(f, fn, "COOKIE")     ? DOVECOT_COOKIE
		                                    : DOVECOT_DONE;
		return 0;
	}
	if (field_is(f, fn, "OK"))
		out->kind = DOVECOT_OK;
	else if (field_is(f, fn, "FAIL"))
		out->kind = DOVECOT_FAIL;
	else if (field_is(f, fn, "CONT"))
		out->kind = DOVECOT_CONT;
	else
		return 0; /* DOVECOT_OTHER */
	if (!next_field(&p, end, &f, &fn) || number(f, fn, &out->id) == -1 ||
	    out->id == 0)
		return -1;
	if (out->kind == DOVECOT_CONT)
		return 0;
	while (next_field(&p, end, &f, &fn)) {
		if (fn >= 5 && memcmp(f, "user=", 5) == 0) {
			if (unescape_user(f + 5, fn - 5, out->user) == -1)
				return -1;
			out->has_user = 1;
		} else if (out->kind == DOVECOT_FAIL &&
		    (field_is(f, fn, "temp") ||
		        field_is(f, fn, "code=temp_fail")))
			out->temp = 1;
	}
	return 0;
}

int
dovecot_format_hello(char *out, size_t outsize, unsigned long pid)
{
	int n = snprintf(out, outsize, "VERSION\t%d\t%d\nCPID\t%lu\n",
	    DOVECOT_MAJOR, DOVECOT_MINOR, pid);

	return n < 0 || (size_t)n >= outsize ? -1 : n;
}

static int
field_safe(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

int
dovecot_format_auth(char *out, size_t outsize, unsigned id, const char *rip,
    int secured, const char *resp)
{
	int n;

	if (id == 0 || resp == NULL || !field_safe(resp) ||
	    (rip != NULL && !field_safe(rip)))
		return -1;
	n = snprintf(out, outsize,
	    "AUTH\t%u\tPLAIN\tservice=smtp%s\tno-penalty%s%s\tresp=%s\n", id,
	    secured ? "\tsecured" : "",
	    rip != NULL && rip[0] != '\0' ? "\trip=" : "",
	    rip != NULL ? rip : "", resp);
	return n < 0 || (size_t)n >= outsize ? -1 : n;
}
