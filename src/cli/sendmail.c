/*
 * msgtrk sendmail: the sendmail(8) command-line interface that cron, PHP
 * and mail user agents use, submitting to the local msgtrkd over SMTP
 * with tracking (send.c's client) and the caller's keyring.  The same
 * program called as "sendmail" (argv[0]'s base name) is this command.
 *
 * Choices (msgtrk(1) documents them):
 * - The server is the first smtp_listen of msgtrkd's configuration (-C
 *   FILE, default /etc/msgtrk/msgtrkd.conf; an unspecified address means
 *   loopback), or --server; without the default file, localhost:25.  The
 *   MTQP server in the keyring is likewise the first mtqp_listen.
 * - A bare local part ("root", as cron sends) gets "@" and the first of
 *   local_domains, else the configuration's hostname.
 * - Options: -t, -i, -oi, -f/-r ADDR, -F NAME, -N DSN, -R RET, -C FILE;
 *   the other common ones are accepted and ignored (-oX, -bm, -odX,
 *   -oeX, -eX, -v, -m, -n, -U, -G, -B TYPE, -L LABEL, -h N, -V ENVID,
 *   -O OPT); other modes (-bp, -bs, -bi, -q...) and unknown options are
 *   usage errors (EX_USAGE).
 * - Like Postfix: with -t the header recipients add to those of the
 *   command line; Bcc: is always removed; From:, Date: and Message-ID:
 *   are added when missing.
 * - Tracking is best effort, never a reason not to send: a server
 *   without MTRK or DSN, or a keyring that cannot be written (checked
 *   before sending), gives an untracked message and a warning on stderr.
 *   Nothing is printed on success (cron mails whatever is printed).
 * - Exit codes from sysexits.h: 0; EX_USAGE; EX_DATAERR (bad address or
 *   message); EX_UNAVAILABLE (a 5xx, a refused recipient); EX_TEMPFAIL
 *   (4xx, connect or I/O failure: try later); EX_PROTOCOL (a malformed
 *   reply); EX_SOFTWARE; EX_CONFIG (unreadable configuration).
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/keyring.h"
#include "cli/send.h"
#include "cli/sendmail.h"
#include "common/conf.h"
#include "msgtrk/str.h"

#define CMD "sendmail"
#define SENDMAIL_CONF "/etc/msgtrk/msgtrkd.conf"
/* Our bound on -F: a display name, not a paragraph. */
#define SENDMAIL_FULLNAME_MAX 256

static void
sendmail_usage(void)
{
	fprintf(stderr,
	    "usage: msgtrk sendmail [-t] [-i] [-oi] [-f ADDR] [-F NAME] "
	    "[-C FILE]\n"
	    "                       [-N DSN] [-R full|hdrs] "
	    "[--server HOST[:PORT]]\n"
	    "                       [--mtqp HOST[:PORT]] [--keyring FILE] "
	    "[--no-track]\n"
	    "                       [RCPT...] < message\n");
}

/* The loopback address for an unspecified listener address, else the
 * address itself, as "host" (no brackets) and port. */
static void
sendmail_listen_host(
    const struct conf_addr *a, char *host, size_t hostsize, unsigned int *port)
{
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 =
		    (const struct sockaddr_in6 *)&a->ss;

		if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
			str_copy(host, "::1", hostsize);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, host,
			    (socklen_t)hostsize);
		*port = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 =
		    (const struct sockaddr_in *)&a->ss;

		if (s4->sin_addr.s_addr == htonl(INADDR_ANY))
			str_copy(host, "127.0.0.1", hostsize);
		else
			inet_ntop(
			    AF_INET, &s4->sin_addr, host, (socklen_t)hostsize);
		*port = ntohs(s4->sin_port);
	}
}

/* An option's value: the rest of the word ("-fADDR") or the next word.
 * Returns NULL if there is none. */
static const char *
sendmail_optval(int argc, char **argv, int *i, const char *rest)
{
	if (rest[0] != '\0')
		return rest;
	if (*i + 1 < argc)
		return argv[++*i];
	return NULL;
}

/* -N as Postfix takes it: "never", or a list of "success", "delay",
 * "failure" (any case, spaces allowed), into RFC 3461 §4.1's NOTIFY
 * value.  Returns 0, or -1 if it is none of those. */
static int
sendmail_notify(const char *in, char *out, size_t outsize)
{
	static const char *const names[] = { "NEVER", "SUCCESS", "FAILURE",
		"DELAY" };
	unsigned int seen = 0, j;
	const char *p = in;
	size_t used = 0;

	out[0] = '\0';
	while (*p != '\0') {
		size_t n;

		p += strspn(p, " \t,");
		if ((n = strcspn(p, " \t,")) == 0)
			break;
		for (j = 0; j < 4; j++)
			if (n == strlen(names[j]) &&
			    str_ncasecmp(p, names[j], n) == 0)
				break;
		if (j == 4 || (seen & (1U << j)))
			return -1;
		seen |= 1U << j;
		used += (size_t)snprintf(out + used, outsize - used, "%s%s",
		    used ? "," : "", names[j]);
		if (used >= outsize)
			return -1;
		p += n;
	}
	if (seen == 0 || ((seen & 1) && seen != 1))
		return -1; /* "NEVER" stands alone */
	return 0;
}

/* Maps a submission's outcome to sendmail's exit code. */
static int
sendmail_exit(enum send_outcome oc)
{
	switch (oc) {
	case SEND_OK:
	case SEND_FAIL_KEYRING: /* accepted: never send it twice */
		return 0;
	case SEND_FAIL_DATA:
		return SENDMAIL_EX_DATAERR;
	case SEND_FAIL_TEMP:
		return SENDMAIL_EX_TEMPFAIL;
	case SEND_FAIL_PERM:
	case SEND_FAIL_RCPT:
	case SEND_FAIL_CAPS:
		return SENDMAIL_EX_UNAVAILABLE;
	case SEND_FAIL_PROTO:
		return SENDMAIL_EX_PROTOCOL;
	case SEND_FAIL_LOCAL:
		break;
	}
	return SENDMAIL_EX_SOFTWARE;
}

/* Strips "<...>" around -f's value; "<>" is the null sender. */
static const char *
sendmail_bare(const char *a, char *out, size_t outsize)
{
	size_t n = strlen(a);

	if (n >= 2 && a[0] == '<' && a[n - 1] == '>') {
		snprintf(out, outsize, "%.*s", (int)(n - 2), a + 1);
		return out;
	}
	return a;
}

int
sendmail_main(int argc, char **argv, const struct cli_opts *o)
{
	const char *conf_path = SENDMAIL_CONF, *server = NULL, *mtqp = NULL;
	const char *from = NULL, *fullname = NULL, *keyring = NULL;
	const char *ret = NULL, *notify = NULL;
	char host[256], mhost[256], domain[CONF_HOSTNAME_MAX + 1];
	char helo[256], deffrom[600], fromb[SEND_ADDR_MAX + 3];
	char kpath[4096], err[1024], nbuf[64];
	unsigned int port = 25, mport = MTQP_PORT;
	int extract = 0, dot_ends = 1, track = 1, conf_given = 0, mgiven = 0;
	int i, rc = SENDMAIL_EX_USAGE;
	struct sendmail_rcpts rcpts = { NULL, 0, 0 };
	struct sendmail_msg_opts mo;
	struct send_result *res = NULL;
	struct send_req req;
	struct buf in, msg;
	struct conf *c = NULL;

	buf_init(&in, SEND_MESSAGE_MAX);
	buf_init(&msg, SEND_MESSAGE_MAX + SENDMAIL_HEADER_MAX);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v;

		if (a[0] != '-' || a[1] == '\0')
			break;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[1] == '-') {
			const char *eq = strchr(a, '=');
			size_t nl = eq ? (size_t)(eq - a) : strlen(a);
			const char **dst = NULL;

			if (strcmp(a, "--help") == 0) {
				sendmail_usage();
				rc = 0;
				goto cleanup;
			}
			if (strcmp(a, "--no-track") == 0) {
				track = 0;
				continue;
			}
			if (nl == 8 && strncmp(a, "--server", nl) == 0)
				dst = &server;
			else if (nl == 6 && strncmp(a, "--mtqp", nl) == 0)
				dst = &mtqp;
			else if (nl == 9 && strncmp(a, "--keyring", nl) == 0)
				dst = &keyring;
			if (dst == NULL) {
				cli_err(CMD, "unknown option %.64s", a);
				goto usage;
			}
			if ((v = eq ? eq + 1
			            : sendmail_optval(argc, argv, &i, "")) ==
			        NULL ||
			    v[0] == '\0') {
				cli_err(CMD, "%.*s needs a value", (int)nl, a);
				goto usage;
			}
			*dst = v;
			continue;
		}
		switch (a[1]) {
		case 't':
		case 'i':
		case 'v':
		case 'm':
		case 'n':
		case 'U':
		case 'G':
			if (a[2] != '\0') {
				cli_err(CMD, "unknown option %.64s", a);
				goto usage;
			}
			if (a[1] == 't')
				extract = 1;
			else if (a[1] == 'i')
				dot_ends = 0;
			break;
		case 'o':
			/* -oi is -i; the other -oX (-oem, -odi, -om...) are
			 * the options of another MTA: ignored. */
			if (strcmp(a, "-oi") == 0)
				dot_ends = 0;
			else if (a[2] == '\0') {
				cli_err(CMD, "-o needs a letter");
				goto usage;
			}
			break;
		case 'e': /* -eX: error reporting mode, ignored */
			break;
		case 'b':
			if (strcmp(a, "-bm") != 0) {
				cli_err(CMD,
				    "%.64s: only -bm (deliver mail) is "
				    "supported",
				    a);
				goto usage;
			}
			break;
		case 'f':
		case 'r':
		case 'F':
		case 'C':
		case 'N':
		case 'R':
		case 'B':
		case 'L':
		case 'h':
		case 'V':
		case 'O':
			if ((v = sendmail_optval(argc, argv, &i, a + 2)) ==
			    NULL) {
				cli_err(CMD, "-%c needs a value", a[1]);
				goto usage;
			}
			if (a[1] == 'f' || a[1] == 'r')
				from = sendmail_bare(v, fromb, sizeof(fromb));
			else if (a[1] == 'F')
				fullname = v;
			else if (a[1] == 'C') {
				conf_path = v;
				conf_given = 1;
			} else if (a[1] == 'N')
				notify = v;
			else if (a[1] == 'R')
				ret = v;
			/* -B TYPE, -L LABEL, -h HOPS, -V ENVID, -O OPT:
			 * ignored. */
			break;
		default:
			cli_err(CMD, "unknown option %.64s", a);
			goto usage;
		}
	}
	if (notify != NULL &&
	    sendmail_notify(notify, nbuf, sizeof(nbuf)) == -1) {
		cli_err(CMD,
		    "-N: expected never or a list of success, delay, failure");
		goto usage;
	}
	if (notify != NULL)
		notify = nbuf;
	if (ret != NULL) {
		if (str_casecmp(ret, "full") == 0)
			ret = "FULL";
		else if (str_casecmp(ret, "hdrs") == 0)
			ret = "HDRS";
		else {
			cli_err(CMD, "-R: expected full or hdrs");
			goto usage;
		}
	}
	if (fullname != NULL && strlen(fullname) > SENDMAIL_FULLNAME_MAX) {
		cli_err(
		    CMD, "-F: longer than %d octets", SENDMAIL_FULLNAME_MAX);
		goto usage;
	}

	/* The server and the domain from msgtrkd's configuration. */
	send_hostname(helo, sizeof(helo));
	str_copy(domain, helo, sizeof(domain));
	str_copy(host, "localhost", sizeof(host));
	mhost[0] = '\0';
	if (conf_given || access(conf_path, F_OK) == 0) {
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			cli_err(CMD, "out of memory");
			rc = SENDMAIL_EX_SOFTWARE;
			goto cleanup;
		}
		if (conf_defaults(c, err, sizeof(err)) == -1 ||
		    conf_load(c, conf_path, err, sizeof(err)) == -1) {
			cli_err(CMD, "%s (or use --server)", err);
			rc = SENDMAIL_EX_CONFIG;
			goto cleanup;
		}
		if (c->n_local_domains > 0)
			str_copy(domain, c->local_domains[0], sizeof(domain));
		else if (c->hostname[0] != '\0')
			str_copy(domain, c->hostname, sizeof(domain));
		if (server == NULL && c->n_smtp_listen == 0) {
			cli_err(CMD, "%s: smtp_listen is none; use --server",
			    conf_path);
			rc = SENDMAIL_EX_CONFIG;
			goto cleanup;
		}
		if (c->n_smtp_listen > 0)
			sendmail_listen_host(
			    &c->smtp_listen[0], host, sizeof(host), &port);
		if (c->n_mtqp_listen > 0) {
			sendmail_listen_host(
			    &c->mtqp_listen[0], mhost, sizeof(mhost), &mport);
			mgiven = 1;
		}
	}
	if (server != NULL) {
		if (cli_hostport(server, 25, host, sizeof(host), &port, NULL) ==
		    -1) {
			cli_err(CMD, "--server: expected HOST[:PORT]");
			goto usage;
		}
		if (host[0] == '[') { /* cli_hostport keeps the brackets */
			memmove(host, host + 1, strlen(host));
			host[strcspn(host, "]")] = '\0';
		}
		if (mtqp == NULL && c == NULL)
			mhost[0] = '\0';
	}
	if (mtqp != NULL) {
		if (cli_hostport(mtqp, MTQP_PORT, mhost, sizeof(mhost), &mport,
		        &mgiven) == -1) {
			cli_err(CMD, "--mtqp: expected HOST[:PORT]");
			goto usage;
		}
		if (mhost[0] == '[') {
			memmove(mhost, mhost + 1, strlen(mhost));
			mhost[strcspn(mhost, "]")] = '\0';
		}
	}
	if (mhost[0] == '\0') { /* the SMTP host, on MTQP's port */
		str_copy(mhost, host, sizeof(mhost));
		mport = MTQP_PORT;
		mgiven = 0;
	}

	if (from == NULL || from[0] == '\0') {
		struct passwd *pw = getpwuid(getuid());

		snprintf(deffrom, sizeof(deffrom), "%s@%s",
		    pw ? pw->pw_name : "root", domain);
		if (from == NULL)
			from = deffrom;
	} else if (strchr(from, '@') == NULL) {
		/* -f user: a bare local part, as for recipients. */
		snprintf(deffrom, sizeof(deffrom), "%s@%s", from, domain);
		from = deffrom;
	}
	if (from[0] != '\0' && !cli_addr_ok(from)) {
		cli_err(CMD, "-f \"%.300s\": not an address", from);
		rc = SENDMAIL_EX_DATAERR;
		goto cleanup;
	}
	for (; i < argc; i++)
		if (sendmail_addrlist(argv[i], strlen(argv[i]), domain, &rcpts,
		        err, sizeof(err)) == -1) {
			cli_err(CMD, "recipient %s", err);
			rc = SENDMAIL_EX_DATAERR;
			goto cleanup;
		}

	if (send_read_stdin(&in, err, sizeof(err)) == -1) {
		cli_err(CMD, "%s", err);
		rc = strstr(err, "larger") ? SENDMAIL_EX_DATAERR
		                           : SENDMAIL_EX_SOFTWARE;
		goto cleanup;
	}
	memset(&mo, 0, sizeof(mo));
	mo.dot_ends = dot_ends;
	mo.extract = extract;
	mo.from = from[0] != '\0' ? from : deffrom;
	mo.fullname = fullname;
	mo.domain = domain;
	mo.now = time(NULL);
	if (sendmail_rewrite(&in, &mo, &msg, &rcpts, err, sizeof(err)) == -1) {
		cli_err(CMD, "%s", err);
		rc = SENDMAIL_EX_DATAERR;
		goto cleanup;
	}
	buf_reset(&in);
	if (rcpts.n == 0) {
		cli_err(CMD,
		    extract ? "no recipient in To:, Cc: or Bcc:"
		            : "no recipient");
		goto usage;
	}

	/* The keyring must be writable before a secret is made for it:
	 * otherwise the message goes untracked rather than not at all. */
	if (track) {
		if (keyring != NULL)
			str_copy(kpath, keyring, sizeof(kpath));
		else if (keyring_default_path(
		             kpath, sizeof(kpath), err, sizeof(err)) == -1)
			track = 0;
		if (track && keyring_mkdirs(kpath, err, sizeof(err)) == -1)
			track = 0;
		if (track) {
			char dir[4096], *slash;

			str_copy(dir, kpath, sizeof(dir));
			if ((slash = strrchr(dir, '/')) != NULL)
				*slash = '\0';
			if (access(dir[0] ? dir : "/", W_OK | X_OK) == -1 ||
			    (access(kpath, F_OK) == 0 &&
			        access(kpath, R_OK | W_OK) == -1)) {
				snprintf(err, sizeof(err), "%.900s: %s", kpath,
				    strerror(errno));
				track = 0;
			}
		}
		if (!track)
			cli_err(
			    CMD, "warning: sent untracked: keyring %s", err);
	}
	if ((res = malloc(sizeof(*res))) == NULL) {
		cli_err(CMD, "out of memory");
		rc = SENDMAIL_EX_SOFTWARE;
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
	req.rcpts = (const char *const *)rcpts.v;
	req.nrcpt = rcpts.n;
	req.notify = notify;
	req.ret = ret;
	req.track = track;
	req.track_optional = 1;
	req.keyring = kpath;
	req.message = &msg;
	send_submit(&req, o, res);
	rc = sendmail_exit(res->outcome);
	if (res->outcome == SEND_FAIL_KEYRING)
		cli_err(CMD, "warning: %s; the message is trackable with %s",
		    res->err, res->uri);
	else if (res->outcome != SEND_OK)
		cli_err(CMD, "%s", res->err);
	else if (track && !res->tracked)
		cli_err(CMD,
		    "warning: sent untracked: %s does not offer MTRK and DSN",
		    host);
	goto cleanup;
usage:
	sendmail_usage();
	rc = SENDMAIL_EX_USAGE;
cleanup:
	if (res != NULL) {
		explicit_bzero(res, sizeof(*res));
		free(res);
	}
	if (c != NULL) {
		conf_free(c);
		free(c);
	}
	sendmail_rcpts_free(&rcpts);
	buf_reset(&in);
	buf_reset(&msg);
	return rc;
}
