/*
 * sender_logins: parser of the sender_logins file and the MAIL FROM rule
 * (see sender_logins.h).  Entries are sorted by their normalised address
 * (local part as written, domain lower-cased) and found by binary search.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sender_logins.h"
#include "common/file.h"
#include "msgtrk/buf.h"
#include "msgtrk/str.h"

/* RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its <>. */
#define ADDR_MAX 254

struct sl_entry {
	char *addr; /* normalised */
	char **logins;
	size_t nlogins;
	size_t line;
};

struct sender_logins {
	struct sl_entry *e;
	size_t n, cap;
};

static int
addr_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return 0;
	return strchr(",:<>\"();[]\\", c) == NULL;
}

/* Copies the n bytes at s into out (ADDR_MAX + 1 bytes) with the domain
 * lower-cased.  Returns 0, or -1 if s is not an address. */
static int
addr_norm(const char *s, size_t n, char *out)
{
	size_t i, at = n;

	if (n == 0 || n > ADDR_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		if (!addr_char((unsigned char)s[i]))
			return -1;
		if (s[i] == '@')
			at = i;
	}
	if (at == n || at == 0 || at + 1 == n)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	str_lower(out + at + 1);
	return 0;
}

static int
login_valid(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > SENDER_LOGINS_LOGIN_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f || c == ',')
			return 0;
	}
	return 1;
}

static void
entry_clear(struct sl_entry *e)
{
	size_t i;

	free(e->addr);
	for (i = 0; i < e->nlogins; i++)
		free(e->logins[i]);
	free(e->logins);
}

void
sender_logins_free(struct sender_logins *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		entry_clear(&t->e[i]);
	free(t->e);
	free(t);
}

size_t
sender_logins_count(const struct sender_logins *t)
{
	return t == NULL ? 0 : t->n;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct sl_entry *x = a, *y = b;
	int c = strcmp(x->addr, y->addr);

	if (c != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* One non-comment line into e.  Returns 0, or -1 with what set (NULL: out
 * of memory). */
static int
parse_line(const char *s, size_t n, struct sl_entry *e, const char **what)
{
	char addr[ADDR_MAX + 1];
	const char *colon, *p, *comma;
	size_t klen, rest, i;

	*what = NULL;
	if ((colon = memchr(s, ':', n)) == NULL) {
		*what = "missing ':' after the address";
		return -1;
	}
	p = s;
	klen = (size_t)(colon - s);
	file_trim(&p, &klen);
	if (klen == 0) {
		*what = "missing address before ':'";
		return -1;
	}
	if (addr_norm(p, klen, addr) == -1) {
		*what = "invalid address";
		return -1;
	}
	if ((e->addr = strdup(addr)) == NULL)
		return -1;
	if ((e->logins = calloc(
	         SENDER_LOGINS_PER_ADDRESS_MAX, sizeof(char *))) == NULL)
		return -1;
	p = colon + 1;
	rest = n - (size_t)(p - s);
	for (;;) {
		const char *l = p;
		size_t llen;

		comma = memchr(p, ',', rest);
		llen = comma != NULL ? (size_t)(comma - p) : rest;
		file_trim(&l, &llen);
		if (llen == 0) {
			*what = e->nlogins == 0 && comma == NULL
			    ? "no logins after ':'"
			    : "empty login";
			return -1;
		}
		if (!login_valid(l, llen)) {
			*what = "invalid login";
			return -1;
		}
		if (e->nlogins == SENDER_LOGINS_PER_ADDRESS_MAX) {
			*what = "too many logins";
			return -1;
		}
		for (i = 0; i < e->nlogins; i++)
			if (strlen(e->logins[i]) == llen &&
			    memcmp(e->logins[i], l, llen) == 0) {
				*what = "login listed twice";
				return -1;
			}
		if ((e->logins[e->nlogins] = strndup(l, llen)) == NULL)
			return -1;
		e->nlogins++;
		if (comma == NULL)
			break;
		rest -= (size_t)(comma + 1 - p);
		p = comma + 1;
	}
	return 0;
}

struct sender_logins *
sender_logins_parse(
    const char *file, const char *text, size_t len, char *err, size_t errsize)
{
	struct sender_logins *t;
	struct sl_entry e;
	struct file_lines fl;
	const char *p, *what = NULL;
	size_t m, i;
	int rc;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto nomem;
	file_lines_init(&fl, text, len, SENDER_LOGINS_LINE_MAX);
	while ((rc = file_lines_next(&fl, &p, &m, &what)) == 1) {
		if (t->n == SENDER_LOGINS_ENTRIES_MAX) {
			what = "too many entries";
			goto bad;
		}
		memset(&e, 0, sizeof(e));
		e.line = fl.line;
		if (parse_line(p, m, &e, &what) == -1) {
			entry_clear(&e);
			if (what == NULL)
				goto nomem;
			goto bad;
		}
		if (t->n == t->cap) {
			size_t nc = t->cap ? t->cap * 2 : 16;
			struct sl_entry *ne =
			    reallocarray(t->e, nc, sizeof(*ne));

			if (ne == NULL) {
				entry_clear(&e);
				goto nomem;
			}
			t->e = ne;
			t->cap = nc;
		}
		t->e[t->n++] = e;
	}
	if (rc == -1)
		goto bad;
	if (t->n > 0)
		qsort(t->e, t->n, sizeof(*t->e), entry_cmp);
	for (i = 1; i < t->n; i++)
		if (strcmp(t->e[i - 1].addr, t->e[i].addr) == 0) {
			snprintf(err, errsize,
			    "%s:%zu: duplicate address %s (line %zu)", file,
			    t->e[i].line, t->e[i].addr, t->e[i - 1].line);
			sender_logins_free(t);
			return NULL;
		}
	return t;

bad:
	snprintf(err, errsize, "%s:%zu: %s", file, fl.line, what);
	sender_logins_free(t);
	return NULL;
nomem:
	snprintf(err, errsize, "%s: out of memory", file);
	sender_logins_free(t);
	return NULL;
}

struct sender_logins *
sender_logins_load(const char *path, char *err, size_t errsize)
{
	struct sender_logins *t = NULL;
	struct buf b;
	char why[256];

	buf_init(&b, SENDER_LOGINS_FILE_MAX);
	if (file_read(path, &b, why, sizeof(why)) == -1)
		snprintf(err, errsize, "%s: %s", path, why);
	else
		t = sender_logins_parse(
		    path, buf_cstr(&b), b.len, err, errsize);
	buf_reset(&b);
	return t;
}

static int
key_cmp(const void *key, const void *elem)
{
	const struct sl_entry *e = elem;

	return strcmp(key, e->addr);
}

int
sender_logins_allowed(
    const struct sender_logins *t, const char *login, const char *mail_from)
{
	char from[ADDR_MAX + 1], self[ADDR_MAX + 1];
	const struct sl_entry *e = NULL;
	size_t i, n;

	if (login == NULL || login[0] == '\0' || mail_from == NULL)
		return 0;
	if (mail_from[0] == '\0')
		return 1;
	if (addr_norm(mail_from, strlen(mail_from), from) == -1)
		return 0;
	if (t != NULL && t->n > 0)
		e = bsearch(from, t->e, t->n, sizeof(*t->e), key_cmp);
	if (e != NULL) {
		for (i = 0; i < e->nlogins; i++)
			if (strcmp(e->logins[i], login) == 0)
				return 1;
		return 0;
	}
	n = strlen(login);
	return addr_norm(login, n, self) == 0 && strcmp(self, from) == 0;
}
