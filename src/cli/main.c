/*
 * msgtrk: submit tracked mail and follow it across servers (RFC 3885,
 * RFC 3887).
 *
 * SECURITY: msgtrk trusts nothing it reads from the network; secrets live
 * only in the user's keyring (mode 0600) and in memory that is wiped after
 * use.
 *
 * This build has only the command line; the commands are the next
 * milestones.
 */
#include <stdio.h>
#include <string.h>

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: msgtrk send  [options] RCPT... < message\n"
	    "       msgtrk track [options] ENVID|mtqp://URI\n"
	    "       msgtrk queue [-c FILE] [--json]\n"
	    "       msgtrk log   [-c FILE] [filters] [--json]\n"
	    "       msgtrk --version\n"
	    "\n"
	    "This build contains the codec library only: the commands above\n"
	    "are not implemented yet.\n");
}

int
main(int argc, char *argv[])
{
	if (argc == 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("msgtrk %s\n", MSGTRK_VERSION);
		return 0;
	}
	usage(stderr);
	fprintf(stderr, "msgtrk: not implemented yet\n");
	return 2;
}
