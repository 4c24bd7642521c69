/*
 * route: where mail for a recipient domain goes next (RFC 5321 §5 and
 * PRODUCT.md's "routes" key).
 *
 * The decision, in order:
 *  1. the routes file: an entry for the exact domain, else the "*" entry;
 *     a host name there is looked up for A/AAAA only (it names a relay,
 *     not a mail domain), an "[ip]" is used as is.  A line is
 *
 *       domain  host[:port]  [tls-name=NAME]
 *       domain  [ip][:port]  [tls-name=NAME]
 *
 *     tls-name names the host the relay's certificate must be valid for
 *     under smtp_tls_policy = verify (and the SNI sent): with an address
 *     literal it is the only name there is; with a host name it replaces
 *     that name.  Other policies send it as SNI only;
 *  2. an address-literal domain ("[192.0.2.1]", RFC 5321 §4.1.3): that
 *     address (only the "*" entry of the routes file applies to it);
 *  3. the domain's MX records, best preference first (equal ones
 *     shuffled), each host looked up for A/AAAA.  A null MX (RFC 7505)
 *     fails permanently with 556 5.1.10; MX hosts from our own hostname
 *     on are dropped (RFC 5321 §5.1);
 *  4. no MX records (NODATA): the implicit MX, the domain's own A/AAAA.
 * NXDOMAIN fails permanently (5.1.2), a DNS failure temporarily (4.4.3).
 *
 * Each candidate hop carries the host NAME we looked up or routed to: that
 * is what Remote-MTA records ("dns; <host>"), never the name the peer
 * announces.  An address is written as RFC 5321 §4.1.3's address literal,
 * one form everywhere: "dns; [192.0.2.1]", "dns; [IPv6:2001:db8::1]"
 * (route_literal_format()).
 */
#ifndef MSGTRK_ROUTE_H
#define MSGTRK_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"

struct event_base;

/* Limits on a routes file: a line (without its newline), the entries, the
 * file.  An entry is two short fields; these leave ample room. */
#define ROUTE_LINE_MAX 1024
/* Fields of a line: domain, host, and the one option (tls-name=). */
#define ROUTE_FIELDS_MAX 3
#define ROUTE_ENTRIES_MAX 100000
#define ROUTE_FILE_MAX (16 * 1024 * 1024)

/* MX hosts we resolve and hand on per domain (Postfix tries at most
 * smtp_mx_address_limit = 5 addresses; a few more hosts is harmless). */
#define ROUTE_HOPS_MAX 10

/* The SMTP port (IANA "smtp"). */
#define ROUTE_PORT_DEFAULT 25

/* Longest host text: a name, or "[IPv6:" IPv6 "]". */
#define ROUTE_HOST_MAX (DNS_NAME_MAX + 2)

struct route_entry {
	char domain[DNS_NAME_MAX + 1]; /* lower-cased, or "*" */
	char host[ROUTE_HOST_MAX + 1]; /* lower-cased name, or the literal
					  ("[192.0.2.1]", "[IPv6:::1]") */
	int literal; /* 1: host is "[ip]" and addr holds it */
	struct dns_addr addr;
	uint16_t port; /* 0: the default port */
	/* tls-name=: the name the certificate must carry, lower-cased, or
	 * "" (then host, unless it is a literal). */
	char tls_name[DNS_NAME_MAX + 1];
	size_t line; /* where it was read */
};

struct route_table;

/* Parses the len bytes of text as a routes file; file names it in
 * errors.  Returns the table, or NULL with "file:line: what" in err (or
 * "file: out of memory"). */
struct route_table *route_table_parse(
    const char *file, const char *text, size_t len, char *err, size_t errsize);

/* Reads and parses the file at path (at most ROUTE_FILE_MAX bytes).
 * Returns NULL with "path: what" or "path:line: what" in err. */
struct route_table *route_table_load(
    const char *path, char *err, size_t errsize);

/* Accepts NULL. */
void route_table_free(struct route_table *t);

/* Number of entries. */
size_t route_table_count(const struct route_table *t);

/* The entry for domain (any case, trailing dot allowed): the exact one,
 * else "*", else NULL.  Valid as long as the table. */
const struct route_entry *route_table_lookup(
    const struct route_table *t, const char *domain);

enum route_status {
	ROUTE_OK,
	ROUTE_TEMPFAIL,
	ROUTE_PERMFAIL,
};

enum route_source {
	ROUTE_SRC_TABLE, /* the routes file */
	ROUTE_SRC_LITERAL, /* the domain was an address literal */
	ROUTE_SRC_MX, /* MX records */
	ROUTE_SRC_IMPLICIT, /* no MX: the domain's own addresses */
};

struct route_hop {
	char host[ROUTE_HOST_MAX + 1]; /* for Remote-MTA: "dns; <host>" */
	int literal; /* host is "[ip]" */
	/* The routes file's tls-name=, or "" (route_entry.tls_name). */
	char tls_name[DNS_NAME_MAX + 1];
	uint16_t pref; /* the MX preference; 0 for other sources */
	uint16_t port;
	size_t naddr; /* >= 1; IPv4 first */
	struct dns_addr addr[2 * DNS_ADDR_MAX];
};

/*
 * The decision.  Owned by the router, valid only while the callback runs.
 * When status is ROUTE_OK, hops[0..nhops-1] are the candidates in the
 * order to try (nhops >= 1), and reply, dsn are 0 and NULL.  Otherwise
 * nhops is 0, reply is the SMTP code to report (451, 550, 554, 556), dsn
 * the RFC 3463 code ("4.4.3", "5.1.2", "5.1.10", "5.4.4", "5.4.6") and
 * error an English sentence naming the domain or host.
 */
struct route_result {
	enum route_status status;
	enum route_source source;
	const char *domain; /* as asked, normalised */
	int reply;
	const char *dsn;
	char error[512];
	size_t nhops;
	struct route_hop *hops;
};

typedef void (*route_cb)(const struct route_result *res, void *arg);

/* Options; zero fields mean the default.  myhostname, when set, drops our
 * own MX and the ones after it (RFC 5321 §5.1); port replaces 25 for
 * DNS-found hops (tests). */
struct route_opts {
	const char *myhostname;
	uint16_t port;
};

struct route;
struct route_query;

/* Creates a router that resolves through dns (which must outlive it).
 * Returns NULL on allocation failure. */
struct route *route_new(
    struct event_base *base, struct dns *dns, const struct route_opts *opts);

/* Cancels every pending decision (no callbacks) and frees the router and
 * its table.  Accepts NULL.  Safe inside a callback. */
void route_free(struct route *r);

/* Installs t (ownership passes; NULL: no routes file) and frees the
 * previous table.  Decisions in progress keep the entry they matched
 * (SIGHUP reloads). */
void route_set_table(struct route *r, struct route_table *t);

/* Starts a decision for domain (a name, or an address literal "[ip]" /
 * "[IPv6:ip]").  cb is called exactly once, from the event loop, never
 * before route_lookup returns, unless cancelled.  Returns a handle valid
 * until the callback returns or route_cancel(); NULL with errno set
 * (ENOMEM, EAGAIN from dns). */
struct route_query *route_lookup(
    struct route *r, const char *domain, route_cb cb, void *arg);

/* Cancels a decision: its callback will not be called.  Accepts NULL.
 * Must not be called once its callback has started. */
void route_cancel(struct route_query *q);

/* Parses an address literal: "[192.0.2.1]", "[2001:db8::1]" or
 * "[IPv6:2001:db8::1]" (n bytes).  Returns 0 and fills *out, or -1. */
int route_parse_literal(const char *s, size_t n, struct dns_addr *out);

/* Writes a as RFC 5321 §4.1.3's address literal, the one form Remote-MTA
 * uses: "[192.0.2.1]", "[IPv6:2001:db8::1]" (inet_ntop's compressed
 * form).  dstsize of ROUTE_HOST_MAX + 1 always fits. */
void route_literal_format(const struct dns_addr *a, char *dst, size_t dstsize);

#endif /* MSGTRK_ROUTE_H */
