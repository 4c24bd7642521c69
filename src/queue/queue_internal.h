/*
 * queue_internal: what the queue's files share (internal to src/queue).
 *
 *   queue.c          the public API: open, recover, submit, update,
 *                    finish, stop; completions on the loop thread
 *   queue_record.c   the record codec: envelope (TLV), STATE deltas,
 *                    DONE, body extents; record -> store calls
 *   queue_index.c    the live index (qid -> committed message) and the
 *                    per-segment accounting (bytes written, live, pins)
 *   queue_writer.c   the writer thread: appends, group commit (one
 *                    fdatasync per batch), copies of bodies, drops
 *   queue_apply.c    the store applier thread: reads the journal from
 *                    the store's mark on, applies it, moves the mark
 *   queue_compact.c  which segment to drop, which messages to move, and
 *                    how fast
 *   queue_spool.c    DATA bodies spooled to the journal in chunks
 *   queue_body.c     reading a body back in pieces
 *
 * Threads.  The loop thread owns the index, the segment table, the spools
 * and every struct queue_msg.  The writer thread owns the journal (appends,
 * rotation, drops); the applier thread owns the store handle and its
 * cursor.  They meet under q->mtx: the request lists, the synced position
 * (writer -> applier, loop), the applied and durable marks (applier ->
 * loop), the store's health.  Requests carry serialized records, never
 * pointers into loop-thread state.
 *
 * The rule that makes the journal the truth: the loop's committed copy of
 * a message (the index) changes only in a completion, after the record
 * that says so is durable; a request's record is encoded from what the
 * caller asked (a delta), not from the committed copy, except for
 * relocation, which copies the committed copy and is only made for a
 * message with no request in flight (FIFO order then puts every later
 * record after the copy).
 */
#ifndef MSGTRK_QUEUE_INTERNAL_H
#define MSGTRK_QUEUE_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "msgtrk/buf.h"
#include "queue/journal.h"
#include "queue/queue.h"

struct event;
struct event_base;
struct workers;

/* Record types.  Never renumber: they are on disk. */
enum {
	REC_MSG_V1 = 1, /* a message, body inline (read, never written) */
	REC_STATE = 2, /* recipients' state, schedule */
	REC_DONE = 3, /* every recipient final: the message left */
	REC_CHUNK = 4, /* a piece of a body being received */
	REC_MSG = 5, /* a message: envelope, body extents, inline body */
};

/* --- queue_record.c ------------------------------------------------- */

/* A decoded MSG record's body layout (positions inside the record). */
int record_msg_decode(const void *p, size_t n, const struct journal_pos *pos,
    uint8_t type, struct queue_msg *m);
/* Builds a MSG record's payload: envelope of m, the extents, head (the
 * number of inline octets before the extents), then the inline octets
 * are appended by the caller (the writer), from iovecs.  The extents are
 * written by the writer too (record_msg_set_extents) once known. */
int record_msg_head(const struct queue_msg *m, struct buf *out);
/* Appends the extent table and head count to a record head made by
 * record_msg_head(). */
int record_msg_extents(struct buf *out, const struct journal_pos *chunk,
    uint32_t nchunk, uint32_t head);
/* A STATE record from an update (delta) for qid. */
int record_state(
    const char *qid, const struct queue_update *u, struct buf *out);
/* A DONE record for qid. */
int record_done(const char *qid, struct buf *out);
/* The qid of a STATE or DONE record. */
int record_qid(const void *p, size_t n, char out[QUEUE_ID_LEN + 1]);
/* Applies a STATE record to m (the committed copy, at replay). */
int record_state_apply(const void *p, size_t n, struct queue_msg *m);
/* Applies an update to m (the committed copy, at completion).  Returns
 * 0, or -1 out of memory (m is then unchanged). */
int record_update_apply(struct queue_msg *m, const struct queue_update *u);
/* Applies one record to the store, inside the caller's batch.  Returns 0,
 * -1 if the store failed, -2 if the record does not decode. */
int record_store_apply(const struct store_backend *be, struct store *st,
    uint8_t type, const void *p, size_t n);
void record_msg_clear(struct queue_msg *m);

/* --- queue_index.c -------------------------------------------------- */

struct qentry {
	struct qentry *next; /* hash chain */
	struct queue_msg *m;
	unsigned int pending; /* requests in flight about it */
	unsigned int readers; /* open body readers */
	int relocating;
	int finishing; /* a DONE is in flight: never relocate */
};

/* Per segment: what was written, what is still needed, who reads it. */
struct segstat {
	uint64_t end; /* end of the last record seen */
	uint64_t live; /* octets of live messages' records (MSG, CHUNK) */
	uint32_t pins; /* extents held by open readers */
};

struct qindex {
	struct qentry **tab;
	size_t tabsize, count;
	size_t reserved; /* entries promised to submits in flight */
	uint64_t oldest; /* the first segment in segs[] */
	struct segstat *segs;
	size_t nsegs, capsegs;
	uint64_t total_live; /* sum of live */
};

/* Reserves room for one more entry (a submit in flight): the completion
 * then cannot fail.  Returns 0, or -1 out of memory. */
int index_reserve(struct qindex *ix);
void index_unreserve(struct qindex *ix);
/* Adds m (using a reservation), its extents counted live.  e may be a
 * preallocated entry or NULL (allocated: replay).  Returns the entry, or
 * NULL out of memory (replay only). */
struct qentry *index_add(
    struct qindex *ix, struct queue_msg *m, struct qentry *e);
struct qentry *index_find(struct qindex *ix, const char *qid);
/* Unlinks and returns the entry (its extents no longer live). */
struct qentry *index_remove(struct qindex *ix, const char *qid);
/* Counts (delta +1/-1) m's extents as live in their segments. */
void index_live(struct qindex *ix, const struct queue_msg *m, int delta);
/* Pins (+1) or unpins (-1) the segments of n extents. */
void index_pin(
    struct qindex *ix, const struct journal_pos *ext, size_t n, int delta);
/* Notes that a record ends at end in segment seg. */
void index_seen(struct qindex *ix, uint64_t seg, uint64_t end);
/* The stats of segment seg, NULL if not tracked. */
struct segstat *index_seg(struct qindex *ix, uint64_t seg);
/* Drops the oldest segment's stats. */
void index_drop_oldest(struct qindex *ix);
void index_free(struct qindex *ix);
/* Calls fn for every message. */
void index_foreach(
    struct qindex *ix, void (*fn)(void *arg, struct qentry *e), void *arg);

/* --- queue_writer.c ------------------------------------------------- */

enum req_kind {
	REQ_SUBMIT, /* a new message (MSG), optionally copying a body */
	REQ_CHUNK, /* a piece of a spooled body */
	REQ_UPDATE, /* STATE */
	REQ_FINISH, /* DONE */
	REQ_RELOCATE, /* a live message copied into the newest segment */
	REQ_DROP, /* the oldest segment deleted */
};

/* Inline octets per request, in iovecs. */
#define QREQ_IOV_MAX 60

struct qreq {
	struct qreq *next;
	enum req_kind kind;
	char qid[QUEUE_ID_LEN + 1];
	struct buf head; /* the record without inline body and extents */
	/* MSG: inline body octets, head_iov of them before the extents */
	struct iovec iov[QREQ_IOV_MAX];
	int niov, head_iov;
	/* MSG: extents written before (spool chunks) */
	struct journal_pos *chunk;
	uint32_t nchunk;
	/* MSG copy (relocation, expansion): the source body to copy */
	struct queue_body copy;
	/* CHUNK: the data (owned), its index in the spool; CHUNK and
	 * SUBMIT: the spool it belongs to */
	struct buf data;
	uint32_t chunk_index;
	struct queue_spool *spool;
	/* SUBMIT copy: the source's extents are pinned until done */
	int copy_pinned;
	/* results */
	struct journal_pos pos; /* the record written (MSG, STATE...) */
	struct queue_body body; /* MSG: where the body is now (owned) */
	int rc, err;
	/* completion (loop thread) */
	struct queue_msg *m; /* SUBMIT: the message, owned until done */
	struct qentry *entry; /* SUBMIT: preallocated index entry */
	struct queue_update *upd; /* UPDATE: applied at completion */
	queue_done_cb done;
	void *arg;
	struct timespec born; /* for the commit latency */
};

struct qreq *qreq_new(enum req_kind kind, queue_done_cb done, void *arg);
void qreq_free(struct qreq *r);
/* Hands r to the writer.  Returns 0, or -1 (ESHUTDOWN: r is still the
 * caller's). */
int writer_enqueue(struct queue *q, struct qreq *r);
void *writer_main(void *arg);

/* --- queue_apply.c -------------------------------------------------- */

void *apply_main(void *arg);
/* Starts the applier at the store's mark (or the oldest segment). */
int apply_init(struct queue *q, char *err, size_t errsize);

/* --- queue_spool.c -------------------------------------------------- */

/* A CHUNK request completed (loop thread).  Returns the spool's MSG
 * request if it was waiting for this last chunk (the caller enqueues it,
 * or fails it), else NULL.  The spool may be freed meanwhile (abandoned). */
struct qreq *spool_chunk_done(struct queue_spool *sp, struct qreq *r);
/* Attaches the MSG request r to sp: 1 if it may be enqueued now, 0 if it
 * waits for chunks in flight (spool_chunk_done returns it), -1 if the
 * spool failed (errno). */
int spool_attach(struct queue_spool *sp, struct qreq *r);
/* Fills r's extents and its inline tail (the buffer) from sp.  Returns
 * 0, or -1 (errno). */
int spool_fill(struct queue_spool *sp, struct qreq *r);
/* The body octets the spool holds (chunks and buffer). */
uint64_t spool_size(const struct queue_spool *sp);
/* Frees sp once its message is written (or failed). */
void spool_release(struct queue_spool *sp);

/* --- queue_compact.c ------------------------------------------------ */

/* Looks whether the oldest segment can go, or messages should move. */
void compact_run(struct queue *q);

/* --- queue.c -------------------------------------------------------- */

/* A position just past a record: (seg, end). */
struct qmark {
	uint64_t seg, off;
};

struct queue_store_waiter {
	struct queue_store_waiter *next;
	struct queue *q;
	struct qmark want;
	struct event *timer;
	void (*cb)(void *arg, int ok);
	void *arg;
};

struct queue {
	struct event_base *base;
	struct journal *j;
	char *dir;
	struct store *store; /* the applier thread's */
	const struct store_backend *be;

	/* loop thread */
	struct qindex ix;
	uint64_t newest_seen; /* the newest segment a completion named */
	int stopping_loop; /* queue_stop() began */
	int drop_inflight;
	uint64_t compact_tokens; /* octets relocation may write now */
	struct timespec compact_stamp;
	size_t relocating; /* relocations in flight */
	struct event *tick; /* compaction and store health, every second */
	struct queue_store_waiter *waiters;
	struct qmark durable_seen; /* the durable mark as the loop knows it */
	uint64_t spool_bytes; /* held by spools (budget) */
	struct workers *io; /* body reads off the loop */

	/* shared, under mtx */
	pthread_mutex_t mtx;
	pthread_cond_t cond; /* writer: requests */
	pthread_cond_t acond; /* applier: synced moved, purge, stop */
	pthread_t writer, applier;
	int started;
	struct qreq *pending, **pending_tail;
	struct qreq *done, **done_tail;
	int stopping;
	int writer_done; /* the writer has exited: the applier may too */
	int hold;
	struct qmark synced; /* end of what fdatasync made durable */
	struct qmark applied; /* end of what the store has applied */
	struct qmark durable; /* applied and store-synced: segments below go */
	int apply_failed; /* the last store batch failed */
	time_t lag_since; /* applied behind synced and not moving since */
	char apply_error[256];
	int purge_asked;
	time_t purge_now;
	size_t purged;
	int purge_rc;
	int purge_done; /* a purge finished: the loop calls back */
	queue_done_cb purge_cb;
	void *purge_arg;
	size_t *purge_out;
	int want_sync; /* the loop wants the durable mark to move */
	struct queue_stats stats;
	int efd; /* eventfd: writer and applier wake the loop */
	struct event *ev_done;

	/* applier thread */
	struct journal_cursor *cursor;
};

/* Wakes the loop thread (writer and applier). */
void queue_wake_loop(struct queue *q);

#endif /* MSGTRK_QUEUE_INTERNAL_H */
