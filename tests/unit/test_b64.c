/*
 * test_b64: strict base64, as used for MTRK certifiers and MTQP secrets.
 */
#include <string.h>

#include "msgtrk/b64.h"
#include "table.h"

struct dec_case {
	const char *in;
	enum b64_pad pad;
	int len; /* -1: must be rejected */
	const char *want; /* decoded octets (len of them) */
};

static const struct dec_case dec_cases[] = {
	/* RFC 4648 §10 test vectors */
	{ "Zg==", B64_PAD_REQUIRED, 1, "f" },
	{ "Zm8=", B64_PAD_REQUIRED, 2, "fo" },
	{ "Zm9v", B64_PAD_REQUIRED, 3, "foo" },
	{ "Zm9vYg==", B64_PAD_REQUIRED, 4, "foob" },
	{ "Zm9vYmE=", B64_PAD_REQUIRED, 5, "fooba" },
	{ "Zm9vYmFy", B64_PAD_REQUIRED, 6, "foobar" },
	{ "Zg", B64_PAD_NONE, 1, "f" },
	{ "Zm8", B64_PAD_NONE, 2, "fo" },
	{ "Zm9vYmFy", B64_PAD_NONE, 6, "foobar" },
	{ "Zg==", B64_PAD_OPTIONAL, 1, "f" },
	{ "Zg", B64_PAD_OPTIONAL, 1, "f" },
	{ "+/+/", B64_PAD_NONE, 3, "\xfb\xff\xbf" },
	/* padding where the mode forbids or requires it */
	{ "Zg==", B64_PAD_NONE, -1, NULL },
	{ "Zg", B64_PAD_REQUIRED, -1, NULL },
	{ "Zm8", B64_PAD_REQUIRED, -1, NULL },
	/* malformed padding */
	{ "Zg=", B64_PAD_OPTIONAL, -1, NULL },
	{ "Zg===", B64_PAD_OPTIONAL, -1, NULL },
	{ "Zm9v=", B64_PAD_OPTIONAL, -1, NULL },
	{ "Z===", B64_PAD_OPTIONAL, -1, NULL },
	{ "====", B64_PAD_OPTIONAL, -1, NULL },
	{ "Zm8==", B64_PAD_OPTIONAL, -1, NULL },
	{ "Z=g=", B64_PAD_OPTIONAL, -1, NULL },
	/* lengths that no octet string encodes to */
	{ "Z", B64_PAD_OPTIONAL, -1, NULL },
	{ "Zm9vY", B64_PAD_NONE, -1, NULL },
	{ "", B64_PAD_OPTIONAL, -1, NULL },
	/* non-canonical: unused low bits set */
	{ "Zh", B64_PAD_NONE, -1, NULL },
	{ "Zh==", B64_PAD_REQUIRED, -1, NULL },
	{ "Zm9", B64_PAD_NONE, -1, NULL },
	{ "Zm9=", B64_PAD_REQUIRED, -1, NULL },
	/* characters outside the alphabet, whitespace included */
	{ "Zm9v\n", B64_PAD_OPTIONAL, -1, NULL },
	{ " Zm9v", B64_PAD_OPTIONAL, -1, NULL },
	{ "Zm 9v", B64_PAD_OPTIONAL, -1, NULL },
	{ "Zm-_", B64_PAD_OPTIONAL, -1, NULL }, /* base64url */
	{ "Zm9v\x80", B64_PAD_OPTIONAL, -1, NULL },
	/* SHA-1("abc") as an MTRK certifier: 27 characters, unpadded */
	{ "qZk+NkcGgWq6PiVxeFDCbJzQ2J0", B64_PAD_NONE, 20,
	    "\xa9\x99\x3e\x36\x47\x06\x81\x6a\xba\x3e\x25\x71\x78\x50\xc2\x6c"
	    "\x9c\xd0\xd8\x9d" },
	{ "qZk+NkcGgWq6PiVxeFDCbJzQ2J1", B64_PAD_NONE, -1, NULL },
};

static const char *
dec_name(const void *row)
{
	return ((const struct dec_case *)row)->in;
}

static void
test_decode(void **state)
{
	const struct dec_case *c = *state;
	unsigned char out[64];
	char again[128];
	int n;

	n = b64_decode(c->in, strlen(c->in), c->pad, out, sizeof(out));
	assert_int_equal(n, c->len);
	if (n < 0)
		return;
	assert_memory_equal(out, c->want, (size_t)n);
	/* canonical: encoding gives the input back */
	assert_int_equal(
	    b64_encode(out, (size_t)n,
	        strchr(c->in, '=') != NULL || c->pad == B64_PAD_REQUIRED
	            ? B64_PAD_REQUIRED
	            : B64_PAD_NONE,
	        again, sizeof(again)),
	    (int)strlen(c->in));
	assert_string_equal(again, c->in);
	/* an output buffer one octet short is refused */
	assert_int_equal(
	    b64_decode(c->in, strlen(c->in), c->pad, out, (size_t)n - 1), -1);
}

static void
test_encode_limits(void **state)
{
	char out[8];
	unsigned char in[300];
	int i;

	(void)state;
	assert_int_equal(b64_encode("foo", 3, B64_PAD_NONE, out, 4), -1);
	assert_int_equal(b64_encode("foo", 3, B64_PAD_NONE, out, 5), 4);
	assert_int_equal(b64_encode("f", 1, B64_PAD_NONE, out, 5), 2);
	assert_string_equal(out, "Zg");
	assert_int_equal(b64_encode("", 0, B64_PAD_REQUIRED, out, 1), 0);
	assert_string_equal(out, "");
	assert_int_equal(B64_LEN_UNPADDED(20), 27);
	assert_int_equal(B64_LEN_PADDED(20), 28);
	assert_int_equal(B64_LEN_UNPADDED(32), 43);
	/* every length round-trips */
	for (i = 0; i < (int)sizeof(in); i++)
		in[i] = (unsigned char)(i * 37 + 11);
	for (i = 1; i < (int)sizeof(in); i++) {
		char enc[512];
		unsigned char dec[300];
		int e = b64_encode(in, (size_t)i,
		    i % 2 ? B64_PAD_NONE : B64_PAD_REQUIRED, enc, sizeof(enc));

		assert_true(e > 0);
		assert_int_equal(b64_decode(enc, (size_t)e, B64_PAD_OPTIONAL,
		                     dec, sizeof(dec)),
		    i);
		assert_memory_equal(dec, in, (size_t)i);
	}
	assert_int_equal(b64_ischar('+'), 1);
	assert_int_equal(b64_ischar('='), 0);
	assert_int_equal(b64_ischar(0x80), 0);
}

int
main(void)
{
	const struct CMUnitTest misc[] = {
		cmocka_unit_test(test_encode_limits),
	};
	int failed = 0;

	failed += TABLE_RUN("b64_decode", test_decode, dec_cases, dec_name);
	failed += cmocka_run_group_tests_name("b64_misc", misc, NULL, NULL);
	return failed;
}
