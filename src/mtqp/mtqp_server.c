/*
 * mtqp_server: msgtrkd's MTQP server (RFC 3887).  Listeners, sessions,
 * TRACK answers from the store, the failed-TRACK rate limit and the
 * firewall mode (mtqp_chain, RFC 3887 §2.4) through trail.c.
 *
 * Everything runs on the event loop's thread.  A session answers its
 * commands strictly in order (RFC 3887 §8): while a TRACK is delayed (rate
 * limit) or chained (firewall mode) the session stops parsing and reading,
 * and resumes when the answer has been queued.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/conf.h"
#include "common/log.h"
#include "common/net.h"
#include "common/netio.h"
#include "msgtrk/buf.h"
#include "msgtrk/date.h"
#include "msgtrk/mtqp.h"
#include "msgtrk/mtrk.h"
#include "msgtrk/related.h"
#include "msgtrk/str.h"
#include "msgtrk/tstatus.h"
#include "msgtrk/xtext.h"
#include "msgtrkd/msgtrkd.h"
#include "mtqp/mtqp_server.h"
#include "mtqp/trail.h"
#include "queue/queue.h"
#include "store/store.h"

/* Client addresses remembered by the failed-TRACK rate limit; the entry
 * refilled longest ago is reused when the table is full. */
#define MTQP_RATE_ENTRIES 1024
/* Largest answer we build (one part per message, plus chained parts). */
#define MTQP_ANSWER_MAX (RELATED_PARTS_MAX * (size_t)RELATED_PART_MAX)
/* Input kept in the bufferevent before reading stops (the parser holds
 * MTQP_CMD_INPUT_MAX more). */
#define MTQP_READ_HIGH (64 * 1024)

enum sess_state {
	SESS_READY, /* reading and answering commands */
	SESS_BUSY, /* a TRACK answer is pending (delay or chain) */
	SESS_TLS, /* STARTTLS answered, handshake running */
	SESS_CLOSING, /* flushing the last answer, then free */
};

struct mtqp_rate {
	struct sockaddr_storage addr;
	struct mtqp_server_bucket b;
	int used;
};

struct mtqp_session {
	struct mtqp_server *srv;
	struct mtqp_session *prev, *next;
	uint64_t id;
	struct sockaddr_storage addr;
	char addrtext[INET6_ADDRSTRLEN + 8];
	struct netio_conn *conn; /* NULL once closed */
	struct bufferevent *bev; /* netio_conn_bev(conn) */
	struct mtqp_cmd_parser *parser;
	enum sess_state state;
	int tls;
	unsigned int errors;
	unsigned int commands;
	struct event *delay; /* rate-limited answer */
	struct event *reap; /* closing: frees the session off the stack */
	struct buf pending; /* the answer waiting for delay */
	struct trail *trail; /* firewall mode */
	struct buf own; /* our own entity while chaining */
	char envid_log[128];
};

struct mtqp_server {
	struct msgtrkd *d;
	struct netio *net; /* listeners, caps, TLS, lingering close */
	struct mtqp_session *head;
	size_t nsessions;
	int stopping;
	struct mtqp_rate rate[MTQP_RATE_ENTRIES];
};

static void session_read(struct mtqp_session *);
static void on_read(struct netio_conn *, void *);
static void on_event(struct netio_conn *, enum netio_event, void *);
static void session_free(struct mtqp_session *);
static void session_close(struct mtqp_session *, const char *);

/*
 * Rate limit of failed TRACKs: a token bucket per client address.
 */

int
mtqp_server_bucket_take(struct mtqp_server_bucket *b, time_t now)
{
	time_t periods;

	/* Whole periods only, the remainder carried in the stamp: no
	 * rounding drift.  A clock that went back refills nothing until it
	 * passes the stamp again. */
	if (now > b->stamp) {
		periods = (now - b->stamp) / MTQP_SERVER_FAIL_REFILL;
		if (periods >= MTQP_SERVER_FAIL_BURST ||
		    b->tokens + (unsigned int)periods >=
		        MTQP_SERVER_FAIL_BURST) {
			b->tokens = MTQP_SERVER_FAIL_BURST;
			b->stamp = now;
		} else {
			b->tokens += (unsigned int)periods;
			b->stamp += periods * MTQP_SERVER_FAIL_REFILL;
		}
	}
	if (b->tokens > 0) {
		b->tokens--;
		return 1;
	}
	return 0;
}

/* Takes a token for a failed TRACK from addr.  Returns 1 if the bucket
 * was empty (answer late), else 0. */
static int
rate_fail(struct mtqp_server *s, const struct sockaddr_storage *addr)
{
	struct mtqp_rate *r, *victim = NULL;
	time_t now = time(NULL);
	size_t i;

	for (i = 0; i < MTQP_RATE_ENTRIES; i++) {
		r = &s->rate[i];
		if (r->used &&
		    net_same_host((const struct sockaddr *)&r->addr,
		        (const struct sockaddr *)addr))
			break;
		if (victim == NULL || !r->used ||
		    (victim->used && r->b.stamp < victim->b.stamp))
			victim = r;
	}
	if (i == MTQP_RATE_ENTRIES) {
		r = victim;
		memset(r, 0, sizeof(*r));
		r->addr = *addr;
		r->used = 1;
		r->b.tokens = MTQP_SERVER_FAIL_BURST;
		r->b.stamp = now;
	}
	return mtqp_server_bucket_take(&r->b, now) ? 0 : 1;
}

/*
 * Output
 */

static int
send_buf(struct mtqp_session *ss, const struct buf *b)
{
	if (ss->conn == NULL)
		return -1;
	/* Measured at the socket level: under TLS what waits below the
	 * filter counts too (netio). */
	if (netio_conn_output_len(ss->conn) + b->len > MTQP_SERVER_OUTPUT_MAX) {
		/* A client that reads nothing cannot be told: hang up. */
		netio_conn_abort(ss->conn);
		ss->conn = NULL;
		ss->bev = NULL;
		session_close(ss, "output-full");
		return -1;
	}
	if (netio_conn_write(ss->conn, b->data, b->len) == -1) {
		session_close(ss, "output");
		return -1;
	}
	return 0;
}

/* Queues one status line.  Returns 0 or -1 (the session must close). */
static int
send_line(struct mtqp_session *ss, enum mtqp_status st, const char *reasons,
    const char *text)
{
	struct buf b;
	int rc;

	buf_init(&b, MTQP_LINE_MAX + 2);
	rc = mtqp_resp_line(&b, st, reasons, text);
	if (rc == 0)
		rc = send_buf(ss, &b);
	buf_reset(&b);
	return rc;
}

static int
send_greeting(struct mtqp_session *ss)
{
	const struct conf *c = ss->srv->d->conf;
	const char *opts[1];
	size_t n = 0;
	char text[CONF_HOSTNAME_MAX + 32];
	struct buf b;
	int rc;

	/* RFC 3887 §3: STARTTLS "MUST be listed" with a certificate, with
	 * "required" when TLS is required; §6.2: never after TLS. */
	if (ss->srv->d->tls_server != NULL && !ss->tls)
		opts[n++] =
		    c->mtqp_tls_required ? "STARTTLS required" : "STARTTLS";
	snprintf(text, sizeof(text), "%s MTQP server ready", c->hostname);
	buf_init(&b, 4 * MTQP_LINE_MAX);
	rc = mtqp_resp_greeting(&b, opts, n, text);
	if (rc == 0)
		rc = send_buf(ss, &b);
	buf_reset(&b);
	return rc;
}

static void
on_reap(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	session_free(arg);
}

/* Stops reading and hands the connection to netio, which flushes the
 * output (at most mtqp_idle_timeout), closes with linger and frees it.
 * The session itself is freed off the stack (its callers may still look
 * at its state). */
static void
session_close(struct mtqp_session *ss, const char *reason)
{
	struct timeval now = { 0, 0 };

	if (ss->state == SESS_CLOSING)
		return;
	log_info("%016" PRIx64 " mtqp disconnect reason=%s", ss->id, reason);
	ss->state = SESS_CLOSING;
	if (ss->conn != NULL) {
		netio_conn_close(
		    ss->conn, (int)ss->srv->d->conf->mtqp_idle_timeout);
		ss->conn = NULL;
		ss->bev = NULL;
	}
	if (ss->reap == NULL &&
	    (ss->reap = evtimer_new(ss->srv->d->base, on_reap, ss)) == NULL)
		fatal("mtqp: evtimer_new");
	evtimer_add(ss->reap, &now);
}

/* Counts a -BAD or -ERR answer; past the cap, closes (RFC 3887 §2.5
 * allows limiting "the number of unrecognized commands"). */
static int
count_error(struct mtqp_session *ss)
{
	if (++ss->errors >= MTQP_SERVER_ERRORS_MAX) {
		(void)send_line(ss, MTQP_ERR, "unavailable", "too many errors");
		session_close(ss, "errors");
		return -1;
	}
	return 0;
}

/*
 * TRACK answers
 */

/* Splits "type;value" (store form, blanks allowed around ';') into t.
 * The strings are written into the scratch buffer of size n. */
static int
typed_split(const char *s, char *scratch, size_t n, struct tstatus_typed *t)
{
	char *semi, *v, *e;

	if (s == NULL || str_copy(scratch, s, n) >= n)
		return -1;
	if ((semi = strchr(scratch, ';')) == NULL)
		return -1;
	*semi = '\0';
	for (e = semi; e > scratch && (e[-1] == ' ' || e[-1] == '\t'); e--)
		e[-1] = '\0';
	for (v = semi + 1; *v == ' ' || *v == '\t'; v++)
		;
	for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
		e[-1] = '\0';
	if (*scratch == '\0' || *v == '\0')
		return -1;
	t->type = scratch;
	t->value = v;
	return 0;
}

static const char *
default_status(enum tstatus_action a)
{
	switch (a) {
	case TSTATUS_ACTION_DELAYED:
		return "4.0.0";
	case TSTATUS_ACTION_FAILED:
		return "5.0.0";
	case TSTATUS_ACTION_RELAYED:
		return "2.1.9";
	default:
		return "2.0.0";
	}
}

/* 1 if status "c.s.d" is an X.1.9 code (RFC 3886 §3.3.4: only with
 * relayed). */
static int
is_x19(const char *st)
{
	const char *dot = strchr(st, '.');

	return dot != NULL && strncmp(dot, ".1.9", 4) == 0 &&
	    (dot[4] == '\0' || dot[4] == ' ');
}

/* The status to report for a stored one: the stored code when its class
 * fits the action (RFC 3463 §2, RFC 3464 §2.3.3), else the default. */
static const char *
fit_status(enum tstatus_action a, const char *st)
{
	if (a == TSTATUS_ACTION_RELAYED)
		return "2.1.9";
	if (st == NULL || *st == '\0' || is_x19(st) || st[1] != '.')
		return default_status(a);
	switch (a) {
	case TSTATUS_ACTION_DELAYED:
		return st[0] == '4' ? st : default_status(a);
	case TSTATUS_ACTION_FAILED:
		return st[0] == '4' || st[0] == '5' ? st : default_status(a);
	default:
		return st[0] == '2' ? st : default_status(a);
	}
}

static int
action_of(int store_action, enum tstatus_action *out)
{
	switch (store_action) {
	case STORE_ACTION_QUEUED:
	case STORE_ACTION_DELAYED:
		*out = TSTATUS_ACTION_DELAYED;
		return 0;
	case STORE_ACTION_DELIVERED:
		*out = TSTATUS_ACTION_DELIVERED;
		return 0;
	case STORE_ACTION_TRANSFERRED:
		*out = TSTATUS_ACTION_TRANSFERRED;
		return 0;
	case STORE_ACTION_RELAYED:
		*out = TSTATUS_ACTION_RELAYED;
		return 0;
	case STORE_ACTION_EXPANDED:
		*out = TSTATUS_ACTION_EXPANDED;
		return 0;
	case STORE_ACTION_FAILED:
		*out = TSTATUS_ACTION_FAILED;
		return 0;
	default:
		return -1;
	}
}

/* Scratch room per recipient for the split typed fields. */
struct rcpt_scratch {
	char orig[STORE_TEXT_MAX + 1];
	char final[STORE_TEXT_MAX + 1];
	char remote[STORE_TEXT_MAX + 1];
};

int
mtqp_server_part(const struct store_msg *m, const char *hostname,
    struct buf *out, enum mtqp_server_part_error *err_out,
    enum tstatus_error *terr_out)
{
	struct tstatus t;
	struct tstatus_rcpt *rc = NULL;
	struct rcpt_scratch *sc = NULL;
	enum mtqp_server_part_error e = MTQP_SERVER_PART_OK;
	enum tstatus_error terr = TSTATUS_OK;
	size_t i;

	if (m->nrcpt == 0 || m->nrcpt > TSTATUS_RCPT_MAX) {
		e = MTQP_SERVER_PART_NO_RCPT;
		goto done;
	}
	rc = calloc(m->nrcpt, sizeof(*rc));
	sc = calloc(m->nrcpt, sizeof(*sc));
	if (rc == NULL || sc == NULL) {
		e = MTQP_SERVER_PART_NOMEM;
		goto done;
	}
	memset(&t, 0, sizeof(t));
	t.envid = m->envid;
	t.reporting_mta.type = "dns";
	t.reporting_mta.value =
	    (m->reporting_mta != NULL && *m->reporting_mta != '\0')
	    ? m->reporting_mta
	    : hostname;
	t.arrival.t = m->arrival;
	for (i = 0; i < m->nrcpt; i++) {
		const struct store_rcpt *r = &m->rcpts[i];
		struct tstatus_rcpt *x = &rc[i];

		/* P15: the store keeps the RCPT address as rfc822 when no
		 * ORCPT came. */
		if (typed_split(r->orcpt, sc[i].orig, sizeof(sc[i].orig),
		        &x->orig_rcpt) == -1 ||
		    typed_split(
		        r->final_rcpt != NULL ? r->final_rcpt : r->orcpt,
		        sc[i].final, sizeof(sc[i].final),
		        &x->final_rcpt) == -1) {
			e = MTQP_SERVER_PART_BAD_ADDRESS;
			goto done;
		}
		if (action_of((int)r->action, &x->action) == -1) {
			e = MTQP_SERVER_PART_BAD_ACTION;
			goto done;
		}
		x->status = fit_status(x->action, r->status);
		/* RFC 3886 §3.3.5, §3.3.6: both only after an attempt. */
		if (r->last_attempt != 0) {
			x->has_last_attempt = 1;
			x->last_attempt.t = r->last_attempt;
			if (r->remote_mta != NULL && *r->remote_mta != '\0' &&
			    typed_split(r->remote_mta, sc[i].remote,
			        sizeof(sc[i].remote), &x->remote_mta) == -1) {
				e = MTQP_SERVER_PART_BAD_ADDRESS;
				goto done;
			}
		}
		/* RFC 3886 §3.3.7: only while in the local queue. */
		if (x->action == TSTATUS_ACTION_DELAYED && m->queued &&
		    r->will_retry_until != 0) {
			x->has_will_retry = 1;
			x->will_retry.t = r->will_retry_until;
		}
	}
	t.rcpt = rc;
	t.nrcpt = m->nrcpt;
	if (tstatus_generate(&t, out, &terr) == -1)
		e = MTQP_SERVER_PART_GENERATE;
done:
	free(rc);
	free(sc);
	if (err_out != NULL)
		*err_out = e;
	if (terr_out != NULL)
		*terr_out = terr;
	return e == MTQP_SERVER_PART_OK ? 0 : -1;
}

/* 1 if "dns" name v is one of hide (case-insensitive, trailing dots
 * ignored). */
static int
hidden(const char *v, const char *const *hide, size_t nhide)
{
	size_t i, lv = strlen(v), lh;

	while (lv > 0 && v[lv - 1] == '.')
		lv--;
	for (i = 0; i < nhide; i++) {
		lh = strlen(hide[i]);
		while (lh > 0 && hide[i][lh - 1] == '.')
			lh--;
		if (lh == lv && str_ncasecmp(v, hide[i], lv) == 0)
			return 1;
	}
	return 0;
}

static void
hide_typed(struct tstatus_typed *f, const char *const *hide, size_t nhide,
    int hide_all, const char *me)
{
	if (f->type == NULL || f->value == NULL ||
	    str_casecmp(f->type, "dns") != 0)
		return;
	if (hide_all || hidden(f->value, hide, nhide))
		f->value = me;
}

int
mtqp_server_rewrite(const struct tstatus *p, const unsigned char *relay,
    const char *const *hide, size_t nhide, int hide_all, const char *me,
    struct buf *out, enum mtqp_server_part_error *err_out,
    enum tstatus_error *terr_out)
{
	struct tstatus t;
	struct tstatus_rcpt *rc = NULL;
	enum mtqp_server_part_error e = MTQP_SERVER_PART_OK;
	enum tstatus_error terr = TSTATUS_OK;
	int hiding = hide_all || nhide > 0;
	size_t i;

	if (p->nrcpt == 0 || p->nrcpt > TSTATUS_RCPT_MAX) {
		e = MTQP_SERVER_PART_NO_RCPT;
		goto done;
	}
	if ((rc = calloc(p->nrcpt, sizeof(*rc))) == NULL) {
		e = MTQP_SERVER_PART_NOMEM;
		goto done;
	}
	t = *p;
	if (hiding)
		hide_typed(&t.reporting_mta, hide, nhide, hide_all, me);
	for (i = 0; i < p->nrcpt; i++) {
		rc[i] = p->rcpt[i];
		if (relay != NULL && relay[i] &&
		    rc[i].action == TSTATUS_ACTION_TRANSFERRED) {
			/* P11: "passed on, but no further information". */
			rc[i].action = TSTATUS_ACTION_RELAYED;
			rc[i].status = "2.1.9";
			rc[i].status_comment = NULL;
		}
		if (hiding)
			hide_typed(
			    &rc[i].remote_mta, hide, nhide, hide_all, me);
	}
	t.rcpt = rc;
	if (tstatus_generate(&t, out, &terr) == -1)
		e = MTQP_SERVER_PART_GENERATE;
done:
	free(rc);
	if (err_out != NULL)
		*err_out = e;
	if (terr_out != NULL)
		*terr_out = terr;
	return e == MTQP_SERVER_PART_OK ? 0 : -1;
}

const char *
mtqp_server_part_strerror(enum mtqp_server_part_error e)
{
	switch (e) {
	case MTQP_SERVER_PART_OK:
		return "no error";
	case MTQP_SERVER_PART_NO_RCPT:
		return "no recipient or too many recipients";
	case MTQP_SERVER_PART_BAD_ADDRESS:
		return "malformed stored address";
	case MTQP_SERVER_PART_BAD_ACTION:
		return "unknown stored action";
	case MTQP_SERVER_PART_GENERATE:
		return "report refused by the generator";
	case MTQP_SERVER_PART_NOMEM:
		return "out of memory";
	}
	return "unknown error";
}

/* The answer to an unknown envid, a wrong secret, a message without a
 * certifier, or an expired record: the same bytes for all (P1, P2). */
static int
unknown_answer(struct mtqp_server *s, const char *envid, struct buf *out)
{
	struct tstatus t;
	struct tstatus_rcpt r;
	struct related_part part;
	struct buf body;
	enum related_error rerr;
	int rc;

	if (s->d->conf->mtqp_unknown == CONF_MTQP_NOINFO)
		return mtqp_resp_line(out, MTQP_ERR, "noinfo",
		    "no information about this message");
	/* RFC 3887 §4: a positive answer with action "opaque".  Arrival-Date
	 * is the time of the query (P18); the recipient is unknown, so the
	 * block names the envid's own address form. */
	memset(&t, 0, sizeof(t));
	memset(&r, 0, sizeof(r));
	t.envid = envid;
	t.reporting_mta.type = "dns";
	t.reporting_mta.value = s->d->conf->hostname;
	t.arrival.t = time(NULL);
	r.orig_rcpt.type = "rfc822";
	r.orig_rcpt.value = "unknown@unknown.invalid";
	r.final_rcpt = r.orig_rcpt;
	r.action = TSTATUS_ACTION_OPAQUE;
	r.status = "2.0.0";
	t.rcpt = &r;
	t.nrcpt = 1;
	buf_init(&body, TSTATUS_SIZE_MAX);
	rc = tstatus_generate(&t, &body, NULL);
	if (rc == 0) {
		struct buf ent;

		part.body = body.data;
		part.body_len = body.len;
		buf_init(&ent, TSTATUS_SIZE_MAX + 1024);
		/* A fixed boundary: the answer must not vary (only the
		 * date does, with the clock). */
		rc = related_write(&ent, "mtqp-opaque", &part, 1, &rerr);
		if (rc == 0)
			rc = mtqp_resp_multi(out, NULL, "tracking information",
			    ent.data, ent.len);
		buf_reset(&ent);
	}
	buf_reset(&body);
	return rc;
}

/* Wraps n bodies into the +OK+ answer. */
static int
found_answer(const struct related_part *parts, size_t n, struct buf *out)
{
	struct buf ent;
	enum related_error rerr;
	int rc;

	buf_init(&ent, MTQP_ANSWER_MAX);
	rc = related_write(&ent, NULL, parts, n, &rerr);
	if (rc == -1)
		log_warnx("- mtqp answer error=\"%s\"", related_strerror(rerr));
	else
		rc = mtqp_resp_multi(
		    out, NULL, "tracking information", ent.data, ent.len);
	buf_reset(&ent);
	return rc;
}

/* Looks up decoded envid and keeps the messages the secret opens.
 * Returns the number kept (in *out, *nall all found), or -1 on a store
 * error. */
static int
lookup(struct mtqp_server *s, const char *envid, const char *secret,
    struct store_msg **all_out, size_t *nall_out, unsigned char **ok_out)
{
	struct store_msg *msgs = NULL;
	unsigned char *ok = NULL;
	size_t n = 0, i;
	time_t now = time(NULL);
	int r, kept = 0;

	*all_out = NULL;
	*nall_out = 0;
	*ok_out = NULL;
	r = s->d->store_be->lookup_envid(s->d->rstore, envid, &msgs, &n);
	if (r == -1) {
		log_warnx("- mtqp store error=\"%s\"",
		    s->d->store_be->error(s->d->rstore));
		return -1;
	}
	if (r == 0 || n == 0)
		return 0;
	if ((ok = calloc(n, 1)) == NULL) {
		store_msgs_free(msgs, n);
		return -1;
	}
	for (i = 0; i < n; i++) {
		const struct store_msg *m = &msgs[i];

		/* Never answerable without a certifier (P2); expired
		 * unless still queued (RFC 3885 §3.1). */
		if (m->certifier[0] == '\0' ||
		    (!m->queued && m->expires != 0 && m->expires < now))
			continue;
		if (mtrk_verify(secret, strlen(secret), m->certifier, NULL) ==
		    0) {
			ok[i] = 1;
			kept++;
		}
	}
	*all_out = msgs;
	*nall_out = n;
	*ok_out = ok;
	return kept;
}

static void
finish_busy(struct mtqp_session *ss)
{
	if (ss->state != SESS_BUSY)
		return;
	ss->state = SESS_READY;
	bufferevent_enable(ss->bev, EV_READ);
	session_read(ss);
}

static void
on_delay(evutil_socket_t fd, short what, void *arg)
{
	struct mtqp_session *ss = arg;

	(void)fd;
	(void)what;
	if (send_buf(ss, &ss->pending) == -1) {
		buf_reset(&ss->pending);
		session_close(ss, "output");
		return;
	}
	buf_reset(&ss->pending);
	finish_busy(ss);
}

/* Names hidden by hide_internal_hosts: at most this many distinct ones
 * are listed; past it every "dns" name is hidden (fail closed). */
#define MTQP_HIDE_MAX 256

/* Adds "dns" name f to the hidden list unless it is me or listed.
 * Returns 0, or -1 when the list is full. */
static int
hide_add(const struct tstatus_typed *f, const char *me, const char **hide,
    size_t *nhide)
{
	const char *one[1];

	if (f->type == NULL || f->value == NULL ||
	    str_casecmp(f->type, "dns") != 0)
		return 0;
	one[0] = me;
	if (hidden(f->value, one, 1) || hidden(f->value, hide, *nhide))
		return 0;
	if (*nhide >= MTQP_HIDE_MAX)
		return -1;
	hide[(*nhide)++] = f->value;
	return 0;
}

/* 1 if recipient r's trail ended because its next hop gave nothing
 * usable in time (P11). */
static int
unanswered(const struct trail_rcpt *r)
{
	return r->end == TRAIL_END_ERROR || r->end == TRAIL_END_TIMEOUT ||
	    r->end == TRAIL_END_NOINFO;
}

/* Firewall mode: the chain's answers came back.  Our own parts first (the
 * first answer), then every other answer's parts in path order (P16);
 * parts holding the last hop of an unanswered recipient, or naming an
 * internal host under hide_internal_hosts, are regenerated. */
static void
on_chain(const struct trail_result *res, void *arg)
{
	struct mtqp_session *ss = arg;
	const struct conf *conf = ss->srv->d->conf;
	const char *me = conf->hostname;
	struct related_part parts[RELATED_PARTS_MAX];
	struct buf bodies[RELATED_PARTS_MAX];
	const char **hide = NULL;
	size_t nhide = 0, n = 0, i, j, k, h, nrelayed = 0;
	int hide_all = 0;
	unsigned char *mask = NULL;
	struct buf out;

	if (conf->hide_internal_hosts) {
		/* Internal: every host the chain reached or tried to reach
		 * (the Remote-MTA of a transferred block) and every host
		 * that answered for the chain (RFC 3887 Example #12). */
		if ((hide = calloc(MTQP_HIDE_MAX, sizeof(*hide))) == NULL)
			hide_all = 1;
		for (i = 0; i < res->nanswers && !hide_all; i++) {
			const struct trail_answer *a = res->answers[i];

			for (j = 0; j < a->nparts && !hide_all; j++) {
				const struct tstatus *p = a->parts[j];

				if (i > 0 &&
				    hide_add(&p->reporting_mta, me, hide,
				        &nhide) == -1)
					hide_all = 1;
				for (k = 0; k < p->nrcpt && !hide_all; k++)
					if (p->rcpt[k].action ==
					        TSTATUS_ACTION_TRANSFERRED &&
					    hide_add(&p->rcpt[k].remote_mta, me,
					        hide, &nhide) == -1)
						hide_all = 1;
			}
		}
	}
	mask = calloc(TSTATUS_RCPT_MAX, 1);
	for (i = 0; i < res->nanswers && n < RELATED_PARTS_MAX; i++) {
		const struct trail_answer *a = res->answers[i];

		for (j = 0; j < a->nparts && n < RELATED_PARTS_MAX; j++) {
			const struct tstatus *p = a->parts[j];
			int relay = 0;
			enum mtqp_server_part_error perr;
			enum tstatus_error terr;

			buf_init(&bodies[n], RELATED_PART_MAX);
			parts[n].header = NULL;
			parts[n].header_len = 0;
			parts[n].body = a->part_body[j];
			parts[n].body_len = a->part_len[j];
			if (mask != NULL && p->nrcpt <= TSTATUS_RCPT_MAX) {
				memset(mask, 0, p->nrcpt);
				for (k = 0; k < res->nrcpt; k++) {
					const struct trail_rcpt *r =
					    &res->rcpts[k];
					const struct trail_hop *last;

					if (!unanswered(r) || r->nhops == 0)
						continue;
					last = &r->hops[r->nhops - 1];
					if (last->part != p)
						continue;
					h = (size_t)(last->rcpt - p->rcpt);
					if (h < p->nrcpt &&
					    last->rcpt->action ==
					        TSTATUS_ACTION_TRANSFERRED) {
						mask[h] = 1;
						relay = 1;
						nrelayed++;
					}
				}
			}
			if ((relay || hide_all || nhide > 0) &&
			    mtqp_server_rewrite(p, relay ? mask : NULL, hide,
			        nhide, hide_all, me, &bodies[n], &perr,
			        &terr) == 0) {
				parts[n].body = bodies[n].data;
				parts[n].body_len = bodies[n].len;
			} else if (relay || hide_all || nhide > 0) {
				log_warnx("%016" PRIx64 " mtqp chain-part "
				          "error=\"%s\"",
				    ss->id, mtqp_server_part_strerror(perr));
				if (i > 0) {
					/* Never pass on what we could not
					 * rewrite. */
					buf_reset(&bodies[n]);
					continue;
				}
			}
			n++;
		}
	}
	free(mask);
	free(hide);
	buf_init(&out, MTQP_ANSWER_MAX + MTQP_ANSWER_MAX / 8);
	if (n == 0 || found_answer(parts, n, &out) == -1) {
		/* Fall back to our own entity alone. */
		buf_reset(&out);
		if (mtqp_resp_multi(&out, NULL, "tracking information",
		        ss->own.data, ss->own.len) == -1)
			(void)mtqp_resp_line(
			    &out, MTQP_TEMP, "unavailable", "internal error");
	}
	for (i = 0; i < n; i++)
		buf_reset(&bodies[i]);
	log_info("%016" PRIx64 " mtqp chain envid=%s answers=%zu parts=%zu "
	         "relayed=%zu hidden=%s",
	    ss->id, ss->envid_log, res->nanswers, n, nrelayed,
	    hide_all                        ? "all"
	        : conf->hide_internal_hosts ? "internal"
	                                    : "no");
	trail_free(ss->trail);
	ss->trail = NULL;
	buf_reset(&ss->own);
	if (send_buf(ss, &out) == -1) {
		buf_reset(&out);
		session_close(ss, "output");
		return;
	}
	buf_reset(&out);
	finish_busy(ss);
}

/* Starts the chain for a found answer whose own entity is in ss->own.
 * Returns 0 if started (the session is busy), -1 to answer now. */
static int
chain_start(struct mtqp_session *ss, const struct mtqp_cmd *cmd)
{
	struct msgtrkd *d = ss->srv->d;
	struct trail_opts o;
	char err[TRAIL_ERROR_MAX], me[TRAIL_SERVER_MAX];

	if (d->dns == NULL)
		return -1;
	snprintf(me, sizeof(me), "%s", d->conf->hostname);
	memset(&o, 0, sizeof(o));
	o.server = me;
	o.envid = cmd->envid;
	o.secret = cmd->secret;
	/* RFC 3887 §11: "the same or better" TLS toward the next hop. */
	o.tls = ss->tls ? TRAIL_TLS_REQUIRE : TRAIL_TLS_OPPORTUNISTIC;
	o.ssl_ctx = d->tls_client;
	o.timeout = MTQP_SERVER_CHAIN_TIMEOUT;
	o.first_body = ss->own.data;
	o.first_len = ss->own.len;
	o.first_server = me;
	ss->trail =
	    trail_start(d->base, d->dns, &o, on_chain, ss, err, sizeof(err));
	if (ss->trail == NULL) {
		log_warnx(
		    "%016" PRIx64 " mtqp chain error=\"%s\"", ss->id, err);
		return -1;
	}
	ss->state = SESS_BUSY;
	bufferevent_disable(ss->bev, EV_READ);
	return 0;
}

/* Answers TRACK.  Returns 0, or -1 if the session was closed. */
static int
do_track(struct mtqp_session *ss, const struct mtqp_cmd *cmd)
{
	struct mtqp_server *s = ss->srv;
	char envid[MTQP_ENVID_MAX + 1];
	struct store_msg *msgs = NULL;
	unsigned char *ok = NULL;
	size_t n = 0, i, np = 0;
	struct related_part parts[RELATED_PARTS_MAX];
	struct buf bodies[RELATED_PARTS_MAX];
	struct buf out;
	int kept = 0, pass, transferred = 0, rv = 0;
	enum mtqp_server_part_error perr;
	enum tstatus_error terr;

	log_escape(ss->envid_log, sizeof(ss->envid_log), cmd->envid,
	    strlen(cmd->envid));
	if (s->d->conf->mtqp_tls_required && !ss->tls) {
		log_info("%016" PRIx64
		         " mtqp track envid=%s result=tls-required",
		    ss->id, ss->envid_log);
		if (send_line(ss, MTQP_ERR, "tls-required",
		        "issue STARTTLS first") == -1)
			return -1;
		return count_error(ss);
	}
	/* While the queue's last store update failed, the store lags the
	 * journal: a message accepted with a 250 may be missing or show an
	 * old action, so any answer could be wrong.  -TEMP (RFC 3887 §2.3,
	 * a temporary failure) tells the client to ask again later; the
	 * flag clears at the first store commit that catches up
	 * (src/queue). */
	if (s->d->queue != NULL && queue_store_failed(s->d->queue)) {
		log_info("%016" PRIx64
		         " mtqp track envid=%s result=store-unavailable",
		    ss->id, ss->envid_log);
		return send_line(
		    ss, MTQP_TEMP, "unavailable", "tracking store unavailable");
	}
	/* P8: as sent, then without the angle brackets. */
	for (pass = 0; pass < 2 && kept == 0; pass++) {
		const char *e = cmd->envid;
		size_t len = strlen(e);

		if (pass == 1) {
			if (!cmd->envid_bracketed)
				break;
			e++;
			len -= 2;
		}
		if (xtext_decode(e, len, XTEXT_PRINTABLE, envid, sizeof(envid),
		        NULL, NULL) == -1)
			continue;
		store_msgs_free(msgs, n);
		free(ok);
		kept = lookup(s, envid, cmd->secret, &msgs, &n, &ok);
		if (kept == -1) {
			kept = 0;
			msgs = NULL;
			n = 0;
			ok = NULL;
			log_info("%016" PRIx64
			         " mtqp track envid=%s result=error",
			    ss->id, ss->envid_log);
			rv = send_line(ss, MTQP_TEMP, "unavailable",
			    "tracking store unavailable");
			goto done;
		}
	}
	buf_init(&out, MTQP_ANSWER_MAX + MTQP_ANSWER_MAX / 8);
	if (kept == 0) {
		log_info("%016" PRIx64 " mtqp track envid=%s result=unknown",
		    ss->id, ss->envid_log);
		if (unknown_answer(s, cmd->envid, &out) == -1) {
			buf_reset(&out);
			(void)mtqp_resp_line(
			    &out, MTQP_TEMP, "unavailable", "internal error");
		}
		if (rate_fail(s, &ss->addr)) {
			/* Over the limit: the same bytes, later. */
			struct timeval tv = { MTQP_SERVER_FAIL_DELAY, 0 };

			buf_reset(&ss->pending);
			if (buf_add(&ss->pending, out.data, out.len) == 0 &&
			    (ss->delay != NULL ||
			        (ss->delay = evtimer_new(
			             s->d->base, on_delay, ss)) != NULL)) {
				log_info("%016" PRIx64
				         " mtqp track-delayed addr=%s",
				    ss->id, ss->addrtext);
				ss->state = SESS_BUSY;
				bufferevent_disable(ss->bev, EV_READ);
				evtimer_add(ss->delay, &tv);
				buf_reset(&out);
				goto done;
			}
		}
		rv = send_buf(ss, &out);
		buf_reset(&out);
		goto done;
	}
	for (i = 0; i < n && np < RELATED_PARTS_MAX; i++) {
		if (!ok[i])
			continue;
		buf_init(&bodies[np], RELATED_PART_MAX);
		if (mtqp_server_part(&msgs[i], s->d->conf->hostname,
		        &bodies[np], &perr, &terr) == -1) {
			log_warnx("%016" PRIx64
			          " mtqp part qid=%s error=\"%s%s%s\"",
			    ss->id, msgs[i].qid,
			    mtqp_server_part_strerror(perr),
			    perr == MTQP_SERVER_PART_GENERATE ? ": " : "",
			    perr == MTQP_SERVER_PART_GENERATE
			        ? tstatus_strerror(terr)
			        : "");
			buf_reset(&bodies[np]);
			continue;
		}
		parts[np].header = NULL;
		parts[np].header_len = 0;
		parts[np].body = bodies[np].data;
		parts[np].body_len = bodies[np].len;
		np++;
		for (size_t k = 0; k < msgs[i].nrcpt; k++)
			if (msgs[i].rcpts[k].action == STORE_ACTION_TRANSFERRED)
				transferred = 1;
	}
	log_info("%016" PRIx64 " mtqp track envid=%s result=found parts=%zu",
	    ss->id, ss->envid_log, np);
	if (np == 0 || found_answer(parts, np, &out) == -1) {
		buf_reset(&out);
		(void)mtqp_resp_line(
		    &out, MTQP_TEMP, "unavailable", "internal error");
	} else if (s->d->conf->mtqp_chain && transferred) {
		/* Keep the entity (after the +OK+ line, before stuffing):
		 * rebuild it plainly for the trail. */
		enum related_error rerr;

		buf_init(&ss->own, MTQP_ANSWER_MAX);
		if (related_write(&ss->own, NULL, parts, np, &rerr) == 0 &&
		    chain_start(ss, cmd) == 0) {
			for (i = 0; i < np; i++)
				buf_reset(&bodies[i]);
			buf_reset(&out);
			goto done;
		}
		buf_reset(&ss->own);
	}
	for (i = 0; i < np; i++)
		buf_reset(&bodies[i]);
	rv = send_buf(ss, &out);
	buf_reset(&out);
done:
	store_msgs_free(msgs, n);
	free(ok);
	if (rv == -1)
		session_close(ss, "output");
	return rv;
}

/* Answers STARTTLS.  Returns 0, or -1 if the session was closed. */
static int
do_starttls(struct mtqp_session *ss, const struct mtqp_cmd *cmd)
{
	struct msgtrkd *d = ss->srv->d;
	X509 *cert;
	char dom[MTQP_DOMAIN_MAX + 1];

	if (ss->tls) {
		/* RFC 3887 §6: "MUST" be -BAD/tls-in-progress. */
		if (send_line(ss, MTQP_BAD, "tls-in-progress",
		        "TLS already active") == -1)
			return -1;
		return count_error(ss);
	}
	if (d->tls_server == NULL) {
		if (send_line(
		        ss, MTQP_ERR, "unsupported", "TLS not available") == -1)
			return -1;
		return count_error(ss);
	}
	/* RFC 3887 §6: a name that matches no dNSName of the certificate
	 * "MUST" get -BAD/bad-fqdn.  A trailing dot is ignored. */
	str_copy(dom, cmd->domain, sizeof(dom));
	if (*dom != '\0' && dom[strlen(dom) - 1] == '.')
		dom[strlen(dom) - 1] = '\0';
	cert = SSL_CTX_get0_certificate(d->tls_server);
	if (cert == NULL ||
	    X509_check_host(cert, dom, strlen(dom), 0, NULL) != 1) {
		if (send_line(ss, MTQP_BAD, "bad-fqdn",
		        "name not in the certificate") == -1)
			return -1;
		return count_error(ss);
	}
	/* P10: nothing pipelined behind STARTTLS survives. */
	mtqp_cmd_parser_discard(ss->parser);
	evbuffer_drain(bufferevent_get_input(ss->bev),
	    evbuffer_get_length(bufferevent_get_input(ss->bev)));
	if (send_line(ss, MTQP_OK, NULL, "begin TLS negotiation") == -1)
		return -1;
	/* The +OK goes out in plaintext, then the handshake, bounded by
	 * MTQP_SERVER_HANDSHAKE_TIMEOUT; netio keeps the idle timer and
	 * read limit across it. */
	if (netio_conn_starttls(ss->conn) == -1) {
		session_close(ss, "tls-setup");
		return -1;
	}
	ss->bev = netio_conn_bev(ss->conn);
	ss->state = SESS_TLS;
	return 1;
}

/* Parses and answers what is buffered, in order. */
static void
session_read(struct mtqp_session *ss)
{
	struct evbuffer *in = bufferevent_get_input(ss->bev);
	struct mtqp_cmd cmd;
	unsigned char chunk[4096];
	int r;

	while (ss->state == SESS_READY) {
		/* Feed the parser what it can hold. */
		while (evbuffer_get_length(in) > 0 &&
		    mtqp_cmd_parser_pending(ss->parser) + sizeof(chunk) <=
		        MTQP_CMD_INPUT_MAX) {
			ev_ssize_t k =
			    evbuffer_copyout(in, chunk, sizeof(chunk));

			if (k <= 0 ||
			    mtqp_cmd_push(ss->parser, chunk, (size_t)k) == -1)
				break;
			evbuffer_drain(in, (size_t)k);
		}
		r = mtqp_cmd_next(ss->parser, &cmd);
		if (r == 0)
			break;
		if (++ss->commands > MTQP_SERVER_COMMANDS_MAX) {
			(void)send_line(
			    ss, MTQP_ERR, "unavailable", "too many commands");
			session_close(ss, "commands");
			break;
		}
		/* RFC 3887 §2.5: "any command received should restart" the
		 * idle timer; re-arming the read timeout does that. */
		bufferevent_set_timeouts(ss->bev, NULL, NULL);
		{
			struct timeval tv = {
				ss->srv->d->conf->mtqp_idle_timeout, 0
			};

			bufferevent_set_timeouts(ss->bev, &tv, &tv);
		}
		if (r == -1) {
			enum mtqp_cmd_error e =
			    mtqp_cmd_parser_error(ss->parser);

			log_info("%016" PRIx64 " mtqp bad-command error=\"%s\"",
			    ss->id, mtqp_cmd_strerror(e));
			if (send_line(ss, MTQP_BAD, mtqp_cmd_error_reason(e),
			        mtqp_cmd_strerror(e)) == -1 ||
			    count_error(ss) == -1)
				break;
			continue;
		}
		switch (cmd.verb) {
		case MTQP_CMD_TRACK:
			r = do_track(ss, &cmd);
			break;
		case MTQP_CMD_COMMENT:
			/* RFC 3887 §5: "MUST" succeed. */
			r = send_line(ss, MTQP_OK, NULL, "comment noted");
			break;
		case MTQP_CMD_QUIT:
			(void)send_line(ss, MTQP_OK, NULL, "goodbye");
			session_close(ss, "quit");
			r = -1;
			break;
		case MTQP_CMD_STARTTLS:
			log_info("%016" PRIx64 " mtqp starttls", ss->id);
			r = do_starttls(ss, &cmd);
			break;
		default:
			r = -1;
			break;
		}
		mtqp_cmd_clear(&cmd);
		if (r != 0)
			break;
	}
	mtqp_cmd_clear(&cmd);
}

static void
on_read(struct netio_conn *c, void *arg)
{
	(void)c;
	session_read(arg);
}

static void
on_event(struct netio_conn *c, enum netio_event ev, void *arg)
{
	struct mtqp_session *ss = arg;

	switch (ev) {
	case NETIO_TLS_READY:
		if (ss->state != SESS_TLS)
			return;
		/* RFC 3887 §6.2: a new greeting, without STARTTLS;
		 * everything before is forgotten. */
		ss->tls = 1;
		ss->state = SESS_READY;
		ss->errors = 0;
		log_info("%016" PRIx64 " mtqp tls version=%s", ss->id,
		    SSL_get_version(netio_conn_ssl(c)));
		if (send_greeting(ss) == -1) {
			session_close(ss, "output");
			return;
		}
		bufferevent_enable(ss->bev, EV_READ);
		return;
	case NETIO_HANDSHAKE_TIMEOUT:
		log_info("%016" PRIx64 " mtqp disconnect reason=tls-timeout",
		    ss->id);
		session_free(ss);
		return;
	case NETIO_TIMEOUT:
	case NETIO_TIMEOUT_WRITE:
		if (ss->state == SESS_BUSY) {
			/* Waiting on us, not on the client. */
			bufferevent_enable(ss->bev, EV_WRITE);
			return;
		}
		log_info("%016" PRIx64 " mtqp disconnect reason=idle", ss->id);
		session_free(ss);
		return;
	case NETIO_ERROR:
	case NETIO_TLS_ERROR:
		log_info("%016" PRIx64 " mtqp disconnect reason=%s", ss->id,
		    ss->state == SESS_TLS ? "tls-handshake" : "error");
		session_free(ss);
		return;
	case NETIO_EOF:
		if (ss->state != SESS_CLOSING)
			log_info("%016" PRIx64 " mtqp disconnect reason=eof",
			    ss->id);
		session_free(ss);
		return;
	}
}

static const struct netio_conn_cb session_cb = { on_read, NULL, on_event };

static void
session_free(struct mtqp_session *ss)
{
	struct mtqp_server *s;

	if (ss == NULL)
		return;
	s = ss->srv;
	if (ss->prev != NULL)
		ss->prev->next = ss->next;
	else
		s->head = ss->next;
	if (ss->next != NULL)
		ss->next->prev = ss->prev;
	s->nsessions--;
	trail_free(ss->trail);
	if (ss->delay != NULL)
		event_free(ss->delay);
	if (ss->reap != NULL)
		event_free(ss->reap);
	buf_wipe(&ss->pending);
	buf_reset(&ss->own);
	mtqp_cmd_parser_free(ss->parser);
	if (ss->conn != NULL)
		netio_conn_abort(ss->conn);
	free(ss);
}

/* netio accepted c within the caps (MTQP_SERVER_SESSIONS_MAX, _PER_ADDR_
 * MAX; past them it answered -TEMP/MTQP/unavailable). */
static void
on_accept(struct netio_conn *c, void *arg)
{
	struct mtqp_server *s = arg;
	struct mtqp_session *ss;

	if ((ss = calloc(1, sizeof(*ss))) == NULL ||
	    (ss->parser = mtqp_cmd_parser_new()) == NULL) {
		free(ss);
		netio_conn_abort(c);
		return;
	}
	ss->srv = s;
	ss->conn = c;
	ss->bev = netio_conn_bev(c);
	memcpy(&ss->addr, netio_conn_addr(c), sizeof(ss->addr));
	str_copy(ss->addrtext, netio_conn_addrtext(c), sizeof(ss->addrtext));
	if (RAND_bytes((unsigned char *)&ss->id, sizeof(ss->id)) != 1)
		ss->id = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)ss;
	buf_init(&ss->pending, MTQP_ANSWER_MAX);
	buf_init(&ss->own, MTQP_ANSWER_MAX);
	ss->next = s->head;
	if (s->head != NULL)
		s->head->prev = ss;
	s->head = ss;
	s->nsessions++;
	log_info("%016" PRIx64 " mtqp connect addr=%s", ss->id, ss->addrtext);
	netio_conn_setcb(c, &session_cb, ss);
	netio_conn_set_read_max(c, MTQP_READ_HIGH);
	netio_conn_set_timeout(c, (int)s->d->conf->mtqp_idle_timeout);
	if (send_greeting(ss) == -1)
		session_free(ss);
}

struct mtqp_server *
mtqp_server_new(struct msgtrkd *d, char *err, size_t errsize)
{
	struct mtqp_server *s;
	struct netio_opts o;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errsize, "mtqp: out of memory");
		return NULL;
	}
	s->d = d;
	memset(&o, 0, sizeof(o));
	o.name = "mtqp";
	o.max_conns = MTQP_SERVER_SESSIONS_MAX;
	o.max_per_addr = MTQP_SERVER_SESSIONS_PER_ADDR_MAX;
	o.busy_line = "-TEMP/MTQP/unavailable too many connections\r\n";
	o.tls = d->tls_server;
	o.handshake_timeout = MTQP_SERVER_HANDSHAKE_TIMEOUT;
	if ((s->net = netio_new(d->base, &o, on_accept, s)) == NULL) {
		snprintf(err, errsize, "mtqp: out of memory");
		free(s);
		return NULL;
	}
	if (netio_listen_conf(s->net, d->conf->mtqp_listen,
	        d->conf->n_mtqp_listen, err, errsize) == -1) {
		mtqp_server_free(s);
		return NULL;
	}
	return s;
}

void
mtqp_server_start(struct mtqp_server *s)
{
	netio_start(s->net);
}

size_t
mtqp_server_stop(struct mtqp_server *s)
{
	if (s == NULL)
		return 0;
	s->stopping = 1;
	netio_stop(s->net);
	while (s->head != NULL) {
		if (s->head->state != SESS_CLOSING)
			log_info("%016" PRIx64
			         " mtqp disconnect reason=shutdown",
			    s->head->id);
		session_free(s->head);
	}
	return s->nsessions;
}

void
mtqp_server_free(struct mtqp_server *s)
{
	if (s == NULL)
		return;
	while (s->head != NULL)
		session_free(s->head);
	netio_free(s->net);
	free(s);
}
