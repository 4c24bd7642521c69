/*
 * fuzz_hdrscan: the submission header scan.  Invariants: the same
 * answer whole and in two pieces cut anywhere; the Subject is printable
 * US-ASCII of at most HDRSCAN_SUBJECT_MAX octets without leading or
 * trailing blanks; nothing past HDRSCAN_MAX octets is looked at.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/hdrscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hdrscan a, b;
	const char *p = (const char *)data;
	unsigned int fa, fb;
	size_t cut = size > 0 ? data[0] % (size + 1) : 0, i, n;
	const char *s;

	hdrscan_init(&a);
	hdrscan_push(&a, p, size);
	fa = hdrscan_end(&a);
	hdrscan_init(&b);
	hdrscan_push(&b, p, cut);
	hdrscan_push(&b, p + cut, size - cut);
	fb = hdrscan_end(&b);
	if (fa != fb || strcmp(hdrscan_subject(&a), hdrscan_subject(&b)) != 0)
		abort();
	if (a.seen > HDRSCAN_MAX || a.seen > size)
		abort();
	s = hdrscan_subject(&a);
	n = strlen(s);
	if (n > HDRSCAN_SUBJECT_MAX)
		abort();
	if (n > 0 && (s[0] == ' ' || s[n - 1] == ' '))
		abort();
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 32 || (unsigned char)s[i] > 126)
			abort();
	if (!(fa & HDRSCAN_F_SUBJECT) && n != 0)
		abort();
	return 0;
}
