/*
 * wire: the daemon's components joined through their hooks (main.c
 * builds struct msgtrkd, then asks here for the servers).
 */
#ifndef MSGTRK_WIRE_H
#define MSGTRK_WIRE_H

#include <stddef.h>

struct auth;
struct http_server;
struct msgtrkd;
struct smtp_server;

/* The SMTP server on d's base, conf and tls_server, its hooks answered by
 * d's delivery (recipients), queue (store health, ids, submit) and
 * delivery again (scheduling).  d->delivery and d->queue are looked up
 * when a session calls, so the server may be made (bound, as root)
 * before them.  Returns NULL with err set. */
struct smtp_server *wire_smtp_new(struct msgtrkd *d, char *err, size_t errsize);

/* The HTTP server (src/http) on d's base, conf and TLS contexts, bound to
 * http_listen and https_listen now (as root); d's dns, queue and reader
 * and *auth (logins; NULL inside: none) are looked up at each use, so
 * they may be made after it.  Returns NULL with err set. */
struct http_server *wire_http_new(
    struct msgtrkd *d, struct auth *const *auth, char *err, size_t errsize);

#endif /* MSGTRK_WIRE_H */
