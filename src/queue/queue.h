/*
 * queue: msgtrkd's durable queue (a journal of records with group commit,
 * journal.h) and the tracking store kept as an index of it (store.h).
 *
 * Records: MSG (a new message: envelope, tracking state, body), STATE (a
 * change to some recipients' state and to the schedule), DONE (every
 * recipient final: the message leaves the queue), CHUNK (a piece of a
 * large body, written while DATA still arrives).  The writer thread
 * appends every request that is waiting and fdatasyncs once; only then is
 * a request's callback called, on the event loop: so a 250 sent from a
 * callback means the message is on disk, and one fsync serves every
 * session that finished DATA meanwhile.
 *
 * The journal is the truth; the store is an index of it.  A separate
 * applier thread reads the journal from the store's mark (the position
 * the store has applied, kept in the store with each batch) and applies
 * it, so a slow, failed or hung store never holds a 250 back; a segment
 * is deleted only once the store has durably applied everything in it.
 * While the store lags, queue_store_failed() says so (MTRK mail is then
 * refused with 455) and queue_store_wait() lets a reader wait until
 * everything synced so far is applied (MTQP: read your writes).
 *
 * One owner of committed state: the queue's struct queue_msg changes only
 * when the record that says so is durable.  Delivery works on its own
 * attempt state and hands the queue a delta (struct queue_update).
 *
 * Compaction converges: a live message is copied out of the oldest
 * segment only while the journal is mostly dead (queue_compact.c), at a
 * bounded rate, and never while a request about it is in flight.
 *
 * Threads: everything here is called on the event loop's thread, except
 * queue_body_next() (worker threads) and queue_scan() (any).
 */
#ifndef MSGTRK_QUEUE_H
#define MSGTRK_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include "queue/journal.h"
#include "store/store.h"

struct event_base;

/* Queue ids: 16 characters of [0-9A-Za-z] (PRODUCT.md allows 1-32):
 * 11 for the microsecond clock, 5 random. */
#define QUEUE_ID_LEN 16

/* RFC 3461 §4.1 NOTIFY flags; 0 means NOTIFY was not given. */
#define QUEUE_NOTIFY_NEVER 0x01
#define QUEUE_NOTIFY_SUCCESS 0x02
#define QUEUE_NOTIFY_FAILURE 0x04
#define QUEUE_NOTIFY_DELAY 0x08

/* RFC 3461 §4.3 RET. */
enum queue_ret {
	QUEUE_RET_NONE,
	QUEUE_RET_FULL,
	QUEUE_RET_HDRS,
};

struct queue_rcpt {
	char *addr; /* forward-path without <> */
	char *orcpt_raw; /* ORCPT value as received, relayed as is */
	uint8_t notify; /* QUEUE_NOTIFY_* */
	uint8_t final; /* 1: no more attempts for this one */
	uint8_t dsn_sent; /* 1: its DSN went out (or was not asked) */
	struct store_rcpt track; /* tracking state; track.idx = position */
};

/* Where a message's body is: inline octets inside its MSG record, of
 * which the first `head` come before the chunks (our Received: field),
 * the rest after them.  The body is the content as received (dot-
 * unstuffed, CRLF line ends) with our Received: field first. */
struct queue_body {
	struct journal_pos inl;
	uint32_t head;
	uint32_t nchunk;
	struct journal_pos *chunk; /* CHUNK payloads, in order */
};

struct queue_msg {
	char qid[QUEUE_ID_LEN + 1];
	char *sender; /* reverse-path without <>, "" for <> */
	char *envid_raw; /* ENVID value as received (xtext), or NULL */
	char *envid; /* decoded, or NULL */
	uint8_t ret; /* enum queue_ret */
	uint8_t body_8bit; /* BODY=8BITMIME */
	uint8_t mtrk; /* MTRK given */
	uint8_t delay_warned; /* the delay DSN went out */
	uint8_t held; /* the operator holds it: no attempt until released */
	char certifier[STORE_CERTIFIER_LEN + 1];
	uint32_t mtrk_timeout; /* MTRK :timeout as received, 0 if none */
	uint8_t mtrk_has_timeout; /* MTRK carried ":timeout" (0 is one) */
	time_t arrival;
	time_t expires; /* end of tracking retention */
	char *reporting_mta; /* our hostname at arrival */
	char *helo; /* for logs */
	char *client; /* client address, for logs */
	/* Submission (PRODUCT.md): the login that authenticated (NULL: none),
	 * and for a message msgtrkd made trackable (submission_track) the
	 * secret it made (unpadded base64, never logged) and the message's
	 * Subject (printable, bounded), kept in the store for that login. */
	char *login;
	char *secret;
	char *subject;
	uint64_t size; /* body octets (set by the queue) */
	time_t next_attempt;
	uint32_t attempts;
	size_t nrcpt;
	struct queue_rcpt *rcpts;
	struct queue_body body; /* set by the queue */
};

/* Limits on what one record may describe (records are also parsed back
 * at startup, so they are bounded like any input). */
#define QUEUE_RCPT_MAX 10000
#define QUEUE_STRING_MAX 4096
/* Bodies larger than this are written in CHUNK records of this size as
 * they arrive (queue_spool): DATA is never held whole in memory. */
#define QUEUE_CHUNK_SIZE (64 * 1024)
/* The largest body: max_message_size may not be set above it (conf.h's
 * CONF_MESSAGE_SIZE_MAX is the same number). */
#define QUEUE_MESSAGE_MAX ((uint64_t)1 << 30)
#define QUEUE_CHUNKS_MAX (QUEUE_MESSAGE_MAX / QUEUE_CHUNK_SIZE + 2)
/* Octets all spools together may hold in memory; past it a spool fails
 * (ENOBUFS: the session answers 451 4.3.1). */
#define QUEUE_SPOOL_BUDGET ((uint64_t)256 << 20)
/* Chunks one spool may have in flight before its session stops reading. */
#define QUEUE_SPOOL_INFLIGHT 2

/* Called on the loop thread when a request is durable (rc 0) or failed
 * (rc -1, err an errno value: ENOSPC/EDQUOT/EFBIG for a full disk, EIO
 * and others for a broken disk). */
typedef void (*queue_done_cb)(void *arg, int rc, int err);

struct queue;

/* Opens the journal in <data_dir>/queue.  store is the applier thread's
 * handle; the queue owns neither.  segment_size 0: the default.  Returns
 * NULL with err set. */
struct queue *queue_open(struct event_base *base, const char *data_dir,
    struct store *store, const struct store_backend *backend,
    uint64_t segment_size, char *err, size_t errsize);

/* Rebuilds the live messages from the journal and calls fn for each (the
 * queue keeps it; fn may schedule it); then starts the writer and the
 * store applier (which brings the store up to date from its mark, in the
 * background).  Call once, before any other request.  Returns the number
 * of live messages, or -1 with err set; err holds a warning (torn tails,
 * unreadable records) when it is not empty on success. */
int queue_recover(struct queue *q,
    void (*fn)(void *arg, const struct queue_msg *m), void *arg, char *err,
    size_t errsize);

/* Fills out with a fresh queue id. */
void queue_new_id(char out[QUEUE_ID_LEN + 1]);

/*
 * A body being received (SMTP DATA), written to the journal in chunks of
 * QUEUE_CHUNK_SIZE as it arrives.  The caller appends content to
 * queue_spool_buf() and calls queue_spool_push() after each append.
 */
struct queue_spool;
struct queue_spool *queue_spool_new(struct queue *q);
/* The buffer to append to (its max leaves room for one more
 * SMTP_LINE_INPUT_MAX-sized append after every push). */
struct buf *queue_spool_buf(struct queue_spool *sp);
/* Moves whole chunks from the buffer to the journal.  Returns 0, or -1
 * once the spool failed (a write failed, or QUEUE_SPOOL_BUDGET was
 * exceeded: queue_spool_error() says which); content is then dropped and
 * the message must be refused. */
int queue_spool_push(struct queue_spool *sp);
/* 1 while QUEUE_SPOOL_INFLIGHT chunks are being written: read no more
 * input; ready(arg) is called when it falls below. */
int queue_spool_busy(const struct queue_spool *sp);
void queue_spool_on_ready(
    struct queue_spool *sp, void (*ready)(void *arg), void *arg);
/* 0, or the errno of the failure (ENOBUFS: over the memory budget). */
int queue_spool_error(const struct queue_spool *sp);
/* Abandons the spool (chunks written so far become garbage). */
void queue_spool_free(struct queue_spool *sp);

/*
 * Queues a new message.  Its body is the n inline iovecs, then what was
 * spooled in sp (may be NULL).  The iovecs must stay valid until done is
 * called; sp belongs to the queue from now on (also on failure).  On
 * success m belongs to the queue (valid until queue_finish's callback);
 * on failure (done with rc -1, or a return of -1) it stays the caller's.
 */
int queue_submit(struct queue *q, struct queue_msg *m, const struct iovec *inl,
    int n, struct queue_spool *sp, queue_done_cb done, void *arg);

/* Queues a new message m whose body is a copy of src's (made by the
 * writer: nothing is read on the loop).  As queue_submit otherwise. */
int queue_submit_copy(struct queue *q, struct queue_msg *m,
    const struct queue_msg *src, queue_done_cb done, void *arg);

/* A change to a queued message: the schedule, and some recipients'
 * state (track.idx says which; strings are the caller's). */
struct queue_rcpt_update {
	uint8_t final; /* no more attempts for this one */
	uint8_t dsn_sent; /* its DSN went out (or was not asked) */
	struct store_rcpt track;
};
struct queue_update {
	time_t next_attempt;
	uint32_t attempts;
	uint8_t delay_warned;
	uint8_t held;
	size_t n;
	const struct queue_rcpt_update *r;
};

/* Makes u durable; the queue's copy of m changes when it is (before done
 * is called).  u is copied: the caller's may go at once. */
int queue_update(struct queue *q, const struct queue_msg *m,
    const struct queue_update *u, queue_done_cb done, void *arg);

/* Removes m from the queue (every recipient final).  m is freed after
 * done has been called. */
int queue_finish(
    struct queue *q, const struct queue_msg *m, queue_done_cb done, void *arg);

/* Deletes the tracking records whose retention ended before now and
 * whose messages left the queue (store purge), on the applier thread so
 * the loop never waits for it.  *n_out (which must stay valid until done
 * runs) receives the number of messages deleted.  One purge at a time. */
int queue_purge(
    struct queue *q, time_t now, size_t *n_out, queue_done_cb done, void *arg);

/*
 * Reading a body back.  queue_body_open() (loop thread) takes a copy of
 * m's body extents and pins their segments until queue_body_close(), so a
 * relocation meanwhile changes nothing for this reader.
 */
struct queue_body_reader;
struct queue_body_reader *queue_body_open(
    struct queue *q, const struct queue_msg *m);
/* Appends the next piece (at most QUEUE_CHUNK_SIZE octets) to out.
 * Blocking (pread): call it on a worker thread, never on the loop.
 * Returns 1 (a piece), 0 (the end), -1 (errno set). */
int queue_body_next(struct queue_body_reader *r, struct buf *out);
/* The same, off the loop: cb(arg, rc, err) runs on the loop thread with
 * queue_body_next()'s result.  Returns 0, or -1 (errno). */
int queue_body_read(struct queue *q, struct queue_body_reader *r,
    struct buf *out, void (*cb)(void *arg, int rc, int err), void *arg);
/* 1 once every piece has been read (the next queue_body_next() returns
 * 0), else 0.  Not while a read is in flight. */
int queue_body_done(const struct queue_body_reader *r);
/* Closes r (loop thread).  A read in flight must have called back. */
void queue_body_close(struct queue_body_reader *r);
/* The body's size in octets. */
uint64_t queue_body_size(const struct queue_body *b);

/* Returns 1 while the tracking store cannot keep up: its last batch
 * failed, or it has records to apply and made no progress for
 * QUEUE_STORE_STALL seconds (a hung database).  New MTRK transactions are
 * then refused with 455 4.3.0 and MTQP answers -TEMP. */
#define QUEUE_STORE_STALL 3
int queue_store_failed(const struct queue *q);

/* Waits until the store has applied everything synced so far (what a
 * client was told is queued).  Returns NULL if it already has (cb is not
 * called); else cb(arg, 1) runs when it has, or cb(arg, 0) after
 * timeout_ms.  The handle is valid until cb; cancel with
 * queue_store_wait_cancel() (cb then never runs). */
struct queue_store_waiter;
struct queue_store_waiter *queue_store_wait(struct queue *q,
    unsigned int timeout_ms, void (*cb)(void *arg, int ok), void *arg);
void queue_store_wait_cancel(struct queue *q, struct queue_store_waiter *w);

/* While held, the writer takes no new requests; they wait, and are
 * written together (one sync) when released.  For maintenance and for
 * tests that show batching. */
void queue_hold(struct queue *q, int hold);

/* Counters since queue_open. */
/* Commit latency (request to durable callback, MSG/STATE/DONE) is counted
 * in buckets whose upper bounds, in microseconds, are these (the last is
 * +Inf): the shape of a Prometheus histogram. */
#define QUEUE_LATENCY_BUCKETS 12
extern const uint64_t queue_latency_bounds_us[QUEUE_LATENCY_BUCKETS - 1];

struct queue_stats {
	uint64_t records; /* appended (all types) */
	uint64_t syncs; /* fdatasyncs made */
	uint64_t written; /* octets appended, headers included */
	uint64_t dropped_segments;
	uint64_t relocated; /* messages moved by compaction */
	uint64_t relocated_bytes;
	uint64_t applied; /* records the store applied */
	uint64_t store_batches_failed;
	uint64_t commits; /* requests made durable (or failed) */
	uint64_t commit_us; /* their latencies summed */
	uint64_t commit_buckets[QUEUE_LATENCY_BUCKETS]; /* cumulative no */
};
void queue_stats(struct queue *q, struct queue_stats *out);

/* The oldest arrival among queued messages (0 if none), and how many
 * seconds the store has been behind the journal without catching up (0
 * when it is up to date). */
time_t queue_oldest_arrival(struct queue *q);
time_t queue_store_lag(const struct queue *q);

/* Reads the queue in <data_dir>/queue without changing anything (for
 * msgtrk queue, while msgtrkd may be running) and calls fn for every
 * message still queued; the message is valid during the call only.
 * Returns the number of messages, or -1 with err set. */
int queue_scan(const char *data_dir,
    void (*fn)(void *arg, const struct queue_msg *m), void *arg, char *err,
    size_t errsize);

/* Number of messages in the queue. */
size_t queue_count(const struct queue *q);

/* The queued message qid, or NULL. */
const struct queue_msg *queue_find(struct queue *q, const char *qid);

/* Calls fn for every message in the queue. */
void queue_foreach(struct queue *q,
    void (*fn)(void *arg, const struct queue_msg *m), void *arg);

/* Stops taking requests, lets the writer finish what it has (callbacks
 * still run) and the applier apply it, and joins both. */
void queue_stop(struct queue *q);

/* Frees the queue and every message in it.  Call after queue_stop. */
void queue_free(struct queue *q);

/* Frees a message that is not (or no longer) owned by a queue. */
void queue_msg_free(struct queue_msg *m);

/* Encodes m (envelope and recipient state, no body) as a MSG record's
 * envelope; decodes one back.  Exposed for the tests and for msgtrk
 * queue.  Returns 0 or -1 (malformed, or a limit passed). */
int queue_msg_encode(const struct queue_msg *m, struct buf *out);
int queue_msg_decode(const void *p, size_t n, struct queue_msg *m);

#endif /* MSGTRK_QUEUE_H */
