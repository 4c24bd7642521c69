/*
 * fuzz_sendmail: msgtrk sendmail's message code (src/cli/sendmail_msg.c).
 * The first octet picks the options (-i or not, -t or not, a full name);
 * the rest is the message, and also an address list on its own.
 * Invariants: a failure always says why; without -t no recipient is
 * found; every recipient passes the command-line address check and none
 * repeats.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/send.h"
#include "cli/sendmail.h"
#include "msgtrk/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sendmail_rcpts r = { NULL, 0, 0 }, r2 = { NULL, 0, 0 };
	struct sendmail_msg_opts mo;
	struct buf in, out;
	char err[512];
	size_t i, j;

	if (size < 1 || size > 64 * 1024)
		return 0;
	memset(&mo, 0, sizeof(mo));
	mo.dot_ends = data[0] & 1;
	mo.extract = (data[0] >> 1) & 1;
	mo.fullname = (data[0] & 4) ? "Ren\xc3\xa9 \"X\", Jr." : NULL;
	mo.from = "u@d.test";
	mo.domain = "d.test";
	mo.now = 1796668263;
	buf_init(&in, SEND_MESSAGE_MAX);
	buf_init(&out, SEND_MESSAGE_MAX + SENDMAIL_HEADER_MAX);
	if (buf_add(&in, data + 1, size - 1) == -1)
		abort();
	if (sendmail_rewrite(&in, &mo, &out, &r, err, sizeof(err)) == 0) {
		if (!mo.extract && r.n != 0)
			abort();
		if (out.len == 0)
			abort();
	} else if (err[0] == '\0')
		abort();
	for (i = 0; i < r.n; i++) {
		if (!cli_addr_ok(r.v[i]))
			abort();
		for (j = 0; j < i; j++)
			if (strcmp(r.v[i], r.v[j]) == 0)
				abort();
	}
	/* The whole input as one address list. */
	if (sendmail_addrlist((const char *)data + 1, size - 1, "d.test", &r2,
	        err, sizeof(err)) == 0)
		for (i = 0; i < r2.n; i++)
			if (!cli_addr_ok(r2.v[i]))
				abort();
	sendmail_rcpts_free(&r);
	sendmail_rcpts_free(&r2);
	buf_reset(&in);
	buf_reset(&out);
	return 0;
}
