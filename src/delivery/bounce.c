/*
 * bounce: DSNs (RFC 3464, RFC 3461 §6) built with libmsgtrk's
 * dsn_generate() and queued as new messages from the null reverse-path to
 * the original sender, so they are delivered (and retried) like any
 * message: a local sender finds them in its Maildir.
 *
 * The returned content follows RET (dsn.h: the whole message for a
 * failure with RET=FULL, else the header); a message larger than
 * BOUNCE_RETURN_MAX is returned as its header only, as Postfix does past
 * bounce_size_limit, so a DSN never carries (or holds in memory) a large
 * message.  The body is read off the loop (queue_body_read), and the
 * caller learns only once the DSN is durable in the queue: a recipient is
 * marked dsn_sent after that, never before.  A status of class 4 with
 * the failed action (4.4.7, the queue lifetime passed) is written with
 * class 5 in the DSN only, because RFC 3464 §2.3.4 ties "failed" to a
 * permanent status; the tracking record keeps 4.4.7.
 *
 * Diagnostic-Code (RFC 3464 §2.3.6): a remote reply, kept whole
 * (reply.h), is "smtp; 550 5.1.1 <x@dest.test>: mailbox does not exist",
 * every line of a multi-line reply joined by a SPACE (RFC 3461 §9.2); a
 * text msgtrkd made itself (no SMTP reply: "No such local recipient",
 * "[192.0.2.1]: connection refused", a TLS failure) is
 * "X-msgtrk; <text>" without a reply code, as Postfix writes
 * "X-Postfix; ..." for its own: a code there would read as the peer's.
 * A relayed recipient has none (the next hop's 250 says nothing about
 * delivery).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "common/conf.h"
#include "common/log.h"
#include "delivery/delivery_int.h"
#include "delivery/reply.h"
#include "msgtrk/buf.h"
#include "msgtrk/dsn.h"
#include "msgtrk/str.h"
#include "queue/queue.h"

/* A DSN is at most the returned content plus this much. */
#define BOUNCE_OVERHEAD (1024 * 1024)

struct bounce {
	struct delivery *dl;
	const struct queue_msg *m; /* the original (kept by the queue while
				      its duties are owed) */
	enum store_action action;
	size_t n;
	uint32_t *idx;
	struct queue_body_reader *rd;
	struct buf body; /* the returned content, at most the cap + 1 */
	struct queue_msg *nm; /* the DSN */
	struct buf out;
	struct iovec iov;
	void (*done)(void *, int);
	void *arg;
};

static void
bounce_free(struct bounce *b)
{
	queue_body_close(b->rd);
	buf_reset(&b->body);
	buf_reset(&b->out);
	queue_msg_free(b->nm);
	free(b->idx);
	free(b);
}

/* Ends b: done(arg, rc) and free. */
static void
bounce_end(struct bounce *b, int rc)
{
	b->done(b->arg, rc);
	bounce_free(b);
}

static void
bounce_queued(void *arg, int rc, int err)
{
	struct bounce *b = arg;

	if (rc == -1) {
		log_warnx(
		    "%s delivery dsn error=\"%s\"", b->m->qid, strerror(err));
	} else {
		delivery_schedule(b->dl, b->nm);
		b->nm = NULL; /* the queue's now */
	}
	bounce_end(b, rc == -1 ? -1 : 0);
}

static enum tstatus_action
bounce_action(enum store_action a)
{
	switch (a) {
	case STORE_ACTION_FAILED:
		return TSTATUS_ACTION_FAILED;
	case STORE_ACTION_DELIVERED:
		return TSTATUS_ACTION_DELIVERED;
	case STORE_ACTION_RELAYED:
		return TSTATUS_ACTION_RELAYED;
	case STORE_ACTION_EXPANDED:
		return TSTATUS_ACTION_EXPANDED;
	default:
		return TSTATUS_ACTION_DELAYED;
	}
}

/* dr's Diagnostic-Code from the kept reply of qr (see above); *lines
 * holds the text, the caller frees it. */
static void
bounce_diag(struct dsn_rcpt *dr, char **lines, const struct queue_rcpt *qr)
{
	const char *reply = qr->track.reply;
	size_t size = strlen(reply) + DSN_DIAG_LINES_MAX + 1;

	if ((*lines = malloc(size)) == NULL)
		fatal("bounce");
	/* One kept line back into the reply's lines, each within
	 * DSN_DIAG_LINE_MAX; the DSN joins them as they were. */
	if (reply_diag_lines(reply, *lines, size) == 0)
		return;
	dr->diagnostic = *lines;
	if (!reply_is_smtp(reply) || qr->track.remote_mta == NULL)
		dr->diagnostic_type = REPLY_DIAG_TYPE_LOCAL;
}

static char *
bounce_strdup(const char *s)
{
	char *p;

	if ((p = strdup(s)) == NULL)
		fatal("bounce");
	return p;
}

/* The body is read (or as much as is returned): build and queue it. */
static void
bounce_build(struct bounce *b)
{
	const struct delivery_deps *d = delivery_deps(b->dl);
	const struct conf *c = d->conf;
	const struct queue_msg *m = b->m;
	size_t n = b->n;
	struct dsn_rcpt *dr;
	struct dsn ds;
	struct queue_msg *nm;
	enum dsn_error e = DSN_OK;
	char(*st)[STORE_STATUS_MAX + 1];
	char(*otype)[32];
	char **diag;
	char msgid[400], rcpt[600];
	const char *semi;
	size_t i;
	int big = b->body.len > BOUNCE_RETURN_MAX;

	if ((dr = calloc(n, sizeof(*dr))) == NULL ||
	    (st = calloc(n, sizeof(*st))) == NULL ||
	    (otype = calloc(n, sizeof(*otype))) == NULL ||
	    (diag = calloc(n, sizeof(*diag))) == NULL)
		fatal("bounce");
	for (i = 0; i < n; i++) {
		const struct queue_rcpt *qr = &m->rcpts[b->idx[i]];

		if (qr->orcpt_raw != NULL && qr->track.orcpt != NULL &&
		    (semi = strchr(qr->track.orcpt, ';')) != NULL &&
		    (size_t)(semi - qr->track.orcpt) < sizeof(otype[i])) {
			memcpy(otype[i], qr->track.orcpt,
			    (size_t)(semi - qr->track.orcpt));
			dr[i].orcpt_type = otype[i];
			dr[i].orcpt = semi + 1;
			while (*dr[i].orcpt == ' ')
				dr[i].orcpt++;
		}
		dr[i].final_rcpt = qr->addr;
		dr[i].action = bounce_action(b->action);
		str_copy(st[i], qr->track.status, sizeof(st[i]));
		if (b->action == STORE_ACTION_FAILED && st[i][0] != '5')
			st[i][0] = '5';
		if (b->action == STORE_ACTION_RELAYED)
			str_copy(st[i], "2.1.9", sizeof(st[i]));
		if (st[i][0] == '\0')
			str_copy(st[i],
			    b->action == STORE_ACTION_DELAYED ? "4.0.0"
			                                      : "2.0.0",
			    sizeof(st[i]));
		dr[i].status = st[i];
		if (qr->track.remote_mta != NULL &&
		    strncmp(qr->track.remote_mta, "dns; ", 5) == 0)
			dr[i].remote_mta = qr->track.remote_mta + 5;
		if (qr->track.reply != NULL &&
		    b->action != STORE_ACTION_RELAYED)
			bounce_diag(&dr[i], &diag[i], qr);
		if (qr->track.last_attempt != 0) {
			dr[i].has_last_attempt = 1;
			dr[i].last_attempt.t = qr->track.last_attempt;
		}
		if (b->action == STORE_ACTION_DELAYED &&
		    qr->track.will_retry_until != 0) {
			dr[i].has_will_retry = 1;
			dr[i].will_retry.t = qr->track.will_retry_until;
		}
	}
	if ((nm = calloc(1, sizeof(*nm))) == NULL ||
	    (nm->rcpts = calloc(1, sizeof(*nm->rcpts))) == NULL)
		fatal("bounce");
	b->nm = nm;
	queue_new_id(nm->qid);
	memset(&ds, 0, sizeof(ds));
	ds.sender = m->sender;
	ds.date.t = time(NULL);
	snprintf(msgid, sizeof(msgid), "<%s.dsn@%s>", nm->qid, c->hostname);
	ds.message_id = msgid;
	ds.envid = m->envid;
	ds.reporting_mta = c->hostname;
	ds.has_arrival = 1;
	ds.arrival.t = m->arrival;
	ds.rcpt = dr;
	ds.nrcpt = n;
	ds.ret = m->ret == QUEUE_RET_FULL ? DSN_RET_FULL
	    : m->ret == QUEUE_RET_HDRS    ? DSN_RET_HDRS
	                                  : DSN_RET_NONE;
	if (big && ds.ret == DSN_RET_FULL)
		ds.ret = DSN_RET_HDRS; /* too large to return whole */
	ds.msg = b->body.data != NULL ? b->body.data : "";
	ds.msglen = b->body.len;
	if (dsn_generate(&ds, &b->out, &e) == -1 && e == DSN_E_BAD_VALUE) {
		/* A diagnostic the generator will not carry (8-bit text
		 * from a peer): leave the diagnostics out. */
		for (i = 0; i < n; i++) {
			dr[i].diagnostic = NULL;
			dr[i].diagnostic_type = NULL;
		}
		e = DSN_OK;
		if (dsn_generate(&ds, &b->out, &e) == -1)
			(void)0;
	}
	for (i = 0; i < n; i++)
		free(diag[i]);
	free(diag);
	free(dr);
	free(st);
	free(otype);
	buf_reset(&b->body); /* copied into the DSN, or not needed */
	if (e != DSN_OK) {
		log_warnx(
		    "%s delivery dsn error=\"%s\"", m->qid, dsn_strerror(e));
		bounce_end(b, -1);
		return;
	}
	nm->sender = bounce_strdup("");
	nm->ret = QUEUE_RET_NONE;
	for (i = 0; i < b->out.len; i++)
		if ((unsigned char)b->out.data[i] > 127) {
			nm->body_8bit = 1;
			break;
		}
	nm->arrival = time(NULL);
	nm->expires = nm->arrival + c->mtrk_default_timeout;
	nm->reporting_mta = bounce_strdup(c->hostname);
	nm->helo = bounce_strdup(c->hostname);
	nm->client = bounce_strdup("local");
	nm->next_attempt = nm->arrival;
	nm->nrcpt = 1;
	nm->rcpts[0].addr = bounce_strdup(m->sender);
	snprintf(rcpt, sizeof(rcpt), "rfc822;%s", m->sender);
	nm->rcpts[0].track.orcpt = bounce_strdup(rcpt);
	nm->rcpts[0].track.final_rcpt = bounce_strdup(rcpt);
	b->iov.iov_base = b->out.data;
	b->iov.iov_len = b->out.len;
	if (queue_submit(d->queue, nm, &b->iov, 1, NULL, bounce_queued, b) ==
	    -1) {
		log_warn("%s delivery dsn submit", m->qid);
		bounce_end(b, -1);
		return;
	}
	log_info("%s delivery dsn sent=%s type=%s rcpts=%zu%s", m->qid, nm->qid,
	    store_action_name(b->action), n, big ? " returned=header" : "");
}

static void bounce_read(struct bounce *b);

static void
bounce_piece(void *arg, int rc, int err)
{
	struct bounce *b = arg;

	if (rc == -1) {
		log_warnx("%s delivery dsn body error=\"%s\"", b->m->qid,
		    strerror(err));
		bounce_end(b, -1);
		return;
	}
	if (rc == 0 || b->body.len > BOUNCE_RETURN_MAX) {
		queue_body_close(b->rd);
		b->rd = NULL;
		bounce_build(b);
		return;
	}
	bounce_read(b);
}

static void
bounce_read(struct bounce *b)
{
	if (queue_body_read(delivery_deps(b->dl)->queue, b->rd, &b->body,
	        bounce_piece, b) == -1)
		bounce_piece(b, -1, errno);
}

int
bounce_send(struct delivery *dl, const struct queue_msg *m, const uint32_t *idx,
    size_t n, enum store_action action, void (*done)(void *, int), void *arg)
{
	const struct delivery_deps *d = delivery_deps(dl);
	struct bounce *b;

	if (m->sender[0] == '\0' || n == 0 || n > DSN_RCPT_MAX)
		return -1;
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->idx = calloc(n, sizeof(*b->idx))) == NULL)
		fatal("bounce");
	b->dl = dl;
	b->m = m;
	b->action = action;
	b->n = n;
	memcpy(b->idx, idx, n * sizeof(*idx));
	b->done = done;
	b->arg = arg;
	/* The cap plus one piece: enough to know it is over the cap. */
	buf_init(&b->body, BOUNCE_RETURN_MAX + QUEUE_CHUNK_SIZE + 1);
	buf_init(&b->out,
	    BOUNCE_RETURN_MAX + QUEUE_CHUNK_SIZE + 2 * BOUNCE_OVERHEAD);
	if ((b->rd = queue_body_open(d->queue, m)) == NULL) {
		log_warn("%s delivery dsn body", m->qid);
		bounce_free(b);
		return -1;
	}
	bounce_read(b);
	return 0;
}
