/*
 * local: the Maildir transport for local_domains (LMTP is relay.c's).
 * Each recipient's message is written the Maildir way: into tmp/, fsync,
 * link into new/, fsync new/, under
 * <mailbox_dir>/<domain lower-cased>/<localpart>/.  The files hold LF line
 * ends, as every MDA writes them (Postfix local, Dovecot, Exim): the
 * queue keeps SMTP's CRLF.
 *
 * Jobs run on the delivery's fixed pool of DELIVERY_MAILDIR_THREADS
 * threads; the body is read from the journal there too, a piece at a
 * time, so neither the loop nor memory ever holds a whole message.  The
 * readers are opened (and their segments pinned) on the loop before the
 * job is handed over, and closed there after.
 *
 * Local parts that could leave the mailbox directory (containing '/',
 * or starting with '.') fail with 5.1.3 rather than being rewritten: a
 * mailbox name must never be a path.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/conf.h"
#include "common/file.h"
#include "common/log.h"
#include "common/workers.h"
#include "delivery/delivery_int.h"
#include "msgtrk/buf.h"
#include "msgtrk/str.h"
#include "queue/queue.h"

struct local_maildir {
	struct delivery_job *j;
	struct queue *q;
	struct queue_body_reader **rd; /* one per recipient */
	struct workers_job *wj;
	char *root; /* mailbox_dir */
	char *sender;
	char host[CONF_HOSTNAME_MAX + 1];
	unsigned int seq; /* Maildir name uniqueness within the process */
};

static unsigned int local_seq;

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

/* Writes the body from rd with LF line ends: every CRLF becomes LF (a CR
 * not followed by LF stays, although DATA refuses bare CRs anyway).  A CR
 * at the end of one piece is held until the next shows what follows. */
static int
local_write_body(int fd, struct queue_body_reader *rd)
{
	struct buf piece, out;
	int rc, held_cr = 0, ret = -1;

	buf_init(&piece, QUEUE_CHUNK_SIZE);
	buf_init(&out, QUEUE_CHUNK_SIZE + 1);
	while ((rc = queue_body_next(rd, &piece)) == 1) {
		const char *p = piece.data, *e = p + piece.len;

		buf_clear(&out);
		if (held_cr && p < e && *p != '\n' &&
		    buf_addc(&out, '\r') == -1)
			goto done;
		held_cr = 0;
		for (; p < e; p++) {
			if (*p == '\r') {
				if (p + 1 == e) {
					held_cr = 1;
					break;
				}
				if (p[1] == '\n')
					continue;
			}
			if (buf_addc(&out, *p) == -1)
				goto done;
		}
		if (file_write_all(fd, out.data ? out.data : "", out.len) == -1)
			goto done;
		buf_clear(&piece);
	}
	if (rc == -1)
		goto done;
	if (held_cr && file_write_all(fd, "\r", 1) == -1)
		goto done;
	ret = 0;
done:
	buf_reset(&piece);
	buf_reset(&out);
	return ret;
}

/* Delivers one recipient; sets r's outcome. */
static void
local_one(struct local_maildir *lm, struct delivery_rcpt *r,
    struct queue_body_reader *rd, unsigned int seq)
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
	n = snprintf(hdr, sizeof(hdr), "Return-Path: <%s>\nDelivered-To: %s\n",
	    lm->sender, r->addr);
	if (n < 0 || (size_t)n >= sizeof(hdr))
		n = 0;
	if (file_write_all(fd, hdr, (size_t)n) == -1 ||
	    local_write_body(fd, rd) == -1 || fsync(fd) == -1)
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

/* On a pool thread: every recipient of the job. */
static void
local_run(void *ctx, void *arg)
{
	struct local_maildir *lm = arg;
	size_t i;

	(void)ctx;
	if (local_mkdir(lm->root) == 0)
		for (i = 0; i < lm->j->nr; i++)
			local_one(lm, &lm->j->r[i], lm->rd[i],
			    lm->seq + (unsigned int)i);
	else
		for (i = 0; i < lm->j->nr; i++)
			delivery_rcpt_set(&lm->j->r[i], 451, "4.3.0",
			    "cannot create mailbox_dir", 25);
}

static void
local_free(struct local_maildir *lm)
{
	size_t i;

	for (i = 0; lm->rd != NULL && i < lm->j->nr; i++)
		queue_body_close(lm->rd[i]);
	free(lm->rd);
	free(lm->root);
	free(lm->sender);
	free(lm);
}

/* On the loop: the job ended (or the pool stopped before it ran). */
static void
local_done(void *arg, enum workers_status st)
{
	struct local_maildir *lm = arg;
	struct delivery_job *j = lm->j;

	if (st == WORKERS_STOPPED)
		j->aborted = 1;
	local_free(lm);
	j->priv = NULL;
	delivery_job_done(j);
}

static int
local_start(struct delivery_job *j)
{
	const struct delivery_deps *deps = delivery_deps(j->dl);
	const struct conf *c = deps->conf;
	struct local_maildir *lm;
	size_t i;

	if ((lm = calloc(1, sizeof(*lm))) == NULL ||
	    (lm->rd = calloc(j->nr, sizeof(*lm->rd))) == NULL ||
	    (lm->root = strdup(c->mailbox_dir)) == NULL ||
	    (lm->sender = strdup(j->m->sender)) == NULL)
		fatal("local");
	lm->j = j;
	lm->q = deps->queue;
	lm->seq = local_seq;
	local_seq += (unsigned int)j->nr;
	str_copy(lm->host, c->hostname, sizeof(lm->host));
	for (i = 0; i < j->nr; i++)
		if ((lm->rd[i] = queue_body_open(deps->queue, j->m)) == NULL) {
			snprintf(j->error, sizeof(j->error),
			    "cannot read the queued body: %s", strerror(errno));
			goto fail;
		}
	j->priv = lm;
	if ((lm->wj = workers_submit(delivery_maildir_pool(j->dl), local_run,
	         local_done, NULL, lm, 0)) == NULL) {
		snprintf(j->error, sizeof(j->error), "Maildir writers: %s",
		    strerror(errno));
		j->priv = NULL;
		goto fail;
	}
	return 0;
fail:
	local_free(lm);
	return -1;
}

/* A job not yet running is withdrawn; a write under way finishes. */
static void
local_abort(struct delivery_job *j)
{
	(void)j;
}

const struct transport transport_maildir = {
	.name = "maildir",
	.start = local_start,
	.abort = local_abort,
};
