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

#include <openssl/rand.h>

#include "cli/cli.h"
#include "cli/keyring.h"
#include "cli/send.h"
#include "cli/sendmail.h"
#include "common/conf.h"
#include "msgtrk/b64.h"
#include "msgtrk/date.h"
#include "msgtrk/str.h"

#define CMD "sendmail"
#define SENDMAIL_CONF "/etc/msgtrk/msgtrkd.conf"
/* Our bound on -F: a display name, not a paragraph. */
#define SENDMAIL_FULLNAME_MAX 256
/* RFC 2047 §2: an encoded-word is at most 75 characters; 45 octets make
 * 60 base64 characters plus the 12 of "=?UTF-8?B?" and "?=". */
#define SENDMAIL_EW_CHUNK 45

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

void
sendmail_rcpts_free(struct sendmail_rcpts *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->v[i]);
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* Adds addr (n octets) to r unless it is there already. */
static int
sendmail_rcpt_add(struct sendmail_rcpts *r, const char *addr, size_t n,
    const char *domain, char *err, size_t errsize)
{
	char a[SEND_ADDR_MAX + 2];
	size_t i;
	int w;

	if (memchr(addr, '@', n) != NULL)
		w = snprintf(a, sizeof(a), "%.*s", (int)n, addr);
	else
		w = snprintf(a, sizeof(a), "%.*s@%s", (int)n, addr, domain);
	if (w < 0 || (size_t)w > SEND_ADDR_MAX) {
		snprintf(err, errsize, "address longer than %d octets",
		    SEND_ADDR_MAX);
		return -1;
	}
	if (!send_addr_ok(a)) {
		char q[128];

		str_printable(q, sizeof(q), addr, n);
		snprintf(err, errsize, "\"%s\": not an address", q);
		return -1;
	}
	for (i = 0; i < r->n; i++)
		if (strcmp(r->v[i], a) == 0)
			return 0;
	if (r->n >= SEND_RCPT_MAX) {
		snprintf(
		    err, errsize, "more than %d recipients", SEND_RCPT_MAX);
		return -1;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 8;
		char **v = realloc(r->v, cap * sizeof(*v));

		if (v == NULL) {
			snprintf(err, errsize, "out of memory");
			return -1;
		}
		r->v = v;
		r->cap = cap;
	}
	if ((r->v[r->n] = strdup(a)) == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	r->n++;
	return 0;
}

/* One element of an address list: the angle address if there was one,
 * else the text outside comments, trimmed.  Empty elements (a trailing
 * comma, an empty group, "<>") are skipped. */
static int
sendmail_flush(struct sendmail_rcpts *r, const struct buf *cur,
    const struct buf *ang, int had_angle, const char *domain, char *err,
    size_t errsize)
{
	const char *p = had_angle ? ang->data : cur->data;
	size_t n = had_angle ? ang->len : cur->len;
	const char *colon;

	while (n > 0 && (*p == ' ' || *p == '\t'))
		p++, n--;
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	/* RFC 5322 §4.4 obs-route: "<@a,@b:user@c>" is "user@c". */
	if (had_angle && n > 0 && p[0] == '@' &&
	    (colon = memchr(p, ':', n)) != NULL) {
		n -= (size_t)(colon + 1 - p);
		p = colon + 1;
	}
	if (n == 0)
		return 0;
	return sendmail_rcpt_add(r, p, n, domain, err, errsize);
}

int
sendmail_addrlist(const char *s, size_t n, const char *domain,
    struct sendmail_rcpts *r, char *err, size_t errsize)
{
	struct buf cur, ang;
	int quoted = 0, in_angle = 0, had_angle = 0, rc = -1;
	size_t i, depth = 0;

	buf_init(&cur, SEND_ADDR_MAX + 64);
	buf_init(&ang, SEND_ADDR_MAX + 64);
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		struct buf *b = in_angle ? &ang : &cur;

		if (quoted) {
			if (ch == '\\' && i + 1 < n) {
				if (buf_addc(b, ch) == -1)
					goto toolong;
				ch = (unsigned char)s[++i];
			} else if (ch == '"')
				quoted = 0;
			if (buf_addc(b, ch) == -1)
				goto toolong;
			continue;
		}
		if (depth > 0) { /* RFC 5322 §3.2.2: comments nest */
			if (ch == '\\')
				i++;
			else if (ch == '(')
				depth++;
			else if (ch == ')')
				depth--;
			continue;
		}
		switch (ch) {
		case '(':
			depth = 1;
			break;
		case '"':
			quoted = 1;
			if (buf_addc(b, ch) == -1)
				goto toolong;
			break;
		case '<':
			if (in_angle) {
				snprintf(err, errsize, "'<' inside <...>");
				goto done;
			}
			in_angle = had_angle = 1;
			buf_clear(&ang);
			break;
		case '>':
			if (!in_angle) {
				snprintf(err, errsize, "'>' without '<'");
				goto done;
			}
			in_angle = 0;
			break;
		case ':':
			if (in_angle) {
				if (buf_addc(b, ch) == -1)
					goto toolong;
				break;
			}
			/* A group's display name (RFC 5322 §3.4). */
			buf_clear(&cur);
			had_angle = 0;
			break;
		case ',':
		case ';':
			if (in_angle) {
				if (buf_addc(b, ch) == -1)
					goto toolong;
				break;
			}
			if (sendmail_flush(r, &cur, &ang, had_angle, domain,
			        err, errsize) == -1)
				goto done;
			buf_clear(&cur);
			buf_clear(&ang);
			had_angle = 0;
			break;
		case '\r':
		case '\n':
			break; /* folding */
		case ' ':
		case '\t':
			if (!in_angle && buf_addc(b, ' ') == -1)
				goto toolong;
			break;
		default:
			/* Text after an angle address is not part of it. */
			if (!in_angle && had_angle)
				break;
			if (buf_addc(b, ch) == -1)
				goto toolong;
		}
	}
	if (quoted || depth > 0 || in_angle) {
		snprintf(err, errsize, "unbalanced %s",
		    quoted          ? "quote"
		        : depth > 0 ? "comment"
		                    : "'<'");
		goto done;
	}
	if (sendmail_flush(r, &cur, &ang, had_angle, domain, err, errsize) ==
	    -1)
		goto done;
	rc = 0;
	goto done;
toolong:
	snprintf(err, errsize, "address longer than %d octets", SEND_ADDR_MAX);
done:
	buf_reset(&cur);
	buf_reset(&ang);
	return rc;
}

/* The length of the line at p (n octets left), with its LF if any. */
static size_t
sendmail_line(const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);

	return nl ? (size_t)(nl - p) + 1 : n;
}

/* 1 if the line (with its line end) is empty. */
static int
sendmail_blank(const char *p, size_t n)
{
	return n == 0 || (n == 1 && p[0] == '\n') ||
	    (n == 2 && p[0] == '\r' && p[1] == '\n');
}

/* The length of the field name if the line starts a header field (RFC
 * 5322 §3.6.8: printable ASCII but ':', then ':'), else 0. */
static size_t
sendmail_field(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch == ':')
			return i;
		if (ch < 33 || ch > 126)
			return 0;
	}
	return 0;
}

static int
sendmail_is(const char *p, size_t n, const char *name)
{
	return n == strlen(name) && str_ncasecmp(p, name, n) == 0;
}

/* Appends the From: field: the full name as an atom phrase, a quoted
 * string, or RFC 2047 encoded words (8-bit text). */
static int
sendmail_add_from(struct buf *out, const char *from, const char *fullname)
{
	const unsigned char *f = (const unsigned char *)fullname;
	int atoms = 1, ascii = 1;
	size_t i, n;

	if (fullname == NULL || fullname[0] == '\0')
		return buf_addf(out, "From: %s\n", from);
	n = strlen(fullname);
	for (i = 0; i < n; i++) {
		if (f[i] >= 0x80 || f[i] < 0x20)
			ascii = 0;
		if (f[i] != ' ' &&
		    (f[i] < 0x21 || f[i] > 0x7e ||
		        strchr("()<>[]:;@\\,.\"", f[i]) != NULL))
			atoms = 0;
	}
	if (atoms)
		return buf_addf(out, "From: %s <%s>\n", fullname, from);
	if (ascii) {
		if (buf_adds(out, "From: \"") == -1)
			return -1;
		for (i = 0; i < n; i++)
			if (((f[i] == '"' || f[i] == '\\') &&
			        buf_addc(out, '\\') == -1) ||
			    buf_addc(out, (char)f[i]) == -1)
				return -1;
		return buf_addf(out, "\" <%s>\n", from);
	}
	if (buf_adds(out, "From:") == -1)
		return -1;
	for (i = 0; i < n;) {
		char enc[96];
		size_t k =
		    n - i > SENDMAIL_EW_CHUNK ? SENDMAIL_EW_CHUNK : n - i;

		/* Whole characters in each word (RFC 2047 §5). */
		while (i + k < n && k > 1 && (f[i + k] & 0xc0) == 0x80)
			k--;
		if (b64_encode(f + i, k, B64_PAD_REQUIRED, enc, sizeof(enc)) ==
		        -1 ||
		    buf_addf(out, " =?UTF-8?B?%s?=", enc) == -1)
			return -1;
		i += k;
	}
	return buf_addf(out, " <%s>\n", from);
}

int
sendmail_rewrite(const struct buf *in, const struct sendmail_msg_opts *mo,
    struct buf *out, struct sendmail_rcpts *rcpts, char *err, size_t errsize)
{
	const char *p = in->data, *end;
	size_t len = in->len, off = 0, hdr_end, l, k;
	int has_from = 0, has_date = 0, has_msgid = 0, need_blank = 0;
	int in_bcc = 0, in_rcpt = 0;
	char aerr[512];
	struct buf kept;
	int rc = -1;

	if (p == NULL)
		p = "";
	/* Without -i a line "." alone ends the message. */
	if (mo->dot_ends)
		for (off = 0; off < len; off += l) {
			l = sendmail_line(p + off, len - off);
			if ((l == 1 && p[off] == '.') ||
			    (l == 2 && p[off] == '.' && p[off + 1] == '\n') ||
			    (l == 3 && memcmp(p + off, ".\r\n", 3) == 0)) {
				len = off;
				break;
			}
		}
	off = 0;
	/* An mbox "From " line is no header field. */
	if (len >= 5 && memcmp(p, "From ", 5) == 0)
		off = sendmail_line(p, len);
	/* The header section: fields and their continuation lines, up to
	 * an empty line or a line that is neither. */
	buf_init(&kept, SENDMAIL_HEADER_MAX);
	for (hdr_end = off; hdr_end < len; hdr_end += l) {
		const char *line = p + hdr_end;

		l = sendmail_line(line, len - hdr_end);
		if (sendmail_blank(line, l))
			break;
		if (line[0] == ' ' || line[0] == '\t') {
			if (hdr_end == off) { /* no field to continue */
				need_blank = 1;
				break;
			}
		} else if ((k = sendmail_field(line, l)) > 0) {
			in_bcc = sendmail_is(line, k, "Bcc");
			in_rcpt = mo->extract &&
			    (in_bcc || sendmail_is(line, k, "To") ||
			        sendmail_is(line, k, "Cc"));
			has_from |= sendmail_is(line, k, "From");
			has_date |= sendmail_is(line, k, "Date");
			has_msgid |= sendmail_is(line, k, "Message-ID");
			if (in_rcpt) {
				/* The field body with its continuations. */
				size_t e = hdr_end + l, m;

				while (e < len && (p[e] == ' ' || p[e] == '\t'))
					e += sendmail_line(p + e, len - e);
				m = e - hdr_end - k - 1;
				if (sendmail_addrlist(line + k + 1, m,
				        mo->domain, rcpts, aerr,
				        sizeof(aerr)) == -1) {
					snprintf(err, errsize, "%.*s: %s",
					    (int)(k < 20 ? k : 20), line, aerr);
					goto done;
				}
			}
		} else {
			need_blank = 1;
			break;
		}
		if (!in_bcc && buf_add(&kept, line, l) == -1) {
			snprintf(err, errsize,
			    "header section larger than %lu octets",
			    SENDMAIL_HEADER_MAX);
			goto done;
		}
	}
	/* The header section without its line end on the last field (a
	 * message that is only a header) gets one. */
	if (kept.len > 0 && kept.data[kept.len - 1] != '\n' &&
	    buf_addc(&kept, '\n') == -1) {
		snprintf(err, errsize, "header section too large");
		goto done;
	}
	if (!has_from && sendmail_add_from(out, mo->from, mo->fullname) == -1)
		goto toolarge;
	if (!has_date) {
		struct tm tm;
		struct date d = { mo->now, 0 };
		char date[DATE_MAX];

		if (localtime_r(&mo->now, &tm) != NULL)
			d.gmtoff = (int)tm.tm_gmtoff;
		if (date_format(&d, date, sizeof(date)) == -1 ||
		    buf_addf(out, "Date: %s\n", date) == -1)
			goto toolarge;
	}
	if (!has_msgid) {
		unsigned char rnd[12];
		char hex[2 * sizeof(rnd) + 1];
		size_t i;

		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			snprintf(
			    err, errsize, "no random bytes for Message-ID");
			goto done;
		}
		for (i = 0; i < sizeof(rnd); i++)
			snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
		if (buf_addf(out, "Message-ID: <%lld.%s@%s>\n",
		        (long long)mo->now, hex, mo->domain) == -1)
			goto toolarge;
	}
	end = p + len;
	if (buf_add(out, kept.data, kept.len) == -1 ||
	    (need_blank && buf_addc(out, '\n') == -1) ||
	    buf_add(out, p + hdr_end, (size_t)(end - (p + hdr_end))) == -1)
		goto toolarge;
	rc = 0;
	goto done;
toolarge:
	snprintf(
	    err, errsize, "message larger than %lu octets", SEND_MESSAGE_MAX);
done:
	buf_reset(&kept);
	return rc;
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
	if (from[0] != '\0' && !send_addr_ok(from)) {
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
