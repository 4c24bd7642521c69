/*
 * queue_compact: freeing disk without rewriting it forever.
 *
 * Segments go oldest first (a later segment may hold the STATE or DONE of
 * a message in an earlier one), and only when nothing live has a record
 * in the oldest one, no reader holds an extent in it, and the store has
 * durably applied it (its durable mark is past it).
 *
 * When live messages keep the oldest segment, they are copied into the
 * newest (relocated) only when that pays: the oldest segment is mostly
 * dead (live below QUEUE_COMPACT_SEG_PCT of it), or the journal as a whole
 * is (live below QUEUE_COMPACT_LIVE_PCT of what it holds).  Each copy then
 * frees more than it writes, so compaction converges: a backlog of
 * deferred mail that fills its segments is never moved, and an idle
 * daemon writes nothing.  (Before, live data spanning four segments was
 * copied again and again: 9.3 GiB written in 15 s by an idle daemon.)
 * Copies are paced by a token bucket (QUEUE_COMPACT_RATE octets a second)
 * and made one batch at a time, and never for a message with a request in
 * flight (its records would land before the copy and be lost at replay),
 * with a reader, or finishing.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "queue/queue_internal.h"

#define QUEUE_COMPACT_SEG_PCT 25
#define QUEUE_COMPACT_LIVE_PCT 50
#define QUEUE_COMPACT_RATE ((uint64_t)32 << 20)
#define QUEUE_COMPACT_BURST ((uint64_t)64 << 20)

static void
refill(struct queue *q)
{
	struct timespec now;
	double dt;

	clock_gettime(CLOCK_MONOTONIC, &now);
	dt = (double)(now.tv_sec - q->compact_stamp.tv_sec) +
	    (double)(now.tv_nsec - q->compact_stamp.tv_nsec) / 1e9;
	q->compact_stamp = now;
	if (dt <= 0)
		return;
	q->compact_tokens += (uint64_t)(dt * (double)QUEUE_COMPACT_RATE);
	if (q->compact_tokens > QUEUE_COMPACT_BURST)
		q->compact_tokens = QUEUE_COMPACT_BURST;
}

static int
in_seg(const struct queue_body *b, uint64_t seg)
{
	uint32_t i;

	if (b->inl.seg == seg)
		return 1;
	for (i = 0; i < b->nchunk; i++)
		if (b->chunk[i].seg == seg)
			return 1;
	return 0;
}

struct relocate_walk {
	struct queue *q;
	uint64_t seg;
	int stop;
};

static void
relocate_one(void *arg, struct qentry *e)
{
	struct relocate_walk *w = arg;
	struct queue *q = w->q;
	struct queue_msg *m = e->m;
	uint64_t size;
	struct qreq *r;

	if (w->stop || e->pending > 0 || e->readers > 0 || e->relocating ||
	    e->finishing || !in_seg(&m->body, w->seg))
		return;
	size = queue_body_size(&m->body);
	if (size > q->compact_tokens && q->relocating > 0) {
		w->stop = 1; /* the next tick goes on */
		return;
	}
	if ((r = qreq_new(REQ_RELOCATE, NULL, NULL)) == NULL) {
		w->stop = 1;
		return;
	}
	memcpy(r->qid, m->qid, sizeof(r->qid));
	r->copy = m->body;
	r->copy.chunk = NULL;
	if (m->body.nchunk > 0) {
		if ((r->copy.chunk = calloc(
		         m->body.nchunk, sizeof(*r->copy.chunk))) == NULL) {
			qreq_free(r);
			w->stop = 1;
			return;
		}
		memcpy(r->copy.chunk, m->body.chunk,
		    m->body.nchunk * sizeof(*m->body.chunk));
	}
	if (record_msg_head(m, &r->head) == -1) {
		qreq_free(r);
		w->stop = 1;
		return;
	}
	if (writer_enqueue(q, r) == -1) {
		qreq_free(r);
		w->stop = 1;
		return;
	}
	e->relocating = 1;
	q->relocating++;
	q->compact_tokens =
	    size > q->compact_tokens ? 0 : q->compact_tokens - size;
}

void
compact_run(struct queue *q)
{
	struct qindex *ix = &q->ix;
	struct segstat *s;
	uint64_t seg, total = 0;
	size_t i;

	if (!q->started || q->stopping_loop || ix->nsegs == 0)
		return;
	seg = ix->oldest;
	if (seg >= q->newest_seen)
		return; /* the current segment is never dropped */
	s = &ix->segs[0];
	if (s->live == 0 && s->pins == 0) {
		if (q->drop_inflight)
			return;
		if (q->durable_seen.seg > seg) {
			struct qreq *r = qreq_new(REQ_DROP, NULL, NULL);

			if (r != NULL && writer_enqueue(q, r) == 0)
				q->drop_inflight = 1;
			else if (r != NULL)
				qreq_free(r);
		} else {
			/* Everything in it is applied or about to be: ask
			 * the applier to make it durable now. */
			pthread_mutex_lock(&q->mtx);
			q->want_sync = 1;
			pthread_cond_signal(&q->acond);
			pthread_mutex_unlock(&q->mtx);
		}
		return;
	}
	if (q->relocating > 0 || s->live == 0)
		return;
	for (i = 0; i < ix->nsegs; i++)
		total += ix->segs[i].end;
	if (s->live * 100 >= s->end * QUEUE_COMPACT_SEG_PCT &&
	    ix->total_live * 100 >= total * QUEUE_COMPACT_LIVE_PCT)
		return;
	refill(q);
	if (q->compact_tokens == 0)
		return;
	{
		struct relocate_walk w = { q, seg, 0 };

		index_foreach(ix, relocate_one, &w);
	}
}
