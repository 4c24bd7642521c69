/*
 * fuzz_xtext: RFC 3461 xtext decode/encode.  Invariants: decoded length
 * never exceeds the input or the output limit; decode(encode(x)) == x;
 * re-encoding a decoded text decodes back to it; decoding two halves
 * split outside a hexchar gives the same as decoding the whole.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/buf.h"
#include "msgtrk/xtext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[4096], back[4096], h1[4096], h2[4096];
	const char *in = (const char *)data;
	unsigned int flags;
	size_t len, blen, l1, l2, split, limit;
	struct buf b;
	int r;

	if (size == 0 || size > 1024)
		return 0;
	flags = data[0] & 1 ? XTEXT_PRINTABLE : 0;
	limit = (size_t)data[0] * 4 + 1;
	in++;
	size--;

	/* whole, with a small output limit */
	r = xtext_decode(in, size, flags, out, limit, &len, NULL);
	if (r == 0 && (len > size || len >= limit || out[len] != '\0'))
		abort();
	if (r == 0 && xtext_valid(in, size, flags) != 1)
		abort();
	/* whole, with room for everything */
	r = xtext_decode(in, size, flags, out, sizeof(out), &len, NULL);
	if (r != 0 && xtext_valid(in, size, flags) != 0)
		abort();
	buf_init(&b, 4 * 4096);
	if (r == 0) {
		if (len > size)
			abort();
		/* re-encode and decode again */
		if (xtext_encode(&b, out, len) != 0 ||
		    b.len != xtext_encoded_len(out, len) ||
		    xtext_decode(buf_cstr(&b), b.len, flags, back, sizeof(back),
		        &blen, NULL) != 0 ||
		    blen != len || memcmp(back, out, len) != 0)
			abort();
		/* in pieces: split where no hexchar is cut */
		split = size / 2;
		while (split > 0 && split < size &&
		    ((split >= 1 && in[split - 1] == '+') ||
		        (split >= 2 && in[split - 2] == '+')))
			split--;
		if (xtext_decode(in, split, flags, h1, sizeof(h1), &l1, NULL) ==
		        0 &&
		    xtext_decode(in + split, size - split, flags, h2,
		        sizeof(h2), &l2, NULL) == 0) {
			if (l1 + l2 != len || memcmp(h1, out, l1) != 0 ||
			    memcmp(h2, out + l1, l2) != 0)
				abort();
		}
	}
	/* encode the raw input: always decodable back to it */
	buf_clear(&b);
	if (xtext_encode(&b, in, size) != 0 ||
	    xtext_decode(
	        buf_cstr(&b), b.len, 0, back, sizeof(back), &blen, NULL) != 0 ||
	    blen != size || memcmp(back, in, size) != 0)
		abort();
	buf_reset(&b);
	return 0;
}
