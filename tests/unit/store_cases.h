/*
 * store_cases: the behaviour every store backend shares (store.h), as one
 * set of cmocka tables and cases run by each backend's test binary:
 * test_store.c (SQLite, a fresh data_dir per case) and test_store_pg.c
 * (PostgreSQL, a private server, a fresh schema per case).  The SQLite
 * backend is the reference: both must give the same answers and the same
 * error messages.  What only one backend has (files, WAL, a server that
 * goes away, URIs) stays in that backend's file.
 *
 * sc_ names are the helpers those files use for their own cases.
 */
#ifndef MSGTRK_TEST_STORE_CASES_H
#define MSGTRK_TEST_STORE_CASES_H

#include <stddef.h>
#include <time.h>

#include "store/store.h"
#include "table.h"

#define SC_CERT "AAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define SC_NOW ((time_t)1700000000)

/* What a backend's test binary supplies.  Every case starts with empty()
 * and ends with discard(); the raw_ functions work on that store through
 * a connection of their own, and fail the current test on an error. */
struct store_cases {
	const char *name; /* cmocka group of the shared cases */
	const struct store_backend *b;
	/* Makes a fresh, empty store (no schema yet), with no handle. */
	void (*empty)(void);
	/* Opens a handle (flags STORE_OPEN_*) on the store empty() made
	 * last; may be called from several threads at once.  Returns NULL
	 * with a message in err. */
	struct store *(*open)(int flags, char *err, size_t errsize);
	/* Closes st (NULL: none) and removes what empty() made. */
	void (*discard)(struct store *st);
	void (*raw_exec)(const char *sql);
	long long (*raw_int)(const char *sql);
	/* Queries that must each answer 1 once several handles opened an
	 * empty store at the same moment (one schema, version 2). */
	const char *schema_sql[2];
	/* SQL giving message M0 the envid key of OTHER (a hash collision),
	 * or NULL if the backend keys envids exactly. */
	const char *collide_sql;
	/* The two-thread case: messages written, and a sync() after every
	 * sync_every-th batch of 64 (as the queue does before deleting a
	 * journal segment). */
	int mt_msgs;
	int mt_sync_every;
};

/* Runs the shared tables and cases against c's backend.  c must stay
 * valid during the call.  Returns the number of failed cases. */
int store_cases_run(const struct store_cases *c);

/* A lookup failure on a record this code did not write: sql damages
 * message Q1 (envid "e1@x", two recipients), err is a part of the message
 * expected (one starting "search:" is search()'s, and lookup() is not
 * tried).  For a backend's own rows of the "corrupt" table. */
struct sc_corrupt_row {
	const char *name;
	const char *sql;
	const char *err;
};

const char *sc_corrupt_name(const void *row);

/* The cmocka case for one sc_corrupt_row (in *state).  Needs the
 * store_cases of the last store_cases_run(). */
void sc_test_corrupt(void **state);

/* A message with nrcpt (at most 4) recipients; strings point at static
 * text, so mk stays valid as long as its storage. */
struct sc_mk {
	struct store_msg m;
	struct store_rcpt r[4];
};

void sc_mk_msg(
    struct sc_mk *k, const char *qid, const char *envid, size_t nrcpt);

/* put_msg(), failing the current test with the store's error. */
void sc_put(
    const struct store_backend *b, struct store *st, const struct store_msg *m);

/* Fails the current test unless g holds the same values as w. */
void sc_assert_msg_equal(const struct store_msg *g, const struct store_msg *w);

/* Bulk figures, printed by the caller, never asserted. */

/* Seconds on the monotonic clock. */
double sc_now(void);

/* Writes nmsgs messages of one recipient with realistic sizes (a 12-char
 * queue id, a unique envid of 20 base32 characters at a host, a
 * certifier), in batches of 64 as the queue's writer commits them.  Fails
 * the current test on an error; returns the seconds it took. */
double sc_bulk_put(
    const struct store_backend *b, struct store *st, size_t nmsgs);

/* Looks up nlookups of the envids sc_bulk_put(nmsgs) wrote, each found
 * once, and prints the rate. */
void sc_bulk_lookup(const struct store_backend *b, struct store *st,
    size_t nmsgs, size_t nlookups);

#endif /* MSGTRK_TEST_STORE_CASES_H */
