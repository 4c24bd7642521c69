/*
 * msgtrk: submit tracked mail and follow it across servers (RFC 3885,
 * RFC 3887), and look at a node's queue and tracking records.
 *
 * SECURITY: msgtrk runs with the invoking user's privileges and keeps no
 * others.  It trusts nothing it reads from the network: SMTP replies and
 * MTQP answers are parsed by the bounded libmsgtrk readers and printed
 * only after escaping.  The MTRK secrets live only in the user's keyring
 * (mode 0600 in a 0700 directory) and in memory that is wiped after use;
 * they are printed only inside the mtqp: URI that "msgtrk send" writes
 * for its user.  "msgtrk queue" and "msgtrk log" read the daemon's files
 * and need read access to its data_dir; they never write the queue.
 * "msgtrk queue flush|hold|release|delete" and "msgtrk reload" ask the
 * daemon over its control socket, which checks who asks (SO_PEERCRED).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: msgtrk send  [--server HOST[:PORT]] [--mtqp HOST[:PORT]] "
	    "[--tls]\n"
	    "                    [--from ADDR] [--notify LIST] "
	    "[--ret full|hdrs]\n"
	    "                    [--timeout DUR] [--keyring FILE] "
	    "[--no-track] RCPT... < message\n"
	    "       msgtrk track [--server HOST[:PORT]] [--secret B64] "
	    "[--keyring FILE]\n"
	    "                    [--json|--raw] [--no-follow] [--tls] "
	    "[--tls-memory FILE]\n"
	    "                    ENVID|mtqp://URI\n"
	    "       msgtrk queue [-c FILE] [--json]\n"
	    "       msgtrk queue [-c FILE] flush [QID...]\n"
	    "       msgtrk queue [-c FILE] hold|release|delete QID...\n"
	    "       msgtrk reload [-c FILE]\n"
	    "       msgtrk log   [-c FILE] [--envid ID] [--sender ADDR] "
	    "[--rcpt ADDR]\n"
	    "                    [--since T] [--status ACTION] [--json]\n"
	    "       msgtrk sendmail [-t] [-i] [-oi] [-f ADDR] [-F NAME] "
	    "[-C FILE] [RCPT...]\n"
	    "                    < message (also as \"sendmail\"; see "
	    "msgtrk(1))\n"
	    "       msgtrk --version | --help\n"
	    "\n"
	    "Global options (before or after the command):\n"
	    "  --dns HOST:PORT   DNS server for every lookup (default: "
	    "/etc/resolv.conf)\n"
	    "  --ca-file FILE    trust this CA for TLS (default: the system "
	    "store)\n"
	    "\n"
	    "send defaults: --server localhost:25, --from USER@HOSTNAME, "
	    "keyring\n"
	    "~/.local/share/msgtrk/keyring.  Exit status: 0 success, 1 "
	    "failure,\n"
	    "2 usage or configuration error.\n");
}

/* Takes the global options out of argv (wherever they are, up to "--"),
 * compacting it.  Returns the new argc, or -1 on a usage error. */
static int
globals(int argc, char **argv, struct cli_opts *o)
{
	int i, j = 1;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], **dst = NULL, *val = NULL;
		const char *name = NULL;

		if (strcmp(a, "--") == 0) {
			while (i < argc)
				argv[j++] = argv[i++];
			break;
		}
		if (strcmp(a, "--dns") == 0 || strncmp(a, "--dns=", 6) == 0) {
			dst = &o->dns;
			name = "--dns";
		} else if (strcmp(a, "--ca-file") == 0 ||
		    strncmp(a, "--ca-file=", 10) == 0) {
			dst = &o->ca_file;
			name = "--ca-file";
		}
		if (dst == NULL) {
			argv[j++] = argv[i];
			continue;
		}
		if ((val = strchr(a, '=')) != NULL)
			val++;
		else if (i + 1 < argc)
			val = argv[++i];
		else {
			cli_err(NULL, "%s needs a value", name);
			return -1;
		}
		if (val[0] == '\0') {
			cli_err(NULL, "%s: empty value", name);
			return -1;
		}
		*dst = val;
	}
	argv[j] = NULL;
	return j;
}

int
main(int argc, char *argv[])
{
	struct cli_opts o = { NULL, NULL };
	const char *cmd, *base;

	/* Called as "sendmail" (a link named so): sendmail(8)'s interface,
	 * its options and its exit codes from the first argument on. */
	base = argc > 0 && argv[0] != NULL ? strrchr(argv[0], '/') : NULL;
	base = base != NULL ? base + 1 : argc > 0 ? argv[0] : NULL;
	if (base != NULL && strcmp(base, "sendmail") == 0) {
		if ((argc = globals(argc, argv, &o)) == -1)
			return 64; /* EX_USAGE */
		return sendmail_main(argc, argv, &o);
	}
	if ((argc = globals(argc, argv, &o)) == -1) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(cmd, "--version") == 0) {
		printf("msgtrk %s\n", MSGTRK_VERSION);
		return CLI_EXIT_OK;
	}
	if (strcmp(cmd, "send") == 0)
		return send_main(argc - 1, argv + 1, &o);
	if (strcmp(cmd, "track") == 0)
		return track_main(argc - 1, argv + 1, &o);
	if (strcmp(cmd, "queue") == 0 &&
	    control_is_queue_verb(argc - 1, argv + 1))
		return control_queue_main(argc - 1, argv + 1, &o);
	if (strcmp(cmd, "queue") == 0)
		return inspect_queue_main(argc - 1, argv + 1, &o);
	if (strcmp(cmd, "reload") == 0)
		return control_reload_main(argc - 1, argv + 1, &o);
	if (strcmp(cmd, "log") == 0)
		return inspect_log_main(argc - 1, argv + 1, &o);
	if (strcmp(cmd, "sendmail") == 0)
		return sendmail_main(argc - 1, argv + 1, &o);
	cli_err(NULL,
	    "unknown command \"%.64s\" (send, track, queue, log, reload, "
	    "sendmail)",
	    cmd);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
