/*
 * cli: what the msgtrk commands share: global options and exit codes
 * (main.c), error output and HOST[:PORT] parsing (util.c).
 */
#ifndef MSGTRK_CLI_H
#define MSGTRK_CLI_H

#include <stddef.h>

/* PRODUCT.md "msgtrk": 0 success; 1 the thing asked for failed; 2 usage
 * or config error. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* Options accepted before or after the subcommand. */
struct cli_opts {
	const char *dns; /* --dns HOST:PORT (dns_servers syntax), or NULL */
	const char *ca_file; /* --ca-file FILE, or NULL: system store */
};

/* Prints "msgtrk CMD: <message>" and a newline to stderr. */
void cli_err(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Splits "host", "host:port", "[v6]" or "[v6]:port" into host (without
 * brackets when bare is set, else as written) and *port (defport when
 * absent); *given_out (may be NULL) says whether a port was written.  The
 * host must be 1..255 characters of letters, digits, '-', '.', '_' or an
 * IP literal.  Returns 0, or -1 on bad syntax. */
int cli_hostport(const char *s, unsigned int defport, char *host,
    size_t hostsize, unsigned int *port, int *given_out);

/* 1 if a is an address as accepted on the command line: 1..254
 * printable ASCII octets without space, '<', '>' or '"', with an '@' that
 * has text on both sides; else 0. */
int cli_addr_ok(const char *a);

/* The commands: argv[0] is the command name.  Each returns an exit
 * code. */
int send_main(int argc, char **argv, const struct cli_opts *o);
/* "msgtrk sendmail", also msgtrk called as "sendmail": exit codes from
 * sysexits.h, as sendmail(8). */
int sendmail_main(int argc, char **argv, const struct cli_opts *o);
int track_main(int argc, char **argv, const struct cli_opts *o);
int inspect_queue_main(int argc, char **argv, const struct cli_opts *o);
int inspect_log_main(int argc, char **argv, const struct cli_opts *o);
/* msgtrk queue flush|hold|release|delete and msgtrk reload (control.c):
 * requests to msgtrkd's control socket. */
int control_queue_main(int argc, char **argv, const struct cli_opts *o);
int control_reload_main(int argc, char **argv, const struct cli_opts *o);
/* 1 if the arguments of "queue" (argv[0]) name a control verb (flush,
 * hold, release, delete) after its options, else 0 (a listing). */
int control_is_queue_verb(int argc, char **argv);

#endif /* MSGTRK_CLI_H */
