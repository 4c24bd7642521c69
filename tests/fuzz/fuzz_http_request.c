/*
 * fuzz_http_request: the body of POST /api/v1/track (a flat JSON object
 * read by src/common/json.c, checked by src/http/http_parse.c).
 * Invariants: a request accepted has an envid, a secret and a server,
 * each NUL-terminated inside its field; a refusal says why and never
 * repeats the secret.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_track_req r;
	char err[512];

	err[0] = '\0';
	if (http_track_req_json(
	        (const char *)data, size, &r, err, sizeof(err)) == 0) {
		if (r.envid[0] == '\0' || r.secret[0] == '\0' ||
		    r.server[0] == '\0' ||
		    memchr(r.envid, '\0', sizeof(r.envid)) == NULL ||
		    memchr(r.secret, '\0', sizeof(r.secret)) == NULL ||
		    memchr(r.server, '\0', sizeof(r.server)) == NULL)
			abort();
	} else {
		if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
			abort();
	}
	http_track_req_clear(&r);
	return 0;
}
