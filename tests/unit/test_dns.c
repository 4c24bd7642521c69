/*
 * test_dns: the c-ares resolver on libevent, against a real dnsmasq that
 * the test starts on 127.0.0.1 with a free port.  Every resolver here is
 * given its servers explicitly: no query leaves the loopback.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dns/dns.h"
#include "table.h"
#include "testdns.h"

static struct testdns dns; /* dnsmasq, a silent and a refused port */

/* The zone every test sees. */
static const char *const dnsmasq_records[] = {
	"--host-record=hop2.test,127.0.0.2",
	"--host-record=hop3.test,127.0.0.3",
	"--host-record=dual.test,127.0.0.4,::4",
	"--host-record=v6only.test,::6",
	"--host-record=a.eq.test,127.0.1.1",
	"--mx-host=dest.test,hop3.test,10",
	"--mx-host=dest.test,hop2.test,5",
	"--mx-host=eq.test,a.eq.test,10",
	"--mx-host=eq.test,b.eq.test,10",
	"--mx-host=eq.test,c.eq.test,10",
	"--mx-host=eq.test,d.eq.test,20",
	"--mx-host=eq.test,e.eq.test,5",
	"--mx-host=UPPER.test,MX.Upper.TEST,1",
	"--dns-rr=null.test,15,000000",
	"--srv-host=_mtqp._tcp.hop2.test,hop2.test,11038,0,0",
	"--srv-host=_w._tcp.w.test,a.w.test,1,10,90",
	"--srv-host=_w._tcp.w.test,b.w.test,2,10,10",
	"--srv-host=_w._tcp.w.test,c.w.test,3,5,0",
	"--srv-host=_w._tcp.w.test,d.w.test,4,20,7",
	"--srv-host=_none._tcp.hop2.test",
	/* malformed exchange: a dot inside a label */
	"--dns-rr=bad.test,15,000a03612e62047465737400",
	/* garbage: a label length pointing past the end */
	"--dns-rr=broken.test,15,000a3f61",
};

/* --- running lookups ---------------------------------------------------- */

struct got {
	int called;
	enum dns_status status;
	char text[4096]; /* the records, formatted */
	char error[128];
	int stop; /* break the loop when called */
	struct event_base *base;
	struct dns *free_me; /* dns_free() inside the callback */
};

static void
format_result(const struct dns_result *r, char *out, size_t outsize)
{
	char ip[INET6_ADDRSTRLEN];
	size_t i, len = 0;

	out[0] = '\0';
	for (i = 0; i < r->n && len < outsize; i++) {
		if (i > 0)
			len += snprintf(out + len, outsize - len, " ");
		if (len >= outsize)
			break;
		switch (r->type) {
		case DNS_MX:
			len += snprintf(out + len, outsize - len, "%s/%u",
			    r->mx[i].host, r->mx[i].pref);
			break;
		case DNS_SRV:
			len += snprintf(out + len, outsize - len, "%s:%u/%u/%u",
			    r->srv[i].target, r->srv[i].port,
			    r->srv[i].priority, r->srv[i].weight);
			break;
		case DNS_ADDR:
			dns_addr_format(&r->addr[i], ip, sizeof(ip));
			len += snprintf(out + len, outsize - len, "%s", ip);
			break;
		}
	}
}

static void
got_cb(const struct dns_result *r, void *arg)
{
	struct got *g = arg;

	g->called++;
	g->status = r->status;
	assert_non_null(r->error);
	assert_non_null(r->name);
	if (r->status != DNS_OK)
		assert_int_equal(r->n, 0);
	else
		assert_true(r->n > 0);
	snprintf(g->error, sizeof(g->error), "%s", r->error);
	format_result(r, g->text, sizeof(g->text));
	if (g->free_me != NULL) {
		dns_free(g->free_me);
		g->free_me = NULL;
	}
	if (g->stop)
		event_base_loopbreak(g->base);
}

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	int *fired = arg;

	(void)fd;
	(void)what;
	*fired = 1;
}

/* Runs base until *called becomes want or the guard (seconds) fires;
 * fails the test on the guard. */
static void
run_until(struct event_base *base, const int *called, int want, int seconds)
{
	struct timeval tv = { seconds, 0 };
	struct event *guard;
	int fired = 0;

	guard = evtimer_new(base, guard_cb, &fired);
	assert_non_null(guard);
	evtimer_add(guard, &tv);
	while (*called < want && !fired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(guard);
	assert_false(fired);
}

static struct dns *
new_resolver(struct event_base *base, const char *servers, int timeout_ms,
    int tries, dns_random_fn rnd, void *rarg)
{
	struct dns_opts o;
	struct dns *d;
	char err[256];

	memset(&o, 0, sizeof(o));
	o.servers = servers;
	o.timeout_ms = timeout_ms;
	o.tries = tries;
	o.random = rnd;
	o.random_arg = rarg;
	d = dns_new(base, &o, err, sizeof(err));
	if (d == NULL)
		fail_msg("dns_new: %s", err);
	return d;
}

typedef struct dns_query *(*lookup_fn)(
    struct dns *, const char *, dns_cb, void *);

static lookup_fn
lookup_of(enum dns_type t)
{
	return t == DNS_MX ? dns_mx : t == DNS_SRV ? dns_srv : dns_addr;
}

/* Always picks the first candidate (random() == 0). */
static uint32_t
rand_zero(uint32_t upper, void *arg)
{
	(void)upper;
	(void)arg;
	return 0;
}

/* Always picks the last candidate. */
static uint32_t
rand_max(uint32_t upper, void *arg)
{
	(void)arg;
	return upper - 1;
}

/* --- name validation ---------------------------------------------------- */

struct name_case {
	const char *name;
	int valid;
};

#define L63 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define L64 L63 "a"

static const struct name_case name_cases[] = {
	{ "example.com", 1 },
	{ "example.com.", 1 },
	{ "a", 1 },
	{ "EXAMPLE.Com", 1 },
	{ "_mtqp._tcp.hop2.test", 1 },
	{ "xn--bcher-kva.example", 1 },
	{ "1.2.3.4", 1 },
	{ "a-b.c", 1 },
	{ L63 ".test", 1 },
	{ L64 ".test", 0 },
	{ L63 "." L63 "." L63 "." L63 "", 0 }, /* 255 characters */
	{ L63 "." L63 "." L63
	      ".aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    1 }, /* 253 */
	{ L63 "." L63 "." L63
	      ".aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.",
	    1 }, /* 253 plus the root dot */
	{ L63 "." L63 "." L63
	      ".aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    0 }, /* 254 */
	{ "", 0 },
	{ ".", 0 },
	{ "..", 0 },
	{ ".example.com", 0 },
	{ "example..com", 0 },
	{ "example.com..", 0 },
	{ "-a.test", 0 },
	{ "a-.test", 0 },
	{ "a.test-", 0 },
	{ "a b.test", 0 },
	{ "a\\.b.test", 0 },
	{ "a\x80.test", 0 },
	{ "a\n.test", 0 },
	{ "[127.0.0.1]", 0 },
	{ "a@b.test", 0 },
	{ "a*.test", 0 },
};

static const char *
name_name(const void *row)
{
	return ((const struct name_case *)row)->name;
}

static void
test_name(void **state)
{
	const struct name_case *c = *state;

	assert_int_equal(dns_name_valid(c->name), c->valid);
}

/* --- dns_new: options and server lists ---------------------------------- */

struct new_case {
	const char *servers;
	int timeout_ms;
	int tries;
	int ok;
};

static const struct new_case new_cases[] = {
	{ "127.0.0.1", 0, 0, 1 },
	{ "127.0.0.1:5353", 0, 0, 1 },
	{ "127.0.0.1:53, 127.0.0.2:54", 0, 0, 1 },
	{ " 127.0.0.1:53 ,\t127.0.0.2 ", 0, 0, 1 },
	{ "[::1]:5353", 0, 0, 1 },
	{ "[::1]", 0, 0, 1 },
	{ "::1", 0, 0, 1 },
	{ "[127.0.0.1]:53", 0, 0, 1 },
	{ "127.0.0.1:1", 0, 0, 1 },
	{ "127.0.0.1:65535", 0, 0, 1 },
	{ "1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5,6.6.6.6,7.7.7.7,8.8.8.8", 0,
	    0, 1 },
	{ "1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5,6.6.6.6,7.7.7.7,8.8.8.8,"
	  "9.9.9.9",
	    0, 0, 0 },
	{ "127.0.0.1:0", 0, 0, 0 },
	{ "127.0.0.1:65536", 0, 0, 0 },
	{ "127.0.0.1:123456", 0, 0, 0 },
	{ "127.0.0.1:", 0, 0, 0 },
	{ "127.0.0.1:53x", 0, 0, 0 },
	{ "127.0.0.1:-1", 0, 0, 0 },
	{ "localhost:53", 0, 0, 0 },
	{ "dns.example", 0, 0, 0 },
	{ "256.0.0.1", 0, 0, 0 },
	{ "[::1", 0, 0, 0 },
	{ "[::1]53", 0, 0, 0 },
	{ "[::1]:", 0, 0, 0 },
	{ "[]:53", 0, 0, 0 },
	{ "", 0, 0, 0 },
	{ ",", 0, 0, 0 },
	{ "127.0.0.1,", 0, 0, 0 },
	{ "127.0.0.1,,127.0.0.2", 0, 0, 0 },
	{ "127.0.0.1", DNS_TIMEOUT_MS_MIN, DNS_TRIES_MIN, 1 },
	{ "127.0.0.1", DNS_TIMEOUT_MS_MAX, DNS_TRIES_MAX, 1 },
	{ "127.0.0.1", DNS_TIMEOUT_MS_MIN - 1, 0, 0 },
	{ "127.0.0.1", DNS_TIMEOUT_MS_MAX + 1, 0, 0 },
	{ "127.0.0.1", -1, 0, 0 },
	{ "127.0.0.1", 0, DNS_TRIES_MAX + 1, 0 },
	{ "127.0.0.1", 0, -1, 0 },
};

static const char *
new_name(const void *row)
{
	return ((const struct new_case *)row)->servers;
}

static void
test_new(void **state)
{
	const struct new_case *c = *state;
	struct event_base *base = event_base_new();
	struct dns_opts o;
	struct dns *d;
	char err[256] = "";

	memset(&o, 0, sizeof(o));
	o.servers = c->servers;
	o.timeout_ms = c->timeout_ms;
	o.tries = c->tries;
	d = dns_new(base, &o, err, sizeof(err));
	if (c->ok)
		assert_non_null(d);
	else {
		assert_null(d);
		assert_true(err[0] != '\0');
	}
	dns_free(d);
	event_base_free(base);
}

/* server_addrs instead of text; both at once is refused */
static void
test_new_addrs(void **state)
{
	struct event_base *base = event_base_new();
	struct sockaddr_storage ss[2];
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss[0];
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss[1];
	struct dns_opts o;
	struct dns *d;
	char err[256];
	struct got g = { 0 };
	int port;

	(void)state;
	memset(ss, 0, sizeof(ss));
	port = atoi(strchr(dns.server, ':') + 1);
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = in6addr_loopback;
	memset(&o, 0, sizeof(o));
	o.server_addrs = ss;
	o.n_server_addrs = 1;
	d = dns_new(base, &o, err, sizeof(err));
	assert_non_null(d);
	assert_non_null(dns_mx(d, "dest.test", got_cb, &g));
	run_until(base, &g.called, 1, 10);
	assert_int_equal(g.status, DNS_OK);
	assert_string_equal(g.text, "hop2.test/5 hop3.test/10");
	dns_free(d);

	o.n_server_addrs = 2;
	d = dns_new(base, &o, err, sizeof(err));
	assert_non_null(d);
	dns_free(d);

	o.servers = "127.0.0.1";
	assert_null(dns_new(base, &o, err, sizeof(err)));
	o.servers = NULL;
	ss[0].ss_family = AF_UNIX;
	assert_null(dns_new(base, &o, err, sizeof(err)));
	o.n_server_addrs = DNS_SERVERS_MAX + 1;
	assert_null(dns_new(base, &o, err, sizeof(err)));
	o.server_addrs = NULL;
	o.n_server_addrs = 1;
	assert_null(dns_new(base, &o, err, sizeof(err)));
	event_base_free(base);
}

/* --- pure ordering: MX ---------------------------------------------------- */

struct mxsort_case {
	const char *name;
	const char *in; /* "host/pref ..." */
	int last; /* random picks the last candidate, else the first */
	const char *want;
};

static const struct mxsort_case mxsort_cases[] = {
	{ "one", "a/10", 0, "a/10" },
	{ "sorted", "a/1 b/2 c/3", 0, "a/1 b/2 c/3" },
	{ "reversed", "c/3 b/2 a/1", 0, "a/1 b/2 c/3" },
	{ "zero pref", "b/65535 a/0", 0, "a/0 b/65535" },
	/* Fisher-Yates from the end: j = rnd(run) swaps [run-1] and [j] */
	{ "equal first", "a/5 b/5 c/5", 0, "b/5 c/5 a/5" },
	{ "equal last", "a/5 b/5 c/5", 1, "a/5 b/5 c/5" },
	{ "equal runs", "x/9 a/5 b/5 y/9 c/7", 0, "b/5 a/5 c/7 y/9 x/9" },
};

static const char *
mxsort_name(const void *row)
{
	return ((const struct mxsort_case *)row)->name;
}

static size_t
parse_mx(const char *in, struct dns_mx *mx, size_t max)
{
	char buf[512], *tok, *save = NULL, *slash;
	size_t n = 0;

	snprintf(buf, sizeof(buf), "%s", in);
	for (tok = strtok_r(buf, " ", &save); tok != NULL && n < max;
	     tok = strtok_r(NULL, " ", &save)) {
		slash = strchr(tok, '/');
		*slash = '\0';
		snprintf(mx[n].host, sizeof(mx[n].host), "%s", tok);
		mx[n].pref = (uint16_t)atoi(slash + 1);
		n++;
	}
	return n;
}

static void
test_mxsort(void **state)
{
	const struct mxsort_case *c = *state;
	struct dns_mx mx[16];
	struct dns_result r;
	char out[512];
	size_t n;

	n = parse_mx(c->in, mx, 16);
	dns_mx_sort(mx, n, c->last ? rand_max : rand_zero, NULL);
	memset(&r, 0, sizeof(r));
	r.type = DNS_MX;
	r.mx = mx;
	r.n = n;
	format_result(&r, out, sizeof(out));
	assert_string_equal(out, c->want);
}

/* --- pure ordering: SRV (RFC 2782) ---------------------------------------- */

struct srvsort_case {
	const char *name;
	const char *in; /* "target:port/prio/weight ..." */
	int last;
	const char *want;
};

static const struct srvsort_case srvsort_cases[] = {
	{ "one", "a:1/0/0", 0, "a:1/0/0" },
	{ "priority", "b:1/20/0 a:1/10/0", 0, "a:1/10/0 b:1/20/0" },
	/* random 0: the first record whose running sum >= 0, i.e. any
	 * weight-0 record (they are placed first), else the first one */
	{ "zero weight first", "a:1/1/10 b:1/1/0", 0, "b:1/1/0 a:1/1/10" },
	/* random = sum: the last record */
	{ "pick last", "a:1/1/10 b:1/1/20 c:1/1/30", 1,
	    "c:1/1/30 b:1/1/20 a:1/1/10" },
	{ "pick first", "a:1/1/10 b:1/1/20 c:1/1/30", 0,
	    "a:1/1/10 b:1/1/20 c:1/1/30" },
	{ "groups", "d:4/2/5 a:1/1/10 c:3/2/0 b:2/1/20", 1,
	    "b:2/1/20 a:1/1/10 d:4/2/5 c:3/2/0" },
	{ "all zero", "b:2/1/0 a:1/1/0", 1, "a:1/1/0 b:2/1/0" },
};

static const char *
srvsort_name(const void *row)
{
	return ((const struct srvsort_case *)row)->name;
}

static size_t
parse_srv(const char *in, struct dns_srv *srv, size_t max)
{
	char buf[512], *tok, *save = NULL;
	unsigned port, prio, weight;
	char target[64];
	size_t n = 0;

	snprintf(buf, sizeof(buf), "%s", in);
	for (tok = strtok_r(buf, " ", &save); tok != NULL && n < max;
	     tok = strtok_r(NULL, " ", &save)) {
		if (sscanf(tok, "%63[^:]:%u/%u/%u", target, &port, &prio,
		        &weight) != 4)
			fail_msg("bad srv row %s", tok);
		snprintf(srv[n].target, sizeof(srv[n].target), "%s", target);
		srv[n].port = (uint16_t)port;
		srv[n].priority = (uint16_t)prio;
		srv[n].weight = (uint16_t)weight;
		n++;
	}
	return n;
}

static void
test_srvsort(void **state)
{
	const struct srvsort_case *c = *state;
	struct dns_srv srv[16];
	struct dns_result r;
	char out[512];
	size_t n;

	n = parse_srv(c->in, srv, 16);
	dns_srv_sort(srv, n, c->last ? rand_max : rand_zero, NULL);
	memset(&r, 0, sizeof(r));
	r.type = DNS_SRV;
	r.srv = srv;
	r.n = n;
	format_result(&r, out, sizeof(out));
	assert_string_equal(out, c->want);
}

static uint32_t
rand_real(uint32_t upper, void *arg)
{
	(void)arg;
	return arc4random_uniform(upper);
}

/*
 * RFC 2782 weights, statistically: weights 60/30/10/0 within one
 * priority; over 20000 orderings the first record's share must be near
 * 60/30/10 % of (sum + 1) picks.  The exact expectation: a record of
 * weight w is first with probability w/(S+1), except the weight-0 one,
 * first with 1/(S+1); bounds are +-3 points, many standard deviations.
 */
static void
test_srv_weights(void **state)
{
	struct dns_srv srv[4];
	int first[4] = { 0 }, i, k;
	const int rounds = 20000;

	(void)state;
	for (i = 0; i < rounds; i++) {
		parse_srv("a:1/1/60 b:1/1/30 c:1/1/10 z:1/1/0", srv, 4);
		dns_srv_sort(srv, 4, rand_real, NULL);
		k = srv[0].target[0] == 'z' ? 3 : srv[0].target[0] - 'a';
		first[k]++;
	}
	assert_in_range(first[0] * 100 / rounds, 59 - 3, 59 + 3);
	assert_in_range(first[1] * 100 / rounds, 30 - 3, 30 + 3);
	assert_in_range(first[2] * 100 / rounds, 10 - 3, 10 + 3);
	assert_in_range(first[3] * 100 / rounds, 0, 3);
}

/* --- live lookups against dnsmasq ------------------------------------- */

struct live_case {
	const char *name;
	enum dns_type type;
	const char *qname;
	enum dns_status status;
	const char *want; /* formatted records; NULL: don't compare */
	int random_last; /* inject rand_max instead of rand_zero */
	const char *error; /* a substring of the error text, or NULL */
};

static const struct live_case live_cases[] = {
	{ "mx dest.test", DNS_MX, "dest.test", DNS_OK,
	    "hop2.test/5 hop3.test/10", 0, NULL },
	{ "mx trailing dot", DNS_MX, "dest.test.", DNS_OK,
	    "hop2.test/5 hop3.test/10", 0, NULL },
	{ "mx case", DNS_MX, "DeSt.TeSt", DNS_OK, "hop2.test/5 hop3.test/10", 0,
	    NULL },
	{ "mx lower-cased", DNS_MX, "upper.test", DNS_OK, "mx.upper.test/1", 0,
	    NULL },
	{ "mx equal first", DNS_MX, "eq.test", DNS_OK,
	    "e.eq.test/5 b.eq.test/10 c.eq.test/10 a.eq.test/10 d.eq.test/20",
	    0, NULL },
	{ "mx equal last", DNS_MX, "eq.test", DNS_OK,
	    "e.eq.test/5 a.eq.test/10 b.eq.test/10 c.eq.test/10 d.eq.test/20",
	    1, NULL },
	{ "mx nodata", DNS_MX, "hop2.test", DNS_NODATA, "", 0, NULL },
	{ "mx nxdomain", DNS_MX, "nosuch.test", DNS_NXDOMAIN, "", 0, NULL },
	{ "mx null", DNS_MX, "null.test", DNS_OK, "/0", 0, NULL },
	{ "mx malformed", DNS_MX, "bad.test", DNS_TEMPFAIL, "", 0,
	    "malformed MX host names" },
	{ "mx broken", DNS_MX, "broken.test", DNS_TEMPFAIL, "", 0, NULL },
	{ "mx invalid name", DNS_MX, "bad..test", DNS_PERMFAIL, "", 0,
	    "invalid domain name" },
	{ "mx empty name", DNS_MX, "", DNS_PERMFAIL, "", 0, NULL },
	{ "addr v4", DNS_ADDR, "hop2.test", DNS_OK, "127.0.0.2", 0, NULL },
	{ "addr both", DNS_ADDR, "dual.test", DNS_OK, "127.0.0.4 ::4", 0,
	    NULL },
	{ "addr v6 only", DNS_ADDR, "v6only.test", DNS_OK, "::6", 0, NULL },
	{ "addr nodata", DNS_ADDR, "dest.test", DNS_NODATA, "", 0, NULL },
	{ "addr nxdomain", DNS_ADDR, "nosuch.test", DNS_NXDOMAIN, "", 0, NULL },
	{ "addr invalid", DNS_ADDR, "-x.test", DNS_PERMFAIL, "", 0, NULL },
	{ "srv one", DNS_SRV, "_mtqp._tcp.hop2.test", DNS_OK,
	    "hop2.test:11038/0/0", 0, NULL },
	{ "srv order first", DNS_SRV, "_w._tcp.w.test", DNS_OK,
	    "c.w.test:3/5/0 a.w.test:1/10/90 b.w.test:2/10/10 "
	    "d.w.test:4/20/7",
	    0, NULL },
	{ "srv order last", DNS_SRV, "_w._tcp.w.test", DNS_OK,
	    "c.w.test:3/5/0 b.w.test:2/10/10 a.w.test:1/10/90 "
	    "d.w.test:4/20/7",
	    1, NULL },
	{ "srv not offered", DNS_SRV, "_none._tcp.hop2.test", DNS_PERMFAIL, "",
	    0, "not offered" },
	{ "srv nxdomain", DNS_SRV, "_x._tcp.nosuch.test", DNS_NXDOMAIN, "", 0,
	    NULL },
	{ "srv nodata", DNS_SRV, "hop2.test", DNS_NODATA, "", 0, NULL },
};

static const char *
live_name(const void *row)
{
	return ((const struct live_case *)row)->name;
}

static void
test_live(void **state)
{
	const struct live_case *c = *state;
	struct event_base *base = event_base_new();
	struct dns *d;
	struct got g = { 0 };

	d = new_resolver(base, dns.server, 0, 0,
	    c->random_last ? rand_max : rand_zero, NULL);
	assert_non_null(lookup_of(c->type)(d, c->qname, got_cb, &g));
	/* never synchronously, even for a name refused up front */
	assert_int_equal(g.called, 0);
	assert_int_equal(dns_pending(d), 1);
	run_until(base, &g.called, 1, 10);
	assert_int_equal(g.called, 1);
	assert_int_equal(dns_pending(d), 0);
	if (g.status != c->status)
		fail_msg(
		    "status %d (%s), want %d", g.status, g.error, c->status);
	if (c->want != NULL)
		assert_string_equal(g.text, c->want);
	if (c->error != NULL && strstr(g.error, c->error) == NULL)
		fail_msg("error \"%s\", want \"%s\"", g.error, c->error);
	dns_free(d);
	event_base_free(base);
}

/* RFC 5321 §5.1 with the real random function: over 300 lookups each of
 * the three equal-preference hosts comes first at least once (a miss has
 * probability 3 * (2/3)^300), and the best and worst never move. */
static void
test_mx_shuffle(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d;
	struct got g = { 0 };
	int seen[3] = { 0 }, i;
	const char *p;

	(void)state;
	d = new_resolver(base, dns.server, 0, 0, NULL, NULL);
	for (i = 0; i < 300; i++) {
		assert_non_null(dns_mx(d, "eq.test", got_cb, &g));
		run_until(base, &g.called, i + 1, 10);
		assert_int_equal(g.status, DNS_OK);
		assert_true(strncmp(g.text, "e.eq.test/5 ", 12) == 0);
		assert_non_null(strstr(g.text, " d.eq.test/20"));
		p = g.text + 12;
		seen[p[0] - 'a']++;
	}
	assert_true(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
	dns_free(d);
	event_base_free(base);
}

/* Several lookups in flight on one resolver, all answered. */
static void
test_parallel(void **state)
{
	static const char *names[] = { "dest.test", "hop2.test", "nosuch.test",
		"eq.test", "null.test", "upper.test" };
	struct event_base *base = event_base_new();
	struct got g[6];
	struct dns *d;
	int called = 0, i;

	(void)state;
	memset(g, 0, sizeof(g));
	d = new_resolver(base, dns.server, 0, 0, NULL, NULL);
	for (i = 0; i < 6; i++)
		assert_non_null(dns_mx(d, names[i], got_cb, &g[i]));
	assert_int_equal(dns_pending(d), 6);
	while (called < 6) {
		run_until(base, &g[0].called, 1, 10);
		for (called = 0, i = 0; i < 6; i++)
			called += g[i].called;
		if (called < 6)
			event_base_loop(base, EVLOOP_ONCE);
	}
	assert_int_equal(g[0].status, DNS_OK);
	assert_int_equal(g[1].status, DNS_NODATA);
	assert_int_equal(g[2].status, DNS_NXDOMAIN);
	assert_int_equal(g[3].status, DNS_OK);
	assert_int_equal(g[4].status, DNS_OK);
	assert_int_equal(g[5].status, DNS_OK);
	for (i = 0; i < 6; i++)
		assert_int_equal(g[i].called, 1);
	dns_free(d);
	event_base_free(base);
}

/* --- failures ------------------------------------------------------------- */

struct fail_case {
	const char *name;
	const char **server; /* which test server */
	enum dns_type type;
	int timeout_ms;
	int tries;
};

static const char *silent_ptr = dns.silent;
static const char *refused_ptr = dns.refused;

static const struct fail_case fail_cases[] = {
	{ "silent mx", &silent_ptr, DNS_MX, 100, 1 },
	{ "silent addr", &silent_ptr, DNS_ADDR, 100, 2 },
	{ "silent srv", &silent_ptr, DNS_SRV, DNS_TIMEOUT_MS_MIN, 1 },
	{ "refused mx", &refused_ptr, DNS_MX, 100, 1 },
	{ "refused addr", &refused_ptr, DNS_ADDR, 100, 3 },
};

static const char *
fail_name(const void *row)
{
	return ((const struct fail_case *)row)->name;
}

/* A server that never answers, or a closed port: a temporary failure
 * within the bound (the guard is 20 s; c-ares gives up after
 * timeout * (2^tries - 1) <= 700 ms here). */
static void
test_fail(void **state)
{
	const struct fail_case *c = *state;
	struct event_base *base = event_base_new();
	struct dns *d;
	struct got g = { 0 };

	d = new_resolver(base, *c->server, c->timeout_ms, c->tries, NULL, NULL);
	assert_non_null(lookup_of(c->type)(d, "dest.test", got_cb, &g));
	run_until(base, &g.called, 1, 20);
	assert_int_equal(g.status, DNS_TEMPFAIL);
	assert_string_equal(g.text, "");
	assert_true(g.error[0] != '\0');
	dns_free(d);
	event_base_free(base);
}

/* The first server is silent, the second answers: c-ares moves on. */
static void
test_failover(void **state)
{
	struct event_base *base = event_base_new();
	char servers[160];
	struct dns *d;
	struct got g = { 0 };

	(void)state;
	snprintf(servers, sizeof(servers), "%s,%s", dns.silent, dns.server);
	d = new_resolver(base, servers, 100, 2, NULL, NULL);
	assert_non_null(dns_mx(d, "dest.test", got_cb, &g));
	run_until(base, &g.called, 1, 20);
	assert_int_equal(g.status, DNS_OK);
	assert_string_equal(g.text, "hop2.test/5 hop3.test/10");
	dns_free(d);
	event_base_free(base);
}

/* --- cancel, free, limits ------------------------------------------------ */

static void
test_cancel(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d;
	struct dns_query *q1, *q2, *q3;
	struct got g1 = { 0 }, g2 = { 0 }, g3 = { 0 };

	(void)state;
	d = new_resolver(base, dns.server, 0, 0, NULL, NULL);
	q1 = dns_mx(d, "dest.test", got_cb, &g1);
	q2 = dns_addr(d, "hop2.test", got_cb, &g2);
	q3 = dns_mx(d, "bad..name", got_cb, &g3); /* fails at once */
	assert_non_null(q1);
	assert_non_null(q2);
	assert_non_null(q3);
	dns_cancel(q1);
	dns_cancel(q3);
	dns_cancel(NULL);
	assert_int_equal(dns_pending(d), 1);
	run_until(base, &g2.called, 1, 10);
	/* let the cancelled answer arrive too */
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(g1.called, 0);
	assert_int_equal(g3.called, 0);
	assert_int_equal(g2.status, DNS_OK);
	dns_free(d);
	event_base_free(base);
}

/* dns_free with lookups on the wire and on the done list: no callback,
 * nothing leaked (ASan). */
static void
test_free_pending(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d;
	struct got g = { 0 };

	(void)state;
	d = new_resolver(base, dns.silent, 1000, 2, NULL, NULL);
	assert_non_null(dns_mx(d, "dest.test", got_cb, &g));
	assert_non_null(dns_addr(d, "dest.test", got_cb, &g));
	assert_non_null(dns_srv(d, "_x._tcp.dest.test", got_cb, &g));
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_non_null(dns_mx(d, "bad..test", got_cb, &g));
	dns_free(d);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(g.called, 0);
	dns_free(NULL);
	event_base_free(base);
}

/* dns_free inside a callback, with another answer delivered in the same
 * round: the rest are dropped, nothing is touched after the free. */
static void
test_free_in_callback(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d;
	struct got g1 = { 0 }, g2 = { 0 };

	(void)state;
	d = new_resolver(base, dns.server, 0, 0, NULL, NULL);
	g1.free_me = d;
	/* both fail before any packet: one delivery round */
	assert_non_null(dns_mx(d, "bad..one", got_cb, &g1));
	assert_non_null(dns_mx(d, "bad..two", got_cb, &g2));
	run_until(base, &g1.called, 1, 10);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(g1.called, 1);
	assert_int_equal(g2.called, 0);
	event_base_free(base);
}

/* A callback that starts the next lookup. */
struct chain {
	struct dns *d;
	int step;
	enum dns_status last;
};

static void
chain_cb(const struct dns_result *r, void *arg)
{
	struct chain *c = arg;

	c->last = r->status;
	if (++c->step < 3)
		assert_non_null(dns_addr(c->d, "hop2.test", chain_cb, c));
}

static void
test_chain(void **state)
{
	struct event_base *base = event_base_new();
	struct chain c = { 0 };

	(void)state;
	c.d = new_resolver(base, dns.server, 0, 0, NULL, NULL);
	assert_non_null(dns_mx(c.d, "dest.test", chain_cb, &c));
	run_until(base, &c.step, 3, 10);
	assert_int_equal(c.last, DNS_OK);
	dns_free(c.d);
	event_base_free(base);
}

/* DNS_QUERIES_MAX lookups in flight, then EAGAIN. */
static void
test_limit(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d;
	struct got g = { 0 };
	int i;

	(void)state;
	d = new_resolver(base, dns.silent, 0, 0, NULL, NULL);
	for (i = 0; i < DNS_QUERIES_MAX; i++)
		assert_non_null(dns_mx(d, "-bad", got_cb, &g));
	errno = 0;
	assert_null(dns_mx(d, "-bad", got_cb, &g));
	assert_int_equal(errno, EAGAIN);
	run_until(base, &g.called, DNS_QUERIES_MAX, 10);
	/* room again once delivered */
	assert_non_null(dns_mx(d, "-bad", got_cb, &g));
	dns_free(d);
	event_base_free(base);
}

static void
test_addr_format(void **state)
{
	struct dns_addr a;
	char small[4], buf[INET6_ADDRSTRLEN];

	(void)state;
	memset(&a, 0, sizeof(a));
	a.family = AF_INET;
	inet_pton(AF_INET, "192.0.2.1", &a.u.v4);
	assert_int_equal(dns_addr_format(&a, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "192.0.2.1");
	assert_int_equal(dns_addr_format(&a, small, sizeof(small)), -1);
	a.family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &a.u.v6);
	assert_int_equal(dns_addr_format(&a, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2001:db8::1");
	a.family = AF_UNIX;
	assert_int_equal(dns_addr_format(&a, buf, sizeof(buf)), -1);
}

int
main(void)
{
	const struct CMUnitTest once[] = {
		cmocka_unit_test(test_new_addrs),
		cmocka_unit_test(test_srv_weights),
		cmocka_unit_test(test_mx_shuffle),
		cmocka_unit_test(test_parallel),
		cmocka_unit_test(test_failover),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_free_pending),
		cmocka_unit_test(test_free_in_callback),
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_addr_format),
	};
	int failed = 0;

	signal(SIGPIPE, SIG_IGN);
	if (testdns_up(&dns, dnsmasq_records,
	        sizeof(dnsmasq_records) / sizeof(dnsmasq_records[0])) == -1) {
		fprintf(
		    stderr, "test_dns: cannot start dnsmasq on 127.0.0.1\n");
		return 1;
	}
	failed += TABLE_RUN("dns_name_valid", test_name, name_cases, name_name);
	failed += TABLE_RUN("dns_new", test_new, new_cases, new_name);
	failed +=
	    TABLE_RUN("dns_mx_sort", test_mxsort, mxsort_cases, mxsort_name);
	failed += TABLE_RUN(
	    "dns_srv_sort", test_srvsort, srvsort_cases, srvsort_name);
	failed += TABLE_RUN("dns live", test_live, live_cases, live_name);
	failed += TABLE_RUN("dns failure", test_fail, fail_cases, fail_name);
	failed += cmocka_run_group_tests_name("dns", once, NULL, NULL);
	testdns_down(&dns);
	return failed;
}
