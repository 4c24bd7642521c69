/*
 * net: socket address helpers shared by netio, the servers and delivery.
 */
#ifndef MSGTRK_NET_H
#define MSGTRK_NET_H

#include <stddef.h>
#include <sys/socket.h>

/* Returns 1 if a and b are the same host (family and IPv4/IPv6 address;
 * ports ignored), else 0. */
int net_same_host(const struct sockaddr *a, const struct sockaddr *b);

/* Writes the address of sa as text ("127.0.0.1", "::1"), "?" for another
 * family, into out (always terminated).  Returns out. */
char *net_host_text(const struct sockaddr *sa, char *out, size_t outsize);

/* The address bytes of an AF_INET or AF_INET6 sa (4 or 16 octets, length
 * in *len_out), pointing into sa; NULL for another family. */
const void *net_host_bytes(const struct sockaddr *sa, size_t *len_out);

/* The port of sa in host order, 0 for another family. */
int net_port(const struct sockaddr *sa);

#endif /* MSGTRK_NET_H */
