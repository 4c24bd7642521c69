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
import json
import os
import smtplib
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MSGTRK, MSGTRKD, WAIT, Suite, free_port,  # noqa: E402
                     wait_for)

suite = Suite("conformance")
# store.h's enum store_action, as the SQLite store keeps it.
ACTION_DELIVERED, ACTION_TRANSFERRED, ACTION_FAILED = 2, 3, 6


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


# --- Remote-MTA: one address-literal form (RFC 5321 §4.1.3) -------------

def msgtrk(args, stdin=b""):
    p = subprocess.run([MSGTRK] + args, input=stdin, capture_output=True,
                       timeout=WAIT * 4)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def bindable(family, addr, port):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((addr, port))
            return True
        except OSError:
            return False


def rcpt_rows(d):
    return d.query("SELECT r.action, r.status, r.remote_mta, r.reply, "
                   "r.orcpt, r.final_rcpt FROM rcpt r")


@suite.case
def ipv6_route_literal_followed(c):
    # hop2 listens on ::1 only for MTQP (the port a literal is followed
    # to: 1038, RFC 3887 §2.1) and on ::1 and 127.0.0.1 for SMTP (the
    # harness waits on 127.0.0.1).
    assert bindable(socket.AF_INET6, "::1", 1038), "[::1]:1038 is in use"
    p2 = free_port()
    assert bindable(socket.AF_INET6, "::1", p2)
    hop2 = c.msgtrkd(hostname="hop2.test", local_domains="dest.test",
                     smtp_listen="[::1]:%d, 127.0.0.1:%d" % (p2, p2),
                     mtqp_listen="[::1]:1038")
    m1 = free_port()
    hop1 = c.msgtrkd(hostname="hop1.test",
                     mtqp_listen="127.0.0.1:%d" % m1,
                     routes=c.write("routes", "dest.test [::1]:%d\n" % p2))
    kr = c.path("keyring")
    rc, out, err = msgtrk(["send", "--server", "127.0.0.1:%d" %
                           hop1.smtp_port, "--mtqp", "127.0.0.1:%d" % m1,
                           "--keyring", kr, "--from", "s@src.test",
                           "--notify", "never", "a@dest.test"],
                          stdin=b"Subject: v6\n\nhi\n")
    assert rc == 0, (rc, out, err)
    envid = out.splitlines()[0][7:]
    r = wait_for(lambda: [x for x in rcpt_rows(hop1)
                          if x["action"] == ACTION_TRANSFERRED],
                 what="transferred at hop1")[0]
    assert r["remote_mta"] == "dns; [IPv6:::1]", r
    assert "relay=[IPv6:::1]" in hop1.log(), hop1.log()

    def trail():
        rc, out, err = msgtrk(["track", "--json", "--keyring", kr, envid])
        if rc != 0:
            return False
        j = json.loads(out)
        return j if j["recipients"] and \
            j["recipients"][0]["final_action"] == "delivered" else False
    j = wait_for(trail, WAIT * 2, "the trail", interval=0.5)
    (rr,) = j["recipients"]
    hops = rr["hops"]
    assert [h["action"] for h in hops] == ["transferred", "delivered"], hops
    assert hops[0]["remote_mta"] == "dns; [IPv6:::1]", hops
    assert hops[1]["reporting_mta"] == "dns; hop2.test", hops
    assert hops[1]["server"] == "[::1]:1038", hops


@suite.case
def lmtp_remote_mta_literal(c):
    lm = c.peer(lmtp=True, ehlo=("PIPELINING", "ENHANCEDSTATUSCODES"),
                data_reply="250 2.0.0 <a@dest.test> Saved")
    d = c.msgtrkd(local_domains="dest.test",
                  local_transport="lmtp:127.0.0.1:%d" % lm.port)
    _, cert = secret_pair()
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=WAIT) as s:
        s.sendmail("a@src.test", ["a@dest.test"], b"Subject: x\r\n\r\nx\r\n",
                   mail_options=["ENVID=lmtp1@client.test", "MTRK=" + cert])
    r = wait_for(lambda: [x for x in rcpt_rows(d)
                          if x["action"] == ACTION_DELIVERED],
                 what="delivered over LMTP")[0]
    assert r["remote_mta"] == "dns; [127.0.0.1]", r


if __name__ == "__main__":
    suite.main()
