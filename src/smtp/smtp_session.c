/*
 * smtp_session: one ESMTP connection (RFC 5321) with PIPELINING (RFC
 * 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152), ENHANCEDSTATUSCODES (RFC
 * 2034), DSN (RFC 3461), MTRK (RFC 3885) and STARTTLS (RFC 3207).
 *
 * Input flows socket -> bufferevent -> smtp_line (bounded: SMTP_LINE_
 * INPUT_MAX) -> one command at a time.  Nothing is read ahead of what the
 * line reader can hold: the rest waits in the bufferevent (whose read high
 * watermark stops reading) and in the kernel, which is the back-pressure
 * on a client that pipelines without reading its replies.  The same
 * happens while our output is above SMTP_OUT_HIGH and while a message is
 * being committed: no command is processed until the commit callback has
 * sent its reply, so replies stay in order (RFC 2920 §3.1).
 *
 * Memory: an idle session holds this struct, the line reader (its input
 * storage grows only with what a client sends) and the bufferevent; the
 * message body buffer and the transaction exist only from MAIL/DATA on
 * and are freed when the transaction ends.
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
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "common/conf.h"
#include "common/log.h"
#include "common/net.h"
#include "common/tls.h"
#include "delivery/delivery.h"
#include "msgtrk/buf.h"
#include "msgtrk/date.h"
#include "msgtrk/smtp_cmd.h"
#include "msgtrk/smtp_line.h"
#include "msgtrk/str.h"
#include "msgtrkd/msgtrkd.h"
#include "queue/queue.h"
#include "smtp/smtp.h"
#include "smtp/smtp_session.h"

/* Output we queue for a client before we stop processing its commands
 * (a client that pipelines and never reads; RFC 2920 §3.1 lets a server
 * stop reading, and every reply is short, so 64 KiB is hundreds). */
#define SMTP_OUT_HIGH 65536
/* Chunk moved from the bufferevent into the line reader at a time. */
#define SMTP_FEED_CHUNK 4096
/* Room for a Received: header (RFC 5321 §4.4): the HELO argument (at
 * most SMTP_CMD_LINE_MAX), the address, our hostname, one recipient path
 * and a date, with the fixed words. */
#define SMTP_RECEIVED_MAX \
	(SMTP_CMD_LINE_MAX + INET6_ADDRSTRLEN + CONF_HOSTNAME_MAX + \
	    SMTP_PATH_MAX + DATE_MAX + 256)
/* While a TLS session closes, how often we look whether the socket
 * bufferevent under the filter has written the last reply (the filter's
 * own write callback only says it was encrypted), milliseconds. */
#define SMTP_LINGER_MS 20
/* Lingering close: how long a closing session keeps reading (and
 * dropping) what the client still sends after our FIN. */
#define SMTP_DRAIN_SECONDS 2
/* Peer text in one log field (log_escape may triple it, then caps). */
#define SMTP_LOG_FIELD 320

enum smtp_state {
	SMTP_S_CMD, /* waiting for commands */
	SMTP_S_DATA, /* reading message content */
	SMTP_S_COMMIT, /* queue_submit in flight: process nothing */
	SMTP_S_TLS, /* STARTTLS handshake */
	SMTP_S_CLOSING, /* last reply being flushed, then free */
};

/* The session's own replies (the command parser's are in smtp_cmd's
 * table).  Same row shape: code, enhanced status, text, log name. */
enum smtp_rep {
	REP_NEED_HELO,
	REP_NEED_MAIL,
	REP_NEED_RCPT,
	REP_NESTED_MAIL,
	REP_SIZE_MAIL,
	REP_SIZE_DATA,
	REP_STORE_UNAVAIL,
	REP_UNKNOWN_USER,
	REP_RELAY_DENIED,
	REP_TOO_MANY_RCPTS,
	REP_BARE_NEWLINE,
	REP_NO_SPACE,
	REP_LOCAL_ERROR,
	REP_TLS_PIPELINED,
	REP_TLS_ACTIVE,
	REP_TLS_UNAVAIL,
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
	[REP_RELAY_DENIED] = { 550, "5.7.1", "Relay access denied",
	    "relay-denied" },
	/* RFC 5321 §4.5.3.1.10. */
	[REP_TOO_MANY_RCPTS] = { 452, "4.5.3", "Too many recipients",
	    "too-many-rcpts" },
	/* RFC 5321 §2.3.8; PRODUCT.md: refused at the end of DATA. */
	[REP_BARE_NEWLINE] = { 550, "5.5.2",
	    "Message contains bare CR or LF line endings", "bare-newline" },
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
};

struct smtp_session {
	struct smtp_session_link link;
	struct smtp_server *srv;
	struct msgtrkd *d;
	struct bufferevent *bev; /* the socket's, or the TLS filter over it */
	struct evbuffer *out; /* replies not yet handed on (session_flush) */
	struct smtp_line *rd;
	enum smtp_state state;
	char id[17]; /* log id, 16 hex digits */
	struct sockaddr_storage addr;
	char addrstr[INET6_ADDRSTRLEN];
	int greeted; /* EHLO or HELO done */
	int esmtp; /* EHLO (not HELO) */
	int tls; /* TLS active */
	int stopping; /* SIGTERM: close at the next command boundary */
	int dead; /* the connection is gone; free after the commit */
	int draining; /* CLOSING, FIN sent: reading and dropping input */
	int in_cb; /* inside a callback: defer the free */
	unsigned int ext; /* SMTP_EXT_* advertised */
	unsigned int errors;
	uint64_t commands;
	time_t close_deadline; /* CLOSING: give up flushing after this */
	time_t line_start; /* first byte of an unfinished command line */
	time_t data_start; /* the 354 */
	int timer_short; /* the idle timer was cut to a deadline */
	struct event *linger; /* CLOSING with TLS: flush check timer */
	char helo[SMTP_CMD_LINE_MAX];
	/* The transaction: NULL until MAIL. */
	struct queue_msg *msg;
	size_t rcpt_cap;
	uint64_t declared_size;
	int mtrk_has_timeout; /* MTRK= carried ":timeout" (0 is valid) */
	int eof; /* the client closed while its commit was in flight */
	/* DATA: the content and our Received: field, valid until the
	 * commit callback. */
	struct buf body;
	struct buf received;
};

static void session_pump(struct smtp_session *s);
static void session_readcb(struct bufferevent *bev, void *arg);
static void session_writecb(struct bufferevent *bev, void *arg);
static void session_eventcb(struct bufferevent *bev, short what, void *arg);

struct smtp_session_link *
smtp_session_link(struct smtp_session *s)
{
	return &s->link;
}

const struct sockaddr *
smtp_session_addr(const struct smtp_session *s)
{
	return (const struct sockaddr *)&s->addr;
}

static const char *
hostname(const struct smtp_session *s)
{
	return s->d->conf->hostname;
}

static int
smtp_timeout(const struct smtp_session *s)
{
	return (int)s->d->conf->smtp_timeout;
}

static void
set_timeout(struct smtp_session *s, int seconds)
{
	struct timeval tv = { seconds, 0 };

	if (seconds == 0)
		bufferevent_set_timeouts(s->bev, NULL, NULL);
	else
		bufferevent_set_timeouts(s->bev, &tv, &tv);
}

static void reply(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
reply(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;

	if (s->bev == NULL)
		return;
	va_start(ap, fmt);
	(void)evbuffer_add_vprintf(s->out, fmt, ap);
	va_end(ap);
	(void)evbuffer_add(s->out, "\r\n", 2);
}

/* Hands the replies made so far to the peer.  On a plaintext socket
 * whose bufferevent has nothing queued they are written at once: through
 * the bufferevent, each reply would cost an epoll_ctl to watch for
 * EV_WRITE and another to stop (19 of the ~64 system calls per message
 * in issue 5's count).  What the socket does not take, and everything
 * under TLS or while closing (whose end session_writecb sees), goes
 * through the bufferevent, after what it already holds. */
static void
session_flush(struct smtp_session *s)
{
	struct evbuffer *bout;
	evutil_socket_t fd;

	if (s->bev == NULL || evbuffer_get_length(s->out) == 0)
		return;
	bout = bufferevent_get_output(s->bev);
	if (!s->tls && s->state != SMTP_S_TLS && s->state != SMTP_S_CLOSING &&
	    evbuffer_get_length(bout) == 0 &&
	    (fd = bufferevent_getfd(s->bev)) >= 0)
		(void)evbuffer_write(s->out, fd); /* errors: see below */
	/* The bufferevent reports a write error through session_eventcb. */
	if (evbuffer_get_length(s->out) > 0)
		(void)evbuffer_add_buffer(bout, s->out);
}

static void
transaction_reset(struct smtp_session *s)
{
	queue_msg_free(s->msg);
	s->msg = NULL;
	s->rcpt_cap = 0;
	s->declared_size = 0;
	s->mtrk_has_timeout = 0;
	buf_reset(&s->body);
	buf_reset(&s->received);
}

/* Starts closing: the last reply (if any) is already queued; the session
 * is freed once it is written (session_after). */
static void
session_close(struct smtp_session *s, const char *reason)
{
	if (s->state == SMTP_S_CLOSING)
		return;
	s->state = SMTP_S_CLOSING;
	s->close_deadline = time(NULL) + smtp_timeout(s);
	log_info("%s smtp disconnect reason=%s commands=%" PRIu64, s->id,
	    reason, s->commands);
	if (s->bev != NULL) {
		bufferevent_disable(s->bev, EV_READ);
		/* Bound the flush of the last reply. */
		set_timeout(s, smtp_timeout(s));
	}
}

static void
session_destroy(struct smtp_session *s)
{
	smtp_server_session_gone(s->srv, s);
	if (s->linger != NULL)
		event_free(s->linger);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	evbuffer_free(s->out);
	smtp_line_free(s->rd);
	transaction_reset(s);
	free(s);
}

static void session_after(struct smtp_session *s);

static void
linger_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	session_after(arg);
}

/* 1 while the last reply is still on its way to the socket. */
static int
output_pending(struct smtp_session *s)
{
	struct bufferevent *under;

	if (s->bev == NULL)
		return 0;
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
		return 1; /* session_writecb comes */
	under = bufferevent_get_underlying(s->bev);
	if (under == NULL ||
	    evbuffer_get_length(bufferevent_get_output(under)) == 0 ||
	    time(NULL) > s->close_deadline)
		return 0;
	/* Under TLS: no callback tells when the socket took it. */
	if (s->linger == NULL &&
	    (s->linger = evtimer_new(
	         bufferevent_get_base(s->bev), linger_cb, s)) == NULL)
		return 0;
	{
		struct timeval tv = { 0, SMTP_LINGER_MS * 1000 };

		if (evtimer_add(s->linger, &tv) == -1)
			return 0;
	}
	return 1;
}

/* Frees s if it is done; the end of every entry point. */
/* Closing a socket with unread input makes the kernel send an RST, which
 * can destroy replies the client has not read yet (the 421 above all): a
 * client that pipelined past our limits must still read why it was
 * dropped.  So once the last reply is written: FIN (shutdown SHUT_WR),
 * then read and drop what still comes until EOF or SMTP_DRAIN_SECONDS (a
 * lingering close).  Under TLS the session closes as before.  Returns 1
 * if draining started. */
static int
session_drain(struct smtp_session *s)
{
	evutil_socket_t fd;
	struct evbuffer *in;

	if (s->tls || s->bev == NULL || (fd = bufferevent_getfd(s->bev)) < 0 ||
	    shutdown(fd, SHUT_WR) == -1)
		return 0;
	s->draining = 1;
	in = bufferevent_get_input(s->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	set_timeout(s, SMTP_DRAIN_SECONDS);
	bufferevent_enable(s->bev, EV_READ);
	return 1;
}

static void
session_after(struct smtp_session *s)
{
	if (s->in_cb > 0)
		return;
	if (!s->dead)
		session_flush(s);
	if (s->state == SMTP_S_COMMIT)
		return;
	if (s->dead)
		session_destroy(s);
	else if (s->state == SMTP_S_CLOSING && !s->draining &&
	    !output_pending(s) && !session_drain(s))
		session_destroy(s);
	/* draining: EOF, an error or the timeout ends it (session_lost) */
}

/* The connection is gone (EOF, error, timeout with nothing to say). */
static void
session_lost(struct smtp_session *s, const char *reason)
{
	if (s->state != SMTP_S_CLOSING)
		log_info("%s smtp disconnect reason=%s commands=%" PRIu64,
		    s->id, reason, s->commands);
	if (s->bev != NULL) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	if (s->state != SMTP_S_COMMIT)
		s->state = SMTP_S_CLOSING;
	s->dead = 1;
}

/* Writes a refusal, logs it, counts it; hangs up past SMTP_ERRORS_MAX
 * (Postfix: "421 4.7.0 %s Error: too many errors"). */
static void
reject(struct smtp_session *s, const struct smtp_reply *r)
{
	reply(s, "%d %s %s", r->code, r->status, r->text);
	log_info("%s smtp reject code=%d status=%s reason=%s", s->id, r->code,
	    r->status, r->name);
	if (++s->errors >= SMTP_ERRORS_MAX) {
		reply(s, "421 4.7.0 %s Error: too many errors", hostname(s));
		session_close(s, "errors");
	}
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

/* --- commands ------------------------------------------------------ */

static void
cmd_ehlo(struct smtp_session *s, const struct smtp_cmd *c)
{
	struct evbuffer *out = s->out;
	int ehlo = c->verb == SMTP_VERB_EHLO;

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
		evbuffer_add_printf(out,
		    "250-%s\r\n250-PIPELINING\r\n250-SIZE %" PRIu64
		    "\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
		    "250-DSN\r\n",
		    hostname(s), s->d->conf->max_message_size);
		if (s->d->tls_server != NULL && !s->tls)
			evbuffer_add_printf(
			    out, "250-MTRK\r\n250 STARTTLS\r\n");
		else
			evbuffer_add_printf(out, "250 MTRK\r\n");
	}
	{
		char h[SMTP_LOG_FIELD];

		log_info("%s smtp helo helo=%s verb=%s", s->id,
		    log_escape(h, sizeof(h), s->helo, strlen(s->helo)),
		    ehlo ? "EHLO" : "HELO");
	}
}

static void
cmd_mail(struct smtp_session *s, const struct smtp_cmd *c)
{
	const struct conf *cf = s->d->conf;
	struct queue_msg *m;
	char from[SMTP_LOG_FIELD], envid[SMTP_LOG_FIELD];

	if ((c->params & SMTP_PARAM_SIZE) && c->size > cf->max_message_size) {
		reject_rep(s, REP_SIZE_MAIL);
		return;
	}
	if ((c->params & SMTP_PARAM_MTRK) && queue_store_failed(s->d->queue)) {
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
	s->msg = m;
	s->rcpt_cap = 0;
	s->declared_size = (c->params & SMTP_PARAM_SIZE) ? c->size : 0;
	s->mtrk_has_timeout =
	    (c->params & SMTP_PARAM_MTRK) != 0 && c->mtrk.has_timeout;
	reply(s, "250 2.1.0 Ok");
	log_info("%s smtp mail from=<%s> size=%" PRIu64 " envid=%s mtrk=%s",
	    s->id, log_escape(from, sizeof(from), m->sender, strlen(m->sender)),
	    s->declared_size,
	    m->envid != NULL
	        ? log_escape(envid, sizeof(envid), m->envid, strlen(m->envid))
	        : "-",
	    m->mtrk ? "yes" : "no");
}

/* RFC 5321 §4.1.1.3: <Postmaster> without a domain is ours. */
static const char *
postmaster_domain(const struct conf *cf)
{
	return cf->n_local_domains > 0 ? cf->local_domains[0] : cf->hostname;
}

static void
cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *c)
{
	const struct conf *cf = s->d->conf;
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
	if (local && !c->path.is_postmaster &&
	    !delivery_local_known(s->d->delivery, addr)) {
		log_info("%s smtp rcpt to=<%s> result=unknown-user", s->id, to);
		reject_rep(s, REP_UNKNOWN_USER);
		return;
	}
	/* No open relay, ever: only relay_networks reach other domains. */
	if (!local &&
	    !conf_relay_allowed(cf, (const struct sockaddr *)&s->addr)) {
		log_info("%s smtp rcpt to=<%s> result=relay-denied", s->id, to);
		reject_rep(s, REP_RELAY_DENIED);
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

static void
cmd_data(struct smtp_session *s)
{
	uint64_t max = s->d->conf->max_message_size;

	if (smtp_line_data_begin(s->rd, max) == -1) {
		reject_rep(s, REP_LOCAL_ERROR);
		return;
	}
	buf_init(&s->body, max > SIZE_MAX ? SIZE_MAX : (size_t)max);
	s->state = SMTP_S_DATA;
	s->data_start = time(NULL);
	set_timeout(s, smtp_timeout(s));
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* RFC 3207 §4.2: "The server MUST discard any knowledge obtained from the
 * client, such as the argument to the EHLO command, which was not
 * obtained from the TLS negotiation itself." */
static void
session_tls_reset(struct smtp_session *s)
{
	transaction_reset(s);
	smtp_line_clear(s->rd);
	s->greeted = 0;
	s->esmtp = 0;
	s->ext = 0;
	s->helo[0] = '\0';
}

static void
cmd_starttls(struct smtp_session *s)
{
	struct bufferevent *tb;
	SSL *ssl;

	if (s->tls) {
		reject_rep(s, REP_TLS_ACTIVE);
		return;
	}
	if (s->d->tls_server == NULL || !s->esmtp) {
		reject_rep(s, REP_TLS_UNAVAIL);
		return;
	}
	/* At this point there must not be any pending plaintext
	 * (CVE-2011-0411): what followed STARTTLS in the same read would
	 * otherwise be executed as if it came over TLS. */
	if (smtp_line_pending(s->rd) != 0 ||
	    evbuffer_get_length(bufferevent_get_input(s->bev)) != 0) {
		smtp_line_clear(s->rd);
		evbuffer_drain(bufferevent_get_input(s->bev),
		    evbuffer_get_length(bufferevent_get_input(s->bev)));
		reject_rep(s, REP_TLS_PIPELINED);
		return;
	}
	if ((ssl = SSL_new(s->d->tls_server)) == NULL) {
		log_warnx("%s smtp starttls error=\"%s\"", s->id, tls_error());
		reject_rep(s, REP_LOCAL_ERROR);
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	session_flush(s);
	/* The reply sits in the socket bufferevent's output (or is written)
	 * ahead of anything the filter will write. */
	bufferevent_setwatermark(s->bev, EV_READ, 0, 0);
	tb = bufferevent_openssl_filter_new(bufferevent_get_base(s->bev),
	    s->bev, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tb == NULL) {
		SSL_free(ssl);
		log_warnx("%s smtp starttls error=filter", s->id);
		session_close(s, "tls-error");
		return;
	}
	session_tls_reset(s);
	s->bev = tb;
	s->state = SMTP_S_TLS;
	bufferevent_setcb(
	    tb, session_readcb, session_writecb, session_eventcb, s);
	bufferevent_setwatermark(tb, EV_READ, 0, SMTP_LINE_INPUT_MAX);
	set_timeout(s, smtp_timeout(s));
	bufferevent_enable(tb, EV_READ | EV_WRITE);
}

static void
tls_done(struct smtp_session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

	s->tls = 1;
	s->state = SMTP_S_CMD;
	log_info("%s smtp starttls version=%s cipher=%s", s->id,
	    ssl != NULL ? SSL_get_version(ssl) : "?",
	    ssl != NULL ? SSL_get_cipher_name(ssl) : "?");
}

/* One command line (without CRLF). */
static void
session_line(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_cmd *c;
	enum smtp_cmd_error e = SMTP_CMD_OK;
	int rc;

	/* struct smtp_cmd is several KiB: allocated per command so idle
	 * sessions stay small. */
	if ((c = malloc(sizeof(*c))) == NULL)
		fatal("smtp: malloc");
	s->commands++;
	rc = smtp_cmd_parse(line, len, s->ext, c, &e);
	/* Sequence first: MAIL before HELO, RCPT before MAIL, DATA before
	 * RCPT are 503 whatever their syntax (RFC 5321 §4.1.4). */
	switch (c->verb) {
	case SMTP_VERB_MAIL:
		if (!s->greeted) {
			reject_rep(s, REP_NEED_HELO);
			goto done;
		}
		if (s->msg != NULL) {
			reject_rep(s, REP_NESTED_MAIL);
			goto done;
		}
		break;
	case SMTP_VERB_RCPT:
		if (s->msg == NULL) {
			reject_rep(s, REP_NEED_MAIL);
			goto done;
		}
		break;
	case SMTP_VERB_DATA:
		if (s->msg == NULL) {
			reject_rep(s, REP_NEED_MAIL);
			goto done;
		}
		if (s->msg->nrcpt == 0) {
			reject_rep(s, REP_NEED_RCPT);
			goto done;
		}
		break;
	default:
		break;
	}
	if (rc == -1) {
		reject_cmd(s, e);
		goto done;
	}
	switch (c->verb) {
	case SMTP_VERB_EHLO:
	case SMTP_VERB_HELO:
		cmd_ehlo(s, c);
		break;
	case SMTP_VERB_MAIL:
		cmd_mail(s, c);
		break;
	case SMTP_VERB_RCPT:
		cmd_rcpt(s, c);
		break;
	case SMTP_VERB_DATA:
		cmd_data(s);
		break;
	case SMTP_VERB_RSET:
		transaction_reset(s);
		reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_VERB_NOOP:
		reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_VERB_VRFY:
		/* RFC 5321 §3.5.3: 252 when we will not verify. */
		reply(s,
		    "252 2.5.0 Cannot VRFY user, but will accept message "
		    "and attempt delivery");
		break;
	case SMTP_VERB_QUIT:
		reply(s, "221 2.0.0 Bye");
		session_close(s, "quit");
		break;
	case SMTP_VERB_STARTTLS:
		cmd_starttls(s);
		break;
	default:
		reject_cmd(s, SMTP_CMD_ERR_UNKNOWN_VERB);
		break;
	}
done:
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
	s->state = SMTP_S_CMD;
	if (rc == 0) {
		/* The queue owns m now. */
		if (!s->dead)
			reply(s, "250 2.0.0 Ok: queued as %s", m->qid);
		log_info("%s smtp queued qid=%s from=<%s> nrcpt=%zu "
		         "size=%" PRIu64,
		    s->id, m->qid,
		    log_escape(
		        from, sizeof(from), m->sender, strlen(m->sender)),
		    m->nrcpt, m->size);
		delivery_schedule(s->d->delivery, m);
	} else {
		log_warnx("%s smtp commit failed qid=%s error=\"%s\"", s->id,
		    m->qid, strerror(err));
		queue_msg_free(m);
		if (!s->dead)
			reject_rep(s,
			    (err == ENOSPC || err == EDQUOT || err == EFBIG)
			        ? REP_NO_SPACE
			        : REP_LOCAL_ERROR);
	}
	transaction_reset(s);
	if (s->dead) {
		s->state = SMTP_S_CLOSING;
		session_after(s);
		return;
	}
	s->in_cb++;
	if (s->state == SMTP_S_CMD)
		set_timeout(s, smtp_timeout(s));
	session_pump(s);
	if (s->eof && s->state != SMTP_S_CLOSING && s->state != SMTP_S_COMMIT)
		session_close(s, "eof");
	s->in_cb--;
	session_after(s);
}

static int
received_header(struct smtp_session *s, struct queue_msg *m, time_t now)
{
	struct date dt = { now, 0 };
	char date[DATE_MAX], lit[INET6_ADDRSTRLEN + 8];
	const char *with;

	if (date_format(&dt, date, sizeof(date)) == -1)
		return -1;
	if (s->addr.ss_family == AF_INET6)
		snprintf(lit, sizeof(lit), "IPv6:%s", s->addrstr);
	else
		snprintf(lit, sizeof(lit), "%s", s->addrstr);
	/* RFC 3848: ESMTPS with TLS, ESMTP after EHLO, SMTP after HELO. */
	with = s->tls ? "ESMTPS" : s->esmtp ? "ESMTP" : "SMTP";
	buf_init(&s->received, SMTP_RECEIVED_MAX);
	if (buf_addf(&s->received,
	        "Received: from %s ([%s])\r\n\tby %s (msgtrk) with %s id %s",
	        s->helo, lit, hostname(s), with, m->qid) == -1)
		return -1;
	if (m->nrcpt == 1 &&
	    buf_addf(&s->received, "\r\n\tfor <%s>", m->rcpts[0].addr) == -1)
		return -1;
	return buf_addf(&s->received, "; %s\r\n", date);
}

static void
data_end(struct smtp_session *s)
{
	const struct conf *cf = s->d->conf;
	const struct smtp_data_info *info = smtp_line_data_info(s->rd);
	struct queue_msg *m = s->msg;
	struct iovec iov[2];
	time_t now = time(NULL), keep;

	s->state = SMTP_S_CMD;
	set_timeout(s, smtp_timeout(s));
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
	queue_new_id(m->qid);
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
	if (received_header(s, m, now) == -1) {
		reject_rep(s, REP_LOCAL_ERROR);
		goto reset;
	}
	iov[0].iov_base = s->received.data;
	iov[0].iov_len = s->received.len;
	iov[1].iov_base = s->body.data != NULL ? s->body.data : (void *)"";
	iov[1].iov_len = s->body.len;
	s->state = SMTP_S_COMMIT;
	/* No read timeout while the queue works: the client waits for us. */
	set_timeout(s, 0);
	if (queue_submit(s->d->queue, m, iov, 2, NULL, commit_done, s) == -1) {
		int e = errno;

		s->state = SMTP_S_CMD;
		set_timeout(s, smtp_timeout(s));
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

/* Moves what the line reader can take from the bufferevent into it. */
static void
feed(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
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

/* Processes buffered input until it runs out, a commit or handshake
 * starts, the output is too full, or the session closes. */
static void
session_pump(struct smtp_session *s)
{
	const char *line;
	size_t len;
	enum smtp_line_error le;
	int rc;

	while (s->bev != NULL) {
		if (s->state == SMTP_S_CMD && (s->stopping || s->d->stopping)) {
			reply(s, "421 4.3.2 %s Service shutting down",
			    hostname(s));
			session_close(s, "shutdown");
			return;
		}
		if (s->state != SMTP_S_CMD && s->state != SMTP_S_DATA)
			return;
		if (evbuffer_get_length(s->out) > SMTP_OUT_HIGH)
			session_flush(s);
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) >
		    SMTP_OUT_HIGH)
			return; /* resumed by session_writecb */
		feed(s);
		if (s->state == SMTP_S_DATA) {
			rc = smtp_line_data(s->rd, &s->body, &le);
			if (rc == 1)
				data_end(s);
			else if (rc == -1) {
				reject_rep(s, REP_LOCAL_ERROR);
				session_close(s, "internal");
			} else if (evbuffer_get_length(
			               bufferevent_get_input(s->bev)) == 0)
				return;
			continue;
		}
		rc = smtp_line_next(s->rd, &line, &len, &le);
		if (rc != 0)
			s->line_start = 0; /* a line ended: the next starts */
		if (rc == 1)
			session_line(s, line, len);
		else if (rc == -1) {
			s->commands++;
			reject_cmd(s, smtp_line_cmd_error(le));
		} else if (evbuffer_get_length(bufferevent_get_input(s->bev)) ==
		    0)
			return;
	}
}

/* After input was processed: enforces the deadlines of smtp.h (see
 * SMTP_MIN_DATA_RATE) by shortening the idle timer that the bufferevent
 * restarts on every read, or, past a deadline, with 421 and a close. */
static void
session_deadline(struct smtp_session *s)
{
	time_t now, end, t = smtp_timeout(s);

	if (s->bev == NULL)
		return;
	if (s->state == SMTP_S_DATA) {
		end = s->data_start + t +
		    (time_t)(s->body.len / SMTP_MIN_DATA_RATE);
	} else if (s->state == SMTP_S_CMD && smtp_line_pending(s->rd) > 0) {
		if (s->line_start == 0)
			s->line_start = time(NULL);
		end = s->line_start + t;
	} else {
		s->line_start = 0;
		if (s->timer_short && s->state == SMTP_S_CMD)
			set_timeout(s, (int)t);
		s->timer_short = 0;
		return;
	}
	now = time(NULL);
	if (now >= end) {
		reply(s, "421 4.4.2 %s Error: timeout exceeded", hostname(s));
		session_close(s, "deadline");
	} else if (end - now < t) {
		set_timeout(s, (int)(end - now));
		s->timer_short = 1;
	}
}

static void
session_readcb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	if (s->draining) {
		struct evbuffer *in = bufferevent_get_input(bev);

		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	s->in_cb++;
	session_pump(s);
	if (!s->dead)
		session_deadline(s);
	s->in_cb--;
	session_after(s);
}

static void
session_writecb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	s->in_cb++;
	if (s->state == SMTP_S_CMD || s->state == SMTP_S_DATA)
		session_pump(s); /* the output drained: go on */
	s->in_cb--;
	session_after(s);
}

static void
session_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	s->in_cb++;
	if (what & BEV_EVENT_CONNECTED) {
		if (s->state == SMTP_S_TLS) {
			tls_done(s);
			session_pump(s);
		}
	} else if (what & BEV_EVENT_TIMEOUT) {
		/* A client that does not read its replies cannot be told:
		 * hang up. */
		if (s->state == SMTP_S_CLOSING || (what & BEV_EVENT_WRITING))
			session_lost(s, "timeout");
		else {
			reply(s, "421 4.4.2 %s Error: timeout exceeded",
			    hostname(s));
			session_close(s, "timeout");
		}
	} else if (what & BEV_EVENT_ERROR) {
		if (s->state == SMTP_S_TLS || s->tls) {
			log_info("%s smtp tls-error error=\"%s\"", s->id,
			    tls_error());
			session_lost(s, "tls-error");
		} else
			session_lost(s, "error");
	} else if (what & BEV_EVENT_EOF) {
		if (s->state == SMTP_S_COMMIT) {
			/* Answer the message first; what was pipelined
			 * behind it is still processed. */
			s->eof = 1;
			bufferevent_disable(s->bev, EV_READ);
		} else
			session_lost(s, "eof");
	}
	s->in_cb--;
	session_after(s);
}

/* --- life cycle ------------------------------------------------------ */

struct smtp_session *
smtp_session_new(struct smtp_server *srv, struct msgtrkd *d, evutil_socket_t fd,
    const struct sockaddr *sa, socklen_t salen)
{
	static uint32_t counter;
	struct smtp_session *s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		evutil_closesocket(fd);
		return NULL;
	}
	s->srv = srv;
	s->d = d;
	if (salen > sizeof(s->addr))
		salen = sizeof(s->addr);
	memcpy(&s->addr, sa, salen);
	net_host_text(sa, s->addrstr, sizeof(s->addrstr));
	snprintf(s->id, sizeof(s->id), "%08" PRIx32 "%08" PRIx32,
	    (uint32_t)time(NULL), ++counter);
	buf_init(&s->body, 0);
	buf_init(&s->received, 0);
	if ((s->rd = smtp_line_new(0)) == NULL ||
	    (s->out = evbuffer_new()) == NULL ||
	    (s->bev = bufferevent_socket_new(
	         d->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		smtp_line_free(s->rd);
		if (s->out != NULL)
			evbuffer_free(s->out);
		evutil_closesocket(fd);
		free(s);
		return NULL;
	}
	smtp_server_session_add(srv, s);
	s->state = SMTP_S_CMD;
	bufferevent_setcb(
	    s->bev, session_readcb, session_writecb, session_eventcb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SMTP_LINE_INPUT_MAX);
	set_timeout(s, smtp_timeout(s));
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	log_info("%s smtp connect addr=%s", s->id, s->addrstr);
	reply(s, "220 %s ESMTP msgtrk", hostname(s));
	session_flush(s);
	return s;
}

void
smtp_session_stop(struct smtp_session *s)
{
	s->stopping = 1;
	if (s->state == SMTP_S_CMD && s->bev != NULL) {
		reply(s, "421 4.3.2 %s Service shutting down", hostname(s));
		session_close(s, "shutdown");
		session_flush(s);
		/* Freed by session_writecb once written (or the timeout). */
	}
}

void
smtp_session_free(struct smtp_session *s)
{
	if (s->state == SMTP_S_COMMIT) {
		/* The queue still holds a pointer to s as its callback
		 * argument; main.c stops the queue first, so this does not
		 * happen.  Keep the message (the queue owns it). */
		s->msg = NULL;
	}
	session_destroy(s);
}
