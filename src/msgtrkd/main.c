/*
 * msgtrkd: the msgtrk daemon, an ESMTP relay with message tracking
 * (RFC 3885) and the MTQP query server (RFC 3887).
 *
 * SECURITY: msgtrkd trusts its configuration file and the files it names,
 * and nothing a peer sends: every byte from the network goes through
 * libmsgtrk's bounded parsers, with limits on lines, recipients, sizes,
 * errors, sessions and time.  Started as root it loads its TLS keys, binds
 * its ports and takes ownership of data_dir, then drops to the
 * unprivileged `user` for good (setgroups, setresgid, setresuid, checked)
 * before it opens the queue or the store or reads anything from a peer.
 * A 250 after DATA is sent only once the message and its tracking record
 * are fsync'd (src/queue).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "auth/auth.h"
#include "auth/auth_passwd.h"
#include "auth/sender_logins.h"
#include "common/conf.h"
#include "common/log.h"
#include "common/tls.h"
#include "control/control_server.h"
#include "delivery/delivery.h"
#include "dns/dns.h"
#include "dns/route.h"
#include "auth/auth.h"
#include "http/http.h"
#include "mtqp/mtqp_server.h"
#include "msgtrkd/msgtrkd.h"
#include "msgtrkd/wire.h"
#include "queue/queue.h"
#include "smtp/smtp.h"
#include "store/store.h"
#include "store/store_reader.h"

#define DEFAULT_CONF "/etc/msgtrk/msgtrkd.conf"
/* The exit status for a configuration msgtrkd cannot run with (a syntax
 * error, an unknown user, an unusable mailbox_dir): sysexits.h's
 * EX_CONFIG.  msgtrkd.service does not restart on it
 * (RestartPreventExitStatus); other fatal errors exit 1. */
#define EXIT_CONFIG 78
#ifdef STORE_HAVE_PG
#define STORE_BACKENDS "sqlite, postgresql"
#else
#define STORE_BACKENDS "sqlite"
#endif
/* Threads reading the store for TRACK, each with its own handle. */
#define STORE_READERS 2
/* How long SIGTERM waits for sessions and attempts to wind down. */
#define SHUTDOWN_GRACE 30
/* Descriptors beyond the sessions and delivery connections: listeners,
 * the journal, two store handles, DNS, the log, the eventfd, and the
 * socket accepted only to be refused with 421 or -TEMP (which must not
 * fail with EMFILE first).  Firewall mode's chained MTQP queries come out
 * of this margin too; one that cannot get a descriptor ends its branch. */
#define NOFILE_MARGIN 256
/* RLIMIT_NOFILE that lets every limit of smtp.h, mtqp_server.h and
 * delivery.h be reached: a default soft limit of 1024 would otherwise
 * cap the daemon at about a thousand sessions, below SMTP_SESSIONS_MAX,
 * so connections past it would fail at accept instead of getting 421.
 * (HTTP: its connections, and a trail's MTQP connection each.) */
#define NOFILE_WANT \
	((rlim_t)SMTP_SESSIONS_MAX + MTQP_SERVER_SESSIONS_MAX + \
	    DELIVERY_CONN_MAX + HTTP_CONNS_MAX + HTTP_TRAILS_MAX + \
	    NOFILE_MARGIN)

static struct msgtrkd d;
static struct conf conf;
static struct control_server *control;
/* The HTTP server (src/http); its logins use d.auth. */
static struct http_server *http;
static struct event *ev_purge;
static struct event *ev_shutdown_tick;
static time_t shutdown_started;
static size_t purged;
static int log_on_stderr;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: msgtrkd [-c FILE] [-f] [-v] [-n]\n"
	    "  -c FILE   configuration file (default " DEFAULT_CONF ")\n"
	    "  -f        stay in the foreground and log to stderr\n"
	    "  -v        verbose logging\n"
	    "  -n        check the configuration and exit (0 if valid)\n"
	    "  -h        this help\n"
	    "  --version print the version and exit\n"
	    "signals: SIGTERM stops (finishing in-flight work), SIGHUP\n"
	    "reopens the log and reloads routes, aliases, recipients,\n"
	    "the auth passwd file and sender_logins.\n");
}

/* Started as root, msgtrkd owns what it keeps in data_dir: files made
 * there by root (a restore, a bulk load, an earlier run as root) would
 * otherwise be unwritable after the drop. */
static void
own_data_dir(const char *data_dir, uid_t uid, gid_t gid)
{
	static const char *const names[] = { "", "tracking.db",
		"tracking.db-wal", "tracking.db-shm", "queue" };
	char path[4096];
	struct dirent *de;
	size_t i;
	DIR *dir;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", data_dir, names[i]);
		if (lchown(path, uid, gid) == -1 && errno != ENOENT)
			fatal("chown %s", path);
	}
	snprintf(path, sizeof(path), "%s/queue", data_dir);
	if ((dir = opendir(path)) == NULL)
		return;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (fchownat(dirfd(dir), de->d_name, uid, gid,
		        AT_SYMLINK_NOFOLLOW) == -1)
			fatal("chown %s/%s", path, de->d_name);
	}
	closedir(dir);
}

/* Raises RLIMIT_NOFILE's soft limit to NOFILE_WANT, capped at the hard
 * limit; as root (before the drop) the hard limit is raised too when it is
 * lower.  Logs a warning when the daemon is left with less. */
static void
raise_nofile(void)
{
	struct rlimit rl, want;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("- daemon nofile getrlimit");
		return;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= NOFILE_WANT)
		return;
	want.rlim_cur = NOFILE_WANT;
	want.rlim_max = rl.rlim_max;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < NOFILE_WANT) {
		/* Only root may raise the hard limit (and not past
		 * fs.nr_open); otherwise take what the hard limit allows. */
		want.rlim_max = NOFILE_WANT;
		if (geteuid() != 0 || setrlimit(RLIMIT_NOFILE, &want) == -1) {
			want.rlim_cur = rl.rlim_max;
			want.rlim_max = rl.rlim_max;
		}
	}
	if (setrlimit(RLIMIT_NOFILE, &want) == -1) {
		log_warn("- daemon nofile soft=%ju hard=%ju want=%ju: "
		         "setrlimit",
		    (uintmax_t)rl.rlim_cur, (uintmax_t)rl.rlim_max,
		    (uintmax_t)NOFILE_WANT);
		return;
	}
	if (want.rlim_cur < NOFILE_WANT)
		log_warnx("- daemon nofile soft=%ju hard=%ju want=%ju: "
		          "sessions past the descriptor limit fail at accept",
		    (uintmax_t)want.rlim_cur, (uintmax_t)want.rlim_max,
		    (uintmax_t)NOFILE_WANT);
	else
		log_info("- daemon nofile soft=%ju hard=%ju",
		    (uintmax_t)want.rlim_cur, (uintmax_t)want.rlim_max);
}

/* A configuration msgtrkd cannot run with: logged, and said on stderr
 * when the log goes elsewhere, then exit EXIT_CONFIG. */
static void config_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
config_fatal(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("fatal: %s", msg);
	if (!log_on_stderr)
		fprintf(stderr, "msgtrkd: %s\n", msg);
	exit(EXIT_CONFIG);
}

/* Creates path's missing directories: the parents mode 0755, path itself
 * mode 0700.  Returns 0, or -1 with errno set. */
static int
mkdirs(const char *path)
{
	char tmp[4096], *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = tmp + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(tmp, 0755) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0700) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

/* Whether uid/gid (with only gid as group) may access path with mode.
 * As root, the effective ids become the user's for one faccessat(2)
 * with AT_EACCESS (the kernel's own check for those ids: ACLs,
 * read-only mounts, every directory on the way), then root's again: a
 * few microseconds, where a forked child would widen the time between
 * binding and dropping root.  Returns 0, or the errno of the failure. */
static int
access_as(const char *path, int mode, uid_t uid, gid_t gid)
{
	int e = 0;

	if (geteuid() != 0)
		return faccessat(AT_FDCWD, path, mode, AT_EACCESS) == -1 ? errno
		                                                         : 0;
	/* The groups msgtrkd keeps after the drop (drop_privileges()). */
	if (setgroups(1, &gid) == -1 || setegid(gid) == -1)
		return errno;
	if (seteuid(uid) == -1)
		e = errno;
	else if (faccessat(AT_FDCWD, path, mode, AT_EACCESS) == -1)
		e = errno;
	if (seteuid(0) == -1 || setegid(0) == -1)
		fatal("cannot become root again after checking %s", path);
	return e;
}

/* mailbox_dir for maildir delivery (run as root before the drop, or as
 * the user msgtrkd runs as): with create, a missing mailbox_dir is made
 * (mode 0700) and, as root, given to the user, like data_dir; then the
 * user must be able to write it.  Without create (-n) a missing one is
 * checked as it would be made: its nearest existing parent must let the
 * user through (as root) or in (otherwise).  Returns 0, or -1 with err
 * set ("mailbox_dir DIR: not writable by user U: why"). */
static int
mailbox_dir_check(const struct conf *c, int create, char *err, size_t errsize)
{
	char path[4096], user[64], *slash;
	struct passwd *pw;
	struct stat st;
	int root = geteuid() == 0, missing, mode = W_OK | X_OK, e;
	uid_t uid;
	gid_t gid;

	if (strcmp(c->local_transport, "maildir") != 0)
		return 0;
	if (root) {
		if ((pw = getpwnam(c->user)) == NULL) {
			snprintf(err, errsize,
			    "user %s: no such user (set `user` in the config)",
			    c->user);
			return -1;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
		snprintf(user, sizeof(user), "%s", c->user);
	} else {
		uid = geteuid();
		gid = getegid();
		if ((pw = getpwuid(uid)) != NULL)
			snprintf(user, sizeof(user), "%s", pw->pw_name);
		else
			snprintf(user, sizeof(user), "%ju", (uintmax_t)uid);
	}
	missing = stat(c->mailbox_dir, &st) == -1 && errno == ENOENT;
	snprintf(path, sizeof(path), "%s", c->mailbox_dir);
	if (missing) {
		/* As it would be made: its nearest existing parent must let
		 * the user through (root makes the rest and gives the last
		 * one away) or, not as root, in. */
		do {
			if ((slash = strrchr(path, '/')) == NULL)
				break;
			slash[slash == path ? 1 : 0] = '\0';
		} while (stat(path, &st) == -1 && errno == ENOENT &&
		    strcmp(path, "/") != 0);
		if (root)
			mode = X_OK;
		/* data_dir is given to the user at startup: its own parent
		 * is what must let the user through. */
		if (root && !create && strcmp(path, c->data_dir) == 0 &&
		    (slash = strrchr(path, '/')) != NULL)
			slash[slash == path ? 1 : 0] = '\0';
		if ((e = access_as(path, mode, uid, gid)) != 0) {
			snprintf(err, errsize,
			    "mailbox_dir %.400s: not writable by user %s: "
			    "%.400s: %s",
			    c->mailbox_dir, user, path, strerror(e));
			return -1;
		}
		if (!create)
			return 0;
		if (mkdirs(c->mailbox_dir) == -1) {
			snprintf(err, errsize,
			    "mailbox_dir %.400s: cannot create: %s",
			    c->mailbox_dir, strerror(errno));
			return -1;
		}
		if (root && chown(c->mailbox_dir, uid, gid) == -1) {
			snprintf(err, errsize, "mailbox_dir %.400s: chown: %s",
			    c->mailbox_dir, strerror(errno));
			return -1;
		}
		snprintf(path, sizeof(path), "%s", c->mailbox_dir);
		mode = W_OK | X_OK;
	}
	if ((e = access_as(path, mode, uid, gid)) != 0) {
		snprintf(err, errsize,
		    "mailbox_dir %.400s: not writable by user %s: %s",
		    c->mailbox_dir, user, strerror(e));
		return -1;
	}
	return 0;
}

/* Drops root for good: RFC-free, but every MTA's first promise after not
 * losing mail (OpenSMTPD queue.c, Postfix chroot_uid.c).  mailbox_dir is
 * made and checked first (as root it may need creating and giving away,
 * and data_dir, its default parent, must be the user's by then). */
static void
drop_privileges(const struct conf *c)
{
	struct passwd *pw;
	char err[1024];

	if (geteuid() != 0) {
		if (mailbox_dir_check(c, 1, err, sizeof(err)) == -1)
			config_fatal("%s", err);
		return;
	}
	if ((pw = getpwnam(c->user)) == NULL)
		config_fatal("user %s: no such user (set `user` in the config)",
		    c->user);
	own_data_dir(c->data_dir, pw->pw_uid, pw->pw_gid);
	if (mailbox_dir_check(c, 1, err, sizeof(err)) == -1)
		config_fatal("%s", err);
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", c->user);
	if (geteuid() == 0 || getuid() == 0)
		fatalx("still root after dropping privileges");
	log_info(
	    "- daemon privileges user=%s uid=%d", c->user, (int)pw->pw_uid);
}

static void
on_purged(void *arg, int rc, int err)
{
	(void)arg;
	if (rc == -1)
		log_warnx("- store purge failed error=%s", strerror(err));
	else if (purged > 0)
		log_info("- store purge expired=%zu", purged);
}

static void
on_purge_timer(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	if (queue_purge(d.queue, time(NULL), &purged, on_purged, NULL) == -1)
		log_warn("- store purge not started");
}

static void
on_shutdown_tick(evutil_socket_t fd, short ev, void *arg)
{
	size_t sessions, conns;

	(void)fd;
	(void)ev;
	(void)arg;
	sessions = d.smtp != NULL ? smtp_server_stop(d.smtp) : 0;
	if (d.mtqp != NULL)
		sessions += mtqp_server_stop(d.mtqp);
	sessions += http_server_stop(http);
	conns = delivery_stop(d.delivery);
	if ((sessions == 0 && conns == 0) ||
	    time(NULL) - shutdown_started >= SHUTDOWN_GRACE) {
		if (sessions + conns > 0)
			log_warnx("- daemon stop forced sessions=%zu "
			          "connections=%zu",
			    sessions, conns);
		event_base_loopexit(d.base, NULL);
	}
}

static void
on_sigterm(evutil_socket_t sig, short ev, void *arg)
{
	struct timeval tick = { 0, 100000 };

	(void)ev;
	(void)arg;
	if (d.stopping)
		return;
	log_info("- daemon stopping signal=%d", (int)sig);
	d.stopping = 1;
	shutdown_started = time(NULL);
	ev_shutdown_tick =
	    event_new(d.base, -1, EV_PERSIST, on_shutdown_tick, NULL);
	if (ev_shutdown_tick == NULL || event_add(ev_shutdown_tick, &tick))
		event_base_loopexit(d.base, NULL);
	on_shutdown_tick(-1, 0, NULL);
}

/* SIGHUP and "msgtrk reload": reopens the log and reloads routes,
 * aliases, local_recipients, sender_logins and the auth passwd file, all
 * or nothing: every table is read before any is replaced, so a broken
 * file leaves the old ones.  Returns 0, or -1 with err set (logged
 * here). */
static int
reload(void *arg, char *err, size_t errsize)
{
	struct route_table *t = NULL;
	struct sender_logins *sl = NULL;
	struct auth_passwd_table *pw = NULL;
	char e[512];

	(void)arg;
	log_reopen();
	if (conf.routes != NULL &&
	    (t = route_table_load(conf.routes, e, sizeof(e))) == NULL) {
		log_warnx("- daemon reload routes error=\"%s\"", e);
		snprintf(err, errsize, "%s", e);
		return -1;
	}
	if (conf.sender_logins != NULL &&
	    (sl = sender_logins_load(conf.sender_logins, e, sizeof(e))) ==
	        NULL) {
		log_warnx("- daemon reload sender_logins error=\"%s\"", e);
		snprintf(err, errsize, "%s", e);
		route_table_free(t);
		return -1;
	}
	/* The passwd file is read here first, so a broken one fails the
	 * reload before anything is replaced; auth_reload() reads it for
	 * good below. */
	if (d.auth != NULL && strncmp(conf.auth, "passwd:", 7) == 0) {
		if ((pw = auth_passwd_load(conf.auth + 7, e, sizeof(e))) ==
		    NULL) {
			log_warnx("- daemon reload auth error=\"%s\"", e);
			snprintf(err, errsize, "%s", e);
			route_table_free(t);
			sender_logins_free(sl);
			return -1;
		}
		auth_passwd_table_free(pw);
	}
	if (delivery_reload(d.delivery, e, sizeof(e)) == -1) {
		log_warnx("- daemon reload aliases error=\"%s\"", e);
		snprintf(err, errsize, "%s", e);
		route_table_free(t);
		sender_logins_free(sl);
		return -1;
	}
	if (d.auth != NULL && auth_reload(d.auth, e, sizeof(e)) == -1) {
		/* Changed since it was read above: the old table stays. */
		log_warnx("- daemon reload auth error=\"%s\"", e);
		snprintf(err, errsize, "%s", e);
		route_table_free(t);
		sender_logins_free(sl);
		return -1;
	}
	if (t != NULL)
		route_set_table(d.route, t);
	if (conf.sender_logins != NULL) {
		sender_logins_free(d.senders);
		d.senders = sl;
	}
	log_info("- daemon reloaded");
	return 0;
}

static void
on_sighup(evutil_socket_t sig, short ev, void *arg)
{
	char err[512];

	(void)sig;
	(void)ev;
	(void)arg;
	(void)reload(NULL, err, sizeof(err));
}

static void
on_recovered(void *arg, const struct queue_msg *m)
{
	size_t *n = arg;

	(*n)++;
	delivery_schedule(d.delivery, m);
}

int
main(int argc, char *argv[])
{
	const char *path = DEFAULT_CONF;
	int foreground = 0, verbose = 0, check = 0, ch, rc;
	char err[1024];
	struct dns_opts dopts;
	struct sockaddr_storage dns_servers[CONF_DNS_MAX];
	struct route_opts ropts;
	struct event *sigs[4];
	sigset_t sigmask;
	struct timeval purge_tv;
	size_t recovered = 0, i;

	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("msgtrkd %s\n", MSGTRK_VERSION);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	while ((ch = getopt(argc, argv, "c:fvnh")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'n':
			check = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (conf_defaults(&conf, err, sizeof(err)) == -1 ||
	    conf_load(&conf, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		conf_free(&conf);
		return EXIT_CONFIG;
	}
	if (check) {
		/* What startup would refuse: the user and mailbox_dir, as
		 * that user would find it. */
		if (mailbox_dir_check(&conf, 0, err, sizeof(err)) == -1) {
			fprintf(stderr, "msgtrkd: %s\n", err);
			conf_free(&conf);
			return EXIT_CONFIG;
		}
		printf("%s: configuration OK\n", path);
		conf_free(&conf);
		return 0;
	}
	log_init("msgtrkd", foreground, verbose);
	log_on_stderr = foreground;
	signal(SIGPIPE, SIG_IGN);
	/* Over RLIMIT_FSIZE a write fails with EFBIG (answered 452) instead
	 * of the signal killing the daemon. */
	signal(SIGXFSZ, SIG_IGN);
	/* SIGTERM, SIGINT and SIGHUP wait (blocked; threads started meanwhile
	 * inherit the mask) until their handlers are in place: a signal
	 * during startup is then handled as specified, not fatal. */
	sigemptyset(&sigmask);
	sigaddset(&sigmask, SIGTERM);
	sigaddset(&sigmask, SIGINT);
	sigaddset(&sigmask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &sigmask, NULL) == -1)
		fatal("sigprocmask");
	if (evthread_use_pthreads() == -1)
		fatalx("libevent without threads");
	memset(&d, 0, sizeof(d));
	d.conf = &conf;
	if ((d.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	raise_nofile();

	/* Privileged setup: keys, listening sockets, data_dir. */
	if (conf.tls_cert_file != NULL &&
	    (d.tls_server = tls_server_ctx(conf.tls_cert_file,
	         conf.tls_key_file, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	if ((d.tls_client =
	            tls_client_ctx(conf.smtp_tls_policy == CONF_TLS_REQUIRE ||
	                    conf.smtp_tls_policy == CONF_TLS_VERIFY,
	                conf.smtp_tls_ca_file, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	if (mkdir(conf.data_dir, 0700) == -1 && errno != EEXIST)
		fatal("%s", conf.data_dir);
	/* One SMTP server: port 25 and the submission listeners. */
	if ((conf.n_smtp_listen > 0 || conf.n_submission_listen > 0 ||
	        conf.n_submissions_listen > 0) &&
	    (d.smtp = wire_smtp_new(&d, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	if (conf.n_mtqp_listen > 0 &&
	    (d.mtqp = mtqp_server_new(
	         d.base, d.conf, d.tls_server, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	if (conf.n_http_listen + conf.n_https_listen > 0 &&
	    (http = http_server_new(
	         d.base, &conf, d.tls_server, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	drop_privileges(&conf);

	/* Submission: the auth backend and sender_logins, read as the user
	 * msgtrkd runs as (SIGHUP reads them again, as that user). */
	if (conf.auth != NULL &&
	    (d.auth = auth_new(d.base, conf.auth, err, sizeof(err))) == NULL)
		config_fatal("%s", err);
	if (conf.sender_logins != NULL &&
	    (d.senders = sender_logins_load(
	         conf.sender_logins, err, sizeof(err))) == NULL)
		config_fatal("%s", err);
	if (d.auth != NULL)
		log_info("- daemon auth backend=%s sender_logins=%zu",
		    auth_backend_name(d.auth), sender_logins_count(d.senders));

	/* The store: one handle for the queue's applier thread, one per
	 * reader thread (TRACK). */
	/* The value may be a URI with a password: name only its scheme. */
	if ((d.store_be = store_backend_find(conf.store)) == NULL)
		fatalx("store %.*s: no such backend (this build has %s)",
		    (int)strcspn(conf.store, ":"), conf.store, STORE_BACKENDS);
	if ((d.wstore = d.store_be->open(
	         conf.store, conf.data_dir, 0, err, sizeof(err))) == NULL ||
	    (d.reader = store_reader_new(d.base, d.store_be, conf.store,
	         conf.data_dir, STORE_READERS, err, sizeof(err))) == NULL)
		fatalx("store: %s", err);
	memset(&dopts, 0, sizeof(dopts));
	for (i = 0; i < conf.n_dns_servers && i < CONF_DNS_MAX; i++)
		dns_servers[i] = conf.dns_servers[i].ss;
	dopts.server_addrs = dns_servers;
	dopts.n_server_addrs = i;
	if ((d.dns = dns_new(d.base, &dopts, err, sizeof(err))) == NULL)
		fatalx("dns: %s", err);
	memset(&ropts, 0, sizeof(ropts));
	ropts.myhostname = conf.hostname;
	if ((d.route = route_new(d.base, d.dns, &ropts)) == NULL)
		fatalx("route: out of memory");
	if (conf.routes != NULL) {
		struct route_table *t =
		    route_table_load(conf.routes, err, sizeof(err));

		if (t == NULL)
			fatalx("%s", err);
		route_set_table(d.route, t);
	}
	if ((d.queue = queue_open(d.base, conf.data_dir, d.wstore, d.store_be,
	         0, err, sizeof(err))) == NULL)
		fatalx("queue: %s", err);
	{
		struct delivery_deps deps = { d.base, d.conf, d.queue, d.route,
			d.tls_client };

		if ((d.delivery = delivery_new(&deps, err, sizeof(err))) ==
		    NULL)
			fatalx("%s", err);
	}
	if ((rc = queue_recover(
	         d.queue, on_recovered, &recovered, err, sizeof(err))) == -1)
		fatalx("%s", err);
	if (err[0] != '\0')
		log_warnx("- queue recovered warning=\"%s\"", err);
	{
		/* The control socket, as the user msgtrkd now runs as. */
		struct control_server_deps cdeps = { d.base, d.delivery,
			conf.control_socket, reload, NULL, 0 };

		if ((control = control_server_new(&cdeps, err, sizeof(err))) ==
		    NULL)
			config_fatal("%s", err);
	}
	log_info("- daemon started version=%s hostname=%s queued=%zu",
	    MSGTRK_VERSION, conf.hostname, recovered);

	sigs[0] = evsignal_new(d.base, SIGTERM, on_sigterm, NULL);
	sigs[1] = evsignal_new(d.base, SIGINT, on_sigterm, NULL);
	sigs[2] = evsignal_new(d.base, SIGHUP, on_sighup, NULL);
	sigs[3] = NULL;
	for (i = 0; i < 3; i++)
		if (sigs[i] == NULL || evsignal_add(sigs[i], NULL) == -1)
			fatalx("cannot handle signals");
	if (sigprocmask(SIG_UNBLOCK, &sigmask, NULL) == -1)
		fatal("sigprocmask");
	purge_tv.tv_sec = conf.purge_interval;
	purge_tv.tv_usec = 0;
	if ((ev_purge = event_new(
	         d.base, -1, EV_PERSIST, on_purge_timer, NULL)) == NULL ||
	    event_add(ev_purge, &purge_tv) == -1)
		fatalx("cannot start the purge timer");
	on_purge_timer(-1, 0, NULL);
	if (d.smtp != NULL)
		smtp_server_start(d.smtp);
	if (d.mtqp != NULL)
		mtqp_server_start(d.mtqp,
		    &(struct mtqp_server_deps){
		        d.queue, d.reader, d.dns, d.tls_client });
	if (http != NULL)
		wire_http_start(&d, http, d.auth);

	event_base_dispatch(d.base);

	/* Stopped: everything accepted is in the journal; finish writing
	 * what was in flight, then close. */
	queue_stop(d.queue);
	smtp_server_free(d.smtp);
	mtqp_server_free(d.mtqp);
	http_server_free(http);
	/* After the SMTP and HTTP sessions: each cancelled its check in
	 * flight. */
	auth_free(d.auth);
	sender_logins_free(d.senders);
	delivery_free(d.delivery);
	/* After delivery: a change pending there calls back no more. */
	control_server_free(control);
	event_free(ev_purge);
	if (ev_shutdown_tick != NULL)
		event_free(ev_shutdown_tick);
	for (i = 0; i < 3; i++)
		event_free(sigs[i]);
	queue_free(d.queue);
	route_free(d.route);
	dns_free(d.dns);
	d.store_be->close(d.wstore);
	store_reader_free(d.reader);
	SSL_CTX_free(d.tls_server);
	SSL_CTX_free(d.tls_client);
	event_base_free(d.base);
	log_info("- daemon stopped");
	conf_free(&conf);
	return 0;
}
