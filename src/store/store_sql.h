/*
 * store_sql: the tracking store's SQL logic (store_sql.c) over a small
 * driver interface, as Dovecot's lib-sql puts sql-api.c over
 * driver-sqlite.c and driver-pgsql.c.  store_sql.c holds every
 * statement, the upserts, lookup, search, purge, the mark, batches and
 * the schema; a driver (sql_sqlite.c, sql_pg.c) only connects, prepares,
 * binds, steps, runs transactions and reports errors.  Internal to
 * src/store: callers see struct store_backend (store.h).
 *
 * Statements name their parameters (":qid"); binding a name the
 * statement does not use does nothing, so store_sql.c binds the same
 * values for every dialect and each dialect's SQL takes what its schema
 * needs (the SQLite schema keys envids by a hash, PostgreSQL keeps
 * lower-cased search keys).  Results are read by column position.
 */
#ifndef MSGTRK_STORE_SQL_H
#define MSGTRK_STORE_SQL_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Longest driver or store error message, NUL included. */
#define SQL_ERR_MAX 512

/* Which statement texts of store_sql.c a driver runs. */
enum sql_dialect { SQL_DIALECT_SQLITE = 0, SQL_DIALECT_PG, SQL_DIALECTS };

/* step() results. */
enum {
	SQL_ERROR = -1,
	SQL_DONE = 0,
	SQL_ROW = 1,
};

/* prepare() flags. */
enum {
	/* Rows are fetched as step() asks for them (PostgreSQL: single-row
	 * mode), not all at once: for results of unbounded size. */
	SQL_STREAM = 1 << 0,
};

struct sql_conn;
struct sql_stmt;

struct sql_driver {
	const char *name;
	enum sql_dialect dialect;
	/* Connects; flags are the STORE_OPEN_* of store.h.  The SQLite
	 * driver makes <data_dir>/tracking.db (mode 0600) unless
	 * STORE_OPEN_READONLY.  Returns NULL with a message in err. */
	struct sql_conn *(*open)(const char *uri, const char *data_dir,
	    int flags, char *err, size_t errsize);
	/* Frees the connection and every statement prepared on it. */
	void (*close)(struct sql_conn *);
	/* Prefix of the schema errors of open ("/d/tracking.db",
	 * "open: postgresql"). */
	const char *(*where)(struct sql_conn *);
	/* Makes the connection usable before a call: 0, or -1 (error()
	 * says why).  in_tx: a transaction of ours is open, so a lost
	 * connection cannot be restored (it took the transaction);
	 * outside one, the PostgreSQL driver reconnects. */
	int (*ready)(struct sql_conn *, int in_tx);
	/* 1 if the connection was lost (the last call failed for that). */
	int (*lost)(struct sql_conn *);
	/* Prepares one statement (flags SQL_*).  Returns NULL with the
	 * error in error().  A statement lives until finalize() or
	 * close(), across reconnections. */
	struct sql_stmt *(*prepare)(
	    struct sql_conn *, const char *sql, int flags);
	void (*finalize)(struct sql_stmt *);
	/* Binds parameter name (":qid"); NULL binds SQL NULL.  The string
	 * is used in place until reset().  A name the statement does not
	 * use is ignored.  name is a string literal: a driver may know it
	 * again by its address (sql_sqlite.c does).  Returns 0 or -1. */
	int (*bind_text)(struct sql_stmt *, const char *name, const char *v);
	int (*bind_int)(struct sql_stmt *, const char *name, int64_t v);
	/* Runs the statement or fetches its next row: SQL_ROW, SQL_DONE
	 * or SQL_ERROR. */
	int (*step)(struct sql_stmt *);
	/* Ends the statement's run (reading what is left of its result)
	 * and clears its bindings. */
	void (*reset)(struct sql_stmt *);
	/* Columns of the current row, from 0. */
	int (*column_null)(struct sql_stmt *, int col);
	int64_t (*column_int)(struct sql_stmt *, int col);
	/* The column's bytes, NUL-terminated, *len of them before that
	 * NUL (which may not be the first NUL); NULL for SQL NULL.  Valid
	 * until the next step() or reset(). */
	const char *(*column_text)(struct sql_stmt *, int col, size_t *len);
	/* Rows changed by the statement that last returned SQL_DONE. */
	uint64_t (*changes)(struct sql_stmt *);
	/* Transactions.  begin() takes the write lock at once (SQLite:
	 * BEGIN IMMEDIATE); rollback() with no transaction open is 0. */
	int (*begin)(struct sql_conn *);
	int (*commit)(struct sql_conn *);
	int (*rollback)(struct sql_conn *);
	/* store_backend.sync() outside a transaction. */
	int (*sync)(struct sql_conn *);
	/* The last error, without the operation: "no such table: rcpt",
	 * "postgresql: ...". */
	const char *(*error)(struct sql_conn *);
};

extern const struct sql_driver sql_driver_sqlite;
extern const struct sql_driver sql_driver_pg;

/* The struct store_backend functions of every SQL backend
 * (store_sql.c); a backend's open calls store_sql_open with its
 * driver. */
struct store *store_sql_open(const struct sql_driver *drv, const char *uri,
    const char *data_dir, int flags, char *err, size_t errsize);
void store_sql_close(struct store *);
int store_sql_begin(struct store *);
int store_sql_commit(struct store *);
int store_sql_rollback(struct store *);
int store_sql_put_msg(struct store *, const struct store_msg *);
int store_sql_put_rcpt(struct store *, const char *, const struct store_rcpt *);
int store_sql_set_done(struct store *, const char *);
int store_sql_set_mark(struct store *, const struct store_mark *);
int store_sql_get_mark(struct store *, struct store_mark *);
int store_sql_lookup(
    struct store *, const char *, const char *, struct store_msg **, size_t *);
int store_sql_purge(struct store *, time_t, size_t *);
int store_sql_search(struct store *, const struct store_query *,
    int (*)(void *, const struct store_msg *, const struct store_rcpt *),
    void *);
int store_sql_list_sent(
    struct store *, const char *, size_t, struct store_msg **, size_t *);
int store_sql_sync(struct store *);
const char *store_sql_error(struct store *);

/* A struct store_backend initializer for a backend named name whose
 * open is open_fn. */
#define STORE_SQL_BACKEND(bname, open_fn) \
	{ \
		.name = (bname), .open = (open_fn), .close = store_sql_close, \
		.begin = store_sql_begin, .commit = store_sql_commit, \
		.rollback = store_sql_rollback, .put_msg = store_sql_put_msg, \
		.put_rcpt = store_sql_put_rcpt, \
		.set_done = store_sql_set_done, \
		.set_mark = store_sql_set_mark, \
		.get_mark = store_sql_get_mark, .lookup = store_sql_lookup, \
		.purge = store_sql_purge, .search = store_sql_search, \
		.list_sent = store_sql_list_sent, .sync = store_sql_sync, \
		.error = store_sql_error, \
	}

#endif /* MSGTRK_STORE_SQL_H */
