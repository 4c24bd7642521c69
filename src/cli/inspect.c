/*
 * msgtrk queue and msgtrk log: the operator's views of a node, read from
 * its data_dir (queue_scan(), which never changes the queue files) and
 * its tracking store (the backend's search()).
 *
 * --since T (log): a duration ("2h", "3d": that long ago) or an RFC 5322
 * date.  --status ACTION: an RFC 3886 action; "delayed" also matches
 * messages not tried yet (reported as delayed by MTQP too).
 */
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/conf.h"
#include "msgtrk/buf.h"
#include "msgtrk/date.h"
#include "msgtrk/str.h"
#include "queue/queue.h"
#include "queue/queue_json.h"
#include "store/store.h"
#include "store/store_json.h"

#define INSPECT_CONF_DEFAULT "/etc/msgtrk/msgtrkd.conf"
/* One output line: a message with QUEUE_RCPT_MAX recipients of
 * QUEUE_STRING_MAX octets each, escaped, is the worst case. */
#define INSPECT_LINE_MAX (64UL * 1024 * 1024)

struct inspect_out {
	int json;
	int failed;
	const char *status; /* --status, or NULL */
	time_t now;
	struct buf b;
};

static int
inspect_conf(const char *cmd, const char *path, struct conf *c)
{
	char err[512];

	/* Failing to find the system host name (the only -1 besides OOM)
	 * does not matter here: these views never use it. */
	if (conf_defaults(c, err, sizeof(err)) == -1 && c->data_dir == NULL) {
		cli_err(cmd, "%s", err);
		return -1;
	}
	if (conf_load(c, path, err, sizeof(err)) == -1) {
		cli_err(cmd, "%s", err);
		return -1;
	}
	return 0;
}

/* Text output of a date ("-" for none).  (The JSON writers are
 * queue_json.h's and store_json.h's, shared with the HTTP API.) */
static int
inspect_date(struct buf *b, time_t t)
{
	struct date d = { t, 0 };
	char s[DATE_MAX];

	if (t == 0 || date_format(&d, s, sizeof(s)) == -1)
		return buf_adds(b, "-");
	return buf_adds(b, s);
}

/* Text output of peer-controlled strings: printable, no spaces. */
static int
inspect_word(struct buf *b, const char *s)
{
	char tmp[1024];

	if (s == NULL || s[0] == '\0')
		return buf_adds(b, "-");
	str_printable(tmp, sizeof(tmp), s, strlen(s));
	return buf_adds(b, tmp);
}

static void
inspect_flush(struct inspect_out *o)
{
	fwrite(o->b.data, 1, o->b.len, stdout);
	buf_clear(&o->b);
}

static void
inspect_queue_one(void *arg, const struct queue_msg *m)
{
	struct inspect_out *o = arg;
	struct buf *b = &o->b;
	const char *lasterr = queue_json_last_error(m);
	size_t i;
	int rc = 0;

	if (o->json) {
		rc |= queue_json_msg(b, m);
		rc |= buf_addc(b, '\n');
	} else {
		long age = (long)(o->now - m->arrival);

		rc |= buf_addf(
		    b, "%s  age %lds  from ", m->qid, age < 0 ? 0 : age);
		rc |= inspect_word(b, m->sender[0] ? m->sender : "<>");
		rc |= buf_adds(b, "  next ");
		rc |= inspect_date(b, m->next_attempt);
		rc |= buf_addf(b, "  attempts %lu%s\n  to",
		    (unsigned long)m->attempts, m->held ? "  held" : "");
		for (i = 0; i < m->nrcpt; i++) {
			rc |= buf_addc(b, ' ');
			rc |= inspect_word(b, m->rcpts[i].addr);
			if (m->rcpts[i].final)
				rc |= buf_adds(b, "(done)");
		}
		rc |= buf_addc(b, '\n');
		if (lasterr != NULL) {
			rc |= buf_adds(b, "  last error: ");
			rc |= inspect_word(b, lasterr);
			rc |= buf_addc(b, '\n');
		}
	}
	if (rc != 0) {
		cli_err("queue", "%s: entry too large to print", m->qid);
		buf_clear(b);
		o->failed = 1;
		return;
	}
	inspect_flush(o);
}

static int
inspect_log_one(
    void *arg, const struct store_msg *m, const struct store_rcpt *r)
{
	struct inspect_out *o = arg;
	struct buf *b = &o->b;
	const char *action = store_action_name(r->action);
	int rc = 0;

	if (o->status != NULL && strcmp(o->status, action) != 0)
		return 0;
	if (o->json) {
		rc |= store_json_rcpt(b, m, r);
		rc |= buf_addc(b, '\n');
	} else {
		rc |= inspect_date(b, m->arrival);
		rc |= buf_addf(b, "  %s  %s %s  ", m->qid, action,
		    r->status[0] ? r->status : "-");
		rc |= inspect_word(b, r->orcpt);
		rc |= buf_adds(b, "  remote ");
		rc |= inspect_word(b, r->remote_mta);
		rc |= buf_adds(b, "  envid ");
		rc |= inspect_word(b, m->envid);
		rc |= buf_adds(b, "  from ");
		rc |= inspect_word(b, m->sender[0] ? m->sender : "<>");
		rc |= buf_addc(b, '\n');
		if (r->reply != NULL) {
			rc |= buf_adds(b, "    reply: ");
			rc |= inspect_word(b, r->reply);
			rc |= buf_addc(b, '\n');
		}
	}
	if (rc != 0) {
		cli_err("log", "%s: record too large to print", m->qid);
		buf_clear(b);
		o->failed = 1;
		return 0;
	}
	inspect_flush(o);
	return 0;
}

int
inspect_queue_main(int argc, char **argv, const struct cli_opts *co)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfile = INSPECT_CONF_DEFAULT;
	struct inspect_out o;
	struct conf c;
	char err[512];
	int ch, rc = CLI_EXIT_USAGE;

	memset(&o, 0, sizeof(o));
	memset(&c, 0, sizeof(c));
	buf_init(&o.b, INSPECT_LINE_MAX);
	o.now = time(NULL);
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cfile = optarg;
			break;
		case 'j':
			o.json = 1;
			break;
		case 'h':
			printf("usage: msgtrk queue [-c FILE] [--json]\n");
			return CLI_EXIT_OK;
		default:
			cli_err("queue", "unknown option or missing value: %s",
			    argv[optind - 1]);
			goto usage;
		}
	}
	if (optind != argc) {
		cli_err("queue", "unexpected argument \"%.64s\"", argv[optind]);
		goto usage;
	}
	if (inspect_conf("queue", cfile, &c) == -1)
		goto cleanup;
	if (queue_scan(c.data_dir, inspect_queue_one, &o, err, sizeof(err)) ==
	    -1) {
		cli_err("queue", "%s", err);
		rc = CLI_EXIT_FAIL;
		goto cleanup;
	}
	rc = o.failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
	if (fflush(stdout) == EOF) {
		cli_err("queue", "stdout: %s", strerror(errno));
		rc = CLI_EXIT_FAIL;
	}
	goto cleanup;
usage:
	fprintf(stderr, "usage: msgtrk queue [-c FILE] [--json]\n");
cleanup:
	conf_free(&c);
	buf_reset(&o.b);
	return rc;
}

static const char *const inspect_actions[] = { "delayed", "delivered",
	"transferred", "relayed", "expanded", "failed", NULL };

/* Run as root, becomes the owner of data_dir (its user and group, no
 * supplementary groups) for good, so that opening the store there never
 * leaves a root-owned file (-wal, -shm) the daemon could not write.
 * Returns 0 (also when there is nothing to do), or -1 with err set. */
static int
inspect_as_owner(const char *dir, char *err, size_t errsize)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	struct stat sb;

	if (geteuid() != 0 || stat(dir, &sb) == -1 || sb.st_uid == 0)
		return 0;
	if (setgroups(1, &sb.st_gid) == -1 ||
	    setresgid(sb.st_gid, sb.st_gid, sb.st_gid) == -1 ||
	    setresuid(sb.st_uid, sb.st_uid, sb.st_uid) == -1) {
		snprintf(err, errsize, "%s: cannot become its owner uid=%u: %s",
		    dir, (unsigned)sb.st_uid, strerror(errno));
		return -1;
	}
	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1 ||
	    ru != sb.st_uid || eu != sb.st_uid || su != sb.st_uid ||
	    rg != sb.st_gid || eg != sb.st_gid || sg != sb.st_gid ||
	    setuid(0) != -1) {
		snprintf(err, errsize, "%s: could not drop root for uid=%u",
		    dir, (unsigned)sb.st_uid);
		return -1;
	}
	return 0;
}

int
inspect_log_main(int argc, char **argv, const struct cli_opts *co)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "envid", required_argument, NULL, 'e' },
		{ "sender", required_argument, NULL, 's' },
		{ "rcpt", required_argument, NULL, 'r' },
		{ "since", required_argument, NULL, 'S' },
		{ "status", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfile = INSPECT_CONF_DEFAULT;
	const struct store_backend *be;
	struct store *st = NULL;
	struct store_query q;
	struct inspect_out o;
	struct conf c;
	struct date d;
	char err[512];
	time_t dur;
	int ch, i, rc = CLI_EXIT_USAGE;

	memset(&o, 0, sizeof(o));
	memset(&c, 0, sizeof(c));
	memset(&q, 0, sizeof(q));
	q.action = -1;
	buf_init(&o.b, INSPECT_LINE_MAX);
	o.now = time(NULL);
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cfile = optarg;
			break;
		case 'j':
			o.json = 1;
			break;
		case 'e':
			q.envid = optarg;
			break;
		case 's':
			q.sender = optarg;
			break;
		case 'r':
			q.rcpt = optarg;
			break;
		case 'S':
			if (conf_parse_duration(optarg, &dur) == 0)
				q.since = o.now - dur;
			else if (date_parse(optarg, strlen(optarg), &d) == 0)
				q.since = d.t;
			else {
				cli_err("log",
				    "--since: expected a duration (2h, 3d) or "
				    "an RFC 5322 date");
				goto usage;
			}
			break;
		case 'a':
			for (i = 0; inspect_actions[i] != NULL; i++)
				if (str_casecmp(optarg, inspect_actions[i]) ==
				    0)
					break;
			if (inspect_actions[i] == NULL) {
				cli_err("log",
				    "--status: expected delayed, delivered, "
				    "transferred, relayed, expanded or failed");
				goto usage;
			}
			o.status = inspect_actions[i];
			break;
		case 'h':
			printf("usage: msgtrk log [-c FILE] [--envid ID] "
			       "[--sender ADDR] [--rcpt ADDR]\n"
			       "                  [--since T] [--status "
			       "ACTION] [--json]\n");
			return CLI_EXIT_OK;
		default:
			cli_err("log", "unknown option or missing value: %s",
			    argv[optind - 1]);
			goto usage;
		}
	}
	if (optind != argc) {
		cli_err("log", "unexpected argument \"%.64s\"", argv[optind]);
		goto usage;
	}
	if (inspect_conf("log", cfile, &c) == -1)
		goto cleanup;
	if ((be = store_backend_find(c.store)) == NULL) {
		cli_err("log", "%s: store \"%.64s\" is not supported", cfile,
		    c.store);
		goto cleanup;
	}
	rc = CLI_EXIT_FAIL;
	/* Read-only, as data_dir's owner: nothing is created, and a
	 * data_dir without a store is "no tracking store at PATH". */
	if (inspect_as_owner(c.data_dir, err, sizeof(err)) == -1) {
		cli_err("log", "%s", err);
		goto cleanup;
	}
	if ((st = be->open(c.store, c.data_dir, STORE_OPEN_READONLY, err,
	         sizeof(err))) == NULL) {
		cli_err("log", "%s", err);
		goto cleanup;
	}
	if (be->search(st, &q, inspect_log_one, &o) == -1) {
		cli_err("log", "%s", be->error(st));
		goto cleanup;
	}
	rc = o.failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
	if (fflush(stdout) == EOF) {
		cli_err("log", "stdout: %s", strerror(errno));
		rc = CLI_EXIT_FAIL;
	}
	goto cleanup;
usage:
	fprintf(stderr,
	    "usage: msgtrk log [-c FILE] [--envid ID] [--sender "
	    "ADDR] [--rcpt ADDR]\n"
	    "                  [--since T] [--status ACTION] "
	    "[--json]\n");
cleanup:
	if (st != NULL)
		be->close(st);
	conf_free(&c);
	buf_reset(&o.b);
	return rc;
}
