/*
 * delivery: the scheduler (see delivery.h).  One timer per queued
 * message.  When it fires:
 *
 *   1. duties first: a recipient whose committed state is final and whose
 *      DSN was asked for and not yet sent gets it now (bounce.c); only
 *      once the DSN is durable is the recipient marked dsn_sent;
 *   2. otherwise an attempt: the pending recipients are grouped by next
 *      hop (the local transport, or a remote domain after aliases), each
 *      group becomes a job of a transport, and an alias with several
 *      targets becomes a copy of the message for them (made by the
 *      queue's writer; the recipient is "expanded" only once the copy is
 *      durable);
 *   3. when every job and copy has ended, the outcomes go to the queue as
 *      one delta; once it is durable the committed message has them, and
 *      1 runs again (a DSN), or the message leaves the queue (every
 *      recipient final, nothing owed), or the timer is set for the next
 *      attempt per retry_schedule.
 *
 * A failed write (a full disk) loses nothing: outcomes not durable are
 * found again by the next attempt (the recipient is tried again: at
 * least once), duties not done stay in the committed state.
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
#include "common/workers.h"
#include "delivery/alias.h"
#include "delivery/delivery_int.h"
#include "delivery/reply.h"
#include "msgtrk/buf.h"
#include "msgtrk/str.h"
#include "queue/queue.h"

/* Seconds before trying again after a failed queue write. */
#define DELIVERY_WRITE_RETRY 60

enum dl_phase {
	DL_IDLE, /* the timer is set (or the daemon stops) */
	DL_ATTEMPT, /* jobs and copies running */
	DL_COMMIT, /* the delta is being made durable */
	DL_DUTIES, /* DSNs being made */
	DL_FINISH, /* the DONE is being made durable */
};

/* An attempt's outcome for one recipient (not yet durable). */
struct dl_out {
	int set;
	enum store_action action;
	char status[STORE_STATUS_MAX + 1];
	char *remote_mta; /* NULL: keep the committed one */
	char *reply; /* NULL: keep the committed one */
	time_t last_attempt;
	int dsn_passed; /* a DSN hop took over the DSN duties */
};

/* A message the scheduler holds. */
struct dl_msg {
	struct delivery *dl;
	const struct queue_msg *m; /* the queue's committed copy */
	struct event *timer;
	enum dl_phase phase;
	time_t retry_at; /* after a failed write: not before this */
	struct delivery_job *jobs; /* of the attempt in flight */
	size_t njobs; /* still running */
	size_t nexpand; /* alias copies being written */
	struct dl_out *out; /* per recipient, this attempt */
	int attempted; /* some outcome is known */
	int aborted; /* some job was abandoned (SIGTERM) */
	/* duties in flight */
	size_t nbounce;
	unsigned char *dsn_done; /* per recipient: its DSN is durable */
	int delay_done;
	/* an operator's change, made when the message is idle */
	enum { OP_NONE, OP_HOLD, OP_RELEASE, OP_DELETE } op;
	void (*op_done)(void *, int, int);
	void *op_arg;
	TAILQ_ENTRY(dl_msg) entry;
};

struct delivery {
	struct delivery_deps deps;
	struct alias_table *aliases;
	struct alias_table *rcpts; /* local_recipients, or NULL */
	TAILQ_HEAD(dl_msgs, dl_msg) msgs;
	struct slots *slots;
	struct relay_cache *relay_cache;
	struct workers *maildir;
	const struct transport *local; /* maildir or lmtp */
	char lmtp_host[300];
	uint16_t lmtp_port;
	int stopping;
	struct delivery_stats stats;
};

void
delivery_stats(const struct delivery *dl, struct delivery_stats *out)
{
	*out = dl->stats;
}

static void dl_fire(evutil_socket_t, short, void *);
static void dl_commit(struct dl_msg *dm);
static void dl_next(struct dl_msg *dm);

const struct delivery_deps *
delivery_deps(const struct delivery *dl)
{
	return &dl->deps;
}

struct slots *
delivery_slots(struct delivery *dl)
{
	return dl->slots;
}

struct relay_cache *
delivery_relay_cache(struct delivery *dl)
{
	return dl->relay_cache;
}

struct workers *
delivery_maildir_pool(struct delivery *dl)
{
	return dl->maildir;
}

const char *
delivery_lmtp_host(const struct delivery *dl)
{
	return dl->lmtp_host;
}

uint16_t
delivery_lmtp_port(const struct delivery *dl)
{
	return dl->lmtp_port;
}

static int
dl_load(struct delivery *dl, struct alias_table **al_out,
    struct alias_table **rc_out, char *err, size_t errsize)
{
	const struct conf *c = dl->deps.conf;
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

/* local_transport: "maildir" or "lmtp:HOST:PORT". */
static int
dl_transport(struct delivery *dl, char *err, size_t errsize)
{
	const char *lt = dl->deps.conf->local_transport, *p, *colon;
	unsigned long port;
	char *end;

	if (lt == NULL || strncmp(lt, "lmtp:", 5) != 0) {
		dl->local = &transport_maildir;
		return 0;
	}
	p = lt + 5;
	colon = strrchr(p, ':');
	if (colon == NULL || colon == p ||
	    (size_t)(colon - p) >= sizeof(dl->lmtp_host)) {
		snprintf(err, errsize, "local_transport %s: no port", lt);
		return -1;
	}
	memcpy(dl->lmtp_host, p, (size_t)(colon - p));
	dl->lmtp_host[colon - p] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port == 0 || port > 65535 || errno) {
		snprintf(err, errsize, "local_transport %s: bad port", lt);
		return -1;
	}
	dl->lmtp_port = (uint16_t)port;
	dl->local = &transport_lmtp;
	return 0;
}

struct delivery *
delivery_new(const struct delivery_deps *deps, char *err, size_t errsize)
{
	struct delivery *dl;

	if ((dl = calloc(1, sizeof(*dl))) == NULL) {
		snprintf(err, errsize, "delivery: out of memory");
		return NULL;
	}
	dl->deps = *deps;
	TAILQ_INIT(&dl->msgs);
	if (dl_transport(dl, err, errsize) == -1 ||
	    dl_load(dl, &dl->aliases, &dl->rcpts, err, errsize) == -1) {
		free(dl);
		return NULL;
	}
	if ((dl->slots = slots_new(deps->base)) == NULL ||
	    (dl->relay_cache = relay_cache_new(dl->slots)) == NULL ||
	    (dl->local == &transport_maildir &&
	        (dl->maildir = workers_new(deps->base, "maildir",
	             DELIVERY_MAILDIR_THREADS, NULL, NULL, err, errsize)) ==
	            NULL)) {
		if (dl->slots == NULL || dl->relay_cache == NULL)
			snprintf(err, errsize, "delivery: out of memory");
		relay_cache_free(dl->relay_cache);
		slots_free(dl->slots);
		alias_free(dl->aliases);
		alias_free(dl->rcpts);
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
	/* Jobs in flight copied their targets (dl_job_add). */
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

void
delivery_rcpt_set(struct delivery_rcpt *r, int code, const char *status,
    const char *text, size_t n)
{
	r->code = code;
	str_copy(r->status, status != NULL ? status : "", sizeof(r->status));
	/* The whole reply (reply.h: every line, at most REPLY_TEXT_MAX);
	 * DELIVERY_REPLY_MAX leaves room for the escapes of a few octets. */
	if (n > REPLY_TEXT_MAX)
		n = REPLY_TEXT_MAX;
	str_printable(r->reply, sizeof(r->reply), text, n);
}

/* --- what the committed state owes ----------------------------------- */

/* The DSN kind a final recipient asks for (RFC 3461 §6.2), or -1. */
static int
dl_dsn_kind(const struct queue_msg *m, const struct queue_rcpt *qr)
{
	enum store_action a = qr->track.action;

	if (m->sender[0] == '\0' || !qr->final || qr->dsn_sent ||
	    (qr->notify & QUEUE_NOTIFY_NEVER))
		return -1; /* no DSN about a DSN (RFC 3461 §6.1) */
	/* transferred to a hop without DSN: the relayed DSN is still ours
	 * (RFC 3461 §5.2.2); a DSN hop took it over (dsn_sent). */
	if (a == STORE_ACTION_TRANSFERRED)
		a = STORE_ACTION_RELAYED;
	if (a == STORE_ACTION_FAILED)
		return qr->notify == 0 || (qr->notify & QUEUE_NOTIFY_FAILURE)
		    ? (int)a
		    : -1;
	if (a == STORE_ACTION_DELIVERED || a == STORE_ACTION_RELAYED ||
	    a == STORE_ACTION_EXPANDED)
		return (qr->notify & QUEUE_NOTIFY_SUCCESS) ? (int)a : -1;
	return -1;
}

/* 1 if a delay DSN is due for recipient qr (one per message). */
static int
dl_delay_due(const struct delivery *dl, const struct queue_msg *m,
    const struct queue_rcpt *qr, time_t now)
{
	return m->sender[0] != '\0' && !m->delay_warned && !qr->final &&
	    qr->track.action == STORE_ACTION_DELAYED &&
	    (qr->notify & QUEUE_NOTIFY_DELAY) &&
	    !(qr->notify & QUEUE_NOTIFY_NEVER) &&
	    now >= m->arrival + dl->deps.conf->delay_warning;
}

static int
dl_owes(const struct dl_msg *dm)
{
	const struct queue_msg *m = dm->m;
	time_t now = time(NULL);
	size_t i;

	for (i = 0; i < m->nrcpt; i++)
		if (dl_dsn_kind(m, &m->rcpts[i]) != -1 ||
		    dl_delay_due(dm->dl, m, &m->rcpts[i], now))
			return 1;
	return 0;
}

static int
dl_all_final(const struct queue_msg *m)
{
	size_t i;

	for (i = 0; i < m->nrcpt; i++)
		if (!m->rcpts[i].final)
			return 0;
	return 1;
}

/* --- scheduling ------------------------------------------------------- */

static void dl_op(struct dl_msg *dm);

static void
dl_arm(struct dl_msg *dm)
{
	struct timeval tv = { 0, 0 };
	time_t now = time(NULL), at = dm->m->next_attempt;

	dm->phase = DL_IDLE;
	if (dm->op != OP_NONE) {
		dl_op(dm);
		return;
	}
	if (dm->dl->stopping || dm->m->held) {
		evtimer_del(dm->timer);
		return;
	}
	if (dm->retry_at > at)
		at = dm->retry_at;
	/* Something owed, or nothing left to try: at once. */
	if (dl_owes(dm) || dl_all_final(dm->m))
		at = dm->retry_at > now ? dm->retry_at : now;
	if (at > now)
		tv.tv_sec = at - now;
	if (evtimer_add(dm->timer, &tv) == -1)
		log_warnx("%s delivery timer error", dm->m->qid);
}

void
delivery_schedule(struct delivery *dl, const struct queue_msg *m)
{
	struct dl_msg *dm;

	if ((dm = calloc(1, sizeof(*dm))) == NULL)
		fatal("delivery_schedule");
	dm->dl = dl;
	dm->m = m;
	if ((dm->timer = evtimer_new(dl->deps.base, dl_fire, dm)) == NULL)
		fatalx("delivery_schedule: evtimer_new");
	TAILQ_INSERT_TAIL(&dl->msgs, dm, entry);
	dl_arm(dm);
}

static void
dl_msg_free(struct dl_msg *dm)
{
	TAILQ_REMOVE(&dm->dl->msgs, dm, entry);
	event_free(dm->timer);
	free(dm->out);
	free(dm->dsn_done);
	free(dm);
}

static void
dl_out_clear(struct dl_msg *dm)
{
	size_t i;

	if (dm->out == NULL)
		return;
	for (i = 0; i < dm->m->nrcpt; i++) {
		free(dm->out[i].remote_mta);
		free(dm->out[i].reply);
	}
	free(dm->out);
	dm->out = NULL;
}

/* A queue write failed: nothing of it happened; again a bit later. */
static void
dl_write_failed(struct dl_msg *dm, const char *what, int err)
{
	log_warnx(
	    "%s delivery %s error=\"%s\"", dm->m->qid, what, strerror(err));
	dm->retry_at = time(NULL) + DELIVERY_WRITE_RETRY;
	dl_arm(dm);
}

static void
dl_finished(void *arg, int rc, int err)
{
	struct dl_msg *dm = arg;

	if (rc == -1) {
		dl_write_failed(dm, "finish", err);
		return;
	}
	log_info("%s delivery done", dm->m->qid);
	dm->dl->stats.finished++;
	dl_msg_free(dm);
}

static void
dl_finish(struct dl_msg *dm)
{
	dm->phase = DL_FINISH;
	if (queue_finish(dm->dl->deps.queue, dm->m, dl_finished, dm) == -1)
		dl_write_failed(dm, "finish", errno);
}

/* --- outcomes ---------------------------------------------------------- */

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

static void
dl_log(const struct dl_msg *dm, uint32_t idx, const struct dl_out *o,
    const char *relay)
{
	const struct queue_rcpt *qr = &dm->m->rcpts[idx];
	const char *rep = o->reply != NULL ? o->reply : "";
	char to[128], reply[3 * REPLY_TEXT_MAX];

	log_escape(to, sizeof(to), qr->addr, strlen(qr->addr));
	log_escape(reply, sizeof(reply), rep, strlen(rep));
	log_info("%s delivery attempt to=%s relay=%s action=%s status=%s "
	         "reply=\"%s\"",
	    dm->m->qid, to, relay, store_action_name(o->action),
	    o->status[0] ? o->status : "-", reply);
}

/* Records an outcome of this attempt (durable with the delta). */
static void
dl_outcome(struct dl_msg *dm, uint32_t idx, enum store_action action,
    const char *status, const char *remote_mta, const char *reply,
    const char *relay)
{
	struct dl_out *o = &dm->out[idx];

	free(o->remote_mta);
	free(o->reply);
	o->set = 1;
	o->action = action;
	str_copy(o->status, status, sizeof(o->status));
	o->last_attempt = time(NULL);
	o->remote_mta = remote_mta != NULL && remote_mta[0] != '\0'
	    ? dl_strdup(remote_mta)
	    : NULL;
	o->reply = reply != NULL && reply[0] != '\0' ? dl_strdup(reply) : NULL;
	o->dsn_passed = 0;
	dm->attempted = 1;
	if ((size_t)action <
	    sizeof(dm->dl->stats.outcomes) / sizeof(dm->dl->stats.outcomes[0]))
		dm->dl->stats.outcomes[action]++;
	dl_log(dm, idx, o, relay);
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
	relay = j->remote_mta[0]        ? j->remote_mta + 5
	    : j->tp != &transport_relay ? "local"
	                                : "-";
	if (j->aborted)
		dm->aborted = 1;
	for (i = 0; i < j->nr && !j->aborted; i++) {
		r = &j->r[i];
		if (r->code == 0)
			delivery_rcpt_set(
			    r, 0, "4.4.1", j->error, strlen(j->error));
		if (r->code >= 200 && r->code < 300) {
			dl_outcome(dm, r->idx, r->action,
			    r->status[0] ? r->status : "2.0.0", j->remote_mta,
			    r->reply, relay);
			dm->out[r->idx].dsn_passed = r->dsn_passed;
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
	if (--dm->njobs == 0 && dm->nexpand == 0)
		dl_commit(dm);
}

/* --- alias expansion ---------------------------------------------------- */

/* The members of a multi-target alias get a copy of the message without
 * MTRK (RFC 3885 §9 choice (c) of RFC 3461 §5.2.7.3: ENVID, RET and ORCPT
 * go to every member, NOTIFY minus SUCCESS).  The recipient is expanded
 * only once the copy is durable. */
struct dl_expand {
	struct dl_msg *dm;
	uint32_t idx;
	struct queue_msg *m;
};

static void
dl_expand_done(void *arg, int rc, int err)
{
	struct dl_expand *x = arg;
	struct dl_msg *dm = x->dm;

	if (rc == -1) {
		log_warnx("%s delivery expand error=\"%s\"", dm->m->qid,
		    strerror(err));
		queue_msg_free(x->m);
		dl_outcome(dm, x->idx, STORE_ACTION_DELAYED, "4.3.0", NULL,
		    "alias expansion failed", "local");
	} else {
		log_info("%s delivery queued members=%zu qid=%s", dm->m->qid,
		    x->m->nrcpt, x->m->qid);
		delivery_schedule(dm->dl, x->m);
		dl_outcome(dm, x->idx, STORE_ACTION_EXPANDED, "2.0.0", NULL,
		    NULL, "local");
	}
	free(x);
	if (--dm->nexpand == 0 && dm->njobs == 0)
		dl_commit(dm);
}

static int
dl_expand(struct dl_msg *dm, uint32_t idx, const char *const *tg, size_t n)
{
	const struct queue_msg *o = dm->m;
	const struct queue_rcpt *qr = &o->rcpts[idx];
	struct dl_expand *x;
	struct queue_msg *m;
	char rcpt[600];
	size_t i;

	if ((x = calloc(1, sizeof(*x))) == NULL ||
	    (m = calloc(1, sizeof(*m))) == NULL ||
	    (m->rcpts = calloc(n, sizeof(*m->rcpts))) == NULL)
		fatal("delivery");
	x->dm = dm;
	x->idx = idx;
	x->m = m;
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
	if (queue_submit_copy(dm->dl->deps.queue, m, o, dl_expand_done, x) ==
	    -1) {
		log_warn("%s delivery expand submit", o->qid);
		queue_msg_free(m);
		free(x);
		return -1;
	}
	dm->nexpand++;
	return 0;
}

/* --- an attempt ------------------------------------------------------- */

static const char *
dl_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

/* The job for (transport, domain), created as needed. */
static struct delivery_job *
dl_job(struct dl_msg *dm, const struct transport *tp, const char *domain)
{
	struct delivery_job *j;

	for (j = dm->jobs; j != NULL; j = j->next)
		if (j->tp == tp &&
		    (tp != &transport_relay ||
		        str_casecmp(j->domain, domain) == 0))
			return j;
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->r = calloc(dm->m->nrcpt, sizeof(*j->r))) == NULL)
		fatal("delivery job");
	j->dl = dm->dl;
	j->m = dm->m;
	j->owner = dm;
	j->tp = tp;
	if (tp == &transport_relay &&
	    str_copy(j->domain, domain, sizeof(j->domain)) >= sizeof(j->domain))
		j->domain[0] = '\0'; /* route_lookup refuses it */
	j->next = dm->jobs;
	dm->jobs = j;
	return j;
}

static void
dl_job_add(struct delivery_job *j, uint32_t idx, const char *addr)
{
	j->r[j->nr].idx = idx;
	j->r[j->nr].addr = dl_strdup(addr);
	j->nr++;
}

static void dl_duties(struct dl_msg *dm);

static void
dl_attempt(struct dl_msg *dm)
{
	struct delivery *dl = dm->dl;
	const struct conf *c = dl->deps.conf;
	const struct queue_msg *m = dm->m;
	const struct queue_rcpt *qr;
	struct delivery_job *j, *next;
	const char *const *tg;
	const char *addr, *dom;
	time_t now = time(NULL);
	size_t i, n;
	int expired;

	dm->phase = DL_ATTEMPT;
	dm->attempted = 0;
	dm->aborted = 0;
	if ((dm->out = calloc(m->nrcpt, sizeof(*dm->out))) == NULL)
		fatal("delivery");
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
			dl_job_add(dl_job(dm, &transport_relay, dom),
			    (uint32_t)i, addr);
			continue;
		}
		if (alias_lookup(dl->aliases, addr, &tg, &n) == 1) {
			if (n > 1) {
				/* Several targets: expanded, the members
				 * never in this record (RFC 3886 §4.2). */
				if (dl_expand(dm, (uint32_t)i, tg, n) == -1)
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
				dl_job_add(dl_job(dm, &transport_relay, dom),
				    (uint32_t)i, addr);
				continue;
			}
		} else if (dl->rcpts != NULL &&
		    alias_lookup(dl->rcpts, addr, NULL, NULL) != 1) {
			dl_outcome(dm, (uint32_t)i, STORE_ACTION_FAILED,
			    "5.1.1", NULL, "No such local recipient", "local");
			continue;
		}
		dl_job_add(dl_job(dm, dl->local, ""), (uint32_t)i, addr);
	}
	dm->njobs = 1; /* held while starting, so no job completes us */
	for (j = dm->jobs; j != NULL; j = next) {
		next = j->next;
		dm->njobs++;
		if (j->tp->start(j) == -1)
			delivery_job_done(j);
	}
	if (--dm->njobs == 0 && dm->nexpand == 0)
		dl_commit(dm);
}

static void
dl_fire(evutil_socket_t fd, short ev, void *arg)
{
	struct dl_msg *dm = arg;

	(void)fd;
	(void)ev;
	if (dm->dl->stopping || dm->phase != DL_IDLE || dm->m->held)
		return;
	dm->retry_at = 0;
	if (dl_owes(dm))
		dl_duties(dm);
	else if (dl_all_final(dm->m))
		dl_finish(dm);
	else
		dl_attempt(dm);
}

/* --- the delta -------------------------------------------------------- */

static void
dl_committed(void *arg, int rc, int err)
{
	struct dl_msg *dm = arg;

	dl_out_clear(dm);
	if (rc == -1) {
		dl_write_failed(dm, "update", err);
		return;
	}
	dl_next(dm);
}

/* What comes after a durable change: duties, the end, or a timer. */
static void
dl_next(struct dl_msg *dm)
{
	dm->phase = DL_IDLE;
	if (dm->op != OP_NONE && !dm->dl->stopping) {
		dl_op(dm);
		return;
	}
	if (dm->dl->stopping)
		return; /* duties stay owed; the restart does them */
	if (dl_owes(dm))
		dl_duties(dm);
	else if (dl_all_final(dm->m))
		dl_finish(dm);
	else
		dl_arm(dm);
}

/* The next attempt per retry_schedule (the last interval repeats), never
 * past the end of the queue lifetime, so expiry is reported on time. */
static time_t
dl_next_attempt(const struct conf *c, const struct queue_msg *m,
    uint32_t attempts, time_t now)
{
	size_t k = attempts > 0 ? attempts - 1 : 0;
	time_t next, end = m->arrival + c->queue_lifetime;

	if (c->n_retry_schedule == 0)
		next = now + 300;
	else
		next = now +
		    c->retry_schedule[k < c->n_retry_schedule
		            ? k
		            : c->n_retry_schedule - 1];
	if (next > end)
		next = end > now ? end : now + 1;
	return next;
}

/* The attempt ended: its outcomes go to the queue as one delta. */
static void
dl_commit(struct dl_msg *dm)
{
	const struct conf *c = dm->dl->deps.conf;
	const struct queue_msg *m = dm->m;
	struct queue_rcpt_update *r;
	struct queue_update u;
	time_t now = time(NULL);
	size_t i, n = 0;

	if (!dm->attempted) {
		/* Nothing was tried (every job aborted by SIGTERM). */
		dl_out_clear(dm);
		dm->phase = DL_IDLE;
		if (!dm->dl->stopping)
			dl_arm(dm);
		return;
	}
	if ((r = calloc(m->nrcpt, sizeof(*r))) == NULL)
		fatal("delivery");
	for (i = 0; i < m->nrcpt; i++) {
		const struct dl_out *o = &dm->out[i];
		const struct queue_rcpt *qr = &m->rcpts[i];

		if (!o->set)
			continue;
		r[n].track = qr->track;
		r[n].track.idx = (uint32_t)i;
		r[n].track.action = o->action;
		str_copy(
		    r[n].track.status, o->status, sizeof(r[n].track.status));
		r[n].track.last_attempt = o->last_attempt;
		if (o->remote_mta != NULL)
			r[n].track.remote_mta = o->remote_mta;
		if (o->reply != NULL)
			r[n].track.reply = o->reply;
		if (o->action == STORE_ACTION_DELAYED) {
			r[n].track.will_retry_until =
			    m->arrival + c->queue_lifetime;
			r[n].final = 0;
		} else {
			r[n].track.will_retry_until = 0;
			r[n].final = 1;
		}
		r[n].dsn_sent = qr->dsn_sent || o->dsn_passed;
		n++;
	}
	memset(&u, 0, sizeof(u));
	if (dm->aborted) {
		/* SIGTERM cut the attempt short: what it learnt is kept,
		 * and the rest is tried again as soon as the daemon is
		 * back, as if this attempt had not been made. */
		u.attempts = m->attempts;
		u.next_attempt = now;
	} else {
		u.attempts = m->attempts + 1;
		u.next_attempt = dl_next_attempt(c, m, u.attempts, now);
	}
	u.delay_warned = m->delay_warned;
	u.held = m->held;
	u.n = n;
	u.r = r;
	dm->phase = DL_COMMIT;
	dm->dl->stats.attempts++;
	if (queue_update(dm->dl->deps.queue, m, &u, dl_committed, dm) == -1) {
		int e = errno;

		free(r);
		dl_out_clear(dm);
		dl_write_failed(dm, "update", e);
		return;
	}
	free(r); /* the queue copied it */
}

/* --- duties: DSNs ------------------------------------------------------ */

struct dl_bounce {
	struct dl_msg *dm;
	int kind; /* enum store_action */
	size_t n;
	uint32_t idx[];
};

static void
dl_duties_done(struct dl_msg *dm)
{
	const struct queue_msg *m = dm->m;
	struct queue_rcpt_update *r;
	struct queue_update u;
	size_t i, n = 0;

	if ((r = calloc(m->nrcpt + 1, sizeof(*r))) == NULL)
		fatal("delivery");
	for (i = 0; i < m->nrcpt; i++) {
		if (!dm->dsn_done[i])
			continue;
		r[n].track = m->rcpts[i].track;
		r[n].track.idx = (uint32_t)i;
		r[n].final = m->rcpts[i].final;
		r[n].dsn_sent = 1;
		n++;
	}
	free(dm->dsn_done);
	dm->dsn_done = NULL;
	if (n == 0 && !dm->delay_done) {
		/* No DSN could be made: again later. */
		free(r);
		dm->retry_at = time(NULL) + DELIVERY_WRITE_RETRY;
		dl_arm(dm);
		return;
	}
	memset(&u, 0, sizeof(u));
	u.attempts = m->attempts;
	u.next_attempt = m->next_attempt;
	u.delay_warned = m->delay_warned || dm->delay_done;
	u.held = m->held;
	u.n = n;
	u.r = r;
	dm->phase = DL_COMMIT;
	if (queue_update(dm->dl->deps.queue, m, &u, dl_committed, dm) == -1)
		dl_write_failed(dm, "update", errno);
	free(r);
}

static void
dl_bounced(void *arg, int rc)
{
	struct dl_bounce *b = arg;
	struct dl_msg *dm = b->dm;
	size_t i;

	if (rc == 0) {
		dm->dl->stats.dsns++;
		if (b->kind == STORE_ACTION_DELAYED)
			dm->delay_done = 1;
		else
			for (i = 0; i < b->n; i++)
				dm->dsn_done[b->idx[i]] = 1;
	}
	free(b);
	if (--dm->nbounce == 0)
		dl_duties_done(dm);
}

/* Sends the DSNs the committed state owes (RFC 3461 §6.2): failure unless
 * NOTIFY excludes it, success for delivered/expanded, "relayed" for
 * relayed or transferred to a hop without DSN, and one delay DSN past
 * delay_warning. */
static void
dl_duties(struct dl_msg *dm)
{
	static const enum store_action kinds[] = {
		STORE_ACTION_FAILED,
		STORE_ACTION_DELAYED,
		STORE_ACTION_DELIVERED,
		STORE_ACTION_RELAYED,
		STORE_ACTION_EXPANDED,
	};
	const struct queue_msg *m = dm->m;
	time_t now = time(NULL);
	struct dl_bounce *b;
	size_t i, k;

	dm->phase = DL_DUTIES;
	dm->delay_done = 0;
	if ((dm->dsn_done = calloc(m->nrcpt, 1)) == NULL)
		fatal("delivery");
	dm->nbounce = 1; /* held while starting */
	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		if ((b = calloc(1, sizeof(*b) + m->nrcpt * sizeof(uint32_t))) ==
		    NULL)
			fatal("delivery");
		b->dm = dm;
		b->kind = (int)kinds[k];
		for (i = 0; i < m->nrcpt; i++) {
			const struct queue_rcpt *qr = &m->rcpts[i];

			if (kinds[k] == STORE_ACTION_DELAYED
			        ? dl_delay_due(dm->dl, m, qr, now)
			        : dl_dsn_kind(m, qr) == (int)kinds[k])
				b->idx[b->n++] = (uint32_t)i;
		}
		if (b->n == 0) {
			free(b);
			continue;
		}
		dm->nbounce++;
		if (bounce_send(dm->dl, m, b->idx, b->n, kinds[k], dl_bounced,
		        b) == -1) {
			dm->nbounce--; /* logged; owed again later */
			free(b);
		}
	}
	if (--dm->nbounce == 0)
		dl_duties_done(dm);
}

/* --- the operator's changes ------------------------------------------ */

static struct dl_msg *
dl_find(struct delivery *dl, const char *qid)
{
	struct dl_msg *dm;

	TAILQ_FOREACH(dm, &dl->msgs, entry)
	if (strcmp(dm->m->qid, qid) == 0)
		return dm;
	return NULL;
}

int
delivery_flush(struct delivery *dl, const char *qid)
{
	struct dl_msg *dm;
	struct timeval now = { 0, 0 };
	int n = 0;

	if (qid != NULL && (dm = dl_find(dl, qid)) == NULL) {
		errno = ENOENT;
		return -1;
	}
	if (qid != NULL && dm->m->held) {
		errno = EPERM;
		return -1;
	}
	for (dm = TAILQ_FIRST(&dl->msgs); dm != NULL;
	     dm = TAILQ_NEXT(dm, entry)) {
		if (qid != NULL && strcmp(dm->m->qid, qid) != 0)
			continue;
		if (dm->phase != DL_IDLE || dm->m->held || dl->stopping)
			continue;
		dm->retry_at = 0;
		if (evtimer_add(dm->timer, &now) == 0)
			n++;
	}
	return n;
}

static void
dl_op_done(void *arg, int rc, int err)
{
	struct dl_msg *dm = arg;
	void (*done)(void *, int, int) = dm->op_done;
	void *darg = dm->op_arg;

	dm->op = OP_NONE;
	dm->op_done = NULL;
	if (rc == -1)
		log_warnx("%s delivery control error=\"%s\"", dm->m->qid,
		    strerror(err));
	done(darg, rc, err);
	if (rc == -1)
		dl_write_failed(dm, "control", err);
	else
		dl_next(dm);
}

/* Makes the pending change (the message is idle). */
static void
dl_op(struct dl_msg *dm)
{
	const struct queue_msg *m = dm->m;
	struct queue_rcpt_update *r;
	struct queue_update u;
	time_t now = time(NULL);
	size_t i, n = 0;

	evtimer_del(dm->timer);
	if ((r = calloc(m->nrcpt + 1, sizeof(*r))) == NULL)
		fatal("delivery");
	memset(&u, 0, sizeof(u));
	u.attempts = m->attempts;
	u.next_attempt = m->next_attempt;
	u.delay_warned = m->delay_warned;
	u.held = dm->op == OP_HOLD ? 1 : dm->op == OP_RELEASE ? 0 : m->held;
	if (dm->op == OP_RELEASE)
		u.next_attempt = now;
	if (dm->op == OP_DELETE) {
		/* RFC 3463 5.0.0: other or undefined status; no DSN for
		 * anyone (dsn_sent), the tracking records updated. */
		for (i = 0; i < m->nrcpt; i++) {
			const struct queue_rcpt *qr = &m->rcpts[i];

			r[n].track = qr->track;
			r[n].track.idx = (uint32_t)i;
			r[n].final = 1;
			r[n].dsn_sent = 1;
			if (!qr->final) {
				r[n].track.action = STORE_ACTION_FAILED;
				str_copy(r[n].track.status, "5.0.0",
				    sizeof(r[n].track.status));
				r[n].track.reply = "deleted by the operator";
				r[n].track.last_attempt = now;
				r[n].track.will_retry_until = 0;
			}
			n++;
		}
		u.held = 0;
	}
	u.n = n;
	u.r = r;
	log_info("%s delivery control op=%s", m->qid,
	    dm->op == OP_HOLD          ? "hold"
	        : dm->op == OP_RELEASE ? "release"
	                               : "delete");
	dm->phase = DL_COMMIT;
	if (queue_update(dm->dl->deps.queue, m, &u, dl_op_done, dm) == -1)
		dl_op_done(dm, -1, errno);
	free(r);
}

static int
dl_ask(struct delivery *dl, const char *qid, int op,
    void (*done)(void *, int, int), void *arg)
{
	struct dl_msg *dm = dl_find(dl, qid);

	if (dm == NULL || dm->phase == DL_FINISH) {
		errno = ENOENT;
		return -1;
	}
	if (dm->op != OP_NONE || dl->stopping) {
		errno = EBUSY;
		return -1;
	}
	dm->op = op;
	dm->op_done = done;
	dm->op_arg = arg;
	if (dm->phase == DL_IDLE)
		dl_op(dm);
	/* else: when the attempt (or write) in flight ends */
	return 0;
}

int
delivery_hold(struct delivery *dl, const char *qid, int hold,
    void (*done)(void *, int, int), void *arg)
{
	return dl_ask(dl, qid, hold ? OP_HOLD : OP_RELEASE, done, arg);
}

int
delivery_delete(struct delivery *dl, const char *qid,
    void (*done)(void *, int, int), void *arg)
{
	return dl_ask(dl, qid, OP_DELETE, done, arg);
}

/* --- stopping ---------------------------------------------------------- */

size_t
delivery_stop(struct delivery *dl)
{
	struct dl_msg *dm;
	struct delivery_job *j, *next;
	size_t running = 0;

	if (!dl->stopping) {
		dl->stopping = 1;
		relay_cache_flush(dl->relay_cache);
		TAILQ_FOREACH(dm, &dl->msgs, entry)
		{
			evtimer_del(dm->timer);
			/* A transport that can stop (a connection) marks
			 * its job aborted: its recipients stay as they were.
			 * One that cannot (a Maildir write under way) ends
			 * with its outcomes, which are kept: otherwise they
			 * are delivered again after the restart. */
			for (j = dm->jobs; j != NULL; j = next) {
				next = j->next;
				j->tp->abort(j);
			}
		}
	}
	/* What is still on its way: connections and Maildir writes, and
	 * the queue writes that make finished outcomes durable. */
	TAILQ_FOREACH(dm, &dl->msgs, entry)
	running += dm->njobs + dm->nexpand + dm->nbounce +
	    (dm->phase == DL_COMMIT || dm->phase == DL_FINISH);
	return running;
}

void
delivery_free(struct delivery *dl)
{
	struct dl_msg *dm;

	if (dl == NULL)
		return;
	(void)delivery_stop(dl);
	/* Maildir writes still running finish (their jobs end here). */
	workers_free(dl->maildir);
	dl->maildir = NULL;
	while ((dm = TAILQ_FIRST(&dl->msgs)) != NULL) {
		struct delivery_job *j;

		while ((j = dm->jobs) != NULL) {
			dm->jobs = j->next;
			dl_job_free(j);
		}
		dl_out_clear(dm);
		dl_msg_free(dm);
	}
	relay_cache_free(dl->relay_cache);
	slots_free(dl->slots);
	alias_free(dl->aliases);
	alias_free(dl->rcpts);
	free(dl);
}
