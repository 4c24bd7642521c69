/*
 * fuzz_smtp_cmd: one SMTP command line with parameters.  The first octet
 * selects the advertised extensions; the rest is split into lines at
 * CRLF (as the line reader would), each parsed; the whole rest is parsed
 * too.  Invariants on success: the fields respect their RFC limits, the
 * raw ENVID/ORCPT decode to the stored values, an MTRK certifier is
 * canonical and comes with a unique-envid, flags are consistent; on
 * failure the reply table has a row.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgtrk/envid.h"
#include "msgtrk/mtrk.h"
#include "msgtrk/smtp_cmd.h"
#include "msgtrk/xtext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const char *line, size_t n, unsigned int ext)
{
	static struct smtp_cmd c;
	enum smtp_cmd_error err;
	char dec[SMTP_ORCPT_RAW_MAX + 1];
	size_t len, tl;
	const char *semi;

	/* A Domain or address literal is always a valid HELO name. */
	if (smtp_cmd_domain_valid(line, n) && !smtp_helo_valid(line, n))
		abort();
	if (smtp_cmd_parse(line, n, ext, &c, &err) != 0) {
		if (err == SMTP_CMD_OK || smtp_cmd_reply(err) == NULL)
			abort();
		return;
	}
	if (err != SMTP_CMD_OK || c.verb == SMTP_VERB_UNKNOWN)
		abort();
	if (n + 2 > SMTP_CMD_LINE_MAX_MAILRCPT)
		abort();
	/* What EHLO/HELO would let into Received: has no blank, comment,
	 * quote or clause separator. */
	if ((c.verb == SMTP_VERB_EHLO || c.verb == SMTP_VERB_HELO) &&
	    smtp_helo_valid(c.arg, strlen(c.arg)) &&
	    strpbrk(c.arg, " \t();<>\"\\@,") != NULL)
		abort();
	if (c.verb != SMTP_VERB_MAIL && c.verb != SMTP_VERB_RCPT) {
		if (n + 2 > SMTP_CMD_LINE_MAX || c.params != 0 ||
		    c.path.mailbox[0] != '\0')
			abort();
		return;
	}
	if (strlen(c.path.local) > SMTP_LOCAL_MAX ||
	    strlen(c.path.domain) > SMTP_DOMAIN_MAX ||
	    strlen(c.path.mailbox) + 2 > SMTP_PATH_MAX)
		abort();
	if (c.path.is_null &&
	    (c.verb != SMTP_VERB_MAIL || c.path.mailbox[0] != '\0'))
		abort();
	if (c.path.is_postmaster && c.verb != SMTP_VERB_RCPT)
		abort();
	if (!c.path.is_null && !c.path.is_postmaster &&
	    (c.path.local[0] == '\0' ||
	        !smtp_cmd_domain_valid(c.path.domain, strlen(c.path.domain))))
		abort();
	if ((c.params &
	        ~(SMTP_PARAM_SIZE | SMTP_PARAM_BODY | SMTP_PARAM_RET |
	            SMTP_PARAM_ENVID | SMTP_PARAM_MTRK | SMTP_PARAM_NOTIFY |
	            SMTP_PARAM_ORCPT)) != 0)
		abort();
	if (c.params & SMTP_PARAM_ENVID) {
		if (!(ext & (SMTP_EXT_DSN | SMTP_EXT_MTRK)) ||
		    xtext_decode(c.envid_raw, strlen(c.envid_raw),
		        XTEXT_PRINTABLE, dec, sizeof(dec), &len, NULL) != 0 ||
		    len == 0 || len > ENVID_MAX || strcmp(dec, c.envid) != 0)
			abort();
	}
	if (c.params & SMTP_PARAM_MTRK) {
		if (!(ext & SMTP_EXT_MTRK) || !(c.params & SMTP_PARAM_ENVID) ||
		    mtrk_certifier_check(c.mtrk.certifier,
		        strlen(c.mtrk.certifier), NULL) != 0 ||
		    c.mtrk.timeout > MTRK_TIMEOUT_MAX ||
		    envid_check_unique(c.envid, strlen(c.envid), NULL, NULL) !=
		        0)
			abort();
	}
	if (c.params & SMTP_PARAM_NOTIFY) {
		if (c.notify == 0 ||
		    ((c.notify & SMTP_NOTIFY_NEVER) &&
		        c.notify != SMTP_NOTIFY_NEVER))
			abort();
	}
	if (c.params & SMTP_PARAM_ORCPT) {
		semi = strchr(c.orcpt_raw, ';');
		tl = strlen(c.orcpt_type);
		if (semi == NULL || (size_t)(semi - c.orcpt_raw) != tl ||
		    tl == 0 || c.orcpt_addr[0] == '\0' ||
		    tl + 1 + strlen(c.orcpt_addr) > SMTP_ORCPT_MAX ||
		    xtext_decode(semi + 1, strlen(semi + 1), XTEXT_PRINTABLE,
		        dec, sizeof(dec), &len, NULL) != 0 ||
		    strcmp(dec, c.orcpt_addr) != 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s, *end, *p;
	unsigned int ext;

	if (size == 0 || size > 8192)
		return 0;
	ext = data[0] & 0x0f;
	s = (const char *)data + 1;
	end = (const char *)data + size;
	/* the whole rest as one line */
	check(s, (size_t)(end - s), ext);
	/* in pieces: each CRLF-terminated line */
	while (s < end) {
		p = s;
		while (p + 1 < end && !(p[0] == '\r' && p[1] == '\n'))
			p++;
		if (p + 1 >= end)
			p = end;
		check(s, (size_t)(p - s), ext);
		s = p < end ? p + 2 : end;
	}
	return 0;
}
