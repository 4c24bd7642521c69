/*
 * test_mime: folded header fields and multipart framing.
 */
#include <errno.h>
#include <string.h>

#include "msgtrk/mime.h"
#include "table.h"

struct field_case {
	const char *name;
	const char *value;
	const char *want; /* NULL: must fail */
};

static const struct field_case field_cases[] = {
	{ "Action", "delivered", "Action: delivered\r\n" },
	{ "Status", "", "Status: \r\n" },
	{ "Remote-MTA", "dns; hop2.test", "Remote-MTA: dns; hop2.test\r\n" },
	/* folded before the blank that would pass 78 columns */
	{ "Original-Recipient",
	    "rfc822; a-very-long-local-part-that-goes-on@and-a-long-domain."
	    "example.test",
	    "Original-Recipient: rfc822;\r\n"
	    " a-very-long-local-part-that-goes-on@and-a-long-domain.example."
	    "test\r\n" },
	{ "Diagnostic-Code",
	    "smtp; 550 5.1.1 <user@example.test>: Recipient address rejected: "
	    "User unknown in virtual mailbox table",
	    "Diagnostic-Code: smtp; 550 5.1.1 <user@example.test>: Recipient "
	    "address\r\n rejected: User unknown in virtual mailbox table\r\n" },
	/* 78 columns exactly: no fold */
	{ "X",
	    "123456789 123456789 123456789 123456789 123456789 123456789 "
	    "123456789012345",
	    "X: 123456789 123456789 123456789 123456789 123456789 123456789 "
	    "123456789012345\r\n" },
	/* 79 columns: fold at the last blank */
	{ "X",
	    "123456789 123456789 123456789 123456789 123456789 123456789 "
	    "1234567890123456",
	    "X: 123456789 123456789 123456789 123456789 123456789 123456789"
	    "\r\n 1234567890123456\r\n" },
	/* a long word with no blank stays whole (under 998) */
	{ "X",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaa",
	    "X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaa\r\n" },
	/* header injection is refused */
	{ "Subject", "hi\r\nBcc: victim@example.test", NULL },
	{ "Subject", "hi\nX: y", NULL },
	{ "Subject", "hi\r", NULL },
};

static const char *
field_name(const void *row)
{
	const struct field_case *c = row;

	return c->value;
}

static void
test_field(void **state)
{
	const struct field_case *c = *state;
	struct buf b;

	buf_init(&b, 4096);
	assert_int_equal(buf_adds(&b, "keep"), 0);
	if (c->want == NULL) {
		errno = 0;
		assert_int_equal(mime_field(&b, c->name, c->value), -1);
		assert_int_equal(errno, EINVAL);
		assert_string_equal(buf_cstr(&b), "keep"); /* untouched */
		buf_reset(&b);
		return;
	}
	assert_int_equal(mime_field(&b, c->name, c->value), 0);
	assert_string_equal(buf_cstr(&b) + 4, c->want);
	buf_reset(&b);
}

static void
test_field_limits(void **state)
{
	char word[MIME_LINE_HARD_MAX + 2];
	struct buf b;

	(void)state;
	buf_init(&b, 8192);
	/* "X: " + 995 = 998: the longest line allowed */
	memset(word, 'w', sizeof(word));
	word[MIME_LINE_HARD_MAX - 3] = '\0';
	assert_int_equal(mime_field(&b, "X", word), 0);
	buf_clear(&b);
	word[MIME_LINE_HARD_MAX - 3] = 'w';
	word[MIME_LINE_HARD_MAX - 2] = '\0';
	assert_int_equal(mime_field(&b, "X", word), -1);
	assert_int_equal(b.len, 0);
	buf_reset(&b);
	/* the buffer's own limit is reported, and nothing half-written */
	buf_init(&b, 10);
	errno = 0;
	assert_int_equal(mime_field(&b, "Action", "delivered"), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(b.len, 0);
	buf_reset(&b);
	buf_init(&b, 200);
	assert_int_equal(mime_fieldf(&b, "Status", "%d.%d.%d", 2, 1, 9), 0);
	assert_string_equal(buf_cstr(&b), "Status: 2.1.9\r\n");
	buf_reset(&b);
}

static void
test_boundary(void **state)
{
	char a[MIME_BOUNDARY_LEN + 1], b[MIME_BOUNDARY_LEN + 1];
	size_t i;

	(void)state;
	assert_int_equal(mime_boundary(a, sizeof(a) - 1), -1);
	assert_int_equal(mime_boundary(a, sizeof(a)), 0);
	assert_int_equal(mime_boundary(b, sizeof(b)), 0);
	assert_int_equal(strlen(a), MIME_BOUNDARY_LEN);
	assert_true(MIME_BOUNDARY_LEN <= MIME_BOUNDARY_LEN_MAX);
	assert_string_not_equal(a, b);
	assert_memory_equal(a, "=_", 2);
	/* RFC 2046 §5.1.1 bchars only, and no trailing space */
	for (i = 0; i < strlen(a); i++)
		assert_non_null(strchr("0123456789abcdefghijklmnopqrstuvwxyz"
		                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?",
		    a[i]));
}

static void
test_multipart_golden(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(
	    mime_field(&b, "Content-Type", "multipart/mixed; boundary=\"=_B\""),
	    0);
	assert_int_equal(buf_adds(&b, "\r\n"), 0);
	assert_int_equal(mime_part_begin(&b, "=_B", 1), 0);
	assert_int_equal(mime_field(&b, "Content-Type", "text/plain"), 0);
	assert_int_equal(buf_adds(&b, "\r\none\r\n"), 0);
	assert_int_equal(mime_part_begin(&b, "=_B", 0), 0);
	assert_int_equal(buf_adds(&b, "\r\ntwo"), 0);
	assert_int_equal(mime_multipart_end(&b, "=_B"), 0);
	golden_check("mime/multipart.txt", b.data, b.len);
	buf_reset(&b);
}

int
main(void)
{
	const struct CMUnitTest misc[] = {
		cmocka_unit_test(test_field_limits),
		cmocka_unit_test(test_boundary),
		cmocka_unit_test(test_multipart_golden),
	};
	int failed = 0;

	failed += TABLE_RUN("mime_field", test_field, field_cases, field_name);
	failed += cmocka_run_group_tests_name("mime_misc", misc, NULL, NULL);
	return failed;
}
