/*
 * relay_cache: idle outbound sessions, kept for the next delivery to the
 * same hop (as Postfix's smtp connection cache): a session whose
 * transaction ended in step holds its connection slot for
 * RELAY_CACHE_IDLE seconds; a delivery to that hop (host, port, SMTP or
 * LMTP) takes it instead of dialling.  An idle session the server speaks
 * on (a 421, or the answer to our QUIT) is closed; at the end of its idle
 * time it says QUIT, waits RELAY_CACHE_QUIT seconds for the reply, and is
 * closed.  The slot goes back (slots_put) when it closes.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/log.h"
#include "delivery/delivery_int.h"
#include "msgtrk/str.h"

/* Seconds to wait for the reply to the QUIT that closes an idle session. */
#define RELAY_CACHE_QUIT 2

struct relay_conn {
	struct relay_cache *cache;
	TAILQ_ENTRY(relay_conn) entry;
	struct relay_idle s;
	int quitting; /* QUIT sent: waiting for its reply or the close */
};

struct relay_cache {
	struct slots *slots;
	TAILQ_HEAD(relay_idle_list, relay_conn) idle;
	int closed; /* delivery stopping: cache nothing more */
};

struct relay_cache *
relay_cache_new(struct slots *slots)
{
	struct relay_cache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->slots = slots;
	TAILQ_INIT(&c->idle);
	return c;
}

/* Closes an idle session and gives its slot back. */
static void
conn_close(struct relay_conn *c)
{
	TAILQ_REMOVE(&c->cache->idle, c, entry);
	bufferevent_free(c->s.bev);
	slots_put(c->cache->slots, c->s.slot);
	free(c);
}

static void
conn_idle_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	/* An idle server speaks only to hang up (421), or to answer our
	 * QUIT: either way the session is over. */
	conn_close(arg);
}

static void
conn_idle_event(struct bufferevent *bev, short what, void *arg)
{
	struct relay_conn *c = arg;
	struct timeval tv = { RELAY_CACHE_QUIT, 0 };

	if ((what & BEV_EVENT_TIMEOUT) && !c->quitting) {
		c->quitting = 1;
		bufferevent_set_timeouts(bev, &tv, &tv);
		if (bufferevent_write(bev, "QUIT\r\n", 6) == 0 &&
		    bufferevent_enable(bev, EV_READ | EV_WRITE) == 0)
			return;
	}
	conn_close(c);
}

int
relay_cache_put(struct relay_cache *cache, const struct relay_idle *s)
{
	struct timeval idle = { RELAY_CACHE_IDLE, 0 };
	struct relay_conn *c;

	if (cache->closed || (c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	c->cache = cache;
	c->s = *s;
	bufferevent_setcb(c->s.bev, conn_idle_read, NULL, conn_idle_event, c);
	bufferevent_set_timeouts(c->s.bev, &idle, NULL);
	bufferevent_enable(c->s.bev, EV_READ);
	TAILQ_INSERT_TAIL(&cache->idle, c, entry);
	return 0;
}

int
relay_cache_take(struct relay_cache *cache, const char *host, uint16_t port,
    int lmtp, struct relay_idle *out)
{
	struct relay_conn *c;

	for (c = TAILQ_FIRST(&cache->idle); c != NULL;
	     c = TAILQ_NEXT(c, entry)) {
		if (c->quitting || c->s.port != port || c->s.lmtp != lmtp ||
		    strcmp(c->s.slot, host) != 0)
			continue;
		TAILQ_REMOVE(&cache->idle, c, entry);
		*out = c->s;
		free(c);
		return 1;
	}
	return 0;
}

int
relay_cache_evict(struct relay_cache *cache, const char *host)
{
	struct relay_conn *c;

	for (c = TAILQ_FIRST(&cache->idle); c != NULL;
	     c = TAILQ_NEXT(c, entry)) {
		if (strcmp(c->s.slot, host) != 0) {
			conn_close(c);
			return 1;
		}
	}
	return 0;
}

int
relay_cache_closed(const struct relay_cache *cache)
{
	return cache->closed;
}

void
relay_cache_flush(struct relay_cache *cache)
{
	cache->closed = 1;
	while (!TAILQ_EMPTY(&cache->idle))
		conn_close(TAILQ_FIRST(&cache->idle));
}

void
relay_cache_free(struct relay_cache *cache)
{
	if (cache == NULL)
		return;
	relay_cache_flush(cache);
	free(cache);
}
