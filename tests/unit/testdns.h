/*
 * testdns: a real dnsmasq for the DNS tests (TESTING.md) on 127.0.0.1, and
 * UDP ports that never answer (timeouts) or refuse.  Shared by test_dns
 * and test_route.
 */
#ifndef MSGTRK_TESTDNS_H
#define MSGTRK_TESTDNS_H

#include <stddef.h>
#include <sys/types.h>

/* The DNS a test suite talks to: a dnsmasq answering its records, a UDP
 * port that never answers (timeouts) and a closed one (refusals), each as
 * "127.0.0.1:PORT". */
struct testdns {
	pid_t pid;
	int silent_fd;
	char server[64];
	char silent[64];
	char refused[64];
};

/* Starts dnsmasq answering records (dnsmasq options such as
 * "--host-record=a.test,127.0.0.2"), trying up to 5 free ports and waiting
 * (bounded) until it answers, and sets up the silent and refused ports.
 * Returns 0, or -1 with nothing left running. */
int testdns_up(struct testdns *t, const char *const *records, size_t n);

/* Stops what testdns_up started. */
void testdns_down(struct testdns *t);

#endif /* MSGTRK_TESTDNS_H */
