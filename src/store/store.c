/*
 * store: the backend registry and the helpers shared by every backend.
 * See store.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/str.h"
#include "store/store.h"

/* Every compiled-in backend.  A config value selects one when it equals
 * the backend's name ("sqlite") or starts with "<name>://" (a URI such as
 * "postgresql://host/db"). */
static const struct store_backend *const backends[] = {
	&store_backend_sqlite,
#ifdef STORE_HAVE_PG
	&store_backend_pg,
#endif
};

const struct store_backend *
store_backend_find(const char *uri)
{
	size_t i, n;

	if (uri == NULL)
		return NULL;
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		n = strlen(backends[i]->name);
		if (strncmp(uri, backends[i]->name, n) != 0)
			continue;
		if (uri[n] == '\0' || strncmp(uri + n, "://", 3) == 0)
			return backends[i];
	}
	return NULL;
}

void
store_msg_clear(struct store_msg *msg)
{
	size_t i;

	if (msg == NULL)
		return;
	for (i = 0; i < msg->nrcpt && msg->rcpts != NULL; i++) {
		free(msg->rcpts[i].orcpt);
		free(msg->rcpts[i].final_rcpt);
		free(msg->rcpts[i].remote_mta);
		free(msg->rcpts[i].reply);
	}
	free(msg->rcpts);
	free(msg->envid);
	free(msg->sender);
	free(msg->reporting_mta);
	free(msg->login);
	if (msg->secret != NULL) {
		explicit_bzero(msg->secret, strlen(msg->secret));
		free(msg->secret);
	}
	free(msg->subject);
	msg->rcpts = NULL;
	msg->nrcpt = 0;
	msg->envid = NULL;
	msg->sender = NULL;
	msg->reporting_mta = NULL;
	msg->login = NULL;
	msg->secret = NULL;
	msg->subject = NULL;
}

void
store_msgs_free(struct store_msg *msgs, size_t n)
{
	size_t i;

	if (msgs == NULL)
		return;
	for (i = 0; i < n; i++)
		store_msg_clear(&msgs[i]);
	free(msgs);
}

static int store_errx(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static int
store_errx(char *err, size_t errsize, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
	return -1;
}

/* Returns 1 if s is NULL (when nullable) or at most STORE_TEXT_MAX. */
static int
store_valid_text(const char *s, int nullable)
{
	if (s == NULL)
		return nullable;
	return strnlen(s, STORE_TEXT_MAX + 1) <= STORE_TEXT_MAX;
}

int
store_check_qid(const char *qid)
{
	size_t n;

	if (qid == NULL)
		return -1;
	for (n = 0; qid[n] != '\0'; n++) {
		char c = qid[n];

		if (n >= STORE_QID_MAX)
			return -1;
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
		        (c >= 'a' && c <= 'z')))
			return -1;
	}
	return n > 0 ? 0 : -1;
}

int
store_check_journal(const char *journal)
{
	size_t n;

	if (journal == NULL)
		return -1;
	n = strnlen(journal, STORE_JOURNAL_MAX + 1);
	if (n == 0 || n > STORE_JOURNAL_MAX)
		return -1;
	while (n-- > 0)
		if (journal[n] < 0x20 || journal[n] > 0x7e)
			return -1;
	return 0;
}

int
store_check_rcpt(const char *op, const char *qid, const struct store_rcpt *r,
    char *err, size_t errsize)
{
	if (store_check_qid(qid) == -1)
		return store_errx(err, errsize, "%s: invalid queue id", op);
	if (r == NULL)
		return store_errx(
		    err, errsize, "%s: %s: no recipient", op, qid);
	if ((unsigned)r->action > STORE_ACTION_FAILED)
		return store_errx(err, errsize,
		    "%s: %s: recipient %u: invalid action %d", op, qid, r->idx,
		    (int)r->action);
	if (strnlen(r->status, sizeof(r->status)) >= sizeof(r->status))
		return store_errx(err, errsize,
		    "%s: %s: recipient %u: status too long", op, qid, r->idx);
	if (!store_valid_text(r->orcpt, 1) ||
	    !store_valid_text(r->final_rcpt, 1) ||
	    !store_valid_text(r->remote_mta, 1) ||
	    !store_valid_text(r->reply, 1))
		return store_errx(err, errsize,
		    "%s: %s: recipient %u: a field is longer than %d bytes", op,
		    qid, r->idx, STORE_TEXT_MAX);
	return 0;
}

int
store_check_msg(const struct store_msg *m, char *err, size_t errsize)
{
	size_t i;

	if (m == NULL || store_check_qid(m->qid) == -1)
		return store_errx(err, errsize, "put_msg: invalid queue id");
	if (m->envid != NULL &&
	    (m->envid[0] == '\0' ||
	        strnlen(m->envid, STORE_ENVID_MAX + 1) > STORE_ENVID_MAX))
		return store_errx(err, errsize,
		    "put_msg: %s: envid empty or longer than %d", m->qid,
		    STORE_ENVID_MAX);
	i = strnlen(m->certifier, sizeof(m->certifier));
	if (i != 0 && i != STORE_CERTIFIER_LEN)
		return store_errx(err, errsize,
		    "put_msg: %s: certifier is not %d characters", m->qid,
		    STORE_CERTIFIER_LEN);
	if (!store_valid_text(m->sender, 0) ||
	    !store_valid_text(m->reporting_mta, 1))
		return store_errx(err, errsize,
		    "put_msg: %s: sender missing, or a field longer than %d",
		    m->qid, STORE_TEXT_MAX);
	if ((m->login == NULL) != (m->secret == NULL))
		return store_errx(err, errsize,
		    "put_msg: %s: login and secret go together", m->qid);
	if ((m->login != NULL &&
	        (m->login[0] == '\0' ||
	            strnlen(m->login, STORE_LOGIN_MAX + 1) >
	                STORE_LOGIN_MAX)) ||
	    (m->secret != NULL &&
	        (m->secret[0] == '\0' ||
	            strnlen(m->secret, STORE_SECRET_MAX + 1) >
	                STORE_SECRET_MAX)) ||
	    (m->subject != NULL &&
	        strnlen(m->subject, STORE_SUBJECT_MAX + 1) > STORE_SUBJECT_MAX))
		return store_errx(err, errsize,
		    "put_msg: %s: login, secret or subject empty or too long",
		    m->qid);
	if (m->nrcpt > 0 && m->rcpts == NULL)
		return store_errx(err, errsize,
		    "put_msg: %s: %zu recipients but no array", m->qid,
		    m->nrcpt);
	if (m->nrcpt > UINT32_MAX)
		return store_errx(
		    err, errsize, "put_msg: %s: too many recipients", m->qid);
	for (i = 0; i < m->nrcpt; i++)
		if (store_check_rcpt(
		        "put_msg", m->qid, &m->rcpts[i], err, errsize) == -1)
			return -1;
	return 0;
}

int
store_addr_key(const char *in, char *dst, size_t size)
{
	const char *p = strchr(in, ';');
	size_t n;

	p = p != NULL ? p + 1 : in;
	while (*p == ' ' || *p == '\t')
		p++;
	if (str_copy(dst, p, size) >= size)
		return -1;
	n = strlen(dst);
	while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\t'))
		dst[--n] = '\0';
	str_lower(dst);
	return 0;
}

const char *
store_action_name(enum store_action a)
{
	switch (a) {
	case STORE_ACTION_QUEUED:
	case STORE_ACTION_DELAYED:
		return "delayed";
	case STORE_ACTION_DELIVERED:
		return "delivered";
	case STORE_ACTION_TRANSFERRED:
		return "transferred";
	case STORE_ACTION_RELAYED:
		return "relayed";
	case STORE_ACTION_EXPANDED:
		return "expanded";
	case STORE_ACTION_FAILED:
		return "failed";
	}
	return "unknown";
}
