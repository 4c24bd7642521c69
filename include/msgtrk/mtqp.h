/*
 * mtqp: wire codecs of the Message Tracking Query Protocol (RFC 3887).
 *
 *   mtqp_cmd_*   server side: incremental command parser (TRACK, COMMENT,
 *                STARTTLS, QUIT), with the syntax checks of RFC 3887 §2.2
 *                and §12 and the -BAD decisions they imply.
 *   mtqp_resp_*  server side: response writer (greeting, +OK, +OK+ with
 *                dot-stuffing, -TEMP, -ERR, -BAD); client side: incremental
 *                response reader and greeting (option list) parser.
 *   mtqp_uri_*   mtqp://host[:port]/track/<envid>/<secret> (RFC 3887 §9).
 *
 * Everything here is pure: no I/O, no logging.  Session state (which
 * command is allowed when, -ERR answers, TLS) is the caller's business.
 */
#ifndef MSGTRK_MTQP_H
#define MSGTRK_MTQP_H

#include <stddef.h>

#include "msgtrk/buf.h"

/* RFC 3887 §2.2, §2.3: "A command line is limited to 998 characters
 * before the CRLF"; response and data lines likewise. */
#define MTQP_LINE_MAX 998
/* RFC 3887 §2: the server listens on TCP port 1038. */
#define MTQP_PORT 1038
/* RFC 3461 §4.4 (ENVID "MUST NOT exceed 100 characters"), decoded length,
 * as the MTRK digest decides for ENVID=. */
#define MTQP_ENVID_MAX 100
/* The envid as written on the wire: xtext (+HH triples every octet) and
 * one optional pair of angle brackets (RFC 3887 §4.1 examples, P8). */
#define MTQP_ENVID_TEXT_MAX (3 * MTQP_ENVID_MAX + 2)
/* RFC 3885 §3.1: the secret A "MUST NOT exceed 1024 bits". */
#define MTQP_SECRET_OCTETS_MAX 128
/* Its base64 text, padded (RFC 2554 base64) or not (RFC 3885 base64). */
#define MTQP_SECRET_TEXT_MAX 172
/* RFC 5321 §4.5.3.1.2: a domain name is at most 255 octets; RFC 1035
 * §2.3.4: a label at most 63. */
#define MTQP_DOMAIN_MAX 255
#define MTQP_LABEL_MAX 63
/* Pushed input the command parser holds before it must be drained. */
#define MTQP_CMD_INPUT_MAX (64 * 1024)

/* The status indicators of RFC 3887 §2.3. */
enum mtqp_status {
	MTQP_OK = 1, /* "+OK" */
	MTQP_OK_MULTI, /* "+OK+": data lines and "." follow */
	MTQP_TEMP, /* "-TEMP" */
	MTQP_ERR, /* "-ERR" */
	MTQP_BAD, /* "-BAD" */
};

/*
 * Command parser (server side)
 */

enum mtqp_verb {
	MTQP_CMD_NONE = 0,
	MTQP_CMD_TRACK,
	MTQP_CMD_COMMENT,
	MTQP_CMD_STARTTLS,
	MTQP_CMD_QUIT,
};

/* Why a command line was rejected.  Every one of them is a -BAD answer
 * (RFC 3887 §2.3: "An MTQP server MUST respond to an unrecognized,
 * unimplemented, or syntactically invalid command by responding with a
 * negative -BAD status indicator"). */
enum mtqp_cmd_error {
	MTQP_CMD_E_NONE = 0,
	MTQP_CMD_E_LINE_TOO_LONG, /* over 998 octets before CRLF (§2.2) */
	MTQP_CMD_E_NUL, /* a NUL octet */
	MTQP_CMD_E_8BIT, /* an octet above 127 ("printable ASCII") */
	MTQP_CMD_E_CTRL, /* a control character other than HTAB */
	MTQP_CMD_E_BARE_CR, /* CR not followed by LF */
	MTQP_CMD_E_BARE_LF, /* LF without CR (P6: strict) */
	MTQP_CMD_E_EMPTY, /* an empty line */
	MTQP_CMD_E_SYNTAX, /* leading or (where §12 has none) trailing WSP */
	MTQP_CMD_E_UNKNOWN_VERB, /* not TRACK, COMMENT, STARTTLS or QUIT */
	MTQP_CMD_E_ARGS, /* wrong number of arguments */
	MTQP_CMD_E_ENVID, /* TRACK envid not a valid unique-envid */
	MTQP_CMD_E_SECRET, /* TRACK secret not base64, or too long */
	MTQP_CMD_E_DOMAIN, /* STARTTLS argument not an FQDN */
	MTQP_CMD_E_INPUT_FULL, /* push past MTQP_CMD_INPUT_MAX (nothing kept) */
};

/* One command.  Filled by mtqp_cmd_next(); fields not used by the verb
 * are empty strings.  Wipe it with mtqp_cmd_clear() once the secret has
 * been used. */
struct mtqp_cmd {
	enum mtqp_verb verb;
	/* TRACK: the unique-envid exactly as sent (xtext, brackets kept).
	 * envid_bracketed is 1 when it is "<...>": P8 says to look it up as
	 * sent first, then without the outer pair (envid + 1, length - 2). */
	char envid[MTQP_ENVID_TEXT_MAX + 1];
	int envid_bracketed;
	/* TRACK: the base64 secret as sent, checked but not decoded. */
	char secret[MTQP_SECRET_TEXT_MAX + 1];
	/* STARTTLS: the FQDN. */
	char domain[MTQP_DOMAIN_MAX + 1];
	/* COMMENT: the text after the first WSP (may be empty). */
	char text[MTQP_LINE_MAX + 1];
	/* Octets of input the parser still held after this line when it
	 * was returned.  After STARTTLS this must be 0: anything else is
	 * plaintext pipelined behind STARTTLS, which must never be processed
	 * after the handshake (RFC 3887 §6 and §8, P10).  Drop it with
	 * mtqp_cmd_parser_discard(). */
	size_t pending;
};

struct mtqp_cmd_parser;

/* Allocates a parser.  Returns NULL on allocation failure. */
struct mtqp_cmd_parser *mtqp_cmd_parser_new(void);

/* Frees the parser and wipes the input it held.  Accepts NULL. */
void mtqp_cmd_parser_free(struct mtqp_cmd_parser *p);

/* Appends n octets received from the client.  Returns 0, or -1 with
 * MTQP_CMD_E_INPUT_FULL (nothing appended) if more than MTQP_CMD_INPUT_MAX
 * octets would be pending: call mtqp_cmd_next() until it returns 0 first.
 * Not a protocol error: the parser stays usable. */
int mtqp_cmd_push(struct mtqp_cmd_parser *p, const void *data, size_t n);

/* Returns the next command from the pushed input.
 * Returns 1 with *cmd filled; 0 if more input is needed (everything pushed
 * has been consumed); -1 if the next line was rejected: the reason is
 * mtqp_cmd_parser_error(p), the answer is -BAD (see mtqp_cmd_error_reason),
 * and the parser has skipped that line, so the caller answers and calls
 * again (P5: keep the session).  An over-long line is rejected as soon as
 * octet 999 arrives, before its end; the rest of it is skipped silently.
 * Commands come out in the order received (RFC 3887 §8). */
int mtqp_cmd_next(struct mtqp_cmd_parser *p, struct mtqp_cmd *cmd);

/* The error of the last -1 from mtqp_cmd_next() or mtqp_cmd_push(). */
enum mtqp_cmd_error mtqp_cmd_parser_error(const struct mtqp_cmd_parser *p);

/* Number of octets pushed but not yet parsed. */
size_t mtqp_cmd_parser_pending(const struct mtqp_cmd_parser *p);

/* Drops (and wipes) all pending input and any partial line: for the bytes
 * pipelined behind STARTTLS (P10), before the TLS handshake. */
void mtqp_cmd_parser_discard(struct mtqp_cmd_parser *p);

/* Wipes a command (explicit_bzero: it may hold a secret). */
void mtqp_cmd_clear(struct mtqp_cmd *cmd);

/* The reason code (without "/") the -BAD answer to err carries, or NULL
 * for none.  RFC 3887 defines no reason code for syntax errors; only an
 * unusable STARTTLS name gets "bad-fqdn" (§6: a name that cannot match
 * any dNSName of the certificate "MUST" get -BAD/bad-fqdn). */
const char *mtqp_cmd_error_reason(enum mtqp_cmd_error err);

/* A short fixed English text for err, fit for the log text of the -BAD
 * line.  Never NULL. */
const char *mtqp_cmd_strerror(enum mtqp_cmd_error err);

/* Checks n octets as a TRACK unique-envid (RFC 3885 §3.2:
 * local-envid "@" fqhn, both xtext; RFC 3461 §4: "+" must be followed by
 * two upper-case hex digits; decoded octets 0x20-0x7e or HTAB; decoded
 * length 1..MTQP_ENVID_MAX), optionally inside one pair of angle
 * brackets (P8).  The "@" is looked for in the decoded form: "a+40b" is
 * the envid "a@b" as ENVID= may carry it.  Returns 0 or -1. */
int mtqp_cmd_envid_check(const char *s, size_t n);

/* Checks n octets as a TRACK mtrk-secret: base64 with or without padding
 * (P7), canonical, decoding to 1..MTQP_SECRET_OCTETS_MAX octets.  Returns
 * 0 or -1. */
int mtqp_cmd_secret_check(const char *s, size_t n);

/* Checks n octets as the STARTTLS domain (RFC 3887 §6:
 * sub-domain 1*("." sub-domain), RFC 2821 sub-domain), at most
 * MTQP_DOMAIN_MAX octets.  Returns 0 or -1. */
int mtqp_cmd_domain_check(const char *s, size_t n);

/*
 * Response writer (server side).  All writers append to b and, on error,
 * leave b as it was and return -1 (errno EINVAL for bad arguments, ENOSPC
 * past b's maximum).
 *
 * reasons is the response information without the leading slash, tokens
 * separated by "/", e.g. "MTQP/admin"; NULL or "" for none.  Each token is
 * 1*NAMECHAR (ALPHA / DIGIT / "-" / "_", §12).  text is the log text
 * (VCHAR and WSP only), NULL or "" for none.  A status line longer than
 * MTQP_LINE_MAX fails.
 */

/* Appends one status line: indicator, reasons, " " text, CRLF.  For
 * MTQP_OK_MULTI the caller then writes the data with mtqp_resp_data(). */
int mtqp_resp_line(struct buf *b, enum mtqp_status status, const char *reasons,
    const char *text);

/* Appends a data block and its terminating ".": n octets of CRLF lines
 * (the last one ending in CRLF; n == 0 gives just "."), each dot-stuffed
 * (RFC 3887 §2.3: a line beginning with "." gets a second one) and at most
 * MTQP_LINE_MAX octets on the wire.  NUL, bare CR and bare LF fail. */
int mtqp_resp_data(struct buf *b, const void *data, size_t n);

/* Appends a whole multi-line success: "+OK+" line, then mtqp_resp_data(). */
int mtqp_resp_multi(struct buf *b, const char *reasons, const char *text,
    const void *data, size_t n);

/* Appends a positive greeting (RFC 3887 §3): "+OK/MTQP text" when
 * noptions is 0, otherwise "+OK+/MTQP text", one option per line, ".".
 * Each option is one line: an identifier optionally followed by WSP and
 * parameters, VCHAR and WSP only, no leading WSP.  A negative greeting is
 * mtqp_resp_line() with reasons "MTQP/admin" or "MTQP/unavailable". */
int mtqp_resp_greeting(struct buf *b, const char *const *options,
    size_t noptions, const char *text);

/*
 * Response reader (client side)
 */

/* RFC 3887 §2.3: response information tokens; the number kept per line
 * and the length of each are our limits (the RFC sets none). */
#define MTQP_REASONS_MAX 8
#define MTQP_REASON_LEN_MAX 32
/* Default limit on one multi-line body (after un-stuffing). */
#define MTQP_BODY_MAX (16 * 1024 * 1024)
/* Default limit on input pushed but not yet read. */
#define MTQP_RESP_INPUT_MAX (64 * 1024)

enum mtqp_resp_error {
	MTQP_RESP_E_NONE = 0,
	MTQP_RESP_E_LINE_TOO_LONG, /* a line over 998 octets before CRLF */
	MTQP_RESP_E_BODY_TOO_LARGE, /* multi-line body past body_max */
	MTQP_RESP_E_NUL, /* a NUL octet */
	MTQP_RESP_E_BARE_CR, /* CR not followed by LF */
	MTQP_RESP_E_BARE_LF, /* LF without CR */
	MTQP_RESP_E_STATUS, /* not one of the five indicators */
	MTQP_RESP_E_REASON, /* empty or bad token, too many, too long */
	MTQP_RESP_E_TEXT, /* text not VCHAR / WSP */
	MTQP_RESP_E_INPUT_FULL, /* push past input_max (nothing kept) */
};

/* Zero fields mean the defaults above. */
struct mtqp_resp_limits {
	size_t body_max;
	size_t input_max;
};

/* One response.  body/body_len are set for MTQP_OK_MULTI (dot-unstuffed,
 * CRLF line ends kept, the "." line removed) and point into the reader:
 * valid until the next call on the reader.  Other statuses: body is "",
 * body_len 0. */
struct mtqp_resp {
	enum mtqp_status status;
	size_t nreasons;
	char reasons[MTQP_REASONS_MAX][MTQP_REASON_LEN_MAX + 1];
	char text[MTQP_LINE_MAX + 1];
	const char *body;
	size_t body_len;
};

struct mtqp_resp_reader;

/* Allocates a reader; limits may be NULL.  Returns NULL on allocation
 * failure. */
struct mtqp_resp_reader *mtqp_resp_reader_new(
    const struct mtqp_resp_limits *limits);

/* Frees the reader.  Accepts NULL. */
void mtqp_resp_reader_free(struct mtqp_resp_reader *r);

/* Appends n octets received from the server.  Returns 0, or -1 with
 * MTQP_RESP_E_INPUT_FULL (nothing appended; drain with next first). */
int mtqp_resp_reader_push(
    struct mtqp_resp_reader *r, const void *data, size_t n);

/* Returns 1 with *resp filled, 0 if more input is needed, -1 on a
 * protocol error (mtqp_resp_reader_error()).  Errors are final: a broken
 * response stream cannot be resynchronised, the caller hangs up. */
int mtqp_resp_reader_next(struct mtqp_resp_reader *r, struct mtqp_resp *resp);

enum mtqp_resp_error mtqp_resp_reader_error(const struct mtqp_resp_reader *r);

/* Number of octets pushed but not yet read (e.g. after the response to
 * STARTTLS, where it must be 0 before the handshake). */
size_t mtqp_resp_reader_pending(const struct mtqp_resp_reader *r);

/* Returns 1 if resp carries the reason token (ASCII case-insensitive,
 * RFC 3887 §2.3), else 0. */
int mtqp_resp_has_reason(const struct mtqp_resp *resp, const char *reason);

/* A short fixed English text for err.  Never NULL. */
const char *mtqp_resp_strerror(enum mtqp_resp_error err);

/*
 * Greeting parser (client side, RFC 3887 §3)
 */

enum mtqp_greeting_error {
	MTQP_GREETING_E_NONE = 0,
	MTQP_GREETING_E_STATUS, /* -BAD is not a greeting */
	MTQP_GREETING_E_NOT_MTQP, /* no /MTQP ("MUST include") */
	MTQP_GREETING_E_NO_REASON, /* negative without a reason ("MUST") */
	MTQP_GREETING_E_OPTION, /* malformed option list */
};

struct mtqp_greeting {
	int ok; /* positive: commands may follow */
	int admin; /* negative with /admin; else "unavailable" */
	int starttls; /* STARTTLS option listed */
	int starttls_required; /* ... with the "required" parameter */
	size_t noptions; /* option specifications listed */
};

/* Interprets a response read as the initial status response.  Options
 * are case-insensitive identifiers; continuation lines start with WSP;
 * the STARTTLS option takes only [1*WSP "required"] (case-insensitive).
 * An unknown negative reason counts as "unavailable" (§3).
 * Returns 0, or -1 with *err_out set. */
int mtqp_greeting_parse(const struct mtqp_resp *resp, struct mtqp_greeting *g,
    enum mtqp_greeting_error *err_out);

/*
 * mtqp: URIs (RFC 3887 §9)
 */

/* Our limit on a whole URI. */
#define MTQP_URI_MAX 2048

enum mtqp_uri_error {
	MTQP_URI_E_NONE = 0,
	MTQP_URI_E_TOO_LONG, /* longer than MTQP_URI_MAX */
	MTQP_URI_E_CHAR, /* NUL, control, space or 8-bit octet */
	MTQP_URI_E_SCHEME, /* not "mtqp://" */
	MTQP_URI_E_HOST, /* empty, userinfo, bad characters, too long */
	MTQP_URI_E_PORT, /* not 1..65535 */
	MTQP_URI_E_PATH, /* not "/track/" envid "/" secret, or ?query/#frag */
	MTQP_URI_E_PERCENT, /* "%" not followed by two hex digits */
	MTQP_URI_E_ENVID, /* decoded envid fails mtqp_cmd_envid_check */
	MTQP_URI_E_SECRET, /* decoded secret fails mtqp_cmd_secret_check */
};

struct mtqp_uri {
	char host[MTQP_DOMAIN_MAX + 1]; /* reg-name, IPv4 or "[IPv6]" */
	unsigned int port; /* MTQP_PORT when absent */
	int port_given; /* 1 if the URI had ":port" */
	char envid[MTQP_ENVID_TEXT_MAX + 1]; /* %-decoded: the TRACK form */
	char secret[MTQP_SECRET_TEXT_MAX + 1]; /* %-decoded base64 */
};

/* Parses n octets.  Scheme and "/track/" are case-insensitive, envid and
 * secret are not (§9.3); %HH (either case) is decoded in envid and secret;
 * raw "/", "?", "%", "#" may not appear in them (§9.4).  Returns 0, or -1
 * with *err_out set. */
int mtqp_uri_parse(
    const char *s, size_t n, struct mtqp_uri *u, enum mtqp_uri_error *err_out);

/* Appends the URI for u: lower-case scheme and "/track/", ":port" only
 * when port_given or port != MTQP_PORT, and every octet of envid and
 * secret outside the RFC 3986 pchar set (unreserved, sub-delims, ":",
 * "@") written as %HH (upper case); this covers "/", "?" and "%".  The
 * fields are checked as mtqp_uri_parse() would.  Returns 0 or -1. */
int mtqp_uri_format(struct buf *b, const struct mtqp_uri *u);

const char *mtqp_uri_strerror(enum mtqp_uri_error err);

#endif /* MSGTRK_MTQP_H */
