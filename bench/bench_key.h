/*
 * bench_key: the envids and MTRK secrets of the bench's tracked messages,
 * derived from an index, so that bench/bulkload fills a store and
 * bench/mtqp-load asks for random members of it with the right secrets,
 * without sharing a file.
 *
 *   envid(i)  = "bench%012u.<8 hex of H(i)>@client.bench.test" (RFC 3885
 *               §3.2 unique-envid shape: local-envid "@" fqhn)
 *   secret(i) = SHA-256("msgtrk-bench-secret" || i as 8 octets, big
 *               endian): MTRK_SECRET_LEN (32) octets, the size msgtrk
 *               send uses
 *
 * These secrets are public by construction: bench data only.
 */
#ifndef MSGTRK_BENCH_KEY_H
#define MSGTRK_BENCH_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "msgtrk/mtrk.h"

/* Longest envid(i) plus its NUL: 5 + 12 + 1 + 8 + 18 + 1 = 45 for
 * i < 10^12; 64 leaves room. */
#define BENCH_KEY_ENVID_SIZE 64

/* Writes envid(i) into out.  Returns its length, or -1 if outsize is too
 * small. */
int bench_key_envid(uint64_t i, char *out, size_t outsize);

/* Writes secret(i), MTRK_SECRET_LEN octets.  Returns 0, or -1 if hashing
 * failed. */
int bench_key_secret(uint64_t i, unsigned char out[MTRK_SECRET_LEN]);

/* Writes the unpadded base64 of secret(i) (what TRACK sends) into out, a
 * NUL-terminated string.  Returns its length, or -1. */
int bench_key_secret_b64(uint64_t i, char out[MTRK_SECRET_B64_SIZE]);

/* Writes the certifier of secret(i) (what MAIL MTRK= carries and the
 * store keeps).  Returns 0 or -1. */
int bench_key_certifier(uint64_t i, char out[MTRK_CERTIFIER_LEN + 1]);

/* A deterministic 64-bit pseudo-random generator (xorshift64*) for the
 * benchmarks' random choices; *state must start non-zero. */
uint64_t bench_key_rand(uint64_t *state);

#endif /* MSGTRK_BENCH_KEY_H */
