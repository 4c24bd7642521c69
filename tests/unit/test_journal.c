/*
 * test_journal: the queue's segment journal: round trips, torn writes at
 * every offset, corruption, rotation, failed writes.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/journal.h"
#include "table.h"

/* Failure injection (linked with -Wl,--wrap=fdatasync,--wrap=rename):
 * the next fail_* calls fail with EIO. */
static int fail_fdatasync, fail_rename;
int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
int __real_rename(const char *from, const char *to);
int __wrap_rename(const char *from, const char *to);

int
__wrap_fdatasync(int fd)
{
	if (__atomic_load_n(&fail_fdatasync, __ATOMIC_SEQ_CST) > 0) {
		__atomic_sub_fetch(&fail_fdatasync, 1, __ATOMIC_SEQ_CST);
		errno = EIO;
		return -1;
	}
	return __real_fdatasync(fd);
}

int
__wrap_rename(const char *from, const char *to)
{
	if (fail_rename > 0) {
		fail_rename--;
		errno = EIO;
		return -1;
	}
	return __real_rename(from, to);
}

struct seen {
	size_t n;
	uint8_t types[256];
	char payloads[256][64];
	struct journal_pos pos[256];
};

static int
collect(void *arg, uint8_t type, const void *payload, uint32_t len,
    const struct journal_pos *pos)
{
	struct seen *s = arg;

	if (s->n >= 256 || len >= 64)
		return -1;
	s->types[s->n] = type;
	memcpy(s->payloads[s->n], payload, len);
	s->payloads[s->n][len] = '\0';
	s->pos[s->n] = *pos;
	s->n++;
	return 0;
}

static char *
tmpdir(void)
{
	char tmpl[] = "/tmp/msgtrk-journal.XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static void
rmtree(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void
append_str(struct journal *j, uint8_t type, const char *s)
{
	struct iovec iov = { (void *)(uintptr_t)s, strlen(s) };
	struct journal_pos pos;

	assert_int_equal(journal_append(j, type, &iov, 1, &pos), 0);
	assert_int_equal(pos.len, strlen(s));
}

static struct journal *
reopen(const char *dir, struct seen *s, uint64_t *cut)
{
	char err[256];
	struct journal *j = journal_open(dir, 0, err, sizeof(err));

	assert_non_null(j);
	memset(s, 0, sizeof(*s));
	assert_int_equal(journal_replay(j, collect, s, cut), 0);
	return j;
}

static void
test_crc32c(void **state)
{
	(void)state;
	/* RFC 3720 §B.4 check value and vectors */
	assert_int_equal(journal_crc32c(0, "123456789", 9), 0xe3069283U);
	{
		unsigned char z[32] = { 0 }, f[32];

		memset(f, 0xff, sizeof(f));
		assert_int_equal(journal_crc32c(0, z, 32), 0x8a9136aaU);
		assert_int_equal(journal_crc32c(0, f, 32), 0x62a8ab43U);
	}
	/* incremental equals whole */
	assert_int_equal(
	    journal_crc32c(journal_crc32c(0, "12345", 5), "6789", 4),
	    0xe3069283U);
}

static void
test_round_trip(void **state)
{
	char *dir = tmpdir(), err[256], buf[64];
	struct journal *j;
	struct seen s;
	uint64_t cut;
	struct iovec iov[3] = { { "ab", 2 }, { "", 0 }, { "cde", 3 } };
	struct journal_pos pos;

	(void)state;
	j = journal_open(dir, 0, err, sizeof(err));
	assert_non_null(j);
	memset(&s, 0, sizeof(s));
	assert_int_equal(journal_replay(j, collect, &s, &cut), 0);
	assert_int_equal(s.n, 0);
	append_str(j, 1, "first");
	assert_int_equal(journal_append(j, 2, iov, 3, &pos), 0);
	append_str(j, 3, "");
	assert_int_equal(journal_sync(j), 0);
	/* read back by position */
	assert_int_equal(journal_read(j, &pos, buf), 0);
	assert_memory_equal(buf, "abcde", 5);
	journal_free(j);

	j = reopen(dir, &s, &cut);
	assert_int_equal(cut, 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.types[0], 1);
	assert_string_equal(s.payloads[0], "first");
	assert_int_equal(s.types[1], 2);
	assert_string_equal(s.payloads[1], "abcde");
	assert_int_equal(s.pos[1].off, pos.off);
	assert_string_equal(s.payloads[2], "");
	/* appends go on after the replayed records */
	append_str(j, 4, "fourth");
	assert_int_equal(journal_sync(j), 0);
	journal_free(j);
	j = reopen(dir, &s, &cut);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.payloads[3], "fourth");
	journal_free(j);
	rmtree(dir);
	free(dir);
}

/* A crash can stop the last write at any byte: every such cut must give
 * back exactly the complete records and cut the rest off. */
struct torn_case {
	int extra; /* bytes of the third record that reached the disk */
};

static struct torn_case torn_cases[JOURNAL_HDR_LEN + 6 + JOURNAL_TRAILER_LEN];

static void
test_torn(void **state)
{
	const struct torn_case *c = *state;
	char *dir = tmpdir(), err[256], path[512];
	struct journal *j;
	struct seen s;
	uint64_t cut;
	struct stat st;

	j = journal_open(dir, 0, err, sizeof(err));
	assert_non_null(j);
	memset(&s, 0, sizeof(s));
	assert_int_equal(journal_replay(j, collect, &s, &cut), 0);
	append_str(j, 1, "one");
	append_str(j, 1, "two");
	append_str(j, 1, "three!");
	assert_int_equal(journal_sync(j), 0);
	journal_free(j);
	snprintf(path, sizeof(path), "%s/seg-%016x", dir, 1);
	assert_int_equal(stat(path, &st), 0);
	/* keep the first two records and c->extra bytes of the third */
	assert_int_equal(
	    truncate(path,
	        st.st_size - (JOURNAL_HDR_LEN + 6 + JOURNAL_TRAILER_LEN) +
	            c->extra),
	    0);
	j = reopen(dir, &s, &cut);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.payloads[1], "two");
	assert_int_equal(cut, c->extra > 0 ? 1 : 0);
	/* the cut is durable and appends continue cleanly */
	append_str(j, 1, "four");
	assert_int_equal(journal_sync(j), 0);
	journal_free(j);
	j = reopen(dir, &s, &cut);
	assert_int_equal(cut, 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.payloads[2], "four");
	journal_free(j);
	rmtree(dir);
	free(dir);
}

/* Any flipped byte in the last record makes it not count. */
static void
test_corrupt_last(void **state)
{
	char *dir = tmpdir(), err[256], path[512];
	struct journal *j;
	struct seen s;
	uint64_t cut;
	struct stat st;
	off_t rec;
	int fd, i;

	(void)state;
	j = journal_open(dir, 0, err, sizeof(err));
	assert_non_null(j);
	memset(&s, 0, sizeof(s));
	assert_int_equal(journal_replay(j, collect, &s, &cut), 0);
	append_str(j, 1, "keep");
	append_str(j, 1, "flipme");
	assert_int_equal(journal_sync(j), 0);
	journal_free(j);
	snprintf(path, sizeof(path), "%s/seg-%016x", dir, 1);
	assert_int_equal(stat(path, &st), 0);
	rec = st.st_size - (JOURNAL_HDR_LEN + 6 + JOURNAL_TRAILER_LEN);
	for (i = 0; i < JOURNAL_HDR_LEN + 6 + JOURNAL_TRAILER_LEN; i++) {
		char dir2[300], cmd[700];
		unsigned char b;

		if (i == 6 || i == 7)
			continue; /* reserved bytes are not checked */
		snprintf(dir2, sizeof(dir2), "%s-copy", dir);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -r '%s' '%s'",
		    dir2, dir, dir2);
		assert_int_equal(system(cmd), 0);
		snprintf(path, sizeof(path), "%s/seg-%016x", dir2, 1);
		fd = open(path, O_RDWR);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &b, 1, rec + i), 1);
		b ^= 0x20;
		assert_int_equal(pwrite(fd, &b, 1, rec + i), 1);
		close(fd);
		j = reopen(dir2, &s, &cut);
		assert_int_equal(s.n, 1);
		assert_string_equal(s.payloads[0], "keep");
		assert_int_equal(cut, 1);
		journal_free(j);
		rmtree(dir2);
	}
	rmtree(dir);
	free(dir);
}

static void
test_rotation_and_drop(void **state)
{
	char *dir = tmpdir(), err[256], rec[40];
	struct journal *j;
	struct seen s;
	uint64_t cut, segs;
	int i;

	(void)state;
	/* segments of 128 bytes: a few records each */
	j = journal_open(dir, 128, err, sizeof(err));
	assert_non_null(j);
	memset(&s, 0, sizeof(s));
	assert_int_equal(journal_replay(j, collect, &s, &cut), 0);
	for (i = 0; i < 20; i++) {
		snprintf(rec, sizeof(rec), "record-%02d", i);
		append_str(j, (uint8_t)i, rec);
	}
	assert_int_equal(journal_sync(j), 0);
	segs = journal_newest(j) - journal_oldest(j) + 1;
	assert_true(segs > 3);
	journal_free(j);
	j = journal_open(dir, 128, err, sizeof(err));
	assert_non_null(j);
	memset(&s, 0, sizeof(s));
	assert_int_equal(journal_replay(j, collect, &s, &cut), 0);
	assert_int_equal(s.n, 20);
	for (i = 0; i < 20; i++) {
		snprintf(rec, sizeof(rec), "record-%02d", i);
		assert_string_equal(s.payloads[i], rec);
		assert_int_equal(s.types[i], i);
	}
	/* drop oldest first, never the current one */
	while (journal_oldest(j) != journal_newest(j))
		assert_int_equal(journal_drop_oldest(j), 0);
	errno = 0;
	assert_int_equal(journal_drop_oldest(j), -1);
	assert_int_equal(errno, EBUSY);
	assert_int_equal(journal_rotate(j), 0);
	assert_int_equal(journal_drop_oldest(j), 0);
	journal_free(j);
	j = journal_open(dir, 128, err, sizeof(err));
	assert_non_null(j);
	memset(&s, 0, sizeof(s));
	assert_int_equal(journal_replay(j, collect, &s, &cut), 0);
	assert_int_equal(s.n, 0);
	journal_free(j);
	rmtree(dir);
	free(dir);
}

/* The id is made once, durably, and kept; a bad id file is refused. */
static void
test_id(void **state)
{
	char *dir = tmpdir(), err[256], id[JOURNAL_ID_LEN + 1], path[512];
	struct journal *j;
	struct seen s;
	uint64_t cut;
	FILE *f;

	(void)state;
	j = reopen(dir, &s, &cut);
	assert_int_equal(strlen(journal_id(j)), JOURNAL_ID_LEN);
	snprintf(id, sizeof(id), "%s", journal_id(j));
	journal_free(j);
	j = reopen(dir, &s, &cut);
	assert_string_equal(journal_id(j), id);
	journal_free(j);
	/* a journal made elsewhere has another */
	{
		char *other = tmpdir();

		j = reopen(other, &s, &cut);
		assert_string_not_equal(journal_id(j), id);
		journal_free(j);
		rmtree(other);
		free(other);
	}
	snprintf(path, sizeof(path), "%s/id", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs("not an id\n", f);
	fclose(f);
	assert_null(journal_open(dir, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "not a journal id"));
	rmtree(dir);
	free(dir);
}

/* A cursor reads what was appended, across segments, up to the limit it
 * is given, and goes on from where it stopped. */
static void
test_cursor(void **state)
{
	char *dir = tmpdir(), err[256], rec[40];
	struct journal *j;
	struct journal_cursor *c;
	struct journal_pos pos;
	const void *p;
	uint8_t type;
	uint64_t cut, seg, off, mid_seg = 0, mid_off = 0;
	int i, n;

	(void)state;
	j = journal_open(dir, 128, err, sizeof(err));
	assert_non_null(j);
	{
		struct seen s;

		memset(&s, 0, sizeof(s));
		assert_int_equal(journal_replay(j, collect, &s, &cut), 0);
	}
	for (i = 0; i < 20; i++) {
		snprintf(rec, sizeof(rec), "record-%02d", i);
		append_str(j, (uint8_t)i, rec);
		if (i == 9) {
			mid_seg = journal_newest(j);
			mid_off = journal_end(j);
		}
	}
	assert_int_equal(journal_sync(j), 0);
	assert_true(journal_newest(j) > mid_seg);
	assert_non_null(c = journal_cursor_new(dir, journal_oldest(j), 0));
	/* up to the middle only */
	for (n = 0;
	     journal_cursor_next(c, mid_seg, mid_off, &type, &p, &pos) == 1;
	     n++) {
		snprintf(rec, sizeof(rec), "record-%02d", n);
		assert_int_equal(pos.len, strlen(rec));
		assert_memory_equal(p, rec, pos.len);
		assert_int_equal(type, n);
	}
	assert_int_equal(n, 10);
	journal_cursor_tell(c, &seg, &off);
	assert_int_equal(seg, mid_seg);
	assert_int_equal(off, mid_off);
	/* then to the end */
	while (journal_cursor_next(c, journal_newest(j), journal_end(j), &type,
	           &p, &pos) == 1) {
		snprintf(rec, sizeof(rec), "record-%02d", n);
		assert_memory_equal(p, rec, pos.len);
		n++;
	}
	assert_int_equal(n, 20);
	assert_int_equal(journal_cursor_skipped(c), 0);
	journal_cursor_free(c);
	/* a cursor made at a position goes on from there */
	assert_non_null(c = journal_cursor_new(dir, mid_seg, mid_off));
	assert_int_equal(journal_cursor_next(c, journal_newest(j),
	                     journal_end(j), &type, &p, &pos),
	    1);
	assert_memory_equal(p, "record-10", 9);
	journal_cursor_free(c);
	/* a segment that is gone below the limit is an error */
	assert_int_equal(journal_drop_oldest(j), 0);
	assert_non_null(c = journal_cursor_new(dir, journal_oldest(j) - 1, 0));
	assert_int_equal(journal_cursor_next(c, journal_newest(j),
	                     journal_end(j), &type, &p, &pos),
	    -1);
	journal_cursor_free(c);
	journal_free(j);
	rmtree(dir);
	free(dir);
}

/* Counts this process's open descriptors. */
static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1; /* opendir's own */
}

/* A cursor reads many records of one segment from a window, and never
 * keeps octets past the limit it was given: a record beyond it that
 * changes before the limit reaches it (a write still going on) is read
 * as it is then.  A record larger than the window is read whole. */
static void
test_cursor_window(void **state)
{
	char *dir = tmpdir(), err[256], path[600], rec[40];
	struct journal *j;
	struct journal_cursor *c;
	struct journal_pos pos, bpos;
	struct iovec iov;
	const void *p;
	uint8_t type;
	uint64_t cut, lim;
	char *big;
	int i, n = 0, fd;
	size_t bigsize = 600 * 1024;

	(void)state;
	assert_non_null(j = journal_open(dir, 0, err, sizeof(err)));
	{
		struct seen s;

		memset(&s, 0, sizeof(s));
		assert_int_equal(journal_replay(j, collect, &s, &cut), 0);
	}
	for (i = 0; i < 1000; i++) {
		snprintf(rec, sizeof(rec), "record-%04d", i);
		append_str(j, 1, rec);
	}
	lim = journal_end(j);
	iov.iov_base = "beyond the limit";
	iov.iov_len = strlen(iov.iov_base);
	assert_int_equal(journal_append(j, 2, &iov, 1, &bpos), 0);
	assert_int_equal(journal_sync(j), 0);
	/* the record past the limit is torn while the cursor reads */
	snprintf(path, sizeof(path), "%s/seg-%016llx", dir,
	    (unsigned long long)journal_newest(j));
	assert_true((fd = open(path, O_RDWR)) >= 0);
	assert_int_equal(pwrite(fd, "XXXX", 4, (off_t)bpos.off), 4);
	assert_non_null(c = journal_cursor_new(dir, journal_oldest(j), 0));
	while (journal_cursor_next(
	           c, journal_newest(j), lim, &type, &p, &pos) == 1) {
		snprintf(rec, sizeof(rec), "record-%04d", n++);
		assert_int_equal(pos.len, strlen(rec));
		assert_memory_equal(p, rec, pos.len);
	}
	assert_int_equal(n, 1000);
	/* and whole again when the limit reaches it */
	assert_int_equal(pwrite(fd, "beyo", 4, (off_t)bpos.off), 4);
	close(fd);
	assert_int_equal(journal_cursor_next(c, journal_newest(j),
	                     journal_end(j), &type, &p, &pos),
	    1);
	assert_int_equal(type, 2);
	assert_memory_equal(p, "beyond the limit", 16);
	/* larger than the window */
	assert_non_null(big = malloc(bigsize));
	for (i = 0; i < (int)bigsize; i++)
		big[i] = (char)('a' + i % 26);
	iov.iov_base = big;
	iov.iov_len = bigsize;
	assert_int_equal(journal_append(j, 3, &iov, 1, &bpos), 0);
	append_str(j, 4, "after the big one");
	assert_int_equal(journal_sync(j), 0);
	assert_int_equal(journal_cursor_next(c, journal_newest(j),
	                     journal_end(j), &type, &p, &pos),
	    1);
	assert_int_equal(type, 3);
	assert_int_equal(pos.len, bigsize);
	assert_memory_equal(p, big, bigsize);
	assert_int_equal(journal_cursor_next(c, journal_newest(j),
	                     journal_end(j), &type, &p, &pos),
	    1);
	assert_int_equal(type, 4);
	assert_int_equal(journal_cursor_next(c, journal_newest(j),
	                     journal_end(j), &type, &p, &pos),
	    0);
	journal_cursor_free(c);
	free(big);
	journal_free(j);
	rmtree(dir);
	free(dir);
}

/* journal_read() keeps a descriptor per segment it read (no open and
 * close per read), and closes it when the segment is dropped. */
static void
test_read_fds(void **state)
{
	char *dir = tmpdir(), err[256], out[64];
	struct journal *j;
	struct journal_pos pos[3];
	struct iovec iov;
	uint64_t cut;
	int base, i;

	(void)state;
	assert_non_null(j = journal_open(dir, 128, err, sizeof(err)));
	{
		struct seen s;

		memset(&s, 0, sizeof(s));
		assert_int_equal(journal_replay(j, collect, &s, &cut), 0);
	}
	for (i = 0; i < 3; i++) {
		/* 128-octet segments: one record each */
		snprintf(out, sizeof(out), "%050d", i);
		iov.iov_base = out;
		iov.iov_len = strlen(out);
		assert_int_equal(journal_append(j, 1, &iov, 1, &pos[i]), 0);
	}
	assert_int_equal(journal_sync(j), 0);
	assert_true(pos[0].seg != pos[1].seg);
	base = open_fds();
	for (i = 0; i < 10; i++) {
		memset(out, 0, sizeof(out));
		assert_int_equal(journal_read(j, &pos[0], out), 0);
		assert_memory_equal(out, "000", 3);
	}
	assert_int_equal(open_fds(), base + 1);
	assert_int_equal(journal_read(j, &pos[1], out), 0);
	assert_int_equal(open_fds(), base + 2);
	assert_int_equal(journal_drop_oldest(j), 0);
	assert_int_equal(open_fds(), base + 1);
	assert_int_equal(journal_read(j, &pos[1], out), 0);
	assert_int_equal(open_fds(), base + 1);
	/* a dropped segment cannot be read */
	assert_int_equal(journal_read(j, &pos[0], out), -1);
	journal_free(j);
	/* and the directory and the newest segment's */
	assert_int_equal(open_fds(), base - 2);
	rmtree(dir);
	free(dir);
}

static void
test_leftovers_and_bad_headers(void **state)
{
	char *dir = tmpdir(), err[256], path[512];
	struct journal *j;
	FILE *f;

	(void)state;
	/* a tmp- file from a crash while making a segment is removed */
	snprintf(path, sizeof(path), "%s/tmp-%016x", dir, 7);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	j = journal_open(dir, 0, err, sizeof(err));
	assert_non_null(j);
	journal_free(j);
	assert_int_equal(access(path, F_OK), -1);
	/* a segment whose header is not ours */
	snprintf(path, sizeof(path), "%s/seg-%016x", dir, 2);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("this is not a segment header at all....", f);
	fclose(f);
	assert_null(journal_open(dir, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "not a queue segment"));
	/* a segment from a newer format */
	f = fopen(path, "w");
	assert_non_null(f);
	fwrite("MSGTRKQ\n\x09\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
	    1, 32, f);
	fclose(f);
	assert_null(journal_open(dir, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "version 9"));
	rmtree(dir);
	free(dir);
	/* a directory that cannot be made */
	assert_null(journal_open("/proc/no/such/dir", 0, err, sizeof(err)));
	assert_non_null(strstr(err, "/proc/no/such/dir"));
}

/* A write that fails half-way leaves no partial record behind. */
static void
test_failed_write(void **state)
{
	char *dir = tmpdir(), err[256], big[8192];
	struct journal *j;
	struct seen s;
	uint64_t cut;
	struct rlimit old, lim;
	struct iovec iov = { big, sizeof(big) };
	struct journal_pos pos;

	(void)state;
	memset(big, 'x', sizeof(big));
	j = journal_open(dir, 0, err, sizeof(err));
	assert_non_null(j);
	memset(&s, 0, sizeof(s));
	assert_int_equal(journal_replay(j, collect, &s, &cut), 0);
	append_str(j, 1, "before");
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 4096; /* the file may not grow past 4 KiB */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	errno = 0;
	assert_int_equal(journal_append(j, 1, &iov, 1, &pos), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	append_str(j, 1, "after");
	assert_int_equal(journal_sync(j), 0);
	journal_free(j);
	j = reopen(dir, &s, &cut);
	assert_int_equal(cut, 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.payloads[0], "before");
	assert_string_equal(s.payloads[1], "after");
	journal_free(j);
	rmtree(dir);
	free(dir);
}

/* msgtrk queue reads a live daemon's journal: it must change nothing. */
static void
test_readonly(void **state)
{
	char *dir = tmpdir(), err[256], path[512], tmp[512];
	struct journal *j;
	struct seen s;
	uint64_t cut;
	struct stat st, st2;
	struct iovec iov = { "x", 1 };
	struct journal_pos pos;
	FILE *f;

	(void)state;
	/* an empty directory: nothing to read, nothing created */
	j = journal_open_readonly(dir, err, sizeof(err));
	assert_non_null(j);
	memset(&s, 0, sizeof(s));
	assert_int_equal(journal_replay(j, collect, &s, &cut), 0);
	assert_int_equal(s.n, 0);
	journal_free(j);
	snprintf(path, sizeof(path), "%s/seg-%016x", dir, 1);
	assert_int_equal(access(path, F_OK), -1);
	/* a torn tail is counted, not cut; a tmp- file stays */
	j = journal_open(dir, 0, err, sizeof(err));
	assert_non_null(j);
	memset(&s, 0, sizeof(s));
	assert_int_equal(journal_replay(j, collect, &s, &cut), 0);
	append_str(j, 1, "one");
	assert_int_equal(journal_sync(j), 0);
	journal_free(j);
	f = fopen(path, "a");
	assert_non_null(f);
	fputs("MQR1 torn", f);
	fclose(f);
	snprintf(tmp, sizeof(tmp), "%s/tmp-%016x", dir, 2);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(stat(path, &st), 0);
	j = journal_open_readonly(dir, err, sizeof(err));
	assert_non_null(j);
	memset(&s, 0, sizeof(s));
	assert_int_equal(journal_replay(j, collect, &s, &cut), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(cut, 1);
	errno = 0;
	assert_int_equal(journal_append(j, 1, &iov, 1, &pos), -1);
	assert_int_equal(errno, EROFS);
	journal_free(j);
	assert_int_equal(stat(path, &st2), 0);
	assert_int_equal(st.st_size, st2.st_size);
	assert_int_equal(access(tmp, F_OK), 0);
	/* a missing directory is an error, not created */
	assert_null(
	    journal_open_readonly("/nonexistent/msgtrk", err, sizeof(err)));
	rmtree(dir);
	free(dir);
}

/* A failed fdatasync: what reached the disk is unknown, so the journal
 * refuses every later append and sync (PostgreSQL's "fsyncgate" lesson);
 * a restart replays what is there. */
static void
test_sync_failure(void **state)
{
	char *dir = tmpdir(), err[256];
	struct journal *j;
	struct seen s;
	uint64_t cut;
	struct iovec iov = { "x", 1 };
	struct journal_pos pos;

	(void)state;
	j = journal_open(dir, 0, err, sizeof(err));
	assert_non_null(j);
	memset(&s, 0, sizeof(s));
	assert_int_equal(journal_replay(j, collect, &s, &cut), 0);
	append_str(j, 1, "acked");
	assert_int_equal(journal_sync(j), 0);
	append_str(j, 1, "unacked");
	fail_fdatasync = 1;
	errno = 0;
	assert_int_equal(journal_sync(j), -1);
	assert_int_equal(errno, EIO);
	/* broken for good: no retry that would pretend it worked */
	assert_int_equal(journal_append(j, 1, &iov, 1, &pos), -1);
	assert_int_equal(errno, EIO);
	assert_int_equal(journal_sync(j), -1);
	journal_free(j);
	/* a restart finds the acknowledged record (and maybe the other) */
	j = reopen(dir, &s, &cut);
	assert_true(s.n >= 1);
	assert_string_equal(s.payloads[0], "acked");
	journal_free(j);
	rmtree(dir);
	free(dir);
}

/* A segment that cannot be renamed into place is not used, leaves no
 * tmp- file, and the next append tries again. */
static void
test_rename_failure(void **state)
{
	char *dir = tmpdir(), err[256], cmd[512];
	struct journal *j;
	struct seen s;
	uint64_t cut;
	struct iovec iov = { "0123456789012345678901234567890123456789", 40 };
	struct journal_pos pos;
	int i;

	(void)state;
	/* 32-octet header + two 60-octet records fill 152 of 160 */
	j = journal_open(dir, 160, err, sizeof(err));
	assert_non_null(j);
	memset(&s, 0, sizeof(s));
	assert_int_equal(journal_replay(j, collect, &s, &cut), 0);
	assert_int_equal(journal_append(j, 1, &iov, 1, &pos), 0);
	assert_int_equal(journal_append(j, 1, &iov, 1, &pos), 0);
	assert_int_equal(journal_newest(j), 1);
	fail_rename = 1;
	errno = 0;
	assert_int_equal(journal_append(j, 1, &iov, 1, &pos), -1);
	assert_int_equal(errno, EIO);
	assert_int_equal(journal_newest(j), 1);
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls '%s' | grep tmp-)\"", dir);
	assert_int_equal(system(cmd), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(journal_append(j, 1, &iov, 1, &pos), 0);
	assert_int_equal(journal_sync(j), 0);
	assert_true(journal_newest(j) > 1);
	journal_free(j);
	j = reopen(dir, &s, &cut);
	assert_int_equal(s.n, 5);
	journal_free(j);
	rmtree(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_corrupt_last),
		cmocka_unit_test(test_rotation_and_drop),
		cmocka_unit_test(test_id),
		cmocka_unit_test(test_cursor),
		cmocka_unit_test(test_cursor_window),
		cmocka_unit_test(test_read_fds),
		cmocka_unit_test(test_leftovers_and_bad_headers),
		cmocka_unit_test(test_failed_write),
		cmocka_unit_test(test_readonly),
		cmocka_unit_test(test_sync_failure),
		cmocka_unit_test(test_rename_failure),
	};
	size_t i;
	int failed = 0;

	for (i = 0; i < sizeof(torn_cases) / sizeof(torn_cases[0]); i++)
		torn_cases[i].extra = (int)i;
	failed += cmocka_run_group_tests_name("journal", tests, NULL, NULL);
	failed += TABLE_RUN("journal_torn", test_torn, torn_cases, NULL);
	return failed;
}
