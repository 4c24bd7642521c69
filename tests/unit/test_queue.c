/*
 * test_queue: the durable queue over a real journal, a real SQLite store
 * and a real event loop: group commit, restart recovery, state updates,
 * segment reclaiming with relocation, torn tails, failed writes, and the
 * envelope codec (whole and truncated at every length).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "msgtrk/buf.h"
#include "queue/queue.h"
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

static struct queue_msg *
msg_new(int i, size_t nrcpt)
{
	struct queue_msg *m = calloc(1, sizeof(*m));
	char s[128];
	size_t k;

	assert_non_null(m);
	queue_new_id(m->qid);
	snprintf(s, sizeof(s), "sender%d@a.test", i);
	m->sender = strdup(s);
	snprintf(s, sizeof(s), "env%d@a.test", i);
	m->envid = strdup(s);
	m->envid_raw = strdup(s);
	m->mtrk = 1;
	memcpy(m->certifier, "qZk+NkcGgWq6PiVxeFDCbJzQ2J0", 28);
	m->mtrk_timeout = 86400;
	m->mtrk_has_timeout = 1;
	m->ret = QUEUE_RET_HDRS;
	m->arrival = 1795326580 + i;
	m->expires = m->arrival + 9 * 86400;
	m->reporting_mta = strdup("hop1.test");
	m->helo = strdup("client.test");
	m->client = strdup("127.0.0.1");
	m->next_attempt = m->arrival;
	m->nrcpt = nrcpt;
	m->rcpts = calloc(nrcpt, sizeof(*m->rcpts));
	for (k = 0; k < nrcpt; k++) {
		struct queue_rcpt *r = &m->rcpts[k];

		snprintf(s, sizeof(s), "rcpt%zu@b.test", k);
		r->addr = strdup(s);
		snprintf(s, sizeof(s), "rfc822;rcpt%zu@b.test", k);
		r->track.orcpt = strdup(s);
		r->track.final_rcpt = strdup(s);
		r->orcpt_raw = k % 2 ? strdup(s) : NULL;
		r->notify = QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY;
		r->track.idx = (uint32_t)k;
		r->track.action = STORE_ACTION_QUEUED;
	}
	return m;
}

/* --- envelope codec ------------------------------------------------ */

/* Frees what queue_msg_decode filled in a caller's struct. */
static void
queue_msg_free_fields_for_test(struct queue_msg *m)
{
	struct queue_msg *copy = malloc(sizeof(*copy));

	assert_non_null(copy);
	*copy = *m;
	queue_msg_free(copy);
	memset(m, 0, sizeof(*m));
}

static void
assert_msg_equal(const struct queue_msg *a, const struct queue_msg *b)
{
	size_t k;

	assert_string_equal(a->qid, b->qid);
	assert_string_equal(a->sender, b->sender);
	assert_string_equal(a->envid, b->envid);
	assert_string_equal(a->certifier, b->certifier);
	assert_int_equal(a->ret, b->ret);
	assert_int_equal(a->mtrk, b->mtrk);
	assert_int_equal(a->mtrk_timeout, b->mtrk_timeout);
	assert_int_equal(a->mtrk_has_timeout, b->mtrk_has_timeout);
	assert_int_equal(a->arrival, b->arrival);
	assert_int_equal(a->expires, b->expires);
	assert_int_equal(a->next_attempt, b->next_attempt);
	assert_int_equal(a->attempts, b->attempts);
	assert_int_equal(a->nrcpt, b->nrcpt);
	for (k = 0; k < a->nrcpt; k++) {
		const struct queue_rcpt *x = &a->rcpts[k], *y = &b->rcpts[k];

		assert_string_equal(x->addr, y->addr);
		assert_int_equal(x->orcpt_raw == NULL, y->orcpt_raw == NULL);
		if (x->orcpt_raw != NULL)
			assert_string_equal(x->orcpt_raw, y->orcpt_raw);
		assert_int_equal(x->notify, y->notify);
		assert_int_equal(x->final, y->final);
		assert_int_equal(x->track.action, y->track.action);
		assert_string_equal(x->track.status, y->track.status);
		assert_int_equal(
		    x->track.remote_mta == NULL, y->track.remote_mta == NULL);
		if (x->track.remote_mta != NULL)
			assert_string_equal(
			    x->track.remote_mta, y->track.remote_mta);
		assert_int_equal(x->track.last_attempt, y->track.last_attempt);
	}
}

static void
test_codec_round_trip(void **state)
{
	struct queue_msg *m = msg_new(1, 3), back;
	struct buf b;

	(void)state;
	m->rcpts[1].final = 1;
	m->rcpts[1].track.action = STORE_ACTION_TRANSFERRED;
	strcpy(m->rcpts[1].track.status, "2.0.0");
	m->rcpts[1].track.remote_mta = strdup("dns; hop2.test");
	m->rcpts[1].track.reply = strdup("250 2.0.0 Ok: queued as X");
	m->rcpts[1].track.last_attempt = 1795326600;
	buf_init(&b, 1 << 20);
	assert_int_equal(queue_msg_encode(m, &b), 0);
	assert_int_equal(queue_msg_decode(b.data, b.len, &back), 0);
	assert_msg_equal(m, &back);
	queue_msg_free_fields_for_test(&back);
	/* Every truncation is read within bounds (ASan checks the exact
	 * allocation): refused, or, cut at a field boundary after every
	 * required field, a shorter envelope of the same message.  On
	 * disk the record's CRC rejects both. */
	{
		size_t n, refused = 0;

		for (n = 0; n < b.len; n++) {
			char *cut = malloc(n ? n : 1);

			memcpy(cut, b.data, n);
			if (queue_msg_decode(cut, n, &back) == -1)
				refused++;
			else {
				assert_string_equal(back.qid, m->qid);
				queue_msg_free_fields_for_test(&back);
			}
			free(cut);
		}
		assert_true(refused > b.len * 9 / 10);
	}
	buf_reset(&b);
	queue_msg_free(m);
}

struct bad_case {
	const char *name;
	const char *bytes;
	size_t len;
};

static const struct bad_case bad_cases[] = {
	{ "empty", "", 0 },
	{ "short header", "\x01\x03\x00", 3 },
	{ "length past end",
	    "\x01\x09\x00\x00\x00"
	    "abc",
	    8 },
	{ "qid too long",
	    "\x01\x21\x00\x00\x00"
	    "0123456789012345678901234567890123",
	    38 },
	{ "unknown tag",
	    "\x01\x01\x00\x00\x00"
	    "a\x7f\x00\x00\x00\x00",
	    11 },
	{ "nrcpt zero",
	    "\x01\x01\x00\x00\x00"
	    "a\x02\x00\x00\x00\x00\x13\x08\x00\x00\x00"
	    "\x00\x00\x00\x00\x00\x00\x00\x00",
	    24 },
	{ "no recipients",
	    "\x01\x01\x00\x00\x00"
	    "a\x02\x00\x00\x00\x00",
	    11 },
	{ "NUL in string",
	    "\x01\x01\x00\x00\x00"
	    "a\x02\x03\x00\x00\x00"
	    "a\0b",
	    14 },
	{ "string past limit", "\x02\xff\xff\xff\x7f", 5 },
};

static const char *
bad_name(const void *row)
{
	return ((const struct bad_case *)row)->name;
}

static void
test_codec_bad(void **state)
{
	const struct bad_case *c = *state;
	struct queue_msg m;

	assert_int_equal(queue_msg_decode(c->bytes, c->len, &m), -1);
}

/* --- the queue ------------------------------------------------------ */

struct env {
	char dir[64];
	struct event_base *base;
	const struct store_backend *be;
	struct store *store;
	struct queue *q;
	int done, failed, last_err;
	size_t recovered;
	struct queue_msg *live[64];
};

static void
on_done(void *arg, int rc, int err)
{
	struct env *e = arg;

	e->done++;
	if (rc != 0) {
		e->failed++;
		e->last_err = err;
	}
}

static void
on_recovered(void *arg, struct queue_msg *m)
{
	struct env *e = arg;

	if (e->recovered < 64)
		e->live[e->recovered] = m;
	e->recovered++;
}

static void
env_start(struct env *e, uint64_t segsize, char *errout)
{
	char err[512];

	e->be = store_backend_find("sqlite");
	assert_non_null(e->be);
	e->store = e->be->open("sqlite", e->dir, 0, err, sizeof(err));
	if (e->store == NULL)
		fail_msg("store: %s", err);
	e->q = queue_open(
	    e->base, e->dir, e->store, e->be, segsize, err, sizeof(err));
	if (e->q == NULL)
		fail_msg("queue: %s", err);
	e->recovered = 0;
	assert_true(
	    queue_recover(e->q, on_recovered, e, err, sizeof(err)) >= 0);
	if (errout != NULL)
		strcpy(errout, err);
}

static void
env_stop(struct env *e)
{
	queue_stop(e->q);
	queue_free(e->q);
	e->be->close(e->store);
	e->q = NULL;
}

static void
env_init(struct env *e, uint64_t segsize)
{
	memset(e, 0, sizeof(*e));
	strcpy(e->dir, "/tmp/msgtrk-queue.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	e->base = event_base_new();
	assert_non_null(e->base);
	env_start(e, segsize, NULL);
}

static void
env_free(struct env *e)
{
	char cmd[128];

	if (e->q != NULL)
		env_stop(e);
	event_base_free(e->base);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	assert_int_equal(system(cmd), 0);
}

/* Runs the loop until `want` callbacks have come (bounded). */
static void
wait_done(struct env *e, int want)
{
	int spins = 0;

	while (e->done < want && spins++ < 100000)
		event_base_loop(e->base, EVLOOP_ONCE);
	assert_int_equal(e->done, want);
}

static int
lookup_count(struct env *e, const char *envid, struct store_msg **out)
{
	size_t n = 0;
	int rc = e->be->lookup(
	    e->store, envid, "qZk+NkcGgWq6PiVxeFDCbJzQ2J0", out, &n);

	assert_true(rc >= 0);
	return rc == 1 ? (int)n : 0;
}

static void
test_group_commit_and_recovery(void **state)
{
	struct env e;
	struct queue_stats st;
	struct queue_msg *m[50];
	struct iovec body[50];
	char bodies[50][64];
	struct store_msg *found;
	int i;

	(void)state;
	env_init(&e, 0);
	/* 50 sessions finish DATA while the writer is busy: one sync. */
	queue_hold(e.q, 1);
	for (i = 0; i < 50; i++) {
		m[i] = msg_new(i, 1 + i % 3);
		snprintf(bodies[i], sizeof(bodies[i]),
		    "Subject: %d\r\n\r\nbody %d\r\n", i, i);
		body[i].iov_base = bodies[i];
		body[i].iov_len = strlen(bodies[i]);
		assert_int_equal(
		    queue_submit(e.q, m[i], &body[i], 1, on_done, &e), 0);
	}
	queue_hold(e.q, 0);
	wait_done(&e, 50);
	assert_int_equal(e.failed, 0);
	queue_stats(e.q, &st);
	assert_int_equal(st.records, 50);
	assert_int_equal(st.syncs, 1);
	assert_int_equal(queue_count(e.q), 50);
	/* the tracking record is there once the callback ran */
	assert_int_equal(lookup_count(&e, "env7@a.test", &found), 1);
	assert_int_equal(found[0].nrcpt, 2);
	assert_int_equal(found[0].queued, 1);
	store_msgs_free(found, 1);
	/* a body reads back from the journal */
	{
		struct buf b;

		buf_init(&b, 1 << 20);
		assert_int_equal(queue_read_body(e.q, m[9], &b), 0);
		assert_string_equal(buf_cstr(&b), bodies[9]);
		buf_reset(&b);
	}
	/* an attempt: recipient 0 of message 3 transferred */
	m[3]->rcpts[0].final = 1;
	m[3]->rcpts[0].track.action = STORE_ACTION_TRANSFERRED;
	strcpy(m[3]->rcpts[0].track.status, "2.0.0");
	m[3]->rcpts[0].track.remote_mta = strdup("dns; hop2.test");
	m[3]->rcpts[0].track.last_attempt = 1795327000;
	m[3]->attempts = 1;
	{
		uint32_t idx = 0;

		assert_int_equal(
		    queue_update(e.q, m[3], &idx, 1, on_done, &e), 0);
	}
	/* message 5 is done */
	assert_int_equal(queue_finish(e.q, m[5], on_done, &e), 0);
	wait_done(&e, 52);
	assert_int_equal(queue_count(e.q), 49);
	assert_int_equal(lookup_count(&e, "env5@a.test", &found), 1);
	assert_int_equal(found[0].queued, 0); /* tracking outlives queue */
	store_msgs_free(found, 1);

	/* restart: the same 49 messages, message 3's state kept */
	env_stop(&e);
	env_start(&e, 0, NULL);
	assert_int_equal(e.recovered, 49);
	assert_int_equal(queue_count(e.q), 49);
	for (i = 0; i < 49; i++) {
		struct queue_msg *r = e.live[i];

		assert_string_not_equal(r->envid, "env5@a.test");
		if (strcmp(r->envid, "env3@a.test") == 0) {
			assert_int_equal(r->attempts, 1);
			assert_int_equal(
			    r->rcpts[0].track.action, STORE_ACTION_TRANSFERRED);
			assert_string_equal(
			    r->rcpts[0].track.remote_mta, "dns; hop2.test");
			assert_int_equal(r->rcpts[0].final, 1);
		}
	}
	assert_int_equal(lookup_count(&e, "env3@a.test", &found), 1);
	assert_int_equal(found[0].rcpts[0].action, STORE_ACTION_TRANSFERRED);
	store_msgs_free(found, 1);
	env_free(&e);
}

/* The store lost its last transactions (synchronous=NORMAL after a power
 * loss): the journal replays them. */
static void
test_store_rebuilt_from_journal(void **state)
{
	struct env e;
	struct queue_msg *m = msg_new(77, 2);
	struct iovec body = { "x\r\n", 3 };
	struct store_msg *found;
	char path[128];

	(void)state;
	env_init(&e, 0);
	assert_int_equal(queue_submit(e.q, m, &body, 1, on_done, &e), 0);
	wait_done(&e, 1);
	env_stop(&e);
	snprintf(path, sizeof(path), "%s/tracking.db", e.dir);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/tracking.db-wal", e.dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/tracking.db-shm", e.dir);
	unlink(path);
	env_start(&e, 0, NULL);
	assert_int_equal(e.recovered, 1);
	assert_int_equal(lookup_count(&e, "env77@a.test", &found), 1);
	assert_int_equal(found[0].nrcpt, 2);
	store_msgs_free(found, 1);
	env_free(&e);
}

static void
test_torn_tail_recovery(void **state)
{
	struct env e;
	struct queue_msg *m = msg_new(1, 1);
	struct iovec body = { "hello\r\n", 7 };
	char path[128], err[512];
	int fd;

	(void)state;
	env_init(&e, 0);
	assert_int_equal(queue_submit(e.q, m, &body, 1, on_done, &e), 0);
	wait_done(&e, 1);
	env_stop(&e);
	/* a crash in the middle of the next record */
	snprintf(path, sizeof(path), "%s/queue/seg-%016x", e.dir, 1);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "MQR1\x01\x01\0\0\xff\0\0\0", 12), 12);
	close(fd);
	env_start(&e, 0, err);
	assert_int_equal(e.recovered, 1);
	assert_non_null(strstr(err, "1 torn tails cut"));
	env_free(&e);
}

static void
test_failed_write_reports_error(void **state)
{
	struct env e;
	struct queue_msg *m = msg_new(1, 1), *m2 = msg_new(2, 1);
	static char big[64 << 10];
	struct iovec body = { big, sizeof(big) };
	struct iovec small = { "ok\r\n", 4 };
	struct rlimit old, lim;

	(void)state;
	env_init(&e, 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 32 << 10;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(queue_submit(e.q, m, &body, 1, on_done, &e), 0);
	wait_done(&e, 1);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(e.failed, 1);
	assert_int_equal(e.last_err, EFBIG);
	assert_int_equal(queue_count(e.q), 0);
	queue_msg_free(m); /* a failed submit leaves m to the caller */
	assert_int_equal(queue_submit(e.q, m2, &small, 1, on_done, &e), 0);
	wait_done(&e, 2);
	assert_int_equal(e.failed, 1);
	env_stop(&e);
	env_start(&e, 0, NULL);
	assert_int_equal(e.recovered, 1);
	assert_string_equal(e.live[0]->envid, "env2@a.test");
	env_free(&e);
}

/* Small segments: finished messages free their segments; one message
 * that stays queued is moved forward instead of pinning the oldest. */
static void
test_reclaim_and_relocate(void **state)
{
	struct env e;
	struct queue_stats st;
	struct queue_msg *keep, *m;
	static char big[3000];
	struct iovec body = { big, sizeof(big) };
	struct buf b;
	int i;

	(void)state;
	memset(big, 'k', sizeof(big));
	env_init(&e, 8192);
	keep = msg_new(999, 1);
	assert_int_equal(queue_submit(e.q, keep, &body, 1, on_done, &e), 0);
	wait_done(&e, 1);
	memset(big, 'x', sizeof(big));
	for (i = 0; i < 40; i++) {
		m = msg_new(i, 1);
		assert_int_equal(
		    queue_submit(e.q, m, &body, 1, on_done, &e), 0);
		wait_done(&e, 2 + 2 * i);
		assert_int_equal(queue_finish(e.q, m, on_done, &e), 0);
		wait_done(&e, 3 + 2 * i);
	}
	/* let the drops and relocations that were triggered finish */
	for (i = 0; i < 200; i++)
		event_base_loop(e.base, EVLOOP_NONBLOCK);
	queue_hold(e.q, 0);
	for (i = 0; i < 50; i++) {
		event_base_loop(e.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(2000);
	}
	queue_stats(e.q, &st);
	assert_true(st.dropped_segments > 0);
	assert_true(st.relocated > 0);
	assert_int_equal(queue_count(e.q), 1);
	buf_init(&b, 1 << 20);
	assert_int_equal(queue_read_body(e.q, keep, &b), 0);
	assert_int_equal(b.len, sizeof(big));
	assert_int_equal(b.data[0], 'k');
	buf_reset(&b);
	/* after a restart the kept message and its body are still there */
	env_stop(&e);
	env_start(&e, 8192, NULL);
	assert_int_equal(e.recovered, 1);
	buf_init(&b, 1 << 20);
	assert_int_equal(queue_read_body(e.q, e.live[0], &b), 0);
	assert_int_equal(b.len, sizeof(big));
	assert_int_equal(b.data[sizeof(big) - 1], 'k');
	buf_reset(&b);
	env_free(&e);
}

/* Retention purge runs on the writer thread: an expired message that
 * left the queue goes, a queued one never does (RFC 3885 §3.1). */
static void
test_purge(void **state)
{
	struct env e;
	struct queue_msg *gone = msg_new(1, 1), *queued = msg_new(2, 1);
	struct iovec body = { "x\r\n", 3 };
	struct store_msg *found;
	size_t n = 99;

	(void)state;
	env_init(&e, 0);
	assert_int_equal(queue_submit(e.q, gone, &body, 1, on_done, &e), 0);
	assert_int_equal(queue_submit(e.q, queued, &body, 1, on_done, &e), 0);
	wait_done(&e, 2);
	assert_int_equal(queue_finish(e.q, gone, on_done, &e), 0);
	wait_done(&e, 3);
	/* before the end of retention: nothing */
	assert_int_equal(queue_purge(e.q, 1795326580, &n, on_done, &e), 0);
	wait_done(&e, 4);
	assert_int_equal(n, 0);
	/* long after it: only the message that left the queue */
	assert_int_equal(
	    queue_purge(e.q, 1795326580 + 100 * 86400, &n, on_done, &e), 0);
	wait_done(&e, 5);
	assert_int_equal(e.failed, 0);
	assert_int_equal(n, 1);
	assert_int_equal(lookup_count(&e, "env1@a.test", &found), 0);
	assert_int_equal(lookup_count(&e, "env2@a.test", &found), 1);
	store_msgs_free(found, 1);
	env_free(&e);
}

static void
count_scanned(void *arg, struct queue_msg *m)
{
	size_t *n = arg;

	assert_non_null(m->sender);
	(*n)++;
}

/* msgtrk queue's view while the daemon's queue is open. */
static void
test_scan(void **state)
{
	struct env e;
	struct iovec body = { "x\r\n", 3 };
	struct queue_msg *m[3];
	char err[256];
	size_t n = 0;
	int i;

	(void)state;
	assert_int_equal(
	    queue_scan("/nonexistent", count_scanned, &n, err, sizeof(err)), 0);
	env_init(&e, 0);
	for (i = 0; i < 3; i++) {
		m[i] = msg_new(i, 2);
		assert_int_equal(
		    queue_submit(e.q, m[i], &body, 1, on_done, &e), 0);
	}
	wait_done(&e, 3);
	assert_int_equal(queue_finish(e.q, m[1], on_done, &e), 0);
	wait_done(&e, 4);
	assert_int_equal(
	    queue_scan(e.dir, count_scanned, &n, err, sizeof(err)), 2);
	assert_int_equal(n, 2);
	/* the daemon's queue goes on as if nothing happened */
	assert_int_equal(queue_finish(e.q, m[0], on_done, &e), 0);
	wait_done(&e, 5);
	n = 0;
	assert_int_equal(
	    queue_scan(e.dir, count_scanned, &n, err, sizeof(err)), 1);
	env_free(&e);
}

/* The 250 waits for the sync: when the sync fails, every message of the
 * batch gets an error (451 at the SMTP level), and so does everything
 * after it until a restart replays the journal. */
static void
test_sync_failure_fails_batch(void **state)
{
	struct env e;
	struct queue_msg *m[3];
	struct iovec body = { "x\r\n", 3 };
	int i;

	(void)state;
	env_init(&e, 0);
	queue_hold(e.q, 1);
	for (i = 0; i < 2; i++) {
		m[i] = msg_new(i, 1);
		assert_int_equal(
		    queue_submit(e.q, m[i], &body, 1, on_done, &e), 0);
	}
	__atomic_store_n(&fail_fdatasync, 1, __ATOMIC_SEQ_CST);
	queue_hold(e.q, 0);
	wait_done(&e, 2);
	assert_int_equal(e.failed, 2);
	assert_int_equal(e.last_err, EIO);
	assert_int_equal(queue_count(e.q), 0);
	queue_msg_free(m[0]);
	queue_msg_free(m[1]);
	m[2] = msg_new(2, 1);
	assert_int_equal(queue_submit(e.q, m[2], &body, 1, on_done, &e), 0);
	wait_done(&e, 3);
	assert_int_equal(e.failed, 3);
	queue_msg_free(m[2]);
	/* a restart works again */
	env_stop(&e);
	env_start(&e, 0, NULL);
	m[0] = msg_new(5, 1);
	assert_int_equal(queue_submit(e.q, m[0], &body, 1, on_done, &e), 0);
	wait_done(&e, 4);
	assert_int_equal(e.failed, 3);
	env_free(&e);
}

static void
test_ids(void **state)
{
	char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1];
	size_t i;

	(void)state;
	queue_new_id(a);
	queue_new_id(b);
	assert_int_equal(strlen(a), QUEUE_ID_LEN);
	assert_string_not_equal(a, b);
	for (i = 0; i < QUEUE_ID_LEN; i++)
		assert_true((a[i] >= '0' && a[i] <= '9') ||
		    (a[i] >= 'A' && a[i] <= 'Z') ||
		    (a[i] >= 'a' && a[i] <= 'z'));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec_round_trip),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_group_commit_and_recovery),
		cmocka_unit_test(test_store_rebuilt_from_journal),
		cmocka_unit_test(test_torn_tail_recovery),
		cmocka_unit_test(test_failed_write_reports_error),
		cmocka_unit_test(test_reclaim_and_relocate),
		cmocka_unit_test(test_purge),
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_sync_failure_fails_batch),
	};
	int failed = 0;

	evthread_use_pthreads();
	failed +=
	    TABLE_RUN("queue_decode_bad", test_codec_bad, bad_cases, bad_name);
	failed += cmocka_run_group_tests_name("queue", tests, NULL, NULL);
	return failed;
}
