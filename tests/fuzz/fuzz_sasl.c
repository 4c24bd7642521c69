/*
 * fuzz_sasl: PLAIN and LOGIN responses.  Invariants: a failure leaves the
 * credentials wiped; a success gives fields within RFC 4616's bounds,
 * without NUL (login: without control characters either), and the PLAIN
 * message rebuilt from them decodes to the same credentials.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/b64.h"
#include "msgtrk/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_zero(const struct sasl_creds *c)
{
	const unsigned char *p = (const void *)c;
	size_t i;

	for (i = 0; i < sizeof(*c); i++)
		if (p[i] != 0)
			abort();
}

static void
check_field(const char *s, size_t n, int login)
{
	size_t i;

	if (n == 0 || n > SASL_FIELD_MAX || s[n] != '\0' || strlen(s) != n)
		abort();
	for (i = 0; login && i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct sasl_creds c, again;
	enum sasl_error err;
	char msg[SASL_PLAIN_MAX], enc[SASL_LINE_MAX + 1];
	size_t n;
	int e;

	if (sasl_plain_decode(line, size, &c, &err) == -1) {
		if (err == SASL_OK)
			abort();
		check_zero(&c);
	} else {
		check_field(c.login, c.login_len, 1);
		check_field(c.password, c.password_len, 0);
		msg[0] = '\0';
		memcpy(msg + 1, c.login, c.login_len);
		msg[1 + c.login_len] = '\0';
		memcpy(msg + 2 + c.login_len, c.password, c.password_len);
		n = 2 + c.login_len + c.password_len;
		e = b64_encode(msg, n, B64_PAD_REQUIRED, enc, sizeof(enc));
		if (e < 0 ||
		    sasl_plain_decode(enc, (size_t)e, &again, &err) != 0 ||
		    strcmp(again.login, c.login) != 0 ||
		    strcmp(again.password, c.password) != 0)
			abort();
		sasl_clear(&again);
	}
	sasl_clear(&c);
	memset(&c, 0, sizeof(c));
	if (sasl_login_decode(&c,
	        size % 2 ? SASL_LOGIN_USERNAME : SASL_LOGIN_PASSWORD, line,
	        size, &err) == 0) {
		if (size % 2)
			check_field(c.login, c.login_len, 1);
		else
			check_field(c.password, c.password_len, 0);
	} else
		check_zero(&c);
	sasl_clear(&c);
	return 0;
}
