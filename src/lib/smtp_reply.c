/*
 * smtp_reply: incremental SMTP reply reader and EHLO response parser
 * (client side).  See include/msgtrk/smtp_reply.h for the contract and the
 * choices made.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/buf.h"
#include "msgtrk/str.h"
#include "msgtrk/smtp_reply.h"

struct smtp_reply_parser {
	unsigned int flags;
	struct buf in; /* pushed input; in.data[pos..] is unread */
	size_t pos;
	size_t scan; /* octets of the current line already checked */
	enum smtp_reply_error err; /* sticky */
	int done; /* msg was returned: start afresh on the next call */
	size_t total; /* raw octets of the reply in progress */
	struct buf text; /* msg.text under construction */
	struct smtp_reply_msg msg;
};

static const char *const smtp_reply_error_names[SMTP_REPLY_ERR_COUNT] = {
	[SMTP_REPLY_OK] = "ok",
	[SMTP_REPLY_ERR_CODE] = "code",
	[SMTP_REPLY_ERR_SEPARATOR] = "separator",
	[SMTP_REPLY_ERR_MISMATCH] = "mismatch",
	[SMTP_REPLY_ERR_LINE_TOO_LONG] = "line-too-long",
	[SMTP_REPLY_ERR_TOO_MANY_LINES] = "too-many-lines",
	[SMTP_REPLY_ERR_TOO_BIG] = "too-big",
	[SMTP_REPLY_ERR_NUL] = "nul",
	[SMTP_REPLY_ERR_BARE_CR] = "bare-cr",
	[SMTP_REPLY_ERR_BARE_LF] = "bare-lf",
	[SMTP_REPLY_ERR_NOMEM] = "nomem",
};

static void
smtp_reply_start(struct smtp_reply_parser *p)
{
	buf_clear(&p->text);
	memset(&p->msg, 0, sizeof(p->msg));
	p->total = 0;
	p->done = 0;
}

struct smtp_reply_parser *
smtp_reply_parser_new(unsigned int flags)
{
	struct smtp_reply_parser *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->flags = flags;
	buf_init(&p->in, SMTP_REPLY_INPUT_MAX);
	/* The text is never longer than the raw reply. */
	buf_init(&p->text, SMTP_REPLY_TOTAL_MAX);
	return p;
}

void
smtp_reply_parser_free(struct smtp_reply_parser *p)
{
	if (p == NULL)
		return;
	buf_reset(&p->in);
	buf_reset(&p->text);
	free(p);
}

void
smtp_reply_parser_clear(struct smtp_reply_parser *p)
{
	buf_clear(&p->in);
	p->pos = 0;
	p->scan = 0;
	p->err = SMTP_REPLY_OK;
	smtp_reply_start(p);
}

size_t
smtp_reply_pending(const struct smtp_reply_parser *p)
{
	return p->in.len - p->pos;
}

size_t
smtp_reply_room(const struct smtp_reply_parser *p)
{
	return SMTP_REPLY_INPUT_MAX - smtp_reply_pending(p);
}

int
smtp_reply_push(struct smtp_reply_parser *p, const void *data, size_t n)
{
	if (n > smtp_reply_room(p)) {
		errno = ENOSPC;
		return -1;
	}
	if (p->pos > 0) {
		buf_consume(&p->in, p->pos);
		p->pos = 0;
	}
	return buf_add(&p->in, data, n);
}

static int
smtp_reply_fail(struct smtp_reply_parser *p, enum smtp_reply_error *err_out,
    enum smtp_reply_error err)
{
	p->err = err;
	if (err_out != NULL)
		*err_out = err;
	return -1;
}

static int
smtp_reply_isdigit(char c)
{
	return c >= '0' && c <= '9';
}

/* Length of an RFC 2034 status-code of the given class at the start of
 * the n octets at s, followed by SP or the end; 0 if there is none.
 *   status-code ::= class "." subject "." detail
 *   class ::= "2" / "4" / "5"  ("3xx responses are NOT included")
 *   subject ::= 1*3digit, detail ::= 1*3digit */
static size_t
smtp_reply_status_len(const char *s, size_t n, char class)
{
	size_t i, k, part;

	if (class != '2' && class != '4' && class != '5')
		return 0;
	if (n < 5 || s[0] != class || s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (k = 0; k < 3 && i < n && smtp_reply_isdigit(s[i]); k++)
			i++;
		if (k == 0)
			return 0;
		if (part == 0) {
			if (i >= n || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < n && s[i] != ' ')
		return 0;
	return i;
}

/* Adds one complete line (len octets without the line ending, raw octets
 * with it).  Returns 1 if the reply is complete, 0 if it continues, -1 on
 * error. */
static int
smtp_reply_line_add(struct smtp_reply_parser *p, const char *s, size_t len,
    enum smtp_reply_error *err_out)
{
	struct smtp_reply_msg *m = &p->msg;
	const char *text;
	size_t tlen, sl;
	int code, last;

	/* RFC 5321 §4.2: Reply-code; any second and third digit (see the
	 * header). */
	if (len < 3 || s[0] < '2' || s[0] > '5' || !smtp_reply_isdigit(s[1]) ||
	    !smtp_reply_isdigit(s[2]))
		return smtp_reply_fail(p, err_out, SMTP_REPLY_ERR_CODE);
	code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	/* Reply-code "-" [ textstring ] / Reply-code [ SP textstring ]. */
	if (len == 3)
		last = 1;
	else if (s[3] == ' ')
		last = 1;
	else if (s[3] == '-')
		last = 0;
	else
		return smtp_reply_fail(p, err_out, SMTP_REPLY_ERR_SEPARATOR);
	/* RFC 5321 §4.2.1: every line of a multiline reply carries the
	 * same code. */
	if (m->nlines > 0 && code != m->code)
		return smtp_reply_fail(p, err_out, SMTP_REPLY_ERR_MISMATCH);
	text = len > 4 ? s + 4 : s + len;
	tlen = len > 4 ? len - 4 : 0;
	if (m->nlines == 0) {
		m->code = code;
		/* RFC 2034 §4: the enhanced code prefaces the text, and
		 * its class agrees with the reply code. */
		sl = smtp_reply_status_len(text, tlen, s[0]);
		if (sl > 0) {
			memcpy(m->status, text, sl);
			m->status[sl] = '\0';
		}
	} else {
		/* "the same status code must appear at the beginning of
		 * the text in each line": stripped where it does; a line
		 * without it keeps its text. */
		sl = strlen(m->status);
		if (sl > 0 &&
		    (tlen < sl || memcmp(text, m->status, sl) != 0 ||
		        (tlen > sl && text[sl] != ' ')))
			sl = 0;
	}
	if (sl > 0) {
		text += sl;
		tlen -= sl;
		if (tlen > 0) {
			text++;
			tlen--;
		}
	}
	if ((m->nlines > 0 && buf_addc(&p->text, '\n') == -1) ||
	    buf_add(&p->text, text, tlen) == -1)
		return smtp_reply_fail(p, err_out,
		    errno == ENOSPC ? SMTP_REPLY_ERR_TOO_BIG
		                    : SMTP_REPLY_ERR_NOMEM);
	m->line_off[m->nlines] = p->text.len - tlen;
	m->nlines++;
	if (last) {
		m->line_off[m->nlines] = p->text.len + 1;
		m->text = buf_cstr(&p->text);
		m->text_len = p->text.len;
		return 1;
	}
	/* Another line is coming and there is no room for it. */
	if (m->nlines == SMTP_REPLY_LINES_MAX)
		return smtp_reply_fail(
		    p, err_out, SMTP_REPLY_ERR_TOO_MANY_LINES);
	return 0;
}

int
smtp_reply_next(struct smtp_reply_parser *p,
    const struct smtp_reply_msg **reply_out, enum smtp_reply_error *err_out)
{
	const char *s;
	size_t i, n, len;
	int rc;

	if (err_out != NULL)
		*err_out = SMTP_REPLY_OK;
	if (p->err != SMTP_REPLY_OK)
		return smtp_reply_fail(p, err_out, p->err);
	if (p->done)
		smtp_reply_start(p);
	for (;;) {
		s = p->in.data + p->pos;
		n = p->in.len - p->pos;
		for (i = p->scan; i < n; i++) {
			char c = s[i];

			if (c == '\0')
				return smtp_reply_fail(
				    p, err_out, SMTP_REPLY_ERR_NUL);
			if (c == '\n')
				break;
			if (i > 0 && s[i - 1] == '\r')
				return smtp_reply_fail(
				    p, err_out, SMTP_REPLY_ERR_BARE_CR);
			/* Limits before the line is complete: a CR at i
			 * ends a line of i + 2 octets, anything else
			 * makes it at least i + 3 (counted as if it ended
			 * in CRLF even when a bare LF will end it). */
			if (c == '\r' ? i + 2 > SMTP_REPLY_LINE_MAX
			              : i + 3 > SMTP_REPLY_LINE_MAX)
				return smtp_reply_fail(
				    p, err_out, SMTP_REPLY_ERR_LINE_TOO_LONG);
			if (p->total + i + 1 > SMTP_REPLY_TOTAL_MAX)
				return smtp_reply_fail(
				    p, err_out, SMTP_REPLY_ERR_TOO_BIG);
		}
		if (i == n) {
			p->scan = n;
			return 0;
		}
		if (p->total + i + 1 > SMTP_REPLY_TOTAL_MAX)
			return smtp_reply_fail(
			    p, err_out, SMTP_REPLY_ERR_TOO_BIG);
		if (i > 0 && s[i - 1] == '\r')
			len = i - 1;
		else if (p->flags & SMTP_REPLY_STRICT_CRLF)
			/* RFC 5321 §2.3.8, when asked for. */
			return smtp_reply_fail(
			    p, err_out, SMTP_REPLY_ERR_BARE_LF);
		else
			len = i;
		p->total += i + 1;
		p->pos += i + 1;
		p->scan = 0;
		rc = smtp_reply_line_add(p, s, len, err_out);
		if (rc == -1)
			return -1;
		if (rc == 1) {
			p->done = 1;
			*reply_out = &p->msg;
			return 1;
		}
	}
}

const char *
smtp_reply_line(const struct smtp_reply_msg *r, size_t i, size_t *len_out)
{
	if (i >= r->nlines)
		return NULL;
	*len_out = r->line_off[i + 1] - 1 - r->line_off[i];
	return r->text + r->line_off[i];
}

const char *
smtp_reply_error_name(enum smtp_reply_error err)
{
	if ((unsigned int)err >= SMTP_REPLY_ERR_COUNT)
		return "unknown";
	return smtp_reply_error_names[err];
}

static int
smtp_reply_isalnum(char c)
{
	return smtp_reply_isdigit(c) || (c >= 'A' && c <= 'Z') ||
	    (c >= 'a' && c <= 'z');
}

/* The known keywords and their bits. */
static const struct {
	const char *name;
	unsigned int bit;
} smtp_reply_ehlo_known[] = {
	{ "SIZE", SMTP_EHLO_SIZE },
	{ "8BITMIME", SMTP_EHLO_8BITMIME },
	{ "DSN", SMTP_EHLO_DSN },
	{ "MTRK", SMTP_EHLO_MTRK },
	{ "PIPELINING", SMTP_EHLO_PIPELINING },
	{ "STARTTLS", SMTP_EHLO_STARTTLS },
	{ "ENHANCEDSTATUSCODES", SMTP_EHLO_ENHANCEDSTATUSCODES },
};

/* RFC 1870 §4: size-param ::= [1*DIGIT]; we take 1*20DIGIT (the
 * size-value of MAIL) and saturate.  0 for anything else. */
static uint64_t
smtp_reply_ehlo_size(const char *s, size_t n)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 20)
		return 0;
	for (i = 0; i < n; i++) {
		if (!smtp_reply_isdigit(s[i]))
			return 0;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return UINT64_MAX;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	return v;
}

int
smtp_reply_ehlo(
    const struct smtp_reply_msg *r, struct smtp_reply_ehlo *ehlo_out)
{
	struct smtp_reply_ehlo_kw *kw;
	const char *s;
	size_t i, j, k, n;

	memset(ehlo_out, 0, sizeof(*ehlo_out));
	if (r->code != 250 || r->nlines == 0)
		return -1;
	/* ehlo-ok-rsp: the first line is Domain [ SP ehlo-greet ]. */
	s = smtp_reply_line(r, 0, &n);
	for (j = 0; j < n && s[j] != ' '; j++)
		;
	ehlo_out->domain = s;
	ehlo_out->domain_len = j;
	for (i = 1; i < r->nlines; i++) {
		s = smtp_reply_line(r, i, &n);
		/* ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
		for (j = 0; j < n &&
		     (smtp_reply_isalnum(s[j]) || (j > 0 && s[j] == '-'));
		     j++)
			;
		if (j == 0 || (j < n && s[j] != ' ')) {
			ehlo_out->nbad++;
			continue;
		}
		kw = &ehlo_out->kw[ehlo_out->nkw++];
		kw->keyword = s;
		kw->keyword_len = j;
		kw->params = j < n ? s + j + 1 : s + n;
		kw->params_len = j < n ? n - j - 1 : 0;
		for (k = 0; k < sizeof(smtp_reply_ehlo_known) /
		         sizeof(smtp_reply_ehlo_known[0]);
		     k++) {
			const char *name = smtp_reply_ehlo_known[k].name;

			if (strlen(name) != j || str_ncasecmp(s, name, j) != 0)
				continue;
			/* The first SIZE line counts, as for every
			 * keyword in smtp_reply_ehlo_find(). */
			if (smtp_reply_ehlo_known[k].bit == SMTP_EHLO_SIZE &&
			    !(ehlo_out->ext & SMTP_EHLO_SIZE))
				ehlo_out->size = smtp_reply_ehlo_size(
				    kw->params, kw->params_len);
			ehlo_out->ext |= smtp_reply_ehlo_known[k].bit;
		}
	}
	return 0;
}

const struct smtp_reply_ehlo_kw *
smtp_reply_ehlo_find(const struct smtp_reply_ehlo *e, const char *keyword)
{
	size_t i, n = strlen(keyword);

	for (i = 0; i < e->nkw; i++)
		if (e->kw[i].keyword_len == n &&
		    str_ncasecmp(e->kw[i].keyword, keyword, n) == 0)
			return &e->kw[i];
	return NULL;
}
