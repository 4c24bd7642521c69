/*
 * fuzz_control: the control socket's line parser (msgtrk/control.h), both
 * directions, fed whole and in pieces (the first input byte picks the
 * piece size and the direction); the results must be identical, every
 * request or reply must pass the codec's own checks, and an emitted
 * request or reply must parse back to itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Emits req again and parses it back: the same request. */
static void
roundtrip_req(const struct control_req *req)
{
	const char *qids[CONTROL_QIDS_MAX];
	struct control_parser *p = control_parser_new();
	struct control_req back;
	struct buf b;
	size_t i;

	if (p == NULL)
		abort();
	for (i = 0; i < req->nqid; i++)
		qids[i] = req->qid[i];
	buf_init(&b, CONTROL_LINE_MAX + 1);
	if (control_req_format(&b, req->verb, qids, req->nqid) == -1 ||
	    control_push(p, b.data, b.len) == -1 ||
	    control_next_req(p, &back) != 1 || back.verb != req->verb ||
	    back.nqid != req->nqid)
		abort();
	for (i = 0; i < req->nqid; i++)
		if (strcmp(back.qid[i], req->qid[i]) != 0)
			abort();
	buf_reset(&b);
	control_parser_free(p);
}

/* Emits r again and parses it back: the same reply (texts are printable
 * already, so escaping leaves them as they are unless they hold '\'). */
static void
roundtrip_reply(const struct control_reply *r)
{
	struct control_parser *p = control_parser_new();
	struct control_reply back;
	struct buf b;
	int rc = -1;

	if (p == NULL)
		abort();
	buf_init(&b, CONTROL_LINE_MAX + 1);
	switch (r->kind) {
	case CONTROL_R_OK:
		rc = control_reply_ok(&b, r->qid);
		break;
	case CONTROL_R_ERROR:
		rc = control_reply_error(&b, r->qid, r->text);
		break;
	case CONTROL_R_DONE:
		rc = control_reply_done(&b, r->nok, r->nfail, r->text);
		break;
	case CONTROL_R_BAD:
		rc = control_reply_bad(&b, r->text);
		break;
	default:
		abort();
	}
	if (rc == -1 || control_push(p, b.data, b.len) == -1 ||
	    control_next_reply(p, &back) != 1 || back.kind != r->kind ||
	    strcmp(back.qid, r->qid) != 0 || back.nok != r->nok ||
	    back.nfail != r->nfail)
		abort();
	if (strchr(r->text, '\\') == NULL && strcmp(back.text, r->text) != 0)
		abort();
	buf_reset(&b);
	control_parser_free(p);
}

/* Runs the parser and appends a rendering of every result to out. */
static void
run(const uint8_t *data, size_t size, size_t chunk, int replies,
    struct buf *out)
{
	struct control_parser *p = control_parser_new();
	struct control_req req;
	struct control_reply rep;
	size_t off, n, i;
	int r;

	if (p == NULL)
		abort();
	for (off = 0; off < size; off += n) {
		n = chunk < size - off ? chunk : size - off;
		if (n > control_parser_room(p))
			n = control_parser_room(p);
		if (control_push(p, data + off, n) == -1)
			abort();
		for (;;) {
			r = replies ? control_next_reply(p, &rep)
			            : control_next_req(p, &req);
			if (r == 0)
				break;
			if (r == -1) {
				if (buf_addf(out, "!%d|",
				        (int)control_parser_error(p)) == -1)
					abort();
				continue;
			}
			if (replies) {
				if (memchr(rep.text, 0, sizeof(rep.text)) ==
				        NULL ||
				    memchr(rep.qid, 0, sizeof(rep.qid)) == NULL)
					abort();
				if ((rep.kind == CONTROL_R_OK ||
				        rep.kind == CONTROL_R_ERROR) &&
				    control_qid_check(
				        rep.qid, strlen(rep.qid)) != 0)
					abort();
				roundtrip_reply(&rep);
				if (buf_addf(out, "%d %s %lu %lu %s|",
				        (int)rep.kind, rep.qid, rep.nok,
				        rep.nfail, rep.text) == -1)
					abort();
				continue;
			}
			if (control_verb_name(req.verb) == NULL ||
			    req.nqid > CONTROL_QIDS_MAX)
				abort();
			for (i = 0; i < req.nqid; i++)
				if (control_qid_check(
				        req.qid[i], strlen(req.qid[i])) != 0)
					abort();
			roundtrip_req(&req);
			if (buf_addf(out, "%d %zu|", (int)req.verb, req.nqid) ==
			    -1)
				abort();
		}
		if (control_parser_pending(p) != 0)
			abort();
	}
	control_parser_free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf a, b;
	size_t chunk;
	int replies;

	if (size == 0)
		return 0;
	chunk = 1 + data[0] % 16;
	replies = (data[0] & 0x80) != 0;
	data++;
	size--;
	buf_init(&a, 1 << 24);
	buf_init(&b, 1 << 24);
	run(data, size, CONTROL_INPUT_MAX, replies, &a);
	run(data, size, chunk, replies, &b);
	if (a.len != b.len || memcmp(buf_cstr(&a), buf_cstr(&b), a.len) != 0)
		abort();
	buf_clear(&b);
	run(data, size, 1, replies, &b);
	if (a.len != b.len || memcmp(buf_cstr(&a), buf_cstr(&b), a.len) != 0)
		abort();
	buf_reset(&a);
	buf_reset(&b);
	return 0;
}
