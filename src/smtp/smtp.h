/*
 * smtp: msgtrkd's ESMTP server (RFC 5321) with PIPELINING (RFC 2920),
 * SIZE (RFC 1870), 8BITMIME (RFC 6152), ENHANCEDSTATUSCODES (RFC 2034),
 * DSN (RFC 3461), MTRK (RFC 3885) and STARTTLS (RFC 3207).
 *
 * Uses from struct msgtrkd: conf, base, queue, tls_server, delivery (to
 * schedule each message once the queue made it durable), stopping.
 */
#ifndef MSGTRK_SMTP_H
#define MSGTRK_SMTP_H

#include <stddef.h>

struct msgtrkd;
struct smtp_server;

/* Limits on what a client controls, beyond the per-line limits of
 * libmsgtrk.  RFC 5321 §4.5.3.1.8: at least 100 recipients. */
#define SMTP_RCPT_MAX 1000
#define SMTP_ERRORS_MAX 20 /* then 421 4.7.0 and close */
#define SMTP_SESSIONS_MAX 10000 /* then 421 4.7.0 at connect */
#define SMTP_SESSIONS_PER_ADDR_MAX 100
/* The idle timer is smtp_timeout (default 5 minutes, RFC 5321
 * §4.5.3.2.7), restarted by every byte.  Against clients that send a byte
 * just before it expires (slowloris), deadlines as Postfix's
 * smtpd_per_record_deadline and smtpd_min_data_rate: a command line must
 * be complete smtp_timeout after its first byte, and DATA smtp_timeout
 * after its 354 plus one second per SMTP_MIN_DATA_RATE octets received. */
#define SMTP_MIN_DATA_RATE 500

/* Binds every smtp_listen address (call as root, before dropping
 * privileges); accepts nothing yet.  Returns NULL with err set. */
struct smtp_server *smtp_server_new(
    struct msgtrkd *d, char *err, size_t errsize);

/* Starts accepting connections. */
void smtp_server_start(struct smtp_server *s);

/* SIGTERM: stops accepting, answers 421 to sessions between commands and
 * closes them; a session whose message is being committed gets its reply
 * first.  Returns the number of sessions still open (the caller runs the
 * loop until it reaches 0, bounded). */
size_t smtp_server_stop(struct smtp_server *s);

/* Frees the server and closes whatever is still open. */
void smtp_server_free(struct smtp_server *s);

#endif /* MSGTRK_SMTP_H */
