/*
 * trail: follow a tracked message hop by hop (RFC 3887 §1, §2.4; RFC 3886
 * §3.3.3; the digest's §12 algorithm), for `msgtrk track` and for the
 * daemon's firewall mode (mtqp_chain).
 *
 * A trail queries the first server with TRACK <envid> <secret>, splits the
 * multipart/related answer (related_split_entity) and parses each
 * message/tracking-status part (tstatus parser).  Recipients are
 * correlated across parts and hops by Original-Recipient (compared
 * ASCII-case-insensitively after the "type;") and, as two RCPTs may
 * share one ORCPT, by Final-Recipient and position: the blocks of one
 * part are distinct recipients, and a block continues the trail with
 * its ORCPT whose last Final-Recipient is the same (else one waiting for
 * that answer, else the first).  For each recipient the latest part that
 * names it decides:
 *   transferred with "Remote-MTA: dns; H"  -> query H (SRV
 *       _mtqp._tcp.H, else H:1038), unless a later part of the same answer
 *       has "Reporting-MTA: dns; H" (a chaining server already answered
 *       for H); one query per host, shared by the recipients sent there;
 *   anything else                          -> the branch ends.
 * A transferred recipient whose Remote-MTA is an address literal ("dns;
 * [192.0.2.1]", "dns; [IPv6:2001:db8::1]", or the untagged "dns; [::1]"
 * of older servers) is followed to that address on 1038.
 *
 * Limits (P14): the same (server, envid) is never queried twice (a
 * recipient sent back to a host already asked ends in TRAIL_END_LOOP),
 * at most opts.hop_max hops per recipient (TRAIL_END_HOP_LIMIT) and
 * TRAIL_QUERIES_MAX queries per trail; an overall timer (opts.timeout)
 * ends every open branch with TRAIL_END_TIMEOUT.
 *
 * Memory: everything reachable from the struct trail_result given to the
 * callback belongs to the trail and stays valid until trail_free().
 */
#ifndef MSGTRK_TRAIL_H
#define MSGTRK_TRAIL_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "msgtrk/tstatus.h"

struct event_base;
struct dns;
struct sockaddr;

/* P14: hops per recipient. */
#define TRAIL_HOPS_DEFAULT 30
#define TRAIL_HOPS_MAX 100
/* MTQP queries per trail (every hop of every branch). */
#define TRAIL_QUERIES_MAX 64
/* Original recipients followed (more are ignored, with a warning in
 * result.error). */
#define TRAIL_RCPT_MAX TSTATUS_RCPT_MAX
/* Default overall bound, seconds.  RFC 3887 §2.5 asks a client to wait
 * at least 2 minutes for a response; msgtrk uses this default. */
#define TRAIL_TIMEOUT_DEFAULT 300
/* "host:port" */
#define TRAIL_SERVER_MAX 272
#define TRAIL_ERROR_MAX 1024
/* SHA-256 of a server's SubjectPublicKeyInfo. */
#define TRAIL_SPKI_LEN 32

enum trail_tls {
	TRAIL_TLS_OPPORTUNISTIC = 0, /* STARTTLS when offered */
	TRAIL_TLS_REQUIRE, /* every server must do TLS */
	TRAIL_TLS_NONE, /* never STARTTLS */
};

struct trail_opts {
	/* The first server: "host", "host:port", "[ip]:port" or "ip".
	 * Without a port the SRV record of host is used, else port 1038. */
	const char *server;
	/* TRACK arguments as sent at every hop: envid in xtext (as given in
	 * ENVID=), secret in base64 (padded or not). */
	const char *envid;
	const char *secret;
	enum trail_tls tls;
	/* tls_client_ctx(1, ca_file, ...): certificates are checked
	 * against the host name connected to.  NULL: no TLS (an error for
	 * every server under TRAIL_TLS_REQUIRE). */
	SSL_CTX *ssl_ctx;
	/* RFC 3887 §11: ntls_known "host:port" names of MTQP servers that
	 * did TLS in earlier runs (msgtrk's TLS memory); a session to one of
	 * them must do TLS again, and one whose greeting lacks STARTTLS
	 * ends its branch in TRAIL_END_ERROR as a downgrade (see
	 * mtqp_client.h).  Ignored with TRAIL_TLS_NONE.  Borrowed: must
	 * outlive the trail.  NULL/0: none. */
	const char *const *tls_known;
	size_t ntls_known;
	/* Hops per recipient, 0 = TRAIL_HOPS_DEFAULT, at most
	 * TRAIL_HOPS_MAX. */
	unsigned int hop_max;
	/* Overall bound in seconds, 0 = TRAIL_TIMEOUT_DEFAULT.  Also the
	 * per-response wait of every query (capped by what is left). */
	unsigned int timeout;
	/* 1: query the first server only (msgtrk track --no-follow). */
	int no_follow;
	/* Firewall mode: when first_body is set, no query is made to the
	 * first server: first_body (first_len octets, a multipart/related
	 * entity as in a TRACK answer) is taken as its answer, and
	 * first_server names it in the result. */
	const char *first_body;
	size_t first_len;
	const char *first_server;
	/* Firewall mode (mtqp_chain_hosts): NULL (msgtrk track) lets every
	 * hop be queried.  Otherwise asked before a hop named by an answer
	 * is contacted: with sa NULL for the host a Remote-MTA names and for
	 * every SRV target, then with sa for every address before connecting
	 * to it.  via is the address of the server whose answer named the
	 * hop (NULL: the first answer, first_body or opts.server's).
	 * Returns 1 to allow, 0 to refuse: a recipient whose next hop is
	 * refused (every target or address of it) ends in TRAIL_END_REFUSED
	 * and that hop is never connected to. */
	int (*allow)(void *arg, const char *name, const struct sockaddr *sa,
	    const struct sockaddr *via);
	void *allow_arg;
};

/* How one recipient's trail ended (or the whole trail, see below). */
enum trail_end {
	TRAIL_END_DELIVERED = 1,
	TRAIL_END_RELAYED,
	TRAIL_END_EXPANDED,
	TRAIL_END_FAILED,
	TRAIL_END_DELAYED,
	TRAIL_END_OPAQUE, /* a server answered "opaque" */
	TRAIL_END_TRANSFERRED, /* transferred, not followed (no_follow, or a
				  Remote-MTA that cannot be queried) */
	TRAIL_END_NOINFO, /* the next server answered -ERR/noinfo */
	TRAIL_END_ERROR, /* the next server failed: see error */
	TRAIL_END_LOOP, /* sent back to a server already queried */
	TRAIL_END_HOP_LIMIT, /* hop_max reached */
	TRAIL_END_TIMEOUT, /* the overall timer ran out */
	TRAIL_END_REFUSED, /* the next hop is not allowed (opts.allow): never
			      contacted */
};

/* One server's answer, in the order received (path order). */
struct trail_answer {
	char server[TRAIL_SERVER_MAX]; /* "host:port" queried */
	int tls; /* 1 if the query went over TLS */
	const char *body; /* the multipart/related entity as received */
	size_t body_len;
	size_t nparts; /* parsed message/tracking-status parts */
	const struct tstatus *const *parts;
	/* The raw bodies of the parts (for firewall mode), nparts each. */
	const char *const *part_body;
	const size_t *part_len;
};

/* One hop of one recipient: the block a server reported for it. */
struct trail_hop {
	const struct trail_answer *answer; /* server, tls, raw body */
	const struct tstatus *part; /* the part holding the block */
	const struct tstatus_rcpt *rcpt; /* this recipient's block */
};

struct trail_rcpt {
	/* Original-Recipient as reported first ("rfc822" and the address). */
	const char *orig_type;
	const char *orig_value;
	size_t nhops;
	const struct trail_hop *hops; /* path order, nearest first */
	enum trail_end end;
	/* For NOINFO/ERROR/LOOP/HOP_LIMIT/TIMEOUT/TRANSFERRED: the server
	 * concerned and what happened, English; "" otherwise. */
	const char *error;
};

/* One session's TLS outcome (every session that did TLS or was refused
 * as a downgrade), for callers that remember servers. */
struct trail_tls_outcome {
	char server[TRAIL_SERVER_MAX]; /* "host:port" talked to */
	int tls; /* 1: the handshake succeeded, spki_sha256 is set */
	int downgrade; /* 1: refused, STARTTLS was missing (RFC 3887 §11) */
	unsigned char spki_sha256[TRAIL_SPKI_LEN];
};

struct trail_result {
	/* TRAIL_END_ERROR or TRAIL_END_NOINFO when the first server gave no
	 * usable answer (nrcpt is then 0), else 0. */
	enum trail_end end;
	const char *error; /* "" unless end is set, or a warning */
	/* Every answer received, path order (for --raw). */
	size_t nanswers;
	const struct trail_answer *const *answers;
	size_t nrcpt;
	const struct trail_rcpt *rcpts; /* in first-answer order */
	/* TLS outcomes, in the order the sessions ended. */
	size_t ntls;
	const struct trail_tls_outcome *tls;
};

typedef void (*trail_cb)(const struct trail_result *res, void *arg);

struct trail;

/* Starts following.  Strings in opts are copied; ssl_ctx is borrowed and
 * must outlive the trail; base and dns too.  cb is called exactly once,
 * from the event loop (never from inside trail_start), unless the trail
 * is freed first.  cb may call trail_free() (the result is then gone).
 * Returns NULL with err set on bad options or memory exhaustion. */
struct trail *trail_start(struct event_base *base, struct dns *dns,
    const struct trail_opts *opts, trail_cb cb, void *arg, char *err,
    size_t errsize);

/* Cancels any query in progress (cb is not called if it has not been)
 * and frees the trail and its result.  Accepts NULL. */
void trail_free(struct trail *t);

/* Splits a server as given in trail_opts.server: "host", "host:port",
 * "[ip]:port", "[ip]" (brackets kept in host) or a bare IPv6 address.
 * *port is 0 when none was given.  Returns 0, or -1 on an empty host, a
 * port outside 1-65535 or not all digits, or a host over hostsize - 1. */
int trail_parse_server(
    const char *s, char *host, size_t hostsize, unsigned int *port);

/* The host a "transferred" block's Remote-MTA names: H of "dns; H" (type
 * compared case-insensitively).  An address literal, "[192.0.2.1]",
 * "[IPv6:2001:db8::1]" (RFC 5321 §4.1.3) or the untagged "[2001:db8::1]",
 * becomes "[ip]" in inet_ntop()'s form (mtqp_client strips the brackets
 * and connects to ip on 1038).  Returns 0, or -1 if it cannot be followed
 * (no field, another type, an empty name, a bracketed value that is not
 * an address literal, or a result over outsize - 1). */
int trail_remote_host(const struct tstatus_typed *m, char *out, size_t outsize);

/* The lower-case name of e ("delivered", ... "timeout"), or "unknown". */
const char *trail_end_name(enum trail_end e);

#endif /* MSGTRK_TRAIL_H */
