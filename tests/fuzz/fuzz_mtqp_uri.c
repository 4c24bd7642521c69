/*
 * fuzz_mtqp_uri: mtqp: URI parser; every accepted URI must format and
 * parse back to the same fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/mtqp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mtqp_uri u, v;
	enum mtqp_uri_error err;
	struct buf b;

	if (mtqp_uri_parse((const char *)data, size, &u, &err) == -1) {
		if (err == MTQP_URI_E_NONE)
			abort();
		return 0;
	}
	if (err != MTQP_URI_E_NONE || u.port == 0 || u.port > 65535)
		abort();
	buf_init(&b, 4 * MTQP_URI_MAX);
	if (mtqp_uri_format(&b, &u) == -1)
		abort();
	if (mtqp_uri_parse(b.data, b.len, &v, &err) == -1)
		abort();
	if (strcmp(u.host, v.host) != 0 || u.port != v.port ||
	    strcmp(u.envid, v.envid) != 0 || strcmp(u.secret, v.secret) != 0)
		abort();
	/* The canonical form is a fixed point. */
	{
		struct buf c;

		buf_init(&c, 4 * MTQP_URI_MAX);
		if (mtqp_uri_format(&c, &v) == -1 || c.len != b.len ||
		    memcmp(c.data, b.data, b.len) != 0)
			abort();
		buf_reset(&c);
	}
	buf_reset(&b);
	return 0;
}
