/*
 * file: bounded whole-file reads.  See file.h.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/file.h"
#include "msgtrk/str.h"

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

int
file_lock(const char *path, char *err, size_t errsize)
{
	char lock[PATH_MAX];
	int fd, r;

	if ((size_t)snprintf(lock, sizeof(lock), "%s.lock", path) >=
	    sizeof(lock)) {
		snprintf(err, errsize, "%s: path too long", path);
		return -1;
	}
	if ((fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	         0600)) == -1) {
		snprintf(err, errsize, "%s: %s", lock, strerror(errno));
		return -1;
	}
	while ((r = flock(fd, LOCK_EX)) == -1 && errno == EINTR)
		;
	if (r == -1) {
		snprintf(err, errsize, "%s: lock: %s", lock, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int
file_replace(
    const char *path, const void *p, size_t n, char *err, size_t errsize)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	char *slash;
	int fd = -1, dfd = -1, made = 0, rc = -1, r;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >=
	    sizeof(tmp)) {
		snprintf(err, errsize, "%s: path too long", path);
		return -1;
	}
	str_copy(dir, path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) == NULL)
		str_copy(dir, ".", sizeof(dir));
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if ((fd = mkstemp(tmp)) == -1) {
		snprintf(err, errsize, "%s: %s", tmp, strerror(errno));
		goto cleanup;
	}
	made = 1;
	if (fchmod(fd, 0600) == -1 ||
	    file_write_all(fd, p != NULL ? p : "", n) == -1 ||
	    fsync(fd) == -1) {
		snprintf(err, errsize, "%s: %s", tmp, strerror(errno));
		goto cleanup;
	}
	r = close(fd);
	fd = -1;
	if (r == -1) {
		snprintf(err, errsize, "%s: %s", tmp, strerror(errno));
		goto cleanup;
	}
	if (rename(tmp, path) == -1) {
		snprintf(err, errsize, "%s: rename: %s", path, strerror(errno));
		goto cleanup;
	}
	made = 0;
	/* The rename is durable only once the directory is. */
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(dfd) == -1) {
		snprintf(err, errsize, "%s: %s", dir, strerror(errno));
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (fd != -1)
		close(fd);
	if (made)
		unlink(tmp);
	if (dfd != -1)
		close(dfd);
	return rc;
}

void
file_lines_init(struct file_lines *fl, const char *text, size_t len, size_t max)
{
	fl->s = text;
	fl->end = text + len;
	fl->max = max;
	fl->line = 0;
}

static int
file_blank(char c)
{
	return c == ' ' || c == '\t';
}

void
file_trim(const char **s, size_t *n)
{
	while (*n > 0 && file_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && file_blank((*s)[*n - 1]))
		(*n)--;
}

int
file_lines_next(
    struct file_lines *fl, const char **p, size_t *n, const char **what)
{
	while (fl->s < fl->end) {
		const char *s = fl->s, *nl;
		size_t len, i;

		fl->line++;
		nl = memchr(s, '\n', (size_t)(fl->end - s));
		len = nl != NULL ? (size_t)(nl - s) : (size_t)(fl->end - s);
		fl->s = nl != NULL ? nl + 1 : fl->end;
		if (len > 0 && s[len - 1] == '\r')
			len--;
		if (len > fl->max) {
			*what = "line too long";
			return -1;
		}
		for (i = 0; i < len; i++) {
			if (s[i] == '\0') {
				*what = "NUL byte";
				return -1;
			}
			if (((unsigned char)s[i] < 0x20 && s[i] != '\t') ||
			    s[i] == 0x7f) {
				*what = "control character";
				return -1;
			}
		}
		file_trim(&s, &len);
		if (len > 0 && s[0] != '#') {
			*p = s;
			*n = len;
			return 1;
		}
	}
	return 0;
}
