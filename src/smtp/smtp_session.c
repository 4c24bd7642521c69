/*
 * smtp_session: one ESMTP session (RFC 5321) with PIPELINING (RFC 2920),
 * SIZE (RFC 1870), 8BITMIME (RFC 6152), ENHANCEDSTATUSCODES (RFC 2034),
 * DSN (RFC 3461), MTRK (RFC 3885) and STARTTLS (RFC 3207), without I/O:
 * see smtp_session.h.
 *
 * Input flows from the caller's evbuffer into smtp_line (bounded:
 * SMTP_LINE_INPUT_MAX) and out as one command at a time, or as DATA
 * content into the body sink.  Replies go to s->out.
 *
 * Memory: an idle session holds this struct, the line reader (its input
 * storage grows only with what a client sends) and its output buffer; the
 * message body and the transaction exist only from MAIL/DATA on and are
 * freed when the transaction ends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <event2/buffer.h>

#include "common/conf.h"
#include "common/log.h"
#include "common/net.h"
#include "msgtrk/buf.h"
#include "msgtrk/date.h"
#include "msgtrk/envid.h"
#include "msgtrk/hdrscan.h"
#include "msgtrk/mtrk.h"
#include "msgtrk/sasl.h"
#include "msgtrk/smtp_cmd.h"
#include "msgtrk/smtp_line.h"
#include "msgtrk/str.h"
#include "msgtrk/xtext.h"
#include "queue/queue.h"
#include "smtp/smtp.h"
#include "smtp/smtp_session.h"

/* Chunk moved from the caller's buffer into the line reader at a time. */
#define SMTP_FEED_CHUNK 4096
/* Room for a Received: header (RFC 5321 §4.4): the HELO argument (at
 * most SMTP_CMD_LINE_MAX), the address, our hostname, one recipient path
 * and a date, with the fixed words. */
#define SMTP_RECEIVED_MAX \
	(SMTP_CMD_LINE_MAX + INET6_ADDRSTRLEN + CONF_HOSTNAME_MAX + \
	    SMTP_PATH_MAX + DATE_MAX + 256 + SMTP_ADDED_MAX)
/* Submission (RFC 6409 §8): the Message-ID: and Date: fields we add
 * after our Received: field. */
#define SMTP_ADDED_MAX (CONF_HOSTNAME_MAX + DATE_MAX + 96)
/* Peer text in one log field (log_escape may triple it, then caps). */
#define SMTP_LOG_FIELD 320

enum smtp_state {
	S_CMD, /* waiting for commands */
	S_DATA, /* reading message content */
	S_COMMIT, /* the submit hook is working: process nothing */
	S_TLS, /* STARTTLS answered, the handshake is the caller's */
	S_AUTH, /* AUTH: waiting for the client's response line */
	S_AUTH_WAIT, /* AUTH: the check is working: process nothing */
	S_CLOSING, /* last reply queued */
};

/* The session's own replies (the command parser's are in smtp_cmd's
 * table).  Same row shape: code, enhanced status, text, log name. */
enum smtp_rep {
	REP_NONE, /* not a reply: a check that passed */
	REP_NEED_HELO,
	REP_NEED_MAIL,
	REP_NEED_RCPT,
	REP_NESTED_MAIL,
	REP_SIZE_MAIL,
	REP_SIZE_DATA,
	REP_STORE_UNAVAIL,
	REP_UNKNOWN_USER,
	REP_BAD_MAILBOX,
	REP_RELAY_DENIED,
	REP_TOO_MANY_RCPTS,
	REP_BARE_NEWLINE,
	REP_NO_SPACE,
	REP_NO_MEMORY,
	REP_LOCAL_ERROR,
	REP_TLS_PIPELINED,
	REP_TLS_ACTIVE,
	REP_TLS_UNAVAIL,
	REP_AUTH_NOT_ENABLED,
	REP_AUTH_TLS,
	REP_AUTH_ALREADY,
	REP_AUTH_IN_TX,
	REP_AUTH_SYNTAX,
	REP_AUTH_MECH,
	REP_AUTH_BASE64,
	REP_AUTH_CANCEL,
	REP_AUTH_LONG,
	REP_AUTH_FAILED,
	REP_AUTH_TEMP,
	REP_AUTH_REQUIRED,
	REP_SENDER_NOT_OWNED,
	REP_COUNT
};

static const struct smtp_reply smtp_reps[REP_COUNT] = {
	[REP_NEED_HELO] = { 503, "5.5.1", "Error: send HELO/EHLO first",
	    "need-helo" },
	[REP_NEED_MAIL] = { 503, "5.5.1", "Error: need MAIL command",
	    "need-mail" },
	[REP_NEED_RCPT] = { 503, "5.5.1", "Error: need RCPT command",
	    "need-rcpt" },
	[REP_NESTED_MAIL] = { 503, "5.5.1", "Error: nested MAIL command",
	    "nested-mail" },
	/* RFC 1870 §6.1: a declared SIZE over the limit is 552. */
	[REP_SIZE_MAIL] = { 552, "5.3.4",
	    "Message size exceeds fixed maximum message size", "too-big" },
	[REP_SIZE_DATA] = { 552, "5.3.4",
	    "Message size exceeds fixed maximum message size", "too-big" },
	/* Digest mtrk-rfc3885 §10: refuse rather than accept untracked. */
	[REP_STORE_UNAVAIL] = { 455, "4.3.0",
	    "Tracking store unavailable, try again later",
	    "store-unavailable" },
	[REP_UNKNOWN_USER] = { 550, "5.1.1",
	    "Recipient address rejected: User unknown", "unknown-user" },
	/* A local mailbox that delivery could never make (mailbox.h):
	 * refused now, so no bounce ever goes to a forged sender. */
	[REP_BAD_MAILBOX] = { 550, "5.1.3",
	    "Recipient address rejected: Mailbox name not allowed",
	    "mailbox-not-allowed" },
	[REP_RELAY_DENIED] = { 550, "5.7.1", "Relay access denied",
	    "relay-denied" },
	/* RFC 5321 §4.5.3.1.10. */
	[REP_TOO_MANY_RCPTS] = { 452, "4.5.3", "Too many recipients",
	    "too-many-rcpts" },
	/* RFC 5321 §2.3.8; PRODUCT.md: refused at the end of DATA. */
	[REP_BARE_NEWLINE] = { 550, "5.5.2",
	    "Message contains bare CR or LF line endings", "bare-newline" },
	/* The spools' memory budget (queue.h QUEUE_SPOOL_BUDGET). */
	[REP_NO_MEMORY] = { 451, "4.3.1", "Insufficient system resources",
	    "no-memory" },
	[REP_NO_SPACE] = { 452, "4.3.1", "Insufficient system storage",
	    "no-space" },
	[REP_LOCAL_ERROR] = { 451, "4.3.0", "Local error in processing",
	    "local-error" },
	/* RFC 3207 §4.2 / CVE-2011-0411: nothing may follow STARTTLS. */
	[REP_TLS_PIPELINED] = { 503, "5.5.1",
	    "Error: STARTTLS must be the last command in a group",
	    "starttls-pipelined" },
	[REP_TLS_ACTIVE] = { 503, "5.5.1", "Error: TLS already active",
	    "tls-active" },
	[REP_TLS_UNAVAIL] = { 502, "5.5.1", "Error: STARTTLS not available",
	    "tls-unavailable" },
	/* PRODUCT.md: port 25 never offers AUTH (Postfix's wording). */
	[REP_AUTH_NOT_ENABLED] = { 503, "5.5.1",
	    "Error: authentication not enabled", "auth-not-enabled" },
	/* RFC 4954 §6; PRODUCT.md: AUTH only inside TLS. */
	[REP_AUTH_TLS] = { 538, "5.7.11",
	    "Encryption required for requested authentication mechanism",
	    "auth-needs-tls" },
	/* RFC 4954 §4: "After a successful AUTH command completes, a server
	 * MUST reject any further AUTH commands with a 503 reply", and AUTH
	 * is not permitted during a mail transaction. */
	[REP_AUTH_ALREADY] = { 503, "5.5.1", "Error: already authenticated",
	    "auth-again" },
	[REP_AUTH_IN_TX] = { 503, "5.5.1",
	    "Error: MAIL transaction in progress", "auth-in-transaction" },
	[REP_AUTH_SYNTAX] = { 501, "5.5.4",
	    "Syntax: AUTH mechanism [initial-response]", "auth-syntax" },
	[REP_AUTH_MECH] = { 504, "5.5.4", "Unrecognized authentication type",
	    "auth-mechanism" },
	[REP_AUTH_BASE64] = { 501, "5.5.2", "Cannot decode response",
	    "auth-base64" },
	[REP_AUTH_CANCEL] = { 501, "5.0.0", "Authentication aborted",
	    "auth-cancelled" },
	[REP_AUTH_LONG] = { 500, "5.5.6",
	    "Authentication exchange line is too long", "auth-too-long" },
	[REP_AUTH_FAILED] = { 535, "5.7.8",
	    "Error: authentication credentials invalid", "auth-failed" },
	[REP_AUTH_TEMP] = { 454, "4.7.0", "Temporary authentication failure",
	    "auth-temporary" },
	/* RFC 4954 §6: MAIL before AUTH where AUTH is required. */
	[REP_AUTH_REQUIRED] = { 530, "5.7.0", "Authentication required",
	    "auth-required" },
	/* Text built by sender_refuse(). */
	[REP_SENDER_NOT_OWNED] = { 553, "5.7.1", "Sender address rejected",
	    "sender-not-owned" },
};

/*
 * The body sink: where DATA content goes between the 354 and the commit.
 * With the daemon's spool (smtp_hooks.spool) it is written to the queue's
 * journal in chunks as it arrives, so a session holds at most two
 * chunks whatever the message size; without one (tests) it stays in a
 * struct buf.  begin: a new body of at most max octets; stage: where the
 * DATA reader appends; write: the reader appended, take it; busy: read no
 * more until the sink's ready callback; error: why it failed; end: the
 * in-memory body as iovecs; abort: discard.
 */
struct smtp_body_sink {
	struct buf buf;
	const struct smtp_spool_ops *ops;
	void *arg; /* the hooks' */
	void *spool;
	int err; /* the sink could not be made */
};

static void
body_begin(struct smtp_body_sink *b, uint64_t max, void (*ready)(void *),
    void *ready_arg)
{
	b->err = 0;
	if (b->ops != NULL) {
		if ((b->spool = b->ops->open(b->arg)) == NULL)
			b->err = ENOMEM;
		else
			b->ops->on_ready(b->spool, ready, ready_arg);
		buf_init(&b->buf, 0);
		return;
	}
	buf_init(&b->buf, max > SIZE_MAX ? SIZE_MAX : (size_t)max);
}

/* Where the DATA reader appends (smtp_line_data()). */
static struct buf *
body_stage(struct smtp_body_sink *b)
{
	return b->spool != NULL ? b->ops->buf(b->spool) : &b->buf;
}

/* Takes what the reader appended: the spool writes whole chunks.  A
 * failure is kept for the end of DATA (error()): reading goes on. */
static void
body_write(struct smtp_body_sink *b)
{
	if (b->spool != NULL)
		(void)b->ops->push(b->spool);
	else if (b->err != 0)
		buf_clear(&b->buf); /* no sink: drop, refuse at the end */
}

static int
body_busy(const struct smtp_body_sink *b)
{
	return b->spool != NULL && b->ops->busy(b->spool);
}

static int
body_error(const struct smtp_body_sink *b)
{
	if (b->err != 0)
		return b->err;
	return b->spool != NULL ? b->ops->error(b->spool) : 0;
}

/* Fills iov with the in-memory body (none with a spool: it holds the
 * body).  Returns the number of entries. */
static int
body_end(struct smtp_body_sink *b, struct iovec *iov)
{
	if (b->spool != NULL)
		return 0;
	iov->iov_base = b->buf.data != NULL ? b->buf.data : (void *)"";
	iov->iov_len = b->buf.len;
	return 1;
}

/* Hands the spool over (to submit): the sink forgets it. */
static void *
body_take_spool(struct smtp_body_sink *b)
{
	void *sp = b->spool;

	b->spool = NULL;
	return sp;
}

static void
body_abort(struct smtp_body_sink *b)
{
	if (b->spool != NULL)
		b->ops->close(b->spool);
	b->spool = NULL;
	buf_reset(&b->buf);
}

struct smtp_session {
	const struct smtp_env *env;
	void (*wake)(void *arg);
	void *wake_arg;
	struct evbuffer *out; /* replies not yet handed on */
	struct evbuffer *in; /* the caller's input, during smtp_session_run */
	struct smtp_line *rd;
	enum smtp_state state;
	char id[17]; /* log id, 16 hex digits */
	struct sockaddr_storage addr;
	char addrstr[INET6_ADDRSTRLEN];
	int greeted; /* EHLO or HELO done */
	int esmtp; /* EHLO (not HELO) */
	int tls; /* TLS active */
	int stopping; /* SIGTERM: close at the next command boundary */
	int implicit_tls; /* submissions_listen: TLS from the first byte */
	int dead; /* the connection is gone: no more output */
	int eof; /* the client closed while its commit was in flight */
	unsigned int ext; /* SMTP_EXT_* advertised */
	unsigned int errors;
	uint64_t commands;
	time_t line_start; /* first byte of an unfinished command line */
	time_t data_start; /* the 354 */
	char helo[SMTP_CMD_LINE_MAX];
	/* The transaction: NULL until MAIL. */
	struct queue_msg *msg;
	size_t rcpt_cap;
	uint64_t declared_size;
	int mtrk_has_timeout; /* MTRK= carried ":timeout" (0 is valid) */
	/* DATA: the content and our Received: field, valid until the
	 * commit callback. */
	struct smtp_body_sink body;
	struct buf received;
	/* AUTH (RFC 4954): the canonical login once authenticated, the
	 * exchange in progress, the check in flight. */
	char *login;
	enum sasl_mech auth_mech;
	enum sasl_login_step auth_step;
	struct sasl_creds creds; /* LOGIN's username between its lines */
	void *auth_req; /* the hook's handle while S_AUTH_WAIT */
	unsigned int auth_failures;
	/* Submission: the header looked at as DATA arrives (authenticated
	 * sessions only). */
	int scanning;
	struct hdrscan scan;
};

static const struct conf *
conf(const struct smtp_session *s)
{
	return s->env->conf;
}

static const char *
hostname(const struct smtp_session *s)
{
	return s->env->conf->hostname;
}

/* /metrics: a reply line written at offset at of the output, counted by
 * class if it is a last line ("NNN "). */
static void
count_reply(struct smtp_session *s, size_t at)
{
	struct evbuffer_ptr p;
	char c[4];

	if (s->env->stats != NULL &&
	    evbuffer_ptr_set(s->out, &p, at, EVBUFFER_PTR_SET) == 0 &&
	    evbuffer_copyout_from(s->out, &p, c, 4) == 4 && c[3] == ' ' &&
	    c[0] >= '2' && c[0] <= '5')
		s->env->stats->replies[c[0] - '2']++;
}

static void reply(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
reply(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;

	size_t at = evbuffer_get_length(s->out);

	if (s->dead)
		return;
	va_start(ap, fmt);
	(void)evbuffer_add_vprintf(s->out, fmt, ap);
	va_end(ap);
	(void)evbuffer_add(s->out, "\r\n", 2);
	count_reply(s, at);
}

static void
transaction_reset(struct smtp_session *s)
{
	if (s->msg != NULL)
		s->env->hooks->msg_free(s->env->hooks_arg, s->msg);
	s->msg = NULL;
	s->rcpt_cap = 0;
	s->declared_size = 0;
	s->mtrk_has_timeout = 0;
	s->scanning = 0;
	body_abort(&s->body);
	buf_reset(&s->received);
}

/* The last reply is queued: the connection sends it and closes. */
static void
session_close(struct smtp_session *s, const char *reason)
{
	if (s->state == S_CLOSING)
		return;
	s->state = S_CLOSING;
	log_info("%s smtp disconnect reason=%s commands=%" PRIu64, s->id,
	    reason, s->commands);
}

/* Writes a refusal, logs it, counts it; hangs up past SMTP_ERRORS_MAX
 * (Postfix: "421 4.7.0 %s Error: too many errors"). */
static void
reject_text(
    struct smtp_session *s, const struct smtp_reply *r, const char *text)
{
	reply(s, "%d %s %s", r->code, r->status, text);
	log_info("%s smtp reject code=%d status=%s reason=%s", s->id, r->code,
	    r->status, r->name);
	if (++s->errors >= SMTP_ERRORS_MAX) {
		reply(s, "421 4.7.0 %s Error: too many errors", hostname(s));
		session_close(s, "errors");
	}
}

static void
reject(struct smtp_session *s, const struct smtp_reply *r)
{
	reject_text(s, r, r->text);
}

static void
reject_rep(struct smtp_session *s, enum smtp_rep r)
{
	reject(s, &smtp_reps[r]);
}

static void
reject_cmd(struct smtp_session *s, enum smtp_cmd_error e)
{
	const struct smtp_reply *r = smtp_cmd_reply(e);

	if (r == NULL)
		r = &smtp_reps[REP_LOCAL_ERROR];
	reject(s, r);
}

static char *
xstrdup(const char *p)
{
	char *q = strdup(p);

	if (q == NULL)
		fatal("smtp: strdup");
	return q;
}

static char *
xconcat(const char *a, const char *b, const char *c)
{
	size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
	char *q = malloc(na + nb + nc + 1);

	if (q == NULL)
		fatal("smtp: malloc");
	memcpy(q, a, na);
	memcpy(q + na, b, nb);
	memcpy(q + na + nb, c, nc + 1);
	return q;
}

/* --- sequence rules (the table's check column) ------------------------ */

static enum smtp_rep
check_mail(const struct smtp_session *s)
{
	if (!s->greeted)
		return REP_NEED_HELO;
	if (s->msg != NULL)
		return REP_NESTED_MAIL;
	/* RFC 6409 §4.3, RFC 4954 §6: a submission server requires AUTH. */
	if (s->env->mode != SMTP_MODE_RELAY && s->login == NULL)
		return REP_AUTH_REQUIRED;
	return REP_NONE;
}

/* AUTH is offered: a submission listener, inside TLS, after EHLO. */
static int
auth_offered(const struct smtp_session *s)
{
	return s->env->mode != SMTP_MODE_RELAY && s->tls && s->esmtp &&
	    s->env->hooks->auth_start != NULL;
}

static enum smtp_rep
check_rcpt(const struct smtp_session *s)
{
	return s->msg == NULL ? REP_NEED_MAIL : REP_NONE;
}

static enum smtp_rep
check_data(const struct smtp_session *s)
{
	if (s->msg == NULL)
		return REP_NEED_MAIL;
	return s->msg->nrcpt == 0 ? REP_NEED_RCPT : REP_NONE;
}

/* --- commands (the table's proceed column) ---------------------------- */

static void
proceed_helo(struct smtp_session *s, const struct smtp_cmd *c)
{
	struct evbuffer *out = s->out;
	int ehlo = c->verb == SMTP_VERB_EHLO;
	char h[SMTP_LOG_FIELD];

	/* The argument goes into our Received: field: anything but a name
	 * or an address literal could forge trace information there.
	 * Postfix's wording (smtpd_helo_restrictions,
	 * reject_invalid_helo_hostname). */
	if (!smtp_helo_valid(c->arg, strlen(c->arg))) {
		static const struct smtp_reply bad_helo = { 501, "5.5.2", NULL,
			"invalid-helo" };
		char text[sizeof(c->arg) + 64];

		snprintf(text, sizeof(text),
		    "<%s>: Helo command rejected: Invalid name", c->arg);
		reject_text(s, &bad_helo, text);
		return;
	}
	/* RFC 5321 §4.1.4: EHLO/HELO reset the transaction. */
	transaction_reset(s);
	if (str_copy(s->helo, c->arg, sizeof(s->helo)) >= sizeof(s->helo))
		s->helo[sizeof(s->helo) - 1] = '\0'; /* cannot happen: 512 */
	s->greeted = 1;
	s->esmtp = ehlo;
	if (!ehlo) {
		/* No extensions after HELO: MTRK/DSN parameters are 555. */
		s->ext = 0;
		reply(s, "250 %s", hostname(s));
	} else {
		s->ext = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_DSN |
		    SMTP_EXT_MTRK;
		if (auth_offered(s))
			s->ext |= SMTP_EXT_AUTH;
		if (!s->dead) {
			evbuffer_add_printf(out,
			    "250-%s\r\n250-PIPELINING\r\n250-SIZE %" PRIu64
			    "\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
			    "250-DSN\r\n",
			    hostname(s), conf(s)->max_message_size);
			/* RFC 4954 §3; PRODUCT.md: inside TLS only. */
			if (s->ext & SMTP_EXT_AUTH)
				evbuffer_add_printf(
				    out, "250-AUTH PLAIN LOGIN\r\n");
			if (s->env->tls && !s->tls)
				evbuffer_add_printf(
				    out, "250-MTRK\r\n250 STARTTLS\r\n");
			else
				evbuffer_add_printf(out, "250 MTRK\r\n");
			if (s->env->stats != NULL)
				s->env->stats->replies[0]++;
		}
	}
	log_info("%s smtp helo helo=%s verb=%s", s->id,
	    log_escape(h, sizeof(h), s->helo, strlen(s->helo)),
	    ehlo ? "EHLO" : "HELO");
}

/* Automatic tracking (PRODUCT.md, submission_track): m, which came
 * without MTRK from an authenticated client, gets a server-made secret
 * (kept for the login in the store, never logged), its certifier as
 * MTRK, and a unique ENVID (RFC 3885 §3.2, made as msgtrk send makes
 * one) when it has none.  An ENVID the client gave that is not a
 * unique-envid cannot carry MTRK: the message stays untracked.  Returns
 * 1 if m is now tracked, else 0 (logged). */
static int
auto_track(struct smtp_session *s, struct queue_msg *m)
{
	unsigned char secret[MTRK_SECRET_LEN];
	char b64[MTRK_SECRET_B64_SIZE], envid[ENVID_MAX + 1];
	char cert[MTRK_CERTIFIER_LEN + 1];
	enum envid_error ee;
	struct buf x;
	int ok = 0;

	if (m->envid != NULL &&
	    envid_check_unique(m->envid, strlen(m->envid), NULL, NULL) == -1) {
		log_info("%s smtp track result=no reason=envid-form", s->id);
		return 0;
	}
	if (mtrk_secret_new(secret) == -1 ||
	    mtrk_certifier(secret, sizeof(secret), cert) == -1 ||
	    mtrk_secret_encode(secret, sizeof(secret), b64, sizeof(b64)) ==
	        -1) {
		log_warnx("%s smtp track result=no reason=random", s->id);
		goto done;
	}
	if (m->envid == NULL) {
		if (envid_generate(
		        hostname(s), NULL, envid, sizeof(envid), &ee) == -1) {
			log_warnx("%s smtp track result=no reason=envid "
			          "error=\"%s\"",
			    s->id, envid_strerror(ee));
			goto done;
		}
		buf_init(&x, SMTP_ENVID_RAW_MAX);
		if (xtext_encode(&x, envid, strlen(envid)) == -1) {
			buf_reset(&x);
			goto done;
		}
		m->envid_raw = xstrdup(buf_cstr(&x));
		m->envid = xstrdup(envid);
		buf_reset(&x);
	}
	m->mtrk = 1;
	(void)str_copy(m->certifier, cert, sizeof(m->certifier));
	m->mtrk_timeout = 0;
	m->mtrk_has_timeout = 0;
	m->secret = xstrdup(b64);
	ok = 1;
done:
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(b64, sizeof(b64));
	return ok;
}

/* 553 5.7.1: the login may not use this sender (sender_logins). */
static void
sender_refuse(struct smtp_session *s, const char *from)
{
	char text[SMTP_PATH_MAX + SASL_FIELD_MAX + 96];
	char l[SMTP_LOG_FIELD], who[SMTP_LOG_FIELD];

	/* Both are printable: the path was checked by smtp_cmd, the login
	 * when it came (auth_done). */
	snprintf(text, sizeof(text),
	    "<%s>: Sender address rejected: not owned by user %s", from,
	    s->login);
	log_info("%s smtp mail from=<%s> login=%s result=sender-not-owned",
	    s->id, log_escape(l, sizeof(l), from, strlen(from)),
	    log_escape(who, sizeof(who), s->login, strlen(s->login)));
	reject_text(s, &smtp_reps[REP_SENDER_NOT_OWNED], text);
}

static void
proceed_mail(struct smtp_session *s, const struct smtp_cmd *c)
{
	const struct conf *cf = conf(s);
	const struct smtp_hooks *h = s->env->hooks;
	struct queue_msg *m;
	char from[SMTP_LOG_FIELD], envid[SMTP_LOG_FIELD];
	char login[SMTP_LOG_FIELD + 8], who[SMTP_LOG_FIELD];
	const char *track = "no";

	if ((c->params & SMTP_PARAM_SIZE) && c->size > cf->max_message_size) {
		reject_rep(s, REP_SIZE_MAIL);
		return;
	}
	if (s->login != NULL &&
	    (h->sender_allowed == NULL ||
	        !h->sender_allowed(s->env->hooks_arg, s->login,
	            c->path.is_null ? "" : c->path.mailbox))) {
		sender_refuse(s, c->path.is_null ? "" : c->path.mailbox);
		return;
	}
	if ((c->params & SMTP_PARAM_MTRK) &&
	    h->store_failed(s->env->hooks_arg)) {
		reject_rep(s, REP_STORE_UNAVAIL);
		return;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		fatal("smtp: calloc");
	m->sender = xstrdup(c->path.is_null ? "" : c->path.mailbox);
	if (c->params & SMTP_PARAM_ENVID) {
		m->envid_raw = xstrdup(c->envid_raw);
		m->envid = xstrdup(c->envid);
	}
	m->ret = c->ret == SMTP_RET_FULL ? QUEUE_RET_FULL
	    : c->ret == SMTP_RET_HDRS    ? QUEUE_RET_HDRS
	                                 : QUEUE_RET_NONE;
	m->body_8bit = c->body == SMTP_BODY_8BITMIME;
	if (c->params & SMTP_PARAM_MTRK) {
		m->mtrk = 1;
		(void)str_copy(
		    m->certifier, c->mtrk.certifier, sizeof(m->certifier));
		/* As received; 0 also when none was given (the session
		 * keeps which, for the retention). */
		m->mtrk_timeout =
		    c->mtrk.has_timeout ? (uint32_t)c->mtrk.timeout : 0;
		m->mtrk_has_timeout = c->mtrk.has_timeout != 0;
	}
	if (m->mtrk)
		track = "yes";
	if (s->login != NULL) {
		m->login = xstrdup(s->login);
		if (!m->mtrk && cf->submission_track && auto_track(s, m))
			track = "auto";
	}
	s->msg = m;
	s->rcpt_cap = 0;
	s->declared_size = (c->params & SMTP_PARAM_SIZE) ? c->size : 0;
	s->mtrk_has_timeout =
	    (c->params & SMTP_PARAM_MTRK) != 0 && c->mtrk.has_timeout;
	reply(s, "250 2.1.0 Ok");
	login[0] = '\0';
	if (s->login != NULL)
		snprintf(login, sizeof(login), " login=%s",
		    log_escape(who, sizeof(who), s->login, strlen(s->login)));
	log_info("%s smtp mail from=<%s> size=%" PRIu64 " envid=%s mtrk=%s%s",
	    s->id, log_escape(from, sizeof(from), m->sender, strlen(m->sender)),
	    s->declared_size,
	    m->envid != NULL
	        ? log_escape(envid, sizeof(envid), m->envid, strlen(m->envid))
	        : "-",
	    track, login);
}

/* RFC 5321 §4.1.1.3: <Postmaster> without a domain is ours. */
static const char *
postmaster_domain(const struct conf *cf)
{
	return cf->n_local_domains > 0 ? cf->local_domains[0] : cf->hostname;
}

/* Refuses addr (logged as to=<addr> result=<r's name>). */
static void
rcpt_refuse(struct smtp_session *s, const char *to, enum smtp_rep r)
{
	log_info(
	    "%s smtp rcpt to=<%s> result=%s", s->id, to, smtp_reps[r].name);
	reject_rep(s, r);
}

static void
proceed_rcpt(struct smtp_session *s, const struct smtp_cmd *c)
{
	const struct conf *cf = conf(s);
	struct queue_msg *m = s->msg;
	struct queue_rcpt *r;
	char addr[SMTP_PATH_MAX + CONF_HOSTNAME_MAX + 2];
	char to[SMTP_LOG_FIELD];
	const char *domain;
	int local;

	if (m->nrcpt >= SMTP_RCPT_MAX) {
		reject_rep(s, REP_TOO_MANY_RCPTS);
		return;
	}
	if (c->path.is_postmaster) {
		domain = postmaster_domain(cf);
		snprintf(addr, sizeof(addr), "postmaster@%s", domain);
		local = 1;
	} else {
		domain = c->path.domain;
		(void)str_copy(addr, c->path.mailbox, sizeof(addr));
		local = conf_is_local_domain(cf, domain);
	}
	log_escape(to, sizeof(to), addr, strlen(addr));
	if (local && !c->path.is_postmaster) {
		switch (s->env->hooks->local_rcpt(s->env->hooks_arg, addr)) {
		case SMTP_RCPT_OK:
			break;
		case SMTP_RCPT_UNKNOWN:
			rcpt_refuse(s, to, REP_UNKNOWN_USER);
			return;
		case SMTP_RCPT_NOT_ALLOWED:
			rcpt_refuse(s, to, REP_BAD_MAILBOX);
			return;
		}
	}
	/* No open relay, ever: only relay_networks, and authenticated
	 * clients (PRODUCT.md), reach other domains. */
	if (!local && s->login == NULL &&
	    !conf_relay_allowed(cf, (const struct sockaddr *)&s->addr)) {
		rcpt_refuse(s, to, REP_RELAY_DENIED);
		return;
	}
	if (m->nrcpt == s->rcpt_cap) {
		size_t cap = s->rcpt_cap == 0 ? 4 : s->rcpt_cap * 2;
		struct queue_rcpt *n;

		if (cap > SMTP_RCPT_MAX)
			cap = SMTP_RCPT_MAX;
		if ((n = reallocarray(m->rcpts, cap, sizeof(*n))) == NULL)
			fatal("smtp: realloc");
		m->rcpts = n;
		s->rcpt_cap = cap;
	}
	r = &m->rcpts[m->nrcpt];
	memset(r, 0, sizeof(*r));
	r->addr = xstrdup(addr);
	r->notify =
	    (uint8_t)(((c->notify & SMTP_NOTIFY_NEVER) ? QUEUE_NOTIFY_NEVER
	                                               : 0) |
	        ((c->notify & SMTP_NOTIFY_SUCCESS) ? QUEUE_NOTIFY_SUCCESS : 0) |
	        ((c->notify & SMTP_NOTIFY_FAILURE) ? QUEUE_NOTIFY_FAILURE : 0) |
	        ((c->notify & SMTP_NOTIFY_DELAY) ? QUEUE_NOTIFY_DELAY : 0));
	r->track.idx = (uint32_t)m->nrcpt;
	if (c->params & SMTP_PARAM_ORCPT) {
		r->orcpt_raw = xstrdup(c->orcpt_raw);
		r->track.orcpt = xconcat(c->orcpt_type, ";", c->orcpt_addr);
	} else
		r->track.orcpt = xconcat("rfc822;", addr, "");
	r->track.final_rcpt = xconcat("rfc822;", addr, "");
	r->track.action = STORE_ACTION_QUEUED;
	m->nrcpt++;
	reply(s, "250 2.1.5 Ok");
	log_info("%s smtp rcpt to=<%s> result=ok", s->id, to);
}

/* The spool wrote a chunk and takes more: read on. */
static void
spool_ready(void *arg)
{
	struct smtp_session *s = arg;

	if (s->wake != NULL)
		s->wake(s->wake_arg);
}

static void
proceed_data(struct smtp_session *s, const struct smtp_cmd *c)
{
	uint64_t max = conf(s)->max_message_size;

	(void)c;
	if (smtp_line_data_begin(s->rd, max) == -1) {
		reject_rep(s, REP_LOCAL_ERROR);
		return;
	}
	s->body.ops = s->env->hooks->spool;
	s->body.arg = s->env->hooks_arg;
	body_begin(&s->body, max, spool_ready, s);
	/* RFC 6409 §8: a submission server may add Date: and Message-ID:;
	 * the Subject goes to the sender's list. */
	s->scanning = s->login != NULL;
	if (s->scanning)
		hdrscan_init(&s->scan);
	s->state = S_DATA;
	s->data_start = time(NULL);
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void
proceed_rset(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	transaction_reset(s);
	reply(s, "250 2.0.0 Ok");
}

static void
proceed_noop(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	reply(s, "250 2.0.0 Ok");
}

static void
proceed_vrfy(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	/* RFC 5321 §3.5.3: 252 when we will not verify. */
	reply(s,
	    "252 2.5.0 Cannot VRFY user, but will accept message "
	    "and attempt delivery");
}

static void
proceed_quit(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	reply(s, "221 2.0.0 Bye");
	session_close(s, "quit");
}

/* STARTTLS: the checks that follow syntax (TLS on, none configured,
 * plaintext pipelined behind it), then the 220 and the handshake, which
 * is the caller's (SMTP_STEP_STARTTLS). */
static void
proceed_starttls(struct smtp_session *s, const struct smtp_cmd *c)
{
	struct evbuffer *in = s->in;

	(void)c;
	if (s->tls) {
		reject_rep(s, REP_TLS_ACTIVE);
		return;
	}
	if (!s->env->tls || !s->esmtp) {
		reject_rep(s, REP_TLS_UNAVAIL);
		return;
	}
	/* At this point there must not be any pending plaintext
	 * (CVE-2011-0411): what followed STARTTLS in the same read would
	 * otherwise be executed as if it came over TLS. */
	if (smtp_line_pending(s->rd) != 0 || evbuffer_get_length(in) != 0) {
		smtp_line_clear(s->rd);
		evbuffer_drain(in, evbuffer_get_length(in));
		reject_rep(s, REP_TLS_PIPELINED);
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	/* RFC 3207 §4.2: "The server MUST discard any knowledge obtained
	 * from the client, such as the argument to the EHLO command, which
	 * was not obtained from the TLS negotiation itself." */
	transaction_reset(s);
	smtp_line_clear(s->rd);
	s->greeted = 0;
	s->esmtp = 0;
	s->ext = 0;
	s->helo[0] = '\0';
	s->state = S_TLS;
}

/* --- AUTH (RFC 4954) ------------------------------------------------- */

static const char *
mech_name(enum sasl_mech m)
{
	return m == SASL_MECH_LOGIN ? "LOGIN" : "PLAIN";
}

/* A 535: counted, and past SMTP_AUTH_FAILURES_MAX the session ends. */
static void
auth_failed(struct smtp_session *s, const char *why)
{
	s->auth_failures++;
	log_info("%s smtp auth result=fail mech=%s reason=%s failures=%u",
	    s->id, mech_name(s->auth_mech), why, s->auth_failures);
	reject_rep(s, REP_AUTH_FAILED);
	if (s->auth_failures >= SMTP_AUTH_FAILURES_MAX &&
	    s->state != S_CLOSING) {
		reply(s,
		    "421 4.7.0 %s Error: too many failed authentication "
		    "attempts",
		    hostname(s));
		session_close(s, "auth-failures");
	}
}

/* A response that does not decode: 501 5.5.2 for bad base64 (RFC 4954
 * §4), 500 5.5.6 for a line or field too long, 535 5.7.8 for the rest
 * (an authzid other than the login: PRODUCT.md; a malformed PLAIN
 * message, an empty field, a login that is not UTF-8). */
static void
auth_bad_response(struct smtp_session *s, enum sasl_error e)
{
	if (e == SASL_ERR_BASE64) {
		log_info("%s smtp auth result=error mech=%s reason=\"%s\"",
		    s->id, mech_name(s->auth_mech), sasl_strerror(e));
		reject_rep(s, REP_AUTH_BASE64);
	} else if (e == SASL_ERR_TOO_LONG) {
		log_info("%s smtp auth result=error mech=%s reason=\"%s\"",
		    s->id, mech_name(s->auth_mech), sasl_strerror(e));
		reject_rep(s, REP_AUTH_LONG);
	} else
		auth_failed(s, e == SASL_ERR_AUTHZID ? "authzid" : "format");
}

/* Returns 1 if every octet of p is printable US-ASCII or UTF-8 above it
 * (no C0, no DEL): what goes into logs and replies as a login. */
static int
login_ok(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > SASL_FIELD_MAX)
		return 0;
	for (; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/* The check's answer (auth.h: on the loop, never inside auth_start). */
static void
auth_done(void *arg, enum smtp_auth_result result, const char *login)
{
	struct smtp_session *s = arg;
	char who[SMTP_LOG_FIELD];

	if (s->state != S_AUTH_WAIT)
		return;
	s->auth_req = NULL;
	s->state = S_CMD;
	if (result == SMTP_AUTH_OK && (login == NULL || !login_ok(login))) {
		log_warnx("%s smtp auth result=temp mech=%s reason=login",
		    s->id, mech_name(s->auth_mech));
		result = SMTP_AUTH_TEMP;
	}
	switch (result) {
	case SMTP_AUTH_OK:
		s->login = xstrdup(login);
		/* The login is logged, the password never. */
		log_info("%s smtp auth result=ok mech=%s login=%s", s->id,
		    mech_name(s->auth_mech),
		    log_escape(who, sizeof(who), login, strlen(login)));
		reply(s, "235 2.7.0 Authentication successful");
		break;
	case SMTP_AUTH_FAIL:
		auth_failed(s, "credentials");
		break;
	case SMTP_AUTH_TEMP:
		log_info("%s smtp auth result=temp mech=%s", s->id,
		    mech_name(s->auth_mech));
		reject_rep(s, REP_AUTH_TEMP);
		break;
	}
	if (s->dead)
		s->state = S_CLOSING;
	if (s->wake != NULL)
		s->wake(s->wake_arg);
}

/* The credentials are complete: hand them to the check and wipe ours. */
static void
auth_check(struct smtp_session *s)
{
	const struct smtp_hooks *h = s->env->hooks;
	void *req;

	s->state = S_AUTH_WAIT;
	s->auth_req = NULL;
	req = h->auth_start(s->env->hooks_arg, s->creds.login,
	    s->creds.password, s->addrstr, auth_done, s);
	sasl_clear(&s->creds);
	if (req == NULL) {
		if (s->state == S_AUTH_WAIT) {
			s->state = S_CMD;
			log_warnx("%s smtp auth result=temp mech=%s "
			          "error=\"%s\"",
			    s->id, mech_name(s->auth_mech), strerror(errno));
			reject_rep(s, REP_AUTH_TEMP);
		}
		return;
	}
	if (s->state == S_AUTH_WAIT)
		s->auth_req = req;
}

/* One response of the exchange: the PLAIN message, or LOGIN's username
 * or password (n octets of base64 at p). */
static void
auth_response(struct smtp_session *s, const char *p, size_t n)
{
	enum sasl_error e;

	if (s->auth_mech == SASL_MECH_PLAIN) {
		if (sasl_plain_decode(p, n, &s->creds, &e) == -1) {
			auth_bad_response(s, e);
			return;
		}
		auth_check(s);
		return;
	}
	if (sasl_login_decode(&s->creds, s->auth_step, p, n, &e) == -1) {
		auth_bad_response(s, e);
		return;
	}
	if (s->auth_step == SASL_LOGIN_USERNAME) {
		s->auth_step = SASL_LOGIN_PASSWORD;
		s->state = S_AUTH;
		reply(s, "%s", sasl_login_challenge(SASL_LOGIN_PASSWORD));
		return;
	}
	auth_check(s);
}

/* A line of the exchange (S_AUTH). */
static void
auth_line(struct smtp_session *s, const char *line, size_t len)
{
	s->state = S_CMD;
	s->commands++;
	/* RFC 4954 §4: "If the client wishes to cancel an authentication
	 * exchange, it issues a line with a single "*"". */
	if (sasl_is_cancel(line, len)) {
		sasl_clear(&s->creds);
		log_info("%s smtp auth result=cancelled mech=%s", s->id,
		    mech_name(s->auth_mech));
		reject_rep(s, REP_AUTH_CANCEL);
		return;
	}
	if (len > SASL_LINE_MAX) {
		sasl_clear(&s->creds);
		auth_bad_response(s, SASL_ERR_TOO_LONG);
		return;
	}
	auth_response(s, line, len);
}

static void
proceed_auth(struct smtp_session *s, const struct smtp_cmd *c)
{
	const char *arg = c->arg, *sp;
	char mech[32];
	size_t n;

	if (s->env->mode == SMTP_MODE_RELAY ||
	    s->env->hooks->auth_start == NULL) {
		reject_rep(s, REP_AUTH_NOT_ENABLED);
		return;
	}
	/* PRODUCT.md: AUTH only inside TLS (RFC 4954 §4, 538 5.7.11). */
	if (!s->tls) {
		reject_rep(s, REP_AUTH_TLS);
		return;
	}
	if (!s->esmtp) {
		reject_rep(s, REP_AUTH_NOT_ENABLED);
		return;
	}
	if (s->login != NULL) {
		reject_rep(s, REP_AUTH_ALREADY);
		return;
	}
	if (s->msg != NULL) {
		reject_rep(s, REP_AUTH_IN_TX);
		return;
	}
	sp = strchr(arg, ' ');
	n = sp != NULL ? (size_t)(sp - arg) : strlen(arg);
	if (n == 0 || n >= sizeof(mech) ||
	    (sp != NULL && (sp[1] == '\0' || strchr(sp + 1, ' ') != NULL))) {
		reject_rep(s, REP_AUTH_SYNTAX);
		return;
	}
	memcpy(mech, arg, n);
	mech[n] = '\0';
	if ((s->auth_mech = sasl_mech_parse(mech)) == SASL_MECH_UNKNOWN) {
		reject_rep(s, REP_AUTH_MECH);
		return;
	}
	sasl_clear(&s->creds);
	s->auth_step = SASL_LOGIN_USERNAME;
	if (sp == NULL) {
		/* No initial response: the empty challenge (PLAIN), or
		 * "Username:" (LOGIN). */
		s->state = S_AUTH;
		reply(s, "%s",
		    s->auth_mech == SASL_MECH_PLAIN
		        ? sasl_plain_challenge()
		        : sasl_login_challenge(SASL_LOGIN_USERNAME));
		return;
	}
	/* An initial response (RFC 4954 §4; "=" is an empty one): PLAIN's
	 * whole message, or LOGIN's username. */
	sp++;
	if (sasl_is_empty_response(sp, strlen(sp)))
		auth_response(s, "", 0);
	else
		auth_response(s, sp, strlen(sp));
}

/* The command table: each verb's sequence rule (NULL: none; a refusal
 * whatever the syntax, RFC 5321 §4.1.4) and what it does. */
static const struct smtp_verb_row {
	enum smtp_verb verb;
	enum smtp_rep (*check)(const struct smtp_session *);
	void (*proceed)(struct smtp_session *, const struct smtp_cmd *);
} smtp_verb_rows[] = {
	{ SMTP_VERB_EHLO, NULL, proceed_helo },
	{ SMTP_VERB_HELO, NULL, proceed_helo },
	{ SMTP_VERB_MAIL, check_mail, proceed_mail },
	{ SMTP_VERB_RCPT, check_rcpt, proceed_rcpt },
	{ SMTP_VERB_DATA, check_data, proceed_data },
	{ SMTP_VERB_RSET, NULL, proceed_rset },
	{ SMTP_VERB_NOOP, NULL, proceed_noop },
	{ SMTP_VERB_VRFY, NULL, proceed_vrfy },
	{ SMTP_VERB_QUIT, NULL, proceed_quit },
	{ SMTP_VERB_STARTTLS, NULL, proceed_starttls },
	{ SMTP_VERB_AUTH, NULL, proceed_auth },
};

static const struct smtp_verb_row *
verb_row(enum smtp_verb v)
{
	size_t i;

	for (i = 0; i < sizeof(smtp_verb_rows) / sizeof(smtp_verb_rows[0]); i++)
		if (smtp_verb_rows[i].verb == v)
			return &smtp_verb_rows[i];
	return NULL;
}

/* One command line (without CRLF). */
static void
session_line(struct smtp_session *s, const char *line, size_t len)
{
	const struct smtp_verb_row *row;
	struct smtp_cmd *c;
	enum smtp_cmd_error e = SMTP_CMD_OK;
	enum smtp_rep rep;
	int rc;

	/* struct smtp_cmd is several KiB: allocated per command so idle
	 * sessions stay small. */
	if ((c = malloc(sizeof(*c))) == NULL)
		fatal("smtp: malloc");
	s->commands++;
	rc = smtp_cmd_parse(line, len, s->ext, c, &e);
	row = verb_row(c->verb);
	if (row != NULL && row->check != NULL &&
	    (rep = row->check(s)) != REP_NONE)
		reject_rep(s, rep);
	else if (rc == -1)
		reject_cmd(s, e);
	else if (row == NULL)
		reject_cmd(s, SMTP_CMD_ERR_UNKNOWN_VERB);
	else
		row->proceed(s, c);
	/* AUTH's initial response is a credential: not left in the heap. */
	if (c->verb == SMTP_VERB_AUTH)
		explicit_bzero(c, sizeof(*c));
	free(c);
}

/* --- DATA end and commit -------------------------------------------- */

static void
commit_done(void *arg, int rc, int err)
{
	struct smtp_session *s = arg;
	struct queue_msg *m = s->msg;
	char from[SMTP_LOG_FIELD];

	s->msg = NULL;
	s->state = S_CMD;
	if (rc == 0) {
		/* The queue owns m now.  PRODUCT.md: a message msgtrkd made
		 * trackable names its envid. */
		if (m->secret != NULL)
			reply(s, "250 2.0.0 Ok: queued as %s, tracking %s",
			    m->qid, m->envid);
		else
			reply(s, "250 2.0.0 Ok: queued as %s", m->qid);
		if (s->env->stats != NULL)
			s->env->stats->accepted++;
		log_info("%s smtp queued qid=%s from=<%s> nrcpt=%zu "
		         "size=%" PRIu64,
		    s->id, m->qid,
		    log_escape(
		        from, sizeof(from), m->sender, strlen(m->sender)),
		    m->nrcpt, m->size);
		s->env->hooks->queued(s->env->hooks_arg, m);
	} else {
		log_warnx("%s smtp commit failed qid=%s error=\"%s\"", s->id,
		    m->qid, strerror(err));
		s->env->hooks->msg_free(s->env->hooks_arg, m);
		reject_rep(s,
		    (err == ENOSPC || err == EDQUOT || err == EFBIG)
		        ? REP_NO_SPACE
		        : REP_LOCAL_ERROR);
	}
	transaction_reset(s);
	if (s->dead)
		s->state = S_CLOSING;
	if (s->wake != NULL)
		s->wake(s->wake_arg);
}

/* 1 if every octet of s may stand in a trace field's clause as it is: no
 * white space, comment, quote, angle bracket or ';' that could end the
 * clause or start another. */
static int
trace_safe(const char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		        (*s >= '0' && *s <= '9') ||
		        strchr("!#$%&'*+-/=?^_`{|}~.@[]:", *s) != NULL))
			return 0;
	return 1;
}

/* Our Received: field (RFC 5321 §4.4), and for a submission the fields
 * RFC 6409 §8.2 and §8.3 let us add when missing (hdrscan flags f).
 * They go first in the message, ours being a trace field and the others
 * header fields whose place RFC 5322 §3.6 leaves free. */
static int
received_header(
    struct smtp_session *s, struct queue_msg *m, time_t now, unsigned int f)
{
	struct date dt = { now, 0 };
	char date[DATE_MAX], lit[INET6_ADDRSTRLEN + 8];
	const char *with, *helo;
	struct tm tm;

	if (date_format(&dt, date, sizeof(date)) == -1)
		return -1;
	if (s->addr.ss_family == AF_INET6)
		snprintf(lit, sizeof(lit), "IPv6:%s", s->addrstr);
	else
		snprintf(lit, sizeof(lit), "%s", s->addrstr);
	/* RFC 3848: ESMTPSA with TLS and AUTH (AUTH is only offered inside
	 * TLS here), ESMTPS with TLS, ESMTP after EHLO, SMTP after HELO.
	 * The login is never named (PRODUCT.md). */
	with = s->login != NULL ? "ESMTPSA"
	    : s->tls            ? "ESMTPS"
	    : s->esmtp          ? "ESMTP"
	                        : "SMTP";
	/* Nothing a client sent may end or forge a clause: the HELO name
	 * was checked at EHLO (smtp_helo_valid), the recipient only goes in
	 * when it is plain. */
	helo = smtp_helo_valid(s->helo, strlen(s->helo)) ? s->helo : "unknown";
	buf_init(&s->received, SMTP_RECEIVED_MAX);
	if (buf_addf(&s->received,
	        "Received: from %s ([%s])\r\n\tby %s (msgtrk) with %s id %s",
	        helo, lit, hostname(s), with, m->qid) == -1)
		return -1;
	if (m->nrcpt == 1 && trace_safe(m->rcpts[0].addr) &&
	    buf_addf(&s->received, "\r\n\tfor <%s>", m->rcpts[0].addr) == -1)
		return -1;
	if (buf_addf(&s->received, "; %s\r\n", date) == -1)
		return -1;
	if (!s->scanning || (f & HDRSCAN_F_CUT))
		return 0;
	/* RFC 5322 §3.6.4: unique, the queue id (unique here) and our
	 * name making it unique everywhere. */
	if (!(f & HDRSCAN_F_MESSAGE_ID) &&
	    (gmtime_r(&now, &tm) == NULL ||
	        buf_addf(&s->received,
	            "Message-ID: <%04d%02d%02d%02d%02d%02d.%s@%s>\r\n",
	            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	            tm.tm_min, tm.tm_sec, m->qid, hostname(s)) == -1))
		return -1;
	if (!(f & HDRSCAN_F_DATE) &&
	    buf_addf(&s->received, "Date: %s\r\n", date) == -1)
		return -1;
	return 0;
}

static void
data_end(struct smtp_session *s)
{
	const struct conf *cf = conf(s);
	const struct smtp_hooks *h = s->env->hooks;
	const struct smtp_data_info *info = smtp_line_data_info(s->rd);
	struct queue_msg *m = s->msg;
	struct iovec iov[2];
	time_t now = time(NULL), keep;
	unsigned int f = 0;
	int n;

	s->state = S_CMD;
	if (s->scanning) {
		f = hdrscan_end(&s->scan);
		if (m->secret != NULL && (f & HDRSCAN_F_SUBJECT) &&
		    hdrscan_subject(&s->scan)[0] != '\0')
			m->subject = xstrdup(hdrscan_subject(&s->scan));
	}
	if (info->flags & (SMTP_DATA_F_BARE_LF | SMTP_DATA_F_BARE_CR)) {
		reject_rep(s, REP_BARE_NEWLINE);
		goto reset;
	}
	if (info->flags & SMTP_DATA_F_TOO_BIG) {
		reject_rep(s, REP_SIZE_DATA);
		goto reset;
	}
	if (info->flags & SMTP_DATA_F_STORE_FAILED) {
		reject_rep(s, REP_LOCAL_ERROR);
		goto reset;
	}
	if ((n = body_error(&s->body)) != 0) {
		log_warnx(
		    "%s smtp spool failed error=\"%s\"", s->id, strerror(n));
		reject_rep(s,
		    n == ENOBUFS ? REP_NO_MEMORY
		        : (n == ENOSPC || n == EDQUOT || n == EFBIG)
		        ? REP_NO_SPACE
		        : REP_LOCAL_ERROR);
		goto reset;
	}
	h->new_id(s->env->hooks_arg, m->qid);
	m->arrival = now;
	/* RFC 3885 §3.1, digest §6: the requested (or default) retention,
	 * silently capped at mtrk_max_timeout. */
	keep = s->mtrk_has_timeout ? (time_t)m->mtrk_timeout
	                           : cf->mtrk_default_timeout;
	if (keep > cf->mtrk_max_timeout)
		keep = cf->mtrk_max_timeout;
	m->expires = now + keep;
	m->reporting_mta = xstrdup(hostname(s));
	m->helo = xstrdup(s->helo);
	m->client = xstrdup(s->addrstr);
	m->next_attempt = now;
	for (size_t i = 0; i < m->nrcpt; i++)
		m->rcpts[i].track.will_retry_until = now + cf->queue_lifetime;
	if (received_header(s, m, now, f) == -1) {
		reject_rep(s, REP_LOCAL_ERROR);
		goto reset;
	}
	iov[0].iov_base = s->received.data;
	iov[0].iov_len = s->received.len;
	n = 1 + body_end(&s->body, &iov[1]);
	s->state = S_COMMIT;
	/* done may run before submit returns: nothing of s is touched
	 * after a successful submit. */
	if (h->submit(s->env->hooks_arg, m, iov, n, body_take_spool(&s->body),
	        commit_done, s) == -1) {
		int e = errno;

		s->state = S_CMD;
		log_warnx(
		    "%s smtp submit failed error=\"%s\"", s->id, strerror(e));
		reject_rep(s, REP_LOCAL_ERROR);
		goto reset;
	}
	return;
reset:
	transaction_reset(s);
}

/* --- input --------------------------------------------------------- */

/* Moves what the line reader can take from in into it. */
static void
feed(struct smtp_session *s, struct evbuffer *in)
{
	char tmp[SMTP_FEED_CHUNK];
	size_t n;

	while ((n = evbuffer_get_length(in)) > 0 && smtp_line_room(s->rd) > 0) {
		if (n > smtp_line_room(s->rd))
			n = smtp_line_room(s->rd);
		if (n > sizeof(tmp))
			n = sizeof(tmp);
		if (evbuffer_remove(in, tmp, n) != (int)n ||
		    smtp_line_push(s->rd, tmp, n) == -1)
			fatal("smtp: input");
	}
}

/* Input ran out: wait for more, or if the client closed behind a commit
 * (everything it pipelined is answered), close. */
static enum smtp_step
input_end(struct smtp_session *s)
{
	if (!s->eof)
		return SMTP_STEP_READ;
	session_close(s, "eof");
	return SMTP_STEP_CLOSE;
}

static enum smtp_step
run(struct smtp_session *s, struct evbuffer *in, size_t pending)
{
	const char *line;
	struct buf *stage;
	size_t len, before;
	enum smtp_line_error le;
	int rc;

	for (;;) {
		if (s->state == S_CMD && s->stopping) {
			reply(s, "421 4.3.2 %s Service shutting down",
			    hostname(s));
			session_close(s, "shutdown");
		}
		switch (s->state) {
		case S_CLOSING:
			return SMTP_STEP_CLOSE;
		case S_COMMIT:
		case S_AUTH_WAIT:
			return SMTP_STEP_WAIT;
		case S_TLS:
			return SMTP_STEP_STARTTLS;
		case S_CMD:
		case S_DATA:
		case S_AUTH:
			break;
		}
		if (evbuffer_get_length(s->out) + pending > SMTP_OUT_HIGH)
			return SMTP_STEP_WRITE;
		feed(s, in);
		if (s->state == S_DATA) {
			/* The spool has as much as it may hold in memory:
			 * read nothing until it wrote a chunk (spool_ready). */
			if (body_busy(&s->body))
				return SMTP_STEP_WAIT;
			stage = body_stage(&s->body);
			before = stage->len;
			rc = smtp_line_data(s->rd, stage, &le);
			/* Submission: the header is looked at as it comes
			 * (what was appended, before the spool takes it). */
			if (s->scanning && stage->len > before)
				hdrscan_push(&s->scan, stage->data + before,
				    stage->len - before);
			if (rc != -1)
				body_write(&s->body);
			if (rc == 1)
				data_end(s);
			else if (rc == -1) {
				reject_rep(s, REP_LOCAL_ERROR);
				session_close(s, "internal");
			} else if (evbuffer_get_length(in) == 0)
				return input_end(s);
			continue;
		}
		rc = smtp_line_next(s->rd, &line, &len, &le);
		if (rc != 0)
			s->line_start = 0; /* a line ended: the next starts */
		if (rc == 1 && s->state == S_AUTH)
			auth_line(s, line, len);
		else if (rc == 1)
			session_line(s, line, len);
		else if (rc == -1 && s->state == S_AUTH) {
			/* RFC 4954 §4: past our buffer, 500 5.5.6. */
			s->state = S_CMD;
			s->commands++;
			sasl_clear(&s->creds);
			auth_bad_response(s, SASL_ERR_TOO_LONG);
		} else if (rc == -1) {
			s->commands++;
			reject_cmd(s, smtp_line_cmd_error(le));
		} else if (evbuffer_get_length(in) == 0)
			return input_end(s);
	}
}

enum smtp_step
smtp_session_run(struct smtp_session *s, struct evbuffer *in, size_t pending)
{
	enum smtp_step step;

	s->in = in;
	step = run(s, in, pending);
	s->in = NULL;
	return step;
}

int
smtp_session_deadline(struct smtp_session *s, time_t now)
{
	time_t end, t = conf(s)->smtp_timeout;

	if (s->state == S_DATA) {
		time_t more = (time_t)(smtp_line_data_info(s->rd)->size /
		    SMTP_MIN_DATA_RATE);

		end = s->data_start + t +
		    (more > SMTP_DATA_RATE_CAP ? SMTP_DATA_RATE_CAP : more);
	} else if ((s->state == S_CMD || s->state == S_AUTH) &&
	    smtp_line_pending(s->rd) > 0) {
		if (s->line_start == 0)
			s->line_start = now;
		end = s->line_start + t;
	} else {
		s->line_start = 0;
		return (int)t;
	}
	if (now >= end) {
		reply(s, "421 4.4.2 %s Error: timeout exceeded", hostname(s));
		session_close(s, "deadline");
		return 0;
	}
	return (int)(end - now < t ? end - now : t);
}

void
smtp_session_timeout(struct smtp_session *s)
{
	if (s->state == S_CLOSING)
		return;
	reply(s, "421 4.4.2 %s Error: timeout exceeded", hostname(s));
	session_close(s, "timeout");
}

void
smtp_session_tls_ready(
    struct smtp_session *s, const char *version, const char *cipher)
{
	if (s->state != S_TLS)
		return;
	s->tls = 1;
	s->state = S_CMD;
	log_info("%s smtp %s version=%s cipher=%s", s->id,
	    s->implicit_tls ? "tls" : "starttls", version, cipher);
}

/* Withdraws an authentication check in flight (the session ends). */
static void
auth_abandon(struct smtp_session *s)
{
	if (s->auth_req != NULL && s->env->hooks->auth_cancel != NULL)
		s->env->hooks->auth_cancel(s->env->hooks_arg, s->auth_req);
	s->auth_req = NULL;
	sasl_clear(&s->creds);
}

void
smtp_session_stop(struct smtp_session *s)
{
	s->stopping = 1;
	if (s->state == S_CMD || s->state == S_AUTH) {
		reply(s, "421 4.3.2 %s Service shutting down", hostname(s));
		session_close(s, "shutdown");
	}
}

int
smtp_session_eof(struct smtp_session *s)
{
	if (s->state == S_COMMIT) {
		/* Answer the message first; what was pipelined behind it
		 * is still processed. */
		s->eof = 1;
		return 1;
	}
	smtp_session_lost(s, "eof");
	return 0;
}

void
smtp_session_lost(struct smtp_session *s, const char *reason)
{
	if (s->state != S_CLOSING && !s->dead)
		log_info("%s smtp disconnect reason=%s commands=%" PRIu64,
		    s->id, reason, s->commands);
	if (s->state == S_AUTH_WAIT)
		auth_abandon(s);
	s->dead = 1;
	evbuffer_drain(s->out, evbuffer_get_length(s->out));
	if (s->state != S_COMMIT)
		s->state = S_CLOSING;
}

int
smtp_session_busy(const struct smtp_session *s)
{
	return s->state == S_COMMIT;
}

int
smtp_session_closing(const struct smtp_session *s)
{
	return s->state == S_CLOSING;
}

int
smtp_session_handshaking(const struct smtp_session *s)
{
	return s->state == S_TLS;
}

const char *
smtp_session_id(const struct smtp_session *s)
{
	return s->id;
}

struct evbuffer *
smtp_session_output(struct smtp_session *s)
{
	return s->out;
}

void
smtp_session_greet(struct smtp_session *s)
{
	log_info("%s smtp connect addr=%s%s", s->id, s->addrstr,
	    s->env->mode == SMTP_MODE_SUBMISSION ? " listener=submission"
	        : s->env->mode == SMTP_MODE_SUBMISSIONS
	        ? " listener=submissions"
	        : "");
	reply(s, "220 %s ESMTP msgtrk", hostname(s));
}

/* --- life cycle ------------------------------------------------------ */

struct smtp_session *
smtp_session_new(const struct smtp_env *env, const struct sockaddr *sa,
    socklen_t salen, const char *id, void (*wake)(void *arg), void *wake_arg)
{
	struct smtp_session *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->env = env;
	s->wake = wake;
	s->wake_arg = wake_arg;
	if (salen > sizeof(s->addr))
		salen = sizeof(s->addr);
	memcpy(&s->addr, sa, salen);
	net_host_text(sa, s->addrstr, sizeof(s->addrstr));
	(void)str_copy(s->id, id, sizeof(s->id));
	buf_init(&s->body.buf, 0);
	buf_init(&s->received, 0);
	if ((s->rd = smtp_line_new(0)) == NULL ||
	    (s->out = evbuffer_new()) == NULL) {
		smtp_line_free(s->rd);
		free(s);
		return NULL;
	}
	s->state = S_CMD;
	/* RFC 8314 §3.3: TLS from the first byte; the greeting waits for
	 * the handshake (netio holds it). */
	if (env->mode == SMTP_MODE_SUBMISSIONS) {
		s->implicit_tls = 1;
		s->state = S_TLS;
	}
	return s;
}

void
smtp_session_free(struct smtp_session *s)
{
	if (s == NULL)
		return;
	if (s->state == S_COMMIT) {
		/* The queue still holds a pointer to s as its callback
		 * argument; main.c stops the queue first, so this does not
		 * happen.  Keep the message (the queue owns it). */
		s->msg = NULL;
	}
	transaction_reset(s);
	if (s->state == S_AUTH_WAIT)
		auth_abandon(s);
	sasl_clear(&s->creds);
	free(s->login);
	evbuffer_free(s->out);
	smtp_line_free(s->rd);
	free(s);
}
