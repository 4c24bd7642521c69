/*
 * auth_penalty: the delay before an AUTH answer, growing with the recent
 * failures of the client's address (PRODUCT.md: "535 5.7.8 after a delay
 * that grows with failures per client address").
 *
 * Clients are counted by net_client_key(): an IPv4 address, an IPv6 /64.
 * Each failure adds one to the client's count (at most
 * AUTH_PENALTY_COUNT_MAX); the count loses one for every
 * AUTH_PENALTY_DECAY_MS without a failure, so a client that stops
 * guessing is forgiven one failure a minute.  A success does not reset
 * the count: one account's owner behind an address must not be able to
 * clear a guessing attack on the others from it.
 *
 * The delay for a count n is 0 for n = 0, else AUTH_PENALTY_BASE_MS
 * doubled per failure after the first, capped: 0.5 s, 1 s, 2 s, 4 s,
 * then 8 s.  auth.c answers a failure no earlier than delay(count after
 * it) after the request began, and a success from a client with recent
 * failures no earlier than delay(count + 1): once a client has failed,
 * the time of an answer no longer tells a success from a failure.
 *
 * The table is bounded (AUTH_PENALTY_ENTRIES): a newcomer takes a free
 * entry (count decayed to 0) or evicts the entry whose last failure is
 * the oldest.  Time is passed in (milliseconds, monotonic) so the tests
 * drive a fake clock.  Loop thread only.
 */
#ifndef MSGTRK_AUTH_PENALTY_H
#define MSGTRK_AUTH_PENALTY_H

#include <stdint.h>

#define AUTH_PENALTY_ENTRIES 4096
#define AUTH_PENALTY_BASE_MS 500
#define AUTH_PENALTY_MAX_MS 8000
#define AUTH_PENALTY_DECAY_MS 60000
#define AUTH_PENALTY_COUNT_MAX 16

struct auth_penalty;

/* Returns a new table or NULL (ENOMEM). */
struct auth_penalty *auth_penalty_new(void);

/* Accepts NULL. */
void auth_penalty_free(struct auth_penalty *p);

/* The recent failures of the client at addr (numeric text, "192.0.2.1" or
 * "2001:db8::1"; anything else is one shared "unknown" client) at now. */
unsigned auth_penalty_count(
    struct auth_penalty *p, const char *addr, int64_t now);

/* Counts a failure of the client at addr at now; returns its new count. */
unsigned auth_penalty_fail(
    struct auth_penalty *p, const char *addr, int64_t now);

/* The delay in milliseconds for a count (see above). */
int64_t auth_penalty_delay(unsigned count);

/* Clients in the table with a count above 0 at now (for tests). */
unsigned auth_penalty_clients(const struct auth_penalty *p, int64_t now);

#endif /* MSGTRK_AUTH_PENALTY_H */
