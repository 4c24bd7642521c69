/*
 * msgtrk queue flush|hold|release|delete and msgtrk reload: requests to
 * msgtrkd's control socket (control_socket in its configuration), in the
 * protocol of msgtrk/control.h, one request at a time.  Queue ids are
 * sent CONTROL_QIDS_MAX a request, CONTROL_REQUESTS_MAX requests a
 * connection.
 *
 * Output: "QID: held" (released, deleted, flushed) on stdout for each
 * queue id done, "msgtrk queue: QID: why" on stderr for each refused;
 * "flushed N messages" for a flush of the whole queue; "reloaded".  Exit
 * status: 0 all done, 1 any queue id refused, a failed reload, or the
 * daemon unreachable ("msgtrk: control socket PATH: why"), 2 usage or
 * configuration.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/conf.h"
#include "msgtrk/buf.h"
#include "msgtrk/control.h"

#define CONTROL_CONF_DEFAULT "/etc/msgtrk/msgtrkd.conf"
/* How long an answer may take: a hold, release or delete of a message
 * being tried waits for that attempt to end. */
#define CONTROL_ANSWER_TIMEOUT 300

struct ctl_client {
	const char *cmd; /* "queue" or "reload", for messages */
	const char *path;
	int fd;
	unsigned requests; /* on this connection */
	struct control_parser *parser;
	struct buf out;
};

static void
ctl_usage(FILE *f)
{
	fprintf(f,
	    "usage: msgtrk queue [-c FILE] flush [QID...]\n"
	    "       msgtrk queue [-c FILE] hold|release|delete QID...\n"
	    "       msgtrk reload [-c FILE]\n");
}

int
control_is_queue_verb(int argc, char **argv)
{
	enum control_verb v;
	int i;

	/* The first word that is not an option or an option's value. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			i++;
		else if (strcmp(argv[i], "-c") == 0) {
			i++;
			continue;
		} else if (argv[i][0] == '-')
			continue;
		if (i >= argc)
			return 0;
		v = control_verb_find(argv[i]);
		return v == CONTROL_FLUSH || v == CONTROL_HOLD ||
		    v == CONTROL_RELEASE || v == CONTROL_DELETE;
	}
	return 0;
}

static const char *
ctl_conf(const char *cmd, const char *cfile, struct conf *c)
{
	char err[512];

	/* A system host name that cannot be found does not matter here. */
	if (conf_defaults(c, err, sizeof(err)) == -1 && c->data_dir == NULL) {
		cli_err(cmd, "%s", err);
		return NULL;
	}
	if (conf_load(c, cfile, err, sizeof(err)) == -1) {
		cli_err(cmd, "%s", err);
		return NULL;
	}
	return c->control_socket;
}

static void
ctl_disconnect(struct ctl_client *cl)
{
	if (cl->fd != -1)
		close(cl->fd);
	cl->fd = -1;
	control_parser_free(cl->parser);
	cl->parser = NULL;
}

static int
ctl_connect(struct ctl_client *cl)
{
	struct sockaddr_un sun;
	size_t n = strlen(cl->path);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (n >= sizeof(sun.sun_path)) {
		cli_err(NULL, "control socket %s: path too long", cl->path);
		return -1;
	}
	memcpy(sun.sun_path, cl->path, n);
	if ((cl->parser = control_parser_new()) == NULL) {
		cli_err(NULL, "out of memory");
		return -1;
	}
	if ((cl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(cl->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		cli_err(
		    NULL, "control socket %s: %s", cl->path, strerror(errno));
		ctl_disconnect(cl);
		return -1;
	}
	cl->requests = 0;
	return 0;
}

/* Waits until fd is ready for ev, at most until deadline.  Returns 0,
 * or -1 (message printed). */
static int
ctl_wait(struct ctl_client *cl, short ev, time_t deadline)
{
	struct pollfd pfd = { cl->fd, ev, 0 };
	time_t now;
	int r;

	for (;;) {
		now = time(NULL);
		if (now >= deadline) {
			cli_err(NULL,
			    "control socket %s: no answer in %d s (a change "
			    "to a message being tried is made when the "
			    "attempt ends)",
			    cl->path, CONTROL_ANSWER_TIMEOUT);
			return -1;
		}
		r = poll(&pfd, 1, (int)(deadline - now) * 1000);
		if (r > 0)
			return 0;
		if (r == -1 && errno != EINTR) {
			cli_err(NULL, "control socket %s: poll: %s", cl->path,
			    strerror(errno));
			return -1;
		}
	}
}

/* Sends cl->out.  Returns 0, -1 (message printed), or -2 if the server
 * closed the connection (its reason may be there to read). */
static int
ctl_write(struct ctl_client *cl, time_t deadline)
{
	size_t off = 0;
	ssize_t w;

	while (off < cl->out.len) {
		if (ctl_wait(cl, POLLOUT, deadline) == -1)
			return -1;
		w = send(cl->fd, cl->out.data + off, cl->out.len - off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (w == -1 && (errno == EPIPE || errno == ECONNRESET))
			return -2;
		if (w == -1) {
			cli_err(NULL, "control socket %s: %s", cl->path,
			    strerror(errno));
			return -1;
		}
		off += (size_t)w;
	}
	buf_clear(&cl->out);
	return 0;
}

/* The next reply line.  Returns 0 (r filled) or -1 (message printed). */
static int
ctl_read(struct ctl_client *cl, struct control_reply *r, time_t deadline)
{
	char chunk[4096];
	ssize_t n;
	size_t room;
	int rc;

	for (;;) {
		if ((rc = control_next_reply(cl->parser, r)) == 1)
			return 0;
		if (rc == -1) {
			cli_err(NULL, "control socket %s: malformed answer: %s",
			    cl->path,
			    control_strerror(control_parser_error(cl->parser)));
			return -1;
		}
		if (ctl_wait(cl, POLLIN, deadline) == -1)
			return -1;
		room = control_parser_room(cl->parser);
		n = recv(cl->fd, chunk,
		    room < sizeof(chunk) ? room : sizeof(chunk), MSG_DONTWAIT);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n == -1) {
			cli_err(NULL, "control socket %s: %s", cl->path,
			    strerror(errno));
			return -1;
		}
		if (n == 0) {
			cli_err(NULL,
			    "control socket %s: closed before the answer",
			    cl->path);
			return -1;
		}
		if (control_push(cl->parser, chunk, (size_t)n) == -1)
			return -1; /* not reached: room was checked */
	}
}

static const char *
ctl_past(enum control_verb v)
{
	switch (v) {
	case CONTROL_FLUSH:
		return "flushed";
	case CONTROL_HOLD:
		return "held";
	case CONTROL_RELEASE:
		return "released";
	case CONTROL_DELETE:
		return "deleted";
	default:
		return "done";
	}
}

/* One request and its answer.  *failed is set when something was
 * refused; final_out gets the final line.  Returns 0, or -1 when the
 * exchange itself failed (message printed). */
static int
ctl_request(struct ctl_client *cl, enum control_verb v, char **qids, size_t n,
    int *failed, struct control_reply *final_out)
{
	time_t deadline = time(NULL) + CONTROL_ANSWER_TIMEOUT;
	struct control_reply r;
	size_t items = 0;
	int rc;

	if (cl->fd != -1 && cl->requests >= CONTROL_REQUESTS_MAX)
		ctl_disconnect(cl);
	if (cl->fd == -1 && ctl_connect(cl) == -1)
		return -1;
	cl->requests++;
	if (control_req_format(&cl->out, v, (const char *const *)qids, n) ==
	    -1) {
		cli_err(cl->cmd, "cannot format the request");
		return -1;
	}
	if ((rc = ctl_write(cl, deadline)) == -2) {
		/* Refused at once ("bad permission denied"): say why. */
		if (ctl_read(cl, &r, deadline) == 0)
			cli_err(NULL, "control socket %s: %s", cl->path,
			    r.kind == CONTROL_R_BAD
			        ? r.text
			        : "closed before the answer");
		return -1;
	}
	if (rc == -1)
		return -1;
	for (;;) {
		if (ctl_read(cl, &r, deadline) == -1)
			return -1;
		if (r.kind == CONTROL_R_BAD) {
			cli_err(
			    NULL, "control socket %s: %s", cl->path, r.text);
			return -1;
		}
		if (r.kind == CONTROL_R_DONE)
			break;
		if (items >= n || strcmp(r.qid, qids[items]) != 0) {
			cli_err(NULL,
			    "control socket %s: an answer for %s, which was "
			    "not asked",
			    cl->path, r.qid);
			return -1;
		}
		items++;
		if (r.kind == CONTROL_R_OK)
			printf("%s: %s\n", r.qid, ctl_past(v));
		else {
			cli_err(cl->cmd, "%s: %s", r.qid, r.text);
			*failed = 1;
		}
	}
	if (items != n || (n > 0 && r.nok + r.nfail != n)) {
		cli_err(
		    NULL, "control socket %s: an incomplete answer", cl->path);
		return -1;
	}
	if (r.nfail > 0)
		*failed = 1;
	*final_out = r;
	return 0;
}

/* Runs verb over qids (none: flush all, reload) on the socket at path. */
static int
ctl_run(const char *cmd, const char *path, enum control_verb v, char **qids,
    size_t n)
{
	struct ctl_client cl;
	struct control_reply fin;
	size_t i, k;
	int failed = 0, rc = CLI_EXIT_OK;

	memset(&cl, 0, sizeof(cl));
	cl.cmd = cmd;
	cl.path = path;
	cl.fd = -1;
	buf_init(&cl.out, CONTROL_LINE_MAX + 1);
	if (n == 0) {
		if (ctl_request(&cl, v, NULL, 0, &failed, &fin) == -1)
			rc = CLI_EXIT_FAIL;
		else if (v == CONTROL_RELOAD && fin.nfail > 0) {
			cli_err(cmd, "%s",
			    fin.text[0] != '\0' ? fin.text : "failed");
			rc = CLI_EXIT_FAIL;
		} else if (v == CONTROL_RELOAD)
			printf("reloaded\n");
		else
			printf("flushed %lu message%s\n", fin.nok,
			    fin.nok == 1 ? "" : "s");
	}
	for (i = 0; i < n && rc == CLI_EXIT_OK; i += k) {
		k = n - i < CONTROL_QIDS_MAX ? n - i : CONTROL_QIDS_MAX;
		if (ctl_request(&cl, v, qids + i, k, &failed, &fin) == -1)
			rc = CLI_EXIT_FAIL;
	}
	if (failed)
		rc = CLI_EXIT_FAIL;
	ctl_disconnect(&cl);
	buf_reset(&cl.out);
	if (fflush(stdout) == EOF) {
		cli_err(cmd, "stdout: %s", strerror(errno));
		rc = CLI_EXIT_FAIL;
	}
	return rc;
}

/* Options (-c FILE, -h) anywhere; the words left in argv[*first..]. */
static int
ctl_options(
    const char *cmd, int argc, char **argv, const char **cfile, int *first)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			*cfile = optarg;
			break;
		case 'h':
			ctl_usage(stdout);
			return 1;
		default:
			cli_err(cmd, "unknown option or missing value: %s",
			    argv[optind - 1]);
			return -1;
		}
	}
	*first = optind;
	return 0;
}

int
control_queue_main(int argc, char **argv, const struct cli_opts *o)
{
	const char *cfile = CONTROL_CONF_DEFAULT, *path;
	enum control_verb v;
	struct conf c;
	int first, i, r, rc = CLI_EXIT_USAGE;

	(void)o;
	memset(&c, 0, sizeof(c));
	if ((r = ctl_options("queue", argc, argv, &cfile, &first)) != 0) {
		if (r == 1)
			return CLI_EXIT_OK;
		goto usage;
	}
	v = first < argc ? control_verb_find(argv[first]) : CONTROL_NONE;
	if (v == CONTROL_NONE || v == CONTROL_RELOAD) {
		cli_err("queue", "expected flush, hold, release or delete");
		goto usage;
	}
	if (v != CONTROL_FLUSH && first + 1 == argc) {
		cli_err("queue", "%s: which queue ids?", argv[first]);
		goto usage;
	}
	for (i = first + 1; i < argc; i++)
		if (control_qid_check(argv[i], strlen(argv[i])) == -1) {
			cli_err(
			    "queue", "\"%.64s\" is not a queue id", argv[i]);
			goto usage;
		}
	if ((path = ctl_conf("queue", cfile, &c)) == NULL)
		goto done;
	rc = ctl_run(
	    "queue", path, v, argv + first + 1, (size_t)(argc - first - 1));
	goto done;
usage:
	ctl_usage(stderr);
done:
	conf_free(&c);
	return rc;
}

int
control_reload_main(int argc, char **argv, const struct cli_opts *o)
{
	const char *cfile = CONTROL_CONF_DEFAULT, *path;
	struct conf c;
	int first, r, rc = CLI_EXIT_USAGE;

	(void)o;
	memset(&c, 0, sizeof(c));
	if ((r = ctl_options("reload", argc, argv, &cfile, &first)) != 0) {
		if (r == 1)
			return CLI_EXIT_OK;
		goto usage;
	}
	if (first != argc) {
		cli_err("reload", "unexpected argument \"%.64s\"", argv[first]);
		goto usage;
	}
	if ((path = ctl_conf("reload", cfile, &c)) == NULL)
		goto done;
	rc = ctl_run("reload", path, CONTROL_RELOAD, NULL, 0);
	goto done;
usage:
	ctl_usage(stderr);
done:
	conf_free(&c);
	return rc;
}
