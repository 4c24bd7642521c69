/*
 * hdrscan: which of Date:, Message-ID: and Subject: a message's header
 * has, looked at as the content arrives.  See hdrscan.h.
 */
#include <string.h>

#include "msgtrk/hdrscan.h"
#include "msgtrk/str.h"

enum {
	ST_LINE, /* at the start of a line */
	ST_LINE_CR, /* a CR at the start of a line */
	ST_NAME, /* a field name */
	ST_BLANKS, /* blanks between the name and ':' */
	ST_VALUE, /* a field's value, up to the line's end */
	ST_DONE, /* the header ended, or was cut */
};

enum { FIELD_OTHER, FIELD_SUBJECT };

void
hdrscan_init(struct hdrscan *h)
{
	memset(h, 0, sizeof(*h));
	h->state = ST_LINE;
}

/* RFC 5322 §3.6.8: ftext = %d33-57 / %d59-126. */
static int
ftext(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

static int
blank(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* The ':' after a field name: which field follows. */
static void
field_start(struct hdrscan *h)
{
	h->name[h->nlen < sizeof(h->name) ? h->nlen : 0] = '\0';
	h->field = FIELD_OTHER;
	if (h->nlen > HDRSCAN_NAME_MAX)
		; /* none of ours */
	else if (str_casecmp(h->name, "date") == 0)
		h->flags |= HDRSCAN_F_DATE;
	else if (str_casecmp(h->name, "message-id") == 0)
		h->flags |= HDRSCAN_F_MESSAGE_ID;
	else if (str_casecmp(h->name, "subject") == 0 &&
	    !(h->flags & HDRSCAN_F_SUBJECT)) {
		h->flags |= HDRSCAN_F_SUBJECT;
		h->field = FIELD_SUBJECT;
	}
	h->state = ST_VALUE;
}

/* One octet of the Subject's value. */
static void
subject_add(struct hdrscan *h, unsigned char c)
{
	if (blank(c)) {
		h->pending_sp = h->slen > 0;
		return;
	}
	/* The blank only with room for the octet after it (a Subject cut
	 * at HDRSCAN_SUBJECT_MAX never ends with a blank); without, the
	 * Subject is full: the blank stays pending, nothing more is added. */
	if (h->pending_sp) {
		if (h->slen + 1 >= HDRSCAN_SUBJECT_MAX)
			return;
		h->subject[h->slen++] = ' ';
		h->pending_sp = 0;
	}
	if (h->slen < HDRSCAN_SUBJECT_MAX)
		h->subject[h->slen++] = (c >= 32 && c < 127) ? (char)c : '?';
	h->subject[h->slen] = '\0';
}

static void
step(struct hdrscan *h, unsigned char c)
{
	switch (h->state) {
	case ST_LINE:
		if (c == '\r')
			h->state = ST_LINE_CR;
		else if (c == '\n')
			h->state = ST_DONE; /* the empty line (bare LF) */
		else if (blank(c)) {
			/* Folding: the field before goes on (RFC 5322
			 * §2.2.3); before any field it is not a header. */
			if (h->nlen == 0)
				h->state = ST_DONE;
			else {
				h->state = ST_VALUE;
				if (h->field == FIELD_SUBJECT)
					subject_add(h, ' ');
			}
		} else if (ftext(c)) {
			h->nlen = 1;
			h->name[0] = (char)c;
			h->field = FIELD_OTHER;
			h->state = ST_NAME;
		} else
			h->state = ST_DONE; /* not a field: the body */
		break;
	case ST_LINE_CR:
		/* CRLF: the empty line; anything else is not a field. */
		h->state = ST_DONE;
		break;
	case ST_NAME:
		if (c == ':')
			field_start(h);
		else if (ftext(c)) {
			if (h->nlen < sizeof(h->name))
				h->name[h->nlen] = (char)c;
			if (h->nlen <= HDRSCAN_NAME_MAX)
				h->nlen++;
		} else if (blank(c))
			h->state = ST_BLANKS;
		else
			h->state = ST_DONE;
		break;
	case ST_BLANKS:
		if (c == ':')
			field_start(h);
		else if (!blank(c))
			h->state = ST_DONE;
		break;
	case ST_VALUE:
		if (c == '\n')
			h->state = ST_LINE;
		else if (c != '\r' && h->field == FIELD_SUBJECT)
			subject_add(h, c);
		break;
	default:
		break;
	}
}

void
hdrscan_push(struct hdrscan *h, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && h->state != ST_DONE; i++) {
		if (h->seen == HDRSCAN_MAX) {
			h->flags |= HDRSCAN_F_CUT;
			h->state = ST_DONE;
			break;
		}
		h->seen++;
		step(h, (unsigned char)p[i]);
	}
}

int
hdrscan_done(const struct hdrscan *h)
{
	return h->state == ST_DONE;
}

unsigned int
hdrscan_end(struct hdrscan *h)
{
	h->state = ST_DONE;
	return h->flags;
}

const char *
hdrscan_subject(const struct hdrscan *h)
{
	return (h->flags & HDRSCAN_F_SUBJECT) ? h->subject : "";
}
