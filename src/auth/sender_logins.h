/*
 * sender_logins: who may use which MAIL FROM after AUTH (PRODUCT.md
 * "sender_logins"), and the check itself.
 *
 * The file holds "address: login, login..." lines; '#' comment lines and
 * blank lines are skipped, blanks around fields ignored, CRLF accepted.
 * An address is as in the aliases file (alias.h: printable US-ASCII
 * without SP , : < > " ( ) ; [ ] \, one '@' at least, a local part and a
 * domain); a login is 1..255 octets without blanks, ',' or control
 * characters (a Dovecot login need not be an address).  An address
 * listed twice is an error at its second line.  Errors are "file:line:
 * what".
 *
 * Case (RFC 5321 §2.4): the domain is compared ignoring ASCII case; the
 * local part exactly ("The local-part of a mailbox MUST BE treated as case
 * sensitive"): a grant to Alice@example.test is not one to
 * alice@example.test.  Refusing a spelling that happens to reach the same
 * mailbox costs a retyped address; granting one could hand a mailbox to
 * the wrong login.  Logins are compared exactly (they come canonical from
 * the auth backend).
 *
 * The rule: the null sender (MAIL FROM:<>, RFC 8098 MDNs, vacation
 * replies) is always allowed; an address listed in the table may be used
 * by the logins listed for it and by no one else; an address not listed
 * may be used by the login that is that address (the only rule when there
 * is no table).
 */
#ifndef MSGTRK_SENDER_LOGINS_H
#define MSGTRK_SENDER_LOGINS_H

#include <stddef.h>

#define SENDER_LOGINS_LINE_MAX 4096
#define SENDER_LOGINS_FILE_MAX (16 * 1024 * 1024)
#define SENDER_LOGINS_ENTRIES_MAX 100000
#define SENDER_LOGINS_PER_ADDRESS_MAX 100
/* RFC 4616 §2: a SASL authcid is at most 255 octets. */
#define SENDER_LOGINS_LOGIN_MAX 255

struct sender_logins;

/* Parses len bytes of text (file names it in errors).  Returns the table,
 * or NULL with "file:line: what" (or "file: out of memory") in err. */
struct sender_logins *sender_logins_parse(
    const char *file, const char *text, size_t len, char *err, size_t errsize);

/* Reads (at most SENDER_LOGINS_FILE_MAX bytes) and parses the file at
 * path.  Returns NULL with "path: what" or "path:line: what" in err. */
struct sender_logins *sender_logins_load(
    const char *path, char *err, size_t errsize);

/* Accepts NULL. */
void sender_logins_free(struct sender_logins *t);

/* Addresses in the table. */
size_t sender_logins_count(const struct sender_logins *t);

/* Returns 1 if login may use mail_from (the reverse-path without <>; ""
 * for the null sender) as the rule above says, else 0.  t may be NULL
 * (no sender_logins file). */
int sender_logins_allowed(
    const struct sender_logins *t, const char *login, const char *mail_from);

#endif /* MSGTRK_SENDER_LOGINS_H */
