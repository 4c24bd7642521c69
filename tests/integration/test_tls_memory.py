"""msgtrk track's TLS memory (RFC 3887 §11) against a live msgtrkd with
STARTTLS on MTQP, seen through a man in the middle.

The client reaches the server through a small TCP proxy written here
("mx.test:<proxy port>", a name the server's certificate carries).  While
honest the proxy relays bytes both ways; in strip mode it deletes the
STARTTLS option from the greeting (RFC 3887 §11: "A man-in-the-middle
attack can be launched by deleting the "STARTTLS" option response").  The
first run learns the server; a stripped later run is refused, and the
TRACK with its secret never crosses the proxy in plaintext; without the
memory the same stripped run goes through in plaintext (opportunistic),
which shows the memory is what protects.  A changed server key is a
warning and is remembered.  A corrupt memory file is refused clearly."""

import base64
import hashlib
import os
import re
import smtplib
import socket
import stat
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import MSGTRK, WAIT, Suite, free_port, wait_port  # noqa: E402

suite = Suite("tls_memory")
DOWNGRADE = ("STARTTLS was offered before and is missing now "
             "(possible downgrade attack)")


def run(*a):
    return subprocess.run(a, check=True, capture_output=True, timeout=WAIT)


def make_ca(c):
    ca, cakey = c.path("ca.crt"), c.path("ca.key")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
        "-keyout", cakey, "-out", ca, "-subj", "/CN=test-ca", "-days", "2")
    return ca, cakey


def make_cert(c, ca, cakey, name, tag):
    """A fresh key and a certificate for name signed by the CA."""
    key, csr, crt = (c.path("%s.key" % tag), c.path("%s.csr" % tag),
                     c.path("%s.crt" % tag))
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
        "-out", csr, "-subj", "/CN=" + name)
    ext = c.write("%s.ext" % tag, "subjectAltName=DNS:%s\n" % name)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey,
        "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext)
    # msgtrkd drops to the msgtrk user after loading: world-readable is
    # fine for a throwaway test key.
    os.chmod(key, 0o644)
    return crt, key


def spki_sha256(crt):
    """SHA-256 of the certificate's DER SubjectPublicKeyInfo, in hex."""
    pem = run("openssl", "x509", "-in", crt, "-noout", "-pubkey").stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],
                         input=pem, check=True, capture_output=True,
                         timeout=WAIT).stdout
    return hashlib.sha256(der).hexdigest()


def secret_pair():
    a = os.urandom(32)
    cert = base64.b64encode(hashlib.sha1(a).digest()).decode().rstrip("=")
    return base64.b64encode(a).decode().rstrip("="), cert


class StripProxy:
    """Relays 127.0.0.1:port <-> 127.0.0.1:upstream; with .strip set, the
    STARTTLS option is deleted from the server's greeting.  .sent holds
    what each client sent (one bytes object per connection)."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.strip = False
        self.sent = []
        self.lock = threading.Lock()
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.closed = True
        self.ls.close()

    def _accept(self):
        while not self.closed:
            try:
                cs, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(cs,),
                             daemon=True).start()

    def _session(self, cs):
        us = socket.create_connection(("127.0.0.1", self.upstream),
                                      timeout=WAIT)
        cs.settimeout(WAIT)
        with self.lock:
            idx = len(self.sent)
            self.sent.append(b"")
        strip = self.strip

        def up():
            try:
                while True:
                    b = cs.recv(65536)
                    if not b:
                        break
                    with self.lock:
                        self.sent[idx] += b
                    us.sendall(b)
            except OSError:
                pass
            finally:
                try:
                    us.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        t = threading.Thread(target=up, daemon=True)
        t.start()
        try:
            f = us.makefile("rb")
            if strip:
                cs.sendall(self._stripped_greeting(f))
            while True:
                # The greeting may still sit in f's buffer.
                b = f.read1(65536)
                if not b:
                    break
                cs.sendall(b)
        except OSError:
            pass
        finally:
            try:
                cs.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            t.join(WAIT)
            cs.close()
            us.close()

    @staticmethod
    def _stripped_greeting(f):
        first = f.readline()
        if not first.startswith(b"+OK+"):
            return first
        opts = []
        while True:
            ln = f.readline()
            if not ln or ln == b".\r\n":
                break
            if not ln.upper().startswith(b"STARTTLS"):
                opts.append(ln)
        if not opts:  # "+OK+/MTQP ..." with no option left: "+OK/MTQP"
            return b"+OK" + first[4:]
        return first + b"".join(opts) + b".\r\n"


def setup(c):
    """msgtrkd (mx.test, STARTTLS on MTQP, its messages stay queued), a
    message tracked there, the proxy in front of the MTQP port, and DNS
    for mx.test.  Returns a dict of what the cases use."""
    ca, cakey = make_ca(c)
    crt, key = make_cert(c, ca, cakey, "mx.test", "srv")
    mport = free_port()
    routes = c.write("routes", "*  [127.0.0.1]:%d\n" % free_port())
    d = c.msgtrkd(hostname="mx.test", mtqp_listen="127.0.0.1:%d" % mport,
                  tls_cert_file=crt, tls_key_file=key, routes=routes,
                  retry_schedule="1h")
    wait_port(mport)
    sec, cert = secret_pair()
    envid = "tm%s@client.test" % os.urandom(4).hex()
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=WAIT) as s:
        s.ehlo("client.test")
        s.mail("a@client.test", ["ENVID=" + envid, "MTRK=%s:86400" % cert])
        s.rcpt("x@dest.test")
        code, _ = s.data(b"Subject: t\r\n\r\nbody\r\n")
        assert code == 250, code
    p = StripProxy(mport)
    c.on_cleanup(p.close)
    dns = c.dnsmasq(["--host-record=mx.test,127.0.0.1"])
    return dict(d=d, ca=ca, cakey=cakey, crt=crt, mport=mport, proxy=p,
                dns=dns, envid=envid, secret=sec,
                server="mx.test:%d" % p.port)


def track(env, home, extra=()):
    """msgtrk track through the proxy with HOME=home; (rc, out, err)."""
    e = dict(os.environ, HOME=home)
    p = subprocess.run([MSGTRK, "--dns", env["dns"], "--ca-file", env["ca"],
                        "track", "--server", env["server"], "--secret",
                        env["secret"]] + list(extra) + [env["envid"]],
                       capture_output=True, timeout=WAIT * 3, env=e)
    out, err = p.stdout.decode(), p.stderr.decode()
    assert p.returncode >= 0, ("killed by a signal", p.returncode, err)
    assert "AddressSanitizer" not in err and "runtime error" not in err, err
    return p.returncode, out, err


def memory_file(home):
    return os.path.join(home, ".local", "share", "msgtrk", "mtqp-tls")


@suite.case
def learn_then_refuse_stripped(c):
    env = setup(c)
    p, home = env["proxy"], c.path("home")
    os.makedirs(home)
    mem = memory_file(home)
    # 1. Honest path: TLS, and the server is learned with its key.
    rc, out, err = track(env, home)
    assert rc == 0, (rc, out, err)
    assert "delayed" in out and "(TLS)" in out, out
    st = os.stat(mem)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert stat.S_IMODE(os.stat(os.path.dirname(mem)).st_mode) == 0o700
    with open(mem) as f:
        text = f.read()
    assert text == "%s %s\n" % (env["server"], spki_sha256(env["crt"])), (
        text, env["server"])
    # 2. The man in the middle strips STARTTLS: refused, exit 1, the
    # downgrade named, and no TRACK (with its secret) sent in plaintext.
    p.strip = True
    n = len(p.sent)
    rc, out, err = track(env, home)
    assert rc == 1, (rc, out, err)
    assert "%s: %s" % (env["server"], DOWNGRADE) in err, err
    assert "delete its line" in err, err
    assert all(b"TRACK" not in s and env["secret"].encode() not in s
               for s in p.sent[n:]), p.sent[n:]
    assert len(p.sent) > n, "the client never reached the proxy"
    with open(mem) as f:
        assert f.read() == text  # unchanged
    # JSON mode fails the same way (the first server is the hop).
    rc, out, err = track(env, home, ["--json"])
    assert rc == 1 and DOWNGRADE in err, (rc, out, err)
    # 3. The same stripped path without a memory: opportunistic
    # plaintext goes through, the secret crosses in clear.  The memory is
    # what protects.
    fresh = c.path("fresh")
    os.makedirs(fresh)
    n = len(p.sent)
    rc, out, err = track(env, fresh)
    assert rc == 0, (rc, out, err)
    assert "delayed" in out and "(TLS)" not in out, out
    assert any(b"TRACK " in s for s in p.sent[n:]), p.sent[n:]
    assert not os.path.exists(memory_file(fresh))  # nothing learned
    # 4. --tls-memory FILE names the memory explicitly; --tls with a
    # remembered server still names the downgrade.
    rc, out, err = track(env, fresh, ["--tls", "--tls-memory", mem])
    assert rc == 1 and DOWNGRADE in err, (rc, out, err)
    # 5. Honest again: accepted, nothing rewritten.
    p.strip = False
    rc, out, err = track(env, home)
    assert rc == 0 and "(TLS)" in out and err == "", (rc, out, err)


@suite.case
def key_change_warns_and_updates(c):
    env = setup(c)
    home = c.path("home")
    os.makedirs(home)
    mem = memory_file(home)
    rc, out, err = track(env, home)
    assert rc == 0 and err == "", (rc, out, err)
    old = spki_sha256(env["crt"])
    # The server gets a new key, with a certificate still valid for its
    # name (a rotation): a warning, the trail, the new key remembered.
    crt2, key2 = make_cert(c, env["ca"], env["cakey"], "mx.test", "srv2")
    new = spki_sha256(crt2)
    assert new != old
    d = env["d"]
    d.conf.update(tls_cert_file=crt2, tls_key_file=key2)
    d.restart()
    wait_port(env["mport"])
    rc, out, err = track(env, home)
    assert rc == 0 and "(TLS)" in out, (rc, out, err)
    assert re.search(r"warning: %s presented a new key \(SPKI SHA-256 %s, "
                     r"was %s\)" % (re.escape(env["server"]), new, old),
                     err), err
    with open(mem) as f:
        assert f.read() == "%s %s\n" % (env["server"], new)
    # Known now: no warning the next time.
    rc, out, err = track(env, home)
    assert rc == 0 and err == "", (rc, out, err)


@suite.case
def corrupt_memory_refused(c):
    # No server is needed: the memory is read before any connection.
    secret = base64.b64encode(b"k" * 32).decode().rstrip("=")
    port = free_port()
    good = "mx.test:1038 " + "ab" * 32 + "\n"
    cases = [
        ("garbage", b"\x00\xff\xfe junk", ":1: "),
        ("bad digest", b"mx.test:1038 xyz\n", ":1: bad SPKI digest"),
        ("upper-case hex", ("mx.test:1038 " + "AB" * 32 + "\n").encode(),
         ":1: bad SPKI digest"),
        ("no port", ("mx.test " + "ab" * 32 + "\n").encode(),
         ":1: bad host:port"),
        ("port 0", ("mx.test:0 " + "ab" * 32 + "\n").encode(),
         ":1: bad host:port"),
        ("port too big", ("mx.test:65536 -\n").encode(), ":1: bad host:port"),
        ("bad host", ("mx/test:1038 -\n").encode(), ":1: bad host:port"),
        ("one field", b"mx.test:1038\n", ":1: expected"),
        ("two spaces", b"mx.test:1038  -\n", ":1: bad SPKI digest"),
        ("empty line", (good + "\n").encode(), ":2: expected"),
        ("NUL", (good + "a.test:1\x00 -\n").encode(), ":2: expected"),
        ("no final newline", good.encode() + b"b.test:1038 -",
         ":2: no newline"),
        ("twice", (good + good).encode(), ":2: server listed twice"),
        ("line too long", ("x" * 5000 + ":1 -\n").encode(),
         ":1: line too long"),
        ("too large", b"a" * (20 * 1024 * 1024), "larger than"),
    ]
    for name, data, want in cases:
        path = c.path("mem-" + name.replace(" ", "-"))
        with open(path, "wb") as f:
            f.write(data)
        p = subprocess.run([MSGTRK, "track", "--server", "127.0.0.1:%d" % port,
                            "--secret", secret, "--tls-memory", path,
                            "a@b.test"], capture_output=True, timeout=WAIT)
        err = p.stderr.decode(errors="replace")
        assert p.returncode == 2, (name, p.returncode, err)
        assert "TLS memory: %s" % path in err and want in err, (name, err)
        assert "AddressSanitizer" not in err and "runtime error" not in err
        with open(path, "rb") as f:
            assert f.read() == data, name  # never rewritten
    # A directory, and a symbolic link, are not memory files.
    for path in (c.dir, c.path("link")):
        if path != c.dir:
            os.symlink(c.path("mem-bad-digest"), path)
        p = subprocess.run([MSGTRK, "track", "--server", "127.0.0.1:%d" % port,
                            "--secret", secret, "--tls-memory", path,
                            "a@b.test"], capture_output=True, timeout=WAIT)
        err = p.stderr.decode()
        assert p.returncode == 2 and "not a regular file" in err, (path, err)
    # Well-formed entries (an IPv6 literal, a hand-written "-") are read:
    # the run goes on to the (closed) server and fails there, exit 1.
    path = c.write("mem-ok", good + "[::1]:1038 -\nhop2.test:11038 -\n")
    p = subprocess.run([MSGTRK, "track", "--server", "127.0.0.1:%d" % port,
                        "--secret", secret, "--tls-memory", path,
                        "a@b.test"], capture_output=True, timeout=WAIT)
    assert p.returncode == 1 and b"TLS memory" not in p.stderr, p.stderr


if __name__ == "__main__":
    suite.main()
