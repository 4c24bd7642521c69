/*
 * log: the programs' logging, after OpenSMTPD's log.h.  One line per
 * event: "<id> <component> <event> key=value ..."; peer text goes through
 * log_escape() first.  Never log a secret (MTRK secrets, AUTH data).
 */
#ifndef MSGTRK_LOG_H
#define MSGTRK_LOG_H

#include <stdarg.h>
#include <stddef.h>

/* Starts logging: to stderr when foreground, else to syslog (facility
 * mail) with the given ident.  verbose enables log_debug. */
void log_init(const char *ident, int foreground, int verbose);

/* Reopens the log destination (SIGHUP). */
void log_reopen(void);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* fatal/fatalx: startup errors, broken invariants and OOM only; nothing a
 * peer sends may reach them.  fatal appends strerror(errno). */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* Escapes n bytes of peer text for a log line into dst (always
 * terminated, at most dstsize-1 bytes; longer text ends in "..."):
 * bytes outside 0x21-0x7e, '"' and '\\' become \xHH so a value can never
 * fake another key=value or line.  Returns dst. */
char *log_escape(char *dst, size_t dstsize, const char *s, size_t n);

#endif /* MSGTRK_LOG_H */
