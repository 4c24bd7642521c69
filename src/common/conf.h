/*
 * conf: msgtrkd's configuration file (PRODUCT.md "Config file").
 *
 * One "name = value" per line, '#' comments, unknown names are errors,
 * lists are comma-separated, durations take s/m/h/d suffixes, sizes take
 * K/M/G (1024-based).  Every key has a working default.  Errors are
 * reported as "file:line: what" (msgtrkd -n prints them).
 */
#ifndef MSGTRK_CONF_H
#define MSGTRK_CONF_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#define CONF_LISTEN_MAX 16
#define CONF_NET_MAX 64
#define CONF_DOMAIN_MAX 256
#define CONF_DNS_MAX 4
#define CONF_RETRY_MAX 16
#define CONF_HOSTNAME_MAX 255 /* RFC 1035 §2.3.4 */

/* Limits on the file itself: a line longer than CONF_LINE_MAX bytes
 * (without its newline) or a file larger than CONF_FILE_MAX is an error. */
#define CONF_LINE_MAX 4096
#define CONF_FILE_MAX (1024 * 1024)
/* The longest duration accepted: the largest mtrk-timeout RFC 3885 §3.3
 * can carry (1*9DIGIT seconds, about 31 years).  No timer here needs
 * more, and now + any duration stays far from time_t overflow. */
#define CONF_DURATION_MAX 999999999
/* max_message_size: at most the queue's QUEUE_MESSAGE_MAX (src/queue,
 * which checks that the two agree). */
#define CONF_MESSAGE_SIZE_MAX ((uint64_t)1 << 30)
/* mtqp_idle_timeout: an MTQP autologout timer, if any, must be at least
 * 10 minutes (RFC 3887 §2.5). */
#define CONF_MTQP_IDLE_MIN 600
/* mtrk_max_timeout: below one day a tracking record would vanish before
 * a sender could ask (PRODUCT.md: "a value below 1d is a config error"). */
#define CONF_MTRK_MAX_MIN 86400
/* control_socket: a UNIX socket path fits in sockaddr_un's sun_path
 * (108 octets with its NUL on Linux, unix(7)). */
#define CONF_SOCKET_PATH_MAX 107
/* user: a POSIX login name ([A-Za-z0-9._-], not starting with '-'), at
 * most 32 bytes like useradd(8). */
#define CONF_USER_MAX 32

/* auth = dovecot:PATH: a UNIX socket path (sockaddr_un's sun_path holds
 * 108 bytes with its NUL). */
#define CONF_AUTH_SOCKET_MAX 107

/* http_admins: a login as auth_check() takes it (1..255 octets), and
 * how many may be listed. */
#define CONF_LOGIN_MAX 255
#define CONF_ADMINS_MAX 64

/* A listener or DNS server address, numeric ("127.0.0.1:2525",
 * "[::1]:25"). */
struct conf_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* A CIDR network for relay_networks. */
struct conf_net {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	int prefix;
};

/* smtp_tls_policy: outbound STARTTLS (RFC 3207). */
enum conf_tls_policy {
	CONF_TLS_NONE, /* never */
	CONF_TLS_OPPORTUNISTIC, /* when offered, any certificate (RFC 7435);
				   a failed handshake retries in plaintext */
	CONF_TLS_REQUIRE, /* encryption required, any certificate
			     (Postfix's "encrypt") */
	CONF_TLS_VERIFY, /* encryption required and the certificate verified:
			    chain to smtp_tls_ca_file or the system store,
			    name of the MX/routed host or the route's
			    tls-name (Postfix's "verify") */
};

enum conf_mtqp_unknown {
	CONF_MTQP_NOINFO,
	CONF_MTQP_OPAQUE,
};

struct conf {
	char *file; /* the path read, for messages */
	char hostname[CONF_HOSTNAME_MAX + 1];
	char *data_dir;
	struct conf_addr smtp_listen[CONF_LISTEN_MAX];
	size_t n_smtp_listen; /* 0: "none" */
	struct conf_addr mtqp_listen[CONF_LISTEN_MAX];
	size_t n_mtqp_listen;
	/* submission_listen (RFC 6409, STARTTLS then AUTH) and
	 * submissions_listen (RFC 8314, implicit TLS): default none; the
	 * SMTP server's submission listener sets (src/smtp).  Each needs
	 * auth; submissions_listen needs tls_cert_file; no address in two
	 * listener lists. */
	struct conf_addr submission_listen[CONF_LISTEN_MAX];
	size_t n_submission_listen;
	struct conf_addr submissions_listen[CONF_LISTEN_MAX];
	size_t n_submissions_listen;
	/* http_listen and https_listen (default none): the tracking page,
	 * JSON API and metrics (src/http); https_listen needs
	 * tls_cert_file.  No address in two listener lists. */
	struct conf_addr http_listen[CONF_LISTEN_MAX];
	size_t n_http_listen;
	struct conf_addr https_listen[CONF_LISTEN_MAX];
	size_t n_https_listen;
	struct conf_net relay_networks[CONF_NET_MAX];
	size_t n_relay_networks;
	/* metrics_networks (default 127.0.0.0/8, ::1/128): clients that may
	 * read /metrics. */
	struct conf_net metrics_networks[CONF_NET_MAX];
	size_t n_metrics_networks;
	char **local_domains; /* lower-cased */
	size_t n_local_domains;
	char *local_recipients; /* file path or NULL */
	char *local_transport; /* "maildir" or "lmtp:HOST:PORT" */
	char *mailbox_dir;
	/* control_socket (default <data_dir>/control): the UNIX socket of
	 * msgtrk queue flush|hold|release|delete and msgtrk reload. */
	char *control_socket;
	char *aliases; /* file path or NULL */
	char *routes; /* file path or NULL */
	/* auth: "passwd:/abs/path" or "dovecot:/abs/path/to/auth-client"
	 * (src/auth/auth.h), or NULL; sender_logins: file path or NULL
	 * (src/auth/sender_logins.h); submission_track (default yes):
	 * authenticated mail without MTRK is made trackable. */
	char *auth;
	char *sender_logins;
	int submission_track;
	/* http_admins (default none): logins, checked against auth, that
	 * may use the HTTP operator views; each 1..CONF_LOGIN_MAX printable
	 * octets without space or comma.  Needs auth. */
	char **http_admins;
	size_t n_http_admins;
	struct conf_addr dns_servers[CONF_DNS_MAX];
	size_t n_dns_servers; /* 0: the system resolver */
	char *store; /* "sqlite" or "postgresql://..." */
	char *tls_cert_file;
	char *tls_key_file;
	enum conf_tls_policy smtp_tls_policy;
	char *smtp_tls_ca_file; /* CAs for verify, NULL: the system store */
	uint64_t max_message_size;
	time_t mtrk_default_timeout;
	time_t mtrk_max_timeout;
	time_t purge_interval;
	time_t queue_lifetime;
	time_t delay_warning;
	time_t retry_schedule[CONF_RETRY_MAX];
	size_t n_retry_schedule;
	enum conf_mtqp_unknown mtqp_unknown;
	time_t mtqp_idle_timeout;
	time_t smtp_timeout;
	int mtqp_tls_required;
	int mtqp_chain;
	/* mtqp_chain_hosts (default none): the hosts firewall mode may
	 * query.  Names (lower case, each a domain name) restrict the names
	 * looked up (a Remote-MTA host, an SRV target); networks ("[ip]" is
	 * a /32 or /128, "a.b.c.d/n", "x::/n") restrict the addresses
	 * connected to, "[ip]" literals included.  See mtqp_server.h
	 * (mtqp_server_chain_allowed) for the rule. */
	int mtqp_chain_hosts_set; /* 0: none (the default rule) */
	char **mtqp_chain_names;
	size_t n_mtqp_chain_names;
	struct conf_net mtqp_chain_nets[CONF_NET_MAX];
	size_t n_mtqp_chain_nets;
	int hide_internal_hosts;
	/* "user" (default "msgtrk"): the account msgtrkd drops to for good
	 * after binding its ports and opening its store when started as
	 * root; not looked up here. */
	char *user;
};

/* Fills c with the defaults of every key.  Returns 0, or -1 if the system
 * host name cannot be found (err set).  The hostname default is the
 * canonical name of gethostname() (getaddrinfo AI_CANONNAME) when that is
 * a dotted domain name, else gethostname() itself.  On -1 every other key
 * holds its default, hostname is "", and c must be freed with
 * conf_free(). */
int conf_defaults(struct conf *c, char *err, size_t errsize);

/* Reads the file at path over the defaults in c.  Returns 0, or -1 with
 * "file:line: what" (or "file: what") in err; c is then partly updated
 * and must only be freed.  Only whole-line '#' comments; CRLF endings
 * are accepted; NUL and other control bytes (tab aside) are errors.
 * Keyword values (none, maildir, sqlite, yes/no...) ignore case.  Paths
 * must be absolute.  Files named by keys are not opened here.  Rules
 * between keys (both listeners none, a TLS file without its pair, an
 * mtrk_default_timeout set in the file above mtrk_max_timeout,
 * mtqp_tls_required without TLS files, an address in two listener
 * lists, a submission listener without auth, submissions_listen or
 * https_listen without TLS files, http_admins without auth) are reported
 * at the line of the last key involved.
 * mtrk_default_timeout, unless set, is capped by mtrk_max_timeout (the
 * silent cap of PRODUCT.md).  mailbox_dir, unless set, becomes
 * <data_dir>/mail, and control_socket <data_dir>/control (then a data_dir
 * too long for a socket path is an error naming control_socket). */
int conf_load(struct conf *c, const char *path, char *err, size_t errsize);

/* Frees what c owns and zeroes c.  c may be NULL. */
void conf_free(struct conf *c);

/* Returns 1 if addr (AF_INET/AF_INET6 sockaddr) is in relay_networks,
 * else 0 (also for NULL or another family).  An IPv4-mapped IPv6 client
 * (::ffff:a.b.c.d) matches IPv4 networks, and an IPv4 client matches
 * IPv6 networks in its mapped form. */
int conf_relay_allowed(const struct conf *c, const struct sockaddr *addr);

/* Returns 1 if addr is in one of the n networks of nets (as
 * conf_relay_allowed() for relay_networks), else 0. */
int conf_nets_match(
    const struct conf_net *nets, size_t n, const struct sockaddr *addr);

/* Returns 1 if login is one of http_admins (compared exactly), else 0. */
int conf_is_http_admin(const struct conf *c, const char *login);

/* Returns 1 if domain (any case) is one of local_domains. */
int conf_is_local_domain(const struct conf *c, const char *domain);

/* Parses "30", "30s", "5m", "4h", "9d" into seconds.  Returns 0 or -1
 * (and leaves *out alone): no sign, no space, lower-case suffixes only,
 * at most CONF_DURATION_MAX seconds.  "0" is valid here. */
int conf_parse_duration(const char *s, time_t *out);

/* Parses "1024", "10K", "50M", "1G" into bytes (suffixes in either case).
 * Returns 0 or -1 (and leaves *out alone): no sign, no space, no value
 * past UINT64_MAX.  "0" is valid here. */
int conf_parse_size(const char *s, uint64_t *out);

/* Parses "127.0.0.1:25", "[::1]:25", "0.0.0.0:25" (numeric only; an
 * IPv4 address may also be bracketed; no scope ids).  Port 1-65535.
 * Returns 0 or -1. */
int conf_parse_addr(const char *s, struct conf_addr *out);

#endif /* MSGTRK_CONF_H */
