/*
 * queue_record: the queue's record codec (see queue_internal.h).  An
 * envelope is a list of TLV fields (u8 tag, u32 length, value); integers
 * are u64 little-endian.  MSG records are
 *
 *	u32 envlen | envelope | u32 nchunk | nchunk * (u64 seg, u64 off,
 *	u32 len) | u32 head | inline body octets
 *
 * (REC_MSG_V1, written by earlier versions: u32 envlen | envelope |
 * body).  STATE records are the qid and schedule, then per recipient its
 * index and state; DONE records the qid alone.  Every decoder bounds what
 * it reads: records are parsed back at startup like any input.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/buf.h"
#include "msgtrk/str.h"
#include "queue/queue_internal.h"

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
	T_HELD, /* operator hold (msgtrk queue hold) */
	/* Submission (automatic tracking): the login, the secret msgtrkd
	 * made, the Subject for the sender's list. */
	T_LOGIN,
	T_SECRET,
	T_SUBJECT,
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

#define EXTENT_LEN 20 /* u64 seg, u64 off, u32 len */

static void queue_msg_free_fields(struct queue_msg *m);

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
	    tlv_u64(b, T_DELAY_WARNED, m->delay_warned) == -1 ||
	    (m->held && tlv_u64(b, T_HELD, 1) == -1))
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
	    tlv_str(b, T_LOGIN, m->login) == -1 ||
	    tlv_str(b, T_SECRET, m->secret) == -1 ||
	    tlv_str(b, T_SUBJECT, m->subject) == -1 ||
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
	case T_HELD:
		if (get_u64(in, &v) == -1)
			return -1;
		if (in->tag == T_NEXT_ATTEMPT)
			m->next_attempt = (time_t)v;
		else if (in->tag == T_ATTEMPTS)
			m->attempts = (uint32_t)v;
		else if (in->tag == T_HELD)
			m->held = v != 0;
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
		case T_LOGIN:
			rc = get_str(&in, &m->login);
			break;
		case T_SECRET:
			rc = get_str(&in, &m->secret);
			break;
		case T_SUBJECT:
			rc = get_str(&in, &m->subject);
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
	free(m->body.chunk);
	free(m->sender);
	free(m->envid_raw);
	free(m->envid);
	free(m->reporting_mta);
	free(m->helo);
	free(m->client);
	free(m->login);
	if (m->secret != NULL) {
		explicit_bzero(m->secret, strlen(m->secret));
		free(m->secret);
	}
	free(m->subject);
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

static int
put_u32(struct buf *b, uint32_t v)
{
	unsigned char p[4];

	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
	return buf_add(b, p, 4);
}

static uint32_t
get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
get_le64(const unsigned char *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

int
record_msg_head(const struct queue_msg *m, struct buf *out)
{
	size_t at = out->len, envlen;

	if (put_u32(out, 0) == -1 || queue_msg_encode(m, out) == -1)
		return -1;
	envlen = out->len - at - 4;
	out->data[at] = (char)(envlen & 0xff);
	out->data[at + 1] = (char)((envlen >> 8) & 0xff);
	out->data[at + 2] = (char)((envlen >> 16) & 0xff);
	out->data[at + 3] = (char)((envlen >> 24) & 0xff);
	return 0;
}

int
record_msg_extents(struct buf *out, const struct journal_pos *chunk,
    uint32_t nchunk, uint32_t head)
{
	uint32_t i;

	if (nchunk > QUEUE_CHUNKS_MAX || put_u32(out, nchunk) == -1)
		return -1;
	for (i = 0; i < nchunk; i++) {
		if (put_u32(out, (uint32_t)chunk[i].seg) == -1 ||
		    put_u32(out, (uint32_t)(chunk[i].seg >> 32)) == -1 ||
		    put_u32(out, (uint32_t)chunk[i].off) == -1 ||
		    put_u32(out, (uint32_t)(chunk[i].off >> 32)) == -1 ||
		    put_u32(out, chunk[i].len) == -1)
			return -1;
	}
	return put_u32(out, head);
}

/* The envelope of a MSG record: its bytes and length. */
static int
msg_envelope(const unsigned char *p, size_t n, const unsigned char **env,
    uint32_t *envlen)
{
	if (n < 4)
		return -1;
	*envlen = get_le32(p);
	if (*envlen > n - 4)
		return -1;
	*env = p + 4;
	return 0;
}

int
record_msg_decode(const void *payload, size_t n, const struct journal_pos *pos,
    uint8_t type, struct queue_msg *m)
{
	const unsigned char *p = payload, *env, *q;
	uint32_t envlen, nchunk, i, head;
	size_t left, at;
	uint64_t size;

	if (msg_envelope(p, n, &env, &envlen) == -1 ||
	    queue_msg_decode(env, envlen, m) == -1)
		return -1;
	at = 4 + (size_t)envlen;
	q = p + at;
	left = n - at;
	nchunk = 0;
	head = 0;
	if (type == REC_MSG) {
		if (left < 4)
			goto bad;
		nchunk = get_le32(q);
		if (nchunk > QUEUE_CHUNKS_MAX ||
		    left - 4 < (size_t)nchunk * EXTENT_LEN + 4)
			goto bad;
		q += 4;
		if (nchunk > 0 &&
		    (m->body.chunk = calloc(nchunk, sizeof(*m->body.chunk))) ==
		        NULL)
			goto bad;
		for (i = 0; i < nchunk; i++, q += EXTENT_LEN) {
			m->body.chunk[i].seg = get_le64(q);
			m->body.chunk[i].off = get_le64(q + 8);
			m->body.chunk[i].len = get_le32(q + 16);
			if (m->body.chunk[i].len > JOURNAL_RECORD_MAX)
				goto bad;
		}
		head = get_le32(q);
		q += 4;
		at = (size_t)(q - p);
		left = n - at;
		if (head > left)
			goto bad;
	} else if (type != REC_MSG_V1)
		goto bad;
	m->body.nchunk = nchunk;
	m->body.head = head;
	m->body.inl.seg = pos->seg;
	m->body.inl.off = pos->off + at;
	m->body.inl.len = (uint32_t)left;
	size = queue_body_size(&m->body);
	if (size > QUEUE_MESSAGE_MAX + QUEUE_STRING_MAX)
		goto bad;
	m->size = size;
	return 0;
bad:
	queue_msg_free_fields(m);
	return -1;
}

uint64_t
queue_body_size(const struct queue_body *b)
{
	uint64_t n = b->inl.len;
	uint32_t i;

	for (i = 0; i < b->nchunk; i++)
		n += b->chunk[i].len;
	return n;
}

int
record_state(const char *qid, const struct queue_update *u, struct buf *out)
{
	size_t i;

	if (tlv_str(out, T_QID, qid) == -1 ||
	    tlv_u64(out, T_NEXT_ATTEMPT, (uint64_t)u->next_attempt) == -1 ||
	    tlv_u64(out, T_ATTEMPTS, u->attempts) == -1 ||
	    tlv_u64(out, T_DELAY_WARNED, u->delay_warned) == -1 ||
	    tlv_u64(out, T_HELD, u->held) == -1)
		return -1;
	for (i = 0; i < u->n; i++) {
		struct queue_rcpt r;

		memset(&r, 0, sizeof(r));
		r.final = u->r[i].final;
		r.dsn_sent = u->r[i].dsn_sent;
		r.track = u->r[i].track;
		if (r.track.idx >= QUEUE_RCPT_MAX ||
		    rcpt_state_encode(&r, out) == -1)
			return -1;
	}
	return 0;
}

int
record_done(const char *qid, struct buf *out)
{
	return tlv_str(out, T_QID, qid);
}

static int
dup_opt(const char *s, char **out)
{
	*out = NULL;
	if (s == NULL)
		return 0;
	return (*out = strdup(s)) == NULL ? -1 : 0;
}

int
record_update_apply(struct queue_msg *m, const struct queue_update *u)
{
	struct store_rcpt *t;
	size_t i;
	int rc = 0;

	if ((t = calloc(u->n + 1, sizeof(*t))) == NULL)
		return -1;
	/* Every allocation first: m changes all at once or not at all. */
	for (i = 0; i < u->n && rc == 0; i++) {
		const struct store_rcpt *s = &u->r[i].track;

		if (s->idx >= m->nrcpt) {
			rc = -1;
			break;
		}
		t[i] = *s;
		if (dup_opt(s->orcpt, &t[i].orcpt) == -1 ||
		    dup_opt(s->final_rcpt, &t[i].final_rcpt) == -1 ||
		    dup_opt(s->remote_mta, &t[i].remote_mta) == -1 ||
		    dup_opt(s->reply, &t[i].reply) == -1)
			rc = -1;
	}
	if (rc == 0) {
		for (i = 0; i < u->n; i++) {
			struct queue_rcpt *r = &m->rcpts[t[i].idx];

			free(r->track.orcpt);
			free(r->track.final_rcpt);
			free(r->track.remote_mta);
			free(r->track.reply);
			r->track = t[i];
			r->final = u->r[i].final;
			r->dsn_sent = u->r[i].dsn_sent;
		}
		m->next_attempt = u->next_attempt;
		m->attempts = u->attempts;
		m->delay_warned = u->delay_warned;
		m->held = u->held;
	} else {
		for (i = 0; i < u->n; i++) {
			free(t[i].orcpt);
			free(t[i].final_rcpt);
			free(t[i].remote_mta);
			free(t[i].reply);
		}
	}
	free(t);
	return rc;
}

/* Applies a STATE record to m (whose qid it must carry). */
int
record_state_apply(const void *p, size_t n, struct queue_msg *m)
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
int
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
	/* The kept secret goes with its login only (store.h). */
	if (m->login != NULL && m->secret != NULL) {
		sm->login = m->login;
		sm->secret = m->secret;
		sm->subject = m->subject;
	}
	sm->nrcpt = m->nrcpt;
	sm->rcpts = rcpts;
	for (i = 0; i < m->nrcpt; i++)
		rcpts[i] = m->rcpts[i].track;
}

/* Applies one record to the store, inside the caller's transaction (the
 * store is only ever written from the journal, by the applier).  Returns
 * 0, -1 if the store failed, -2 if the record does not decode (skip it). */
int
record_store_apply(const struct store_backend *be, struct store *st,
    uint8_t type, const void *p, size_t n)
{
	struct queue_msg m;
	struct store_msg sm;
	struct store_rcpt *rcpts;
	char qid[QUEUE_ID_LEN + 1];
	const unsigned char *env;
	uint32_t envlen;
	struct tlv_in in;
	int rc = -1;

	switch (type) {
	case REC_MSG:
	case REC_MSG_V1:
		if (msg_envelope(p, n, &env, &envlen) == -1 ||
		    queue_msg_decode(env, envlen, &m) == -1)
			return -2;
		if ((rcpts = calloc(m.nrcpt, sizeof(*rcpts))) != NULL) {
			store_view(&m, &sm, rcpts);
			rc = be->put_msg(st, &sm);
			free(rcpts);
		}
		queue_msg_free_fields(&m);
		return rc;
	case REC_STATE:
		/* Recipients' state only; put_rcpt per recipient. */
		if (record_qid(p, n, qid) == -1)
			return -2;
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
						rc = be->put_rcpt(
						    st, qid, &r.track);
					rcpt_clear(&r);
					if (get_u64(&in, &v) == -1 ||
					    v >= QUEUE_RCPT_MAX)
						rc = -2;
					r.track.idx = (uint32_t)v;
					have = 1;
				} else if (have && rcpt_field(&in, &r) != 0)
					rc = -2;
			}
			if (frc == -1)
				rc = -2;
			if (rc == 0 && have)
				rc = be->put_rcpt(st, qid, &r.track);
			rcpt_clear(&r);
		}
		return rc;
	case REC_DONE:
		if (record_qid(p, n, qid) == -1)
			return -2;
		return be->set_done(st, qid);
	case REC_CHUNK:
		return 0; /* bodies are not the store's */
	default:
		return -2;
	}
}

void
record_msg_clear(struct queue_msg *m)
{
	queue_msg_free_fields(m);
}
