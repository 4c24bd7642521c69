/*
 * test_ratelimit: the per-client GCRA table (src/common/ratelimit.c) with
 * the parameters its two users give it: the MTQP server's failed TRACKs
 * (burst 10, 6 s; its own sequences are in test_mtqp_answer.c) and the
 * HTTP server's tracking requests.  Rows: a burst and period, a client
 * sequence (calls at given times) and the waits expected.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/ratelimit.h"
#include "table.h"

#define T0 ((int64_t)1000000)

struct call {
	const char *addr; /* NULL ends the row */
	int64_t at; /* ms after T0 */
	int64_t wait; /* expected */
};

struct rl_case {
	const char *name;
	unsigned int burst;
	int64_t period;
	struct call calls[16];
};

static const struct rl_case cases[] = {
	{ "burst 3 then one a second", 3, 1000,
	    { { "192.0.2.1", 0, 0 }, { "192.0.2.1", 0, 0 },
	        { "192.0.2.1", 0, 0 }, { "192.0.2.1", 0, 1000 },
	        { "192.0.2.1", 0, 2000 }, { "192.0.2.2", 0, 0 },
	        { NULL, 0, 0 } } },
	{ "refill after idle", 2, 500,
	    { { "192.0.2.1", 0, 0 }, { "192.0.2.1", 0, 0 },
	        { "192.0.2.1", 0, 500 }, { "192.0.2.1", 5000, 0 },
	        { "192.0.2.1", 5000, 0 }, { "192.0.2.1", 5000, 500 },
	        { NULL, 0, 0 } } },
	{ "burst 1", 1, 2000,
	    { { "198.51.100.7", 0, 0 }, { "198.51.100.7", 100, 1900 },
	        { "198.51.100.7", 100, 3900 }, { NULL, 0, 0 } } },
	{ "one /64 is one client", 2, 1000,
	    { { "2001:db8:1:2::1", 0, 0 }, { "2001:db8:1:2::ffff", 0, 0 },
	        { "2001:db8:1:2:aaaa::3", 0, 1000 },
	        { "2001:db8:1:3::1", 0, 0 }, { NULL, 0, 0 } } },
	{ "mapped IPv4 is IPv4", 1, 1000,
	    { { "127.0.0.1", 0, 0 }, { "::ffff:127.0.0.1", 0, 1000 },
	        { NULL, 0, 0 } } },
	{ "the MTQP limit", 10, 6000,
	    { { "10.0.0.1", 0, 0 }, { "10.0.0.1", 0, 0 }, { "10.0.0.1", 0, 0 },
	        { "10.0.0.1", 0, 0 }, { "10.0.0.1", 0, 0 },
	        { "10.0.0.1", 0, 0 }, { "10.0.0.1", 0, 0 },
	        { "10.0.0.1", 0, 0 }, { "10.0.0.1", 0, 0 },
	        { "10.0.0.1", 0, 0 }, { "10.0.0.1", 0, 6000 },
	        { NULL, 0, 0 } } },
};

static struct sockaddr_storage
sa_of(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	else
		ss.ss_family = AF_UNIX;
	return ss;
}

static const char *
case_name(const void *row)
{
	return ((const struct rl_case *)row)->name;
}

static void
test_sequence(void **state)
{
	const struct rl_case *c = *state;
	struct ratelimit *r = calloc(1, sizeof(*r));
	size_t i;

	assert_non_null(r);
	for (i = 0; c->calls[i].addr != NULL; i++) {
		struct sockaddr_storage ss = sa_of(c->calls[i].addr);
		int64_t w = ratelimit_take(r, (struct sockaddr *)&ss, c->burst,
		    c->period, T0 + c->calls[i].at);

		if (w != c->calls[i].wait)
			fail_msg("call %zu (%s at +%lld): wait %lld, want %lld",
			    i, c->calls[i].addr, (long long)c->calls[i].at,
			    (long long)w, (long long)c->calls[i].wait);
	}
	free(r);
}

/* A full table: newcomers share one slot a period (fail closed), and an
 * address of another family is a newcomer. */
static void
test_full(void **state)
{
	struct ratelimit *r = calloc(1, sizeof(*r));
	struct sockaddr_storage ss;
	struct sockaddr_in sin;
	size_t i;

	(void)state;
	assert_non_null(r);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	for (i = 0; i < RATELIMIT_ENTRIES; i++) {
		sin.sin_addr.s_addr = htonl(0x0a000000 + (uint32_t)i);
		assert_true(ratelimit_take(
		                r, (struct sockaddr *)&sin, 1, 1000, T0) == 0);
	}
	sin.sin_addr.s_addr = htonl(0xc6336401);
	assert_true(
	    ratelimit_take(r, (struct sockaddr *)&sin, 5, 1000, T0) == 0);
	ss = sa_of("not an address");
	assert_true(
	    ratelimit_take(r, (struct sockaddr *)&ss, 5, 1000, T0) == 1000);
	assert_true(r->overflowed == 1);
	/* A period later every entry is full again: reused, with a burst. */
	assert_true(ratelimit_take(
	                r, (struct sockaddr *)&sin, 5, 1000, T0 + 1000) == 0);
	assert_true(ratelimit_take(
	                r, (struct sockaddr *)&sin, 5, 1000, T0 + 1000) == 0);
	free(r);
}

/* ratelimit_try: a refused call takes nothing, so the wait it returns is
 * when the next call gets in. */
static void
test_try(void **state)
{
	struct ratelimit *r = calloc(1, sizeof(*r));
	struct sockaddr_storage ss = sa_of("192.0.2.9");
	struct sockaddr *sa = (struct sockaddr *)&ss;
	int i;

	(void)state;
	assert_non_null(r);
	for (i = 0; i < 3; i++)
		assert_true(ratelimit_try(r, sa, 3, 1000, T0) == 0);
	/* Refused, however often: always the same wait. */
	for (i = 0; i < 5; i++)
		assert_true(ratelimit_try(r, sa, 3, 1000, T0 + 200) == 800);
	assert_true(ratelimit_try(r, sa, 3, 1000, T0 + 1000) == 0);
	assert_true(ratelimit_try(r, sa, 3, 1000, T0 + 1000) == 1000);
	/* take() after try() shares the bucket: it waits its turn. */
	assert_true(ratelimit_take(r, sa, 3, 1000, T0 + 1000) == 1000);
	assert_true(ratelimit_try(r, sa, 3, 1000, T0 + 1000) == 2000);
	free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_try),
	};
	int failed =
	    cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);

	failed += TABLE_RUN("ratelimit", test_sequence, cases, case_name);
	return failed != 0;
}
