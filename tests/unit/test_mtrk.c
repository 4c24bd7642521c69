/*
 * test_mtrk: RFC 3885 secrets, certifiers, MTRK= values.
 */
#include <string.h>

#include "table.h"

#include "msgtrk/buf.h"
#include "msgtrk/mtrk.h"

#define S(s) s, sizeof(s) - 1

/* Digest mtrk-rfc3885 §4 test vectors (checked with Python hashlib). */
#define CERT16 "VheLhqV/rCKJmplkGFwsyW59pYk" /* A = 00..0f */
#define CERT32 "rlvY7+pTIsTZmG0GaAp4E5L5pkI" /* A = 00..1f */
#define CERT128 "5kNLxAH5hgPX7aUEeQyYxnOF1TU" /* A = 00..7f */
#define SEC16_PAD "AAECAwQFBgcICQoLDA0ODw=="
#define SEC16 "AAECAwQFBgcICQoLDA0ODw"
#define SEC32 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define SEC15 "AAECAwQFBgcICQoLDA0O"
#define SEC128 \
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v" \
	"MDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f" \
	"YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8"
#define SEC129 \
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v" \
	"MDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f" \
	"YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn+A"

struct param_row {
	const char *name;
	const char *in;
	size_t n;
	int rc;
	enum mtrk_error err;
	int has_timeout;
	unsigned long timeout;
};

static const struct param_row param_rows[] = {
	{ "cert-only", S(CERT16), 0, MTRK_OK, 0, 0 },
	{ "cert-with-plus", S(CERT32), 0, MTRK_OK, 0, 0 },
	{ "timeout-1", S(CERT16 ":1"), 0, MTRK_OK, 1, 1 },
	{ "timeout-0", S(CERT16 ":0"), 0, MTRK_OK, 1, 0 },
	{ "timeout-9-digits", S(CERT16 ":999999999"), 0, MTRK_OK, 1,
	    999999999UL },
	{ "timeout-leading-zeros", S(CERT16 ":000000042"), 0, MTRK_OK, 1, 42 },
	{ "timeout-day", S(CERT16 ":86400"), 0, MTRK_OK, 1, 86400 },
	{ "timeout-10-digits", S(CERT16 ":1000000000"), -1,
	    MTRK_ERR_TIMEOUT_LEN, 0, 0 },
	{ "timeout-10-zeros", S(CERT16 ":0000000000"), -1, MTRK_ERR_TIMEOUT_LEN,
	    0, 0 },
	{ "timeout-empty", S(CERT16 ":"), -1, MTRK_ERR_TIMEOUT, 0, 0 },
	{ "timeout-alpha", S(CERT16 ":12a"), -1, MTRK_ERR_TIMEOUT, 0, 0 },
	{ "timeout-sign", S(CERT16 ":+1"), -1, MTRK_ERR_TIMEOUT, 0, 0 },
	{ "timeout-minus", S(CERT16 ":-1"), -1, MTRK_ERR_TIMEOUT, 0, 0 },
	{ "second-colon", S(CERT16 ":1:2"), -1, MTRK_ERR_COLON, 0, 0 },
	{ "colon-colon", S(CERT16 "::"), -1, MTRK_ERR_COLON, 0, 0 },
	{ "empty", S(""), -1, MTRK_ERR_EMPTY, 0, 0 },
	{ "colon-only", S(":5"), -1, MTRK_ERR_EMPTY, 0, 0 },
	{ "cert-26", S("VheLhqV/rCKJmplkGFwsyW59pY"), -1, MTRK_ERR_CERT_LEN, 0,
	    0 },
	{ "cert-28", S(CERT16 "A"), -1, MTRK_ERR_CERT_LEN, 0, 0 },
	{ "cert-padded-28", S("VheLhqV/rCKJmplkGFwsyW59pYk="), -1,
	    MTRK_ERR_CERT_CHAR, 0, 0 },
	{ "cert-22-128bit", S("AAECAwQFBgcICQoLDA0ODw"), -1, MTRK_ERR_CERT_LEN,
	    0, 0 },
	{ "cert-dash", S("VheLhqV-rCKJmplkGFwsyW59pYk"), -1, MTRK_ERR_CERT_CHAR,
	    0, 0 },
	{ "cert-underscore", S("VheLhqV_rCKJmplkGFwsyW59pYk"), -1,
	    MTRK_ERR_CERT_CHAR, 0, 0 },
	{ "cert-xtext-plus2B", S("rlvY7+2BpTIsTZmG0GaAp4E5L5pkI"), -1,
	    MTRK_ERR_CERT_LEN, 0, 0 },
	{ "cert-noncanon-l", S("VheLhqV/rCKJmplkGFwsyW59pYl"), -1,
	    MTRK_ERR_CERT_NONCANON, 0, 0 },
	{ "cert-noncanon-B", S("AAAAAAAAAAAAAAAAAAAAAAAAAAB"), -1,
	    MTRK_ERR_CERT_NONCANON, 0, 0 },
	{ "cert-canon-A", S("AAAAAAAAAAAAAAAAAAAAAAAAAAA"), 0, MTRK_OK, 0, 0 },
	{ "cert-canon-8", S("AAAAAAAAAAAAAAAAAAAAAAAAAA8"), 0, MTRK_OK, 0, 0 },
	{ "cert-noncanon-slash", S("AAAAAAAAAAAAAAAAAAAAAAAAAA/"), -1,
	    MTRK_ERR_CERT_NONCANON, 0, 0 },
	{ "nul-in-cert", S("VheLhqV/rCKJ\0mplkGFwsyW59pYk"), -1, MTRK_ERR_NUL,
	    0, 0 },
	{ "nul-in-timeout", S(CERT16 ":1\0"), -1, MTRK_ERR_NUL, 0, 0 },
	{ "stalwart-example", S("my-ceritifier"), -1, MTRK_ERR_CERT_CHAR, 0,
	    0 },
};

static const char *
param_name(const void *row)
{
	return ((const struct param_row *)row)->name;
}

static void
test_param(void **state)
{
	const struct param_row *r = *state;
	struct mtrk_param p;
	enum mtrk_error err = 99;
	struct buf b;

	memset(&p, 0x55, sizeof(p));
	assert_int_equal(mtrk_param_parse(r->in, r->n, &p, &err), r->rc);
	assert_int_equal(err, r->err);
	if (r->rc != 0)
		return;
	assert_memory_equal(p.certifier, r->in, MTRK_CERTIFIER_LEN);
	assert_int_equal(p.certifier[MTRK_CERTIFIER_LEN], '\0');
	assert_int_equal(p.has_timeout, r->has_timeout);
	assert_int_equal(p.timeout, r->timeout);
	/* format then parse again gives the same values */
	buf_init(&b, 64);
	assert_int_equal(
	    mtrk_param_format(&b, p.certifier, p.has_timeout, p.timeout), 0);
	assert_true(strncmp(buf_cstr(&b), "MTRK=", 5) == 0);
	{
		struct mtrk_param q;

		assert_int_equal(
		    mtrk_param_parse(b.data + 5, b.len - 5, &q, NULL), 0);
		assert_string_equal(q.certifier, p.certifier);
		assert_int_equal(q.has_timeout, p.has_timeout);
		assert_int_equal(q.timeout, p.timeout);
	}
	buf_reset(&b);
}

struct verify_row {
	const char *name;
	const char *secret;
	size_t n;
	const char *certifier;
	int rc;
	enum mtrk_error err;
};

static const struct verify_row verify_rows[] = {
	{ "vec16-unpadded", S(SEC16), CERT16, 0, MTRK_OK },
	{ "vec16-padded", S(SEC16_PAD), CERT16, 0, MTRK_OK },
	{ "vec32", S(SEC32), CERT32, 0, MTRK_OK },
	{ "vec32-padded", S(SEC32 "="), CERT32, 0, MTRK_OK },
	{ "vec128-max", S(SEC128), CERT128, 0, MTRK_OK },
	{ "vec128-padded", S(SEC128 "="), CERT128, 0, MTRK_OK },
	{ "wrong-cert", S(SEC16), CERT32, -1, MTRK_ERR_MISMATCH },
	{ "wrong-secret", S(SEC32), CERT16, -1, MTRK_ERR_MISMATCH },
	{ "secret-15-octets", S(SEC15), CERT16, -1, MTRK_ERR_SECRET },
	{ "secret-129-octets", S(SEC129), CERT16, -1, MTRK_ERR_SECRET },
	{ "secret-bad-padding", S(SEC16 "="), CERT16, -1, MTRK_ERR_SECRET },
	{ "secret-128-two-pad", S(SEC128 "=="), CERT128, -1, MTRK_ERR_SECRET },
	{ "secret-bad-char", S("AAECAwQFBgcICQoLDA0OD-"), CERT16, -1,
	    MTRK_ERR_SECRET },
	{ "secret-noncanon", S("AAECAwQFBgcICQoLDA0ODx"), CERT16, -1,
	    MTRK_ERR_SECRET },
	{ "secret-space", S(" AAECAwQFBgcICQoLDA0ODw"), CERT16, -1,
	    MTRK_ERR_SECRET },
	{ "secret-newline", S(SEC16 "\n"), CERT16, -1, MTRK_ERR_SECRET },
	{ "secret-nul", S(SEC16 "\0"), CERT16, -1, MTRK_ERR_SECRET },
	{ "secret-empty", S(""), CERT16, -1, MTRK_ERR_SECRET },
	/* RFC 3887 §4.1 example secret "abcdefgh" is only 64 bits */
	{ "rfc3887-example", S("YWJjZGVmZ2gK"), CERT16, -1, MTRK_ERR_SECRET },
	{ "cert-short", S(SEC16), "VheLhqV/rCKJmplkGFwsyW59pY", -1,
	    MTRK_ERR_CERT_LEN },
	{ "cert-long", S(SEC16), CERT16 "A", -1, MTRK_ERR_CERT_LEN },
	{ "cert-noncanon", S(SEC16), "VheLhqV/rCKJmplkGFwsyW59pYl", -1,
	    MTRK_ERR_CERT_NONCANON },
	{ "cert-badchar", S(SEC16), "VheLhqV/rCKJmplkGFwsyW59p=k", -1,
	    MTRK_ERR_CERT_CHAR },
	{ "cert-empty", S(SEC16), "", -1, MTRK_ERR_EMPTY },
};

static const char *
verify_name(const void *row)
{
	return ((const struct verify_row *)row)->name;
}

static void
test_verify(void **state)
{
	const struct verify_row *r = *state;
	enum mtrk_error err = 99;

	assert_int_equal(
	    mtrk_verify(r->secret, r->n, r->certifier, &err), r->rc);
	assert_int_equal(err, r->err);
	assert_int_equal(
	    mtrk_verify(r->secret, r->n, r->certifier, NULL), r->rc);
}

/* mtrk_certifier() over the raw octets 00..n-1. */
struct cert_row {
	const char *name;
	size_t n;
	int rc;
	const char *cert;
};

static const struct cert_row cert_rows[] = {
	{ "len-15", 15, -1, NULL },
	{ "len-16", 16, 0, CERT16 },
	{ "len-32", 32, 0, CERT32 },
	{ "len-128", 128, 0, CERT128 },
	{ "len-129", 129, -1, NULL },
	{ "len-0", 0, -1, NULL },
};

static const char *
cert_name(const void *row)
{
	return ((const struct cert_row *)row)->name;
}

static void
test_certifier(void **state)
{
	const struct cert_row *r = *state;
	unsigned char sec[200];
	char cert[MTRK_CERTIFIER_LEN + 1], enc[MTRK_SECRET_B64_SIZE];
	unsigned char back[MTRK_SECRET_MAX];
	size_t i;
	int len;

	for (i = 0; i < sizeof(sec); i++)
		sec[i] = (unsigned char)i;
	assert_int_equal(mtrk_certifier(sec, r->n, cert), r->rc);
	len = mtrk_secret_encode(sec, r->n, enc, sizeof(enc));
	if (r->rc != 0) {
		assert_int_equal(len, -1);
		return;
	}
	assert_string_equal(cert, r->cert);
	assert_int_equal(mtrk_certifier_check(cert, strlen(cert), NULL), 0);
	/* encode -> decode round trip, and the encoded secret verifies */
	assert_true(len > 0);
	assert_null(strchr(enc, '='));
	assert_int_equal(
	    mtrk_secret_decode(enc, (size_t)len, back, sizeof(back)),
	    (int)r->n);
	assert_memory_equal(back, sec, r->n);
	assert_int_equal(mtrk_verify(enc, (size_t)len, cert, NULL), 0);
}

struct fmt_row {
	const char *name;
	const char *cert;
	int has_timeout;
	unsigned long timeout;
	int rc;
	const char *out;
};

static const struct fmt_row fmt_rows[] = {
	{ "plain", CERT16, 0, 0, 0, "MTRK=" CERT16 },
	{ "timeout", CERT32, 1, 777600, 0, "MTRK=" CERT32 ":777600" },
	{ "timeout-max", CERT16, 1, 999999999UL, 0,
	    "MTRK=" CERT16 ":999999999" },
	{ "timeout-0", CERT16, 1, 0, 0, "MTRK=" CERT16 ":0" },
	{ "timeout-too-big", CERT16, 1, 1000000000UL, -1, "" },
	{ "bad-cert", "abc", 0, 0, -1, "" },
	{ "null-cert", NULL, 0, 0, -1, "" },
	{ "noncanon-cert", "VheLhqV/rCKJmplkGFwsyW59pYl", 0, 0, -1, "" },
};

static const char *
fmt_name(const void *row)
{
	return ((const struct fmt_row *)row)->name;
}

static void
test_format(void **state)
{
	const struct fmt_row *r = *state;
	struct buf b;

	buf_init(&b, 64);
	assert_int_equal(
	    mtrk_param_format(&b, r->cert, r->has_timeout, r->timeout), r->rc);
	assert_string_equal(buf_cstr(&b), r->out);
	buf_reset(&b);
	/* a full buffer fails and is left unchanged */
	buf_init(&b, 10);
	assert_int_equal(buf_adds(&b, "x"), 0);
	assert_int_equal(mtrk_param_format(&b, CERT16, 0, 0), -1);
	assert_string_equal(buf_cstr(&b), "x");
	buf_reset(&b);
}

/* Fresh secrets: right size, different each time, and they verify. */
static void
test_secret_new(void **state)
{
	unsigned char a[MTRK_SECRET_LEN], b[MTRK_SECRET_LEN];
	char cert[MTRK_CERTIFIER_LEN + 1], enc[MTRK_SECRET_B64_SIZE];
	int len;

	(void)state;
	assert_int_equal(mtrk_secret_new(a), 0);
	assert_int_equal(mtrk_secret_new(b), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(mtrk_certifier(a, sizeof(a), cert), 0);
	assert_int_equal(strlen(cert), MTRK_CERTIFIER_LEN);
	len = mtrk_secret_encode(a, sizeof(a), enc, sizeof(enc));
	assert_int_equal(len, 43); /* 256 bits, unpadded */
	assert_int_equal(mtrk_verify(enc, (size_t)len, cert, NULL), 0);
	assert_int_equal(mtrk_certifier(b, sizeof(b), cert), 0);
	assert_int_equal(mtrk_verify(enc, (size_t)len, cert, NULL), -1);
}

static void
test_secret_decode_misc(void **state)
{
	unsigned char out[MTRK_SECRET_MAX];
	char enc[4];

	(void)state;
	/* output smaller than the secret */
	assert_int_equal(mtrk_secret_decode(SEC32, strlen(SEC32), out, 16), -1);
	assert_int_equal(mtrk_secret_decode(SEC16, strlen(SEC16), out, 16), 16);
	/* encode into a too-small buffer */
	assert_int_equal(mtrk_secret_encode(out, 16, enc, sizeof(enc)), -1);
	assert_int_equal(mtrk_verify(SEC16, strlen(SEC16), NULL, NULL), -1);
	assert_string_equal(
	    mtrk_strerror(MTRK_ERR_MISMATCH), "secret does not match");
	assert_string_equal(
	    mtrk_strerror((enum mtrk_error)99), "unknown error");
	for (int e = MTRK_OK; e <= MTRK_ERR_INTERNAL; e++)
		assert_string_not_equal(
		    mtrk_strerror((enum mtrk_error)e), "unknown error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secret_new),
		cmocka_unit_test(test_secret_decode_misc),
	};
	int failed = 0;

	failed +=
	    TABLE_RUN("mtrk_param_parse", test_param, param_rows, param_name);
	failed +=
	    TABLE_RUN("mtrk_verify", test_verify, verify_rows, verify_name);
	failed +=
	    TABLE_RUN("mtrk_certifier", test_certifier, cert_rows, cert_name);
	failed +=
	    TABLE_RUN("mtrk_param_format", test_format, fmt_rows, fmt_name);
	failed += cmocka_run_group_tests(tests, NULL, NULL);
	return failed;
}
