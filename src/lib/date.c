/*
 * date: RFC 5322 §3.3 date-time formatting and parsing.  See msgtrk/date.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "msgtrk/date.h"
#include "msgtrk/str.h"

/* RFC 5322 §3.2.2 comments nest; bound the depth we follow. */
#define DATE_COMMENT_DEPTH_MAX 16

static const char *const day_names[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	"Fri", "Sat" };
static const char *const month_names[] = { "Jan", "Feb", "Mar", "Apr", "May",
	"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int
days_in_month(int64_t y, int m)
{
	static const int dim[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
		31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dim[m - 1];
}

/* 1970-01-01 was a Thursday. */
static int
weekday(int64_t days)
{
	int64_t w = (days + 4) % 7;

	return (int)(w < 0 ? w + 7 : w);
}

int
date_format(const struct date *d, char *out, size_t outsize)
{
	int64_t local, days, y;
	int secs, m, day, off;
	int n;

	if (d->gmtoff <= -6000 * 60 || d->gmtoff >= 6000 * 60 ||
	    d->gmtoff % 60 != 0)
		return -1;
	local = (int64_t)d->t + d->gmtoff;
	days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
	secs = (int)(local - days * 86400);
	civil_from_days(days, &y, &m, &day);
	if (y < 1900 || y > 9999)
		return -1;
	off = d->gmtoff / 60;
	n = snprintf(out, outsize, "%s, %d %s %04d %02d:%02d:%02d %c%02d%02d",
	    day_names[weekday(days)], day, month_names[m - 1], (int)y,
	    secs / 3600, secs / 60 % 60, secs % 60, off < 0 ? '-' : '+',
	    (off < 0 ? -off : off) / 60, (off < 0 ? -off : off) % 60);
	if (n < 0 || (size_t)n >= outsize)
		return -1;
	return 0;
}

struct scan {
	const char *p;
	const char *end;
};

/* Skips CFWS (RFC 5322 §3.2.2).  A CRLF must be followed by WSP (folding);
 * anything else is an error.  Returns 0 or -1. */
static int
skip_cfws(struct scan *s)
{
	int depth = 0;

	while (s->p < s->end) {
		char c = *s->p;

		if (c == '\r') {
			if (s->end - s->p < 3 || s->p[1] != '\n' ||
			    (s->p[2] != ' ' && s->p[2] != '\t'))
				return -1;
			s->p += 3;
		} else if (c == ' ' || c == '\t') {
			s->p++;
		} else if (c == '(') {
			if (++depth > DATE_COMMENT_DEPTH_MAX)
				return -1;
			s->p++;
		} else if (depth > 0 && c == ')') {
			depth--;
			s->p++;
		} else if (depth > 0 && c == '\\') {
			if (s->end - s->p < 2 || s->p[1] == '\0')
				return -1;
			s->p += 2;
		} else if (depth > 0 && c != '\0' && c != '\n') {
			s->p++;
		} else {
			break;
		}
	}
	return depth == 0 ? 0 : -1;
}

/* Reads 1..maxd digits; returns the count read (0 if none). */
static int
scan_digits(struct scan *s, int maxd, int64_t *v)
{
	int n = 0;

	*v = 0;
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
		if (++n > maxd)
			return -1;
		*v = *v * 10 + (*s->p - '0');
		s->p++;
	}
	return n;
}

static int
scan_word(struct scan *s, char *w, size_t wsize)
{
	size_t n = 0;

	while (s->p < s->end &&
	    ((*s->p >= 'A' && *s->p <= 'Z') ||
	        (*s->p >= 'a' && *s->p <= 'z'))) {
		if (n + 1 >= wsize)
			return -1;
		w[n++] = *s->p++;
	}
	w[n] = '\0';
	return n > 0 ? 0 : -1;
}

static int
lookup(const char *w, const char *const *names, int count)
{
	int i;

	for (i = 0; i < count; i++)
		if (str_casecmp(w, names[i]) == 0)
			return i;
	return -1;
}

/* RFC 5322 §4.3 obs-zone; military zones are read as -0000 ("SHOULD be
 * considered equivalent to -0000"). */
static int
obs_zone(const char *w, int *off)
{
	static const struct {
		const char *name;
		int hours;
	} zones[] = { { "UT", 0 }, { "GMT", 0 }, { "EST", -5 }, { "EDT", -4 },
		{ "CST", -6 }, { "CDT", -5 }, { "MST", -7 }, { "MDT", -6 },
		{ "PST", -8 }, { "PDT", -7 } };
	size_t i;

	for (i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
		if (str_casecmp(w, zones[i].name) == 0) {
			*off = zones[i].hours * 3600;
			return 0;
		}
	if (strlen(w) == 1 && w[0] != 'J' && w[0] != 'j') {
		*off = 0;
		return 0;
	}
	return -1;
}

static int
expect(struct scan *s, char c)
{
	if (skip_cfws(s) == -1 || s->p >= s->end || *s->p != c)
		return -1;
	s->p++;
	return 0;
}

int
date_parse(const char *str, size_t n, struct date *out)
{
	struct scan s = { str, str + n };
	char w[8];
	int wday = -1, mon, nd, off = 0;
	int64_t day, year, hh, mm, ss = 0, zone, days;
	const char *save;

	if (n > DATE_PARSE_MAX || memchr(str, '\0', n) != NULL)
		return -1;
	if (skip_cfws(&s) == -1)
		return -1;
	save = s.p;
	if (scan_word(&s, w, sizeof(w)) == 0) {
		if ((wday = lookup(w, day_names, 7)) == -1 ||
		    expect(&s, ',') == -1)
			return -1;
	} else {
		s.p = save;
	}
	if (skip_cfws(&s) == -1 || scan_digits(&s, 2, &day) < 1)
		return -1;
	if (skip_cfws(&s) == -1 || scan_word(&s, w, sizeof(w)) == -1 ||
	    (mon = lookup(w, month_names, 12)) == -1)
		return -1;
	mon++;
	/* RFC 5322 §4.3 obs-year: two digits are 19xx/20xx, three 1900+. */
	if (skip_cfws(&s) == -1 || (nd = scan_digits(&s, 9, &year)) < 2)
		return -1;
	if (nd == 2)
		year += year < 50 ? 2000 : 1900;
	else if (nd == 3)
		year += 1900;
	if (year < 1900 || year > 9999)
		return -1;
	if (skip_cfws(&s) == -1 || scan_digits(&s, 2, &hh) != 2 ||
	    expect(&s, ':') == -1 || skip_cfws(&s) == -1 ||
	    scan_digits(&s, 2, &mm) != 2)
		return -1;
	save = s.p;
	if (expect(&s, ':') == 0) {
		if (skip_cfws(&s) == -1 || scan_digits(&s, 2, &ss) != 2)
			return -1;
	} else {
		s.p = save;
	}
	if (skip_cfws(&s) == -1 || s.p >= s.end)
		return -1;
	if (*s.p == '+' || *s.p == '-') {
		int neg = *s.p == '-';

		s.p++;
		if (scan_digits(&s, 4, &zone) != 4 || zone % 100 > 59)
			return -1;
		off = (int)(zone / 100 * 3600 + zone % 100 * 60);
		if (neg)
			off = -off;
	} else if (scan_word(&s, w, sizeof(w)) == -1 || obs_zone(w, &off) == -1)
		return -1;
	if (skip_cfws(&s) == -1 || s.p != s.end)
		return -1;
	if (day < 1 || day > days_in_month(year, mon) || hh > 23 || mm > 59 ||
	    ss > 60)
		return -1;
	days = days_from_civil(year, mon, (int)day);
	if (wday != -1 && weekday(days) != wday)
		return -1;
	out->t = (time_t)(days * 86400 + hh * 3600 + mm * 60 + ss - off);
	out->gmtoff = off;
	return 0;
}
