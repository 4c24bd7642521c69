/*
 * tls: OpenSSL contexts for msgtrkd and msgtrk.  TLS 1.2 is the minimum
 * everywhere (RFC 8996 deprecates 1.0 and 1.1; RFC 3887 §6 and RFC 3207
 * name TLS without a version).
 */
#ifndef MSGTRK_TLS_H
#define MSGTRK_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* A server context with the certificate chain and key (PEM files).
 * Returns NULL with err set. */
SSL_CTX *tls_server_ctx(
    const char *cert_file, const char *key_file, char *err, size_t errsize);

/* A client context.  verify: check the server's certificate against
 * ca_file (or the system store when ca_file is NULL); the caller sets the
 * expected name per connection with tls_client_expect().  Without verify
 * (opportunistic SMTP, RFC 3207 §4.1 / RFC 7435), any certificate is
 * accepted.  Returns NULL with err set. */
SSL_CTX *tls_client_ctx(
    int verify, const char *ca_file, char *err, size_t errsize);

/* Sets SNI and the host name the certificate must match on ssl.
 * Returns 0 or -1. */
int tls_client_expect(SSL *ssl, const char *host);

/* The last OpenSSL error as text, for logs ("" if none). */
const char *tls_error(void);

#endif /* MSGTRK_TLS_H */
