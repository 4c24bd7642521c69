/*
 * http_parse: see http_parse.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "http/http_parse.h"
#include "msgtrk/mtqp.h"
#include "msgtrk/str.h"

/*
 * Forms
 */

enum form_state {
	FORM_NAME, /* in a field's name */
	FORM_VALUE, /* after its '=' */
};

struct http_form_field {
	size_t name; /* offsets into data */
	size_t value;
	size_t vlen;
};

struct http_form {
	enum form_state state;
	enum http_form_error error;
	int pct; /* octets of a %HH seen: 0 (none), 1 ('%'), 2 ('%H') */
	int hex; /* the first digit's value */
	size_t start; /* where the field being read begins in data */
	size_t cur; /* octets of the current name or value */
	size_t nf;
	struct http_form_field f[HTTP_FORM_FIELDS_MAX];
	size_t octets; /* decoded octets of names and values */
	size_t len; /* used in data: those and a NUL after each */
	/* The NULs: two per field, and the name of one past the last (its
	 * octets are refused, its NUL is not written). */
	char data[HTTP_FORM_DATA_MAX + 2 * HTTP_FORM_FIELDS_MAX + 2];
};

struct http_form *
http_form_new(void)
{
	return calloc(1, sizeof(struct http_form));
}

void
http_form_free(struct http_form *f)
{
	if (f == NULL)
		return;
	explicit_bzero(f, sizeof(*f));
	free(f);
}

static int
form_fail(struct http_form *f, enum http_form_error e)
{
	if (f->error == HTTP_FORM_OK)
		f->error = e;
	return -1;
}

static int
form_name_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/* Appends one decoded octet to the current name or value. */
static int
form_octet(struct http_form *f, int c)
{
	if (c == 0)
		return form_fail(f, HTTP_FORM_E_NUL);
	if (f->state == FORM_NAME) {
		if (!form_name_char(c))
			return form_fail(f, HTTP_FORM_E_NAME);
		if (f->cur == HTTP_FORM_NAME_MAX)
			return form_fail(f, HTTP_FORM_E_NAME_LONG);
	} else if (f->cur == HTTP_FORM_VALUE_MAX)
		return form_fail(f, HTTP_FORM_E_VALUE_LONG);
	if (f->octets == HTTP_FORM_DATA_MAX)
		return form_fail(f, HTTP_FORM_E_TOO_LARGE);
	f->octets++;
	f->data[f->len++] = (char)c;
	f->cur++;
	return 0;
}

/* The name ends ('=' or the end of the field).  Returns 0 or -1. */
static int
form_name_done(struct http_form *f)
{
	if (f->nf == HTTP_FORM_FIELDS_MAX)
		return form_fail(f, HTTP_FORM_E_FIELDS);
	f->data[f->len++] = '\0';
	f->f[f->nf].value = f->len;
	f->cur = 0;
	f->state = FORM_VALUE;
	return 0;
}

/* The field ends ('&' or the end of input). */
static int
form_field_done(struct http_form *f)
{
	struct http_form_field *fd;
	size_t i;

	if (f->state == FORM_NAME) {
		if (f->cur == 0) {
			/* An empty field ("&&", a trailing '&'): skipped. */
			f->len = f->start;
			return 0;
		}
		if (form_name_done(f) == -1)
			return -1;
	}
	fd = &f->f[f->nf];
	fd->name = f->start;
	fd->vlen = f->cur;
	f->data[f->len++] = '\0';
	if (fd->value - fd->name == 1)
		return form_fail(f, HTTP_FORM_E_NAME); /* "=value" */
	for (i = 0; i < f->nf; i++)
		if (strcmp(f->data + f->f[i].name, f->data + fd->name) == 0)
			return form_fail(f, HTTP_FORM_E_DUPLICATE);
	f->nf++;
	f->start = f->len;
	f->cur = 0;
	f->state = FORM_NAME;
	return 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
http_form_push(struct http_form *f, const char *data, size_t n)
{
	size_t i;
	int c, v;

	if (f->error != HTTP_FORM_OK)
		return -1;
	for (i = 0; i < n; i++) {
		c = (unsigned char)data[i];
		if (f->pct > 0) {
			if ((v = hexval(c)) == -1)
				return form_fail(f, HTTP_FORM_E_ESCAPE);
			if (f->pct == 1) {
				f->hex = v;
				f->pct = 2;
				continue;
			}
			f->pct = 0;
			if (form_octet(f, f->hex * 16 + v) == -1)
				return -1;
			continue;
		}
		if (c == '%') {
			f->pct = 1;
			continue;
		}
		if (c == '&') {
			if (form_field_done(f) == -1)
				return -1;
			continue;
		}
		if (c == '=' && f->state == FORM_NAME) {
			if (form_name_done(f) == -1)
				return -1;
			continue;
		}
		if (form_octet(f, c == '+' ? ' ' : c) == -1)
			return -1;
	}
	return 0;
}

int
http_form_end(struct http_form *f)
{
	if (f->error != HTTP_FORM_OK)
		return -1;
	if (f->pct > 0)
		return form_fail(f, HTTP_FORM_E_ESCAPE);
	return form_field_done(f);
}

enum http_form_error
http_form_error(const struct http_form *f)
{
	return f->error;
}

const char *
http_form_strerror(enum http_form_error e)
{
	switch (e) {
	case HTTP_FORM_OK:
		return "no error";
	case HTTP_FORM_E_ESCAPE:
		return "a '%' not followed by two hex digits";
	case HTTP_FORM_E_NUL:
		return "a NUL octet";
	case HTTP_FORM_E_NAME:
		return "a field name that is empty or not [A-Za-z0-9_.-]";
	case HTTP_FORM_E_NAME_LONG:
		return "a field name too long";
	case HTTP_FORM_E_VALUE_LONG:
		return "a field value too long";
	case HTTP_FORM_E_FIELDS:
		return "too many fields";
	case HTTP_FORM_E_DUPLICATE:
		return "a field given twice";
	case HTTP_FORM_E_TOO_LARGE:
		return "the form is too large";
	}
	return "unknown error";
}

size_t
http_form_count(const struct http_form *f)
{
	return f->error == HTTP_FORM_OK ? f->nf : 0;
}

const char *
http_form_name(const struct http_form *f, size_t i)
{
	return i < http_form_count(f) ? f->data + f->f[i].name : NULL;
}

const char *
http_form_value(const struct http_form *f, size_t i, size_t *len)
{
	if (i >= http_form_count(f))
		return NULL;
	if (len != NULL)
		*len = f->f[i].vlen;
	return f->data + f->f[i].value;
}

const char *
http_form_get(const struct http_form *f, const char *name)
{
	size_t i;

	for (i = 0; i < http_form_count(f); i++)
		if (strcmp(f->data + f->f[i].name, name) == 0)
			return f->data + f->f[i].value;
	return NULL;
}

/*
 * Cookie
 */

static int
cookie_ws(int c)
{
	return c == ' ' || c == '\t';
}

int
http_cookie_find(
    const char *h, size_t n, const char *name, char *out, size_t outsize)
{
	size_t i = 0, nlen = strlen(name), ks, ke, vs, ve;
	int found = 0;

	for (ks = 0; ks < n; ks++)
		if ((unsigned char)h[ks] < 0x20 && h[ks] != '\t')
			return -1;
		else if (h[ks] == 0x7f)
			return -1;
	while (i < n) {
		while (i < n && (cookie_ws(h[i]) || h[i] == ';'))
			i++;
		ks = i;
		while (i < n && h[i] != '=' && h[i] != ';')
			i++;
		if (i == n || h[i] == ';')
			continue; /* no '=': ignored (RFC 6265 §5.2) */
		ke = i++;
		while (ke > ks && cookie_ws(h[ke - 1]))
			ke--;
		while (i < n && cookie_ws(h[i]))
			i++;
		vs = i;
		while (i < n && h[i] != ';')
			i++;
		ve = i;
		while (ve > vs && cookie_ws(h[ve - 1]))
			ve--;
		if (ve - vs >= 2 && h[vs] == '"' && h[ve - 1] == '"') {
			vs++;
			ve--;
		}
		if (ke - ks != nlen || memcmp(h + ks, name, nlen) != 0)
			continue;
		if (found || ve - vs >= outsize)
			return -1;
		memcpy(out, h + vs, ve - vs);
		out[ve - vs] = '\0';
		found = 1;
	}
	return found;
}

/*
 * Tracking requests
 */

/* "host", "host:port", "[literal]" or "[literal]:port": host names of
 * letters, digits, '-', '.', '_' (as msgtrk track --server takes them). */
static int
server_ok(const char *s)
{
	const char *p = s, *host_end;
	size_t n;
	long port;
	char *end;

	if (*p == '[') {
		if ((host_end = strchr(p, ']')) == NULL || host_end == p + 1)
			return 0;
		for (p++; p < host_end; p++)
			if (!((*p >= '0' && *p <= '9') ||
			        (*p >= 'a' && *p <= 'f') ||
			        (*p >= 'A' && *p <= 'F') || *p == ':' ||
			        *p == '.'))
				return 0;
		p = host_end + 1;
	} else {
		n = strspn(p,
		    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789-._");
		if (n == 0 || n > 255)
			return 0;
		p += n;
	}
	if (*p == '\0')
		return 1;
	if (*p != ':' || p[1] < '0' || p[1] > '9' || strlen(p + 1) > 5)
		return 0;
	port = strtol(p + 1, &end, 10);
	return *end == '\0' && port >= 1 && port <= 65535;
}

/* Fills r from a URI, or from envid, secret and server (NULL: absent). */
static int
track_req_fill(struct http_track_req *r, const char *uri, const char *envid,
    const char *secret, const char *server, char *err, size_t errsize)
{
	enum mtqp_uri_error ue;
	struct mtqp_uri u;

	memset(r, 0, sizeof(*r));
	if (uri != NULL &&
	    (envid != NULL || secret != NULL || server != NULL)) {
		snprintf(err, errsize,
		    "give an mtqp:// URI, or an envid, a secret and a server, "
		    "not both");
		return -1;
	}
	if (uri != NULL) {
		if (mtqp_uri_parse(uri, strlen(uri), &u, &ue) == -1) {
			snprintf(err, errsize, "bad mtqp: URI: %s",
			    mtqp_uri_strerror(ue));
			explicit_bzero(&u, sizeof(u));
			return -1;
		}
		str_copy(r->envid, u.envid, sizeof(r->envid));
		str_copy(r->secret, u.secret, sizeof(r->secret));
		if (u.port_given)
			snprintf(r->server, sizeof(r->server), "%s:%u", u.host,
			    u.port);
		else
			str_copy(r->server, u.host, sizeof(r->server));
		explicit_bzero(&u, sizeof(u));
		return 0;
	}
	if (envid == NULL || secret == NULL || server == NULL) {
		snprintf(err, errsize,
		    "give an mtqp:// URI, or an envid, a secret and a server");
		return -1;
	}
	if (mtqp_cmd_envid_check(envid, strlen(envid)) == -1 ||
	    str_copy(r->envid, envid, sizeof(r->envid)) >= sizeof(r->envid)) {
		snprintf(err, errsize,
		    "envid: not a unique-envid (local@host, xtext)");
		return -1;
	}
	if (mtqp_cmd_secret_check(secret, strlen(secret)) == -1 ||
	    str_copy(r->secret, secret, sizeof(r->secret)) >=
	        sizeof(r->secret)) {
		http_track_req_clear(r);
		snprintf(err, errsize, "secret: not a base64 MTRK secret");
		return -1;
	}
	if (!server_ok(server) ||
	    str_copy(r->server, server, sizeof(r->server)) >=
	        sizeof(r->server)) {
		http_track_req_clear(r);
		snprintf(err, errsize, "server: expected HOST[:PORT]");
		return -1;
	}
	return 0;
}

/* A form field, NULL when absent or empty. */
static const char *
form_field(const struct http_form *f, const char *name)
{
	const char *v = http_form_get(f, name);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

int
http_track_req_form(const struct http_form *f, struct http_track_req *r,
    char *err, size_t errsize)
{
	return track_req_fill(r, form_field(f, "uri"), form_field(f, "envid"),
	    form_field(f, "secret"), form_field(f, "server"), err, errsize);
}

struct json_track {
	char *uri, *envid, *secret, *server;
};

static int
json_track_member(void *arg, const char *key, const char *val, size_t vlen,
    long index, char *err, size_t errsize)
{
	struct json_track *j = arg;
	char **slot;

	(void)vlen;
	if (strcmp(key, "uri") == 0)
		slot = &j->uri;
	else if (strcmp(key, "envid") == 0)
		slot = &j->envid;
	else if (strcmp(key, "secret") == 0)
		slot = &j->secret;
	else if (strcmp(key, "server") == 0)
		slot = &j->server;
	else {
		snprintf(err, errsize, "unknown member \"%.32s\"", key);
		return -1;
	}
	if (index != -1 || val == NULL) {
		snprintf(err, errsize, "\"%s\" must be a string", key);
		return -1;
	}
	if (*slot != NULL) {
		snprintf(err, errsize, "\"%s\" given twice", key);
		return -1;
	}
	if ((*slot = strdup(val)) == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	return 0;
}

static void
json_track_free(struct json_track *j)
{
	char **p[] = { &j->uri, &j->envid, &j->secret, &j->server };
	size_t i;

	for (i = 0; i < sizeof(p) / sizeof(p[0]); i++)
		if (*p[i] != NULL) {
			explicit_bzero(*p[i], strlen(*p[i]));
			free(*p[i]);
			*p[i] = NULL;
		}
}

int
http_track_req_json(const char *body, size_t n, struct http_track_req *r,
    char *err, size_t errsize)
{
	struct json_track j;
	char jerr[256];
	int rc;

	memset(&j, 0, sizeof(j));
	memset(r, 0, sizeof(*r));
	if (json_read_object(
	        body, n, json_track_member, &j, jerr, sizeof(jerr)) == -1) {
		snprintf(err, errsize, "bad JSON request: %s", jerr);
		json_track_free(&j);
		return -1;
	}
	rc =
	    track_req_fill(r, j.uri, j.envid, j.secret, j.server, err, errsize);
	json_track_free(&j);
	return rc;
}

void
http_track_req_clear(struct http_track_req *r)
{
	explicit_bzero(r, sizeof(*r));
}
