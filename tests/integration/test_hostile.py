#!/usr/bin/env python3
"""Hostile sessions against msgtrkd's live SMTP and MTQP listeners (issue
6), over raw sockets: over-long lines, NUL, 8-bit, bare CR/LF, smuggling,
pipelining floods, a client that never reads, STARTTLS with plaintext
injected behind it (CVE-2011-0411 pattern, SMTP and MTQP), 10,000 RCPTs,
slowloris against the per-address limit, TRACK brute force.

Each case gets the right code or a clean close; after each, the same
daemon serves a normal session (a tracked message is accepted and a TRACK
with its secret answers +OK+); then it exits 0 on SIGTERM with no
sanitizer report in its log.  Run it on the ASan build:

    MSGTRK_BUILD=build-asan python3 tests/integration/test_hostile.py [case]
"""

import base64
import hashlib
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Msgtrkd, Suite, WAIT, free_port, wait_for, wait_port  # noqa

suite = Suite("hostile")
QUEUED = re.compile(r"^250 2\.0\.0 Ok: queued as [0-9A-Za-z]{1,32}$")
BOGUS = "A" * 43  # a well-formed 32-octet secret that matches nothing


class Raw:
    """Exact bytes out, CRLF lines in (SMTP and MTQP)."""

    def __init__(self, port, host="127.0.0.1", src=None, greet=True):
        self.sock = socket.create_connection(
            (host, port), timeout=WAIT,
            source_address=(src, 0) if src else None)
        self.buf = b""
        self.greeting = self.line() if greet else None

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed; have %r" % self.buf[:200])
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln.decode("latin-1")

    def reply(self):
        """One SMTP reply (its last line; multi-line joined by \\n)."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return "\n".join(lines)

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def mtqp(self):
        """One MTQP response: (status line, data lines or None)."""
        st = self.line()
        if not st.startswith("+OK+"):
            return st, None
        data = []
        while True:
            ln = self.line()
            if ln == ".":
                return st, data
            data.append(ln)

    def eof(self, timeout=WAIT):
        """True if the server closes with nothing more to say (bytes
        that did arrive are kept in buf)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    return True
                self.buf += d
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(WAIT)

    def nothing_pending(self, wait=0.3):
        self.sock.settimeout(wait)
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return self.buf == b""
        finally:
            self.sock.settimeout(WAIT)
        self.buf += d
        return False


def make_cert(c):
    key, crt = c.path("key.pem"), c.path("cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-days", "2", "-subj", "/CN=mx.test",
                    "-addext", "subjectAltName=DNS:mx.test",
                    "-keyout", key, "-out", crt], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=WAIT)
    os.chmod(key, 0o644)
    return crt, key


def secret_pair():
    a = os.urandom(32)
    cert = base64.b64encode(hashlib.sha1(a).digest()).decode().rstrip("=")
    return base64.b64encode(a).decode(), cert


def tracked_message(d, envid=None):
    """Sends one tracked message in a fresh session; returns (envid,
    secret)."""
    envid = envid or "h%s@client.test" % os.urandom(6).hex()
    sec, cert = secret_pair()
    r = Raw(d.smtp_port)
    assert r.greeting.startswith("220 "), r.greeting
    assert r.cmd("EHLO client.test").startswith("250")
    got = r.cmd("MAIL FROM:<a@client.test> ENVID=%s MTRK=%s:86400"
                % (envid, cert))
    assert got.startswith("250 2.1.0"), got
    assert r.cmd("RCPT TO:<u@local.test>").startswith("250 2.1.5")
    assert r.cmd("DATA").startswith("354")
    r.send("Subject: normal\r\n\r\nhello\r\n.\r\n")
    got = r.reply()
    assert QUEUED.match(got), got
    assert r.cmd("QUIT").startswith("221")
    r.close()
    return envid, sec


def still_serving(d):
    """A normal SMTP session and a TRACK with the right secret."""
    envid, sec = tracked_message(d)
    k = Raw(d.mtqp_port)
    assert k.greeting.startswith("+OK"), k.greeting
    if k.greeting.startswith("+OK+"):
        while k.line() != ".":
            pass
    k.send("TRACK %s %s\r\n" % (envid, sec))
    st, data = k.mtqp()
    assert st.startswith("+OK+"), st
    assert any(("Original-Envelope-Id: " + envid) in ln for ln in data)
    k.close()


def hostile(tls=False, **extra):
    """A case with its own msgtrkd (SMTP + MTQP, local.test local; a
    certificate when tls): fn(c, d) runs the attack, then the daemon
    must still serve, and exit 0 with a clean log on SIGTERM."""
    def wrap(fn):
        def run(c):
            conf = dict(local_domains="local.test",
                        mtqp_listen="127.0.0.1:%d" % free_port())
            if tls:
                crt, key = make_cert(c)
                conf.update(tls_cert_file=crt, tls_key_file=key)
            conf.update(extra)
            d = Msgtrkd(c, conf)
            d.start()
            c.on_cleanup(d.stop)
            d.mtqp_port = int(conf["mtqp_listen"].rsplit(":", 1)[1])
            wait_port(d.mtqp_port)
            fn(c, d)
            assert d.proc.poll() is None, "msgtrkd died:\n" + d.log()
            still_serving(d)
            rc = d.stop()
            log = d.log()
            assert rc == 0, "msgtrkd exited %r:\n%s" % (rc, log[-3000:])
            for bad in ("Sanitizer", "runtime error:", "fatal"):
                assert bad not in log, log[-3000:]
        run.__name__ = fn.__name__
        return suite.case(run)
    return wrap


def smtp(d, src=None):
    r = Raw(d.smtp_port, src=src)
    assert r.greeting == "220 mx.test ESMTP msgtrk", r.greeting
    assert r.cmd("EHLO client.test").startswith("250-mx.test")
    return r


def mtqp(d):
    k = Raw(d.mtqp_port)
    assert k.greeting.startswith("+OK"), k.greeting
    if k.greeting.startswith("+OK+"):
        while k.line() != ".":
            pass
    return k


def expect(r, line, want):
    got = r.cmd(line)
    assert got.startswith(want), "%r: got %r, want %r" % (line[:60], got,
                                                           want)
    return got


# --- SMTP -------------------------------------------------------------

@hostile()
def smtp_over_long_lines(c, d):
    r = smtp(d)
    expect(r, "NOOP " + "x" * 600, "500 5.5.2")  # RFC 5321 §4.5.3.1.4
    expect(r, "RCPT TO:<" + "a" * 70000 + "@local.test>", "500 5.5.2")
    expect(r, "NOOP", "250")  # in step: the rest of the line was dropped
    # A megabyte with no line end at all: one 500, then still in step.
    r.send(b"y" * (1 << 20))
    assert r.reply().startswith("500 5.5.2")
    r.send(b"\r\n")
    expect(r, "NOOP", "250")
    # A 1 MB line inside DATA: a reply to the final dot, nothing else.
    expect(r, "MAIL FROM:<a@client.test>", "250 2.1.0")
    expect(r, "RCPT TO:<u@local.test>", "250 2.1.5")
    expect(r, "DATA", "354")
    r.send(b"Subject: long\r\n\r\n" + b"z" * (1 << 20) + b"\r\n.\r\n")
    got = r.reply()
    assert re.match(r"^(250 2\.0\.0|5\d\d 5\.\d\.\d+) ", got), got
    assert r.nothing_pending()
    expect(r, "QUIT", "221")


@hostile()
def smtp_nul_8bit_bare_cr_lf(c, d):
    r = smtp(d)
    for bad in (b"NOOP a\x00b\r\n", b"MAIL FROM:<a\x00@client.test>\r\n",
                b"HELO cli\xe9nt.test\r\n", b"NOOP\rNOOP\r\n",
                b"MAIL FROM:<a@client.test>\r\nRCPT TO:<\xff@local.test>\r\n"):
        if b"\r\nRCPT" in bad:
            assert r.cmd("RSET").startswith("250")
            r.send(bad)
            got = r.reply()
            assert got.startswith("250 2.1.0"), got
            got = r.reply()
            assert got[:3] in ("501", "500", "553"), (bad, got)
            assert r.cmd("RSET").startswith("250")
            continue
        r.send(bad)
        got = r.reply()
        assert got.startswith("501 5.5.2") or got.startswith("500 5.5.2"), \
            (bad, got)
        assert r.nothing_pending(0.1), bad
    r.send(b"NOOP\nNOOP\r\n")  # bare LF: one bad line, no second reply
    assert r.reply().startswith("501 5.5.2")
    assert r.nothing_pending(0.1)
    expect(r, "MAIL FROM:<a@client.test>", "250 2.1.0")
    # NUL and 8-bit inside DATA are message content, not commands.
    expect(r, "RCPT TO:<u@local.test>", "250 2.1.5")
    expect(r, "DATA", "354")
    r.send(b"Subject: bin\r\n\r\na\x00b\xff\xfe\r\n.\r\n")
    got = r.reply()
    assert re.match(r"^(250 2\.0\.0|5\d\d 5\.\d\.\d+) ", got), got
    expect(r, "QUIT", "221")


@hostile()
def smtp_smuggling_variants(c, d):
    r = smtp(d)
    for fake in ("\n.\n", "\r.\n", "\n.\r\n", "\r\n.\n", "\r.\r\n",
                 "\n.\r", "\r\n.\r"):
        expect(r, "MAIL FROM:<a@client.test>", "250 2.1.0")
        expect(r, "RCPT TO:<u@local.test>", "250 2.1.5")
        expect(r, "DATA", "354")
        r.send("Subject: s\r\n\r\nhello" + fake +
               "MAIL FROM:<evil@client.test>\r\nRCPT TO:<x@local.test>\r\n"
               "DATA\r\nsmuggled\r\n.\r\n")
        got = r.reply()
        # Never 250 for a message with a bare CR/LF ending: 550 5.5.2.
        assert got.startswith("550 5.5.2") or \
            (fake in ("\n.\r", "\r\n.\r") and got.startswith("5")), \
            (fake, got)
        assert r.nothing_pending(0.2), fake  # nothing smuggled ran
    expect(r, "QUIT", "221")
    assert "evil@client.test" not in d.log()


@hostile()
def smtp_pipelining_flood(c, d):
    r = smtp(d)
    n = 5000
    r.send(b"RSET\r\n" * n)
    for i in range(n):
        assert r.reply() == "250 2.0.0 Ok", i
    # A mixed flood in one write: every reply, in order.
    r.send(b"MAIL FROM:<a@client.test>\r\nRCPT TO:<u@local.test>\r\nRSET\r\n"
           * 1000)
    for i in range(1000):
        assert r.reply().startswith("250 2.1.0"), i
        assert r.reply().startswith("250 2.1.5"), i
        assert r.reply().startswith("250"), i
    assert r.nothing_pending()
    expect(r, "QUIT", "221")


@hostile()
def smtp_client_that_never_reads(c, d):
    hogs = []
    for _ in range(3):
        h = smtp(d)
        h.sock.setblocking(False)
        chunk = b"NOOP\r\n" * 20000
        end = time.monotonic() + 5
        while time.monotonic() < end:
            try:
                h.sock.send(chunk)
            except BlockingIOError:
                break  # the server stopped reading: output is bounded
        hogs.append(h)
    other = smtp(d)
    expect(other, "NOOP", "250 2.0.0 Ok")
    expect(other, "QUIT", "221")
    for h in hogs:
        h.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          b"\x01\x00\x00\x00\x00\x00\x00\x00")
        h.close()  # RST with replies still queued
    wait_for(lambda: d.log().count("smtp disconnect") >= 4)


@hostile(tls=True)
def smtp_starttls_plaintext_injection(c, d):
    # CVE-2011-0411: a command pipelined behind STARTTLS never runs.
    r = smtp(d)
    r.send("STARTTLS\r\nMAIL FROM:<evil@client.test>\r\n")
    got = r.reply()
    assert got.startswith("503 5.5.1") or got.startswith("220"), got
    if got.startswith("220"):
        # Had the server accepted, the injected MAIL must not be answered
        # in plaintext nor inside TLS: the handshake must fail cleanly.
        assert r.nothing_pending()
    else:
        assert r.nothing_pending()
        expect(r, "RCPT TO:<u@local.test>", "503 5.5.1")  # MAIL never ran
    r.close()
    # STARTTLS accepted, then plaintext instead of a ClientHello: the
    # handshake fails and the connection closes with no SMTP reply.
    r = smtp(d)
    expect(r, "STARTTLS", "220")
    r.send("MAIL FROM:<evil@client.test>\r\nRCPT TO:<u@local.test>\r\n")
    assert r.eof()
    assert not re.search(rb"^[245]\d\d ", r.buf, re.M), r.buf
    # After a real handshake, nothing from before it survives (RFC 3207).
    r = smtp(d)
    expect(r, "STARTTLS", "220")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    t = ctx.wrap_socket(r.sock, server_hostname="mx.test")
    t.sendall(b"RCPT TO:<u@local.test>\r\n")
    got = t.recv(4096)
    assert got.startswith(b"503 5.5.1"), got  # no MAIL, no EHLO state
    t.close()
    assert "evil@client.test" not in d.log()


@hostile()
def smtp_ten_thousand_rcpts(c, d):
    """10,000 pipelined RCPTs: SMTP_RCPT_MAX (1000) get 250, the next
    ones 452 4.5.3, and after SMTP_ERRORS_MAX (20) errors 421 4.7.0 and a
    close.  The close comes with thousands of our RCPTs unread: the
    server's lingering close (FIN, then it reads and drops the rest) keeps
    the kernel from sending a RST, so every reply arrives, the 421 last."""
    r = smtp(d)
    expect(r, "MAIL FROM:<a@client.test>", "250 2.1.0")
    n = 10000
    data = "".join("RCPT TO:<u%d@local.test>\r\n" % i
                   for i in range(n)).encode()

    def writer():
        try:
            r.sock.sendall(data)
        except OSError:
            pass  # closed by the server: expected
    w = threading.Thread(target=writer, daemon=True)
    w.start()
    replies, end = [], "eof"
    try:
        for _ in range(n):
            replies.append(r.reply())
            if replies[-1].startswith("421"):
                break
    except EOFError:
        pass
    except ConnectionResetError:
        end = "reset"
    w.join(WAIT)
    for i, x in enumerate(replies):
        if i < 1000:
            assert x == "250 2.1.5 Ok", (i, x)
        elif x.startswith("421"):
            assert x == "421 4.7.0 mx.test Error: too many errors", x
            assert i == len(replies) - 1
        else:
            assert x.startswith("452 4.5.3"), (i, x)
    assert len(replies) < n  # closed before answering them all
    assert end == "eof", end  # a FIN, not a RST
    assert len(replies) == 1021 and replies[-1].startswith("421"), \
        len(replies)
    wait_for(lambda: "smtp disconnect reason=errors" in d.log())
    print("    10000 RCPTs: %d replies read (%d x 250, %d x 452, %s), "
          "then %s" % (len(replies), min(len(replies), 1000),
                       sum(1 for x in replies if x.startswith("452")),
                       "421" if replies and replies[-1].startswith("421")
                       else "no 421 read", end))


@hostile()
def smtp_slowloris_per_address_limit(c, d):
    """A byte a second on SMTP_SESSIONS_PER_ADDR_MAX (100) connections
    from 127.0.0.2 for a bounded time: the next one from that address
    gets 421 4.7.0, while 127.0.0.1 is served normally.  (The command
    timeout, RFC 5321 §4.5.3.2.7, is 5 minutes per read: not waited for
    here.)"""
    slow = [Raw(d.smtp_port, src="127.0.0.2") for _ in range(100)]
    assert all(s.greeting.startswith("220") for s in slow)
    over = Raw(d.smtp_port, src="127.0.0.2", greet=False)
    assert over.line() == "421 4.7.0 mx.test Error: too many connections"
    assert over.eof()
    for i in range(6):
        for s in slow:
            s.send("EHLO slow.test"[i:i + 1])
        r = smtp(d)  # others are served meanwhile
        expect(r, "QUIT", "221")
        time.sleep(1)
    for s in slow:
        assert s.nothing_pending(0.01), s.buf  # no reply to half a line
        s.close()
    wait_for(lambda: d.log().count("reason=eof") >= 100)
    r = smtp(d, src="127.0.0.2")  # room again
    expect(r, "QUIT", "221")


@hostile(smtp_timeout="3s")
def smtp_slowloris_command_deadline(c, d):
    """A command line trickled a byte a second (each byte inside the 3 s
    idle timer) is cut 3 s after its first byte with 421 4.4.2, long
    before its 22 bytes are sent (smtp.h: per-line deadline)."""
    r = Raw(d.smtp_port)
    line = b"EHLO slowloris.test\r\n"
    start = time.monotonic()
    got = None
    for i in range(len(line)):
        try:
            r.sock.sendall(line[i:i + 1])
        except OSError:
            break
        time.sleep(1)
        if not r.nothing_pending(0.01):
            got = r.line()
            break
    assert got is not None and got.startswith("421 4.4.2"), (got, r.buf)
    assert r.eof()
    assert time.monotonic() - start < len(line) - 2, "not cut early"


@hostile(smtp_timeout="3s")
def smtp_slowloris_data_deadline(c, d):
    """DATA trickled a byte a second is cut smtp_timeout + size/500 s
    after the 354 with 421 4.4.2; nothing is queued."""
    r = smtp(d)
    expect(r, "MAIL FROM:<a@x.test>", "250")
    expect(r, "RCPT TO:<b@local.test>", "250")
    expect(r, "DATA", "354")
    got = None
    for i in range(20):
        try:
            r.send("x")
        except OSError:
            break
        time.sleep(1)
        if not r.nothing_pending(0.01):
            got = r.line()
            break
    assert got is not None and got.startswith("421 4.4.2"), (got, r.buf)
    assert r.eof()
    assert "smtp queued" not in d.log()


@hostile(smtp_timeout="3s")
def smtp_paced_commands_not_cut(c, d):
    """Whole commands 2 s apart (each inside the idle timer) are served
    for longer than smtp_timeout: the deadline is per line, not per
    session."""
    r = smtp(d)
    for cmd, want in (("MAIL FROM:<a@x.test>", "250"),
                      ("RCPT TO:<b@local.test>", "250"), ("RSET", "250"),
                      ("NOOP", "250")):
        time.sleep(2)
        expect(r, cmd, want)
    expect(r, "QUIT", "221")


# --- MTQP -------------------------------------------------------------

@hostile()
def mtqp_bad_lines(c, d):
    k = mtqp(d)
    cases = [(b"TRACK " + b"a" * 5000 + b"\r\n", "-BAD command line too long"),
             (b"TRACK a\x00b@x " + BOGUS.encode() + b"\r\n",
              "-BAD NUL octet in command"),
             (b"TRACK \xe9@x " + BOGUS.encode() + b"\r\n",
              "-BAD 8-bit octet in command"),
             (b"TRACK a@x\r" + BOGUS.encode() + b"\r\n",
              "-BAD bare CR in command")]
    for data, want in cases:
        k.send(data)
        assert k.line() == want, data[:30]
        assert k.nothing_pending(0.1)
    k.close()
    k = mtqp(d)
    k.send(b"TRACK a@x\n" + b"QUIT\r\n")
    assert k.line() == "-BAD command not terminated by CRLF"
    k.close()
    # A megabyte without a line end: one -BAD, or a clean close.
    k = mtqp(d)
    try:
        k.send(b"x" * (1 << 20))
        assert k.line() == "-BAD command line too long"
    except (EOFError, ConnectionResetError, BrokenPipeError):
        pass
    k.close()


@hostile()
def mtqp_error_flood_and_never_reads(c, d):
    # Thousands of bad commands in one write: MTQP_SERVER_ERRORS_MAX (10)
    # -BAD answers, then the session is closed.
    k = mtqp(d)
    k.send(b"BOGUS\r\n" * 5000)
    lines = []
    try:
        while True:
            lines.append(k.line())
    except (EOFError, ConnectionResetError):
        pass
    assert 1 <= len(lines) <= 11, len(lines)
    assert all(ln.startswith("-BAD") or ln.startswith("-ERR")
               for ln in lines), lines
    # A client that writes QUITless TRACKs and never reads.
    hog = mtqp(d)
    hog.sock.setblocking(False)
    end = time.monotonic() + 3
    while time.monotonic() < end:
        try:
            hog.sock.send(b"TRACK a@x " + BOGUS.encode() + b"\r\n")
        except (BlockingIOError, BrokenPipeError, ConnectionResetError):
            break
    other = mtqp(d)
    other.send("QUIT\r\n")
    assert other.line().startswith("+OK")
    hog.close()


@hostile(tls=True)
def mtqp_starttls_plaintext_injection(c, d):
    k = mtqp(d)
    envid, sec = tracked_message(d)
    k.send("STARTTLS mx.test\r\nTRACK %s %s\r\n" % (envid, sec))
    st = k.line()
    if st.startswith("+OK"):
        # The pipelined TRACK must not be answered, in plaintext or in
        # TLS: discarded (or the session closed).
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            t = ctx.wrap_socket(k.sock, server_hostname="mx.test")
            t.settimeout(0.5)
            try:
                got = t.recv(4096)
            except (socket.timeout, ssl.SSLError):
                got = b""
            assert b"+OK+" not in got, got
            t.close()
        except (ssl.SSLError, OSError):
            pass
    else:
        assert st.startswith("-"), st
        assert k.nothing_pending(0.3) or not k.buf.startswith(b"+OK+"), \
            k.buf
    k = mtqp(d)
    k.send("STARTTLS mx.test\r\n")
    assert k.line().startswith("+OK")
    k.send("TRACK %s %s\r\n" % (envid, sec))  # plaintext, not a handshake
    assert k.eof()
    assert b"+OK+" not in k.buf, k.buf


@hostile()
def mtqp_track_brute_force(c, d):
    envid, sec = tracked_message(d)
    k = mtqp(d)
    answers = []
    slow = []
    for i in range(14):  # MTQP_SERVER_FAIL_BURST (10) + 4
        guess = base64.b64encode(os.urandom(32)).decode()
        t0 = time.monotonic()
        k.send("TRACK %s %s\r\n" % (envid, guess))
        answers.append(k.mtqp())
        slow.append(time.monotonic() - t0)
        if len(set(map(str, answers))) != 1 or answers[0][0].startswith(
                "-BAD"):
            break
    assert len(set(map(str, answers))) == 1, answers  # same bytes
    assert answers[0][0].startswith("-ERR/noinfo"), answers[0]
    assert len(answers) == 14
    # The tries past the burst are delayed (MTQP_SERVER_FAIL_DELAY 2 s):
    # a lower bound only.
    assert sum(slow[10:]) >= 4 * 1.5, slow
    print("    14 wrong secrets: one answer; tries 11-14 took %s s"
          % ", ".join("%.1f" % x for x in slow[10:]))
    k.close()


if __name__ == "__main__":
    suite.main()
