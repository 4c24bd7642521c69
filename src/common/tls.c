/*
 * tls: OpenSSL contexts.  See tls.h.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/tls.h"

const char *
tls_error(void)
{
	static char buf[256];
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		return "";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

static SSL_CTX *
ctx_new(const SSL_METHOD *method, char *err, size_t errsize)
{
	SSL_CTX *ctx = SSL_CTX_new(method);

	if (ctx == NULL) {
		snprintf(err, errsize, "TLS: %s", tls_error());
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errsize, "TLS: %s", tls_error());
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* Forward secrecy and AEAD only for TLS 1.2 (tls.h); TLS 1.3 keeps
	 * OpenSSL's suites. */
	if (SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_TLS12) != 1) {
		snprintf(err, errsize, "TLS: %s", tls_error());
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* No renegotiation, no compression (CRIME); a server chooses by its
	 * own order. */
	SSL_CTX_set_options(ctx,
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	        SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

SSL_CTX *
tls_server_ctx(
    const char *cert_file, const char *key_file, char *err, size_t errsize)
{
	SSL_CTX *ctx = ctx_new(TLS_server_method(), err, errsize);

	if (ctx == NULL)
		return NULL;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		snprintf(err, errsize, "%s: %s", cert_file, tls_error());
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errsize, "%s: %s", key_file, tls_error());
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(
		    err, errsize, "%s does not match %s", key_file, cert_file);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *
tls_client_ctx(int verify, const char *ca_file, char *err, size_t errsize)
{
	SSL_CTX *ctx = ctx_new(TLS_client_method(), err, errsize);

	if (ctx == NULL)
		return NULL;
	if (verify) {
		int ok = ca_file != NULL
		    ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
		    : SSL_CTX_set_default_verify_paths(ctx);

		if (ok != 1) {
			snprintf(err, errsize, "%s: %s",
			    ca_file ? ca_file : "system CA store", tls_error());
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

int
tls_client_expect(SSL *ssl, const char *host)
{
	/* SNI only for names, not for address literals (RFC 6066 §3). */
	if (host[0] != '[' && SSL_set_tlsext_host_name(ssl, host) != 1)
		return -1;
	if (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set1_host(ssl, host) != 1)
			return -1;
	}
	return 0;
}
