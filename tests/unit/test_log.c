/*
 * test_log: the log line format on stderr, log_debug's switch, errno
 * handling, fatal()'s exit, and log_escape() (log.h).
 */
#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "table.h"

/* "YYYY-MM-DDTHH:MM:SS.mmmZ " */
#define STAMP_LEN 25
/* log.c's LOG_LINE_MAX: the longest line, newline included */
#define LINE_MAX_BYTES 4096

static char capfile[] = "/tmp/test_log.XXXXXX";
static int saved_stderr = -1;

/* Sends fd 2 to capfile until cap_end(). */
static void
cap_start(void)
{
	int fd;

	/* a forked child must not flush our buffers a second time */
	fflush(stdout);
	fflush(stderr);
	saved_stderr = dup(2);
	assert_true(saved_stderr >= 0);
	fd = open(capfile, O_RDWR | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
}

/* Restores fd 2 and returns what was written (malloc'd, terminated). */
static char *
cap_end(size_t *len_out)
{
	char *s;
	size_t n = 0;
	FILE *f;

	assert_int_equal(dup2(saved_stderr, 2), 2);
	close(saved_stderr);
	f = fopen(capfile, "r");
	assert_non_null(f);
	s = malloc(4 * LINE_MAX_BYTES);
	assert_non_null(s);
	n = fread(s, 1, 4 * LINE_MAX_BYTES - 1, f);
	fclose(f);
	s[n] = '\0';
	*len_out = n;
	return s;
}

static void
assert_stamp(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ ";
	size_t i;

	for (i = 0; i < STAMP_LEN; i++) {
		if (pat[i] == 'd')
			assert_true(s[i] >= '0' && s[i] <= '9');
		else
			assert_int_equal(s[i], pat[i]);
	}
}

enum fn { F_INFO, F_WARN, F_WARNX, F_DEBUG };

struct out_case {
	const char *name;
	int verbose;
	enum fn fn;
	const char *msg; /* logged as "%s" after "id " */
	int err; /* errno before the call */
	const char *want; /* the line after the stamp; NULL: no output */
};

static const struct out_case out_cases[] = {
	{ "info", 0, F_INFO, "smtp connected", 0, "id smtp connected" },
	{ "info verbose", 1, F_INFO, "x=1", 0, "id x=1" },
	{ "debug off", 0, F_DEBUG, "secret", 0, NULL },
	{ "debug on", 1, F_DEBUG, "dbg", 0, "id dbg" },
	{ "warn adds errno", 0, F_WARN, "open /x", ENOENT,
	    "id open /x: No such file or directory" },
	{ "warn EACCES", 0, F_WARN, "bind", EACCES,
	    "id bind: Permission denied" },
	{ "warnx ignores errno", 0, F_WARNX, "bad", ENOENT, "id bad" },
	{ "warn errno 0", 0, F_WARN, "zero", 0, "id zero" },
	{ "newline replaced", 0, F_INFO, "a\nb", 0, "id a?b" },
	{ "CR replaced", 0, F_INFO, "a\r\nb", 0, "id a??b" },
	{ "ESC replaced", 0, F_INFO, "\x1b[31mred", 0, "id ?[31mred" },
	{ "tab kept", 0, F_INFO, "a\tb", 0, "id a\tb" },
	{ "high bytes kept", 0, F_INFO, "caf\xc3\xa9", 0, "id caf\xc3\xa9" },
	{ "empty", 0, F_INFO, "", 0, "id " },
};

static const char *
out_name(const void *row)
{
	return ((const struct out_case *)row)->name;
}

static void
test_out(void **state)
{
	const struct out_case *oc = *state;
	char *got;
	size_t n;
	int e;

	log_init("test_log", 1, oc->verbose);
	cap_start();
	errno = oc->err;
	switch (oc->fn) {
	case F_INFO:
		log_info("id %s", oc->msg);
		break;
	case F_WARN:
		log_warn("id %s", oc->msg);
		break;
	case F_WARNX:
		log_warnx("id %s", oc->msg);
		break;
	case F_DEBUG:
		log_debug("id %s", oc->msg);
		break;
	}
	e = errno;
	got = cap_end(&n);
	/* logging never changes errno */
	assert_int_equal(e, oc->err);
	if (oc->want == NULL) {
		assert_int_equal(n, 0);
	} else {
		assert_true(n > STAMP_LEN);
		assert_stamp(got);
		assert_int_equal(got[n - 1], '\n');
		got[n - 1] = '\0';
		assert_string_equal(got + STAMP_LEN, oc->want);
	}
	free(got);
}

/* A message longer than a line is cut to LINE_MAX_BYTES, ending "...". */
static void
test_long(void **state)
{
	char *big, *got;
	size_t n;

	(void)state;
	big = malloc(10000);
	assert_non_null(big);
	memset(big, 'x', 9999);
	big[9999] = '\0';
	log_init("test_log", 1, 0);
	cap_start();
	errno = EIO;
	log_warn("%s", big); /* no room left for the strerror either */
	log_info("%.*s", LINE_MAX_BYTES - STAMP_LEN - 1, big); /* just fits */
	log_info("%.*s", LINE_MAX_BYTES - STAMP_LEN, big); /* one over */
	got = cap_end(&n);
	assert_int_equal(n, 3 * LINE_MAX_BYTES);
	assert_stamp(got);
	assert_memory_equal(got + LINE_MAX_BYTES - 4, "...\n", 4);
	assert_stamp(got + LINE_MAX_BYTES);
	assert_memory_equal(got + 2 * LINE_MAX_BYTES - 4, "xxx\n", 4);
	assert_stamp(got + 2 * LINE_MAX_BYTES);
	assert_memory_equal(got + 3 * LINE_MAX_BYTES - 4, "...\n", 4);
	free(got);
	free(big);
}

/* To syslog nothing reaches stderr (no syslogd needed: syslog(3) drops
 * what it cannot send); log_reopen() is harmless either way. */
static void
test_syslog(void **state)
{
	char *got;
	size_t n;

	(void)state;
	cap_start();
	log_init("test_log", 0, 1);
	log_info("test_log syslog info");
	log_debug("test_log syslog debug");
	log_reopen();
	log_warnx("test_log after reopen");
	log_init("test_log", 1, 0);
	log_reopen();
	got = cap_end(&n);
	assert_int_equal(n, 0);
	free(got);
}

struct fatal_case {
	const char *name;
	int with_errno; /* fatal() rather than fatalx() */
	const char *want;
};

static const struct fatal_case fatal_cases[] = {
	{ "fatal", 1, "fatal: cannot bind 25: Permission denied\n" },
	{ "fatalx", 0, "fatal: cannot bind 25\n" },
};

static const char *
fatal_name(const void *row)
{
	return ((const struct fatal_case *)row)->name;
}

/* fatal() and fatalx() log, then exit(1): run them in a child. */
static void
test_fatal(void **state)
{
	const struct fatal_case *fc = *state;
	char *got;
	size_t n;
	pid_t pid;
	int status = 0, i;

	cap_start();
	pid = fork();
	if (pid == -1) {
		got = cap_end(&n);
		free(got);
		fail_msg("fork: %s", strerror(errno));
	}
	if (pid == 0) {
		log_init("test_log", 1, 0);
		errno = EACCES;
		if (fc->with_errno)
			fatal("cannot bind %d", 25);
		fatalx("cannot bind %d", 25);
	}
	/* bounded wait: 10 s, then the child is killed */
	for (i = 0; i < 1000; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	if (i == 1000) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	got = cap_end(&n);
	assert_true(i < 1000);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_true(n > STAMP_LEN);
	assert_stamp(got);
	assert_string_equal(got + STAMP_LEN, fc->want);
	free(got);
}

struct esc_case {
	const char *name;
	const char *in;
	size_t n; /* bytes of in */
	size_t dstsize;
	const char *want;
};

#define S(s) s, sizeof(s) - 1

static const struct esc_case esc_cases[] = {
	{ "plain", S("hello"), 64, "hello" },
	{ "empty", S(""), 64, "" },
	{ "NULL text", NULL, 0, 64, "" },
	{ "space", S("a b"), 64, "a\\x20b" },
	{ "quote", S("a\"b"), 64, "a\\x22b" },
	{ "backslash", S("a\\b"), 64, "a\\x5cb" },
	{ "key=value kept", S("k=v"), 64, "k=v" },
	{ "fake field", S("x reason=ok"), 64, "x\\x20reason=ok" },
	{ "CRLF", S("\r\n"), 64, "\\x0d\\x0a" },
	{ "NUL", S("a\0b"), 64, "a\\x00b" },
	{ "DEL", S("\x7f"), 64, "\\x7f" },
	{ "high", S("\x80\xff"), 64, "\\x80\\xff" },
	{ "edges kept", S("!~"), 64, "!~" },
	{ "tab", S("\t"), 64, "\\x09" },
	{ "all printable", S("!#$%&'()*+,-./0123456789:;<=>?@AZ[]^_`az{|}~"),
	    64, "!#$%&'()*+,-./0123456789:;<=>?@AZ[]^_`az{|}~" },
	{ "n shorter than text", "abcdef", 3, 64, "abc" },
	/* bounds: at most dstsize-1 bytes, "..." when cut */
	{ "exact fit", S("abcd"), 5, "abcd" },
	{ "one over", S("abcde"), 5, "a..." },
	{ "cut", S("abcdefgh"), 8, "abcd..." },
	{ "escape fits exactly", S("a\n"), 6, "a\\x0a" },
	{ "escape not split", S("ab\n"), 6, "ab..." },
	{ "escape not split 2", S("a\nbcdef"), 8, "a..." },
	{ "escape at cut", S("\n\n"), 8, "\\x0a..." },
	{ "size 1", S("abc"), 1, "" },
	{ "size 2", S("abc"), 2, "." },
	{ "size 3", S("abc"), 3, ".." },
	{ "size 4 cut", S("abcd"), 4, "..." },
	{ "size 4 fits", S("abc"), 4, "abc" },
	{ "size 4 escape", S("\n"), 4, "..." },
	{ "size 5 escape", S("\n"), 5, "\\x0a" },
	{ "size 1 empty", S(""), 1, "" },
};

static const char *
esc_name(const void *row)
{
	return ((const struct esc_case *)row)->name;
}

static void
test_escape(void **state)
{
	const struct esc_case *ec = *state;
	char dst[80];

	assert_true(ec->dstsize < sizeof(dst));
	memset(dst, 'Z', sizeof(dst));
	assert_ptr_equal(log_escape(dst, ec->dstsize, ec->in, ec->n), dst);
	assert_string_equal(dst, ec->want);
	assert_true(strlen(dst) <= ec->dstsize - 1);
	/* nothing written past dstsize */
	assert_int_equal(dst[ec->dstsize], 'Z');
}

static void
test_escape_zero(void **state)
{
	char dst[4] = "ZZZ";

	(void)state;
	assert_ptr_equal(log_escape(dst, 0, "abc", 3), dst);
	assert_string_equal(dst, "ZZZ");
	assert_null(log_escape(NULL, 10, "abc", 3));
}

/* The seconds since the epoch of a line's stamp. */
static time_t
stamp_time(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	assert_non_null(strptime(s, "%Y-%m-%dT%H:%M:%S", &tm));
	return timegm(&tm);
}

/* The stamp's seconds, formatted once a second, follow the clock. */
static void
test_stamp_seconds(void **state)
{
	char *got;
	size_t n;
	time_t t0, t1, t2;

	(void)state;
	log_init("test_log", 1, 0);
	t0 = time(NULL);
	cap_start();
	log_info("one");
	got = cap_end(&n);
	assert_int_equal(n, STAMP_LEN + 4);
	assert_stamp(got);
	t1 = stamp_time(got);
	assert_true(t1 >= t0 && t1 <= time(NULL));
	free(got);
	while (time(NULL) == t1)
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	cap_start();
	log_info("two");
	got = cap_end(&n);
	assert_int_equal(n, STAMP_LEN + 4);
	assert_memory_equal(got + STAMP_LEN, "two\n", 4);
	t2 = stamp_time(got);
	assert_true(t2 > t1 && t2 <= time(NULL));
	free(got);
}

int
main(void)
{
	const struct CMUnitTest single[] = {
		cmocka_unit_test(test_long),
		cmocka_unit_test(test_syslog),
		cmocka_unit_test(test_escape_zero),
		cmocka_unit_test(test_stamp_seconds),
	};
	int failed = 0, fd;

	if ((fd = mkstemp(capfile)) == -1) {
		perror("mkstemp");
		return 1;
	}
	close(fd);
	failed += cmocka_run_group_tests_name("log", single, NULL, NULL);
	failed += TABLE_RUN("log_output", test_out, out_cases, out_name);
	failed += TABLE_RUN("log_fatal", test_fatal, fatal_cases, fatal_name);
	failed += TABLE_RUN("log_escape", test_escape, esc_cases, esc_name);
	unlink(capfile);
	return failed;
}
