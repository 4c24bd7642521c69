/*
 * mtqp_client: one asynchronous MTQP query; see mtqp_client.h.
 *
 * Phases: SRV lookup (unless a port or an IP literal was given), address
 * lookup per target, connect per address, greeting, optional STARTTLS and
 * second greeting, TRACK, response.  One evtimer bounds each phase.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/tls.h"
#include "dns/dns.h"
#include "msgtrk/buf.h"
#include "msgtrk/mtqp.h"
#include "msgtrk/str.h"
#include "mtqp/mtqp_client.h"

enum cl_state {
	CL_SRV, /* waiting for the SRV answer */
	CL_ADDR, /* waiting for a target's addresses */
	CL_CONNECT, /* TCP connect in progress */
	CL_GREETING, /* waiting for the greeting */
	CL_STARTTLS, /* waiting for the answer to STARTTLS */
	CL_HANDSHAKE, /* TLS handshake */
	CL_GREETING_TLS, /* waiting for the greeting after TLS */
	CL_TRACK, /* waiting for the TRACK answer */
	CL_DONE,
};

struct cl_target {
	char host[DNS_NAME_MAX + 1];
	unsigned int port;
};

struct mtqp_client {
	struct event_base *base;
	struct dns *dns;
	mtqp_client_cb cb;
	void *arg;
	char host[MTQP_DOMAIN_MAX + 1];
	unsigned int port;
	char envid[MTQP_ENVID_TEXT_MAX + 1];
	char secret[MTQP_SECRET_TEXT_MAX + 1];
	enum mtqp_client_tls tlsmode;
	SSL_CTX *ctx;
	int tls_seen;
	const char *const *tls_known; /* borrowed, see mtqp_client.h */
	size_t ntls_known;
	unsigned int timeout;
	int (*allow)(void *, const char *, const struct sockaddr *);
	void *allow_arg;

	enum cl_state state;
	struct dns_query *q;
	struct event *timer;
	struct event *kick; /* deferred start / IP literal */
	struct cl_target targets[DNS_SRV_MAX];
	size_t ntargets, ti;
	struct sockaddr_storage addrs[MTQP_CLIENT_ADDRS_MAX];
	socklen_t addrlens[MTQP_CLIENT_ADDRS_MAX];
	size_t naddrs, ai, tried;
	struct bufferevent *bev;
	struct mtqp_resp_reader *rd;
	struct mtqp_resp resp;
	char server[MTQP_CLIENT_SERVER_MAX];
	int tls, tls_offered, downgrade;
	int need_tls; /* REQUIRE, or a server known to do TLS */
	unsigned char spki[MTQP_CLIENT_SPKI_LEN];
	char error[MTQP_CLIENT_ERROR_MAX];
};

static void next_target(struct mtqp_client *);
static void next_addr(struct mtqp_client *);

static void
arm(struct mtqp_client *c, unsigned int secs)
{
	struct timeval tv = { (time_t)secs, 0 };

	evtimer_add(c->timer, &tv);
}

static void
drop_conn(struct mtqp_client *c)
{
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	mtqp_resp_reader_free(c->rd);
	c->rd = NULL;
}

/* Reports and ends the query; c may be freed by the callback. */
static void
finish(struct mtqp_client *c, enum mtqp_client_status st)
{
	struct mtqp_client_result r;

	c->state = CL_DONE;
	evtimer_del(c->timer);
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	memset(&r, 0, sizeof(r));
	r.status = st;
	r.server = c->server;
	r.tls = c->tls;
	r.tls_offered = c->tls_offered;
	r.downgrade = c->downgrade;
	if (c->tls)
		memcpy(r.spki_sha256, c->spki, sizeof(r.spki_sha256));
	r.resp = st == MTQP_CLIENT_ERROR ? NULL : &c->resp;
	r.error = st == MTQP_CLIENT_ERROR ? c->error : "";
	c->cb(&r, c->arg);
}

/* Reports an error "where: what". */
static void
fail(struct mtqp_client *c, const char *where, const char *what)
{
	snprintf(c->error, sizeof(c->error), "%.270s: %.200s", where, what);
	finish(c, MTQP_CLIENT_ERROR);
}

/* A connection-level failure: try the next address. */
static void
conn_failed(struct mtqp_client *c, const char *why)
{
	snprintf(c->error, sizeof(c->error), "%.270s: %.200s", c->server, why);
	drop_conn(c);
	next_addr(c);
}

static int
send_cmd(struct mtqp_client *c, const char *verb, const char *a, const char *b)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	int rc;

	if (b != NULL)
		rc = evbuffer_add_printf(out, "%s %s %s\r\n", verb, a, b);
	else if (a != NULL)
		rc = evbuffer_add_printf(out, "%s %s\r\n", verb, a);
	else
		rc = evbuffer_add_printf(out, "%s\r\n", verb);
	return rc < 0 ? -1 : 0;
}

/* Returns 0, or -1 if the query ended (c may be gone: the callback may
 * have freed it). */
static int
send_track(struct mtqp_client *c)
{
	c->state = CL_TRACK;
	evtimer_del(c->timer);
	arm(c, c->timeout);
	if (send_cmd(c, "TRACK", c->envid, c->secret) == -1) {
		fail(c, c->server, "out of memory");
		return -1;
	}
	return 0;
}

static void on_read(struct bufferevent *, void *);
static void on_event(struct bufferevent *, short, void *);

static void
start_tls(struct mtqp_client *c)
{
	SSL *ssl;
	struct bufferevent *tb;
	char name[DNS_NAME_MAX + 1];

	/* Nothing may follow the answer to STARTTLS (RFC 3887 §6.2: the
	 * pre-TLS stream is discarded; pipelined data is an attack). */
	if (mtqp_resp_reader_pending(c->rd) != 0 ||
	    evbuffer_get_length(bufferevent_get_input(c->bev)) != 0) {
		fail(c, c->server, "data pipelined after the STARTTLS answer");
		return;
	}
	str_copy(name, c->targets[c->ti].host, sizeof(name));
	if ((ssl = SSL_new(c->ctx)) == NULL ||
	    tls_client_expect(ssl, name) == -1) {
		SSL_free(ssl);
		fail(c, c->server, "TLS setup failed");
		return;
	}
	tb = bufferevent_openssl_filter_new(c->base, c->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (tb == NULL) {
		SSL_free(ssl);
		fail(c, c->server, "TLS setup failed");
		return;
	}
	c->bev = tb;
	/* RFC 3887 §6.2: forget everything learned before TLS. */
	mtqp_resp_reader_free(c->rd);
	if ((c->rd = mtqp_resp_reader_new(NULL)) == NULL) {
		fail(c, c->server, "out of memory");
		return;
	}
	c->state = CL_HANDSHAKE;
	bufferevent_setcb(tb, on_read, NULL, on_event, c);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
}

/* Returns 1 if the server talked to is one the caller remembers as doing
 * TLS (opts.tls_known), else 0. */
static int
known_tls(const struct mtqp_client *c)
{
	size_t i;

	for (i = 0; i < c->ntls_known; i++)
		if (c->tls_known[i] != NULL &&
		    str_casecmp(c->tls_known[i], c->server) == 0)
			return 1;
	return 0;
}

/* Stores the SHA-256 of the peer's SubjectPublicKeyInfo (the key, not the
 * certificate: certificates are renewed with the same key).  Returns 0,
 * or -1 if there is no peer certificate or OpenSSL fails. */
static int
spki_digest(struct mtqp_client *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	X509 *x = NULL;
	unsigned char *der = NULL;
	unsigned int mdlen = 0;
	int n, rc = -1;

	if (ssl == NULL || (x = SSL_get1_peer_certificate(ssl)) == NULL)
		goto done;
	if ((n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der)) <= 0)
		goto done;
	if (EVP_Digest(der, (size_t)n, c->spki, &mdlen, EVP_sha256(), NULL) !=
	        1 ||
	    mdlen != sizeof(c->spki))
		goto done;
	rc = 0;
done:
	OPENSSL_free(der);
	X509_free(x);
	return rc;
}

/* Returns 0 to go on reading, or -1 if the query ended (c may be gone:
 * the callback may have freed it). */
static int
on_greeting(struct mtqp_client *c)
{
	struct mtqp_greeting g;
	enum mtqp_greeting_error ge;
	int want, known;

	if (mtqp_greeting_parse(&c->resp, &g, &ge) == -1) {
		fail(c, c->server, "not an MTQP greeting");
		return -1;
	}
	if (!g.ok) {
		snprintf(c->error, sizeof(c->error),
		    "%.270s: service unavailable (%s)", c->server,
		    g.admin ? "admin" : "unavailable");
		finish(c, MTQP_CLIENT_ERROR);
		return -1;
	}
	if (c->state == CL_GREETING_TLS) {
		/* RFC 3887 §6.2: STARTTLS "MUST NOT" be listed again. */
		if (g.starttls) {
			fail(c, c->server, "STARTTLS offered again after TLS");
			return -1;
		}
		return send_track(c);
	}
	c->tls_offered = g.starttls;
	/* RFC 3887 §11: a man in the middle can delete the STARTTLS option;
	 * a client records "that a particular MTQP server offers TLS during
	 * one session" and generates "an alarm if it does not appear in an
	 * option response for a later session".  A server known to do TLS
	 * must do it again. */
	known =
	    c->tlsmode != MTQP_CLIENT_TLS_NONE && (c->tls_seen || known_tls(c));
	c->need_tls = c->tlsmode == MTQP_CLIENT_TLS_REQUIRE || known;
	if (known && !g.starttls) {
		c->downgrade = 1;
		fail(c, c->server,
		    "STARTTLS was offered before and is missing now "
		    "(possible downgrade attack)");
		return -1;
	}
	want =
	    g.starttls && c->ctx != NULL && c->tlsmode != MTQP_CLIENT_TLS_NONE;
	if (c->need_tls && !want) {
		fail(c, c->server,
		    known ? "TLS was used before and is not possible now (no "
		            "trust store)"
		          : "TLS required but not available");
		return -1;
	}
	if (!want)
		return send_track(c);
	c->state = CL_STARTTLS;
	if (send_cmd(c, "STARTTLS", c->targets[c->ti].host, NULL) == -1) {
		fail(c, c->server, "out of memory");
		return -1;
	}
	return 0;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct mtqp_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	unsigned char chunk[4096];
	int r;

	while (c->state != CL_DONE && c->state != CL_HANDSHAKE) {
		ev_ssize_t k;

		r = mtqp_resp_reader_next(c->rd, &c->resp);
		if (r == -1) {
			snprintf(c->error, sizeof(c->error), "%s: %s",
			    c->server,
			    mtqp_resp_strerror(mtqp_resp_reader_error(c->rd)));
			finish(c, MTQP_CLIENT_ERROR);
			return;
		}
		if (r == 1) {
			switch (c->state) {
			case CL_GREETING:
			case CL_GREETING_TLS:
				if (on_greeting(c) == -1)
					return;
				break;
			case CL_STARTTLS:
				if (c->resp.status != MTQP_OK &&
				    c->resp.status != MTQP_OK_MULTI) {
					if (c->need_tls) {
						fail(c, c->server,
						    "STARTTLS refused");
						return;
					}
					if (send_track(c) == -1)
						return;
					break;
				}
				start_tls(c);
				return;
			case CL_TRACK:
				finish(c,
				    c->resp.status == MTQP_OK_MULTI
				        ? MTQP_CLIENT_ANSWER
				        : MTQP_CLIENT_NEGATIVE);
				return;
			default:
				fail(c, c->server, "unexpected data");
				return;
			}
			continue;
		}
		if ((k = evbuffer_copyout(in, chunk, sizeof(chunk))) <= 0)
			return;
		if (mtqp_resp_reader_push(c->rd, chunk, (size_t)k) == -1) {
			fail(c, c->server, "response too large");
			return;
		}
		evbuffer_drain(in, (size_t)k);
	}
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct mtqp_client *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == CL_CONNECT) {
			c->state = CL_GREETING;
			evtimer_del(c->timer);
			arm(c, c->timeout);
		} else if (c->state == CL_HANDSHAKE) {
			if (spki_digest(c) == -1) {
				fail(c, c->server, "TLS: no server key");
				return;
			}
			c->tls = 1;
			c->state = CL_GREETING_TLS;
			on_read(c->bev, c);
		}
		return;
	}
	if (c->state == CL_CONNECT) {
		conn_failed(
		    c, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		return;
	}
	if (c->state == CL_HANDSHAKE) {
		fail(c, c->server, "TLS handshake failed (certificate?)");
		return;
	}
	fail(c, c->server, "connection closed");
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct mtqp_client *c = arg;

	(void)fd;
	(void)what;
	if (c->state == CL_CONNECT) {
		conn_failed(c, "connect timeout");
		return;
	}
	fail(c, c->server, "timeout");
}

static void
set_server(struct mtqp_client *c, const char *host, unsigned int port)
{
	if (strchr(host, ':') != NULL)
		snprintf(
		    c->server, sizeof(c->server), "[%.253s]:%u", host, port);
	else
		snprintf(c->server, sizeof(c->server), "%.253s:%u", host, port);
}

/* Tries the next address of the current target, then the next target. */
static void
next_addr(struct mtqp_client *c)
{
	struct sockaddr_storage *sa;

	if (c->ai >= c->naddrs || c->tried >= MTQP_CLIENT_ADDRS_MAX) {
		c->ti++;
		next_target(c);
		return;
	}
	sa = &c->addrs[c->ai];
	if (c->allow != NULL &&
	    !c->allow(c->allow_arg, c->targets[c->ti].host,
	        (const struct sockaddr *)sa)) {
		snprintf(c->error, sizeof(c->error), "%.270s: not allowed",
		    c->server);
		c->ai++;
		next_addr(c);
		return;
	}
	c->tried++;
	c->state = CL_CONNECT;
	if ((c->rd = mtqp_resp_reader_new(NULL)) == NULL ||
	    (c->bev = bufferevent_socket_new(
	         c->base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		fail(c, c->server, "out of memory");
		return;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	arm(c, MTQP_CLIENT_CONNECT_TIMEOUT);
	c->ai++;
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)sa,
	        (int)c->addrlens[c->ai - 1]) == -1)
		conn_failed(c, "connect failed");
}

static int
add_addr(struct mtqp_client *c, int family, const void *a, unsigned int port)
{
	struct sockaddr_storage *ss;

	if (c->naddrs >= MTQP_CLIENT_ADDRS_MAX)
		return -1;
	ss = &c->addrs[c->naddrs];
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		memcpy(&s4->sin_addr, a, sizeof(s4->sin_addr));
		c->addrlens[c->naddrs] = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		memcpy(&s6->sin6_addr, a, sizeof(s6->sin6_addr));
		c->addrlens[c->naddrs] = sizeof(*s6);
	}
	c->naddrs++;
	return 0;
}

static void
on_addr(const struct dns_result *res, void *arg)
{
	struct mtqp_client *c = arg;
	const struct cl_target *t = &c->targets[c->ti];
	size_t i;

	c->q = NULL;
	c->naddrs = c->ai = 0;
	if (res->status != DNS_OK) {
		snprintf(c->error, sizeof(c->error), "%.270s: %.200s", t->host,
		    res->error);
		c->ti++;
		next_target(c);
		return;
	}
	for (i = 0; i < res->n; i++)
		(void)add_addr(c, res->addr[i].family,
		    res->addr[i].family == AF_INET
		        ? (const void *)&res->addr[i].u.v4
		        : (const void *)&res->addr[i].u.v6,
		    t->port);
	next_addr(c);
}

static void
next_target(struct mtqp_client *c)
{
	const struct cl_target *t;
	struct in_addr a4;
	struct in6_addr a6;

	if (c->ti >= c->ntargets || c->tried >= MTQP_CLIENT_ADDRS_MAX) {
		if (c->error[0] == '\0')
			snprintf(c->error, sizeof(c->error),
			    "%.270s: no address to connect to", c->host);
		finish(c, MTQP_CLIENT_ERROR);
		return;
	}
	t = &c->targets[c->ti];
	set_server(c, t->host, t->port);
	c->naddrs = c->ai = 0;
	if (c->allow != NULL && !c->allow(c->allow_arg, t->host, NULL)) {
		snprintf(
		    c->error, sizeof(c->error), "%.270s: not allowed", t->host);
		c->ti++;
		next_target(c);
		return;
	}
	if (inet_pton(AF_INET, t->host, &a4) == 1) {
		(void)add_addr(c, AF_INET, &a4, t->port);
		next_addr(c);
		return;
	}
	if (inet_pton(AF_INET6, t->host, &a6) == 1) {
		(void)add_addr(c, AF_INET6, &a6, t->port);
		next_addr(c);
		return;
	}
	c->state = CL_ADDR;
	if ((c->q = dns_addr(c->dns, t->host, on_addr, c)) == NULL)
		fail(c, t->host, "DNS lookup could not start");
}

static void
on_srv(const struct dns_result *res, void *arg)
{
	struct mtqp_client *c = arg;
	size_t i;

	c->q = NULL;
	switch (res->status) {
	case DNS_OK:
		/* dns_srv() returns the records in RFC 2782 order. */
		for (i = 0; i < res->n && c->ntargets < DNS_SRV_MAX; i++) {
			str_copy(c->targets[c->ntargets].host,
			    res->srv[i].target, sizeof(c->targets[0].host));
			c->targets[c->ntargets].port = res->srv[i].port;
			c->ntargets++;
		}
		break;
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		/* RFC 3887 §2.1: no SRV record, the host itself on 1038. */
		str_copy(
		    c->targets[0].host, c->host, sizeof(c->targets[0].host));
		c->targets[0].port = MTQP_PORT;
		c->ntargets = 1;
		break;
	case DNS_PERMFAIL:
		/* RFC 2782: a "." target: the service is "decidedly not
		 * available". */
		fail(c, c->host, "no MTQP service (SRV)");
		return;
	default:
		snprintf(c->error, sizeof(c->error), "_mtqp._tcp.%.200s: %s",
		    c->host, res->error);
		finish(c, MTQP_CLIENT_ERROR);
		return;
	}
	next_target(c);
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct mtqp_client *c = arg;
	char name[DNS_NAME_MAX + 16];
	struct in_addr a4;
	struct in6_addr a6;

	(void)fd;
	(void)what;
	if (c->port != 0 || inet_pton(AF_INET, c->host, &a4) == 1 ||
	    inet_pton(AF_INET6, c->host, &a6) == 1) {
		str_copy(
		    c->targets[0].host, c->host, sizeof(c->targets[0].host));
		c->targets[0].port = c->port != 0 ? c->port : MTQP_PORT;
		c->ntargets = 1;
		next_target(c);
		return;
	}
	snprintf(name, sizeof(name), "_mtqp._tcp.%s", c->host);
	c->state = CL_SRV;
	if ((c->q = dns_srv(c->dns, name, on_srv, c)) == NULL)
		fail(c, c->host, "DNS lookup could not start");
}

struct mtqp_client *
mtqp_client_track(struct event_base *base, struct dns *dns,
    const struct mtqp_client_opts *o, mtqp_client_cb cb, void *arg, char *err,
    size_t errsize)
{
	struct mtqp_client *c;
	const char *h;
	size_t hl;

	if (o == NULL || o->host == NULL || o->envid == NULL ||
	    o->secret == NULL || cb == NULL || o->port > 65535 ||
	    mtqp_cmd_envid_check(o->envid, strlen(o->envid)) == -1 ||
	    mtqp_cmd_secret_check(o->secret, strlen(o->secret)) == -1) {
		snprintf(err, errsize, "mtqp client: bad arguments");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errsize, "mtqp client: out of memory");
		return NULL;
	}
	/* "[literal]" -> literal. */
	h = o->host;
	hl = strlen(h);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(c->host)) {
		free(c);
		snprintf(err, errsize, "mtqp client: bad host name");
		return NULL;
	}
	memcpy(c->host, h, hl);
	c->host[hl] = '\0';
	str_lower(c->host);
	c->base = base;
	c->dns = dns;
	c->cb = cb;
	c->arg = arg;
	c->port = o->port;
	str_copy(c->envid, o->envid, sizeof(c->envid));
	str_copy(c->secret, o->secret, sizeof(c->secret));
	c->tlsmode = o->tls;
	c->ctx = o->ssl_ctx;
	c->tls_seen = o->tls_seen;
	c->tls_known = o->tls_known;
	c->ntls_known = o->tls_known != NULL ? o->ntls_known : 0;
	c->timeout = o->timeout != 0 ? o->timeout : MTQP_CLIENT_TIMEOUT_MIN;
	c->allow = o->allow;
	c->allow_arg = o->allow_arg;
	set_server(c, c->host, c->port != 0 ? c->port : MTQP_PORT);
	c->timer = evtimer_new(base, on_timer, c);
	c->kick = evtimer_new(base, on_kick, c);
	if (c->timer == NULL || c->kick == NULL) {
		mtqp_client_free(c);
		snprintf(err, errsize, "mtqp client: out of memory");
		return NULL;
	}
	/* Never call back from inside this call. */
	event_active(c->kick, EV_TIMEOUT, 1);
	return c;
}

void
mtqp_client_free(struct mtqp_client *c)
{
	if (c == NULL)
		return;
	dns_cancel(c->q);
	drop_conn(c);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->kick != NULL)
		event_free(c->kick);
	explicit_bzero(c->secret, sizeof(c->secret));
	free(c);
}
