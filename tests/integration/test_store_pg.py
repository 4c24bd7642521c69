"""msgtrkd with its tracking store in PostgreSQL (store = postgresql://...),
against a private server each case starts itself (initdb + pg_ctl on a free
127.0.0.1 port, as the user postgres: initdb refuses root), and stops.

Issue 6, "store unavailable": with the server down, accepted mail stays
safe in the journal, MAIL with MTRK gets 455 4.3.0 once a store batch has
failed, TRACK gets -TEMP; with the server back, new tracked mail is
accepted and what was accepted meanwhile becomes trackable.

Without PostgreSQL server binaries each case prints a skip line."""

import base64
import hashlib
import os
import pwd
import smtplib
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Suite, free_port, wait_for, wait_port  # noqa

suite = Suite("store_pg")
USER = "msgtrk_it"
PASSWORD = "it-Pw-9f3a-secret"


def pg_bindir():
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True,
                             text=True, timeout=10)
    except OSError:
        return None
    d = out.stdout.strip()
    return d if d and os.access(os.path.join(d, "initdb"), os.X_OK) else None


class Pg:
    """A private PostgreSQL server; the case stops it."""

    def __init__(self, c):
        self.bin = pg_bindir()
        if self.bin is None:
            raise RuntimeError("no PostgreSQL server binaries")
        pw = pwd.getpwnam("postgres")
        self.dir = tempfile.mkdtemp(prefix="pg-", dir=c.dir)
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self._run("initdb", "-D", self.data, "-U", USER, "--pwfile=" + pwfile,
                  "-A", "scram-sha-256", "-E", "UTF8", "--no-locale")
        self.port = free_port()
        self.uri = "postgresql://%s:%s@127.0.0.1:%d/postgres" % (
            USER, PASSWORD, self.port)
        self.running = False
        c.on_cleanup(self.stop)
        self.start()

    def _run(self, prog, *args):
        cmd = ["runuser", "-u", "postgres", "--",
               os.path.join(self.bin, prog)] + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("%s failed: %s%s" % (prog, r.stdout,
                                                      r.stderr))

    def start(self):
        self._run("pg_ctl", "-D", self.data, "-l",
                  os.path.join(self.dir, "server.log"), "-w", "-t", "30",
                  "-o", "-p %d -k %s -c listen_addresses=127.0.0.1"
                  % (self.port, self.dir), "start")
        self.running = True
        wait_port(self.port)

    def stop(self):
        if self.running:
            self._run("pg_ctl", "-D", self.data, "-w", "-t", "30", "-m",
                      "fast", "stop")
            self.running = False

    def query(self, sql):
        r = subprocess.run([os.path.join(self.bin, "psql"), self.uri, "-At",
                            "-c", sql], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()


def setup(c):
    """The server and a msgtrkd on it (SMTP and MTQP), or None to skip."""
    # build-aux/deps.sh installs the server: its absence is a failure.
    assert pg_bindir() is not None, "no PostgreSQL server binaries"
    pg = Pg(c)
    mtqp = free_port()
    d = c.msgtrkd(store=pg.uri, mtqp_listen="127.0.0.1:%d" % mtqp,
                  local_domains="dest.test")
    d.mtqp_port = mtqp
    wait_port(mtqp)
    return pg, d


def secret_pair():
    a = os.urandom(32)
    cert = base64.b64encode(hashlib.sha1(a).digest()).decode().rstrip("=")
    return base64.b64encode(a).decode(), cert


def mail(d, envid, cert):
    """Sends one message; returns the MAIL reply code (or the DATA one)."""
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=20) as s:
        s.ehlo("client.test")
        params = ["ENVID=" + envid]
        if cert:
            params.append("MTRK=%s:86400" % cert)
        code, text = s.mail("a@sender.test", params)
        if code != 250:
            return code, text.decode()
        code, _ = s.rcpt("x@dest.test")
        assert code == 250, code
        code, text = s.data(b"Subject: t\r\n\r\nbody\r\n")
        return code, text.decode()


def track(d, envid, sec):
    """TRACK over a fresh MTQP connection: (status line, data or None)."""
    with socket.create_connection(("127.0.0.1", d.mtqp_port),
                                  timeout=20) as s:
        f = s.makefile("rb")

        def resp():
            first = f.readline().decode()
            if not first.startswith("+OK+"):
                return first, None
            data = []
            while True:
                ln = f.readline().decode()
                assert ln, "EOF inside a multi-line response"
                if ln == ".\r\n":
                    return first, "".join(data)
                data.append(ln[1:] if ln.startswith(".") else ln)
        resp()
        s.sendall(("TRACK %s %s\r\nQUIT\r\n" % (envid, sec)).encode())
        return resp()


def delivered(d, envid, sec):
    first, data = track(d, envid, sec)
    return data is not None and "Action: delivered" in data


@suite.case
def track_from_postgresql(c):
    pg, d = setup(c)
    if pg is None:
        return
    sec, cert = secret_pair()
    code, _ = mail(d, "pg1@sender.test", cert)
    assert code == 250, code
    wait_for(lambda: delivered(d, "pg1@sender.test", sec),
             what="TRACK pg1 delivered")
    # the records are in PostgreSQL, not in a SQLite file
    assert pg.query("SELECT count(*) FROM msg") == "1"
    assert pg.query("SELECT encode(envid, 'escape') FROM msg") == \
        "pg1@sender.test"
    assert not os.path.exists(d.data("tracking.db"))
    first, _ = track(d, "pg1@sender.test", "A" * 43)
    assert first.startswith("-ERR/noinfo"), first
    assert PASSWORD not in d.log()


@suite.case
def store_down_then_back(c):
    pg, d = setup(c)
    if pg is None:
        return
    sec, cert = secret_pair()
    assert mail(d, "up1@sender.test", cert)[0] == 250
    wait_for(lambda: delivered(d, "up1@sender.test", sec),
             what="TRACK up1 delivered")

    pg.stop()
    # Accepted while the store is down: the journal holds it (250), the
    # store batch fails.  Then MAIL with MTRK is refused, temporarily.
    sec2, cert2 = secret_pair()
    assert mail(d, "down1@sender.test", cert2)[0] == 250

    def refused():
        code, text = mail(d, "down2@sender.test", secret_pair()[1])
        assert code in (250, 455), (code, text)
        return (code, text) if code == 455 else None
    code, text = wait_for(refused, what="455 with the store down",
                          interval=0.2)
    assert text.startswith("4.3.0"), text
    # mail without MTRK is still accepted
    assert mail(d, "plain1@sender.test", None)[0] == 250
    first, _ = track(d, "up1@sender.test", sec)
    assert first.startswith("-TEMP"), "TRACK with the store down: " + first
    assert PASSWORD not in d.log()

    pg.start()
    # The queue retries its failed updates with the next batch (the
    # purge job makes one every second): tracked mail is accepted again,
    # and what was accepted meanwhile becomes trackable.
    sec3, cert3 = secret_pair()
    wait_for(lambda: mail(d, "back1@sender.test", cert3)[0] == 250,
             what="MTRK mail accepted again", interval=0.2)
    wait_for(lambda: delivered(d, "down1@sender.test", sec2),
             what="TRACK down1 delivered")
    wait_for(lambda: delivered(d, "back1@sender.test", sec3),
             what="TRACK back1 delivered")
    assert delivered(d, "up1@sender.test", sec)
    assert PASSWORD not in d.log()


if __name__ == "__main__":
    suite.main()
