/*
 * table: helpers for table-driven cmocka tests.
 *
 * table_run() turns every row of a table into its own cmocka case, so the
 * pass/fail counts printed by cmocka (and summed by tests/run-tests.sh)
 * count cases, not loops.  The test function finds its row in *state.
 */
#ifndef MSGTRK_TEST_TABLE_H
#define MSGTRK_TEST_TABLE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* Runs fn once per row (rows is an array of n elements of rowsize bytes);
 * each case is named "<group> <name(row)>" (name may be NULL: the row's
 * index is used).  Returns the number of failed cases. */
int table_run(const char *group, CMUnitTestFunction fn, const void *rows,
    size_t rowsize, size_t n, const char *(*name)(const void *row));

#define TABLE_RUN(group, fn, rows, name) \
	table_run((group), (fn), (rows), sizeof((rows)[0]), \
	    sizeof(rows) / sizeof((rows)[0]), (name))

/* Compares the len bytes at data with the golden file $GOLDEN_DIR/<rel>.
 * With UPDATE_GOLDEN=1 in the environment the file is (re)written instead,
 * to create or refresh a reference; review the diff before committing.
 * Fails the current test on a difference, printing the first differing
 * offset. */
void golden_check(const char *rel, const void *data, size_t len);

/* Reads $GOLDEN_DIR/<rel> into a malloc'd NUL-terminated buffer (*len_out
 * set); fails the current test if it cannot be read. */
char *golden_read(const char *rel, size_t *len_out);

#endif /* MSGTRK_TEST_TABLE_H */
