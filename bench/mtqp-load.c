/*
 * mtqp-load: an MTQP (RFC 3887) load generator.  C connections to one
 * server, each keeping P TRACK commands in flight (pipelining, RFC 3887
 * §8), each TRACK for a random message of the set bench/bulkload made
 * (bench_key.h: envid and secret from an index below N); counts answers
 * per second and the latency of each (from writing the command to the end
 * of its answer), for a fixed duration.
 *
 * What is measured: every connection is set up and greeted first, with
 * nothing sent; then the window opens (t0) and lasts exactly SECONDS.
 * TRACKs are sent only inside the window; at its end sending stops and
 * the answers still in flight are waited for.  answers= counts the
 * TRACKs sent inside the window (each must be answered), the rate is
 * answers / window_s, and the latency percentiles are those of exactly
 * these answers.  The window's wall-clock bounds are printed
 * (window_start_unix, window_end_unix) so that the server's own log can
 * be counted over the same span (bench/mtqp-logcheck): the counts differ
 * only by the commands in flight at the two edges (at most C x P).
 * (Before this, TRACKs were sent during the connect phase too, up to 10
 * s, and counted against SECONDS only: the rate was overstated.)
 *
 *   mtqp-load -p PORT [-h 127.0.0.1] [-c CONNS] [-P DEPTH] [-t SECONDS]
 *             [-n N] [-S SEED]
 *
 * Output: one line "mtqp-load key=value...".  Exit status 0 only if every
 * connection worked and every answer was +OK or +OK+ (a -ERR means the
 * store lacks the message or the secret did not match); 1 otherwise; 2
 * for usage errors.
 *
 * Trusts: its arguments.  The server's input is bounded (line length,
 * buffer size) and only classified, never interpreted further.
 * Privileges: none; many connections need RLIMIT_NOFILE above C.
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_hist.h"
#include "bench_util.h"
#include "bench_key.h"
#include "msgtrk/mtqp.h"

/* Bounds on the arguments. */
#define MLOAD_CONNS_MAX 10000ULL
#define MLOAD_DEPTH_MAX 1024ULL
#define MLOAD_SECONDS_MAX 3600ULL
#define MLOAD_N_MAX 1000000000ULL
/* Commands prepared ahead (random members of the set), so the generator
 * spends its CPU on I/O and not on SHA-256 while it measures. */
#define MLOAD_POOL 65536
/* "TRACK " envid " " secret CRLF. */
#define MLOAD_CMD_MAX (6 + BENCH_KEY_ENVID_SIZE + 1 + MTRK_SECRET_B64_SIZE + 2)
/* Input held per connection: a whole answer need not fit, only a line
 * (RFC 3887 §2.3: 998 + CRLF); answers are consumed line by line. */
#define MLOAD_IN_MAX (64 * 1024)
/* How long to wait for the answers still in flight after the duration,
 * and for connecting and the greeting. */
#define MLOAD_DRAIN_SECONDS 10.0
#define MLOAD_CONNECT_SECONDS 10.0

enum mload_phase {
	MLOAD_CONNECTING,
	MLOAD_GREETING,
	MLOAD_RUN,
	MLOAD_DONE,
};

struct mload_conn {
	int fd;
	enum mload_phase phase;
	int in_body; /* inside a +OK+ data block */
	int want_out; /* EPOLLOUT registered */
	char in[MLOAD_IN_MAX];
	size_t in_len;
	char *out;
	size_t out_len, out_off, out_cap;
	double *sent; /* ring of P send times */
	size_t head, inflight;
};

struct mload {
	struct mload_conn *conns;
	size_t nconns, depth;
	char (*pool)[MLOAD_CMD_MAX];
	size_t *pool_len;
	uint64_t seed;
	int ep;
	struct bench_hist *hist;
	uint64_t ok, err, temp, bad, sent, conn_errors;
	/* The window [win_start, win_end) on CLOCK_MONOTONIC; nothing is
	 * sent before started or at/after win_end. */
	double win_start, win_end;
	int started, stopping;
};

static void
mload_fail(struct mload *l, struct mload_conn *c, const char *what)
{
	if (c->phase == MLOAD_DONE)
		return;
	fprintf(stderr, "mtqp-load: connection %zu: %s\n",
	    (size_t)(c - l->conns), what);
	l->conn_errors++;
	c->phase = MLOAD_DONE;
	epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->inflight = 0;
}

static int
mload_watch(struct mload *l, struct mload_conn *c, int out)
{
	struct epoll_event ev;

	if (c->want_out == out)
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | (out ? EPOLLOUT : 0);
	ev.data.ptr = c;
	if (epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev) == -1)
		return -1;
	c->want_out = out;
	return 0;
}

/* Writes what is pending; registers for EPOLLOUT if some is left. */
static void
mload_flush(struct mload *l, struct mload_conn *c)
{
	ssize_t n;

	while (c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		    MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			mload_fail(l, c, strerror(errno));
			return;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (mload_watch(l, c, c->out_len != 0) == -1)
		mload_fail(l, c, strerror(errno));
}

/* Queues TRACK commands until DEPTH are in flight. */
static void
mload_fill(struct mload *l, struct mload_conn *c)
{
	size_t k, len;
	char *p;
	double t = bench_now();

	if (l->started && t >= l->win_end)
		l->stopping = 1;
	while (l->started && !l->stopping && c->phase == MLOAD_RUN &&
	    c->inflight < l->depth) {
		k = (size_t)(bench_key_rand(&l->seed) % MLOAD_POOL);
		len = l->pool_len[k];
		if (c->out_len + len > c->out_cap) {
			size_t cap = c->out_cap ? c->out_cap * 2 : 4096;

			while (cap < c->out_len + len)
				cap *= 2;
			if ((p = realloc(c->out, cap)) == NULL) {
				mload_fail(l, c, "out of memory");
				return;
			}
			c->out = p;
			c->out_cap = cap;
		}
		memcpy(c->out + c->out_len, l->pool[k], len);
		c->out_len += len;
		c->sent[(c->head + c->inflight) % l->depth] = t;
		c->inflight++;
		l->sent++;
	}
	mload_flush(l, c);
}

/* One complete answer (status line, or the "." ending a block). */
static void
mload_answer(struct mload *l, struct mload_conn *c, enum mtqp_status st)
{
	double t;

	if (c->phase == MLOAD_GREETING) {
		if (st != MTQP_OK && st != MTQP_OK_MULTI) {
			mload_fail(l, c, "negative greeting");
			return;
		}
		c->phase = MLOAD_RUN;
		return;
	}
	if (c->inflight == 0) {
		mload_fail(l, c, "answer without a command");
		return;
	}
	t = bench_now();
	bench_hist_add(l->hist, (uint64_t)((t - c->sent[c->head]) * 1e6));
	c->head = (c->head + 1) % l->depth;
	c->inflight--;
	switch (st) {
	case MTQP_OK:
	case MTQP_OK_MULTI:
		l->ok++;
		break;
	case MTQP_TEMP:
		l->temp++;
		break;
	case MTQP_ERR:
		l->err++;
		break;
	case MTQP_BAD:
		l->bad++;
		break;
	}
}

/* Classifies one line (without CRLF). */
static void
mload_line(struct mload *l, struct mload_conn *c, const char *s, size_t n)
{
	if (c->in_body) {
		/* RFC 3887 §2.3: a line of one "." ends the block;
		 * longer lines starting with "." are stuffed data. */
		if (n == 1 && s[0] == '.') {
			c->in_body = 0;
			mload_answer(l, c, MTQP_OK_MULTI);
		}
		return;
	}
	if (n >= 4 && memcmp(s, "+OK+", 4) == 0)
		c->in_body = 1;
	else if (n >= 3 && memcmp(s, "+OK", 3) == 0)
		mload_answer(l, c, MTQP_OK);
	else if (n >= 5 && memcmp(s, "-TEMP", 5) == 0)
		mload_answer(l, c, MTQP_TEMP);
	else if (n >= 4 && memcmp(s, "-ERR", 4) == 0)
		mload_answer(l, c, MTQP_ERR);
	else if (n >= 4 && memcmp(s, "-BAD", 4) == 0)
		mload_answer(l, c, MTQP_BAD);
	else
		mload_fail(l, c, "not an MTQP status line");
}

static void
mload_read(struct mload *l, struct mload_conn *c)
{
	ssize_t n;
	size_t off, k;

	for (;;) {
		n = recv(
		    c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n == 0) {
			mload_fail(l, c, "server closed the connection");
			return;
		}
		if (n < 0) {
			mload_fail(l, c, strerror(errno));
			return;
		}
		c->in_len += (size_t)n;
		off = 0;
		for (k = 0; k + 1 < c->in_len; k++) {
			if (c->in[k] != '\r' || c->in[k + 1] != '\n')
				continue;
			if (k - off > MTQP_LINE_MAX) {
				mload_fail(l, c, "line over 998 octets");
				return;
			}
			mload_line(l, c, c->in + off, k - off);
			if (c->phase == MLOAD_DONE)
				return;
			off = k + 2;
			k++;
		}
		if (c->in_len - off > MTQP_LINE_MAX + 2) {
			mload_fail(l, c, "line over 998 octets");
			return;
		}
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	mload_fill(l, c);
}

static void
mload_event(struct mload *l, struct mload_conn *c, uint32_t ev)
{
	int e = 0;
	socklen_t elen = sizeof(e);

	if (c->phase == MLOAD_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &elen) == -1 ||
		    e != 0) {
			mload_fail(l, c, strerror(e ? e : errno));
			return;
		}
		c->phase = MLOAD_GREETING;
		if (mload_watch(l, c, 0) == -1) {
			mload_fail(l, c, strerror(errno));
			return;
		}
	}
	if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
		mload_read(l, c);
	if (c->phase != MLOAD_DONE && (ev & EPOLLOUT))
		mload_flush(l, c);
}

static int
mload_connect(
    struct mload *l, struct mload_conn *c, const struct sockaddr_in *sa)
{
	struct epoll_event ev;
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)sa, sizeof(*sa)) == -1 &&
	    errno != EINPROGRESS)
		return -1;
	c->phase = MLOAD_CONNECTING;
	c->want_out = 1;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.ptr = c;
	return epoll_ctl(l->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static int
mload_pool(struct mload *l, uint64_t n)
{
	char envid[BENCH_KEY_ENVID_SIZE], secret[MTRK_SECRET_B64_SIZE];
	size_t k;
	uint64_t i;
	int len;

	l->pool = calloc(MLOAD_POOL, sizeof(*l->pool));
	l->pool_len = calloc(MLOAD_POOL, sizeof(*l->pool_len));
	if (l->pool == NULL || l->pool_len == NULL)
		return -1;
	for (k = 0; k < MLOAD_POOL; k++) {
		i = bench_key_rand(&l->seed) % n;
		if (bench_key_envid(i, envid, sizeof(envid)) == -1 ||
		    bench_key_secret_b64(i, secret) == -1)
			return -1;
		len = snprintf(l->pool[k], MLOAD_CMD_MAX, "TRACK %s %s\r\n",
		    envid, secret);
		if (len < 0 || len >= MLOAD_CMD_MAX)
			return -1;
		l->pool_len[k] = (size_t)len;
	}
	return 0;
}

/* Runs the event loop until every connection is in phase `until` or done
 * (or, for MLOAD_DONE, has nothing in flight), or the clock passes end.
 * While the window is open (started, not stopping) it runs until end. */
static void
mload_loop(struct mload *l, double end, int until)
{
	struct epoll_event evs[256];
	size_t k, waiting;
	int n, i, ms;
	double now;

	for (;;) {
		waiting = 0;
		for (k = 0; k < l->nconns; k++) {
			struct mload_conn *c = &l->conns[k];

			if (c->phase == MLOAD_DONE)
				continue;
			if (until == MLOAD_DONE ? c->inflight > 0
			                        : (int)c->phase < until)
				waiting++;
		}
		now = bench_now();
		if (!(l->started && !l->stopping) && waiting == 0)
			return;
		if (now >= end)
			return;
		ms = (int)((end - now) * 1000) + 1;
		if (ms > 100)
			ms = 100;
		n = epoll_wait(l->ep, evs, 256, ms);
		if (n == -1 && errno != EINTR) {
			perror("mtqp-load: epoll_wait");
			return;
		}
		for (i = 0; i < n; i++)
			mload_event(l, evs[i].data.ptr, evs[i].events);
	}
}

static void
mload_usage(void)
{
	fprintf(stderr,
	    "usage: mtqp-load -p PORT [-h ADDR] [-c CONNS] "
	    "[-P DEPTH] [-t SECONDS] [-n N] [-S SEED]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct mload l;
	struct sockaddr_in sa;
	const char *host = "127.0.0.1";
	unsigned long long port = 0, conns = 10, depth = 16, seconds = 10;
	unsigned long long n = 1000000, seed = 1;
	double t0, t1, wall0;
	struct timespec ts;
	size_t k;
	int c, rc = 1;

	while ((c = getopt(argc, argv, "h:p:c:P:t:n:S:")) != -1) {
		switch (c) {
		case 'h':
			host = optarg;
			break;
		case 'p':
			if (bench_num(optarg, 1, 65535, &port) == -1)
				mload_usage();
			break;
		case 'c':
			if (bench_num(optarg, 1, MLOAD_CONNS_MAX, &conns) == -1)
				mload_usage();
			break;
		case 'P':
			if (bench_num(optarg, 1, MLOAD_DEPTH_MAX, &depth) == -1)
				mload_usage();
			break;
		case 't':
			if (bench_num(optarg, 1, MLOAD_SECONDS_MAX, &seconds) ==
			    -1)
				mload_usage();
			break;
		case 'n':
			if (bench_num(optarg, 1, MLOAD_N_MAX, &n) == -1)
				mload_usage();
			break;
		case 'S':
			if (bench_num(optarg, 1, ULLONG_MAX, &seed) == -1)
				mload_usage();
			break;
		default:
			mload_usage();
		}
	}
	if (port == 0 || optind != argc)
		mload_usage();
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "mtqp-load: %s: not an IPv4 address\n", host);
		return 2;
	}
	memset(&l, 0, sizeof(l));
	l.nconns = conns;
	l.depth = depth;
	l.seed = seed;
	l.ep = epoll_create1(EPOLL_CLOEXEC);
	l.conns = calloc(conns, sizeof(*l.conns));
	l.hist = bench_hist_new();
	if (l.ep == -1 || l.conns == NULL || l.hist == NULL ||
	    mload_pool(&l, n) == -1) {
		fprintf(
		    stderr, "mtqp-load: cannot set up: %s\n", strerror(errno));
		goto done;
	}
	for (k = 0; k < conns; k++) {
		l.conns[k].fd = -1;
		l.conns[k].sent = calloc(depth, sizeof(double));
		if (l.conns[k].sent == NULL ||
		    mload_connect(&l, &l.conns[k], &sa) == -1) {
			fprintf(stderr, "mtqp-load: connect %zu: %s\n", k,
			    strerror(errno));
			goto done;
		}
	}
	/* Connect and read every greeting before the clock starts. */
	mload_loop(&l, bench_now() + MLOAD_CONNECT_SECONDS, MLOAD_RUN);
	for (k = 0; k < conns; k++)
		if (l.conns[k].phase != MLOAD_RUN)
			mload_fail(&l, &l.conns[k], "no greeting in time");
	if (l.conn_errors)
		goto done;
	/* The window opens: wall clock and monotonic clock read together so
	 * the server's log can be counted over the same span. */
	clock_gettime(CLOCK_REALTIME, &ts);
	t0 = bench_now();
	wall0 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	l.win_start = t0;
	l.win_end = t0 + (double)seconds;
	l.started = 1;
	for (k = 0; k < conns; k++)
		mload_fill(&l, &l.conns[k]);
	mload_loop(&l, l.win_end, MLOAD_RUN);
	/* Window closed: send nothing more; every TRACK sent inside it
	 * must be answered (the answers arriving after win_end belong to
	 * the window: their commands were sent in it). */
	l.stopping = 1;
	t1 = bench_now();
	mload_loop(&l, t1 + MLOAD_DRAIN_SECONDS, MLOAD_DONE);
	for (k = 0; k < conns; k++)
		if (l.conns[k].phase != MLOAD_DONE && l.conns[k].inflight)
			mload_fail(&l, &l.conns[k], "answers missing");
	{
		uint64_t answered = l.ok + l.err + l.temp + l.bad;
		double win = l.win_end - l.win_start;

		printf("mtqp-load conns=%llu depth=%llu records=%llu "
		       "window_s=%.3f window_start_unix=%.6f "
		       "window_end_unix=%.6f sent=%" PRIu64 " answers=%" PRIu64
		       " answers_per_s=%.0f "
		       "p50_us=%" PRIu64 " p99_us=%" PRIu64 " p999_us=%" PRIu64
		       " mean_us=%.0f drain_s=%.3f ok=%" PRIu64 " err=%" PRIu64
		       " temp=%" PRIu64 " bad=%" PRIu64 " conn_errors=%" PRIu64
		       "\n",
		    conns, depth, n, win, wall0, wall0 + win, l.sent, answered,
		    (double)answered / win, bench_hist_pct(l.hist, 500),
		    bench_hist_pct(l.hist, 990), bench_hist_pct(l.hist, 999),
		    bench_hist_mean(l.hist), bench_now() - t1, l.ok, l.err,
		    l.temp, l.bad, l.conn_errors);
	}
	if (l.conn_errors == 0 && l.ok > 0 && l.err + l.temp + l.bad == 0)
		rc = 0;
	else
		fprintf(stderr,
		    "mtqp-load: %" PRIu64 " connection errors, %" PRIu64
		    " negative answers\n",
		    l.conn_errors, l.err + l.temp + l.bad);
done:
	if (l.conns != NULL)
		for (k = 0; k < conns; k++) {
			if (l.conns[k].fd != -1)
				close(l.conns[k].fd);
			free(l.conns[k].sent);
			free(l.conns[k].out);
		}
	free(l.conns);
	free(l.pool);
	free(l.pool_len);
	bench_hist_free(l.hist);
	if (l.ep != -1)
		close(l.ep);
	return rc;
}
