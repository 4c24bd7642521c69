/*
 * reply: a remote SMTP or LMTP reply as msgtrkd keeps and shows it, and
 * the Diagnostic-Code of a DSN made from it.
 *
 * A reply is kept whole, as RFC 3461 §9.2 writes an "smtp" diagnostic-code
 * and as Postfix logs "said: ...": every line as the server sent it (code,
 * "-" or SP, enhanced status code, text), joined by one SPACE:
 *
 *   550 5.1.1 <x@dest.test>: mailbox does not exist
 *   550-5.7.1 first line 550 5.7.1 second line
 *
 * This one string is the tracking record's reply (store field "reply"),
 * the log's reply=, `msgtrk log`/`msgtrk queue`, and, after "smtp; ", the
 * DSN's Diagnostic-Code (RFC 3464 §2.3.6).  Texts msgtrkd makes itself
 * (no SMTP reply: "No such local recipient", "host: connection refused",
 * "TLS required and not available") never start with a reply code, so
 * reply_is_smtp() tells the two apart: a DSN gives them the private
 * diagnostic-type "X-msgtrk" (RFC 3464 §2.3.6 and §2.1: "X-" types need
 * no registration; Postfix writes "X-Postfix;" for its own).
 */
#ifndef MSGTRK_REPLY_H
#define MSGTRK_REPLY_H

#include <stddef.h>

#include "msgtrk/smtp_reply.h"

/* Octets of a reply kept (before escaping): RFC 5321 §4.5.3.1.5 bounds a
 * line by 512 octets with CRLF; two such lines and some more, enough for
 * the multi-line refusals of Gmail, Exim and Postfix.  Longer replies are
 * cut. */
#define REPLY_TEXT_MAX 1000

/* The diagnostic-type of texts msgtrkd makes itself. */
#define REPLY_DIAG_TYPE_LOCAL "X-msgtrk"

/* Writes r (code 200-599, as smtp_reply_next() returns it) in the form
 * above into out: at most min(REPLY_TEXT_MAX, outsize - 1) octets and a
 * NUL.  Octets are copied as sent (the caller escapes them for storage,
 * e.g. with delivery_rcpt_set()).  A line from which the parser took no
 * enhanced status code (it differed from the first line's) is written
 * with the reply's code.  Returns the length written. */
size_t reply_format(const struct smtp_reply_msg *r, char *out, size_t outsize);

/* 1 if s begins with a reply code written by reply_format(): a digit 2-5,
 * two digits, then SP, "-" or the end.  0 otherwise (NULL too). */
int reply_is_smtp(const char *s);

/* Splits a kept reply s (one line, printable) into the lines that
 * dsn_rcpt.diagnostic takes, LF-separated, so that the DSN carries the
 * same text back (it joins lines with one SPACE, RFC 3461 §9.2): a line
 * ends before each " DDD-"/" DDD " that continues a multi-line reply
 * (DDD the reply's code, after a line "DDD-"), and a line longer than
 * DSN_DIAG_LINE_MAX is broken at its last SPACE within the limit (cut
 * there if it has none).  Blanks at a break are dropped, at most
 * DSN_DIAG_LINES_MAX lines are written (the rest is dropped).  out must
 * hold strlen(s) + DSN_DIAG_LINES_MAX + 1 octets (less is cut).  Returns
 * the number of lines, 0 if s is empty or blank. */
size_t reply_diag_lines(const char *s, char *out, size_t outsize);

#endif /* MSGTRK_REPLY_H */
