/*
 * workers: a fixed pool of threads for work that must not run on the event
 * loop (DEVELOPERS.md: "Nothing on the event loop may block on disk, a
 * database, or a slow hash"): Maildir writes, journal body reads, store
 * reads, crypt(3).
 *
 * A job is submitted from the loop thread; run(ctx, job_arg) executes on one
 * of the pool's threads with that thread's own context (made by init when
 * the thread starts: a store handle, say); done(job_arg, status) then runs
 * on the loop thread.  status is WORKERS_DONE when run() returned, or
 * WORKERS_TIMEOUT when the job's deadline passed first: the job's run()
 * may still be executing (a hung database), and when it returns its result
 * is discarded by calling abandon(job_arg) on the worker thread, never
 * done() again.  So a caller never waits longer than the deadline, and
 * whatever a late job owns is still freed exactly once.
 *
 * Jobs start in submission order; with one thread they also finish in it.
 * The queue of waiting jobs is bounded (WORKERS_QUEUE_MAX): past it,
 * workers_submit() fails with EAGAIN and the caller answers "try later".
 *
 * Threads: workers_new(), workers_submit(), workers_cancel() and
 * workers_free() are called on the loop thread only.
 */
#ifndef MSGTRK_WORKERS_H
#define MSGTRK_WORKERS_H

#include <stddef.h>

struct event_base;
struct workers;
struct workers_job;

/* Jobs waiting for a thread, beyond those running. */
#define WORKERS_QUEUE_MAX 65536
#define WORKERS_THREADS_MAX 64

enum workers_status {
	WORKERS_DONE = 0, /* run() returned */
	WORKERS_TIMEOUT, /* the deadline passed first */
	WORKERS_STOPPED, /* workers_free() with the job still waiting */
};

struct workers_ops {
	/* Per thread, on that thread, before its first job: returns the
	 * context passed to every run() there (NULL is a valid context).
	 * Sets *ok_out to 0 on failure: the thread then runs no job and
	 * every job it would have taken goes to the others (if all fail,
	 * jobs wait until their deadline).  May be NULL. */
	void *(*init)(void *pool_arg, unsigned int index, int *ok_out);
	/* On the thread, when it stops.  May be NULL. */
	void (*fini)(void *pool_arg, void *ctx);
};

/* Starts nthreads (1..WORKERS_THREADS_MAX) threads, named name (its first
 * 15 characters, for top -H and gdb).  Returns NULL with err set. */
struct workers *workers_new(struct event_base *base, const char *name,
    unsigned int nthreads, const struct workers_ops *ops, void *pool_arg,
    char *err, size_t errsize);

/*
 * Submits a job.  run() runs on a worker thread; done() on the loop thread
 * exactly once, unless the job is cancelled first.  Who owns arg:
 *   - done(arg, WORKERS_DONE) or done(arg, WORKERS_STOPPED): the caller
 *     again (run() has returned, or never ran).
 *   - done(arg, WORKERS_TIMEOUT): still the pool.  abandon(arg) follows
 *     exactly once: at once on the loop thread for a job that had not
 *     started, or on the worker thread when run() returns.  abandon frees
 *     what run() produced and arg itself; it must not touch loop-thread
 *     state.
 *   - workers_cancel(): likewise abandon(arg), never done().
 * abandon may be NULL when arg needs no freeing.  deadline_ms 0: none.
 * Returns the job handle (valid until done() or workers_cancel()), or NULL
 * with errno set (EAGAIN: the queue is full; ENOMEM; ESHUTDOWN).
 */
struct workers_job *workers_submit(struct workers *w,
    void (*run)(void *ctx, void *arg),
    void (*done)(void *arg, enum workers_status status),
    void (*abandon)(void *arg), void *arg, unsigned int deadline_ms);

/*
 * Withdraws a job whose done() has not run: done() is never called.  A job
 * not running is dropped (abandon() on the loop thread, now); a running one
 * finishes on its thread and abandon() is called there.
 */
void workers_cancel(struct workers_job *job);

/* Jobs submitted and not yet done or cancelled. */
size_t workers_pending(const struct workers *w);

/*
 * Stops the pool: waiting jobs get done(WORKERS_STOPPED) (on the calling
 * thread, the loop's), running jobs finish (their done() runs here too,
 * with their status), then the threads are joined.  A thread stuck in
 * run() (a hung database) is waited for: bound such calls client-side.
 * Accepts NULL.
 */
void workers_free(struct workers *w);

#endif /* MSGTRK_WORKERS_H */
