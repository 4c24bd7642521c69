/*
 * sasl: the two SASL mechanisms SMTP AUTH offers here (RFC 4954), decoded
 * from the client's base64 lines and checked, and the server challenges
 * they need.  Pure: no I/O, bounded, never aborts on input.
 *
 *   PLAIN (RFC 4616): base64 of authzid NUL authcid NUL passwd.  authcid
 *     and passwd are 1..255 octets, authzid 0..255; none holds a NUL; all
 *     are UTF-8 (RFC 3629).  An empty authzid, or one equal octet for
 *     octet to authcid, means "act as authcid"; any other authzid is
 *     refused (SASL_ERR_AUTHZID: the session answers 535 5.7.8, PRODUCT.md).
 *   LOGIN (draft-murchison-sasl-login): the server sends "334 VXNlcm5hbWU6"
 *     ("Username:"), the client the base64 of its login; then
 *     "334 UGFzc3dvcmQ6" ("Password:") and the base64 of its password.
 *     The same bounds as PLAIN's authcid and passwd.
 *
 * A login (authcid) may not hold control characters (C0, DEL): it goes
 * into logs and lookups.  A password may hold any octet but NUL.
 *
 * Every decoded secret lands in a struct sasl_creds, which the caller
 * wipes with sasl_clear() once the check is started (the decoders wipe
 * their own temporaries, and clear the struct themselves when they fail).
 */
#ifndef MSGTRK_SASL_H
#define MSGTRK_SASL_H

#include <stddef.h>

/* RFC 4616 §2: "The authorization identity (authzid), authentication
 * identity (authcid), password (passwd) ... up to 255 octets". */
#define SASL_FIELD_MAX 255
/* authzid NUL authcid NUL passwd at their largest. */
#define SASL_PLAIN_MAX (3 * SASL_FIELD_MAX + 2)
/* The longest client response line accepted (the base64 of the above,
 * padded: 1024 characters), without CRLF.  RFC 4954 §4: the server may
 * bound it; a longer line is SASL_ERR_TOO_LONG (501 5.5.2 at the
 * session, or 500 5.5.6 if the session's line reader stopped it). */
#define SASL_LINE_MAX (((SASL_PLAIN_MAX) + 2) / 3 * 4)

enum sasl_mech {
	SASL_MECH_UNKNOWN = 0,
	SASL_MECH_PLAIN,
	SASL_MECH_LOGIN,
};

enum sasl_error {
	SASL_OK = 0,
	SASL_ERR_BASE64, /* not strict base64 (501 5.5.2) */
	SASL_ERR_TOO_LONG, /* a field over 255 octets, a line over the max */
	SASL_ERR_FORMAT, /* PLAIN without its two NULs, or with more */
	SASL_ERR_EMPTY, /* empty login or password */
	SASL_ERR_UTF8, /* not UTF-8, or a control character in a login */
	SASL_ERR_AUTHZID, /* PLAIN authzid other than the login (535 5.7.8) */
};

/* What a successful decode gives: NUL-terminated, and their lengths. */
struct sasl_creds {
	char login[SASL_FIELD_MAX + 1];
	size_t login_len;
	char password[SASL_FIELD_MAX + 1];
	size_t password_len;
};

/* The LOGIN steps, i.e. which field the next client line carries. */
enum sasl_login_step {
	SASL_LOGIN_USERNAME,
	SASL_LOGIN_PASSWORD,
};

/* The mechanism named (any case, RFC 4954 §4: "mechanism names are case
 * insensitive"), or SASL_MECH_UNKNOWN (504 5.5.4). */
enum sasl_mech sasl_mech_parse(const char *name);

/* Returns 1 if the n octets at line are the client's cancel, "*"
 * (RFC 4954 §4: the server answers 501 5.0.0), else 0. */
int sasl_is_cancel(const char *line, size_t n);

/* Returns 1 if the n octets at line are RFC 4954 §4's zero-length
 * initial response ("="), else 0. */
int sasl_is_empty_response(const char *line, size_t n);

/*
 * Decodes a PLAIN response: the n characters of base64 at b64 (an
 * initial response from the AUTH command, or the line answering the
 * empty "334 " challenge).  Returns 0 with c filled, or -1 with *err_out
 * set and c wiped.  c is always written (wipe it with sasl_clear()).
 */
int sasl_plain_decode(
    const char *b64, size_t n, struct sasl_creds *c, enum sasl_error *err_out);

/*
 * Decodes the LOGIN line of step (the username or the password) into c's
 * login or password, leaving the other field alone.  Returns 0, or -1
 * with *err_out set and c wiped whole (the exchange is over).
 */
int sasl_login_decode(struct sasl_creds *c, enum sasl_login_step step,
    const char *b64, size_t n, enum sasl_error *err_out);

/* The server's 334 line for a LOGIN step, without CRLF: "334 VXNlcm5hbWU6"
 * or "334 UGFzc3dvcmQ6".  Static storage. */
const char *sasl_login_challenge(enum sasl_login_step step);

/* The empty challenge PLAIN gets when AUTH carried no initial response
 * (RFC 4954 §4): "334 " (the space is there), without CRLF. */
const char *sasl_plain_challenge(void);

/* A short text for err ("invalid base64"...), for logs. */
const char *sasl_strerror(enum sasl_error err);

/* Wipes c (explicit_bzero): call it once the credentials were handed on,
 * on every path.  Accepts NULL. */
void sasl_clear(struct sasl_creds *c);

#endif /* MSGTRK_SASL_H */
