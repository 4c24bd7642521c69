/*
 * mtqp_resp: MTQP responses (RFC 3887 §2.3, §3, §12): the server's writer,
 * the client's incremental reader and greeting parser.  See msgtrk/mtqp.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/buf.h"
#include "msgtrk/mtqp.h"
#include "msgtrk/str.h"

static const char *
mtqp_resp_indicator(enum mtqp_status status)
{
	switch (status) {
	case MTQP_OK:
		return "+OK";
	case MTQP_OK_MULTI:
		return "+OK+";
	case MTQP_TEMP:
		return "-TEMP";
	case MTQP_ERR:
		return "-ERR";
	case MTQP_BAD:
		return "-BAD";
	}
	return NULL;
}

static int
mtqp_resp_namechar(int c)
{
	/* NAMECHAR = ALPHA / DIGIT / "-" / "_" */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int
mtqp_resp_textchar(int c)
{
	/* VCHAR / WSP */
	return (c >= 0x21 && c <= 0x7e) || c == ' ' || c == '\t';
}

/* Checks the "a/b/c" reasons argument of the writers. */
static int
mtqp_resp_reasons_ok(const char *reasons)
{
	size_t i, tok = 0;

	for (i = 0; reasons[i] != '\0'; i++) {
		if (reasons[i] == '/') {
			if (tok == 0)
				return 0;
			tok = 0;
		} else if (mtqp_resp_namechar((unsigned char)reasons[i]))
			tok++;
		else
			return 0;
	}
	return i == 0 || tok > 0;
}

int
mtqp_resp_line(struct buf *b, enum mtqp_status status, const char *reasons,
    const char *text)
{
	const char *ind = mtqp_resp_indicator(status);
	size_t start = b->len, i;

	if (reasons == NULL)
		reasons = "";
	if (text == NULL)
		text = "";
	if (ind == NULL || !mtqp_resp_reasons_ok(reasons))
		goto inval;
	for (i = 0; text[i] != '\0'; i++)
		if (!mtqp_resp_textchar((unsigned char)text[i]))
			goto inval;
	if (buf_adds(b, ind) == -1)
		goto fail;
	if (*reasons != '\0' && buf_addf(b, "/%s", reasons) == -1)
		goto fail;
	if (*text != '\0' && buf_addf(b, " %s", text) == -1)
		goto fail;
	if (b->len - start > MTQP_LINE_MAX)
		goto inval;
	if (buf_add(b, "\r\n", 2) == -1)
		goto fail;
	return 0;
inval:
	errno = EINVAL;
fail:
	buf_truncate(b, start);
	return -1;
}

int
mtqp_resp_data(struct buf *b, const void *data, size_t n)
{
	const char *s = data, *eol;
	size_t start = b->len, i = 0, ll, k;

	while (i < n) {
		eol = memchr(s + i, '\n', n - i);
		if (eol == NULL)
			goto inval; /* last line without CRLF */
		ll = (size_t)(eol - (s + i));
		if (ll == 0 || s[i + ll - 1] != '\r')
			goto inval; /* bare LF */
		ll--;
		for (k = 0; k < ll; k++)
			if (s[i + k] == '\0' || s[i + k] == '\r')
				goto inval;
		/* §2.3: "If any line of the multi-line response begins
		 * with a period, the line is "dot-stuffed"". */
		if (ll > 0 && s[i] == '.') {
			if (ll + 1 > MTQP_LINE_MAX)
				goto inval;
			if (buf_addc(b, '.') == -1)
				goto fail;
		} else if (ll > MTQP_LINE_MAX)
			goto inval;
		if (buf_add(b, s + i, ll + 2) == -1)
			goto fail;
		i += ll + 2;
	}
	if (buf_add(b, ".\r\n", 3) == -1)
		goto fail;
	return 0;
inval:
	errno = EINVAL;
fail:
	buf_truncate(b, start);
	return -1;
}

int
mtqp_resp_multi(struct buf *b, const char *reasons, const char *text,
    const void *data, size_t n)
{
	size_t start = b->len;

	if (mtqp_resp_line(b, MTQP_OK_MULTI, reasons, text) == -1)
		return -1;
	if (mtqp_resp_data(b, data, n) == -1) {
		buf_truncate(b, start);
		return -1;
	}
	return 0;
}

int
mtqp_resp_greeting(struct buf *b, const char *const *options, size_t noptions,
    const char *text)
{
	struct buf data;
	size_t start = b->len, i, k;
	int r = -1;

	/* §3: "The initial status response MUST include the response
	 * information "/MTQP"". */
	if (noptions == 0)
		return mtqp_resp_line(b, MTQP_OK, "MTQP", text);
	buf_init(&data, (size_t)noptions * (MTQP_LINE_MAX + 2));
	for (i = 0; i < noptions; i++) {
		const char *o = options[i];

		if (o == NULL || o[0] == '\0' || o[0] == ' ' || o[0] == '\t')
			goto inval;
		for (k = 0; o[k] != '\0'; k++)
			if (!mtqp_resp_textchar((unsigned char)o[k]))
				goto inval;
		if (buf_adds(&data, o) == -1 || buf_add(&data, "\r\n", 2) == -1)
			goto out;
	}
	if (mtqp_resp_multi(b, "MTQP", text, data.data, data.len) == -1)
		goto out;
	r = 0;
	goto out;
inval:
	errno = EINVAL;
out:
	if (r == -1)
		buf_truncate(b, start);
	buf_reset(&data);
	return r;
}

/*
 * Reader
 */

enum mtqp_resp_state {
	MTQP_RESP_S_STATUS, /* expecting a status line */
	MTQP_RESP_S_DATA, /* in the data lines of a +OK+ */
	MTQP_RESP_S_FAILED,
};

struct mtqp_resp_reader {
	struct buf in;
	char line[MTQP_LINE_MAX + 2];
	size_t len;
	struct buf body;
	struct mtqp_resp cur; /* status line of the +OK+ being read */
	enum mtqp_resp_state state;
	enum mtqp_resp_error error;
	size_t input_max;
};

struct mtqp_resp_reader *
mtqp_resp_reader_new(const struct mtqp_resp_limits *limits)
{
	struct mtqp_resp_reader *r;
	size_t body_max = MTQP_BODY_MAX;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->input_max = MTQP_RESP_INPUT_MAX;
	if (limits != NULL && limits->body_max != 0)
		body_max = limits->body_max;
	if (limits != NULL && limits->input_max != 0)
		r->input_max = limits->input_max;
	buf_init(&r->in, r->input_max);
	buf_init(&r->body, body_max);
	return r;
}

void
mtqp_resp_reader_free(struct mtqp_resp_reader *r)
{
	if (r == NULL)
		return;
	buf_reset(&r->in);
	buf_reset(&r->body);
	free(r);
}

int
mtqp_resp_reader_push(struct mtqp_resp_reader *r, const void *data, size_t n)
{
	if (r->in.len + n > r->input_max || buf_add(&r->in, data, n) == -1) {
		/* Not a stream error: the caller drains and retries. */
		if (r->state != MTQP_RESP_S_FAILED)
			r->error = MTQP_RESP_E_INPUT_FULL;
		return -1;
	}
	return 0;
}

enum mtqp_resp_error
mtqp_resp_reader_error(const struct mtqp_resp_reader *r)
{
	return r->error;
}

size_t
mtqp_resp_reader_pending(const struct mtqp_resp_reader *r)
{
	return r->in.len;
}

int
mtqp_resp_has_reason(const struct mtqp_resp *resp, const char *reason)
{
	size_t i;

	for (i = 0; i < resp->nreasons; i++)
		if (str_casecmp(resp->reasons[i], reason) == 0)
			return 1;
	return 0;
}

const char *
mtqp_resp_strerror(enum mtqp_resp_error err)
{
	switch (err) {
	case MTQP_RESP_E_NONE:
		return "no error";
	case MTQP_RESP_E_LINE_TOO_LONG:
		return "response line too long";
	case MTQP_RESP_E_BODY_TOO_LARGE:
		return "response body too large";
	case MTQP_RESP_E_NUL:
		return "NUL octet in response";
	case MTQP_RESP_E_BARE_CR:
		return "bare CR in response";
	case MTQP_RESP_E_BARE_LF:
		return "response line not terminated by CRLF";
	case MTQP_RESP_E_STATUS:
		return "unknown status indicator";
	case MTQP_RESP_E_REASON:
		return "malformed response information";
	case MTQP_RESP_E_TEXT:
		return "invalid character in response text";
	case MTQP_RESP_E_INPUT_FULL:
		return "input buffer full";
	}
	return "unknown error";
}

/* Parses a status line (len octets, CRLF removed) into resp. */
static enum mtqp_resp_error
mtqp_resp_parse_status(const char *s, size_t len, struct mtqp_resp *resp)
{
	static const struct {
		const char *ind;
		enum mtqp_status status;
	} inds[] = {
		/* "+OK+" before "+OK": the longer indicator wins. */
		{ "+OK+", MTQP_OK_MULTI },
		{ "+OK", MTQP_OK },
		{ "-TEMP", MTQP_TEMP },
		{ "-ERR", MTQP_ERR },
		{ "-BAD", MTQP_BAD },
	};
	size_t i, k, il = 0, tl;

	memset(resp, 0, sizeof(*resp));
	resp->body = "";
	for (k = 0; k < sizeof(inds) / sizeof(inds[0]); k++) {
		il = strlen(inds[k].ind);
		if (len >= il && memcmp(s, inds[k].ind, il) == 0 &&
		    (len == il || s[il] == '/' || s[il] == ' ' ||
		        s[il] == '\t')) {
			resp->status = inds[k].status;
			break;
		}
	}
	if (resp->status == 0)
		return MTQP_RESP_E_STATUS;
	i = il;
	/* response-info = *("/" 1*NAMECHAR), case-insensitive (§2.3) */
	while (i < len && s[i] == '/') {
		for (k = i + 1;
		     k < len && mtqp_resp_namechar((unsigned char)s[k]); k++)
			;
		tl = k - i - 1;
		if (tl == 0 || tl > MTQP_REASON_LEN_MAX ||
		    resp->nreasons == MTQP_REASONS_MAX)
			return MTQP_RESP_E_REASON;
		memcpy(resp->reasons[resp->nreasons], s + i + 1, tl);
		resp->reasons[resp->nreasons++][tl] = '\0';
		i = k;
	}
	if (i == len)
		return MTQP_RESP_E_NONE;
	/* opt-text = [WSP *(VCHAR / WSP)] */
	if (s[i] != ' ' && s[i] != '\t')
		return MTQP_RESP_E_REASON;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	for (k = i; k < len; k++)
		if (!mtqp_resp_textchar((unsigned char)s[k]))
			return MTQP_RESP_E_TEXT;
	memcpy(resp->text, s + i, len - i);
	resp->text[len - i] = '\0';
	return MTQP_RESP_E_NONE;
}

static int
mtqp_resp_fail(struct mtqp_resp_reader *r, enum mtqp_resp_error err)
{
	r->state = MTQP_RESP_S_FAILED;
	r->error = err;
	return -1;
}

int
mtqp_resp_reader_next(struct mtqp_resp_reader *r, struct mtqp_resp *resp)
{
	enum mtqp_resp_error err;
	const char *s;
	size_t i, k, len;
	int c;

	if (r->state == MTQP_RESP_S_FAILED)
		return -1;
	for (i = 0; i < r->in.len; i++) {
		c = (unsigned char)r->in.data[i];
		if (c == '\0')
			return mtqp_resp_fail(r, MTQP_RESP_E_NUL);
		if (c != '\n') {
			if (r->len > 0 && r->line[r->len - 1] == '\r')
				return mtqp_resp_fail(r, MTQP_RESP_E_BARE_CR);
			r->line[r->len++] = (char)c;
			/* §2.3: lines are "limited to 998 characters
			 * before the CRLF"; checked before the LF. */
			if (r->len > MTQP_LINE_MAX + 1 ||
			    (r->len == MTQP_LINE_MAX + 1 && c != '\r'))
				return mtqp_resp_fail(
				    r, MTQP_RESP_E_LINE_TOO_LONG);
			continue;
		}
		if (r->len == 0 || r->line[r->len - 1] != '\r')
			return mtqp_resp_fail(r, MTQP_RESP_E_BARE_LF);
		len = r->len - 1;
		s = r->line;
		r->len = 0;
		if (r->state == MTQP_RESP_S_STATUS) {
			if (r->body.len > 0)
				buf_clear(&r->body);
			err = mtqp_resp_parse_status(s, len, resp);
			if (err != MTQP_RESP_E_NONE)
				return mtqp_resp_fail(r, err);
			if (resp->status != MTQP_OK_MULTI) {
				buf_consume(&r->in, i + 1);
				return 1;
			}
			r->cur = *resp;
			r->state = MTQP_RESP_S_DATA;
			continue;
		}
		/* §2.3: ".CRLF" ends the response; otherwise a leading
		 * period is stripped. */
		if (len == 1 && s[0] == '.') {
			buf_consume(&r->in, i + 1);
			*resp = r->cur;
			resp->body = buf_cstr(&r->body);
			resp->body_len = r->body.len;
			r->state = MTQP_RESP_S_STATUS;
			return 1;
		}
		k = len > 0 && s[0] == '.' ? 1 : 0;
		if (buf_add(&r->body, s + k, len - k) == -1 ||
		    buf_add(&r->body, "\r\n", 2) == -1)
			return mtqp_resp_fail(r, MTQP_RESP_E_BODY_TOO_LARGE);
	}
	buf_clear(&r->in);
	return 0;
}

/*
 * Greeting
 */

/* Checks one option specification (continuations joined, CRLFs kept). */
static int
mtqp_greeting_option(const char *s, size_t n, struct mtqp_greeting *g)
{
	size_t i, il;

	for (il = 0; il < n && s[il] != ' ' && s[il] != '\t' && s[il] != '\r';
	     il++)
		;
	if (il == 0)
		return -1;
	g->noptions++;
	/* §3: "STARTTLS [1*WSP "required"]", identifier and parameter
	 * case-insensitive. */
	if (il != 8 || str_ncasecmp(s, "STARTTLS", 8) != 0)
		return 0;
	if (g->starttls)
		return -1; /* listed twice */
	g->starttls = 1;
	for (i = il; i < n &&
	     (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n');
	     i++)
		;
	if (i == n)
		return 0;
	if (i == il || n - i < 8 || str_ncasecmp(s + i, "required", 8) != 0)
		return -1;
	for (i += 8; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return -1;
	g->starttls_required = 1;
	return 0;
}

int
mtqp_greeting_parse(const struct mtqp_resp *resp, struct mtqp_greeting *g,
    enum mtqp_greeting_error *err_out)
{
	const char *s = resp->body, *eol;
	size_t n = resp->body_len, i = 0, ostart = 0, k;
	int have = 0;

	memset(g, 0, sizeof(*g));
	*err_out = MTQP_GREETING_E_NONE;
	if (resp->status == MTQP_BAD) {
		*err_out = MTQP_GREETING_E_STATUS;
		return -1;
	}
	/* §3: "The initial status response MUST include the response
	 * information "/MTQP"". */
	if (!mtqp_resp_has_reason(resp, "MTQP")) {
		*err_out = MTQP_GREETING_E_NOT_MTQP;
		return -1;
	}
	if (resp->status == MTQP_TEMP || resp->status == MTQP_ERR) {
		/* §3: "A negative initial status response MUST include a
		 * reason code"; unknown ones count as "unavailable". */
		if (resp->nreasons < 2) {
			*err_out = MTQP_GREETING_E_NO_REASON;
			return -1;
		}
		g->admin = mtqp_resp_has_reason(resp, "admin");
		return 0;
	}
	g->ok = 1;
	if (resp->status != MTQP_OK_MULTI)
		return 0;
	/* One option per line; "continued onto additional lines by
	 * starting the continuation lines with white space" (§3). */
	while (i < n) {
		eol = memchr(s + i, '\n', n - i);
		k = eol == NULL ? n : (size_t)(eol - s) + 1;
		if (s[i] == ' ' || s[i] == '\t') {
			if (!have)
				goto bad;
		} else {
			if (have &&
			    mtqp_greeting_option(s + ostart, i - ostart, g) ==
			        -1)
				goto bad;
			ostart = i;
			have = 1;
		}
		for (; i < k; i++) {
			int c = (unsigned char)s[i];

			if (c != '\r' && c != '\n' && !mtqp_resp_textchar(c))
				goto bad;
		}
	}
	if (have && mtqp_greeting_option(s + ostart, n - ostart, g) == -1)
		goto bad;
	return 0;
bad:
	memset(g, 0, sizeof(*g));
	*err_out = MTQP_GREETING_E_OPTION;
	return -1;
}
