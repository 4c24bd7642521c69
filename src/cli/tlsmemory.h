/*
 * tlsmemory: the MTQP servers with which msgtrk did TLS, kept across runs
 * like ssh's known_hosts.  RFC 3887 §11: "An MTQP client can protect
 * against this attack [deleting the "STARTTLS" option] by recording the
 * fact that a particular MTQP server offers TLS during one session and
 * generating an alarm if it does not appear in an option response for a
 * later session."  The server's key is remembered too.
 *
 * A text file (default ~/.local/share/msgtrk/mtqp-tls, mode 0600 in a
 * 0700 directory, next to the keyring), one line per server:
 *   host:port SPKI
 * host lower case ("[v6]:port" for an IPv6 literal), the server actually
 * talked to (the SRV target); SPKI is the lower-case hex SHA-256 of the
 * server's SubjectPublicKeyInfo, or "-" (a line written by hand: require
 * TLS of that server, whatever its key).  A server is remembered only
 * after a TLS handshake whose certificate was verified for its name, so
 * an attacker cannot plant entries with a forged STARTTLS offer.  Nothing
 * else may be in the file: an unreadable, oversized or malformed file is
 * refused as a whole ("path:line: what").  Updates re-read the file and
 * replace it atomically (temporary file, fsync, rename, fsync of the
 * directory) under an flock(2) on "<file>.lock", so concurrent runs lose
 * nothing.
 */
#ifndef MSGTRK_CLI_TLSMEMORY_H
#define MSGTRK_CLI_TLSMEMORY_H

#include <stddef.h>

#include "mtqp/trail.h"

/* Our limits: servers remembered (a user talks to a few MTQP servers;
 * past this, new ones are not remembered and the caller warns), one
 * "host:port" (a 255-octet domain, brackets, port), one line, and so
 * the whole file. */
#define TLSMEMORY_ENTRIES_MAX 4096
#define TLSMEMORY_SERVER_MAX TRAIL_SERVER_MAX
#define TLSMEMORY_SPKI_HEX (2 * TRAIL_SPKI_LEN)
#define TLSMEMORY_LINE_MAX (TLSMEMORY_SERVER_MAX + 1 + TLSMEMORY_SPKI_HEX)
#define TLSMEMORY_FILE_MAX (TLSMEMORY_ENTRIES_MAX * (TLSMEMORY_LINE_MAX + 2))

struct tlsmemory;

/* Writes the default path, $HOME/.local/share/msgtrk/mtqp-tls, into out.
 * Returns 0, or -1 with err set (HOME unset or relative, too long). */
int tlsmemory_default_path(
    char *out, size_t outsize, char *err, size_t errsize);

/* Reads the memory at path; a missing file is an empty memory.  Returns
 * the memory (free with tlsmemory_free()), or NULL with err set:
 * unreadable, too large, a malformed line ("path:LINE: what"), or out of
 * memory. */
struct tlsmemory *tlsmemory_load(const char *path, char *err, size_t errsize);

/* The remembered servers, "host:port" each, for trail_opts.tls_known.
 * The array and its strings stay valid until the next tlsmemory_learn()
 * or tlsmemory_free(). */
const char *const *tlsmemory_servers(const struct tlsmemory *m, size_t *n_out);

/* The SPKI digest remembered for server (hex, or "-"), or NULL if server
 * is not remembered.  Valid until the next tlsmemory_learn() or
 * tlsmemory_free(). */
const char *tlsmemory_spki(const struct tlsmemory *m, const char *server);

/* Remembers that server did TLS with the key whose SPKI SHA-256 is spki.
 * Returns 1 if that changed the memory (a new server, or another key:
 * the caller compares with tlsmemory_spki() first to warn), 0 if it was
 * known with that key, -1 if server is malformed or the memory is full
 * (TLSMEMORY_ENTRIES_MAX) or out of memory. */
int tlsmemory_learn(struct tlsmemory *m, const char *server,
    const unsigned char spki[TRAIL_SPKI_LEN]);

/* Writes what tlsmemory_learn() changed to the file (nothing to do: 0):
 * locks, re-reads the file (changes made meanwhile by another run are
 * kept), applies this memory's changes, replaces the file atomically
 * with mode 0600, creating missing directories (0700).  Returns 0, or -1
 * with err set; the file is then unchanged. */
int tlsmemory_save(struct tlsmemory *m, char *err, size_t errsize);

/* Accepts NULL. */
void tlsmemory_free(struct tlsmemory *m);

#endif /* MSGTRK_CLI_TLSMEMORY_H */
