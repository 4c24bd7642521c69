#!/usr/bin/env python3
"""The tracking store seen from outside, against a real msgtrkd:

- TRACK timing: a known envid with a wrong secret costs what an unknown
  envid costs (the store looks messages up by envid AND certifier, so the
  wrong secret is one index probe that finds nothing, however many
  messages and recipients the envid has).  Medians over 200 tries each,
  a generous bound (3x or 300 us, whichever is larger), numbers printed.
- msgtrk log run as root next to a daemon that runs as the user msgtrk
  leaves nothing root-owned in data_dir (it opens the store read-only,
  as data_dir's owner), with the daemon running and with it stopped, and
  the daemon still commits afterwards.
- msgtrk log on a data_dir without a store: exit 1, "no tracking store",
  and nothing created.
- The daemon's tracking.db, -wal and -shm are 0600.

    MSGTRK_BUILD=build-asan python3 tests/integration/test_store_integrity.py
"""

import base64
import hashlib
import os
import pwd
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import MSGTRK, Msgtrkd, Suite, WAIT, free_port, wait_for  # noqa
from harness import wait_port  # noqa: E402

suite = Suite("store_integrity")

# The TRACK timing case: messages under the envid probed, recipients
# each, tries per kind.
T_MSGS = 64
T_RCPTS = 100
T_TRIES = 200


class Raw:
    """CRLF lines over a socket (SMTP and MTQP)."""

    def __init__(self, port, src=None):
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=WAIT,
            source_address=(src, 0) if src else None)
        self.f = self.sock.makefile("rb")
        self.greeting = self.line()

    def line(self):
        ln = self.f.readline()
        if not ln:
            raise EOFError("closed")
        return ln.decode("latin-1").rstrip("\r\n")

    def reply(self):
        ln = self.line()
        while len(ln) > 3 and ln[3] == "-":
            ln = self.line()
        return ln

    def send(self, text):
        self.sock.sendall(text.encode() if isinstance(text, str) else text)

    def close(self):
        self.f.close()
        self.sock.close()


def secret_pair():
    a = os.urandom(32)
    cert = base64.b64encode(hashlib.sha1(a).digest()).decode().rstrip("=")
    return base64.b64encode(a).decode(), cert


def queued_daemon(c, **extra):
    """A msgtrkd whose mail stays queued (routed to a closed port)."""
    routes = c.write("routes", "*  [127.0.0.1]:%d\n" % free_port())
    conf = dict(routes=routes, retry_schedule="1h")
    conf.update(extra)
    d = Msgtrkd(c, conf)
    d.start()
    c.on_cleanup(d.stop)
    return d


def send_tracked(d, envid, cert, nrcpt=1, rcpt_fmt="r%d@dest.test"):
    """One message with envid and certifier to nrcpt recipients, the
    commands pipelined (RFC 2920)."""
    r = Raw(d.smtp_port)
    assert r.greeting.startswith("220"), r.greeting
    r.send("EHLO client.test\r\n")
    assert r.reply().startswith("250")
    cmds = ["MAIL FROM:<a@client.test> ENVID=%s MTRK=%s:86400" % (envid,
                                                                 cert)]
    cmds += ["RCPT TO:<%s>" % (rcpt_fmt % i) for i in range(nrcpt)]
    cmds.append("DATA")
    r.send("".join(x + "\r\n" for x in cmds))
    for x in cmds[:-1]:
        got = r.reply()
        assert got.startswith("250"), (x, got)
    assert r.reply().startswith("354")
    r.send("Subject: t\r\n\r\nhello\r\n.\r\n")
    got = r.reply()
    assert got.startswith("250 2.0.0"), got
    r.send("QUIT\r\n")
    r.close()


def rows(d, sql):
    got = d.query(sql)
    return got[0]["n"] if got else -1


@suite.case
def track_wrong_secret_costs_what_unknown_costs(c):
    mport = free_port()
    d = queued_daemon(c, mtqp_listen="127.0.0.1:%d" % mport)
    wait_port(mport)
    envid = "v%s@client.test" % os.urandom(6).hex()
    sec, cert = secret_pair()
    for _ in range(T_MSGS):
        send_tracked(d, envid, cert, T_RCPTS)
    wait_for(lambda: rows(d, "SELECT count(*) AS n FROM rcpt")
             == T_MSGS * T_RCPTS, timeout=60, what="every recipient stored")
    # The right secret finds the messages (the envid is known).
    k = Raw(mport)
    k.send("TRACK %s %s\r\n" % (envid, sec))
    assert k.line().startswith("+OK+")
    k.close()
    # 8 tries per source address (under the failed-TRACK burst of 10),
    # alternating known-envid/wrong-secret and unknown-envid.
    tw, tu = [], []
    nsrc = (2 * T_TRIES + 7) // 8
    for i in range(nsrc):
        k = Raw(mport, src="127.0.5.%d" % (i + 1))
        assert k.greeting.startswith("+OK"), k.greeting
        if k.greeting.startswith("+OK+"):
            while k.line() != ".":
                pass
        for j in range(8):
            guess = base64.b64encode(os.urandom(32)).decode()
            line = ("TRACK %s %s\r\n" % (envid, guess) if j % 2 == 0 else
                    "TRACK u%d.%d%s %s\r\n" % (i, j, envid, guess))
            t0 = time.perf_counter()
            k.send(line)
            ans = k.line()
            (tw if j % 2 == 0 else tu).append(time.perf_counter() - t0)
            assert ans.startswith("-ERR"), ans
        k.close()
    tw, tu = tw[:T_TRIES], tu[:T_TRIES]
    mw, mu = statistics.median(tw), statistics.median(tu)
    print("    TRACK %d msgs x %d rcpts under the envid, %d tries each: "
          "median known-envid/wrong-secret %.1f us, unknown-envid %.1f us "
          "(ratio %.2f)" % (T_MSGS, T_RCPTS, len(tw), mw * 1e6, mu * 1e6,
                            mw / mu))
    lo, hi = min(mw, mu), max(mw, mu)
    assert hi < max(3 * lo, lo + 0.0003), (mw, mu)


def owned_by_root(top):
    bad = []
    for dirpath, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            if os.lstat(p).st_uid == 0:
                bad.append(p)
    return bad


def msgtrk_log(d):
    p = subprocess.run([MSGTRK, "log", "-c", d.conf_file, "--json"],
                       capture_output=True, timeout=WAIT * 3)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@suite.case
def log_as_root_leaves_nothing_root_owned(c):
    if os.geteuid() != 0:
        raise AssertionError("this case needs root (the daemon drops to "
                             "msgtrk, msgtrk log runs as root)")
    pw = pwd.getpwnam("msgtrk")
    d = queued_daemon(c)
    sec, cert = secret_pair()
    send_tracked(d, "one@client.test", cert)
    wait_for(lambda: rows(d, "SELECT count(*) AS n FROM msg") == 1,
             what="first message stored")
    assert os.stat(d.data()).st_uid == pw.pw_uid
    # Daemon running.
    rc, out, err = msgtrk_log(d)
    assert rc == 0 and "one@client.test" in out, (rc, out, err)
    assert owned_by_root(d.data()) == [], owned_by_root(d.data())
    # Daemon stopped: nothing holds the -wal and -shm open.
    assert d.stop() == 0
    rc, out, err = msgtrk_log(d)
    assert rc == 0 and "one@client.test" in out, (rc, out, err)
    assert owned_by_root(d.data()) == [], owned_by_root(d.data())
    # The daemon starts again and still commits to the store.
    d.start()
    c.on_cleanup(d.stop)
    send_tracked(d, "two@client.test", cert)
    wait_for(lambda: rows(d, "SELECT count(*) AS n FROM msg") == 2,
             what="second message stored")
    rc, out, err = msgtrk_log(d)
    assert rc == 0 and "two@client.test" in out, (rc, out, err)
    assert owned_by_root(d.data()) == [], owned_by_root(d.data())
    for n in ("tracking.db", "tracking.db-wal", "tracking.db-shm"):
        p = d.data(n)
        if os.path.exists(p):
            st = os.stat(p)
            assert st.st_mode & 0o777 == 0o600, (n, oct(st.st_mode))
            assert st.st_uid == pw.pw_uid, (n, st.st_uid)


@suite.case
def log_without_store(c):
    d = Msgtrkd(c, {})
    os.makedirs(d.data(), mode=0o755)
    d.write_conf()
    rc, out, err = msgtrk_log(d)
    assert rc == 1, (rc, out, err)
    assert "no tracking store at %s" % d.data("tracking.db") in err, err
    assert out == "", out
    assert os.listdir(d.data()) == [], os.listdir(d.data())


if __name__ == "__main__":
    suite.main()
