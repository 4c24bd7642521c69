/*
 * store_json: the JSON object of one tracked recipient as the operator's
 * search shows it (PRODUCT.md "msgtrk log --json"), one writer for msgtrk
 * log --json and the HTTP API's GET /api/v1/log.
 */
#ifndef MSGTRK_STORE_JSON_H
#define MSGTRK_STORE_JSON_H

#include "msgtrk/buf.h"
#include "store/store.h"

/*
 * Appends {"queue_id", "envid", "sender", "original_recipient",
 * "final_recipient", "action", "status", "remote_mta", "arrival_date",
 * "last_attempt_date", "will_retry_until", "expires", "reply"} for
 * recipient r of message m (no newline).  Returns 0, or -1 when b is full
 * (its content is then unusable).
 */
int store_json_rcpt(
    struct buf *b, const struct store_msg *m, const struct store_rcpt *r);

#endif /* MSGTRK_STORE_JSON_H */
