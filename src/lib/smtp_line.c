/*
 * smtp_line: incremental SMTP command-line and DATA reader (server side).
 * See include/msgtrk/smtp_line.h for the contract and the choices made.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/smtp_line.h"

/* Where the DATA reader is relative to the end-of-data indicator. */
enum smtp_data_state {
	DATA_BOL = 0, /* at the start of a line (after CRLF, or at start) */
	DATA_DOT, /* BOL "." seen */
	DATA_DOT_CR, /* BOL "." CR seen: LF ends the message */
	DATA_MID, /* inside a line */
	DATA_CR, /* inside a line, CR seen (already emitted) */
};

/* Where the content is relative to the RFC 5322 header section. */
enum smtp_hdr_state {
	HDR_BOL = 0, /* start of a line in the header section */
	HDR_BOL_CR, /* a line starting with CR: LF makes it the separator */
	HDR_NAME, /* inside a field name */
	HDR_VALUE, /* after the colon (or in a folded line) */
	HDR_BODY, /* past the header section */
};

struct smtp_line {
	struct buf in; /* pushed input; in.data[pos..] is unread */
	size_t pos;
	size_t limit; /* command line limit, CRLF included */
	size_t scan; /* octets of the current line already checked */
	int discard; /* dropping a bad line up to the next CRLF */
	int discard_cr; /* the last dropped octet was CR */
	int in_data;
	uint64_t max_size; /* DATA: store at most this much; 0: no limit */
	enum smtp_data_state ds;
	enum smtp_hdr_state hs;
	int prev_cr; /* the last content octet emitted was CR */
	size_t linelen; /* octets of the current content line so far */
	struct smtp_data_info info;
};

static const char *const smtp_line_error_names[SMTP_LINE_ERR_COUNT] = {
	[SMTP_LINE_OK] = "ok",
	[SMTP_LINE_ERR_TOO_LONG] = "too-long",
	[SMTP_LINE_ERR_BARE_LF] = "bare-lf",
	[SMTP_LINE_ERR_BARE_CR] = "bare-cr",
	[SMTP_LINE_ERR_STATE] = "state",
};

struct smtp_line *
smtp_line_new(size_t limit)
{
	struct smtp_line *r;

	if (limit == 0)
		limit = SMTP_LINE_LIMIT_DEFAULT;
	if (limit < SMTP_LINE_LIMIT_MIN || limit > SMTP_LINE_INPUT_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	buf_init(&r->in, SMTP_LINE_INPUT_MAX);
	r->limit = limit;
	return r;
}

void
smtp_line_free(struct smtp_line *r)
{
	if (r == NULL)
		return;
	buf_reset(&r->in);
	free(r);
}

void
smtp_line_clear(struct smtp_line *r)
{
	buf_clear(&r->in);
	r->pos = 0;
	r->scan = 0;
	r->discard = 0;
	r->discard_cr = 0;
	r->in_data = 0;
}

size_t
smtp_line_pending(const struct smtp_line *r)
{
	return r->in.len - r->pos;
}

size_t
smtp_line_room(const struct smtp_line *r)
{
	return SMTP_LINE_INPUT_MAX - smtp_line_pending(r);
}

int
smtp_line_push(struct smtp_line *r, const void *data, size_t n)
{
	if (n > smtp_line_room(r)) {
		errno = ENOSPC;
		return -1;
	}
	/* Compact only here, so a line handed out stays valid until the
	 * next push. */
	if (r->pos > 0) {
		buf_consume(&r->in, r->pos);
		r->pos = 0;
	}
	return buf_add(&r->in, data, n);
}

static int
smtp_line_fail(enum smtp_line_error *err_out, enum smtp_line_error err)
{
	if (err_out != NULL)
		*err_out = err;
	return -1;
}

/* Drops the current (bad) line: n octets now, the rest up to the next
 * CRLF in later calls, silently. */
static void
smtp_line_drop(struct smtp_line *r, size_t n)
{
	r->pos += n;
	r->scan = 0;
	r->discard = 1;
	r->discard_cr = 0;
}

int
smtp_line_next(struct smtp_line *r, const char **line_out, size_t *len_out,
    enum smtp_line_error *err_out)
{
	const char *p;
	size_t i, n;

	if (err_out != NULL)
		*err_out = SMTP_LINE_OK;
	if (r->in_data)
		return smtp_line_fail(err_out, SMTP_LINE_ERR_STATE);
	for (;;) {
		p = r->in.data + r->pos;
		n = r->in.len - r->pos;
		if (!r->discard)
			break;
		for (i = 0; i < n; i++) {
			if (p[i] == '\n' && r->discard_cr)
				break;
			r->discard_cr = p[i] == '\r';
		}
		if (i == n) {
			r->pos += n;
			return 0;
		}
		r->pos += i + 1;
		r->discard = 0;
		r->discard_cr = 0;
	}
	for (i = r->scan; i < n; i++) {
		char c = p[i];

		if (i > 0 && p[i - 1] == '\r') {
			if (c == '\n') {
				*line_out = p;
				*len_out = i - 1;
				r->pos += i + 1;
				r->scan = 0;
				return 1;
			}
			/* RFC 5321 §2.3.8: CR alone is no terminator and
			 * has no business in a command line.  The octet
			 * after it starts the discarded rest. */
			smtp_line_drop(r, i);
			return smtp_line_fail(err_out, SMTP_LINE_ERR_BARE_CR);
		}
		if (c == '\n') {
			/* RFC 5321 §2.3.8: "MUST NOT recognize ... any
			 * other character or character sequence as a line
			 * terminator": reported, never taken as an end. */
			smtp_line_drop(r, i + 1);
			return smtp_line_fail(err_out, SMTP_LINE_ERR_BARE_LF);
		}
		/* The limit counts the CRLF: a CR at offset i ends a line
		 * of i + 2 octets; any other octet makes it at least
		 * i + 3.  Checked before the line is complete, and the
		 * excess is never kept. */
		if (c == '\r' ? i + 2 > r->limit : i + 3 > r->limit) {
			smtp_line_drop(r, i);
			return smtp_line_fail(err_out, SMTP_LINE_ERR_TOO_LONG);
		}
	}
	r->scan = n;
	return 0;
}

enum smtp_cmd_error
smtp_line_cmd_error(enum smtp_line_error err)
{
	switch (err) {
	case SMTP_LINE_ERR_TOO_LONG:
		return SMTP_CMD_ERR_LINE_TOO_LONG;
	case SMTP_LINE_ERR_BARE_LF:
	case SMTP_LINE_ERR_BARE_CR:
		return SMTP_CMD_ERR_BAD_CHAR;
	default:
		return SMTP_CMD_OK;
	}
}

const char *
smtp_line_error_name(enum smtp_line_error err)
{
	if ((unsigned int)err >= SMTP_LINE_ERR_COUNT)
		return "unknown";
	return smtp_line_error_names[err];
}

int
smtp_line_data_begin(struct smtp_line *r, uint64_t max_size)
{
	if (r->in_data)
		return -1;
	r->in_data = 1;
	r->max_size = max_size;
	r->ds = DATA_BOL;
	r->hs = HDR_BOL;
	r->prev_cr = 0;
	r->linelen = 0;
	memset(&r->info, 0, sizeof(r->info));
	return 0;
}

/* RFC 5322 §3.6.8: ftext = %d33-57 / %d59-126 (printable but ":"). */
static int
smtp_line_ftext(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

/* Follows the header section, one content octet at a time. */
static void
smtp_line_header(struct smtp_line *r, unsigned char c)
{
	switch (r->hs) {
	case HDR_BOL:
		if (c == ' ' || c == '\t')
			/* A folded line continues a field; before any
			 * field it is body (RFC 5322 §2.2.3). */
			r->hs = r->info.header_lines > 0 ? HDR_VALUE : HDR_BODY;
		else if (c == '\r')
			r->hs = HDR_BOL_CR;
		else if (smtp_line_ftext(c))
			r->hs = HDR_NAME;
		else
			r->hs = HDR_BODY;
		break;
	case HDR_BOL_CR:
		if (c == '\n')
			r->info.header_end = 1;
		r->hs = HDR_BODY;
		break;
	case HDR_NAME:
		if (c == ':')
			r->hs = HDR_VALUE;
		else if (!smtp_line_ftext(c))
			r->hs = HDR_BODY;
		break;
	case HDR_VALUE:
		if (c == '\n' && r->prev_cr) {
			r->info.header_lines++;
			r->hs = HDR_BOL;
		}
		break;
	case HDR_BODY:
		break;
	}
}

/* The octets of p[0..n) before the first one the statistics look at one
 * by one: CR, LF, NUL or 8-bit.  Eight at a time: a word holds one of
 * them if some byte of it, or of it xor CR or LF repeated, is zero, or
 * has its high bit set; the exact position is then found byte by byte.
 * What the per-octet statistics do for any other octet is to count it
 * in the line's length, so a run of them is counted at once. */
static size_t
smtp_line_plain(const unsigned char *p, size_t n)
{
	const uint64_t ones = 0x0101010101010101ULL;
	const uint64_t highs = 0x8080808080808080ULL;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t x, cr, lf;

		memcpy(&x, p + i, sizeof(x));
		cr = x ^ (ones * '\r');
		lf = x ^ (ones * '\n');
		if (((x | ((x - ones) & ~x) | ((cr - ones) & ~cr) |
		         ((lf - ones) & ~lf)) &
		        highs) != 0)
			break;
	}
	for (; i < n; i++) {
		unsigned char c = p[i];

		if (c == '\r' || c == '\n' || c == '\0' || c >= 0x80)
			break;
	}
	return i;
}

/* The statistics of one content octet. */
static void
smtp_line_octet(struct smtp_line *r, unsigned char c)
{
	struct smtp_data_info *info = &r->info;

	if (r->prev_cr && c != '\n')
		info->flags |= SMTP_DATA_F_BARE_CR;
	if (c == '\n' && r->prev_cr) {
		info->lines++;
		if (r->linelen + 1 > SMTP_LINE_TEXT_MAX)
			info->flags |= SMTP_DATA_F_LONG_LINE;
		r->linelen = 0;
	} else {
		if (c == '\n')
			info->flags |= SMTP_DATA_F_BARE_LF;
		else if (c == '\0') {
			info->flags |= SMTP_DATA_F_NUL;
			info->nul++;
		} else if (c >= 0x80) {
			info->flags |= SMTP_DATA_F_8BIT;
			info->eightbit++;
		}
		/* Saturates well below SIZE_MAX: only the comparison with
		 * SMTP_LINE_TEXT_MAX matters. */
		if (r->linelen <= SMTP_LINE_TEXT_MAX)
			r->linelen++;
	}
	if (r->hs != HDR_BODY)
		smtp_line_header(r, c);
	r->prev_cr = c == '\r';
}

/* Appends n content octets (already unstuffed) to out, within the size
 * limit, and keeps the statistics.  Every flag is derived from the
 * content itself: a CRLF in the content is exactly a CRLF of the input.
 * Past the header section, runs of ordinary octets are counted at once
 * (smtp_line_plain): the result is that of smtp_line_octet() for each. */
static void
smtp_line_emit(struct smtp_line *r, struct buf *out, const char *p, size_t n)
{
	struct smtp_data_info *info = &r->info;
	const unsigned char *u = (const unsigned char *)p;
	uint64_t room;
	size_t i, k, take;

	/* RFC 1870 §6: past the limit the server keeps reading to the end
	 * of data and then answers 552; we store up to the limit.  A full
	 * out counts the same, so what is stored never depends on how the
	 * input was split. */
	take = n;
	if (info->flags & (SMTP_DATA_F_TOO_BIG | SMTP_DATA_F_STORE_FAILED))
		take = 0;
	if (r->max_size != 0 && take > 0) {
		room = info->size >= r->max_size ? 0 : r->max_size - info->size;
		if (take > room) {
			take = (size_t)room;
			info->flags |= SMTP_DATA_F_TOO_BIG;
		}
	}
	if (take > out->max - out->len) {
		take = out->max - out->len;
		info->flags |= SMTP_DATA_F_TOO_BIG;
	}
	if (take > 0 && buf_add(out, p, take) == -1)
		info->flags |= SMTP_DATA_F_STORE_FAILED;
	info->size += n;
	for (i = 0; i < n; i++) {
		if (r->hs == HDR_BODY &&
		    (k = smtp_line_plain(u + i, n - i)) > 0) {
			/* k ordinary octets: the first ends a CR as bare,
			 * each counts in the line. */
			if (r->prev_cr)
				info->flags |= SMTP_DATA_F_BARE_CR;
			r->prev_cr = 0;
			r->linelen = r->linelen + k > SMTP_LINE_TEXT_MAX + 1
			    ? SMTP_LINE_TEXT_MAX + 1
			    : r->linelen + k;
			if ((i += k) == n)
				break;
		}
		smtp_line_octet(r, u[i]);
	}
}

int
smtp_line_data(
    struct smtp_line *r, struct buf *out, enum smtp_line_error *err_out)
{
	const char *p, *cr, *q;
	size_t i, n, run;

	if (err_out != NULL)
		*err_out = SMTP_LINE_OK;
	if (!r->in_data)
		return smtp_line_fail(err_out, SMTP_LINE_ERR_STATE);
	p = r->in.data + r->pos;
	n = r->in.len - r->pos;
	i = 0;
	while (i < n) {
		char c = p[i];

		switch (r->ds) {
		case DATA_BOL:
			if (c == '.') {
				r->ds = DATA_DOT;
				i++;
			} else
				r->ds = DATA_MID;
			break;
		case DATA_DOT:
			if (c == '\r') {
				r->ds = DATA_DOT_CR;
				i++;
			} else
				/* RFC 5321 §4.5.2: "If the first character
				 * is a period and there are other characters
				 * on the line, the first character is
				 * deleted." */
				r->ds = DATA_MID;
			break;
		case DATA_DOT_CR:
			if (c == '\n') {
				/* CRLF "." CRLF: the end of mail data
				 * (RFC 5321 §4.1.1.4).  The octets after it
				 * stay for the command reader. */
				r->pos += i + 1;
				r->in_data = 0;
				r->scan = 0;
				r->discard = 0;
				return 1;
			}
			/* "." CR and not LF: an ordinary line whose dot
			 * is deleted; the CR is bare (flagged). */
			smtp_line_emit(r, out, "\r", 1);
			r->ds = DATA_MID;
			break;
		case DATA_CR:
			if (c == '\n') {
				smtp_line_emit(r, out, "\n", 1);
				r->ds = DATA_BOL;
				i++;
			} else
				r->ds = DATA_MID;
			break;
		case DATA_MID:
			/* Only CRLF can start a line: LF "." is content.  The
			 * lines that follow go in the same run, up to one
			 * that starts with "." (unstuffed, or the end) or
			 * the end of the input. */
			q = p + i;
			for (;;) {
				cr = memchr(q, '\r', (size_t)(p + n - q));
				if (cr == NULL || cr + 1 == p + n) {
					run = n - i;
					if (cr != NULL)
						r->ds = DATA_CR;
					break;
				}
				if (cr[1] != '\n') {
					/* A CR alone is content (flagged):
					 * look on from the octet after it. */
					q = cr + 1;
					continue;
				}
				if (cr + 2 == p + n || cr[2] == '.') {
					run = (size_t)(cr + 2 - (p + i));
					r->ds = DATA_BOL;
					break;
				}
				q = cr + 2;
			}
			smtp_line_emit(r, out, p + i, run);
			i += run;
			break;
		}
	}
	r->pos += n;
	return 0;
}

const struct smtp_data_info *
smtp_line_data_info(const struct smtp_line *r)
{
	return &r->info;
}
