/*
 * test_store_reader: store reads on the worker pool (store_reader.h),
 * answered on a real libevent loop.  SQLite: results and their order,
 * search, cancel, a handle that could not open comes back on the next
 * job.  PostgreSQL (a private server, store_pg_server.c): the postmaster
 * and its backends stopped with SIGSTOP, a lookup with a 1000 ms deadline
 * answers STORE_READER_TIMEOUT in 1000-1500 ms while a timer on the loop
 * keeps ticking; after SIGCONT the next lookup succeeds.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "store/store.h"
#include "store/store_reader.h"
#include "store_pg_server.h"
#include "table.h"

#define CERT "AAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define OTHER "BBBBBBBBBBBBBBBBBBBBBBBBBBB"
#define NOW ((time_t)1700000000)

/* What a callback got. */
struct answer {
	int calls;
	int rc;
	struct store_msg *msgs;
	size_t n;
	char err[512];
	double at; /* when, on the monotonic clock */
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
on_answer(void *arg, int rc, struct store_msg *msgs, size_t n, const char *err)
{
	struct answer *a = arg;

	a->calls++;
	a->rc = rc;
	a->msgs = msgs;
	a->n = n;
	a->at = now_s();
	snprintf(a->err, sizeof(a->err), "%s", err != NULL ? err : "(null)");
}

static void
answer_clear(struct answer *a)
{
	store_msgs_free(a->msgs, a->n);
	memset(a, 0, sizeof(*a));
}

/* Runs the loop until a has its answer, at most 10 s. */
static void
wait_answer(struct event_base *base, struct answer *a)
{
	double end = now_s() + 10;

	while (a->calls == 0 && now_s() < end)
		event_base_loop(base, EVLOOP_ONCE);
	if (a->calls == 0)
		fail_msg("no answer within 10 s");
	assert_int_equal(a->calls, 1);
}

static void
mk_msg(struct store_msg *m, struct store_rcpt *r, const char *qid,
    const char *envid, const char *cert, time_t arrival, size_t nrcpt)
{
	size_t i;

	memset(m, 0, sizeof(*m));
	snprintf(m->qid, sizeof(m->qid), "%s", qid);
	m->envid = (char *)envid;
	snprintf(m->certifier, sizeof(m->certifier), "%s", cert);
	m->sender = (char *)"alice@src.test";
	m->reporting_mta = (char *)"dns; relay.test";
	m->arrival = arrival;
	m->expires = arrival + 86400;
	m->queued = 1;
	m->nrcpt = nrcpt;
	m->rcpts = r;
	for (i = 0; i < nrcpt; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].idx =
		    (uint32_t)(nrcpt - 1 - i) * 2; /* given out of order */
		r[i].orcpt = (char *)"rfc822;bob@dst.test";
		r[i].final_rcpt = (char *)"rfc822;bob@dst.test";
		r[i].action = STORE_ACTION_QUEUED;
	}
}

static void
put(const struct store_backend *b, struct store *st, const char *qid,
    const char *envid, const char *cert, time_t arrival, size_t nrcpt)
{
	struct store_rcpt r[4];
	struct store_msg m;

	mk_msg(&m, r, qid, envid, cert, arrival, nrcpt);
	if (b->put_msg(st, &m) != 0)
		fail_msg("put_msg: %s", b->error(st));
}

static void
test_sqlite(void **state)
{
	const struct store_backend *b = &store_backend_sqlite;
	char dir[64], sub[96], err[512], cmd[128];
	struct store_query q;
	struct event_base *base;
	struct store_reader *r;
	struct store_reader_job *j;
	struct store *st;
	struct answer a;
	size_t i;

	(void)state;
	memset(&a, 0, sizeof(a));
	snprintf(dir, sizeof(dir), "/tmp/test_store_reader.XXXXXX");
	assert_non_null(mkdtemp(dir));
	st = b->open("sqlite", dir, 0, err, sizeof(err));
	if (st == NULL)
		fail_msg("open: %s", err);
	put(b, st, "M1", "e@x", CERT, NOW + 5, 3);
	put(b, st, "DECOY", "e@x", OTHER, NOW + 6, 1);
	put(b, st, "M2", "e@x", CERT, NOW + 1, 2);
	put(b, st, "M3", "e@x", CERT, NOW + 9, 1);
	put(b, st, "N1", "f@x", CERT, NOW + 3, 1);
	assert_non_null(base = event_base_new());
	r = store_reader_new(base, b, "sqlite", dir, 3, err, sizeof(err));
	if (r == NULL)
		fail_msg("reader: %s", err);

	/* lookup: oldest first (write order), recipients by idx */
	assert_non_null(
	    store_reader_lookup(r, "e@x", CERT, 5000, on_answer, &a));
	wait_answer(base, &a);
	assert_int_equal(a.rc, 1);
	assert_int_equal(a.n, 3);
	assert_string_equal(a.msgs[0].qid, "M1");
	assert_string_equal(a.msgs[1].qid, "M2");
	assert_string_equal(a.msgs[2].qid, "M3");
	assert_int_equal(a.msgs[0].nrcpt, 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(a.msgs[0].rcpts[i].idx, i * 2);
	assert_string_equal(a.msgs[1].sender, "alice@src.test");
	answer_clear(&a);
	/* another certifier, an unknown envid */
	assert_non_null(
	    store_reader_lookup(r, "e@x", OTHER, 5000, on_answer, &a));
	wait_answer(base, &a);
	assert_int_equal(a.rc, 1);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.msgs[0].qid, "DECOY");
	answer_clear(&a);
	assert_non_null(
	    store_reader_lookup(r, "none@x", CERT, 5000, on_answer, &a));
	wait_answer(base, &a);
	assert_int_equal(a.rc, 0);
	assert_null(a.msgs);
	answer_clear(&a);

	/* search: one entry per recipient row, newest arrival first */
	memset(&q, 0, sizeof(q));
	q.action = -1;
	assert_non_null(store_reader_search(r, &q, 5000, on_answer, &a));
	wait_answer(base, &a);
	assert_int_equal(a.rc, 1);
	assert_int_equal(a.n, 8);
	assert_string_equal(a.msgs[0].qid, "M3");
	assert_string_equal(a.msgs[1].qid, "DECOY");
	assert_string_equal(a.msgs[2].qid, "M1");
	assert_int_equal(a.msgs[2].rcpts[0].idx, 0);
	assert_int_equal(a.msgs[4].rcpts[0].idx, 4);
	assert_string_equal(a.msgs[7].qid, "M2");
	for (i = 0; i < a.n; i++)
		assert_int_equal(a.msgs[i].nrcpt, 1);
	assert_string_equal(a.msgs[0].rcpts[0].orcpt, "rfc822;bob@dst.test");
	answer_clear(&a);
	{
		char envid[] = "f@x";

		q.envid = envid;
		q.limit = 1;
		assert_non_null(
		    store_reader_search(r, &q, 5000, on_answer, &a));
		envid[0] = 'z'; /* the query was copied */
	}
	wait_answer(base, &a);
	assert_int_equal(a.rc, 1);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.msgs[0].qid, "N1");
	answer_clear(&a);
	q.envid = NULL;
	q.action = 9;
	assert_non_null(store_reader_search(r, &q, 5000, on_answer, &a));
	wait_answer(base, &a);
	assert_int_equal(a.rc, -1);
	assert_string_equal(a.err, "search: invalid action 9");
	answer_clear(&a);

	/* list_sent: the login's automatically tracked messages, newest
	 * first, with the kept secret */
	{
		struct store_rcpt rr[1];
		struct store_msg m;
		char login[] = "alice";

		mk_msg(&m, rr, "S1", "s1@x", CERT, NOW + 20, 1);
		m.login = (char *)"alice";
		m.secret = (char *)"c2VjcmV0MQ";
		m.subject = (char *)"one";
		if (b->put_msg(st, &m) != 0)
			fail_msg("put_msg: %s", b->error(st));
		mk_msg(&m, rr, "S2", "s2@x", CERT, NOW + 30, 1);
		m.login = (char *)"alice";
		m.secret = (char *)"c2VjcmV0Mg";
		if (b->put_msg(st, &m) != 0)
			fail_msg("put_msg: %s", b->error(st));
		assert_non_null(
		    store_reader_list_sent(r, login, 0, 5000, on_answer, &a));
		login[0] = 'x'; /* copied */
		wait_answer(base, &a);
		assert_int_equal(a.rc, 1);
		assert_int_equal(a.n, 2);
		assert_string_equal(a.msgs[0].qid, "S2");
		assert_string_equal(a.msgs[0].secret, "c2VjcmV0Mg");
		assert_null(a.msgs[0].subject);
		assert_string_equal(a.msgs[1].subject, "one");
		assert_int_equal(a.msgs[1].nrcpt, 1);
		answer_clear(&a);
		assert_non_null(
		    store_reader_list_sent(r, "bob", 0, 5000, on_answer, &a));
		wait_answer(base, &a);
		assert_int_equal(a.rc, 0);
		answer_clear(&a);
		errno = 0;
		assert_null(
		    store_reader_list_sent(r, NULL, 0, 0, on_answer, &a));
		assert_int_equal(errno, EINVAL);
	}

	/* cancel: the callback never comes, nothing leaks */
	for (i = 0; i < 20; i++) {
		j = store_reader_lookup(r, "e@x", CERT, 5000, on_answer, &a);
		assert_non_null(j);
		store_reader_cancel(j);
	}
	{
		double end = now_s() + 0.3;

		while (now_s() < end)
			event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	}
	assert_int_equal(a.calls, 0);
	assert_int_equal(store_reader_pending(r), 0);
	store_reader_free(r);

	/* a handle that could not open is opened again for the next job */
	snprintf(sub, sizeof(sub), "%s/later", dir);
	r = store_reader_new(base, b, "sqlite", sub, 1, err, sizeof(err));
	assert_non_null(r);
	assert_non_null(
	    store_reader_lookup(r, "e@x", CERT, 5000, on_answer, &a));
	wait_answer(base, &a);
	assert_int_equal(a.rc, -1);
	assert_non_null(strstr(a.err, "later: No such file or directory"));
	answer_clear(&a);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_non_null(
	    store_reader_lookup(r, "e@x", CERT, 5000, on_answer, &a));
	wait_answer(base, &a);
	assert_int_equal(a.rc, 0);
	answer_clear(&a);
	/* bad arguments */
	errno = 0;
	assert_null(store_reader_lookup(r, NULL, CERT, 0, on_answer, &a));
	assert_int_equal(errno, EINVAL);
	assert_null(store_reader_search(r, NULL, 0, on_answer, &a));
	store_reader_free(r);

	b->close(st);
	event_base_free(base);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/*
 * PostgreSQL stopped with SIGSTOP: the kernel still ACKs, so no
 * client-side timeout fires; the deadline does.
 */
static int ticks;

static void
on_tick(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	ticks++;
}

static void
test_pg_stopped(void **state)
{
	const struct store_backend *b = store_backend_find("postgresql://");
	struct timeval tv = { 0, 10000 };
	struct event_config *cfg;
	struct event_base *base;
	struct store_reader *r;
	struct event *tick;
	struct store *st;
	struct answer a;
	char err[512];
	double t0, waited;
	size_t nsig, ncont;
	int stopped_ticks;

	(void)state;
	memset(&a, 0, sizeof(a));
	assert_non_null(b);
	raw_exec("DROP TABLE IF EXISTS sent, rcpt, msg, mark, msgtrk_schema "
	         "CASCADE");
	st = b->open(pg.uri, NULL, 0, err, sizeof(err));
	if (st == NULL)
		fail_msg("open: %s", err);
	put(b, st, "Q1", "e@x", CERT, NOW, 2);
	/* libevent's default clock is CLOCK_MONOTONIC_COARSE (a tick of a
	 * few ms), so a deadline may fire that much before the time asked;
	 * measured against CLOCK_MONOTONIC here, it must not. */
	assert_non_null(cfg = event_config_new());
	assert_int_equal(
	    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER), 0);
	assert_non_null(base = event_base_new_with_config(cfg));
	event_config_free(cfg);
	r = store_reader_new(base, b, pg.uri, NULL, 2, err, sizeof(err));
	if (r == NULL)
		fail_msg("reader: %s", err);
	assert_non_null(
	    store_reader_lookup(r, "e@x", CERT, 5000, on_answer, &a));
	wait_answer(base, &a);
	assert_int_equal(a.rc, 1);
	answer_clear(&a);
	assert_non_null(tick = event_new(base, -1, EV_PERSIST, on_tick, NULL));
	assert_int_equal(event_add(tick, &tv), 0);

	assert_int_equal(pg_signal_all(SIGSTOP, &nsig), 0);
	ticks = 0;
	t0 = now_s();
	if (store_reader_lookup(r, "e@x", CERT, 1000, on_answer, &a) == NULL) {
		pg_signal_all(SIGCONT, &ncont);
		fail_msg("submit: %s", strerror(errno));
	}
	while (a.calls == 0 && now_s() < t0 + 10)
		event_base_loop(base, EVLOOP_ONCE);
	waited = (a.calls ? a.at : now_s()) - t0;
	stopped_ticks = ticks;
	pg_signal_all(SIGCONT, &ncont);
	printf("pg stopped (%zu processes): lookup answered rc=%d after "
	       "%.0f ms; the loop ticked %d times (10 ms timer)\n",
	    nsig, a.rc, waited * 1000, stopped_ticks);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.rc, STORE_READER_TIMEOUT);
	assert_string_equal(a.err, "deadline passed");
	assert_true(waited >= 1.0 && waited <= 1.5);
	assert_true(stopped_ticks >= 50);
	assert_true(ncont >= nsig);
	answer_clear(&a);

	/* back: the next lookup answers */
	assert_non_null(
	    store_reader_lookup(r, "e@x", CERT, 5000, on_answer, &a));
	wait_answer(base, &a);
	assert_int_equal(a.rc, 1);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.msgs[0].nrcpt, 2);
	answer_clear(&a);
	event_free(tick);
	store_reader_free(r);
	b->close(st);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sqlite),
	};
	const struct CMUnitTest pg_tests[] = {
		cmocka_unit_test(test_pg_stopped),
	};
	int failed;

	failed = cmocka_run_group_tests_name("store_reader", tests, NULL, NULL);
	if (pg_setup() == -1) {
		/* build-aux/deps.sh installs the server: a failure. */
		printf("FAIL store_reader_pg: no PostgreSQL server\n");
		pg_teardown();
		return failed + 1;
	}
	failed += cmocka_run_group_tests_name(
	    "store_reader_pg", pg_tests, NULL, NULL);
	pg_teardown();
	return failed;
}
