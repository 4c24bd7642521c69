/*
 * http: the server: listeners through netio, admission of evhttp's
 * connections into netio's caps, per-connection deadlines, routing, and
 * every answer's headers and log line.  See http.h.
 *
 * Admission.  libevent 2.1's evhttp accepts on listeners it owns and
 * makes each connection's bufferevent through evhttp_set_bevcb() before
 * it knows the socket (src/common/netio.h).  Our callback makes it
 * (netio_bev_new) and queues it for an admission pass, an event made
 * active at once: it runs after evhttp's accept callback returns and
 * before the loop polls again, so before anything is read from the
 * client.  The pass finds the socket's peer, asks netio_admit() (the
 * per-address and overall caps, one table for the HTTP and HTTPS
 * listeners) and either frees the connection (a plaintext one first
 * hears a 503) or takes it on: a close callback (netio_release, and the
 * requests still waiting are withdrawn) and the request deadline.
 * evhttp's connection is reached through the bufferevent's callback
 * argument, which evhttp sets to it.
 */
#include <sys/socket.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/conf.h"
#include "common/json.h"
#include "common/log.h"
#include "common/net.h"
#include "common/netio.h"
#include "http/http_int.h"
#include "msgtrk/b64.h"
#include "msgtrk/str.h"
#include "store/store_reader.h"

/* The refusal a plaintext connection over a cap hears. */
#define HTTP_BUSY \
	"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n" \
	"Content-Length: 20\r\nConnection: close\r\n\r\n" \
	"too many connections"

/* Every answer: no script, no frames, no foreign assets (the stylesheet
 * is ours, the picture inline SVG), no sniffing, no referrer. */
#define HTTP_CSP \
	"default-src 'none'; style-src 'self'; img-src 'self'; " \
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

static const char *
reason_phrase(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 303:
		return "See Other";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	}
	return "Unknown";
}

int64_t
http_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long
http_req_ms(const struct http_req *r)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)((ts.tv_sec - r->start.tv_sec) * 1000 +
	    (ts.tv_nsec - r->start.tv_nsec) / 1000000);
}

int
http_token(char *out, size_t outsize, size_t n)
{
	unsigned char raw[64];
	char enc[B64_LEN_PADDED(64) + 1];
	int len, i;

	if (n > sizeof(raw) || RAND_bytes(raw, (int)n) != 1)
		return -1;
	len = b64_encode(raw, n, B64_PAD_NONE, enc, sizeof(enc));
	explicit_bzero(raw, sizeof(raw));
	if (len < 0 || (size_t)len >= outsize) {
		explicit_bzero(enc, sizeof(enc));
		return -1;
	}
	memcpy(out, enc, (size_t)len + 1);
	explicit_bzero(enc, sizeof(enc));
	/* base64url (RFC 4648 §5): cookie- and form-safe. */
	for (i = 0; i < len; i++)
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	return 0;
}

int
http_token_equal(const char *a, const char *b)
{
	size_t n = strlen(a);

	return n == strlen(b) && n > 0 && CRYPTO_memcmp(a, b, n) == 0;
}

/*
 * Connections
 */

static size_t
conn_bucket(const struct evhttp_connection *evcon)
{
	return ((uintptr_t)evcon >> 4) % HTTP_CONN_BUCKETS;
}

static struct http_conn *
conn_find(struct http_server *s, const struct evhttp_connection *evcon)
{
	struct http_conn *c;

	for (c = s->bucket[conn_bucket(evcon)]; c != NULL; c = c->hnext)
		if (c->evcon == evcon)
			return c;
	return NULL;
}

static void req_cancel(struct http_req *r);

static void
on_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct http_conn *c = arg;

	(void)fd;
	(void)ev;
	log_info(
	    "- http timeout id=%016" PRIx64 " addr=%s", c->id, c->addrtext);
	/* The close callback frees c. */
	evhttp_connection_free(c->evcon);
}

static void
conn_deadline(struct http_conn *c)
{
	struct timeval tv = { HTTP_REQUEST_DEADLINE, 0 };

	if (c->deadline != NULL)
		event_add(c->deadline, &tv);
}

/* evhttp closes c's connection (the client left, a timeout, our answer
 * with "Connection: close", evhttp_connection_free()). */
static void
on_conn_close(struct evhttp_connection *evcon, void *arg)
{
	struct http_conn *c = arg, **pp;
	struct http_server *s = c->s;

	(void)evcon;
	while (c->reqs != NULL)
		req_cancel(c->reqs);
	netio_release(s->net, (const struct sockaddr *)&c->addr);
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->watch != NULL)
		event_free(c->watch);
	for (pp = &s->bucket[conn_bucket(c->evcon)]; *pp != NULL;
	     pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	free(c);
}

/* Takes one new connection on, or refuses it. */
static void
admit_one(struct http_server *s, struct bufferevent *bev, int tls)
{
	void (*rcb)(struct bufferevent *, void *);
	struct evhttp_connection *evcon;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct http_conn *c;
	evutil_socket_t fd;
	void *cbarg = NULL;
	size_t b;

	bufferevent_getcb(bev, &rcb, NULL, NULL, &cbarg);
	if (cbarg == NULL)
		return; /* evhttp has freed it already */
	evcon = cbarg;
	fd = bufferevent_getfd(bev);
	memset(&ss, 0, sizeof(ss));
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) == -1) {
		evhttp_connection_free(evcon);
		return;
	}
	if (s->stopping || netio_admit(s->net, (struct sockaddr *)&ss) == -1) {
		/* Over a cap: said plainly where we can, then closed. */
		if (!tls)
			(void)send(fd, HTTP_BUSY, sizeof(HTTP_BUSY) - 1,
			    MSG_DONTWAIT | MSG_NOSIGNAL);
		evhttp_connection_free(evcon);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->deadline = event_new(s->base, -1, 0, on_deadline, c)) == NULL) {
		free(c);
		netio_release(s->net, (struct sockaddr *)&ss);
		log_warnx("- http accept failed: out of memory");
		evhttp_connection_free(evcon);
		return;
	}
	c->s = s;
	c->evcon = evcon;
	c->addr = ss;
	c->tls = tls;
	c->id = ++s->next_id;
	net_host_text((struct sockaddr *)&ss, c->addrtext, sizeof(c->addrtext));
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	b = conn_bucket(evcon);
	c->hnext = s->bucket[b];
	s->bucket[b] = c;
	evhttp_connection_set_closecb(evcon, on_conn_close, c);
	conn_deadline(c);
}

static void
on_admit(evutil_socket_t fd, short ev, void *arg)
{
	struct http_server *s = arg;
	size_t i;

	(void)fd;
	(void)ev;
	for (i = 0; i < s->npending; i++) {
		admit_one(s, s->pending[i].bev, s->pending[i].tls);
		bufferevent_decref(s->pending[i].bev);
	}
	s->npending = 0;
}

static struct bufferevent *
make_bev(struct http_server *s, int tls)
{
	struct bufferevent *bev;

	if (s->npending == s->pending_cap) {
		size_t cap = s->pending_cap ? s->pending_cap * 2 : 64;
		struct http_pending *p = realloc(s->pending, cap * sizeof(*p));

		if (p == NULL)
			return NULL;
		s->pending = p;
		s->pending_cap = cap;
	}
	if ((bev = netio_bev_new(s->net, -1, tls)) == NULL)
		return NULL;
	/* Held until the admission pass: evhttp may free it first. */
	bufferevent_incref(bev);
	s->pending[s->npending].bev = bev;
	s->pending[s->npending].tls = tls;
	s->npending++;
	event_active(s->admit_ev, EV_TIMEOUT, 0);
	return bev;
}

static struct bufferevent *
bevcb_plain(struct event_base *base, void *arg)
{
	(void)base;
	return make_bev(arg, 0);
}

static struct bufferevent *
bevcb_tls(struct event_base *base, void *arg)
{
	(void)base;
	return make_bev(arg, 1);
}

/*
 * Requests and answers
 */

void
http_header(struct http_req *r, const char *name, const char *value)
{
	evhttp_add_header(
	    evhttp_request_get_output_headers(r->req), name, value);
}

const char *
http_req_header(struct http_req *r, const char *name)
{
	return evhttp_find_header(
	    evhttp_request_get_input_headers(r->req), name);
}

/* The socket of a connection whose answer waits became readable: the
 * client closed (then the connection goes, and with it the work done
 * for it), or sent more (then we stop watching: it is still there). */
static void
on_watch(evutil_socket_t fd, short ev, void *arg)
{
	struct http_conn *c = arg;
	char b;
	ssize_t n;

	(void)ev;
	n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0 || (n == -1 && (errno == EAGAIN || errno == EINTR))) {
		event_del(c->watch);
		return;
	}
	log_info("- http gone id=%016" PRIx64 " addr=%s", c->id, c->addrtext);
	evhttp_connection_free(c->evcon); /* the close callback frees c */
}

void
http_req_wait(struct http_req *r)
{
	struct http_conn *c = r->c;
	struct bufferevent *bev;

	if (r->cprev != NULL || c->reqs == r)
		return;
	r->cnext = c->reqs;
	if (c->reqs != NULL)
		c->reqs->cprev = r;
	c->reqs = r;
	if (c->watch == NULL &&
	    (bev = evhttp_connection_get_bufferevent(c->evcon)) != NULL &&
	    bufferevent_getfd(bev) >= 0)
		c->watch = event_new(r->s->base, bufferevent_getfd(bev),
		    EV_READ | EV_PERSIST, on_watch, c);
	if (c->watch != NULL)
		event_add(c->watch, NULL);
}

static void
req_unwait(struct http_req *r)
{
	if (r->cprev != NULL)
		r->cprev->cnext = r->cnext;
	else if (r->c->reqs == r)
		r->c->reqs = r->cnext;
	if (r->cnext != NULL)
		r->cnext->cprev = r->cprev;
	r->cprev = r->cnext = NULL;
	if (r->c->reqs == NULL && r->c->watch != NULL)
		event_del(r->c->watch);
}

static void
req_free(struct http_req *r)
{
	req_unwait(r);
	http_track_cancel(r);
	if (r->auth != NULL)
		auth_cancel(r->auth);
	if (r->job != NULL)
		store_reader_cancel(r->job);
	if (r->soon != NULL)
		event_free(r->soon);
	http_form_free(r->form);
	http_track_req_clear(&r->treq);
	explicit_bzero(r, sizeof(*r));
	free(r);
}

/* The connection went away while r waited: withdraw its work. */
static void
req_cancel(struct http_req *r)
{
	log_info("- http cancelled id=%016" PRIx64 " addr=%s path=%s ms=%ld",
	    r->id, r->c->addrtext, r->path, http_req_ms(r));
	req_free(r);
}

void
http_respond(struct http_req *r, int code, const char *ctype, struct buf *body)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(r->req);
	size_t len = body != NULL ? body->len : 0;

	if (ctype != NULL)
		http_header(r, "Content-Type", ctype);
	http_header(r, "Content-Security-Policy", HTTP_CSP);
	http_header(r, "X-Content-Type-Options", "nosniff");
	http_header(r, "X-Frame-Options", "DENY");
	http_header(r, "Referrer-Policy", "no-referrer");
	if (evhttp_find_header(evhttp_request_get_output_headers(r->req),
	        "Cache-Control") == NULL)
		http_header(r, "Cache-Control", "no-store");
	if (r->c->tls)
		http_header(r, "Strict-Transport-Security", "max-age=31536000");
	if (body != NULL && body->len > 0)
		(void)evbuffer_add(out, body->data, body->len);
	if (body != NULL)
		buf_reset(body);
	log_info("- http request id=%016" PRIx64
	         " addr=%s method=%s path=%s status=%d bytes=%zu ms=%ld",
	    r->id, r->c->addrtext,
	    r->method == EVHTTP_REQ_POST       ? "POST"
	        : r->method == EVHTTP_REQ_HEAD ? "HEAD"
	                                       : "GET",
	    r->path, code, len, http_req_ms(r));
	if (code >= 100 && code < 600)
		r->s->answers[code / 100 - 1]++;
	/* The next request has HTTP_REQUEST_DEADLINE from now. */
	conn_deadline(r->c);
	evhttp_send_reply(r->req, code, reason_phrase(code), NULL);
	req_free(r);
}

void
http_error(struct http_req *r, int code, const char *text)
{
	struct buf b;

	buf_init(&b, 4096);
	if (r->api) {
		(void)buf_adds(&b, "{\"error\": ");
		(void)json_cstr(&b, text);
		(void)buf_adds(&b, "}\n");
		http_respond(r, code, "application/json", &b);
	} else {
		(void)buf_addf(&b, "%.1000s\n", text);
		http_respond(r, code, "text/plain; charset=utf-8", &b);
	}
}

void
http_redirect(struct http_req *r, const char *location)
{
	http_header(r, "Location", location);
	http_respond(r, 303, NULL, NULL);
}

/* A form from buf (the body or the query); NULL after answering 400. */
static struct http_form *
form_of(struct http_req *r, struct evbuffer *in, const char *s, size_t n)
{
	struct http_form *f = http_form_new();
	struct evbuffer_iovec v[8];
	int i, nv;
	int rc = 0;

	if (f == NULL) {
		http_error(r, 503, "out of memory");
		return NULL;
	}
	if (in != NULL) {
		nv = evbuffer_peek(in, -1, NULL, v, 8);
		if (nv > 8)
			rc = -1;
		for (i = 0; i < nv && i < 8 && rc == 0; i++)
			rc = http_form_push(f, v[i].iov_base, v[i].iov_len);
		/* A form may hold a secret or a password: the copy in the
		 * input goes now (the parser's is wiped when it is freed). */
		for (i = 0; i < nv && i < 8; i++)
			explicit_bzero(v[i].iov_base, v[i].iov_len);
	} else
		rc = http_form_push(f, s, n);
	if (rc == 0)
		rc = http_form_end(f);
	if (rc == -1) {
		char msg[128];

		snprintf(msg, sizeof(msg), "bad form: %s",
		    http_form_error(f) == HTTP_FORM_OK
		        ? "too fragmented"
		        : http_form_strerror(http_form_error(f)));
		http_form_free(f);
		http_error(r, 400, msg);
		return NULL;
	}
	return f;
}

struct http_form *
http_req_form(struct http_req *r)
{
	const char *ct = http_req_header(r, "Content-Type");

	if (ct == NULL ||
	    str_ncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 ||
	    (ct[33] != '\0' && ct[33] != ';')) {
		http_error(r, 415, "expected a form");
		return NULL;
	}
	return form_of(r, evhttp_request_get_input_buffer(r->req), NULL, 0);
}

struct http_form *
http_req_query(struct http_req *r)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(r->req);
	const char *q = u != NULL ? evhttp_uri_get_query(u) : NULL;

	return form_of(r, NULL, q != NULL ? q : "", q != NULL ? strlen(q) : 0);
}

/*
 * Routing
 */

static void
serve_css(struct http_req *r)
{
	struct buf b;

	buf_init(&b, 65536);
	(void)buf_adds(&b, page_css);
	http_header(r, "Cache-Control", "max-age=3600");
	http_respond(r, 200, "text/css; charset=utf-8", &b);
}

#define M_GET (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD)
#define M_POST EVHTTP_REQ_POST

static const struct route {
	const char *path;
	int methods;
	int api; /* answers errors in JSON */
	void (*fn)(struct http_req *);
} routes[] = {
	{ "/", M_GET, 0, http_track_page },
	{ "/track", M_POST, 0, http_track_form },
	{ "/api/v1/track", M_POST, 1, http_track_api },
	{ "/style.css", M_GET, 0, serve_css },
	{ "/login", M_GET, 0, http_login_page },
	{ "/login", M_POST, 0, http_login_post },
	{ "/logout", M_POST, 0, http_logout },
	{ "/sent", M_GET, 0, http_sent_page },
	{ "/api/v1/sent", M_GET, 1, http_sent_api },
	{ "/admin", M_GET, 0, http_admin_page },
	{ "/api/v1/log", M_GET, 1, http_log_api },
	{ "/api/v1/queue", M_GET, 1, http_queue_api },
	{ "/metrics", M_GET, 0, http_metrics },
	{ "/healthz", M_GET, 0, http_healthz },
};

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct http_server *s = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const struct evhttp_uri *u;
	const struct route *rt = NULL;
	struct evkeyvalq *h;
	struct evkeyval *kv;
	struct http_conn *c;
	struct http_req *r;
	const char *path = NULL;
	size_t i, nh = 0;
	int known = 0;

	if (evcon == NULL || (c = conn_find(s, evcon)) == NULL) {
		evhttp_send_error(req, 503, NULL);
		return;
	}
	event_del(c->deadline);
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		evhttp_send_error(req, 503, NULL);
		conn_deadline(c);
		return;
	}
	r->s = s;
	r->c = c;
	r->req = req;
	r->id = c->id;
	r->method = evhttp_request_get_command(req);
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	if ((u = evhttp_request_get_evhttp_uri(req)) != NULL)
		path = evhttp_uri_get_path(u);
	/* "//x" is an authority, not a path: nothing of ours. */
	if (path == NULL || path[0] != '/')
		path = "";
	log_escape(r->path, sizeof(r->path), path, strlen(path));
	h = evhttp_request_get_input_headers(req);
	for (kv = h->tqh_first; kv != NULL; kv = kv->next.tqe_next)
		nh++;
	if (nh > HTTP_HEADERS_MAX) {
		http_error(r, 431, "too many header fields");
		return;
	}
	if (s->stopping) {
		http_error(r, 503, "shutting down");
		return;
	}
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(routes[i].path, path) != 0)
			continue;
		known = 1;
		if (routes[i].methods & r->method) {
			rt = &routes[i];
			break;
		}
	}
	if (rt == NULL) {
		if (known) {
			int m = 0;

			for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
				if (strcmp(routes[i].path, path) == 0)
					m |= routes[i].methods;
			http_header(r, "Allow",
			    m == (M_GET | M_POST) ? "GET, HEAD, POST"
			        : m == M_POST     ? "POST"
			                          : "GET, HEAD");
			r->api = strncmp(path, "/api/", 5) == 0;
			http_error(r, 405, "method not allowed");
		} else
			http_error(r, 404, "not found");
		return;
	}
	r->api = rt->api;
	rt->fn(r);
}

/*
 * The server
 */

static void
no_accept(struct netio_conn *nc, void *arg)
{
	(void)arg;
	netio_conn_abort(nc); /* every listener is evhttp's */
}

static struct evhttp *
make_evhttp(struct http_server *s, int tls)
{
	struct evhttp *h;

	if ((h = evhttp_new(s->base)) == NULL)
		return NULL;
	evhttp_set_bevcb(h, tls ? bevcb_tls : bevcb_plain, s);
	evhttp_set_gencb(h, on_request, s);
	evhttp_set_max_headers_size(h, HTTP_HEADERS_SIZE_MAX);
	evhttp_set_max_body_size(h, HTTP_BODY_MAX);
	evhttp_set_timeout(h, HTTP_IDLE_TIMEOUT);
	evhttp_set_allowed_methods(
	    h, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
	return h;
}

static int
bind_all(struct http_server *s, struct evhttp *h, const struct conf_addr *a,
    size_t n, char *err, size_t errsize)
{
	struct evconnlistener *l;
	size_t i;

	for (i = 0; i < n; i++) {
		if (netio_listen(s->net, (const struct sockaddr *)&a[i].ss,
		        a[i].len, NETIO_LISTEN_EXTERNAL, &l, err,
		        errsize) == -1)
			return -1;
		if (evhttp_bind_listener(h, l) == NULL) {
			snprintf(err, errsize, "http: cannot use a listener");
			return -1;
		}
	}
	return 0;
}

struct http_server *
http_server_new(struct event_base *base, const struct conf *conf,
    SSL_CTX *tls_server, char *err, size_t errsize)
{
	struct http_server *s;
	struct netio_opts o;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errsize, "http: out of memory");
		return NULL;
	}
	s->base = base;
	s->conf = conf;
	s->tls_server = tls_server;
	memset(&o, 0, sizeof(o));
	o.name = "http";
	o.max_conns = HTTP_CONNS_MAX;
	o.max_per_addr = HTTP_CONNS_PER_ADDR_MAX;
	o.tls = tls_server;
	o.handshake_timeout = HTTP_REQUEST_DEADLINE;
	if ((s->net = netio_new(base, &o, no_accept, s)) == NULL ||
	    (s->admit_ev = event_new(base, -1, 0, on_admit, s)) == NULL) {
		snprintf(err, errsize, "http: out of memory");
		http_server_free(s);
		return NULL;
	}
	if (conf->n_https_listen > 0 && tls_server == NULL) {
		snprintf(err, errsize,
		    "https_listen needs tls_cert_file and tls_key_file");
		http_server_free(s);
		return NULL;
	}
	if ((conf->n_http_listen > 0 &&
	        (s->plain = make_evhttp(s, 0)) == NULL) ||
	    (conf->n_https_listen > 0 &&
	        (s->tls = make_evhttp(s, 1)) == NULL)) {
		snprintf(err, errsize, "http: out of memory");
		http_server_free(s);
		return NULL;
	}
	if (bind_all(s, s->plain, conf->http_listen, conf->n_http_listen, err,
	        errsize) == -1 ||
	    bind_all(s, s->tls, conf->https_listen, conf->n_https_listen, err,
	        errsize) == -1) {
		http_server_free(s);
		return NULL;
	}
	return s;
}

void
http_server_start(struct http_server *s, const struct http_deps *deps)
{
	if (s == NULL)
		return;
	s->d = *deps;
	netio_start(s->net);
}

size_t
http_server_stop(struct http_server *s)
{
	struct http_conn *c, *next;
	size_t n = 0;

	if (s == NULL)
		return 0;
	if (!s->stopping) {
		s->stopping = 1;
		netio_stop(s->net);
		/* Answers that wait are given up on: 503. */
		for (c = s->conns; c != NULL; c = c->next)
			while (c->reqs != NULL)
				http_error(c->reqs, 503, "shutting down");
	}
	/* Connections whose answer has gone out are closed. */
	for (c = s->conns; c != NULL; c = next) {
		struct bufferevent *bev =
		    evhttp_connection_get_bufferevent(c->evcon);

		next = c->next;
		if (c->reqs == NULL &&
		    (bev == NULL ||
		        evbuffer_get_length(bufferevent_get_output(bev)) == 0))
			evhttp_connection_free(c->evcon);
		else
			n++;
	}
	return n;
}

void
http_server_free(struct http_server *s)
{
	size_t i;

	if (s == NULL)
		return;
	/* Listeners first (netio_stop), then evhttp frees its connections
	 * (their close callbacks run) and listeners. */
	if (s->net != NULL)
		netio_stop(s->net);
	if (s->plain != NULL)
		evhttp_free(s->plain);
	if (s->tls != NULL)
		evhttp_free(s->tls);
	for (i = 0; i < s->npending; i++)
		bufferevent_decref(s->pending[i].bev);
	free(s->pending);
	if (s->admit_ev != NULL)
		event_free(s->admit_ev);
	http_sessions_free(s);
	netio_free(s->net);
	free(s);
}
