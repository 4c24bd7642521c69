/*
 * queue: durable queue with group commit and the tracking store kept in
 * step.  See queue.h for the model and journal.h for the format.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "msgtrk/buf.h"
#include "msgtrk/str.h"
#include "queue/queue.h"

/* Record types in the journal. */
enum {
	REC_MSG = 1,
	REC_STATE = 2,
	REC_DONE = 3,
};

/* What a request does, for its completion on the loop thread. */
enum req_kind {
	REQ_SUBMIT,
	REQ_UPDATE,
	REQ_FINISH,
	REQ_RELOCATE,
	REQ_DROP,
	REQ_PURGE,
};

/* Envelope fields (TLV tags).  Never renumber: they are on disk. */
enum {
	T_QID = 1,
	T_SENDER,
	T_ENVID_RAW,
	T_ENVID,
	T_RET,
	T_BODY8,
	T_MTRK,
	T_CERTIFIER,
	T_MTRK_TIMEOUT,
	T_ARRIVAL,
	T_EXPIRES,
	T_REPORTING_MTA,
	T_HELO,
	T_CLIENT,
	T_SIZE,
	T_NEXT_ATTEMPT,
	T_ATTEMPTS,
	T_DELAY_WARNED,
	T_NRCPT,
	T_MTRK_HAS_TIMEOUT,
	/* per recipient, after T_RCPT */
	T_RCPT = 32,
	T_R_ADDR,
	T_R_ORCPT_RAW,
	T_R_NOTIFY,
	T_R_FINAL,
	T_R_DSN_SENT,
	T_R_ORCPT,
	T_R_FINAL_RCPT,
	T_R_ACTION,
	T_R_STATUS,
	T_R_REMOTE_MTA,
	T_R_LAST_ATTEMPT,
	T_R_RETRY_UNTIL,
	T_R_REPLY,
};

/* Replay applies the store in transactions of this many records. */
#define QUEUE_REPLAY_BATCH 1024
/* Relocate the oldest segment's messages once the journal spans this
 * many segments, so one long-lived message does not pin the disk. */
#define QUEUE_RELOCATE_SPAN 4
/* Body iovecs per request (the journal takes 64 with the header). */
#define QUEUE_IOV_MAX 60
/* Records whose store update failed, kept to retry. */
#define QUEUE_RETRY_MAX 100000
/* Seconds between retries of the kept store updates while the store is
 * failed and no batch comes to retry them. */
#define QUEUE_STORE_RETRY 1

struct qreq {
	struct qreq *next;
	enum req_kind kind;
	uint8_t type; /* REC_* */
	struct buf head; /* payload without the body */
	struct iovec body[QUEUE_IOV_MAX];
	int nbody;
	uint32_t envlen; /* REC_MSG: length of the envelope */
	struct journal_pos from; /* REQ_RELOCATE: the body to copy */
	struct journal_pos pos; /* the record written */
	struct queue_msg *m; /* loop thread only */
	time_t now; /* REQ_PURGE */
	size_t purged;
	size_t *purged_out;
	queue_done_cb done;
	void *arg;
	int rc, err;
};

struct qentry {
	struct qentry *next;
	struct queue_msg *m;
	int relocating;
};

struct queue {
	struct event_base *base;
	struct journal *j;
	struct store *store;
	const struct store_backend *be;
	char *dir;

	/* live messages, loop thread only */
	struct qentry **tab;
	size_t tabsize, count;
	uint64_t oldest, newest; /* segments, as the loop knows them */
	size_t *segcount; /* live messages by segment - oldest */
	size_t nsegcount;
	int drop_inflight;

	/* writer thread */
	pthread_t thr;
	int started;
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	struct qreq *pending, **pending_tail;
	struct qreq *done, **done_tail;
	int stopping;
	int hold;
	struct queue_stats stats; /* under mtx */
	int efd; /* eventfd: the writer wakes the loop */
	struct event *ev_done;
	struct buf *retry; /* failed store updates: type + payload */
	size_t nretry;
	int store_failed;
};

static void queue_msg_free_fields(struct queue_msg *m);

/* --- encoding ------------------------------------------------------ */

static int
tlv(struct buf *b, uint8_t tag, const void *p, size_t n)
{
	unsigned char h[5];

	if (n > QUEUE_STRING_MAX)
		return -1;
	h[0] = tag;
	h[1] = (unsigned char)n;
	h[2] = (unsigned char)(n >> 8);
	h[3] = (unsigned char)(n >> 16);
	h[4] = (unsigned char)(n >> 24);
	if (buf_add(b, h, sizeof(h)) == -1 || buf_add(b, p, n) == -1)
		return -1;
	return 0;
}

static int
tlv_str(struct buf *b, uint8_t tag, const char *s)
{
	return s == NULL ? 0 : tlv(b, tag, s, strlen(s));
}

static int
tlv_u64(struct buf *b, uint8_t tag, uint64_t v)
{
	unsigned char p[8];
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
	return tlv(b, tag, p, sizeof(p));
}

static int
rcpt_state_encode(const struct queue_rcpt *r, struct buf *b)
{
	const struct store_rcpt *t = &r->track;

	if (tlv_u64(b, T_RCPT, t->idx) == -1 ||
	    tlv_u64(b, T_R_FINAL, r->final) == -1 ||
	    tlv_u64(b, T_R_DSN_SENT, r->dsn_sent) == -1 ||
	    tlv_str(b, T_R_ORCPT, t->orcpt) == -1 ||
	    tlv_str(b, T_R_FINAL_RCPT, t->final_rcpt) == -1 ||
	    tlv_u64(b, T_R_ACTION, (uint64_t)t->action) == -1 ||
	    tlv_str(b, T_R_STATUS, t->status) == -1 ||
	    tlv_str(b, T_R_REMOTE_MTA, t->remote_mta) == -1 ||
	    tlv_u64(b, T_R_LAST_ATTEMPT, (uint64_t)t->last_attempt) == -1 ||
	    tlv_u64(b, T_R_RETRY_UNTIL, (uint64_t)t->will_retry_until) == -1 ||
	    tlv_str(b, T_R_REPLY, t->reply) == -1)
		return -1;
	return 0;
}

static int
sched_encode(const struct queue_msg *m, struct buf *b)
{
	if (tlv_str(b, T_QID, m->qid) == -1 ||
	    tlv_u64(b, T_NEXT_ATTEMPT, (uint64_t)m->next_attempt) == -1 ||
	    tlv_u64(b, T_ATTEMPTS, m->attempts) == -1 ||
	    tlv_u64(b, T_DELAY_WARNED, m->delay_warned) == -1)
		return -1;
	return 0;
}

int
queue_msg_encode(const struct queue_msg *m, struct buf *b)
{
	size_t i;

	if (m->nrcpt == 0 || m->nrcpt > QUEUE_RCPT_MAX)
		return -1;
	if (sched_encode(m, b) == -1 || tlv_str(b, T_SENDER, m->sender) == -1 ||
	    tlv_str(b, T_ENVID_RAW, m->envid_raw) == -1 ||
	    tlv_str(b, T_ENVID, m->envid) == -1 ||
	    tlv_u64(b, T_RET, m->ret) == -1 ||
	    tlv_u64(b, T_BODY8, m->body_8bit) == -1 ||
	    tlv_u64(b, T_MTRK, m->mtrk) == -1 ||
	    tlv_str(b, T_CERTIFIER, m->certifier) == -1 ||
	    tlv_u64(b, T_MTRK_TIMEOUT, m->mtrk_timeout) == -1 ||
	    tlv_u64(b, T_MTRK_HAS_TIMEOUT, m->mtrk_has_timeout) == -1 ||
	    tlv_u64(b, T_ARRIVAL, (uint64_t)m->arrival) == -1 ||
	    tlv_u64(b, T_EXPIRES, (uint64_t)m->expires) == -1 ||
	    tlv_str(b, T_REPORTING_MTA, m->reporting_mta) == -1 ||
	    tlv_str(b, T_HELO, m->helo) == -1 ||
	    tlv_str(b, T_CLIENT, m->client) == -1 ||
	    tlv_u64(b, T_SIZE, m->size) == -1 ||
	    tlv_u64(b, T_NRCPT, m->nrcpt) == -1)
		return -1;
	for (i = 0; i < m->nrcpt; i++) {
		const struct queue_rcpt *r = &m->rcpts[i];

		if (r->track.idx != i || rcpt_state_encode(r, b) == -1 ||
		    tlv_str(b, T_R_ADDR, r->addr) == -1 ||
		    tlv_str(b, T_R_ORCPT_RAW, r->orcpt_raw) == -1 ||
		    tlv_u64(b, T_R_NOTIFY, r->notify) == -1)
			return -1;
	}
	return 0;
}

/* A cursor over TLV fields. */
struct tlv_in {
	const unsigned char *p, *end;
	uint8_t tag;
	const unsigned char *v;
	uint32_t len;
};

/* Returns 1 with the next field, 0 at the end, -1 if malformed. */
static int
tlv_next(struct tlv_in *in)
{
	if (in->p == in->end)
		return 0;
	if (in->end - in->p < 5)
		return -1;
	in->tag = in->p[0];
	in->len = (uint32_t)in->p[1] | (uint32_t)in->p[2] << 8 |
	    (uint32_t)in->p[3] << 16 | (uint32_t)in->p[4] << 24;
	if (in->len > QUEUE_STRING_MAX ||
	    (size_t)(in->end - in->p - 5) < in->len)
		return -1;
	in->v = in->p + 5;
	in->p += 5 + in->len;
	return 1;
}

static int
get_u64(const struct tlv_in *in, uint64_t *out)
{
	int i;

	if (in->len != 8)
		return -1;
	*out = 0;
	for (i = 0; i < 8; i++)
		*out |= (uint64_t)in->v[i] << (8 * i);
	return 0;
}

/* Sets *s to a NUL-terminated copy; text fields hold no NUL. */
static int
get_str(const struct tlv_in *in, char **s)
{
	if (memchr(in->v, '\0', in->len) != NULL)
		return -1;
	free(*s);
	if ((*s = malloc(in->len + 1)) == NULL)
		return -1;
	memcpy(*s, in->v, in->len);
	(*s)[in->len] = '\0';
	return 0;
}

static int
get_fixed(const struct tlv_in *in, char *out, size_t size)
{
	if (in->len >= size || memchr(in->v, '\0', in->len) != NULL)
		return -1;
	memcpy(out, in->v, in->len);
	out[in->len] = '\0';
	return 0;
}

/* Decodes one recipient field into r; returns 0, 1 if the tag is not a
 * recipient field, -1 if malformed. */
static int
rcpt_field(const struct tlv_in *in, struct queue_rcpt *r)
{
	struct store_rcpt *t = &r->track;
	uint64_t v;

	switch (in->tag) {
	case T_R_ADDR:
		return get_str(in, &r->addr);
	case T_R_ORCPT_RAW:
		return get_str(in, &r->orcpt_raw);
	case T_R_ORCPT:
		return get_str(in, &t->orcpt);
	case T_R_FINAL_RCPT:
		return get_str(in, &t->final_rcpt);
	case T_R_REMOTE_MTA:
		return get_str(in, &t->remote_mta);
	case T_R_REPLY:
		return get_str(in, &t->reply);
	case T_R_STATUS:
		return get_fixed(in, t->status, sizeof(t->status));
	case T_R_NOTIFY:
	case T_R_FINAL:
	case T_R_DSN_SENT:
	case T_R_ACTION:
	case T_R_LAST_ATTEMPT:
	case T_R_RETRY_UNTIL:
		if (get_u64(in, &v) == -1)
			return -1;
		if (in->tag == T_R_NOTIFY)
			r->notify = (uint8_t)v;
		else if (in->tag == T_R_FINAL)
			r->final = v != 0;
		else if (in->tag == T_R_DSN_SENT)
			r->dsn_sent = v != 0;
		else if (in->tag == T_R_ACTION) {
			if (v > STORE_ACTION_FAILED)
				return -1;
			t->action = (enum store_action)v;
		} else if (in->tag == T_R_LAST_ATTEMPT)
			t->last_attempt = (time_t)v;
		else
			t->will_retry_until = (time_t)v;
		return 0;
	default:
		return 1;
	}
}

static void
rcpt_clear(struct queue_rcpt *r)
{
	free(r->addr);
	free(r->orcpt_raw);
	free(r->track.orcpt);
	free(r->track.final_rcpt);
	free(r->track.remote_mta);
	free(r->track.reply);
	memset(r, 0, sizeof(*r));
}

static int
sched_field(const struct tlv_in *in, struct queue_msg *m)
{
	uint64_t v;

	switch (in->tag) {
	case T_QID:
		return get_fixed(in, m->qid, sizeof(m->qid));
	case T_NEXT_ATTEMPT:
	case T_ATTEMPTS:
	case T_DELAY_WARNED:
		if (get_u64(in, &v) == -1)
			return -1;
		if (in->tag == T_NEXT_ATTEMPT)
			m->next_attempt = (time_t)v;
		else if (in->tag == T_ATTEMPTS)
			m->attempts = (uint32_t)v;
		else
			m->delay_warned = v != 0;
		return 0;
	default:
		return 1;
	}
}

int
queue_msg_decode(const void *p, size_t n, struct queue_msg *m)
{
	struct tlv_in in = { p, (const unsigned char *)p + n, 0, NULL, 0 };
	struct queue_rcpt *r = NULL;
	uint64_t v;
	int rc;

	memset(m, 0, sizeof(*m));
	while ((rc = tlv_next(&in)) == 1) {
		if ((rc = sched_field(&in, m)) != 1) {
			if (rc == -1)
				goto bad;
			continue;
		}
		if (in.tag == T_RCPT) {
			if (get_u64(&in, &v) == -1 || v >= m->nrcpt ||
			    m->rcpts[v].addr != NULL)
				goto bad;
			r = &m->rcpts[v];
			r->track.idx = (uint32_t)v;
			continue;
		}
		if (r != NULL) {
			if ((rc = rcpt_field(&in, r)) == -1)
				goto bad;
			if (rc == 0)
				continue;
		}
		switch (in.tag) {
		case T_SENDER:
			rc = get_str(&in, &m->sender);
			break;
		case T_ENVID_RAW:
			rc = get_str(&in, &m->envid_raw);
			break;
		case T_ENVID:
			rc = get_str(&in, &m->envid);
			break;
		case T_REPORTING_MTA:
			rc = get_str(&in, &m->reporting_mta);
			break;
		case T_HELO:
			rc = get_str(&in, &m->helo);
			break;
		case T_CLIENT:
			rc = get_str(&in, &m->client);
			break;
		case T_CERTIFIER:
			rc = get_fixed(&in, m->certifier, sizeof(m->certifier));
			break;
		case T_NRCPT:
			if (get_u64(&in, &v) == -1 || v == 0 ||
			    v > QUEUE_RCPT_MAX || m->rcpts != NULL)
				goto bad;
			if ((m->rcpts = calloc(v, sizeof(*m->rcpts))) == NULL)
				goto bad;
			m->nrcpt = (size_t)v;
			rc = 0;
			break;
		default:
			if (get_u64(&in, &v) == -1)
				goto bad;
			rc = 0;
			if (in.tag == T_RET && v <= QUEUE_RET_HDRS)
				m->ret = (uint8_t)v;
			else if (in.tag == T_BODY8)
				m->body_8bit = v != 0;
			else if (in.tag == T_MTRK)
				m->mtrk = v != 0;
			else if (in.tag == T_MTRK_TIMEOUT && v <= UINT32_MAX)
				m->mtrk_timeout = (uint32_t)v;
			else if (in.tag == T_MTRK_HAS_TIMEOUT)
				m->mtrk_has_timeout = v != 0;
			else if (in.tag == T_ARRIVAL)
				m->arrival = (time_t)v;
			else if (in.tag == T_EXPIRES)
				m->expires = (time_t)v;
			else if (in.tag == T_SIZE)
				m->size = v;
			else
				goto bad;
		}
		if (rc == -1)
			goto bad;
	}
	if (rc == -1 || m->qid[0] == '\0' || m->sender == NULL || m->nrcpt == 0)
		goto bad;
	for (v = 0; v < m->nrcpt; v++)
		if (m->rcpts[v].addr == NULL)
			goto bad;
	return 0;
bad:
	queue_msg_free_fields(m);
	return -1;
}

static void
queue_msg_free_fields(struct queue_msg *m)
{
	size_t i;

	for (i = 0; i < m->nrcpt && m->rcpts != NULL; i++)
		rcpt_clear(&m->rcpts[i]);
	free(m->rcpts);
	free(m->sender);
	free(m->envid_raw);
	free(m->envid);
	free(m->reporting_mta);
	free(m->helo);
	free(m->client);
	memset(m, 0, sizeof(*m));
}

void
queue_msg_free(struct queue_msg *m)
{
	if (m == NULL)
		return;
	queue_msg_free_fields(m);
	free(m);
}

/* A STATE record: the message's schedule and some recipients' state. */
static int
state_encode(
    const struct queue_msg *m, const uint32_t *idx, size_t n, struct buf *b)
{
	size_t i;

	if (sched_encode(m, b) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (idx[i] >= m->nrcpt ||
		    rcpt_state_encode(&m->rcpts[idx[i]], b) == -1)
			return -1;
	}
	return 0;
}

/* Applies a STATE record to m (whose qid it must carry). */
static int
state_apply(const void *p, size_t n, struct queue_msg *m)
{
	struct tlv_in in = { p, (const unsigned char *)p + n, 0, NULL, 0 };
	struct queue_rcpt *r = NULL;
	char qid[QUEUE_ID_LEN + 1];
	uint64_t v;
	int rc;

	str_copy(qid, m->qid, sizeof(qid));
	while ((rc = tlv_next(&in)) == 1) {
		if ((rc = sched_field(&in, m)) != 1) {
			if (rc == -1 || strcmp(qid, m->qid) != 0)
				return -1;
			continue;
		}
		if (in.tag == T_RCPT) {
			if (get_u64(&in, &v) == -1 || v >= m->nrcpt)
				return -1;
			r = &m->rcpts[v];
			continue;
		}
		if (r == NULL || rcpt_field(&in, r) != 0)
			return -1;
	}
	return rc;
}

/* Reads the qid of a STATE or DONE record. */
static int
record_qid(const void *p, size_t n, char out[QUEUE_ID_LEN + 1])
{
	struct tlv_in in = { p, (const unsigned char *)p + n, 0, NULL, 0 };

	if (tlv_next(&in) != 1 || in.tag != T_QID)
		return -1;
	return get_fixed(&in, out, QUEUE_ID_LEN + 1);
}

/* The store's view of a message. */
static void
store_view(
    const struct queue_msg *m, struct store_msg *sm, struct store_rcpt *rcpts)
{
	size_t i;

	memset(sm, 0, sizeof(*sm));
	str_copy(sm->qid, m->qid, sizeof(sm->qid));
	sm->envid = m->envid;
	str_copy(
	    sm->certifier, m->mtrk ? m->certifier : "", sizeof(sm->certifier));
	sm->sender = m->sender;
	sm->reporting_mta = m->reporting_mta;
	sm->arrival = m->arrival;
	sm->expires = m->expires;
	sm->queued = 1;
	sm->nrcpt = m->nrcpt;
	sm->rcpts = rcpts;
	for (i = 0; i < m->nrcpt; i++)
		rcpts[i] = m->rcpts[i].track;
}

/* Applies one record to the store, inside the caller's transaction.
 * The same code serves live commits and startup replay. */
static int
store_apply(struct queue *q, uint8_t type, const void *p, size_t n)
{
	struct queue_msg m;
	struct store_msg sm;
	struct store_rcpt *rcpts;
	char qid[QUEUE_ID_LEN + 1];
	struct tlv_in in;
	int rc = -1;

	switch (type) {
	case REC_MSG:
		if (n < 4)
			return -1;
		{
			const unsigned char *b = p;
			uint32_t envlen = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
			    (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;

			if (envlen > n - 4 ||
			    queue_msg_decode(b + 4, envlen, &m) == -1)
				return -1;
		}
		if ((rcpts = calloc(m.nrcpt, sizeof(*rcpts))) != NULL) {
			store_view(&m, &sm, rcpts);
			rc = q->be->put_msg(q->store, &sm);
			free(rcpts);
		}
		queue_msg_free_fields(&m);
		return rc;
	case REC_STATE:
		/* Recipients' state only; put_rcpt per recipient. */
		if (record_qid(p, n, qid) == -1)
			return -1;
		in = (struct tlv_in){ p, (const unsigned char *)p + n, 0, NULL,
			0 };
		{
			struct queue_rcpt r;
			int have = 0, frc;
			uint64_t v;

			memset(&r, 0, sizeof(r));
			rc = 0;
			while (rc == 0 && (frc = tlv_next(&in)) == 1) {
				if (in.tag == T_RCPT) {
					if (have)
						rc = q->be->put_rcpt(
						    q->store, qid, &r.track);
					rcpt_clear(&r);
					if (get_u64(&in, &v) == -1 ||
					    v >= QUEUE_RCPT_MAX)
						rc = -1;
					r.track.idx = (uint32_t)v;
					have = 1;
				} else if (have && rcpt_field(&in, &r) != 0)
					rc = -1;
			}
			if (frc == -1)
				rc = -1;
			if (rc == 0 && have)
				rc = q->be->put_rcpt(q->store, qid, &r.track);
			rcpt_clear(&r);
		}
		return rc;
	case REC_DONE:
		if (record_qid(p, n, qid) == -1)
			return -1;
		return q->be->set_done(q->store, qid);
	default:
		return -1;
	}
}

/* --- live messages (loop thread) ----------------------------------- */

static size_t
qid_hash(const char *qid, size_t size)
{
	size_t h = 5381;

	for (; *qid != '\0'; qid++)
		h = h * 33 + (unsigned char)*qid;
	return h & (size - 1);
}

static struct qentry **
live_find(struct queue *q, const char *qid)
{
	struct qentry **e = &q->tab[qid_hash(qid, q->tabsize)];

	while (*e != NULL && strcmp((*e)->m->qid, qid) != 0)
		e = &(*e)->next;
	return e;
}

static void
segcount_add(struct queue *q, uint64_t seg, int delta)
{
	size_t i;

	if (seg < q->oldest)
		return;
	i = (size_t)(seg - q->oldest);
	if (i >= q->nsegcount) {
		size_t n = i + 16, k;
		size_t *p = realloc(q->segcount, n * sizeof(*p));

		if (p == NULL)
			return; /* only delays reclaiming space */
		for (k = q->nsegcount; k < n; k++)
			p[k] = 0;
		q->segcount = p;
		q->nsegcount = n;
	}
	if (delta < 0 && q->segcount[i] == 0)
		return;
	q->segcount[i] = (size_t)((long)q->segcount[i] + delta);
	if (seg > q->newest)
		q->newest = seg;
}

static int
live_add(struct queue *q, struct queue_msg *m)
{
	struct qentry **e, *n;

	if (q->count + 1 > q->tabsize / 2) {
		size_t nsize = q->tabsize ? q->tabsize * 2 : 1024, i;
		struct qentry **nt = calloc(nsize, sizeof(*nt));

		if (nt == NULL)
			return -1;
		for (i = 0; i < q->tabsize; i++)
			while (q->tab[i] != NULL) {
				struct qentry *x = q->tab[i];

				q->tab[i] = x->next;
				x->next = nt[qid_hash(x->m->qid, nsize)];
				nt[qid_hash(x->m->qid, nsize)] = x;
			}
		free(q->tab);
		q->tab = nt;
		q->tabsize = nsize;
	}
	e = live_find(q, m->qid);
	if (*e != NULL) {
		/* A relocated copy replaces the older record. */
		segcount_add(q, (*e)->m->body.seg, -1);
		queue_msg_free((*e)->m);
		(*e)->m = m;
	} else {
		if ((n = calloc(1, sizeof(*n))) == NULL)
			return -1;
		n->m = m;
		*e = n;
		q->count++;
	}
	segcount_add(q, m->body.seg, 1);
	return 0;
}

static struct queue_msg *
live_remove(struct queue *q, const char *qid)
{
	struct qentry **e, *x;
	struct queue_msg *m;

	if (q->tabsize == 0 || *(e = live_find(q, qid)) == NULL)
		return NULL;
	x = *e;
	*e = x->next;
	m = x->m;
	free(x);
	q->count--;
	segcount_add(q, m->body.seg, -1);
	return m;
}

/* Sets m->body from the position of its MSG record. */
static void
body_pos(struct queue_msg *m, const struct journal_pos *rec, uint32_t envlen)
{
	m->body.seg = rec->seg;
	m->body.off = rec->off + 4 + envlen;
	m->body.len = rec->len - 4 - envlen;
}

/* --- the writer thread --------------------------------------------- */

static void
req_free(struct qreq *r)
{
	buf_reset(&r->head);
	free(r);
}

/* Keeps a copy of a record whose store update failed, to retry. */
static void
retry_keep(struct queue *q, uint8_t type, const struct buf *head)
{
	struct buf *p;

	if (q->nretry >= QUEUE_RETRY_MAX)
		return; /* the store catches up at the next start */
	if ((p = realloc(q->retry, (q->nretry + 1) * sizeof(*p))) == NULL)
		return;
	q->retry = p;
	buf_init(&p[q->nretry], (size_t)JOURNAL_RECORD_MAX);
	if (buf_addc(&p[q->nretry], type) == -1 ||
	    buf_add(&p[q->nretry], head->data, head->len) == -1) {
		buf_reset(&p[q->nretry]);
		return;
	}
	q->nretry++;
}

/* Applies a batch to the store in one transaction (failed updates from
 * earlier batches first, to keep the order). */
static void
store_batch(struct queue *q, struct qreq *batch)
{
	struct qreq *r;
	size_t i;
	int ok;

	ok = q->be->begin(q->store) == 0;
	for (i = 0; ok && i < q->nretry; i++)
		ok = store_apply(q, (uint8_t)q->retry[i].data[0],
		         q->retry[i].data + 1, q->retry[i].len - 1) == 0;
	for (r = batch; ok && r != NULL; r = r->next)
		if (r->type != 0 && r->rc == 0)
			ok = store_apply(
			         q, r->type, r->head.data, r->head.len) == 0;
	if (ok && q->be->commit(q->store) == 0) {
		for (i = 0; i < q->nretry; i++)
			buf_reset(&q->retry[i]);
		q->nretry = 0;
		__atomic_store_n(&q->store_failed, 0, __ATOMIC_RELAXED);
		return;
	}
	q->be->rollback(q->store);
	__atomic_store_n(&q->store_failed, 1, __ATOMIC_RELAXED);
	for (r = batch; r != NULL; r = r->next)
		if (r->type != 0 && r->rc == 0)
			retry_keep(q, r->type, &r->head);
}

static void
write_one(struct queue *q, struct qreq *r, struct buf *scratch)
{
	struct iovec iov[QUEUE_IOV_MAX + 1];
	int n = 0, i;

	iov[n].iov_base = r->head.data;
	iov[n++].iov_len = r->head.len;
	if (r->kind == REQ_RELOCATE) {
		void *p;

		buf_clear(scratch);
		if ((p = buf_append_space(scratch, r->from.len)) == NULL ||
		    journal_read(q->j, &r->from, p) == -1) {
			r->rc = -1;
			r->err = errno;
			return;
		}
		iov[n].iov_base = p;
		iov[n++].iov_len = r->from.len;
	}
	for (i = 0; i < r->nbody; i++)
		iov[n++] = r->body[i];
	if (journal_append(q->j, r->type, iov, n, &r->pos) == -1) {
		r->rc = -1;
		r->err = errno;
	}
}

static int
batch_dropped(const struct qreq *batch)
{
	for (; batch != NULL; batch = batch->next)
		if (batch->kind == REQ_DROP)
			return batch->rc == 0;
	return 0;
}

static void *
writer_main(void *arg)
{
	struct queue *q = arg;
	struct buf scratch;

	buf_init(&scratch, (size_t)JOURNAL_RECORD_MAX);
	for (;;) {
		struct qreq *batch, *r;
		int appended = 0, drop = 0;

		pthread_mutex_lock(&q->mtx);
		while ((q->pending == NULL || q->hold) && !q->stopping) {
			struct timespec ts;

			if (q->hold ||
			    !__atomic_load_n(
			        &q->store_failed, __ATOMIC_RELAXED)) {
				pthread_cond_wait(&q->cond, &q->mtx);
				continue;
			}
			/* The store failed: retry its kept updates even
			 * with no traffic (MTRK mail gets 455 meanwhile, so
			 * none may come to do it). */
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += QUEUE_STORE_RETRY;
			if (pthread_cond_timedwait(&q->cond, &q->mtx, &ts) ==
			        ETIMEDOUT &&
			    q->pending == NULL)
				break;
		}
		batch = q->pending;
		q->pending = NULL;
		q->pending_tail = &q->pending;
		pthread_mutex_unlock(&q->mtx);
		if (batch == NULL && !q->stopping) {
			store_batch(q, NULL); /* the kept updates only */
			continue;
		}
		if (batch == NULL)
			break; /* stopping, and nothing left */

		for (r = batch; r != NULL; r = r->next) {
			if (r->kind == REQ_DROP) {
				drop = 1;
				continue;
			}
			if (r->kind == REQ_PURGE)
				continue;
			write_one(q, r, &scratch);
			appended += r->rc == 0;
		}
		/* Group commit: one fdatasync for the whole batch. */
		if (appended > 0 && journal_sync(q->j) == -1) {
			int e = errno;

			for (r = batch; r != NULL; r = r->next)
				if (r->kind != REQ_DROP &&
				    r->kind != REQ_PURGE && r->rc == 0) {
					r->rc = -1;
					r->err = e;
				}
		}
		store_batch(q, batch);
		if (drop) {
			/* Everything that depends on the oldest segment
			 * is in the store: make the store durable, then
			 * let the segment go. */
			int rc = -1, e = EIO;

			if (q->be->sync(q->store) == 0) {
				rc = journal_drop_oldest(q->j);
				e = errno;
			}
			for (r = batch; r != NULL; r = r->next)
				if (r->kind == REQ_DROP) {
					r->rc = rc;
					r->err = rc == 0 ? 0 : e;
				}
		}
		for (r = batch; r != NULL; r = r->next)
			if (r->kind == REQ_PURGE &&
			    q->be->purge(q->store, r->now, &r->purged) == -1) {
				r->rc = -1;
				r->err = EIO;
			}
		pthread_mutex_lock(&q->mtx);
		q->stats.records += (uint64_t)appended;
		q->stats.syncs += appended > 0;
		if (drop && batch_dropped(batch))
			q->stats.dropped_segments++;
		for (r = batch; r != NULL; r = r->next)
			q->stats.relocated +=
			    r->kind == REQ_RELOCATE && r->rc == 0;
		*q->done_tail = batch;
		for (r = batch; r->next != NULL; r = r->next)
			;
		q->done_tail = &r->next;
		pthread_mutex_unlock(&q->mtx);
		{
			uint64_t one = 1;

			/* Cannot fail short of a broken fd: the counter
			 * only saturates after 2^64-2 wake-ups. */
			if (write(q->efd, &one, sizeof(one)) != sizeof(one))
				abort();
		}
	}
	buf_reset(&scratch);
	return NULL;
}

static int
enqueue(struct queue *q, struct qreq *r)
{
	pthread_mutex_lock(&q->mtx);
	if (q->stopping || !q->started) {
		pthread_mutex_unlock(&q->mtx);
		req_free(r);
		errno = ESHUTDOWN;
		return -1;
	}
	r->next = NULL;
	*q->pending_tail = r;
	q->pending_tail = &r->next;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->mtx);
	return 0;
}

static struct qreq *
req_new(enum req_kind kind, uint8_t type, struct queue_msg *m,
    queue_done_cb done, void *arg)
{
	struct qreq *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->kind = kind;
	r->type = type;
	r->m = m;
	r->done = done;
	r->arg = arg;
	buf_init(&r->head, (size_t)JOURNAL_RECORD_MAX);
	return r;
}

/* Builds a MSG record head: u32 envelope length, envelope. */
static int
msg_head(struct qreq *r, const struct queue_msg *m)
{
	unsigned char len[4] = { 0 };
	size_t envlen;

	if (buf_add(&r->head, len, 4) == -1 ||
	    queue_msg_encode(m, &r->head) == -1)
		return -1;
	envlen = r->head.len - 4;
	r->envlen = (uint32_t)envlen;
	r->head.data[0] = (char)(envlen & 0xff);
	r->head.data[1] = (char)((envlen >> 8) & 0xff);
	r->head.data[2] = (char)((envlen >> 16) & 0xff);
	r->head.data[3] = (char)((envlen >> 24) & 0xff);
	return 0;
}

static void reclaim(struct queue *q);

/* Completions, on the loop thread. */
static void
on_done(evutil_socket_t fd, short ev, void *arg)
{
	struct queue *q = arg;
	struct qreq *list, *r, *next;

	(void)ev;
	if (fd != -1) {
		uint64_t n;

		/* Resets the counter; EAGAIN means already reset. */
		(void)!read(fd, &n, sizeof(n));
	}
	pthread_mutex_lock(&q->mtx);
	list = q->done;
	q->done = NULL;
	q->done_tail = &q->done;
	pthread_mutex_unlock(&q->mtx);
	for (r = list; r != NULL; r = next) {
		next = r->next;
		if (r->rc == 0 && r->pos.seg > q->newest)
			q->newest = r->pos.seg;
		switch (r->kind) {
		case REQ_SUBMIT:
			if (r->rc == 0) {
				body_pos(r->m, &r->pos, r->envlen);
				if (live_add(q, r->m) == -1) {
					r->rc = -1;
					r->err = ENOMEM;
				}
			}
			if (r->done)
				r->done(r->arg, r->rc, r->err);
			break;
		case REQ_PURGE:
			*r->purged_out = r->purged;
			/* FALLTHROUGH */
		case REQ_UPDATE:
			if (r->done)
				r->done(r->arg, r->rc, r->err);
			break;
		case REQ_FINISH:
			if (r->done)
				r->done(r->arg, r->rc, r->err);
			if (r->rc == 0)
				queue_msg_free(live_remove(q, r->m->qid));
			break;
		case REQ_RELOCATE: {
			struct qentry **e = live_find(q, r->m->qid);

			if (*e != NULL) {
				(*e)->relocating = 0;
				if (r->rc == 0) {
					segcount_add(q, r->m->body.seg, -1);
					body_pos(r->m, &r->pos, r->envlen);
					segcount_add(q, r->m->body.seg, 1);
				}
			}
			break;
		}
		case REQ_DROP:
			q->drop_inflight = 0;
			if (r->rc == 0) {
				q->oldest++;
				if (q->nsegcount > 0) {
					memmove(q->segcount, q->segcount + 1,
					    (q->nsegcount - 1) *
					        sizeof(*q->segcount));
					q->segcount[--q->nsegcount] = 0;
				}
			}
			break;
		}
		req_free(r);
	}
	reclaim(q);
}

/* Frees disk: drops the oldest segment once nothing lives in it, and
 * moves the last messages out of it when the journal grows long. */
static void
reclaim(struct queue *q)
{
	struct qreq *r;
	size_t i;

	if (q->drop_inflight || q->oldest >= q->newest)
		return;
	if (q->nsegcount == 0 || q->segcount[0] == 0) {
		if ((r = req_new(REQ_DROP, 0, NULL, NULL, NULL)) == NULL)
			return;
		if (enqueue(q, r) == 0)
			q->drop_inflight = 1;
		return;
	}
	if (q->newest - q->oldest < QUEUE_RELOCATE_SPAN)
		return;
	for (i = 0; i < q->tabsize; i++) {
		struct qentry *e;

		for (e = q->tab[i]; e != NULL; e = e->next) {
			if (e->relocating || e->m->body.seg != q->oldest)
				continue;
			if ((r = req_new(REQ_RELOCATE, REC_MSG, e->m, NULL,
			         NULL)) == NULL)
				return;
			if (msg_head(r, e->m) == -1) {
				req_free(r);
				continue;
			}
			r->from = e->m->body;
			if (enqueue(q, r) == 0)
				e->relocating = 1;
		}
	}
}

/* --- API ----------------------------------------------------------- */

void
queue_new_id(char out[QUEUE_ID_LEN + 1])
{
	static const char b62[] =
	    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	struct timeval tv;
	unsigned char rnd[5];
	uint64_t us;
	int i;

	gettimeofday(&tv, NULL);
	us = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
	/* 11 base62 digits of the clock: ids sort by arrival */
	for (i = 10; i >= 0; i--) {
		out[i] = b62[us % 62];
		us /= 62;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd)); /* the clock still differs */
	for (i = 0; i < 5; i++)
		out[11 + i] = b62[rnd[i] % 62];
	out[QUEUE_ID_LEN] = '\0';
}

struct queue *
queue_open(struct event_base *base, const char *data_dir, struct store *store,
    const struct store_backend *backend, uint64_t segment_size, char *err,
    size_t errsize)
{
	struct queue *q;
	char path[4096];

	if ((q = calloc(1, sizeof(*q))) == NULL) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	q->base = base;
	q->store = store;
	q->be = backend;
	q->pending_tail = &q->pending;
	q->done_tail = &q->done;
	q->efd = -1;
	pthread_mutex_init(&q->mtx, NULL);
	pthread_cond_init(&q->cond, NULL);
	snprintf(path, sizeof(path), "%s/queue", data_dir);
	if ((q->dir = strdup(path)) == NULL ||
	    (q->j = journal_open(path, segment_size, err, errsize)) == NULL ||
	    (q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (q->ev_done = event_new(
	         base, q->efd, EV_READ | EV_PERSIST, on_done, q)) == NULL ||
	    event_add(q->ev_done, NULL) == -1) {
		if (q->dir == NULL || q->efd == -1 || q->ev_done == NULL)
			snprintf(err, errsize, "queue: %s", strerror(errno));
		queue_free(q);
		return NULL;
	}
	q->oldest = q->newest = journal_oldest(q->j);
	return q;
}

struct replay {
	struct queue *q;
	size_t applied;
	size_t bad;
};

static int
replay_record(void *arg, uint8_t type, const void *p, uint32_t len,
    const struct journal_pos *pos)
{
	struct replay *rp = arg;
	struct queue *q = rp->q;
	char qid[QUEUE_ID_LEN + 1];
	struct queue_msg *m;
	struct qentry **e;

	rp->applied++;
	if (q->be != NULL) { /* NULL: queue_scan(), no store */
		if (rp->applied % QUEUE_REPLAY_BATCH == 0 &&
		    (q->be->commit(q->store) == -1 ||
		        q->be->begin(q->store) == -1))
			return -1;
		if (store_apply(q, type, p, len) == -1)
			rp->bad++;
	}
	switch (type) {
	case REC_MSG: {
		const unsigned char *b = p;
		uint32_t envlen;

		if (len < 4)
			break;
		envlen = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
		    (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
		if (envlen > len - 4 || (m = calloc(1, sizeof(*m))) == NULL)
			break;
		if (queue_msg_decode(b + 4, envlen, m) == -1) {
			free(m);
			break;
		}
		body_pos(m, pos, envlen);
		if (live_add(q, m) == -1)
			queue_msg_free(m);
		break;
	}
	case REC_STATE:
		if (record_qid(p, len, qid) == 0 && q->tabsize > 0 &&
		    *(e = live_find(q, qid)) != NULL &&
		    state_apply(p, len, (*e)->m) == -1)
			rp->bad++;
		break;
	case REC_DONE:
		if (record_qid(p, len, qid) == 0)
			queue_msg_free(live_remove(q, qid));
		break;
	default:
		rp->bad++;
	}
	return 0;
}

int
queue_recover(struct queue *q, void (*fn)(void *, struct queue_msg *),
    void *arg, char *err, size_t errsize)
{
	struct replay rp = { q, 0, 0 };
	uint64_t cut;
	size_t i;

	if (q->be->begin(q->store) == -1) {
		snprintf(err, errsize, "store: %s", q->be->error(q->store));
		return -1;
	}
	if (journal_replay(q->j, replay_record, &rp, &cut) == -1) {
		q->be->rollback(q->store);
		snprintf(err, errsize, "queue replay: %s", strerror(errno));
		return -1;
	}
	if (q->be->commit(q->store) == -1) {
		snprintf(err, errsize, "store: %s", q->be->error(q->store));
		return -1;
	}
	q->newest = journal_newest(q->j);
	if (rp.bad > 0 || cut > 0)
		snprintf(err, errsize,
		    "queue replay: %zu records, %zu "
		    "unreadable, %" PRIu64 " torn tails cut",
		    rp.applied, rp.bad, cut);
	else
		err[0] = '\0';
	if (fn != NULL)
		for (i = 0; i < q->tabsize; i++) {
			struct qentry *e;

			for (e = q->tab[i]; e != NULL; e = e->next)
				fn(arg, e->m);
		}
	if (pthread_create(&q->thr, NULL, writer_main, q) != 0) {
		snprintf(err, errsize, "queue: cannot start the writer");
		return -1;
	}
	q->started = 1;
	return (int)q->count;
}

int
queue_submit(struct queue *q, struct queue_msg *m, const struct iovec *body,
    int n, queue_done_cb done, void *arg)
{
	struct qreq *r;
	uint64_t size = 0;
	int i;

	if (n < 0 || n > QUEUE_IOV_MAX) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < n; i++)
		size += body[i].iov_len;
	m->size = size;
	if ((r = req_new(REQ_SUBMIT, REC_MSG, m, done, arg)) == NULL)
		return -1;
	if (msg_head(r, m) == -1) {
		req_free(r);
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < n; i++)
		r->body[i] = body[i];
	r->nbody = n;
	return enqueue(q, r);
}

int
queue_update(struct queue *q, struct queue_msg *m, const uint32_t *idx,
    size_t n, queue_done_cb done, void *arg)
{
	struct qreq *r = req_new(REQ_UPDATE, REC_STATE, m, done, arg);

	if (r == NULL)
		return -1;
	if (state_encode(m, idx, n, &r->head) == -1) {
		req_free(r);
		errno = EINVAL;
		return -1;
	}
	return enqueue(q, r);
}

int
queue_finish(
    struct queue *q, struct queue_msg *m, queue_done_cb done, void *arg)
{
	struct qreq *r = req_new(REQ_FINISH, REC_DONE, m, done, arg);

	if (r == NULL)
		return -1;
	if (tlv_str(&r->head, T_QID, m->qid) == -1) {
		req_free(r);
		return -1;
	}
	return enqueue(q, r);
}

int
queue_purge(
    struct queue *q, time_t now, size_t *n_out, queue_done_cb done, void *arg)
{
	struct qreq *r = req_new(REQ_PURGE, 0, NULL, done, arg);

	if (r == NULL)
		return -1;
	r->now = now;
	r->purged_out = n_out;
	*n_out = 0;
	return enqueue(q, r);
}

int
queue_read_body(struct queue *q, const struct queue_msg *m, struct buf *out)
{
	size_t start = out->len;
	void *p;

	if ((p = buf_append_space(out, m->body.len)) == NULL)
		return -1;
	if (journal_read(q->j, &m->body, p) == -1) {
		int e = errno;

		buf_truncate(out, start);
		errno = e;
		return -1;
	}
	return 0;
}

int
queue_scan(const char *data_dir, void (*fn)(void *, struct queue_msg *),
    void *arg, char *err, size_t errsize)
{
	struct queue q;
	struct replay rp = { &q, 0, 0 };
	char path[4096];
	uint64_t cut;
	size_t i;
	int rc;

	memset(&q, 0, sizeof(q));
	snprintf(path, sizeof(path), "%s/queue", data_dir);
	if (access(path, F_OK) == -1 && errno == ENOENT)
		return 0; /* nothing was ever queued here */
	if ((q.j = journal_open_readonly(path, err, errsize)) == NULL)
		return -1;
	if (journal_replay(q.j, replay_record, &rp, &cut) == -1) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		rc = -1;
	} else {
		rc = (int)q.count;
		for (i = 0; i < q.tabsize; i++) {
			struct qentry *e;

			for (e = q.tab[i]; e != NULL; e = e->next)
				fn(arg, e->m);
		}
	}
	for (i = 0; i < q.tabsize; i++)
		while (q.tab[i] != NULL) {
			struct qentry *e = q.tab[i];

			q.tab[i] = e->next;
			queue_msg_free(e->m);
			free(e);
		}
	free(q.tab);
	free(q.segcount);
	journal_free(q.j);
	return rc;
}

size_t
queue_count(const struct queue *q)
{
	return q->count;
}

void
queue_foreach(
    struct queue *q, void (*fn)(void *, struct queue_msg *), void *arg)
{
	size_t i;

	for (i = 0; i < q->tabsize; i++) {
		struct qentry *e, *next;

		for (e = q->tab[i]; e != NULL; e = next) {
			next = e->next;
			fn(arg, e->m);
		}
	}
}

int
queue_store_failed(const struct queue *q)
{
	return __atomic_load_n(&q->store_failed, __ATOMIC_RELAXED);
}

void
queue_hold(struct queue *q, int hold)
{
	pthread_mutex_lock(&q->mtx);
	q->hold = hold;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->mtx);
}

void
queue_stats(struct queue *q, struct queue_stats *out)
{
	pthread_mutex_lock(&q->mtx);
	*out = q->stats;
	pthread_mutex_unlock(&q->mtx);
}

void
queue_stop(struct queue *q)
{
	if (!q->started)
		return;
	pthread_mutex_lock(&q->mtx);
	q->stopping = 1;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->mtx);
	pthread_join(q->thr, NULL);
	q->started = 0;
	on_done(-1, 0, q); /* the last callbacks */
}

void
queue_free(struct queue *q)
{
	size_t i;

	if (q == NULL)
		return;
	for (i = 0; i < q->tabsize; i++)
		while (q->tab[i] != NULL) {
			struct qentry *e = q->tab[i];

			q->tab[i] = e->next;
			queue_msg_free(e->m);
			free(e);
		}
	for (i = 0; i < q->nretry; i++)
		buf_reset(&q->retry[i]);
	free(q->retry);
	free(q->tab);
	free(q->segcount);
	if (q->ev_done != NULL)
		event_free(q->ev_done);
	if (q->efd != -1)
		close(q->efd);
	journal_free(q->j);
	pthread_mutex_destroy(&q->mtx);
	pthread_cond_destroy(&q->cond);
	free(q->dir);
	free(q);
}
