/*
 * smtp_session: one ESMTP session's state machine (internal to src/smtp),
 * without sockets.  The connection (smtp.c, or a unit test) feeds it the
 * client's input from an evbuffer; it answers into its output evbuffer
 * and says with each step what the connection must do next.
 *
 * Commands are a table of { verb, check, proceed } rows, as in
 * OpenSMTPD's smtp_session.c: check holds the command's sequence rule
 * (RFC 5321 §4.1.4: MAIL before HELO, RCPT before MAIL, DATA before RCPT
 * are 503 whatever their syntax), proceed does it.
 *
 * Input is taken only as far as the line reader can hold it
 * (SMTP_LINE_INPUT_MAX): the rest stays in the caller's buffer and in the
 * kernel, which is the back-pressure on a client that pipelines without
 * reading.  While a message is being committed nothing is processed, so
 * replies stay in order (RFC 2920 §3.1).
 */
#ifndef MSGTRK_SMTP_SESSION_H
#define MSGTRK_SMTP_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "smtp/smtp.h"

struct evbuffer;
struct smtp_session;

/* Output waiting for a client (the session's and the connection's)
 * before the session stops processing its commands (a client that
 * pipelines and never reads; RFC 2920 §3.1 lets a server stop reading,
 * and every reply is short, so 64 KiB is hundreds). */
#define SMTP_OUT_HIGH 65536

/* What a server's sessions share (smtp.c owns it). */
struct smtp_env {
	const struct conf *conf;
	int tls; /* STARTTLS can be offered */
	enum smtp_mode mode; /* the listener's kind */
	const struct smtp_hooks *hooks;
	void *hooks_arg;
	struct smtp_server_stats *stats; /* counters for /metrics, or NULL */
};

/* What the connection does after smtp_session_run(). */
enum smtp_step {
	SMTP_STEP_READ, /* all input consumed: wait for more */
	SMTP_STEP_WRITE, /* SMTP_OUT_HIGH reached: hand the output on */
	SMTP_STEP_WAIT, /* a commit is in flight: wake comes */
	/* STARTTLS accepted: send the output (the 220) in plaintext, then
	 * start the handshake and call smtp_session_tls_ready(). */
	SMTP_STEP_STARTTLS,
	SMTP_STEP_CLOSE, /* send the output, then close */
};

/* A session for the client at sa, with log id id (16 hex digits).  wake
 * (wake_arg) is called when a commit completes, from the hook's done
 * callback (possibly inside smtp_session_run()): the connection then runs
 * the session again.  Returns NULL on ENOMEM. */
struct smtp_session *smtp_session_new(const struct smtp_env *env,
    const struct sockaddr *sa, socklen_t salen, const char *id,
    void (*wake)(void *arg), void *wake_arg);

/* Frees s.  With a commit in flight the message is left to the queue and
 * the hook's done callback must never come (the daemon stops the queue
 * first).  Accepts NULL. */
void smtp_session_free(struct smtp_session *s);

/* The replies not yet handed on: the connection drains it. */
struct evbuffer *smtp_session_output(struct smtp_session *s);

/* Logs the connection and queues the 220 greeting. */
void smtp_session_greet(struct smtp_session *s);

/* Processes what in holds (consuming it as far as it can) until input
 * runs out, its output and the pending octets the connection still holds
 * pass SMTP_OUT_HIGH, a commit or STARTTLS starts, or the session
 * closes. */
enum smtp_step smtp_session_run(
    struct smtp_session *s, struct evbuffer *in, size_t pending);

/* The deadlines of smtp.h for what was read so far, at now: returns the
 * seconds the idle timer may run (at most smtp_timeout), or 0 when a
 * deadline has passed (421 4.4.2 queued, the session closes). */
int smtp_session_deadline(struct smtp_session *s, time_t now);

/* The idle timer expired while waiting for the client: 421 4.4.2 queued,
 * the session closes. */
void smtp_session_timeout(struct smtp_session *s);

/* The handshake after STARTTLS, or the implicit TLS handshake of an
 * SMTP_MODE_SUBMISSIONS session (which starts waiting for it, its
 * greeting queued), completed (version and cipher for the log): the
 * session goes on inside TLS, everything before forgotten. */
void smtp_session_tls_ready(
    struct smtp_session *s, const char *version, const char *cipher);

/* SIGTERM: between commands 421 4.3.2 is queued and the session closes;
 * in DATA or a commit, it closes at the next command boundary. */
void smtp_session_stop(struct smtp_session *s);

/* The client closed.  Returns 1 if the session still has something to
 * say (a commit in flight: its reply, then it closes), else 0 (logged as
 * a disconnect with reason "eof"). */
int smtp_session_eof(struct smtp_session *s);

/* The connection is gone (reason for the log: "eof", "error",
 * "tls-error", "timeout"...; logged once, unless already closing): no
 * more output.  A commit in flight still completes (smtp_session_busy);
 * an authentication check in flight is cancelled. */
void smtp_session_lost(struct smtp_session *s, const char *reason);

/* 1 while a commit is in flight. */
int smtp_session_busy(const struct smtp_session *s);

/* 1 once the session decided to close (SMTP_STEP_CLOSE). */
int smtp_session_closing(const struct smtp_session *s);

/* 1 between STARTTLS and smtp_session_tls_ready(). */
int smtp_session_handshaking(const struct smtp_session *s);

/* The log id. */
const char *smtp_session_id(const struct smtp_session *s);

#endif /* MSGTRK_SMTP_SESSION_H */
