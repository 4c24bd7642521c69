/*
 * auth: checks a login and password for SMTP AUTH (PRODUCT.md "auth"),
 * over one of two backends, never blocking the event loop:
 *
 *   passwd:/path    a file of "login:crypt-hash" lines (auth_passwd.c),
 *                   checked with crypt(3) on a worker thread;
 *   dovecot:/path   Dovecot's authentication server on its auth-client
 *                   UNIX socket (auth_dovecot.c), as Postfix's
 *                   smtpd_sasl_type = dovecot uses it.
 *
 * auth_check() starts a check and returns at once; the result comes to
 * cb(arg, result, canonical_login) on the loop thread, later, exactly
 * once unless auth_cancel() was called first:
 *
 *   AUTH_OK    the password is right: canonical_login is the backend's
 *              spelling of the login (Dovecot may lower-case it), the one
 *              to log, record and check sender_logins against;
 *   AUTH_FAIL  wrong password, unknown or locked login (535 5.7.8);
 *   AUTH_TEMP  the backend could not answer: down, over its queue, or no
 *              answer within AUTH_DEADLINE_MS (454 4.7.0).
 *
 * canonical_login is NULL unless AUTH_OK, and valid during the call only.
 *
 * The answer is also delayed by the failure penalty of the client's
 * address (auth_penalty.h): a failure comes no earlier than the penalty
 * after auth_check(), so the SMTP session just answers what it gets when
 * it gets it.  AUTH_TEMP is never delayed.
 *
 * Loop thread only.  Logs one line per backend event ("- auth ..."),
 * never a password.
 */
#ifndef MSGTRK_AUTH_H
#define MSGTRK_AUTH_H

#include <stddef.h>

struct event_base;
struct auth;
struct auth_req;

/* The most a check may take before it is AUTH_TEMP: yescrypt takes tens
 * of milliseconds, Dovecot delays its failures by 2 s (auth_failure_delay)
 * before our penalty. */
#define AUTH_DEADLINE_MS 5000

enum auth_result {
	AUTH_OK,
	AUTH_FAIL,
	AUTH_TEMP,
};

typedef void (*auth_cb)(
    void *arg, enum auth_result result, const char *canonical_login);

/* Opens the backend spec names ("passwd:/abs/path" or
 * "dovecot:/abs/path/to/auth-client"): reads the passwd file (errors are
 * "path:line: what") and starts its worker threads; for Dovecot, nothing
 * is connected until the first check.  Returns NULL with err set. */
struct auth *auth_new(
    struct event_base *base, const char *spec, char *err, size_t errsize);

/*
 * Starts checking login (1..255 octets, no NUL) and password (1..255
 * octets) for the client at client_addr (numeric text, for the penalty and
 * Dovecot's rip; NULL if unknown); secured: the session is inside TLS.
 * Copies what it needs: the caller wipes its own copies (sasl_clear())
 * right after.  Never calls cb before it returns.  Returns the request, or
 * NULL with errno set (EINVAL: login or password out of bounds; ENOMEM):
 * the session then answers 454 4.7.0 itself.
 */
struct auth_req *auth_check(struct auth *a, const char *login,
    const char *password, const char *client_addr, int secured, auth_cb cb,
    void *arg);

/* Withdraws a request whose cb has not run (the client went away): cb is
 * never called.  Accepts NULL. */
void auth_cancel(struct auth_req *r);

/* SIGHUP: re-reads the passwd file; on an error the old table stays and
 * -1 is returned with err set ("path:line: what").  Checks in flight
 * finish against the table they began with.  Nothing to do for Dovecot.
 * Returns 0 or -1. */
int auth_reload(struct auth *a, char *err, size_t errsize);

/* Stops the backend: requests still waiting get no callback (cancel them
 * first).  Accepts NULL. */
void auth_free(struct auth *a);

/* The backend's name ("passwd", "dovecot"), for logs. */
const char *auth_backend_name(const struct auth *a);

#endif /* MSGTRK_AUTH_H */
