/*
 * netio: the network layer under every msgtrkd listener (SMTP, MTQP, and
 * the HTTP and SMTPS listeners to come).
 *
 * A struct netio is one server's set of listeners with what they share:
 *   - an overall cap and a per-client-address cap on open connections
 *     (the addresses are counted in a hash table: O(1) per accept);
 *   - pacing: at most NETIO_ACCEPT_BURST accepts per turn of the event
 *     loop, so a connection flood cannot starve open sessions (libevent's
 *     evconnlistener accepts until the backlog is empty; nginx bounds it
 *     with "multi_accept off");
 *   - the refusal line for a connection over a cap, written with a
 *     lingering close so it reaches a client that already pipelined;
 *   - TLS: STARTTLS on any connection, and implicit TLS (TLS from the
 *     first byte, SMTPS port 465, HTTPS) for listeners added with
 *     NETIO_LISTEN_TLS.
 *
 * A struct netio_conn is one accepted connection: a socket bufferevent,
 * and once TLS is on, an OpenSSL filter over it.  It offers:
 *   - output limits measured at the socket level: netio_conn_output_len()
 *     counts what waits above the TLS filter and what waits below it (the
 *     filter encrypts at once into the socket bufferevent, where a peer
 *     that does not read leaves the backlog), and the write callback says
 *     when that backlog is gone, TLS or not;
 *   - a handshake deadline (netio_opts.handshake_timeout) for STARTTLS and
 *     implicit TLS, kept by netio's own timer: a handshake that never
 *     finishes ends with NETIO_HANDSHAKE_TIMEOUT whatever the peer does;
 *   - idle timers (netio_conn_set_timeout);
 *   - close with linger (netio_conn_close): the output is flushed, then
 *     under TLS a close_notify, then FIN (shutdown SHUT_WR), then what the
 *     peer still sends is read and dropped until its EOF or
 *     NETIO_DRAIN_SECONDS.  Closing a socket that holds unread input makes
 *     the kernel send a RST, which destroys replies the peer has not read
 *     yet (a 421 above all).  netio owns the connection from then on.
 *
 * evhttp (libevent's HTTP server) and netio.  evhttp creates each
 * connection's bufferevent through the callback of evhttp_set_bevcb(),
 * then gives it the accepted socket with bufferevent_setfd().  A netio
 * makes that bufferevent: netio_bev_new(n, -1, tls) returns a plain
 * socket bufferevent, or with tls a socket-based OpenSSL bufferevent in
 * accepting state on the server's SSL_CTX.  Socket-based means OpenSSL
 * writes to the socket itself: the bufferevent's output buffer is the
 * socket-level backlog, so a limit evhttp applies to it (and its
 * timeouts) holds under TLS too.  So:
 *
 *	static struct bufferevent *
 *	http_bevcb(struct event_base *base, void *arg)
 *	{
 *		return netio_bev_new(arg, -1, is_https);
 *	}
 *	...
 *	evhttp_set_bevcb(http, http_bevcb, n);
 *
 * libevent 2.1's evhttp accepts on listeners it owns and has no public
 * call that takes an already accepted socket, so netio's accept-time caps
 * cannot sit in front of it.  Its caller applies the same table by hand:
 * netio_admit() when evhttp first shows a connection (its first request,
 * with evhttp_connection_get_peer()), netio_release() from
 * evhttp_connection_set_closecb(); and it makes its listeners here
 * (netio_listen() with NETIO_LISTEN_EXTERNAL returns the evconnlistener
 * for evhttp_bind_listener(), started and stopped with the others).  With
 * libevent 2.2, evhttp_set_newreqcb() is the place for netio_admit().
 *
 * Everything runs on the event loop's thread.
 */
#ifndef MSGTRK_NETIO_H
#define MSGTRK_NETIO_H

#include <stddef.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

/* listen(2) backlog of each listener. */
#define NETIO_BACKLOG 511
/* Accepts per listener set and turn of the event loop. */
#define NETIO_ACCEPT_BURST 64
/* A caller that stops producing while netio_conn_output_len() is above
 * a limit of at least this gets a write callback once it is all handed
 * to the kernel (under TLS netio watches for that only past this much). */
#define NETIO_OUTPUT_LIMIT_MIN (16 * 1024)
/* Lingering close: how long a closed connection reads and drops what the
 * peer still sends after our FIN. */
#define NETIO_DRAIN_SECONDS 2
/* Refused connections lingering (their refusal line on its way) at a time
 * per netio; past it a refused connection is closed at once. */
#define NETIO_REFUSED_MAX 64

struct conf_addr;
struct netio;
struct netio_conn;

struct netio_opts {
	/* Component name in netio's log lines ("smtp": "- smtp refused
	 * reason=sessions sessions=N"). */
	const char *name;
	size_t max_conns; /* open connections, refused beyond; 0: none */
	size_t max_per_addr; /* per client address; 0: no limit */
	/* Written (CRLF included) to a plaintext connection over a cap
	 * before it is closed; NULL: closed without a word.  Copied. */
	const char *busy_line;
	/* For netio_conn_starttls() and NETIO_LISTEN_TLS; NULL: no TLS. The
	 * caller keeps it alive as long as the netio. */
	SSL_CTX *tls;
	/* Seconds a TLS handshake may take (STARTTLS or implicit TLS). */
	int handshake_timeout;
};

/* Called for every connection accepted within the caps (for implicit TLS,
 * before the handshake: what it writes waits for it).  The callee owns c:
 * it sets the callbacks (netio_conn_setcb) and ends with
 * netio_conn_close() or netio_conn_abort(). */
typedef void (*netio_accept_fn)(struct netio_conn *c, void *arg);

/* Makes a listener set on base (o is copied).  Returns NULL on ENOMEM. */
struct netio *netio_new(struct event_base *base, const struct netio_opts *o,
    netio_accept_fn accept, void *arg);

/* Listener flags. */
#define NETIO_LISTEN_TLS 0x01 /* implicit TLS: a handshake first */
#define NETIO_LISTEN_EXTERNAL 0x02 /* accepts for someone else (evhttp) */

/* Binds and listens on sa (call as root for a low port); accepts nothing
 * before netio_start().  The listener is returned in *l_out (l_out may be
 * NULL).  With NETIO_LISTEN_EXTERNAL it is for evhttp_bind_listener(),
 * which sets its callback and owns it from then on: netio enables it in
 * netio_start() and disables it in netio_stop() (call that before
 * evhttp_free()), and never frees it.  Returns 0, or -1 with errno set
 * (EINVAL: NETIO_LISTEN_TLS without opts.tls) and err set to
 * "<name>_listen <host> port <port>: <reason>". */
int netio_listen(struct netio *n, const struct sockaddr *sa, socklen_t salen,
    int flags, struct evconnlistener **l_out, char *err, size_t errsize);

/* netio_listen() (no flags) on each of the count addresses of a
 * configuration list (smtp_listen, mtqp_listen).  Returns 0, or -1 with
 * err set at the first that fails. */
int netio_listen_conf(struct netio *n, const struct conf_addr *a, size_t count,
    char *err, size_t errsize);

/* Starts accepting. */
void netio_start(struct netio *n);

/* Stops accepting for good: the listeners are closed, refused
 * connections still lingering are closed.  Open connections stay. */
void netio_stop(struct netio *n);

/* Connections open: the callers' and those netio is closing. */
size_t netio_count(const struct netio *n);

/* Frees n and every connection left (a caller must not use a connection
 * it has not closed or aborted after this).  Accepts NULL. */
void netio_free(struct netio *n);

/* The per-address table, for connections netio did not accept (evhttp,
 * above).  netio_admit() counts one for sa's host and returns 0, or
 * returns -1 (nothing counted) when a cap is reached, logging the
 * refusal.  netio_release() undoes one netio_admit(). */
int netio_admit(struct netio *n, const struct sockaddr *sa);
void netio_release(struct netio *n, const struct sockaddr *sa);

/* A bufferevent for an accepted socket fd (-1: set later with
 * bufferevent_setfd(), as evhttp does), plain or, with tls, a socket-based
 * OpenSSL bufferevent in accepting state on opts.tls.  It owns fd
 * (BEV_OPT_CLOSE_ON_FREE).  Returns NULL on failure (errno EINVAL: tls
 * without opts.tls). */
struct bufferevent *netio_bev_new(struct netio *n, evutil_socket_t fd, int tls);

/* Events of a connection (netio_conn_cb.event). */
enum netio_event {
	NETIO_EOF = 1, /* the peer closed */
	NETIO_ERROR, /* a socket error */
	NETIO_TLS_ERROR, /* TLS failed: the handshake or a record */
	NETIO_TIMEOUT, /* nothing came for the idle timeout */
	NETIO_TIMEOUT_WRITE, /* the peer took nothing for the idle timeout */
	NETIO_TLS_READY, /* the handshake is done */
	/* The handshake did not finish in opts.handshake_timeout: the
	 * callee must abort (nothing can be said to the peer). */
	NETIO_HANDSHAKE_TIMEOUT,
};

/* What a connection calls back.  Any may be NULL.  A callback may close
 * or abort the connection. */
struct netio_conn_cb {
	void (*read)(struct netio_conn *c, void *arg); /* input came */
	/* Everything written was handed to the kernel (under TLS: after the
	 * output passed NETIO_OUTPUT_LIMIT_MIN, see there). */
	void (*write)(struct netio_conn *c, void *arg);
	void (*event)(struct netio_conn *c, enum netio_event ev, void *arg);
};

void netio_conn_setcb(
    struct netio_conn *c, const struct netio_conn_cb *cb, void *arg);

/* The client's address, and as text ("127.0.0.1", "::1"); valid as long
 * as c. */
const struct sockaddr *netio_conn_addr(const struct netio_conn *c);
const char *netio_conn_addrtext(const struct netio_conn *c);

/* What came and was not consumed yet: the caller drains it. */
struct evbuffer *netio_conn_input(struct netio_conn *c);

/* The bufferevent the caller reads and writes (the TLS filter once TLS is
 * on), for bufferevent_enable()/disable()/set_timeouts() and its
 * buffers; never set its callbacks or free it.  Valid until
 * netio_conn_starttls(), close or abort. */
struct bufferevent *netio_conn_bev(struct netio_conn *c);

/* Output not yet handed to the kernel: above the TLS filter and below it.
 */
size_t netio_conn_output_len(const struct netio_conn *c);

/* Queues n octets.  Returns 0 or -1 (ENOMEM). */
int netio_conn_write(struct netio_conn *c, const void *data, size_t n);

/* Moves all of buf to the peer.  On a plaintext connection with nothing
 * queued it is written to the socket at once: through the bufferevent each
 * write would cost an epoll_ctl to watch for EV_WRITE and another to stop
 * (19 of the ~64 system calls per SMTP message in issue 5's count).  What
 * the socket does not take, and everything under TLS, is queued after
 * what is already queued.  Returns 0 or -1 (ENOMEM). */
int netio_conn_write_buffer(struct netio_conn *c, struct evbuffer *buf);

/* Idle timer, seconds (0: none): NETIO_TIMEOUT when nothing was read for
 * that long while reading, NETIO_TIMEOUT_WRITE when output waited that
 * long without the peer taking any.  Kept across STARTTLS; not running
 * during a handshake (the handshake deadline is). */
void netio_conn_set_timeout(struct netio_conn *c, int seconds);

/* Input the connection reads ahead at most (its read high watermark; 0:
 * no limit).  Kept across STARTTLS. */
void netio_conn_set_read_max(struct netio_conn *c, size_t max);

/* Starts the server side of a TLS handshake (RFC 3207, RFC 3887 §6) on
 * opts.tls, after the caller queued its "go ahead" reply (it is sent in
 * plaintext, before the handshake).  Any input not consumed yet is
 * discarded: RFC 3207 §4.2, no plaintext may survive the upgrade (the
 * caller refuses a pipelined STARTTLS before it gets here).  The
 * connection reports NETIO_TLS_READY, NETIO_TLS_ERROR or
 * NETIO_HANDSHAKE_TIMEOUT.  Returns 0, or -1 with errno set (EINVAL: no
 * TLS configured, or TLS already on; ENOMEM). */
int netio_conn_starttls(struct netio_conn *c);

/* 1 once a handshake completed on c, else 0. */
int netio_conn_tls(const struct netio_conn *c);

/* 1 while a handshake is running. */
int netio_conn_handshaking(const struct netio_conn *c);

/* The TLS session (NULL without TLS), for its version and cipher. */
SSL *netio_conn_ssl(struct netio_conn *c);

/* Closes with linger: stops reading, flushes what is queued for at most
 * seconds (then gives up), sends close_notify under TLS, FIN, then drains
 * the peer's input for NETIO_DRAIN_SECONDS.  netio owns and frees c: the
 * caller must not use it after this call.  A connection whose handshake
 * is still running is aborted. */
void netio_conn_close(struct netio_conn *c, int seconds);

/* Closes at once (nothing more can or need be said). */
void netio_conn_abort(struct netio_conn *c);

#endif /* MSGTRK_NETIO_H */
