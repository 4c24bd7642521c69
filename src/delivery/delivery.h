/*
 * delivery: what happens to a message after the 250.  For each recipient
 * of each queued message: local delivery (aliases, Maildir or LMTP) or
 * relay (routes, MX, SMTP client with PIPELINING and opportunistic
 * STARTTLS), the MTRK/DSN decisions of RFC 3885 §3.3 and RFC 3461 §5.2 for
 * the next hop, retries per retry_schedule until queue_lifetime, and DSNs
 * (RFC 3464) as new messages in the queue.  Every outcome is made durable
 * with queue_update()/queue_finish() before it counts.
 *
 * Uses from struct msgtrkd: conf, base, queue, route, tls_client,
 * stopping.
 */
#ifndef MSGTRK_DELIVERY_H
#define MSGTRK_DELIVERY_H

#include <stddef.h>

struct msgtrkd;
struct delivery;
struct queue_msg;
struct event;

/* Concurrency bounds (outbound connections overall and per next hop). */
#define DELIVERY_CONN_MAX 100
#define DELIVERY_CONN_PER_HOST_MAX 10
/* RFC 5321 §4.5.3.2 client timeouts: initial 220 5 min, MAIL 5 min,
 * RCPT 5 min, DATA 2 min, data block 3 min, final "." 10 min. */
#define DELIVERY_TIMEOUT_GREETING 300
#define DELIVERY_TIMEOUT_CMD 300
#define DELIVERY_TIMEOUT_DATA_INIT 120
#define DELIVERY_TIMEOUT_DATA_BLOCK 180
#define DELIVERY_TIMEOUT_DATA_END 600

/* Loads aliases and local_recipients (file:line errors in err).  Returns
 * NULL with err set. */
struct delivery *delivery_new(struct msgtrkd *d, char *err, size_t errsize);

/* Takes charge of a message the queue holds (just accepted, or recovered
 * at startup): schedules its next attempt at m->next_attempt (now or
 * later). */
void delivery_schedule(struct delivery *dl, struct queue_msg *m);

/* SIGHUP: reload aliases and local_recipients.  Returns 0, or -1 with err
 * set (the old tables stay). */
int delivery_reload(struct delivery *dl, char *err, size_t errsize);

/* Returns 1 if addr (local@domain, any case in the domain) may be given
 * to RCPT for a local domain: local_recipients unset, or listed, or an
 * alias.  The SMTP server answers 550 5.1.1 otherwise. */
int delivery_local_known(struct delivery *dl, const char *addr);

/* SIGTERM: starts no new attempt; attempts in flight are abandoned
 * (their recipients stay queued, with no state change).  Returns the
 * number of connections still open. */
size_t delivery_stop(struct delivery *dl);

void delivery_free(struct delivery *dl);

/*
 * Internal to src/delivery (delivery.c, relay.c, local.c, bounce.c):
 * one delivery attempt for a group of a message's recipients that share
 * a next hop (a remote domain, or the local transport).
 */
#include <stdint.h>

#include "store/store.h"

/* Reply text kept per recipient (RFC 5321 §4.5.3.1.5: a reply line is at
 * most 512 octets). */
#define DELIVERY_REPLY_MAX 512
/* Recipients of one attempt: the queue's limit. */
#define DELIVERY_RCPT_MAX 10000

struct delivery_rcpt {
	uint32_t idx; /* in m->rcpts */
	const char *addr; /* where it goes: the RCPT, or its one alias
			     target; valid during the attempt */
	int code; /* the reply; 0: not answered (connection problem) */
	char status[STORE_STATUS_MAX + 1]; /* enhanced code, or "" */
	char reply[DELIVERY_REPLY_MAX]; /* printable, capped */
	enum store_action action; /* for a 2xx: what it means */
	int dsn_passed; /* a DSN hop took over the DSN duties */
};

struct delivery_job {
	struct delivery *dl;
	struct queue_msg *m;
	void *owner; /* delivery.c's per-message state */
	int local; /* 1: local transport; 0: relay to domain */
	char domain[256];
	size_t nr;
	struct delivery_rcpt *r;
	/* Set by the transport: "dns; host" of the hop used, or "". */
	char remote_mta[300];
	/* Why no reply came (connection problems): becomes the reply. */
	char error[256];
	int aborted; /* delivery_stop: leave the recipients unchanged */
	void *priv; /* the transport's state */
	struct delivery_job *next; /* delivery.c's list */
};

/* delivery.c: the shared context; a transport ends every job it started
 * with delivery_job_done() exactly once, on the loop thread. */
struct msgtrkd *delivery_daemon(struct delivery *dl);
void delivery_job_done(struct delivery_job *j);
/* Connection slots: 0 and counted, or -1 (DELIVERY_CONN_MAX or
 * DELIVERY_CONN_PER_HOST_MAX reached for host). */
int delivery_conn_get(struct delivery *dl, const char *host);
/* Gives a slot back; the first waiter (FIFO) that may use it gets it. */
void delivery_conn_put(struct delivery *dl, const char *host);

/* A wait for a connection slot (the caller's storage, zeroed before its
 * first use; idle again after its callback or delivery_conn_cancel()). */
struct delivery_waiter {
	struct delivery *dl;
	char host[300];
	void (*cb)(void *);
	void *arg;
	struct event *ev; /* delivers the grant from the loop */
	int state; /* DELIVERY_WAIT_* */
	struct delivery_waiter *next; /* delivery.c's FIFO */
};
#define DELIVERY_WAIT_IDLE 0
#define DELIVERY_WAIT_QUEUED 1
#define DELIVERY_WAIT_GRANTED 2 /* slot held, callback pending */

/* After delivery_conn_get() failed: queues w until a slot for host is
 * free.  cb(arg) then runs from the event loop (never from inside the
 * caller) holding the slot, which the caller gives back with
 * delivery_conn_put() as usual.  Returns 0, or -1 (out of memory:
 * nothing queued). */
int delivery_conn_wait(struct delivery *dl, struct delivery_waiter *w,
    const char *host, void (*cb)(void *), void *arg);
/* Withdraws w (queued, or granted and not yet called back: the slot
 * goes back).  No-op on an idle waiter. */
void delivery_conn_cancel(struct delivery_waiter *w);
/* Hands the slot of a connection to host, which the caller holds and no
 * longer needs, to the first queued waiter for host that match(w, ctx)
 * accepts: unlinks it (idle again, its callback never called) and
 * returns its arg, for the caller to resume with the connection itself.
 * Returns NULL if none: the caller keeps the slot.  Counts are
 * unchanged either way. */
void *delivery_conn_pass(struct delivery *dl, const char *host,
    int (*match)(const struct delivery_waiter *w, void *ctx), void *ctx);
/* relay.c's cache of idle outbound sessions (one per delivery). */
struct relay_cache;
struct relay_cache **delivery_relay_cache(struct delivery *dl);
/* Closes every idle cached session, giving back its slot, and caches
 * none after (delivery_stop); relay_cache_free() also frees the cache. */
void relay_cache_flush(struct delivery *dl);
void relay_cache_free(struct delivery *dl);
/* Sets r's reply from a code, status and text (printable, capped). */
void delivery_rcpt_set(struct delivery_rcpt *r, int code, const char *status,
    const char *text, size_t n);

/* relay.c: relays j to j->domain (route_lookup, SMTP), or speaks LMTP to
 * the numeric address host:port (local.c).  Returns 0 (the job ends with
 * delivery_job_done()) or -1 (nothing started, j->error set). */
int relay_start(struct delivery_job *j);
int relay_start_lmtp(struct delivery_job *j, const char *host, uint16_t port);
/* Closes j's connection now (j->aborted set) and ends the job. */
void relay_abort(struct delivery_job *j);

/* local.c: Maildir (on a worker thread) or LMTP per local_transport.
 * Returns 0 or -1 as relay_start(). */
int local_start(struct delivery_job *j);
/* Ends j at once if its transport can be stopped (LMTP); a Maildir
 * write in progress finishes first.  Returns 1 if j is still running. */
int local_abort(struct delivery_job *j);
/* Waits for the worker threads still running (delivery_free). */
void local_join(struct delivery_job *j);

/* bounce.c: builds the DSN (RFC 3464) about recipients idx[0..n-1] of m,
 * all with the given action (failed, delayed, delivered, relayed,
 * expanded), and queues it from <> to m->sender.  Returns 0, or -1
 * (logged). */
int bounce_send(struct delivery *dl, struct queue_msg *m, const uint32_t *idx,
    size_t n, enum store_action action);

#endif /* MSGTRK_DELIVERY_H */
