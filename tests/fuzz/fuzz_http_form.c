/*
 * fuzz_http_form: the HTTP server's form and query-string parser
 * (src/http/http_parse.c), fed in two pieces cut where the first octet
 * says.  Invariants: the same result whole and cut; a form that parses
 * has at most HTTP_FORM_FIELDS_MAX fields, each name 1..HTTP_FORM_NAME_MAX
 * octets of [A-Za-z0-9_.-], each value at most HTTP_FORM_VALUE_MAX octets
 * without NUL, no name twice; and the tracking request built from it is
 * well-formed or refused.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct http_form *
parse(const char *s, size_t n, size_t cut, int *rc)
{
	struct http_form *f = http_form_new();

	if (f == NULL)
		abort();
	if (cut > n)
		cut = n;
	*rc = http_form_push(f, s, cut);
	if (*rc == 0)
		*rc = http_form_push(f, s + cut, n - cut);
	if (*rc == 0)
		*rc = http_form_end(f);
	return f;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_form *a, *b;
	struct http_track_req r;
	char err[512];
	size_t i, j, n, vlen;
	int rca, rcb;

	if (size == 0)
		return 0;
	a = parse((const char *)data + 1, size - 1, data[0], &rca);
	b = parse((const char *)data + 1, size - 1, size - 1, &rcb);
	if (rca != rcb || http_form_error(a) != http_form_error(b) ||
	    http_form_count(a) != http_form_count(b))
		abort();
	n = http_form_count(a);
	if (rca == -1 && n != 0)
		abort();
	if (n > HTTP_FORM_FIELDS_MAX)
		abort();
	for (i = 0; i < n; i++) {
		const char *name = http_form_name(a, i);
		const char *v = http_form_value(a, i, &vlen);
		size_t nl = strlen(name);

		if (nl == 0 || nl > HTTP_FORM_NAME_MAX ||
		    strspn(name,
		        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		        "0123456789_.-") != nl)
			abort();
		if (strlen(v) != vlen || vlen > HTTP_FORM_VALUE_MAX)
			abort();
		if (strcmp(name, http_form_name(b, i)) != 0 ||
		    strcmp(v, http_form_value(b, i, NULL)) != 0)
			abort();
		for (j = 0; j < i; j++)
			if (strcmp(name, http_form_name(a, j)) == 0)
				abort();
		if (http_form_get(a, name) == NULL)
			abort();
	}
	if (rca == 0 && http_track_req_form(a, &r, err, sizeof(err)) == 0) {
		if (r.envid[0] == '\0' || r.secret[0] == '\0' ||
		    r.server[0] == '\0')
			abort();
		http_track_req_clear(&r);
	}
	http_form_free(a);
	http_form_free(b);
	return 0;
}
