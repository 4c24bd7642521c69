/*
 * hdrscan: a bounded look at the header of a message while its content
 * arrives (RFC 5322 §2.2, §3.6), for a submission server (RFC 6409 §8:
 * "add Date:, Message-ID: when missing") and for the sender's list of
 * tracked messages (its Subject).  Pure: no I/O, no allocation, never
 * aborts on input.
 *
 * The content is fed as it comes (any split): dot-unstuffed, CRLF line
 * ends (a bare LF also ends a line).  The header is the lines before the
 * first empty line; a line that is not a field (no ':' after a valid
 * field name, RFC 5322 §3.6.8: printable US-ASCII but ':') ends it too,
 * as Postfix's cleanup takes such a line for the start of the body.
 * Folded lines (starting with SP or HTAB) continue the field before.
 * Field names are compared ignoring ASCII case; blanks before the ':'
 * (RFC 5322 §4.5.3, obsolete syntax) are allowed.
 *
 * Bounded: only the first HDRSCAN_MAX octets are looked at.  A header
 * still going on past them is HDRSCAN_F_CUT: what was not seen may hold
 * a Date: or Message-ID:, so a caller adds neither (a second Date: is
 * worse than none).
 */
#ifndef MSGTRK_HDRSCAN_H
#define MSGTRK_HDRSCAN_H

#include <stddef.h>

/* Octets of content looked at, at most. */
#define HDRSCAN_MAX 65536
/* The Subject kept: unfolded, at most this many octets (longer ones are
 * cut), each octet outside printable US-ASCII replaced by '?', an HTAB
 * by SP, leading and trailing blanks dropped.  Encoded-words (RFC 2047)
 * are kept as they are. */
#define HDRSCAN_SUBJECT_MAX 200
/* The longest field name compared (longer names are none of ours). */
#define HDRSCAN_NAME_MAX 32

/* hdrscan_end()'s result. */
#define HDRSCAN_F_DATE 0x01 /* a Date: field */
#define HDRSCAN_F_MESSAGE_ID 0x02 /* a Message-ID: field */
#define HDRSCAN_F_SUBJECT 0x04 /* a Subject: field (the first is kept) */
#define HDRSCAN_F_CUT 0x08 /* the header went on past HDRSCAN_MAX */

struct hdrscan {
	unsigned int flags;
	int state; /* internal */
	int field; /* the field whose value the current line carries */
	size_t seen; /* octets looked at */
	char name[HDRSCAN_NAME_MAX + 1];
	size_t nlen;
	int blanks; /* blanks after the name (obsolete syntax) */
	int pending_sp; /* a blank waits before the next Subject octet */
	char subject[HDRSCAN_SUBJECT_MAX + 1];
	size_t slen;
};

/* Starts a scan. */
void hdrscan_init(struct hdrscan *h);

/* Looks at the next n octets of content (nothing once the header ended
 * or HDRSCAN_MAX octets were seen). */
void hdrscan_push(struct hdrscan *h, const char *p, size_t n);

/* 1 once nothing more is looked at (the header ended, or it was cut). */
int hdrscan_done(const struct hdrscan *h);

/* The content ended: returns the HDRSCAN_F_* flags.  Content that ends
 * inside the header (no empty line) ends the header. */
unsigned int hdrscan_end(struct hdrscan *h);

/* The Subject (HDRSCAN_F_SUBJECT), NUL-terminated, valid as long as h;
 * "" if none. */
const char *hdrscan_subject(const struct hdrscan *h);

#endif /* MSGTRK_HDRSCAN_H */
