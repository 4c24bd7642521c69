/*
 * Unit tests of the delivery's connection slots and their wait list:
 * DELIVERY_CONN_PER_HOST_MAX and DELIVERY_CONN_MAX, first come first
 * served, a freed slot handed to the first waiter that can use it (and
 * only one), cancellation of a queued and of a granted wait, and
 * slots_pass() (a session handed to a waiter, counts unchanged).
 * A real event base delivers the grants, as in the daemon.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "delivery/delivery_int.h"

struct fixture {
	struct event_base *base;
	struct slots *s;
};

/* A waiter and what its callback saw. */
struct wait {
	struct slots_waiter w;
	int called;
	int order; /* the n-th callback of the test, from 1 */
};

static int callbacks;

static void
granted(void *arg)
{
	struct wait *x = arg;

	x->called++;
	x->order = ++callbacks;
}

static int
setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	assert_non_null(f.base = event_base_new());
	assert_non_null(f.s = slots_new(f.base));
	callbacks = 0;
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	slots_free(f->s);
	event_base_free(f->base);
	return 0;
}

/* Runs the callbacks that are due (grants are delivered from the loop,
 * never from inside the call that made them). */
static void
run(struct fixture *f)
{
	event_base_loop(f->base, EVLOOP_NONBLOCK);
}

static void
fill_host(struct fixture *f, const char *host, int n)
{
	int i;

	for (i = 0; i < n; i++)
		assert_int_equal(slots_get(f->s, host), 0);
}

static void
wait_on(struct fixture *f, struct wait *x, const char *host)
{
	memset(x, 0, sizeof(*x));
	assert_int_equal(slots_wait(f->s, &x->w, host, granted, x), 0);
}

static void
test_per_host_limit(void **state)
{
	struct fixture *f = *state;

	fill_host(f, "a.test", DELIVERY_CONN_PER_HOST_MAX);
	assert_int_equal(slots_get(f->s, "a.test"), -1);
	/* Another host is not held back by a's limit. */
	assert_int_equal(slots_get(f->s, "b.test"), 0);
	slots_put(f->s, "a.test");
	assert_int_equal(slots_get(f->s, "a.test"), 0);
	slots_put(f->s, "b.test");
	fill_host(f, "b.test", DELIVERY_CONN_PER_HOST_MAX);
	assert_int_equal(slots_get(f->s, "b.test"), -1);
}

static void
test_fifo_per_host(void **state)
{
	struct fixture *f = *state;
	struct wait x1, x2, y;

	fill_host(f, "a.test", DELIVERY_CONN_PER_HOST_MAX);
	wait_on(f, &x1, "a.test");
	wait_on(f, &x2, "a.test");
	/* b has room: its waiter is granted at once (on the next turn),
	 * whatever waits before it for a. */
	wait_on(f, &y, "b.test");
	assert_int_equal(y.called, 0); /* never from inside the call */
	run(f);
	assert_int_equal(y.called, 1);
	assert_int_equal(x1.called + x2.called, 0);
	/* One slot of a comes free: the first waiter for a, and only it. */
	slots_put(f->s, "a.test");
	run(f);
	assert_int_equal(x1.called, 1);
	assert_int_equal(x2.called, 0);
	/* x1 holds the slot now: a is full again. */
	assert_int_equal(slots_get(f->s, "a.test"), -1);
	slots_put(f->s, "a.test");
	run(f);
	assert_int_equal(x2.called, 1);
	assert_true(x1.order < x2.order);
}

static void
test_overall_limit(void **state)
{
	struct fixture *f = *state;
	struct wait xa, xb, xc;
	char host[32];
	int i;

	/* DELIVERY_CONN_MAX slots over hosts h0, h1, ... */
	for (i = 0; i < DELIVERY_CONN_MAX; i++) {
		snprintf(host, sizeof(host), "h%d.test",
		    i / DELIVERY_CONN_PER_HOST_MAX);
		assert_int_equal(slots_get(f->s, host), 0);
	}
	assert_int_equal(slots_get(f->s, "new.test"), -1);
	/* h0 is at its own limit too; new1 and new2 only at the overall. */
	wait_on(f, &xa, "h0.test");
	wait_on(f, &xb, "new1.test");
	wait_on(f, &xc, "new2.test");
	run(f);
	assert_int_equal(xa.called + xb.called + xc.called, 0);
	/* A slot of h1 comes free: nobody waits for h1, and h0 is still at
	 * its limit, so the first waiter that may use it is new1. */
	slots_put(f->s, "h1.test");
	run(f);
	assert_int_equal(xa.called, 0);
	assert_int_equal(xb.called, 1);
	assert_int_equal(xc.called, 0);
	/* A slot of h0: h0's waiter came first and fits now. */
	slots_put(f->s, "h0.test");
	run(f);
	assert_int_equal(xa.called, 1);
	assert_int_equal(xc.called, 0);
	slots_put(f->s, "h2.test");
	run(f);
	assert_int_equal(xc.called, 1);
}

static void
test_cancel(void **state)
{
	struct fixture *f = *state;
	struct wait x1, x2, x3;

	fill_host(f, "a.test", DELIVERY_CONN_PER_HOST_MAX);
	wait_on(f, &x1, "a.test");
	wait_on(f, &x2, "a.test");
	wait_on(f, &x3, "a.test");
	/* A queued waiter leaves the line. */
	slots_cancel(&x1.w);
	slots_put(f->s, "a.test");
	/* x2 is granted but not yet called back: withdrawing it gives its
	 * slot to x3. */
	slots_cancel(&x2.w);
	run(f);
	assert_int_equal(x1.called, 0);
	assert_int_equal(x2.called, 0);
	assert_int_equal(x3.called, 1);
	assert_int_equal(slots_get(f->s, "a.test"), -1);
	/* Cancelling an idle waiter does nothing. */
	slots_cancel(&x1.w);
	assert_int_equal(slots_get(f->s, "a.test"), -1);
}

static int
match_second(const struct slots_waiter *w, void *ctx)
{
	return w == ctx;
}

static void
test_pass(void **state)
{
	struct fixture *f = *state;
	struct wait x1, x2, y;

	fill_host(f, "a.test", DELIVERY_CONN_PER_HOST_MAX);
	wait_on(f, &x1, "a.test");
	wait_on(f, &x2, "a.test");
	wait_on(f, &y, "b.test");
	run(f); /* y: b had room */
	assert_int_equal(y.called, 1);
	/* Nobody matches: the caller keeps its slot. */
	assert_null(slots_pass(f->s, "c.test", match_second, &x2.w));
	/* The matching waiter for a is handed the session, not called back;
	 * the counts are unchanged (a is still full). */
	assert_ptr_equal(slots_pass(f->s, "a.test", match_second, &x2.w), &x2);
	assert_int_equal(x2.w.state, SLOTS_WAIT_IDLE);
	assert_int_equal(slots_get(f->s, "a.test"), -1);
	run(f);
	assert_int_equal(x1.called + x2.called, 0);
	/* x1 is still first in line for a. */
	slots_put(f->s, "a.test");
	run(f);
	assert_int_equal(x1.called, 1);
	assert_int_equal(x2.called, 0);
}

static void
test_backlog(void **state)
{
	struct fixture *f = *state;
	static struct wait x[2000];
	size_t i, n = sizeof(x) / sizeof(x[0]);

	/* A backlog to one host: each freed slot goes to the next in line,
	 * in order, and exactly one per slot. */
	fill_host(f, "slow.test", DELIVERY_CONN_PER_HOST_MAX);
	for (i = 0; i < n; i++)
		wait_on(f, &x[i], "slow.test");
	for (i = 0; i < n; i++) {
		slots_put(f->s, "slow.test");
		run(f);
		assert_int_equal(x[i].called, 1);
		assert_int_equal(x[i].order, (int)i + 1);
		if (i + 1 < n)
			assert_int_equal(x[i + 1].called, 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_per_host_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_fifo_per_host, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_overall_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backlog, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
