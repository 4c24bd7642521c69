/*
 * store_reader: store reads on a worker pool.  See store_reader.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/workers.h"
#include "msgtrk/str.h"
#include "store/store.h"
#include "store/store_reader.h"

#define SR_ERR_MAX 512

enum sr_kind { SR_LOOKUP, SR_SEARCH, SR_SENT };

struct store_reader {
	struct workers *w;
	const struct store_backend *be;
	char *uri;
	char *data_dir;
};

/* One thread's handle. */
struct sr_ctx {
	struct store_reader *r;
	struct store *st;
	int failed; /* the last call failed: open afresh */
};

struct store_reader_job {
	struct store_reader *r;
	struct workers_job *wj;
	enum sr_kind kind;
	char *envid;
	char certifier[STORE_CERTIFIER_LEN + 1];
	struct store_query q;
	char *qenvid, *qsender, *qrcpt;
	char *login; /* SR_SENT */
	size_t limit;
	store_reader_cb cb;
	void *arg;
	/* Filled by run() on the thread. */
	int rc;
	struct store_msg *msgs;
	size_t n, cap;
	char err[SR_ERR_MAX];
};

static void
sr_job_free(struct store_reader_job *j)
{
	store_msgs_free(j->msgs, j->n);
	free(j->envid);
	free(j->qenvid);
	free(j->qsender);
	free(j->qrcpt);
	free(j->login);
	free(j);
}

static void *
sr_init(void *pool_arg, unsigned int index, int *ok_out)
{
	struct store_reader *r = pool_arg;
	struct sr_ctx *x;
	char err[SR_ERR_MAX];

	(void)index;
	*ok_out = 1;
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		*ok_out = 0;
		return NULL;
	}
	x->r = r;
	/* A failure here is retried by the first job. */
	x->st = r->be->open(r->uri, r->data_dir, 0, err, sizeof(err));
	return x;
}

static void
sr_fini(void *pool_arg, void *ctx)
{
	struct sr_ctx *x = ctx;

	(void)pool_arg;
	if (x == NULL)
		return;
	if (x->st != NULL)
		x->r->be->close(x->st);
	free(x);
}

/* One search row, copied: a message with its one recipient. */
static int
sr_search_row(void *arg, const struct store_msg *m, const struct store_rcpt *r)
{
	struct store_reader_job *j = arg;
	struct store_msg *nm, *c;
	struct store_rcpt *cr;

	if (j->n == STORE_READER_SEARCH_MAX)
		return -1;
	if (j->n == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 16;

		if ((nm = realloc(j->msgs, cap * sizeof(*nm))) == NULL)
			goto nomem;
		j->msgs = nm;
		j->cap = cap;
	}
	c = &j->msgs[j->n];
	memset(c, 0, sizeof(*c));
	j->n++;
	memcpy(c->qid, m->qid, sizeof(c->qid));
	memcpy(c->certifier, m->certifier, sizeof(c->certifier));
	c->arrival = m->arrival;
	c->expires = m->expires;
	c->queued = m->queued;
	if ((c->rcpts = cr = calloc(1, sizeof(*cr))) == NULL)
		goto nomem;
	c->nrcpt = 1;
	cr->idx = r->idx;
	cr->action = r->action;
	memcpy(cr->status, r->status, sizeof(cr->status));
	cr->last_attempt = r->last_attempt;
	cr->will_retry_until = r->will_retry_until;
	if ((m->envid != NULL && (c->envid = strdup(m->envid)) == NULL) ||
	    (c->sender = strdup(m->sender != NULL ? m->sender : "")) == NULL ||
	    (m->reporting_mta != NULL &&
	        (c->reporting_mta = strdup(m->reporting_mta)) == NULL) ||
	    (r->orcpt != NULL && (cr->orcpt = strdup(r->orcpt)) == NULL) ||
	    (r->final_rcpt != NULL &&
	        (cr->final_rcpt = strdup(r->final_rcpt)) == NULL) ||
	    (r->remote_mta != NULL &&
	        (cr->remote_mta = strdup(r->remote_mta)) == NULL) ||
	    (r->reply != NULL && (cr->reply = strdup(r->reply)) == NULL))
		goto nomem;
	return 0;
nomem:
	snprintf(j->err, sizeof(j->err), "search: out of memory");
	return -1;
}

static void
sr_run(void *ctx, void *arg)
{
	struct sr_ctx *x = ctx;
	struct store_reader_job *j = arg;
	const struct store_backend *be = j->r->be;
	struct store_query q;

	j->rc = -1;
	if (x->st != NULL && x->failed) {
		be->close(x->st);
		x->st = NULL;
	}
	if (x->st == NULL &&
	    (x->st = be->open(j->r->uri, j->r->data_dir, 0, j->err,
	         sizeof(j->err))) == NULL) {
		x->failed = 1;
		return;
	}
	x->failed = 0;
	if (j->kind == SR_LOOKUP || j->kind == SR_SENT) {
		j->rc = j->kind == SR_LOOKUP
		    ? be->lookup(x->st, j->envid, j->certifier, &j->msgs, &j->n)
		    : be->list_sent(x->st, j->login, j->limit, &j->msgs, &j->n);
		if (j->rc == -1) {
			str_copy(j->err, be->error(x->st), sizeof(j->err));
			x->failed = 1;
		}
		return;
	}
	q = j->q;
	if (q.limit == 0 || q.limit > STORE_READER_SEARCH_MAX)
		q.limit = STORE_READER_SEARCH_MAX;
	if (be->search(x->st, &q, sr_search_row, j) == -1) {
		str_copy(j->err, be->error(x->st), sizeof(j->err));
		x->failed = 1;
	} else if (j->err[0] == '\0') /* else out of memory: j->err */
		j->rc = j->n > 0 ? 1 : 0;
	if (j->rc == -1) {
		store_msgs_free(j->msgs, j->n);
		j->msgs = NULL;
		j->n = 0;
	}
}

static void
sr_done(void *arg, enum workers_status status)
{
	struct store_reader_job *j = arg;

	switch (status) {
	case WORKERS_DONE:
		j->cb(j->arg, j->rc, j->rc == 1 ? j->msgs : NULL,
		    j->rc == 1 ? j->n : 0, j->rc == -1 ? j->err : "");
		if (j->rc == 1) {
			j->msgs = NULL; /* the callee's now */
			j->n = 0;
		}
		sr_job_free(j);
		break;
	case WORKERS_TIMEOUT:
		/* The pool still owns j: sr_abandon frees it. */
		j->cb(j->arg, STORE_READER_TIMEOUT, NULL, 0, "deadline passed");
		break;
	case WORKERS_STOPPED:
		j->cb(j->arg, -1, NULL, 0, "stopped");
		sr_job_free(j);
		break;
	}
}

static void
sr_abandon(void *arg)
{
	sr_job_free(arg);
}

static struct store_reader_job *
sr_submit(struct store_reader *r, struct store_reader_job *j,
    unsigned int deadline_ms)
{
	if ((j->wj = workers_submit(
	         r->w, sr_run, sr_done, sr_abandon, j, deadline_ms)) == NULL) {
		int e = errno;

		sr_job_free(j);
		errno = e;
		return NULL;
	}
	return j;
}

struct store_reader_job *
store_reader_lookup(struct store_reader *r, const char *envid,
    const char *certifier, unsigned int deadline_ms, store_reader_cb cb,
    void *arg)
{
	struct store_reader_job *j;

	if (envid == NULL || certifier == NULL || cb == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->envid = strdup(envid)) == NULL) {
		free(j);
		errno = ENOMEM;
		return NULL;
	}
	j->r = r;
	j->kind = SR_LOOKUP;
	/* A certifier of another length matches nothing (the store says
	 * 0); the copy is cut so, never longer. */
	str_copy(j->certifier, certifier, sizeof(j->certifier));
	if (strlen(certifier) != STORE_CERTIFIER_LEN)
		j->certifier[0] = '\0';
	j->cb = cb;
	j->arg = arg;
	return sr_submit(r, j, deadline_ms);
}

struct store_reader_job *
store_reader_search(struct store_reader *r, const struct store_query *q,
    unsigned int deadline_ms, store_reader_cb cb, void *arg)
{
	struct store_reader_job *j;

	if (q == NULL || cb == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		goto nomem;
	j->r = r;
	j->kind = SR_SEARCH;
	j->q = *q;
	if ((q->envid != NULL && (j->qenvid = strdup(q->envid)) == NULL) ||
	    (q->sender != NULL && (j->qsender = strdup(q->sender)) == NULL) ||
	    (q->rcpt != NULL && (j->qrcpt = strdup(q->rcpt)) == NULL))
		goto nomem;
	j->q.envid = j->qenvid;
	j->q.sender = j->qsender;
	j->q.rcpt = j->qrcpt;
	j->cb = cb;
	j->arg = arg;
	return sr_submit(r, j, deadline_ms);
nomem:
	if (j != NULL)
		sr_job_free(j);
	errno = ENOMEM;
	return NULL;
}

struct store_reader_job *
store_reader_list_sent(struct store_reader *r, const char *login, size_t limit,
    unsigned int deadline_ms, store_reader_cb cb, void *arg)
{
	struct store_reader_job *j;

	if (login == NULL || cb == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->login = strdup(login)) == NULL) {
		free(j);
		errno = ENOMEM;
		return NULL;
	}
	j->r = r;
	j->kind = SR_SENT;
	j->limit = limit;
	j->cb = cb;
	j->arg = arg;
	return sr_submit(r, j, deadline_ms);
}

void
store_reader_cancel(struct store_reader_job *j)
{
	workers_cancel(j->wj);
}

size_t
store_reader_pending(const struct store_reader *r)
{
	return workers_pending(r->w);
}

struct store_reader *
store_reader_new(struct event_base *base, const struct store_backend *be,
    const char *uri, const char *data_dir, unsigned int nthreads, char *err,
    size_t errsize)
{
	static const struct workers_ops ops = { sr_init, sr_fini };
	struct store_reader *r;

	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->uri = strdup(uri != NULL ? uri : "")) == NULL ||
	    (r->data_dir = strdup(data_dir != NULL ? data_dir : "")) == NULL) {
		snprintf(err, errsize, "store reader: out of memory");
		store_reader_free(r);
		return NULL;
	}
	r->be = be;
	if ((r->w = workers_new(base, "store-reader", nthreads, &ops, r, err,
	         errsize)) == NULL) {
		store_reader_free(r);
		return NULL;
	}
	return r;
}

void
store_reader_free(struct store_reader *r)
{
	if (r == NULL)
		return;
	workers_free(r->w);
	free(r->uri);
	free(r->data_dir);
	free(r);
}
