/*
 * mtqp_proto: the protocol of one MTQP session (RFC 3887), without I/O
 * (mtqp_server.c keeps the connection, this file what is said on it).
 *
 * The session is a command table, { verb, check, proceed } as in
 * OpenSMTPD's smtp_session.c: the check decides whether the command may
 * run now and answers it when not (-BAD, -ERR); the proceed runs it.
 * Lines go in with mtqp_proto_push() and mtqp_proto_run(); answers,
 * closing, STARTTLS, the store, the failed-TRACK limit and firewall mode
 * are reached through struct mtqp_proto_ops, which mtqp_server.c
 * implements with bufferevents and tests/unit/test_mtqp_session.c with
 * plain buffers.
 *
 * Answers go out strictly in order (RFC 3887 §8): while a TRACK answer is
 * pending (rate limit, chain) or the TLS handshake runs, the session
 * parses nothing; the server then calls mtqp_proto_wake(),
 * mtqp_proto_chained() or mtqp_proto_tls_done(), and mtqp_proto_run()
 * again.
 *
 * Logs (one line per event, "<id> mtqp <event> key=value"): bad-command,
 * starttls, track (result=found|unknown|tls-required|store-unavailable|
 * error), track-delayed, chain, chain-part, part.
 */
#ifndef MSGTRK_MTQP_PROTO_H
#define MSGTRK_MTQP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "msgtrk/buf.h"

struct conf;
struct store_msg;
struct trail_result;
struct mtqp_proto;

enum mtqp_proto_state {
	MTQP_PROTO_READY = 1, /* parsing and answering */
	MTQP_PROTO_BUSY, /* a TRACK answer is pending (delay, chain) */
	MTQP_PROTO_TLS, /* STARTTLS answered, handshake running */
	MTQP_PROTO_CLOSED, /* ops->close was called: nothing more */
};

/*
 * What the session asks of its owner.  io is the owner's argument.  None
 * of them may free the session: ops->close only records that it must end
 * (the owner frees it once the call into the session has returned).
 */
struct mtqp_proto_ops {
	/* Queues b's bytes.  Returns 0, or -1 when the session cannot take
	 * more output (it then closes with reason "output"). */
	int (*send)(void *io, const struct buf *b);
	/* The session is over: flush what was sent, then end.  reason is
	 * for the log ("quit", "errors", "commands", "output"...). */
	void (*close)(void *io, const char *reason);
	/* busy 1: stop reading (an answer is pending); 0: read again. */
	void (*busy)(void *io, int busy);
	/* A command was received (RFC 3887 §2.5: restarts the idle
	 * timer).  May be NULL. */
	void (*touch)(void *io);
	/* STARTTLS accepted ("+OK" queued, the parser's input dropped):
	 * drop the input not yet pushed (P10), start the handshake and call
	 * mtqp_proto_tls_done() when it completes.  Returns 0, or -1 when
	 * TLS could not start (the session then closes, "tls-setup"). */
	int (*starttls)(void *io);
	/* The store, off the loop: looks up decoded envid and the messages
	 * the secret opens (see lookup() in mtqp_server.c), and calls
	 * mtqp_proto_looked_up() with the result, later or from inside this
	 * call.  Returns 0 (it will), or -1 (the store cannot be asked:
	 * -TEMP). */
	int (*lookup)(void *io, const char *envid, const char *secret);
	/* 1 while the store lags the journal (queue_store_failed): TRACK
	 * gets -TEMP.  May be NULL. */
	int (*store_failed)(void *io);
	/* A failed TRACK is about to be answered: take it from the
	 * client's limit.  Returns 0 to answer now, or the milliseconds
	 * after which the owner will call mtqp_proto_wake() (the answer's
	 * turn).  May be NULL (no limit). */
	long (*fail)(void *io);
	/* Firewall mode: follow the transferred recipients of the found
	 * answer whose entity (multipart/related, unstuffed) is own.
	 * Returns 0 when started (the owner calls mtqp_proto_chained()
	 * with the result), or -1 to answer with own alone.  May be NULL. */
	int (*chain)(void *io, const char *envid, const char *secret, int tls,
	    const void *own, size_t ownlen);
};

/* The result of ops->lookup: kept >= 0 is the number of messages the
 * secret opens, msgs (n records, store_msgs_free) and ok (n flags, free)
 * given to the session; MTQP_PROTO_LOOKUP_ERROR or _TIMEOUT: the store
 * failed or did not answer in time (-TEMP).  The owner then calls
 * mtqp_proto_run() again, as after mtqp_proto_wake(). */
#define MTQP_PROTO_LOOKUP_ERROR (-1)
#define MTQP_PROTO_LOOKUP_TIMEOUT (-2)
void mtqp_proto_looked_up(struct mtqp_proto *s, int kept,
    struct store_msg *msgs, size_t n, unsigned char *ok);

/* TRACK answers by result ("result=" in the log), counted for /metrics;
 * a command that does not parse counts as bad-command. */
enum mtqp_track_result {
	MTQP_TRACK_FOUND,
	MTQP_TRACK_UNKNOWN, /* unknown envid or wrong secret (same answer) */
	MTQP_TRACK_TLS_REQUIRED,
	MTQP_TRACK_STORE_UNAVAILABLE, /* the store lags or timed out */
	MTQP_TRACK_ERROR,
	MTQP_TRACK_BAD_COMMAND,
	MTQP_TRACK_RESULTS
};

/* "found", "unknown", "tls-required", "store-unavailable", "error",
 * "bad-command"; "?" out of range. */
const char *mtqp_track_result_name(enum mtqp_track_result r);

struct mtqp_proto_params {
	const struct conf *conf; /* hostname, mtqp_* , hide_internal_hosts */
	SSL_CTX *tls_server; /* NULL: no STARTTLS */
	uint64_t id; /* for the log */
	const char *addr; /* the client's address, for the log */
	const struct mtqp_proto_ops *ops;
	void *io;
	/* MTQP_TRACK_RESULTS counters the session adds to (borrowed), or
	 * NULL. */
	uint64_t *results;
};

/* Limits on what clients control (RFC 3887 §2.5 allows them). */
#define MTQP_PROTO_ERRORS_MAX 10 /* -BAD/-ERR answers, then close */
/* Per session, then -ERR/unavailable and close: bounds one connection
 * without getting in the way of a client that keeps it open (successful
 * TRACKs need the secret; failed ones are rate-limited). */
#define MTQP_PROTO_COMMANDS_MAX 100000

/* Allocates a session (the strings in p are copied, conf, tls_server and
 * ops are borrowed).  Returns NULL on allocation failure. */
struct mtqp_proto *mtqp_proto_new(const struct mtqp_proto_params *p);

/* Frees the session (a pending answer is dropped).  Accepts NULL. */
void mtqp_proto_free(struct mtqp_proto *s);

/* Sends the greeting (RFC 3887 §3): "+OK+/MTQP" with the option list
 * (STARTTLS, "required" with mtqp_tls_required) while TLS is possible and
 * not active, else "+OK/MTQP".  Returns 0 or -1 (the owner closes). */
int mtqp_proto_greet(struct mtqp_proto *s);

/* Octets mtqp_proto_push() takes now. */
size_t mtqp_proto_room(const struct mtqp_proto *s);

/* Appends at most mtqp_proto_room() octets of client input.  Returns
 * 0, or -1 if n is over the room (nothing taken). */
int mtqp_proto_push(struct mtqp_proto *s, const void *data, size_t n);

/* Parses and answers the pushed commands, in order, while the session is
 * READY.  Returns the state afterwards: READY means every pushed octet was
 * used (push more); BUSY, TLS and CLOSED mean stop reading. */
enum mtqp_proto_state mtqp_proto_run(struct mtqp_proto *s);

enum mtqp_proto_state mtqp_proto_state(const struct mtqp_proto *s);

/* The delayed answer's turn came (after ops->fail returned 1): sends it
 * and becomes READY (ops->busy 0); call mtqp_proto_run() next. */
void mtqp_proto_wake(struct mtqp_proto *s);

/* Firewall mode: the chain's answers came back (after ops->chain
 * returned 0).  Our own parts first, then every other answer's parts in
 * path order (P16); parts holding the last hop of a recipient whose next
 * hop was not answered or not allowed become relayed 2.1.9 (P11), and
 * internal names are hidden under hide_internal_hosts.  Sends the answer
 * and becomes READY; res may be freed afterwards. */
void mtqp_proto_chained(struct mtqp_proto *s, const struct trail_result *res);

/* The TLS handshake completed (RFC 3887 §6.2): everything before is
 * forgotten (the error count too) and a new greeting, without STARTTLS,
 * is sent.  READY afterwards unless it could not be sent. */
void mtqp_proto_tls_done(struct mtqp_proto *s);

#endif /* MSGTRK_MTQP_PROTO_H */
