/*
 * queue_apply: the tracking store's only writer (see queue.h).  It reads
 * the journal with a cursor from the store's mark up to what the writer
 * has synced, applies the records in batches (one transaction each, the
 * new mark written in the same transaction), and tells the loop how far
 * the store has got, and how far durably (after the store's sync).
 *
 * Nothing is kept in memory to retry: after a failed batch the cursor
 * goes back to the mark and the same records are read again a second
 * later.  A store that is down or hung therefore costs the node nothing
 * but the MTRK mail it refuses meanwhile; when it comes back it catches
 * up from the journal, which keeps every segment the store has not
 * durably applied.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue/queue_internal.h"

/* Records per store transaction. */
#define APPLY_BATCH 1024
/* Seconds between attempts while the store fails. */
#define APPLY_RETRY 1
/* Seconds between store syncs while the durable mark lags (the loop asks
 * sooner when a segment waits for it). */
#define APPLY_SYNC_EVERY 5

static int
mark_before(const struct qmark *a, const struct qmark *b)
{
	return a->seg < b->seg || (a->seg == b->seg && a->off < b->off);
}

static void
set_error(struct queue *q, const char *what)
{
	pthread_mutex_lock(&q->mtx);
	snprintf(q->apply_error, sizeof(q->apply_error), "%s", what);
	pthread_mutex_unlock(&q->mtx);
}

int
apply_init(struct queue *q, char *err, size_t errsize)
{
	struct store_mark mk;
	struct qmark start, end;
	uint64_t oldest = journal_oldest(q->j);
	int r;

	end.seg = journal_newest(q->j);
	end.off = journal_end(q->j);
	start.seg = oldest;
	start.off = JOURNAL_SEG_HDR_LEN;
	memset(&mk, 0, sizeof(mk));
	snprintf(mk.journal, sizeof(mk.journal), "%s", journal_id(q->j));
	if ((r = q->be->get_mark(q->store, &mk)) == -1) {
		/* Not fatal: the store may be down.  Start from the oldest
		 * segment: applying is idempotent. */
		set_error(q, q->be->error(q->store));
	} else if (r == 1) {
		struct qmark m = { mk.seg, mk.off };

		/* A mark inside the journal: go on from there.  Before it
		 * (segments dropped while the store was replaced by an older
		 * copy) or past its end (a journal older than the store),
		 * apply everything the journal has. */
		if (!mark_before(&m, &start) && !mark_before(&end, &m))
			start = m;
	}
	if ((q->cursor = journal_cursor_new(q->dir, start.seg, start.off)) ==
	    NULL) {
		snprintf(err, errsize, "queue: out of memory");
		return -1;
	}
	q->applied = start;
	q->durable = start;
	q->synced = end;
	q->lag_since = mark_before(&start, &end) ? time(NULL) : 0;
	return 0;
}

/* Applies records up to limit in one transaction.  Returns 1 if it
 * applied something, 0 if nothing was there, -1 on a store failure. */
static int
apply_batch(struct queue *q, const struct qmark *limit, size_t *n_out)
{
	struct store_mark mk;
	struct journal_pos pos;
	const void *payload;
	uint8_t type;
	size_t n = 0;
	int r = 0;

	*n_out = 0;
	if (q->be->begin(q->store) == -1)
		return -1;
	while (n < APPLY_BATCH &&
	    (r = journal_cursor_next(q->cursor, limit->seg, limit->off, &type,
	         &payload, &pos)) == 1) {
		n++;
		if (record_store_apply(
		        q->be, q->store, type, payload, pos.len) == -1)
			goto fail;
		/* -2: a record that does not decode was counted by the
		 * replay that saw it first; skipped. */
	}
	if (r == -1) {
		char e[256];

		snprintf(e, sizeof(e), "journal read: %s", strerror(errno));
		set_error(q, e);
		q->be->rollback(q->store);
		return -1;
	}
	if (n == 0) {
		q->be->rollback(q->store);
		return 0;
	}
	memset(&mk, 0, sizeof(mk));
	snprintf(mk.journal, sizeof(mk.journal), "%s", journal_id(q->j));
	journal_cursor_tell(q->cursor, &mk.seg, &mk.off);
	if (q->be->set_mark(q->store, &mk) == -1 ||
	    q->be->commit(q->store) == -1)
		goto fail;
	*n_out = n;
	return 1;
fail:
	set_error(q, q->be->error(q->store));
	q->be->rollback(q->store);
	return -1;
}

/* After a failed batch: read again from the last mark. */
static void
rewind_cursor(struct queue *q, const struct qmark *to)
{
	struct journal_cursor *c = journal_cursor_new(q->dir, to->seg, to->off);

	if (c == NULL)
		return; /* the next batch reads on from where it stopped:
			   it is rolled back, so it retries from there */
	journal_cursor_free(q->cursor);
	q->cursor = c;
}

void *
apply_main(void *arg)
{
	struct queue *q = arg;
	time_t last_sync = time(NULL), retry_at = 0;

	pthread_mutex_lock(&q->mtx);
	for (;;) {
		struct qmark limit = q->synced, applied = q->applied;
		int behind = mark_before(&applied, &limit);
		int sync_due = mark_before(&q->durable, &applied) &&
		    (q->want_sync ||
		        time(NULL) - last_sync >= APPLY_SYNC_EVERY);
		int purge = q->purge_asked;
		time_t now = time(NULL);

		if (q->apply_failed && now < retry_at && !q->writer_done) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += retry_at - now;
			pthread_cond_timedwait(&q->acond, &q->mtx, &ts);
			continue;
		}
		if (!behind && !sync_due && !purge) {
			struct timespec ts;

			if (q->writer_done)
				break;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += APPLY_SYNC_EVERY;
			pthread_cond_timedwait(&q->acond, &q->mtx, &ts);
			continue;
		}
		pthread_mutex_unlock(&q->mtx);

		if (behind) {
			size_t n;
			int r = apply_batch(q, &limit, &n);

			pthread_mutex_lock(&q->mtx);
			if (r == -1) {
				q->apply_failed = 1;
				q->stats.store_batches_failed++;
				retry_at = time(NULL) + APPLY_RETRY;
				pthread_mutex_unlock(&q->mtx);
				rewind_cursor(q, &applied);
				queue_wake_loop(q);
				pthread_mutex_lock(&q->mtx);
				if (q->writer_done)
					break; /* stopping: the next start
						  goes on from the mark */
				continue;
			}
			q->apply_failed = 0;
			q->apply_error[0] = '\0';
			if (r == 1) {
				journal_cursor_tell(q->cursor, &q->applied.seg,
				    &q->applied.off);
				q->stats.applied += n;
			}
			q->lag_since = mark_before(&q->applied, &q->synced)
			    ? time(NULL)
			    : 0;
			pthread_mutex_unlock(&q->mtx);
			queue_wake_loop(q);
		}
		if (sync_due) {
			struct qmark at;
			int r;

			pthread_mutex_lock(&q->mtx);
			at = q->applied;
			q->want_sync = 0;
			pthread_mutex_unlock(&q->mtx);
			r = q->be->sync(q->store);
			last_sync = time(NULL);
			pthread_mutex_lock(&q->mtx);
			if (r == 0)
				q->durable = at;
			pthread_mutex_unlock(&q->mtx);
			if (r == 0)
				queue_wake_loop(q);
		}
		if (purge) {
			size_t n = 0;
			int r;

			pthread_mutex_lock(&q->mtx);
			now = q->purge_now;
			pthread_mutex_unlock(&q->mtx);
			r = q->be->purge(q->store, now, &n);
			pthread_mutex_lock(&q->mtx);
			q->purge_asked = 0;
			q->purged = n;
			q->purge_rc = r;
			q->purge_done = 1;
			pthread_mutex_unlock(&q->mtx);
			queue_wake_loop(q);
		}
		pthread_mutex_lock(&q->mtx);
	}
	pthread_mutex_unlock(&q->mtx);
	return NULL;
}
