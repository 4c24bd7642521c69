/*
 * tlsmemory: MTQP servers that did TLS, kept across runs.  See
 * tlsmemory.h.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/keyring.h"
#include "cli/tlsmemory.h"
#include "common/file.h"
#include "msgtrk/buf.h"
#include "msgtrk/str.h"

struct tlsmemory_entry {
	char server[TLSMEMORY_SERVER_MAX];
	char spki[TLSMEMORY_SPKI_HEX + 1]; /* hex, or "-" */
	int changed; /* learned in this run: written by tlsmemory_save() */
};

struct tlsmemory {
	char path[PATH_MAX];
	struct tlsmemory_entry *e;
	const char **names; /* e[i].server, for tlsmemory_servers() */
	size_t n, cap;
};

int
tlsmemory_default_path(char *out, size_t outsize, char *err, size_t errsize)
{
	const char *home = getenv("HOME");
	int n;

	/* Next to the keyring (keyring_default_path()). */
	if (home == NULL || home[0] != '/') {
		snprintf(err, errsize,
		    "HOME is not set to an absolute path; use --tls-memory "
		    "FILE");
		return -1;
	}
	n = snprintf(out, outsize, "%s/.local/share/msgtrk/mtqp-tls", home);
	if (n < 0 || (size_t)n >= outsize) {
		snprintf(
		    err, errsize, "HOME is too long; use --tls-memory FILE");
		return -1;
	}
	return 0;
}

/* Checks "host:port" (host a name of letters, digits, '-', '.', '_', or
 * "[v6]" of hex digits, ':' and '.'; port 1-65535 without leading zero)
 * and copies it in lower case to out.  Returns 0 or -1. */
static int
tlsmemory_server_check(const char *s, size_t n, char *out, size_t outsize)
{
	const char *colon = NULL;
	size_t i, hl;
	unsigned long port = 0;

	if (n == 0 || n >= outsize)
		return -1;
	for (i = n; i > 0; i--)
		if (s[i - 1] == ':') {
			colon = s + i - 1;
			break;
		}
	if (colon == NULL || colon == s)
		return -1;
	hl = (size_t)(colon - s);
	if (s[0] == '[') {
		if (hl < 3 || s[hl - 1] != ']')
			return -1;
		for (i = 1; i < hl - 1; i++)
			if (strchr("0123456789abcdefABCDEF:.", s[i]) == NULL)
				return -1;
	} else {
		if (hl > MTQP_DOMAIN_MAX)
			return -1;
		for (i = 0; i < hl; i++)
			if (s[i] == '\0' ||
			    strchr("abcdefghijklmnopqrstuvwxyz"
			           "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._",
			        s[i]) == NULL)
				return -1;
	}
	/* Digits only, 1-65535, no leading zero. */
	if (n - hl < 2 || n - hl > 6 || colon[1] == '0')
		return -1;
	for (i = hl + 1; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		port = port * 10 + (unsigned long)(s[i] - '0');
	}
	if (port < 1 || port > 65535)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	str_lower(out);
	return 0;
}

/* The entry for server (already lower case), or NULL. */
static struct tlsmemory_entry *
tlsmemory_find(const struct tlsmemory *m, const char *server)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (strcmp(m->e[i].server, server) == 0)
			return &m->e[i];
	return NULL;
}

/* Appends an entry; returns it, or NULL when full or out of memory. */
static struct tlsmemory_entry *
tlsmemory_add(struct tlsmemory *m, const char *server, const char *spki)
{
	struct tlsmemory_entry *e;

	if (m->n >= TLSMEMORY_ENTRIES_MAX)
		return NULL;
	if (m->n == m->cap) {
		size_t nc = m->cap == 0 ? 16 : m->cap * 2;
		const char **nn;

		if ((e = realloc(m->e, nc * sizeof(*e))) == NULL)
			return NULL;
		m->e = e;
		if ((nn = realloc(m->names, nc * sizeof(*nn))) == NULL)
			return NULL;
		m->names = nn;
		m->cap = nc;
	}
	e = &m->e[m->n++];
	memset(e, 0, sizeof(*e));
	str_copy(e->server, server, sizeof(e->server));
	str_copy(e->spki, spki, sizeof(e->spki));
	return e;
}

/* Parses the file's contents (n octets) into m.  Returns 0, or -1 with
 * err set ("path:LINE: what"). */
static int
tlsmemory_parse(
    struct tlsmemory *m, const char *p, size_t len, char *err, size_t errsize)
{
	const char *end = p + len, *nl, *sp;
	char server[TLSMEMORY_SERVER_MAX], spki[TLSMEMORY_SPKI_HEX + 1];
	size_t lineno = 0, n, sl, i;
	const char *what;

	for (; p < end; p = nl + 1) {
		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			what = "no newline at the end";
			goto bad;
		}
		n = (size_t)(nl - p);
		what = "expected \"host:port SPKI-SHA256\"";
		if (n > TLSMEMORY_LINE_MAX) {
			what = "line too long";
			goto bad;
		}
		if (n == 0 || memchr(p, '\0', n) != NULL)
			goto bad;
		if ((sp = memchr(p, ' ', n)) == NULL)
			goto bad;
		if (tlsmemory_server_check(
		        p, (size_t)(sp - p), server, sizeof(server)) == -1) {
			what = "bad host:port";
			goto bad;
		}
		sl = n - (size_t)(sp + 1 - p);
		if (sl == 1 && sp[1] == '-') {
			str_copy(spki, "-", sizeof(spki));
		} else {
			if (sl != TLSMEMORY_SPKI_HEX) {
				what = "bad SPKI digest (64 hex digits or -)";
				goto bad;
			}
			for (i = 0; i < sl; i++)
				if (strchr("0123456789abcdef", sp[1 + i]) ==
				        NULL ||
				    sp[1 + i] == '\0') {
					what = "bad SPKI digest (64 hex digits "
					       "or -)";
					goto bad;
				}
			memcpy(spki, sp + 1, sl);
			spki[sl] = '\0';
		}
		if (tlsmemory_find(m, server) != NULL) {
			what = "server listed twice";
			goto bad;
		}
		if (tlsmemory_add(m, server, spki) == NULL) {
			if (m->n < TLSMEMORY_ENTRIES_MAX) {
				what = "out of memory";
				goto bad;
			}
			snprintf(err, errsize, "%s:%zu: more than %d servers",
			    m->path, lineno, TLSMEMORY_ENTRIES_MAX);
			return -1;
		}
	}
	return 0;
bad:
	snprintf(err, errsize, "%s:%zu: %s", m->path, lineno, what);
	return -1;
}

/* Reads path into m (a missing file leaves m empty).  Returns 0, or -1
 * with err set. */
static int
tlsmemory_read(struct tlsmemory *m, char *err, size_t errsize)
{
	struct buf b;
	struct stat st;
	char why[128];
	int rc = -1;

	buf_init(&b, TLSMEMORY_FILE_MAX);
	if (lstat(m->path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errsize, "%s: %s", m->path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errsize, "%s: not a regular file", m->path);
		return -1;
	}
	if (file_read(m->path, &b, why, sizeof(why)) == -1) {
		snprintf(err, errsize, "%s: %s", m->path, why);
		goto done;
	}
	rc = tlsmemory_parse(
	    m, b.data != NULL ? b.data : "", b.len, err, errsize);
done:
	buf_reset(&b);
	return rc;
}

struct tlsmemory *
tlsmemory_load(const char *path, char *err, size_t errsize)
{
	struct tlsmemory *m;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	if (str_copy(m->path, path, sizeof(m->path)) >= sizeof(m->path)) {
		snprintf(err, errsize, "%.200s...: path too long", path);
		goto fail;
	}
	if (tlsmemory_read(m, err, errsize) == -1)
		goto fail;
	return m;
fail:
	tlsmemory_free(m);
	return NULL;
}

const char *const *
tlsmemory_servers(const struct tlsmemory *m, size_t *n_out)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		m->names[i] = m->e[i].server;
	*n_out = m->n;
	return m->names;
}

const char *
tlsmemory_spki(const struct tlsmemory *m, const char *server)
{
	char s[TLSMEMORY_SERVER_MAX];
	const struct tlsmemory_entry *e;

	if (tlsmemory_server_check(server, strlen(server), s, sizeof(s)) == -1)
		return NULL;
	e = tlsmemory_find(m, s);
	return e != NULL ? e->spki : NULL;
}

int
tlsmemory_learn(struct tlsmemory *m, const char *server,
    const unsigned char spki[TRAIL_SPKI_LEN])
{
	char s[TLSMEMORY_SERVER_MAX], hex[TLSMEMORY_SPKI_HEX + 1];
	struct tlsmemory_entry *e;
	size_t i;

	if (tlsmemory_server_check(server, strlen(server), s, sizeof(s)) == -1)
		return -1;
	for (i = 0; i < TRAIL_SPKI_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", spki[i]);
	if ((e = tlsmemory_find(m, s)) != NULL) {
		if (strcmp(e->spki, hex) == 0)
			return 0;
		str_copy(e->spki, hex, sizeof(e->spki));
	} else if ((e = tlsmemory_add(m, s, hex)) == NULL)
		return -1;
	e->changed = 1;
	return 1;
}

int
tlsmemory_save(struct tlsmemory *m, char *err, size_t errsize)
{
	struct tlsmemory *cur = NULL;
	struct tlsmemory_entry *e;
	struct buf b;
	size_t i;
	int lockfd = -1, rc = -1, any = 0;

	for (i = 0; i < m->n; i++)
		any |= m->e[i].changed;
	if (!any)
		return 0;
	buf_init(&b, TLSMEMORY_FILE_MAX);
	if (keyring_mkdirs(m->path, err, errsize) == -1)
		goto cleanup;
	if ((lockfd = file_lock(m->path, err, errsize)) == -1)
		goto cleanup;
	/* Another run may have written the file since we read it. */
	if ((cur = tlsmemory_load(m->path, err, errsize)) == NULL)
		goto cleanup;
	for (i = 0; i < m->n; i++) {
		if (!m->e[i].changed)
			continue;
		if ((e = tlsmemory_find(cur, m->e[i].server)) != NULL)
			str_copy(e->spki, m->e[i].spki, sizeof(e->spki));
		else if (tlsmemory_add(cur, m->e[i].server, m->e[i].spki) ==
		    NULL) {
			snprintf(err, errsize, "%s: full (%d servers)", m->path,
			    TLSMEMORY_ENTRIES_MAX);
			goto cleanup;
		}
	}
	for (i = 0; i < cur->n; i++)
		if (buf_addf(&b, "%s %s\n", cur->e[i].server, cur->e[i].spki) ==
		    -1) {
			snprintf(err, errsize, "%s: out of memory", m->path);
			goto cleanup;
		}
	if (file_replace(m->path, b.data, b.len, err, errsize) == -1)
		goto cleanup;
	for (i = 0; i < m->n; i++)
		m->e[i].changed = 0;
	rc = 0;
cleanup:
	if (lockfd != -1)
		close(lockfd); /* releases the lock */
	tlsmemory_free(cur);
	buf_reset(&b);
	return rc;
}

void
tlsmemory_free(struct tlsmemory *m)
{
	if (m == NULL)
		return;
	free(m->e);
	free(m->names);
	free(m);
}
