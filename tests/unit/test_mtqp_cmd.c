/*
 * test_mtqp_cmd: the MTQP command parser (RFC 3887 §2.2, §12).
 *
 * Each row is fed whole, one byte at a time, and split at every position;
 * the outputs are rendered as one string ("TRACK envid secret|!E_ARGS|...")
 * that must be identical in every case.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/buf.h"
#include "msgtrk/mtqp.h"
#include "table.h"

static const char *const errnames[] = {
	[MTQP_CMD_E_NONE] = "E_NONE",
	[MTQP_CMD_E_LINE_TOO_LONG] = "E_LINE_TOO_LONG",
	[MTQP_CMD_E_NUL] = "E_NUL",
	[MTQP_CMD_E_8BIT] = "E_8BIT",
	[MTQP_CMD_E_CTRL] = "E_CTRL",
	[MTQP_CMD_E_BARE_CR] = "E_BARE_CR",
	[MTQP_CMD_E_BARE_LF] = "E_BARE_LF",
	[MTQP_CMD_E_EMPTY] = "E_EMPTY",
	[MTQP_CMD_E_SYNTAX] = "E_SYNTAX",
	[MTQP_CMD_E_UNKNOWN_VERB] = "E_UNKNOWN_VERB",
	[MTQP_CMD_E_ARGS] = "E_ARGS",
	[MTQP_CMD_E_ENVID] = "E_ENVID",
	[MTQP_CMD_E_SECRET] = "E_SECRET",
	[MTQP_CMD_E_DOMAIN] = "E_DOMAIN",
	[MTQP_CMD_E_INPUT_FULL] = "E_INPUT_FULL",
};

/* Feeds the len bytes at in, cut at the ncuts offsets, and renders every
 * result into out as "TRACK envid secret|!E_ARGS|...". */
static void
render(const void *ctx, const char *in, size_t len, const size_t *cuts,
    size_t ncuts, struct buf *out)
{
	struct mtqp_cmd_parser *p = mtqp_cmd_parser_new();
	struct mtqp_cmd cmd;
	size_t off = 0, i, end;
	int r;

	(void)ctx;
	assert_non_null(p);
	buf_clear(out);
	for (i = 0; i <= ncuts; i++) {
		end = i < ncuts ? cuts[i] : len;
		if (end < off)
			end = off;
		assert_int_equal(mtqp_cmd_push(p, in + off, end - off), 0);
		off = end;
		while ((r = mtqp_cmd_next(p, &cmd)) != 0) {
			if (out->len > 0)
				buf_addc(out, '|');
			if (r == -1)
				buf_addf(out, "!%s",
				    errnames[mtqp_cmd_parser_error(p)]);
			else if (cmd.verb == MTQP_CMD_TRACK)
				buf_addf(out, "TRACK %s %s%s", cmd.envid,
				    cmd.secret,
				    cmd.envid_bracketed ? " <>" : "");
			else if (cmd.verb == MTQP_CMD_COMMENT)
				buf_addf(out, "COMMENT [%s]", cmd.text);
			else if (cmd.verb == MTQP_CMD_STARTTLS)
				buf_addf(out, "STARTTLS %s", cmd.domain);
			else if (cmd.verb == MTQP_CMD_QUIT)
				buf_adds(out, "QUIT");
			else
				fail_msg("bad verb");
		}
	}
	assert_int_equal(mtqp_cmd_parser_pending(p), 0);
	mtqp_cmd_parser_free(p);
}

struct cmd_row {
	const char *name;
	const char *in;
	size_t len; /* 0: strlen(in) */
	const char *want;
};

#define S "AAECAwQFBgcICQoLDA0ODxAR"

static const struct cmd_row cmd_rows[] = {
	/* TRACK */
	{ "track", "TRACK a@b.example " S "\r\n", 0, "TRACK a@b.example " S },
	{ "track lower", "track a@b " S "\r\n", 0, "TRACK a@b " S },
	{ "track mixed case", "TrAcK a@b " S "\r\n", 0, "TRACK a@b " S },
	{ "track tabs", "TRACK\ta@b\t\t" S "\r\n", 0, "TRACK a@b " S },
	{ "track many spaces", "TRACK    a@b    " S "\r\n", 0, "TRACK a@b " S },
	{ "track brackets P8", "TRACK <12345-20010101@example.com> " S "\r\n",
	    0, "TRACK <12345-20010101@example.com> " S " <>" },
	{ "track rfc example secret", "TRACK <a@b> YWJjZGVmZ2gK\r\n", 0,
	    "TRACK <a@b> YWJjZGVmZ2gK <>" },
	{ "track padded secret", "TRACK a@b YWJjZGVmZ2g=\r\n", 0,
	    "TRACK a@b YWJjZGVmZ2g=" },
	{ "track unpadded secret", "TRACK a@b YWJjZGVmZ2g\r\n", 0,
	    "TRACK a@b YWJjZGVmZ2g" },
	{ "track padded 2", "TRACK a@b YWJjZGVmZw==\r\n", 0,
	    "TRACK a@b YWJjZGVmZw==" },
	{ "track bad pad", "TRACK a@b YWJjZGVmZw=\r\n", 0, "!E_SECRET" },
	{ "track secret bad char", "TRACK a@b YWJj*GVm\r\n", 0, "!E_SECRET" },
	{ "track secret len mod 4 1", "TRACK a@b YWJjZ\r\n", 0, "!E_SECRET" },
	{ "track secret noncanonical", "TRACK a@b YWJjZGVmZ2h\r\n", 0,
	    "!E_SECRET" },
	{ "track xtext", "TRACK a+2Bb@c+3Dd " S "\r\n", 0,
	    "TRACK a+2Bb@c+3Dd " S },
	{ "track xtext lower hex", "TRACK a+2bb@c " S "\r\n", 0, "!E_ENVID" },
	{ "track xtext short", "TRACK a@c+2 " S "\r\n", 0, "!E_ENVID" },
	{ "track xtext ctl", "TRACK a+0A@c " S "\r\n", 0, "!E_ENVID" },
	{ "track xtext htab ok", "TRACK a+09@c " S "\r\n", 0,
	    "TRACK a+09@c " S },
	/* PRODUCT.md: TRACK takes the envid as sent in ENVID= (xtext); the
	 * "@" may be "+40" there. */
	{ "track xtext at", "TRACK QQ314159+40client.example.org " S "\r\n", 0,
	    "TRACK QQ314159+40client.example.org " S },
	{ "track xtext at bracketed",
	    "TRACK <QQ314159+40client.example.org> " S "\r\n", 0,
	    "TRACK <QQ314159+40client.example.org> " S " <>" },
	{ "track xtext at short", "TRACK a+4 " S "\r\n", 0, "!E_ENVID" },
	{ "track xtext 4 0 not at", "TRACK a+34+30b " S "\r\n", 0, "!E_ENVID" },
	{ "track envid equals", "TRACK a=b@c " S "\r\n", 0, "!E_ENVID" },
	{ "track envid no at", "TRACK abc " S "\r\n", 0, "!E_ENVID" },
	{ "track envid brackets only", "TRACK <> " S "\r\n", 0, "!E_ENVID" },
	{ "track envid empty brackets no at", "TRACK <ab> " S "\r\n", 0,
	    "!E_ENVID" },
	{ "track one arg", "TRACK a@b\r\n", 0, "!E_ARGS" },
	{ "track no arg", "TRACK\r\n", 0, "!E_ARGS" },
	{ "track three args", "TRACK a@b " S " x\r\n", 0, "!E_ARGS" },
	{ "track trailing space", "TRACK a@b " S " \r\n", 0, "!E_SYNTAX" },
	{ "track secret 128 octets",
	    "TRACK a@b "
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\r\n",
	    0,
	    "TRACK a@b "
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==" },
	{ "track secret 129 octets",
	    "TRACK a@b "
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n",
	    0, "!E_SECRET" },
	/* COMMENT */
	{ "comment", "COMMENT hello world\r\n", 0, "COMMENT [hello world]" },
	{ "comment bare", "COMMENT\r\n", 0, "COMMENT []" },
	{ "comment lower", "comment x\r\n", 0, "COMMENT [x]" },
	{ "comment tab", "COMMENT\tx\r\n", 0, "COMMENT [x]" },
	{ "comment extra ws kept", "COMMENT   x  \r\n", 0, "COMMENT [  x  ]" },
	{ "comment one space", "COMMENT \r\n", 0, "COMMENT []" },
	{ "commentx", "COMMENTX\r\n", 0, "!E_UNKNOWN_VERB" },
	{ "comment 8bit", "COMMENT caf\xc3\xa9\r\n", 0, "!E_8BIT" },
	{ "comment ctl", "COMMENT a\x01z\r\n", 0, "!E_CTRL" },
	{ "comment del", "COMMENT a\x7fz\r\n", 0, "!E_CTRL" },
	/* STARTTLS */
	{ "starttls", "STARTTLS mtqp.example.com\r\n", 0,
	    "STARTTLS mtqp.example.com" },
	{ "starttls trailing ws", "STARTTLS a.example \t \r\n", 0,
	    "STARTTLS a.example" },
	{ "starttls lower", "starttls a.b\r\n", 0, "STARTTLS a.b" },
	{ "starttls digits hyphen", "STARTTLS 1a-b.c0\r\n", 0,
	    "STARTTLS 1a-b.c0" },
	{ "starttls single label", "STARTTLS localhost\r\n", 0, "!E_DOMAIN" },
	{ "starttls trailing dot", "STARTTLS a.example.\r\n", 0, "!E_DOMAIN" },
	{ "starttls leading hyphen", "STARTTLS -a.example\r\n", 0,
	    "!E_DOMAIN" },
	{ "starttls trailing hyphen", "STARTTLS a-.example\r\n", 0,
	    "!E_DOMAIN" },
	{ "starttls empty label", "STARTTLS a..example\r\n", 0, "!E_DOMAIN" },
	{ "starttls underscore", "STARTTLS a_b.example\r\n", 0, "!E_DOMAIN" },
	{ "starttls label 63",
	    "STARTTLS "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	    "b\r\n",
	    0,
	    "STARTTLS "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	    "b" },
	{ "starttls label 64",
	    "STARTTLS "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	    "b\r\n",
	    0, "!E_DOMAIN" },
	{ "starttls no arg", "STARTTLS\r\n", 0, "!E_ARGS" },
	{ "starttls two args", "STARTTLS a.b c.d\r\n", 0, "!E_ARGS" },
	/* QUIT */
	{ "quit", "QUIT\r\n", 0, "QUIT" },
	{ "quit lower", "quit\r\n", 0, "QUIT" },
	{ "quit arg", "QUIT now\r\n", 0, "!E_ARGS" },
	{ "quit trailing space", "QUIT \r\n", 0, "!E_SYNTAX" },
	/* Line level */
	{ "empty line", "\r\n", 0, "!E_EMPTY" },
	{ "leading space", " QUIT\r\n", 0, "!E_SYNTAX" },
	{ "only spaces", "   \r\n", 0, "!E_SYNTAX" },
	{ "unknown verb", "HELO x\r\n", 0, "!E_UNKNOWN_VERB" },
	{ "verb prefix", "TRAC a@b " S "\r\n", 0, "!E_UNKNOWN_VERB" },
	{ "bare lf", "QUIT\n", 0, "!E_BARE_LF" },
	{ "bare lf empty", "\n", 0, "!E_BARE_LF" },
	{ "bare cr inside", "QU\rIT\r\n", 0, "!E_BARE_CR" },
	{ "cr cr lf", "QUIT\r\r\n", 0, "!E_BARE_CR" },
	{ "nul", "QU\0IT\r\n", 7, "!E_NUL" },
	{ "nul before 8bit", "\0\xff\r\n", 4, "!E_NUL" },
	{ "8bit before nul", "\xff\0\r\n", 4, "!E_8BIT" },
	{ "no newline yet", "QUIT", 0, "" },
	{ "cr only yet", "QUIT\r", 0, "" },
	/* Pipelining: order kept, errors do not stop later lines. */
	{ "pipeline", "COMMENT a\r\nTRACK a@b " S "\r\nQUIT\r\n", 0,
	    "COMMENT [a]|TRACK a@b " S "|QUIT" },
	{ "pipeline error middle", "QUIT\r\nBOGUS\r\nQUIT\r\n", 0,
	    "QUIT|!E_UNKNOWN_VERB|QUIT" },
	{ "pipeline bare lf then ok", "QUIT\nQUIT\r\n", 0, "!E_BARE_LF|QUIT" },
	{ "starttls then plaintext",
	    "STARTTLS a.example\r\nTRACK a@b " S "\r\n", 0,
	    "STARTTLS a.example|TRACK a@b " S },
};

static const char *
cmd_name(const void *row)
{
	return ((const struct cmd_row *)row)->name;
}

static void
test_cmd_row(void **state)
{
	const struct cmd_row *row = *state;

	table_check_splits(render, NULL, row->in,
	    row->len ? row->len : strlen(row->in), row->want);
}

/* Lines of exactly 998 octets, 999, and longer, with every error found
 * before the line ends (§2.2). */
struct long_row {
	const char *name;
	size_t content; /* octets before CRLF */
	const char *tail; /* appended after the content */
	const char *want;
};

static const struct long_row long_rows[] = {
	{ "comment 998", 998, "\r\n", "COMMENT" },
	{ "comment 999", 999, "\r\n", "!E_LINE_TOO_LONG" },
	{ "comment 1000", 1000, "\r\n", "!E_LINE_TOO_LONG" },
	{ "comment 5000", 5000, "\r\n", "!E_LINE_TOO_LONG" },
	{ "998 then next line", 998, "\r\nQUIT\r\n", "COMMENT|QUIT" },
	{ "999 then next line", 999, "\r\nQUIT\r\n", "!E_LINE_TOO_LONG|QUIT" },
	{ "998 with bare cr", 998, "\rx\r\nQUIT\r\n", "!E_LINE_TOO_LONG|QUIT" },
	{ "998 bare lf", 998, "\nQUIT\r\n", "!E_BARE_LF|QUIT" },
	{ "long, no end yet", 3000, "", "!E_LINE_TOO_LONG" },
};

static const char *
long_name(const void *row)
{
	return ((const struct long_row *)row)->name;
}

static void
render_long(const char *in, size_t len, size_t chunk, char *out, size_t outsize)
{
	struct mtqp_cmd_parser *p = mtqp_cmd_parser_new();
	struct mtqp_cmd cmd;
	size_t off, n, o = 0;
	int r;

	out[0] = '\0';
	for (off = 0; off < len; off += n) {
		n = chunk < len - off ? chunk : len - off;
		assert_int_equal(mtqp_cmd_push(p, in + off, n), 0);
		while ((r = mtqp_cmd_next(p, &cmd)) != 0)
			o += (size_t)snprintf(out + o, outsize - o, "%s%s",
			    o ? "|" : "",
			    r == -1 ? "!E_LINE_TOO_LONG"
			        : cmd.verb == MTQP_CMD_COMMENT ? "COMMENT"
			        : cmd.verb == MTQP_CMD_QUIT    ? "QUIT"
			                                       : "?");
		if (r == -1 &&
		    mtqp_cmd_parser_error(p) != MTQP_CMD_E_LINE_TOO_LONG)
			fail_msg("unexpected error");
	}
	mtqp_cmd_parser_free(p);
}

static void
test_long_row(void **state)
{
	const struct long_row *row = *state;
	size_t tl = strlen(row->tail), len = row->content + tl;
	char *in = malloc(len + 1), out[256];
	size_t chunks[] = { len, 1, 7, 998, 999, 1000 }, i;

	assert_non_null(in);
	memcpy(in, "COMMENT ", 8);
	memset(in + 8, 'x', row->content - 8);
	memcpy(in + row->content, row->tail, tl);
	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		render_long(in, len, chunks[i], out, sizeof(out));
		/* Distinguish the two error kinds in the rendering. */
		if (strstr(row->want, "E_BARE_LF") != NULL) {
			struct mtqp_cmd_parser *p = mtqp_cmd_parser_new();
			struct mtqp_cmd cmd;

			assert_int_equal(mtqp_cmd_push(p, in, len), 0);
			assert_int_equal(mtqp_cmd_next(p, &cmd), -1);
			assert_int_equal(
			    mtqp_cmd_parser_error(p), MTQP_CMD_E_BARE_LF);
			assert_int_equal(mtqp_cmd_next(p, &cmd), 1);
			mtqp_cmd_parser_free(p);
			continue;
		}
		assert_string_equal(out, row->want);
	}
	free(in);
}

/* The over-long line is reported before its end arrives. */
static void
test_long_early(void **state)
{
	struct mtqp_cmd_parser *p = mtqp_cmd_parser_new();
	struct mtqp_cmd cmd;
	char line[999];

	(void)state;
	memset(line, 'A', sizeof(line));
	assert_int_equal(mtqp_cmd_push(p, line, 998), 0);
	assert_int_equal(mtqp_cmd_next(p, &cmd), 0);
	assert_int_equal(mtqp_cmd_push(p, line, 1), 0);
	assert_int_equal(mtqp_cmd_next(p, &cmd), -1);
	assert_int_equal(mtqp_cmd_parser_error(p), MTQP_CMD_E_LINE_TOO_LONG);
	/* The rest is skipped silently up to the LF. */
	assert_int_equal(mtqp_cmd_push(p, line, sizeof(line)), 0);
	assert_int_equal(mtqp_cmd_next(p, &cmd), 0);
	assert_int_equal(mtqp_cmd_push(p, "\r\nQUIT\r\n", 8), 0);
	assert_int_equal(mtqp_cmd_next(p, &cmd), 1);
	assert_int_equal(cmd.verb, MTQP_CMD_QUIT);
	mtqp_cmd_parser_free(p);
}

/* Plaintext pipelined behind STARTTLS is visible and can be dropped. */
static void
test_starttls_pending(void **state)
{
	static const char in[] = "STARTTLS a.example\r\nTRACK a@b " S "\r\n";
	struct mtqp_cmd_parser *p = mtqp_cmd_parser_new();
	struct mtqp_cmd cmd;

	(void)state;
	assert_int_equal(mtqp_cmd_push(p, in, sizeof(in) - 1), 0);
	assert_int_equal(mtqp_cmd_next(p, &cmd), 1);
	assert_int_equal(cmd.verb, MTQP_CMD_STARTTLS);
	assert_int_equal(cmd.pending, strlen("TRACK a@b " S "\r\n"));
	assert_int_equal(mtqp_cmd_parser_pending(p), cmd.pending);
	mtqp_cmd_parser_discard(p);
	assert_int_equal(mtqp_cmd_parser_pending(p), 0);
	assert_int_equal(mtqp_cmd_next(p, &cmd), 0);
	/* A partial line behind STARTTLS is dropped too. */
	assert_int_equal(mtqp_cmd_push(p, "STARTTLS a.b\r\nQU", 16), 0);
	assert_int_equal(mtqp_cmd_next(p, &cmd), 1);
	assert_int_equal(cmd.pending, 2);
	assert_int_equal(mtqp_cmd_next(p, &cmd), 0);
	mtqp_cmd_parser_discard(p);
	assert_int_equal(mtqp_cmd_push(p, "IT\r\n", 4), 0);
	assert_int_equal(mtqp_cmd_next(p, &cmd), -1);
	assert_int_equal(mtqp_cmd_parser_error(p), MTQP_CMD_E_UNKNOWN_VERB);
	/* Alone: nothing pending. */
	assert_int_equal(mtqp_cmd_push(p, "STARTTLS a.b\r\n", 14), 0);
	assert_int_equal(mtqp_cmd_next(p, &cmd), 1);
	assert_int_equal(cmd.pending, 0);
	mtqp_cmd_parser_free(p);
}

static void
test_input_full(void **state)
{
	struct mtqp_cmd_parser *p = mtqp_cmd_parser_new();
	struct mtqp_cmd cmd;
	char *big = malloc(MTQP_CMD_INPUT_MAX + 1);
	size_t i, n = 0;
	int r;

	(void)state;
	for (i = 0; i + 6 <= MTQP_CMD_INPUT_MAX; i += 6)
		memcpy(big + i, "QUIT\r\n", 6);
	assert_int_equal(mtqp_cmd_push(p, big, i), 0);
	assert_int_equal(mtqp_cmd_push(p, big, 7), -1);
	assert_int_equal(mtqp_cmd_parser_error(p), MTQP_CMD_E_INPUT_FULL);
	while ((r = mtqp_cmd_next(p, &cmd)) == 1)
		n++;
	assert_int_equal(r, 0);
	assert_int_equal(n, i / 6);
	assert_int_equal(mtqp_cmd_push(p, big, 6), 0);
	assert_int_equal(mtqp_cmd_next(p, &cmd), 1);
	free(big);
	mtqp_cmd_parser_free(p);
	mtqp_cmd_parser_free(NULL);
}

struct check_row {
	const char *name;
	int (*fn)(const char *, size_t);
	const char *in;
	int want;
};

#define E mtqp_cmd_envid_check
#define K mtqp_cmd_secret_check
#define D mtqp_cmd_domain_check
#define X10 "xxxxxxxxxx"
#define X50 X10 X10 X10 X10 X10
#define L63 X50 X10 "xxx"

static const struct check_row check_rows[] = {
	{ "envid simple", E, "a@b", 0 },
	{ "envid empty", E, "", -1 },
	{ "envid no at", E, "ab", -1 },
	{ "envid at only", E, "@", 0 },
	{ "envid brackets", E, "<a@b>", 0 },
	{ "envid one bracket", E, "<a@b", 0 },
	{ "envid 100", E, X50 "@" X10 X10 X10 X10 "xxxxxxxxx", 0 },
	{ "envid 101", E, X50 "@" X50, -1 },
	{ "envid 100 bracketed", E, "<" X50 "@" X10 X10 X10 X10 "xxxxxxxxx>",
	    0 },
	{ "envid 100 hex", E,
	    "+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41"
	    "+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41"
	    "+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41"
	    "+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41"
	    "+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41+41@",
	    0 },
	{ "envid space", E, "a b@c", -1 },
	{ "envid plus end", E, "a@b+", -1 },
	{ "envid plus 7F", E, "a@b+7F", -1 },
	{ "envid plus 20", E, "a@b+20", 0 },
	{ "envid 8bit", E, "a@b\xc3\xa9", -1 },
	{ "envid xtext at", E, "QQ314159+40client.example.org", 0 },
	{ "envid xtext at only", E, "+40", 0 },
	{ "envid xtext at bracketed", E, "<a+40b>", 0 },
	{ "envid xtext at 101", E, X50 "+40" X50, -1 },
	{ "envid xtext plus 4", E, "a+4", -1 },
	{ "secret ok", K, S, 0 },
	{ "secret empty", K, "", -1 },
	{ "secret one octet padded", K, "AA==", 0 },
	{ "secret one octet", K, "AA", 0 },
	{ "secret space", K, "AA AA", -1 },
	{ "secret equals inside", K, "AA=A", -1 },
	{ "domain ok", D, "a.b", 0 },
	{ "domain one label", D, "ab", -1 },
	{ "domain empty", D, "", -1 },
	{ "domain dot", D, ".", -1 },
	{ "domain leading dot", D, ".a.b", -1 },
	{ "domain 255", D, L63 "." L63 "." L63 "." L63, 0 },
	{ "domain 256", D, L63 "." L63 "." L63 "." X50 X10 "xx.x", -1 },
};

static const char *
check_name(const void *row)
{
	return ((const struct check_row *)row)->name;
}

static void
test_check_row(void **state)
{
	const struct check_row *row = *state;

	assert_int_equal(row->fn(row->in, strlen(row->in)), row->want);
}

/* Reason codes and texts for every error. */
static void
test_errors(void **state)
{
	int e;

	(void)state;
	for (e = MTQP_CMD_E_NONE; e <= MTQP_CMD_E_INPUT_FULL; e++) {
		assert_non_null(mtqp_cmd_strerror(e));
		if (e == MTQP_CMD_E_DOMAIN)
			assert_string_equal(
			    mtqp_cmd_error_reason(e), "bad-fqdn");
		else
			assert_null(mtqp_cmd_error_reason(e));
	}
	assert_string_equal(
	    mtqp_cmd_strerror((enum mtqp_cmd_error)99), "unknown error");
}

/* The RFC 3887 examples (tests/golden/rfc3887/, client side). */
struct fixture_row {
	const char *file;
	const char *want;
};

#define EX_TRACK "TRACK 12345-20010101@example.com " S

static const struct fixture_row fixture_rows[] = {
	{ "rfc3887/ex06-track-delivered.client", EX_TRACK },
	{ "rfc3887/ex07-track-transferred.client", EX_TRACK },
	{ "rfc3887/ex08-track-delayed-dot-stuffed.client", EX_TRACK },
	{ "rfc3887/ex09-track-relayed-failed.client", EX_TRACK },
	{ "rfc3887/ex10-track-firewall.client", EX_TRACK },
	{ "rfc3887/ex11-track-firewall-combined.client", EX_TRACK },
	{ "rfc3887/ex12-track-firewall-hidden.client", EX_TRACK },
	{ "rfc3887/ex13-pipelining-lockstep.client",
	    "TRACK tracking-id@example.com " S },
	{ "rfc3887/ex13-pipelining-lockstep.client2",
	    "TRACK tracking-id-2@example.com EhMUFRYXGBkaGxwdHh8gISIj" },
	{ "rfc3887/ex14-pipelining-batch.client",
	    "TRACK tracking-id@example.com " S
	    "|TRACK tracking-id-2@example.com EhMUFRYXGBkaGxwdHh8gISIj" },
};

static const char *
fixture_name(const void *row)
{
	return ((const struct fixture_row *)row)->file;
}

static void
test_fixture_row(void **state)
{
	const struct fixture_row *row = *state;
	size_t len;
	char *in = golden_read(row->file, &len);

	table_check_splits(render, NULL, in, len, row->want);
	free(in);
}

int
main(void)
{
	const struct CMUnitTest misc[] = {
		cmocka_unit_test(test_long_early),
		cmocka_unit_test(test_starttls_pending),
		cmocka_unit_test(test_input_full),
		cmocka_unit_test(test_errors),
	};
	int failed = 0;

	failed += TABLE_RUN("cmd", test_cmd_row, cmd_rows, cmd_name);
	failed += TABLE_RUN("long", test_long_row, long_rows, long_name);
	failed += TABLE_RUN("check", test_check_row, check_rows, check_name);
	failed +=
	    TABLE_RUN("fixture", test_fixture_row, fixture_rows, fixture_name);
	failed += cmocka_run_group_tests_name("misc", misc, NULL, NULL);
	return failed;
}
