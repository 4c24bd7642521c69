/*
 * str: small string helpers that glibc lacks or gets subtly wrong for
 * protocol work.  ASCII only; the C locale never matters here.
 */
#ifndef MSGTRK_STR_H
#define MSGTRK_STR_H

#include <stddef.h>

/* strlcpy semantics (glibc 2.36 has none): copies at most size-1 bytes and
 * always terminates when size > 0.  Returns strlen(src); a result >= size
 * means the copy was truncated, which callers treat as an error. */
size_t str_copy(char *dst, const char *src, size_t size);

/* ASCII case-insensitive comparisons, independent of the locale. */
int str_casecmp(const char *a, const char *b);
int str_ncasecmp(const char *a, const char *b, size_t n);

/* Returns 1 if s (n bytes) starts with prefix, ignoring ASCII case. */
int str_casestarts(const char *s, size_t n, const char *prefix);

/* Lower-cases ASCII letters in place. */
void str_lower(char *s);

/* Writes a printable copy of the n bytes at s into dst (size dstsize,
 * always terminated): bytes outside 0x20-0x7e, and '\\', become \xHH.
 * For logging text a peer sent.  Returns dst. */
char *str_printable(char *dst, size_t dstsize, const char *s, size_t n);

#endif /* MSGTRK_STR_H */
