/*
 * smtp_reply: the client side of the SMTP wire (RFC 5321 §4.2): an
 * incremental reader of server replies, single- and multi-line, with the
 * RFC 2034 enhanced status code, and a parser of EHLO (RFC 5321 §4.1.1.1)
 * and LHLO (RFC 2033) responses.  Used by the relay's outbound SMTP and
 * LMTP and by the msgtrk client.
 *
 * Choices made here (each is documented where it is enforced):
 * - A bare LF ends a reply line unless SMTP_REPLY_STRICT_CRLF is given.
 *   RFC 5321 §2.3.8 forbids it, but the line endings of a server's replies
 *   cannot smuggle anything into a message (what matters is what WE send)
 *   and Postfix's smtp client accepts LF too.  A CR not followed by LF is
 *   always an error (it could only be a garbled line).
 * - The reply code is three digits, the first 2 to 5.  The ABNF of RFC
 *   5321 §4.2 limits the second digit to 0-5, but the same section says
 *   "a sender-SMTP MUST be prepared to handle codes not specified in this
 *   document and MUST do so by interpreting the first digit only", so any
 *   second and third digit is accepted.  "Clients that receive such
 *   out-of-range codes [first digit not 2-5] SHOULD normally treat them as
 *   fatal errors": SMTP_REPLY_ERR_CODE.
 * - "250" CRLF and "250 " CRLF are replies with empty text (RFC 5321 §4.2:
 *   clients "SHOULD be prepared to process the code alone (with or without
 *   a trailing space character)").
 * - The text is kept as sent except for NUL, which is refused: 8-bit and
 *   control octets from a server are kept (use str_printable() to log).
 * - Line length: RFC 5321 §4.5.3.1.5 says 512 octets with CRLF, but real
 *   servers exceed it (long EHLO lines, long rejection texts); we accept
 *   up to SMTP_REPLY_LINE_MAX, the same 2048 as our command lines.
 * - Errors are final: after -1 the parser keeps answering -1 with the same
 *   code until smtp_reply_parser_clear(); the caller closes the
 *   connection (a client cannot resynchronise with a server it cannot
 *   parse).
 */
#ifndef MSGTRK_SMTP_REPLY_H
#define MSGTRK_SMTP_REPLY_H

#include <stddef.h>
#include <stdint.h>

/* Octets of one reply line including CRLF (see above: 2048, not the 512
 * of RFC 5321 §4.5.3.1.5). */
#define SMTP_REPLY_LINE_MAX 2048
/* Lines in one reply (RFC 5321 sets no limit; an EHLO reply has one line
 * per extension, a few dozen at most in practice). */
#define SMTP_REPLY_LINES_MAX 100
/* Octets of one reply, all lines and line endings counted. */
#define SMTP_REPLY_TOTAL_MAX 65536
/* Unread input the parser holds at most (octets). */
#define SMTP_REPLY_INPUT_MAX 65536
/* RFC 2034 §4: status-code ::= class "." subject "." detail, subject and
 * detail 1*3digit: at most "5.999.999", 9 octets. */
#define SMTP_REPLY_STATUS_MAX 9

/* smtp_reply_parser_new() flags. */
#define SMTP_REPLY_STRICT_CRLF 0x01 /* a bare LF is an error */

enum smtp_reply_error {
	SMTP_REPLY_OK = 0,
	SMTP_REPLY_ERR_CODE, /* not 3 digits, the first 2-5 */
	SMTP_REPLY_ERR_SEPARATOR, /* after the code not SP, "-" or the end */
	SMTP_REPLY_ERR_MISMATCH, /* a line of a multi-line reply with
				    another code (RFC 5321 §4.2.1) */
	SMTP_REPLY_ERR_LINE_TOO_LONG, /* over SMTP_REPLY_LINE_MAX */
	SMTP_REPLY_ERR_TOO_MANY_LINES, /* over SMTP_REPLY_LINES_MAX */
	SMTP_REPLY_ERR_TOO_BIG, /* over SMTP_REPLY_TOTAL_MAX */
	SMTP_REPLY_ERR_NUL, /* a NUL octet */
	SMTP_REPLY_ERR_BARE_CR, /* CR not followed by LF */
	SMTP_REPLY_ERR_BARE_LF, /* LF without CR, SMTP_REPLY_STRICT_CRLF */
	SMTP_REPLY_ERR_NOMEM,
	SMTP_REPLY_ERR_COUNT /* not an error: the number of codes */
};

/* A complete reply.  Owned by the parser; valid until the next call on
 * it. */
struct smtp_reply_msg {
	int code; /* 200 to 599 */
	/* RFC 2034 enhanced status code, e.g. "5.1.1", or "" when the
	 * reply's first line does not start with one whose class is the
	 * first digit of code (RFC 2034 §4: "a 2xx response must
	 * incorporate a 2.X.X code ..."; class ::= "2" / "4" / "5", so a
	 * 3xx reply never has one). */
	char status[SMTP_REPLY_STATUS_MAX + 1];
	size_t nlines; /* 1 to SMTP_REPLY_LINES_MAX */
	/* The text of every line, joined by LF, NUL-terminated: without
	 * the code, the "-" or SP after it, and (when status is set) a
	 * leading copy of status and one SP after it. */
	const char *text;
	size_t text_len;
	/* Private: line i starts at text + line_off[i]; use
	 * smtp_reply_line(). */
	size_t line_off[SMTP_REPLY_LINES_MAX + 1];
};

struct smtp_reply_parser;

/* Allocates a parser; flags are SMTP_REPLY_* bits.  Returns NULL on
 * ENOMEM.  Free with smtp_reply_parser_free(). */
struct smtp_reply_parser *smtp_reply_parser_new(unsigned int flags);

/* Frees p.  Accepts NULL. */
void smtp_reply_parser_free(struct smtp_reply_parser *p);

/* Drops every buffered byte, the reply in progress and any error. */
void smtp_reply_parser_clear(struct smtp_reply_parser *p);

/* Octets that may be pushed now. */
size_t smtp_reply_room(const struct smtp_reply_parser *p);

/* Appends n octets of input.  Returns 0, or -1 with errno ENOSPC (n >
 * smtp_reply_room(p); nothing is taken) or ENOMEM.  Invalidates the
 * reply returned by smtp_reply_next(). */
int smtp_reply_push(struct smtp_reply_parser *p, const void *data, size_t n);

/* Octets buffered and not yet part of a returned reply or of the reply
 * in progress.  After the 220 reply to STARTTLS it must be 0: anything
 * else came before the TLS handshake and is refused (CVE-2011-0411; curl:
 * "Pipelining in response is forbidden"). */
size_t smtp_reply_pending(const struct smtp_reply_parser *p);

/* Takes the next complete reply.  Returns 1 with *reply_out set (valid
 * until the next call on p), 0 if more input is needed, -1 with *err_out
 * set (and kept: see above).  err_out may be NULL.  Limits are checked
 * octet by octet, before a line is complete, so the result does not
 * depend on how the input was split. */
int smtp_reply_next(struct smtp_reply_parser *p,
    const struct smtp_reply_msg **reply_out, enum smtp_reply_error *err_out);

/* Line i (0-based) of r: returns its text (not NUL-terminated) with
 * *len_out set, or NULL if i >= r->nlines. */
const char *smtp_reply_line(
    const struct smtp_reply_msg *r, size_t i, size_t *len_out);

/* A short constant name for logs ("mismatch", "bare-cr", ...). */
const char *smtp_reply_error_name(enum smtp_reply_error err);

/* Known EHLO keywords (struct smtp_reply_ehlo.ext).  The first four have
 * the values of smtp_cmd.h's SMTP_EXT_* bits. */
#define SMTP_EHLO_SIZE 0x01 /* RFC 1870 */
#define SMTP_EHLO_8BITMIME 0x02 /* RFC 6152 */
#define SMTP_EHLO_DSN 0x04 /* RFC 3461 */
#define SMTP_EHLO_MTRK 0x08 /* RFC 3885 */
#define SMTP_EHLO_PIPELINING 0x10 /* RFC 2920 */
#define SMTP_EHLO_STARTTLS 0x20 /* RFC 3207 */
#define SMTP_EHLO_ENHANCEDSTATUSCODES 0x40 /* RFC 2034 */

/* One "ehlo-line" (RFC 5321 §4.1.1.1): ehlo-keyword *( SP ehlo-param ).
 * The pointers are into the reply's text (not NUL-terminated). */
struct smtp_reply_ehlo_kw {
	const char *keyword; /* as sent; compare case-insensitively */
	size_t keyword_len;
	const char *params; /* everything after the first SP; "" if none */
	size_t params_len;
};

/* A parsed EHLO (or LHLO) response.  Points into the reply: valid as long
 * as the reply is. */
struct smtp_reply_ehlo {
	const char *domain; /* the first word of the first line */
	size_t domain_len;
	unsigned int ext; /* SMTP_EHLO_* of the known keywords present */
	/* SIZE's parameter (RFC 1870 §4): 0 if absent, 0 ("no fixed
	 * maximum"), or not 1*20DIGIT; saturated at UINT64_MAX. */
	uint64_t size;
	size_t nkw; /* every well-formed keyword line, in order */
	struct smtp_reply_ehlo_kw kw[SMTP_REPLY_LINES_MAX];
	/* Lines skipped because their keyword is not
	 * (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"), e.g. "AUTH=LOGIN". */
	size_t nbad;
};

/* Parses r as an EHLO/LHLO response into *ehlo_out (reset first).
 * Returns 0, or -1 if r->code is not 250 (the session then falls back to
 * HELO, RFC 5321 §3.2). */
int smtp_reply_ehlo(
    const struct smtp_reply_msg *r, struct smtp_reply_ehlo *ehlo_out);

/* The first keyword line whose keyword equals keyword ignoring ASCII case
 * (RFC 5321 §2.4: "keywords ... are not case sensitive"), or NULL. */
const struct smtp_reply_ehlo_kw *smtp_reply_ehlo_find(
    const struct smtp_reply_ehlo *e, const char *keyword);

#endif /* MSGTRK_SMTP_REPLY_H */
