/*
 * file: bounded whole-file reads.  See file.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"

int
file_read(const char *path, struct buf *b, char *why, size_t whysize)
{
	char chunk[8192];
	struct stat st;
	ssize_t n;
	int fd, ret = -1;

	/* O_NONBLOCK: opening a FIFO must not hang; refused below. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) ==
	    -1) {
		snprintf(why, whysize, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(why, whysize, "%s", strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whysize, "not a regular file");
		goto done;
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(why, whysize, "%s", strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		if (buf_add(b, chunk, (size_t)n) == -1) {
			if (errno == ENOSPC)
				snprintf(why, whysize, "larger than %zu bytes",
				    b->max);
			else
				snprintf(why, whysize, "out of memory");
			goto done;
		}
	}
	ret = 0;
done:
	close(fd);
	return ret;
}

int
file_write_all(int fd, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		ssize_t w = write(fd, s, n);

		if (w == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}
