/*
 * store_pg_server: a private PostgreSQL server for the store's tests,
 * started by pg_setup() (initdb + pg_ctl on a free 127.0.0.1 port, in a
 * fresh temporary directory, as the user postgres when run as root) and
 * removed by pg_teardown(), with an admin connection for raw SQL.
 * Without PostgreSQL binaries (pg_config --bindir, or MSGTRK_PG_BIN) or
 * when the server cannot start, pg_setup() says why and returns -1.
 */
#ifndef MSGTRK_TEST_STORE_PG_SERVER_H
#define MSGTRK_TEST_STORE_PG_SERVER_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include <libpq-fe.h>

/* The test role and its password: no error message may contain it. */
#define PG_PASSWORD "pw-Sekr1t-7c1e"
#define PG_USER "msgtrk_test"

struct pg_server {
	char bin[PATH_MAX];
	char dir[64];
	int port;
	char uri[256];
	char runas[64]; /* "runuser -u postgres -- " when root */
	PGconn *admin; /* raw SQL, as the tests' own connection */
};

extern struct pg_server pg;

/* Runs a shell command; 0 if it exited 0. */
int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int pg_setup(void);
void pg_teardown(void);
/* pg_ctl start / stop -m fast, waiting; 0 or -1. */
int pg_start(void);
int pg_stop(void);
/* A TCP port on 127.0.0.1 that was free a moment ago. */
int free_port(void);
/* The admin connection, reconnected after a server restart. */
PGconn *admin(void);
/* sql on the admin connection, failing the current test unless it gives
 * want (one retry after a restart). */
PGresult *raw_query(const char *sql, ExecStatusType want);
void raw_exec(const char *sql);
long long raw_int(const char *sql);
/* The postmaster's PID, or -1. */
pid_t pg_postmaster_pid(void);
/* Sends sig to the postmaster and each of its children (the backends
 * and auxiliary processes); *n_out: how many.  0 or -1. */
int pg_signal_all(int sig, size_t *n_out);

#endif /* MSGTRK_TEST_STORE_PG_SERVER_H */
