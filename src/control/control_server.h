/*
 * control_server: msgtrkd's control socket (control_socket), what
 * "msgtrk queue flush|hold|release|delete" and "msgtrk reload" talk to,
 * like OpenSMTPD's smtpctl socket or Postfix's postqueue/postsuper.  The
 * protocol, one request a line, is msgtrk/control.h's.
 *
 * Who may use it: the socket is mode 0660, owned by the daemon's user and
 * group, and every connection is checked again with SO_PEERCRED (the
 * credentials the peer had at connect()): root, the daemon's own user,
 * or a process whose group or one of whose supplementary groups
 * (SO_PEERGROUPS, else /proc/PID/status) is the daemon's group.  Others
 * get "bad permission denied" and are closed.  A directory mode 0700 on
 * the way (data_dir is) lets only root and the daemon's user reach it:
 * for a group of operators, point control_socket elsewhere.
 *
 * Nothing here blocks the event loop: a listener and bufferevents, one
 * request a connection at a time (the next line is read once the answer
 * is written), hold/release/delete answered when delivery says the
 * change is durable.  Limits: CONTROL_SERVER_CONN_MAX connections,
 * CONTROL_REQUESTS_MAX requests and CONTROL_SERVER_ERRORS_MAX refused
 * lines a connection, CONTROL_SERVER_TIMEOUT seconds idle, and
 * the codec's line and queue-id limits.  Every action is logged:
 * "- control op=hold qid=... uid=... result=ok".
 */
#ifndef MSGTRK_CONTROL_SERVER_H
#define MSGTRK_CONTROL_SERVER_H

#include <stddef.h>
#include <sys/types.h>

struct delivery;
struct event_base;

#define CONTROL_SERVER_CONN_MAX 16
#define CONTROL_SERVER_ERRORS_MAX 10
/* Seconds without a complete request (while none is in flight), or
 * with an answer the peer does not read. */
#define CONTROL_SERVER_TIMEOUT 60
/* Answers waiting for the peer to read them; past it no request is
 * taken until they drain. */
#define CONTROL_SERVER_OUTPUT_MAX (256 * 1024)

struct control_server_deps {
	struct event_base *base;
	struct delivery *delivery;
	const char *path; /* control_socket */
	/* What SIGHUP does (main.c): reopen the log, reload routes,
	 * aliases and local_recipients.  Returns 0, or -1 with err set
	 * (then the old tables stay). */
	int (*reload)(void *arg, char *err, size_t errsize);
	void *reload_arg;
	/* Seconds idle before a connection is closed; 0: the default,
	 * CONTROL_SERVER_TIMEOUT (tests use less). */
	int timeout;
};

struct control_server;

/* Makes the socket at deps->path (mode 0660, owned by the calling
 * process's user and group: call it after the privilege drop) and starts
 * accepting on deps->base.  A socket file left there by a dead process is
 * replaced; a path that exists and is not a socket, or one where a
 * process still listens, is refused.  deps is copied (path too).
 * Returns NULL with err set ("control_socket PATH: why"). */
struct control_server *control_server_new(
    const struct control_server_deps *deps, char *err, size_t errsize);

/* Closes every connection (changes still pending in delivery are
 * forgotten: call it after delivery_free()) and removes the socket if it
 * is still the one made here.  s may be NULL. */
void control_server_free(struct control_server *s);

/* Whether gid is among the groups of a /proc/PID/status text (n octets,
 * its "Groups:" line).  Returns 1, 0, or -1 if there is no complete
 * Groups line. */
int control_server_status_has_group(const char *status, size_t n, gid_t gid);

#endif /* MSGTRK_CONTROL_SERVER_H */
