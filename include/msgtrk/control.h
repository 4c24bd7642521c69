/*
 * control: the line protocol of msgtrkd's control socket, both sides (the
 * daemon parses requests and writes replies, msgtrk writes requests and
 * parses replies: one codec, so the two cannot drift apart).  Pure: no
 * I/O, no logging.
 *
 * Requests (client to server), one a line, answered in order:
 *
 *   request = verb *(SP qid) [CR] LF
 *   verb    = "flush" / "hold" / "release" / "delete" / "reload"
 *   qid     = 1*32(ALPHA / DIGIT)               ; a queue id (PRODUCT.md)
 *
 *   flush takes 0 or more qids (none: every queued message), hold,
 *   release and delete 1 or more, reload none.  Verbs are lower case,
 *   words are separated by exactly one SP, a line holds at most
 *   CONTROL_QIDS_MAX qids and CONTROL_LINE_MAX octets before its LF.
 *
 * Replies (server to client): for each request, one item line per qid in
 * the request's order, then one final line:
 *
 *   item    = ("ok" SP qid / "error" SP qid SP text) [CR] LF
 *   final   = ("done" SP count SP count [SP text] / "bad" SP text) [CR] LF
 *   count   = 1*10DIGIT                         ; at most 4294967295
 *   text    = 1*(%x20-7E)                       ; escaped, at most
 *                                               ; CONTROL_TEXT_MAX octets
 *
 * "done NOK NFAIL": the request was carried out; NOK qids succeeded and
 * NFAIL failed (flush without qids: NOK messages were flushed and there
 * are no item lines; reload: "done 1 0", or "done 0 1 WHY" with the
 * reason the old tables stay).  "bad WHY": the request was refused as a
 * whole and nothing was done (syntax, permission, a limit); the server
 * closes the connection after a "bad" it cannot recover from (a line too
 * long, too many errors or requests, a peer not allowed).
 *
 *   C: hold 008DnnSuN7skvIto 008DnnSuN7skvItp
 *   S: ok 008DnnSuN7skvIto
 *   S: error 008DnnSuN7skvItp no such message
 *   S: done 1 1
 *   C: reload
 *   S: done 0 1 aliases: /etc/msgtrk/aliases:3: missing ':'
 */
#ifndef MSGTRK_CONTROL_H
#define MSGTRK_CONTROL_H

#include <stddef.h>

#include "msgtrk/buf.h"

/* Octets of a line before its LF (a CR counted).  Any request of
 * CONTROL_QIDS_MAX qids fits: "release" + 100 * (SP + 32) = 3307. */
#define CONTROL_LINE_MAX 4096
/* Queue ids in one request (the client splits longer lists). */
#define CONTROL_QIDS_MAX 100
/* PRODUCT.md: queue ids are 1-32 characters of [0-9A-Za-z]. */
#define CONTROL_QID_MAX 32
/* The text of an "error", "done" or "bad" line. */
#define CONTROL_TEXT_MAX 1000
/* Requests one connection carries; the server closes after this many
 * (the client opens another). */
#define CONTROL_REQUESTS_MAX 1000
/* Pushed input the parser holds before it must be drained. */
#define CONTROL_INPUT_MAX (16 * 1024)

enum control_verb {
	CONTROL_NONE = 0,
	CONTROL_FLUSH,
	CONTROL_HOLD,
	CONTROL_RELEASE,
	CONTROL_DELETE,
	CONTROL_RELOAD,
};

struct control_req {
	enum control_verb verb;
	size_t nqid;
	char qid[CONTROL_QIDS_MAX][CONTROL_QID_MAX + 1];
};

enum control_reply_kind {
	CONTROL_R_NONE = 0,
	CONTROL_R_OK, /* item: qid */
	CONTROL_R_ERROR, /* item: qid, text */
	CONTROL_R_DONE, /* final: nok, nfail, text ("" if none) */
	CONTROL_R_BAD, /* final: text */
};

struct control_reply {
	enum control_reply_kind kind;
	char qid[CONTROL_QID_MAX + 1];
	unsigned long nok;
	unsigned long nfail;
	char text[CONTROL_TEXT_MAX + 1];
};

/* Why a line was rejected. */
enum control_error {
	CONTROL_E_NONE = 0,
	CONTROL_E_LINE_TOO_LONG, /* over CONTROL_LINE_MAX octets before LF */
	CONTROL_E_NUL, /* a NUL octet */
	CONTROL_E_BYTE, /* a control octet (CR before LF aside) or >= 0x7f */
	CONTROL_E_EMPTY, /* an empty line */
	CONTROL_E_SYNTAX, /* a leading, trailing or doubled SP; a bad count */
	CONTROL_E_VERB, /* not a verb (request) or a reply kind (reply) */
	CONTROL_E_ARGS, /* the wrong number of words for the verb */
	CONTROL_E_QID, /* a malformed queue id */
	CONTROL_E_TEXT, /* a reply's text missing or too long */
	CONTROL_E_INPUT_FULL, /* control_push() past CONTROL_INPUT_MAX */
};

/*
 * The parser (both directions): input is pushed as it arrives, lines are
 * taken with control_next_req() (server) or control_next_reply()
 * (client).  An over-long line is reported at its CONTROL_LINE_MAX + 1st
 * octet, and the rest of it is skipped up to its LF.
 */
struct control_parser;

/* Returns NULL on allocation failure. */
struct control_parser *control_parser_new(void);
/* p may be NULL. */
void control_parser_free(struct control_parser *p);

/* Appends n octets.  Returns 0, or -1 (CONTROL_E_INPUT_FULL, nothing
 * appended) if more than CONTROL_INPUT_MAX would be pending. */
int control_push(struct control_parser *p, const void *data, size_t n);

/* Octets that may still be pushed. */
size_t control_parser_room(const struct control_parser *p);

/* Octets pushed and not yet taken by a control_next_*() call. */
size_t control_parser_pending(const struct control_parser *p);

/* Take the next line as a request / a reply.  Return 1 (*out filled), 0
 * (more input needed) or -1 (that line rejected: control_parser_error()
 * says why; the next call goes on with the next line). */
int control_next_req(struct control_parser *p, struct control_req *out);
int control_next_reply(struct control_parser *p, struct control_reply *out);

/* The error of the last -1 (CONTROL_E_NONE after a 1). */
enum control_error control_parser_error(const struct control_parser *p);

/* A short English text for err ("line too long"); never NULL. */
const char *control_strerror(enum control_error err);

/* Returns 0 if the n octets at s are a queue id, else -1. */
int control_qid_check(const char *s, size_t n);

/* The verb named s ("hold"), or CONTROL_NONE. */
enum control_verb control_verb_find(const char *s);
/* The name of v, or NULL. */
const char *control_verb_name(enum control_verb v);

/*
 * Emitters: append one line (LF-terminated) to out.  Return 0, or -1
 * (nothing appended) for an argument the grammar does not allow (a bad
 * qid, the wrong number of qids) or when out is full.  Texts are escaped
 * (octets outside 0x20-0x7e and '\\' become \xHH) and cut at
 * CONTROL_TEXT_MAX; an empty or NULL text is "-" where one is required.
 */
int control_req_format(
    struct buf *out, enum control_verb verb, const char *const *qids, size_t n);
int control_reply_ok(struct buf *out, const char *qid);
int control_reply_error(struct buf *out, const char *qid, const char *text);
/* text NULL or "": none. */
int control_reply_done(
    struct buf *out, unsigned long nok, unsigned long nfail, const char *text);
int control_reply_bad(struct buf *out, const char *text);

#endif /* MSGTRK_CONTROL_H */
