/*
 * test_route: the routes file and the next-hop decision, against a real
 * dnsmasq that the test starts on 127.0.0.1 with a free port.  Every
 * resolver here is given its servers explicitly.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dns/dns.h"
#include "dns/route.h"
#include "table.h"
#include "testdns.h"

static struct testdns dns; /* dnsmasq, a silent and a refused port */

/* The zone every test sees. */
static const char *const dnsmasq_records[] = {
	"--host-record=hop2.test,127.0.0.2",
	"--host-record=hop3.test,127.0.0.3",
	"--host-record=relay.test,127.0.0.9",
	"--host-record=dual.test,127.0.0.4,::4",
	"--host-record=self.test,127.0.0.10",
	"--mx-host=dest.test,hop3.test,10",
	"--mx-host=dest.test,hop2.test,5",
	"--dns-rr=null.test,15,000000",
	"--mx-host=noaddr.test,ghost.test,10",
	"--mx-host=mixed.test,ghost.test,5",
	"--mx-host=mixed.test,hop3.test,10",
	"--dns-rr=nullmixed.test,15,000000",
	"--mx-host=nullmixed.test,hop2.test,10",
	"--mx-host=v6.test,dual.test,1",
	"--mx-host=loop.test,hop2.test,10",
	"--mx-host=loop.test,self.test,20",
	"--mx-host=loop.test,hop3.test,30",
	"--mx-host=many.test,m1.test,1",
	"--mx-host=many.test,m2.test,2",
	"--mx-host=many.test,m3.test,3",
	"--mx-host=many.test,m4.test,4",
	"--mx-host=many.test,m5.test,5",
	"--mx-host=many.test,m6.test,6",
	"--mx-host=many.test,m7.test,7",
	"--mx-host=many.test,m8.test,8",
	"--mx-host=many.test,m9.test,9",
	"--mx-host=many.test,m10.test,10",
	"--mx-host=many.test,m11.test,11",
	"--mx-host=many.test,m12.test,12",
	"--host-record=m1.test,127.0.2.1",
	"--host-record=m2.test,127.0.2.2",
	"--host-record=m3.test,127.0.2.3",
	"--host-record=m4.test,127.0.2.4",
	"--host-record=m5.test,127.0.2.5",
	"--host-record=m6.test,127.0.2.6",
	"--host-record=m7.test,127.0.2.7",
	"--host-record=m8.test,127.0.2.8",
	"--host-record=m9.test,127.0.2.9",
	"--host-record=m10.test,127.0.2.10",
	"--host-record=m11.test,127.0.2.11",
	"--host-record=m12.test,127.0.2.12",
};

/* --- the routes file ------------------------------------------------------ */

struct parse_case {
	const char *name;
	const char *text;
	int count; /* entries, or -1 for an error */
	const char *error; /* the exact error, for -1 */
};

#define LONG_HOST \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const struct parse_case parse_cases[] = {
	{ "empty", "", 0, NULL },
	{ "comments only", "# routes\n\n   # indented\n\t\n", 0, NULL },
	{ "one", "example.com relay.test\n", 1, NULL },
	{ "no final newline", "example.com relay.test", 1, NULL },
	{ "crlf", "example.com relay.test\r\nb.test c.test\r\n", 2, NULL },
	{ "tabs", "\texample.com\t\trelay.test\t\n", 1, NULL },
	{ "port", "example.com relay.test:2525\n", 1, NULL },
	{ "literal", "example.com [127.0.0.1]:2525\n", 1, NULL },
	{ "literal no port", "example.com [127.0.0.1]\n", 1, NULL },
	{ "literal v6", "example.com [::1]:25\n", 1, NULL },
	{ "literal IPv6 tag", "example.com [IPv6:::1]:25\n", 1, NULL },
	{ "default", "* relay.test\n", 1, NULL },
	{ "trailing comment", "a.test b.test:26 # the relay\n", 1, NULL },
	{ "trailing dot", "a.test. b.test.\n", 1, NULL },
	{ "port bounds", "a.test b.test:1\nb.test c.test:65535\n", 2, NULL },
	{ "many", "a.test x.test\nb.test x.test\nc.test x.test\n* y.test\n", 4,
	    NULL },
	{ "one field", "example.com\n", -1,
	    "routes:1: expected \"domain host[:port]\" or \"domain "
	    "[ip]:port\"" },
	{ "three fields", "\n\na.test b.test c.test\n", -1,
	    "routes:3: expected an option (tls-name=NAME) after the host" },
	{ "tls-name", "a.test [127.0.0.1]:2525 tls-name=mx.a.test\n", 1, NULL },
	{ "tls-name on a name", "a.test relay.test tls-name=mx.a.test\n", 1,
	    NULL },
	{ "tls-name and comment", "a.test [::1] tls-name=mx.a.test # x\n", 1,
	    NULL },
	{ "tls-name upper key", "a.test [127.0.0.1] TLS-Name=mx.a.test\n", 1,
	    NULL },
	{ "tls-name empty", "a.test [127.0.0.1] tls-name=\n", -1,
	    "routes:1: bad tls-name" },
	{ "tls-name bad", "a.test [127.0.0.1] tls-name=a..test\n", -1,
	    "routes:1: bad tls-name" },
	{ "tls-name literal", "a.test [127.0.0.1] tls-name=[127.0.0.1]\n", -1,
	    "routes:1: tls-name must be a host name" },
	{ "tls-name ip", "a.test [127.0.0.1] tls-name=127.0.0.1\n", -1,
	    "routes:1: tls-name must be a host name" },
	{ "tls-name ipv6", "a.test [::1] tls-name=::1\n", -1,
	    "routes:1: tls-name must be a host name" },
	{ "tls-name twice", "a.test b.test tls-name=x.test tls-name=y.test\n",
	    -1, "routes:1: too many fields" },
	{ "unknown option", "a.test b.test verify=yes\n", -1,
	    "routes:1: unknown option (tls-name=NAME is the only one)" },
	{ "option prefix", "a.test b.test tls-names=x.test\n", -1,
	    "routes:1: unknown option (tls-name=NAME is the only one)" },
	{ "option without value", "a.test b.test tls-name\n", -1,
	    "routes:1: expected an option (tls-name=NAME) after the host" },
	{ "bad domain", "a..test b.test\n", -1, "routes:1: bad domain" },
	{ "wildcard domain", "*.a.test b.test\n", -1, "routes:1: bad domain" },
	{ "literal domain", "[127.0.0.1] b.test\n", -1,
	    "routes:1: address literal as domain" },
	{ "bad host", "a.test b_?.test\n", -1, "routes:1: bad host name" },
	{ "empty host", "a.test :25\n", -1, "routes:1: bad host name" },
	{ "bare ip", "a.test 127.0.0.1:25\n", -1,
	    "routes:1: IP address without brackets" },
	{ "bare ipv6", "a.test ::1\n", -1,
	    "routes:1: IPv6 address without brackets" },
	{ "bare ipv6 long", "a.test 2001:db8::25\n", -1,
	    "routes:1: IPv6 address without brackets" },
	{ "port zero", "a.test b.test:0\n", -1,
	    "routes:1: port outside 1-65535" },
	{ "port big", "a.test b.test:65536\n", -1,
	    "routes:1: port outside 1-65535" },
	{ "port long", "a.test b.test:000025\n", -1, "routes:1: bad port" },
	{ "port empty", "a.test b.test:\n", -1, "routes:1: bad port" },
	{ "port alpha", "a.test b.test:smtp\n", -1, "routes:1: bad port" },
	{ "port sign", "a.test b.test:-25\n", -1, "routes:1: bad port" },
	{ "two colons", "a.test b.test:25:26\n", -1, "routes:1: bad port" },
	{ "literal unterminated", "a.test [127.0.0.1:25\n", -1,
	    "routes:1: unterminated address literal" },
	{ "literal bad", "a.test [127.0.0.256]\n", -1,
	    "routes:1: bad address literal" },
	{ "literal name", "a.test [relay.test]\n", -1,
	    "routes:1: bad address literal" },
	{ "literal junk", "a.test [127.0.0.1]x\n", -1,
	    "routes:1: junk after address literal" },
	{ "literal bad port", "a.test [127.0.0.1]:99999\n", -1,
	    "routes:1: port outside 1-65535" },
	{ "duplicate", "a.test b.test\nc.test d.test\nA.TEST. e.test\n", -1,
	    "routes:3: duplicate route for a.test (line 1)" },
	{ "duplicate default", "* b.test\n* c.test\n", -1,
	    "routes:2: duplicate route for * (line 1)" },
	{ "nul byte", "a.test b.test\nc.test\0 d.test\n", -1,
	    "routes:2: NUL byte" },
	{ "control char", "a.test b\x01.test\n", -1,
	    "routes:1: bad host name" },
	{ "label too long", "a.test " LONG_HOST "a.test\n", -1,
	    "routes:1: bad host name" },
	{ "label at limit", "a.test " LONG_HOST ".test\n", 1, NULL },
};

static const char *
parse_name(const void *row)
{
	return ((const struct parse_case *)row)->name;
}

static void
test_parse(void **state)
{
	const struct parse_case *c = *state;
	struct route_table *t;
	char err[512] = "";
	size_t len = strlen(c->text);

	/* the one row with a NUL: its length is known */
	if (strcmp(c->name, "nul byte") == 0)
		len = sizeof("a.test b.test\nc.test\0 d.test\n") - 1;
	t = route_table_parse("routes", c->text, len, err, sizeof(err));
	if (c->count < 0) {
		assert_null(t);
		assert_string_equal(err, c->error);
	} else {
		if (t == NULL)
			fail_msg("%s", err);
		assert_int_equal(route_table_count(t), c->count);
	}
	route_table_free(t);
}

/* A line at ROUTE_LINE_MAX is read; one byte more is an error. */
static void
test_parse_line_max(void **state)
{
	char *text = malloc(ROUTE_LINE_MAX + 3);
	struct route_table *t;
	char err[256];
	size_t n;

	(void)state;
	assert_non_null(text);
	memset(text, ' ', ROUTE_LINE_MAX + 2);
	memcpy(text, "a.test b.test", 13);
	text[ROUTE_LINE_MAX] = '\n';
	t = route_table_parse("r", text, ROUTE_LINE_MAX + 1, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(route_table_count(t), 1);
	route_table_free(t);
	text[ROUTE_LINE_MAX] = ' ';
	text[ROUTE_LINE_MAX + 1] = '\n';
	n = ROUTE_LINE_MAX + 2;
	t = route_table_parse("r", text, n, err, sizeof(err));
	assert_null(t);
	assert_string_equal(err, "r:1: line too long");
	free(text);
}

/* ROUTE_ENTRIES_MAX entries are read; one more is an error. */
static void
test_parse_entries_max(void **state)
{
	struct route_table *t;
	char *text, err[256];
	size_t len = 0, i, cap = (ROUTE_ENTRIES_MAX + 1) * 24;

	(void)state;
	text = malloc(cap);
	assert_non_null(text);
	for (i = 0; i < ROUTE_ENTRIES_MAX; i++)
		len += snprintf(text + len, cap - len, "d%zu.test r.test\n", i);
	t = route_table_parse("r", text, len, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(route_table_count(t), ROUTE_ENTRIES_MAX);
	assert_non_null(route_table_lookup(t, "d99999.test"));
	route_table_free(t);
	len += snprintf(text + len, cap - len, "extra.test r.test\n");
	t = route_table_parse("r", text, len, err, sizeof(err));
	assert_null(t);
	assert_string_equal(err, "r:100001: too many routes");
	free(text);
}

/* --- lookups in a table ---------------------------------------------------- */

static const char lookup_text[] = "# a routes file\n"
                                  "example.com   relay.test:2525\n"
                                  "sub.example.com [192.0.2.7]:26\n"
                                  "v6.example.com [IPv6:2001:db8::1]\n"
                                  "*             smarthost.test\n";

struct lookup_case {
	const char *domain;
	const char *host; /* NULL: no entry */
	int port;
	int literal;
};

static const struct lookup_case lookup_cases[] = {
	{ "example.com", "relay.test", 2525, 0 },
	{ "EXAMPLE.COM", "relay.test", 2525, 0 },
	{ "example.com.", "relay.test", 2525, 0 },
	{ "sub.example.com", "[192.0.2.7]", 26, 1 },
	{ "v6.example.com", "[IPv6:2001:db8::1]", 0, 1 },
	{ "other.example.com", "smarthost.test", 0, 0 }, /* no subdomains */
	{ "example.org", "smarthost.test", 0, 0 },
	{ "", "smarthost.test", 0, 0 },
	{ "bad..name", "smarthost.test", 0, 0 },
};

static const char *
lookup_name(const void *row)
{
	return ((const struct lookup_case *)row)->domain;
}

static void
test_lookup(void **state)
{
	const struct lookup_case *c = *state;
	const struct route_entry *e;
	struct route_table *t;
	char err[256];

	t = route_table_parse(
	    "r", lookup_text, strlen(lookup_text), err, sizeof(err));
	assert_non_null(t);
	e = route_table_lookup(t, c->domain);
	assert_non_null(e);
	assert_string_equal(e->host, c->host);
	assert_int_equal(e->port, c->port);
	assert_int_equal(e->literal, c->literal);
	route_table_free(t);
}

static void
test_lookup_nodefault(void **state)
{
	struct route_table *t;
	char err[256];
	const char text[] = "a.test b.test\n";

	(void)state;
	t = route_table_parse("r", text, strlen(text), err, sizeof(err));
	assert_non_null(t);
	assert_non_null(route_table_lookup(t, "a.test"));
	assert_null(route_table_lookup(t, "b.test"));
	assert_null(route_table_lookup(t, NULL));
	assert_null(route_table_lookup(NULL, "a.test"));
	route_table_free(t);
	route_table_free(NULL);
	assert_int_equal(route_table_count(NULL), 0);
}

/* --- route_table_load ------------------------------------------------------ */

static char tmpdir[64];

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
test_load(void **state)
{
	struct route_table *t;
	char path[128], want[256], err[256];
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/routes", tmpdir);
	write_file(path, "a.test b.test\n* [127.0.0.1]:2525\n");
	t = route_table_load(path, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(route_table_count(t), 2);
	route_table_free(t);

	/* errors name the file and line */
	write_file(path, "a.test b.test\nbad\n");
	assert_null(route_table_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want),
	    "%s:2: expected \"domain host[:port]\" "
	    "or \"domain [ip]:port\"",
	    path);
	assert_string_equal(err, want);

	/* missing */
	snprintf(path, sizeof(path), "%s/nonexistent", tmpdir);
	assert_null(route_table_load(path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(err, want);

	/* a directory */
	assert_null(route_table_load(tmpdir, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: not a regular file", tmpdir);
	assert_string_equal(err, want);

	/* too large (sparse) */
	snprintf(path, sizeof(path), "%s/big", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, ROUTE_FILE_MAX + 1), 0);
	close(fd);
	assert_null(route_table_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, "larger than"));
	unlink(path);

	/* exactly at the limit: read (blank lines) */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 0), 0);
	{
		static char blank[65536];
		size_t done = 0;

		memset(blank, '\n', sizeof(blank));
		while (done < ROUTE_FILE_MAX) {
			assert_true(write(fd, blank, sizeof(blank)) ==
			    (ssize_t)sizeof(blank));
			done += sizeof(blank);
		}
	}
	close(fd);
	t = route_table_load(path, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(route_table_count(t), 0);
	route_table_free(t);
	unlink(path);

	/* the golden example file shipped with the tests */
	snprintf(path, sizeof(path), "%s/route/routes.example",
	    getenv("GOLDEN_DIR") != NULL ? getenv("GOLDEN_DIR")
	                                 : "tests/golden");
	t = route_table_load(path, err, sizeof(err));
	if (t == NULL)
		fail_msg("%s", err);
	assert_int_equal(route_table_count(t), 5);
	assert_string_equal(
	    route_table_lookup(t, "secure.example.com")->tls_name,
	    "mx.secure.example.com");
	route_table_free(t);
}

/* --- literals --------------------------------------------------------------- */

struct literal_case {
	const char *in;
	int family; /* 0: rejected */
	const char *text; /* route_literal_format(): RFC 5321 §4.1.3 */
};

static const struct literal_case literal_cases[] = {
	{ "[127.0.0.1]", AF_INET, "[127.0.0.1]" },
	{ "[::1]", AF_INET6, "[IPv6:::1]" },
	{ "[IPv6:::1]", AF_INET6, "[IPv6:::1]" },
	{ "[ipv6:2001:db8::1]", AF_INET6, "[IPv6:2001:db8::1]" },
	{ "[2001:DB8:0:0:0:0:0:1]", AF_INET6, "[IPv6:2001:db8::1]" },
	{ "[IPv6:::ffff:192.0.2.1]", AF_INET6, "[IPv6:::ffff:192.0.2.1]" },
	{ "[IPv6:127.0.0.1]", 0, NULL },
	{ "[]", 0, NULL },
	{ "[", 0, NULL },
	{ "127.0.0.1", 0, NULL },
	{ "[127.0.0.1", 0, NULL },
	{ "[1.2.3]", 0, NULL },
	{ "[host.test]", 0, NULL },
	{ "[ 127.0.0.1]", 0, NULL },
	{ "[1:2:3:4:5:6:7:8:9]", 0, NULL },
};

static const char *
literal_name(const void *row)
{
	return ((const struct literal_case *)row)->in;
}

static void
test_literal(void **state)
{
	const struct literal_case *c = *state;
	struct dns_addr a;
	int rc;

	char text[ROUTE_HOST_MAX + 1];

	rc = route_parse_literal(c->in, strlen(c->in), &a);
	if (c->family == 0)
		assert_int_equal(rc, -1);
	else {
		assert_int_equal(rc, 0);
		assert_int_equal(a.family, c->family);
		route_literal_format(&a, text, sizeof(text));
		assert_string_equal(text, c->text);
	}
}

/* --- decisions against dnsmasq --------------------------------------------- */

struct got {
	int called;
	enum route_status status;
	enum route_source source;
	int reply;
	char dsn[16];
	char error[512];
	char hops[2048];
	struct route *free_me;
};

static void
format_hops(const struct route_result *r, char *out, size_t outsize)
{
	char ip[INET6_ADDRSTRLEN];
	size_t i, j, len = 0;

	out[0] = '\0';
	for (i = 0; i < r->nhops && len < outsize; i++) {
		len += snprintf(out + len, outsize - len,
		    "%s%s:%u=", i > 0 ? " " : "", r->hops[i].host,
		    r->hops[i].port);
		for (j = 0; j < r->hops[i].naddr && len < outsize; j++) {
			dns_addr_format(&r->hops[i].addr[j], ip, sizeof(ip));
			len += snprintf(out + len, outsize - len, "%s%s",
			    j > 0 ? "," : "", ip);
		}
	}
}

static void
got_cb(const struct route_result *r, void *arg)
{
	struct got *g = arg;

	g->called++;
	g->status = r->status;
	g->source = r->source;
	g->reply = r->reply;
	snprintf(g->dsn, sizeof(g->dsn), "%s", r->dsn != NULL ? r->dsn : "");
	snprintf(g->error, sizeof(g->error), "%s", r->error);
	format_hops(r, g->hops, sizeof(g->hops));
	if (r->status == ROUTE_OK) {
		assert_true(r->nhops > 0);
		assert_null(r->dsn);
	} else {
		assert_int_equal(r->nhops, 0);
		assert_non_null(r->dsn);
		assert_true(r->error[0] != '\0');
	}
	if (g->free_me != NULL) {
		route_free(g->free_me);
		g->free_me = NULL;
	}
}

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	int *fired = arg;

	(void)fd;
	(void)what;
	*fired = 1;
}

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

static uint32_t
rand_zero(uint32_t upper, void *arg)
{
	(void)upper;
	(void)arg;
	return 0;
}

static struct dns *
new_resolver(struct event_base *base, const char *servers)
{
	struct dns_opts o;
	struct dns *d;
	char err[256];

	memset(&o, 0, sizeof(o));
	o.servers = servers;
	o.timeout_ms = 100;
	o.tries = 1;
	o.random = rand_zero;
	d = dns_new(base, &o, err, sizeof(err));
	if (d == NULL)
		fail_msg("dns_new: %s", err);
	return d;
}

struct decide_case {
	const char *name;
	const char *routes; /* NULL: no routes file */
	const char *myhostname;
	int port;
	int silent_dns; /* a resolver that never gets an answer */
	const char *domain;
	enum route_status status;
	enum route_source source;
	const char *dsn; /* "" when OK */
	int reply;
	const char *want; /* hops, or a substring of the error */
};

static const struct decide_case decide_cases[] = {
	/* MX, RFC 5321 §5.1 */
	{ "mx", NULL, NULL, 0, 0, "dest.test", ROUTE_OK, ROUTE_SRC_MX, "", 0,
	    "hop2.test:25=127.0.0.2 hop3.test:25=127.0.0.3" },
	{ "mx case and dot", NULL, NULL, 0, 0, "DEST.test.", ROUTE_OK,
	    ROUTE_SRC_MX, "", 0,
	    "hop2.test:25=127.0.0.2 hop3.test:25=127.0.0.3" },
	{ "mx port option", NULL, NULL, 2525, 0, "dest.test", ROUTE_OK,
	    ROUTE_SRC_MX, "", 0,
	    "hop2.test:2525=127.0.0.2 hop3.test:2525=127.0.0.3" },
	{ "mx v4 then v6", NULL, NULL, 0, 0, "v6.test", ROUTE_OK, ROUTE_SRC_MX,
	    "", 0, "dual.test:25=127.0.0.4,::4" },
	{ "mx host without address skipped", NULL, NULL, 0, 0, "mixed.test",
	    ROUTE_OK, ROUTE_SRC_MX, "", 0, "hop3.test:25=127.0.0.3" },
	{ "mx capped", NULL, NULL, 0, 0, "many.test", ROUTE_OK, ROUTE_SRC_MX,
	    "", 0,
	    "m1.test:25=127.0.2.1 m2.test:25=127.0.2.2 m3.test:25=127.0.2.3 "
	    "m4.test:25=127.0.2.4 m5.test:25=127.0.2.5 m6.test:25=127.0.2.6 "
	    "m7.test:25=127.0.2.7 m8.test:25=127.0.2.8 m9.test:25=127.0.2.9 "
	    "m10.test:25=127.0.2.10" },
	{ "mx no host has an address", NULL, NULL, 0, 0, "noaddr.test",
	    ROUTE_PERMFAIL, ROUTE_SRC_MX, "5.4.4", 550,
	    "no MX host of noaddr.test has an address" },
	/* implicit MX */
	{ "implicit mx", NULL, NULL, 0, 0, "hop2.test", ROUTE_OK,
	    ROUTE_SRC_IMPLICIT, "", 0, "hop2.test:25=127.0.0.2" },
	{ "implicit mx dual", NULL, NULL, 0, 0, "dual.test", ROUTE_OK,
	    ROUTE_SRC_IMPLICIT, "", 0, "dual.test:25=127.0.0.4,::4" },
	/* failures */
	{ "nxdomain", NULL, NULL, 0, 0, "nosuch.test", ROUTE_PERMFAIL,
	    ROUTE_SRC_MX, "5.1.2", 550, "domain nosuch.test does not exist" },
	{ "null mx", NULL, NULL, 0, 0, "null.test", ROUTE_PERMFAIL,
	    ROUTE_SRC_MX, "5.1.10", 556, "does not accept mail (null MX)" },
	{ "null mx beside others", NULL, NULL, 0, 0, "nullmixed.test", ROUTE_OK,
	    ROUTE_SRC_MX, "", 0, "hop2.test:25=127.0.0.2" },
	{ "dns timeout", NULL, NULL, 0, 1, "dest.test", ROUTE_TEMPFAIL,
	    ROUTE_SRC_MX, "4.4.3", 451, "MX lookup of dest.test failed" },
	{ "bad domain", NULL, NULL, 0, 0, "bad..test", ROUTE_PERMFAIL,
	    ROUTE_SRC_TABLE, "5.1.2", 550, "bad domain name" },
	{ "empty domain", NULL, NULL, 0, 0, "", ROUTE_PERMFAIL, ROUTE_SRC_TABLE,
	    "5.1.2", 550, "bad domain name" },
	{ "bad literal", NULL, NULL, 0, 0, "[1.2.3]", ROUTE_PERMFAIL,
	    ROUTE_SRC_TABLE, "5.1.2", 550, "bad address literal" },
	/* our own MX (RFC 5321 §5.1) */
	{ "self best mx", NULL, "hop2.test", 0, 0, "dest.test", ROUTE_PERMFAIL,
	    ROUTE_SRC_MX, "5.4.6", 554, "loops back" },
	{ "self backup mx", NULL, "self.test", 0, 0, "loop.test", ROUTE_OK,
	    ROUTE_SRC_MX, "", 0, "hop2.test:25=127.0.0.2" },
	{ "self not an mx", NULL, "other.test", 0, 0, "loop.test", ROUTE_OK,
	    ROUTE_SRC_MX, "", 0,
	    "hop2.test:25=127.0.0.2 self.test:25=127.0.0.10 "
	    "hop3.test:25=127.0.0.3" },
	/* address literals */
	{ "literal", NULL, NULL, 0, 0, "[127.0.0.5]", ROUTE_OK,
	    ROUTE_SRC_LITERAL, "", 0, "[127.0.0.5]:25=127.0.0.5" },
	{ "literal v6", NULL, NULL, 2526, 0, "[IPv6:::1]", ROUTE_OK,
	    ROUTE_SRC_LITERAL, "", 0, "[IPv6:::1]:2526=::1" },
	{ "literal v6 untagged", NULL, NULL, 2526, 0, "[::1]", ROUTE_OK,
	    ROUTE_SRC_LITERAL, "", 0, "[IPv6:::1]:2526=::1" },
	{ "route literal v6", "* [::1]:2527\n", NULL, 0, 1, "x.test", ROUTE_OK,
	    ROUTE_SRC_TABLE, "", 0, "[IPv6:::1]:2527=::1" },
	/* the routes file first: exact, then "*" */
	{ "route exact", "dest.test relay.test:2525\n* [127.0.0.7]:26\n", NULL,
	    0, 0, "dest.test", ROUTE_OK, ROUTE_SRC_TABLE, "", 0,
	    "relay.test:2525=127.0.0.9" },
	{ "route default", "dest.test relay.test:2525\n* [127.0.0.7]:26\n",
	    NULL, 0, 0, "other.test", ROUTE_OK, ROUTE_SRC_TABLE, "", 0,
	    "[127.0.0.7]:26=127.0.0.7" },
	{ "route default for literal", "* relay.test\n", NULL, 0, 0,
	    "[127.0.0.5]", ROUTE_OK, ROUTE_SRC_TABLE, "", 0,
	    "relay.test:25=127.0.0.9" },
	{ "route without default", "other.test relay.test\n", NULL, 0, 0,
	    "dest.test", ROUTE_OK, ROUTE_SRC_MX, "", 0,
	    "hop2.test:25=127.0.0.2 hop3.test:25=127.0.0.3" },
	{ "route beats null mx", "null.test relay.test\n", NULL, 0, 0,
	    "null.test", ROUTE_OK, ROUTE_SRC_TABLE, "", 0,
	    "relay.test:25=127.0.0.9" },
	{ "route port default", "dest.test hop3.test\n", NULL, 2600, 0,
	    "dest.test", ROUTE_OK, ROUTE_SRC_TABLE, "", 0,
	    "hop3.test:25=127.0.0.3" },
	{ "route host is not an mx domain", "x.test dest.test\n", NULL, 0, 0,
	    "x.test", ROUTE_TEMPFAIL, ROUTE_SRC_TABLE, "4.4.4", 451,
	    "routed host dest.test has no address" },
	{ "route host missing", "x.test ghost.test\n", NULL, 0, 0, "x.test",
	    ROUTE_TEMPFAIL, ROUTE_SRC_TABLE, "4.4.4", 451,
	    "routed host ghost.test has no address" },
	{ "route host dns timeout", "x.test relay.test\n", NULL, 0, 1, "x.test",
	    ROUTE_TEMPFAIL, ROUTE_SRC_TABLE, "4.4.3", 451,
	    "address lookup of relay.test failed" },
	{ "route literal no dns", "* [127.0.0.7]\n", NULL, 0, 1, "x.test",
	    ROUTE_OK, ROUTE_SRC_TABLE, "", 0, "[127.0.0.7]:25=127.0.0.7" },
};

static const char *
decide_name(const void *row)
{
	return ((const struct decide_case *)row)->name;
}

static void
test_decide(void **state)
{
	const struct decide_case *c = *state;
	struct event_base *base = event_base_new();
	struct route_table *t = NULL;
	struct route_opts o;
	struct route *r;
	struct dns *d;
	struct got g = { 0 };
	char err[256];

	d = new_resolver(base, c->silent_dns ? dns.silent : dns.server);
	memset(&o, 0, sizeof(o));
	o.myhostname = c->myhostname;
	o.port = (uint16_t)c->port;
	r = route_new(base, d, &o);
	assert_non_null(r);
	if (c->routes != NULL) {
		t = route_table_parse(
		    "r", c->routes, strlen(c->routes), err, sizeof(err));
		if (t == NULL)
			fail_msg("%s", err);
		route_set_table(r, t);
	}
	assert_non_null(route_lookup(r, c->domain, got_cb, &g));
	assert_int_equal(g.called, 0); /* never synchronously */
	run_until(base, &g.called, 1, 20);
	assert_int_equal(g.called, 1);
	if (g.status != c->status)
		fail_msg("status %d (%s %s), want %d", g.status, g.dsn, g.error,
		    c->status);
	assert_int_equal(g.source, c->source);
	assert_string_equal(g.dsn, c->dsn);
	assert_int_equal(g.reply, c->reply);
	if (c->status == ROUTE_OK)
		assert_string_equal(g.hops, c->want);
	else if (strstr(g.error, c->want) == NULL)
		fail_msg("error \"%s\", want \"%s\"", g.error, c->want);
	route_free(r);
	dns_free(d);
	event_base_free(base);
}

/* --- tls-name= ------------------------------------------------------------ */

struct tlsname_case {
	const char *name;
	const char *text; /* one route for a.test */
	const char *tls_name; /* route_entry.tls_name */
	const char *decided; /* route_hop.tls_name of the decision */
};

static const struct tlsname_case tlsname_cases[] = {
	{ "literal", "a.test [127.0.0.1]:2525 tls-name=MX.Example.Test.\n",
	    "mx.example.test", "mx.example.test" },
	{ "name", "a.test relay.test tls-name=cert.example.test\n",
	    "cert.example.test", "cert.example.test" },
	{ "none", "a.test [127.0.0.1]:2525\n", "", "" },
	{ "default route", "* [127.0.0.7]:26 tls-name=smart.test\n",
	    "smart.test", "smart.test" },
};

static const char *
tlsname_name(const void *row)
{
	return ((const struct tlsname_case *)row)->name;
}

struct tlsname_got {
	int called;
	char tls_name[DNS_NAME_MAX + 2];
};

static void
tlsname_cb(const struct route_result *res, void *arg)
{
	struct tlsname_got *g = arg;

	g->called++;
	if (res->status == ROUTE_OK && res->nhops == 1)
		snprintf(g->tls_name, sizeof(g->tls_name), "%s",
		    res->hops[0].tls_name);
	else
		snprintf(g->tls_name, sizeof(g->tls_name), "?");
}

static void
test_tlsname(void **state)
{
	const struct tlsname_case *c = *state;
	struct event_base *base = event_base_new();
	struct dns *d = new_resolver(base, dns.server);
	struct route *r = route_new(base, d, NULL);
	const struct route_entry *e;
	struct route_table *t;
	struct tlsname_got g = { 0, "" };
	char err[256];

	t = route_table_parse("r", c->text, strlen(c->text), err, sizeof(err));
	if (t == NULL)
		fail_msg("%s", err);
	e = route_table_lookup(t, "a.test");
	assert_non_null(e);
	assert_string_equal(e->tls_name, c->tls_name);
	route_set_table(r, t);
	assert_non_null(route_lookup(r, "a.test", tlsname_cb, &g));
	run_until(base, &g.called, 1, 20);
	assert_string_equal(g.tls_name, c->decided);
	route_free(r);
	dns_free(d);
	event_base_free(base);
}

/* --- cancel, free, reload ------------------------------------------------ */

static void
test_cancel(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d = new_resolver(base, dns.server);
	struct route *r = route_new(base, d, NULL);
	struct route_query *q1, *q2, *q3;
	struct got g1 = { 0 }, g2 = { 0 }, g3 = { 0 };

	(void)state;
	q1 = route_lookup(r, "dest.test", got_cb, &g1);
	q2 = route_lookup(r, "[127.0.0.1]", got_cb, &g2);
	q3 = route_lookup(r, "hop2.test", got_cb, &g3);
	assert_non_null(q1);
	assert_non_null(q2);
	assert_non_null(q3);
	route_cancel(q1);
	route_cancel(q2);
	route_cancel(NULL);
	run_until(base, &g3.called, 1, 10);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(g1.called, 0);
	assert_int_equal(g2.called, 0);
	assert_int_equal(g3.status, ROUTE_OK);
	assert_int_equal(dns_pending(d), 0);
	route_free(r);
	dns_free(d);
	event_base_free(base);
}

/* route_free with decisions pending at every stage: no callback, no
 * leak, and dns has nothing left pending for it. */
static void
test_free_pending(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d = new_resolver(base, dns.server);
	struct route *r = route_new(base, d, NULL);
	struct got g = { 0 }, g2 = { 0 };
	int i;

	(void)state;
	assert_non_null(route_lookup(r, "dest.test", got_cb, &g));
	assert_non_null(route_lookup(r, "[127.0.0.1]", got_cb, &g));
	assert_non_null(route_lookup(r, "bad..x", got_cb, &g));
	/* let the MX answer arrive so that address lookups are in flight */
	assert_non_null(route_lookup(r, "hop2.test", got_cb, &g2));
	for (i = 0; i < 100 && dns_pending(d) > 0 && g2.called == 0; i++)
		event_base_loop(base, EVLOOP_ONCE);
	route_free(r);
	assert_int_equal(dns_pending(d), 0);
	event_base_loop(base, EVLOOP_NONBLOCK);
	route_free(NULL);
	dns_free(d);
	event_base_free(base);
}

/* route_free from inside a callback while another decision is pending. */
static void
test_free_in_callback(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d = new_resolver(base, dns.server);
	struct route *r = route_new(base, d, NULL);
	struct got g1 = { 0 }, g2 = { 0 };

	(void)state;
	g1.free_me = r;
	assert_non_null(route_lookup(r, "[127.0.0.1]", got_cb, &g1));
	assert_non_null(route_lookup(r, "dest.test", got_cb, &g2));
	run_until(base, &g1.called, 1, 10);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(g2.called, 0);
	assert_int_equal(dns_pending(d), 0);
	dns_free(d);
	event_base_free(base);
}

/* A reload (route_set_table) while a decision is in flight: the decision
 * keeps the entry it matched; the next one sees the new table. */
static void
test_reload(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d = new_resolver(base, dns.server);
	struct route *r = route_new(base, d, NULL);
	struct got g1 = { 0 }, g2 = { 0 };
	char err[256];
	const char a[] = "dest.test relay.test\n",
	           b[] = "dest.test hop3.test\n";

	(void)state;
	route_set_table(
	    r, route_table_parse("a", a, strlen(a), err, sizeof(err)));
	assert_non_null(route_lookup(r, "dest.test", got_cb, &g1));
	route_set_table(
	    r, route_table_parse("b", b, strlen(b), err, sizeof(err)));
	run_until(base, &g1.called, 1, 10);
	assert_string_equal(g1.hops, "relay.test:25=127.0.0.9");
	assert_non_null(route_lookup(r, "dest.test", got_cb, &g2));
	run_until(base, &g2.called, 1, 10);
	assert_string_equal(g2.hops, "hop3.test:25=127.0.0.3");
	route_set_table(r, NULL);
	route_free(r);
	dns_free(d);
	event_base_free(base);
}

/* dns_free inside a route callback (daemon shutdown from a callback). */
struct dnsfree {
	struct dns *d;
	struct route *r;
	int called;
};

static void
dnsfree_cb(const struct route_result *res, void *arg)
{
	struct dnsfree *f = arg;

	(void)res;
	f->called++;
	route_free(f->r);
	dns_free(f->d);
}

static void
test_dns_free_in_callback(void **state)
{
	struct event_base *base = event_base_new();
	struct dnsfree f = { 0 };
	struct got g = { 0 };

	(void)state;
	f.d = new_resolver(base, dns.server);
	f.r = route_new(base, f.d, NULL);
	assert_non_null(route_lookup(f.r, "hop2.test", dnsfree_cb, &f));
	assert_non_null(route_lookup(f.r, "dest.test", got_cb, &g));
	run_until(base, &f.called, 1, 10);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(f.called, 1);
	assert_int_equal(g.called, 0);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest once[] = {
		cmocka_unit_test(test_parse_line_max),
		cmocka_unit_test(test_parse_entries_max),
		cmocka_unit_test(test_lookup_nodefault),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_free_pending),
		cmocka_unit_test(test_free_in_callback),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_dns_free_in_callback),
	};
	int failed = 0;

	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_route.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if (testdns_up(&dns, dnsmasq_records,
	        sizeof(dnsmasq_records) / sizeof(dnsmasq_records[0])) == -1) {
		fprintf(
		    stderr, "test_route: cannot start dnsmasq on 127.0.0.1\n");
		return 1;
	}
	failed +=
	    TABLE_RUN("route_table_parse", test_parse, parse_cases, parse_name);
	failed += TABLE_RUN(
	    "route_table_lookup", test_lookup, lookup_cases, lookup_name);
	failed += TABLE_RUN(
	    "route_parse_literal", test_literal, literal_cases, literal_name);
	failed += TABLE_RUN(
	    "route tls-name", test_tlsname, tlsname_cases, tlsname_name);
	failed +=
	    TABLE_RUN("route decision", test_decide, decide_cases, decide_name);
	failed += cmocka_run_group_tests_name("route", once, NULL, NULL);
	testdns_down(&dns);
	{
		char path[128];

		snprintf(path, sizeof(path), "%s/routes", tmpdir);
		unlink(path);
		rmdir(tmpdir);
	}
	return failed;
}
