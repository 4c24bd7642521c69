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

/* The length of a client key (net_client_key). */
#define NET_CLIENT_KEY_LEN 9

/* The key under which per-client limits count sa (the MTQP server's failed
 * TRACKs, AUTH failures): 4 and the address for IPv4 and IPv4-mapped IPv6
 * (::ffff:a.b.c.d), 6 and the /64 for other IPv6, zero-padded to
 * NET_CLIENT_KEY_LEN.  Returns 0, or -1 for another family (key_out is
 * then all zero). */
int net_client_key(const struct sockaddr *sa, unsigned char *key_out);

#endif /* MSGTRK_NET_H */
