/*
 * tstatus: the message/tracking-status body of RFC 3886 (an "MTSN"): one
 * per-message block and one or more per-recipient blocks of header-like
 * fields, separated by empty lines (RFC 3886 §3.1):
 *
 *   tracking-status-content =
 *             per-message-fields 1*( CRLF per-recipient-fields )
 *
 * The generator is strict (it writes the RFC 3886 grammar order, CRLF,
 * folds with mime_field(), and refuses reports that break a MUST).  The
 * parser is an incremental push parser (after OpenSMTPD's rfc5322.c):
 * feed it bytes as they come with tstatus_parser_push(), then call
 * tstatus_parser_end() for the report.  It accepts fields in any order,
 * folding, comments in structured fields, names in any case, and keeps
 * extension fields in order; it rejects duplicates, missing required
 * fields, NUL, bare CR and 8-bit octets (RFC 3886 §3.1: "7bit encoding
 * ... MUST be used").
 *
 * Ownership: a struct tstatus given to tstatus_generate() belongs to the
 * caller (all pointers are borrowed).  A struct tstatus returned by the
 * parser lives in the parser's memory, strings included, and stays valid
 * until tstatus_parser_reset() or tstatus_parser_free(); nothing in it is
 * freed separately.
 */
#ifndef MSGTRK_TSTATUS_H
#define MSGTRK_TSTATUS_H

#include <stddef.h>

#include "msgtrk/buf.h"
#include "msgtrk/date.h"

/* RFC 5322 §2.1.1 and RFC 2045 §2.7 ("7bit data ... 998 octets or less
 * between CRLF"): the longest line, CRLF excluded. */
#define TSTATUS_LINE_MAX 998
/* Longest unfolded field ("Name: value").  No RFC bound; room for the
 * 500-character ORCPT of RFC 3461 §4.2 many times over. */
#define TSTATUS_FIELD_MAX 4096
/* Fields in one block: the 3 (per-message) or 7 (per-recipient) named
 * fields of RFC 3886 §3.2/§3.3 plus extension fields (§3.4). */
#define TSTATUS_BLOCK_FIELDS_MAX 64
/* Recipient blocks in one report (RFC 3886 §3.1 sets no bound). */
#define TSTATUS_RCPT_MAX 1000
/* Bytes in one report. */
#define TSTATUS_SIZE_MAX (1024 * 1024)

/* The action-value of RFC 3464 §2.3.3 extended by RFC 3886 §3.3.3 with
 * "transferred" and "opaque".  NONE is "not set" and never valid. */
enum tstatus_action {
	TSTATUS_ACTION_NONE = 0,
	TSTATUS_ACTION_FAILED,
	TSTATUS_ACTION_DELAYED,
	TSTATUS_ACTION_DELIVERED,
	TSTATUS_ACTION_RELAYED,
	TSTATUS_ACTION_EXPANDED,
	TSTATUS_ACTION_TRANSFERRED,
	TSTATUS_ACTION_OPAQUE,
};

enum tstatus_error {
	TSTATUS_OK = 0,
	TSTATUS_E_SYNTAX, /* no colon, continuation without field */
	TSTATUS_E_BAD_CHAR, /* NUL, bare CR, control character */
	TSTATUS_E_NON_ASCII, /* octet above 127 */
	TSTATUS_E_MISSING_FIELD, /* a REQUIRED field is absent */
	TSTATUS_E_EMPTY_VALUE, /* a REQUIRED field has no value */
	TSTATUS_E_DUPLICATE_FIELD, /* a named field twice in a block */
	TSTATUS_E_FIELD_IN_WRONG_BLOCK, /* per-recipient field in per-message
					   block or the reverse */
	TSTATUS_E_NO_RECIPIENTS, /* no per-recipient block */
	TSTATUS_E_BAD_TYPED_FIELD, /* "type; value" malformed */
	TSTATUS_E_BAD_ACTION, /* unknown action-value */
	TSTATUS_E_BAD_STATUS, /* malformed status-code or comment */
	TSTATUS_E_STATUS_ACTION_MISMATCH, /* 2.1.9 without relayed, class
					     that does not fit the action */
	TSTATUS_E_BAD_DATE, /* unparsable or unformattable date */
	TSTATUS_E_FIELD_NOT_ALLOWED, /* field forbidden for this action */
	TSTATUS_E_BAD_FIELD_NAME, /* name not an atom, or a standard name
					 used as an extension */
	TSTATUS_E_BAD_VALUE, /* generator: non-printable value or
					 blanks at its ends */
	TSTATUS_E_LINE_TOO_LONG, /* a line over the line limit */
	TSTATUS_E_FIELD_TOO_LONG, /* an unfolded field over its limit */
	TSTATUS_E_TOO_MANY_FIELDS, /* a block over the field limit */
	TSTATUS_E_TOO_MANY_RECIPIENTS, /* over the recipient limit */
	TSTATUS_E_TOO_BIG, /* input or output over the size limit */
	TSTATUS_E_NOMEM, /* out of memory */
};

/* A "type; value" field: address-type ";" generic-address, or
 * mta-name-type ";" mta-name (RFC 3464 §2.1.2).  The type is kept as
 * spelled (compare it with str_casecmp()); the value exactly as written.
 * type == NULL means the field is absent. */
struct tstatus_typed {
	const char *type;
	const char *value;
};

/* An extension field (RFC 3886 §3.4, RFC 3464 §2.4): name is an atom,
 * value is *text and may be "". */
struct tstatus_ext {
	const char *name;
	const char *value;
};

/* One per-recipient block (RFC 3886 §3.3). */
struct tstatus_rcpt {
	struct tstatus_typed orig_rcpt; /* Original-Recipient, REQUIRED */
	struct tstatus_typed final_rcpt; /* Final-Recipient, REQUIRED */
	enum tstatus_action action; /* Action, REQUIRED */
	const char *status; /* Status code "d.ddd.ddd", REQUIRED */
	const char *status_comment; /* comment(s) after the code, or NULL */
	struct tstatus_typed remote_mta; /* Remote-MTA, optional */
	int has_last_attempt;
	struct date last_attempt; /* Last-Attempt-Date */
	int has_will_retry;
	struct date will_retry; /* Will-Retry-Until */
	const struct tstatus_ext *ext;
	size_t next;
};

/* One message/tracking-status body. */
struct tstatus {
	const char *envid; /* Original-Envelope-Id, REQUIRED */
	struct tstatus_typed reporting_mta; /* Reporting-MTA, REQUIRED */
	struct date arrival; /* Arrival-Date, REQUIRED */
	const struct tstatus_ext *ext;
	size_t next;
	const struct tstatus_rcpt *rcpt; /* one or more */
	size_t nrcpt;
};

/* Parser limits; a zero field means the default named above. */
struct tstatus_limits {
	size_t line_max;
	size_t field_max;
	size_t fields_max;
	size_t rcpt_max;
	size_t size_max;
};

struct tstatus_parser;

/* Returns a parser with the given limits (NULL: all defaults), or NULL if
 * memory runs out.  Free it with tstatus_parser_free(). */
struct tstatus_parser *tstatus_parser_new(const struct tstatus_limits *lim);

/* Frees the parser and any report it returned.  Accepts NULL. */
void tstatus_parser_free(struct tstatus_parser *p);

/* Makes the parser ready for a new body, keeping its limits.  Invalidates
 * any report it returned. */
void tstatus_parser_reset(struct tstatus_parser *p);

/* Feeds the next len bytes of the body.  Returns 0 (more input is needed;
 * the body is complete only at tstatus_parser_end()) or -1 on an error,
 * whose code tstatus_parser_error() gives.  After an error every call
 * fails with the same code until tstatus_parser_reset(). */
int tstatus_parser_push(struct tstatus_parser *p, const void *data, size_t len);

/* Ends the body (an unterminated last line is taken as a whole line) and
 * checks it.  Returns 1 and sets *out to the report (owned by the parser,
 * see above), or -1 on an error.  A body ends once: call
 * tstatus_parser_reset() before the next one. */
int tstatus_parser_end(struct tstatus_parser *p, const struct tstatus **out);

/* The error code of the last failure, TSTATUS_OK if none. */
enum tstatus_error tstatus_parser_error(const struct tstatus_parser *p);

/* The 1-based number of the line the parser was on when it failed (0 if
 * it has not failed).  A field error is reported on the field's last
 * line. */
size_t tstatus_parser_line(const struct tstatus_parser *p);

/* Appends t as a message/tracking-status body to out: RFC 3886 grammar
 * order, CRLF line ends, one empty line between blocks, the body ends with
 * the CRLF of the last field.  First checks every rule RFC 3886 makes a
 * MUST or REQUIRED (see report_rcpt_check() in src/lib/report.h for the
 * action rules) and refuses non-ASCII or control characters.  Returns 0,
 * or -1 with *err_out set (err_out may be NULL); on failure out is left
 * as it was. */
int tstatus_generate(
    const struct tstatus *t, struct buf *out, enum tstatus_error *err_out);

/* The lower-case action-value ("failed", ... "opaque"), or NULL. */
const char *tstatus_action_name(enum tstatus_action a);

/* A short English description of e, never NULL. */
const char *tstatus_strerror(enum tstatus_error e);

#endif /* MSGTRK_TSTATUS_H */
