/*
 * fuzz_envid: unique-envid check and generation.  Invariants: a checked
 * envid has its '@' inside with both sides non-empty and no later '@';
 * a generated envid is within ENVID_MAX and passes the check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/envid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char host[1024];
	unsigned char rnd[ENVID_RANDOM_LEN];
	char out[ENVID_MAX + 1];
	const char *s = (const char *)data;
	size_t at, i, half;

	if (size > 1000)
		return 0;
	if (envid_check_unique(s, size, &at, NULL) == 0) {
		if (size > ENVID_MAX || at == 0 || at + 1 >= size ||
		    s[at] != '@' || memchr(s + at + 1, '@', size - at - 1))
			abort();
		for (i = 0; i < size; i++)
			if (s[i] == '\0')
				abort();
	}
	/* in pieces: a prefix or suffix may not be valid, but never
	 * crashes, and a valid prefix ending before '@' is impossible */
	half = size / 2;
	if (envid_check_unique(s, half, &at, NULL) == 0 &&
	    memchr(s, '@', half) == NULL)
		abort();
	(void)envid_check_unique(s + half, size - half, NULL, NULL);

	/* generate with the input as host name and random bytes */
	memset(rnd, 0, sizeof(rnd));
	memcpy(rnd, data, size < sizeof(rnd) ? size : sizeof(rnd));
	memcpy(host, data, size);
	host[size] = '\0';
	if (envid_generate(host, rnd, out, sizeof(out), NULL) == 0) {
		size_t n = strlen(out);

		if (n > ENVID_MAX ||
		    envid_check_unique(out, n, &at, NULL) != 0 ||
		    at != ENVID_LOCAL_LEN)
			abort();
	}
	/* too-small outputs are refused, never overrun */
	(void)envid_generate(host, rnd, out, size % (ENVID_MAX + 1), NULL);
	return 0;
}
