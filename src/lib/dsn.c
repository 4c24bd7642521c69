/*
 * dsn: Delivery Status Notification messages (RFC 3464, RFC 3461 §6).
 * See msgtrk/dsn.h; the delivery-status fields are written by the code
 * shared with the tracking-status generator (report.c).
 */
#include <string.h>

#include "msgtrk/dsn.h"
#include "msgtrk/mime.h"
#include "msgtrk/str.h"
#include "report.h"

/* The joined diagnostic: every reply line plus a SPACE each. */
#define DSN_DIAG_MAX ((DSN_DIAG_LINE_MAX + 1) * DSN_DIAG_LINES_MAX)
/* RFC 5322 §3.6.4: msg-id = "<" id-left "@" id-right ">"; we bound it by
 * the soft line length. */
#define DSN_MSGID_MAX 250

static enum dsn_error
map_err(enum report_err e)
{
	switch (e) {
	case REPORT_OK:
		return DSN_OK;
	case REPORT_E_MISSING:
	case REPORT_E_NEEDS_ATTEMPT:
		return DSN_E_MISSING;
	case REPORT_E_BAD_VALUE:
		return DSN_E_BAD_VALUE;
	case REPORT_E_BAD_TYPE:
		return DSN_E_BAD_TYPE;
	case REPORT_E_BAD_ACTION:
		return DSN_E_BAD_ACTION;
	case REPORT_E_BAD_STATUS:
		return DSN_E_BAD_STATUS;
	case REPORT_E_STATUS_ACTION:
		return DSN_E_STATUS_ACTION_MISMATCH;
	case REPORT_E_NOT_ALLOWED:
		return DSN_E_FIELD_NOT_ALLOWED;
	case REPORT_E_BAD_DATE:
		return DSN_E_BAD_DATE;
	case REPORT_E_LINE_TOO_LONG:
		return DSN_E_TOO_LONG;
	case REPORT_E_NOSPC:
		return DSN_E_TOO_BIG;
	}
	return DSN_E_BAD_VALUE;
}

const char *
dsn_strerror(enum dsn_error e)
{
	static const char *const msg[] = {
		[DSN_OK] = "no error",
		[DSN_E_MISSING] = "required value missing",
		[DSN_E_BAD_VALUE] = "value not printable US-ASCII",
		[DSN_E_BAD_TYPE] = "type is not an atom",
		[DSN_E_TOO_LONG] = "value too long",
		[DSN_E_BAD_ACTION] = "action not allowed in a DSN",
		[DSN_E_BAD_STATUS] = "malformed status code",
		[DSN_E_STATUS_ACTION_MISMATCH] = "status does not fit the "
		                                 "action",
		[DSN_E_FIELD_NOT_ALLOWED] = "field not allowed with this "
		                            "action",
		[DSN_E_NO_RECIPIENTS] = "no recipients",
		[DSN_E_TOO_MANY_RECIPIENTS] = "too many recipients",
		[DSN_E_NULL_SENDER] = "no DSN to a null reverse-path",
		[DSN_E_BAD_DATE] = "date cannot be formatted",
		[DSN_E_BOUNDARY] = "bad boundary or boundary in content",
		[DSN_E_TOO_BIG] = "DSN too big",
		[DSN_E_RANDOM] = "random source failed",
	};

	if ((unsigned)e >= sizeof(msg) / sizeof(msg[0]) || msg[e] == NULL)
		return "unknown error";
	return msg[e];
}

size_t
dsn_header_len(const char *msg, size_t len)
{
	size_t i = 0;
	const char *nl;

	/* RFC 5322 §2.1: the header ends at the first empty line. */
	while (i < len) {
		if (msg[i] == '\n')
			return i;
		if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n')
			return i;
		if ((nl = memchr(msg + i, '\n', len - i)) == NULL)
			return len;
		i = (size_t)(nl - msg) + 1;
	}
	return len;
}

/* RFC 2046 §5.1.1: bcharsnospace = DIGIT / ALPHA / "'" / "(" / ")" / "+"
 * / "_" / "," / "-" / "." / "/" / ":" / "=" / "?"; we leave out the inner
 * SPACE the RFC also allows. */
static int
boundary_ok(const char *b)
{
	size_t i, n = strlen(b);

	if (n == 0 || n > MIME_BOUNDARY_LEN_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((b[i] >= '0' && b[i] <= '9') ||
		        (b[i] >= 'a' && b[i] <= 'z') ||
		        (b[i] >= 'A' && b[i] <= 'Z') ||
		        strchr("'()+_,-./:=?", b[i]) != NULL))
			return 0;
	return 1;
}

static int
has_8bit(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] > 127)
			return 1;
	return 0;
}

/* A bounded text value: checked, and at most max characters. */
static enum report_err
check_len(const char *s, size_t max, int allow_empty)
{
	enum report_err e;

	if ((e = report_text_check(s, allow_empty)) != REPORT_OK)
		return e;
	return strlen(s) > max ? REPORT_E_LINE_TOO_LONG : REPORT_OK;
}

static enum report_err
check_addr(const char *type, const char *addr)
{
	enum report_err e;

	if ((e = report_typed_check(type, addr)) != REPORT_OK)
		return e;
	return strlen(type) + 1 + strlen(addr) > DSN_ADDR_MAX
	    ? REPORT_E_LINE_TOO_LONG
	    : REPORT_OK;
}

/* Calls fn for each line of an SMTP reply (CRLF or LF separated), with
 * blanks at its ends trimmed.  Stops at the first non-zero result. */
static enum report_err
diag_lines(const char *diag,
    enum report_err (*fn)(void *, const char *, size_t, size_t), void *arg)
{
	const char *s = diag, *end;
	size_t n, i = 0;
	enum report_err e;

	while (*s != '\0') {
		end = s + strcspn(s, "\r\n");
		n = (size_t)(end - s);
		while (n > 0 && (*s == ' ' || *s == '\t')) {
			s++;
			n--;
		}
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if ((e = fn(arg, s, n, i++)) != REPORT_OK)
			return e;
		if (*end == '\r' && end[1] == '\n')
			end++;
		if (*end == '\0')
			break;
		s = end + 1;
	}
	return REPORT_OK;
}

static enum report_err
diag_check_line(void *arg, const char *s, size_t n, size_t i)
{
	size_t k;

	(void)arg;
	if (i >= DSN_DIAG_LINES_MAX || n > DSN_DIAG_LINE_MAX)
		return REPORT_E_LINE_TOO_LONG;
	if (n == 0)
		return REPORT_E_BAD_VALUE;
	for (k = 0; k < n; k++)
		if (((unsigned char)s[k] < 32 && s[k] != '\t') ||
		    (unsigned char)s[k] >= 127)
			return REPORT_E_BAD_VALUE;
	return REPORT_OK;
}

static enum report_err
diag_join_line(void *arg, const char *s, size_t n, size_t i)
{
	struct buf *b = arg;

	/* RFC 3461 §9.2: "it is necessary to insert a SPACE before each
	 * line after the first". */
	if ((i > 0 && buf_addc(b, ' ') == -1) || buf_add(b, s, n) == -1)
		return REPORT_E_NOSPC;
	return REPORT_OK;
}

static enum report_err
diag_text_line(void *arg, const char *s, size_t n, size_t i)
{
	(void)i;
	if (buf_addf(arg, "    %.*s\r\n", (int)n, s) == -1)
		return REPORT_E_NOSPC;
	return REPORT_OK;
}

static enum report_err
check_rcpt(const struct dsn_rcpt *r)
{
	enum report_err e;

	/* RFC 3464 §2.3.3: five action-values. */
	if (r->action == TSTATUS_ACTION_TRANSFERRED ||
	    r->action == TSTATUS_ACTION_OPAQUE)
		return REPORT_E_BAD_ACTION;
	if ((e = report_rcpt_check(r->action, r->status, r->remote_mta != NULL,
	         r->has_last_attempt, r->has_will_retry, 0)) != REPORT_OK)
		return e;
	if (r->orcpt_type != NULL &&
	    (e = check_addr(r->orcpt_type, r->orcpt)) != REPORT_OK)
		return e;
	if ((e = check_addr(r->final_type != NULL ? r->final_type : "rfc822",
	         r->final_rcpt)) != REPORT_OK)
		return e;
	if (r->remote_mta != NULL &&
	    (e = check_len(r->remote_mta, DSN_ADDR_MAX, 0)) != REPORT_OK)
		return e;
	if (r->diagnostic != NULL) {
		if (*r->diagnostic == '\0')
			return REPORT_E_BAD_VALUE;
		if (r->diagnostic_type != NULL &&
		    !report_atom_check(
		        r->diagnostic_type, strlen(r->diagnostic_type)))
			return REPORT_E_BAD_TYPE;
		if ((e = diag_lines(r->diagnostic, diag_check_line, NULL)) !=
		    REPORT_OK)
			return e;
	}
	return REPORT_OK;
}

static enum dsn_error
check_dsn(const struct dsn *d)
{
	enum report_err e;
	size_t i, n;

	/* RFC 3461 §6.1: no DSN for a message with a null reverse-path. */
	if (d->sender == NULL || *d->sender == '\0')
		return DSN_E_NULL_SENDER;
	if ((e = check_len(d->sender, DSN_ADDR_MAX, 0)) != REPORT_OK ||
	    (d->from != NULL &&
	        (e = check_len(d->from, DSN_ADDR_MAX, 0)) != REPORT_OK) ||
	    (d->subject != NULL &&
	        (e = check_len(d->subject, MIME_LINE_HARD_MAX / 2, 0)) !=
	            REPORT_OK) ||
	    (e = check_len(d->message_id, DSN_MSGID_MAX, 0)) != REPORT_OK)
		return map_err(e);
	/* RFC 5322 §3.6.4: msg-id = [CFWS] "<" id-left "@" id-right ">". */
	n = strlen(d->message_id);
	if (d->message_id[0] != '<' || d->message_id[n - 1] != '>' ||
	    strchr(d->message_id, '@') == NULL ||
	    strpbrk(d->message_id, " \t") != NULL)
		return DSN_E_BAD_VALUE;
	/* RFC 3461 §4.4 bounds the ENVID; §6.3(a) copies it decoded. */
	if (d->envid != NULL &&
	    (e = check_len(d->envid, DSN_ENVID_MAX, 0)) != REPORT_OK)
		return map_err(e);
	if ((e = report_typed_check(
	         d->reporting_mta_type != NULL ? d->reporting_mta_type : "dns",
	         d->reporting_mta)) != REPORT_OK)
		return map_err(e);
	if (strlen(d->reporting_mta) > DSN_ADDR_MAX)
		return DSN_E_TOO_LONG;
	if (d->nrcpt == 0 || d->rcpt == NULL)
		return DSN_E_NO_RECIPIENTS;
	if (d->nrcpt > DSN_RCPT_MAX)
		return DSN_E_TOO_MANY_RECIPIENTS;
	for (i = 0; i < d->nrcpt; i++)
		if ((e = check_rcpt(&d->rcpt[i])) != REPORT_OK)
			return map_err(e);
	if (d->boundary != NULL && *d->boundary != '\0' &&
	    !boundary_ok(d->boundary))
		return DSN_E_BOUNDARY;
	return DSN_OK;
}

static int
any_action(const struct dsn *d, enum tstatus_action a)
{
	size_t i;

	for (i = 0; i < d->nrcpt; i++)
		if (d->rcpt[i].action == a)
			return 1;
	return 0;
}

static const char *
action_phrase(enum tstatus_action a)
{
	switch (a) {
	case TSTATUS_ACTION_FAILED:
		return "delivery failed";
	case TSTATUS_ACTION_DELAYED:
		return "delivery delayed, the mail system will keep trying";
	case TSTATUS_ACTION_DELIVERED:
		return "delivered";
	case TSTATUS_ACTION_RELAYED:
		return "relayed to a system that sends no further "
		       "notifications";
	case TSTATUS_ACTION_EXPANDED:
		return "delivered and forwarded to further recipients";
	default:
		return "unknown";
	}
}

/* Part 1: the explanation for humans (RFC 3462 §2: "a human readable
 * explanation of the report"), short ASCII lines. */
static enum report_err
put_text(struct buf *b, const struct dsn *d)
{
	char date[DATE_MAX];
	enum report_err e;
	const char *intro;
	size_t i;

	if (any_action(d, TSTATUS_ACTION_FAILED))
		intro = "Your message could not be delivered to one or more\r\n"
		        "recipients.";
	else if (any_action(d, TSTATUS_ACTION_DELAYED))
		intro = "Delivery of your message has been delayed.  No action "
		        "is needed\r\non your part.";
	else
		intro = "This is a notification about the delivery of your "
		        "message.";
	if (buf_addf(b, "This is the mail system at host %s.\r\n\r\n%s\r\n",
	        d->reporting_mta, intro) == -1)
		return REPORT_E_NOSPC;
	for (i = 0; i < d->nrcpt; i++) {
		const struct dsn_rcpt *r = &d->rcpt[i];

		if (buf_addf(b, "\r\n<%s>: %s\r\n  Status: %s\r\n",
		        r->final_rcpt, action_phrase(r->action),
		        r->status) == -1)
			return REPORT_E_NOSPC;
		if (r->remote_mta != NULL &&
		    buf_addf(b, "  Remote MTA: %s\r\n", r->remote_mta) == -1)
			return REPORT_E_NOSPC;
		if (r->diagnostic != NULL) {
			if (buf_adds(b, "  Reply:\r\n") == -1)
				return REPORT_E_NOSPC;
			if ((e = diag_lines(r->diagnostic, diag_text_line,
			         b)) != REPORT_OK)
				return e;
		}
		if (r->has_will_retry) {
			if (date_format(&r->will_retry, date, sizeof(date)) ==
			    -1)
				return REPORT_E_BAD_DATE;
			if (buf_addf(b, "  Will retry until: %s\r\n", date) ==
			    -1)
				return REPORT_E_NOSPC;
		}
	}
	return REPORT_OK;
}

static enum report_err
put_rcpt(struct buf *b, const struct dsn_rcpt *r)
{
	struct buf diag;
	enum report_err e;

	/* RFC 3464 §2.3 per-recipient-fields, in its order. */
	if (buf_add(b, "\r\n", 2) == -1)
		return REPORT_E_NOSPC;
	/* RFC 3461 §6.3(d): only if ORCPT was given. */
	if (r->orcpt_type != NULL &&
	    (e = report_put_typed(
	         b, REPORT_F_ORIG_RCPT, r->orcpt_type, r->orcpt)) != REPORT_OK)
		return e;
	if ((e = report_put_typed(b, REPORT_F_FINAL_RCPT,
	         r->final_type != NULL ? r->final_type : "rfc822",
	         r->final_rcpt)) != REPORT_OK ||
	    (e = report_put_action(b, r->action)) != REPORT_OK ||
	    (e = report_put_status(b, r->status, NULL)) != REPORT_OK)
		return e;
	/* RFC 3461 §6.3(h): "The mta-name-type subfields of those
	 * Remote-MTA fields will be dns". */
	if (r->remote_mta != NULL &&
	    (e = report_put_typed(
	         b, REPORT_F_REMOTE_MTA, "dns", r->remote_mta)) != REPORT_OK)
		return e;
	if (r->diagnostic != NULL) {
		buf_init(&diag, DSN_DIAG_MAX);
		e = diag_lines(r->diagnostic, diag_join_line, &diag);
		if (e == REPORT_OK)
			e = report_put_typed(b, REPORT_F_DIAGNOSTIC,
			    r->diagnostic_type != NULL ? r->diagnostic_type
			                               : "smtp",
			    buf_cstr(&diag));
		buf_reset(&diag);
		if (e != REPORT_OK)
			return e;
	}
	if (r->has_last_attempt &&
	    (e = report_put_date(b, REPORT_F_LAST_ATTEMPT, &r->last_attempt)) !=
	        REPORT_OK)
		return e;
	if (r->has_will_retry &&
	    (e = report_put_date(b, REPORT_F_WILL_RETRY, &r->will_retry)) !=
	        REPORT_OK)
		return e;
	return REPORT_OK;
}

/* Counts the places where "CRLF--boundary" occurs in [s, s+n). */
static size_t
count_delims(const char *s, size_t n, const char *boundary)
{
	size_t blen = strlen(boundary), count = 0, i;

	for (i = 0; i + 4 + blen <= n; i++)
		if (s[i] == '\r' && s[i + 1] == '\n' && s[i + 2] == '-' &&
		    s[i + 3] == '-' && memcmp(s + i + 4, boundary, blen) == 0)
			count++;
	return count;
}

static enum report_err
put_dsn(struct buf *b, const struct dsn *d, const char *boundary,
    size_t *nparts_out, size_t *body_out)
{
	char date[DATE_MAX];
	enum report_err e;
	const char *subject = d->subject, *ctype = NULL;
	size_t i, retlen = 0;
	int eight = 0;

	if (d->msg != NULL) {
		/* RFC 3461 §4.3, §6.2: the whole message only for RET=FULL
		 * and a DSN that reports a failure; else the header. */
		if (d->ret == DSN_RET_FULL &&
		    any_action(d, TSTATUS_ACTION_FAILED)) {
			retlen = d->msglen;
			ctype = "message/rfc822";
		} else {
			retlen = dsn_header_len(d->msg, d->msglen);
			ctype = "text/rfc822-headers";
		}
		eight = has_8bit(d->msg, retlen);
	}
	if (subject == NULL)
		subject = any_action(d, TSTATUS_ACTION_FAILED)
		    ? "Delivery Status Notification (Failure)"
		    : any_action(d, TSTATUS_ACTION_DELAYED)
		    ? "Delivery Status Notification (Delay)"
		    : "Delivery Status Notification (Success)";
	if (date_format(&d->date, date, sizeof(date)) == -1)
		return REPORT_E_BAD_DATE;
	if (d->from != NULL) {
		if (mime_field(b, "From", d->from) == -1)
			return REPORT_E_LINE_TOO_LONG;
	} else if (mime_fieldf(
	               b, "From", "MAILER-DAEMON@%s", d->reporting_mta) == -1)
		return REPORT_E_LINE_TOO_LONG;
	/* RFC 3834 §5: "auto-replied" for automatic responses; RFC 3462
	 * §3 (multipart/report) for the Content-Type. */
	if (mime_fieldf(b, "To", "<%s>", d->sender) == -1 ||
	    mime_field(b, "Subject", subject) == -1 ||
	    mime_field(b, "Date", date) == -1 ||
	    mime_field(b, "Message-ID", d->message_id) == -1 ||
	    mime_field(b, "MIME-Version", "1.0") == -1 ||
	    mime_field(b, "Auto-Submitted", "auto-replied") == -1 ||
	    mime_fieldf(b, "Content-Type",
	        "multipart/report; report-type=delivery-status; "
	        "boundary=\"%s\"",
	        boundary) == -1 ||
	    (eight &&
	        mime_field(b, "Content-Transfer-Encoding", "8bit") == -1) ||
	    buf_add(b, "\r\n", 2) == -1)
		return REPORT_E_NOSPC;
	*body_out = b->len - 2;

	if (mime_part_begin(b, boundary, 1) == -1 ||
	    buf_adds(b, "Content-Type: text/plain; charset=us-ascii\r\n\r\n") ==
	        -1)
		return REPORT_E_NOSPC;
	if ((e = put_text(b, d)) != REPORT_OK)
		return e;

	if (mime_part_begin(b, boundary, 0) == -1 ||
	    buf_adds(b, "Content-Type: message/delivery-status\r\n\r\n") == -1)
		return REPORT_E_NOSPC;
	/* RFC 3464 §2.2 per-message-fields, in its order. */
	if (d->envid != NULL &&
	    (e = report_put_text(b, REPORT_F_ENVID, d->envid)) != REPORT_OK)
		return e;
	if ((e = report_put_typed(b, REPORT_F_REPORTING_MTA,
	         d->reporting_mta_type != NULL ? d->reporting_mta_type : "dns",
	         d->reporting_mta)) != REPORT_OK)
		return e;
	if (d->has_arrival &&
	    (e = report_put_date(b, REPORT_F_ARRIVAL, &d->arrival)) !=
	        REPORT_OK)
		return e;
	for (i = 0; i < d->nrcpt; i++)
		if ((e = put_rcpt(b, &d->rcpt[i])) != REPORT_OK)
			return e;
	*nparts_out = 2;

	if (d->msg != NULL) {
		if (mime_part_begin(b, boundary, 0) == -1 ||
		    buf_addf(b, "Content-Type: %s\r\n%s\r\n", ctype,
		        eight ? "Content-Transfer-Encoding: 8bit\r\n" : "") ==
		        -1 ||
		    buf_add(b, d->msg, retlen) == -1)
			return REPORT_E_NOSPC;
		*nparts_out = 3;
	}
	if (mime_multipart_end(b, boundary) == -1)
		return REPORT_E_NOSPC;
	return REPORT_OK;
}

int
dsn_generate(const struct dsn *d, struct buf *out, enum dsn_error *err_out)
{
	char fresh[MIME_BOUNDARY_LEN + 1];
	const char *boundary = d->boundary;
	enum dsn_error err;
	enum report_err e;
	size_t start = out->len, nparts = 0, body = 0;

	if ((err = check_dsn(d)) != DSN_OK)
		goto fail;
	if (boundary == NULL || *boundary == '\0') {
		if (mime_boundary(fresh, sizeof(fresh)) == -1) {
			err = DSN_E_RANDOM;
			goto fail;
		}
		boundary = fresh;
	}
	if ((e = put_dsn(out, d, boundary, &nparts, &body)) != REPORT_OK) {
		err = map_err(e);
		goto fail;
	}
	/* RFC 2046 §5.1.1: "the boundary delimiter MUST NOT appear inside
	 * any of the encapsulated parts".  We wrote one delimiter per part
	 * and the close delimiter; any other is in the content. */
	if (count_delims(out->data + body, out->len - body, boundary) !=
	    nparts + 1) {
		err = DSN_E_BOUNDARY;
		goto fail;
	}
	if (err_out != NULL)
		*err_out = DSN_OK;
	return 0;
fail:
	buf_truncate(out, start);
	if (err_out != NULL)
		*err_out = err;
	return -1;
}
