/*
 * conf: msgtrkd's configuration file.  See conf.h and PRODUCT.md.
 *
 * The whole file is read into a bounded buffer, then taken line by line.
 * Each key is an entry of conf_keys[] naming its setter; a setter parses
 * the value and stores it, or explains in "why" what is wrong, and
 * conf_load() prefixes that with "file:line: key: ".  Rules that involve
 * several keys are checked once the whole file has been read.  Nothing
 * here opens the files that keys name: their users do.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msgtrk/buf.h"
#include "msgtrk/str.h"
#include "common/conf.h"
#include "common/file.h"

#define CONF_DEFAULT_DATA_DIR "/var/lib/msgtrk"
#define CONF_DEFAULT_USER "msgtrk"
#define CONF_MAILBOX_SUBDIR "/mail"
#define CONF_CONTROL_SUBDIR "/control"

/* Longest numeric address text: "[" INET6_ADDRSTRLEN "]:65535". */
#define CONF_ADDR_TEXT_MAX (INET6_ADDRSTRLEN + 8)
/* How much of a bad value an error message quotes. */
#define CONF_QUOTE_MAX 60

/* A key: its setter parses the value and stores it in c, or writes why
 * it is wrong and returns -1. */
struct conf_key {
	const char *name;
	int (*set)(struct conf *c, const struct conf_key *k, const char *v,
	    char *why, size_t whysize);
	size_t off; /* offsetof() the field in struct conf */
	size_t count_off; /* lists: offsetof() the element count */
	size_t max; /* lists: most elements */
	time_t min; /* durations: smallest value */
	const char *min_why; /* durations: why min */
	int empty_ok; /* an empty value is allowed (an empty list) */
	int none_ok; /* "none" means an empty list */
};

static int conf_why(char *why, size_t whysize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes a message into why (if any); returns -1 for "return conf_why()". */
static int
conf_why(char *why, size_t whysize, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whysize > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whysize, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* A printable, capped copy of a value for an error message. */
static const char *
conf_quote(char *dst, size_t dstsize, const char *v)
{
	size_t n = strlen(v);
	size_t o;

	str_printable(dst, dstsize, v, n < CONF_QUOTE_MAX ? n : CONF_QUOTE_MAX);
	if (n > CONF_QUOTE_MAX) {
		o = strlen(dst);
		if (o + 4 <= dstsize)
			memcpy(dst + o, "...", 4);
	}
	return dst;
}

static int
conf_isdigit(int c)
{
	return c >= '0' && c <= '9';
}

static int
conf_isalnum(int c)
{
	return conf_isdigit(c) || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z');
}

/* Parses 1 or more ASCII digits (and nothing else) as a number no larger
 * than max.  Returns 0, or -1 for no digits, another character, or a value
 * above max (no wrap-around: checked before each multiplication). */
static int
conf_number(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned d;

		if (!conf_isdigit((unsigned char)s[i]))
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Checks a domain name: RFC 1035 §2.3.1 letters, digits and hyphens,
 * labels of 1-63 octets neither starting nor ending with '-', at most
 * CONF_HOSTNAME_MAX in all, no trailing dot.  RFC 1123 §2.1 allows a
 * leading digit, but a top-level label of digits only would make the name
 * look like an address, so that is refused. */
static int
conf_check_domain(const char *s, char *why, size_t whysize)
{
	size_t len = strlen(s), label = 0, i;
	int digits = 1;

	if (len == 0)
		return conf_why(why, whysize, "empty domain name");
	if (len > CONF_HOSTNAME_MAX)
		return conf_why(why, whysize,
		    "domain name longer than %d characters", CONF_HOSTNAME_MAX);
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '.') {
			if (label == 0)
				return conf_why(
				    why, whysize, "empty label in domain name");
			if (s[i - 1] == '-')
				return conf_why(why, whysize,
				    "label ends with '-' in domain name");
			label = 0;
			digits = 1;
			continue;
		}
		if (ch == '-') {
			if (label == 0)
				return conf_why(why, whysize,
				    "label starts with '-' in domain name");
		} else if (!conf_isalnum(ch)) {
			char q[8];

			return conf_why(why, whysize,
			    "character '%s' not allowed in domain name",
			    str_printable(q, sizeof(q), s + i, 1));
		}
		if (!conf_isdigit(ch))
			digits = 0;
		if (++label > 63)
			return conf_why(why, whysize,
			    "label longer than 63 characters in domain name");
	}
	if (label == 0)
		return conf_why(why, whysize, "domain name ends with '.'");
	if (s[len - 1] == '-')
		return conf_why(
		    why, whysize, "label ends with '-' in domain name");
	if (digits)
		return conf_why(
		    why, whysize, "last label of domain name is all digits");
	return 0;
}

static int
conf_parse_duration_why(const char *s, time_t *out, char *why, size_t whysize)
{
	size_t n = strlen(s);
	uint64_t v, mult = 1;

	if (n == 0)
		return conf_why(why, whysize, "empty duration");
	switch (s[n - 1]) {
	case 's':
		n--;
		break;
	case 'm':
		mult = 60;
		n--;
		break;
	case 'h':
		mult = 3600;
		n--;
		break;
	case 'd':
		mult = 86400;
		n--;
		break;
	default:
		if (!conf_isdigit((unsigned char)s[n - 1]))
			return conf_why(why, whysize,
			    "bad duration '%.20s' (seconds, or a number with "
			    "s, m, h or d)",
			    s);
	}
	if (conf_number(s, n, CONF_DURATION_MAX / mult, &v) == -1) {
		/* conf_number() refuses both syntax and range: tell apart */
		size_t i;

		for (i = 0; i < n && conf_isdigit((unsigned char)s[i]); i++)
			;
		if (n == 0 || i < n)
			return conf_why(why, whysize,
			    "bad duration '%.20s' (seconds, or a number with "
			    "s, m, h or d)",
			    s);
		return conf_why(why, whysize,
		    "duration '%.20s' too long (at most %d seconds)", s,
		    CONF_DURATION_MAX);
	}
	*out = (time_t)(v * mult);
	return 0;
}

int
conf_parse_duration(const char *s, time_t *out)
{
	if (s == NULL || out == NULL)
		return -1;
	return conf_parse_duration_why(s, out, NULL, 0);
}

static int
conf_parse_size_why(const char *s, uint64_t *out, char *why, size_t whysize)
{
	size_t n = strlen(s);
	uint64_t v;
	int shift = 0;

	if (n == 0)
		return conf_why(why, whysize, "empty size");
	switch (s[n - 1]) {
	case 'k':
	case 'K':
		shift = 10;
		n--;
		break;
	case 'm':
	case 'M':
		shift = 20;
		n--;
		break;
	case 'g':
	case 'G':
		shift = 30;
		n--;
		break;
	default:
		break;
	}
	if (conf_number(s, n, UINT64_MAX >> shift, &v) == -1) {
		/* conf_number() refuses both syntax and range: tell apart */
		size_t i;

		for (i = 0; i < n && conf_isdigit((unsigned char)s[i]); i++)
			;
		if (n == 0 || i < n)
			return conf_why(why, whysize,
			    "bad size '%.20s' (bytes, or a number with K, M "
			    "or G)",
			    s);
		return conf_why(why, whysize,
		    "size '%.30s' too large (overflows 64 bits)", s);
	}
	*out = v << shift;
	return 0;
}

int
conf_parse_size(const char *s, uint64_t *out)
{
	if (s == NULL || out == NULL)
		return -1;
	return conf_parse_size_why(s, out, NULL, 0);
}

/* Parses a port: 1-65535, digits only. */
static int
conf_port(const char *s, in_port_t *out)
{
	uint64_t v;

	if (conf_number(s, strlen(s), 65535, &v) == -1 || v == 0)
		return -1;
	*out = (in_port_t)v;
	return 0;
}

static int
conf_parse_addr_why(
    const char *s, struct conf_addr *out, char *why, size_t whysize)
{
	char host[CONF_ADDR_TEXT_MAX + 1];
	const char *port;
	size_t n = strlen(s), hl;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	in_port_t p;

	if (n > CONF_ADDR_TEXT_MAX)
		return conf_why(why, whysize, "address too long");
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL)
			return conf_why(
			    why, whysize, "missing ']' in address '%s'", s);
		hl = (size_t)(close - s - 1);
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (close[1] != ':')
			return conf_why(why, whysize,
			    "missing ':port' after ']' in address '%s'", s);
		port = close + 2;
	} else {
		const char *colon = strrchr(s, ':');

		if (colon == NULL)
			return conf_why(
			    why, whysize, "missing ':port' in address '%s'", s);
		hl = (size_t)(colon - s);
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (strchr(host, ':') != NULL)
			return conf_why(why, whysize,
			    "IPv6 address '%s' must be in brackets, as "
			    "[::1]:25",
			    s);
		port = colon + 1;
	}
	if (conf_port(port, &p) == -1)
		return conf_why(
		    why, whysize, "bad port in address '%s' (1-65535)", s);
	memset(out, 0, sizeof(*out));
	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		sin.sin_port = htons(p);
		memcpy(&out->ss, &sin, sizeof(sin));
		out->len = sizeof(sin);
	} else if (s[0] == '[' &&
	    inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons(p);
		memcpy(&out->ss, &sin6, sizeof(sin6));
		out->len = sizeof(sin6);
	} else
		return conf_why(why, whysize,
		    "'%s' is not a numeric IPv4 or [IPv6] address", host);
	return 0;
}

int
conf_parse_addr(const char *s, struct conf_addr *out)
{
	if (s == NULL || out == NULL)
		return -1;
	return conf_parse_addr_why(s, out, NULL, 0);
}

/* Parses "a.b.c.d/len", "x::y/len", or a lone address (a host). */
static int
conf_parse_net(const char *s, struct conf_net *out, char *why, size_t whysize)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t hl = slash != NULL ? (size_t)(slash - s) : strlen(s);
	uint64_t prefix;
	int bits, i;

	memset(out, 0, sizeof(*out));
	if (hl >= sizeof(host))
		return conf_why(why, whysize, "bad network '%.60s'", s);
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		bits = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		bits = 128;
	} else
		return conf_why(why, whysize,
		    "bad network '%.60s' (want ADDRESS/PREFIX, numeric)", s);
	out->prefix = bits;
	if (slash != NULL) {
		if (conf_number(slash + 1, strlen(slash + 1), (uint64_t)bits,
		        &prefix) == -1)
			return conf_why(why, whysize,
			    "bad prefix length in '%.60s' (0-%d)", s, bits);
		out->prefix = (int)prefix;
	}
	/* No open relay, ever (the words): a /0 admits everyone. */
	if (out->prefix == 0)
		return conf_why(why, whysize,
		    "'%.60s' matches every address: that is an open relay", s);
	for (i = out->prefix; i < bits; i++)
		if (out->addr[i / 8] & (0x80 >> (i % 8)))
			return conf_why(why, whysize,
			    "'%.60s' has host bits set past /%d", s,
			    out->prefix);
	return 0;
}

static int
conf_net_match(const struct conf_net *n, const uint8_t *a)
{
	int full = n->prefix / 8, rest = n->prefix % 8;

	if (memcmp(n->addr, a, (size_t)full) != 0)
		return 0;
	if (rest != 0) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));

		if (((n->addr[full] ^ a[full]) & mask) != 0)
			return 0;
	}
	return 1;
}

int
conf_nets_match(
    const struct conf_net *nets, size_t n, const struct sockaddr *addr)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
		0xff };
	uint8_t v4[4], v6[16];
	int have_v4 = 0;
	size_t i;

	if (nets == NULL || addr == NULL)
		return 0;
	if (addr->sa_family == AF_INET) {
		struct sockaddr_in sin;

		memcpy(&sin, addr, sizeof(sin));
		memcpy(v4, &sin.sin_addr, 4);
		memcpy(v6, mapped, 12);
		memcpy(v6 + 12, v4, 4);
		have_v4 = 1;
	} else if (addr->sa_family == AF_INET6) {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, addr, sizeof(sin6));
		memcpy(v6, &sin6.sin6_addr, 16);
		/* An IPv4 client on a dual-stack socket (RFC 4291 §2.5.5.2)
		 * is matched against the IPv4 networks too. */
		if (memcmp(v6, mapped, 12) == 0) {
			memcpy(v4, v6 + 12, 4);
			have_v4 = 1;
		}
	} else
		return 0;
	for (i = 0; i < n && i < CONF_NET_MAX; i++) {
		const struct conf_net *net = &nets[i];

		if (net->family == AF_INET ? have_v4 && conf_net_match(net, v4)
		                           : conf_net_match(net, v6))
			return 1;
	}
	return 0;
}

int
conf_relay_allowed(const struct conf *c, const struct sockaddr *addr)
{
	if (c == NULL)
		return 0;
	return conf_nets_match(c->relay_networks, c->n_relay_networks, addr);
}

int
conf_is_http_admin(const struct conf *c, const char *login)
{
	size_t i;

	if (c == NULL || login == NULL)
		return 0;
	for (i = 0; i < c->n_http_admins; i++)
		if (strcmp(c->http_admins[i], login) == 0)
			return 1;
	return 0;
}

int
conf_is_local_domain(const struct conf *c, const char *domain)
{
	size_t i;

	if (c == NULL || domain == NULL)
		return 0;
	for (i = 0; i < c->n_local_domains; i++)
		if (str_casecmp(c->local_domains[i], domain) == 0)
			return 1;
	return 0;
}

/* Field access for the table's setters. */
static void *
conf_field(struct conf *c, size_t off)
{
	return (char *)c + off;
}

static int
conf_replace(char **dst, const char *v, char *why, size_t whysize)
{
	char *s = strdup(v);

	if (s == NULL)
		return conf_why(why, whysize, "out of memory");
	free(*dst);
	*dst = s;
	return 0;
}

/* Takes the next comma-separated item of *p into item (trimmed).  Returns
 * 1 (item), 0 (end of list) or -1 (empty or too long item: why set). */
static int
conf_list_next(
    const char **p, char *item, size_t itemsize, char *why, size_t whysize)
{
	const char *s = *p, *e;
	size_t n;

	if (s == NULL)
		return 0;
	e = strchr(s, ',');
	n = e != NULL ? (size_t)(e - s) : strlen(s);
	*p = e != NULL ? e + 1 : NULL;
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0)
		return conf_why(why, whysize, "empty item in list");
	if (n >= itemsize)
		return conf_why(why, whysize, "list item too long");
	memcpy(item, s, n);
	item[n] = '\0';
	return 1;
}

static int
conf_set_hostname(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	(void)k;
	if (conf_check_domain(v, why, whysize) == -1)
		return -1;
	str_copy(c->hostname, v, sizeof(c->hostname));
	return 0;
}

/* A path: absolute (the daemon does not run from the directory it was
 * started in), trailing slashes dropped. */
static int
conf_set_path(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	char p[CONF_LINE_MAX + 1];
	size_t n;

	if (v[0] != '/')
		return conf_why(
		    why, whysize, "'%.60s' is not an absolute path", v);
	n = str_copy(p, v, sizeof(p));
	if (n >= sizeof(p) || n >= PATH_MAX)
		return conf_why(why, whysize, "path too long");
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	return conf_replace(conf_field(c, k->off), p, why, whysize);
}

/* control_socket: a path that fits a UNIX socket address. */
static int
conf_set_socket(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	char **dst = conf_field(c, k->off);

	if (conf_set_path(c, k, v, why, whysize) == -1)
		return -1;
	if (strlen(*dst) > CONF_SOCKET_PATH_MAX)
		return conf_why(why, whysize,
		    "path longer than %d bytes (a UNIX socket's limit)",
		    CONF_SOCKET_PATH_MAX);
	return 0;
}

static int
conf_addr_equal(const struct conf_addr *a, const struct conf_addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* smtp_listen, mtqp_listen ("none" allowed) and dns_servers. */
static int
conf_set_addrs(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	struct conf_addr *a = conf_field(c, k->off);
	size_t *count = conf_field(c, k->count_off);
	char item[CONF_LINE_MAX + 1];
	const char *p = v;
	size_t n = 0, i;
	int r;

	*count = 0;
	if (v[0] == '\0')
		return 0;
	if (k->none_ok && str_casecmp(v, "none") == 0)
		return 0;
	while (
	    (r = conf_list_next(&p, item, sizeof(item), why, whysize)) == 1) {
		if (str_casecmp(item, "none") == 0)
			return conf_why(why, whysize, "%s",
			    k->none_ok ? "'none' must be the only value"
			               : "'none' is not an address (an empty "
			                 "value means the system resolver)");
		if (n == k->max)
			return conf_why(
			    why, whysize, "more than %zu addresses", k->max);
		if (conf_parse_addr_why(item, &a[n], why, whysize) == -1)
			return -1;
		for (i = 0; i < n; i++)
			if (conf_addr_equal(&a[i], &a[n]))
				return conf_why(
				    why, whysize, "'%s' is listed twice", item);
		n++;
	}
	if (r == -1)
		return -1;
	*count = n;
	return 0;
}

/* relay_networks, metrics_networks: CIDR lists (empty allowed). */
static int
conf_set_nets(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	struct conf_net *nets = conf_field(c, k->off);
	size_t *count = conf_field(c, k->count_off);
	char item[CONF_LINE_MAX + 1];
	const char *p = v;
	size_t n = 0;
	int r;

	*count = 0;
	if (v[0] == '\0')
		return 0;
	while (
	    (r = conf_list_next(&p, item, sizeof(item), why, whysize)) == 1) {
		if (n == CONF_NET_MAX)
			return conf_why(why, whysize, "more than %d networks",
			    CONF_NET_MAX);
		if (conf_parse_net(item, &nets[n], why, whysize) == -1)
			return -1;
		n++;
	}
	if (r == -1)
		return -1;
	*count = n;
	return 0;
}

static void
conf_free_admins(struct conf *c)
{
	size_t i;

	for (i = 0; i < c->n_http_admins; i++)
		free(c->http_admins[i]);
	free(c->http_admins);
	c->http_admins = NULL;
	c->n_http_admins = 0;
}

/* http_admins: logins as auth_check() takes them, printable ASCII without
 * space or comma (the list's separator), each listed once. */
static int
conf_set_admins(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	char item[CONF_LINE_MAX + 1], q[CONF_QUOTE_MAX * 4 + 4];
	const char *p = v;
	size_t i;
	int r;

	(void)k;
	conf_free_admins(c);
	if (v[0] == '\0')
		return 0;
	c->http_admins = calloc(CONF_ADMINS_MAX, sizeof(char *));
	if (c->http_admins == NULL)
		return conf_why(why, whysize, "out of memory");
	while (
	    (r = conf_list_next(&p, item, sizeof(item), why, whysize)) == 1) {
		if (c->n_http_admins == CONF_ADMINS_MAX)
			return conf_why(why, whysize, "more than %d logins",
			    CONF_ADMINS_MAX);
		if (strlen(item) > CONF_LOGIN_MAX)
			return conf_why(why, whysize,
			    "a login longer than %d octets", CONF_LOGIN_MAX);
		for (i = 0; item[i] != '\0'; i++)
			if ((unsigned char)item[i] <= 0x20 ||
			    (unsigned char)item[i] >= 0x7f)
				return conf_why(why, whysize,
				    "'%s' is not a login (printable ASCII "
				    "without spaces)",
				    conf_quote(q, sizeof(q), item));
		for (i = 0; i < c->n_http_admins; i++)
			if (strcmp(c->http_admins[i], item) == 0)
				return conf_why(
				    why, whysize, "'%s' is listed twice", item);
		if ((c->http_admins[c->n_http_admins] = strdup(item)) == NULL)
			return conf_why(why, whysize, "out of memory");
		c->n_http_admins++;
	}
	return r;
}

static void
conf_free_chain_hosts(struct conf *c)
{
	size_t i;

	for (i = 0; i < c->n_mtqp_chain_names; i++)
		free(c->mtqp_chain_names[i]);
	free(c->mtqp_chain_names);
	c->mtqp_chain_names = NULL;
	c->n_mtqp_chain_names = 0;
	c->n_mtqp_chain_nets = 0;
	c->mtqp_chain_hosts_set = 0;
}

/* mtqp_chain_hosts: "none", or names, "[ip]" and CIDR networks. */
static int
conf_set_chain_hosts(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	char item[CONF_LINE_MAX + 1], inner[INET6_ADDRSTRLEN + 1];
	const char *p = v;
	struct conf_net *net;
	size_t i, len;
	int r;

	(void)k;
	conf_free_chain_hosts(c);
	if (str_casecmp(v, "none") == 0)
		return 0;
	c->mtqp_chain_hosts_set = 1;
	c->mtqp_chain_names = calloc(CONF_DOMAIN_MAX, sizeof(char *));
	if (c->mtqp_chain_names == NULL)
		return conf_why(why, whysize, "out of memory");
	while (
	    (r = conf_list_next(&p, item, sizeof(item), why, whysize)) == 1) {
		len = strlen(item);
		if (str_casecmp(item, "none") == 0)
			return conf_why(
			    why, whysize, "'none' must be the only value");
		if (item[0] == '[' || strchr(item, '/') != NULL ||
		    strchr(item, ':') != NULL ||
		    inet_pton(AF_INET, item, inner) == 1) {
			/* "[ip]" (one address) or a network. */
			if (c->n_mtqp_chain_nets == CONF_NET_MAX)
				return conf_why(why, whysize,
				    "more than %d networks", CONF_NET_MAX);
			if (item[0] == '[') {
				if (len < 3 || item[len - 1] != ']' ||
				    len - 2 >= sizeof(inner))
					return conf_why(why, whysize,
					    "bad address '%.60s' (want [IP])",
					    item);
				memcpy(inner, item + 1, len - 2);
				inner[len - 2] = '\0';
				if (strchr(inner, '/') != NULL)
					return conf_why(why, whysize,
					    "bad address '%.60s' (a network "
					    "is written without brackets)",
					    item);
				str_copy(item, inner, sizeof(item));
			}
			net = &c->mtqp_chain_nets[c->n_mtqp_chain_nets];
			if (strchr(item, '/') != NULL &&
			    strcmp(strchr(item, '/'), "/0") == 0)
				return conf_why(why, whysize,
				    "'%.60s' matches every address: list "
				    "the hops' networks",
				    item);
			if (conf_parse_net(item, net, why, whysize) == -1)
				return -1;
			c->n_mtqp_chain_nets++;
			continue;
		}
		if (c->n_mtqp_chain_names == CONF_DOMAIN_MAX)
			return conf_why(why, whysize, "more than %d names",
			    CONF_DOMAIN_MAX);
		if (conf_check_domain(item, why, whysize) == -1)
			return -1;
		str_lower(item);
		for (i = 0; i < c->n_mtqp_chain_names; i++)
			if (strcmp(c->mtqp_chain_names[i], item) == 0)
				return conf_why(
				    why, whysize, "'%s' is listed twice", item);
		if ((c->mtqp_chain_names[c->n_mtqp_chain_names] =
		            strdup(item)) == NULL)
			return conf_why(why, whysize, "out of memory");
		c->n_mtqp_chain_names++;
	}
	if (r == 0 && c->n_mtqp_chain_names == 0 && c->n_mtqp_chain_nets == 0)
		return conf_why(why, whysize, "empty list (use none)");
	return r;
}

static void
conf_free_domains(struct conf *c)
{
	size_t i;

	for (i = 0; i < c->n_local_domains; i++)
		free(c->local_domains[i]);
	free(c->local_domains);
	c->local_domains = NULL;
	c->n_local_domains = 0;
}

static int
conf_set_domains(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	char item[CONF_LINE_MAX + 1];
	const char *p = v;
	size_t i;
	int r;

	(void)k;
	conf_free_domains(c);
	if (v[0] == '\0')
		return 0;
	c->local_domains = calloc(CONF_DOMAIN_MAX, sizeof(char *));
	if (c->local_domains == NULL)
		return conf_why(why, whysize, "out of memory");
	while (
	    (r = conf_list_next(&p, item, sizeof(item), why, whysize)) == 1) {
		if (c->n_local_domains == CONF_DOMAIN_MAX)
			return conf_why(why, whysize, "more than %d domains",
			    CONF_DOMAIN_MAX);
		if (conf_check_domain(item, why, whysize) == -1)
			return -1;
		str_lower(item);
		for (i = 0; i < c->n_local_domains; i++)
			if (strcmp(c->local_domains[i], item) == 0)
				return conf_why(
				    why, whysize, "'%s' is listed twice", item);
		if ((c->local_domains[c->n_local_domains] = strdup(item)) ==
		    NULL)
			return conf_why(why, whysize, "out of memory");
		c->n_local_domains++;
	}
	return r;
}

/* "maildir" or "lmtp:HOST:PORT", HOST a domain name, an IPv4 address or
 * an [IPv6] address. */
static int
conf_set_transport(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	char host[CONF_LINE_MAX + 1], norm[CONF_LINE_MAX + 8], dwhy[128];
	struct conf_addr a;
	struct in_addr in4;
	const char *rest, *colon;
	in_port_t port;
	size_t hl;

	(void)k;
	if (str_casecmp(v, "maildir") == 0)
		return conf_replace(
		    &c->local_transport, "maildir", why, whysize);
	if (!str_casestarts(v, strlen(v), "lmtp:"))
		return conf_why(why, whysize,
		    "'%.60s' is neither maildir nor lmtp:HOST:PORT", v);
	rest = v + 5;
	colon = strrchr(rest, ':');
	if (colon == NULL || colon == rest)
		return conf_why(
		    why, whysize, "'%.60s': want lmtp:HOST:PORT", v);
	if (conf_port(colon + 1, &port) == -1)
		return conf_why(
		    why, whysize, "bad port in '%.60s' (1-65535)", v);
	if (rest[0] == '[') {
		if (conf_parse_addr_why(rest, &a, why, whysize) == -1)
			return -1;
	} else {
		hl = (size_t)(colon - rest);
		memcpy(host, rest, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET, host, &in4) != 1 &&
		    conf_check_domain(host, dwhy, sizeof(dwhy)) == -1)
			return conf_why(
			    why, whysize, "bad host in '%.60s': %s", v, dwhy);
	}
	snprintf(norm, sizeof(norm), "lmtp:%s", rest);
	return conf_replace(&c->local_transport, norm, why, whysize);
}

static int
conf_set_store(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	static const char scheme[] = "postgresql://";
	size_t n = strlen(v), i;

	(void)k;
	if (str_casecmp(v, "sqlite") == 0)
		return conf_replace(&c->store, "sqlite", why, whysize);
	/* Lower case, as libpq and store_backend_find() want it. */
	if (strncmp(v, scheme, sizeof(scheme) - 1) != 0)
		return conf_why(why, whysize,
		    "'%.60s' is neither sqlite nor a postgresql:// URI", v);
	if (n == sizeof(scheme) - 1)
		return conf_why(why, whysize, "empty postgresql:// URI");
	/* A URI has no spaces or control characters (RFC 3986 §2). */
	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			return conf_why(why, whysize,
			    "character 0x%02x not allowed in a URI",
			    (unsigned char)v[i]);
	return conf_replace(&c->store, v, why, whysize);
}

static int
conf_set_tls_policy(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	(void)k;
	if (str_casecmp(v, "none") == 0)
		c->smtp_tls_policy = CONF_TLS_NONE;
	else if (str_casecmp(v, "opportunistic") == 0)
		c->smtp_tls_policy = CONF_TLS_OPPORTUNISTIC;
	else if (str_casecmp(v, "require") == 0)
		c->smtp_tls_policy = CONF_TLS_REQUIRE;
	else if (str_casecmp(v, "verify") == 0)
		c->smtp_tls_policy = CONF_TLS_VERIFY;
	else
		return conf_why(why, whysize,
		    "'%.60s' is not one of none, opportunistic, require, "
		    "verify",
		    v);
	return 0;
}

static int
conf_set_mtqp_unknown(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	(void)k;
	if (str_casecmp(v, "noinfo") == 0)
		c->mtqp_unknown = CONF_MTQP_NOINFO;
	else if (str_casecmp(v, "opaque") == 0)
		c->mtqp_unknown = CONF_MTQP_OPAQUE;
	else
		return conf_why(
		    why, whysize, "'%.60s' is not one of noinfo, opaque", v);
	return 0;
}

static int
conf_set_size(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	uint64_t *dst = conf_field(c, k->off);
	uint64_t n;

	if (conf_parse_size_why(v, &n, why, whysize) == -1)
		return -1;
	/* SIZE 0 would mean "no limit" (RFC 1870 §4): never. */
	if (n == 0)
		return conf_why(why, whysize, "must be at least 1 byte");
	/* Larger messages could never be queued: refusing them with 552 at
	 * DATA beats a temporary 452 that clients retry forever. */
	if (n > CONF_MESSAGE_SIZE_MAX)
		return conf_why(why, whysize,
		    "above the queue's limit of %llu bytes (1G)",
		    (unsigned long long)CONF_MESSAGE_SIZE_MAX);
	*dst = n;
	return 0;
}

static int
conf_set_duration(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	time_t *dst = conf_field(c, k->off);
	time_t t;

	if (conf_parse_duration_why(v, &t, why, whysize) == -1)
		return -1;
	if (t < k->min)
		return conf_why(why, whysize, "%.20s is below the minimum %s",
		    v, k->min_why);
	*dst = t;
	return 0;
}

static int
conf_set_retry(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	char item[CONF_LINE_MAX + 1];
	const char *p = v;
	size_t n = 0;
	int r;

	(void)k;
	c->n_retry_schedule = 0;
	while (
	    (r = conf_list_next(&p, item, sizeof(item), why, whysize)) == 1) {
		if (n == CONF_RETRY_MAX)
			return conf_why(why, whysize, "more than %d intervals",
			    CONF_RETRY_MAX);
		if (conf_parse_duration_why(
		        item, &c->retry_schedule[n], why, whysize) == -1)
			return -1;
		if (c->retry_schedule[n] == 0)
			return conf_why(why, whysize,
			    "a retry interval of 0 would retry in a loop");
		n++;
	}
	if (r == -1)
		return -1;
	c->n_retry_schedule = n;
	return 0;
}

static int
conf_set_bool(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	int *dst = conf_field(c, k->off);
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (str_casecmp(v, yes[i]) == 0) {
			*dst = 1;
			return 0;
		}
		if (str_casecmp(v, no[i]) == 0) {
			*dst = 0;
			return 0;
		}
	}
	return conf_why(why, whysize,
	    "'%.60s' is not a boolean (yes/no, true/false, on/off, 1/0)", v);
}

static int
conf_set_user(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	size_t n = strlen(v), i;

	(void)k;
	if (n > CONF_USER_MAX)
		return conf_why(
		    why, whysize, "user name longer than %d", CONF_USER_MAX);
	if (v[0] == '-')
		return conf_why(why, whysize, "user name starts with '-'");
	for (i = 0; i < n; i++)
		if (!conf_isalnum((unsigned char)v[i]) && v[i] != '_' &&
		    v[i] != '.' && v[i] != '-')
			return conf_why(why, whysize,
			    "'%.60s' is not a valid user name", v);
	return conf_replace(&c->user, v, why, whysize);
}

/* auth: "passwd:/abs/path" or "dovecot:/abs/path" (src/auth/auth.h). */
static int
conf_set_auth(struct conf *c, const struct conf_key *k, const char *v,
    char *why, size_t whysize)
{
	const char *path;
	size_t n;
	int dovecot;

	(void)k;
	if (strncmp(v, "passwd:", 7) == 0) {
		path = v + 7;
		dovecot = 0;
	} else if (strncmp(v, "dovecot:", 8) == 0) {
		path = v + 8;
		dovecot = 1;
	} else
		return conf_why(why, whysize,
		    "'%.60s' is neither passwd:/path nor dovecot:/path", v);
	if (path[0] != '/')
		return conf_why(
		    why, whysize, "'%.60s' is not an absolute path", path);
	n = strlen(path);
	if (n >= PATH_MAX || (dovecot && n > CONF_AUTH_SOCKET_MAX))
		return conf_why(why, whysize, "path too long");
	return conf_replace(&c->auth, v, why, whysize);
}

#define FIELD(f) offsetof(struct conf, f)
#define PATHKEY(k) \
	{ \
		.name = #k, .set = conf_set_path, .off = FIELD(k) \
	}
#define DURATION(k, m, w) \
	{ \
		.name = #k, .set = conf_set_duration, .off = FIELD(k), \
		.min = (m), .min_why = (w) \
	}
#define BOOLKEY(k) \
	{ \
		.name = #k, .set = conf_set_bool, .off = FIELD(k) \
	}

/* Every key of PRODUCT.md's table, plus "user". */
static const struct conf_key conf_keys[] = {
	{ .name = "hostname", .set = conf_set_hostname },
	PATHKEY(data_dir),
	{ .name = "smtp_listen",
	    .set = conf_set_addrs,
	    .off = FIELD(smtp_listen),
	    .count_off = FIELD(n_smtp_listen),
	    .max = CONF_LISTEN_MAX,
	    .none_ok = 1 },
	{ .name = "mtqp_listen",
	    .set = conf_set_addrs,
	    .off = FIELD(mtqp_listen),
	    .count_off = FIELD(n_mtqp_listen),
	    .max = CONF_LISTEN_MAX,
	    .none_ok = 1 },
	{ .name = "submission_listen",
	    .set = conf_set_addrs,
	    .off = FIELD(submission_listen),
	    .count_off = FIELD(n_submission_listen),
	    .max = CONF_LISTEN_MAX,
	    .none_ok = 1 },
	{ .name = "submissions_listen",
	    .set = conf_set_addrs,
	    .off = FIELD(submissions_listen),
	    .count_off = FIELD(n_submissions_listen),
	    .max = CONF_LISTEN_MAX,
	    .none_ok = 1 },
	{ .name = "http_listen",
	    .set = conf_set_addrs,
	    .off = FIELD(http_listen),
	    .count_off = FIELD(n_http_listen),
	    .max = CONF_LISTEN_MAX,
	    .none_ok = 1 },
	{ .name = "https_listen",
	    .set = conf_set_addrs,
	    .off = FIELD(https_listen),
	    .count_off = FIELD(n_https_listen),
	    .max = CONF_LISTEN_MAX,
	    .none_ok = 1 },
	{ .name = "relay_networks",
	    .set = conf_set_nets,
	    .off = FIELD(relay_networks),
	    .count_off = FIELD(n_relay_networks),
	    .empty_ok = 1 },
	{ .name = "metrics_networks",
	    .set = conf_set_nets,
	    .off = FIELD(metrics_networks),
	    .count_off = FIELD(n_metrics_networks),
	    .empty_ok = 1 },
	{ .name = "local_domains", .set = conf_set_domains, .empty_ok = 1 },
	PATHKEY(local_recipients),
	{ .name = "local_transport", .set = conf_set_transport },
	PATHKEY(mailbox_dir),
	{ .name = "control_socket",
	    .set = conf_set_socket,
	    .off = FIELD(control_socket) },
	PATHKEY(aliases),
	PATHKEY(routes),
	{ .name = "auth", .set = conf_set_auth },
	PATHKEY(sender_logins),
	BOOLKEY(submission_track),
	{ .name = "http_admins", .set = conf_set_admins, .empty_ok = 1 },
	{ .name = "dns_servers",
	    .set = conf_set_addrs,
	    .off = FIELD(dns_servers),
	    .count_off = FIELD(n_dns_servers),
	    .max = CONF_DNS_MAX,
	    .empty_ok = 1 },
	{ .name = "store", .set = conf_set_store },
	PATHKEY(tls_cert_file),
	PATHKEY(tls_key_file),
	{ .name = "smtp_tls_policy", .set = conf_set_tls_policy },
	PATHKEY(smtp_tls_ca_file),
	{ .name = "max_message_size",
	    .set = conf_set_size,
	    .off = FIELD(max_message_size) },
	DURATION(mtrk_default_timeout, 1, "1s"),
	DURATION(mtrk_max_timeout, CONF_MTRK_MAX_MIN, "1d"),
	DURATION(purge_interval, 1, "1s"),
	DURATION(queue_lifetime, 1, "1s"),
	DURATION(delay_warning, 1, "1s"),
	{ .name = "retry_schedule", .set = conf_set_retry },
	{ .name = "mtqp_unknown", .set = conf_set_mtqp_unknown },
	DURATION(smtp_timeout, 1, "1s"),
	DURATION(mtqp_idle_timeout, CONF_MTQP_IDLE_MIN,
	    "10m (RFC 3887 section 2.5)"),
	BOOLKEY(mtqp_tls_required),
	BOOLKEY(mtqp_chain),
	{ .name = "mtqp_chain_hosts", .set = conf_set_chain_hosts },
	BOOLKEY(hide_internal_hosts),
	{ .name = "user", .set = conf_set_user },
};

#define CONF_NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

static int
conf_key_index(const char *name)
{
	size_t i;

	for (i = 0; i < CONF_NKEYS; i++)
		if (strcmp(conf_keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* The system's FQDN: the canonical name of gethostname() if it is a
 * dotted domain name (a "localhost" alias in /etc/hosts must not win over
 * the machine's own name), else gethostname() itself. */
static int
conf_system_hostname(char *dst, size_t dstsize, char *why, size_t whysize)
{
	char name[CONF_HOSTNAME_MAX + 2], q[CONF_QUOTE_MAX * 4 + 4];
	struct addrinfo hints, *res = NULL;
	int ok = -1;

	memset(name, 0, sizeof(name));
	if (gethostname(name, sizeof(name) - 1) == -1)
		return conf_why(
		    why, whysize, "gethostname: %s", strerror(errno));
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_CANONNAME;
	if (getaddrinfo(name, NULL, &hints, &res) == 0 && res != NULL &&
	    res->ai_canonname != NULL &&
	    strchr(res->ai_canonname, '.') != NULL &&
	    conf_check_domain(res->ai_canonname, NULL, 0) == 0) {
		str_copy(dst, res->ai_canonname, dstsize);
		ok = 0;
	} else if (conf_check_domain(name, NULL, 0) == 0) {
		str_copy(dst, name, dstsize);
		ok = 0;
	}
	if (res != NULL)
		freeaddrinfo(res);
	if (ok == -1)
		return conf_why(why, whysize,
		    "the system host name '%s' is not a valid domain name: "
		    "set hostname",
		    conf_quote(q, sizeof(q), name));
	return 0;
}

int
conf_defaults(struct conf *c, char *err, size_t errsize)
{
	static const time_t retry[] = { 5 * 60, 10 * 60, 20 * 60, 40 * 60,
		60 * 60 };
	char why[256];
	int r;

	memset(c, 0, sizeof(*c));
	if ((c->data_dir = strdup(CONF_DEFAULT_DATA_DIR)) == NULL ||
	    (c->mailbox_dir = strdup(
	         CONF_DEFAULT_DATA_DIR CONF_MAILBOX_SUBDIR)) == NULL ||
	    (c->control_socket = strdup(
	         CONF_DEFAULT_DATA_DIR CONF_CONTROL_SUBDIR)) == NULL ||
	    (c->local_transport = strdup("maildir")) == NULL ||
	    (c->store = strdup("sqlite")) == NULL ||
	    (c->user = strdup(CONF_DEFAULT_USER)) == NULL) {
		conf_why(err, errsize, "out of memory");
		return -1;
	}
	/* These literals are ours: failing to parse them is a bug. */
	r = conf_parse_addr_why(
	    "0.0.0.0:25", &c->smtp_listen[0], why, sizeof(why));
	r |= conf_parse_addr_why(
	    "0.0.0.0:1038", &c->mtqp_listen[0], why, sizeof(why));
	r |= conf_parse_net(
	    "127.0.0.0/8", &c->relay_networks[0], why, sizeof(why));
	r |= conf_parse_net("::1/128", &c->relay_networks[1], why, sizeof(why));
	r |= conf_parse_net(
	    "127.0.0.0/8", &c->metrics_networks[0], why, sizeof(why));
	r |= conf_parse_net(
	    "::1/128", &c->metrics_networks[1], why, sizeof(why));
	if (r != 0) {
		conf_why(err, errsize, "internal error: default: %s", why);
		return -1;
	}
	c->n_smtp_listen = 1;
	c->n_mtqp_listen = 1;
	c->n_relay_networks = 2;
	c->n_metrics_networks = 2;
	c->smtp_tls_policy = CONF_TLS_OPPORTUNISTIC;
	c->max_message_size = 50ULL * 1024 * 1024;
	c->mtrk_default_timeout = 9 * 86400;
	c->mtrk_max_timeout = 30 * 86400;
	c->purge_interval = 3600;
	c->queue_lifetime = 5 * 86400;
	c->delay_warning = 4 * 3600;
	memcpy(c->retry_schedule, retry, sizeof(retry));
	c->n_retry_schedule = sizeof(retry) / sizeof(retry[0]);
	c->mtqp_unknown = CONF_MTQP_NOINFO;
	c->mtqp_idle_timeout = CONF_MTQP_IDLE_MIN;
	c->smtp_timeout = 300;
	c->mtqp_tls_required = 0;
	c->mtqp_chain = 0;
	c->hide_internal_hosts = 0;
	c->submission_track = 1;
	if (conf_system_hostname(
	        c->hostname, sizeof(c->hostname), why, sizeof(why)) == -1) {
		c->hostname[0] = '\0';
		conf_why(err, errsize, "%s", why);
		return -1;
	}
	return 0;
}

static void
conf_trim(char **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

/* One line (NUL-terminated, checked for control bytes): sets a key, or
 * writes "what" (without the file:line prefix) to why. */
static int
conf_line(struct conf *c, char *line, unsigned lineno, unsigned *seen,
    char *why, size_t whysize)
{
	char q[CONF_QUOTE_MAX * 4 + 4], kwhy[512];
	char *key = line, *val, *eq;
	size_t kn, vn;
	int k;

	kn = strlen(line);
	conf_trim(&key, &kn);
	if (kn == 0 || key[0] == '#')
		return 0;
	key[kn] = '\0';
	if ((eq = strchr(key, '=')) == NULL)
		return conf_why(why, whysize,
		    "missing '=' in '%s' (want name = value)",
		    conf_quote(q, sizeof(q), key));
	val = eq + 1;
	vn = strlen(val);
	conf_trim(&val, &vn);
	val[vn] = '\0';
	kn = (size_t)(eq - key);
	conf_trim(&key, &kn);
	key[kn] = '\0';
	if (kn == 0)
		return conf_why(why, whysize, "missing name before '='");
	if ((k = conf_key_index(key)) == -1)
		return conf_why(why, whysize, "unknown key '%s'",
		    conf_quote(q, sizeof(q), key));
	if (seen[k] != 0)
		return conf_why(why, whysize,
		    "duplicate key '%s' (first set at line %u)", key, seen[k]);
	seen[k] = lineno;
	if (vn == 0 && !conf_keys[k].empty_ok)
		return conf_why(why, whysize, "%s: empty value", key);
	if (conf_keys[k].set(c, &conf_keys[k], val, kwhy, sizeof(kwhy)) == -1)
		return conf_why(why, whysize, "%s: %s", key, kwhy);
	return 0;
}

/* The line at which the file set a key (0: not in the file). */
static unsigned
conf_seen(const unsigned *seen, const char *name)
{
	int k = conf_key_index(name);

	return k >= 0 ? seen[k] : 0;
}

static unsigned
conf_later(unsigned a, unsigned b)
{
	return a > b ? a : b;
}

/* The submission and HTTP listeners share no address with each other or
 * with smtp_listen and mtqp_listen (the line: the later key of the pair). */
static int
conf_check_listeners(struct conf *c, const unsigned *seen, unsigned *line_out,
    char *why, size_t whysize)
{
	const struct {
		const char *name;
		const struct conf_addr *a;
		size_t n;
	} l[] = {
		{ "smtp_listen", c->smtp_listen, c->n_smtp_listen },
		{ "mtqp_listen", c->mtqp_listen, c->n_mtqp_listen },
		{ "submission_listen", c->submission_listen,
		    c->n_submission_listen },
		{ "submissions_listen", c->submissions_listen,
		    c->n_submissions_listen },
		{ "http_listen", c->http_listen, c->n_http_listen },
		{ "https_listen", c->https_listen, c->n_https_listen },
	};
	size_t x, y, i, j;

	/* smtp_listen against mtqp_listen is checked by the caller. */
	for (x = 2; x < sizeof(l) / sizeof(l[0]); x++)
		for (y = 0; y < x; y++)
			for (i = 0; i < l[x].n; i++)
				for (j = 0; j < l[y].n; j++) {
					if (!conf_addr_equal(
					        &l[x].a[i], &l[y].a[j]))
						continue;
					*line_out = conf_later(
					    conf_seen(seen, l[x].name),
					    conf_seen(seen, l[y].name));
					return conf_why(why, whysize,
					    "%s address %zu is also in %s",
					    l[x].name, i + 1, l[y].name);
				}
	return 0;
}

/* Rules between keys, once the whole file is read.  Reports the line of
 * the key set last among those involved (0: none was in the file). */
static int
conf_check(struct conf *c, const unsigned *seen, unsigned *line_out, char *why,
    size_t whysize)
{
	unsigned tls = conf_later(
	    conf_seen(seen, "tls_cert_file"), conf_seen(seen, "tls_key_file"));
	unsigned sub;
	size_t i, j;

	*line_out = conf_later(
	    conf_seen(seen, "smtp_listen"), conf_seen(seen, "mtqp_listen"));
	if (c->n_smtp_listen == 0 && c->n_mtqp_listen == 0)
		return conf_why(why, whysize,
		    "smtp_listen and mtqp_listen are both none: nothing to "
		    "do");
	for (i = 0; i < c->n_smtp_listen; i++)
		for (j = 0; j < c->n_mtqp_listen; j++)
			if (conf_addr_equal(
			        &c->smtp_listen[i], &c->mtqp_listen[j]))
				return conf_why(why, whysize,
				    "mtqp_listen address %zu is also in "
				    "smtp_listen",
				    j + 1);
	if (conf_check_listeners(c, seen, line_out, why, whysize) == -1)
		return -1;
	*line_out = tls;
	if ((c->tls_cert_file == NULL) != (c->tls_key_file == NULL))
		return conf_why(why, whysize, "%s is set but %s is not",
		    c->tls_cert_file != NULL ? "tls_cert_file" : "tls_key_file",
		    c->tls_cert_file != NULL ? "tls_key_file"
		                             : "tls_cert_file");
	*line_out = conf_later(conf_seen(seen, "mtqp_tls_required"), tls);
	if (c->mtqp_tls_required && c->tls_cert_file == NULL)
		return conf_why(why, whysize,
		    "mtqp_tls_required needs tls_cert_file and tls_key_file "
		    "(no STARTTLS without them)");
	/* mtrk_max_timeout is a silent cap on retention (PRODUCT.md): on the
	 * default retention too, when the file leaves mtrk_default_timeout
	 * at its default ("mtrk_max_timeout = 1d" alone means 1d).  A
	 * default the operator wrote is never changed in silence: above the
	 * cap (written or the default 30d) it is an error at its line. */
	*line_out = conf_later(conf_seen(seen, "mtrk_default_timeout"),
	    conf_seen(seen, "mtrk_max_timeout"));
	if (c->mtrk_default_timeout > c->mtrk_max_timeout) {
		if (conf_seen(seen, "mtrk_default_timeout") == 0)
			c->mtrk_default_timeout = c->mtrk_max_timeout;
		else
			return conf_why(why, whysize,
			    "mtrk_default_timeout (%lld s) is above "
			    "mtrk_max_timeout (%lld s%s)",
			    (long long)c->mtrk_default_timeout,
			    (long long)c->mtrk_max_timeout,
			    conf_seen(seen, "mtrk_max_timeout") == 0
			        ? ", its default"
			        : "");
	}
	/* Submission (PRODUCT.md): AUTH is the point of it, and implicit
	 * TLS needs a certificate. */
	sub = conf_later(conf_seen(seen, "submission_listen"),
	    conf_seen(seen, "submissions_listen"));
	*line_out = conf_later(sub, conf_seen(seen, "auth"));
	if (c->n_submission_listen + c->n_submissions_listen > 0 &&
	    c->auth == NULL)
		return conf_why(why, whysize,
		    "%s needs auth (passwd:/path or dovecot:/path)",
		    c->n_submission_listen > 0 ? "submission_listen"
		                               : "submissions_listen");
	*line_out = conf_later(conf_seen(seen, "submissions_listen"), tls);
	if (c->n_submissions_listen > 0 && c->tls_cert_file == NULL)
		return conf_why(why, whysize,
		    "submissions_listen needs tls_cert_file and tls_key_file "
		    "(implicit TLS)");
	*line_out = conf_later(conf_seen(seen, "https_listen"), tls);
	if (c->n_https_listen > 0 && c->tls_cert_file == NULL)
		return conf_why(why, whysize,
		    "https_listen needs tls_cert_file and tls_key_file");
	/* The operator views check their logins against auth. */
	*line_out =
	    conf_later(conf_seen(seen, "http_admins"), conf_seen(seen, "auth"));
	if (c->n_http_admins > 0 && c->auth == NULL)
		return conf_why(why, whysize,
		    "http_admins needs auth (passwd:/path or dovecot:/path)");
	*line_out = 0;
	return 0;
}

int
conf_load(struct conf *c, const char *path, char *err, size_t errsize)
{
	unsigned seen[CONF_NKEYS];
	char line[CONF_LINE_MAX + 1], why[1024];
	struct buf b;
	const char *p, *end;
	unsigned lineno = 0;
	int ret = -1;

	memset(seen, 0, sizeof(seen));
	buf_init(&b, CONF_FILE_MAX);
	if (c == NULL || path == NULL) {
		conf_why(err, errsize, "conf_load: no config or path");
		return -1;
	}
	free(c->file);
	if ((c->file = strdup(path)) == NULL) {
		conf_why(err, errsize, "%s: out of memory", path);
		return -1;
	}
	if (file_read(path, &b, why, sizeof(why)) == -1) {
		conf_why(err, errsize, "%s: %s", path, why);
		goto fail;
	}
	p = buf_cstr(&b);
	end = p + b.len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		size_t i;

		lineno++;
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > CONF_LINE_MAX) {
			conf_why(err, errsize,
			    "%s:%u: line longer than %d bytes", path, lineno,
			    CONF_LINE_MAX);
			goto fail;
		}
		for (i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)p[i];

			if (ch == '\0') {
				conf_why(err, errsize, "%s:%u: NUL byte", path,
				    lineno);
				goto fail;
			}
			if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
				conf_why(err, errsize,
				    "%s:%u: control character 0x%02x", path,
				    lineno, ch);
				goto fail;
			}
		}
		memcpy(line, p, n);
		line[n] = '\0';
		if (conf_line(c, line, lineno, seen, why, sizeof(why)) == -1) {
			conf_why(err, errsize, "%s:%u: %s", path, lineno, why);
			goto fail;
		}
		p = nl != NULL ? nl + 1 : end;
	}
	if (conf_check(c, seen, &lineno, why, sizeof(why)) == -1) {
		if (lineno != 0)
			conf_why(err, errsize, "%s:%u: %s", path, lineno, why);
		else
			conf_why(err, errsize, "%s: %s", path, why);
		goto fail;
	}
	/* mailbox_dir follows data_dir unless set (PRODUCT.md). */
	if (conf_seen(seen, "mailbox_dir") == 0) {
		struct buf m;

		buf_init(&m, PATH_MAX);
		if (buf_addf(&m, "%s%s",
		        strcmp(c->data_dir, "/") == 0 ? "" : c->data_dir,
		        CONF_MAILBOX_SUBDIR) == -1) {
			conf_why(err, errsize, "%s: data_dir too long", path);
			buf_reset(&m);
			goto fail;
		}
		free(c->mailbox_dir);
		if ((c->mailbox_dir = buf_release(&m)) == NULL) {
			conf_why(err, errsize, "%s: out of memory", path);
			goto fail;
		}
	}
	/* control_socket too, when it still fits a socket address. */
	if (conf_seen(seen, "control_socket") == 0) {
		struct buf m;

		buf_init(&m, CONF_SOCKET_PATH_MAX);
		if (buf_addf(&m, "%s%s",
		        strcmp(c->data_dir, "/") == 0 ? "" : c->data_dir,
		        CONF_CONTROL_SUBDIR) == -1) {
			conf_why(err, errsize,
			    "%s:%u: control_socket: the default "
			    "<data_dir>%s is longer than %d bytes (a UNIX "
			    "socket's limit): set control_socket",
			    path, conf_seen(seen, "data_dir"),
			    CONF_CONTROL_SUBDIR, CONF_SOCKET_PATH_MAX);
			buf_reset(&m);
			goto fail;
		}
		free(c->control_socket);
		if ((c->control_socket = buf_release(&m)) == NULL) {
			conf_why(err, errsize, "%s: out of memory", path);
			goto fail;
		}
	}
	ret = 0;
fail:
	buf_reset(&b);
	return ret;
}

void
conf_free(struct conf *c)
{
	if (c == NULL)
		return;
	free(c->file);
	free(c->data_dir);
	conf_free_domains(c);
	conf_free_chain_hosts(c);
	conf_free_admins(c);
	free(c->local_recipients);
	free(c->local_transport);
	free(c->mailbox_dir);
	free(c->control_socket);
	free(c->aliases);
	free(c->routes);
	free(c->auth);
	free(c->sender_logins);
	free(c->store);
	free(c->tls_cert_file);
	free(c->tls_key_file);
	free(c->smtp_tls_ca_file);
	free(c->user);
	memset(c, 0, sizeof(*c));
}
