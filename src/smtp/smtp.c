/*
 * smtp: msgtrkd's ESMTP listeners (through netio: caps, pacing, refusal,
 * TLS, lingering close) and each session's connection: it feeds the
 * session (smtp_session.c) what came, hands its replies on, applies
 * back-pressure and deadlines, and carries out STARTTLS and the close.
 *
 * Three listener sets, one netio each (its own caps): smtp_listen
 * (relay, port 25), submission_listen (587, STARTTLS) and
 * submissions_listen (465, implicit TLS: netio's NETIO_LISTEN_TLS).  A
 * session knows its set by its smtp_env (the mode).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "common/conf.h"
#include "common/log.h"
#include "common/net.h"
#include "common/netio.h"
#include "common/tls.h"
#include "msgtrk/smtp_line.h"
#include "smtp/smtp.h"
#include "smtp/smtp_session.h"

/* Input read from the socket ahead of the session's line reader. */
#define SMTP_READ_AHEAD 16384

/* The back-pressure below relies on netio's write callback. */
_Static_assert(SMTP_OUT_HIGH >= NETIO_OUTPUT_LIMIT_MIN,
    "SMTP_OUT_HIGH below NETIO_OUTPUT_LIMIT_MIN");

/* One client connection: the netio connection and the session on it. */
struct smtp_conn {
	struct smtp_server *srv;
	struct smtp_conn *prev, *next;
	struct netio_conn *c; /* NULL once closed or lost */
	struct smtp_session *s;
	int timeout; /* the idle timer as set, seconds */
	int running; /* inside conn_run() */
	int rerun; /* woken while running: run again */
};

/* One listener set: its netio and what its sessions share. */
struct smtp_set {
	struct smtp_server *srv;
	struct netio *net; /* NULL: no address configured */
	struct smtp_env env;
};

#define SMTP_SETS 3

struct smtp_server {
	const struct conf *conf;
	struct smtp_set set[SMTP_SETS]; /* by enum smtp_mode */
	struct smtp_conn *head;
	int stopping;
	struct smtp_server_stats stats;
};

static void conn_run(struct smtp_conn *sc);

static void
conn_destroy(struct smtp_conn *sc)
{
	struct smtp_server *srv = sc->srv;

	if (sc->prev != NULL)
		sc->prev->next = sc->next;
	else
		srv->head = sc->next;
	if (sc->next != NULL)
		sc->next->prev = sc->prev;
	if (sc->c != NULL)
		netio_conn_abort(sc->c);
	smtp_session_free(sc->s);
	free(sc);
}

static void
conn_set_timeout(struct smtp_conn *sc, int seconds)
{
	if (sc->c != NULL && seconds != sc->timeout) {
		netio_conn_set_timeout(sc->c, seconds);
		sc->timeout = seconds;
	}
}

/* The connection is gone (nothing more can be said): the session logs
 * the reason once. */
static void
conn_lost(struct smtp_conn *sc, const char *reason)
{
	smtp_session_lost(sc->s, reason);
	if (sc->c != NULL) {
		netio_conn_abort(sc->c);
		sc->c = NULL;
	}
}

/* Hands the session's replies to the peer. */
static void
conn_flush(struct smtp_conn *sc)
{
	struct evbuffer *out = smtp_session_output(sc->s);

	if (sc->c != NULL && evbuffer_get_length(out) > 0)
		(void)netio_conn_write_buffer(sc->c, out);
}

/* The last reply is flushed by netio, bounded by smtp_timeout, then the
 * lingering close: a client that pipelined past our limits still reads
 * why it was dropped. */
static void
conn_close(struct smtp_conn *sc)
{
	conn_flush(sc);
	if (sc->c != NULL) {
		netio_conn_close(sc->c, (int)sc->srv->conf->smtp_timeout);
		sc->c = NULL;
	}
}

static void
conn_starttls(struct smtp_conn *sc)
{
	conn_flush(sc); /* the 220, in plaintext, before the handshake */
	if (netio_conn_starttls(sc->c) == -1) {
		log_warnx("%s smtp starttls error=\"%s\"",
		    smtp_session_id(sc->s), strerror(errno));
		conn_lost(sc, "tls-error");
	}
}

/* After input: the session's deadlines shorten the idle timer, or, past
 * one, it answers 421 and closes. */
static void
conn_deadline(struct smtp_conn *sc)
{
	int t = smtp_session_deadline(sc->s, time(NULL));

	if (t == 0)
		conn_close(sc);
	else
		conn_set_timeout(sc, t);
}

/* Runs the session on what came and does what it asks, until it waits for
 * the client, the client's reading, the queue or a handshake.  May free
 * sc: the callers return right after. */
static void
conn_run(struct smtp_conn *sc)
{
	enum smtp_step step;

	if (sc->running) {
		sc->rerun = 1;
		return;
	}
	sc->running = 1;
	do {
		sc->rerun = 0;
		while (sc->c != NULL && !smtp_session_handshaking(sc->s)) {
			/* RFC 2920 §3.1: a client that does not read its
			 * replies is not read either, TLS or not (netio
			 * measures below the filter); its write callback
			 * resumes us. */
			if (!smtp_session_closing(sc->s) &&
			    netio_conn_output_len(sc->c) > SMTP_OUT_HIGH)
				break;
			step = smtp_session_run(sc->s, netio_conn_input(sc->c),
			    netio_conn_output_len(sc->c));
			conn_flush(sc);
			if (step == SMTP_STEP_WRITE &&
			    evbuffer_get_length(smtp_session_output(sc->s)) <=
			        SMTP_OUT_HIGH)
				continue; /* handed on: the check above */
			if (step == SMTP_STEP_READ)
				conn_deadline(sc);
			else if (step == SMTP_STEP_WAIT)
				/* The client waits for us: no timer. */
				conn_set_timeout(sc, 0);
			else if (step == SMTP_STEP_STARTTLS)
				conn_starttls(sc);
			else if (step == SMTP_STEP_CLOSE)
				conn_close(sc);
			break;
		}
	} while (sc->rerun);
	sc->running = 0;
	if (sc->c == NULL && !smtp_session_busy(sc->s))
		conn_destroy(sc);
}

static void
on_read(struct netio_conn *c, void *arg)
{
	(void)c;
	conn_run(arg);
}

static void
on_write(struct netio_conn *c, void *arg)
{
	(void)c;
	conn_run(arg); /* the output drained: go on */
}

/* The queue answered a commit. */
static void
on_wake(void *arg)
{
	conn_run(arg);
}

static void
on_event(struct netio_conn *c, enum netio_event ev, void *arg)
{
	struct smtp_conn *sc = arg;
	SSL *ssl;

	switch (ev) {
	case NETIO_TLS_READY:
		ssl = netio_conn_ssl(c);
		smtp_session_tls_ready(
		    sc->s, SSL_get_version(ssl), SSL_get_cipher_name(ssl));
		break;
	case NETIO_HANDSHAKE_TIMEOUT:
		/* PRODUCT.md: the handshake must be done smtp_timeout after
		 * STARTTLS; nothing can be said to the client now. */
		conn_lost(sc, "tls-timeout");
		break;
	case NETIO_TIMEOUT:
		smtp_session_timeout(sc->s);
		break;
	case NETIO_TIMEOUT_WRITE:
		/* A client that does not read its replies cannot be told:
		 * hang up. */
		conn_lost(sc, "timeout");
		break;
	case NETIO_TLS_ERROR:
		log_info("%s smtp tls-error error=\"%s\"",
		    smtp_session_id(sc->s), tls_error());
		conn_lost(sc, "tls-error");
		break;
	case NETIO_ERROR:
		conn_lost(sc, "error");
		break;
	case NETIO_EOF:
		if (smtp_session_eof(sc->s)) {
			/* A commit in flight: its reply comes first. */
			bufferevent_disable(netio_conn_bev(c), EV_READ);
			return;
		}
		/* The client may only have shut its side: what was
		 * answered and is still queued goes out. */
		if (netio_conn_output_len(c) > 0)
			conn_close(sc);
		else
			conn_lost(sc, "eof"); /* logged already */
		break;
	}
	conn_run(sc);
}

static const struct netio_conn_cb conn_cb = { on_read, on_write, on_event };

static void
on_accept(struct netio_conn *c, void *arg)
{
	static uint32_t counter;
	struct smtp_set *set = arg;
	struct smtp_server *srv = set->srv;
	struct smtp_conn *sc;
	char id[17];

	snprintf(id, sizeof(id), "%08" PRIx32 "%08" PRIx32,
	    (uint32_t)time(NULL), ++counter);
	if ((sc = calloc(1, sizeof(*sc))) == NULL ||
	    (sc->s = smtp_session_new(&set->env, netio_conn_addr(c),
	         sizeof(struct sockaddr_storage), id, on_wake, sc)) == NULL) {
		free(sc);
		netio_conn_abort(c);
		log_warnx("- smtp accept failed: out of memory");
		return;
	}
	sc->srv = srv;
	sc->c = c;
	srv->stats.sessions++;
	sc->next = srv->head;
	if (srv->head != NULL)
		srv->head->prev = sc;
	srv->head = sc;
	netio_conn_setcb(c, &conn_cb, sc);
	/* The line reader holds SMTP_LINE_INPUT_MAX; the connection reads
	 * at most one socket read (libevent's 16 KiB) ahead of it. */
	netio_conn_set_read_max(c, SMTP_READ_AHEAD);
	conn_set_timeout(sc, (int)srv->conf->smtp_timeout);
	smtp_session_greet(sc->s);
	conn_flush(sc);
}

/* Makes listener set mode and binds its count addresses. */
static int
set_open(struct smtp_server *s, struct event_base *base, SSL_CTX *tls,
    enum smtp_mode mode, const struct conf_addr *a, size_t count, char *err,
    size_t errsize)
{
	static const char *const names[SMTP_SETS] = { "smtp", "submission",
		"submissions" };
	const struct conf *conf = s->conf;
	struct smtp_set *set = &s->set[mode];
	struct netio_opts o;
	char busy[CONF_HOSTNAME_MAX + 64];
	size_t i;

	if (count == 0)
		return 0;
	if (mode == SMTP_MODE_SUBMISSIONS && tls == NULL) {
		snprintf(err, errsize,
		    "submissions_listen needs tls_cert_file and tls_key_file");
		return -1;
	}
	snprintf(busy, sizeof(busy),
	    "421 4.7.0 %s Error: too many connections\r\n", conf->hostname);
	memset(&o, 0, sizeof(o));
	o.name = names[mode];
	o.max_conns = SMTP_SESSIONS_MAX;
	o.max_per_addr = SMTP_SESSIONS_PER_ADDR_MAX;
	o.busy_line = busy;
	o.tls = tls;
	o.handshake_timeout = (int)conf->smtp_timeout;
	if ((set->net = netio_new(base, &o, on_accept, set)) == NULL) {
		snprintf(err, errsize, "smtp: out of memory");
		return -1;
	}
	/* Bound now (as root, ports 25, 465, 587), enabled by start. */
	if (mode != SMTP_MODE_SUBMISSIONS)
		return netio_listen_conf(set->net, a, count, err, errsize);
	for (i = 0; i < count; i++)
		if (netio_listen(set->net, (const struct sockaddr *)&a[i].ss,
		        a[i].len, NETIO_LISTEN_TLS, NULL, err, errsize) == -1)
			return -1;
	return 0;
}

struct smtp_server *
smtp_server_new(struct event_base *base, const struct conf *conf, SSL_CTX *tls,
    const struct smtp_hooks *hooks, void *hooks_arg, char *err, size_t errsize)
{
	struct smtp_server *s;
	int i;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errsize, "smtp: out of memory");
		return NULL;
	}
	s->conf = conf;
	for (i = 0; i < SMTP_SETS; i++) {
		s->set[i].srv = s;
		s->set[i].env.conf = conf;
		s->set[i].env.tls = tls != NULL;
		s->set[i].env.mode = (enum smtp_mode)i;
		s->set[i].env.hooks = hooks;
		s->set[i].env.hooks_arg = hooks_arg;
		s->set[i].env.stats = &s->stats;
	}
	if (set_open(s, base, tls, SMTP_MODE_RELAY, conf->smtp_listen,
	        conf->n_smtp_listen, err, errsize) == -1 ||
	    set_open(s, base, tls, SMTP_MODE_SUBMISSION,
	        conf->submission_listen, conf->n_submission_listen, err,
	        errsize) == -1 ||
	    set_open(s, base, tls, SMTP_MODE_SUBMISSIONS,
	        conf->submissions_listen, conf->n_submissions_listen, err,
	        errsize) == -1) {
		smtp_server_free(s);
		return NULL;
	}
	return s;
}

void
smtp_server_stats(const struct smtp_server *s, struct smtp_server_stats *out)
{
	int i;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return;
	*out = s->stats;
	for (i = 0; i < SMTP_SETS; i++)
		out->sessions_open += netio_count(s->set[i].net);
}

void
smtp_server_start(struct smtp_server *s)
{
	int i;

	if (s == NULL)
		return;
	for (i = 0; i < SMTP_SETS; i++)
		if (s->set[i].net != NULL)
			netio_start(s->set[i].net);
}

size_t
smtp_server_stop(struct smtp_server *s)
{
	struct smtp_conn *sc, *next;
	size_t n = 0;
	int i;

	if (s == NULL)
		return 0;
	if (!s->stopping) {
		s->stopping = 1;
		for (i = 0; i < SMTP_SETS; i++)
			if (s->set[i].net != NULL)
				netio_stop(s->set[i].net);
		for (sc = s->head; sc != NULL; sc = next) {
			next = sc->next;
			if (sc->c != NULL && netio_conn_handshaking(sc->c)) {
				/* Nothing can be said inside a handshake. */
				conn_lost(sc, "shutdown");
				conn_destroy(sc);
				continue;
			}
			smtp_session_stop(sc->s);
			conn_run(sc); /* may free sc */
		}
	}
	/* Connections open (netio's count, closing ones included), and
	 * sessions whose client left while their commit is in flight. */
	for (sc = s->head; sc != NULL; sc = sc->next)
		if (sc->c == NULL)
			n++;
	for (i = 0; i < SMTP_SETS; i++)
		if (s->set[i].net != NULL)
			n += netio_count(s->set[i].net);
	return n;
}

void
smtp_server_free(struct smtp_server *s)
{
	int i;

	if (s == NULL)
		return;
	while (s->head != NULL)
		conn_destroy(s->head); /* unlinks itself */
	for (i = 0; i < SMTP_SETS; i++)
		netio_free(s->set[i].net);
	free(s);
}
