/*
 * fuzz_b64: strict base64 decoder.  Invariants: decoded length within the
 * bound, and (canonical form) encoding the output gives the input back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/b64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum b64_pad modes[] = { B64_PAD_NONE, B64_PAD_REQUIRED,
		B64_PAD_OPTIONAL };
	unsigned char out[1024];
	char enc[1500];
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		int n = b64_decode(
		    (const char *)data, size, modes[i], out, sizeof(out));
		int padded = memchr(data, '=', size) != NULL;
		int e;

		if (n < 0)
			continue;
		if ((size_t)n > size * 3 / 4)
			abort();
		e = b64_encode(out, (size_t)n,
		    padded || modes[i] == B64_PAD_REQUIRED ? B64_PAD_REQUIRED
		                                           : B64_PAD_NONE,
		    enc, sizeof(enc));
		if (e < 0 || (size_t)e != size || memcmp(enc, data, size) != 0)
			abort();
	}
	return 0;
}
