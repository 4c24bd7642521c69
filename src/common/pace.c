/*
 * pace: see pace.h.
 */
#include <stdlib.h>

#include "common/log.h"
#include "common/pace.h"

static void
pace_listeners(struct pace *p, int enable)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		if (p->listeners[i] == NULL)
			continue;
		if ((enable ? evconnlistener_enable(p->listeners[i])
		            : evconnlistener_disable(p->listeners[i])) == -1)
			log_warnx("- listener %zu cannot be %s", i,
			    enable ? "enabled" : "disabled");
	}
}

static void
pace_resume(evutil_socket_t fd, short ev, void *arg)
{
	struct pace *p = arg;

	(void)fd;
	(void)ev;
	p->count = 0;
	if (p->on)
		pace_listeners(p, 1);
}

int
pace_init(struct pace *p, struct event_base *base, struct evconnlistener **l,
    size_t n)
{
	p->listeners = l;
	p->n = n;
	p->count = 0;
	p->on = 0;
	p->resume = evtimer_new(base, pace_resume, p);
	return p->resume != NULL ? 0 : -1;
}

void
pace_start(struct pace *p)
{
	p->on = 1;
	pace_listeners(p, 1);
}

void
pace_accepted(struct pace *p)
{
	struct timeval now = { 0, 0 };

	if (++p->count < PACE_BURST || !p->on)
		return;
	/* libevent's accept loop stops when its listener is disabled. */
	pace_listeners(p, 0);
	if (evtimer_add(p->resume, &now) == -1) {
		log_warnx("- listener pause: evtimer_add failed");
		pace_resume(-1, 0, p);
	}
}

void
pace_stop(struct pace *p)
{
	p->on = 0;
	if (p->resume != NULL)
		evtimer_del(p->resume);
	pace_listeners(p, 0);
}

void
pace_free(struct pace *p)
{
	if (p->resume != NULL)
		event_free(p->resume);
	p->resume = NULL;
}
