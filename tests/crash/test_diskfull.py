#!/usr/bin/env python3
"""Disk full (issue 6) without mount: msgtrkd runs under RLIMIT_FSIZE
(set in the child before exec, with SIGXFSZ ignored as msgtrkd itself
does), so the journal and the store cannot grow past the limit.  Then:
the end of DATA is answered 452/451 (never 250), MTQP keeps answering
for what was accepted, and after a restart without the limit the queue
is intact (every 250'd message is still tracked and gets delivered) and
new mail is accepted.  A real ENOSPC on a small tmpfs is tried too when
`mount -t tmpfs` works here; otherwise that case says it was skipped.

    MSGTRK_BUILD=build-asan python3 tests/crash/test_diskfull.py
"""

import os
import re
import resource
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import harness  # noqa: E402
from harness import Msgtrkd, Suite, free_port, wait_port  # noqa: E402
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


def send(port, envid, cert, size):
    """One tracked message of about size bytes: the final reply."""
    r = Raw(port)
    try:
        assert r.cmd("EHLO c.test").startswith("250")
        got = r.cmd("MAIL FROM:<a@client.test> ENVID=%s MTRK=%s:86400"
                    % (envid, cert))
        if not got.startswith("250"):
            return got
        got = r.cmd("RCPT TO:<u@remote.test>")
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


if __name__ == "__main__":
    suite.main()
