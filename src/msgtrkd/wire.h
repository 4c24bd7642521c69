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
 * d's delivery (recipients), queue (store health, ids, submit), delivery
 * again (scheduling), auth (AUTH) and senders (sender_logins).
 * d->delivery, d->queue, d->auth and d->senders are looked up when a
 * session calls, so the server may be made (bound, as root) before them.
 * Returns NULL with err set. */
struct smtp_server *wire_smtp_new(struct msgtrkd *d, char *err, size_t errsize);

/* Starts the HTTP server s (made by http_server_new() as root) with d's
 * resolver, queue, store reader and outbound TLS context, auth for its
 * logins (NULL: none), and d's components' counters and health. */
void wire_http_start(
    struct msgtrkd *d, struct http_server *s, struct auth *auth);

#endif /* MSGTRK_WIRE_H */
