/*
 * smtp-load: an SMTP load generator for the workloads smtp-source cannot
 * send: tracked mail (ENVID + MTRK, RFC 3885), DSN parameters (RFC 3461),
 * STARTTLS on every session (RFC 3207), several recipients per message
 * and large bodies.
 *
 *   smtp-load -p PORT [-h ADDR] [-s SESSIONS] [-m MESSAGES] [-r RCPTS]
 *             [-l BYTES] [-T] [-C CAFILE] [-N NAME] [-D] [-K] [-X]
 *             [-o OFFSET] [-f FROM] [-d DOMAIN] [-H HELO] [-w SECONDS]
 *
 *   -s  parallel sessions (default 1), kept open for many messages
 *   -m  messages in all (default 100), taken in turn by the sessions
 *   -r  recipients per message (default 1): rcpt1@DOMAIN .. rcptN@DOMAIN
 *   -l  body octets after the header (default 4096; 0, or 2 and more),
 *       in lines of 76 letters and CRLF, ending in CRLF
 *   -T  STARTTLS on every session; the server's certificate is not
 *       verified unless -C CAFILE is given (then it must chain to CAFILE,
 *       and match NAME if -N is given; NAME is also sent as SNI)
 *   -D  DSN parameters: ENVID= on MAIL, ORCPT=rfc822;<address> on RCPT
 *   -K  also MTRK=<certifier> on MAIL (implies -D; RFC 3885 needs ENVID)
 *   -X  no PIPELINING (RFC 2920) even if offered; by default MAIL, every
 *       RCPT and DATA are sent as one group when the server offers it
 *   -o  index of the first message (default 0): message i gets envid(i)
 *       and the certifier of secret(i) of bench/bench_key.h, so
 *       bench/mtqp-load -n OFFSET+MESSAGES can TRACK what was sent here
 *   -f  envelope sender (default sender@client.bench.test)
 *   -d  recipient domain (default dest.bench.test)
 *   -H  EHLO name (default client.bench.test)
 *   -w  seconds to wait for any reply or write (default 60)
 *
 * Each message: MAIL FROM (SIZE= if offered), RCPTs, DATA, the header and
 * body, ".", then the next message or QUIT.  A message is accepted when
 * MAIL got 250, every RCPT 250 or 251, DATA 354 and the end of data 250;
 * any other reply makes it a failed message (the transaction is then
 * reset with RSET, or the session closed on 421).  A missing extension
 * that an option needs (STARTTLS, DSN, MTRK) fails the session.
 *
 * Output: one line "smtp-load key=value...": messages accepted and
 * failed, unsent (left when every session had failed), elapsed_s (from
 * the first connect to the last message's final reply), msgs_per_s =
 * accepted / elapsed_s, and the latency from the end of data ("." fully
 * written to the socket, or to TLS) to its reply, of accepted messages:
 * p50/p99/p999 and mean, in microseconds; cpu_ms is this process's own
 * CPU time; tls_version and tls_cipher are what the first handshake
 * negotiated ("-" without -T).  The first few unexpected replies go to stderr.  Exit status
 * 0 only if every message was accepted; 1 otherwise; 2 for usage errors.
 *
 * Trusts: its arguments.  Server input is bounded (line length, lines
 * per reply) and only classified.  Privileges: none; many sessions need
 * RLIMIT_NOFILE above SESSIONS.
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench_hist.h"
#include "bench_key.h"
#include "bench_util.h"

/* Bounds on the arguments. */
#define SLOAD_SESSIONS_MAX 10000ULL
#define SLOAD_MESSAGES_MAX 100000000ULL
/* RFC 5321 §4.5.3.1.8: at least 100 recipients must be accepted;
 * msgtrkd and Postfix take 1000. */
#define SLOAD_RCPTS_MAX 1000ULL
#define SLOAD_BODY_MAX (64ULL * 1024 * 1024)
#define SLOAD_WAIT_MAX 3600ULL
#define SLOAD_OFFSET_MAX 999999999999ULL
/* RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets; EHLO replies
 * of real servers stay far below 64 lines.  Both are generous. */
#define SLOAD_LINE_MAX 2048
#define SLOAD_REPLY_LINES_MAX 100
#define SLOAD_IN_MAX 16384
/* Names and addresses from the arguments. */
#define SLOAD_NAME_MAX 255
/* Header lines of a message (without the body), and one command line. */
#define SLOAD_HEADER_MAX 1024
#define SLOAD_CMD_MAX 1024
/* Unexpected replies printed on stderr, then only counted. */
#define SLOAD_REPORT_MAX 10
/* Body lines: 76 letters and CRLF. */
#define SLOAD_BODY_LINE 76

enum sload_state {
	SLOAD_CONNECTING,
	SLOAD_GREETING, /* 220 */
	SLOAD_EHLO,
	SLOAD_STARTTLS, /* 220 to STARTTLS */
	SLOAD_HANDSHAKE,
	SLOAD_TXN, /* replies to MAIL, RCPT..., DATA */
	SLOAD_DATA_END, /* reply to the end of data */
	SLOAD_RSET,
	SLOAD_QUIT,
	SLOAD_DONE,
};

/* EHLO keywords we use. */
#define SLOAD_EXT_PIPELINING 0x01
#define SLOAD_EXT_STARTTLS 0x02
#define SLOAD_EXT_DSN 0x04
#define SLOAD_EXT_MTRK 0x08
#define SLOAD_EXT_SIZE 0x10

struct sload_conn {
	int fd;
	SSL *ssl;
	enum sload_state state;
	unsigned ext;
	int want_out; /* EPOLLOUT registered */
	int io_wants_write; /* TLS read/handshake needs the socket writable */
	double deadline;
	/* The reply being read. */
	char in[SLOAD_IN_MAX];
	size_t in_len;
	int reply_code, reply_lines;
	char reply_text[128]; /* first line, for error reports */
	/* Output not yet written. */
	char *out;
	size_t out_len, out_off, out_cap;
	/* The current message. */
	uint64_t msg; /* index */
	int in_msg; /* a message is in progress */
	int failed; /* it got an unexpected reply */
	size_t cmds_sent; /* of 0 (MAIL), 1..N (RCPT), N+1 (DATA) */
	size_t replies; /* replies read of the same */
	double t_dot; /* end of data written; 0 while not yet */
	char mail[SLOAD_CMD_MAX];
	char header[SLOAD_HEADER_MAX];
	size_t header_len;
};

struct sload {
	struct sload_conn *conns;
	size_t nconns;
	int ep;
	SSL_CTX *ctx;
	const char *servername;
	struct bench_hist *hist;
	/* Options. */
	uint64_t messages, offset;
	size_t rcpts;
	int tls, dsn, mtrk, pipelining;
	double wait;
	const char *from, *domain, *helo;
	/* The body, made once; every message gets its own header. */
	char *body;
	size_t body_len;
	/* What the first TLS handshake negotiated (for the report). */
	char tls_version[32], tls_cipher[64];
	/* Counters. */
	uint64_t next, accepted, failed, conn_errors, reported;
	double t_last;
	int active;
};

static void sload_next(struct sload *l, struct sload_conn *c);

/* Prints one unexpected event on stderr (the first SLOAD_REPORT_MAX). */
static void
sload_report(struct sload *l, struct sload_conn *c, const char *fmt, ...)
{
	va_list ap;

	if (l->reported++ >= SLOAD_REPORT_MAX)
		return;
	fprintf(stderr, "smtp-load: session %zu: ", (size_t)(c - l->conns));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Ends the session after an error; the message in progress fails. */
static void
sload_fail(struct sload *l, struct sload_conn *c, const char *what)
{
	if (c->state == SLOAD_DONE)
		return;
	sload_report(l, c, "%s", what);
	l->conn_errors++;
	if (c->in_msg) {
		l->failed++;
		c->in_msg = 0;
	}
	c->state = SLOAD_DONE;
	l->active--;
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
}

/* The session ended normally (QUIT answered, or closed after it). */
static void
sload_close(struct sload *l, struct sload_conn *c)
{
	if (c->ssl != NULL) {
		(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->state = SLOAD_DONE;
	l->active--;
}

static int
sload_watch(struct sload *l, struct sload_conn *c, int out)
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

/* Appends n octets to the output.  Returns 0, or -1 (out of memory). */
static int
sload_put(struct sload_conn *c, const char *s, size_t n)
{
	char *p;
	size_t cap;

	if (c->out_len + n > c->out_cap) {
		cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + n)
			cap *= 2;
		if ((p = realloc(c->out, cap)) == NULL)
			return -1;
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
	return 0;
}

/* Appends one command line and its CRLF.  Returns 0 or -1. */
static int
sload_cmd(struct sload_conn *c, const char *fmt, ...)
{
	char line[SLOAD_CMD_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		return -1;
	line[n++] = '\r';
	line[n++] = '\n';
	return sload_put(c, line, (size_t)n);
}

/* Writes what is pending.  Returns 0, or -1 if the session failed. */
static int
sload_flush(struct sload *l, struct sload_conn *c)
{
	ssize_t n;
	int e;

	while (c->out_off < c->out_len) {
		if (c->ssl != NULL) {
			size_t w = 0;

			ERR_clear_error();
			if (SSL_write_ex(c->ssl, c->out + c->out_off,
			        c->out_len - c->out_off, &w) == 1) {
				c->out_off += w;
				continue;
			}
			e = SSL_get_error(c->ssl, 0);
			if (e == SSL_ERROR_WANT_WRITE ||
			    e == SSL_ERROR_WANT_READ)
				break;
			sload_fail(l, c, "TLS write failed");
			return -1;
		}
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		    MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			sload_fail(l, c, strerror(errno));
			return -1;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		/* RFC 5321 §4.1.1.4: the reply to "." comes once all of it
		 * is sent; the latency runs from here. */
		if (c->state == SLOAD_DATA_END && c->t_dot == 0)
			c->t_dot = bench_now();
	}
	if (sload_watch(l, c, c->out_len != 0 || c->io_wants_write) == -1) {
		sload_fail(l, c, strerror(errno));
		return -1;
	}
	return 0;
}

/* Waits for a reply from now on. */
static void
sload_expect(struct sload *l, struct sload_conn *c, enum sload_state st)
{
	c->state = st;
	c->deadline = bench_now() + l->wait;
}

static void
sload_ehlo(struct sload *l, struct sload_conn *c)
{
	c->ext = 0;
	if (sload_cmd(c, "EHLO %s", l->helo) == -1) {
		sload_fail(l, c, "out of memory");
		return;
	}
	sload_expect(l, c, SLOAD_EHLO);
}

/* Queues command k of the current message: 0 MAIL, 1..N RCPT, N+1
 * DATA.  Returns 0 or -1. */
static int
sload_txn_cmd(struct sload *l, struct sload_conn *c, size_t k)
{
	if (k == 0)
		return sload_put(c, c->mail, strlen(c->mail));
	if (k <= l->rcpts) {
		/* ORCPT's xtext (RFC 3461 §4): these addresses have no '+',
		 * '=' or octet outside 33..126, so they are their own
		 * xtext. */
		if (l->dsn)
			return sload_cmd(c,
			    "RCPT TO:<rcpt%zu@%s> ORCPT=rfc822;rcpt%zu@%s", k,
			    l->domain, k, l->domain);
		return sload_cmd(c, "RCPT TO:<rcpt%zu@%s>", k, l->domain);
	}
	return sload_cmd(c, "DATA");
}

/* Starts message i on c: builds its header and MAIL command, then queues
 * the whole group (PIPELINING) or MAIL alone. */
static void
sload_start(struct sload *l, struct sload_conn *c, uint64_t i)
{
	char envid[BENCH_KEY_ENVID_SIZE], cert[MTRK_CERTIFIER_LEN + 1];
	char size[32] = "", dsn[160] = "";
	uint64_t id = l->offset + i;
	size_t k, ncmds = l->rcpts + 2;
	int n;

	n = snprintf(c->header, sizeof(c->header),
	    "From: <%s>\r\n"
	    "To: <rcpt1@%s>\r\n"
	    "Subject: smtp-load message %" PRIu64 "\r\n"
	    "Message-ID: <smtp-load.%" PRIu64 ".%ld@%s>\r\n"
	    "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
	    "\r\n",
	    l->from, l->domain, id, id, (long)getpid(), l->helo);
	if (n < 0 || (size_t)n >= sizeof(c->header)) {
		sload_fail(l, c, "header too long");
		return;
	}
	c->header_len = (size_t)n;
	if (c->ext & SLOAD_EXT_SIZE)
		snprintf(size, sizeof(size), " SIZE=%zu",
		    c->header_len + l->body_len);
	if (l->dsn) {
		/* The envid is printable ASCII without '+' or '=': its own
		 * xtext (RFC 3461 §4). */
		if (bench_key_envid(id, envid, sizeof(envid)) == -1) {
			sload_fail(l, c, "cannot make the envid");
			return;
		}
		n = snprintf(dsn, sizeof(dsn), " ENVID=%s", envid);
		if (l->mtrk) {
			if (bench_key_certifier(id, cert) == -1) {
				sload_fail(l, c, "cannot make the certifier");
				return;
			}
			n = snprintf(
			    dsn, sizeof(dsn), " ENVID=%s MTRK=%s", envid, cert);
		}
		if (n < 0 || (size_t)n >= sizeof(dsn)) {
			sload_fail(l, c, "MAIL parameters too long");
			return;
		}
	}
	n = snprintf(c->mail, sizeof(c->mail), "MAIL FROM:<%s>%s%s\r\n",
	    l->from, size, dsn);
	if (n < 0 || (size_t)n >= sizeof(c->mail)) {
		sload_fail(l, c, "MAIL command too long");
		return;
	}
	c->msg = i;
	c->in_msg = 1;
	c->failed = 0;
	c->replies = 0;
	c->cmds_sent = 0;
	c->t_dot = 0;
	/* RFC 2920 §3.1: MAIL, RCPT and DATA may be sent as one group,
	 * DATA last. */
	for (k = 0;
	     k < (l->pipelining && (c->ext & SLOAD_EXT_PIPELINING) ? ncmds : 1);
	     k++) {
		if (sload_txn_cmd(l, c, k) == -1) {
			sload_fail(l, c, "out of memory");
			return;
		}
		c->cmds_sent++;
	}
	sload_expect(l, c, SLOAD_TXN);
}

/* Takes the next message, or says QUIT when there is none. */
static void
sload_next(struct sload *l, struct sload_conn *c)
{
	if (l->next < l->messages) {
		sload_start(l, c, l->next++);
		return;
	}
	if (sload_cmd(c, "QUIT") == -1) {
		sload_fail(l, c, "out of memory");
		return;
	}
	sload_expect(l, c, SLOAD_QUIT);
}

/* The current message got an unexpected reply to `what`. */
static void
sload_unexpected(struct sload *l, struct sload_conn *c, const char *what)
{
	sload_report(l, c, "message %" PRIu64 ": %s: %d %s", c->msg, what,
	    c->reply_code, c->reply_text);
	c->failed = 1;
}

/* One reply of the transaction (to command c->replies). */
static void
sload_txn_reply(struct sload *l, struct sload_conn *c)
{
	size_t k = c->replies++;
	int code = c->reply_code;

	if (k == 0 && code != 250)
		sload_unexpected(l, c, "MAIL");
	else if (k >= 1 && k <= l->rcpts && code != 250 && code != 251)
		sload_unexpected(l, c, "RCPT");
	if (k <= l->rcpts) {
		/* Without PIPELINING: the next command now. */
		if (c->cmds_sent == k + 1) {
			if (sload_txn_cmd(l, c, k + 1) == -1) {
				sload_fail(l, c, "out of memory");
				return;
			}
			c->cmds_sent++;
		}
		c->deadline = bench_now() + l->wait;
		return;
	}
	/* The reply to DATA. */
	if (code == 354) {
		if (sload_put(c, c->header, c->header_len) == -1 ||
		    sload_put(c, l->body, l->body_len) == -1 ||
		    sload_put(c, ".\r\n", 3) == -1) {
			sload_fail(l, c, "out of memory");
			return;
		}
		sload_expect(l, c, SLOAD_DATA_END);
		return;
	}
	sload_unexpected(l, c, "DATA");
	l->failed++;
	c->in_msg = 0;
	if (sload_cmd(c, "RSET") == -1) {
		sload_fail(l, c, "out of memory");
		return;
	}
	sload_expect(l, c, SLOAD_RSET);
}

/* Starts TLS on the session's socket after "220" to STARTTLS. */
static void
sload_tls_start(struct sload *l, struct sload_conn *c)
{
	if ((c->ssl = SSL_new(l->ctx)) == NULL ||
	    SSL_set_fd(c->ssl, c->fd) != 1 ||
	    (l->servername != NULL &&
	        (SSL_set_tlsext_host_name(c->ssl, l->servername) != 1 ||
	            SSL_set1_host(c->ssl, l->servername) != 1))) {
		sload_fail(l, c, "cannot set up TLS");
		return;
	}
	SSL_set_connect_state(c->ssl);
	c->state = SLOAD_HANDSHAKE;
	c->deadline = bench_now() + l->wait;
}

/* Drives the TLS handshake; sends EHLO again when it is done. */
static void
sload_handshake(struct sload *l, struct sload_conn *c)
{
	int r, e;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	c->io_wants_write = 0;
	if (r == 1) {
		if (l->tls_version[0] == '\0') {
			snprintf(l->tls_version, sizeof(l->tls_version), "%s",
			    SSL_get_version(c->ssl));
			snprintf(l->tls_cipher, sizeof(l->tls_cipher), "%s",
			    SSL_get_cipher_name(c->ssl));
		}
		/* RFC 3207 §4.2: forget what EHLO said before TLS. */
		sload_ehlo(l, c);
		return;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		return;
	if (e == SSL_ERROR_WANT_WRITE) {
		c->io_wants_write = 1;
		return;
	}
	{
		char msg[256];
		unsigned long err = ERR_peek_last_error();

		snprintf(msg, sizeof(msg), "TLS handshake failed: %s",
		    err ? ERR_error_string(err, NULL) : "connection closed");
		ERR_clear_error();
		sload_fail(l, c, msg);
	}
}

/* One EHLO keyword line (the text after "250-" or "250 "). */
static void
sload_ehlo_line(struct sload_conn *c, const char *s, size_t n)
{
	static const struct {
		const char *kw;
		unsigned bit;
	} kws[] = {
		{ "PIPELINING", SLOAD_EXT_PIPELINING },
		{ "STARTTLS", SLOAD_EXT_STARTTLS },
		{ "DSN", SLOAD_EXT_DSN },
		{ "MTRK", SLOAD_EXT_MTRK },
		{ "SIZE", SLOAD_EXT_SIZE },
	};
	size_t k, len;

	for (k = 0; k < sizeof(kws) / sizeof(kws[0]); k++) {
		len = strlen(kws[k].kw);
		if (n >= len && strncasecmp(s, kws[k].kw, len) == 0 &&
		    (n == len || s[len] == ' '))
			c->ext |= kws[k].bit;
	}
}

/* A complete reply: acts on it according to the state. */
static void
sload_reply(struct sload *l, struct sload_conn *c)
{
	int code = c->reply_code;
	double t;

	/* RFC 5321 §3.8: 421 ends the session whatever was asked. */
	if (code == 421 && c->state != SLOAD_QUIT) {
		char msg[192];

		snprintf(msg, sizeof(msg), "421 %s", c->reply_text);
		sload_fail(l, c, msg);
		return;
	}
	switch (c->state) {
	case SLOAD_GREETING:
		if (code != 220) {
			sload_fail(l, c, "greeting is not 220");
			return;
		}
		sload_ehlo(l, c);
		return;
	case SLOAD_EHLO:
		if (code != 250) {
			sload_fail(l, c, "EHLO refused");
			return;
		}
		if (l->tls && c->ssl == NULL) {
			if (!(c->ext & SLOAD_EXT_STARTTLS)) {
				sload_fail(
				    l, c, "server does not offer STARTTLS");
				return;
			}
			if (sload_cmd(c, "STARTTLS") == -1) {
				sload_fail(l, c, "out of memory");
				return;
			}
			sload_expect(l, c, SLOAD_STARTTLS);
			return;
		}
		if (l->dsn && !(c->ext & SLOAD_EXT_DSN)) {
			sload_fail(l, c, "server does not offer DSN");
			return;
		}
		if (l->mtrk && !(c->ext & SLOAD_EXT_MTRK)) {
			sload_fail(l, c, "server does not offer MTRK");
			return;
		}
		sload_next(l, c);
		return;
	case SLOAD_STARTTLS:
		if (code != 220) {
			sload_fail(l, c, "STARTTLS refused");
			return;
		}
		sload_tls_start(l, c);
		return;
	case SLOAD_TXN:
		sload_txn_reply(l, c);
		return;
	case SLOAD_DATA_END:
		t = bench_now();
		if (c->t_dot == 0) {
			sload_fail(l, c, "reply before the end of data");
			return;
		}
		if (code == 250 && !c->failed) {
			l->accepted++;
			bench_hist_add(
			    l->hist, (uint64_t)((t - c->t_dot) * 1e6));
		} else {
			if (code != 250)
				sload_unexpected(l, c, "end of data");
			l->failed++;
		}
		l->t_last = t;
		c->in_msg = 0;
		sload_next(l, c);
		return;
	case SLOAD_RSET:
		if (code != 250) {
			sload_fail(l, c, "RSET refused");
			return;
		}
		l->t_last = bench_now();
		sload_next(l, c);
		return;
	case SLOAD_QUIT:
		sload_close(l, c);
		return;
	default:
		sload_fail(l, c, "reply out of turn");
		return;
	}
}

/* One reply line without CRLF (RFC 5321 §4.2: code, then "-" on every
 * line but the last). */
static void
sload_line(struct sload *l, struct sload_conn *c, const char *s, size_t n)
{
	int code, last;
	size_t tn;

	if (n < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '9' ||
	    s[2] < '0' || s[2] > '9' || (n > 3 && s[3] != ' ' && s[3] != '-')) {
		sload_fail(l, c, "not an SMTP reply line");
		return;
	}
	code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	last = n == 3 || s[3] == ' ';
	if (c->reply_lines == 0) {
		c->reply_code = code;
		tn = n > 4 ? n - 4 : 0;
		if (tn >= sizeof(c->reply_text))
			tn = sizeof(c->reply_text) - 1;
		/* Only printable ASCII reaches stderr. */
		for (size_t k = 0; k < tn; k++)
			c->reply_text[k] = s[4 + k] >= 0x20 && s[4 + k] < 0x7f
			    ? s[4 + k]
			    : '?';
		c->reply_text[tn] = '\0';
	} else if (code != c->reply_code) {
		sload_fail(l, c, "reply lines with different codes");
		return;
	}
	if (++c->reply_lines > SLOAD_REPLY_LINES_MAX) {
		sload_fail(l, c, "reply of too many lines");
		return;
	}
	if (c->state == SLOAD_EHLO && c->reply_lines > 1 && n > 4)
		sload_ehlo_line(c, s + 4, n - 4);
	if (last) {
		c->reply_lines = 0;
		sload_reply(l, c);
	}
}

/* Reads what the server sent.  Returns 0, or -1 if the session ended. */
static int
sload_read(struct sload *l, struct sload_conn *c)
{
	ssize_t n;
	size_t off, k;
	int e;

	for (;;) {
		if (c->state == SLOAD_DONE || c->state == SLOAD_HANDSHAKE)
			return c->state == SLOAD_DONE ? -1 : 0;
		if (c->ssl != NULL) {
			size_t r = 0;

			ERR_clear_error();
			if (SSL_read_ex(c->ssl, c->in + c->in_len,
			        sizeof(c->in) - c->in_len, &r) == 1)
				n = (ssize_t)r;
			else {
				e = SSL_get_error(c->ssl, 0);
				if (e == SSL_ERROR_WANT_READ)
					break;
				if (e == SSL_ERROR_WANT_WRITE) {
					c->io_wants_write = 1;
					break;
				}
				n = e == SSL_ERROR_ZERO_RETURN ||
				        (e == SSL_ERROR_SYSCALL && errno == 0)
				    ? 0
				    : -1;
				if (n == -1) {
					sload_fail(l, c, "TLS read failed");
					return -1;
				}
			}
		} else {
			n = recv(c->fd, c->in + c->in_len,
			    sizeof(c->in) - c->in_len, 0);
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1 &&
			    (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			if (n < 0) {
				sload_fail(l, c, strerror(errno));
				return -1;
			}
		}
		if (n == 0) {
			if (c->state == SLOAD_QUIT) {
				sload_close(l, c);
				return -1;
			}
			sload_fail(l, c, "server closed the connection");
			return -1;
		}
		c->in_len += (size_t)n;
		off = 0;
		for (k = 0; k + 1 < c->in_len; k++) {
			if (c->in[k] != '\r' || c->in[k + 1] != '\n')
				continue;
			if (k - off > SLOAD_LINE_MAX) {
				sload_fail(l, c, "reply line too long");
				return -1;
			}
			sload_line(l, c, c->in + off, k - off);
			off = k + 2;
			k++;
			if (c->state == SLOAD_DONE)
				return -1;
			if (c->state == SLOAD_HANDSHAKE) {
				/* RFC 3207 §4.2 (and CVE-2011-0411): nothing
				 * sent before the handshake may be taken as a
				 * reply after it. */
				if (off != c->in_len) {
					sload_fail(l, c,
					    "data after the reply to STARTTLS");
					return -1;
				}
				c->in_len = 0;
				return 0;
			}
		}
		if (c->in_len - off > SLOAD_LINE_MAX + 2) {
			sload_fail(l, c, "reply line too long");
			return -1;
		}
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	return 0;
}

static void
sload_event(struct sload *l, struct sload_conn *c, uint32_t ev)
{
	int e = 0;
	socklen_t elen = sizeof(e);

	if (c->state == SLOAD_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &elen) == -1 ||
		    e != 0) {
			sload_fail(l, c, strerror(e ? e : errno));
			return;
		}
		sload_expect(l, c, SLOAD_GREETING);
	}
	(void)ev;
	/* Level-triggered: try both directions; each stops at EAGAIN. */
	for (;;) {
		if (c->state == SLOAD_HANDSHAKE) {
			sload_handshake(l, c);
			if (c->state == SLOAD_HANDSHAKE ||
			    c->state == SLOAD_DONE)
				break;
		}
		c->io_wants_write = 0;
		if (sload_read(l, c) == -1)
			return;
		if (c->state != SLOAD_HANDSHAKE)
			break;
	}
	if (c->state != SLOAD_DONE)
		(void)sload_flush(l, c);
}

static int
sload_connect(
    struct sload *l, struct sload_conn *c, const struct sockaddr_in *sa)
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
	c->state = SLOAD_CONNECTING;
	c->deadline = bench_now() + l->wait;
	c->want_out = 1;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.ptr = c;
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, c->fd, &ev) == -1)
		return -1;
	l->active++;
	return 0;
}

/* The body, n octets (0, or 2 and more): lines of SLOAD_BODY_LINE letters
 * and CRLF, the last one shorter, always ending in CRLF so that ".\r\n"
 * after it is the end of data (RFC 5321 §4.1.1.4).  No line starts with
 * '.', so no dot-stuffing is needed; no CR or LF stands alone. */
static int
sload_body(struct sload *l, size_t n)
{
	const size_t line = SLOAD_BODY_LINE + 2;
	size_t k;

	if ((l->body = malloc(n ? n : 1)) == NULL)
		return -1;
	l->body_len = n;
	if (n == 0)
		return 0;
	for (k = 0; k + 2 < n; k++) {
		/* A CRLF inside the body only if both fit before the final
		 * CRLF; otherwise a letter. */
		if (k % line == SLOAD_BODY_LINE && k + 3 < n)
			l->body[k] = '\r';
		else if (k % line == SLOAD_BODY_LINE + 1 &&
		    l->body[k - 1] == '\r')
			l->body[k] = '\n';
		else
			l->body[k] = (char)('a' + k % line % 26);
	}
	l->body[n - 2] = '\r';
	l->body[n - 1] = '\n';
	return 0;
}

static void
sload_usage(void)
{
	fprintf(stderr,
	    "usage: smtp-load -p PORT [-h ADDR] [-s SESSIONS] [-m MESSAGES] "
	    "[-r RCPTS]\n"
	    "                 [-l BYTES] [-T] [-C CAFILE] [-N NAME] [-D] [-K] "
	    "[-X]\n"
	    "                 [-o OFFSET] [-f FROM] [-d DOMAIN] [-H HELO] "
	    "[-w SECONDS]\n");
	exit(2);
}

/* A name or address from the arguments: 1..SLOAD_NAME_MAX octets of
 * printable ASCII without space, '<' or '>'. */
static int
sload_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SLOAD_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (*s <= 0x20 || *s >= 0x7f || *s == '<' || *s == '>')
			return 0;
	return 1;
}

static double
sload_cpu_ms(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

int
main(int argc, char **argv)
{
	struct sload l;
	struct sockaddr_in sa;
	struct epoll_event evs[256];
	const char *host = "127.0.0.1", *cafile = NULL;
	unsigned long long port = 0, sessions = 1, messages = 100, rcpts = 1;
	unsigned long long body = 4096, wait = 60, offset = 0;
	double t0, elapsed, last_check = 0, now;
	size_t k;
	int c, n, i, rc = 1;

	memset(&l, 0, sizeof(l));
	l.ep = -1;
	l.pipelining = 1;
	l.from = "sender@client.bench.test";
	l.domain = "dest.bench.test";
	l.helo = "client.bench.test";
	while (
	    (c = getopt(argc, argv, "h:p:s:m:r:l:TC:N:DKXo:f:d:H:w:")) != -1) {
		switch (c) {
		case 'h':
			host = optarg;
			break;
		case 'p':
			if (bench_num(optarg, 1, 65535, &port) == -1)
				sload_usage();
			break;
		case 's':
			if (bench_num(
			        optarg, 1, SLOAD_SESSIONS_MAX, &sessions) == -1)
				sload_usage();
			break;
		case 'm':
			if (bench_num(
			        optarg, 1, SLOAD_MESSAGES_MAX, &messages) == -1)
				sload_usage();
			break;
		case 'r':
			if (bench_num(optarg, 1, SLOAD_RCPTS_MAX, &rcpts) == -1)
				sload_usage();
			break;
		case 'l':
			/* One octet cannot end in CRLF. */
			if (bench_num(optarg, 0, SLOAD_BODY_MAX, &body) == -1 ||
			    body == 1)
				sload_usage();
			break;
		case 'T':
			l.tls = 1;
			break;
		case 'C':
			cafile = optarg;
			break;
		case 'N':
			if (!sload_name_ok(optarg))
				sload_usage();
			l.servername = optarg;
			break;
		case 'D':
			l.dsn = 1;
			break;
		case 'K':
			l.dsn = l.mtrk = 1;
			break;
		case 'X':
			l.pipelining = 0;
			break;
		case 'o':
			if (bench_num(optarg, 0, SLOAD_OFFSET_MAX, &offset) ==
			    -1)
				sload_usage();
			break;
		case 'f':
			l.from = optarg;
			break;
		case 'd':
			l.domain = optarg;
			break;
		case 'H':
			l.helo = optarg;
			break;
		case 'w':
			if (bench_num(optarg, 1, SLOAD_WAIT_MAX, &wait) == -1)
				sload_usage();
			break;
		default:
			sload_usage();
		}
	}
	if (port == 0 || optind != argc || !sload_name_ok(l.from) ||
	    !sload_name_ok(l.domain) || !sload_name_ok(l.helo) ||
	    ((cafile != NULL || l.servername != NULL) && !l.tls))
		sload_usage();
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "smtp-load: %s: not an IPv4 address\n", host);
		return 2;
	}
	l.nconns = sessions;
	l.messages = messages;
	l.offset = offset;
	l.rcpts = rcpts;
	l.wait = (double)wait;
	if (l.offset + l.messages > SLOAD_OFFSET_MAX + 1)
		sload_usage();
	if (l.tls) {
		if ((l.ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
		    SSL_CTX_set_min_proto_version(l.ctx, TLS1_2_VERSION) != 1) {
			fprintf(stderr, "smtp-load: cannot set up TLS\n");
			goto done;
		}
		/* Partial writes: the output buffer may move and grow
		 * between a write that would block and its retry. */
		SSL_CTX_set_mode(l.ctx,
		    SSL_MODE_ENABLE_PARTIAL_WRITE |
		        SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		if (cafile != NULL) {
			if (SSL_CTX_load_verify_locations(
			        l.ctx, cafile, NULL) != 1) {
				fprintf(stderr, "smtp-load: %s: cannot load\n",
				    cafile);
				goto done;
			}
			SSL_CTX_set_verify(l.ctx, SSL_VERIFY_PEER, NULL);
		} else
			SSL_CTX_set_verify(l.ctx, SSL_VERIFY_NONE, NULL);
	}
	l.ep = epoll_create1(EPOLL_CLOEXEC);
	l.conns = calloc(sessions, sizeof(*l.conns));
	l.hist = bench_hist_new();
	if (l.ep == -1 || l.conns == NULL || l.hist == NULL ||
	    sload_body(&l, body) == -1) {
		fprintf(
		    stderr, "smtp-load: cannot set up: %s\n", strerror(errno));
		goto done;
	}
	for (k = 0; k < sessions; k++)
		l.conns[k].fd = -1;
	t0 = bench_now();
	l.t_last = t0;
	for (k = 0; k < sessions; k++)
		if (sload_connect(&l, &l.conns[k], &sa) == -1) {
			fprintf(stderr, "smtp-load: connect %zu: %s\n", k,
			    strerror(errno));
			if (l.conns[k].fd != -1)
				close(l.conns[k].fd);
			l.conns[k].fd = -1;
			l.conns[k].state = SLOAD_DONE;
			l.conn_errors++;
		}
	while (l.active > 0) {
		n = epoll_wait(l.ep, evs, 256, 100);
		if (n == -1 && errno != EINTR) {
			perror("smtp-load: epoll_wait");
			break;
		}
		for (i = 0; i < n; i++) {
			struct sload_conn *cn = evs[i].data.ptr;

			if (cn->state != SLOAD_DONE)
				sload_event(&l, cn, evs[i].events);
		}
		now = bench_now();
		if (now - last_check < 0.1)
			continue;
		last_check = now;
		for (k = 0; k < sessions; k++) {
			struct sload_conn *cn = &l.conns[k];

			if (cn->state != SLOAD_DONE && now > cn->deadline)
				sload_fail(&l, cn,
				    cn->state == SLOAD_QUIT
				        ? "no reply to QUIT in time"
				        : "timed out");
		}
	}
	elapsed = l.t_last - t0;
	if (elapsed <= 0)
		elapsed = 1e-6;
	printf("smtp-load sessions=%llu messages=%llu rcpts=%llu body=%llu "
	       "tls=%d dsn=%d mtrk=%d pipelining=%d elapsed_s=%.3f "
	       "accepted=%" PRIu64 " failed=%" PRIu64 " unsent=%" PRIu64
	       " msgs_per_s=%.1f p50_us=%" PRIu64 " p99_us=%" PRIu64
	       " p999_us=%" PRIu64 " mean_us=%.0f conn_errors=%" PRIu64
	       " cpu_ms=%.0f tls_version=%s tls_cipher=%s\n",
	    sessions, messages, rcpts, body, l.tls, l.dsn, l.mtrk, l.pipelining,
	    elapsed, l.accepted, l.failed, l.messages - l.next,
	    (double)l.accepted / elapsed, bench_hist_pct(l.hist, 500),
	    bench_hist_pct(l.hist, 990), bench_hist_pct(l.hist, 999),
	    bench_hist_mean(l.hist), l.conn_errors, sload_cpu_ms(),
	    l.tls_version[0] ? l.tls_version : "-",
	    l.tls_cipher[0] ? l.tls_cipher : "-");
	if (l.accepted == l.messages && l.conn_errors == 0)
		rc = 0;
	else
		fprintf(stderr,
		    "smtp-load: %" PRIu64 " of %" PRIu64 " messages accepted, "
		    "%" PRIu64 " failed, %" PRIu64 " unsent, %" PRIu64
		    " session errors\n",
		    l.accepted, l.messages, l.failed, l.messages - l.next,
		    l.conn_errors);
done:
	if (l.conns != NULL)
		for (k = 0; k < sessions; k++) {
			if (l.conns[k].ssl != NULL)
				SSL_free(l.conns[k].ssl);
			if (l.conns[k].fd != -1)
				close(l.conns[k].fd);
			free(l.conns[k].out);
		}
	free(l.conns);
	free(l.body);
	bench_hist_free(l.hist);
	SSL_CTX_free(l.ctx);
	if (l.ep != -1)
		close(l.ep);
	return rc;
}
