/*
 * ratelimit: a per-client rate limit (GCRA: a token bucket written as the
 * time at which the bucket would be full again, "tat"), keyed by
 * net_client_key() (IPv4 address, IPv6 /64).  The MTQP server limits
 * failed TRACKs with it, the HTTP server its tracking requests.
 *
 * Each call takes one slot: the first burst slots of a client are free
 * (wait 0), then one slot per period, each waiting call having taken its
 * own, whatever the number of the client's connections.  A client not in
 * the table takes a free entry or the one whose bucket has been full
 * again the longest; when every entry is still limiting its client, the
 * newcomer is limited too (one slot per period shared by all newcomers,
 * no burst): fail closed.
 *
 * No I/O, no logging, no global state: the table is the caller's.
 */
#ifndef MSGTRK_RATELIMIT_H
#define MSGTRK_RATELIMIT_H

#include <stdint.h>
#include <sys/socket.h>

#include "common/net.h"

/* Clients a table remembers. */
#define RATELIMIT_ENTRIES 1024

struct ratelimit_entry {
	unsigned char key[NET_CLIENT_KEY_LEN];
	int used;
	int64_t tat; /* ms: when the client's bucket is full again */
};

/* A table (embedded; zero it to start). */
struct ratelimit {
	struct ratelimit_entry e[RATELIMIT_ENTRIES];
	int64_t overflow_tat; /* clients not in a full table */
	uint64_t overflowed; /* calls counted there */
};

/* Takes a slot for client sa at now (milliseconds, monotonic) under a
 * limit of burst (at least 1) slots then one per period_ms, and returns
 * the milliseconds to wait before serving the call: 0 within the burst,
 * then the time until the slot taken.  An address of another family
 * counts as a newcomer in a full table. */
int64_t ratelimit_take(struct ratelimit *r, const struct sockaddr *sa,
    unsigned int burst, int64_t period_ms, int64_t now);

/* As ratelimit_take(), but a call that would wait takes nothing: for a
 * caller that refuses it (HTTP's 429), so that the wait returned is when
 * a slot is free, and refused calls do not push the client's next slot
 * further away.  Returns 0 (a slot taken) or that wait. */
int64_t ratelimit_try(struct ratelimit *r, const struct sockaddr *sa,
    unsigned int burst, int64_t period_ms, int64_t now);

#endif /* MSGTRK_RATELIMIT_H */
