/*
 * date: RFC 5322 §3.3 date-time, as used by Arrival-Date, Last-Attempt-Date
 * and Will-Retry-Until (RFC 3886 §3.2.2, §3.3.6, §3.3.7, via RFC 3464), by
 * the Received: header, and by DSNs.
 *
 * We generate  "Sun, 22 Nov 2026 05:49:40 +0000", "Mon, 2 Nov 2026 ..."
 * (day-of-week included, day without a leading zero, seconds, numeric
 * zone: the project's one format for every date it writes, decision G-2
 * of the tracking-status digest).  The parser accepts RFC 5322 date-time
 * including CFWS between tokens, an optional day-of-week (checked against
 * the date), one- or two-digit days, optional seconds, and the obsolete
 * zones of RFC 5322 §4.3 (UT, GMT, EST..PDT; military zones read as -0000).
 */
#ifndef MSGTRK_DATE_H
#define MSGTRK_DATE_H

#include <stddef.h>
#include <time.h>

/* Longest date we emit, with its NUL: "Wed, 31 Dec 9999 23:59:59 +1400". */
#define DATE_MAX 32

/* Longest text the parser looks at (dates with comments can be long, but
 * not longer than a folded header field line, RFC 5322 §2.1.1). */
#define DATE_PARSE_MAX 998

struct date {
	time_t t; /* the instant, seconds since the epoch (UTC) */
	int gmtoff; /* zone offset in seconds east of UTC, -86399..86399 */
};

/* Formats d as an RFC 5322 date-time into out (at least DATE_MAX bytes).
 * Returns 0, or -1 if the time cannot be represented (year outside
 * 1900-9999, or an offset outside +-99:59). */
int date_format(const struct date *d, char *out, size_t outsize);

/* Parses the n bytes at s as an RFC 5322 date-time (surrounding CFWS
 * allowed).  Returns 0 and fills *out, or -1 if the text is not a valid
 * date (bad syntax, impossible calendar date, day-of-week mismatch, year
 * before 1900, text longer than DATE_PARSE_MAX). */
int date_parse(const char *s, size_t n, struct date *out);

#endif /* MSGTRK_DATE_H */
