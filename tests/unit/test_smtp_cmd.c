/*
 * test_smtp_cmd: RFC 5321 command lines with the SIZE, 8BITMIME, DSN and
 * MTRK parameters, and the reply table.
 */
#include <stdlib.h>
#include <string.h>

#include "table.h"

#include "msgtrk/envid.h"
#include "msgtrk/smtp_cmd.h"

#define L(s) .line = s, .n = sizeof(s) - 1
#define ALL (SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_DSN | SMTP_EXT_MTRK)
#define CERT "VheLhqV/rCKJmplkGFwsyW59pYk"
#define CERTP "rlvY7+pTIsTZmG0GaAp4E5L5pkI"

/* Expected path and EHLO flags. */
#define F_NULL 0x01
#define F_PM 0x02
#define F_ROUTE 0x04
#define F_QUOTED 0x08
#define F_LITERAL 0x10
#define F_DOMOK 0x20

struct cmd_row {
	const char *name;
	const char *line;
	size_t n;
	unsigned int ext;
	int rc;
	enum smtp_cmd_error err;
	enum smtp_verb verb;
	/* Checked only when rc == 0; NULL strings mean "". */
	const char *arg; /* NULL: not checked */
	const char *mailbox, *local, *domain;
	int flags;
	unsigned int params;
	uint64_t size;
	enum smtp_body body;
	enum smtp_ret ret;
	unsigned int notify;
	const char *envid_raw, *envid;
	const char *cert;
	int has_timeout;
	unsigned long timeout;
	const char *orcpt_raw, *orcpt_type, *orcpt_addr;
};

#define OK(v) .rc = 0, .err = SMTP_CMD_OK, .verb = (v)
#define BAD(v, e) .rc = -1, .err = (e), .verb = (v)
#define MB(m, l, d) .mailbox = m, .local = l, .domain = d
#define MAIL SMTP_VERB_MAIL
#define RCPT SMTP_VERB_RCPT
#define UNK SMTP_VERB_UNKNOWN

static const struct cmd_row cmd_rows[] = {
	/* --- MAIL paths --- */
	{ "mail-basic", L("MAIL FROM:<a@example.com>"), 0, OK(MAIL),
	    .arg = "FROM:<a@example.com>",
	    MB("a@example.com", "a", "example.com") },
	{ "mail-lowercase", L("mail from:<a@example.com>"), 0, OK(MAIL),
	    MB("a@example.com", "a", "example.com") },
	{ "mail-mixedcase", L("MaIl FrOm:<A@Example.COM>"), 0, OK(MAIL),
	    MB("A@Example.COM", "A", "Example.COM") },
	{ "mail-space-after-colon", L("MAIL FROM: <a@example.com>"), 0,
	    OK(MAIL), MB("a@example.com", "a", "example.com") },
	{ "mail-2spaces-after-colon", L("MAIL FROM:  <a@b>"), 0, OK(MAIL),
	    MB("a@b", "a", "b") },
	{ "mail-space-before-colon", L("MAIL FROM :<a@b>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_MAIL_SYNTAX) },
	{ "mail-2spaces-after-verb", L("MAIL  FROM:<a@b>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_MAIL_SYNTAX) },
	{ "mail-no-brackets", L("MAIL FROM:a@b"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_MAIL_SYNTAX) },
	{ "mail-unclosed", L("MAIL FROM:<a@b"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_MAIL_SYNTAX) },
	{ "mail-junk-after-path", L("MAIL FROM:<a@b>x"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_MAIL_SYNTAX) },
	{ "mail-two-paths", L("MAIL FROM:<a@b><c@d>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_MAIL_SYNTAX) },
	{ "mail-no-arg", L("MAIL"), 0, BAD(MAIL, SMTP_CMD_ERR_MAIL_SYNTAX) },
	{ "mail-empty-arg", L("MAIL "), 0,
	    BAD(MAIL, SMTP_CMD_ERR_MAIL_SYNTAX) },
	{ "mail-from-only", L("MAIL FROM:"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_MAIL_SYNTAX) },
	{ "mail-to", L("MAIL TO:<a@b>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_MAIL_SYNTAX) },
	{ "mail-from-no-colon", L("MAIL FROM <a@b>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_MAIL_SYNTAX) },
	{ "mail-null", L("MAIL FROM:<>"), 0, OK(MAIL), .flags = F_NULL },
	{ "mail-null-space", L("MAIL FROM: <>"), 0, OK(MAIL), .flags = F_NULL },
	{ "mail-null-size", L("MAIL FROM:<> SIZE=100"), SMTP_EXT_SIZE, OK(MAIL),
	    .flags = F_NULL, .params = SMTP_PARAM_SIZE, .size = 100 },
	{ "mail-postmaster", L("MAIL FROM:<Postmaster>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-route", L("MAIL FROM:<@a.example,@b.example:x@c.example>"), 0,
	    OK(MAIL), MB("x@c.example", "x", "c.example"), .flags = F_ROUTE },
	{ "mail-route-one", L("MAIL FROM:<@a:x@c>"), 0, OK(MAIL),
	    MB("x@c", "x", "c"), .flags = F_ROUTE },
	{ "mail-route-trailing-comma", L("MAIL FROM:<@a,:x@c>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-route-empty", L("MAIL FROM:<@:x@c>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-route-no-at", L("MAIL FROM:<@a,b:x@c>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-route-bad-domain", L("MAIL FROM:<@a.:x@c>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-route-literal", L("MAIL FROM:<@[1.2.3.4]:x@c>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-route-no-colon", L("MAIL FROM:<@a>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-route-no-mailbox", L("MAIL FROM:<@a:>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-quoted", L("MAIL FROM:<\"john doe\"@example.com>"), 0, OK(MAIL),
	    MB("\"john doe\"@example.com", "\"john doe\"", "example.com"),
	    .flags = F_QUOTED },
	{ "mail-quoted-escape", L("MAIL FROM:<\"a\\\"b\\\\\"@x>"), 0, OK(MAIL),
	    MB("\"a\\\"b\\\\\"@x", "\"a\\\"b\\\\\"", "x"), .flags = F_QUOTED },
	{ "mail-quoted-gt", L("MAIL FROM:<\"a>b\"@x>"), 0, OK(MAIL),
	    MB("\"a>b\"@x", "\"a>b\"", "x"), .flags = F_QUOTED },
	{ "mail-quoted-at", L("MAIL FROM:<\"a@b\"@x>"), 0, OK(MAIL),
	    MB("\"a@b\"@x", "\"a@b\"", "x"), .flags = F_QUOTED },
	{ "mail-quoted-empty", L("MAIL FROM:<\"\"@x>"), 0, OK(MAIL),
	    MB("\"\"@x", "\"\"", "x"), .flags = F_QUOTED },
	{ "mail-quoted-unterminated", L("MAIL FROM:<\"ab@x>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_MAIL_SYNTAX) },
	{ "mail-quoted-then-atom", L("MAIL FROM:<\"a\"b@x>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-quoted-dot-atom", L("MAIL FROM:<\"a\".b@x>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-dot-first", L("MAIL FROM:<.a@x>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-dot-last", L("MAIL FROM:<a.@x>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-dot-dot", L("MAIL FROM:<a..b@x>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-dotted-local", L("MAIL FROM:<a.b.c@x>"), 0, OK(MAIL),
	    MB("a.b.c@x", "a.b.c", "x") },
	{ "mail-atext-all", L("MAIL FROM:<!#$%&'*+-/=?^_`{|}~@x>"), 0, OK(MAIL),
	    MB("!#$%&'*+-/=?^_`{|}~@x", "!#$%&'*+-/=?^_`{|}~", "x") },
	{ "mail-paren", L("MAIL FROM:<a(b)@x>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-comma", L("MAIL FROM:<a,b@x>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-space-in-local", L("MAIL FROM:<a b@x>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-no-at", L("MAIL FROM:<a>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-no-domain", L("MAIL FROM:<a@>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-no-local", L("MAIL FROM:<@x.y>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "mail-two-ats", L("MAIL FROM:<a@b@c>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "dom-hyphen-first", L("MAIL FROM:<a@-x.com>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "dom-hyphen-last", L("MAIL FROM:<a@x-.com>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "dom-hyphen-end", L("MAIL FROM:<a@x.com->"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "dom-dot-dot", L("MAIL FROM:<a@x..com>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "dom-dot-last", L("MAIL FROM:<a@x.com.>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "dom-dot-first", L("MAIL FROM:<a@.x>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "dom-underscore", L("MAIL FROM:<a@x_y.com>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "dom-digits", L("MAIL FROM:<a@123.com>"), 0, OK(MAIL),
	    MB("a@123.com", "a", "123.com") },
	{ "dom-inner-hyphens", L("MAIL FROM:<a@a--b.c-d>"), 0, OK(MAIL),
	    MB("a@a--b.c-d", "a", "a--b.c-d") },
	{ "lit-ipv4", L("MAIL FROM:<a@[192.0.2.1]>"), 0, OK(MAIL),
	    MB("a@[192.0.2.1]", "a", "[192.0.2.1]"), .flags = F_LITERAL },
	{ "lit-ipv4-max", L("MAIL FROM:<a@[255.255.255.255]>"), 0, OK(MAIL),
	    MB("a@[255.255.255.255]", "a", "[255.255.255.255]"),
	    .flags = F_LITERAL },
	{ "lit-ipv4-zeros", L("MAIL FROM:<a@[001.002.003.004]>"), 0, OK(MAIL),
	    MB("a@[001.002.003.004]", "a", "[001.002.003.004]"),
	    .flags = F_LITERAL },
	{ "lit-ipv4-256", L("MAIL FROM:<a@[256.1.1.1]>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "lit-ipv4-4digits", L("MAIL FROM:<a@[0001.2.3.4]>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "lit-ipv4-3parts", L("MAIL FROM:<a@[1.2.3]>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "lit-ipv4-5parts", L("MAIL FROM:<a@[1.2.3.4.5]>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "lit-ipv4-empty-part", L("MAIL FROM:<a@[1..3.4]>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "lit-ipv6-loop", L("MAIL FROM:<a@[IPv6:::1]>"), 0, OK(MAIL),
	    MB("a@[IPv6:::1]", "a", "[IPv6:::1]"), .flags = F_LITERAL },
	{ "lit-ipv6-lower-tag", L("MAIL FROM:<a@[ipv6:2001:db8::1]>"), 0,
	    OK(MAIL), MB("a@[ipv6:2001:db8::1]", "a", "[ipv6:2001:db8::1]"),
	    .flags = F_LITERAL },
	{ "lit-ipv6-v4", L("MAIL FROM:<a@[IPv6:::ffff:192.0.2.1]>"), 0,
	    OK(MAIL),
	    MB("a@[IPv6:::ffff:192.0.2.1]", "a", "[IPv6:::ffff:192.0.2.1]"),
	    .flags = F_LITERAL },
	{ "lit-ipv6-double-gap", L("MAIL FROM:<a@[IPv6:1::2::3]>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "lit-ipv6-empty", L("MAIL FROM:<a@[IPv6:]>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "lit-ipv6-junk", L("MAIL FROM:<a@[IPv6:12g::1]>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "lit-ipv6-no-tag", L("MAIL FROM:<a@[2001:db8::1]>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "lit-general", L("MAIL FROM:<a@[x-tag:foo]>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "lit-empty", L("MAIL FROM:<a@[]>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "lit-unclosed", L("MAIL FROM:<a@[1.2.3.4>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },
	{ "lit-trailing", L("MAIL FROM:<a@[1.2.3.4]x>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_SENDER_SYNTAX) },

	/* --- characters --- */
	{ "char-8bit-local", L("MAIL FROM:<\xc3\xa9@x>"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_BAD_CHAR) },
	{ "char-nul", L("MAIL FROM:<a\0@x>"), 0, BAD(MAIL, SMTP_CMD_ERR_NUL) },
	{ "char-nul-end", L("QUIT\0"), 0,
	    BAD(SMTP_VERB_UNKNOWN, SMTP_CMD_ERR_NUL) },
	{ "char-tab", L("MAIL FROM:<a@x>\tSIZE=1"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_BAD_CHAR) },
	{ "char-cr", L("DATA\r"), 0, BAD(UNK, SMTP_CMD_ERR_BAD_CHAR) },
	{ "char-lf-inside", L("NOOP a\nb"), 0,
	    BAD(SMTP_VERB_NOOP, SMTP_CMD_ERR_BAD_CHAR) },
	{ "char-del", L("NOOP \x7f"), 0,
	    BAD(SMTP_VERB_NOOP, SMTP_CMD_ERR_BAD_CHAR) },
	{ "char-8bit-unknown-verb", L("\xff\xfe"), 0,
	    BAD(UNK, SMTP_CMD_ERR_BAD_CHAR) },
	{ "char-nul-first", L("\0MAIL"), 0, BAD(UNK, SMTP_CMD_ERR_NUL) },

	/* --- RCPT paths --- */
	{ "rcpt-basic", L("RCPT TO:<b@example.com>"), 0, OK(RCPT),
	    MB("b@example.com", "b", "example.com") },
	{ "rcpt-lower-space", L("rcpt to: <b@example.com>"), 0, OK(RCPT),
	    MB("b@example.com", "b", "example.com") },
	{ "rcpt-null", L("RCPT TO:<>"), 0, BAD(RCPT, SMTP_CMD_ERR_RCPT_NULL) },
	{ "rcpt-postmaster", L("RCPT TO:<Postmaster>"), 0, OK(RCPT),
	    MB("Postmaster", "Postmaster", ""), .flags = F_PM },
	{ "rcpt-postmaster-lower", L("RCPT TO:<postmaster>"), 0, OK(RCPT),
	    MB("postmaster", "postmaster", ""), .flags = F_PM },
	{ "rcpt-postmaster-upper-params",
	    L("RCPT TO:<POSTMASTER> NOTIFY=NEVER"), SMTP_EXT_DSN, OK(RCPT),
	    MB("POSTMASTER", "POSTMASTER", ""), .flags = F_PM,
	    .params = SMTP_PARAM_NOTIFY, .notify = SMTP_NOTIFY_NEVER },
	{ "rcpt-postmaster-domain", L("RCPT TO:<postmaster@example.com>"), 0,
	    OK(RCPT),
	    MB("postmaster@example.com", "postmaster", "example.com") },
	{ "rcpt-postmasters", L("RCPT TO:<Postmasters>"), 0,
	    BAD(RCPT, SMTP_CMD_ERR_RCPT_ADDR_SYNTAX) },
	{ "rcpt-from", L("RCPT FROM:<a@b>"), 0,
	    BAD(RCPT, SMTP_CMD_ERR_RCPT_SYNTAX) },
	{ "rcpt-no-brackets", L("RCPT TO:a@b"), 0,
	    BAD(RCPT, SMTP_CMD_ERR_RCPT_SYNTAX) },
	{ "rcpt-no-arg", L("RCPT"), 0, BAD(RCPT, SMTP_CMD_ERR_RCPT_SYNTAX) },
	{ "rcpt-no-at", L("RCPT TO:<a>"), 0,
	    BAD(RCPT, SMTP_CMD_ERR_RCPT_ADDR_SYNTAX) },
	{ "rcpt-bad-domain", L("RCPT TO:<a@b..c>"), 0,
	    BAD(RCPT, SMTP_CMD_ERR_RCPT_ADDR_SYNTAX) },
	{ "rcpt-route", L("RCPT TO:<@hosta.int,@jkl.org:userc@d.bar.org>"), 0,
	    OK(RCPT), MB("userc@d.bar.org", "userc", "d.bar.org"),
	    .flags = F_ROUTE },

	/* --- SIZE (RFC 1870) --- */
	{ "size-0", L("MAIL FROM:<a@b> SIZE=0"), SMTP_EXT_SIZE, OK(MAIL),
	    MB("a@b", "a", "b"), .params = SMTP_PARAM_SIZE, .size = 0 },
	{ "size-lower-keyword", L("MAIL FROM:<a@b> size=12345"), SMTP_EXT_SIZE,
	    OK(MAIL), MB("a@b", "a", "b"), .params = SMTP_PARAM_SIZE,
	    .size = 12345 },
	{ "size-u64-max", L("MAIL FROM:<a@b> SIZE=18446744073709551615"),
	    SMTP_EXT_SIZE, OK(MAIL), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_SIZE, .size = UINT64_MAX },
	{ "size-20-digits-saturate",
	    L("MAIL FROM:<a@b> SIZE=99999999999999999999"), SMTP_EXT_SIZE,
	    OK(MAIL), MB("a@b", "a", "b"), .params = SMTP_PARAM_SIZE,
	    .size = UINT64_MAX },
	{ "size-u64-max-plus-1", L("MAIL FROM:<a@b> SIZE=18446744073709551616"),
	    SMTP_EXT_SIZE, OK(MAIL), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_SIZE, .size = UINT64_MAX },
	{ "size-21-digits", L("MAIL FROM:<a@b> SIZE=000000000000000000001"),
	    SMTP_EXT_SIZE, BAD(MAIL, SMTP_CMD_ERR_SIZE_INVALID) },
	{ "size-empty", L("MAIL FROM:<a@b> SIZE="), SMTP_EXT_SIZE,
	    BAD(MAIL, SMTP_CMD_ERR_SIZE_INVALID) },
	{ "size-no-value", L("MAIL FROM:<a@b> SIZE"), SMTP_EXT_SIZE,
	    BAD(MAIL, SMTP_CMD_ERR_SIZE_INVALID) },
	{ "size-negative", L("MAIL FROM:<a@b> SIZE=-1"), SMTP_EXT_SIZE,
	    BAD(MAIL, SMTP_CMD_ERR_SIZE_INVALID) },
	{ "size-suffix", L("MAIL FROM:<a@b> SIZE=1k"), SMTP_EXT_SIZE,
	    BAD(MAIL, SMTP_CMD_ERR_SIZE_INVALID) },
	{ "size-equals-in-value", L("MAIL FROM:<a@b> SIZE=1=2"), SMTP_EXT_SIZE,
	    BAD(MAIL, SMTP_CMD_ERR_SIZE_INVALID) },
	{ "size-not-advertised", L("MAIL FROM:<a@b> SIZE=1"),
	    ALL & ~SMTP_EXT_SIZE,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_NOT_ADVERTISED) },
	{ "size-duplicate", L("MAIL FROM:<a@b> SIZE=1 SIZE=1"), SMTP_EXT_SIZE,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_DUPLICATE) },
	{ "size-on-rcpt", L("RCPT TO:<a@b> SIZE=1"), ALL,
	    BAD(RCPT, SMTP_CMD_ERR_PARAM_UNKNOWN) },

	/* --- BODY (RFC 6152) --- */
	{ "body-7bit", L("MAIL FROM:<a@b> BODY=7BIT"), SMTP_EXT_8BITMIME,
	    OK(MAIL), MB("a@b", "a", "b"), .params = SMTP_PARAM_BODY,
	    .body = SMTP_BODY_7BIT },
	{ "body-8bitmime-lower", L("MAIL FROM:<a@b> body=8bitmime"),
	    SMTP_EXT_8BITMIME, OK(MAIL), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_BODY, .body = SMTP_BODY_8BITMIME },
	{ "body-binarymime", L("MAIL FROM:<a@b> BODY=BINARYMIME"),
	    SMTP_EXT_8BITMIME, BAD(MAIL, SMTP_CMD_ERR_BODY_INVALID) },
	{ "body-empty", L("MAIL FROM:<a@b> BODY="), SMTP_EXT_8BITMIME,
	    BAD(MAIL, SMTP_CMD_ERR_BODY_INVALID) },
	{ "body-no-value", L("MAIL FROM:<a@b> BODY"), SMTP_EXT_8BITMIME,
	    BAD(MAIL, SMTP_CMD_ERR_BODY_INVALID) },
	{ "body-not-advertised", L("MAIL FROM:<a@b> BODY=8BITMIME"),
	    SMTP_EXT_DSN, BAD(MAIL, SMTP_CMD_ERR_PARAM_NOT_ADVERTISED) },
	{ "body-duplicate", L("MAIL FROM:<a@b> BODY=7BIT BODY=8BITMIME"), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_DUPLICATE) },

	/* --- RET, ENVID (RFC 3461) --- */
	{ "ret-full", L("MAIL FROM:<a@b> RET=FULL"), SMTP_EXT_DSN, OK(MAIL),
	    MB("a@b", "a", "b"), .params = SMTP_PARAM_RET,
	    .ret = SMTP_RET_FULL },
	{ "ret-hdrs-lower", L("MAIL FROM:<a@b> ret=hdrs"), SMTP_EXT_DSN,
	    OK(MAIL), MB("a@b", "a", "b"), .params = SMTP_PARAM_RET,
	    .ret = SMTP_RET_HDRS },
	{ "ret-none", L("MAIL FROM:<a@b> RET=NONE"), SMTP_EXT_DSN,
	    BAD(MAIL, SMTP_CMD_ERR_RET_INVALID) },
	{ "ret-no-value", L("MAIL FROM:<a@b> RET"), SMTP_EXT_DSN,
	    BAD(MAIL, SMTP_CMD_ERR_RET_INVALID) },
	{ "ret-duplicate", L("MAIL FROM:<a@b> RET=FULL RET=HDRS"), SMTP_EXT_DSN,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_DUPLICATE) },
	{ "ret-duplicate-same", L("MAIL FROM:<a@b> RET=FULL RET=FULL"),
	    SMTP_EXT_DSN, BAD(MAIL, SMTP_CMD_ERR_PARAM_DUPLICATE) },
	{ "ret-mtrk-only", L("MAIL FROM:<a@b> RET=FULL"), SMTP_EXT_MTRK,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_NOT_ADVERTISED) },
	{ "envid-plain", L("MAIL FROM:<a@b> ENVID=QQ314159"), SMTP_EXT_DSN,
	    OK(MAIL), MB("a@b", "a", "b"), .params = SMTP_PARAM_ENVID,
	    .envid_raw = "QQ314159", .envid = "QQ314159" },
	{ "envid-xtext", L("MAIL FROM:<a@b> ENVID=a+2Bb+20c"), SMTP_EXT_DSN,
	    OK(MAIL), MB("a@b", "a", "b"), .params = SMTP_PARAM_ENVID,
	    .envid_raw = "a+2Bb+20c", .envid = "a+b c" },
	{ "envid-mtrk-only", L("MAIL FROM:<a@b> ENVID=x"), SMTP_EXT_MTRK,
	    OK(MAIL), MB("a@b", "a", "b"), .params = SMTP_PARAM_ENVID,
	    .envid_raw = "x", .envid = "x" },
	{ "envid-no-at-without-mtrk", L("MAIL FROM:<a@b> ENVID=noat"), ALL,
	    OK(MAIL), MB("a@b", "a", "b"), .params = SMTP_PARAM_ENVID,
	    .envid_raw = "noat", .envid = "noat" },
	{ "envid-lower-hex", L("MAIL FROM:<a@b> ENVID=a+2bb"), SMTP_EXT_DSN,
	    BAD(MAIL, SMTP_CMD_ERR_ENVID_INVALID) },
	{ "envid-nul", L("MAIL FROM:<a@b> ENVID=+00"), SMTP_EXT_DSN,
	    BAD(MAIL, SMTP_CMD_ERR_ENVID_INVALID) },
	{ "envid-crlf", L("MAIL FROM:<a@b> ENVID=a+0D+0A"), SMTP_EXT_DSN,
	    BAD(MAIL, SMTP_CMD_ERR_ENVID_INVALID) },
	{ "envid-8bit", L("MAIL FROM:<a@b> ENVID=+C3+A9"), SMTP_EXT_DSN,
	    BAD(MAIL, SMTP_CMD_ERR_ENVID_INVALID) },
	{ "envid-empty", L("MAIL FROM:<a@b> ENVID="), SMTP_EXT_DSN,
	    BAD(MAIL, SMTP_CMD_ERR_ENVID_INVALID) },
	{ "envid-no-value", L("MAIL FROM:<a@b> ENVID"), SMTP_EXT_DSN,
	    BAD(MAIL, SMTP_CMD_ERR_ENVID_INVALID) },
	{ "envid-equals", L("MAIL FROM:<a@b> ENVID=a=b"), SMTP_EXT_DSN,
	    BAD(MAIL, SMTP_CMD_ERR_ENVID_INVALID) },
	{ "envid-duplicate", L("MAIL FROM:<a@b> ENVID=x ENVID=x"), SMTP_EXT_DSN,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_DUPLICATE) },
	{ "envid-not-advertised", L("MAIL FROM:<a@b> ENVID=x"),
	    SMTP_EXT_SIZE | SMTP_EXT_8BITMIME,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_NOT_ADVERTISED) },
	{ "envid-on-rcpt", L("RCPT TO:<a@b> ENVID=x"), ALL,
	    BAD(RCPT, SMTP_CMD_ERR_PARAM_UNKNOWN) },

	/* --- MTRK (RFC 3885) --- */
	{ "mtrk-ok", L("MAIL FROM:<a@b> ENVID=id1@host.example MTRK=" CERT),
	    ALL, OK(MAIL), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_ENVID | SMTP_PARAM_MTRK,
	    .envid_raw = "id1@host.example", .envid = "id1@host.example",
	    .cert = CERT },
	{ "mtrk-timeout", L("MAIL FROM:<a@b> ENVID=x@y MTRK=" CERT ":86400"),
	    ALL, OK(MAIL), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_ENVID | SMTP_PARAM_MTRK, .envid_raw = "x@y",
	    .envid = "x@y", .cert = CERT, .has_timeout = 1, .timeout = 86400 },
	{ "mtrk-before-envid", L("MAIL FROM:<a@b> MTRK=" CERT ":0 ENVID=x@y"),
	    ALL, OK(MAIL), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_ENVID | SMTP_PARAM_MTRK, .envid_raw = "x@y",
	    .envid = "x@y", .cert = CERT, .has_timeout = 1, .timeout = 0 },
	{ "mtrk-plus-not-xtext",
	    L("MAIL FROM:<a@b> ENVID=x@y MTRK=" CERTP ":999999999"),
	    SMTP_EXT_MTRK, OK(MAIL), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_ENVID | SMTP_PARAM_MTRK, .envid_raw = "x@y",
	    .envid = "x@y", .cert = CERTP, .has_timeout = 1,
	    .timeout = 999999999 },
	{ "mtrk-envid-at-encoded", L("MAIL FROM:<a@b> ENVID=x+40y MTRK=" CERT),
	    ALL, OK(MAIL), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_ENVID | SMTP_PARAM_MTRK, .envid_raw = "x+40y",
	    .envid = "x@y", .cert = CERT },
	{ "mtrk-full-set",
	    L("MAIL FROM:<a@b> SIZE=1000 BODY=8BITMIME RET=HDRS "
	      "ENVID=x@y MTRK=" CERT ":60"),
	    ALL, OK(MAIL), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_SIZE | SMTP_PARAM_BODY | SMTP_PARAM_RET |
	        SMTP_PARAM_ENVID | SMTP_PARAM_MTRK,
	    .size = 1000, .body = SMTP_BODY_8BITMIME, .ret = SMTP_RET_HDRS,
	    .envid_raw = "x@y", .envid = "x@y", .cert = CERT, .has_timeout = 1,
	    .timeout = 60 },
	{ "mtrk-null-sender", L("MAIL FROM:<> ENVID=x@y MTRK=" CERT), ALL,
	    OK(MAIL), .flags = F_NULL,
	    .params = SMTP_PARAM_ENVID | SMTP_PARAM_MTRK, .envid_raw = "x@y",
	    .envid = "x@y", .cert = CERT },
	{ "mtrk-no-envid", L("MAIL FROM:<a@b> MTRK=" CERT), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_MTRK_NO_ENVID) },
	{ "mtrk-envid-no-at", L("MAIL FROM:<a@b> ENVID=abc MTRK=" CERT), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_MTRK_ENVID_FORM) },
	{ "mtrk-envid-empty-fqhn", L("MAIL FROM:<a@b> ENVID=abc+40 MTRK=" CERT),
	    ALL, BAD(MAIL, SMTP_CMD_ERR_MTRK_ENVID_FORM) },
	{ "mtrk-envid-empty-local", L("MAIL FROM:<a@b> ENVID=@h MTRK=" CERT),
	    ALL, BAD(MAIL, SMTP_CMD_ERR_MTRK_ENVID_FORM) },
	{ "mtrk-empty", L("MAIL FROM:<a@b> ENVID=x@y MTRK="), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_MTRK_INVALID) },
	{ "mtrk-no-value", L("MAIL FROM:<a@b> ENVID=x@y MTRK"), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_MTRK_INVALID) },
	{ "mtrk-colon-empty", L("MAIL FROM:<a@b> ENVID=x@y MTRK=" CERT ":"),
	    ALL, BAD(MAIL, SMTP_CMD_ERR_MTRK_INVALID) },
	{ "mtrk-two-colons", L("MAIL FROM:<a@b> ENVID=x@y MTRK=" CERT ":1:2"),
	    ALL, BAD(MAIL, SMTP_CMD_ERR_MTRK_INVALID) },
	{ "mtrk-timeout-10",
	    L("MAIL FROM:<a@b> ENVID=x@y MTRK=" CERT ":1000000000"), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_MTRK_INVALID) },
	{ "mtrk-padded", L("MAIL FROM:<a@b> ENVID=x@y MTRK=" CERT "="), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_MTRK_INVALID) },
	{ "mtrk-xtext-encoded",
	    L("MAIL FROM:<a@b> ENVID=x@y MTRK=rlvY7+2BpTIsTZmG0GaAp4E5L5pkI"),
	    ALL, BAD(MAIL, SMTP_CMD_ERR_MTRK_INVALID) },
	{ "mtrk-noncanon",
	    L("MAIL FROM:<a@b> ENVID=x@y MTRK=VheLhqV/rCKJmplkGFwsyW59pYl"),
	    ALL, BAD(MAIL, SMTP_CMD_ERR_MTRK_INVALID) },
	{ "mtrk-invalid-before-no-envid", L("MAIL FROM:<a@b> MTRK=abc"), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_MTRK_INVALID) },
	{ "mtrk-duplicate",
	    L("MAIL FROM:<a@b> ENVID=x@y MTRK=" CERT " MTRK=" CERT), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_DUPLICATE) },
	{ "mtrk-not-advertised", L("MAIL FROM:<a@b> ENVID=x@y MTRK=" CERT),
	    SMTP_EXT_DSN | SMTP_EXT_SIZE,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_NOT_ADVERTISED) },
	{ "mtrk-helo-session", L("MAIL FROM:<a@b> MTRK=" CERT), 0,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_NOT_ADVERTISED) },
	{ "mtrk-on-rcpt", L("RCPT TO:<a@b> MTRK=" CERT), ALL,
	    BAD(RCPT, SMTP_CMD_ERR_PARAM_UNKNOWN) },
	{ "mtrk-lowercase-keyword", L("MAIL FROM:<a@b> envid=x@y mtrk=" CERT),
	    ALL, OK(MAIL), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_ENVID | SMTP_PARAM_MTRK, .envid_raw = "x@y",
	    .envid = "x@y", .cert = CERT },

	/* --- generic esmtp-param grammar --- */
	{ "param-unknown", L("MAIL FROM:<a@b> FOO=bar"), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_UNKNOWN) },
	{ "param-unknown-novalue", L("MAIL FROM:<a@b> SMTPUTF8"), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_UNKNOWN) },
	{ "param-unknown-empty-value", L("MAIL FROM:<a@b> FOO="), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_UNKNOWN) },
	{ "param-auth-not-advertised", L("MAIL FROM:<a@b> AUTH=<>"), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_NOT_ADVERTISED) },
	{ "param-auth-null", L("MAIL FROM:<a@b> AUTH=<>"), ALL | SMTP_EXT_AUTH,
	    OK(MAIL), MB("a@b", "a", "b"), .params = SMTP_PARAM_AUTH },
	{ "param-auth-xtext", L("MAIL FROM:<a@b> AUTH=a+2Bb@c.test"),
	    ALL | SMTP_EXT_AUTH, OK(MAIL), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_AUTH },
	{ "param-auth-bad-xtext", L("MAIL FROM:<a@b> AUTH=a+2"),
	    ALL | SMTP_EXT_AUTH, BAD(MAIL, SMTP_CMD_ERR_PARAM_SYNTAX) },
	{ "param-auth-empty", L("MAIL FROM:<a@b> AUTH="), ALL | SMTP_EXT_AUTH,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_SYNTAX) },
	{ "param-transid-unknown", L("MAIL FROM:<a@b> TRANSID=<x@y>"), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_UNKNOWN) },
	{ "param-helo-unknown", L("MAIL FROM:<a@b> FOO"), 0,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_UNKNOWN) },
	{ "param-keyword-hyphen-first", L("MAIL FROM:<a@b> -FOO=1"), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_SYNTAX) },
	{ "param-keyword-underscore", L("MAIL FROM:<a@b> FO_O=1"), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_SYNTAX) },
	{ "param-keyword-empty", L("MAIL FROM:<a@b> =1"), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_SYNTAX) },
	{ "param-keyword-digit-hyphen", L("MAIL FROM:<a@b> 8-X=1"), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_UNKNOWN) },
	{ "param-first-error-wins", L("MAIL FROM:<a@b> SIZE=x FOO=1"), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_SIZE_INVALID) },
	{ "param-first-error-wins-2", L("MAIL FROM:<a@b> FOO=1 SIZE=x"), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_UNKNOWN) },
	{ "param-multi-space", L("MAIL FROM:<a@b>   SIZE=5    BODY=7BIT  "),
	    ALL, OK(MAIL), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_SIZE | SMTP_PARAM_BODY, .size = 5,
	    .body = SMTP_BODY_7BIT },
	{ "param-trailing-space", L("MAIL FROM:<a@b> "), 0, OK(MAIL),
	    MB("a@b", "a", "b") },
	{ "param-notify-on-mail", L("MAIL FROM:<a@b> NOTIFY=NEVER"), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_UNKNOWN) },

	/* --- NOTIFY, ORCPT (RFC 3461) --- */
	{ "notify-never", L("RCPT TO:<a@b> NOTIFY=NEVER"), SMTP_EXT_DSN,
	    OK(RCPT), MB("a@b", "a", "b"), .params = SMTP_PARAM_NOTIFY,
	    .notify = SMTP_NOTIFY_NEVER },
	{ "notify-all", L("RCPT TO:<a@b> NOTIFY=SUCCESS,FAILURE,DELAY"),
	    SMTP_EXT_DSN, OK(RCPT), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_NOTIFY,
	    .notify =
	        SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY },
	{ "notify-mixed-case", L("RCPT TO:<a@b> notify=Success,dElAy"),
	    SMTP_EXT_DSN, OK(RCPT), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_NOTIFY,
	    .notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY },
	{ "notify-repeated-element", L("RCPT TO:<a@b> NOTIFY=FAILURE,FAILURE"),
	    SMTP_EXT_DSN, OK(RCPT), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_NOTIFY, .notify = SMTP_NOTIFY_FAILURE },
	{ "notify-never-plus", L("RCPT TO:<a@b> NOTIFY=NEVER,SUCCESS"),
	    SMTP_EXT_DSN, BAD(RCPT, SMTP_CMD_ERR_NOTIFY_INVALID) },
	{ "notify-plus-never", L("RCPT TO:<a@b> NOTIFY=DELAY,NEVER"),
	    SMTP_EXT_DSN, BAD(RCPT, SMTP_CMD_ERR_NOTIFY_INVALID) },
	{ "notify-empty", L("RCPT TO:<a@b> NOTIFY="), SMTP_EXT_DSN,
	    BAD(RCPT, SMTP_CMD_ERR_NOTIFY_INVALID) },
	{ "notify-no-value", L("RCPT TO:<a@b> NOTIFY"), SMTP_EXT_DSN,
	    BAD(RCPT, SMTP_CMD_ERR_NOTIFY_INVALID) },
	{ "notify-empty-element", L("RCPT TO:<a@b> NOTIFY=SUCCESS,,DELAY"),
	    SMTP_EXT_DSN, BAD(RCPT, SMTP_CMD_ERR_NOTIFY_INVALID) },
	{ "notify-trailing-comma", L("RCPT TO:<a@b> NOTIFY=SUCCESS,"),
	    SMTP_EXT_DSN, BAD(RCPT, SMTP_CMD_ERR_NOTIFY_INVALID) },
	{ "notify-unknown", L("RCPT TO:<a@b> NOTIFY=ALWAYS"), SMTP_EXT_DSN,
	    BAD(RCPT, SMTP_CMD_ERR_NOTIFY_INVALID) },
	{ "notify-duplicate", L("RCPT TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER"),
	    SMTP_EXT_DSN, BAD(RCPT, SMTP_CMD_ERR_PARAM_DUPLICATE) },
	{ "notify-mtrk-only", L("RCPT TO:<a@b> NOTIFY=NEVER"), SMTP_EXT_MTRK,
	    BAD(RCPT, SMTP_CMD_ERR_PARAM_NOT_ADVERTISED) },
	{ "orcpt-basic", L("RCPT TO:<a@b> ORCPT=rfc822;b@example.com"),
	    SMTP_EXT_DSN, OK(RCPT), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_ORCPT, .orcpt_raw = "rfc822;b@example.com",
	    .orcpt_type = "rfc822", .orcpt_addr = "b@example.com" },
	{ "orcpt-xtext-kept-raw", L("RCPT TO:<a@b> ORCPT=RFC822;a+2Bb+20c@x"),
	    SMTP_EXT_MTRK, OK(RCPT), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_ORCPT, .orcpt_raw = "RFC822;a+2Bb+20c@x",
	    .orcpt_type = "RFC822", .orcpt_addr = "a+b c@x" },
	{ "orcpt-unregistered-type", L("RCPT TO:<a@b> ORCPT=x-foo;bar"),
	    SMTP_EXT_DSN, OK(RCPT), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_ORCPT, .orcpt_raw = "x-foo;bar",
	    .orcpt_type = "x-foo", .orcpt_addr = "bar" },
	{ "orcpt-semicolon-in-addr", L("RCPT TO:<a@b> ORCPT=rfc822;a;b"),
	    SMTP_EXT_DSN, OK(RCPT), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_ORCPT, .orcpt_raw = "rfc822;a;b",
	    .orcpt_type = "rfc822", .orcpt_addr = "a;b" },
	{ "orcpt-with-notify",
	    L("RCPT TO:<a@b> NOTIFY=SUCCESS ORCPT=rfc822;a@b"), SMTP_EXT_DSN,
	    OK(RCPT), MB("a@b", "a", "b"),
	    .params = SMTP_PARAM_ORCPT | SMTP_PARAM_NOTIFY,
	    .notify = SMTP_NOTIFY_SUCCESS, .orcpt_raw = "rfc822;a@b",
	    .orcpt_type = "rfc822", .orcpt_addr = "a@b" },
	{ "orcpt-empty-addr", L("RCPT TO:<a@b> ORCPT=rfc822;"), SMTP_EXT_DSN,
	    BAD(RCPT, SMTP_CMD_ERR_ORCPT_INVALID) },
	{ "orcpt-empty-type", L("RCPT TO:<a@b> ORCPT=;a@b"), SMTP_EXT_DSN,
	    BAD(RCPT, SMTP_CMD_ERR_ORCPT_INVALID) },
	{ "orcpt-no-semicolon", L("RCPT TO:<a@b> ORCPT=rfc822"), SMTP_EXT_DSN,
	    BAD(RCPT, SMTP_CMD_ERR_ORCPT_INVALID) },
	{ "orcpt-type-special", L("RCPT TO:<a@b> ORCPT=rfc.822;a"),
	    SMTP_EXT_DSN, BAD(RCPT, SMTP_CMD_ERR_ORCPT_INVALID) },
	{ "orcpt-nonprint", L("RCPT TO:<a@b> ORCPT=rfc822;a+00"), SMTP_EXT_DSN,
	    BAD(RCPT, SMTP_CMD_ERR_ORCPT_INVALID) },
	{ "orcpt-lower-hex", L("RCPT TO:<a@b> ORCPT=rfc822;a+2b"), SMTP_EXT_DSN,
	    BAD(RCPT, SMTP_CMD_ERR_ORCPT_INVALID) },
	{ "orcpt-no-value", L("RCPT TO:<a@b> ORCPT"), SMTP_EXT_DSN,
	    BAD(RCPT, SMTP_CMD_ERR_ORCPT_INVALID) },
	{ "orcpt-duplicate", L("RCPT TO:<a@b> ORCPT=rfc822;a ORCPT=rfc822;a"),
	    SMTP_EXT_DSN, BAD(RCPT, SMTP_CMD_ERR_PARAM_DUPLICATE) },
	{ "orcpt-not-advertised", L("RCPT TO:<a@b> ORCPT=rfc822;a"),
	    SMTP_EXT_SIZE, BAD(RCPT, SMTP_CMD_ERR_PARAM_NOT_ADVERTISED) },
	{ "orcpt-on-mail", L("MAIL FROM:<a@b> ORCPT=rfc822;a"), ALL,
	    BAD(MAIL, SMTP_CMD_ERR_PARAM_UNKNOWN) },

	/* --- other verbs --- */
	{ "ehlo", L("EHLO mail.example.com"), 0, OK(SMTP_VERB_EHLO),
	    .arg = "mail.example.com", .flags = F_DOMOK },
	{ "ehlo-literal", L("ehlo [192.0.2.1]"), 0, OK(SMTP_VERB_EHLO),
	    .arg = "[192.0.2.1]", .flags = F_DOMOK },
	{ "ehlo-literal-v6", L("EHLO [IPv6:2001:db8::1]"), 0,
	    OK(SMTP_VERB_EHLO), .arg = "[IPv6:2001:db8::1]", .flags = F_DOMOK },
	{ "ehlo-underscore-accepted", L("EHLO my_host"), 0, OK(SMTP_VERB_EHLO),
	    .arg = "my_host" },
	{ "ehlo-two-words", L("EHLO a b"), 0, OK(SMTP_VERB_EHLO),
	    .arg = "a b" },
	{ "ehlo-missing", L("EHLO"), 0,
	    BAD(SMTP_VERB_EHLO, SMTP_CMD_ERR_ARG_MISSING) },
	{ "ehlo-missing-space", L("EHLO "), 0,
	    BAD(SMTP_VERB_EHLO, SMTP_CMD_ERR_ARG_MISSING) },
	{ "helo", L("HELO x"), 0, OK(SMTP_VERB_HELO), .arg = "x",
	    .flags = F_DOMOK },
	{ "helo-missing", L("HELO"), 0,
	    BAD(SMTP_VERB_HELO, SMTP_CMD_ERR_ARG_MISSING) },
	{ "data", L("DATA"), 0, OK(SMTP_VERB_DATA), .arg = "" },
	{ "data-lower", L("data"), 0, OK(SMTP_VERB_DATA) },
	{ "data-space", L("DATA "), 0,
	    BAD(SMTP_VERB_DATA, SMTP_CMD_ERR_ARG_UNEXPECTED) },
	{ "data-arg", L("DATA x"), 0,
	    BAD(SMTP_VERB_DATA, SMTP_CMD_ERR_ARG_UNEXPECTED) },
	{ "rset", L("RSET"), 0, OK(SMTP_VERB_RSET) },
	{ "rset-arg", L("RSET x"), 0,
	    BAD(SMTP_VERB_RSET, SMTP_CMD_ERR_ARG_UNEXPECTED) },
	{ "quit", L("QUIT"), 0, OK(SMTP_VERB_QUIT) },
	{ "quit-arg", L("QUIT now"), 0,
	    BAD(SMTP_VERB_QUIT, SMTP_CMD_ERR_ARG_UNEXPECTED) },
	{ "starttls", L("STARTTLS"), 0, OK(SMTP_VERB_STARTTLS) },
	{ "starttls-lower", L("starttls"), 0, OK(SMTP_VERB_STARTTLS) },
	{ "starttls-arg", L("STARTTLS x"), 0,
	    BAD(SMTP_VERB_STARTTLS, SMTP_CMD_ERR_ARG_UNEXPECTED) },
	{ "noop", L("NOOP"), 0, OK(SMTP_VERB_NOOP), .arg = "" },
	{ "noop-arg", L("NOOP hello there"), 0, OK(SMTP_VERB_NOOP),
	    .arg = "hello there" },
	{ "vrfy", L("VRFY user"), 0, OK(SMTP_VERB_VRFY), .arg = "user" },
	{ "vrfy-missing", L("VRFY"), 0,
	    BAD(SMTP_VERB_VRFY, SMTP_CMD_ERR_ARG_MISSING) },
	{ "unknown-help", L("HELP"), 0, BAD(UNK, SMTP_CMD_ERR_UNKNOWN_VERB) },
	{ "auth", L("AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q="), 0, OK(SMTP_VERB_AUTH),
	    .arg = "PLAIN dGVzdAB0ZXN0AHRlc3Q=" },
	{ "auth-missing", L("AUTH"), 0,
	    BAD(SMTP_VERB_AUTH, SMTP_CMD_ERR_ARG_MISSING) },
	{ "unknown-bdat", L("BDAT 10 LAST"), 0,
	    BAD(UNK, SMTP_CMD_ERR_UNKNOWN_VERB) },
	{ "unknown-empty", L(""), 0, BAD(UNK, SMTP_CMD_ERR_UNKNOWN_VERB) },
	{ "unknown-space", L(" "), 0, BAD(UNK, SMTP_CMD_ERR_UNKNOWN_VERB) },
	{ "unknown-leading-space", L(" MAIL FROM:<a@b>"), 0,
	    BAD(UNK, SMTP_CMD_ERR_UNKNOWN_VERB) },
	{ "unknown-mailfrom", L("MAILFROM:<a@b>"), 0,
	    BAD(UNK, SMTP_CMD_ERR_UNKNOWN_VERB) },
	{ "unknown-starttlsx", L("STARTTLSX"), 0,
	    BAD(UNK, SMTP_CMD_ERR_UNKNOWN_VERB) },
	{ "unknown-prefix", L("EHL"), 0, BAD(UNK, SMTP_CMD_ERR_UNKNOWN_VERB) },
	{ "unknown-smuggled-mail", L("MAIL:FROM:<a@b>"), 0,
	    BAD(UNK, SMTP_CMD_ERR_UNKNOWN_VERB) },
};

static const char *
cmd_name(const void *row)
{
	return ((const struct cmd_row *)row)->name;
}

#define E(s) ((s) != NULL ? (s) : "")

static void
check_row(const struct cmd_row *r, const char *line, size_t n)
{
	struct smtp_cmd *c = malloc(sizeof(*c));
	enum smtp_cmd_error err = SMTP_CMD_ERR_COUNT;
	int flags;

	assert_non_null(c);
	memset(c, 0xa5, sizeof(*c));
	assert_int_equal(smtp_cmd_parse(line, n, r->ext, c, &err), r->rc);
	assert_int_equal(err, r->err);
	assert_int_equal(c->verb, r->verb);
	if (r->rc == 0) {
		if (r->arg != NULL)
			assert_string_equal(c->arg, r->arg);
		assert_string_equal(c->path.mailbox, E(r->mailbox));
		assert_string_equal(c->path.local, E(r->local));
		assert_string_equal(c->path.domain, E(r->domain));
		flags = (c->path.is_null ? F_NULL : 0) |
		    (c->path.is_postmaster ? F_PM : 0) |
		    (c->path.had_route ? F_ROUTE : 0) |
		    (c->path.local_quoted ? F_QUOTED : 0) |
		    (c->path.domain_literal ? F_LITERAL : 0) |
		    (c->domain_ok ? F_DOMOK : 0);
		assert_int_equal(flags, r->flags);
		assert_int_equal(c->params, r->params);
		assert_true(c->size == r->size);
		assert_int_equal(c->body, r->body);
		assert_int_equal(c->ret, r->ret);
		assert_int_equal(c->notify, r->notify);
		assert_string_equal(c->envid_raw, E(r->envid_raw));
		assert_string_equal(c->envid, E(r->envid));
		assert_string_equal(c->mtrk.certifier, E(r->cert));
		assert_int_equal(c->mtrk.has_timeout, r->has_timeout);
		assert_int_equal(c->mtrk.timeout, r->timeout);
		assert_string_equal(c->orcpt_raw, E(r->orcpt_raw));
		assert_string_equal(c->orcpt_type, E(r->orcpt_type));
		assert_string_equal(c->orcpt_addr, E(r->orcpt_addr));
	}
	/* err_out may be NULL */
	assert_int_equal(smtp_cmd_parse(line, n, r->ext, c, NULL), r->rc);
	free(c);
}

static void
test_cmd(void **state)
{
	const struct cmd_row *r = *state;
	char *copy;

	/* Parse from an exactly-sized heap copy so that ASan catches any
	 * read past the end of the line. */
	copy = malloc(r->n ? r->n : 1);
	assert_non_null(copy);
	memcpy(copy, r->line, r->n);
	check_row(r, copy, r->n);
	free(copy);
}

/* Lines built to a given length: prefix, filler to reach len, suffix. */
struct len_row {
	const char *name;
	const char *prefix;
	char fill;
	const char *suffix;
	size_t len; /* total line length, without CRLF */
	unsigned int ext;
	int rc;
	enum smtp_cmd_error err;
	enum smtp_verb verb;
	size_t envid_len, orcpt_addr_len; /* checked when non-zero */
};

static const struct len_row len_rows[] = {
	/* RFC 5321 §4.5.3.1.4: 512 with CRLF; 2048 for MAIL/RCPT */
	{ "noop-510", "NOOP ", 'x', "", 510, 0, 0, SMTP_CMD_OK, SMTP_VERB_NOOP,
	    0, 0 },
	{ "noop-511", "NOOP ", 'x', "", 511, 0, -1, SMTP_CMD_ERR_LINE_TOO_LONG,
	    SMTP_VERB_NOOP, 0, 0 },
	{ "ehlo-511", "EHLO ", 'x', "", 511, 0, -1, SMTP_CMD_ERR_LINE_TOO_LONG,
	    SMTP_VERB_EHLO, 0, 0 },
	{ "unknown-510", "XXXX ", 'x', "", 510, 0, -1,
	    SMTP_CMD_ERR_UNKNOWN_VERB, SMTP_VERB_UNKNOWN, 0, 0 },
	{ "unknown-511", "XXXX ", 'x', "", 511, 0, -1,
	    SMTP_CMD_ERR_LINE_TOO_LONG, SMTP_VERB_UNKNOWN, 0, 0 },
	{ "unknown-no-space-huge", "X", 'x', "", 5000, 0, -1,
	    SMTP_CMD_ERR_LINE_TOO_LONG, SMTP_VERB_UNKNOWN, 0, 0 },
	{ "mail-2046", "MAIL FROM:<a@b>", ' ', "", 2046, 0, 0, SMTP_CMD_OK,
	    SMTP_VERB_MAIL, 0, 0 },
	{ "mail-2047", "MAIL FROM:<a@b>", ' ', "", 2047, 0, -1,
	    SMTP_CMD_ERR_LINE_TOO_LONG, SMTP_VERB_MAIL, 0, 0 },
	{ "rcpt-2046", "RCPT TO:<a@b>", ' ', "", 2046, 0, 0, SMTP_CMD_OK,
	    SMTP_VERB_RCPT, 0, 0 },
	{ "rcpt-2047", "RCPT TO:<a@b>", ' ', "", 2047, 0, -1,
	    SMTP_CMD_ERR_LINE_TOO_LONG, SMTP_VERB_RCPT, 0, 0 },
	{ "mail-huge", "MAIL FROM:<a@b>", ' ', "", 100000, 0, -1,
	    SMTP_CMD_ERR_LINE_TOO_LONG, SMTP_VERB_MAIL, 0, 0 },
	/* RFC 5321 §4.5.3.1.1: local-part 64 */
	{ "local-64", "MAIL FROM:<", 'l', "@x>", 11 + 64 + 3, 0, 0, SMTP_CMD_OK,
	    SMTP_VERB_MAIL, 0, 0 },
	{ "local-65", "MAIL FROM:<", 'l', "@x>", 11 + 65 + 3, 0, -1,
	    SMTP_CMD_ERR_SENDER_TOO_LONG, SMTP_VERB_MAIL, 0, 0 },
	{ "rcpt-local-65", "RCPT TO:<", 'l', "@x>", 9 + 65 + 3, 0, -1,
	    SMTP_CMD_ERR_RCPT_TOO_LONG, SMTP_VERB_RCPT, 0, 0 },
	/* RFC 5321 §4.5.3.1.3: path 256 including "<" and ">" */
	{ "path-256", "MAIL FROM:<a@", 'd', ".x>", 10 + 256, 0, 0, SMTP_CMD_OK,
	    SMTP_VERB_MAIL, 0, 0 },
	{ "path-257", "MAIL FROM:<a@", 'd', ".x>", 10 + 257, 0, -1,
	    SMTP_CMD_ERR_SENDER_TOO_LONG, SMTP_VERB_MAIL, 0, 0 },
	{ "rcpt-path-257", "RCPT TO:<a@", 'd', ".x>", 8 + 257, 0, -1,
	    SMTP_CMD_ERR_RCPT_TOO_LONG, SMTP_VERB_RCPT, 0, 0 },
	/* RFC 3461 §4.4: ENVID decoded 1..100 */
	{ "envid-100", "MAIL FROM:<a@b> ENVID=", 'e', "", 22 + 100,
	    SMTP_EXT_DSN, 0, SMTP_CMD_OK, SMTP_VERB_MAIL, 100, 0 },
	{ "envid-101", "MAIL FROM:<a@b> ENVID=", 'e', "", 22 + 101,
	    SMTP_EXT_DSN, -1, SMTP_CMD_ERR_ENVID_INVALID, SMTP_VERB_MAIL, 0,
	    0 },
	/* RFC 3461 §4.2: ORCPT decoded type ";" address up to 500 */
	{ "orcpt-500", "RCPT TO:<a@b> ORCPT=rfc822;", 'o', "", 27 + 493,
	    SMTP_EXT_DSN, 0, SMTP_CMD_OK, SMTP_VERB_RCPT, 0, 493 },
	{ "orcpt-501", "RCPT TO:<a@b> ORCPT=rfc822;", 'o', "", 27 + 494,
	    SMTP_EXT_DSN, -1, SMTP_CMD_ERR_ORCPT_INVALID, SMTP_VERB_RCPT, 0,
	    0 },
};

static const char *
len_name(const void *row)
{
	return ((const struct len_row *)row)->name;
}

static void
test_len(void **state)
{
	const struct len_row *r = *state;
	size_t pl = strlen(r->prefix), sl = strlen(r->suffix), i;
	char *line = malloc(r->len);
	struct smtp_cmd *c = malloc(sizeof(*c));
	enum smtp_cmd_error err;

	assert_non_null(line);
	assert_non_null(c);
	assert_true(r->len >= pl + sl);
	memcpy(line, r->prefix, pl);
	memset(line + pl, r->fill, r->len - pl - sl);
	memcpy(line + r->len - sl, r->suffix, sl);
	/* path rows: break the filler into 63-octet labels */
	if (r->fill == 'd')
		for (i = pl + 63; i < r->len - sl; i += 64)
			line[i] = '.';
	assert_int_equal(smtp_cmd_parse(line, r->len, r->ext, c, &err), r->rc);
	assert_int_equal(err, r->err);
	assert_int_equal(c->verb, r->verb);
	if (r->envid_len)
		assert_int_equal(strlen(c->envid), r->envid_len);
	if (r->orcpt_addr_len)
		assert_int_equal(strlen(c->orcpt_addr), r->orcpt_addr_len);
	free(line);
	free(c);
}

/* The reply table, pinned (digest mtrk-rfc3885 §10). */
struct reply_row {
	const char *name;
	enum smtp_cmd_error err;
	int code;
	const char *status;
};

static const struct reply_row reply_rows[] = {
	{ "line-too-long", SMTP_CMD_ERR_LINE_TOO_LONG, 500, "5.5.2" },
	{ "nul", SMTP_CMD_ERR_NUL, 501, "5.5.2" },
	{ "bad-char", SMTP_CMD_ERR_BAD_CHAR, 501, "5.5.2" },
	{ "unknown-verb", SMTP_CMD_ERR_UNKNOWN_VERB, 500, "5.5.1" },
	{ "arg-missing", SMTP_CMD_ERR_ARG_MISSING, 501, "5.5.4" },
	{ "arg-unexpected", SMTP_CMD_ERR_ARG_UNEXPECTED, 501, "5.5.4" },
	{ "mail-syntax", SMTP_CMD_ERR_MAIL_SYNTAX, 501, "5.5.2" },
	{ "rcpt-syntax", SMTP_CMD_ERR_RCPT_SYNTAX, 501, "5.5.2" },
	{ "sender-syntax", SMTP_CMD_ERR_SENDER_SYNTAX, 553, "5.1.7" },
	{ "sender-too-long", SMTP_CMD_ERR_SENDER_TOO_LONG, 501, "5.1.7" },
	{ "rcpt-addr-syntax", SMTP_CMD_ERR_RCPT_ADDR_SYNTAX, 553, "5.1.3" },
	{ "rcpt-null", SMTP_CMD_ERR_RCPT_NULL, 553, "5.1.3" },
	{ "rcpt-too-long", SMTP_CMD_ERR_RCPT_TOO_LONG, 501, "5.1.3" },
	{ "param-syntax", SMTP_CMD_ERR_PARAM_SYNTAX, 501, "5.5.4" },
	{ "param-unknown", SMTP_CMD_ERR_PARAM_UNKNOWN, 555, "5.5.4" },
	{ "param-not-advertised", SMTP_CMD_ERR_PARAM_NOT_ADVERTISED, 555,
	    "5.5.4" },
	{ "param-duplicate", SMTP_CMD_ERR_PARAM_DUPLICATE, 501, "5.5.4" },
	{ "size-invalid", SMTP_CMD_ERR_SIZE_INVALID, 501, "5.5.4" },
	{ "body-invalid", SMTP_CMD_ERR_BODY_INVALID, 501, "5.5.4" },
	{ "ret-invalid", SMTP_CMD_ERR_RET_INVALID, 501, "5.5.4" },
	{ "envid-invalid", SMTP_CMD_ERR_ENVID_INVALID, 501, "5.5.4" },
	{ "mtrk-invalid", SMTP_CMD_ERR_MTRK_INVALID, 501, "5.5.4" },
	{ "mtrk-no-envid", SMTP_CMD_ERR_MTRK_NO_ENVID, 501, "5.5.4" },
	{ "mtrk-envid-form", SMTP_CMD_ERR_MTRK_ENVID_FORM, 501, "5.5.4" },
	{ "notify-invalid", SMTP_CMD_ERR_NOTIFY_INVALID, 501, "5.5.4" },
	{ "orcpt-invalid", SMTP_CMD_ERR_ORCPT_INVALID, 501, "5.5.4" },
};

static const char *
reply_name(const void *row)
{
	return ((const struct reply_row *)row)->name;
}

static void
test_reply(void **state)
{
	const struct reply_row *r = *state;
	const struct smtp_reply *rep = smtp_cmd_reply(r->err);

	assert_non_null(rep);
	assert_int_equal(rep->code, r->code);
	assert_string_equal(rep->status, r->status);
	assert_string_equal(rep->name, r->name);
	assert_non_null(rep->text);
	assert_true(strlen(rep->text) > 0);
	/* the enhanced code's class matches the reply's (RFC 3463 §2) */
	assert_int_equal(rep->status[0] - '0', rep->code / 100);
	assert_null(strpbrk(rep->text, "\r\n"));
}

/* Every error code has a row, and the out-of-range ones have none. */
static void
test_reply_complete(void **state)
{
	int e;

	(void)state;
	assert_int_equal(
	    sizeof(reply_rows) / sizeof(reply_rows[0]), SMTP_CMD_ERR_COUNT - 1);
	for (e = 1; e < SMTP_CMD_ERR_COUNT; e++)
		assert_non_null(smtp_cmd_reply((enum smtp_cmd_error)e));
	assert_null(smtp_cmd_reply(SMTP_CMD_OK));
	assert_null(smtp_cmd_reply(SMTP_CMD_ERR_COUNT));
	assert_null(smtp_cmd_reply((enum smtp_cmd_error) - 1));
}

static void
test_verb_name(void **state)
{
	(void)state;
	assert_string_equal(smtp_verb_name(SMTP_VERB_MAIL), "MAIL");
	assert_string_equal(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS");
	assert_string_equal(smtp_verb_name(SMTP_VERB_UNKNOWN), "UNKNOWN");
	assert_string_equal(smtp_verb_name((enum smtp_verb)99), "UNKNOWN");
}

struct dom_row {
	const char *name;
	const char *s;
	int ok;
};

static const struct dom_row dom_rows[] = {
	{ "simple", "example.com", 1 },
	{ "single-label", "localhost", 1 },
	{ "digit-label", "1.2.3.4", 1 },
	{ "ipv4-literal", "[1.2.3.4]", 1 },
	{ "ipv6-literal", "[IPv6:fe80::1]", 1 },
	{ "empty", "", 0 },
	{ "trailing-dot", "example.com.", 0 },
	{ "hyphen-label-end", "a-.b", 0 },
	{ "underscore", "_dmarc.example", 0 },
	{ "space", "a b", 0 },
	{ "literal-no-close", "[1.2.3.4", 0 },
	{ "ipv6-long", "[IPv6:0000:0000:0000:0000:0000:0000:0000:0000:0]", 0 },
};

static const char *
dom_name(const void *row)
{
	return ((const struct dom_row *)row)->name;
}

static void
test_domain(void **state)
{
	const struct dom_row *r = *state;

	assert_int_equal(smtp_cmd_domain_valid(r->s, strlen(r->s)), r->ok);
}

/* RFC 5321 §4.5.3.1.2 domain 255 and RFC 1035 label 63, checked on the
 * helper since the 256-octet path limit is reached first in a path. */
static void
test_domain_limits(void **state)
{
	char d[300];
	size_t i;

	(void)state;
	memset(d, 'a', sizeof(d));
	assert_int_equal(smtp_cmd_domain_valid(d, 63), 1);
	assert_int_equal(smtp_cmd_domain_valid(d, 64), 0);
	for (i = 63; i < sizeof(d); i += 64)
		d[i] = '.';
	assert_int_equal(smtp_cmd_domain_valid(d, 255), 1);
	assert_int_equal(smtp_cmd_domain_valid(d, 256), 0); /* ends in '.' */
	d[255] = 'a';
	assert_int_equal(smtp_cmd_domain_valid(d, 256), 0); /* too long */
}

/* smtp_helo_valid(): what EHLO/HELO may carry into Received:. */
static const struct dom_row helo_rows[] = {
	{ "simple", "client.example.com", 1 },
	{ "single-label", "localhost", 1 },
	{ "trailing-dot", "client.example.com.", 1 },
	{ "underscore", "my_pc.example", 1 },
	{ "underscore-only-label", "_.example", 1 },
	{ "digits", "1.2.3.4", 1 },
	{ "hyphen-inside", "a-b.example", 1 },
	{ "ipv4-literal", "[192.0.2.1]", 1 },
	{ "ipv6-literal", "[IPv6:2001:db8::1]", 1 },
	{ "ipv6-literal-v4-tail", "[IPv6:::ffff:192.0.2.1]", 1 },
	{ "label-63",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	    "example",
	    1 },
	{ "empty", "", 0 },
	{ "dot-only", ".", 0 },
	{ "two-trailing-dots", "example..", 0 },
	{ "empty-label", "a..b", 0 },
	{ "leading-dot", ".example", 0 },
	{ "leading-hyphen", "-a.example", 0 },
	{ "trailing-hyphen", "a-.example", 0 },
	{ "label-64",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	    "example",
	    0 },
	{ "space", "evil by trusted.example", 0 },
	{ "forged-trace", "evil) by trusted.example (Postfix) with ESMTPS id X",
	    0 },
	{ "semicolon", "a;b", 0 },
	{ "parenthesis", "a(b)", 0 },
	{ "angle", "<a>", 0 },
	{ "quote", "\"a\"", 0 },
	{ "at", "a@b", 0 },
	{ "slash", "a/b", 0 },
	{ "literal-no-close", "[1.2.3.4", 0 },
	{ "literal-bad-ipv4", "[1.2.3.256]", 0 },
	{ "literal-bad-ipv6", "[IPv6:zz::1]", 0 },
	{ "literal-general", "[x-tag:abc]", 0 },
	{ "literal-dot", "[1.2.3.4].", 0 },
};

static void
test_helo(void **state)
{
	const struct dom_row *r = *state;

	assert_int_equal(smtp_helo_valid(r->s, strlen(r->s)), r->ok);
}

/* Every name smtp_cmd_domain_valid() accepts is a valid HELO name, and
 * the lengths hold with a trailing dot (RFC 1035: 255 without it). */
static void
test_helo_limits(void **state)
{
	size_t i;
	char d[300];

	(void)state;
	for (i = 0; i < sizeof(dom_rows) / sizeof(dom_rows[0]); i++)
		if (dom_rows[i].ok)
			assert_int_equal(smtp_helo_valid(dom_rows[i].s,
			                     strlen(dom_rows[i].s)),
			    1);
	memset(d, 'a', sizeof(d));
	for (i = 63; i < sizeof(d); i += 64)
		d[i] = '.';
	assert_int_equal(smtp_helo_valid(d, 255), 1);
	assert_int_equal(smtp_helo_valid(d, 256), 1); /* 255 and the dot */
	d[255] = 'a';
	assert_int_equal(smtp_helo_valid(d, 256), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_complete),
		cmocka_unit_test(test_verb_name),
		cmocka_unit_test(test_domain_limits),
		cmocka_unit_test(test_helo_limits),
	};
	int failed = 0;

	failed += TABLE_RUN("smtp_cmd_parse", test_cmd, cmd_rows, cmd_name);
	failed += TABLE_RUN("smtp_cmd_len", test_len, len_rows, len_name);
	failed +=
	    TABLE_RUN("smtp_cmd_reply", test_reply, reply_rows, reply_name);
	failed += TABLE_RUN("smtp_cmd_domain", test_domain, dom_rows, dom_name);
	failed += TABLE_RUN("smtp_helo_valid", test_helo, helo_rows, dom_name);
	failed += cmocka_run_group_tests(tests, NULL, NULL);
	return failed;
}
