/*
 * dsn: generator of complete Delivery Status Notification messages
 * (RFC 3464 format, RFC 3461 §6 content rules):
 *
 *   header      From, To, Subject, Date, Message-ID, MIME-Version,
 *               Auto-Submitted: auto-replied (RFC 3834 §5),
 *               Content-Type: multipart/report; report-type=delivery-status
 *   part 1      text/plain; charset=us-ascii, for humans
 *   part 2      message/delivery-status (RFC 3464 §2)
 *   part 3      the returned content, if the caller passes the message:
 *               message/rfc822 (the whole message) when RET=FULL and the
 *               DSN reports a failure, else text/rfc822-headers (the
 *               header only; RFC 3461 §4.3 "If a DSN contains no
 *               indications of delivery failure, only the headers of the
 *               message SHOULD be returned").
 *
 * Everything that would make output vary (Date, Message-ID, boundary) is
 * passed in, so the output is a pure function of the input.
 *
 * Ownership: the generator only borrows the caller's strings.
 */
#ifndef MSGTRK_DSN_H
#define MSGTRK_DSN_H

#include <stddef.h>

#include "msgtrk/buf.h"
#include "msgtrk/date.h"
#include "msgtrk/tstatus.h"

/* RFC 3461 §4.4: ENVID "MUST NOT be longer than 100 characters". */
#define DSN_ENVID_MAX 100
/* RFC 3461 §4.2: the ORCPT parameter is at most 500 characters; we bound
 * every address (type, ";" and address) by it. */
#define DSN_ADDR_MAX 500
/* RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with CRLF. */
#define DSN_DIAG_LINE_MAX 510
/* Lines of one SMTP reply in a Diagnostic-Code. */
#define DSN_DIAG_LINES_MAX 16
/* Recipients in one DSN (as the tracking-status limit). */
#define DSN_RCPT_MAX TSTATUS_RCPT_MAX

/* RFC 3461 §4.3. */
enum dsn_ret {
	DSN_RET_NONE = 0, /* no RET given: we return the header only */
	DSN_RET_HDRS,
	DSN_RET_FULL,
};

enum dsn_error {
	DSN_OK = 0,
	DSN_E_MISSING, /* a required value is NULL or empty */
	DSN_E_BAD_VALUE, /* not printable US-ASCII, CR/LF, edge
				       blanks, or a bad Message-ID */
	DSN_E_BAD_TYPE, /* *-type is not an atom */
	DSN_E_TOO_LONG, /* a value over its limit, or a line
				       over 998 characters */
	DSN_E_BAD_ACTION, /* not one of the five RFC 3464 actions */
	DSN_E_BAD_STATUS, /* malformed status-code */
	DSN_E_STATUS_ACTION_MISMATCH, /* 2.1.9 without relayed, class that
					 does not fit the action */
	DSN_E_FIELD_NOT_ALLOWED, /* Will-Retry-Until with an action other
				       than delayed */
	DSN_E_NO_RECIPIENTS,
	DSN_E_TOO_MANY_RECIPIENTS,
	DSN_E_NULL_SENDER, /* no reverse-path: no DSN may be sent */
	DSN_E_BAD_DATE, /* a date cannot be formatted */
	DSN_E_BOUNDARY, /* the boundary is invalid or occurs in
				       the content */
	DSN_E_TOO_BIG, /* output buffer limit */
	DSN_E_RANDOM, /* no fresh boundary (random source) */
};

/* One reported recipient (RFC 3464 §2.3). */
struct dsn_rcpt {
	/* Original-Recipient from ORCPT, decoded (RFC 3461 §6.3(d): present
	 * only if ORCPT was given).  orcpt_type NULL: no ORCPT. */
	const char *orcpt_type;
	const char *orcpt;
	/* Final-Recipient: the envelope address; type NULL means "rfc822"
	 * (RFC 3461 §6.3(e)). */
	const char *final_type;
	const char *final_rcpt;
	/* failed, delayed, delivered, relayed or expanded (RFC 3464
	 * §2.3.3); transferred and opaque belong to RFC 3886 only. */
	enum tstatus_action action;
	const char *status; /* "5.1.1" */
	/* Remote-MTA (mta-name-type "dns", RFC 3461 §6.3(h)); NULL if no
	 * remote MTA was involved. */
	const char *remote_mta;
	/* The remote SMTP reply (RFC 3461 §6.3(i), §9.2), lines separated
	 * by CRLF or LF, written as "smtp; " + the lines joined by one
	 * SPACE; NULL if none. */
	const char *diagnostic;
	/* The diagnostic-type (RFC 3464 §2.3.6, an atom) when diagnostic
	 * is not an SMTP reply, e.g. "X-msgtrk" for the MTA's own text;
	 * NULL means "smtp". */
	const char *diagnostic_type;
	int has_last_attempt;
	struct date last_attempt;
	int has_will_retry; /* delayed only (RFC 3464 §2.3.9) */
	struct date will_retry;
};

struct dsn {
	/* From: value; NULL means "MAILER-DAEMON@" reporting_mta. */
	const char *from;
	/* The original sender (MAIL FROM), written as "To: <sender>".
	 * NULL or "" is refused: RFC 3461 §6.1 never sends a DSN to a null
	 * reverse-path. */
	const char *sender;
	/* Subject: value; NULL picks one from the actions. */
	const char *subject;
	struct date date; /* Date: */
	const char *message_id; /* Message-ID: value, "<...>" */
	/* RFC 3461 §6.3(a): the ENVID, xtext-decoded, or NULL if none was
	 * given (then Original-Envelope-Id is left out). */
	const char *envid;
	/* Reporting-MTA; type NULL means "dns" (RFC 3461 §6.3(b)). */
	const char *reporting_mta_type;
	const char *reporting_mta;
	int has_arrival;
	struct date arrival; /* Arrival-Date */
	const struct dsn_rcpt *rcpt;
	size_t nrcpt;
	enum dsn_ret ret;
	/* The original message (header and body as received, CRLF lines),
	 * or NULL to return nothing. */
	const char *msg;
	size_t msglen;
	/* The multipart boundary, or NULL/"" for a fresh mime_boundary(). */
	const char *boundary;
};

/* Appends the complete DSN message d to out.  Checks every value first
 * (printable US-ASCII, the RFC 3464 field rules and the action rules of
 * report_rcpt_check() in src/lib/report.h) and that the boundary occurs
 * nowhere in the content.  The returned content is copied as given; if
 * it has octets above 127 the part and the message are labelled
 * Content-Transfer-Encoding: 8bit and the caller must send the DSN with
 * BODY=8BITMIME.  Returns 0, or -1 with *err_out set (err_out may be
 * NULL); on failure out is left as it was. */
int dsn_generate(const struct dsn *d, struct buf *out, enum dsn_error *err_out);

/* Finds the end of the header of the len-byte message msg: the offset
 * just after the line end that precedes the first empty line (CRLF or
 * bare LF lines), or len if there is no empty line (all header). */
size_t dsn_header_len(const char *msg, size_t len);

/* A short English description of e, never NULL. */
const char *dsn_strerror(enum dsn_error e);

#endif /* MSGTRK_DSN_H */
