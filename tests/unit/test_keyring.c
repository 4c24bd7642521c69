/*
 * test_keyring: keyring lines (parse and format, every field rule),
 * keyring_lookup() on real files (missing, empty lines, malformed lines
 * reported as path:line, NUL, symlinks, directories, the last entry
 * wins), keyring_append() (directories 0700, file 0600, lines kept,
 * atomic rewrite without leftovers, errors leave the file unchanged),
 * concurrent appends from several processes under the lock, and
 * keyring_default_path().
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/keyring.h"
#include "msgtrk/buf.h"
#include "table.h"

static char tmpdir[64];

struct parse_case {
	const char *name;
	const char *line;
	const char *err; /* NULL: parses */
	const char *envid, *secret, *server, *mtqp, *submitted;
	size_t nrecipients;
};

#define E(name, line, err) \
	{ \
		name, line, err, NULL, NULL, NULL, NULL, NULL, 0 \
	}
#define GOOD_HEAD "{\"envid\":\"e@h.test\",\"secret\":\"c2VjcmV0\","

static const struct parse_case parse_cases[] = {
	{ "full",
	    GOOD_HEAD "\"server\":\"mx.test:25\",\"mtqp\":\"mx.test\","
	              "\"submitted\":\"Mon, 1 Jan 2024 00:00:00 +0000\","
	              "\"recipients\":[\"a@d.test\",\"b@d.test\"]}",
	    NULL, "e@h.test", "c2VjcmV0", "mx.test:25", "mx.test",
	    "Mon, 1 Jan 2024 00:00:00 +0000", 2 },
	{ "minimal", GOOD_HEAD "\"server\":\"h:25\"}", NULL, "e@h.test",
	    "c2VjcmV0", "h:25", "", "", 0 },
	{ "mtqp null", GOOD_HEAD "\"server\":\"h:25\",\"mtqp\":null}", NULL,
	    "e@h.test", "c2VjcmV0", "h:25", "", "", 0 },
	{ "submitted null", GOOD_HEAD "\"server\":\"h:25\",\"submitted\":null}",
	    NULL, "e@h.test", "c2VjcmV0", "h:25", "", "", 0 },
	{ "recipients empty", GOOD_HEAD "\"server\":\"h\",\"recipients\":[]}",
	    NULL, "e@h.test", "c2VjcmV0", "h", "", "", 0 },
	{ "recipients null", GOOD_HEAD "\"server\":\"h\",\"recipients\":null}",
	    NULL, "e@h.test", "c2VjcmV0", "h", "", "", 0 },
	{ "unknown member ignored",
	    GOOD_HEAD "\"server\":\"h\",\"future\":\"x\",\"more\":[\"y\"]}",
	    NULL, "e@h.test", "c2VjcmV0", "h", "", "", 0 },
	{ "order free",
	    "{\"server\":\"h\",\"recipients\":[\"r@d\"],\"secret\":\"s\","
	    "\"envid\":\"x+2By@h\"}",
	    NULL, "x+2By@h", "s", "h", "", "", 1 },
	{ "escaped value", GOOD_HEAD "\"server\":\"h\\u003a25\"}", NULL,
	    "e@h.test", "c2VjcmV0", "h:25", "", "", 0 },
	{ "duplicate: last wins",
	    GOOD_HEAD "\"server\":\"a\",\"server\":\"b\"}", NULL, "e@h.test",
	    "c2VjcmV0", "b", "", "", 0 },
	E("no envid", "{\"secret\":\"s\",\"server\":\"h\"}", "no \"envid\""),
	E("no secret", "{\"envid\":\"e@h\",\"server\":\"h\"}", "no \"secret\""),
	E("no server", "{\"envid\":\"e@h\",\"secret\":\"s\"}", "no \"server\""),
	E("empty object", "{}", "no \"envid\""),
	E("envid null", "{\"envid\":null,\"secret\":\"s\",\"server\":\"h\"}",
	    "\"envid\" is null"),
	E("secret null", "{\"envid\":\"e\",\"secret\":null,\"server\":\"h\"}",
	    "\"secret\" is null"),
	E("server null", "{\"envid\":\"e\",\"secret\":\"s\",\"server\":null}",
	    "\"server\" is null"),
	E("envid array",
	    "{\"envid\":[\"e\"],\"secret\":\"s\",\"server\":\"h\"}",
	    "\"envid\" must not be an array"),
	E("recipients string",
	    GOOD_HEAD "\"server\":\"h\",\"recipients\":\"a\"}",
	    "\"recipients\" is not an array"),
	E("json error", "{\"envid\":\"e\"", "offset 12: expected ',' or '}'"),
	E("number", "{\"envid\":1}",
	    "offset 9: expected a string, null or an array"),
	E("not an object", "[\"envid\"]", "offset 0: expected '{'"),
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
	struct keyring_entry e;
	char err[256] = "";
	int rc;

	memset(&e, 0, sizeof(e));
	rc = keyring_parse_line(c->line, strlen(c->line), &e, err, sizeof(err));
	if (c->err != NULL) {
		assert_int_equal(rc, -1);
		assert_string_equal(err, c->err);
		/* The entry is wiped on failure. */
		assert_string_equal(e.secret, "");
		return;
	}
	if (rc != 0)
		fail_msg("unexpected error: %s", err);
	assert_string_equal(e.envid, c->envid);
	assert_string_equal(e.secret, c->secret);
	assert_string_equal(e.server, c->server);
	assert_string_equal(e.mtqp, c->mtqp);
	assert_string_equal(e.submitted, c->submitted);
	assert_int_equal(e.nrecipients, c->nrecipients);
	keyring_entry_clear(&e);
	assert_string_equal(e.secret, "");
}

/* Each field one octet over its size is an error naming the field; at
 * the size it fits. */
struct long_case {
	const char *field;
	size_t size;
};

static const struct long_case long_cases[] = {
	{ "envid", MTQP_ENVID_TEXT_MAX + 1 },
	{ "secret", MTRK_SECRET_B64_SIZE },
	{ "server", KEYRING_HOST_MAX + 1 },
	{ "mtqp", KEYRING_HOST_MAX + 1 },
	{ "submitted", DATE_MAX },
};

static const char *
long_name(const void *row)
{
	return ((const struct long_case *)row)->field;
}

static void
test_long(void **state)
{
	const struct long_case *c = *state;
	struct keyring_entry e;
	struct buf b;
	char err[256], want[64];
	size_t len, i;

	memset(&e, 0, sizeof(e));
	buf_init(&b, 65536);
	for (len = c->size - 1; len <= c->size; len++) {
		buf_reset(&b);
		assert_int_equal(buf_addf(&b,
		                     "{\"envid\":\"e\",\"secret\":\"s\","
		                     "\"server\":\"h\",\"%s\":\"",
		                     c->field),
		    0);
		for (i = 0; i < len; i++)
			assert_int_equal(buf_addc(&b, 'x'), 0);
		assert_int_equal(buf_adds(&b, "\"}"), 0);
		if (len < c->size) {
			assert_int_equal(keyring_parse_line(b.data, b.len, &e,
			                     err, sizeof(err)),
			    0);
			keyring_entry_clear(&e);
		} else {
			assert_int_equal(keyring_parse_line(b.data, b.len, &e,
			                     err, sizeof(err)),
			    -1);
			snprintf(
			    want, sizeof(want), "\"%s\" is too long", c->field);
			assert_string_equal(err, want);
		}
	}
	buf_reset(&b);
}

static void
fill_entry(struct keyring_entry *e, const char *envid, const char *secret)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->envid, sizeof(e->envid), "%s", envid);
	snprintf(e->secret, sizeof(e->secret), "%s", secret);
	snprintf(e->server, sizeof(e->server), "mx.test:2525");
	snprintf(e->mtqp, sizeof(e->mtqp), "mx.test");
	snprintf(e->submitted, sizeof(e->submitted),
	    "Tue, 2 Jan 2024 10:00:00 +0000");
}

static void
test_format(void **state)
{
	static const char *const rcpts[] = { "a@d.test", "b\"q@d.test" };
	struct keyring_entry e, back;
	struct buf b;
	char err[256];
	size_t full;

	(void)state;
	fill_entry(&e, "id+2B1@h.test", "AAAA/+9z");
	memset(&back, 0, sizeof(back));
	buf_init(&b, 4096);
	assert_int_equal(keyring_format_line(&b, &e, rcpts, 2), 0);
	assert_string_equal(buf_cstr(&b),
	    "{\"envid\":\"id+2B1@h.test\",\"secret\":\"AAAA/+9z\","
	    "\"server\":\"mx.test:2525\",\"mtqp\":\"mx.test\","
	    "\"submitted\":\"Tue, 2 Jan 2024 10:00:00 +0000\","
	    "\"recipients\":[\"a@d.test\",\"b\\\"q@d.test\"]}\n");
	assert_int_equal(
	    keyring_parse_line(b.data, b.len - 1, &back, err, sizeof(err)), 0);
	assert_string_equal(back.envid, e.envid);
	assert_string_equal(back.secret, e.secret);
	assert_string_equal(back.server, e.server);
	assert_string_equal(back.mtqp, e.mtqp);
	assert_string_equal(back.submitted, e.submitted);
	assert_int_equal(back.nrecipients, 2);
	/* No recipients. */
	buf_reset(&b);
	full = b.len;
	buf_reset(&b);
	assert_int_equal(keyring_format_line(&b, &e, NULL, 0), 0);
	assert_non_null(strstr(buf_cstr(&b), "\"recipients\":[]}\n"));
	/* Too small a buffer: -1 and unchanged, at every size. */
	for (size_t max = 1; max < full; max++) {
		struct buf s;

		buf_init(&s, max);
		assert_int_equal(keyring_format_line(&s, &e, rcpts, 2), -1);
		assert_int_equal(s.len, 0);
		buf_reset(&s);
	}
	buf_reset(&b);
}

/*
 * Files
 */

static void
put_file(const char *path, const char *text, size_t n)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

struct lookup_case {
	const char *name;
	const char *text; /* NULL: no file */
	size_t len;
	const char *envid;
	int rc;
	const char *secret; /* when found */
	const char *err; /* when -1: after "<path>" */
};

#define L1 "{\"envid\":\"a@h\",\"secret\":\"s1\",\"server\":\"h\"}\n"
#define L2 "{\"envid\":\"b@h\",\"secret\":\"s2\",\"server\":\"h\"}\n"
#define L3 "{\"envid\":\"a@h\",\"secret\":\"s3\",\"server\":\"h\"}\n"
#define T(s) s, sizeof(s) - 1

static const struct lookup_case lookup_cases[] = {
	{ "missing file", NULL, 0, "a@h", 0, NULL, NULL },
	{ "empty file", T(""), "a@h", 0, NULL, NULL },
	{ "found first", T(L1 L2), "a@h", 1, "s1", NULL },
	{ "found second", T(L1 L2), "b@h", 1, "s2", NULL },
	{ "last wins", T(L1 L2 L3), "a@h", 1, "s3", NULL },
	{ "not found", T(L1 L2), "c@h", 0, NULL, NULL },
	{ "exact match only", T(L1), "A@h", 0, NULL, NULL },
	{ "no final newline",
	    T("{\"envid\":\"a@h\",\"secret\":\"s1\",\"server\":\"h\"}"), "a@h",
	    1, "s1", NULL },
	{ "crlf lines",
	    T("{\"envid\":\"a@h\",\"secret\":\"s1\",\"server\":\"h\"}\r\n"),
	    "a@h", 1, "s1", NULL },
	{ "empty lines skipped", T("\n\n" L1 "\n\r\n" L2), "b@h", 1, "s2",
	    NULL },
	{ "malformed line 1", T("{\"envid\":\"a@h\",\"secret\":\"x\"\n" L2),
	    "b@h", -1, NULL, ":1: offset 27: expected ',' or '}'" },
	{ "malformed after empty lines",
	    T("\n" L1 "\n"
	      "nonsense\n"),
	    "a@h", -1, NULL, ":4: offset 0: expected '{'" },
	{ "missing secret on line 2",
	    T("\n{\"envid\":\"a@h\",\"server\":\"h:25\"}\n"), "a@h", -1, NULL,
	    ":2: no \"secret\"" },
	{ "malformed after the match", T(L1 "{\n"), "a@h", -1, NULL,
	    ":2: offset 1: expected a member name" },
	{ "NUL octet", T(L1 "{\"envid\"\0}\n"), "a@h", -1, NULL,
	    ":2: NUL octet" },
	{ "blank line with spaces", T(L1 "   \n"), "a@h", -1, NULL,
	    ":2: offset 3: expected '{'" },
};

static const char *
lookup_name(const void *row)
{
	return ((const struct lookup_case *)row)->name;
}

static void
test_lookup(void **state)
{
	const struct lookup_case *c = *state;
	struct keyring_entry e;
	char path[128], err[512] = "", want[512];
	int rc;

	snprintf(path, sizeof(path), "%s/lookup", tmpdir);
	unlink(path);
	if (c->text != NULL)
		put_file(path, c->text, c->len);
	memset(&e, 'x', sizeof(e));
	rc = keyring_lookup(path, c->envid, &e, err, sizeof(err));
	if (rc == -1 && c->rc != -1)
		fail_msg("unexpected error: %s", err);
	assert_int_equal(rc, c->rc);
	if (rc == 1) {
		assert_string_equal(e.secret, c->secret);
		assert_string_equal(e.envid, c->envid);
	} else
		assert_string_equal(e.secret, ""); /* wiped */
	if (rc == -1) {
		snprintf(want, sizeof(want), "%s%s", path, c->err);
		assert_string_equal(err, want);
	}
	keyring_entry_clear(&e);
	unlink(path);
}

static void
test_lookup_files(void **state)
{
	struct keyring_entry e;
	char path[128], link[160], err[512], want[512];
	struct buf b;
	FILE *f;
	size_t i;

	(void)state;
	/* A directory is not a keyring. */
	snprintf(path, sizeof(path), "%s/adir", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(keyring_lookup(path, "a@h", &e, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: not a regular file", path);
	assert_string_equal(err, want);
	/* A symlink is refused (O_NOFOLLOW), not followed. */
	snprintf(path, sizeof(path), "%s/real", tmpdir);
	put_file(path, L1, sizeof(L1) - 1);
	snprintf(link, sizeof(link), "%s/link", tmpdir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(keyring_lookup(link, "a@h", &e, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: %s", link, strerror(ELOOP));
	assert_string_equal(err, want);
	/* A path through a regular file. */
	snprintf(link, sizeof(link), "%s/real/x", tmpdir);
	assert_int_equal(keyring_lookup(link, "a@h", &e, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: %s", link, strerror(ENOTDIR));
	assert_string_equal(err, want);
	/* A line one octet longer than KEYRING_LINE_MAX, after a good one. */
	buf_init(&b, KEYRING_LINE_MAX + 1024);
	assert_int_equal(buf_adds(&b, L1 "{\"envid\":\""), 0);
	for (i = b.len; i < sizeof(L1) - 1 + KEYRING_LINE_MAX + 1 - 2; i++)
		assert_int_equal(buf_addc(&b, 'x'), 0);
	assert_int_equal(buf_adds(&b, "\"}\n"), 0);
	put_file(path, b.data, b.len);
	assert_int_equal(keyring_lookup(path, "a@h", &e, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: line too long", path);
	assert_string_equal(err, want);
	buf_reset(&b);
	/* A file larger than KEYRING_FILE_MAX (sparse). */
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(ftruncate(fileno(f), (off_t)KEYRING_FILE_MAX + 1), 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(keyring_lookup(path, "a@h", &e, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: larger than %lu octets", path,
	    KEYRING_FILE_MAX);
	assert_string_equal(err, want);
	unlink(path);
}

static int
count_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void
test_append(void **state)
{
	static const char *const rcpts[] = { "a@d.test" };
	struct keyring_entry e, got;
	struct stat st;
	char dir[128], path[192], err[512], want[512];
	char text[4096];
	FILE *f;
	size_t n;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/home/.local/share/msgtrk", tmpdir);
	snprintf(path, sizeof(path), "%s/keyring", dir);
	fill_entry(&e, "one@h.test", "secret1");
	assert_int_equal(
	    keyring_append(path, &e, rcpts, 1, err, sizeof(err)), 0);
	/* Directories 0700, the file 0600, the lock file next to it. */
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(want, sizeof(want), "%s/home/.local", tmpdir);
	assert_int_equal(stat(want, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* keyring and keyring.lock, no temporary file left. */
	assert_int_equal(count_dir(dir), 2);
	assert_int_equal(
	    keyring_lookup(path, "one@h.test", &got, err, sizeof(err)), 1);
	assert_string_equal(got.secret, "secret1");
	assert_int_equal(got.nrecipients, 1);
	/* A file without its final newline, and a foreign line: both kept
	 * as they are; the new entry goes on a line of its own. */
	assert_non_null(f = fopen(path, "a"));
	fputs("{\"envid\":\"x@h\",\"secret\":\"sx\",\"server\":\"h\","
	      "\"extra\":\"kept\"}",
	    f);
	assert_int_equal(fclose(f), 0);
	fill_entry(&e, "two@h.test", "secret2");
	assert_int_equal(
	    keyring_append(path, &e, NULL, 0, err, sizeof(err)), 0);
	assert_non_null(f = fopen(path, "r"));
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	assert_non_null(
	    strstr(text, "\"extra\":\"kept\"}\n{\"envid\":\"two@h.test\""));
	assert_int_equal(text[n - 1], '\n');
	assert_int_equal(
	    keyring_lookup(path, "x@h", &got, err, sizeof(err)), 1);
	assert_int_equal(
	    keyring_lookup(path, "two@h.test", &got, err, sizeof(err)), 1);
	assert_string_equal(got.secret, "secret2");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* The rewrite is a rename: a hard link to the old file keeps the old
	 * content (the file was replaced, not written in place). */
	snprintf(want, sizeof(want), "%s/old", tmpdir);
	assert_int_equal(link(path, want), 0);
	fill_entry(&e, "three@h.test", "secret3");
	assert_int_equal(
	    keyring_append(path, &e, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(
	    keyring_lookup(want, "three@h.test", &got, err, sizeof(err)), 0);
	assert_int_equal(
	    keyring_lookup(path, "three@h.test", &got, err, sizeof(err)), 1);
	assert_int_equal(count_dir(dir), 2);
	unlink(want);
	keyring_entry_clear(&got);
}

static void
test_append_errors(void **state)
{
	struct keyring_entry e, got;
	char path[192], err[512], want[512], text[1024];
	struct stat st;
	FILE *f;
	size_t n;

	(void)state;
	fill_entry(&e, "e@h.test", "s");
	/* A parent that is a regular file. */
	snprintf(path, sizeof(path), "%s/plain", tmpdir);
	put_file(path, "x", 1);
	snprintf(path, sizeof(path), "%s/plain/sub/keyring", tmpdir);
	assert_int_equal(
	    keyring_append(path, &e, NULL, 0, err, sizeof(err)), -1);
	snprintf(
	    want, sizeof(want), "%s/plain/sub: %s", tmpdir, strerror(ENOTDIR));
	assert_string_equal(err, want);
	/* The keyring is a directory. */
	snprintf(path, sizeof(path), "%s/kdir", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(
	    keyring_append(path, &e, NULL, 0, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: not a regular file", path);
	assert_string_equal(err, want);
	/* The lock file is a symlink: refused. */
	snprintf(path, sizeof(path), "%s/lk", tmpdir);
	snprintf(want, sizeof(want), "%s/lk.lock", tmpdir);
	assert_int_equal(symlink("/nonexistent", want), 0);
	assert_int_equal(
	    keyring_append(path, &e, NULL, 0, err, sizeof(err)), -1);
	snprintf(text, sizeof(text), "%s: %s", want, strerror(ELOOP));
	assert_string_equal(err, text);
	assert_int_equal(lstat(path, &st), -1);
	/* A malformed existing file is kept as it is: append does not
	 * parse it (lookup reports it). */
	snprintf(path, sizeof(path), "%s/bad", tmpdir);
	put_file(path, "garbage\n", 8);
	assert_int_equal(
	    keyring_append(path, &e, NULL, 0, err, sizeof(err)), 0);
	assert_non_null(f = fopen(path, "r"));
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	assert_int_equal(
	    strncmp(text, "garbage\n{\"envid\":\"e@h.test\"", 27), 0);
	assert_int_equal(
	    keyring_lookup(path, "e@h.test", &got, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:1: offset 0: expected '{'", path);
	assert_string_equal(err, want);
	/* A file at the size limit: the append fails, the file stays. */
	snprintf(path, sizeof(path), "%s/full", tmpdir);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(ftruncate(fileno(f), (off_t)KEYRING_FILE_MAX - 10), 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(
	    keyring_append(path, &e, NULL, 0, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: would grow past %lu octets", path,
	    KEYRING_FILE_MAX);
	assert_string_equal(err, want);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, (off_t)KEYRING_FILE_MAX - 10);
	unlink(path);
}

/* Several processes append at once; the lock serialises them, so no
 * entry is lost. */
#define CONC_PROCS 8
#define CONC_EACH 25

static void
test_concurrent(void **state)
{
	struct keyring_entry e, got;
	char path[192], err[512], envid[64];
	pid_t pids[CONC_PROCS];
	int i, j, status, lines = 0, c;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/conc/keyring", tmpdir);
	for (i = 0; i < CONC_PROCS; i++) {
		pids[i] = fork();
		assert_true(pids[i] != -1);
		if (pids[i] == 0) {
			for (j = 0; j < CONC_EACH; j++) {
				snprintf(envid, sizeof(envid), "p%dm%d@h.test",
				    i, j);
				fill_entry(&e, envid, "s");
				if (keyring_append(path, &e, NULL, 0, err,
				        sizeof(err)) == -1) {
					fprintf(stderr, "%s\n", err);
					_exit(1);
				}
			}
			_exit(0);
		}
	}
	for (i = 0; i < CONC_PROCS; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_non_null(f = fopen(path, "r"));
	while ((c = fgetc(f)) != EOF)
		lines += c == '\n';
	fclose(f);
	assert_int_equal(lines, CONC_PROCS * CONC_EACH);
	for (i = 0; i < CONC_PROCS; i++)
		for (j = 0; j < CONC_EACH; j++) {
			snprintf(envid, sizeof(envid), "p%dm%d@h.test", i, j);
			assert_int_equal(
			    keyring_lookup(path, envid, &got, err, sizeof(err)),
			    1);
		}
}

struct home_case {
	const char *name;
	const char *home; /* NULL: unset; "LONG": 5000 octets */
	const char *path;
	const char *err;
};

static const struct home_case home_cases[] = {
	{ "normal", "/home/u", "/home/u/.local/share/msgtrk/keyring", NULL },
	{ "root", "/", "//.local/share/msgtrk/keyring", NULL },
	{ "unset", NULL, NULL,
	    "HOME is not set to an absolute path; use --keyring FILE" },
	{ "empty", "", NULL,
	    "HOME is not set to an absolute path; use --keyring FILE" },
	{ "relative", "home/u", NULL,
	    "HOME is not set to an absolute path; use --keyring FILE" },
	{ "too long", "LONG", NULL, "HOME is too long; use --keyring FILE" },
};

static const char *
home_name(const void *row)
{
	return ((const struct home_case *)row)->name;
}

static void
test_home(void **state)
{
	const struct home_case *c = *state;
	char *old = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	char out[4096], err[256], longh[5001];

	if (c->home == NULL)
		unsetenv("HOME");
	else if (strcmp(c->home, "LONG") == 0) {
		memset(longh, 'a', sizeof(longh) - 1);
		longh[0] = '/';
		longh[sizeof(longh) - 1] = '\0';
		setenv("HOME", longh, 1);
	} else
		setenv("HOME", c->home, 1);
	if (c->path != NULL) {
		assert_int_equal(
		    keyring_default_path(out, sizeof(out), err, sizeof(err)),
		    0);
		assert_string_equal(out, c->path);
	} else {
		assert_int_equal(
		    keyring_default_path(out, sizeof(out), err, sizeof(err)),
		    -1);
		assert_string_equal(err, c->err);
	}
	if (old != NULL)
		setenv("HOME", old, 1);
	else
		unsetenv("HOME");
	free(old);
}

static void
cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_keyring: could not remove %s\n", tmpdir);
}

int
main(void)
{
	const struct CMUnitTest once[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_lookup_files),
		cmocka_unit_test(test_append),
		cmocka_unit_test(test_append_errors),
		cmocka_unit_test(test_concurrent),
	};
	int failed = 0;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_keyring.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	failed += TABLE_RUN(
	    "keyring_parse_line", test_parse, parse_cases, parse_name);
	failed += TABLE_RUN("keyring_parse_line field too long", test_long,
	    long_cases, long_name);
	failed +=
	    TABLE_RUN("keyring_lookup", test_lookup, lookup_cases, lookup_name);
	failed +=
	    TABLE_RUN("keyring_default_path", test_home, home_cases, home_name);
	failed += cmocka_run_group_tests_name("keyring", once, NULL, NULL);
	cleanup();
	return failed;
}
