/*
 * dns: an asynchronous stub resolver for msgtrkd and msgtrk, c-ares driven
 * by a libevent event_base (c-ares sockets are watched with events, its
 * timeouts with one evtimer; ares_process_fd does the work).
 *
 * Lookups: MX (sorted by preference, equal preferences shuffled, RFC 5321
 * §5.1), addresses (A and AAAA together, IPv4 first), SRV (RFC 2782
 * order: priority, then weighted random selection).  Only ares_query() is
 * used: no search domains, no /etc/hosts; the name asked is the name
 * looked up.
 *
 * Every lookup reports through exactly one callback, always called from the
 * event loop and never from inside the dns_*() call that started it (even
 * for a name rejected before any packet is sent), unless the lookup is
 * cancelled first.  The callback may start new lookups, cancel others, and
 * call dns_free().
 */
#ifndef MSGTRK_DNS_H
#define MSGTRK_DNS_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;

/* RFC 1035 §2.3.4: 255 octets on the wire, which is 253 characters of
 * text without the final dot; labels are 1-63 octets. */
#define DNS_NAME_MAX 253
#define DNS_LABEL_MAX 63

/* Caps on what one answer may give us.  An answer over TCP can hold some
 * 4000 MX records; nobody needs more than a few (Postfix tries at most
 * smtp_mx_address_limit = 5 addresses). */
#define DNS_MX_MAX 32
#define DNS_SRV_MAX 32
#define DNS_ADDR_MAX 16 /* per family: up to 16 A and 16 AAAA */

/* resolv.conf(5) allows 3 servers (MAXNS); we allow a few more. */
#define DNS_SERVERS_MAX 8
/* Lookups in flight on one resolver before dns_*() refuses (EAGAIN). */
#define DNS_QUERIES_MAX 4096

/* Bounds and defaults of the per-try timeout and the tries per server.
 * c-ares doubles the timeout after each round over all servers, so one
 * lookup gives up after at most n_servers * timeout * (2^tries - 1). */
#define DNS_TIMEOUT_MS_MIN 50
#define DNS_TIMEOUT_MS_MAX 30000
#define DNS_TIMEOUT_MS_DEFAULT 2000
#define DNS_TRIES_MIN 1
#define DNS_TRIES_MAX 5
#define DNS_TRIES_DEFAULT 2

enum dns_status {
	DNS_OK, /* records in the result */
	DNS_NXDOMAIN, /* the name does not exist */
	DNS_NODATA, /* the name exists, without records of that type */
	DNS_TEMPFAIL, /* timeout, SERVFAIL, REFUSED, network error, OOM */
	DNS_PERMFAIL, /* invalid name; SRV target "." (not offered) */
};

enum dns_type {
	DNS_MX,
	DNS_ADDR, /* A and AAAA */
	DNS_SRV,
};

struct dns_mx {
	char host[DNS_NAME_MAX + 1]; /* lower-cased, no final dot; "" = "." */
	uint16_t pref;
};

struct dns_srv {
	char target[DNS_NAME_MAX + 1]; /* lower-cased, no final dot */
	uint16_t priority;
	uint16_t weight;
	uint16_t port;
};

struct dns_addr {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} u;
};

/*
 * A lookup's outcome.  Owned by the resolver and valid only while the
 * callback runs: copy what you keep.  The arrays hold n records of the
 * lookup's type (the others are NULL); n is 0 unless status is DNS_OK.
 * error is a static English phrase for logs ("timeout", "no such domain",
 * ...), never NULL.
 */
struct dns_result {
	enum dns_type type;
	enum dns_status status;
	const char *error;
	const char *name; /* the name looked up */
	size_t n;
	struct dns_mx *mx;
	struct dns_addr *addr;
	struct dns_srv *srv;
};

typedef void (*dns_cb)(const struct dns_result *res, void *arg);

/* Returns a number uniformly distributed in [0, upper) (upper >= 1). */
typedef uint32_t (*dns_random_fn)(uint32_t upper, void *arg);

/*
 * Options; zero fields mean the default.  servers is the dns_servers
 * config text: a comma-separated list of numeric "ip", "ip:port",
 * "[ipv6]" or "[ipv6]:port" (port 53 by default); server_addrs is the same
 * already parsed (the port taken from the sockaddr, 0 meaning 53).  At
 * most one of the two may be given; with neither, /etc/resolv.conf's
 * servers are used.  random defaults to arc4random_uniform().
 */
struct dns_opts {
	const char *servers;
	const struct sockaddr_storage *server_addrs;
	size_t n_server_addrs;
	int timeout_ms;
	int tries;
	dns_random_fn random;
	void *random_arg;
};

struct dns;
struct dns_query;

/* Creates a resolver on base.  Returns NULL on error with a message in err
 * (bad server list, bad option, c-ares failure). */
struct dns *dns_new(struct event_base *base, const struct dns_opts *opts,
    char *err, size_t errsize);

/* Cancels every pending lookup (their callbacks are not called) and frees
 * the resolver.  Accepts NULL.  Safe inside a callback. */
void dns_free(struct dns *d);

/* Start a lookup of name (a trailing dot is allowed; names are validated
 * with dns_name_valid, an invalid one gives DNS_PERMFAIL through the
 * callback).  Return a handle valid until the callback returns or until
 * dns_cancel(); NULL with errno ENOMEM, or EAGAIN past DNS_QUERIES_MAX. */
struct dns_query *dns_mx(struct dns *d, const char *name, dns_cb cb, void *arg);
struct dns_query *dns_addr(
    struct dns *d, const char *name, dns_cb cb, void *arg);
struct dns_query *dns_srv(
    struct dns *d, const char *name, dns_cb cb, void *arg);

/* Cancels a lookup: its callback will not be called.  Accepts NULL.  Must
 * not be called for a lookup whose callback has started. */
void dns_cancel(struct dns_query *q);

/* Number of lookups started and not yet reported or cancelled. */
size_t dns_pending(const struct dns *d);

/* Returns 1 if name is a valid host or service name to look up: 1-253
 * characters without a trailing dot (one trailing dot allowed), labels of
 * 1-63 letters, digits, '-' and '_' (for "_mtqp._tcp"), no label starting
 * or ending with '-'; else 0. */
int dns_name_valid(const char *name);

/* Formats a into dst ("192.0.2.1", "2001:db8::1").  Returns 0, -1 if
 * dstsize is too small (INET6_ADDRSTRLEN always suffices). */
int dns_addr_format(const struct dns_addr *a, char *dst, size_t dstsize);

/* Sorts n MX records by preference, shuffling runs of equal preference
 * with rnd (RFC 5321 §5.1). */
void dns_mx_sort(struct dns_mx *mx, size_t n, dns_random_fn rnd, void *arg);

/* Orders n SRV records per RFC 2782: ascending priority, and within a
 * priority the weighted random selection of the RFC ("Usage rules"). */
void dns_srv_sort(struct dns_srv *srv, size_t n, dns_random_fn rnd, void *arg);

#endif /* MSGTRK_DNS_H */
