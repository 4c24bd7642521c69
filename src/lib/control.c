/*
 * control: the control socket's line protocol.  See msgtrk/control.h.
 *
 * Pushed input sits in p->in; a line is assembled in p->line, which never
 * holds more than CONTROL_LINE_MAX octets, so an over-long line is caught
 * at its CONTROL_LINE_MAX + 1st octet and the rest is skipped up to the
 * LF.  Each complete line is checked octet by octet first (so the error
 * does not depend on how the line arrived), then split on single spaces.
 */
#include <stdlib.h>
#include <string.h>

#include "msgtrk/buf.h"
#include "msgtrk/control.h"
#include "msgtrk/str.h"

/* The largest count of a "done" line: 10 digits, 32 bits. */
#define CONTROL_COUNT_MAX 4294967295UL
#define CONTROL_COUNT_DIGITS 10

struct control_parser {
	struct buf in;
	char line[CONTROL_LINE_MAX + 1];
	size_t len;
	int skipping; /* discarding the rest of an over-long line */
	enum control_error error;
};

static const char *const control_verbs[] = {
	[CONTROL_FLUSH] = "flush",
	[CONTROL_HOLD] = "hold",
	[CONTROL_RELEASE] = "release",
	[CONTROL_DELETE] = "delete",
	[CONTROL_RELOAD] = "reload",
};

#define CONTROL_NVERBS (sizeof(control_verbs) / sizeof(control_verbs[0]))

struct control_parser *
control_parser_new(void)
{
	struct control_parser *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	buf_init(&p->in, CONTROL_INPUT_MAX);
	return p;
}

void
control_parser_free(struct control_parser *p)
{
	if (p == NULL)
		return;
	buf_reset(&p->in);
	free(p);
}

int
control_push(struct control_parser *p, const void *data, size_t n)
{
	if (n > CONTROL_INPUT_MAX - p->in.len || buf_add(&p->in, data, n)) {
		p->error = CONTROL_E_INPUT_FULL;
		return -1;
	}
	return 0;
}

size_t
control_parser_room(const struct control_parser *p)
{
	return CONTROL_INPUT_MAX - p->in.len;
}

size_t
control_parser_pending(const struct control_parser *p)
{
	return p->in.len;
}

enum control_error
control_parser_error(const struct control_parser *p)
{
	return p->error;
}

const char *
control_strerror(enum control_error err)
{
	switch (err) {
	case CONTROL_E_NONE:
		return "no error";
	case CONTROL_E_LINE_TOO_LONG:
		return "line too long";
	case CONTROL_E_NUL:
		return "NUL octet";
	case CONTROL_E_BYTE:
		return "control or 8-bit octet";
	case CONTROL_E_EMPTY:
		return "empty line";
	case CONTROL_E_SYNTAX:
		return "syntax error";
	case CONTROL_E_VERB:
		return "unknown command";
	case CONTROL_E_ARGS:
		return "wrong number of arguments";
	case CONTROL_E_QID:
		return "malformed queue id";
	case CONTROL_E_TEXT:
		return "missing or over-long text";
	case CONTROL_E_INPUT_FULL:
		return "input buffer full";
	}
	return "unknown error";
}

static int
control_alnum(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z');
}

int
control_qid_check(const char *s, size_t n)
{
	size_t i;

	if (s == NULL || n == 0 || n > CONTROL_QID_MAX)
		return -1;
	for (i = 0; i < n; i++)
		if (!control_alnum((unsigned char)s[i]))
			return -1;
	return 0;
}

static enum control_verb
control_verb_findn(const char *s, size_t n)
{
	size_t v;

	for (v = 1; v < CONTROL_NVERBS; v++)
		if (strlen(control_verbs[v]) == n &&
		    memcmp(control_verbs[v], s, n) == 0)
			return (enum control_verb)v;
	return CONTROL_NONE;
}

enum control_verb
control_verb_find(const char *s)
{
	return s != NULL ? control_verb_findn(s, strlen(s)) : CONTROL_NONE;
}

const char *
control_verb_name(enum control_verb v)
{
	if ((size_t)v == 0 || (size_t)v >= CONTROL_NVERBS)
		return NULL;
	return control_verbs[v];
}

/* --- parsing ----------------------------------------------------------- */

/* The octet checks of a complete line; strips one final CR.  Returns
 * CONTROL_E_NONE or the first fault, in line order. */
static enum control_error
control_check_octets(const char *line, size_t *len)
{
	size_t i, n = *len;
	int c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)line[i];
		if (c == '\0')
			return CONTROL_E_NUL;
		if (c == '\r' && i + 1 == n)
			break;
		if (c < 0x20 || c > 0x7e)
			return CONTROL_E_BYTE;
	}
	if (n > 0 && line[n - 1] == '\r')
		n--;
	*len = n;
	return n == 0 ? CONTROL_E_EMPTY : CONTROL_E_NONE;
}

/* The word starting at *pos (ended by SP or the end): its length, 0 if
 * empty.  *pos moves past the word and one SP after it. */
static size_t
control_word(const char *line, size_t len, size_t *pos, const char **w)
{
	size_t s = *pos, e = s;

	while (e < len && line[e] != ' ')
		e++;
	*w = line + s;
	*pos = e < len ? e + 1 : e;
	return e - s;
}

/* Splits on single spaces: a leading, trailing or doubled SP is a
 * syntax error. */
static enum control_error
control_check_spaces(const char *line, size_t len)
{
	size_t i;

	if (line[0] == ' ' || line[len - 1] == ' ')
		return CONTROL_E_SYNTAX;
	for (i = 1; i < len; i++)
		if (line[i] == ' ' && line[i - 1] == ' ')
			return CONTROL_E_SYNTAX;
	return CONTROL_E_NONE;
}

static enum control_error
control_parse_req(const char *line, size_t len, struct control_req *req)
{
	enum control_error err;
	const char *w;
	size_t pos = 0, n, words = 0, i;

	if ((err = control_check_octets(line, &len)) != CONTROL_E_NONE)
		return err;
	if ((err = control_check_spaces(line, len)) != CONTROL_E_NONE)
		return err;
	n = control_word(line, len, &pos, &w);
	if ((req->verb = control_verb_findn(w, n)) == CONTROL_NONE)
		return CONTROL_E_VERB;
	for (i = pos; i < len; i++)
		if (line[i] == ' ')
			words++;
	if (pos < len)
		words++;
	switch (req->verb) {
	case CONTROL_FLUSH:
		if (words > CONTROL_QIDS_MAX)
			return CONTROL_E_ARGS;
		break;
	case CONTROL_RELOAD:
		if (words != 0)
			return CONTROL_E_ARGS;
		break;
	default:
		if (words == 0 || words > CONTROL_QIDS_MAX)
			return CONTROL_E_ARGS;
		break;
	}
	while (pos < len) {
		n = control_word(line, len, &pos, &w);
		if (control_qid_check(w, n) == -1)
			return CONTROL_E_QID;
		memcpy(req->qid[req->nqid], w, n);
		req->qid[req->nqid][n] = '\0';
		req->nqid++;
	}
	return CONTROL_E_NONE;
}

/* A count of a "done" line. */
static int
control_count(const char *s, size_t n, unsigned long *out)
{
	unsigned long v = 0;
	size_t i;

	if (n == 0 || n > CONTROL_COUNT_DIGITS)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > CONTROL_COUNT_MAX)
		return -1;
	*out = v;
	return 0;
}

static enum control_error
control_text(const char *s, size_t n, char *out)
{
	if (n == 0 || n > CONTROL_TEXT_MAX)
		return CONTROL_E_TEXT;
	memcpy(out, s, n);
	out[n] = '\0';
	return CONTROL_E_NONE;
}

static enum control_error
control_parse_reply(const char *line, size_t len, struct control_reply *r)
{
	enum control_error err;
	const char *w;
	size_t pos = 0, n;

	/* Texts may hold any spaces: only the words before them are
	 * split. */
	if ((err = control_check_octets(line, &len)) != CONTROL_E_NONE)
		return err;
	if (line[0] == ' ')
		return CONTROL_E_SYNTAX;
	n = control_word(line, len, &pos, &w);
	if (n == 2 && memcmp(w, "ok", 2) == 0) {
		r->kind = CONTROL_R_OK;
		n = control_word(line, len, &pos, &w);
		if (pos < len || (n > 0 && w[n] == ' '))
			return CONTROL_E_ARGS;
		if (control_qid_check(w, n) == -1)
			return CONTROL_E_QID;
		memcpy(r->qid, w, n);
		return CONTROL_E_NONE;
	}
	if (n == 5 && memcmp(w, "error", 5) == 0) {
		r->kind = CONTROL_R_ERROR;
		n = control_word(line, len, &pos, &w);
		if (control_qid_check(w, n) == -1)
			return CONTROL_E_QID;
		memcpy(r->qid, w, n);
		return control_text(line + pos, len - pos, r->text);
	}
	if (n == 4 && memcmp(w, "done", 4) == 0) {
		r->kind = CONTROL_R_DONE;
		n = control_word(line, len, &pos, &w);
		if (control_count(w, n, &r->nok) == -1)
			return CONTROL_E_SYNTAX;
		n = control_word(line, len, &pos, &w);
		if (control_count(w, n, &r->nfail) == -1)
			return CONTROL_E_SYNTAX;
		/* "done 1 0 " (an SP, then nothing) is no text. */
		if (pos == len && line[len - 1] == ' ')
			return CONTROL_E_TEXT;
		if (pos == len)
			return CONTROL_E_NONE;
		return control_text(line + pos, len - pos, r->text);
	}
	if (n == 3 && memcmp(w, "bad", 3) == 0) {
		r->kind = CONTROL_R_BAD;
		if (pos == len && line[len - 1] != ' ')
			return CONTROL_E_TEXT;
		return control_text(line + pos, len - pos, r->text);
	}
	return CONTROL_E_VERB;
}

/* Takes the next complete line out of the input.  Returns 1 (*line,
 * *len set; valid until the next call), 0 (need more) or -1 (a line too
 * long: the rest of it will be skipped). */
static int
control_next_line(struct control_parser *p, const char **line, size_t *len)
{
	size_t i;
	int c;

	for (i = 0; i < p->in.len; i++) {
		c = (unsigned char)p->in.data[i];
		if (p->skipping) {
			if (c == '\n')
				p->skipping = 0;
			continue;
		}
		if (c != '\n') {
			if (p->len == CONTROL_LINE_MAX) {
				p->len = 0;
				p->skipping = 1;
				buf_consume(&p->in, i + 1);
				p->error = CONTROL_E_LINE_TOO_LONG;
				return -1;
			}
			p->line[p->len++] = (char)c;
			continue;
		}
		buf_consume(&p->in, i + 1);
		p->line[p->len] = '\0';
		*line = p->line;
		*len = p->len;
		p->len = 0;
		return 1;
	}
	buf_clear(&p->in);
	return 0;
}

int
control_next_req(struct control_parser *p, struct control_req *out)
{
	const char *line;
	size_t len;
	int r;

	if ((r = control_next_line(p, &line, &len)) != 1)
		return r;
	memset(out, 0, sizeof(*out));
	if ((p->error = control_parse_req(line, len, out)) != CONTROL_E_NONE) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 1;
}

int
control_next_reply(struct control_parser *p, struct control_reply *out)
{
	const char *line;
	size_t len;
	int r;

	if ((r = control_next_line(p, &line, &len)) != 1)
		return r;
	memset(out, 0, sizeof(*out));
	if ((p->error = control_parse_reply(line, len, out)) !=
	    CONTROL_E_NONE) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 1;
}

/* --- emitters ---------------------------------------------------------- */

/* Appends text escaped, at most CONTROL_TEXT_MAX octets, never cutting
 * an escape in two; "-" for none. */
static int
control_add_text(struct buf *out, const char *text)
{
	char esc[8];
	size_t n = 0, e;

	if (text == NULL || text[0] == '\0')
		return buf_addc(out, '-');
	for (; *text != '\0'; text++) {
		str_printable(esc, sizeof(esc), text, 1);
		e = strlen(esc);
		if (n + e > CONTROL_TEXT_MAX)
			break;
		if (buf_add(out, esc, e) == -1)
			return -1;
		n += e;
	}
	return 0;
}

/* Runs the appends of one line; on failure takes them back. */
static int
control_line_end(struct buf *out, size_t start, int rc)
{
	if (rc != 0 || buf_addc(out, '\n') == -1 ||
	    out->len - start > CONTROL_LINE_MAX + 1) {
		buf_truncate(out, start);
		return -1;
	}
	return 0;
}

int
control_req_format(
    struct buf *out, enum control_verb verb, const char *const *qids, size_t n)
{
	const char *name = control_verb_name(verb);
	size_t start = out->len, i;
	int rc = 0;

	if (name == NULL || n > CONTROL_QIDS_MAX ||
	    (verb == CONTROL_RELOAD && n > 0) ||
	    (verb != CONTROL_RELOAD && verb != CONTROL_FLUSH && n == 0))
		return -1;
	for (i = 0; i < n; i++)
		if (control_qid_check(qids[i], strlen(qids[i])) == -1)
			return -1;
	rc |= buf_adds(out, name);
	for (i = 0; i < n; i++) {
		rc |= buf_addc(out, ' ');
		rc |= buf_adds(out, qids[i]);
	}
	return control_line_end(out, start, rc);
}

int
control_reply_ok(struct buf *out, const char *qid)
{
	size_t start = out->len;

	if (qid == NULL || control_qid_check(qid, strlen(qid)) == -1)
		return -1;
	return control_line_end(out, start, buf_addf(out, "ok %s", qid));
}

int
control_reply_error(struct buf *out, const char *qid, const char *text)
{
	size_t start = out->len;
	int rc;

	if (qid == NULL || control_qid_check(qid, strlen(qid)) == -1)
		return -1;
	rc = buf_addf(out, "error %s ", qid);
	rc |= control_add_text(out, text);
	return control_line_end(out, start, rc);
}

int
control_reply_done(
    struct buf *out, unsigned long nok, unsigned long nfail, const char *text)
{
	size_t start = out->len;
	int rc;

	if (nok > CONTROL_COUNT_MAX || nfail > CONTROL_COUNT_MAX)
		return -1;
	rc = buf_addf(out, "done %lu %lu", nok, nfail);
	if (text != NULL && text[0] != '\0') {
		rc |= buf_addc(out, ' ');
		rc |= control_add_text(out, text);
	}
	return control_line_end(out, start, rc);
}

int
control_reply_bad(struct buf *out, const char *text)
{
	size_t start = out->len;
	int rc;

	rc = buf_adds(out, "bad ");
	rc |= control_add_text(out, text);
	return control_line_end(out, start, rc);
}
