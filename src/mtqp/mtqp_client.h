/*
 * mtqp_client: one asynchronous MTQP query (RFC 3887) on a libevent
 * event_base: discovery, connect, greeting, STARTTLS, TRACK, response.
 *
 *   1. Discovery (RFC 3887 §2.1, RFC 2782): without an explicit port, SRV
 *      _mtqp._tcp.<host> through the caller's struct dns; targets in
 *      RFC 2782 order (priority, weighted random); a single "." target
 *      means "no service" (an error, no fallback); no SRV record (NXDOMAIN
 *      or NODATA) means <host>:1038.  An explicit port skips SRV.  Every
 *      target's addresses (dns_addr) are tried in order.
 *   2. Greeting: must be positive with /MTQP (mtqp_greeting_parse).
 *   3. STARTTLS <target host> (P12: the host actually connected to) when
 *      offered and the caller gave an SSL_CTX, or when the caller requires
 *      TLS (then a server without the option is an error).  The
 *      certificate is checked against that host (tls_client_expect) with
 *      the caller's context.  No byte may follow the STARTTLS answer
 *      (pipelined plaintext is refused).  After the handshake the pre-TLS
 *      option list is forgotten and a new greeting is read (§6.2); one
 *      that lists STARTTLS again is an error.
 *   4. Downgrade (RFC 3887 §11: an alarm when STARTTLS "does not appear
 *      in an option response for a later session"): when the caller says
 *      the server offered STARTTLS before (opts.tls_seen, or the server
 *      talked to is in opts.tls_known), a greeting without it is an error
 *      (result.downgrade), and TLS is then required of that server as
 *      with MTQP_CLIENT_TLS_REQUIRE.  MTQP_CLIENT_TLS_NONE ignores both:
 *      the caller chose plaintext.  After a handshake the SHA-256 of the
 *      server's SubjectPublicKeyInfo is reported, for callers that
 *      remember keys.
 *   5. TRACK envid secret, then one response.
 *
 * Timers: connecting is bounded per address (MTQP_CLIENT_CONNECT_TIMEOUT);
 * each response is bounded by opts.timeout (RFC 3887 §2.5: a client timer
 * "MUST be at least 2 minutes", which msgtrk honours; the daemon's
 * firewall mode passes less to answer its own client within 2 minutes).
 */
#ifndef MSGTRK_MTQP_CLIENT_H
#define MSGTRK_MTQP_CLIENT_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "msgtrk/mtqp.h"

struct event_base;
struct dns;
struct sockaddr;

/* Seconds to wait for one TCP connect before the next address. */
#define MTQP_CLIENT_CONNECT_TIMEOUT 30
/* RFC 3887 §2.5: "at least 2 minutes" for a response. */
#define MTQP_CLIENT_TIMEOUT_MIN 120
/* Addresses tried for one query (over all SRV targets). */
#define MTQP_CLIENT_ADDRS_MAX 16
/* "host:port" of the server actually talked to. */
#define MTQP_CLIENT_SERVER_MAX (MTQP_DOMAIN_MAX + 16)
/* Length of an error text. */
#define MTQP_CLIENT_ERROR_MAX 512
/* SHA-256 of the server's SubjectPublicKeyInfo (DER). */
#define MTQP_CLIENT_SPKI_LEN 32

enum mtqp_client_tls {
	MTQP_CLIENT_TLS_OPPORTUNISTIC = 0, /* STARTTLS when offered */
	MTQP_CLIENT_TLS_REQUIRE, /* no TLS: error, TRACK not sent */
	MTQP_CLIENT_TLS_NONE, /* never STARTTLS */
};

struct mtqp_client_opts {
	/* Host name or IP literal ("192.0.2.1", "[2001:db8::1]"); port 0
	 * means discover (SRV, else MTQP_PORT); an IP literal without a
	 * port uses MTQP_PORT. */
	const char *host;
	unsigned int port;
	/* TRACK arguments, as sent: envid in xtext, secret in base64. */
	const char *envid;
	const char *secret;
	enum mtqp_client_tls tls;
	/* A client context from tls_client_ctx() (verifying); NULL means no
	 * TLS at all (an error with MTQP_CLIENT_TLS_REQUIRE). */
	SSL_CTX *ssl_ctx;
	/* 1 if this server offered STARTTLS before: its absence now is a
	 * downgrade (RFC 3887 §11) and fails the query. */
	int tls_seen;
	/* ntls_known "host:port" names of servers that did TLS in earlier
	 * sessions (msgtrk's TLS memory), compared case-insensitively with
	 * the server actually connected to (the SRV target): their greeting
	 * must offer STARTTLS and TLS is required of them.  Borrowed: must
	 * stay valid until the query ends.  NULL/0: none. */
	const char *const *tls_known;
	size_t ntls_known;
	/* Seconds to wait for each response; 0 = MTQP_CLIENT_TIMEOUT_MIN. */
	unsigned int timeout;
	/* NULL: every target may be contacted.  Otherwise asked for every
	 * target before its addresses are looked up (name, sa NULL) and for
	 * every address before connecting (name its target, sa the
	 * address): 1 allows, 0 skips it (an error when nothing is left).
	 * Firewall mode's mtqp_chain_hosts. */
	int (*allow)(void *arg, const char *name, const struct sockaddr *sa);
	void *allow_arg;
};

enum mtqp_client_status {
	MTQP_CLIENT_ANSWER = 1, /* +OK+ to TRACK: resp->body is the entity */
	MTQP_CLIENT_NEGATIVE, /* -ERR, -TEMP or -BAD to TRACK (or an +OK
				 without data): see resp */
	MTQP_CLIENT_ERROR, /* no answer: DNS, connect, TLS, protocol,
			      timeout, downgrade; see error */
};

/* A query's outcome; valid only while the callback runs. */
struct mtqp_client_result {
	enum mtqp_client_status status;
	/* "host:port" of the server talked to last (the SRV target), or the
	 * host asked for if no connection was made. */
	const char *server;
	int tls; /* 1 if TRACK went over TLS */
	int tls_offered; /* 1 if a plaintext greeting listed STARTTLS */
	/* 1 if the query failed because a server that offered STARTTLS
	 * before (tls_seen, tls_known) did not now: a possible downgrade. */
	int downgrade;
	/* When tls is 1: SHA-256 of the server's SubjectPublicKeyInfo. */
	unsigned char spki_sha256[MTQP_CLIENT_SPKI_LEN];
	/* The TRACK response (ANSWER and NEGATIVE); NULL for ERROR. */
	const struct mtqp_resp *resp;
	/* ERROR: what failed, English, never NULL ("" otherwise). */
	const char *error;
};

typedef void (*mtqp_client_cb)(const struct mtqp_client_result *res, void *arg);

struct mtqp_client;

/* Starts a query.  The strings in opts are copied.  cb is called exactly
 * once, from the event loop, never from inside this call, unless the
 * query is freed first; after cb returns the query is finished and must
 * still be freed with mtqp_client_free() (which cb may do).  Returns NULL
 * with err set on bad options or memory exhaustion. */
struct mtqp_client *mtqp_client_track(struct event_base *base, struct dns *dns,
    const struct mtqp_client_opts *opts, mtqp_client_cb cb, void *arg,
    char *err, size_t errsize);

/* Cancels the query if running (cb is not called) and frees it.  Accepts
 * NULL.  May be called from cb. */
void mtqp_client_free(struct mtqp_client *c);

#endif /* MSGTRK_MTQP_CLIENT_H */
