/*
 * test_dsn: DSN messages (RFC 3464, RFC 3461 §6) against golden files,
 * the refusals, the header/body split, and a cross-check of the
 * delivery-status part with the tracking-status parser.
 */
#include <stdlib.h>
#include <string.h>

#include "msgtrk/dsn.h"
#include "msgtrk/mime.h"
#include "table.h"

static const char original[] =
    "Received: from client.example.com ([192.0.2.10])\r\n"
    "\tby mail.example.org with ESMTP id 4711; Mon, 1 Jan 2001 15:15:15 "
    "-0500\r\n"
    "From: Alice <alice@example.com>\r\n"
    "To: Bob <bob@example.net>\r\n"
    "Subject: Lunch\r\n"
    "Message-ID: <lunch.1@example.com>\r\n"
    "\r\n"
    "Noon at the usual place?\r\n"
    "--\r\n"
    "Alice\r\n";

static const struct date d_now = { 978394503 + 60, -5 * 3600 };
static const struct date d_arrival = { 978380115, -5 * 3600 };
static const struct date d_attempt = { 978394503, -5 * 3600 };
static const struct date d_retry = { 978639315, -5 * 3600 };

static struct dsn_rcpt
rcpt(enum tstatus_action a, const char *status)
{
	struct dsn_rcpt r;

	memset(&r, 0, sizeof(r));
	r.orcpt_type = "rfc822";
	r.orcpt = "bob@example.net";
	r.final_rcpt = "bob@example.net";
	r.action = a;
	r.status = status;
	return r;
}

static struct dsn
dsn(const struct dsn_rcpt *r, size_t n)
{
	struct dsn d;

	memset(&d, 0, sizeof(d));
	d.sender = "alice@example.com";
	d.date = d_now;
	d.message_id = "<dsn.4711@mail.example.org>";
	d.envid = "12345-20010101@example.com";
	d.reporting_mta = "mail.example.org";
	d.has_arrival = 1;
	d.arrival = d_arrival;
	d.rcpt = r;
	d.nrcpt = n;
	d.ret = DSN_RET_HDRS;
	d.msg = original;
	d.msglen = sizeof(original) - 1;
	d.boundary = "=_msgtrk-test-boundary";
	return d;
}

enum golden_case {
	G_FAILED_FULL,
	G_DELAYED,
	G_DELIVERED,
	G_RELAYED_HDRS,
	G_MULTI,
	G_NO_RET_FAILED,
	G_FULL_NOT_FAILED,
	G_NO_MESSAGE,
	G_8BIT,
	G_FROM_SUBJECT,
};

struct golden_row {
	const char *name;
	const char *file;
	enum golden_case what;
};

static const struct golden_row golden_rows[] = {
	{ "failed, RET=FULL", "dsn/failed-full.eml", G_FAILED_FULL },
	{ "delayed", "dsn/delayed.eml", G_DELAYED },
	{ "delivered", "dsn/delivered.eml", G_DELIVERED },
	{ "relayed, RET=HDRS", "dsn/relayed-hdrs.eml", G_RELAYED_HDRS },
	{ "multi-recipient", "dsn/multi.eml", G_MULTI },
	{ "failed, no RET: headers", "dsn/failed-noret.eml", G_NO_RET_FAILED },
	{ "delivered, RET=FULL: headers only", "dsn/delivered-full.eml",
	    G_FULL_NOT_FAILED },
	{ "no message returned", "dsn/no-message.eml", G_NO_MESSAGE },
	{ "8-bit message returned", "dsn/8bit.eml", G_8BIT },
	{ "caller's From and Subject", "dsn/from-subject.eml", G_FROM_SUBJECT },
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
	static const char eight[] = "From: a@example.com\r\n"
	                            "Subject: caf\303\251\r\n\r\nbody\r\n";
	struct dsn_rcpt r[3];
	struct dsn d;
	enum dsn_error err;
	struct buf b;

	r[0] = rcpt(TSTATUS_ACTION_FAILED, "5.1.1");
	r[0].remote_mta = "mx.example.net";
	r[0].diagnostic = "550 5.1.1 <bob@example.net>: Recipient address "
	                  "rejected: User unknown in virtual mailbox table";
	r[0].has_last_attempt = 1;
	r[0].last_attempt = d_attempt;
	d = dsn(r, 1);
	switch (row->what) {
	case G_FAILED_FULL:
		d.ret = DSN_RET_FULL;
		break;
	case G_DELAYED:
		r[0].action = TSTATUS_ACTION_DELAYED;
		r[0].status = "4.4.1";
		r[0].diagnostic = NULL;
		r[0].remote_mta = NULL;
		r[0].has_will_retry = 1;
		r[0].will_retry = d_retry;
		d.envid = NULL;
		break;
	case G_DELIVERED:
		r[0] = rcpt(TSTATUS_ACTION_DELIVERED, "2.0.0");
		r[0].orcpt_type = NULL;
		r[0].remote_mta = "lmtp.example.net";
		r[0].diagnostic = "250 2.0.0 Ok: queued as 4711";
		r[0].has_last_attempt = 1;
		r[0].last_attempt = d_attempt;
		d.has_arrival = 0;
		break;
	case G_RELAYED_HDRS:
		r[0] = rcpt(TSTATUS_ACTION_RELAYED, "2.1.5");
		r[0].remote_mta = "old.example.net";
		r[0].diagnostic = "250 2.1.5 Ok";
		r[0].has_last_attempt = 1;
		r[0].last_attempt = d_attempt;
		break;
	case G_MULTI:
		d.ret = DSN_RET_FULL;
		r[0].diagnostic = "550-5.1.1 mailbox unavailable\r\n"
		                  "550 5.1.1 user has moved with no forwarding "
		                  "address";
		r[1] = rcpt(TSTATUS_ACTION_DELAYED, "4.4.1");
		r[1].orcpt = "carol@example.net";
		r[1].final_rcpt = "carol@example.net";
		r[1].remote_mta = "mx2.example.net";
		r[1].diagnostic = "421 4.4.1 Connection timed out";
		r[1].has_last_attempt = 1;
		r[1].last_attempt = d_attempt;
		r[1].has_will_retry = 1;
		r[1].will_retry = d_retry;
		r[2] = rcpt(TSTATUS_ACTION_EXPANDED, "2.0.0");
		r[2].orcpt_type = "RFC822";
		r[2].orcpt = "Team@Example.org";
		r[2].final_rcpt = "team@example.org";
		d.nrcpt = 3;
		break;
	case G_NO_RET_FAILED:
		d.ret = DSN_RET_NONE;
		break;
	case G_FULL_NOT_FAILED:
		r[0] = rcpt(TSTATUS_ACTION_DELIVERED, "2.0.0");
		d.ret = DSN_RET_FULL;
		break;
	case G_NO_MESSAGE:
		d.msg = NULL;
		d.msglen = 0;
		break;
	case G_8BIT:
		d.ret = DSN_RET_FULL;
		d.msg = eight;
		d.msglen = sizeof(eight) - 1;
		break;
	case G_FROM_SUBJECT:
		d.from =
		    "Mail Delivery System <MAILER-DAEMON@mail.example.org>";
		d.subject = "Undelivered Mail Returned to Sender";
		d.reporting_mta_type = "x-local-hostname";
		d.reporting_mta = "mail";
		break;
	}
	buf_init(&b, 1 << 20);
	assert_int_equal(dsn_generate(&d, &b, &err), 0);
	assert_int_equal(err, DSN_OK);
	golden_check(row->file, b.data, b.len);
	buf_reset(&b);
}

/* The message/delivery-status part of a DSN with ENVID, ORCPT and
 * Arrival-Date also reads as a tracking-status body (RFC 3886 fields are
 * RFC 3464's; Diagnostic-Code becomes an extension). */
static void
test_cross_parse(void **state)
{
	static const char start[] = "Content-Type: message/delivery-status"
	                            "\r\n\r\n";
	struct dsn_rcpt r = rcpt(TSTATUS_ACTION_FAILED, "5.1.1");
	struct dsn d = dsn(&r, 1);
	struct tstatus_parser *p = tstatus_parser_new(NULL);
	const struct tstatus *t;
	const char *s, *e;
	struct buf b;

	(void)state;
	r.remote_mta = "mx.example.net";
	r.diagnostic = "550 5.1.1 unknown";
	r.has_last_attempt = 1;
	r.last_attempt = d_attempt;
	buf_init(&b, 1 << 20);
	assert_int_equal(dsn_generate(&d, &b, NULL), 0);
	s = strstr(b.data, start);
	assert_non_null(s);
	s += sizeof(start) - 1;
	e = strstr(s, "\r\n--=_msgtrk-test-boundary");
	assert_non_null(e);
	assert_int_equal(tstatus_parser_push(p, s, (size_t)(e - s) + 2), 0);
	assert_int_equal(tstatus_parser_end(p, &t), 1);
	assert_string_equal(t->envid, d.envid);
	assert_string_equal(t->reporting_mta.value, "mail.example.org");
	assert_int_equal(t->arrival.t, d_arrival.t);
	assert_int_equal(t->nrcpt, 1);
	assert_int_equal(t->rcpt[0].action, TSTATUS_ACTION_FAILED);
	assert_string_equal(t->rcpt[0].status, "5.1.1");
	assert_string_equal(t->rcpt[0].remote_mta.value, "mx.example.net");
	assert_int_equal(t->rcpt[0].next, 1);
	assert_string_equal(t->rcpt[0].ext[0].name, "Diagnostic-Code");
	assert_string_equal(t->rcpt[0].ext[0].value, "smtp; 550 5.1.1 unknown");
	tstatus_parser_free(p);
	buf_reset(&b);
}

/* An MTA's own text goes with its own diagnostic-type (RFC 3464
 * §2.3.6), in the report and in the human-readable part. */
static void
test_diagnostic_type(void **state)
{
	struct dsn_rcpt r = rcpt(TSTATUS_ACTION_FAILED, "5.1.1");
	struct dsn d = dsn(&r, 1);
	struct buf b;

	(void)state;
	r.diagnostic = "No such local recipient";
	r.diagnostic_type = "X-msgtrk";
	buf_init(&b, 1 << 20);
	assert_int_equal(dsn_generate(&d, &b, NULL), 0);
	assert_non_null(strstr(buf_cstr(&b),
	    "\r\nDiagnostic-Code: X-msgtrk; No such local recipient\r\n"));
	assert_null(strstr(buf_cstr(&b), "smtp;"));
	assert_non_null(
	    strstr(buf_cstr(&b), "    No such local recipient\r\n"));
	buf_reset(&b);
}

/* A fresh boundary each time when the caller passes none. */
static void
test_fresh_boundary(void **state)
{
	struct dsn_rcpt r = rcpt(TSTATUS_ACTION_FAILED, "5.1.1");
	struct dsn d = dsn(&r, 1);
	struct buf b1, b2;
	const char *p1, *p2;

	(void)state;
	d.boundary = NULL;
	buf_init(&b1, 1 << 20);
	buf_init(&b2, 1 << 20);
	assert_int_equal(dsn_generate(&d, &b1, NULL), 0);
	d.boundary = "";
	assert_int_equal(dsn_generate(&d, &b2, NULL), 0);
	p1 = strstr(b1.data, "boundary=\"");
	p2 = strstr(b2.data, "boundary=\"");
	assert_non_null(p1);
	assert_non_null(p2);
	assert_memory_not_equal(p1, p2, 10 + MIME_BOUNDARY_LEN);
	assert_int_equal(p1[10 + MIME_BOUNDARY_LEN], '"');
	buf_reset(&b1);
	buf_reset(&b2);
}

enum bad_case {
	B_NULL_SENDER,
	B_EMPTY_SENDER,
	B_SENDER_CRLF,
	B_NO_RCPT,
	B_RCPT_NULL,
	B_TOO_MANY,
	B_TRANSFERRED,
	B_OPAQUE,
	B_ACTION_NONE,
	B_WRU_FAILED,
	B_BAD_STATUS,
	B_STATUS_NULL,
	B_219_FAILED,
	B_DELIVERED_5XX,
	B_DELAYED_2XX,
	B_NO_FINAL,
	B_FINAL_8BIT,
	B_ORCPT_TYPE_BAD,
	B_ORCPT_NULL,
	B_ADDR_TOO_LONG,
	B_ENVID_101,
	B_ENVID_CTL,
	B_MSGID_NO_BRACKETS,
	B_MSGID_NO_AT,
	B_MSGID_SPACE,
	B_MSGID_NULL,
	B_NO_REPORTING_MTA,
	B_REPORTING_TYPE_BAD,
	B_DIAG_8BIT,
	B_DIAG_EMPTY,
	B_DIAG_EMPTY_LINE,
	B_DIAG_LINE_LONG,
	B_DIAG_TOO_MANY_LINES,
	B_DIAG_TYPE_BAD,
	B_SUBJECT_CRLF,
	B_FROM_8BIT,
	B_BOUNDARY_CHARS,
	B_BOUNDARY_LONG,
	B_BOUNDARY_IN_MESSAGE,
	B_BOUNDARY_IN_HEADER,
	B_DATE_BAD,
	B_OUTPUT_FULL,
};

struct bad_row {
	const char *name;
	enum bad_case what;
	enum dsn_error err;
};

static const struct bad_row bad_rows[] = {
	{ "null reverse-path", B_NULL_SENDER, DSN_E_NULL_SENDER },
	{ "empty reverse-path", B_EMPTY_SENDER, DSN_E_NULL_SENDER },
	{ "sender with CRLF", B_SENDER_CRLF, DSN_E_BAD_VALUE },
	{ "no recipients", B_NO_RCPT, DSN_E_NO_RECIPIENTS },
	{ "recipient array NULL", B_RCPT_NULL, DSN_E_NO_RECIPIENTS },
	{ "too many recipients", B_TOO_MANY, DSN_E_TOO_MANY_RECIPIENTS },
	{ "transferred is not a DSN action", B_TRANSFERRED, DSN_E_BAD_ACTION },
	{ "opaque is not a DSN action", B_OPAQUE, DSN_E_BAD_ACTION },
	{ "action NONE", B_ACTION_NONE, DSN_E_BAD_ACTION },
	{ "Will-Retry-Until with failed", B_WRU_FAILED,
	    DSN_E_FIELD_NOT_ALLOWED },
	{ "bad status", B_BAD_STATUS, DSN_E_BAD_STATUS },
	{ "status NULL", B_STATUS_NULL, DSN_E_MISSING },
	{ "2.1.9 with failed", B_219_FAILED, DSN_E_STATUS_ACTION_MISMATCH },
	{ "delivered with 5.x.x", B_DELIVERED_5XX,
	    DSN_E_STATUS_ACTION_MISMATCH },
	{ "delayed with 2.x.x", B_DELAYED_2XX, DSN_E_STATUS_ACTION_MISMATCH },
	{ "no Final-Recipient", B_NO_FINAL, DSN_E_MISSING },
	{ "Final-Recipient 8-bit", B_FINAL_8BIT, DSN_E_BAD_VALUE },
	{ "ORCPT type not an atom", B_ORCPT_TYPE_BAD, DSN_E_BAD_TYPE },
	{ "ORCPT type without address", B_ORCPT_NULL, DSN_E_MISSING },
	{ "address over 500", B_ADDR_TOO_LONG, DSN_E_TOO_LONG },
	{ "ENVID of 101 characters", B_ENVID_101, DSN_E_TOO_LONG },
	{ "ENVID with control", B_ENVID_CTL, DSN_E_BAD_VALUE },
	{ "Message-ID without <>", B_MSGID_NO_BRACKETS, DSN_E_BAD_VALUE },
	{ "Message-ID without @", B_MSGID_NO_AT, DSN_E_BAD_VALUE },
	{ "Message-ID with space", B_MSGID_SPACE, DSN_E_BAD_VALUE },
	{ "Message-ID NULL", B_MSGID_NULL, DSN_E_MISSING },
	{ "no Reporting-MTA", B_NO_REPORTING_MTA, DSN_E_MISSING },
	{ "Reporting-MTA type not an atom", B_REPORTING_TYPE_BAD,
	    DSN_E_BAD_TYPE },
	{ "diagnostic 8-bit", B_DIAG_8BIT, DSN_E_BAD_VALUE },
	{ "diagnostic empty", B_DIAG_EMPTY, DSN_E_BAD_VALUE },
	{ "diagnostic empty line", B_DIAG_EMPTY_LINE, DSN_E_BAD_VALUE },
	{ "diagnostic line over 510", B_DIAG_LINE_LONG, DSN_E_TOO_LONG },
	{ "diagnostic of 17 lines", B_DIAG_TOO_MANY_LINES, DSN_E_TOO_LONG },
	{ "diagnostic type not an atom", B_DIAG_TYPE_BAD, DSN_E_BAD_TYPE },
	{ "subject with CRLF", B_SUBJECT_CRLF, DSN_E_BAD_VALUE },
	{ "From 8-bit", B_FROM_8BIT, DSN_E_BAD_VALUE },
	{ "boundary with bad characters", B_BOUNDARY_CHARS, DSN_E_BOUNDARY },
	{ "boundary of 71 characters", B_BOUNDARY_LONG, DSN_E_BOUNDARY },
	{ "boundary inside the returned message", B_BOUNDARY_IN_MESSAGE,
	    DSN_E_BOUNDARY },
	{ "boundary inside the diagnostic text", B_BOUNDARY_IN_HEADER,
	    DSN_E_BOUNDARY },
	{ "date not formattable", B_DATE_BAD, DSN_E_BAD_DATE },
	{ "output buffer too small", B_OUTPUT_FULL, DSN_E_TOO_BIG },
};

static const char *
bad_name(const void *row)
{
	return ((const struct bad_row *)row)->name;
}

static void
test_bad(void **state)
{
	const struct bad_row *row = *state;
	static struct dsn_rcpt many[DSN_RCPT_MAX + 1];
	static char longs[600];
	static const char msg_with_boundary[] =
	    "Subject: x\r\n\r\n--=_msgtrk-test-boundary\r\n";
	static const char hdr_with_boundary[] =
	    "Subject: x\r\n--=_msgtrk-test-boundary--\r\n\r\nbody\r\n";
	struct dsn_rcpt r = rcpt(TSTATUS_ACTION_FAILED, "5.1.1");
	struct dsn d = dsn(&r, 1);
	enum dsn_error err;
	struct buf b;
	size_t i, max = 1 << 20;

	switch (row->what) {
	case B_NULL_SENDER:
		d.sender = NULL;
		break;
	case B_EMPTY_SENDER:
		d.sender = "";
		break;
	case B_SENDER_CRLF:
		d.sender = "a@b\r\nBcc: c@d";
		break;
	case B_NO_RCPT:
		d.nrcpt = 0;
		break;
	case B_RCPT_NULL:
		d.rcpt = NULL;
		break;
	case B_TOO_MANY:
		for (i = 0; i <= DSN_RCPT_MAX; i++)
			many[i] = r;
		d.rcpt = many;
		d.nrcpt = DSN_RCPT_MAX + 1;
		break;
	case B_TRANSFERRED:
		r.action = TSTATUS_ACTION_TRANSFERRED;
		r.status = "2.0.0";
		break;
	case B_OPAQUE:
		r.action = TSTATUS_ACTION_OPAQUE;
		break;
	case B_ACTION_NONE:
		r.action = TSTATUS_ACTION_NONE;
		break;
	case B_WRU_FAILED:
		r.has_will_retry = 1;
		r.will_retry = d_retry;
		break;
	case B_BAD_STATUS:
		r.status = "5.1";
		break;
	case B_STATUS_NULL:
		r.status = NULL;
		break;
	case B_219_FAILED:
		r.status = "2.1.9";
		break;
	case B_DELIVERED_5XX:
		r.action = TSTATUS_ACTION_DELIVERED;
		break;
	case B_DELAYED_2XX:
		r.action = TSTATUS_ACTION_DELAYED;
		r.status = "2.0.0";
		break;
	case B_NO_FINAL:
		r.final_rcpt = NULL;
		break;
	case B_FINAL_8BIT:
		r.final_rcpt = "b\303\266b@example.net";
		break;
	case B_ORCPT_TYPE_BAD:
		r.orcpt_type = "rfc;822";
		break;
	case B_ORCPT_NULL:
		r.orcpt = NULL;
		break;
	case B_ADDR_TOO_LONG:
		memset(longs, 'a', 494);
		longs[494] = '\0';
		r.final_rcpt = longs; /* "rfc822;" + 494 = 501 */
		break;
	case B_ENVID_101:
		memset(longs, 'e', 101);
		longs[101] = '\0';
		d.envid = longs;
		break;
	case B_ENVID_CTL:
		d.envid = "a\033b";
		break;
	case B_MSGID_NO_BRACKETS:
		d.message_id = "dsn@example.org";
		break;
	case B_MSGID_NO_AT:
		d.message_id = "<dsn>";
		break;
	case B_MSGID_SPACE:
		d.message_id = "<a b@c>";
		break;
	case B_MSGID_NULL:
		d.message_id = NULL;
		break;
	case B_NO_REPORTING_MTA:
		d.reporting_mta = NULL;
		break;
	case B_REPORTING_TYPE_BAD:
		d.reporting_mta_type = "d ns";
		break;
	case B_DIAG_8BIT:
		r.diagnostic = "550 unbekannter Empf\303\244nger";
		break;
	case B_DIAG_EMPTY:
		r.diagnostic = "";
		break;
	case B_DIAG_EMPTY_LINE:
		r.diagnostic = "550-a\r\n\r\n550 b";
		break;
	case B_DIAG_LINE_LONG:
		memset(longs, 'x', 511);
		memcpy(longs, "550 ", 4);
		longs[511] = '\0';
		r.diagnostic = longs;
		break;
	case B_DIAG_TOO_MANY_LINES:
		longs[0] = '\0';
		for (i = 0; i < 17; i++)
			strcat(longs, i < 16 ? "550-x\n" : "550 x");
		r.diagnostic = longs;
		break;
	case B_DIAG_TYPE_BAD:
		r.diagnostic = "No such local recipient";
		r.diagnostic_type = "X msgtrk";
		break;
	case B_SUBJECT_CRLF:
		d.subject = "a\r\nb";
		break;
	case B_FROM_8BIT:
		d.from = "J\303\266rg <mailer-daemon@example.org>";
		break;
	case B_BOUNDARY_CHARS:
		d.boundary = "%%%%";
		break;
	case B_BOUNDARY_LONG:
		memset(longs, 'b', 71);
		longs[71] = '\0';
		d.boundary = longs;
		break;
	case B_BOUNDARY_IN_MESSAGE:
		d.ret = DSN_RET_FULL;
		d.msg = msg_with_boundary;
		d.msglen = sizeof(msg_with_boundary) - 1;
		break;
	case B_BOUNDARY_IN_HEADER:
		d.msg = hdr_with_boundary;
		d.msglen = sizeof(hdr_with_boundary) - 1;
		break;
	case B_DATE_BAD:
		d.date.gmtoff = 30;
		break;
	case B_OUTPUT_FULL:
		max = 500;
		break;
	}
	buf_init(&b, max);
	buf_adds(&b, "keep");
	assert_int_equal(dsn_generate(&d, &b, &err), -1);
	if (err != row->err)
		fail_msg("got %s, want %s", dsn_strerror(err),
		    dsn_strerror(row->err));
	assert_string_equal(buf_cstr(&b), "keep");
	assert_int_equal(dsn_generate(&d, &b, NULL), -1);
	buf_reset(&b);
}

/* Boundary lengths: 1 and 70 are fine (RFC 2046 §5.1.1). */
static void
test_boundary_limits(void **state)
{
	char b70[71];
	struct dsn_rcpt r = rcpt(TSTATUS_ACTION_FAILED, "5.1.1");
	struct dsn d = dsn(&r, 1);
	struct buf b;

	(void)state;
	memset(b70, 'z', 70);
	b70[70] = '\0';
	buf_init(&b, 1 << 20);
	d.boundary = b70;
	assert_int_equal(dsn_generate(&d, &b, NULL), 0);
	buf_clear(&b);
	d.boundary = "q";
	assert_int_equal(dsn_generate(&d, &b, NULL), 0);
	buf_clear(&b);
	d.boundary = "'()+_,-./:=?";
	assert_int_equal(dsn_generate(&d, &b, NULL), 0);
	buf_reset(&b);
}

struct split_row {
	const char *name;
	const char *msg;
	size_t want;
};

/* RFC 5322 §2.1: the header ends at the first empty line. */
static const struct split_row split_rows[] = {
	{ "CRLF", "A: 1\r\nB: 2\r\n\r\nbody\r\n", 12 },
	{ "LF", "A: 1\nB: 2\n\nbody\n", 10 },
	{ "no body", "A: 1\r\nB: 2\r\n", 12 },
	{ "no line end", "A: 1", 4 },
	{ "empty header", "\r\nbody\r\n", 0 },
	{ "empty header LF", "\nbody\n", 0 },
	{ "empty message", "", 0 },
	{ "folded header", "A: 1\r\n 2\r\n\r\nb", 10 },
	{ "blank line in body kept", "A: 1\r\n\r\nx\r\n\r\ny", 6 },
	{ "CR not followed by LF", "A: 1\r\n\rX\r\n\r\n", 10 },
	{ "trailing CR", "A: 1\r\n\r", 7 },
};

static const char *
split_name(const void *row)
{
	return ((const struct split_row *)row)->name;
}

static void
test_split(void **state)
{
	const struct split_row *row = *state;

	assert_int_equal(dsn_header_len(row->msg, strlen(row->msg)), row->want);
}

static void
test_strerror(void **state)
{
	int e;

	(void)state;
	for (e = DSN_OK; e <= DSN_E_RANDOM; e++)
		assert_string_not_equal(
		    dsn_strerror((enum dsn_error)e), "unknown error");
	assert_string_equal(dsn_strerror((enum dsn_error)999), "unknown error");
}

int
main(void)
{
	const struct CMUnitTest misc[] = {
		cmocka_unit_test(test_cross_parse),
		cmocka_unit_test(test_diagnostic_type),
		cmocka_unit_test(test_fresh_boundary),
		cmocka_unit_test(test_boundary_limits),
		cmocka_unit_test(test_strerror),
	};
	int failed = 0;

	failed +=
	    TABLE_RUN("dsn_golden", test_golden, golden_rows, golden_name);
	failed += TABLE_RUN("dsn_bad", test_bad, bad_rows, bad_name);
	failed += TABLE_RUN("dsn_split", test_split, split_rows, split_name);
	failed += cmocka_run_group_tests_name("dsn_misc", misc, NULL, NULL);
	return failed;
}
