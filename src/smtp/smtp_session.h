/*
 * smtp_session: one ESMTP connection of msgtrkd's SMTP server (internal
 * to src/smtp).  smtp.c accepts the connection and counts sessions;
 * smtp_session.c runs the state machine of RFC 5321 with PIPELINING,
 * STARTTLS, DSN and MTRK, and hands each message to the queue.
 */
#ifndef MSGTRK_SMTP_SESSION_H
#define MSGTRK_SMTP_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/util.h>

struct msgtrkd;
struct smtp_server;
struct smtp_session;

/* Starts a session on the accepted socket fd (which it owns from now on,
 * even on failure) for the client at sa: sends the greeting and waits for
 * commands.  Returns NULL on ENOMEM or a libevent failure (fd closed). */
struct smtp_session *smtp_session_new(struct smtp_server *srv,
    struct msgtrkd *d, evutil_socket_t fd, const struct sockaddr *sa,
    socklen_t salen);

/* SIGTERM: a session between commands gets 421 4.3.2 and is closed once
 * the reply is written; a session in DATA or waiting for its commit gets
 * its reply first and is closed at the next command boundary.  Does not
 * free s (the close completes on the event loop). */
void smtp_session_stop(struct smtp_session *s);

/* Frees s at once (the server is being freed).  No commit may be in
 * flight: the queue reads the body from s until its callback, so the
 * daemon stops the queue (which runs every callback) first.  A message
 * already handed to the queue is left to it. */
void smtp_session_free(struct smtp_session *s);

/* The client address of s (valid as long as s). */
const struct sockaddr *smtp_session_addr(const struct smtp_session *s);

/* Called by the session when it is gone (smtp.c unlinks and counts). */
void smtp_server_session_gone(struct smtp_server *srv, struct smtp_session *s);

/* Called by the session once it is set up (smtp.c links and counts). */
void smtp_server_session_add(struct smtp_server *srv, struct smtp_session *s);

/* The server's doubly linked list of open sessions runs through this
 * link inside each session (smtp.c maintains it). */
struct smtp_session_link {
	struct smtp_session *prev, *next;
};

struct smtp_session_link *smtp_session_link(struct smtp_session *s);

#endif /* MSGTRK_SMTP_SESSION_H */
