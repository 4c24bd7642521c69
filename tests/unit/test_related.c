/*
 * test_related: the multipart/related wrapper (RFC 2387, RFC 2046 §5.1,
 * RFC 3887 §4 and erratum 3721), and the RFC 3887 example answers read
 * through the MTQP response reader and split here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/mtqp.h"
#include "msgtrk/related.h"
#include "table.h"

#define TS "message/tracking-status"
#define CT "multipart/related; boundary=\"b\"; type=\"" TS "\""
#define PART_HDR "Content-Type: " TS "\r\n\r\n"
#define BODY1 "Original-Envelope-Id: a@b\r\n"
#define BODY2 "Original-Envelope-Id: c@d\r\n\r\nAction: delivered\r\n"

static const char *const errnames[] = {
	[RELATED_E_NONE] = "E_NONE",
	[RELATED_E_NUL] = "E_NUL",
	[RELATED_E_HEADER] = "E_HEADER",
	[RELATED_E_HEADER_TOO_LONG] = "E_HEADER_TOO_LONG",
	[RELATED_E_NO_CTYPE] = "E_NO_CTYPE",
	[RELATED_E_CTYPE] = "E_CTYPE",
	[RELATED_E_NOT_RELATED] = "E_NOT_RELATED",
	[RELATED_E_BOUNDARY] = "E_BOUNDARY",
	[RELATED_E_TYPE] = "E_TYPE",
	[RELATED_E_NO_PARTS] = "E_NO_PARTS",
	[RELATED_E_NO_CLOSE] = "E_NO_CLOSE",
	[RELATED_E_TOO_MANY_PARTS] = "E_TOO_MANY_PARTS",
	[RELATED_E_PART_TOO_LARGE] = "E_PART_TOO_LARGE",
	[RELATED_E_PART_TYPE] = "E_PART_TYPE",
	[RELATED_E_PART_ENCODING] = "E_PART_ENCODING",
	[RELATED_E_BODY] = "E_BODY",
	[RELATED_E_COLLISION] = "E_COLLISION",
	[RELATED_E_ARG] = "E_ARG",
	[RELATED_E_NOSPACE] = "E_NOSPACE",
};

/*
 * Splitting
 */

struct split_row {
	const char *name;
	const char *ctype;
	const char *body;
	enum related_error err;
	size_t nparts;
	const char *body0; /* expected body of part 0, or NULL */
};

static const struct split_row split_rows[] = {
	{ "one part", CT, "--b\r\n" PART_HDR BODY1 "\r\n--b--\r\n", 0, 1,
	    BODY1 },
	{ "two parts", CT,
	    "--b\r\n" PART_HDR BODY1 "\r\n--b\r\n" PART_HDR BODY2
	    "\r\n--b--\r\n",
	    0, 2, BODY1 },
	{ "preamble epilogue", CT,
	    "preamble\r\n--bx\r\n--b\r\n" PART_HDR BODY1
	    "\r\n--b--\r\nepilogue\r\n--b\r\njunk",
	    0, 1, BODY1 },
	{ "close without crlf", CT, "--b\r\n" PART_HDR BODY1 "\r\n--b--", 0, 1,
	    BODY1 },
	{ "transport padding", CT,
	    "--b \t\r\n" PART_HDR BODY1 "\r\n--b  \r\n" PART_HDR BODY1
	    "\r\n--b-- \r\n",
	    0, 2, BODY1 },
	{ "boundary lookalike in body", CT,
	    "--b\r\n" PART_HDR "x\r\n--bb\r\n --b\r\nx--b\r\n\r\n--b--\r\n", 0,
	    1, "x\r\n--bb\r\n --b\r\nx--b\r\n" },
	{ "boundary after bare lf not delim", CT,
	    "--b\r\n" PART_HDR "x\n--b\r\ny\r\n--b--\r\n", 0, 1,
	    "x\n--b\r\ny" },
	{ "body without final crlf", CT, "--b\r\n" PART_HDR "x\r\n--b--\r\n", 0,
	    1, "x" },
	{ "empty body", CT, "--b\r\n" PART_HDR "\r\n--b--\r\n", 0, 1, "" },
	{ "headers only", CT, "--b\r\nContent-Type: " TS "\r\n--b--\r\n", 0, 1,
	    "" },
	{ "part ctype params case", CT,
	    "--b\r\nCONTENT-TYPE: Message/Tracking-Status; "
	    "x=y\r\n\r\nz\r\n--b--"
	    "\r\n",
	    0, 1, "z" },
	{ "part folded ctype", CT,
	    "--b\r\nContent-Type:\r\n " TS "\r\n\r\nz\r\n--b--\r\n", 0, 1,
	    "z" },
	{ "part ctype comment", CT,
	    "--b\r\nContent-Type: (c) " TS " (d)\r\n\r\nz\r\n--b--\r\n", 0, 1,
	    "z" },
	{ "part other headers", CT,
	    "--b\r\nContent-ID: <x@y>\r\nContent-Type: " TS
	    "\r\nContent-Transfer-Encoding: 7BIT\r\n\r\nz\r\n--b--\r\n",
	    0, 1, "z" },
	{ "part 8bit cte", CT,
	    "--b\r\nContent-Type: " TS
	    "\r\nContent-Transfer-Encoding: 8bit\r\n\r\nz\r\n--b--\r\n",
	    RELATED_E_PART_ENCODING, 0, NULL },
	{ "part cte 7bitx", CT,
	    "--b\r\nContent-Type: " TS
	    "\r\nContent-Transfer-Encoding: 7bitx\r\n\r\nz\r\n--b--\r\n",
	    RELATED_E_PART_ENCODING, 0, NULL },
	{ "part no ctype", CT, "--b\r\n\r\nz\r\n--b--\r\n", RELATED_E_PART_TYPE,
	    0, NULL },
	{ "part text plain", CT,
	    "--b\r\nContent-Type: text/plain\r\n\r\nz\r\n--b--\r\n",
	    RELATED_E_PART_TYPE, 0, NULL },
	{ "part bare tracking-status", CT,
	    "--b\r\nContent-Type: tracking-status\r\n\r\nz\r\n--b--\r\n",
	    RELATED_E_CTYPE, 0, NULL },
	{ "part two ctypes", CT,
	    "--b\r\nContent-Type: " TS "\r\nContent-Type: " TS
	    "\r\n\r\nz\r\n--b--\r\n",
	    RELATED_E_CTYPE, 0, NULL },
	{ "part bad header", CT, "--b\r\nno colon\r\n\r\nz\r\n--b--\r\n",
	    RELATED_E_HEADER, 0, NULL },
	{ "part header bare lf", CT,
	    "--b\r\nContent-Type: " TS "\nX: y\r\n\r\nz\r\n--b--\r\n",
	    RELATED_E_HEADER, 0, NULL },
	{ "second part bad", CT,
	    "--b\r\n" PART_HDR "x\r\n--b\r\n\r\ny\r\n--b--\r\n",
	    RELATED_E_PART_TYPE, 0, NULL },
	{ "empty part", CT, "--b\r\n--b--\r\n", RELATED_E_PART_TYPE, 0, NULL },
	{ "no close", CT, "--b\r\n" PART_HDR BODY1, RELATED_E_NO_CLOSE, 0,
	    NULL },
	{ "close not at line start", CT, "--b\r\n" PART_HDR "x --b--\r\n",
	    RELATED_E_NO_CLOSE, 0, NULL },
	{ "no delimiter", CT, "just text\r\n", RELATED_E_NO_PARTS, 0, NULL },
	{ "empty body", CT, "", RELATED_E_NO_PARTS, 0, NULL },
	{ "close only", CT, "--b--\r\n", RELATED_E_NO_PARTS, 0, NULL },
	{ "nul in body", CT, "--b\r\n\0", RELATED_E_NUL, 0, NULL },
	/* The Content-Type value */
	{ "rfc examples boundary",
	    "multipart/related; boundary=%%%%; type="
	    "tracking-status",
	    "--%%%%\r\n" PART_HDR BODY1 "\r\n--%%%%--\r\n", 0, 1, BODY1 },
	{ "unquoted type", "multipart/related; boundary=b; type=" TS,
	    "--b\r\n" PART_HDR "x\r\n--b--\r\n", RELATED_E_CTYPE, 0, NULL },
	{ "erratum 3721 folded",
	    "multipart/related; boundary=%%%%;\r\n type=\"" TS "\"",
	    "--%%%%\r\n" PART_HDR "x\r\n--%%%%--\r\n", 0, 1, "x" },
	{ "case and spaces",
	    " Multipart/Related ; TYPE = \"" TS "\" ; Boundary = \"a b\" ;",
	    "--a b\r\n" PART_HDR "x\r\n--a b--\r\n", 0, 1, "x" },
	{ "quoted pair",
	    "multipart/related; boundary=\"a\\\"b\"; type=\"" TS "\"",
	    "--a\"b\r\n" PART_HDR "x\r\n--a\"b--\r\n", 0, 1, "x" },
	{ "folded quoted boundary",
	    "multipart/related; boundary=\"a\r\n b\";"
	    " type=\"" TS "\"",
	    "--a b\r\n" PART_HDR "x\r\n--a b--\r\n", 0, 1, "x" },
	{ "start param ignored",
	    "multipart/related; start=\"<x>\"; "
	    "boundary=b; type=\"" TS "\"",
	    "--b\r\n" PART_HDR "x\r\n--b--\r\n", 0, 1, "x" },
	{ "mixed", "multipart/mixed; boundary=b; type=\"" TS "\"",
	    "--b\r\n" PART_HDR "x\r\n--b--\r\n", RELATED_E_NOT_RELATED, 0,
	    NULL },
	{ "no type", "multipart/related; boundary=b",
	    "--b\r\n" PART_HDR "x\r\n--b--\r\n", RELATED_E_TYPE, 0, NULL },
	{ "wrong type", "multipart/related; boundary=b; type=\"text/plain\"",
	    "--b\r\n" PART_HDR "x\r\n--b--\r\n", RELATED_E_TYPE, 0, NULL },
	{ "no boundary", "multipart/related; type=\"" TS "\"", "",
	    RELATED_E_BOUNDARY, 0, NULL },
	{ "empty boundary", "multipart/related; boundary=\"\"; type=\"" TS "\"",
	    "", RELATED_E_BOUNDARY, 0, NULL },
	{ "boundary 70",
	    "multipart/related; type=\"" TS "\"; boundary="
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaa",
	    "--"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaa\r\n" PART_HDR "x\r\n--"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaa--\r\n",
	    0, 1, "x" },
	{ "boundary 71",
	    "multipart/related; type=\"" TS "\"; boundary="
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaa",
	    "", RELATED_E_BOUNDARY, 0, NULL },
	{ "two boundaries",
	    "multipart/related; boundary=a; boundary=b; "
	    "type=\"" TS "\"",
	    "", RELATED_E_CTYPE, 0, NULL },
	{ "two types",
	    "multipart/related; boundary=a; type=\"" TS "\"; "
	    "type=\"" TS "\"",
	    "", RELATED_E_CTYPE, 0, NULL },
	{ "no subtype", "multipart; boundary=b", "", RELATED_E_CTYPE, 0, NULL },
	{ "missing equals", "multipart/related; boundary b", "",
	    RELATED_E_CTYPE, 0, NULL },
	{ "unclosed quote", "multipart/related; boundary=\"b", "",
	    RELATED_E_CTYPE, 0, NULL },
	{ "unclosed comment", "multipart/related (x; boundary=b", "",
	    RELATED_E_CTYPE, 0, NULL },
	{ "junk after value", "multipart/related; boundary=b c", "",
	    RELATED_E_CTYPE, 0, NULL },
	{ "empty ctype", "", "", RELATED_E_CTYPE, 0, NULL },
};

static const char *
split_name(const void *row)
{
	return ((const struct split_row *)row)->name;
}

static void
test_split_row(void **state)
{
	const struct split_row *row = *state;
	struct related_part parts[RELATED_PARTS_MAX];
	enum related_error err;
	size_t n, blen = strlen(row->body);
	int r;

	/* "nul in body" has a NUL after the delimiter line. */
	if (strcmp(row->name, "nul in body") == 0)
		blen = 6;
	r = related_split(row->ctype, strlen(row->ctype), row->body, blen,
	    parts, RELATED_PARTS_MAX, &n, &err);
	if (err != row->err)
		fail_msg("got %s, want %s", errnames[err], errnames[row->err]);
	assert_int_equal(r, row->err == RELATED_E_NONE ? 0 : -1);
	assert_int_equal(n, row->nparts);
	if (row->body0 != NULL) {
		assert_int_equal(parts[0].body_len, strlen(row->body0));
		assert_memory_equal(
		    parts[0].body, row->body0, parts[0].body_len);
	}
}

/* Part count, part size and header size limits. */
static void
test_split_limits(void **state)
{
	struct related_part parts[RELATED_PARTS_MAX];
	enum related_error err;
	struct buf b;
	size_t n, i;

	(void)state;
	buf_init(&b, 2 * RELATED_PART_MAX);
	for (i = 0; i < 3; i++)
		assert_int_equal(buf_adds(&b, "--b\r\n" PART_HDR "x\r\n"), 0);
	assert_int_equal(buf_adds(&b, "--b--\r\n"), 0);
	assert_int_equal(
	    related_split(CT, strlen(CT), b.data, b.len, parts, 3, &n, &err),
	    0);
	assert_int_equal(n, 3);
	assert_int_equal(
	    related_split(CT, strlen(CT), b.data, b.len, parts, 2, &n, &err),
	    -1);
	assert_int_equal(err, RELATED_E_TOO_MANY_PARTS);
	/* RELATED_PARTS_MAX caps a larger nmax. */
	buf_clear(&b);
	for (i = 0; i < RELATED_PARTS_MAX + 1; i++)
		assert_int_equal(buf_adds(&b, "--b\r\n" PART_HDR "x\r\n"), 0);
	assert_int_equal(buf_adds(&b, "--b--\r\n"), 0);
	assert_int_equal(related_split(CT, strlen(CT), b.data, b.len, parts,
	                     SIZE_MAX, &n, &err),
	    -1);
	assert_int_equal(err, RELATED_E_TOO_MANY_PARTS);
	/* A part of exactly RELATED_PART_MAX octets, then one more. */
	buf_clear(&b);
	assert_int_equal(buf_adds(&b, "--b\r\n" PART_HDR), 0);
	while (b.len < 5 + RELATED_PART_MAX - 2)
		assert_int_equal(buf_adds(&b, "x"), 0);
	assert_int_equal(buf_adds(&b, "\r\n\r\n--b--\r\n"), 0);
	assert_int_equal(
	    related_split(CT, strlen(CT), b.data, b.len, parts, 1, &n, &err),
	    0);
	assert_int_equal(
	    parts[0].body_len + strlen(PART_HDR), RELATED_PART_MAX);
	buf_clear(&b);
	assert_int_equal(buf_adds(&b, "--b\r\n" PART_HDR), 0);
	while (b.len < 5 + RELATED_PART_MAX - 1)
		assert_int_equal(buf_adds(&b, "x"), 0);
	assert_int_equal(buf_adds(&b, "\r\n\r\n--b--\r\n"), 0);
	assert_int_equal(
	    related_split(CT, strlen(CT), b.data, b.len, parts, 1, &n, &err),
	    -1);
	assert_int_equal(err, RELATED_E_PART_TOO_LARGE);
	/* A part header section over RELATED_HEADER_MAX. */
	buf_clear(&b);
	assert_int_equal(buf_adds(&b, "--b\r\nContent-Type: " TS "\r\nX: "), 0);
	for (i = 0; i < RELATED_HEADER_MAX; i++)
		assert_int_equal(buf_adds(&b, "x"), 0);
	assert_int_equal(buf_adds(&b, "\r\n\r\nz\r\n--b--\r\n"), 0);
	assert_int_equal(
	    related_split(CT, strlen(CT), b.data, b.len, parts, 1, &n, &err),
	    -1);
	assert_int_equal(err, RELATED_E_HEADER_TOO_LONG);
	buf_reset(&b);
}

/* Whole entities (header, blank line, body). */
struct entity_row {
	const char *name;
	const char *in;
	enum related_error err;
	size_t nparts;
};

static const struct entity_row entity_rows[] = {
	{ "entity",
	    "Content-Type: " CT "\r\n\r\n--b\r\n" PART_HDR "x\r\n--b--\r\n", 0,
	    1 },
	{ "entity folded",
	    "Content-Type: multipart/related;\r\n boundary=b;"
	    "\r\n\ttype=\"" TS "\"\r\n\r\n--b\r\n" PART_HDR "x\r\n--b--\r\n",
	    0, 1 },
	{ "entity other fields",
	    "MIME-Version: 1.0\r\n.Dot: x\r\ncontent-type: " CT
	    "\r\n\r\n--b\r\n" PART_HDR "x\r\n--b--\r\n",
	    0, 1 },
	{ "entity no ctype", "X: y\r\n\r\n--b\r\n", RELATED_E_NO_CTYPE, 0 },
	{ "entity no header", "\r\n--b\r\n", RELATED_E_NO_CTYPE, 0 },
	{ "entity two ctypes",
	    "Content-Type: " CT "\r\nContent-Type: " CT "\r\n\r\n",
	    RELATED_E_CTYPE, 0 },
	{ "entity no blank line", "Content-Type: " CT "\r\n", RELATED_E_HEADER,
	    0 },
	{ "entity bad field", "Content-Type " CT "\r\n\r\n", RELATED_E_HEADER,
	    0 },
	{ "entity field with space",
	    "Bad Name: x\r\nContent-Type: " CT "\r\n\r\n", RELATED_E_HEADER,
	    0 },
	{ "entity leading continuation", " x\r\nContent-Type: " CT "\r\n\r\n",
	    RELATED_E_HEADER, 0 },
	{ "entity text plain", "Content-Type: text/plain\r\n\r\nx\r\n",
	    RELATED_E_NOT_RELATED, 0 },
};

static const char *
entity_name(const void *row)
{
	return ((const struct entity_row *)row)->name;
}

static void
test_entity_row(void **state)
{
	const struct entity_row *row = *state;
	struct related_part parts[4];
	enum related_error err;
	size_t n;
	int r;

	r = related_split_entity(row->in, strlen(row->in), parts, 4, &n, &err);
	if (err != row->err)
		fail_msg("got %s, want %s", errnames[err], errnames[row->err]);
	assert_int_equal(r, row->err == RELATED_E_NONE ? 0 : -1);
	assert_int_equal(n, row->nparts);
}

static void
test_entity_limits(void **state)
{
	struct related_part parts[1];
	enum related_error err;
	struct buf b;
	size_t n, i;

	(void)state;
	buf_init(&b, 4 * RELATED_HEADER_MAX);
	assert_int_equal(buf_adds(&b, "X: "), 0);
	for (i = 0; i < RELATED_HEADER_MAX; i++)
		assert_int_equal(buf_adds(&b, "x"), 0);
	/* No end of header in sight. */
	assert_int_equal(
	    related_split_entity(b.data, b.len, parts, 1, &n, &err), -1);
	assert_int_equal(err, RELATED_E_HEADER_TOO_LONG);
	assert_int_equal(buf_adds(&b, "\r\nContent-Type: " CT "\r\n\r\n"), 0);
	assert_int_equal(
	    related_split_entity(b.data, b.len, parts, 1, &n, &err), -1);
	assert_int_equal(err, RELATED_E_HEADER_TOO_LONG);
	assert_int_equal(
	    related_split_entity("a\0", 2, parts, 1, &n, &err), -1);
	assert_int_equal(err, RELATED_E_NUL);
	buf_reset(&b);
}

static void
test_header_get(void **state)
{
	static const char h[] = "A: 1\r\nB:  two\r\n  folded\r\nA2: x\r\n";
	const char *v;
	size_t vl;

	(void)state;
	assert_int_equal(related_header_get(h, sizeof(h) - 1, "a", &v, &vl), 1);
	assert_int_equal(vl, 1);
	assert_memory_equal(v, "1", 1);
	assert_int_equal(related_header_get(h, sizeof(h) - 1, "B", &v, &vl), 1);
	assert_int_equal(vl, strlen("two\r\n  folded"));
	assert_memory_equal(v, "two\r\n  folded", vl);
	assert_int_equal(related_header_get(h, sizeof(h) - 1, "C", &v, &vl), 0);
	assert_int_equal(
	    related_header_get("A: 1\r\nA: 2\r\n", 12, "A", &v, &vl), -1);
	assert_int_equal(related_header_get("A 1\r\n", 5, "A", &v, &vl), -1);
	/* Last line without CRLF (a part ending at its delimiter). */
	assert_int_equal(related_header_get("A: 1", 4, "A", &v, &vl), 1);
	assert_int_equal(vl, 1);
}

/*
 * Writer
 */

static void
test_write_golden(void **state)
{
	static const struct related_part one[] = {
		{ NULL, 0, BODY1, sizeof(BODY1) - 1 },
	};
	static const struct related_part two[] = {
		{ NULL, 0, BODY1, sizeof(BODY1) - 1 },
		{ NULL, 0, BODY2, sizeof(BODY2) - 1 },
	};
	enum related_error err;
	struct buf b;

	(void)state;
	buf_init(&b, 1 << 16);
	assert_int_equal(related_write(&b, "mtqp-example", one, 1, &err), 0);
	golden_check("related/one-part.txt", b.data, b.len);
	buf_clear(&b);
	assert_int_equal(
	    related_write(&b, "=_msgtrk-fixed-boundary", two, 2, &err), 0);
	golden_check("related/two-parts.txt", b.data, b.len);
	buf_clear(&b);
	/* A 70-character boundary folds onto its own line. */
	assert_int_equal(related_write(&b,
	                     "0123456789012345678901234567890123456789"
	                     "012345678901234567890123456789",
	                     one, 1, &err),
	    0);
	golden_check("related/long-boundary.txt", b.data, b.len);
	buf_reset(&b);
}

struct wbad_row {
	const char *name;
	const char *boundary;
	const char *body;
	size_t n;
	enum related_error err;
};

static const struct wbad_row wbad_rows[] = {
	{ "no parts", "b", BODY1, 0, RELATED_E_ARG },
	{ "too many parts", "b", BODY1, RELATED_PARTS_MAX + 1, RELATED_E_ARG },
	{ "boundary 71",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaa",
	    BODY1, 1, RELATED_E_ARG },
	{ "boundary percent", "%%%%", BODY1, 1, RELATED_E_ARG },
	{ "boundary trailing space", "a ", BODY1, 1, RELATED_E_ARG },
	{ "boundary quote", "a\"b", BODY1, 1, RELATED_E_ARG },
	{ "collision", "b", "x\r\n--b\r\n", 1, RELATED_E_COLLISION },
	{ "collision inline", "b", "x--by\r\n", 1, RELATED_E_COLLISION },
	{ "empty body", "b", "", 1, RELATED_E_BODY },
	{ "no final crlf", "b", "x", 1, RELATED_E_BODY },
	{ "bare lf", "b", "x\ny\r\n", 1, RELATED_E_BODY },
	{ "bare cr", "b", "x\ry\r\n", 1, RELATED_E_BODY },
	{ "cr at end", "b", "x\r\n\r", 1, RELATED_E_BODY },
	{ "8bit", "b", "caf\xc3\xa9\r\n", 1, RELATED_E_BODY },
};

static const char *
wbad_name(const void *row)
{
	return ((const struct wbad_row *)row)->name;
}

static void
test_wbad_row(void **state)
{
	const struct wbad_row *row = *state;
	static struct related_part parts[RELATED_PARTS_MAX + 1];
	enum related_error err;
	struct buf b;
	size_t i;

	for (i = 0; i < row->n; i++) {
		parts[i].body = row->body;
		parts[i].body_len = strlen(row->body);
	}
	buf_init(&b, 1 << 16);
	assert_int_equal(buf_adds(&b, "x"), 0);
	assert_int_equal(
	    related_write(&b, row->boundary, parts, row->n, &err), -1);
	assert_int_equal(err, row->err);
	assert_string_equal(buf_cstr(&b), "x");
	buf_reset(&b);
}

static void
test_write_limits(void **state)
{
	static const struct related_part one[] = {
		{ NULL, 0, BODY1, sizeof(BODY1) - 1 },
	};
	struct related_part p;
	enum related_error err;
	char line[1002];
	struct buf b;

	(void)state;
	/* Output limit. */
	buf_init(&b, 50);
	assert_int_equal(related_write(&b, "b", one, 1, &err), -1);
	assert_int_equal(err, RELATED_E_NOSPACE);
	assert_int_equal(b.len, 0);
	buf_reset(&b);
	/* Body lines: 998 fit, 999 do not. */
	buf_init(&b, 1 << 16);
	memset(line, 'a', 998);
	memcpy(line + 998, "\r\n", 2);
	p.body = line;
	p.body_len = 1000;
	assert_int_equal(related_write(&b, "b", &p, 1, &err), 0);
	memset(line, 'a', 999);
	memcpy(line + 999, "\r\n", 2);
	p.body_len = 1001;
	assert_int_equal(related_write(&b, "b", &p, 1, &err), -1);
	assert_int_equal(err, RELATED_E_BODY);
	p.body = NULL;
	assert_int_equal(related_write(&b, "b", &p, 1, &err), -1);
	assert_int_equal(err, RELATED_E_BODY);
	buf_reset(&b);
	for (int e = 0; e <= RELATED_E_NOSPACE; e++)
		assert_string_not_equal(related_strerror(e), "unknown error");
	assert_string_equal(
	    related_strerror((enum related_error)99), "unknown error");
}

/* split_entity(write(x)) gives x back, with random boundaries too. */
static void
test_roundtrip(void **state)
{
	static const char *const bodies[] = { BODY1, BODY2, "\r\n",
		"--x\r\n.\r\n", "a\r\n--b\r\n" };
	struct related_part in[5], out[5];
	enum related_error err;
	struct buf b;
	size_t n, i, k;

	(void)state;
	for (i = 0; i < 5; i++) {
		in[i].body = bodies[i];
		in[i].body_len = strlen(bodies[i]);
	}
	for (k = 0; k < 20; k++) {
		buf_init(&b, 1 << 16);
		assert_int_equal(
		    related_write(&b, k == 0 ? "" : NULL, in, 1 + k % 5, &err),
		    0);
		assert_int_equal(
		    related_split_entity(b.data, b.len, out, 5, &n, &err), 0);
		assert_int_equal(n, 1 + k % 5);
		for (i = 0; i < n; i++) {
			assert_int_equal(out[i].body_len, in[i].body_len);
			assert_memory_equal(
			    out[i].body, in[i].body, in[i].body_len);
			assert_int_equal(out[i].header_len,
			    strlen("Content-Type: " TS "\r\n"));
		}
		buf_reset(&b);
	}
}

/*
 * RFC 3887 examples: server bytes through the response reader, then the
 * entity through related_split_entity().
 */
struct fixture_row {
	const char *file;
	size_t nresp; /* responses in the file */
	size_t nparts; /* parts in each */
	const char *mta; /* Reporting-MTA of the last part */
};

static const struct fixture_row fixture_rows[] = {
	{ "rfc3887/ex06-track-delivered.server", 1, 1, "example2.com" },
	{ "rfc3887/ex07-track-transferred.server", 1, 1, "example2.com" },
	{ "rfc3887/ex08-track-delayed-dot-stuffed.server", 1, 1,
	    "example2.com" },
	{ "rfc3887/ex09-track-relayed-failed.server", 1, 1, "example2.com" },
	{ "rfc3887/ex10-track-firewall.server", 1, 2, "smtp.example3.com" },
	{ "rfc3887/ex11-track-firewall-combined.server", 1, 1, "example2.com" },
	{ "rfc3887/ex12-track-firewall-hidden.server", 1, 2, "example2.com" },
	{ "rfc3887/ex13-pipelining-lockstep.server", 1, 1, "example2.com" },
	{ "rfc3887/ex13-pipelining-lockstep.server2", 1, 1, "example2.com" },
	{ "rfc3887/ex14-pipelining-batch.server", 2, 1, "example2.com" },
};

static const char *
fixture_name(const void *row)
{
	return ((const struct fixture_row *)row)->file;
}

static void
check_fixture(
    const struct fixture_row *row, const char *in, size_t len, size_t chunk)
{
	struct mtqp_resp_reader *r = mtqp_resp_reader_new(NULL);
	struct related_part parts[4];
	struct mtqp_resp resp;
	enum related_error err;
	size_t off = 0, nr = 0, n, i, k;
	char want[128];
	int rc;

	snprintf(want, sizeof(want), "Reporting-MTA: dns; %s\r\n", row->mta);
	while (off < len) {
		k = chunk < len - off ? chunk : len - off;
		assert_int_equal(mtqp_resp_reader_push(r, in + off, k), 0);
		off += k;
		while ((rc = mtqp_resp_reader_next(r, &resp)) == 1) {
			nr++;
			assert_int_equal(resp.status, MTQP_OK_MULTI);
			assert_string_equal(
			    resp.text, "Tracking information follows");
			assert_int_equal(related_split_entity(resp.body,
			                     resp.body_len, parts, 4, &n, &err),
			    0);
			assert_int_equal(n, row->nparts);
			for (i = 0; i < n; i++)
				assert_true(parts[i].body_len > 22 &&
				    memcmp(parts[i].body,
				        "Original-Envelope-Id: ", 22) == 0);
			assert_non_null(memmem(parts[n - 1].body,
			    parts[n - 1].body_len, want, strlen(want)));
			/* Each body ends with the CRLF of its last field. */
			assert_memory_equal(
			    parts[n - 1].body + parts[n - 1].body_len - 2,
			    "\r\n", 2);
		}
		assert_int_equal(rc, 0);
	}
	assert_int_equal(nr, row->nresp);
	mtqp_resp_reader_free(r);
}

static void
test_fixture_row(void **state)
{
	const struct fixture_row *row = *state;
	size_t len;
	char *in = golden_read(row->file, &len);

	check_fixture(row, in, len, len);
	check_fixture(row, in, len, 1);
	check_fixture(row, in, len, 7);
	free(in);
}

/* Example #8: the un-stuffed header line reaches the splitter. */
static void
test_fixture_dot(void **state)
{
	struct mtqp_resp_reader *r = mtqp_resp_reader_new(NULL);
	struct mtqp_resp resp;
	const char *v;
	size_t len, vl, hl;
	char *in =
	    golden_read("rfc3887/ex08-track-delayed-dot-stuffed.server", &len);

	(void)state;
	assert_int_equal(mtqp_resp_reader_push(r, in, len), 0);
	assert_int_equal(mtqp_resp_reader_next(r, &resp), 1);
	hl = (size_t)((const char *)memmem(
	                  resp.body, resp.body_len, "\r\n\r\n", 4) -
	         resp.body) +
	    2;
	assert_int_equal(
	    related_header_get(resp.body, hl, ".Dot-Stuffed-Header", &v, &vl),
	    1);
	assert_int_equal(vl, strlen("as an example"));
	free(in);
	mtqp_resp_reader_free(r);
}

int
main(void)
{
	const struct CMUnitTest misc[] = {
		cmocka_unit_test(test_split_limits),
		cmocka_unit_test(test_entity_limits),
		cmocka_unit_test(test_header_get),
		cmocka_unit_test(test_write_golden),
		cmocka_unit_test(test_write_limits),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_fixture_dot),
	};
	int failed = 0;

	failed += TABLE_RUN("split", test_split_row, split_rows, split_name);
	failed +=
	    TABLE_RUN("entity", test_entity_row, entity_rows, entity_name);
	failed += TABLE_RUN("write-bad", test_wbad_row, wbad_rows, wbad_name);
	failed +=
	    TABLE_RUN("fixture", test_fixture_row, fixture_rows, fixture_name);
	failed += cmocka_run_group_tests_name("misc", misc, NULL, NULL);
	return failed;
}
