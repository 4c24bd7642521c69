/*
 * mtqp_cmd: incremental MTQP command parser (RFC 3887 §2.2, §12).  See
 * msgtrk/mtqp.h.
 *
 * Pushed input sits in p->in; mtqp_cmd_next() moves octets into the line
 * being assembled, which never holds more than MTQP_LINE_MAX + 1 octets
 * (the content and its CR), so an over-long line is caught at its 999th
 * content octet and the rest is skipped up to the LF.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/b64.h"
#include "msgtrk/buf.h"
#include "msgtrk/mtqp.h"
#include "msgtrk/str.h"

struct mtqp_cmd_parser {
	struct buf in;
	char line[MTQP_LINE_MAX + 2];
	size_t len;
	int skipping; /* discarding the rest of an over-long line */
	enum mtqp_cmd_error error;
};

struct mtqp_cmd_parser *
mtqp_cmd_parser_new(void)
{
	struct mtqp_cmd_parser *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	buf_init(&p->in, MTQP_CMD_INPUT_MAX);
	return p;
}

void
mtqp_cmd_parser_free(struct mtqp_cmd_parser *p)
{
	if (p == NULL)
		return;
	buf_wipe(&p->in);
	explicit_bzero(p, sizeof(*p));
	free(p);
}

int
mtqp_cmd_push(struct mtqp_cmd_parser *p, const void *data, size_t n)
{
	if (p->in.len + n > MTQP_CMD_INPUT_MAX || buf_add(&p->in, data, n)) {
		p->error = MTQP_CMD_E_INPUT_FULL;
		return -1;
	}
	return 0;
}

enum mtqp_cmd_error
mtqp_cmd_parser_error(const struct mtqp_cmd_parser *p)
{
	return p->error;
}

size_t
mtqp_cmd_parser_pending(const struct mtqp_cmd_parser *p)
{
	return p->in.len;
}

void
mtqp_cmd_parser_discard(struct mtqp_cmd_parser *p)
{
	buf_wipe(&p->in);
	explicit_bzero(p->line, sizeof(p->line));
	p->len = 0;
	p->skipping = 0;
}

void
mtqp_cmd_clear(struct mtqp_cmd *cmd)
{
	explicit_bzero(cmd, sizeof(*cmd));
}

const char *
mtqp_cmd_error_reason(enum mtqp_cmd_error err)
{
	return err == MTQP_CMD_E_DOMAIN ? "bad-fqdn" : NULL;
}

const char *
mtqp_cmd_strerror(enum mtqp_cmd_error err)
{
	switch (err) {
	case MTQP_CMD_E_NONE:
		return "no error";
	case MTQP_CMD_E_LINE_TOO_LONG:
		return "command line too long";
	case MTQP_CMD_E_NUL:
		return "NUL octet in command";
	case MTQP_CMD_E_8BIT:
		return "8-bit octet in command";
	case MTQP_CMD_E_CTRL:
		return "control character in command";
	case MTQP_CMD_E_BARE_CR:
		return "bare CR in command";
	case MTQP_CMD_E_BARE_LF:
		return "command not terminated by CRLF";
	case MTQP_CMD_E_EMPTY:
		return "empty command";
	case MTQP_CMD_E_SYNTAX:
		return "syntax error";
	case MTQP_CMD_E_UNKNOWN_VERB:
		return "unrecognized command";
	case MTQP_CMD_E_ARGS:
		return "wrong number of arguments";
	case MTQP_CMD_E_ENVID:
		return "invalid envelope id";
	case MTQP_CMD_E_SECRET:
		return "invalid secret";
	case MTQP_CMD_E_DOMAIN:
		return "invalid domain name";
	case MTQP_CMD_E_INPUT_FULL:
		return "input buffer full";
	}
	return "unknown error";
}

static int
mtqp_cmd_ishex(int c)
{
	/* RFC 3461 §4: "two upper case hexadecimal digits". */
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static int
mtqp_cmd_hexval(int c)
{
	return c <= '9' ? c - '0' : c - 'A' + 10;
}

int
mtqp_cmd_envid_check(const char *s, size_t n)
{
	size_t i, dlen = 0;
	int at = 0, c;

	/* P8: one optional pair of angle brackets around the envid. */
	if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
		s++;
		n -= 2;
	}
	if (n == 0 || n > 3 * MTQP_ENVID_MAX)
		return -1;
	for (i = 0; i < n; i++, dlen++) {
		c = (unsigned char)s[i];
		if (c == '+') {
			/* RFC 3461 §4 hexchar = "+" HEXDIGIT HEXDIGIT */
			if (n - i < 3 || !mtqp_cmd_ishex(s[i + 1]) ||
			    !mtqp_cmd_ishex(s[i + 2]))
				return -1;
			c = mtqp_cmd_hexval(s[i + 1]) * 16 +
			    mtqp_cmd_hexval(s[i + 2]);
			/* Decoded: printable ASCII or HTAB (MTRK digest). */
			if (c != '\t' && (c < 0x20 || c > 0x7e))
				return -1;
			/* The "@" may be sent as "+40" too: the unique-envid
			 * is checked in its decoded form, as the server
			 * compares it (PRODUCT.md). */
			if (c == '@')
				at = 1;
			i += 2;
			continue;
		}
		/* xchar = %x21-2A / %x2C-3C / %x3E-7E */
		if (c < 0x21 || c > 0x7e || c == '=')
			return -1;
		if (c == '@')
			at = 1;
	}
	/* RFC 3885 §3.2: unique-envid = local-envid "@" fqhn. */
	if (!at || dlen > MTQP_ENVID_MAX)
		return -1;
	return 0;
}

int
mtqp_cmd_secret_check(const char *s, size_t n)
{
	unsigned char a[MTQP_SECRET_OCTETS_MAX + 3];
	int r;

	if (n == 0 || n > MTQP_SECRET_TEXT_MAX)
		return -1;
	r = b64_decode(s, n, B64_PAD_OPTIONAL, a, sizeof(a));
	explicit_bzero(a, sizeof(a));
	if (r < 1 || r > MTQP_SECRET_OCTETS_MAX)
		return -1;
	return 0;
}

static int
mtqp_cmd_letdig(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

int
mtqp_cmd_domain_check(const char *s, size_t n)
{
	size_t i, label = 0, labels = 0;

	if (n == 0 || n > MTQP_DOMAIN_MAX)
		return -1;
	for (i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			/* sub-domain = Let-dig [Ldh-str]: ends in Let-dig */
			if (label == 0 || s[i - 1] == '-')
				return -1;
			labels++;
			label = 0;
			continue;
		}
		if (!mtqp_cmd_letdig((unsigned char)s[i]) &&
		    (s[i] != '-' || label == 0))
			return -1;
		if (++label > MTQP_LABEL_MAX)
			return -1;
	}
	/* domain = sub-domain 1*("." sub-domain) */
	return labels >= 2 ? 0 : -1;
}

static int
mtqp_cmd_iswsp(int c)
{
	return c == ' ' || c == '\t';
}

/* Copies the token [s, s + n) into dst (size dstsize); -1 if too long. */
static int
mtqp_cmd_copy(char *dst, size_t dstsize, const char *s, size_t n)
{
	if (n >= dstsize)
		return -1;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

/* Splits at most max tokens separated by WSP runs out of s (n octets,
 * starting with a non-WSP).  Returns the number of tokens, max + 1 if
 * there are more, and sets *trailing when s ends in WSP. */
static size_t
mtqp_cmd_split(const char *s, size_t n, const char **tok, size_t *toklen,
    size_t max, int *trailing)
{
	size_t i = 0, nt = 0, st;

	*trailing = 0;
	while (i < n) {
		st = i;
		while (i < n && !mtqp_cmd_iswsp((unsigned char)s[i]))
			i++;
		if (nt == max)
			return max + 1;
		tok[nt] = s + st;
		toklen[nt++] = i - st;
		while (i < n && mtqp_cmd_iswsp((unsigned char)s[i]))
			i++;
		if (i == n && mtqp_cmd_iswsp((unsigned char)s[n - 1]))
			*trailing = 1;
	}
	return nt;
}

/* Parses one complete line (len octets before the LF). */
static enum mtqp_cmd_error
mtqp_cmd_parse(const char *line, size_t len, struct mtqp_cmd *cmd)
{
	const char *tok[4];
	size_t toklen[4], i, nt, vlen;
	int c, trailing;

	/* Character checks first, in line order, so the error does not
	 * depend on how the line arrived (§2.2: printable ASCII). */
	for (i = 0; i < len; i++) {
		c = (unsigned char)line[i];
		if (c == '\0')
			return MTQP_CMD_E_NUL;
		if (c >= 0x80)
			return MTQP_CMD_E_8BIT;
		if (c == '\r' && i + 1 < len)
			return MTQP_CMD_E_BARE_CR;
		if (c != '\r' && c != '\t' && (c < 0x20 || c == 0x7f))
			return MTQP_CMD_E_CTRL;
	}
	/* §2.2 "All commands are terminated by a CRLF pair"; P6: a bare
	 * LF rejects the line. */
	if (len == 0 || line[len - 1] != '\r')
		return MTQP_CMD_E_BARE_LF;
	len--;
	if (len == 0)
		return MTQP_CMD_E_EMPTY;
	if (mtqp_cmd_iswsp((unsigned char)line[0]))
		return MTQP_CMD_E_SYNTAX;

	for (vlen = 0; vlen < len && !mtqp_cmd_iswsp((unsigned char)line[vlen]);
	     vlen++)
		;
	/* §2.2: "a case-insensitive keyword". */
	if (vlen == 7 && str_ncasecmp(line, "COMMENT", 7) == 0) {
		/* comment-command = "COMMENT" opt-text CRLF;
		 * opt-text = [WSP *(VCHAR / WSP)] */
		cmd->verb = MTQP_CMD_COMMENT;
		if (vlen < len)
			(void)mtqp_cmd_copy(cmd->text, sizeof(cmd->text),
			    line + vlen + 1, len - vlen - 1);
		return MTQP_CMD_E_NONE;
	}
	nt = mtqp_cmd_split(line, len, tok, toklen, 3, &trailing);
	if (vlen == 4 && str_ncasecmp(line, "QUIT", 4) == 0) {
		/* quit-command = "QUIT" CRLF */
		if (nt != 1)
			return MTQP_CMD_E_ARGS;
		if (trailing)
			return MTQP_CMD_E_SYNTAX;
		cmd->verb = MTQP_CMD_QUIT;
		return MTQP_CMD_E_NONE;
	}
	if (vlen == 5 && str_ncasecmp(line, "TRACK", 5) == 0) {
		/* track-command = "TRACK" 1*WSP unique-envid 1*WSP
		 * mtrk-secret CRLF */
		if (nt != 3)
			return MTQP_CMD_E_ARGS;
		if (trailing)
			return MTQP_CMD_E_SYNTAX;
		if (mtqp_cmd_envid_check(tok[1], toklen[1]) == -1 ||
		    mtqp_cmd_copy(cmd->envid, sizeof(cmd->envid), tok[1],
		        toklen[1]) == -1)
			return MTQP_CMD_E_ENVID;
		if (mtqp_cmd_secret_check(tok[2], toklen[2]) == -1 ||
		    mtqp_cmd_copy(cmd->secret, sizeof(cmd->secret), tok[2],
		        toklen[2]) == -1) {
			explicit_bzero(cmd->envid, sizeof(cmd->envid));
			return MTQP_CMD_E_SECRET;
		}
		cmd->envid_bracketed = toklen[1] >= 2 && tok[1][0] == '<' &&
		    tok[1][toklen[1] - 1] == '>';
		cmd->verb = MTQP_CMD_TRACK;
		return MTQP_CMD_E_NONE;
	}
	if (vlen == 8 && str_ncasecmp(line, "STARTTLS", 8) == 0) {
		/* starttls-command = "STARTTLS" 1*WSP domain *WSP CRLF */
		if (nt != 2)
			return MTQP_CMD_E_ARGS;
		if (mtqp_cmd_domain_check(tok[1], toklen[1]) == -1 ||
		    mtqp_cmd_copy(cmd->domain, sizeof(cmd->domain), tok[1],
		        toklen[1]) == -1)
			return MTQP_CMD_E_DOMAIN;
		cmd->verb = MTQP_CMD_STARTTLS;
		return MTQP_CMD_E_NONE;
	}
	return MTQP_CMD_E_UNKNOWN_VERB;
}

int
mtqp_cmd_next(struct mtqp_cmd_parser *p, struct mtqp_cmd *cmd)
{
	enum mtqp_cmd_error err;
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
			p->line[p->len++] = (char)c;
			/* §2.2: at most 998 octets before the CRLF.  The
			 * 999th may only be the CR. */
			if (p->len > MTQP_LINE_MAX + 1 ||
			    (p->len == MTQP_LINE_MAX + 1 && c != '\r')) {
				explicit_bzero(p->line, sizeof(p->line));
				p->len = 0;
				p->skipping = 1;
				buf_consume(&p->in, i + 1);
				p->error = MTQP_CMD_E_LINE_TOO_LONG;
				return -1;
			}
			continue;
		}
		buf_consume(&p->in, i + 1);
		mtqp_cmd_clear(cmd);
		err = mtqp_cmd_parse(p->line, p->len, cmd);
		explicit_bzero(p->line, p->len);
		p->len = 0;
		if (err != MTQP_CMD_E_NONE) {
			mtqp_cmd_clear(cmd);
			p->error = err;
			return -1;
		}
		cmd->pending = p->in.len;
		p->error = MTQP_CMD_E_NONE;
		return 1;
	}
	/* All consumed: wipe (it may have held a secret), keep storage. */
	if (p->in.data != NULL)
		explicit_bzero(p->in.data, p->in.len);
	buf_clear(&p->in);
	return 0;
}
