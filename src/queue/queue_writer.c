/*
 * queue_writer: the journal's only writer (see queue_internal.h).  It
 * takes every request waiting, appends their records, fdatasyncs once for
 * the batch (group commit), publishes how far the journal is synced, and
 * hands the batch back to the loop.  Copies of bodies (relocation, alias
 * expansion) are made here, piece by piece, so nothing is read on the
 * loop and at most one chunk is held in memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue/queue_internal.h"

struct qreq *
qreq_new(enum req_kind kind, queue_done_cb done, void *arg)
{
	struct qreq *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->kind = kind;
	r->done = done;
	r->arg = arg;
	clock_gettime(CLOCK_MONOTONIC, &r->born);
	buf_init(&r->head, (size_t)JOURNAL_RECORD_MAX);
	buf_init(&r->data, (size_t)QUEUE_CHUNK_SIZE);
	return r;
}

static void
update_free(struct queue_update *u)
{
	size_t i;

	if (u == NULL)
		return;
	for (i = 0; i < u->n; i++) {
		const struct store_rcpt *t = &u->r[i].track;

		free(t->orcpt);
		free(t->final_rcpt);
		free(t->remote_mta);
		free(t->reply);
	}
	free((void *)u->r);
	free(u);
}

void
qreq_free(struct qreq *r)
{
	buf_reset(&r->head);
	buf_reset(&r->data);
	free(r->chunk);
	free(r->copy.chunk);
	free(r->body.chunk);
	update_free(r->upd);
	free(r->entry);
	free(r);
}

int
writer_enqueue(struct queue *q, struct qreq *r)
{
	pthread_mutex_lock(&q->mtx);
	if (q->stopping || !q->started) {
		pthread_mutex_unlock(&q->mtx);
		errno = ESHUTDOWN;
		return -1;
	}
	r->next = NULL;
	*q->pending_tail = r;
	q->pending_tail = &r->next;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->mtx);
	return 0;
}

/* Reads len octets at pos into scratch (replacing its contents). */
static int
read_piece(struct queue *q, const struct journal_pos *pos, struct buf *scratch)
{
	void *p;

	buf_clear(scratch);
	if ((p = buf_append_space(scratch, pos->len)) == NULL)
		return -1;
	return journal_read(q->j, pos, p);
}

static int
append(struct queue *q, uint8_t type, const struct iovec *iov, int n,
    struct journal_pos *pos)
{
	if (journal_append(q->j, type, iov, n, pos) == -1)
		return -1;
	pthread_mutex_lock(&q->mtx);
	q->stats.records++;
	q->stats.written +=
	    JOURNAL_HDR_LEN + (uint64_t)pos->len + JOURNAL_TRAILER_LEN;
	pthread_mutex_unlock(&q->mtx);
	return 0;
}

/* A MSG record.  For a copy, the source's chunks are copied first into
 * new CHUNK records, then its inline part goes into the MSG record. */
static int
write_msg(struct queue *q, struct qreq *r, struct buf *scratch)
{
	struct iovec iov[QREQ_IOV_MAX + 1];
	const struct journal_pos *ext = r->chunk;
	uint32_t next = r->nchunk, i, head = 0;
	int n = 0, k;

	if (r->copy.inl.len > 0 || r->copy.nchunk > 0) {
		if (r->copy.nchunk > 0 &&
		    (r->body.chunk = calloc(
		         r->copy.nchunk, sizeof(*r->body.chunk))) == NULL)
			return -1;
		for (i = 0; i < r->copy.nchunk; i++) {
			struct iovec v;

			if (read_piece(q, &r->copy.chunk[i], scratch) == -1)
				return -1;
			v.iov_base = scratch->data;
			v.iov_len = scratch->len;
			if (append(q, REC_CHUNK, &v, 1, &r->body.chunk[i]) ==
			    -1)
				return -1;
		}
		pthread_mutex_lock(&q->mtx);
		if (r->kind == REQ_RELOCATE)
			q->stats.relocated_bytes += queue_body_size(&r->copy);
		pthread_mutex_unlock(&q->mtx);
		ext = r->body.chunk;
		next = r->copy.nchunk;
		head = r->copy.head;
		if (read_piece(q, &r->copy.inl, scratch) == -1)
			return -1;
		iov[1].iov_base = scratch->data;
		iov[1].iov_len = scratch->len;
		n = 1;
	} else {
		for (k = 0; k < r->niov; k++) {
			iov[1 + k] = r->iov[k];
			if (k < r->head_iov)
				head += (uint32_t)r->iov[k].iov_len;
		}
		n = r->niov;
		if (r->nchunk > 0) {
			if ((r->body.chunk = calloc(
			         r->nchunk, sizeof(*r->body.chunk))) == NULL)
				return -1;
			memcpy(r->body.chunk, r->chunk,
			    r->nchunk * sizeof(*r->chunk));
		}
	}
	if (record_msg_extents(&r->head, ext, next, head) == -1) {
		errno = EFBIG;
		return -1;
	}
	iov[0].iov_base = r->head.data;
	iov[0].iov_len = r->head.len;
	if (append(q, REC_MSG, iov, n + 1, &r->pos) == -1)
		return -1;
	r->body.nchunk = next;
	r->body.head = head;
	r->body.inl.seg = r->pos.seg;
	r->body.inl.off = r->pos.off + r->head.len;
	r->body.inl.len = (uint32_t)(r->pos.len - r->head.len);
	return 0;
}

static void
write_one(struct queue *q, struct qreq *r, struct buf *scratch)
{
	struct iovec v;
	int rc = 0;

	switch (r->kind) {
	case REQ_SUBMIT:
	case REQ_RELOCATE:
		rc = write_msg(q, r, scratch);
		break;
	case REQ_CHUNK:
		v.iov_base = r->data.data;
		v.iov_len = r->data.len;
		rc = append(q, REC_CHUNK, &v, 1, &r->pos);
		/* The loop needs the position, not the data. */
		buf_reset(&r->data);
		break;
	case REQ_UPDATE:
	case REQ_FINISH:
		v.iov_base = r->head.data;
		v.iov_len = r->head.len;
		rc = append(q, r->kind == REQ_UPDATE ? REC_STATE : REC_DONE, &v,
		    1, &r->pos);
		break;
	case REQ_DROP:
		return;
	}
	if (rc == -1) {
		r->rc = -1;
		r->err = errno != 0 ? errno : EIO;
	}
}

static int
needs_sync(const struct qreq *r)
{
	/* A CHUNK alone promises nothing: the MSG that names it is synced
	 * with everything appended before it. */
	return r->kind != REQ_DROP && r->kind != REQ_CHUNK && r->rc == 0;
}

void *
writer_main(void *arg)
{
	struct queue *q = arg;
	struct buf scratch;

	buf_init(&scratch, (size_t)JOURNAL_RECORD_MAX);
	for (;;) {
		struct qreq *batch, *r, *last;
		int sync = 0, drop = 0, synced = 0;

		pthread_mutex_lock(&q->mtx);
		while ((q->pending == NULL || q->hold) && !q->stopping)
			pthread_cond_wait(&q->cond, &q->mtx);
		batch = q->pending;
		q->pending = NULL;
		q->pending_tail = &q->pending;
		pthread_mutex_unlock(&q->mtx);
		if (batch == NULL)
			break; /* stopping, and nothing left */

		for (r = batch; r != NULL; r = r->next) {
			errno = 0;
			if (r->kind == REQ_DROP)
				drop = 1;
			else
				write_one(q, r, &scratch);
			sync |= needs_sync(r);
		}
		/* Group commit: one fdatasync for the whole batch. */
		if (sync) {
			if (journal_sync(q->j) == -1) {
				int e = errno;

				for (r = batch; r != NULL; r = r->next)
					if (r->kind != REQ_DROP && r->rc == 0) {
						r->rc = -1;
						r->err = e;
					}
			} else
				synced = 1;
		}
		if (drop) {
			/* The loop checked that the store has durably
			 * applied the oldest segment and nothing live or
			 * read is in it. */
			int rc = journal_drop_oldest(q->j), e = errno;

			for (r = batch; r != NULL; r = r->next)
				if (r->kind == REQ_DROP) {
					r->rc = rc;
					r->err = rc == 0 ? 0 : e;
				}
			drop = rc == 0;
		}
		pthread_mutex_lock(&q->mtx);
		q->stats.syncs += synced;
		q->stats.dropped_segments += drop;
		for (r = batch; r != NULL; r = r->next)
			q->stats.relocated +=
			    r->kind == REQ_RELOCATE && r->rc == 0;
		if (synced) {
			struct qmark was = q->synced;

			q->synced.seg = journal_newest(q->j);
			q->synced.off = journal_end(q->j);
			if (q->applied.seg == was.seg &&
			    q->applied.off == was.off)
				q->lag_since = time(NULL);
			pthread_cond_signal(&q->acond);
		}
		for (last = batch; last->next != NULL; last = last->next)
			;
		*q->done_tail = batch;
		q->done_tail = &last->next;
		pthread_mutex_unlock(&q->mtx);
		queue_wake_loop(q);
	}
	buf_reset(&scratch);
	return NULL;
}
