/*
 * test_queue: the durable queue over a real journal, a real SQLite store
 * and a real event loop: group commit, restart recovery, state updates
 * applied only once durable, compaction that converges (an idle backlog
 * writes nothing; a dead journal is reclaimed once), the FINISH/RELOCATE
 * race, a store that fails and comes back (segments kept until it has
 * applied them), spooled bodies, torn tails, failed writes, allocation
 * failures, and the envelope codec (whole and truncated at every
 * length).
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

#include <pthread.h>
#include <sys/wait.h>

#include "msgtrk/buf.h"
#include "queue/queue.h"
#include "queue/queue_internal.h"
#include "table.h"

/* Failure injection (linked with -Wl,--wrap=fdatasync,--wrap=rename,
 * --wrap=calloc,--wrap=realloc): the next fail_* calls fail. */
static int fail_fdatasync, fail_rename;
int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
int __real_rename(const char *from, const char *to);
int __wrap_rename(const char *from, const char *to);
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_realloc(void *p, size_t size);
/* calloc fails on the loop (main) thread while set; realloc fails for
 * requests of exactly fail_realloc_size octets. */
static int fail_calloc_main;
static size_t fail_realloc_size;
static pthread_t main_thread;

void *
__wrap_calloc(size_t n, size_t size)
{
	if (__atomic_load_n(&fail_calloc_main, __ATOMIC_SEQ_CST) &&
	    pthread_equal(pthread_self(), main_thread))
		return NULL;
	return __real_calloc(n, size);
}

void *
__wrap_realloc(void *p, size_t size)
{
	if (fail_realloc_size != 0 && size == fail_realloc_size)
		return NULL;
	return __real_realloc(p, size);
}

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

static void
assert_opt_equal(const char *a, const char *b)
{
	assert_int_equal(a == NULL, b == NULL);
	if (a != NULL)
		assert_string_equal(a, b);
}

/* Submission: the login, the kept secret and the Subject (new envelope
 * tags) come back; an envelope without them (as earlier versions wrote)
 * decodes with none. */
static void
test_codec_submission(void **state)
{
	struct queue_msg *m = msg_new(2, 2), back;
	struct buf b;

	(void)state;
	m->login = strdup("alice");
	m->secret = strdup("q7mYDHsA1t0Y3y2Fo9vEYTbJzP3rqqhO9kQZnqHrb2Y");
	m->subject = strdup("Quarterly report");
	buf_init(&b, 1 << 20);
	assert_int_equal(queue_msg_encode(m, &b), 0);
	assert_int_equal(queue_msg_decode(b.data, b.len, &back), 0);
	assert_msg_equal(m, &back);
	assert_opt_equal(back.login, "alice");
	assert_opt_equal(back.secret, m->secret);
	assert_opt_equal(back.subject, "Quarterly report");
	queue_msg_free_fields_for_test(&back);
	/* a login alone (the message carried its own MTRK) */
	free(m->secret);
	free(m->subject);
	m->secret = m->subject = NULL;
	buf_clear(&b);
	assert_int_equal(queue_msg_encode(m, &b), 0);
	assert_int_equal(queue_msg_decode(b.data, b.len, &back), 0);
	assert_opt_equal(back.login, "alice");
	assert_null(back.secret);
	assert_null(back.subject);
	queue_msg_free_fields_for_test(&back);
	/* none: no tag is written */
	free(m->login);
	m->login = NULL;
	buf_clear(&b);
	assert_int_equal(queue_msg_encode(m, &b), 0);
	assert_int_equal(queue_msg_decode(b.data, b.len, &back), 0);
	assert_null(back.login);
	assert_null(back.secret);
	queue_msg_free_fields_for_test(&back);
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

/* A store backend over SQLite that fails every write while `down` is
 * set, as a stopped database does (the failure path of the applier). */
static int store_down;
static struct store_backend flaky;

static int
flaky_begin(struct store *st)
{
	if (__atomic_load_n(&store_down, __ATOMIC_SEQ_CST))
		return -1;
	return store_backend_sqlite.begin(st);
}

static int
flaky_sync(struct store *st)
{
	if (__atomic_load_n(&store_down, __ATOMIC_SEQ_CST))
		return -1;
	return store_backend_sqlite.sync(st);
}

static const char *
flaky_error(struct store *st)
{
	if (__atomic_load_n(&store_down, __ATOMIC_SEQ_CST))
		return "store down";
	return store_backend_sqlite.error(st);
}

struct env {
	char dir[64];
	struct event_base *base;
	const struct store_backend *be;
	struct store *store; /* the applier's */
	struct store *reader; /* the test's */
	struct queue *q;
	int done, failed, last_err;
	size_t recovered;
	const struct queue_msg *live[256];
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
on_recovered(void *arg, const struct queue_msg *m)
{
	struct env *e = arg;

	if (e->recovered < 256)
		e->live[e->recovered] = m;
	e->recovered++;
}

static void
env_start(struct env *e, uint64_t segsize, char *errout)
{
	char err[512];

	e->store = e->be->open("sqlite", e->dir, 0, err, sizeof(err));
	if (e->store == NULL)
		fail_msg("store: %s", err);
	e->reader = e->be->open("sqlite", e->dir, 0, err, sizeof(err));
	if (e->reader == NULL)
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
	e->be->close(e->reader);
	e->q = NULL;
}

static void
env_init_be(struct env *e, uint64_t segsize, const struct store_backend *be)
{
	memset(e, 0, sizeof(*e));
	strcpy(e->dir, "/tmp/msgtrk-queue.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	e->base = event_base_new();
	assert_non_null(e->base);
	e->be = be;
	env_start(e, segsize, NULL);
}

static void
env_init(struct env *e, uint64_t segsize)
{
	env_init_be(e, segsize, &store_backend_sqlite);
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

/* Runs the loop for ms milliseconds (the queue's tick is 1 s). */
static void
run_for(struct env *e, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(e->base, &tv);
	event_base_dispatch(e->base);
}

static void
on_store_caught_up(void *arg, int ok)
{
	*(int *)arg = ok ? 1 : -1;
}

/* Waits until the store has applied everything synced (bounded). */
static void
wait_store(struct env *e)
{
	int state = 0, spins = 0;

	if (queue_store_wait(e->q, 10000, on_store_caught_up, &state) == NULL)
		return;
	while (state == 0 && spins++ < 100000)
		event_base_loop(e->base, EVLOOP_ONCE);
	assert_int_equal(state, 1);
}

static int
lookup_count(struct env *e, const char *envid, struct store_msg **out)
{
	size_t n = 0;
	int rc;

	wait_store(e);
	rc = e->be->lookup(
	    e->reader, envid, "qZk+NkcGgWq6PiVxeFDCbJzQ2J0", out, &n);
	assert_true(rc >= 0);
	return rc == 1 ? (int)n : 0;
}

static const struct queue_msg *
find_envid(struct env *e, const char *envid)
{
	size_t i;

	for (i = 0; i < e->recovered && i < 256; i++)
		if (strcmp(e->live[i]->envid, envid) == 0)
			return e->live[i];
	return NULL;
}

/* Runs the loop (in steps of 100 ms, at most 30 s) until pred holds. */
static int
run_until(struct env *e, int (*pred)(struct env *))
{
	int i;

	for (i = 0; i < 300 && !pred(e); i++)
		run_for(e, 100);
	return pred(e);
}

static int
relocated_and_dropped(struct env *e)
{
	struct queue_stats st;

	queue_stats(e->q, &st);
	return st.relocated >= 1 && st.dropped_segments >= 9 &&
	    journal_newest(e->q->j) - journal_oldest(e->q->j) <= 1;
}

static int
dropped_five(struct env *e)
{
	struct queue_stats st;

	queue_stats(e->q, &st);
	return st.dropped_segments >= 5;
}

static int
relocated_one(struct env *e)
{
	struct queue_stats st;

	queue_stats(e->q, &st);
	return st.relocated >= 1;
}

/* Reads a whole body back (the test may block: no loop to protect).
 * Before every read, queue_body_done() must say whether it is the end. */
static void
read_body(struct env *e, const struct queue_msg *m, struct buf *out)
{
	struct queue_body_reader *r = queue_body_open(e->q, m);
	uint64_t size = queue_body_size(&m->body);
	size_t was = out->len, pieces = 0;
	int rc, done;

	assert_non_null(r);
	do {
		done = queue_body_done(r);
		rc = queue_body_next(r, out);
		assert_int_equal(done, rc == 0);
		pieces += rc == 1;
	} while (rc == 1);
	assert_int_equal(rc, 0);
	/* Every piece is full but the last: a small body is one piece. */
	assert_int_equal(out->len - was, size);
	assert_int_equal(
	    pieces, (size + QUEUE_CHUNK_SIZE - 1) / QUEUE_CHUNK_SIZE);
	queue_body_close(r);
}

/* An update: recipient idx transferred (final), one attempt made. */
static void
transferred(struct env *e, const struct queue_msg *m, uint32_t idx)
{
	struct queue_rcpt_update r;
	struct queue_update u;

	memset(&r, 0, sizeof(r));
	r.final = 1;
	r.track.idx = idx;
	r.track.orcpt = m->rcpts[idx].track.orcpt;
	r.track.final_rcpt = m->rcpts[idx].track.final_rcpt;
	r.track.action = STORE_ACTION_TRANSFERRED;
	strcpy(r.track.status, "2.0.0");
	r.track.remote_mta = "dns; hop2.test";
	r.track.last_attempt = 1795327000;
	memset(&u, 0, sizeof(u));
	u.attempts = m->attempts + 1;
	u.next_attempt = m->next_attempt;
	u.n = 1;
	u.r = &r;
	assert_int_equal(queue_update(e->q, m, &u, on_done, e), 0);
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
	const struct queue_msg *r;
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
		    queue_submit(e.q, m[i], &body[i], 1, NULL, on_done, &e), 0);
	}
	queue_hold(e.q, 0);
	wait_done(&e, 50);
	assert_int_equal(e.failed, 0);
	queue_stats(e.q, &st);
	assert_int_equal(st.records, 50);
	assert_int_equal(st.syncs, 1);
	assert_int_equal(queue_count(e.q), 50);
	/* the commit latency histogram counts each of them once */
	{
		uint64_t sum = 0;
		size_t k;

		for (k = 0; k < QUEUE_LATENCY_BUCKETS; k++)
			sum += st.commit_buckets[k];
		assert_int_equal(st.commits, 50);
		assert_int_equal(sum, 50);
	}
	assert_int_equal(queue_oldest_arrival(e.q), 1795326580);
	assert_int_equal(queue_store_lag(e.q), 0);
	/* the store follows the journal */
	assert_int_equal(lookup_count(&e, "env7@a.test", &found), 1);
	assert_int_equal(found[0].nrcpt, 2);
	assert_int_equal(found[0].queued, 1);
	store_msgs_free(found, 1);
	/* a body reads back from the journal */
	{
		struct buf b;

		buf_init(&b, 1 << 20);
		read_body(&e, m[9], &b);
		assert_string_equal(buf_cstr(&b), bodies[9]);
		buf_reset(&b);
	}
	/* an attempt: recipient 0 of message 3 transferred */
	transferred(&e, m[3], 0);
	/* message 5 is done */
	assert_int_equal(queue_finish(e.q, m[5], on_done, &e), 0);
	wait_done(&e, 52);
	assert_int_equal(queue_count(e.q), 49);
	assert_int_equal(m[3]->attempts, 1);
	assert_int_equal(m[3]->rcpts[0].final, 1);
	assert_int_equal(lookup_count(&e, "env5@a.test", &found), 1);
	assert_int_equal(found[0].queued, 0); /* tracking outlives queue */
	store_msgs_free(found, 1);

	/* restart: the same 49 messages, message 3's state kept */
	env_stop(&e);
	env_start(&e, 0, NULL);
	assert_int_equal(e.recovered, 49);
	assert_int_equal(queue_count(e.q), 49);
	assert_null(find_envid(&e, "env5@a.test"));
	assert_non_null(r = find_envid(&e, "env3@a.test"));
	assert_int_equal(r->attempts, 1);
	assert_int_equal(r->rcpts[0].track.action, STORE_ACTION_TRANSFERRED);
	assert_string_equal(r->rcpts[0].track.remote_mta, "dns; hop2.test");
	assert_int_equal(r->rcpts[0].final, 1);
	assert_int_equal(lookup_count(&e, "env3@a.test", &found), 1);
	assert_int_equal(found[0].rcpts[0].action, STORE_ACTION_TRANSFERRED);
	store_msgs_free(found, 1);
	env_free(&e);
}

/* The store lost everything (a new file): the journal replays it, from
 * the oldest segment since the store has no mark. */
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
	assert_int_equal(queue_submit(e.q, m, &body, 1, NULL, on_done, &e), 0);
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

/* The store applier writes the kept secret with the message (the sent
 * row), from the journal: also when the store is rebuilt from it. */
static void
test_store_sent_from_journal(void **state)
{
	struct env e;
	struct queue_msg *m = msg_new(78, 2);
	struct iovec body = { "x\r\n", 3 };
	struct store_msg *found;
	size_t n = 0;
	char path[128];
	int pass;

	(void)state;
	m->login = strdup("alice");
	m->secret = strdup("q7mYDHsA1t0Y3y2Fo9vEYTbJzP3rqqhO9kQZnqHrb2Y");
	m->subject = strdup("hello");
	env_init(&e, 0);
	assert_int_equal(queue_submit(e.q, m, &body, 1, NULL, on_done, &e), 0);
	wait_done(&e, 1);
	for (pass = 0; pass < 2; pass++) {
		wait_store(&e);
		assert_int_equal(
		    e.be->list_sent(e.reader, "alice", 0, &found, &n), 1);
		assert_int_equal(n, 1);
		assert_string_equal(found[0].envid, "env78@a.test");
		assert_string_equal(found[0].secret,
		    "q7mYDHsA1t0Y3y2Fo9vEYTbJzP3rqqhO9kQZnqHrb2Y");
		assert_string_equal(found[0].subject, "hello");
		assert_string_equal(found[0].login, "alice");
		assert_int_equal(found[0].nrcpt, 2);
		store_msgs_free(found, n);
		assert_int_equal(
		    e.be->list_sent(e.reader, "bob", 0, &found, &n), 0);
		if (pass == 1)
			break;
		env_stop(&e);
		snprintf(path, sizeof(path), "%s/tracking.db", e.dir);
		assert_int_equal(unlink(path), 0);
		snprintf(path, sizeof(path), "%s/tracking.db-wal", e.dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/tracking.db-shm", e.dir);
		unlink(path);
		env_start(&e, 0, NULL);
		assert_int_equal(e.recovered, 1);
		assert_string_equal(e.live[0]->login, "alice");
	}
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
	assert_int_equal(queue_submit(e.q, m, &body, 1, NULL, on_done, &e), 0);
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
	assert_int_equal(queue_submit(e.q, m, &body, 1, NULL, on_done, &e), 0);
	wait_done(&e, 1);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(e.failed, 1);
	assert_int_equal(e.last_err, EFBIG);
	assert_int_equal(queue_count(e.q), 0);
	queue_msg_free(m); /* a failed submit leaves m to the caller */
	assert_int_equal(
	    queue_submit(e.q, m2, &small, 1, NULL, on_done, &e), 0);
	wait_done(&e, 2);
	assert_int_equal(e.failed, 1);
	env_stop(&e);
	env_start(&e, 0, NULL);
	assert_int_equal(e.recovered, 1);
	assert_string_equal(e.live[0]->envid, "env2@a.test");
	env_free(&e);
}

/* Submits n messages of size octets each (body byte c). */
static void
submit_n(struct env *e, int first, int n, size_t size, char c,
    struct queue_msg **out)
{
	char *big = malloc(size);
	struct iovec body = { big, size };
	int i, start = e->done;

	memset(big, c, size);
	for (i = 0; i < n; i++) {
		struct queue_msg *m = msg_new(first + i, 1);

		assert_int_equal(
		    queue_submit(e->q, m, &body, 1, NULL, on_done, e), 0);
		wait_done(e, start + i + 1);
		if (out != NULL)
			out[i] = m;
	}
	free(big);
}

/* Issue 10 item 1: a deferred backlog that spans many segments, all of
 * it live, is never rewritten.  (Before: once live data spanned four
 * segments the oldest was relocated again and again, forever.) */
static void
test_idle_backlog_writes_nothing(void **state)
{
	struct env e;
	struct queue_stats before, after;

	(void)state;
	env_init(&e, 64 << 10); /* 64 KiB segments */
	submit_n(&e, 0, 24, 20 << 10, 'b', NULL); /* ~8 segments */
	wait_store(&e);
	run_for(&e, 1200);
	queue_stats(e.q, &before);
	assert_true(journal_newest(e.q->j) - journal_oldest(e.q->j) >= 6);
	run_for(&e, 3500); /* three compaction ticks, idle */
	queue_stats(e.q, &after);
	assert_int_equal(after.relocated, 0);
	assert_int_equal(after.written, before.written);
	assert_int_equal(after.records, before.records);
	/* restart: all there, and still nothing written while idle */
	env_stop(&e);
	env_start(&e, 64 << 10, NULL);
	assert_int_equal(e.recovered, 24);
	run_for(&e, 2500);
	queue_stats(e.q, &after);
	assert_int_equal(after.written, 0);
	env_free(&e);
}

/* A journal that is mostly dead is reclaimed once: the one queued
 * message is moved, dead segments dropped, and then it stays put. */
static void
test_compaction_converges(void **state)
{
	struct env e;
	struct queue_stats st, st2;
	struct queue_msg *keep[1], *dead[60];
	const struct queue_msg *k;
	struct buf b;
	int i;

	(void)state;
	env_init(&e, 16 << 10); /* 16 KiB segments */
	submit_n(&e, 999, 1, 3000, 'k', keep);
	submit_n(&e, 0, 60, 3000, 'x', dead);
	for (i = 0; i < 60; i++)
		assert_int_equal(queue_finish(e.q, dead[i], on_done, &e), 0);
	wait_done(&e, 121);
	wait_store(&e);
	assert_true(run_until(&e, relocated_and_dropped));
	queue_stats(e.q, &st);
	assert_int_equal(st.relocated, 1);
	run_for(&e, 2500);
	queue_stats(e.q, &st2);
	assert_int_equal(st2.relocated, 1); /* converged: no more copies */
	assert_int_equal(st2.written, st.written);
	assert_int_equal(queue_count(e.q), 1);
	buf_init(&b, 1 << 20);
	read_body(&e, keep[0], &b);
	assert_int_equal(b.len, 3000);
	assert_int_equal(b.data[0], 'k');
	buf_reset(&b);
	/* after a restart the kept message and its body are still there */
	env_stop(&e);
	env_start(&e, 16 << 10, NULL);
	assert_int_equal(e.recovered, 1);
	assert_non_null(k = find_envid(&e, "env999@a.test"));
	buf_init(&b, 1 << 20);
	read_body(&e, k, &b);
	assert_int_equal(b.len, 3000);
	assert_int_equal(b.data[2999], 'k');
	buf_reset(&b);
	env_free(&e);
}

/* Issue 10 item 2: a FINISH in flight and compaction.  Before: the
 * relocation was queued behind the FINISH, on_done freed the message and
 * then read it (use after free), and the copy landed after DONE, so the
 * delivered message came back at the restart. */
static void
test_finish_vs_relocate(void **state)
{
	struct env e;
	struct queue_stats st;
	struct queue_msg *keep[2], *dead[30];
	struct queue_body_reader *rd;
	int i;

	(void)state;
	env_init(&e, 16 << 10);
	submit_n(&e, 900, 2, 3000, 'k', keep);
	submit_n(&e, 0, 30, 3000, 'x', dead);
	/* An open reader keeps compaction (the tick, or a completion) from
	 * relocating keep[1] before the test asks for it. */
	assert_non_null(rd = queue_body_open(e.q, keep[1]));
	queue_hold(e.q, 1);
	for (i = 0; i < 30; i++)
		assert_int_equal(queue_finish(e.q, dead[i], on_done, &e), 0);
	/* keep[0]: its DONE waits in the same held batch */
	assert_int_equal(queue_finish(e.q, keep[0], on_done, &e), 0);
	queue_hold(e.q, 0);
	wait_done(&e, 32 + 31);
	wait_store(&e);
	queue_stats(e.q, &st);
	assert_int_equal(st.relocated, 0);
	/* Then compaction: keep[1] relocated, and while its copy is held
	 * its FINISH is asked: the DONE goes after the copy. */
	queue_hold(e.q, 1);
	queue_body_close(rd);
	compact_run(e.q);
	assert_int_equal(e.q->relocating, 1);
	assert_int_equal(queue_finish(e.q, keep[1], on_done, &e), 0);
	queue_hold(e.q, 0);
	wait_done(&e, 64);
	assert_int_equal(e.failed, 0);
	queue_stats(e.q, &st);
	assert_int_equal(st.relocated, 1);
	assert_int_equal(queue_count(e.q), 0);
	run_for(&e, 2500);
	env_stop(&e);
	env_start(&e, 16 << 10, NULL);
	assert_int_equal(e.recovered, 0); /* nothing comes back */
	env_free(&e);
}

static int
replay_nothing(void *arg, uint8_t type, const void *p, uint32_t len,
    const struct journal_pos *pos)
{
	(void)arg;
	(void)type;
	(void)p;
	(void)len;
	(void)pos;
	return 0;
}

/* A journal written by the earlier version: the relocated copy landed
 * after the DONE.  Replay must not bring the message back. */
static void
test_replay_copy_after_done(void **state)
{
	struct env e;
	struct queue_msg *m = msg_new(5, 1);
	struct journal *j;
	struct journal_pos pos;
	struct buf rec;
	struct iovec v;
	char err[256], path[128];
	uint64_t cut;

	(void)state;
	env_init(&e, 0);
	env_stop(&e);
	snprintf(path, sizeof(path), "%s/queue", e.dir);
	assert_non_null(j = journal_open(path, 0, err, sizeof(err)));
	assert_int_equal(journal_replay(j, replay_nothing, NULL, &cut), 0);
	buf_init(&rec, 1 << 20);
	assert_int_equal(record_msg_head(m, &rec), 0);
	assert_int_equal(buf_add(&rec, "body\r\n", 6), 0);
	v.iov_base = rec.data;
	v.iov_len = rec.len;
	assert_int_equal(journal_append(j, REC_MSG_V1, &v, 1, &pos), 0);
	{
		struct buf d;
		struct iovec dv;

		buf_init(&d, 4096);
		assert_int_equal(record_done(m->qid, &d), 0);
		dv.iov_base = d.data;
		dv.iov_len = d.len;
		assert_int_equal(journal_append(j, REC_DONE, &dv, 1, &pos), 0);
		buf_reset(&d);
	}
	assert_int_equal(journal_append(j, REC_MSG_V1, &v, 1, &pos), 0);
	assert_int_equal(journal_sync(j), 0);
	journal_free(j);
	buf_reset(&rec);
	env_start(&e, 0, err);
	assert_int_equal(e.recovered, 0);
	assert_non_null(strstr(err, "1 unreadable"));
	queue_msg_free(m);
	env_free(&e);
}

/* Issue 10 item 3: one owner of committed state.  An update changes the
 * queue's copy only once its record is durable. */
static void
test_update_applies_when_durable(void **state)
{
	struct env e;
	struct queue_msg *m = msg_new(1, 2);
	struct iovec body = { "x\r\n", 3 };

	(void)state;
	env_init(&e, 0);
	assert_int_equal(queue_submit(e.q, m, &body, 1, NULL, on_done, &e), 0);
	wait_done(&e, 1);
	queue_hold(e.q, 1);
	transferred(&e, m, 1);
	run_for(&e, 50);
	/* not yet durable: the committed copy is untouched */
	assert_int_equal(m->rcpts[1].final, 0);
	assert_int_equal(m->rcpts[1].track.action, STORE_ACTION_QUEUED);
	assert_int_equal(m->attempts, 0);
	/* and no relocation may snapshot a message with a request in
	 * flight */
	assert_int_equal(e.q->ix.tab != NULL, 1);
	assert_int_equal(index_find(&e.q->ix, m->qid)->pending, 1);
	queue_hold(e.q, 0);
	wait_done(&e, 2);
	assert_int_equal(m->rcpts[1].final, 1);
	assert_int_equal(m->rcpts[1].track.action, STORE_ACTION_TRANSFERRED);
	assert_int_equal(m->attempts, 1);
	assert_int_equal(index_find(&e.q->ix, m->qid)->pending, 0);
	/* a failed update leaves it as it was */
	__atomic_store_n(&fail_fdatasync, 1, __ATOMIC_SEQ_CST);
	transferred(&e, m, 0);
	wait_done(&e, 3);
	assert_int_equal(e.failed, 1);
	assert_int_equal(m->rcpts[0].final, 0);
	assert_int_equal(m->attempts, 1);
	env_free(&e);
}

/* Issue 10 item 7: while the store is down the node goes on, keeps every
 * segment the store has not applied, answers "failed"; when it comes
 * back it catches up from the journal (also across a restart). */
static void
test_store_down_keeps_segments(void **state)
{
	struct env e;
	struct queue_msg *m[40];
	struct store_msg *found;
	struct queue_stats st;
	uint64_t oldest;
	int i;

	(void)state;
	flaky = store_backend_sqlite;
	flaky.begin = flaky_begin;
	flaky.sync = flaky_sync;
	flaky.error = flaky_error;
	env_init_be(&e, 16 << 10, &flaky);
	__atomic_store_n(&store_down, 1, __ATOMIC_SEQ_CST);
	oldest = journal_oldest(e.q->j);
	submit_n(&e, 0, 40, 3000, 'x', m);
	for (i = 0; i < 40; i++)
		assert_int_equal(queue_finish(e.q, m[i], on_done, &e), 0);
	wait_done(&e, 80);
	assert_int_equal(e.failed, 0); /* the 250s went out */
	run_for(&e, 2500);
	assert_int_equal(queue_store_failed(e.q), 1);
	queue_stats(e.q, &st);
	assert_int_equal(st.dropped_segments, 0);
	assert_int_equal(journal_oldest(e.q->j), oldest);
	assert_true(journal_newest(e.q->j) - oldest >= 6);
	/* a crash now (no clean stop of the store's work) and the store
	 * back: the node starts and converges */
	env_stop(&e);
	__atomic_store_n(&store_down, 0, __ATOMIC_SEQ_CST);
	env_start(&e, 16 << 10, NULL);
	assert_int_equal(e.recovered, 0);
	assert_int_equal(lookup_count(&e, "env17@a.test", &found), 1);
	assert_int_equal(found[0].queued, 0);
	store_msgs_free(found, 1);
	assert_int_equal(queue_store_failed(e.q), 0);
	assert_true(run_until(&e, dropped_five));
	env_free(&e);
}

/* The store has a mark past the end of this journal (a store newer than
 * the journal): everything is applied again, from the oldest segment. */
static void
test_store_ahead(void **state)
{
	struct env e;
	struct queue_msg *m = msg_new(3, 1);
	struct iovec body = { "x\r\n", 3 };
	struct store_msg *found;
	struct store_mark mk;
	char path[128];

	(void)state;
	env_init(&e, 0);
	assert_int_equal(queue_submit(e.q, m, &body, 1, NULL, on_done, &e), 0);
	wait_done(&e, 1);
	wait_store(&e);
	memset(&mk, 0, sizeof(mk));
	snprintf(mk.journal, sizeof(mk.journal), "%s", journal_id(e.q->j));
	env_stop(&e);
	/* a store that lost the message but claims a later position */
	snprintf(path, sizeof(path), "rm -f %s/tracking.db*", e.dir);
	assert_int_equal(system(path), 0);
	{
		char err[256];
		struct store *st = store_backend_sqlite.open(
		    "sqlite", e.dir, 0, err, sizeof(err));

		assert_non_null(st);
		mk.seg = 99;
		mk.off = 1234;
		assert_int_equal(store_backend_sqlite.begin(st), 0);
		assert_int_equal(store_backend_sqlite.set_mark(st, &mk), 0);
		assert_int_equal(store_backend_sqlite.commit(st), 0);
		store_backend_sqlite.close(st);
	}
	env_start(&e, 0, NULL);
	assert_int_equal(lookup_count(&e, "env3@a.test", &found), 1);
	store_msgs_free(found, 1);
	env_free(&e);
}

/* Issue 10 item 9: a large body is spooled in chunks as it arrives and
 * reads back whole, across a restart and a relocation. */
static void
test_spooled_body(void **state)
{
	struct env e;
	struct queue_msg *m = msg_new(1, 1);
	struct queue_spool *sp;
	struct iovec head = { "Received: x\r\n", 14 };
	struct buf b, want;
	size_t i;
	int spins;

	(void)state;
	env_init(&e, 256 << 10);
	buf_init(&want, 8 << 20);
	assert_int_equal(buf_add(&want, head.iov_base, head.iov_len), 0);
	assert_non_null(sp = queue_spool_new(e.q));
	/* 1 MiB + a bit, 4000 octets at a time, pushed after each */
	for (i = 0; i < 270; i++) {
		char piece[4000];

		memset(piece, 'a' + (int)(i % 26), sizeof(piece));
		assert_int_equal(
		    buf_add(queue_spool_buf(sp), piece, sizeof(piece)), 0);
		assert_int_equal(buf_add(&want, piece, sizeof(piece)), 0);
		assert_int_equal(queue_spool_push(sp), 0);
		/* never more than two chunks in memory */
		assert_true(queue_spool_buf(sp)->len < QUEUE_CHUNK_SIZE);
		for (spins = 0; queue_spool_busy(sp) && spins < 10000; spins++)
			event_base_loop(e.base, EVLOOP_ONCE);
		assert_false(queue_spool_busy(sp));
	}
	assert_int_equal(queue_submit(e.q, m, &head, 1, sp, on_done, &e), 0);
	wait_done(&e, 1);
	assert_int_equal(e.failed, 0);
	assert_true(m->body.nchunk >= 16);
	assert_int_equal(m->size, want.len);
	buf_init(&b, 8 << 20);
	read_body(&e, m, &b);
	assert_int_equal(b.len, want.len);
	assert_memory_equal(b.data, want.data, want.len);
	buf_reset(&b);
	env_stop(&e);
	env_start(&e, 256 << 10, NULL);
	assert_int_equal(e.recovered, 1);
	buf_init(&b, 8 << 20);
	read_body(&e, e.live[0], &b);
	assert_int_equal(b.len, want.len);
	assert_memory_equal(b.data, want.data, want.len);
	buf_reset(&b);
	/* moved by compaction once the journal is mostly dead: the
	 * chunks are copied */
	{
		struct queue_msg *d[40];
		const struct queue_msg *k = e.live[0];
		struct queue_stats st;

		int base;

		submit_n(&e, 100, 40, 40000, 'x', d);
		base = e.done;
		for (i = 0; i < 40; i++)
			assert_int_equal(
			    queue_finish(e.q, d[i], on_done, &e), 0);
		wait_done(&e, base + 40);
		wait_store(&e);
		assert_true(run_until(&e, relocated_one));
		run_for(&e, 500); /* the copy's completion has run */
		queue_stats(e.q, &st);
		assert_int_equal(st.relocated, 1);
		assert_true(st.relocated_bytes >= want.len);
		buf_init(&b, 8 << 20);
		read_body(&e, k, &b);
		assert_int_equal(b.len, want.len);
		assert_memory_equal(b.data, want.data, want.len);
		buf_reset(&b);
	}
	env_stop(&e);
	env_start(&e, 256 << 10, NULL);
	assert_int_equal(e.recovered, 1);
	buf_init(&b, 8 << 20);
	read_body(&e, e.live[0], &b);
	assert_memory_equal(b.data, want.data, want.len);
	buf_reset(&b);
	buf_reset(&want);
	env_free(&e);
}

/* All spools together stay within QUEUE_SPOOL_BUDGET: past it a spool
 * fails with ENOBUFS (the session answers 451 4.3.1). */
static void
test_spool_budget(void **state)
{
	struct env e;
	struct queue_spool **sp;
	size_t i, n = QUEUE_SPOOL_BUDGET / QUEUE_CHUNK_SIZE + 4, failed = 0;
	static char piece[QUEUE_CHUNK_SIZE];

	(void)state;
	env_init(&e, 0);
	assert_non_null(sp = calloc(n, sizeof(*sp)));
	queue_hold(e.q, 1); /* nothing gets written: it all stays */
	for (i = 0; i < n; i++) {
		assert_non_null(sp[i] = queue_spool_new(e.q));
		assert_int_equal(
		    buf_add(queue_spool_buf(sp[i]), piece, sizeof(piece)), 0);
		if (queue_spool_push(sp[i]) == -1) {
			assert_int_equal(queue_spool_error(sp[i]), ENOBUFS);
			failed++;
		}
	}
	assert_true(failed >= 4);
	assert_true(e.q->spool_bytes <= QUEUE_SPOOL_BUDGET);
	for (i = 0; i < n; i++)
		queue_spool_free(sp[i]);
	queue_hold(e.q, 0);
	for (i = 0; i < 600 && e.q->spool_bytes != 0; i++)
		run_for(&e, 50);
	assert_int_equal(e.q->spool_bytes, 0);
	free(sp);
	env_free(&e);
}

/* Issue 10 item 6: no allocation between the sync and the callback.
 * Before: the index entry was allocated in the completion; when that
 * failed the client got 451 for a message that was in the journal and
 * delivered after the next restart. */
static void
test_completion_cannot_fail(void **state)
{
	struct env e;
	struct queue_msg *m = msg_new(1, 1);
	struct iovec body = { "x\r\n", 3 };

	(void)state;
	env_init(&e, 0);
	assert_int_equal(queue_submit(e.q, m, &body, 1, NULL, on_done, &e), 0);
	__atomic_store_n(&fail_calloc_main, 1, __ATOMIC_SEQ_CST);
	wait_done(&e, 1);
	__atomic_store_n(&fail_calloc_main, 0, __ATOMIC_SEQ_CST);
	assert_int_equal(e.failed, 0);
	assert_int_equal(queue_count(e.q), 1);
	env_stop(&e);
	env_start(&e, 0, NULL);
	assert_int_equal(e.recovered, 1); /* 250 <=> in the journal */
	env_free(&e);
}

/* Issue 10 item 5: a failed allocation in the segment accounting never
 * lets a live segment go.  Before: the count stayed zero and reclaim
 * deleted the segment with a live message in it.  Now the daemon stops
 * (the journal rebuilds everything at the restart). */
static void
test_accounting_enomem(void **state)
{
	struct env e;
	char path[128];
	pid_t pid;
	int status;

	(void)state;
	memset(&e, 0, sizeof(e));
	strcpy(e.dir, "/tmp/msgtrk-queue.XXXXXX");
	assert_non_null(mkdtemp(e.dir));
	if ((pid = fork()) == 0) {
		struct queue_msg *m[80];

		e.base = event_base_new();
		e.be = &store_backend_sqlite;
		env_start(&e, 4096, NULL);
		submit_n(&e, 0, 1, 3000, 'k', m); /* live, in segment 1 */
		/* the table of 64 segments grows at the 65th */
		fail_realloc_size = 128 * sizeof(struct segstat);
		submit_n(&e, 1, 79, 3000, 'x', m);
		_exit(0);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(!WIFEXITED(status) || WEXITSTATUS(status) != 0);
	snprintf(path, sizeof(path), "%s/queue/seg-%016x", e.dir, 1);
	assert_int_equal(access(path, F_OK), 0);
	e.base = event_base_new();
	e.be = &store_backend_sqlite;
	env_start(&e, 4096, NULL);
	assert_non_null(find_envid(&e, "env0@a.test"));
	env_free(&e);
}

/* Retention purge runs on the applier thread: an expired message that
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
	assert_int_equal(
	    queue_submit(e.q, gone, &body, 1, NULL, on_done, &e), 0);
	assert_int_equal(
	    queue_submit(e.q, queued, &body, 1, NULL, on_done, &e), 0);
	wait_done(&e, 2);
	assert_int_equal(queue_finish(e.q, gone, on_done, &e), 0);
	wait_done(&e, 3);
	wait_store(&e);
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
count_scanned(void *arg, const struct queue_msg *m)
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
		    queue_submit(e.q, m[i], &body, 1, NULL, on_done, &e), 0);
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
		    queue_submit(e.q, m[i], &body, 1, NULL, on_done, &e), 0);
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
	assert_int_equal(
	    queue_submit(e.q, m[2], &body, 1, NULL, on_done, &e), 0);
	wait_done(&e, 3);
	assert_int_equal(e.failed, 3);
	queue_msg_free(m[2]);
	/* a restart works again */
	env_stop(&e);
	env_start(&e, 0, NULL);
	m[0] = msg_new(5, 1);
	assert_int_equal(
	    queue_submit(e.q, m[0], &body, 1, NULL, on_done, &e), 0);
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
		cmocka_unit_test(test_codec_submission),
		cmocka_unit_test(test_store_sent_from_journal),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_group_commit_and_recovery),
		cmocka_unit_test(test_store_rebuilt_from_journal),
		cmocka_unit_test(test_torn_tail_recovery),
		cmocka_unit_test(test_failed_write_reports_error),
		cmocka_unit_test(test_idle_backlog_writes_nothing),
		cmocka_unit_test(test_compaction_converges),
		cmocka_unit_test(test_finish_vs_relocate),
		cmocka_unit_test(test_replay_copy_after_done),
		cmocka_unit_test(test_update_applies_when_durable),
		cmocka_unit_test(test_store_down_keeps_segments),
		cmocka_unit_test(test_store_ahead),
		cmocka_unit_test(test_spooled_body),
		cmocka_unit_test(test_spool_budget),
		cmocka_unit_test(test_completion_cannot_fail),
		cmocka_unit_test(test_accounting_enomem),
		cmocka_unit_test(test_purge),
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_sync_failure_fails_batch),
	};
	int failed = 0;

	main_thread = pthread_self();
	evthread_use_pthreads();
	failed +=
	    TABLE_RUN("queue_decode_bad", test_codec_bad, bad_cases, bad_name);
	failed += cmocka_run_group_tests_name("queue", tests, NULL, NULL);
	return failed;
}
