/*
 * queue_index: the live messages by qid, and what each segment holds
 * (see queue_internal.h).  Loop thread only.
 *
 * A segment may be dropped when nothing live has a record in it (live ==
 * 0), no reader has an extent in it (pins == 0), and the store has
 * durably applied it (queue_compact.c checks the last).  Allocation
 * failures in the accounting are fatal: a wrong count could drop a live
 * segment, and the journal, which is the truth, rebuilds everything at
 * the restart.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "queue/queue_internal.h"

static size_t
qid_hash(const char *qid, size_t size)
{
	size_t h = 5381;

	for (; *qid != '\0'; qid++)
		h = h * 33 + (unsigned char)*qid;
	return h & (size - 1);
}

static struct qentry **
slot(struct qindex *ix, const char *qid)
{
	struct qentry **e = &ix->tab[qid_hash(qid, ix->tabsize)];

	while (*e != NULL && strcmp((*e)->m->qid, qid) != 0)
		e = &(*e)->next;
	return e;
}

static int
grow(struct qindex *ix, size_t want)
{
	size_t nsize = ix->tabsize ? ix->tabsize : 1024, i;
	struct qentry **nt;

	while (want > nsize / 2)
		nsize *= 2;
	if (nsize == ix->tabsize)
		return 0;
	if ((nt = calloc(nsize, sizeof(*nt))) == NULL)
		return -1;
	for (i = 0; i < ix->tabsize; i++)
		while (ix->tab[i] != NULL) {
			struct qentry *x = ix->tab[i];
			size_t h = qid_hash(x->m->qid, nsize);

			ix->tab[i] = x->next;
			x->next = nt[h];
			nt[h] = x;
		}
	free(ix->tab);
	ix->tab = nt;
	ix->tabsize = nsize;
	return 0;
}

int
index_reserve(struct qindex *ix)
{
	if (grow(ix, ix->count + ix->reserved + 1) == -1)
		return -1;
	ix->reserved++;
	return 0;
}

void
index_unreserve(struct qindex *ix)
{
	if (ix->reserved > 0)
		ix->reserved--;
}

struct qentry *
index_find(struct qindex *ix, const char *qid)
{
	if (ix->tabsize == 0)
		return NULL;
	return *slot(ix, qid);
}

/* The stats of seg, made (with every segment before it) as needed. */
static struct segstat *
seg_at(struct qindex *ix, uint64_t seg)
{
	size_t i;

	if (ix->nsegs == 0) {
		ix->oldest = seg;
	} else if (seg < ix->oldest) {
		return NULL; /* dropped already */
	}
	i = (size_t)(seg - ix->oldest);
	if (i >= ix->capsegs) {
		size_t ncap = ix->capsegs ? ix->capsegs * 2 : 64;
		struct segstat *p;

		while (i >= ncap)
			ncap *= 2;
		if ((p = realloc(ix->segs, ncap * sizeof(*p))) == NULL)
			fatalx("queue: out of memory for the segment table");
		memset(p + ix->capsegs, 0, (ncap - ix->capsegs) * sizeof(*p));
		ix->segs = p;
		ix->capsegs = ncap;
	}
	if (i >= ix->nsegs)
		ix->nsegs = i + 1;
	return &ix->segs[i];
}

struct segstat *
index_seg(struct qindex *ix, uint64_t seg)
{
	if (ix->nsegs == 0 || seg < ix->oldest || seg - ix->oldest >= ix->nsegs)
		return NULL;
	return &ix->segs[seg - ix->oldest];
}

void
index_seen(struct qindex *ix, uint64_t seg, uint64_t end)
{
	struct segstat *s = seg_at(ix, seg);

	if (s != NULL && end > s->end)
		s->end = end;
}

/* Octets a payload of len takes in its segment. */
static uint64_t
rec_size(uint32_t len)
{
	return (uint64_t)JOURNAL_HDR_LEN + len + JOURNAL_TRAILER_LEN;
}

static void
live_one(struct qindex *ix, uint64_t seg, uint64_t n, int delta)
{
	struct segstat *s = seg_at(ix, seg);

	if (s == NULL)
		return;
	if (delta > 0) {
		s->live += n;
		ix->total_live += n;
	} else {
		if (s->live < n || ix->total_live < n)
			fatalx("queue: segment %llu live count below zero",
			    (unsigned long long)seg);
		s->live -= n;
		ix->total_live -= n;
	}
}

void
index_live(struct qindex *ix, const struct queue_msg *m, int delta)
{
	const struct queue_body *b = &m->body;
	uint32_t i;

	/* The MSG record: the inline part is its tail. */
	live_one(ix, b->inl.seg, rec_size(b->inl.len), delta);
	for (i = 0; i < b->nchunk; i++)
		live_one(ix, b->chunk[i].seg, rec_size(b->chunk[i].len), delta);
}

void
index_pin(struct qindex *ix, const struct journal_pos *ext, size_t n, int delta)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct segstat *s = seg_at(ix, ext[i].seg);

		if (s == NULL)
			continue;
		if (delta > 0)
			s->pins++;
		else if (s->pins == 0)
			fatalx("queue: segment pins below zero");
		else
			s->pins--;
	}
}

struct qentry *
index_add(struct qindex *ix, struct queue_msg *m, struct qentry *e)
{
	struct qentry **pe;

	if (e == NULL) {
		/* replay: no reservation */
		if (grow(ix, ix->count + ix->reserved + 1) == -1 ||
		    (e = calloc(1, sizeof(*e))) == NULL)
			return NULL;
	} else
		index_unreserve(ix);
	pe = slot(ix, m->qid);
	if (*pe != NULL) {
		/* A later MSG record for the same qid (a relocated copy, at
		 * replay) replaces the earlier one. */
		struct qentry *old = *pe;

		index_live(ix, old->m, -1);
		queue_msg_free(old->m);
		old->m = m;
		index_live(ix, m, 1);
		free(e);
		return old;
	}
	memset(e, 0, sizeof(*e));
	e->m = m;
	*pe = e;
	ix->count++;
	index_live(ix, m, 1);
	return e;
}

struct qentry *
index_remove(struct qindex *ix, const char *qid)
{
	struct qentry **pe, *e;

	if (ix->tabsize == 0 || *(pe = slot(ix, qid)) == NULL)
		return NULL;
	e = *pe;
	*pe = e->next;
	e->next = NULL;
	ix->count--;
	index_live(ix, e->m, -1);
	return e;
}

void
index_drop_oldest(struct qindex *ix)
{
	if (ix->nsegs == 0)
		return;
	memmove(ix->segs, ix->segs + 1, (ix->nsegs - 1) * sizeof(*ix->segs));
	ix->nsegs--;
	memset(&ix->segs[ix->nsegs], 0, sizeof(*ix->segs));
	ix->oldest++;
}

void
index_foreach(struct qindex *ix, void (*fn)(void *, struct qentry *), void *arg)
{
	size_t i;

	for (i = 0; i < ix->tabsize; i++) {
		struct qentry *e, *next;

		for (e = ix->tab[i]; e != NULL; e = next) {
			next = e->next;
			fn(arg, e);
		}
	}
}

void
index_free(struct qindex *ix)
{
	size_t i;

	for (i = 0; i < ix->tabsize; i++)
		while (ix->tab[i] != NULL) {
			struct qentry *e = ix->tab[i];

			ix->tab[i] = e->next;
			queue_msg_free(e->m);
			free(e);
		}
	free(ix->tab);
	free(ix->segs);
	memset(ix, 0, sizeof(*ix));
}
