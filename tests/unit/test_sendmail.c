/*
 * test_sendmail: msgtrk sendmail's message handling (src/cli/sendmail.c):
 * RFC 5322 address lists (display names, angle addresses, comments,
 * quoted strings, groups, obsolete routes, bare local parts, duplicates,
 * every error) and the rewrite of a message (the "." line without -i,
 * the mbox From line, Bcc removed, From/Date/Message-ID added only when
 * missing, -t recipients, a header without its empty line).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/send.h"
#include "cli/sendmail.h"
#include "msgtrk/buf.h"
#include "table.h"

struct addr_case {
	const char *name;
	const char *in;
	const char *want; /* recipients joined by " ", or NULL: error */
	const char *err; /* a part of the error, when want is NULL */
};

static const struct addr_case addr_cases[] = {
	{ "bare", "a@x.test", "a@x.test", NULL },
	{ "two", "a@x.test, b@x.test", "a@x.test b@x.test", NULL },
	{ "angle", "Alice <a@x.test>", "a@x.test", NULL },
	{ "quoted name with comma", "\"Smith, A.\" <a@x.test>, b@x.test",
	    "a@x.test b@x.test", NULL },
	{ "comment", "a@x.test (Alice, (nested) c)", "a@x.test", NULL },
	{ "comment in name", "Al (the) ice <a@x.test>", "a@x.test", NULL },
	{ "group", "team: a@x.test, B <b@x.test>;, c@x.test",
	    "a@x.test b@x.test c@x.test", NULL },
	{ "empty group", "undisclosed-recipients:;", "", NULL },
	{ "empty", "", "", NULL },
	{ "commas only", " , ,", "", NULL },
	{ "null path", "<>", "", NULL },
	{ "bare local part", "root", "root@d.test", NULL },
	{ "bare local in angle", "Root <root>", "root@d.test", NULL },
	{ "duplicates", "a@x.test, A <a@x.test>, a@x.test", "a@x.test", NULL },
	{ "folded", "a@x.test,\r\n\tb@x.test,\n c@x.test",
	    "a@x.test b@x.test c@x.test", NULL },
	{ "obs-route", "<@r1.test,@r2.test:a@x.test>", "a@x.test", NULL },
	{ "text after angle", "<a@x.test> trailing", "a@x.test", NULL },
	{ "space in address", "a b@x.test", NULL, "not an address" },
	{ "quoted local part", "\"a b\"@x.test", NULL, "not an address" },
	{ "unbalanced quote", "\"a <a@x.test>", NULL, "unbalanced quote" },
	{ "unbalanced comment", "a@x.test (x", NULL, "unbalanced comment" },
	{ "unbalanced angle", "<a@x.test", NULL, "unbalanced '<'" },
	{ "nested angle", "<<a@x.test>>", NULL, "'<' inside" },
	{ "stray close", "a@x.test>", NULL, "'>' without '<'" },
	{ "8-bit", "\xc3\xa9@x.test", NULL, "not an address" },
	{ "too long",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "@x.test",
	    NULL, "longer than" },
};

static const char *
addr_name(const void *row)
{
	return ((const struct addr_case *)row)->name;
}

static void
join(const struct sendmail_rcpts *r, char *out, size_t size)
{
	size_t i, o = 0;

	out[0] = '\0';
	for (i = 0; i < r->n; i++)
		o += (size_t)snprintf(
		    out + o, size - o, "%s%s", i ? " " : "", r->v[i]);
}

static void
test_addr(void **state)
{
	const struct addr_case *c = *state;
	struct sendmail_rcpts r = { NULL, 0, 0 };
	char err[256] = "", got[1024];
	int rc;

	rc = sendmail_addrlist(
	    c->in, strlen(c->in), "d.test", &r, err, sizeof(err));
	if (c->want == NULL) {
		assert_int_equal(rc, -1);
		if (strstr(err, c->err) == NULL)
			fail_msg("error \"%s\" lacks \"%s\"", err, c->err);
	} else {
		if (rc != 0)
			fail_msg("unexpected error: %s", err);
		join(&r, got, sizeof(got));
		assert_string_equal(got, c->want);
	}
	sendmail_rcpts_free(&r);
}

struct rw_case {
	const char *name;
	int dot_ends, extract;
	const char *fullname;
	const char *in;
	const char *want; /* the rewritten message, or NULL: error */
	const char *rcpts; /* with extract */
};

#define HDR "Date: d\nMessage-ID: <m@d>\n"

static const struct rw_case rw_cases[] = {
	{ "kept as is", 0, 0, NULL, "From: f@x\n" HDR "Subject: s\n\nbody\n",
	    "From: f@x\n" HDR "Subject: s\n\nbody\n", "" },
	{ "dot ends", 1, 0, NULL, "From: f@x\n" HDR "\none\n.\ntwo\n",
	    "From: f@x\n" HDR "\none\n", "" },
	{ "dot ends CRLF", 1, 0, NULL,
	    "From: f@x\r\n" HDR "\r\none\r\n.\r\ntwo\r\n",
	    "From: f@x\r\n" HDR "\r\none\r\n", "" },
	{ "dot at the end without LF", 1, 0, NULL, "From: f@x\n" HDR "\nx\n.",
	    "From: f@x\n" HDR "\nx\n", "" },
	{ "-i keeps dots", 0, 0, NULL, "From: f@x\n" HDR "\none\n.\ntwo\n",
	    "From: f@x\n" HDR "\none\n.\ntwo\n", "" },
	{ "dot-text is no end", 1, 0, NULL, "From: f@x\n" HDR "\n.x\n..\n",
	    "From: f@x\n" HDR "\n.x\n..\n", "" },
	{ "mbox From line", 0, 0, NULL,
	    "From f@x Mon Dec  7 00:00:00 2026\nFrom: f@x\n" HDR "\nb\n",
	    "From: f@x\n" HDR "\nb\n", "" },
	{ "bcc removed", 0, 0, NULL,
	    "From: f@x\n" HDR "Bcc: a@x.test,\n b@x.test\nTo: c@x.test\n\nb\n",
	    "From: f@x\n" HDR "To: c@x.test\n\nb\n", "" },
	{ "-t", 0, 1, NULL,
	    "From: f@x\n" HDR
	    "To: A <a@x.test>\nCC: b@x.test,\n\tc@x.test\nbcc: root\n"
	    "Reply-To: r@x.test\n\nb\n",
	    "From: f@x\n" HDR "To: A <a@x.test>\nCC: b@x.test,\n\tc@x.test\n"
	    "Reply-To: r@x.test\n\nb\n",
	    "a@x.test b@x.test c@x.test root@d.test" },
	{ "-t body not searched", 0, 1, NULL,
	    "From: f@x\n" HDR "\nTo: no@x.test\n",
	    "From: f@x\n" HDR "\nTo: no@x.test\n", "" },
	{ "-t bad address", 0, 1, NULL, "To: a b@x\n\nb\n", NULL, NULL },
	{ "From added", 0, 0, NULL, HDR "\nb\n", "From: u@d.test\n" HDR "\nb\n",
	    "" },
	{ "From with a name", 0, 0, "Cron Daemon", HDR "\nb\n",
	    "From: Cron Daemon <u@d.test>\n" HDR "\nb\n", "" },
	{ "From with a quoted name", 0, 0, "Smith, J. \"Jo\"", HDR "\nb\n",
	    "From: \"Smith, J. \\\"Jo\\\"\" <u@d.test>\n" HDR "\nb\n", "" },
	{ "From with an 8-bit name", 0, 0, "Ren\xc3\xa9", HDR "\nb\n",
	    "From: =?UTF-8?B?UmVuw6k=?= <u@d.test>\n" HDR "\nb\n", "" },
	{ "header without blank line", 0, 0, NULL,
	    "From: f@x\n" HDR "body line\nmore\n",
	    "From: f@x\n" HDR "\nbody line\nmore\n", "" },
	{ "header only", 0, 0, NULL, "From: f@x\n" HDR "Subject: s",
	    "From: f@x\n" HDR "Subject: s\n", "" },
	{ "continuation first", 0, 0, NULL, " x\n",
	    "From: u@d.test\n@DATE@@MSGID@\n x\n", "" },
};

static const char *
rw_name(const void *row)
{
	return ((const struct rw_case *)row)->name;
}

static void
test_rewrite(void **state)
{
	const struct rw_case *c = *state;
	struct sendmail_rcpts r = { NULL, 0, 0 };
	struct sendmail_msg_opts mo;
	struct buf in, out;
	char err[256] = "", got[1024];
	int rc;

	buf_init(&in, SEND_MESSAGE_MAX);
	buf_init(&out, SEND_MESSAGE_MAX);
	assert_int_equal(buf_adds(&in, c->in), 0);
	memset(&mo, 0, sizeof(mo));
	mo.dot_ends = c->dot_ends;
	mo.extract = c->extract;
	mo.from = "u@d.test";
	mo.fullname = c->fullname;
	mo.domain = "d.test";
	mo.now = 1796668263;
	rc = sendmail_rewrite(&in, &mo, &out, &r, err, sizeof(err));
	if (c->want == NULL) {
		assert_int_equal(rc, -1);
		assert_non_null(strstr(err, "To: "));
	} else {
		const char *w = c->want, *d;

		if (rc != 0)
			fail_msg("unexpected error: %s", err);
		if ((d = strstr(w, "@DATE@@MSGID@")) != NULL) {
			/* Added Date and Message-ID: the date of mo.now in the
			 * local zone and a random id; checked by shape. */
			const char *o = buf_cstr(&out);
			const char *dl = strstr(o, "\nDate: ");
			const char *ml =
			    strstr(o, "\nMessage-ID: <1796668263.");

			assert_non_null(dl);
			assert_non_null(ml);
			assert_non_null(strstr(ml, "@d.test>\n"));
			assert_int_equal(strncmp(o, w, (size_t)(d - w)), 0);
		} else
			assert_string_equal(buf_cstr(&out), w);
		join(&r, got, sizeof(got));
		assert_string_equal(got, c->rcpts);
	}
	sendmail_rcpts_free(&r);
	buf_reset(&in);
	buf_reset(&out);
}

/* The recipient limit: SEND_RCPT_MAX addresses, then an error. */
static void
test_rcpt_limit(void **state)
{
	struct sendmail_rcpts r = { NULL, 0, 0 };
	char a[64], err[256];
	int i;

	(void)state;
	for (i = 0; i < SEND_RCPT_MAX; i++) {
		snprintf(a, sizeof(a), "r%d@x.test", i);
		assert_int_equal(sendmail_addrlist(a, strlen(a), "d.test", &r,
		                     err, sizeof(err)),
		    0);
	}
	assert_int_equal(r.n, SEND_RCPT_MAX);
	assert_int_equal(sendmail_addrlist("one@more.test", 13, "d.test", &r,
	                     err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "more than"));
	/* A duplicate is no new recipient. */
	assert_int_equal(
	    sendmail_addrlist("r0@x.test", 9, "d.test", &r, err, sizeof(err)),
	    0);
	sendmail_rcpts_free(&r);
}

int
main(void)
{
	const struct CMUnitTest once[] = {
		cmocka_unit_test(test_rcpt_limit),
	};
	int failed = 0;

	failed +=
	    TABLE_RUN("sendmail_addrlist", test_addr, addr_cases, addr_name);
	failed +=
	    TABLE_RUN("sendmail_rewrite", test_rewrite, rw_cases, rw_name);
	failed += cmocka_run_group_tests_name("sendmail", once, NULL, NULL);
	return failed != 0;
}
