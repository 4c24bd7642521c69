/*
 * auth_dovecot: the Dovecot backend (see auth.h and dovecot_proto.h).
 *
 * One connection to the auth-client socket, opened when a check needs it
 * and kept; checks are multiplexed on it by request id.  The connection
 * is dropped (and every check on it answered AUTH_TEMP) when Dovecot
 * closes it, sends a malformed or over-long line, offers no PLAIN, or
 * leaves a check unanswered past AUTH_DEADLINE_MS (auth.c's deadline
 * calls pw_abort with timed_out): a hung Dovecot costs each check at
 * most the deadline, and the next check connects again.  Nothing here
 * blocks: a UNIX-socket connect either completes or fails at once.
 *
 * The password leaves this process only inside the AUTH line, which is
 * handed to the bufferevent by reference and wiped when it has been
 * written (or the connection is freed).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "auth/auth_int.h"
#include "auth/dovecot_proto.h"
#include "common/log.h"
#include "msgtrk/b64.h"

/* Checks on one connection at a time, sent or waiting for it. */
#define DC_REQS_MAX 1024

enum dc_state {
	DC_DOWN,
	DC_HANDSHAKE, /* connecting, or waiting for DONE */
	DC_READY,
};

struct dc_req {
	struct dc_be *be;
	struct auth_req *r;
	unsigned id;
	int sent;
	struct dc_req *prev, *next;
};

struct dc_be {
	struct auth *a;
	struct event_base *base;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct bufferevent *bev;
	enum dc_state state;
	int got_version, has_plain;
	int down_logged; /* the last connection attempt failed, logged */
	unsigned next_id;
	struct dc_req *reqs;
	size_t nreqs;
	struct dovecot_reader rd;
};

static void dc_reset(struct dc_be *be, const char *why);

static void
req_unlink(struct dc_req *q)
{
	struct dc_be *be = q->be;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		be->reqs = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	be->nreqs--;
	q->r->be = NULL;
	free(q);
}

/* Answers q's check and forgets it. */
static void
req_answer(struct dc_req *q, enum auth_result result, const char *user)
{
	struct auth_req *r = q->r;

	req_unlink(q);
	auth_req_done(r, result, user);
}

static void
wipe_line(const void *data, size_t len, void *arg)
{
	(void)arg;
	explicit_bzero((void *)(uintptr_t)data, len);
	free((void *)(uintptr_t)data);
}

/* Sends q's AUTH line.  Returns 0 or -1 (q answered AUTH_TEMP). */
static int
req_send(struct dc_req *q)
{
	struct auth_req *r = q->r;
	char plain[SASL_PLAIN_MAX], resp[SASL_LINE_MAX + 1];
	size_t ln = strlen(r->login), pn = strlen(r->password), len;
	char *line;
	int n;

	/* PLAIN with an empty authzid: "act as the login". */
	plain[0] = '\0';
	memcpy(plain + 1, r->login, ln);
	plain[1 + ln] = '\0';
	memcpy(plain + 2 + ln, r->password, pn);
	n = b64_encode(
	    plain, 2 + ln + pn, B64_PAD_REQUIRED, resp, sizeof(resp));
	explicit_bzero(plain, sizeof(plain));
	auth_req_wipe(r);
	len = sizeof(resp) + 128;
	if (n < 0 || (line = malloc(len)) == NULL) {
		explicit_bzero(resp, sizeof(resp));
		req_answer(q, AUTH_TEMP, NULL);
		return -1;
	}
	n = dovecot_format_auth(line, len, q->id, r->addr, r->secured, resp);
	explicit_bzero(resp, sizeof(resp));
	if (n < 0 ||
	    evbuffer_add_reference(bufferevent_get_output(q->be->bev), line,
	        (size_t)n, wipe_line, NULL) == -1) {
		explicit_bzero(line, len);
		free(line);
		req_answer(q, AUTH_TEMP, NULL);
		return -1;
	}
	q->sent = 1;
	return 0;
}

static void
dc_send_waiting(struct dc_be *be)
{
	struct dc_req *q, *next;

	for (q = be->reqs; q != NULL; q = next) {
		next = q->next;
		if (!q->sent)
			(void)req_send(q);
	}
}

static struct dc_req *
req_find(struct dc_be *be, unsigned id)
{
	struct dc_req *q;

	for (q = be->reqs; q != NULL; q = q->next)
		if (q->id == id && q->sent)
			return q;
	return NULL;
}

/* Handles one line.  Returns 0, or -1 when the connection was reset. */
static int
dc_line(struct dc_be *be, const char *line, size_t n)
{
	struct dovecot_reply rep;
	struct dc_req *q;

	if (dovecot_parse(line, n, &rep) == -1) {
		dc_reset(be, "malformed line");
		return -1;
	}
	switch (rep.kind) {
	case DOVECOT_VERSION:
		if (rep.major != DOVECOT_MAJOR) {
			dc_reset(be, "unsupported protocol version");
			return -1;
		}
		be->got_version = 1;
		return 0;
	case DOVECOT_MECH:
		if (strcmp(rep.mech, "PLAIN") == 0)
			be->has_plain = 1;
		return 0;
	case DOVECOT_DONE:
		if (be->state != DC_HANDSHAKE)
			return 0;
		if (!be->got_version || !be->has_plain) {
			dc_reset(be,
			    be->got_version ? "PLAIN not offered"
			                    : "no VERSION");
			return -1;
		}
		be->state = DC_READY;
		if (be->down_logged)
			log_info("- auth dovecot_up path=%s", be->path);
		be->down_logged = 0;
		dc_send_waiting(be);
		return 0;
	case DOVECOT_OK:
	case DOVECOT_FAIL:
	case DOVECOT_CONT:
		if (be->state != DC_READY) {
			dc_reset(be, "reply before the handshake's end");
			return -1;
		}
		/* An answer to a check already timed out or cancelled is
		 * dropped. */
		if ((q = req_find(be, rep.id)) == NULL)
			return 0;
		if (rep.kind == DOVECOT_OK)
			req_answer(q, AUTH_OK, rep.has_user ? rep.user : NULL);
		else if (rep.kind == DOVECOT_FAIL)
			req_answer(q, rep.temp ? AUTH_TEMP : AUTH_FAIL, NULL);
		else {
			/* PLAIN carried everything: a challenge means this
			 * Dovecot speaks something else. */
			req_answer(q, AUTH_TEMP, NULL);
			dc_reset(be, "unexpected CONT");
			return -1;
		}
		return 0;
	default:
		return 0;
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct dc_be *be = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char tmp[4096];
	size_t used, off;
	int n, r;

	while ((n = evbuffer_remove(in, tmp, sizeof(tmp))) > 0) {
		off = 0;
		while (off < (size_t)n) {
			r = dovecot_reader_feed(
			    &be->rd, tmp + off, (size_t)n - off, &used);
			off += used;
			if (r == -1) {
				dc_reset(be, "line too long");
				return;
			}
			if (r == 1 &&
			    dc_line(be, be->rd.line, be->rd.len) == -1)
				return;
		}
	}
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct dc_be *be = arg;
	char why[128];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_EOF)
		dc_reset(be, "closed by dovecot");
	else {
		snprintf(why, sizeof(why), "%s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		dc_reset(be, why);
	}
}

/* Drops the connection: every check on it is AUTH_TEMP. */
static void
dc_reset(struct dc_be *be, const char *why)
{
	char esc[256];

	if (be->state == DC_READY || !be->down_logged) {
		log_warnx("- auth dovecot_down path=%s error=\"%s\" checks=%zu",
		    be->path, log_escape(esc, sizeof(esc), why, strlen(why)),
		    be->nreqs);
		be->down_logged = 1;
	}
	if (be->bev != NULL)
		bufferevent_free(be->bev);
	be->bev = NULL;
	be->state = DC_DOWN;
	be->got_version = be->has_plain = 0;
	dovecot_reader_init(&be->rd);
	while (be->reqs != NULL)
		req_answer(be->reqs, AUTH_TEMP, NULL);
}

/* Starts a connection.  Returns 0, or -1 (reset done). */
static int
dc_connect(struct dc_be *be)
{
	struct sockaddr_un sun;
	char hello[64];
	int n;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, be->path, strlen(be->path) + 1);
	be->bev = bufferevent_socket_new(be->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (be->bev == NULL) {
		dc_reset(be, "out of memory");
		return -1;
	}
	bufferevent_setcb(be->bev, on_read, NULL, on_event, be);
	be->state = DC_HANDSHAKE;
	dovecot_reader_init(&be->rd);
	if (bufferevent_socket_connect(
	        be->bev, (struct sockaddr *)&sun, (int)sizeof(sun)) == -1) {
		dc_reset(be, strerror(errno));
		return -1;
	}
	/* The protocol lets the client speak first: the handshake is
	 * queued behind the connect. */
	n = dovecot_format_hello(hello, sizeof(hello), (unsigned long)getpid());
	if (n < 0 || bufferevent_write(be->bev, hello, (size_t)n) == -1 ||
	    bufferevent_enable(be->bev, EV_READ | EV_WRITE) == -1) {
		dc_reset(be, "cannot queue the handshake");
		return -1;
	}
	return 0;
}

static void *
dc_open(struct auth *a, struct event_base *base, const char *arg, char *err,
    size_t errsize)
{
	struct dc_be *be;

	if (strlen(arg) >= sizeof(be->path)) {
		snprintf(err, errsize, "auth: dovecot: socket path too long");
		return NULL;
	}
	if ((be = calloc(1, sizeof(*be))) == NULL) {
		snprintf(err, errsize, "auth: out of memory");
		return NULL;
	}
	be->a = a;
	be->base = base;
	memcpy(be->path, arg, strlen(arg) + 1);
	be->state = DC_DOWN;
	dovecot_reader_init(&be->rd);
	return be;
}

static int
dc_start(void *arg, struct auth_req *r)
{
	struct dc_be *be = arg;
	struct dc_req *q;

	if (be->nreqs >= DC_REQS_MAX) {
		log_warnx("- auth busy backend=dovecot checks=%zu", be->nreqs);
		return -1;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return -1;
	q->be = be;
	q->r = r;
	if (++be->next_id == 0)
		be->next_id = 1;
	q->id = be->next_id;
	q->next = be->reqs;
	if (be->reqs != NULL)
		be->reqs->prev = q;
	be->reqs = q;
	be->nreqs++;
	r->be = q;
	if (be->state == DC_DOWN)
		(void)dc_connect(be); /* on failure q is answered AUTH_TEMP */
	else if (be->state == DC_READY)
		(void)req_send(q);
	return 0;
}

static void
dc_abort(void *arg, struct auth_req *r, int timed_out)
{
	struct dc_be *be = arg;
	struct dc_req *q = r->be;

	if (q == NULL)
		return;
	req_unlink(q);
	if (timed_out)
		dc_reset(be, "no answer within the deadline");
}

static void
dc_close(void *arg)
{
	struct dc_be *be = arg;

	if (be == NULL)
		return;
	while (be->reqs != NULL)
		req_unlink(be->reqs);
	if (be->bev != NULL)
		bufferevent_free(be->bev);
	free(be);
}

const struct auth_backend auth_backend_dovecot = {
	.name = "dovecot",
	.open = dc_open,
	.start = dc_start,
	.abort = dc_abort,
	.reload = NULL,
	.close = dc_close,
};
