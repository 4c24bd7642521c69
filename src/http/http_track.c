/*
 * http_track: the tracking page and POST /api/v1/track.  A request is
 * followed with the trail follower of msgtrk track (src/mtqp/trail.h),
 * asynchronously: the answer is sent from the trail's callback.  Bounds:
 * the client's rate (HTTP_TRACK_BURST, then one per HTTP_TRACK_REFILL
 * seconds: 429), trails at once per client and in all (429), and the
 * trail's own overall timer (HTTP_TRACK_TIMEOUT).  Hops are asked under
 * the firewall mode's rule (mtqp_server_chain_allowed: an answer from an
 * outside server cannot steer us inside; mtqp_chain_hosts when set).
 *
 * The API's answers (PRODUCT.md): 200 and exactly msgtrk track --json's
 * object (src/mtqp/trail_json.c writes both); 400 {"error"} bad input;
 * 404 {"error": "noinfo"}; 502 {"error"} when the first server could
 * not be reached or answered -TEMP; 429 over the limits.
 *
 * Logs: "- http track id=.. addr=.. envid=.. server=.. result=.." with
 * the envid and server escaped; never the secret or the URI.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "common/conf.h"
#include "common/log.h"
#include "common/net.h"
#include "http/http_int.h"
#include "mtqp/mtqp_server.h"
#include "mtqp/trail.h"
#include "mtqp/trail_json.h"

void
http_track_cancel(struct http_req *r)
{
	if (r->trail != NULL) {
		trail_free(r->trail);
		r->trail = NULL;
	}
	if (r->trailing) {
		r->s->ntrails--;
		r->trailing = 0;
	}
}

/* A page: the shell around what fill writes; code its status. */
static void
track_page(struct http_req *r, int code, const char *error,
    const struct trail_result *res)
{
	char csrf[HTTP_TOKEN_LEN + 1];
	struct buf b;
	int rc = 0;

	if (http_csrf_anon(r, csrf) == -1) {
		http_error(r, 503, "out of memory");
		return;
	}
	buf_init(&b, HTTP_ANSWER_MAX);
	rc |=
	    page_begin(&b, res != NULL ? "Tracking" : "Track a message", NULL);
	if (res != NULL) {
		rc |= page_trail(&b, res, r->treq.envid, r->treq.server);
		rc |= buf_adds(&b, "<h2>Track another message</h2>\n");
	} else
		rc |= buf_adds(&b, "<h1>Track a message</h1>\n");
	rc |= page_track_form(&b, csrf, error);
	rc |= page_end(&b, r->s->conf->hostname);
	if (rc != 0) {
		buf_reset(&b);
		http_error(r, 500, "the page is too large");
		return;
	}
	http_respond(r, code, "text/html; charset=utf-8", &b);
}

void
http_track_page(struct http_req *r)
{
	track_page(r, 200, NULL, NULL);
}

static int
track_allow(void *arg, const char *name, const struct sockaddr *sa,
    const struct sockaddr *via)
{
	struct http_req *r = arg;
	const char *why;

	return mtqp_server_chain_allowed(r->s->conf, name, sa, via, &why);
}

static void
track_log(struct http_req *r, const char *result, size_t nrcpt)
{
	char e[160], sv[160];

	log_info("- http track id=%016" PRIx64
	         " addr=%s envid=%s server=%s result=%s rcpts=%zu ms=%ld",
	    r->id, r->c->addrtext,
	    log_escape(e, sizeof(e), r->treq.envid, strlen(r->treq.envid)),
	    log_escape(sv, sizeof(sv), r->treq.server, strlen(r->treq.server)),
	    result, nrcpt, http_req_ms(r));
}

static void
track_done(const struct trail_result *res, void *arg)
{
	struct http_req *r = arg;
	struct buf b;

	if (res->end == TRAIL_END_NOINFO) {
		r->s->trails_failed++;
		track_log(r, "noinfo", 0);
		if (r->api)
			http_error(r, 404, "noinfo");
		else
			track_page(r, 404,
			    "The server has no information about this message: "
			    "the envelope id or the secret is wrong, or its "
			    "records have expired.",
			    NULL);
		return;
	}
	if (res->end != 0) {
		char msg[TRAIL_ERROR_MAX + 64];

		r->s->trails_failed++;
		track_log(r, "error", 0);
		snprintf(msg, sizeof(msg),
		    "The tracking server could not be asked: %s",
		    res->error != NULL ? res->error : "");
		if (r->api)
			http_error(r, 502, res->error);
		else
			track_page(r, 502, msg, NULL);
		return;
	}
	r->s->trails_ok++;
	track_log(r, "ok", res->nrcpt);
	if (!r->api) {
		track_page(r, 200, NULL, res);
		return;
	}
	buf_init(&b, HTTP_ANSWER_MAX);
	if (trail_json(&b, res, r->treq.envid) == -1) {
		buf_reset(&b);
		http_error(r, 500, "the answer is too large");
		return;
	}
	http_respond(r, 200, "application/json", &b);
}

/* The trails of r's client now. */
static size_t
trails_of(const struct http_req *r)
{
	unsigned char k[NET_CLIENT_KEY_LEN], k2[NET_CLIENT_KEY_LEN];
	const struct http_conn *c;
	const struct http_req *q;
	size_t n = 0;

	if (net_client_key((const struct sockaddr *)&r->c->addr, k) == -1)
		return 0;
	for (c = r->s->conns; c != NULL; c = c->next) {
		if (net_client_key((const struct sockaddr *)&c->addr, k2) ==
		        -1 ||
		    memcmp(k, k2, sizeof(k)) != 0)
			continue;
		for (q = c->reqs; q != NULL; q = q->cnext)
			n += q->trailing;
	}
	return n;
}

/* r->treq is set: start following, or answer why not. */
static void
track_start(struct http_req *r)
{
	struct http_server *s = r->s;
	struct trail_opts o;
	char err[512], ra[32];
	int64_t wait;

	wait = ratelimit_try(&s->rate, (const struct sockaddr *)&r->c->addr,
	    HTTP_TRACK_BURST, (int64_t)HTTP_TRACK_REFILL * 1000, http_now_ms());
	if (wait > 0 || s->ntrails >= HTTP_TRAILS_MAX ||
	    trails_of(r) >= HTTP_TRAILS_PER_ADDR) {
		s->trails_refused++;
		track_log(r, wait > 0 ? "rate-limited" : "busy", 0);
		snprintf(ra, sizeof(ra), "%lld",
		    wait > 0 ? (long long)((wait + 999) / 1000) : 5LL);
		http_header(r, "Retry-After", ra);
		if (r->api)
			http_error(r, 429,
			    wait > 0 ? "rate limited" : "too many trails");
		else
			track_page(r, 429,
			    "Too many tracking requests from your address: "
			    "try again in a few seconds.",
			    NULL);
		return;
	}
	memset(&o, 0, sizeof(o));
	o.server = r->treq.server;
	o.envid = r->treq.envid;
	o.secret = r->treq.secret;
	o.tls = TRAIL_TLS_OPPORTUNISTIC;
	o.ssl_ctx = s->d.tls_client;
	o.timeout = HTTP_TRACK_TIMEOUT;
	o.allow = track_allow;
	o.allow_arg = r;
	r->trail =
	    trail_start(s->base, s->d.dns, &o, track_done, r, err, sizeof(err));
	if (r->trail == NULL) {
		track_log(r, "error", 0);
		http_error(r, 500, err);
		return;
	}
	r->trailing = 1;
	s->ntrails++;
	http_req_wait(r);
}

void
http_track_form(struct http_req *r)
{
	char err[512];

	if ((r->form = http_req_form(r)) == NULL)
		return;
	if (!http_csrf_ok(r, r->form)) {
		track_page(r, 403,
		    "This form has expired: reload the page and try again.",
		    NULL);
		return;
	}
	if (http_track_req_form(r->form, &r->treq, err, sizeof(err)) == -1) {
		track_page(r, 400, err, NULL);
		return;
	}
	/* The secret is in treq now: the form goes (wiped). */
	http_form_free(r->form);
	r->form = NULL;
	track_start(r);
}

void
http_track_api(struct http_req *r)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	const char *ct = http_req_header(r, "Content-Type");
	size_t n = evbuffer_get_length(in);
	const char *body;
	char err[512];

	if (ct == NULL || strncmp(ct, "application/json", 16) != 0 ||
	    (ct[16] != '\0' && ct[16] != ';')) {
		http_error(r, 415, "expected application/json");
		return;
	}
	if ((body = (const char *)evbuffer_pullup(in, -1)) == NULL && n > 0) {
		http_error(r, 503, "out of memory");
		return;
	}
	if (http_track_req_json(body != NULL ? body : "", n, &r->treq, err,
	        sizeof(err)) == -1) {
		http_error(r, 400, err);
		return;
	}
	/* The request body held the secret. */
	if (n > 0)
		explicit_bzero((void *)body, n);
	track_start(r);
}
