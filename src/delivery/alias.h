/*
 * alias: the aliases and local_recipients files (PRODUCT.md) and their
 * lookups.  Pure: no I/O besides alias_load() reading one file.
 *
 * aliases:           local@domain: target, target...
 * local_recipients:  local@domain
 *
 * One entry a line; blank lines and lines whose first non-blank is '#'
 * are skipped; blanks around fields are ignored.  Keys are compared
 * ignoring ASCII case in the local part too (as Postfix's aliases do: a
 * local part that differs only in case is never a different person
 * here).  Quoted local parts are not accepted: an address is
 * one or more printable US-ASCII characters other than SP , : < > " ( ) ; [ ] and backslash, "@" domain.
 * Errors are "file:line: what".
 */
#ifndef MSGTRK_ALIAS_H
#define MSGTRK_ALIAS_H

#include <stddef.h>

/* A line without its newline; a file; the entries of a file.  Long
 * enough for any real table, bounded because a file is input. */
#define ALIAS_LINE_MAX 4096
#define ALIAS_FILE_MAX (16 * 1024 * 1024)
#define ALIAS_ENTRIES_MAX 100000
/* RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its <>. */
#define ALIAS_ADDR_MAX 254
/* RFC 5321 §4.5.3.1.8 asks servers to take 100 recipients; an alias
 * may expand to that many targets. */
#define ALIAS_TARGETS_MAX 100

enum alias_kind {
	ALIAS_KIND_ALIASES, /* key: target, target... */
	ALIAS_KIND_RECIPIENTS, /* one address a line */
};

struct alias_table;

/* Parses len bytes of text (file names it in errors).  Returns the table,
 * or NULL with "file:line: what" (or "file: out of memory") in err. */
struct alias_table *alias_parse(enum alias_kind kind, const char *file,
    const char *text, size_t len, char *err, size_t errsize);

/* Reads (at most ALIAS_FILE_MAX bytes) and parses the file at path.
 * Returns NULL with "path: what" or "path:line: what" in err. */
struct alias_table *alias_load(
    enum alias_kind kind, const char *path, char *err, size_t errsize);

/* Accepts NULL. */
void alias_free(struct alias_table *t);

/* Number of entries (distinct keys). */
size_t alias_count(const struct alias_table *t);

/* Entry i (0 <= i < alias_count) in key order: returns its key
 * (lower-cased) and *line_out the line it was read from.  NULL past the
 * end.  Valid as long as the table. */
const char *alias_entry(
    const struct alias_table *t, size_t i, size_t *line_out);

/* Looks addr up (any case).  Returns 1 with *targets_out and *n_out set (0
 * targets for a local_recipients table; the strings stay valid as long
 * as the table), 0 if not found (t may be NULL), -1 if addr is not a
 * valid address.  targets_out and n_out may be NULL. */
int alias_lookup(const struct alias_table *t, const char *addr,
    const char *const **targets_out, size_t *n_out);

/* Returns 1 if the n bytes at s are an address as described above, else
 * 0. */
int alias_addr_valid(const char *s, size_t n);

/* The domain of a valid address (after its last '@'), or NULL. */
const char *alias_domain(const char *addr);

#endif /* MSGTRK_ALIAS_H */
