/*
 * fuzz_date: RFC 5322 date-time parser.  Invariant: a date that parses and
 * can be formatted parses back to the same instant and zone.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/date.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct date d, back;
	char out[DATE_MAX];

	if (date_parse((const char *)data, size, &d) != 0)
		return 0;
	if (date_format(&d, out, sizeof(out)) != 0)
		return 0;
	if (strlen(out) >= DATE_MAX)
		abort();
	if (date_parse(out, strlen(out), &back) != 0 || back.t != d.t ||
	    back.gmtoff != d.gmtoff)
		abort();
	return 0;
}
