/*
 * net: socket address helpers.  See net.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "common/net.h"
#include "msgtrk/str.h"

const void *
net_host_bytes(const struct sockaddr *sa, size_t *len_out)
{
	if (sa->sa_family == AF_INET) {
		*len_out = sizeof(struct in_addr);
		return &((const struct sockaddr_in *)(const void *)sa)
		            ->sin_addr;
	}
	if (sa->sa_family == AF_INET6) {
		*len_out = sizeof(struct in6_addr);
		return &((const struct sockaddr_in6 *)(const void *)sa)
		            ->sin6_addr;
	}
	return NULL;
}

int
net_same_host(const struct sockaddr *a, const struct sockaddr *b)
{
	const void *x, *y;
	size_t lx, ly;

	if (a->sa_family != b->sa_family ||
	    (x = net_host_bytes(a, &lx)) == NULL ||
	    (y = net_host_bytes(b, &ly)) == NULL)
		return 0;
	return memcmp(x, y, lx) == 0;
}

char *
net_host_text(const struct sockaddr *sa, char *out, size_t outsize)
{
	const void *a;
	size_t len;

	if ((a = net_host_bytes(sa, &len)) == NULL ||
	    inet_ntop(sa->sa_family, a, out, (socklen_t)outsize) == NULL)
		str_copy(out, "?", outsize);
	return out;
}

int
net_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(
		    ((const struct sockaddr_in *)(const void *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(
		    ((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
	return 0;
}
