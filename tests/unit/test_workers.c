/*
 * test_workers: the worker pool on a real event base and real threads.
 * Jobs that must outlive their deadline block on a gate the test opens.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/workers.h"
#include "table.h"

struct gate {
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	int open;
	int entered;
};

static struct gate gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
	0, 0 };

static void
gate_reset(void)
{
	pthread_mutex_lock(&gate.mtx);
	gate.open = 0;
	gate.entered = 0;
	pthread_mutex_unlock(&gate.mtx);
}

static void
gate_open(void)
{
	pthread_mutex_lock(&gate.mtx);
	gate.open = 1;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.mtx);
}

static void
gate_wait_entered(int n)
{
	pthread_mutex_lock(&gate.mtx);
	while (gate.entered < n) {
		pthread_mutex_unlock(&gate.mtx);
		usleep(1000);
		pthread_mutex_lock(&gate.mtx);
	}
	pthread_mutex_unlock(&gate.mtx);
}

struct job {
	int blocking;
	int ran;
	int done_calls;
	int abandoned;
	enum workers_status status;
	int order;
	void *ctx_seen;
};

static int done_order;
static int abandon_count;
static pthread_mutex_t abandon_mtx = PTHREAD_MUTEX_INITIALIZER;

static void
run(void *ctx, void *arg)
{
	struct job *j = arg;

	j->ctx_seen = ctx;
	if (j->blocking) {
		pthread_mutex_lock(&gate.mtx);
		gate.entered++;
		while (!gate.open)
			pthread_cond_wait(&gate.cond, &gate.mtx);
		pthread_mutex_unlock(&gate.mtx);
	}
	j->ran = 1;
}

static void
done(void *arg, enum workers_status st)
{
	struct job *j = arg;

	j->done_calls++;
	j->status = st;
	j->order = ++done_order;
}

static void
abandon(void *arg)
{
	struct job *j = arg;

	pthread_mutex_lock(&abandon_mtx);
	j->abandoned++;
	abandon_count++;
	pthread_mutex_unlock(&abandon_mtx);
}

static int ctx_token;

static void *
init_ok(void *pool_arg, unsigned int index, int *ok)
{
	(void)pool_arg;
	(void)index;
	*ok = 1;
	return &ctx_token;
}

static void *
init_fail_first(void *pool_arg, unsigned int index, int *ok)
{
	(void)pool_arg;
	*ok = index != 0;
	return &ctx_token;
}

static const struct workers_ops ops = { init_ok, NULL };

static struct workers *
pool(struct event_base *base, unsigned int n, const struct workers_ops *o)
{
	char err[128];
	struct workers *w;

	w = workers_new(base, "test", n, o, NULL, err, sizeof(err));
	assert_non_null(w);
	return w;
}

/* Runs the loop until pred is true (bounded: 10 s). */
static void
loop_until(struct event_base *base, int (*pred)(void *), void *arg)
{
	int i;

	for (i = 0; i < 10000 && !pred(arg); i++) {
		struct timeval tv = { 0, 1000 };

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	assert_true(pred(arg));
}

static int
all_done(void *arg)
{
	struct workers *w = arg;

	return workers_pending(w) == 0;
}

static int
one_done(void *arg)
{
	return ((struct job *)arg)->done_calls > 0;
}

static void
test_order_one_thread(void **state)
{
	struct event_base *base = event_base_new();
	struct workers *w = pool(base, 1, &ops);
	struct job jobs[50];
	int i;

	(void)state;
	memset(jobs, 0, sizeof(jobs));
	done_order = 0;
	for (i = 0; i < 50; i++)
		assert_non_null(
		    workers_submit(w, run, done, abandon, &jobs[i], 0));
	loop_until(base, all_done, w);
	for (i = 0; i < 50; i++) {
		assert_int_equal(jobs[i].ran, 1);
		assert_int_equal(jobs[i].done_calls, 1);
		assert_int_equal(jobs[i].status, WORKERS_DONE);
		assert_int_equal(jobs[i].order, i + 1);
		assert_ptr_equal(jobs[i].ctx_seen, &ctx_token);
		assert_int_equal(jobs[i].abandoned, 0);
	}
	workers_free(w);
	event_base_free(base);
}

static void
test_deadline_running(void **state)
{
	struct event_base *base = event_base_new();
	struct workers *w = pool(base, 1, &ops);
	struct job j, k;

	(void)state;
	memset(&j, 0, sizeof(j));
	memset(&k, 0, sizeof(k));
	gate_reset();
	abandon_count = 0;
	j.blocking = 1;
	assert_non_null(workers_submit(w, run, done, abandon, &j, 50));
	/* k waits behind j and times out without ever running */
	assert_non_null(workers_submit(w, run, done, abandon, &k, 80));
	gate_wait_entered(1);
	loop_until(base, one_done, &k);
	assert_int_equal(j.done_calls, 1);
	assert_int_equal(j.status, WORKERS_TIMEOUT);
	assert_int_equal(k.status, WORKERS_TIMEOUT);
	assert_int_equal(k.ran, 0);
	assert_int_equal(k.abandoned, 1); /* at once, on the loop */
	assert_int_equal(j.abandoned, 0); /* still running */
	assert_int_equal(workers_pending(w), 0);
	gate_open();
	/* the late result is abandoned on the worker, never done() again */
	while (__atomic_load_n(&j.abandoned, __ATOMIC_SEQ_CST) == 0)
		usleep(1000);
	{
		struct timeval tv = { 0, 20000 };

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	assert_int_equal(j.done_calls, 1);
	assert_int_equal(j.ran, 1);
	workers_free(w);
	event_base_free(base);
}

static void
test_cancel(void **state)
{
	struct event_base *base = event_base_new();
	struct workers *w = pool(base, 1, &ops);
	struct workers_job *hj, *hk;
	struct job j, k;

	(void)state;
	memset(&j, 0, sizeof(j));
	memset(&k, 0, sizeof(k));
	gate_reset();
	j.blocking = 1;
	assert_non_null(hj = workers_submit(w, run, done, abandon, &j, 0));
	assert_non_null(hk = workers_submit(w, run, done, abandon, &k, 0));
	gate_wait_entered(1);
	workers_cancel(hk); /* waiting: abandoned now */
	assert_int_equal(k.abandoned, 1);
	workers_cancel(hj); /* running: abandoned on its thread */
	assert_int_equal(workers_pending(w), 0);
	gate_open();
	while (__atomic_load_n(&j.abandoned, __ATOMIC_SEQ_CST) == 0)
		usleep(1000);
	{
		struct timeval tv = { 0, 20000 };

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	assert_int_equal(j.done_calls, 0);
	assert_int_equal(k.done_calls, 0);
	assert_int_equal(k.ran, 0);
	workers_free(w);
	event_base_free(base);
}

/* The waiting queue is bounded: past WORKERS_QUEUE_MAX, EAGAIN. */
static void
test_queue_full(void **state)
{
	struct event_base *base = event_base_new();
	struct workers *w = pool(base, 1, &ops);
	struct job *jobs = calloc(WORKERS_QUEUE_MAX + 2, sizeof(*jobs));
	struct job extra;
	size_t i;

	(void)state;
	assert_non_null(jobs);
	memset(&extra, 0, sizeof(extra));
	gate_reset();
	jobs[0].blocking = 1;
	assert_non_null(workers_submit(w, run, done, abandon, &jobs[0], 0));
	gate_wait_entered(1);
	for (i = 1; i <= WORKERS_QUEUE_MAX; i++)
		assert_non_null(
		    workers_submit(w, run, done, abandon, &jobs[i], 0));
	errno = 0;
	assert_null(workers_submit(w, run, done, abandon, &extra, 0));
	assert_int_equal(errno, EAGAIN);
	gate_open();
	loop_until(base, all_done, w);
	for (i = 0; i <= WORKERS_QUEUE_MAX; i++)
		assert_int_equal(jobs[i].done_calls, 1);
	assert_int_equal(extra.done_calls, 0);
	workers_free(w);
	event_base_free(base);
	free(jobs);
}

/* A thread whose init fails runs nothing; the others take its jobs. */
static void
test_init_failure(void **state)
{
	static const struct workers_ops half = { init_fail_first, NULL };
	struct event_base *base = event_base_new();
	struct workers *w = pool(base, 2, &half);
	struct job jobs[20];
	int i;

	(void)state;
	memset(jobs, 0, sizeof(jobs));
	for (i = 0; i < 20; i++)
		assert_non_null(
		    workers_submit(w, run, done, abandon, &jobs[i], 0));
	loop_until(base, all_done, w);
	for (i = 0; i < 20; i++)
		assert_int_equal(jobs[i].status, WORKERS_DONE);
	workers_free(w);
	event_base_free(base);
}

/* workers_free: waiting jobs are told STOPPED, the running one finishes. */
static void
test_free_with_jobs(void **state)
{
	struct event_base *base = event_base_new();
	struct workers *w = pool(base, 1, &ops);
	struct job j, k;

	(void)state;
	memset(&j, 0, sizeof(j));
	memset(&k, 0, sizeof(k));
	gate_reset();
	j.blocking = 1;
	assert_non_null(workers_submit(w, run, done, abandon, &j, 0));
	assert_non_null(workers_submit(w, run, done, abandon, &k, 0));
	gate_wait_entered(1);
	gate_open();
	workers_free(w);
	assert_int_equal(j.done_calls, 1);
	assert_int_equal(j.status, WORKERS_DONE);
	assert_int_equal(k.done_calls, 1);
	/* k either ran (if the thread took it before the stop) or not */
	assert_true(k.status == WORKERS_STOPPED || k.status == WORKERS_DONE);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_one_thread),
		cmocka_unit_test(test_deadline_running),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_queue_full),
		cmocka_unit_test(test_init_failure),
		cmocka_unit_test(test_free_with_jobs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
