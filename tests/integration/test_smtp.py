#!/usr/bin/env python3
"""msgtrkd's ESMTP server against real clients on 127.0.0.1: raw sockets
for exact bytes, smtplib, swaks and openssl s_client.

Run: MSGTRK_BUILD=build-h8-asan python3 tests/integration/test_smtp.py [case...]
"""

import os
import re
import signal
import smtplib
import socket
import sqlite3
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Msgtrkd, Suite, WAIT, free_port, wait_for  # noqa: E402

suite = Suite("smtp")

CERT = "A" * 27  # a canonical certifier: 27 base64 chars, last in "AEIM..."
ENVID = "k3j4h5@client.test"
QUEUED = re.compile(r"^250 2\.0\.0 Ok: queued as [0-9A-Za-z]{1,32}$")
EHLO_KEYWORDS = ["PIPELINING", "SIZE 52428800", "8BITMIME",
                 "ENHANCEDSTATUSCODES", "DSN", "MTRK"]


def daemon(c, **conf):
    """A msgtrkd for case c (as root it drops to the user msgtrk)."""
    d = Msgtrkd(c, conf)
    d.start()
    c.on_cleanup(d.stop)
    c.__dict__.setdefault("daemons", []).append(d)
    return d


def case(fn):
    """A suite case that, once fn passed, stops every msgtrkd it started
    and checks that each exited 0 with no sanitizer report (the ASan
    build reports leaks at exit)."""
    def run(c):
        fn(c)
        for d in getattr(c, "daemons", []):
            rc = d.stop()
            assert rc in (0, None), "msgtrkd exited %r:\n%s" % (rc, d.log())
            log = d.log()
            for bad in ("Sanitizer", "runtime error:"):
                assert bad not in log, log
    run.__name__ = fn.__name__
    return suite.case(run)


class Raw:
    """A raw SMTP client: exact bytes out, whole replies in."""

    def __init__(self, port, host="127.0.0.1", greet=True, src=None):
        self.sock = socket.create_connection(
            (host, port), timeout=WAIT,
            source_address=(src, 0) if src else None)
        self.buf = b""
        if greet:
            self.greeting = self.reply()

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; have %r" % self.buf)
            self.buf += chunk
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l.decode("latin-1")

    def reply(self):
        """One reply: its lines joined by newlines."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return "\n".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def eof(self, timeout=WAIT):
        """True if the server closed the connection with nothing more."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        self.buf += data
        return data == b""

    def nothing_pending(self, wait=0.3):
        """True if no reply bytes arrive within wait seconds."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return self.buf == b""
        finally:
            self.sock.settimeout(WAIT)
        self.buf += data
        return False


def session(d, ehlo=True):
    r = Raw(d.smtp_port)
    assert r.greeting == "220 mx.test ESMTP msgtrk", r.greeting
    if ehlo:
        assert r.cmd("EHLO client.test").startswith("250-mx.test")
    return r


def code(reply):
    return reply[:9]


def expect(r, line, want):
    got = r.cmd(line)
    assert got.startswith(want), "%r: got %r, want %r" % (line, got, want)
    return got


def send_message(r, frm="<a@client.test>", rcpts=("<u@local.test>",),
                 body="Subject: t\r\n\r\nhello\r\n", mail_params=""):
    expect(r, "MAIL FROM:%s%s" % (frm, mail_params), "250 2.1.0")
    for rc in rcpts:
        expect(r, "RCPT TO:%s" % rc, "250 2.1.5")
    expect(r, "DATA", "354 ")
    r.send(body + ".\r\n")
    got = r.reply()
    assert QUEUED.match(got), got
    return got.rsplit(" ", 1)[1]


def _tracking_once(d, qid):
    db = sqlite3.connect("file:%s?mode=ro" % d.data("tracking.db"), uri=True)
    try:
        db.row_factory = sqlite3.Row
        m = db.execute("SELECT * FROM msg WHERE qid = ?", (qid,)).fetchone()
        rows = [] if m is None else db.execute(
            "SELECT * FROM rcpt WHERE msg = ? ORDER BY idx",
            (m["id"],)).fetchall()
        return m, rows
    finally:
        db.close()


def tracking(d, qid):
    """The tracking rows of an accepted message qid, read-only: (msg
    row, [rcpt rows]).  The 250 means the record is durable in the
    journal; the store, an index of the journal, follows within
    milliseconds (its applier thread), so this waits for it (bounded)."""
    found = []

    def present():
        found[:] = [_tracking_once(d, qid)]
        return found[0][0] is not None
    try:
        wait_for(present, what="tracking record of %s" % qid)
    except AssertionError:
        pass  # the caller asserts on what is there
    return found[0]


def make_cert(c):
    key, crt = c.path("key.pem"), c.path("cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-days", "2", "-subj", "/CN=mx.test",
                    "-keyout", key, "-out", crt], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=WAIT)
    os.chmod(key, 0o644)
    return crt, key


# --- greeting, EHLO, HELO, sequence ----------------------------------

@case
def ehlo_keywords_in_order(c):
    d = daemon(c, local_domains="local.test")
    r = session(d, ehlo=False)
    lines = r.cmd("EHLO client.test").split("\n")
    assert lines[0] == "250-mx.test", lines
    kws = [l[4:] for l in lines[1:]]
    assert kws == EHLO_KEYWORDS, kws  # no STARTTLS without a certificate
    assert all(l.startswith("250-") for l in lines[:-1])
    assert lines[-1] == "250 MTRK"
    assert r.cmd("QUIT") == "221 2.0.0 Bye"
    assert r.eof()
    wait_for(lambda: "smtp disconnect reason=quit commands=2" in d.log())
    assert "smtp helo helo=client.test" in d.log()
    assert "smtp connect addr=127.0.0.1" in d.log()


@case
def command_sequence(c):
    d = daemon(c, local_domains="local.test")
    r = session(d, ehlo=False)
    expect(r, "MAIL FROM:<a@client.test>", "503 5.5.1")
    expect(r, "MAIL FROM:<a@client.test> SIZE=10", "503 5.5.1")
    expect(r, "RCPT TO:<u@local.test>", "503 5.5.1")
    expect(r, "DATA", "503 5.5.1")
    expect(r, "NOOP", "250 2.0.0 Ok")
    expect(r, "VRFY u@local.test", "252 2.5.0")
    expect(r, "VRFY", "501 5.5.4")
    expect(r, "EHLO", "501 5.5.4")
    expect(r, "FOO bar", "500 5.5.1")
    expect(r, "EHLO client.test", "250-mx.test")
    expect(r, "RCPT TO:<u@local.test>", "503 5.5.1")
    expect(r, "MAIL FROM:<a@client.test>", "250 2.1.0")
    expect(r, "DATA", "503 5.5.1")
    expect(r, "MAIL FROM:<b@client.test>", "503 5.5.1")  # nested
    expect(r, "RSET", "250 2.0.0 Ok")
    expect(r, "RCPT TO:<u@local.test>", "503 5.5.1")  # RSET ended it
    expect(r, "RSET extra", "501 5.5.4")
    send_message(r)
    expect(r, "QUIT", "221 2.0.0 Bye")
    wait_for(lambda: "reason=need-mail" in d.log())
    assert "smtp reject code=503 status=5.5.1 reason=nested-mail" in d.log()


@case
def helo_session_refuses_dsn_and_mtrk(c):
    d = daemon(c, local_domains="local.test")
    r = session(d, ehlo=False)
    assert r.cmd("HELO client.test") == "250 mx.test"
    expect(r, "MAIL FROM:<a@client.test> ENVID=%s" % ENVID, "555 5.5.4")
    expect(r, "MAIL FROM:<a@client.test> MTRK=%s" % CERT, "555 5.5.4")
    expect(r, "MAIL FROM:<a@client.test> RET=FULL", "555 5.5.4")
    expect(r, "MAIL FROM:<a@client.test> SIZE=100", "555 5.5.4")
    expect(r, "MAIL FROM:<a@client.test>", "250 2.1.0")
    expect(r, "RCPT TO:<u@local.test> NOTIFY=SUCCESS", "555 5.5.4")
    expect(r, "RCPT TO:<u@local.test> ORCPT=rfc822;u@local.test",
           "555 5.5.4")
    expect(r, "RCPT TO:<u@local.test>", "250 2.1.5")
    expect(r, "DATA", "354 ")
    r.send("Subject: helo\r\n\r\nx\r\n.\r\n")
    assert QUEUED.match(r.reply())


# --- MTRK, DSN parameters, tracking records ---------------------------

@case
def mtrk_accepted_and_retention(c):
    # remote.test goes to a port nobody listens on: its recipient stays
    # queued, so its Will-Retry-Until can be read whenever the store has
    # the record (the store follows the journal, after the 250).
    routes = c.write("routes", "remote.test [127.0.0.1]:1\n")
    d = daemon(c, local_domains="local.test", mtrk_default_timeout="9d",
               mtrk_max_timeout="30d", routes=routes)
    r = session(d)
    forms = [
        ("", 9 * 86400),  # no timeout: the default
        (":100", 100),
        (":0", 0),  # valid, no meaning: kept only while queued
        (":999999999", 30 * 86400),  # silently capped
    ]
    for i, (suffix, keep) in enumerate(forms):
        envid = "e%d.%s" % (i, ENVID)
        qid = send_message(r, mail_params=" ENVID=%s MTRK=%s%s" % (
            envid, CERT, suffix), rcpts=("<u@local.test>",
                                         "<v@remote.test> NOTIFY=SUCCESS,DELAY"
                                         " ORCPT=rfc822;V+2Bx@remote.test"))
        # The 250 means the tracking record is there already.
        m, rows = tracking(d, qid)
        assert m is not None, qid
        assert m["envid"] == envid and m["certifier"] == CERT
        assert m["sender"] == "a@client.test"
        assert m["reporting_mta"] == "mx.test"
        assert m["expires"] - m["arrival"] == keep, (suffix, dict(m))
        assert len(rows) == 2
        assert rows[0]["orcpt"] == "rfc822;u@local.test"
        assert rows[1]["orcpt"] == "rfc822;V+x@remote.test"
        # Will-Retry-Until while queued (the local recipient may be
        # delivered by now).
        assert rows[1]["will_retry"] - m["arrival"] == 5 * 86400
    # Without MTRK the record exists too, with no certifier.
    qid = send_message(r)
    m, rows = tracking(d, qid)
    assert m is not None and m["certifier"] == "" and len(rows) == 1
    log = d.log()
    assert "mtrk=yes" in log and "mtrk=no" in log
    assert CERT not in log  # never the certifier in the log
    assert re.search(r"smtp queued qid=%s from=<a@client.test> nrcpt=1 "
                     r"size=\d+" % qid, log)


@case
def mtrk_rejections(c):
    d = daemon(c)
    r = session(d)
    e = " ENVID=%s " % ENVID
    bad = [
        ("bad length 26", e + "MTRK=" + "A" * 26, "501 5.5.4"),
        ("bad length 28", e + "MTRK=" + "A" * 28, "501 5.5.4"),
        ("non-canonical last", e + "MTRK=" + "A" * 26 + "B", "501 5.5.4"),
        ("padding", e + "MTRK=" + "A" * 26 + "=", "501 5.5.4"),
        ("padding after 27", e + "MTRK=" + CERT + "=", "501 5.5.4"),
        ("bad char", e + "MTRK=" + "A" * 26 + "!", "501 5.5.4"),
        ("empty", e + "MTRK=", "501 5.5.4"),
        ("timeout letters", e + "MTRK=" + CERT + ":1a", "501 5.5.4"),
        ("timeout empty", e + "MTRK=" + CERT + ":", "501 5.5.4"),
        ("timeout 10 digits", e + "MTRK=" + CERT + ":1234567890",
         "501 5.5.4"),
        ("timeout sign", e + "MTRK=" + CERT + ":-5", "501 5.5.4"),
        ("second colon", e + "MTRK=" + CERT + ":10:20", "501 5.5.4"),
        ("duplicate", e + "MTRK=%s MTRK=%s" % (CERT, CERT), "501 5.5.4"),
        ("no envid", " MTRK=" + CERT, "501 5.5.4"),
        ("envid not unique form", " ENVID=abc MTRK=" + CERT, "501 5.5.4"),
        ("envid no local", " ENVID=@client.test MTRK=" + CERT, "501 5.5.4"),
        ("unknown param", " FOO=bar", "555 5.5.4"),
    ]
    for name, params, want in bad:
        got = r.cmd("MAIL FROM:<a@client.test>" + params)
        assert got.startswith(want), (name, got)
        assert "Ok" not in got
    # A refused MAIL leaves no transaction: a good one follows.
    expect(r, "MAIL FROM:<a@client.test>%sMTRK=%s" % (e, CERT), "250 2.1.0")
    wait_for(lambda: "reason=mtrk-invalid" in d.log())


@case
def dsn_parameters(c):
    d = daemon(c, local_domains="local.test")
    r = session(d)  # one session each: fewer than 20 errors in each
    mail_cases = [
        ("RET=FULL", "250 2.1.0"), ("RET=hdrs", "250 2.1.0"),
        ("RET=ALL", "501 5.5.4"), ("RET=FULL RET=HDRS", "501 5.5.4"),
        ("ENVID=abc", "250 2.1.0"), ("ENVID=a+2Bb", "250 2.1.0"),
        ("ENVID=a+2bb", "501 5.5.4"), ("ENVID=a+00", "501 5.5.4"),
        ("ENVID=" + "x" * 101, "501 5.5.4"), ("ENVID=" + "x" * 100,
                                              "250 2.1.0"),
        ("ENVID=a ENVID=b", "501 5.5.4"), ("ENVID=", "501 5.5.4"),
        ("BODY=8BITMIME", "250 2.1.0"), ("BODY=7BIT", "250 2.1.0"),
        ("BODY=BINARYMIME", "501 5.5.4"),
        ("SIZE=1000", "250 2.1.0"), ("SIZE=abc", "501 5.5.4"),
        ("NOTIFY=SUCCESS", "555 5.5.4"),  # a RCPT parameter
    ]
    for params, want in mail_cases:
        got = r.cmd("MAIL FROM:<a@client.test> " + params)
        assert got.startswith(want), (params, got)
        if got.startswith("250"):
            expect(r, "RSET", "250")
    r = session(d)
    expect(r, "MAIL FROM:<a@client.test>", "250 2.1.0")
    rcpt_cases = [
        ("NOTIFY=SUCCESS,FAILURE,DELAY", "250 2.1.5"),
        ("NOTIFY=never", "250 2.1.5"), ("NOTIFY=NEVER,SUCCESS", "501 5.5.4"),
        ("NOTIFY=", "501 5.5.4"), ("NOTIFY=SOMETIMES", "501 5.5.4"),
        ("NOTIFY=DELAY NOTIFY=DELAY", "501 5.5.4"),
        ("ORCPT=rfc822;u@local.test", "250 2.1.5"),
        ("ORCPT=x-unknown;whatever", "250 2.1.5"),
        ("ORCPT=rfc822", "501 5.5.4"), ("ORCPT=;u@local.test", "501 5.5.4"),
        ("ORCPT=rfc822;", "501 5.5.4"),
        ("ORCPT=rfc822;" + "x" * 500, "501 5.5.4"),
        ("ORCPT=rfc822;a ORCPT=rfc822;b", "501 5.5.4"),
        ("RET=FULL", "555 5.5.4"),  # a MAIL parameter
    ]
    for params, want in rcpt_cases:
        got = r.cmd("RCPT TO:<u@local.test> " + params)
        assert got.startswith(want), (params, got)
    expect(r, "DATA", "354")
    r.send("Subject: dsn\r\n\r\nx\r\n.\r\n")
    assert QUEUED.match(r.reply())


@case
def pipelined_transaction(c):
    d = daemon(c, local_domains="local.test")
    r = Raw(d.smtp_port)
    r.send("EHLO client.test\r\nMAIL FROM:<a@client.test> ENVID=%s MTRK=%s\r\n"
           "RCPT TO:<u@local.test>\r\nRCPT TO:<nobody@elsewhere.test>\r\n"
           "RCPT TO:<v@local.test>\r\nDATA\r\nSubject: p\r\n\r\nbody\r\n"
           ".\r\nNOOP\r\nMAIL FROM:<b@client.test>\r\nRSET\r\nQUIT\r\n"
           % (ENVID, CERT))
    replies = [r.reply() for _ in range(11)]
    assert replies[0].startswith("250-mx.test")
    assert [code(x) for x in replies[1:5]] == [
        "250 2.1.0", "250 2.1.5", "250 2.1.5", "250 2.1.5"], replies
    assert replies[5].startswith("354 ")
    assert QUEUED.match(replies[6]), replies[6]
    assert replies[7:] == ["250 2.0.0 Ok", "250 2.1.0 Ok", "250 2.0.0 Ok",
                           "221 2.0.0 Bye"], replies
    assert r.eof()


@case
def smtplib_and_swaks(c):
    d = daemon(c, local_domains="local.test")
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=WAIT) as s:
        code_, _ = s.ehlo("client.test")
        assert code_ == 250
        for kw in ("pipelining", "size", "8bitmime", "enhancedstatuscodes",
                   "dsn", "mtrk"):
            assert s.has_extn(kw), kw
        assert s.esmtp_features["size"] == "52428800"
        refused = s.sendmail("a@client.test", ["u@local.test"],
                             b"Subject: smtplib\r\n\r\nhi\r\n",
                             mail_options=["ENVID=" + ENVID, "MTRK=" + CERT],
                             rcpt_options=["NOTIFY=SUCCESS"])
        assert refused == {}
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port",
                        str(d.smtp_port), "--from", "a@client.test",
                        "--to", "u@local.test", "--helo", "client.test",
                        "--pipeline"],
                       capture_output=True, text=True, timeout=WAIT)
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"<[-~]\s+250 2\.0\.0 Ok: queued as [0-9A-Za-z]+",
                     p.stdout), p.stdout


# --- STARTTLS ---------------------------------------------------------

@case
def starttls(c):
    crt, key = make_cert(c)
    d = daemon(c, local_domains="local.test", tls_cert_file=crt,
               tls_key_file=key)
    r = session(d, ehlo=False)
    lines = r.cmd("EHLO client.test").split("\n")
    assert [l[4:] for l in lines[1:]] == EHLO_KEYWORDS + ["STARTTLS"], lines
    assert r.cmd("STARTTLS now") .startswith("501 5.5.4")
    expect(r, "MAIL FROM:<a@client.test>", "250 2.1.0")  # dropped by TLS
    assert r.cmd("STARTTLS") == "220 2.0.0 Ready to start TLS"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    r.sock = ctx.wrap_socket(r.sock, server_hostname="mx.test")
    assert r.sock.version() in ("TLSv1.2", "TLSv1.3")
    # RFC 3207 §4.2: the session starts over.
    expect(r, "MAIL FROM:<a@client.test>", "503 5.5.1")
    expect(r, "RCPT TO:<u@local.test>", "503 5.5.1")
    lines = r.cmd("EHLO client.test").split("\n")
    assert [l[4:] for l in lines[1:]] == EHLO_KEYWORDS, lines
    expect(r, "STARTTLS", "503 5.5.1")
    send_message(r)
    expect(r, "QUIT", "221")
    wait_for(lambda: re.search(r"smtp starttls version=TLSv1\.[23] "
                               r"cipher=\S+", d.log()))


@case
def starttls_pipelined_plaintext_refused(c):
    crt, key = make_cert(c)
    d = daemon(c, local_domains="local.test", tls_cert_file=crt,
               tls_key_file=key)
    r = session(d)
    # CVE-2011-0411: the RSET must never run, before or after TLS.
    r.send("STARTTLS\r\nRSET\r\n")
    assert r.reply().startswith("503 5.5.1")
    assert r.nothing_pending()
    expect(r, "NOOP", "250 2.0.0 Ok")  # the session goes on, in plaintext
    r2 = session(d)
    r2.send("STARTTLS\r\nMAIL FROM:<evil@client.test>\r\n")
    assert r2.reply().startswith("503 5.5.1")
    assert r2.nothing_pending()
    expect(r2, "RCPT TO:<u@local.test>", "503 5.5.1")  # MAIL never ran
    wait_for(lambda: "reason=starttls-pipelined" in d.log())


@case
def starttls_tls11_refused(c):
    crt, key = make_cert(c)
    d = daemon(c, tls_cert_file=crt, tls_key_file=key)
    p = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % d.smtp_port, "-starttls", "smtp",
                        "-tls1_1"], input="", capture_output=True, text=True,
                       timeout=WAIT)
    assert "Cipher is (NONE)" in p.stdout or p.returncode != 0, p.stdout
    assert "New, TLSv1.1" not in p.stdout
    p = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % d.smtp_port, "-starttls", "smtp",
                        "-tls1_2"], input="QUIT\r\n", capture_output=True,
                       text=True, timeout=WAIT)
    assert "TLSv1.2" in p.stdout, p.stdout + p.stderr
    wait_for(lambda: "reason=tls-error" in d.log())


# --- DATA: smuggling, size -------------------------------------------

@case
def smuggling_never_ends_data(c):
    d = daemon(c, local_domains="local.test")
    r = session(d)
    for fake in ("\n.\n", "\r.\n", "\n.\r\n", "\r\n.\n", "\r.\r\n"):
        expect(r, "MAIL FROM:<a@client.test>", "250 2.1.0")
        expect(r, "RCPT TO:<u@local.test>", "250 2.1.5")
        expect(r, "DATA", "354 ")
        r.send("Subject: s\r\n\r\nhello" + fake +
               "MAIL FROM:<evil@client.test>\r\nRCPT TO:<x@local.test>\r\n"
               "DATA\r\nsmuggled\r\n.\r\n")
        got = r.reply()
        assert got.startswith("550 5.5.2"), (fake, got)
        assert r.nothing_pending(0.2), fake  # one reply: nothing smuggled
    send_message(r)
    assert d.log().count("reason=bare-newline") == 5


@case
def size_limits(c):
    d = daemon(c, local_domains="local.test", max_message_size="1K")
    r = session(d, ehlo=False)
    assert "250-SIZE 1024" in r.cmd("EHLO client.test").split("\n")
    expect(r, "MAIL FROM:<a@client.test> SIZE=1025", "552 5.3.4")
    expect(r, "MAIL FROM:<a@client.test> SIZE=99999999999999999999",
           "552 5.3.4")
    expect(r, "MAIL FROM:<a@client.test> SIZE=1024", "250 2.1.0")
    expect(r, "RCPT TO:<u@local.test>", "250 2.1.5")
    expect(r, "DATA", "354 ")
    r.send("Subject: big\r\n\r\n" + ("x" * 70 + "\r\n") * 40 + ".\r\n")
    assert r.reply().startswith("552 5.3.4")
    expect(r, "NOOP", "250")  # in step after the dot
    send_message(r, body="Subject: small\r\n\r\n" + "y" * 900 + "\r\n")


# --- relay control and recipients ------------------------------------

@case
def no_open_relay(c):
    d = daemon(c, local_domains="local.test", relay_networks="10.0.0.0/8")
    r = session(d)
    expect(r, "MAIL FROM:<a@client.test>", "250 2.1.0")
    expect(r, "RCPT TO:<v@remote.test>", "550 5.7.1 Relay access denied")
    expect(r, "RCPT TO:<v@[127.0.0.1]>", "550 5.7.1")
    expect(r, "RCPT TO:<v@local.test.remote>", "550 5.7.1")
    expect(r, "RCPT TO:<u@Local.Test>", "250 2.1.5")
    expect(r, "RCPT TO:<Postmaster>", "250 2.1.5")
    expect(r, "RCPT TO:<@remote.test:u@local.test>", "250 2.1.5")
    expect(r, "RCPT TO:<@local.test:v@remote.test>", "550 5.7.1")
    expect(r, "DATA", "354")
    r.send("Subject: r\r\n\r\nx\r\n.\r\n")
    assert QUEUED.match(r.reply())
    wait_for(lambda: "smtp rcpt to=<v@remote.test> result=relay-denied"
             in d.log())
    # The default relay_networks (127.0.0.0/8) lets loopback relay.
    d2 = daemon(c, local_domains="local.test")
    r2 = session(d2)
    expect(r2, "MAIL FROM:<a@client.test>", "250 2.1.0")
    expect(r2, "RCPT TO:<v@remote.test>", "250 2.1.5")


@case
def local_recipients(c):
    users = c.write("users", "u@local.test\nw@local.test\n")
    d = daemon(c, local_domains="local.test", local_recipients=users)
    r = session(d)
    expect(r, "MAIL FROM:<a@client.test>", "250 2.1.0")
    expect(r, "RCPT TO:<x@local.test>", "550 5.1.1")
    expect(r, "RCPT TO:<u@local.test>", "250 2.1.5")
    expect(r, "RCPT TO:<w@LOCAL.TEST>", "250 2.1.5")
    wait_for(lambda: "smtp rcpt to=<x@local.test> result=unknown-user"
             in d.log())


@case
def too_many_recipients(c):
    d = daemon(c, local_domains="local.test")
    r = session(d)
    expect(r, "MAIL FROM:<a@client.test>", "250 2.1.0")
    r.send("".join("RCPT TO:<u%d@local.test>\r\n" % i for i in range(1001)))
    replies = [r.reply() for _ in range(1001)]
    assert all(x == "250 2.1.5 Ok" for x in replies[:1000])
    assert replies[1000].startswith("452 4.5.3 Too many recipients")
    expect(r, "DATA", "354")
    r.send("Subject: many\r\n\r\nx\r\n.\r\n")
    assert QUEUED.match(r.reply())


# --- hostile input ----------------------------------------------------

@case
def too_many_errors(c):
    d = daemon(c)
    r = session(d)
    for i in range(19):
        expect(r, "BOGUS %d" % i, "500 5.5.1")
    r.send("BOGUS last\r\n")
    assert r.reply().startswith("500 5.5.1")
    assert r.reply() == "421 4.7.0 mx.test Error: too many errors"
    assert r.eof()
    wait_for(lambda: "smtp disconnect reason=errors commands=21" in d.log())


@case
def long_lines_nul_and_8bit(c):
    d = daemon(c, local_domains="local.test")
    r = session(d)
    expect(r, "NOOP " + "x" * 600, "500 5.5.2")  # over 512
    expect(r, "MAIL FROM:<a@client.test> " + "X" * 3000, "500 5.5.2")
    expect(r, "NOOP", "250 2.0.0 Ok")  # the session goes on
    r.send(b"NOOP a\x00b\r\n")
    assert r.reply().startswith("501 5.5.2")
    r.send(b"HELO cli\xe9nt.test\r\n")
    assert r.reply().startswith("501 5.5.2")
    r.send(b"NOOP\nNOOP\r\n")  # bare LF: one bad line, then the next
    assert r.reply().startswith("501 5.5.2")
    r.send(b"MAIL FROM:<a@client.test>\r\n")
    assert r.reply().startswith("250 2.1.0")
    wait_for(lambda: "reason=line-too-long" in d.log()
             or "code=500 status=5.5.2" in d.log())


# --- queue, restart, shutdown -----------------------------------------

@case
def received_header_relayed(c):
    """The Received: field we prepend (RFC 5321 §4.4), as the next hop
    sees it."""
    peer = c.peer(ehlo=("PIPELINING", "8BITMIME", "DSN"))
    routes = c.write("routes", "*  [127.0.0.1]:%d\n" % peer.port)
    d = daemon(c, routes=routes)
    r = session(d)
    qid = send_message(r, rcpts=("<v@remote.test>",),
                       body="Subject: rcvd\r\n\r\n..dot\r\nend\r\n")
    data = peer.wait_messages(1)[0]["data"].decode("latin-1")
    first = data.split("\r\n")[:3]
    assert first[0] == "Received: from client.test ([127.0.0.1])", data
    assert first[1] == "\tby mx.test (msgtrk) with ESMTP id %s" % qid, data
    assert re.match(r"^\tfor <v@remote\.test>; \w{3}, \d{1,2} \w{3} \d{4} "
                    r"\d\d:\d\d:\d\d \+0000$", first[2]), data
    assert data.endswith("Subject: rcvd\r\n\r\n.dot\r\nend\r\n"), data

@case
def helo_argument_checked(c):
    """The EHLO/HELO argument goes into our Received: field, so it must be
    a domain (underscores and a trailing dot allowed, as real clients send
    them) or an address literal: anything else gets Postfix's 501 5.5.2
    and the session stays ungreeted.  A recipient that is not plain text
    stays out of the field's "for" clause.  Whatever was tried, the field
    the next hop sees holds no forged clause."""
    peer = c.peer(ehlo=("PIPELINING", "8BITMIME", "DSN"))
    routes = c.write("routes", "*  [127.0.0.1]:%d\n" % peer.port)
    d = daemon(c, routes=routes)
    r = Raw(d.smtp_port)
    forged = "evil) by trusted.example (Postfix) with ESMTPS id X"
    for verb in ("EHLO", "HELO"):
        got = r.cmd("%s %s" % (verb, forged))
        assert got == ("501 5.5.2 <%s>: Helo command rejected: Invalid name"
                       % forged), got
    for bad in ("a;b", "a b", "[1.2.3.4", "x..y", "-x.test", "a(b)",
                "[IPv6:zz::1]", "host.test.."):
        got = r.cmd("EHLO " + bad)
        assert got.startswith("501 5.5.2 <%s>: Helo command rejected"
                              % bad), (bad, got)
    expect(r, "MAIL FROM:<a@client.test>", "503 5.5.1")  # not greeted
    for good in ("my_pc.example", "client.test.", "[127.0.0.1]",
                 "[IPv6:::1]", "localhost"):
        assert r.cmd("EHLO " + good).startswith("250-mx.test"), good
    wait_for(lambda: "reason=invalid-helo" in d.log())
    expect(r, "EHLO client.test", "250-mx.test")
    send_message(r, rcpts=('<"x;by evil.example"@remote.test>',))
    send_message(r, rcpts=("<v@remote.test>",))
    msgs = peer.wait_messages(2)
    for m in msgs:
        data = m["data"].decode("latin-1")
        head = data.split("\r\n\r\n", 1)[0]
        assert "evil" not in head and "trusted.example" not in head, head
        assert head.startswith("Received: from client.test ([127.0.0.1])"), \
            head
    for m in msgs:
        lines = m["data"].decode("latin-1").split("\r\n")
        if "v@remote.test" in m["rcpts"][0]:
            # A plain recipient is named in the "for" clause.
            assert lines[2].startswith("\tfor <v@remote.test>; "), lines
        else:
            # A quoted one is left out: the clause ends with the date.
            assert re.match(r"^\tby mx\.test \(msgtrk\) with ESMTP id "
                            r"\w+; \w{3}, ", lines[1]), lines
            assert lines[2] == "Subject: t", lines


@case
def backscatter_mailbox_refused(c):
    """From an address outside relay_networks, with a forged sender and
    RET=FULL: a local part that local delivery would always refuse (it
    could be read as a path, src/common/mailbox.c) is refused at RCPT with
    550 5.1.3, so nothing is queued and no bounce goes to the forged
    sender.  A well-formed local recipient still gets 250."""
    d = daemon(c, local_domains="local.test", relay_networks="127.0.0.1/32")
    r = Raw(d.smtp_port, src="127.0.0.2")
    expect(r, "EHLO client.test", "250-mx.test")
    expect(r, "MAIL FROM:<victim@other.test> RET=FULL", "250 2.1.0")
    for rcpt in ("<a/b@local.test>", '<"a/b"@local.test>',
                 '<"../etc"@local.test>'):
        got = r.cmd("RCPT TO:%s" % rcpt)
        assert got == ("550 5.1.3 Recipient address rejected: Mailbox name "
                       "not allowed"), (rcpt, got)
    # A leading dot is already not a Dot-string (RFC 5321 §4.1.2): the
    # parser refuses it, 553 5.1.3, at RCPT too.
    got = r.cmd("RCPT TO:<.x@local.test>")
    assert got.startswith("553 5.1.3"), got
    expect(r, "DATA", "503 5.5.1")  # no recipient: nothing to queue
    expect(r, "RCPT TO:<u@local.test>", "250 2.1.5")
    expect(r, "RSET", "250")
    expect(r, "QUIT", "221")
    r.close()
    wait_for(lambda: "smtp disconnect reason=quit" in d.log())
    log = d.log()
    assert log.count("result=mailbox-not-allowed") == 3, log
    assert "smtp queued" not in log and "dsn sent" not in log, log


@case
def restart_keeps_queue(c):
    closed = free_port()
    routes = c.write("routes", "*  [127.0.0.1]:%d\n" % closed)
    d = daemon(c, local_domains="local.test", routes=routes,
               retry_schedule="1h")
    r = session(d)
    q1 = send_message(r, rcpts=("<v@remote.test>",),
                      mail_params=" ENVID=%s MTRK=%s" % (ENVID, CERT))
    q2 = send_message(r, rcpts=("<w@remote.test>",))
    expect(r, "QUIT", "221")
    assert d.stop() == 0
    d.start()
    wait_for(lambda: "daemon started" in d.log().split("daemon stopped")[-1])
    tail = d.log().split("daemon stopped")[-1]
    assert re.search(r"daemon started .*queued=2", tail), tail
    m, rows = tracking(d, q1)
    assert m is not None and m["queued"] == 1
    assert q2 != q1


@case
def sigterm_closes_sessions(c):
    d = daemon(c, local_domains="local.test")
    r = session(d)
    expect(r, "MAIL FROM:<a@client.test>", "250 2.1.0")
    idle = session(d)
    d.proc.send_signal(signal.SIGTERM)
    assert r.reply() == "421 4.3.2 mx.test Service shutting down"
    assert idle.reply() == "421 4.3.2 mx.test Service shutting down"
    assert r.eof() and idle.eof()
    assert d.stop() == 0
    log = d.log()
    assert "daemon stopped" in log
    assert log.count("reason=shutdown") == 2


@case
def sigterm_lets_data_finish(c):
    d = daemon(c, local_domains="local.test")
    r = session(d)
    expect(r, "MAIL FROM:<a@client.test>", "250 2.1.0")
    expect(r, "RCPT TO:<u@local.test>", "250 2.1.5")
    expect(r, "DATA", "354 ")
    r.send("Subject: late\r\n\r\nfirst half\r\n")
    d.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "daemon stopping" in d.log())
    r.send("second half\r\n.\r\nNOOP\r\n")
    assert QUEUED.match(r.reply())
    assert r.reply() == "421 4.3.2 mx.test Service shutting down"
    assert r.eof()
    assert d.stop() == 0
    assert "smtp queued" in d.log() and "daemon stopped" in d.log()


@case
def client_gone_mid_data(c):
    d = daemon(c, local_domains="local.test")
    r = session(d)
    expect(r, "MAIL FROM:<a@client.test>", "250 2.1.0")
    expect(r, "RCPT TO:<u@local.test>", "250 2.1.5")
    expect(r, "DATA", "354 ")
    r.send("Subject: cut\r\n\r\nno end")
    r.close()
    wait_for(lambda: "smtp disconnect reason=eof commands=4" in d.log())
    assert "smtp queued" not in d.log()
    expect(session(d), "NOOP", "250")


@case
def client_that_never_reads(c):
    """Pipelined commands from a client that does not read its replies
    stop being processed once our output is full; the loop serves
    others meanwhile, and every reply comes, in order, once it reads."""
    d = daemon(c)
    hog = session(d)
    hog.sock.setblocking(False)
    chunk = b"NOOP\r\n" * 10000
    sent = 0
    end = time.monotonic() + 5
    while sent < 3 * len(chunk) and time.monotonic() < end:
        try:
            sent += hog.sock.send(chunk)
        except BlockingIOError:
            if sent >= len(chunk):
                break
            time.sleep(0.01)
    other = session(d)
    expect(other, "NOOP", "250 2.0.0 Ok")
    other.cmd("QUIT")
    hog.sock.setblocking(True)
    hog.sock.settimeout(WAIT)
    sent -= sent % 6  # whole NOOP lines only
    want = b"250 2.0.0 Ok\r\n" * (sent // 6)
    got = b""
    while len(got) < len(want):
        data = hog.sock.recv(1 << 20)
        assert data, "closed after %d bytes" % len(got)
        got += data
    assert got[:len(want)] == want


@case
def idle_sessions_memory_and_limit(c):
    """Memory of idle sessions (issue 5: at most 50 KiB each), and the
    per-address limit (SMTP_SESSIONS_PER_ADDR_MAX = 100)."""
    d = daemon(c)

    def rss():
        with open("/proc/%d/status" % d.proc.pid) as f:
            for l in f:
                if l.startswith("VmRSS:"):
                    return int(l.split()[1])
        return 0
    warm = [session(d) for _ in range(10)]
    before = rss()
    conns = [session(d) for _ in range(90)]
    after = rss()
    per = (after - before) * 1024 / 90
    print("    idle session after EHLO: %.0f bytes RSS each" % per)
    assert per < 50 * 1024, per
    over = Raw(d.smtp_port, greet=False)
    assert over.reply() == "421 4.7.0 mx.test Error: too many connections"
    assert over.eof()
    wait_for(lambda: "smtp refused reason=sessions-per-address" in d.log())
    conns[0].close()
    wait_for(lambda: d.log().count("reason=eof") >= 1)
    session(d).cmd("QUIT")  # room again
    for x in conns + warm:
        x.close()


if __name__ == "__main__":
    suite.main()
