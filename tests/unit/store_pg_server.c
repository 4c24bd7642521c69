/*
 * store_pg_server: a private PostgreSQL server for the store's tests
 * (test_store_pg.c, test_store_reader.c).  See store_pg_server.h.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store_pg_server.h"
#include "table.h"

struct pg_server pg;

int
sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	fflush(NULL);
	rc = system(cmd);
	return rc == 0 ? 0 : -1;
}

int
pg_start(void)
{
	return sh("%s%s/pg_ctl -D %s/data -l %s/server.log -w -t 30 "
	          "-o '-p %d -k %s -c listen_addresses=127.0.0.1 "
	          "-c fsync=off' start >/dev/null",
	    pg.runas, pg.bin, pg.dir, pg.dir, pg.port, pg.dir);
}

int
pg_stop(void)
{
	return sh("%s%s/pg_ctl -D %s/data -w -t 30 -m fast stop >/dev/null",
	    pg.runas, pg.bin, pg.dir);
}

int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* Sets up and starts the server.  Returns 0, or -1 with the reason
 * printed (the caller skips). */
int
pg_setup(void)
{
	const char *env = getenv("MSGTRK_PG_BIN");
	char p[PATH_MAX + 16];
	struct passwd *pw;
	FILE *f;

	if (env != NULL)
		snprintf(pg.bin, sizeof(pg.bin), "%s", env);
	else if ((f = popen("pg_config --bindir 2>/dev/null", "r")) != NULL) {
		if (fgets(pg.bin, sizeof(pg.bin), f) == NULL)
			pg.bin[0] = '\0';
		pclose(f);
		pg.bin[strcspn(pg.bin, "\n")] = '\0';
	}
	snprintf(p, sizeof(p), "%s/initdb", pg.bin);
	if (pg.bin[0] == '\0' || access(p, X_OK) == -1) {
		printf("no PostgreSQL server binaries (initdb)\n");
		return -1;
	}
	snprintf(pg.dir, sizeof(pg.dir), "/tmp/test_store_pg.XXXXXX");
	if (mkdtemp(pg.dir) == NULL)
		return -1;
	/* initdb refuses to run as root. */
	if (geteuid() == 0) {
		if ((pw = getpwnam("postgres")) == NULL) {
			printf("running as root and no user postgres\n");
			return -1;
		}
		if (chown(pg.dir, pw->pw_uid, pw->pw_gid) == -1)
			return -1;
		snprintf(pg.runas, sizeof(pg.runas), "runuser -u postgres -- ");
	}
	snprintf(p, sizeof(p), "%s/pw", pg.dir);
	if ((f = fopen(p, "w")) == NULL)
		return -1;
	fprintf(f, "%s\n", PG_PASSWORD);
	fclose(f);
	if (geteuid() == 0 && (pw = getpwnam("postgres")) != NULL &&
	    chown(p, pw->pw_uid, pw->pw_gid) == -1)
		return -1;
	if (sh("%s%s/initdb -D %s/data -U %s --pwfile=%s/pw "
	       "-A scram-sha-256 -E UTF8 --no-locale >%s/initdb.log 2>&1",
	        pg.runas, pg.bin, pg.dir, PG_USER, pg.dir, pg.dir) == -1) {
		printf("initdb failed (see %s/initdb.log)\n", pg.dir);
		return -1;
	}
	if ((pg.port = free_port()) == -1 || pg_start() == -1) {
		printf("pg_ctl start failed (see %s/server.log)\n", pg.dir);
		return -1;
	}
	snprintf(pg.uri, sizeof(pg.uri),
	    "postgresql://" PG_USER ":" PG_PASSWORD "@127.0.0.1:%d/postgres",
	    pg.port);
	pg.admin = PQconnectdb(pg.uri);
	if (PQstatus(pg.admin) != CONNECTION_OK) {
		printf("admin connection: %s", PQerrorMessage(pg.admin));
		return -1;
	}
	/* A test that waits on a lock the store holds fails, not hangs. */
	PQclear(PQexec(pg.admin,
	    "SET client_min_messages = warning;"
	    "SET lock_timeout = 10000"));
	return 0;
}

void
pg_teardown(void)
{
	PQfinish(pg.admin);
	pg.admin = NULL;
	if (pg.port > 0)
		(void)pg_stop();
	if (pg.dir[0] != '\0')
		(void)sh("rm -rf %s", pg.dir);
}

/* The admin connection, reconnected after a server restart. */
PGconn *
admin(void)
{
	if (PQstatus(pg.admin) != CONNECTION_OK)
		PQreset(pg.admin);
	if (PQstatus(pg.admin) != CONNECTION_OK)
		fail_msg("admin: %s", PQerrorMessage(pg.admin));
	return pg.admin;
}

/* Runs sql on the admin connection; one retry, as the first use after
 * a server restart finds the connection lost. */
PGresult *
raw_query(const char *sql, ExecStatusType want)
{
	PGresult *res = PQexec(admin(), sql);

	if (PQresultStatus(res) != want) {
		PQclear(res);
		res = PQexec(admin(), sql);
	}
	if (PQresultStatus(res) != want)
		fail_msg("%s: %s", sql, PQresultErrorMessage(res));
	return res;
}

void
raw_exec(const char *sql)
{
	PQclear(raw_query(sql, PGRES_COMMAND_OK));
}

long long
raw_int(const char *sql)
{
	PGresult *res = raw_query(sql, PGRES_TUPLES_OK);
	long long v;

	if (PQntuples(res) != 1)
		fail_msg("%s: %d rows", sql, PQntuples(res));
	v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

pid_t
pg_postmaster_pid(void)
{
	char p[PATH_MAX + 32];
	long pid = -1;
	FILE *f;

	snprintf(p, sizeof(p), "%s/data/postmaster.pid", pg.dir);
	if ((f = fopen(p, "r")) == NULL)
		return -1;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = -1;
	fclose(f);
	return (pid_t)pid;
}

/* The parent of process pid, from /proc/PID/stat, or -1. */
static pid_t
ppid_of(pid_t pid)
{
	char p[64], buf[512], *rp;
	long ppid;
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(p, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold spaces and ')' */
	if ((rp = strrchr(buf, ')')) == NULL ||
	    sscanf(rp + 1, " %*c %ld", &ppid) != 1)
		return -1;
	return (pid_t)ppid;
}

int
pg_signal_all(int sig, size_t *n_out)
{
	pid_t pm = pg_postmaster_pid(), pid;
	struct dirent *e;
	DIR *d;
	char *end;

	*n_out = 0;
	if (pm <= 0 || kill(pm, sig) == -1)
		return -1;
	(*n_out)++;
	if ((d = opendir("/proc")) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		pid = (pid_t)strtol(e->d_name, &end, 10);
		if (*end != '\0' || pid <= 0 || ppid_of(pid) != pm)
			continue;
		if (kill(pid, sig) == 0)
			(*n_out)++;
	}
	closedir(d);
	return 0;
}
