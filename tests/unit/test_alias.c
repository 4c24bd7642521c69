/*
 * test_alias: the aliases and local_recipients parsers (valid and invalid
 * lines, file:line errors, limits), lookups, and alias_load() on real
 * files (missing, a directory, too large, unreadable).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delivery/alias.h"
#include "table.h"

static char tmpdir[64];

struct parse_case {
	const char *name;
	enum alias_kind kind;
	const char *text;
	const char *err; /* NULL: must parse; else the exact error */
	size_t count; /* entries when it parses */
};

static const struct parse_case parse_cases[] = {
	{ "empty", ALIAS_KIND_ALIASES, "", NULL, 0 },
	{ "comments only", ALIAS_KIND_ALIASES, "# x\n  # y\n\n\t\n", NULL, 0 },
	{ "one target", ALIAS_KIND_ALIASES, "a@d.test: b@e.test\n", NULL, 1 },
	{ "no final newline", ALIAS_KIND_ALIASES, "a@d.test: b@e.test", NULL,
	    1 },
	{ "crlf", ALIAS_KIND_ALIASES, "a@d.test: b@e.test\r\n", NULL, 1 },
	{ "several targets", ALIAS_KIND_ALIASES,
	    "list@d.test: a@d.test, b@d.test,c@e.test\n", NULL, 1 },
	{ "blanks everywhere", ALIAS_KIND_ALIASES,
	    " \ta@d.test \t:\t b@e.test \t, c@e.test \n", NULL, 1 },
	{ "two entries", ALIAS_KIND_ALIASES,
	    "a@d.test: x@e.test\nb@d.test: y@e.test\n", NULL, 2 },
	{ "missing colon", ALIAS_KIND_ALIASES, "# c\na@d.test b@e.test\n",
	    "f:2: missing ':' after the alias", 0 },
	{ "missing key", ALIAS_KIND_ALIASES, ": b@e.test\n",
	    "f:1: missing alias before ':'", 0 },
	{ "key without at", ALIAS_KIND_ALIASES, "postmaster: b@e.test\n",
	    "f:1: invalid alias address", 0 },
	{ "key with space", ALIAS_KIND_ALIASES, "a b@d.test: b@e.test\n",
	    "f:1: invalid alias address", 0 },
	{ "key empty domain", ALIAS_KIND_ALIASES, "a@: b@e.test\n",
	    "f:1: invalid alias address", 0 },
	{ "key empty local", ALIAS_KIND_ALIASES, "@d.test: b@e.test\n",
	    "f:1: invalid alias address", 0 },
	{ "no targets", ALIAS_KIND_ALIASES, "a@d.test:\n",
	    "f:1: no targets after ':'", 0 },
	{ "blank targets", ALIAS_KIND_ALIASES, "a@d.test:   \n",
	    "f:1: no targets after ':'", 0 },
	{ "trailing comma", ALIAS_KIND_ALIASES, "a@d.test: b@e.test,\n",
	    "f:1: empty target", 0 },
	{ "double comma", ALIAS_KIND_ALIASES, "a@d.test: b@e.test,,c@e.test\n",
	    "f:1: empty target", 0 },
	{ "leading comma", ALIAS_KIND_ALIASES, "a@d.test: ,b@e.test\n",
	    "f:1: empty target", 0 },
	{ "bad target", ALIAS_KIND_ALIASES, "a@d.test: <b@e.test>\n",
	    "f:1: invalid target address", 0 },
	{ "target without at", ALIAS_KIND_ALIASES, "a@d.test: bob\n",
	    "f:1: invalid target address", 0 },
	{ "second colon", ALIAS_KIND_ALIASES, "a@d.test: b@e.test: c@e.test\n",
	    "f:1: invalid target address", 0 },
	{ "8-bit", ALIAS_KIND_ALIASES, "a@d.test: b\xc3\xa9@e.test\n",
	    "f:1: invalid target address", 0 },
	{ "control", ALIAS_KIND_ALIASES, "a@d.test: b@e.test\x01\n",
	    "f:1: control character", 0 },
	{ "control in comment", ALIAS_KIND_ALIASES, "\n# \x1b[31m\n",
	    "f:2: control character", 0 },
	{ "bare cr", ALIAS_KIND_ALIASES, "a@d.test:\r b@e.test\n",
	    "f:1: control character", 0 },
	{ "duplicate", ALIAS_KIND_ALIASES,
	    "a@d.test: x@e.test\n#\nA@D.TEST: y@e.test\n",
	    "f:3: duplicate alias a@d.test (line 1)", 0 },
	{ "error line counts comments", ALIAS_KIND_ALIASES,
	    "# 1\n\n# 3\nok@d.test: x@e.test\nbad\n",
	    "f:5: missing ':' after the alias", 0 },
	{ "rcpts empty", ALIAS_KIND_RECIPIENTS, "", NULL, 0 },
	{ "rcpts two", ALIAS_KIND_RECIPIENTS, "a@d.test\n  b@d.test  \n", NULL,
	    2 },
	{ "rcpts duplicate merged", ALIAS_KIND_RECIPIENTS,
	    "a@d.test\nA@d.TEST\na@d.test\n", NULL, 1 },
	{ "rcpts comment", ALIAS_KIND_RECIPIENTS, "# a@d.test\nb@d.test\n",
	    NULL, 1 },
	{ "rcpts invalid", ALIAS_KIND_RECIPIENTS, "a@d.test\nb c@d.test\n",
	    "f:2: invalid address", 0 },
	{ "rcpts alias syntax", ALIAS_KIND_RECIPIENTS, "a@d.test: b@d.test\n",
	    "f:1: invalid address", 0 },
	{ "rcpts no at", ALIAS_KIND_RECIPIENTS, "alice\n",
	    "f:1: invalid address", 0 },
};

static void
test_parse(void **state)
{
	const struct parse_case *c = *state;
	struct alias_table *t;
	char err[256] = "";

	t = alias_parse(
	    c->kind, "f", c->text, strlen(c->text), err, sizeof(err));
	if (c->err == NULL) {
		if (t == NULL)
			fail_msg("unexpected error: %s", err);
		assert_int_equal(alias_count(t), c->count);
	} else {
		assert_null(t);
		assert_string_equal(err, c->err);
	}
	alias_free(t);
}

static const char *
parse_name(const void *row)
{
	return ((const struct parse_case *)row)->name;
}

/* The NUL byte case needs an explicit length. */
static void
test_parse_nul(void **state)
{
	static const char text[] = "a@d.test: b@e.test\nc@d.test:\0x@e.test\n";
	char err[128];

	(void)state;
	assert_null(alias_parse(
	    ALIAS_KIND_ALIASES, "f", text, sizeof(text) - 1, err, sizeof(err)));
	assert_string_equal(err, "f:2: NUL byte");
}

static void
test_parse_line_max(void **state)
{
	static char text[ALIAS_LINE_MAX + 2];
	char err[128];
	struct alias_table *t;
	size_t n;

	(void)state;
	/* Exactly ALIAS_LINE_MAX: blanks then an entry. */
	n = ALIAS_LINE_MAX - strlen("a@d.test: b@e.test");
	memset(text, ' ', n);
	strcpy(text + n, "a@d.test: b@e.test");
	t = alias_parse(
	    ALIAS_KIND_ALIASES, "f", text, ALIAS_LINE_MAX, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(alias_count(t), 1);
	alias_free(t);
	/* One more: refused, CRLF not counted. */
	memmove(text + 1, text, ALIAS_LINE_MAX);
	text[0] = ' ';
	assert_null(alias_parse(ALIAS_KIND_ALIASES, "f", text,
	    ALIAS_LINE_MAX + 1, err, sizeof(err)));
	assert_string_equal(err, "f:1: line too long");
	/* ALIAS_LINE_MAX - 1 octets and CRLF: fine. */
	memset(text, ' ', ALIAS_LINE_MAX + 1);
	n = ALIAS_LINE_MAX - 1 - strlen("a@d.test: b@e.test");
	snprintf(text + n, ALIAS_LINE_MAX + 2 - n, "a@d.test: b@e.test\r\n");
	t = alias_parse(ALIAS_KIND_ALIASES, "f", text, ALIAS_LINE_MAX + 1, err,
	    sizeof(err));
	assert_non_null(t);
	alias_free(t);
}

static void
test_parse_targets_max(void **state)
{
	struct buf_like {
		char *p;
		size_t n;
	} b = { NULL, 0 };
	char err[128];
	struct alias_table *t;
	const char *const *tg;
	size_t i, n;

	(void)state;
	b.p = malloc(ALIAS_LINE_MAX);
	assert_non_null(b.p);
	b.n = (size_t)sprintf(b.p, "l@d.test:");
	for (i = 0; i < ALIAS_TARGETS_MAX; i++)
		b.n += (size_t)sprintf(b.p + b.n, "%st%zu@e", i ? "," : "", i);
	t = alias_parse(ALIAS_KIND_ALIASES, "f", b.p, b.n, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(alias_lookup(t, "L@D.test", &tg, &n), 1);
	assert_int_equal(n, ALIAS_TARGETS_MAX);
	assert_string_equal(tg[ALIAS_TARGETS_MAX - 1], "t99@e");
	alias_free(t);
	b.n += (size_t)sprintf(b.p + b.n, ",one@more");
	assert_null(
	    alias_parse(ALIAS_KIND_ALIASES, "f", b.p, b.n, err, sizeof(err)));
	assert_string_equal(err, "f:1: too many targets");
	free(b.p);
}

struct addr_case {
	const char *addr;
	int valid;
};

static const struct addr_case addr_cases[] = {
	{ "a@b", 1 },
	{ "first.last+tag@sub.example.test", 1 },
	{ "a@b@c", 1 }, /* the domain is after the last '@' */
	{ "", 0 },
	{ "@", 0 },
	{ "a@", 0 },
	{ "@b", 0 },
	{ "ab", 0 },
	{ "a b@c", 0 },
	{ "a\t@c", 0 },
	{ "<a@c>", 0 },
	{ "\"a\"@c", 0 },
	{ "a@[127.0.0.1]", 0 },
	{ "a,b@c", 0 },
	{ "a:b@c", 0 },
	{ "a;b@c", 0 },
	{ "a\\b@c", 0 },
	{ "a@c\x7f", 0 },
	{ "a@c\x80", 0 },
};

static void
test_addr(void **state)
{
	const struct addr_case *c = *state;

	assert_int_equal(alias_addr_valid(c->addr, strlen(c->addr)), c->valid);
	if (c->valid)
		assert_string_equal(
		    alias_domain(c->addr), strrchr(c->addr, '@') + 1);
	else
		assert_null(alias_domain(c->addr));
}

static const char *
addr_name(const void *row)
{
	return ((const struct addr_case *)row)->addr;
}

static void
test_addr_max(void **state)
{
	char a[ALIAS_ADDR_MAX + 2];

	(void)state;
	memset(a, 'x', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	a[1] = '@';
	assert_int_equal(alias_addr_valid(a, ALIAS_ADDR_MAX), 1);
	assert_int_equal(alias_addr_valid(a, ALIAS_ADDR_MAX + 1), 0);
	assert_int_equal(alias_lookup(NULL, a, NULL, NULL), -1);
	a[ALIAS_ADDR_MAX] = '\0';
	assert_int_equal(alias_lookup(NULL, a, NULL, NULL), 0);
}

struct lookup_case {
	const char *addr;
	int rc;
	size_t n;
	const char *first;
	const char *last;
};

static const char lookup_text[] = "# The test table.\n"
                                  "one@d.test: Target@Elsewhere.test\n"
                                  "list@d.test: a@d.test, b@d.test, c@e.test\n"
                                  "MiXeD@D.Test: m@e.test\n"
                                  "self@d.test: self@d.test\n";

static const struct lookup_case lookup_cases[] = {
	{ "one@d.test", 1, 1, "Target@Elsewhere.test", NULL },
	{ "ONE@D.TEST", 1, 1, "Target@Elsewhere.test", NULL },
	{ "list@d.test", 1, 3, "a@d.test", "c@e.test" },
	{ "mixed@d.test", 1, 1, "m@e.test", NULL },
	{ "MIXED@d.TEST", 1, 1, "m@e.test", NULL },
	{ "self@d.test", 1, 1, "self@d.test", NULL },
	{ "two@d.test", 0, 0, NULL, NULL },
	{ "one@d.test.", 0, 0, NULL, NULL },
	{ "one@e.test", 0, 0, NULL, NULL },
	{ "on@d.test", 0, 0, NULL, NULL },
	{ "onee@d.test", 0, 0, NULL, NULL },
	{ "a@d.test", 0, 0, NULL, NULL },
	{ "", -1, 0, NULL, NULL },
	{ "one", -1, 0, NULL, NULL },
	{ "one @d.test", -1, 0, NULL, NULL },
};

static struct alias_table *lookup_table;

static void
test_lookup(void **state)
{
	const struct lookup_case *c = *state;
	const char *const *tg = NULL;
	size_t n = 0;

	assert_int_equal(alias_lookup(lookup_table, c->addr, &tg, &n), c->rc);
	if (c->rc != 1)
		return;
	assert_int_equal(n, c->n);
	assert_string_equal(tg[0], c->first);
	if (c->last != NULL)
		assert_string_equal(tg[n - 1], c->last);
	/* NULL outputs are allowed. */
	assert_int_equal(alias_lookup(lookup_table, c->addr, NULL, NULL), 1);
}

static const char *
lookup_name(const void *row)
{
	return ((const struct lookup_case *)row)->addr;
}

static void
test_entries(void **state)
{
	size_t line = 0;

	(void)state;
	assert_int_equal(alias_count(lookup_table), 4);
	/* Key order, lower-cased, with their lines. */
	assert_string_equal(alias_entry(lookup_table, 0, &line), "list@d.test");
	assert_int_equal(line, 3);
	assert_string_equal(
	    alias_entry(lookup_table, 1, &line), "mixed@d.test");
	assert_int_equal(line, 4);
	assert_string_equal(alias_entry(lookup_table, 2, NULL), "one@d.test");
	assert_string_equal(alias_entry(lookup_table, 3, NULL), "self@d.test");
	assert_null(alias_entry(lookup_table, 4, &line));
	assert_null(alias_entry(NULL, 0, &line));
	assert_int_equal(alias_count(NULL), 0);
	alias_free(NULL);
}

static void
test_recipients(void **state)
{
	static const char text[] = "alice@d.test\nBob@D.test\n";
	struct alias_table *t;
	char err[128];
	size_t n = 99;

	(void)state;
	t = alias_parse(ALIAS_KIND_RECIPIENTS, "r", text, sizeof(text) - 1, err,
	    sizeof(err));
	assert_non_null(t);
	assert_int_equal(alias_lookup(t, "ALICE@d.test", NULL, &n), 1);
	assert_int_equal(n, 0);
	assert_int_equal(alias_lookup(t, "bob@d.test", NULL, NULL), 1);
	assert_int_equal(alias_lookup(t, "carol@d.test", NULL, NULL), 0);
	alias_free(t);
}

static char *
write_file(const char *name, const char *text, size_t n)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	if (n > 0)
		assert_int_equal(fwrite(text, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	return path;
}

static void
test_load(void **state)
{
	struct alias_table *t;
	char err[256], want[256], *path, *big;

	(void)state;
	path = write_file("aliases", lookup_text, sizeof(lookup_text) - 1);
	t = alias_load(ALIAS_KIND_ALIASES, path, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(alias_count(t), 4);
	alias_free(t);

	path = write_file("bad", "x@d.test: y@e.test\nzzz\n", 23);
	assert_null(alias_load(ALIAS_KIND_ALIASES, path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:2: missing ':' after the alias", path);
	assert_string_equal(err, want);

	snprintf(want, sizeof(want), "%s/missing: No such file or directory",
	    tmpdir);
	snprintf(err, sizeof(err), "%s/missing", tmpdir);
	path = strdup(err);
	assert_null(alias_load(ALIAS_KIND_ALIASES, path, err, sizeof(err)));
	assert_string_equal(err, want);
	free(path);

	assert_null(
	    alias_load(ALIAS_KIND_RECIPIENTS, tmpdir, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: not a regular file", tmpdir);
	assert_string_equal(err, want);

	big = calloc(1, ALIAS_FILE_MAX + 1);
	assert_non_null(big);
	memset(big, '\n', ALIAS_FILE_MAX + 1);
	path = write_file("big", big, ALIAS_FILE_MAX + 1);
	assert_null(alias_load(ALIAS_KIND_ALIASES, path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: larger than %d bytes", path,
	    ALIAS_FILE_MAX);
	assert_string_equal(err, want);
	/* Exactly the maximum is fine. */
	path = write_file("max", big, ALIAS_FILE_MAX);
	t = alias_load(ALIAS_KIND_ALIASES, path, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(alias_count(t), 0);
	alias_free(t);
	free(big);

	/* Unreadable (skipped as root, which reads anything). */
	if (geteuid() != 0) {
		path = write_file("noperm", "a@b: c@d\n", 9);
		assert_int_equal(chmod(path, 0), 0);
		assert_null(
		    alias_load(ALIAS_KIND_ALIASES, path, err, sizeof(err)));
		assert_non_null(strstr(err, "Permission denied"));
	}
}

static void
cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_alias: cannot remove %s\n", tmpdir);
}

int
main(void)
{
	const struct CMUnitTest once[] = {
		cmocka_unit_test(test_parse_nul),
		cmocka_unit_test(test_parse_line_max),
		cmocka_unit_test(test_parse_targets_max),
		cmocka_unit_test(test_addr_max),
		cmocka_unit_test(test_entries),
		cmocka_unit_test(test_recipients),
		cmocka_unit_test(test_load),
	};
	char err[256];
	int failed = 0;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_alias.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	lookup_table = alias_parse(ALIAS_KIND_ALIASES, "t", lookup_text,
	    sizeof(lookup_text) - 1, err, sizeof(err));
	if (lookup_table == NULL) {
		fprintf(stderr, "test_alias: %s\n", err);
		return 1;
	}
	failed += TABLE_RUN("alias_parse", test_parse, parse_cases, parse_name);
	failed +=
	    TABLE_RUN("alias_addr_valid", test_addr, addr_cases, addr_name);
	failed +=
	    TABLE_RUN("alias_lookup", test_lookup, lookup_cases, lookup_name);
	failed += cmocka_run_group_tests_name("alias", once, NULL, NULL);
	alias_free(lookup_table);
	cleanup();
	return failed;
}
