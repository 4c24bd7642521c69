/*
 * test_netio: the network layer (src/common/netio.c) on loopback, in one
 * thread: the test's clients are non-blocking sockets (and OpenSSL client
 * sessions) stepped between turns of the event loop.
 *
 * Covered: the overall and per-address caps with the refusal line and
 * their release, the handshake deadline of STARTTLS, output measured
 * below the TLS filter and the write callback once it is gone, the
 * lingering close (a refusal reaches a client that pipelined: FIN, not
 * RST), implicit TLS listeners, and netio_bev_new() for evhttp.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "table.h"

#include "common/netio.h"

#define BUSY "421 busy\r\n"

static struct event_base *base;
static SSL_CTX *server_ctx, *client_ctx;

/* What the test's accept callback and connection callbacks saw. */
struct seen {
	struct netio_conn *conns[16];
	size_t nconns;
	int starttls; /* start TLS on every accepted connection */
	const char *greet; /* written on accept */
	int events[16];
	size_t nevents;
	int writes;
	size_t read;
	size_t reads, biggest; /* read callbacks, the most one had */
};

static void
on_event(struct netio_conn *c, enum netio_event ev, void *arg)
{
	struct seen *s = arg;
	size_t i;

	if (s->nevents < 16)
		s->events[s->nevents++] = ev;
	if (ev == NETIO_HANDSHAKE_TIMEOUT || ev == NETIO_EOF ||
	    ev == NETIO_ERROR || ev == NETIO_TLS_ERROR) {
		for (i = 0; i < s->nconns; i++)
			if (s->conns[i] == c)
				s->conns[i] = NULL;
		netio_conn_abort(c);
	}
}

static void
on_write(struct netio_conn *c, void *arg)
{
	(void)c;
	((struct seen *)arg)->writes++;
}

static void
on_read(struct netio_conn *c, void *arg)
{
	struct evbuffer *in = netio_conn_input(c);

	struct seen *s = arg;
	size_t n = evbuffer_get_length(in);

	s->read += n;
	s->reads++;
	if (n > s->biggest)
		s->biggest = n;
	evbuffer_drain(in, n);
}

static const struct netio_conn_cb cbs = { on_read, on_write, on_event };

static void
on_accept(struct netio_conn *c, void *arg)
{
	struct seen *s = arg;

	assert_true(s->nconns < 16);
	s->conns[s->nconns++] = c;
	netio_conn_setcb(c, &cbs, s);
	if (s->greet != NULL)
		assert_int_equal(
		    netio_conn_write(c, s->greet, strlen(s->greet)), 0);
	if (s->starttls)
		assert_int_equal(netio_conn_starttls(c), 0);
}

/* Turns of the loop for about ms milliseconds. */
static void
spin(int ms)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((t1.tv_sec - t0.tv_sec) * 1000 +
		        (t1.tv_nsec - t0.tv_nsec) / 1000000 >=
		    ms)
			return;
		usleep(1000);
	}
}

static struct netio *
server(struct seen *s, size_t max, size_t per_addr, int flags, int *port_out)
{
	struct netio_opts o;
	struct netio *n;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct evconnlistener *l;
	char err[256];

	memset(&o, 0, sizeof(o));
	o.name = "test";
	o.max_conns = max;
	o.max_per_addr = per_addr;
	o.busy_line = BUSY;
	o.tls = server_ctx;
	o.handshake_timeout = 1;
	assert_non_null(n = netio_new(base, &o, on_accept, s));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* The listener is returned to learn its port. */
	assert_int_equal(netio_listen(n, (struct sockaddr *)&sin, sizeof(sin),
	                     flags, &l, err, sizeof(err)),
	    0);
	assert_int_equal(getsockname(evconnlistener_get_fd(l),
	                     (struct sockaddr *)&sin, &len),
	    0);
	*port_out = ntohs(sin.sin_port);
	netio_start(n);
	return n;
}

static int
client(int port, const char *src)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, src, &sin.sin_addr), 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	sin.sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr), 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	return fd;
}

/* Reads what fd has (non-blocking) into out.  Returns 1 at EOF, -1 on
 * RST, 0 otherwise. */
static int
drain_fd(int fd, char *out, size_t outsize, size_t *len)
{
	ssize_t r;

	for (;;) {
		r = read(fd, out + *len, outsize - 1 - *len);
		if (r > 0) {
			*len += (size_t)r;
			out[*len] = '\0';
			continue;
		}
		if (r == 0)
			return 1;
		return errno == ECONNRESET ? -1 : 0;
	}
}

/* --- caps ------------------------------------------------------------- */

static void
test_caps(void **state)
{
	struct seen s;
	struct netio *n;
	int port, fds[6], over, over2, again;
	char buf[256];
	size_t len = 0, i;

	(void)state;
	memset(&s, 0, sizeof(s));
	n = server(&s, 4, 2, 0, &port);
	fds[0] = client(port, "127.0.0.1");
	fds[1] = client(port, "127.0.0.1");
	fds[2] = client(port, "127.0.0.2");
	spin(50);
	assert_int_equal(s.nconns, 3);
	assert_int_equal(netio_count(n), 3);
	/* A third from 127.0.0.1: over the per-address cap. */
	over = client(port, "127.0.0.1");
	spin(50);
	assert_int_equal(s.nconns, 3);
	assert_int_equal(drain_fd(over, buf, sizeof(buf), &len), 1);
	assert_string_equal(buf, BUSY);
	close(over);
	fds[3] = client(port, "127.0.0.3");
	spin(50);
	assert_int_equal(s.nconns, 4);
	/* Over the overall cap, from a fresh address. */
	over2 = client(port, "127.0.0.4");
	spin(50);
	len = 0;
	assert_int_equal(drain_fd(over2, buf, sizeof(buf), &len), 1);
	assert_string_equal(buf, BUSY);
	close(over2);
	/* Released: room again for 127.0.0.1. */
	netio_conn_abort(s.conns[0]);
	s.conns[0] = NULL;
	assert_int_equal(netio_count(n), 3);
	again = client(port, "127.0.0.1");
	spin(50);
	assert_int_equal(s.nconns, 5);
	assert_int_equal(netio_count(n), 4);
	for (i = 0; i < s.nconns; i++)
		if (s.conns[i] != NULL)
			netio_conn_abort(s.conns[i]);
	assert_int_equal(netio_count(n), 0);
	for (i = 0; i < 4; i++)
		close(fds[i]);
	close(again);
	netio_free(n);
}

/* Many addresses: the table grows and every count returns to zero. */
static void
test_admit_many(void **state)
{
	struct seen s;
	struct netio *n;
	struct sockaddr_in6 sin6;
	int port;
	unsigned i;

	(void)state;
	memset(&s, 0, sizeof(s));
	n = server(&s, 0, 3, 0, &port);
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	for (i = 0; i < 2000; i++) {
		memcpy(&sin6.sin6_addr.s6_addr[12], &i, sizeof(i));
		assert_int_equal(netio_admit(n, (struct sockaddr *)&sin6), 0);
		assert_int_equal(netio_admit(n, (struct sockaddr *)&sin6), 0);
	}
	assert_int_equal(netio_count(n), 4000);
	for (i = 0; i < 2000; i++) {
		memcpy(&sin6.sin6_addr.s6_addr[12], &i, sizeof(i));
		assert_int_equal(netio_admit(n, (struct sockaddr *)&sin6), 0);
		if (i % 100 == 0) /* each refusal is logged */
			assert_int_equal(
			    netio_admit(n, (struct sockaddr *)&sin6), -1);
	}
	for (i = 0; i < 2000; i++) {
		memcpy(&sin6.sin6_addr.s6_addr[12], &i, sizeof(i));
		netio_release(n, (struct sockaddr *)&sin6);
		netio_release(n, (struct sockaddr *)&sin6);
		netio_release(n, (struct sockaddr *)&sin6);
	}
	assert_int_equal(netio_count(n), 0);
	netio_free(n);
}

/* --- lingering close -------------------------------------------------- */

/* The client pipelined data the server never read; the server's last
 * line still arrives, followed by a FIN (a plain close would RST). */
static void
test_linger(void **state)
{
	struct seen s;
	struct netio *n;
	int port, fd;
	char buf[4096], junk[65536];
	size_t len = 0;
	int rc = 0, i;

	(void)state;
	memset(&s, 0, sizeof(s));
	n = server(&s, 0, 0, 0, &port);
	fd = client(port, "127.0.0.1");
	spin(30);
	assert_int_equal(s.nconns, 1);
	netio_conn_setcb(s.conns[0], NULL, NULL); /* reads nothing */
	memset(junk, 'x', sizeof(junk));
	assert_true(write(fd, junk, sizeof(junk)) > 0);
	spin(30);
	assert_int_equal(netio_conn_write(s.conns[0], "421 bye\r\n", 9), 0);
	netio_conn_close(s.conns[0], 5);
	for (i = 0; i < 100 && rc == 0; i++) {
		spin(10);
		rc = drain_fd(fd, buf, sizeof(buf), &len);
	}
	assert_int_equal(rc, 1); /* EOF, not a reset */
	assert_string_equal(buf, "421 bye\r\n");
	/* netio holds the connection until the client closes too. */
	assert_int_equal(netio_count(n), 1);
	close(fd);
	spin(50);
	assert_int_equal(netio_count(n), 0);
	netio_free(n);
}

/* --- reads ------------------------------------------------------------ */

/* What a plaintext client sent at once reaches the reader in one turn,
 * up to the read limit: libevent alone reads 4096 octets a turn. */
static void
test_read_whole(void **state)
{
	struct seen s;
	struct netio *n;
	int port, fd;
	char data[40000];

	(void)state;
	memset(&s, 0, sizeof(s));
	n = server(&s, 0, 0, 0, &port);
	fd = client(port, "127.0.0.1");
	spin(30);
	assert_int_equal(s.nconns, 1);
	netio_conn_set_read_max(s.conns[0], 65536);
	memset(data, 'x', sizeof(data));
	assert_int_equal(write(fd, data, sizeof(data)), sizeof(data));
	spin(50);
	assert_int_equal(s.read, sizeof(data));
	assert_int_equal(s.reads, 1);
	assert_int_equal(s.biggest, sizeof(data));
	/* and no more than the limit at a time */
	memset(&s.reads, 0, sizeof(s.reads));
	s.read = s.biggest = 0;
	netio_conn_set_read_max(s.conns[0], 10000);
	assert_int_equal(write(fd, data, sizeof(data)), sizeof(data));
	spin(50);
	assert_int_equal(s.read, sizeof(data));
	assert_true(s.biggest < 10000 && s.biggest > 4096);
	close(fd);
	spin(30);
	netio_free(n);
}

/* --- TLS -------------------------------------------------------------- */

/* A client TLS session on fd, stepped by tls_step(). */
struct tls_client {
	int fd;
	SSL *ssl;
	int done;
};

static void
tls_client_new(struct tls_client *t, int fd)
{
	t->fd = fd;
	t->done = 0;
	assert_non_null(t->ssl = SSL_new(client_ctx));
	assert_int_equal(SSL_set_fd(t->ssl, fd), 1);
	SSL_set_connect_state(t->ssl);
}

/* Spins until the client's handshake is done (at most ms). */
static void
tls_handshake(struct tls_client *t, int ms)
{
	int i, r;

	for (i = 0; i < ms && !t->done; i++) {
		r = SSL_do_handshake(t->ssl);
		if (r == 1)
			t->done = 1;
		else
			assert_true(
			    SSL_get_error(t->ssl, r) == SSL_ERROR_WANT_READ ||
			    SSL_get_error(t->ssl, r) == SSL_ERROR_WANT_WRITE);
		spin(1);
	}
	assert_true(t->done);
}

static size_t
tls_read_all(struct tls_client *t, int ms)
{
	char buf[16384];
	size_t total = 0;
	int i, r;

	for (i = 0; i < ms; i++) {
		while ((r = SSL_read(t->ssl, buf, sizeof(buf))) > 0)
			total += (size_t)r;
		ERR_clear_error();
		spin(1);
	}
	return total;
}

static void
tls_client_free(struct tls_client *t)
{
	SSL_free(t->ssl);
	close(t->fd);
}

/* STARTTLS, then nothing: the handshake deadline (1 s here) fires, the
 * caller aborts, the client sees the close, the caps are released. */
static void
test_handshake_deadline(void **state)
{
	struct seen s;
	struct netio *n;
	int port, fd, rc = 0, i;
	char buf[64];
	size_t len = 0;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.starttls = 1;
	n = server(&s, 0, 0, 0, &port);
	fd = client(port, "127.0.0.1");
	spin(50);
	assert_int_equal(s.nconns, 1);
	assert_true(netio_conn_handshaking(s.conns[0]));
	assert_int_equal(s.nevents, 0);
	spin(500);
	assert_int_equal(s.nevents, 0); /* not before the deadline */
	for (i = 0; i < 300 && rc == 0; i++) {
		spin(10);
		rc = drain_fd(fd, buf, sizeof(buf), &len);
	}
	assert_int_equal(s.nevents, 1);
	assert_int_equal(s.events[0], NETIO_HANDSHAKE_TIMEOUT);
	assert_true(rc != 0);
	assert_int_equal(netio_count(n), 0);
	close(fd);
	netio_free(n);
}

/* Under TLS the output is measured below the filter: a client that reads
 * nothing leaves it there, and netio_conn_output_len() shows it; once
 * the client reads, the write callback comes and nothing is left. */
static void
test_tls_output_measured(void **state)
{
	struct seen s;
	struct netio *n;
	struct tls_client t;
	int port;
	char *big;
	size_t size = 16 << 20, got;
	struct netio_conn *c;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.starttls = 1;
	n = server(&s, 0, 0, 0, &port);
	tls_client_new(&t, client(port, "127.0.0.1"));
	spin(20);
	tls_handshake(&t, 2000);
	spin(20);
	assert_int_equal(s.nevents, 1);
	assert_int_equal(s.events[0], NETIO_TLS_READY);
	c = s.conns[0];
	assert_int_equal(netio_conn_tls(c), 1);
	assert_non_null(big = malloc(size));
	memset(big, 'y', size);
	assert_int_equal(netio_conn_write(c, big, size), 0);
	spin(100);
	/* The filter passed it all on; what the kernel did not take (a
	 * few MiB at most) waits below it, and is counted. */
	assert_int_equal(
	    evbuffer_get_length(bufferevent_get_output(netio_conn_bev(c))), 0);
	assert_true(netio_conn_output_len(c) > size / 2);
	assert_int_equal(s.writes, 0);
	got = tls_read_all(&t, 2000);
	assert_int_equal(got, size);
	assert_int_equal(netio_conn_output_len(c), 0);
	assert_true(s.writes >= 1);
	free(big);
	netio_conn_abort(c);
	tls_client_free(&t);
	netio_free(n);
}

/* Implicit TLS: what the accept callback writes comes after the
 * handshake, encrypted. */
static void
test_implicit_tls(void **state)
{
	struct seen s;
	struct netio *n;
	struct tls_client t;
	int port;
	char buf[64];
	int r = 0, i;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.greet = "hello\r\n";
	n = server(&s, 0, 0, NETIO_LISTEN_TLS, &port);
	tls_client_new(&t, client(port, "127.0.0.1"));
	spin(20);
	assert_int_equal(s.nconns, 1);
	assert_true(netio_conn_handshaking(s.conns[0]));
	tls_handshake(&t, 2000);
	for (i = 0; i < 1000 && r <= 0; i++) {
		r = SSL_read(t.ssl, buf, sizeof(buf) - 1);
		spin(1);
	}
	assert_int_equal(r, 7);
	buf[r] = '\0';
	assert_string_equal(buf, "hello\r\n");
	/* Closing sends close_notify: the client reads a clean end. */
	netio_conn_close(s.conns[0], 5);
	for (i = 0, r = 1; i < 1000 && r > 0; i++) {
		r = SSL_read(t.ssl, buf, sizeof(buf));
		if (r <= 0 && SSL_get_error(t.ssl, r) == SSL_ERROR_WANT_READ)
			r = 1;
		spin(1);
	}
	assert_int_equal(SSL_get_error(t.ssl, r), SSL_ERROR_ZERO_RETURN);
	tls_client_free(&t);
	spin(50);
	assert_int_equal(netio_count(n), 0);
	netio_free(n);
}

/* netio_bev_new() as evhttp_set_bevcb() would use it: fd set later. */
static void
test_bev_new(void **state)
{
	struct seen s;
	struct netio *n;
	struct bufferevent *bev;
	struct tls_client t;
	int port, sv[2], r = 0, i;
	char buf[64];

	(void)state;
	memset(&s, 0, sizeof(s));
	n = server(&s, 0, 0, 0, &port);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	assert_non_null(bev = netio_bev_new(n, -1, 1));
	assert_int_equal(bufferevent_setfd(bev, sv[0]), 0);
	assert_int_equal(bufferevent_enable(bev, EV_READ | EV_WRITE), 0);
	tls_client_new(&t, sv[1]);
	tls_handshake(&t, 2000);
	assert_int_equal(bufferevent_write(bev, "hi\r\n", 4), 0);
	for (i = 0; i < 1000 && r <= 0; i++) {
		r = SSL_read(t.ssl, buf, sizeof(buf));
		spin(1);
	}
	assert_int_equal(r, 4);
	bufferevent_free(bev); /* closes sv[0] */
	tls_client_free(&t);
	assert_non_null(bev = netio_bev_new(n, -1, 0));
	bufferevent_free(bev);
	netio_free(n);
}

/* --- setup: a throwaway EC certificate -------------------------------- */

static int
setup(void **state)
{
	EVP_PKEY *key;
	X509 *x;
	X509_NAME *name;

	(void)state;
	if ((base = event_base_new()) == NULL)
		return -1;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	x = X509_new();
	if (key == NULL || x == NULL)
		return -1;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"netio.test", -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (X509_sign(x, key, EVP_sha256()) == 0)
		return -1;
	server_ctx = SSL_CTX_new(TLS_server_method());
	client_ctx = SSL_CTX_new(TLS_client_method());
	if (server_ctx == NULL || client_ctx == NULL ||
	    SSL_CTX_use_certificate(server_ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(server_ctx, key) != 1)
		return -1;
	SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);
	X509_free(x);
	EVP_PKEY_free(key);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	SSL_CTX_free(server_ctx);
	SSL_CTX_free(client_ctx);
	event_base_free(base);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_admit_many),
		cmocka_unit_test(test_linger),
		cmocka_unit_test(test_read_whole),
		cmocka_unit_test(test_handshake_deadline),
		cmocka_unit_test(test_tls_output_measured),
		cmocka_unit_test(test_implicit_tls),
		cmocka_unit_test(test_bev_new),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("netio", tests, setup, teardown);
}
