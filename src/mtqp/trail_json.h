/*
 * trail_json: the JSON form of a followed trail (PRODUCT.md "msgtrk track
 * --json"), one writer for msgtrk track --json and the HTTP API's POST
 * /api/v1/track, so both say exactly the same bytes.
 */
#ifndef MSGTRK_TRAIL_JSON_H
#define MSGTRK_TRAIL_JSON_H

#include "msgtrk/buf.h"
#include "mtqp/trail.h"

/* Our bound on one document (the answers are bounded by MTQP_BODY_MAX
 * each, TRAIL_QUERIES_MAX of them). */
#define TRAIL_JSON_MAX (64UL * 1024 * 1024)

/*
 * Appends to b the object for res, envid as given to the trail, and a
 * final newline:
 *   {"envid": ..., "recipients": [
 *     {"original_recipient": "rfc822; a@b", "final_action": ...,
 *      ["error": ...,] "hops": [{"server", "reporting_mta",
 *      "arrival_date", "final_recipient", "action", "status",
 *      "remote_mta", "last_attempt_date", "will_retry_until",
 *      "extensions": {...}}, ...]}, ...]}
 * Returns 0, or -1 when b is full (its content is then unusable).
 */
int trail_json(
    struct buf *b, const struct trail_result *res, const char *envid);

#endif /* MSGTRK_TRAIL_JSON_H */
