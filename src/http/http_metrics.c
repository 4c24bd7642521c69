/*
 * http_metrics: GET /metrics in the Prometheus text exposition format
 * 0.0.4 (every family with # HELP and # TYPE, counters ending in _total,
 * the commit latency as a histogram with cumulative buckets, _sum and
 * _count), readable from metrics_networks only (403 otherwise); and GET
 * /healthz.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/conf.h"
#include "delivery/delivery.h"
#include "http/http_int.h"
#include "mtqp/mtqp_proto.h"
#include "mtqp/mtqp_server.h"
#include "queue/queue.h"
#include "smtp/smtp.h"
#include "store/store.h"

static int
family(struct buf *b, const char *name, const char *type, const char *help)
{
	return buf_addf(
	    b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int
metric(struct buf *b, const char *name, const char *type, const char *help,
    unsigned long long v)
{
	int rc = family(b, name, type, help);

	return rc | buf_addf(b, "%s %llu\n", name, v);
}

void
http_metrics(struct http_req *r)
{
	static const char *const classes[] = { "2xx", "3xx", "4xx", "5xx" };
	static const char *const hclasses[] = { "1xx", "2xx", "3xx", "4xx",
		"5xx" };
	struct http_server *s = r->s;
	struct queue *q = s->d.queue;
	struct smtp_server_stats ss;
	struct mtqp_server_stats ms;
	struct delivery_stats ds;
	struct queue_stats qs;
	unsigned long long cum = 0;
	time_t oldest;
	struct buf b;
	int rc = 0, i;

	if (!conf_nets_match(s->conf->metrics_networks,
	        s->conf->n_metrics_networks,
	        (const struct sockaddr *)&r->c->addr)) {
		http_error(r, 403, "not from metrics_networks");
		return;
	}
	memset(&ss, 0, sizeof(ss));
	memset(&ms, 0, sizeof(ms));
	memset(&ds, 0, sizeof(ds));
	memset(&qs, 0, sizeof(qs));
	if (s->d.smtp_stats != NULL)
		s->d.smtp_stats(s->d.arg, &ss);
	if (s->d.mtqp_stats != NULL)
		s->d.mtqp_stats(s->d.arg, &ms);
	if (s->d.delivery_stats != NULL)
		s->d.delivery_stats(s->d.arg, &ds);
	if (q != NULL)
		queue_stats(q, &qs);
	buf_init(&b, 1024 * 1024);

	rc |= metric(&b, "msgtrk_smtp_sessions_open", "gauge",
	    "SMTP connections open.", ss.sessions_open);
	rc |= metric(&b, "msgtrk_smtp_sessions_total", "counter",
	    "SMTP connections accepted within the caps.", ss.sessions);
	rc |= metric(&b, "msgtrk_smtp_messages_accepted_total", "counter",
	    "Messages made durable and answered 250 after DATA.", ss.accepted);
	rc |= family(&b, "msgtrk_smtp_replies_total", "counter",
	    "SMTP replies sent, by code class.");
	for (i = 0; i < 4; i++)
		rc |= buf_addf(&b,
		    "msgtrk_smtp_replies_total{class=\"%s\"} "
		    "%llu\n",
		    classes[i], (unsigned long long)ss.replies[i]);

	rc |= metric(&b, "msgtrk_mtqp_sessions_open", "gauge",
	    "MTQP connections open.", ms.sessions_open);
	rc |= family(&b, "msgtrk_mtqp_track_total", "counter",
	    "MTQP TRACK answers, by result.");
	for (i = 0; i < MTQP_TRACK_RESULTS; i++)
		rc |= buf_addf(&b,
		    "msgtrk_mtqp_track_total{result=\"%s\"} "
		    "%llu\n",
		    mtqp_track_result_name((enum mtqp_track_result)i),
		    (unsigned long long)ms.track[i]);

	rc |= family(&b, "msgtrk_delivery_outcomes_total", "counter",
	    "Delivery attempt outcomes per recipient, by RFC 3886 action.");
	for (i = STORE_ACTION_DELAYED; i <= STORE_ACTION_FAILED; i++)
		rc |= buf_addf(&b,
		    "msgtrk_delivery_outcomes_total{action=\"%s\"} %llu\n",
		    store_action_name((enum store_action)i),
		    (unsigned long long)ds.outcomes[i]);
	rc |= metric(&b, "msgtrk_delivery_attempts_total", "counter",
	    "Delivery attempts that reached an outcome.", ds.attempts);
	rc |= metric(&b, "msgtrk_delivery_dsns_total", "counter",
	    "Delivery status notifications queued.", ds.dsns);
	rc |= metric(&b, "msgtrk_delivery_finished_total", "counter",
	    "Messages that left the queue, every recipient final.",
	    ds.finished);

	rc |= metric(&b, "msgtrk_queue_messages", "gauge",
	    "Messages in the queue.", q != NULL ? queue_count(q) : 0);
	oldest = q != NULL ? queue_oldest_arrival(q) : 0;
	rc |= metric(&b, "msgtrk_queue_oldest_age_seconds", "gauge",
	    "Age of the oldest queued message (0: none).",
	    oldest != 0 && time(NULL) > oldest
	        ? (unsigned long long)(time(NULL) - oldest)
	        : 0);
	rc |= metric(&b, "msgtrk_store_lag_seconds", "gauge",
	    "Seconds the tracking store has been behind the journal.",
	    q != NULL ? (unsigned long long)queue_store_lag(q) : 0);
	rc |= metric(&b, "msgtrk_store_failed", "gauge",
	    "1 while the tracking store cannot keep up (MTRK mail is "
	    "refused).",
	    q != NULL ? (unsigned long long)queue_store_failed(q) : 0);
	rc |= metric(&b, "msgtrk_queue_records_total", "counter",
	    "Journal records appended.", qs.records);
	rc |= metric(&b, "msgtrk_queue_syncs_total", "counter",
	    "Journal fdatasyncs.", qs.syncs);
	rc |= metric(&b, "msgtrk_queue_written_bytes_total", "counter",
	    "Octets appended to the journal.", qs.written);
	rc |= metric(&b, "msgtrk_store_applied_total", "counter",
	    "Journal records the tracking store applied.", qs.applied);
	rc |= metric(&b, "msgtrk_store_batches_failed_total", "counter",
	    "Tracking store batches that failed.", qs.store_batches_failed);
	rc |= family(&b, "msgtrk_queue_commit_seconds", "histogram",
	    "Time from a queue request to its durable answer.");
	for (i = 0; i < QUEUE_LATENCY_BUCKETS - 1; i++) {
		cum += qs.commit_buckets[i];
		rc |= buf_addf(&b,
		    "msgtrk_queue_commit_seconds_bucket{le=\"%g\"} %llu\n",
		    (double)queue_latency_bounds_us[i] / 1e6, cum);
	}
	cum += qs.commit_buckets[QUEUE_LATENCY_BUCKETS - 1];
	rc |= buf_addf(&b,
	    "msgtrk_queue_commit_seconds_bucket{le=\"+Inf\"} %llu\n"
	    "msgtrk_queue_commit_seconds_sum %.6f\n"
	    "msgtrk_queue_commit_seconds_count %llu\n",
	    cum, (double)qs.commit_us / 1e6, (unsigned long long)qs.commits);

	rc |= family(&b, "msgtrk_http_responses_total", "counter",
	    "HTTP answers sent, by status class.");
	for (i = 0; i < 5; i++)
		rc |= buf_addf(&b,
		    "msgtrk_http_responses_total{class=\"%s\"} %llu\n",
		    hclasses[i], (unsigned long long)s->answers[i]);
	rc |= family(&b, "msgtrk_http_trails_total", "counter",
	    "Trails the HTTP server was asked to follow, by outcome.");
	rc |= buf_addf(&b,
	    "msgtrk_http_trails_total{result=\"ok\"} %llu\n"
	    "msgtrk_http_trails_total{result=\"failed\"} %llu\n"
	    "msgtrk_http_trails_total{result=\"refused\"} %llu\n",
	    (unsigned long long)s->trails_ok,
	    (unsigned long long)s->trails_failed,
	    (unsigned long long)s->trails_refused);
	rc |= metric(&b, "msgtrk_http_trails_running", "gauge",
	    "Trails being followed now.", s->ntrails);
	if (rc != 0) {
		buf_reset(&b);
		http_error(r, 500, "metrics too large");
		return;
	}
	http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

void
http_healthz(struct http_req *r)
{
	struct http_server *s = r->s;
	char why[256] = "";
	struct buf b;

	buf_init(&b, 1024);
	if (s->d.healthy != NULL && !s->d.healthy(s->d.arg, why, sizeof(why))) {
		(void)buf_addf(&b, "unavailable: %s\n", why);
		http_respond(r, 503, "text/plain; charset=utf-8", &b);
		return;
	}
	(void)buf_adds(&b, "ok\n");
	http_respond(r, 200, "text/plain; charset=utf-8", &b);
}
