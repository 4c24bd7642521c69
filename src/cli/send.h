/*
 * cli/send.h: one SMTP submission, shared by "msgtrk send" and "msgtrk
 * sendmail" (send.c holds the only SMTP client of msgtrk).
 */
#ifndef MSGTRK_CLI_SEND_H
#define MSGTRK_CLI_SEND_H

#include <stddef.h>
#include <time.h>

#include "cli/cli.h"
#include "msgtrk/buf.h"
#include "msgtrk/mtqp.h"

/* Our bound on the message read from stdin (msgtrkd's default
 * max_message_size). */
#define SEND_MESSAGE_MAX (50UL * 1024 * 1024)
/* RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its <>. */
#define SEND_ADDR_MAX 254
/* Our bound on recipients (msgtrkd takes up to 10000 per message). */
#define SEND_RCPT_MAX 1000

/* What send_submit() does. */
struct send_req {
	const char *host; /* server host (no brackets for IPv6) */
	unsigned int port;
	const char *mhost; /* first MTQP server for the keyring and URI */
	unsigned int mport;
	int mport_given; /* the URI names the port */
	const char *helo; /* EHLO name and the envid's fqhn */
	const char *from; /* envelope sender ("" for <>) */
	const char *const *rcpts;
	size_t nrcpt;
	const char *notify; /* NOTIFY= value, or NULL */
	const char *ret; /* "FULL", "HDRS", or NULL */
	int tls; /* STARTTLS required and verified */
	int smtps; /* implicit TLS (RFC 8314, port 465), verified if tls */
	/* AUTH PLAIN (RFC 4954) as user with password (both or neither):
	 * only inside TLS, never sent in plaintext. */
	const char *user;
	const char *password;
	int track; /* ENVID, MTRK, keyring entry */
	int track_optional; /* a server without MTRK or DSN: send untracked */
	int has_timeout; /* MTRK timeout given */
	time_t timeout;
	const char *keyring; /* path (track) */
	const struct buf *message; /* as read: LF or CRLF line ends */
};

/* How send_submit() ended, for the callers' exit codes. */
enum send_outcome {
	SEND_OK, /* 250 after DATA (and the keyring written if tracked) */
	SEND_FAIL_DATA, /* the message cannot be sent (NUL, bare CR, long
	                   line, too large, 8-bit without 8BITMIME) */
	SEND_FAIL_TEMP, /* resolve, connect, I/O, timeout, or a 4xx */
	SEND_FAIL_PERM, /* a 5xx to AUTH, MAIL, DATA or the final dot */
	SEND_FAIL_RCPT, /* a 5xx to RCPT */
	SEND_FAIL_PROTO, /* a malformed reply, an unexpected code, TLS */
	SEND_FAIL_CAPS, /* the server lacks what was asked for (STARTTLS,
	                   MTRK, DSN) */
	SEND_FAIL_KEYRING, /* accepted (250), but the keyring was not
	                      written: envid and uri are set all the same */
	SEND_FAIL_LOCAL, /* out of memory, no secret could be made */
};

struct send_result {
	enum send_outcome outcome;
	int tracked; /* ENVID and MTRK were sent */
	char envid[MTQP_ENVID_TEXT_MAX + 1]; /* as sent in ENVID= */
	char uri[MTQP_URI_MAX + 1]; /* holds the secret: wipe after use */
	char err[1024]; /* what went wrong, one line, for the user */
};

/* Sends req->message to req->host over SMTP (RFC 5321): EHLO, STARTTLS
 * whenever offered (or TLS from the start with req->smtps), AUTH PLAIN
 * when req->user is set (refused without TLS), MAIL with SIZE/BODY/RET
 * and (tracked) ENVID and MTRK
 * (RFC 3885 §4), one RCPT per recipient with ORCPT, DATA with CRLF line
 * ends and dot-stuffing, QUIT.  All or nothing: a refused recipient ends
 * the transaction before DATA.  A tracked message is appended to the
 * keyring once accepted.  Returns CLI_EXIT_OK or CLI_EXIT_FAIL, with
 * res->outcome saying why. */
int send_submit(const struct send_req *req, const struct cli_opts *o,
    struct send_result *res);

/* Reads all of stdin into b (at most SEND_MESSAGE_MAX octets).  Returns
 * 0, or -1 with err set. */
int send_read_stdin(struct buf *b, char *err, size_t errsize);

/* The host's fully-qualified name: msgtrkd's hostname default, or
 * gethostname(), or "localhost". */
void send_hostname(char *out, size_t size);

#endif /* MSGTRK_CLI_SEND_H */
