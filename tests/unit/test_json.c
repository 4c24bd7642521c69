/*
 * test_json: the JSON writer (escaping of every control character, DEL,
 * quotes, valid and invalid UTF-8, a full buffer) and the keyring object
 * reader (values, arrays, escapes, surrogates, limits, every error with
 * its offset, the callback stopping the read).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "msgtrk/buf.h"
#include "table.h"

struct str_case {
	const char *name;
	const char *in;
	size_t inlen;
	const char *out;
};

#define S(name, in, out) \
	{ \
		name, in, sizeof(in) - 1, out \
	}
#define CTL(c, out) \
	{ \
		"control " #c, (const char[]){ c }, 1, out \
	}

static const struct str_case str_cases[] = {
	S("empty", "", "\"\""),
	S("plain", "a@b.test", "\"a@b.test\""),
	S("quote", "a\"b", "\"a\\\"b\""),
	S("backslash", "a\\b", "\"a\\\\b\""),
	S("slash kept", "a/b", "\"a/b\""),
	CTL(0x00, "\"\\u0000\""),
	CTL(0x01, "\"\\u0001\""),
	CTL(0x02, "\"\\u0002\""),
	CTL(0x03, "\"\\u0003\""),
	CTL(0x04, "\"\\u0004\""),
	CTL(0x05, "\"\\u0005\""),
	CTL(0x06, "\"\\u0006\""),
	CTL(0x07, "\"\\u0007\""),
	CTL(0x08, "\"\\b\""),
	CTL(0x09, "\"\\t\""),
	CTL(0x0a, "\"\\n\""),
	CTL(0x0b, "\"\\u000b\""),
	CTL(0x0c, "\"\\f\""),
	CTL(0x0d, "\"\\r\""),
	CTL(0x0e, "\"\\u000e\""),
	CTL(0x0f, "\"\\u000f\""),
	CTL(0x10, "\"\\u0010\""),
	CTL(0x11, "\"\\u0011\""),
	CTL(0x12, "\"\\u0012\""),
	CTL(0x13, "\"\\u0013\""),
	CTL(0x14, "\"\\u0014\""),
	CTL(0x15, "\"\\u0015\""),
	CTL(0x16, "\"\\u0016\""),
	CTL(0x17, "\"\\u0017\""),
	CTL(0x18, "\"\\u0018\""),
	CTL(0x19, "\"\\u0019\""),
	CTL(0x1a, "\"\\u001a\""),
	CTL(0x1b, "\"\\u001b\""),
	CTL(0x1c, "\"\\u001c\""),
	CTL(0x1d, "\"\\u001d\""),
	CTL(0x1e, "\"\\u001e\""),
	CTL(0x1f, "\"\\u001f\""),
	CTL(0x7f, "\"\\u007f\""),
	S("space and tilde", " ~", "\" ~\""),
	S("NUL inside", "a\0b", "\"a\\u0000b\""),
	S("log injection", "x\r\n250 ok", "\"x\\r\\n250 ok\""),
	S("utf8 2 octets", "caf\xc3\xa9", "\"caf\xc3\xa9\""),
	S("utf8 3 octets", "\xe2\x82\xac", "\"\xe2\x82\xac\""),
	S("utf8 4 octets", "\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""),
	S("utf8 U+10FFFF", "\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""),
	S("utf8 U+FFFF", "\xef\xbf\xbf", "\"\xef\xbf\xbf\""),
	S("lone continuation", "a\x80z", "\"a\\ufffdz\""),
	S("latin1 octet", "caf\xe9", "\"caf\\ufffd\""),
	S("overlong 2 (c0)", "\xc0\xaf", "\"\\ufffd\\ufffd\""),
	S("overlong 2 (c1)", "\xc1\xbf", "\"\\ufffd\\ufffd\""),
	S("overlong 3", "\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\""),
	S("overlong 4", "\xf0\x80\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""),
	S("surrogate", "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""),
	S("above U+10FFFF", "\xf4\x90\x80\x80",
	    "\"\\ufffd\\ufffd\\ufffd\\ufffd\""),
	S("f5 lead", "\xf5\x80\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""),
	S("ff octet", "\xff", "\"\\ufffd\""),
	S("truncated 2 at end", "a\xc3", "\"a\\ufffd\""),
	S("truncated 3 at end", "\xe2\x82", "\"\\ufffd\\ufffd\""),
	S("truncated 4 then ascii", "\xf0\x9f\x98z",
	    "\"\\ufffd\\ufffd\\ufffdz\""),
	S("bad continuation", "\xc3(", "\"\\ufffd(\""),
	S("mixed", "\"\x01\xc3\xa9\x7f\xff",
	    "\"\\\"\\u0001\xc3\xa9\\u007f\\ufffd\""),
};

static const char *
str_name(const void *row)
{
	return ((const struct str_case *)row)->name;
}

static void
test_str(void **state)
{
	const struct str_case *c = *state;
	struct buf b;

	buf_init(&b, 4096);
	assert_int_equal(buf_adds(&b, "x"), 0);
	assert_int_equal(json_str(&b, c->in, c->inlen), 0);
	assert_string_equal(buf_cstr(&b) + 1, c->out);
	/* Every prefix of the room fails without changing the buffer. */
	for (size_t max = 1; max < strlen(c->out) + 1; max++) {
		struct buf s;

		buf_init(&s, max);
		assert_int_equal(buf_adds(&s, "x"), 0);
		assert_int_equal(json_str(&s, c->in, c->inlen), -1);
		assert_int_equal(s.len, 1);
		assert_string_equal(buf_cstr(&s), "x");
		buf_reset(&s);
	}
	buf_reset(&b);
}

static void
test_cstr_key(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 256);
	assert_int_equal(buf_addc(&b, '{'), 0);
	assert_int_equal(json_key(&b, 1, "a"), 0);
	assert_int_equal(json_cstr(&b, NULL), 0);
	assert_int_equal(json_key(&b, 0, "b\""), 0);
	assert_int_equal(json_cstr(&b, "x\ty"), 0);
	assert_int_equal(buf_addc(&b, '}'), 0);
	assert_string_equal(buf_cstr(&b), "{\"a\":null,\"b\\\"\":\"x\\ty\"}");
	buf_reset(&b);
	/* A full buffer: json_key leaves it as it was. */
	buf_init(&b, 5);
	assert_int_equal(buf_adds(&b, "{"), 0);
	assert_int_equal(json_key(&b, 0, "abc"), -1);
	assert_string_equal(buf_cstr(&b), "{");
	assert_int_equal(json_key(&b, 1, "ab"), -1);
	assert_int_equal(json_key(&b, 1, "a"), 0);
	assert_string_equal(buf_cstr(&b), "{\"a\":");
	assert_int_equal(json_cstr(&b, NULL), -1);
	buf_reset(&b);
}

/*
 * Reader
 */

struct trace {
	char text[1024];
	int stop_at; /* stop (return -1) at this call, or -1 */
	int calls;
};

static int
trace_member(void *arg, const char *key, const char *val, size_t vlen,
    long index, char *err, size_t errsize)
{
	struct trace *t = arg;
	size_t n = strlen(t->text);

	assert_true(val == NULL || strlen(val) == vlen);
	if (t->stop_at == t->calls++) {
		snprintf(err, errsize, "stopped at %s", key);
		return -1;
	}
	if (index < 0)
		snprintf(t->text + n, sizeof(t->text) - n, "%s=%s|", key,
		    val == NULL ? "(null)" : val);
	else
		snprintf(t->text + n, sizeof(t->text) - n, "%s[%ld]=%s|", key,
		    index, val);
	return 0;
}

struct rd_case {
	const char *name;
	const char *in;
	size_t inlen;
	const char *trace; /* NULL when it must fail */
	const char *err; /* the exact error when it fails */
};

#define OK(name, in, trace) \
	{ \
		name, in, sizeof(in) - 1, trace, NULL \
	}
#define BAD(name, in, err) \
	{ \
		name, in, sizeof(in) - 1, NULL, err \
	}

static const struct rd_case rd_cases[] = {
	OK("empty object", "{}", ""),
	OK("blank object", " \t\r\n{ \n } \r\n", ""),
	OK("one string", "{\"a\":\"b\"}", "a=b|"),
	OK("null", "{\"a\":null}", "a=(null)|"),
	OK("empty array", "{\"r\":[]}", ""),
	OK("blank array", "{\"r\":[ \t ]}", ""),
	OK("array", "{\"r\":[\"x\",\"y\" , \"z\"]}", "r[0]=x|r[1]=y|r[2]=z|"),
	OK("keyring line",
	    "{\"envid\":\"e@h.test\",\"secret\":\"s\",\"server\":\"h:25\","
	    "\"mtqp\":null,\"recipients\":[\"a@d.test\"]}",
	    "envid=e@h.test|secret=s|server=h:25|mtqp=(null)|"
	    "recipients[0]=a@d.test|"),
	OK("blanks everywhere", " { \"a\" : \"b\" , \"c\" : [ \"d\" ] } ",
	    "a=b|c[0]=d|"),
	OK("duplicate keys", "{\"a\":\"1\",\"a\":\"2\"}", "a=1|a=2|"),
	OK("empty key and value", "{\"\":\"\"}", "=|"),
	OK("simple escapes", "{\"k\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
	    "k=\"\\/\b\f\n\r\t|"),
	OK("u escape ascii", "{\"k\":\"\\u0041\\u007e\"}", "k=A~|"),
	OK("u escape 2 octets", "{\"k\":\"\\u00e9\"}", "k=\xc3\xa9|"),
	OK("u escape 3 octets", "{\"k\":\"\\u20AC\"}", "k=\xe2\x82\xac|"),
	OK("u escape ffff", "{\"k\":\"\\uffff\"}", "k=\xef\xbf\xbf|"),
	OK("surrogate pair", "{\"k\":\"\\ud83d\\ude00\"}",
	    "k=\xf0\x9f\x98\x80|"),
	OK("surrogate pair max", "{\"k\":\"\\udbff\\udfff\"}",
	    "k=\xf4\x8f\xbf\xbf|"),
	OK("raw utf8", "{\"k\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}",
	    "k=caf\xc3\xa9 \xf0\x9f\x98\x80|"),
	OK("DEL raw is allowed", "{\"k\":\"a\x7f\"}", "k=a\x7f|"),
	BAD("empty input", "", "offset 0: expected '{'"),
	BAD("blank input", "  ", "offset 2: expected '{'"),
	BAD("array at top", "[]", "offset 0: expected '{'"),
	BAD("unclosed object", "{", "offset 1: expected a member name"),
	BAD("unquoted key", "{a:\"b\"}", "offset 1: expected a member name"),
	BAD("missing colon", "{\"a\" \"b\"}", "offset 5: expected ':'"),
	BAD("missing value", "{\"a\":}",
	    "offset 5: expected a string, null or an array"),
	BAD("number value", "{\"a\":1}",
	    "offset 5: expected a string, null or an array"),
	BAD("true value", "{\"a\":true}",
	    "offset 5: expected a string, null or an array"),
	BAD("nested object", "{\"a\":{}}",
	    "offset 5: expected a string, null or an array"),
	BAD("truncated null", "{\"a\":nul",
	    "offset 5: expected a string, null or an array"),
	BAD("missing comma", "{\"a\":\"b\" \"c\":\"d\"}",
	    "offset 9: expected ',' or '}'"),
	BAD("trailing comma", "{\"a\":\"b\",}",
	    "offset 9: expected a member name"),
	BAD("unclosed after value", "{\"a\":\"b\"",
	    "offset 8: expected ',' or '}'"),
	BAD("text after", "{} x", "offset 3: text after the object"),
	BAD("two objects", "{}{}", "offset 2: text after the object"),
	BAD("NUL after", "{}\0", "offset 2: text after the object"),
	BAD("unterminated string", "{\"a\":\"bc",
	    "offset 8: unterminated string"),
	BAD("unterminated key", "{\"ab", "offset 4: unterminated string"),
	BAD("raw newline", "{\"a\":\"b\nc\"}",
	    "offset 7: control character in string"),
	BAD("raw tab", "{\"a\":\"\t\"}",
	    "offset 6: control character in string"),
	BAD("raw NUL", "{\"a\":\"\0\"}",
	    "offset 6: control character in string"),
	BAD("invalid utf8", "{\"a\":\"x\xff\"}", "offset 7: invalid UTF-8"),
	BAD("overlong utf8", "{\"a\":\"\xc0\xaf\"}", "offset 6: invalid UTF-8"),
	BAD("surrogate utf8", "{\"a\":\"\xed\xa0\x80\"}",
	    "offset 6: invalid UTF-8"),
	BAD("truncated utf8", "{\"a\":\"\xe2\x82", "offset 6: invalid UTF-8"),
	BAD("invalid utf8 in key", "{\"\x80\":\"b\"}",
	    "offset 2: invalid UTF-8"),
	BAD("bad escape", "{\"a\":\"\\x\"}", "offset 8: bad escape"),
	BAD("unterminated escape", "{\"a\":\"\\",
	    "offset 7: unterminated escape"),
	BAD("short u escape", "{\"a\":\"\\u12\"}",
	    "offset 8: bad hex digit in \\u escape"),
	BAD("truncated u escape", "{\"a\":\"\\u12",
	    "offset 8: truncated \\u escape"),
	BAD("bad hex", "{\"a\":\"\\u00g0\"}",
	    "offset 8: bad hex digit in \\u escape"),
	BAD("u0000", "{\"a\":\"\\u0000\"}", "offset 12: \\u0000 in string"),
	BAD("lone low surrogate", "{\"a\":\"\\udc00\"}",
	    "offset 12: lone low surrogate"),
	BAD("lone high surrogate", "{\"a\":\"\\ud800x\"}",
	    "offset 12: lone high surrogate"),
	BAD("high then high", "{\"a\":\"\\ud800\\ud800\"}",
	    "offset 18: bad low surrogate"),
	BAD("high then ascii escape", "{\"a\":\"\\ud800\\u0041\"}",
	    "offset 18: bad low surrogate"),
	BAD("high at end", "{\"a\":\"\\ud800",
	    "offset 12: lone high surrogate"),
	BAD("array of null", "{\"a\":[null]}",
	    "offset 6: expected a string in array"),
	BAD("nested array", "{\"a\":[[]]}",
	    "offset 6: expected a string in array"),
	BAD("array trailing comma", "{\"a\":[\"x\",]}",
	    "offset 10: expected a string in array"),
	BAD("array missing comma", "{\"a\":[\"x\" \"y\"]}",
	    "offset 10: expected ',' or ']'"),
	BAD("unclosed array", "{\"a\":[\"x\"", "offset 9: expected ',' or ']'"),
	BAD("unclosed empty array", "{\"a\":[",
	    "offset 6: expected a string in array"),
};

static const char *
rd_name(const void *row)
{
	return ((const struct rd_case *)row)->name;
}

static void
test_read(void **state)
{
	const struct rd_case *c = *state;
	struct trace t;
	char err[128];
	int rc;

	memset(&t, 0, sizeof(t));
	t.stop_at = -1;
	err[0] = '\0';
	rc = json_read_object(
	    c->in, c->inlen, trace_member, &t, err, sizeof(err));
	if (c->trace != NULL) {
		if (rc != 0)
			fail_msg("unexpected error: %s", err);
		assert_string_equal(t.text, c->trace);
	} else {
		assert_int_equal(rc, -1);
		assert_string_equal(err, c->err);
	}
}

/* A string written by json_str() reads back as the same octets (for
 * valid UTF-8 without NUL), including every control character. */
static void
test_roundtrip(void **state)
{
	struct buf b;
	struct trace t;
	char in[160], err[128], want[200];
	size_t n = 0;
	int c;

	(void)state;
	for (c = 1; c < 0x80; c++)
		in[n++] = (char)c;
	memcpy(in + n, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
	n += 9;
	buf_init(&b, 4096);
	assert_int_equal(buf_adds(&b, "{\"k\":"), 0);
	assert_int_equal(json_str(&b, in, n), 0);
	assert_int_equal(buf_addc(&b, '}'), 0);
	memset(&t, 0, sizeof(t));
	t.stop_at = -1;
	assert_int_equal(
	    json_read_object(b.data, b.len, trace_member, &t, err, sizeof(err)),
	    0);
	snprintf(want, sizeof(want), "k=%.*s|", (int)n, in);
	assert_string_equal(t.text, want);
	buf_reset(&b);
}

static void
test_callback_stops(void **state)
{
	static const char in[] = "{\"a\":\"1\",\"b\":[\"x\",\"y\"],\"c\":null}";
	struct trace t;
	char err[128];
	int stop;

	(void)state;
	for (stop = 0; stop < 4; stop++) {
		static const char *const key[] = { "a", "b", "b", "c" };
		char want[32];

		memset(&t, 0, sizeof(t));
		t.stop_at = stop;
		assert_int_equal(json_read_object(in, sizeof(in) - 1,
		                     trace_member, &t, err, sizeof(err)),
		    -1);
		snprintf(want, sizeof(want), "stopped at %s", key[stop]);
		assert_string_equal(err, want);
		assert_int_equal(t.calls, stop + 1);
	}
}

/* The limits: JSON_STRING_MAX octets, JSON_MEMBERS_MAX members,
 * JSON_ARRAY_MAX elements; one more is an error with its offset. */
static void
test_limits(void **state)
{
	struct buf b;
	struct trace t;
	char err[128], want[128];
	size_t i, at = 0;

	(void)state;
	buf_init(&b, 1 << 20);
	/* A string of exactly the maximum, then one octet more. */
	for (int extra = 0; extra < 2; extra++) {
		buf_reset(&b);
		assert_int_equal(buf_adds(&b, "{\"k\":\""), 0);
		for (i = 0; i < JSON_STRING_MAX + (size_t)extra; i++)
			assert_int_equal(buf_addc(&b, 'x'), 0);
		assert_int_equal(buf_adds(&b, "\"}"), 0);
		memset(&t, 0, sizeof(t));
		t.stop_at = -1000;
		if (extra == 0)
			assert_int_equal(
			    json_read_object(b.data, b.len, trace_member, &t,
			        err, sizeof(err)),
			    0);
		else {
			assert_int_equal(
			    json_read_object(b.data, b.len, trace_member, &t,
			        err, sizeof(err)),
			    -1);
			snprintf(want, sizeof(want),
			    "offset %zu: string too long",
			    (size_t)6 + JSON_STRING_MAX);
			assert_string_equal(err, want);
		}
	}
	/* The maximum through \u escapes (3 octets each) overflows too. */
	buf_reset(&b);
	assert_int_equal(buf_adds(&b, "{\"k\":\""), 0);
	for (i = 0; i < JSON_STRING_MAX / 3 + 1; i++)
		assert_int_equal(buf_adds(&b, "\\u20ac"), 0);
	assert_int_equal(buf_adds(&b, "\"}"), 0);
	assert_int_equal(
	    json_read_object(b.data, b.len, trace_member, &t, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "string too long"));
	/* Members. */
	for (int extra = 0; extra < 2; extra++) {
		buf_reset(&b);
		assert_int_equal(buf_addc(&b, '{'), 0);
		for (i = 0; i < JSON_MEMBERS_MAX + (size_t)extra; i++) {
			if (i == JSON_MEMBERS_MAX)
				at = b.len + 1;
			assert_int_equal(buf_addf(&b, "%s\"m%zu\":null",
			                     i > 0 ? "," : "", i),
			    0);
		}
		assert_int_equal(buf_addc(&b, '}'), 0);
		memset(&t, 0, sizeof(t));
		t.stop_at = -1;
		i = (size_t)json_read_object(
		    b.data, b.len, trace_member, &t, err, sizeof(err));
		if (extra == 0)
			assert_int_equal(i, 0);
		else {
			assert_int_equal((int)i, -1);
			snprintf(want, sizeof(want),
			    "offset %zu: too many members", at);
			assert_string_equal(err, want);
		}
	}
	/* Array elements. */
	for (int extra = 0; extra < 2; extra++) {
		buf_reset(&b);
		assert_int_equal(buf_adds(&b, "{\"r\":["), 0);
		for (i = 0; i < JSON_ARRAY_MAX + (size_t)extra; i++) {
			if (i == JSON_ARRAY_MAX)
				at = b.len + 1; /* after the comma */
			assert_int_equal(
			    buf_adds(&b, i > 0 ? ",\"x\"" : "\"x\""), 0);
		}
		assert_int_equal(buf_adds(&b, "]}"), 0);
		memset(&t, 0, sizeof(t));
		t.stop_at = -1;
		i = (size_t)json_read_object(
		    b.data, b.len, trace_member, &t, err, sizeof(err));
		if (extra == 0) {
			assert_int_equal(i, 0);
			assert_int_equal(t.calls, JSON_ARRAY_MAX);
		} else {
			assert_int_equal((int)i, -1);
			snprintf(want, sizeof(want),
			    "offset %zu: array too long", at);
			assert_string_equal(err, want);
		}
	}
	buf_reset(&b);
}

int
main(void)
{
	const struct CMUnitTest once[] = {
		cmocka_unit_test(test_cstr_key),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_limits),
	};
	int failed = 0;

	failed += TABLE_RUN("json_str", test_str, str_cases, str_name);
	failed += TABLE_RUN("json_read_object", test_read, rd_cases, rd_name);
	failed += cmocka_run_group_tests_name("json", once, NULL, NULL);
	return failed;
}
