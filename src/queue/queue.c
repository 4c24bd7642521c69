/*
 * queue: the public API and the completions on the loop thread (see
 * queue.h for the model, queue_internal.h for how the files divide it).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "common/conf.h"
#include "common/log.h"
#include "common/workers.h"
#include "msgtrk/buf.h"
#include "msgtrk/str.h"
#include "queue/queue_internal.h"

_Static_assert(QUEUE_MESSAGE_MAX == CONF_MESSAGE_SIZE_MAX,
    "max_message_size is checked against the queue's limit");

/* Threads reading bodies for the loop (queue_body_read). */
#define QUEUE_IO_THREADS 2

static int
mark_before(const struct qmark *a, const struct qmark *b)
{
	return a->seg < b->seg || (a->seg == b->seg && a->off < b->off);
}

void
queue_wake_loop(struct queue *q)
{
	uint64_t one = 1;

	/* Cannot fail short of a broken descriptor: the counter saturates
	 * only after 2^64-2 wake-ups. */
	if (write(q->efd, &one, sizeof(one)) != sizeof(one))
		abort();
}

void
queue_new_id(char out[QUEUE_ID_LEN + 1])
{
	static const char b62[] =
	    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	struct timeval tv;
	unsigned char rnd[5];
	uint64_t us;
	int i;

	gettimeofday(&tv, NULL);
	us = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
	/* 11 base62 digits of the clock: ids sort by arrival */
	for (i = 10; i >= 0; i--) {
		out[i] = b62[us % 62];
		us /= 62;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd)); /* the clock still differs */
	for (i = 0; i < 5; i++)
		out[11 + i] = b62[rnd[i] % 62];
	out[QUEUE_ID_LEN] = '\0';
}

const uint64_t queue_latency_bounds_us[QUEUE_LATENCY_BUCKETS - 1] = {
	500,
	1000,
	2000,
	5000,
	10000,
	25000,
	50000,
	100000,
	250000,
	1000000,
	5000000,
};

/* --- completions (loop thread) --------------------------------------- */

/* Counts a durable (or failed) request's latency. */
static void
latency(struct queue *q, const struct qreq *r)
{
	struct timespec now;
	uint64_t us;
	size_t i;

	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (uint64_t)(now.tv_sec - r->born.tv_sec) * 1000000 +
	    (uint64_t)((now.tv_nsec - r->born.tv_nsec) / 1000);
	for (i = 0; i < QUEUE_LATENCY_BUCKETS - 1; i++)
		if (us <= queue_latency_bounds_us[i])
			break;
	pthread_mutex_lock(&q->mtx);
	q->stats.commits++;
	q->stats.commit_us += us;
	q->stats.commit_buckets[i]++;
	pthread_mutex_unlock(&q->mtx);
}

static void
seen(struct queue *q, const struct journal_pos *p)
{
	index_seen(&q->ix, p->seg, p->off + p->len + JOURNAL_TRAILER_LEN);
	if (p->seg > q->newest_seen)
		q->newest_seen = p->seg;
}

static void
copy_unpin(struct queue *q, struct qreq *r)
{
	if (!r->copy_pinned)
		return;
	index_pin(&q->ix, &r->copy.inl, 1, -1);
	index_pin(&q->ix, r->copy.chunk, r->copy.nchunk, -1);
	r->copy_pinned = 0;
}

/* A SUBMIT that will not be written (its spool failed). */
static void
submit_fail(struct queue *q, struct qreq *r, int err)
{
	copy_unpin(q, r);
	index_unreserve(&q->ix);
	spool_release(r->spool);
	r->spool = NULL;
	if (r->done != NULL)
		r->done(r->arg, -1, err);
	qreq_free(r);
}

static void
complete_submit(struct queue *q, struct qreq *r)
{
	struct queue_msg *m = r->m;

	copy_unpin(q, r);
	if (r->rc == 0) {
		uint32_t i;

		seen(q, &r->pos);
		for (i = 0; i < r->body.nchunk; i++)
			seen(q, &r->body.chunk[i]);
		free(m->body.chunk);
		m->body = r->body;
		r->body.chunk = NULL;
		(void)index_add(&q->ix, m, r->entry); /* reserved: no fail */
		r->entry = NULL;
	} else
		index_unreserve(&q->ix);
	spool_release(r->spool);
	r->spool = NULL;
	if (r->done != NULL)
		r->done(r->arg, r->rc, r->err);
}

static void
complete_update(struct queue *q, struct qreq *r)
{
	struct qentry *e = index_find(&q->ix, r->qid);

	if (e != NULL) {
		e->pending--;
		if (r->rc == 0) {
			seen(q, &r->pos);
			/* The record is durable: the committed copy follows,
			 * or it would differ from what a replay builds. */
			if (record_update_apply(e->m, r->upd) == -1)
				fatalx(
				    "queue: out of memory applying %s", r->qid);
		}
	}
	if (r->done != NULL)
		r->done(r->arg, r->rc, r->err);
}

static void
complete_finish(struct queue *q, struct qreq *r)
{
	struct qentry *e = index_find(&q->ix, r->qid);

	if (e != NULL)
		e->pending--;
	if (r->rc == 0)
		seen(q, &r->pos);
	else if (e != NULL)
		e->finishing = 0;
	if (r->done != NULL)
		r->done(r->arg, r->rc, r->err);
	if (r->rc == 0 && (e = index_remove(&q->ix, r->qid)) != NULL) {
		queue_msg_free(e->m);
		free(e);
	}
}

static void
complete_relocate(struct queue *q, struct qreq *r)
{
	struct qentry *e = index_find(&q->ix, r->qid);

	q->relocating--;
	if (e == NULL)
		return; /* cannot happen: a DONE comes after the copy */
	e->relocating = 0;
	if (r->rc != 0) {
		log_warnx(
		    "%s queue relocate error=\"%s\"", r->qid, strerror(r->err));
		return;
	}
	seen(q, &r->pos);
	{
		uint32_t i;

		for (i = 0; i < r->body.nchunk; i++)
			seen(q, &r->body.chunk[i]);
	}
	index_live(&q->ix, e->m, -1);
	free(e->m->body.chunk);
	e->m->body = r->body;
	r->body.chunk = NULL;
	index_live(&q->ix, e->m, 1);
}

static void
complete_chunk(struct queue *q, struct qreq *r)
{
	struct queue_spool *sp = r->spool;
	struct qreq *submit;

	r->spool = NULL;
	if ((submit = spool_chunk_done(sp, r)) == NULL)
		return;
	/* The MSG waited for this last chunk. */
	if (spool_fill(submit->spool, submit) == -1) {
		submit_fail(q, submit, errno);
		return;
	}
	if (writer_enqueue(q, submit) == -1)
		submit_fail(q, submit, errno);
}

static void
fire_waiters(struct queue *q, int all_timeout)
{
	struct queue_store_waiter **pw = &q->waiters, *w;
	struct qmark applied;

	pthread_mutex_lock(&q->mtx);
	applied = q->applied;
	pthread_mutex_unlock(&q->mtx);
	while ((w = *pw) != NULL) {
		if (!all_timeout && mark_before(&applied, &w->want)) {
			pw = &w->next;
			continue;
		}
		*pw = w->next;
		event_free(w->timer);
		w->cb(w->arg, !all_timeout);
		free(w);
	}
}

static void
on_done(evutil_socket_t fd, short ev, void *arg)
{
	struct queue *q = arg;
	struct qreq *list, *r, *next;
	queue_done_cb pcb = NULL;
	void *parg = NULL;
	int prc = 0;

	(void)ev;
	if (fd != -1) {
		uint64_t n;

		(void)!read(fd, &n, sizeof(n)); /* EAGAIN: already reset */
	}
	pthread_mutex_lock(&q->mtx);
	list = q->done;
	q->done = NULL;
	q->done_tail = &q->done;
	q->durable_seen = q->durable;
	if (q->purge_done) {
		q->purge_done = 0;
		pcb = q->purge_cb;
		parg = q->purge_arg;
		prc = q->purge_rc;
		if (q->purge_out != NULL)
			*q->purge_out = q->purged;
		q->purge_cb = NULL;
	}
	pthread_mutex_unlock(&q->mtx);
	for (r = list; r != NULL; r = next) {
		next = r->next;
		if (r->kind == REQ_SUBMIT || r->kind == REQ_UPDATE ||
		    r->kind == REQ_FINISH)
			latency(q, r);
		switch (r->kind) {
		case REQ_SUBMIT:
			complete_submit(q, r);
			break;
		case REQ_CHUNK:
			complete_chunk(q, r);
			break;
		case REQ_UPDATE:
			complete_update(q, r);
			break;
		case REQ_FINISH:
			complete_finish(q, r);
			break;
		case REQ_RELOCATE:
			complete_relocate(q, r);
			break;
		case REQ_DROP:
			q->drop_inflight = 0;
			if (r->rc == 0)
				index_drop_oldest(&q->ix);
			else
				log_warnx("- queue drop error=\"%s\"",
				    strerror(r->err));
			break;
		}
		qreq_free(r);
	}
	if (pcb != NULL)
		pcb(parg, prc == 0 ? 0 : -1, prc == 0 ? 0 : EIO);
	if (q->waiters != NULL)
		fire_waiters(q, 0);
	compact_run(q);
}

static void
on_tick(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	compact_run(arg);
}

/* --- open and recover ------------------------------------------------ */

struct queue *
queue_open(struct event_base *base, const char *data_dir, struct store *store,
    const struct store_backend *backend, uint64_t segment_size, char *err,
    size_t errsize)
{
	struct queue *q;
	char path[4096];
	struct timeval sec = { 1, 0 };

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	q->base = base;
	q->store = store;
	q->be = backend;
	q->pending_tail = &q->pending;
	q->done_tail = &q->done;
	q->efd = -1;
	pthread_mutex_init(&q->mtx, NULL);
	pthread_cond_init(&q->cond, NULL);
	pthread_cond_init(&q->acond, NULL);
	clock_gettime(CLOCK_MONOTONIC, &q->compact_stamp);
	snprintf(path, sizeof(path), "%s/queue", data_dir);
	if ((q->dir = strdup(path)) == NULL ||
	    (q->j = journal_open(path, segment_size, err, errsize)) == NULL)
		goto fail;
	if ((q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (q->ev_done = event_new(
	         base, q->efd, EV_READ | EV_PERSIST, on_done, q)) == NULL ||
	    event_add(q->ev_done, NULL) == -1 ||
	    (q->tick = event_new(base, -1, EV_PERSIST, on_tick, q)) == NULL ||
	    event_add(q->tick, &sec) == -1) {
		snprintf(err, errsize, "queue: %s", strerror(errno));
		goto fail;
	}
	if ((q->io = workers_new(base, "queue-io", QUEUE_IO_THREADS, NULL, NULL,
	         err, errsize)) == NULL)
		goto fail;
	q->newest_seen = journal_newest(q->j);
	return q;
fail:
	if (q->dir == NULL)
		snprintf(err, errsize, "out of memory");
	queue_free(q);
	return NULL;
}

/* Replay: the live messages as the journal says. */
struct replay {
	struct qindex *ix;
	size_t applied, bad;
	/* qids seen in DONE records: a MSG record for one of them after
	 * its DONE (a relocation written behind the DONE by an earlier
	 * version) must not bring a delivered message back */
	char (*done)[QUEUE_ID_LEN + 1];
	size_t ndone, capdone;
};

static int
replay_is_done(const struct replay *rp, const char *qid)
{
	size_t i;

	for (i = 0; i < rp->ndone; i++)
		if (strcmp(rp->done[i], qid) == 0)
			return 1;
	return 0;
}

static int
replay_record(void *arg, uint8_t type, const void *p, uint32_t len,
    const struct journal_pos *pos)
{
	struct replay *rp = arg;
	char qid[QUEUE_ID_LEN + 1];
	struct queue_msg *m;
	struct qentry *e;

	rp->applied++;
	index_seen(rp->ix, pos->seg, pos->off + len + JOURNAL_TRAILER_LEN);
	switch (type) {
	case REC_MSG:
	case REC_MSG_V1:
		if ((m = calloc(1, sizeof(*m))) == NULL)
			return -1;
		if (record_msg_decode(p, len, pos, type, m) == -1) {
			free(m);
			rp->bad++;
			break;
		}
		if (rp->ndone > 0 && replay_is_done(rp, m->qid)) {
			queue_msg_free(m);
			rp->bad++;
			break;
		}
		if (index_add(rp->ix, m, NULL) == NULL) {
			queue_msg_free(m);
			return -1;
		}
		break;
	case REC_STATE:
		if (record_qid(p, len, qid) == 0 &&
		    (e = index_find(rp->ix, qid)) != NULL &&
		    record_state_apply(p, len, e->m) == -1)
			rp->bad++;
		break;
	case REC_DONE:
		if (record_qid(p, len, qid) == -1) {
			rp->bad++;
			break;
		}
		if ((e = index_remove(rp->ix, qid)) != NULL) {
			queue_msg_free(e->m);
			free(e);
		}
		if (rp->ndone == rp->capdone) {
			size_t ncap = rp->capdone ? rp->capdone * 2 : 256;
			void *np = realloc(rp->done, ncap * sizeof(*rp->done));

			if (np == NULL)
				return -1;
			rp->done = np;
			rp->capdone = ncap;
		}
		memcpy(rp->done[rp->ndone++], qid, sizeof(qid));
		break;
	case REC_CHUNK:
		break;
	default:
		rp->bad++;
	}
	return 0;
}

static int
replay(struct journal *j, struct qindex *ix, size_t *applied, size_t *bad,
    uint64_t *cut)
{
	struct replay rp;
	uint64_t s;
	int rc;

	memset(&rp, 0, sizeof(rp));
	rp.ix = ix;
	/* Every segment gets its stats, even one without records. */
	if (journal_newest(j) != 0)
		for (s = journal_oldest(j); s <= journal_newest(j); s++)
			index_seen(ix, s, JOURNAL_SEG_HDR_LEN);
	rc = journal_replay(j, replay_record, &rp, cut);
	free(rp.done);
	*applied = rp.applied;
	*bad = rp.bad;
	return rc;
}

struct recover_walk {
	void (*fn)(void *, const struct queue_msg *);
	void *arg;
};

static void
recover_one(void *arg, struct qentry *e)
{
	struct recover_walk *w = arg;

	w->fn(w->arg, e->m);
}

int
queue_recover(struct queue *q, void (*fn)(void *, const struct queue_msg *),
    void *arg, char *err, size_t errsize)
{
	size_t applied, bad;
	uint64_t cut;

	if (replay(q->j, &q->ix, &applied, &bad, &cut) == -1) {
		snprintf(err, errsize, "queue replay: %s", strerror(errno));
		return -1;
	}
	q->newest_seen = journal_newest(q->j);
	if (apply_init(q, err, errsize) == -1)
		return -1;
	if (bad > 0 || cut > 0)
		snprintf(err, errsize,
		    "queue replay: %zu records, %zu unreadable, %" PRIu64
		    " torn tails cut",
		    applied, bad, cut);
	else
		err[0] = '\0';
	if (fn != NULL) {
		struct recover_walk w = { fn, arg };

		index_foreach(&q->ix, recover_one, &w);
	}
	if (pthread_create(&q->writer, NULL, writer_main, q) != 0) {
		snprintf(err, errsize, "queue: cannot start the writer");
		return -1;
	}
	if (pthread_create(&q->applier, NULL, apply_main, q) != 0) {
		pthread_mutex_lock(&q->mtx);
		q->stopping = 1;
		pthread_cond_signal(&q->cond);
		pthread_mutex_unlock(&q->mtx);
		pthread_join(q->writer, NULL);
		snprintf(err, errsize, "queue: cannot start the applier");
		return -1;
	}
	q->started = 1;
	return (int)q->ix.count;
}

/* --- requests -------------------------------------------------------- */

int
queue_submit(struct queue *q, struct queue_msg *m, const struct iovec *inl,
    int n, struct queue_spool *sp, queue_done_cb done, void *arg)
{
	struct qreq *r;
	uint64_t size = 0;
	int i, rc;

	if (n < 0 || n > QREQ_IOV_MAX - 1) {
		queue_spool_free(sp);
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < n; i++)
		size += inl[i].iov_len;
	if (sp != NULL)
		size += spool_size(sp);
	if (size > QUEUE_MESSAGE_MAX + QUEUE_STRING_MAX) {
		queue_spool_free(sp);
		errno = EFBIG;
		return -1;
	}
	m->size = size;
	if ((r = qreq_new(REQ_SUBMIT, done, arg)) == NULL ||
	    (r->entry = calloc(1, sizeof(*r->entry))) == NULL) {
		if (r != NULL)
			qreq_free(r);
		queue_spool_free(sp);
		errno = ENOMEM;
		return -1;
	}
	if (record_msg_head(m, &r->head) == -1) {
		qreq_free(r);
		queue_spool_free(sp);
		errno = EINVAL;
		return -1;
	}
	memcpy(r->qid, m->qid, sizeof(r->qid));
	for (i = 0; i < n; i++)
		r->iov[i] = inl[i];
	r->niov = n;
	r->head_iov = n;
	r->m = m;
	/* The index entry now, so the completion cannot fail after the
	 * message is on disk (a 451 for a message that is then delivered). */
	if (index_reserve(&q->ix) == -1) {
		qreq_free(r);
		queue_spool_free(sp);
		errno = ENOMEM;
		return -1;
	}
	if (sp != NULL) {
		r->spool = sp;
		if ((rc = spool_attach(sp, r)) == 0)
			return 0; /* enqueued when its last chunk is written */
		if (rc == -1 || spool_fill(sp, r) == -1)
			goto fail;
	}
	if (writer_enqueue(q, r) == 0)
		return 0;
fail : {
	int e = errno;

	index_unreserve(&q->ix);
	r->spool = NULL;
	qreq_free(r);
	queue_spool_free(sp); /* freed once its chunks are written */
	errno = e;
}
	return -1;
}

int
queue_submit_copy(struct queue *q, struct queue_msg *m,
    const struct queue_msg *src, queue_done_cb done, void *arg)
{
	struct qreq *r;

	m->size = src->size;
	if ((r = qreq_new(REQ_SUBMIT, done, arg)) == NULL ||
	    (r->entry = calloc(1, sizeof(*r->entry))) == NULL) {
		if (r != NULL)
			qreq_free(r);
		errno = ENOMEM;
		return -1;
	}
	r->copy = src->body;
	r->copy.chunk = NULL;
	if ((src->body.nchunk > 0 &&
	        (r->copy.chunk = calloc(
	             src->body.nchunk, sizeof(*r->copy.chunk))) == NULL) ||
	    record_msg_head(m, &r->head) == -1 || index_reserve(&q->ix) == -1) {
		qreq_free(r);
		errno = ENOMEM;
		return -1;
	}
	if (src->body.nchunk > 0)
		memcpy(r->copy.chunk, src->body.chunk,
		    src->body.nchunk * sizeof(*src->body.chunk));
	if (r->copy.inl.len == 0 && r->copy.nchunk == 0) {
		/* An empty body: nothing to copy, an empty inline part. */
		r->niov = 0;
	}
	memcpy(r->qid, m->qid, sizeof(r->qid));
	r->m = m;
	index_pin(&q->ix, &r->copy.inl, 1, 1);
	index_pin(&q->ix, r->copy.chunk, r->copy.nchunk, 1);
	r->copy_pinned = 1;
	if (writer_enqueue(q, r) == -1) {
		int e = errno;

		copy_unpin(q, r);
		index_unreserve(&q->ix);
		qreq_free(r);
		errno = e;
		return -1;
	}
	return 0;
}

static struct queue_update *
update_copy(const struct queue_update *u)
{
	struct queue_update *c = calloc(1, sizeof(*c));
	struct queue_rcpt_update *r;
	size_t i;

	if (c == NULL)
		return NULL;
	*c = *u;
	c->r = NULL;
	c->n = 0;
	if (u->n == 0)
		return c;
	if ((r = calloc(u->n, sizeof(*r))) == NULL) {
		free(c);
		return NULL;
	}
	c->r = r;
	for (i = 0; i < u->n; i++, c->n++) {
		const struct store_rcpt *s = &u->r[i].track;

		r[i] = u->r[i];
		r[i].track.orcpt = r[i].track.final_rcpt = NULL;
		r[i].track.remote_mta = r[i].track.reply = NULL;
		if ((s->orcpt && !(r[i].track.orcpt = strdup(s->orcpt))) ||
		    (s->final_rcpt &&
		        !(r[i].track.final_rcpt = strdup(s->final_rcpt))) ||
		    (s->remote_mta &&
		        !(r[i].track.remote_mta = strdup(s->remote_mta))) ||
		    (s->reply && !(r[i].track.reply = strdup(s->reply)))) {
			c->n++;
			return c; /* caller sees the shortfall */
		}
	}
	return c;
}

int
queue_update(struct queue *q, const struct queue_msg *m,
    const struct queue_update *u, queue_done_cb done, void *arg)
{
	struct qentry *e = index_find(&q->ix, m->qid);
	struct qreq *r;
	size_t i;

	if (e == NULL || e->m != m || e->finishing) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < u->n; i++)
		if (u->r[i].track.idx >= m->nrcpt) {
			errno = EINVAL;
			return -1;
		}
	if ((r = qreq_new(REQ_UPDATE, done, arg)) == NULL)
		return -1;
	memcpy(r->qid, m->qid, sizeof(r->qid));
	if ((r->upd = update_copy(u)) == NULL || r->upd->n != u->n ||
	    record_state(m->qid, u, &r->head) == -1) {
		qreq_free(r);
		errno = ENOMEM;
		return -1;
	}
	if (writer_enqueue(q, r) == -1) {
		qreq_free(r);
		errno = ESHUTDOWN;
		return -1;
	}
	e->pending++;
	return 0;
}

int
queue_finish(
    struct queue *q, const struct queue_msg *m, queue_done_cb done, void *arg)
{
	struct qentry *e = index_find(&q->ix, m->qid);
	struct qreq *r;

	if (e == NULL || e->m != m || e->finishing) {
		errno = EINVAL;
		return -1;
	}
	if ((r = qreq_new(REQ_FINISH, done, arg)) == NULL)
		return -1;
	memcpy(r->qid, m->qid, sizeof(r->qid));
	if (record_done(m->qid, &r->head) == -1) {
		qreq_free(r);
		return -1;
	}
	if (writer_enqueue(q, r) == -1) {
		qreq_free(r);
		errno = ESHUTDOWN;
		return -1;
	}
	e->pending++;
	e->finishing = 1;
	return 0;
}

int
queue_purge(
    struct queue *q, time_t now, size_t *n_out, queue_done_cb done, void *arg)
{
	pthread_mutex_lock(&q->mtx);
	if (!q->started || q->stopping) {
		pthread_mutex_unlock(&q->mtx);
		errno = ESHUTDOWN;
		return -1;
	}
	if (q->purge_asked || q->purge_cb != NULL) {
		pthread_mutex_unlock(&q->mtx);
		errno = EBUSY;
		return -1;
	}
	*n_out = 0;
	q->purge_asked = 1;
	q->purge_now = now;
	q->purge_out = n_out;
	q->purge_cb = done;
	q->purge_arg = arg;
	pthread_cond_signal(&q->acond);
	pthread_mutex_unlock(&q->mtx);
	return 0;
}

/* --- the store's health ---------------------------------------------- */

int
queue_store_failed(const struct queue *q)
{
	struct queue *mq = (struct queue *)q;
	int failed;

	pthread_mutex_lock(&mq->mtx);
	failed = q->apply_failed ||
	    (q->lag_since != 0 && mark_before(&q->applied, &q->synced) &&
	        time(NULL) - q->lag_since >= QUEUE_STORE_STALL);
	pthread_mutex_unlock(&mq->mtx);
	return failed;
}

static void
waiter_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct queue_store_waiter *w = arg;
	struct queue *q = w->q;
	struct queue_store_waiter **pw;

	(void)fd;
	(void)ev;
	for (pw = &q->waiters; *pw != NULL; pw = &(*pw)->next)
		if (*pw == w) {
			*pw = w->next;
			break;
		}
	event_free(w->timer);
	w->cb(w->arg, 0);
	free(w);
}

struct queue_store_waiter *
queue_store_wait(struct queue *q, unsigned int timeout_ms,
    void (*cb)(void *, int), void *arg)
{
	struct queue_store_waiter *w;
	struct timeval tv = { (time_t)(timeout_ms / 1000),
		(suseconds_t)(timeout_ms % 1000) * 1000 };
	struct qmark want;

	pthread_mutex_lock(&q->mtx);
	want = q->synced;
	if (!mark_before(&q->applied, &want)) {
		pthread_mutex_unlock(&q->mtx);
		return NULL;
	}
	pthread_mutex_unlock(&q->mtx);
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w->timer = evtimer_new(q->base, waiter_timeout, w)) == NULL ||
	    evtimer_add(w->timer, &tv) == -1) {
		/* Out of memory: answer as if it timed out, at once. */
		if (w != NULL && w->timer != NULL)
			event_free(w->timer);
		free(w);
		cb(arg, 0);
		return NULL;
	}
	w->q = q;
	w->want = want;
	w->cb = cb;
	w->arg = arg;
	w->next = q->waiters;
	q->waiters = w;
	return w;
}

void
queue_store_wait_cancel(struct queue *q, struct queue_store_waiter *w)
{
	struct queue_store_waiter **pw;

	for (pw = &q->waiters; *pw != NULL; pw = &(*pw)->next)
		if (*pw == w) {
			*pw = w->next;
			event_free(w->timer);
			free(w);
			return;
		}
}

/* --- everything else ------------------------------------------------- */

void
queue_hold(struct queue *q, int hold)
{
	pthread_mutex_lock(&q->mtx);
	q->hold = hold;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->mtx);
}

void
queue_stats(struct queue *q, struct queue_stats *out)
{
	pthread_mutex_lock(&q->mtx);
	*out = q->stats;
	pthread_mutex_unlock(&q->mtx);
}

size_t
queue_count(const struct queue *q)
{
	return q->ix.count;
}

static void
oldest_one(void *arg, struct qentry *e)
{
	time_t *t = arg;

	if (*t == 0 || e->m->arrival < *t)
		*t = e->m->arrival;
}

time_t
queue_oldest_arrival(struct queue *q)
{
	time_t t = 0;

	index_foreach(&q->ix, oldest_one, &t);
	return t;
}

time_t
queue_store_lag(const struct queue *q)
{
	struct queue *mq = (struct queue *)q;
	time_t lag = 0;

	pthread_mutex_lock(&mq->mtx);
	if (q->lag_since != 0 && mark_before(&q->applied, &q->synced))
		lag = time(NULL) - q->lag_since;
	pthread_mutex_unlock(&mq->mtx);
	return lag;
}

const struct queue_msg *
queue_find(struct queue *q, const char *qid)
{
	struct qentry *e = index_find(&q->ix, qid);

	return e != NULL && !e->finishing ? e->m : NULL;
}

struct foreach_walk {
	void (*fn)(void *, const struct queue_msg *);
	void *arg;
};

static void
foreach_one(void *arg, struct qentry *e)
{
	struct foreach_walk *w = arg;

	w->fn(w->arg, e->m);
}

void
queue_foreach(
    struct queue *q, void (*fn)(void *, const struct queue_msg *), void *arg)
{
	struct foreach_walk w = { fn, arg };

	index_foreach(&q->ix, foreach_one, &w);
}

int
queue_scan(const char *data_dir, void (*fn)(void *, const struct queue_msg *),
    void *arg, char *err, size_t errsize)
{
	struct qindex ix;
	struct journal *j;
	char path[4096];
	size_t applied, bad;
	uint64_t cut;
	int rc;

	memset(&ix, 0, sizeof(ix));
	snprintf(path, sizeof(path), "%s/queue", data_dir);
	if (access(path, F_OK) == -1 && errno == ENOENT)
		return 0; /* nothing was ever queued here */
	if ((j = journal_open_readonly(path, err, errsize)) == NULL)
		return -1;
	if (replay(j, &ix, &applied, &bad, &cut) == -1) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		rc = -1;
	} else {
		struct foreach_walk w = { fn, arg };

		rc = (int)ix.count;
		index_foreach(&ix, foreach_one, &w);
	}
	index_free(&ix);
	journal_free(j);
	return rc;
}

void
queue_stop(struct queue *q)
{
	q->stopping_loop = 1;
	if (!q->started)
		return;
	pthread_mutex_lock(&q->mtx);
	q->stopping = 1;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->mtx);
	pthread_join(q->writer, NULL);
	/* The applier applies what the writer synced, then stops. */
	pthread_mutex_lock(&q->mtx);
	q->writer_done = 1;
	pthread_cond_signal(&q->acond);
	pthread_mutex_unlock(&q->mtx);
	pthread_join(q->applier, NULL);
	q->started = 0;
	on_done(-1, 0, q); /* the last callbacks */
	fire_waiters(q, 1);
	/* Reads in flight call back (ESHUTDOWN) while their readers'
	 * owners still exist. */
	workers_free(q->io);
	q->io = NULL;
}

void
queue_free(struct queue *q)
{
	if (q == NULL)
		return;
	workers_free(q->io);
	index_free(&q->ix);
	while (q->waiters != NULL) {
		struct queue_store_waiter *w = q->waiters;

		q->waiters = w->next;
		event_free(w->timer);
		free(w);
	}
	if (q->tick != NULL)
		event_free(q->tick);
	if (q->ev_done != NULL)
		event_free(q->ev_done);
	if (q->efd != -1)
		close(q->efd);
	journal_cursor_free(q->cursor);
	journal_free(q->j);
	pthread_mutex_destroy(&q->mtx);
	pthread_cond_destroy(&q->cond);
	pthread_cond_destroy(&q->acond);
	free(q->dir);
	free(q);
}
