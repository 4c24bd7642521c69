/*
 * log: the programs' logging, after OpenSMTPD's log.c.  See log.h.
 *
 * In the foreground each event is one line on stderr, prefixed with a UTC
 * timestamp, written with a single write(2) so that lines from several
 * threads never interleave, and before the caller goes on (a test or an
 * operator that sees an effect finds its line written).  Otherwise it goes
 * to syslog, facility mail.
 * Every function keeps errno as it found it, so a caller may log and then
 * still look at errno.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* Longest line we emit; a longer message is cut and ends in "...". */
#define LOG_LINE_MAX 4096
/* Room for "YYYY-MM-DDTHH:MM:SS.mmmZ " and for ": <strerror>". */
#define LOG_STAMP_MAX 32
#define LOG_ERRSTR_MAX 128

static const char *log_ident = "msgtrk";
static int log_foreground = 1; /* before log_init(): stderr */
static int log_verbose;

/* The timestamp's seconds part, made once a second per thread. */
static __thread time_t log_stamp_sec = -1;
static __thread char log_stamp[LOG_STAMP_MAX];
static __thread size_t log_stamp_len;

void
log_init(const char *ident, int foreground, int verbose)
{
	if (!log_foreground)
		closelog();
	if (ident != NULL)
		log_ident = ident;
	log_foreground = foreground;
	log_verbose = verbose;
	tzset();
	if (!log_foreground)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_reopen(void)
{
	/* stderr needs nothing; syslog's socket may have gone away
	 * (syslogd restarted): open it afresh. */
	if (!log_foreground) {
		closelog();
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	}
}

static const char *
log_strerror(int e, char *buf, size_t size)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
	return strerror_r(e, buf, size);
#else
	if (strerror_r(e, buf, size) != 0)
		snprintf(buf, size, "error %d", e);
	return buf;
#endif
}

/* Writes n octets to stderr, whole (short writes and EINTR). */
static void
log_write(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		p += w;
		n -= (size_t)w;
	}
}

/* Puts "YYYY-MM-DDTHH:MM:SS.mmmZ " at line; returns its length. */
static size_t
log_stamp_put(char *line)
{
	struct timespec ts;
	struct tm tm;
	long ms;
	size_t o;

	if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
		return 0;
	if (ts.tv_sec != log_stamp_sec) {
		if (gmtime_r(&ts.tv_sec, &tm) == NULL)
			return 0;
		log_stamp_len = strftime(
		    log_stamp, LOG_STAMP_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
		if (log_stamp_len == 0 || log_stamp_len + 6 > LOG_STAMP_MAX)
			return 0;
		log_stamp_sec = ts.tv_sec;
	}
	o = log_stamp_len;
	memcpy(line, log_stamp, o);
	ms = ts.tv_nsec / 1000000;
	line[o++] = '.';
	line[o++] = (char)('0' + ms / 100);
	line[o++] = (char)('0' + ms / 10 % 10);
	line[o++] = (char)('0' + ms % 10);
	line[o++] = 'Z';
	line[o++] = ' ';
	return o;
}

static void log_vlog(int pri, int err, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* err: an errno to append as ": strerror", or 0. */
static void
log_vlog(int pri, int err, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX + 1], ebuf[LOG_ERRSTR_MAX];
	size_t cap = sizeof(line) - 1; /* keeps room for the '\n' */
	size_t o = 0, i, start;
	int n, cut = 0;

	if (log_foreground)
		o = log_stamp_put(line);
	start = o;
	n = vsnprintf(line + o, cap - o, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= cap - o) {
		o = cap - 1;
		cut = 1;
	} else
		o += (size_t)n;
	if (err != 0 && !cut) {
		n = snprintf(line + o, cap - o, ": %s",
		    log_strerror(err, ebuf, sizeof(ebuf)));
		if (n < 0)
			n = 0;
		if ((size_t)n >= cap - o) {
			o = cap - 1;
			cut = 1;
		} else
			o += (size_t)n;
	}
	if (cut && o - start >= 3)
		memcpy(line + o - 3, "...", 3);
	/* One event, one line: a stray control character (callers should
	 * have used log_escape()) must not start a fake one. */
	for (i = start; i < o; i++)
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
			line[i] = '?';
	if (log_foreground) {
		line[o++] = '\n';
		log_write(line, o);
	} else {
		line[o] = '\0';
		syslog(pri, "%s", line);
	}
}

#define LOG_WRAP(pri, err) \
	do { \
		int saved = errno; \
		va_list ap; \
\
		va_start(ap, fmt); \
		log_vlog((pri), (err) ? saved : 0, fmt, ap); \
		va_end(ap); \
		errno = saved; \
	} while (0)

void
log_warn(const char *fmt, ...)
{
	LOG_WRAP(LOG_WARNING, 1);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_WRAP(LOG_WARNING, 0);
}

void
log_info(const char *fmt, ...)
{
	LOG_WRAP(LOG_INFO, 0);
}

void
log_debug(const char *fmt, ...)
{
	if (!log_verbose)
		return;
	LOG_WRAP(LOG_DEBUG, 0);
}

static void log_crit(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
log_crit(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_CRIT, err, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_crit(saved, "fatal: %s", msg);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_crit(0, "fatal: %s", msg);
	exit(1);
}

char *
log_escape(char *dst, size_t dstsize, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t need = 0, room, o = 0, i;

	if (dst == NULL || dstsize == 0)
		return dst;
	if (s == NULL)
		n = 0;
	room = dstsize - 1;
	/* Does all of it fit?  Stop counting as soon as it does not. */
	for (i = 0; i < n && need <= room; i++) {
		unsigned char c = (unsigned char)s[i];

		need += c > 0x20 && c < 0x7f && c != '"' && c != '\\' ? 1 : 4;
	}
	if (need > room)
		room = room >= 3 ? room - 3 : 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c > 0x20 && c < 0x7f && c != '"' && c != '\\') {
			if (o + 1 > room)
				break;
			dst[o++] = (char)c;
		} else {
			if (o + 4 > room)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 0xf];
		}
	}
	if (need > dstsize - 1) {
		size_t dots = dstsize - 1 - o;

		memcpy(dst + o, "...", dots > 3 ? 3 : dots);
		o += dots > 3 ? 3 : dots;
	}
	dst[o] = '\0';
	return dst;
}
