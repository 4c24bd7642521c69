/*
 * bench_hist: see bench_hist.h.
 */
#include <stdlib.h>

#include "bench_hist.h"

struct bench_hist {
	uint64_t n;
	uint64_t sum;
	uint32_t *bucket; /* BENCH_HIST_MAX_US + 2: the last is overflow */
};

struct bench_hist *
bench_hist_new(void)
{
	struct bench_hist *h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->bucket = calloc(BENCH_HIST_MAX_US + 2, sizeof(*h->bucket));
	if (h->bucket == NULL) {
		free(h);
		return NULL;
	}
	return h;
}

void
bench_hist_free(struct bench_hist *h)
{
	if (h == NULL)
		return;
	free(h->bucket);
	free(h);
}

void
bench_hist_add(struct bench_hist *h, uint64_t us)
{
	if (us > BENCH_HIST_MAX_US)
		us = BENCH_HIST_MAX_US + 1;
	if (h->bucket[us] < UINT32_MAX) {
		h->bucket[us]++;
		h->n++;
		h->sum += us;
	}
}

uint64_t
bench_hist_count(const struct bench_hist *h)
{
	return h->n;
}

uint64_t
bench_hist_pct(const struct bench_hist *h, unsigned per_mille)
{
	uint64_t want, seen = 0, v;

	if (h->n == 0)
		return 0;
	/* ceil(n * p / 1000), at least 1 */
	want = (h->n * per_mille + 999) / 1000;
	if (want == 0)
		want = 1;
	for (v = 0; v <= BENCH_HIST_MAX_US + 1; v++) {
		seen += h->bucket[v];
		if (seen >= want)
			return v;
	}
	return BENCH_HIST_MAX_US + 1;
}

double
bench_hist_mean(const struct bench_hist *h)
{
	return h->n ? (double)h->sum / (double)h->n : 0.0;
}
