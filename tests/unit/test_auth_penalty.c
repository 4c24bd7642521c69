/*
 * test_auth_penalty: the AUTH failure delay per client address, on a fake
 * clock: the schedule, decay, the IPv4 / mapped / IPv6 /64 keys
 * (net_client_key, shared with the MTQP limiter), the bound and eviction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_penalty.h"
#include "table.h"

#define T0 1000000 /* ms on the fake clock */

static void
test_delays(void **state)
{
	(void)state;
	assert_int_equal(auth_penalty_delay(0), 0);
	assert_int_equal(auth_penalty_delay(1), 500);
	assert_int_equal(auth_penalty_delay(2), 1000);
	assert_int_equal(auth_penalty_delay(3), 2000);
	assert_int_equal(auth_penalty_delay(4), 4000);
	assert_int_equal(auth_penalty_delay(5), 8000);
	assert_int_equal(auth_penalty_delay(6), 8000);
	assert_int_equal(auth_penalty_delay(AUTH_PENALTY_COUNT_MAX), 8000);
	assert_int_equal(auth_penalty_delay(1000), 8000);
}

static void
test_count_and_decay(void **state)
{
	struct auth_penalty *p = auth_penalty_new();
	unsigned i;

	(void)state;
	assert_non_null(p);
	assert_int_equal(auth_penalty_count(p, "192.0.2.1", T0), 0);
	for (i = 1; i <= 5; i++)
		assert_int_equal(auth_penalty_fail(p, "192.0.2.1", T0), i);
	assert_int_equal(auth_penalty_count(p, "192.0.2.1", T0), 5);
	/* Another address is not touched. */
	assert_int_equal(auth_penalty_count(p, "192.0.2.2", T0), 0);
	/* One failure forgotten per minute without failures. */
	assert_int_equal(
	    auth_penalty_count(p, "192.0.2.1", T0 + AUTH_PENALTY_DECAY_MS - 1),
	    5);
	assert_int_equal(
	    auth_penalty_count(p, "192.0.2.1", T0 + AUTH_PENALTY_DECAY_MS), 4);
	assert_int_equal(auth_penalty_count(p, "192.0.2.1",
	                     T0 + 3 * AUTH_PENALTY_DECAY_MS + 500),
	    2);
	/* A failure then counts from the decayed value. */
	assert_int_equal(auth_penalty_fail(p, "192.0.2.1",
	                     T0 + 3 * AUTH_PENALTY_DECAY_MS + 500),
	    3);
	assert_int_equal(auth_penalty_count(p, "192.0.2.1",
	                     T0 + 6 * AUTH_PENALTY_DECAY_MS + 500),
	    0);
	assert_int_equal(
	    auth_penalty_clients(p, T0 + 6 * AUTH_PENALTY_DECAY_MS + 500), 0);
	/* The count stops at its maximum. */
	for (i = 0; i < 40; i++)
		(void)auth_penalty_fail(p, "192.0.2.9", T0);
	assert_int_equal(
	    auth_penalty_count(p, "192.0.2.9", T0), AUTH_PENALTY_COUNT_MAX);
	auth_penalty_free(p);
}

struct key_case {
	const char *a, *b;
	int same;
};

static const struct key_case key_cases[] = {
	{ "192.0.2.1", "192.0.2.1", 1 },
	{ "192.0.2.1", "192.0.2.2", 0 },
	{ "192.0.2.1", "::ffff:192.0.2.1", 1 },
	{ "2001:db8:1:2::1", "2001:db8:1:2:ffff::9", 1 },
	{ "2001:db8:1:2::1", "2001:db8:1:3::1", 0 },
	{ "::1", "127.0.0.1", 0 },
	/* Anything not numeric is one shared client. */
	{ "?", "", 1 },
	{ "host.example", "?", 1 },
	{ "?", "192.0.2.1", 0 },
};

static const char *
key_name(const void *row)
{
	static char name[128];
	const struct key_case *c = row;

	snprintf(
	    name, sizeof(name), "%s %s %s", c->a, c->same ? "=" : "!=", c->b);
	return name;
}

static void
test_key(void **state)
{
	const struct key_case *c = *state;
	struct auth_penalty *p = auth_penalty_new();

	assert_non_null(p);
	assert_int_equal(auth_penalty_fail(p, c->a, T0), 1);
	assert_int_equal(auth_penalty_count(p, c->b, T0), c->same ? 1 : 0);
	auth_penalty_free(p);
}

/* A full table evicts the client whose last failure is the oldest. */
static void
test_eviction(void **state)
{
	struct auth_penalty *p = auth_penalty_new();
	char addr[64];
	unsigned i;

	(void)state;
	assert_non_null(p);
	for (i = 0; i < AUTH_PENALTY_ENTRIES; i++) {
		snprintf(addr, sizeof(addr), "10.%u.%u.1", i / 256, i % 256);
		assert_int_equal(auth_penalty_fail(p, addr, T0 + i), 1);
	}
	assert_int_equal(auth_penalty_clients(p, T0 + AUTH_PENALTY_ENTRIES),
	    AUTH_PENALTY_ENTRIES);
	/* 10.0.0.1 failed first: the newcomer takes its entry. */
	assert_int_equal(auth_penalty_fail(p, "192.0.2.1", T0 + 5000), 1);
	assert_int_equal(auth_penalty_count(p, "10.0.0.1", T0 + 5000), 0);
	assert_int_equal(auth_penalty_count(p, "10.0.1.1", T0 + 5000), 1);
	assert_int_equal(
	    auth_penalty_clients(p, T0 + 5000), AUTH_PENALTY_ENTRIES);
	/* Decayed entries are free again: once the 10.x clients are
	 * forgiven, a newcomer takes one of theirs, not 192.0.2.1's. */
	assert_int_equal(auth_penalty_fail(p, "192.0.2.2",
	                     T0 + AUTH_PENALTY_ENTRIES + AUTH_PENALTY_DECAY_MS),
	    1);
	assert_int_equal(auth_penalty_count(p, "192.0.2.1",
	                     T0 + AUTH_PENALTY_ENTRIES + AUTH_PENALTY_DECAY_MS),
	    1);
	assert_int_equal(auth_penalty_clients(p,
	                     T0 + AUTH_PENALTY_ENTRIES + AUTH_PENALTY_DECAY_MS),
	    2);
	auth_penalty_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delays),
		cmocka_unit_test(test_count_and_decay),
		cmocka_unit_test(test_eviction),
	};
	int failed = 0;

	failed += TABLE_RUN("auth_penalty_key", test_key, key_cases, key_name);
	failed +=
	    cmocka_run_group_tests_name("auth_penalty", tests, NULL, NULL);
	return failed != 0;
}
