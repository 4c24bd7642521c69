/*
 * bench_key: see bench_key.h.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "bench_key.h"

#define BENCH_KEY_SEED "msgtrk-bench-secret"

static int
bench_key_hash(uint64_t i, unsigned char out[32])
{
	unsigned char msg[sizeof(BENCH_KEY_SEED) - 1 + 8];
	unsigned int n = 0;
	size_t k;

	memcpy(msg, BENCH_KEY_SEED, sizeof(BENCH_KEY_SEED) - 1);
	for (k = 0; k < 8; k++)
		msg[sizeof(BENCH_KEY_SEED) - 1 + k] =
		    (unsigned char)(i >> (56 - 8 * k));
	if (EVP_Digest(msg, sizeof(msg), out, &n, EVP_sha256(), NULL) != 1 ||
	    n != 32)
		return -1;
	return 0;
}

int
bench_key_envid(uint64_t i, char *out, size_t outsize)
{
	unsigned char h[32];
	int n;

	if (bench_key_hash(i ^ 0x5a5a5a5aULL, h) == -1)
		return -1;
	n = snprintf(out, outsize,
	    "bench%012llu.%02x%02x%02x%02x@client.bench.test",
	    (unsigned long long)i, h[0], h[1], h[2], h[3]);
	if (n < 0 || (size_t)n >= outsize)
		return -1;
	return n;
}

int
bench_key_secret(uint64_t i, unsigned char out[MTRK_SECRET_LEN])
{
	unsigned char h[32];

	if (bench_key_hash(i, h) == -1)
		return -1;
	memcpy(out, h, MTRK_SECRET_LEN < 32 ? MTRK_SECRET_LEN : 32);
	return 0;
}

int
bench_key_secret_b64(uint64_t i, char out[MTRK_SECRET_B64_SIZE])
{
	unsigned char s[MTRK_SECRET_LEN];

	if (bench_key_secret(i, s) == -1)
		return -1;
	return mtrk_secret_encode(s, sizeof(s), out, MTRK_SECRET_B64_SIZE);
}

int
bench_key_certifier(uint64_t i, char out[MTRK_CERTIFIER_LEN + 1])
{
	unsigned char s[MTRK_SECRET_LEN];

	if (bench_key_secret(i, s) == -1)
		return -1;
	return mtrk_certifier(s, sizeof(s), out);
}

uint64_t
bench_key_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dULL;
}
