/*
 * testdns: a real dnsmasq for the DNS tests (TESTING.md) on 127.0.0.1, and
 * UDP ports that never answer (timeouts) or refuse.  Shared by test_dns
 * and test_route.
 */
#ifndef MSGTRK_TESTDNS_H
#define MSGTRK_TESTDNS_H

#include <stddef.h>
#include <sys/types.h>

/* A port of 127.0.0.1 free for both UDP and TCP a moment ago, or 0. */
int testdns_free_port(void);

/* Starts dnsmasq answering the records (dnsmasq options such as
 * "--host-record=a.test,127.0.0.2"), trying up to 5 free ports, and
 * waits (bounded) until it answers.  Writes "127.0.0.1:PORT" to server.
 * Returns its pid, or -1. */
pid_t testdns_start(const char *const *records, size_t nrecords, char *server,
    size_t serversize);

/* Stops the dnsmasq of testdns_start (pid <= 0: nothing). */
void testdns_stop(pid_t pid);

/* Binds a UDP socket nobody reads (*fd_out; queries to it time out) and
 * finds a closed port (queries to it are refused); writes both as
 * "127.0.0.1:PORT".  Returns 0 or -1. */
int testdns_silent(int *fd_out, char *silent, size_t silentsize, char *refused,
    size_t refusedsize);

#endif /* MSGTRK_TESTDNS_H */
