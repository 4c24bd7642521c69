/*
 * bulkload: fills a tracking store with N tracked messages, one
 * recipient each, through the store API (store.h) in batches, the way
 * msgtrkd's queue writer does; prints the insert rate and the bytes per
 * tracked recipient (issue 5 target: <= 400).  With -l SECONDS it then
 * times lookups of random envids (the secret's certifier, then lookup by
 * envid and certifier: what an MTQP TRACK costs in the store): the
 * store's bound for bench/mtqp-load.
 *
 *   bulkload -d DATA_DIR [-n N] [-b BATCH] [-l SECONDS] [-S SEED]
 *            [-s STORE]
 *
 * Message i has envid bench_key_envid(i) and the certifier of
 * bench_key_secret(i) (bench_key.h), so bench/mtqp-load can ask for it.
 * DATA_DIR must not hold a store already (the numbers would be wrong).
 * -s names the store as msgtrkd's "store" key does: sqlite (the default,
 * DATA_DIR/tracking.db) or a postgresql:// URI (an empty database, whose
 * schema is made here; the bytes per recipient are then not measured
 * and print as 0).
 *
 * Trusts: its arguments.  Privileges: none needed.  Output: one line
 * "bulkload key=value..." (and "lookup key=value..." with -l); errors on
 * stderr, exit 1; usage errors exit 2.
 */
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_hist.h"
#include "bench_util.h"
#include "bench_key.h"
#include "store/store.h"

/* Issue 5: "a store pre-filled with 1,000,000 tracked messages". */
#define BULKLOAD_DEFAULT_N 1000000ULL
/* Messages per transaction: what a busy group commit would gather. */
#define BULKLOAD_DEFAULT_BATCH 10000ULL
/* Bounds on the arguments: 10^9 messages (the envid format holds 10^12),
 * batches of at most 10^6, lookups for at most an hour. */
#define BULKLOAD_N_MAX 1000000000ULL
#define BULKLOAD_BATCH_MAX 1000000ULL
#define BULKLOAD_SECONDS_MAX 3600ULL
/* sync() fails while a reader holds an old snapshot: retry this often. */
#define BULKLOAD_SYNC_TRIES 50
/* Retention of the loaded records: mtrk_default_timeout (9d). */
#define BULKLOAD_RETENTION (9 * 86400)

/* Fills *m (with one recipient *r and the strings in the caller's
 * buffers) for message i.  Returns 0 or -1. */
static int
bulkload_msg(uint64_t i, time_t now, struct store_msg *m, struct store_rcpt *r,
    char *envid, size_t envidsize, char *orcpt, size_t orcptsize, char *reply,
    size_t replysize)
{
	int n;

	memset(m, 0, sizeof(*m));
	memset(r, 0, sizeof(*r));
	n = snprintf(m->qid, sizeof(m->qid), "B%015" PRIu64, i);
	if (n < 0 || (size_t)n >= sizeof(m->qid))
		return -1;
	if (bench_key_envid(i, envid, envidsize) == -1 ||
	    bench_key_certifier(i, m->certifier) == -1)
		return -1;
	n = snprintf(
	    orcpt, orcptsize, "rfc822;rcpt%" PRIu64 "@dest.bench.test", i);
	if (n < 0 || (size_t)n >= orcptsize)
		return -1;
	/* A Postfix-like 250 text, as the next hop's reply is stored. */
	n = snprintf(reply, replysize, "250 2.0.0 Ok: queued as 4B%09" PRIx64,
	    i & (uint64_t)0xfffffffff);
	if (n < 0 || (size_t)n >= replysize)
		return -1;
	m->envid = envid;
	m->sender = "sender@client.bench.test";
	m->reporting_mta = "msgtrkd.bench.test";
	m->arrival = now;
	m->expires = now + BULKLOAD_RETENTION;
	m->queued = 0;
	m->nrcpt = 1;
	m->rcpts = r;
	r->idx = 0;
	r->orcpt = orcpt;
	r->final_rcpt = orcpt;
	r->action = STORE_ACTION_RELAYED;
	memcpy(r->status, "2.1.9", sizeof("2.1.9"));
	r->remote_mta = "dns; [127.0.0.1]";
	r->last_attempt = now;
	r->will_retry_until = 0;
	r->reply = reply;
	return 0;
}

static long long
bulkload_size(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;
	int n;

	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path) || stat(path, &st) == -1)
		return 0;
	return (long long)st.st_size;
}

static int
bulkload_fill(const struct store_backend *be, struct store *st, uint64_t n,
    uint64_t batch, const char *dir)
{
	char envid[BENCH_KEY_ENVID_SIZE], orcpt[96], reply[64];
	struct store_msg m;
	struct store_rcpt r;
	time_t now = time(NULL);
	uint64_t i;
	double t0, t1;
	long long bytes, wal;
	int tries;

	t0 = bench_now();
	for (i = 0; i < n; i++) {
		if (i % batch == 0 && be->begin(st) == -1)
			goto fail;
		if (bulkload_msg(i, now, &m, &r, envid, sizeof(envid), orcpt,
		        sizeof(orcpt), reply, sizeof(reply)) == -1) {
			fprintf(stderr,
			    "bulkload: cannot derive message %" PRIu64 "\n", i);
			be->rollback(st);
			return -1;
		}
		if (be->put_msg(st, &m) == -1) {
			be->rollback(st);
			goto fail;
		}
		if ((i + 1) % batch == 0 || i + 1 == n) {
			if (be->commit(st) == -1) {
				be->rollback(st);
				goto fail;
			}
		}
	}
	/* Checkpoint: the bytes are counted in tracking.db itself. */
	for (tries = 0; be->sync(st) == -1; tries++) {
		if (tries == BULKLOAD_SYNC_TRIES)
			goto fail;
		usleep(100000);
	}
	t1 = bench_now();
	/* After the checkpoint every record is in tracking.db; the WAL file
	 * keeps its size for reuse (its frames are spent), so it is reported
	 * apart and not counted per recipient. */
	bytes = bulkload_size(dir, "tracking.db");
	wal = bulkload_size(dir, "tracking.db-wal");
	printf("bulkload messages=%" PRIu64 " batch=%" PRIu64
	       " seconds=%.2f msgs_per_s=%.0f db_bytes=%lld wal_bytes=%lld"
	       " bytes_per_rcpt=%.1f\n",
	    n, batch, t1 - t0, (double)n / (t1 - t0), bytes, wal,
	    (double)bytes / (double)n);
	return 0;
fail:
	fprintf(stderr, "bulkload: store: %s\n", be->error(st));
	return -1;
}

static int
bulkload_lookups(const struct store_backend *be, struct store *st, uint64_t n,
    uint64_t seconds, uint64_t seed)
{
	char envid[BENCH_KEY_ENVID_SIZE], secret[MTRK_SECRET_B64_SIZE],
	    cert[MTRK_CERTIFIER_LEN + 1];
	unsigned char raw[MTRK_SECRET_MAX];
	int len;
	struct bench_hist *h;
	struct store_msg *msgs;
	size_t nmsgs, k;
	uint64_t done = 0, bad = 0, i;
	double t0, t, ts, end;
	int rc = -1, r, ok;

	if ((h = bench_hist_new()) == NULL) {
		fprintf(stderr, "bulkload: out of memory\n");
		return -1;
	}
	t0 = bench_now();
	end = t0 + (double)seconds;
	do {
		i = bench_key_rand(&seed) % n;
		if (bench_key_envid(i, envid, sizeof(envid)) == -1 ||
		    bench_key_secret_b64(i, secret) == -1) {
			fprintf(stderr,
			    "bulkload: cannot derive key %" PRIu64 "\n", i);
			goto done;
		}
		ts = bench_now();
		/* What a TRACK costs: the certifier of the secret presented,
		 * then the lookup by envid and certifier. */
		len = mtrk_secret_decode(
		    secret, strlen(secret), raw, sizeof(raw));
		if (len == -1 || mtrk_certifier(raw, (size_t)len, cert) == -1) {
			fprintf(
			    stderr, "bulkload: bad secret %" PRIu64 "\n", i);
			goto done;
		}
		r = be->lookup(st, envid, cert, &msgs, &nmsgs);
		if (r == -1) {
			fprintf(
			    stderr, "bulkload: lookup: %s\n", be->error(st));
			goto done;
		}
		ok = 0;
		for (k = 0; r == 1 && k < nmsgs && !ok; k++)
			ok = mtrk_verify(secret, strlen(secret),
			         msgs[k].certifier, NULL) == 0;
		if (r == 1)
			store_msgs_free(msgs, nmsgs);
		t = bench_now();
		bench_hist_add(h, (uint64_t)((t - ts) * 1e6));
		done++;
		if (!ok)
			bad++;
	} while (t < end);
	printf("lookup records=%" PRIu64 " seconds=%.2f lookups=%" PRIu64
	       " per_s=%.0f p50_us=%" PRIu64 " p99_us=%" PRIu64
	       " p999_us=%" PRIu64 " not_found=%" PRIu64 "\n",
	    n, t - t0, done, (double)done / (t - t0), bench_hist_pct(h, 500),
	    bench_hist_pct(h, 990), bench_hist_pct(h, 999), bad);
	rc = bad == 0 ? 0 : -1;
	if (bad)
		fprintf(stderr, "bulkload: %" PRIu64 " lookups failed\n", bad);
done:
	bench_hist_free(h);
	return rc;
}

static void
bulkload_usage(void)
{
	fprintf(stderr,
	    "usage: bulkload -d DATA_DIR [-n N] [-b BATCH] "
	    "[-l SECONDS] [-S SEED] [-s STORE]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const struct store_backend *be;
	struct store *st;
	const char *dir = NULL, *uri = "sqlite";
	unsigned long long n = BULKLOAD_DEFAULT_N;
	unsigned long long batch = BULKLOAD_DEFAULT_BATCH;
	unsigned long long seconds = 0, seed = 1;
	char err[512];
	int c, rc = 1;

	while ((c = getopt(argc, argv, "d:n:b:l:S:s:")) != -1) {
		switch (c) {
		case 's':
			uri = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'n':
			if (bench_num(optarg, 1, BULKLOAD_N_MAX, &n) == -1)
				bulkload_usage();
			break;
		case 'b':
			if (bench_num(optarg, 1, BULKLOAD_BATCH_MAX, &batch) ==
			    -1)
				bulkload_usage();
			break;
		case 'l':
			if (bench_num(optarg, 0, BULKLOAD_SECONDS_MAX,
			        &seconds) == -1)
				bulkload_usage();
			break;
		case 'S':
			if (bench_num(optarg, 1, ULLONG_MAX, &seed) == -1)
				bulkload_usage();
			break;
		default:
			bulkload_usage();
		}
	}
	if (dir == NULL || optind != argc)
		bulkload_usage();
	if (bulkload_size(dir, "tracking.db") != 0) {
		fprintf(stderr, "bulkload: %s/tracking.db exists\n", dir);
		return 1;
	}
	if ((be = store_backend_find(uri)) == NULL) {
		fprintf(stderr, "bulkload: no such store backend\n");
		return 1;
	}
	if ((st = be->open(uri, dir, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "bulkload: %s\n", err);
		return 1;
	}
	if (bulkload_fill(be, st, n, batch, dir) == 0 &&
	    (seconds == 0 || bulkload_lookups(be, st, n, seconds, seed) == 0))
		rc = 0;
	be->close(st);
	return rc;
}
