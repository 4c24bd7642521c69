/*
 * mtqp_server: msgtrkd's MTQP server (RFC 3887), on mtqp_listen.
 *
 * Uses from struct msgtrkd: conf (hostname, mtqp_*, hide_internal_hosts),
 * base, rstore (lookup_envid on the loop thread), queue
 * (queue_store_failed: TRACK answers -TEMP/unavailable while the store
 * lags the journal), tls_server (STARTTLS), tls_client and dns (firewall
 * mode), stopping.
 *
 * Sessions: greeting "+OK+/MTQP" with the option list (STARTTLS, with
 * "required" when mtqp_tls_required) or "+OK/MTQP" without options;
 * commands parsed by mtqp_cmd_* and answered in order; STARTTLS; TRACK
 * answered from the store (and, with mtqp_chain, from the next hops).
 * Unknown envid, wrong secret, no certifier and expired record give the
 * same bytes; failed TRACKs are rate-limited per client address with a
 * token bucket (over the limit, the same answer comes after a delay).
 */
#ifndef MSGTRK_MTQP_SERVER_H
#define MSGTRK_MTQP_SERVER_H

#include <stddef.h>
#include <time.h>

#include "msgtrk/buf.h"
#include "msgtrk/tstatus.h"

struct msgtrkd;
struct mtqp_server;
struct store_msg;

/* Limits on what clients control (RFC 3887 §2.5 allows them). */
#define MTQP_SERVER_SESSIONS_MAX 1000 /* then -TEMP/MTQP/unavailable */
#define MTQP_SERVER_SESSIONS_PER_ADDR_MAX 32
#define MTQP_SERVER_ERRORS_MAX 10 /* -BAD/-ERR answers, then close */
/* Per session, then -ERR/unavailable and close: bounds one connection
 * without getting in the way of a client that keeps it open (successful
 * TRACKs need the secret; failed ones are rate-limited). */
#define MTQP_SERVER_COMMANDS_MAX 100000
/* Failed TRACKs per client address: a bucket of FAIL_BURST tokens
 * refilled at one per FAIL_REFILL seconds; a failure with an empty bucket
 * is answered after FAIL_DELAY seconds (same bytes). */
#define MTQP_SERVER_FAIL_BURST 10
#define MTQP_SERVER_FAIL_REFILL 6
#define MTQP_SERVER_FAIL_DELAY 2
/* Output queued to a slow client before the session is closed. */
#define MTQP_SERVER_OUTPUT_MAX (32 * 1024 * 1024)
/* A TLS handshake after STARTTLS must be done this long after the +OK
 * (seconds); then the connection is closed. */
#define MTQP_SERVER_HANDSHAKE_TIMEOUT 60
/* RFC 3887 §2.4: a chaining server "MUST respond within 2 minutes"; we
 * bound the chain itself a little below that. */
#define MTQP_SERVER_CHAIN_TIMEOUT 100

/* Binds every mtqp_listen address (call as root, before dropping
 * privileges); accepts nothing yet.  Returns NULL with err set. */
struct mtqp_server *mtqp_server_new(
    struct msgtrkd *d, char *err, size_t errsize);

/* Starts accepting connections. */
void mtqp_server_start(struct mtqp_server *s);

/* SIGTERM: stops accepting and closes every session (a session waiting on
 * a chained TRACK is closed too).  Returns the number of sessions still
 * open (always 0: closing is immediate). */
size_t mtqp_server_stop(struct mtqp_server *s);

/* Frees the server and closes whatever is still open.  Accepts NULL. */
void mtqp_server_free(struct mtqp_server *s);

/*
 * The pure parts of the server, exported for tests/unit/test_mtqp_answer.c
 * (no I/O, no logging, no global state).
 */

/* One client address's bucket of failed-TRACK tokens.  A new bucket is
 * { MTQP_SERVER_FAIL_BURST, now }. */
struct mtqp_server_bucket {
	unsigned int tokens;
	time_t stamp; /* start of the current refill period */
};

/* Refills b for the whole periods since b->stamp (one token per
 * MTQP_SERVER_FAIL_REFILL seconds, at most MTQP_SERVER_FAIL_BURST, the
 * stamp advanced by the periods counted; a full bucket restarts at now; a
 * clock that went back refills nothing), then takes a token.  Returns 1 if a
 * token was taken, 0 if the bucket was empty (answer late). */
int mtqp_server_bucket_take(struct mtqp_server_bucket *b, time_t now);

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

#endif /* MSGTRK_MTQP_SERVER_H */
