/*
 * pace: fairness between a server's listeners and its sessions.
 * libevent's evconnlistener accepts in a loop until the backlog is empty.
 * Clients that open a new connection as soon as they are greeted, or a
 * connection flood, keep it from ever emptying, and every open session
 * starves meanwhile: its EOF, its commit and its timers wait, and the
 * session limits fill with the dead.  After PACE_BURST accepts the
 * listeners pause until the next turn of the event loop (the bound on
 * work per turn that nginx gets from "multi_accept off").
 */
#ifndef MSGTRK_PACE_H
#define MSGTRK_PACE_H

#include <stddef.h>

#include <event2/event.h>
#include <event2/listener.h>

#define PACE_BURST 64

struct pace {
	struct evconnlistener **listeners;
	size_t n;
	struct event *resume;
	unsigned int count; /* accepts since the last pause */
	int on; /* between pace_start() and pace_stop() */
};

/* Paces the n listeners of the array (the caller's, alive until
 * pace_stop()).  Returns 0, or -1 out of memory. */
int pace_init(struct pace *p, struct event_base *base,
    struct evconnlistener **l, size_t n);
/* Enables the listeners. */
void pace_start(struct pace *p);
/* Call from the accept callback, once per connection accepted. */
void pace_accepted(struct pace *p);
/* Disables the listeners for good (their owner may free them after). */
void pace_stop(struct pace *p);
/* Frees what pace_init() made; no-op on a zeroed struct. */
void pace_free(struct pace *p);

#endif /* MSGTRK_PACE_H */
