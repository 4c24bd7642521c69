/*
 * journal: append-only segment files with group-commit syncs.  See
 * journal.h for the format and the rules.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue/journal.h"

#define SEG_MAGIC "MSGTRKQ\n"
#define REC_MAGIC 0x3152514dU /* "MQR1" little-endian */
#define REC_END 0x21444e45U /* "END!" little-endian */
#define SEG_NAME_FMT "seg-%016" PRIx64
#define SEG_NAME_LEN 20
/* Records are read back with one allocation; bound it by the format. */
#define REPLAY_IOV_MAX 64

/* Descriptors journal_read() keeps open, one per segment read lately:
 * without them every body piece cost an open and a close. */
#define JOURNAL_RFDS 8

struct journal_rfd {
	uint64_t seg;
	int fd; /* -1: a free slot */
	unsigned int refs; /* reads using it now */
	int dropped; /* its segment is gone: close when refs is 0 */
	uint64_t used; /* for eviction: the least lately used goes */
};

struct journal {
	char *dir;
	int dfd; /* the directory, for fsync after renames */
	uint64_t segsize;
	uint64_t *segs; /* segment numbers, ascending */
	size_t nsegs, capsegs;
	int fd; /* the newest segment, for appends */
	uint64_t len; /* its length: where the next record goes */
	int broken; /* a sync failed: no more appends */
	int readonly; /* journal_open_readonly() */
	char id[JOURNAL_ID_LEN + 1]; /* "" if none (read-only, never made) */
	/* journal_read()'s descriptors, under rmtx (readers run on any
	 * thread; the writer drops segments) */
	pthread_mutex_t rmtx;
	struct journal_rfd rfd[JOURNAL_RFDS];
	uint64_t rclock;
};

/* Octets a cursor reads at once: records are read from this window
 * rather than with three preads each (header, payload, trailer). */
#define CURSOR_WINDOW (256 * 1024)

struct journal_cursor {
	char *dir;
	uint64_t seg, off; /* where the next record starts */
	int fd; /* segment seg, or -1 */
	unsigned char *payload;
	size_t cap;
	uint64_t skipped; /* segments left early (corruption) */
	/* segment seg's octets [win_off, win_off + win_len), read ahead */
	unsigned char *win;
	uint64_t win_off;
	size_t win_len;
	uint64_t seg_size; /* a finished segment's size, 0: not known */
};

static uint32_t crc_table[256];

static void
crc_init(void)
{
	uint32_t i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78U : c >> 1;
		crc_table[i] = c;
	}
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const unsigned char *p, size_t n)
{
	uint64_t c = crc;

	for (; n >= 8; n -= 8, p += 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	crc = (uint32_t)c;
	for (; n > 0; n--, p++)
		crc = __builtin_ia32_crc32qi(crc, *p);
	return crc;
}
#endif

uint32_t
journal_crc32c(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *s = p;
	static int hw = -1;

	crc = ~crc;
#if defined(__x86_64__)
	if (hw == -1)
		hw = __builtin_cpu_supports("sse4.2");
	if (hw)
		return ~crc32c_hw(crc, s, n);
#endif
	if (crc_table[1] == 0)
		crc_init();
	for (; n > 0; n--, s++)
		crc = crc_table[(crc ^ *s) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void
put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void
seg_path(const struct journal *j, uint64_t seg, char *out, size_t outsize)
{
	snprintf(out, outsize, "%s/" SEG_NAME_FMT, j->dir, seg);
}

static int
seg_push(struct journal *j, uint64_t seg)
{
	if (j->nsegs == j->capsegs) {
		size_t ncap = j->capsegs ? j->capsegs * 2 : 16;
		uint64_t *p = realloc(j->segs, ncap * sizeof(*p));

		if (p == NULL)
			return -1;
		j->segs = p;
		j->capsegs = ncap;
	}
	j->segs[j->nsegs++] = seg;
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Writes all of iov at off, looping over short writes. */
static int
pwritev_all(int fd, struct iovec *iov, int n, uint64_t off)
{
	while (n > 0) {
		ssize_t w =
		    pwritev(fd, iov, n > IOV_MAX ? IOV_MAX : n, (off_t)off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		off += (uint64_t)w;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int
pread_all(int fd, void *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t r = pread(fd, p, n, (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		p = (char *)p + r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* Makes segment seg: tmp file with its header, fsync, rename, fsync the
 * directory; then opens it for appends. */
static int
seg_create(struct journal *j, uint64_t seg)
{
	unsigned char hdr[JOURNAL_SEG_HDR_LEN];
	char tmp[4096], path[4096];
	struct iovec iov = { hdr, sizeof(hdr) };
	int fd;

	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, SEG_MAGIC, 8);
	put32(hdr + 8, JOURNAL_VERSION);
	put64(hdr + 16, seg);
	put64(hdr + 24, (uint64_t)time(NULL));
	snprintf(tmp, sizeof(tmp), "%s/tmp-" SEG_NAME_FMT, j->dir, seg);
	seg_path(j, seg, path, sizeof(path));
	if ((fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) ==
	    -1)
		return -1;
	if (pwritev_all(fd, &iov, 1, 0) == -1 || fsync(fd) == -1 ||
	    rename(tmp, path) == -1 || fsync(j->dfd) == -1) {
		int e = errno;

		close(fd);
		unlink(tmp);
		errno = e;
		return -1;
	}
	if (seg_push(j, seg) == -1) {
		close(fd);
		return -1;
	}
	if (j->fd != -1)
		close(j->fd);
	j->fd = fd;
	j->len = JOURNAL_SEG_HDR_LEN;
	return 0;
}

/* Checks a segment's header; returns its fd (read-write) or -1. */
static int
seg_open(struct journal *j, uint64_t seg, char *err, size_t errsize)
{
	unsigned char hdr[JOURNAL_SEG_HDR_LEN];
	char path[4096];
	int fd;

	seg_path(j, seg, path, sizeof(path));
	if ((fd = open(path, (j->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC)) ==
	    -1) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (pread_all(fd, hdr, sizeof(hdr), 0) == -1 ||
	    memcmp(hdr, SEG_MAGIC, 8) != 0 || get64(hdr + 16) != seg) {
		snprintf(err, errsize, "%s: not a queue segment", path);
		close(fd);
		errno = EINVAL;
		return -1;
	}
	if (get32(hdr + 8) != JOURNAL_VERSION) {
		snprintf(err, errsize,
		    "%s: queue format version %" PRIu32
		    " (this msgtrkd reads %d)",
		    path, get32(hdr + 8), JOURNAL_VERSION);
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

/* Reads <dir>/id, making it (durably) when missing and writable: a random
 * 128-bit name that stays with the journal, so a store can tell this
 * journal's positions from another's (a rebuilt data_dir starts a new
 * journal at segment 1). */
static int
id_load(struct journal *j, char *err, size_t errsize)
{
	unsigned char rnd[JOURNAL_ID_LEN / 2];
	char buf[JOURNAL_ID_LEN + 2];
	ssize_t n;
	size_t i;
	int fd;

	if ((fd = openat(j->dfd, "id", O_RDONLY | O_CLOEXEC)) != -1) {
		n = pread(fd, buf, sizeof(buf), 0);
		close(fd);
		if (n < JOURNAL_ID_LEN ||
		    (n > JOURNAL_ID_LEN && buf[JOURNAL_ID_LEN] != '\n')) {
			snprintf(
			    err, errsize, "%s/id: not a journal id", j->dir);
			errno = EINVAL;
			return -1;
		}
		for (i = 0; i < JOURNAL_ID_LEN; i++)
			if (strchr("0123456789abcdef", buf[i]) == NULL ||
			    buf[i] == '\0') {
				snprintf(err, errsize,
				    "%s/id: not a journal id", j->dir);
				errno = EINVAL;
				return -1;
			}
		memcpy(j->id, buf, JOURNAL_ID_LEN);
		j->id[JOURNAL_ID_LEN] = '\0';
		return 0;
	}
	if (errno != ENOENT) {
		snprintf(err, errsize, "%s/id: %s", j->dir, strerror(errno));
		return -1;
	}
	if (j->readonly)
		return 0;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		snprintf(err, errsize, "getrandom: %s", strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(buf + 2 * i, 3, "%02x", rnd[i]);
	buf[JOURNAL_ID_LEN] = '\n';
	if ((fd = openat(j->dfd, "id.tmp",
	         O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1 ||
	    pwrite(fd, buf, JOURNAL_ID_LEN + 1, 0) != JOURNAL_ID_LEN + 1 ||
	    fsync(fd) == -1 || renameat(j->dfd, "id.tmp", j->dfd, "id") == -1 ||
	    fsync(j->dfd) == -1) {
		snprintf(err, errsize, "%s/id: %s", j->dir, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	memcpy(j->id, buf, JOURNAL_ID_LEN);
	j->id[JOURNAL_ID_LEN] = '\0';
	return 0;
}

static struct journal *
journal_open_mode(const char *dir, uint64_t segment_size, int readonly,
    char *err, size_t errsize)
{
	struct journal *j;
	struct dirent *de;
	DIR *d;

	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->dir = strdup(dir)) == NULL) {
		snprintf(err, errsize, "out of memory");
		free(j);
		return NULL;
	}
	j->fd = -1;
	j->readonly = readonly;
	pthread_mutex_init(&j->rmtx, NULL);
	for (size_t i = 0; i < JOURNAL_RFDS; i++)
		j->rfd[i].fd = -1;
	j->segsize = segment_size ? segment_size : JOURNAL_SEGMENT_SIZE;
	if (!readonly && mkdir(dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errsize, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	if ((j->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		snprintf(err, errsize, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	if ((d = fdopendir(dup(j->dfd))) == NULL) {
		snprintf(err, errsize, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	while ((de = readdir(d)) != NULL) {
		char *end;
		uint64_t seg;

		if (strncmp(de->d_name, "tmp-", 4) == 0) {
			/* never renamed: a crash while making a segment */
			if (!readonly)
				unlinkat(j->dfd, de->d_name, 0);
			continue;
		}
		if (strncmp(de->d_name, "seg-", 4) != 0 ||
		    strlen(de->d_name) != SEG_NAME_LEN)
			continue;
		errno = 0;
		seg = strtoull(de->d_name + 4, &end, 16);
		if (*end != '\0' || errno != 0)
			continue;
		if (seg_push(j, seg) == -1) {
			closedir(d);
			snprintf(err, errsize, "out of memory");
			goto fail;
		}
	}
	closedir(d);
	if (j->nsegs > 1)
		qsort(j->segs, j->nsegs, sizeof(*j->segs), cmp_u64);
	if (id_load(j, err, errsize) == -1)
		goto fail;
	if (j->nsegs == 0 && readonly) {
		/* an empty queue: nothing to read */
	} else if (j->nsegs == 0) {
		if (seg_create(j, 1) == -1) {
			snprintf(err, errsize,
			    "%s: cannot create a segment: %s", dir,
			    strerror(errno));
			goto fail;
		}
	} else {
		struct stat st;
		uint64_t newest = j->segs[j->nsegs - 1];

		if ((j->fd = seg_open(j, newest, err, errsize)) == -1)
			goto fail;
		if (fstat(j->fd, &st) == -1) {
			snprintf(err, errsize, "%s: %s", dir, strerror(errno));
			goto fail;
		}
		j->len = (uint64_t)st.st_size;
	}
	return j;
fail:
	journal_free(j);
	return NULL;
}

struct journal *
journal_open(const char *dir, uint64_t segment_size, char *err, size_t errsize)
{
	return journal_open_mode(dir, segment_size, 0, err, errsize);
}

struct journal *
journal_open_readonly(const char *dir, char *err, size_t errsize)
{
	return journal_open_mode(dir, 0, 1, err, errsize);
}

void
journal_free(struct journal *j)
{
	size_t i;

	if (j == NULL)
		return;
	for (i = 0; i < JOURNAL_RFDS; i++)
		if (j->rfd[i].fd != -1)
			close(j->rfd[i].fd);
	pthread_mutex_destroy(&j->rmtx);
	if (j->fd != -1)
		close(j->fd);
	if (j->dfd > 0)
		close(j->dfd);
	free(j->segs);
	free(j->dir);
	free(j);
}

/* Reads the record at off of a segment of size octets into *payload
 * (grown as needed, *cap its size).  Returns 1 with the header's type and
 * length, 0 if no intact record starts there (the end of the segment, or
 * a torn or corrupt tail), -1 on I/O error or ENOMEM. */
static int
read_record(int fd, uint64_t off, uint64_t size, unsigned char **payload,
    size_t *cap, uint8_t *type_out, uint32_t *len_out)
{
	unsigned char hdr[JOURNAL_HDR_LEN], trl[JOURNAL_TRAILER_LEN];
	uint32_t len, crc;

	if (off + JOURNAL_HDR_LEN + JOURNAL_TRAILER_LEN > size)
		return 0;
	if (pread_all(fd, hdr, sizeof(hdr), off) == -1)
		return -1;
	len = get32(hdr + 8);
	if (get32(hdr) != REC_MAGIC || hdr[4] != JOURNAL_VERSION ||
	    len > JOURNAL_RECORD_MAX ||
	    off + JOURNAL_HDR_LEN + len + JOURNAL_TRAILER_LEN > size)
		return 0;
	if (len > *cap) {
		unsigned char *p = realloc(*payload, len);

		if (p == NULL)
			return -1;
		*payload = p;
		*cap = len;
	}
	if ((len > 0 &&
	        pread_all(fd, *payload, len, off + JOURNAL_HDR_LEN) == -1) ||
	    pread_all(fd, trl, sizeof(trl), off + JOURNAL_HDR_LEN + len) == -1)
		return -1;
	crc = journal_crc32c(0, hdr, 12);
	crc = journal_crc32c(crc, *payload, len);
	if (crc != get32(hdr + 12) || get32(trl) != REC_END)
		return 0;
	*type_out = hdr[5];
	*len_out = len;
	return 1;
}

/* Reads the records of one segment; returns 0, or -1 if fn stopped or
 * on I/O error.  *good_out: the end of the last intact record. */
static int
replay_segment(int fd, uint64_t seg, uint64_t size,
    int (*fn)(
        void *, uint8_t, const void *, uint32_t, const struct journal_pos *),
    void *arg, uint64_t *good_out)
{
	unsigned char *payload = NULL;
	size_t cap = 0;
	uint64_t off = JOURNAL_SEG_HDR_LEN;
	uint8_t type;
	uint32_t len;
	int rc = 0, r;

	*good_out = off;
	while ((r = read_record(fd, off, size, &payload, &cap, &type, &len)) ==
	    1) {
		struct journal_pos pos;

		pos.seg = seg;
		pos.off = off + JOURNAL_HDR_LEN;
		pos.len = len;
		if (fn(arg, type, payload, len, &pos) == -1) {
			rc = -1;
			break;
		}
		off += JOURNAL_HDR_LEN + len + JOURNAL_TRAILER_LEN;
		*good_out = off;
	}
	if (r == -1)
		rc = -1;
	free(payload);
	return rc;
}

int
journal_replay(struct journal *j,
    int (*fn)(
        void *, uint8_t, const void *, uint32_t, const struct journal_pos *),
    void *arg, uint64_t *cut_out)
{
	char err[512];
	size_t i;

	*cut_out = 0;
	for (i = 0; i < j->nsegs; i++) {
		int newest = i + 1 == j->nsegs;
		int fd =
		    newest ? j->fd : seg_open(j, j->segs[i], err, sizeof(err));
		struct stat st;
		uint64_t good;
		int rc;

		if (fd == -1)
			return -1;
		if (fstat(fd, &st) == -1) {
			if (!newest)
				close(fd);
			return -1;
		}
		rc = replay_segment(
		    fd, j->segs[i], (uint64_t)st.st_size, fn, arg, &good);
		if (!newest)
			close(fd);
		if (rc == -1)
			return -1;
		if (good == (uint64_t)st.st_size)
			continue;
		(*cut_out)++;
		if (newest && !j->readonly) {
			/* A torn tail: never acknowledged, cut it off. */
			if (ftruncate(j->fd, (off_t)good) == -1 ||
			    fsync(j->fd) == -1)
				return -1;
			j->len = good;
		}
	}
	return 0;
}

int
journal_rotate(struct journal *j)
{
	/* The old segment's appends must be durable before the new one
	 * can hold records that depend on them. */
	if (journal_sync(j) == -1)
		return -1;
	return seg_create(j, j->segs[j->nsegs - 1] + 1);
}

int
journal_append(struct journal *j, uint8_t type, const struct iovec *iov, int n,
    struct journal_pos *pos_out)
{
	unsigned char hdr[JOURNAL_HDR_LEN], trl[JOURNAL_TRAILER_LEN];
	struct iovec v[REPLAY_IOV_MAX + 2];
	uint64_t len = 0;
	uint32_t crc;
	int i;

	if (j->broken || j->readonly) {
		errno = j->readonly ? EROFS : EIO;
		return -1;
	}
	if (n < 0 || n > REPLAY_IOV_MAX) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < n; i++)
		len += iov[i].iov_len;
	if (len > JOURNAL_RECORD_MAX) {
		errno = EFBIG;
		return -1;
	}
	if (j->len > JOURNAL_SEG_HDR_LEN && j->len + len > j->segsize &&
	    journal_rotate(j) == -1)
		return -1;
	put32(hdr, REC_MAGIC);
	hdr[4] = JOURNAL_VERSION;
	hdr[5] = type;
	hdr[6] = hdr[7] = 0;
	put32(hdr + 8, (uint32_t)len);
	crc = journal_crc32c(0, hdr, 12);
	for (i = 0; i < n; i++)
		crc = journal_crc32c(crc, iov[i].iov_base, iov[i].iov_len);
	put32(hdr + 12, crc);
	put32(trl, REC_END);
	v[0].iov_base = hdr;
	v[0].iov_len = sizeof(hdr);
	for (i = 0; i < n; i++)
		v[i + 1] = iov[i];
	v[n + 1].iov_base = trl;
	v[n + 1].iov_len = sizeof(trl);
	if (pwritev_all(j->fd, v, n + 2, j->len) == -1) {
		int e = errno;

		/* Leave no partial record behind. */
		if (ftruncate(j->fd, (off_t)j->len) == -1)
			j->broken = 1;
		errno = e;
		return -1;
	}
	pos_out->seg = j->segs[j->nsegs - 1];
	pos_out->off = j->len + JOURNAL_HDR_LEN;
	pos_out->len = (uint32_t)len;
	j->len += JOURNAL_HDR_LEN + len + JOURNAL_TRAILER_LEN;
	return 0;
}

int
journal_sync(struct journal *j)
{
	if (j->broken) {
		errno = EIO;
		return -1;
	}
	if (fdatasync(j->fd) == -1) {
		/* What reached the disk is unknown after a failed fsync:
		 * never retry it as if it had worked. */
		j->broken = 1;
		return -1;
	}
	return 0;
}

/* The kept descriptor of segment seg, its use counted; NULL if there is
 * none.  Under rmtx. */
static struct journal_rfd *
rfd_find(struct journal *j, uint64_t seg)
{
	size_t i;

	for (i = 0; i < JOURNAL_RFDS; i++)
		if (j->rfd[i].fd != -1 && j->rfd[i].seg == seg &&
		    !j->rfd[i].dropped) {
			j->rfd[i].refs++;
			j->rfd[i].used = ++j->rclock;
			return &j->rfd[i];
		}
	return NULL;
}

/* Keeps fd for segment seg if a slot is free or can be freed (its use
 * counted), else returns NULL (the caller closes fd after its read).
 * Under rmtx. */
static struct journal_rfd *
rfd_keep(struct journal *j, uint64_t seg, int fd)
{
	struct journal_rfd *v = NULL;
	size_t i;

	for (i = 0; i < JOURNAL_RFDS; i++) {
		struct journal_rfd *c = &j->rfd[i];

		if (c->fd == -1) {
			v = c;
			break;
		}
		if (c->refs == 0 && (v == NULL || c->used < v->used))
			v = c;
	}
	if (v == NULL)
		return NULL;
	if (v->fd != -1)
		close(v->fd);
	v->seg = seg;
	v->fd = fd;
	v->refs = 1;
	v->dropped = 0;
	v->used = ++j->rclock;
	return v;
}

int
journal_read(struct journal *j, const struct journal_pos *pos, void *out)
{
	struct journal_rfd *k;
	char path[4096];
	int fd, rc, e;

	pthread_mutex_lock(&j->rmtx);
	k = rfd_find(j, pos->seg);
	pthread_mutex_unlock(&j->rmtx);
	if (k != NULL) {
		fd = k->fd;
	} else {
		seg_path(j, pos->seg, path, sizeof(path));
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			return -1;
		pthread_mutex_lock(&j->rmtx);
		k = rfd_keep(j, pos->seg, fd);
		pthread_mutex_unlock(&j->rmtx);
	}
	rc = pread_all(fd, out, pos->len, pos->off);
	e = errno;
	if (k == NULL) {
		close(fd);
	} else {
		pthread_mutex_lock(&j->rmtx);
		if (--k->refs == 0 && k->dropped) {
			close(k->fd);
			k->fd = -1;
		}
		pthread_mutex_unlock(&j->rmtx);
	}
	errno = e;
	return rc;
}

/* Segment seg is gone: its kept descriptors are closed (at once, or by
 * the last read using one). */
static void
rfd_drop(struct journal *j, uint64_t seg)
{
	size_t i;

	pthread_mutex_lock(&j->rmtx);
	for (i = 0; i < JOURNAL_RFDS; i++) {
		struct journal_rfd *c = &j->rfd[i];

		if (c->fd == -1 || c->seg != seg)
			continue;
		if (c->refs == 0) {
			close(c->fd);
			c->fd = -1;
		} else
			c->dropped = 1;
	}
	pthread_mutex_unlock(&j->rmtx);
}

uint64_t
journal_oldest(const struct journal *j)
{
	return j->nsegs > 0 ? j->segs[0] : 0;
}

uint64_t
journal_newest(const struct journal *j)
{
	return j->nsegs > 0 ? j->segs[j->nsegs - 1] : 0;
}

int
journal_drop_oldest(struct journal *j)
{
	char path[4096];

	if (j->nsegs < 2) {
		errno = EBUSY;
		return -1;
	}
	seg_path(j, j->segs[0], path, sizeof(path));
	if (unlink(path) == -1)
		return -1;
	rfd_drop(j, j->segs[0]);
	if (fsync(j->dfd) == -1)
		return -1;
	memmove(j->segs, j->segs + 1, (j->nsegs - 1) * sizeof(*j->segs));
	j->nsegs--;
	return 0;
}

const char *
journal_id(const struct journal *j)
{
	return j->id;
}

uint64_t
journal_end(const struct journal *j)
{
	return j->len;
}

struct journal_cursor *
journal_cursor_new(const char *dir, uint64_t seg, uint64_t off)
{
	struct journal_cursor *c;

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->dir = strdup(dir)) == NULL) {
		free(c);
		return NULL;
	}
	c->fd = -1;
	c->seg = seg;
	c->off = off < JOURNAL_SEG_HDR_LEN ? JOURNAL_SEG_HDR_LEN : off;
	return c;
}

void
journal_cursor_free(struct journal_cursor *c)
{
	if (c == NULL)
		return;
	if (c->fd != -1)
		close(c->fd);
	free(c->win);
	free(c->payload);
	free(c->dir);
	free(c);
}

void
journal_cursor_tell(
    const struct journal_cursor *c, uint64_t *seg_out, uint64_t *off_out)
{
	*seg_out = c->seg;
	*off_out = c->off;
}

uint64_t
journal_cursor_skipped(const struct journal_cursor *c)
{
	return c->skipped;
}

/* Makes [off, off + need) of the cursor's segment readable in its window,
 * reading up to CURSOR_WINDOW octets from off but never past size (the
 * synced limit, or the end of a finished segment: octets that no longer
 * change).  The caller checked that off + need <= size.  Returns 0, or -1
 * with errno set. */
static int
cursor_window(
    struct journal_cursor *c, uint64_t off, size_t need, uint64_t size)
{
	size_t want = CURSOR_WINDOW;

	if (off >= c->win_off && off + need <= c->win_off + c->win_len)
		return 0;
	if (want > size - off)
		want = (size_t)(size - off);
	if (c->win == NULL && (c->win = malloc(CURSOR_WINDOW)) == NULL)
		return -1;
	c->win_len = 0;
	if (pread_all(c->fd, c->win, want, off) == -1)
		return -1;
	c->win_off = off;
	c->win_len = want;
	return 0;
}

/* read_record() for a cursor: from its window when the record fits one,
 * else read whole into c->payload. */
static int
cursor_record(struct journal_cursor *c, uint64_t size, uint8_t *type_out,
    uint32_t *len_out, const void **payload_out)
{
	const unsigned char *h;
	uint64_t off = c->off;
	uint32_t len, crc;
	int r;

	if (off + JOURNAL_HDR_LEN + JOURNAL_TRAILER_LEN > size)
		return 0;
	if (cursor_window(
	        c, off, JOURNAL_HDR_LEN + JOURNAL_TRAILER_LEN, size) == -1)
		return -1;
	h = c->win + (off - c->win_off);
	len = get32(h + 8);
	if (get32(h) != REC_MAGIC || h[4] != JOURNAL_VERSION ||
	    len > JOURNAL_RECORD_MAX ||
	    off + JOURNAL_HDR_LEN + len + JOURNAL_TRAILER_LEN > size)
		return 0;
	if ((uint64_t)JOURNAL_HDR_LEN + len + JOURNAL_TRAILER_LEN >
	    CURSOR_WINDOW) {
		r = read_record(
		    c->fd, off, size, &c->payload, &c->cap, type_out, len_out);
		*payload_out = c->payload;
		return r;
	}
	if (cursor_window(c, off,
	        JOURNAL_HDR_LEN + (size_t)len + JOURNAL_TRAILER_LEN,
	        size) == -1)
		return -1;
	h = c->win + (off - c->win_off);
	crc = journal_crc32c(0, h, 12);
	crc = journal_crc32c(crc, h + JOURNAL_HDR_LEN, len);
	if (crc != get32(h + 12) || get32(h + JOURNAL_HDR_LEN + len) != REC_END)
		return 0;
	*type_out = h[5];
	*len_out = len;
	*payload_out = h + JOURNAL_HDR_LEN;
	return 1;
}

int
journal_cursor_next(struct journal_cursor *c, uint64_t limit_seg,
    uint64_t limit_off, uint8_t *type_out, const void **payload_out,
    struct journal_pos *pos_out)
{
	char path[4096];
	struct stat st;
	uint64_t size;
	uint32_t len;
	int r;

	for (;;) {
		if (c->seg > limit_seg ||
		    (c->seg == limit_seg && c->off >= limit_off))
			return 0;
		if (c->fd == -1) {
			snprintf(path, sizeof(path), "%s/" SEG_NAME_FMT, c->dir,
			    c->seg);
			if ((c->fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
				return -1;
			c->win_len = 0;
			c->seg_size = 0;
		}
		if (c->seg == limit_seg) {
			size = limit_off;
		} else if (c->seg_size != 0) {
			size = c->seg_size; /* finished: it no longer grows */
		} else if (fstat(c->fd, &st) == -1) {
			return -1;
		} else {
			size = (uint64_t)st.st_size;
			c->seg_size = size;
		}
		r = cursor_record(c, size, type_out, &len, payload_out);
		if (r == -1)
			return -1;
		if (r == 1) {
			pos_out->seg = c->seg;
			pos_out->off = c->off + JOURNAL_HDR_LEN;
			pos_out->len = len;
			c->off += JOURNAL_HDR_LEN + len + JOURNAL_TRAILER_LEN;
			return 1;
		}
		if (c->seg == limit_seg) {
			/* Below the limit, every record was synced: this is
			 * not a tail still being written. */
			errno = EIO;
			return -1;
		}
		if (c->off + JOURNAL_HDR_LEN + JOURNAL_TRAILER_LEN <= size)
			c->skipped++; /* corruption: the rest is lost */
		close(c->fd);
		c->fd = -1;
		c->seg++;
		c->off = JOURNAL_SEG_HDR_LEN;
	}
}
