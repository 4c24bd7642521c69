/*
 * test_buf: the bounded growable buffer and the string helpers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/buf.h"
#include "msgtrk/str.h"
#include "table.h"

static void
test_add_within_max(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 10);
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(buf_adds(&b, "hello"), 0);
	assert_int_equal(buf_addc(&b, ' '), 0);
	assert_int_equal(buf_addf(&b, "%d%s", 12, "3"), 0);
	assert_int_equal(b.len, 9);
	assert_string_equal(buf_cstr(&b), "hello 123");
	assert_int_equal(buf_addc(&b, '!'), 0); /* exactly max */
	assert_int_equal(b.len, 10);
	buf_reset(&b);
	assert_null(b.data);
	assert_int_equal(b.max, 10);
}

static void
test_add_past_max(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_adds(&b, "12345"), 0);
	errno = 0;
	assert_int_equal(buf_adds(&b, "6789"), -1);
	assert_int_equal(errno, ENOSPC);
	/* a failed append leaves the contents as they were */
	assert_string_equal(buf_cstr(&b), "12345");
	assert_int_equal(buf_addf(&b, "%s", "abcd"), -1);
	assert_string_equal(buf_cstr(&b), "12345");
	assert_int_equal(buf_add(&b, "abc", 3), 0);
	assert_int_equal(buf_addc(&b, 'x'), -1);
	assert_int_equal(buf_add(&b, "", 0), 0);
	assert_int_equal(buf_add(&b, "x", (size_t)-1), -1);
	buf_reset(&b);
}

static void
test_zero_max(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(buf_add(&b, "", 0), 0);
	assert_int_equal(buf_addc(&b, 'a'), -1);
	assert_string_equal(buf_cstr(&b), "");
	buf_reset(&b);
}

static void
test_consume_truncate_release(void **state)
{
	struct buf b;
	char *p;

	(void)state;
	buf_init(&b, 100);
	assert_int_equal(buf_adds(&b, "abcdef"), 0);
	buf_consume(&b, 2);
	assert_string_equal(buf_cstr(&b), "cdef");
	buf_truncate(&b, 3);
	assert_string_equal(buf_cstr(&b), "cde");
	buf_truncate(&b, 10);
	assert_string_equal(buf_cstr(&b), "cde");
	buf_consume(&b, 99);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_cstr(&b), "");
	assert_int_equal(buf_add(&b, "a\0b", 3), 0);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "a\0b", 4);
	p = buf_release(&b);
	assert_memory_equal(p, "a\0b", 4);
	assert_null(b.data);
	free(p);
	p = buf_release(&b); /* empty buffer yields "" */
	assert_string_equal(p, "");
	free(p);
	buf_clear(&b); /* clear on an empty buffer is safe */
	buf_wipe(&b);
}

static void
test_grow_large(void **state)
{
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b, 1 << 20);
	for (i = 0; i < (1 << 20); i++)
		assert_int_equal(buf_addc(&b, (int)(i & 0xff)), 0);
	assert_int_equal(buf_addc(&b, 0), -1);
	for (i = 0; i < (1 << 20); i += 4099)
		assert_int_equal((unsigned char)b.data[i], i & 0xff);
	assert_true(b.cap <= b.max + 1);
	buf_wipe(&b);
}

struct copy_case {
	const char *src;
	size_t size;
	const char *want;
	size_t ret;
};

static const struct copy_case copy_cases[] = {
	{ "abc", 4, "abc", 3 },
	{ "abc", 3, "ab", 3 },
	{ "abc", 1, "", 3 },
	{ "", 1, "", 0 },
	{ "abcdef", 5, "abcd", 6 },
};

static void
test_copy(void **state)
{
	const struct copy_case *c = *state;
	char dst[16];

	memset(dst, 'X', sizeof(dst));
	assert_int_equal(str_copy(dst, c->src, c->size), c->ret);
	assert_string_equal(dst, c->want);
	assert_int_equal(str_copy(dst, c->src, 0), c->ret); /* no write */
}

struct cmp_case {
	const char *a, *b;
	int sign;
};

static const struct cmp_case cmp_cases[] = {
	{ "MTRK", "mtrk", 0 }, { "Mail", "MAIL", 0 }, { "a", "b", -1 },
	{ "b", "A", 1 }, { "ab", "a", 1 }, { "", "", 0 },
	{ "\xc3\xa9", "\xc3\x89", 1 }, /* no locale folding of 8-bit */
	{ "[", "{", -1 }, /* '[' is not 'Z'+1 folded */
};

static void
test_casecmp(void **state)
{
	const struct cmp_case *c = *state;
	int r = str_casecmp(c->a, c->b);

	assert_int_equal(r < 0 ? -1 : r > 0, c->sign);
}

static void
test_misc(void **state)
{
	char s[] = "MiXeD-123", out[32];

	(void)state;
	str_lower(s);
	assert_string_equal(s, "mixed-123");
	assert_int_equal(str_casestarts("MAIL FROM:", 10, "mail from:"), 1);
	assert_int_equal(str_casestarts("MAIL", 4, "mail from:"), 0);
	assert_int_equal(str_ncasecmp("ENVIDx", "envidy", 5), 0);
	assert_string_equal(str_printable(out, sizeof(out), "a\r\n\\\x80z", 6),
	    "a\\x0d\\x0a\\x5c\\x80z");
	/* output is capped and still terminated */
	assert_string_equal(str_printable(out, 6, "\x01\x02", 2), "\\x01");
	assert_string_equal(str_printable(out, 4, "abcdef", 6), "abc");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_within_max),
		cmocka_unit_test(test_add_past_max),
		cmocka_unit_test(test_zero_max),
		cmocka_unit_test(test_consume_truncate_release),
		cmocka_unit_test(test_grow_large),
		cmocka_unit_test(test_misc),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("buf", tests, NULL, NULL);
	failed += TABLE_RUN("str_copy", test_copy, copy_cases, NULL);
	failed += TABLE_RUN("str_casecmp", test_casecmp, cmp_cases, NULL);
	return failed;
}
