/*
 * smtp_cmd: parsing one SMTP command line (RFC 5321 §4.1) as a server
 * receives it, with the ESMTP parameters of SIZE (RFC 1870), 8BITMIME
 * (RFC 6152), DSN (RFC 3461) and MTRK (RFC 3885), and the table of the
 * replies for every reason a line is refused.
 *
 * The caller (the daemon's SMTP session) reads a CRLF-terminated line,
 * strips the CRLF and hands the rest to smtp_cmd_parse() with the set of
 * extensions it advertised in this session (none after HELO).  On failure
 * it answers with smtp_cmd_reply(err) and never writes its own text.
 *
 * Choices made here (each is documented where it is enforced):
 * - "MAIL FROM: <a@b>" (SP after the colon) is ACCEPTED, as are several
 *   SP between parameters and trailing SP after the path or parameters.
 *   RFC 5321 §4.1.2 says such spaces "are not permitted", but widely used
 *   clients send them and accepting them makes nothing ambiguous (the
 *   angle brackets still delimit the path; Postfix accepts it too).  A space
 *   BEFORE the colon, several SP after the verb, and a path without angle
 *   brackets are refused.
 * - Bad mailbox syntax is 553 (RFC 5321 §4.2.3: "mailbox name not allowed
 *   (e.g., mailbox syntax incorrect)") with RFC 3463 X.1.7 "Bad sender's
 *   mailbox address syntax" for MAIL and X.1.3 "Bad destination mailbox
 *   address syntax" for RCPT; a path over the RFC 5321 §4.5.3.1 limits is
 *   501 ("501 Path too long", §4.5.3.1.9) with the same X.1.7 / X.1.3.
 * - 8-bit octets and control characters anywhere in the line are 501
 *   (RFC 5321 §4.1.2: "SMTP servers that receive a command in which
 *   invalid character codes have been employed ... MUST reject that
 *   command with a 501 response"); we do not offer SMTPUTF8.
 */
#ifndef MSGTRK_SMTP_CMD_H
#define MSGTRK_SMTP_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "msgtrk/envid.h"
#include "msgtrk/mtrk.h"

/* RFC 5321 §4.5.3.1.4: "The maximum total length of a command line
 * including the command word and the <CRLF> is 512 octets."  MAIL and
 * RCPT lines carry ESMTP parameters and may be up to 2048 octets
 * including CRLF (digest mtrk-rfc3885 §3.4 [DECISION]; RFC 3461 §5.4
 * needs at least 1036, RFC 3885 §2 more).  The lengths given to
 * smtp_cmd_parse() exclude the CRLF, so they may be 2 less. */
#define SMTP_CMD_LINE_MAX 512
#define SMTP_CMD_LINE_MAX_MAILRCPT 2048
/* RFC 5321 §4.5.3.1.1-3: local-part 64, domain 255, path 256 octets (the
 * path "including the punctuation and element separators", i.e. the
 * angle brackets and any source route). */
#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256
/* RFC 1035 §2.3.4: a label is at most 63 octets. */
#define SMTP_LABEL_MAX 63
/* RFC 1870 §3: size-value ::= 1*20DIGIT. */
#define SMTP_SIZE_DIGITS 20
/* RFC 3461 §4.2, §5.4(c): ORCPT up to 500 characters; we count the
 * decoded addr-type ";" address (digest §12.3 [DECISION]). */
#define SMTP_ORCPT_MAX 500
/* Raw (encoded) sizes: every decoded xtext character takes 1 or 3. */
#define SMTP_ENVID_RAW_MAX (3 * ENVID_MAX)
#define SMTP_ORCPT_RAW_MAX (3 * SMTP_ORCPT_MAX)

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_EHLO,
	SMTP_VERB_HELO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH, /* RFC 4954: the argument is the session's to read */
};

/* Extensions the session advertised (bits for smtp_cmd_parse()). */
#define SMTP_EXT_SIZE 0x01 /* SIZE (RFC 1870): MAIL SIZE= */
#define SMTP_EXT_8BITMIME 0x02 /* 8BITMIME (RFC 6152): MAIL BODY= */
#define SMTP_EXT_DSN 0x04 /* DSN (RFC 3461): RET ENVID, NOTIFY ORCPT */
#define SMTP_EXT_MTRK 0x08 /* MTRK (RFC 3885): MTRK; ENVID and ORCPT */
#define SMTP_EXT_AUTH 0x10 /* AUTH (RFC 4954): MAIL AUTH= (checked, not kept) */

/* Parameters present (smtp_cmd.params). */
#define SMTP_PARAM_SIZE 0x01
#define SMTP_PARAM_BODY 0x02
#define SMTP_PARAM_RET 0x04
#define SMTP_PARAM_ENVID 0x08
#define SMTP_PARAM_MTRK 0x10
#define SMTP_PARAM_NOTIFY 0x20
#define SMTP_PARAM_ORCPT 0x40
#define SMTP_PARAM_AUTH 0x80

enum smtp_body {
	SMTP_BODY_NONE = 0, /* no BODY= */
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
};

enum smtp_ret {
	SMTP_RET_NONE = 0, /* no RET= */
	SMTP_RET_FULL,
	SMTP_RET_HDRS,
};

/* NOTIFY= bits (0 when absent).  NEVER is never combined. */
#define SMTP_NOTIFY_NEVER 0x01
#define SMTP_NOTIFY_SUCCESS 0x02
#define SMTP_NOTIFY_FAILURE 0x04
#define SMTP_NOTIFY_DELAY 0x08

/* Every reason a command line is refused.  smtp_cmd_reply() gives the
 * reply for each. */
enum smtp_cmd_error {
	SMTP_CMD_OK = 0,
	SMTP_CMD_ERR_LINE_TOO_LONG, /* 500 5.5.2 */
	SMTP_CMD_ERR_NUL, /* 501 5.5.2 */
	SMTP_CMD_ERR_BAD_CHAR, /* 501 5.5.2 8-bit or control octet */
	SMTP_CMD_ERR_UNKNOWN_VERB, /* 500 5.5.1 */
	SMTP_CMD_ERR_ARG_MISSING, /* 501 5.5.4 EHLO/HELO/VRFY */
	SMTP_CMD_ERR_ARG_UNEXPECTED, /* 501 5.5.4 DATA/RSET/QUIT/STARTTLS */
	SMTP_CMD_ERR_MAIL_SYNTAX, /* 501 5.5.2 not "FROM:" "<" ... ">" */
	SMTP_CMD_ERR_RCPT_SYNTAX, /* 501 5.5.2 not "TO:" "<" ... ">" */
	SMTP_CMD_ERR_SENDER_SYNTAX, /* 553 5.1.7 bad reverse-path mailbox */
	SMTP_CMD_ERR_SENDER_TOO_LONG, /* 501 5.1.7 */
	SMTP_CMD_ERR_RCPT_ADDR_SYNTAX, /* 553 5.1.3 bad forward-path mailbox */
	SMTP_CMD_ERR_RCPT_NULL, /* 553 5.1.3 RCPT TO:<> */
	SMTP_CMD_ERR_RCPT_TOO_LONG, /* 501 5.1.3 */
	SMTP_CMD_ERR_PARAM_SYNTAX, /* 501 5.5.4 not esmtp-param */
	SMTP_CMD_ERR_PARAM_UNKNOWN, /* 555 5.5.4 */
	SMTP_CMD_ERR_PARAM_NOT_ADVERTISED, /* 555 5.5.4 */
	SMTP_CMD_ERR_PARAM_DUPLICATE, /* 501 5.5.4 */
	SMTP_CMD_ERR_SIZE_INVALID, /* 501 5.5.4 */
	SMTP_CMD_ERR_BODY_INVALID, /* 501 5.5.4 */
	SMTP_CMD_ERR_RET_INVALID, /* 501 5.5.4 */
	SMTP_CMD_ERR_ENVID_INVALID, /* 501 5.5.4 */
	SMTP_CMD_ERR_MTRK_INVALID, /* 501 5.5.4 */
	SMTP_CMD_ERR_MTRK_NO_ENVID, /* 501 5.5.4 */
	SMTP_CMD_ERR_MTRK_ENVID_FORM, /* 501 5.5.4 */
	SMTP_CMD_ERR_NOTIFY_INVALID, /* 501 5.5.4 */
	SMTP_CMD_ERR_ORCPT_INVALID, /* 501 5.5.4 */
	SMTP_CMD_ERR_COUNT /* not an error: the number of codes */
};

/* One row of the reply table. */
struct smtp_reply {
	int code; /* RFC 5321 reply code, e.g. 501 */
	const char *status; /* RFC 3463 enhanced status code, e.g. "5.5.4" */
	const char *text; /* human-readable text, no CRLF */
	const char *name; /* short token for logs, e.g. "mtrk-invalid" */
};

/* A reverse-path or forward-path (RFC 5321 §4.1.2). */
struct smtp_path {
	int is_null; /* "<>" (MAIL only) */
	int is_postmaster; /* "<Postmaster>", any case (RCPT only) */
	int had_route; /* a source route was given and dropped
			      (RFC 5321 §4.1.2: "SHOULD be ignored") */
	int local_quoted; /* the local-part is a Quoted-string */
	int domain_literal; /* the domain is an address-literal */
	/* The Mailbox as received, without angle brackets or source route:
	 * local-part (quoted form kept) "@" domain; "" for "<>";
	 * the text as sent for <Postmaster>. */
	char mailbox[SMTP_PATH_MAX + 1];
	char local[SMTP_LOCAL_MAX + 1]; /* local-part, as received */
	char domain[SMTP_DOMAIN_MAX + 1]; /* domain or "[literal]"; "" for
					     <> and <Postmaster> */
};

/* A parsed command.  Plain data, no pointers: copy it freely. */
struct smtp_cmd {
	enum smtp_verb verb; /* set even when parsing fails later */
	/* Everything after the verb and its SP, as received ("" if none). */
	char arg[SMTP_CMD_LINE_MAX_MAILRCPT];
	/* EHLO/HELO: 1 if arg is a Domain or address-literal (RFC 5321
	 * §4.1.1.1).  We do not refuse other names; the caller may. */
	int domain_ok;
	struct smtp_path path; /* MAIL, RCPT */
	unsigned int params; /* SMTP_PARAM_* present */
	uint64_t size; /* SIZE=, saturated at UINT64_MAX */
	enum smtp_body body;
	enum smtp_ret ret;
	unsigned int notify; /* SMTP_NOTIFY_* */
	/* ENVID= as received (xtext, relayed byte-identical, RFC 3461
	 * §5.2.1) and decoded (printable US-ASCII, 1..ENVID_MAX). */
	char envid_raw[SMTP_ENVID_RAW_MAX + 1];
	char envid[ENVID_MAX + 1];
	struct mtrk_param mtrk; /* MTRK= */
	/* ORCPT= as received, and decoded: addr-type (as received, compare
	 * case-insensitively) and the xtext-decoded address. */
	char orcpt_raw[SMTP_ORCPT_RAW_MAX + 1];
	char orcpt_type[SMTP_ORCPT_MAX + 1];
	char orcpt_addr[SMTP_ORCPT_MAX + 1];
};

/* Parses one command line of len octets, without its CRLF, received in a
 * session that advertised the SMTP_EXT_* bits in ext.  Fills *cmd_out
 * (always fully reset first; cmd_out->verb is set whenever the verb was
 * recognised, even on failure).  Returns 0, or -1 with *err_out set (the
 * first problem found, left to right; the MTRK/ENVID pairing is checked
 * after all parameters).  A parameter is valid only on its own verb:
 * SIZE BODY RET ENVID MTRK on MAIL, NOTIFY ORCPT on RCPT. */
int smtp_cmd_parse(const char *line, size_t len, unsigned int ext,
    struct smtp_cmd *cmd_out, enum smtp_cmd_error *err_out);

/* The reply for err: code, enhanced status code and text, e.g. {501,
 * "5.5.4", "Invalid MTRK parameter"}; the caller writes
 * "<code> <status> <text>" CRLF.  Returns NULL for SMTP_CMD_OK and
 * values out of range.  The table is static. */
const struct smtp_reply *smtp_cmd_reply(enum smtp_cmd_error err);

/* The verb as a constant upper-case string ("UNKNOWN" for the rest). */
const char *smtp_verb_name(enum smtp_verb verb);

/* Returns 1 if the n octets at s are an RFC 5321 Domain (LDH labels of at
 * most 63 octets, at most SMTP_DOMAIN_MAX in all) or address-literal
 * ("[" IPv4 "]", "[IPv6:" IPv6 "]"), else 0. */
int smtp_cmd_domain_valid(const char *s, size_t n);

/* Returns 1 if the n octets at s may stand as the argument of EHLO or
 * HELO, else 0: an RFC 5321 §4.1.2 Domain, also with '_' in its labels
 * and with one trailing dot (both sent by real clients: Windows host
 * names, fully qualified names), or an address-literal (§4.1.3).  The
 * argument goes into our Received: field (RFC 5321 §4.4, "from" clause),
 * so anything else ("evil) by trusted.example (Postfix) with ESMTPS id X;")
 * could forge trace information: refused with 501 5.5.2. */
int smtp_helo_valid(const char *s, size_t n);

#endif /* MSGTRK_SMTP_CMD_H */
