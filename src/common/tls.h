/*
 * tls: OpenSSL contexts for msgtrkd and msgtrk.  TLS 1.2 is the minimum
 * everywhere (RFC 8996 deprecates 1.0 and 1.1; RFC 3887 §6 and RFC 3207
 * name TLS without a version).
 *
 * Cipher policy, on every context (SMTP in and out, MTQP, the CLI):
 * TLS 1.2 offers only ECDHE key exchange with AEAD ciphers (forward
 * secrecy, no CBC: RFC 7525 §4.2's recommended suites, Mozilla's
 * "intermediate" list without DHE); TLS 1.3's suites are OpenSSL's (all
 * AEAD with forward secrecy).  A server picks by its own order
 * (SSL_OP_CIPHER_SERVER_PREFERENCE), AES-128-GCM first.  A peer with only
 * RSA key exchange or CBC suites (AES128-SHA, AES256-SHA,
 * AES128-SHA256...) gets a handshake failure; outbound opportunistic
 * SMTP then retries in plaintext (relay.c).
 */
#ifndef MSGTRK_TLS_H
#define MSGTRK_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* The TLS 1.2 suites, in the order a server prefers them. */
#define TLS_CIPHERS_TLS12 \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* A server context with the certificate chain and key (PEM files).
 * Returns NULL with err set. */
SSL_CTX *tls_server_ctx(
    const char *cert_file, const char *key_file, char *err, size_t errsize);

/* A client context.  verify: check the server's certificate against
 * ca_file (or the system store when ca_file is NULL); the caller sets the
 * expected name per connection with tls_client_expect().  Without verify
 * (opportunistic SMTP, RFC 3207 §4.1 / RFC 7435), any certificate is
 * accepted.  A caller may turn verification off for one connection with
 * SSL_set_verify() before tls_client_expect() (relay.c does, unless
 * smtp_tls_policy is verify).  Returns NULL with err set. */
SSL_CTX *tls_client_ctx(
    int verify, const char *ca_file, char *err, size_t errsize);

/* Sets SNI and the host name the certificate must match on ssl.
 * Returns 0 or -1. */
int tls_client_expect(SSL *ssl, const char *host);

/* The last OpenSSL error as text, for logs ("" if none). */
const char *tls_error(void);

#endif /* MSGTRK_TLS_H */
