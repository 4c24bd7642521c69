/*
 * relay: the outbound SMTP client (RFC 5321) and the LMTP client (RFC
 * 2033) on libevent bufferevents, with PIPELINING (RFC 2920) and STARTTLS
 * (RFC 3207), and the per-hop MTRK/DSN decisions of RFC 3885 §8.2 as
 * digested in spec/mtrk-rfc3885.md:
 *
 *   hop shows       MAIL                      RCPT           2xx means
 *   MTRK and DSN    RET ENVID MTRK=B:left     NOTIFY ORCPT   transferred
 *   DSN only        RET ENVID                 NOTIFY ORCPT   relayed 2.1.9
 *   MTRK only       ENVID MTRK=B:left         ORCPT          transferred
 *   neither/HELO    -                         -              relayed 2.1.9
 *
 * MTRK is sent only when the message came with it and the remaining
 * timeout (its :timeout, or mtrk_default_timeout, minus the seconds since
 * arrival) is above 0 (RFC 3885 §3.1); otherwise the hop counts as one
 * without MTRK.  "MTRK only" is our reading of the digest (§8.2
 * [DECISION]): ENVID is sent because MTRK needs it.  A message that came
 * with BODY=8BITMIME to a hop without 8BITMIME fails with 5.6.3 (RFC 6152
 * §3 lets us return it; we never downgrade).
 *
 * Hops are tried in order; each address of a hop in order.  A connection
 * that fails, times out or is refused before MAIL moves to the next
 * address; once MAIL is sent the outcome is the peer's.  STARTTLS per
 * smtp_tls_policy: opportunistic uses it when offered and, if the
 * handshake fails, reconnects to the same address without it; require
 * makes its absence a temporary failure and accepts any certificate
 * (encryption only, as Postfix's "encrypt"); verify also checks the
 * certificate (as Postfix's "verify"): its chain against
 * smtp_tls_ca_file or the system store, and its name against the host
 * we looked up or routed to (the MX host, or the routes file's host),
 * or the route's tls-name= (the only name an address literal has; a
 * literal without one cannot be verified).  A refused certificate moves
 * to the next address like any connection failure; when no address is
 * left the recipients are delayed with 4.7.5 (RFC 3463 "Cryptographic
 * failure"; Postfix's "Server certificate not verified" status) and
 * "TLS certificate verification failed: <OpenSSL's reason>" as the
 * reply, never sent in plaintext.
 *
 * Connection cache (as Postfix's smtp connection cache): a session whose
 * transaction ended in step (the final reply read, nothing pending) is
 * not closed.  It goes to the first delivery waiting for a slot to the
 * same hop, which sends its MAIL at once (RFC 5321 §3.3: a new
 * transaction may follow the end of the last one), or else into the
 * cache for RELAY_CACHE_IDLE seconds, holding its connection slot, for
 * the next delivery to that hop.  A cached session that turns out dead
 * (closed, or 421, before the reply to MAIL) is replaced by a new
 * connection at once, at no cost to the message.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/conf.h"
#include "common/log.h"
#include "common/tls.h"
#include "delivery/delivery_int.h"
#include "delivery/reply.h"
#include "dns/route.h"
#include "msgtrk/buf.h"
#include "msgtrk/mtrk.h"
#include "msgtrk/smtp_reply.h"
#include "msgtrk/str.h"
#include "queue/queue.h"

/* One command line: RFC 5321 §4.5.3.1.4 allows 512 octets, but MAIL and
 * RCPT with RFC 3461/3885 parameters may be longer (the extensions raise
 * the limit: ORCPT alone may be 500 octets, RFC 3461 §4.2). */
#define RELAY_CMD_MAX 2048
/* Body octets queued on the socket before reading the next piece. */
#define RELAY_BODY_HIGH (256 * 1024)
/* A certificate refused under smtp_tls_policy = verify: RFC 3463 X.7.5
 * "Cryptographic failure", temporary (the peer or our CAs may be fixed
 * before queue_lifetime); Postfix defers "Server certificate not
 * verified" with 4.7.5 too. */
#define RELAY_TLS_VERIFY_STATUS "4.7.5"

enum relay_state {
	RELAY_CONNECT,
	RELAY_GREETING,
	RELAY_EHLO,
	RELAY_HELO,
	RELAY_STARTTLS,
	RELAY_TLS,
	RELAY_CMDS, /* MAIL, RCPT..., DATA */
	RELAY_BODY, /* sending the body */
	RELAY_DOT, /* replies to the final "." */
	RELAY_QUIT,
};

struct relay_hop {
	char host[ROUTE_HOST_MAX + 1];
	int literal;
	char tls_name[DNS_NAME_MAX + 1]; /* the route's tls-name=, or "" */
	uint16_t port;
	size_t naddr;
	struct dns_addr addr[2 * DNS_ADDR_MAX];
};

struct relay {
	struct delivery_job *j;
	const struct delivery_deps *d;
	int lmtp;
	struct route_query *rq;
	struct relay_hop *hops;
	size_t nhops, hop, ai;
	char slot[ROUTE_HOST_MAX + 1]; /* the host whose slot we hold */
	int have_slot;
	struct slots_waiter wait; /* for a slot of hops[hop] */
	struct bufferevent *bev;
	struct smtp_reply_parser *p;
	enum relay_state st;
	unsigned int ext;
	int tls, notls;
	int mtrk_sent, dsn, mtrk_adv;
	/* Commands of the transaction: 0 MAIL, 1..nr RCPT, nr+1 DATA. */
	struct buf *cmds;
	size_t ncmd, sent, replied;
	int mail_ok, data_ok;
	/* The status of j->error when it says why the last address failed
	 * and that has one of its own ("4.7.5"), else NULL. */
	const char *error_status;
	int *ok; /* per recipient: RCPT accepted */
	size_t naccepted, ndot;
	int failed_all; /* set outcomes already for everyone */
	int in_read; /* relay_read() is running: relay_end() defers */
	int ended;
	time_t born; /* when the connection was opened */
	int reused; /* the connection came from the cache */
	int nocache; /* a cached one was dead: open a new one */
	unsigned int gen; /* counts relay_close(): relay_read() stops */
	/* The body, read off the loop a piece at a time (the first piece
	 * while MAIL, RCPT and DATA are on their way). */
	struct queue_body_reader *rd;
	struct buf piece;
	int reading; /* a read is in flight: relay_end() waits for it */
	int piece_ready; /* piece holds the next octets */
	int body_eof; /* every piece was read */
	int sending; /* past the 354: pieces go out as they come */
	int bol; /* the next octet starts a line (dot-stuffing) */
	char last; /* the last octet sent */
};

static void relay_connect(struct relay *rl);
static void relay_dial(struct relay *rl);
static void relay_granted(void *arg);
static void relay_read(struct bufferevent *bev, void *arg);
static void relay_event(struct bufferevent *bev, short what, void *arg);
static void relay_transaction(struct relay *rl);
static void relay_quit(struct relay *rl);
static void relay_fetch(struct relay *rl);
static void relay_nodelay(struct relay *rl);

static void
relay_close(struct relay *rl)
{
	rl->gen++;
	if (rl->bev != NULL) {
		bufferevent_free(rl->bev);
		rl->bev = NULL;
	}
	if (rl->have_slot) {
		slots_put(delivery_slots(rl->j->dl), rl->slot);
		rl->have_slot = 0;
	}
}

static void
relay_end(struct relay *rl)
{
	struct delivery_job *j = rl->j;
	size_t i;

	relay_close(rl);
	if (rl->in_read || rl->reading) {
		/* relay_read() or a body read still uses rl: it finishes
		 * the job. */
		rl->ended = 1;
		return;
	}
	route_cancel(rl->rq);
	slots_cancel(&rl->wait);
	queue_body_close(rl->rd);
	buf_reset(&rl->piece);
	for (i = 0; i < rl->ncmd; i++)
		buf_reset(&rl->cmds[i]);
	free(rl->cmds);
	free(rl->ok);
	free(rl->hops);
	smtp_reply_parser_free(rl->p);
	free(rl);
	j->priv = NULL;
	delivery_job_done(j);
}

static void
relay_abort(struct delivery_job *j)
{
	struct relay *rl = j->priv;

	j->aborted = 1;
	if (rl != NULL)
		relay_end(rl);
}

/*
 * Output.  What a relay sends is gathered in relay_out (loop thread only;
 * relay_flush() always empties it before returning) and written at once
 * by relay_flush(): on a plaintext socket whose output is empty, straight
 * to the socket, so a command or a small body costs one write and no
 * enabling and disabling of a write event (as netio does for the server
 * side); what the socket does not take, and everything under TLS, goes
 * through the bufferevent, which also reports a write error as an event.
 */
static struct evbuffer *relay_out;

static struct evbuffer *
relay_outbuf(void)
{
	if (relay_out == NULL && (relay_out = evbuffer_new()) == NULL)
		fatal("relay");
	return relay_out;
}

static void
relay_flush(struct relay *rl)
{
	struct evbuffer *out = bufferevent_get_output(rl->bev);
	evutil_socket_t fd;

	if (bufferevent_get_underlying(rl->bev) == NULL &&
	    evbuffer_get_length(out) == 0 &&
	    (fd = bufferevent_getfd(rl->bev)) >= 0)
		(void)evbuffer_write(relay_out, fd); /* errors: see above */
	if (evbuffer_get_length(relay_out) > 0 &&
	    evbuffer_add_buffer(out, relay_out) == -1) {
		log_warnx("%s delivery write failed", rl->j->m->qid);
		evbuffer_drain(relay_out, evbuffer_get_length(relay_out));
	}
}

/* Adds a command line (CRLF added) to what relay_flush() sends. */
static void
relay_queue(struct relay *rl, const char *line)
{
	struct evbuffer *o = relay_outbuf();

	if (evbuffer_add(o, line, strlen(line)) == -1 ||
	    evbuffer_add(o, "\r\n", 2) == -1)
		log_warnx("%s delivery write failed", rl->j->m->qid);
}

static void
relay_send(struct relay *rl, const char *line)
{
	relay_queue(rl, line);
	relay_flush(rl);
}

static void
relay_timeout(struct relay *rl, int secs)
{
	struct timeval tv = { secs, 0 };

	bufferevent_set_timeouts(rl->bev, &tv, &tv);
}

/* Continues rl, which holds or waited for a slot to hops[hop], on an
 * open session to that hop whose slot it takes over: its transaction
 * goes out at once. */
static void
relay_adopt(struct relay *rl, struct bufferevent *bev, int tls,
    unsigned int ext, time_t born)
{
	struct relay_hop *h = &rl->hops[rl->hop];

	log_debug("%s delivery reuse host=%s", rl->j->m->qid, h->host);
	str_copy(rl->slot, h->host, sizeof(rl->slot));
	rl->have_slot = 1;
	snprintf(
	    rl->j->remote_mta, sizeof(rl->j->remote_mta), "dns; %s", h->host);
	smtp_reply_parser_clear(rl->p);
	rl->bev = bev;
	rl->tls = tls;
	rl->ext = ext;
	rl->born = born;
	rl->reused = 1;
	bufferevent_setcb(bev, relay_read, NULL, relay_event, rl);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	relay_transaction(rl);
}

struct relay_match {
	uint16_t port;
	int lmtp;
};

static int
relay_waits_for(const struct slots_waiter *w, void *ctx)
{
	const struct relay_match *m = ctx;
	const struct relay *rl;

	if (w->cb != relay_granted)
		return 0;
	rl = w->arg;
	return rl->lmtp == m->lmtp && rl->hops[rl->hop].port == m->port;
}

/* The transaction ended in step: the session goes to a delivery waiting
 * for this hop, or into the cache; QUIT if it cannot be reused. */
static void
relay_finish(struct relay *rl)
{
	struct relay_hop *h = &rl->hops[rl->hop];
	struct relay_match m = { h->port, rl->lmtp };
	struct relay_cache *cache = delivery_relay_cache(rl->j->dl);
	struct relay_idle idle;
	struct relay *next;

	if (relay_cache_closed(cache) || !rl->have_slot ||
	    time(NULL) - rl->born >= RELAY_CACHE_LIFE ||
	    smtp_reply_pending(rl->p) != 0 ||
	    evbuffer_get_length(bufferevent_get_input(rl->bev)) != 0) {
		relay_quit(rl);
		return;
	}
	if ((next = slots_pass(delivery_slots(rl->j->dl), rl->slot,
	         relay_waits_for, &m)) != NULL) {
		relay_adopt(next, rl->bev, rl->tls, rl->ext, rl->born);
	} else {
		memset(&idle, 0, sizeof(idle));
		str_copy(idle.slot, rl->slot, sizeof(idle.slot));
		idle.port = h->port;
		idle.lmtp = rl->lmtp;
		idle.tls = rl->tls;
		idle.ext = rl->ext;
		idle.born = rl->born;
		idle.bev = rl->bev;
		if (relay_cache_put(cache, &idle) == -1) {
			relay_quit(rl);
			return;
		}
	}
	rl->bev = NULL;
	rl->have_slot = 0;
	relay_end(rl);
}

/* A cached session was dead before the reply to MAIL: nothing of the
 * message reached the peer, so a new connection carries it now. */
static void
relay_redial(struct relay *rl, const char *why)
{
	log_info("%s delivery reuse host=%s error=\"%s\"", rl->j->m->qid,
	    rl->hops[rl->hop].host, why);
	relay_close(rl);
	rl->reused = 0;
	rl->nocache = 1;
	relay_connect(rl);
}

/* The connection failed before the transaction: try the next address.
 * status: the RFC 3463 code that goes with why ("4.7.5"), or NULL. */
static void
relay_next_status(struct relay *rl, const char *why, const char *status)
{
	struct relay_hop *h = &rl->hops[rl->hop];

	snprintf(
	    rl->j->error, sizeof(rl->j->error), "%.100s: %s", h->host, why);
	rl->error_status = status;
	log_info("%s delivery connect host=%s error=\"%s\"", rl->j->m->qid,
	    h->host, why);
	relay_close(rl);
	rl->ai++;
	relay_connect(rl);
}

static void
relay_next(struct relay *rl, const char *why)
{
	relay_next_status(rl, why, NULL);
}

/* Sets dr's outcome from the peer's reply r, kept whole: "550 5.1.1
 * text", every line (reply.h). */
static void
relay_rcpt_reply(struct delivery_rcpt *dr, const struct smtp_reply_msg *r)
{
	char text[REPLY_TEXT_MAX + 1];
	size_t n = reply_format(r, text, sizeof(text));

	delivery_rcpt_set(dr, r->code, r->status, text, n);
}

/* Sets the outcome of every recipient not answered yet. */
static void
relay_all(struct relay *rl, int code, const char *status, const char *text,
    size_t n, int only_accepted)
{
	struct delivery_job *j = rl->j;
	size_t i;

	for (i = 0; i < j->nr; i++) {
		if (only_accepted ? !rl->ok[i] : j->r[i].code != 0)
			continue;
		delivery_rcpt_set(&j->r[i], code, status, text, n);
	}
}

/* relay_all() with the peer's reply r, kept whole. */
static void
relay_all_reply(
    struct relay *rl, const struct smtp_reply_msg *r, int only_accepted)
{
	char text[REPLY_TEXT_MAX + 1];
	size_t n = reply_format(r, text, sizeof(text));

	relay_all(rl, r->code, r->status, text, n, only_accepted);
}

static void
relay_quit(struct relay *rl)
{
	rl->st = RELAY_QUIT;
	relay_send(rl, "QUIT");
	relay_timeout(rl, DELIVERY_TIMEOUT_CMD);
}

static void
relay_connect(struct relay *rl)
{
	struct delivery_job *j = rl->j;
	struct relay_hop *h;
	struct relay_idle c;

	for (;;) {
		if (rl->hop >= rl->nhops) {
			if (j->error[0] == '\0')
				snprintf(j->error, sizeof(j->error),
				    "no host answered");
			else if (rl->error_status != NULL)
				/* A temporary failure with its own status
				 * (and j->error as the reply). */
				relay_all(rl, 451, rl->error_status, j->error,
				    strlen(j->error), 0);
			relay_end(rl);
			return;
		}
		h = &rl->hops[rl->hop];
		if (rl->ai >= h->naddr) {
			rl->hop++;
			rl->ai = 0;
			rl->notls = 0;
			continue;
		}
		break;
	}
	if (!rl->nocache &&
	    relay_cache_take(delivery_relay_cache(j->dl), h->host, h->port,
	        rl->lmtp, &c) == 1) {
		relay_adopt(rl, c.bev, c.tls, c.ext, c.born);
		return;
	}
	if (slots_get(delivery_slots(j->dl), h->host) == -1 &&
	    (!relay_cache_evict(delivery_relay_cache(j->dl), h->host) ||
	        slots_get(delivery_slots(j->dl), h->host) == -1)) {
		/* Over the bounds: wait in line for a slot (the attempt
		 * stays in flight; SIGTERM withdraws it). */
		log_debug("%s delivery wait host=%s", j->m->qid, h->host);
		if (slots_wait(delivery_slots(j->dl), &rl->wait, h->host,
		        relay_granted, rl) == -1) {
			snprintf(j->error, sizeof(j->error),
			    "%.200s: too many connections", h->host);
			relay_end(rl);
		}
		return;
	}
	relay_dial(rl);
}

/* A slot for hops[hop] came free. */
static void
relay_granted(void *arg)
{
	relay_dial(arg);
}

/* Connects to address ai of hops[hop], whose slot the caller took. */
static void
relay_dial(struct relay *rl)
{
	struct delivery_job *j = rl->j;
	struct relay_hop *h = &rl->hops[rl->hop];
	struct sockaddr_storage ss;
	socklen_t len;

	str_copy(rl->slot, h->host, sizeof(rl->slot));
	rl->have_slot = 1;
	snprintf(j->remote_mta, sizeof(j->remote_mta), "dns; %s", h->host);
	memset(&ss, 0, sizeof(ss));
	if (h->addr[rl->ai].family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = h->addr[rl->ai].u.v6;
		s6->sin6_port = htons(h->port);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr = h->addr[rl->ai].u.v4;
		s4->sin_port = htons(h->port);
		len = sizeof(*s4);
	}
	smtp_reply_parser_clear(rl->p);
	rl->tls = 0;
	rl->ext = 0;
	rl->born = time(NULL);
	rl->st = RELAY_CONNECT;
	rl->bev =
	    bufferevent_socket_new(rl->d->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (rl->bev == NULL) {
		relay_next(rl, "cannot create a socket");
		return;
	}
	bufferevent_setcb(rl->bev, relay_read, NULL, relay_event, rl);
	relay_timeout(rl, DELIVERY_TIMEOUT_GREETING);
	if (bufferevent_enable(rl->bev, EV_READ | EV_WRITE) == -1 ||
	    bufferevent_socket_connect(
	        rl->bev, (struct sockaddr *)&ss, (int)len) == -1) {
		relay_next(rl, "connect failed");
		return;
	}
	relay_nodelay(rl);
}

/* Each command group and each body piece is written at once
 * (relay_flush), so Nagle's algorithm only delays: a piece written while
 * the last one is unacknowledged would wait for the peer's delayed ACK
 * (up to 40 ms on Linux), a whole transaction for nothing. */
static void
relay_nodelay(struct relay *rl)
{
	evutil_socket_t fd = bufferevent_getfd(rl->bev);
	int on = 1;

	if (fd >= 0 &&
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1)
		log_debug(
		    "%s delivery nodelay: %s", rl->j->m->qid, strerror(errno));
}

static void
relay_ehlo(struct relay *rl)
{
	char line[CONF_HOSTNAME_MAX + 8];

	snprintf(line, sizeof(line), "%s %s", rl->lmtp ? "LHLO" : "EHLO",
	    rl->d->conf->hostname);
	relay_send(rl, line);
	rl->st = RELAY_EHLO;
	relay_timeout(rl, DELIVERY_TIMEOUT_CMD);
}

static void
relay_notify(struct buf *b, uint8_t n)
{
	const char *sep = "";

	buf_adds(b, " NOTIFY=");
	if (n & QUEUE_NOTIFY_NEVER) {
		buf_adds(b, "NEVER");
		return;
	}
	if (n & QUEUE_NOTIFY_SUCCESS) {
		buf_adds(b, "SUCCESS");
		sep = ",";
	}
	if (n & QUEUE_NOTIFY_FAILURE) {
		buf_addf(b, "%sFAILURE", sep);
		sep = ",";
	}
	if (n & QUEUE_NOTIFY_DELAY)
		buf_addf(b, "%sDELAY", sep);
}

/* Builds MAIL, the RCPTs and DATA, and sends them (all at once with
 * PIPELINING, RFC 2920 §3.1; else the first). */
static void
relay_transaction(struct relay *rl)
{
	struct delivery_job *j = rl->j;
	const struct queue_msg *m = j->m;
	const struct conf *c = rl->d->conf;
	const struct queue_rcpt *qr;
	struct buf *b;
	long left = 0;
	size_t i;

	rl->dsn = (rl->ext & SMTP_EHLO_DSN) != 0;
	rl->mtrk_adv = (rl->ext & SMTP_EHLO_MTRK) != 0;
	rl->mtrk_sent = 0;
	if (m->body_8bit && !(rl->ext & SMTP_EHLO_8BITMIME)) {
		static const char t[] = "8-bit message and the next hop has no "
		                        "8BITMIME (RFC 6152 §3)";

		relay_all(rl, 554, "5.6.3", t, sizeof(t) - 1, 0);
		rl->failed_all = 1;
		relay_quit(rl);
		return;
	}
	/* Again after a dead cached session: start from scratch. */
	for (i = 0; i < rl->ncmd; i++)
		buf_reset(&rl->cmds[i]);
	free(rl->cmds);
	free(rl->ok);
	rl->naccepted = rl->ndot = 0;
	rl->mail_ok = rl->data_ok = 0;
	rl->ncmd = j->nr + 2;
	if ((rl->cmds = calloc(rl->ncmd, sizeof(*rl->cmds))) == NULL ||
	    (rl->ok = calloc(j->nr, sizeof(*rl->ok))) == NULL)
		fatal("relay");
	for (i = 0; i < rl->ncmd; i++)
		buf_init(&rl->cmds[i], RELAY_CMD_MAX);
	b = &rl->cmds[0];
	buf_addf(b, "MAIL FROM:<%s>", m->sender);
	if (m->mtrk && rl->mtrk_adv) {
		/* An explicit ":0" is a timeout (already over), not
		 * "none": MTRK is then dropped (RFC 3885 §3.3). */
		left = (long)(m->mtrk_has_timeout ? (time_t)m->mtrk_timeout
		                                  : c->mtrk_default_timeout) -
		    (long)(time(NULL) - m->arrival);
		if (left > (long)MTRK_TIMEOUT_MAX)
			left = (long)MTRK_TIMEOUT_MAX;
		if (left > 0 && m->envid_raw != NULL)
			rl->mtrk_sent = 1;
	}
	if ((rl->dsn || rl->mtrk_sent) && m->envid_raw != NULL)
		buf_addf(b, " ENVID=%s", m->envid_raw);
	if (rl->dsn && m->ret != QUEUE_RET_NONE)
		buf_adds(
		    b, m->ret == QUEUE_RET_FULL ? " RET=FULL" : " RET=HDRS");
	if (rl->mtrk_sent) {
		buf_adds(b, " ");
		if (mtrk_param_format(
		        b, m->certifier, 1, (unsigned long)left) == -1)
			rl->mtrk_sent = 0;
	}
	if (rl->ext & SMTP_EHLO_SIZE)
		buf_addf(b, " SIZE=%llu", (unsigned long long)m->size);
	if (m->body_8bit)
		buf_adds(b, " BODY=8BITMIME");
	for (i = 0; i < j->nr; i++) {
		qr = &m->rcpts[j->r[i].idx];
		b = &rl->cmds[1 + i];
		buf_addf(b, "RCPT TO:<%s>", j->r[i].addr);
		if (rl->dsn && qr->notify != 0)
			relay_notify(b, qr->notify);
		if ((rl->dsn || rl->mtrk_sent) && qr->orcpt_raw != NULL)
			buf_addf(b, " ORCPT=%s", qr->orcpt_raw);
	}
	buf_adds(&rl->cmds[rl->ncmd - 1], "DATA");
	relay_fetch(rl); /* the first piece, while the commands go */
	rl->st = RELAY_CMDS;
	rl->sent = rl->replied = 0;
	do {
		relay_queue(rl, buf_cstr(&rl->cmds[rl->sent]));
		rl->sent++;
	} while ((rl->ext & SMTP_EHLO_PIPELINING) && rl->sent < rl->ncmd);
	relay_flush(rl);
	relay_timeout(rl, DELIVERY_TIMEOUT_CMD);
}

/* --- the body ----------------------------------------------------------
 *
 * The body is read from the journal off the loop (queue_body_read), one
 * piece of at most QUEUE_CHUNK_SIZE at a time, dot-stuffed (RFC 5321
 * §4.5.2) into the socket's output, and the next piece is read only once
 * the output has drained below RELAY_BODY_HIGH: a message is never held
 * whole, whatever its size.  The first piece is read while MAIL, RCPT and
 * DATA are on their way, so a small message costs no extra wait.
 */

static void relay_piece(void *arg, int rc, int err);
static void relay_pump(struct relay *rl);

/* Reads the next piece unless one is in hand, on its way, or the last. */
static void
relay_fetch(struct relay *rl)
{
	struct queue *q = rl->d->queue;

	if (rl->reading || rl->piece_ready || rl->body_eof)
		return;
	if (rl->rd == NULL && (rl->rd = queue_body_open(q, rl->j->m)) == NULL) {
		relay_piece(rl, -1, errno);
		return;
	}
	rl->reading = 1;
	if (queue_body_read(q, rl->rd, &rl->piece, relay_piece, rl) == -1) {
		rl->reading = 0;
		relay_piece(rl, -1, errno);
	}
}

static void
relay_piece(void *arg, int rc, int err)
{
	struct relay *rl = arg;

	rl->reading = 0;
	if (rl->ended) {
		relay_end(rl); /* deferred while the read was in flight */
		return;
	}
	if (rc == 1) {
		rl->piece_ready = 1;
		/* The last piece: the final "." goes with it, and no read
		 * is made to learn that nothing follows. */
		if (queue_body_done(rl->rd))
			rl->body_eof = 1;
	} else if (rc == 0)
		rl->body_eof = 1;
	else {
		snprintf(rl->j->error, sizeof(rl->j->error),
		    "cannot read the queued body: %s", strerror(err));
		rl->body_eof = -1;
	}
	if (rl->sending)
		relay_pump(rl);
}

/* Appends n octets dot-stuffed to out; rl->bol carries the line state
 * from one piece to the next.  The octets between two lines that start
 * with "." go in one run. */
static int
relay_stuff(struct relay *rl, struct evbuffer *out, const char *s, size_t n)
{
	const char *e = s + n, *p = s, *nl;

	if (n == 0)
		return 0;
	while (p < e) {
		if (rl->bol && *p == '.') {
			/* The run so far, then the extra ".": the line's own
			 * "." starts the next run. */
			if ((p > s &&
			        evbuffer_add(out, s, (size_t)(p - s)) == -1) ||
			    evbuffer_add(out, ".", 1) == -1)
				return -1;
			s = p;
		}
		nl = memchr(p, '\n', (size_t)(e - p));
		rl->bol = nl != NULL;
		p = nl != NULL ? nl + 1 : e;
	}
	if (evbuffer_add(out, s, (size_t)(e - s)) == -1)
		return -1;
	rl->last = e[-1];
	return 0;
}

static void
relay_write(struct bufferevent *bev, void *arg)
{
	struct relay *rl = arg;

	(void)bev;
	if (rl->sending)
		relay_pump(rl);
}

/* Moves the body to the socket as pieces come; then the final ".". */
static void
relay_pump(struct relay *rl)
{
	struct evbuffer *out = bufferevent_get_output(rl->bev);
	struct evbuffer *o = relay_outbuf();

	if (rl->body_eof == -1) {
		relay_end(rl); /* temporary failure: j->error */
		return;
	}
	if (rl->piece_ready) {
		if (relay_stuff(rl, o, rl->piece.data, rl->piece.len) == -1) {
			evbuffer_drain(o, evbuffer_get_length(o));
			snprintf(rl->j->error, sizeof(rl->j->error),
			    "out of memory sending the body");
			relay_end(rl);
			return;
		}
		rl->piece_ready = 0;
		buf_clear(&rl->piece);
	}
	if (!rl->body_eof) {
		relay_flush(rl);
		if (evbuffer_get_length(out) < RELAY_BODY_HIGH)
			relay_fetch(rl);
		return; /* relay_piece or relay_write comes back */
	}
	/* The end: a last line without CRLF gets one, then "." CRLF, in
	 * the same write as the last piece. */
	if ((rl->last != '\n' && rl->last != '\0' &&
	        evbuffer_add(o, "\r\n", 2) == -1) ||
	    evbuffer_add(o, ".\r\n", 3) == -1) {
		evbuffer_drain(o, evbuffer_get_length(o));
		relay_end(rl);
		return;
	}
	relay_flush(rl);
	rl->sending = 0;
	bufferevent_setcb(rl->bev, relay_read, NULL, relay_event, rl);
	rl->st = RELAY_DOT;
	rl->ndot = 0;
	relay_timeout(rl, DELIVERY_TIMEOUT_DATA_END);
}

/* The 354 came: the body goes out. */
static void
relay_body(struct relay *rl)
{
	rl->sending = 1;
	rl->st = RELAY_BODY;
	bufferevent_setcb(rl->bev, relay_read, relay_write, relay_event, rl);
	bufferevent_setwatermark(rl->bev, EV_WRITE, RELAY_BODY_HIGH / 4, 0);
	relay_timeout(rl, DELIVERY_TIMEOUT_DATA_BLOCK);
	relay_pump(rl);
}

/* A reply to the transaction's commands, in order. */
static void
relay_cmd_reply(struct relay *rl, const struct smtp_reply_msg *r)
{
	struct delivery_job *j = rl->j;
	size_t k = rl->replied++;

	if (k == 0 && rl->reused && r->code == 421) {
		relay_redial(rl, "421 before MAIL");
		return;
	}
	if (k == 0) {
		rl->mail_ok = r->code / 100 == 2;
		if (!rl->mail_ok)
			relay_all_reply(rl, r, 0);
	} else if (k <= j->nr) {
		if (rl->mail_ok && r->code / 100 == 2) {
			rl->ok[k - 1] = 1;
			rl->naccepted++;
		} else if (rl->mail_ok) {
			relay_rcpt_reply(&j->r[k - 1], r);
		}
	} else {
		/* DATA: 354, or a refusal (RFC 2920 §3.1: no valid
		 * recipient). */
		rl->data_ok = r->code == 354;
		if (rl->data_ok && rl->naccepted == 0) {
			/* Pipelined DATA accepted with no recipient: send an
			 * empty message to get out of it. */
			relay_send(rl, ".");
			rl->st = RELAY_DOT;
			rl->ndot = 0;
			relay_timeout(rl, DELIVERY_TIMEOUT_DATA_END);
			return;
		}
		if (!rl->data_ok) {
			if (rl->mail_ok)
				relay_all_reply(rl, r, 1);
			relay_quit(rl);
			return;
		}
		relay_body(rl);
		return;
	}
	if (!(rl->ext & SMTP_EHLO_PIPELINING)) {
		if (!rl->mail_ok ||
		    (rl->sent == rl->ncmd - 1 && rl->naccepted == 0)) {
			relay_quit(rl);
			return;
		}
		relay_send(rl, buf_cstr(&rl->cmds[rl->sent]));
		rl->sent++;
		relay_timeout(rl,
		    rl->sent == rl->ncmd ? DELIVERY_TIMEOUT_DATA_INIT
		                         : DELIVERY_TIMEOUT_CMD);
	}
}

/* A reply after the final ".": one for the transaction (SMTP), or one
 * per accepted recipient in order (LMTP, RFC 2033 §4.2). */
static void
relay_dot_reply(struct relay *rl, const struct smtp_reply_msg *r)
{
	struct delivery_job *j = rl->j;
	size_t i, n = 0;

	if (rl->naccepted == 0) {
		relay_quit(rl);
		return;
	}
	for (i = 0; i < j->nr; i++) {
		if (!rl->ok[i])
			continue;
		if (rl->lmtp && n++ != rl->ndot)
			continue;
		relay_rcpt_reply(&j->r[i], r);
		if (r->code / 100 != 2)
			continue;
		if (rl->lmtp)
			j->r[i].action = rl->mtrk_adv ? STORE_ACTION_TRANSFERRED
			                              : STORE_ACTION_DELIVERED;
		else
			j->r[i].action = rl->mtrk_sent
			    ? STORE_ACTION_TRANSFERRED
			    : STORE_ACTION_RELAYED;
		if (j->r[i].action == STORE_ACTION_RELAYED)
			str_copy(
			    j->r[i].status, "2.1.9", sizeof(j->r[i].status));
		else
			str_copy(
			    j->r[i].status, "2.0.0", sizeof(j->r[i].status));
		/* A DSN hop takes over the DSN duties (RFC 3461 §5.2.2). */
		j->r[i].dsn_passed = rl->dsn;
	}
	rl->ndot++;
	if (!rl->lmtp || rl->ndot == rl->naccepted)
		relay_finish(rl);
}

/* The name the certificate of hops[hop] must carry: the route's
 * tls-name, else the host we looked up or routed to; NULL for an address
 * literal without tls-name. */
static const char *
relay_tls_name(const struct relay_hop *h)
{
	if (h->tls_name[0] != '\0')
		return h->tls_name;
	return h->literal ? NULL : h->host;
}

static void
relay_tls(struct relay *rl)
{
	struct relay_hop *h = &rl->hops[rl->hop];
	const char *name = relay_tls_name(h);
	int verify = rl->d->conf->smtp_tls_policy == CONF_TLS_VERIFY;
	struct bufferevent *f;
	SSL *ssl;

	/* RFC 3207 §4.2 / CVE-2011-0411: nothing may follow the 220 in
	 * plaintext. */
	if (smtp_reply_pending(rl->p) != 0 ||
	    evbuffer_get_length(bufferevent_get_input(rl->bev)) != 0) {
		relay_next(rl, "data after the STARTTLS reply");
		return;
	}
	if (verify && name == NULL) {
		relay_next_status(rl,
		    "TLS certificate verification failed: no name to verify "
		    "for an address literal (add tls-name= to the route)",
		    RELAY_TLS_VERIFY_STATUS);
		return;
	}
	if ((ssl = SSL_new(rl->d->tls_client)) == NULL) {
		relay_next(rl, "cannot start TLS");
		return;
	}
	/* The context may verify (the MTQP client shares it): the policy
	 * decides per connection. */
	SSL_set_verify(ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	if (name != NULL && tls_client_expect(ssl, name) == -1) {
		SSL_free(ssl);
		relay_next(rl, "cannot start TLS");
		return;
	}
	f = bufferevent_openssl_filter_new(rl->d->base, rl->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (f == NULL) {
		relay_next(rl, "cannot start TLS");
		return;
	}
	rl->bev = f;
	rl->st = RELAY_TLS;
	bufferevent_setcb(f, relay_read, NULL, relay_event, rl);
	relay_timeout(rl, DELIVERY_TIMEOUT_CMD);
	bufferevent_enable(f, EV_READ | EV_WRITE);
}

static void
relay_after_ehlo(struct relay *rl)
{
	enum conf_tls_policy pol = rl->d->conf->smtp_tls_policy;

	if (!rl->lmtp && !rl->tls && pol != CONF_TLS_NONE &&
	    (rl->ext & SMTP_EHLO_STARTTLS) && !rl->notls &&
	    rl->d->tls_client != NULL) {
		relay_send(rl, "STARTTLS");
		rl->st = RELAY_STARTTLS;
		return;
	}
	if (!rl->lmtp && !rl->tls &&
	    (pol == CONF_TLS_REQUIRE || pol == CONF_TLS_VERIFY)) {
		relay_next(rl, "TLS required and not available");
		return;
	}
	relay_transaction(rl);
}

static void
relay_reply(struct relay *rl, const struct smtp_reply_msg *r)
{
	struct smtp_reply_ehlo ehlo;
	char why[300];

	switch (rl->st) {
	case RELAY_CONNECT:
	case RELAY_GREETING:
		if (r->code / 100 != 2) {
			snprintf(why, sizeof(why), "greeting %d", r->code);
			relay_next(rl, why);
			return;
		}
		relay_ehlo(rl);
		return;
	case RELAY_EHLO:
		if (smtp_reply_ehlo(r, &ehlo) == 0) {
			rl->ext = ehlo.ext;
			relay_after_ehlo(rl);
			return;
		}
		if (r->code / 100 == 5 && !rl->lmtp) {
			char line[CONF_HOSTNAME_MAX + 8];

			/* RFC 5321 §3.2: fall back to HELO. */
			snprintf(line, sizeof(line), "HELO %s",
			    rl->d->conf->hostname);
			relay_send(rl, line);
			rl->st = RELAY_HELO;
			return;
		}
		snprintf(why, sizeof(why), "%s refused: %d",
		    rl->lmtp ? "LHLO" : "EHLO", r->code);
		relay_next(rl, why);
		return;
	case RELAY_HELO:
		if (r->code / 100 != 2) {
			snprintf(why, sizeof(why), "HELO refused: %d", r->code);
			relay_next(rl, why);
			return;
		}
		rl->ext = 0;
		relay_after_ehlo(rl);
		return;
	case RELAY_STARTTLS:
		if (r->code == 220) {
			relay_tls(rl);
			return;
		}
		/* Refused: go on in plaintext unless TLS is required. */
		rl->notls = 1;
		relay_after_ehlo(rl);
		return;
	case RELAY_TLS:
		return;
	case RELAY_CMDS:
		relay_cmd_reply(rl, r);
		return;
	case RELAY_BODY:
		/* A reply before the end of the body: the peer gave up on
		 * the transaction (RFC 5321 §4.2.5 wants one after the "."
		 * only), and the connection cannot go on. */
		if (rl->mail_ok)
			relay_all(
			    rl, r->code, r->status, r->text, r->text_len, 1);
		relay_end(rl);
		return;
	case RELAY_DOT:
		relay_dot_reply(rl, r);
		return;
	case RELAY_QUIT:
		relay_end(rl);
		return;
	}
}

static void
relay_read(struct bufferevent *bev, void *arg)
{
	struct relay *rl = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	const struct smtp_reply_msg *r;
	enum smtp_reply_error e;
	unsigned char tmp[4096];
	unsigned int gen = rl->gen;
	size_t room, n;
	int rc;

	rl->in_read = 1;
	for (;;) {
		room = smtp_reply_room(rl->p);
		n = evbuffer_get_length(in);
		if (n > room)
			n = room;
		if (n > sizeof(tmp))
			n = sizeof(tmp);
		if (n > 0) {
			evbuffer_remove(in, tmp, n);
			if (smtp_reply_push(rl->p, tmp, n) == -1)
				fatal("relay: reply parser");
		}
		rc = smtp_reply_next(rl->p, &r, &e);
		if (rc == 0 && n == 0)
			break;
		if (rc == 0)
			continue;
		if (rc == -1) {
			snprintf(rl->j->error, sizeof(rl->j->error),
			    "unparsable reply: %s", smtp_reply_error_name(e));
			if (rl->st < RELAY_CMDS)
				relay_next(rl, rl->j->error);
			else
				relay_end(rl);
			break;
		}
		relay_reply(rl, r);
		/* The relay may have moved on (another connection, TLS,
		 * the end): this input is no longer its. */
		if (rl->ended || rl->gen != gen || rl->bev != bev ||
		    rl->st == RELAY_TLS)
			break;
	}
	rl->in_read = 0;
	if (rl->ended)
		relay_end(rl);
}

/* During the handshake under verify: 1 with why set if the peer's
 * certificate was refused (OpenSSL's reason; for a name, the name
 * expected), else 0. */
static int
relay_tls_refused(struct relay *rl, char *why, size_t whysize)
{
	const char *name = relay_tls_name(&rl->hops[rl->hop]);
	SSL *ssl;
	long v;

	if (rl->d->conf->smtp_tls_policy != CONF_TLS_VERIFY ||
	    (ssl = bufferevent_openssl_get_ssl(rl->bev)) == NULL ||
	    (v = SSL_get_verify_result(ssl)) == X509_V_OK)
		return 0;
	(void)tls_error(); /* the same, from the error queue: drop it */
	if (v == X509_V_ERR_HOSTNAME_MISMATCH)
		snprintf(why, whysize,
		    "TLS certificate verification failed: %s (not valid for "
		    "%.100s)",
		    X509_verify_cert_error_string(v), name ? name : "?");
	else
		snprintf(why, whysize,
		    "TLS certificate verification failed: %s",
		    X509_verify_cert_error_string(v));
	return 1;
}

static void
relay_event(struct bufferevent *bev, short what, void *arg)
{
	struct relay *rl = arg;
	char why[256];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (rl->st == RELAY_TLS) {
			rl->tls = 1;
			smtp_reply_parser_clear(rl->p);
			relay_ehlo(rl);
		} else {
			rl->st = RELAY_GREETING;
		}
		return;
	}
	if (rl->st == RELAY_TLS && relay_tls_refused(rl, why, sizeof(why))) {
		relay_next_status(rl, why, RELAY_TLS_VERIFY_STATUS);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "timeout");
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "connection closed");
	else
		snprintf(why, sizeof(why), "%s",
		    rl->st == RELAY_TLS ? "TLS handshake failed"
		                        : strerror(EVUTIL_SOCKET_ERROR()));
	if (rl->st == RELAY_QUIT) {
		relay_end(rl);
		return;
	}
	if (rl->st == RELAY_TLS &&
	    rl->d->conf->smtp_tls_policy == CONF_TLS_OPPORTUNISTIC) {
		/* Again on the same address, in plaintext. */
		log_info("%s delivery tls host=%s error=\"%s\"", rl->j->m->qid,
		    rl->hops[rl->hop].host, tls_error());
		relay_close(rl);
		rl->notls = 1;
		relay_connect(rl);
		return;
	}
	if (rl->st < RELAY_CMDS) {
		relay_next(rl, why);
		return;
	}
	if (rl->st == RELAY_CMDS && rl->reused && rl->replied == 0) {
		relay_redial(rl, why);
		return;
	}
	snprintf(rl->j->error, sizeof(rl->j->error), "%.200s: %.50s",
	    rl->hops[rl->hop].host, why);
	relay_end(rl);
}

static struct relay *
relay_new(struct delivery_job *j, int lmtp)
{
	struct relay *rl;

	if ((rl = calloc(1, sizeof(*rl))) == NULL ||
	    (rl->p = smtp_reply_parser_new(0)) == NULL)
		fatal("relay");
	rl->j = j;
	rl->d = delivery_deps(j->dl);
	rl->lmtp = lmtp;
	rl->bol = 1;
	buf_init(&rl->piece, QUEUE_CHUNK_SIZE);
	j->priv = rl;
	return rl;
}

static void
relay_routed(const struct route_result *res, void *arg)
{
	struct relay *rl = arg;
	size_t i;

	rl->rq = NULL;
	if (res->status != ROUTE_OK) {
		relay_all(rl, res->reply, res->dsn, res->error,
		    strlen(res->error), 0);
		relay_end(rl);
		return;
	}
	if ((rl->hops = calloc(res->nhops, sizeof(*rl->hops))) == NULL)
		fatal("relay");
	for (i = 0; i < res->nhops; i++) {
		struct relay_hop *h = &rl->hops[i];

		str_copy(h->host, res->hops[i].host, sizeof(h->host));
		h->literal = res->hops[i].literal;
		str_copy(
		    h->tls_name, res->hops[i].tls_name, sizeof(h->tls_name));
		h->port =
		    res->hops[i].port ? res->hops[i].port : ROUTE_PORT_DEFAULT;
		h->naddr = res->hops[i].naddr;
		if (h->naddr > sizeof(h->addr) / sizeof(h->addr[0]))
			h->naddr = sizeof(h->addr) / sizeof(h->addr[0]);
		memcpy(
		    h->addr, res->hops[i].addr, h->naddr * sizeof(h->addr[0]));
	}
	rl->nhops = res->nhops;
	relay_connect(rl);
}

static int
relay_start(struct delivery_job *j)
{
	struct relay *rl;

	if (j->domain[0] == '\0') {
		snprintf(j->error, sizeof(j->error), "invalid domain");
		return -1;
	}
	rl = relay_new(j, 0);
	rl->rq = route_lookup(rl->d->route, j->domain, relay_routed, rl);
	if (rl->rq == NULL) {
		snprintf(j->error, sizeof(j->error), "route lookup: %s",
		    strerror(errno));
		smtp_reply_parser_free(rl->p);
		free(rl);
		j->priv = NULL;
		return -1;
	}
	return 0;
}

static int
lmtp_start(struct delivery_job *j)
{
	const char *host = delivery_lmtp_host(j->dl);
	struct relay *rl;
	struct relay_hop *h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		fatal("relay");
	if (route_parse_literal(host, strlen(host), &h->addr[0]) == -1) {
		if (inet_pton(AF_INET, host, &h->addr[0].u.v4) == 1) {
			h->addr[0].family = AF_INET;
		} else if (strcmp(host, "localhost") == 0) {
			h->addr[0].family = AF_INET;
			h->addr[0].u.v4.s_addr = htonl(INADDR_LOOPBACK);
		} else {
			snprintf(j->error, sizeof(j->error),
			    "lmtp host %s is not a numeric address", host);
			free(h);
			return -1;
		}
	}
	/* Remote-MTA names the address connected to, in the one literal
	 * form ("dns; [127.0.0.1]", "dns; [IPv6:::1]"): a bare
	 * "127.0.0.1" would read as a host name to the tracker. */
	h->literal = 1;
	route_literal_format(&h->addr[0], h->host, sizeof(h->host));
	h->port = delivery_lmtp_port(j->dl);
	h->naddr = 1;
	rl = relay_new(j, 1);
	rl->hops = h;
	rl->nhops = 1;
	relay_connect(rl);
	return 0;
}

const struct transport transport_relay = {
	.name = "relay",
	.start = relay_start,
	.abort = relay_abort,
};

const struct transport transport_lmtp = {
	.name = "lmtp",
	.start = lmtp_start,
	.abort = relay_abort,
};
