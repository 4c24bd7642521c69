/*
 * queue: msgtrkd's durable queue with group commit (journal.h) and the
 * tracking store kept in step with it (store.h).
 *
 * Every change goes through the queue's writer thread as a record: MSG (a
 * new message: envelope, tracking state, body), STATE (recipients'
 * delivery and tracking state after an attempt) and DONE (every recipient
 * final: the message leaves the queue; its tracking records stay in the
 * store until their retention ends).  The writer appends every request
 * that is waiting, fdatasyncs once, applies the batch to the store in one
 * transaction, and then calls each request's callback on the event loop:
 * so a 250 sent from a callback means message and tracking record are on
 * disk, and one fsync serves every session that finished DATA meanwhile.
 * The store is updated by decoding the very records that were written,
 * with the same code that replays the journal at startup.
 *
 * Threads: everything here is called on the event loop's thread, except
 * what the writer thread does inside.  struct queue_msg belongs to the
 * loop thread; requests carry serialized copies, never pointers into it.
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

struct queue_msg {
	char qid[QUEUE_ID_LEN + 1];
	char *sender; /* reverse-path without <>, "" for <> */
	char *envid_raw; /* ENVID value as received (xtext), or NULL */
	char *envid; /* decoded, or NULL */
	uint8_t ret; /* enum queue_ret */
	uint8_t body_8bit; /* BODY=8BITMIME */
	uint8_t mtrk; /* MTRK given */
	uint8_t delay_warned; /* the delay DSN went out */
	char certifier[STORE_CERTIFIER_LEN + 1];
	uint32_t mtrk_timeout; /* MTRK :timeout as received, 0 if none */
	uint8_t mtrk_has_timeout; /* MTRK carried ":timeout" (0 is one) */
	time_t arrival;
	time_t expires; /* end of tracking retention */
	char *reporting_mta; /* our hostname at arrival */
	char *helo; /* for logs */
	char *client; /* client address, for logs */
	uint64_t size; /* body octets */
	time_t next_attempt;
	uint32_t attempts;
	size_t nrcpt;
	struct queue_rcpt *rcpts;
	struct journal_pos body; /* where the body is; set by the queue */
};

/* Limits on what one record may describe (records are also parsed back
 * at startup, so they are bounded like any input). */
#define QUEUE_RCPT_MAX 10000
#define QUEUE_STRING_MAX 4096

/* Called on the loop thread when a request is durable (rc 0) or failed
 * (rc -1, err an errno value: ENOSPC/EDQUOT/EFBIG for a full disk, EIO
 * and others for a broken disk or store). */
typedef void (*queue_done_cb)(void *arg, int rc, int err);

struct queue;

/* Opens the journal in <data_dir>/queue.  store is the writer's handle;
 * the queue owns neither.  Returns NULL with err set. */
struct queue *queue_open(struct event_base *base, const char *data_dir,
    struct store *store, const struct store_backend *backend,
    uint64_t segment_size, char *err, size_t errsize);

/* Replays the journal into the store and calls fn for every message still
 * in the queue (the queue keeps it; fn may schedule it).  Then starts the
 * writer thread.  Call once, before any other request.  Returns the
 * number of live messages, or -1 with err set. */
int queue_recover(struct queue *q, void (*fn)(void *arg, struct queue_msg *m),
    void *arg, char *err, size_t errsize);

/* Fills m->qid with a fresh queue id. */
void queue_new_id(char out[QUEUE_ID_LEN + 1]);

/* Queues a new message; body is n iovecs (the message as received, after
 * dot-unstuffing) that must stay valid until done is called.  On success
 * the queue owns m (it stays valid until queue_finish's callback). */
int queue_submit(struct queue *q, struct queue_msg *m, const struct iovec *body,
    int n, queue_done_cb done, void *arg);

/* Makes durable the state of recipients idx[0..n-1] of m (and m's
 * next_attempt, attempts, delay_warned), as the caller already set them
 * in m. */
int queue_update(struct queue *q, struct queue_msg *m, const uint32_t *idx,
    size_t n, queue_done_cb done, void *arg);

/* Removes m from the queue (every recipient final).  m is freed after
 * done has been called. */
int queue_finish(
    struct queue *q, struct queue_msg *m, queue_done_cb done, void *arg);

/* Deletes the tracking records whose retention ended before now and
 * whose messages left the queue (store purge), on the writer thread so
 * the loop never waits for it.  *n_out (which must stay valid until done
 * runs) receives the number of messages deleted. */
int queue_purge(
    struct queue *q, time_t now, size_t *n_out, queue_done_cb done, void *arg);

/* Reads m's body into out (appended).  Returns 0 or -1 (errno). */
struct buf;
int queue_read_body(
    struct queue *q, const struct queue_msg *m, struct buf *out);

/* Returns 1 while the last store update failed: the tracking store is
 * unavailable (the journal still holds everything), so new MTRK
 * transactions should be refused with 455 4.3.0 and MTQP answer -TEMP. */
int queue_store_failed(const struct queue *q);

/* While held, the writer takes no new requests; they wait, and are
 * written together (one sync) when released.  For maintenance and for
 * tests that show batching. */
void queue_hold(struct queue *q, int hold);

/* Counters since queue_open: records appended and syncs made. */
struct queue_stats {
	uint64_t records;
	uint64_t syncs;
	uint64_t dropped_segments;
	uint64_t relocated;
};
void queue_stats(struct queue *q, struct queue_stats *out);

/* Reads the queue in <data_dir>/queue without changing anything (for
 * msgtrk queue, while msgtrkd may be running) and calls fn for every
 * message still queued; the message is valid during the call only.
 * Returns the number of messages, or -1 with err set. */
int queue_scan(const char *data_dir, void (*fn)(void *arg, struct queue_msg *m),
    void *arg, char *err, size_t errsize);

/* Number of messages in the queue. */
size_t queue_count(const struct queue *q);

/* Calls fn for every message in the queue (msgtrk queue, shutdown). */
void queue_foreach(
    struct queue *q, void (*fn)(void *arg, struct queue_msg *m), void *arg);

/* Stops taking requests, lets the writer finish what it has (callbacks
 * still run), and joins it. */
void queue_stop(struct queue *q);

/* Frees the queue and every message in it.  Call after queue_stop. */
void queue_free(struct queue *q);

/* Frees a message that is not (or no longer) owned by a queue. */
void queue_msg_free(struct queue_msg *m);

/* Encodes m (envelope and recipient state, no body) as a MSG record
 * header; decodes one back.  Exposed for the tests and for msgtrk queue.
 * Returns 0 or -1 (malformed, or a limit passed). */
int queue_msg_encode(const struct queue_msg *m, struct buf *out);
int queue_msg_decode(const void *p, size_t n, struct queue_msg *m);

#endif /* MSGTRK_QUEUE_H */
