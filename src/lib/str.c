/*
 * str: ASCII string helpers.  See msgtrk/str.h.
 */
#include <stdio.h>
#include <string.h>

#include "msgtrk/str.h"

size_t
str_copy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size > 0) {
		size_t c = n < size - 1 ? n : size - 1;

		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

int
str_ncasecmp(const char *a, const char *b, size_t n)
{
	for (; n > 0; a++, b++, n--) {
		int d = lower((unsigned char)*a) - lower((unsigned char)*b);

		if (d != 0 || *a == '\0')
			return d;
	}
	return 0;
}

int
str_casecmp(const char *a, const char *b)
{
	return str_ncasecmp(a, b, (size_t)-1);
}

int
str_casestarts(const char *s, size_t n, const char *prefix)
{
	size_t pl = strlen(prefix);
	size_t i;

	if (n < pl)
		return 0;
	for (i = 0; i < pl; i++)
		if (lower((unsigned char)s[i]) !=
		    lower((unsigned char)prefix[i]))
			return 0;
	return 1;
}

void
str_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)lower((unsigned char)*s);
}

char *
str_printable(char *dst, size_t dstsize, const char *s, size_t n)
{
	size_t o = 0, i;

	if (dstsize == 0)
		return dst;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c <= 0x7e && c != '\\') {
			if (o + 1 >= dstsize)
				break;
			dst[o++] = (char)c;
		} else {
			if (o + 4 >= dstsize)
				break;
			snprintf(dst + o, 5, "\\x%02x", c);
			o += 4;
		}
	}
	dst[o] = '\0';
	return dst;
}
