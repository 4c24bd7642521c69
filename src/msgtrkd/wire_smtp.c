/*
 * wire_smtp: the SMTP server's hooks (smtp.h) answered by the rest of the
 * daemon.
 */
#include <errno.h>
#include <stdlib.h>

#include "auth/auth.h"
#include "auth/sender_logins.h"
#include "common/mailbox.h"
#include "delivery/delivery.h"
#include "msgtrkd/msgtrkd.h"
#include "msgtrkd/wire.h"
#include "queue/queue.h"
#include "smtp/smtp.h"

static enum smtp_rcpt_check
wire_local_rcpt(void *arg, const char *addr)
{
	struct msgtrkd *d = arg;

	/* Local delivery would refuse it for good (5.1.3) and bounce the
	 * message to a sender that may be forged: refuse it now. */
	if (!mailbox_name_ok(addr))
		return SMTP_RCPT_NOT_ALLOWED;
	if (!delivery_local_known(d->delivery, addr))
		return SMTP_RCPT_UNKNOWN;
	return SMTP_RCPT_OK;
}

static int
wire_store_failed(void *arg)
{
	struct msgtrkd *d = arg;

	return queue_store_failed(d->queue);
}

static void
wire_new_id(void *arg, char *qid_out)
{
	(void)arg;
	queue_new_id(qid_out);
}

static int
wire_submit(void *arg, struct queue_msg *m, const struct iovec *body, int n,
    void *spool, smtp_submit_done done, void *done_arg)
{
	struct msgtrkd *d = arg;

	return queue_submit(d->queue, m, body, n, spool, done, done_arg);
}

/* DATA spooled to the queue's journal as it arrives (queue_spool). */
static void *
spool_open(void *arg)
{
	struct msgtrkd *d = arg;

	return queue_spool_new(d->queue);
}

static struct buf *
spool_buf(void *sp)
{
	return queue_spool_buf(sp);
}

static int
spool_push(void *sp)
{
	return queue_spool_push(sp);
}

static int
spool_busy(void *sp)
{
	return queue_spool_busy(sp);
}

static void
spool_on_ready(void *sp, void (*ready)(void *), void *ready_arg)
{
	queue_spool_on_ready(sp, ready, ready_arg);
}

static int
spool_error(void *sp)
{
	return queue_spool_error(sp);
}

static void
spool_close(void *sp)
{
	queue_spool_free(sp);
}

static const struct smtp_spool_ops wire_spool = {
	.open = spool_open,
	.buf = spool_buf,
	.push = spool_push,
	.busy = spool_busy,
	.on_ready = spool_on_ready,
	.error = spool_error,
	.close = spool_close,
};

static void
wire_queued(void *arg, struct queue_msg *m)
{
	struct msgtrkd *d = arg;

	delivery_schedule(d->delivery, m);
}

static void
wire_msg_free(void *arg, struct queue_msg *m)
{
	(void)arg;
	queue_msg_free(m);
}

/* AUTH through src/auth: its callback carries the session's. */
struct wire_auth {
	smtp_auth_done done;
	void *done_arg;
	struct auth_req *req;
};

static void
wire_auth_cb(void *arg, enum auth_result result, const char *login)
{
	struct wire_auth *w = arg;
	smtp_auth_done done = w->done;
	void *done_arg = w->done_arg;

	free(w);
	done(done_arg,
	    result == AUTH_OK         ? SMTP_AUTH_OK
	        : result == AUTH_FAIL ? SMTP_AUTH_FAIL
	                              : SMTP_AUTH_TEMP,
	    login);
}

static void *
wire_auth_start(void *arg, const char *login, const char *password,
    const char *client_addr, smtp_auth_done done, void *done_arg)
{
	struct msgtrkd *d = arg;
	struct wire_auth *w;

	if (d->auth == NULL) {
		errno = ENOSYS;
		return NULL;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->done = done;
	w->done_arg = done_arg;
	/* Only ever inside TLS (smtp_session: 538 before). */
	if ((w->req = auth_check(d->auth, login, password, client_addr, 1,
	         wire_auth_cb, w)) == NULL) {
		int e = errno;

		free(w);
		errno = e;
		return NULL;
	}
	return w;
}

static void
wire_auth_cancel(void *arg, void *req)
{
	struct wire_auth *w = req;

	(void)arg;
	auth_cancel(w->req);
	free(w);
}

static int
wire_sender_allowed(void *arg, const char *login, const char *from)
{
	struct msgtrkd *d = arg;

	return sender_logins_allowed(d->senders, login, from);
}

static const struct smtp_hooks wire_smtp_hooks = {
	.local_rcpt = wire_local_rcpt,
	.store_failed = wire_store_failed,
	.new_id = wire_new_id,
	.submit = wire_submit,
	.queued = wire_queued,
	.msg_free = wire_msg_free,
	.spool = &wire_spool,
	.auth_start = wire_auth_start,
	.auth_cancel = wire_auth_cancel,
	.sender_allowed = wire_sender_allowed,
};

struct smtp_server *
wire_smtp_new(struct msgtrkd *d, char *err, size_t errsize)
{
	return smtp_server_new(
	    d->base, d->conf, d->tls_server, &wire_smtp_hooks, d, err, errsize);
}
