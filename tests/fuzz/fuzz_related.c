/*
 * fuzz_related: the multipart/related splitter, given the whole entity
 * and given a Content-Type line plus body; parts must lie inside the
 * input, and bodies that the writer accepts must survive a round trip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/related.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NMAX 8

static void
check(const char *in, size_t len, const struct related_part *p, size_t n)
{
	struct related_part again[NMAX];
	enum related_error err;
	struct buf b;
	size_t i, m;

	if (n == 0 || n > NMAX)
		abort();
	for (i = 0; i < n; i++)
		if (p[i].header < in ||
		    p[i].header + p[i].header_len > in + len ||
		    p[i].body < in || p[i].body + p[i].body_len > in + len ||
		    p[i].body_len > RELATED_PART_MAX)
			abort();
	buf_init(&b, 1 << 24);
	if (related_write(&b, NULL, p, n, &err) == 0) {
		if (related_split_entity(
		        b.data, b.len, again, NMAX, &m, &err) == -1 ||
		    m != n)
			abort();
		for (i = 0; i < n; i++)
			if (again[i].body_len != p[i].body_len ||
			    memcmp(again[i].body, p[i].body, p[i].body_len) !=
			        0)
				abort();
	}
	buf_reset(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *nl;
	struct related_part parts[NMAX];
	enum related_error err;
	size_t n;

	if (related_split_entity(in, size, parts, NMAX, &n, &err) == 0)
		check(in, size, parts, n);
	else if (err == RELATED_E_NONE || n != 0)
		abort();
	/* First line: a Content-Type value; the rest: the body. */
	nl = memchr(in, '\n', size);
	if (nl != NULL &&
	    related_split(in, (size_t)(nl - in), nl + 1,
	        size - (size_t)(nl + 1 - in), parts, NMAX, &n, &err) == 0)
		check(in, size, parts, n);
	return 0;
}
