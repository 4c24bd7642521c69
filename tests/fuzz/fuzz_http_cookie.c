/*
 * fuzz_http_cookie: the Cookie header parser of the HTTP server
 * (src/http/http_parse.c).  Invariants: a value found fits the buffer,
 * has no control octet and no ';'; a header with a control octet is
 * refused; and the same header followed by "; <name>=x" never finds a
 * value (the name twice is ambiguous) unless it had none.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *h = (const char *)data;
	char out[64], *twice;
	size_t i;
	int rc, rc2;

	rc = http_cookie_find(h, size, "msgtrk_session", out, sizeof(out));
	if (rc < -1 || rc > 1)
		abort();
	for (i = 0; i < size; i++)
		if (((unsigned char)h[i] < 0x20 && h[i] != '\t') ||
		    h[i] == 0x7f) {
			if (rc != -1)
				abort();
			break;
		}
	if (rc == 1) {
		if (strlen(out) >= sizeof(out) || strchr(out, ';') != NULL)
			abort();
		for (i = 0; out[i] != '\0'; i++)
			if ((unsigned char)out[i] < 0x20 && out[i] != '\t')
				abort();
	}
	if ((twice = malloc(size + 32)) == NULL)
		abort();
	memcpy(twice, h, size);
	memcpy(twice + size, ";msgtrk_session=x", 17);
	rc2 = http_cookie_find(
	    twice, size + 17, "msgtrk_session", out, sizeof(out));
	if (rc == 1 && rc2 != -1)
		abort();
	free(twice);
	return 0;
}
