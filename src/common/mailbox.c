/*
 * mailbox: see mailbox.h.
 */
#include <string.h>

#include "common/mailbox.h"

/* 0 if the n octets at s could name something other than one directory
 * below its parent. */
static int
component_ok(const char *s, size_t n)
{
	return n > 0 && s[0] != '.' && memchr(s, '/', n) == NULL;
}

int
mailbox_name_ok(const char *addr)
{
	const char *at;

	if (addr == NULL || (at = strrchr(addr, '@')) == NULL)
		return 0;
	return component_ok(addr, (size_t)(at - addr)) &&
	    component_ok(at + 1, strlen(at + 1));
}
