/*
 * bench_util: what every bench tool needs: a monotonic clock and a
 * strict number parser for its options.
 */
#ifndef MSGTRK_BENCH_UTIL_H
#define MSGTRK_BENCH_UTIL_H

/* Seconds on CLOCK_MONOTONIC. */
double bench_now(void);

/* Parses s as a decimal number in [min, max] (digits only, no sign or
 * space) into *out.  Returns 0, or -1. */
int bench_num(const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *out);

#endif /* MSGTRK_BENCH_UTIL_H */
