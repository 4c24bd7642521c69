/*
 * msgtrkd: the msgtrk daemon, an ESMTP relay with message tracking
 * (RFC 3885) and the MTQP query server (RFC 3887).
 *
 * SECURITY: msgtrkd will trust only its configuration file and its
 * data_dir.  Everything a peer sends is parsed by libmsgtrk's bounded
 * parsers.  Started as root it binds its ports, opens its store and then
 * drops to an unprivileged user for good.
 *
 * This build has only the command line; the relay is the next milestone.
 */
#include <stdio.h>
#include <string.h>

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: msgtrkd [-c FILE] [-f] [-v] [-n]\n"
	    "  -c FILE   configuration file (default "
	    "/etc/msgtrk/msgtrkd.conf)\n"
	    "  -f        stay in the foreground and log to stderr\n"
	    "  -v        verbose logging\n"
	    "  -n        check the configuration and exit\n"
	    "  --version print the version and exit\n"
	    "\n"
	    "This build contains the codec library only: the relay and the\n"
	    "MTQP server are not implemented yet, so msgtrkd exits.\n");
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
		printf("msgtrkd %s\n", MSGTRK_VERSION);
		return 0;
	}
	usage(stderr);
	fprintf(stderr, "msgtrkd: not implemented yet\n");
	return 2;
}
