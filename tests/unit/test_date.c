/*
 * test_date: RFC 5322 §3.3 date-time formatting and parsing.
 */
#include <stdlib.h>
#include <string.h>

#include "msgtrk/date.h"
#include "table.h"

struct parse_case {
	const char *in;
	int ok;
	long long t; /* expected instant when ok */
	int gmtoff;
};

static const struct parse_case parse_cases[] = {
	/* RFC 5322 §A.1.1 */
	{ "Fri, 21 Nov 1997 09:55:06 -0600", 1, 880127706, -21600 },
	{ "Tue, 1 Jul 2003 10:52:37 +0200", 1, 1057049557, 7200 },
	{ "Thu, 13 Feb 1969 23:32:54 -0330", 1, -27723426, -12600 },
	/* RFC 5322 §A.5: comments and folding white space */
	{ "Thu,\r\n      13\r\n        Feb\r\n          1969\r\n      23:32\r\n"
	  "               -0330 (Newfoundland Time)",
	    1, -27723480, -12600 },
	/* RFC 5322 §A.6.2: obsolete forms */
	{ "21 Nov 97 09:55:06 GMT", 1, 880106106, 0 },
	{ "Fri, 21 Nov 1997 09(comment):   55  :  06 -0600", 1, 880127706,
	    -21600 },
	{ "Sun, 22 Nov 2026 05:49:40 +0000", 1, 1795326580, 0 },
	{ "22 Nov 2026 05:49:40 +0000", 1, 1795326580, 0 },
	{ "sun, 22 nov 2026 05:49:40 +0000", 1, 1795326580, 0 },
	{ "Sun, 22 Nov 2026 05:49 +0000", 1, 1795326540, 0 },
	{ "  Sun, 22 Nov 2026 05:49:40 +0000  ", 1, 1795326580, 0 },
	{ "Sun, 22 Nov 2026 05:49:40 +0000 (UTC)", 1, 1795326580, 0 },
	{ "Sun, 22 Nov 2026 05:49:40 -0000", 1, 1795326580, 0 },
	{ "Sun, 22 Nov 2026 05:49:40 EST", 1, 1795326580 + 5 * 3600,
	    -5 * 3600 },
	{ "Sun, 22 Nov 2026 05:49:40 PDT", 1, 1795326580 + 7 * 3600,
	    -7 * 3600 },
	{ "Sun, 22 Nov 2026 05:49:40 UT", 1, 1795326580, 0 },
	{ "Sun, 22 Nov 2026 05:49:40 Z", 1, 1795326580, 0 },
	{ "Sun, 22 Nov 2026 05:49:40 +1400", 1, 1795326580 - 14 * 3600,
	    14 * 3600 },
	{ "Tue, 29 Feb 2028 00:00:00 +0000", 1, 1835395200, 0 },
	{ "Thu, 1 Jan 1970 00:00:00 +0000", 1, 0, 0 },
	{ "Fri, 31 Dec 1999 23:59:60 +0000", 1, 946684800, 0 },
	{ "Mon, 01 Jan 1900 00:00:00 +0000", 1, -2208988800LL, 0 },
	{ "01 Jan 099 00:00:00 +0000", 1, 915148800, 0 },
	{ "01 Jan 49 00:00:00 +0000", 1, 2493072000LL, 0 },
	/* invalid */
	{ "", 0, 0, 0 }, { "   ", 0, 0, 0 },
	{ "Mon, 22 Nov 2026 05:49:40 +0000", 0, 0, 0 }, /* wrong weekday */
	{ "Sun 22 Nov 2026 05:49:40 +0000", 0, 0, 0 }, /* no comma */
	{ "Xyz, 22 Nov 2026 05:49:40 +0000", 0, 0, 0 },
	{ "22 Foo 2026 05:49:40 +0000", 0, 0, 0 },
	{ "32 Nov 2026 05:49:40 +0000", 0, 0, 0 },
	{ "31 Nov 2026 05:49:40 +0000", 0, 0, 0 },
	{ "29 Feb 2027 00:00:00 +0000", 0, 0, 0 },
	{ "29 Feb 2100 00:00:00 +0000", 0, 0, 0 },
	{ "0 Nov 2026 05:49:40 +0000", 0, 0, 0 },
	{ "123 Nov 2026 05:49:40 +0000", 0, 0, 0 },
	{ "22 Nov 2026 24:00:00 +0000", 0, 0, 0 },
	{ "22 Nov 2026 23:60:00 +0000", 0, 0, 0 },
	{ "22 Nov 2026 23:59:61 +0000", 0, 0, 0 },
	{ "22 Nov 2026 5:49:40 +0000", 0, 0, 0 },
	{ "22 Nov 2026 05:4:40 +0000", 0, 0, 0 },
	{ "22 Nov 2026 05:49:40", 0, 0, 0 },
	{ "22 Nov 2026 05:49:40 +000", 0, 0, 0 },
	{ "22 Nov 2026 05:49:40 +00000", 0, 0, 0 },
	{ "22 Nov 2026 05:49:40 +0060", 0, 0, 0 },
	{ "22 Nov 2026 05:49:40 J", 0, 0, 0 },
	{ "22 Nov 2026 05:49:40 XYZ", 0, 0, 0 },
	{ "22 Nov 2026 05:49:40 +0000 junk", 0, 0, 0 },
	{ "22 Nov 1899 05:49:40 +0000", 0, 0, 0 },
	{ "22 Nov 10000 05:49:40 +0000", 0, 0, 0 },
	{ "22 Nov 2 05:49:40 +0000", 0, 0, 0 },
	{ "22 Nov 2026 05:49:40 +0000 (unclosed", 0, 0, 0 },
	{ "22 Nov 2026 05:49:40 +0000 )", 0, 0, 0 },
	{ "22 Nov 2026\r\n05:49:40 +0000", 0, 0, 0 }, /* CRLF not folding */
	{ "22 Nov 2026\n 05:49:40 +0000", 0, 0, 0 }, /* bare LF */
	{ "22 Nov 2026 05:49:40 +0000\r\n", 0, 0, 0 },
	{ "((((((((((((((((((a))))))))))))))))))22 Nov 2026 05:49:40 +0000", 0,
	    0, 0 }, /* comments nested past the limit */
};

static const char *
parse_name(const void *row)
{
	return ((const struct parse_case *)row)->in;
}

static void
test_parse(void **state)
{
	const struct parse_case *c = *state;
	struct date d;
	int r;

	r = date_parse(c->in, strlen(c->in), &d);
	if (!c->ok) {
		assert_int_equal(r, -1);
		return;
	}
	assert_int_equal(r, 0);
	assert_int_equal((long long)d.t, c->t);
	assert_int_equal(d.gmtoff, c->gmtoff);
}

struct fmt_case {
	long long t;
	int gmtoff;
	const char *out; /* NULL: must fail */
};

static const struct fmt_case fmt_cases[] = {
	{ 1795326580, 0, "Sun, 22 Nov 2026 05:49:40 +0000" },
	{ 880127706, -21600, "Fri, 21 Nov 1997 09:55:06 -0600" },
	{ -27723426, -12600, "Thu, 13 Feb 1969 23:32:54 -0330" },
	{ 0, 0, "Thu, 1 Jan 1970 00:00:00 +0000" },
	{ 0, 3600, "Thu, 1 Jan 1970 01:00:00 +0100" },
	{ 1785239999, 19800, "Tue, 28 Jul 2026 17:29:59 +0530" },
	{ 979157715, -5 * 3600, "Wed, 10 Jan 2001 15:15:15 -0500" },
	{ 0, -60, "Wed, 31 Dec 1969 23:59:00 -0001" },
	{ 1835395200, 14 * 3600, "Tue, 29 Feb 2028 14:00:00 +1400" },
	{ 253402300799LL, 0, "Fri, 31 Dec 9999 23:59:59 +0000" },
	{ -2208988800LL, 0, "Mon, 1 Jan 1900 00:00:00 +0000" },
	{ 253402300800LL, 0, NULL }, /* year 10000 */
	{ -2208988801LL, 0, NULL }, /* 1899 */
	{ 0, 30, NULL }, /* not whole minutes */
	{ 0, 100 * 3600, NULL }, /* offset beyond +99:59 */
};

static const char *
fmt_name(const void *row)
{
	const struct fmt_case *c = row;

	return c->out != NULL ? c->out : "(must fail)";
}

static void
test_format(void **state)
{
	const struct fmt_case *c = *state;
	struct date d = { (time_t)c->t, c->gmtoff }, back;
	char out[DATE_MAX];

	if (c->out == NULL) {
		assert_int_equal(date_format(&d, out, sizeof(out)), -1);
		return;
	}
	assert_int_equal(date_format(&d, out, sizeof(out)), 0);
	assert_string_equal(out, c->out);
	/* round trip */
	assert_int_equal(date_parse(out, strlen(out), &back), 0);
	assert_int_equal((long long)back.t, c->t);
	assert_int_equal(back.gmtoff, c->gmtoff);
	/* too small an output buffer is an error, not a truncation */
	assert_int_equal(date_format(&d, out, strlen(c->out)), -1);
}

static void
test_parse_limits(void **state)
{
	char big[DATE_PARSE_MAX + 2];
	const char *d = "Sun, 22 Nov 2026 05:49:40 +0000";
	struct date out;

	(void)state;
	memset(big, ' ', sizeof(big));
	memcpy(big, d, strlen(d));
	assert_int_equal(date_parse(big, DATE_PARSE_MAX, &out), 0);
	assert_int_equal(date_parse(big, DATE_PARSE_MAX + 1, &out), -1);
	/* an embedded NUL is never part of a date */
	assert_int_equal(
	    date_parse("Sun, 22 Nov 2026 05:49:40 +0000\0", 32, &out), -1);
}

static void
test_round_trip_sweep(void **state)
{
	long long t;
	int off;

	(void)state;
	/* Every 7919 hours across 1900..2100, under several zones. */
	for (t = -2208988800LL + 86400; t < 4102444800LL; t += 7919LL * 3600)
		for (off = -12 * 3600; off <= 14 * 3600; off += 13 * 1800) {
			struct date d = { (time_t)t, off - off % 60 }, back;
			char out[DATE_MAX];

			assert_int_equal(date_format(&d, out, sizeof(out)), 0);
			assert_int_equal(
			    date_parse(out, strlen(out), &back), 0);
			assert_true(back.t == d.t && back.gmtoff == d.gmtoff);
		}
}

int
main(void)
{
	const struct CMUnitTest misc[] = {
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_round_trip_sweep),
	};
	int failed = 0;

	failed += TABLE_RUN("date_parse", test_parse, parse_cases, parse_name);
	failed += TABLE_RUN("date_format", test_format, fmt_cases, fmt_name);
	failed += cmocka_run_group_tests_name("date_misc", misc, NULL, NULL);
	return failed;
}
