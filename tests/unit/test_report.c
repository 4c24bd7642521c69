/*
 * test_report: the field code shared by tracking-status and DSN
 * (src/lib/report.h, internal to the library).
 */
#include <stdlib.h>
#include <string.h>

#include "../../src/lib/report.h"
#include "table.h"

struct status_row {
	const char *in;
	int cls; /* class, or -1 */
};

/* RFC 3464 §2.3.4 status-code with the classes of RFC 3463 §2. */
static const struct status_row status_rows[] = {
	{ "2.0.0", 2 },
	{ "4.4.1", 4 },
	{ "5.1.1", 5 },
	{ "2.1.9", 2 },
	{ "5.999.999", 5 },
	{ "4.10.100", 4 },
	{ "2.0.10", 2 },
	{ "3.0.0", -1 },
	{ "1.0.0", -1 },
	{ "6.0.0", -1 },
	{ "0.0.0", -1 },
	{ "2.00.0", -1 },
	{ "2.0.00", -1 },
	{ "2.01.1", -1 },
	{ "2.1.01", -1 },
	{ "2.1000.0", -1 },
	{ "2.0.1000", -1 },
	{ "2.0", -1 },
	{ "2", -1 },
	{ "", -1 },
	{ "2.0.0.0", -1 },
	{ "2..0", -1 },
	{ "2.0.", -1 },
	{ ".2.0.0", -1 },
	{ "2. 0.0", -1 },
	{ " 2.0.0", -1 },
	{ "2.0.0 ", -1 },
	{ "22.0.0", -1 },
	{ "2,0,0", -1 },
	{ "2.a.0", -1 },
	{ "2.0.0(x)", -1 },
};

static const char *
status_name(const void *row)
{
	return ((const struct status_row *)row)->in;
}

static void
test_status(void **state)
{
	const struct status_row *row = *state;

	assert_int_equal(
	    report_status_check(row->in, strlen(row->in)), row->cls);
}

struct atom_row {
	const char *in;
	int ok;
};

/* RFC 822 §3.3 atom. */
static const struct atom_row atom_rows[] = {
	{ "rfc822", 1 },
	{ "X-Foo", 1 },
	{ "dns", 1 },
	{ "x-local-hostname", 1 },
	{ "a!#$%&'*+-/=?^_`{|}~", 1 },
	{ "", 0 },
	{ "a b", 0 },
	{ "a.b", 0 },
	{ "a@b", 0 },
	{ "a;b", 0 },
	{ "a:b", 0 },
	{ "a(b", 0 },
	{ "a)b", 0 },
	{ "<a>", 0 },
	{ "a,b", 0 },
	{ "a\\b", 0 },
	{ "\"a\"", 0 },
	{ "[a]", 0 },
	{ "a\tb", 0 },
	{ "a\177", 0 },
	{ "a\001", 0 },
	{ "caf\303\251", 0 },
};

static const char *
atom_name(const void *row)
{
	return ((const struct atom_row *)row)->in;
}

static void
test_atom(void **state)
{
	const struct atom_row *row = *state;

	assert_int_equal(report_atom_check(row->in, strlen(row->in)), row->ok);
}

struct cfws_row {
	const char *in;
	size_t want; /* bytes of CFWS, or (size_t)-1 */
};

/* RFC 5322 §3.2.2 comments. */
static const struct cfws_row cfws_rows[] = {
	{ "", 0 },
	{ "x", 0 },
	{ "  x", 2 },
	{ " \t x", 3 },
	{ "(a)x", 3 },
	{ "(a) (b) x", 8 },
	{ "(a (b) c)", 9 },
	{ "(a \\) b)", 8 },
	{ "(a", (size_t)-1 },
	{ "(a (b)", (size_t)-1 },
	{ "(\\", (size_t)-1 },
	{ ")", 0 },
	{ "((((((((((((((((x))))))))))))))))", 33 },
	{ "(((((((((((((((((x)))))))))))))))))", (size_t)-1 },
};

static const char *
cfws_name(const void *row)
{
	return ((const struct cfws_row *)row)->in;
}

static void
test_cfws(void **state)
{
	const struct cfws_row *row = *state;

	assert_int_equal(report_cfws(row->in, strlen(row->in)), row->want);
}

struct rcpt_row {
	const char *name;
	enum tstatus_action action;
	const char *status;
	int remote, lad, wru, tracking;
	enum report_err want;
};

static const struct rcpt_row rcpt_rows[] = {
	{ "failed 5", TSTATUS_ACTION_FAILED, "5.0.0", 0, 0, 0, 1, REPORT_OK },
	{ "failed 4 (RFC 3464 2.3.3 note)", TSTATUS_ACTION_FAILED, "4.0.0", 0,
	    0, 0, 0, REPORT_OK },
	{ "failed 2", TSTATUS_ACTION_FAILED, "2.0.0", 0, 0, 0, 0,
	    REPORT_E_STATUS_ACTION },
	{ "delayed 4 + wru", TSTATUS_ACTION_DELAYED, "4.4.1", 1, 1, 1, 1,
	    REPORT_OK },
	{ "delayed 5", TSTATUS_ACTION_DELAYED, "5.0.0", 0, 0, 0, 0,
	    REPORT_E_STATUS_ACTION },
	{ "delivered 2", TSTATUS_ACTION_DELIVERED, "2.0.0", 0, 0, 0, 1,
	    REPORT_OK },
	{ "delivered 5", TSTATUS_ACTION_DELIVERED, "5.0.0", 0, 0, 0, 0,
	    REPORT_E_STATUS_ACTION },
	{ "delivered 2.1.9", TSTATUS_ACTION_DELIVERED, "2.1.9", 0, 0, 0, 0,
	    REPORT_E_STATUS_ACTION },
	{ "relayed 2.1.9 dsn", TSTATUS_ACTION_RELAYED, "2.1.9", 0, 0, 0, 0,
	    REPORT_OK },
	{ "relayed tracking needs lad", TSTATUS_ACTION_RELAYED, "2.1.9", 0, 0,
	    0, 1, REPORT_E_NEEDS_ATTEMPT },
	{ "transferred tracking needs lad", TSTATUS_ACTION_TRANSFERRED, "2.4.0",
	    1, 0, 0, 1, REPORT_E_NEEDS_ATTEMPT },
	{ "transferred with lad", TSTATUS_ACTION_TRANSFERRED, "2.4.0", 1, 1, 0,
	    1, REPORT_OK },
	{ "opaque any class", TSTATUS_ACTION_OPAQUE, "5.0.0", 0, 0, 0, 1,
	    REPORT_OK },
	{ "opaque remote", TSTATUS_ACTION_OPAQUE, "2.0.0", 1, 1, 0, 1,
	    REPORT_E_NOT_ALLOWED },
	{ "opaque lad tracking", TSTATUS_ACTION_OPAQUE, "2.0.0", 0, 1, 0, 1,
	    REPORT_E_NOT_ALLOWED },
	{ "wru with failed", TSTATUS_ACTION_FAILED, "5.0.0", 0, 0, 1, 0,
	    REPORT_E_NOT_ALLOWED },
	{ "remote without lad dsn ok", TSTATUS_ACTION_FAILED, "5.0.0", 1, 0, 0,
	    0, REPORT_OK },
	{ "remote without lad tracking", TSTATUS_ACTION_FAILED, "5.0.0", 1, 0,
	    0, 1, REPORT_E_NEEDS_ATTEMPT },
	{ "action none", TSTATUS_ACTION_NONE, "5.0.0", 0, 0, 0, 0,
	    REPORT_E_BAD_ACTION },
	{ "status NULL", TSTATUS_ACTION_FAILED, NULL, 0, 0, 0, 0,
	    REPORT_E_MISSING },
	{ "status bad", TSTATUS_ACTION_FAILED, "5.0", 0, 0, 0, 0,
	    REPORT_E_BAD_STATUS },
};

static const char *
rcpt_name(const void *row)
{
	return ((const struct rcpt_row *)row)->name;
}

static void
test_rcpt(void **state)
{
	const struct rcpt_row *row = *state;

	assert_int_equal(report_rcpt_check(row->action, row->status,
	                     row->remote, row->lad, row->wru, row->tracking),
	    row->want);
}

static void
test_lookups(void **state)
{
	int f, a;

	(void)state;
	for (f = 0; f < REPORT_F_COUNT; f++) {
		const char *n = report_field_name((enum report_field)f);
		char up[64];
		size_t i;

		for (i = 0; n[i] != '\0'; i++)
			up[i] = (char)(n[i] >= 'a' && n[i] <= 'z' ? n[i] - 32
			                                          : n[i]);
		assert_int_equal(report_field_lookup(up, i), f);
	}
	assert_int_equal(report_field_lookup("Status-X", 8), -1);
	assert_int_equal(report_field_lookup("Statu", 5), -1);
	assert_null(report_field_name(REPORT_F_COUNT));
	for (a = TSTATUS_ACTION_FAILED; a <= TSTATUS_ACTION_OPAQUE; a++) {
		const char *n = report_action_name((enum tstatus_action)a);

		assert_int_equal(report_action_lookup(n, strlen(n)), a);
	}
	assert_int_equal(
	    report_action_lookup("FAILED", 6), TSTATUS_ACTION_FAILED);
	assert_int_equal(report_action_lookup("fail", 4), TSTATUS_ACTION_NONE);
	assert_null(report_action_name((enum tstatus_action)42));
}

static void
test_checks(void **state)
{
	(void)state;
	assert_int_equal(report_text_check("a b", 0), REPORT_OK);
	assert_int_equal(report_text_check("", 0), REPORT_E_MISSING);
	assert_int_equal(report_text_check("", 1), REPORT_OK);
	assert_int_equal(report_text_check(NULL, 1), REPORT_E_MISSING);
	assert_int_equal(report_text_check(" a", 0), REPORT_E_BAD_VALUE);
	assert_int_equal(report_text_check("a\r\nb", 0), REPORT_E_BAD_VALUE);
	assert_int_equal(report_typed_check("rfc822", "a@b"), REPORT_OK);
	assert_int_equal(
	    report_typed_check("rfc 822", "a@b"), REPORT_E_BAD_TYPE);
	assert_int_equal(report_typed_check(NULL, "a@b"), REPORT_E_MISSING);
	assert_int_equal(report_typed_check("rfc822", ""), REPORT_E_MISSING);
	assert_int_equal(report_comment_check(NULL), REPORT_OK);
	assert_int_equal(report_comment_check("(a) (b)"), REPORT_OK);
	assert_int_equal(report_comment_check("a"), REPORT_E_BAD_STATUS);
	assert_int_equal(report_comment_check(""), REPORT_E_BAD_STATUS);
}

static void
test_arena(void **state)
{
	struct report_arena a;
	char big[10000];
	const char *p[300];
	size_t i;

	(void)state;
	report_arena_init(&a);
	memset(big, 'b', sizeof(big));
	for (i = 0; i < 300; i++)
		p[i] =
		    report_arena_strndup(&a, i % 50 == 0 ? big : "0123456789",
		        i % 50 == 0 ? sizeof(big) : 10);
	for (i = 0; i < 300; i++) {
		assert_non_null(p[i]);
		assert_int_equal(strlen(p[i]), i % 50 == 0 ? sizeof(big) : 10);
	}
	report_arena_reset(&a);
	report_arena_reset(&a);
}

int
main(void)
{
	const struct CMUnitTest misc[] = {
		cmocka_unit_test(test_lookups),
		cmocka_unit_test(test_checks),
		cmocka_unit_test(test_arena),
	};
	int failed = 0;

	failed +=
	    TABLE_RUN("report_status", test_status, status_rows, status_name);
	failed += TABLE_RUN("report_atom", test_atom, atom_rows, atom_name);
	failed += TABLE_RUN("report_cfws", test_cfws, cfws_rows, cfws_name);
	failed += TABLE_RUN("report_rcpt", test_rcpt, rcpt_rows, rcpt_name);
	failed += cmocka_run_group_tests_name("report_misc", misc, NULL, NULL);
	return failed;
}
