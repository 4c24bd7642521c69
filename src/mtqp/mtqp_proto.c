/*
 * mtqp_proto: the protocol of one MTQP session; see mtqp_proto.h.
 *
 * Commands come out of the mtqp_cmd parser and are looked up in
 * commands[]: the check answers what may not run now, the proceed runs
 * the rest.  Everything else (bytes, timers, TLS, the store, the trail)
 * is the owner's, through ops.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509v3.h>

#include "common/conf.h"
#include "common/log.h"
#include "msgtrk/buf.h"
#include "msgtrk/mtqp.h"
#include "msgtrk/related.h"
#include "msgtrk/str.h"
#include "msgtrk/tstatus.h"
#include "msgtrk/xtext.h"
#include "mtqp/mtqp_proto.h"
#include "mtqp/mtqp_server.h"
#include "mtqp/trail.h"
#include "store/store.h"

/* Largest answer we build (one part per message, plus chained parts). */
#define PROTO_ANSWER_MAX (RELATED_PARTS_MAX * (size_t)RELATED_PART_MAX)
/* Names hidden by hide_internal_hosts: at most this many distinct ones
 * are listed; past it every "dns" name is hidden (fail closed). */
#define PROTO_HIDE_MAX 256

struct mtqp_proto {
	const struct conf *conf;
	SSL_CTX *tls_server;
	uint64_t id;
	char addr[64];
	const struct mtqp_proto_ops *ops;
	void *io;
	uint64_t *results; /* /metrics counters, or NULL */
	struct mtqp_cmd_parser *parser;
	enum mtqp_proto_state state;
	int tls;
	unsigned int errors;
	unsigned int commands;
	struct buf pending; /* the answer waiting for its turn */
	struct buf own; /* our own entity while chaining */
	char envid_log[128];
	/* the TRACK whose lookup is on its way (P8: two passes) */
	struct {
		struct mtqp_cmd cmd;
		int pass;
		int waiting; /* ops->lookup called, mtqp_proto_looked_up not */
	} trk;
};

const char *
mtqp_track_result_name(enum mtqp_track_result r)
{
	static const char *const names[MTQP_TRACK_RESULTS] = { "found",
		"unknown", "tls-required", "store-unavailable", "error",
		"bad-command" };

	return (unsigned)r < MTQP_TRACK_RESULTS ? names[r] : "?";
}

static void
count_result(struct mtqp_proto *s, enum mtqp_track_result r)
{
	if (s->results != NULL)
		s->results[r]++;
}

/*
 * Output
 */

static void
proto_close(struct mtqp_proto *s, const char *reason)
{
	if (s->state == MTQP_PROTO_CLOSED)
		return;
	s->state = MTQP_PROTO_CLOSED;
	s->ops->close(s->io, reason);
}

/* Queues b.  Returns 0, or -1 (the session is closed). */
static int
proto_send(struct mtqp_proto *s, const struct buf *b)
{
	if (s->state == MTQP_PROTO_CLOSED)
		return -1;
	if (s->ops->send(s->io, b) == -1) {
		proto_close(s, "output");
		return -1;
	}
	return 0;
}

/* Queues one status line.  Returns 0, or -1 (the session is closed). */
static int
reply(struct mtqp_proto *s, enum mtqp_status st, const char *reasons,
    const char *text)
{
	struct buf b;
	int rc;

	buf_init(&b, MTQP_LINE_MAX + 2);
	rc = mtqp_resp_line(&b, st, reasons, text);
	if (rc == 0)
		rc = proto_send(s, &b);
	else
		proto_close(s, "output");
	buf_reset(&b);
	return rc;
}

/* Counts a -BAD or -ERR answer; past the cap, closes (RFC 3887 §2.5
 * allows limiting "the number of unrecognized commands").  Returns 0, or
 * -1 if the session is closed. */
static int
count_error(struct mtqp_proto *s)
{
	if (s->state == MTQP_PROTO_CLOSED)
		return -1;
	if (++s->errors >= MTQP_PROTO_ERRORS_MAX) {
		(void)reply(s, MTQP_ERR, "unavailable", "too many errors");
		proto_close(s, "errors");
		return -1;
	}
	return 0;
}

/* Answers with a negative line and counts it.  Returns -1 (refused). */
static int
refuse(struct mtqp_proto *s, enum mtqp_status st, const char *reasons,
    const char *text)
{
	if (reply(s, st, reasons, text) == 0)
		(void)count_error(s);
	return -1;
}

int
mtqp_proto_greet(struct mtqp_proto *s)
{
	const char *opts[1];
	size_t n = 0;
	char text[CONF_HOSTNAME_MAX + 32];
	struct buf b;
	int rc;

	/* RFC 3887 §3: STARTTLS "MUST be listed" with a certificate, with
	 * "required" when TLS is required; §6.2: never after TLS. */
	if (s->tls_server != NULL && !s->tls)
		opts[n++] = s->conf->mtqp_tls_required ? "STARTTLS required"
		                                       : "STARTTLS";
	snprintf(text, sizeof(text), "%s MTQP server ready", s->conf->hostname);
	buf_init(&b, 4 * MTQP_LINE_MAX);
	rc = mtqp_resp_greeting(&b, opts, n, text);
	if (rc == 0)
		rc = proto_send(s, &b);
	buf_reset(&b);
	return rc;
}

/*
 * TRACK answers
 */

/* The answer to an unknown envid, a wrong secret, a message without a
 * certifier, or an expired record: the same bytes for all (P1, P2). */
static int
unknown_answer(struct mtqp_proto *s, const char *envid, struct buf *out)
{
	struct tstatus t;
	struct tstatus_rcpt r;
	struct related_part part;
	struct buf body;
	enum related_error rerr;
	int rc;

	if (s->conf->mtqp_unknown == CONF_MTQP_NOINFO)
		return mtqp_resp_line(out, MTQP_ERR, "noinfo",
		    "no information about this message");
	/* RFC 3887 §4: a positive answer with action "opaque".  Arrival-Date
	 * is the time of the query (P18); the recipient is unknown, so the
	 * block names the envid's own address form. */
	memset(&t, 0, sizeof(t));
	memset(&r, 0, sizeof(r));
	t.envid = envid;
	t.reporting_mta.type = "dns";
	t.reporting_mta.value = s->conf->hostname;
	t.arrival.t = time(NULL);
	r.orig_rcpt.type = "rfc822";
	r.orig_rcpt.value = "unknown@unknown.invalid";
	r.final_rcpt = r.orig_rcpt;
	r.action = TSTATUS_ACTION_OPAQUE;
	r.status = "2.0.0";
	t.rcpt = &r;
	t.nrcpt = 1;
	buf_init(&body, TSTATUS_SIZE_MAX);
	rc = tstatus_generate(&t, &body, NULL);
	if (rc == 0) {
		struct buf ent;

		part.header = NULL;
		part.header_len = 0;
		part.body = body.data;
		part.body_len = body.len;
		buf_init(&ent, TSTATUS_SIZE_MAX + 1024);
		/* A fixed boundary: the answer must not vary (only the
		 * date does, with the clock). */
		rc = related_write(&ent, "mtqp-opaque", &part, 1, &rerr);
		if (rc == 0)
			rc = mtqp_resp_multi(out, NULL, "tracking information",
			    ent.data, ent.len);
		buf_reset(&ent);
	}
	buf_reset(&body);
	return rc;
}

/* Wraps n bodies into the +OK+ answer. */
static int
found_answer(const struct related_part *parts, size_t n, struct buf *out)
{
	struct buf ent;
	enum related_error rerr;
	int rc;

	buf_init(&ent, PROTO_ANSWER_MAX);
	rc = related_write(&ent, NULL, parts, n, &rerr);
	if (rc == -1)
		log_warnx("- mtqp answer error=\"%s\"", related_strerror(rerr));
	else
		rc = mtqp_resp_multi(
		    out, NULL, "tracking information", ent.data, ent.len);
	buf_reset(&ent);
	return rc;
}

static void proto_ready(struct mtqp_proto *s);

/* Answers a TRACK that found nothing the secret opens: now, or at its
 * turn under the failed-TRACK limit (the same bytes, later). */
static void
track_unknown(struct mtqp_proto *s, const struct mtqp_cmd *cmd)
{
	struct buf out;
	long wait;

	log_info("%016" PRIx64 " mtqp track envid=%s result=unknown", s->id,
	    s->envid_log);
	count_result(s, MTQP_TRACK_UNKNOWN);
	buf_init(&out, PROTO_ANSWER_MAX);
	if (unknown_answer(s, cmd->envid, &out) == -1) {
		buf_reset(&out);
		(void)mtqp_resp_line(
		    &out, MTQP_TEMP, "unavailable", "internal error");
	}
	wait = s->ops->fail != NULL ? s->ops->fail(s->io) : 0;
	if (wait > 0) {
		buf_reset(&s->pending);
		if (buf_add(&s->pending, out.data, out.len) == 0) {
			log_info("%016" PRIx64
			         " mtqp track-delayed addr=%s wait=%ld.%03lds",
			    s->id, s->addr, wait / 1000, wait % 1000);
			s->state = MTQP_PROTO_BUSY;
			s->ops->busy(s->io, 1);
			buf_reset(&out);
			return;
		}
		/* No room to keep it: the owner's wake-up finds nothing to
		 * send, so answer now. */
	}
	(void)proto_send(s, &out);
	buf_reset(&out);
}

/* Appends the parts of the messages the secret opened. */
static size_t
track_parts(struct mtqp_proto *s, const struct store_msg *msgs, size_t n,
    const unsigned char *ok, struct related_part *parts, struct buf *bodies,
    int *transferred)
{
	enum mtqp_server_part_error perr;
	enum tstatus_error terr;
	size_t i, k, np = 0;

	for (i = 0; i < n && np < RELATED_PARTS_MAX; i++) {
		if (!ok[i])
			continue;
		buf_init(&bodies[np], RELATED_PART_MAX);
		if (mtqp_server_part(&msgs[i], s->conf->hostname, &bodies[np],
		        &perr, &terr) == -1) {
			log_warnx("%016" PRIx64
			          " mtqp part qid=%s error=\"%s%s%s\"",
			    s->id, msgs[i].qid, mtqp_server_part_strerror(perr),
			    perr == MTQP_SERVER_PART_GENERATE ? ": " : "",
			    perr == MTQP_SERVER_PART_GENERATE
			        ? tstatus_strerror(terr)
			        : "");
			buf_reset(&bodies[np]);
			continue;
		}
		parts[np].header = NULL;
		parts[np].header_len = 0;
		parts[np].body = bodies[np].data;
		parts[np].body_len = bodies[np].len;
		np++;
		for (k = 0; k < msgs[i].nrcpt; k++)
			if (msgs[i].rcpts[k].action == STORE_ACTION_TRANSFERRED)
				*transferred = 1;
	}
	return np;
}

static int
check_none(struct mtqp_proto *s, const struct mtqp_cmd *cmd)
{
	(void)s;
	(void)cmd;
	return 0;
}

static int
check_track(struct mtqp_proto *s, const struct mtqp_cmd *cmd)
{
	log_escape(
	    s->envid_log, sizeof(s->envid_log), cmd->envid, strlen(cmd->envid));
	if (s->conf->mtqp_tls_required && !s->tls) {
		log_info("%016" PRIx64
		         " mtqp track envid=%s result=tls-required",
		    s->id, s->envid_log);
		count_result(s, MTQP_TRACK_TLS_REQUIRED);
		return refuse(
		    s, MTQP_ERR, "tls-required", "issue STARTTLS first");
	}
	return 0;
}

/* Starts the lookup of pass trk.pass (P8: as sent, then without the
 * angle brackets; the envid is compared decoded, PRODUCT.md: "a+40b" is
 * "a@b").  Returns 0 if started, 1 if there is no such pass, -1 if the
 * store could not be asked. */
static int
track_lookup(struct mtqp_proto *s)
{
	const struct mtqp_cmd *cmd = &s->trk.cmd;
	char envid[MTQP_ENVID_MAX + 1];
	const char *e = cmd->envid;
	size_t len = strlen(e);

	for (; s->trk.pass < 2; s->trk.pass++) {
		if (s->trk.pass == 1) {
			if (!cmd->envid_bracketed)
				return 1;
			e = cmd->envid + 1;
			len = strlen(cmd->envid) - 2;
		}
		if (xtext_decode(e, len, XTEXT_PRINTABLE, envid, sizeof(envid),
		        NULL, NULL) == -1)
			continue;
		s->trk.waiting = 1;
		if (s->ops->lookup(s->io, envid, cmd->secret) == -1) {
			s->trk.waiting = 0;
			return -1;
		}
		return 0;
	}
	return 1;
}

/* The TRACK is answered: forget its secret, read again. */
static void
track_end(struct mtqp_proto *s)
{
	explicit_bzero(&s->trk.cmd, sizeof(s->trk.cmd));
	s->trk.pass = 0;
	s->trk.waiting = 0;
}

static int
proceed_track(struct mtqp_proto *s, const struct mtqp_cmd *cmd)
{
	int r;

	/* While the store lags the journal (failed, or hung: see
	 * queue_store_failed()), a message accepted with a 250 may be
	 * missing or show an old action, so any answer could be wrong.
	 * -TEMP (RFC 3887 §2.3, a temporary failure) tells the client to
	 * ask again later. */
	if (s->ops->store_failed != NULL && s->ops->store_failed(s->io)) {
		log_info("%016" PRIx64
		         " mtqp track envid=%s result=store-unavailable",
		    s->id, s->envid_log);
		count_result(s, MTQP_TRACK_STORE_UNAVAILABLE);
		return reply(
		    s, MTQP_TEMP, "unavailable", "tracking store unavailable");
	}
	/* The store is read off the loop: the session waits (busy) for
	 * mtqp_proto_looked_up(). */
	s->trk.cmd = *cmd;
	s->trk.pass = 0;
	s->state = MTQP_PROTO_BUSY;
	s->ops->busy(s->io, 1);
	if ((r = track_lookup(s)) == 0)
		return s->state == MTQP_PROTO_READY ? 0 : -1;
	if (r == 1) {
		/* Nothing decodes: nothing can match. */
		track_unknown(s, &s->trk.cmd);
	} else {
		log_info("%016" PRIx64 " mtqp track envid=%s result=error",
		    s->id, s->envid_log);
		count_result(s, MTQP_TRACK_ERROR);
		(void)reply(
		    s, MTQP_TEMP, "unavailable", "tracking store unavailable");
	}
	track_end(s);
	if (s->state == MTQP_PROTO_BUSY && s->pending.len == 0)
		proto_ready(s);
	return s->state == MTQP_PROTO_READY ? 0 : -1;
}

void
mtqp_proto_looked_up(struct mtqp_proto *s, int kept, struct store_msg *msgs,
    size_t n, unsigned char *ok)
{
	struct related_part parts[RELATED_PARTS_MAX];
	struct buf bodies[RELATED_PARTS_MAX];
	struct buf out;
	size_t i, np = 0;
	int transferred = 0, r;

	if (!s->trk.waiting || s->state != MTQP_PROTO_BUSY) {
		store_msgs_free(msgs, n);
		free(ok);
		return;
	}
	s->trk.waiting = 0;
	if (kept < 0) {
		store_msgs_free(msgs, n);
		free(ok);
		log_info("%016" PRIx64 " mtqp track envid=%s result=%s", s->id,
		    s->envid_log,
		    kept == MTQP_PROTO_LOOKUP_TIMEOUT ? "store-timeout"
		                                      : "error");
		count_result(s,
		    kept == MTQP_PROTO_LOOKUP_TIMEOUT
		        ? MTQP_TRACK_STORE_UNAVAILABLE
		        : MTQP_TRACK_ERROR);
		(void)reply(
		    s, MTQP_TEMP, "unavailable", "tracking store unavailable");
		goto done;
	}
	if (kept == 0) {
		store_msgs_free(msgs, n);
		free(ok);
		s->trk.pass++;
		if ((r = track_lookup(s)) == 0)
			return; /* the second pass is on its way */
		if (r == -1) {
			count_result(s, MTQP_TRACK_ERROR);
			(void)reply(s, MTQP_TEMP, "unavailable",
			    "tracking store unavailable");
			goto done;
		}
		track_unknown(s, &s->trk.cmd);
		goto done;
	}
	np = track_parts(s, msgs, n, ok, parts, bodies, &transferred);
	store_msgs_free(msgs, n);
	free(ok);
	log_info("%016" PRIx64 " mtqp track envid=%s result=found parts=%zu",
	    s->id, s->envid_log, np);
	count_result(s, MTQP_TRACK_FOUND);
	buf_init(&out, PROTO_ANSWER_MAX + PROTO_ANSWER_MAX / 8);
	if (np == 0 || found_answer(parts, np, &out) == -1) {
		buf_reset(&out);
		(void)mtqp_resp_line(
		    &out, MTQP_TEMP, "unavailable", "internal error");
	} else if (s->conf->mtqp_chain && transferred &&
	    s->ops->chain != NULL) {
		/* Keep the entity (after the +OK+ line, before stuffing):
		 * rebuild it plainly for the trail. */
		enum related_error rerr;

		buf_reset(&s->own);
		if (related_write(&s->own, NULL, parts, np, &rerr) == 0 &&
		    s->ops->chain(s->io, s->trk.cmd.envid, s->trk.cmd.secret,
		        s->tls, s->own.data, s->own.len) == 0) {
			for (i = 0; i < np; i++)
				buf_reset(&bodies[i]);
			buf_reset(&out);
			track_end(s);
			return; /* busy until mtqp_proto_chained() */
		}
		buf_reset(&s->own);
	}
	for (i = 0; i < np; i++)
		buf_reset(&bodies[i]);
	(void)proto_send(s, &out);
	buf_reset(&out);
done:
	track_end(s);
	/* Not delayed (track_unknown may keep the answer for its turn):
	 * read on. */
	if (s->state == MTQP_PROTO_BUSY && s->pending.len == 0)
		proto_ready(s);
}

static int
proceed_comment(struct mtqp_proto *s, const struct mtqp_cmd *cmd)
{
	(void)cmd;
	/* RFC 3887 §5: "MUST" succeed. */
	return reply(s, MTQP_OK, NULL, "comment noted");
}

static int
proceed_quit(struct mtqp_proto *s, const struct mtqp_cmd *cmd)
{
	(void)cmd;
	(void)reply(s, MTQP_OK, NULL, "goodbye");
	proto_close(s, "quit");
	return -1;
}

static int
check_starttls(struct mtqp_proto *s, const struct mtqp_cmd *cmd)
{
	char dom[MTQP_DOMAIN_MAX + 1];
	X509 *cert;

	log_info("%016" PRIx64 " mtqp starttls", s->id);
	if (s->tls)
		/* RFC 3887 §6: "MUST" be -BAD/tls-in-progress. */
		return refuse(
		    s, MTQP_BAD, "tls-in-progress", "TLS already active");
	if (s->tls_server == NULL)
		return refuse(s, MTQP_ERR, "unsupported", "TLS not available");
	/* RFC 3887 §6: a name that matches no dNSName of the certificate
	 * "MUST" get -BAD/bad-fqdn.  A trailing dot is ignored. */
	str_copy(dom, cmd->domain, sizeof(dom));
	if (*dom != '\0' && dom[strlen(dom) - 1] == '.')
		dom[strlen(dom) - 1] = '\0';
	cert = SSL_CTX_get0_certificate(s->tls_server);
	if (cert == NULL ||
	    X509_check_host(cert, dom, strlen(dom), 0, NULL) != 1)
		return refuse(
		    s, MTQP_BAD, "bad-fqdn", "name not in the certificate");
	return 0;
}

static int
proceed_starttls(struct mtqp_proto *s, const struct mtqp_cmd *cmd)
{
	(void)cmd;
	/* P10: nothing pipelined behind STARTTLS survives: what the
	 * parser holds goes now, what the owner holds in ops->starttls. */
	mtqp_cmd_parser_discard(s->parser);
	if (reply(s, MTQP_OK, NULL, "begin TLS negotiation") == -1)
		return -1;
	s->state = MTQP_PROTO_TLS;
	if (s->ops->starttls(s->io) == -1)
		proto_close(s, "tls-setup");
	return -1;
}

/* The commands of RFC 3887 §12, each with its validator and its action
 * (OpenSMTPD's smtp_session.c).  A check returns 0 to proceed or -1 once
 * it has answered; a proceed returns 0 to go on parsing or -1 when the
 * session stops reading (busy, TLS, closed). */
static const struct proto_cmd {
	enum mtqp_verb verb;
	const char *name;
	int (*check)(struct mtqp_proto *, const struct mtqp_cmd *);
	int (*proceed)(struct mtqp_proto *, const struct mtqp_cmd *);
} commands[] = {
	{ MTQP_CMD_TRACK, "TRACK", check_track, proceed_track },
	{ MTQP_CMD_COMMENT, "COMMENT", check_none, proceed_comment },
	{ MTQP_CMD_STARTTLS, "STARTTLS", check_starttls, proceed_starttls },
	{ MTQP_CMD_QUIT, "QUIT", check_none, proceed_quit },
};

static const struct proto_cmd *
command(enum mtqp_verb v)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].verb == v)
			return &commands[i];
	return NULL;
}

enum mtqp_proto_state
mtqp_proto_run(struct mtqp_proto *s)
{
	struct mtqp_cmd cmd;
	const struct proto_cmd *c;
	int r;

	memset(&cmd, 0, sizeof(cmd));
	while (s->state == MTQP_PROTO_READY) {
		r = mtqp_cmd_next(s->parser, &cmd);
		if (r == 0)
			break;
		if (++s->commands > MTQP_PROTO_COMMANDS_MAX) {
			(void)reply(
			    s, MTQP_ERR, "unavailable", "too many commands");
			proto_close(s, "commands");
			break;
		}
		if (s->ops->touch != NULL)
			s->ops->touch(s->io);
		if (r == -1 || (c = command(cmd.verb)) == NULL) {
			enum mtqp_cmd_error e = r == -1
			    ? mtqp_cmd_parser_error(s->parser)
			    : MTQP_CMD_E_UNKNOWN_VERB;

			log_info("%016" PRIx64 " mtqp bad-command error=\"%s\"",
			    s->id, mtqp_cmd_strerror(e));
			count_result(s, MTQP_TRACK_BAD_COMMAND);
			(void)refuse(s, MTQP_BAD, mtqp_cmd_error_reason(e),
			    mtqp_cmd_strerror(e));
			mtqp_cmd_clear(&cmd);
			continue;
		}
		if (c->check(s, &cmd) == 0)
			(void)c->proceed(s, &cmd);
		mtqp_cmd_clear(&cmd);
	}
	mtqp_cmd_clear(&cmd);
	return s->state;
}

/*
 * The owner's calls
 */

struct mtqp_proto *
mtqp_proto_new(const struct mtqp_proto_params *p)
{
	struct mtqp_proto *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((s->parser = mtqp_cmd_parser_new()) == NULL) {
		free(s);
		return NULL;
	}
	s->conf = p->conf;
	s->tls_server = p->tls_server;
	s->id = p->id;
	str_copy(s->addr, p->addr != NULL ? p->addr : "-", sizeof(s->addr));
	s->ops = p->ops;
	s->io = p->io;
	s->results = p->results;
	s->state = MTQP_PROTO_READY;
	buf_init(&s->pending, PROTO_ANSWER_MAX);
	buf_init(&s->own, PROTO_ANSWER_MAX);
	return s;
}

void
mtqp_proto_free(struct mtqp_proto *s)
{
	if (s == NULL)
		return;
	mtqp_cmd_parser_free(s->parser);
	buf_wipe(&s->pending);
	buf_reset(&s->own);
	free(s);
}

size_t
mtqp_proto_room(const struct mtqp_proto *s)
{
	size_t n = mtqp_cmd_parser_pending(s->parser);

	return n < MTQP_CMD_INPUT_MAX ? MTQP_CMD_INPUT_MAX - n : 0;
}

int
mtqp_proto_push(struct mtqp_proto *s, const void *data, size_t n)
{
	if (n > mtqp_proto_room(s))
		return -1;
	return mtqp_cmd_push(s->parser, data, n);
}

enum mtqp_proto_state
mtqp_proto_state(const struct mtqp_proto *s)
{
	return s->state;
}

/* Back to reading after a pending answer went out. */
static void
proto_ready(struct mtqp_proto *s)
{
	if (s->state != MTQP_PROTO_BUSY)
		return;
	s->state = MTQP_PROTO_READY;
	s->ops->busy(s->io, 0);
}

void
mtqp_proto_wake(struct mtqp_proto *s)
{
	if (s->state != MTQP_PROTO_BUSY)
		return;
	if (proto_send(s, &s->pending) == 0)
		proto_ready(s);
	buf_reset(&s->pending);
}

void
mtqp_proto_tls_done(struct mtqp_proto *s)
{
	if (s->state != MTQP_PROTO_TLS)
		return;
	/* RFC 3887 §6.2: a new greeting, without STARTTLS; everything
	 * before is forgotten. */
	s->tls = 1;
	s->errors = 0;
	s->state = MTQP_PROTO_READY;
	(void)mtqp_proto_greet(s);
}

/* Adds "dns" name f to the hidden list unless it is me or listed.
 * Returns 0, or -1 when the list is full. */
static int
hide_add(const struct tstatus_typed *f, const char *me, const char **hide,
    size_t *nhide)
{
	const char *one[1];

	if (f->type == NULL || f->value == NULL ||
	    str_casecmp(f->type, "dns") != 0)
		return 0;
	one[0] = me;
	if (mtqp_server_hidden(f->value, one, 1) ||
	    mtqp_server_hidden(f->value, hide, *nhide))
		return 0;
	if (*nhide >= PROTO_HIDE_MAX)
		return -1;
	hide[(*nhide)++] = f->value;
	return 0;
}

/* 1 if recipient r's trail ended because its next hop gave nothing
 * usable in time (P11), or was not asked because it is not allowed
 * (mtqp_chain_hosts): "passed on, but no further information". */
static int
unanswered(const struct trail_rcpt *r)
{
	return r->end == TRAIL_END_ERROR || r->end == TRAIL_END_TIMEOUT ||
	    r->end == TRAIL_END_NOINFO || r->end == TRAIL_END_REFUSED;
}

void
mtqp_proto_chained(struct mtqp_proto *s, const struct trail_result *res)
{
	const struct conf *conf = s->conf;
	const char *me = conf->hostname;
	struct related_part parts[RELATED_PARTS_MAX];
	struct buf bodies[RELATED_PARTS_MAX];
	const char **hide = NULL;
	size_t nhide = 0, n = 0, i, j, k, h, nrelayed = 0, nrefused = 0;
	int hide_all = 0;
	unsigned char *mask = NULL;
	struct buf out;

	if (s->state != MTQP_PROTO_BUSY)
		return;
	if (conf->hide_internal_hosts) {
		/* Internal: every host the chain reached or tried to reach
		 * (the Remote-MTA of a transferred block) and every host
		 * that answered for the chain (RFC 3887 Example #12). */
		if ((hide = calloc(PROTO_HIDE_MAX, sizeof(*hide))) == NULL)
			hide_all = 1;
		for (i = 0; i < res->nanswers && !hide_all; i++) {
			const struct trail_answer *a = res->answers[i];

			for (j = 0; j < a->nparts && !hide_all; j++) {
				const struct tstatus *p = a->parts[j];

				if (i > 0 &&
				    hide_add(&p->reporting_mta, me, hide,
				        &nhide) == -1)
					hide_all = 1;
				for (k = 0; k < p->nrcpt && !hide_all; k++)
					if (p->rcpt[k].action ==
					        TSTATUS_ACTION_TRANSFERRED &&
					    hide_add(&p->rcpt[k].remote_mta, me,
					        hide, &nhide) == -1)
						hide_all = 1;
			}
		}
	}
	for (k = 0; k < res->nrcpt; k++)
		if (res->rcpts[k].end == TRAIL_END_REFUSED)
			nrefused++;
	mask = calloc(TSTATUS_RCPT_MAX, 1);
	for (i = 0; i < res->nanswers && n < RELATED_PARTS_MAX; i++) {
		const struct trail_answer *a = res->answers[i];

		for (j = 0; j < a->nparts && n < RELATED_PARTS_MAX; j++) {
			const struct tstatus *p = a->parts[j];
			int relay = 0;
			enum mtqp_server_part_error perr = MTQP_SERVER_PART_OK;
			enum tstatus_error terr;

			buf_init(&bodies[n], RELATED_PART_MAX);
			parts[n].header = NULL;
			parts[n].header_len = 0;
			parts[n].body = a->part_body[j];
			parts[n].body_len = a->part_len[j];
			if (mask != NULL && p->nrcpt <= TSTATUS_RCPT_MAX) {
				memset(mask, 0, p->nrcpt);
				for (k = 0; k < res->nrcpt; k++) {
					const struct trail_rcpt *r =
					    &res->rcpts[k];
					const struct trail_hop *last;

					if (!unanswered(r) || r->nhops == 0)
						continue;
					last = &r->hops[r->nhops - 1];
					if (last->part != p)
						continue;
					h = (size_t)(last->rcpt - p->rcpt);
					if (h < p->nrcpt &&
					    last->rcpt->action ==
					        TSTATUS_ACTION_TRANSFERRED) {
						mask[h] = 1;
						relay = 1;
						nrelayed++;
					}
				}
			}
			if ((relay || hide_all || nhide > 0) &&
			    mtqp_server_rewrite(p, relay ? mask : NULL, hide,
			        nhide, hide_all, me, &bodies[n], &perr,
			        &terr) == 0) {
				parts[n].body = bodies[n].data;
				parts[n].body_len = bodies[n].len;
			} else if (relay || hide_all || nhide > 0) {
				log_warnx("%016" PRIx64 " mtqp chain-part "
				          "error=\"%s\"",
				    s->id, mtqp_server_part_strerror(perr));
				if (i > 0) {
					/* Never pass on what we could not
					 * rewrite. */
					buf_reset(&bodies[n]);
					continue;
				}
			}
			n++;
		}
	}
	free(mask);
	free(hide);
	buf_init(&out, PROTO_ANSWER_MAX + PROTO_ANSWER_MAX / 8);
	if (n == 0 || found_answer(parts, n, &out) == -1) {
		/* Fall back to our own entity alone. */
		buf_reset(&out);
		if (mtqp_resp_multi(&out, NULL, "tracking information",
		        s->own.data, s->own.len) == -1)
			(void)mtqp_resp_line(
			    &out, MTQP_TEMP, "unavailable", "internal error");
	}
	for (i = 0; i < n; i++)
		buf_reset(&bodies[i]);
	log_info("%016" PRIx64 " mtqp chain envid=%s answers=%zu parts=%zu "
	         "relayed=%zu refused=%zu hidden=%s",
	    s->id, s->envid_log, res->nanswers, n, nrelayed, nrefused,
	    hide_all                        ? "all"
	        : conf->hide_internal_hosts ? "internal"
	                                    : "no");
	buf_reset(&s->own);
	if (proto_send(s, &out) == 0)
		proto_ready(s);
	buf_reset(&out);
}
