#!/usr/bin/env python3
"""The limits of msgtrkd's SMTP and MTQP servers hold under TLS too
(src/common/netio.c): output a client never reads is bounded at the
socket level, below the TLS filter, as it is without TLS; a TLS handshake
that never finishes is cut (SMTP: smtp_timeout after the 220, PRODUCT.md;
MTQP: MTQP_SERVER_HANDSHAKE_TIMEOUT, 60 s) and its connection closed, so
it holds no descriptor and no per-address slot, and SIGTERM does not wait
for it.

The daemon's memory is read from /proc/PID/status (VmRSS) and its
descriptors from /proc/PID/fd.

    MSGTRK_BUILD=build-asan python3 tests/integration/test_tls_limits.py [CASE...]
"""

import os
import signal
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Msgtrkd, Suite, WAIT, free_port, wait_for, wait_port  # noqa
from test_hostile import Raw, make_cert, secret_pair  # noqa: E402

suite = Suite("tls_limits")

FLOOD_SECONDS = 12
SMTP_HOGS = 150
MTQP_HOGS = 1
# MTQP answers are made at some MiB/s per session: the flood goes on
# until the daemon closed every hog, at most this long.
MTQP_FLOOD_SECONDS = 120
MIB = 1024 * 1024
# What the daemon may grow by while the SMTP hogs flood it: a session
# stops reading once SMTP_OUT_HIGH (64 KiB) of replies wait, above the TLS
# filter or below it, and holds SMTP_LINE_INPUT_MAX (64 KiB) of input at
# most, so 150 sessions stay far below this.  Unbounded, they grow by
# hundreds of MiB in the same time.
SMTP_GROWTH_MAX = 64 * MIB
# MTQP: MTQP_SERVER_OUTPUT_MAX (32 MiB) per session, and as much again.
MTQP_OUTPUT_MAX = 32 * MIB
MTQP_GROWTH_MAX = (MTQP_HOGS + 1) * MTQP_OUTPUT_MAX


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1]) * 1024
    return 0


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


_ctx = None


def client_ctx():
    global _ctx
    if _ctx is None:
        _ctx = ssl.create_default_context()
        _ctx.check_hostname = False
        _ctx.verify_mode = ssl.CERT_NONE
    return _ctx


def start(c, **extra):
    """A daemon with a certificate, SMTP and MTQP.  Under AddressSanitizer
    freed memory is kept in a quarantine of 256 MiB by default, which
    would count as growth here: it is made small (the sanitizer's checks
    stay)."""
    crt, key = make_cert(c)
    conf = dict(local_domains="local.test", tls_cert_file=crt,
                tls_key_file=key, mtqp_listen="127.0.0.1:%d" % free_port())
    conf.update(extra)
    d = Msgtrkd(c, conf)
    saved = os.environ.get("ASAN_OPTIONS")
    os.environ["ASAN_OPTIONS"] = ((saved + ":") if saved else "") + \
        "quarantine_size_mb=4"
    try:
        d.start()
    finally:
        if saved is None:
            del os.environ["ASAN_OPTIONS"]
        else:
            os.environ["ASAN_OPTIONS"] = saved
    c.on_cleanup(d.stop)
    d.mtqp_port = int(conf["mtqp_listen"].rsplit(":", 1)[1])
    wait_port(d.mtqp_port)
    # Let the daemon settle (store open, first purge) before measuring.
    time.sleep(0.5)
    return d


def finish(d, max_seconds=None):
    t0 = time.monotonic()
    rc = d.stop()
    took = time.monotonic() - t0
    log = d.log()
    assert rc == 0, "msgtrkd exited %r:\n%s" % (rc, log[-3000:])
    for bad in ("Sanitizer", "runtime error:", "fatal"):
        assert bad not in log, log[-3000:]
    if max_seconds is not None:
        assert took < max_seconds, "SIGTERM took %.1f s" % took
    return took


def smtp_tls(port, src, rcvbuf=None):
    """EHLO, STARTTLS, handshake: the TLS socket, greeted anew."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(WAIT)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    r = Raw.__new__(Raw)
    r.sock, r.buf = s, b""
    assert r.line().startswith("220 ")
    assert r.cmd("EHLO client.test").startswith("250")
    assert r.cmd("STARTTLS").startswith("220 ")
    return client_ctx().wrap_socket(s, server_hostname="mx.test")


def mtqp_tls(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(WAIT)
    s.connect(("127.0.0.1", port))
    r = Raw.__new__(Raw)
    r.sock, r.buf = s, b""
    g = r.line()
    assert g.startswith("+OK+"), g
    while r.line() != ".":
        pass
    r.send("STARTTLS mx.test\r\n")
    assert r.line().startswith("+OK"), r.buf
    return client_ctx().wrap_socket(s, server_hostname="mx.test")


def flood(pid, socks, chunk, seconds, until_closed=False):
    """Writes chunk to every socket, never reading, for seconds (or, with
    until_closed, until the daemon closed them all, at most seconds);
    returns the daemon's peak RSS meanwhile and how many sockets it
    closed."""
    for t in socks:
        t.setblocking(False)
    peak, closed = rss(pid), set()
    end = time.monotonic() + seconds
    next_sample = 0
    while time.monotonic() < end:
        if until_closed and len(closed) == len(socks):
            break
        for t in socks:
            if t in closed:
                continue
            try:
                t.send(chunk)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError,
                    BlockingIOError):
                pass
            except (OSError, ssl.SSLError):
                closed.add(t)
        if time.monotonic() >= next_sample:
            peak = max(peak, rss(pid))
            next_sample = time.monotonic() + 0.2
    peak = max(peak, rss(pid))
    return peak, len(closed)


def tracked_message(d, nrcpt):
    """A tracked message to nrcpt local recipients (its TRACK answer has
    a block for each); returns (envid, secret)."""
    envid = "t%s@client.test" % os.urandom(6).hex()
    sec, cert = secret_pair()
    r = Raw(d.smtp_port)
    assert r.cmd("EHLO client.test").startswith("250")
    got = r.cmd("MAIL FROM:<a@client.test> ENVID=%s MTRK=%s:86400"
                % (envid, cert))
    assert got.startswith("250 2.1.0"), got
    for i in range(nrcpt):
        assert r.cmd("RCPT TO:<u%d@local.test>" % i).startswith("250")
    assert r.cmd("DATA").startswith("354")
    r.send("Subject: tracked\r\n\r\nhello\r\n.\r\n")
    got = r.reply()
    assert got.startswith("250 2.0.0 Ok: queued as "), got
    r.close()
    return envid, sec


def smtp_transaction(d):
    r = Raw(d.smtp_port)
    assert r.cmd("EHLO client.test").startswith("250")
    assert r.cmd("MAIL FROM:<a@client.test>").startswith("250 2.1.0")
    assert r.cmd("RCPT TO:<u@local.test>").startswith("250 2.1.5")
    assert r.cmd("DATA").startswith("354")
    r.send("Subject: after\r\n\r\nhello\r\n.\r\n")
    got = r.reply()
    assert got.startswith("250 2.0.0 Ok: queued as "), got
    assert r.cmd("QUIT").startswith("221")
    r.close()


@suite.case
def smtp_tls_client_never_reads(c):
    """SMTP_HOGS clients (50 per source address) do EHLO, STARTTLS and the
    handshake, then pipeline NOOPs and VRFYs (74 octets of reply for 8 of
    command) for FLOOD_SECONDS without reading a reply: the daemon stops
    reading them once their replies back up (RFC 2920 §3.1), so it grows
    by less than SMTP_GROWTH_MAX; once they are gone every descriptor is
    released and a transaction works."""
    d = start(c)
    pid = d.proc.pid
    # A first message, so what the daemon opens once (the queue's files,
    # the store's readers) is in the baseline.
    smtp_transaction(d)
    time.sleep(1)
    base_fds, base_rss = nfds(pid), rss(pid)
    hogs = [smtp_tls(d.smtp_port, "127.0.%d.%d" % (21, 1 + i // 50),
                     rcvbuf=4096)
            for i in range(SMTP_HOGS)]
    c.on_cleanup(lambda: [t.close() for t in hogs])
    before = rss(pid)
    peak, closed = flood(pid, hogs, b"NOOP\r\nVRFY a\r\n" * 1024,
                         FLOOD_SECONDS)
    print("    smtp: %d TLS clients: RSS %.1f MiB at start, %.1f MiB after "
          "the handshakes, peak %.1f MiB during %d s of NOOP and VRFY "
          "(+%.1f MiB)"
          % (SMTP_HOGS, base_rss / MIB, before / MIB, peak / MIB,
             FLOOD_SECONDS, (peak - before) / MIB))
    for t in hogs:
        t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
        t.close()  # RST, replies unread
    wait_for(lambda: nfds(pid) <= base_fds,
             what="descriptors back to %d (now %d)" % (base_fds, nfds(pid)))
    smtp_transaction(d)
    wait_for(lambda: nfds(pid) <= base_fds, what="descriptors after")
    print("    descriptors: %d before, %d after" % (base_fds, nfds(pid)))
    assert peak - before < SMTP_GROWTH_MAX, \
        "grew by %.1f MiB" % ((peak - before) / MIB)
    finish(d)


@suite.case
def mtqp_tls_client_never_reads(c):
    """MTQP_HOGS clients do STARTTLS, then pipeline TRACKs (of a real
    message to 50 recipients, with its secret: each answer is a tracking
    report of some 9 KiB) without reading: each session is closed once
    MTQP_SERVER_OUTPUT_MAX (32 MiB) of answers wait for it, measured below
    the TLS filter, so the daemon grows by less than (MTQP_HOGS + 1) x
    32 MiB."""
    d = start(c)
    pid = d.proc.pid
    envid, sec = tracked_message(d, 50)
    # The store has it once a plaintext TRACK answers.
    def answered():
        k = Raw(d.mtqp_port)
        if k.greeting.startswith("+OK+"):
            while k.line() != ".":
                pass
        k.send("TRACK %s %s\r\n" % (envid, sec))
        st = k.line()
        k.close()
        return st.startswith("+OK+")
    wait_for(answered, what="the TRACK answer")
    base_fds = nfds(pid)
    hogs = [mtqp_tls(d.mtqp_port, rcvbuf=4096) for _ in range(MTQP_HOGS)]
    c.on_cleanup(lambda: [t.close() for t in hogs])
    before = rss(pid)
    line = ("TRACK %s %s\r\n" % (envid, sec)).encode()
    t0 = time.monotonic()
    peak, closed = flood(pid, hogs, line * 100, MTQP_FLOOD_SECONDS,
                         until_closed=True)
    print("    mtqp: %d TLS clients: RSS %.1f MiB before, peak %.1f MiB "
          "during %.0f s of TRACKs (+%.1f MiB), %d closed by the daemon"
          % (MTQP_HOGS, before / MIB, peak / MIB, time.monotonic() - t0,
             (peak - before) / MIB, closed))
    for t in hogs:
        t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
        t.close()
    wait_for(lambda: nfds(pid) <= base_fds, what="descriptors back")
    assert closed == MTQP_HOGS, "%d of %d closed" % (closed, MTQP_HOGS)
    assert d.log().count("mtqp disconnect reason=output-full") == MTQP_HOGS
    assert peak - before < MTQP_GROWTH_MAX, \
        "grew by %.1f MiB" % ((peak - before) / MIB)
    assert answered()
    finish(d)


def silent_starttls(port, src):
    """EHLO, STARTTLS, the 220, then nothing: no ClientHello."""
    r = Raw(port, src=src)
    assert r.cmd("EHLO client.test").startswith("250")
    assert r.cmd("STARTTLS").startswith("220 ")
    return r


@suite.case
def smtp_starttls_then_silence(c):
    """20 clients get 220 to STARTTLS and never start the handshake: with
    smtp_timeout = 3s each is closed by the daemon 3 s later (PRODUCT.md:
    "a TLS handshake this long after STARTTLS"), every descriptor is
    released, and the per-address limit (SMTP_SESSIONS_PER_ADDR_MAX, 100)
    is whole again: 100 more connections from the same address are
    greeted."""
    d = start(c, smtp_timeout="3s")
    pid = d.proc.pid
    base_fds = nfds(pid)
    src = "127.0.22.1"
    silent = [silent_starttls(d.smtp_port, src) for _ in range(20)]
    t0 = time.monotonic()
    for r in silent:
        assert r.eof(timeout=10), "still open %.1f s after STARTTLS" % (
            time.monotonic() - t0)
    took = time.monotonic() - t0
    wait_for(lambda: nfds(pid) <= base_fds,
             what="descriptors back to %d (now %d)" % (base_fds, nfds(pid)))
    assert d.log().count("smtp disconnect reason=tls-timeout") == 20
    print("    20 silent handshakes closed %.1f s after STARTTLS" % took)
    assert 2 <= took < 8, took
    more = [Raw(d.smtp_port, src=src) for _ in range(100)]
    for r in more:
        assert r.greeting.startswith("220 "), r.greeting
        r.close()
    for r in silent:
        r.close()
    finish(d)


@suite.case
def sigterm_during_silent_handshakes(c):
    """With the default smtp_timeout (5 minutes), SIGTERM while 20
    handshakes hang: nothing can be said inside a handshake, so they are
    cut and the daemon exits within seconds (not after its 30 s grace)."""
    d = start(c)
    silent = [silent_starttls(d.smtp_port, "127.0.23.1") for _ in range(20)]
    took = finish(d, max_seconds=5)
    print("    SIGTERM with 20 silent handshakes: exit in %.1f s" % took)
    for r in silent:
        assert r.eof(timeout=1)
        r.close()


@suite.case
def mtqp_starttls_then_silence(c):
    """MTQP: 5 clients get +OK to STARTTLS and never start the handshake;
    MTQP_SERVER_HANDSHAKE_TIMEOUT (60 s) later each is closed (the idle
    timer, mtqp_idle_timeout, is at least 10 minutes)."""
    d = start(c)
    pid = d.proc.pid
    base_fds = nfds(pid)
    silent = []
    for _ in range(5):
        k = Raw(d.mtqp_port)
        while k.line() != ".":
            pass
        k.send("STARTTLS mx.test\r\n")
        assert k.line().startswith("+OK")
        silent.append(k)
    t0 = time.monotonic()
    for k in silent:
        assert k.eof(timeout=70 - (time.monotonic() - t0)), \
            "still open %.1f s after STARTTLS" % (time.monotonic() - t0)
    took = time.monotonic() - t0
    print("    5 silent MTQP handshakes closed %.1f s after STARTTLS" % took)
    assert 55 <= took < 70, took
    wait_for(lambda: nfds(pid) <= base_fds, what="descriptors back")
    assert d.log().count("mtqp disconnect reason=tls-timeout") == 5
    for k in silent:
        k.close()
    finish(d)


if __name__ == "__main__":
    suite.main()
