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
import glob
import hashlib
import json
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MSGTRK, MSGTRKD, WAIT, Suite, free_port,  # noqa: E402
                     wait_for, wait_port)

suite = Suite("conformance")
# store.h's enum store_action, as the SQLite store keeps it.
ACTION_DELAYED, ACTION_DELIVERED, ACTION_TRANSFERRED, ACTION_FAILED = \
    1, 2, 3, 6


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


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def postfix(c, port, main_extra=()):
    """A private Postfix on 127.0.0.1:port (TESTING.md), no DNS, with
    main.cf lines of the case's own.  Returns its config dir; stopped by
    "postfix -c DIR stop" when the case ends."""
    if shutil.which("postfix") is None:
        raise AssertionError("postfix is not installed (see TESTING.md)")
    d = c.path("postfix")
    for sub in ("queue", "data"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    shutil.chown(os.path.join(d, "data"), "postfix", "postfix")
    c.write("postfix/main.cf", "\n".join([
        "compatibility_level = 3.6",
        "queue_directory = %s/queue" % d,
        "data_directory = %s/data" % d,
        "myhostname = postfix.test",
        "mydomain = postfix.test",
        "myorigin = postfix.test",
        "inet_interfaces = 127.0.0.1",
        "inet_protocols = ipv4",
        "mydestination =",
        "local_recipient_maps =",
        "alias_maps =",
        "alias_database =",
        "mynetworks = 127.0.0.0/8",
        "smtpd_relay_restrictions = permit_mynetworks, reject",
        "relayhost = [127.0.0.1]:9",
        "smtp_dns_support_level = disabled",
        "smtp_tls_security_level = none",
        "smtpd_tls_security_level = none",
        "maillog_file = %s/maillog" % d,
        "maillog_file_prefixes = %s" % d,
    ] + list(main_extra) + [""]))
    services = [
        ("127.0.0.1:%d" % port, "inet", "n", "-", "n", "-", "-", "smtpd"),
        ("pickup", "unix", "n", "-", "n", "60", "1", "pickup"),
        ("cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"),
        ("qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"),
        ("rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"),
        ("bounce", "unix", "-", "-", "n", "-", "0", "bounce"),
        ("defer", "unix", "-", "-", "n", "-", "0", "bounce"),
        ("trace", "unix", "-", "-", "n", "-", "0", "bounce"),
        ("verify", "unix", "-", "-", "n", "-", "1", "verify"),
        ("flush", "unix", "n", "-", "n", "1000?", "0", "flush"),
        ("proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"),
        ("smtp", "unix", "-", "-", "n", "-", "-", "smtp"),
        ("relay", "unix", "-", "-", "n", "-", "-", "smtp"),
        ("showq", "unix", "n", "-", "n", "-", "-", "showq"),
        ("error", "unix", "-", "-", "n", "-", "-", "error"),
        ("retry", "unix", "-", "-", "n", "-", "-", "error"),
        ("discard", "unix", "-", "-", "n", "-", "-", "discard"),
        ("anvil", "unix", "-", "-", "n", "-", "1", "anvil"),
        ("scache", "unix", "-", "-", "n", "-", "1", "scache"),
        ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"),
    ]
    c.write("postfix/master.cf",
            "".join("%-20s %-10s %s\n" % (s[0], s[1], "  ".join(s[2:]))
                    for s in services))
    p = subprocess.run(["postfix", "-c", d, "start"], capture_output=True,
                       timeout=WAIT * 3)
    if p.returncode != 0:
        raise AssertionError("postfix start: %s %s %s" % (
            p.stdout, p.stderr, _read(os.path.join(d, "maillog"))))
    c.on_cleanup(lambda: subprocess.run(["postfix", "-c", d, "stop"],
                                        capture_output=True,
                                        timeout=WAIT * 3))
    wait_port(port)
    return d


def maildir(d, domain, user):
    return sorted(glob.glob(os.path.join(d.data("mail"), domain, user,
                                         "new", "*")))


def unfold(raw):
    """The message with RFC 5322 §2.2.3 folding undone."""
    return re.sub(r"\r?\n[ \t]", " ", raw.decode(errors="replace"))


def diagnostic_codes(raw):
    return re.findall(r"^Diagnostic-Code: (.*?)\r?$", unfold(raw), re.M)


def log_escaped(s):
    """log_escape() of src/common/log.c."""
    return "".join(ch if 0x20 < ord(ch) < 0x7f and ch not in '"\\'
                   else "\\x%02x" % ord(ch) for ch in s)


def cli_records(d, *args):
    rc, out, err = msgtrk([args[0], "-c", d.conf_file, "--json"] +
                          list(args[1:]))
    assert rc == 0, (rc, out, err)
    return [json.loads(l) for l in out.splitlines()]


def send_mtrk(d, sender, rcpts, envid, rcpt_options=(), body=None):
    _, cert = secret_pair()
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=WAIT) as s:
        s.sendmail(sender, rcpts, body or b"Subject: x\r\n\r\nx\r\n",
                   mail_options=["ENVID=" + envid, "MTRK=" + cert],
                   rcpt_options=list(rcpt_options))


# --- the whole remote reply ---------------------------------------------

@suite.case
def postfix_550_reply_kept_whole(c):
    pport = free_port()
    pdir = postfix(c, pport, [
        "smtpd_recipient_restrictions = check_recipient_access "
        "texthash:%s, permit_mynetworks, reject" % c.write(
            "postfix/access",
            "nobody@dest.test 550 5.1.1 mailbox does not exist\n"
            "later@dest.test 451 4.3.0 try again later\n")])
    d = c.msgtrkd(routes=c.write("routes", "dest.test [127.0.0.1]:%d\n" %
                                 pport),
                  local_domains="src.test", retry_schedule="1h")
    send_mtrk(d, "alice@src.test", ["nobody@dest.test"], "pf550@client.test")
    send_mtrk(d, "bob@src.test", ["later@dest.test"], "pf451@client.test")
    # What Postfix said, from its own log.
    said = {}

    def postfix_said():
        for m in re.finditer(r"reject: RCPT from [^:]*: (\d{3} .*?); from=<"
                             r"[^>]*> to=<([^>]*)>",
                             _read(os.path.join(pdir, "maillog"))):
            said[m.group(2)] = m.group(1)
        return len(said) == 2
    wait_for(postfix_said, what="postfix's two refusals")
    r550, r451 = said["nobody@dest.test"], said["later@dest.test"]
    assert r550.startswith("550 5.1.1 <nobody@dest.test>:") and \
        r550.endswith("mailbox does not exist"), r550
    assert r451.startswith("451 4.3.0 "), r451
    # The tracking record keeps the reply whole ...
    wait_for(lambda: len([r for r in rcpt_rows(d) if r["action"] in
                          (ACTION_FAILED, ACTION_DELAYED)]) == 2,
             what="failed and delayed")
    replies = {r["status"]: r["reply"] for r in rcpt_rows(d)
               if r["action"] in (ACTION_FAILED, ACTION_DELAYED)}
    assert replies == {"5.1.1": r550, "4.3.0": r451}, replies
    # ... and so do the log's reply=, msgtrk log and msgtrk queue.
    for r in (r550, r451):
        assert 'reply="%s"' % log_escaped(r) in d.log(), (r, d.log())
    recs = {r["status"]: r["reply"] for r in cli_records(d, "log")
            if r["action"] in ("failed", "delayed")}
    assert recs == {"5.1.1": r550, "4.3.0": r451}, recs
    (q,) = [q for q in cli_records(d, "queue")
            if q["envid"] == "pf451@client.test"]
    assert q["last_error"] == r451, q
    rc, out, err = msgtrk(["queue", "-c", d.conf_file])
    assert rc == 0 and "last error: " + r451 in out, out
    rc, out, err = msgtrk(["log", "-c", d.conf_file])
    assert rc == 0 and "reply: " + r550 in out, out
    # The bounce: Diagnostic-Code "smtp; " + the reply (RFC 3464
    # §2.3.6), and the reply in the text for humans.
    files = wait_for(lambda: maildir(d, "src.test", "alice"),
                     what="the bounce")
    with open(files[0], "rb") as f:
        raw = f.read()
    assert diagnostic_codes(raw) == ["smtp; " + r550], unfold(raw)
    assert ("\n    " + r550 + "\n") in raw.decode(), raw


@suite.case
def multiline_reply_and_local_diagnostic(c):
    p = c.peer(ehlo=("PIPELINING", "DSN"),
               rcpt_reply=lambda a: "550-5.7.1 <%s>: first line\r\n"
               "550-5.7.1 second line\r\n550 5.7.1 third line" % a
               if a.startswith("multi") else "250 2.1.5 Ok")
    d = c.msgtrkd(routes=c.write("routes", "dest.test [127.0.0.1]:%d\n" %
                                 p.port),
                  local_domains="src.test")
    send_mtrk(d, "alice@src.test", ["multi@dest.test"], "ml@client.test")
    want = ("550-5.7.1 <multi@dest.test>: first line 550-5.7.1 second line "
            "550 5.7.1 third line")
    r = wait_for(lambda: [x for x in rcpt_rows(d)
                          if x["action"] == ACTION_FAILED],
                 what="failed")[0]
    assert r["reply"] == want, r
    assert 'reply="%s"' % log_escaped(want) in d.log(), d.log()
    files = wait_for(lambda: maildir(d, "src.test", "alice"),
                     what="the bounce")
    with open(files[0], "rb") as f:
        raw = f.read()
    # RFC 3461 §9.2: the lines joined by a SPACE; one line each for
    # humans.
    assert diagnostic_codes(raw) == ["smtp; " + want], unfold(raw)
    assert ("    550-5.7.1 <multi@dest.test>: first line\n"
            "    550-5.7.1 second line\n"
            "    550 5.7.1 third line\n") in raw.decode(), raw
    # A failure msgtrkd made itself (an 8-bit message, a hop without
    # 8BITMIME: RFC 6152 §3) has no SMTP reply: its own wording, under
    # the private diagnostic-type X-msgtrk, no reply code.
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=WAIT) as s:
        s.sendmail("carol@src.test", ["ok@dest.test"],
                   "Subject: x\r\n\r\ncaf\u00e9\r\n".encode(),
                   mail_options=["BODY=8BITMIME"])
    files = wait_for(lambda: maildir(d, "src.test", "carol"),
                     what="the 8-bit bounce")
    with open(files[0], "rb") as f:
        raw = f.read()
    (dc,) = diagnostic_codes(raw)
    assert dc == "X-msgtrk; 8-bit message and the next hop has no " \
        "8BITMIME (RFC 6152 \\xc2\\xa7" + "3)", dc


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
