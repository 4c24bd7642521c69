/*
 * fuzz_dovecot_auth: Dovecot's auth-client replies (src/auth/
 * dovecot_proto.c).  Invariants: the reader never returns a line over
 * DOVECOT_LINE_MAX, and takes every byte; the same input fed in two
 * pieces gives the same lines and results as fed whole; a parsed user= is
 * 1..255 octets without control characters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/dovecot_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dovecot_reader ra, rb;

/* Feeds [p, p + n) to r; folds every result into *h.  Returns -1 once a
 * line is too long. */
static int
feed(struct dovecot_reader *r, const char *p, size_t n, uint64_t *h)
{
	struct dovecot_reply rep;
	size_t used, i;
	int res;

	while (n > 0) {
		res = dovecot_reader_feed(r, p, n, &used);
		if (used > n)
			abort();
		p += used;
		n -= used;
		if (res == -1)
			return -1;
		if (res == 0) {
			if (n != 0)
				abort();
			break;
		}
		if (r->len > DOVECOT_LINE_MAX || r->line[r->len] != '\0')
			abort();
		if (dovecot_parse(r->line, r->len, &rep) == -1) {
			*h = *h * 31 + 7;
			continue;
		}
		if (rep.has_user) {
			size_t ul = strlen(rep.user);

			if (ul == 0 || ul > DOVECOT_USER_MAX)
				abort();
			for (i = 0; i < ul; i++)
				if ((unsigned char)rep.user[i] < 0x20 ||
				    rep.user[i] == 0x7f)
					abort();
		}
		*h = *h * 31 + (uint64_t)rep.kind * 1000003 + rep.id + rep.temp;
		for (i = 0; rep.user[i] != '\0'; i++)
			*h = *h * 131 + (unsigned char)rep.user[i];
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	uint64_t ha = 0, hb = 0;
	size_t cut = size > 0 ? data[0] % (size + 1) : 0;
	int ea, eb;

	dovecot_reader_init(&ra);
	dovecot_reader_init(&rb);
	ea = feed(&ra, in, size, &ha);
	eb = feed(&rb, in, cut, &hb);
	if (eb == 0)
		eb = feed(&rb, in + cut, size - cut, &hb);
	if (ea != eb || (ea == 0 && ha != hb))
		abort();
	return 0;
}
