/*
 * journal: the queue's append-only segment files, the single source of
 * truth for every accepted message and every tracking change.
 *
 * Why a journal and not one file per message: a 250 after DATA promises
 * that the message and its tracking record are on disk.  On this project's
 * reference machine a file per message (write, fsync, rename, fsync dir)
 * reaches about 2,000 msg/s; one fdatasync shared by a batch of 64 records
 * appended to one file reaches about 67,000 msg/s (4 KiB messages).  The
 * queue's writer thread appends every record that arrived while the
 * previous fdatasync ran, then syncs once: group commit.
 *
 * Layout: <dir>/seg-<16 hex digits>, numbered upwards.  A segment starts
 * with a 32-octet header (magic, format version, number) and holds
 * records:
 *
 *	u32 magic "MQR1" | u8 version | u8 type | u16 0 | u32 len | u32 crc
 *	payload (len octets)
 *	u32 end marker
 *
 * (little-endian; crc is CRC-32C over the first 12 header octets and the
 * payload).  A record counts only when its header, payload, crc and end
 * marker are all intact: at startup the last segment is cut back to its
 * last intact record, which discards a message whose write was torn by a
 * crash (it was never acknowledged, because the 250 waits for the sync).
 *
 * New segments are made as tmp files, fsync'd, renamed into place and the
 * directory fsync'd, so a segment name always means a valid header.
 * Segments are deleted oldest first only (a later segment may hold the
 * DONE record of a message in an earlier one), after the caller has
 * relocated the oldest segment's live messages and synced the store.
 *
 * Not thread-safe: the queue's writer thread owns a journal; only
 * journal_read() may be called concurrently (it uses pread).
 */
#ifndef MSGTRK_JOURNAL_H
#define MSGTRK_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define JOURNAL_VERSION 1
#define JOURNAL_HDR_LEN 16 /* record header */
#define JOURNAL_TRAILER_LEN 4 /* record end marker */
#define JOURNAL_SEG_HDR_LEN 32 /* segment header */
/* A record's payload is bounded (the largest message plus its envelope);
 * a larger length field is corruption, not a record. */
#define JOURNAL_RECORD_MAX ((uint32_t)1 << 30)
/* A journal's id: hex digits, made at creation (journal_id()). */
#define JOURNAL_ID_LEN 32
/* Default segment size before rotation. */
#define JOURNAL_SEGMENT_SIZE ((uint64_t)64 << 20)

/* Where a record lives: enough to read its payload back. */
struct journal_pos {
	uint64_t seg; /* segment number */
	uint64_t off; /* offset of the payload in the segment */
	uint32_t len; /* payload length */
};

struct journal;

/* Opens the journal in dir (created 0700 if missing): finds the segments,
 * checks their headers, and opens the newest for appending (making the
 * first one when there is none).  Does not read records: call
 * journal_replay() before the first append.  Returns NULL with errno set
 * and a message in err. */
struct journal *journal_open(
    const char *dir, uint64_t segment_size, char *err, size_t errsize);

/* Opens the journal in dir for reading only, as another process (msgtrk
 * queue) may while msgtrkd runs: creates nothing, removes nothing, and
 * journal_replay() then counts a torn tail without cutting it.  Appends
 * fail with EROFS.  Returns NULL with errno set and err filled. */
struct journal *journal_open_readonly(
    const char *dir, char *err, size_t errsize);

/* Closes the files; does not sync. */
void journal_free(struct journal *j);

/* Calls fn for every intact record of every segment, oldest first, with
 * its type, payload (valid only during the call) and position.  A torn or
 * corrupt tail of the newest segment is cut off (ftruncate + fsync) and
 * counted in *cut_out; corruption inside an older segment stops reading
 * that segment and is counted too (the caller logs it).  fn returns 0 to
 * go on, -1 to stop (journal_replay then returns -1).  Returns 0 or -1
 * (I/O error, errno set). */
int journal_replay(struct journal *j,
    int (*fn)(void *arg, uint8_t type, const void *payload, uint32_t len,
        const struct journal_pos *pos),
    void *arg, uint64_t *cut_out);

/* Appends one record whose payload is the concatenation of iov[0..n-1],
 * rotating to a new segment first when the current one is full.  Not
 * durable until journal_sync().  On failure (ENOSPC, EIO...) the segment
 * is cut back to where it was, so a failed append leaves no partial
 * record; returns -1 with errno set.  Returns 0 and fills *pos_out. */
int journal_append(struct journal *j, uint8_t type, const struct iovec *iov,
    int n, struct journal_pos *pos_out);

/* Makes every append so far durable (fdatasync).  Returns 0 or -1 with
 * errno set; after a failed sync the journal refuses further appends
 * (what reached the disk is unknown; only a restart and replay tell). */
int journal_sync(struct journal *j);

/* Reads len payload octets at pos into out.  Thread-safe.  Returns 0, or
 * -1 with errno set (EIO for a short read). */
int journal_read(struct journal *j, const struct journal_pos *pos, void *out);

/* Number of the oldest and of the newest (current) segment. */
uint64_t journal_oldest(const struct journal *j);
uint64_t journal_newest(const struct journal *j);

/* Deletes the oldest segment (never the current one) and fsyncs the
 * directory.  Returns 0, or -1 with errno set (EBUSY: it is the current
 * one). */
int journal_drop_oldest(struct journal *j);

/* Closes the current segment and starts a new one, so that the former
 * current one can be relocated and dropped.  Returns 0 or -1. */
int journal_rotate(struct journal *j);

/* The journal's id (JOURNAL_ID_LEN hex digits), made durably with the
 * journal, so positions recorded elsewhere (the store's mark) can be told
 * from those of a journal made later in the same place.  "" only for a
 * read-only journal that never had one. */
const char *journal_id(const struct journal *j);

/* Where the next record of the newest segment goes (its length). */
uint64_t journal_end(const struct journal *j);

/*
 * A cursor reads records in order from a position on, in another thread
 * than the journal's owner (it opens the segment files itself and uses
 * pread), up to a limit the owner publishes: the end of what was synced.
 * The segments it reads must not be dropped meanwhile (the queue drops
 * only what the store has applied, i.e. what cursors have passed).
 */
struct journal_cursor;

/* A cursor at (seg, off): off is a record's start, JOURNAL_SEG_HDR_LEN for
 * the first.  Returns NULL on ENOMEM. */
struct journal_cursor *journal_cursor_new(
    const char *dir, uint64_t seg, uint64_t off);
void journal_cursor_free(struct journal_cursor *c);

/*
 * Reads the next record that ends at or before (limit_seg, limit_off),
 * moving to the next segment at the end of one below limit_seg.  Returns
 * 1 with its type, payload (valid until the next call) and position, 0
 * when the limit is reached, or -1 with errno set (a missing segment,
 * I/O error, or EIO for a record that is not intact below the limit).
 * Corruption inside a segment below limit_seg ends that segment early
 * (counted by journal_cursor_skipped()), as journal_replay() does.
 */
int journal_cursor_next(struct journal_cursor *c, uint64_t limit_seg,
    uint64_t limit_off, uint8_t *type_out, const void **payload_out,
    struct journal_pos *pos_out);

/* The position of the next record (just past the last one returned). */
void journal_cursor_tell(
    const struct journal_cursor *c, uint64_t *seg_out, uint64_t *off_out);

/* Segments left early because of corruption. */
uint64_t journal_cursor_skipped(const struct journal_cursor *c);

/* CRC-32C (Castagnoli), exposed for the tests. */
uint32_t journal_crc32c(uint32_t crc, const void *p, size_t n);

#endif /* MSGTRK_JOURNAL_H */
