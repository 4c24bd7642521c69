/*
 * test_envid: RFC 3885 §3.2 unique-envid check and generation.
 */
#include <stdio.h>
#include <string.h>

#include "table.h"

#include "msgtrk/buf.h"
#include "msgtrk/envid.h"
#include "msgtrk/xtext.h"

#define S(s) s, sizeof(s) - 1

#define A10 "aaaaaaaaaa"
#define A50 A10 A10 A10 A10 A10
#define A79 A50 A10 A10 "aaaaaaaaa"
#define X100 A50 A50

struct check_row {
	const char *name;
	const char *in;
	size_t n;
	int rc;
	enum envid_error err;
	size_t at;
};

static const struct check_row check_rows[] = {
	{ "simple", S("abc@example.com"), 0, ENVID_OK, 3 },
	{ "rfc3887-example", S("<12345-20010101@example.com>"), 0, ENVID_OK,
	    15 },
	{ "minimal", S("a@b"), 0, ENVID_OK, 1 },
	{ "two-ats-last-wins", S("a@b@c"), 0, ENVID_OK, 3 },
	{ "at-in-local", S("x@y@host.example"), 0, ENVID_OK, 3 },
	{ "space-and-tab-ok", S("a b\tc@h"), 0, ENVID_OK, 5 },
	{ "hashed-fqhn", S("q@hvM2Uvz/1/oUQ+JG3TT+XQDiX/0"), 0, ENVID_OK, 1 },
	{ "len-100", S(A50 "@" A10 A10 A10 A10 "aaaaaaaaa"), 0, ENVID_OK, 50 },
	{ "len-101", S(A50 "@" A50), -1, ENVID_ERR_TOOLONG, 0 },
	{ "empty", S(""), -1, ENVID_ERR_EMPTY, 0 },
	{ "no-at", S("abc.example.com"), -1, ENVID_ERR_NO_AT, 0 },
	{ "no-at-100", S(X100), -1, ENVID_ERR_NO_AT, 0 },
	{ "at-only", S("@"), -1, ENVID_ERR_NO_LOCAL, 0 },
	{ "no-local", S("@example.com"), -1, ENVID_ERR_NO_LOCAL, 0 },
	{ "no-fqhn", S("abc@"), -1, ENVID_ERR_NO_FQHN, 0 },
	{ "no-fqhn-last-at", S("a@b@"), -1, ENVID_ERR_NO_FQHN, 0 },
	{ "nul", S("a\0@b"), -1, ENVID_ERR_NUL, 0 },
	{ "cr", S("a\r@b"), -1, ENVID_ERR_NONPRINT, 0 },
	{ "lf", S("a@b\n"), -1, ENVID_ERR_NONPRINT, 0 },
	{ "del", S("a@b\x7f"), -1, ENVID_ERR_NONPRINT, 0 },
	{ "8bit", S("\xc3\xa9@b"), -1, ENVID_ERR_NONPRINT, 0 },
};

static const char *
check_name(const void *row)
{
	return ((const struct check_row *)row)->name;
}

static void
test_check(void **state)
{
	const struct check_row *r = *state;
	enum envid_error err = 99;
	size_t at = 999;

	assert_int_equal(envid_check_unique(r->in, r->n, &at, &err), r->rc);
	assert_int_equal(err, r->err);
	if (r->rc == 0)
		assert_int_equal(at, r->at);
	else
		assert_int_equal(at, 999);
	assert_int_equal(envid_check_unique(r->in, r->n, NULL, NULL), r->rc);
}

static const unsigned char rnd0[ENVID_RANDOM_LEN] = { 0, 1, 2, 3, 4, 5, 6, 7, 8,
	9, 10, 11, 12 };
static const unsigned char rndff[ENVID_RANDOM_LEN] = { 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* Expected values computed independently with Python (base64.b32encode,
 * hashlib.sha1). */
struct gen_row {
	const char *name;
	const char *fqhn;
	const unsigned char *rnd;
	size_t outsize; /* 0: 128 */
	int rc;
	enum envid_error err;
	const char *out;
};

static const struct gen_row gen_rows[] = {
	{ "short-host", "mail.example.com", rnd0, 0, 0, ENVID_OK,
	    "aaaqeayeaudaocajbifq@mail.example.com" },
	{ "all-ones", "h", rndff, 0, 0, ENVID_OK, "77777777777777777777@h" },
	{ "host-79-kept", A79, rnd0, 0, 0, ENVID_OK,
	    "aaaqeayeaudaocajbifq@" A79 },
	{ "host-80-hashed", A79 "a", rnd0, 0, 0, ENVID_OK,
	    "aaaqeayeaudaocajbifq@hvM2Uvz/1/oUQ+JG3TT+XQDiX/0" },
	{ "host-255-hashed", X100 X100 A50 "aaaaa", rnd0, 0, 0, ENVID_OK,
	    "aaaqeayeaudaocajbifq@Wv2XKZKK2Ubu5WEENOZrX5Wsy68" },
	{ "host-256", X100 X100 A50 "aaaaaa", rnd0, 0, -1, ENVID_ERR_FQHN,
	    NULL },
	{ "host-empty", "", rnd0, 0, -1, ENVID_ERR_FQHN, NULL },
	{ "host-null", NULL, rnd0, 0, -1, ENVID_ERR_FQHN, NULL },
	{ "host-at", "a@b", rnd0, 0, -1, ENVID_ERR_FQHN, NULL },
	{ "host-underscore-no", "my_host", rnd0, 0, -1, ENVID_ERR_FQHN, NULL },
	{ "host-dot-first", ".example", rnd0, 0, -1, ENVID_ERR_FQHN, NULL },
	{ "host-dot-last", "example.", rnd0, 0, -1, ENVID_ERR_FQHN, NULL },
	{ "host-dot-dot", "a..b", rnd0, 0, -1, ENVID_ERR_FQHN, NULL },
	{ "host-space", "a b", rnd0, 0, -1, ENVID_ERR_FQHN, NULL },
	{ "outsize-exact", "h", rnd0, 23, 0, ENVID_OK,
	    "aaaqeayeaudaocajbifq@h" },
	{ "outsize-short", "h", rnd0, 22, -1, ENVID_ERR_BUFSIZE, NULL },
};

static const char *
gen_name(const void *row)
{
	return ((const struct gen_row *)row)->name;
}

static void
test_generate(void **state)
{
	const struct gen_row *r = *state;
	enum envid_error err = 99;
	char out[128];
	size_t outsize = r->outsize ? r->outsize : sizeof(out), at;
	struct buf b;
	char back[ENVID_MAX + 1];
	size_t blen;

	assert_int_equal(
	    envid_generate(r->fqhn, r->rnd, out, outsize, &err), r->rc);
	assert_int_equal(err, r->err);
	if (r->rc != 0)
		return;
	assert_string_equal(out, r->out);
	/* A generated envid is in unique-envid form, within 100, and
	 * survives the xtext round trip. */
	assert_int_equal(envid_check_unique(out, strlen(out), &at, NULL), 0);
	assert_int_equal(at, ENVID_LOCAL_LEN);
	buf_init(&b, 512);
	assert_int_equal(xtext_encode(&b, out, strlen(out)), 0);
	assert_int_equal(xtext_decode(b.data, b.len, XTEXT_PRINTABLE, back,
	                     sizeof(back), &blen, NULL),
	    0);
	assert_string_equal(back, out);
	buf_reset(&b);
}

/* Golden file: the decoded and xtext-encoded envids for a set of hosts. */
static void
test_generate_golden(void **state)
{
	static const char *hosts[] = { "mail.example.com", "h",
		"a-b.c-d.example", A79, (A79 "a"),
		("very.long.host.name.that.is.certainly.longer.than.seventy."
		 "nine.characters.example.org") };
	struct buf g, x;
	char out[ENVID_MAX + 1];
	size_t i;

	(void)state;
	buf_init(&g, 8192);
	buf_init(&x, 512);
	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		assert_int_equal(
		    envid_generate(hosts[i], rnd0, out, sizeof(out), NULL), 0);
		buf_clear(&x);
		assert_int_equal(xtext_encode(&x, out, strlen(out)), 0);
		assert_int_equal(buf_addf(&g, "host %s\ndecoded %s\nxtext %s\n",
		                     hosts[i], out, buf_cstr(&x)),
		    0);
	}
	golden_check("envid/generate.txt", g.data, g.len);
	buf_reset(&g);
	buf_reset(&x);
}

/* Without rnd: fresh, different, well-formed, and within the RFC 3461
 * §5.4 submission guidance of 38 characters for a short host name. */
static void
test_generate_random(void **state)
{
	char a[ENVID_MAX + 1], b[ENVID_MAX + 1];
	size_t i;

	(void)state;
	assert_int_equal(
	    envid_generate("mx.example.org", NULL, a, sizeof(a), NULL), 0);
	assert_int_equal(
	    envid_generate("mx.example.org", NULL, b, sizeof(b), NULL), 0);
	assert_string_not_equal(a, b);
	assert_true(strlen(a) <= ENVID_SUBMIT_MAX);
	for (i = 0; i < ENVID_LOCAL_LEN; i++)
		assert_non_null(
		    strchr("abcdefghijklmnopqrstuvwxyz234567", a[i]));
	assert_int_equal(a[ENVID_LOCAL_LEN], '@');
	/* 17-character host: exactly 38 */
	assert_int_equal(
	    envid_generate("abcdefghijklmnopq", NULL, a, sizeof(a), NULL), 0);
	assert_int_equal(strlen(a), ENVID_SUBMIT_MAX);
}

static void
test_strerror(void **state)
{
	int e;

	(void)state;
	for (e = ENVID_OK; e <= ENVID_ERR_INTERNAL; e++)
		assert_string_not_equal(
		    envid_strerror((enum envid_error)e), "unknown error");
	assert_string_equal(
	    envid_strerror((enum envid_error)99), "unknown error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate_golden),
		cmocka_unit_test(test_generate_random),
		cmocka_unit_test(test_strerror),
	};
	int failed = 0;

	failed +=
	    TABLE_RUN("envid_check_unique", test_check, check_rows, check_name);
	failed +=
	    TABLE_RUN("envid_generate", test_generate, gen_rows, gen_name);
	failed += cmocka_run_group_tests(tests, NULL, NULL);
	return failed;
}
