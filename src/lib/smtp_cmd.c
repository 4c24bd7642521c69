/*
 * smtp_cmd: one SMTP command line.  See msgtrk/smtp_cmd.h.
 *
 * The whole line is in memory and bounded (the caller's line reader holds
 * at most SMTP_CMD_LINE_MAX_MAILRCPT octets), so this parser is not
 * incremental; it only ever looks inside [line, line + len).
 */
#include <arpa/inet.h>
#include <string.h>

#include "msgtrk/envid.h"
#include "msgtrk/mtrk.h"
#include "msgtrk/smtp_cmd.h"
#include "msgtrk/str.h"
#include "msgtrk/xtext.h"

static const struct smtp_reply smtp_replies[SMTP_CMD_ERR_COUNT] = {
	[SMTP_CMD_ERR_LINE_TOO_LONG] = { 500, "5.5.2", "Line too long",
	    "line-too-long" },
	[SMTP_CMD_ERR_NUL] = { 501, "5.5.2", "NUL character in command",
	    "nul" },
	[SMTP_CMD_ERR_BAD_CHAR] = { 501, "5.5.2",
	    "Invalid character in command", "bad-char" },
	[SMTP_CMD_ERR_UNKNOWN_VERB] = { 500, "5.5.1", "Command unrecognized",
	    "unknown-verb" },
	[SMTP_CMD_ERR_ARG_MISSING] = { 501, "5.5.4", "Argument required",
	    "arg-missing" },
	[SMTP_CMD_ERR_ARG_UNEXPECTED] = { 501, "5.5.4", "No arguments allowed",
	    "arg-unexpected" },
	[SMTP_CMD_ERR_MAIL_SYNTAX] = { 501, "5.5.2",
	    "Syntax: MAIL FROM:<address>", "mail-syntax" },
	[SMTP_CMD_ERR_RCPT_SYNTAX] = { 501, "5.5.2",
	    "Syntax: RCPT TO:<address>", "rcpt-syntax" },
	[SMTP_CMD_ERR_SENDER_SYNTAX] = { 553, "5.1.7",
	    "Bad sender address syntax", "sender-syntax" },
	[SMTP_CMD_ERR_SENDER_TOO_LONG] = { 501, "5.1.7",
	    "Sender address too long", "sender-too-long" },
	[SMTP_CMD_ERR_RCPT_ADDR_SYNTAX] = { 553, "5.1.3",
	    "Bad recipient address syntax", "rcpt-addr-syntax" },
	[SMTP_CMD_ERR_RCPT_NULL] = { 553, "5.1.3",
	    "Null recipient address not allowed", "rcpt-null" },
	[SMTP_CMD_ERR_RCPT_TOO_LONG] = { 501, "5.1.3",
	    "Recipient address too long", "rcpt-too-long" },
	[SMTP_CMD_ERR_PARAM_SYNTAX] = { 501, "5.5.4",
	    "Invalid parameter syntax", "param-syntax" },
	[SMTP_CMD_ERR_PARAM_UNKNOWN] = { 555, "5.5.4", "Unsupported parameter",
	    "param-unknown" },
	[SMTP_CMD_ERR_PARAM_NOT_ADVERTISED] = { 555, "5.5.4",
	    "Unsupported parameter", "param-not-advertised" },
	[SMTP_CMD_ERR_PARAM_DUPLICATE] = { 501, "5.5.4", "Duplicate parameter",
	    "param-duplicate" },
	[SMTP_CMD_ERR_SIZE_INVALID] = { 501, "5.5.4", "Invalid SIZE parameter",
	    "size-invalid" },
	[SMTP_CMD_ERR_BODY_INVALID] = { 501, "5.5.4", "Invalid BODY parameter",
	    "body-invalid" },
	[SMTP_CMD_ERR_RET_INVALID] = { 501, "5.5.4", "Invalid RET parameter",
	    "ret-invalid" },
	[SMTP_CMD_ERR_ENVID_INVALID] = { 501, "5.5.4",
	    "Invalid ENVID parameter", "envid-invalid" },
	[SMTP_CMD_ERR_MTRK_INVALID] = { 501, "5.5.4", "Invalid MTRK parameter",
	    "mtrk-invalid" },
	[SMTP_CMD_ERR_MTRK_NO_ENVID] = { 501, "5.5.4", "MTRK requires ENVID",
	    "mtrk-no-envid" },
	[SMTP_CMD_ERR_MTRK_ENVID_FORM] = { 501, "5.5.4",
	    "MTRK requires ENVID in unique-envid form", "mtrk-envid-form" },
	[SMTP_CMD_ERR_NOTIFY_INVALID] = { 501, "5.5.4",
	    "Invalid NOTIFY parameter", "notify-invalid" },
	[SMTP_CMD_ERR_ORCPT_INVALID] = { 501, "5.5.4",
	    "Invalid ORCPT parameter", "orcpt-invalid" },
};

static const struct {
	enum smtp_verb verb;
	const char *name;
} smtp_verbs[] = {
	{ SMTP_VERB_EHLO, "EHLO" },
	{ SMTP_VERB_HELO, "HELO" },
	{ SMTP_VERB_MAIL, "MAIL" },
	{ SMTP_VERB_RCPT, "RCPT" },
	{ SMTP_VERB_DATA, "DATA" },
	{ SMTP_VERB_RSET, "RSET" },
	{ SMTP_VERB_NOOP, "NOOP" },
	{ SMTP_VERB_QUIT, "QUIT" },
	{ SMTP_VERB_VRFY, "VRFY" },
	{ SMTP_VERB_STARTTLS, "STARTTLS" },
	{ SMTP_VERB_AUTH, "AUTH" },
};

/* A parameter keyword, the verb it belongs to, the extensions that enable
 * it (any of them) and its presence bit. */
static const struct {
	const char *keyword;
	enum smtp_verb verb;
	unsigned int ext;
	unsigned int param;
} smtp_params[] = {
	{ "SIZE", SMTP_VERB_MAIL, SMTP_EXT_SIZE, SMTP_PARAM_SIZE },
	{ "BODY", SMTP_VERB_MAIL, SMTP_EXT_8BITMIME, SMTP_PARAM_BODY },
	{ "RET", SMTP_VERB_MAIL, SMTP_EXT_DSN, SMTP_PARAM_RET },
	/* RFC 3885 §2: a server offering MTRK "MUST support the ENVID
	 * parameter of the MAIL command and the ORCPT parameter of the RCPT
	 * command", with or without DSN. */
	{ "ENVID", SMTP_VERB_MAIL, SMTP_EXT_DSN | SMTP_EXT_MTRK,
	    SMTP_PARAM_ENVID },
	{ "MTRK", SMTP_VERB_MAIL, SMTP_EXT_MTRK, SMTP_PARAM_MTRK },
	{ "NOTIFY", SMTP_VERB_RCPT, SMTP_EXT_DSN, SMTP_PARAM_NOTIFY },
	{ "ORCPT", SMTP_VERB_RCPT, SMTP_EXT_DSN | SMTP_EXT_MTRK,
	    SMTP_PARAM_ORCPT },
	/* RFC 4954 §5: a server offering AUTH accepts AUTH= on MAIL. */
	{ "AUTH", SMTP_VERB_MAIL, SMTP_EXT_AUTH, SMTP_PARAM_AUTH },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int
smtp_fail(enum smtp_cmd_error *err_out, enum smtp_cmd_error err)
{
	*err_out = err;
	return -1;
}

static int
smtp_isalpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
smtp_isdigit(int c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5322 §3.2.3 atext. */
static int
smtp_isatext(int c)
{
	return smtp_isalpha(c) || smtp_isdigit(c) ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Returns 1 if the n octets at s equal the NUL-terminated word w,
 * ignoring ASCII case. */
static int
smtp_word(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && str_ncasecmp(s, w, n) == 0;
}

/* Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str].
 * With underscore, '_' counts as a letter (smtp_helo_valid()). */
static int
smtp_domain_labels(const char *s, size_t n, int underscore)
{
	size_t i, label = 0;

	if (n == 0 || n > SMTP_DOMAIN_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '.') {
			/* A label may not be empty or end with '-'. */
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (c == '-') {
			if (label == 0)
				return 0;
		} else if (!smtp_isalpha(c) && !smtp_isdigit(c) &&
		    !(underscore && c == '_'))
			return 0;
		if (++label > SMTP_LABEL_MAX)
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

static int
smtp_domain_name(const char *s, size_t n)
{
	return smtp_domain_labels(s, n, 0);
}

/* IPv4-address-literal = Snum 3("." Snum); Snum = 1*3DIGIT, 0-255. */
static int
smtp_ipv4(const char *s, size_t n)
{
	size_t i = 0;
	int part, digits, value;

	for (part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= n || s[i] != '.')
				return 0;
			i++;
		}
		value = 0;
		for (digits = 0; i < n && smtp_isdigit(s[i]); digits++, i++) {
			if (digits == 3)
				return 0;
			value = value * 10 + (s[i] - '0');
		}
		if (digits == 0 || value > 255)
			return 0;
	}
	return i == n;
}

/* address-literal (RFC 5321 §4.1.3), including the brackets.  Only the
 * IPv4 and "IPv6:" forms: a General-address-literal needs a tag
 * "specified in a Standards-Track RFC and registered with IANA", and IPv6
 * is the only one. */
static int
smtp_address_literal(const char *s, size_t n)
{
	char tmp[64];
	unsigned char addr[16];
	size_t i;

	if (n < 3 || n > SMTP_DOMAIN_MAX || s[0] != '[' || s[n - 1] != ']')
		return 0;
	s++;
	n -= 2;
	if (n > 5 && str_ncasecmp(s, "IPv6:", 5) == 0) {
		s += 5;
		n -= 5;
		if (n >= sizeof(tmp))
			return 0;
		/* inet_pton() accepts exactly the RFC 4291 §2.2 text forms
		 * (the IPv6-addr of RFC 5321 §4.1.3); check the characters
		 * first so nothing else reaches it. */
		for (i = 0; i < n; i++)
			if (!smtp_isdigit(s[i]) && s[i] != ':' && s[i] != '.' &&
			    !((s[i] >= 'a' && s[i] <= 'f') ||
			        (s[i] >= 'A' && s[i] <= 'F')))
				return 0;
		memcpy(tmp, s, n);
		tmp[n] = '\0';
		return inet_pton(AF_INET6, tmp, addr) == 1;
	}
	return smtp_ipv4(s, n);
}

int
smtp_cmd_domain_valid(const char *s, size_t n)
{
	if (n > 0 && s[0] == '[')
		return smtp_address_literal(s, n);
	return smtp_domain_name(s, n);
}

int
smtp_helo_valid(const char *s, size_t n)
{
	if (n > 0 && s[0] == '[')
		return smtp_address_literal(s, n);
	/* A fully qualified name with its root dot. */
	if (n > 1 && s[n - 1] == '.' && s[n - 2] != '.')
		n--;
	return smtp_domain_labels(s, n, 1);
}

/* Local-part = Dot-string / Quoted-string.  Returns the length of the
 * local-part at s (at most n octets), or 0 if it is invalid. */
static size_t
smtp_local_part(const char *s, size_t n, int *quoted_out)
{
	size_t i;

	*quoted_out = 0;
	if (n > 0 && s[0] == '"') {
		*quoted_out = 1;
		for (i = 1; i < n; i++) {
			int c = (unsigned char)s[i];

			if (c == '"')
				return i + 1;
			if (c == '\\') {
				/* quoted-pairSMTP = %d92 %d32-126 */
				if (++i >= n || (unsigned char)s[i] < 32 ||
				    (unsigned char)s[i] > 126)
					return 0;
			} else if (c < 32 || c > 126)
				return 0;
		}
		return 0;
	}
	/* Dot-string = Atom *("." Atom) */
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (i == 0 || s[i - 1] == '.')
				return 0;
		} else if (!smtp_isatext((unsigned char)s[i]))
			break;
	}
	if (i == 0 || s[i - 1] == '.')
		return 0;
	return i;
}

/* The length of the path that starts with '<' at s (n octets): up to and
 * including the first '>' outside a quoted string, or 0 if there is none.
 */
static size_t
smtp_path_len(const char *s, size_t n)
{
	size_t i;
	int inq = 0;

	for (i = 1; i < n; i++) {
		if (inq && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			inq = !inq;
		else if (!inq && s[i] == '>')
			return i + 1;
	}
	return 0;
}

/* Parses the path at s (n octets starting with '<', ending with '>').
 * Returns 0, or -1 with *err_out set. */
static int
smtp_path_parse(const char *s, size_t n, enum smtp_verb verb,
    struct smtp_path *p, enum smtp_cmd_error *err_out)
{
	enum smtp_cmd_error syn = verb == SMTP_VERB_MAIL
	    ? SMTP_CMD_ERR_SENDER_SYNTAX
	    : SMTP_CMD_ERR_RCPT_ADDR_SYNTAX;
	enum smtp_cmd_error toolong = verb == SMTP_VERB_MAIL
	    ? SMTP_CMD_ERR_SENDER_TOO_LONG
	    : SMTP_CMD_ERR_RCPT_TOO_LONG;
	const char *m;
	size_t mlen, llen, i;

	/* RFC 5321 §4.5.3.1.3: 256 octets "including the punctuation and
	 * element separators". */
	if (n > SMTP_PATH_MAX)
		return smtp_fail(err_out, toolong);
	m = s + 1;
	mlen = n - 2;
	/* Reverse-path = Path / "<>"; Forward-path = Path. */
	if (mlen == 0) {
		if (verb != SMTP_VERB_MAIL)
			return smtp_fail(err_out, SMTP_CMD_ERR_RCPT_NULL);
		p->is_null = 1;
		return 0;
	}
	/* RFC 5321 §4.1.1.3: RCPT TO:<Postmaster> "MUST" be accepted,
	 * without a domain; the name is case-insensitive (§4.5.1). */
	if (verb == SMTP_VERB_RCPT && smtp_word(m, mlen, "Postmaster")) {
		p->is_postmaster = 1;
		memcpy(p->mailbox, m, mlen);
		memcpy(p->local, m, mlen);
		return 0;
	}
	/* A-d-l = At-domain *( "," At-domain ) ":"; "MUST BE accepted ...
	 * and SHOULD be ignored" (RFC 5321 §4.1.2, Appendix C). */
	if (m[0] == '@') {
		const char *colon = memchr(m, ':', mlen);
		const char *d = m;

		if (colon == NULL)
			return smtp_fail(err_out, syn);
		while (d < colon) {
			const char *e;

			if (*d != '@')
				return smtp_fail(err_out, syn);
			d++;
			e = memchr(d, ',', (size_t)(colon - d));
			if (e == NULL)
				e = colon;
			if (!smtp_domain_name(d, (size_t)(e - d)))
				return smtp_fail(err_out, syn);
			d = e < colon ? e + 1 : e;
			if (e < colon && d == colon)
				return smtp_fail(err_out, syn);
		}
		p->had_route = 1;
		mlen -= (size_t)(colon + 1 - m);
		m = colon + 1;
	}
	/* Mailbox = Local-part "@" ( Domain / address-literal ) */
	llen = smtp_local_part(m, mlen, &p->local_quoted);
	if (llen == 0 || llen >= mlen || m[llen] != '@')
		return smtp_fail(err_out, syn);
	if (llen > SMTP_LOCAL_MAX)
		return smtp_fail(err_out, toolong);
	i = llen + 1;
	if (mlen - i > SMTP_DOMAIN_MAX)
		return smtp_fail(err_out, toolong);
	if (!smtp_cmd_domain_valid(m + i, mlen - i))
		return smtp_fail(err_out, syn);
	p->domain_literal = m[i] == '[';
	memcpy(p->mailbox, m, mlen);
	memcpy(p->local, m, llen);
	memcpy(p->domain, m + i, mlen - i);
	return 0;
}

/* RFC 1870 §3: size-value ::= 1*20DIGIT. */
static int
smtp_param_size(const char *v, size_t n, struct smtp_cmd *cmd)
{
	uint64_t x = 0;
	size_t i;

	if (n == 0 || n > SMTP_SIZE_DIGITS)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned int d = (unsigned char)v[i] - '0';

		if (!smtp_isdigit(v[i]))
			return -1;
		/* 20 digits can exceed 2^64 - 1: saturate, the caller
		 * refuses any size that large with 552 anyway. */
		if (x > (UINT64_MAX - d) / 10)
			x = UINT64_MAX;
		else
			x = x * 10 + d;
	}
	cmd->size = x;
	return 0;
}

/* RFC 3461 §4.1: notify-esmtp-value = "NEVER" / 1#notify-list-element.
 * We refuse empty list elements ("SUCCESS,,DELAY"), which RFC 822's "#"
 * would tolerate: no client is known to send them. */
static int
smtp_param_notify(const char *v, size_t n, struct smtp_cmd *cmd)
{
	unsigned int mask = 0;
	size_t i = 0, j;

	while (i <= n) {
		for (j = i; j < n && v[j] != ','; j++)
			;
		if (smtp_word(v + i, j - i, "NEVER"))
			mask |= SMTP_NOTIFY_NEVER;
		else if (smtp_word(v + i, j - i, "SUCCESS"))
			mask |= SMTP_NOTIFY_SUCCESS;
		else if (smtp_word(v + i, j - i, "FAILURE"))
			mask |= SMTP_NOTIFY_FAILURE;
		else if (smtp_word(v + i, j - i, "DELAY"))
			mask |= SMTP_NOTIFY_DELAY;
		else
			return -1;
		i = j + 1;
	}
	/* "the NEVER keyword MUST appear by itself" */
	if ((mask & SMTP_NOTIFY_NEVER) && mask != SMTP_NOTIFY_NEVER)
		return -1;
	cmd->notify = mask;
	return 0;
}

/* RFC 822 atom characters: CHAR except specials, SPACE and CTLs. */
static int
smtp_isatomchar(int c)
{
	return c > 32 && c < 127 && strchr("()<>@,;:\\\".[]", c) == NULL;
}

/* RFC 3461 §4.2: orcpt-parameter = "ORCPT=" original-recipient-address;
 * original-recipient-address = addr-type ";" xtext; addr-type = atom. */
static int
smtp_param_orcpt(const char *v, size_t n, struct smtp_cmd *cmd)
{
	const char *semi = memchr(v, ';', n);
	size_t tlen, alen, i;

	if (semi == NULL || semi == v)
		return -1;
	tlen = (size_t)(semi - v);
	for (i = 0; i < tlen; i++)
		if (!smtp_isatomchar((unsigned char)v[i]))
			return -1;
	/* Decoded addr-type ";" address at most SMTP_ORCPT_MAX, address
	 * not empty, printable (RFC 3461 §4.2). */
	if (tlen + 1 >= SMTP_ORCPT_MAX)
		return -1;
	if (xtext_decode(semi + 1, n - tlen - 1, XTEXT_PRINTABLE,
	        cmd->orcpt_addr, SMTP_ORCPT_MAX - tlen, &alen, NULL) == -1 ||
	    alen == 0 || n > SMTP_ORCPT_RAW_MAX)
		return -1;
	memcpy(cmd->orcpt_type, v, tlen);
	cmd->orcpt_type[tlen] = '\0';
	memcpy(cmd->orcpt_raw, v, n);
	cmd->orcpt_raw[n] = '\0';
	return 0;
}

/* RFC 3461 §4.4: envid-parameter = "ENVID=" xtext, decoded printable,
 * 1..ENVID_MAX characters (digest §12.3 [DECISION]). */
static int
smtp_param_envid(const char *v, size_t n, struct smtp_cmd *cmd)
{
	size_t dlen;

	if (xtext_decode(v, n, XTEXT_PRINTABLE, cmd->envid, sizeof(cmd->envid),
	        &dlen, NULL) == -1 ||
	    dlen == 0 || n > SMTP_ENVID_RAW_MAX)
		return -1;
	memcpy(cmd->envid_raw, v, n);
	cmd->envid_raw[n] = '\0';
	return 0;
}

/* Validates the value of a known parameter and stores it.  Returns 0, or
 * -1 with *err_out set. */
static int
smtp_param_value(unsigned int param, const char *v, size_t n, int hasval,
    struct smtp_cmd *cmd, enum smtp_cmd_error *err_out)
{
	switch (param) {
	case SMTP_PARAM_SIZE:
		if (!hasval || smtp_param_size(v, n, cmd) == -1)
			return smtp_fail(err_out, SMTP_CMD_ERR_SIZE_INVALID);
		return 0;
	case SMTP_PARAM_BODY:
		/* RFC 6152 §2: body-value = "7BIT" / "8BITMIME" */
		if (hasval && smtp_word(v, n, "7BIT"))
			cmd->body = SMTP_BODY_7BIT;
		else if (hasval && smtp_word(v, n, "8BITMIME"))
			cmd->body = SMTP_BODY_8BITMIME;
		else
			return smtp_fail(err_out, SMTP_CMD_ERR_BODY_INVALID);
		return 0;
	case SMTP_PARAM_RET:
		/* RFC 3461 §4.3: "FULL" or "HDRS", any case. */
		if (hasval && smtp_word(v, n, "FULL"))
			cmd->ret = SMTP_RET_FULL;
		else if (hasval && smtp_word(v, n, "HDRS"))
			cmd->ret = SMTP_RET_HDRS;
		else
			return smtp_fail(err_out, SMTP_CMD_ERR_RET_INVALID);
		return 0;
	case SMTP_PARAM_ENVID:
		if (!hasval || smtp_param_envid(v, n, cmd) == -1)
			return smtp_fail(err_out, SMTP_CMD_ERR_ENVID_INVALID);
		return 0;
	case SMTP_PARAM_MTRK:
		/* RFC 3885 §3.1 with digest §3.3: the value is required. */
		if (!hasval || mtrk_param_parse(v, n, &cmd->mtrk, NULL) == -1)
			return smtp_fail(err_out, SMTP_CMD_ERR_MTRK_INVALID);
		return 0;
	case SMTP_PARAM_NOTIFY:
		if (!hasval || smtp_param_notify(v, n, cmd) == -1)
			return smtp_fail(err_out, SMTP_CMD_ERR_NOTIFY_INVALID);
		return 0;
	case SMTP_PARAM_ORCPT:
		if (!hasval || smtp_param_orcpt(v, n, cmd) == -1)
			return smtp_fail(err_out, SMTP_CMD_ERR_ORCPT_INVALID);
		return 0;
	case SMTP_PARAM_AUTH: {
		/* RFC 4954 §5: "AUTH=" (xtext mailbox / "<>").  Only
		 * checked: we neither trust nor relay it (§5 lets a server
		 * treat it as "<>"). */
		char tmp[SMTP_PATH_MAX + 1];
		size_t dlen;

		if (!hasval ||
		    ((n != 2 || v[0] != '<' || v[1] != '>') &&
		        xtext_decode(v, n, XTEXT_PRINTABLE, tmp, sizeof(tmp),
		            &dlen, NULL) == -1))
			return smtp_fail(err_out, SMTP_CMD_ERR_PARAM_SYNTAX);
		return 0;
	}
	}
	return smtp_fail(err_out, SMTP_CMD_ERR_PARAM_UNKNOWN);
}

/* One esmtp-param (RFC 5321 §4.1.2):
 *	esmtp-param    = esmtp-keyword ["=" esmtp-value]
 *	esmtp-keyword  = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
 *	esmtp-value    = 1*(%d33-60 / %d62-126)
 */
static int
smtp_param(const char *s, size_t n, unsigned int ext, struct smtp_cmd *cmd,
    enum smtp_cmd_error *err_out)
{
	const char *eq = memchr(s, '=', n);
	size_t klen = eq != NULL ? (size_t)(eq - s) : n, vlen, i, j;
	const char *v = eq != NULL ? eq + 1 : s + n;
	int hasval;

	vlen = eq != NULL ? n - klen - 1 : 0;
	if (klen == 0 || !(smtp_isalpha(s[0]) || smtp_isdigit(s[0])))
		return smtp_fail(err_out, SMTP_CMD_ERR_PARAM_SYNTAX);
	for (i = 1; i < klen; i++)
		if (!smtp_isalpha(s[i]) && !smtp_isdigit(s[i]) && s[i] != '-')
			return smtp_fail(err_out, SMTP_CMD_ERR_PARAM_SYNTAX);
	for (i = 0; i < NELEM(smtp_params); i++)
		if (smtp_params[i].verb == cmd->verb &&
		    smtp_word(s, klen, smtp_params[i].keyword))
			break;
	/* RFC 5321 §4.1.1.11: 555 for "MAIL FROM/RCPT TO parameters not
	 * recognized or not implemented"; a parameter of an extension this
	 * session did not advertise counts as not implemented (digest §10). */
	if (i == NELEM(smtp_params))
		return smtp_fail(err_out, SMTP_CMD_ERR_PARAM_UNKNOWN);
	if ((smtp_params[i].ext & ext) == 0)
		return smtp_fail(err_out, SMTP_CMD_ERR_PARAM_NOT_ADVERTISED);
	/* RFC 3461 §4.5: RET/ENVID (MUST) and NOTIFY/ORCPT at most once;
	 * digest §3.3 [DECISION] extends this to MTRK, and we apply it to
	 * SIZE and BODY as well. */
	if (cmd->params & smtp_params[i].param)
		return smtp_fail(err_out, SMTP_CMD_ERR_PARAM_DUPLICATE);
	/* An empty esmtp-value or one holding '=' is not an esmtp-value:
	 * the parameter's own "invalid" code (smtp_param_value() refuses a
	 * missing value for every parameter we know). */
	hasval = eq != NULL && vlen > 0;
	for (j = 0; j < vlen; j++)
		if ((unsigned char)v[j] < 33 || (unsigned char)v[j] > 126 ||
		    v[j] == '=')
			hasval = 0;
	if (smtp_param_value(
	        smtp_params[i].param, v, vlen, hasval, cmd, err_out) == -1)
		return -1;
	cmd->params |= smtp_params[i].param;
	return 0;
}

/* MAIL FROM:<path> [SP params] / RCPT TO:<path> [SP params]. */
static int
smtp_mailrcpt(const char *a, size_t n, unsigned int ext, struct smtp_cmd *cmd,
    enum smtp_cmd_error *err_out)
{
	enum smtp_cmd_error syn = cmd->verb == SMTP_VERB_MAIL
	    ? SMTP_CMD_ERR_MAIL_SYNTAX
	    : SMTP_CMD_ERR_RCPT_SYNTAX;
	const char *kw = cmd->verb == SMTP_VERB_MAIL ? "FROM:" : "TO:";
	size_t kwlen = strlen(kw), i, plen;
	enum envid_error eerr;

	if (n < kwlen || str_ncasecmp(a, kw, kwlen) != 0)
		return smtp_fail(err_out, syn);
	/* RFC 5321 §4.1.2: "spaces are not permitted on either side of the
	 * colon following FROM in the MAIL command or TO in the RCPT
	 * command".  We accept SP after the colon anyway (see smtp_cmd.h):
	 * real clients send "MAIL FROM: <a@b>" and the path is still
	 * delimited unambiguously by the angle brackets. */
	for (i = kwlen; i < n && a[i] == ' '; i++)
		;
	if (i == n || a[i] != '<')
		return smtp_fail(err_out, syn);
	plen = smtp_path_len(a + i, n - i);
	if (plen == 0)
		return smtp_fail(err_out, syn);
	if (i + plen < n && a[i + plen] != ' ')
		return smtp_fail(err_out, syn);
	if (smtp_path_parse(a + i, plen, cmd->verb, &cmd->path, err_out) == -1)
		return -1;
	i += plen;
	/* Mail-parameters = esmtp-param *(SP esmtp-param); runs of SP and
	 * trailing SP are tolerated. */
	while (i < n) {
		size_t j;

		while (i < n && a[i] == ' ')
			i++;
		if (i == n)
			break;
		for (j = i; j < n && a[j] != ' '; j++)
			;
		if (smtp_param(a + i, j - i, ext, cmd, err_out) == -1)
			return -1;
		i = j;
	}
	/* RFC 3885 §3.2: "if the MTRK parameter is given, an ENVID
	 * parameter MUST be included", in unique-envid form; digest §7
	 * [DECISION]: otherwise 501 5.5.4. */
	if (cmd->params & SMTP_PARAM_MTRK) {
		if (!(cmd->params & SMTP_PARAM_ENVID))
			return smtp_fail(err_out, SMTP_CMD_ERR_MTRK_NO_ENVID);
		if (envid_check_unique(
		        cmd->envid, strlen(cmd->envid), NULL, &eerr) == -1)
			return smtp_fail(err_out, SMTP_CMD_ERR_MTRK_ENVID_FORM);
	}
	return 0;
}

int
smtp_cmd_parse(const char *line, size_t len, unsigned int ext,
    struct smtp_cmd *cmd_out, enum smtp_cmd_error *err_out)
{
	enum smtp_cmd_error dummy;
	size_t vlen, i, max;
	const char *arg;
	size_t alen;

	if (err_out == NULL)
		err_out = &dummy;
	memset(cmd_out, 0, sizeof(*cmd_out));
	cmd_out->verb = SMTP_VERB_UNKNOWN;
	/* The verb: up to the first SP.  Only the first few octets are
	 * looked at, so this is bounded even on a huge line. */
	for (vlen = 0; vlen < len && vlen <= 8 && line[vlen] != ' '; vlen++)
		;
	for (i = 0; i < NELEM(smtp_verbs); i++)
		if (smtp_word(line, vlen, smtp_verbs[i].name) &&
		    (vlen == len || line[vlen] == ' '))
			cmd_out->verb = smtp_verbs[i].verb;
	/* RFC 5321 §4.5.3.1.4 (512 with CRLF); 2048 for MAIL and RCPT. */
	max = cmd_out->verb == SMTP_VERB_MAIL || cmd_out->verb == SMTP_VERB_RCPT
	    ? SMTP_CMD_LINE_MAX_MAILRCPT
	    : SMTP_CMD_LINE_MAX;
	if (len > max - 2)
		return smtp_fail(err_out, SMTP_CMD_ERR_LINE_TOO_LONG);
	/* RFC 5321 §4.1.2: no 8-bit octets, no "control characters
	 * (decimal value 0-31 and 127)"; such a command gets 501. */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == '\0')
			return smtp_fail(err_out, SMTP_CMD_ERR_NUL);
		if (c < 32 || c >= 127)
			return smtp_fail(err_out, SMTP_CMD_ERR_BAD_CHAR);
	}
	if (cmd_out->verb == SMTP_VERB_UNKNOWN)
		return smtp_fail(err_out, SMTP_CMD_ERR_UNKNOWN_VERB);
	arg = vlen < len ? line + vlen + 1 : line + len;
	alen = vlen < len ? len - vlen - 1 : 0;
	memcpy(cmd_out->arg, arg, alen);
	cmd_out->arg[alen] = '\0';
	switch (cmd_out->verb) {
	case SMTP_VERB_EHLO:
	case SMTP_VERB_HELO:
	case SMTP_VERB_VRFY:
	case SMTP_VERB_AUTH:
		if (alen == 0)
			return smtp_fail(err_out, SMTP_CMD_ERR_ARG_MISSING);
		if (cmd_out->verb != SMTP_VERB_VRFY &&
		    cmd_out->verb != SMTP_VERB_AUTH)
			cmd_out->domain_ok = smtp_cmd_domain_valid(arg, alen);
		break;
	case SMTP_VERB_DATA:
	case SMTP_VERB_RSET:
	case SMTP_VERB_QUIT:
	case SMTP_VERB_STARTTLS:
		/* "DATA" CRLF etc.: even a lone trailing SP is refused. */
		if (vlen < len)
			return smtp_fail(err_out, SMTP_CMD_ERR_ARG_UNEXPECTED);
		break;
	case SMTP_VERB_NOOP:
		break;
	case SMTP_VERB_MAIL:
	case SMTP_VERB_RCPT:
		if (smtp_mailrcpt(arg, alen, ext, cmd_out, err_out) == -1)
			return -1;
		break;
	case SMTP_VERB_UNKNOWN:
		return smtp_fail(err_out, SMTP_CMD_ERR_UNKNOWN_VERB);
	}
	*err_out = SMTP_CMD_OK;
	return 0;
}

const struct smtp_reply *
smtp_cmd_reply(enum smtp_cmd_error err)
{
	if ((int)err <= SMTP_CMD_OK || err >= SMTP_CMD_ERR_COUNT)
		return NULL;
	return &smtp_replies[err];
}

const char *
smtp_verb_name(enum smtp_verb verb)
{
	size_t i;

	for (i = 0; i < NELEM(smtp_verbs); i++)
		if (smtp_verbs[i].verb == verb)
			return smtp_verbs[i].name;
	return "UNKNOWN";
}
