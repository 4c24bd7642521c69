/*
 * mtqp_server: msgtrkd's MTQP server (RFC 3887).  Listeners, connections,
 * the store lookup, the record -> tracking-status mapping, the failed-TRACK
 * rate limit and the firewall mode's trail (mtqp_chain, RFC 3887 §2.4,
 * with mtqp_chain_hosts).  What is said on a connection is mtqp_proto.c's:
 * each connection owns a struct mtqp_proto and implements its ops (proto_ops
 * below) with the connection's bufferevent.
 *
 * Everything runs on the event loop's thread.  A session answers its
 * commands strictly in order (RFC 3887 §8): while a TRACK is delayed (rate
 * limit) or chained (firewall mode) the session stops parsing and reading,
 * and resumes when the answer has been queued.
 */
#include <arpa/inet.h>
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
#include "mtqp/mtqp_proto.h"
#include "mtqp/mtqp_server.h"
#include "mtqp/trail.h"
#include "queue/queue.h"
#include "store/store.h"
#include "store/store_reader.h"

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

struct mtqp_session {
	struct mtqp_server *srv;
	struct mtqp_session *prev, *next;
	uint64_t id;
	struct sockaddr_storage addr;
	char addrtext[INET6_ADDRSTRLEN + 8];
	struct netio_conn *conn; /* NULL once closed */
	struct bufferevent *bev; /* netio_conn_bev(conn) */
	struct mtqp_proto *proto; /* what is said: mtqp_proto.c */
	const char *close_reason; /* set by proto_close(), acted on later */
	enum sess_state state;
	struct event *delay; /* rate-limited answer */
	struct event *reap; /* closing: frees the session off the stack */
	struct trail *trail; /* firewall mode */
	struct track_lookup *lookup; /* TRACK's store read in flight */
};

struct mtqp_server {
	struct event_base *base;
	const struct conf *conf;
	SSL_CTX *tls_server; /* NULL: no STARTTLS */
	struct mtqp_server_deps deps; /* given at start */
	struct netio *net; /* listeners, caps, TLS, lingering close */
	struct mtqp_session *head;
	size_t nsessions;
	int stopping;
	struct mtqp_server_rate rate; /* failed TRACKs, every session */
	uint64_t results[MTQP_TRACK_RESULTS]; /* /metrics */
};

_Static_assert(
    MTQP_SERVER_RESULTS == MTQP_TRACK_RESULTS, "one list of TRACK results");

static void session_read(struct mtqp_session *);
static void on_read(struct netio_conn *, void *);
static void on_event(struct netio_conn *, enum netio_event, void *);
static void session_free(struct mtqp_session *);

/*
 * Rate limit of failed TRACKs, per client (IPv4 address, IPv6 /64), shared
 * by all its sessions: GCRA (a token bucket written as the time at which
 * the bucket would be full again, "tat").  Each failed TRACK moves tat one
 * refill period on; it is answered once tat - (burst - 1) periods has
 * passed.  So a burst of MTQP_SERVER_FAIL_BURST is answered at once, then
 * one answer per MTQP_SERVER_FAIL_REFILL seconds whatever the number of
 * sessions: each waiting answer has taken its own slot.  The table is
 * common/ratelimit.c's (the HTTP server limits its tracking requests with
 * it too).
 */

#define RATE_PERIOD_MS ((int64_t)MTQP_SERVER_FAIL_REFILL * 1000)

/* The key moved to common/net.c (the AUTH penalty uses it too). */
_Static_assert(
    MTQP_SERVER_RATE_KEY_LEN == NET_CLIENT_KEY_LEN, "one client key length");

int
mtqp_server_rate_key(const struct sockaddr *sa, unsigned char *key_out)
{
	return net_client_key(sa, key_out);
}

int64_t
mtqp_server_rate_fail(
    struct mtqp_server_rate *r, const struct sockaddr *sa, int64_t now)
{
	return ratelimit_take(
	    &r->rl, sa, MTQP_SERVER_FAIL_BURST, RATE_PERIOD_MS, now);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
		/* A client that reads nothing cannot be told: hang up
		 * (session_read() logs and frees). */
		netio_conn_abort(ss->conn);
		ss->conn = NULL;
		ss->bev = NULL;
		if (ss->close_reason == NULL)
			ss->close_reason = "output-full";
		return -1;
	}
	return netio_conn_write(ss->conn, b->data, b->len);
}

/* The greeting (mtqp_proto_greet).  Returns 0 or -1. */
static int
send_greeting(struct mtqp_session *ss)
{
	return mtqp_proto_greet(ss->proto);
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
 * The session itself is freed off the stack. */
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
		    ss->conn, (int)ss->srv->conf->mtqp_idle_timeout);
		ss->conn = NULL;
		ss->bev = NULL;
	}
	if (ss->reap == NULL &&
	    (ss->reap = evtimer_new(ss->srv->base, on_reap, ss)) == NULL)
		fatal("mtqp: evtimer_new");
	evtimer_add(ss->reap, &now);
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

int
mtqp_server_hidden(const char *v, const char *const *hide, size_t nhide)
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
	if (hide_all || mtqp_server_hidden(f->value, hide, nhide))
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

/*
 * Firewall mode's hop rule (mtqp_chain_hosts)
 */

/* An address as family (4 or 6) and bytes; IPv4-mapped IPv6 as IPv4. */
struct hop_addr {
	int v4;
	unsigned char a[16];
};

static int
hop_addr_of(const struct sockaddr *sa, struct hop_addr *out)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff };

	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		out->v4 = 1;
		memcpy(out->a, &s4->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		if (memcmp(s6->sin6_addr.s6_addr, mapped, 12) == 0) {
			out->v4 = 1;
			memcpy(out->a, s6->sin6_addr.s6_addr + 12, 4);
		} else
			memcpy(out->a, s6->sin6_addr.s6_addr, 16);
		return 0;
	}
	return -1;
}

/* "[ip]", "ip": a literal.  Returns 0 with out set, or -1 (a name). */
static int
hop_literal(const char *name, struct hop_addr *out)
{
	char in[INET6_ADDRSTRLEN + 1];
	size_t n = strlen(name);

	if (n >= 2 && name[0] == '[' && name[n - 1] == ']') {
		name++;
		n -= 2;
	}
	if (n >= sizeof(in))
		return -1;
	memcpy(in, name, n);
	in[n] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, in, out->a) == 1) {
		out->v4 = 1;
		return 0;
	}
	if (inet_pton(AF_INET6, in, out->a) == 1) {
		struct sockaddr_in6 s6;

		memset(&s6, 0, sizeof(s6));
		s6.sin6_family = AF_INET6;
		memcpy(&s6.sin6_addr, out->a, 16);
		return hop_addr_of((const struct sockaddr *)&s6, out);
	}
	return -1;
}

static int
prefix_match(const unsigned char *net, int prefix, const unsigned char *a)
{
	int full = prefix / 8, rest = prefix % 8;

	if (memcmp(net, a, (size_t)full) != 0)
		return 0;
	return rest == 0 ||
	    ((net[full] ^ a[full]) & (unsigned char)(0xff << (8 - rest))) == 0;
}

static int
hop_listed_addr(const struct conf *c, const struct hop_addr *h)
{
	size_t i;

	for (i = 0; i < c->n_mtqp_chain_nets && i < CONF_NET_MAX; i++) {
		const struct conf_net *n = &c->mtqp_chain_nets[i];

		if ((n->family == AF_INET) == h->v4 &&
		    prefix_match(n->addr, n->prefix, h->a))
			return 1;
	}
	return 0;
}

static int
hop_listed_name(const struct conf *c, const char *name)
{
	return mtqp_server_hidden(name,
	    (const char *const *)c->mtqp_chain_names, c->n_mtqp_chain_names);
}

/* Not globally routable: RFC 6890's special-purpose ranges. */
static int
hop_internal(const struct hop_addr *h)
{
	static const struct {
		int v4;
		unsigned char a[16];
		int prefix;
	} nets[] = {
		{ 1, { 0 }, 8 }, /* "this network" */
		{ 1, { 10 }, 8 }, { 1, { 100, 64 }, 10 }, /* shared (CGN) */
		{ 1, { 127 }, 8 }, { 1, { 169, 254 }, 16 },
		{ 1, { 172, 16 }, 12 }, { 1, { 192, 0, 0 }, 24 },
		{ 1, { 192, 168 }, 16 }, { 1, { 198, 18 }, 15 },
		{ 1, { 224 }, 3 }, /* multicast, reserved, broadcast */
		{ 0, { 0 }, 127 }, /* :: and ::1 */
		{ 0, { 0x01, 0x00 }, 64 }, /* discard */
		{ 0, { 0xfc }, 7 }, /* ULA */
		{ 0, { 0xfe, 0x80 }, 9 }, /* link- and site-local */
		{ 0, { 0xff }, 8 }, /* multicast */
	};
	size_t i;

	for (i = 0; i < sizeof(nets) / sizeof(nets[0]); i++)
		if (nets[i].v4 == h->v4 &&
		    prefix_match(nets[i].a, nets[i].prefix, h->a))
			return 1;
	/* NAT64 (RFC 6052): the IPv4 address inside decides. */
	if (!h->v4 &&
	    memcmp(h->a, "\x00\x64\xff\x9b\0\0\0\0\0\0\0\0", 12) == 0) {
		struct hop_addr in;

		memset(&in, 0, sizeof(in));
		in.v4 = 1;
		memcpy(in.a, h->a + 12, 4);
		return hop_internal(&in);
	}
	return 0;
}

int
mtqp_server_internal(const struct sockaddr *sa)
{
	struct hop_addr h;

	return sa != NULL && hop_addr_of(sa, &h) == 0 && hop_internal(&h);
}

int
mtqp_server_chain_allowed(const struct conf *c, const char *name,
    const struct sockaddr *sa, const struct sockaddr *via, const char **why_out)
{
	struct hop_addr h;
	int literal = name != NULL && hop_literal(name, &h) == 0;
	int ok;

	if (sa != NULL && hop_addr_of(sa, &h) == -1) {
		*why_out = "mtqp_chain_hosts";
		return 0;
	}
	if (c->mtqp_chain_hosts_set) {
		*why_out = "mtqp_chain_hosts";
		if (sa == NULL && literal)
			return hop_listed_addr(c, &h);
		if (sa == NULL)
			return c->n_mtqp_chain_names == 0 ||
			    hop_listed_name(c, name);
		return c->n_mtqp_chain_nets == 0 || hop_listed_addr(c, &h);
	}
	/* The default: an outside server names only outside hops. */
	*why_out = "outside-to-internal";
	if (sa == NULL && !literal)
		return 1;
	if (via == NULL || mtqp_server_internal(via))
		return 1;
	ok = !hop_internal(&h);
	return ok;
}

/*
 * TRACK's store lookup, off the loop.  First the store must have applied
 * everything the journal has synced (queue_store_wait: a message that got
 * its 250 is found, read your writes); then a reader thread asks the
 * store (store_reader_lookup).  Both within MTQP_SERVER_TRACK_DEADLINE
 * of the TRACK, after which the answer is -TEMP: a hung database never
 * holds a session (or the loop) longer.
 *
 * The store finds only messages with the secret's certifier (P2: never one
 * without a certifier), by one index probe whether the envid is unknown or
 * the secret wrong.  A secret that does not decode opens nothing; it is
 * still looked up, so it costs the same.
 */
struct track_lookup {
	struct mtqp_session *ss;
	struct queue_store_waiter *wait;
	struct store_reader_job *job;
	struct timespec start;
	char envid[MTQP_ENVID_MAX + 1];
	char cert[MTRK_CERTIFIER_LEN + 1];
};

static void
lookup_end(struct track_lookup *lk, int kept, struct store_msg *msgs, size_t n,
    unsigned char *ok)
{
	struct mtqp_session *ss = lk->ss;

	ss->lookup = NULL;
	explicit_bzero(lk->cert, sizeof(lk->cert));
	free(lk);
	mtqp_proto_looked_up(ss->proto, kept, msgs, n, ok);
	session_read(ss);
}

static void
lookup_found(
    void *arg, int rc, struct store_msg *msgs, size_t n, const char *err)
{
	struct track_lookup *lk = arg;
	unsigned char *ok;
	time_t now = time(NULL);
	size_t i;
	int kept = 0;

	lk->job = NULL;
	if (rc == STORE_READER_TIMEOUT || rc == -1) {
		if (rc == -1)
			log_warnx("%016" PRIx64 " mtqp store error=\"%s\"",
			    lk->ss->id, err != NULL ? err : "?");
		lookup_end(lk,
		    rc == -1 ? MTQP_PROTO_LOOKUP_ERROR
		             : MTQP_PROTO_LOOKUP_TIMEOUT,
		    NULL, 0, NULL);
		return;
	}
	if (rc == 0 || n == 0) {
		lookup_end(lk, 0, NULL, 0, NULL);
		return;
	}
	if ((ok = calloc(n, 1)) == NULL) {
		store_msgs_free(msgs, n);
		lookup_end(lk, MTQP_PROTO_LOOKUP_ERROR, NULL, 0, NULL);
		return;
	}
	for (i = 0; i < n; i++) {
		const struct store_msg *m = &msgs[i];

		/* Expired unless still queued (RFC 3885 §3.1). */
		if (!m->queued && m->expires != 0 && m->expires < now)
			continue;
		ok[i] = 1;
		kept++;
	}
	lookup_end(lk, kept, msgs, n, ok);
}

/* Starts the read; returns 0, or -1 (no time left, or not started). */
static int
lookup_read(struct track_lookup *lk)
{
	struct mtqp_server *s = lk->ss->srv;
	struct timespec now;
	long left;

	clock_gettime(CLOCK_MONOTONIC, &now);
	left = MTQP_SERVER_TRACK_DEADLINE -
	    ((now.tv_sec - lk->start.tv_sec) * 1000 +
	        (now.tv_nsec - lk->start.tv_nsec) / 1000000);
	if (left <= 0)
		return -1;
	lk->job = store_reader_lookup(s->deps.reader, lk->envid, lk->cert,
	    (unsigned int)left, lookup_found, lk);
	return lk->job != NULL ? 0 : -1;
}

static void
lookup_caught_up(void *arg, int ok)
{
	struct track_lookup *lk = arg;

	lk->wait = NULL;
	if (!ok) {
		lookup_end(lk, MTQP_PROTO_LOOKUP_TIMEOUT, NULL, 0, NULL);
		return;
	}
	if (lookup_read(lk) == -1)
		lookup_end(lk, MTQP_PROTO_LOOKUP_TIMEOUT, NULL, 0, NULL);
}

/* A session that goes away withdraws its lookup. */
static void
lookup_cancel(struct mtqp_session *ss)
{
	struct track_lookup *lk = ss->lookup;

	if (lk == NULL)
		return;
	if (lk->wait != NULL)
		queue_store_wait_cancel(ss->srv->deps.queue, lk->wait);
	if (lk->job != NULL)
		store_reader_cancel(lk->job);
	explicit_bzero(lk->cert, sizeof(lk->cert));
	free(lk);
	ss->lookup = NULL;
}

/*
 * The connection's side of mtqp_proto (struct mtqp_proto_ops).  None of
 * them frees the session: proto_close() records the reason and
 * session_read(), which every caller of mtqp_proto_* ends with, closes.
 */

static int
proto_send(void *io, const struct buf *b)
{
	return send_buf(io, b);
}

static void
proto_close(void *io, const char *reason)
{
	struct mtqp_session *ss = io;

	if (ss->close_reason == NULL)
		ss->close_reason = reason;
}

static void
proto_busy(void *io, int busy)
{
	struct mtqp_session *ss = io;

	if (ss->state == SESS_CLOSING || ss->conn == NULL)
		return;
	if (busy) {
		ss->state = SESS_BUSY;
		bufferevent_disable(ss->bev, EV_READ);
	} else {
		ss->state = SESS_READY;
		bufferevent_enable(ss->bev, EV_READ);
	}
}

static void
proto_touch(void *io)
{
	struct mtqp_session *ss = io;
	struct timeval tv = { ss->srv->conf->mtqp_idle_timeout, 0 };

	if (ss->conn == NULL)
		return;
	/* RFC 3887 §2.5: "any command received should restart" the idle
	 * timer; re-arming the read timeout does that. */
	bufferevent_set_timeouts(ss->bev, NULL, NULL);
	bufferevent_set_timeouts(ss->bev, &tv, &tv);
}

static int
proto_lookup(void *io, const char *envid, const char *secret)
{
	struct mtqp_session *ss = io;
	struct mtqp_server *s = ss->srv;
	unsigned char raw[MTRK_SECRET_MAX];
	struct track_lookup *lk;
	int len;

	if (s->deps.reader == NULL || ss->lookup != NULL ||
	    (lk = calloc(1, sizeof(*lk))) == NULL)
		return -1;
	lk->ss = ss;
	clock_gettime(CLOCK_MONOTONIC, &lk->start);
	str_copy(lk->envid, envid, sizeof(lk->envid));
	len = mtrk_secret_decode(secret, strlen(secret), raw, sizeof(raw));
	if (len == -1 || mtrk_certifier(raw, (size_t)len, lk->cert) == -1)
		memset(lk->cert, 0, sizeof(lk->cert));
	explicit_bzero(raw, sizeof(raw));
	ss->lookup = lk;
	if (s->deps.queue != NULL &&
	    (lk->wait = queue_store_wait(s->deps.queue,
	         MTQP_SERVER_TRACK_DEADLINE, lookup_caught_up, lk)) != NULL)
		return 0;
	if (lookup_read(lk) == 0)
		return 0;
	ss->lookup = NULL;
	free(lk);
	return -1;
}

static int
proto_store_failed(void *io)
{
	struct mtqp_session *ss = io;

	return ss->srv->deps.queue != NULL &&
	    queue_store_failed(ss->srv->deps.queue);
}

static void
on_delay(evutil_socket_t fd, short what, void *arg)
{
	struct mtqp_session *ss = arg;

	(void)fd;
	(void)what;
	mtqp_proto_wake(ss->proto);
	session_read(ss);
}

static long
proto_fail(void *io)
{
	struct mtqp_session *ss = io;
	int64_t wait;
	struct timeval tv;

	wait = mtqp_server_rate_fail(
	    &ss->srv->rate, (const struct sockaddr *)&ss->addr, now_ms());
	if (wait <= 0)
		return 0;
	if (ss->delay == NULL &&
	    (ss->delay = evtimer_new(ss->srv->base, on_delay, ss)) == NULL)
		return 0;
	tv.tv_sec = (time_t)(wait / 1000);
	tv.tv_usec = (suseconds_t)(wait % 1000) * 1000;
	evtimer_add(ss->delay, &tv);
	return (long)wait;
}

/* Firewall mode: the chain's answers came back. */
static void
on_chain(const struct trail_result *res, void *arg)
{
	struct mtqp_session *ss = arg;

	mtqp_proto_chained(ss->proto, res);
	trail_free(ss->trail);
	ss->trail = NULL;
	session_read(ss);
}

/* trail's allow: mtqp_server_chain_allowed, logged when it refuses
 * (PRODUCT.md: such a host "is reported, never contacted"). */
static int
chain_allow(void *arg, const char *name, const struct sockaddr *sa,
    const struct sockaddr *via)
{
	struct mtqp_session *ss = arg;
	const char *why = "";
	char host[128], at[INET6_ADDRSTRLEN + 8], from[INET6_ADDRSTRLEN + 8];

	if (mtqp_server_chain_allowed(ss->srv->conf, name, sa, via, &why))
		return 1;
	log_escape(host, sizeof(host), name, strlen(name));
	if (sa != NULL)
		net_host_text(sa, at, sizeof(at));
	else
		str_copy(at, "-", sizeof(at));
	if (via != NULL)
		net_host_text(via, from, sizeof(from));
	else
		str_copy(from, "-", sizeof(from));
	log_info("%016" PRIx64
	         " mtqp chain-refused host=%s addr=%s via=%s rule=%s",
	    ss->id, host, at, from, why);
	return 0;
}

/* Starts the chain for a found answer whose own entity is own. */
static int
proto_chain(void *io, const char *envid, const char *secret, int tls,
    const void *own, size_t ownlen)
{
	struct mtqp_session *ss = io;
	const struct mtqp_server_deps *d = &ss->srv->deps;
	struct trail_opts o;
	char err[TRAIL_ERROR_MAX], me[TRAIL_SERVER_MAX];

	if (d->dns == NULL)
		return -1;
	snprintf(me, sizeof(me), "%s", ss->srv->conf->hostname);
	memset(&o, 0, sizeof(o));
	o.server = me;
	o.envid = envid;
	o.secret = secret;
	/* RFC 3887 §11: "the same or better" TLS toward the next hop. */
	o.tls = tls ? TRAIL_TLS_REQUIRE : TRAIL_TLS_OPPORTUNISTIC;
	o.ssl_ctx = d->tls_client;
	o.timeout = MTQP_SERVER_CHAIN_TIMEOUT;
	o.first_body = own;
	o.first_len = ownlen;
	o.first_server = me;
	o.allow = chain_allow;
	o.allow_arg = ss;
	ss->trail = trail_start(
	    ss->srv->base, d->dns, &o, on_chain, ss, err, sizeof(err));
	if (ss->trail == NULL) {
		log_warnx(
		    "%016" PRIx64 " mtqp chain error=\"%s\"", ss->id, err);
		return -1;
	}
	return 0;
}

/* STARTTLS was answered "+OK": netio drops the input behind it (P10),
 * sends the +OK in plaintext and starts the handshake, bounded by
 * MTQP_SERVER_HANDSHAKE_TIMEOUT; it keeps the idle timer and the read
 * limit across it.  Returns 0, or -1 (TLS cannot start). */
static int
do_starttls(struct mtqp_session *ss)
{
	if (ss->conn == NULL || netio_conn_starttls(ss->conn) == -1)
		return -1;
	ss->bev = netio_conn_bev(ss->conn);
	ss->state = SESS_TLS;
	return 0;
}

static int
proto_starttls(void *io)
{
	return do_starttls(io);
}

static const struct mtqp_proto_ops proto_ops = {
	.send = proto_send,
	.close = proto_close,
	.busy = proto_busy,
	.touch = proto_touch,
	.starttls = proto_starttls,
	.lookup = proto_lookup,
	.store_failed = proto_store_failed,
	.fail = proto_fail,
	.chain = proto_chain,
};

static struct mtqp_proto *
proto_new(struct mtqp_session *ss)
{
	struct mtqp_proto_params p;

	memset(&p, 0, sizeof(p));
	p.conf = ss->srv->conf;
	p.tls_server = ss->srv->tls_server;
	p.id = ss->id;
	p.addr = ss->addrtext;
	p.ops = &proto_ops;
	p.io = ss;
	p.results = ss->srv->results;
	return mtqp_proto_new(&p);
}

/* Hands what is buffered to the protocol, which answers in order; then
 * closes if it asked to. */
static void
session_read(struct mtqp_session *ss)
{
	unsigned char chunk[4096];
	size_t room;
	ev_ssize_t k;

	while (ss->close_reason == NULL && ss->state == SESS_READY) {
		struct evbuffer *in = bufferevent_get_input(ss->bev);

		while ((room = mtqp_proto_room(ss->proto)) > 0 &&
		    evbuffer_get_length(in) > 0) {
			k = evbuffer_copyout(in, chunk,
			    room < sizeof(chunk) ? room : sizeof(chunk));
			if (k <= 0 ||
			    mtqp_proto_push(ss->proto, chunk, (size_t)k) == -1)
				break;
			evbuffer_drain(in, (size_t)k);
		}
		/* After STARTTLS ss->bev is the filter: in is not looked
		 * at again. */
		if (mtqp_proto_run(ss->proto) != MTQP_PROTO_READY ||
		    evbuffer_get_length(in) == 0)
			break;
	}
	if (ss->close_reason != NULL)
		session_close(ss, ss->close_reason);
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
		/* RFC 3887 §6.2: a new greeting, without STARTTLS
		 * (mtqp_proto_tls_done). */
		ss->state = SESS_READY;
		log_info("%016" PRIx64 " mtqp tls version=%s", ss->id,
		    SSL_get_version(netio_conn_ssl(c)));
		mtqp_proto_tls_done(ss->proto);
		bufferevent_enable(ss->bev, EV_READ);
		session_read(ss);
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
	lookup_cancel(ss);
	trail_free(ss->trail);
	if (ss->delay != NULL)
		event_free(ss->delay);
	if (ss->reap != NULL)
		event_free(ss->reap);
	mtqp_proto_free(ss->proto);
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

	if ((ss = calloc(1, sizeof(*ss))) == NULL) {
		netio_conn_abort(c);
		return;
	}
	ss->srv = s;
	memcpy(&ss->addr, netio_conn_addr(c), sizeof(ss->addr));
	str_copy(ss->addrtext, netio_conn_addrtext(c), sizeof(ss->addrtext));
	if (RAND_bytes((unsigned char *)&ss->id, sizeof(ss->id)) != 1)
		ss->id = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)ss;
	if ((ss->proto = proto_new(ss)) == NULL) {
		free(ss);
		netio_conn_abort(c);
		return;
	}
	ss->conn = c;
	ss->bev = netio_conn_bev(c);
	ss->next = s->head;
	if (s->head != NULL)
		s->head->prev = ss;
	s->head = ss;
	s->nsessions++;
	log_info("%016" PRIx64 " mtqp connect addr=%s", ss->id, ss->addrtext);
	netio_conn_setcb(c, &session_cb, ss);
	netio_conn_set_read_max(c, MTQP_READ_HIGH);
	netio_conn_set_timeout(c, (int)s->conf->mtqp_idle_timeout);
	if (send_greeting(ss) == -1)
		session_free(ss);
}

struct mtqp_server *
mtqp_server_new(struct event_base *base, const struct conf *conf,
    SSL_CTX *tls_server, char *err, size_t errsize)
{
	struct mtqp_server *s;
	struct netio_opts o;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errsize, "mtqp: out of memory");
		return NULL;
	}
	s->base = base;
	s->conf = conf;
	s->tls_server = tls_server;
	memset(&o, 0, sizeof(o));
	o.name = "mtqp";
	o.max_conns = MTQP_SERVER_SESSIONS_MAX;
	o.max_per_addr = MTQP_SERVER_SESSIONS_PER_ADDR_MAX;
	o.busy_line = "-TEMP/MTQP/unavailable too many connections\r\n";
	o.tls = tls_server;
	o.handshake_timeout = MTQP_SERVER_HANDSHAKE_TIMEOUT;
	if ((s->net = netio_new(base, &o, on_accept, s)) == NULL) {
		snprintf(err, errsize, "mtqp: out of memory");
		free(s);
		return NULL;
	}
	if (netio_listen_conf(s->net, conf->mtqp_listen, conf->n_mtqp_listen,
	        err, errsize) == -1) {
		mtqp_server_free(s);
		return NULL;
	}
	return s;
}

void
mtqp_server_start(struct mtqp_server *s, const struct mtqp_server_deps *deps)
{
	s->deps = *deps;
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

void
mtqp_server_stats(const struct mtqp_server *s, struct mtqp_server_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return;
	out->sessions_open = netio_count(s->net);
	memcpy(out->track, s->results, sizeof(out->track));
}
