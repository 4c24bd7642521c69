/*
 * file: reading the small files an operator gives msgtrkd and msgtrk (the
 * configuration, routes, aliases, local_recipients), whole and bounded.
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

#endif /* MSGTRK_FILE_H */
