/*
 * report: field code shared by the two report formats of libmsgtrk,
 * message/tracking-status (RFC 3886, tstatus.c) and message/delivery-status
 * (RFC 3464, dsn.c).  Internal to the library: field names, action names,
 * status-code and *-type checks, the rules that tie fields to actions,
 * the field writers, and a small string arena for parsed values.
 *
 * RFC 3886 defines most of its fields by pointing at RFC 3464 ("defined as
 * in section 2.3.x of [RFC-DSN-STAT]"), so one implementation serves both.
 */
#ifndef MSGTRK_REPORT_H
#define MSGTRK_REPORT_H

#include <stddef.h>

#include "msgtrk/buf.h"
#include "msgtrk/date.h"
#include "msgtrk/tstatus.h"

/* RFC 3464 §2.3.4: status-code = DIGIT "." 1*3DIGIT "." 1*3DIGIT, so at
 * most 9 characters ("5.123.456"). */
#define REPORT_STATUS_MAX 9

/* Outcome of the shared checks and writers; each format maps these onto
 * its own public error enum. */
enum report_err {
	REPORT_OK = 0,
	REPORT_E_MISSING, /* a required value is NULL or empty */
	REPORT_E_BAD_VALUE, /* not printable US-ASCII, or edge blanks */
	REPORT_E_BAD_TYPE, /* *-type subfield is not an atom */
	REPORT_E_BAD_ACTION, /* action outside the allowed set */
	REPORT_E_BAD_STATUS, /* status-code or its comment malformed */
	REPORT_E_STATUS_ACTION, /* status class/code does not fit action */
	REPORT_E_NOT_ALLOWED, /* field present where a MUST NOT applies */
	REPORT_E_NEEDS_ATTEMPT, /* Last-Attempt-Date missing where required */
	REPORT_E_BAD_DATE, /* date cannot be formatted */
	REPORT_E_LINE_TOO_LONG, /* a line would pass 998 characters */
	REPORT_E_NOSPC, /* the output buffer hit its maximum */
};

/* Every field name either format knows.  The first ten are the named
 * fields of RFC 3886 §3.2/§3.3 (in grammar order); the rest exist only in
 * RFC 3464 and are extension fields in a tracking status (RFC 3886 leaves
 * them out of its grammar). */
enum report_field {
	REPORT_F_ENVID, /* Original-Envelope-Id */
	REPORT_F_REPORTING_MTA, /* Reporting-MTA */
	REPORT_F_ARRIVAL, /* Arrival-Date */
	REPORT_F_ORIG_RCPT, /* Original-Recipient */
	REPORT_F_FINAL_RCPT, /* Final-Recipient */
	REPORT_F_ACTION, /* Action */
	REPORT_F_STATUS, /* Status */
	REPORT_F_REMOTE_MTA, /* Remote-MTA */
	REPORT_F_LAST_ATTEMPT, /* Last-Attempt-Date */
	REPORT_F_WILL_RETRY, /* Will-Retry-Until */
	REPORT_F_DSN_GATEWAY, /* DSN-Gateway (RFC 3464 only) */
	REPORT_F_RECEIVED_FROM, /* Received-From-MTA (RFC 3464 only) */
	REPORT_F_DIAGNOSTIC, /* Diagnostic-Code (RFC 3464 only) */
	REPORT_F_FINAL_LOG_ID, /* Final-Log-ID (RFC 3464 only) */
	REPORT_F_COUNT,
};

/* The named fields of RFC 3886 end here; the per-message ones come
 * first. */
#define REPORT_F_TSTATUS_COUNT (REPORT_F_WILL_RETRY + 1)
#define REPORT_F_PER_MESSAGE_COUNT (REPORT_F_ARRIVAL + 1)

/* The canonical spelling of a field name (G-1 of the project decisions). */
const char *report_field_name(enum report_field f);

/* Looks up the n bytes at s as a field name, ignoring ASCII case (RFC 3464
 * §2.1.1 "field names are case-insensitive").  Returns the field, or -1 if
 * it is none of them. */
int report_field_lookup(const char *s, size_t n);

/* The lower-case action-value for a, or NULL if a is not an action. */
const char *report_action_name(enum tstatus_action a);

/* Looks up the n bytes at s as an action-value, ignoring case (RFC 3464
 * §2.3.3).  Returns the action or TSTATUS_ACTION_NONE. */
enum tstatus_action report_action_lookup(const char *s, size_t n);

/* Checks the n bytes at s as a status-code (RFC 3464 §2.3.4 with the
 * classes of RFC 3463 §2): class 2, 4 or 5, subject and detail of 1 to 3
 * digits, no leading zeros.  Returns the class digit (2, 4, 5) or -1. */
int report_status_check(const char *s, size_t n);

/* Returns 1 if the n bytes at s are an RFC 822 atom: one or more CHARs
 * other than specials, SPACE and CTLs.  Else 0. */
int report_atom_check(const char *s, size_t n);

/* Returns the number of bytes of CFWS (white space and properly nested
 * comments, RFC 5322 §3.2.2) at the start of the n bytes at s, or
 * (size_t)-1 if a comment is not closed. */
size_t report_cfws(const char *s, size_t n);

/* Checks a NUL-terminated value for writing: printable US-ASCII and HTAB
 * only (RFC 3886 §3.1 "7bit"), no SPACE/HTAB at either end (the parser
 * trims them, so they would not survive).  Empty is REPORT_E_MISSING
 * unless allow_empty.  Returns REPORT_OK or an error. */
enum report_err report_text_check(const char *s, int allow_empty);

/* Checks a typed field (RFC 3464 §2.1.2 address-type / mta-name-type):
 * type an atom, value a non-empty text.  Returns REPORT_OK or an error. */
enum report_err report_typed_check(const char *type, const char *value);

/* Checks a status comment as kept by the parser: NULL, or one or more
 * comments (with white space between) and nothing else. */
enum report_err report_comment_check(const char *comment);

/*
 * Checks the rules that tie a recipient's fields to its action:
 *   - the status-code is valid (RFC 3464 §2.3.4, RFC 3463 §2);
 *   - "A status code of 2.1.9 MUST only be used with an action of
 *     relayed" (RFC 3886 §3.3.4);
 *   - the class fits the action (RFC 3463 §2: class 2 "is reporting a
 *     positive delivery action"; RFC 3464 §2.3.3 allows 4 with "failed"):
 *     failed 4|5, delayed 4, delivered/relayed/expanded/transferred 2,
 *     opaque any;
 *   - Remote-MTA "MUST NOT be included ... if the Action field has value
 *     opaque" (RFC 3886 §3.3.5), and when present an attempt was made, so
 *     Last-Attempt-Date "is REQUIRED" (RFC 3886 §3.3.6);
 *   - Will-Retry-Until only with delayed (RFC 3464 §2.3.9, RFC 3886 §3.3.7);
 *   - tracking != 0 adds RFC 3886 §3.3.6: relayed and transferred hand the
 *     message on, so an attempt was made and Last-Attempt-Date is required;
 *     opaque carries no Last-Attempt-Date (no attempt is known).
 * Returns REPORT_OK or an error.
 */
enum report_err report_rcpt_check(enum tstatus_action action,
    const char *status, int has_remote_mta, int has_last_attempt,
    int has_will_retry, int tracking);

/* Field writers: "Name: value" CRLF folded by mime_field (RFC 5322
 * §2.2.3).  The values must have passed the checks above.  Each returns
 * REPORT_OK, REPORT_E_LINE_TOO_LONG or REPORT_E_NOSPC, and on error leaves
 * b as it was. */
enum report_err report_put_text(
    struct buf *b, enum report_field f, const char *value);
enum report_err report_put_typed(
    struct buf *b, enum report_field f, const char *type, const char *value);
enum report_err report_put_date(
    struct buf *b, enum report_field f, const struct date *d);
enum report_err report_put_action(struct buf *b, enum tstatus_action a);
enum report_err report_put_status(
    struct buf *b, const char *status, const char *comment);
/* An extension field; an empty value is written as "Name:" (G-2). */
enum report_err report_put_ext(
    struct buf *b, const char *name, const char *value);

/*
 * A string arena: copies never move, and all are freed together.  Used
 * for the values of a parsed report so that the result is one object.
 */
struct report_chunk;
struct report_arena {
	struct report_chunk *head;
};

void report_arena_init(struct report_arena *a);
void report_arena_reset(struct report_arena *a);
/* Copies n bytes and a NUL into the arena.  Returns the copy, or NULL if
 * memory runs out.  Valid until report_arena_reset(). */
char *report_arena_strndup(struct report_arena *a, const char *s, size_t n);

#endif /* MSGTRK_REPORT_H */
