#!/usr/bin/env python3
"""Connection limits at their real values (issue 6: "Limits on connections
overall and per client address, with 421"), and msgtrkd's own descriptor
limit that lets it reach them.

SMTP_SESSIONS_MAX (src/smtp/smtp.h, 10,000) idle SMTP sessions and
MTQP_SERVER_SESSIONS_MAX (src/mtqp/mtqp_server.h, 1,000) idle MTQP
sessions are opened from many loopback source addresses (all of 127/8 is
local on Linux), below each per-address limit, so only the overall limit
can refuse the next connection: it gets `421 4.7.0` (SMTP) or
`-TEMP/MTQP/unavailable` (MTQP) and is closed.  Once some sessions are
closed, a normal session works again.  msgtrkd is started with a soft
RLIMIT_NOFILE of 1024 and must raise it itself (src/msgtrkd/main.c);
started as an unprivileged user under a low hard limit, it says so in a
warning and keeps serving.

    MSGTRK_BUILD=build-asan python3 tests/integration/test_limits.py [CASE...]
"""

import os
import pwd
import re
import resource
import selectors
import socket
import subprocess
import time

import harness
from harness import Msgtrkd, Suite, free_port, wait_for, wait_port
from test_hostile import Raw, secret_pair

suite = Suite("limits")

# The limits under test, read from the sources so that the test follows
# them: src/smtp/smtp.h, src/mtqp/mtqp_server.h, and what msgtrkd must
# raise RLIMIT_NOFILE to (src/msgtrkd/main.c NOFILE_WANT: every kind of
# session + DELIVERY_CONN_MAX + the HTTP connections and trail followers +
# a margin).


def c_define(path, name):
    with open(os.path.join(harness.TOP, path)) as f:
        m = re.search(r"^#define %s (\d+)" % name, f.read(), re.M)
    assert m, "%s not defined in %s" % (name, path)
    return int(m.group(1))


SMTP_SESSIONS_MAX = c_define("src/smtp/smtp.h", "SMTP_SESSIONS_MAX")
SMTP_SESSIONS_PER_ADDR_MAX = c_define("src/smtp/smtp.h",
                                      "SMTP_SESSIONS_PER_ADDR_MAX")
MTQP_SESSIONS_MAX = c_define("src/mtqp/mtqp_server.h",
                             "MTQP_SERVER_SESSIONS_MAX")
MTQP_SESSIONS_PER_ADDR_MAX = c_define("src/mtqp/mtqp_server.h",
                                      "MTQP_SERVER_SESSIONS_PER_ADDR_MAX")
NOFILE_WANT = (SMTP_SESSIONS_MAX + MTQP_SESSIONS_MAX
               + c_define("src/delivery/delivery.h", "DELIVERY_CONN_MAX")
               + c_define("src/http/http.h", "HTTP_CONNS_MAX")
               + c_define("src/http/http.h", "HTTP_TRAILS_MAX")
               + c_define("src/msgtrkd/main.c", "NOFILE_MARGIN"))
# Connections in flight (not yet greeted) at a time: below the listen
# backlog of both servers (511), so none is dropped by the kernel.
BURST = 256
# Bound on setting up all the sessions (ASan build, 2 shared cores).
SETUP_WAIT = 180.0
QUEUED = re.compile(r"^250 2\.0\.0 Ok: queued as [0-9A-Za-z]{1,32}$")
SMTP_REFUSED = "421 4.7.0 mx.test Error: too many connections"
MTQP_REFUSED = "-TEMP/MTQP/unavailable too many connections"


def raise_own_nofile(n):
    """This process holds n client sockets and a few more."""
    want = n + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (want, max(hard, want)))


def source(net, k):
    """The k-th loopback source address of 127.<net>.0.0/16 (never a .0
    or a .255)."""
    return "127.%d.%d.%d" % (net, k // 254, k % 254 + 1)


def open_idle(port, n, per_addr, net, greeting):
    """Opens n connections to 127.0.0.1:port, per_addr from each source
    address source(net, 0), source(net, 1)...; returns the sockets once
    each has received a first line for which greeting(line) is true.
    Bounded by SETUP_WAIT; raises AssertionError on a wrong greeting, a
    close, or the time limit."""
    sel = selectors.DefaultSelector()
    socks, bufs = [], {}
    end = time.monotonic() + SETUP_WAIT
    pending = i = 0
    try:
        while i < n or pending:
            while i < n and pending < BURST:
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((source(net, i // per_addr), 0))
                s.setblocking(False)
                err = s.connect_ex(("127.0.0.1", port))
                assert err in (0, 115), os.strerror(err)  # EINPROGRESS
                socks.append(s)
                bufs[s] = b""
                sel.register(s, selectors.EVENT_READ)
                i += 1
                pending += 1
            assert time.monotonic() < end, (
                "%d of %d sessions greeted in %.0fs" %
                (i - pending, n, SETUP_WAIT))
            for key, _ in sel.select(timeout=0.5):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                assert data, "session %d (%s) closed before its greeting" % (
                    socks.index(s), s.getsockname()[0])
                bufs[s] += data
                if b"\r\n" in bufs[s]:
                    line = bufs[s].split(b"\r\n", 1)[0].decode("latin-1")
                    assert greeting(line), "session %d: %r" % (
                        socks.index(s), line)
                    sel.unregister(s)
                    pending -= 1
    except BaseException:
        for s in socks:
            s.close()
        raise
    finally:
        sel.close()
    return socks


def all_quiet(socks):
    """True if no idle session was closed or sent anything more."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    ready = sel.select(timeout=0.5)
    sel.close()
    return not ready


class LowNofile(Msgtrkd):
    """A Msgtrkd started with RLIMIT_NOFILE set to nofile (soft, hard)
    and, with user, as that user (never root, so it cannot raise the hard
    limit)."""

    nofile = (1024, None)
    user = None

    def start(self):
        self.write_conf()
        self.logf = open(self.log_file, "ab")
        soft, hard = self.nofile
        user = pwd.getpwnam(self.user) if self.user else None

        def pre():
            h = hard if hard is not None else \
                resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, h))
            if user is not None:
                os.setgroups([])
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)
        self.proc = subprocess.Popen(
            [harness.MSGTRKD, "-f", "-v", "-c", self.conf_file],
            stdout=self.logf, stderr=self.logf, preexec_fn=pre)
        try:
            wait_port(self.smtp_port)
            wait_port(self.mtqp_port)
        except AssertionError:
            raise AssertionError("msgtrkd did not start:\n" + self.log())


def start(c, nofile, user=None):
    mtqp_port = free_port()
    d = LowNofile(c, dict(local_domains="local.test",
                          mtqp_listen="127.0.0.1:%d" % mtqp_port))
    d.mtqp_port = mtqp_port
    d.nofile = nofile
    d.user = user
    if user is not None:
        pw = pwd.getpwnam(user)
        os.chown(d.dir, pw.pw_uid, pw.pw_gid)  # it makes data_dir there
    d.start()
    c.on_cleanup(d.stop)
    return d


def nofile_of(pid):
    """(soft, hard) "Max open files" of a running process."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no Max open files for %d" % pid)


def tracked(d, src):
    """A normal SMTP transaction from src (MTRK, local delivery); returns
    (envid, secret).  A 421 at connect means the server has not noticed
    closed sessions yet: returns None then."""
    envid = "lim%s@client.test" % os.urandom(5).hex()
    sec, cert = secret_pair()
    r = Raw(d.smtp_port, src=src)
    try:
        if r.greeting.startswith("421 "):
            return None
        assert r.greeting == "220 mx.test ESMTP msgtrk", r.greeting
        assert r.cmd("EHLO client.test").startswith("250-mx.test")
        got = r.cmd("MAIL FROM:<a@client.test> ENVID=%s MTRK=%s:86400"
                    % (envid, cert))
        assert got.startswith("250 2.1.0"), got
        got = r.cmd("RCPT TO:<u@local.test>")
        assert got.startswith("250 2.1.5"), got
        assert r.cmd("DATA").startswith("354")
        r.send("Subject: limits\r\n\r\nhello\r\n.\r\n")
        got = r.reply()
        assert QUEUED.match(got), got
        assert r.cmd("QUIT").startswith("221")
    finally:
        r.close()
    return envid, sec


def track(d, envid, sec, src=None):
    """TRACK from src: the status line, or None on a -TEMP greeting."""
    k = Raw(d.mtqp_port, src=src)
    try:
        if k.greeting.startswith("-TEMP"):
            return None
        assert k.greeting.startswith("+OK"), k.greeting
        if k.greeting.startswith("+OK+"):
            while k.line() != ".":
                pass
        k.send("TRACK %s %s\r\n" % (envid, sec))
        st, data = k.mtqp()
        assert st.startswith("+OK+"), st
        assert any(("Original-Envelope-Id: " + envid) in ln for ln in data)
        k.send("QUIT\r\n")
        return st
    finally:
        k.close()


def refused(port, src, line):
    """A connection from src gets exactly line, then the close."""
    r = Raw(port, src=src, greet=False)
    try:
        got = r.line()
        assert got == line, (got, line)
        assert r.eof(), "not closed after %r" % got
    finally:
        r.close()


def finish(d):
    rc = d.stop()
    log = d.log()
    assert rc == 0, "msgtrkd exited %r:\n%s" % (rc, log[-3000:])
    for bad in ("Sanitizer", "runtime error:", "fatal"):
        assert bad not in log, log[-3000:]


@suite.case
def smtp_ten_thousand_sessions_then_421(c):
    """SMTP_SESSIONS_MAX idle sessions, 50 from each of 200 addresses
    (under SMTP_SESSIONS_PER_ADDR_MAX), with msgtrkd started under a soft
    RLIMIT_NOFILE of 1024: every one is greeted, the next (from a fresh
    address) gets 421 4.7.0 and is closed; after 10 are closed, a whole
    transaction gets its 250 and TRACK answers for it."""
    raise_own_nofile(SMTP_SESSIONS_MAX)
    d = start(c, (1024, None))
    soft, _ = nofile_of(d.proc.pid)
    assert soft >= NOFILE_WANT, (soft, d.log()[-2000:])
    per_addr = SMTP_SESSIONS_PER_ADDR_MAX // 2
    idle = open_idle(d.smtp_port, SMTP_SESSIONS_MAX, per_addr, 101,
                     lambda ln: ln == "220 mx.test ESMTP msgtrk")
    c.on_cleanup(lambda: [s.close() for s in idle])
    print("    %d sessions greeted" % len(idle))
    refused(d.smtp_port, "127.103.0.1", SMTP_REFUSED)
    refused(d.smtp_port, "127.103.0.2", SMTP_REFUSED)
    # The refusal is logged after its line is sent: wait for it.
    want = "smtp refused reason=sessions sessions=%d" % SMTP_SESSIONS_MAX
    wait_for(lambda: want in d.log(), what=want)
    assert "reason=sessions-per-address" not in d.log()
    assert all_quiet(idle), "an idle session was closed or answered"
    for s in idle[:10]:
        s.close()
    got = wait_for(lambda: tracked(d, "127.103.0.3"),
                   what="a session after closing 10")
    assert track(d, *got)
    assert d.proc.poll() is None
    for s in idle:
        s.close()
    finish(d)


@suite.case
def mtqp_thousand_sessions_then_temp(c):
    """MTQP_SERVER_SESSIONS_MAX idle MTQP sessions, 20 from each of 50
    addresses (under MTQP_SERVER_SESSIONS_PER_ADDR_MAX), with msgtrkd
    started under a soft RLIMIT_NOFILE of 1024: every one is greeted, the
    next gets -TEMP/MTQP/unavailable and is closed; after 10 are closed,
    TRACK answers."""
    raise_own_nofile(MTQP_SESSIONS_MAX)
    d = start(c, (1024, None))
    soft, _ = nofile_of(d.proc.pid)
    assert soft >= NOFILE_WANT, (soft, d.log()[-2000:])
    envid, sec = tracked(d, None)
    idle = open_idle(d.mtqp_port, MTQP_SESSIONS_MAX, 20, 102,
                     lambda ln: ln.startswith("+OK"))
    c.on_cleanup(lambda: [s.close() for s in idle])
    print("    %d sessions greeted" % len(idle))
    refused(d.mtqp_port, "127.104.0.1", MTQP_REFUSED)
    want = "mtqp refused reason=sessions sessions=%d" % MTQP_SESSIONS_MAX
    wait_for(lambda: want in d.log(), what=want)
    assert all_quiet(idle), "an idle session was closed or answered"
    for s in idle[:10]:
        s.close()
    wait_for(lambda: track(d, envid, sec, "127.104.0.2"),
             what="TRACK after closing 10")
    # SMTP is unaffected by a full MTQP server.
    assert wait_for(lambda: tracked(d, "127.104.0.3"), what="SMTP")
    for s in idle:
        s.close()
    finish(d)


@suite.case
def nofile_hard_limit_too_low_warns(c):
    """Started as an unprivileged user under a hard RLIMIT_NOFILE of 2048,
    msgtrkd cannot reach its limits: it takes the hard limit, logs a
    warning naming what it wanted, and serves."""
    d = start(c, (1024, 2048), user="msgtrk")
    assert nofile_of(d.proc.pid) == (2048, 2048), nofile_of(d.proc.pid)
    want = "daemon nofile soft=2048 hard=2048 want=%d" % NOFILE_WANT
    assert want in d.log(), d.log()[-2000:]
    envid, sec = tracked(d, None)
    assert track(d, envid, sec)
    finish(d)


if __name__ == "__main__":
    suite.main()
