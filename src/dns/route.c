/*
 * route: the routes file and the next-hop decision over dns.
 */
#include <sys/queue.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/file.h"
#include "msgtrk/buf.h"
#include "dns/route.h"
#include "msgtrk/str.h"

struct route_table {
	struct route_entry *e; /* sorted by domain */
	size_t n;
};

/* One A/AAAA lookup of a candidate host. */
struct route_hostq {
	struct route_query *q;
	size_t i;
	struct dns_query *dq;
	enum dns_status status;
	const char *error;
};

struct route_query {
	struct route *route; /* NULL once delivered */
	route_cb cb;
	void *arg;
	char domain[ROUTE_HOST_MAX + 1];
	struct event *ev; /* completion without DNS */
	struct dns_query *mxq;
	size_t nhost;
	struct route_hop hop[ROUTE_HOPS_MAX];
	struct route_hostq hq[ROUTE_HOPS_MAX];
	int outstanding;
	struct route_result res;
	LIST_ENTRY(route_query) entry;
};

struct route {
	struct event_base *base;
	struct dns *dns;
	struct route_table *table;
	char myhostname[DNS_NAME_MAX + 1];
	uint16_t port;
	LIST_HEAD(route_queries, route_query) queries;
};

/* --- the routes file ------------------------------------------------- */

int
route_parse_literal(const char *s, size_t n, struct dns_addr *out)
{
	char buf[INET6_ADDRSTRLEN + 1];
	size_t len;

	if (n < 3 || s[0] != '[' || s[n - 1] != ']')
		return -1;
	s++;
	len = n - 2;
	/* RFC 5321 §4.1.3: IPv6-address-literal = "IPv6:" IPv6-addr */
	if (len > 5 && str_ncasecmp(s, "IPv6:", 5) == 0) {
		s += 5;
		len -= 5;
		if (len >= sizeof(buf))
			return -1;
		memcpy(buf, s, len);
		buf[len] = '\0';
		out->family = AF_INET6;
		return inet_pton(AF_INET6, buf, &out->u.v6) == 1 ? 0 : -1;
	}
	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, &out->u.v4) == 1) {
		out->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &out->u.v6) == 1) {
		out->family = AF_INET6;
		return 0;
	}
	return -1;
}

void
route_literal_format(const struct dns_addr *a, char *dst, size_t dstsize)
{
	char ip[INET6_ADDRSTRLEN];

	if (dns_addr_format(a, ip, sizeof(ip)) == -1)
		str_copy(ip, "?", sizeof(ip));
	/* RFC 5321 §4.1.3: IPv6-address-literal = "IPv6:" IPv6-addr. */
	snprintf(
	    dst, dstsize, a->family == AF_INET6 ? "[IPv6:%s]" : "[%s]", ip);
}

/* Writes the literal for a into dst (ROUTE_HOST_MAX + 1 bytes). */
static void
route_literal_text(const struct dns_addr *a, char *dst)
{
	route_literal_format(a, dst, ROUTE_HOST_MAX + 1);
}

/* Lower-cases name into dst (DNS_NAME_MAX + 1 bytes) without a trailing
 * dot.  Returns 0, or -1 if name (n bytes) is not a valid host name. */
static int
route_norm_name(char *dst, const char *name, size_t n)
{
	char tmp[DNS_NAME_MAX + 2];

	if (n == 0 || n >= sizeof(tmp) || memchr(name, '\0', n) != NULL)
		return -1;
	memcpy(tmp, name, n);
	tmp[n] = '\0';
	if (!dns_name_valid(tmp))
		return -1;
	if (tmp[n - 1] == '.')
		tmp[n - 1] = '\0';
	str_lower(tmp);
	str_copy(dst, tmp, DNS_NAME_MAX + 1);
	return 0;
}

/* Returns 1 if the name is all digits and dots: an IPv4 address written
 * without brackets, which is not a host name (RFC 1123 §2.1). */
static int
route_looks_numeric(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != '.' && (s[i] < '0' || s[i] > '9'))
			return 0;
	return 1;
}

/* Returns 1 if the n bytes at s are an IPv6 address. */
static int
route_is_ipv6(const char *s, size_t n)
{
	char buf[INET6_ADDRSTRLEN + 1];
	struct in6_addr a;

	if (n >= sizeof(buf))
		return 0;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, &a) == 1;
}

/* Parses the host field "host", "host:port", "[ip]" or "[ip]:port".
 * Returns NULL, or what is wrong. */
static const char *
route_parse_host(const char *s, size_t n, struct route_entry *e)
{
	const char *colon = NULL, *p, *end = s + n;
	size_t hlen, i;
	long port = 0;

	if (s[0] == '[') {
		if ((p = memchr(s, ']', n)) == NULL)
			return "unterminated address literal";
		hlen = (size_t)(p - s) + 1;
		if (route_parse_literal(s, hlen, &e->addr) == -1)
			return "bad address literal";
		e->literal = 1;
		route_literal_text(&e->addr, e->host);
		if (p + 1 < end) {
			if (p[1] != ':')
				return "junk after address literal";
			colon = p + 1;
		}
	} else {
		colon = memchr(s, ':', n);
		hlen = colon != NULL ? (size_t)(colon - s) : n;
		if (colon != NULL &&
		    memchr(colon + 1, ':', (size_t)(end - colon - 1)) != NULL)
			return route_is_ipv6(s, n)
			    ? "IPv6 address without brackets"
			    : "bad port";
		if (hlen > 0 && route_looks_numeric(s, hlen))
			return "IP address without brackets";
		if (route_norm_name(e->host, s, hlen) == -1)
			return "bad host name";
	}
	if (colon != NULL) {
		p = colon + 1;
		if (p == end || end - p > 5)
			return "bad port";
		for (i = 0; p + i < end; i++) {
			if (p[i] < '0' || p[i] > '9')
				return "bad port";
			port = port * 10 + (p[i] - '0');
		}
		if (port < 1 || port > 65535)
			return "port outside 1-65535";
		e->port = (uint16_t)port;
	}
	return NULL;
}

/* Parses one option field after the host ("tls-name=NAME").  Returns
 * NULL, or what is wrong. */
static const char *
route_parse_option(const char *s, size_t n, struct route_entry *e)
{
	static const char tn[] = "tls-name=";
	const char *eq = memchr(s, '=', n);

	if (eq == NULL)
		return "expected an option (tls-name=NAME) after the host";
	if ((size_t)(eq - s) + 1 != sizeof(tn) - 1 ||
	    str_ncasecmp(s, tn, sizeof(tn) - 1) != 0)
		return "unknown option (tls-name=NAME is the only one)";
	s = eq + 1;
	n -= sizeof(tn) - 1;
	if (n > 0 &&
	    (s[0] == '[' || route_looks_numeric(s, n) || route_is_ipv6(s, n)))
		return "tls-name must be a host name";
	if (route_norm_name(e->tls_name, s, n) == -1)
		return "bad tls-name";
	return NULL;
}

static int
route_entry_cmp(const void *pa, const void *pb)
{
	const struct route_entry *a = pa, *b = pb;

	return strcmp(a->domain, b->domain);
}

struct route_table *
route_table_parse(
    const char *file, const char *text, size_t len, char *err, size_t errsize)
{
	struct route_table *t;
	struct route_entry *e, *grown;
	const char *line, *nl, *end = text + len, *p, *what = NULL;
	const char *f[ROUTE_FIELDS_MAX + 1];
	size_t fl[ROUTE_FIELDS_MAX + 1], llen, lineno = 0, nf, cap = 0, i;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto oom;
	for (line = text; line < end; line = nl + 1) {
		lineno++;
		if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
			nl = end;
		llen = (size_t)(nl - line);
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (llen > ROUTE_LINE_MAX) {
			what = "line too long";
			goto bad;
		}
		if (memchr(line, '\0', llen) != NULL) {
			what = "NUL byte";
			goto bad;
		}
		if ((p = memchr(line, '#', llen)) != NULL)
			llen = (size_t)(p - line);
		/* split into fields on blanks, one more than allowed */
		nf = 0;
		for (p = line; p < line + llen && nf <= ROUTE_FIELDS_MAX;) {
			while (p < line + llen && (*p == ' ' || *p == '\t'))
				p++;
			if (p == line + llen)
				break;
			f[nf] = p;
			while (p < line + llen && *p != ' ' && *p != '\t')
				p++;
			fl[nf] = (size_t)(p - f[nf]);
			nf++;
		}
		if (nf == 0)
			continue;
		if (nf < 2) {
			what = "expected \"domain host[:port]\" or "
			       "\"domain [ip]:port\"";
			goto bad;
		}
		if (nf > ROUTE_FIELDS_MAX) {
			what = "too many fields";
			goto bad;
		}
		if (t->n == ROUTE_ENTRIES_MAX) {
			what = "too many routes";
			goto bad;
		}
		if (t->n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			if (cap > ROUTE_ENTRIES_MAX)
				cap = ROUTE_ENTRIES_MAX;
			grown = reallocarray(t->e, cap, sizeof(*t->e));
			if (grown == NULL)
				goto oom;
			t->e = grown;
		}
		e = &t->e[t->n];
		memset(e, 0, sizeof(*e));
		e->line = lineno;
		if (fl[0] == 1 && f[0][0] == '*')
			str_copy(e->domain, "*", sizeof(e->domain));
		else if (f[0][0] == '[') {
			what = "address literal as domain";
			goto bad;
		} else if (route_norm_name(e->domain, f[0], fl[0]) == -1) {
			what = "bad domain";
			goto bad;
		}
		if ((what = route_parse_host(f[1], fl[1], e)) != NULL)
			goto bad;
		for (i = 2; i < nf; i++)
			if ((what = route_parse_option(f[i], fl[i], e)) != NULL)
				goto bad;
		t->n++;
	}
	if (t->n > 0)
		qsort(t->e, t->n, sizeof(*t->e), route_entry_cmp);
	for (i = 1; i < t->n; i++)
		if (strcmp(t->e[i - 1].domain, t->e[i].domain) == 0) {
			snprintf(err, errsize,
			    "%s:%zu: duplicate route for %s (line %zu)", file,
			    t->e[i].line > t->e[i - 1].line ? t->e[i].line
			                                    : t->e[i - 1].line,
			    t->e[i].domain,
			    t->e[i].line > t->e[i - 1].line ? t->e[i - 1].line
			                                    : t->e[i].line);
			route_table_free(t);
			return NULL;
		}
	return t;
bad:
	snprintf(err, errsize, "%s:%zu: %s", file, lineno, what);
	route_table_free(t);
	return NULL;
oom:
	snprintf(err, errsize, "%s: out of memory", file);
	route_table_free(t);
	return NULL;
}

struct route_table *
route_table_load(const char *path, char *err, size_t errsize)
{
	struct route_table *t = NULL;
	struct buf b;
	char why[256];

	buf_init(&b, ROUTE_FILE_MAX);
	if (file_read(path, &b, why, sizeof(why)) == -1)
		snprintf(err, errsize, "%s: %s", path, why);
	else
		t = route_table_parse(path, buf_cstr(&b), b.len, err, errsize);
	buf_reset(&b);
	return t;
}

void
route_table_free(struct route_table *t)
{
	if (t == NULL)
		return;
	free(t->e);
	free(t);
}

size_t
route_table_count(const struct route_table *t)
{
	return t != NULL ? t->n : 0;
}

const struct route_entry *
route_table_lookup(const struct route_table *t, const char *domain)
{
	struct route_entry key;
	const struct route_entry *e;

	if (t == NULL || t->n == 0)
		return NULL;
	memset(&key, 0, sizeof(key));
	if (domain != NULL &&
	    route_norm_name(key.domain, domain, strlen(domain)) == 0) {
		e = bsearch(&key, t->e, t->n, sizeof(*t->e), route_entry_cmp);
		if (e != NULL)
			return e;
	}
	str_copy(key.domain, "*", sizeof(key.domain));
	return bsearch(&key, t->e, t->n, sizeof(*t->e), route_entry_cmp);
}

/* --- the decision ---------------------------------------------------- */

struct route *
route_new(
    struct event_base *base, struct dns *dns, const struct route_opts *opts)
{
	struct route *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->base = base;
	r->dns = dns;
	LIST_INIT(&r->queries);
	r->port = ROUTE_PORT_DEFAULT;
	if (opts != NULL) {
		if (opts->port != 0)
			r->port = opts->port;
		if (opts->myhostname != NULL &&
		    route_norm_name(r->myhostname, opts->myhostname,
		        strlen(opts->myhostname)) == -1)
			r->myhostname[0] = '\0';
	}
	return r;
}

static void
route_query_free(struct route_query *q)
{
	size_t i;

	if (q->ev != NULL)
		event_free(q->ev);
	dns_cancel(q->mxq);
	for (i = 0; i < q->nhost; i++)
		dns_cancel(q->hq[i].dq);
	free(q);
}

void
route_cancel(struct route_query *q)
{
	if (q == NULL)
		return;
	if (q->route != NULL)
		LIST_REMOVE(q, entry);
	route_query_free(q);
}

void
route_free(struct route *r)
{
	struct route_query *q;

	if (r == NULL)
		return;
	while ((q = LIST_FIRST(&r->queries)) != NULL) {
		LIST_REMOVE(q, entry);
		route_query_free(q);
	}
	route_table_free(r->table);
	free(r);
}

void
route_set_table(struct route *r, struct route_table *t)
{
	route_table_free(r->table);
	r->table = t;
}

/* Hands the result to the callback and frees the query.  The callback may
 * free the router: q is off its list first and touches it no more. */
static void
route_deliver(struct route_query *q)
{
	LIST_REMOVE(q, entry);
	q->route = NULL;
	q->res.domain = q->domain;
	q->res.hops = q->res.nhops > 0 ? q->hop : NULL;
	q->cb(&q->res, q->arg);
	route_query_free(q);
}

static void
route_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	route_deliver(arg);
}

static void route_fail(struct route_query *q, enum route_status st, int reply,
    const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Records a failure (the result is delivered by the caller). */
static void
route_fail(struct route_query *q, enum route_status st, int reply,
    const char *dsn, const char *fmt, ...)
{
	va_list ap;

	q->res.status = st;
	q->res.reply = reply;
	q->res.dsn = dsn;
	q->res.nhops = 0;
	va_start(ap, fmt);
	vsnprintf(q->res.error, sizeof(q->res.error), fmt, ap);
	va_end(ap);
}

/* Delivers from the event loop (for decisions made without DNS). */
static int
route_later(struct route_query *q)
{
	if ((q->ev = event_new(q->route->base, -1, 0, route_ev_cb, q)) == NULL)
		return -1;
	event_active(q->ev, 0, 0);
	return 0;
}

/* All host lookups are in: keep the hosts that have addresses. */
static void
route_hosts_done(struct route_query *q)
{
	size_t i, n = 0, tempfail = 0;
	const char *terr = NULL, *perr = NULL, *thost = NULL, *phost = NULL;

	for (i = 0; i < q->nhost; i++) {
		if (q->hop[i].naddr > 0) {
			if (n != i)
				q->hop[n] = q->hop[i];
			n++;
		} else if (q->hq[i].status == DNS_TEMPFAIL) {
			tempfail++;
			if (terr == NULL) {
				terr = q->hq[i].error;
				thost = q->hop[i].host;
			}
		} else if (perr == NULL) {
			perr = q->hq[i].error;
			phost = q->hop[i].host;
		}
	}
	if (n > 0) {
		q->res.status = ROUTE_OK;
		q->res.nhops = n;
		return;
	}
	if (tempfail > 0)
		route_fail(q, ROUTE_TEMPFAIL, 451, "4.4.3",
		    "address lookup of %s failed: %s", thost, terr);
	else if (q->res.source == ROUTE_SRC_TABLE)
		/* our own configuration is wrong: keep the mail */
		route_fail(q, ROUTE_TEMPFAIL, 451, "4.4.4",
		    "routed host %s has no address: %s", phost, perr);
	else if (q->res.source == ROUTE_SRC_IMPLICIT)
		route_fail(q, ROUTE_PERMFAIL, 550, "5.4.4",
		    "%s has no MX records and no address", q->domain);
	else
		route_fail(q, ROUTE_PERMFAIL, 550, "5.4.4",
		    "no MX host of %s has an address (%s: %s)", q->domain,
		    phost, perr);
}

static void
route_addr_cb(const struct dns_result *res, void *arg)
{
	struct route_hostq *hq = arg;
	struct route_query *q = hq->q;
	struct route_hop *h = &q->hop[hq->i];
	size_t n;

	hq->dq = NULL;
	hq->status = res->status;
	hq->error = res->error;
	if (res->status == DNS_OK) {
		n = res->n < sizeof(h->addr) / sizeof(h->addr[0])
		    ? res->n
		    : sizeof(h->addr) / sizeof(h->addr[0]);
		memcpy(h->addr, res->addr, n * sizeof(h->addr[0]));
		h->naddr = n;
	}
	if (--q->outstanding > 0)
		return;
	route_hosts_done(q);
	route_deliver(q);
}

/* Starts A/AAAA lookups of q->hop[0..nhost-1].  Returns 0, or -1 with
 * errno (the started ones are cancelled by route_query_free). */
static int
route_resolve_hosts(struct route_query *q)
{
	size_t i;

	for (i = 0; i < q->nhost; i++) {
		q->hq[i].q = q;
		q->hq[i].i = i;
		q->hq[i].dq = dns_addr(
		    q->route->dns, q->hop[i].host, route_addr_cb, &q->hq[i]);
		if (q->hq[i].dq == NULL)
			return -1;
		q->outstanding++;
	}
	return 0;
}

static void
route_mx_cb(const struct dns_result *res, void *arg)
{
	struct route_query *q = arg;
	struct route *r = q->route;
	size_t i, n = 0, nnull = 0;
	int selfpref = -1;

	q->mxq = NULL;
	switch (res->status) {
	case DNS_OK:
		break;
	case DNS_NODATA:
		/* "If an empty list of MXs is returned, the address is
		 * treated as if it was associated with an implicit MX RR,
		 * with a preference of 0, pointing to that host."
		 * (RFC 5321 §5.1) */
		q->res.source = ROUTE_SRC_IMPLICIT;
		str_copy(q->hop[0].host, q->domain, sizeof(q->hop[0].host));
		q->hop[0].port = r->port;
		q->nhost = 1;
		if (route_resolve_hosts(q) == -1)
			goto tempfail;
		return;
	case DNS_NXDOMAIN:
		route_fail(q, ROUTE_PERMFAIL, 550, "5.1.2",
		    "domain %s does not exist", q->domain);
		goto deliver;
	case DNS_PERMFAIL:
		route_fail(q, ROUTE_PERMFAIL, 550, "5.1.2",
		    "MX lookup of %s failed: %s", q->domain, res->error);
		goto deliver;
	case DNS_TEMPFAIL:
		route_fail(q, ROUTE_TEMPFAIL, 451, "4.4.3",
		    "MX lookup of %s failed: %s", q->domain, res->error);
		goto deliver;
	}
	/* RFC 5321 §5.1: "if [the SMTP client] appears as one of the MX
	 * records ... it MUST discard that MX RR and all MX RRs with a less
	 * preferred (higher) preference value" (and equal ones too, or two
	 * equal MXs would bounce mail between them). */
	if (r->myhostname[0] != '\0')
		for (i = 0; i < res->n; i++)
			if (strcmp(res->mx[i].host, r->myhostname) == 0) {
				selfpref = res->mx[i].pref;
				break;
			}
	for (i = 0; i < res->n && n < ROUTE_HOPS_MAX; i++) {
		if (res->mx[i].host[0] == '\0') {
			/* RFC 7505 null MX; other records beside it are a
			 * misconfiguration (§3): use them */
			nnull++;
			continue;
		}
		if (selfpref >= 0 && res->mx[i].pref >= selfpref)
			continue;
		str_copy(
		    q->hop[n].host, res->mx[i].host, sizeof(q->hop[n].host));
		q->hop[n].pref = res->mx[i].pref;
		q->hop[n].port = r->port;
		n++;
	}
	if (n == 0 && nnull > 0 && selfpref < 0) {
		/* RFC 7505 §4.1: "... MUST NOT attempt to deliver mail to
		 * that domain" and reports 556 5.1.10 (RFC 7504). */
		route_fail(q, ROUTE_PERMFAIL, 556, "5.1.10",
		    "domain %s does not accept mail (null MX)", q->domain);
		goto deliver;
	}
	if (n == 0) {
		route_fail(q, ROUTE_PERMFAIL, 554, "5.4.6",
		    "mail for %s loops back to myself (MX %s)", q->domain,
		    r->myhostname);
		goto deliver;
	}
	q->nhost = n;
	if (route_resolve_hosts(q) == -1)
		goto tempfail;
	return;
tempfail:
	/* Cancel what started and report; the started lookups would
	 * otherwise call back into a delivered query. */
	for (i = 0; i < q->nhost; i++) {
		dns_cancel(q->hq[i].dq);
		q->hq[i].dq = NULL;
	}
	route_fail(q, ROUTE_TEMPFAIL, 451, "4.3.0",
	    "cannot start address lookups for %s: %s", q->domain,
	    strerror(errno));
deliver:
	route_deliver(q);
}

struct route_query *
route_lookup(struct route *r, const char *domain, route_cb cb, void *arg)
{
	struct route_query *q;
	const struct route_entry *e;
	struct dns_addr lit;
	size_t len = domain != NULL ? strlen(domain) : 0;
	int saved;

	memset(&lit, 0, sizeof(lit));
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	q->route = r;
	q->cb = cb;
	q->arg = arg;
	LIST_INSERT_HEAD(&r->queries, q, entry);
	if (len > 0 && domain[0] == '[') {
		if (route_parse_literal(domain, len, &lit) == -1) {
			str_copy(q->domain, "[?]", sizeof(q->domain));
			route_fail(q, ROUTE_PERMFAIL, 550, "5.1.2",
			    "bad address literal");
			goto later;
		}
		route_literal_text(&lit, q->domain);
	} else if (route_norm_name(
	               q->domain, domain != NULL ? domain : "", len) == -1) {
		str_copy(q->domain, "?", sizeof(q->domain));
		route_fail(q, ROUTE_PERMFAIL, 550, "5.1.2", "bad domain name");
		goto later;
	}
	/* 1. the routes file: the exact domain, else "*" */
	e = NULL;
	if (q->domain[0] != '[')
		e = route_table_lookup(r->table, q->domain);
	else if (r->table != NULL)
		e = route_table_lookup(r->table, "*");
	if (e != NULL) {
		q->res.source = ROUTE_SRC_TABLE;
		str_copy(q->hop[0].host, e->host, sizeof(q->hop[0].host));
		str_copy(q->hop[0].tls_name, e->tls_name,
		    sizeof(q->hop[0].tls_name));
		q->hop[0].port = e->port != 0 ? e->port : ROUTE_PORT_DEFAULT;
		if (e->literal) {
			q->hop[0].literal = 1;
			q->hop[0].addr[0] = e->addr;
			q->hop[0].naddr = 1;
			q->res.nhops = 1;
			goto later;
		}
		q->nhost = 1;
		if (route_resolve_hosts(q) == -1)
			goto fail;
		return q;
	}
	/* 2. an address literal */
	if (q->domain[0] == '[') {
		q->res.source = ROUTE_SRC_LITERAL;
		str_copy(q->hop[0].host, q->domain, sizeof(q->hop[0].host));
		q->hop[0].literal = 1;
		q->hop[0].addr[0] = lit;
		q->hop[0].naddr = 1;
		q->hop[0].port = r->port;
		q->res.nhops = 1;
		goto later;
	}
	/* 3. and 4. MX, else the implicit MX */
	q->res.source = ROUTE_SRC_MX;
	if ((q->mxq = dns_mx(r->dns, q->domain, route_mx_cb, q)) == NULL)
		goto fail;
	return q;
later:
	if (route_later(q) == 0)
		return q;
	errno = ENOMEM;
fail:
	saved = errno;
	route_cancel(q);
	errno = saved;
	return NULL;
}
