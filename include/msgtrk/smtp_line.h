/*
 * smtp_line: the server side of the SMTP wire (RFC 5321 §2.3.8, §4.1.1.4,
 * §4.5.2): an incremental reader that the daemon's SMTP session feeds with
 * whatever bytes arrived, and that hands out either complete command lines
 * (command phase) or message content (DATA phase).
 *
 * One object serves both phases so that bytes pipelined behind a command
 * (RFC 2920) or behind the terminating "." of DATA (a QUIT or RSET) stay
 * buffered for whichever phase comes next.
 *
 * Choices made here (each is documented where it is enforced):
 * - Command lines end ONLY at CRLF.  RFC 5321 §2.3.8: "Conforming
 *   implementations MUST NOT recognize or generate any other character or
 *   character sequence as a line terminator."  A bare LF, or a CR not
 *   followed by LF, is reported (SMTP_LINE_ERR_BARE_LF / _BARE_CR) as soon
 *   as it is seen, so a client that ends lines with LF gets an answer
 *   instead of a hang; the rest of that line, up to the next CRLF, is then
 *   discarded without a second report (it is one bad line, one reply).
 *   The session answers smtp_cmd_reply(smtp_line_cmd_error(err)), i.e.
 *   501 5.5.2 (bare CR/LF are control characters, RFC 5321 §4.1.2), and
 *   may hang up as Postfix does ("smtpd_forbid_bare_newline").
 * - NUL and 8-bit octets in command lines are passed through untouched:
 *   smtp_cmd_parse() is the one place that refuses them (SMTP_CMD_ERR_NUL,
 *   SMTP_CMD_ERR_BAD_CHAR).
 * - DATA ends ONLY at CRLF "." CRLF.  Every other variant (LF "." LF,
 *   CR "." LF, LF "." CRLF, CRLF "." LF, CR "." CR LF, ...) is ordinary
 *   content; each contains a bare CR or a bare LF, so the message is
 *   flagged (SMTP_DATA_F_BARE_LF / _BARE_CR) and the daemon refuses it
 *   with 550 5.5.2 at the end of DATA (PRODUCT.md).  This closes the
 *   "SMTP smuggling" class of attacks.
 */
#ifndef MSGTRK_SMTP_LINE_H
#define MSGTRK_SMTP_LINE_H

#include <stddef.h>
#include <stdint.h>

#include "msgtrk/buf.h"
#include "msgtrk/smtp_cmd.h"

/* The default (and usual) command-line limit, octets including CRLF: MAIL
 * and RCPT lines may be 2048 (digest mtrk-rfc3885 §3.4 [DECISION]); the
 * 512 of RFC 5321 §4.5.3.1.4 for the other verbs is enforced by
 * smtp_cmd_parse() on the complete line. */
#define SMTP_LINE_LIMIT_DEFAULT SMTP_CMD_LINE_MAX_MAILRCPT
/* The smallest limit accepted: "X" CRLF. */
#define SMTP_LINE_LIMIT_MIN 3
/* Unread input the reader holds at most (octets).  At least one maximal
 * line fits, so a line can always complete.  smtp_line_room() says how
 * much more may be pushed; the rest stays in the caller's socket buffer,
 * which is how the daemon applies back-pressure to a client that
 * pipelines without reading replies. */
#define SMTP_LINE_INPUT_MAX 65536
/* RFC 5321 §4.5.3.1.6: "The maximum total length of a text line including
 * the <CRLF> is 1000 octets."  Longer content lines are flagged, not
 * refused (the relay may have to fold or refuse them). */
#define SMTP_LINE_TEXT_MAX 1000

enum smtp_line_error {
	SMTP_LINE_OK = 0,
	/* Command line longer than the limit; the rest of it, up to the
	 * next CRLF, is discarded.  Reply: 500 5.5.2. */
	SMTP_LINE_ERR_TOO_LONG,
	/* LF not preceded by CR in a command line (RFC 5321 §2.3.8).
	 * Reply: 501 5.5.2. */
	SMTP_LINE_ERR_BARE_LF,
	/* CR not followed by LF in a command line.  Reply: 501 5.5.2. */
	SMTP_LINE_ERR_BARE_CR,
	/* A call that does not fit the phase (a line asked for during
	 * DATA, or content outside DATA).  A bug in the caller. */
	SMTP_LINE_ERR_STATE,
	SMTP_LINE_ERR_COUNT /* not an error: the number of codes */
};

/* DATA flags (struct smtp_data_info.flags). */
#define SMTP_DATA_F_BARE_LF 0x01 /* LF without CR: refuse, 550 5.5.2 */
#define SMTP_DATA_F_BARE_CR 0x02 /* CR without LF: refuse, 550 5.5.2 */
#define SMTP_DATA_F_NUL \
	0x04 /* a NUL octet (RFC 5321 §4.5.2 lets the
				   128 ASCII characters through; the
				   caller decides) */
#define SMTP_DATA_F_8BIT \
	0x08 /* an octet >= 0x80 (needs BODY=8BITMIME,
				    RFC 6152) */
#define SMTP_DATA_F_TOO_BIG 0x10 /* over max_size: 552 5.3.4 (RFC 1870 §6) */
#define SMTP_DATA_F_LONG_LINE 0x20 /* a line over SMTP_LINE_TEXT_MAX */
#define SMTP_DATA_F_STORE_FAILED \
	0x40 /* appending to the caller's buf
					    failed (ENOMEM): 451 4.3.0 */

/* What the DATA reader saw.  Counts are of the content after dot-
 * unstuffing, excluding the terminating "." CRLF. */
struct smtp_data_info {
	unsigned int flags; /* SMTP_DATA_F_* */
	uint64_t size; /* content octets, stored or not */
	uint64_t lines; /* CRLF-terminated lines */
	uint64_t eightbit; /* octets >= 0x80 */
	uint64_t nul; /* NUL octets */
	/* The header section (RFC 5322 §2.1): the physical lines from the
	 * start that are header fields ("name:" with 1*ftext before the
	 * colon) or their folded continuations.  A message that starts
	 * with anything else has header_lines == 0 (the daemon still adds
	 * its Received: field). */
	uint64_t header_lines;
	/* 1 if an empty line ended the header section (the separator of
	 * RFC 5322 §2.1); 0 if the header section ran into a line that is
	 * not a field, or into the end of the message. */
	int header_end;
};

struct smtp_line;

/* Allocates a reader in command phase whose lines, CRLF included, may be
 * limit octets long (0 means SMTP_LINE_LIMIT_DEFAULT).  Returns NULL if
 * limit is below SMTP_LINE_LIMIT_MIN or above SMTP_LINE_INPUT_MAX (errno
 * EINVAL), or on ENOMEM.  Free with smtp_line_free(). */
struct smtp_line *smtp_line_new(size_t limit);

/* Frees r and everything it buffered.  Accepts NULL. */
void smtp_line_free(struct smtp_line *r);

/* Drops every buffered byte and returns r to command phase (the limit
 * stays).  For STARTTLS: RFC 3207 §4.2 wants the session reset and no
 * plaintext kept, and for a session that starts over. */
void smtp_line_clear(struct smtp_line *r);

/* Octets that may be pushed now: SMTP_LINE_INPUT_MAX less what is
 * buffered and unread. */
size_t smtp_line_room(const struct smtp_line *r);

/* Appends n octets of input (any octets, NUL included).  Returns 0, or -1
 * with errno ENOSPC (n > smtp_line_room(r); nothing is taken) or ENOMEM.
 * Invalidates the line returned by smtp_line_next(). */
int smtp_line_push(struct smtp_line *r, const void *data, size_t n);

/* Octets buffered and not yet handed out as a line or as content.  After
 * the STARTTLS line has been read this must be 0: any other value is
 * plaintext pipelined behind STARTTLS (CVE-2011-0411), and the session
 * refuses it and clears r. */
size_t smtp_line_pending(const struct smtp_line *r);

/* Command phase: takes the next complete line.  Returns 1 with
 * *line_out and *len_out set to the line WITHOUT its CRLF (not NUL-terminated;
 * it may contain NUL and 8-bit octets, which smtp_cmd_parse() refuses),
 * valid until the next call on r; 0 if more input is needed (an
 * incomplete line stays buffered); -1 with *err_out set (TOO_LONG,
 * BARE_LF, BARE_CR: the bad line is consumed and the reader is ready for
 * the next call; STATE during DATA).  err_out may be NULL.  Each bad line
 * is reported exactly once, at the octet that makes it bad, so the result
 * does not depend on how the input was split into pushes. */
int smtp_line_next(struct smtp_line *r, const char **line_out, size_t *len_out,
    enum smtp_line_error *err_out);

/* The reply table row for a line error, as an smtp_cmd error: TOO_LONG is
 * SMTP_CMD_ERR_LINE_TOO_LONG (500 5.5.2), BARE_LF and BARE_CR are
 * SMTP_CMD_ERR_BAD_CHAR (501 5.5.2).  SMTP_CMD_OK for the rest. */
enum smtp_cmd_error smtp_line_cmd_error(enum smtp_line_error err);

/* A short constant name for logs ("too-long", "bare-lf", ...). */
const char *smtp_line_error_name(enum smtp_line_error err);

/* Enters DATA phase (after the session answered 354): content octets
 * beyond max_size (0: no limit) are counted but not stored, and flag
 * SMTP_DATA_F_TOO_BIG.  Bytes already buffered behind the DATA line are
 * content.  Returns 0, or -1 (SMTP_LINE_ERR_STATE: already in DATA). */
int smtp_line_data_begin(struct smtp_line *r, uint64_t max_size);

/* DATA phase: consumes every buffered octet up to and including the
 * terminating CRLF "." CRLF (RFC 5321 §4.1.1.4), appends the content to
 * out with dot-unstuffing (RFC 5321 §4.5.2: "If the first character is a
 * period and there are other characters on the line, the first character
 * is deleted"), and keeps the bytes after the final "." CRLF for
 * smtp_line_next().  The CRLF before the final dot belongs to the content
 * (RFC 5321 §4.1.1.4); a message sent as "DATA" CRLF "." CRLF is empty.
 * The caller may empty out between calls (to write it to the spool): the
 * size limit counts all content.  Content that does not fit in out (its
 * max) counts as too big too: out then holds the content up to the point
 * it filled, whatever the pushes were; an allocation failure sets
 * SMTP_DATA_F_STORE_FAILED and stops storing.  Either way
 * reading goes on to the final dot, so the session stays in step.
 * Returns 1 at the end of the message (r is back in command phase; see
 * smtp_line_data_info()), 0 if more input is needed, -1 with *err_out
 * SMTP_LINE_ERR_STATE outside DATA.  err_out may be NULL. */
int smtp_line_data(
    struct smtp_line *r, struct buf *out, enum smtp_line_error *err_out);

/* What the last (or current) DATA phase saw; reset by
 * smtp_line_data_begin().  Valid as long as r. */
const struct smtp_data_info *smtp_line_data_info(const struct smtp_line *r);

#endif /* MSGTRK_SMTP_LINE_H */
