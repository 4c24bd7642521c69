/*
 * bench_hist: a latency histogram with 1 microsecond buckets up to
 * BENCH_HIST_MAX_US; slower samples are counted in one overflow bucket
 * (reported as "> BENCH_HIST_MAX_US").
 */
#ifndef MSGTRK_BENCH_HIST_H
#define MSGTRK_BENCH_HIST_H

#include <stdint.h>

/* 1 s: far beyond any latency the targets allow (p99 < 2 ms). */
#define BENCH_HIST_MAX_US 1000000

struct bench_hist;

/* Returns a new empty histogram, or NULL if out of memory. */
struct bench_hist *bench_hist_new(void);

/* Frees h; accepts NULL. */
void bench_hist_free(struct bench_hist *h);

/* Records one sample of us microseconds. */
void bench_hist_add(struct bench_hist *h, uint64_t us);

/* Samples recorded. */
uint64_t bench_hist_count(const struct bench_hist *h);

/* The smallest bucket value v such that at least per_mille/1000 of the
 * samples are <= v; BENCH_HIST_MAX_US + 1 if that falls in the overflow;
 * 0 for an empty histogram. */
uint64_t bench_hist_pct(const struct bench_hist *h, unsigned per_mille);

/* Mean in microseconds (overflow samples counted as BENCH_HIST_MAX_US). */
double bench_hist_mean(const struct bench_hist *h);

#endif /* MSGTRK_BENCH_HIST_H */
