/*
 * http_admin: the operator's views for http_admins: msgtrk log's search
 * of the tracking store (the query parameters envid, sender, rcpt, since,
 * status; read off the loop by store_reader_search()) and the queue
 * (queue_foreach()), as a page (login form and session) and as JSON
 * arrays (HTTP Basic) of exactly the objects msgtrk log --json and
 * msgtrk queue --json print (store_json.h, queue_json.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/conf.h"
#include "http/http_int.h"
#include "msgtrk/date.h"
#include "msgtrk/str.h"
#include "queue/queue.h"
#include "queue/queue_json.h"
#include "store/store_json.h"
#include "store/store_reader.h"

/* A query parameter's longest value. */
#define QUERY_VALUE_MAX 1000

static const char *const actions[] = { "delayed", "delivered", "transferred",
	"relayed", "expanded", "failed", NULL };

/* The search of r's query string: set in q (its strings point into r's
 * form, kept in r->form) and status.  Returns 0, or -1 with the answer
 * (400) sent. */
static int
search_of(struct http_req *r, struct store_query *q, const char **status)
{
	const char *names[] = { "envid", "sender", "rcpt", "since", "status" };
	const char *v[5];
	struct date d;
	time_t dur;
	size_t i;

	memset(q, 0, sizeof(*q));
	q->action = -1;
	*status = NULL;
	if ((r->form = http_req_query(r)) == NULL)
		return -1;
	for (i = 0; i < 5; i++) {
		v[i] = http_form_get(r->form, names[i]);
		if (v[i] != NULL && v[i][0] == '\0')
			v[i] = NULL;
		if (v[i] != NULL && strlen(v[i]) > QUERY_VALUE_MAX) {
			http_error(r, 400, "a query parameter is too long");
			return -1;
		}
	}
	q->envid = v[0];
	q->sender = v[1];
	q->rcpt = v[2];
	if (v[3] != NULL) {
		if (conf_parse_duration(v[3], &dur) == 0)
			q->since = time(NULL) - dur;
		else if (date_parse(v[3], strlen(v[3]), &d) == 0)
			q->since = d.t;
		else {
			http_error(r, 400,
			    "since: expected a duration (2h, 3d) or an RFC "
			    "5322 date");
			return -1;
		}
	}
	if (v[4] != NULL) {
		for (i = 0; actions[i] != NULL; i++)
			if (str_casecmp(v[4], actions[i]) == 0)
				break;
		if (actions[i] == NULL) {
			http_error(r, 400,
			    "status: expected delayed, delivered, "
			    "transferred, relayed, expanded or failed");
			return -1;
		}
		*status = actions[i];
	}
	return 0;
}

static int
keep(const struct store_msg *m, const char *status)
{
	return m->nrcpt == 1 &&
	    (status == NULL ||
	        strcmp(store_action_name(m->rcpts[0].action), status) == 0);
}

/* The status asked for, kept across the search (r->next is free here). */
static const char *
status_of(const struct http_req *r)
{
	return r->next[0] != '\0' ? r->next : NULL;
}

struct queue_walk {
	struct buf *b;
	int json;
	size_t n, max;
	int rc;
};

static void
queue_one(void *arg, const struct queue_msg *m)
{
	struct queue_walk *w = arg;
	char d[64];
	struct tm tm;
	size_t i;

	if (w->rc != 0 || w->n >= w->max)
		return;
	if (w->json) {
		w->rc |= buf_adds(w->b, w->n ? ",\n" : "\n");
		w->rc |= queue_json_msg(w->b, m);
	} else {
		time_t t = m->next_attempt;

		if (gmtime_r(&t, &tm) == NULL ||
		    strftime(d, sizeof(d), "%Y-%m-%d %H:%M:%S", &tm) == 0)
			str_copy(d, "-", sizeof(d));
		w->rc |= buf_adds(w->b, "<tr><td>");
		w->rc |= page_esc(w->b, m->qid);
		w->rc |= buf_adds(w->b, "</td><td>");
		w->rc |= page_esc(w->b, m->sender[0] ? m->sender : "<>");
		w->rc |= buf_adds(w->b, "</td><td>");
		for (i = 0; i < m->nrcpt && i < 20; i++) {
			w->rc |= page_esc(w->b, m->rcpts[i].addr);
			w->rc |= buf_adds(w->b, "<br>");
		}
		w->rc |= buf_addf(w->b, "</td><td>%lu%s</td><td>",
		    (unsigned long)m->attempts, m->held ? " (held)" : "");
		w->rc |= page_esc(w->b, d);
		w->rc |= buf_adds(w->b, "</td><td>");
		w->rc |= page_esc(w->b, queue_json_last_error(m));
		w->rc |= buf_adds(w->b, "</td></tr>\n");
	}
	w->n++;
}

static void
admin_html(struct http_req *r, int rc, struct store_msg *msgs, size_t n,
    const char *err)
{
	const char *status = status_of(r);
	struct queue *qu = r->s->d.queue;
	struct queue_walk w;
	struct buf b;
	size_t i, shown = 0;
	int brc = 0;
	const char *names[] = { "envid", "sender", "rcpt", "since" };

	buf_init(&b, HTTP_ANSWER_MAX);
	brc |= page_begin(&b, "Operator", r->login);
	brc |= buf_adds(&b,
	    "<h1>Tracking records</h1>\n"
	    "<form method=\"get\" action=\"/admin\">\n");
	for (i = 0; i < 4; i++) {
		brc |= buf_addf(&b,
		    "<label for=\"%s\">%s</label><input type=\"text\" "
		    "id=\"%s\" name=\"%s\" value=\"",
		    names[i], names[i], names[i], names[i]);
		brc |= page_esc(&b, http_form_get(r->form, names[i]));
		brc |= buf_adds(&b, "\">\n");
	}
	brc |= buf_adds(&b,
	    "<label for=\"status\">status</label><select "
	    "id=\"status\" name=\"status\"><option "
	    "value=\"\">any</option>");
	for (i = 0; actions[i] != NULL; i++)
		brc |= buf_addf(&b, "<option%s>%s</option>",
		    status != NULL && strcmp(status, actions[i]) == 0
		        ? " selected"
		        : "",
		    actions[i]);
	brc |= buf_adds(&b,
	    "</select>\n<button type=\"submit\">Search"
	    "</button>\n</form>\n");
	if (rc < 0) {
		brc |= buf_adds(&b,
		    "<p class=\"error\">The store did not "
		    "answer: ");
		brc |= page_esc(&b, err);
		brc |= buf_adds(&b, "</p>\n");
	} else {
		brc |= buf_adds(&b,
		    "<table>\n<tr><th>Arrival</th><th>Queue "
		    "id / envid</th><th>Recipient</th><th>"
		    "Action</th><th>Remote</th></tr>\n");
		for (i = 0; i < n && shown < HTTP_ADMIN_ROWS; i++) {
			const struct store_msg *m = &msgs[i];
			const struct store_rcpt *rc1;
			char d[64];
			struct tm tm;

			if (!keep(m, status))
				continue;
			rc1 = &m->rcpts[0];
			if (gmtime_r(&m->arrival, &tm) == NULL ||
			    strftime(d, sizeof(d), "%Y-%m-%d %H:%M:%S", &tm) ==
			        0)
				str_copy(d, "-", sizeof(d));
			brc |= buf_adds(&b, "<tr><td>");
			brc |= page_esc(&b, d);
			brc |= buf_adds(&b, "</td><td>");
			brc |= page_esc(&b, m->qid);
			brc |= buf_adds(&b, "<br><span class=\"muted\">");
			brc |= page_esc(&b, m->envid);
			brc |= buf_adds(&b, "</span></td><td>");
			brc |= page_esc(&b, rc1->orcpt);
			brc |= buf_adds(&b, "</td><td>");
			brc |= page_esc(&b, store_action_name(rc1->action));
			brc |= buf_adds(&b, " ");
			brc |= page_esc(&b, rc1->status);
			brc |= buf_adds(&b, "</td><td>");
			brc |= page_esc(&b, rc1->remote_mta);
			if (rc1->reply != NULL) {
				brc |=
				    buf_adds(&b, "<br><span class=\"muted\">");
				brc |= page_esc(&b, rc1->reply);
				brc |= buf_adds(&b, "</span>");
			}
			brc |= buf_adds(&b, "</td></tr>\n");
			shown++;
		}
		brc |= buf_addf(&b,
		    "</table>\n<p class=\"muted\">%zu shown."
		    "</p>\n",
		    shown);
	}
	brc |= buf_addf(&b,
	    "<h2>Queue (%zu)</h2>\n<table>\n<tr><th>Queue "
	    "id</th><th>Sender</th><th>Recipients</th><th>"
	    "Attempts</th><th>Next</th><th>Last error</th>"
	    "</tr>\n",
	    qu != NULL ? queue_count(qu) : 0);
	memset(&w, 0, sizeof(w));
	w.b = &b;
	w.max = HTTP_ADMIN_ROWS;
	if (qu != NULL)
		queue_foreach(qu, queue_one, &w);
	brc |= w.rc;
	brc |= buf_adds(&b, "</table>\n");
	brc |= page_end(&b, r->s->conf->hostname);
	store_msgs_free(msgs, n);
	if (brc != 0) {
		buf_reset(&b);
		http_error(r, 500, "the page is too large");
		return;
	}
	http_respond(r, 200, "text/html; charset=utf-8", &b);
}

static void
log_json(struct http_req *r, int rc, struct store_msg *msgs, size_t n,
    const char *err)
{
	const char *status = status_of(r);
	struct buf b;
	size_t i, k = 0;
	int brc = 0;

	if (rc < 0) {
		store_msgs_free(msgs, n);
		http_error(r, rc == STORE_READER_TIMEOUT ? 504 : 503, err);
		return;
	}
	buf_init(&b, HTTP_ANSWER_MAX);
	brc |= buf_addc(&b, '[');
	for (i = 0; i < n; i++) {
		if (!keep(&msgs[i], status))
			continue;
		brc |= buf_adds(&b, k++ ? ",\n" : "\n");
		brc |= store_json_rcpt(&b, &msgs[i], &msgs[i].rcpts[0]);
	}
	brc |= buf_adds(&b, "]\n");
	store_msgs_free(msgs, n);
	if (brc != 0) {
		buf_reset(&b);
		http_error(r, 500, "the answer is too large");
		return;
	}
	http_respond(r, 200, "application/json", &b);
}

static void
on_search(void *arg, int rc, struct store_msg *msgs, size_t n, const char *err)
{
	struct http_req *r = arg;

	r->job = NULL;
	if (r->api)
		log_json(r, rc, msgs, n, err);
	else
		admin_html(r, rc, msgs, n, err);
}

/* Starts the search of r's query. */
static void
search(struct http_req *r)
{
	struct store_reader *rd = r->s->d.reader;
	struct store_query q;
	const char *status;

	if (search_of(r, &q, &status) == -1)
		return;
	str_copy(r->next, status != NULL ? status : "", sizeof(r->next));
	if (rd == NULL ||
	    (r->job = store_reader_search(
	         rd, &q, HTTP_STORE_DEADLINE, on_search, r)) == NULL) {
		if (r->api)
			http_error(r, 503, "the store cannot be asked now");
		else
			admin_html(r, -1, NULL, 0, "busy");
		return;
	}
	http_req_wait(r);
}

void
http_admin_page(struct http_req *r)
{
	struct http_session *ss = http_session_get(r);

	if (ss == NULL) {
		http_redirect(r, "/login?next=/admin");
		return;
	}
	str_copy(r->login, http_session_login(ss), sizeof(r->login));
	if (!conf_is_http_admin(r->s->conf, r->login)) {
		http_error(r, 403, "not an operator (http_admins)");
		return;
	}
	search(r);
}

static void
after_log(struct http_req *r, enum auth_result res, const char *login)
{
	if (http_basic_admin_ok(r, res, login))
		search(r);
}

void
http_log_api(struct http_req *r)
{
	http_basic(r, after_log);
}

static void
after_queue(struct http_req *r, enum auth_result res, const char *login)
{
	struct queue *qu;
	struct queue_walk w;
	struct buf b;

	if (!http_basic_admin_ok(r, res, login))
		return;
	qu = r->s->d.queue;
	buf_init(&b, HTTP_ANSWER_MAX);
	memset(&w, 0, sizeof(w));
	w.b = &b;
	w.json = 1;
	w.max = STORE_READER_SEARCH_MAX;
	w.rc |= buf_addc(&b, '[');
	if (qu != NULL)
		queue_foreach(qu, queue_one, &w);
	w.rc |= buf_adds(&b, "]\n");
	if (w.rc != 0) {
		buf_reset(&b);
		http_error(r, 500, "the answer is too large");
		return;
	}
	http_respond(r, 200, "application/json", &b);
}

void
http_queue_api(struct http_req *r)
{
	http_basic(r, after_queue);
}
