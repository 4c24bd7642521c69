/*
 * test_sender_logins: the sender_logins file (valid and invalid lines,
 * file:line errors, limits) and the MAIL FROM rule with and without a
 * table, case rules included (RFC 5321 §2.4: domain in any case, local
 * part exact).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/sender_logins.h"
#include "table.h"

struct parse_case {
	const char *name;
	const char *text;
	const char *err; /* NULL: parses */
	size_t count;
};

static const struct parse_case parse_cases[] = {
	{ "empty", "", NULL, 0 },
	{ "comments", "# x\n\n  # y\n", NULL, 0 },
	{ "one", "alice@example.test: alice\n", NULL, 1 },
	{ "several logins",
	    "team@example.test: alice, bob@example.test,carol\n", NULL, 1 },
	{ "blanks and crlf", " a@d.test \t:\t x , y \r\n", NULL, 1 },
	{ "no final newline", "a@d.test: x", NULL, 1 },
	{ "two", "a@d.test: x\nb@d.test: y\n", NULL, 2 },
	{ "same local other case", "A@d.test: x\na@d.test: y\n", NULL, 2 },
	{ "missing colon", "a@d.test x\n", "f:1: missing ':' after the address",
	    0 },
	{ "missing address", "# c\n: x\n", "f:2: missing address before ':'",
	    0 },
	{ "not an address", "alice: x\n", "f:1: invalid address", 0 },
	{ "bracketed", "<a@d.test>: x\n", "f:1: invalid address", 0 },
	{ "no logins", "a@d.test:\n", "f:1: no logins after ':'", 0 },
	{ "empty login", "a@d.test: x,,y\n", "f:1: empty login", 0 },
	{ "trailing comma", "a@d.test: x,\n", "f:1: empty login", 0 },
	{ "login with blank", "a@d.test: x y\n", "f:1: invalid login", 0 },
	{ "login listed twice", "a@d.test: x, x\n", "f:1: login listed twice",
	    0 },
	{ "control", "a@d.test: x\x01\n", "f:1: control character", 0 },
	{ "nul", "a@d.test: x\n\0", "f:2: NUL byte", 0 },
	{ "duplicate", "a@D.test: x\n#\na@d.TEST: y\n",
	    "f:3: duplicate address a@d.test (line 1)", 0 },
};

static const char *
parse_name(const void *row)
{
	return ((const struct parse_case *)row)->name;
}

static size_t
text_len(const struct parse_case *c)
{
	/* The "nul" row carries its NUL inside. */
	return strcmp(c->name, "nul") == 0 ? strlen(c->text) + 1
	                                   : strlen(c->text);
}

static void
test_parse(void **state)
{
	const struct parse_case *c = *state;
	struct sender_logins *t;
	char err[512] = "";

	t = sender_logins_parse("f", c->text, text_len(c), err, sizeof(err));
	if (c->err != NULL) {
		assert_null(t);
		assert_string_equal(err, c->err);
		return;
	}
	assert_non_null(t);
	assert_int_equal(sender_logins_count(t), c->count);
	sender_logins_free(t);
}

struct allow_case {
	const char *name;
	int table; /* use the table below */
	const char *login, *from;
	int want;
};

static const char table_text[] = "team@example.test: alice@example.test, bob\n"
                                 "Carol@Example.test: carol\n"
                                 "dave@example.test: bob\n";

static const struct allow_case allow_cases[] = {
	{ "self", 0, "alice@example.test", "alice@example.test", 1 },
	{ "self domain case", 0, "alice@example.test", "alice@EXAMPLE.Test",
	    1 },
	{ "self local case differs", 0, "alice@example.test",
	    "Alice@example.test", 0 },
	{ "other", 0, "alice@example.test", "bob@example.test", 0 },
	{ "login not an address", 0, "alice", "alice@example.test", 0 },
	{ "null sender", 0, "alice@example.test", "", 1 },
	{ "bad from", 0, "alice@example.test", "alice", 0 },
	{ "empty login", 0, "", "a@example.test", 0 },
	{ "table grant", 1, "bob", "team@example.test", 1 },
	{ "table grant domain case", 1, "bob", "team@EXAMPLE.TEST", 1 },
	{ "table grant address login", 1, "alice@example.test",
	    "team@example.test", 1 },
	{ "table not granted", 1, "carol", "team@example.test", 0 },
	{ "table login case differs", 1, "Bob", "team@example.test", 0 },
	{ "table local case exact", 1, "carol", "Carol@example.test", 1 },
	{ "table local case differs", 1, "carol", "carol@example.test", 0 },
	{ "table unlisted self", 1, "erin@example.test", "erin@example.test",
	    1 },
	{ "table unlisted other", 1, "bob", "erin@example.test", 0 },
	/* A listed address belongs to its logins only, even to the
	 * login that is that address. */
	{ "table listed self", 1, "dave@example.test", "dave@example.test", 0 },
	{ "table null sender", 1, "carol", "", 1 },
};

static const char *
allow_name(const void *row)
{
	return ((const struct allow_case *)row)->name;
}

static void
test_allow(void **state)
{
	const struct allow_case *c = *state;
	struct sender_logins *t = NULL;
	char err[256];

	if (c->table) {
		t = sender_logins_parse(
		    "f", table_text, sizeof(table_text) - 1, err, sizeof(err));
		assert_non_null(t);
	}
	assert_int_equal(sender_logins_allowed(t, c->login, c->from), c->want);
	sender_logins_free(t);
}

static void
test_load(void **state)
{
	char dir[] = "/tmp/test_sender_logins.XXXXXX", path[128], err[512];
	struct sender_logins *t;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sl", dir);
	t = sender_logins_load(path, err, sizeof(err));
	assert_null(t);
	assert_non_null(strstr(err, path));
	assert_non_null(f = fopen(path, "w"));
	fputs("a@d.test: x\nbad line\n", f);
	fclose(f);
	assert_null(sender_logins_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, ":2: missing ':' after the address"));
	assert_non_null(f = fopen(path, "w"));
	fputs("a@d.test: x\n", f);
	fclose(f);
	assert_non_null(t = sender_logins_load(path, err, sizeof(err)));
	assert_true(sender_logins_allowed(t, "x", "a@d.test"));
	sender_logins_free(t);
	unlink(path);
	rmdir(dir);
}

/* Limits: a line over SENDER_LOGINS_LINE_MAX, too many logins. */
static void
test_limits(void **state)
{
	size_t n = SENDER_LOGINS_LINE_MAX + 64, i;
	char *text = malloc(n), err[256];
	int len;

	(void)state;
	assert_non_null(text);
	memset(text, 'x', n);
	memcpy(text, "a@d.test: ", 10);
	assert_null(sender_logins_parse("f", text, n, err, sizeof(err)));
	assert_string_equal(err, "f:1: line too long");
	len = snprintf(text, n, "a@d.test: l0");
	for (i = 1; i <= SENDER_LOGINS_PER_ADDRESS_MAX; i++)
		len += snprintf(text + len, n - (size_t)len, ",l%zu", i);
	assert_null(
	    sender_logins_parse("f", text, (size_t)len, err, sizeof(err)));
	assert_string_equal(err, "f:1: too many logins");
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_limits),
	};
	int failed = 0;

	failed += TABLE_RUN(
	    "sender_logins_parse", test_parse, parse_cases, parse_name);
	failed += TABLE_RUN(
	    "sender_logins_allowed", test_allow, allow_cases, allow_name);
	failed +=
	    cmocka_run_group_tests_name("sender_logins", tests, NULL, NULL);
	return failed != 0;
}
