/*
 * ratelimit: see ratelimit.h.  (Moved from the MTQP server, where it
 * limits failed TRACKs, so that the HTTP server shares it.)
 */
#include <string.h>

#include "common/ratelimit.h"

/* Takes one slot at *tat; returns the wait.  With only_free, a slot
 * that would wait is not taken. */
static int64_t
ratelimit_slot(
    int64_t *tat, int64_t now, int64_t tau, int64_t period, int only_free)
{
	int64_t at;

	if (*tat < now)
		*tat = now;
	at = *tat - tau;
	if (at > now && only_free)
		return at - now;
	*tat += period;
	return at > now ? at - now : 0;
}

static int64_t
ratelimit_call(struct ratelimit *r, const struct sockaddr *sa,
    unsigned int burst, int64_t period_ms, int64_t now, int only_free)
{
	unsigned char key[NET_CLIENT_KEY_LEN];
	struct ratelimit_entry *e, *victim = NULL;
	int64_t tau = (int64_t)(burst > 0 ? burst - 1 : 0) * period_ms;
	size_t i;

	if (net_client_key(sa, key) == -1)
		return ratelimit_slot(
		    &r->overflow_tat, now, 0, period_ms, only_free);
	for (i = 0; i < RATELIMIT_ENTRIES; i++) {
		e = &r->e[i];
		if (e->used && memcmp(e->key, key, sizeof(key)) == 0)
			return ratelimit_slot(
			    &e->tat, now, tau, period_ms, only_free);
		/* Reusable: a free entry, or one whose bucket is full again
		 * (tat <= now: it would behave as a new one); the oldest
		 * first. */
		if (!e->used || e->tat <= now) {
			if (victim == NULL ||
			    (victim->used &&
			        (!e->used || e->tat < victim->tat)))
				victim = e;
		}
	}
	if (victim == NULL) {
		/* Every entry is a client still being limited: evicting one
		 * would hand it a fresh burst when it comes back.  Fail
		 * closed: every client not in the table shares one slot a
		 * period, without a burst. */
		r->overflowed++;
		return ratelimit_slot(
		    &r->overflow_tat, now, 0, period_ms, only_free);
	}
	memset(victim, 0, sizeof(*victim));
	memcpy(victim->key, key, sizeof(key));
	victim->used = 1;
	victim->tat = now;
	return ratelimit_slot(&victim->tat, now, tau, period_ms, only_free);
}

int64_t
ratelimit_take(struct ratelimit *r, const struct sockaddr *sa,
    unsigned int burst, int64_t period_ms, int64_t now)
{
	return ratelimit_call(r, sa, burst, period_ms, now, 0);
}

int64_t
ratelimit_try(struct ratelimit *r, const struct sockaddr *sa,
    unsigned int burst, int64_t period_ms, int64_t now)
{
	return ratelimit_call(r, sa, burst, period_ms, now, 1);
}
