/*
 * test_tstatus: message/tracking-status (RFC 3886) parser and generator.
 *
 * Every parser case is fed whole, one byte at a time and split in two at
 * every offset, with identical results.  Valid cases are also generated
 * back and re-parsed (parse(generate(x)) == x).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/tstatus.h"
#include "table.h"

/* The per-message block of the RFC 3887 examples (digest §16). */
#define PM \
	"Original-Envelope-Id: 12345-20010101@example.com\r\n" \
	"Reporting-MTA: dns; example2.com\r\n" \
	"Arrival-Date: Mon, 1 Jan 2001 15:15:15 -0500\r\n"
#define PMD \
	"envid=12345-20010101@example.com\n" \
	"reporting-mta=dns;example2.com\n" \
	"arrival=Mon, 1 Jan 2001 15:15:15 -0500\n"
#define RCPT1 \
	"Original-Recipient: rfc822; user1@example1.com\r\n" \
	"Final-Recipient: rfc822; user1@example1.com\r\n"
#define RCPT1D \
	"-- rcpt\n" \
	"orig=rfc822;user1@example1.com\n" \
	"final=rfc822;user1@example1.com\n"
#define LAD "Last-Attempt-Date: Mon, 1 Jan 2001 19:15:03 -0500\r\n"
#define LADD "last-attempt=Mon, 1 Jan 2001 19:15:03 -0500\n"

/* Writes a canonical text form of t into b, for comparisons. */
static void
dump_date(struct buf *b, const char *name, const struct date *d)
{
	char s[DATE_MAX];

	if (date_format(d, s, sizeof(s)) == -1)
		snprintf(s, sizeof(s), "BAD");
	buf_addf(b, "%s=%s\n", name, s);
}

static void
dump_typed(struct buf *b, const char *name, const struct tstatus_typed *t)
{
	if (t->type != NULL)
		buf_addf(b, "%s=%s;%s\n", name, t->type, t->value);
}

static void
dump_ext(struct buf *b, const struct tstatus_ext *e, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		buf_addf(b, "ext=%s:%s\n", e[i].name, e[i].value);
}

static char *
dump(const struct tstatus *t)
{
	struct buf b;
	size_t i;

	buf_init(&b, 1 << 24);
	buf_addf(&b, "envid=%s\n", t->envid);
	dump_typed(&b, "reporting-mta", &t->reporting_mta);
	dump_date(&b, "arrival", &t->arrival);
	dump_ext(&b, t->ext, t->next);
	for (i = 0; i < t->nrcpt; i++) {
		const struct tstatus_rcpt *r = &t->rcpt[i];

		buf_addf(&b, "-- rcpt\n");
		dump_typed(&b, "orig", &r->orig_rcpt);
		dump_typed(&b, "final", &r->final_rcpt);
		buf_addf(&b, "action=%s\n", tstatus_action_name(r->action));
		buf_addf(&b, "status=%s\n", r->status);
		if (r->status_comment != NULL)
			buf_addf(&b, "comment=%s\n", r->status_comment);
		dump_typed(&b, "remote", &r->remote_mta);
		if (r->has_last_attempt)
			dump_date(&b, "last-attempt", &r->last_attempt);
		if (r->has_will_retry)
			dump_date(&b, "will-retry", &r->will_retry);
		dump_ext(&b, r->ext, r->next);
	}
	return buf_release(&b);
}

/* The outcome of one parse: the dump, or the error and line. */
struct outcome {
	char *dump;
	enum tstatus_error err;
	size_t line;
};

enum feed {
	FEED_WHOLE,
	FEED_BYTES,
};

static struct outcome
parse_split(const struct tstatus_limits *lim, const char *in, size_t len,
    size_t split, enum feed how)
{
	struct tstatus_parser *p = tstatus_parser_new(lim);
	const struct tstatus *t;
	struct outcome o = { NULL, TSTATUS_OK, 0 };
	size_t i;
	int r = 0;

	assert_non_null(p);
	if (how == FEED_BYTES) {
		for (i = 0; i < len && r == 0; i++)
			r = tstatus_parser_push(p, in + i, 1);
	} else {
		r = tstatus_parser_push(p, in, split);
		if (r == 0)
			r = tstatus_parser_push(p, in + split, len - split);
	}
	if (r == 0 && tstatus_parser_end(p, &t) == 1) {
		o.dump = dump(t);
	} else {
		o.err = tstatus_parser_error(p);
		o.line = tstatus_parser_line(p);
		assert_int_not_equal(o.err, TSTATUS_OK);
		/* Errors are sticky. */
		assert_int_equal(tstatus_parser_push(p, "x", 1), -1);
		assert_int_equal(tstatus_parser_error(p), o.err);
	}
	tstatus_parser_free(p);
	return o;
}

/* Parses in every feeding mode and checks they agree. */
static struct outcome
parse_all(const struct tstatus_limits *lim, const char *in, size_t len)
{
	struct outcome whole, o;
	size_t split;

	whole = parse_split(lim, in, len, len, FEED_WHOLE);
	o = parse_split(lim, in, len, 0, FEED_BYTES);
	assert_int_equal(o.err, whole.err);
	assert_int_equal(o.line, whole.line);
	if (whole.dump != NULL)
		assert_string_equal(o.dump, whole.dump);
	free(o.dump);
	for (split = 0; split <= len; split++) {
		o = parse_split(lim, in, len, split, FEED_WHOLE);
		assert_int_equal(o.err, whole.err);
		assert_int_equal(o.line, whole.line);
		if (whole.dump != NULL)
			assert_string_equal(o.dump, whole.dump);
		free(o.dump);
	}
	return whole;
}

/* Generates t, parses it back and compares the dumps. */
static void
check_round_trip(const struct tstatus *t)
{
	struct tstatus_parser *p = tstatus_parser_new(NULL);
	const struct tstatus *back;
	enum tstatus_error err;
	struct buf b;
	char *d1, *d2;

	buf_init(&b, 1 << 24);
	assert_int_equal(tstatus_generate(t, &b, &err), 0);
	assert_int_equal(err, TSTATUS_OK);
	assert_int_equal(tstatus_parser_push(p, b.data, b.len), 0);
	assert_int_equal(tstatus_parser_end(p, &back), 1);
	d1 = dump(t);
	d2 = dump(back);
	assert_string_equal(d1, d2);
	free(d1);
	free(d2);
	buf_reset(&b);
	tstatus_parser_free(p);
}

/*
 * Valid parser input.
 */
struct valid_row {
	const char *name;
	const char *in;
	const char *want; /* expected dump, or NULL to check success only */
	struct tstatus_limits lim;
};

static const struct valid_row valid_rows[] = {
	{ "E1 delivered (RFC 3887 ex. 6)",
	    PM "\r\n" RCPT1 "Action: delivered\r\nStatus: 2.5.0\r\n",
	    PMD RCPT1D "action=delivered\nstatus=2.5.0\n", { 0 } },
	{ "E2 transferred out of order (RFC 3887 ex. 7)",
	    "Original-Envelope-Id: 12345-20010101@example.com\r\n"
	    "Reporting-MTA: dns; example2.com\r\n"
	    "Arrival-Date: Mon,  1 Jan 2001 15:15:15 -0500\r\n"
	    "\r\n" RCPT1 "Action: transferred\r\n"
	    "Remote-MTA: dns; example3.com\r\n" LAD "Status:2.4.0\r\n",
	    PMD RCPT1D "action=transferred\nstatus=2.4.0\n"
	               "remote=dns;example3.com\n" LADD,
	    { 0 } },
	{ "E3 delayed (RFC 3887 ex. 8)",
	    PM "\r\n" RCPT1 "Action: delayed\r\n"
	       "Status: 4.4.1 (No answer from host)\r\n"
	       "Remote-MTA: dns; example3.com\r\n" LAD
	       "Will-Retry-Until: Thu, 4 Jan 2001 15:15:15 -0500\r\n",
	    PMD RCPT1D "action=delayed\nstatus=4.4.1\n"
	               "comment=(No answer from host)\n"
	               "remote=dns;example3.com\n" LADD
	               "will-retry=Thu, 4 Jan 2001 15:15:15 -0500\n",
	    { 0 } },
	{ "E4 corrected (colon added)",
	    PM "\r\n" RCPT1 "Action: relayed\r\nStatus: 2.1.9\r\n"
	       "Remote-MTA: dns; example3.com\r\n" LAD "\r\n"
	       "Original-Recipient: rfc822; user2@example1.com\r\n"
	       "Final-Recipient: rfc822; user2@example1.com\r\n"
	       "Action: failed\r\nStatus: 5.2.2 (Mailbox full)\r\n"
	       "Remote-MTA: dns; example3.com\r\n" LAD,
	    PMD RCPT1D "action=relayed\nstatus=2.1.9\n"
	               "remote=dns;example3.com\n" LADD "-- rcpt\n"
	               "orig=rfc822;user2@example1.com\n"
	               "final=rfc822;user2@example1.com\n"
	               "action=failed\nstatus=5.2.2\ncomment=(Mailbox full)\n"
	               "remote=dns;example3.com\n" LADD,
	    { 0 } },
	{ "E5 part 1 relayed via firewall (RFC 3887 ex. 10)",
	    "Original-Envelope-Id: 12345-20010101@example.com\r\n"
	    "Reporting-MTA: dns; example2.com\r\n"
	    "Arrival-Date: Mon,  1 Jan 2001 15:15:15 -0500\r\n\r\n" RCPT1
	    "Action: relayed\r\nStatus: 2.1.9\r\n"
	    "Remote-MTA: dns; smtp.example3.com\r\n" LAD "\r\n",
	    PMD RCPT1D "action=relayed\nstatus=2.1.9\n"
	               "remote=dns;smtp.example3.com\n" LADD,
	    { 0 } },
	{ "E5 part 2 delivered (RFC 3887 ex. 10)",
	    "Original-Envelope-Id: 12345-20010101@example.com\r\n"
	    "Reporting-MTA: dns; smtp.example3.com\r\n"
	    "Arrival-Date: Mon,  1 Jan 2001 15:15:15 -0500\r\n\r\n"
	    "Original-Recipient: rfc822; user2@example1.com\r\n"
	    "Final-Recipient: rfc822; user4@example3.com\r\n"
	    "Action: delivered\r\nStatus: 2.5.0\r\n\r\n",
	    "envid=12345-20010101@example.com\n"
	    "reporting-mta=dns;smtp.example3.com\n"
	    "arrival=Mon, 1 Jan 2001 15:15:15 -0500\n"
	    "-- rcpt\norig=rfc822;user2@example1.com\n"
	    "final=rfc822;user4@example3.com\n"
	    "action=delivered\nstatus=2.5.0\n",
	    { 0 } },
	{ "bare LF line ends",
	    "Original-Envelope-Id: e@x\nReporting-MTA: dns; x\n"
	    "Arrival-Date: Mon, 1 Jan 2001 15:15:15 -0500\n\n"
	    "Original-Recipient: rfc822; a@b\nFinal-Recipient: rfc822; a@b\n"
	    "Action: failed\nStatus: 5.1.1\n",
	    "envid=e@x\nreporting-mta=dns;x\n"
	    "arrival=Mon, 1 Jan 2001 15:15:15 -0500\n-- rcpt\n"
	    "orig=rfc822;a@b\nfinal=rfc822;a@b\naction=failed\n"
	    "status=5.1.1\n",
	    { 0 } },
	{ "mixed CRLF and LF",
	    PM "\n" RCPT1 "Action: delivered\nStatus: 2.5.0\r\n",
	    PMD RCPT1D "action=delivered\nstatus=2.5.0\n", { 0 } },
	{ "field names in any case, type spelling kept",
	    "ORIGINAL-ENVELOPE-ID: 12345-20010101@example.com\r\n"
	    "reporting-mta: dns; example2.com\r\n"
	    "aRRIVAL-dATE: Mon, 1 Jan 2001 15:15:15 -0500\r\n\r\n"
	    "original-recipient: RFC822; User1@Example1.com\r\n"
	    "FINAL-RECIPIENT: Rfc822; user1@example1.com\r\n"
	    "ACTION: DeLiVeReD\r\nstatus: 2.5.0\r\n",
	    PMD "-- rcpt\norig=RFC822;User1@Example1.com\n"
	        "final=Rfc822;user1@example1.com\n"
	        "action=delivered\nstatus=2.5.0\n",
	    { 0 } },
	{ "action failed",
	    PM "\r\n" RCPT1 "Action: failed\r\nStatus: 5.0.0\r\n",
	    PMD RCPT1D "action=failed\nstatus=5.0.0\n", { 0 } },
	{ "action expanded",
	    PM "\r\n" RCPT1 "Action: expanded\r\nStatus: 2.0.0\r\n",
	    PMD RCPT1D "action=expanded\nstatus=2.0.0\n", { 0 } },
	{ "action opaque",
	    PM "\r\n" RCPT1 "Action: opaque\r\nStatus: 2.0.0\r\n",
	    PMD RCPT1D "action=opaque\nstatus=2.0.0\n", { 0 } },
	{ "opaque with Last-Attempt-Date (not forbidden, P-10)",
	    PM "\r\n" RCPT1 "Action: opaque\r\nStatus: 2.0.0\r\n" LAD,
	    PMD RCPT1D "action=opaque\nstatus=2.0.0\n" LADD, { 0 } },
	{ "relayed without Last-Attempt-Date (parser cannot know)",
	    PM "\r\n" RCPT1 "Action: relayed\r\nStatus: 2.1.9\r\n",
	    PMD RCPT1D "action=relayed\nstatus=2.1.9\n", { 0 } },
	{ "delayed with 5.x.x (no class rule in the parser)",
	    PM "\r\n" RCPT1 "Action: delayed\r\nStatus: 5.0.0\r\n",
	    PMD RCPT1D "action=delayed\nstatus=5.0.0\n", { 0 } },
	{ "folded value with SPACE and HTAB",
	    PM "\r\n"
	       "Original-Recipient: rfc822;\r\n user1@example1.com\r\n"
	       "Final-Recipient:\r\n\trfc822;\r\n user1@example1.com\r\n"
	       "Action:\r\n delivered\r\nStatus: 2.5.0\r\n",
	    PMD RCPT1D "action=delivered\nstatus=2.5.0\n", { 0 } },
	{ "folded extension keeps inner white space",
	    PM "X-Note: a\r\n  b\r\n\tc\r\n\r\n" RCPT1
	       "Action: delivered\r\nStatus: 2.5.0\r\n",
	    PMD "ext=X-Note:a  b\tc\n" RCPT1D
	        "action=delivered\nstatus=2.5.0\n",
	    { 0 } },
	{ "whitespace-only line is a continuation (P-4)",
	    PM "X-Note: a\r\n \r\n\r\n" RCPT1
	       "Action: delivered\r\nStatus: 2.5.0\r\n",
	    PMD "ext=X-Note:a\n" RCPT1D "action=delivered\nstatus=2.5.0\n",
	    { 0 } },
	{ "comments in Action, Status, dates and types",
	    "Original-Envelope-Id: 12345-20010101@example.com\r\n"
	    "Reporting-MTA: dns (the dns) ; example2.com\r\n"
	    "Arrival-Date: Mon, 1 Jan 2001 15:15:15 -0500 (EST)\r\n\r\n"
	    "Original-Recipient: (c)rfc822; user1@example1.com\r\n"
	    "Final-Recipient: rfc822; user1@example1.com\r\n"
	    "Action: (why) failed (permanently)\r\n"
	    "Status: 5.0.0 (a (nested) comment) (two)\r\n"
	    "Remote-MTA: dns; example3.com\r\n"
	    "Last-Attempt-Date: (x) Mon, 1 Jan 2001 19:15:03 -0500\r\n",
	    PMD RCPT1D "action=failed\nstatus=5.0.0\n"
	               "comment=(a (nested) comment) (two)\n"
	               "remote=dns;example3.com\n" LADD,
	    { 0 } },
	{ "parentheses in *text values are kept",
	    "Original-Envelope-Id: (x)id@h\r\n"
	    "Reporting-MTA: dns; example2.com (not a comment)\r\n"
	    "Arrival-Date: Mon, 1 Jan 2001 15:15:15 -0500\r\n\r\n"
	    "Original-Recipient: rfc822; \"(a)\"@b\r\n"
	    "Final-Recipient: rfc822; c@d; e\r\n"
	    "Action: delivered\r\nStatus: 2.5.0\r\n",
	    "envid=(x)id@h\nreporting-mta=dns;example2.com (not a comment)\n"
	    "arrival=Mon, 1 Jan 2001 15:15:15 -0500\n-- rcpt\n"
	    "orig=rfc822;\"(a)\"@b\nfinal=rfc822;c@d; e\n"
	    "action=delivered\nstatus=2.5.0\n",
	    { 0 } },
	{ "extension fields kept in order, repeats allowed",
	    PM
	    "X-A: 1\r\nX-B: 2\r\nX-A: 3\r\n\r\n" RCPT1
	    "X-R: r1\r\nAction: delivered\r\nDiagnostic-Code: smtp; 250 ok\r\n"
	    "Status: 2.5.0\r\nX-R: r2\r\nFinal-Log-ID: 77\r\n",
	    PMD "ext=X-A:1\next=X-B:2\next=X-A:3\n" RCPT1D
	        "action=delivered\nstatus=2.5.0\next=X-R:r1\n"
	        "ext=Diagnostic-Code:smtp; 250 ok\next=X-R:r2\n"
	        "ext=Final-Log-ID:77\n",
	    { 0 } },
	{ "DSN per-message fields are extensions",
	    PM "DSN-Gateway: dns; gw\r\nReceived-From-MTA: dns; a\r\n\r\n" RCPT1
	       "Action: delivered\r\nStatus: 2.5.0\r\n",
	    PMD "ext=DSN-Gateway:dns; gw\next=Received-From-MTA:dns; a\n" RCPT1D
	        "action=delivered\nstatus=2.5.0\n",
	    { 0 } },
	{ "empty extension value",
	    PM "X-Empty:\r\nX-Blank:   \r\n\r\n" RCPT1
	       "Action: delivered\r\nStatus: 2.5.0\r\n",
	    PMD "ext=X-Empty:\next=X-Blank:\n" RCPT1D
	        "action=delivered\nstatus=2.5.0\n",
	    { 0 } },
	{ "leading, repeated and trailing empty lines",
	    "\r\n\n" PM "\r\n\r\n\n" RCPT1
	    "Action: delivered\r\nStatus: 2.5.0\r\n\r\n\r\n",
	    PMD RCPT1D "action=delivered\nstatus=2.5.0\n", { 0 } },
	{ "unterminated last line",
	    PM "\r\n" RCPT1 "Action: delivered\r\nStatus: 2.5.0",
	    PMD RCPT1D "action=delivered\nstatus=2.5.0\n", { 0 } },
	{ "named zone, military zone, 2-digit year (P-9)",
	    "Original-Envelope-Id: 12345-20010101@example.com\r\n"
	    "Reporting-MTA: dns; example2.com\r\n"
	    "Arrival-Date: Mon, 1 Jan 01 15:15:15 EST\r\n\r\n" RCPT1
	    "Action: delayed\r\nStatus: 4.0.0\r\n"
	    "Will-Retry-Until: 4 Jan 2001 20:15 Z\r\n",
	    PMD RCPT1D "action=delayed\nstatus=4.0.0\n"
	               "will-retry=Thu, 4 Jan 2001 20:15:00 +0000\n",
	    { 0 } },
	{ "status without space, at limits of digits",
	    PM "\r\n" RCPT1 "Action: failed\r\nStatus:5.999.999\r\n",
	    PMD RCPT1D "action=failed\nstatus=5.999.999\n", { 0 } },
	{ "status with zero fields",
	    PM "\r\n" RCPT1 "Action: delayed\r\nStatus: 4.0.0\r\n",
	    PMD RCPT1D "action=delayed\nstatus=4.0.0\n", { 0 } },
	{ "three recipients",
	    PM "\r\n" RCPT1 "Action: delivered\r\n"
	       "Status: 2.5.0\r\n\r\n" RCPT1
	       "Action: failed\r\nStatus: 5.1.1\r\n\r\n" RCPT1
	       "Action: expanded\r\nStatus: 2.0.0\r\n",
	    PMD RCPT1D "action=delivered\nstatus=2.5.0\n" RCPT1D
	               "action=failed\nstatus=5.1.1\n" RCPT1D
	               "action=expanded\nstatus=2.0.0\n",
	    { 0 } },
	{ "HTAB inside a value",
	    PM "X-T: a\tb\r\n\r\n" RCPT1
	       "Action: delivered\r\nStatus: 2.5.0\r\n",
	    PMD "ext=X-T:a\tb\n" RCPT1D "action=delivered\nstatus=2.5.0\n",
	    { 0 } },
	{ "limits: rcpt_max 2 with 2 recipients",
	    PM "\r\n" RCPT1 "Action: delivered\r\nStatus: 2.5.0\r\n\r\n" RCPT1
	       "Action: delivered\r\nStatus: 2.5.0\r\n",
	    NULL, { .rcpt_max = 2 } },
	{ "limits: fields_max 4 with 4 fields",
	    PM "X-A: 1\r\n\r\n" RCPT1 "Action: delivered\r\nStatus: 2.5.0\r\n",
	    NULL, { .fields_max = 4 } },
	{ "limits: line_max 60, longest line 60",
	    PM "X-A: 123456789012345678901234567890123456789012345678901234\r\n"
	       "\r\n" RCPT1 "Action: delivered\r\nStatus: 2.5.0\r\n",
	    NULL, { .line_max = 60 } },
	{ "limits: size_max exact",
	    PM "\r\n" RCPT1 "Action: delivered\r\nStatus: 2.5.0\r\n", NULL,
	    { .size_max = sizeof(PM "\r\n" RCPT1
	                            "Action: delivered\r\nStatus: 2.5.0\r\n") -
	            1 } },
	{ "limits: field_max exact (folded)",
	    PM "X-A: 1234567890123456789012345678901234567890\r\n 6789\r\n"
	       "\r\n" RCPT1 "Action: delivered\r\nStatus: 2.5.0\r\n",
	    NULL, { .field_max = 50, .line_max = 50 } },
};

static const char *
valid_name(const void *row)
{
	return ((const struct valid_row *)row)->name;
}

static void
test_valid(void **state)
{
	const struct valid_row *row = *state;
	struct tstatus_parser *p;
	const struct tstatus *t;
	struct outcome o;

	o = parse_all(&row->lim, row->in, strlen(row->in));
	if (o.dump == NULL)
		fail_msg("parse failed: %s at line %zu",
		    tstatus_strerror(o.err), o.line);
	if (row->want != NULL)
		assert_string_equal(o.dump, row->want);
	free(o.dump);
	/* Generate what we parsed (when the generator accepts it, it is
	 * stricter), and parse it back. */
	p = tstatus_parser_new(&row->lim);
	assert_int_equal(tstatus_parser_push(p, row->in, strlen(row->in)), 0);
	assert_int_equal(tstatus_parser_end(p, &t), 1);
	{
		struct buf b;
		enum tstatus_error err;

		buf_init(&b, 1 << 20);
		if (tstatus_generate(t, &b, &err) == 0)
			check_round_trip(t);
		buf_reset(&b);
	}
	tstatus_parser_free(p);
}

/*
 * Invalid parser input: each tied to its error code (and line, if not 0).
 */
struct invalid_row {
	const char *name;
	const char *in;
	size_t len; /* 0: strlen(in) */
	enum tstatus_error err;
	size_t line;
	struct tstatus_limits lim;
};

#define OKR RCPT1 "Action: delivered\r\nStatus: 2.5.0\r\n"

static const struct invalid_row invalid_rows[] = {
	{ "E4 as published: 'Status 5.2.2' without colon",
	    PM "\r\n" RCPT1 "Action: relayed\r\nStatus: 2.1.9\r\n"
	       "Remote-MTA: dns; example3.com\r\n" LAD "\r\n"
	       "Original-Recipient: rfc822; user2@example1.com\r\n"
	       "Final-Recipient: rfc822; user2@example1.com\r\n"
	       "Action: failed\r\nStatus 5.2.2 (Mailbox full)\r\n"
	       "Remote-MTA: dns; example3.com\r\n" LAD,
	    0, TSTATUS_E_SYNTAX, 15, { 0 } },
	{ "white space before colon", PM "\r\n" RCPT1 "Action : delivered\r\n",
	    0, TSTATUS_E_SYNTAX, 7, { 0 } },
	{ "line without colon", PM "hello\r\n\r\n" OKR, 0, TSTATUS_E_SYNTAX, 4,
	    { 0 } },
	{ "continuation as first line", " X-A: 1\r\n" PM "\r\n" OKR, 0,
	    TSTATUS_E_SYNTAX, 1, { 0 } },
	{ "continuation after empty line", PM "\r\n continued\r\n" OKR, 0,
	    TSTATUS_E_SYNTAX, 5, { 0 } },
	{ "NUL in a value", "Original-Envelope-Id: a\0b\r\n", 27,
	    TSTATUS_E_BAD_CHAR, 1, { 0 } },
	{ "bare CR inside a line", PM "X-A: a\rb\r\n\r\n" OKR, 0,
	    TSTATUS_E_BAD_CHAR, 4, { 0 } },
	{ "bare CR at the end", PM "\r\n" OKR "\r", 0, TSTATUS_E_BAD_CHAR, 0,
	    { 0 } },
	{ "control character", PM "X-A: a\001b\r\n\r\n" OKR, 0,
	    TSTATUS_E_BAD_CHAR, 4, { 0 } },
	{ "DEL", PM "X-A: a\177\r\n\r\n" OKR, 0, TSTATUS_E_BAD_CHAR, 4, { 0 } },
	{ "8-bit in a value", PM "X-A: caf\303\251\r\n\r\n" OKR, 0,
	    TSTATUS_E_NON_ASCII, 4, { 0 } },
	{ "8-bit in a comment",
	    PM "\r\n" RCPT1 "Action: delivered\r\nStatus: 2.5.0 (\377)\r\n", 0,
	    TSTATUS_E_NON_ASCII, 8, { 0 } },
	{ "empty body", "", 0, TSTATUS_E_MISSING_FIELD, 0, { 0 } },
	{ "only empty lines", "\r\n\r\n", 0, TSTATUS_E_MISSING_FIELD, 0,
	    { 0 } },
	{ "no Original-Envelope-Id",
	    "Reporting-MTA: dns; x\r\n"
	    "Arrival-Date: Mon, 1 Jan 2001 15:15:15 -0500\r\n\r\n" OKR,
	    0, TSTATUS_E_MISSING_FIELD, 3, { 0 } },
	{ "no Reporting-MTA",
	    "Original-Envelope-Id: e@x\r\n"
	    "Arrival-Date: Mon, 1 Jan 2001 15:15:15 -0500\r\n\r\n" OKR,
	    0, TSTATUS_E_MISSING_FIELD, 3, { 0 } },
	{ "no Arrival-Date (required in RFC 3886)",
	    "Original-Envelope-Id: e@x\r\nReporting-MTA: dns; x\r\n\r\n" OKR, 0,
	    TSTATUS_E_MISSING_FIELD, 3, { 0 } },
	{ "no Original-Recipient (required in RFC 3886)",
	    PM "\r\nFinal-Recipient: rfc822; a@b\r\nAction: delivered\r\n"
	       "Status: 2.5.0\r\n",
	    0, TSTATUS_E_MISSING_FIELD, 0, { 0 } },
	{ "no Final-Recipient",
	    PM "\r\nOriginal-Recipient: rfc822; a@b\r\nAction: delivered\r\n"
	       "Status: 2.5.0\r\n\r\n",
	    0, TSTATUS_E_MISSING_FIELD, 8, { 0 } },
	{ "no Action", PM "\r\n" RCPT1 "Status: 2.5.0\r\n", 0,
	    TSTATUS_E_MISSING_FIELD, 0, { 0 } },
	{ "no Status", PM "\r\n" RCPT1 "Action: delivered\r\n", 0,
	    TSTATUS_E_MISSING_FIELD, 0, { 0 } },
	{ "Remote-MTA without Last-Attempt-Date",
	    PM "\r\n" RCPT1 "Action: failed\r\nStatus: 5.0.0\r\n"
	       "Remote-MTA: dns; x\r\n",
	    0, TSTATUS_E_MISSING_FIELD, 0, { 0 } },
	{ "second recipient incomplete",
	    PM "\r\n" OKR "\r\n" RCPT1 "Action: delivered\r\n", 0,
	    TSTATUS_E_MISSING_FIELD, 0, { 0 } },
	{ "empty Original-Envelope-Id", "Original-Envelope-Id:   \r\n", 0,
	    TSTATUS_E_EMPTY_VALUE, 1, { 0 } },
	{ "empty Action", PM "\r\n" RCPT1 "Action:\r\n", 0,
	    TSTATUS_E_EMPTY_VALUE, 0, { 0 } },
	{ "empty Status", PM "\r\n" RCPT1 "Status: \r\nAction: failed\r\n", 0,
	    TSTATUS_E_EMPTY_VALUE, 7, { 0 } },
	{ "empty Arrival-Date", "Arrival-Date:\r\n\r\n", 0,
	    TSTATUS_E_EMPTY_VALUE, 1, { 0 } },
	{ "duplicate Action",
	    PM "\r\n" RCPT1 "Action: delivered\r\naction: delivered\r\n"
	       "Status: 2.5.0\r\n",
	    0, TSTATUS_E_DUPLICATE_FIELD, 8, { 0 } },
	{ "duplicate Original-Envelope-Id",
	    PM "Original-Envelope-Id: other\r\n\r\n" OKR, 0,
	    TSTATUS_E_DUPLICATE_FIELD, 4, { 0 } },
	{ "duplicate Last-Attempt-Date", PM "\r\n" OKR LAD LAD, 0,
	    TSTATUS_E_DUPLICATE_FIELD, 10, { 0 } },
	{ "missing blank line after per-message block", PM OKR, 0,
	    TSTATUS_E_FIELD_IN_WRONG_BLOCK, 4, { 0 } },
	{ "Arrival-Date in a recipient block",
	    PM "\r\n" OKR "Arrival-Date: Mon, 1 Jan 2001 15:15:15 -0500\r\n", 0,
	    TSTATUS_E_FIELD_IN_WRONG_BLOCK, 0, { 0 } },
	{ "Status in the per-message block", PM "Status: 2.0.0\r\n\r\n" OKR, 0,
	    TSTATUS_E_FIELD_IN_WRONG_BLOCK, 4, { 0 } },
	{ "no recipient block", PM, 0, TSTATUS_E_NO_RECIPIENTS, 0, { 0 } },
	{ "no recipient block, trailing empty lines", PM "\r\n\r\n", 0,
	    TSTATUS_E_NO_RECIPIENTS, 0, { 0 } },
	{ "typed field without ';'",
	    PM "\r\nOriginal-Recipient: rfc822 a@b\r\n", 0,
	    TSTATUS_E_BAD_TYPED_FIELD, 5, { 0 } },
	{ "typed field with empty type", PM "\r\nOriginal-Recipient: ; a@b\r\n",
	    0, TSTATUS_E_BAD_TYPED_FIELD, 5, { 0 } },
	{ "typed field with empty value",
	    PM "\r\nOriginal-Recipient: rfc822;  \r\n", 0,
	    TSTATUS_E_BAD_TYPED_FIELD, 5, { 0 } },
	{ "typed field, two words in type", "Reporting-MTA: d ns; x\r\n", 0,
	    TSTATUS_E_BAD_TYPED_FIELD, 1, { 0 } },
	{ "typed field, special in type", "Reporting-MTA: d.ns; x\r\n", 0,
	    TSTATUS_E_BAD_TYPED_FIELD, 1, { 0 } },
	{ "typed field, open comment in type", "Reporting-MTA: dns (x; y\r\n",
	    0, TSTATUS_E_BAD_TYPED_FIELD, 1, { 0 } },
	{ "unknown action", PM "\r\n" RCPT1 "Action: bounced\r\n", 0,
	    TSTATUS_E_BAD_ACTION, 0, { 0 } },
	{ "two actions", PM "\r\n" RCPT1 "Action: failed delayed\r\n", 0,
	    TSTATUS_E_BAD_ACTION, 0, { 0 } },
	{ "action with open comment", PM "\r\n" RCPT1 "Action: failed (x\r\n",
	    0, TSTATUS_E_BAD_ACTION, 0, { 0 } },
	{ "action prefix", PM "\r\n" RCPT1 "Action: fail\r\n", 0,
	    TSTATUS_E_BAD_ACTION, 0, { 0 } },
	{ "status class 3", PM "\r\n" RCPT1 "Status: 3.0.0\r\n", 0,
	    TSTATUS_E_BAD_STATUS, 0, { 0 } },
	{ "status leading zero", PM "\r\n" RCPT1 "Status: 2.01.0\r\n", 0,
	    TSTATUS_E_BAD_STATUS, 0, { 0 } },
	{ "status leading zero in detail", PM "\r\n" RCPT1 "Status: 2.1.00\r\n",
	    0, TSTATUS_E_BAD_STATUS, 0, { 0 } },
	{ "status 4 digits", PM "\r\n" RCPT1 "Status: 2.1234.0\r\n", 0,
	    TSTATUS_E_BAD_STATUS, 0, { 0 } },
	{ "status two parts", PM "\r\n" RCPT1 "Status: 2.0\r\n", 0,
	    TSTATUS_E_BAD_STATUS, 0, { 0 } },
	{ "status four parts", PM "\r\n" RCPT1 "Status: 2.0.0.0\r\n", 0,
	    TSTATUS_E_BAD_STATUS, 0, { 0 } },
	{ "status with inner space", PM "\r\n" RCPT1 "Status: 2. 0.0\r\n", 0,
	    TSTATUS_E_BAD_STATUS, 0, { 0 } },
	{ "status with inner comment", PM "\r\n" RCPT1 "Status: 2.0(x).0\r\n",
	    0, TSTATUS_E_BAD_STATUS, 0, { 0 } },
	{ "status followed by text", PM "\r\n" RCPT1 "Status: 2.0.0 ok\r\n", 0,
	    TSTATUS_E_BAD_STATUS, 0, { 0 } },
	{ "status with open comment", PM "\r\n" RCPT1 "Status: 2.0.0 (ok\r\n",
	    0, TSTATUS_E_BAD_STATUS, 0, { 0 } },
	{ "status two-digit class", PM "\r\n" RCPT1 "Status: 20.0.0\r\n", 0,
	    TSTATUS_E_BAD_STATUS, 0, { 0 } },
	{ "status letters", PM "\r\n" RCPT1 "Status: x.y.z\r\n", 0,
	    TSTATUS_E_BAD_STATUS, 0, { 0 } },
	{ "2.1.9 with delivered",
	    PM "\r\n" RCPT1 "Action: delivered\r\nStatus: 2.1.9\r\n", 0,
	    TSTATUS_E_STATUS_ACTION_MISMATCH, 0, { 0 } },
	{ "2.1.9 with transferred",
	    PM "\r\n" RCPT1 "Action: transferred\r\nStatus: 2.1.9\r\n" LAD, 0,
	    TSTATUS_E_STATUS_ACTION_MISMATCH, 0, { 0 } },
	{ "Arrival-Date not a date", "Arrival-Date: yesterday\r\n\r\n", 0,
	    TSTATUS_E_BAD_DATE, 1, { 0 } },
	{ "Arrival-Date wrong day of week",
	    "Arrival-Date: Tue, 1 Jan 2001 15:15:15 -0500\r\n\r\n", 0,
	    TSTATUS_E_BAD_DATE, 1, { 0 } },
	{ "Arrival-Date 30 Feb",
	    "Arrival-Date: 30 Feb 2001 15:15:15 -0500\r\n\r\n", 0,
	    TSTATUS_E_BAD_DATE, 1, { 0 } },
	{ "Arrival-Date hour 24",
	    "Arrival-Date: 1 Jan 2001 24:00 -0500\r\n\r\n", 0,
	    TSTATUS_E_BAD_DATE, 1, { 0 } },
	{ "Arrival-Date without zone",
	    "Arrival-Date: 1 Jan 2001 15:15:15\r\n\r\n", 0, TSTATUS_E_BAD_DATE,
	    1, { 0 } },
	{ "Last-Attempt-Date malformed",
	    PM "\r\n" RCPT1 "Last-Attempt-Date: 1 Foo 2001 15:15 +0000\r\n", 0,
	    TSTATUS_E_BAD_DATE, 0, { 0 } },
	{ "Will-Retry-Until bad zone",
	    PM "\r\n" RCPT1 "Will-Retry-Until: 1 Jan 2001 15:15 +0075\r\n", 0,
	    TSTATUS_E_BAD_DATE, 0, { 0 } },
	{ "Will-Retry-Until with delivered",
	    PM "\r\n" OKR "Will-Retry-Until: 4 Jan 2001 15:15 +0000\r\n", 0,
	    TSTATUS_E_FIELD_NOT_ALLOWED, 0, { 0 } },
	{ "Will-Retry-Until with failed",
	    PM "\r\n" RCPT1 "Action: failed\r\nStatus: 5.0.0\r\n"
	       "Will-Retry-Until: 4 Jan 2001 15:15 +0000\r\n",
	    0, TSTATUS_E_FIELD_NOT_ALLOWED, 0, { 0 } },
	{ "Will-Retry-Until with opaque",
	    PM "\r\n" RCPT1 "Action: opaque\r\nStatus: 2.0.0\r\n"
	       "Will-Retry-Until: 4 Jan 2001 15:15 +0000\r\n",
	    0, TSTATUS_E_FIELD_NOT_ALLOWED, 0, { 0 } },
	{ "Remote-MTA with opaque",
	    PM "\r\n" RCPT1 "Action: opaque\r\nStatus: 2.0.0\r\n"
	       "Remote-MTA: dns; x\r\n" LAD,
	    0, TSTATUS_E_FIELD_NOT_ALLOWED, 0, { 0 } },
	{ "field name with '.'", PM "X-Foo.Bar: 1\r\n\r\n" OKR, 0,
	    TSTATUS_E_BAD_FIELD_NAME, 4, { 0 } },
	{ "field name with '@'", PM "X@Y: 1\r\n\r\n" OKR, 0,
	    TSTATUS_E_BAD_FIELD_NAME, 4, { 0 } },
	{ "empty field name", PM ": 1\r\n\r\n" OKR, 0, TSTATUS_E_BAD_FIELD_NAME,
	    4, { 0 } },
	{ "line over line_max",
	    PM
	    "X-A: 12345678901234567890123456789012345678901234567\r\n\r\n" OKR,
	    0, TSTATUS_E_LINE_TOO_LONG, 4, { .line_max = 50 } },
	{ "field over field_max",
	    PM "X-A: 1234567890123456789012345678901234567890\r\n 67890\r\n"
	       "\r\n" OKR,
	    0, TSTATUS_E_FIELD_TOO_LONG, 5,
	    { .field_max = 50, .line_max = 50 } },
	{ "too many fields", PM "X-A: 1\r\nX-B: 2\r\n\r\n" OKR, 0,
	    TSTATUS_E_TOO_MANY_FIELDS, 5, { .fields_max = 4 } },
	{ "too many fields in a recipient block", PM "\r\n" OKR "X-A: 1\r\n", 0,
	    TSTATUS_E_TOO_MANY_FIELDS, 0, { .fields_max = 4 } },
	{ "too many recipients", PM "\r\n" OKR "\r\n" OKR "\r\n" OKR, 0,
	    TSTATUS_E_TOO_MANY_RECIPIENTS, 0, { .rcpt_max = 2 } },
	{ "size over size_max", PM "\r\n" OKR, 0, TSTATUS_E_TOO_BIG, 0,
	    { .size_max = 100 } },
	{ "size one over size_max", PM "\r\n" OKR, 0, TSTATUS_E_TOO_BIG, 0,
	    { .size_max = sizeof(PM "\r\n" OKR) - 2 } },
};

static const char *
invalid_name(const void *row)
{
	return ((const struct invalid_row *)row)->name;
}

static void
test_invalid(void **state)
{
	const struct invalid_row *row = *state;
	size_t len = row->len ? row->len : strlen(row->in);
	struct outcome o;

	o = parse_all(&row->lim, row->in, len);
	if (o.dump != NULL)
		fail_msg("parsed, want %s", tstatus_strerror(row->err));
	if (o.err != row->err)
		fail_msg("got %s, want %s", tstatus_strerror(o.err),
		    tstatus_strerror(row->err));
	if (row->line != 0)
		assert_int_equal(o.line, row->line);
}

/*
 * Generator.
 */
static const struct date d_arrival = { 978380115, -5 * 3600 };
static const struct date d_attempt = { 978394503, -5 * 3600 };
static const struct date d_retry = { 978639315, -5 * 3600 };

static struct tstatus_rcpt
rcpt(enum tstatus_action a, const char *status)
{
	struct tstatus_rcpt r;

	memset(&r, 0, sizeof(r));
	r.orig_rcpt.type = "rfc822";
	r.orig_rcpt.value = "user1@example1.com";
	r.final_rcpt.type = "rfc822";
	r.final_rcpt.value = "user1@example1.com";
	r.action = a;
	r.status = status;
	return r;
}

static struct tstatus
report(const struct tstatus_rcpt *r, size_t n)
{
	struct tstatus t;

	memset(&t, 0, sizeof(t));
	t.envid = "12345-20010101@example.com";
	t.reporting_mta.type = "dns";
	t.reporting_mta.value = "example2.com";
	t.arrival = d_arrival;
	t.rcpt = r;
	t.nrcpt = n;
	return t;
}

/* Every action with every combination of the optional fields: the
 * generator must accept exactly the combinations the RFC allows, and
 * what it accepts must parse back to the same struct. */
struct combo_row {
	char name[80];
	enum tstatus_action action;
	unsigned mask;
};
#define C_REMOTE 1u
#define C_LAD 2u
#define C_WRU 4u
#define C_COMMENT 8u
#define C_EXT 16u
#define C_ALL 32u

static struct combo_row combo_rows[7 * C_ALL];

static const char *
combo_name(const void *row)
{
	return ((const struct combo_row *)row)->name;
}

static const char *
status_for(enum tstatus_action a)
{
	switch (a) {
	case TSTATUS_ACTION_FAILED:
		return "5.0.0";
	case TSTATUS_ACTION_DELAYED:
		return "4.4.1";
	case TSTATUS_ACTION_DELIVERED:
		return "2.5.0";
	case TSTATUS_ACTION_RELAYED:
		return "2.1.9";
	case TSTATUS_ACTION_EXPANDED:
		return "2.0.0";
	case TSTATUS_ACTION_TRANSFERRED:
		return "2.4.0";
	default:
		return "5.3.0";
	}
}

/* The expected result, derived from the rules (RFC 3886 §3.3.5-3.3.7). */
static enum tstatus_error
combo_expect(enum tstatus_action a, unsigned m)
{
	if (a == TSTATUS_ACTION_OPAQUE && (m & (C_REMOTE | C_LAD | C_WRU)))
		return TSTATUS_E_FIELD_NOT_ALLOWED;
	if ((m & C_WRU) && a != TSTATUS_ACTION_DELAYED)
		return TSTATUS_E_FIELD_NOT_ALLOWED;
	if ((m & C_REMOTE) && !(m & C_LAD))
		return TSTATUS_E_MISSING_FIELD;
	if ((a == TSTATUS_ACTION_RELAYED || a == TSTATUS_ACTION_TRANSFERRED) &&
	    !(m & C_LAD))
		return TSTATUS_E_MISSING_FIELD;
	return TSTATUS_OK;
}

static void
test_combo(void **state)
{
	const struct combo_row *row = *state;
	static const struct tstatus_ext ext[] = { { "X-Queue-ID", "4711" },
		{ "Diagnostic-Code", "smtp; 250 2.0.0 queued as 4711" } };
	struct tstatus_rcpt r = rcpt(row->action, status_for(row->action));
	struct tstatus t = report(&r, 1);
	enum tstatus_error want = combo_expect(row->action, row->mask), err;
	struct buf b;

	if (row->mask & C_REMOTE) {
		r.remote_mta.type = "dns";
		r.remote_mta.value = "example3.com";
	}
	if (row->mask & C_LAD) {
		r.has_last_attempt = 1;
		r.last_attempt = d_attempt;
	}
	if (row->mask & C_WRU) {
		r.has_will_retry = 1;
		r.will_retry = d_retry;
	}
	if (row->mask & C_COMMENT)
		r.status_comment = "(see (nested) comment)";
	if (row->mask & C_EXT) {
		r.ext = ext;
		r.next = 2;
		t.ext = ext;
		t.next = 1;
	}
	buf_init(&b, 1 << 16);
	buf_adds(&b, "keep");
	if (tstatus_generate(&t, &b, &err) == 0) {
		assert_int_equal(want, TSTATUS_OK);
		assert_int_equal(err, TSTATUS_OK);
		check_round_trip(&t);
	} else {
		if (err != want)
			fail_msg("got %s, want %s", tstatus_strerror(err),
			    tstatus_strerror(want));
		/* Nothing written on failure. */
		assert_string_equal(buf_cstr(&b), "keep");
	}
	buf_reset(&b);
}

static size_t
combo_fill(void)
{
	size_t n = 0;
	int a;
	unsigned m;

	for (a = TSTATUS_ACTION_FAILED; a <= TSTATUS_ACTION_OPAQUE; a++)
		for (m = 0; m < C_ALL; m++) {
			struct combo_row *row = &combo_rows[n++];

			row->action = (enum tstatus_action)a;
			row->mask = m;
			snprintf(row->name, sizeof(row->name), "%s%s%s%s%s%s",
			    tstatus_action_name(row->action),
			    m & C_REMOTE ? " +remote" : "",
			    m & C_LAD ? " +last-attempt" : "",
			    m & C_WRU ? " +will-retry" : "",
			    m & C_COMMENT ? " +comment" : "",
			    m & C_EXT ? " +ext" : "");
		}
	return n;
}

/* Generator refusals, one per rule. */
enum gen_bad {
	GB_ENVID_NULL,
	GB_ENVID_EMPTY,
	GB_ENVID_CRLF,
	GB_ENVID_8BIT,
	GB_ENVID_CTL,
	GB_ENVID_LEADING_SPACE,
	GB_ENVID_TRAILING_TAB,
	GB_MTA_TYPE_NULL,
	GB_MTA_TYPE_SPACE,
	GB_MTA_VALUE_EMPTY,
	GB_ORIG_MISSING,
	GB_FINAL_MISSING,
	GB_FINAL_TYPE_SPECIAL,
	GB_NO_RCPT,
	GB_RCPT_NULL,
	GB_TOO_MANY_RCPT,
	GB_ACTION_NONE,
	GB_ACTION_OUT_OF_RANGE,
	GB_STATUS_NULL,
	GB_STATUS_CLASS3,
	GB_STATUS_LEADING_ZERO,
	GB_STATUS_SPACE,
	GB_219_DELIVERED,
	GB_FAILED_2XX,
	GB_DELAYED_5XX,
	GB_DELAYED_2XX,
	GB_DELIVERED_4XX,
	GB_EXPANDED_5XX,
	GB_TRANSFERRED_4XX,
	GB_COMMENT_NO_PARENS,
	GB_COMMENT_OPEN,
	GB_COMMENT_EMPTY,
	GB_COMMENT_TRAILING_TEXT,
	GB_EXT_NAME_DOT,
	GB_EXT_NAME_EMPTY,
	GB_EXT_NAME_NULL,
	GB_EXT_NAME_STANDARD,
	GB_EXT_NAME_STANDARD_CASE,
	GB_EXT_VALUE_CTL,
	GB_EXT_VALUE_NULL,
	GB_EXT_NULL_ARRAY,
	GB_DATE_YEAR_10000,
	GB_DATE_ODD_OFFSET,
	GB_LONG_TOKEN,
	GB_OUTPUT_FULL,
};

struct gen_bad_row {
	const char *name;
	enum gen_bad what;
	enum tstatus_error err;
};

static const struct gen_bad_row gen_bad_rows[] = {
	{ "envid NULL", GB_ENVID_NULL, TSTATUS_E_MISSING_FIELD },
	{ "envid empty", GB_ENVID_EMPTY, TSTATUS_E_MISSING_FIELD },
	{ "envid with CRLF", GB_ENVID_CRLF, TSTATUS_E_BAD_VALUE },
	{ "envid 8-bit", GB_ENVID_8BIT, TSTATUS_E_BAD_VALUE },
	{ "envid control", GB_ENVID_CTL, TSTATUS_E_BAD_VALUE },
	{ "envid leading space", GB_ENVID_LEADING_SPACE, TSTATUS_E_BAD_VALUE },
	{ "envid trailing tab", GB_ENVID_TRAILING_TAB, TSTATUS_E_BAD_VALUE },
	{ "Reporting-MTA without type", GB_MTA_TYPE_NULL,
	    TSTATUS_E_MISSING_FIELD },
	{ "Reporting-MTA type with space", GB_MTA_TYPE_SPACE,
	    TSTATUS_E_BAD_TYPED_FIELD },
	{ "Reporting-MTA empty name", GB_MTA_VALUE_EMPTY,
	    TSTATUS_E_MISSING_FIELD },
	{ "no Original-Recipient", GB_ORIG_MISSING, TSTATUS_E_MISSING_FIELD },
	{ "no Final-Recipient", GB_FINAL_MISSING, TSTATUS_E_MISSING_FIELD },
	{ "Final-Recipient type 'rfc.822'", GB_FINAL_TYPE_SPECIAL,
	    TSTATUS_E_BAD_TYPED_FIELD },
	{ "no recipients", GB_NO_RCPT, TSTATUS_E_NO_RECIPIENTS },
	{ "recipient array NULL", GB_RCPT_NULL, TSTATUS_E_NO_RECIPIENTS },
	{ "1001 recipients", GB_TOO_MANY_RCPT, TSTATUS_E_TOO_MANY_RECIPIENTS },
	{ "action NONE", GB_ACTION_NONE, TSTATUS_E_BAD_ACTION },
	{ "action out of range", GB_ACTION_OUT_OF_RANGE, TSTATUS_E_BAD_ACTION },
	{ "status NULL", GB_STATUS_NULL, TSTATUS_E_MISSING_FIELD },
	{ "status class 3", GB_STATUS_CLASS3, TSTATUS_E_BAD_STATUS },
	{ "status leading zero", GB_STATUS_LEADING_ZERO, TSTATUS_E_BAD_STATUS },
	{ "status with space", GB_STATUS_SPACE, TSTATUS_E_BAD_STATUS },
	{ "2.1.9 with delivered", GB_219_DELIVERED,
	    TSTATUS_E_STATUS_ACTION_MISMATCH },
	{ "failed with 2.x.x", GB_FAILED_2XX,
	    TSTATUS_E_STATUS_ACTION_MISMATCH },
	{ "delayed with 5.x.x", GB_DELAYED_5XX,
	    TSTATUS_E_STATUS_ACTION_MISMATCH },
	{ "delayed with 2.x.x", GB_DELAYED_2XX,
	    TSTATUS_E_STATUS_ACTION_MISMATCH },
	{ "delivered with 4.x.x", GB_DELIVERED_4XX,
	    TSTATUS_E_STATUS_ACTION_MISMATCH },
	{ "expanded with 5.x.x", GB_EXPANDED_5XX,
	    TSTATUS_E_STATUS_ACTION_MISMATCH },
	{ "transferred with 4.x.x", GB_TRANSFERRED_4XX,
	    TSTATUS_E_STATUS_ACTION_MISMATCH },
	{ "status comment without parentheses", GB_COMMENT_NO_PARENS,
	    TSTATUS_E_BAD_STATUS },
	{ "status comment not closed", GB_COMMENT_OPEN, TSTATUS_E_BAD_STATUS },
	{ "status comment empty string", GB_COMMENT_EMPTY,
	    TSTATUS_E_BAD_STATUS },
	{ "status comment then text", GB_COMMENT_TRAILING_TEXT,
	    TSTATUS_E_BAD_STATUS },
	{ "extension name with '.'", GB_EXT_NAME_DOT,
	    TSTATUS_E_BAD_FIELD_NAME },
	{ "extension name empty", GB_EXT_NAME_EMPTY, TSTATUS_E_BAD_FIELD_NAME },
	{ "extension name NULL", GB_EXT_NAME_NULL, TSTATUS_E_BAD_FIELD_NAME },
	{ "extension named Status", GB_EXT_NAME_STANDARD,
	    TSTATUS_E_BAD_FIELD_NAME },
	{ "extension named arrival-date", GB_EXT_NAME_STANDARD_CASE,
	    TSTATUS_E_BAD_FIELD_NAME },
	{ "extension value with control", GB_EXT_VALUE_CTL,
	    TSTATUS_E_BAD_VALUE },
	{ "extension value NULL", GB_EXT_VALUE_NULL, TSTATUS_E_BAD_VALUE },
	{ "extension count without array", GB_EXT_NULL_ARRAY,
	    TSTATUS_E_MISSING_FIELD },
	{ "date in year 10000", GB_DATE_YEAR_10000, TSTATUS_E_BAD_DATE },
	{ "date offset not whole minutes", GB_DATE_ODD_OFFSET,
	    TSTATUS_E_BAD_DATE },
	{ "999-character token", GB_LONG_TOKEN, TSTATUS_E_LINE_TOO_LONG },
	{ "output buffer too small", GB_OUTPUT_FULL, TSTATUS_E_TOO_BIG },
};

static const char *
gen_bad_name(const void *row)
{
	return ((const struct gen_bad_row *)row)->name;
}

static void
test_gen_bad(void **state)
{
	const struct gen_bad_row *row = *state;
	static struct tstatus_rcpt many[TSTATUS_RCPT_MAX + 1];
	static char longtok[1000];
	struct tstatus_ext ext = { "X-A", "b" };
	struct tstatus_rcpt r = rcpt(TSTATUS_ACTION_DELIVERED, "2.5.0");
	struct tstatus t = report(&r, 1);
	enum tstatus_error err;
	struct buf b;
	size_t i, max = 1 << 16;

	switch (row->what) {
	case GB_ENVID_NULL:
		t.envid = NULL;
		break;
	case GB_ENVID_EMPTY:
		t.envid = "";
		break;
	case GB_ENVID_CRLF:
		t.envid = "a\r\nX-Injected: 1";
		break;
	case GB_ENVID_8BIT:
		t.envid = "caf\303\251";
		break;
	case GB_ENVID_CTL:
		t.envid = "a\033b";
		break;
	case GB_ENVID_LEADING_SPACE:
		t.envid = " a";
		break;
	case GB_ENVID_TRAILING_TAB:
		t.envid = "a\t";
		break;
	case GB_MTA_TYPE_NULL:
		t.reporting_mta.type = NULL;
		break;
	case GB_MTA_TYPE_SPACE:
		t.reporting_mta.type = "d ns";
		break;
	case GB_MTA_VALUE_EMPTY:
		t.reporting_mta.value = "";
		break;
	case GB_ORIG_MISSING:
		r.orig_rcpt.type = NULL;
		break;
	case GB_FINAL_MISSING:
		r.final_rcpt.value = NULL;
		break;
	case GB_FINAL_TYPE_SPECIAL:
		r.final_rcpt.type = "rfc.822";
		break;
	case GB_NO_RCPT:
		t.nrcpt = 0;
		break;
	case GB_RCPT_NULL:
		t.rcpt = NULL;
		break;
	case GB_TOO_MANY_RCPT:
		for (i = 0; i <= TSTATUS_RCPT_MAX; i++)
			many[i] = r;
		t.rcpt = many;
		t.nrcpt = TSTATUS_RCPT_MAX + 1;
		break;
	case GB_ACTION_NONE:
		r.action = TSTATUS_ACTION_NONE;
		break;
	case GB_ACTION_OUT_OF_RANGE:
		r.action = (enum tstatus_action)99;
		break;
	case GB_STATUS_NULL:
		r.status = NULL;
		break;
	case GB_STATUS_CLASS3:
		r.status = "3.0.0";
		break;
	case GB_STATUS_LEADING_ZERO:
		r.status = "2.05.0";
		break;
	case GB_STATUS_SPACE:
		r.status = "2.5.0 ";
		break;
	case GB_219_DELIVERED:
		r.status = "2.1.9";
		break;
	case GB_FAILED_2XX:
		r.action = TSTATUS_ACTION_FAILED;
		break;
	case GB_DELAYED_5XX:
		r.action = TSTATUS_ACTION_DELAYED;
		r.status = "5.0.0";
		break;
	case GB_DELAYED_2XX:
		r.action = TSTATUS_ACTION_DELAYED;
		break;
	case GB_DELIVERED_4XX:
		r.status = "4.0.0";
		break;
	case GB_EXPANDED_5XX:
		r.action = TSTATUS_ACTION_EXPANDED;
		r.status = "5.0.0";
		break;
	case GB_TRANSFERRED_4XX:
		r.action = TSTATUS_ACTION_TRANSFERRED;
		r.status = "4.0.0";
		r.has_last_attempt = 1;
		break;
	case GB_COMMENT_NO_PARENS:
		r.status_comment = "Mailbox full";
		break;
	case GB_COMMENT_OPEN:
		r.status_comment = "(Mailbox full";
		break;
	case GB_COMMENT_EMPTY:
		r.status_comment = "";
		break;
	case GB_COMMENT_TRAILING_TEXT:
		r.status_comment = "(a) b";
		break;
	case GB_EXT_NAME_DOT:
		ext.name = "X-Foo.Bar";
		goto ext;
	case GB_EXT_NAME_EMPTY:
		ext.name = "";
		goto ext;
	case GB_EXT_NAME_NULL:
		ext.name = NULL;
		goto ext;
	case GB_EXT_NAME_STANDARD:
		ext.name = "Status";
		goto ext;
	case GB_EXT_NAME_STANDARD_CASE:
		ext.name = "arrival-date";
		t.ext = &ext;
		t.next = 1;
		break;
	case GB_EXT_VALUE_CTL:
		ext.value = "a\001";
		goto ext;
	case GB_EXT_VALUE_NULL:
		ext.value = NULL;
		goto ext;
	case GB_EXT_NULL_ARRAY:
		r.next = 1;
		break;
	ext:
		r.ext = &ext;
		r.next = 1;
		break;
	case GB_DATE_YEAR_10000:
		t.arrival.t = 253402300800 + 86400; /* 10000-01-02 */
		break;
	case GB_DATE_ODD_OFFSET:
		r.has_last_attempt = 1;
		r.last_attempt.gmtoff = 61;
		break;
	case GB_LONG_TOKEN:
		memset(longtok, 'a', sizeof(longtok) - 1);
		ext.value = longtok;
		r.ext = &ext;
		r.next = 1;
		break;
	case GB_OUTPUT_FULL:
		max = 200;
		break;
	}
	buf_init(&b, max);
	buf_adds(&b, "keep");
	assert_int_equal(tstatus_generate(&t, &b, &err), -1);
	if (err != row->err)
		fail_msg("got %s, want %s", tstatus_strerror(err),
		    tstatus_strerror(row->err));
	assert_string_equal(buf_cstr(&b), "keep");
	/* err_out may be NULL. */
	assert_int_equal(tstatus_generate(&t, &b, NULL), -1);
	buf_reset(&b);
}

/* Golden files: the generator's exact bytes, checked against RFC 3886. */
struct golden_row {
	const char *name;
	const char *file;
	int which;
};

static const struct golden_row golden_rows[] = {
	{ "delivered (E1)", "tstatus/delivered.txt", 0 },
	{ "transferred (E2 in grammar order)", "tstatus/transferred.txt", 1 },
	{ "delayed with comment (E3)", "tstatus/delayed.txt", 2 },
	{ "relayed + failed (E4 corrected)", "tstatus/relayed-failed.txt", 3 },
	{ "extensions and folding", "tstatus/extensions-folded.txt", 4 },
	{ "opaque", "tstatus/opaque.txt", 5 },
	{ "expanded", "tstatus/expanded.txt", 6 },
};

static const char *
golden_name(const void *row)
{
	return ((const struct golden_row *)row)->name;
}

static void
test_golden(void **state)
{
	const struct golden_row *row = *state;
	static const struct tstatus_ext pm_ext[] = {
		{ "X-Trace", "hop 1 of 3" },
		{ "X-Empty", "" },
	};
	static const struct tstatus_ext r_ext[] = {
		{ "Diagnostic-Code",
		    "smtp; 550-5.1.1 The email account that you tried to reach "
		    "does not exist. Please try double-checking the "
		    "recipient's "
		    "email address for typos or unnecessary spaces." },
		{ "X-Long",
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa b" },
	};
	struct tstatus_rcpt r[2];
	struct tstatus t;
	enum tstatus_error err;
	struct buf b;

	r[0] = rcpt(TSTATUS_ACTION_DELIVERED, "2.5.0");
	r[1] = rcpt(TSTATUS_ACTION_FAILED, "5.2.2");
	t = report(r, 1);
	switch (row->which) {
	case 0:
		break;
	case 1:
		r[0].action = TSTATUS_ACTION_TRANSFERRED;
		r[0].status = "2.4.0";
		r[0].remote_mta.type = "dns";
		r[0].remote_mta.value = "example3.com";
		r[0].has_last_attempt = 1;
		r[0].last_attempt = d_attempt;
		break;
	case 2:
		r[0].action = TSTATUS_ACTION_DELAYED;
		r[0].status = "4.4.1";
		r[0].status_comment = "(No answer from host)";
		r[0].remote_mta.type = "dns";
		r[0].remote_mta.value = "example3.com";
		r[0].has_last_attempt = 1;
		r[0].last_attempt = d_attempt;
		r[0].has_will_retry = 1;
		r[0].will_retry = d_retry;
		break;
	case 3:
		r[0].action = TSTATUS_ACTION_RELAYED;
		r[0].status = "2.1.9";
		r[0].remote_mta.type = "dns";
		r[0].remote_mta.value = "example3.com";
		r[0].has_last_attempt = 1;
		r[0].last_attempt = d_attempt;
		r[1].orig_rcpt.value = "user2@example1.com";
		r[1].final_rcpt.value = "user2@example1.com";
		r[1].status_comment = "(Mailbox full)";
		r[1].remote_mta = r[0].remote_mta;
		r[1].has_last_attempt = 1;
		r[1].last_attempt = d_attempt;
		t.nrcpt = 2;
		break;
	case 4:
		t.ext = pm_ext;
		t.next = 2;
		r[0].action = TSTATUS_ACTION_FAILED;
		r[0].status = "5.1.1";
		r[0].final_rcpt.value =
		    "a-rather-long-local-part.with.dots@a-subdomain.of."
		    "a-long-domain.example.com";
		r[0].ext = r_ext;
		r[0].next = 2;
		break;
	case 5:
		r[0].action = TSTATUS_ACTION_OPAQUE;
		r[0].status = "5.0.0";
		break;
	case 6:
		r[0].action = TSTATUS_ACTION_EXPANDED;
		r[0].status = "2.0.0";
		r[0].orig_rcpt.type = "RFC822";
		r[0].orig_rcpt.value = "list@example1.com";
		r[0].final_rcpt.value = "list@example1.com";
		break;
	}
	buf_init(&b, 1 << 16);
	assert_int_equal(tstatus_generate(&t, &b, &err), 0);
	golden_check(row->file, b.data, b.len);
	check_round_trip(&t);
	buf_reset(&b);
}

/* parse(E2 as published) then generate: the normalized form. */
static void
test_normalize_e2(void **state)
{
	static const char e2[] =
	    "Original-Envelope-Id: 12345-20010101@example.com\r\n"
	    "Reporting-MTA: dns; example2.com\r\n"
	    "Arrival-Date: Mon,  1 Jan 2001 15:15:15 -0500\r\n"
	    "\r\n" RCPT1 "Action: transferred\r\n"
	    "Remote-MTA: dns; example3.com\r\n" LAD "Status:2.4.0\r\n";
	struct tstatus_parser *p = tstatus_parser_new(NULL);
	const struct tstatus *t;
	struct buf b;
	size_t glen;
	char *g;

	(void)state;
	assert_int_equal(tstatus_parser_push(p, e2, sizeof(e2) - 1), 0);
	assert_int_equal(tstatus_parser_end(p, &t), 1);
	buf_init(&b, 1 << 16);
	assert_int_equal(tstatus_generate(t, &b, NULL), 0);
	g = golden_read("tstatus/transferred.txt", &glen);
	assert_int_equal(b.len, glen);
	assert_memory_equal(b.data, g, glen);
	free(g);
	buf_reset(&b);
	/* Using the parser after end fails; reset makes it usable. */
	assert_int_equal(tstatus_parser_push(p, "x", 1), -1);
	assert_int_equal(tstatus_parser_error(p), TSTATUS_E_SYNTAX);
	tstatus_parser_reset(p);
	assert_int_equal(tstatus_parser_error(p), TSTATUS_OK);
	assert_int_equal(tstatus_parser_line(p), 0);
	assert_int_equal(tstatus_parser_push(p, e2, sizeof(e2) - 1), 0);
	assert_int_equal(tstatus_parser_end(p, &t), 1);
	assert_int_equal(tstatus_parser_end(p, &t), -1);
	tstatus_parser_free(p);
	tstatus_parser_free(NULL);
}

/* The default limits: a 998-character line passes, 999 fails; 1000
 * recipients pass, 1001 fail. */
static void
test_default_limits(void **state)
{
	struct tstatus_parser *p = tstatus_parser_new(NULL);
	static struct tstatus_rcpt many[TSTATUS_RCPT_MAX];
	const struct tstatus *t;
	struct tstatus tt;
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b, TSTATUS_SIZE_MAX);
	buf_adds(&b, PM "X-L: ");
	while (b.len - (sizeof(PM) - 1) < TSTATUS_LINE_MAX)
		buf_addc(&b, 'x');
	buf_adds(&b, "\r\n\r\n" OKR);
	assert_int_equal(tstatus_parser_push(p, b.data, b.len), 0);
	assert_int_equal(tstatus_parser_end(p, &t), 1);
	tstatus_parser_reset(p);
	buf_clear(&b);
	buf_adds(&b, PM "X-L: ");
	while (b.len - (sizeof(PM) - 1) < TSTATUS_LINE_MAX + 1)
		buf_addc(&b, 'x');
	buf_adds(&b, "\r\n\r\n" OKR);
	assert_int_equal(tstatus_parser_push(p, b.data, b.len), -1);
	assert_int_equal(tstatus_parser_error(p), TSTATUS_E_LINE_TOO_LONG);
	assert_int_equal(tstatus_parser_line(p), 4);
	tstatus_parser_reset(p);

	for (i = 0; i < TSTATUS_RCPT_MAX; i++)
		many[i] = rcpt(TSTATUS_ACTION_DELIVERED, "2.5.0");
	tt = report(many, TSTATUS_RCPT_MAX);
	buf_clear(&b);
	assert_int_equal(tstatus_generate(&tt, &b, NULL), 0);
	assert_int_equal(tstatus_parser_push(p, b.data, b.len), 0);
	assert_int_equal(tstatus_parser_end(p, &t), 1);
	assert_int_equal(t->nrcpt, TSTATUS_RCPT_MAX);
	tstatus_parser_reset(p);
	buf_adds(&b, "\r\n" OKR);
	assert_int_equal(tstatus_parser_push(p, b.data, b.len), 0);
	assert_int_equal(tstatus_parser_end(p, &t), -1);
	assert_int_equal(
	    tstatus_parser_error(p), TSTATUS_E_TOO_MANY_RECIPIENTS);
	buf_reset(&b);
	tstatus_parser_free(p);
}

static void
test_strerror(void **state)
{
	int e;

	(void)state;
	for (e = TSTATUS_OK; e <= TSTATUS_E_NOMEM; e++)
		assert_string_not_equal(
		    tstatus_strerror((enum tstatus_error)e), "unknown error");
	assert_string_equal(
	    tstatus_strerror((enum tstatus_error)999), "unknown error");
	assert_null(tstatus_action_name(TSTATUS_ACTION_NONE));
	assert_string_equal(
	    tstatus_action_name(TSTATUS_ACTION_OPAQUE), "opaque");
}

int
main(void)
{
	const struct CMUnitTest misc[] = {
		cmocka_unit_test(test_normalize_e2),
		cmocka_unit_test(test_default_limits),
		cmocka_unit_test(test_strerror),
	};
	size_t ncombo = combo_fill();
	int failed = 0;

	failed +=
	    TABLE_RUN("tstatus_valid", test_valid, valid_rows, valid_name);
	failed += TABLE_RUN(
	    "tstatus_invalid", test_invalid, invalid_rows, invalid_name);
	failed += table_run("tstatus_combo", test_combo, combo_rows,
	    sizeof(combo_rows[0]), ncombo, combo_name);
	failed += TABLE_RUN(
	    "tstatus_gen_bad", test_gen_bad, gen_bad_rows, gen_bad_name);
	failed +=
	    TABLE_RUN("tstatus_golden", test_golden, golden_rows, golden_name);
	failed += cmocka_run_group_tests_name("tstatus_misc", misc, NULL, NULL);
	return failed;
}
