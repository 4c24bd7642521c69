/*
 * queue_body: reading a body back in pieces of at most QUEUE_CHUNK_SIZE
 * (see queue.h): the inline octets before the chunks (our Received:),
 * each chunk, then the inline rest.  queue_body_next() only preads (the
 * journal's reads are thread-safe); the reader pins the segments it
 * reads from, so compaction may move the message meanwhile but cannot
 * drop what this reader still needs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/workers.h"
#include "queue/queue_internal.h"

struct queue_body_reader {
	struct queue *q;
	struct queue_body body; /* a copy: extents owned */
	uint32_t step; /* 0 head, 1..nchunk chunks, nchunk+1 rest */
	uint64_t done; /* octets of the current step read */
	char qid[QUEUE_ID_LEN + 1];
	/* an asynchronous read */
	struct buf *out;
	int rc, err;
	void (*cb)(void *, int, int);
	void *cb_arg;
};

struct queue_body_reader *
queue_body_open(struct queue *q, const struct queue_msg *m)
{
	struct queue_body_reader *r = calloc(1, sizeof(*r));
	struct qentry *e;

	if (r == NULL)
		return NULL;
	r->q = q;
	r->body = m->body;
	r->body.chunk = NULL;
	if (m->body.nchunk > 0) {
		if ((r->body.chunk = calloc(
		         m->body.nchunk, sizeof(*r->body.chunk))) == NULL) {
			free(r);
			return NULL;
		}
		memcpy(r->body.chunk, m->body.chunk,
		    m->body.nchunk * sizeof(*m->body.chunk));
	}
	memcpy(r->qid, m->qid, sizeof(r->qid));
	index_pin(&q->ix, &r->body.inl, 1, 1);
	index_pin(&q->ix, r->body.chunk, r->body.nchunk, 1);
	if ((e = index_find(&q->ix, m->qid)) != NULL && e->m == m)
		e->readers++;
	return r;
}

/* The part of the body step s covers. */
static struct journal_pos
part(const struct queue_body_reader *r, uint32_t s)
{
	struct journal_pos p = r->body.inl;

	if (s == 0) {
		p.len = r->body.head;
	} else if (s <= r->body.nchunk) {
		p = r->body.chunk[s - 1];
	} else {
		p.off += r->body.head;
		p.len -= r->body.head;
	}
	return p;
}

int
queue_body_next(struct queue_body_reader *r, struct buf *out)
{
	uint32_t step0 = r->step;
	uint64_t done0 = r->done, room = QUEUE_CHUNK_SIZE;
	size_t start = out->len, run_at = 0;
	struct journal_pos run = { 0, 0, 0 };
	int e;

	/* Parts are joined up to QUEUE_CHUNK_SIZE (our Received: field and
	 * a small body make one piece: the relay writes a piece at once,
	 * and a body in one write is a transaction in one round trip), and
	 * parts that follow each other in the journal (a body without
	 * chunks: the Received: field, then the rest) in one read. */
	while (room > 0 && r->step <= r->body.nchunk + 1) {
		struct journal_pos p = part(r, r->step);
		uint64_t left = p.len - r->done;

		if (left == 0) {
			r->step++;
			r->done = 0;
			continue;
		}
		if (left > room)
			left = room;
		p.off += r->done;
		p.len = (uint32_t)left;
		if (buf_append_space(out, p.len) == NULL)
			goto fail;
		if (run.len > 0 && run.seg == p.seg &&
		    run.off + run.len == p.off) {
			run.len += p.len;
		} else {
			if (run.len > 0 &&
			    journal_read(r->q->j, &run, out->data + run_at) ==
			        -1)
				goto fail;
			run = p;
			run_at = out->len - p.len;
		}
		r->done += left;
		room -= left;
	}
	if (run.len > 0 &&
	    journal_read(r->q->j, &run, out->data + run_at) == -1)
		goto fail;
	return out->len > start ? 1 : 0;
fail:
	e = errno;
	buf_truncate(out, start);
	r->step = step0;
	r->done = done0;
	errno = e;
	return -1;
}

int
queue_body_done(const struct queue_body_reader *r)
{
	uint32_t s = r->step;
	uint64_t done = r->done;

	for (; s <= r->body.nchunk + 1; s++, done = 0)
		if (part(r, s).len > done)
			return 0;
	return 1;
}

static void
read_run(void *ctx, void *arg)
{
	struct queue_body_reader *r = arg;

	(void)ctx;
	errno = 0;
	r->rc = queue_body_next(r, r->out);
	r->err = r->rc == -1 ? (errno ? errno : EIO) : 0;
}

static void
read_done(void *arg, enum workers_status st)
{
	struct queue_body_reader *r = arg;

	if (st != WORKERS_DONE) {
		r->rc = -1;
		r->err = ESHUTDOWN;
	}
	r->cb(r->cb_arg, r->rc, r->err);
}

int
queue_body_read(struct queue *q, struct queue_body_reader *r, struct buf *out,
    void (*cb)(void *, int, int), void *arg)
{
	r->out = out;
	r->cb = cb;
	r->cb_arg = arg;
	if (q->io == NULL) {
		errno = ESHUTDOWN;
		return -1;
	}
	if (workers_submit(q->io, read_run, read_done, NULL, r, 0) == NULL)
		return -1;
	return 0;
}

void
queue_body_close(struct queue_body_reader *r)
{
	struct qentry *e;

	if (r == NULL)
		return;
	index_pin(&r->q->ix, &r->body.inl, 1, -1);
	index_pin(&r->q->ix, r->body.chunk, r->body.nchunk, -1);
	if ((e = index_find(&r->q->ix, r->qid)) != NULL && e->readers > 0)
		e->readers--;
	free(r->body.chunk);
	free(r);
}
