/*
 * test_control_server: the control socket's server (src/control) on a
 * real UNIX socket and a real event loop, with a stand-in for delivery
 * (delivery_flush, delivery_hold and delivery_delete are defined here;
 * the queue id says how each call goes: "missing..." ENOENT, "busy..."
 * EBUSY, "sync..." fails before the call returns, "later..." waits until
 * the test answers it, others succeed on the next loop turn).
 *
 * The client side is plain blocking sockets in the test (or a child
 * process, for peers of another user), while the loop is run in steps.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "control/control_server.h"
#include "delivery/delivery.h"
#include "msgtrk/buf.h"
#include "msgtrk/control.h"
#include "table.h"

/* --- the stand-in delivery ------------------------------------------- */

struct later {
	void (*done)(void *, int, int);
	void *arg;
};

static struct event_base *base;
static struct later laters[64];
static size_t nlaters;
static size_t calls; /* hold, release, delete and flush calls */
static int reload_fail;
static size_t reloads;

struct soon {
	void (*done)(void *, int, int);
	void *arg;
};

static void
soon_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct soon *s = arg;

	(void)fd;
	(void)ev;
	s->done(s->arg, 0, 0);
	free(s);
}

static int
stub_change(const char *qid, void (*done)(void *, int, int), void *arg)
{
	struct timeval now = { 0, 0 };
	struct soon *s;

	calls++;
	if (strncmp(qid, "missing", 7) == 0) {
		errno = ENOENT;
		return -1;
	}
	if (strncmp(qid, "busy", 4) == 0) {
		errno = EBUSY;
		return -1;
	}
	if (strncmp(qid, "sync", 4) == 0) {
		/* As delivery does when its queue write fails at once. */
		done(arg, -1, EIO);
		return 0;
	}
	if (strncmp(qid, "later", 5) == 0) {
		assert_true(nlaters < sizeof(laters) / sizeof(laters[0]));
		laters[nlaters].done = done;
		laters[nlaters++].arg = arg;
		return 0;
	}
	s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->done = done;
	s->arg = arg;
	assert_int_equal(
	    event_base_once(base, -1, EV_TIMEOUT, soon_cb, s, &now), 0);
	return 0;
}

int
delivery_flush(struct delivery *dl, const char *qid)
{
	(void)dl;
	calls++;
	if (qid == NULL)
		return 7;
	if (strncmp(qid, "missing", 7) == 0) {
		errno = ENOENT;
		return -1;
	}
	return 1;
}

int
delivery_hold(struct delivery *dl, const char *qid, int hold,
    void (*done)(void *, int, int), void *arg)
{
	(void)dl;
	(void)hold;
	return stub_change(qid, done, arg);
}

int
delivery_delete(struct delivery *dl, const char *qid,
    void (*done)(void *, int, int), void *arg)
{
	(void)dl;
	return stub_change(qid, done, arg);
}

static int
stub_reload(void *arg, char *err, size_t errsize)
{
	(void)arg;
	reloads++;
	if (reload_fail) {
		snprintf(err, errsize, "/etc/msgtrk/aliases:3: missing ':'");
		return -1;
	}
	return 0;
}

/* --- the fixture --------------------------------------------------------- */

struct fx {
	char dir[64];
	char path[96];
	struct control_server *s;
};

static struct control_server *
fx_server_timeout(struct fx *f, int timeout, char *err, size_t errsize)
{
	struct control_server_deps deps = { base, NULL, f->path, stub_reload,
		NULL, timeout };

	return control_server_new(&deps, err, errsize);
}

static struct control_server *
fx_server(struct fx *f, char *err, size_t errsize)
{
	return fx_server_timeout(f, 0, err, errsize);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-control-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	/* Other users must reach the socket (the peer checks). */
	assert_int_equal(chmod(f->dir, 0755), 0);
	snprintf(f->path, sizeof(f->path), "%s/control", f->dir);
	assert_non_null(base = event_base_new());
	nlaters = 0;
	calls = 0;
	reloads = 0;
	reload_fail = 0;
	if ((f->s = fx_server(f, err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	control_server_free(f->s);
	/* Pending one-shot events (stand-in answers) go with the base. */
	event_base_free(base);
	base = NULL;
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static int
cl_connect(const struct fx *f)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

static void
cl_send(int fd, const char *s, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = send(fd, s, n, MSG_NOSIGNAL);
		assert_true(w > 0);
		s += w;
		n -= (size_t)w;
	}
}

/* Runs the loop a few turns. */
static void
pump(void)
{
	int i;

	for (i = 0; i < 5; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

/* Reads what the server sends, running the loop, until `finals` final
 * lines ("done", "bad") arrived or the connection closed (*eof set);
 * 5 seconds at most.  finals 0: what is there after a few loop turns.
 * The text is the caller's to free. */
static char *
cl_read(int fd, int finals, int *eof)
{
	struct buf b;
	char chunk[4096];
	time_t end = time(NULL) + 5;
	ssize_t n;
	const char *p;
	int seen;

	buf_init(&b, 64 << 20);
	if (eof != NULL)
		*eof = 0;
	if (finals == 0) {
		pump();
		while ((n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT)) > 0)
			assert_int_equal(buf_add(&b, chunk, (size_t)n), 0);
		return buf_release(&b);
	}
	for (;;) {
		seen = 0;
		for (p = buf_cstr(&b); *p != '\0';) {
			if (strncmp(p, "done ", 5) == 0 ||
			    strncmp(p, "bad ", 4) == 0)
				seen++;
			p = strchr(p, '\n');
			if (p == NULL)
				break;
			p++;
		}
		if (seen >= finals && finals > 0)
			break;
		event_base_loop(base, EVLOOP_NONBLOCK);
		n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
		if (n > 0) {
			assert_int_equal(buf_add(&b, chunk, (size_t)n), 0);
			continue;
		}
		if (n == 0 || (n == -1 && errno == ECONNRESET)) {
			if (eof != NULL)
				*eof = 1;
			break;
		}
		assert_true(errno == EAGAIN);
		if (time(NULL) > end)
			fail_msg("no answer; so far: %s", buf_cstr(&b));
		usleep(1000);
	}
	return buf_release(&b);
}

static void
exchange(int fd, const char *req, int finals, const char *want)
{
	char *got;

	cl_send(fd, req, strlen(req));
	got = cl_read(fd, finals, NULL);
	assert_string_equal(got, want);
	free(got);
}

/* --- requests ------------------------------------------------------------ */

static void
test_requests(void **state)
{
	struct fx *f = *state;
	int fd = cl_connect(f);

	exchange(fd, "hold a1 missing1 busy1 sync1 b2\n", 1,
	    "ok a1\n"
	    "error missing1 no such message\n"
	    "error busy1 busy\n"
	    "error sync1 Input/output error\n"
	    "ok b2\n"
	    "done 2 3\n");
	exchange(fd, "release a\n", 1, "ok a\ndone 1 0\n");
	exchange(fd, "delete a missing\n", 1,
	    "ok a\nerror missing no such message\ndone 1 1\n");
	exchange(fd, "flush\n", 1, "done 7 0\n");
	exchange(fd, "flush a missing\n", 1,
	    "ok a\nerror missing no such message\ndone 1 1\n");
	exchange(fd, "reload\n", 1, "done 1 0\n");
	reload_fail = 1;
	exchange(
	    fd, "reload\n", 1, "done 0 1 /etc/msgtrk/aliases:3: missing ':'\n");
	assert_int_equal(reloads, 2);
	/* Every change refused at once: answered at once. */
	exchange(fd, "hold sync1 missing2\n", 1,
	    "error sync1 Input/output error\n"
	    "error missing2 no such message\n"
	    "done 0 2\n");
	/* Pipelined: answered in order, one after the other. */
	exchange(fd, "flush\nhold a\r\nreload\ndelete b\n", 4,
	    "done 7 0\nok a\ndone 1 0\ndone 0 1 /etc/msgtrk/aliases:3: "
	    "missing ':'\nok b\ndone 1 0\n");
	/* Bad lines: refused, the connection goes on. */
	exchange(fd, "HOLD a\n", 1, "bad unknown command\n");
	exchange(fd, "hold\n", 1, "bad wrong number of arguments\n");
	exchange(fd, "hold a!\n", 1, "bad malformed queue id\n");
	exchange(fd, "hold \x01\xff\n", 1, "bad control or 8-bit octet\n");
	exchange(fd, "flush\n", 1, "done 7 0\n");
	close(fd);
	pump();
}

/* A change that waits (an attempt in flight): the next request waits
 * for its answer, and a peer that leaves meanwhile costs nothing. */
static void
test_pending(void **state)
{
	struct fx *f = *state;
	int fd = cl_connect(f), eof;
	char *got;

	cl_send(fd, "hold later1 a later2\nflush\n", 27);
	pump();
	assert_int_equal(nlaters, 2);
	got = cl_read(fd, 0, &eof);
	assert_string_equal(got, ""); /* no answer yet, flush not taken */
	free(got);
	assert_int_equal(calls, 3);
	laters[1].done(laters[1].arg, 0, 0);
	pump();
	laters[0].done(laters[0].arg, -1, ENOSPC);
	got = cl_read(fd, 2, &eof);
	assert_string_equal(got,
	    "error later1 No space left on device\n"
	    "ok a\nok later2\ndone 2 1\ndone 7 0\n");
	free(got);
	/* The peer leaves while a change is pending. */
	nlaters = 0;
	cl_send(fd, "delete later3\n", 14);
	pump();
	assert_int_equal(nlaters, 1);
	close(fd);
	pump();
	laters[0].done(laters[0].arg, 0, 0);
	pump();
	/* A second one, answered only when the server is freed (teardown):
	 * nothing may leak. */
	fd = cl_connect(f);
	nlaters = 0;
	cl_send(fd, "hold later4\n", 12);
	pump();
	assert_int_equal(nlaters, 1);
	close(fd);
	pump();
}

/* Half-closed after the requests: every one is answered, then the
 * server closes. */
static void
test_half_close(void **state)
{
	struct fx *f = *state;
	int fd = cl_connect(f), eof;
	char *got;

	cl_send(fd, "hold a\nflush\n", 13);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	got = cl_read(fd, 99, &eof);
	assert_true(eof);
	assert_string_equal(got, "ok a\ndone 1 0\ndone 7 0\n");
	free(got);
	close(fd);
}

/* --- limits -------------------------------------------------------------- */

/* Idle (a timeout of 1 s here): closed; but never while a change is
 * pending, however long it takes. */
static void
test_idle(void **state)
{
	struct fx *f = *state;
	char err[256], *got;
	time_t t0;
	int fd, eof;

	control_server_free(f->s);
	if ((f->s = fx_server_timeout(f, 1, err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	fd = cl_connect(f);
	t0 = time(NULL);

	got = cl_read(fd, 99, &eof);
	assert_true(eof);
	assert_string_equal(got, "");
	assert_true(time(NULL) - t0 <= 3);
	free(got);
	close(fd);
	fd = cl_connect(f);
	cl_send(fd, "hold later1\n", 12);
	t0 = time(NULL);
	while (time(NULL) - t0 < 3) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(10000);
	}
	assert_int_equal(nlaters, 1);
	laters[0].done(laters[0].arg, 0, 0);
	got = cl_read(fd, 1, &eof);
	assert_string_equal(got, "ok later1\ndone 1 0\n");
	free(got);
	close(fd);
}

static void
test_line_too_long(void **state)
{
	struct fx *f = *state;
	char *line = malloc(CONTROL_LINE_MAX + 2), *got;
	int fd = cl_connect(f), eof;

	memset(line, 'a', CONTROL_LINE_MAX + 1);
	line[CONTROL_LINE_MAX + 1] = '\0';
	/* No LF: refused as soon as the limit is passed. */
	cl_send(fd, line, CONTROL_LINE_MAX + 1);
	got = cl_read(fd, 99, &eof);
	assert_true(eof);
	assert_string_equal(got, "bad line too long\n");
	free(got);
	free(line);
	close(fd);
	/* The server is fine. */
	fd = cl_connect(f);
	exchange(fd, "flush\n", 1, "done 7 0\n");
	close(fd);
}

static void
test_too_many_errors(void **state)
{
	struct fx *f = *state;
	struct buf b;
	char *got;
	int fd = cl_connect(f), eof, i;

	buf_init(&b, 1 << 20);
	for (i = 0; i < CONTROL_SERVER_ERRORS_MAX + 5; i++)
		buf_add(&b, "\x00\x01 nonsense\n", 12);
	cl_send(fd, b.data, b.len);
	got = cl_read(fd, 99, &eof);
	assert_true(eof);
	buf_clear(&b);
	for (i = 0; i < CONTROL_SERVER_ERRORS_MAX - 1; i++)
		buf_adds(&b, "bad NUL octet\n");
	buf_adds(&b, "bad too many errors\n");
	assert_string_equal(got, buf_cstr(&b));
	free(got);
	buf_reset(&b);
	close(fd);
}

static void
test_too_many_requests(void **state)
{
	struct fx *f = *state;
	struct buf b, want;
	char *got;
	int fd = cl_connect(f), eof, i;

	buf_init(&b, 1 << 20);
	buf_init(&want, 1 << 20);
	for (i = 0; i < CONTROL_REQUESTS_MAX + 3; i++)
		buf_adds(&b, "flush\n");
	for (i = 0; i < CONTROL_REQUESTS_MAX; i++)
		buf_adds(&want, "done 7 0\n");
	buf_adds(&want, "bad too many requests\n");
	cl_send(fd, b.data, b.len);
	got = cl_read(fd, 99999, &eof);
	assert_true(eof);
	assert_string_equal(got, buf_cstr(&want));
	assert_int_equal(calls, CONTROL_REQUESTS_MAX);
	free(got);
	buf_reset(&b);
	buf_reset(&want);
	close(fd);
}

static void
test_too_many_connections(void **state)
{
	struct fx *f = *state;
	int fds[CONTROL_SERVER_CONN_MAX], fd, eof, i;
	char *got;

	for (i = 0; i < CONTROL_SERVER_CONN_MAX; i++) {
		fds[i] = cl_connect(f);
		pump();
	}
	fd = cl_connect(f);
	got = cl_read(fd, 1, &eof);
	assert_string_equal(got, "bad too many connections\n");
	free(got);
	close(fd);
	/* Those in are served; once one leaves, another may come. */
	exchange(fds[3], "flush\n", 1, "done 7 0\n");
	close(fds[3]);
	pump();
	fds[3] = cl_connect(f);
	exchange(fds[3], "flush\n", 1, "done 7 0\n");
	for (i = 0; i < CONTROL_SERVER_CONN_MAX; i++)
		close(fds[i]);
	pump();
}

/* A peer that sends and never reads: the server stops taking its
 * requests once CONTROL_SERVER_OUTPUT_MAX octets of answers wait. */
static void
test_output_bound(void **state)
{
	struct fx *f = *state;
	struct buf b, in;
	size_t off = 0, stalled, answers = 0, scanned = 0;
	time_t end = time(NULL) + 20;
	char chunk[4096], *p;
	ssize_t w;
	int fd = cl_connect(f), i, idle = 0;

	buf_init(&b, 16 << 20);
	/* Each request answers 100 lines of about 40 octets. */
	for (i = 0; i < 300; i++) {
		int k;

		buf_adds(&b, "hold");
		for (k = 0; k < CONTROL_QIDS_MAX; k++)
			buf_addf(&b, " missing%d", k);
		buf_addc(&b, '\n');
	}
	while (off < b.len && idle < 200) {
		w = send(
		    fd, b.data + off, b.len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
			idle = 0;
		} else {
			idle++;
		}
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	pump();
	stalled = calls;
	/* Far from all of them taken. */
	assert_true(stalled < 300 * CONTROL_QIDS_MAX);
	pump();
	assert_int_equal(calls, stalled);
	/* Read: the rest is taken and answered. */
	buf_init(&in, 16 << 20);
	while (answers < 300 && time(NULL) < end) {
		w = send(
		    fd, b.data + off, b.len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0)
			off += (size_t)w;
		event_base_loop(base, EVLOOP_NONBLOCK);
		while ((w = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT)) > 0)
			assert_int_equal(buf_add(&in, chunk, (size_t)w), 0);
		/* Complete lines not looked at yet. */
		while ((p = memchr(in.data + scanned, '\n',
		            in.len - scanned)) != NULL) {
			if (strncmp(in.data + scanned, "done ", 5) == 0)
				answers++;
			scanned = (size_t)(p - in.data) + 1;
		}
	}
	assert_int_equal(answers, 300);
	assert_int_equal(calls, 300 * CONTROL_QIDS_MAX);
	buf_reset(&in);
	buf_reset(&b);
	close(fd);
}

/* --- who may connect ------------------------------------------------------ */

/* In a child: become uid/gid with the given supplementary groups,
 * connect, ask "flush", and write what happened to the pipe. */
static void
child_ask(const struct fx *f, int wfd, uid_t uid, gid_t gid,
    const gid_t *groups, size_t ngroups)
{
	struct sockaddr_un sun;
	struct timeval tv = { 5, 0 };
	char buf[256];
	size_t len;
	ssize_t n;
	int fd;

	if (setgroups(ngroups, groups) == -1 ||
	    setresgid(gid, gid, gid) == -1 || setresuid(uid, uid, uid) == -1)
		_exit(10);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		n = snprintf(buf, sizeof(buf), "connect: %s", strerror(errno));
		(void)!write(wfd, buf, (size_t)n);
		_exit(0);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)send(fd, "flush\n", 6, MSG_NOSIGNAL);
	/* One line. */
	for (len = 0; len < sizeof(buf) &&
	     (n = recv(fd, buf + len, sizeof(buf) - len, 0)) > 0;) {
		len += (size_t)n;
		if (buf[len - 1] == '\n')
			break;
	}
	(void)!write(wfd, buf, len);
	_exit(0);
}

/* Runs child_ask and the loop until the child is done; the answer. */
static char *
ask_as(const struct fx *f, uid_t uid, gid_t gid, const gid_t *groups,
    size_t ngroups)
{
	char *out = calloc(1, 512);
	time_t end = time(NULL) + 10;
	int p[2], status;
	size_t n = 0;
	ssize_t r;
	pid_t pid;

	assert_non_null(out);
	assert_int_equal(pipe(p), 0);
	if ((pid = fork()) == 0) {
		close(p[0]);
		child_ask(f, p[1], uid, gid, groups, ngroups);
	}
	assert_true(pid > 0);
	close(p[1]);
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (time(NULL) > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("child hung");
		}
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	while ((r = read(p[0], out + n, 511 - n)) > 0)
		n += (size_t)r;
	close(p[0]);
	return out;
}

static void
test_peers(void **state)
{
	struct fx *f = *state;
	const gid_t nobody = 65534, root_group = 0, other[2] = { 100, 0 };
	struct stat st;
	char *got;

	if (geteuid() != 0)
		skip();
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
	assert_int_equal(st.st_uid, geteuid());
	assert_int_equal(st.st_gid, getegid());
	/* The file mode keeps others out... */
	got = ask_as(f, 65534, nobody, &nobody, 1);
	assert_string_equal(got, "connect: Permission denied");
	free(got);
	/* ...and SO_PEERCRED too when the mode would let them in. */
	assert_int_equal(chmod(f->path, 0666), 0);
	got = ask_as(f, 65534, nobody, &nobody, 1);
	assert_string_equal(got, "bad permission denied\n");
	free(got);
	/* The daemon's group as the primary group, or among the
	 * supplementary ones (SO_PEERGROUPS): in. */
	got = ask_as(f, 65534, 0, &root_group, 1);
	assert_string_equal(got, "done 7 0\n");
	free(got);
	got = ask_as(f, 65534, nobody, other, 2);
	assert_string_equal(got, "done 7 0\n");
	free(got);
	/* Root: in. */
	got = ask_as(f, 0, nobody, &nobody, 1);
	assert_string_equal(got, "done 7 0\n");
	free(got);
	assert_int_equal(calls, 3);
}

/* --- the socket file --------------------------------------------------------- */

static void
test_socket_file(void **state)
{
	struct fx *f = *state;
	struct sockaddr_un sun;
	struct control_server *s2;
	struct stat st;
	char err[256];
	int fd;

	/* A live server there: refused, and its socket left alone. */
	assert_null(s2 = fx_server(f, err, sizeof(err)));
	assert_non_null(strstr(err, "a process listens there"));
	assert_int_equal(lstat(f->path, &st), 0);
	control_server_free(f->s);
	f->s = NULL;
	/* Freed: the socket is gone. */
	assert_int_equal(lstat(f->path, &st), -1);
	/* A stale socket (nobody listens) is replaced. */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	if ((f->s = fx_server(f, err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	fd = cl_connect(f);
	exchange(fd, "flush\n", 1, "done 7 0\n");
	close(fd);
	control_server_free(f->s);
	f->s = NULL;
	/* Not a socket: refused, the file left alone. */
	fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_null(fx_server(f, err, sizeof(err)));
	assert_non_null(strstr(err, "exists and is not a socket"));
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(unlink(f->path), 0);
	/* A socket made anew by someone else after ours is left alone when
	 * ours is freed. */
	if ((f->s = fx_server(f, err, sizeof(err))) == NULL)
		fail_msg("%s", err);
	assert_int_equal(unlink(f->path), 0);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	control_server_free(f->s);
	f->s = NULL;
	assert_int_equal(lstat(f->path, &st), 0);
	close(fd);
	/* A relative or too long path. */
	snprintf(f->path, sizeof(f->path), "control");
	assert_null(fx_server(f, err, sizeof(err)));
	assert_non_null(strstr(err, "not an absolute path"));
	snprintf(f->path, sizeof(f->path), "%s/control", f->dir);
	unlink(f->path);
}

/* --- /proc/PID/status ---------------------------------------------------- */

struct status_row {
	const char *name;
	const char *text;
	gid_t gid;
	int want;
};

static const struct status_row status_rows[] = {
	{ "found", "Name:\tx\nGroups:\t4 24 995 \nNStgid:\t1\n", 995, 1 },
	{ "first", "Groups:\t995 4\n", 995, 1 },
	{ "last", "Groups:\t4 995\n", 995, 1 },
	{ "absent", "Groups:\t4 24 9950 99\n", 995, 0 },
	{ "prefix only", "Groups:\t99\n", 995, 0 },
	{ "none", "Uid:\t0\nGroups:\t\nGid:\t995\n", 995, 0 },
	{ "zero", "Groups:\t0\n", 0, 1 },
	{ "no groups line", "Name:\tx\nUid:\t0\n", 0, -1 },
	{ "cut short", "Name:\tx\nGroups:\t4 995", 995, -1 },
	{ "garbage", "Groups:\t4 x 995\n", 995, -1 },
	{ "huge number", "Groups:\t99999999999999999999999 995\n", 995, -1 },
	{ "groupsx line", "GroupsX:\t995\n", 995, -1 },
	{ "empty", "", 0, -1 },
};

static const char *
status_name(const void *row)
{
	return ((const struct status_row *)row)->name;
}

static void
test_status_row(void **state)
{
	const struct status_row *row = *state;

	assert_int_equal(control_server_status_has_group(
	                     row->text, strlen(row->text), row->gid),
	    row->want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_half_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_line_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_too_many_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_too_many_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_too_many_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_output_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peers, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_socket_file, setup, teardown),
	};
	int failed = 0;

	signal(SIGPIPE, SIG_IGN);
	failed +=
	    TABLE_RUN("status", test_status_row, status_rows, status_name);
	failed += cmocka_run_group_tests_name("server", tests, NULL, NULL);
	return failed;
}
