/*
 * auth: the request life cycle shared by the backends (see auth.h): the
 * deadline, the failure penalty, and answers delivered from a timer so
 * that a callback never runs inside auth_check().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "auth/auth.h"
#include "auth/auth_int.h"
#include "auth/auth_penalty.h"
#include "common/log.h"
#include "msgtrk/str.h"

struct auth {
	struct event_base *base;
	const struct auth_backend *ops;
	void *be;
	struct auth_penalty *penalty;
	struct auth_req *reqs; /* answered or not, until delivered */
};

static const struct auth_backend *const backends[] = {
	&auth_backend_passwd,
	&auth_backend_dovecot,
};

int64_t
auth_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Arms r's timer to fire at r->due_us.  libevent may read a coarse clock
 * (a few ms a tick) and fire a little early; on_timer re-arms then. */
static void
req_arm(struct auth_req *r)
{
	int64_t wait = r->due_us - auth_now_us();
	struct timeval tv;

	if (wait < 0)
		wait = 0;
	tv.tv_sec = (time_t)(wait / 1000000);
	tv.tv_usec = (suseconds_t)(wait % 1000000);
	evtimer_del(r->timer);
	/* Timers count from the loop's cached time, which may be older than
	 * now inside a callback. */
	event_base_update_cache_time(r->a->base);
	evtimer_add(r->timer, &tv);
}

struct auth *
auth_new(struct event_base *base, const char *spec, char *err, size_t errsize)
{
	const struct auth_backend *ops = NULL;
	struct auth *a;
	size_t i, n;

	if (spec == NULL)
		spec = "";
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		n = strlen(backends[i]->name);
		if (strncmp(spec, backends[i]->name, n) == 0 &&
		    spec[n] == ':') {
			ops = backends[i];
			spec += n + 1;
			break;
		}
	}
	if (ops == NULL) {
		snprintf(
		    err, errsize, "auth: want passwd:/path or dovecot:/path");
		return NULL;
	}
	if (spec[0] != '/') {
		snprintf(
		    err, errsize, "auth: %s: not an absolute path", ops->name);
		return NULL;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL ||
	    (a->penalty = auth_penalty_new()) == NULL) {
		free(a);
		snprintf(err, errsize, "auth: out of memory");
		return NULL;
	}
	a->base = base;
	a->ops = ops;
	if ((a->be = ops->open(a, base, spec, err, errsize)) == NULL) {
		auth_penalty_free(a->penalty);
		free(a);
		return NULL;
	}
	return a;
}

const char *
auth_backend_name(const struct auth *a)
{
	return a->ops->name;
}

static void
req_unlink(struct auth_req *r)
{
	struct auth *a = r->a;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		a->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

static void
req_free(struct auth_req *r)
{
	if (r->timer != NULL)
		event_free(r->timer);
	explicit_bzero(r, sizeof(*r));
	free(r);
}

void
auth_req_wipe(struct auth_req *r)
{
	explicit_bzero(r->password, sizeof(r->password));
}

static void
req_deliver(struct auth_req *r)
{
	enum auth_result result = r->result;

	req_unlink(r);
	r->cb(r->arg, result, result == AUTH_OK ? r->canonical : NULL);
	req_free(r);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct auth_req *r = arg;
	struct auth *a = r->a;

	(void)fd;
	(void)what;
	if (auth_now_us() < r->due_us) {
		req_arm(r);
		return;
	}
	if (!r->answered) {
		/* The deadline: the backend is hung or overloaded. */
		log_warnx("- auth timeout backend=%s after_ms=%d", a->ops->name,
		    AUTH_DEADLINE_MS);
		a->ops->abort(a->be, r, 1);
		r->answered = 1;
		r->result = AUTH_TEMP;
		auth_req_wipe(r);
	}
	req_deliver(r);
}

void
auth_req_done(
    struct auth_req *r, enum auth_result result, const char *canonical)
{
	struct auth *a = r->a;
	int64_t now, delay = 0;

	if (r->answered)
		return;
	r->answered = 1;
	r->be = NULL;
	r->result = result;
	auth_req_wipe(r);
	if (result == AUTH_OK &&
	    str_copy(r->canonical, canonical != NULL ? canonical : r->login,
	        sizeof(r->canonical)) >= sizeof(r->canonical))
		r->result = AUTH_TEMP;
	now = auth_now_us();
	if (r->result == AUTH_FAIL)
		delay = auth_penalty_delay(
		    auth_penalty_fail(a->penalty, r->addr, now / 1000));
	else if (r->result == AUTH_OK && r->fails_before > 0)
		delay = auth_penalty_delay(r->fails_before + 1);
	r->due_us = r->start_us + delay * 1000;
	req_arm(r);
}

/* A numeric address, copied for Dovecot's rip and the penalty; anything
 * else is "" (unknown). */
static void
copy_addr(char *dst, size_t dstsize, const char *addr)
{
	unsigned char tmp[sizeof(struct in6_addr)];

	dst[0] = '\0';
	if (addr == NULL || strlen(addr) >= dstsize)
		return;
	if (inet_pton(AF_INET, addr, tmp) == 1 ||
	    inet_pton(AF_INET6, addr, tmp) == 1)
		str_copy(dst, addr, dstsize);
}

struct auth_req *
auth_check(struct auth *a, const char *login, const char *password,
    const char *client_addr, int secured, auth_cb cb, void *arg)
{
	struct auth_req *r;
	size_t ln, pn;

	if (login == NULL || password == NULL || cb == NULL ||
	    (ln = strlen(login)) == 0 || ln > SASL_FIELD_MAX ||
	    (pn = strlen(password)) == 0 || pn > SASL_FIELD_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if ((r->timer = evtimer_new(a->base, on_timer, r)) == NULL) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	r->a = a;
	memcpy(r->login, login, ln + 1);
	memcpy(r->password, password, pn + 1);
	copy_addr(r->addr, sizeof(r->addr), client_addr);
	r->secured = secured;
	r->cb = cb;
	r->arg = arg;
	r->start_us = auth_now_us();
	r->due_us = r->start_us + (int64_t)AUTH_DEADLINE_MS * 1000;
	r->fails_before =
	    auth_penalty_count(a->penalty, r->addr, r->start_us / 1000);
	r->next = a->reqs;
	if (a->reqs != NULL)
		a->reqs->prev = r;
	a->reqs = r;
	req_arm(r);
	if (a->ops->start(a->be, r) == -1)
		auth_req_done(r, AUTH_TEMP, NULL);
	return r;
}

void
auth_cancel(struct auth_req *r)
{
	if (r == NULL)
		return;
	if (!r->answered)
		r->a->ops->abort(r->a->be, r, 0);
	req_unlink(r);
	req_free(r);
}

int
auth_reload(struct auth *a, char *err, size_t errsize)
{
	if (a->ops->reload == NULL)
		return 0;
	return a->ops->reload(a->be, err, errsize);
}

void
auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	while (a->reqs != NULL)
		auth_cancel(a->reqs);
	a->ops->close(a->be);
	auth_penalty_free(a->penalty);
	free(a);
}
