/*
 * mtqp_server: msgtrkd's MTQP server (RFC 3887), on mtqp_listen.
 *
 * Inputs: conf (hostname, mtqp_*, hide_internal_hosts), the event base,
 * the TLS server context, and at start (struct mtqp_server_deps) the
 * reader (TRACK's store lookups, off the loop), the queue
 * (queue_store_failed: TRACK answers -TEMP/unavailable while the store
 * lags the journal), tls_client and dns (firewall mode).
 *
 * Sessions: what is said is mtqp_proto.h's (greeting, the command table,
 * TRACK answered from the store and, with mtqp_chain, from the next hops);
 * this file keeps the connections.  Unknown envid, wrong secret, no
 * certifier and expired record give the same bytes; failed TRACKs are
 * rate-limited per client (IPv4 address, IPv6 /64) across all its
 * sessions: over the limit, the same answer comes at the client's next
 * free slot.
 */
#ifndef MSGTRK_MTQP_SERVER_H
#define MSGTRK_MTQP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/ssl.h>

#include "common/ratelimit.h"
#include "msgtrk/buf.h"
#include "msgtrk/tstatus.h"

struct conf;
struct event_base;
struct mtqp_server;
struct store_msg;

/* Limits on what clients control (RFC 3887 §2.5 allows them). */
#define MTQP_SERVER_SESSIONS_MAX 1000 /* then -TEMP/MTQP/unavailable */
#define MTQP_SERVER_SESSIONS_PER_ADDR_MAX 32
/* (Errors and commands per session: MTQP_PROTO_*_MAX, mtqp_proto.h.) */
/* Failed TRACKs per client: a burst of FAIL_BURST, then one per
 * FAIL_REFILL seconds (README), counted over all the client's sessions;
 * over it the answer (same bytes) waits for the client's next slot. */
#define MTQP_SERVER_FAIL_BURST 10
#define MTQP_SERVER_FAIL_REFILL 6
/* Output queued to a slow client before the session is closed. */
#define MTQP_SERVER_OUTPUT_MAX (32 * 1024 * 1024)
/* A TRACK waits at most this long (milliseconds) for the store to have
 * applied the journal and answer; then -TEMP (a hung or lagging store). */
#define MTQP_SERVER_TRACK_DEADLINE 3000
/* A TLS handshake after STARTTLS must be done this long after the +OK
 * (seconds); then the connection is closed. */
#define MTQP_SERVER_HANDSHAKE_TIMEOUT 60
/* RFC 3887 §2.4: a chaining server "MUST respond within 2 minutes"; we
 * bound the chain itself a little below that. */
#define MTQP_SERVER_CHAIN_TIMEOUT 100

/* Binds every mtqp_listen address of conf (call as root, before dropping
 * privileges); accepts nothing yet.  tls_server (may be NULL) enables
 * STARTTLS.  conf and tls_server must outlive the server.  Returns NULL
 * with err set. */
struct mtqp_server *mtqp_server_new(struct event_base *base,
    const struct conf *conf, SSL_CTX *tls_server, char *err, size_t errsize);

/* What the server reads from, made after the privilege drop: the queue
 * (the store's health and queue_store_wait, read your writes; may be
 * NULL), the store reader (TRACK's lookups off the loop), and for
 * firewall mode the resolver and the outbound TLS context. */
struct queue;
struct store_reader;
struct dns;
struct mtqp_server_deps {
	struct queue *queue;
	struct store_reader *reader;
	struct dns *dns;
	SSL_CTX *tls_client;
};

/* Starts accepting connections; deps is copied (what it points to must
 * outlive the server). */
void mtqp_server_start(
    struct mtqp_server *s, const struct mtqp_server_deps *deps);

/* SIGTERM: stops accepting and closes every session (a session waiting on
 * a chained TRACK is closed too).  Returns the number of sessions still
 * open (always 0: closing is immediate). */
size_t mtqp_server_stop(struct mtqp_server *s);

/* Frees the server and closes whatever is still open.  Accepts NULL. */
void mtqp_server_free(struct mtqp_server *s);

/* Counters since mtqp_server_new, for /metrics: sessions open now and
 * TRACK answers by result (enum mtqp_track_result of mtqp_proto.h). */
#define MTQP_SERVER_RESULTS 6
struct mtqp_server_stats {
	size_t sessions_open;
	uint64_t track[MTQP_SERVER_RESULTS];
};
void mtqp_server_stats(
    const struct mtqp_server *s, struct mtqp_server_stats *out);

/*
 * The pure parts of the server, exported for tests/unit/test_mtqp_answer.c
 * (no I/O, no logging, no global state).
 */

/* The failed-TRACK limit's table (common/ratelimit.h; embedded, zero it
 * to start). */
#define MTQP_SERVER_RATE_KEY_LEN 9
#define MTQP_SERVER_RATE_ENTRIES RATELIMIT_ENTRIES
struct mtqp_server_rate {
	struct ratelimit rl;
};

/* The client key of sa: 4 and the address for IPv4 and IPv4-mapped IPv6
 * (::ffff:a.b.c.d), 6 and the /64 for other IPv6, zero-padded to
 * MTQP_SERVER_RATE_KEY_LEN.  Returns 0, or -1 for another family. */
int mtqp_server_rate_key(const struct sockaddr *sa, unsigned char *key_out);

/* Counts a failed TRACK of client sa at now (milliseconds, monotonic) and
 * returns the milliseconds to wait before answering it: 0 for the first
 * MTQP_SERVER_FAIL_BURST, then one slot per MTQP_SERVER_FAIL_REFILL
 * seconds shared by every session of the client, each call taking the
 * next one (ratelimit_take(), with its table rules: fail closed when
 * full). */
int64_t mtqp_server_rate_fail(
    struct mtqp_server_rate *r, const struct sockaddr *sa, int64_t now);

/* 1 if "dns" name v is one of hide (ASCII case-insensitive, trailing
 * dots ignored), else 0. */
int mtqp_server_hidden(const char *v, const char *const *hide, size_t nhide);

/* Error codes of mtqp_server_part() and mtqp_server_rewrite(). */
enum mtqp_server_part_error {
	MTQP_SERVER_PART_OK = 0,
	MTQP_SERVER_PART_NO_RCPT, /* no recipient, or over TSTATUS_RCPT_MAX */
	MTQP_SERVER_PART_BAD_ADDRESS, /* a stored "type;value" is malformed */
	MTQP_SERVER_PART_BAD_ACTION, /* a stored action is unknown */
	MTQP_SERVER_PART_GENERATE, /* tstatus_generate() refused: see terr */
	MTQP_SERVER_PART_NOMEM,
};

/*
 * Appends the message/tracking-status body of one stored message to out:
 * the store record -> RFC 3886 mapping.
 *   - Reporting-MTA: dns; m->reporting_mta (else hostname).
 *   - queued and delayed -> "delayed" (class 4, default 4.0.0);
 *     delivered, transferred, expanded -> class 2 (default 2.0.0);
 *     relayed -> always 2.1.9 (RFC 3886 §3.3.4); failed -> class 4 or 5
 *     (default 5.0.0).  A stored status that does not fit is replaced by
 *     the default, and X.1.9 only ever goes with relayed.
 *   - Remote-MTA and Last-Attempt-Date only after an attempt
 *     (last_attempt != 0; RFC 3886 §3.3.5, §3.3.6).
 *   - Will-Retry-Until only for delayed while the message is queued
 *     (RFC 3886 §3.3.7).
 *   - Original-Recipient from the ORCPT, else the RCPT address (P15).
 * Returns 0, or -1 with *err_out set (and *terr_out for
 * MTQP_SERVER_PART_GENERATE); out is then left as it was.
 */
int mtqp_server_part(const struct store_msg *m, const char *hostname,
    struct buf *out, enum mtqp_server_part_error *err_out,
    enum tstatus_error *terr_out);

/*
 * Firewall mode: appends part p, rewritten, as a message/tracking-status
 * body to out.
 *   - relay (NULL or p->nrcpt flags): a flagged "transferred" block
 *     becomes "relayed" with Status 2.1.9 (P11: the next hop did not
 *     answer in time; "passed on, but no further information").
 *   - hide (NULL or nhide names): a "dns" Reporting-MTA or Remote-MTA
 *     whose name is one of them (ASCII case-insensitive, trailing dot
 *     ignored) is renamed to me, as in RFC 3887 Example #12; with
 *     hide_all every "dns" name is.
 * Returns 0, or -1 with *err_out (and *terr_out) set.
 */
int mtqp_server_rewrite(const struct tstatus *p, const unsigned char *relay,
    const char *const *hide, size_t nhide, int hide_all, const char *me,
    struct buf *out, enum mtqp_server_part_error *err_out,
    enum tstatus_error *terr_out);

/* English text for e, never NULL. */
const char *mtqp_server_part_strerror(enum mtqp_server_part_error e);

struct conf;

/*
 * Firewall mode: may the chain contact a hop?  Asked with sa NULL for a
 * name (the host a Remote-MTA names, an SRV target; "[ip]" and bare
 * addresses are literals), then with sa for every address before
 * connecting.  via is the address of the server whose answer named the
 * hop, NULL when our own record named it.
 *
 * With mtqp_chain_hosts set, the list is the rule:
 *   - a literal must be inside a listed [ip] or network;
 *   - a name must be listed by name when the list has names (ASCII
 *     case-insensitive, a trailing dot ignored); when the list has only
 *     addresses, any name may be looked up;
 *   - every address connected to must be inside a listed [ip] or network
 *     when the list has any (a listed name that resolves outside them is
 *     not contacted); with names only, a listed name's addresses are
 *     not checked.
 * Unset (the default), an outside server cannot steer us inside: a hop
 * named by an answer from a globally routable address is contacted only
 * at globally routable addresses; hops named by our own records or by
 * servers at internal addresses (loopback, RFC 1918, RFC 6598, link-local,
 * ULA, and the other special-purpose ranges of RFC 6890) may be anywhere.
 *
 * Returns 1 (allowed) or 0, with *why_out ("mtqp_chain_hosts" or
 * "outside-to-internal") when refused.
 */
int mtqp_server_chain_allowed(const struct conf *c, const char *name,
    const struct sockaddr *sa, const struct sockaddr *via,
    const char **why_out);

/* 1 if sa is not globally routable (the ranges above), else 0. */
int mtqp_server_internal(const struct sockaddr *sa);

#endif /* MSGTRK_MTQP_SERVER_H */
