/*
 * delivery: what happens to a message after the 250.  For each recipient
 * of each queued message: local delivery (aliases, Maildir or LMTP) or
 * relay (routes, MX, SMTP client with PIPELINING and opportunistic
 * STARTTLS), the MTRK/DSN decisions of RFC 3885 §3.3 and RFC 3461 §5.2 for
 * the next hop, retries per retry_schedule until queue_lifetime, and DSNs
 * (RFC 3464) as new messages in the queue.
 *
 * Delivery never changes a queued message itself: an attempt gathers its
 * outcomes on its own and hands the queue a delta (queue_update), which
 * the queue applies once it is durable.  What must follow an outcome (the
 * DSN a recipient asked for, the copy for an alias's members) is derived
 * from the committed state and made durable before the recipient is
 * marked as done with it, so a failed write can repeat a DSN, never lose
 * one.
 *
 * Inputs (struct delivery_deps): the event base, the configuration, the
 * queue, the route resolver, the outbound TLS context.  Nothing else of
 * the daemon is reached.
 */
#ifndef MSGTRK_DELIVERY_H
#define MSGTRK_DELIVERY_H

#include <stddef.h>

#include <openssl/ssl.h>

struct conf;
struct delivery;
struct event_base;
struct queue;
struct queue_msg;
struct route;

/* Concurrency bounds (outbound connections overall and per next hop). */
#define DELIVERY_CONN_MAX 100
#define DELIVERY_CONN_PER_HOST_MAX 10
/* Maildir writes run on this many threads (each job writes its
 * recipients' files one after the other). */
#define DELIVERY_MAILDIR_THREADS 4

struct delivery_deps {
	struct event_base *base;
	const struct conf *conf;
	struct queue *queue;
	struct route *route;
	SSL_CTX *tls_client; /* outbound STARTTLS; NULL: plaintext only */
};

/* Loads aliases and local_recipients (file:line errors in err).  deps is
 * copied; what it points to must outlive the delivery.  Returns NULL with
 * err set. */
struct delivery *delivery_new(
    const struct delivery_deps *deps, char *err, size_t errsize);

/* Takes charge of a message the queue holds (just accepted, or recovered
 * at startup): schedules its next attempt at m->next_attempt (now or
 * later), or first sends what its committed state still owes (a DSN). */
void delivery_schedule(struct delivery *dl, const struct queue_msg *m);

/* SIGHUP: reload aliases and local_recipients.  Returns 0, or -1 with err
 * set (the old tables stay). */
int delivery_reload(struct delivery *dl, char *err, size_t errsize);

/* Returns 1 if addr (local@domain, any case in the domain) may be given
 * to RCPT for a local domain: local_recipients unset, or listed, or an
 * alias.  The SMTP server answers 550 5.1.1 otherwise. */
int delivery_local_known(struct delivery *dl, const char *addr);

/*
 * Operator controls (msgtrk queue, over the control socket).  qid names a
 * queued message.
 *
 * delivery_flush: the message (or every message, qid NULL) is tried now
 * whatever its retry time; held ones stay held.  Returns the number of
 * messages flushed, or -1 with errno ENOENT (no such message) or EPERM
 * (the message named is held: release it first).
 *
 * delivery_hold (hold 1) / release (hold 0): a held message gets no
 * attempt until released; the hold is durable (it survives a restart).
 * delivery_delete: every recipient not yet final becomes failed, status
 * 5.0.0, "deleted by the operator", with no DSN (none is sent for any
 * recipient), the tracking records say so, and the message leaves the
 * queue.  Both are asynchronous: done(arg, 0, 0) once durable, or
 * done(arg, -1, err).  A change asked while an attempt runs is made
 * when it ends.  Return 0 (done will be called), or -1 with errno ENOENT
 * (no such message) or EBUSY (another change is pending for it).
 */
int delivery_flush(struct delivery *dl, const char *qid);
int delivery_hold(struct delivery *dl, const char *qid, int hold,
    void (*done)(void *arg, int rc, int err), void *arg);
int delivery_delete(struct delivery *dl, const char *qid,
    void (*done)(void *arg, int rc, int err), void *arg);

/* Counters since delivery_new, for /metrics. */
struct delivery_stats {
	uint64_t attempts; /* attempts that reached an outcome */
	uint64_t outcomes[7]; /* by enum store_action */
	uint64_t dsns; /* DSNs queued */
	uint64_t finished; /* messages that left the queue */
};
void delivery_stats(const struct delivery *dl, struct delivery_stats *out);

/* SIGTERM: starts no new attempt; attempts in flight are abandoned
 * (their recipients stay as they were), outcomes already known are made
 * durable.  Returns the number of connections and queue writes still in
 * flight (the caller runs the loop until it reaches 0, bounded). */
size_t delivery_stop(struct delivery *dl);

void delivery_free(struct delivery *dl);

#endif /* MSGTRK_DELIVERY_H */
