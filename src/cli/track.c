/*
 * msgtrk track: follow a message from the server it was submitted to,
 * hop by hop (RFC 3887 §12 of the digest), with the trail follower of
 * src/mtqp/trail.h; this file only gathers the arguments and prints.
 *
 * The first server comes from the URI, else --server, else the keyring
 * entry's "mtqp"; the secret from the URI, else --secret, else the
 * keyring.  Exit status: 0 when every server queried answered (whatever
 * the news, "failed" included), 1 when one answered -ERR/-TEMP (noinfo
 * included), could not be reached, did not answer in time or was refused
 * as a STARTTLS downgrade, 2 usage (or an unreadable TLS memory).
 *
 * TLS memory (RFC 3887 §11, src/cli/tlsmemory.h): the servers with which
 * TLS succeeded (certificate verified for the name) are remembered with
 * their key in --tls-memory FILE (default ~/.local/share/msgtrk/mtqp-tls).
 * A later session to one of them must do TLS: a greeting without
 * STARTTLS fails that hop as a possible downgrade.  Another key with a
 * valid certificate is a warning and is remembered (keys are rotated);
 * a certificate that does not verify already fails the hop.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "cli/cli.h"
#include "cli/keyring.h"
#include "cli/tlsmemory.h"
#include "common/tls.h"
#include "dns/dns.h"
#include "msgtrk/buf.h"
#include "msgtrk/date.h"
#include "msgtrk/mtqp.h"
#include "msgtrk/str.h"
#include "msgtrk/tstatus.h"
#include "mtqp/trail.h"
#include "mtqp/trail_json.h"

#define CMD "track"

enum track_mode { TRACK_TEXT, TRACK_JSON, TRACK_RAW };

struct track_run {
	enum track_mode mode;
	const char *envid;
	int done;
	int rc;
	struct event_base *base;
	/* The trail's TLS outcomes (valid until trail_free()). */
	size_t ntls;
	const struct trail_tls_outcome *tls;
};

static void
track_date(char *out, size_t size, const struct date *d)
{
	if (date_format(d, out, size) == -1)
		str_copy(out, "?", size);
}

/* The JSON writer is trail_json(), shared with the HTTP API. */
static int
track_json(const struct trail_result *res, const char *envid)
{
	struct buf b;

	buf_init(&b, TRAIL_JSON_MAX);
	if (trail_json(&b, res, envid) == -1) {
		buf_reset(&b);
		cli_err(
		    CMD, "JSON output larger than %lu octets", TRAIL_JSON_MAX);
		return -1;
	}
	fwrite(b.data, 1, b.len, stdout);
	buf_reset(&b);
	return 0;
}

/* 1 if another recipient of res has r's Original-Recipient (two RCPTs
 * with one ORCPT: each is its own trail). */
static int
track_orcpt_shared(const struct trail_result *res, size_t i)
{
	const struct trail_rcpt *r = &res->rcpts[i];
	size_t k;

	for (k = 0; k < res->nrcpt; k++)
		if (k != i && res->rcpts[k].orig_value != NULL &&
		    r->orig_value != NULL &&
		    str_casecmp(res->rcpts[k].orig_value, r->orig_value) == 0)
			return 1;
	return 0;
}

static void
track_text(const struct trail_result *res, const char *envid)
{
	char a[512], b2[512], c2[512], d[DATE_MAX];
	size_t i, j;

	printf("envid: %s\n", envid);
	for (i = 0; i < res->nrcpt; i++) {
		const struct trail_rcpt *r = &res->rcpts[i];
		const char *ov = r->orig_value ? r->orig_value : "";
		const char *fv =
		    r->nhops > 0 ? r->hops[0].rcpt->final_rcpt.value : NULL;

		str_printable(a, sizeof(a), ov, strlen(ov));
		if (fv != NULL && track_orcpt_shared(res, i)) {
			/* Which of them: the address it was sent to. */
			str_printable(b2, sizeof(b2), fv, strlen(fv));
			printf("\n%s (to %s): %s\n", a, b2,
			    trail_end_name(r->end));
		} else
			printf("\n%s: %s\n", a, trail_end_name(r->end));
		for (j = 0; j < r->nhops; j++) {
			const struct trail_hop *h = &r->hops[j];
			const struct tstatus_rcpt *tr = h->rcpt;
			const char *rm = tr->remote_mta.value;
			const char *rep = h->part->reporting_mta.value;

			if (tr->has_last_attempt)
				track_date(d, sizeof(d), &tr->last_attempt);
			else
				track_date(d, sizeof(d), &h->part->arrival);
			str_printable(b2, sizeof(b2), rep ? rep : "",
			    rep ? strlen(rep) : 0);
			str_printable(
			    c2, sizeof(c2), rm ? rm : "", rm ? strlen(rm) : 0);
			printf("  %zu. %-11s %-9s %s  at %s%s%s%s\n", j + 1,
			    tstatus_action_name(tr->action), tr->status, d, b2,
			    rm ? " -> " : "", c2,
			    h->answer->tls ? " (TLS)" : "");
			if (tr->has_will_retry) {
				track_date(d, sizeof(d), &tr->will_retry);
				printf("     will retry until %s\n", d);
			}
		}
		if (r->error != NULL && r->error[0] != '\0') {
			str_printable(a, sizeof(a), r->error, strlen(r->error));
			printf("  (%s)\n", a);
		}
	}
}

static void
track_raw(const struct trail_result *res, const char *envid)
{
	size_t i;

	for (i = 0; i < res->nanswers; i++) {
		const struct trail_answer *an = res->answers[i];

		printf("# %s %s\n", an->server, envid);
		fwrite(an->body, 1, an->body_len, stdout);
		if (an->body_len > 0 && an->body[an->body_len - 1] != '\n')
			putchar('\n');
	}
}

static void
track_done(const struct trail_result *res, void *arg)
{
	struct track_run *tr = arg;
	size_t i;

	tr->done = 1;
	event_base_loopbreak(tr->base);
	tr->ntls = res->ntls;
	tr->tls = res->tls;
	if (res->end != 0) {
		cli_err(CMD, "%s: %s", trail_end_name(res->end),
		    res->error ? res->error : "");
		tr->rc = CLI_EXIT_FAIL;
		if (tr->mode == TRACK_RAW)
			track_raw(res, tr->envid);
		return;
	}
	tr->rc = CLI_EXIT_OK;
	for (i = 0; i < res->nrcpt; i++)
		switch (res->rcpts[i].end) {
		case TRAIL_END_NOINFO:
		case TRAIL_END_ERROR:
		case TRAIL_END_TIMEOUT:
			tr->rc = CLI_EXIT_FAIL;
			break;
		default:
			break;
		}
	if (tr->mode == TRACK_JSON) {
		if (track_json(res, tr->envid) == -1)
			tr->rc = CLI_EXIT_FAIL;
	} else if (tr->mode == TRACK_RAW)
		track_raw(res, tr->envid);
	else
		track_text(res, tr->envid);
	if (res->error != NULL && res->error[0] != '\0')
		cli_err(CMD, "warning: %s", res->error);
	if (fflush(stdout) == EOF) {
		cli_err(CMD, "stdout: %s", strerror(errno));
		tr->rc = CLI_EXIT_FAIL;
	}
}

/* Updates the TLS memory m (file path) with what the trail saw: learns
 * the servers that did TLS and their keys, warns of a changed key and
 * explains a downgrade.  Failing to save is a warning: the answer stands. */
static void
track_remember(
    const struct track_run *run, struct tlsmemory *m, const char *path)
{
	char hex[TLSMEMORY_SPKI_HEX + 1], err[512];
	const char *old;
	size_t i, k;

	for (i = 0; i < run->ntls; i++) {
		const struct trail_tls_outcome *tt = &run->tls[i];

		if (tt->downgrade) {
			cli_err(CMD,
			    "%s offered STARTTLS before (in this run, or as "
			    "remembered in %s) and did not now: the query was "
			    "refused.  If the server really stopped offering "
			    "TLS, delete its line from that file.",
			    tt->server, path);
			continue;
		}
		if (!tt->tls)
			continue;
		for (k = 0; k < TRAIL_SPKI_LEN; k++)
			snprintf(hex + 2 * k, 3, "%02x", tt->spki_sha256[k]);
		old = tlsmemory_spki(m, tt->server);
		/* Keys are rotated, and the certificate was verified for the
		 * name: tell, and remember the new key. */
		if (old != NULL && strcmp(old, "-") != 0 &&
		    strcmp(old, hex) != 0)
			cli_err(CMD,
			    "warning: %s presented a new key (SPKI SHA-256 "
			    "%s, was %s); its certificate is valid for the "
			    "name, so the new key is remembered in %s",
			    tt->server, hex, old, path);
		if (tlsmemory_learn(m, tt->server, tt->spki_sha256) == -1)
			cli_err(CMD,
			    "warning: %s: not remembered in %s (%d "
			    "servers at most)",
			    tt->server, path, TLSMEMORY_ENTRIES_MAX);
	}
	if (tlsmemory_save(m, err, sizeof(err)) == -1)
		cli_err(CMD, "warning: TLS memory not saved: %s", err);
}

static void
track_usage(void)
{
	fprintf(stderr,
	    "usage: msgtrk track [--server HOST[:PORT]] [--secret B64] "
	    "[--keyring FILE]\n"
	    "                    [--json|--raw] [--no-follow] [--tls] "
	    "[--tls-memory FILE]\n"
	    "                    ENVID|mtqp://URI\n"
	    "\n"
	    "STARTTLS is used when a server offers it; --tls requires it of "
	    "every server.\n"
	    "Servers with which TLS succeeded are remembered with their key "
	    "in the TLS\n"
	    "memory (default ~/.local/share/msgtrk/mtqp-tls): a later "
	    "session to one\n"
	    "that no longer offers STARTTLS fails as a possible downgrade "
	    "attack (exit 1;\n"
	    "delete the server's line if it really dropped TLS), and a new "
	    "key is a\n"
	    "warning.  Exit status: 0 every server answered, 1 one did not, "
	    "2 usage.\n");
}

int
track_main(int argc, char **argv, const struct cli_opts *o)
{
	static const struct option longopts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "secret", required_argument, NULL, 'S' },
		{ "keyring", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "raw", no_argument, NULL, 'r' },
		{ "no-follow", no_argument, NULL, 'n' },
		{ "tls", no_argument, NULL, 'T' },
		{ "tls-memory", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *server = NULL, *secret = NULL, *keyring = NULL, *arg;
	const char *mempath = NULL;
	char host[256], serverbuf[KEYRING_HOST_MAX + 1], kpath[4096];
	char mpath[4096];
	char envid[MTQP_ENVID_TEXT_MAX + 1], sec[MTQP_SECRET_TEXT_MAX + 1];
	char err[512];
	unsigned int port;
	int ch, tls = 0, nofollow = 0, rc = CLI_EXIT_USAGE;
	enum track_mode mode = TRACK_TEXT;
	struct mtqp_uri u;
	struct keyring_entry ke;
	struct trail_opts to;
	struct track_run run;
	struct event_base *base = NULL;
	struct dns *dns = NULL;
	struct trail *t = NULL;
	SSL_CTX *ctx = NULL;
	struct dns_opts dopts;
	struct tlsmemory *mem = NULL;

	memset(&u, 0, sizeof(u));
	memset(&ke, 0, sizeof(ke));
	sec[0] = '\0';
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			server = optarg;
			break;
		case 'S':
			secret = optarg;
			break;
		case 'k':
			keyring = optarg;
			break;
		case 'j':
		case 'r':
			if (mode != TRACK_TEXT) {
				cli_err(CMD,
				    "--json and --raw exclude each "
				    "other");
				goto usage;
			}
			mode = ch == 'j' ? TRACK_JSON : TRACK_RAW;
			break;
		case 'n':
			nofollow = 1;
			break;
		case 'T':
			tls = 1;
			break;
		case 'M':
			if (optarg[0] == '\0') {
				cli_err(CMD, "--tls-memory: empty file name");
				goto usage;
			}
			mempath = optarg;
			break;
		case 'h':
			track_usage();
			return CLI_EXIT_OK;
		default:
			cli_err(CMD, "unknown option or missing value: %s",
			    argv[optind - 1]);
			goto usage;
		}
	}
	if (argc - optind != 1) {
		cli_err(CMD, "expected one ENVID or mtqp:// URI");
		goto usage;
	}
	arg = argv[optind];
	if (server != NULL &&
	    cli_hostport(server, MTQP_PORT, host, sizeof(host), &port, NULL) ==
	        -1) {
		cli_err(CMD, "--server: expected HOST[:PORT]");
		goto usage;
	}
	if (secret != NULL &&
	    (mtqp_cmd_secret_check(secret, strlen(secret)) == -1 ||
	        str_copy(sec, secret, sizeof(sec)) >= sizeof(sec))) {
		cli_err(CMD, "--secret: not a base64 MTRK secret");
		goto usage;
	}
	if (str_casestarts(arg, strlen(arg), "mtqp:")) {
		enum mtqp_uri_error ue;

		if (mtqp_uri_parse(arg, strlen(arg), &u, &ue) == -1) {
			cli_err(
			    CMD, "bad mtqp: URI: %s", mtqp_uri_strerror(ue));
			goto usage;
		}
		str_copy(envid, u.envid, sizeof(envid));
		str_copy(sec, u.secret, sizeof(sec));
		if (u.port_given)
			snprintf(serverbuf, sizeof(serverbuf), "%s:%u", u.host,
			    u.port);
		else
			str_copy(serverbuf, u.host, sizeof(serverbuf));
		server = serverbuf;
	} else {
		if (mtqp_cmd_envid_check(arg, strlen(arg)) == -1 ||
		    str_copy(envid, arg, sizeof(envid)) >= sizeof(envid)) {
			cli_err(CMD,
			    "\"%.120s\" is not a unique-envid (local@host, "
			    "xtext) nor an mtqp:// URI",
			    arg);
			goto usage;
		}
		if (server == NULL || sec[0] == '\0') {
			int k;

			if (keyring == NULL) {
				if (keyring_default_path(kpath, sizeof(kpath),
				        err, sizeof(err)) == -1) {
					cli_err(CMD, "%s", err);
					goto usage;
				}
			} else
				str_copy(kpath, keyring, sizeof(kpath));
			if ((k = keyring_lookup(
			         kpath, envid, &ke, err, sizeof(err))) == -1) {
				cli_err(CMD, "%s", err);
				goto usage;
			}
			if (k == 0) {
				cli_err(CMD,
				    "%s: no entry for %s; give --server and "
				    "--secret",
				    kpath, envid);
				goto usage;
			}
			if (server == NULL)
				server = ke.mtqp[0] ? ke.mtqp : ke.server;
			if (sec[0] == '\0')
				str_copy(sec, ke.secret, sizeof(sec));
		}
	}

	if (mempath == NULL) {
		if (tlsmemory_default_path(
		        mpath, sizeof(mpath), err, sizeof(err)) == 0)
			mempath = mpath;
		else
			cli_err(CMD,
			    "warning: no TLS memory (RFC 3887 §11 downgrade "
			    "check off): %s",
			    err);
	}
	/* A memory that cannot be read is refused, not ignored: ignoring it
	 * would turn the downgrade check off. */
	if (mempath != NULL &&
	    (mem = tlsmemory_load(mempath, err, sizeof(err))) == NULL) {
		cli_err(CMD, "TLS memory: %s", err);
		rc = CLI_EXIT_USAGE;
		goto cleanup;
	}

	rc = CLI_EXIT_FAIL;
	if ((ctx = tls_client_ctx(1, o->ca_file, err, sizeof(err))) == NULL) {
		if (tls || o->ca_file != NULL) {
			cli_err(CMD, "TLS: %s", err);
			rc = CLI_EXIT_USAGE;
			goto cleanup;
		}
		/* No trust store: plaintext only, as if no STARTTLS. */
	}
	memset(&dopts, 0, sizeof(dopts));
	dopts.servers = o->dns;
	if ((base = event_base_new()) == NULL) {
		cli_err(CMD, "event_base_new failed");
		goto cleanup;
	}
	if ((dns = dns_new(base, &dopts, err, sizeof(err))) == NULL) {
		cli_err(CMD, "--dns: %s", err);
		rc = CLI_EXIT_USAGE;
		goto cleanup;
	}
	memset(&to, 0, sizeof(to));
	to.server = server;
	to.envid = envid;
	to.secret = sec;
	to.tls = tls ? TRAIL_TLS_REQUIRE : TRAIL_TLS_OPPORTUNISTIC;
	to.ssl_ctx = ctx;
	if (mem != NULL)
		to.tls_known = tlsmemory_servers(mem, &to.ntls_known);
	to.no_follow = nofollow;
	memset(&run, 0, sizeof(run));
	run.mode = mode;
	run.envid = envid;
	run.rc = CLI_EXIT_FAIL;
	run.base = base;
	if ((t = trail_start(
	         base, dns, &to, track_done, &run, err, sizeof(err))) == NULL) {
		cli_err(CMD, "%s", err);
		goto cleanup;
	}
	/* The trail's own timer bounds this loop. */
	while (!run.done)
		if (event_base_dispatch(base) != 0 && !run.done) {
			cli_err(CMD, "event loop ended without an answer");
			break;
		}
	rc = run.rc;
	if (mem != NULL && run.done)
		track_remember(&run, mem, mempath);
	goto cleanup;
usage:
	track_usage();
cleanup:
	trail_free(t);
	tlsmemory_free(mem);
	dns_free(dns);
	if (base != NULL)
		event_base_free(base);
	SSL_CTX_free(ctx);
	explicit_bzero(sec, sizeof(sec));
	explicit_bzero(&u, sizeof(u));
	keyring_entry_clear(&ke);
	return rc;
}
