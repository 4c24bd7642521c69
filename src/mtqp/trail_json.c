/*
 * trail_json: see trail_json.h.
 */
#include <stdio.h>

#include "common/json.h"
#include "msgtrk/date.h"
#include "msgtrk/str.h"
#include "mtqp/trail_json.h"

static void
trail_json_date(char *out, size_t size, const struct date *d)
{
	if (date_format(d, out, size) == -1)
		str_copy(out, "?", size);
}

static int
trail_json_typed(struct buf *b, const struct tstatus_typed *t)
{
	char tmp[1200];

	if (t->type == NULL)
		return buf_adds(b, "null");
	snprintf(tmp, sizeof(tmp), "%s; %s", t->type, t->value);
	return json_cstr(b, tmp);
}

static int
trail_json_hop(struct buf *b, const struct trail_hop *h)
{
	const struct tstatus_rcpt *tr = h->rcpt;
	char d[DATE_MAX];
	size_t k;
	int rc = 0;

	rc |= json_key(b, 1, "server");
	rc |= json_cstr(b, h->answer->server);
	rc |= json_key(b, 0, "reporting_mta");
	rc |= trail_json_typed(b, &h->part->reporting_mta);
	rc |= json_key(b, 0, "arrival_date");
	trail_json_date(d, sizeof(d), &h->part->arrival);
	rc |= json_cstr(b, d);
	rc |= json_key(b, 0, "final_recipient");
	rc |= trail_json_typed(b, &tr->final_rcpt);
	rc |= json_key(b, 0, "action");
	rc |= json_cstr(b, tstatus_action_name(tr->action));
	rc |= json_key(b, 0, "status");
	rc |= json_cstr(b, tr->status);
	rc |= json_key(b, 0, "remote_mta");
	rc |= trail_json_typed(b, &tr->remote_mta);
	rc |= json_key(b, 0, "last_attempt_date");
	if (tr->has_last_attempt) {
		trail_json_date(d, sizeof(d), &tr->last_attempt);
		rc |= json_cstr(b, d);
	} else
		rc |= buf_adds(b, "null");
	rc |= json_key(b, 0, "will_retry_until");
	if (tr->has_will_retry) {
		trail_json_date(d, sizeof(d), &tr->will_retry);
		rc |= json_cstr(b, d);
	} else
		rc |= buf_adds(b, "null");
	rc |= json_key(b, 0, "extensions");
	rc |= buf_addc(b, '{');
	for (k = 0; k < tr->next; k++) {
		rc |= json_key(b, k == 0, tr->ext[k].name);
		rc |= json_cstr(b, tr->ext[k].value);
	}
	rc |= buf_adds(b, "}}");
	return rc;
}

int
trail_json(struct buf *b, const struct trail_result *res, const char *envid)
{
	size_t i, j;
	int rc = 0;

	rc |= buf_adds(b, "{\"envid\": ");
	rc |= json_cstr(b, envid);
	rc |= buf_adds(b, ", \"recipients\": [");
	for (i = 0; i < res->nrcpt && rc == 0; i++) {
		const struct trail_rcpt *r = &res->rcpts[i];
		char orig[1200];

		snprintf(orig, sizeof(orig), "%s; %s",
		    r->orig_type ? r->orig_type : "",
		    r->orig_value ? r->orig_value : "");
		rc |= buf_adds(b, i ? ",\n  {" : "\n  {");
		rc |= json_key(b, 1, "original_recipient");
		rc |= json_cstr(b, orig);
		rc |= json_key(b, 0, "final_action");
		rc |= json_cstr(b, trail_end_name(r->end));
		if (r->error != NULL && r->error[0] != '\0') {
			rc |= json_key(b, 0, "error");
			rc |= json_cstr(b, r->error);
		}
		rc |= json_key(b, 0, "hops");
		rc |= buf_addc(b, '[');
		for (j = 0; j < r->nhops && rc == 0; j++) {
			rc |= buf_adds(b, j ? ",\n   {" : "\n   {");
			rc |= trail_json_hop(b, &r->hops[j]);
		}
		rc |= buf_adds(b, "]}");
	}
	rc |= buf_adds(b, "]}\n");
	return rc != 0 ? -1 : 0;
}
