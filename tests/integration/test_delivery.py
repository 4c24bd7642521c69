#!/usr/bin/env python3
"""msgtrkd's delivery: relay to MTRK and plain peers, Maildir, LMTP,
failures with bounces.  Messages go in through msgtrkd's own SMTP server;
tracking records are read read-only from <data_dir>/tracking.db."""

import glob
import os
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Suite, wait_for  # noqa: E402

suite = Suite("delivery")


def _daemon(c, **conf):
    # as root it drops to the user msgtrk (harness.py)
    return c.msgtrkd(**conf)

CERT = "A" * 26 + "E"  # a certifier: 27 base64 characters


def send(d, rcpts, sender="alice@src.test", mail_opts=(), rcpt_opts=(),
         body=b"Subject: t\r\n\r\nhello\r\n"):
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=20) as s:
        s.ehlo("client.test")
        s.sendmail(sender, rcpts, body, list(mail_opts), list(rcpt_opts))


def records(d):
    return d.query("SELECT * FROM rcpt")


def action_of(rec):
    a = rec.get("action")
    names = ["delayed", "delayed", "delivered", "transferred", "relayed",
             "expanded", "failed"]
    return names[a] if isinstance(a, int) else a


def wait_action(d, action, n=1):
    return wait_for(lambda: [r for r in records(d) if action_of(r) == action]
                    if len([r for r in records(d)
                            if action_of(r) == action]) >= n else None,
                    what="%d %s record(s)" % (n, action))


def routes(c, peer_port):
    return c.write("routes", "dest.test [127.0.0.1]:%d\n" % peer_port)


@suite.case
def relay_mtrk_peer(c):
    p = c.peer(ehlo=["PIPELINING", "DSN", "MTRK", "8BITMIME"])
    d = _daemon(c, routes=routes(c, p.port))
    send(d, ["bob@dest.test"], mail_opts=["ENVID=env1x8f3kq2@client.test", "MTRK=%s:1000" % CERT,
                                          "RET=HDRS"],
         rcpt_opts=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob@dest.test"])
    m = p.wait_messages(1)[0]
    assert "ENVID=env1x8f3kq2@client.test" in m["mail"], m
    assert "RET=HDRS" in m["mail"], m
    mt = [w for w in m["mail"].split() if w.startswith("MTRK=")]
    assert mt and mt[0].startswith("MTRK=%s:" % CERT), m
    assert 990 <= int(mt[0].split(":")[1]) <= 1000, m
    assert "NOTIFY=SUCCESS,FAILURE" in m["rcpts"][0], m
    assert "ORCPT=rfc822;bob@dest.test" in m["rcpts"][0], m
    r = wait_action(d, "transferred")[0]
    assert r["remote_mta"] == "dns; [127.0.0.1]", r
    assert r["status"] == "2.0.0", r


@suite.case
def relay_mtrk_timeout_over(c):
    """MTRK=...:0 is a timeout already over, not "no timeout": the next
    hop gets no MTRK (RFC 3885 §3.3), while one without a timeout gets
    mtrk_default_timeout minus the time spent here."""
    p = c.peer(ehlo=["PIPELINING", "DSN", "MTRK", "8BITMIME"])
    d = _daemon(c, routes=routes(c, p.port), mtrk_default_timeout="2d")
    send(d, ["bob@dest.test"], mail_opts=["ENVID=env9x8f3kq2@client.test",
                                          "MTRK=%s:0" % CERT])
    send(d, ["bob@dest.test"], mail_opts=["ENVID=envAx8f3kq2@client.test",
                                          "MTRK=%s" % CERT])
    msgs = p.wait_messages(2)
    by_envid = {("env9" if "env9" in m["mail"] else "envA"): m for m in msgs}
    assert "MTRK=" not in by_envid["env9"]["mail"], by_envid["env9"]
    mt = [w for w in by_envid["envA"]["mail"].split()
          if w.startswith("MTRK=")]
    assert mt and 2 * 86400 - 10 <= int(mt[0].split(":")[1]) <= 2 * 86400, mt


@suite.case
def relay_plain_peer(c):
    p = c.peer(ehlo=["PIPELINING"])
    d = _daemon(c, routes=routes(c, p.port), local_domains="src.test")
    send(d, ["bob@dest.test"], mail_opts=["ENVID=env2x8f3kq2@client.test", "MTRK=%s" % CERT],
         rcpt_opts=["NOTIFY=SUCCESS", "ORCPT=rfc822;bob@dest.test"])
    m = p.wait_messages(1)[0]
    assert "ENVID" not in m["mail"] and "MTRK" not in m["mail"], m
    assert "ORCPT" not in m["rcpts"][0] and "NOTIFY" not in m["rcpts"][0], m
    r = wait_action(d, "relayed")[0]
    assert r["status"] == "2.1.9", r
    # The relayed DSN reaches the local sender's Maildir.
    box = os.path.join(d.data("mail"), "src.test", "alice", "new")
    files = wait_for(lambda: glob.glob(box + "/*"), what="relayed DSN")
    text = open(files[0], "rb").read()
    assert b"report-type=delivery-status" in text, text
    assert b"Action: relayed" in text, text


@suite.case
def maildir(c):
    d = _daemon(c, local_domains="here.test")
    # A body over one chunk (64 KiB): read back in pieces, with a CRLF
    # split across two of them.
    big = b"".join(b"line %06d %s\r\n" % (i, b"x" * 50) for i in range(2000))
    send(d, ["Carol@Here.test"], mail_opts=["MTRK=%s" % CERT, "ENVID=e3x8f3kq2@client.test"],
         body=b"Subject: t\r\n\r\nhello\r\n" + big)
    r = wait_action(d, "delivered")[0]
    assert r["status"] == "2.0.0", r
    box = os.path.join(d.data("mail"), "here.test", "Carol", "new")
    files = glob.glob(box + "/*")
    assert len(files) == 1, files
    got = open(files[0], "rb").read()
    assert b"hello" in got
    # Maildir holds LF line ends, as Postfix local, Dovecot and Exim
    # write them (the queue keeps SMTP's CRLF).
    assert b"\r" not in got, got[:200]
    assert got.startswith(b"Return-Path: <alice@src.test>\nDelivered-To: "), \
        got[:100]
    assert got.endswith(big.replace(b"\r\n", b"\n")), got[-100:]


@suite.case
def lmtp_mtrk(c):
    for adv, want in ((["PIPELINING", "MTRK", "DSN"], "transferred"),
                      (["PIPELINING"], "delivered")):
        p = c.peer(ehlo=adv, lmtp=True)
        d = _daemon(c, local_domains="here.test",
                      local_transport="lmtp:127.0.0.1:%d" % p.port)
        send(d, ["x@here.test", "y@here.test"],
             mail_opts=["MTRK=%s" % CERT, "ENVID=e4x8f3kq2@client.test"])
        p.wait_messages(1)
        wait_action(d, want, 2)
        d.stop()


@suite.case
def temp_then_perm_failure_bounce(c):
    state = {"n": 0}

    def rcpt(addr):
        state["n"] += 1
        return "451 4.3.0 try later" if state["n"] == 1 else \
            "550 5.1.1 no such user"
    p = c.peer(ehlo=["PIPELINING", "DSN"], rcpt_reply=rcpt)
    d = _daemon(c, routes=routes(c, p.port), local_domains="src.test")
    send(d, ["bob@dest.test"], mail_opts=["MTRK=%s" % CERT, "ENVID=e5x8f3kq2@client.test"])
    r = wait_action(d, "failed")[0]
    assert r["status"] == "5.1.1", r
    assert state["n"] >= 2
    box = os.path.join(d.data("mail"), "src.test", "alice", "new")
    files = wait_for(lambda: glob.glob(box + "/*"), what="bounce")
    text = open(files[0], "rb").read()
    assert b"Action: failed" in text and b"5.1.1" in text, text


@suite.case
def temp_then_success(c):
    state = {"n": 0}

    def rcpt(addr):
        state["n"] += 1
        return "451 4.3.0 later" if state["n"] == 1 else "250 2.1.5 Ok"
    p = c.peer(ehlo=["PIPELINING", "DSN", "MTRK"], rcpt_reply=rcpt)
    d = _daemon(c, routes=routes(c, p.port))
    send(d, ["bob@dest.test"], mail_opts=["MTRK=%s" % CERT, "ENVID=e6x8f3kq2@client.test"])
    p.wait_messages(1)
    wait_action(d, "transferred")


@suite.case
def lifetime_expiry(c):
    d = _daemon(c, routes=c.write("routes", "dest.test [127.0.0.1]:1\n"),
                  queue_lifetime="3s", local_domains="src.test")
    send(d, ["bob@dest.test"])
    r = wait_action(d, "failed")[0]
    assert r["status"] == "4.4.7", r
    box = os.path.join(d.data("mail"), "src.test", "alice", "new")
    wait_for(lambda: glob.glob(box + "/*"), what="bounce")


@suite.case
def null_sender_and_never(c):
    p = c.peer(ehlo=["PIPELINING"], rcpt_reply=lambda a: "550 5.1.1 no")
    d = _daemon(c, routes=routes(c, p.port), local_domains="src.test")
    send(d, ["bob@dest.test"], sender="")
    send(d, ["bob@dest.test"], rcpt_opts=["NOTIFY=NEVER"])
    wait_action(d, "failed", 2)
    box = os.path.join(d.data("mail"), "src.test", "alice", "new")
    assert not glob.glob(box + "/*")
    assert "dsn sent" not in d.log(), d.log()


@suite.case
def aliases(c):
    p = c.peer(ehlo=["PIPELINING", "DSN", "MTRK"])
    al = c.write("aliases", "one@here.test: bob@dest.test\n"
                 "list@here.test: a@here.test, b@here.test\n")
    d = _daemon(c, routes=routes(c, p.port), local_domains="here.test",
                  aliases=al)
    send(d, ["one@here.test"], mail_opts=["MTRK=%s" % CERT, "ENVID=e7x8f3kq2@client.test"])
    m = p.wait_messages(1)[0]
    assert "MTRK=" in m["mail"] and "bob@dest.test" in m["rcpts"][0], m
    wait_action(d, "transferred")
    send(d, ["list@here.test"], mail_opts=["MTRK=%s" % CERT, "ENVID=e8x8f3kq2@client.test"])
    wait_action(d, "expanded")
    for who in ("a", "b"):
        wait_for(lambda: glob.glob(os.path.join(
            d.data("mail"), "here.test", who, "new", "*")), what=who)
    # The members are a message of their own without a certifier.
    rows = d.query("SELECT m.certifier FROM rcpt r JOIN msg m ON "
                   "r.msg = m.id WHERE r.final_rcpt LIKE '%a@here.test'")
    assert rows and all(r["certifier"] == "" for r in rows), rows


@suite.case
def restart_delivers(c):
    p = c.peer(ehlo=["PIPELINING"])
    port = p.port
    p.close()
    d = _daemon(c, routes=routes(c, port))
    send(d, ["bob@dest.test"])
    wait_action(d, "delayed")
    d.stop()
    p2 = c.peer(ehlo=["PIPELINING"], port=port)
    d.start()
    p2.wait_messages(1)
    wait_action(d, "relayed")


if __name__ == "__main__":
    suite.main()
