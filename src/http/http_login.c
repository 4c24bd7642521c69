/*
 * http_login: logins for the pages (a form checked against auth, then a
 * server-side session) and for the API (HTTP Basic, RFC 7617, checked
 * against auth on every request), CSRF tokens, and the sender's list
 * (/sent, /api/v1/sent).
 *
 * Sessions: a token of 32 random octets (base64url) in the cookie
 * "msgtrk_session" (HttpOnly; Secure; SameSite=Strict; Path=/), kept here
 * with the login, its own CSRF token and its times; it ends after
 * HTTP_SESSION_IDLE unused or HTTP_SESSION_LIFETIME, at logout, or when
 * HTTP_SESSIONS_MAX newer ones push it out.  Tokens are compared in
 * constant time.  Every form carries a CSRF token: the session's, or
 * before login the one of the cookie "msgtrk_csrf" (same flags; the
 * double-submit pattern), and a POST whose token does not match gets
 * 403.  A failed login is delayed by auth's failure penalty (auth.h).
 *
 * Logs: "- http login id=.. addr=.. login=.. result=ok|fail|temp" (the
 * login escaped); never a password or a token.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>

#include "common/conf.h"
#include "common/json.h"
#include "common/log.h"
#include "http/http_int.h"
#include "msgtrk/b64.h"
#include "msgtrk/mtqp.h"
#include "msgtrk/str.h"
#include "msgtrk/xtext.h"
#include "store/store_reader.h"

struct http_session {
	char token[HTTP_TOKEN_LEN + 1];
	char csrf[HTTP_TOKEN_LEN + 1];
	char login[256];
	time_t created, used;
	struct http_session *next;
};

#define COOKIE_FLAGS "; Path=/; HttpOnly; Secure; SameSite=Strict"

static void
session_drop(struct http_server *s, struct http_session **pp)
{
	struct http_session *ss = *pp;

	*pp = ss->next;
	explicit_bzero(ss, sizeof(*ss));
	free(ss);
	s->nsessions--;
}

static int
session_stale(const struct http_session *ss, time_t now)
{
	return now - ss->used > HTTP_SESSION_IDLE ||
	    now - ss->created > HTTP_SESSION_LIFETIME || now < ss->created;
}

void
http_sessions_free(struct http_server *s)
{
	while (s->sessions != NULL)
		session_drop(s, &s->sessions);
}

/* The session whose token is tok (stale ones are dropped on the way). */
static struct http_session **
session_find(struct http_server *s, const char *tok)
{
	struct http_session **pp = &s->sessions;
	time_t now = time(NULL);

	while (*pp != NULL) {
		if (session_stale(*pp, now)) {
			session_drop(s, pp);
			continue;
		}
		if (http_token_equal((*pp)->token, tok))
			return pp;
		pp = &(*pp)->next;
	}
	return NULL;
}

static struct http_session *
session_new(struct http_server *s, const char *login)
{
	struct http_session *ss, **pp, **oldest = NULL;

	(void)session_find(s, "-"); /* drops the stale ones */
	if (s->nsessions >= HTTP_SESSIONS_MAX) {
		for (pp = &s->sessions; *pp != NULL; pp = &(*pp)->next)
			if (oldest == NULL || (*pp)->used < (*oldest)->used)
				oldest = pp;
		if (oldest != NULL)
			session_drop(s, oldest);
	}
	if ((ss = calloc(1, sizeof(*ss))) == NULL)
		return NULL;
	if (http_token(ss->token, sizeof(ss->token), 32) == -1 ||
	    http_token(ss->csrf, sizeof(ss->csrf), 32) == -1) {
		free(ss);
		return NULL;
	}
	str_copy(ss->login, login, sizeof(ss->login));
	ss->created = ss->used = time(NULL);
	ss->next = s->sessions;
	s->sessions = ss;
	s->nsessions++;
	return ss;
}

static int
cookie_of(struct http_req *r, const char *name, char *out, size_t size)
{
	const char *h = http_req_header(r, "Cookie");

	if (h == NULL)
		return 0;
	return http_cookie_find(h, strlen(h), name, out, size);
}

struct http_session *
http_session_get(struct http_req *r)
{
	char tok[HTTP_TOKEN_LEN + 8];
	struct http_session **pp;

	if (cookie_of(r, HTTP_SESSION_COOKIE, tok, sizeof(tok)) != 1 ||
	    strlen(tok) != HTTP_TOKEN_LEN)
		return NULL;
	if ((pp = session_find(r->s, tok)) == NULL)
		return NULL;
	(*pp)->used = time(NULL);
	return *pp;
}

const char *
http_session_login(const struct http_session *ss)
{
	return ss->login;
}

const char *
http_session_csrf(const struct http_session *ss)
{
	return ss->csrf;
}

static void
set_cookie(
    struct http_req *r, const char *name, const char *value, const char *maxage)
{
	char c[256];

	snprintf(c, sizeof(c), "%s=%s" COOKIE_FLAGS "%s%s", name, value,
	    maxage != NULL ? "; Max-Age=" : "", maxage != NULL ? maxage : "");
	http_header(r, "Set-Cookie", c);
}

int
http_csrf_anon(struct http_req *r, char *out)
{
	struct http_session *ss = http_session_get(r);
	char tok[HTTP_TOKEN_LEN + 8];

	if (ss != NULL) {
		str_copy(out, ss->csrf, HTTP_TOKEN_LEN + 1);
		return 0;
	}
	if (cookie_of(r, HTTP_CSRF_COOKIE, tok, sizeof(tok)) == 1 &&
	    strlen(tok) == HTTP_TOKEN_LEN) {
		str_copy(out, tok, HTTP_TOKEN_LEN + 1);
		return 0;
	}
	if (http_token(out, HTTP_TOKEN_LEN + 1, 32) == -1)
		return -1;
	set_cookie(r, HTTP_CSRF_COOKIE, out, NULL);
	return 0;
}

int
http_csrf_ok(struct http_req *r, const struct http_form *f)
{
	struct http_session *ss = http_session_get(r);
	const char *field = http_form_get(f, "csrf");
	char tok[HTTP_TOKEN_LEN + 8];

	if (field == NULL || strlen(field) != HTTP_TOKEN_LEN)
		return 0;
	if (ss != NULL)
		return http_token_equal(field, ss->csrf);
	if (cookie_of(r, HTTP_CSRF_COOKIE, tok, sizeof(tok)) != 1)
		return 0;
	return http_token_equal(field, tok);
}

static struct auth *
auth_of(struct http_req *r)
{
	return r->s->d.auth;
}

static void
login_log(struct http_req *r, const char *login, const char *result)
{
	char l[128];

	log_info("- http login id=%016" PRIx64 " addr=%s login=%s result=%s",
	    r->id, r->c->addrtext,
	    login != NULL ? log_escape(l, sizeof(l), login, strlen(login))
	                  : "-",
	    result);
}

static void
on_auth(void *arg, enum auth_result res, const char *login)
{
	struct http_req *r = arg;

	r->auth = NULL;
	r->after_auth(r, res, login);
}

/* Starts checking login and password (wiped by the caller after). */
static void
check(struct http_req *r, const char *login, const char *password,
    void (*after)(struct http_req *, enum auth_result, const char *))
{
	struct auth *a = auth_of(r);

	r->after_auth = after;
	str_copy(r->login, login, sizeof(r->login));
	if (a == NULL) {
		after(r, AUTH_TEMP, NULL);
		return;
	}
	if ((r->auth = auth_check(a, login, password, r->c->addrtext, r->c->tls,
	         on_auth, r)) == NULL) {
		after(r, errno == EINVAL ? AUTH_FAIL : AUTH_TEMP, NULL);
		return;
	}
	http_req_wait(r);
}

/*
 * HTTP Basic (the API)
 */

static void
basic_fail(struct http_req *r)
{
	http_header(r, "WWW-Authenticate",
	    "Basic realm=\"msgtrk\", "
	    "charset=\"UTF-8\"");
	http_error(r, 401, "login required");
}

void
http_basic(struct http_req *r,
    void (*after)(struct http_req *r, enum auth_result res, const char *login))
{
	const char *h = http_req_header(r, "Authorization");
	char dec[600], *colon;
	int n;

	if (h == NULL || str_ncasecmp(h, "Basic ", 6) != 0) {
		basic_fail(r);
		return;
	}
	h += 6;
	while (*h == ' ')
		h++;
	n = b64_decode(h, strlen(h), B64_PAD_OPTIONAL, dec, sizeof(dec) - 1);
	if (n <= 0 || memchr(dec, '\0', (size_t)n) != NULL) {
		explicit_bzero(dec, sizeof(dec));
		basic_fail(r);
		return;
	}
	dec[n] = '\0';
	if ((colon = strchr(dec, ':')) == NULL || colon == dec ||
	    colon[1] == '\0') {
		explicit_bzero(dec, sizeof(dec));
		basic_fail(r);
		return;
	}
	*colon = '\0';
	check(r, dec, colon + 1, after);
	explicit_bzero(dec, sizeof(dec));
}

/* After Basic: the login is known (or the answer is sent). */
static int
basic_ok(struct http_req *r, enum auth_result res, const char *login)
{
	if (res == AUTH_TEMP) {
		login_log(r, r->login, "temp");
		http_error(r, 503, "the login could not be checked");
		return 0;
	}
	if (res != AUTH_OK) {
		login_log(r, r->login, "fail");
		basic_fail(r);
		return 0;
	}
	str_copy(r->login, login, sizeof(r->login));
	return 1;
}

/*
 * The login form
 */

static const char *
next_of(const char *v)
{
	if (v != NULL && strcmp(v, "/admin") == 0)
		return "/admin";
	return "/sent";
}

static void
login_page(struct http_req *r, int code, const char *error)
{
	char csrf[HTTP_TOKEN_LEN + 1];
	struct buf b;
	int rc = 0;

	if (http_csrf_anon(r, csrf) == -1) {
		http_error(r, 503, "out of memory");
		return;
	}
	buf_init(&b, 65536);
	rc |= page_begin(&b, "Log in", NULL);
	rc |= buf_adds(&b, "<h1>Log in</h1>\n");
	if (error != NULL) {
		rc |= buf_adds(&b, "<p class=\"error\" role=\"alert\">");
		rc |= page_esc(&b, error);
		rc |= buf_adds(&b, "</p>\n");
	}
	rc |= buf_adds(&b,
	    "<form method=\"post\" action=\"/login\">\n"
	    "<input type=\"hidden\" name=\"csrf\" value=\"");
	rc |= page_esc(&b, csrf);
	rc |= buf_adds(&b,
	    "\">\n<input type=\"hidden\" name=\"next\" "
	    "value=\"");
	rc |= page_esc(&b, r->next[0] ? r->next : "/sent");
	rc |= buf_adds(&b,
	    "\">\n<label for=\"login\">Login</label>\n"
	    "<input type=\"text\" id=\"login\" name=\"login\" "
	    "autocomplete=\"username\" autocapitalize=\"off\">\n"
	    "<label for=\"password\">Password</label>\n"
	    "<input type=\"password\" id=\"password\" name=\"password\" "
	    "autocomplete=\"current-password\">\n"
	    "<button type=\"submit\">Log in</button>\n</form>\n");
	rc |= page_end(&b, r->s->conf->hostname);
	if (rc != 0) {
		buf_reset(&b);
		http_error(r, 500, "the page is too large");
		return;
	}
	http_respond(r, code, "text/html; charset=utf-8", &b);
}

void
http_login_page(struct http_req *r)
{
	struct http_form *q = http_req_query(r);

	if (q == NULL)
		return;
	str_copy(r->next, next_of(http_form_get(q, "next")), sizeof(r->next));
	http_form_free(q);
	login_page(r, 200, NULL);
}

static void
after_login(struct http_req *r, enum auth_result res, const char *login)
{
	struct http_session *ss;

	if (res == AUTH_TEMP) {
		login_log(r, r->login, "temp");
		login_page(r, 503,
		    "The login could not be checked now; try again later.");
		return;
	}
	if (res != AUTH_OK) {
		login_log(r, r->login, "fail");
		login_page(r, 403, "Wrong login or password.");
		return;
	}
	if ((ss = session_new(r->s, login)) == NULL) {
		http_error(r, 503, "out of memory");
		return;
	}
	login_log(r, login, "ok");
	set_cookie(r, HTTP_SESSION_COOKIE, ss->token, NULL);
	http_redirect(r, r->next);
}

void
http_login_post(struct http_req *r)
{
	const char *login, *password;

	if ((r->form = http_req_form(r)) == NULL)
		return;
	str_copy(
	    r->next, next_of(http_form_get(r->form, "next")), sizeof(r->next));
	if (!http_csrf_ok(r, r->form)) {
		login_page(r, 403,
		    "This form has expired: reload the page and try again.");
		return;
	}
	login = http_form_get(r->form, "login");
	password = http_form_get(r->form, "password");
	if (login == NULL || password == NULL || login[0] == '\0' ||
	    password[0] == '\0') {
		login_page(r, 400, "Give a login and a password.");
		return;
	}
	check(r, login, password, after_login);
	/* auth copied what it needs: the password goes now. */
	if (r->form != NULL) {
		http_form_free(r->form);
		r->form = NULL;
	}
}

void
http_logout(struct http_req *r)
{
	struct http_session *ss;
	struct http_session **pp;

	if ((r->form = http_req_form(r)) == NULL)
		return;
	if ((ss = http_session_get(r)) == NULL) {
		http_redirect(r, "/");
		return;
	}
	if (!http_csrf_ok(r, r->form)) {
		http_error(r, 403, "bad or missing CSRF token");
		return;
	}
	for (pp = &r->s->sessions; *pp != NULL; pp = &(*pp)->next)
		if (*pp == ss) {
			session_drop(r->s, pp);
			break;
		}
	set_cookie(r, HTTP_SESSION_COOKIE, "", "0");
	http_redirect(r, "/");
}

/*
 * The sender's list
 */

struct http_sent_rcpt {
	const char *address;
	const char *final_action;
	const char *status;
};

struct http_sent_msg {
	const char *envid;
	const char *secret;
	time_t submitted;
	const char *subject;
	size_t nrcpt;
	struct http_sent_rcpt *rcpts;
};

static void
sent_json(struct http_req *r, const struct http_sent_msg *m, size_t n)
{
	struct buf b;
	size_t i, k;
	int rc = 0;

	buf_init(&b, HTTP_ANSWER_MAX);
	rc |= buf_addc(&b, '[');
	for (i = 0; i < n; i++) {
		rc |= buf_adds(&b, i ? ",\n{" : "\n{");
		rc |= json_key(&b, 1, "envid");
		rc |= json_cstr(&b, m[i].envid);
		rc |= json_key(&b, 0, "secret");
		rc |= json_cstr(&b, m[i].secret);
		rc |= json_key(&b, 0, "submitted");
		rc |= json_date(&b, m[i].submitted);
		rc |= json_key(&b, 0, "subject");
		rc |= json_cstr(&b, m[i].subject);
		rc |= json_key(&b, 0, "recipients");
		rc |= buf_addc(&b, '[');
		for (k = 0; k < m[i].nrcpt; k++) {
			rc |= buf_adds(&b, k ? ", {" : "{");
			rc |= json_key(&b, 1, "address");
			rc |= json_cstr(&b, m[i].rcpts[k].address);
			rc |= json_key(&b, 0, "final_action");
			rc |= json_cstr(&b, m[i].rcpts[k].final_action);
			rc |= json_key(&b, 0, "status");
			rc |= json_cstr(&b, m[i].rcpts[k].status);
			rc |= buf_addc(&b, '}');
		}
		rc |= buf_adds(&b, "]}");
	}
	rc |= buf_adds(&b, "]\n");
	if (rc != 0) {
		buf_reset(&b);
		http_error(r, 500, "the answer is too large");
		return;
	}
	http_respond(r, 200, "application/json", &b);
}

/* A message's Track button: the tracking form, filled in (hidden) with
 * its envid (xtext, as in ENVID=), its secret and this node as the first
 * tracking server (its hostname: SRV, else port 1038, as any tracker
 * finds it).  Nothing when this node serves no MTQP. */
static int
sent_track_form(struct buf *b, const struct http_req *r,
    const struct http_session *ss, const struct http_sent_msg *m)
{
	struct buf x;
	int rc = 0;

	if (r->s->conf->n_mtqp_listen == 0 || ss == NULL)
		return 0;
	buf_init(&x, MTQP_ENVID_TEXT_MAX);
	if (xtext_encode(&x, m->envid, strlen(m->envid)) == -1 ||
	    buf_addc(&x, '\0') == -1) {
		buf_reset(&x);
		return 0;
	}
	rc |= buf_adds(b,
	    "<form method=\"post\" action=\"/track\" class=\"sent-track\">"
	    "<input type=\"hidden\" name=\"csrf\" value=\"");
	rc |= page_esc(b, ss->csrf);
	rc |= buf_adds(b, "\"><input type=\"hidden\" name=\"envid\" value=\"");
	rc |= page_esc(b, (const char *)x.data);
	rc |= buf_adds(b, "\"><input type=\"hidden\" name=\"secret\" value=\"");
	rc |= page_esc(b, m->secret);
	rc |= buf_adds(b, "\"><input type=\"hidden\" name=\"server\" value=\"");
	rc |= page_esc(b, r->s->conf->hostname);
	rc |= buf_adds(b, "\"><button type=\"submit\">Track</button></form>");
	buf_reset(&x);
	return rc;
}

static void
sent_html(struct http_req *r, const struct http_sent_msg *m, size_t n)
{
	struct http_session *ss = http_session_get(r);
	struct buf b;
	size_t i, k;
	int rc = 0;

	buf_init(&b, HTTP_ANSWER_MAX);
	rc |= page_begin(&b, "My sent mail", r->login);
	rc |= buf_adds(&b, "<h1>My sent mail</h1>\n");
	if (n == 0)
		rc |= buf_adds(&b,
		    "<p>No tracked message sent by this login "
		    "is kept here.</p>\n");
	else
		rc |= buf_adds(&b,
		    "<table>\n<tr><th>Sent</th><th>Subject"
		    "</th><th>Recipients</th><th></th></tr>\n");
	for (i = 0; i < n; i++) {
		char d[64];
		struct tm tm;

		if (gmtime_r(&m[i].submitted, &tm) == NULL ||
		    strftime(d, sizeof(d), "%Y-%m-%d %H:%M UTC", &tm) == 0)
			str_copy(d, "?", sizeof(d));
		rc |= buf_adds(&b, "<tr><td>");
		rc |= page_esc(&b, d);
		rc |= buf_adds(&b, "</td><td>");
		rc |= page_esc(&b, m[i].subject);
		rc |= buf_adds(&b, "<br><span class=\"muted\">");
		rc |= page_esc(&b, m[i].envid);
		rc |= buf_adds(&b, "</span></td><td>");
		for (k = 0; k < m[i].nrcpt; k++) {
			rc |= page_esc(&b, m[i].rcpts[k].address);
			rc |= buf_adds(&b, ": ");
			rc |= page_esc(&b, m[i].rcpts[k].final_action);
			rc |= buf_adds(&b, " ");
			rc |= page_esc(&b, m[i].rcpts[k].status);
			rc |= buf_adds(&b, "<br>");
		}
		rc |= buf_adds(&b, "</td><td>");
		rc |= sent_track_form(&b, r, ss, &m[i]);
		rc |= buf_adds(&b, "</td></tr>\n");
	}
	if (n > 0)
		rc |= buf_adds(&b, "</table>\n");
	rc |= buf_adds(&b,
	    "<form method=\"post\" action=\"/logout\">\n"
	    "<input type=\"hidden\" name=\"csrf\" value=\"");
	rc |= page_esc(&b, ss != NULL ? ss->csrf : "");
	rc |= buf_adds(&b,
	    "\">\n<button type=\"submit\">Log out</button>\n"
	    "</form>\n");
	rc |= page_end(&b, r->s->conf->hostname);
	if (rc != 0) {
		buf_reset(&b);
		http_error(r, 500, "the page is too large");
		return;
	}
	http_respond(r, 200, "text/html; charset=utf-8", &b);
}

static void
sent_answer(struct http_req *r, const struct http_sent_msg *m, size_t n)
{
	if (r->api)
		sent_json(r, m, n);
	else
		sent_html(r, m, n);
}

/*
 * The messages r->login sent with automatic tracking (the store's "sent"
 * rows, read off the loop by store_reader_list_sent), newest first, each
 * with its recipients' current final_action and status, and the secret
 * msgtrkd keeps for it (shown to that login only).  A request whose
 * connection goes first has its job cancelled by http.c.
 */
static void
on_sent(void *arg, int rc, struct store_msg *msgs, size_t n, const char *err)
{
	struct http_req *r = arg;
	struct http_sent_msg *m = NULL;
	struct http_sent_rcpt *rc_all = NULL;
	size_t i, k, nr = 0;

	r->job = NULL;
	if (rc == STORE_READER_TIMEOUT) {
		http_error(r, 504, "the store did not answer in time");
		return;
	}
	if (rc == -1) {
		log_warnx(
		    "- http sent id=%016" PRIx64 " error=\"%s\"", r->id, err);
		http_error(r, 503, "the store cannot be asked now");
		return;
	}
	for (i = 0; i < n; i++)
		nr += msgs[i].nrcpt;
	if (n > 0 &&
	    ((m = calloc(n, sizeof(*m))) == NULL ||
	        (rc_all = calloc(nr + 1, sizeof(*rc_all))) == NULL)) {
		free(m);
		store_msgs_free(msgs, n);
		http_error(r, 500, "out of memory");
		return;
	}
	for (i = 0, nr = 0; i < n; i++) {
		m[i].envid = msgs[i].envid != NULL ? msgs[i].envid : "";
		m[i].secret = msgs[i].secret != NULL ? msgs[i].secret : "";
		m[i].submitted = msgs[i].arrival;
		m[i].subject = msgs[i].subject;
		m[i].nrcpt = msgs[i].nrcpt;
		m[i].rcpts = rc_all + nr;
		for (k = 0; k < msgs[i].nrcpt; k++, nr++) {
			const struct store_rcpt *sr = &msgs[i].rcpts[k];
			const char *a = sr->orcpt != NULL ? sr->orcpt : "";

			/* "rfc822;a@b.test": the address as it was sent. */
			if (str_casestarts(a, strlen(a), "rfc822;"))
				a += 7;
			rc_all[nr].address = a;
			rc_all[nr].final_action = store_action_name(sr->action);
			rc_all[nr].status = sr->status[0] ? sr->status : NULL;
		}
	}
	sent_answer(r, m, n);
	free(rc_all);
	free(m);
	store_msgs_free(msgs, n);
}

static void
sent_lookup(struct http_req *r)
{
	struct store_reader *rd = r->s->d.reader;

	if (rd == NULL ||
	    (r->job = store_reader_list_sent(rd, r->login, HTTP_SENT_ROWS,
	         HTTP_STORE_DEADLINE, on_sent, r)) == NULL) {
		http_error(r, 503, "the store cannot be asked now");
		return;
	}
	http_req_wait(r);
}

void
http_sent_page(struct http_req *r)
{
	struct http_session *ss = http_session_get(r);

	if (ss == NULL) {
		http_redirect(r, "/login?next=/sent");
		return;
	}
	str_copy(r->login, ss->login, sizeof(r->login));
	sent_lookup(r);
}

static void
after_sent_basic(struct http_req *r, enum auth_result res, const char *login)
{
	if (basic_ok(r, res, login))
		sent_lookup(r);
}

void
http_sent_api(struct http_req *r)
{
	http_basic(r, after_sent_basic);
}

int
http_basic_admin_ok(struct http_req *r, enum auth_result res, const char *login)
{
	if (!basic_ok(r, res, login))
		return 0;
	if (!conf_is_http_admin(r->s->conf, r->login)) {
		login_log(r, r->login, "not-admin");
		http_error(r, 403, "not an operator (http_admins)");
		return 0;
	}
	return 1;
}
