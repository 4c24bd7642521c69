/*
 * delivery: the scheduler.  One timer per queued message; when it fires,
 * the pending recipients are grouped by next hop (the local transport, or
 * a remote domain after aliases), each group becomes a job (relay.c,
 * local.c), and when every job has ended the outcomes are made durable
 * (queue_update, or queue_finish when every recipient is final) after
 * the DSNs they call for were queued (bounce.c).  A crash between the two
 * can only repeat a DSN, never lose one.
 */
#include <sys/queue.h>

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/conf.h"
#include "common/log.h"
#include "delivery/alias.h"
#include "delivery/delivery.h"
#include "msgtrk/buf.h"
#include "msgtrk/str.h"
#include "msgtrkd/msgtrkd.h"
#include "queue/queue.h"

/* A message the scheduler holds. */
struct dl_msg {
	struct delivery *dl;
	struct queue_msg *m;
	struct event *timer;
	struct delivery_job *jobs; /* of the attempt in flight */
	size_t njobs; /* still running */
	uint32_t *changed; /* recipients the attempt touched */
	size_t nchanged;
	int finishing; /* queue_finish requested */
	TAILQ_ENTRY(dl_msg) entry;
};

struct dl_host {
	char host[300];
	size_t n;
};

struct delivery {
	struct msgtrkd *d;
	struct alias_table *aliases;
	struct alias_table *rcpts; /* local_recipients, or NULL */
	TAILQ_HEAD(dl_msgs, dl_msg) msgs;
	size_t nconn;
	struct dl_host hosts[DELIVERY_CONN_MAX];
	size_t nhosts;
	/* Attempts waiting for a slot, first come first served. */
	struct delivery_waiter *wait_head, **wait_tail;
	struct relay_cache *relay_cache;
	int stopping;
};

static void dl_attempt(evutil_socket_t, short, void *);
static void dl_complete(struct dl_msg *dm);

struct msgtrkd *
delivery_daemon(struct delivery *dl)
{
	return dl->d;
}

static int
dl_load(struct delivery *dl, struct alias_table **al_out,
    struct alias_table **rc_out, char *err, size_t errsize)
{
	const struct conf *c = dl->d->conf;
	struct alias_table *al = NULL, *rc = NULL;
	const char *key, *dom;
	size_t i, line;

	if (c->aliases != NULL) {
		al = alias_load(ALIAS_KIND_ALIASES, c->aliases, err, errsize);
		if (al == NULL)
			return -1;
		/* PRODUCT.md: "the alias domain in local_domains". */
		for (i = 0; (key = alias_entry(al, i, &line)) != NULL; i++) {
			dom = alias_domain(key);
			if (dom == NULL || !conf_is_local_domain(c, dom)) {
				snprintf(err, errsize,
				    "%s:%zu: %s is not in local_domains",
				    c->aliases, line, key);
				alias_free(al);
				return -1;
			}
		}
	}
	if (c->local_recipients != NULL &&
	    (rc = alias_load(ALIAS_KIND_RECIPIENTS, c->local_recipients, err,
	         errsize)) == NULL) {
		alias_free(al);
		return -1;
	}
	*al_out = al;
	*rc_out = rc;
	return 0;
}

struct delivery *
delivery_new(struct msgtrkd *d, char *err, size_t errsize)
{
	struct delivery *dl;

	if ((dl = calloc(1, sizeof(*dl))) == NULL) {
		snprintf(err, errsize, "delivery: out of memory");
		return NULL;
	}
	dl->d = d;
	TAILQ_INIT(&dl->msgs);
	dl->wait_tail = &dl->wait_head;
	if (dl_load(dl, &dl->aliases, &dl->rcpts, err, errsize) == -1) {
		free(dl);
		return NULL;
	}
	return dl;
}

int
delivery_reload(struct delivery *dl, char *err, size_t errsize)
{
	struct alias_table *al, *rc;

	if (dl_load(dl, &al, &rc, err, errsize) == -1)
		return -1;
	/* Jobs in flight hold target strings of the old table only during
	 * an attempt; keep them alive by deferring is not needed: targets
	 * are copied into the job (dl_job_add). */
	alias_free(dl->aliases);
	alias_free(dl->rcpts);
	dl->aliases = al;
	dl->rcpts = rc;
	return 0;
}

int
delivery_local_known(struct delivery *dl, const char *addr)
{
	if (dl->rcpts == NULL)
		return 1;
	if (alias_lookup(dl->rcpts, addr, NULL, NULL) == 1)
		return 1;
	return alias_lookup(dl->aliases, addr, NULL, NULL) == 1;
}

static void
dl_arm(struct dl_msg *dm)
{
	struct timeval tv = { 0, 0 };
	time_t now = time(NULL);

	if (dm->dl->stopping)
		return;
	if (dm->m->next_attempt > now)
		tv.tv_sec = dm->m->next_attempt - now;
	if (evtimer_add(dm->timer, &tv) == -1)
		log_warnx("%s delivery timer error", dm->m->qid);
}

void
delivery_schedule(struct delivery *dl, struct queue_msg *m)
{
	struct dl_msg *dm;

	if ((dm = calloc(1, sizeof(*dm))) == NULL)
		fatal("delivery_schedule");
	dm->dl = dl;
	dm->m = m;
	if ((dm->timer = evtimer_new(dl->d->base, dl_attempt, dm)) == NULL)
		fatalx("delivery_schedule: evtimer_new");
	TAILQ_INSERT_TAIL(&dl->msgs, dm, entry);
	dl_arm(dm);
}

/* The slot count of host, or NULL if it holds none. */
static struct dl_host *
dl_host_find(struct delivery *dl, const char *host)
{
	size_t i;

	for (i = 0; i < dl->nhosts; i++)
		if (strcmp(dl->hosts[i].host, host) == 0)
			return &dl->hosts[i];
	return NULL;
}

static int
dl_conn_free(struct delivery *dl, const char *host)
{
	struct dl_host *h;

	if (dl->nconn >= DELIVERY_CONN_MAX)
		return 0;
	h = dl_host_find(dl, host);
	return h == NULL || h->n < DELIVERY_CONN_PER_HOST_MAX;
}

int
delivery_conn_get(struct delivery *dl, const char *host)
{
	struct dl_host *h;

	if (!dl_conn_free(dl, host))
		return -1;
	if ((h = dl_host_find(dl, host)) != NULL) {
		h->n++;
	} else {
		/* nhosts <= nconn < DELIVERY_CONN_MAX: there is room. */
		h = &dl->hosts[dl->nhosts++];
		str_copy(h->host, host, sizeof(h->host));
		h->n = 1;
	}
	dl->nconn++;
	return 0;
}

static void
dl_wait_unlink(struct delivery *dl, struct delivery_waiter *w)
{
	struct delivery_waiter **pp;

	for (pp = &dl->wait_head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp != w)
			continue;
		*pp = w->next;
		if (dl->wait_tail == &w->next)
			dl->wait_tail = pp;
		w->next = NULL;
		return;
	}
}

static void
dl_wait_fire(evutil_socket_t fd, short ev, void *arg)
{
	struct delivery_waiter *w = arg;

	(void)fd;
	(void)ev;
	event_free(w->ev);
	w->ev = NULL;
	w->state = DELIVERY_WAIT_IDLE;
	w->cb(w->arg);
}

/* Gives w the slot it waits for if there is one; 1 if it did. */
static int
dl_wait_try(struct delivery *dl, struct delivery_waiter *w)
{
	struct timeval now = { 0, 0 };

	if (delivery_conn_get(dl, w->host) == -1)
		return 0;
	dl_wait_unlink(dl, w);
	w->state = DELIVERY_WAIT_GRANTED;
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
dl_wait_grant(struct delivery *dl, const char *host, int was_full)
{
	struct delivery_waiter *w, *next;

	for (w = dl->wait_head; w != NULL; w = next) {
		next = w->next;
		if (!was_full && strcmp(w->host, host) != 0)
			continue;
		if (dl_wait_try(dl, w) || !was_full)
			return;
	}
}

void
delivery_conn_put(struct delivery *dl, const char *host)
{
	struct dl_host *h;
	int was_full;

	if ((h = dl_host_find(dl, host)) == NULL)
		return;
	was_full = dl->nconn >= DELIVERY_CONN_MAX;
	if (--h->n == 0)
		*h = dl->hosts[--dl->nhosts];
	dl->nconn--;
	dl_wait_grant(dl, host, was_full);
}

int
delivery_conn_wait(struct delivery *dl, struct delivery_waiter *w,
    const char *host, void (*cb)(void *), void *arg)
{
	delivery_conn_cancel(w);
	if ((w->ev = evtimer_new(dl->d->base, dl_wait_fire, w)) == NULL)
		return -1;
	w->dl = dl;
	str_copy(w->host, host, sizeof(w->host));
	w->cb = cb;
	w->arg = arg;
	w->state = DELIVERY_WAIT_QUEUED;
	w->next = NULL;
	*dl->wait_tail = w;
	dl->wait_tail = &w->next;
	/* A slot may have been freed since the caller asked. */
	(void)dl_wait_try(dl, w);
	return 0;
}

void *
delivery_conn_pass(struct delivery *dl, const char *host,
    int (*match)(const struct delivery_waiter *w, void *ctx), void *ctx)
{
	struct delivery_waiter *w;

	for (w = dl->wait_head; w != NULL; w = w->next) {
		if (strcmp(w->host, host) != 0 || !match(w, ctx))
			continue;
		dl_wait_unlink(dl, w);
		w->state = DELIVERY_WAIT_IDLE;
		event_free(w->ev);
		w->ev = NULL;
		return w->arg;
	}
	return NULL;
}

struct relay_cache **
delivery_relay_cache(struct delivery *dl)
{
	return &dl->relay_cache;
}

void
delivery_conn_cancel(struct delivery_waiter *w)
{
	switch (w->state) {
	case DELIVERY_WAIT_QUEUED:
		dl_wait_unlink(w->dl, w);
		break;
	case DELIVERY_WAIT_GRANTED:
		evtimer_del(w->ev);
		w->state = DELIVERY_WAIT_IDLE;
		delivery_conn_put(w->dl, w->host);
		break;
	default:
		return;
	}
	w->state = DELIVERY_WAIT_IDLE;
	event_free(w->ev);
	w->ev = NULL;
}

void
delivery_rcpt_set(struct delivery_rcpt *r, int code, const char *status,
    const char *text, size_t n)
{
	r->code = code;
	str_copy(r->status, status != NULL ? status : "", sizeof(r->status));
	if (n > 400)
		n = 400; /* leaves room for the escapes of a few octets */
	str_printable(r->reply, sizeof(r->reply), text, n);
}

static const char *
dl_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

/* The job for (local, domain), created as needed. */
static struct delivery_job *
dl_job(struct dl_msg *dm, int local, const char *domain)
{
	struct delivery_job *j;

	for (j = dm->jobs; j != NULL; j = j->next)
		if (j->local == local &&
		    (local || str_casecmp(j->domain, domain) == 0))
			return j;
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->r = calloc(dm->m->nrcpt, sizeof(*j->r))) == NULL)
		fatal("delivery job");
	j->dl = dm->dl;
	j->m = dm->m;
	j->owner = dm;
	j->local = local;
	if (!local &&
	    str_copy(j->domain, domain, sizeof(j->domain)) >= sizeof(j->domain))
		j->domain[0] = '\0'; /* route_lookup refuses it */
	j->next = dm->jobs;
	dm->jobs = j;
	return j;
}

static void
dl_job_free(struct delivery_job *j)
{
	size_t i;

	for (i = 0; i < j->nr; i++)
		free((char *)j->r[i].addr);
	free(j->r);
	free(j);
}

static void
dl_changed(struct dl_msg *dm, uint32_t idx)
{
	size_t i;

	for (i = 0; i < dm->nchanged; i++)
		if (dm->changed[i] == idx)
			return;
	dm->changed[dm->nchanged++] = idx;
}

static void
dl_log(struct dl_msg *dm, struct queue_rcpt *qr, const char *relay)
{
	char to[128], reply[256];

	log_escape(to, sizeof(to), qr->addr, strlen(qr->addr));
	log_escape(reply, sizeof(reply), qr->track.reply ? qr->track.reply : "",
	    qr->track.reply ? strlen(qr->track.reply) : 0);
	log_info("%s delivery attempt to=%s relay=%s action=%s status=%s "
	         "reply=\"%s\"",
	    dm->m->qid, to, relay, store_action_name(qr->track.action),
	    qr->track.status[0] ? qr->track.status : "-", reply);
}

/* Records an outcome in the queue's copy of the recipient. */
static void
dl_outcome(struct dl_msg *dm, uint32_t idx, enum store_action action,
    const char *status, const char *remote_mta, const char *reply,
    const char *relay)
{
	const struct conf *c = dm->dl->d->conf;
	struct queue_rcpt *qr = &dm->m->rcpts[idx];
	char *s;

	qr->track.action = action;
	str_copy(qr->track.status, status, sizeof(qr->track.status));
	qr->track.last_attempt = time(NULL);
	if (remote_mta != NULL && remote_mta[0] != '\0') {
		if ((s = strdup(remote_mta)) == NULL)
			fatal("delivery");
		free(qr->track.remote_mta);
		qr->track.remote_mta = s;
	}
	if (reply != NULL && reply[0] != '\0') {
		if ((s = strdup(reply)) == NULL)
			fatal("delivery");
		free(qr->track.reply);
		qr->track.reply = s;
	}
	if (action == STORE_ACTION_DELAYED) {
		qr->track.will_retry_until = dm->m->arrival + c->queue_lifetime;
	} else {
		qr->final = 1;
		qr->track.will_retry_until = 0;
	}
	dl_changed(dm, idx);
	dl_log(dm, qr, relay);
}

void
delivery_job_done(struct delivery_job *j)
{
	struct dl_msg *dm = j->owner;
	struct delivery_job **pp;
	struct delivery_rcpt *r;
	const char *relay;
	char status[STORE_STATUS_MAX + 1];
	size_t i;

	for (pp = &dm->jobs; *pp != j; pp = &(*pp)->next)
		;
	*pp = j->next;
	relay = j->remote_mta[0] ? j->remote_mta + 5 : j->local ? "local" : "-";
	for (i = 0; i < j->nr && !j->aborted; i++) {
		r = &j->r[i];
		if (r->code == 0)
			delivery_rcpt_set(
			    r, 0, "4.4.1", j->error, strlen(j->error));
		if (r->code >= 200 && r->code < 300) {
			dl_outcome(dm, r->idx, r->action,
			    r->status[0] ? r->status : "2.0.0", j->remote_mta,
			    r->reply, relay);
			if (r->dsn_passed)
				dm->m->rcpts[r->idx].dsn_sent = 1;
		} else if (r->code >= 500) {
			dl_outcome(dm, r->idx, STORE_ACTION_FAILED,
			    r->status[0] == '5' ? r->status : "5.0.0",
			    j->remote_mta, r->reply, relay);
		} else {
			snprintf(status, sizeof(status), "%s",
			    r->status[0] == '4' ? r->status : "4.0.0");
			dl_outcome(dm, r->idx, STORE_ACTION_DELAYED, status,
			    j->remote_mta, r->reply, relay);
		}
	}
	dl_job_free(j);
	if (--dm->njobs == 0)
		dl_complete(dm);
}

/* Submits the members of a multi-target alias as a new message without
 * MTRK (RFC 3885 §9 choice (c) of RFC 3461 §5.2.7.3: ENVID, RET and
 * ORCPT go to every member, NOTIFY minus SUCCESS). */
struct dl_expand {
	struct buf body;
	struct iovec iov;
	struct delivery *dl;
	struct queue_msg *m;
};

static void
dl_expand_done(void *arg, int rc, int err)
{
	struct dl_expand *x = arg;

	if (rc == -1) {
		log_warnx("%s delivery expand error=\"%s\"", x->m->qid,
		    strerror(err));
		queue_msg_free(x->m);
	} else {
		log_info(
		    "%s delivery queued members=%zu", x->m->qid, x->m->nrcpt);
		delivery_schedule(x->dl, x->m);
	}
	buf_reset(&x->body);
	free(x);
}

static char *
dl_strdup(const char *s)
{
	char *p;

	if (s == NULL)
		return NULL;
	if ((p = strdup(s)) == NULL)
		fatal("delivery");
	return p;
}

static int
dl_expand(
    struct dl_msg *dm, struct queue_rcpt *qr, const char *const *tg, size_t n)
{
	const struct queue_msg *o = dm->m;
	struct dl_expand *x;
	struct queue_msg *m;
	char rcpt[600];
	size_t i;

	if ((x = calloc(1, sizeof(*x))) == NULL ||
	    (m = calloc(1, sizeof(*m))) == NULL ||
	    (m->rcpts = calloc(n, sizeof(*m->rcpts))) == NULL)
		fatal("delivery");
	x->dl = dm->dl;
	x->m = m;
	buf_init(&x->body, SIZE_MAX / 2);
	if (queue_read_body(dm->dl->d->queue, o, &x->body) == -1) {
		log_warn("%s delivery expand body", o->qid);
		goto fail;
	}
	queue_new_id(m->qid);
	m->sender = dl_strdup(o->sender);
	m->envid_raw = dl_strdup(o->envid_raw);
	m->envid = dl_strdup(o->envid);
	m->ret = o->ret;
	m->body_8bit = o->body_8bit;
	m->arrival = time(NULL);
	m->expires = o->expires;
	m->reporting_mta = dl_strdup(o->reporting_mta);
	m->helo = dl_strdup(o->helo);
	m->client = dl_strdup("local");
	m->size = o->size;
	m->next_attempt = m->arrival;
	m->nrcpt = n;
	for (i = 0; i < n; i++) {
		struct queue_rcpt *r = &m->rcpts[i];

		r->addr = dl_strdup(tg[i]);
		r->orcpt_raw = dl_strdup(qr->orcpt_raw);
		r->notify = qr->notify & (uint8_t)~QUEUE_NOTIFY_SUCCESS;
		if (qr->notify == QUEUE_NOTIFY_SUCCESS)
			r->notify = QUEUE_NOTIFY_NEVER;
		r->track.idx = (uint32_t)i;
		r->track.orcpt = dl_strdup(qr->track.orcpt);
		snprintf(rcpt, sizeof(rcpt), "rfc822;%s", tg[i]);
		r->track.final_rcpt = dl_strdup(rcpt);
	}
	x->iov.iov_base = x->body.data;
	x->iov.iov_len = x->body.len;
	if (queue_submit(dm->dl->d->queue, m, &x->iov, 1, dl_expand_done, x) ==
	    -1) {
		log_warn("%s delivery expand submit", o->qid);
		goto fail;
	}
	return 0;
fail:
	queue_msg_free(m);
	buf_reset(&x->body);
	free(x);
	return -1;
}

static void
dl_job_add(struct delivery_job *j, uint32_t idx, const char *addr)
{
	j->r[j->nr].idx = idx;
	j->r[j->nr].addr = dl_strdup(addr);
	j->nr++;
}

static void
dl_attempt(evutil_socket_t fd, short ev, void *arg)
{
	struct dl_msg *dm = arg;
	struct delivery *dl = dm->dl;
	const struct conf *c = dl->d->conf;
	struct queue_msg *m = dm->m;
	struct queue_rcpt *qr;
	struct delivery_job *j, *next;
	const char *const *tg;
	const char *addr, *dom;
	time_t now = time(NULL);
	size_t i, n;
	int expired;

	(void)fd;
	(void)ev;
	if (dl->stopping || dm->njobs > 0 || dm->finishing)
		return;
	free(dm->changed);
	if ((dm->changed = calloc(m->nrcpt + 1, sizeof(*dm->changed))) == NULL)
		fatal("delivery");
	dm->nchanged = 0;
	expired = now >= m->arrival + c->queue_lifetime;
	for (i = 0; i < m->nrcpt; i++) {
		qr = &m->rcpts[i];
		if (qr->final)
			continue;
		if (expired) {
			/* RFC 3463: 4.4.7 "Delivery time expired"; the
			 * action is failed, so its class is 4 here. */
			dl_outcome(dm, (uint32_t)i, STORE_ACTION_FAILED,
			    "4.4.7", NULL, "Delivery time expired", "-");
			continue;
		}
		addr = qr->addr;
		dom = dl_domain(addr);
		if (!conf_is_local_domain(c, dom)) {
			dl_job_add(dl_job(dm, 0, dom), (uint32_t)i, addr);
			continue;
		}
		if (alias_lookup(dl->aliases, addr, &tg, &n) == 1) {
			if (n > 1) {
				/* Several targets: expanded, the members
				 * never in this record (RFC 3886 §4.2). */
				if (dl_expand(dm, qr, tg, n) == 0)
					dl_outcome(dm, (uint32_t)i,
					    STORE_ACTION_EXPANDED, "2.0.0",
					    NULL, NULL, "local");
				else
					dl_outcome(dm, (uint32_t)i,
					    STORE_ACTION_DELAYED, "4.3.0", NULL,
					    "alias expansion failed", "local");
				continue;
			}
			/* One target: an ordinary hop, MTRK kept (RFC 3885
			 * §9); the target is not looked up again. */
			addr = tg[0];
			dom = dl_domain(addr);
			if (!conf_is_local_domain(c, dom)) {
				dl_job_add(
				    dl_job(dm, 0, dom), (uint32_t)i, addr);
				continue;
			}
		} else if (dl->rcpts != NULL &&
		    alias_lookup(dl->rcpts, addr, NULL, NULL) != 1) {
			dl_outcome(dm, (uint32_t)i, STORE_ACTION_FAILED,
			    "5.1.1", NULL, "No such local recipient", "local");
			continue;
		}
		dl_job_add(dl_job(dm, 1, ""), (uint32_t)i, addr);
	}
	m->attempts++;
	dm->njobs = 1; /* held while starting, so no job completes us */
	for (j = dm->jobs; j != NULL; j = next) {
		next = j->next;
		dm->njobs++;
		if ((j->local ? local_start(j) : relay_start(j)) == -1)
			delivery_job_done(j);
	}
	if (--dm->njobs == 0)
		dl_complete(dm);
}

/* Queues the DSNs the attempt calls for (RFC 3461 §6.2): failure unless
 * NOTIFY excludes it, delay once past delay_warning, success for
 * delivered/expanded and "relayed" for relayed or transferred to a hop
 * without DSN. */
static void
dl_dsns(struct dl_msg *dm)
{
	const struct conf *c = dm->dl->d->conf;
	struct queue_msg *m = dm->m;
	struct queue_rcpt *qr;
	uint32_t *idx;
	size_t i, k, n;
	time_t now = time(NULL);
	static const enum store_action kinds[] = {
		STORE_ACTION_FAILED,
		STORE_ACTION_DELAYED,
		STORE_ACTION_DELIVERED,
		STORE_ACTION_RELAYED,
		STORE_ACTION_EXPANDED,
	};
	enum store_action a;

	if (m->sender[0] == '\0')
		return; /* no DSN about a DSN (RFC 3461 §6.1) */
	if ((idx = calloc(m->nrcpt + 1, sizeof(*idx))) == NULL)
		fatal("delivery");
	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		n = 0;
		for (i = 0; i < dm->nchanged; i++) {
			qr = &m->rcpts[dm->changed[i]];
			/* transferred to a hop without DSN: the relayed DSN
			 * is still ours (RFC 3461 §5.2.2); a DSN hop took
			 * it over (dsn_sent). */
			a = qr->track.action == STORE_ACTION_TRANSFERRED
			    ? STORE_ACTION_RELAYED
			    : qr->track.action;
			if (a != kinds[k] || qr->dsn_sent)
				continue;
			if (qr->notify & QUEUE_NOTIFY_NEVER)
				continue;
			switch (kinds[k]) {
			case STORE_ACTION_FAILED:
				if (qr->notify != 0 &&
				    !(qr->notify & QUEUE_NOTIFY_FAILURE))
					continue;
				break;
			case STORE_ACTION_DELAYED:
				if (m->delay_warned ||
				    now < m->arrival + c->delay_warning ||
				    !(qr->notify & QUEUE_NOTIFY_DELAY))
					continue;
				break;
			default:
				if (!(qr->notify & QUEUE_NOTIFY_SUCCESS))
					continue;
				break;
			}
			idx[n++] = dm->changed[i];
		}
		if (n == 0)
			continue;
		if (bounce_send(dm->dl, m, idx, n, kinds[k]) == -1)
			continue; /* logged; retried with the next attempt */
		for (i = 0; i < n; i++)
			if (kinds[k] != STORE_ACTION_DELAYED)
				m->rcpts[idx[i]].dsn_sent = 1;
		if (kinds[k] == STORE_ACTION_DELAYED)
			m->delay_warned = 1;
	}
	free(idx);
}

static void
dl_msg_free(struct dl_msg *dm)
{
	TAILQ_REMOVE(&dm->dl->msgs, dm, entry);
	event_free(dm->timer);
	free(dm->changed);
	free(dm);
}

static void
dl_finished(void *arg, int rc, int err)
{
	struct dl_msg *dm = arg;

	if (rc == -1) {
		log_warnx("%s delivery finish error=\"%s\"", dm->m->qid,
		    strerror(err));
		dm->finishing = 0;
		dm->m->next_attempt = time(NULL) + 60;
		dl_arm(dm);
		return;
	}
	log_info("%s delivery done", dm->m->qid);
	dl_msg_free(dm);
}

static void
dl_updated(void *arg, int rc, int err)
{
	struct dl_msg *dm = arg;

	if (rc == -1)
		log_warnx("%s delivery update error=\"%s\"", dm->m->qid,
		    strerror(err));
	dl_arm(dm);
}

static void
dl_complete(struct dl_msg *dm)
{
	const struct conf *c = dm->dl->d->conf;
	struct queue_msg *m = dm->m;
	size_t i, k;
	time_t now = time(NULL), end;

	if (dm->dl->stopping) {
		/* Outcomes of finished jobs are already in m; they become
		 * durable with the next attempt after restart at the
		 * latest (the journal still has the old state). */
		return;
	}
	dl_dsns(dm);
	for (i = 0; i < m->nrcpt; i++)
		if (!m->rcpts[i].final)
			break;
	if (i == m->nrcpt) {
		dm->finishing = 1;
		if (dm->nchanged > 0 &&
		    queue_update(dm->dl->d->queue, m, dm->changed, dm->nchanged,
		        NULL, NULL) == -1)
			log_warnx("%s delivery update failed", m->qid);
		if (queue_finish(dm->dl->d->queue, m, dl_finished, dm) == -1) {
			log_warnx("%s delivery finish failed", m->qid);
			dm->finishing = 0;
		}
		return;
	}
	/* The retry schedule: the last interval repeats; never past the
	 * end of the queue lifetime, so expiry is reported on time. */
	k = m->attempts > 0 ? m->attempts - 1 : 0;
	if (c->n_retry_schedule == 0)
		m->next_attempt = now + 300;
	else
		m->next_attempt = now +
		    c->retry_schedule[k < c->n_retry_schedule
		            ? k
		            : c->n_retry_schedule - 1];
	end = m->arrival + c->queue_lifetime;
	if (m->next_attempt > end)
		m->next_attempt = end > now ? end : now + 1;
	if (queue_update(dm->dl->d->queue, m, dm->changed, dm->nchanged,
	        dl_updated, dm) == -1) {
		log_warnx("%s delivery update failed", m->qid);
		dl_arm(dm);
	}
}

size_t
delivery_stop(struct delivery *dl)
{
	struct dl_msg *dm;
	struct delivery_job *j, *next;
	size_t running = 0;

	if (!dl->stopping) {
		dl->stopping = 1;
		relay_cache_flush(dl);
		TAILQ_FOREACH(dm, &dl->msgs, entry)
		{
			evtimer_del(dm->timer);
			for (j = dm->jobs; j != NULL; j = next) {
				next = j->next;
				j->aborted = 1;
				if (j->local)
					(void)local_abort(j);
				else
					relay_abort(j);
			}
		}
	}
	TAILQ_FOREACH(dm, &dl->msgs, entry)
	running += dm->njobs;
	return running;
}

void
delivery_free(struct delivery *dl)
{
	struct dl_msg *dm;
	struct delivery_job *j;

	if (dl == NULL)
		return;
	(void)delivery_stop(dl);
	while ((dm = TAILQ_FIRST(&dl->msgs)) != NULL) {
		while ((j = dm->jobs) != NULL) {
			dm->jobs = j->next;
			local_join(j);
			dl_job_free(j);
		}
		dl_msg_free(dm);
	}
	relay_cache_free(dl);
	alias_free(dl->aliases);
	alias_free(dl->rcpts);
	free(dl);
}
