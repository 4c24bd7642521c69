/*
 * test_conf: msgtrkd's configuration file (PRODUCT.md "Config file").
 *
 * Each load case is a file text written to its own temporary file, loaded
 * over the defaults, and either checked value by value or expected to fail
 * with a "file:line: what" message containing the given text.
 */
#include <sys/stat.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/conf.h"
#include "table.h"

static char tmpdir[] = "/tmp/test_conf.XXXXXX";
static unsigned nfiles;

/* Writes n bytes to a fresh file in tmpdir; returns its malloc'd path. */
static char *
write_file(const char *text, size_t n)
{
	char *path;
	FILE *f;

	assert_true(asprintf(&path, "%s/c%u.conf", tmpdir, nfiles++) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* Loads text over the defaults.  Returns conf_load()'s result; *c must be
 * freed by the caller either way. */
static int
load_text(struct conf *c, const char *text, size_t n, char *err, size_t errsize,
    char **path_out)
{
	char *path;
	int r;

	assert_int_equal(conf_defaults(c, err, errsize), 0);
	path = write_file(text, n);
	r = conf_load(c, path, err, errsize);
	if (path_out != NULL)
		*path_out = path;
	else
		free(path);
	return r;
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL) {
		fail_msg("out of memory");
		abort(); /* not reached: tells the compiler p is set */
	}
	return p;
}

/* Generated texts for cases whose text is too long to write out. */
static char *
gen_repeat(const char *head, const char *item, const char *sep, int count,
    const char *tail)
{
	size_t len = strlen(head) + strlen(tail) + 1 +
	    (size_t)count * (strlen(item) + 8 + strlen(sep));
	char *s = xmalloc(len), *p;
	int i;

	p = s + sprintf(s, "%s", head);
	for (i = 0; i < count; i++)
		p += sprintf(p, "%s%s", i > 0 ? sep : "", item);
	sprintf(p, "%s", tail);
	return s;
}

/* A line of exactly n bytes: "# xxxx...". */
static char *
gen_comment(size_t n, const char *tail)
{
	char *s = xmalloc(n + strlen(tail) + 2);

	memset(s, 'x', n);
	s[0] = '#';
	s[n] = '\n';
	strcpy(s + n + 1, tail);
	return s;
}

static char *
gen_line4096(void)
{
	return gen_comment(CONF_LINE_MAX, "hostname = ok.example\n");
}

static char *
gen_line4097(void)
{
	return gen_comment(CONF_LINE_MAX + 1, "");
}

static char *
gen_line4096_crlf(void)
{
	char *s = gen_comment(CONF_LINE_MAX, "x");

	/* "#xx...x\nx" becomes "#xx...x\r\n" */
	s[CONF_LINE_MAX] = '\r';
	s[CONF_LINE_MAX + 1] = '\n';
	return s;
}

static char *
gen_retry16(void)
{
	return gen_repeat("retry_schedule = ", "1m", ", ", 16, "\n");
}

static char *
gen_retry17(void)
{
	return gen_repeat("retry_schedule = ", "1m", ", ", 17, "\n");
}

static char *
gen_nets(int count)
{
	char *s = xmalloc((size_t)count * 20 + 32), *p;
	int i;

	p = s + sprintf(s, "relay_networks = ");
	for (i = 0; i < count; i++)
		p += sprintf(p, "%s10.%d.0.0/16", i > 0 ? "," : "", i);
	strcpy(p, "\n");
	return s;
}

static char *
gen_nets64(void)
{
	return gen_nets(CONF_NET_MAX);
}

static char *
gen_nets65(void)
{
	return gen_nets(CONF_NET_MAX + 1);
}

static char *
gen_listen(const char *key, int count)
{
	char *s = xmalloc((size_t)count * 20 + 32), *p;
	int i;

	p = s + sprintf(s, "%s = ", key);
	for (i = 0; i < count; i++)
		p += sprintf(p, "%s127.0.0.1:%d", i > 0 ? "," : "", 2000 + i);
	strcpy(p, "\n");
	return s;
}

static char *
gen_listen16(void)
{
	return gen_listen("smtp_listen", CONF_LISTEN_MAX);
}

static char *
gen_listen17(void)
{
	return gen_listen("smtp_listen", CONF_LISTEN_MAX + 1);
}

static char *
gen_dns5(void)
{
	return gen_listen("dns_servers", CONF_DNS_MAX + 1);
}

static char *
gen_domains(int count)
{
	char *s = xmalloc((size_t)count * 16 + 32), *p;
	int i;

	p = s + sprintf(s, "local_domains = ");
	for (i = 0; i < count; i++)
		p += sprintf(p, "%sd%d.test", i > 0 ? "," : "", i);
	strcpy(p, "\n");
	return s;
}

static char *
gen_domains256(void)
{
	return gen_domains(CONF_DOMAIN_MAX);
}

static char *
gen_domains257(void)
{
	return gen_domains(CONF_DOMAIN_MAX + 1);
}

/* hostname of n characters: labels of 63 joined by dots, then padding. */
static char *
gen_hostname(size_t n)
{
	char *s = xmalloc(n + 32), *p;
	size_t i;

	p = s + sprintf(s, "hostname = ");
	for (i = 0; i < n; i++)
		p[i] = (i % 64 == 63) ? '.' : 'a';
	if (p[n - 1] == '.')
		p[n - 1] = 'b';
	strcpy(p + n, "\n");
	return s;
}

static char *
gen_hostname255(void)
{
	return gen_hostname(255);
}

static char *
gen_hostname256(void)
{
	return gen_hostname(256);
}

static char *
gen_label63(void)
{
	return gen_repeat("hostname = ", "a", "", 63, ".example\n");
}

static char *
gen_label64(void)
{
	return gen_repeat("hostname = ", "a", "", 64, ".example\n");
}

static char *
gen_toobig(void)
{
	/* CONF_FILE_MAX + 1 bytes of comment lines */
	size_t n = CONF_FILE_MAX + 1, i;
	char *s = xmalloc(n + 1);

	for (i = 0; i < n; i++)
		s[i] = i % 100 == 99 ? '\n' : '#';
	s[n] = '\0';
	return s;
}

static char *
gen_user32(void)
{
	return gen_repeat("user = ", "u", "", CONF_USER_MAX, "\n");
}

static char *
gen_user33(void)
{
	return gen_repeat("user = ", "u", "", CONF_USER_MAX + 1, "\n");
}

static char *
gen_socket107(void)
{
	return gen_repeat("control_socket = /", "x", "", 106, "\n");
}

static char *
gen_socket108(void)
{
	return gen_repeat("control_socket = /", "x", "", 107, "\n");
}

/* data_dir of 99 bytes: <data_dir>/control is 107, the most. */
static char *
gen_datadir99(void)
{
	return gen_repeat("data_dir = /", "d", "", 98, "\n");
}

static char *
gen_datadir100(void)
{
	return gen_repeat("\ndata_dir = /", "d", "", 99, "\n");
}

static char *
gen_datadir100_socket(void)
{
	return gen_repeat("data_dir = /", "d", "", 99,
	    "\ncontrol_socket = /run/msgtrk.sock\n");
}

/* Value checks for cases that load. */
static void
chk_hostname(const struct conf *c)
{
	assert_string_equal(c->hostname, "mail.example.com");
}

static void
chk_hostname_ok(const struct conf *c)
{
	assert_string_equal(c->hostname, "ok.example");
}

static void
chk_smtp_none(const struct conf *c)
{
	assert_int_equal(c->n_smtp_listen, 0);
	assert_int_equal(c->n_mtqp_listen, 1);
}

static void
chk_mtqp_none(const struct conf *c)
{
	assert_int_equal(c->n_smtp_listen, 1);
	assert_int_equal(c->n_mtqp_listen, 0);
}

static void
chk_listen2(const struct conf *c)
{
	const struct sockaddr_in6 *sin6 =
	    (const struct sockaddr_in6 *)&c->smtp_listen[1].ss;

	assert_int_equal(c->n_smtp_listen, 2);
	assert_int_equal(c->smtp_listen[0].ss.ss_family, AF_INET);
	assert_int_equal(c->smtp_listen[1].ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 2525);
	assert_int_equal(c->smtp_listen[1].len, sizeof(struct sockaddr_in6));
}

static void
chk_no_relay(const struct conf *c)
{
	assert_int_equal(c->n_relay_networks, 0);
}

static void
chk_no_domains(const struct conf *c)
{
	assert_int_equal(c->n_local_domains, 0);
	assert_int_equal(conf_is_local_domain(c, "example.com"), 0);
}

static void
chk_domains(const struct conf *c)
{
	assert_int_equal(c->n_local_domains, 3);
	assert_string_equal(c->local_domains[0], "example.com");
	assert_string_equal(c->local_domains[1], "mail.example.org");
	assert_string_equal(c->local_domains[2], "x-1.test");
	assert_int_equal(conf_is_local_domain(c, "EXAMPLE.com"), 1);
	assert_int_equal(conf_is_local_domain(c, "x-1.test"), 1);
	assert_int_equal(conf_is_local_domain(c, "example.org"), 0);
	assert_int_equal(conf_is_local_domain(c, "example.com."), 0);
	assert_int_equal(conf_is_local_domain(c, ""), 0);
	assert_int_equal(conf_is_local_domain(c, NULL), 0);
}

static void
chk_domains256(const struct conf *c)
{
	assert_int_equal(c->n_local_domains, CONF_DOMAIN_MAX);
	assert_int_equal(conf_is_local_domain(c, "d255.test"), 1);
}

static void
chk_no_dns(const struct conf *c)
{
	assert_int_equal(c->n_dns_servers, 0);
}

static void
chk_dns(const struct conf *c)
{
	const struct sockaddr_in *sin =
	    (const struct sockaddr_in *)&c->dns_servers[0].ss;

	assert_int_equal(c->n_dns_servers, 2);
	assert_int_equal(ntohs(sin->sin_port), 5353);
}

static void
chk_bools_yes(const struct conf *c)
{
	assert_int_equal(c->mtqp_chain, 1);
	assert_int_equal(c->hide_internal_hosts, 1);
	assert_int_equal(c->mtqp_tls_required, 1);
}

static void
chk_bools_no(const struct conf *c)
{
	assert_int_equal(c->mtqp_chain, 0);
	assert_int_equal(c->hide_internal_hosts, 0);
	assert_int_equal(c->mtqp_tls_required, 0);
}

static void
chk_chain_hosts(const struct conf *c)
{
	const struct conf_net *n = c->mtqp_chain_nets;

	assert_int_equal(c->mtqp_chain_hosts_set, 1);
	assert_int_equal(c->n_mtqp_chain_names, 2);
	assert_string_equal(c->mtqp_chain_names[0], "hop2.example.net");
	assert_string_equal(c->mtqp_chain_names[1], "relay.example.org");
	assert_int_equal(c->n_mtqp_chain_nets, 4);
	assert_int_equal(n[0].family, AF_INET);
	assert_int_equal(n[0].prefix, 32);
	assert_int_equal(n[1].family, AF_INET6);
	assert_int_equal(n[1].prefix, 128);
	assert_int_equal(n[2].family, AF_INET);
	assert_int_equal(n[2].prefix, 8);
	assert_int_equal(n[3].family, AF_INET6);
	assert_int_equal(n[3].prefix, 48);
}

static void
chk_chain_hosts_none(const struct conf *c)
{
	assert_int_equal(c->mtqp_chain_hosts_set, 0);
	assert_int_equal(c->n_mtqp_chain_names, 0);
	assert_int_equal(c->n_mtqp_chain_nets, 0);
}

static void
chk_retry1(const struct conf *c)
{
	assert_int_equal(c->n_retry_schedule, 1);
	assert_int_equal(c->retry_schedule[0], 90);
}

static void
chk_retry16(const struct conf *c)
{
	assert_int_equal(c->n_retry_schedule, CONF_RETRY_MAX);
	assert_int_equal(c->retry_schedule[15], 60);
}

static void
chk_lmtp4(const struct conf *c)
{
	assert_string_equal(c->local_transport, "lmtp:127.0.0.1:24");
}

static void
chk_lmtp6(const struct conf *c)
{
	assert_string_equal(c->local_transport, "lmtp:[::1]:2424");
}

static void
chk_lmtp_name(const struct conf *c)
{
	assert_string_equal(c->local_transport, "lmtp:lmtp.example:24");
}

static void
chk_maildir(const struct conf *c)
{
	assert_string_equal(c->local_transport, "maildir");
}

static void
chk_pg(const struct conf *c)
{
	assert_string_equal(
	    c->store, "postgresql://msgtrk@db.example/msgtrk?sslmode=require");
}

static void
chk_sqlite(const struct conf *c)
{
	assert_string_equal(c->store, "sqlite");
}

static void
chk_smtp3(const struct conf *c)
{
	assert_int_equal(c->smtp_timeout, 3);
}

static void
chk_idle600(const struct conf *c)
{
	assert_int_equal(c->mtqp_idle_timeout, 600);
}

static void
chk_mtrk1d(const struct conf *c)
{
	assert_int_equal(c->mtrk_default_timeout, 86400);
	assert_int_equal(c->mtrk_max_timeout, 86400);
}

static void
chk_mtrk2d(const struct conf *c)
{
	assert_int_equal(c->mtrk_default_timeout, 2 * 86400);
	assert_int_equal(c->mtrk_max_timeout, 2 * 86400);
}

static void
chk_mtrk9d20d(const struct conf *c)
{
	assert_int_equal(c->mtrk_default_timeout, 9 * 86400);
	assert_int_equal(c->mtrk_max_timeout, 20 * 86400);
}

static void
chk_tls(const struct conf *c)
{
	assert_string_equal(c->tls_cert_file, "/etc/msgtrk/cert.pem");
	assert_string_equal(c->tls_key_file, "/etc/msgtrk/key.pem");
}

static void
chk_mailbox_derived(const struct conf *c)
{
	assert_string_equal(c->data_dir, "/srv/msgtrk");
	assert_string_equal(c->mailbox_dir, "/srv/msgtrk/mail");
}

static void
chk_socket_derived(const struct conf *c)
{
	assert_string_equal(c->control_socket, "/srv/msgtrk/control");
}

static void
chk_socket_root(const struct conf *c)
{
	assert_string_equal(c->control_socket, "/control");
}

static void
chk_socket_set(const struct conf *c)
{
	assert_string_equal(c->control_socket, "/run/msgtrk/control");
	assert_string_equal(c->data_dir, "/srv/msgtrk");
	assert_string_equal(c->mailbox_dir, "/srv/msgtrk/mail");
}

static void
chk_socket107(const struct conf *c)
{
	assert_int_equal(strlen(c->control_socket), CONF_SOCKET_PATH_MAX);
}

static void
chk_datadir99(const struct conf *c)
{
	assert_int_equal(strlen(c->data_dir), 99);
	assert_int_equal(strlen(c->control_socket), CONF_SOCKET_PATH_MAX);
	assert_string_equal(c->control_socket + 99, "/control");
}

static void
chk_datadir100_socket(const struct conf *c)
{
	assert_string_equal(c->control_socket, "/run/msgtrk.sock");
}

static void
chk_mailbox_root(const struct conf *c)
{
	assert_string_equal(c->data_dir, "/");
	assert_string_equal(c->mailbox_dir, "/mail");
}

static void
chk_mailbox_set(const struct conf *c)
{
	assert_string_equal(c->data_dir, "/srv/msgtrk");
	assert_string_equal(c->mailbox_dir, "/home/mail");
}

static void
chk_sizes(const struct conf *c)
{
	assert_int_equal(c->max_message_size, 10 * 1024);
}

static void
chk_policy_require(const struct conf *c)
{
	assert_int_equal(c->smtp_tls_policy, CONF_TLS_REQUIRE);
}

static void
chk_policy_none(const struct conf *c)
{
	assert_int_equal(c->smtp_tls_policy, CONF_TLS_NONE);
}

static void
chk_policy_verify(const struct conf *c)
{
	assert_int_equal(c->smtp_tls_policy, CONF_TLS_VERIFY);
	assert_null(c->smtp_tls_ca_file); /* the system store */
}

static void
chk_policy_verify_ca(const struct conf *c)
{
	assert_int_equal(c->smtp_tls_policy, CONF_TLS_VERIFY);
	assert_string_equal(c->smtp_tls_ca_file, "/etc/msgtrk/ca.pem");
}

static void
chk_opaque(const struct conf *c)
{
	assert_int_equal(c->mtqp_unknown, CONF_MTQP_OPAQUE);
}

static void
chk_user(const struct conf *c)
{
	assert_string_equal(c->user, "_msgtrk-1.x");
}

static void
chk_hostname255(const struct conf *c)
{
	assert_int_equal(strlen(c->hostname), 255);
}

static void
chk_nets64(const struct conf *c)
{
	assert_int_equal(c->n_relay_networks, CONF_NET_MAX);
}

static void
chk_listen16(const struct conf *c)
{
	assert_int_equal(c->n_smtp_listen, CONF_LISTEN_MAX);
}

/* A dovecot socket path one byte over sun_path. */
static char *
gen_auth_long(void)
{
	char *t = malloc(200);

	assert_non_null(t);
	memcpy(t, "auth = dovecot:/", 16);
	memset(t + 16, 's', CONF_AUTH_SOCKET_MAX);
	strcpy(t + 16 + CONF_AUTH_SOCKET_MAX, "\n");
	return t;
}

static void
chk_submission(const struct conf *c)
{
	assert_int_equal(c->n_submission_listen, 1);
	assert_int_equal(c->n_submissions_listen, 2);
	assert_int_equal(ntohs(((const struct sockaddr_in *)(const void *)&c
	                            ->submission_listen[0]
	                            .ss)
	                           ->sin_port),
	    587);
	assert_string_equal(c->auth, "passwd:/etc/msgtrk/passwd");
	assert_string_equal(c->sender_logins, "/etc/msgtrk/sender_logins");
	assert_int_equal(c->submission_track, 0);
}

static void
chk_auth_dovecot(const struct conf *c)
{
	assert_string_equal(c->auth, "dovecot:/run/dovecot/auth-client");
	assert_int_equal(c->n_submission_listen, 0);
	assert_int_equal(c->submission_track, 1);
}

static void
chk_http(const struct conf *c)
{
	struct sockaddr_in sin;

	assert_int_equal(c->n_http_listen, 1);
	assert_int_equal(c->n_https_listen, 0);
	assert_int_equal(c->n_metrics_networks, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7f000001);
	assert_false(conf_nets_match(c->metrics_networks, c->n_metrics_networks,
	    (struct sockaddr *)&sin));
	assert_true(conf_relay_allowed(c, (struct sockaddr *)&sin));
}

static void
chk_value_eq(const struct conf *c)
{
	assert_string_equal(c->store, "postgresql://u:p=w@h/db");
}

struct load_case {
	const char *name;
	const char *text; /* the file (NUL-terminated unless len given) */
	size_t len; /* 0: strlen(text) */
	char *(*gen)(void); /* or a generated text */
	const char *err; /* NULL: loads; else in the error, after the path */
	void (*check)(const struct conf *); /* for cases that load */
};

/* A literal with embedded NULs, and its length. */
#define LIT(s) s, sizeof(s) - 1

static const struct load_case load_cases[] = {
	/* syntax that loads */
	{ "empty file", "", 0, NULL, NULL, NULL },
	{ "comments only", "# a comment\n\n   # indented\n\t\n", 0, NULL, NULL,
	    NULL },
	{ "plain", "hostname = mail.example.com\n", 0, NULL, NULL,
	    chk_hostname },
	{ "no spaces", "hostname=mail.example.com\n", 0, NULL, NULL,
	    chk_hostname },
	{ "tabs and blanks", " \thostname\t =\t mail.example.com \t\n", 0, NULL,
	    NULL, chk_hostname },
	{ "CRLF", "# c\r\nhostname = mail.example.com\r\n", 0, NULL, NULL,
	    chk_hostname },
	{ "no final newline", "hostname = mail.example.com", 0, NULL, NULL,
	    chk_hostname },
	{ "line of 4096 bytes", NULL, 0, gen_line4096, NULL, chk_hostname_ok },
	{ "line of 4096 bytes + CR", NULL, 0, gen_line4096_crlf, NULL, NULL },
	{ "value with =", "store = postgresql://u:p=w@h/db\n", 0, NULL, NULL,
	    chk_value_eq },
	{ "utf-8 comment", "# \xc2\xa7 2.5\nhostname = mail.example.com\n", 0,
	    NULL, NULL, chk_hostname },
	/* listeners */
	{ "smtp_listen none", "smtp_listen = none\n", 0, NULL, NULL,
	    chk_smtp_none },
	{ "smtp_listen NONE", "smtp_listen = NONE\n", 0, NULL, NULL,
	    chk_smtp_none },
	{ "mtqp_listen none", "mtqp_listen = none\n", 0, NULL, NULL,
	    chk_mtqp_none },
	{ "smtp_listen two", "smtp_listen = 127.0.0.1:25 ,[::1]:2525\n", 0,
	    NULL, NULL, chk_listen2 },
	{ "smtp_listen 16", NULL, 0, gen_listen16, NULL, chk_listen16 },
	{ "smtp_listen 17", NULL, 0, gen_listen17,
	    ":1: smtp_listen: more than 16 addresses", NULL },
	{ "listen both none", "smtp_listen = none\nmtqp_listen = none\n", 0,
	    NULL, ":2: smtp_listen and mtqp_listen are both none", NULL },
	{ "listen both none reversed",
	    "mtqp_listen = none\n\nsmtp_listen = none\n", 0, NULL,
	    ":3: smtp_listen and mtqp_listen are both none", NULL },
	{ "listen none plus address", "smtp_listen = none, 127.0.0.1:25\n", 0,
	    NULL, ":1: smtp_listen: 'none' must be the only value", NULL },
	{ "listen twice", "smtp_listen = 127.0.0.1:25, 127.0.0.1:25\n", 0, NULL,
	    ":1: smtp_listen: '127.0.0.1:25' is listed twice", NULL },
	{ "listen shared",
	    "smtp_listen = 127.0.0.1:2525\nmtqp_listen = 127.0.0.1:2525\n", 0,
	    NULL, ":2: mtqp_listen address 1 is also in smtp_listen", NULL },
	/* submission (the daemon does not open these listeners yet) */
	{ "submission",
	    "auth = passwd:/etc/msgtrk/passwd\n"
	    "submission_listen = 127.0.0.1:587\n"
	    "tls_cert_file = /etc/msgtrk/cert.pem\n"
	    "tls_key_file = /etc/msgtrk/key.pem\n"
	    "submissions_listen = 127.0.0.1:465, [::1]:465\n"
	    "sender_logins = /etc/msgtrk/sender_logins\n"
	    "submission_track = no\n",
	    0, NULL, NULL, chk_submission },
	{ "auth dovecot", "auth = dovecot:/run/dovecot/auth-client\n", 0, NULL,
	    NULL, chk_auth_dovecot },
	{ "submission none", "submission_listen = none\n", 0, NULL, NULL,
	    NULL },
	{ "submission without auth", "\nsubmission_listen = 127.0.0.1:587\n", 0,
	    NULL,
	    ":2: submission_listen needs auth (passwd:/path or dovecot:/path)",
	    NULL },
	{ "submissions without auth",
	    "tls_cert_file = /c\ntls_key_file = /k\n"
	    "submissions_listen = 127.0.0.1:465\n",
	    0, NULL,
	    ":3: submissions_listen needs auth (passwd:/path or dovecot:/path)",
	    NULL },
	{ "submissions without tls",
	    "submissions_listen = 127.0.0.1:465\nauth = passwd:/p\n", 0, NULL,
	    ":1: submissions_listen needs tls_cert_file and tls_key_file",
	    NULL },
	{ "submission shares smtp",
	    "smtp_listen = 127.0.0.1:2525\nauth = passwd:/p\n"
	    "submission_listen = 127.0.0.1:587, 127.0.0.1:2525\n",
	    0, NULL, ":3: submission_listen address 2 is also in smtp_listen",
	    NULL },
	/* HTTP */
	{ "http", "http_listen = 127.0.0.1:8080\nmetrics_networks =\n", 0, NULL,
	    NULL, chk_http },
	{ "https without tls", "\nhttps_listen = 127.0.0.1:8443\n", 0, NULL,
	    ":2: https_listen needs tls_cert_file and tls_key_file", NULL },
	{ "http shares mtqp",
	    "mtqp_listen = 127.0.0.1:1038\nhttp_listen = 127.0.0.1:1038\n", 0,
	    NULL, ":2: http_listen address 1 is also in mtqp_listen", NULL },
	{ "https shares http",
	    "tls_cert_file = /c\ntls_key_file = /k\n"
	    "https_listen = 127.0.0.1:8080\nhttp_listen = 127.0.0.1:8080\n",
	    0, NULL, ":4: https_listen address 1 is also in http_listen",
	    NULL },
	{ "http_admins without auth", "http_admins = alice\n", 0, NULL,
	    ":1: http_admins needs auth", NULL },
	{ "http_admins twice", "auth = passwd:/p\nhttp_admins = a, b, a\n", 0,
	    NULL, ":2: http_admins: 'a' is listed twice", NULL },
	{ "http_admins space", "auth = passwd:/p\nhttp_admins = a b\n", 0, NULL,
	    ":2: http_admins: 'a b' is not a login", NULL },
	{ "http_admins empty item", "auth = passwd:/p\nhttp_admins = a,,b\n", 0,
	    NULL, ":2: http_admins: empty item in list", NULL },
	{ "metrics host bits", "metrics_networks = 10.0.0.1/8\n", 0, NULL,
	    ":1: metrics_networks: '10.0.0.1/8' has host bits set past /8",
	    NULL },
	{ "submissions shares submission",
	    "submissions_listen = [::1]:465\nauth = passwd:/p\n"
	    "tls_cert_file = /c\ntls_key_file = /k\n"
	    "submission_listen = [::1]:465\n",
	    0, NULL,
	    ":5: submissions_listen address 1 is also in submission_listen",
	    NULL },
	{ "submissions shares mtqp",
	    "mtqp_listen = 127.0.0.1:1038\nauth = passwd:/p\n"
	    "tls_cert_file = /c\ntls_key_file = /k\n"
	    "submissions_listen = 127.0.0.1:1038\n",
	    0, NULL, ":5: submissions_listen address 1 is also in mtqp_listen",
	    NULL },
	{ "auth unknown backend", "auth = ldap:/x\n", 0, NULL,
	    ":1: auth: 'ldap:/x' is neither passwd:/path nor dovecot:/path",
	    NULL },
	{ "auth relative", "auth = passwd:etc/passwd\n", 0, NULL,
	    ":1: auth: 'etc/passwd' is not an absolute path", NULL },
	{ "auth no path", "auth = dovecot:\n", 0, NULL,
	    ":1: auth: '' is not an absolute path", NULL },
	{ "auth socket too long", NULL, 0, gen_auth_long,
	    ":1: auth: path too long", NULL },
	{ "auth empty", "auth =\n", 0, NULL, ":1: auth: empty value", NULL },
	{ "sender_logins relative", "sender_logins = sl\n", 0, NULL,
	    ":1: sender_logins: 'sl' is not an absolute path", NULL },
	{ "submission_track bad", "submission_track = maybe\n", 0, NULL,
	    ":1: submission_track: 'maybe' is not a boolean", NULL },
	{ "listen no port", "smtp_listen = 127.0.0.1\n", 0, NULL,
	    ":1: smtp_listen: missing ':port' in address '127.0.0.1'", NULL },
	{ "listen port 0", "smtp_listen = 127.0.0.1:0\n", 0, NULL,
	    ":1: smtp_listen: bad port", NULL },
	{ "listen port 65536", "mtqp_listen = 127.0.0.1:65536\n", 0, NULL,
	    ":1: mtqp_listen: bad port", NULL },
	{ "listen v6 no brackets", "smtp_listen = ::1:25\n", 0, NULL,
	    ":1: smtp_listen: IPv6 address '::1:25' must be in brackets",
	    NULL },
	{ "listen name", "smtp_listen = localhost:25\n", 0, NULL,
	    ":1: smtp_listen: 'localhost' is not a numeric", NULL },
	{ "listen trailing comma", "smtp_listen = 127.0.0.1:25,\n", 0, NULL,
	    ":1: smtp_listen: empty item in list", NULL },
	{ "listen empty item", "smtp_listen = 127.0.0.1:25, ,[::1]:25\n", 0,
	    NULL, ":1: smtp_listen: empty item in list", NULL },
	{ "listen empty", "smtp_listen =\n", 0, NULL,
	    ":1: smtp_listen: empty value", NULL },
	/* relay_networks */
	{ "relay empty", "relay_networks =\n", 0, NULL, NULL, chk_no_relay },
	{ "relay 64", NULL, 0, gen_nets64, NULL, chk_nets64 },
	{ "relay 65", NULL, 0, gen_nets65,
	    ":1: relay_networks: more than 64 networks", NULL },
	{ "relay host bits", "relay_networks = 10.0.0.1/8\n", 0, NULL,
	    ":1: relay_networks: '10.0.0.1/8' has host bits set past /8",
	    NULL },
	{ "relay v6 host bits", "relay_networks = 2001:db8::1/64\n", 0, NULL,
	    "has host bits set past /64", NULL },
	{ "relay /33", "relay_networks = 10.0.0.0/33\n", 0, NULL,
	    ":1: relay_networks: bad prefix length in '10.0.0.0/33' (0-32)",
	    NULL },
	{ "relay /129", "relay_networks = ::/129\n", 0, NULL,
	    "bad prefix length in '::/129' (0-128)", NULL },
	{ "relay empty prefix", "relay_networks = 10.0.0.0/\n", 0, NULL,
	    "bad prefix length", NULL },
	{ "relay prefix sign", "relay_networks = 10.0.0.0/+8\n", 0, NULL,
	    "bad prefix length", NULL },
	{ "relay open v4", "relay_networks = 0.0.0.0/0\n", 0, NULL,
	    ":1: relay_networks: '0.0.0.0/0' matches every address: that is an "
	    "open relay",
	    NULL },
	{ "relay open v6", "relay_networks = 127.0.0.0/8, ::/0\n", 0, NULL,
	    "'::/0' matches every address", NULL },
	{ "relay name", "relay_networks = localhost\n", 0, NULL,
	    ":1: relay_networks: bad network 'localhost'", NULL },
	{ "relay short v4", "relay_networks = 10/8\n", 0, NULL,
	    "bad network '10/8'", NULL },
	{ "relay double comma", "relay_networks = 10.0.0.0/8,,::1\n", 0, NULL,
	    "relay_networks: empty item in list", NULL },
	/* local_domains */
	{ "domains", "local_domains = Example.COM, mail.example.org,x-1.test\n",
	    0, NULL, NULL, chk_domains },
	{ "domains empty", "local_domains =\n", 0, NULL, NULL, chk_no_domains },
	{ "domains 256", NULL, 0, gen_domains256, NULL, chk_domains256 },
	{ "domains 257", NULL, 0, gen_domains257,
	    ":1: local_domains: more than 256 domains", NULL },
	{ "domains twice", "local_domains = a.test, A.TEST\n", 0, NULL,
	    ":1: local_domains: 'a.test' is listed twice", NULL },
	{ "domains underscore", "local_domains = ex_ample.com\n", 0, NULL,
	    "character '_' not allowed in domain name", NULL },
	{ "domains literal", "local_domains = [127.0.0.1]\n", 0, NULL,
	    "character '[' not allowed", NULL },
	{ "domains numeric", "local_domains = 10.0.0.1\n", 0, NULL,
	    "last label of domain name is all digits", NULL },
	/* hostname */
	{ "hostname 255", NULL, 0, gen_hostname255, NULL, chk_hostname255 },
	{ "hostname 256", NULL, 0, gen_hostname256,
	    ":1: hostname: domain name longer than 255 characters", NULL },
	{ "hostname label 63", NULL, 0, gen_label63, NULL, NULL },
	{ "hostname label 64", NULL, 0, gen_label64,
	    ":1: hostname: label longer than 63 characters", NULL },
	{ "hostname single label", "hostname = localhost\n", 0, NULL, NULL,
	    NULL },
	{ "hostname leading digit", "hostname = 3com.example\n", 0, NULL, NULL,
	    NULL },
	{ "hostname leading hyphen", "hostname = -a.example\n", 0, NULL,
	    ":1: hostname: label starts with '-' in domain name", NULL },
	{ "hostname trailing hyphen", "hostname = a-.example\n", 0, NULL,
	    ":1: hostname: label ends with '-' in domain name", NULL },
	{ "hostname ends hyphen", "hostname = a.example-\n", 0, NULL,
	    "label ends with '-'", NULL },
	{ "hostname empty label", "hostname = a..example\n", 0, NULL,
	    ":1: hostname: empty label in domain name", NULL },
	{ "hostname leading dot", "hostname = .example\n", 0, NULL,
	    "empty label", NULL },
	{ "hostname trailing dot", "hostname = a.example.\n", 0, NULL,
	    ":1: hostname: domain name ends with '.'", NULL },
	{ "hostname space", "hostname = a example\n", 0, NULL,
	    "character ' ' not allowed", NULL },
	{ "hostname utf-8", "hostname = \xc3\xa9.example\n", 0, NULL,
	    "character '\\xc3' not allowed", NULL },
	{ "hostname address", "hostname = 192.0.2.1\n", 0, NULL, "all digits",
	    NULL },
	{ "hostname empty", "hostname =\n", 0, NULL,
	    ":1: hostname: empty value", NULL },
	/* durations */
	{ "idle 10m", "mtqp_idle_timeout = 10m\n", 0, NULL, NULL, chk_idle600 },
	{ "idle 600", "mtqp_idle_timeout = 600\n", 0, NULL, NULL, chk_idle600 },
	{ "idle 599", "mtqp_idle_timeout = 599\n", 0, NULL,
	    ":1: mtqp_idle_timeout: 599 is below the minimum 10m (RFC 3887 "
	    "section 2.5)",
	    NULL },
	{ "idle 9m", "mtqp_idle_timeout = 9m\n", 0, NULL, "below the minimum",
	    NULL },
	/* mtrk_max_timeout is a silent cap on the default retention (its
	 * default 9d too) ... */
	{ "mtrk max 1d alone", "mtrk_max_timeout = 1d\n", 0, NULL, NULL,
	    chk_mtrk1d },
	{ "mtrk max 2d alone", "# x\nmtrk_max_timeout = 2d\n", 0, NULL, NULL,
	    chk_mtrk2d },
	{ "mtrk max 20d alone", "mtrk_max_timeout = 20d\n", 0, NULL, NULL,
	    chk_mtrk9d20d },
	/* ... but a default the operator wrote is never changed in silence:
	 * above the maximum (written or not) it is an error. */
	{ "mtrk both explicit, default above",
	    "mtrk_default_timeout = 3d\nmtrk_max_timeout = 2d\n", 0, NULL,
	    ":2: mtrk_default_timeout (259200 s) is above mtrk_max_timeout "
	    "(172800 s)",
	    NULL },
	{ "mtrk 1d both", "mtrk_default_timeout = 1d\nmtrk_max_timeout = 24h\n",
	    0, NULL, NULL, chk_mtrk1d },
	{ "mtrk max below 1d", "mtrk_max_timeout = 86399\n", 0, NULL,
	    ":1: mtrk_max_timeout: 86399 is below the minimum 1d", NULL },
	{ "mtrk default above max",
	    "mtrk_max_timeout = 10d\n# x\nmtrk_default_timeout = 11d\n", 0,
	    NULL, ":3: mtrk_default_timeout (950400 s) is above", NULL },
	{ "mtrk default above default max", "mtrk_default_timeout = 31d\n", 0,
	    NULL,
	    ":1: mtrk_default_timeout (2678400 s) is above mtrk_max_timeout "
	    "(2592000 s, its default)",
	    NULL },
	{ "smtp timeout 3s", "smtp_timeout = 3s\n", 0, NULL, NULL, chk_smtp3 },
	{ "smtp timeout 0", "smtp_timeout = 0\n", 0, NULL,
	    ":1: smtp_timeout: 0 is below the minimum 1s", NULL },
	{ "purge 0", "purge_interval = 0\n", 0, NULL,
	    ":1: purge_interval: 0 is below the minimum 1s", NULL },
	{ "lifetime 0s", "queue_lifetime = 0s\n", 0, NULL,
	    ":1: queue_lifetime: 0s is below the minimum 1s", NULL },
	{ "delay 0d", "delay_warning = 0d\n", 0, NULL, "below the minimum",
	    NULL },
	{ "duration upper suffix", "purge_interval = 1H\n", 0, NULL,
	    ":1: purge_interval: bad duration '1H'", NULL },
	{ "duration space", "purge_interval = 1 h\n", 0, NULL,
	    ":1: purge_interval: bad duration '1 h'", NULL },
	{ "duration negative", "queue_lifetime = -1d\n", 0, NULL,
	    "bad duration '-1d'", NULL },
	{ "duration overflow", "queue_lifetime = 99999999999999999999999d\n", 0,
	    NULL,
	    ":1: queue_lifetime: duration '99999999999999999999' too "
	    "long (at most 999999999 seconds)",
	    NULL },
	{ "duration above max", "delay_warning = 11575d\n", 0, NULL, "too long",
	    NULL },
	{ "duration at max", "queue_lifetime = 999999999\n", 0, NULL, NULL,
	    NULL },
	{ "duration fraction", "delay_warning = 1.5h\n", 0, NULL,
	    "bad duration '1.5h'", NULL },
	/* retry_schedule */
	{ "retry one", "retry_schedule = 90s\n", 0, NULL, NULL, chk_retry1 },
	{ "retry 16", NULL, 0, gen_retry16, NULL, chk_retry16 },
	{ "retry 17", NULL, 0, gen_retry17,
	    ":1: retry_schedule: more than 16 intervals", NULL },
	{ "retry zero", "retry_schedule = 5m, 0, 1h\n", 0, NULL,
	    ":1: retry_schedule: a retry interval of 0 would retry in a loop",
	    NULL },
	{ "retry bad", "retry_schedule = 5m, soon\n", 0, NULL,
	    ":1: retry_schedule: bad duration 'soon'", NULL },
	{ "retry empty", "retry_schedule =\n", 0, NULL,
	    ":1: retry_schedule: empty value", NULL },
	{ "retry trailing comma", "retry_schedule = 5m,\n", 0, NULL,
	    "empty item in list", NULL },
	/* sizes */
	{ "size 10k", "max_message_size = 10k\n", 0, NULL, NULL, chk_sizes },
	{ "size 10240", "max_message_size = 10240\n", 0, NULL, NULL,
	    chk_sizes },
	{ "size 1G", "max_message_size = 1G\n", 0, NULL, NULL, NULL },
	{ "size over the queue's limit", "max_message_size = 1025M\n", 0, NULL,
	    ":1: max_message_size: above the queue's limit of 1073741824 "
	    "bytes (1G)",
	    NULL },
	{ "size 0", "max_message_size = 0\n", 0, NULL,
	    ":1: max_message_size: must be at least 1 byte", NULL },
	{ "size 0M", "max_message_size = 0M\n", 0, NULL, "at least 1 byte",
	    NULL },
	{ "size bad suffix", "max_message_size = 10MB\n", 0, NULL,
	    ":1: max_message_size: bad size '10MB'", NULL },
	{ "size overflow", "max_message_size = 17179869184G\n", 0, NULL,
	    ":1: max_message_size: size '17179869184G' too large (overflows 64 "
	    "bits)",
	    NULL },
	{ "size space", "max_message_size = 10 M\n", 0, NULL, "bad size",
	    NULL },
	/* enumerations */
	{ "transport lmtp v4", "local_transport = lmtp:127.0.0.1:24\n", 0, NULL,
	    NULL, chk_lmtp4 },
	{ "transport lmtp v6", "local_transport = LMTP:[::1]:2424\n", 0, NULL,
	    NULL, chk_lmtp6 },
	{ "transport lmtp name", "local_transport = lmtp:lmtp.example:24\n", 0,
	    NULL, NULL, chk_lmtp_name },
	{ "transport Maildir", "local_transport = Maildir\n", 0, NULL, NULL,
	    chk_maildir },
	{ "transport mbox", "local_transport = mbox\n", 0, NULL,
	    ":1: local_transport: 'mbox' is neither maildir nor lmtp:HOST:PORT",
	    NULL },
	{ "transport lmtp bare", "local_transport = lmtp:\n", 0, NULL,
	    ":1: local_transport: 'lmtp:': want lmtp:HOST:PORT", NULL },
	{ "transport lmtp no port", "local_transport = lmtp:host.example\n", 0,
	    NULL, "want lmtp:HOST:PORT", NULL },
	{ "transport lmtp port 0", "local_transport = lmtp:127.0.0.1:0\n", 0,
	    NULL, ":1: local_transport: bad port in 'lmtp:127.0.0.1:0'", NULL },
	{ "transport lmtp bad host", "local_transport = lmtp:bad_host:24\n", 0,
	    NULL, "bad host in 'lmtp:bad_host:24': character '_' not allowed",
	    NULL },
	{ "transport lmtp bad v6", "local_transport = lmtp:[::1:24\n", 0, NULL,
	    "missing ']'", NULL },
	{ "transport lmtp bad v4", "local_transport = lmtp:1.2.3.256:24\n", 0,
	    NULL, "all digits", NULL },
	{ "store sqlite", "store = SQLite\n", 0, NULL, NULL, chk_sqlite },
	{ "store pg",
	    "store = postgresql://msgtrk@db.example/msgtrk?sslmode=require\n",
	    0, NULL, NULL, chk_pg },
	{ "store mysql", "store = mysql://x\n", 0, NULL,
	    ":1: store: 'mysql://x' is neither sqlite nor a postgresql:// URI",
	    NULL },
	{ "store pg upper", "store = POSTGRESQL://h/db\n", 0, NULL,
	    ":1: store: 'POSTGRESQL://h/db' is neither sqlite nor a "
	    "postgresql:// URI",
	    NULL },
	{ "store pg empty", "store = postgresql://\n", 0, NULL,
	    ":1: store: empty postgresql:// URI", NULL },
	{ "store pg space", "store = postgresql://a b/c\n", 0, NULL,
	    ":1: store: character 0x20 not allowed in a URI", NULL },
	{ "policy require", "smtp_tls_policy = require\n", 0, NULL, NULL,
	    chk_policy_require },
	{ "policy none", "smtp_tls_policy = None\n", 0, NULL, NULL,
	    chk_policy_none },
	{ "policy verify", "smtp_tls_policy = Verify\n", 0, NULL, NULL,
	    chk_policy_verify },
	{ "policy verify ca file",
	    "smtp_tls_ca_file = /etc/msgtrk/ca.pem/\nsmtp_tls_policy = "
	    "verify\n",
	    0, NULL, NULL, chk_policy_verify_ca },
	{ "ca file relative", "smtp_tls_ca_file = ca.pem\n", 0, NULL,
	    ":1: smtp_tls_ca_file: 'ca.pem' is not an absolute path", NULL },
	{ "ca file empty", "smtp_tls_ca_file =\n", 0, NULL,
	    ":1: smtp_tls_ca_file", NULL },
	{ "policy bad", "smtp_tls_policy = always\n", 0, NULL,
	    ":1: smtp_tls_policy: 'always' is not one of none, opportunistic, "
	    "require, verify",
	    NULL },
	{ "unknown opaque", "mtqp_unknown = opaque\n", 0, NULL, NULL,
	    chk_opaque },
	{ "unknown bad", "mtqp_unknown = silent\n", 0, NULL,
	    ":1: mtqp_unknown: 'silent' is not one of noinfo, opaque", NULL },
	/* booleans */
	{ "bool yes",
	    "mtqp_chain = yes\nhide_internal_hosts = on\nmtqp_tls_required = "
	    "TRUE\ntls_cert_file = /c\ntls_key_file = /k\n",
	    0, NULL, NULL, chk_bools_yes },
	{ "bool 1",
	    "mtqp_chain = 1\nhide_internal_hosts = True\nmtqp_tls_required = "
	    "ON\ntls_cert_file = /c\ntls_key_file = /k\n",
	    0, NULL, NULL, chk_bools_yes },
	{ "bool no",
	    "mtqp_chain = no\nhide_internal_hosts = off\nmtqp_tls_required = "
	    "FALSE\n",
	    0, NULL, NULL, chk_bools_no },
	{ "bool 0", "mtqp_chain = 0\nhide_internal_hosts = NO\n", 0, NULL, NULL,
	    chk_bools_no },
	{ "bool maybe", "mtqp_chain = maybe\n", 0, NULL,
	    ":1: mtqp_chain: 'maybe' is not a boolean", NULL },
	{ "bool 2", "hide_internal_hosts = 2\n", 0, NULL, "is not a boolean",
	    NULL },
	{ "bool y", "mtqp_tls_required = y\n", 0, NULL, "is not a boolean",
	    NULL },
	/* mtqp_chain_hosts: names, [ip], CIDR */
	{ "chain hosts",
	    "mtqp_chain_hosts = Hop2.Example.NET, [192.0.2.7], [2001:db8::7], "
	    "10.0.0.0/8, relay.example.org, 2001:db8:1::/48\n",
	    0, NULL, NULL, chk_chain_hosts },
	{ "chain hosts none", "mtqp_chain_hosts = none\n", 0, NULL, NULL,
	    chk_chain_hosts_none },
	{ "chain hosts default", "mtqp_chain = yes\n", 0, NULL, NULL,
	    chk_chain_hosts_none },
	{ "chain hosts none and more", "mtqp_chain_hosts = none, a.test\n", 0,
	    NULL, ":1: mtqp_chain_hosts: 'none' must be the only value", NULL },
	{ "chain hosts bad name", "mtqp_chain_hosts = a_b.test\n", 0, NULL,
	    ":1: mtqp_chain_hosts: character '_' not allowed", NULL },
	{ "chain hosts trailing dot", "mtqp_chain_hosts = a.test.\n", 0, NULL,
	    ":1: mtqp_chain_hosts: domain name ends with '.'", NULL },
	{ "chain hosts bad literal", "mtqp_chain_hosts = [192.0.2.300]\n", 0,
	    NULL, ":1: mtqp_chain_hosts: bad network", NULL },
	{ "chain hosts open bracket", "mtqp_chain_hosts = [192.0.2.1\n", 0,
	    NULL, ":1: mtqp_chain_hosts: bad address '[192.0.2.1' (want [IP])",
	    NULL },
	{ "chain hosts bracketed net", "mtqp_chain_hosts = [10.0.0.0/8]\n", 0,
	    NULL, "a network is written without brackets", NULL },
	{ "chain hosts name literal", "mtqp_chain_hosts = [mx.test]\n", 0, NULL,
	    ":1: mtqp_chain_hosts: bad network", NULL },
	{ "chain hosts prefix 33", "mtqp_chain_hosts = 10.0.0.0/33\n", 0, NULL,
	    ":1: mtqp_chain_hosts: bad prefix length", NULL },
	{ "chain hosts host bits", "mtqp_chain_hosts = 10.0.0.1/8\n", 0, NULL,
	    "has host bits set past /8", NULL },
	{ "chain hosts everything", "mtqp_chain_hosts = 0.0.0.0/0\n", 0, NULL,
	    ":1: mtqp_chain_hosts: '0.0.0.0/0' matches every address", NULL },
	{ "chain hosts everything v6", "mtqp_chain_hosts = ::/0\n", 0, NULL,
	    "matches every address", NULL },
	{ "chain hosts twice", "mtqp_chain_hosts = a.test, A.test\n", 0, NULL,
	    ":1: mtqp_chain_hosts: 'a.test' is listed twice", NULL },
	{ "chain hosts empty item", "mtqp_chain_hosts = a.test,,b.test\n", 0,
	    NULL, ":1: mtqp_chain_hosts: empty item in list", NULL },
	{ "chain hosts empty", "mtqp_chain_hosts =\n", 0, NULL,
	    ":1: mtqp_chain_hosts", NULL },
	/* TLS */
	{ "tls pair",
	    "tls_cert_file = /etc/msgtrk/cert.pem\ntls_key_file = "
	    "/etc/msgtrk/key.pem\n",
	    0, NULL, NULL, chk_tls },
	{ "tls cert only", "\ntls_cert_file = /etc/msgtrk/cert.pem\n", 0, NULL,
	    ":2: tls_cert_file is set but tls_key_file is not", NULL },
	{ "tls key only", "tls_key_file = /etc/msgtrk/key.pem\n", 0, NULL,
	    ":1: tls_key_file is set but tls_cert_file is not", NULL },
	{ "tls required without cert", "mtqp_tls_required = yes\n", 0, NULL,
	    ":1: mtqp_tls_required needs tls_cert_file and tls_key_file",
	    NULL },
	/* paths */
	{ "mailbox derived", "data_dir = /srv/msgtrk/\n", 0, NULL, NULL,
	    chk_mailbox_derived },
	{ "mailbox derived root", "data_dir = /\n", 0, NULL, NULL,
	    chk_mailbox_root },
	{ "mailbox set", "mailbox_dir = /home/mail//\ndata_dir = /srv/msgtrk\n",
	    0, NULL, NULL, chk_mailbox_set },
	/* control_socket: a path, <data_dir>/control unless set, within a
	 * UNIX socket address */
	{ "control_socket derived", "data_dir = /srv/msgtrk/\n", 0, NULL, NULL,
	    chk_socket_derived },
	{ "control_socket derived root", "data_dir = /\n", 0, NULL, NULL,
	    chk_socket_root },
	{ "control_socket set",
	    "control_socket = /run/msgtrk/control//\ndata_dir = /srv/msgtrk\n",
	    0, NULL, NULL, chk_socket_set },
	{ "control_socket relative", "control_socket = run/control\n", 0, NULL,
	    ":1: control_socket: 'run/control' is not an absolute path", NULL },
	{ "control_socket empty", "control_socket =\n", 0, NULL,
	    ":1: control_socket: empty value", NULL },
	{ "control_socket 107", NULL, 0, gen_socket107, NULL, chk_socket107 },
	{ "control_socket 108", NULL, 0, gen_socket108,
	    ":1: control_socket: path longer than 107 bytes (a UNIX socket's "
	    "limit)",
	    NULL },
	{ "control_socket default 107", NULL, 0, gen_datadir99, NULL,
	    chk_datadir99 },
	{ "control_socket default 108", NULL, 0, gen_datadir100,
	    ":2: control_socket: the default <data_dir>/control is longer than "
	    "107 bytes (a UNIX socket's limit): set control_socket",
	    NULL },
	{ "control_socket set long data_dir", NULL, 0, gen_datadir100_socket,
	    NULL, chk_datadir100_socket },
	{ "data_dir relative", "data_dir = var/lib/msgtrk\n", 0, NULL,
	    ":1: data_dir: 'var/lib/msgtrk' is not an absolute path", NULL },
	{ "aliases relative", "aliases = ./aliases\n", 0, NULL,
	    ":1: aliases: './aliases' is not an absolute path", NULL },
	{ "routes empty", "routes =\n", 0, NULL, ":1: routes: empty value",
	    NULL },
	{ "local_recipients missing file ok",
	    "local_recipients = /nonexistent/recipients\n", 0, NULL, NULL,
	    NULL },
	/* dns_servers */
	{ "dns two", "dns_servers = 127.0.0.1:5353, [::1]:53\n", 0, NULL, NULL,
	    chk_dns },
	{ "dns empty", "dns_servers =\n", 0, NULL, NULL, chk_no_dns },
	{ "dns 5", NULL, 0, gen_dns5, ":1: dns_servers: more than 4 addresses",
	    NULL },
	{ "dns none", "dns_servers = none\n", 0, NULL,
	    ":1: dns_servers: 'none' is not an address", NULL },
	{ "dns no port", "dns_servers = 127.0.0.1\n", 0, NULL,
	    "missing ':port'", NULL },
	/* user */
	{ "user", "user = _msgtrk-1.x\n", 0, NULL, NULL, chk_user },
	{ "user 32", NULL, 0, gen_user32, NULL, NULL },
	{ "user 33", NULL, 0, gen_user33, ":1: user: user name longer than 32",
	    NULL },
	{ "user dash", "user = -root\n", 0, NULL,
	    ":1: user: user name starts with '-'", NULL },
	{ "user space", "user = a b\n", 0, NULL,
	    ":1: user: 'a b' is not a valid user name", NULL },
	{ "user colon", "user = a:b\n", 0, NULL, "not a valid user name",
	    NULL },
	/* line-level errors */
	{ "unknown key", "\n\nsmtp_port = 25\n", 0, NULL,
	    ":3: unknown key 'smtp_port'", NULL },
	{ "key case", "Hostname = a.example\n", 0, NULL,
	    ":1: unknown key 'Hostname'", NULL },
	{ "missing =", "hostname mail.example.com\n", 0, NULL,
	    ":1: missing '=' in 'hostname mail.example.com' (want name = "
	    "value)",
	    NULL },
	{ "missing name", "= 25\n", 0, NULL, ":1: missing name before '='",
	    NULL },
	{ "duplicate key",
	    "hostname = a.example\n# again\nhostname = b.example\n", 0, NULL,
	    ":3: duplicate key 'hostname' (first set at line 1)", NULL },
	{ "duplicate key same value", "user = a\nuser = a\n", 0, NULL,
	    ":2: duplicate key 'user'", NULL },
	{ "line of 4097 bytes", NULL, 0, gen_line4097,
	    ":1: line longer than 4096 bytes", NULL },
	{ "NUL byte", LIT("hostname = a.example\n# x\0y\n"), NULL,
	    ":2: NUL byte", NULL },
	{ "NUL in value", LIT("hostname = a\0.example\n"), NULL, ":1: NUL byte",
	    NULL },
	{ "NUL at end", LIT("hostname = a.example\n\0"), NULL, ":2: NUL byte",
	    NULL },
	{ "control char", "hostname = a\001.example\n", 0, NULL,
	    ":1: control character 0x01", NULL },
	{ "CR in line", "hostname = a\r.example\n", 0, NULL,
	    ":1: control character 0x0d", NULL },
	{ "DEL in comment", "# \x7f\n", 0, NULL, ":1: control character 0x7f",
	    NULL },
	{ "error quotes are escaped", "\xff\xfe = 1\n", 0, NULL,
	    ":1: unknown key '\\xff\\xfe'", NULL },
	{ "file too large", NULL, 0, gen_toobig, ": larger than 1048576 bytes",
	    NULL },
};

static const char *
load_name(const void *row)
{
	return ((const struct load_case *)row)->name;
}

static void
test_load(void **state)
{
	const struct load_case *lc = *state;
	struct conf c;
	char err[1024], *text, *path = NULL;
	size_t n;
	int r;

	text = lc->gen != NULL ? lc->gen() : strdup(lc->text);
	assert_non_null(text);
	/* with len, the literal holds NULs: write it as it is */
	n = lc->len != 0 ? lc->len : strlen(text);
	err[0] = '\0';
	r = load_text(
	    &c, lc->len != 0 ? lc->text : text, n, err, sizeof(err), &path);
	if (lc->err == NULL) {
		if (r != 0)
			fail_msg("unexpected error: %s", err);
		if (lc->check != NULL)
			lc->check(&c);
	} else {
		assert_int_equal(r, -1);
		/* "file:line: what": the path first, then the text */
		assert_int_equal(strncmp(err, path, strlen(path)), 0);
		if (strstr(err + strlen(path), lc->err) == NULL)
			fail_msg("error '%s' lacks '%s'", err, lc->err);
	}
	assert_string_equal(c.file, path);
	conf_free(&c);
	free(path);
	free(text);
}

/* Every key's default, one by one (PRODUCT.md's table). */
static void
test_defaults(void **state)
{
	struct conf c;
	char err[256], host[256], a[INET6_ADDRSTRLEN];
	const struct sockaddr_in *sin;
	static const time_t retry[] = { 300, 600, 1200, 2400, 3600 };
	size_t i;

	(void)state;
	assert_int_equal(conf_defaults(&c, err, sizeof(err)), 0);
	assert_null(c.file);
	/* the system FQDN, or at least gethostname()'s answer */
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	assert_true(strlen(c.hostname) > 0);
	assert_true(
	    strchr(c.hostname, '.') != NULL || strcmp(c.hostname, host) == 0);
	assert_string_equal(c.data_dir, "/var/lib/msgtrk");
	assert_int_equal(c.n_smtp_listen, 1);
	sin = (const struct sockaddr_in *)&c.smtp_listen[0].ss;
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 25);
	assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(c.smtp_listen[0].len, sizeof(struct sockaddr_in));
	assert_int_equal(c.n_mtqp_listen, 1);
	sin = (const struct sockaddr_in *)&c.mtqp_listen[0].ss;
	assert_int_equal(ntohs(sin->sin_port), 1038);
	assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(c.n_relay_networks, 2);
	assert_int_equal(c.relay_networks[0].family, AF_INET);
	assert_int_equal(c.relay_networks[0].prefix, 8);
	assert_non_null(
	    inet_ntop(AF_INET, c.relay_networks[0].addr, a, sizeof(a)));
	assert_string_equal(a, "127.0.0.0");
	assert_int_equal(c.relay_networks[1].family, AF_INET6);
	assert_int_equal(c.relay_networks[1].prefix, 128);
	assert_non_null(
	    inet_ntop(AF_INET6, c.relay_networks[1].addr, a, sizeof(a)));
	assert_string_equal(a, "::1");
	assert_int_equal(c.n_local_domains, 0);
	assert_null(c.local_domains);
	assert_null(c.local_recipients);
	assert_string_equal(c.local_transport, "maildir");
	assert_string_equal(c.mailbox_dir, "/var/lib/msgtrk/mail");
	assert_string_equal(c.control_socket, "/var/lib/msgtrk/control");
	assert_null(c.aliases);
	assert_null(c.routes);
	assert_int_equal(c.n_submission_listen, 0);
	assert_int_equal(c.n_submissions_listen, 0);
	assert_null(c.auth);
	assert_null(c.sender_logins);
	assert_int_equal(c.submission_track, 1);
	assert_int_equal(c.n_dns_servers, 0);
	assert_string_equal(c.store, "sqlite");
	assert_null(c.tls_cert_file);
	assert_null(c.tls_key_file);
	assert_int_equal(c.smtp_tls_policy, CONF_TLS_OPPORTUNISTIC);
	assert_int_equal(c.max_message_size, 50 * 1024 * 1024);
	assert_int_equal(c.mtrk_default_timeout, 9 * 86400);
	assert_int_equal(c.mtrk_max_timeout, 30 * 86400);
	assert_int_equal(c.purge_interval, 3600);
	assert_int_equal(c.smtp_timeout, 300);
	assert_int_equal(c.queue_lifetime, 5 * 86400);
	assert_int_equal(c.delay_warning, 4 * 3600);
	assert_int_equal(c.n_retry_schedule, 5);
	for (i = 0; i < 5; i++)
		assert_int_equal(c.retry_schedule[i], retry[i]);
	assert_int_equal(c.mtqp_unknown, CONF_MTQP_NOINFO);
	assert_int_equal(c.mtqp_idle_timeout, 600);
	assert_int_equal(c.mtqp_tls_required, 0);
	assert_int_equal(c.mtqp_chain, 0);
	assert_int_equal(c.hide_internal_hosts, 0);
	assert_string_equal(c.user, "msgtrk");
	conf_free(&c);
	/* conf_free() zeroes, so a second call and NULL are harmless */
	conf_free(&c);
	conf_free(NULL);
}

/* tests/golden/conf/defaults.conf sets every key to its documented
 * default: loading it must change nothing but the hostname. */
static void
test_golden_defaults(void **state)
{
	struct conf d, c;
	char err[512], *path;
	const char *dir = getenv("GOLDEN_DIR");

	(void)state;
	assert_true(asprintf(&path, "%s/conf/defaults.conf",
	                dir != NULL ? dir : "tests/golden") > 0);
	assert_int_equal(conf_defaults(&d, err, sizeof(err)), 0);
	assert_int_equal(conf_defaults(&c, err, sizeof(err)), 0);
	if (conf_load(&c, path, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(c.hostname, "mail.example.com");
	assert_string_equal(c.data_dir, d.data_dir);
	assert_int_equal(c.n_smtp_listen, d.n_smtp_listen);
	assert_memory_equal(
	    c.smtp_listen, d.smtp_listen, sizeof(d.smtp_listen));
	assert_int_equal(c.n_mtqp_listen, d.n_mtqp_listen);
	assert_memory_equal(
	    c.mtqp_listen, d.mtqp_listen, sizeof(d.mtqp_listen));
	assert_int_equal(c.n_relay_networks, d.n_relay_networks);
	assert_memory_equal(
	    c.relay_networks, d.relay_networks, sizeof(d.relay_networks));
	assert_int_equal(c.n_local_domains, 0);
	assert_string_equal(c.local_transport, d.local_transport);
	assert_string_equal(c.mailbox_dir, d.mailbox_dir);
	assert_string_equal(c.control_socket, d.control_socket);
	assert_int_equal(c.n_dns_servers, 0);
	assert_string_equal(c.store, d.store);
	assert_int_equal(c.smtp_tls_policy, d.smtp_tls_policy);
	assert_null(c.smtp_tls_ca_file);
	assert_int_equal(c.max_message_size, d.max_message_size);
	assert_int_equal(c.mtrk_default_timeout, d.mtrk_default_timeout);
	assert_int_equal(c.mtrk_max_timeout, d.mtrk_max_timeout);
	assert_int_equal(c.purge_interval, d.purge_interval);
	assert_int_equal(c.queue_lifetime, d.queue_lifetime);
	assert_int_equal(c.delay_warning, d.delay_warning);
	assert_int_equal(c.n_retry_schedule, d.n_retry_schedule);
	assert_memory_equal(
	    c.retry_schedule, d.retry_schedule, sizeof(d.retry_schedule));
	assert_int_equal(c.mtqp_unknown, d.mtqp_unknown);
	assert_int_equal(c.mtqp_idle_timeout, d.mtqp_idle_timeout);
	assert_int_equal(c.mtqp_tls_required, d.mtqp_tls_required);
	assert_int_equal(c.mtqp_chain, d.mtqp_chain);
	assert_int_equal(c.hide_internal_hosts, d.hide_internal_hosts);
	assert_string_equal(c.user, d.user);
	assert_int_equal(c.n_http_listen, 0);
	assert_int_equal(c.n_https_listen, 0);
	assert_int_equal(c.n_http_admins, 0);
	assert_int_equal(c.n_metrics_networks, d.n_metrics_networks);
	assert_int_equal(d.n_metrics_networks, 2);
	assert_memory_equal(
	    c.metrics_networks, d.metrics_networks, sizeof(d.metrics_networks));
	conf_free(&c);
	conf_free(&d);
	free(path);
}

/* tests/golden/conf/full.conf sets every key away from its default. */
static void
test_golden_full(void **state)
{
	struct conf c;
	char err[512], *path, a[INET6_ADDRSTRLEN];
	const char *dir = getenv("GOLDEN_DIR");
	const struct sockaddr_in6 *sin6;
	const struct sockaddr_in *sin;

	(void)state;
	assert_true(asprintf(&path, "%s/conf/full.conf",
	                dir != NULL ? dir : "tests/golden") > 0);
	assert_int_equal(conf_defaults(&c, err, sizeof(err)), 0);
	if (conf_load(&c, path, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(c.hostname, "relay1.example.net");
	assert_string_equal(c.data_dir, "/srv/msgtrk");
	assert_int_equal(c.n_smtp_listen, 2);
	sin = (const struct sockaddr_in *)&c.smtp_listen[0].ss;
	assert_int_equal(ntohs(sin->sin_port), 2525);
	assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a)));
	assert_string_equal(a, "127.0.0.2");
	sin6 = (const struct sockaddr_in6 *)&c.smtp_listen[1].ss;
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 2525);
	assert_int_equal(c.n_mtqp_listen, 1);
	sin6 = (const struct sockaddr_in6 *)&c.mtqp_listen[0].ss;
	assert_int_equal(ntohs(sin6->sin6_port), 11038);
	assert_int_equal(c.n_relay_networks, 3);
	assert_int_equal(c.relay_networks[2].prefix, 32);
	assert_int_equal(c.n_local_domains, 2);
	assert_string_equal(c.local_domains[0], "example.net");
	assert_string_equal(c.local_domains[1], "lists.example.net");
	assert_string_equal(c.local_recipients, "/etc/msgtrk/recipients");
	assert_string_equal(c.local_transport, "lmtp:127.0.0.1:24");
	assert_string_equal(c.mailbox_dir, "/srv/mail");
	assert_string_equal(c.control_socket, "/run/msgtrk/control");
	assert_string_equal(c.aliases, "/etc/msgtrk/aliases");
	assert_string_equal(c.routes, "/etc/msgtrk/routes");
	assert_int_equal(c.n_dns_servers, 2);
	assert_string_equal(
	    c.store, "postgresql://msgtrk@db.example.net/msgtrk");
	assert_string_equal(c.tls_cert_file, "/etc/msgtrk/tls/cert.pem");
	assert_string_equal(c.tls_key_file, "/etc/msgtrk/tls/key.pem");
	assert_int_equal(c.smtp_tls_policy, CONF_TLS_REQUIRE);
	assert_string_equal(c.smtp_tls_ca_file, "/etc/msgtrk/tls/ca.pem");
	assert_int_equal(c.max_message_size, 20ULL * 1024 * 1024);
	assert_int_equal(c.mtrk_default_timeout, 8 * 86400);
	assert_int_equal(c.mtrk_max_timeout, 10 * 86400);
	assert_int_equal(c.purge_interval, 30 * 60);
	assert_int_equal(c.queue_lifetime, 3 * 86400);
	assert_int_equal(c.delay_warning, 2 * 3600);
	assert_int_equal(c.n_retry_schedule, 3);
	assert_int_equal(c.retry_schedule[0], 60);
	assert_int_equal(c.retry_schedule[1], 300);
	assert_int_equal(c.retry_schedule[2], 1800);
	assert_int_equal(c.mtqp_unknown, CONF_MTQP_OPAQUE);
	assert_int_equal(c.mtqp_idle_timeout, 15 * 60);
	assert_int_equal(c.mtqp_tls_required, 1);
	assert_int_equal(c.mtqp_chain, 1);
	assert_int_equal(c.hide_internal_hosts, 1);
	assert_string_equal(c.user, "_msgtrk");
	assert_int_equal(c.n_http_listen, 1);
	sin = (const struct sockaddr_in *)&c.http_listen[0].ss;
	assert_int_equal(ntohs(sin->sin_port), 8080);
	assert_int_equal(c.n_https_listen, 2);
	sin6 = (const struct sockaddr_in6 *)&c.https_listen[0].ss;
	assert_int_equal(ntohs(sin6->sin6_port), 8443);
	assert_int_equal(c.n_metrics_networks, 1);
	assert_int_equal(c.metrics_networks[0].prefix, 24);
	assert_int_equal(c.n_http_admins, 2);
	assert_string_equal(c.http_admins[0], "alice");
	assert_string_equal(c.http_admins[1], "ops@example.net");
	assert_true(conf_is_http_admin(&c, "alice"));
	assert_false(conf_is_http_admin(&c, "Alice"));
	assert_false(conf_is_http_admin(&c, "bob"));
	conf_free(&c);
	free(path);
}

/* File-level errors: "file: what", no line. */
static void
test_file_errors(void **state)
{
	struct conf c;
	char err[512], *path;
	int fd;

	(void)state;
	assert_int_equal(conf_defaults(&c, err, sizeof(err)), 0);
	assert_true(asprintf(&path, "%s/missing.conf", tmpdir) > 0);
	assert_int_equal(conf_load(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "missing.conf: No such file or directory"));
	free(path);
	/* a directory */
	assert_int_equal(conf_load(&c, tmpdir, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ": not a regular file"));
	/* a FIFO must not hang the load */
	assert_true(asprintf(&path, "%s/fifo", tmpdir) > 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(conf_load(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "fifo: not a regular file"));
	assert_int_equal(unlink(path), 0);
	free(path);
	/* /dev/null is a character device */
	assert_int_equal(conf_load(&c, "/dev/null", err, sizeof(err)), -1);
	assert_string_equal(err, "/dev/null: not a regular file");
	/* a path through a file */
	assert_true(asprintf(&path, "%s/plain", tmpdir) > 0);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	free(path);
	assert_true(asprintf(&path, "%s/plain/x.conf", tmpdir) > 0);
	assert_int_equal(conf_load(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "x.conf: Not a directory"));
	free(path);
	assert_true(asprintf(&path, "%s/plain", tmpdir) > 0);
	assert_int_equal(unlink(path), 0);
	free(path);
	/* a tiny error buffer is still terminated; none at all is fine */
	assert_int_equal(conf_load(&c, "/nonexistent", err, 5), -1);
	assert_string_equal(err, "/non");
	assert_int_equal(conf_load(&c, "/nonexistent", NULL, 0), -1);
	assert_int_equal(conf_load(NULL, "/nonexistent", err, sizeof(err)), -1);
	assert_int_equal(conf_load(&c, NULL, err, sizeof(err)), -1);
	conf_free(&c);
}

/* Loading twice over the same struct (SIGHUP-style) frees what it
 * replaces: ASan's leak check is the assertion. */
static void
test_reload(void **state)
{
	struct conf c;
	char err[512], *p1, *p2;

	(void)state;
	static const char t1[] = "local_domains = a.test, b.test\nuser = u1\n"
	                         "store = postgresql://x/y\naliases = /a\n";
	static const char t2[] = "local_domains = c.test\nuser = u2\n"
	                         "store = sqlite\naliases = /b\n";

	p1 = write_file(t1, sizeof(t1) - 1);
	p2 = write_file(t2, sizeof(t2) - 1);
	assert_int_equal(conf_defaults(&c, err, sizeof(err)), 0);
	assert_int_equal(conf_load(&c, p1, err, sizeof(err)), 0);
	assert_int_equal(conf_load(&c, p2, err, sizeof(err)), 0);
	assert_int_equal(c.n_local_domains, 1);
	assert_string_equal(c.local_domains[0], "c.test");
	assert_string_equal(c.user, "u2");
	assert_string_equal(c.store, "sqlite");
	assert_string_equal(c.aliases, "/b");
	assert_string_equal(c.file, p2);
	conf_free(&c);
	free(p1);
	free(p2);
}

struct dur_case {
	const char *in;
	long long want; /* -1: refused */
};

static const struct dur_case dur_cases[] = {
	{ "0", 0 }, { "1", 1 }, { "007", 7 }, { "30s", 30 }, { "0s", 0 },
	{ "5m", 300 }, { "4h", 14400 }, { "9d", 777600 },
	{ "999999999", 999999999 }, { "999999999s", 999999999 },
	{ "1000000000", -1 }, { "16666666m", 999999960 }, { "16666667m", -1 },
	{ "277777h", 999997200 }, { "277778h", -1 }, { "11574d", 999993600 },
	{ "11575d", -1 }, { "18446744073709551615", -1 },
	{ "18446744073709551616", -1 },
	{ "99999999999999999999999999999999", -1 },
	{ "1844674407370955162d", -1 }, { "", -1 }, { "s", -1 }, { "m", -1 },
	{ "d", -1 }, { "5S", -1 }, { "5M", -1 }, { "5H", -1 }, { "5D", -1 },
	{ "5ms", -1 }, { "5w", -1 }, { "5y", -1 }, { "5mm", -1 }, { " 5m", -1 },
	{ "5m ", -1 }, { "5 m", -1 }, { "\t5", -1 }, { "-5", -1 }, { "+5", -1 },
	{ "5.5h", -1 }, { "0x10", -1 }, { "1e3", -1 }, { "1h30m", -1 },
	{ "\xef\xbc\x95", -1 }, /* FULLWIDTH DIGIT FIVE */
};

static const char *
dur_name(const void *row)
{
	return ((const struct dur_case *)row)->in;
}

static void
test_duration(void **state)
{
	const struct dur_case *dc = *state;
	time_t t = 12345;

	if (dc->want < 0) {
		assert_int_equal(conf_parse_duration(dc->in, &t), -1);
		assert_int_equal(t, 12345); /* untouched */
	} else {
		assert_int_equal(conf_parse_duration(dc->in, &t), 0);
		assert_int_equal(t, dc->want);
	}
}

struct size_case {
	const char *in;
	int ok;
	uint64_t want;
};

static const struct size_case size_cases[] = {
	{ "0", 1, 0 },
	{ "1", 1, 1 },
	{ "1024", 1, 1024 },
	{ "10K", 1, 10240 },
	{ "10k", 1, 10240 },
	{ "50M", 1, 52428800 },
	{ "50m", 1, 52428800 },
	{ "1G", 1, 1073741824 },
	{ "1g", 1, 1073741824 },
	{ "0K", 1, 0 },
	{ "18446744073709551615", 1, UINT64_MAX },
	{ "18446744073709551616", 0, 0 },
	{ "99999999999999999999", 0, 0 },
	{ "18014398509481983K", 1, UINT64_MAX - 1023 },
	{ "18014398509481984K", 0, 0 },
	{ "17592186044415M", 1, UINT64_MAX - (1024 * 1024 - 1) },
	{ "17592186044416M", 0, 0 },
	{ "17179869183G", 1, UINT64_MAX - (1024 * 1024 * 1024 - 1) },
	{ "17179869184G", 0, 0 },
	{ "", 0, 0 },
	{ "K", 0, 0 },
	{ "M", 0, 0 },
	{ "10B", 0, 0 },
	{ "10KB", 0, 0 },
	{ "10KK", 0, 0 },
	{ "10T", 0, 0 },
	{ "10 K", 0, 0 },
	{ " 10", 0, 0 },
	{ "10 ", 0, 0 },
	{ "-1", 0, 0 },
	{ "+1", 0, 0 },
	{ "1.5M", 0, 0 },
	{ "0x400", 0, 0 },
	{ "1e6", 0, 0 },
};

static const char *
size_name(const void *row)
{
	return ((const struct size_case *)row)->in;
}

static void
test_size(void **state)
{
	const struct size_case *sc = *state;
	uint64_t v = 777;

	if (!sc->ok) {
		assert_int_equal(conf_parse_size(sc->in, &v), -1);
		assert_int_equal(v, 777);
	} else {
		assert_int_equal(conf_parse_size(sc->in, &v), 0);
		assert_true(v == sc->want);
	}
}

struct addr_case {
	const char *in;
	int family; /* 0: refused */
	const char *addr; /* inet_ntop form */
	int port;
};

static const struct addr_case addr_cases[] = {
	{ "127.0.0.1:25", AF_INET, "127.0.0.1", 25 },
	{ "0.0.0.0:25", AF_INET, "0.0.0.0", 25 },
	{ "255.255.255.255:65535", AF_INET, "255.255.255.255", 65535 },
	{ "1.2.3.4:1", AF_INET, "1.2.3.4", 1 },
	{ "127.0.0.1:00025", AF_INET, "127.0.0.1", 25 },
	{ "[127.0.0.1]:2525", AF_INET, "127.0.0.1", 2525 },
	{ "[::1]:25", AF_INET6, "::1", 25 },
	{ "[::]:1038", AF_INET6, "::", 1038 },
	{ "[2001:db8::25]:587", AF_INET6, "2001:db8::25", 587 },
	{ "[::ffff:127.0.0.1]:25", AF_INET6, "::ffff:127.0.0.1", 25 },
	{ "[FE80::1]:25", AF_INET6, "fe80::1", 25 },
	{ "127.0.0.1", 0, NULL, 0 },
	{ "127.0.0.1:", 0, NULL, 0 },
	{ "127.0.0.1:0", 0, NULL, 0 },
	{ "127.0.0.1:65536", 0, NULL, 0 },
	{ "127.0.0.1:99999999999999999999", 0, NULL, 0 },
	{ "127.0.0.1:+25", 0, NULL, 0 },
	{ "127.0.0.1:-1", 0, NULL, 0 },
	{ "127.0.0.1: 25", 0, NULL, 0 },
	{ "127.0.0.1:25 ", 0, NULL, 0 },
	{ " 127.0.0.1:25", 0, NULL, 0 },
	{ "127.0.0.1:smtp", 0, NULL, 0 },
	{ "::1:25", 0, NULL, 0 },
	{ "[::1]", 0, NULL, 0 },
	{ "[::1]:", 0, NULL, 0 },
	{ "[::1]25", 0, NULL, 0 },
	{ "[::1:25", 0, NULL, 0 },
	{ "[]:25", 0, NULL, 0 },
	{ "[fe80::1%lo]:25", 0, NULL, 0 },
	{ "[localhost]:25", 0, NULL, 0 },
	{ "localhost:25", 0, NULL, 0 },
	{ "256.0.0.1:25", 0, NULL, 0 },
	{ "1.2.3:25", 0, NULL, 0 },
	{ "01.2.3.4:25", 0, NULL, 0 },
	{ "1.2.3.4.5:25", 0, NULL, 0 },
	{ "", 0, NULL, 0 },
	{ ":25", 0, NULL, 0 },
	{ "[1111:2222:3333:4444:5555:6666:7777:8888:9999]:25", 0, NULL, 0 },
	/* the longest text accepted is 54 characters (CONF_ADDR_TEXT_MAX) */
	{ "[0000:0000:0000:0000:0000:ffff:255.255.255.255]:65535", AF_INET6,
	    "::ffff:255.255.255.255", 65535 },
	{ "[0000:0000:0000:0000:0000:ffff:255.255.255.255]:065535", AF_INET6,
	    "::ffff:255.255.255.255", 65535 },
	{ "[0000:0000:0000:0000:0000:ffff:255.255.255.255]:0065535", 0, NULL,
	    0 },
};

static const char *
addr_name(const void *row)
{
	return ((const struct addr_case *)row)->in;
}

static void
test_addr(void **state)
{
	const struct addr_case *ac = *state;
	struct conf_addr a;
	char text[INET6_ADDRSTRLEN];

	if (ac->family == 0) {
		assert_int_equal(conf_parse_addr(ac->in, &a), -1);
		return;
	}
	assert_int_equal(conf_parse_addr(ac->in, &a), 0);
	assert_int_equal(a.ss.ss_family, ac->family);
	if (ac->family == AF_INET) {
		struct sockaddr_in sin;

		memcpy(&sin, &a.ss, sizeof(sin));
		assert_int_equal(a.len, sizeof(sin));
		assert_int_equal(ntohs(sin.sin_port), ac->port);
		assert_non_null(
		    inet_ntop(AF_INET, &sin.sin_addr, text, sizeof(text)));
	} else {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, &a.ss, sizeof(sin6));
		assert_int_equal(a.len, sizeof(sin6));
		assert_int_equal(ntohs(sin6.sin6_port), ac->port);
		assert_non_null(
		    inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof(text)));
	}
	assert_string_equal(text, ac->addr);
}

struct relay_case {
	const char *nets; /* relay_networks value; NULL: the default */
	const char *client;
	int want;
};

static const struct relay_case relay_cases[] = {
	{ NULL, "127.0.0.1", 1 },
	{ NULL, "127.255.255.255", 1 },
	{ NULL, "127.0.0.0", 1 },
	{ NULL, "128.0.0.1", 0 },
	{ NULL, "126.255.255.255", 0 },
	{ NULL, "10.0.0.1", 0 },
	{ NULL, "::1", 1 },
	{ NULL, "::2", 0 },
	{ NULL, "::", 0 },
	{ NULL, "::ffff:127.0.0.1", 1 },
	{ NULL, "::ffff:10.0.0.1", 0 },
	{ NULL, "::127.0.0.1", 0 }, /* IPv4-compatible is not mapped */
	{ NULL, "::ffff:7f00:1", 1 },
	{ "10.0.0.0/8", "10.255.255.255", 1 },
	{ "10.0.0.0/8", "11.0.0.0", 0 },
	{ "10.0.0.0/8", "9.255.255.255", 0 },
	{ "192.168.1.0/24", "192.168.1.77", 1 },
	{ "192.168.1.0/24", "192.168.2.1", 0 },
	{ "192.168.1.0/24", "::ffff:192.168.1.5", 1 },
	{ "192.168.1.128/25", "192.168.1.128", 1 },
	{ "192.168.1.128/25", "192.168.1.255", 1 },
	{ "192.168.1.128/25", "192.168.1.127", 0 },
	{ "10.1.2.3", "10.1.2.3", 1 },
	{ "10.1.2.3", "10.1.2.4", 0 },
	{ "10.1.2.3/32", "10.1.2.3", 1 },
	{ "10.1.2.3/32", "10.1.2.2", 0 },
	{ "1.2.3.4/31", "1.2.3.5", 1 },
	{ "1.2.3.4/31", "1.2.3.6", 0 },
	{ "128.0.0.0/1", "200.1.1.1", 1 },
	{ "128.0.0.0/1", "127.255.255.255", 0 },
	{ "10.0.0.0/8", "::a00:1", 0 },
	{ "2001:db8::/32", "2001:db8:ffff::1", 1 },
	{ "2001:db8::/32", "2001:db9::1", 0 },
	{ "2001:db8::/33", "2001:db8:7fff::1", 1 },
	{ "2001:db8::/33", "2001:db8:8000::1", 0 },
	{ "fe80::1", "fe80::1", 1 },
	{ "fe80::1/128", "fe80::2", 0 },
	{ "::ffff:10.0.0.0/104", "10.1.1.1", 1 },
	{ "::ffff:10.0.0.0/104", "::ffff:10.1.1.1", 1 },
	{ "::ffff:10.0.0.0/104", "11.0.0.1", 0 },
	{ "10.0.0.0/8, 2001:db8::/32", "10.9.9.9", 1 },
	{ "10.0.0.0/8, 2001:db8::/32", "2001:db8::9", 1 },
	{ "10.0.0.0/8, 2001:db8::/32", "127.0.0.1", 0 },
	{ "", "127.0.0.1", 0 },
	{ "", "::1", 0 },
};

static const char *
relay_name(const void *row)
{
	const struct relay_case *rc = row;
	static char name[128]; /* table_run() copies it at once */

	snprintf(name, sizeof(name), "%s in %s", rc->client,
	    rc->nets != NULL ? rc->nets : "default");
	return name;
}

static void
test_relay(void **state)
{
	const struct relay_case *rc = *state;
	struct sockaddr_storage ss;
	struct conf c;
	char err[512], *text;

	memset(&ss, 0, sizeof(ss));
	if (rc->nets != NULL) {
		assert_true(
		    asprintf(&text, "relay_networks = %s\n", rc->nets) > 0);
		if (load_text(&c, text, strlen(text), err, sizeof(err), NULL) !=
		    0)
			fail_msg("%s", err);
		free(text);
	} else
		assert_int_equal(conf_defaults(&c, err, sizeof(err)), 0);
	if (strchr(rc->client, ':') != NULL) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		assert_int_equal(
		    inet_pton(AF_INET6, rc->client, &sin6->sin6_addr), 1);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		assert_int_equal(
		    inet_pton(AF_INET, rc->client, &sin->sin_addr), 1);
	}
	assert_int_equal(
	    conf_relay_allowed(&c, (const struct sockaddr *)&ss), rc->want);
	conf_free(&c);
}

/* Neither a non-IP address nor NULL is ever allowed to relay. */
static void
test_relay_other(void **state)
{
	struct sockaddr_un sun;
	struct conf c;
	char err[256];

	(void)state;
	assert_int_equal(conf_defaults(&c, err, sizeof(err)), 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_int_equal(conf_relay_allowed(&c, (struct sockaddr *)&sun), 0);
	assert_int_equal(conf_relay_allowed(&c, NULL), 0);
	assert_int_equal(conf_relay_allowed(NULL, NULL), 0);
	assert_int_equal(conf_parse_duration(NULL, NULL), -1);
	assert_int_equal(conf_parse_size(NULL, NULL), -1);
	assert_int_equal(conf_parse_addr(NULL, NULL), -1);
	conf_free(&c);
}

static void
cleanup(void)
{
	char *p;
	unsigned i;

	for (i = 0; i < nfiles; i++) {
		if (asprintf(&p, "%s/c%u.conf", tmpdir, i) > 0) {
			unlink(p);
			free(p);
		}
	}
	rmdir(tmpdir);
}

int
main(void)
{
	const struct CMUnitTest single[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_golden_defaults),
		cmocka_unit_test(test_golden_full),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_relay_other),
	};
	int failed = 0;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	failed += cmocka_run_group_tests_name("conf", single, NULL, NULL);
	failed += TABLE_RUN("conf_load", test_load, load_cases, load_name);
	failed += TABLE_RUN(
	    "conf_parse_duration", test_duration, dur_cases, dur_name);
	failed +=
	    TABLE_RUN("conf_parse_size", test_size, size_cases, size_name);
	failed +=
	    TABLE_RUN("conf_parse_addr", test_addr, addr_cases, addr_name);
	failed += TABLE_RUN(
	    "conf_relay_allowed", test_relay, relay_cases, relay_name);
	cleanup();
	return failed;
}
