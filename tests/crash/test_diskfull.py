#!/usr/bin/env python3
"""Disk full (issue 6) without mount: msgtrkd runs under RLIMIT_FSIZE
(set in the child before exec, with SIGXFSZ ignored as msgtrkd itself
does), so the journal and the store cannot grow past the limit.  Then:
the end of DATA is answered 452/451 (never 250), MTQP keeps answering
for what was accepted, and after a restart without the limit the queue
is intact (every 250'd message is still tracked and gets delivered) and
new mail is accepted.  A real ENOSPC on a small tmpfs is tried too when
`mount -t tmpfs` works here; otherwise that case says it was skipped.
The store alone on a full tmpfs (tracking.db is a symlink to it; the
journal's filesystem is fine): MAIL with MTRK gets 455 4.3.0, TRACK gets
-TEMP, every 250'd message stays in the journal, and once the tmpfs grows
the next store commit catches up without a restart.

    MSGTRK_BUILD=build-asan python3 tests/crash/test_diskfull.py
"""

import errno
import os
import pwd
import re
import resource
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import harness  # noqa: E402
from harness import Msgtrkd, Suite, free_port, wait_for  # noqa: E402
from harness import wait_port  # noqa: E402
from test_hostile import Raw, mtqp, secret_pair  # noqa: E402

suite = Suite("diskfull")
QUEUED = re.compile(r"^250 2\.0\.0 Ok: queued as [0-9A-Za-z]{1,32}$")
LIMIT = 4 << 20  # bytes per file written by msgtrkd


class Limited(Msgtrkd):
    """A Msgtrkd whose files cannot grow past fsize bytes."""

    fsize = None

    def start(self):
        self.write_conf()
        self.logf = open(self.log_file, "ab")
        fsize = self.fsize

        def pre():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            if fsize is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        self.proc = subprocess.Popen(
            [harness.MSGTRKD, "-f", "-v", "-c", self.conf_file],
            stdout=self.logf, stderr=self.logf, preexec_fn=pre)
        wait_port(self.smtp_port)


def send(port, envid, cert, size, rcpt="u@remote.test"):
    """One tracked message (untracked if cert is None) of about size
    bytes: the final reply, or the first one that was not 2xx/354."""
    r = Raw(port)
    try:
        assert r.cmd("EHLO c.test").startswith("250")
        got = r.cmd("MAIL FROM:<a@client.test> ENVID=%s%s"
                    % (envid, "" if cert is None
                       else " MTRK=%s:86400" % cert))
        if not got.startswith("250"):
            return got
        got = r.cmd("RCPT TO:<%s>" % rcpt)
        if not got.startswith("250"):
            return got
        if not r.cmd("DATA").startswith("354"):
            return "no 354"
        r.send("Subject: big\r\nX-Test-Id: %s\r\n\r\n" % envid +
               ("x" * 998 + "\r\n") * (size // 1000) + ".\r\n")
        got = r.reply()
        r.cmd("QUIT")
        return got
    finally:
        r.close()


def track(d, envid, sec):
    k = mtqp(d)
    k.send("TRACK %s %s\r\n" % (envid, sec))
    st, data = k.mtqp()
    k.close()
    return st, data


def fill_and_recover(c, d, peer):
    accepted, refused = [], []
    for i in range(40):
        envid = "df%d-%s@client.test" % (i, os.urandom(3).hex())
        sec, cert = secret_pair()
        got = send(d.smtp_port, envid, cert, 400 * 1000)
        if QUEUED.match(got):
            assert not refused, "250 after a refusal: %s" % got
            accepted.append((envid, sec))
        else:
            assert got[:5] in ("452 4", "451 4"), got
            refused.append(got)
            if len(refused) >= 3:
                break
    print("    %d accepted, then %s" % (len(accepted), refused[:1]))
    assert accepted and refused, (len(accepted), refused)
    assert d.proc.poll() is None, "msgtrkd died:\n" + d.log()[-3000:]
    # MTQP keeps answering for what was accepted.
    st, _ = track(d, *accepted[0])
    assert st.startswith("+OK+") or st.startswith("-TEMP"), st
    rc = d.stop()
    assert rc == 0, "exit %r:\n%s" % (rc, d.log()[-3000:])
    return accepted


@suite.case
def rlimit_fsize_journal_full(c):
    sink = free_port()
    c.write("routes", "*  [127.0.0.1]:%d\n" % sink)
    d = Limited(c, dict(routes=c.path("routes"),
                        mtqp_listen="127.0.0.1:%d" % free_port(),
                        retry_schedule="1s"))
    d.mtqp_port = int(d.conf["mtqp_listen"].rsplit(":", 1)[1])
    d.fsize = LIMIT
    d.start()
    c.on_cleanup(d.stop)
    wait_port(d.mtqp_port)
    accepted = fill_and_recover(c, d, None)
    # Restart without the limit: nothing corrupted, nothing lost.
    d.fsize = None
    d.start()
    wait_port(d.mtqp_port)
    log = d.log()
    assert "replay" not in log or "error" not in log.split("replay")[-1][:200]
    for envid, sec in accepted:
        st, _ = track(d, envid, sec)
        assert st.startswith("+OK+"), (envid, st)
    peer = c.peer()
    peer.server.handle_error = lambda *a: None  # resets at stop
    peer_port_routes = c.write("routes", "*  [127.0.0.1]:%d\n" % peer.port)
    assert peer_port_routes
    os.kill(d.proc.pid, signal.SIGHUP)  # reload routes
    got = peer.wait_messages(len(accepted), timeout=60)
    ids = set()
    for m in got:
        ids.update(re.findall(rb"X-Test-Id: (\S+)", m["data"]))
    for envid, _ in accepted:
        assert envid.encode() in ids, envid
    sec, cert = secret_pair()
    got = send(d.smtp_port, "after@client.test", cert, 1000)
    assert QUEUED.match(got), got  # new mail accepted again
    rc = d.stop()
    assert rc == 0, rc
    for bad in ("Sanitizer", "runtime error:"):
        assert bad not in d.log(), d.log()[-3000:]


@suite.case
def tmpfs_enospc(c):
    mnt = c.path("small")
    os.makedirs(mnt)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0755",
                        "tmpfs", mnt], capture_output=True, timeout=20)
    if p.returncode != 0:
        print("    SKIPPED: mount -t tmpfs not allowed here: %s"
              % p.stderr.decode().strip())
        return
    c.on_cleanup(lambda: subprocess.run(["umount", "-l", mnt],
                                        timeout=20))
    sink = free_port()
    c.write("routes", "*  [127.0.0.1]:%d\n" % sink)
    d = Limited(c, dict(routes=c.path("routes"),
                        data_dir=os.path.join(mnt, "data"),
                        mtqp_listen="127.0.0.1:%d" % free_port(),
                        retry_schedule="1s"))
    d.mtqp_port = int(d.conf["mtqp_listen"].rsplit(":", 1)[1])
    d.start()
    c.on_cleanup(d.stop)
    wait_port(d.mtqp_port)
    accepted = fill_and_recover(c, d, None)
    # Space returns: the tmpfs grows.
    subprocess.run(["mount", "-o", "remount,size=64m", mnt], check=True,
                   timeout=20)
    d.start()
    wait_port(d.mtqp_port)
    for envid, sec in accepted:
        st, _ = track(d, envid, sec)
        assert st.startswith("+OK+"), (envid, st)
    sec, cert = secret_pair()
    got = send(d.smtp_port, "after2@client.test", cert, 1000)
    assert QUEUED.match(got), got
    assert d.stop() == 0


STORE_FULL = "455 4.3.0 Tracking store unavailable, try again later"
TRACK_TEMP = "-TEMP/unavailable tracking store unavailable"


def fill(path):
    """Writes path until its filesystem is full (ENOSPC)."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC, e


@suite.case
def store_tmpfs_full_temp(c):
    """Only the store's filesystem fills up: MAIL with MTRK gets 455 4.3.0
    and TRACK -TEMP while the store lags the journal; untracked mail is
    still accepted; no 250 is lost; when the tmpfs grows, a later store
    commit (the delivery retries make one every second) clears the flag
    without a restart and every accepted message is trackable."""
    mnt = c.path("store")
    os.makedirs(mnt)
    pw = pwd.getpwnam("msgtrk")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o",
                        "size=1m,mode=0700,uid=%d,gid=%d"
                        % (pw.pw_uid, pw.pw_gid), "tmpfs", mnt],
                       capture_output=True, timeout=20)
    if p.returncode != 0:
        print("    SKIPPED: mount -t tmpfs not allowed here: %s"
              % p.stderr.decode().strip())
        return
    c.on_cleanup(lambda: subprocess.run(["umount", "-l", mnt],
                                        timeout=20))
    sink = free_port()  # nobody listens: messages stay queued
    c.write("routes", "*  [127.0.0.1]:%d\n" % sink)
    mtqp_port = free_port()
    d = Msgtrkd(c, dict(routes=c.path("routes"),
                        mtqp_listen="127.0.0.1:%d" % mtqp_port,
                        local_domains="local.test", retry_schedule="1s"))
    d.mtqp_port = mtqp_port
    # tracking.db is a symlink into the tmpfs, made before the start;
    # SQLite resolves it, so -wal and -shm go there too.
    os.makedirs(d.data(), mode=0o700)
    os.symlink(os.path.join(mnt, "tracking.db"), d.data("tracking.db"))
    d.start()
    c.on_cleanup(d.stop)
    wait_port(mtqp_port)
    # Before: a message delivered locally is tracked; once it is done
    # (logged after its last store commit), nothing else writes to the
    # store.
    sec, cert = secret_pair()
    got = send(d.smtp_port, "sf0@client.test", cert, 1000,
               rcpt="u@local.test")
    assert QUEUED.match(got), got
    accepted = [("sf0@client.test", sec)]
    wait_for(lambda: any("Action: delivered" in ln for ln in
                         track(d, *accepted[0])[1] or []),
             what="sf0 delivered")
    wait_for(lambda: " delivery done" in d.log(), what="sf0 done")
    for name in ("tracking.db", "tracking.db-wal", "tracking.db-shm"):
        assert os.path.isfile(os.path.join(mnt, name)), name
    assert not os.path.exists(d.data("tracking.db-wal"))
    assert os.path.isdir(d.data("queue"))  # the journal is elsewhere

    fill(os.path.join(mnt, "filler"))
    # The journal takes the next tracked message (250); its store commit
    # fails (before the 250 is sent), so the one after is refused at MAIL.
    sec, cert = secret_pair()
    got = send(d.smtp_port, "sf1@client.test", cert, 1000)
    assert QUEUED.match(got), got
    accepted.append(("sf1@client.test", sec))
    sec, cert = secret_pair()
    got = send(d.smtp_port, "sf2@client.test", cert, 1000)
    assert got == STORE_FULL, got
    for envid, sec in accepted:
        st, data = track(d, envid, sec)
        assert st == TRACK_TEMP, (envid, st, data)
    # Untracked mail needs no store: still accepted.
    got = send(d.smtp_port, "sfplain@client.test", None, 1000)
    assert QUEUED.match(got), got
    assert d.proc.poll() is None, d.log()[-3000:]
    st, _ = track(d, *accepted[-1])
    assert st == TRACK_TEMP, st  # still lagging: delivery retries failed

    # Space returns.
    subprocess.run(["mount", "-o", "remount,size=64m", mnt], check=True,
                   timeout=20)
    wait_for(lambda: track(d, *accepted[-1])[0].startswith("+OK+"),
             what="the store to catch up")
    for envid, sec in accepted:
        st, data = track(d, envid, sec)
        assert st.startswith("+OK+"), (envid, st)
        assert any(("Original-Envelope-Id: " + envid) in ln for ln in data)
    sec, cert = secret_pair()
    got = send(d.smtp_port, "sfafter@client.test", cert, 1000)
    assert QUEUED.match(got), got
    # No 250 lost: the sink comes up and gets every accepted message.
    peer = c.peer()
    c.write("routes", "*  [127.0.0.1]:%d\n" % peer.port)
    os.kill(d.proc.pid, signal.SIGHUP)
    want = [e for e, _ in accepted[1:]] + ["sfplain@client.test",
                                       "sfafter@client.test"]
    got = peer.wait_messages(len(want), timeout=60)
    ids = set()
    for m in got:
        ids.update(re.findall(rb"X-Test-Id: (\S+)", m["data"]))
    for envid in want:
        assert envid.encode() in ids, envid
    assert d.stop() == 0
    for bad in ("Sanitizer", "runtime error:"):
        assert bad not in d.log(), d.log()[-3000:]


if __name__ == "__main__":
    suite.main()
