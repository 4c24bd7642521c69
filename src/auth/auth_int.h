/*
 * auth_int: what auth.c shares with its backends (auth_passwd.c,
 * auth_dovecot.c), after OpenSMTPD's table backends: a struct of function
 * pointers per backend, and the request they work on.
 */
#ifndef MSGTRK_AUTH_INT_H
#define MSGTRK_AUTH_INT_H

#include <stdint.h>

#include "auth/auth.h"
#include "msgtrk/sasl.h"

struct event;

struct auth_req {
	struct auth *a;
	struct auth_req *prev, *next; /* a->reqs */
	/* Wiped when the backend has taken them (auth_req_wipe). */
	char login[SASL_FIELD_MAX + 1];
	char password[SASL_FIELD_MAX + 1];
	char addr[64]; /* "" if unknown or not numeric */
	int secured;
	auth_cb cb;
	void *arg;
	struct event *timer; /* the deadline, then the answer's delay */
	int64_t start_us; /* monotonic */
	int64_t due_us; /* when the timer is due: deadline, or answer */
	unsigned fails_before; /* the penalty count when it began */
	int answered; /* the backend gave its result */
	enum auth_result result;
	char canonical[SASL_FIELD_MAX + 1];
	void *be; /* the backend's handle of the request */
};

struct auth_backend {
	const char *name;
	/* Opens the backend on arg (the spec after "name:"); returns its
	 * state or NULL with err set. */
	void *(*open)(struct auth *a, struct event_base *base, const char *arg,
	    char *err, size_t errsize);
	/* Starts r; the backend answers with auth_req_done(), at once or
	 * later.  Returns 0, or -1: r is AUTH_TEMP. */
	int (*start)(void *be, struct auth_req *r);
	/* Withdraws r (cancelled, or timed_out: its deadline passed); the
	 * backend forgets it and never answers it. */
	void (*abort)(void *be, struct auth_req *r, int timed_out);
	int (*reload)(void *be, char *err, size_t errsize);
	void (*close)(void *be);
};

extern const struct auth_backend auth_backend_passwd;
extern const struct auth_backend auth_backend_dovecot;

/* The backend's answer for r (loop thread).  canonical: the login as the
 * backend spells it (AUTH_OK only; NULL: as given). */
void auth_req_done(
    struct auth_req *r, enum auth_result result, const char *canonical);

/* Wipes r's password (the backend copied or sent it). */
void auth_req_wipe(struct auth_req *r);

/* The monotonic clock in microseconds. */
int64_t auth_now_us(void);

#endif /* MSGTRK_AUTH_INT_H */
