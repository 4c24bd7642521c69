/*
 * report: field code shared by tstatus.c (RFC 3886) and dsn.c (RFC 3464).
 * See report.h.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/mime.h"
#include "msgtrk/str.h"
#include "report.h"

/* Arena chunks hold at least this much; bigger strings get their own. */
#define REPORT_CHUNK_SIZE 4096
/* RFC 5322 §3.2.2 comments nest; bound the depth we follow. */
#define REPORT_COMMENT_DEPTH_MAX 16

static const char *const field_names[REPORT_F_COUNT] = {
	[REPORT_F_ENVID] = "Original-Envelope-Id",
	[REPORT_F_REPORTING_MTA] = "Reporting-MTA",
	[REPORT_F_ARRIVAL] = "Arrival-Date",
	[REPORT_F_ORIG_RCPT] = "Original-Recipient",
	[REPORT_F_FINAL_RCPT] = "Final-Recipient",
	[REPORT_F_ACTION] = "Action",
	[REPORT_F_STATUS] = "Status",
	[REPORT_F_REMOTE_MTA] = "Remote-MTA",
	[REPORT_F_LAST_ATTEMPT] = "Last-Attempt-Date",
	[REPORT_F_WILL_RETRY] = "Will-Retry-Until",
	[REPORT_F_DSN_GATEWAY] = "DSN-Gateway",
	[REPORT_F_RECEIVED_FROM] = "Received-From-MTA",
	[REPORT_F_DIAGNOSTIC] = "Diagnostic-Code",
	[REPORT_F_FINAL_LOG_ID] = "Final-Log-ID",
};

static const char *const action_names[] = {
	[TSTATUS_ACTION_NONE] = NULL,
	[TSTATUS_ACTION_FAILED] = "failed",
	[TSTATUS_ACTION_DELAYED] = "delayed",
	[TSTATUS_ACTION_DELIVERED] = "delivered",
	[TSTATUS_ACTION_RELAYED] = "relayed",
	[TSTATUS_ACTION_EXPANDED] = "expanded",
	[TSTATUS_ACTION_TRANSFERRED] = "transferred",
	[TSTATUS_ACTION_OPAQUE] = "opaque",
};

#define NACTIONS (sizeof(action_names) / sizeof(action_names[0]))

const char *
report_field_name(enum report_field f)
{
	if ((unsigned)f >= REPORT_F_COUNT)
		return NULL;
	return field_names[f];
}

int
report_field_lookup(const char *s, size_t n)
{
	int i;

	for (i = 0; i < REPORT_F_COUNT; i++)
		if (strlen(field_names[i]) == n &&
		    str_ncasecmp(s, field_names[i], n) == 0)
			return i;
	return -1;
}

const char *
report_action_name(enum tstatus_action a)
{
	if ((unsigned)a >= NACTIONS)
		return NULL;
	return action_names[a];
}

enum tstatus_action
report_action_lookup(const char *s, size_t n)
{
	size_t i;

	for (i = 1; i < NACTIONS; i++)
		if (strlen(action_names[i]) == n &&
		    str_ncasecmp(s, action_names[i], n) == 0)
			return (enum tstatus_action)i;
	return TSTATUS_ACTION_NONE;
}

/* 1*3DIGIT without a leading zero ("0" alone is fine).  Returns the
 * number of bytes read, 0 if none fit. */
static size_t
status_number(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == 0 || i > 3 || (i > 1 && s[0] == '0'))
		return 0;
	return i;
}

int
report_status_check(const char *s, size_t n)
{
	size_t i, k;

	/* RFC 3463 §2: class = "2" / "4" / "5". */
	if (n < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return -1;
	i = 2;
	if ((k = status_number(s + i, n - i)) == 0)
		return -1;
	i += k;
	if (i >= n || s[i] != '.')
		return -1;
	i++;
	if ((k = status_number(s + i, n - i)) == 0 || i + k != n)
		return -1;
	return s[0] - '0';
}

static int
atom_char(unsigned char c)
{
	/* RFC 822 §3.3: atom = 1*<any CHAR except specials, SPACE and
	 * CTLs>; specials = ()<>@,;:\".[] */
	return c > 32 && c < 127 && strchr("()<>@,;:\\\".[]", c) == NULL;
}

int
report_atom_check(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!atom_char((unsigned char)s[i]))
			return 0;
	return 1;
}

size_t
report_cfws(const char *s, size_t n)
{
	size_t i = 0;
	int depth = 0;

	while (i < n) {
		char c = s[i];

		if (c == '(') {
			if (++depth > REPORT_COMMENT_DEPTH_MAX)
				return (size_t)-1;
		} else if (depth > 0 && c == ')') {
			depth--;
		} else if (depth > 0 && c == '\\') {
			/* quoted-pair */
			if (++i >= n)
				return (size_t)-1;
		} else if (depth == 0 && c != ' ' && c != '\t') {
			break;
		}
		i++;
	}
	return depth == 0 ? i : (size_t)-1;
}

enum report_err
report_text_check(const char *s, int allow_empty)
{
	size_t i, n;

	if (s == NULL || *s == '\0')
		return allow_empty && s != NULL ? REPORT_OK : REPORT_E_MISSING;
	n = strlen(s);
	/* RFC 3886 §3.1: 7bit; CR and LF cannot appear inside a field
	 * (RFC 3464 §2.3.2).  Other controls are not printable text. */
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 32 && c != '\t') || c >= 127)
			return REPORT_E_BAD_VALUE;
	}
	if (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t')
		return REPORT_E_BAD_VALUE;
	return REPORT_OK;
}

enum report_err
report_typed_check(const char *type, const char *value)
{
	if (type == NULL || *type == '\0')
		return REPORT_E_MISSING;
	if (!report_atom_check(type, strlen(type)))
		return REPORT_E_BAD_TYPE;
	return report_text_check(value, 0);
}

enum report_err
report_comment_check(const char *comment)
{
	size_t n;
	enum report_err e;

	if (comment == NULL)
		return REPORT_OK;
	if ((e = report_text_check(comment, 0)) != REPORT_OK)
		return e == REPORT_E_MISSING ? REPORT_E_BAD_STATUS : e;
	n = strlen(comment);
	if (comment[0] != '(' || report_cfws(comment, n) != n)
		return REPORT_E_BAD_STATUS;
	return REPORT_OK;
}

enum report_err
report_rcpt_check(enum tstatus_action action, const char *status,
    int has_remote_mta, int has_last_attempt, int has_will_retry, int tracking)
{
	int cls;

	if (report_action_name(action) == NULL)
		return REPORT_E_BAD_ACTION;
	if (status == NULL || *status == '\0')
		return REPORT_E_MISSING;
	if ((cls = report_status_check(status, strlen(status))) == -1)
		return REPORT_E_BAD_STATUS;
	/* RFC 3886 §3.3.4: "A status code of 2.1.9 MUST only be used with
	 * an action of relayed". */
	if (strcmp(status, "2.1.9") == 0 && action != TSTATUS_ACTION_RELAYED)
		return REPORT_E_STATUS_ACTION;
	switch (action) {
	case TSTATUS_ACTION_FAILED:
		if (cls == 2)
			return REPORT_E_STATUS_ACTION;
		break;
	case TSTATUS_ACTION_DELAYED:
		if (cls != 4)
			return REPORT_E_STATUS_ACTION;
		break;
	case TSTATUS_ACTION_OPAQUE:
		break;
	default:
		if (cls != 2)
			return REPORT_E_STATUS_ACTION;
		break;
	}
	/* RFC 3886 §3.3.5: Remote-MTA "MUST NOT be included ... if the
	 * Action field has value opaque"; §3.3.7: Will-Retry-Until neither. */
	if (action == TSTATUS_ACTION_OPAQUE &&
	    (has_remote_mta || has_will_retry ||
	        (tracking && has_last_attempt)))
		return REPORT_E_NOT_ALLOWED;
	/* RFC 3464 §2.3.9: Will-Retry-Until "only ... in delayed DSNs";
	 * RFC 3886 §3.3.7: "MUST NOT" when the message is not queued. */
	if (has_will_retry && action != TSTATUS_ACTION_DELAYED)
		return REPORT_E_NOT_ALLOWED;
	/* RFC 3886 §3.3.5: Remote-MTA only after an attempt; §3.3.6: then
	 * Last-Attempt-Date "is REQUIRED". */
	if (tracking && has_remote_mta && !has_last_attempt)
		return REPORT_E_NEEDS_ATTEMPT;
	if (tracking && !has_last_attempt &&
	    (action == TSTATUS_ACTION_RELAYED ||
	        action == TSTATUS_ACTION_TRANSFERRED))
		return REPORT_E_NEEDS_ATTEMPT;
	return REPORT_OK;
}

static enum report_err
put_result(int r)
{
	if (r == 0)
		return REPORT_OK;
	return errno == ENOSPC || errno == ENOMEM ? REPORT_E_NOSPC
	                                          : REPORT_E_LINE_TOO_LONG;
}

enum report_err
report_put_text(struct buf *b, enum report_field f, const char *value)
{
	return put_result(mime_field(b, report_field_name(f), value));
}

enum report_err
report_put_typed(
    struct buf *b, enum report_field f, const char *type, const char *value)
{
	return put_result(
	    mime_fieldf(b, report_field_name(f), "%s; %s", type, value));
}

enum report_err
report_put_date(struct buf *b, enum report_field f, const struct date *d)
{
	char s[DATE_MAX];

	if (date_format(d, s, sizeof(s)) == -1)
		return REPORT_E_BAD_DATE;
	return put_result(mime_field(b, report_field_name(f), s));
}

enum report_err
report_put_action(struct buf *b, enum tstatus_action a)
{
	const char *name = report_action_name(a);

	if (name == NULL)
		return REPORT_E_BAD_ACTION;
	return put_result(
	    mime_field(b, report_field_name(REPORT_F_ACTION), name));
}

enum report_err
report_put_status(struct buf *b, const char *status, const char *comment)
{
	const char *name = report_field_name(REPORT_F_STATUS);

	if (comment == NULL)
		return put_result(mime_field(b, name, status));
	return put_result(mime_fieldf(b, name, "%s %s", status, comment));
}

enum report_err
report_put_ext(struct buf *b, const char *name, const char *value)
{
	size_t start = b->len;

	if (*value != '\0')
		return put_result(mime_field(b, name, value));
	if (strlen(name) + 1 > MIME_LINE_HARD_MAX)
		return REPORT_E_LINE_TOO_LONG;
	if (buf_addf(b, "%s:\r\n", name) == -1) {
		buf_truncate(b, start);
		return REPORT_E_NOSPC;
	}
	return REPORT_OK;
}

struct report_chunk {
	struct report_chunk *next;
	size_t size;
	size_t used;
	char data[];
};

void
report_arena_init(struct report_arena *a)
{
	a->head = NULL;
}

void
report_arena_reset(struct report_arena *a)
{
	struct report_chunk *c, *next;

	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	a->head = NULL;
}

char *
report_arena_strndup(struct report_arena *a, const char *s, size_t n)
{
	struct report_chunk *c = a->head;
	char *p;

	if (n >= SIZE_MAX - sizeof(*c) - REPORT_CHUNK_SIZE)
		return NULL;
	if (c == NULL || c->size - c->used < n + 1) {
		size_t size =
		    n + 1 > REPORT_CHUNK_SIZE ? n + 1 : REPORT_CHUNK_SIZE;

		if ((c = malloc(sizeof(*c) + size)) == NULL)
			return NULL;
		c->size = size;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	p = c->data + c->used;
	memcpy(p, s, n);
	p[n] = '\0';
	c->used += n + 1;
	return p;
}
