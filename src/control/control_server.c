/*
 * control_server: the control socket.  See control_server.h; the
 * protocol is msgtrk/control.h's.
 *
 * A connection takes one request at a time: input goes from its
 * bufferevent into the codec's parser, a request is carried out, and only
 * when its answer is written is the next line taken.  hold, release and
 * delete ask delivery for every queue id at once and answer when the last
 * one is durable; meanwhile reading is off (so is the idle timeout: a
 * change waits for an attempt in flight to end).  A connection whose peer
 * leaves while changes are pending stays, without its socket, until they
 * call back.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "common/log.h"
#include "control/control_server.h"
#include "delivery/delivery.h"
#include "msgtrk/buf.h"
#include "msgtrk/control.h"

/* listen(2) backlog: connections are few and short. */
#define CONTROL_SERVER_BACKLOG 16
/* Input moved into the parser at a time. */
#define CONTROL_SERVER_CHUNK 4096
/* SO_PEERGROUPS answers that fit without allocating; more are read in
 * an allocated array up to the kernel's NGROUPS_MAX. */
#define CONTROL_SERVER_GROUPS_STACK 64
#define CONTROL_SERVER_GROUPS_MAX 65536
/* /proc/PID/status is read up to this size (a Groups line of
 * NGROUPS_MAX ids would be longer: such a peer is refused). */
#define CONTROL_SERVER_STATUS_MAX (64 * 1024)

struct ctl_conn;

/* One queue id of a hold, release or delete: its answer. */
struct ctl_op {
	struct ctl_conn *c;
	int pending;
	int err; /* 0: done; else an errno value */
};

struct ctl_conn {
	struct control_server *s;
	struct bufferevent *bev; /* NULL once the peer is gone */
	struct control_parser *parser;
	uid_t uid; /* the peer's, at connect() */
	unsigned requests;
	unsigned errors;
	int busy; /* a request is in flight */
	int issuing; /* its changes are being asked for */
	int closing; /* close once the output is written */
	int eof; /* the peer will send nothing more */
	int stalled; /* reading off until the peer reads its answers */
	size_t pending; /* changes not yet durable */
	struct control_req req;
	struct ctl_op ops[CONTROL_QIDS_MAX];
	struct buf out;
	TAILQ_ENTRY(ctl_conn) entry;
};

struct control_server {
	struct control_server_deps deps;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct evconnlistener *listener;
	dev_t dev;
	ino_t ino;
	uid_t uid; /* the daemon's user and group */
	gid_t gid;
	size_t nconns;
	TAILQ_HEAD(ctl_conns, ctl_conn) conns;
};

static void ctl_process(struct ctl_conn *c);

static void
ctl_free(struct ctl_conn *c)
{
	struct control_server *s = c->s;

	TAILQ_REMOVE(&s->conns, c, entry);
	s->nconns--;
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	control_parser_free(c->parser);
	buf_reset(&c->out);
	free(c);
}

/* The peer is gone or must go: its socket closes now; the connection
 * itself when no change is pending any more. */
static void
ctl_close(struct ctl_conn *c, const char *reason)
{
	log_debug("- control disconnect uid=%u reason=%s requests=%u",
	    (unsigned)c->uid, reason, c->requests);
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->pending == 0)
		ctl_free(c);
}

/* Sends what c->out holds (nothing once the peer is gone). */
static void
ctl_send(struct ctl_conn *c)
{
	if (c->bev != NULL && c->out.len > 0 &&
	    bufferevent_write(c->bev, c->out.data, c->out.len) == -1)
		fatalx("control: out of memory");
	buf_clear(&c->out);
}

/* A "bad" answer; fatal ones close the connection once written. */
static void
ctl_bad(struct ctl_conn *c, const char *why, int fatal)
{
	if (control_reply_bad(&c->out, why) == -1)
		fatalx("control: reply");
	if (fatal) {
		c->closing = 1;
		bufferevent_disable(c->bev, EV_READ);
	}
	ctl_send(c);
}

static const char *
ctl_errtext(int err)
{
	switch (err) {
	case 0:
		return "ok";
	case ENOENT:
		return "no such message";
	case EBUSY:
		return "busy";
	case EPERM:
		return "held (release it first)";
	default:
		return strerror(err);
	}
}

/* --- carrying out requests --------------------------------------------- */

/* Every change of the request is durable (or refused): the answer.
 * Called back (async), it also goes on with the next requests; called
 * from ctl_process(), it leaves that to its loop.  c may be freed on
 * return when async. */
static void
ctl_finish(struct ctl_conn *c, int async)
{
	const char *op = control_verb_name(c->req.verb);
	unsigned long nok = 0, nfail = 0;
	size_t i;

	for (i = 0; i < c->req.nqid; i++) {
		int err = c->ops[i].err;

		if (err == 0) {
			nok++;
			log_info("- control op=%s qid=%s uid=%u result=ok", op,
			    c->req.qid[i], (unsigned)c->uid);
			if (control_reply_ok(&c->out, c->req.qid[i]) == -1)
				fatalx("control: reply");
		} else {
			nfail++;
			log_info("- control op=%s qid=%s uid=%u result=error "
			         "error=\"%s\"",
			    op, c->req.qid[i], (unsigned)c->uid,
			    ctl_errtext(err));
			if (control_reply_error(
			        &c->out, c->req.qid[i], ctl_errtext(err)) == -1)
				fatalx("control: reply");
		}
	}
	if (control_reply_done(&c->out, nok, nfail, NULL) == -1)
		fatalx("control: reply");
	c->busy = 0;
	if (c->bev == NULL) {
		/* The peer left meanwhile: nobody to answer. */
		buf_clear(&c->out);
		ctl_free(c);
		return;
	}
	ctl_send(c);
	if (!c->eof)
		bufferevent_enable(c->bev, EV_READ);
	if (async)
		ctl_process(c);
}

static void
ctl_done(void *arg, int rc, int err)
{
	struct ctl_op *op = arg;
	struct ctl_conn *c = op->c;

	if (!op->pending)
		fatalx("control: a change answered twice");
	op->pending = 0;
	op->err = rc == 0 ? 0 : err != 0 ? err : EIO;
	c->pending--;
	if (c->pending == 0 && !c->issuing)
		ctl_finish(c, 1);
}

/* hold, release, delete: asked for every queue id, answered when all
 * are durable.  delivery may call back before it returns (a write that
 * failed at once): issuing keeps the answer until every id was asked. */
static void
ctl_change(struct ctl_conn *c)
{
	struct delivery *dl = c->s->deps.delivery;
	enum control_verb v = c->req.verb;
	size_t i;
	int rc;

	c->busy = 1;
	c->issuing = 1;
	bufferevent_disable(c->bev, EV_READ);
	for (i = 0; i < c->req.nqid; i++) {
		struct ctl_op *op = &c->ops[i];

		op->c = c;
		op->pending = 1;
		op->err = 0;
		c->pending++;
		if (v == CONTROL_DELETE)
			rc = delivery_delete(dl, c->req.qid[i], ctl_done, op);
		else
			rc = delivery_hold(
			    dl, c->req.qid[i], v == CONTROL_HOLD, ctl_done, op);
		if (rc == -1) {
			op->pending = 0;
			op->err = errno != 0 ? errno : EIO;
			c->pending--;
		}
	}
	c->issuing = 0;
	if (c->pending == 0)
		ctl_finish(c, 0);
}

static void
ctl_flush(struct ctl_conn *c)
{
	struct delivery *dl = c->s->deps.delivery;
	size_t i;
	int n;

	if (c->req.nqid == 0) {
		n = delivery_flush(dl, NULL);
		if (n < 0)
			n = 0;
		log_info("- control op=flush qid=all uid=%u result=ok "
		         "flushed=%d",
		    (unsigned)c->uid, n);
		if (control_reply_done(&c->out, (unsigned long)n, 0, NULL) ==
		    -1)
			fatalx("control: reply");
		ctl_send(c);
		return;
	}
	for (i = 0; i < c->req.nqid; i++) {
		c->ops[i].pending = 0;
		c->ops[i].err = delivery_flush(dl, c->req.qid[i]) == -1
		    ? (errno != 0 ? errno : EIO)
		    : 0;
	}
	ctl_finish(c, 0);
}

static void
ctl_reload(struct ctl_conn *c)
{
	char err[CONTROL_TEXT_MAX + 1];
	int rc;

	err[0] = '\0';
	rc = c->s->deps.reload(c->s->deps.reload_arg, err, sizeof(err));
	if (rc == 0) {
		log_info(
		    "- control op=reload uid=%u result=ok", (unsigned)c->uid);
		rc = control_reply_done(&c->out, 1, 0, NULL);
	} else {
		log_info("- control op=reload uid=%u result=error "
		         "error=\"%s\"",
		    (unsigned)c->uid, err);
		rc = control_reply_done(
		    &c->out, 0, 1, err[0] != '\0' ? err : "reload failed");
	}
	if (rc == -1)
		fatalx("control: reply");
	ctl_send(c);
}

/* Takes requests while none is in flight and the peer reads its
 * answers.  c may be freed on return. */
static void
ctl_process(struct ctl_conn *c)
{
	char chunk[CONTROL_SERVER_CHUNK];
	struct evbuffer *in;
	enum control_error e;
	size_t n;
	int r;

	while (c->bev != NULL && !c->busy && !c->closing) {
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) >
		    CONTROL_SERVER_OUTPUT_MAX) {
			/* Read no more until the peer reads: on_write
			 * resumes once the output drained. */
			bufferevent_disable(c->bev, EV_READ);
			c->stalled = 1;
			return;
		}
		r = control_next_req(c->parser, &c->req);
		if (r == 0) {
			in = bufferevent_get_input(c->bev);
			n = evbuffer_get_length(in);
			if (n > sizeof(chunk))
				n = sizeof(chunk);
			if (n > control_parser_room(c->parser))
				n = control_parser_room(c->parser);
			if (n == 0)
				break;
			if (evbuffer_remove(in, chunk, n) != (int)n ||
			    control_push(c->parser, chunk, n) == -1)
				fatalx("control: input");
			continue;
		}
		if (r == -1) {
			e = control_parser_error(c->parser);
			c->errors++;
			log_info("- control bad uid=%u error=\"%s\"",
			    (unsigned)c->uid, control_strerror(e));
			if (c->errors >= CONTROL_SERVER_ERRORS_MAX)
				ctl_bad(c, "too many errors", 1);
			else
				ctl_bad(c, control_strerror(e),
				    e == CONTROL_E_LINE_TOO_LONG);
			continue;
		}
		if (++c->requests > CONTROL_REQUESTS_MAX) {
			log_info("- control bad uid=%u error=\"too many "
			         "requests\"",
			    (unsigned)c->uid);
			ctl_bad(c, "too many requests", 1);
			continue;
		}
		switch (c->req.verb) {
		case CONTROL_FLUSH:
			ctl_flush(c);
			break;
		case CONTROL_RELOAD:
			ctl_reload(c);
			break;
		default:
			/* Busy until delivery calls back (ctl_finish()). */
			ctl_change(c);
			break;
		}
	}
	if (c->bev != NULL && c->eof && !c->busy && !c->closing) {
		/* Half-closed and every request answered. */
		c->closing = 1;
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			ctl_close(c, "eof");
	}
}

/* --- the connection's events ------------------------------------------- */

static void
on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	ctl_process(arg);
}

/* The output drained. */
static void
on_write(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *c = arg;

	(void)bev;
	if (c->closing) {
		ctl_close(c, c->eof ? "eof" : "bad");
		return;
	}
	if (c->stalled) {
		c->stalled = 0;
		if (!c->eof && !c->busy)
			bufferevent_enable(c->bev, EV_READ);
	}
	ctl_process(c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_EOF) {
		c->eof = 1;
		bufferevent_disable(c->bev, EV_READ);
		if (c->closing || c->busy)
			return;
		ctl_process(c);
		return;
	}
	ctl_close(c, what & BEV_EVENT_TIMEOUT ? "idle" : "error");
}

/* --- who may connect ------------------------------------------------- */

int
control_server_status_has_group(const char *status, size_t n, gid_t gid)
{
	const char *p = status, *end = status + n, *nl;
	unsigned long v;
	int digits;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return -1; /* cut short */
		if ((size_t)(nl - p) >= 7 && memcmp(p, "Groups:", 7) == 0) {
			p += 7;
			v = 0;
			digits = 0;
			for (; p <= nl; p++) {
				if (p < nl && *p >= '0' && *p <= '9') {
					if (v > (ULONG_MAX - 9) / 10)
						return -1;
					v = v * 10 + (unsigned long)(*p - '0');
					digits = 1;
					continue;
				}
				if (p < nl && *p != ' ' && *p != '\t')
					return -1;
				if (digits && v == (unsigned long)gid)
					return 1;
				v = 0;
				digits = 0;
			}
			return 0;
		}
		p = nl + 1;
	}
	return -1;
}

/* Whether the peer's supplementary groups, as they were at connect(),
 * hold gid: 1, 0, or -1 if this kernel lacks SO_PEERGROUPS (4.13). */
static int
ctl_peer_groups(int fd, gid_t gid)
{
	gid_t stack[CONTROL_SERVER_GROUPS_STACK], *g = stack;
	socklen_t len = sizeof(stack);
	size_t i;
	int found = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) == -1) {
		if (errno == ENOPROTOOPT)
			return -1;
		/* ERANGE: len is the size needed. */
		if (errno != ERANGE ||
		    len > CONTROL_SERVER_GROUPS_MAX * sizeof(*g) ||
		    (g = malloc(len)) == NULL)
			return 0;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) == -1)
			len = 0;
	}
	for (i = 0; i < len / sizeof(*g); i++)
		if (g[i] == gid)
			found = 1;
	if (g != stack)
		free(g);
	return found;
}

/* The same from /proc/PID/status (read at once: procfs never waits for
 * a disk), for kernels without SO_PEERGROUPS. */
static int
ctl_proc_groups(pid_t pid, gid_t gid)
{
	char path[64], *text;
	size_t n = 0;
	ssize_t r;
	int fd, found;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	if ((text = malloc(CONTROL_SERVER_STATUS_MAX)) == NULL) {
		close(fd);
		return 0;
	}
	while (n < CONTROL_SERVER_STATUS_MAX &&
	    (r = read(fd, text + n, CONTROL_SERVER_STATUS_MAX - n)) > 0)
		n += (size_t)r;
	close(fd);
	found = control_server_status_has_group(text, n, gid) == 1;
	free(text);
	return found;
}

/* Root, the daemon's user, or its group (primary or supplementary). */
static int
ctl_peer_allowed(const struct control_server *s, int fd, const struct ucred *cr)
{
	int r;

	if (cr->uid == 0 || cr->uid == s->uid || cr->gid == s->gid)
		return 1;
	if ((r = ctl_peer_groups(fd, s->gid)) != -1)
		return r;
	return ctl_proc_groups(cr->pid, s->gid);
}

static void
ctl_refuse(int fd, const char *why)
{
	struct buf b;

	/* Best effort, never waiting: the socket buffer takes it. */
	buf_init(&b, CONTROL_LINE_MAX + 1);
	if (control_reply_bad(&b, why) == 0)
		(void)send(fd, b.data, b.len, MSG_DONTWAIT | MSG_NOSIGNAL);
	buf_reset(&b);
	close(fd);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct control_server *s = arg;
	struct timeval tv = { s->deps.timeout > 0 ? s->deps.timeout
		                                  : CONTROL_SERVER_TIMEOUT,
		0 };
	struct ucred cr;
	socklen_t len = sizeof(cr);
	struct ctl_conn *c;

	(void)l;
	(void)sa;
	(void)salen;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == -1) {
		log_warn("- control refused reason=peercred");
		close(fd);
		return;
	}
	if (!ctl_peer_allowed(s, fd, &cr)) {
		log_warnx("- control refused uid=%u gid=%u pid=%ld "
		          "reason=permission",
		    (unsigned)cr.uid, (unsigned)cr.gid, (long)cr.pid);
		ctl_refuse(fd, "permission denied");
		return;
	}
	if (s->nconns >= CONTROL_SERVER_CONN_MAX) {
		log_warnx("- control refused uid=%u reason=connections "
		          "connections=%zu",
		    (unsigned)cr.uid, s->nconns);
		ctl_refuse(fd, "too many connections");
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->parser = control_parser_new()) == NULL ||
	    (c->bev = bufferevent_socket_new(
	         s->deps.base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		log_warnx(
		    "- control refused uid=%u reason=memory", (unsigned)cr.uid);
		if (c != NULL)
			control_parser_free(c->parser);
		free(c);
		close(fd);
		return;
	}
	c->s = s;
	c->uid = cr.uid;
	buf_init(&c->out, CONTROL_SERVER_OUTPUT_MAX);
	TAILQ_INSERT_TAIL(&s->conns, c, entry);
	s->nconns++;
	log_debug("- control connect uid=%u gid=%u pid=%ld", (unsigned)cr.uid,
	    (unsigned)cr.gid, (long)cr.pid);
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONTROL_INPUT_MAX);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* --- the socket -------------------------------------------------------- */

/* Removes a socket file no process listens on any more.  Returns 0 (gone
 * or never there), or -1 with err set. */
static int
ctl_clear_path(const char *path, char *err, size_t errsize)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd, rc, e;

	if (lstat(path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errsize, "control_socket %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errsize,
		    "control_socket %s: exists and is not a socket", path);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errsize, "control_socket %s: socket: %s", path,
		    strerror(errno));
		return -1;
	}
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	e = errno;
	close(fd);
	if (rc == 0 || e == EAGAIN) {
		snprintf(err, errsize,
		    "control_socket %s: a process listens there (another "
		    "msgtrkd?)",
		    path);
		return -1;
	}
	if (e != ECONNREFUSED && e != ENOENT) {
		/* EACCES: not ours, and whether it is in use cannot be
		 * told; the operator decides. */
		snprintf(err, errsize,
		    "control_socket %s: a socket there that cannot be "
		    "tried (%s): remove it if no process uses it",
		    path, strerror(e));
		return -1;
	}
	if (unlink(path) == -1 && errno != ENOENT) {
		snprintf(err, errsize, "control_socket %s: stale: %s", path,
		    strerror(errno));
		return -1;
	}
	log_info("- control stale socket removed path=%s", path);
	return 0;
}

struct control_server *
control_server_new(
    const struct control_server_deps *deps, char *err, size_t errsize)
{
	struct control_server *s;
	struct sockaddr_un sun;
	struct stat st;
	size_t n = strlen(deps->path);
	int fd = -1;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errsize, "control_socket: out of memory");
		return NULL;
	}
	s->deps = *deps;
	TAILQ_INIT(&s->conns);
	s->uid = geteuid();
	s->gid = getegid();
	if (deps->path[0] != '/' || n >= sizeof(s->path)) {
		snprintf(err, errsize,
		    "control_socket %.200s: not an absolute path of at most "
		    "%zu bytes",
		    deps->path, sizeof(s->path) - 1);
		goto fail;
	}
	memcpy(s->path, deps->path, n + 1);
	s->deps.path = s->path;
	if (ctl_clear_path(s->path, err, errsize) == -1)
		goto fail;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, s->path, n);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	         0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		snprintf(err, errsize, "control_socket %s: %s", s->path,
		    strerror(errno));
		goto fail;
	}
	/* bind() made it as the umask allows (never writable by others
	 * under a sane one; a peer that connects meanwhile is checked by
	 * SO_PEERCRED anyway), now exactly 0660: owner and group. */
	if (chmod(s->path, 0660) == -1 || lstat(s->path, &st) == -1 ||
	    listen(fd, CONTROL_SERVER_BACKLOG) == -1) {
		snprintf(err, errsize, "control_socket %s: %s", s->path,
		    strerror(errno));
		unlink(s->path);
		goto fail;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	if ((s->listener = evconnlistener_new(deps->base, on_accept, s,
	         LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd)) ==
	    NULL) {
		snprintf(err, errsize, "control_socket %s: listener", s->path);
		unlink(s->path);
		goto fail;
	}
	log_info("- control listening path=%s uid=%u gid=%u", s->path,
	    (unsigned)s->uid, (unsigned)s->gid);
	return s;
fail:
	if (fd != -1)
		close(fd);
	free(s);
	return NULL;
}

void
control_server_free(struct control_server *s)
{
	struct ctl_conn *c;
	struct stat st;

	if (s == NULL)
		return;
	if (s->listener != NULL)
		evconnlistener_free(s->listener);
	while ((c = TAILQ_FIRST(&s->conns)) != NULL)
		ctl_free(c);
	/* Only our own socket: a later msgtrkd may have made a new one. */
	if (lstat(s->path, &st) == 0 && st.st_dev == s->dev &&
	    st.st_ino == s->ino)
		unlink(s->path);
	free(s);
}
