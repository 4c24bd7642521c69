/*
 * queue_json: see queue_json.h.
 */
#include "common/json.h"
#include "queue/queue_json.h"

const char *
queue_json_last_error(const struct queue_msg *m)
{
	const char *lasterr = NULL;
	size_t i;

	for (i = 0; i < m->nrcpt; i++)
		if (!m->rcpts[i].final && m->rcpts[i].track.reply != NULL)
			lasterr = m->rcpts[i].track.reply;
	return lasterr;
}

int
queue_json_msg(struct buf *b, const struct queue_msg *m)
{
	size_t i;
	int rc = 0;

	rc |= buf_addc(b, '{');
	rc |= json_key(b, 1, "queue_id");
	rc |= json_cstr(b, m->qid);
	rc |= json_key(b, 0, "envid");
	rc |= json_cstr(b, m->envid);
	rc |= json_key(b, 0, "sender");
	rc |= json_cstr(b, m->sender);
	rc |= json_key(b, 0, "recipients");
	rc |= buf_addc(b, '[');
	for (i = 0; i < m->nrcpt; i++) {
		if (i > 0)
			rc |= buf_addc(b, ',');
		rc |= json_cstr(b, m->rcpts[i].addr);
	}
	rc |= buf_addc(b, ']');
	rc |= json_key(b, 0, "arrival_date");
	rc |= json_date(b, m->arrival);
	rc |= json_key(b, 0, "next_attempt");
	rc |= json_date(b, m->next_attempt);
	rc |= json_key(b, 0, "attempts");
	rc |= buf_addf(b, "%lu", (unsigned long)m->attempts);
	rc |= json_key(b, 0, "held");
	rc |= buf_adds(b, m->held ? "true" : "false");
	rc |= json_key(b, 0, "last_error");
	rc |= json_cstr(b, queue_json_last_error(m));
	rc |= buf_addc(b, '}');
	return rc != 0 ? -1 : 0;
}
