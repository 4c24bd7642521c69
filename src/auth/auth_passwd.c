/*
 * auth_passwd: the passwd backend (see auth_passwd.h and auth.h).  The
 * table is read on the loop thread at start and on SIGHUP; each check
 * copies the hash it needs into its job, so a reload never pulls a table
 * from under a running crypt(3).  crypt_rn() runs on the backend's own
 * worker pool, each thread with its own struct crypt_data, wiped after
 * every use.
 */
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/auth_int.h"
#include "auth/auth_passwd.h"
#include "common/file.h"
#include "common/log.h"
#include "common/workers.h"
#include "msgtrk/buf.h"
#include "msgtrk/str.h"

struct pw_entry {
	char *key; /* the login with its domain lower-cased */
	char *login; /* as written */
	char *hash; /* NULL: locked */
	size_t line;
};

struct auth_passwd_table {
	struct pw_entry *e;
	size_t n, cap;
	char dummy[CRYPT_OUTPUT_SIZE];
};

/* ---- the file ------------------------------------------------------- */

static void
entry_clear(struct pw_entry *e)
{
	free(e->key);
	free(e->login);
	if (e->hash != NULL) {
		explicit_bzero(e->hash, strlen(e->hash));
		free(e->hash);
	}
}

void
auth_passwd_table_free(struct auth_passwd_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		entry_clear(&t->e[i]);
	free(t->e);
	free(t);
}

size_t
auth_passwd_count(const struct auth_passwd_table *t)
{
	return t == NULL ? 0 : t->n;
}

const char *
auth_passwd_dummy(const struct auth_passwd_table *t)
{
	return t->dummy;
}

/* login with the part after its last '@' lower-cased, into out. */
static int
login_key(const char *login, size_t n, char *out, size_t outsize)
{
	const char *at;

	if (n == 0 || n >= outsize)
		return -1;
	memcpy(out, login, n);
	out[n] = '\0';
	if ((at = strrchr(out, '@')) != NULL)
		str_lower(out + (at - out) + 1);
	return 0;
}

static int
login_valid(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > SASL_FIELD_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f || c == ':')
			return 0;
	}
	return 1;
}

static int
hash_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '/' || c == '$' ||
	    c == '=' || c == ',';
}

/* The length of the last '$'-separated field of h. */
static size_t
last_field(const char *h)
{
	const char *d = strrchr(h, '$');

	return d == NULL ? 0 : strlen(d + 1);
}

/* Checks a hash field (NUL-terminated).  Returns 1 usable, 0 locked, or
 * -1 with *what set. */
static int
hash_check(const char *h, const char **what)
{
	size_t n = strlen(h), i;

	if (n == 0) {
		*what = "empty hash: a login without a password is refused "
		        "(write '!' to lock it)";
		return -1;
	}
	if (strcmp(h, "*") == 0 || h[0] == '!')
		return 0;
	for (i = 0; i < n; i++)
		if (!hash_char((unsigned char)h[i])) {
			*what = "invalid character in the hash";
			return -1;
		}
	if (h[0] != '$') {
		*what = "DES crypt hash refused (weak): use yescrypt, bcrypt "
		        "or sha512-crypt";
		return -1;
	}
	if (strncmp(h, "$1$", 3) == 0) {
		*what = "MD5-crypt hash refused (weak): use yescrypt, bcrypt "
		        "or sha512-crypt";
		return -1;
	}
	if (strncmp(h, "$y$", 3) == 0) {
		/* $y$params$salt$hash, the hash 43 characters (256 bits). */
		if (last_field(h) != 43)
			goto incomplete;
	} else if (strncmp(h, "$2b$", 4) == 0 || strncmp(h, "$2y$", 4) == 0) {
		/* $2b$NN$ then 22 salt and 31 hash characters. */
		if (n != 60 || h[6] != '$')
			goto incomplete;
	} else if (strncmp(h, "$6$", 3) == 0) {
		/* $6$[rounds=N$]salt$hash, the hash 86 characters. */
		if (last_field(h) != 86)
			goto incomplete;
	} else {
		*what = "unsupported hash scheme: use yescrypt ($y$), bcrypt "
		        "($2b$) or sha512-crypt ($6$)";
		return -1;
	}
	switch (crypt_checksalt(h)) {
	case CRYPT_SALT_OK:
		return 1;
	case CRYPT_SALT_METHOD_LEGACY:
	case CRYPT_SALT_TOO_CHEAP:
		*what = "hash too weak for libxcrypt's policy: rehash it";
		return -1;
	default:
		*what = "invalid hash";
		return -1;
	}
incomplete:
	*what = "incomplete hash (a setting without its hash?)";
	return -1;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct pw_entry *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* One non-comment line into e.  Returns 0, or -1 with what (NULL: out of
 * memory). */
static int
parse_line(const char *s, size_t n, struct pw_entry *e, const char **what)
{
	char key[SASL_FIELD_MAX + 1];
	const char *colon, *l, *h;
	size_t ln, hn;
	int r;

	*what = NULL;
	if ((colon = memchr(s, ':', n)) == NULL) {
		*what = "missing ':' between login and hash";
		return -1;
	}
	l = s;
	ln = (size_t)(colon - s);
	file_trim(&l, &ln);
	h = colon + 1;
	hn = n - (size_t)(h - s);
	file_trim(&h, &hn);
	if (ln == 0) {
		*what = "missing login before ':'";
		return -1;
	}
	if (!login_valid(l, ln) || login_key(l, ln, key, sizeof(key)) == -1) {
		*what = "invalid login";
		return -1;
	}
	if (memchr(h, ':', hn) != NULL) {
		*what = "more than one ':' (want login:hash)";
		return -1;
	}
	if ((e->key = strdup(key)) == NULL ||
	    (e->login = strndup(l, ln)) == NULL ||
	    (e->hash = strndup(h, hn)) == NULL)
		return -1;
	if ((r = hash_check(e->hash, what)) == -1)
		return -1;
	if (r == 0) {
		free(e->hash);
		e->hash = NULL;
	}
	return 0;
}

struct auth_passwd_table *
auth_passwd_parse(
    const char *file, const char *text, size_t len, char *err, size_t errsize)
{
	struct auth_passwd_table *t;
	struct pw_entry e;
	struct file_lines fl;
	const char *p, *what = NULL, *first = NULL;
	size_t m, i;
	int rc;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto nomem;
	file_lines_init(&fl, text, len, AUTH_PASSWD_LINE_MAX);
	while ((rc = file_lines_next(&fl, &p, &m, &what)) == 1) {
		if (t->n == AUTH_PASSWD_ENTRIES_MAX) {
			what = "too many entries";
			goto bad;
		}
		memset(&e, 0, sizeof(e));
		e.line = fl.line;
		if (parse_line(p, m, &e, &what) == -1) {
			entry_clear(&e);
			if (what == NULL)
				goto nomem;
			goto bad;
		}
		if (t->n == t->cap) {
			size_t nc = t->cap ? t->cap * 2 : 16;
			struct pw_entry *ne =
			    reallocarray(t->e, nc, sizeof(*ne));

			if (ne == NULL) {
				entry_clear(&e);
				goto nomem;
			}
			t->e = ne;
			t->cap = nc;
		}
		if (first == NULL && e.hash != NULL)
			first = e.hash;
		t->e[t->n++] = e;
	}
	if (rc == -1)
		goto bad;
	/* Unknown and locked logins are hashed with the first usable
	 * hash's setting: the same scheme and cost as a real check. */
	if (first != NULL)
		str_copy(t->dummy, first, sizeof(t->dummy));
	else if (crypt_gensalt_rn(
	             "$y$", 0, NULL, 0, t->dummy, sizeof(t->dummy)) == NULL) {
		snprintf(err, errsize, "%s: crypt_gensalt: %s", file,
		    strerror(errno));
		auth_passwd_table_free(t);
		return NULL;
	}
	if (t->n > 0)
		qsort(t->e, t->n, sizeof(*t->e), entry_cmp);
	for (i = 1; i < t->n; i++)
		if (strcmp(t->e[i - 1].key, t->e[i].key) == 0) {
			snprintf(err, errsize,
			    "%s:%zu: duplicate login %s (line %zu)", file,
			    t->e[i].line, t->e[i].key, t->e[i - 1].line);
			auth_passwd_table_free(t);
			return NULL;
		}
	return t;

bad:
	snprintf(err, errsize, "%s:%zu: %s", file, fl.line, what);
	auth_passwd_table_free(t);
	return NULL;
nomem:
	snprintf(err, errsize, "%s: out of memory", file);
	auth_passwd_table_free(t);
	return NULL;
}

struct auth_passwd_table *
auth_passwd_load(const char *path, char *err, size_t errsize)
{
	struct auth_passwd_table *t = NULL;
	struct buf b;
	char why[256];

	buf_init(&b, AUTH_PASSWD_FILE_MAX);
	if (file_read(path, &b, why, sizeof(why)) == -1)
		snprintf(err, errsize, "%s: %s", path, why);
	else
		t = auth_passwd_parse(path, buf_cstr(&b), b.len, err, errsize);
	if (b.data != NULL)
		explicit_bzero(b.data, b.len);
	buf_reset(&b);
	return t;
}

static int
key_cmp(const void *key, const void *elem)
{
	const struct pw_entry *e = elem;

	return strcmp(key, e->key);
}

const char *
auth_passwd_lookup(const struct auth_passwd_table *t, const char *login,
    int *locked_out, const char **canonical_out)
{
	char key[SASL_FIELD_MAX + 1];
	const struct pw_entry *e;

	*locked_out = 0;
	*canonical_out = NULL;
	if (t == NULL || t->n == 0 ||
	    login_key(login, strlen(login), key, sizeof(key)) == -1)
		return NULL;
	e = bsearch(key, t->e, t->n, sizeof(*t->e), key_cmp);
	if (e == NULL)
		return NULL;
	*canonical_out = e->login;
	*locked_out = e->hash == NULL;
	return e->hash;
}

/* ---- the backend ---------------------------------------------------- */

struct pw_be {
	struct auth *a;
	char *path;
	struct auth_passwd_table *t;
	struct workers *w;
	size_t inflight;
};

struct pw_job {
	struct pw_be *be;
	struct auth_req *r;
	struct workers_job *job;
	int usable; /* a known login that is not locked */
	enum auth_result result;
	char password[SASL_FIELD_MAX + 1];
	char setting[CRYPT_OUTPUT_SIZE]; /* the stored hash, or the dummy */
	char canonical[SASL_FIELD_MAX + 1];
};

static void *
pw_thread_init(void *pool_arg, unsigned int index, int *ok_out)
{
	void *cd = calloc(1, sizeof(struct crypt_data));

	(void)pool_arg;
	(void)index;
	*ok_out = cd != NULL;
	return cd;
}

static void
pw_thread_fini(void *pool_arg, void *ctx)
{
	(void)pool_arg;
	if (ctx != NULL)
		explicit_bzero(ctx, sizeof(struct crypt_data));
	free(ctx);
}

static void
job_free(struct pw_job *j)
{
	explicit_bzero(j, sizeof(*j));
	free(j);
}

/* On a worker thread. */
static void
pw_run(void *ctx, void *arg)
{
	struct crypt_data *cd = ctx;
	struct pw_job *j = arg;
	const char *out;
	size_t n;

	out = crypt_rn(j->password, j->setting, cd, sizeof(*cd));
	explicit_bzero(j->password, sizeof(j->password));
	if (out == NULL || out[0] == '*')
		j->result = j->usable ? AUTH_TEMP : AUTH_FAIL;
	else if (!j->usable)
		j->result = AUTH_FAIL;
	else {
		/* The lengths are not secret (the scheme fixes them);
		 * the bytes are compared in constant time. */
		n = strlen(j->setting);
		j->result =
		    strlen(out) == n && CRYPTO_memcmp(out, j->setting, n) == 0
		    ? AUTH_OK
		    : AUTH_FAIL;
	}
	explicit_bzero(cd, sizeof(*cd));
}

static void
pw_done(void *arg, enum workers_status status)
{
	struct pw_job *j = arg;
	struct auth_req *r = j->r;

	j->be->inflight--;
	if (status == WORKERS_DONE)
		auth_req_done(r, j->result, j->canonical);
	else
		auth_req_done(r, AUTH_TEMP, NULL);
	job_free(j);
}

static void
pw_abandon(void *arg)
{
	job_free(arg);
}

static void *
pw_open(struct auth *a, struct event_base *base, const char *arg, char *err,
    size_t errsize)
{
	static const struct workers_ops ops = { .init = pw_thread_init,
		.fini = pw_thread_fini };
	struct pw_be *be;

	if ((be = calloc(1, sizeof(*be))) == NULL ||
	    (be->path = strdup(arg)) == NULL) {
		free(be);
		snprintf(err, errsize, "auth: out of memory");
		return NULL;
	}
	be->a = a;
	if ((be->t = auth_passwd_load(arg, err, errsize)) == NULL)
		goto fail;
	if ((be->w = workers_new(base, "msgtrk-crypt", AUTH_PASSWD_THREADS,
	         &ops, NULL, err, errsize)) == NULL)
		goto fail;
	return be;
fail:
	auth_passwd_table_free(be->t);
	free(be->path);
	free(be);
	return NULL;
}

static int
pw_start(void *arg, struct auth_req *r)
{
	struct pw_be *be = arg;
	const char *hash, *canonical;
	struct pw_job *j;
	int locked;

	if (be->inflight >= AUTH_PASSWD_QUEUE_MAX) {
		log_warnx(
		    "- auth busy backend=passwd inflight=%zu", be->inflight);
		return -1;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->be = be;
	j->r = r;
	hash = auth_passwd_lookup(be->t, r->login, &locked, &canonical);
	j->usable = hash != NULL;
	str_copy(
	    j->setting, hash != NULL ? hash : be->t->dummy, sizeof(j->setting));
	if (canonical != NULL)
		str_copy(j->canonical, canonical, sizeof(j->canonical));
	str_copy(j->password, r->password, sizeof(j->password));
	auth_req_wipe(r);
	j->job = workers_submit(be->w, pw_run, pw_done, pw_abandon, j, 0);
	if (j->job == NULL) {
		job_free(j);
		return -1;
	}
	r->be = j;
	be->inflight++;
	return 0;
}

static void
pw_abort(void *arg, struct auth_req *r, int timed_out)
{
	struct pw_be *be = arg;
	struct pw_job *j = r->be;

	(void)timed_out;
	if (j == NULL)
		return;
	r->be = NULL;
	be->inflight--;
	workers_cancel(j->job);
}

static int
pw_reload(void *arg, char *err, size_t errsize)
{
	struct pw_be *be = arg;
	struct auth_passwd_table *t;

	if ((t = auth_passwd_load(be->path, err, errsize)) == NULL)
		return -1;
	auth_passwd_table_free(be->t);
	be->t = t;
	return 0;
}

static void
pw_close(void *arg)
{
	struct pw_be *be = arg;

	if (be == NULL)
		return;
	workers_free(be->w);
	auth_passwd_table_free(be->t);
	free(be->path);
	free(be);
}

const struct auth_backend auth_backend_passwd = {
	.name = "passwd",
	.open = pw_open,
	.start = pw_start,
	.abort = pw_abort,
	.reload = pw_reload,
	.close = pw_close,
};
