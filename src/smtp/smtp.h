/*
 * smtp: msgtrkd's ESMTP server (RFC 5321) with PIPELINING (RFC 2920),
 * SIZE (RFC 1870), 8BITMIME (RFC 6152), ENHANCEDSTATUSCODES (RFC 2034),
 * DSN (RFC 3461), MTRK (RFC 3885) and STARTTLS (RFC 3207).
 *
 * A component with explicit inputs: the event loop, the configuration
 * (hostname, smtp_listen, submission_listen, submissions_listen,
 * submission_track, smtp_timeout, max_message_size, local_domains,
 * relay_networks, mtrk_*_timeout, queue_lifetime), the TLS context, and
 * the hooks below for what a session needs from the rest of the daemon
 * (recipient checks, the store's health, the queue, authentication and
 * sender rules).  It knows nothing else of the daemon;
 * src/msgtrkd/wire_smtp.c implements the hooks.
 *
 * Submission (RFC 6409, PRODUCT.md "Submission and automatic tracking"):
 * on submission_listen (STARTTLS) and submissions_listen (implicit TLS,
 * RFC 8314) EHLO offers AUTH PLAIN LOGIN (RFC 4954) inside TLS only, MAIL
 * needs AUTH (530 5.7.0) and a sender the login may use (553 5.7.1), an
 * authenticated client may relay anywhere, Date: and Message-ID: are added
 * when missing, Received: says "with ESMTPSA" (RFC 3848) without the
 * login, and with submission_track a message without MTRK is made
 * trackable: a unique ENVID when it has none, a fresh secret kept for the
 * login (queue_msg.secret), "250 2.0.0 Ok: queued as <id>, tracking
 * <envid>".  smtp_listen (port 25) never offers AUTH (503 5.5.1).
 *
 * Files: smtp.c (listeners through netio, a session's connection, back-
 * pressure and shutdown), smtp_session.c (the session itself: a command
 * table and state machine fed with input and producing replies, without
 * sockets; tests/unit/test_smtp_session.c drives it).
 */
#ifndef MSGTRK_SMTP_H
#define MSGTRK_SMTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <openssl/ssl.h>

struct conf;
struct event_base;
struct queue_msg;
struct smtp_server;

/* Limits on what a client controls, beyond the per-line limits of
 * libmsgtrk.  RFC 5321 §4.5.3.1.8: at least 100 recipients. */
#define SMTP_RCPT_MAX 1000
#define SMTP_ERRORS_MAX 20 /* then 421 4.7.0 and close */
#define SMTP_SESSIONS_MAX 10000 /* then 421 4.7.0 at connect */
#define SMTP_SESSIONS_PER_ADDR_MAX 100
/* The idle timer is smtp_timeout (default 5 minutes, RFC 5321
 * §4.5.3.2.7), restarted by every byte.  Against clients that send a byte
 * just before it expires (slowloris), deadlines as Postfix's
 * smtpd_per_record_deadline and smtpd_min_data_rate: a command line must
 * be complete smtp_timeout after its first byte, and DATA smtp_timeout
 * after its 354 plus one second per SMTP_MIN_DATA_RATE octets received.
 * A TLS handshake must be done smtp_timeout after the 220 to STARTTLS
 * (PRODUCT.md); then the connection is closed. */
#define SMTP_MIN_DATA_RATE 500
/* The DATA deadline's allowance for size is capped: without a cap a 50
 * MiB body would buy about 29 hours. */
#define SMTP_DATA_RATE_CAP 3600

/* What a local recipient check says (smtp_hooks.local_rcpt). */
enum smtp_rcpt_check {
	SMTP_RCPT_OK,
	SMTP_RCPT_UNKNOWN, /* 550 5.1.1 User unknown */
	SMTP_RCPT_NOT_ALLOWED, /* 550 5.1.3 the mailbox name cannot exist */
};

/* Which listener a session came from. */
enum smtp_mode {
	SMTP_MODE_RELAY, /* smtp_listen: never AUTH */
	SMTP_MODE_SUBMISSION, /* submission_listen: STARTTLS, then AUTH */
	SMTP_MODE_SUBMISSIONS, /* submissions_listen: implicit TLS, AUTH */
};

/* Failed AUTH attempts (535) a session may make; the last one's 535 is
 * followed by 421 4.7.0 and the close.  The delay between them grows
 * with the client address's failures (src/auth's penalty). */
#define SMTP_AUTH_FAILURES_MAX 3

/* What an authentication check says (smtp_hooks.auth_start). */
enum smtp_auth_result {
	SMTP_AUTH_OK, /* 235 2.7.0; login is the canonical login */
	SMTP_AUTH_FAIL, /* 535 5.7.8 */
	SMTP_AUTH_TEMP, /* 454 4.7.0 */
};
typedef void (*smtp_auth_done)(
    void *arg, enum smtp_auth_result result, const char *login);

/* Completion of smtp_hooks.submit: rc 0 (durable) or -1 with err an errno
 * value (ENOSPC, EDQUOT, EFBIG: 452 4.3.1; others: 451 4.3.0). */
typedef void (*smtp_submit_done)(void *arg, int rc, int err);

struct buf;

/*
 * A body on its way to the queue while DATA arrives (the queue's spool,
 * queue.h): the session appends content to buf() and calls push() after
 * every append; the spool writes whole chunks to disk, so DATA is never
 * held whole in memory.  busy(): stop reading until ready() is called.
 * error(): 0, or why the spool failed (ENOBUFS: over the memory budget,
 * 451 4.3.1; ENOSPC, EDQUOT, EFBIG: 452 4.3.1; others 451 4.3.0), after
 * which content is dropped and the message refused at its end.
 */
struct smtp_spool_ops {
	void *(*open)(void *arg); /* NULL: out of memory */
	struct buf *(*buf)(void *sp);
	int (*push)(void *sp);
	int (*busy)(void *sp);
	void (*on_ready)(void *sp, void (*ready)(void *), void *ready_arg);
	int (*error)(void *sp);
	void (*close)(void *sp); /* abandon (a message not submitted) */
};

/* What a session needs from the rest of the daemon.  arg is the
 * hooks_arg given to smtp_server_new().  All are required but spool
 * (NULL: bodies stay in memory, for tests). */
struct smtp_hooks {
	/* RCPT for a local domain, addr "local@domain" as received (quoted
	 * local parts with their quotes), never <Postmaster>. */
	enum smtp_rcpt_check (*local_rcpt)(void *arg, const char *addr);
	/* 1 while the tracking store is failing: MAIL with MTRK gets 455
	 * 4.3.0 (digest mtrk-rfc3885 §10: refuse rather than accept
	 * untracked). */
	int (*store_failed)(void *arg);
	/* Writes a fresh queue id (QUEUE_ID_LEN characters and a NUL). */
	void (*new_id)(void *arg, char *qid_out);
	/* Makes m durable with its body: n iovecs (valid until done is
	 * called), then what spool holds (may be NULL; the queue takes it
	 * from the call on, also on failure).  done may run before submit
	 * returns.  From the call on the queue owns m when rc is 0.
	 * Returns 0, or -1 with errno set (done is then never called and m
	 * is still the caller's). */
	int (*submit)(void *arg, struct queue_msg *m, const struct iovec *body,
	    int n, void *spool, smtp_submit_done done, void *done_arg);
	/* m was made durable (the queue owns it): schedule its delivery. */
	void (*queued)(void *arg, struct queue_msg *m);
	/* Frees a message the queue never took. */
	void (*msg_free)(void *arg, struct queue_msg *m);
	const struct smtp_spool_ops *spool;
	/* Authentication (submission listeners only; NULL: none there is
	 * offered).  auth_start checks login and password (copied: the
	 * session wipes its own at once) for the client at client_addr
	 * inside TLS, and calls done(done_arg, result, login) later on the
	 * loop, never inside the call, login being the canonical login
	 * (AUTH_OK; valid during the call).  Returns a handle for
	 * auth_cancel (done never comes after it), or NULL (454 4.7.0). */
	void *(*auth_start)(void *arg, const char *login, const char *password,
	    const char *client_addr, smtp_auth_done done, void *done_arg);
	void (*auth_cancel)(void *arg, void *req);
	/* 1 if login may use the reverse-path from ("" for <>) as MAIL
	 * FROM (sender_logins), else 0 (553 5.7.1). */
	int (*sender_allowed)(void *arg, const char *login, const char *from);
};

/* Binds every smtp_listen, submission_listen and submissions_listen
 * address of conf (call as root, before dropping privileges); accepts
 * nothing yet.  tls (may be NULL) enables STARTTLS and is needed for
 * submissions_listen (implicit TLS).  conf, tls and hooks must outlive
 * the server.  Returns NULL with err set. */
struct smtp_server *smtp_server_new(struct event_base *base,
    const struct conf *conf, SSL_CTX *tls, const struct smtp_hooks *hooks,
    void *hooks_arg, char *err, size_t errsize);

/* Starts accepting connections. */
void smtp_server_start(struct smtp_server *s);

/* SIGTERM: stops accepting, answers 421 to sessions between commands and
 * closes them; a session whose message is being committed gets its reply
 * first; a TLS handshake in progress is cut.  Returns the number of
 * connections still open (the caller runs the loop until it reaches 0,
 * bounded). */
size_t smtp_server_stop(struct smtp_server *s);

/* Counters since smtp_server_new, for /metrics (every listener set:
 * port 25 and submission). */
struct smtp_server_stats {
	size_t sessions_open; /* connections open now */
	uint64_t sessions; /* connections accepted within the caps */
	uint64_t accepted; /* messages made durable (250 after DATA) */
	/* Replies sent, by class: 2xx, 3xx, 4xx, 5xx (a multi-line reply
	 * counts once; the 421 of a refused connection is netio's). */
	uint64_t replies[4];
};
void smtp_server_stats(
    const struct smtp_server *s, struct smtp_server_stats *out);

/* Frees the server and closes whatever is still open.  No commit may be
 * in flight (the daemon stops the queue, which runs every callback,
 * first).  Accepts NULL. */
void smtp_server_free(struct smtp_server *s);

#endif /* MSGTRK_SMTP_H */
