/*
 * http_parse: the parsers of what an HTTP client sends us, beyond what
 * libevent's evhttp parses (the request line and headers): form bodies
 * and query strings (application/x-www-form-urlencoded, HTML 5 §4.10.21),
 * the Cookie header (RFC 6265 §5.4), and the tracking request of the
 * page's form and of POST /api/v1/track (a flat JSON object read by
 * common/json.h).  No I/O, no logging, no libevent: every input is
 * bounded, NUL is refused, and nothing is guessed.
 */
#ifndef MSGTRK_HTTP_PARSE_H
#define MSGTRK_HTTP_PARSE_H

#include <stddef.h>

#include "msgtrk/mtqp.h"

/* Form limits: our forms have at most six fields (uri, envid, secret,
 * server, csrf and a button), the admin search five; a value holds an
 * mtqp:// URI (MTQP_ENVID_TEXT_MAX and MTQP_SECRET_TEXT_MAX %-encoded),
 * a login or a password.  Past any of them the form is refused. */
#define HTTP_FORM_FIELDS_MAX 16
#define HTTP_FORM_NAME_MAX 32
#define HTTP_FORM_VALUE_MAX 2048
/* Decoded octets of a whole form (the encoded body is bounded by the
 * server's body limit; decoding only shrinks it). */
#define HTTP_FORM_DATA_MAX 16384

enum http_form_error {
	HTTP_FORM_OK = 0,
	HTTP_FORM_E_ESCAPE, /* '%' not followed by two hex digits */
	HTTP_FORM_E_NUL, /* a NUL octet, raw or %00 */
	HTTP_FORM_E_NAME, /* empty, or outside [A-Za-z0-9_.-] */
	HTTP_FORM_E_NAME_LONG, /* over HTTP_FORM_NAME_MAX */
	HTTP_FORM_E_VALUE_LONG, /* over HTTP_FORM_VALUE_MAX */
	HTTP_FORM_E_FIELDS, /* over HTTP_FORM_FIELDS_MAX */
	HTTP_FORM_E_DUPLICATE, /* a name given twice */
	HTTP_FORM_E_TOO_LARGE, /* over HTTP_FORM_DATA_MAX decoded */
};

struct http_form;

/* A parser for one form.  Returns NULL on ENOMEM. */
struct http_form *http_form_new(void);

/* Wipes (values may hold a secret or a password) and frees.  Accepts
 * NULL. */
void http_form_free(struct http_form *f);

/* Takes the next n octets of the encoded form; pieces may be cut
 * anywhere, escapes included.  '+' is a space, %HH an octet, '&'
 * separates fields, the first '=' of a field ends its name (a field
 * without '=' has an empty value, empty fields are skipped).  Returns 0,
 * or -1 once an error is seen (sticky: http_form_error() says which). */
int http_form_push(struct http_form *f, const char *data, size_t n);

/* The input is complete.  Returns 0, or -1 (a truncated escape, or an
 * earlier error). */
int http_form_end(struct http_form *f);

enum http_form_error http_form_error(const struct http_form *f);
const char *http_form_strerror(enum http_form_error e);

/* After http_form_end() returned 0: the number of fields, and field i's
 * name and value (NUL-terminated, no NUL inside; value length in *len
 * when len is not NULL).  Valid until http_form_free(). */
size_t http_form_count(const struct http_form *f);
const char *http_form_name(const struct http_form *f, size_t i);
const char *http_form_value(const struct http_form *f, size_t i, size_t *len);

/* The value of field name, or NULL if the form has none. */
const char *http_form_get(const struct http_form *f, const char *name);

/*
 * Finds cookie name in the n octets of a Cookie header (RFC 6265 §4.2.1:
 * "a=b; c=d"; spaces and tabs around pairs and '=' are tolerated, a
 * value may be double-quoted, pairs without '=' are ignored) and copies
 * its value to out.  Returns 1 found, 0 absent, -1 when the header holds
 * a control octet, when name is given twice (which one would be ours?)
 * or when the value does not fit outsize - 1.
 */
int http_cookie_find(
    const char *h, size_t n, const char *name, char *out, size_t outsize);

/* "host", "host:port", "[v6]" or "[v6]:port" as trail_opts.server */
#define HTTP_SERVER_MAX 272

/* A request to follow a message: the first MTQP server and TRACK's
 * arguments, checked as msgtrk track checks them. */
struct http_track_req {
	char envid[MTQP_ENVID_TEXT_MAX + 1]; /* xtext, as in ENVID= */
	char secret[MTQP_SECRET_TEXT_MAX + 1]; /* base64 */
	char server[HTTP_SERVER_MAX]; /* without a port: SRV, else 1038 */
};

/* The tracking form's fields: "uri" (an mtqp:// URI), or "envid",
 * "secret" and "server" (empty fields count as absent; others are
 * ignored).  Returns 0, or -1 with an English reason in err (never
 * quoting the secret). */
int http_track_req_form(const struct http_form *f, struct http_track_req *r,
    char *err, size_t errsize);

/* POST /api/v1/track's body: {"uri": "mtqp://..."} or {"envid": ...,
 * "secret": ..., "server": "host[:port]"}, string members only, no other
 * member, none twice.  Returns 0, or -1 with a reason in err. */
int http_track_req_json(const char *body, size_t n, struct http_track_req *r,
    char *err, size_t errsize);

/* Wipes r (the secret). */
void http_track_req_clear(struct http_track_req *r);

#endif /* MSGTRK_HTTP_PARSE_H */
