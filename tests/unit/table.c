/*
 * table: helpers for table-driven cmocka tests.  See table.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/buf.h"
#include "table.h"

int
table_run(const char *group, CMUnitTestFunction fn, const void *rows,
    size_t rowsize, size_t n, const char *(*name)(const void *row))
{
	struct CMUnitTest *tests;
	char **names;
	size_t i;
	int failed;

	tests = calloc(n ? n : 1, sizeof(*tests));
	names = calloc(n ? n : 1, sizeof(*names));
	if (tests == NULL || names == NULL) {
		fprintf(stderr, "table_run: out of memory\n");
		exit(1);
	}
	for (i = 0; i < n; i++) {
		const void *row = (const char *)rows + i * rowsize;
		const char *rn = name != NULL ? name(row) : NULL;
		int len;

		len = rn != NULL ? snprintf(NULL, 0, "%s %.60s", group, rn)
		                 : snprintf(NULL, 0, "%s #%zu", group, i);
		names[i] = malloc((size_t)len + 1);
		if (names[i] == NULL) {
			fprintf(stderr, "table_run: out of memory\n");
			exit(1);
		}
		if (rn != NULL)
			snprintf(
			    names[i], (size_t)len + 1, "%s %.60s", group, rn);
		else
			snprintf(
			    names[i], (size_t)len + 1, "%s #%zu", group, i);
		/* Keep names on one line: rows may hold CR, LF or bytes
		 * that are not text. */
		for (char *q = names[i]; *q != '\0'; q++)
			if ((unsigned char)*q < 0x20 ||
			    (unsigned char)*q > 0x7e)
				*q = '?';
		tests[i].name = names[i];
		tests[i].test_func = fn;
		tests[i].initial_state = (void *)(uintptr_t)row;
	}
	failed = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(tests);
	return failed;
}

static char *
golden_path(const char *rel)
{
	const char *dir = getenv("GOLDEN_DIR");
	char *p;
	size_t len;

	if (dir == NULL)
		dir = "tests/golden";
	len = strlen(dir) + strlen(rel) + 2;
	if ((p = malloc(len)) == NULL)
		fail_msg("out of memory");
	snprintf(p, len, "%s/%s", dir, rel);
	return p;
}

char *
golden_read(const char *rel, size_t *len_out)
{
	char *path = golden_path(rel), *data = NULL;
	FILE *f;
	long sz = 0;

	if ((f = fopen(path, "rb")) == NULL) {
		fail_msg("golden %s: %s (UPDATE_GOLDEN=1 creates it)", path,
		    strerror(errno));
		return NULL; /* not reached: fail_msg ends the test */
	}
	if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 ||
	    (data = malloc((size_t)sz + 1)) == NULL ||
	    fread(data, 1, (size_t)sz, f) != (size_t)sz)
		fail_msg("golden %s: cannot read", path);
	fclose(f);
	data[sz] = '\0';
	*len_out = (size_t)sz;
	free(path);
	return data;
}

void
golden_check(const char *rel, const void *data, size_t len)
{
	const char *upd = getenv("UPDATE_GOLDEN");
	char *ref;
	size_t rlen, i;

	if (upd != NULL && strcmp(upd, "1") == 0) {
		char *path = golden_path(rel);
		FILE *f = fopen(path, "wb");

		if (f == NULL || fwrite(data, 1, len, f) != len ||
		    fclose(f) != 0)
			fail_msg("golden %s: cannot write", path);
		free(path);
		return;
	}
	ref = golden_read(rel, &rlen);
	for (i = 0; i < len && i < rlen; i++)
		if (((const char *)data)[i] != ref[i])
			break;
	if (i < len || i < rlen) {
		free(ref);
		fail_msg("golden %s differs at offset %zu (got %zu bytes, "
		         "want %zu)",
		    rel, i, len, rlen);
	}
	free(ref);
}

void
table_check_splits(table_feed_fn feed, const void *ctx, const char *in,
    size_t n, const char *want)
{
	struct buf t;
	size_t *cuts, i, j;

	buf_init(&t, 1 << 24);
	feed(ctx, in, n, NULL, 0, &t);
	if (strcmp(buf_cstr(&t), want) != 0)
		fail_msg("whole:\n got: %s\nwant: %s", buf_cstr(&t), want);
	cuts = calloc(n + 2, sizeof(*cuts));
	assert_non_null(cuts);
	for (i = 0; i + 1 < n; i++)
		cuts[i] = i + 1;
	feed(ctx, in, n, cuts, n > 0 ? n - 1 : 0, &t);
	if (strcmp(buf_cstr(&t), want) != 0)
		fail_msg("bytewise:\n got: %s\nwant: %s", buf_cstr(&t), want);
	for (i = 0; i <= n; i++) {
		cuts[0] = i;
		feed(ctx, in, n, cuts, 1, &t);
		if (strcmp(buf_cstr(&t), want) != 0)
			fail_msg("split %zu:\n got: %s\nwant: %s", i,
			    buf_cstr(&t), want);
		for (j = i; n <= 80 && j <= n; j++) {
			cuts[1] = j;
			feed(ctx, in, n, cuts, 2, &t);
			if (strcmp(buf_cstr(&t), want) != 0)
				fail_msg("split %zu,%zu:\n got: %s\nwant: %s",
				    i, j, buf_cstr(&t), want);
		}
	}
	free(cuts);
	buf_reset(&t);
}
