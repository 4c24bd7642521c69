/*
 * mailbox: which local recipients msgtrkd can deliver to at all.
 *
 * Local delivery makes <mailbox_dir>/<domain>/<local-part>/ (src/delivery/
 * local.c), so a local part or domain that could be read as a path is
 * refused: an empty local part, one that starts with '.' ("." and ".."
 * above all), one that contains '/', and a domain that is empty, starts
 * with '.' or contains '/'.  The SMTP server refuses such a recipient at
 * RCPT (550 5.1.3) through its local_rcpt hook, so mail for it is never
 * accepted, attempted and bounced: a bounce to a forged sender is
 * backscatter.  The Maildir writer checks again with the same function.
 */
#ifndef MSGTRK_MAILBOX_H
#define MSGTRK_MAILBOX_H

/* RFC 3463 X.1.3 "Bad destination mailbox address syntax": the status
 * for a name refused here. */
#define MAILBOX_BAD_STATUS "5.1.3"

/* Returns 1 if addr ("local@domain" as received, a quoted local part with
 * its quotes; split at the last '@') names a mailbox that local delivery
 * can make, else 0 (also without an '@'). */
int mailbox_name_ok(const char *addr);

#endif /* MSGTRK_MAILBOX_H */
