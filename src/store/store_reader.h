/*
 * store_reader: tracking store reads off the event loop (DEVELOPERS.md:
 * nothing on the loop may block on a database).  A pool of threads
 * (src/common/workers.h), each with its own store handle, runs lookups
 * and searches; the answer comes back on the loop thread, or
 * STORE_READER_TIMEOUT once the caller's deadline passed, whatever the
 * store is doing (a stopped PostgreSQL server defeats every client-side
 * timeout: store.h).  A late result is freed on its thread.
 *
 * Handles.  Each thread opens its handle (store_backend.open with flags
 * 0: the daemon's own store, only read) when it starts; one that could
 * not be opened, or whose last call failed, is opened afresh for the next
 * job, so a reader comes back with the server (and a handle stuck on a
 * hung server only holds its own thread).
 *
 * Threads: every function here is called on the loop thread.
 */
#ifndef MSGTRK_STORE_READER_H
#define MSGTRK_STORE_READER_H

#include <stddef.h>

#include "store/store.h"

/* The cb rc when the deadline passed first. */
#define STORE_READER_TIMEOUT (-2)
/* Rows a search hands back at most (a query without a limit, or with a
 * larger one, is cut there). */
#define STORE_READER_SEARCH_MAX 10000

struct event_base;
struct store_reader;
struct store_reader_job;

/*
 * The answer, on the loop thread:
 *   rc 1: msgs is an array of n messages, which the callee owns (free with
 *         store_msgs_free).  lookup: as store_backend.lookup; list_sent:
 *         as store_backend.list_sent.  search: one
 *         entry per matching (message, recipient) row, in search() order,
 *         each a message with that one recipient (nrcpt 1).
 *   rc 0: nothing found; rc -1: a store error (err says what; it never
 *         holds a secret or a password); STORE_READER_TIMEOUT: the
 *         deadline passed (err "deadline passed").
 * err is valid during the call only; msgs is NULL unless rc is 1.
 */
typedef void (*store_reader_cb)(
    void *arg, int rc, struct store_msg *msgs, size_t n, const char *err);

/* Starts nthreads (1..WORKERS_THREADS_MAX) readers on be's store at uri
 * and data_dir (both copied).  Returns NULL with err set. */
struct store_reader *store_reader_new(struct event_base *base,
    const struct store_backend *be, const char *uri, const char *data_dir,
    unsigned int nthreads, char *err, size_t errsize);

/* store_backend.lookup(envid, certifier) on a reader thread; cb(arg, ...)
 * on the loop within deadline_ms (0: no deadline).  Returns the job
 * handle, valid until cb runs or store_reader_cancel(), or NULL with errno
 * set (EAGAIN: too many jobs waiting; EINVAL; ENOMEM). */
struct store_reader_job *store_reader_lookup(struct store_reader *r,
    const char *envid, const char *certifier, unsigned int deadline_ms,
    store_reader_cb cb, void *arg);

/* store_backend.search(q) on a reader thread, at most
 * STORE_READER_SEARCH_MAX rows; q is copied.  As store_reader_lookup. */
struct store_reader_job *store_reader_search(struct store_reader *r,
    const struct store_query *q, unsigned int deadline_ms, store_reader_cb cb,
    void *arg);

/* store_backend.list_sent(login, limit) on a reader thread: login's
 * automatically tracked messages, newest first, each with its recipients
 * and login, secret and subject (for the HTTP /sent views).  As
 * store_reader_lookup: cb gets rc 1 with msgs (free with
 * store_msgs_free, which wipes the secrets), 0, -1 or
 * STORE_READER_TIMEOUT. */
struct store_reader_job *store_reader_list_sent(struct store_reader *r,
    const char *login, size_t limit, unsigned int deadline_ms,
    store_reader_cb cb, void *arg);

/* Withdraws a job whose cb has not run (its session went away): cb is
 * never called, and what the job produces is freed. */
void store_reader_cancel(struct store_reader_job *job);

/* Jobs submitted whose cb has not run and that were not cancelled. */
size_t store_reader_pending(const struct store_reader *r);

/* Stops the readers: waiting jobs get cb(-1, "stopped"); a thread stuck
 * in a call is waited for (workers_free()).  Accepts NULL. */
void store_reader_free(struct store_reader *r);

#endif /* MSGTRK_STORE_READER_H */
