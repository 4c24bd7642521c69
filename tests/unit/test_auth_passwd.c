/*
 * test_auth_passwd: the passwd backend of src/auth.
 *   - the file: accepted schemes, refused ones (DES, MD5, $2a$, $5$,
 *     empty, incomplete), locked logins, duplicates, file:line errors;
 *   - checks on the event loop with hashes made here by libxcrypt
 *     (crypt_gensalt_rn + crypt_rn: yescrypt, bcrypt, sha512-crypt) and by
 *     the real tools (mkpasswd -m yescrypt / -m bcrypt, openssl passwd
 *     -6): right, wrong, unknown, locked; the login's canonical spelling;
 *   - an unknown login costs a crypt(3) too (crypt_rn is wrapped and
 *     counted: -Wl,--wrap=crypt_rn);
 *   - the loop keeps running during a yescrypt check (a 10 ms timer
 *     ticks), and the time each check took is printed;
 *   - the penalty: failures answered after 0.5 s, then 1 s; a success
 *     after failures delayed too; AUTH_TEMP when crypt(3) hangs past the
 *     deadline, while the loop's timer keeps ticking;
 *   - auth_cancel() (no callback), auth_reload() keeping the old table on
 *     a bad file, EINVAL for bad arguments.
 */
#include <crypt.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/auth.h"
#include "auth/auth_passwd.h"
#include "table.h"

/* ---- crypt_rn, counted (and made to hang on demand) ----------------- */

char *__real_crypt_rn(const char *, const char *, void *, int);
char *__wrap_crypt_rn(const char *, const char *, void *, int);

static atomic_uint crypt_calls;

char *
__wrap_crypt_rn(const char *phrase, const char *setting, void *data, int size)
{
	atomic_fetch_add(&crypt_calls, 1);
	if (strcmp(phrase, "hang-for-6s") == 0)
		sleep(6);
	return __real_crypt_rn(phrase, setting, data, size);
}

/* ---- the file ------------------------------------------------------- */

#define Y \
	"$y$j9T$TKvhihEBfDpUrxPqL/" \
	"fcR1$F6ATOLjjyMkUB.TQQDguHeTCTTF5ZTve5OtlFwzTG7D"
#define BREST "$05$yxB6OFHjN39xOpF0uRHNhubgkpxSMjERrSyd0u5QwDBP5Xl7sToPO"
#define B "$2b" BREST
#define S \
	"$6$saltsalt$pauPrmdmG4BTE9h2HPmywiw152IFch6BJCEsaY6D." \
	"PLTfpV8sqvXwWdyfsgVgozkYH9B80bAip/08R2BPH2xk/"

struct parse_case {
	const char *name;
	const char *text;
	const char *err; /* NULL: parses */
	size_t count;
};

static const struct parse_case parse_cases[] = {
	{ "empty", "", NULL, 0 },
	{ "comments", "# users\n\n  # x\n", NULL, 0 },
	{ "yescrypt", "alice@example.test:" Y "\n", NULL, 1 },
	{ "bcrypt", "bob:" B "\n", NULL, 1 },
	{ "bcrypt 2y", "bob:$2y" BREST "\n", NULL, 1 },
	{ "sha512", "carol:" S "\n", NULL, 1 },
	{ "blanks crlf", "  carol : " S " \r\n", NULL, 1 },
	{ "locked star", "dave:*\n", NULL, 1 },
	{ "locked bang", "dave:!" Y "\n", NULL, 1 },
	{ "three", "a:" Y "\nb:" B "\nc:" S, NULL, 3 },
	{ "same local other domain case", "a@x.test:" Y "\nA@x.test:" B "\n",
	    NULL, 2 },
	{ "empty hash", "# c\nalice:\n",
	    "f:2: empty hash: a login without a password is refused (write "
	    "'!' to lock it)",
	    0 },
	{ "des", "alice:7fQX8A4Vt1j0.\n",
	    "f:1: DES crypt hash refused (weak): use yescrypt, bcrypt or "
	    "sha512-crypt",
	    0 },
	{ "md5", "alice:$1$salt$IXp9zPHZ94CMcVBXaZFPN/\n",
	    "f:1: MD5-crypt hash refused (weak): use yescrypt, bcrypt or "
	    "sha512-crypt",
	    0 },
	{ "sha256",
	    "alice:$5$salt$Oo0nc86Ktkc05wTAggFOZIQJhfxhAZY1mlIogZJN.i.\n",
	    "f:1: unsupported hash scheme: use yescrypt ($y$), bcrypt ($2b$) "
	    "or sha512-crypt ($6$)",
	    0 },
	{ "bcrypt 2a", "alice:$2a" BREST "\n",
	    "f:1: unsupported hash scheme: use yescrypt ($y$), bcrypt ($2b$) "
	    "or sha512-crypt ($6$)",
	    0 },
	{ "yescrypt setting only", "alice:$y$j9T$TKvhihEBfDpUrxPqL/fcR1\n",
	    "f:1: incomplete hash (a setting without its hash?)", 0 },
	{ "sha512 setting only", "alice:$6$saltsalt$\n",
	    "f:1: incomplete hash (a setting without its hash?)", 0 },
	{ "bcrypt cut", "alice:$2b$05$yxB6OFHjN39xOpF0uRHNhubgkpxSMjERr\n",
	    "f:1: incomplete hash (a setting without its hash?)", 0 },
	{ "bad char", "alice:$6$salt$a b\n",
	    "f:1: invalid character in the hash", 0 },
	{ "missing colon", "alice " Y "\n",
	    "f:1: missing ':' between login and hash", 0 },
	{ "missing login", ":" Y "\n", "f:1: missing login before ':'", 0 },
	{ "login with blank", "al ice:" Y "\n", "f:1: invalid login", 0 },
	{ "extra fields", "alice:" Y ":1000:1000::/home/alice:\n",
	    "f:1: more than one ':' (want login:hash)", 0 },
	{ "control", "alice:" Y "\x1b\n", "f:1: control character", 0 },
	{ "duplicate", "a@X.test:" Y "\n#\na@x.TEST:" B "\n",
	    "f:3: duplicate login a@x.test (line 1)", 0 },
};

static const char *
parse_name(const void *row)
{
	return ((const struct parse_case *)row)->name;
}

static void
test_parse(void **state)
{
	const struct parse_case *c = *state;
	struct auth_passwd_table *t;
	char err[512] = "";

	t = auth_passwd_parse("f", c->text, strlen(c->text), err, sizeof(err));
	if (c->err != NULL) {
		assert_null(t);
		assert_string_equal(err, c->err);
		return;
	}
	assert_non_null(t);
	assert_int_equal(auth_passwd_count(t), c->count);
	auth_passwd_table_free(t);
}

static void
test_lookup(void **state)
{
	static const char text[] = "Alice@Example.test:" Y "\n"
	                           "dave:*\n"
	                           "erin:" B "\n";
	struct auth_passwd_table *t;
	const char *h, *canon;
	char err[256];
	int locked;

	(void)state;
	t = auth_passwd_parse("f", text, sizeof(text) - 1, err, sizeof(err));
	assert_non_null(t);
	/* The domain in any case, the local part exact. */
	h = auth_passwd_lookup(t, "Alice@EXAMPLE.TEST", &locked, &canon);
	assert_non_null(h);
	assert_string_equal(h, Y);
	assert_string_equal(canon, "Alice@Example.test");
	assert_false(locked);
	assert_null(
	    auth_passwd_lookup(t, "alice@example.test", &locked, &canon));
	assert_null(auth_passwd_lookup(t, "dave", &locked, &canon));
	assert_true(locked);
	assert_string_equal(canon, "dave");
	assert_null(auth_passwd_lookup(t, "nobody", &locked, &canon));
	assert_false(locked);
	assert_null(canon);
	/* Unknown logins are hashed with the first usable setting. */
	assert_string_equal(auth_passwd_dummy(t), Y);
	auth_passwd_table_free(t);
	/* Without one, a built-in yescrypt setting. */
	t = auth_passwd_parse("f", "dave:!\n", 7, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(strncmp(auth_passwd_dummy(t), "$y$", 3), 0);
	auth_passwd_table_free(t);
}

/* ---- checks on a loop ----------------------------------------------- */

static char dir[64];

struct result {
	int called;
	enum auth_result result;
	char canonical[256];
	double ms; /* since the check began */
	struct timespec start;
};

static double
ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void
on_result(void *arg, enum auth_result result, const char *canonical)
{
	struct result *r = arg;

	r->called++;
	r->result = result;
	r->ms = ms_since(&r->start);
	if (canonical != NULL)
		snprintf(r->canonical, sizeof(r->canonical), "%s", canonical);
	else
		r->canonical[0] = '\0';
}

struct ticker {
	struct event *ev;
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

/* Runs base until r is answered or limit_ms passed, a 10 ms timer
 * ticking meanwhile. */
static void
run_until(
    struct event_base *base, struct result *r, int limit_ms, struct ticker *tk)
{
	struct timeval ten = { 0, 10000 };
	struct ticker local;

	if (tk == NULL)
		tk = &local;
	memset(tk, 0, sizeof(*tk));
	tk->ev = event_new(base, -1, EV_PERSIST, on_tick, tk);
	clock_gettime(CLOCK_MONOTONIC, &tk->last);
	event_add(tk->ev, &ten);
	while (!r->called && ms_since(&r->start) < limit_ms)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(tk->ev);
}

static struct auth_req *
check(struct auth *a, const char *login, const char *pw, const char *addr,
    struct result *r)
{
	struct auth_req *q;

	memset(r, 0, sizeof(*r));
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	q = auth_check(a, login, pw, addr, 1, on_result, r);
	assert_non_null(q);
	/* Never from inside the call. */
	assert_int_equal(r->called, 0);
	return q;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* A hash of pw made by libxcrypt with prefix's default cost. */
static void
make_hash(const char *prefix, const char *pw, char *out, size_t outsize)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;

	assert_non_null(
	    crypt_gensalt_rn(prefix, 0, NULL, 0, setting, sizeof(setting)));
	memset(&cd, 0, sizeof(cd));
	assert_non_null(__real_crypt_rn(pw, setting, &cd, sizeof(cd)));
	snprintf(out, outsize, "%s", cd.output);
}

/* Runs one check and asserts its result; returns its milliseconds. */
static double
expect(struct event_base *base, struct auth *a, const char *login,
    const char *pw, const char *addr, enum auth_result want,
    const char *canonical)
{
	struct result r;

	check(a, login, pw, addr, &r);
	run_until(base, &r, 10000, NULL);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.result, want);
	if (canonical != NULL)
		assert_string_equal(r.canonical, canonical);
	return r.ms;
}

static void
test_libxcrypt_hashes(void **state)
{
	static const struct {
		const char *prefix, *login;
	} schemes[] = {
		{ "$y$", "y@example.test" },
		{ "$2b$", "b@example.test" },
		{ "$6$", "s@example.test" },
	};
	struct event_base *base = event_base_new();
	char path[128], text[4096], h[CRYPT_OUTPUT_SIZE], err[512];
	struct auth *a;
	size_t i, len = 0;
	unsigned calls;
	double ms;
	char addr[32];

	(void)state;
	snprintf(path, sizeof(path), "%s/passwd-lib", dir);
	len += (size_t)snprintf(text + len, sizeof(text) - len,
	    "# made by crypt_gensalt_rn + crypt_rn\nlocked@example.test:!\n");
	for (i = 0; i < 3; i++) {
		make_hash(schemes[i].prefix, "right horse", h, sizeof(h));
		len += (size_t)snprintf(text + len, sizeof(text) - len,
		    "%s:%s\n", schemes[i].login, h);
	}
	write_file(path, text);
	snprintf(text, sizeof(text), "passwd:%s", path);
	a = auth_new(base, text, err, sizeof(err));
	assert_non_null(a);
	assert_string_equal(auth_backend_name(a), "passwd");
	for (i = 0; i < 3; i++) {
		/* A fresh address per check: no penalty in the way. */
		snprintf(addr, sizeof(addr), "192.0.2.%zu", 10 + i);
		ms = expect(base, a, schemes[i].login, "right horse", addr,
		    AUTH_OK, schemes[i].login);
		print_message(
		    "passwd %s right: %.1f ms\n", schemes[i].prefix, ms);
		snprintf(addr, sizeof(addr), "192.0.2.%zu", 20 + i);
		ms = expect(base, a, schemes[i].login, "wrong horse", addr,
		    AUTH_FAIL, NULL);
		/* A failure waits for the penalty of one failure. */
		print_message(
		    "passwd %s wrong: %.1f ms\n", schemes[i].prefix, ms);
		assert_true(ms >= 500);
	}
	/* The domain in any case; the canonical spelling comes back. */
	expect(base, a, "y@EXAMPLE.test", "right horse", "192.0.2.30", AUTH_OK,
	    "y@example.test");
	/* Unknown and locked logins fail, and cost one crypt(3) each. */
	calls = atomic_load(&crypt_calls);
	expect(base, a, "nobody@example.test", "right horse", "192.0.2.31",
	    AUTH_FAIL, NULL);
	assert_int_equal(atomic_load(&crypt_calls), calls + 1);
	expect(base, a, "locked@example.test", "right horse", "192.0.2.32",
	    AUTH_FAIL, NULL);
	assert_int_equal(atomic_load(&crypt_calls), calls + 2);
	auth_free(a);
	event_base_free(base);
}

/* Hashes from the tools an operator uses. */
static void
test_tool_hashes(void **state)
{
	static const char *const cmds[] = {
		"mkpasswd -m yescrypt 'tool pass'",
		"mkpasswd -m bcrypt 'tool pass'",
		"openssl passwd -6 'tool pass'",
	};
	struct event_base *base = event_base_new();
	char path[128], text[4096], h[256], err[512], login[64], addr[32];
	struct auth *a;
	size_t i, len = 0;
	FILE *p;

	(void)state;
	for (i = 0; i < 3; i++) {
		p = popen(cmds[i], "r");
		assert_non_null(p);
		assert_non_null(fgets(h, sizeof(h), p));
		assert_int_equal(pclose(p), 0);
		h[strcspn(h, "\n")] = '\0';
		len += (size_t)snprintf(text + len, sizeof(text) - len,
		    "tool%zu@example.test:%s\n", i, h);
	}
	snprintf(path, sizeof(path), "%s/passwd-tools", dir);
	write_file(path, text);
	snprintf(text, sizeof(text), "passwd:%s", path);
	assert_non_null(a = auth_new(base, text, err, sizeof(err)));
	for (i = 0; i < 3; i++) {
		snprintf(login, sizeof(login), "tool%zu@example.test", i);
		snprintf(addr, sizeof(addr), "198.51.100.%zu", i);
		expect(base, a, login, "tool pass", addr, AUTH_OK, login);
		snprintf(addr, sizeof(addr), "198.51.100.%zu", 10 + i);
		expect(base, a, login, "tool pasS", addr, AUTH_FAIL, NULL);
	}
	auth_free(a);
	event_base_free(base);
}

/* The loop runs during a yescrypt check, and the timings. */
static void
test_loop_not_blocked(void **state)
{
	struct event_base *base = event_base_new();
	char path[128], text[512], h[CRYPT_OUTPUT_SIZE], err[512];
	struct ticker tk;
	struct result r;
	struct auth *a;

	(void)state;
	make_hash("$y$", "pw", h, sizeof(h));
	snprintf(path, sizeof(path), "%s/passwd-loop", dir);
	snprintf(text, sizeof(text), "u:%s\n", h);
	write_file(path, text);
	snprintf(text, sizeof(text), "passwd:%s", path);
	assert_non_null(a = auth_new(base, text, err, sizeof(err)));
	check(a, "u", "pw", "203.0.113.1", &r);
	run_until(base, &r, 10000, &tk);
	assert_int_equal(r.result, AUTH_OK);
	print_message("yescrypt check on a worker: %.1f ms; 10 ms timer: "
	              "%u ticks, largest gap %.1f ms\n",
	    r.ms, tk.ticks, tk.max_gap_ms);
	/* The timer ran during the hash (test_deadline checks the same
	 * over a 5 s hang, where a blocked loop cannot hide). */
	assert_true(tk.ticks > 0);
	auth_free(a);
	event_base_free(base);
}

/* The penalty: 0.5 s, then 1 s; a success after two failures waits for
 * the delay a third failure would get (2 s). */
static void
test_penalty(void **state)
{
	struct event_base *base = event_base_new();
	char path[128], text[512], h[CRYPT_OUTPUT_SIZE], err[512];
	struct auth *a;
	double ms;

	(void)state;
	make_hash("$6$", "pw", h, sizeof(h));
	snprintf(path, sizeof(path), "%s/passwd-penalty", dir);
	snprintf(text, sizeof(text), "u:%s\n", h);
	write_file(path, text);
	snprintf(text, sizeof(text), "passwd:%s", path);
	assert_non_null(a = auth_new(base, text, err, sizeof(err)));
	/* No failure yet: a success is answered at once. */
	ms = expect(base, a, "u", "pw", "2001:db8:5:5::1", AUTH_OK, "u");
	assert_true(ms < 400);
	ms = expect(base, a, "u", "bad", "2001:db8:5:5::1", AUTH_FAIL, NULL);
	assert_true(ms >= 500 && ms < 900);
	/* The same /64. */
	ms = expect(base, a, "u", "bad", "2001:db8:5:5::2", AUTH_FAIL, NULL);
	assert_true(ms >= 1000 && ms < 1400);
	ms = expect(base, a, "u", "pw", "2001:db8:5:5::3", AUTH_OK, "u");
	assert_true(ms >= 2000 && ms < 2400);
	print_message(
	    "penalty: success after 2 failures answered in %.0f ms\n", ms);
	/* Another /64 is not delayed. */
	ms = expect(base, a, "u", "pw", "2001:db8:5:6::1", AUTH_OK, "u");
	assert_true(ms < 400);
	auth_free(a);
	event_base_free(base);
}

/* crypt(3) stuck (the wrap sleeps 6 s): AUTH_TEMP at the deadline, the
 * loop ticking all along. */
static void
test_deadline(void **state)
{
	struct event_base *base = event_base_new();
	char path[128], text[512], h[CRYPT_OUTPUT_SIZE], err[512];
	struct ticker tk;
	struct result r;
	struct auth *a;

	(void)state;
	make_hash("$6$", "pw", h, sizeof(h));
	snprintf(path, sizeof(path), "%s/passwd-deadline", dir);
	snprintf(text, sizeof(text), "u:%s\n", h);
	write_file(path, text);
	snprintf(text, sizeof(text), "passwd:%s", path);
	assert_non_null(a = auth_new(base, text, err, sizeof(err)));
	check(a, "u", "hang-for-6s", "203.0.113.9", &r);
	run_until(base, &r, 8000, &tk);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.result, AUTH_TEMP);
	assert_true(
	    r.ms >= AUTH_DEADLINE_MS - 50 && r.ms < AUTH_DEADLINE_MS + 500);
	/* A loop blocked by the hung hash would show one gap of 5 s and
	 * no ticks; the bounds leave room for a loaded machine. */
	assert_true(tk.ticks > 100);
	assert_true(tk.max_gap_ms < 1000);
	print_message("hung crypt: AUTH_TEMP after %.0f ms, timer ticked %u "
	              "times, largest gap %.1f ms\n",
	    r.ms, tk.ticks, tk.max_gap_ms);
	/* The other thread still answers meanwhile. */
	expect(base, a, "u", "pw", "203.0.113.10", AUTH_OK, "u");
	auth_free(a); /* waits for the stuck thread */
	event_base_free(base);
}

static void
test_cancel_reload_args(void **state)
{
	struct event_base *base = event_base_new();
	char path[128], text[512], h[CRYPT_OUTPUT_SIZE], h2[CRYPT_OUTPUT_SIZE];
	char err[512];
	struct auth_req *q;
	struct result r;
	struct auth *a;

	(void)state;
	make_hash("$6$", "old", h, sizeof(h));
	make_hash("$6$", "new", h2, sizeof(h2));
	snprintf(path, sizeof(path), "%s/passwd-reload", dir);
	snprintf(text, sizeof(text), "u:%s\n", h);
	write_file(path, text);
	snprintf(text, sizeof(text), "passwd:%s", path);
	assert_non_null(a = auth_new(base, text, err, sizeof(err)));
	/* Cancelled: no callback, ever. */
	q = check(a, "u", "old", "203.0.113.20", &r);
	auth_cancel(q);
	run_until(base, &r, 300, NULL);
	assert_int_equal(r.called, 0);
	/* Arguments out of bounds. */
	errno = 0;
	assert_null(auth_check(a, "u", "", NULL, 1, on_result, &r));
	assert_int_equal(errno, EINVAL);
	assert_null(auth_check(a, "", "x", NULL, 1, on_result, &r));
	memset(text, 'a', 256);
	text[256] = '\0';
	assert_null(auth_check(a, "u", text, NULL, 1, on_result, &r));
	/* A bad file: the old table stays. */
	write_file(path, "u:$1$salt$IXp9zPHZ94CMcVBXaZFPN/\n");
	assert_int_equal(auth_reload(a, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":1: MD5-crypt hash refused"));
	expect(base, a, "u", "old", "203.0.113.21", AUTH_OK, "u");
	/* A good one replaces it. */
	snprintf(text, sizeof(text), "u:%s\n", h2);
	write_file(path, text);
	assert_int_equal(auth_reload(a, err, sizeof(err)), 0);
	expect(base, a, "u", "new", "203.0.113.22", AUTH_OK, "u");
	expect(base, a, "u", "old", "203.0.113.23", AUTH_FAIL, NULL);
	auth_free(a);
	/* Specs auth_new refuses. */
	assert_null(auth_new(base, "ldap:/x", err, sizeof(err)));
	assert_string_equal(err, "auth: want passwd:/path or dovecot:/path");
	assert_null(auth_new(base, "passwd:rel/path", err, sizeof(err)));
	assert_null(auth_new(base, "passwd:/nonexistent/x", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/x"));
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_libxcrypt_hashes),
		cmocka_unit_test(test_tool_hashes),
		cmocka_unit_test(test_loop_not_blocked),
		cmocka_unit_test(test_penalty),
		cmocka_unit_test(test_cancel_reload_args),
		cmocka_unit_test(test_deadline),
	};
	int failed = 0;

	snprintf(dir, sizeof(dir), "/tmp/test_auth_passwd.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	failed +=
	    TABLE_RUN("auth_passwd_parse", test_parse, parse_cases, parse_name);
	failed += cmocka_run_group_tests_name("auth_passwd", tests, NULL, NULL);
	if (fork() == 0)
		execlp("rm", "rm", "-rf", dir, (char *)NULL);
	return failed != 0;
}
