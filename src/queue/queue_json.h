/*
 * queue_json: the JSON object of one queued message as the operator sees
 * it (PRODUCT.md "msgtrk queue --json"), one writer for msgtrk queue
 * --json and the HTTP API's GET /api/v1/queue.
 */
#ifndef MSGTRK_QUEUE_JSON_H
#define MSGTRK_QUEUE_JSON_H

#include "msgtrk/buf.h"
#include "queue/queue.h"

/*
 * Appends {"queue_id", "envid", "sender", "recipients", "arrival_date",
 * "next_attempt", "attempts", "held", "last_error"} for m (no newline);
 * last_error is the reply of the last recipient still queued that has
 * one.  Returns 0, or -1 when b is full (its content is then unusable).
 */
int queue_json_msg(struct buf *b, const struct queue_msg *m);

/* The last error queue_json_msg() shows for m, or NULL. */
const char *queue_json_last_error(const struct queue_msg *m);

#endif /* MSGTRK_QUEUE_JSON_H */
