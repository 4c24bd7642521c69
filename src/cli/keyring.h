/*
 * keyring: the user's record of tracked messages (PRODUCT.md "msgtrk"):
 * a text file, one JSON object a line,
 *   {"envid":..., "secret":..., "server":..., "mtqp":..., "submitted":...,
 *    "recipients":[...]}
 * envid is the unique-envid as sent in ENVID= (xtext, the form TRACK
 * takes), secret the unpadded base64 of A, server the SMTP server
 * "host:port", mtqp the first MTQP server "host[:port]", submitted an RFC
 * 5322 date.  Mode 0600 in a 0700 directory; every update rewrites the
 * file atomically (temporary file in the same directory, fsync, rename,
 * fsync of the directory) under an flock(2) on "<file>.lock", so
 * concurrent "msgtrk send" runs never lose an entry.
 */
#ifndef MSGTRK_CLI_KEYRING_H
#define MSGTRK_CLI_KEYRING_H

#include <stddef.h>

#include "msgtrk/date.h"
#include "msgtrk/mtqp.h"
#include "msgtrk/mtrk.h"

/* Our limits: the whole file (some 100000 entries), and one line (10000
 * recipients of 100 octets each). */
#define KEYRING_FILE_MAX (64UL * 1024 * 1024)
#define KEYRING_LINE_MAX (1024UL * 1024)
/* "host:port" with a bracketed IPv6 literal. */
#define KEYRING_HOST_MAX (MTQP_DOMAIN_MAX + 8)

struct keyring_entry {
	char envid[MTQP_ENVID_TEXT_MAX + 1];
	char secret[MTRK_SECRET_B64_SIZE];
	char server[KEYRING_HOST_MAX + 1];
	char mtqp[KEYRING_HOST_MAX + 1];
	char submitted[DATE_MAX];
	size_t nrecipients;
};

/* Writes the default path, $HOME/.local/share/msgtrk/keyring, into out.
 * Returns 0, or -1 with err set (HOME unset or relative, too long). */
int keyring_default_path(char *out, size_t outsize, char *err, size_t errsize);

/* Creates the missing directories of path's parent (the file itself is
 * not touched), mode 0700.  Returns 0, or -1 with err set ("dir: what"). */
int keyring_mkdirs(const char *path, char *err, size_t errsize);

/* Appends e with the n recipients rcpts to the keyring at path, creating
 * missing directories (0700) and the file (0600).  The existing lines are
 * kept as they are.  Returns 0, or -1 with err set ("path: what"); the
 * keyring is then unchanged. */
int keyring_append(const char *path, const struct keyring_entry *e,
    const char *const *rcpts, size_t n, char *err, size_t errsize);

/* Finds the last entry whose envid equals envid (exactly, as TRACK takes
 * it).  Lines that are empty are skipped; a malformed line is an error
 * ("path:LINE: what").  Returns 1 with *out filled, 0 if there is none
 * (also when the file does not exist), -1 with err set.  Wipe *out with
 * keyring_entry_clear(). */
int keyring_lookup(const char *path, const char *envid,
    struct keyring_entry *out, char *err, size_t errsize);

/* Parses one keyring line (n octets, no newline) into *out.  Returns 0,
 * or -1 with err set (JSON error, missing or too long field). */
int keyring_parse_line(const char *s, size_t n, struct keyring_entry *out,
    char *err, size_t errsize);

/* Appends e as one keyring line (with its newline) to b.  Returns 0 or
 * -1 (b full; b unchanged). */
struct buf;
int keyring_format_line(struct buf *b, const struct keyring_entry *e,
    const char *const *rcpts, size_t n);

/* Wipes e (it holds a secret). */
void keyring_entry_clear(struct keyring_entry *e);

#endif /* MSGTRK_CLI_KEYRING_H */
