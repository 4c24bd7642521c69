/*
 * http_int: what the HTTP server's files share (internal to src/http).
 *
 *   http.c          listeners, admission, connections, routing, replies
 *   http_track.c    GET /, POST /track, POST /api/v1/track
 *   http_page.c     HTML: the page shell, forms, the path as a picture
 *   http_login.c    sessions, CSRF, login, logout, HTTP Basic, /sent
 *   http_admin.c    /admin, /api/v1/log, /api/v1/queue
 *   http_metrics.c  /metrics, /healthz
 *
 * Every request is a struct http_req from its callback to its answer;
 * one whose answer waits (a trail, a login check, a store search) is on
 * its connection's list, and is cancelled (its work withdrawn, no answer)
 * if the connection goes first.
 */
#ifndef MSGTRK_HTTP_INT_H
#define MSGTRK_HTTP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "auth/auth.h"
#include "common/ratelimit.h"
#include "http/http.h"
#include "http/http_parse.h"
#include "msgtrk/buf.h"

struct evhttp;
struct evhttp_connection;
struct evhttp_request;
struct event;
struct trail;
struct trail_result;
struct store_reader_job;

/* Answers built in memory at most (a page with a long trail, a JSON
 * array of a search). */
#define HTTP_ANSWER_MAX (16UL * 1024 * 1024)
/* Connections looked up by their evhttp_connection. */
#define HTTP_CONN_BUCKETS 1024
/* The session and CSRF tokens: 32 random octets, base64url. */
#define HTTP_TOKEN_LEN 43
#define HTTP_SESSION_COOKIE "msgtrk_session"
#define HTTP_CSRF_COOKIE "msgtrk_csrf"
/* A store search or the sent list waits this long (ms), then 504. */
#define HTTP_STORE_DEADLINE 5000
/* Rows the admin page shows (the API returns up to the reader's max). */
#define HTTP_ADMIN_ROWS 500
/* Messages /sent and /api/v1/sent list, newest first. */
#define HTTP_SENT_ROWS 500

struct http_conn;
struct http_req;
struct http_session;

struct http_server {
	struct event_base *base;
	const struct conf *conf;
	SSL_CTX *tls_server;
	struct http_deps d; /* set at start */
	struct netio *net;
	struct evhttp *plain; /* http_listen */
	struct evhttp *tls; /* https_listen */
	/* Connections evhttp made since the last admission pass. */
	struct event *admit_ev;
	struct http_pending {
		struct bufferevent *bev;
		int tls;
	} * pending;
	size_t npending, pending_cap;
	struct http_conn *conns;
	struct http_conn *bucket[HTTP_CONN_BUCKETS];
	size_t ntrails; /* trails running */
	struct ratelimit rate; /* tracking requests per client */
	struct http_session *sessions;
	size_t nsessions;
	uint64_t next_id;
	int stopping;
	/* /metrics: answers by class (1xx..5xx) and trails by outcome. */
	uint64_t answers[5];
	uint64_t trails_ok, trails_failed, trails_refused;
};

struct http_conn {
	struct http_server *s;
	struct evhttp_connection *evcon;
	struct sockaddr_storage addr;
	char addrtext[64];
	int tls;
	uint64_t id;
	struct event *deadline; /* HTTP_REQUEST_DEADLINE */
	/* While an answer waits, the socket is watched for the client's
	 * close (evhttp reads nothing then). */
	struct event *watch;
	struct http_req *reqs; /* answers waiting */
	struct http_conn *prev, *next;
	struct http_conn *hnext; /* bucket chain */
};

struct http_req {
	struct http_server *s;
	struct http_conn *c;
	struct evhttp_request *req;
	uint64_t id;
	int method; /* enum evhttp_cmd_type */
	char path[64]; /* for the log (escaped, capped) */
	struct timespec start;
	/* The work an answer waits for (cancelled with the request). */
	struct trail *trail;
	int trailing; /* counted in ntrails */
	struct auth_req *auth;
	struct store_reader_job *job;
	struct event *soon;
	/* What the handler keeps across the wait. */
	struct http_form *form;
	struct http_track_req treq;
	int api; /* answer in JSON */
	char login[256]; /* the login checked or the session's */
	char next[16]; /* where a login goes ("/sent", "/admin") */
	char csrf[HTTP_TOKEN_LEN + 1];
	void (*after_auth)(
	    struct http_req *r, enum auth_result res, const char *login);
	struct http_req *cprev, *cnext; /* on c->reqs while waiting */
};

/* --- http.c --------------------------------------------------------- */

/* Sends the answer (body may be NULL; moved out of and reset) with the
 * security headers and ctype, logs it and frees r. */
void http_respond(
    struct http_req *r, int code, const char *ctype, struct buf *body);

/* An answer with a short body: text/plain for pages' errors, {"error":
 * text} for the API. */
void http_error(struct http_req *r, int code, const char *text);

/* A 303 to location (a path of ours). */
void http_redirect(struct http_req *r, const char *location);

/* Adds a header to r's answer. */
void http_header(struct http_req *r, const char *name, const char *value);

/* r's header name, or NULL. */
const char *http_req_header(struct http_req *r, const char *name);

/* r's body as a form (NULL: none, a form error, or not a form; the
 * answer is then sent and r freed: return at once). */
struct http_form *http_req_form(struct http_req *r);

/* r's query string as a form (an empty one when absent); NULL as
 * http_req_form(). */
struct http_form *http_req_query(struct http_req *r);

/* r waits for an answer: on its connection's list (cancelled with it). */
void http_req_wait(struct http_req *r);

/* The milliseconds since r came. */
long http_req_ms(const struct http_req *r);

/* Milliseconds on the monotonic clock. */
int64_t http_now_ms(void);

/* Writes n random octets as base64url without padding into out
 * (outsize > B64_LEN_UNPADDED(n)).  Returns 0 or -1. */
int http_token(char *out, size_t outsize, size_t n);

/* 1 if the n octets of a and b are equal, in time independent of where
 * they differ. */
int http_token_equal(const char *a, const char *b);

/* --- http_page.c ---------------------------------------------------- */

/* Appends s HTML-escaped (& < > " '); NULL appends nothing. */
int page_esc(struct buf *b, const char *s);

/* The page shell (login: shown in the header when not NULL); page_end
 * closes it. */
int page_begin(struct buf *b, const char *title, const char *login);
int page_end(struct buf *b, const char *hostname);

/* The tracking form; error (escaped) above it when not NULL. */
int page_track_form(struct buf *b, const char *csrf, const char *error);

/* One followed message: a section per recipient with its path drawn and
 * told in text. */
int page_trail(struct buf *b, const struct trail_result *res, const char *envid,
    const char *server);

/* The stylesheet (/style.css). */
extern const char page_css[];

/* --- http_track.c --------------------------------------------------- */

void http_track_page(struct http_req *r); /* GET / */
void http_track_form(struct http_req *r); /* POST /track */
void http_track_api(struct http_req *r); /* POST /api/v1/track */
void http_track_cancel(struct http_req *r);

/* --- http_login.c --------------------------------------------------- */

/* The session of r's cookie (refreshed), or NULL. */
struct http_session *http_session_get(struct http_req *r);
const char *http_session_login(const struct http_session *ss);
const char *http_session_csrf(const struct http_session *ss);

/* The anonymous CSRF token of r's cookie, or a new one set on the
 * answer (copied to out, HTTP_TOKEN_LEN + 1).  Returns 0 or -1. */
int http_csrf_anon(struct http_req *r, char *out);

/* 1 if a POST's "csrf" field matches its session's token (or, without
 * a session, the anonymous cookie's), else 0. */
int http_csrf_ok(struct http_req *r, const struct http_form *f);

/* HTTP Basic: checks r's Authorization header against auth and calls
 * r->after_auth (AUTH_FAIL without the header or with a malformed one,
 * at once). */
void http_basic(struct http_req *r,
    void (*after)(struct http_req *r, enum auth_result res, const char *login));

/* In an after-Basic callback: 1 if the login is OK and one of
 * http_admins (r->login set), else 0 with the answer sent (401, 403,
 * 503). */
int http_basic_admin_ok(
    struct http_req *r, enum auth_result res, const char *login);

void http_login_page(struct http_req *r); /* GET /login */
void http_login_post(struct http_req *r); /* POST /login */
void http_logout(struct http_req *r); /* POST /logout */
void http_sent_page(struct http_req *r); /* GET /sent */
void http_sent_api(struct http_req *r); /* GET /api/v1/sent */

/* Session table. */
void http_sessions_free(struct http_server *s);

/* --- http_admin.c --------------------------------------------------- */

void http_admin_page(struct http_req *r); /* GET /admin */
void http_log_api(struct http_req *r); /* GET /api/v1/log */
void http_queue_api(struct http_req *r); /* GET /api/v1/queue */

/* --- http_metrics.c ------------------------------------------------- */

void http_metrics(struct http_req *r); /* GET /metrics */
void http_healthz(struct http_req *r); /* GET /healthz */

#endif /* MSGTRK_HTTP_INT_H */
