/*
 * json: the little JSON msgtrk and msgtrkd need (RFC 8259).  A writer
 * that appends to a bounded struct buf with correct string escaping, and
 * a reader for flat objects (the keyring's lines, the HTTP API's
 * requests): one object whose values are strings, null, or arrays of
 * strings.  Nothing else is accepted, which keeps the
 * reader small and every input bounded.
 */
#ifndef MSGTRK_COMMON_JSON_H
#define MSGTRK_COMMON_JSON_H

#include <stddef.h>
#include <time.h>

#include "msgtrk/buf.h"

/* Our limits on what the reader accepts: a decoded string (a keyring
 * line holds a 100-character envid, a secret, host names and
 * addresses), and the members of an object or array. */
#define JSON_STRING_MAX 4096
#define JSON_MEMBERS_MAX 64
#define JSON_ARRAY_MAX 10000

/* Appends the n octets at s as a JSON string with its quotes.  '"', '\\'
 * and the control characters are escaped (\n, \t ... or \u00XX), as is
 * DEL; valid UTF-8 is copied; an octet that is not part of valid UTF-8
 * becomes \ufffd (JSON text must be Unicode, RFC 8259 §8.1).  Returns 0,
 * or -1 if b is full (b is then unchanged). */
int json_str(struct buf *b, const char *s, size_t n);

/* json_str() of a NUL-terminated string, or "null" when s is NULL. */
int json_cstr(struct buf *b, const char *s);

/* Appends t as an RFC 5322 date string ("Sun, 22 Nov 2026 06:37:36
 * +0000"), or null when t is 0 or cannot be written.  Returns 0 or -1 as
 * json_str(). */
int json_date(struct buf *b, time_t t);

/* Appends "key": (key through json_str()) preceded by a comma unless
 * first is set.  Returns 0 or -1 as json_str(). */
int json_key(struct buf *b, int first, const char *key);

/*
 * Called for each value of the object.  key is the member name; val is
 * the decoded string (NUL-terminated, vlen octets, no NUL inside) or NULL
 * for null; index is -1 for a plain member and 0, 1, ... for the
 * elements of an array (an empty array gives no call).  Return 0 to go
 * on, -1 to stop (json_read_object then returns -1 with err as the
 * callback left it).
 */
typedef int (*json_member_fn)(void *arg, const char *key, const char *val,
    size_t vlen, long index, char *err, size_t errsize);

/* Reads the n octets at s as one object as described above, with
 * whitespace around tokens and nothing after it.  Duplicate keys are
 * reported to fn as they come.  Returns 0, or -1 with a precise message
 * ("offset 12: expected ':'") in err. */
int json_read_object(const char *s, size_t n, json_member_fn fn, void *arg,
    char *err, size_t errsize);

#endif /* MSGTRK_COMMON_JSON_H */
