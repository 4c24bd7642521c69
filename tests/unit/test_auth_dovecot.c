/*
 * test_auth_dovecot: the Dovecot backend of src/auth.
 *   - the reply parser and line reader (dovecot_proto.c), table-driven,
 *     fed whole, byte by byte and at every split; the over-long line; the
 *     two lines a client writes;
 *   - against a real Dovecot (dovecot-core) started here with a private
 *     configuration (own base_dir, no protocols, a passwd-file passdb
 *     with hashes from mkpasswd -m yescrypt / -m bcrypt and openssl
 *     passwd -6), by PID: right password (with Dovecot's canonical
 *     login), wrong password, several checks multiplexed on the one
 *     connection; Dovecot SIGSTOPped: AUTH_TEMP at the deadline while a
 *     timer on the loop keeps ticking; a check in flight when Dovecot
 *     stops: AUTH_TEMP at once; Dovecot stopped: AUTH_TEMP at once;
 *     restarted: AUTH_OK again (reconnect).
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/auth.h"
#include "auth/dovecot_proto.h"
#include "msgtrk/buf.h"
#include "table.h"

/* ---- the parser ------------------------------------------------------ */

struct proto_row {
	const char *name;
	const char *in;
	const char *want; /* one line per reply; "!" malformed */
};

static const struct proto_row proto_rows[] = {
	{ "handshake 2.3",
	    "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\n"
	    "SPID\t26105\nCUID\t1\nCOOKIE\t90ceb8a1cdb79966976f4094e371137b\n"
	    "DONE\n",
	    "VERSION 1.2\nMECH PLAIN plaintext\nMECH LOGIN plaintext\nSPID\n"
	    "CUID\nCOOKIE\nDONE\n" },
	{ "mech without flags", "MECH\tCRAM-MD5\n", "MECH CRAM-MD5\n" },
	{ "ok", "OK\t1\tuser=alice@example.test\n",
	    "OK 1 user=alice@example.test\n" },
	{ "ok with more fields",
	    "OK\t3\tuser=alice@example.test\toriginal_user=ALICE@example."
	    "test\n",
	    "OK 3 user=alice@example.test\n" },
	{ "ok without user", "OK\t7\n", "OK 7\n" },
	{ "ok escaped user",
	    "OK\t2\tuser=a\x01"
	    "xb\n",
	    "OK 2 user=axb\n" },
	{ "user escaped 001",
	    "OK\t2\tuser=a\x01"
	    "1b\n",
	    "!\n" },
	{ "fail", "FAIL\t2\tuser=alice@example.test\n", "FAIL 2\n" },
	{ "fail bare", "FAIL\t9\n", "FAIL 9\n" },
	{ "fail temp", "FAIL\t4\ttemp\n", "FAIL 4 temp\n" },
	{ "fail code temp", "FAIL\t4\tuser=a\tcode=temp_fail\n",
	    "FAIL 4 temp\n" },
	{ "fail authz", "FAIL\t5\tcode=authz_fail\treason=x\n", "FAIL 5\n" },
	{ "cont", "CONT\t6\t\n", "CONT 6\n" },
	{ "id max", "OK\t4294967295\n", "OK 4294967295\n" },
	{ "unknown command ignored", "NOTICE\tx\n", "OTHER\n" },
	{ "empty line", "\n", "OTHER\n" },
	{ "two replies", "OK\t1\tuser=a\nFAIL\t2\n", "OK 1 user=a\nFAIL 2\n" },
	{ "no newline yet", "OK\t1\tuser=a", "" },
	{ "id zero", "OK\t0\n", "!\n" },
	{ "id too big", "OK\t4294967296\n", "!\n" },
	{ "id not a number", "FAIL\tx\n", "!\n" },
	{ "id signed", "FAIL\t-1\n", "!\n" },
	{ "no id", "OK\n", "!\n" },
	{ "user escaped tab", "OK\t1\tuser=a\x01tb\n", "!\n" },
	{ "user escaped nul",
	    "OK\t1\tuser=a\x01"
	    "0\n",
	    "!\n" },
	{ "user control", "OK\t1\tuser=a\rb\n", "!\n" },
	{ "user empty", "OK\t1\tuser=\n", "!\n" },
	{ "user escape at end", "OK\t1\tuser=a\x01\n", "!\n" },
	{ "version text", "VERSION\tone\t2\n", "!\n" },
	{ "version short", "VERSION\t1\n", "!\n" },
	{ "mech empty", "MECH\t\n", "!\n" },
	{ "mech too long", "MECH\tABCDEFGHIJKLMNOPQRSTU\n", "!\n" },
	{ "malformed then ok", "OK\tx\nOK\t1\n", "!\nOK 1\n" },
};

static const char *
proto_name(const void *row)
{
	return ((const struct proto_row *)row)->name;
}

static void
render_reply(const struct dovecot_reply *r, struct buf *out)
{
	static const char *const kinds[] = { "OTHER", "VERSION", "MECH", "SPID",
		"CUID", "COOKIE", "DONE", "OK", "FAIL", "CONT" };

	buf_addf(out, "%s", kinds[r->kind]);
	if (r->kind == DOVECOT_VERSION)
		buf_addf(out, " %u.%u", r->major, r->minor);
	if (r->kind == DOVECOT_MECH)
		buf_addf(
		    out, " %s%s", r->mech, r->plaintext ? " plaintext" : "");
	if (r->kind == DOVECOT_OK || r->kind == DOVECOT_FAIL ||
	    r->kind == DOVECOT_CONT)
		buf_addf(out, " %u", r->id);
	if (r->kind == DOVECOT_OK && r->has_user)
		buf_addf(out, " user=%s", r->user);
	if (r->temp)
		buf_addf(out, " temp");
	buf_addf(out, "\n");
}

static void
feed_render(const void *ctx, const char *in, size_t n, const size_t *cuts,
    size_t ncuts, struct buf *out)
{
	static struct dovecot_reader rd;
	struct dovecot_reply rep;
	size_t start = 0, i, used, end;
	int r;

	(void)ctx;
	buf_reset(out);
	buf_init(out, 1 << 20);
	dovecot_reader_init(&rd);
	for (i = 0; i <= ncuts; i++) {
		end = i < ncuts ? cuts[i] : n;
		while (start < end) {
			r = dovecot_reader_feed(
			    &rd, in + start, end - start, &used);
			start += used;
			if (r == -1) {
				buf_addf(out, "TOO LONG\n");
				return;
			}
			if (r == 1) {
				if (dovecot_parse(rd.line, rd.len, &rep) == -1)
					buf_addf(out, "!\n");
				else
					render_reply(&rep, out);
			}
		}
	}
}

static void
test_proto(void **state)
{
	const struct proto_row *row = *state;

	table_check_splits(
	    feed_render, NULL, row->in, strlen(row->in), row->want);
}

static void
test_line_limit(void **state)
{
	size_t n = DOVECOT_LINE_MAX + 2, cut;
	char *in = malloc(n);
	struct buf out;

	(void)state;
	assert_non_null(in);
	memset(&out, 0, sizeof(out));
	/* DOVECOT_LINE_MAX octets and the LF: a line. */
	memset(in, 'x', n);
	in[DOVECOT_LINE_MAX] = '\n';
	cut = 100;
	feed_render(NULL, in, DOVECOT_LINE_MAX + 1, &cut, 1, &out);
	assert_string_equal(buf_cstr(&out), "OTHER\n");
	/* One more: too long, whole or split. */
	in[DOVECOT_LINE_MAX] = 'x';
	in[DOVECOT_LINE_MAX + 1] = '\n';
	feed_render(NULL, in, n, NULL, 0, &out);
	assert_string_equal(buf_cstr(&out), "TOO LONG\n");
	cut = DOVECOT_LINE_MAX;
	feed_render(NULL, in, n, &cut, 1, &out);
	assert_string_equal(buf_cstr(&out), "TOO LONG\n");
	buf_reset(&out);
	free(in);
}

static void
test_format(void **state)
{
	char out[512], small[20];

	(void)state;
	assert_int_equal(dovecot_format_hello(out, sizeof(out), 1234), 22);
	assert_string_equal(out, "VERSION\t1\t2\nCPID\t1234\n");
	assert_true(dovecot_format_auth(
	                out, sizeof(out), 7, "192.0.2.1", 1, "AGEAYg==") > 0);
	assert_string_equal(out,
	    "AUTH\t7\tPLAIN\tservice=smtp\tsecured\tno-penalty\trip=192.0.2.1"
	    "\tresp=AGEAYg==\n");
	assert_true(
	    dovecot_format_auth(out, sizeof(out), 8, "", 0, "AGEAYg==") > 0);
	assert_string_equal(
	    out, "AUTH\t8\tPLAIN\tservice=smtp\tno-penalty\tresp=AGEAYg==\n");
	assert_true(
	    dovecot_format_auth(out, sizeof(out), 8, NULL, 0, "AGEAYg==") > 0);
	assert_int_equal(
	    dovecot_format_auth(out, sizeof(out), 0, NULL, 0, "AGEAYg=="), -1);
	assert_int_equal(
	    dovecot_format_auth(out, sizeof(out), 1, "a\tb", 0, "AGEAYg=="),
	    -1);
	assert_int_equal(
	    dovecot_format_auth(out, sizeof(out), 1, NULL, 0, "AG\nEA"), -1);
	assert_int_equal(
	    dovecot_format_auth(small, sizeof(small), 1, NULL, 0, "AGEAYg=="),
	    -1);
}

/* ---- a real Dovecot ------------------------------------------------- */

static char dir[64], sock[128], conf[128];
static pid_t dovecot_pid = -1;

static double
ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void
hash_of(const char *cmd, char *out, size_t outsize)
{
	FILE *p = popen(cmd, "r");

	assert_non_null(p);
	assert_non_null(fgets(out, (int)outsize, p));
	assert_int_equal(pclose(p), 0);
	out[strcspn(out, "\n")] = '\0';
}

static void
write_setup(void)
{
	char users[128], h[256];
	FILE *f;

	snprintf(users, sizeof(users), "%s/users", dir);
	assert_non_null(f = fopen(users, "w"));
	hash_of("mkpasswd -m yescrypt 'y pass'", h, sizeof(h));
	fprintf(f, "y@example.test:%s\n", h);
	hash_of("mkpasswd -m bcrypt 'b pass'", h, sizeof(h));
	fprintf(f, "b@example.test:%s\n", h);
	hash_of("openssl passwd -6 's pass'", h, sizeof(h));
	fprintf(f, "s@example.test:%s\n", h);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(users, 0644), 0);
	snprintf(conf, sizeof(conf), "%s/dovecot.conf", dir);
	assert_non_null(f = fopen(conf, "w"));
	fprintf(f,
	    "base_dir = %s/run\n"
	    "state_dir = %s/state\n"
	    "log_path = %s/dovecot.log\n"
	    "protocols =\n"
	    "ssl = no\n"
	    "passdb {\n"
	    "  driver = passwd-file\n"
	    "  args = scheme=CRYPT %s\n"
	    "}\n"
	    "service auth {\n"
	    "  unix_listener auth-client {\n"
	    "    mode = 0666\n"
	    "  }\n"
	    "}\n",
	    dir, dir, dir, users);
	assert_int_equal(fclose(f), 0);
	snprintf(sock, sizeof(sock), "%s/run/auth-client", dir);
}

/* Starts Dovecot and waits (at most 10 s) for its auth-client socket. */
static void
dovecot_start(void)
{
	struct timespec t0;
	struct dirent *de;
	struct stat st;
	char run[128], path[400];
	DIR *d;

	/* A killed Dovecot leaves its sockets behind, and a new one refuses
	 * to start over them. */
	snprintf(run, sizeof(run), "%s/run", dir);
	if ((d = opendir(run)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			snprintf(path, sizeof(path), "%s/%s", run, de->d_name);
			if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
				unlink(path);
		}
		closedir(d);
	}
	dovecot_pid = fork();
	assert_true(dovecot_pid >= 0);
	if (dovecot_pid == 0) {
		execlp("dovecot", "dovecot", "-F", "-c", conf, (char *)NULL);
		_exit(127);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (stat(sock, &st) == -1) {
		assert_true(ms_since(&t0) < 10000);
		assert_int_equal(waitpid(dovecot_pid, NULL, WNOHANG), 0);
		usleep(20000);
	}
}

/* The PIDs of Dovecot's children (its auth process among them). */
static size_t
dovecot_children(pid_t *out, size_t max)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL && n < max) {
		char path[300], buf[512], *p;
		FILE *f;
		long ppid;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(buf, sizeof(buf), f) != NULL &&
		    (p = strrchr(buf, ')')) != NULL &&
		    sscanf(p + 2, "%*c %ld", &ppid) == 1 &&
		    ppid == (long)dovecot_pid)
			out[n++] = (pid_t)atol(de->d_name);
		fclose(f);
	}
	closedir(d);
	return n;
}

/* The child of Dovecot whose name is comm. */
static pid_t
dovecot_child(const char *comm)
{
	pid_t kids[32];
	size_t n = dovecot_children(kids, 32), i;
	char path[64], name[64];
	FILE *f;

	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/proc/%ld/comm", (long)kids[i]);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(name, sizeof(name), f) != NULL &&
		    strncmp(name, comm, strlen(comm)) == 0 &&
		    name[strlen(comm)] == '\n') {
			fclose(f);
			return kids[i];
		}
		fclose(f);
	}
	fail_msg("no Dovecot process named %s", comm);
	return -1;
}

static void
dovecot_signal_all(int sig)
{
	pid_t kids[32];
	size_t n = dovecot_children(kids, 32), i;

	assert_true(n > 0);
	for (i = 0; i < n; i++)
		kill(kids[i], sig);
	kill(dovecot_pid, sig);
}

/* Stops Dovecot (SIGTERM, then SIGKILL after 10 s) and reaps it. */
static void
dovecot_stop(void)
{
	struct timespec t0;

	if (dovecot_pid <= 0)
		return;
	kill(dovecot_pid, SIGTERM);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (waitpid(dovecot_pid, NULL, WNOHANG) == 0) {
		if (ms_since(&t0) > 10000) {
			kill(dovecot_pid, SIGKILL);
			waitpid(dovecot_pid, NULL, 0);
			break;
		}
		usleep(20000);
	}
	dovecot_pid = -1;
}

struct result {
	int called;
	enum auth_result result;
	char canonical[256];
	double ms;
	struct timespec start;
};

static void
on_result(void *arg, enum auth_result result, const char *canonical)
{
	struct result *r = arg;

	r->called++;
	r->result = result;
	r->ms = ms_since(&r->start);
	snprintf(r->canonical, sizeof(r->canonical), "%s",
	    canonical != NULL ? canonical : "");
}

struct ticker {
	unsigned ticks;
	double max_gap_ms;
	struct timespec last;
};

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ticker *t = arg;
	double gap = ms_since(&t->last);

	(void)fd;
	(void)what;
	if (t->ticks > 0 && gap > t->max_gap_ms)
		t->max_gap_ms = gap;
	t->ticks++;
	clock_gettime(CLOCK_MONOTONIC, &t->last);
}

/* Runs base until every one of the n results is in, or limit_ms. */
static void
run_all(struct event_base *base, struct result *r, size_t n, int limit_ms,
    struct ticker *tk)
{
	struct timeval ten = { 0, 10000 };
	struct ticker local;
	struct timespec t0;
	struct event *ev;
	size_t i, done;

	if (tk == NULL)
		tk = &local;
	memset(tk, 0, sizeof(*tk));
	ev = event_new(base, -1, EV_PERSIST, on_tick, tk);
	clock_gettime(CLOCK_MONOTONIC, &tk->last);
	event_add(ev, &ten);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		for (i = 0, done = 0; i < n; i++)
			done += r[i].called != 0;
		if (done == n || ms_since(&t0) > limit_ms)
			break;
		event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(ev);
}

static void
start_check(struct auth *a, const char *login, const char *pw, const char *addr,
    struct result *r)
{
	memset(r, 0, sizeof(*r));
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	assert_non_null(auth_check(a, login, pw, addr, 1, on_result, r));
	assert_int_equal(r->called, 0);
}

static struct result
one(struct event_base *base, struct auth *a, const char *login, const char *pw,
    const char *addr, int limit_ms)
{
	struct result r;

	start_check(a, login, pw, addr, &r);
	run_all(base, &r, 1, limit_ms, NULL);
	assert_int_equal(r.called, 1);
	return r;
}

static void
test_real_dovecot(void **state)
{
	struct event_base *base = event_base_new();
	char spec[200], err[512];
	struct result r, m[4];
	struct ticker tk;
	struct auth *a;

	(void)state;
	write_setup();
	dovecot_start();
	snprintf(spec, sizeof(spec), "dovecot:%s", sock);
	assert_non_null(a = auth_new(base, spec, err, sizeof(err)));
	assert_string_equal(auth_backend_name(a), "dovecot");

	/* Right passwords, each hash scheme; Dovecot lower-cases the login
	 * (auth_username_format = %Lu) and that is the canonical one. */
	r = one(base, a, "Y@Example.TEST", "y pass", "192.0.2.1", 10000);
	assert_int_equal(r.result, AUTH_OK);
	assert_string_equal(r.canonical, "y@example.test");
	print_message("dovecot yescrypt right (first, with connect and "
	              "handshake): %.1f ms\n",
	    r.ms);
	r = one(base, a, "b@example.test", "b pass", "192.0.2.2", 10000);
	assert_int_equal(r.result, AUTH_OK);
	assert_string_equal(r.canonical, "b@example.test");
	r = one(base, a, "s@example.test", "s pass", "192.0.2.3", 10000);
	assert_int_equal(r.result, AUTH_OK);
	print_message("dovecot sha512 right: %.1f ms\n", r.ms);

	/* Wrong password and unknown login: AUTH_FAIL (after Dovecot's own
	 * auth_failure_delay, 2 s by default). */
	r = one(base, a, "y@example.test", "Y pass", "192.0.2.4", 10000);
	assert_int_equal(r.result, AUTH_FAIL);
	assert_string_equal(r.canonical, "");
	print_message("dovecot wrong password: %.1f ms\n", r.ms);

	/* Four checks at once on the one connection. */
	start_check(a, "y@example.test", "y pass", "192.0.2.10", &m[0]);
	start_check(a, "b@example.test", "wrong", "192.0.2.11", &m[1]);
	start_check(a, "s@example.test", "s pass", "192.0.2.12", &m[2]);
	start_check(a, "nobody@example.test", "x", "192.0.2.13", &m[3]);
	run_all(base, m, 4, 10000, NULL);
	assert_int_equal(m[0].result, AUTH_OK);
	assert_int_equal(m[1].result, AUTH_FAIL);
	assert_int_equal(m[2].result, AUTH_OK);
	assert_int_equal(m[3].result, AUTH_FAIL);
	assert_string_equal(m[2].canonical, "s@example.test");

	/* Dovecot stopped (SIGSTOP): AUTH_TEMP at the deadline, the loop
	 * ticking all along. */
	dovecot_signal_all(SIGSTOP);
	start_check(a, "y@example.test", "y pass", "192.0.2.20", &r);
	run_all(base, &r, 1, 8000, &tk);
	dovecot_signal_all(SIGCONT);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.result, AUTH_TEMP);
	assert_true(
	    r.ms >= AUTH_DEADLINE_MS - 50 && r.ms < AUTH_DEADLINE_MS + 1000);
	assert_true(tk.ticks > 100);
	assert_true(tk.max_gap_ms < 1000);
	print_message("dovecot SIGSTOPped: AUTH_TEMP after %.0f ms; 10 ms "
	              "timer ticked %u times, largest gap %.1f ms\n",
	    r.ms, tk.ticks, tk.max_gap_ms);

	/* Running again: the next check reconnects. */
	r = one(base, a, "y@example.test", "y pass", "192.0.2.21", 10000);
	assert_int_equal(r.result, AUTH_OK);

	/* A check in flight (a wrong password: Dovecot holds its FAIL for
	 * 2 s) when Dovecot's auth process dies (SIGKILL: a SIGTERMed one
	 * flushes its delayed FAILs first): AUTH_TEMP as the connection
	 * drops. */
	start_check(a, "y@example.test", "nope", "192.0.2.22", &r);
	run_all(base, &r, 1, 300, NULL);
	assert_int_equal(r.called, 0);
	kill(dovecot_child("auth"), SIGKILL);
	run_all(base, &r, 1, 10000, NULL);
	assert_int_equal(r.result, AUTH_TEMP);
	assert_true(r.ms < 1900);
	print_message("dovecot's auth process killed with a check in flight: "
	              "AUTH_TEMP "
	              "after %.0f ms\n",
	    r.ms);

	dovecot_stop();

	/* Down: AUTH_TEMP at once. */
	r = one(base, a, "y@example.test", "y pass", "192.0.2.23", 10000);
	assert_int_equal(r.result, AUTH_TEMP);
	assert_true(r.ms < 200);
	print_message("dovecot down: AUTH_TEMP after %.1f ms\n", r.ms);

	/* Restarted: AUTH_OK again. */
	dovecot_start();
	r = one(base, a, "y@example.test", "y pass", "192.0.2.24", 10000);
	assert_int_equal(r.result, AUTH_OK);
	print_message("dovecot restarted: AUTH_OK after %.1f ms\n", r.ms);
	assert_string_equal(r.canonical, "y@example.test");

	/* Cancelled: never called back; the connection still serves. */
	auth_cancel(NULL);
	memset(&m[0], 0, sizeof(m[0]));
	clock_gettime(CLOCK_MONOTONIC, &m[0].start);
	auth_cancel(auth_check(
	    a, "y@example.test", "y pass", "192.0.2.25", 1, on_result, &m[0]));
	r = one(base, a, "b@example.test", "b pass", "192.0.2.26", 10000);
	assert_int_equal(r.result, AUTH_OK);
	assert_int_equal(m[0].called, 0);
	dovecot_stop();
	auth_free(a);
	event_base_free(base);
}

static int
teardown(void **state)
{
	(void)state;
	dovecot_stop();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_format),
		cmocka_unit_test_teardown(test_real_dovecot, teardown),
	};
	int failed = 0;

	snprintf(dir, sizeof(dir), "/tmp/test_auth_dovecot.XXXXXX");
	if (mkdtemp(dir) == NULL || chmod(dir, 0755) == -1)
		return 1;
	failed +=
	    TABLE_RUN("dovecot_proto", test_proto, proto_rows, proto_name);
	failed +=
	    cmocka_run_group_tests_name("auth_dovecot", tests, NULL, NULL);
	dovecot_stop();
	if (getenv("KEEP") == NULL && fork() == 0)
		execlp("rm", "rm", "-rf", dir, (char *)NULL);
	return failed != 0;
}
