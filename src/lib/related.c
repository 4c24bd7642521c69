/*
 * related: multipart/related wrapper of TRACK answers (RFC 2387, RFC 2046
 * §5.1, RFC 3887 §4 with erratum 3721).  See msgtrk/related.h.
 */
#include <errno.h>
#include <string.h>

#include "msgtrk/buf.h"
#include "msgtrk/mime.h"
#include "msgtrk/related.h"
#include "msgtrk/str.h"

#define RELATED_PART_TYPE "message/tracking-status"
/* Our bound on a parameter value (the boundary needs at most 70). */
#define RELATED_PARAM_MAX 256
/* Attempts at a fresh boundary that occurs in no body. */
#define RELATED_BOUNDARY_TRIES 4

const char *
related_strerror(enum related_error err)
{
	switch (err) {
	case RELATED_E_NONE:
		return "no error";
	case RELATED_E_NUL:
		return "NUL octet in entity";
	case RELATED_E_HEADER:
		return "malformed header";
	case RELATED_E_HEADER_TOO_LONG:
		return "header section too long";
	case RELATED_E_NO_CTYPE:
		return "no Content-Type";
	case RELATED_E_CTYPE:
		return "malformed or duplicate Content-Type";
	case RELATED_E_NOT_RELATED:
		return "not multipart/related";
	case RELATED_E_BOUNDARY:
		return "missing or invalid boundary";
	case RELATED_E_TYPE:
		return "type parameter is not message/tracking-status";
	case RELATED_E_NO_PARTS:
		return "no body parts";
	case RELATED_E_NO_CLOSE:
		return "missing close delimiter";
	case RELATED_E_TOO_MANY_PARTS:
		return "too many body parts";
	case RELATED_E_PART_TOO_LARGE:
		return "body part too large";
	case RELATED_E_PART_TYPE:
		return "body part is not message/tracking-status";
	case RELATED_E_PART_ENCODING:
		return "body part encoding is not 7bit";
	case RELATED_E_BODY:
		return "body is not 7bit CRLF text";
	case RELATED_E_COLLISION:
		return "boundary occurs in a body";
	case RELATED_E_ARG:
		return "invalid argument";
	case RELATED_E_NOSPACE:
		return "output too large";
	}
	return "unknown error";
}

/*
 * Header fields (RFC 5322 §2.2 syntax, as RFC 2045 uses it)
 */

static int
related_wsp(int c)
{
	return c == ' ' || c == '\t';
}

/* Finds name in the header section h (n octets; the last line may lack
 * its CRLF).  Returns 1 (found once), 0 (absent), -1 (malformed), -2
 * (more than once). */
static int
related_field(const char *h, size_t n, const char *name, const char **v_out,
    size_t *vlen_out)
{
	size_t i = 0, nl = strlen(name), k, ve;
	const char *eol;
	int found = 0;

	while (i < n) {
		/* A field starts with 1*ftext ":" (%d33-57 / %d59-126). */
		for (k = i; k < n && h[k] != ':'; k++)
			if ((unsigned char)h[k] < 33 ||
			    (unsigned char)h[k] > 126)
				return -1;
		if (k == i || k == n)
			return -1;
		/* The value runs to a CRLF not followed by WSP. */
		ve = k + 1;
		for (;;) {
			eol = memchr(h + ve, '\n', n - ve);
			if (eol == NULL) {
				ve = n;
				break;
			}
			if (eol == h + ve || eol[-1] != '\r')
				return -1; /* bare LF */
			ve = (size_t)(eol - h) + 1;
			if (ve == n || !related_wsp((unsigned char)h[ve]))
				break;
		}
		if (k - i == nl && str_ncasecmp(h + i, name, nl) == 0) {
			if (found)
				return -2;
			found = 1;
			k++;
			while (k < ve && related_wsp((unsigned char)h[k]))
				k++;
			*v_out = h + k;
			*vlen_out = ve - k;
		}
		i = ve;
	}
	/* Drop the CRLF that ends the found value. */
	if (found && *vlen_out >= 2 && (*v_out)[*vlen_out - 1] == '\n')
		*vlen_out -= 2;
	return found;
}

int
related_header_get(const char *header, size_t header_len, const char *name,
    const char **value_out, size_t *len_out)
{
	int r = related_field(header, header_len, name, value_out, len_out);

	return r < 0 ? -1 : r;
}

/*
 * Content-Type values (RFC 2045 §5.1)
 */

struct related_ctype {
	char type[RELATED_PARAM_MAX];
	char boundary[RELATED_PARAM_MAX];
	char rtype[RELATED_PARAM_MAX];
	int has_boundary, has_type;
};

/* Skips CFWS: white space, folding CRLFs and (nested) comments. */
static int
related_cfws(const char *s, size_t n, size_t *ip)
{
	size_t i = *ip;
	int depth = 0;

	while (i < n) {
		if (depth > 0 && s[i] == '\\' && i + 1 < n)
			i += 2;
		else if (s[i] == '(') {
			depth++;
			i++;
		} else if (depth > 0 && s[i] == ')') {
			depth--;
			i++;
		} else if (depth > 0 || related_wsp((unsigned char)s[i]) ||
		    s[i] == '\r' || s[i] == '\n')
			i++;
		else
			break;
	}
	*ip = i;
	return depth == 0 ? 0 : -1;
}

static int
related_tchar(int c)
{
	/* token: CHAR except SPACE, CTLs and tspecials */
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* Reads a token or (if quoted) a quoted-string into dst, unfolded and
 * unquoted.  Returns 0 or -1. */
static int
related_value(const char *s, size_t n, size_t *ip, char *dst, int quoted_ok)
{
	size_t i = *ip, o = 0;

	if (i < n && s[i] == '"' && quoted_ok) {
		for (i++; i < n && s[i] != '"'; i++) {
			if (s[i] == '\r' && i + 2 < n && s[i + 1] == '\n' &&
			    related_wsp((unsigned char)s[i + 2])) {
				i++; /* unfold: drop the CRLF */
				continue;
			}
			if (s[i] == '\\' && i + 1 < n)
				i++;
			if (s[i] == '\r' || s[i] == '\n' ||
			    o + 1 >= RELATED_PARAM_MAX)
				return -1;
			dst[o++] = s[i];
		}
		if (i == n)
			return -1;
		i++;
	} else {
		for (; i < n && related_tchar((unsigned char)s[i]); i++) {
			if (o + 1 >= RELATED_PARAM_MAX)
				return -1;
			dst[o++] = s[i];
		}
		if (o == 0)
			return -1;
	}
	dst[o] = '\0';
	*ip = i;
	return 0;
}

/* Parses type "/" subtype *(";" attribute "=" value); only boundary and
 * type are kept.  Returns RELATED_E_NONE or the error. */
static enum related_error
related_ctype_parse(const char *s, size_t n, struct related_ctype *ct)
{
	char sub[RELATED_PARAM_MAX], attr[RELATED_PARAM_MAX];
	char val[RELATED_PARAM_MAX];
	size_t i = 0, tl;

	memset(ct, 0, sizeof(*ct));
	if (related_cfws(s, n, &i) == -1 ||
	    related_value(s, n, &i, ct->type, 0) == -1 ||
	    related_cfws(s, n, &i) == -1 || i == n || s[i++] != '/' ||
	    related_cfws(s, n, &i) == -1 ||
	    related_value(s, n, &i, sub, 0) == -1)
		return RELATED_E_CTYPE;
	tl = strlen(ct->type);
	if (tl + 1 + strlen(sub) >= sizeof(ct->type))
		return RELATED_E_CTYPE;
	ct->type[tl] = '/';
	memcpy(ct->type + tl + 1, sub, strlen(sub) + 1);
	for (;;) {
		if (related_cfws(s, n, &i) == -1)
			return RELATED_E_CTYPE;
		if (i == n)
			break;
		if (s[i++] != ';' || related_cfws(s, n, &i) == -1)
			return RELATED_E_CTYPE;
		if (i == n)
			break; /* a trailing ";" is harmless */
		if (related_value(s, n, &i, attr, 0) == -1 ||
		    related_cfws(s, n, &i) == -1 || i == n || s[i++] != '=' ||
		    related_cfws(s, n, &i) == -1 ||
		    related_value(s, n, &i, val, 1) == -1)
			return RELATED_E_CTYPE;
		/* RFC 2045 §5.1: attribute names are case-insensitive;
		 * each may appear once. */
		if (str_casecmp(attr, "boundary") == 0) {
			if (ct->has_boundary)
				return RELATED_E_CTYPE;
			ct->has_boundary = 1;
			memcpy(ct->boundary, val, sizeof(val));
		} else if (str_casecmp(attr, "type") == 0) {
			if (ct->has_type)
				return RELATED_E_CTYPE;
			ct->has_type = 1;
			memcpy(ct->rtype, val, sizeof(val));
		}
	}
	return RELATED_E_NONE;
}

/* Checks one part's header section. */
static enum related_error
related_part_check(const struct related_part *p)
{
	struct related_ctype ct;
	const char *v;
	size_t vl, i = 0;
	enum related_error e;
	int r;

	if (p->header_len > RELATED_HEADER_MAX)
		return RELATED_E_HEADER_TOO_LONG;
	/* RFC 2046 §5.1.1: no Content-Type means text/plain, which is
	 * not allowed here (RFC 3886 §3: "each subpart MUST be of type
	 * message/tracking-status"). */
	r = related_field(p->header, p->header_len, "Content-Type", &v, &vl);
	if (r == -1)
		return RELATED_E_HEADER;
	if (r == 0)
		return RELATED_E_PART_TYPE;
	if (r == -2)
		return RELATED_E_CTYPE;
	if ((e = related_ctype_parse(v, vl, &ct)) != RELATED_E_NONE)
		return e;
	if (str_casecmp(ct.type, RELATED_PART_TYPE) != 0)
		return RELATED_E_PART_TYPE;
	/* RFC 3886 §3.1: 7bit "MUST be used". */
	r = related_field(
	    p->header, p->header_len, "Content-Transfer-Encoding", &v, &vl);
	if (r < 0)
		return RELATED_E_PART_ENCODING;
	if (r == 1) {
		if (related_cfws(v, vl, &i) == -1 || vl - i < 4 ||
		    str_ncasecmp(v + i, "7bit", 4) != 0)
			return RELATED_E_PART_ENCODING;
		i += 4;
		if (related_cfws(v, vl, &i) == -1 || i != vl)
			return RELATED_E_PART_ENCODING;
	}
	return RELATED_E_NONE;
}

/* Splits one part's content into header section and body. */
static void
related_part_cut(const char *s, size_t n, struct related_part *p)
{
	size_t i;

	p->header = s;
	if (n >= 2 && s[0] == '\r' && s[1] == '\n') {
		p->header_len = 0;
		p->body = s + 2;
		p->body_len = n - 2;
		return;
	}
	for (i = 0; i + 4 <= n; i++)
		if (memcmp(s + i, "\r\n\r\n", 4) == 0) {
			p->header_len = i + 2;
			p->body = s + i + 4;
			p->body_len = n - i - 4;
			return;
		}
	/* body-part := MIME-part-headers [CRLF *OCTET]: headers only. */
	p->header_len = n;
	p->body = s + n;
	p->body_len = 0;
}

/* At line start i: 0 no delimiter, 1 delimiter, 2 close delimiter; *next
 * is set past the line's CRLF (or to n). */
static int
related_delim(
    const char *s, size_t n, size_t i, const char *bd, size_t bl, size_t *next)
{
	int kind = 1;

	if (n - i < bl + 2 || s[i] != '-' || s[i + 1] != '-' ||
	    memcmp(s + i + 2, bd, bl) != 0)
		return 0;
	i += bl + 2;
	if (n - i >= 2 && s[i] == '-' && s[i + 1] == '-') {
		kind = 2;
		i += 2;
	}
	/* transport-padding := *LWSP-char, then CRLF */
	while (i < n && related_wsp((unsigned char)s[i]))
		i++;
	if (i == n && kind == 2) {
		*next = n;
		return kind;
	}
	if (n - i < 2 || s[i] != '\r' || s[i + 1] != '\n')
		return 0;
	*next = i + 2;
	return kind;
}

int
related_split(const char *ctype, size_t ctype_len, const char *body, size_t len,
    struct related_part *parts, size_t nmax, size_t *n_out,
    enum related_error *err_out)
{
	struct related_ctype ct;
	const char *eol;
	size_t bl, i = 0, next = 0, start = 0, end, np = 0;
	int kind, inpart = 0, seen = 0, closed = 0;
	enum related_error e;

	*n_out = 0;
	*err_out = RELATED_E_NONE;
	if (nmax > RELATED_PARTS_MAX)
		nmax = RELATED_PARTS_MAX;
	if (memchr(ctype, '\0', ctype_len) != NULL ||
	    memchr(body, '\0', len) != NULL) {
		*err_out = RELATED_E_NUL;
		return -1;
	}
	if ((e = related_ctype_parse(ctype, ctype_len, &ct)) != RELATED_E_NONE)
		goto fail;
	if (str_casecmp(ct.type, "multipart/related") != 0) {
		e = RELATED_E_NOT_RELATED;
		goto fail;
	}
	bl = strlen(ct.boundary);
	if (!ct.has_boundary || bl == 0 || bl > RELATED_BOUNDARY_MAX) {
		e = RELATED_E_BOUNDARY;
		goto fail;
	}
	/* RFC 2387 §3.1: type is required, the root's media type; P-11
	 * also takes the "tracking-status" of the uncorrected examples. */
	if (!ct.has_type ||
	    (str_casecmp(ct.rtype, RELATED_PART_TYPE) != 0 &&
	        str_casecmp(ct.rtype, "tracking-status") != 0)) {
		e = RELATED_E_TYPE;
		goto fail;
	}
	while (i < len) {
		kind = related_delim(body, len, i, ct.boundary, bl, &next);
		if (kind != 0) {
			seen = 1;
			if (inpart) {
				/* The CRLF before "--" belongs to the
				 * delimiter (RFC 2046 §5.1.1). */
				end = i >= start + 2 ? i - 2 : start;
				if (end - start > RELATED_PART_MAX) {
					e = RELATED_E_PART_TOO_LARGE;
					goto fail;
				}
				if (np == nmax) {
					e = RELATED_E_TOO_MANY_PARTS;
					goto fail;
				}
				related_part_cut(
				    body + start, end - start, &parts[np]);
				if ((e = related_part_check(&parts[np])) !=
				    RELATED_E_NONE)
					goto fail;
				np++;
			}
			if (kind == 2) {
				closed = 1;
				break; /* the epilogue is ignored */
			}
			inpart = 1;
			start = next;
			i = next;
			continue;
		}
		eol = memchr(body + i, '\n', len - i);
		/* Delimiters only follow a CRLF. */
		while (eol != NULL && (eol == body + i || eol[-1] != '\r'))
			eol = memchr(
			    eol + 1, '\n', len - (size_t)(eol + 1 - body));
		if (eol == NULL)
			i = len;
		else
			i = (size_t)(eol - body) + 1;
	}
	if (!closed) {
		e = seen ? RELATED_E_NO_CLOSE : RELATED_E_NO_PARTS;
		goto fail;
	}
	if (np == 0) {
		e = RELATED_E_NO_PARTS;
		goto fail;
	}
	*n_out = np;
	return 0;
fail:
	*err_out = e;
	return -1;
}

int
related_split_entity(const char *entity, size_t len, struct related_part *parts,
    size_t nmax, size_t *n_out, enum related_error *err_out)
{
	const char *v;
	size_t hl, vl, i;
	int r;

	*n_out = 0;
	if (memchr(entity, '\0', len) != NULL) {
		*err_out = RELATED_E_NUL;
		return -1;
	}
	/* The header section ends at the first empty line. */
	if (len >= 2 && entity[0] == '\r' && entity[1] == '\n') {
		*err_out = RELATED_E_NO_CTYPE;
		return -1;
	}
	for (i = 0; i + 4 <= len; i++)
		if (memcmp(entity + i, "\r\n\r\n", 4) == 0)
			break;
	if (i + 4 > len) {
		*err_out = len > RELATED_HEADER_MAX ? RELATED_E_HEADER_TOO_LONG
		                                    : RELATED_E_HEADER;
		return -1;
	}
	hl = i + 2;
	if (hl > RELATED_HEADER_MAX) {
		*err_out = RELATED_E_HEADER_TOO_LONG;
		return -1;
	}
	r = related_field(entity, hl, "Content-Type", &v, &vl);
	if (r != 1) {
		*err_out = r == 0 ? RELATED_E_NO_CTYPE
		    : r == -2     ? RELATED_E_CTYPE
		                  : RELATED_E_HEADER;
		return -1;
	}
	return related_split(
	    v, vl, entity + hl + 2, len - hl - 2, parts, nmax, n_out, err_out);
}

/*
 * Writer
 */

static int
related_bchar(int c)
{
	/* RFC 2046 §5.1.1 bcharsnospace, plus space */
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || (c != '\0' && strchr("'()+_,-./:=? ", c));
}

/* Checks a body: 7bit, CRLF lines of at most 998 octets, ends in CRLF. */
static int
related_body_ok(const char *s, size_t n)
{
	size_t i, ll = 0;

	if (n < 2 || s[n - 2] != '\r' || s[n - 1] != '\n')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0' || c > 127)
			return 0;
		if (c == '\r') {
			if (i + 1 == n || s[i + 1] != '\n')
				return 0;
			continue;
		}
		if (c == '\n') {
			if (i == 0 || s[i - 1] != '\r')
				return 0;
			ll = 0;
			continue;
		}
		if (++ll > MIME_LINE_HARD_MAX)
			return 0;
	}
	return 1;
}

/* Returns 1 if "--" boundary occurs in any body. */
static int
related_collides(const char *bd, const struct related_part *parts, size_t n)
{
	size_t bl = strlen(bd), i, k;

	for (i = 0; i < n; i++)
		for (k = 0; k + bl + 2 <= parts[i].body_len; k++)
			if (parts[i].body[k] == '-' &&
			    parts[i].body[k + 1] == '-' &&
			    memcmp(parts[i].body + k + 2, bd, bl) == 0)
				return 1;
	return 0;
}

int
related_write(struct buf *b, const char *boundary,
    const struct related_part *parts, size_t n, enum related_error *err_out)
{
	char fresh[MIME_BOUNDARY_LEN + 1];
	size_t start = b->len, i, bl;
	int tries;

	*err_out = RELATED_E_NONE;
	if (n == 0 || n > RELATED_PARTS_MAX) {
		*err_out = RELATED_E_ARG;
		return -1;
	}
	for (i = 0; i < n; i++)
		if (parts[i].body == NULL ||
		    !related_body_ok(parts[i].body, parts[i].body_len)) {
			*err_out = RELATED_E_BODY;
			return -1;
		}
	if (boundary == NULL || *boundary == '\0') {
		/* G-6: a boundary "making sure it does not occur in any
		 * body"; 160 random bits make a retry all but impossible. */
		for (tries = 0;; tries++) {
			if (tries == RELATED_BOUNDARY_TRIES ||
			    mime_boundary(fresh, sizeof(fresh)) == -1) {
				*err_out = RELATED_E_ARG;
				return -1;
			}
			if (!related_collides(fresh, parts, n))
				break;
		}
		boundary = fresh;
	} else {
		bl = strlen(boundary);
		if (bl > RELATED_BOUNDARY_MAX || boundary[bl - 1] == ' ') {
			*err_out = RELATED_E_ARG;
			return -1;
		}
		for (i = 0; i < bl; i++)
			if (!related_bchar((unsigned char)boundary[i])) {
				*err_out = RELATED_E_ARG;
				return -1;
			}
		if (related_collides(boundary, parts, n)) {
			*err_out = RELATED_E_COLLISION;
			return -1;
		}
	}
	/* Erratum 3721: type="message/tracking-status", quoted; the
	 * boundary is quoted too, since bchars include tspecials. */
	if (mime_fieldf(b, "Content-Type",
	        "multipart/related; boundary=\"%s\"; type=\"%s\"", boundary,
	        RELATED_PART_TYPE) == -1 ||
	    buf_add(b, "\r\n", 2) == -1)
		goto nospace;
	for (i = 0; i < n; i++)
		if (mime_part_begin(b, boundary, i == 0) == -1 ||
		    buf_adds(b,
		        "Content-Type: " RELATED_PART_TYPE "\r\n\r\n") == -1 ||
		    buf_add(b, parts[i].body, parts[i].body_len) == -1)
			goto nospace;
	if (mime_multipart_end(b, boundary) == -1)
		goto nospace;
	return 0;
nospace:
	buf_truncate(b, start);
	*err_out = RELATED_E_NOSPACE;
	return -1;
}
