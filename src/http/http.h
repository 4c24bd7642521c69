/*
 * http: msgtrkd's HTTP server (PRODUCT.md "HTTP: tracking page, JSON API,
 * metrics") on http_listen, and on https_listen with implicit TLS.
 *
 *   GET  /                 the tracking page: a form for an mtqp:// URI,
 *                          or an envid, a secret and a server
 *   POST /track            follows the message hop by hop (src/mtqp/
 *                          trail.h, as msgtrk track does) and draws each
 *                          recipient's path: a box per hop, arrows, and
 *                          an honest end
 *   POST /api/v1/track     the same as JSON: exactly msgtrk track --json
 *   GET  /login, POST /login, POST /logout   form login against auth
 *   GET  /sent, /api/v1/sent                 a login's tracked messages
 *   GET  /admin, /api/v1/log, /api/v1/queue  http_admins: msgtrk log's
 *                          search and the queue
 *   GET  /metrics          Prometheus text 0.0.4, from metrics_networks
 *   GET  /healthz          200 while the queue and store work, else 503
 *
 * A component with explicit inputs: the loop, the configuration and the
 * TLS server context at creation (it binds as root), the rest (struct
 * http_deps) at start; src/msgtrkd/wire_http.c builds them.  libevent's evhttp parses HTTP/1.x; the
 * connections come from a netio (src/common/netio.h) that binds the
 * listeners, makes each connection's bufferevent (TLS for https_listen)
 * and keeps the per-address and overall caps, applied when a connection
 * is accepted, before it is read.
 *
 * Limits on what a client controls: request line and headers
 * HTTP_HEADERS_SIZE_MAX octets and HTTP_HEADERS_MAX fields, a body
 * HTTP_BODY_MAX, HTTP_CONNS_MAX connections and HTTP_CONNS_PER_ADDR_MAX
 * per address, a whole request within HTTP_REQUEST_DEADLINE seconds of
 * the connection or the previous answer (slow clients) and
 * HTTP_IDLE_TIMEOUT between reads; trails HTTP_TRAILS_PER_ADDR at once
 * per client and HTTP_TRAILS_MAX in all, each bounded by
 * HTTP_TRACK_TIMEOUT; tracking requests rate-limited per client like
 * failed TRACKs (src/common/ratelimit.h): 429 over it.
 *
 * Secrets travel only in POST bodies; they are never logged, never put
 * in a URL, a cookie or a page.  Sessions are server-side: a random
 * token in a cookie that is HttpOnly, Secure and SameSite=Strict; every
 * form carries a CSRF token (the session's, or before login one bound to
 * a cookie of its own).
 */
#ifndef MSGTRK_HTTP_H
#define MSGTRK_HTTP_H

#include <stddef.h>

#include <openssl/ssl.h>

struct auth;
struct conf;
struct delivery_stats;
struct dns;
struct event_base;
struct http_server;
struct mtqp_server_stats;
struct queue;
struct smtp_server_stats;
struct store_reader;

#define HTTP_CONNS_MAX 1000
#define HTTP_CONNS_PER_ADDR_MAX 32
#define HTTP_HEADERS_SIZE_MAX 8192
#define HTTP_HEADERS_MAX 64
#define HTTP_BODY_MAX 16384
#define HTTP_REQUEST_DEADLINE 15 /* seconds */
#define HTTP_IDLE_TIMEOUT 10 /* seconds */
#define HTTP_TRAILS_MAX 64
#define HTTP_TRAILS_PER_ADDR 4
/* A trail's overall bound (RFC 3887 §2.5 asks a client to wait two
 * minutes for one server; a person at a page waits less). */
#define HTTP_TRACK_TIMEOUT 60
/* Tracking requests per client: a burst, then one per period (the
 * failed-TRACK limit's numbers, README). */
#define HTTP_TRACK_BURST 10
#define HTTP_TRACK_REFILL 6 /* seconds */
/* Login sessions: at most this many (the least recently used goes),
 * idle and absolute lifetimes. */
#define HTTP_SESSIONS_MAX 1024
#define HTTP_SESSION_IDLE (30 * 60)
#define HTTP_SESSION_LIFETIME (12 * 3600)

/* Binds every http_listen and https_listen address of conf (call as
 * root; https_listen needs tls_server); accepts nothing yet.  conf and
 * tls_server must outlive the server.  Returns NULL with err set. */
struct http_server *http_server_new(struct event_base *base,
    const struct conf *conf, SSL_CTX *tls_server, char *err, size_t errsize);

/* What the server reads from, made after the privilege drop. */
struct http_deps {
	SSL_CTX *tls_client; /* STARTTLS to MTQP servers, while following */
	struct dns *dns; /* following trails */
	struct queue *queue; /* /api/v1/queue, /metrics, /healthz */
	struct store_reader *reader; /* the operator's search, off the loop */
	struct auth *auth; /* logins; NULL: no login possible (503) */
	/* The other components' counters for /metrics (any may be NULL)
	 * and the health /healthz reports (1 healthy; 0 with why set;
	 * NULL: healthy). */
	void (*smtp_stats)(void *arg, struct smtp_server_stats *out);
	void (*mtqp_stats)(void *arg, struct mtqp_server_stats *out);
	void (*delivery_stats)(void *arg, struct delivery_stats *out);
	int (*healthy)(void *arg, char *why, size_t whysize);
	void *arg;
};

/* Starts accepting; deps is copied (what it points to must outlive the
 * server). */
void http_server_start(struct http_server *s, const struct http_deps *deps);

/* SIGTERM: stops accepting, ends the trails and lookups in flight
 * (their requests get 503) and closes idle connections.  Returns the
 * number of connections still open (answers on their way out).  Accepts
 * NULL (0). */
size_t http_server_stop(struct http_server *s);

/* Frees the server and closes whatever is open.  Accepts NULL. */
void http_server_free(struct http_server *s);

#endif /* MSGTRK_HTTP_H */
