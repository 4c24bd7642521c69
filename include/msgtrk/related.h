/*
 * related: the multipart/related body of a TRACK answer (RFC 3887 §4,
 * RFC 2387, RFC 3886 §3, RFC 3887 erratum 3721):
 *
 *   Content-Type: multipart/related; boundary="...";
 *    type="message/tracking-status"
 *
 *   --...
 *   Content-Type: message/tracking-status
 *
 *   <tracking-status body>
 *   --...--
 *
 * The writer wraps bodies the caller has already generated; the reader
 * splits such an entity into its parts.  Neither looks inside a
 * tracking-status body (that is tstatus.h).  Pure: no I/O.
 */
#ifndef MSGTRK_RELATED_H
#define MSGTRK_RELATED_H

#include <stddef.h>

#include "msgtrk/buf.h"

/* Our limits (RFC 2046 and RFC 2387 set none): parts in one answer (one
 * per hop of a chain), octets of one part, octets of a header section
 * (the entity's or a part's). */
#define RELATED_PARTS_MAX 64
#define RELATED_PART_MAX (4 * 1024 * 1024)
#define RELATED_HEADER_MAX (16 * 1024)
/* RFC 2046 §5.1.1: boundary := 0*69<bchars> bcharsnospace (1..70). */
#define RELATED_BOUNDARY_MAX 70

enum related_error {
	RELATED_E_NONE = 0,
	RELATED_E_NUL, /* a NUL octet in the entity */
	RELATED_E_HEADER, /* malformed header section or field */
	RELATED_E_HEADER_TOO_LONG, /* header section over RELATED_HEADER_MAX */
	RELATED_E_NO_CTYPE, /* the entity has no Content-Type */
	RELATED_E_CTYPE, /* Content-Type syntax error, or duplicated */
	RELATED_E_NOT_RELATED, /* media type is not multipart/related */
	RELATED_E_BOUNDARY, /* boundary parameter missing, empty, > 70 */
	RELATED_E_TYPE, /* type parameter missing or not
				    message/tracking-status (RFC 2387 §3.1) */
	RELATED_E_NO_PARTS, /* no delimiter line at all */
	RELATED_E_NO_CLOSE, /* no close delimiter: truncated */
	RELATED_E_TOO_MANY_PARTS, /* more than the caller's or our maximum */
	RELATED_E_PART_TOO_LARGE, /* a part over RELATED_PART_MAX */
	RELATED_E_PART_TYPE, /* a part is not message/tracking-status */
	RELATED_E_PART_ENCODING, /* a part's Content-Transfer-Encoding is not
				    7bit (RFC 3886 §3.1) */
	RELATED_E_BODY, /* writer: a body not 7bit CRLF text */
	RELATED_E_COLLISION, /* writer: the boundary occurs in a body */
	RELATED_E_ARG, /* writer: bad boundary or no parts */
	RELATED_E_NOSPACE, /* writer: output buffer limit */
};

/* One part.  The writer reads body/body_len only.  The reader sets all
 * four, pointing into the caller's input (valid as long as it is): header
 * is the part's header section (each field with its CRLF), body the
 * content after the blank line, up to but not including the CRLF that
 * belongs to the next delimiter (RFC 2046 §5.1.1). */
struct related_part {
	const char *header;
	size_t header_len;
	const char *body;
	size_t body_len;
};

/* Appends the whole entity: the Content-Type field (folded by
 * mime_field), a blank line, then one part per body, each with only
 * "Content-Type: message/tracking-status" (7bit is the default, so no
 * Content-Transfer-Encoding), and the close delimiter.
 * boundary NULL or "" means a fresh random one (mime_boundary); a caller's
 * boundary (for golden tests) must be 1..70 RFC 2046 bchars, not ending in
 * a space.  Each body must be 7bit text (no NUL, no octet above 127) of
 * CRLF lines of at most 998 octets, ending in CRLF, and must not contain
 * "--" boundary.  n is 1..RELATED_PARTS_MAX.
 * Returns 0, or -1 with *err_out set and b as it was. */
int related_write(struct buf *b, const char *boundary,
    const struct related_part *parts, size_t n, enum related_error *err_out);

/* Splits body (len octets) of an entity whose Content-Type value is ctype
 * (unfolded or folded, ctype_len octets).  The value must be
 * multipart/related with a boundary and a type parameter naming
 * message/tracking-status (quoted or not; the bare "tracking-status" of
 * the uncorrected RFC 3887 examples is accepted too).  Boundary characters
 * are not checked against RFC 2046, so the examples' "%%%%" works.
 * Delimiters count only at a line start and may be followed by transport
 * padding (SP/HTAB); the preamble and the epilogue are ignored.  Each
 * part must be Content-Type message/tracking-status (case-insensitive,
 * parameters allowed) and, if it has a Content-Transfer-Encoding, 7bit.
 * Up to nmax (capped at RELATED_PARTS_MAX) parts are stored in parts.
 * Returns 0 with *n_out set, or -1 with *err_out set. */
int related_split(const char *ctype, size_t ctype_len, const char *body,
    size_t len, struct related_part *parts, size_t nmax, size_t *n_out,
    enum related_error *err_out);

/* As related_split(), given the whole entity: its header section (which
 * must hold exactly one Content-Type field; others are ignored), a blank
 * line, then the body, as the data of a TRACK answer. */
int related_split_entity(const char *entity, size_t len,
    struct related_part *parts, size_t nmax, size_t *n_out,
    enum related_error *err_out);

/* Finds the field name (case-insensitive) in a header section (as in
 * struct related_part) and stores its value, without the leading
 * whitespace and with folding CRLFs kept, in *value_out and *len_out.
 * Returns 1 if found once, 0 if absent, -1 if present more than once or
 * the section is malformed. */
int related_header_get(const char *header, size_t header_len, const char *name,
    const char **value_out, size_t *len_out);

const char *related_strerror(enum related_error err);

#endif /* MSGTRK_RELATED_H */
