/*
 * alias: parser and lookups of the aliases and local_recipients files.
 * Entries are kept sorted by their lower-cased key and found by binary
 * search; a duplicate key is an error at the line of its second use (a
 * silent "last one wins" would hide a typo in a forwarding table).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"
#include "delivery/alias.h"
#include "msgtrk/buf.h"
#include "msgtrk/str.h"

struct alias_entry {
	char *key; /* lower-cased */
	char **targets; /* as written */
	size_t ntargets;
	size_t line;
};

struct alias_table {
	enum alias_kind kind;
	struct alias_entry *e;
	size_t n;
	size_t cap;
};

static int
alias_addr_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return 0;
	return strchr(",:<>\"();[]\\", c) == NULL;
}

int
alias_addr_valid(const char *s, size_t n)
{
	size_t i, at = n;

	if (n == 0 || n > ALIAS_ADDR_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if (!alias_addr_char((unsigned char)s[i]))
			return 0;
		if (s[i] == '@')
			at = i;
	}
	/* One '@' at least, with something on both sides; the domain holds
	 * no further '@' (at is the last one). */
	return at != n && at > 0 && at + 1 < n;
}

const char *
alias_domain(const char *addr)
{
	const char *at;

	if (addr == NULL || !alias_addr_valid(addr, strlen(addr)))
		return NULL;
	at = strrchr(addr, '@');
	return at + 1;
}

static void
alias_entry_clear(struct alias_entry *e)
{
	size_t i;

	free(e->key);
	for (i = 0; i < e->ntargets; i++)
		free(e->targets[i]);
	free(e->targets);
}

void
alias_free(struct alias_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		alias_entry_clear(&t->e[i]);
	free(t->e);
	free(t);
}

size_t
alias_count(const struct alias_table *t)
{
	return t == NULL ? 0 : t->n;
}

const char *
alias_entry(const struct alias_table *t, size_t i, size_t *line_out)
{
	if (t == NULL || i >= t->n)
		return NULL;
	if (line_out != NULL)
		*line_out = t->e[i].line;
	return t->e[i].key;
}

static int
alias_cmp(const void *a, const void *b)
{
	const struct alias_entry *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Parses one non-comment line into e.  Returns 0, or -1 with what set
 * (NULL: out of memory). */
static int
alias_line(enum alias_kind kind, const char *s, size_t n, struct alias_entry *e,
    const char **what)
{
	const char *colon, *p, *comma;
	size_t klen, tlen, rest;

	*what = NULL;
	if (kind == ALIAS_KIND_RECIPIENTS) {
		if (!alias_addr_valid(s, n)) {
			*what = "invalid address";
			return -1;
		}
		if ((e->key = strndup(s, n)) == NULL)
			return -1;
		str_lower(e->key);
		return 0;
	}
	if ((colon = memchr(s, ':', n)) == NULL) {
		*what = "missing ':' after the alias";
		return -1;
	}
	p = s;
	klen = (size_t)(colon - s);
	file_trim(&p, &klen);
	if (klen == 0) {
		*what = "missing alias before ':'";
		return -1;
	}
	if (!alias_addr_valid(p, klen)) {
		*what = "invalid alias address";
		return -1;
	}
	if ((e->key = strndup(p, klen)) == NULL)
		return -1;
	str_lower(e->key);
	p = colon + 1;
	rest = n - (size_t)(p - s);
	if ((e->targets = calloc(ALIAS_TARGETS_MAX, sizeof(char *))) == NULL)
		return -1;
	for (;;) {
		const char *t = p;

		comma = memchr(p, ',', rest);
		tlen = comma != NULL ? (size_t)(comma - p) : rest;
		file_trim(&t, &tlen);
		if (tlen == 0) {
			*what = e->ntargets == 0 && comma == NULL
			    ? "no targets after ':'"
			    : "empty target";
			return -1;
		}
		if (!alias_addr_valid(t, tlen)) {
			*what = "invalid target address";
			return -1;
		}
		if (e->ntargets == ALIAS_TARGETS_MAX) {
			*what = "too many targets";
			return -1;
		}
		if ((e->targets[e->ntargets] = strndup(t, tlen)) == NULL)
			return -1;
		e->ntargets++;
		if (comma == NULL)
			break;
		rest -= (size_t)(comma + 1 - p);
		p = comma + 1;
	}
	return 0;
}

struct alias_table *
alias_parse(enum alias_kind kind, const char *file, const char *text,
    size_t len, char *err, size_t errsize)
{
	struct alias_table *t;
	struct alias_entry e;
	struct file_lines fl;
	const char *p, *what = NULL;
	size_t m, i, j, k;
	int rc;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto nomem;
	t->kind = kind;
	file_lines_init(&fl, text, len, ALIAS_LINE_MAX);
	while ((rc = file_lines_next(&fl, &p, &m, &what)) == 1) {
		if (t->n == ALIAS_ENTRIES_MAX) {
			what = "too many entries";
			goto bad;
		}
		memset(&e, 0, sizeof(e));
		e.line = fl.line;
		if (alias_line(kind, p, m, &e, &what) == -1) {
			alias_entry_clear(&e);
			if (what == NULL)
				goto nomem;
			goto bad;
		}
		if (t->n == t->cap) {
			size_t nc = t->cap ? t->cap * 2 : 16;
			struct alias_entry *ne =
			    reallocarray(t->e, nc, sizeof(*ne));

			if (ne == NULL) {
				alias_entry_clear(&e);
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
		qsort(t->e, t->n, sizeof(*t->e), alias_cmp);
	/* Duplicates: an error for aliases (reported at the later line),
	 * merged for local_recipients (a list may name someone twice). */
	for (i = 0, j = 0; i < t->n; i++) {
		if (j > 0 && strcmp(t->e[j - 1].key, t->e[i].key) == 0) {
			if (kind == ALIAS_KIND_ALIASES) {
				snprintf(err, errsize,
				    "%s:%zu: duplicate alias %s (line %zu)",
				    file, t->e[i].line, t->e[i].key,
				    t->e[j - 1].line);
				for (k = i + 1; k < t->n; k++)
					alias_entry_clear(&t->e[k]);
				t->n = i + 1;
				alias_free(t);
				return NULL;
			}
			alias_entry_clear(&t->e[i]);
			continue;
		}
		t->e[j++] = t->e[i];
	}
	t->n = j;
	return t;

bad:
	snprintf(err, errsize, "%s:%zu: %s", file, fl.line, what);
	alias_free(t);
	return NULL;
nomem:
	snprintf(err, errsize, "%s: out of memory", file);
	alias_free(t);
	return NULL;
}

struct alias_table *
alias_load(enum alias_kind kind, const char *path, char *err, size_t errsize)
{
	struct alias_table *t = NULL;
	struct buf b;
	char why[256];

	buf_init(&b, ALIAS_FILE_MAX);
	if (file_read(path, &b, why, sizeof(why)) == -1)
		snprintf(err, errsize, "%s: %s", path, why);
	else
		t = alias_parse(kind, path, buf_cstr(&b), b.len, err, errsize);
	buf_reset(&b);
	return t;
}

static int
alias_key_cmp(const void *key, const void *elem)
{
	const struct alias_entry *e = elem;

	return strcmp(key, e->key);
}

int
alias_lookup(const struct alias_table *t, const char *addr,
    const char *const **targets_out, size_t *n_out)
{
	char key[ALIAS_ADDR_MAX + 1];
	const struct alias_entry *e;
	size_t n;

	if (addr == NULL || (n = strlen(addr)) == 0 ||
	    !alias_addr_valid(addr, n))
		return -1;
	if (t == NULL || t->n == 0)
		return 0;
	memcpy(key, addr, n + 1);
	str_lower(key);
	e = bsearch(key, t->e, t->n, sizeof(*t->e), alias_key_cmp);
	if (e == NULL)
		return 0;
	if (targets_out != NULL)
		*targets_out = (const char *const *)e->targets;
	if (n_out != NULL)
		*n_out = e->ntargets;
	return 1;
}
