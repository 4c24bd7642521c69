/*
 * slots: outbound connection slots (see delivery_int.h).  At most
 * DELIVERY_CONN_MAX connections overall and DELIVERY_CONN_PER_HOST_MAX per
 * next hop; an attempt that finds no slot waits in one FIFO, and a freed
 * slot goes to the first waiter that may use it.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/log.h"
#include "delivery/delivery_int.h"
#include "msgtrk/str.h"

struct slots_host {
	char host[300];
	size_t n;
};

struct slots {
	struct event_base *base;
	size_t nconn;
	struct slots_host hosts[DELIVERY_CONN_MAX];
	size_t nhosts;
	/* Attempts waiting for a slot, first come first served. */
	struct slots_waiter *wait_head, **wait_tail;
};

struct slots *
slots_new(struct event_base *base)
{
	struct slots *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->base = base;
	s->wait_tail = &s->wait_head;
	return s;
}

void
slots_free(struct slots *s)
{
	free(s);
}

/* The slot count of host, or NULL if it holds none. */
static struct slots_host *
host_find(struct slots *s, const char *host)
{
	size_t i;

	for (i = 0; i < s->nhosts; i++)
		if (strcmp(s->hosts[i].host, host) == 0)
			return &s->hosts[i];
	return NULL;
}

static int
room(struct slots *s, const char *host)
{
	struct slots_host *h;

	if (s->nconn >= DELIVERY_CONN_MAX)
		return 0;
	h = host_find(s, host);
	return h == NULL || h->n < DELIVERY_CONN_PER_HOST_MAX;
}

int
slots_get(struct slots *s, const char *host)
{
	struct slots_host *h;

	if (!room(s, host))
		return -1;
	if ((h = host_find(s, host)) != NULL) {
		h->n++;
	} else {
		/* nhosts <= nconn < DELIVERY_CONN_MAX: there is room. */
		h = &s->hosts[s->nhosts++];
		str_copy(h->host, host, sizeof(h->host));
		h->n = 1;
	}
	s->nconn++;
	return 0;
}

static void
wait_unlink(struct slots *s, struct slots_waiter *w)
{
	struct slots_waiter **pp;

	for (pp = &s->wait_head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp != w)
			continue;
		*pp = w->next;
		if (s->wait_tail == &w->next)
			s->wait_tail = pp;
		w->next = NULL;
		return;
	}
}

static void
wait_fire(evutil_socket_t fd, short ev, void *arg)
{
	struct slots_waiter *w = arg;

	(void)fd;
	(void)ev;
	event_free(w->ev);
	w->ev = NULL;
	w->state = SLOTS_WAIT_IDLE;
	w->cb(w->arg);
}

/* Gives w the slot it waits for if there is one; 1 if it did. */
static int
wait_try(struct slots *s, struct slots_waiter *w)
{
	struct timeval now = { 0, 0 };

	if (slots_get(s, w->host) == -1)
		return 0;
	wait_unlink(s, w);
	w->state = SLOTS_WAIT_GRANTED;
	if (evtimer_add(w->ev, &now) == -1)
		fatalx("delivery: evtimer_add");
	return 1;
}

/* A slot came free: it goes to the first waiter that may use it.  When
 * the overall limit was what held everyone, that is the first waiter
 * whose host has room, else the first waiter for host.  Every other
 * waiter was already refused for a reason this slot does not change, so
 * nothing else is walked: a backlog of thousands of deliveries to one
 * slow host costs O(1) per slot, not O(backlog). */
static void
wait_grant(struct slots *s, const char *host, int was_full)
{
	struct slots_waiter *w, *next;

	for (w = s->wait_head; w != NULL; w = next) {
		next = w->next;
		if (!was_full && strcmp(w->host, host) != 0)
			continue;
		if (wait_try(s, w) || !was_full)
			return;
	}
}

void
slots_put(struct slots *s, const char *host)
{
	struct slots_host *h;
	int was_full;

	if ((h = host_find(s, host)) == NULL)
		return;
	was_full = s->nconn >= DELIVERY_CONN_MAX;
	if (--h->n == 0)
		*h = s->hosts[--s->nhosts];
	s->nconn--;
	wait_grant(s, host, was_full);
}

int
slots_wait(struct slots *s, struct slots_waiter *w, const char *host,
    void (*cb)(void *), void *arg)
{
	slots_cancel(w);
	if ((w->ev = evtimer_new(s->base, wait_fire, w)) == NULL)
		return -1;
	w->s = s;
	str_copy(w->host, host, sizeof(w->host));
	w->cb = cb;
	w->arg = arg;
	w->state = SLOTS_WAIT_QUEUED;
	w->next = NULL;
	*s->wait_tail = w;
	s->wait_tail = &w->next;
	/* A slot may have been freed since the caller asked. */
	(void)wait_try(s, w);
	return 0;
}

void *
slots_pass(struct slots *s, const char *host,
    int (*match)(const struct slots_waiter *w, void *ctx), void *ctx)
{
	struct slots_waiter *w;

	for (w = s->wait_head; w != NULL; w = w->next) {
		if (strcmp(w->host, host) != 0 || !match(w, ctx))
			continue;
		wait_unlink(s, w);
		w->state = SLOTS_WAIT_IDLE;
		event_free(w->ev);
		w->ev = NULL;
		return w->arg;
	}
	return NULL;
}

void
slots_cancel(struct slots_waiter *w)
{
	switch (w->state) {
	case SLOTS_WAIT_QUEUED:
		wait_unlink(w->s, w);
		break;
	case SLOTS_WAIT_GRANTED:
		evtimer_del(w->ev);
		w->state = SLOTS_WAIT_IDLE;
		slots_put(w->s, w->host);
		break;
	default:
		return;
	}
	w->state = SLOTS_WAIT_IDLE;
	event_free(w->ev);
	w->ev = NULL;
}
