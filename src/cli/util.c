/*
 * cli/util.c: what every msgtrk command uses (cli.h): error output,
 * HOST[:PORT] parsing, the command-line address check.  Kept out of main.c so that the commands do not
 * depend on the dispatcher.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/send.h"

void
cli_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "msgtrk%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cli_hostport(const char *s, unsigned int defport, char *host, size_t hostsize,
    unsigned int *port, int *given_out)
{
	const char *end, *colon = NULL, *p;
	size_t hl;
	char *e;
	unsigned long v;

	if (given_out != NULL)
		*given_out = 0;
	*port = defport;
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL || end == s + 1)
			return -1;
		end++;
		if (*end == ':')
			colon = end;
		else if (*end != '\0')
			return -1;
		for (p = s + 1; p < end - 1; p++)
			if (strchr("0123456789abcdefABCDEF:.", *p) == NULL)
				return -1;
	} else {
		colon = strrchr(s, ':');
		end = colon ? colon : s + strlen(s);
		if (end == s)
			return -1;
		for (p = s; p < end; p++)
			if (strchr("abcdefghijklmnopqrstuvwxyz"
			           "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._",
			        *p) == NULL)
				return -1;
	}
	hl = (size_t)(end - s);
	if (hl > 255 || hl >= hostsize)
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (colon != NULL) {
		if (colon[1] < '0' || colon[1] > '9')
			return -1;
		v = strtoul(colon + 1, &e, 10);
		if (*e != '\0' || v < 1 || v > 65535 || e - colon > 6)
			return -1;
		*port = (unsigned int)v;
		if (given_out != NULL)
			*given_out = 1;
	}
	return 0;
}

/* An address as we accept it on the command line: 1..SEND_ADDR_MAX
 * printable ASCII octets without space, '<', '>' or '"', one '@' at
 * least, text on both sides of the last one. */
int
cli_addr_ok(const char *a)
{
	const char *at = strrchr(a, '@');
	size_t n = strlen(a), i;

	if (n == 0 || n > SEND_ADDR_MAX || at == NULL || at == a ||
	    at[1] == '\0')
		return 0;
	for (i = 0; i < n; i++)
		if (a[i] <= 0x20 || a[i] >= 0x7f || strchr("<>\"", a[i]))
			return 0;
	return 1;
}
