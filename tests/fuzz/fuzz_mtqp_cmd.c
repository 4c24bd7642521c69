/*
 * fuzz_mtqp_cmd: the MTQP command parser, fed whole and in pieces (the
 * first input byte picks the piece size); the results must be identical
 * and every command must pass the parser's own checks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/mtqp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs the parser and appends a rendering of every result to out. */
static void
run(const uint8_t *data, size_t size, size_t chunk, struct buf *out)
{
	struct mtqp_cmd_parser *p = mtqp_cmd_parser_new();
	struct mtqp_cmd cmd;
	size_t off, n;
	int r;

	if (p == NULL)
		abort();
	for (off = 0; off < size; off += n) {
		n = chunk < size - off ? chunk : size - off;
		if (mtqp_cmd_push(p, data + off, n) == -1) {
			/* Only possible if more than the limit is pushed
			 * at once: feed it in smaller pieces instead. */
			if (n <= MTQP_CMD_INPUT_MAX)
				abort();
			n = 0;
			chunk = MTQP_CMD_INPUT_MAX;
			continue;
		}
		while ((r = mtqp_cmd_next(p, &cmd)) != 0) {
			if (r == -1) {
				if (buf_addf(out, "!%d|",
				        (int)mtqp_cmd_parser_error(p)) == -1)
					abort();
				continue;
			}
			if (memchr(cmd.envid, 0, sizeof(cmd.envid)) == NULL ||
			    memchr(cmd.secret, 0, sizeof(cmd.secret)) == NULL ||
			    memchr(cmd.domain, 0, sizeof(cmd.domain)) == NULL ||
			    memchr(cmd.text, 0, sizeof(cmd.text)) == NULL)
				abort();
			if (cmd.verb == MTQP_CMD_TRACK &&
			    (mtqp_cmd_envid_check(
			         cmd.envid, strlen(cmd.envid)) != 0 ||
			        mtqp_cmd_secret_check(
			            cmd.secret, strlen(cmd.secret)) != 0))
				abort();
			if (cmd.verb == MTQP_CMD_STARTTLS &&
			    mtqp_cmd_domain_check(
			        cmd.domain, strlen(cmd.domain)) != 0)
				abort();
			if (cmd.pending != mtqp_cmd_parser_pending(p))
				abort();
			if (buf_addf(out, "%d %s %s %s %s|", (int)cmd.verb,
			        cmd.envid, cmd.secret, cmd.domain,
			        cmd.text) == -1)
				abort();
		}
		if (mtqp_cmd_parser_pending(p) != 0)
			abort();
	}
	mtqp_cmd_parser_free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf a, b;
	size_t chunk;

	if (size == 0)
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
	buf_clear(&b);
	run(data, size, 1, &b);
	if (a.len != b.len || memcmp(buf_cstr(&a), buf_cstr(&b), a.len) != 0)
		abort();
	buf_reset(&a);
	buf_reset(&b);
	return 0;
}
