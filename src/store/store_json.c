/*
 * store_json: see store_json.h.
 */
#include "common/json.h"
#include "store/store_json.h"

int
store_json_rcpt(
    struct buf *b, const struct store_msg *m, const struct store_rcpt *r)
{
	int rc = 0;

	rc |= buf_addc(b, '{');
	rc |= json_key(b, 1, "queue_id");
	rc |= json_cstr(b, m->qid);
	rc |= json_key(b, 0, "envid");
	rc |= json_cstr(b, m->envid);
	rc |= json_key(b, 0, "sender");
	rc |= json_cstr(b, m->sender);
	rc |= json_key(b, 0, "original_recipient");
	rc |= json_cstr(b, r->orcpt);
	rc |= json_key(b, 0, "final_recipient");
	rc |= json_cstr(b, r->final_rcpt);
	rc |= json_key(b, 0, "action");
	rc |= json_cstr(b, store_action_name(r->action));
	rc |= json_key(b, 0, "status");
	rc |= json_cstr(b, r->status[0] ? r->status : NULL);
	rc |= json_key(b, 0, "remote_mta");
	rc |= json_cstr(b, r->remote_mta);
	rc |= json_key(b, 0, "arrival_date");
	rc |= json_date(b, m->arrival);
	rc |= json_key(b, 0, "last_attempt_date");
	rc |= json_date(b, r->last_attempt);
	rc |= json_key(b, 0, "will_retry_until");
	rc |= json_date(b, r->will_retry_until);
	rc |= json_key(b, 0, "expires");
	rc |= json_date(b, m->expires);
	rc |= json_key(b, 0, "reply");
	rc |= json_cstr(b, r->reply);
	rc |= buf_addc(b, '}');
	return rc != 0 ? -1 : 0;
}
