/*
 * local: delivery for local_domains.  local_transport "maildir" writes
 * <mailbox_dir>/<domain lower-cased>/<localpart>/new/<unique> the
 * Maildir way (write into tmp/, fsync, link into new/, fsync new/) on a
 * worker thread, one per job, so a large message never blocks the event
 * loop; "lmtp:HOST:PORT" hands the job to relay.c's LMTP client.
 *
 * Local parts that could leave the mailbox directory (containing '/',
 * or starting with '.') fail with 5.1.3 rather than being rewritten: a
 * mailbox name must never be a path.
 */
#include <sys/stat.h>

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/conf.h"
#include "common/file.h"
#include "common/log.h"
#include "delivery/delivery.h"
#include "msgtrk/buf.h"
#include "msgtrk/str.h"
#include "msgtrkd/msgtrkd.h"
#include "queue/queue.h"

/* A message body held in memory while it is written. */
#define LOCAL_BODY_MAX ((size_t)1 << 32)

struct local_maildir {
	struct delivery_job *j;
	struct event *ev;
	pthread_t th;
	struct buf body;
	char *root; /* mailbox_dir */
	char *sender;
	char host[CONF_HOSTNAME_MAX + 1];
};

static int
local_mkdir(const char *path)
{
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

static int
local_fsync_dir(const char *path)
{
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Delivers one recipient; sets r's outcome. */
static void
local_one(struct local_maildir *lm, struct delivery_rcpt *r, unsigned seq)
{
	char dir[4096], tmp[4700], new[4700], name[512], local[300];
	char dom[256], hdr[1024];
	const char *at = strrchr(r->addr, '@');
	struct timespec ts;
	int fd = -1, n;
	const char *what;

	if (at == NULL || (size_t)(at - r->addr) >= sizeof(local) ||
	    str_copy(dom, at + 1, sizeof(dom)) >= sizeof(dom)) {
		delivery_rcpt_set(r, 550, "5.1.3", "bad mailbox address", 19);
		return;
	}
	memcpy(local, r->addr, (size_t)(at - r->addr));
	local[at - r->addr] = '\0';
	str_lower(dom);
	if (local[0] == '.' || local[0] == '\0' || strchr(local, '/') ||
	    dom[0] == '.' || strchr(dom, '/')) {
		delivery_rcpt_set(
		    r, 550, "5.1.3", "mailbox name not allowed", 24);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(name, sizeof(name), "%lld.M%ldP%dQ%u.%s", (long long)ts.tv_sec,
	    ts.tv_nsec / 1000, (int)getpid(), seq, lm->host);
	n = snprintf(dir, sizeof(dir), "%s/%s", lm->root, dom);
	what = "mkdir";
	if (n < 0 || (size_t)n >= sizeof(dir) || local_mkdir(dir) == -1)
		goto tempfail;
	n = snprintf(dir, sizeof(dir), "%s/%s/%s", lm->root, dom, local);
	if (n < 0 || (size_t)n >= sizeof(dir) - 5 || local_mkdir(dir) == -1)
		goto tempfail;
	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	snprintf(new, sizeof(new), "%s/cur", dir);
	if (local_mkdir(tmp) == -1 || local_mkdir(new) == -1)
		goto tempfail;
	snprintf(new, sizeof(new), "%s/new", dir);
	if (local_mkdir(new) == -1)
		goto tempfail;
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, name);
	snprintf(new, sizeof(new), "%s/new/%s", dir, name);
	what = "write";
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) ==
	    -1)
		goto tempfail;
	n = snprintf(hdr, sizeof(hdr),
	    "Return-Path: <%s>\r\nDelivered-To: %s\r\n", lm->sender, r->addr);
	if (n < 0 || (size_t)n >= sizeof(hdr))
		n = 0;
	if (file_write_all(fd, hdr, (size_t)n) == -1 ||
	    file_write_all(
	        fd, lm->body.data ? lm->body.data : "", lm->body.len) == -1 ||
	    fsync(fd) == -1)
		goto tempfail;
	if (close(fd) == -1) {
		fd = -1;
		goto tempfail;
	}
	fd = -1;
	what = "link";
	if (link(tmp, new) == -1)
		goto tempfail;
	unlink(tmp);
	snprintf(tmp, sizeof(tmp), "%s/new", dir);
	if (local_fsync_dir(tmp) == -1)
		goto tempfail;
	delivery_rcpt_set(r, 250, "2.0.0", "delivered to Maildir",
	    strlen("delivered to Maildir"));
	r->action = STORE_ACTION_DELIVERED;
	return;
tempfail : {
	char t[300];
	int e = errno;

	if (fd != -1) {
		close(fd);
		unlink(tmp);
	}
	n = snprintf(t, sizeof(t), "Maildir %s: %s", what, strerror(e));
	/* A full disk is temporary (RFC 3463 4.3.1); others too:
		 * the operator can fix them. */
	delivery_rcpt_set(r, 451,
	    e == ENOSPC || e == EDQUOT ? "4.3.1" : "4.3.0", t,
	    n > 0 ? (size_t)n : 0);
}
}

static void *
local_thread(void *arg)
{
	struct local_maildir *lm = arg;
	size_t i;

	if (local_mkdir(lm->root) == 0)
		for (i = 0; i < lm->j->nr; i++)
			local_one(lm, &lm->j->r[i], (unsigned)i);
	else
		for (i = 0; i < lm->j->nr; i++)
			delivery_rcpt_set(&lm->j->r[i], 451, "4.3.0",
			    "cannot create mailbox_dir", 25);
	event_active(lm->ev, EV_READ, 0);
	return NULL;
}

static void
local_maildir_free(struct local_maildir *lm)
{
	event_free(lm->ev);
	buf_reset(&lm->body);
	free(lm->root);
	free(lm->sender);
	free(lm);
}

static void
local_done(evutil_socket_t fd, short ev, void *arg)
{
	struct local_maildir *lm = arg;
	struct delivery_job *j = lm->j;

	(void)fd;
	(void)ev;
	pthread_join(lm->th, NULL);
	local_maildir_free(lm);
	j->priv = NULL;
	delivery_job_done(j);
}

static int
local_is_lmtp(const struct conf *c)
{
	return c->local_transport != NULL &&
	    strncmp(c->local_transport, "lmtp:", 5) == 0;
}

int
local_start(struct delivery_job *j)
{
	struct msgtrkd *d = delivery_daemon(j->dl);
	const struct conf *c = d->conf;
	struct local_maildir *lm;

	if (local_is_lmtp(c)) {
		char host[300];
		const char *p = c->local_transport + 5, *colon;
		char *end;
		unsigned long port;

		colon = strrchr(p, ':');
		if (colon == NULL || (size_t)(colon - p) >= sizeof(host)) {
			snprintf(j->error, sizeof(j->error),
			    "local_transport %s: no port", c->local_transport);
			return -1;
		}
		memcpy(host, p, (size_t)(colon - p));
		host[colon - p] = '\0';
		errno = 0;
		port = strtoul(colon + 1, &end, 10);
		if (*end != '\0' || port == 0 || port > 65535 || errno) {
			snprintf(j->error, sizeof(j->error),
			    "local_transport %s: bad port", c->local_transport);
			return -1;
		}
		return relay_start_lmtp(j, host, (uint16_t)port);
	}
	if ((lm = calloc(1, sizeof(*lm))) == NULL ||
	    (lm->root = strdup(c->mailbox_dir)) == NULL ||
	    (lm->sender = strdup(j->m->sender)) == NULL)
		fatal("local");
	lm->j = j;
	str_copy(lm->host, c->hostname, sizeof(lm->host));
	buf_init(&lm->body, LOCAL_BODY_MAX);
	/* The queue belongs to the loop thread: read here, write there. */
	if (queue_read_body(d->queue, j->m, &lm->body) == -1) {
		snprintf(j->error, sizeof(j->error),
		    "cannot read the queued body: %s", strerror(errno));
		goto fail;
	}
	if ((lm->ev = event_new(d->base, -1, 0, local_done, lm)) == NULL)
		goto fail;
	j->priv = lm;
	if (pthread_create(&lm->th, NULL, local_thread, lm) != 0) {
		snprintf(j->error, sizeof(j->error), "cannot start a thread");
		j->priv = NULL;
		goto fail;
	}
	return 0;
fail:
	if (lm->ev != NULL)
		event_free(lm->ev);
	lm->ev = NULL;
	buf_reset(&lm->body);
	free(lm->root);
	free(lm->sender);
	free(lm);
	return -1;
}

int
local_abort(struct delivery_job *j)
{
	if (local_is_lmtp(delivery_daemon(j->dl)->conf)) {
		relay_abort(j);
		return 0;
	}
	return j->priv != NULL;
}

void
local_join(struct delivery_job *j)
{
	struct local_maildir *lm = j->priv;

	if (!j->local || lm == NULL ||
	    local_is_lmtp(delivery_daemon(j->dl)->conf))
		return;
	pthread_join(lm->th, NULL);
	local_maildir_free(lm);
	j->priv = NULL;
}
