/*
 * sql_sqlite: the SQLite 3 driver of the tracking store (store_sql.h):
 * one file <data_dir>/tracking.db in WAL mode.  The SQL is store_sql.c's.
 *
 * Files.  tracking.db is created here, mode 0600 whatever the umask, so
 * SQLite, which gives tracking.db-wal and -shm the mode (and, when run as
 * root, the owner) of the database file, makes those 0600 too; a file
 * an older version left with a wider mode is narrowed at open.  Read-only
 * (STORE_OPEN_READONLY) opens with SQLITE_OPEN_READONLY and never
 * creates the file: a missing one is "no tracking store at PATH".  (A
 * read-only connection may still create -wal and -shm when the daemon is
 * not running: msgtrk log opens the store as data_dir's owner for that.)
 *
 * Durability.  The queue journal is the source of truth (store.h), so
 * commits run with synchronous=NORMAL: in WAL mode a commit then only
 * appends to the WAL, without fsync.  sync() runs a FULL checkpoint.  In
 * WAL mode with synchronous=NORMAL "the WAL file is synchronized before
 * each checkpoint and the database file is synchronized after each
 * completed checkpoint" (sqlite.org/pragma.html#pragma_synchronous), so
 * once a checkpoint has copied back every frame of the WAL, everything
 * committed so far is in tracking.db and fsync'd; FULL waits (busy
 * timeout) for the writer and for readers on older snapshots, and sync()
 * fails unless the checkpoint completed.  The directory is fsync'd once
 * per handle too, for the file's own entry.
 *
 * Threads.  One handle per thread (store.h), so connections are opened
 * with SQLITE_OPEN_NOMUTEX; WAL lets reader handles run while the writer
 * commits, and busy_timeout covers the short exclusive steps
 * (checkpoints, purge chunks, schema work).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "msgtrk/str.h"
#include "store/store.h"
#include "store/store_sql.h"

#define SQ_FILE "tracking.db"
/* The mode of tracking.db, and so of -wal and -shm. */
#define SQ_MODE 0600
/* How long a handle waits for a lock held by another handle: purge
 * chunks and checkpoints hold it for milliseconds. */
#define SQ_BUSY_MS 10000
/* Page cache per handle, in KiB (negative cache_size means KiB). */
#define SQ_CACHE_KIB 16384
/* Bytes of the file read through a memory map rather than read(2)
 * (SQLite's mmap_size): a TRACK's page reads then cost no system call.
 * Writes still go through write(2), so a full disk is an error, not a
 * signal. */
#define SQ_MMAP_BYTES 1073741824
/* Pages of WAL before a commit checkpoints on its own (default 1000).
 * The queue calls sync() regularly, which checkpoints anyway; this bounds
 * the WAL (64 MiB) if it does not, and a larger WAL lets pages dirtied by
 * many batches (random envid index leaves) be copied back once. */
#define SQ_AUTOCHECKPOINT 16384

/* Transaction statements, prepared once (sqlite3_exec parses its SQL on
 * every call). */
enum { SQ_TX_BEGIN, SQ_TX_COMMIT, SQ_TX_ROLLBACK, SQ_TX_COUNT };

struct sql_conn {
	sqlite3 *db;
	sqlite3_stmt *tx[SQ_TX_COUNT];
	int flags;
	int dir_synced;
	char dir[PATH_MAX];
	char path[PATH_MAX];
	char err[SQL_ERR_MAX];
};

/* Parameter indexes a statement keeps, by the address of the name
 * store_sql.c binds (its string literals): sqlite3_bind_parameter_index
 * compares the name with every parameter's on every bind. */
#define SQ_PARAMS 24

struct sql_stmt {
	struct sql_conn *c;
	sqlite3_stmt *s;
	size_t nparams;
	struct {
		const char *name;
		int index; /* 0: the statement does not use it */
	} params[SQ_PARAMS];
};

static int sq_errx(struct sql_conn *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static int
sq_errx(struct sql_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return -1;
}

static int
sq_fail(struct sql_conn *c)
{
	return sq_errx(c, "%s", sqlite3_errmsg(c->db));
}

static const char *
sq_error(struct sql_conn *c)
{
	return c->err;
}

static const char *
sq_where(struct sql_conn *c)
{
	return c->path;
}

static int
sq_ready(struct sql_conn *c, int in_tx)
{
	(void)c;
	(void)in_tx;
	return 0;
}

static int
sq_lost(struct sql_conn *c)
{
	(void)c;
	return 0;
}

static struct sql_stmt *
sq_prepare(struct sql_conn *c, const char *sql, int flags)
{
	struct sql_stmt *s;

	(void)flags;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		sq_errx(c, "out of memory");
		return NULL;
	}
	s->c = c;
	if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->s,
	        NULL) != SQLITE_OK) {
		sq_fail(c);
		free(s);
		return NULL;
	}
	return s;
}

static void
sq_finalize(struct sql_stmt *s)
{
	if (s == NULL)
		return;
	sqlite3_finalize(s->s);
	free(s);
}

/* The index of parameter name in s (0 if s does not use it). */
static int
sq_param(struct sql_stmt *s, const char *name)
{
	size_t k;
	int i;

	for (k = 0; k < s->nparams; k++)
		if (s->params[k].name == name)
			return s->params[k].index;
	i = sqlite3_bind_parameter_index(s->s, name);
	if (s->nparams < SQ_PARAMS) {
		s->params[s->nparams].name = name;
		s->params[s->nparams].index = i;
		s->nparams++;
	}
	return i;
}

static int
sq_bind_text(struct sql_stmt *s, const char *name, const char *v)
{
	int i = sq_param(s, name), rc;

	if (i == 0)
		return 0;
	rc = v == NULL ? sqlite3_bind_null(s->s, i)
	               : sqlite3_bind_text(s->s, i, v, -1, SQLITE_STATIC);
	return rc == SQLITE_OK ? 0 : sq_fail(s->c);
}

static int
sq_bind_int(struct sql_stmt *s, const char *name, int64_t v)
{
	int i = sq_param(s, name);

	if (i == 0)
		return 0;
	return sqlite3_bind_int64(s->s, i, (sqlite3_int64)v) == SQLITE_OK
	    ? 0
	    : sq_fail(s->c);
}

static int
sq_step(struct sql_stmt *s)
{
	switch (sqlite3_step(s->s)) {
	case SQLITE_ROW:
		return SQL_ROW;
	case SQLITE_DONE:
		return SQL_DONE;
	default:
		sq_fail(s->c);
		return SQL_ERROR;
	}
}

static void
sq_reset(struct sql_stmt *s)
{
	sqlite3_reset(s->s);
	sqlite3_clear_bindings(s->s);
}

static int
sq_column_null(struct sql_stmt *s, int col)
{
	return sqlite3_column_type(s->s, col) == SQLITE_NULL;
}

static int64_t
sq_column_int(struct sql_stmt *s, int col)
{
	return (int64_t)sqlite3_column_int64(s->s, col);
}

static const char *
sq_column_text(struct sql_stmt *s, int col, size_t *len)
{
	const unsigned char *v;

	*len = 0;
	if (sqlite3_column_type(s->s, col) == SQLITE_NULL)
		return NULL;
	/* text first, then its length (sqlite.org/c3ref/column_blob.html) */
	if ((v = sqlite3_column_text(s->s, col)) == NULL)
		return NULL;
	*len = (size_t)sqlite3_column_bytes(s->s, col);
	return (const char *)v;
}

static uint64_t
sq_changes(struct sql_stmt *s)
{
	return (uint64_t)sqlite3_changes(s->c->db);
}

/* Runs transaction statement which, prepared on first use. */
static int
sq_tx(struct sql_conn *c, int which)
{
	static const char *const sql[SQ_TX_COUNT] = {
		[SQ_TX_BEGIN] = "BEGIN IMMEDIATE",
		[SQ_TX_COMMIT] = "COMMIT",
		[SQ_TX_ROLLBACK] = "ROLLBACK",
	};
	int rc;

	if (c->tx[which] == NULL &&
	    sqlite3_prepare_v3(c->db, sql[which], -1, SQLITE_PREPARE_PERSISTENT,
	        &c->tx[which], NULL) != SQLITE_OK)
		return sq_fail(c);
	rc = sqlite3_step(c->tx[which]);
	if (rc != SQLITE_DONE) {
		/* reset() returns the error, and the message stays for
		 * sqlite3_errmsg() until the next call. */
		sqlite3_reset(c->tx[which]);
		return sq_fail(c);
	}
	sqlite3_reset(c->tx[which]);
	return 0;
}

static int
sq_begin(struct sql_conn *c)
{
	return sq_tx(c, SQ_TX_BEGIN);
}

static int
sq_commit(struct sql_conn *c)
{
	return sq_tx(c, SQ_TX_COMMIT);
}

static int
sq_rollback(struct sql_conn *c)
{
	/* A failed COMMIT (SQLITE_FULL, SQLITE_IOERR) may already have
	 * rolled back: nothing left to undo is not an error. */
	if (sqlite3_get_autocommit(c->db))
		return 0;
	return sq_tx(c, SQ_TX_ROLLBACK);
}

static int
sq_sync_dir(struct sql_conn *c)
{
	int fd;

	if ((fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return sq_errx(c, "%s: %s", c->dir, strerror(errno));
	if (fsync(fd) == -1) {
		sq_errx(c, "fsync %s: %s", c->dir, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int
sq_sync(struct sql_conn *c)
{
	int nlog = 0, nckpt = 0;

	if (sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_FULL,
	        &nlog, &nckpt) != SQLITE_OK)
		return sq_errx(c, "checkpoint: %s", sqlite3_errmsg(c->db));
	if (nlog < 0 || nckpt != nlog)
		return sq_errx(
		    c, "checkpoint copied %d of %d WAL frames", nckpt, nlog);
	if (!c->dir_synced) {
		if (sq_sync_dir(c) == -1)
			return -1;
		c->dir_synced = 1;
	}
	return 0;
}

static void
sq_close(struct sql_conn *c)
{
	int i;

	if (c == NULL)
		return;
	for (i = 0; i < SQ_TX_COUNT; i++)
		sqlite3_finalize(c->tx[i]);
	sqlite3_close(c->db);
	free(c);
}

/* Runs one statement that may return one row; its first column's text
 * goes into txt. */
static int
sq_pragma(struct sql_conn *c, const char *sql, char *txt, size_t txtsize)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(c->db, sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (txt != NULL && sqlite3_column_text(s, 0) != NULL)
			str_copy(txt, (const char *)sqlite3_column_text(s, 0),
			    txtsize);
		rc = sqlite3_step(s);
	}
	/* finalize keeps the error message for sqlite3_errmsg() */
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* "path: message (errno text)" for a failure of SQLite on the file. */
static void
sq_open_err(struct sql_conn *c, char *err, size_t errsize)
{
	int e = c->db != NULL ? sqlite3_system_errno(c->db) : ENOMEM;

	snprintf(err, errsize, "%s: %s%s%s%s", c->path,
	    c->db != NULL ? sqlite3_errmsg(c->db) : "out of memory",
	    e != 0 ? " (" : "", e != 0 ? strerror(e) : "", e != 0 ? ")" : "");
}

/* Narrows a file of ours that an older version (or the umask) left
 * readable by others to SQ_MODE.  A missing file is fine. */
static int
sq_narrow(const char *path, char *err, size_t errsize)
{
	struct stat sb;

	if (lstat(path, &sb) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_uid != geteuid() ||
	    (sb.st_mode & 07777) == SQ_MODE)
		return 0;
	if (chmod(path, SQ_MODE) == -1) {
		snprintf(err, errsize, "%s: chmod: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
is_symlink(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode);
}

/* Creates tracking.db (mode SQ_MODE whatever the umask) if it does not
 * exist, and narrows it, -wal and -shm if they do. */
static int
sq_make_file(struct sql_conn *c, char *err, size_t errsize)
{
	static const char *const sfx[] = { "-wal", "-shm" };
	char p[PATH_MAX + 8];
	size_t i;
	int fd;

	fd = open(c->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    SQ_MODE);
	if (fd >= 0) {
		if (fchmod(fd, SQ_MODE) == -1) {
			snprintf(err, errsize, "%s: chmod: %s", c->path,
			    strerror(errno));
			close(fd);
			return -1;
		}
		close(fd);
	} else if (errno != EEXIST) {
		snprintf(err, errsize, "%s: %s", c->path, strerror(errno));
		return -1;
	} else if (is_symlink(c->path)) {
		/* An operator's link (the store on another file system):
		 * its target is made if missing, with the same mode. */
		if ((fd = open(c->path, O_RDWR | O_CREAT | O_CLOEXEC,
		         SQ_MODE)) == -1) {
			snprintf(
			    err, errsize, "%s: %s", c->path, strerror(errno));
			return -1;
		}
		close(fd);
	} else if (sq_narrow(c->path, err, errsize) == -1)
		return -1;
	for (i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s%s", c->path, sfx[i]);
		if (sq_narrow(p, err, errsize) == -1)
			return -1;
	}
	return 0;
}

/* Turns a new file to WAL mode (the daemon), or checks it is (readers). */
static int
sq_wal(struct sql_conn *c, char *err, size_t errsize)
{
	char mode[16] = "";
	size_t i;
	int rc;

	if (c->flags & STORE_OPEN_READONLY) {
		if (sq_pragma(c, "PRAGMA journal_mode", mode, sizeof(mode)) ==
		    -1) {
			sq_open_err(c, err, errsize);
			return -1;
		}
		return 0;
	}
	/* journal_mode is the first statement to read the file: a garbage
	 * file fails here with "file is not a database".  Two handles
	 * turning a new file to WAL at once can get SQLITE_BUSY without the
	 * busy handler being called (SQLite avoids a deadlock that way):
	 * retry, bounded by SQ_BUSY_MS (only at open). */
	for (i = 0; (rc = sq_pragma(c, "PRAGMA journal_mode = WAL", mode,
	                 sizeof(mode))) == -1 &&
	     (sqlite3_errcode(c->db) & 0xff) == SQLITE_BUSY &&
	     i < SQ_BUSY_MS / 10;
	     i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	if (rc == -1) {
		sq_open_err(c, err, errsize);
		return -1;
	}
	if (strcmp(mode, "wal") != 0) {
		snprintf(err, errsize, "%s: cannot use WAL mode (got \"%s\")",
		    c->path, mode);
		return -1;
	}
	return 0;
}

static struct sql_conn *
sq_open(
    const char *uri, const char *data_dir, int flags, char *err, size_t errsize)
{
	char pragmas[256];
	struct sql_conn *c = NULL;
	struct stat sb;
	int n, ro = (flags & STORE_OPEN_READONLY) != 0;

	if (uri == NULL || strcmp(uri, "sqlite") != 0) {
		snprintf(err, errsize, "sqlite: unsupported store \"%.100s\"",
		    uri != NULL ? uri : "");
		return NULL;
	}
	if (data_dir == NULL || data_dir[0] == '\0') {
		snprintf(err, errsize, "sqlite: no data_dir");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errsize, "sqlite: out of memory");
		return NULL;
	}
	c->flags = flags;
	n = snprintf(c->path, sizeof(c->path), "%s/%s", data_dir, SQ_FILE);
	if (n < 0 || (size_t)n >= sizeof(c->path)) {
		snprintf(err, errsize, "sqlite: data_dir path too long");
		goto fail;
	}
	str_copy(c->dir, data_dir, sizeof(c->dir));
	/* SQLite says only "unable to open database file": say why. */
	if (stat(data_dir, &sb) == -1) {
		snprintf(err, errsize, "%s: %s", data_dir, strerror(errno));
		goto fail;
	}
	if (!S_ISDIR(sb.st_mode)) {
		snprintf(err, errsize, "%s: not a directory", data_dir);
		goto fail;
	}
	if (ro) {
		if (stat(c->path, &sb) == -1) {
			if (errno == ENOENT)
				snprintf(err, errsize,
				    "no tracking store at %s", c->path);
			else
				snprintf(err, errsize, "%s: %s", c->path,
				    strerror(errno));
			goto fail;
		}
	} else {
		/* WAL mode creates tracking.db-wal and -shm next to the
		 * file, so the directory must be writable even when the file
		 * exists. */
		if (faccessat(AT_FDCWD, data_dir, W_OK | X_OK, AT_EACCESS) ==
		    -1) {
			snprintf(err, errsize, "%s: directory not writable: %s",
			    data_dir, strerror(errno));
			goto fail;
		}
		if (sq_make_file(c, err, errsize) == -1)
			goto fail;
	}
	if (sqlite3_open_v2(c->path, &c->db,
	        (ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
	            SQLITE_OPEN_NOMUTEX,
	        NULL) != SQLITE_OK) {
		sq_open_err(c, err, errsize);
		goto fail;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, SQ_BUSY_MS);
	if (sq_wal(c, err, errsize) == -1)
		goto fail;
	if (ro)
		snprintf(pragmas, sizeof(pragmas), "PRAGMA query_only = 1;");
	else
		snprintf(pragmas, sizeof(pragmas),
		    "PRAGMA synchronous = NORMAL;"
		    " PRAGMA wal_autocheckpoint = %d;",
		    SQ_AUTOCHECKPOINT);
	n = (int)strlen(pragmas);
	snprintf(pragmas + n, sizeof(pragmas) - (size_t)n,
	    " PRAGMA temp_store = MEMORY; PRAGMA mmap_size = %lld;"
	    " PRAGMA cache_size = -%d;",
	    (long long)SQ_MMAP_BYTES, SQ_CACHE_KIB);
	if (sqlite3_exec(c->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(
		    err, errsize, "%s: %s", c->path, sqlite3_errmsg(c->db));
		goto fail;
	}
	return c;
fail:
	sq_close(c);
	return NULL;
}

const struct sql_driver sql_driver_sqlite = {
	.name = "sqlite",
	.dialect = SQL_DIALECT_SQLITE,
	.open = sq_open,
	.close = sq_close,
	.where = sq_where,
	.ready = sq_ready,
	.lost = sq_lost,
	.prepare = sq_prepare,
	.finalize = sq_finalize,
	.bind_text = sq_bind_text,
	.bind_int = sq_bind_int,
	.step = sq_step,
	.reset = sq_reset,
	.column_null = sq_column_null,
	.column_int = sq_column_int,
	.column_text = sq_column_text,
	.changes = sq_changes,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.sync = sq_sync,
	.error = sq_error,
};

static struct store *
sq_store_open(
    const char *uri, const char *data_dir, int flags, char *err, size_t errsize)
{
	return store_sql_open(
	    &sql_driver_sqlite, uri, data_dir, flags, err, errsize);
}

const struct store_backend store_backend_sqlite =
    STORE_SQL_BACKEND("sqlite", sq_store_open);
