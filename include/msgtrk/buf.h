/*
 * buf: a growable byte buffer with a hard maximum, after curl's dynbuf
 * ("The toobig value must be set to the maximum size we allow this buffer
 * instance to grow to").  Growing past the maximum fails with -1 and leaves
 * the contents as they were; nothing here aborts.
 *
 * The data is always NUL-terminated (the NUL is not counted in len and not
 * counted against max), so buf_cstr() can be handed to string functions
 * when the contents hold no NUL.
 */
#ifndef MSGTRK_BUF_H
#define MSGTRK_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data; /* NULL until the first append */
	size_t len; /* bytes in use, without the terminating NUL */
	size_t cap; /* bytes allocated */
	size_t max; /* hard limit on len */
};

/* Prepares an empty buffer that may grow to max bytes.  No allocation. */
void buf_init(struct buf *b, size_t max);

/* Frees the storage and returns the buffer to its empty, initialised state
 * (max kept).  Use buf_wipe() instead for buffers that held secrets. */
void buf_reset(struct buf *b);

/* Like buf_reset(), but overwrites the storage with explicit_bzero first. */
void buf_wipe(struct buf *b);

/* Empties the buffer but keeps its storage for reuse. */
void buf_clear(struct buf *b);

/* Appends n bytes.  Returns 0, or -1 (errno ENOSPC past max, ENOMEM). */
int buf_add(struct buf *b, const void *p, size_t n);

/* Appends n bytes of unspecified content and returns a pointer to them,
 * for the caller to fill (a read(2) target, say).  Valid until the next
 * call that modifies b.  Returns NULL as buf_add() fails. */
void *buf_append_space(struct buf *b, size_t n);

/* Appends a NUL-terminated string.  Returns 0 or -1 as buf_add(). */
int buf_adds(struct buf *b, const char *s);

/* Appends one byte.  Returns 0 or -1 as buf_add(). */
int buf_addc(struct buf *b, int c);

/* Appends printf-formatted text.  Returns 0 or -1 as buf_add(); on error
 * nothing is appended. */
int buf_addf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int buf_vaddf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Drops the first n bytes (all of them if n >= len). */
void buf_consume(struct buf *b, size_t n);

/* Shortens the contents to n bytes (no-op if n >= len). */
void buf_truncate(struct buf *b, size_t n);

/* The contents, NUL-terminated; "" for an empty buffer.  Valid until the
 * next call that modifies b. */
const char *buf_cstr(const struct buf *b);

/* Hands the storage to the caller (who frees it) and resets b.  Returns
 * NULL only when allocation fails; an empty buffer yields "". */
char *buf_release(struct buf *b);

#endif /* MSGTRK_BUF_H */
