/*
 * delivery_int: what the files of src/delivery share.
 *
 *   delivery.c   the scheduler: attempts, outcomes, the delta to the
 *                queue, DSN and expansion duties, retries
 *   transports   relay.c (SMTP to a domain, and LMTP), local.c (Maildir
 *                on a pool of threads); each behind struct transport
 *   slots.c      outbound connection slots and the wait for one
 *   bounce.c     DSNs as new messages
 *   alias.c      the aliases and local_recipients tables
 *
 * Dependencies point one way: delivery.c uses the transports, bounce and
 * alias; the transports use slots and the shared context (struct
 * delivery_deps) and end their jobs with delivery_job_done().
 */
#ifndef MSGTRK_DELIVERY_INT_H
#define MSGTRK_DELIVERY_INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "delivery/delivery.h"
#include "store/store.h"

struct event;
struct queue_msg;

/* RFC 5321 §4.5.3.2 client timeouts: initial 220 5 min, MAIL 5 min,
 * RCPT 5 min, DATA 2 min, data block 3 min, final "." 10 min. */
#define DELIVERY_TIMEOUT_GREETING 300
#define DELIVERY_TIMEOUT_CMD 300
#define DELIVERY_TIMEOUT_DATA_INIT 120
#define DELIVERY_TIMEOUT_DATA_BLOCK 180
#define DELIVERY_TIMEOUT_DATA_END 600

/* Reply text kept per recipient: the whole reply (reply.h, at most
 * REPLY_TEXT_MAX octets) made printable, whose escapes may grow it. */
#define DELIVERY_REPLY_MAX STORE_TEXT_MAX
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

struct transport;

/* One delivery attempt for a group of a message's recipients that share
 * a next hop (a remote domain, or the local transport). */
struct delivery_job {
	struct delivery *dl;
	const struct queue_msg *m; /* the committed message: read only */
	void *owner; /* delivery.c's per-message state */
	const struct transport *tp;
	char domain[256]; /* relay: the domain */
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

/* A way to deliver: start() begins j and ends it later with
 * delivery_job_done() exactly once, on the loop thread (0), or does
 * nothing and sets j->error (-1).  abort() ends j at once if it can
 * (connections are closed); a job that cannot be stopped (a Maildir write
 * under way) ends when its work does. */
struct transport {
	const char *name;
	int (*start)(struct delivery_job *j);
	void (*abort)(struct delivery_job *j);
};

extern const struct transport transport_relay; /* relay.c: SMTP */
extern const struct transport transport_lmtp; /* relay.c: LMTP */
extern const struct transport transport_maildir; /* local.c */

/* delivery.c */
const struct delivery_deps *delivery_deps(const struct delivery *dl);
void delivery_job_done(struct delivery_job *j);
/* Sets r's reply from a code, status and text (printable, capped). */
void delivery_rcpt_set(struct delivery_rcpt *r, int code, const char *status,
    const char *text, size_t n);
/* The LMTP destination of local_transport ("lmtp:HOST:PORT"). */
const char *delivery_lmtp_host(const struct delivery *dl);
uint16_t delivery_lmtp_port(const struct delivery *dl);
/* The Maildir writers (local.c's pool). */
struct workers *delivery_maildir_pool(struct delivery *dl);

/* slots.c: connection slots, overall (DELIVERY_CONN_MAX) and per next
 * hop (DELIVERY_CONN_PER_HOST_MAX). */
struct slots;
struct slots *slots_new(struct event_base *base);
void slots_free(struct slots *s);
struct slots *delivery_slots(struct delivery *dl);
/* Takes a slot to host: 0, or -1 (a bound reached). */
int slots_get(struct slots *s, const char *host);
/* Gives a slot back; the first waiter (FIFO) that may use it gets it. */
void slots_put(struct slots *s, const char *host);

/* A wait for a connection slot (the caller's storage, zeroed before its
 * first use; idle again after its callback or slots_cancel()). */
struct slots_waiter {
	struct slots *s;
	char host[300];
	void (*cb)(void *);
	void *arg;
	struct event *ev; /* delivers the grant from the loop */
	int state; /* SLOTS_WAIT_* */
	struct slots_waiter *next; /* the FIFO */
};
#define SLOTS_WAIT_IDLE 0
#define SLOTS_WAIT_QUEUED 1
#define SLOTS_WAIT_GRANTED 2 /* slot held, callback pending */

/* After slots_get() failed: queues w until a slot for host is free.
 * cb(arg) then runs from the event loop (never from inside the caller)
 * holding the slot, which the caller gives back with slots_put() as
 * usual.  Returns 0, or -1 (out of memory: nothing queued). */
int slots_wait(struct slots *s, struct slots_waiter *w, const char *host,
    void (*cb)(void *), void *arg);
/* Withdraws w (queued, or granted and not yet called back: the slot
 * goes back).  No-op on an idle waiter. */
void slots_cancel(struct slots_waiter *w);
/* Hands the slot of a connection to host, which the caller holds and no
 * longer needs, to the first queued waiter for host that match(w, ctx)
 * accepts: unlinks it (idle again, its callback never called) and
 * returns its arg, for the caller to resume with the connection itself.
 * Returns NULL if none: the caller keeps the slot.  Counts are unchanged
 * either way. */
void *slots_pass(struct slots *s, const char *host,
    int (*match)(const struct slots_waiter *w, void *ctx), void *ctx);

/* relay_cache.c: idle outbound sessions (one cache per delivery), each
 * holding its connection slot.  Postfix's smtp_connection_cache_time_limit
 * (2 s) and smtp_connection_reuse_time_limit (300 s). */
#define RELAY_CACHE_IDLE 2
#define RELAY_CACHE_LIFE 300
struct bufferevent;
struct relay_idle {
	char slot[300]; /* the hop's host: its slot's key */
	uint16_t port;
	int lmtp, tls;
	unsigned int ext; /* what its EHLO/LHLO advertised */
	time_t born;
	struct bufferevent *bev;
};
struct relay_cache;
struct relay_cache *relay_cache_new(struct slots *slots);
/* Keeps s (its slot held) for RELAY_CACHE_IDLE seconds.  Returns 0, or
 * -1 (the cache is closed, or out of memory: the caller closes it). */
int relay_cache_put(struct relay_cache *c, const struct relay_idle *s);
/* Takes an idle session to (host, port, lmtp) out: 1 with *out filled
 * (the caller now holds its slot), 0 if none. */
int relay_cache_take(struct relay_cache *c, const char *host, uint16_t port,
    int lmtp, struct relay_idle *out);
/* Closes the oldest idle session to another host than host, so that its
 * slot serves a new connection; 1 if there was one. */
int relay_cache_evict(struct relay_cache *c, const char *host);
/* 1 once relay_cache_flush() ran: cache nothing more. */
int relay_cache_closed(const struct relay_cache *c);
/* Closes every idle session, giving back its slot, and caches none
 * after (delivery_stop). */
void relay_cache_flush(struct relay_cache *c);
void relay_cache_free(struct relay_cache *c);
struct relay_cache *delivery_relay_cache(struct delivery *dl);

/* bounce.c: builds the DSN (RFC 3464) about recipients idx[0..n-1] of m,
 * all with the given action (failed, delayed, delivered, relayed,
 * expanded), and queues it from <> to m->sender (reading m's body off the
 * loop).  done(arg, 0) once the DSN is durable in the queue (it is then
 * scheduled), done(arg, -1) if it could not be made.  Returns 0 (done
 * will be called), or -1 (logged; done is not called). */
int bounce_send(struct delivery *dl, const struct queue_msg *m,
    const uint32_t *idx, size_t n, enum store_action action,
    void (*done)(void *arg, int rc), void *arg);
/* The returned content of a DSN is the whole message only up to this
 * size; a larger one is returned as its header (as Postfix's
 * bounce_size_limit). */
#define BOUNCE_RETURN_MAX (1024 * 1024)

#endif /* MSGTRK_DELIVERY_INT_H */
