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

#endif /* MSGTRK_DELIVERY_H */
