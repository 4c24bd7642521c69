/*
 * trail: follow a tracked message hop by hop; see trail.h.
 *
 * Internals: every answer keeps its entity, its parts and one tstatus
 * parser per part (the parser owns the parsed report).  Recipients are
 * kept in first-seen order with a growing array of hops.  Queries run in
 * parallel, one per host; the trail reports once no query is left, or
 * when the overall timer fires.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "msgtrk/mtqp.h"
#include "msgtrk/related.h"
#include "msgtrk/str.h"
#include "msgtrk/tstatus.h"
#include "mtqp/mtqp_client.h"
#include "mtqp/trail.h"

_Static_assert(TRAIL_SPKI_LEN == MTQP_CLIENT_SPKI_LEN, "SPKI digest size");
_Static_assert(TRAIL_SERVER_MAX >= MTQP_CLIENT_SERVER_MAX, "server size");

struct tr_answer {
	struct trail_answer pub;
	char *body;
	const struct tstatus *parts[RELATED_PARTS_MAX];
	const char *part_body[RELATED_PARTS_MAX];
	size_t part_len[RELATED_PARTS_MAX];
	struct tstatus_parser *parsers[RELATED_PARTS_MAX];
	struct sockaddr_storage peer; /* the server's address (allow) */
	int have_peer;
};

struct tr_query;

struct tr_rcpt {
	char *otype, *ovalue;
	struct trail_hop *hops;
	size_t nhops, cap;
	enum trail_end end; /* 0 while open */
	char error[TRAIL_ERROR_MAX];
	struct tr_query *waiting;
};

struct tr_query {
	struct trail *t;
	struct mtqp_client *c;
	char host[MTQP_DOMAIN_MAX + 1]; /* lower case: the loop key */
	int done;
	const struct tr_answer *from; /* the answer naming host, or NULL */
	struct sockaddr_storage peer; /* the last address allowed */
	int have_peer;
	unsigned int refused; /* targets or addresses refused by allow */
};

struct tr_host {
	char host[MTQP_DOMAIN_MAX + 1];
	int tls_offered;
};

struct trail {
	struct event_base *base;
	struct dns *dns;
	trail_cb cb;
	void *arg;
	char *server, *envid, *secret, *first_body, *first_server;
	size_t first_len;
	enum trail_tls tls;
	SSL_CTX *ctx;
	const char *const *tls_known; /* borrowed */
	size_t ntls_known;
	unsigned int hop_max, timeout;
	int no_follow;
	int (*allow)(void *, const char *, const struct sockaddr *,
	    const struct sockaddr *);
	void *allow_arg;

	struct event *timer, *kick;
	time_t deadline;
	struct tr_answer *answers[TRAIL_QUERIES_MAX];
	size_t nanswers;
	struct tr_query *queries[TRAIL_QUERIES_MAX];
	size_t nqueries, open;
	struct tr_host hosts[TRAIL_QUERIES_MAX];
	size_t nhosts;
	struct trail_tls_outcome tlsout[TRAIL_QUERIES_MAX];
	size_t ntls;
	struct tr_rcpt *rcpts;
	size_t nrcpt;
	int reported;

	/* the result */
	enum trail_end end;
	char error[TRAIL_ERROR_MAX];
	const struct trail_answer *pub_answers[TRAIL_QUERIES_MAX];
	struct trail_rcpt *pub_rcpts;
};

static void report(struct trail *);

const char *
trail_end_name(enum trail_end e)
{
	switch (e) {
	case TRAIL_END_DELIVERED:
		return "delivered";
	case TRAIL_END_RELAYED:
		return "relayed";
	case TRAIL_END_EXPANDED:
		return "expanded";
	case TRAIL_END_FAILED:
		return "failed";
	case TRAIL_END_DELAYED:
		return "delayed";
	case TRAIL_END_OPAQUE:
		return "opaque";
	case TRAIL_END_TRANSFERRED:
		return "transferred";
	case TRAIL_END_NOINFO:
		return "noinfo";
	case TRAIL_END_ERROR:
		return "error";
	case TRAIL_END_LOOP:
		return "loop";
	case TRAIL_END_HOP_LIMIT:
		return "hop-limit";
	case TRAIL_END_TIMEOUT:
		return "timeout";
	case TRAIL_END_REFUSED:
		return "refused";
	}
	return "unknown";
}

static void
answer_free(struct tr_answer *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < RELATED_PARTS_MAX; i++)
		tstatus_parser_free(a->parsers[i]);
	free(a->body);
	free(a);
}

/* Parses an entity into a new answer.  Returns NULL with err set. */
static struct tr_answer *
answer_new(const char *server, int tls, const char *body, size_t len, char *err,
    size_t errsize)
{
	struct tr_answer *a;
	struct related_part parts[RELATED_PARTS_MAX];
	enum related_error rerr;
	size_t n = 0, i;

	if ((a = calloc(1, sizeof(*a))) == NULL ||
	    (a->body = malloc(len + 1)) == NULL) {
		free(a);
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	memcpy(a->body, body, len);
	a->body[len] = '\0';
	str_copy(a->pub.server, server, sizeof(a->pub.server));
	a->pub.tls = tls;
	a->pub.body = a->body;
	a->pub.body_len = len;
	if (related_split_entity(
	        a->body, len, parts, RELATED_PARTS_MAX, &n, &rerr) == -1) {
		snprintf(err, errsize, "%.270s: bad answer: %s", server,
		    related_strerror(rerr));
		answer_free(a);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		const struct tstatus *ts;

		if ((a->parsers[i] = tstatus_parser_new(NULL)) == NULL) {
			snprintf(err, errsize, "out of memory");
			answer_free(a);
			return NULL;
		}
		if (tstatus_parser_push(a->parsers[i], parts[i].body,
		        parts[i].body_len) == -1 ||
		    tstatus_parser_end(a->parsers[i], &ts) != 1) {
			snprintf(err, errsize,
			    "%.270s: bad tracking-status part %zu: %s line %zu",
			    server, i + 1,
			    tstatus_strerror(
			        tstatus_parser_error(a->parsers[i])),
			    tstatus_parser_line(a->parsers[i]));
			answer_free(a);
			return NULL;
		}
		a->parts[i] = ts;
		a->part_body[i] = parts[i].body;
		a->part_len[i] = parts[i].body_len;
	}
	a->pub.nparts = n;
	a->pub.parts = a->parts;
	a->pub.part_body = a->part_body;
	a->pub.part_len = a->part_len;
	return a;
}

static int
typed_eq(const struct tstatus_typed *a, const struct tstatus_typed *b)
{
	return a->type != NULL && b->type != NULL && a->value != NULL &&
	    b->value != NULL && str_casecmp(a->type, b->type) == 0 &&
	    str_casecmp(a->value, b->value) == 0;
}

/* How well trail r fits block b of an answer that q brought: 2 for the
 * same last Final-Recipient, plus 1 if r waits for q. */
static int
rcpt_fit(const struct tr_rcpt *r, const struct tr_query *q,
    const struct tstatus_rcpt *b)
{
	int fit = 0;

	if (r->nhops > 0 &&
	    typed_eq(&r->hops[r->nhops - 1].rcpt->final_rcpt, &b->final_rcpt))
		fit += 2;
	if (q != NULL && r->waiting == q)
		fit++;
	return fit;
}

/* The trail that block b of part p continues, or a new one.  A trail is
 * keyed by its Original-Recipient and, since two RCPTs may share one
 * ORCPT (an address rewritten to two upstream, RFC 3461 §4.2), by its
 * Final-Recipient and position: a part names a recipient once, so a
 * trail that already has a hop from p is another recipient; among the
 * others with b's ORCPT the first that fits best, in this order: same
 * Final-Recipient and waiting for q (the query that brought the
 * answer), same Final-Recipient, waiting for q, any (a hop may rewrite
 * the address, e.g. a one-target alias). */
static struct tr_rcpt *
rcpt_find(struct trail *t, const struct tr_query *q, const struct tstatus *p,
    const struct tstatus_rcpt *b)
{
	const struct tstatus_typed *o = &b->orig_rcpt;
	struct tr_rcpt *r, *n, *best = NULL;
	int score, best_score = -1;
	size_t i;

	for (i = 0; i < t->nrcpt; i++) {
		r = &t->rcpts[i];
		if (str_casecmp(r->otype, o->type) != 0 ||
		    str_casecmp(r->ovalue, o->value) != 0 ||
		    (r->nhops > 0 && r->hops[r->nhops - 1].part == p))
			continue;
		score = rcpt_fit(r, q, b);
		if (score > best_score) {
			best = r;
			best_score = score;
		}
	}
	if (best != NULL)
		return best;
	if (t->nrcpt >= TRAIL_RCPT_MAX)
		return NULL;
	n = realloc(t->rcpts, (t->nrcpt + 1) * sizeof(*n));
	if (n == NULL)
		return NULL;
	t->rcpts = n;
	r = &t->rcpts[t->nrcpt];
	memset(r, 0, sizeof(*r));
	r->otype = strdup(o->type);
	r->ovalue = strdup(o->value);
	if (r->otype == NULL || r->ovalue == NULL) {
		free(r->otype);
		free(r->ovalue);
		return NULL;
	}
	t->nrcpt++;
	return r;
}

static int
hop_add(struct tr_rcpt *r, const struct tr_answer *a, const struct tstatus *p,
    const struct tstatus_rcpt *b)
{
	if (r->nhops == r->cap) {
		size_t nc = r->cap == 0 ? 4 : r->cap * 2;
		struct trail_hop *h = realloc(r->hops, nc * sizeof(*h));

		if (h == NULL)
			return -1;
		r->hops = h;
		r->cap = nc;
	}
	r->hops[r->nhops].answer = &a->pub;
	r->hops[r->nhops].part = p;
	r->hops[r->nhops].rcpt = b;
	r->nhops++;
	return 0;
}

static void
rcpt_end(
    struct tr_rcpt *r, enum trail_end e, const char *where, const char *what)
{
	r->end = e;
	r->waiting = NULL;
	if (where != NULL)
		snprintf(
		    r->error, sizeof(r->error), "%.200s: %.250s", where, what);
}

static struct tr_host *
host_find(struct trail *t, const char *h)
{
	size_t i;

	for (i = 0; i < t->nhosts; i++)
		if (str_casecmp(t->hosts[i].host, h) == 0)
			return &t->hosts[i];
	return NULL;
}

static void on_answer(const struct mtqp_client_result *, void *);

/* The server address whose answer a named the next hop, or NULL. */
static const struct sockaddr *
via_of(const struct tr_answer *a)
{
	return a != NULL && a->have_peer ? (const struct sockaddr *)&a->peer
	                                 : NULL;
}

/* mtqp_client's allow: the caller's, with the answer that named the
 * hop; remembers the address connected to. */
static int
query_allow(void *arg, const char *name, const struct sockaddr *sa)
{
	struct tr_query *q = arg;
	struct trail *t = q->t;

	if (!t->allow(t->allow_arg, name, sa, via_of(q->from))) {
		q->refused++;
		return 0;
	}
	if (sa != NULL) {
		memset(&q->peer, 0, sizeof(q->peer));
		memcpy(&q->peer, sa,
		    sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                              : sizeof(struct sockaddr_in));
		q->have_peer = 1;
	}
	return 1;
}

/* Starts a query to host (with optional port, 0 = discover), named by
 * answer from (NULL: the first server).  Returns the query or NULL with
 * err set. */
static struct tr_query *
query_start(struct trail *t, const char *host, unsigned int port,
    const struct tr_answer *from, char *err, size_t errsize)
{
	struct mtqp_client_opts o;
	struct tr_query *q;
	struct tr_host *th;
	time_t now = time(NULL);

	if (t->nqueries >= TRAIL_QUERIES_MAX) {
		snprintf(err, errsize, "query limit (%d) reached",
		    TRAIL_QUERIES_MAX);
		return NULL;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	q->t = t;
	q->from = from;
	str_copy(q->host, host, sizeof(q->host));
	str_lower(q->host);
	th = host_find(t, q->host);
	memset(&o, 0, sizeof(o));
	o.host = host;
	o.port = port;
	o.envid = t->envid;
	o.secret = t->secret;
	o.tls = t->tls == TRAIL_TLS_REQUIRE ? MTQP_CLIENT_TLS_REQUIRE
	    : t->tls == TRAIL_TLS_NONE      ? MTQP_CLIENT_TLS_NONE
	                                    : MTQP_CLIENT_TLS_OPPORTUNISTIC;
	o.ssl_ctx = t->ctx;
	o.tls_seen = th != NULL && th->tls_offered;
	o.tls_known = t->tls_known;
	o.ntls_known = t->ntls_known;
	o.timeout = t->deadline > now ? (unsigned int)(t->deadline - now) : 1;
	if (t->allow != NULL) {
		o.allow = query_allow;
		o.allow_arg = q;
	}
	q->c =
	    mtqp_client_track(t->base, t->dns, &o, on_answer, q, err, errsize);
	if (q->c == NULL) {
		free(q);
		return NULL;
	}
	if (th == NULL && t->nhosts < TRAIL_QUERIES_MAX) {
		str_copy(t->hosts[t->nhosts].host, q->host,
		    sizeof(t->hosts[0].host));
		t->nhosts++;
	}
	t->queries[t->nqueries++] = q;
	t->open++;
	return q;
}

/* An address literal from a remote answer: RFC 5321 §4.1.3's
 * "[192.0.2.1]" and "[IPv6:2001:db8::1]" (what msgtrkd writes), and the
 * untagged "[2001:db8::1]" older servers wrote.  Writes "[ip]" with ip
 * as inet_ntop() prints it (mtqp_client takes the brackets off; one
 * form, so the loop check sees one host).  Returns 0, or -1 if v is not
 * such a literal. */
static int
remote_literal(const char *v, char *out, size_t outsize)
{
	char ip[INET6_ADDRSTRLEN + 8], text[INET6_ADDRSTRLEN];
	unsigned char a[sizeof(struct in6_addr)];
	size_t n = strlen(v);
	int tagged, af;

	if (n < 3 || v[0] != '[' || v[n - 1] != ']')
		return -1;
	v++;
	n -= 2;
	if ((tagged = n > 5 && str_ncasecmp(v, "IPv6:", 5) == 0)) {
		v += 5;
		n -= 5;
	}
	if (n >= sizeof(ip))
		return -1;
	memcpy(ip, v, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET6, ip, a) == 1)
		af = AF_INET6;
	else if (!tagged && inet_pton(AF_INET, ip, a) == 1)
		af = AF_INET;
	else
		return -1;
	if (inet_ntop(af, a, text, sizeof(text)) == NULL ||
	    (size_t)snprintf(out, outsize, "[%s]", text) >= outsize)
		return -1;
	return 0;
}

int
trail_remote_host(const struct tstatus_typed *m, char *out, size_t outsize)
{
	if (m->type == NULL || str_casecmp(m->type, "dns") != 0 ||
	    m->value == NULL || *m->value == '\0')
		return -1;
	if (m->value[0] == '[')
		return remote_literal(m->value, out, outsize);
	if (str_copy(out, m->value, outsize) >= outsize)
		return -1;
	return 0;
}

static enum trail_end
end_of(enum tstatus_action a)
{
	switch (a) {
	case TSTATUS_ACTION_DELIVERED:
		return TRAIL_END_DELIVERED;
	case TSTATUS_ACTION_RELAYED:
		return TRAIL_END_RELAYED;
	case TSTATUS_ACTION_EXPANDED:
		return TRAIL_END_EXPANDED;
	case TSTATUS_ACTION_FAILED:
		return TRAIL_END_FAILED;
	case TSTATUS_ACTION_DELAYED:
		return TRAIL_END_DELAYED;
	case TSTATUS_ACTION_OPAQUE:
		return TRAIL_END_OPAQUE;
	default:
		return TRAIL_END_TRANSFERRED;
	}
}

/* Takes in an answer: appends hops, then decides each touched recipient's
 * next step. */
static void
absorb(struct trail *t, struct tr_answer *a, const struct tr_query *from)
{
	size_t i, j, k;

	t->answers[t->nanswers++] = a;
	for (i = 0; i < a->pub.nparts; i++) {
		const struct tstatus *p = a->parts[i];

		for (j = 0; j < p->nrcpt; j++) {
			struct tr_rcpt *r = rcpt_find(t, from, p, &p->rcpt[j]);

			if (r == NULL || hop_add(r, a, p, &p->rcpt[j]) == -1)
				continue;
			r->end = 0;
			r->waiting = NULL;
		}
	}
	for (k = 0; k < t->nrcpt; k++) {
		struct tr_rcpt *r = &t->rcpts[k];
		const struct trail_hop *last;
		char h[MTQP_DOMAIN_MAX + 1], err[TRAIL_ERROR_MAX];
		struct tr_query *q = NULL;

		if (r->end != 0 || r->waiting != NULL || r->nhops == 0)
			continue;
		last = &r->hops[r->nhops - 1];
		if (last->answer != &a->pub)
			continue;
		if (last->rcpt->action != TSTATUS_ACTION_TRANSFERRED) {
			rcpt_end(r, end_of(last->rcpt->action), NULL, NULL);
			continue;
		}
		if (trail_remote_host(&last->rcpt->remote_mta, h, sizeof(h)) ==
		    -1) {
			rcpt_end(r, TRAIL_END_TRANSFERRED, a->pub.server,
			    "Remote-MTA cannot be followed");
			continue;
		}
		/* A chaining server already answered for h (RFC 3886
		 * §3.3.3): a later part reported by h. */
		for (i = 0; i < a->pub.nparts; i++)
			if (a->parts[i] != last->part &&
			    a->parts[i]->reporting_mta.value != NULL &&
			    str_casecmp(a->parts[i]->reporting_mta.value, h) ==
			        0)
				break;
		if (i < a->pub.nparts) {
			rcpt_end(r, TRAIL_END_TRANSFERRED, h,
			    "reported by a chaining server without this "
			    "recipient");
			continue;
		}
		if (t->no_follow) {
			rcpt_end(r, TRAIL_END_TRANSFERRED, h, "not followed");
			continue;
		}
		if (r->nhops >= t->hop_max) {
			rcpt_end(
			    r, TRAIL_END_HOP_LIMIT, h, "hop limit reached");
			continue;
		}
		/* One query per host; a host asked before is a loop (P14). */
		for (i = 0; i < t->nqueries; i++)
			if (str_casecmp(t->queries[i]->host, h) == 0) {
				q = t->queries[i];
				break;
			}
		if (q != NULL && !q->done) {
			r->waiting = q;
			continue;
		}
		if (q != NULL || host_find(t, h) != NULL) {
			rcpt_end(
			    r, TRAIL_END_LOOP, h, "server already queried");
			continue;
		}
		/* mtqp_chain_hosts: a host named by an answer is asked
		 * about before anything is sent its way (its SRV targets and
		 * addresses are, in mtqp_client). */
		if (t->allow != NULL &&
		    !t->allow(t->allow_arg, h, NULL, via_of(a))) {
			rcpt_end(r, TRAIL_END_REFUSED, h,
			    "not allowed to be queried");
			continue;
		}
		/* "[ip]" literals: the client strips the brackets. */
		q = query_start(t, h, 0, a, err, sizeof(err));
		if (q == NULL) {
			rcpt_end(r, TRAIL_END_ERROR, h, err);
			continue;
		}
		r->waiting = q;
	}
}

static void
on_answer(const struct mtqp_client_result *res, void *arg)
{
	struct tr_query *q = arg;
	struct trail *t = q->t;
	struct tr_answer *a = NULL;
	char err[TRAIL_ERROR_MAX], what[TRAIL_ERROR_MAX];
	enum trail_end e = TRAIL_END_ERROR;
	struct tr_host *th;
	size_t i;

	q->done = 1;
	t->open--;
	if ((th = host_find(t, q->host)) != NULL && res->tls_offered)
		th->tls_offered = 1;
	if ((res->tls || res->downgrade) && t->ntls < TRAIL_QUERIES_MAX) {
		struct trail_tls_outcome *tt = &t->tlsout[t->ntls++];

		str_copy(tt->server, res->server, sizeof(tt->server));
		tt->tls = res->tls;
		tt->downgrade = res->downgrade;
		memcpy(
		    tt->spki_sha256, res->spki_sha256, sizeof(tt->spki_sha256));
	}
	err[0] = '\0';
	if (res->status == MTQP_CLIENT_ANSWER) {
		a = answer_new(res->server, res->tls, res->resp->body,
		    res->resp->body_len, err, sizeof(err));
		if (a != NULL && q->have_peer) {
			a->peer = q->peer;
			a->have_peer = 1;
		}
	} else if (res->status == MTQP_CLIENT_ERROR && q->refused > 0 &&
	    !q->have_peer) {
		/* Every target or address was refused: never contacted. */
		e = TRAIL_END_REFUSED;
		snprintf(err, sizeof(err), "not allowed to be queried");
	} else if (res->status == MTQP_CLIENT_NEGATIVE) {
		const char *ind = res->resp->status == MTQP_TEMP ? "-TEMP"
		    : res->resp->status == MTQP_BAD              ? "-BAD"
		    : res->resp->status == MTQP_ERR              ? "-ERR"
		                                                 : "+OK";

		if (mtqp_resp_has_reason(res->resp, "noinfo"))
			e = TRAIL_END_NOINFO;
		snprintf(err, sizeof(err), "%s%s%.32s %.180s", ind,
		    res->resp->nreasons > 0 ? "/" : "",
		    res->resp->nreasons > 0 ? res->resp->reasons[0] : "",
		    res->resp->text);
	} else {
		str_copy(err, res->error, sizeof(err));
	}
	mtqp_client_free(q->c);
	q->c = NULL;
	if (a != NULL && t->nanswers < TRAIL_QUERIES_MAX) {
		absorb(t, a, q);
	} else {
		if (a != NULL) {
			answer_free(a);
			str_copy(err, "too many answers", sizeof(err));
		}
		str_copy(what, err, sizeof(what));
		if (t->nanswers == 0 && t->nrcpt == 0) {
			t->end = e;
			snprintf(t->error, sizeof(t->error), "%.250s", what);
		}
		for (i = 0; i < t->nrcpt; i++)
			if (t->rcpts[i].waiting == q)
				rcpt_end(&t->rcpts[i], e, q->host, what);
	}
	if (t->open == 0)
		report(t);
}

/* Builds the public result and calls back (once). */
static void
report(struct trail *t)
{
	struct trail_result res;
	size_t i;

	if (t->reported)
		return;
	t->reported = 1;
	evtimer_del(t->timer);
	free(t->pub_rcpts);
	t->pub_rcpts = calloc(t->nrcpt + 1, sizeof(*t->pub_rcpts));
	memset(&res, 0, sizeof(res));
	for (i = 0; i < t->nanswers; i++)
		t->pub_answers[i] = &t->answers[i]->pub;
	if (t->pub_rcpts == NULL) {
		res.end = TRAIL_END_ERROR;
		res.error = "out of memory";
	} else {
		for (i = 0; i < t->nrcpt; i++) {
			struct tr_rcpt *r = &t->rcpts[i];

			if (r->end == 0)
				rcpt_end(r, TRAIL_END_TIMEOUT, "trail",
				    "no answer in time");
			t->pub_rcpts[i].orig_type = r->otype;
			t->pub_rcpts[i].orig_value = r->ovalue;
			t->pub_rcpts[i].nhops = r->nhops;
			t->pub_rcpts[i].hops = r->hops;
			t->pub_rcpts[i].end = r->end;
			t->pub_rcpts[i].error = r->error;
		}
		res.end = t->end;
		res.error = t->error;
		res.nanswers = t->nanswers;
		res.answers = t->pub_answers;
		res.nrcpt = t->nrcpt;
		res.rcpts = t->pub_rcpts;
	}
	res.ntls = t->ntls;
	res.tls = t->tlsout;
	t->cb(&res, t->arg);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct trail *t = arg;
	size_t i;

	(void)fd;
	(void)what;
	/* RFC 3887 §2.4: answer with what we have. */
	for (i = 0; i < t->nqueries; i++) {
		mtqp_client_free(t->queries[i]->c);
		t->queries[i]->c = NULL;
		t->queries[i]->done = 1;
	}
	t->open = 0;
	if (t->nanswers == 0 && t->end == 0) {
		t->end = TRAIL_END_TIMEOUT;
		str_copy(t->error, "no answer in time", sizeof(t->error));
	}
	report(t);
}

int
trail_parse_server(
    const char *s, char *host, size_t hostsize, unsigned int *port)
{
	const char *colon;
	char *end;
	unsigned long p;

	*port = 0;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb == s + 1 || (size_t)(rb - s) >= hostsize)
			return -1;
		memcpy(host, s, (size_t)(rb - s) + 1);
		host[rb - s + 1] = '\0';
		colon = rb[1] == ':' ? rb + 1 : NULL;
		if (rb[1] != '\0' && colon == NULL)
			return -1;
	} else {
		colon = strchr(s, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			colon = NULL; /* a bare IPv6 address */
		if (colon != NULL) {
			if ((size_t)(colon - s) >= hostsize)
				return -1;
			memcpy(host, s, (size_t)(colon - s));
			host[colon - s] = '\0';
		} else if (str_copy(host, s, hostsize) >= hostsize)
			return -1;
	}
	if (*host == '\0')
		return -1;
	if (colon != NULL) {
		/* Digits only: strtoul() would take blanks and a sign. */
		if (colon[1] < '0' || colon[1] > '9')
			return -1;
		errno = 0;
		p = strtoul(colon + 1, &end, 10);
		if (errno != 0 || *end != '\0' || end == colon + 1 || p == 0 ||
		    p > 65535)
			return -1;
		*port = (unsigned int)p;
	}
	return 0;
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct trail *t = arg;
	char host[MTQP_DOMAIN_MAX + 1], err[TRAIL_ERROR_MAX];
	unsigned int port;
	struct tr_answer *a;

	(void)fd;
	(void)what;
	if (t->first_body != NULL) {
		a = answer_new(t->first_server, 0, t->first_body, t->first_len,
		    err, sizeof(err));
		if (a == NULL) {
			t->end = TRAIL_END_ERROR;
			str_copy(t->error, err, sizeof(t->error));
		} else {
			/* The first server is never asked again. */
			if (t->nhosts < TRAIL_QUERIES_MAX) {
				str_copy(t->hosts[t->nhosts].host,
				    t->first_server, sizeof(t->hosts[0].host));
				str_lower(t->hosts[t->nhosts].host);
				t->nhosts++;
			}
			absorb(t, a, NULL);
		}
		if (t->open == 0)
			report(t);
		return;
	}
	if (trail_parse_server(t->server, host, sizeof(host), &port) == -1 ||
	    query_start(t, host, port, NULL, err, sizeof(err)) == NULL) {
		t->end = TRAIL_END_ERROR;
		snprintf(t->error, sizeof(t->error), "%.200s: %.200s",
		    t->server, "cannot start the query");
		report(t);
	}
}

struct trail *
trail_start(struct event_base *base, struct dns *dns,
    const struct trail_opts *o, trail_cb cb, void *arg, char *err,
    size_t errsize)
{
	struct trail *t;
	char host[MTQP_DOMAIN_MAX + 1];
	unsigned int port;
	struct timeval tv;

	if (o == NULL || cb == NULL || o->envid == NULL || o->secret == NULL ||
	    (o->server == NULL && o->first_body == NULL) ||
	    o->hop_max > TRAIL_HOPS_MAX ||
	    mtqp_cmd_envid_check(o->envid, strlen(o->envid)) == -1 ||
	    mtqp_cmd_secret_check(o->secret, strlen(o->secret)) == -1 ||
	    (o->server != NULL &&
	        trail_parse_server(o->server, host, sizeof(host), &port) ==
	            -1)) {
		snprintf(err, errsize, "trail: bad arguments");
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto nomem;
	t->base = base;
	t->dns = dns;
	t->cb = cb;
	t->arg = arg;
	t->tls = o->tls;
	t->ctx = o->ssl_ctx;
	t->tls_known = o->tls_known;
	t->ntls_known = o->tls_known != NULL ? o->ntls_known : 0;
	t->hop_max = o->hop_max != 0 ? o->hop_max : TRAIL_HOPS_DEFAULT;
	t->timeout = o->timeout != 0 ? o->timeout : TRAIL_TIMEOUT_DEFAULT;
	t->no_follow = o->no_follow;
	t->allow = o->allow;
	t->allow_arg = o->allow_arg;
	t->deadline = time(NULL) + (time_t)t->timeout;
	t->envid = strdup(o->envid);
	t->secret = strdup(o->secret);
	t->server = strdup(o->server != NULL ? o->server : "");
	t->first_server = strdup(o->first_server != NULL ? o->first_server
	        : o->server != NULL                      ? o->server
	                                                 : "");
	if (t->envid == NULL || t->secret == NULL || t->server == NULL ||
	    t->first_server == NULL)
		goto nomem;
	if (o->first_body != NULL) {
		if ((t->first_body = malloc(o->first_len + 1)) == NULL)
			goto nomem;
		memcpy(t->first_body, o->first_body, o->first_len);
		t->first_len = o->first_len;
	}
	t->timer = evtimer_new(base, on_timer, t);
	t->kick = evtimer_new(base, on_kick, t);
	if (t->timer == NULL || t->kick == NULL)
		goto nomem;
	tv.tv_sec = (time_t)t->timeout;
	tv.tv_usec = 0;
	evtimer_add(t->timer, &tv);
	event_active(t->kick, EV_TIMEOUT, 1);
	return t;
nomem:
	trail_free(t);
	snprintf(err, errsize, "trail: out of memory");
	return NULL;
}

void
trail_free(struct trail *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nqueries; i++) {
		mtqp_client_free(t->queries[i]->c);
		free(t->queries[i]);
	}
	for (i = 0; i < t->nanswers; i++)
		answer_free(t->answers[i]);
	for (i = 0; i < t->nrcpt; i++) {
		free(t->rcpts[i].otype);
		free(t->rcpts[i].ovalue);
		free(t->rcpts[i].hops);
	}
	free(t->rcpts);
	free(t->pub_rcpts);
	if (t->timer != NULL)
		event_free(t->timer);
	if (t->kick != NULL)
		event_free(t->kick);
	if (t->secret != NULL)
		explicit_bzero(t->secret, strlen(t->secret));
	free(t->secret);
	free(t->envid);
	free(t->server);
	free(t->first_server);
	free(t->first_body);
	free(t);
}
