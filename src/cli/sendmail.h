/*
 * cli/sendmail.h: "msgtrk sendmail", the sendmail(8) interface (cron,
 * PHP, mutt), and the message rewriting it does before submission
 * (exposed for tests/unit/test_sendmail.c).
 */
#ifndef MSGTRK_CLI_SENDMAIL_H
#define MSGTRK_CLI_SENDMAIL_H

#include <stddef.h>
#include <time.h>

#include "msgtrk/buf.h"

/* sysexits.h, as sendmail(8) returns them. */
#define SENDMAIL_EX_USAGE 64
#define SENDMAIL_EX_DATAERR 65
#define SENDMAIL_EX_UNAVAILABLE 69
#define SENDMAIL_EX_SOFTWARE 70
#define SENDMAIL_EX_TEMPFAIL 75
#define SENDMAIL_EX_PROTOCOL 76
#define SENDMAIL_EX_CONFIG 78

/* RFC 5322 §2.1.1: our bound on a header section we look at (the rest of
 * the message is passed on untouched). */
#define SENDMAIL_HEADER_MAX (1024UL * 1024)

/* A recipient list (unique addresses, as given or with "@domain"
 * appended to a bare local part). */
struct sendmail_rcpts {
	char **v;
	size_t n, cap;
};

/* Adds the addresses of an RFC 5322 address-list (RFC 5322 §3.4: display
 * names, angle addresses, comments, quoted strings, groups; an empty
 * list or group is fine) held in the n octets at s to r, appending
 * "@domain" to a bare local part ("root").  Returns 0, or -1 with err
 * set (unbalanced quote, comment or angle bracket; an address that is not
 * printable ASCII without spaces; more than SEND_RCPT_MAX recipients;
 * out of memory). */
int sendmail_addrlist(const char *s, size_t n, const char *domain,
    struct sendmail_rcpts *r, char *err, size_t errsize);

void sendmail_rcpts_free(struct sendmail_rcpts *r);

/* How sendmail_rewrite() changes a message. */
struct sendmail_msg_opts {
	int dot_ends; /* no -i: a line "." alone ends the message */
	int extract; /* -t: To, Cc and Bcc recipients go to rcpts */
	const char *from; /* envelope sender, for a missing From: */
	const char *fullname; /* -F, or NULL */
	const char *domain; /* for bare local parts, and the Message-ID */
	time_t now;
};

/* Rewrites the message in in (LF or CRLF line ends) into out: cut at a
 * line "." alone when dot_ends; a leading mbox "From " line dropped;
 * Bcc: fields removed (RFC 5322 §3.6.3); From: ("fullname" <from>),
 * Date: and Message-ID: added when missing (RFC 5322 §3.6); with extract,
 * the addresses of To:, Cc: and Bcc: added to rcpts.  A header section
 * ended by a line that is not a field gets the empty line it lacked.
 * Returns 0, or -1 with err set. */
int sendmail_rewrite(const struct buf *in, const struct sendmail_msg_opts *mo,
    struct buf *out, struct sendmail_rcpts *rcpts, char *err, size_t errsize);

#endif /* MSGTRK_CLI_SENDMAIL_H */
