/*
 * smtp: msgtrkd's ESMTP listeners, the session limits applied at accept,
 * and shutdown.  The per-connection state machine is smtp_session.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "common/conf.h"
#include "common/log.h"
#include "common/net.h"
#include "common/pace.h"
#include "msgtrkd/msgtrkd.h"
#include "smtp/smtp.h"
#include "smtp/smtp_session.h"

/* listen(2) backlog for each listener. */
#define SMTP_BACKLOG 511

struct smtp_server {
	struct msgtrkd *d;
	struct evconnlistener *listeners[CONF_LISTEN_MAX];
	size_t nlisteners;
	struct pace pace;
	struct smtp_session *head; /* open sessions */
	size_t nsessions;
	int stopping;
};

/* Sessions open from the address of sa.  A linear walk: at most
 * SMTP_SESSIONS_MAX sessions, compared only at accept. */
static size_t
count_from(const struct smtp_server *s, const struct sockaddr *sa)
{
	struct smtp_session *p;
	size_t n = 0;

	for (p = s->head; p != NULL; p = smtp_session_link(p)->next)
		if (net_same_host(smtp_session_addr(p), sa))
			n++;
	return n;
}

/* Refuses a connection before any session exists: best effort, the
 * socket is new and its send buffer empty, so the line fits. */
static void
refuse(struct smtp_server *s, evutil_socket_t fd, const char *why)
{
	char line[CONF_HOSTNAME_MAX + 64];
	int n;

	n = snprintf(line, sizeof(line),
	    "421 4.7.0 %s Error: too many connections\r\n",
	    s->d->conf->hostname);
	if (n > 0 && (size_t)n < sizeof(line))
		(void)!send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	evutil_closesocket(fd);
	log_info("- smtp refused reason=%s sessions=%zu", why, s->nsessions);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct smtp_server *s = arg;

	(void)l;
	pace_accepted(&s->pace);
	if (s->stopping || s->d->stopping) {
		evutil_closesocket(fd);
		return;
	}
	if (s->nsessions >= SMTP_SESSIONS_MAX) {
		refuse(s, fd, "sessions");
		return;
	}
	if (count_from(s, sa) >= SMTP_SESSIONS_PER_ADDR_MAX) {
		refuse(s, fd, "sessions-per-address");
		return;
	}
	if (smtp_session_new(s, s->d, fd, sa, (socklen_t)salen) == NULL)
		log_warnx("- smtp accept failed: out of memory");
}

static void
on_accept_error(struct evconnlistener *l, void *arg)
{
	int e = EVUTIL_SOCKET_ERROR();

	(void)l;
	(void)arg;
	/* EMFILE and the like: keep listening, libevent retries. */
	log_warnx(
	    "- smtp accept error=\"%s\"", evutil_socket_error_to_string(e));
}

void
smtp_server_session_add(struct smtp_server *srv, struct smtp_session *s)
{
	struct smtp_session_link *l = smtp_session_link(s);

	l->prev = NULL;
	l->next = srv->head;
	if (srv->head != NULL)
		smtp_session_link(srv->head)->prev = s;
	srv->head = s;
	srv->nsessions++;
}

void
smtp_server_session_gone(struct smtp_server *srv, struct smtp_session *s)
{
	struct smtp_session_link *l = smtp_session_link(s);

	if (l->prev != NULL)
		smtp_session_link(l->prev)->next = l->next;
	else
		srv->head = l->next;
	if (l->next != NULL)
		smtp_session_link(l->next)->prev = l->prev;
	l->prev = l->next = NULL;
	srv->nsessions--;
}

struct smtp_server *
smtp_server_new(struct msgtrkd *d, char *err, size_t errsize)
{
	struct smtp_server *s;
	const struct conf *c = d->conf;
	size_t i;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errsize, "smtp: out of memory");
		return NULL;
	}
	s->d = d;
	for (i = 0; i < c->n_smtp_listen; i++) {
		const struct conf_addr *a = &c->smtp_listen[i];
		char host[INET6_ADDRSTRLEN + 8];
		int port = 0;

		/* Bound now (as root, port 25), enabled by start. */
		errno = 0;
		s->listeners[i] = evconnlistener_new_bind(d->base, on_accept, s,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
		        LEV_OPT_REUSEABLE | LEV_OPT_DISABLED,
		    SMTP_BACKLOG, (const struct sockaddr *)&a->ss, (int)a->len);
		if (s->listeners[i] == NULL) {
			int e = errno;

			net_host_text((const struct sockaddr *)&a->ss, host,
			    sizeof(host));
			port = net_port((const struct sockaddr *)&a->ss);
			snprintf(err, errsize, "smtp_listen %s port %d: %s",
			    host, port, e != 0 ? strerror(e) : "cannot listen");
			smtp_server_free(s);
			return NULL;
		}
		evconnlistener_set_error_cb(s->listeners[i], on_accept_error);
		s->nlisteners++;
	}
	if (pace_init(&s->pace, d->base, s->listeners, s->nlisteners) == -1) {
		snprintf(err, errsize, "smtp: out of memory");
		smtp_server_free(s);
		return NULL;
	}
	return s;
}

void
smtp_server_start(struct smtp_server *s)
{
	if (s == NULL)
		return;
	pace_start(&s->pace);
}

size_t
smtp_server_stop(struct smtp_server *s)
{
	struct smtp_session *p, *next;
	size_t i;

	if (s == NULL)
		return 0;
	if (!s->stopping) {
		s->stopping = 1;
		pace_stop(&s->pace);
		for (i = 0; i < s->nlisteners; i++) {
			evconnlistener_free(s->listeners[i]);
			s->listeners[i] = NULL;
		}
		s->nlisteners = 0;
		/* smtp_session_stop() never frees a session here, so the
		 * walk is safe. */
		for (p = s->head; p != NULL; p = next) {
			next = smtp_session_link(p)->next;
			smtp_session_stop(p);
		}
	}
	return s->nsessions;
}

void
smtp_server_free(struct smtp_server *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < CONF_LISTEN_MAX; i++)
		if (s->listeners[i] != NULL)
			evconnlistener_free(s->listeners[i]);
	while (s->head != NULL)
		smtp_session_free(s->head); /* unlinks itself */
	pace_free(&s->pace);
	free(s);
}
