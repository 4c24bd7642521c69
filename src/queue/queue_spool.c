/*
 * queue_spool: a body being received, written to the journal in CHUNK
 * records of QUEUE_CHUNK_SIZE as it arrives (see queue.h), so a session
 * holds at most two chunks' worth of content whatever the message size.
 *
 * Chunks written but not yet named by a MSG record are garbage to
 * compaction; the spool pins their segments so none is dropped before the
 * MSG record lands (or the spool is abandoned).  All spools together hold
 * at most QUEUE_SPOOL_BUDGET octets in memory (their buffers and the
 * chunks on their way to the writer); past it a spool fails with ENOBUFS
 * and its session answers 451 4.3.1.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue_internal.h"

/* What may be appended after a push: one QUEUE_CHUNK_SIZE-sized read
 * (SMTP_LINE_INPUT_MAX is the same number) on top of a remainder below
 * one chunk. */
#define SPOOL_BUF_MAX (2 * QUEUE_CHUNK_SIZE + 4096)

struct queue_spool {
	struct queue *q;
	struct buf buf;
	struct journal_pos *chunk; /* positions of completed chunks */
	uint32_t nchunk; /* chunks handed to the writer */
	uint32_t ndone; /* of which completed */
	uint32_t cap;
	int inflight;
	int err;
	int abandoned; /* the owner let go: free at inflight 0 */
	uint64_t held; /* buffer octets counted in q->spool_bytes */
	void (*ready)(void *);
	void *ready_arg;
	struct qreq *submit; /* MSG waiting for the chunks in flight */
};

static void
account(struct queue_spool *sp)
{
	struct queue *q = sp->q;

	q->spool_bytes -= sp->held;
	sp->held = sp->buf.cap;
	q->spool_bytes += sp->held;
}

struct queue_spool *
queue_spool_new(struct queue *q)
{
	struct queue_spool *sp = calloc(1, sizeof(*sp));

	if (sp == NULL)
		return NULL;
	sp->q = q;
	buf_init(&sp->buf, SPOOL_BUF_MAX);
	return sp;
}

struct buf *
queue_spool_buf(struct queue_spool *sp)
{
	return &sp->buf;
}

int
queue_spool_error(const struct queue_spool *sp)
{
	return sp->err;
}

int
queue_spool_busy(const struct queue_spool *sp)
{
	return sp->inflight >= QUEUE_SPOOL_INFLIGHT && sp->err == 0;
}

void
queue_spool_on_ready(struct queue_spool *sp, void (*ready)(void *), void *arg)
{
	sp->ready = ready;
	sp->ready_arg = arg;
}

static void
spool_fail(struct queue_spool *sp, int err)
{
	if (sp->err == 0)
		sp->err = err;
	buf_reset(&sp->buf);
	account(sp);
}

int
queue_spool_push(struct queue_spool *sp)
{
	struct queue *q = sp->q;
	struct qreq *r;

	if (sp->err != 0) {
		/* Failed: drop what comes until the end of DATA. */
		buf_clear(&sp->buf);
		return -1;
	}
	while (sp->buf.len >= QUEUE_CHUNK_SIZE) {
		if (sp->nchunk >= QUEUE_CHUNKS_MAX) {
			spool_fail(sp, EFBIG);
			return -1;
		}
		if (q->spool_bytes + QUEUE_CHUNK_SIZE > QUEUE_SPOOL_BUDGET) {
			spool_fail(sp, ENOBUFS);
			return -1;
		}
		if ((r = qreq_new(REQ_CHUNK, NULL, NULL)) == NULL ||
		    buf_add(&r->data, sp->buf.data, QUEUE_CHUNK_SIZE) == -1) {
			if (r != NULL)
				qreq_free(r);
			spool_fail(sp, ENOMEM);
			return -1;
		}
		r->spool = sp;
		r->chunk_index = sp->nchunk;
		if (writer_enqueue(q, r) == -1) {
			int e = errno;

			qreq_free(r);
			spool_fail(sp, e);
			return -1;
		}
		sp->nchunk++;
		sp->inflight++;
		q->spool_bytes += QUEUE_CHUNK_SIZE;
		buf_consume(&sp->buf, QUEUE_CHUNK_SIZE);
	}
	account(sp);
	if (q->spool_bytes > QUEUE_SPOOL_BUDGET) {
		spool_fail(sp, ENOBUFS);
		return -1;
	}
	return 0;
}

static void
spool_destroy(struct queue_spool *sp)
{
	uint32_t i;

	for (i = 0; i < sp->ndone; i++)
		index_pin(&sp->q->ix, &sp->chunk[i], 1, -1);
	buf_reset(&sp->buf);
	account(sp);
	free(sp->chunk);
	free(sp);
}

void
queue_spool_free(struct queue_spool *sp)
{
	if (sp == NULL)
		return;
	sp->abandoned = 1;
	sp->ready = NULL;
	if (sp->inflight == 0)
		spool_destroy(sp);
}

struct qreq *
spool_chunk_done(struct queue_spool *sp, struct qreq *r)
{
	struct queue *q = sp->q;
	struct qreq *submit = NULL;

	sp->inflight--;
	q->spool_bytes -= QUEUE_CHUNK_SIZE;
	if (r->rc == -1) {
		spool_fail(sp, r->err);
	} else if (sp->err == 0) {
		if (r->chunk_index >= sp->cap) {
			uint32_t ncap = sp->cap ? sp->cap * 2 : 16;
			struct journal_pos *p;

			while (r->chunk_index >= ncap)
				ncap *= 2;
			if ((p = realloc(sp->chunk, ncap * sizeof(*p))) ==
			    NULL) {
				spool_fail(sp, ENOMEM);
				goto out;
			}
			sp->chunk = p;
			sp->cap = ncap;
		}
		/* Completions come in order: index == ndone. */
		sp->chunk[sp->ndone++] = r->pos;
		index_pin(&q->ix, &r->pos, 1, 1);
		index_seen(&q->ix, r->pos.seg,
		    r->pos.off + r->pos.len + JOURNAL_TRAILER_LEN);
	}
out:
	if (sp->inflight == 0 && sp->submit != NULL) {
		submit = sp->submit;
		sp->submit = NULL;
	}
	if (sp->abandoned && sp->inflight == 0 && submit == NULL) {
		spool_destroy(sp);
		return NULL;
	}
	if (submit == NULL && sp->ready != NULL &&
	    sp->inflight < QUEUE_SPOOL_INFLIGHT)
		sp->ready(sp->ready_arg);
	return submit;
}

int
spool_attach(struct queue_spool *sp, struct qreq *r)
{
	if (sp->err != 0) {
		errno = sp->err;
		return -1;
	}
	sp->ready = NULL;
	if (sp->inflight > 0) {
		sp->submit = r;
		return 0;
	}
	return 1;
}

int
spool_fill(struct queue_spool *sp, struct qreq *r)
{
	if (sp->err != 0) {
		errno = sp->err;
		return -1;
	}
	if (sp->ndone > 0) {
		if ((r->chunk = calloc(sp->ndone, sizeof(*r->chunk))) == NULL)
			return -1;
		memcpy(r->chunk, sp->chunk, sp->ndone * sizeof(*r->chunk));
	}
	r->nchunk = sp->ndone;
	if (sp->buf.len > 0) {
		r->iov[r->niov].iov_base = sp->buf.data;
		r->iov[r->niov].iov_len = sp->buf.len;
		r->niov++;
	}
	return 0;
}

uint64_t
spool_size(const struct queue_spool *sp)
{
	return (uint64_t)sp->nchunk * QUEUE_CHUNK_SIZE + sp->buf.len;
}

void
spool_release(struct queue_spool *sp)
{
	if (sp != NULL)
		spool_destroy(sp);
}
