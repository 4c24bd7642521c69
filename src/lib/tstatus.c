/*
 * tstatus: message/tracking-status (RFC 3886) generator and incremental
 * parser.  See msgtrk/tstatus.h; the field code shared with the DSN
 * generator is in report.c.
 *
 * The parser works in three layers, each fed by the one before:
 *   bytes  -> physical lines (CRLF or bare LF; limits, NUL, CR, 8-bit)
 *   lines  -> unfolded fields and block ends (RFC 5322 §2.2.3 folding)
 *   fields -> the report (classification, duplicates, values, rules)
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/str.h"
#include "msgtrk/tstatus.h"
#include "report.h"

enum parser_state {
	PS_OPEN, /* accepting input */
	PS_DONE, /* tstatus_parser_end() succeeded */
	PS_ERROR, /* failed; see err */
};

struct tstatus_parser {
	struct tstatus_limits lim;
	enum parser_state state;
	enum tstatus_error err;
	size_t lineno; /* lines completed so far */
	size_t field_line; /* set while a field is checked */
	size_t cur_field_line; /* last line of the field being read */
	size_t err_line; /* line of the error, 0 if none */
	size_t total; /* bytes pushed */
	int cr; /* the last byte was a CR */
	struct buf line; /* the physical line being read */
	struct buf field; /* the unfolded field being read */
	int have_field;

	size_t nblocks; /* blocks completed (0: in per-message) */
	int in_block; /* the current block has a field */
	unsigned seen; /* named fields of the current block */
	size_t nfields; /* fields in the current block */
	struct tstatus_rcpt cur; /* the recipient block being read */

	struct tstatus res;
	struct tstatus_rcpt *rcpt;
	size_t nrcpt, rcptcap;
	struct tstatus_ext *ext; /* all blocks' extensions, in order */
	size_t next, extcap;
	struct report_arena arena;
};

static const struct {
	enum report_err from;
	enum tstatus_error to;
} err_map[] = {
	{ REPORT_OK, TSTATUS_OK },
	{ REPORT_E_MISSING, TSTATUS_E_MISSING_FIELD },
	{ REPORT_E_BAD_VALUE, TSTATUS_E_BAD_VALUE },
	{ REPORT_E_BAD_TYPE, TSTATUS_E_BAD_TYPED_FIELD },
	{ REPORT_E_BAD_ACTION, TSTATUS_E_BAD_ACTION },
	{ REPORT_E_BAD_STATUS, TSTATUS_E_BAD_STATUS },
	{ REPORT_E_STATUS_ACTION, TSTATUS_E_STATUS_ACTION_MISMATCH },
	{ REPORT_E_NOT_ALLOWED, TSTATUS_E_FIELD_NOT_ALLOWED },
	{ REPORT_E_NEEDS_ATTEMPT, TSTATUS_E_MISSING_FIELD },
	{ REPORT_E_BAD_DATE, TSTATUS_E_BAD_DATE },
	{ REPORT_E_LINE_TOO_LONG, TSTATUS_E_LINE_TOO_LONG },
	{ REPORT_E_NOSPC, TSTATUS_E_TOO_BIG },
};

static enum tstatus_error
map_err(enum report_err e)
{
	size_t i;

	for (i = 0; i < sizeof(err_map) / sizeof(err_map[0]); i++)
		if (err_map[i].from == e)
			return err_map[i].to;
	return TSTATUS_E_SYNTAX;
}

const char *
tstatus_action_name(enum tstatus_action a)
{
	return report_action_name(a);
}

const char *
tstatus_strerror(enum tstatus_error e)
{
	static const char *const msg[] = {
		[TSTATUS_OK] = "no error",
		[TSTATUS_E_SYNTAX] = "syntax error",
		[TSTATUS_E_BAD_CHAR] = "NUL, bare CR or control character",
		[TSTATUS_E_NON_ASCII] = "octet above 127 in a 7bit body",
		[TSTATUS_E_MISSING_FIELD] = "required field missing",
		[TSTATUS_E_EMPTY_VALUE] = "required field is empty",
		[TSTATUS_E_DUPLICATE_FIELD] = "duplicate field",
		[TSTATUS_E_FIELD_IN_WRONG_BLOCK] = "field in the wrong block",
		[TSTATUS_E_NO_RECIPIENTS] = "no per-recipient block",
		[TSTATUS_E_BAD_TYPED_FIELD] = "malformed type; value field",
		[TSTATUS_E_BAD_ACTION] = "unknown action",
		[TSTATUS_E_BAD_STATUS] = "malformed status code",
		[TSTATUS_E_STATUS_ACTION_MISMATCH] = "status does not fit "
		                                     "the action",
		[TSTATUS_E_BAD_DATE] = "malformed date",
		[TSTATUS_E_FIELD_NOT_ALLOWED] = "field not allowed with "
		                                "this action",
		[TSTATUS_E_BAD_FIELD_NAME] = "malformed field name",
		[TSTATUS_E_BAD_VALUE] = "value not printable US-ASCII",
		[TSTATUS_E_LINE_TOO_LONG] = "line too long",
		[TSTATUS_E_FIELD_TOO_LONG] = "field too long",
		[TSTATUS_E_TOO_MANY_FIELDS] = "too many fields in a block",
		[TSTATUS_E_TOO_MANY_RECIPIENTS] = "too many recipients",
		[TSTATUS_E_TOO_BIG] = "report too big",
		[TSTATUS_E_NOMEM] = "out of memory",
	};

	if ((unsigned)e >= sizeof(msg) / sizeof(msg[0]) || msg[e] == NULL)
		return "unknown error";
	return msg[e];
}

/*
 * Parser.
 */

static size_t
lim_or(size_t v, size_t def)
{
	return v != 0 ? v : def;
}

struct tstatus_parser *
tstatus_parser_new(const struct tstatus_limits *lim)
{
	struct tstatus_parser *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	if (lim != NULL)
		p->lim = *lim;
	p->lim.line_max = lim_or(p->lim.line_max, TSTATUS_LINE_MAX);
	p->lim.field_max = lim_or(p->lim.field_max, TSTATUS_FIELD_MAX);
	p->lim.fields_max = lim_or(p->lim.fields_max, TSTATUS_BLOCK_FIELDS_MAX);
	p->lim.rcpt_max = lim_or(p->lim.rcpt_max, TSTATUS_RCPT_MAX);
	p->lim.size_max = lim_or(p->lim.size_max, TSTATUS_SIZE_MAX);
	buf_init(&p->line, p->lim.line_max);
	buf_init(&p->field, p->lim.field_max);
	report_arena_init(&p->arena);
	return p;
}

void
tstatus_parser_reset(struct tstatus_parser *p)
{
	struct tstatus_limits lim = p->lim;

	buf_reset(&p->line);
	buf_reset(&p->field);
	report_arena_reset(&p->arena);
	free(p->rcpt);
	free(p->ext);
	memset(p, 0, sizeof(*p));
	p->lim = lim;
	buf_init(&p->line, p->lim.line_max);
	buf_init(&p->field, p->lim.field_max);
	report_arena_init(&p->arena);
}

void
tstatus_parser_free(struct tstatus_parser *p)
{
	if (p == NULL)
		return;
	tstatus_parser_reset(p);
	free(p);
}

enum tstatus_error
tstatus_parser_error(const struct tstatus_parser *p)
{
	return p->err;
}

size_t
tstatus_parser_line(const struct tstatus_parser *p)
{
	return p->err_line;
}

static int
fail(struct tstatus_parser *p, enum tstatus_error e)
{
	p->state = PS_ERROR;
	p->err = e;
	/* A field is complete only when the next line starts; report it
	 * on its own last line. */
	p->err_line = p->field_line != 0 ? p->field_line : p->lineno + 1;
	return -1;
}

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Trims SPACE/HTAB at both ends of [*s, *s + *n). */
static void
trim(const char **s, size_t *n)
{
	while (*n > 0 && is_wsp(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && is_wsp((*s)[*n - 1]))
		(*n)--;
}

static const char *
dup(struct tstatus_parser *p, const char *s, size_t n)
{
	return report_arena_strndup(&p->arena, s, n);
}

/* CFWS atom CFWS, the whole of [s, s+n).  Sets the atom; returns 0/-1. */
static int
cfws_atom(const char *s, size_t n, const char **atom, size_t *alen)
{
	size_t i, k;

	if ((i = report_cfws(s, n)) == (size_t)-1)
		return -1;
	for (k = i; k < n && s[k] != '(' && !is_wsp(s[k]); k++)
		;
	if (!report_atom_check(s + i, k - i))
		return -1;
	*atom = s + i;
	*alen = k - i;
	if ((i = report_cfws(s + k, n - k)) == (size_t)-1 || k + i != n)
		return -1;
	return 0;
}

/* type ";" value, P-7/P-8: split at the first ";", strip comments from
 * the type, trim the value; neither may be empty. */
static int
parse_typed(struct tstatus_parser *p, const char *v, size_t n,
    struct tstatus_typed *out)
{
	const char *semi = memchr(v, ';', n), *type, *val;
	size_t tlen, vlen;

	if (semi == NULL ||
	    cfws_atom(v, (size_t)(semi - v), &type, &tlen) == -1)
		return fail(p, TSTATUS_E_BAD_TYPED_FIELD);
	val = semi + 1;
	vlen = n - (size_t)(val - v);
	trim(&val, &vlen);
	if (vlen == 0)
		return fail(p, TSTATUS_E_BAD_TYPED_FIELD);
	if ((out->type = dup(p, type, tlen)) == NULL ||
	    (out->value = dup(p, val, vlen)) == NULL)
		return fail(p, TSTATUS_E_NOMEM);
	return 0;
}

/* Status: [CFWS] status-code [CFWS]; a trailing comment is kept. */
static int
parse_status(struct tstatus_parser *p, const char *v, size_t n)
{
	size_t i, k, c;

	if ((i = report_cfws(v, n)) == (size_t)-1)
		return fail(p, TSTATUS_E_BAD_STATUS);
	/* RFC 3464 §2.3.4: "White-space characters and comments are NOT
	 * allowed within a status-code". */
	for (k = i; k < n && v[k] != '(' && !is_wsp(v[k]); k++)
		;
	if (k - i > REPORT_STATUS_MAX ||
	    report_status_check(v + i, k - i) == -1)
		return fail(p, TSTATUS_E_BAD_STATUS);
	if ((c = report_cfws(v + k, n - k)) == (size_t)-1 || k + c != n)
		return fail(p, TSTATUS_E_BAD_STATUS);
	if ((p->cur.status = dup(p, v + i, k - i)) == NULL)
		return fail(p, TSTATUS_E_NOMEM);
	while (k < n && is_wsp(v[k]))
		k++;
	if (k < n && (p->cur.status_comment = dup(p, v + k, n - k)) == NULL)
		return fail(p, TSTATUS_E_NOMEM);
	return 0;
}

static int
parse_date(struct tstatus_parser *p, const char *v, size_t n, struct date *out)
{
	if (date_parse(v, n, out) == -1)
		return fail(p, TSTATUS_E_BAD_DATE);
	return 0;
}

static int
add_ext(struct tstatus_parser *p, const char *name, size_t nlen, const char *v,
    size_t n)
{
	struct tstatus_ext *e;

	if (p->next == p->extcap) {
		size_t cap = p->extcap ? p->extcap * 2 : 8;

		if ((e = reallocarray(p->ext, cap, sizeof(*e))) == NULL)
			return fail(p, TSTATUS_E_NOMEM);
		p->ext = e;
		p->extcap = cap;
	}
	e = &p->ext[p->next];
	if ((e->name = dup(p, name, nlen)) == NULL ||
	    (e->value = dup(p, v, n)) == NULL)
		return fail(p, TSTATUS_E_NOMEM);
	p->next++;
	if (p->nblocks == 0)
		p->res.next++;
	else
		p->cur.next++;
	return 0;
}

/* One complete unfolded field in p->field. */
static int field_value(struct tstatus_parser *, const char *, size_t);

static int
field_end(struct tstatus_parser *p)
{
	const char *s = p->field.data;
	size_t len = p->field.len;
	int r;

	p->have_field = 0;
	p->field_line = p->cur_field_line;
	r = field_value(p, s, len);
	p->field_line = 0;
	return r;
}

static int
field_value(struct tstatus_parser *p, const char *s, size_t len)
{
	const char *v;
	size_t i, n;
	int f;

	/* RFC 5322 §3.6.8: field-name = 1*ftext (33-126 but ":"), then
	 * ":" at once; "Status 5.2.2" (RFC 3887 example 9) has none. */
	for (i = 0; i < len && s[i] != ':' && s[i] > 32 && s[i] < 127; i++)
		;
	if (i == len || s[i] != ':')
		return fail(p, TSTATUS_E_SYNTAX);
	/* RFC 3464 §2.4: extension-field-name = atom (so no "." either). */
	if (!report_atom_check(s, i))
		return fail(p, TSTATUS_E_BAD_FIELD_NAME);
	if (++p->nfields > p->lim.fields_max)
		return fail(p, TSTATUS_E_TOO_MANY_FIELDS);
	p->in_block = 1;
	v = s + i + 1;
	n = len - i - 1;
	trim(&v, &n);
	f = report_field_lookup(s, i);
	if (f == -1 || f >= REPORT_F_TSTATUS_COUNT)
		return add_ext(p, s, i, v, n);
	/* P-3: a field of the other kind of block means a missing or extra
	 * blank line. */
	if ((p->nblocks == 0) != (f < REPORT_F_PER_MESSAGE_COUNT))
		return fail(p, TSTATUS_E_FIELD_IN_WRONG_BLOCK);
	/* RFC 3886 §3.2: per-message fields "may appear at most once";
	 * per-recipient fields have one slot each in the grammar. */
	if (p->seen & (1u << f))
		return fail(p, TSTATUS_E_DUPLICATE_FIELD);
	p->seen |= 1u << f;
	if (n == 0)
		return fail(p, TSTATUS_E_EMPTY_VALUE);
	switch ((enum report_field)f) {
	case REPORT_F_ENVID:
		/* RFC 3464 §2.2.1: kept exactly, case and spelling. */
		if ((p->res.envid = dup(p, v, n)) == NULL)
			return fail(p, TSTATUS_E_NOMEM);
		return 0;
	case REPORT_F_REPORTING_MTA:
		return parse_typed(p, v, n, &p->res.reporting_mta);
	case REPORT_F_ARRIVAL:
		return parse_date(p, v, n, &p->res.arrival);
	case REPORT_F_ORIG_RCPT:
		return parse_typed(p, v, n, &p->cur.orig_rcpt);
	case REPORT_F_FINAL_RCPT:
		return parse_typed(p, v, n, &p->cur.final_rcpt);
	case REPORT_F_ACTION: {
		const char *a;
		size_t alen;

		if (cfws_atom(v, n, &a, &alen) == -1 ||
		    (p->cur.action = report_action_lookup(a, alen)) ==
		        TSTATUS_ACTION_NONE)
			return fail(p, TSTATUS_E_BAD_ACTION);
		return 0;
	}
	case REPORT_F_STATUS:
		return parse_status(p, v, n);
	case REPORT_F_REMOTE_MTA:
		return parse_typed(p, v, n, &p->cur.remote_mta);
	case REPORT_F_LAST_ATTEMPT:
		p->cur.has_last_attempt = 1;
		return parse_date(p, v, n, &p->cur.last_attempt);
	case REPORT_F_WILL_RETRY:
		p->cur.has_will_retry = 1;
		return parse_date(p, v, n, &p->cur.will_retry);
	default:
		return fail(p, TSTATUS_E_SYNTAX);
	}
}

static int
has(const struct tstatus_parser *p, enum report_field f)
{
	return (p->seen & (1u << f)) != 0;
}

/* An empty line or the end of the body closes the current block. */
static int
block_end(struct tstatus_parser *p)
{
	struct tstatus_rcpt *r;

	if (p->have_field && field_end(p) == -1)
		return -1;
	if (!p->in_block)
		return 0;
	if (p->nblocks == 0) {
		/* RFC 3886 §3.2.1-§3.2.3: all three are REQUIRED. */
		if (!has(p, REPORT_F_ENVID) ||
		    !has(p, REPORT_F_REPORTING_MTA) ||
		    !has(p, REPORT_F_ARRIVAL))
			return fail(p, TSTATUS_E_MISSING_FIELD);
	} else {
		/* RFC 3886 §3.3.1-§3.3.4: REQUIRED in every block. */
		if (!has(p, REPORT_F_ORIG_RCPT) ||
		    !has(p, REPORT_F_FINAL_RCPT) || !has(p, REPORT_F_ACTION) ||
		    !has(p, REPORT_F_STATUS))
			return fail(p, TSTATUS_E_MISSING_FIELD);
		/* P-10: 2.1.9 => relayed; no Remote-MTA or Will-Retry-Until
		 * with opaque; Will-Retry-Until only with delayed;
		 * Remote-MTA => Last-Attempt-Date.  The class/action fit and
		 * the attempt rules that need knowledge of the MTA are the
		 * generator's (the parser cannot know whether an attempt was
		 * made). */
		if (strcmp(p->cur.status, "2.1.9") == 0 &&
		    p->cur.action != TSTATUS_ACTION_RELAYED)
			return fail(p, TSTATUS_E_STATUS_ACTION_MISMATCH);
		if ((p->cur.action == TSTATUS_ACTION_OPAQUE &&
		        has(p, REPORT_F_REMOTE_MTA)) ||
		    (p->cur.has_will_retry &&
		        p->cur.action != TSTATUS_ACTION_DELAYED))
			return fail(p, TSTATUS_E_FIELD_NOT_ALLOWED);
		if (has(p, REPORT_F_REMOTE_MTA) && !p->cur.has_last_attempt)
			return fail(p, TSTATUS_E_MISSING_FIELD);
		if (p->nrcpt >= p->lim.rcpt_max)
			return fail(p, TSTATUS_E_TOO_MANY_RECIPIENTS);
		if (p->nrcpt == p->rcptcap) {
			size_t cap = p->rcptcap ? p->rcptcap * 2 : 4;

			if ((r = reallocarray(p->rcpt, cap, sizeof(*r))) ==
			    NULL)
				return fail(p, TSTATUS_E_NOMEM);
			p->rcpt = r;
			p->rcptcap = cap;
		}
		p->rcpt[p->nrcpt++] = p->cur;
	}
	memset(&p->cur, 0, sizeof(p->cur));
	p->nblocks++;
	p->in_block = 0;
	p->seen = 0;
	p->nfields = 0;
	return 0;
}

/* One physical line, without its line end, in p->line. */
static int
line_end(struct tstatus_parser *p)
{
	const char *s = p->line.data;
	size_t n = p->line.len;

	if (n == 0) {
		/* P-4: one or more empty lines separate blocks. */
		if (block_end(p) == -1)
			return -1;
	} else if (is_wsp(s[0])) {
		/* P-4: a continuation needs a field to continue; unfolding
		 * drops the CRLF and keeps the white space. */
		if (!p->have_field)
			return fail(p, TSTATUS_E_SYNTAX);
		if (buf_add(&p->field, s, n) == -1)
			return fail(p,
			    errno == ENOSPC ? TSTATUS_E_FIELD_TOO_LONG
			                    : TSTATUS_E_NOMEM);
		p->cur_field_line = p->lineno + 1;
	} else {
		if (p->have_field && field_end(p) == -1)
			return -1;
		buf_clear(&p->field);
		if (buf_add(&p->field, s, n) == -1)
			return fail(p,
			    errno == ENOSPC ? TSTATUS_E_FIELD_TOO_LONG
			                    : TSTATUS_E_NOMEM);
		p->have_field = 1;
		p->cur_field_line = p->lineno + 1;
	}
	buf_clear(&p->line);
	p->lineno++;
	return 0;
}

int
tstatus_parser_push(struct tstatus_parser *p, const void *data, size_t len)
{
	const unsigned char *s = data;
	size_t i, n;

	if (p->state == PS_ERROR)
		return -1;
	if (p->state == PS_DONE)
		return fail(p, TSTATUS_E_SYNTAX);
	/* Take what fits, so that the error is the same however the input
	 * is split. */
	n = len;
	if (n > p->lim.size_max - p->total)
		n = p->lim.size_max - p->total;
	p->total += n;
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (p->cr) {
			/* P-5: a CR must start a CRLF. */
			if (c != '\n')
				return fail(p, TSTATUS_E_BAD_CHAR);
			p->cr = 0;
			if (line_end(p) == -1)
				return -1;
			continue;
		}
		if (c == '\r') {
			p->cr = 1;
			continue;
		}
		if (c == '\n') {
			/* P-5: a bare LF also ends a line. */
			if (line_end(p) == -1)
				return -1;
			continue;
		}
		/* RFC 2045 §2.7 (7bit): no NUL, no octet above 127.  Other
		 * controls but HTAB are not text we can write back. */
		if (c > 127)
			return fail(p, TSTATUS_E_NON_ASCII);
		if ((c < 32 && c != '\t') || c == 127)
			return fail(p, TSTATUS_E_BAD_CHAR);
		if (buf_addc(&p->line, c) == -1)
			return fail(p,
			    errno == ENOSPC ? TSTATUS_E_LINE_TOO_LONG
			                    : TSTATUS_E_NOMEM);
	}
	if (n < len)
		return fail(p, TSTATUS_E_TOO_BIG);
	return 0;
}

int
tstatus_parser_end(struct tstatus_parser *p, const struct tstatus **out)
{
	size_t i, off;

	if (p->state == PS_ERROR)
		return -1;
	if (p->state == PS_DONE)
		return fail(p, TSTATUS_E_SYNTAX);
	if (p->cr)
		return fail(p, TSTATUS_E_BAD_CHAR);
	if (p->line.len > 0 && line_end(p) == -1)
		return -1;
	if (block_end(p) == -1)
		return -1;
	if (p->nblocks == 0)
		return fail(p, TSTATUS_E_MISSING_FIELD);
	if (p->nrcpt == 0)
		return fail(p, TSTATUS_E_NO_RECIPIENTS);
	/* Extensions are stored in block order: the per-message ones, then
	 * each recipient's. */
	p->res.ext = p->res.next > 0 ? p->ext : NULL;
	off = p->res.next;
	for (i = 0; i < p->nrcpt; i++) {
		p->rcpt[i].ext = p->rcpt[i].next > 0 ? p->ext + off : NULL;
		off += p->rcpt[i].next;
	}
	p->res.rcpt = p->rcpt;
	p->res.nrcpt = p->nrcpt;
	p->state = PS_DONE;
	*out = &p->res;
	return 1;
}

/*
 * Generator.
 */

static enum report_err
check_exts(const struct tstatus_ext *ext, size_t n, enum tstatus_error *err)
{
	size_t i;
	enum report_err e;

	if (n > 0 && ext == NULL)
		return REPORT_E_MISSING;
	for (i = 0; i < n; i++) {
		/* G-4: an atom, and not a name of RFC 3886 (RFC 3464 §2.4:
		 * extension-field-name = atom). */
		if (ext[i].name == NULL ||
		    !report_atom_check(ext[i].name, strlen(ext[i].name)) ||
		    (unsigned)report_field_lookup(ext[i].name,
		        strlen(ext[i].name)) < REPORT_F_TSTATUS_COUNT) {
			*err = TSTATUS_E_BAD_FIELD_NAME;
			return REPORT_E_BAD_VALUE;
		}
		if ((e = report_text_check(ext[i].value, 1)) != REPORT_OK)
			return e == REPORT_E_MISSING ? REPORT_E_BAD_VALUE : e;
	}
	return REPORT_OK;
}

static enum report_err
check_rcpt(const struct tstatus_rcpt *r, enum tstatus_error *err)
{
	enum report_err e;

	if ((e = report_typed_check(r->orig_rcpt.type, r->orig_rcpt.value)) !=
	        REPORT_OK ||
	    (e = report_typed_check(r->final_rcpt.type, r->final_rcpt.value)) !=
	        REPORT_OK)
		return e;
	if (r->remote_mta.type != NULL &&
	    (e = report_typed_check(r->remote_mta.type, r->remote_mta.value)) !=
	        REPORT_OK)
		return e;
	if ((e = report_rcpt_check(r->action, r->status,
	         r->remote_mta.type != NULL, r->has_last_attempt,
	         r->has_will_retry, 1)) != REPORT_OK ||
	    (e = report_comment_check(r->status_comment)) != REPORT_OK)
		return e;
	return check_exts(r->ext, r->next, err);
}

static enum report_err
check_report(const struct tstatus *t, enum tstatus_error *err)
{
	enum report_err e;
	size_t i;

	if ((e = report_text_check(t->envid, 0)) != REPORT_OK ||
	    (e = report_typed_check(
	         t->reporting_mta.type, t->reporting_mta.value)) != REPORT_OK ||
	    (e = check_exts(t->ext, t->next, err)) != REPORT_OK)
		return e;
	if (t->nrcpt == 0 || t->rcpt == NULL) {
		*err = TSTATUS_E_NO_RECIPIENTS;
		return REPORT_E_MISSING;
	}
	if (t->nrcpt > TSTATUS_RCPT_MAX) {
		*err = TSTATUS_E_TOO_MANY_RECIPIENTS;
		return REPORT_E_MISSING;
	}
	for (i = 0; i < t->nrcpt; i++)
		if ((e = check_rcpt(&t->rcpt[i], err)) != REPORT_OK)
			return e;
	return REPORT_OK;
}

static enum report_err
put_exts(struct buf *b, const struct tstatus_ext *ext, size_t n)
{
	enum report_err e = REPORT_OK;
	size_t i;

	for (i = 0; i < n && e == REPORT_OK; i++)
		e = report_put_ext(b, ext[i].name, ext[i].value);
	return e;
}

static enum report_err
put_rcpt(struct buf *b, const struct tstatus_rcpt *r)
{
	enum report_err e;

	/* G-1: the order of RFC 3886 §3.3's per-recipient-fields. */
	if ((e = report_put_typed(b, REPORT_F_ORIG_RCPT, r->orig_rcpt.type,
	         r->orig_rcpt.value)) != REPORT_OK ||
	    (e = report_put_typed(b, REPORT_F_FINAL_RCPT, r->final_rcpt.type,
	         r->final_rcpt.value)) != REPORT_OK ||
	    (e = report_put_action(b, r->action)) != REPORT_OK ||
	    (e = report_put_status(b, r->status, r->status_comment)) !=
	        REPORT_OK)
		return e;
	if (r->remote_mta.type != NULL &&
	    (e = report_put_typed(b, REPORT_F_REMOTE_MTA, r->remote_mta.type,
	         r->remote_mta.value)) != REPORT_OK)
		return e;
	if (r->has_last_attempt &&
	    (e = report_put_date(b, REPORT_F_LAST_ATTEMPT, &r->last_attempt)) !=
	        REPORT_OK)
		return e;
	if (r->has_will_retry &&
	    (e = report_put_date(b, REPORT_F_WILL_RETRY, &r->will_retry)) !=
	        REPORT_OK)
		return e;
	return put_exts(b, r->ext, r->next);
}

int
tstatus_generate(
    const struct tstatus *t, struct buf *out, enum tstatus_error *err_out)
{
	enum tstatus_error err = TSTATUS_OK;
	enum report_err e;
	size_t start = out->len, i;

	if ((e = check_report(t, &err)) != REPORT_OK)
		goto fail;
	/* G-1: the order of RFC 3886 §3.2's per-message-fields. */
	if ((e = report_put_text(out, REPORT_F_ENVID, t->envid)) != REPORT_OK ||
	    (e = report_put_typed(out, REPORT_F_REPORTING_MTA,
	         t->reporting_mta.type, t->reporting_mta.value)) != REPORT_OK ||
	    (e = report_put_date(out, REPORT_F_ARRIVAL, &t->arrival)) !=
	        REPORT_OK ||
	    (e = put_exts(out, t->ext, t->next)) != REPORT_OK)
		goto fail;
	/* RFC 3886 §3.1: each per-recipient block is preceded by CRLF. */
	for (i = 0; i < t->nrcpt; i++) {
		if (buf_add(out, "\r\n", 2) == -1) {
			e = REPORT_E_NOSPC;
			goto fail;
		}
		if ((e = put_rcpt(out, &t->rcpt[i])) != REPORT_OK)
			goto fail;
	}
	if (err_out != NULL)
		*err_out = TSTATUS_OK;
	return 0;
fail:
	buf_truncate(out, start);
	if (err == TSTATUS_OK)
		err = map_err(e);
	if (err_out != NULL)
		*err_out = err;
	return -1;
}
