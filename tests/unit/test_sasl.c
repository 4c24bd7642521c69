/*
 * test_sasl: PLAIN and LOGIN responses (RFC 4616, RFC 4954), the cancel
 * line, the challenges, and the wiping of decoded secrets.  A response is
 * one whole line (the session's line reader splits lines), so there is no
 * incremental input to feed byte by byte here.
 */
#include <string.h>

#include "msgtrk/b64.h"
#include "msgtrk/sasl.h"
#include "table.h"

enum kind { PLAIN, LOGIN_USER, LOGIN_PASS };

struct dec_case {
	const char *name;
	enum kind kind;
	const char *raw; /* octets to base64-encode (rawlen of them) */
	size_t rawlen;
	const char *b64; /* or the line itself when raw is NULL */
	enum sasl_error err;
	const char *login, *password; /* wanted on success */
};

#define R(s) (s), sizeof(s) - 1, NULL
#define L(s) NULL, 0, (s)

static char f255[256], f256[257]; /* 255 and 256 'a's */
static char plain_max[SASL_PLAIN_MAX + 1], plain_over[SASL_PLAIN_MAX + 2];

static const struct dec_case dec_cases[] = {
	{ "plain valid", PLAIN, R("\0alice@example.test\0secret"), SASL_OK,
	    "alice@example.test", "secret" },
	{ "plain RFC 4616 example", PLAIN, L("AHRpbQB0YW5zdGFhZnRhbnN0YWFm"),
	    SASL_OK, "tim", "tanstaaftanstaaf" },
	{ "plain authzid equal", PLAIN, R("bob\0bob\0pw"), SASL_OK, "bob",
	    "pw" },
	{ "plain unpadded", PLAIN, L("AGEAYg"), SASL_OK, "a", "b" },
	{ "plain utf8", PLAIN, R("\0j\xc3\xb6rg\0p\xc3\xa4ss"), SASL_OK,
	    "j\xc3\xb6rg", "p\xc3\xa4ss" },
	{ "plain password with blanks and tab", PLAIN, R("\0u\0 a\tb "),
	    SASL_OK, "u", " a\tb " },
	{ "plain authzid other", PLAIN, R("root\0alice\0pw"), SASL_ERR_AUTHZID,
	    NULL, NULL },
	{ "plain authzid case differs", PLAIN, R("Alice\0alice\0pw"),
	    SASL_ERR_AUTHZID, NULL, NULL },
	{ "plain authzid prefix", PLAIN, R("alic\0alice\0pw"), SASL_ERR_AUTHZID,
	    NULL, NULL },
	{ "plain authzid longer", PLAIN, R("alice \0alice\0pw"),
	    SASL_ERR_AUTHZID, NULL, NULL },
	{ "plain authzid control", PLAIN, R("a\x01\0alice\0pw"), SASL_ERR_UTF8,
	    NULL, NULL },
	{ "plain no nul", PLAIN, R("alicepw"), SASL_ERR_FORMAT, NULL, NULL },
	{ "plain one nul", PLAIN, R("alice\0pw"), SASL_ERR_FORMAT, NULL, NULL },
	{ "plain three nuls", PLAIN, R("\0alice\0pw\0x"), SASL_ERR_FORMAT, NULL,
	    NULL },
	{ "plain nul at the end", PLAIN, R("\0alice\0pw\0"), SASL_ERR_FORMAT,
	    NULL, NULL },
	{ "plain empty login", PLAIN, R("\0\0pw"), SASL_ERR_EMPTY, NULL, NULL },
	{ "plain empty password", PLAIN, R("\0alice\0"), SASL_ERR_EMPTY, NULL,
	    NULL },
	{ "plain only nuls", PLAIN, R("\0\0"), SASL_ERR_EMPTY, NULL, NULL },
	{ "plain empty response", PLAIN, L("="), SASL_ERR_FORMAT, NULL, NULL },
	{ "plain empty line", PLAIN, L(""), SASL_ERR_FORMAT, NULL, NULL },
	{ "plain control in login", PLAIN, R("\0al\nice\0pw"), SASL_ERR_UTF8,
	    NULL, NULL },
	{ "plain DEL in login", PLAIN, R("\0al\x7f\0pw"), SASL_ERR_UTF8, NULL,
	    NULL },
	{ "plain bad utf8 login", PLAIN, R("\0\xc3\0pw"), SASL_ERR_UTF8, NULL,
	    NULL },
	{ "plain overlong utf8", PLAIN, R("\0\xc0\xaf\0pw"), SASL_ERR_UTF8,
	    NULL, NULL },
	{ "plain surrogate", PLAIN, R("\0a\0\xed\xa0\x80"), SASL_ERR_UTF8, NULL,
	    NULL },
	{ "plain bad utf8 password", PLAIN, R("\0a\0\xff"), SASL_ERR_UTF8, NULL,
	    NULL },
	{ "plain bad base64", PLAIN, L("AGEAYg=!"), SASL_ERR_BASE64, NULL,
	    NULL },
	{ "plain base64 with space", PLAIN, L("AGEA Yg=="), SASL_ERR_BASE64,
	    NULL, NULL },
	{ "plain base64 bad padding", PLAIN, L("AGEAYg="), SASL_ERR_BASE64,
	    NULL, NULL },
	{ "plain base64 non-canonical", PLAIN, L("AGEAYh=="), SASL_ERR_BASE64,
	    NULL, NULL },
	{ "plain cancel is not base64", PLAIN, L("*"), SASL_ERR_BASE64, NULL,
	    NULL },
	{ "login user", LOGIN_USER, R("alice@example.test"), SASL_OK,
	    "alice@example.test", NULL },
	{ "login user draft example", LOGIN_USER, L("dGVzdA=="), SASL_OK,
	    "test", NULL },
	{ "login pass", LOGIN_PASS, R("s3cr\xc3\xa9t"), SASL_OK, NULL,
	    "s3cr\xc3\xa9t" },
	{ "login empty user", LOGIN_USER, L(""), SASL_ERR_EMPTY, NULL, NULL },
	{ "login empty pass", LOGIN_PASS, L(""), SASL_ERR_EMPTY, NULL, NULL },
	{ "login nul in user", LOGIN_USER, R("al\0ice"), SASL_ERR_FORMAT, NULL,
	    NULL },
	{ "login nul in pass", LOGIN_PASS, R("p\0w"), SASL_ERR_FORMAT, NULL,
	    NULL },
	{ "login bad base64", LOGIN_USER, L("dGVzdA=x"), SASL_ERR_BASE64, NULL,
	    NULL },
	{ "login control in user", LOGIN_USER, R("a\tb"), SASL_ERR_UTF8, NULL,
	    NULL },
};

/* Rows whose raw octets are made at run time (sizes). */
struct len_case {
	const char *name;
	enum kind kind;
	const char *raw;
	size_t rawlen;
	enum sasl_error err;
};

static struct len_case len_cases[6];

static void
make_len_cases(void)
{
	size_t i = 0;

	memset(f255, 'a', 255);
	memset(f256, 'a', 256);
	/* authzid, authcid and passwd at 255 each: the largest message. */
	memcpy(plain_max, f255, 255);
	memcpy(plain_max + 256, f255, 255);
	memcpy(plain_max + 512, f255, 255);
	memcpy(plain_over, plain_max, sizeof(plain_max));
	plain_over[SASL_PLAIN_MAX] = 'a'; /* passwd of 256 */
	len_cases[i++] = (struct len_case){ "plain largest", PLAIN, plain_max,
		SASL_PLAIN_MAX, SASL_OK };
	len_cases[i++] = (struct len_case){ "plain password 256", PLAIN,
		plain_over, SASL_PLAIN_MAX + 1, SASL_ERR_TOO_LONG };
	len_cases[i++] = (struct len_case){ "login user 255", LOGIN_USER, f255,
		255, SASL_OK };
	len_cases[i++] = (struct len_case){ "login user 256", LOGIN_USER, f256,
		256, SASL_ERR_TOO_LONG };
	len_cases[i++] = (struct len_case){ "login pass 255", LOGIN_PASS, f255,
		255, SASL_OK };
	len_cases[i++] = (struct len_case){ "login pass 256", LOGIN_PASS, f256,
		256, SASL_ERR_TOO_LONG };
}

static const char *
dec_name(const void *row)
{
	return ((const struct dec_case *)row)->name;
}

static const char *
len_name(const void *row)
{
	return ((const struct len_case *)row)->name;
}

static int
run(enum kind kind, const char *line, size_t n, struct sasl_creds *c,
    enum sasl_error *err)
{
	if (kind == PLAIN)
		return sasl_plain_decode(line, n, c, err);
	return sasl_login_decode(c,
	    kind == LOGIN_USER ? SASL_LOGIN_USERNAME : SASL_LOGIN_PASSWORD,
	    line, n, err);
}

static int
all_zero(const struct sasl_creds *c)
{
	const unsigned char *p = (const void *)c;
	size_t i;

	for (i = 0; i < sizeof(*c); i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

static void
test_dec(void **state)
{
	const struct dec_case *t = *state;
	char line[2048];
	struct sasl_creds c;
	enum sasl_error err = SASL_ERR_FORMAT;
	int r;

	if (t->raw != NULL)
		assert_true(b64_encode(t->raw, t->rawlen, B64_PAD_REQUIRED,
		                line, sizeof(line)) >= 0);
	else
		strcpy(line, t->b64);
	/* A failing LOGIN step wipes what the earlier step left. */
	memset(&c, 'x', sizeof(c));
	r = run(t->kind, line, strlen(line), &c, &err);
	assert_int_equal(err, t->err);
	if (t->err != SASL_OK) {
		assert_int_equal(r, -1);
		assert_true(all_zero(&c));
		return;
	}
	assert_int_equal(r, 0);
	if (t->login != NULL) {
		assert_string_equal(c.login, t->login);
		assert_int_equal(c.login_len, strlen(t->login));
	}
	if (t->password != NULL) {
		assert_string_equal(c.password, t->password);
		assert_int_equal(c.password_len, strlen(t->password));
	}
	sasl_clear(&c);
	assert_true(all_zero(&c));
}

static void
test_len(void **state)
{
	const struct len_case *t = *state;
	char line[2048];
	struct sasl_creds c;
	enum sasl_error err;
	int n;

	n = b64_encode(t->raw, t->rawlen, B64_PAD_REQUIRED, line, sizeof(line));
	assert_true(n > 0);
	assert_int_equal(run(t->kind, line, (size_t)n, &c, &err),
	    t->err == SASL_OK ? 0 : -1);
	assert_int_equal(err, t->err);
	sasl_clear(&c);
}

/* A line past SASL_LINE_MAX is refused before decoding. */
static void
test_line_too_long(void **state)
{
	char line[SASL_LINE_MAX + 5];
	struct sasl_creds c;
	enum sasl_error err;

	(void)state;
	memset(line, 'A', sizeof(line));
	assert_int_equal(
	    sasl_plain_decode(line, SASL_LINE_MAX + 4, &c, &err), -1);
	assert_int_equal(err, SASL_ERR_TOO_LONG);
	assert_int_equal(sasl_login_decode(&c, SASL_LOGIN_PASSWORD, line,
	                     SASL_LINE_MAX + 4, &err),
	    -1);
	assert_int_equal(err, SASL_ERR_TOO_LONG);
}

/* LOGIN: the two steps fill one struct. */
static void
test_login_exchange(void **state)
{
	struct sasl_creds c;
	enum sasl_error err;

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(sasl_login_decode(&c, SASL_LOGIN_USERNAME,
	                     "dXNlckBleGFtcGxlLnRlc3Q=", 24, &err),
	    0);
	assert_int_equal(
	    sasl_login_decode(&c, SASL_LOGIN_PASSWORD, "cGFzcw==", 8, &err), 0);
	assert_string_equal(c.login, "user@example.test");
	assert_string_equal(c.password, "pass");
	sasl_clear(&c);
	assert_true(all_zero(&c));
}

static void
test_misc(void **state)
{
	(void)state;
	assert_int_equal(sasl_mech_parse("PLAIN"), SASL_MECH_PLAIN);
	assert_int_equal(sasl_mech_parse("plain"), SASL_MECH_PLAIN);
	assert_int_equal(sasl_mech_parse("Login"), SASL_MECH_LOGIN);
	assert_int_equal(sasl_mech_parse("CRAM-MD5"), SASL_MECH_UNKNOWN);
	assert_int_equal(sasl_mech_parse("PLAINX"), SASL_MECH_UNKNOWN);
	assert_int_equal(sasl_mech_parse(""), SASL_MECH_UNKNOWN);
	assert_int_equal(sasl_mech_parse(NULL), SASL_MECH_UNKNOWN);
	assert_true(sasl_is_cancel("*", 1));
	assert_false(sasl_is_cancel("**", 2));
	assert_false(sasl_is_cancel("", 0));
	assert_false(sasl_is_cancel("* ", 2));
	assert_true(sasl_is_empty_response("=", 1));
	assert_false(sasl_is_empty_response("==", 2));
	assert_string_equal(
	    sasl_login_challenge(SASL_LOGIN_USERNAME), "334 VXNlcm5hbWU6");
	assert_string_equal(
	    sasl_login_challenge(SASL_LOGIN_PASSWORD), "334 UGFzc3dvcmQ6");
	assert_string_equal(sasl_plain_challenge(), "334 ");
	assert_string_equal(sasl_strerror(SASL_ERR_AUTHZID),
	    "authorization identity not allowed");
	sasl_clear(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_login_exchange),
		cmocka_unit_test(test_misc),
	};
	int failed = 0;

	make_len_cases();
	failed += TABLE_RUN("sasl_decode", test_dec, dec_cases, dec_name);
	failed += TABLE_RUN("sasl_lengths", test_len, len_cases, len_name);
	failed += cmocka_run_group_tests_name("sasl", tests, NULL, NULL);
	return failed != 0;
}
