/*
 * wire_http: the HTTP server's inputs at start (http.h's struct
 * http_deps) from the rest of the daemon: the counters of /metrics come
 * from the SMTP and MTQP servers and delivery, and /healthz asks the
 * queue.
 */
#include <sys/statvfs.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/conf.h"
#include "delivery/delivery.h"
#include "http/http.h"
#include "msgtrkd/msgtrkd.h"
#include "msgtrkd/wire.h"
#include "mtqp/mtqp_server.h"
#include "queue/queue.h"
#include "smtp/smtp.h"

static void
wire_smtp_stats(void *arg, struct smtp_server_stats *out)
{
	struct msgtrkd *d = arg;

	smtp_server_stats(d->smtp, out);
}

static void
wire_mtqp_stats(void *arg, struct mtqp_server_stats *out)
{
	struct msgtrkd *d = arg;

	mtqp_server_stats(d->mtqp, out);
}

static void
wire_delivery_stats(void *arg, struct delivery_stats *out)
{
	struct msgtrkd *d = arg;

	memset(out, 0, sizeof(*out));
	if (d->delivery != NULL)
		delivery_stats(d->delivery, out);
}

/* The queue and the store work: the journal's directory is writable and
 * its file system has room, and the store keeps up with the journal. */
static int
wire_healthy(void *arg, char *why, size_t whysize)
{
	struct msgtrkd *d = arg;
	char path[4096];
	struct statvfs sv;

	if (d->queue == NULL || d->stopping) {
		snprintf(
		    why, whysize, "%s", d->stopping ? "stopping" : "starting");
		return 0;
	}
	snprintf(path, sizeof(path), "%s/queue", d->conf->data_dir);
	if (faccessat(AT_FDCWD, path, W_OK | X_OK, AT_EACCESS) == -1) {
		snprintf(why, whysize, "journal not writable");
		return 0;
	}
	if (statvfs(path, &sv) == 0 && sv.f_bavail == 0) {
		snprintf(why, whysize, "journal file system full");
		return 0;
	}
	if (queue_store_failed(d->queue)) {
		snprintf(why, whysize, "tracking store failing");
		return 0;
	}
	return 1;
}

void
wire_http_start(struct msgtrkd *d, struct http_server *s, struct auth *auth)
{
	struct http_deps deps;

	memset(&deps, 0, sizeof(deps));
	deps.tls_client = d->tls_client;
	deps.dns = d->dns;
	deps.queue = d->queue;
	deps.reader = d->reader;
	deps.auth = auth;
	deps.smtp_stats = wire_smtp_stats;
	deps.mtqp_stats = wire_mtqp_stats;
	deps.delivery_stats = wire_delivery_stats;
	deps.healthy = wire_healthy;
	deps.arg = d;
	http_server_start(s, &deps);
}
