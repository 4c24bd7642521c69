/*
 * auth_passwd: the passwd backend's file (PRODUCT.md "auth = passwd:/path").
 *
 * One "login:hash" a line; '#' comment lines and blank lines skipped,
 * blanks around the two fields ignored, CRLF accepted.  A login is 1..255
 * octets without blanks, ':' or control characters; logins are looked
 * up with the part after the last '@' in any case and the rest exact (RFC
 * 5321 §2.4, as sender_logins.h), and a second line for the same login is
 * an error.  The hash is what crypt(3) writes; accepted:
 *
 *   $y$...       yescrypt (mkpasswd -m yescrypt; Debian's default)
 *   $2b$, $2y$   bcrypt (mkpasswd -m bcrypt; $2y$ is PHP's spelling of
 *                the same)
 *   $6$...       sha512-crypt (openssl passwd -6)
 *   * or !...    a locked login ("!" before a hash as usermod -L writes
 *                it): it exists, and never logs in
 *
 * Refused at load, with file:line: an empty hash (in /etc/shadow: no
 * password at all), DES crypt, MD5-crypt $1$, $2a$ (the old bcrypt with
 * its 8-bit bug), sha256-crypt $5$ and every other scheme, a hash that
 * libxcrypt calls invalid or legacy (crypt_checksalt), and a setting
 * without its hash.  Errors are "file:line: what".
 *
 * A login that is unknown or locked costs a crypt(3) of the password with
 * the setting of the file's first usable hash (a built-in yescrypt
 * setting when there is none), so it takes as long as a wrong password.
 */
#ifndef MSGTRK_AUTH_PASSWD_H
#define MSGTRK_AUTH_PASSWD_H

#include <stddef.h>

#define AUTH_PASSWD_LINE_MAX 4096
#define AUTH_PASSWD_FILE_MAX (16 * 1024 * 1024)
#define AUTH_PASSWD_ENTRIES_MAX 100000
/* Worker threads for crypt(3) (yescrypt is slow by design: ~50 ms), and
 * checks waiting for them; past that a check is AUTH_TEMP at once. */
#define AUTH_PASSWD_THREADS 2
#define AUTH_PASSWD_QUEUE_MAX 256

struct auth_passwd_table;

/* Parses len bytes of text (file names it in errors).  Returns the table,
 * or NULL with "file:line: what" in err. */
struct auth_passwd_table *auth_passwd_parse(
    const char *file, const char *text, size_t len, char *err, size_t errsize);

/* Reads and parses the file at path. */
struct auth_passwd_table *auth_passwd_load(
    const char *path, char *err, size_t errsize);

void auth_passwd_table_free(struct auth_passwd_table *t);

size_t auth_passwd_count(const struct auth_passwd_table *t);

/* Looks login up: returns its hash (NULL: unknown), *locked_out set, and
 * *canonical_out the login as the file spells it.  Valid as long as t. */
const char *auth_passwd_lookup(const struct auth_passwd_table *t,
    const char *login, int *locked_out, const char **canonical_out);

/* The setting unknown and locked logins are hashed with. */
const char *auth_passwd_dummy(const struct auth_passwd_table *t);

#endif /* MSGTRK_AUTH_PASSWD_H */
