/*
 * fuzz_tstatus: the message/tracking-status parser, whole and in pieces,
 * and the generator on whatever parses.
 *
 * Invariants (abort() on violation):
 *   - the same input gives the same outcome (report or error code)
 *     however it is split;
 *   - a failed parse has an error code and a line number;
 *   - if the generator accepts a parsed report, its output has CRLF
 *     lines of at most 998 characters, and parsing it gives back the
 *     same report (parse(generate(x)) == x);
 *   - generating twice gives the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/tstatus.h"

static int
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static int
typed_eq(const struct tstatus_typed *a, const struct tstatus_typed *b)
{
	return str_eq(a->type, b->type) &&
	    (a->type == NULL || str_eq(a->value, b->value));
}

static int
ext_eq(const struct tstatus_ext *a, size_t na, const struct tstatus_ext *b,
    size_t nb)
{
	size_t i;

	if (na != nb)
		return 0;
	for (i = 0; i < na; i++)
		if (!str_eq(a[i].name, b[i].name) ||
		    !str_eq(a[i].value, b[i].value))
			return 0;
	return 1;
}

static int
date_eq(const struct date *a, const struct date *b)
{
	return a->t == b->t && a->gmtoff == b->gmtoff;
}

static int
report_eq(const struct tstatus *a, const struct tstatus *b)
{
	size_t i;

	if (!str_eq(a->envid, b->envid) ||
	    !typed_eq(&a->reporting_mta, &b->reporting_mta) ||
	    !date_eq(&a->arrival, &b->arrival) ||
	    !ext_eq(a->ext, a->next, b->ext, b->next) || a->nrcpt != b->nrcpt)
		return 0;
	for (i = 0; i < a->nrcpt; i++) {
		const struct tstatus_rcpt *x = &a->rcpt[i], *y = &b->rcpt[i];

		if (!typed_eq(&x->orig_rcpt, &y->orig_rcpt) ||
		    !typed_eq(&x->final_rcpt, &y->final_rcpt) ||
		    x->action != y->action || !str_eq(x->status, y->status) ||
		    !str_eq(x->status_comment, y->status_comment) ||
		    !typed_eq(&x->remote_mta, &y->remote_mta) ||
		    x->has_last_attempt != y->has_last_attempt ||
		    (x->has_last_attempt &&
		        !date_eq(&x->last_attempt, &y->last_attempt)) ||
		    x->has_will_retry != y->has_will_retry ||
		    (x->has_will_retry &&
		        !date_eq(&x->will_retry, &y->will_retry)) ||
		    !ext_eq(x->ext, x->next, y->ext, y->next))
			return 0;
	}
	return 1;
}

/* Feeds data in chunks of size step (0: whole). */
static int
parse(struct tstatus_parser *p, const uint8_t *data, size_t size, size_t step,
    const struct tstatus **out)
{
	size_t i, n;

	if (step == 0)
		step = size;
	for (i = 0; i < size; i += n) {
		n = size - i < step ? size - i : step;
		if (tstatus_parser_push(p, data + i, n) == -1)
			return -1;
	}
	return tstatus_parser_end(p, out);
}

static void
check_output(const struct buf *b)
{
	size_t i, line = 0;

	for (i = 0; i < b->len; i++) {
		if (b->data[i] == '\n') {
			if (i == 0 || b->data[i - 1] != '\r')
				abort();
			line = 0;
		} else if (b->data[i] != '\r' && ++line > 998) {
			abort();
		} else if ((unsigned char)b->data[i] > 127 ||
		    b->data[i] == '\0') {
			abort();
		}
	}
	if (b->len < 2 || b->data[b->len - 1] != '\n')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct tstatus_limits lim = { .size_max = 1 << 16 };
	struct tstatus_parser *p1, *p2, *p3;
	const struct tstatus *t1, *t2, *t3;
	enum tstatus_error err;
	struct buf b, b2;
	size_t step;
	int r1, r2;

	if ((p1 = tstatus_parser_new(&lim)) == NULL ||
	    (p2 = tstatus_parser_new(&lim)) == NULL ||
	    (p3 = tstatus_parser_new(NULL)) == NULL)
		abort();
	step = size > 0 ? (size_t)data[0] % 17 + 1 : 1;
	r1 = parse(p1, data, size, 0, &t1);
	r2 = parse(p2, data, size, step, &t2);
	if (r1 != r2)
		abort();
	if (r1 == -1) {
		if (tstatus_parser_error(p1) == TSTATUS_OK ||
		    tstatus_parser_error(p1) != tstatus_parser_error(p2) ||
		    tstatus_parser_line(p1) != tstatus_parser_line(p2) ||
		    tstatus_parser_line(p1) == 0)
			abort();
		goto done;
	}
	if (r1 != 1 || !report_eq(t1, t2) || t1->nrcpt == 0)
		abort();
	buf_init(&b, 1 << 20);
	buf_init(&b2, 1 << 20);
	if (tstatus_generate(t1, &b, &err) == 0) {
		check_output(&b);
		if (tstatus_generate(t1, &b2, NULL) != 0 || b.len != b2.len ||
		    memcmp(b.data, b2.data, b.len) != 0)
			abort();
		if (parse(p3, (const uint8_t *)b.data, b.len, 1, &t3) != 1 ||
		    !report_eq(t1, t3))
			abort();
	} else if (err == TSTATUS_OK || b.len != 0) {
		abort();
	}
	buf_reset(&b);
	buf_reset(&b2);
done:
	tstatus_parser_free(p1);
	tstatus_parser_free(p2);
	tstatus_parser_free(p3);
	return 0;
}
