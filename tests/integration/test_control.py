#!/usr/bin/env python3
"""Queue control for operators: msgtrk queue flush|hold|release|delete and
msgtrk reload against a live msgtrkd over its control socket.

Messages stay queued by routing them to a closed port; the next hop is then
brought up on that port (the harness's scripted SMTP peer).  Everything is
checked from outside: the CLI's output and exit status, msgtrk queue
--json, msgtrk log --json, TRACK over MTQP, the peer, the Maildir, the
daemon's log, and raw bytes on the socket for the hostile cases."""

import base64
import grp
import hashlib
import json
import os
import pwd
import signal
import smtplib
import socket
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MSGTRK, MSGTRKD, WAIT, Peer, Suite, free_port,  # noqa
                     wait_for, wait_port)

suite = Suite("control")


def msgtrk(args, user=None, groups=None):
    cmd = [MSGTRK] + args
    if user is not None:
        # Another user, with only the groups given (setpriv(1)).
        pre = ["setpriv", "--reuid=" + user,
               "--regid=" + str(pwd.getpwnam(user).pw_gid)]
        pre += ["--groups=" + ",".join(groups)] if groups else \
            ["--clear-groups"]
        cmd = pre + cmd
    p = subprocess.run(cmd, capture_output=True, timeout=WAIT * 3)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def queue(d):
    rc, out, err = msgtrk(["queue", "-c", d.conf_file, "--json"])
    assert rc == 0, (rc, out, err)
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def ctl(d, *args, **kw):
    return msgtrk(["queue", "-c", d.conf_file] + list(args), **kw)


def send(d, rcpt="bob@dest.test", sender="alice@src.test", mail_opts=()):
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=20) as s:
        s.ehlo("client.test")
        s.sendmail(sender, [rcpt], b"Subject: t\r\n\r\nhello\r\n",
                   list(mail_opts))


def wait_deferred(d, n=1):
    """The queue once n messages were tried (and failed) at least once."""
    return wait_for(lambda: (lambda q: q if len(q) >= n and all(
        m["attempts"] >= 1 for m in q) else None)(queue(d)),
        what="%d deferred message(s)" % n)


def ready(d, before=0):
    """Waits until the daemon started since `before` "started" lines: its
    control socket is made just before (SMTP may answer earlier)."""
    wait_for(lambda: d.log().count("- daemon started") > before,
             what="msgtrkd started")
    return d


def node(c, **conf):
    return ready(c.msgtrkd(**conf))


def start(d):
    n = d.log().count("- daemon started")
    d.start()
    return ready(d, n)


def restart(d):
    n = d.log().count("- daemon started")
    d.restart()
    return ready(d, n)


def closed_port_node(c, **conf):
    """A msgtrkd whose next hop for dest.test is a port nobody listens on
    (yet): d.hop_port."""
    port = free_port()
    conf.setdefault("routes", c.write("routes",
                                      "dest.test [127.0.0.1]:%d\n" % port))
    conf.setdefault("local_domains", "src.test")
    d = node(c, **conf)
    d.hop_port = port
    return d


def peer_on(c, port):
    p = Peer(ehlo=["PIPELINING", "8BITMIME", "DSN"], port=port)
    c.on_cleanup(p.close)
    return p


def control_path(d):
    return d.conf.get("control_socket", d.data("control"))


def msgtrk_ids():
    pw = pwd.getpwnam("msgtrk")
    return pw.pw_uid, pw.pw_gid


# --- hold, release ------------------------------------------------------

@suite.case
def hold_release(c):
    d = closed_port_node(c, retry_schedule="1s")
    send(d)
    qid = wait_deferred(d)[0]["queue_id"]
    assert queue(d)[0]["held"] is False
    rc, out, err = ctl(d, "hold", qid)
    assert (rc, out, err) == (0, "%s: held\n" % qid, ""), (rc, out, err)
    assert "- control op=hold qid=%s uid=0 result=ok" % qid in d.log()
    # The next hop is up now: still nothing goes, for several retry
    # periods (1 s) and across a restart.
    p = peer_on(c, d.hop_port)
    attempts = queue(d)[0]["attempts"]
    time.sleep(4)
    assert p.messages == [] and p.sessions == 0, p.messages
    q = queue(d)
    assert len(q) == 1 and q[0]["held"] is True, q
    assert q[0]["attempts"] == attempts, (q, attempts)
    rc, out, err = msgtrk(["queue", "-c", d.conf_file])
    assert rc == 0 and "attempts %d  held\n" % attempts in out, out
    restart(d)
    q = queue(d)
    assert len(q) == 1 and q[0]["held"] is True, q
    time.sleep(3)
    assert p.messages == [] and p.sessions == 0, p.messages
    rc, out, err = ctl(d, "release", qid)
    assert (rc, out, err) == (0, "%s: released\n" % qid, ""), (rc, out, err)
    p.wait_messages(1)
    wait_for(lambda: queue(d) == [], what="the queue empty")
    assert "- control op=release qid=%s uid=0 result=ok" % qid in d.log()


class Stall:
    """A next hop that answers up to MAIL and then says nothing until
    .release() closes the connection: an attempt kept in flight."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(WAIT)
        self.port = self.sock.getsockname()[1]
        self.got_mail = threading.Event()
        self.go = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(WAIT)
            f = conn.makefile("rb")
            conn.sendall(b"220 stall.test ESMTP\r\n")
            f.readline()
            conn.sendall(b"250 stall.test\r\n")
            line = f.readline()
            if line.upper().startswith(b"MAIL"):
                self.got_mail.set()
            self.go.wait(WAIT * 3)

    def release(self):
        self.go.set()
        self.thread.join(WAIT)

    def close(self):
        self.go.set()
        self.sock.close()


@suite.case
def change_during_attempt(c):
    """A change asked while an attempt runs is made when it ends; the
    client waits for it, and another change meanwhile is refused
    ("busy")."""
    st = Stall()
    c.on_cleanup(st.close)
    d = node(c, retry_schedule="1h", local_domains="src.test",
             routes=c.write("routes", "dest.test [127.0.0.1]:%d\n" % st.port))
    send(d)
    assert st.got_mail.wait(WAIT), "no MAIL at the next hop"
    qid = queue(d)[0]["queue_id"]
    hold = subprocess.Popen([MSGTRK, "queue", "-c", d.conf_file, "hold", qid],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    c.on_cleanup(lambda: hold.poll() is None and hold.kill())
    time.sleep(1)
    assert hold.poll() is None, hold.communicate()
    rc, out, err = ctl(d, "delete", qid)
    assert (rc, out, err) == (1, "", "msgtrk queue: %s: busy\n" % qid), \
        (rc, out, err)
    # The attempt ends (the next hop hangs up): the hold is made.
    st.release()
    out, err = hold.communicate(timeout=WAIT)
    assert (hold.returncode, out, err) == (0, b"%s: held\n" % qid.encode(),
                                           b""), (hold.returncode, out, err)
    q = queue(d)
    assert len(q) == 1 and q[0]["held"] is True and q[0]["attempts"] == 1, q
    assert "- control op=delete qid=%s uid=0 result=error " \
        "error=\"busy\"" % qid in d.log()


# --- flush --------------------------------------------------------------

@suite.case
def flush(c):
    d = closed_port_node(c, retry_schedule="1h")
    for i in range(3):
        send(d, sender="s%d@src.test" % i)
    q = wait_deferred(d, 3)
    by_sender = {m["sender"]: m["queue_id"] for m in q}
    p = peer_on(c, d.hop_port)
    time.sleep(1)
    assert p.messages == []
    t0 = time.monotonic()
    rc, out, err = ctl(d, "flush", by_sender["s0@src.test"])
    assert (rc, out, err) == (0, "%s: flushed\n" % by_sender["s0@src.test"],
                              ""), (rc, out, err)
    p.wait_messages(1, timeout=5)
    took = time.monotonic() - t0
    assert took < 5, took
    assert "s0@src.test" in p.messages[0]["mail"], p.messages
    # The others wait for their hour.
    time.sleep(2)
    assert len(p.messages) == 1, p.messages
    assert sorted(m["sender"] for m in queue(d)) == ["s1@src.test",
                                                     "s2@src.test"]
    # No queue id: every message.
    rc, out, err = ctl(d, "flush")
    assert (rc, out, err) == (0, "flushed 2 messages\n", ""), (rc, out, err)
    p.wait_messages(3, timeout=5)
    wait_for(lambda: queue(d) == [], what="the queue empty")
    log = d.log()
    assert "- control op=flush qid=all uid=0 result=ok flushed=2" in log, log


# --- delete -------------------------------------------------------------

def secret_pair():
    a = os.urandom(32)
    cert = base64.b64encode(hashlib.sha1(a).digest()).decode().rstrip("=")
    return base64.b64encode(a).decode(), cert


def track(port, envid, secret):
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        s.sendall(("TRACK %s %s\r\n" % (envid, secret)).encode())
        first = f.readline().decode()
        assert first.startswith("+OK+"), first
        body = []
        while True:
            ln = f.readline().decode()
            assert ln, "EOF in the answer"
            if ln == ".\r\n":
                return "".join(body)
            body.append(ln[1:] if ln.startswith(".") else ln)


@suite.case
def delete(c):
    mtqp = free_port()
    d = closed_port_node(c, retry_schedule="1h",
                         mtqp_listen="127.0.0.1:%d" % mtqp)
    wait_port(mtqp)
    secret, cert = secret_pair()
    envid = "del1x8f3kq2@client.test"
    # NOTIFY=FAILURE: a failure would bounce to the local sender.
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=20) as s:
        s.ehlo("client.test")
        s.sendmail("alice@src.test", ["bob@dest.test"],
                   b"Subject: t\r\n\r\nhello\r\n",
                   ["ENVID=" + envid, "MTRK=%s:86400" % cert],
                   ["NOTIFY=FAILURE,DELAY"])
    qid = wait_deferred(d)[0]["queue_id"]
    assert "Action: delayed" in track(mtqp, envid, secret)
    rc, out, err = ctl(d, "delete", qid)
    assert (rc, out, err) == (0, "%s: deleted\n" % qid, ""), (rc, out, err)
    assert queue(d) == []
    assert "- control op=delete qid=%s uid=0 result=ok" % qid in d.log()

    def failed_record():
        rc, out, err = msgtrk(["log", "-c", d.conf_file, "--json",
                               "--envid", envid])
        recs = [json.loads(l) for l in out.splitlines() if l.strip()]
        return recs if recs and recs[0]["action"] == "failed" else None
    r = wait_for(failed_record, what="the failed record")[0]
    assert r["queue_id"] == qid and r["status"] == "5.0.0", r
    assert r["reply"] == "deleted by the operator", r
    answer = track(mtqp, envid, secret)
    assert "Action: failed" in answer and "Status: 5.0.0" in answer, answer
    # No bounce, not now and not a little later.
    box = os.path.join(d.data("mail"), "src.test", "alice")
    time.sleep(5)
    found = [f for sub in ("new", "cur", "tmp")
             for f in os.listdir(os.path.join(box, sub))] \
        if os.path.isdir(box) else []
    assert found == [], found
    # Gone: a second delete finds nothing.
    rc, out, err = ctl(d, "delete", qid)
    assert rc == 1 and out == "" and \
        err == "msgtrk queue: %s: no such message\n" % qid, (rc, out, err)


# --- errors -------------------------------------------------------------

@suite.case
def errors(c):
    d = closed_port_node(c, retry_schedule="1h")
    send(d)
    qid = wait_deferred(d)[0]["queue_id"]
    # An unknown queue id among known ones: the known one is done.
    rc, out, err = ctl(d, "hold", qid, "NOSUCHQID00")
    assert rc == 1, (rc, out, err)
    assert out == "%s: held\n" % qid, out
    assert err == "msgtrk queue: NOSUCHQID00: no such message\n", err
    # A held message is not flushed: said so, and it stays held.
    rc, out, err = ctl(d, "flush", qid)
    assert (rc, out, err) == (
        1, "", "msgtrk queue: %s: held (release it first)\n" % qid), \
        (rc, out, err)
    assert ('- control op=flush qid=%s uid=0 result=error '
            'error="held (release it first)"' % qid) in d.log()
    rc, out, err = ctl(d, "release", "NOSUCHQID00")
    assert (rc, out) == (1, "") and "NOSUCHQID00: no such message" in err
    rc, out, err = ctl(d, "flush", "NOSUCHQID00")
    assert (rc, out) == (1, "") and "NOSUCHQID00: no such message" in err
    # Usage: exit 2, nothing sent.
    for args in (["hold"], ["delete"], ["hold", "not/a/qid"],
                 ["hold", "x" * 33], ["flush", "--json"]):
        rc, out, err = ctl(d, *args)
        assert rc == 2 and out == "", (args, rc, out, err)
    rc, out, err = msgtrk(["reload", "-c", d.conf_file, "extra"])
    assert rc == 2, (rc, out, err)
    rc, out, err = msgtrk(["queue", "-c", c.path("missing.conf"), "flush"])
    assert rc == 2 and "missing.conf" in err, (rc, out, err)
    assert "control op=hold qid=not" not in d.log()
    # The listing is untouched by all this.
    q = queue(d)
    assert len(q) == 1 and q[0]["held"] is True, q
    # The daemon gone (killed: its socket file stays, nobody listens).
    path = control_path(d)
    d.kill()
    rc, out, err = ctl(d, "flush")
    assert (rc, out) == (1, ""), (rc, out, err)
    assert err == "msgtrk: control socket %s: Connection refused\n" % path, err
    rc, out, err = msgtrk(["reload", "-c", d.conf_file])
    assert rc == 1 and \
        err == "msgtrk: control socket %s: Connection refused\n" % path, err
    # Stopped cleanly: its socket is removed.
    start(d)
    assert os.path.exists(path)
    assert d.stop() == 0
    assert not os.path.exists(path)
    rc, out, err = ctl(d, "hold", qid)
    assert rc == 1 and err == \
        "msgtrk: control socket %s: No such file or directory\n" % path, err


# --- who may use it ------------------------------------------------------

@suite.case
def peers(c):
    uid, gid = msgtrk_ids()
    run = c.path("run")
    os.mkdir(run)
    os.chown(run, uid, gid)
    os.chmod(run, 0o755)
    path = os.path.join(run, "control")
    d = closed_port_node(c, retry_schedule="1h", control_socket=path)
    send(d)
    qid = wait_deferred(d)[0]["queue_id"]
    st = os.lstat(path)
    assert stat.S_ISSOCK(st.st_mode), st
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    assert (st.st_uid, st.st_gid) == (uid, gid), st
    # nobody: the file mode refuses it.
    rc, out, err = ctl(d, "hold", qid, user="nobody")
    assert (rc, out) == (1, ""), (rc, out, err)
    assert err == "msgtrk: control socket %s: Permission denied\n" % path, err
    # A member of the daemon's group (a supplementary group): in.
    rc, out, err = ctl(d, "hold", qid, user="nobody", groups=["msgtrk"])
    assert (rc, out, err) == (0, "%s: held\n" % qid, ""), (rc, out, err)
    assert "- control op=hold qid=%s uid=65534 result=ok" % qid in d.log()
    # With the file mode opened to all, SO_PEERCRED still refuses nobody.
    os.chmod(path, 0o666)
    for args in (["queue", "-c", d.conf_file, "release", qid],
                 ["reload", "-c", d.conf_file]):
        rc, out, err = msgtrk(args, user="nobody")
        assert (rc, out) == (1, ""), (args, rc, out, err)
        assert err == "msgtrk: control socket %s: permission denied\n" % \
            path, (args, err)
    assert "- control refused uid=65534 gid=65534" in d.log()
    assert "op=release" not in d.log() and "op=reload" not in d.log()
    assert queue(d)[0]["held"] is True
    # Root: in.
    rc, out, err = ctl(d, "release", qid)
    assert (rc, out, err) == (0, "%s: released\n" % qid, ""), (rc, out, err)


# --- hostile clients ----------------------------------------------------

def raw(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(WAIT)
    s.connect(path)
    return s


def read_all(s):
    """Everything until the server closes (a close with some of our bytes
    unread is a reset, after its data)."""
    data = b""
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            return data
        if not b:
            return data
        data += b


def read_lines(s, n):
    data = b""
    while data.count(b"\n") < n:
        b = s.recv(65536)
        assert b, "closed after %r" % data
        data += b
    return data


@suite.case
def hostile(c):
    d = closed_port_node(c, retry_schedule="1h")
    path = control_path(d)
    # A line over 4096 octets: refused before its end, then closed.
    s = raw(path)
    s.sendall(b"hold " + b"A" * 5000)
    assert read_all(s) == b"bad line too long\n"
    s.close()
    # Binary: refused line by line, closed after 10.
    s = raw(path)
    s.sendall(b"\x00\xff\xfe\n")
    assert read_lines(s, 1) == b"bad NUL octet\n"
    s.sendall(b"\x1b[2J\x07\n" * 3 + b"HOLD x\n" + b"hold\n")
    assert read_lines(s, 5) == b"bad control or 8-bit octet\n" * 3 + \
        b"bad unknown command\nbad wrong number of arguments\n"
    s.sendall(b"\xc3\xa9\n" * 20)
    assert read_all(s) == b"bad control or 8-bit octet\n" * 3 + \
        b"bad too many errors\n"
    s.close()
    # Many requests on one connection: 1000 answered, then closed.
    s = raw(path)
    s.sendall(b"flush\n" * 1005)
    assert read_all(s) == b"done 0 0\n" * 1000 + b"bad too many requests\n"
    s.close()
    # Many connections: the 17th is turned away.
    conns = [raw(path) for _ in range(16)]
    for k in conns:
        k.sendall(b"flush\n")
        assert read_lines(k, 1) == b"done 0 0\n"
    s = raw(path)
    assert read_all(s) == b"bad too many connections\n"
    s.close()
    gone = d.log().count("- control disconnect")
    for k in conns:
        k.close()
    wait_for(lambda: d.log().count("- control disconnect") >= gone + 16,
             what="the 16 connections closed")
    # A half-closed client gets its answers, then the server closes.
    s = raw(path)
    s.sendall(b"flush\nreload\n")
    s.shutdown(socket.SHUT_WR)
    assert read_all(s) == b"done 0 0\ndone 1 0\n"
    s.close()
    # The daemon is fine: control, SMTP, delivery.
    rc, out, err = ctl(d, "flush")
    assert (rc, out) == (0, "flushed 0 messages\n"), (rc, out, err)
    send(d)
    wait_deferred(d)
    log = d.log()
    assert '- control bad uid=0 error="line too long"' in log, log
    assert "ERROR: AddressSanitizer" not in log
    assert d.stop() == 0


# --- reload -------------------------------------------------------------

@suite.case
def reload(c):
    a = c.peer(ehlo=["PIPELINING", "8BITMIME"])
    b = c.peer(ehlo=["PIPELINING", "8BITMIME"])
    routes = c.write("routes", "dest.test [127.0.0.1]:%d\n" % a.port)
    aliases = c.write("aliases", "list@here.test: carol@dest.test\n")
    d = node(c, routes=routes, aliases=aliases,
             local_domains="src.test, here.test")
    send(d)
    a.wait_messages(1)
    # A new route: the next message follows it.
    c.write("routes", "dest.test [127.0.0.1]:%d\n" % b.port)
    rc, out, err = msgtrk(["reload", "-c", d.conf_file])
    assert (rc, out, err) == (0, "reloaded\n", ""), (rc, out, err)
    assert "- control op=reload uid=0 result=ok" in d.log()
    send(d)
    b.wait_messages(1)
    assert len(a.messages) == 1
    # A broken aliases file (and a changed routes file with it): refused
    # with the daemon's words, and every old table stays.
    c.write("routes", "dest.test [127.0.0.1]:%d\n" % a.port)
    c.write("aliases", "list@here.test carol@dest.test\n")
    rc, out, err = msgtrk(["reload", "-c", d.conf_file])
    assert rc == 1 and out == "", (rc, out, err)
    assert err.startswith("msgtrk reload: %s:1: " % aliases), err
    assert "- control op=reload uid=0 result=error error=\"%s:1: " % \
        aliases in d.log()
    send(d, rcpt="list@here.test")
    msgs = b.wait_messages(2)
    assert "carol@dest.test" in msgs[1]["rcpts"][0], msgs[1]
    assert len(a.messages) == 1, a.messages
    # SIGHUP does the same (one reload for both).
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: d.log().count("- daemon reload aliases error=") >= 2,
             what="SIGHUP's reload")
    send(d)
    b.wait_messages(3)
    # Mended: both tables change.
    c.write("aliases", "list@here.test: dave@dest.test\n")
    rc, out, err = msgtrk(["reload", "-c", d.conf_file])
    assert (rc, out) == (0, "reloaded\n"), (rc, out, err)
    send(d, rcpt="list@here.test")
    m = a.wait_messages(2)[1]
    assert "dave@dest.test" in m["rcpts"][0], m


# --- the socket file ----------------------------------------------------

@suite.case
def socket_file(c):
    uid, gid = msgtrk_ids()
    d = node(c)
    path = d.data("control")
    st = os.lstat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
    assert (st.st_uid, st.st_gid) == (uid, gid), st
    assert grp.getgrgid(st.st_gid).gr_name == "msgtrk"
    # Killed: the file stays; the next start replaces it.
    d.kill()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    start(d)
    assert "- control stale socket removed path=%s" % path in d.log()
    rc, out, err = ctl(d, "flush")
    assert (rc, out) == (0, "flushed 0 messages\n"), (rc, out, err)
    # A stale socket there before the start: replaced too.
    assert d.stop() == 0
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    os.chown(path, uid, gid)
    start(d)
    rc, out, err = ctl(d, "flush")
    assert (rc, out) == (0, "flushed 0 messages\n"), (rc, out, err)
    st = os.lstat(path)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (uid, 0o660), st
    # A second daemon on the same socket: refused, the first one keeps
    # it.
    other = c.write("other.conf", "hostname = mx.test\n"
                    "data_dir = %s\nsmtp_listen = 127.0.0.1:%d\n"
                    "mtqp_listen = none\ncontrol_socket = %s\n" % (
                        c.path("other-data"), free_port(), path))
    p = subprocess.run([MSGTRKD, "-f", "-c", other], capture_output=True,
                       timeout=WAIT)
    assert p.returncode == 78, p
    assert b"control_socket %s: a process listens there" % path.encode() \
        in p.stderr, p.stderr
    rc, out, err = ctl(d, "flush")
    assert rc == 0, (rc, out, err)
    # A socket the daemon's user cannot even try (root's, mode 0755):
    # refused, left alone.
    assert d.stop() == 0
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    os.chmod(path, 0o755)
    p = subprocess.run([MSGTRKD, "-f", "-c", d.conf_file],
                       capture_output=True, timeout=WAIT)
    assert p.returncode == 78, p
    assert b"control_socket %s: a socket there that cannot be tried " \
        b"(Permission denied): remove it if no process uses it" % \
        path.encode() in p.stderr, p.stderr
    assert os.lstat(path).st_uid == 0
    os.unlink(path)
    # Not a socket: refused, left alone, exit 78 (a configuration error).
    with open(path, "w") as f:
        f.write("keep me\n")
    p = subprocess.run([MSGTRKD, "-f", "-c", d.conf_file],
                       capture_output=True, timeout=WAIT)
    assert p.returncode == 78, p
    assert b"control_socket %s: exists and is not a socket" % path.encode() \
        in p.stderr, p.stderr
    with open(path) as f:
        assert f.read() == "keep me\n"


if __name__ == "__main__":
    suite.main()
