/*
 * test_smtp_session: the SMTP session state machine (src/smtp/
 * smtp_session.c) driven without sockets: a table of transcripts (client
 * input, the replies it gets), fed whole and, where the result may not
 * depend on how input arrives, in every split (tests/unit/table.h).  The
 * hooks are the test's: recipients checked with mailbox_name_ok() and a
 * list of unknown users, a submit that completes at once (or later, or
 * fails).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "table.h"

#include "common/conf.h"
#include "common/mailbox.h"
#include "msgtrk/buf.h"
#include "msgtrk/envid.h"
#include "msgtrk/mtrk.h"
#include "queue/queue.h"
#include "smtp/smtp.h"
#include "smtp/smtp_session.h"

#define GREETING "220 mx.test ESMTP msgtrk\r\n"
#define EHLO_REPLY \
	"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1048576\r\n" \
	"250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n"
#define EHLO_TLS EHLO_REPLY "250-MTRK\r\n250 STARTTLS\r\n"
#define EHLO_NOTLS EHLO_REPLY "250 MTRK\r\n"
/* A submission listener inside TLS. */
#define EHLO_AUTH EHLO_REPLY "250-AUTH PLAIN LOGIN\r\n250 MTRK\r\n"
#define AUTH_OK "235 2.7.0 Authentication successful\r\n"
#define AUTH_FAIL "535 5.7.8 Error: authentication credentials invalid\r\n"
#define PLAIN_ALICE "AGFsaWNlAHNlY3JldA==" /* \0alice\0secret */
#define PLAIN_WRONG "AGFsaWNlAHdyb25n" /* \0alice\0wrong */
#define LOGIN_USER "334 VXNlcm5hbWU6\r\n"
#define LOGIN_PASS "334 UGFzc3dvcmQ6\r\n"
#define QUEUED "250 2.0.0 Ok: queued as 0123456789abcdef\r\n"
#define OK_MAIL "250 2.1.0 Ok\r\n"
#define OK_RCPT "250 2.1.5 Ok\r\n"
#define GO_DATA "354 End data with <CR><LF>.<CR><LF>\r\n"
#define CERT "VheLhqV/rCKJmplkGFwsyW59pYk"

/* --- the test's daemon --------------------------------------------- */

enum submit_mode { SUBMIT_NOW, SUBMIT_LATER, SUBMIT_ENOSPC, SUBMIT_REFUSE };

static struct conf conf;
static struct {
	int store_failed;
	enum submit_mode mode;
	struct buf body; /* the last message submitted, as the queue got it */
	smtp_submit_done done; /* SUBMIT_LATER: the pending completion */
	void *done_arg;
	struct queue_msg *pending;
	int woken;
	size_t queued;
	/* the last message submitted: what the submission added */
	int mtrk;
	char certifier[32], envid[128], login[64], secret[256], subject[256];
} t;

/* The test's authentication backend: asynchronous like src/auth (the
 * answer comes when sess_run finds the session waiting).  "secret" is
 * the password, "temp" a backend that is down; the canonical login is
 * the lower-cased one (as Dovecot's). */
static struct {
	int pending;
	smtp_auth_done done;
	void *done_arg;
	char login[256], password[256];
	int started, cancelled;
} ta;

static void *
hook_auth_start(void *arg, const char *login, const char *password,
    const char *client_addr, smtp_auth_done done, void *done_arg)
{
	(void)arg;
	assert_non_null(client_addr);
	assert_int_equal(ta.pending, 0);
	snprintf(ta.login, sizeof(ta.login), "%s", login);
	snprintf(ta.password, sizeof(ta.password), "%s", password);
	ta.pending = 1;
	ta.done = done;
	ta.done_arg = done_arg;
	ta.started++;
	return &ta;
}

static void
hook_auth_cancel(void *arg, void *req)
{
	(void)arg;
	assert_ptr_equal(req, &ta);
	ta.pending = 0;
	ta.cancelled++;
}

/* Answers the check in flight. */
static void
auth_answer(void)
{
	char canon[256];
	size_t i;

	ta.pending = 0;
	for (i = 0; ta.login[i] != '\0' && i < sizeof(canon) - 1; i++)
		canon[i] = (char)(ta.login[i] >= 'A' && ta.login[i] <= 'Z'
		        ? ta.login[i] + 32
		        : ta.login[i]);
	canon[i] = '\0';
	if (strcmp(ta.password, "secret") == 0)
		ta.done(ta.done_arg, SMTP_AUTH_OK, canon);
	else if (strcmp(ta.password, "temp") == 0)
		ta.done(ta.done_arg, SMTP_AUTH_TEMP, NULL);
	else
		ta.done(ta.done_arg, SMTP_AUTH_FAIL, NULL);
}

/* sender_logins: a login may use login@any, <>, and alice also
 * shared@local.test. */
static int
hook_sender_allowed(void *arg, const char *login, const char *from)
{
	size_t n = strlen(login);

	(void)arg;
	if (from[0] == '\0' || (strncmp(from, login, n) == 0 && from[n] == '@'))
		return 1;
	return strcmp(login, "alice") == 0 &&
	    strcmp(from, "shared@local.test") == 0;
}

static void
msg_free(struct queue_msg *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nrcpt; i++) {
		free(m->rcpts[i].addr);
		free(m->rcpts[i].orcpt_raw);
		free(m->rcpts[i].track.orcpt);
		free(m->rcpts[i].track.final_rcpt);
	}
	free(m->rcpts);
	free(m->sender);
	free(m->envid_raw);
	free(m->envid);
	free(m->reporting_mta);
	free(m->helo);
	free(m->client);
	free(m->login);
	free(m->secret);
	free(m->subject);
	free(m);
}

static enum smtp_rcpt_check
hook_local_rcpt(void *arg, const char *addr)
{
	(void)arg;
	if (!mailbox_name_ok(addr))
		return SMTP_RCPT_NOT_ALLOWED;
	if (strncmp(addr, "unknown@", 8) == 0)
		return SMTP_RCPT_UNKNOWN;
	return SMTP_RCPT_OK;
}

static int
hook_store_failed(void *arg)
{
	(void)arg;
	return t.store_failed;
}

static void
hook_new_id(void *arg, char *qid)
{
	(void)arg;
	strcpy(qid, "0123456789abcdef");
}

/* A spool as the queue's behaves (smtp_spool_ops): content moves out of
 * its buffer a chunk at a time; busy after `busy_at` chunks until the test
 * says it wrote them; `fail` makes it fail with that errno. */
#define TSPOOL_CHUNK 4096
struct tspool {
	struct buf buf; /* what the session appends to */
	struct buf all; /* what was "written" */
	int chunks, busy;
	void (*ready)(void *);
	void *ready_arg;
	int err;
};
static struct {
	int busy_at; /* chunks before busy (0: never) */
	int fail; /* errno to fail with at the first push, or 0 */
	struct tspool *open; /* the last one opened */
	int closed; /* spools abandoned */
} ts;

static void *
ts_open(void *arg)
{
	struct tspool *sp = calloc(1, sizeof(*sp));

	(void)arg;
	assert_non_null(sp);
	buf_init(&sp->buf, 1 << 20);
	buf_init(&sp->all, 1 << 26);
	ts.open = sp;
	return sp;
}

static struct buf *
ts_buf(void *p)
{
	return &((struct tspool *)p)->buf;
}

static int
ts_push(void *p)
{
	struct tspool *sp = p;

	if (ts.fail != 0 && sp->err == 0)
		sp->err = ts.fail;
	if (sp->err != 0) {
		buf_clear(&sp->buf);
		return -1;
	}
	while (sp->buf.len >= TSPOOL_CHUNK && !sp->busy) {
		assert_int_equal(
		    buf_add(&sp->all, sp->buf.data, TSPOOL_CHUNK), 0);
		buf_consume(&sp->buf, TSPOOL_CHUNK);
		if (++sp->chunks == ts.busy_at)
			sp->busy = 1;
	}
	return 0;
}

static int
ts_busy(void *p)
{
	return ((struct tspool *)p)->busy;
}

static void
ts_on_ready(void *p, void (*ready)(void *), void *arg)
{
	struct tspool *sp = p;

	sp->ready = ready;
	sp->ready_arg = arg;
}

static int
ts_error(void *p)
{
	return ((struct tspool *)p)->err;
}

static void
ts_free(struct tspool *sp)
{
	buf_reset(&sp->buf);
	buf_reset(&sp->all);
	if (ts.open == sp)
		ts.open = NULL;
	free(sp);
}

static void
ts_close(void *p)
{
	ts.closed++;
	ts_free(p);
}

static const struct smtp_spool_ops tspool_ops = {
	.open = ts_open,
	.buf = ts_buf,
	.push = ts_push,
	.busy = ts_busy,
	.on_ready = ts_on_ready,
	.error = ts_error,
	.close = ts_close,
};

static int
hook_submit(void *arg, struct queue_msg *m, const struct iovec *body, int n,
    void *spool, smtp_submit_done done, void *done_arg)
{
	int i;

	(void)arg;
	if (t.mode == SUBMIT_REFUSE) {
		if (spool != NULL)
			ts_free(spool);
		errno = EIO;
		return -1;
	}
	buf_reset(&t.body);
	t.mtrk = m->mtrk;
	snprintf(t.certifier, sizeof(t.certifier), "%s", m->certifier);
	snprintf(t.envid, sizeof(t.envid), "%s", m->envid ? m->envid : "");
	snprintf(t.login, sizeof(t.login), "%s", m->login ? m->login : "");
	snprintf(t.secret, sizeof(t.secret), "%s", m->secret ? m->secret : "");
	snprintf(
	    t.subject, sizeof(t.subject), "%s", m->subject ? m->subject : "");
	for (i = 0; i < n; i++)
		assert_int_equal(
		    buf_add(&t.body, body[i].iov_base, body[i].iov_len), 0);
	if (spool != NULL) {
		/* the queue takes the spool: what it wrote, then its
		 * buffer */
		struct tspool *sp = spool;

		assert_int_equal(
		    buf_add(&t.body, sp->all.data, sp->all.len), 0);
		assert_int_equal(
		    buf_add(&t.body, sp->buf.data, sp->buf.len), 0);
		ts_free(sp);
	}
	switch (t.mode) {
	case SUBMIT_NOW:
		done(done_arg, 0, 0);
		break;
	case SUBMIT_ENOSPC:
		done(done_arg, -1, ENOSPC);
		break;
	case SUBMIT_LATER:
		t.done = done;
		t.done_arg = done_arg;
		t.pending = m;
		break;
	case SUBMIT_REFUSE:
		break;
	}
	return 0;
}

static void
hook_queued(void *arg, struct queue_msg *m)
{
	(void)arg;
	t.queued++;
	msg_free(m); /* the queue's, here nobody's */
}

static void
hook_msg_free(void *arg, struct queue_msg *m)
{
	(void)arg;
	msg_free(m);
}

static const struct smtp_hooks hooks = {
	.local_rcpt = hook_local_rcpt,
	.store_failed = hook_store_failed,
	.new_id = hook_new_id,
	.submit = hook_submit,
	.queued = hook_queued,
	.msg_free = hook_msg_free,
	.auth_start = hook_auth_start,
	.auth_cancel = hook_auth_cancel,
	.sender_allowed = hook_sender_allowed,
};

/* The same with DATA spooled (as the daemon wires it). */
static const struct smtp_hooks spool_hooks = {
	.local_rcpt = hook_local_rcpt,
	.store_failed = hook_store_failed,
	.new_id = hook_new_id,
	.submit = hook_submit,
	.queued = hook_queued,
	.msg_free = hook_msg_free,
	.spool = &tspool_ops,
};

static void
on_wake(void *arg)
{
	(void)arg;
	t.woken++;
}

static int
setup_conf(void **state)
{
	char path[] = "/tmp/test_smtp_session.XXXXXX", err[512];
	const char *text = "hostname = mx.test\n"
	                   "data_dir = /tmp/msgtrk-test-smtp-session\n"
	                   "local_domains = local.test\n"
	                   "relay_networks = 127.0.0.0/8\n"
	                   "max_message_size = 1M\n"
	                   "smtp_timeout = 60\n";
	int fd;

	(void)state;
	if ((fd = mkstemp(path)) == -1 ||
	    write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return -1;
	close(fd);
	if (conf_defaults(&conf, err, sizeof(err)) == -1 ||
	    conf_load(&conf, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "conf: %s\n", err);
		unlink(path);
		return -1;
	}
	unlink(path);
	buf_init(&t.body, 1 << 22);
	return 0;
}

static int
teardown_conf(void **state)
{
	(void)state;
	conf_free(&conf);
	buf_reset(&t.body);
	return 0;
}

/* --- driving a session ---------------------------------------------- */

struct sess {
	struct smtp_env env;
	struct smtp_server_stats stats;
	struct smtp_session *s;
	struct evbuffer *in;
	struct buf out; /* the transcript: replies and [markers] */
};

static void
sess_open_mode(struct sess *x, int tls, const char *addr, enum smtp_mode mode)
{
	struct sockaddr_in sin;

	memset(&x->env, 0, sizeof(x->env));
	x->env.mode = mode;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(40000);
	assert_int_equal(inet_pton(AF_INET, addr, &sin.sin_addr), 1);
	x->env.conf = &conf;
	x->env.tls = tls;
	x->env.hooks = &hooks;
	x->env.hooks_arg = NULL;
	memset(&x->stats, 0, sizeof(x->stats));
	x->env.stats = &x->stats;
	x->s = smtp_session_new(&x->env, (struct sockaddr *)&sin, sizeof(sin),
	    "00000000deadbeef", on_wake, NULL);
	assert_non_null(x->s);
	assert_non_null(x->in = evbuffer_new());
	buf_init(&x->out, 1 << 24);
	smtp_session_greet(x->s);
	/* submissions_listen: the implicit handshake completes */
	if (mode == SMTP_MODE_SUBMISSIONS) {
		assert_true(smtp_session_handshaking(x->s));
		smtp_session_tls_ready(x->s, "TLSv1.3", "TEST");
	}
}

static void
sess_open(struct sess *x, int tls, const char *addr)
{
	sess_open_mode(x, tls, addr, SMTP_MODE_RELAY);
}

/* Moves the session's replies into the transcript. */
static void
sess_take(struct sess *x)
{
	struct evbuffer *o = smtp_session_output(x->s);
	size_t n = evbuffer_get_length(o);

	assert_int_equal(buf_add(&x->out, evbuffer_pullup(o, -1), n), 0);
	evbuffer_drain(o, n);
}

/* Runs the session on its input as smtp.c would; the handshake after
 * STARTTLS "succeeds" at once.  Returns the last step. */
static enum smtp_step
sess_run(struct sess *x)
{
	enum smtp_step step;

	for (;;) {
		step = smtp_session_run(x->s, x->in, 0);
		sess_take(x);
		switch (step) {
		case SMTP_STEP_WRITE:
			continue;
		case SMTP_STEP_STARTTLS:
			buf_adds(&x->out, "[tls]");
			smtp_session_tls_ready(x->s, "TLSv1.3", "TEST");
			continue;
		case SMTP_STEP_WAIT:
			/* an authentication check: answered now */
			if (ta.pending) {
				auth_answer();
				continue;
			}
			return step;
		case SMTP_STEP_CLOSE:
			if (x->out.len < 7 ||
			    strcmp(x->out.data + x->out.len - 7, "[close]") !=
			        0)
				buf_adds(&x->out, "[close]");
			return step;
		default:
			return step;
		}
	}
}

static void
sess_feed(struct sess *x, const char *p, size_t n)
{
	assert_int_equal(evbuffer_add(x->in, p, n), 0);
	(void)sess_run(x);
}

/* Feeds a string literal. */
#define FEED(x, lit) sess_feed((x), (lit), sizeof(lit) - 1)

static void
sess_close(struct sess *x)
{
	smtp_session_free(x->s);
	evbuffer_free(x->in);
	buf_reset(&x->out);
}

/* --- transcripts ------------------------------------------------------ */

#define F_TLS 0x01 /* STARTTLS offered */
#define F_WHOLE 0x02 /* depends on what arrives together: whole only */
#define F_STORE_FAILED 0x04
#define F_ENOSPC 0x08
#define F_REFUSE 0x10
#define F_FOREIGN 0x20 /* client outside relay_networks */
#define F_SUB 0x40 /* submission_listen (587) */
#define F_SUBS 0x80 /* submissions_listen (465): TLS from the start */

struct transcript {
	const char *name;
	int flags;
	const char *in;
	const char *want; /* after the greeting */
	const char *body; /* if set: the start of what the queue got */
};

#define TX(n, f, i, w) \
	{ \
		n, f, i, w, NULL \
	}

static const struct transcript transcripts[] = {
	TX("ehlo", F_TLS, "EHLO client.test\r\n", EHLO_TLS),
	TX("ehlo-no-tls", 0, "EHLO client.test\r\n", EHLO_NOTLS),
	TX("helo", 0, "HELO client.test\r\n", "250 mx.test\r\n"),
	TX("ehlo-underscore-trailing-dot", 0,
	    "EHLO my_pc.example.\r\nEHLO [127.0.0.1]\r\nEHLO [IPv6:::1]\r\n",
	    EHLO_NOTLS EHLO_NOTLS EHLO_NOTLS),
	/* The HELO name goes into Received: */
	TX("ehlo-forged-trace", 0,
	    "EHLO evil) by trusted.example (Postfix) with ESMTPS id X;\r\n"
	    "MAIL FROM:<a@b.test>\r\n",
	    "501 5.5.2 <evil) by trusted.example (Postfix) with ESMTPS id X;>"
	    ": Helo command rejected: Invalid name\r\n"
	    "503 5.5.1 Error: send HELO/EHLO first\r\n"),
	TX("helo-invalid-names", 0,
	    "HELO a b\r\nHELO x..y\r\nHELO -x\r\nHELO [1.2.3.4\r\n"
	    "HELO a;b\r\n",
	    "501 5.5.2 <a b>: Helo command rejected: Invalid name\r\n"
	    "501 5.5.2 <x..y>: Helo command rejected: Invalid name\r\n"
	    "501 5.5.2 <-x>: Helo command rejected: Invalid name\r\n"
	    "501 5.5.2 <[1.2.3.4>: Helo command rejected: Invalid name\r\n"
	    "501 5.5.2 <a;b>: Helo command rejected: Invalid name\r\n"),
	TX("helo-missing", 0, "HELO\r\n", "501 5.5.4 Argument required\r\n"),
	TX("mail-before-helo", 0, "MAIL FROM:<a@b.test>\r\n",
	    "503 5.5.1 Error: send HELO/EHLO first\r\n"),
	/* Sequence first, whatever the syntax (RFC 5321 §4.1.4). */
	TX("mail-before-helo-bad-syntax", 0, "MAIL FROM:a@b\r\n",
	    "503 5.5.1 Error: send HELO/EHLO first\r\n"),
	TX("rcpt-before-mail", 0, "EHLO c.test\r\nRCPT TO:<u@local.test>\r\n",
	    EHLO_NOTLS "503 5.5.1 Error: need MAIL command\r\n"),
	TX("data-before-rcpt", 0,
	    "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nDATA\r\n",
	    EHLO_NOTLS OK_MAIL "503 5.5.1 Error: need RCPT command\r\n"),
	TX("data-before-mail", 0, "EHLO c.test\r\nDATA\r\n",
	    EHLO_NOTLS "503 5.5.1 Error: need MAIL command\r\n"),
	TX("nested-mail", 0,
	    "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nMAIL FROM:<a@b.test>\r\n",
	    EHLO_NOTLS OK_MAIL "503 5.5.1 Error: nested MAIL command\r\n"),
	TX("rset-noop-vrfy", 0, "RSET\r\nNOOP\r\nVRFY x\r\n",
	    "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"
	    "252 2.5.0 Cannot VRFY user, but will accept message and "
	    "attempt delivery\r\n"),
	TX("unknown-verb", 0, "BOGUS\r\n",
	    "500 5.5.1 Command unrecognized\r\n"),
	TX("quit", 0, "QUIT\r\nNOOP\r\n", "221 2.0.0 Bye\r\n[close]"),
	TX("bare-lf-command", 0, "NOOP\nNOOP\r\n",
	    "501 5.5.2 Invalid character in command\r\n"),
	TX("long-line", 0,
	    "NOOP xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "\r\nNOOP\r\n",
	    "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n"),
	/* RFC 3207 §4.2, CVE-2011-0411: nothing may follow STARTTLS. */
	TX("starttls-pipelined", F_TLS | F_WHOLE,
	    "EHLO c.test\r\nSTARTTLS\r\nMAIL FROM:<evil@b.test>\r\n",
	    EHLO_TLS "503 5.5.1 Error: STARTTLS must be the last command in "
	             "a group\r\n"),
	TX("starttls-after-helo", F_TLS, "HELO c.test\r\nSTARTTLS\r\n",
	    "250 mx.test\r\n502 5.5.1 Error: STARTTLS not available\r\n"),
	TX("starttls-not-configured", 0, "EHLO c.test\r\nSTARTTLS\r\n",
	    EHLO_NOTLS "502 5.5.1 Error: STARTTLS not available\r\n"),
	TX("starttls-argument", F_TLS, "EHLO c.test\r\nSTARTTLS x\r\n",
	    EHLO_TLS "501 5.5.4 No arguments allowed\r\n"),
	TX("mail-size-too-big", 0,
	    "EHLO c.test\r\nMAIL FROM:<a@b.test> SIZE=2000000\r\n",
	    EHLO_NOTLS "552 5.3.4 Message size exceeds fixed maximum "
	               "message size\r\n"),
	TX("mtrk-store-failed", F_STORE_FAILED,
	    "EHLO c.test\r\nMAIL FROM:<a@b.test> ENVID=x1@c.test MTRK=" CERT
	    "\r\nMAIL FROM:<a@b.test>\r\n",
	    EHLO_NOTLS "455 4.3.0 Tracking store unavailable, try again "
	               "later\r\n" OK_MAIL),
	TX("dsn-after-helo", 0,
	    "HELO c.test\r\nMAIL FROM:<a@b.test> RET=FULL\r\n",
	    "250 mx.test\r\n555 5.5.4 Unsupported parameter\r\n"),
	/* Backscatter: local parts delivery could never make. */
	TX("rcpt-mailbox-not-allowed", 0,
	    "EHLO c.test\r\nMAIL FROM:<victim@other.test> RET=FULL\r\n"
	    "RCPT TO:<a/b@local.test>\r\nRCPT TO:<\"a/b\"@local.test>\r\n"
	    "RCPT TO:<.x@local.test>\r\nRCPT TO:<unknown@local.test>\r\n"
	    "DATA\r\n",
	    EHLO_NOTLS OK_MAIL
	    "550 5.1.3 Recipient address rejected: Mailbox name not "
	    "allowed\r\n"
	    "550 5.1.3 Recipient address rejected: Mailbox name not "
	    "allowed\r\n"
	    "553 5.1.3 Bad recipient address syntax\r\n"
	    "550 5.1.1 Recipient address rejected: User unknown\r\n"
	    "503 5.5.1 Error: need RCPT command\r\n"),
	TX("rcpt-relay-denied", F_FOREIGN,
	    "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@remote.test>\r\n"
	    "RCPT TO:<u@local.test>\r\nRCPT TO:<Postmaster>\r\n",
	    EHLO_NOTLS OK_MAIL
	    "550 5.7.1 Relay access denied\r\n" OK_RCPT OK_RCPT),
	{ "data-queued", 0,
	    "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@local.test>\r\n"
	    "DATA\r\nSubject: t\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
	    EHLO_NOTLS OK_MAIL OK_RCPT GO_DATA QUEUED
	    "221 2.0.0 Bye\r\n[close]",
	    "Received: from c.test ([127.0.0.1])\r\n\tby mx.test (msgtrk) "
	    "with ESMTP id 0123456789abcdef\r\n\tfor <u@local.test>; " },
	{ "data-helo-smtp", 0,
	    "HELO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@local.test>\r\n"
	    "RCPT TO:<v@local.test>\r\nDATA\r\nx\r\n.\r\n",
	    "250 mx.test\r\n" OK_MAIL OK_RCPT OK_RCPT GO_DATA QUEUED,
	    "Received: from c.test ([127.0.0.1])\r\n\tby mx.test (msgtrk) "
	    "with SMTP id 0123456789abcdef; " },
	/* A quoted recipient is not copied into the "for" clause. */
	{ "data-quoted-rcpt-not-in-received", 0,
	    "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n"
	    "RCPT TO:<\"x;by evil\"@local.test>\r\nDATA\r\nx\r\n.\r\n",
	    EHLO_NOTLS OK_MAIL OK_RCPT GO_DATA QUEUED,
	    "Received: from c.test ([127.0.0.1])\r\n\tby mx.test (msgtrk) "
	    "with ESMTP id 0123456789abcdef; " },
	{ "data-after-starttls", F_TLS | F_WHOLE, "EHLO c.test\r\nSTARTTLS\r\n",
	    EHLO_TLS "220 2.0.0 Ready to start TLS\r\n[tls]", NULL },
	TX("data-bare-lf", 0,
	    "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@local.test>\r\n"
	    "DATA\r\na\nb\r\n.\r\nNOOP\r\n",
	    EHLO_NOTLS OK_MAIL OK_RCPT GO_DATA
	    "550 5.5.2 Message contains bare CR or LF line endings\r\n"
	    "250 2.0.0 Ok\r\n"),
	TX("data-smuggling", 0,
	    "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@local.test>\r\n"
	    "DATA\r\nx\n.\nMAIL FROM:<evil@b.test>\r\n.\r\n",
	    EHLO_NOTLS OK_MAIL OK_RCPT GO_DATA
	    "550 5.5.2 Message contains bare CR or LF line endings\r\n"),
	TX("commit-enospc", F_ENOSPC,
	    "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@local.test>\r\n"
	    "DATA\r\nx\r\n.\r\nRCPT TO:<u@local.test>\r\n",
	    EHLO_NOTLS OK_MAIL OK_RCPT GO_DATA
	    "452 4.3.1 Insufficient system storage\r\n"
	    "503 5.5.1 Error: need MAIL command\r\n"),
	/* --- submission (RFC 6409, RFC 4954): 587 before TLS --- */
	TX("sub-ehlo-before-tls", F_SUB | F_TLS, "EHLO c.test\r\n", EHLO_TLS),
	TX("sub-auth-before-tls", F_SUB | F_TLS,
	    "EHLO c.test\r\nAUTH PLAIN " PLAIN_ALICE "\r\nAUTH LOGIN\r\n",
	    EHLO_TLS "538 5.7.11 Encryption required for requested "
	             "authentication mechanism\r\n"
	             "538 5.7.11 Encryption required for requested "
	             "authentication mechanism\r\n"),
	TX("sub-mail-before-auth", F_SUB | F_TLS,
	    "EHLO c.test\r\nMAIL FROM:<alice@local.test>\r\n"
	    "MAIL FROM:bad-syntax\r\n",
	    EHLO_TLS "530 5.7.0 Authentication required\r\n"
	             "530 5.7.0 Authentication required\r\n"),
	/* port 25 never offers AUTH, and refuses it */
	TX("relay-auth-refused", F_TLS,
	    "EHLO c.test\r\nAUTH PLAIN " PLAIN_ALICE "\r\nAUTH\r\n",
	    EHLO_TLS "503 5.5.1 Error: authentication not enabled\r\n"
	             "501 5.5.4 Argument required\r\n"),
	/* --- inside TLS (465, or 587 after STARTTLS) --- */
	TX("subs-ehlo", F_SUBS, "EHLO c.test\r\n", EHLO_AUTH),
	TX("subs-helo-no-auth", F_SUBS,
	    "HELO c.test\r\nAUTH PLAIN " PLAIN_ALICE "\r\n",
	    "250 mx.test\r\n503 5.5.1 Error: authentication not enabled\r\n"),
	TX("auth-plain-initial", F_SUBS,
	    "EHLO c.test\r\nAUTH PLAIN " PLAIN_ALICE "\r\n", EHLO_AUTH AUTH_OK),
	TX("auth-plain-challenge", F_SUBS,
	    "EHLO c.test\r\nauth plain\r\n" PLAIN_ALICE "\r\n",
	    EHLO_AUTH "334 \r\n" AUTH_OK),
	TX("auth-login", F_SUBS,
	    "EHLO c.test\r\nAUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n",
	    EHLO_AUTH LOGIN_USER LOGIN_PASS AUTH_OK),
	/* AUTH LOGIN <initial>: the username */
	TX("auth-login-initial", F_SUBS,
	    "EHLO c.test\r\nAUTH LOGIN YWxpY2U=\r\nc2VjcmV0\r\n",
	    EHLO_AUTH LOGIN_PASS AUTH_OK),
	TX("auth-wrong-password", F_SUBS,
	    "EHLO c.test\r\nAUTH PLAIN " PLAIN_WRONG "\r\nAUTH LOGIN\r\n"
	    "YWxpY2U=\r\nc2VjcmV0\r\n",
	    EHLO_AUTH AUTH_FAIL LOGIN_USER LOGIN_PASS AUTH_OK),
	/* SMTP_AUTH_FAILURES_MAX: then 421 and the close */
	TX("auth-three-failures", F_SUBS,
	    "EHLO c.test\r\nAUTH PLAIN " PLAIN_WRONG "\r\nAUTH LOGIN\r\n"
	    "YWxpY2U=\r\nd3Jvbmc=\r\nAUTH PLAIN " PLAIN_WRONG "\r\n"
	    "AUTH PLAIN " PLAIN_ALICE "\r\n",
	    EHLO_AUTH AUTH_FAIL LOGIN_USER LOGIN_PASS AUTH_FAIL AUTH_FAIL
	    "421 4.7.0 mx.test Error: too many failed authentication "
	    "attempts\r\n[close]"),
	/* PRODUCT.md: an authzid other than the login is 535 */
	TX("auth-authzid-other", F_SUBS,
	    "EHLO c.test\r\nAUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA==\r\n",
	    EHLO_AUTH AUTH_FAIL),
	TX("auth-cancel", F_SUBS,
	    "EHLO c.test\r\nAUTH PLAIN\r\n*\r\nAUTH LOGIN\r\nYWxpY2U=\r\n"
	    "*\r\nNOOP\r\n",
	    EHLO_AUTH
	    "334 \r\n501 5.0.0 Authentication aborted\r\n" LOGIN_USER LOGIN_PASS
	    "501 5.0.0 Authentication aborted\r\n"
	    "250 2.0.0 Ok\r\n"),
	TX("auth-bad-base64", F_SUBS,
	    "EHLO c.test\r\nAUTH PLAIN AGFsa!!!\r\nAUTH LOGIN\r\n=x==\r\n",
	    EHLO_AUTH "501 5.5.2 Cannot decode response\r\n" LOGIN_USER
	              "501 5.5.2 Cannot decode response\r\n"),
	TX("auth-empty-responses", F_SUBS,
	    "EHLO c.test\r\nAUTH PLAIN =\r\nAUTH LOGIN\r\n\r\n",
	    EHLO_AUTH AUTH_FAIL LOGIN_USER AUTH_FAIL),
	TX("auth-unknown-mechanism", F_SUBS,
	    "EHLO c.test\r\nAUTH CRAM-MD5\r\nAUTH PLAIN a b\r\n"
	    "AUTH PLAIN \r\n",
	    EHLO_AUTH
	    "504 5.5.4 Unrecognized authentication type\r\n"
	    "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n"
	    "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n"),
	TX("auth-temporary", F_SUBS,
	    "EHLO c.test\r\nAUTH PLAIN AGFsaWNlAHRlbXA=\r\nNOOP\r\n",
	    EHLO_AUTH "454 4.7.0 Temporary authentication failure\r\n"
	              "250 2.0.0 Ok\r\n"),
	TX("auth-twice", F_SUBS,
	    "EHLO c.test\r\nAUTH PLAIN " PLAIN_ALICE
	    "\r\nAUTH PLAIN " PLAIN_ALICE
	    "\r\nEHLO c.test\r\nMAIL FROM:<alice@local.test>\r\n",
	    EHLO_AUTH AUTH_OK
	    "503 5.5.1 Error: already authenticated\r\n" EHLO_AUTH OK_MAIL),
	/* RFC 4954 §4: past the exchange's buffer, 500 5.5.6 */
	TX("auth-line-too-long", F_SUBS,
	    "EHLO c.test\r\nAUTH PLAIN\r\n"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	    "QUFB\r\nNOOP\r\n",
	    EHLO_AUTH "334 \r\n500 5.5.6 Authentication exchange line is too "
	              "long\r\n250 2.0.0 Ok\r\n"),
	/* sender_logins: 553 for another's address; <> and granted ones */
	TX("sub-sender-not-owned", F_SUBS,
	    "EHLO c.test\r\nAUTH PLAIN " PLAIN_ALICE "\r\n"
	    "MAIL FROM:<bob@local.test>\r\nMAIL FROM:<>\r\nRSET\r\n"
	    "MAIL FROM:<shared@local.test>\r\n",
	    EHLO_AUTH AUTH_OK
	    "553 5.7.1 <bob@local.test>: Sender address rejected: not owned "
	    "by user alice\r\n" OK_MAIL "250 2.0.0 Ok\r\n" OK_MAIL),
	/* the canonical login (lower-cased by the backend) decides */
	TX("sub-canonical-login", F_SUBS,
	    "EHLO c.test\r\nAUTH PLAIN AEFsaWNlAHNlY3JldA==\r\n"
	    "MAIL FROM:<Alice@local.test>\r\nMAIL FROM:<alice@local.test>\r\n",
	    EHLO_AUTH AUTH_OK
	    "553 5.7.1 <Alice@local.test>: Sender address rejected: not "
	    "owned by user alice\r\n" OK_MAIL),
	/* an authenticated client relays, from anywhere */
	TX("sub-relay-authenticated", F_SUBS | F_FOREIGN,
	    "EHLO c.test\r\nAUTH PLAIN " PLAIN_ALICE "\r\n"
	    "MAIL FROM:<alice@local.test>\r\nRCPT TO:<x@remote.test>\r\n",
	    EHLO_AUTH AUTH_OK OK_MAIL OK_RCPT),
	/* automatic tracking: the 250 names the envid (the client's
	 * unique-envid here; one is made when there is none) */
	{ "sub-auto-track", F_SUBS,
	    "EHLO c.test\r\nAUTH PLAIN " PLAIN_ALICE "\r\n"
	    "MAIL FROM:<alice@local.test> ENVID=e1@c.test\r\n"
	    "RCPT TO:<u@local.test>\r\nDATA\r\nSubject: hi\r\n\r\nx\r\n.\r\n",
	    EHLO_AUTH AUTH_OK OK_MAIL OK_RCPT GO_DATA
	    "250 2.0.0 Ok: queued as 0123456789abcdef, tracking "
	    "e1@c.test\r\n",
	    "Received: from c.test ([127.0.0.1])\r\n\tby mx.test (msgtrk) "
	    "with ESMTPSA id 0123456789abcdef\r\n\tfor <u@local.test>; " },
	/* MTRK of its own: left as it is */
	TX("sub-own-mtrk", F_SUBS,
	    "EHLO c.test\r\nAUTH PLAIN " PLAIN_ALICE "\r\n"
	    "MAIL FROM:<alice@local.test> ENVID=e2@c.test MTRK=" CERT "\r\n"
	    "RCPT TO:<u@local.test>\r\nDATA\r\nx\r\n.\r\n",
	    EHLO_AUTH AUTH_OK OK_MAIL OK_RCPT GO_DATA QUEUED),
	/* an ENVID that is no unique-envid cannot carry MTRK */
	TX("sub-envid-not-unique", F_SUBS,
	    "EHLO c.test\r\nAUTH PLAIN " PLAIN_ALICE "\r\n"
	    "MAIL FROM:<alice@local.test> ENVID=abc\r\n"
	    "RCPT TO:<u@local.test>\r\nDATA\r\nx\r\n.\r\n",
	    EHLO_AUTH AUTH_OK OK_MAIL OK_RCPT GO_DATA QUEUED),
	TX("submit-refused", F_REFUSE,
	    "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@local.test>\r\n"
	    "DATA\r\nx\r\n.\r\n",
	    EHLO_NOTLS OK_MAIL OK_RCPT GO_DATA
	    "451 4.3.0 Local error in processing\r\n"),
};

static const char *
transcript_name(const void *row)
{
	return ((const struct transcript *)row)->name;
}

static void
transcript_mode(const struct transcript *r)
{
	t.store_failed = (r->flags & F_STORE_FAILED) != 0;
	t.mode = (r->flags & F_ENOSPC) ? SUBMIT_ENOSPC
	    : (r->flags & F_REFUSE)    ? SUBMIT_REFUSE
	                               : SUBMIT_NOW;
}

/* The /metrics counters agree with the transcript: one reply per last
 * line ("NNN "), by class, and one message accepted per "queued as". */
static void
check_counters(const struct sess *x)
{
	const char *p = buf_cstr(&x->out), *q;
	uint64_t want[4] = { 0, 0, 0, 0 }, queued = 0;

	for (q = p; q != NULL && *q != '\0'; q = strstr(q, "\r\n")) {
		if (q != p)
			q += 2;
		if (q[0] >= '2' && q[0] <= '5' && q[1] >= '0' && q[1] <= '9' &&
		    q[2] >= '0' && q[2] <= '9' && q[3] == ' ')
			want[q[0] - '2']++;
		if (strncmp(q, "250 2.0.0 Ok: queued as ", 24) == 0)
			queued++;
	}
	assert_int_equal(x->stats.replies[0], want[0]);
	assert_int_equal(x->stats.replies[1], want[1]);
	assert_int_equal(x->stats.replies[2], want[2]);
	assert_int_equal(x->stats.replies[3], want[3]);
	assert_int_equal(x->stats.accepted, queued);
}

static void
transcript_feed(const void *ctx, const char *in, size_t n, const size_t *cuts,
    size_t ncuts, struct buf *out)
{
	const struct transcript *r = ctx;
	struct sess x;
	size_t i, from = 0;

	transcript_mode(r);
	memset(&ta, 0, sizeof(ta));
	sess_open_mode(&x, r->flags & F_TLS,
	    (r->flags & F_FOREIGN) ? "192.0.2.1" : "127.0.0.1",
	    (r->flags & F_SUBS)      ? SMTP_MODE_SUBMISSIONS
	        : (r->flags & F_SUB) ? SMTP_MODE_SUBMISSION
	                             : SMTP_MODE_RELAY);
	for (i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : n;

		if (!smtp_session_closing(x.s))
			sess_feed(&x, in + from, to - from);
		from = to;
	}
	buf_clear(out);
	assert_int_equal(buf_add(out, x.out.data, x.out.len), 0);
	check_counters(&x);
	sess_close(&x);
}

static void
test_transcript(void **state)
{
	const struct transcript *r = *state;
	char want[8192];
	struct buf out;

	snprintf(want, sizeof(want), "%s%s", GREETING, r->want);
	if (r->flags & F_WHOLE) {
		buf_init(&out, 1 << 20);
		transcript_feed(r, r->in, strlen(r->in), NULL, 0, &out);
		assert_string_equal(buf_cstr(&out), want);
		buf_reset(&out);
	} else
		table_check_splits(
		    transcript_feed, r, r->in, strlen(r->in), want);
	if (r->body != NULL) {
		assert_true(t.body.len >= strlen(r->body));
		assert_memory_equal(t.body.data, r->body, strlen(r->body));
		/* The content after our field, dot-unstuffed. */
		assert_non_null(strstr(buf_cstr(&t.body), "\r\n"));
	}
}

/* --- cases that are not a plain transcript --------------------------- */

/* An authenticated session on 465, up to the 235. */
static void
sub_open(struct sess *x)
{
	transcript_mode(&transcripts[0]);
	memset(&ta, 0, sizeof(ta));
	sess_open_mode(x, 1, "127.0.0.1", SMTP_MODE_SUBMISSIONS);
	FEED(x, "EHLO c.test\r\nAUTH PLAIN " PLAIN_ALICE "\r\n");
	assert_non_null(strstr(buf_cstr(&x->out), AUTH_OK));
	buf_clear(&x->out);
}

/* Submission duties (RFC 6409 §8) and automatic tracking: a message
 * without Message-ID:, Date: and MTRK gets both fields after our
 * Received: (which says ESMTPSA and not the login), a unique envid named
 * in the 250, a secret whose certifier is the MTRK sent on, the login
 * and the Subject for the store. */
static void
test_submission_fields(void **state)
{
	struct sess x;
	unsigned char secret[MTRK_SECRET_MAX];
	char cert[MTRK_CERTIFIER_LEN + 1], want[256];
	const char *b, *r;
	int n;

	(void)state;
	sub_open(&x);
	FEED(&x,
	    "MAIL FROM:<alice@local.test>\r\nRCPT TO:<u@local.test>\r\n"
	    "DATA\r\nFrom: alice@local.test\r\nSubject: hello\r\n"
	    "\tworld\r\n\r\nDate: in the body\r\n.\r\n");
	/* the envid was made here: RFC 3885 §3.2 form, at our name */
	assert_int_equal(t.mtrk, 1);
	assert_int_equal(
	    envid_check_unique(t.envid, strlen(t.envid), NULL, NULL), 0);
	assert_non_null(strstr(t.envid, "@mx.test"));
	snprintf(want, sizeof(want),
	    OK_MAIL OK_RCPT GO_DATA
	    "250 2.0.0 Ok: queued as 0123456789abcdef, tracking %s\r\n",
	    t.envid);
	assert_string_equal(buf_cstr(&x.out), want);
	/* the kept secret is the MTRK certifier's */
	n = mtrk_secret_decode(
	    t.secret, strlen(t.secret), secret, sizeof(secret));
	assert_int_equal(n, MTRK_SECRET_LEN);
	assert_int_equal(mtrk_certifier(secret, (size_t)n, cert), 0);
	assert_string_equal(cert, t.certifier);
	assert_string_equal(t.login, "alice");
	assert_string_equal(t.subject, "hello world");
	/* Received: first, then the added fields, then the message */
	b = buf_cstr(&t.body);
	assert_non_null(strstr(b, "with ESMTPSA id 0123456789abcdef"));
	assert_null(strstr(b, "alice\r\n\tby"));
	r = strstr(b, "\r\nMessage-ID: <");
	assert_non_null(r);
	assert_non_null(strstr(r, ".0123456789abcdef@mx.test>\r\nDate: "));
	assert_non_null(strstr(b, "\r\nDate: "));
	assert_true(strstr(b, "\r\nDate: ") < strstr(b, "From: alice"));
	sess_close(&x);

	/* fields the message has are not added; its own MTRK is kept */
	sub_open(&x);
	FEED(&x,
	    "MAIL FROM:<alice@local.test> ENVID=x1@c.test MTRK=" CERT
	    "\r\nRCPT TO:<u@local.test>\r\nDATA\r\n"
	    "Message-ID: <m1@c.test>\r\nDATE: Sun, 22 Nov 2026 06:37:36 "
	    "+0000\r\nSubject: own\r\n\r\nx\r\n.\r\n");
	assert_string_equal(buf_cstr(&x.out), OK_MAIL OK_RCPT GO_DATA QUEUED);
	assert_string_equal(t.certifier, CERT);
	assert_string_equal(t.secret, "");
	assert_string_equal(t.subject, "");
	assert_string_equal(t.login, "alice");
	b = buf_cstr(&t.body);
	assert_null(strstr(b, "\r\nMessage-ID: <2"));
	assert_non_null(strstr(b, "; "));
	assert_true(strstr(b, "Date: ") == NULL ||
	    strstr(b, "Date: ") > strstr(b, "DATE: "));
	sess_close(&x);

	/* submission_track = no: untracked, the fields still added */
	conf.submission_track = 0;
	sub_open(&x);
	FEED(&x,
	    "MAIL FROM:<alice@local.test>\r\nRCPT TO:<u@local.test>\r\n"
	    "DATA\r\nx\r\n.\r\n");
	conf.submission_track = 1;
	assert_string_equal(buf_cstr(&x.out), OK_MAIL OK_RCPT GO_DATA QUEUED);
	assert_int_equal(t.mtrk, 0);
	assert_string_equal(t.secret, "");
	assert_non_null(strstr(buf_cstr(&t.body), "\r\nMessage-ID: <"));
	sess_close(&x);

	/* port 25: nothing added */
	transcript_mode(&transcripts[0]);
	sess_open(&x, 0, "127.0.0.1");
	FEED(&x,
	    "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n"
	    "RCPT TO:<u@local.test>\r\nDATA\r\nx\r\n.\r\n");
	assert_null(strstr(buf_cstr(&t.body), "Message-ID:"));
	assert_null(strstr(buf_cstr(&t.body), "\r\nDate:"));
	assert_int_equal(t.mtrk, 0);
	sess_close(&x);
}

/* A check in flight when the client goes: cancelled, never answered;
 * the same when the session is freed. */
static void
test_auth_cancelled(void **state)
{
	struct sess x;
	size_t k;

	(void)state;
	for (k = 0; k < 2; k++) {
		memset(&ta, 0, sizeof(ta));
		sess_open_mode(&x, 1, "127.0.0.1", SMTP_MODE_SUBMISSIONS);
		assert_int_equal(
		    evbuffer_add(x.in,
		        "EHLO c.test\r\nAUTH PLAIN " PLAIN_ALICE "\r\nNOOP\r\n",
		        strlen("EHLO c.test\r\nAUTH PLAIN " PLAIN_ALICE
		               "\r\nNOOP\r\n")),
		    0);
		assert_int_equal(
		    smtp_session_run(x.s, x.in, 0), SMTP_STEP_WAIT);
		assert_int_equal(ta.pending, 1);
		/* the password went to the check, and is wiped here */
		assert_string_equal(ta.password, "secret");
		if (k == 0) {
			assert_int_equal(smtp_session_eof(x.s), 0);
			assert_int_equal(ta.cancelled, 1);
			assert_true(smtp_session_closing(x.s));
		}
		sess_close(&x);
		assert_int_equal(ta.cancelled, 1);
		assert_int_equal(ta.started, 1);
	}
}

/* Implicit TLS (465): nothing is read before the handshake; the
 * greeting waits for it; the log says tls. */
static void
test_implicit_tls(void **state)
{
	struct sess x;

	(void)state;
	memset(&ta, 0, sizeof(ta));
	memset(&x.env, 0, sizeof(x.env));
	sess_open_mode(&x, 1, "127.0.0.1", SMTP_MODE_SUBMISSIONS);
	FEED(&x, "EHLO c.test\r\nSTARTTLS\r\n");
	assert_string_equal(buf_cstr(&x.out),
	    GREETING EHLO_AUTH "503 5.5.1 Error: TLS already active\r\n");
	sess_close(&x);
}

/* After the handshake nothing from before it is known (RFC 3207 §4.2),
 * and EHLO no longer offers STARTTLS; a second STARTTLS is refused. */
static void
test_starttls_resets(void **state)
{
	struct sess x;

	(void)state;
	transcript_mode(&transcripts[0]);
	sess_open(&x, 1, "127.0.0.1");
	FEED(&x, "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nSTARTTLS\r\n");
	FEED(&x, "RCPT TO:<u@local.test>\r\n");
	FEED(&x, "MAIL FROM:<a@b.test>\r\n");
	FEED(&x, "EHLO c.test\r\nSTARTTLS\r\n");
	assert_string_equal(buf_cstr(&x.out),
	    GREETING EHLO_TLS OK_MAIL
	    "220 2.0.0 Ready to start TLS\r\n[tls]"
	    "503 5.5.1 Error: need MAIL command\r\n"
	    "503 5.5.1 Error: send HELO/EHLO first\r\n" EHLO_NOTLS
	    "503 5.5.1 Error: TLS already active\r\n");
	sess_close(&x);
}

/* SMTP_RCPT_MAX recipients get 250, the next 452 4.5.3 (RFC 5321
 * §4.5.3.1.10); after SMTP_ERRORS_MAX errors, 421 and the close. */
static void
test_rcpt_limits(void **state)
{
	struct sess x;
	struct buf in, want;
	size_t i;

	(void)state;
	transcript_mode(&transcripts[0]);
	buf_init(&in, 1 << 20);
	buf_init(&want, 1 << 20);
	sess_open(&x, 0, "127.0.0.1");
	buf_adds(&in, "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n");
	buf_adds(&want, GREETING EHLO_NOTLS OK_MAIL);
	for (i = 0; i < SMTP_RCPT_MAX + SMTP_ERRORS_MAX + 5; i++) {
		buf_addf(&in, "RCPT TO:<u%zu@local.test>\r\n", i);
		if (i < SMTP_RCPT_MAX)
			buf_adds(&want, OK_RCPT);
		else if (i < SMTP_RCPT_MAX + SMTP_ERRORS_MAX)
			buf_adds(&want, "452 4.5.3 Too many recipients\r\n");
	}
	buf_adds(&want, "421 4.7.0 mx.test Error: too many errors\r\n[close]");
	sess_feed(&x, in.data, in.len);
	assert_string_equal(buf_cstr(&x.out), buf_cstr(&want));
	sess_close(&x);
	buf_reset(&in);
	buf_reset(&want);
}

/* A client that pipelines without reading: the session stops at
 * SMTP_OUT_HIGH of replies waiting, its own and the connection's
 * (SMTP_STEP_WRITE), and goes on once they are taken; input it cannot
 * hold stays in the caller's buffer. */
static void
test_output_backpressure(void **state)
{
	struct sess x;
	struct buf in;
	size_t i;
	enum smtp_step step;

	(void)state;
	transcript_mode(&transcripts[0]);
	buf_init(&in, 1 << 22);
	for (i = 0; i < 100000; i++)
		buf_adds(&in, "NOOP\r\n");
	sess_open(&x, 0, "127.0.0.1");
	assert_int_equal(evbuffer_add(x.in, in.data, in.len), 0);
	step = smtp_session_run(x.s, x.in, 0);
	assert_int_equal(step, SMTP_STEP_WRITE);
	assert_true(evbuffer_get_length(smtp_session_output(x.s)) <=
	    SMTP_OUT_HIGH + 64);
	assert_true(evbuffer_get_length(x.in) > 0);
	/* What the connection still holds counts: with 60 KiB pending
	 * there, at most 4 KiB more. */
	sess_take(&x);
	step = smtp_session_run(x.s, x.in, 60 * 1024);
	assert_int_equal(step, SMTP_STEP_WRITE);
	assert_true(
	    evbuffer_get_length(smtp_session_output(x.s)) <= 4 * 1024 + 64);
	(void)sess_run(&x);
	assert_int_equal(evbuffer_get_length(x.in), 0);
	assert_int_equal(x.out.len, strlen(GREETING) + 100000 * 14);
	sess_close(&x);
	buf_reset(&in);
}

/* Commit in flight: nothing pipelined behind DATA is processed until the
 * queue answers; the client closing meanwhile gets its 250 first, then
 * the rest it pipelined, then the close. */
static void
test_commit_async_eof(void **state)
{
	struct sess x;
	const char *in = "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n"
	                 "RCPT TO:<u@local.test>\r\nDATA\r\nx\r\n.\r\n"
	                 "NOOP\r\n";

	(void)state;
	transcript_mode(&transcripts[0]);
	t.mode = SUBMIT_LATER;
	t.woken = 0;
	sess_open(&x, 0, "127.0.0.1");
	assert_int_equal(evbuffer_add(x.in, in, strlen(in)), 0);
	assert_int_equal(sess_run(&x), SMTP_STEP_WAIT);
	assert_true(smtp_session_busy(x.s));
	assert_string_equal(
	    buf_cstr(&x.out), GREETING EHLO_NOTLS OK_MAIL OK_RCPT GO_DATA);
	assert_int_equal(smtp_session_eof(x.s), 1); /* still to say */
	t.done(t.done_arg, 0, 0);
	assert_int_equal(t.woken, 1);
	assert_int_equal(sess_run(&x), SMTP_STEP_CLOSE);
	assert_string_equal(buf_cstr(&x.out),
	    GREETING EHLO_NOTLS OK_MAIL OK_RCPT GO_DATA QUEUED
	    "250 2.0.0 Ok\r\n[close]");
	sess_close(&x);
}

/* The connection lost during a commit: the session outlives it until the
 * queue answers, says nothing more, and can then be freed. */
static void
test_commit_lost(void **state)
{
	struct sess x;
	const char *in = "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n"
	                 "RCPT TO:<u@local.test>\r\nDATA\r\nx\r\n.\r\n";
	size_t before;

	(void)state;
	transcript_mode(&transcripts[0]);
	t.mode = SUBMIT_LATER;
	sess_open(&x, 0, "127.0.0.1");
	before = t.queued;
	assert_int_equal(evbuffer_add(x.in, in, strlen(in)), 0);
	assert_int_equal(sess_run(&x), SMTP_STEP_WAIT);
	smtp_session_lost(x.s, "error");
	assert_true(smtp_session_busy(x.s));
	t.done(t.done_arg, 0, 0);
	assert_false(smtp_session_busy(x.s));
	assert_int_equal(t.queued, before + 1);
	assert_int_equal(evbuffer_get_length(smtp_session_output(x.s)), 0);
	sess_close(&x);
}

/* SIGTERM: between commands 421 4.3.2 at once; in DATA after the
 * message's reply. */
static void
test_stop(void **state)
{
	struct sess x;

	(void)state;
	transcript_mode(&transcripts[0]);
	sess_open(&x, 0, "127.0.0.1");
	FEED(&x, "EHLO c.test\r\n");
	smtp_session_stop(x.s);
	assert_int_equal(sess_run(&x), SMTP_STEP_CLOSE);
	assert_string_equal(buf_cstr(&x.out),
	    GREETING EHLO_NOTLS "421 4.3.2 mx.test Service shutting down\r\n"
	                        "[close]");
	sess_close(&x);

	sess_open(&x, 0, "127.0.0.1");
	FEED(&x,
	    "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@local.test>\r\n"
	    "DATA\r\nx\r\n");
	smtp_session_stop(x.s);
	assert_false(smtp_session_closing(x.s));
	FEED(&x, ".\r\nNOOP\r\n");
	assert_string_equal(buf_cstr(&x.out),
	    GREETING EHLO_NOTLS OK_MAIL OK_RCPT GO_DATA QUEUED
	    "421 4.3.2 mx.test Service shutting down\r\n[close]");
	sess_close(&x);
}

/* smtp.h's deadlines: a command line smtp_timeout after its first byte,
 * DATA smtp_timeout after the 354 plus a second per SMTP_MIN_DATA_RATE
 * octets; the idle timer otherwise. */
static void
test_deadlines(void **state)
{
	struct sess x;
	time_t now = time(NULL);
	char data[2 * SMTP_MIN_DATA_RATE];

	(void)state;
	transcript_mode(&transcripts[0]);
	sess_open(&x, 0, "127.0.0.1");
	assert_int_equal(smtp_session_deadline(x.s, now), 60);
	FEED(&x, "NOO"); /* a line begun */
	assert_int_equal(smtp_session_deadline(x.s, now), 60);
	assert_int_equal(smtp_session_deadline(x.s, now + 50), 10);
	assert_int_equal(smtp_session_deadline(x.s, now + 60), 0);
	assert_true(smtp_session_closing(x.s));
	(void)sess_run(&x);
	assert_string_equal(buf_cstr(&x.out),
	    GREETING "421 4.4.2 mx.test Error: timeout exceeded\r\n[close]");
	sess_close(&x);

	sess_open(&x, 0, "127.0.0.1");
	FEED(&x,
	    "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@local.test>\r\n"
	    "DATA\r\n");
	memset(data, 'x', sizeof(data));
	sess_feed(&x, data, sizeof(data));
	now = time(NULL); /* the 354 was at most a second ago */
	/* 1000 octets: 2 seconds more than smtp_timeout. */
	assert_true(smtp_session_deadline(x.s, now + 59) > 0);
	assert_int_equal(smtp_session_deadline(x.s, now + 62), 0);
	assert_true(smtp_session_closing(x.s));
	sess_close(&x);

	sess_open(&x, 0, "127.0.0.1");
	smtp_session_timeout(x.s);
	assert_int_equal(sess_run(&x), SMTP_STEP_CLOSE);
	assert_string_equal(buf_cstr(&x.out),
	    GREETING "421 4.4.2 mx.test Error: timeout exceeded\r\n[close]");
	sess_close(&x);
}

/* DATA through a spool: the content leaves the session's memory a chunk
 * at a time; while the spool is busy the session reads nothing (WAIT)
 * until its ready callback wakes it; the queue gets the whole body. */
static void
test_spool_backpressure(void **state)
{
	struct sess x;
	struct buf big;
	size_t i;

	(void)state;
	transcript_mode(&transcripts[0]);
	memset(&ts, 0, sizeof(ts));
	ts.busy_at = 3;
	t.woken = 0;
	sess_open(&x, 0, "127.0.0.1");
	x.env.hooks = &spool_hooks; /* read at DATA */
	buf_init(&big, 1 << 20);
	for (i = 0; i < 3000; i++)
		assert_int_equal(
		    buf_addf(&big, "line %04zu %s\r\n", i,
		        "0123456789012345678901234567890123456789"),
		    0);
	FEED(&x,
	    "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@local.test>\r\n"
	    "DATA\r\n");
	assert_int_equal(evbuffer_add(x.in, big.data, big.len), 0);
	assert_int_equal(evbuffer_add(x.in, ".\r\n", 3), 0);
	assert_int_equal(sess_run(&x), SMTP_STEP_WAIT);
	assert_non_null(ts.open);
	assert_true(ts.open->busy);
	assert_true(ts.open->buf.len < 2 * 65536 + 4096);
	assert_true(evbuffer_get_length(x.in) > 0); /* not read */
	/* the chunks are written: ready, the session is woken, reads on */
	while (ts.open != NULL && ts.open->busy) {
		ts.open->busy = 0;
		ts.busy_at = ts.open->chunks + 3;
		(void)ts_push(ts.open);
		ts.open->ready(ts.open->ready_arg);
		assert_true(t.woken > 0);
		(void)sess_run(&x);
	}
	assert_string_equal(buf_cstr(&x.out),
	    GREETING EHLO_NOTLS OK_MAIL OK_RCPT GO_DATA QUEUED);
	/* our Received: then the body as sent */
	assert_true(t.body.len > big.len);
	assert_memory_equal(
	    t.body.data + t.body.len - big.len, big.data, big.len);
	buf_reset(&big);
	sess_close(&x);
}

/* A spool that failed (over the memory budget, a full disk): DATA is read
 * to its end and the message refused, temporarily. */
static void
test_spool_failure(void **state)
{
	static const struct {
		int err;
		const char *reply;
	} rows[] = {
		{ ENOBUFS, "451 4.3.1 Insufficient system resources\r\n" },
		{ ENOSPC, "452 4.3.1 Insufficient system storage\r\n" },
		{ EIO, "451 4.3.0 Local error in processing\r\n" },
	};
	struct sess x;
	size_t i;
	char data[10000];

	(void)state;
	memset(data, 'x', sizeof(data));
	data[sizeof(data) - 2] = '\r';
	data[sizeof(data) - 1] = '\n';
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char want[1024];

		transcript_mode(&transcripts[0]);
		memset(&ts, 0, sizeof(ts));
		ts.fail = rows[i].err;
		sess_open(&x, 0, "127.0.0.1");
		x.env.hooks = &spool_hooks;
		FEED(&x,
		    "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n"
		    "RCPT TO:<u@local.test>\r\nDATA\r\n");
		sess_feed(&x, data, sizeof(data));
		FEED(&x, ".\r\nNOOP\r\n");
		snprintf(want, sizeof(want), "%s%s%s%s%s%s%s", GREETING,
		    EHLO_NOTLS, OK_MAIL, OK_RCPT, GO_DATA, rows[i].reply,
		    "250 2.0.0 Ok\r\n");
		assert_string_equal(buf_cstr(&x.out), want);
		assert_int_equal(ts.closed, 1); /* abandoned, not submitted */
		sess_close(&x);
	}
}

/* The DATA deadline's allowance for size is capped (SMTP_DATA_RATE_CAP):
 * a huge body does not buy hours. */
static void
test_data_deadline_cap(void **state)
{
	struct sess x;
	time_t now;
	struct buf big;
	size_t n = (SMTP_DATA_RATE_CAP + 100) * (size_t)SMTP_MIN_DATA_RATE;

	(void)state;
	transcript_mode(&transcripts[0]);
	memset(&ts, 0, sizeof(ts));
	sess_open(&x, 0, "127.0.0.1");
	x.env.hooks = &spool_hooks;
	FEED(&x,
	    "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<u@local.test>\r\n"
	    "DATA\r\n");
	buf_init(&big, n + 16);
	assert_non_null(buf_append_space(&big, n));
	memset(big.data, 'x', n);
	sess_feed(&x, big.data, n);
	now = time(NULL);
	/* smtp_timeout (60) + the cap, not + n / SMTP_MIN_DATA_RATE */
	assert_true(
	    smtp_session_deadline(x.s, now + 60 + SMTP_DATA_RATE_CAP - 2) > 0);
	assert_int_equal(
	    smtp_session_deadline(x.s, now + 60 + SMTP_DATA_RATE_CAP + 1), 0);
	buf_reset(&big);
	sess_close(&x);
}

/* --- mailbox_name_ok ------------------------------------------------- */

struct mailbox_row {
	const char *addr;
	int ok;
};

static const struct mailbox_row mailbox_rows[] = {
	{ "u@local.test", 1 },
	{ "first.last@local.test", 1 },
	{ "\"a b\"@local.test", 1 },
	{ "\".x\"@local.test", 1 }, /* the quotes are part of the name */
	{ "a@b@local.test", 1 }, /* split at the last '@' */
	{ "a/b@local.test", 0 },
	{ "\"a/b\"@local.test", 0 },
	{ "\"../x\"@local.test", 0 },
	{ ".x@local.test", 0 },
	{ "..@local.test", 0 },
	{ ".@local.test", 0 },
	{ "@local.test", 0 },
	{ "u@", 0 },
	{ "u@.local.test", 0 },
	{ "u@a/b", 0 },
	{ "u", 0 },
	{ "", 0 },
};

static const char *
mailbox_name(const void *row)
{
	return ((const struct mailbox_row *)row)->addr;
}

static void
test_mailbox(void **state)
{
	const struct mailbox_row *r = *state;

	assert_int_equal(mailbox_name_ok(r->addr), r->ok);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_starttls_resets),
		cmocka_unit_test(test_rcpt_limits),
		cmocka_unit_test(test_output_backpressure),
		cmocka_unit_test(test_commit_async_eof),
		cmocka_unit_test(test_commit_lost),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_deadlines),
		cmocka_unit_test(test_spool_backpressure),
		cmocka_unit_test(test_spool_failure),
		cmocka_unit_test(test_data_deadline_cap),
		cmocka_unit_test(test_submission_fields),
		cmocka_unit_test(test_auth_cancelled),
		cmocka_unit_test(test_implicit_tls),
	};
	int failed = 0;

	if (setup_conf(NULL) == -1)
		return 1;
	failed += TABLE_RUN(
	    "transcript", test_transcript, transcripts, transcript_name);
	failed +=
	    TABLE_RUN("mailbox", test_mailbox, mailbox_rows, mailbox_name);
	failed +=
	    cmocka_run_group_tests_name("smtp_session", tests, NULL, NULL);
	teardown_conf(NULL);
	return failed != 0;
}
