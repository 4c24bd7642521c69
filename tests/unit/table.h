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

struct buf;

/* Runs a parser over the n bytes at in, pushed in pieces cut at the
 * offsets cuts[0..ncuts-1] (ascending; none: whole), and writes a
 * transcript of everything it produced to out (cleared first).  ctx is
 * the caller's (a table row). */
typedef void (*table_feed_fn)(const void *ctx, const char *in, size_t n,
    const size_t *cuts, size_t ncuts, struct buf *out);

/* The incremental-parser check of STYLE.md ("whole buffer and one byte at
 * a time"): feeds in whole, one byte at a time, split in two at every
 * offset and, for inputs of at most 80 bytes, in three at every pair of
 * offsets; every transcript must equal want.  Fails the current test
 * naming the first split that differs. */
void table_check_splits(table_feed_fn feed, const void *ctx, const char *in,
    size_t n, const char *want);

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
