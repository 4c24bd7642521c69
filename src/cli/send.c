/*
 * msgtrk send: submit a message over SMTP, trackable by default (RFC
 * 3885 §4: the originating client picks the secret A, sends MTRK=B and a
 * unique ENVID, and keeps A to track the message later).
 *
 * Choices (README material):
 * - Default server localhost:25; "localhost" is the loopback address
 *   without a DNS lookup (RFC 6761 §6.3).  Other names go through
 *   src/dns (--dns, else /etc/resolv.conf), never getaddrinfo().
 * - The EHLO name and the envid's fqhn are the host's canonical name
 *   (getaddrinfo AI_CANONNAME of gethostname(), as msgtrkd's hostname
 *   default), else gethostname(); the default sender is
 *   <login>@<that name>.
 * - TLS: STARTTLS whenever offered.  Without --tls that is opportunistic
 *   (RFC 7435: any certificate); with --tls the server must offer it and
 *   its certificate must verify against --ca-file (or the system store)
 *   and match the server's host name, or nothing is sent.
 * - All or nothing: one refused recipient ends the transaction before
 *   DATA (exit 1, nothing sent, no keyring entry).
 * - The message on stdin may use LF or CRLF line ends; a bare CR, a NUL
 *   or a line over 998 octets (RFC 5321 §4.5.3.1.6) is refused; 8-bit
 *   text is sent with BODY=8BITMIME when the server offers it, else
 *   refused.
 * - --no-track: no ENVID, no MTRK, no keyring; prints nothing on success.
 *   --mtqp, --timeout and --keyring are then accepted (and checked) but
 *   ignored, with one warning on stderr, so that scripts that always
 *   pass them can toggle --no-track alone.
 * - If the keyring cannot be written after the 250, the two lines are
 *   still printed (the URI is the only other copy of the secret) and the
 *   exit status is 1.
 * - --user LOGIN: submission with AUTH PLAIN (RFC 4954), the password
 *   from MSGTRK_PASSWORD or asked on the terminal without echo.  It
 *   implies --tls: the password goes only over TLS whose certificate
 *   verified for the server's name (STARTTLS, or --smtps); the default
 *   port is then 587.  --smtps: TLS from the first byte (RFC 8314),
 *   default port 465.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cli/cli.h"
#include "cli/keyring.h"
#include "cli/send.h"
#include "common/conf.h"
#include "common/tls.h"
#include "dns/dns.h"
#include "msgtrk/b64.h"
#include "msgtrk/buf.h"
#include "msgtrk/date.h"
#include "msgtrk/envid.h"
#include "msgtrk/mtqp.h"
#include "msgtrk/mtrk.h"
#include "msgtrk/smtp_cmd.h"
#include "msgtrk/smtp_reply.h"
#include "msgtrk/str.h"
#include "msgtrk/xtext.h"

#define CMD "send"
/* RFC 5321 §4.5.3.1.6: 1000 octets with CRLF. */
#define SEND_LINE_MAX 998
/* RFC 5321 §4.5.3.2: client timeouts of 5 minutes for each reply, 10
 * for the reply to the final dot; ours for connect. */
#define SEND_TIMEOUT 300
#define SEND_TIMEOUT_DATA_END 600
#define SEND_CONNECT_TIMEOUT 30
/* RFC 5321 §4.5.3.1.4: a command line is at most 512 octets. */
#define SEND_CMD_MAX 512
#define SEND_ADDRS_MAX (2 * DNS_ADDR_MAX)

struct send_conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	struct smtp_reply_parser *rp;
	char err[512];
};

struct send_dns {
	struct event_base *base;
	struct sockaddr_storage *out;
	size_t max, n;
	int done;
	char err[128];
};

static void
send_dns_cb(const struct dns_result *res, void *arg)
{
	struct send_dns *sd = arg;
	size_t i;

	sd->done = 1;
	if (res->status != DNS_OK)
		snprintf(sd->err, sizeof(sd->err), "%s", res->error);
	for (i = 0; i < res->n && sd->n < sd->max; i++) {
		struct sockaddr_storage *ss = &sd->out[sd->n++];

		memset(ss, 0, sizeof(*ss));
		if (res->addr[i].family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)ss;

			sin->sin_family = AF_INET;
			sin->sin_addr = res->addr[i].u.v4;
		} else {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

			sin6->sin6_family = AF_INET6;
			sin6->sin6_addr = res->addr[i].u.v6;
		}
	}
	event_base_loopbreak(sd->base);
}

/* Resolves host into up to max addresses (port unset).  Returns the
 * number, or -1 with err set. */
static int
send_resolve(const char *host, const struct cli_opts *o,
    struct sockaddr_storage *out, size_t max, char *err, size_t errsize)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)out;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
	struct send_dns sd;
	struct dns_opts dopts;
	struct dns *d = NULL;
	char derr[256];

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return 1;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return 1;
	}
	if (str_casecmp(host, "localhost") == 0) { /* RFC 6761 §6.3 */
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return 1;
	}
	memset(&sd, 0, sizeof(sd));
	memset(&dopts, 0, sizeof(dopts));
	dopts.servers = o->dns;
	sd.out = out;
	sd.max = max;
	if ((sd.base = event_base_new()) == NULL) {
		snprintf(err, errsize, "event_base_new failed");
		return -1;
	}
	if ((d = dns_new(sd.base, &dopts, derr, sizeof(derr))) == NULL) {
		snprintf(err, errsize, "DNS: %s", derr);
		goto fail;
	}
	if (dns_addr(d, host, send_dns_cb, &sd) == NULL) {
		snprintf(err, errsize, "DNS: %s", strerror(errno));
		goto fail;
	}
	/* The lookup is bounded by the resolver's timeouts and tries. */
	while (!sd.done)
		if (event_base_dispatch(sd.base) == -1)
			break;
	if (sd.n == 0) {
		snprintf(err, errsize, "%s: %s", host,
		    sd.err[0] ? sd.err : "no address");
		goto fail;
	}
	dns_free(d);
	event_base_free(sd.base);
	return (int)sd.n;
fail:
	dns_free(d);
	event_base_free(sd.base);
	return -1;
}

static int
send_set_timeout(struct send_conn *c, int secs)
{
	struct timeval tv = { secs, 0 };

	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1)
		return -1;
	return 0;
}

/* Connects to one address with a bounded wait.  Returns the socket or -1
 * with errno set. */
static int
send_connect_one(struct sockaddr_storage *ss, unsigned int port)
{
	socklen_t len;
	struct pollfd pfd;
	int fd, flags, soerr = 0, r;

	if (ss->ss_family == AF_INET) {
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in);
	} else {
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in6);
	}
	if ((fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	flags = fcntl(fd, F_GETFL);
	if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		goto fail;
	if (connect(fd, (struct sockaddr *)ss, len) == -1) {
		if (errno != EINPROGRESS)
			goto fail;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		while ((r = poll(&pfd, 1, SEND_CONNECT_TIMEOUT * 1000)) == -1 &&
		    errno == EINTR)
			;
		if (r == 0) {
			errno = ETIMEDOUT;
			goto fail;
		}
		len = sizeof(soerr);
		if (r < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
			goto fail;
		if (soerr != 0) {
			errno = soerr;
			goto fail;
		}
	}
	if (fcntl(fd, F_SETFL, flags) == -1)
		goto fail;
	return fd;
fail:
	r = errno;
	close(fd);
	errno = r;
	return -1;
}

static int
send_write(struct send_conn *c, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		ssize_t w;

		if (c->ssl != NULL) {
			int k =
			    SSL_write(c->ssl, s, n > 65536 ? 65536 : (int)n);

			if (k <= 0) {
				snprintf(c->err, sizeof(c->err),
				    "TLS write failed: %s", tls_error());
				return -1;
			}
			w = k;
		} else if ((w = send(c->fd, s, n, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(c->err, sizeof(c->err), "write: %s",
			    errno == EAGAIN ? "timed out" : strerror(errno));
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads the next reply.  Returns 0 with *r set, -1 with c->err set. */
static int
send_reply(struct send_conn *c, const struct smtp_reply_msg **r)
{
	enum smtp_reply_error e;
	char tmp[4096];
	int k;

	for (;;) {
		size_t room;
		ssize_t got;

		if ((k = smtp_reply_next(c->rp, r, &e)) == 1)
			return 0;
		if (k == -1) {
			snprintf(c->err, sizeof(c->err),
			    "malformed reply from the server: %s",
			    smtp_reply_error_name(e));
			return -1;
		}
		room = smtp_reply_room(c->rp);
		if (room > sizeof(tmp))
			room = sizeof(tmp);
		if (room == 0) {
			snprintf(c->err, sizeof(c->err), "reply too long");
			return -1;
		}
		if (c->ssl != NULL) {
			int n = SSL_read(c->ssl, tmp, (int)room);

			if (n <= 0) {
				snprintf(c->err, sizeof(c->err),
				    "connection closed by the server%s%s",
				    tls_error()[0] ? ": " : "", tls_error());
				return -1;
			}
			got = n;
		} else if ((got = recv(c->fd, tmp, room, 0)) <= 0) {
			if (got < 0 && errno == EINTR)
				continue;
			snprintf(c->err, sizeof(c->err), "%s",
			    got == 0 ? "connection closed by the server"
			        : errno == EAGAIN
			        ? "timed out waiting for a reply"
			        : strerror(errno));
			return -1;
		}
		if (smtp_reply_push(c->rp, tmp, (size_t)got) == -1) {
			snprintf(c->err, sizeof(c->err), "reply: %s",
			    strerror(errno));
			return -1;
		}
	}
}

/* Describes reply r to what (the command) in c->err. */
static void
send_bad_reply(
    struct send_conn *c, const char *what, const struct smtp_reply_msg *r)
{
	char text[256];
	size_t n;
	const char *l = smtp_reply_line(r, 0, &n);

	str_printable(text, sizeof(text), l ? l : "", l ? n : 0);
	snprintf(c->err, sizeof(c->err), "%s: %d%s%s %s", what, r->code,
	    r->status[0] ? " " : "", r->status, text);
}

/* Sends line (CRLF added) and reads the reply.  Returns 0 with *r set. */
static int
send_cmd(struct send_conn *c, const char *line, const struct smtp_reply_msg **r)
{
	char out[SMTP_CMD_LINE_MAX_MAILRCPT + 3];
	int n;

	/* One write per command: a CRLF sent on its own would wait for the
	 * peer's delayed ACK (Nagle), 40 ms a command. */
	n = snprintf(out, sizeof(out), "%s\r\n", line);
	if (n < 0 || (size_t)n >= sizeof(out)) {
		snprintf(c->err, sizeof(c->err), "command line too long");
		return -1;
	}
	if (send_write(c, out, (size_t)n) == -1) {
		explicit_bzero(out, sizeof(out));
		return -1;
	}
	/* It may have held AUTH's credentials. */
	explicit_bzero(out, sizeof(out));
	return send_reply(c, r);
}

static void send_reply_fail(struct send_conn *c, struct send_result *res,
    enum send_outcome perm, const char *what, const struct smtp_reply_msg *r);

/* The client side of a TLS handshake on c (after STARTTLS's 220, or
 * first thing for implicit TLS).  verify: the certificate must chain to
 * --ca-file (or the system store) and match host. */
static int
send_tls(
    struct send_conn *c, const char *host, int verify, const struct cli_opts *o)
{
	char terr[256];
	long v;

	if ((c->ctx = tls_client_ctx(verify, o->ca_file, terr, sizeof(terr))) ==
	    NULL) {
		snprintf(c->err, sizeof(c->err), "TLS: %s", terr);
		return -1;
	}
	if ((c->ssl = SSL_new(c->ctx)) == NULL ||
	    SSL_set_fd(c->ssl, c->fd) != 1 ||
	    tls_client_expect(c->ssl, host) == -1) {
		snprintf(c->err, sizeof(c->err), "TLS: %s", tls_error());
		return -1;
	}
	if (SSL_connect(c->ssl) != 1) {
		v = SSL_get_verify_result(c->ssl);
		if (verify && v != X509_V_OK)
			snprintf(c->err, sizeof(c->err),
			    "TLS: certificate of %s not accepted: %s", host,
			    X509_verify_cert_error_string(v));
		else
			snprintf(c->err, sizeof(c->err),
			    "TLS handshake with %s failed: %s", host,
			    tls_error()[0] ? tls_error() : "closed");
		SSL_free(c->ssl);
		c->ssl = NULL;
		return -1;
	}
	smtp_reply_parser_clear(c->rp);
	return 0;
}

static int
send_starttls(
    struct send_conn *c, const char *host, int verify, const struct cli_opts *o)
{
	const struct smtp_reply_msg *r;

	if (send_cmd(c, "STARTTLS", &r) == -1)
		return -1;
	if (r->code != 220) {
		send_bad_reply(c, "STARTTLS", r);
		return -1;
	}
	/* RFC 3207 §5 and CVE-2011-0411: nothing may follow the 220 before
	 * the handshake. */
	if (smtp_reply_pending(c->rp) != 0) {
		snprintf(c->err, sizeof(c->err),
		    "the server sent data after its STARTTLS reply");
		return -1;
	}
	return send_tls(c, host, verify, o);
}

/* AUTH PLAIN (RFC 4954, RFC 4616) inside TLS: the initial response when
 * the command fits in 512 octets, else after the empty 334.  Returns 0
 * (235), or -1 with c->err and res->outcome set.  Every copy of the
 * password is wiped. */
static int
send_auth(
    struct send_conn *c, const struct send_req *req, struct send_result *res)
{
	const struct smtp_reply_msg *r;
	size_t ul = strlen(req->user), pl = strlen(req->password), n;
	/* PLAIN's message at its largest, in base64: 684 characters. */
	char raw[2 * 256 + 2], b64[700], line[SEND_CMD_MAX];
	int rc = -1, k;

	if (c->ssl == NULL) {
		/* Never in plaintext, whatever the server offers. */
		snprintf(c->err, sizeof(c->err),
		    "no TLS: refusing to send the password");
		res->outcome = SEND_FAIL_CAPS;
		return -1;
	}
	if (ul == 0 || ul > 255 || pl == 0 || pl > 255) {
		snprintf(c->err, sizeof(c->err),
		    "login and password must be 1 to 255 octets");
		res->outcome = SEND_FAIL_LOCAL;
		return -1;
	}
	raw[0] = '\0';
	memcpy(raw + 1, req->user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, req->password, pl);
	n = 2 + ul + pl;
	if ((k = b64_encode(raw, n, B64_PAD_REQUIRED, b64, sizeof(b64))) == -1)
		goto done;
	explicit_bzero(raw, sizeof(raw));
	res->outcome = SEND_FAIL_TEMP;
	/* RFC 4954 §4: the command stays within 512 octets with CRLF. */
	if ((size_t)k + sizeof("AUTH PLAIN ") - 1 <= SEND_CMD_MAX - 2) {
		memcpy(line, "AUTH PLAIN ", 11);
		memcpy(line + 11, b64, (size_t)k + 1);
		if (send_cmd(c, line, &r) == -1)
			goto done;
	} else {
		if (send_cmd(c, "AUTH PLAIN", &r) == -1)
			goto done;
		if (r->code == 334 && send_cmd(c, b64, &r) == -1)
			goto done;
	}
	if (r->code != 235) {
		send_reply_fail(c, res, SEND_FAIL_PERM, "AUTH", r);
		goto done;
	}
	rc = 0;
done:
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(line, sizeof(line));
	explicit_bzero(b64, sizeof(b64));
	return rc;
}

static int
send_ehlo(struct send_conn *c, const char *helo, struct smtp_reply_ehlo *e)
{
	const struct smtp_reply_msg *r;
	char line[SEND_CMD_MAX];

	snprintf(line, sizeof(line), "EHLO %s", helo);
	if (send_cmd(c, line, &r) == -1)
		return -1;
	if (smtp_reply_ehlo(r, e) == -1) {
		send_bad_reply(c, "EHLO", r);
		return -1;
	}
	/* e points into the reply; only ext and size are used later. */
	return 0;
}

/* Builds the DATA payload from the message: CRLF line ends,
 * dot-stuffing (RFC 5321 §4.5.2), the final ".".  Sets *eight_bit. */
static int
send_body(const struct buf *in, struct buf *out, int *eight_bit, char *err,
    size_t errsize)
{
	const unsigned char *p = (const unsigned char *)in->data;
	size_t i, col = 0, line = 1;
	int rc = 0;

	*eight_bit = 0;
	for (i = 0; i < in->len && rc == 0; i++) {
		unsigned char ch = p[i];

		if (ch == '\0') {
			snprintf(
			    err, errsize, "message line %zu: NUL octet", line);
			return -1;
		}
		if (ch == '\r') {
			if (i + 1 >= in->len || p[i + 1] != '\n') {
				snprintf(err, errsize,
				    "message line %zu: bare CR", line);
				return -1;
			}
			continue;
		}
		if (ch == '\n') {
			rc = buf_add(out, "\r\n", 2);
			col = 0;
			line++;
			continue;
		}
		if (ch >= 0x80)
			*eight_bit = 1;
		if (col == 0 && ch == '.')
			rc = buf_addc(out, '.');
		if (++col > SEND_LINE_MAX) {
			snprintf(err, errsize,
			    "message line %zu: longer than %d octets", line,
			    SEND_LINE_MAX);
			return -1;
		}
		if (rc == 0)
			rc = buf_addc(out, ch);
	}
	if (rc == 0 && col > 0)
		rc = buf_add(out, "\r\n", 2);
	if (rc == 0)
		rc = buf_add(out, ".\r\n", 3);
	if (rc != 0) {
		snprintf(err, errsize, "message too large");
		return -1;
	}
	return 0;
}

int
send_read_stdin(struct buf *b, char *err, size_t errsize)
{
	for (;;) {
		char *p = buf_append_space(b, 65536);
		ssize_t r;

		if (p == NULL) {
			snprintf(err, errsize,
			    "message on stdin larger than %lu octets",
			    SEND_MESSAGE_MAX);
			return -1;
		}
		r = read(STDIN_FILENO, p, 65536);
		if (r < 0) {
			buf_truncate(b, b->len - 65536);
			if (errno == EINTR)
				continue;
			snprintf(err, errsize, "stdin: %s", strerror(errno));
			return -1;
		}
		buf_truncate(b, b->len - 65536 + (size_t)r);
		if (r == 0)
			return 0;
	}
}

/* Normalises --notify: NEVER, or a list of SUCCESS, FAILURE, DELAY (RFC
 * 3461 §4.1).  Returns 0 or -1. */
static int
send_notify(const char *in, char *out, size_t outsize)
{
	char tmp[64], *tok, *save = NULL;
	unsigned int seen = 0;
	size_t used = 0;

	if (str_copy(tmp, in, sizeof(tmp)) >= sizeof(tmp))
		return -1;
	out[0] = '\0';
	for (tok = strtok_r(tmp, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		static const char *const names[] = { "NEVER", "SUCCESS",
			"FAILURE", "DELAY" };
		unsigned int i;

		for (i = 0; i < 4; i++)
			if (str_casecmp(tok, names[i]) == 0)
				break;
		if (i == 4 || (seen & (1U << i)))
			return -1;
		seen |= 1U << i;
		used += (size_t)snprintf(out + used, outsize - used, "%s%s",
		    used ? "," : "", names[i]);
		if (used >= outsize)
			return -1;
	}
	if (seen == 0 || ((seen & 1) && seen != 1))
		return -1; /* "NEVER" stands alone (RFC 3461 §4.1) */
	return 0;
}

/* The host's fully-qualified name (RFC 3885 §3.2 wants one in the
 * envid): msgtrkd's hostname default, i.e. the canonical name of
 * gethostname() when that is a dotted domain name, else gethostname()
 * itself (conf_defaults()); "localhost" if even that fails. */
void
send_hostname(char *out, size_t size)
{
	struct conf c;
	char err[256];

	if (conf_defaults(&c, err, sizeof(err)) == 0 && c.hostname[0] != '\0')
		str_copy(out, c.hostname, size);
	else if (gethostname(out, size) == -1 || out[0] == '\0' ||
	    memchr(out, '\0', size) == NULL)
		str_copy(out, "localhost", size);
	conf_free(&c);
}

static void
send_usage(void)
{
	fprintf(stderr,
	    "usage: msgtrk send [--server HOST[:PORT]] [--mtqp HOST[:PORT]] "
	    "[--tls]\n"
	    "                   [--smtps] [--user LOGIN] [--from ADDR] "
	    "[--notify LIST]\n"
	    "                   [--ret full|hdrs] [--timeout DUR] "
	    "[--keyring FILE]\n"
	    "                   [--no-track] RCPT... < message\n");
}

/* The password for --user: MSGTRK_PASSWORD, else asked on the terminal
 * (/dev/tty) without echo.  Returns 0, or -1 with err set. */
static int
send_password(
    const char *user, char *out, size_t outsize, char *err, size_t errsize)
{
	const char *env = getenv("MSGTRK_PASSWORD");
	struct termios old, quiet;
	FILE *tty;
	int ok;
	size_t n;

	if (env != NULL) {
		if (str_copy(out, env, outsize) >= outsize || out[0] == '\0') {
			snprintf(err, errsize,
			    "MSGTRK_PASSWORD: empty or longer than 255 octets");
			return -1;
		}
		return 0;
	}
	if ((tty = fopen("/dev/tty", "r+")) == NULL) {
		snprintf(err, errsize,
		    "--user: no terminal to ask the password on (set "
		    "MSGTRK_PASSWORD)");
		return -1;
	}
	if (tcgetattr(fileno(tty), &old) == -1) {
		fclose(tty);
		snprintf(err, errsize, "/dev/tty: %s", strerror(errno));
		return -1;
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	fprintf(tty, "Password for %s: ", user);
	fflush(tty);
	(void)tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	ok = fgets(out, (int)outsize, tty) != NULL;
	(void)tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fputc('\n', tty);
	fclose(tty);
	n = ok ? strcspn(out, "\r\n") : 0;
	if (!ok || out[n] == '\0' || n == 0) {
		/* no line end: longer than the buffer, or end of input */
		explicit_bzero(out, outsize);
		snprintf(err, errsize,
		    "--user: no password, or longer than 255 octets");
		return -1;
	}
	out[n] = '\0';
	return 0;
}

/* A reply r to what ends the submission: 4xx temporary, 5xx permanent
 * (perm the outcome for a 5xx), anything else unexpected. */
static void
send_reply_fail(struct send_conn *c, struct send_result *res,
    enum send_outcome perm, const char *what, const struct smtp_reply_msg *r)
{
	send_bad_reply(c, what, r);
	if (r->code >= 400 && r->code < 500)
		res->outcome = SEND_FAIL_TEMP;
	else if (r->code >= 500 && r->code < 600)
		res->outcome = perm;
	else
		res->outcome = SEND_FAIL_PROTO;
}

int
send_submit(const struct send_req *req, const struct cli_opts *o,
    struct send_result *res)
{
	char line[SEND_CMD_MAX], envid[ENVID_MAX + 1];
	char cert[MTRK_CERTIFIER_LEN + 1], err[512];
	unsigned char secret[MTRK_SECRET_LEN];
	struct sockaddr_storage addrs[SEND_ADDRS_MAX];
	struct send_conn c;
	struct smtp_reply_ehlo *ehlo = NULL;
	const struct smtp_reply_msg *r;
	struct buf body, param, envx, uri;
	struct keyring_entry ke;
	enum envid_error ee;
	int eight_bit, naddr, track = req->track, rc = CLI_EXIT_FAIL;
	size_t i;

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	memset(&ke, 0, sizeof(ke));
	memset(res, 0, sizeof(*res));
	res->outcome = SEND_FAIL_LOCAL;
	explicit_bzero(secret, sizeof(secret));
	buf_init(&body, 2 * SEND_MESSAGE_MAX + 8);
	buf_init(&param, SEND_CMD_MAX);
	buf_init(&envx, MTQP_ENVID_TEXT_MAX);
	buf_init(&uri, MTQP_URI_MAX);

	if (send_body(req->message, &body, &eight_bit, err, sizeof(err)) ==
	    -1) {
		snprintf(res->err, sizeof(res->err), "%s", err);
		res->outcome = SEND_FAIL_DATA;
		goto cleanup;
	}
	res->outcome = SEND_FAIL_TEMP;
	if ((naddr = send_resolve(req->host, o, addrs, SEND_ADDRS_MAX, err,
	         sizeof(err))) == -1) {
		snprintf(res->err, sizeof(res->err), "%s", err);
		goto cleanup;
	}
	for (i = 0; i < (size_t)naddr && c.fd == -1; i++)
		c.fd = send_connect_one(&addrs[i], req->port);
	if (c.fd == -1) {
		snprintf(res->err, sizeof(res->err),
		    "connect to %s port %u: %s", req->host, req->port,
		    strerror(errno));
		goto cleanup;
	}
	if ((c.rp = smtp_reply_parser_new(0)) == NULL ||
	    (ehlo = malloc(sizeof(*ehlo))) == NULL) {
		snprintf(res->err, sizeof(res->err), "out of memory");
		res->outcome = SEND_FAIL_LOCAL;
		goto cleanup;
	}
	/* From here on an I/O error is temporary; replies decide the rest. */
	if (send_set_timeout(&c, SEND_TIMEOUT) == -1)
		goto fail;
	/* RFC 8314 §3: implicit TLS, before the greeting. */
	if (req->smtps && send_tls(&c, req->host, req->tls, o) == -1) {
		res->outcome = SEND_FAIL_PROTO;
		goto fail;
	}
	if (send_reply(&c, &r) == -1)
		goto fail;
	if (r->code != 220) {
		send_reply_fail(&c, res, SEND_FAIL_PERM, "greeting", r);
		goto fail;
	}
	if (send_ehlo(&c, req->helo, ehlo) == -1) {
		res->outcome = SEND_FAIL_PROTO;
		goto fail;
	}
	if (c.ssl != NULL)
		; /* implicit TLS */
	else if (ehlo->ext & SMTP_EHLO_STARTTLS) {
		if (send_starttls(&c, req->host, req->tls, o) == -1 ||
		    send_ehlo(&c, req->helo, ehlo) == -1) {
			res->outcome = SEND_FAIL_PROTO;
			goto fail;
		}
	} else if (req->tls || req->user != NULL) {
		snprintf(c.err, sizeof(c.err),
		    "%s does not offer STARTTLS (%s)", req->host,
		    req->user != NULL ? "--user needs TLS" : "--tls");
		res->outcome = SEND_FAIL_CAPS;
		goto fail;
	}
	if (req->user != NULL && send_auth(&c, req, res) == -1)
		goto fail;
	if (track && req->track_optional &&
	    (ehlo->ext & (SMTP_EHLO_MTRK | SMTP_EHLO_DSN)) !=
	        (SMTP_EHLO_MTRK | SMTP_EHLO_DSN))
		track = 0;
	if (track && !(ehlo->ext & SMTP_EHLO_MTRK)) {
		snprintf(c.err, sizeof(c.err),
		    "%s does not offer MTRK (RFC 3885); use --no-track",
		    req->host);
		res->outcome = SEND_FAIL_CAPS;
		goto fail;
	}
	if ((track || req->notify || req->ret) &&
	    !(ehlo->ext & SMTP_EHLO_DSN)) {
		snprintf(c.err, sizeof(c.err),
		    "%s does not offer DSN (RFC 3461) for ENVID, NOTIFY, RET",
		    req->host);
		res->outcome = SEND_FAIL_CAPS;
		goto fail;
	}
	if (eight_bit && !(ehlo->ext & SMTP_EHLO_8BITMIME)) {
		snprintf(c.err, sizeof(c.err),
		    "the message has 8-bit octets and %s does not offer "
		    "8BITMIME",
		    req->host);
		res->outcome = SEND_FAIL_DATA;
		goto fail;
	}

	/* MAIL FROM with the tracking parameters (RFC 3885 §4). */
	buf_addf(&param, "MAIL FROM:<%s>", req->from);
	if (ehlo->ext & SMTP_EHLO_SIZE)
		buf_addf(&param, " SIZE=%zu", body.len);
	if (eight_bit)
		buf_adds(&param, " BODY=8BITMIME");
	if (req->ret)
		buf_addf(&param, " RET=%s", req->ret);
	if (track) {
		if (envid_generate(
		        req->helo, NULL, envid, sizeof(envid), &ee) == -1) {
			snprintf(c.err, sizeof(c.err),
			    "envid (host \"%.64s\"): %s", req->helo,
			    envid_strerror(ee));
			res->outcome = SEND_FAIL_LOCAL;
			goto fail;
		}
		if (mtrk_secret_new(secret) == -1 ||
		    mtrk_certifier(secret, sizeof(secret), cert) == -1 ||
		    mtrk_secret_encode(secret, sizeof(secret), ke.secret,
		        sizeof(ke.secret)) == -1) {
			snprintf(c.err, sizeof(c.err),
			    "cannot make the MTRK secret: %s", tls_error());
			res->outcome = SEND_FAIL_LOCAL;
			goto fail;
		}
		explicit_bzero(secret, sizeof(secret));
		if (xtext_encode(&envx, envid, strlen(envid)) == -1 ||
		    buf_adds(&param, " ENVID=") == -1 ||
		    buf_add(&param, envx.data, envx.len) == -1 ||
		    buf_addc(&param, ' ') == -1 ||
		    mtrk_param_format(&param, cert, req->has_timeout,
		        (unsigned long)req->timeout) == -1) {
			snprintf(c.err, sizeof(c.err), "MAIL command too long");
			res->outcome = SEND_FAIL_DATA;
			goto fail;
		}
	}
	if (param.len >= SEND_CMD_MAX) {
		snprintf(c.err, sizeof(c.err), "MAIL command too long");
		res->outcome = SEND_FAIL_DATA;
		goto fail;
	}
	if (send_cmd(&c, buf_cstr(&param), &r) == -1)
		goto fail;
	if (r->code != 250) {
		send_reply_fail(&c, res, SEND_FAIL_PERM, "MAIL FROM", r);
		goto fail;
	}
	for (i = 0; i < req->nrcpt; i++) {
		const char *a = req->rcpts[i];

		buf_clear(&param);
		buf_addf(&param, "RCPT TO:<%s>", a);
		if (req->notify)
			buf_addf(&param, " NOTIFY=%s", req->notify);
		if (ehlo->ext & SMTP_EHLO_DSN) {
			/* RFC 3461 §4.2: ORCPT=rfc822;<xtext>, so every hop
			 * reports the recipient as we named it. */
			buf_adds(&param, " ORCPT=rfc822;");
			if (xtext_encode(&param, a, strlen(a)) == -1) {
				snprintf(c.err, sizeof(c.err),
				    "RCPT command too long");
				res->outcome = SEND_FAIL_DATA;
				goto fail;
			}
		}
		if (param.len >= SEND_CMD_MAX) {
			snprintf(c.err, sizeof(c.err), "RCPT command too long");
			res->outcome = SEND_FAIL_DATA;
			goto fail;
		}
		if (send_cmd(&c, buf_cstr(&param), &r) == -1)
			goto fail;
		if (r->code != 250 && r->code != 251) {
			snprintf(line, sizeof(line), "RCPT TO:<%.300s>", a);
			send_reply_fail(&c, res, SEND_FAIL_RCPT, line, r);
			goto fail;
		}
	}
	if (send_cmd(&c, "DATA", &r) == -1)
		goto fail;
	if (r->code != 354) {
		send_reply_fail(&c, res, SEND_FAIL_PERM, "DATA", r);
		goto fail;
	}
	if (send_write(&c, body.data, body.len) == -1 ||
	    send_set_timeout(&c, SEND_TIMEOUT_DATA_END) == -1 ||
	    send_reply(&c, &r) == -1)
		goto fail;
	if (r->code != 250) {
		send_reply_fail(&c, res, SEND_FAIL_PERM, "end of DATA", r);
		goto fail;
	}
	/* Accepted: the rest cannot undo it. */
	(void)send_cmd(&c, "QUIT", &r);
	res->outcome = SEND_OK;
	res->tracked = track;
	rc = CLI_EXIT_OK;
	if (!track)
		goto cleanup;

	{
		struct mtqp_uri u;
		struct date now = { time(NULL), 0 };
		const char *mhost = req->mhost;

		memset(&u, 0, sizeof(u));
		str_copy(ke.envid, buf_cstr(&envx), sizeof(ke.envid));
		snprintf(ke.server, sizeof(ke.server),
		    strchr(req->host, ':') ? "[%s]:%u" : "%s:%u", req->host,
		    req->port);
		snprintf(ke.mtqp, sizeof(ke.mtqp),
		    req->mport_given
		        ? (strchr(mhost, ':') ? "[%s]:%u" : "%s:%u")
		        : (strchr(mhost, ':') ? "[%s]" : "%s"),
		    mhost, req->mport);
		if (date_format(&now, ke.submitted, sizeof(ke.submitted)) == -1)
			ke.submitted[0] = '\0';
		ke.nrecipients = req->nrcpt;
		/* The URI's host: brackets for an IPv6 literal. */
		snprintf(u.host, sizeof(u.host),
		    strchr(mhost, ':') ? "[%s]" : "%s", mhost);
		u.port = req->mport;
		u.port_given = req->mport_given;
		str_copy(u.envid, ke.envid, sizeof(u.envid));
		str_copy(u.secret, ke.secret, sizeof(u.secret));
		if (mtqp_uri_format(&uri, &u) == -1) {
			explicit_bzero(&u, sizeof(u));
			snprintf(res->err, sizeof(res->err),
			    "the message was accepted, but its mtqp: URI "
			    "could not be written");
			res->outcome = SEND_FAIL_LOCAL;
			rc = CLI_EXIT_FAIL;
			goto cleanup;
		}
		explicit_bzero(&u, sizeof(u));
		str_copy(res->envid, ke.envid, sizeof(res->envid));
		str_copy(res->uri, buf_cstr(&uri), sizeof(res->uri));
		if (keyring_append(req->keyring, &ke, req->rcpts, req->nrcpt,
		        err, sizeof(err)) == -1) {
			snprintf(res->err, sizeof(res->err),
			    "the message was accepted, but the keyring was not "
			    "updated: %s",
			    err);
			res->outcome = SEND_FAIL_KEYRING;
			rc = CLI_EXIT_FAIL;
		}
	}
	goto cleanup;
fail:
	snprintf(res->err, sizeof(res->err), "%s: %s", req->host, c.err);
	rc = CLI_EXIT_FAIL;
cleanup:
	explicit_bzero(secret, sizeof(secret));
	keyring_entry_clear(&ke);
	buf_wipe(&uri);
	if (c.ssl != NULL) {
		SSL_shutdown(c.ssl);
		SSL_free(c.ssl);
	}
	SSL_CTX_free(c.ctx);
	if (c.fd != -1)
		close(c.fd);
	smtp_reply_parser_free(c.rp);
	free(ehlo);
	buf_reset(&body);
	buf_reset(&param);
	buf_reset(&envx);
	return rc;
}

int
send_main(int argc, char **argv, const struct cli_opts *o)
{
	static const struct option longopts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "mtqp", required_argument, NULL, 'm' },
		{ "tls", no_argument, NULL, 'T' },
		{ "from", required_argument, NULL, 'f' },
		{ "notify", required_argument, NULL, 'N' },
		{ "ret", required_argument, NULL, 'R' },
		{ "timeout", required_argument, NULL, 't' },
		{ "keyring", required_argument, NULL, 'k' },
		{ "no-track", no_argument, NULL, 'n' },
		{ "user", required_argument, NULL, 'u' },
		{ "smtps", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *server = "localhost", *mtqp = NULL, *from = NULL;
	const char *ret = NULL, *keyring = NULL, *user = NULL;
	char notify[64] = "", helo[256], deffrom[600], password[257];
	char host[256], mhost[256], kpath[4096], err[512];
	unsigned int port, mport;
	int tls = 0, track = 1, has_timeout = 0, ch, mgiven, rc = CLI_EXIT_FAIL;
	int smtps = 0;
	int nrcpt, i;
	time_t timeout = 0;
	struct send_req req;
	struct send_result *res = NULL;
	struct buf msg;

	buf_init(&msg, SEND_MESSAGE_MAX);
	password[0] = '\0';
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			server = optarg;
			break;
		case 'm':
			mtqp = optarg;
			break;
		case 'T':
			tls = 1;
			break;
		case 'f':
			from = optarg;
			break;
		case 'N':
			if (send_notify(optarg, notify, sizeof(notify)) == -1) {
				cli_err(CMD,
				    "--notify: expected NEVER or a list of "
				    "SUCCESS, FAILURE, DELAY");
				goto usage;
			}
			break;
		case 'R':
			if (str_casecmp(optarg, "full") == 0)
				ret = "FULL";
			else if (str_casecmp(optarg, "hdrs") == 0)
				ret = "HDRS";
			else {
				cli_err(CMD, "--ret: expected full or hdrs");
				goto usage;
			}
			break;
		case 't':
			if (conf_parse_duration(optarg, &timeout) == -1 ||
			    timeout < 1 ||
			    (unsigned long)timeout > MTRK_TIMEOUT_MAX) {
				cli_err(CMD,
				    "--timeout: expected a duration of 1s to "
				    "%lus (RFC 3885 mtrk-timeout)",
				    MTRK_TIMEOUT_MAX);
				goto usage;
			}
			has_timeout = 1;
			break;
		case 'k':
			keyring = optarg;
			break;
		case 'n':
			track = 0;
			break;
		case 'u':
			user = optarg;
			break;
		case 'S':
			smtps = 1;
			break;
		case 'h':
			send_usage();
			rc = CLI_EXIT_OK;
			goto cleanup;
		default:
			cli_err(CMD, "unknown option or missing value: %s",
			    argv[optind - 1]);
			goto usage;
		}
	}
	/* Options after the recipients as well. */
	nrcpt = argc - optind;
	if (nrcpt < 1) {
		cli_err(CMD, "no recipient");
		goto usage;
	}
	if (nrcpt > SEND_RCPT_MAX) {
		cli_err(CMD, "more than %d recipients", SEND_RCPT_MAX);
		goto usage;
	}
	for (i = optind; i < argc; i++)
		if (!cli_addr_ok(argv[i])) {
			cli_err(CMD, "recipient \"%.300s\": not an address",
			    argv[i]);
			goto usage;
		}
	if (user != NULL &&
	    (user[0] == '\0' || strlen(user) > 255 ||
	        strpbrk(user, "\r\n") != NULL)) {
		cli_err(CMD, "--user: expected a login of 1 to 255 octets");
		goto usage;
	}
	/* RFC 8314: 465 with implicit TLS; RFC 6409: 587 for submission. */
	port = 25;
	if (smtps)
		port = 465;
	else if (user != NULL)
		port = 587;
	if (cli_hostport(server, port, host, sizeof(host), &port, NULL) == -1) {
		cli_err(CMD, "--server: expected HOST[:PORT]");
		goto usage;
	}
	/* A password goes only where the certificate says it should. */
	if (user != NULL)
		tls = 1;
	if (cli_hostport(mtqp ? mtqp : host, MTQP_PORT, mhost, sizeof(mhost),
	        &mport, &mgiven) == -1) {
		cli_err(CMD, "--mtqp: expected HOST[:PORT]");
		goto usage;
	}
	if (!track && (mtqp || has_timeout || keyring)) {
		cli_err(NULL, "--no-track: ignoring %s%s%s%s%s",
		    mtqp ? "--mtqp" : "",
		    mtqp && (has_timeout || keyring) ? ", " : "",
		    has_timeout ? "--timeout" : "",
		    has_timeout && keyring ? ", " : "",
		    keyring ? "--keyring" : "");
		mtqp = keyring = NULL;
		has_timeout = 0;
	}
	send_hostname(helo, sizeof(helo));
	if (from == NULL) {
		struct passwd *pw = getpwuid(getuid());

		snprintf(deffrom, sizeof(deffrom), "%s@%s",
		    pw ? pw->pw_name : "root", helo);
		from = deffrom;
	}
	if (from[0] != '\0' && !cli_addr_ok(from)) {
		cli_err(CMD, "--from \"%.300s\": not an address", from);
		goto usage;
	}
	if (track) {
		if (keyring == NULL) {
			if (keyring_default_path(
			        kpath, sizeof(kpath), err, sizeof(err)) == -1) {
				cli_err(CMD, "%s", err);
				goto usage;
			}
		} else if (str_copy(kpath, keyring, sizeof(kpath)) >=
		    sizeof(kpath)) {
			cli_err(CMD, "--keyring: path too long");
			goto usage;
		}
	}

	if (user != NULL &&
	    send_password(user, password, sizeof(password), err, sizeof(err)) ==
	        -1) {
		cli_err(CMD, "%s", err);
		rc = CLI_EXIT_USAGE;
		goto cleanup;
	}
	if (send_read_stdin(&msg, err, sizeof(err)) == -1) {
		cli_err(CMD, "%s", err);
		goto cleanup;
	}
	if ((res = malloc(sizeof(*res))) == NULL) {
		cli_err(CMD, "out of memory");
		goto cleanup;
	}
	memset(&req, 0, sizeof(req));
	req.host = host;
	req.port = port;
	req.mhost = mhost;
	req.mport = mport;
	req.mport_given = mgiven;
	req.helo = helo;
	req.from = from;
	req.rcpts = (const char *const *)(argv + optind);
	req.nrcpt = (size_t)nrcpt;
	req.notify = notify[0] ? notify : NULL;
	req.ret = ret;
	req.tls = tls;
	req.smtps = smtps;
	req.user = user;
	req.password = user != NULL ? password : NULL;
	req.track = track;
	req.has_timeout = has_timeout;
	req.timeout = timeout;
	req.keyring = kpath;
	req.message = &msg;
	rc = send_submit(&req, o, res);
	if (res->outcome != SEND_OK)
		cli_err(CMD, "%s", res->err);
	/* If the keyring could not be written the two lines are printed all
	 * the same: the URI is the only other copy of the secret. */
	if (res->outcome == SEND_OK || res->outcome == SEND_FAIL_KEYRING) {
		if (res->tracked)
			printf("envid: %s\nuri: %s\n", res->envid, res->uri);
		if (fflush(stdout) == EOF) {
			cli_err(CMD, "stdout: %s", strerror(errno));
			rc = CLI_EXIT_FAIL;
		}
	}
	goto cleanup;
usage:
	send_usage();
	rc = CLI_EXIT_USAGE;
cleanup:
	explicit_bzero(password, sizeof(password));
	if (res != NULL) {
		explicit_bzero(res, sizeof(*res));
		free(res);
	}
	buf_reset(&msg);
	return rc;
}
