/*
 * testdns: a real dnsmasq for the DNS tests (TESTING.md), on a free port of
 * 127.0.0.1, and UDP ports that never answer or refuse.  See testdns.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testdns.h"

/* Returns a free port on 127.0.0.1 for both UDP and TCP (dnsmasq binds
 * both), or 0. */
static int
testdns_free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int u, t, port = 0;

	u = socket(AF_INET, SOCK_DGRAM, 0);
	t = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (u >= 0 && t >= 0 &&
	    bind(u, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(u, (struct sockaddr *)&sin, &len) == 0 &&
	    bind(t, (struct sockaddr *)&sin, sizeof(sin)) == 0)
		port = ntohs(sin.sin_port);
	if (u >= 0)
		close(u);
	if (t >= 0)
		close(t);
	return port;
}

static int
dnsmasq_ready(int port)
{
	struct sockaddr_in sin;
	int fd, ok;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return 0;
	ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

static pid_t
testdns_start(const char *const *records, size_t nrecords, char *server,
    size_t serversize)
{
	char portarg[32];
	const char *argv[128];
	pid_t pid;
	size_t n = 0, i;
	int port, tries;
	struct timespec ts = { 0, 50 * 1000 * 1000 };

	for (tries = 0; tries < 5; tries++) {
		if ((port = testdns_free_port()) == 0)
			continue;
		snprintf(portarg, sizeof(portarg), "--port=%d", port);
		n = 0;
		argv[n++] = "dnsmasq";
		argv[n++] = "--keep-in-foreground";
		argv[n++] = "--conf-file=/dev/null";
		argv[n++] = "--no-resolv";
		argv[n++] = "--no-hosts";
		argv[n++] = "--no-poll";
		argv[n++] = "--no-negcache";
		argv[n++] = portarg;
		argv[n++] = "--listen-address=127.0.0.1";
		argv[n++] = "--bind-interfaces";
		argv[n++] = "--pid-file=";
		argv[n++] = "--address=/#/";
		argv[n++] = "--log-facility=/dev/null";
		for (i = 0; i < nrecords && n < 126; i++)
			argv[n++] = records[i];
		argv[n] = NULL;
		if ((pid = fork()) == -1)
			return -1;
		if (pid == 0) {
			execvp("dnsmasq", (char *const *)argv);
			execv("/usr/sbin/dnsmasq", (char *const *)argv);
			_exit(127);
		}
		/* bounded wait: 100 * 50 ms */
		for (i = 0; i < 100; i++) {
			if (dnsmasq_ready(port)) {
				snprintf(
				    server, serversize, "127.0.0.1:%d", port);
				return pid;
			}
			if (waitpid(pid, NULL, WNOHANG) == pid)
				break;
			nanosleep(&ts, NULL);
		}
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
	return -1;
}

static void
testdns_stop(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
}

/* A bound UDP socket nobody reads: queries to it just time out. */
static int
testdns_silent(int *fd_out, char *silent, size_t silentsize, char *refused,
    size_t refusedsize)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int port;

	if ((*fd_out = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(*fd_out, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(*fd_out, (struct sockaddr *)&sin, &len) != 0)
		return -1;
	snprintf(silent, silentsize, "127.0.0.1:%d", ntohs(sin.sin_port));
	if ((port = testdns_free_port()) == 0)
		return -1;
	snprintf(refused, refusedsize, "127.0.0.1:%d", port);
	return 0;
}

int
testdns_up(struct testdns *t, const char *const *records, size_t n)
{
	memset(t, 0, sizeof(*t));
	t->silent_fd = -1;
	if ((t->pid = testdns_start(
	         records, n, t->server, sizeof(t->server))) == -1 ||
	    testdns_silent(&t->silent_fd, t->silent, sizeof(t->silent),
	        t->refused, sizeof(t->refused)) == -1) {
		testdns_down(t);
		return -1;
	}
	return 0;
}

void
testdns_down(struct testdns *t)
{
	testdns_stop(t->pid);
	t->pid = -1;
	if (t->silent_fd != -1)
		close(t->silent_fd);
	t->silent_fd = -1;
}
