/*
 * netio: listeners, caps, pacing, connections with STARTTLS, output
 * limits, deadlines and lingering close.  See netio.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/conf.h"
#include "common/log.h"
#include "common/net.h"
#include "common/netio.h"

/* Buckets of the per-address table at first; doubled when it holds more
 * addresses than buckets. */
#define NETIO_ADDR_BUCKETS 64

enum conn_state {
	C_OPEN, /* the caller's: plaintext or TLS established */
	C_HANDSHAKE, /* the caller's: TLS handshake running */
	C_FLUSH, /* netio's: closing, output on its way */
	C_DRAIN, /* netio's: FIN sent, reading and dropping */
};

struct netio_listener {
	struct netio *n;
	struct evconnlistener *l;
	int flags; /* NETIO_LISTEN_* */
};

/* One client address and its open connections. */
struct netio_addr {
	struct netio_addr *next;
	size_t count;
	int family;
	size_t len;
	unsigned char bytes[16];
};

struct netio_conn {
	struct netio *n;
	struct netio_conn *prev, *next; /* n->conns */
	struct bufferevent *sock; /* the socket's */
	struct bufferevent *bev; /* sock, or the TLS filter over it */
	SSL *ssl; /* the filter's, NULL without TLS */
	enum conn_state state;
	int tls; /* the handshake completed */
	int notified; /* closing: close_notify queued */
	int counted; /* in n->nconns and the address table */
	int refused; /* a refusal: in n->nrefused */
	int in_cb; /* inside a bufferevent callback: defer the free */
	int dead; /* free when the callback returns */
	int idle; /* seconds, 0: none */
	size_t read_max;
	size_t in_seen; /* input octets left after the last read callback */
	time_t deadline; /* handshake, flush or drain */
	struct event *timer; /* that deadline; also woken by the output */
	struct evbuffer_cb_entry *sock_out_cb; /* under TLS */
	int backlog; /* under TLS: output passed NETIO_OUTPUT_LIMIT_MIN */
	struct netio_conn_cb cb;
	void *arg;
	struct sockaddr_storage addr;
	char addrtext[INET6_ADDRSTRLEN];
};

struct netio {
	struct event_base *base;
	struct netio_opts o;
	char *name;
	char *busy_line;
	netio_accept_fn accept;
	void *arg;
	struct netio_listener **ls;
	size_t nls;
	/* pacing */
	struct event *resume;
	unsigned int burst; /* accepts since the last pause */
	int on; /* between netio_start() and netio_stop() */
	int stopping;
	/* caps */
	size_t nconns;
	size_t nrefused;
	struct netio_addr **tab;
	size_t nbuckets, naddrs;
	uint64_t seed;
	struct netio_conn *conns; /* every connection */
};

static void conn_readcb(struct bufferevent *bev, void *arg);
static void conn_writecb(struct bufferevent *bev, void *arg);
static void conn_eventcb(struct bufferevent *bev, short what, void *arg);
static void conn_advance(struct netio_conn *c);

/* --- the per-address table ------------------------------------------ */

static uint64_t
addr_hash(const struct netio *n, int family, const unsigned char *b, size_t len)
{
	uint64_t h = n->seed ^ ((uint64_t)family * 0x9e3779b97f4a7c15ULL);
	uint32_t w;
	size_t i;

	/* A keyed multiply-xorshift: the seed is random per netio, so a
	 * client cannot choose addresses that share a bucket. */
	for (i = 0; i + 4 <= len; i += 4) {
		memcpy(&w, b + i, 4);
		h ^= w;
		h *= 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 31;
	}
	return h;
}

/* The entry of sa's host; with create, made when missing.  NULL for a
 * family without addresses, or on ENOMEM. */
static struct netio_addr *
addr_find(struct netio *n, const struct sockaddr *sa, int create)
{
	const unsigned char *b;
	struct netio_addr *a, **slot;
	size_t len;

	if ((b = net_host_bytes(sa, &len)) == NULL || n->tab == NULL)
		return NULL;
	slot = &n->tab[addr_hash(n, sa->sa_family, b, len) & (n->nbuckets - 1)];
	for (a = *slot; a != NULL; a = a->next)
		if (a->family == sa->sa_family && a->len == len &&
		    memcmp(a->bytes, b, len) == 0)
			return a;
	if (!create || (a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->family = sa->sa_family;
	a->len = len;
	memcpy(a->bytes, b, len);
	a->next = *slot;
	*slot = a;
	n->naddrs++;
	return a;
}

/* Doubles the buckets once there are more addresses than buckets (kept
 * as it is when memory is short: the table still works). */
static void
addr_grow(struct netio *n)
{
	struct netio_addr **tab, *a, *next;
	size_t i, nb = n->nbuckets * 2, k;

	if (n->naddrs <= n->nbuckets ||
	    (tab = calloc(nb, sizeof(*tab))) == NULL)
		return;
	for (i = 0; i < n->nbuckets; i++)
		for (a = n->tab[i]; a != NULL; a = next) {
			next = a->next;
			k = addr_hash(n, a->family, a->bytes, a->len) &
			    (nb - 1);
			a->next = tab[k];
			tab[k] = a;
		}
	free(n->tab);
	n->tab = tab;
	n->nbuckets = nb;
}

static size_t
addr_count(struct netio *n, const struct sockaddr *sa)
{
	struct netio_addr *a = addr_find(n, sa, 0);

	return a != NULL ? a->count : 0;
}

static void
addr_remove(struct netio *n, struct netio_addr *a)
{
	const unsigned char *b = a->bytes;
	struct netio_addr **p;

	p = &n->tab[addr_hash(n, a->family, b, a->len) & (n->nbuckets - 1)];
	while (*p != a)
		p = &(*p)->next;
	*p = a->next;
	n->naddrs--;
	free(a);
}

/* Counts a connection from sa.  Returns 0, or -1 over a cap (*why_out
 * names it). */
static int
admit(struct netio *n, const struct sockaddr *sa, const char **why_out)
{
	struct netio_addr *a;

	if (n->o.max_conns > 0 && n->nconns >= n->o.max_conns) {
		*why_out = "sessions";
		return -1;
	}
	if (n->o.max_per_addr > 0 && addr_count(n, sa) >= n->o.max_per_addr) {
		*why_out = "sessions-per-address";
		return -1;
	}
	if ((a = addr_find(n, sa, 1)) != NULL) {
		a->count++;
		addr_grow(n);
	}
	n->nconns++;
	return 0;
}

static void
release(struct netio *n, const struct sockaddr *sa)
{
	struct netio_addr *a = addr_find(n, sa, 0);

	if (a != NULL && --a->count == 0)
		addr_remove(n, a);
	if (n->nconns > 0)
		n->nconns--;
}

int
netio_admit(struct netio *n, const struct sockaddr *sa)
{
	const char *why;

	if (admit(n, sa, &why) == -1) {
		log_info("- %s refused reason=%s sessions=%zu", n->name, why,
		    n->nconns);
		return -1;
	}
	return 0;
}

void
netio_release(struct netio *n, const struct sockaddr *sa)
{
	release(n, sa);
}

/* --- connections ---------------------------------------------------- */

static void
conn_free(struct netio_conn *c)
{
	struct netio *n = c->n;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		n->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->counted)
		release(n, (const struct sockaddr *)&c->addr);
	if (c->refused)
		n->nrefused--;
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->sock_out_cb != NULL)
		evbuffer_remove_cb_entry(
		    bufferevent_get_output(c->sock), c->sock_out_cb);
	/* The filter frees the socket bufferevent, which closes the
	 * socket, and the SSL (BEV_OPT_CLOSE_ON_FREE). */
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	free(c);
}

/* Frees c now, or when the callback it is in returns. */
static void
conn_release(struct netio_conn *c)
{
	if (c->in_cb > 0)
		c->dead = 1;
	else
		conn_free(c);
}

enum conn_cb_kind { CB_READ, CB_WRITE, CB_EVENT };

/* Calls the caller's callback of that kind (with ev for CB_EVENT), then
 * frees c if the caller closed or aborted it meanwhile.  An event nobody
 * listens to closes c (but for NETIO_TLS_READY). */
static void
conn_callback(struct netio_conn *c, enum conn_cb_kind kind, int ev)
{
	c->in_cb++;
	switch (kind) {
	case CB_READ:
		if (c->cb.read != NULL)
			c->cb.read(c, c->arg);
		break;
	case CB_WRITE:
		if (c->cb.write != NULL)
			c->cb.write(c, c->arg);
		break;
	case CB_EVENT:
		if (c->cb.event != NULL)
			c->cb.event(c, (enum netio_event)ev, c->arg);
		else if (ev != NETIO_TLS_READY)
			c->dead = 1;
		break;
	}
	c->in_cb--;
	if (c->dead && c->in_cb == 0)
		conn_free(c);
}

static void
conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct netio_conn *c = arg;

	(void)fd;
	(void)what;
	switch (c->state) {
	case C_HANDSHAKE:
		if (time(NULL) < c->deadline) {
			struct timeval tv = { c->deadline - time(NULL), 0 };

			evtimer_add(c->timer, &tv);
			return;
		}
		conn_callback(c, CB_EVENT, NETIO_HANDSHAKE_TIMEOUT);
		return;
	case C_FLUSH:
		conn_advance(c);
		return;
	case C_DRAIN:
		if (time(NULL) >= c->deadline) {
			conn_free(c);
			return;
		}
		conn_advance(c);
		return;
	case C_OPEN:
		/* Under TLS: the backlog below the filter is gone. */
		if (netio_conn_output_len(c) == 0)
			conn_callback(c, CB_WRITE, 0);
		return;
	}
}

/* Arms c's timer for its deadline (made on first use).  Returns 0 or -1.
 */
static int
conn_arm(struct netio_conn *c)
{
	time_t now = time(NULL);
	struct timeval tv = { c->deadline > now ? c->deadline - now : 0, 0 };

	if (c->timer == NULL &&
	    (c->timer = evtimer_new(c->n->base, conn_timer, c)) == NULL)
		return -1;
	return evtimer_add(c->timer, &tv);
}

/* Under TLS the socket bufferevent's callbacks are the filter's, so the
 * end of its output is seen on the buffer itself: a closing connection
 * goes on, an open one whose backlog passed NETIO_OUTPUT_LIMIT_MIN tells
 * its caller (from the loop, not from inside the buffer's change). */
static void
conn_sock_out(
    struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct netio_conn *c = arg;
	size_t len = evbuffer_get_length(buf);

	if (len > NETIO_OUTPUT_LIMIT_MIN)
		c->backlog = 1;
	if (info->n_deleted == 0 || len > 0 || c->timer == NULL)
		return;
	if (c->state == C_FLUSH ||
	    (c->state == C_OPEN && c->backlog && c->cb.write != NULL)) {
		c->backlog = 0;
		event_active(c->timer, EV_TIMEOUT, 1);
	}
}

static void
conn_apply_timeouts(struct netio_conn *c)
{
	struct timeval tv = { c->idle, 0 };

	if (c->idle > 0)
		bufferevent_set_timeouts(c->bev, &tv, &tv);
	else
		bufferevent_set_timeouts(c->bev, NULL, NULL);
}

static struct netio_conn *
conn_new(
    struct netio *n, evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
	struct netio_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		evutil_closesocket(fd);
		return NULL;
	}
	c->n = n;
	if (salen > 0 && (size_t)salen <= sizeof(c->addr))
		memcpy(&c->addr, sa, (size_t)salen);
	net_host_text((const struct sockaddr *)&c->addr, c->addrtext,
	    sizeof(c->addrtext));
	if ((c->sock = bufferevent_socket_new(
	         n->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		evutil_closesocket(fd);
		free(c);
		return NULL;
	}
	c->bev = c->sock;
	c->state = C_OPEN;
	bufferevent_setcb(c->bev, conn_readcb, conn_writecb, conn_eventcb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = n->conns;
	if (n->conns != NULL)
		n->conns->prev = c;
	n->conns = c;
	return c;
}

/* Puts the TLS filter over the socket bufferevent and starts the
 * handshake and its deadline.  Returns 0, or -1 with errno set. */
static int
conn_tls_begin(struct netio_conn *c)
{
	struct netio *n = c->n;
	struct bufferevent *tb;
	SSL *ssl;

	if (n->o.tls == NULL || c->ssl != NULL || c->state != C_OPEN) {
		errno = EINVAL;
		return -1;
	}
	if ((ssl = SSL_new(n->o.tls)) == NULL) {
		ERR_clear_error();
		errno = ENOMEM;
		return -1;
	}
	/* An idle session gives its record buffers (some 34 KiB) back. */
	SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	/* RFC 3207 §4.2: no plaintext survives the upgrade. */
	evbuffer_drain(bufferevent_get_input(c->sock),
	    evbuffer_get_length(bufferevent_get_input(c->sock)));
	bufferevent_setwatermark(c->sock, EV_READ, 0, 0);
	bufferevent_set_timeouts(c->sock, NULL, NULL);
	/* The filter encrypts into the socket bufferevent at once, whose
	 * callbacks are the filter's: the backlog below the filter, and its
	 * end, are seen on its output buffer.  (A write high watermark on
	 * it would hold the backlog above the filter, but then OpenSSL
	 * stops reading too when the peer does not read.) */
	if (c->sock_out_cb == NULL &&
	    (c->sock_out_cb = evbuffer_add_cb(
	         bufferevent_get_output(c->sock), conn_sock_out, c)) == NULL) {
		SSL_free(ssl);
		errno = ENOMEM;
		return -1;
	}
	tb = bufferevent_openssl_filter_new(n->base, c->sock, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tb == NULL) {
		SSL_free(ssl);
		bufferevent_setcb(
		    c->sock, conn_readcb, conn_writecb, conn_eventcb, c);
		errno = ENOMEM;
		return -1;
	}
	c->bev = tb;
	c->ssl = ssl;
	c->state = C_HANDSHAKE;
	bufferevent_setcb(tb, conn_readcb, conn_writecb, conn_eventcb, c);
	bufferevent_setwatermark(tb, EV_READ, 0, c->read_max);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	c->deadline = time(NULL) + n->o.handshake_timeout;
	if (conn_arm(c) == -1) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* Closing: flushes, close_notify, FIN, drain; frees c at the end. */
static void
conn_advance(struct netio_conn *c)
{
	struct evbuffer *in;
	evutil_socket_t fd;

	if (c->state == C_DRAIN) {
		in = bufferevent_get_input(c->bev);
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if (c->state != C_FLUSH)
		return;
	if (netio_conn_output_len(c) > 0) {
		if (time(NULL) >= c->deadline || conn_arm(c) == -1)
			conn_release(c); /* the peer takes nothing */
		return;
	}
	if (c->tls && !c->notified) {
		/* RFC 8446 §6.1: close_notify before closing the write
		 * side.  It goes into the socket bufferevent. */
		c->notified = 1;
		(void)SSL_shutdown(c->ssl);
		ERR_clear_error();
		if (netio_conn_output_len(c) > 0) {
			if (conn_arm(c) == -1)
				conn_release(c);
			return;
		}
	}
	if ((fd = bufferevent_getfd(c->sock)) < 0 ||
	    shutdown(fd, SHUT_WR) == -1) {
		conn_release(c);
		return;
	}
	c->state = C_DRAIN;
	in = bufferevent_get_input(c->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	c->deadline = time(NULL) + NETIO_DRAIN_SECONDS;
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	bufferevent_enable(c->bev, EV_READ);
	if (conn_arm(c) == -1)
		conn_release(c);
}

/* libevent 2.1 reads at most this much at a time from a socket
 * (EVBUFFER_MAX_READ), however much is there: a 100 KiB body took 25
 * turns of the loop, each with its epoll_wait, FIONREAD and read. */
#define NETIO_EV_READ_MAX 4096
/* What conn_read_more() reads at most without a read limit set. */
#define NETIO_READ_MORE 65536

/* A plaintext read that filled libevent's 4096 octets: what follows is
 * read now, into the same input, up to just below the read limit (the
 * high watermark the bufferevent keeps too), so the caller gets it in
 * this turn.  Nothing there (EAGAIN), the end or an error are left to the
 * bufferevent's next read, which reports them as before. */
static void
conn_read_more(struct netio_conn *c, struct evbuffer *in, size_t have)
{
	struct evbuffer_iovec v[2];
	size_t want, left;
	evutil_socket_t fd;
	ssize_t r;
	int nv, i;

	/* Below the high watermark: at it, the bufferevent would stop
	 * reading and start again once the caller took the input (two
	 * epoll_ctl calls). */
	want = c->read_max != 0 ? c->read_max - 1 : NETIO_READ_MORE;
	if (want <= have || (fd = bufferevent_getfd(c->sock)) < 0)
		return;
	want -= have;
	/* The bufferevent keeps its input's end frozen but while it
	 * reads (as libevent's own read does). */
	evbuffer_unfreeze(in, 0);
	if ((nv = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2)) <= 0) {
		evbuffer_freeze(in, 0);
		return;
	}
	for (i = 0, left = want; i < nv; i++) {
		if (v[i].iov_len > left)
			v[i].iov_len = left;
		left -= v[i].iov_len;
	}
	do
		r = readv(fd, (struct iovec *)v, nv);
	while (r == -1 && errno == EINTR);
	if (r <= 0) {
		evbuffer_commit_space(in, NULL, 0);
		evbuffer_freeze(in, 0);
		return;
	}
	/* Only the vectors the read reached, each as far as it did. */
	for (i = 0, left = (size_t)r; i < nv && left > 0; i++) {
		if (v[i].iov_len > left)
			v[i].iov_len = left;
		left -= v[i].iov_len;
	}
	evbuffer_commit_space(in, v, i);
	evbuffer_freeze(in, 0);
}

static void
conn_readcb(struct bufferevent *bev, void *arg)
{
	struct netio_conn *c = arg;
	struct evbuffer *in;
	size_t have;

	(void)bev;
	if (c->state >= C_FLUSH) {
		conn_advance(c);
		return;
	}
	in = bufferevent_get_input(c->bev);
	have = evbuffer_get_length(in);
	if (c->ssl == NULL && c->state == C_OPEN &&
	    have >= c->in_seen + NETIO_EV_READ_MAX)
		conn_read_more(c, in, have);
	c->in_cb++;
	conn_callback(c, CB_READ, 0);
	c->in_cb--;
	if (c->dead && c->in_cb == 0) {
		conn_free(c);
		return;
	}
	/* What the caller left: the next read's new octets are above it. */
	c->in_seen = evbuffer_get_length(bufferevent_get_input(c->bev));
}

static void
conn_writecb(struct bufferevent *bev, void *arg)
{
	struct netio_conn *c = arg;

	(void)bev;
	if (c->state >= C_FLUSH) {
		conn_advance(c);
		return;
	}
	/* Under TLS the filter's output drains into the socket bufferevent
	 * at once: the caller hears when that is empty (conn_sock_out). */
	if (netio_conn_output_len(c) == 0)
		conn_callback(c, CB_WRITE, 0);
}

static void
conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct netio_conn *c = arg;
	enum netio_event ev;

	(void)bev;
	if (c->state >= C_FLUSH) {
		if (what &
		    (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
			conn_release(c);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state != C_HANDSHAKE)
			return;
		c->state = C_OPEN;
		c->tls = 1;
		if (c->timer != NULL)
			evtimer_del(c->timer);
		conn_apply_timeouts(c);
		ev = NETIO_TLS_READY;
	} else if (what & BEV_EVENT_TIMEOUT)
		ev = (what & BEV_EVENT_WRITING) ? NETIO_TIMEOUT_WRITE
		                                : NETIO_TIMEOUT;
	else if (what & BEV_EVENT_ERROR)
		ev = c->ssl != NULL ? NETIO_TLS_ERROR : NETIO_ERROR;
	else if (what & BEV_EVENT_EOF)
		ev = NETIO_EOF;
	else
		return;
	conn_callback(c, CB_EVENT, ev);
}

void
netio_conn_setcb(
    struct netio_conn *c, const struct netio_conn_cb *cb, void *arg)
{
	if (cb != NULL)
		c->cb = *cb;
	else
		memset(&c->cb, 0, sizeof(c->cb));
	c->arg = arg;
}

const struct sockaddr *
netio_conn_addr(const struct netio_conn *c)
{
	return (const struct sockaddr *)&c->addr;
}

const char *
netio_conn_addrtext(const struct netio_conn *c)
{
	return c->addrtext;
}

struct evbuffer *
netio_conn_input(struct netio_conn *c)
{
	return bufferevent_get_input(c->bev);
}

struct bufferevent *
netio_conn_bev(struct netio_conn *c)
{
	return c->bev;
}

size_t
netio_conn_output_len(const struct netio_conn *c)
{
	size_t len = evbuffer_get_length(bufferevent_get_output(c->bev));

	if (c->bev != c->sock)
		len += evbuffer_get_length(bufferevent_get_output(c->sock));
	return len;
}

int
netio_conn_write(struct netio_conn *c, const void *data, size_t n)
{
	return bufferevent_write(c->bev, data, n);
}

int
netio_conn_write_buffer(struct netio_conn *c, struct evbuffer *buf)
{
	evutil_socket_t fd;

	if (c->ssl == NULL && c->state == C_OPEN &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
	    (fd = bufferevent_getfd(c->bev)) >= 0)
		(void)evbuffer_write(buf, fd); /* errors: see below */
	/* What is left, and a write error, go through the bufferevent,
	 * which reports the error as an event. */
	if (evbuffer_get_length(buf) == 0)
		return 0;
	return evbuffer_add_buffer(bufferevent_get_output(c->bev), buf);
}

void
netio_conn_set_timeout(struct netio_conn *c, int seconds)
{
	c->idle = seconds > 0 ? seconds : 0;
	if (c->state == C_OPEN)
		conn_apply_timeouts(c);
}

void
netio_conn_set_read_max(struct netio_conn *c, size_t max)
{
	c->read_max = max;
	if (c->state == C_OPEN || c->state == C_HANDSHAKE)
		bufferevent_setwatermark(c->bev, EV_READ, 0, max);
}

int
netio_conn_starttls(struct netio_conn *c)
{
	return conn_tls_begin(c);
}

int
netio_conn_tls(const struct netio_conn *c)
{
	return c->tls;
}

int
netio_conn_handshaking(const struct netio_conn *c)
{
	return c->state == C_HANDSHAKE;
}

SSL *
netio_conn_ssl(struct netio_conn *c)
{
	return c->ssl;
}

void
netio_conn_close(struct netio_conn *c, int seconds)
{
	if (c->state == C_HANDSHAKE) {
		netio_conn_abort(c);
		return;
	}
	if (c->state != C_OPEN)
		return;
	memset(&c->cb, 0, sizeof(c->cb));
	c->arg = NULL;
	c->state = C_FLUSH;
	c->deadline = time(NULL) + (seconds > 0 ? seconds : 0);
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	conn_advance(c);
}

void
netio_conn_abort(struct netio_conn *c)
{
	memset(&c->cb, 0, sizeof(c->cb));
	c->arg = NULL;
	conn_release(c);
}

/* --- listeners ------------------------------------------------------ */

static void
listeners_enable(struct netio *n, int enable)
{
	size_t i;

	for (i = 0; i < n->nls; i++) {
		if (n->ls[i]->l == NULL)
			continue;
		if ((enable ? evconnlistener_enable(n->ls[i]->l)
		            : evconnlistener_disable(n->ls[i]->l)) == -1)
			log_warnx("- %s listener %zu cannot be %s", n->name, i,
			    enable ? "enabled" : "disabled");
	}
}

static void
pace_resume(evutil_socket_t fd, short ev, void *arg)
{
	struct netio *n = arg;

	(void)fd;
	(void)ev;
	n->burst = 0;
	if (n->on)
		listeners_enable(n, 1);
}

/* After NETIO_ACCEPT_BURST accepts the listeners pause until the next
 * turn of the event loop (libevent's accept loop stops when its listener
 * is disabled). */
static void
pace_accepted(struct netio *n)
{
	struct timeval now = { 0, 0 };

	if (++n->burst < NETIO_ACCEPT_BURST || !n->on)
		return;
	listeners_enable(n, 0);
	if (evtimer_add(n->resume, &now) == -1) {
		log_warnx("- %s listener pause: evtimer_add failed", n->name);
		pace_resume(-1, 0, n);
	}
}

/* A connection over a cap: the refusal line, then a lingering close (at
 * most NETIO_REFUSED_MAX at a time, the others are closed at once). */
static void
refuse(struct netio *n, evutil_socket_t fd, const struct sockaddr *sa,
    int salen, int tls, const char *why)
{
	struct netio_conn *c;

	log_info(
	    "- %s refused reason=%s sessions=%zu", n->name, why, n->nconns);
	if (n->busy_line == NULL || tls) {
		evutil_closesocket(fd);
		return;
	}
	if (n->nrefused >= NETIO_REFUSED_MAX) {
		(void)!send(fd, n->busy_line, strlen(n->busy_line),
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		evutil_closesocket(fd);
		return;
	}
	if ((c = conn_new(n, fd, sa, salen)) == NULL)
		return;
	c->refused = 1;
	n->nrefused++;
	if (netio_conn_write(c, n->busy_line, strlen(n->busy_line)) == -1) {
		conn_free(c);
		return;
	}
	netio_conn_close(c, NETIO_DRAIN_SECONDS);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct netio_listener *nl = arg;
	struct netio *n = nl->n;
	struct netio_conn *c;
	const char *why;

	(void)l;
	pace_accepted(n);
	if (n->stopping) {
		evutil_closesocket(fd);
		return;
	}
	if (admit(n, sa, &why) == -1) {
		refuse(n, fd, sa, salen, nl->flags & NETIO_LISTEN_TLS, why);
		return;
	}
	if ((c = conn_new(n, fd, sa, salen)) == NULL) {
		release(n, sa);
		log_warnx("- %s accept failed: out of memory", n->name);
		return;
	}
	c->counted = 1;
	if ((nl->flags & NETIO_LISTEN_TLS) && conn_tls_begin(c) == -1) {
		log_warnx("- %s accept failed: tls setup", n->name);
		conn_free(c);
		return;
	}
	n->accept(c, n->arg);
}

static void
on_accept_error(struct evconnlistener *l, void *arg)
{
	struct netio_listener *nl = arg;
	int e = EVUTIL_SOCKET_ERROR();

	(void)l;
	/* EMFILE and the like: keep listening, libevent retries. */
	log_warnx("- %s accept error=\"%s\"", nl->n->name,
	    evutil_socket_error_to_string(e));
}

struct netio *
netio_new(struct event_base *base, const struct netio_opts *o,
    netio_accept_fn accept, void *arg)
{
	struct netio *n;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	n->base = base;
	n->o = *o;
	n->accept = accept;
	n->arg = arg;
	n->nbuckets = NETIO_ADDR_BUCKETS;
	if (getrandom(&n->seed, sizeof(n->seed), 0) != sizeof(n->seed))
		n->seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)n;
	if ((n->name = strdup(o->name != NULL ? o->name : "net")) == NULL ||
	    (o->busy_line != NULL &&
	        (n->busy_line = strdup(o->busy_line)) == NULL) ||
	    (n->tab = calloc(n->nbuckets, sizeof(*n->tab))) == NULL ||
	    (n->resume = evtimer_new(base, pace_resume, n)) == NULL) {
		netio_free(n);
		return NULL;
	}
	n->o.name = n->name;
	n->o.busy_line = n->busy_line;
	return n;
}

int
netio_listen(struct netio *n, const struct sockaddr *sa, socklen_t salen,
    int flags, struct evconnlistener **l_out, char *err, size_t errsize)
{
	struct netio_listener *nl = NULL, **ls;
	char host[INET6_ADDRSTRLEN];
	int e = ENOMEM;

	if ((flags & NETIO_LISTEN_TLS) && n->o.tls == NULL) {
		e = EINVAL;
		goto fail;
	}
	if ((ls = reallocarray(n->ls, n->nls + 1, sizeof(*ls))) == NULL)
		goto fail;
	n->ls = ls;
	if ((nl = calloc(1, sizeof(*nl))) == NULL)
		goto fail;
	nl->n = n;
	nl->flags = flags;
	errno = 0;
	nl->l = evconnlistener_new_bind(n->base, on_accept, nl,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE |
	        LEV_OPT_DISABLED,
	    NETIO_BACKLOG, sa, (int)salen);
	if (nl->l == NULL) {
		e = errno != 0 ? errno : EADDRNOTAVAIL;
		goto fail;
	}
	evconnlistener_set_error_cb(nl->l, on_accept_error);
	n->ls[n->nls++] = nl;
	if (l_out != NULL)
		*l_out = nl->l;
	return 0;
fail:
	free(nl);
	snprintf(err, errsize, "%s_listen %s port %d: %s", n->name,
	    net_host_text(sa, host, sizeof(host)), net_port(sa), strerror(e));
	errno = e;
	return -1;
}

int
netio_listen_conf(struct netio *n, const struct conf_addr *a, size_t count,
    char *err, size_t errsize)
{
	size_t i;

	for (i = 0; i < count; i++)
		if (netio_listen(n, (const struct sockaddr *)&a[i].ss, a[i].len,
		        0, NULL, err, errsize) == -1)
			return -1;
	return 0;
}

void
netio_start(struct netio *n)
{
	if (n == NULL || n->stopping)
		return;
	n->on = 1;
	listeners_enable(n, 1);
}

void
netio_stop(struct netio *n)
{
	struct netio_conn *c, *next;
	size_t i;

	if (n == NULL || n->stopping)
		return;
	n->stopping = 1;
	n->on = 0;
	evtimer_del(n->resume);
	listeners_enable(n, 0);
	for (i = 0; i < n->nls; i++) {
		/* An evhttp listener is evhttp's to free. */
		if (!(n->ls[i]->flags & NETIO_LISTEN_EXTERNAL))
			evconnlistener_free(n->ls[i]->l);
		n->ls[i]->l = NULL;
	}
	for (c = n->conns; c != NULL; c = next) {
		next = c->next;
		if (c->refused)
			conn_release(c);
	}
}

size_t
netio_count(const struct netio *n)
{
	return n != NULL ? n->nconns : 0;
}

void
netio_free(struct netio *n)
{
	struct netio_addr *a, *next;
	size_t i;

	if (n == NULL)
		return;
	while (n->conns != NULL)
		conn_free(n->conns);
	for (i = 0; i < n->nls; i++) {
		if (n->ls[i]->l != NULL &&
		    !(n->ls[i]->flags & NETIO_LISTEN_EXTERNAL))
			evconnlistener_free(n->ls[i]->l);
		free(n->ls[i]);
	}
	free(n->ls);
	for (i = 0; n->tab != NULL && i < n->nbuckets; i++)
		for (a = n->tab[i]; a != NULL; a = next) {
			next = a->next;
			free(a);
		}
	free(n->tab);
	if (n->resume != NULL)
		event_free(n->resume);
	free(n->name);
	free(n->busy_line);
	free(n);
}

struct bufferevent *
netio_bev_new(struct netio *n, evutil_socket_t fd, int tls)
{
	struct bufferevent *bev;
	SSL *ssl;

	if (!tls)
		return bufferevent_socket_new(
		    n->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (n->o.tls == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if ((ssl = SSL_new(n->o.tls)) == NULL) {
		ERR_clear_error();
		errno = ENOMEM;
		return NULL;
	}
	/* Socket-based: OpenSSL writes to the socket itself, so the
	 * output buffer is the socket-level backlog. */
	bev = bufferevent_openssl_socket_new(
	    n->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		SSL_free(ssl);
	return bev;
}
