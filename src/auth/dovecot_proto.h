/*
 * dovecot_proto: the client side of Dovecot's authentication protocol
 * (doc.dovecot.org, "Dovecot Authentication Protocol", v1.2 as Dovecot
 * 2.3 speaks it on its auth-client socket), without I/O: a bounded line
 * reader, a parser of the server's lines, and the two lines a client
 * writes.  Pure: the fuzz target links it alone.
 *
 * The server's handshake: VERSION 1 <minor>, MECH <name> [flags...] per
 * mechanism, SPID <pid>, CUID <n>, COOKIE <hex>, DONE.  Then per request:
 *   OK   <id> [user=<login>] [more fields]     success
 *   FAIL <id> [user=..] [temp] [code=temp_fail] [reason=..]   failure
 *   CONT <id> <base64>                         a challenge (never wanted
 *                                              here: PLAIN sends all)
 * Lines end with LF, fields are TAB-separated, and values use Dovecot's
 * tab-escaping: \001 then '0' NUL, '1' \001, 't' TAB, 'r' CR, 'n' or 'l'
 * LF, any other octet itself.  Unknown optional fields are ignored, as
 * the protocol asks.
 */
#ifndef MSGTRK_DOVECOT_PROTO_H
#define MSGTRK_DOVECOT_PROTO_H

#include <stddef.h>

/* Dovecot: "it's currently expected to fit into 16384 bytes". */
#define DOVECOT_LINE_MAX 16384
/* A login (RFC 4616 §2: 255 octets) and a mechanism name (RFC 4422 §3.1:
 * 20 characters). */
#define DOVECOT_USER_MAX 255
#define DOVECOT_MECH_MAX 20
/* The protocol version spoken; the major must match (the minor is
 * informative). */
#define DOVECOT_MAJOR 1
#define DOVECOT_MINOR 2

struct dovecot_reader {
	char line[DOVECOT_LINE_MAX + 1];
	size_t len;
	int ready; /* line holds a complete line (cleared by the next feed) */
};

/* Resets r to the start of a stream. */
void dovecot_reader_init(struct dovecot_reader *r);

/*
 * Takes bytes from the n at in until a line is complete.  Returns 1 with
 * the line in r->line (without its LF, NUL-terminated; a CR before the LF
 * is kept: Dovecot never sends one) and *used_out bytes taken; 0 when all
 * n were taken and the line is not complete; -1 if the line is longer
 * than DOVECOT_LINE_MAX (the connection must be dropped).
 */
int dovecot_reader_feed(
    struct dovecot_reader *r, const char *in, size_t n, size_t *used_out);

enum dovecot_kind {
	DOVECOT_OTHER, /* a line this client ignores */
	DOVECOT_VERSION,
	DOVECOT_MECH,
	DOVECOT_SPID,
	DOVECOT_CUID,
	DOVECOT_COOKIE,
	DOVECOT_DONE,
	DOVECOT_OK,
	DOVECOT_FAIL,
	DOVECOT_CONT,
};

struct dovecot_reply {
	enum dovecot_kind kind;
	unsigned major, minor; /* VERSION */
	char mech[DOVECOT_MECH_MAX + 1]; /* MECH, upper case as sent */
	int plaintext; /* MECH: the "plaintext" flag */
	unsigned id; /* OK, FAIL, CONT: 1..UINT_MAX */
	int has_user;
	char user[DOVECOT_USER_MAX + 1]; /* user=, unescaped */
	int temp; /* FAIL: "temp" or "code=temp_fail" */
};

/* Parses the n octets at line (no LF).  Returns 0 with out filled, or -1
 * if the line is malformed (a VERSION or id that is not a number, a
 * user= that is too long or holds a control character, a MECH without a
 * name): the connection must be dropped. */
int dovecot_parse(const char *line, size_t n, struct dovecot_reply *out);

/* Writes the client's handshake, "VERSION\t1\t2\nCPID\t<pid>\n", into out
 * (outsize bytes).  Returns its length or -1. */
int dovecot_format_hello(char *out, size_t outsize, unsigned long pid);

/*
 * Writes the request "AUTH\t<id>\tPLAIN\tservice=smtp[\tsecured]
 * \tno-penalty[\trip=<addr>]\tresp=<resp>\n" into out (outsize bytes).
 * rip (numeric, NULL or "": left out) and resp (base64) must hold no
 * TAB, LF or control octet.  no-penalty: msgtrkd keeps its own penalty
 * per client (auth_penalty.h), and Dovecot's own (up to 15 s) would run
 * past AUTH_DEADLINE_MS.  Returns the length or -1 (too small, a bad
 * field).
 */
int dovecot_format_auth(char *out, size_t outsize, unsigned id, const char *rip,
    int secured, const char *resp);

#endif /* MSGTRK_DOVECOT_PROTO_H */
