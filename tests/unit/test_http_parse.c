/*
 * test_http_parse: the HTTP server's parsers (src/http/http_parse.c):
 * form bodies and query strings fed whole, a byte at a time and split at
 * every offset (tests/unit/table.h), the Cookie header, and the tracking
 * request of the page's form and of POST /api/v1/track.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_parse.h"
#include "msgtrk/buf.h"
#include "table.h"

#define SECRET "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define URI "mtqp://hop1.test/track/a1@client.test/" SECRET

/*
 * Forms
 */

struct form_case {
	const char *name;
	const char *in;
	size_t len; /* 0: strlen(in) */
	/* "name=[value]" per field, or "error: <strerror>" */
	const char *want;
};

static const struct form_case form_cases[] = {
	{ "empty", "", 0, "" },
	{ "one", "uri=mtqp%3A%2F%2Fh%2Ftrack", 0, "uri=[mtqp://h/track]" },
	{ "two", "a=1&b=2", 0, "a=[1]b=[2]" },
	{ "plus is space", "q=a+b%20c", 0, "q=[a b c]" },
	{ "plus escaped", "q=a%2Bb", 0, "q=[a+b]" },
	{ "no value", "a&b=", 0, "a=[]b=[]" },
	{ "empty fields skipped", "&&a=1&&b=2&", 0, "a=[1]b=[2]" },
	{ "equals in value", "a=b=c", 0, "a=[b=c]" },
	{ "escaped name", "%61%62=1", 0, "ab=[1]" },
	{ "lower hex", "a=%2f%2F", 0, "a=[//]" },
	{ "utf8 value", "a=%C3%A9", 0, "a=[\xc3\xa9]" },
	{ "bad escape", "a=%2g", 0,
	    "error: a '%' not followed by two hex "
	    "digits" },
	{ "truncated escape", "a=%2", 0,
	    "error: a '%' not followed by two "
	    "hex digits" },
	{ "lone percent", "a=%", 0,
	    "error: a '%' not followed by two hex "
	    "digits" },
	{ "escaped NUL", "a=%00", 0, "error: a NUL octet" },
	{ "raw NUL", "a=x\0y", 5, "error: a NUL octet" },
	{ "empty name", "=v", 0,
	    "error: a field name that is empty or not "
	    "[A-Za-z0-9_.-]" },
	{ "bad name", "a b=1", 0,
	    "error: a field name that is empty or not "
	    "[A-Za-z0-9_.-]" },
	{ "duplicate", "a=1&a=2", 0, "error: a field given twice" },
	{ "long name", "abcdefghijabcdefghijabcdefghijabc=1", 0,
	    "error: a field name too long" },
	{ "name at the limit", "abcdefghijabcdefghijabcdefghijab=1", 0,
	    "abcdefghijabcdefghijabcdefghijab=[1]" },
	{ "seventeen fields",
	    "a=1&b=1&c=1&d=1&e=1&f=1&g=1&h=1&i=1&j=1&k=1&l=1&m=1&n=1&o=1&p=1&"
	    "q=1",
	    0, "error: too many fields" },
	{ "seventeenth escaped",
	    "a=1&b=1&c=1&d=1&e=1&f=1&g=1&h=1&i=1&j=1&k=1&l=1&m=1&n=1&o=1&p=1&"
	    "%71=1",
	    0, "error: too many fields" },
	{ "sixteen fields",
	    "a=1&b=1&c=1&d=1&e=1&f=1&g=1&h=1&i=1&j=1&k=1&l=1&m=1&n=1&o=1&p=1",
	    0,
	    "a=[1]b=[1]c=[1]d=[1]e=[1]f=[1]g=[1]h=[1]i=[1]j=[1]k=[1]l=[1]m=[1]"
	    "n=[1]o=[1]p=[1]" },
};

static void
form_feed(const void *ctx, const char *in, size_t n, const size_t *cuts,
    size_t ncuts, struct buf *out)
{
	struct http_form *f = http_form_new();
	size_t i, from = 0, to;
	int rc = 0;

	(void)ctx;
	assert_non_null(f);
	for (i = 0; i <= ncuts && rc == 0; i++) {
		to = i < ncuts ? cuts[i] : n;
		rc = http_form_push(f, in + from, to - from);
		from = to;
	}
	if (rc == 0)
		rc = http_form_end(f);
	buf_clear(out);
	if (rc == -1)
		buf_addf(
		    out, "error: %s", http_form_strerror(http_form_error(f)));
	else
		for (i = 0; i < http_form_count(f); i++) {
			size_t vlen;
			const char *v = http_form_value(f, i, &vlen);

			assert_int_equal(strlen(v), vlen);
			buf_addf(out, "%s=[%s]", http_form_name(f, i), v);
		}
	http_form_free(f);
}

static const char *
form_name(const void *row)
{
	return ((const struct form_case *)row)->name;
}

static void
test_form(void **state)
{
	const struct form_case *c = *state;

	table_check_splits(
	    form_feed, c, c->in, c->len ? c->len : strlen(c->in), c->want);
}

/* The decoded size is bounded, and an error is sticky. */
static void
test_form_limits(void **state)
{
	struct http_form *f = http_form_new();
	char chunk[1000];
	size_t i;
	int rc = 0;

	(void)state;
	assert_non_null(f);
	/* A value at the limit, then one octet over. */
	assert_int_equal(http_form_push(f, "v=", 2), 0);
	memset(chunk, 'x', sizeof(chunk));
	for (i = 0; i < HTTP_FORM_VALUE_MAX / sizeof(chunk); i++)
		assert_int_equal(http_form_push(f, chunk, sizeof(chunk)), 0);
	assert_int_equal(
	    http_form_push(f, chunk, HTTP_FORM_VALUE_MAX % sizeof(chunk)), 0);
	assert_int_equal(http_form_push(f, "y", 1), -1);
	assert_int_equal(http_form_error(f), HTTP_FORM_E_VALUE_LONG);
	assert_int_equal(http_form_push(f, "&a=1", 4), -1);
	assert_int_equal(http_form_end(f), -1);
	assert_int_equal(http_form_count(f), 0);
	assert_null(http_form_get(f, "v"));
	http_form_free(f);
	/* Fields at the value limit fill the data: the form is refused as
	 * too large, never overrun. */
	f = http_form_new();
	assert_non_null(f);
	for (i = 0; i < HTTP_FORM_FIELDS_MAX && rc == 0; i++) {
		char name[8];
		size_t k;

		snprintf(
		    name, sizeof(name), "%s%c=", i ? "&" : "", (char)('a' + i));
		rc = http_form_push(f, name, strlen(name));
		for (k = 0; k < HTTP_FORM_VALUE_MAX && rc == 0; k += 512)
			rc = http_form_push(f, chunk, 512);
	}
	assert_int_equal(rc, -1);
	assert_int_equal(http_form_error(f), HTTP_FORM_E_TOO_LARGE);
	http_form_free(f);
	assert_string_equal(
	    http_form_strerror((enum http_form_error)99), "unknown error");
}

/*
 * Cookie
 */

struct cookie_case {
	const char *name;
	const char *header;
	int rc;
	const char *value;
};

static const struct cookie_case cookie_cases[] = {
	{ "alone", "s=abc", 1, "abc" },
	{ "among others", "a=1; s=abc; b=2", 1, "abc" },
	{ "no spaces", "a=1;s=abc;b=2", 1, "abc" },
	{ "spaces around", "  s = abc ;", 1, "abc" },
	{ "quoted", "s=\"abc\"", 1, "abc" },
	{ "empty value", "s=", 1, "" },
	{ "absent", "a=1; b=2", 0, NULL },
	{ "prefix only", "ss=1; s2=3", 0, NULL },
	{ "no equals ignored", "s; t=1", 0, NULL },
	{ "empty header", "", 0, NULL },
	{ "twice", "s=a; s=b", -1, NULL },
	{ "too long", "s=0123456789abcdef", -1, NULL },
	{ "control", "s=a\x01; b=2", -1, NULL },
	{ "newline", "s=a\r\nX: y", -1, NULL },
	{ "DEL", "s=a\x7f", -1, NULL },
	{ "tab ok", "s=\tabc", 1, "abc" },
	{ "case matters", "S=abc", 0, NULL },
};

static const char *
cookie_name(const void *row)
{
	return ((const struct cookie_case *)row)->name;
}

static void
test_cookie(void **state)
{
	const struct cookie_case *c = *state;
	char out[16];

	assert_int_equal(http_cookie_find(c->header, strlen(c->header), "s",
	                     out, sizeof(out)),
	    c->rc);
	if (c->rc == 1)
		assert_string_equal(out, c->value);
}

/*
 * Tracking requests
 */

struct req_case {
	const char *name;
	int json; /* 1: the body is JSON, 0: a form */
	const char *in;
	/* "envid secret server", or "error: <message start>" */
	const char *want;
};

static const struct req_case req_cases[] = {
	{ "form uri", 0, "uri=" URI, "a1@client.test " SECRET " hop1.test" },
	{ "form uri port", 0,
	    "uri=mtqp%3A%2F%2Fhop1.test%3A11038%2Ftrack%2Fa1%40client.test%"
	    "2F" SECRET,
	    "a1@client.test " SECRET " hop1.test:11038" },
	{ "form uri and empty fields", 0,
	    "uri=" URI "&envid=&secret=&server=&go=Track",
	    "a1@client.test " SECRET " hop1.test" },
	{ "form fields", 0,
	    "uri=&envid=a1%40client.test&secret=" SECRET "&server=hop1.test",
	    "a1@client.test " SECRET " hop1.test" },
	{ "form v6 server", 0,
	    "envid=a1@client.test&secret=" SECRET "&server=[::1]:11038",
	    "a1@client.test " SECRET " [::1]:11038" },
	{ "form both", 0, "uri=" URI "&envid=x@y",
	    "error: give an mtqp:// URI, or an envid, a secret and a server, "
	    "not both" },
	{ "form nothing", 0, "go=Track",
	    "error: give an mtqp:// URI, or an envid, a secret and a server" },
	{ "form no server", 0, "envid=a1@client.test&secret=" SECRET,
	    "error: give an mtqp:// URI" },
	{ "form bad uri", 0, "uri=http://x/", "error: bad mtqp: URI" },
	{ "form bad envid", 0,
	    "envid=nohost&secret=" SECRET "&server=hop1.test",
	    "error: envid: not a unique-envid" },
	{ "form bad secret", 0,
	    "envid=a1@client.test&secret=not*base64&server=hop1.test",
	    "error: secret: not a base64 MTRK secret" },
	{ "form bad server", 0,
	    "envid=a1@client.test&secret=" SECRET "&server=h/x",
	    "error: server: expected HOST[:PORT]" },
	{ "form bad port", 0,
	    "envid=a1@client.test&secret=" SECRET "&server=h:65536",
	    "error: server: expected HOST[:PORT]" },
	{ "form port zero", 0,
	    "envid=a1@client.test&secret=" SECRET "&server=h:0",
	    "error: server: expected HOST[:PORT]" },
	{ "form empty v6", 0,
	    "envid=a1@client.test&secret=" SECRET "&server=[]:1",
	    "error: server: expected HOST[:PORT]" },
	{ "json uri", 1, "{\"uri\": \"" URI "\"}",
	    "a1@client.test " SECRET " hop1.test" },
	{ "json fields", 1,
	    "{\"envid\": \"a1@client.test\", \"secret\": \"" SECRET
	    "\", \"server\": \"hop1.test:11038\"}",
	    "a1@client.test " SECRET " hop1.test:11038" },
	{ "json unknown member", 1, "{\"uri\": \"" URI "\", \"x\": \"1\"}",
	    "error: bad JSON request: unknown member \"x\"" },
	{ "json twice", 1, "{\"uri\": \"" URI "\", \"uri\": \"" URI "\"}",
	    "error: bad JSON request: \"uri\" given twice" },
	{ "json null", 1, "{\"uri\": null}",
	    "error: bad JSON request: \"uri\" must be a string" },
	{ "json array", 1, "{\"uri\": [\"" URI "\"]}",
	    "error: bad JSON request: \"uri\" must be a string" },
	{ "json not an object", 1, "[1]", "error: bad JSON request: " },
	{ "json empty", 1, "", "error: bad JSON request: " },
	{ "json empty object", 1, "{}",
	    "error: give an mtqp:// URI, or an envid, a secret and a server" },
	{ "json trailing", 1, "{\"uri\": \"" URI "\"} x",
	    "error: bad JSON request: " },
	{ "json NUL escape", 1, "{\"uri\": \"a\\u0000\"}",
	    "error: bad JSON request: " },
};

static const char *
req_name(const void *row)
{
	return ((const struct req_case *)row)->name;
}

static void
test_req(void **state)
{
	const struct req_case *c = *state;
	struct http_track_req r;
	char err[512], got[1024];
	int rc;

	if (c->json)
		rc = http_track_req_json(
		    c->in, strlen(c->in), &r, err, sizeof(err));
	else {
		struct http_form *f = http_form_new();

		assert_non_null(f);
		assert_int_equal(http_form_push(f, c->in, strlen(c->in)), 0);
		assert_int_equal(http_form_end(f), 0);
		rc = http_track_req_form(f, &r, err, sizeof(err));
		http_form_free(f);
	}
	if (rc == 0)
		snprintf(
		    got, sizeof(got), "%s %s %s", r.envid, r.secret, r.server);
	else {
		snprintf(got, sizeof(got), "error: %s", err);
		/* Never the secret in a message. */
		assert_null(strstr(err, SECRET));
	}
	if (strncmp(c->want, "error: ", 7) == 0) {
		if (strncmp(got, c->want, strlen(c->want)) != 0)
			fail_msg("got \"%s\"", got);
	} else
		assert_string_equal(got, c->want);
	http_track_req_clear(&r);
	assert_int_equal(r.secret[0], 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form_limits),
	};
	int failed = 0;

	failed += TABLE_RUN("form", test_form, form_cases, form_name);
	failed += TABLE_RUN("cookie", test_cookie, cookie_cases, cookie_name);
	failed += TABLE_RUN("track request", test_req, req_cases, req_name);
	failed += cmocka_run_group_tests_name("http_parse", tests, NULL, NULL);
	return failed != 0;
}
