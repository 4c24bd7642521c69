/*
 * fuzz_mtqp_resp: the MTQP response reader, whole and in pieces, with
 * round trips through the writer (status line and dot-stuffed data) and
 * the greeting parser on every response.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/mtqp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes resp back and reads it again: the result must be identical. */
static void
roundtrip(const struct mtqp_resp *resp)
{
	struct mtqp_resp_reader *r;
	struct mtqp_resp again;
	char reasons[MTQP_REASONS_MAX * (MTQP_REASON_LEN_MAX + 1) + 1];
	struct buf b;
	size_t i, o = 0;

	reasons[0] = '\0';
	for (i = 0; i < resp->nreasons; i++)
		o += (size_t)snprintf(reasons + o, sizeof(reasons) - o, "%s%s",
		    i ? "/" : "", resp->reasons[i]);
	buf_init(&b, 1 << 25);
	if (mtqp_resp_line(&b, resp->status, reasons, resp->text) == -1)
		abort();
	/* Re-stuffing may lengthen a 998-octet line that starts with a
	 * dot past the limit; anything else must be writable. */
	if (resp->status == MTQP_OK_MULTI &&
	    mtqp_resp_data(&b, resp->body, resp->body_len) == -1) {
		buf_reset(&b);
		return;
	}
	if ((r = mtqp_resp_reader_new(NULL)) == NULL)
		abort();
	if (mtqp_resp_reader_push(r, b.data, b.len) == -1 &&
	    b.len <= MTQP_RESP_INPUT_MAX)
		abort();
	if (b.len <= MTQP_RESP_INPUT_MAX) {
		if (mtqp_resp_reader_next(r, &again) != 1)
			abort();
		if (again.status != resp->status ||
		    again.nreasons != resp->nreasons ||
		    strcmp(again.text, resp->text) != 0 ||
		    again.body_len != resp->body_len ||
		    memcmp(again.body, resp->body, resp->body_len) != 0)
			abort();
		for (i = 0; i < resp->nreasons; i++)
			if (strcmp(again.reasons[i], resp->reasons[i]) != 0)
				abort();
	}
	mtqp_resp_reader_free(r);
	buf_reset(&b);
}

static void
run(const uint8_t *data, size_t size, size_t chunk, struct buf *out)
{
	struct mtqp_resp_limits lim = { .body_max = 1 << 20,
		.input_max = 1 << 20 };
	struct mtqp_resp_reader *r = mtqp_resp_reader_new(&lim);
	struct mtqp_resp resp;
	struct mtqp_greeting g;
	enum mtqp_greeting_error gerr;
	size_t off, n;
	int rc = 0;

	if (r == NULL)
		abort();
	for (off = 0; off < size && rc != -1; off += n) {
		n = chunk < size - off ? chunk : size - off;
		if (mtqp_resp_reader_push(r, data + off, n) == -1)
			abort();
		while ((rc = mtqp_resp_reader_next(r, &resp)) == 1) {
			if (resp.body_len > lim.body_max ||
			    strlen(resp.text) > MTQP_LINE_MAX ||
			    resp.nreasons > MTQP_REASONS_MAX)
				abort();
			if (mtqp_greeting_parse(&resp, &g, &gerr) == 0 &&
			    gerr != MTQP_GREETING_E_NONE)
				abort();
			roundtrip(&resp);
			if (buf_addf(out, "%d/%zu/%s/%zu|", (int)resp.status,
			        resp.nreasons, resp.text, resp.body_len) == -1)
				abort();
		}
		if (rc == -1 &&
		    buf_addf(out, "!%d", (int)mtqp_resp_reader_error(r)) == -1)
			abort();
	}
	mtqp_resp_reader_free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf a, b;
	size_t chunk;

	if (size == 0 || size > (1 << 20))
		return 0;
	chunk = 1 + data[0] % 16;
	data++;
	size--;
	buf_init(&a, 1 << 24);
	buf_init(&b, 1 << 24);
	run(data, size, size ? size : 1, &a);
	run(data, size, chunk, &b);
	if (a.len != b.len || memcmp(buf_cstr(&a), buf_cstr(&b), a.len) != 0)
		abort();
	buf_reset(&a);
	buf_reset(&b);
	return 0;
}
