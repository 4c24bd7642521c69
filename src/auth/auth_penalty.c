/*
 * auth_penalty: see auth_penalty.h.  A linear table, like the MTQP
 * server's failed-TRACK limiter: 4096 entries are scanned only when an
 * AUTH is answered, far rarer than the work of the check itself.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "auth/auth_penalty.h"
#include "common/net.h"

struct penalty_entry {
	unsigned char key[NET_CLIENT_KEY_LEN];
	unsigned count; /* as of t */
	int64_t t; /* the last failure, or the last decay step */
};

struct auth_penalty {
	struct penalty_entry e[AUTH_PENALTY_ENTRIES];
};

struct auth_penalty *
auth_penalty_new(void)
{
	return calloc(1, sizeof(struct auth_penalty));
}

void
auth_penalty_free(struct auth_penalty *p)
{
	free(p);
}

/* The key of addr; every address that is not numeric IPv4/IPv6 shares
 * the all-zero key (a client is never let off for an odd address). */
static void
key_of(const char *addr, unsigned char *key)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;

	memset(key, 0, NET_CLIENT_KEY_LEN);
	if (addr == NULL)
		return;
	memset(&s4, 0, sizeof(s4));
	memset(&s6, 0, sizeof(s6));
	if (inet_pton(AF_INET, addr, &s4.sin_addr) == 1) {
		s4.sin_family = AF_INET;
		(void)net_client_key((struct sockaddr *)&s4, key);
	} else if (inet_pton(AF_INET6, addr, &s6.sin6_addr) == 1) {
		s6.sin6_family = AF_INET6;
		(void)net_client_key((struct sockaddr *)&s6, key);
	}
}

/* The entry's count at now, decayed (the entry is updated). */
static unsigned
decayed(struct penalty_entry *e, int64_t now)
{
	int64_t steps;

	if (e->count == 0 || now <= e->t)
		return e->count;
	steps = (now - e->t) / AUTH_PENALTY_DECAY_MS;
	if (steps >= (int64_t)e->count) {
		e->count = 0;
		e->t = now;
	} else {
		e->count -= (unsigned)steps;
		e->t += steps * AUTH_PENALTY_DECAY_MS;
	}
	return e->count;
}

static struct penalty_entry *
find(struct auth_penalty *p, const unsigned char *key, int64_t now)
{
	size_t i;

	for (i = 0; i < AUTH_PENALTY_ENTRIES; i++) {
		struct penalty_entry *e = &p->e[i];

		if (e->count > 0 &&
		    memcmp(e->key, key, NET_CLIENT_KEY_LEN) == 0)
			return decayed(e, now) > 0 ? e : NULL;
	}
	return NULL;
}

unsigned
auth_penalty_count(struct auth_penalty *p, const char *addr, int64_t now)
{
	unsigned char key[NET_CLIENT_KEY_LEN];
	struct penalty_entry *e;

	key_of(addr, key);
	e = find(p, key, now);
	return e != NULL ? e->count : 0;
}

unsigned
auth_penalty_fail(struct auth_penalty *p, const char *addr, int64_t now)
{
	unsigned char key[NET_CLIENT_KEY_LEN];
	struct penalty_entry *e, *victim = NULL;
	size_t i;

	key_of(addr, key);
	if ((e = find(p, key, now)) == NULL) {
		/* A free entry (count 0 once decayed), else the oldest. */
		for (i = 0; i < AUTH_PENALTY_ENTRIES; i++) {
			e = &p->e[i];
			if (decayed(e, now) == 0) {
				victim = e;
				break;
			}
			if (victim == NULL || e->t < victim->t)
				victim = e;
		}
		if ((e = victim) == NULL)
			return 0; /* cannot be: the table is not empty */
		memcpy(e->key, key, NET_CLIENT_KEY_LEN);
		e->count = 0;
	}
	if (e->count < AUTH_PENALTY_COUNT_MAX)
		e->count++;
	e->t = now;
	return e->count;
}

int64_t
auth_penalty_delay(unsigned count)
{
	int64_t d = AUTH_PENALTY_BASE_MS;
	unsigned i;

	if (count == 0)
		return 0;
	for (i = 1; i < count && d < AUTH_PENALTY_MAX_MS; i++)
		d *= 2;
	return d < AUTH_PENALTY_MAX_MS ? d : AUTH_PENALTY_MAX_MS;
}

unsigned
auth_penalty_clients(const struct auth_penalty *p, int64_t now)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < AUTH_PENALTY_ENTRIES; i++) {
		const struct penalty_entry *e = &p->e[i];

		if (e->count > 0 &&
		    (now <= e->t ||
		        (now - e->t) / AUTH_PENALTY_DECAY_MS <
		            (int64_t)e->count))
			n++;
	}
	return n;
}
