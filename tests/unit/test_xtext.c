/*
 * test_xtext: RFC 3461 §4 xtext decode/encode.
 */
#include <string.h>

#include "table.h"

#include "msgtrk/buf.h"
#include "msgtrk/xtext.h"

/* A literal with its length, so rows can hold NUL octets. */
#define S(s) s, sizeof(s) - 1

struct dec_row {
	const char *name;
	const char *in;
	size_t n;
	unsigned int flags;
	size_t outsize; /* 0: 128 */
	int rc;
	enum xtext_error err;
	const char *out; /* expected decoded text when rc == 0 */
	size_t outlen;
};

static const struct dec_row dec_rows[] = {
	{ "empty", S(""), 0, 0, 0, XTEXT_OK, S("") },
	{ "plain", S("abc"), 0, 0, 0, XTEXT_OK, S("abc") },
	{ "all-xchars-edges", S("!~*"), 0, 0, 0, XTEXT_OK, S("!~*") },
	{ "hex-plus", S("a+2Bb"), 0, 0, 0, XTEXT_OK, S("a+b") },
	{ "hex-equals", S("+3D"), 0, 0, 0, XTEXT_OK, S("=") },
	{ "hex-space", S("a+20b"), 0, 0, 0, XTEXT_OK, S("a b") },
	{ "hex-letter", S("+41"), 0, 0, 0, XTEXT_OK, S("A") },
	{ "hex-at", S("x+40y"), 0, 0, 0, XTEXT_OK, S("x@y") },
	{ "hex-nul-allowed-raw", S("+00"), 0, 0, 0, XTEXT_OK, S("\0") },
	{ "hex-ff-raw", S("+FF"), 0, 0, 0, XTEXT_OK, S("\xff") },
	{ "hex-tab-printable", S("+09"), XTEXT_PRINTABLE, 0, 0, XTEXT_OK,
	    S("\t") },
	{ "hex-7e-printable", S("+7E"), XTEXT_PRINTABLE, 0, 0, XTEXT_OK,
	    S("~") },
	{ "hex-20-printable", S("+20"), XTEXT_PRINTABLE, 0, 0, XTEXT_OK,
	    S(" ") },
	{ "rfc3461-example", S("foo+2Bbar@example.com"), XTEXT_PRINTABLE, 0, 0,
	    XTEXT_OK, S("foo+bar@example.com") },
	{ "hex-all-upper", S("+AF+BC+DE"), 0, 0, 0, XTEXT_OK,
	    S("\xaf\xbc\xde") },
	/* strict hexchar: upper case only ([DECISION] digest §12.3) */
	{ "hex-lower", S("+2b"), 0, 0, -1, XTEXT_ERR_HEX, S("") },
	{ "hex-lower-first", S("+aF"), 0, 0, -1, XTEXT_ERR_HEX, S("") },
	{ "hex-lower-second", S("+Af"), 0, 0, -1, XTEXT_ERR_HEX, S("") },
	{ "hex-not-hex", S("+G0"), 0, 0, -1, XTEXT_ERR_HEX, S("") },
	{ "hex-one-digit-end", S("a+2"), 0, 0, -1, XTEXT_ERR_HEX, S("") },
	{ "hex-plus-end", S("a+"), 0, 0, -1, XTEXT_ERR_HEX, S("") },
	{ "hex-plus-plus", S("++2B"), 0, 0, -1, XTEXT_ERR_HEX, S("") },
	{ "hex-nul-inside", S("+2\0"), 0, 0, -1, XTEXT_ERR_NUL, S("") },
	{ "hex-nul-first", S("+\0B"), 0, 0, -1, XTEXT_ERR_NUL, S("") },
	{ "bare-equals", S("a=b"), 0, 0, -1, XTEXT_ERR_CHAR, S("") },
	{ "space", S("a b"), 0, 0, -1, XTEXT_ERR_CHAR, S("") },
	{ "tab", S("a\tb"), 0, 0, -1, XTEXT_ERR_CHAR, S("") },
	{ "del", S("a\x7f"), 0, 0, -1, XTEXT_ERR_CHAR, S("") },
	{ "8bit", S("\xc3\xa9"), 0, 0, -1, XTEXT_ERR_CHAR, S("") },
	{ "cr", S("a\r"), 0, 0, -1, XTEXT_ERR_CHAR, S("") },
	{ "nul", S("a\0b"), 0, 0, -1, XTEXT_ERR_NUL, S("") },
	{ "nonprint-00", S("+00"), XTEXT_PRINTABLE, 0, -1, XTEXT_ERR_NONPRINT,
	    S("") },
	{ "nonprint-0D", S("+0D"), XTEXT_PRINTABLE, 0, -1, XTEXT_ERR_NONPRINT,
	    S("") },
	{ "nonprint-0A", S("+0A"), XTEXT_PRINTABLE, 0, -1, XTEXT_ERR_NONPRINT,
	    S("") },
	{ "nonprint-7F", S("+7F"), XTEXT_PRINTABLE, 0, -1, XTEXT_ERR_NONPRINT,
	    S("") },
	{ "nonprint-C3", S("+C3"), XTEXT_PRINTABLE, 0, -1, XTEXT_ERR_NONPRINT,
	    S("") },
	{ "nonprint-1F", S("+1F"), XTEXT_PRINTABLE, 0, -1, XTEXT_ERR_NONPRINT,
	    S("") },
	/* output limit: outsize 4 holds 3 octets */
	{ "limit-exact", S("abc"), 0, 4, 0, XTEXT_OK, S("abc") },
	{ "limit-plus-1", S("abcd"), 0, 4, -1, XTEXT_ERR_TOOLONG, S("") },
	{ "limit-exact-hex", S("ab+2B"), 0, 4, 0, XTEXT_OK, S("ab+") },
	{ "limit-plus-1-hex", S("abc+2B"), 0, 4, -1, XTEXT_ERR_TOOLONG, S("") },
	{ "limit-one", S("a"), 0, 1, -1, XTEXT_ERR_TOOLONG, S("") },
	{ "limit-one-empty", S(""), 0, 1, 0, XTEXT_OK, S("") },
	/* the first error wins, left to right */
	{ "first-error-char", S("a b+2b"), 0, 0, -1, XTEXT_ERR_CHAR, S("") },
	{ "first-error-hex", S("+2ba b"), 0, 0, -1, XTEXT_ERR_HEX, S("") },
};

static const char *
dec_name(const void *row)
{
	return ((const struct dec_row *)row)->name;
}

static void
test_decode(void **state)
{
	const struct dec_row *r = *state;
	char out[128];
	size_t outsize = r->outsize ? r->outsize : sizeof(out), len = 999;
	enum xtext_error err = 99;
	int rc;

	rc = xtext_decode(r->in, r->n, r->flags, out, outsize, &len, &err);
	assert_int_equal(rc, r->rc);
	assert_int_equal(err, r->err);
	assert_int_equal(xtext_valid(r->in, r->n, r->flags),
	    r->rc == 0 || r->err == XTEXT_ERR_TOOLONG);
	if (rc == 0) {
		assert_int_equal(len, r->outlen);
		assert_memory_equal(out, r->out, r->outlen);
		assert_int_equal(out[len], '\0');
	} else {
		assert_int_equal(len, 999); /* untouched on error */
		assert_int_equal(out[0], '\0');
	}
}

struct enc_row {
	const char *name;
	const char *in;
	size_t n;
	const char *out;
};

static const struct enc_row enc_rows[] = {
	{ "empty", S(""), "" },
	{ "plain", S("abc@example.com"), "abc@example.com" },
	{ "plus", S("a+b"), "a+2Bb" },
	{ "equals", S("a=b"), "a+3Db" },
	{ "space", S("a b"), "a+20b" },
	{ "tab-crlf", S("\t\r\n"), "+09+0D+0A" },
	{ "nul", S("\0"), "+00" },
	{ "8bit", S("\xc3\xa9\xff"), "+C3+A9+FF" },
	{ "del", S("\x7f"), "+7F" },
	{ "edges", S("!~"), "!~" },
	{ "b64-hash", S("rlvY7+pTIsTZmG0GaAp4E5L5pkI"),
	    "rlvY7+2BpTIsTZmG0GaAp4E5L5pkI" },
};

static const char *
enc_name(const void *row)
{
	return ((const struct enc_row *)row)->name;
}

static void
test_encode(void **state)
{
	const struct enc_row *r = *state;
	struct buf b;
	char back[64];
	size_t len;

	buf_init(&b, 256);
	assert_int_equal(xtext_encode(&b, r->in, r->n), 0);
	assert_string_equal(buf_cstr(&b), r->out);
	assert_int_equal(xtext_encoded_len(r->in, r->n), b.len);
	/* round trip */
	assert_int_equal(xtext_decode(b.data ? b.data : "", b.len, 0, back,
	                     sizeof(back), &len, NULL),
	    0);
	assert_int_equal(len, r->n);
	assert_memory_equal(back, r->in, r->n);
	buf_reset(&b);
}

/* Encoding fails cleanly when the buffer limit is hit, keeping what was
 * there. */
static void
test_encode_limit(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 6);
	assert_int_equal(buf_adds(&b, "x"), 0);
	assert_int_equal(xtext_encode(&b, "a+b", 3), 0); /* 1 + 5 = 6 */
	assert_string_equal(buf_cstr(&b), "xa+2Bb");
	buf_clear(&b);
	assert_int_equal(buf_adds(&b, "xy"), 0);
	assert_int_equal(xtext_encode(&b, "a+b", 3), -1); /* 7 > 6 */
	assert_string_equal(buf_cstr(&b), "xy");
	buf_reset(&b);
}

/* Every octet value round-trips; decoding is the inverse of encoding, and
 * the hexchar form is accepted for every octet including xchars. */
static void
test_roundtrip_all_octets(void **state)
{
	unsigned char in[256];
	char out[257];
	struct buf b;
	size_t len, i;

	(void)state;
	for (i = 0; i < 256; i++)
		in[i] = (unsigned char)i;
	buf_init(&b, 1024);
	assert_int_equal(xtext_encode(&b, in, sizeof(in)), 0);
	assert_int_equal(
	    xtext_decode(b.data, b.len, 0, out, sizeof(out), &len, NULL), 0);
	assert_int_equal(len, 256);
	assert_memory_equal(out, in, 256);
	buf_clear(&b);
	for (i = 0; i < 256; i++)
		assert_int_equal(buf_addf(&b, "+%02X", (unsigned int)i), 0);
	assert_int_equal(
	    xtext_decode(b.data, b.len, 0, out, sizeof(out), &len, NULL), 0);
	assert_int_equal(len, 256);
	assert_memory_equal(out, in, 256);
	buf_reset(&b);
}

static void
test_misc(void **state)
{
	char out[4];
	enum xtext_error err;
	int e;

	(void)state;
	assert_int_equal(xtext_decode("a", 1, 0, out, 0, NULL, &err), -1);
	assert_int_equal(err, XTEXT_ERR_TOOLONG);
	assert_int_equal(
	    xtext_decode("ab", 2, 0, out, sizeof(out), NULL, NULL), 0);
	assert_string_equal(out, "ab");
	for (e = XTEXT_OK; e <= XTEXT_ERR_NONPRINT; e++)
		assert_non_null(xtext_strerror((enum xtext_error)e));
	assert_string_equal(xtext_strerror(XTEXT_ERR_HEX), "bad hexchar");
	assert_string_equal(
	    xtext_strerror((enum xtext_error)99), "unknown error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_limit),
		cmocka_unit_test(test_roundtrip_all_octets),
		cmocka_unit_test(test_misc),
	};
	int failed = 0;

	failed += TABLE_RUN("xtext_decode", test_decode, dec_rows, dec_name);
	failed += TABLE_RUN("xtext_encode", test_encode, enc_rows, enc_name);
	failed += cmocka_run_group_tests(tests, NULL, NULL);
	return failed;
}
