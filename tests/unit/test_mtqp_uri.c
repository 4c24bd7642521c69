/*
 * test_mtqp_uri: mtqp: URIs (RFC 3887 §9).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/mtqp.h"
#include "table.h"

struct parse_row {
	const char *name;
	const char *in;
	enum mtqp_uri_error err;
	const char *host;
	unsigned int port;
	int port_given;
	const char *envid;
	const char *secret;
	const char *canon; /* mtqp_uri_format() of the result */
};

#define S "AAECAwQFBgcICQoLDA0ODxAR"
#define FAIL(e) e, NULL, 0, 0, NULL, NULL, NULL

static const struct parse_row parse_rows[] = {
	{ "basic", "mtqp://mtqp.example.com/track/a@example.com/" S, 0,
	    "mtqp.example.com", 1038, 0, "a@example.com", S,
	    "mtqp://mtqp.example.com/track/a@example.com/" S },
	{ "port", "mtqp://h.example:1100/track/a@b/" S, 0, "h.example", 1100, 1,
	    "a@b", S, "mtqp://h.example:1100/track/a@b/" S },
	{ "port 1038 kept", "mtqp://h:1038/track/a@b/" S, 0, "h", 1038, 1,
	    "a@b", S, "mtqp://h:1038/track/a@b/" S },
	{ "port 65535", "mtqp://h:65535/track/a@b/" S, 0, "h", 65535, 1, "a@b",
	    S, "mtqp://h:65535/track/a@b/" S },
	{ "empty port", "mtqp://h:/track/a@b/" S, 0, "h", 1038, 0, "a@b", S,
	    "mtqp://h/track/a@b/" S },
	{ "ipv4", "mtqp://192.0.2.1/track/a@b/" S, 0, "192.0.2.1", 1038, 0,
	    "a@b", S, "mtqp://192.0.2.1/track/a@b/" S },
	{ "ipv6", "mtqp://[2001:db8::1]:99/track/a@b/" S, 0, "[2001:db8::1]",
	    99, 1, "a@b", S, "mtqp://[2001:db8::1]:99/track/a@b/" S },
	{ "scheme case", "MTQP://h/TRACK/a@b/" S, 0, "h", 1038, 0, "a@b", S,
	    "mtqp://h/track/a@b/" S },
	{ "track mixed case", "mtqp://h/TrAcK/a@b/" S, 0, "h", 1038, 0, "a@b",
	    S, "mtqp://h/track/a@b/" S },
	{ "envid case kept", "mtqp://h/track/AbC@XyZ/abcd", 0, "h", 1038, 0,
	    "AbC@XyZ", "abcd", "mtqp://h/track/AbC@XyZ/abcd" },
	{ "secret slash", "mtqp://h/track/a@b/ab%2Fc", 0, "h", 1038, 0, "a@b",
	    "ab/c", "mtqp://h/track/a@b/ab%2Fc" },
	{ "secret slash lower", "mtqp://h/track/a@b/ab%2fc", 0, "h", 1038, 0,
	    "a@b", "ab/c", "mtqp://h/track/a@b/ab%2Fc" },
	{ "secret plus equals", "mtqp://h/track/a@b/a+b%2FcQ%3D%3D", 0, NULL, 0,
	    0, NULL, NULL, NULL },
	{ "secret plus padded", "mtqp://h/track/a@b/a+bcdQ%3D%3D", 0, "h", 1038,
	    0, "a@b", "a+bcdQ==", "mtqp://h/track/a@b/a+bcdQ==" },
	{ "secret raw equals", "mtqp://h/track/a@b/a+bcdQ==", 0, "h", 1038, 0,
	    "a@b", "a+bcdQ==", "mtqp://h/track/a@b/a+bcdQ==" },
	{ "envid slash percent", "mtqp://h/track/a%2Fb%25c@d/" S, 0, "h", 1038,
	    0, "a/b%c@d", S, "mtqp://h/track/a%2Fb%25c@d/" S },
	{ "envid question", "mtqp://h/track/a%3Fb@d/" S, 0, "h", 1038, 0,
	    "a?b@d", S, "mtqp://h/track/a%3Fb@d/" S },
	{ "envid brackets", "mtqp://h/track/%3Ca@b%3E/" S, 0, "h", 1038, 0,
	    "<a@b>", S, "mtqp://h/track/%3Ca@b%3E/" S },
	{ "envid raw brackets", "mtqp://h/track/<a@b>/" S, 0, "h", 1038, 0,
	    "<a@b>", S, "mtqp://h/track/%3Ca@b%3E/" S },
	{ "envid xtext plus", "mtqp://h/track/a+2B@b/" S, 0, "h", 1038, 0,
	    "a+2B@b", S, "mtqp://h/track/a+2B@b/" S },
	{ "envid hash encoded", "mtqp://h/track/a%23@b/" S, 0, "h", 1038, 0,
	    "a#@b", S, "mtqp://h/track/a%23@b/" S },
	{ "envid raw percent", "mtqp://h/track/a%@b/" S,
	    FAIL(MTQP_URI_E_PERCENT) },
	{ "bad percent", "mtqp://h/track/a%4@b/" S, FAIL(MTQP_URI_E_PERCENT) },
	{ "percent at end", "mtqp://h/track/a@b/AAAA%",
	    FAIL(MTQP_URI_E_PERCENT) },
	{ "percent nul", "mtqp://h/track/a%00@b/" S, FAIL(MTQP_URI_E_CHAR) },
	{ "percent space envid", "mtqp://h/track/a%20@b/" S,
	    FAIL(MTQP_URI_E_ENVID) },
	{ "envid no at", "mtqp://h/track/ab/" S, FAIL(MTQP_URI_E_ENVID) },
	{ "envid 8bit encoded", "mtqp://h/track/a%C3%A9@b/" S,
	    FAIL(MTQP_URI_E_ENVID) },
	{ "secret bad", "mtqp://h/track/a@b/a*b", FAIL(MTQP_URI_E_SECRET) },
	{ "secret encoded slash needed", "mtqp://h/track/a@b/ab/c",
	    FAIL(MTQP_URI_E_PATH) },
	{ "wrong scheme", "http://h/track/a@b/" S, FAIL(MTQP_URI_E_SCHEME) },
	{ "no slashes", "mtqp:h/track/a@b/" S, FAIL(MTQP_URI_E_SCHEME) },
	{ "short", "mtqp:/", FAIL(MTQP_URI_E_SCHEME) },
	{ "empty", "", FAIL(MTQP_URI_E_SCHEME) },
	{ "no host", "mtqp:///track/a@b/" S, FAIL(MTQP_URI_E_HOST) },
	{ "userinfo", "mtqp://u@h/track/a@b/" S, FAIL(MTQP_URI_E_HOST) },
	{ "host underscore", "mtqp://a_b/track/a@b/" S, FAIL(MTQP_URI_E_HOST) },
	{ "host empty label", "mtqp://a..b/track/a@b/" S,
	    FAIL(MTQP_URI_E_HOST) },
	{ "host bad ipv6", "mtqp://[g::1]/track/a@b/" S,
	    FAIL(MTQP_URI_E_HOST) },
	{ "host unclosed ipv6", "mtqp://[::1/track/a@b/" S,
	    FAIL(MTQP_URI_E_HOST) },
	{ "host only", "mtqp://h", FAIL(MTQP_URI_E_PATH) },
	{ "port 0", "mtqp://h:0/track/a@b/" S, FAIL(MTQP_URI_E_PORT) },
	{ "port 65536", "mtqp://h:65536/track/a@b/" S, FAIL(MTQP_URI_E_PORT) },
	{ "port 6 digits", "mtqp://h:000080/track/a@b/" S,
	    FAIL(MTQP_URI_E_PORT) },
	{ "port letters", "mtqp://h:8x/track/a@b/" S, FAIL(MTQP_URI_E_PORT) },
	{ "no track", "mtqp://h/a@b/" S, FAIL(MTQP_URI_E_PATH) },
	{ "tracks", "mtqp://h/tracks/a@b/" S, FAIL(MTQP_URI_E_PATH) },
	{ "no secret", "mtqp://h/track/a@b", FAIL(MTQP_URI_E_PATH) },
	{ "empty secret", "mtqp://h/track/a@b/", FAIL(MTQP_URI_E_PATH) },
	{ "empty envid", "mtqp://h/track//" S, FAIL(MTQP_URI_E_PATH) },
	{ "extra segment", "mtqp://h/track/a@b/" S "/x",
	    FAIL(MTQP_URI_E_PATH) },
	{ "query", "mtqp://h/track/a@b/" S "?x", FAIL(MTQP_URI_E_PATH) },
	{ "fragment", "mtqp://h/track/a@b/" S "#x", FAIL(MTQP_URI_E_PATH) },
	{ "query in authority", "mtqp://h?x/track/a@b/" S,
	    FAIL(MTQP_URI_E_PATH) },
	{ "space", "mtqp://h/track/a b@c/" S, FAIL(MTQP_URI_E_CHAR) },
	{ "8bit", "mtqp://h/track/\xc3\xa9@c/" S, FAIL(MTQP_URI_E_CHAR) },
};

static const char *
parse_name(const void *row)
{
	return ((const struct parse_row *)row)->name;
}

static void
test_parse_row(void **state)
{
	const struct parse_row *row = *state;
	struct mtqp_uri u;
	enum mtqp_uri_error err;
	struct buf b;
	int r;

	r = mtqp_uri_parse(row->in, strlen(row->in), &u, &err);
	assert_int_equal(err, row->err);
	assert_int_equal(r, row->err == MTQP_URI_E_NONE ? 0 : -1);
	assert_non_null(mtqp_uri_strerror(err));
	if (r == -1 || row->host == NULL) {
		/* "secret plus equals" only checks acceptance. */
		return;
	}
	assert_string_equal(u.host, row->host);
	assert_int_equal(u.port, row->port);
	assert_int_equal(u.port_given, row->port_given);
	assert_string_equal(u.envid, row->envid);
	assert_string_equal(u.secret, row->secret);
	buf_init(&b, 4096);
	assert_int_equal(mtqp_uri_format(&b, &u), 0);
	assert_string_equal(buf_cstr(&b), row->canon);
	/* Round trip: the canonical form parses to the same fields. */
	{
		struct mtqp_uri v;

		assert_int_equal(mtqp_uri_parse(b.data, b.len, &v, &err), 0);
		assert_string_equal(v.host, u.host);
		assert_int_equal(v.port, u.port);
		assert_string_equal(v.envid, u.envid);
		assert_string_equal(v.secret, u.secret);
	}
	buf_reset(&b);
}

struct format_row {
	const char *name;
	const char *host;
	unsigned int port;
	int port_given;
	const char *envid;
	const char *secret;
	const char *want; /* NULL: -1 */
};

static const struct format_row format_rows[] = {
	{ "default port", "h.example", 1038, 0, "a@b", "abcd",
	    "mtqp://h.example/track/a@b/abcd" },
	{ "other port", "h.example", 2000, 0, "a@b", "abcd",
	    "mtqp://h.example:2000/track/a@b/abcd" },
	{ "encode all", "h", 1038, 0, "<x/y?z%w#\"{}|\\^`>@b", "a/8=",
	    "mtqp://h/track/%3Cx%2Fy%3Fz%25w%23%22%7B%7D%7C%5C%5E%60%3E@b/"
	    "a%2F8=" },
	{ "sub-delims raw", "h", 1038, 0, "!$&'()*,;:~._-@b", "ab+/",
	    "mtqp://h/track/!$&'()*,;:~._-@b/ab+%2F" },
	{ "bad host", "a b", 1038, 0, "a@b", "abcd", NULL },
	{ "bad port", "h", 0, 0, "a@b", "abcd", NULL },
	{ "bad port high", "h", 70000, 0, "a@b", "abcd", NULL },
	{ "bad envid", "h", 1038, 0, "ab", "abcd", NULL },
	{ "bad secret", "h", 1038, 0, "a@b", "ab*d", NULL },
};

static const char *
format_name(const void *row)
{
	return ((const struct format_row *)row)->name;
}

static void
test_format_row(void **state)
{
	const struct format_row *row = *state;
	struct mtqp_uri u, v;
	enum mtqp_uri_error err;
	struct buf b;

	memset(&u, 0, sizeof(u));
	strcpy(u.host, row->host);
	u.port = row->port;
	u.port_given = row->port_given;
	strcpy(u.envid, row->envid);
	strcpy(u.secret, row->secret);
	buf_init(&b, 4096);
	assert_int_equal(buf_adds(&b, "x"), 0);
	if (row->want == NULL) {
		assert_int_equal(mtqp_uri_format(&b, &u), -1);
		assert_string_equal(buf_cstr(&b), "x");
		buf_reset(&b);
		return;
	}
	assert_int_equal(mtqp_uri_format(&b, &u), 0);
	assert_string_equal(buf_cstr(&b) + 1, row->want);
	assert_int_equal(mtqp_uri_parse(b.data + 1, b.len - 1, &v, &err), 0);
	assert_string_equal(v.envid, u.envid);
	assert_string_equal(v.secret, u.secret);
	buf_reset(&b);
}

/* Limits: whole URI, envid and secret lengths. */
static void
test_limits(void **state)
{
	char in[MTQP_URI_MAX + 64], envid[400];
	struct mtqp_uri u;
	enum mtqp_uri_error err;
	struct buf b;
	size_t n;

	(void)state;
	/* Too long overall. */
	memset(in, 'a', sizeof(in));
	assert_int_equal(mtqp_uri_parse(in, MTQP_URI_MAX + 1, &u, &err), -1);
	assert_int_equal(err, MTQP_URI_E_TOO_LONG);
	/* An envid of 100 octets, all percent-encoded: fits. */
	n = (size_t)snprintf(in, sizeof(in), "mtqp://h/track/");
	for (int i = 0; i < 99; i++)
		n += (size_t)snprintf(in + n, sizeof(in) - n, "%%3C");
	n += (size_t)snprintf(in + n, sizeof(in) - n, "@/" S);
	assert_int_equal(mtqp_uri_parse(in, n, &u, &err), 0);
	assert_int_equal(strlen(u.envid), 100);
	/* 101 octets: too long. */
	n = (size_t)snprintf(in, sizeof(in), "mtqp://h/track/x");
	for (int i = 0; i < 99; i++)
		n += (size_t)snprintf(in + n, sizeof(in) - n, "%%3C");
	n += (size_t)snprintf(in + n, sizeof(in) - n, "@/" S);
	assert_int_equal(mtqp_uri_parse(in, n, &u, &err), -1);
	assert_int_equal(err, MTQP_URI_E_ENVID);
	/* An envid longer than the text buffer. */
	memset(envid, 'x', sizeof(envid));
	envid[350] = '\0';
	n = (size_t)snprintf(in, sizeof(in), "mtqp://h/track/%s@b/" S, envid);
	assert_int_equal(mtqp_uri_parse(in, n, &u, &err), -1);
	assert_int_equal(err, MTQP_URI_E_ENVID);
	/* A secret longer than its buffer. */
	n = (size_t)snprintf(in, sizeof(in), "mtqp://h/track/a@b/%s", envid);
	assert_int_equal(mtqp_uri_parse(in, n, &u, &err), -1);
	assert_int_equal(err, MTQP_URI_E_SECRET);
	/* Host of 256 octets. */
	memset(envid, 'a', 256);
	envid[256] = '\0';
	for (int i = 50; i < 256; i += 50)
		envid[i] = '.';
	n = (size_t)snprintf(in, sizeof(in), "mtqp://%s/track/a@b/" S, envid);
	assert_int_equal(mtqp_uri_parse(in, n, &u, &err), -1);
	assert_int_equal(err, MTQP_URI_E_HOST);
	envid[255] = '\0';
	n = (size_t)snprintf(in, sizeof(in), "mtqp://%s/track/a@b/" S, envid);
	assert_int_equal(mtqp_uri_parse(in, n, &u, &err), 0);
	/* Unterminated fields are refused by the formatter. */
	memset(u.host, 'a', sizeof(u.host));
	buf_init(&b, 4096);
	assert_int_equal(mtqp_uri_format(&b, &u), -1);
	buf_reset(&b);
	/* Buffer limit. */
	assert_int_equal(
	    mtqp_uri_parse("mtqp://h/track/a@b/abcd", 23, &u, &err), 0);
	buf_init(&b, 10);
	assert_int_equal(mtqp_uri_format(&b, &u), -1);
	assert_int_equal(b.len, 0);
	buf_reset(&b);
	assert_string_equal(
	    mtqp_uri_strerror((enum mtqp_uri_error)99), "unknown error");
}

int
main(void)
{
	const struct CMUnitTest misc[] = {
		cmocka_unit_test(test_limits),
	};
	int failed = 0;

	failed += TABLE_RUN("parse", test_parse_row, parse_rows, parse_name);
	failed +=
	    TABLE_RUN("format", test_format_row, format_rows, format_name);
	failed += cmocka_run_group_tests_name("misc", misc, NULL, NULL);
	return failed;
}
