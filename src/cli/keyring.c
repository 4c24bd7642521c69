/*
 * keyring: the user's file of tracked messages.  See keyring.h.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "cli/keyring.h"
#include "common/file.h"
#include "msgtrk/buf.h"
#include "msgtrk/str.h"

int
keyring_default_path(char *out, size_t outsize, char *err, size_t errsize)
{
	const char *home = getenv("HOME");
	int n;

	if (home == NULL || home[0] != '/') {
		snprintf(err, errsize,
		    "HOME is not set to an absolute path; use --keyring FILE");
		return -1;
	}
	n = snprintf(out, outsize, "%s/.local/share/msgtrk/keyring", home);
	if (n < 0 || (size_t)n >= outsize) {
		snprintf(err, errsize, "HOME is too long; use --keyring FILE");
		return -1;
	}
	return 0;
}

int
keyring_format_line(struct buf *b, const struct keyring_entry *e,
    const char *const *rcpts, size_t n)
{
	size_t start = b->len, i;
	int rc = 0;

	rc |= buf_addc(b, '{');
	rc |= json_key(b, 1, "envid");
	rc |= json_cstr(b, e->envid);
	rc |= json_key(b, 0, "secret");
	rc |= json_cstr(b, e->secret);
	rc |= json_key(b, 0, "server");
	rc |= json_cstr(b, e->server);
	rc |= json_key(b, 0, "mtqp");
	rc |= json_cstr(b, e->mtqp);
	rc |= json_key(b, 0, "submitted");
	rc |= json_cstr(b, e->submitted);
	rc |= json_key(b, 0, "recipients");
	rc |= buf_addc(b, '[');
	for (i = 0; i < n && rc == 0; i++) {
		if (i > 0)
			rc |= buf_addc(b, ',');
		rc |= json_cstr(b, rcpts[i]);
	}
	rc |= buf_adds(b, "]}\n");
	if (rc != 0) {
		buf_truncate(b, start);
		return -1;
	}
	return 0;
}

struct keyring_parse {
	struct keyring_entry *e;
	unsigned int seen;
};

#define KEYRING_F_ENVID 0x01
#define KEYRING_F_SECRET 0x02
#define KEYRING_F_SERVER 0x04

static int
keyring_member(void *arg, const char *key, const char *val, size_t vlen,
    long index, char *err, size_t errsize)
{
	struct keyring_parse *kp = arg;
	struct keyring_entry *e = kp->e;
	char *dst = NULL;
	size_t size = 0;
	unsigned int flag = 0;

	if (strcmp(key, "recipients") == 0) {
		if (index < 0 && val != NULL) {
			snprintf(
			    err, errsize, "\"recipients\" is not an array");
			return -1;
		}
		if (index >= 0)
			e->nrecipients++;
		return 0;
	}
	if (strcmp(key, "envid") != 0 && strcmp(key, "secret") != 0 &&
	    strcmp(key, "server") != 0 && strcmp(key, "mtqp") != 0 &&
	    strcmp(key, "submitted") != 0)
		return 0; /* members added by later versions, of any shape */
	if (index >= 0) {
		snprintf(err, errsize, "\"%s\" must not be an array", key);
		return -1;
	}
	if (strcmp(key, "envid") == 0) {
		dst = e->envid;
		size = sizeof(e->envid);
		flag = KEYRING_F_ENVID;
	} else if (strcmp(key, "secret") == 0) {
		dst = e->secret;
		size = sizeof(e->secret);
		flag = KEYRING_F_SECRET;
	} else if (strcmp(key, "server") == 0) {
		dst = e->server;
		size = sizeof(e->server);
		flag = KEYRING_F_SERVER;
	} else if (strcmp(key, "mtqp") == 0) {
		dst = e->mtqp;
		size = sizeof(e->mtqp);
	} else {
		dst = e->submitted;
		size = sizeof(e->submitted);
	}
	if (val == NULL) {
		if (flag != 0) {
			snprintf(err, errsize, "\"%s\" is null", key);
			return -1;
		}
		dst[0] = '\0';
		return 0;
	}
	if (vlen >= size) {
		snprintf(err, errsize, "\"%s\" is too long", key);
		return -1;
	}
	memcpy(dst, val, vlen + 1);
	kp->seen |= flag;
	return 0;
}

int
keyring_parse_line(const char *s, size_t n, struct keyring_entry *out,
    char *err, size_t errsize)
{
	struct keyring_parse kp = { out, 0 };

	memset(out, 0, sizeof(*out));
	if (json_read_object(s, n, keyring_member, &kp, err, errsize) == -1)
		goto fail;
	if ((kp.seen & KEYRING_F_ENVID) == 0) {
		snprintf(err, errsize, "no \"envid\"");
		goto fail;
	}
	if ((kp.seen & KEYRING_F_SECRET) == 0) {
		snprintf(err, errsize, "no \"secret\"");
		goto fail;
	}
	if ((kp.seen & KEYRING_F_SERVER) == 0) {
		snprintf(err, errsize, "no \"server\"");
		goto fail;
	}
	return 0;
fail:
	keyring_entry_clear(out);
	return -1;
}

/* Reads the whole file at path into b (bounded by b's maximum).  Returns
 * 1, 0 if it does not exist, or -1 with err set. */
static int
keyring_read(const char *path, struct buf *b, char *err, size_t errsize)
{
	struct stat st;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errsize, "%s: %s", path,
		    S_ISREG(st.st_mode) ? strerror(errno)
		                        : "not a regular file");
		goto fail;
	}
	for (;;) {
		char *p = buf_append_space(b, 65536);

		if (p == NULL) {
			snprintf(err, errsize, "%s: larger than %lu octets",
			    path, KEYRING_FILE_MAX);
			goto fail;
		}
		r = read(fd, p, 65536);
		if (r < 0) {
			buf_truncate(b, b->len - 65536);
			if (errno == EINTR)
				continue;
			snprintf(err, errsize, "%s: %s", path, strerror(errno));
			goto fail;
		}
		buf_truncate(b, b->len - 65536 + (size_t)r);
		if (r == 0)
			break;
	}
	close(fd);
	return 1;
fail:
	close(fd);
	return -1;
}

int
keyring_lookup(const char *path, const char *envid, struct keyring_entry *out,
    char *err, size_t errsize)
{
	struct buf b;
	struct keyring_entry e;
	char lerr[256];
	const char *p, *end, *nl;
	size_t lineno = 0;
	int rc, found = 0;

	memset(out, 0, sizeof(*out));
	/* The read buffer needs room for one block beyond the limit. */
	buf_init(&b, KEYRING_FILE_MAX + 65536);
	if ((rc = keyring_read(path, &b, err, errsize)) <= 0)
		goto done;
	p = buf_cstr(&b);
	end = p + b.len;
	for (; p < end; p = nl + 1) {
		size_t n;

		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		n = (size_t)(nl - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n == 0)
			continue;
		if (n > KEYRING_LINE_MAX) {
			snprintf(err, errsize, "%s:%zu: line too long", path,
			    lineno);
			rc = -1;
			goto done;
		}
		if (memchr(p, '\0', n) != NULL) {
			snprintf(
			    err, errsize, "%s:%zu: NUL octet", path, lineno);
			rc = -1;
			goto done;
		}
		if (keyring_parse_line(p, n, &e, lerr, sizeof(lerr)) == -1) {
			snprintf(
			    err, errsize, "%s:%zu: %s", path, lineno, lerr);
			rc = -1;
			goto done;
		}
		if (strcmp(e.envid, envid) == 0) {
			keyring_entry_clear(out);
			*out = e;
			found = 1;
		}
		keyring_entry_clear(&e);
	}
	rc = found;
done:
	buf_wipe(&b);
	if (rc != 1)
		keyring_entry_clear(out);
	return rc;
}

int
keyring_mkdirs(const char *path, char *err, size_t errsize)
{
	char dir[PATH_MAX];
	char *s;

	if (str_copy(dir, path, sizeof(dir)) >= sizeof(dir)) {
		snprintf(err, errsize, "%s: path too long", path);
		return -1;
	}
	if ((s = strrchr(dir, '/')) == NULL || s == dir)
		return 0;
	*s = '\0';
	for (s = dir + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
			snprintf(err, errsize, "%s: %s", dir, strerror(errno));
			return -1;
		}
		*s = '/';
	}
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errsize, "%s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

int
keyring_append(const char *path, const struct keyring_entry *e,
    const char *const *rcpts, size_t n, char *err, size_t errsize)
{
	struct buf b;
	int lockfd = -1, rc = -1;

	buf_init(&b, KEYRING_FILE_MAX + 65536);
	if (keyring_mkdirs(path, err, errsize) == -1)
		goto cleanup;
	if ((lockfd = file_lock(path, err, errsize)) == -1)
		goto cleanup;
	if (keyring_read(path, &b, err, errsize) == -1)
		goto cleanup;
	if (b.len > 0 && b.data[b.len - 1] != '\n' && buf_addc(&b, '\n') == -1)
		goto toobig;
	if (keyring_format_line(&b, e, rcpts, n) == -1)
		goto toobig;
	if (b.len > KEYRING_FILE_MAX)
		goto toobig;
	if (file_replace(path, b.data, b.len, err, errsize) == -1)
		goto cleanup;
	rc = 0;
	goto cleanup;
toobig:
	snprintf(err, errsize, "%s: would grow past %lu octets", path,
	    KEYRING_FILE_MAX);
cleanup:
	if (lockfd != -1)
		close(lockfd); /* releases the lock */
	buf_wipe(&b);
	return rc;
}

void
keyring_entry_clear(struct keyring_entry *e)
{
	explicit_bzero(e, sizeof(*e));
}
