"""Integration-test harness for msgtrk: real processes on 127.0.0.1.

Each test script builds a Suite, registers cases with @suite.case, and ends
with suite.main(), which runs them and prints one line "N passed, N failed"
(tests/run-tests.sh adds it to the totals).  Everything a case starts (a
msgtrkd, a dnsmasq, a peer SMTP server) is stopped by PID when the case
ends, whatever happens.  Every wait is bounded.  Traffic goes to loopback
only; DNS goes only to the case's own dnsmasq.

Environment: MSGTRK_BUILD (default: build) is the Meson build directory.
"""

import os
import shutil
import signal
import socket
import socketserver
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(TOP, os.environ.get("MSGTRK_BUILD", "build"))
MSGTRKD = os.path.join(BUILD, "msgtrkd")
MSGTRK = os.path.join(BUILD, "msgtrk")
WAIT = 20.0  # seconds: the bound on every wait for a process or a state


_handed_out = set()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago, and never one
    this process handed out before (the kernel may give the same free
    port twice, and a test that asks for two gets one: both in one
    configuration, msgtrkd refuses it)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=WAIT, what="condition", interval=0.02):
    """Polls pred() until it is true; raises AssertionError after timeout."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(interval)


def wait_port(port, host="127.0.0.1", timeout=WAIT):
    def up():
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False
    wait_for(up, timeout, "port %s:%d" % (host, port))


class Case:
    """What a running case owns; cleaned up in reverse order."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="msgtrk-it-")
        # msgtrkd started as root runs as the user msgtrk: it must reach
        # the files the case writes (configs, aliases, routes, certs).
        os.chmod(self.dir, 0o755)
        self._cleanup = []

    def on_cleanup(self, fn):
        self._cleanup.append(fn)

    def close(self):
        for fn in reversed(self._cleanup):
            try:
                fn()
            except Exception:  # cleanup must go on
                traceback.print_exc()
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, name, text, mode=0o644):
        p = self.path(name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    # --- components -------------------------------------------------
    def dnsmasq(self, records):
        """Starts dnsmasq on a free UDP/TCP port with dnsmasq option
        strings such as "--host-record=hop2.test,127.0.0.2" or
        "--mx-host=dest.test,hop3.test,10".  Returns "127.0.0.1:PORT".
        dnsmasq binds the port for both UDP and TCP: a port taken on
        either makes it exit, so that is noticed at once and another port
        tried."""
        errors = []
        for _ in range(5):
            port = free_udp_port()
            args = ["dnsmasq", "--keep-in-foreground",
                    "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                    "--no-poll", "--no-negcache", "--port=%d" % port,
                    "--listen-address=127.0.0.1", "--bind-interfaces",
                    "--pid-file=", "--address=/#/"]
            args += list(records)
            p = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
            self.on_cleanup(lambda p=p: _stop(p))
            try:
                wait_for(lambda: p.poll() is not None or _udp_answers(port),
                         what="dnsmasq")
            except AssertionError:
                errors.append("port %d: no answer" % port)
                continue
            if p.poll() is None:
                return "127.0.0.1:%d" % port
            errors.append("port %d: %s" % (
                port, p.stderr.read().decode(errors="replace").strip()))
        raise AssertionError("dnsmasq did not start: " + "; ".join(errors))

    def msgtrkd(self, **conf):
        d = Msgtrkd(self, conf)
        d.start()
        self.on_cleanup(d.stop)
        return d

    def peer(self, **kw):
        """An SMTP server the relay delivers to (see Peer)."""
        p = Peer(**kw)
        self.on_cleanup(p.close)
        return p


def _udp_answers(port):
    # A DNS query for "a.test" A; any answer means dnsmasq is up.
    q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x04test\x00\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        try:
            s.sendto(q, ("127.0.0.1", port))
            s.recvfrom(512)
            return True
        except OSError:
            return False


def _stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=WAIT)


class Msgtrkd:
    """A msgtrkd in the foreground on loopback with its own data_dir.

    conf: config keys overriding the test defaults (values as written in
    the file; lists as Python lists)."""

    def __init__(self, case, conf):
        self.case = case
        self.smtp_port = free_port()
        self.dir = tempfile.mkdtemp(prefix="d-", dir=case.dir)
        os.chmod(self.dir, 0o755)
        self.conf = {
            "hostname": "mx.test",
            "data_dir": os.path.join(self.dir, "data"),
            "smtp_listen": "127.0.0.1:%d" % self.smtp_port,
            "mtqp_listen": "none",
            "retry_schedule": "1s",
            "purge_interval": "1h",
        }
        for k, v in conf.items():
            self.conf[k] = ", ".join(v) if isinstance(v, list) else str(v)
        if self.conf["smtp_listen"] != "127.0.0.1:%d" % self.smtp_port:
            self.smtp_port = int(self.conf["smtp_listen"].rsplit(":", 1)[1]) \
                if self.conf["smtp_listen"] != "none" else None
        self.conf_file = os.path.join(self.dir, "msgtrkd.conf")
        self.log_file = os.path.join(self.dir, "msgtrkd.log")
        self.proc = None

    def write_conf(self):
        with open(self.conf_file, "w") as f:
            for k, v in self.conf.items():
                f.write("%s = %s\n" % (k, v))

    def start(self):
        self.write_conf()
        started = self.log().count(" daemon started ")
        self.logf = open(self.log_file, "ab")
        self.proc = subprocess.Popen([MSGTRKD, "-f", "-v", "-c", self.conf_file],
                                     stdout=self.logf, stderr=self.logf)
        if self.smtp_port:
            # The port answers once it is bound, before the startup ends
            # (recovery, the store): wait for the line that ends it too.
            try:
                wait_port(self.smtp_port)
                wait_for(lambda: self.log().count(" daemon started ") >
                         started or self.proc.poll() is not None,
                         what="daemon started")
            except AssertionError:
                raise AssertionError("msgtrkd did not start:\n" + self.log())

    def log(self):
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM):
        """Stops it; returns its exit status (None if it was not running)."""
        if self.proc is None:
            return None
        _stop(self.proc, sig)
        rc = self.proc.returncode
        self.proc = None
        self.logf.close()
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def restart(self):
        self.stop()
        self.start()

    def data(self, *parts):
        return os.path.join(self.conf["data_dir"], *parts)

    def query(self, sql, args=()):
        """Rows of sql (dicts) over <data_dir>/tracking.db, opened
        read-only; [] while the file does not exist or cannot be read
        (the daemon may be creating it)."""
        path = self.data("tracking.db")
        if not os.path.exists(path):
            return []
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
        try:
            cur = db.execute(sql, args)
            cols = [x[0] for x in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()]
        except sqlite3.Error:
            return []
        finally:
            db.close()


class _PeerHandler(socketserver.StreamRequestHandler):
    def handle(self):
        self.server.peer._session(self)


class Peer:
    """A scripted SMTP (or LMTP) server for the relay to deliver to.

    ehlo: the EHLO keywords it advertises (e.g. ["PIPELINING", "DSN",
    "MTRK", "8BITMIME", "SIZE 100000000"]).  rcpt_reply(addr) -> reply
    line for RCPT (default "250 2.1.5 Ok"); data_reply: reply after the
    final dot.  Every transaction is recorded in .messages as a dict:
    mail (the MAIL line), rcpts (RCPT lines), data (bytes), ehlo (name).
    .sessions counts connections, .quits the QUITs received.  With
    tx_per_session=N a session ends after N transactions: hang_up="close"
    closes it right after the Nth reply to the final dot, "421" answers
    the next MAIL with 421 and closes (servers that drop idle clients)."""

    def __init__(self, ehlo=("PIPELINING", "8BITMIME", "DSN", "MTRK"),
                 rcpt_reply=None, data_reply="250 2.0.0 Ok: queued as PEER1",
                 greeting="220 peer.test ESMTP", lmtp=False, port=None,
                 tx_per_session=None, hang_up="close"):
        self.ehlo_keywords = list(ehlo)
        self.rcpt_reply = rcpt_reply or (lambda addr: "250 2.1.5 Ok")
        self.data_reply = data_reply
        self.greeting = greeting
        self.lmtp = lmtp
        self.messages = []
        self.sessions = 0
        self.quits = 0
        self.tx_per_session = tx_per_session
        self.hang_up = hang_up
        self.lock = threading.Lock()
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(
            ("127.0.0.1", port or 0), _PeerHandler)
        self.server.daemon_threads = True
        self.server.peer = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def wait_messages(self, n, timeout=WAIT):
        wait_for(lambda: len(self.messages) >= n, timeout,
                 "%d messages at the peer" % n)
        return self.messages

    def _session(self, h):
        with self.lock:
            self.sessions += 1
        h.connection.settimeout(WAIT)
        w = lambda line: h.wfile.write((line + "\r\n").encode())
        w(self.greeting)
        cur = None
        ntx = 0
        while True:
            line = h.rfile.readline(4096)
            if not line:
                return
            cmd = line.decode("latin-1").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "LHLO"):
                kws = ["peer.test"] + self.ehlo_keywords
                for i, k in enumerate(kws):
                    w("250%s%s" % ("-" if i < len(kws) - 1 else " ", k))
                cur = {"ehlo": cmd.split(" ", 1)[1:], "rcpts": []}
            elif verb == "HELO":
                w("250 peer.test")
                cur = {"ehlo": cmd.split(" ", 1)[1:], "rcpts": []}
            elif verb == "MAIL":
                if self.tx_per_session is not None and \
                        ntx >= self.tx_per_session:
                    w("421 4.4.2 peer.test Error: timeout exceeded")
                    return
                cur = dict(cur or {}, mail=cmd, rcpts=[])
                w("250 2.1.0 Ok")
            elif verb == "RCPT":
                addr = cmd.split("<", 1)[1].split(">", 1)[0] if "<" in cmd else ""
                reply = self.rcpt_reply(addr)
                if reply.startswith("2"):
                    cur["rcpts"].append(cmd)
                w(reply)
            elif verb == "DATA":
                if not cur or not cur.get("rcpts"):
                    w("554 5.5.1 Error: no valid recipients")
                    continue
                w("354 End data with <CR><LF>.<CR><LF>")
                data = []
                while True:
                    l = h.rfile.readline(1 << 20)
                    if not l or l == b".\r\n":
                        break
                    data.append(l[1:] if l.startswith(b"..") else l)
                cur["data"] = b"".join(data)
                reply = self.data_reply
                if self.lmtp:
                    for _ in cur["rcpts"]:
                        w(reply)
                else:
                    w(reply)
                if reply.startswith("2"):
                    with self.lock:
                        self.messages.append(cur)
                cur = dict(ehlo=cur.get("ehlo"), rcpts=[])
                ntx += 1
                if self.tx_per_session is not None and \
                        ntx >= self.tx_per_session and \
                        self.hang_up == "close":
                    return
            elif verb == "RSET":
                cur = dict(ehlo=(cur or {}).get("ehlo"), rcpts=[])
                w("250 2.0.0 Ok")
            elif verb == "QUIT":
                with self.lock:
                    self.quits += 1
                w("221 2.0.0 Bye")
                return
            elif verb == "NOOP":
                w("250 2.0.0 Ok")
            else:
                w("502 5.5.2 Error: command not recognized")


class Suite:
    """Runs cases in order; prints one line per case and a total."""

    def __init__(self, name):
        self.name = name
        self.cases = []

    def case(self, fn):
        self.cases.append(fn)
        return fn

    def main(self):
        only = sys.argv[1:]
        passed = failed = 0
        for fn in self.cases:
            if only and fn.__name__ not in only:
                continue
            c = Case(fn.__name__)
            t0 = time.monotonic()
            try:
                fn(c)
                passed += 1
                print("ok   %s/%s (%.1fs)" % (self.name, fn.__name__,
                                              time.monotonic() - t0),
                      flush=True)
            except Exception:
                failed += 1
                print("FAIL %s/%s" % (self.name, fn.__name__), flush=True)
                traceback.print_exc(file=sys.stdout)
                for fn2 in c._cleanup:  # show daemon logs of a failure
                    d = getattr(fn2, "__self__", None)
                    if isinstance(d, Msgtrkd):
                        print("--- msgtrkd log (last 40 lines):")
                        print("\n".join(d.log().splitlines()[-40:]))
            finally:
                c.close()
        print("%d passed, %d failed" % (passed, failed), flush=True)
        sys.exit(1 if failed else 0)
