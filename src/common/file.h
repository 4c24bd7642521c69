/*
 * file: reading the small files an operator gives msgtrkd and msgtrk (the
 * configuration, routes, aliases, local_recipients), whole and bounded;
 * and replacing the small files msgtrk keeps (the keyring, the TLS
 * memory) under a lock, durably.
 */
#ifndef MSGTRK_FILE_H
#define MSGTRK_FILE_H

#include <stddef.h>

#include "msgtrk/buf.h"

/* Appends the contents of the regular file at path to b; b's maximum is
 * the size limit.  A FIFO, a device or a directory is refused without
 * blocking.  Returns 0, or -1 with the reason (without the path, e.g.
 * "larger than 1048576 bytes") in why. */
int file_read(const char *path, struct buf *b, char *why, size_t whysize);

/* Writes all n bytes at p to fd, retrying short writes and EINTR.
 * Returns 0, or -1 with errno set. */
int file_write_all(int fd, const void *p, size_t n);

/* Takes an exclusive lock for changing path: opens "<path>.lock" (created
 * 0600; a symbolic link is refused) and flock()s it, waiting while another
 * process holds it.  Returns the descriptor, which holds the lock until it
 * is closed, or -1 with the reason (path included) in err. */
int file_lock(const char *path, char *err, size_t errsize);

/* Replaces path with the n bytes at p, mode 0600: writes a temporary file
 * next to it, fsyncs it, renames it over path and fsyncs the directory, so
 * a crash leaves either the old or the new contents.  Returns 0, or -1
 * with the reason (path included) in err; path is then untouched unless
 * only the directory's fsync failed. */
int file_replace(
    const char *path, const void *p, size_t n, char *err, size_t errsize);

/*
 * A table file's text, line by line (aliases, local_recipients,
 * sender_logins, the passwd: file).  Lines end in LF or CRLF.  A line
 * longer than max octets, or holding a NUL or a control character other
 * than TAB (DEL included), is refused; blank lines and comments (first
 * non-blank '#') are skipped; a line returned is trimmed of blanks.
 */
struct file_lines {
	const char *s, *end;
	size_t max;
	size_t line; /* the number of the line last looked at (from 1) */
};

void file_lines_init(
    struct file_lines *fl, const char *text, size_t len, size_t max);

/* 1: [*p, *p + *n) is the next entry, on line fl->line; 0: no more; -1:
 * line fl->line is refused, *what says why ("line too long", "NUL byte",
 * "control character"). */
int file_lines_next(
    struct file_lines *fl, const char **p, size_t *n, const char **what);

/* Trims blanks (SP and TAB) off both ends of [*s, *s + *n). */
void file_trim(const char **s, size_t *n);

#endif /* MSGTRK_FILE_H */
