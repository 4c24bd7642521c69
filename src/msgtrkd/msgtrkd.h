/*
 * msgtrkd: what the daemon's components share.  main.c builds it; the
 * components (smtp, delivery, mtqp) receive it and use only what their
 * header says they use.  Everything here lives on the event loop's thread
 * (the queue's writer thread has its own store handle).
 */
#ifndef MSGTRK_MSGTRKD_H
#define MSGTRK_MSGTRKD_H

#include <openssl/ssl.h>

struct conf;
struct event_base;
struct store;
struct store_backend;
struct store_reader;
struct queue;
struct dns;
struct route;
struct smtp_server;
struct delivery;
struct mtqp_server;
struct auth;
struct sender_logins;

struct msgtrkd {
	const struct conf *conf;
	struct event_base *base;
	const struct store_backend *store_be;
	struct store *wstore; /* the queue writer thread's handle */
	struct store_reader *reader; /* reads off the loop (TRACK) */
	struct queue *queue;
	struct dns *dns;
	struct route *route;
	SSL_CTX *tls_server; /* NULL without tls_cert_file */
	SSL_CTX *tls_client; /* outbound STARTTLS */
	struct smtp_server *smtp;
	struct delivery *delivery;
	struct mtqp_server *mtqp;
	/* Submission: the auth backend (NULL without `auth`) and the
	 * sender_logins table (NULL: none; the login's own address only). */
	struct auth *auth;
	struct sender_logins *senders;
	int stopping; /* SIGTERM seen: finish, accept nothing */
};

#endif /* MSGTRK_MSGTRKD_H */
