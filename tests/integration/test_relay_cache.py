#!/usr/bin/env python3
"""msgtrkd's outbound connection cache (src/delivery/relay.c): a session
whose transaction ended in step carries the next message to the same hop
instead of a new connection; an idle one is closed with QUIT after
RELAY_CACHE_IDLE (2 s); a cached session the server dropped meanwhile
(closed, or 421 to MAIL) costs the message nothing: a new connection
carries it at once, not at the next retry (retry_schedule is 1h here).
Messages go in through msgtrkd's own SMTP server; tracking records are
read read-only from <data_dir>/tracking.db."""

import os
import smtplib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Suite, wait_for  # noqa: E402

suite = Suite("relay_cache")

CERT = "A" * 26 + "E"  # a certifier: 27 base64 characters
TRANSFERRED = 3


def send(d, n, rcpt="bob@dest.test"):
    for i in range(n):
        with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=20) as s:
            s.ehlo("client.test")
            s.sendmail("alice@src.test", [rcpt],
                       b"Subject: m%d\r\n\r\nhello %d\r\n" % (i, i),
                       ["ENVID=cache%d.x8f3kq2@client.test" % i,
                        "MTRK=%s:1000" % CERT])


def transferred(d):
    rows = d.query("SELECT count(*) AS n FROM rcpt WHERE action = ?",
                   (TRANSFERRED,))
    return rows[0]["n"] if rows else 0


def daemon(c, p, **conf):
    routes = c.write("routes", "dest.test [127.0.0.1]:%d\n" % p.port)
    return c.msgtrkd(routes=routes, retry_schedule="1h", **conf)


@suite.case
def reuse_one_connection(c):
    p = c.peer(ehlo=["PIPELINING", "DSN", "MTRK", "8BITMIME"])
    d = daemon(c, p)
    # One message at a time, each after the last was delivered: each
    # finds the session the one before left in the cache.
    for i in range(8):
        send(d, 1)
        p.wait_messages(i + 1)
        wait_for(lambda: transferred(d) >= i + 1, what="record %d" % i)
    assert p.sessions == 1, "%d connections for 8 messages" % p.sessions
    assert all("MTRK=" in m["mail"] for m in p.messages), p.messages
    # Idle for RELAY_CACHE_IDLE: closed politely.
    wait_for(lambda: p.quits == 1, what="the idle session's QUIT")
    send(d, 1)
    p.wait_messages(9)
    assert p.sessions == 2, p.sessions


@suite.case
def reuse_lmtp(c):
    p = c.peer(ehlo=["PIPELINING", "MTRK"], lmtp=True)
    d = c.msgtrkd(local_domains="here.test",
                  local_transport="lmtp:127.0.0.1:%d" % p.port)
    for i in range(5):
        send(d, 1, rcpt="x@here.test")
        p.wait_messages(i + 1)
    assert p.sessions == 1, p.sessions


@suite.case
def dropped_after_transaction(c):
    # The server closes after each transaction, without a word: the next
    # message's MAIL meets EOF on the cached session.
    p = c.peer(ehlo=["PIPELINING", "DSN", "MTRK"], tx_per_session=1,
               hang_up="close")
    d = daemon(c, p)
    for i in range(3):
        send(d, 1)
        p.wait_messages(i + 1)
        time.sleep(0.2)  # let the close reach the daemon or not: both ok
    wait_for(lambda: transferred(d) >= 3, what="3 transferred records")
    assert p.sessions == 3, p.sessions


@suite.case
def refused_421_on_reuse(c):
    # The server answers MAIL on a reused session with 421 and hangs up
    # (an idle timeout of its own).
    p = c.peer(ehlo=["PIPELINING", "DSN", "MTRK"], tx_per_session=1,
               hang_up="421")
    d = daemon(c, p)
    for i in range(3):
        send(d, 1)
        p.wait_messages(i + 1)
    wait_for(lambda: transferred(d) >= 3, what="3 transferred records")
    assert p.sessions == 3, p.sessions
    assert "delivery reuse" in d.log() and "421 before MAIL" in d.log(), \
        d.log()[-2000:]


@suite.case
def concurrent_burst(c):
    # More messages at once than the per-host limit (10): waiting
    # deliveries take over sessions as they finish; none is lost, and
    # never more than 10 connections are made.
    p = c.peer(ehlo=["PIPELINING", "DSN", "MTRK"])
    d = daemon(c, p)
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=20) as s:
        s.ehlo("client.test")
        for i in range(60):
            s.sendmail("alice@src.test", ["bob%d@dest.test" % i],
                       b"Subject: b%d\r\n\r\nburst\r\n" % i,
                       ["ENVID=burst%d.x8f3kq2@client.test" % i,
                        "MTRK=%s:1000" % CERT])
    p.wait_messages(60)
    wait_for(lambda: transferred(d) >= 60, what="60 transferred records")
    assert p.sessions <= 10, p.sessions


if __name__ == "__main__":
    suite.main()
