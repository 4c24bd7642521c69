/*
 * dns: c-ares on a libevent event_base.
 *
 * c-ares tells us which sockets to watch through its sock_state callback;
 * each gets a persistent event that calls ares_process_fd().  One evtimer
 * follows ares_timeout().  Finished lookups are not reported from inside
 * c-ares: they go on a done list and one "deliver" event, activated on the
 * event_base, hands them to their callbacks.  So a callback never runs
 * inside ares_process_fd() or inside the dns_*() call that started it, and
 * may do anything, dns_free() included.
 */
#include <sys/queue.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "msgtrk/str.h"

struct dns_sock {
	struct dns *dns;
	int fd;
	short what; /* EV_READ | EV_WRITE currently watched */
	struct event *ev;
	LIST_ENTRY(dns_sock) entry;
};

/* One c-ares query; an address lookup has two (A, AAAA). */
struct dns_sub {
	struct dns_query *q;
	int qtype; /* ns_t_mx, ns_t_a, ns_t_aaaa, ns_t_srv */
	enum dns_status status;
	const char *error;
	size_t naddr;
	struct dns_addr addr[DNS_ADDR_MAX];
};

struct dns_query {
	struct dns *dns;
	dns_cb cb;
	void *arg;
	int outstanding; /* c-ares callbacks still to come */
	int cancelled;
	char name[DNS_NAME_MAX + 1];
	struct dns_sub sub[2];
	int nsub;
	struct dns_result res;
	TAILQ_ENTRY(dns_query) entry; /* on d->queries, then d->done */
};

TAILQ_HEAD(dns_queries, dns_query);

struct dns {
	struct event_base *base;
	ares_channel channel;
	int have_channel;
	int lib_init; /* ares_library_init() succeeded */
	struct event *timer;
	struct event *deliver;
	LIST_HEAD(dns_socks, dns_sock) socks;
	struct dns_queries queries; /* waiting for c-ares */
	struct dns_queries done; /* waiting for delivery */
	size_t npending; /* not yet reported nor cancelled */
	size_t ntotal; /* allocated queries */
	int destroying; /* inside ares_destroy(): ignore callbacks */
	int delivering; /* inside dns_deliver() */
	int dying; /* dns_free() called during delivery */
	dns_random_fn random;
	void *random_arg;
};

static void dns_query_free(struct dns_query *);
static void dns_reschedule(struct dns *);

static uint32_t
dns_default_random(uint32_t upper, void *arg)
{
	(void)arg;
	return arc4random_uniform(upper);
}

int
dns_name_valid(const char *name)
{
	size_t len, label = 0, i;
	char c, prev = '.';

	if (name == NULL)
		return 0;
	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		c = name[i];
		if (c == '.') {
			if (label == 0 || prev == '-')
				return 0;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' ||
		    (c == '-' && label > 0)) {
			if (++label > DNS_LABEL_MAX)
				return 0;
		} else
			return 0;
		prev = c;
	}
	return prev != '-' && prev != '.';
}

/* Copies name into dst (DNS_NAME_MAX + 1 bytes) lower-cased without the
 * trailing dot.  Returns 0, or -1 if it is not a valid name; the root
 * ("" or ".") gives "" and returns 1. */
static int
dns_name_norm(char *dst, const char *name)
{
	size_t len;

	if (name[0] == '\0' || strcmp(name, ".") == 0) {
		dst[0] = '\0';
		return 1;
	}
	if (!dns_name_valid(name))
		return -1;
	len = strlen(name);
	if (name[len - 1] == '.')
		len--;
	memcpy(dst, name, len);
	dst[len] = '\0';
	str_lower(dst);
	return 0;
}

int
dns_addr_format(const struct dns_addr *a, char *dst, size_t dstsize)
{
	if (inet_ntop(a->family, &a->u, dst, dstsize) == NULL)
		return -1;
	return 0;
}

static int
dns_mx_cmp(const void *pa, const void *pb)
{
	const struct dns_mx *a = pa, *b = pb;

	if (a->pref != b->pref)
		return (a->pref > b->pref) - (a->pref < b->pref);
	/* a total order, so that the shuffle alone decides */
	return strcmp(a->host, b->host);
}

void
dns_mx_sort(struct dns_mx *mx, size_t n, dns_random_fn rnd, void *arg)
{
	struct dns_mx tmp;
	size_t i, j, k, run;

	if (n < 2)
		return;
	/* qsort is not stable, so order first and then shuffle each run of
	 * equal preference (Fisher-Yates). */
	qsort(mx, n, sizeof(*mx), dns_mx_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && mx[j].pref == mx[i].pref; j++)
			;
		/* "If there are multiple destinations with the same
		 * preference and there is no clear reason to favor one ...
		 * the SMTP client SHOULD randomize them" (RFC 5321 §5.1) */
		for (run = j - i; run > 1; run--) {
			k = rnd((uint32_t)run, arg);
			if (k >= run)
				k = run - 1;
			tmp = mx[i + run - 1];
			mx[i + run - 1] = mx[i + k];
			mx[i + k] = tmp;
		}
	}
}

static int
dns_srv_cmp(const void *pa, const void *pb)
{
	const struct dns_srv *a = pa, *b = pb;

	if (a->priority != b->priority)
		return (a->priority > b->priority) -
		    (a->priority < b->priority);
	/* weight 0 first, as RFC 2782 asks before the running sums */
	if ((a->weight != 0) != (b->weight != 0))
		return (a->weight != 0) - (b->weight != 0);
	/* then a total order, so that the random selection alone decides */
	if (strcmp(a->target, b->target) != 0)
		return strcmp(a->target, b->target);
	return (a->port > b->port) - (a->port < b->port);
}

void
dns_srv_sort(struct dns_srv *srv, size_t n, dns_random_fn rnd, void *arg)
{
	struct dns_srv tmp;
	size_t i, j, k, m;
	uint64_t sum, pick, run;

	if (n < 2)
		return;
	qsort(srv, n, sizeof(*srv), dns_srv_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && srv[j].priority == srv[i].priority;
		     j++)
			;
		/*
		 * RFC 2782, "Usage rules": compute the sum of the weights of
		 * the unordered records, choose a uniform random number
		 * between 0 and the sum (inclusive), select the first record
		 * whose running sum is >= it, and repeat with the rest.
		 */
		for (k = i; k + 1 < j; k++) {
			sum = 0;
			for (m = k; m < j; m++)
				sum += srv[m].weight;
			/* n is bounded by a 64 KiB answer, so sum + 1 fits
			 * 32 bits */
			pick = rnd((uint32_t)(sum + 1), arg);
			run = 0;
			for (m = k; m < j; m++) {
				run += srv[m].weight;
				if (run >= pick)
					break;
			}
			if (m == j)
				m = j - 1;
			tmp = srv[m];
			memmove(&srv[k + 1], &srv[k], (m - k) * sizeof(*srv));
			srv[k] = tmp;
		}
	}
}

/* Maps a c-ares status other than ARES_SUCCESS. */
static enum dns_status
dns_status_of(int status)
{
	switch (status) {
	case ARES_ENODATA:
		return DNS_NODATA;
	case ARES_ENOTFOUND:
		return DNS_NXDOMAIN;
	case ARES_EBADNAME:
		return DNS_PERMFAIL;
	default:
		/* ETIMEOUT, ESERVFAIL, EREFUSED, ECONNREFUSED, EFORMERR,
		 * EBADRESP, ENOMEM...: mail waits and retries (RFC 5321
		 * §5.1 treats a failed lookup as temporary). */
		return DNS_TEMPFAIL;
	}
}

static const char *
dns_error_of(enum dns_status st, int status)
{
	switch (st) {
	case DNS_OK:
		return "ok";
	case DNS_NXDOMAIN:
		return "no such domain";
	case DNS_NODATA:
		return "no records of the type";
	default:
		return ares_strerror(status);
	}
}

/* An answer that does not parse is the server's fault, not the name's:
 * temporary (EBADNAME here means a malformed name in the answer). */
static void
dns_parse_error(enum dns_status *st, const char **error, int rc)
{
	if (rc == ARES_ENODATA) {
		*st = DNS_NODATA;
		*error = dns_error_of(DNS_NODATA, rc);
	} else {
		*st = DNS_TEMPFAIL;
		*error = ares_strerror(rc);
	}
}

static void
dns_parse_mx(struct dns_query *q, const unsigned char *abuf, int alen)
{
	struct ares_mx_reply *list = NULL, *r;
	struct dns_mx *mx;
	size_t n = 0, i = 0;
	int rc;

	rc = ares_parse_mx_reply(abuf, alen, &list);
	if (rc != ARES_SUCCESS) {
		dns_parse_error(&q->res.status, &q->res.error, rc);
		goto done;
	}
	for (r = list; r != NULL; r = r->next)
		n++;
	if (n == 0) {
		q->res.status = DNS_NODATA;
		q->res.error = dns_error_of(DNS_NODATA, 0);
		goto done;
	}
	/* n is bounded by the answer's size (64 KiB over TCP) */
	if ((mx = calloc(n, sizeof(*mx))) == NULL) {
		q->res.status = DNS_TEMPFAIL;
		q->res.error = "out of memory";
		goto done;
	}
	for (r = list; r != NULL; r = r->next) {
		if (dns_name_norm(mx[i].host, r->host) < 0)
			continue; /* malformed exchange: unusable */
		mx[i++].pref = r->priority;
	}
	if (i == 0) {
		free(mx);
		q->res.status = DNS_TEMPFAIL;
		q->res.error = "malformed MX host names";
		goto done;
	}
	dns_mx_sort(mx, i, q->dns->random, q->dns->random_arg);
	q->res.mx = mx;
	q->res.n = i < DNS_MX_MAX ? i : DNS_MX_MAX;
	q->res.status = DNS_OK;
	q->res.error = "ok";
done:
	ares_free_data(list);
}

static void
dns_parse_srv(struct dns_query *q, const unsigned char *abuf, int alen)
{
	struct ares_srv_reply *list = NULL, *r;
	struct dns_srv *srv;
	size_t n = 0, i = 0, root = 0;
	int rc;

	rc = ares_parse_srv_reply(abuf, alen, &list);
	if (rc != ARES_SUCCESS) {
		dns_parse_error(&q->res.status, &q->res.error, rc);
		goto done;
	}
	for (r = list; r != NULL; r = r->next)
		n++;
	if (n == 0) {
		q->res.status = DNS_NODATA;
		q->res.error = dns_error_of(DNS_NODATA, 0);
		goto done;
	}
	if ((srv = calloc(n, sizeof(*srv))) == NULL) {
		q->res.status = DNS_TEMPFAIL;
		q->res.error = "out of memory";
		goto done;
	}
	for (r = list; r != NULL; r = r->next) {
		rc = dns_name_norm(srv[i].target, r->host);
		if (rc != 0) {
			root += rc == 1;
			continue;
		}
		srv[i].priority = r->priority;
		srv[i].weight = r->weight;
		srv[i].port = r->port;
		i++;
	}
	if (i == 0) {
		free(srv);
		/* "A Target of "." means that the service is decidedly not
		 * available at this domain." (RFC 2782) */
		if (root == 1 && n == 1) {
			q->res.status = DNS_PERMFAIL;
			q->res.error = "service not offered (SRV target \".\")";
		} else {
			q->res.status = DNS_TEMPFAIL;
			q->res.error = "malformed SRV targets";
		}
		goto done;
	}
	dns_srv_sort(srv, i, q->dns->random, q->dns->random_arg);
	q->res.srv = srv;
	q->res.n = i < DNS_SRV_MAX ? i : DNS_SRV_MAX;
	q->res.status = DNS_OK;
	q->res.error = "ok";
done:
	ares_free_data(list);
}

static void
dns_parse_addr(struct dns_sub *s, const unsigned char *abuf, int alen)
{
	struct ares_addrttl a4[DNS_ADDR_MAX];
	struct ares_addr6ttl a6[DNS_ADDR_MAX];
	int n = DNS_ADDR_MAX, rc, i;

	if (s->qtype == ns_t_a)
		rc = ares_parse_a_reply(abuf, alen, NULL, a4, &n);
	else
		rc = ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n);
	if (rc != ARES_SUCCESS || n <= 0) {
		if (rc == ARES_SUCCESS)
			rc = ARES_ENODATA;
		dns_parse_error(&s->status, &s->error, rc);
		return;
	}
	for (i = 0; i < n && i < DNS_ADDR_MAX; i++) {
		if (s->qtype == ns_t_a) {
			s->addr[i].family = AF_INET;
			s->addr[i].u.v4 = a4[i].ipaddr;
		} else {
			s->addr[i].family = AF_INET6;
			memcpy(&s->addr[i].u.v6, &a6[i].ip6addr,
			    sizeof(s->addr[i].u.v6));
		}
	}
	s->naddr = (size_t)i;
	s->status = DNS_OK;
	s->error = "ok";
}

/*
 * Combines the A and AAAA answers: any address makes the lookup a success
 * (IPv4 first: loopback tests and many hosts lack IPv6 routes, and SMTP
 * clients fall through the list anyway); otherwise a temporary failure of
 * either wins, then NODATA (the name exists), then NXDOMAIN.
 */
static void
dns_combine_addr(struct dns_query *q)
{
	struct dns_sub *s4 = &q->sub[0], *s6 = &q->sub[1];
	size_t n = s4->naddr + s6->naddr;

	if (n > 0) {
		if ((q->res.addr = calloc(n, sizeof(*q->res.addr))) == NULL) {
			q->res.status = DNS_TEMPFAIL;
			q->res.error = "out of memory";
			return;
		}
		memcpy(q->res.addr, s4->addr, s4->naddr * sizeof(s4->addr[0]));
		memcpy(q->res.addr + s4->naddr, s6->addr,
		    s6->naddr * sizeof(s6->addr[0]));
		q->res.n = n;
		q->res.status = DNS_OK;
		q->res.error = "ok";
	} else if (s4->status == DNS_TEMPFAIL || s6->status == DNS_TEMPFAIL) {
		q->res.status = DNS_TEMPFAIL;
		q->res.error =
		    s4->status == DNS_TEMPFAIL ? s4->error : s6->error;
	} else if (s4->status == DNS_PERMFAIL || s6->status == DNS_PERMFAIL) {
		q->res.status = DNS_PERMFAIL;
		q->res.error =
		    s4->status == DNS_PERMFAIL ? s4->error : s6->error;
	} else if (s4->status == DNS_NODATA || s6->status == DNS_NODATA) {
		q->res.status = DNS_NODATA;
		q->res.error = dns_error_of(DNS_NODATA, 0);
	} else {
		q->res.status = DNS_NXDOMAIN;
		q->res.error = dns_error_of(DNS_NXDOMAIN, 0);
	}
}

/* Moves a finished query to the done list and wakes the deliverer. */
static void
dns_finish(struct dns_query *q)
{
	struct dns *d = q->dns;

	TAILQ_REMOVE(&d->queries, q, entry);
	TAILQ_INSERT_TAIL(&d->done, q, entry);
	event_active(d->deliver, 0, 0);
}

static void
dns_ares_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_sub *s = arg;
	struct dns_query *q = s->q;

	(void)timeouts;
	q->outstanding--;
	if (q->dns->destroying)
		return;
	if (status != ARES_SUCCESS) {
		s->status = dns_status_of(status);
		s->error = dns_error_of(s->status, status);
		if (q->res.type != DNS_ADDR) {
			q->res.status = s->status;
			q->res.error = s->error;
		}
	} else if (q->res.type == DNS_MX)
		dns_parse_mx(q, abuf, alen);
	else if (q->res.type == DNS_SRV)
		dns_parse_srv(q, abuf, alen);
	else
		dns_parse_addr(s, abuf, alen);
	if (q->outstanding > 0)
		return;
	if (q->res.type == DNS_ADDR)
		dns_combine_addr(q);
	dns_finish(q);
}

static void
dns_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;
	struct dns_query *q;

	(void)fd;
	(void)what;
	d->delivering = 1;
	while (!d->dying && (q = TAILQ_FIRST(&d->done)) != NULL) {
		TAILQ_REMOVE(&d->done, q, entry);
		if (!q->cancelled) {
			d->npending--;
			q->cb(&q->res, q->arg);
		}
		dns_query_free(q);
	}
	d->delivering = 0;
	if (d->dying)
		dns_free(d);
}

static void
dns_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_sock *s = arg;
	struct dns *d = s->dns;

	ares_process_fd(d->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	dns_reschedule(d);
}

static void
dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;

	(void)fd;
	(void)what;
	ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_reschedule(d);
}

static void
dns_reschedule(struct dns *d)
{
	struct timeval tv, *tvp;

	if (d->destroying)
		return;
	tvp = ares_timeout(d->channel, NULL, &tv);
	if (tvp == NULL)
		evtimer_del(d->timer);
	else
		evtimer_add(d->timer, tvp);
}

static struct dns_sock *
dns_sock_find(struct dns *d, ares_socket_t fd)
{
	struct dns_sock *s;

	for (s = LIST_FIRST(&d->socks); s != NULL; s = LIST_NEXT(s, entry))
		if (s->fd == fd)
			return s;
	return NULL;
}

/* c-ares' sock_state callback: start, change or stop watching fd. */
static void
dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;
	struct dns_sock *s;
	short what = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);

	if ((s = dns_sock_find(d, fd)) != NULL) {
		if (s->what == what)
			return;
		event_free(s->ev);
		s->ev = NULL;
		if (what == 0) {
			LIST_REMOVE(s, entry);
			free(s);
			return;
		}
	} else {
		if (what == 0)
			return;
		if ((s = calloc(1, sizeof(*s))) == NULL)
			goto fail;
		s->dns = d;
		s->fd = fd;
		LIST_INSERT_HEAD(&d->socks, s, entry);
	}
	s->what = what;
	s->ev = event_new(d->base, fd, what | EV_PERSIST, dns_sock_cb, s);
	if (s->ev == NULL || event_add(s->ev, NULL) == -1) {
		event_free(s->ev);
		LIST_REMOVE(s, entry);
		free(s);
		goto fail;
	}
	return;
fail:
	/* Without a watcher the socket's queries end by timeout, which the
	 * timer still drives: a temporary failure, not a hang. */
	return;
}

/* Parses a port of 1-5 digits, 1-65535.  Returns it, or -1. */
static int
dns_parse_port(const char *s, size_t n)
{
	int port = 0;
	size_t i;

	if (n == 0 || n > 5)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		port = port * 10 + (s[i] - '0');
	}
	return port >= 1 && port <= 65535 ? port : -1;
}

/* Parses one "ip", "ip:port", "[ip6]" or "[ip6]:port" of n bytes. */
static int
dns_parse_server(const char *s, size_t n, struct ares_addr_port_node *node)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *h = s, *port = NULL, *end = s + n, *p;
	size_t hlen, colons = 0;
	int portnum = 53;

	if (s[0] == '[') {
		if ((p = memchr(s, ']', n)) == NULL)
			return -1;
		h = s + 1;
		hlen = (size_t)(p - h);
		if (p + 1 < end) {
			if (p[1] != ':')
				return -1;
			port = p + 2;
		}
	} else {
		for (p = s; p < end; p++)
			colons += *p == ':';
		/* one colon: ip:port; more: a bare IPv6 address */
		if (colons == 1) {
			p = memchr(s, ':', n);
			hlen = (size_t)(p - s);
			port = p + 1;
		} else
			hlen = n;
	}
	if (port != NULL &&
	    (portnum = dns_parse_port(port, (size_t)(end - port))) < 0)
		return -1;
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memset(node, 0, sizeof(*node));
	if (inet_pton(AF_INET, host, &node->addr.addr4) == 1)
		node->family = AF_INET;
	else if (inet_pton(AF_INET6, host, &node->addr.addr6) == 1)
		node->family = AF_INET6;
	else
		return -1;
	node->udp_port = node->tcp_port = portnum;
	return 0;
}

static int
dns_set_servers(
    struct dns *d, const struct dns_opts *o, char *err, size_t errsize)
{
	struct ares_addr_port_node nodes[DNS_SERVERS_MAX];
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	const char *p, *tok, *end;
	size_t n = 0, len, i;
	int rc;

	if (o->servers != NULL) {
		for (p = o->servers;; p = end + 1) {
			end = strchr(p, ',');
			if (end == NULL)
				end = p + strlen(p);
			tok = p;
			while (tok < end && (*tok == ' ' || *tok == '\t'))
				tok++;
			len = (size_t)(end - tok);
			while (len > 0 &&
			    (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
				len--;
			if (n == DNS_SERVERS_MAX) {
				snprintf(err, errsize,
				    "more than %d DNS servers",
				    DNS_SERVERS_MAX);
				return -1;
			}
			if (len == 0 || dns_parse_server(tok, len, &nodes[n])) {
				snprintf(err, errsize,
				    "bad DNS server \"%.*s\" (want ip[:port] "
				    "or [ipv6]:port)",
				    (int)(len > 64 ? 64 : len), tok);
				return -1;
			}
			n++;
			if (*end == '\0')
				break;
		}
	} else {
		if (o->n_server_addrs > DNS_SERVERS_MAX) {
			snprintf(err, errsize, "more than %d DNS servers",
			    DNS_SERVERS_MAX);
			return -1;
		}
		for (n = 0; n < o->n_server_addrs; n++) {
			memset(&nodes[n], 0, sizeof(nodes[n]));
			if (o->server_addrs[n].ss_family == AF_INET) {
				sin = (const struct sockaddr_in *)&o
				          ->server_addrs[n];
				nodes[n].family = AF_INET;
				nodes[n].addr.addr4 = sin->sin_addr;
				nodes[n].udp_port = ntohs(sin->sin_port);
			} else if (o->server_addrs[n].ss_family == AF_INET6) {
				sin6 = (const struct sockaddr_in6 *)&o
				           ->server_addrs[n];
				nodes[n].family = AF_INET6;
				memcpy(&nodes[n].addr.addr6, &sin6->sin6_addr,
				    sizeof(sin6->sin6_addr));
				nodes[n].udp_port = ntohs(sin6->sin6_port);
			} else {
				snprintf(err, errsize,
				    "DNS server %zu: not an IP address", n + 1);
				return -1;
			}
			if (nodes[n].udp_port == 0)
				nodes[n].udp_port = 53;
			nodes[n].tcp_port = nodes[n].udp_port;
		}
	}
	if (n == 0)
		return 0;
	for (i = 0; i + 1 < n; i++)
		nodes[i].next = &nodes[i + 1];
	nodes[n - 1].next = NULL;
	if ((rc = ares_set_servers_ports(d->channel, nodes)) != ARES_SUCCESS) {
		snprintf(err, errsize, "c-ares: %s", ares_strerror(rc));
		return -1;
	}
	return 0;
}

struct dns *
dns_new(struct event_base *base, const struct dns_opts *opts, char *err,
    size_t errsize)
{
	static const struct dns_opts zero;
	const struct dns_opts *o = opts != NULL ? opts : &zero;
	struct ares_options ao;
	struct dns *d;
	int rc, optmask;

	if (o->servers != NULL && o->n_server_addrs > 0) {
		snprintf(err, errsize, "both a server list and addresses");
		return NULL;
	}
	if (o->n_server_addrs > 0 && o->server_addrs == NULL) {
		snprintf(err, errsize, "server addresses missing");
		return NULL;
	}
	if (o->timeout_ms != 0 &&
	    (o->timeout_ms < DNS_TIMEOUT_MS_MIN ||
	        o->timeout_ms > DNS_TIMEOUT_MS_MAX)) {
		snprintf(err, errsize, "DNS timeout %d ms outside %d-%d",
		    o->timeout_ms, DNS_TIMEOUT_MS_MIN, DNS_TIMEOUT_MS_MAX);
		return NULL;
	}
	if (o->tries != 0 &&
	    (o->tries < DNS_TRIES_MIN || o->tries > DNS_TRIES_MAX)) {
		snprintf(err, errsize, "DNS tries %d outside %d-%d", o->tries,
		    DNS_TRIES_MIN, DNS_TRIES_MAX);
		return NULL;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	d->base = base;
	LIST_INIT(&d->socks);
	TAILQ_INIT(&d->queries);
	TAILQ_INIT(&d->done);
	d->random = o->random != NULL ? o->random : dns_default_random;
	d->random_arg = o->random_arg;
	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, errsize, "c-ares: %s", ares_strerror(rc));
		free(d);
		return NULL;
	}
	d->lib_init = 1;
	d->timer = evtimer_new(base, dns_timer_cb, d);
	d->deliver = event_new(base, -1, 0, dns_deliver, d);
	if (d->timer == NULL || d->deliver == NULL) {
		snprintf(err, errsize, "out of memory");
		goto fail;
	}
	memset(&ao, 0, sizeof(ao));
	ao.sock_state_cb = dns_sock_state;
	ao.sock_state_cb_data = d;
	ao.timeout =
	    o->timeout_ms != 0 ? o->timeout_ms : DNS_TIMEOUT_MS_DEFAULT;
	ao.tries = o->tries != 0 ? o->tries : DNS_TRIES_DEFAULT;
	/* NOSEARCH/NOALIASES: the name given is the name looked up; the
	 * answer is checked (SERVFAIL, REFUSED try the next server). */
	ao.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	optmask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
	    ARES_OPT_FLAGS;
	if ((rc = ares_init_options(&d->channel, &ao, optmask)) !=
	    ARES_SUCCESS) {
		snprintf(err, errsize, "c-ares: %s", ares_strerror(rc));
		goto fail;
	}
	d->have_channel = 1;
	if (dns_set_servers(d, o, err, errsize) == -1)
		goto fail;
	return d;
fail:
	dns_free(d);
	return NULL;
}

static void
dns_query_free(struct dns_query *q)
{
	if (q == NULL)
		return;
	q->dns->ntotal--;
	free(q->res.mx);
	free(q->res.srv);
	free(q->res.addr);
	free(q);
}

void
dns_free(struct dns *d)
{
	struct dns_query *q;
	struct dns_sock *s;

	if (d == NULL)
		return;
	if (d->delivering) {
		d->dying = 1;
		return;
	}
	if (d->have_channel) {
		/* ares_destroy() calls every pending query's callback with
		 * ARES_EDESTRUCTION; dns_ares_cb ignores them. */
		d->destroying = 1;
		ares_destroy(d->channel);
	}
	if (d->lib_init)
		ares_library_cleanup();
	while ((q = TAILQ_FIRST(&d->queries)) != NULL) {
		TAILQ_REMOVE(&d->queries, q, entry);
		dns_query_free(q);
	}
	while ((q = TAILQ_FIRST(&d->done)) != NULL) {
		TAILQ_REMOVE(&d->done, q, entry);
		dns_query_free(q);
	}
	while ((s = LIST_FIRST(&d->socks)) != NULL) {
		LIST_REMOVE(s, entry);
		event_free(s->ev);
		free(s);
	}
	if (d->timer != NULL)
		event_free(d->timer);
	if (d->deliver != NULL)
		event_free(d->deliver);
	free(d);
}

static struct dns_query *
dns_start(
    struct dns *d, enum dns_type type, const char *name, dns_cb cb, void *arg)
{
	struct dns_query *q;
	int i;

	if (d->ntotal >= DNS_QUERIES_MAX) {
		errno = EAGAIN;
		return NULL;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	d->ntotal++;
	d->npending++;
	q->dns = d;
	q->cb = cb;
	q->arg = arg;
	q->res.type = type;
	q->res.name = q->name;
	TAILQ_INSERT_TAIL(&d->queries, q, entry);
	if (name == NULL || dns_name_norm(q->name, name) != 0) {
		if (name != NULL)
			str_copy(q->name, name, sizeof(q->name));
		q->res.status = DNS_PERMFAIL;
		q->res.error = "invalid domain name";
		dns_finish(q);
		return q;
	}
	switch (type) {
	case DNS_MX:
		q->sub[0].qtype = ns_t_mx;
		q->nsub = 1;
		break;
	case DNS_SRV:
		q->sub[0].qtype = ns_t_srv;
		q->nsub = 1;
		break;
	case DNS_ADDR:
		q->sub[0].qtype = ns_t_a;
		q->sub[1].qtype = ns_t_aaaa;
		q->nsub = 2;
		break;
	}
	q->outstanding = q->nsub;
	for (i = 0; i < q->nsub; i++) {
		q->sub[i].q = q;
		/* ares_query may call dns_ares_cb before returning (no
		 * servers, ENOMEM); delivery waits for the event loop. */
		ares_query(d->channel, q->name, ns_c_in, q->sub[i].qtype,
		    dns_ares_cb, &q->sub[i]);
	}
	dns_reschedule(d);
	return q;
}

struct dns_query *
dns_mx(struct dns *d, const char *name, dns_cb cb, void *arg)
{
	return dns_start(d, DNS_MX, name, cb, arg);
}

struct dns_query *
dns_addr(struct dns *d, const char *name, dns_cb cb, void *arg)
{
	return dns_start(d, DNS_ADDR, name, cb, arg);
}

struct dns_query *
dns_srv(struct dns *d, const char *name, dns_cb cb, void *arg)
{
	return dns_start(d, DNS_SRV, name, cb, arg);
}

void
dns_cancel(struct dns_query *q)
{
	if (q == NULL || q->cancelled)
		return;
	q->cancelled = 1;
	q->dns->npending--;
}

size_t
dns_pending(const struct dns *d)
{
	return d->npending;
}
