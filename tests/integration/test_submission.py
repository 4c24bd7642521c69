"""Authenticated submission (PRODUCT.md "Submission and automatic
tracking", RFC 6409, RFC 4954, RFC 8314) against real clients and real
backends: Python's smtplib (STARTTLS on submission_listen, SMTP_SSL on
submissions_listen), swaks (--auth PLAIN/LOGIN --tls), msmtp (587 with
STARTTLS, 465 with implicit TLS) and msgtrk send --user; passwd files with
yescrypt, bcrypt and sha512-crypt hashes made by mkpasswd and openssl, and
a private Dovecot (dovecot-core) as the auth backend.

Certificates come from a private CA made here with openssl; the server's
names are mx.test (one node) or hop1.test (two nodes) and 127.0.0.1.

Checks: the replies (235, 535 after a growing delay, 538 before TLS, 530
before AUTH, 553 for a spoofed sender, 503 for AUTH on port 25 which never
advertises it, 421 after three failures), credentials never in the log
(the passwords and every base64 form a client sent), SIGHUP reloading the
passwd file and sender_logins all or nothing, and end to end: msmtp
submits through 587 without MTRK, msgtrkd makes the message trackable
(250 ... tracking <envid>), relays it with MTRK to a second msgtrkd that
delivers it, and msgtrk track with the secret kept in the first node's
store follows it to delivered across both hops."""

import base64
import json
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MSGTRK, WAIT, Suite, free_port, wait_for,  # noqa: E402
                     wait_port)

suite = Suite("submission")

USERS = {
    # login: (password, hash tool)
    "alice@example.test": ("alice pass 1", ["mkpasswd", "-m", "yescrypt"]),
    "bob@example.test": ("b0b-pass", ["mkpasswd", "-m", "bcrypt"]),
    "carol@example.test": ("c4rol pass", ["openssl", "passwd", "-6"]),
}
MSG = ("From: alice@example.test\r\nTo: rcpt@dest.test\r\n"
       "Subject: submission test\r\n\r\nHello.\r\n")


def run(*a, **kw):
    return subprocess.run(a, check=True, capture_output=True, timeout=WAIT,
                          **kw)


def make_pki(c, names):
    """A private CA and a certificate for names (DNS) and 127.0.0.1."""
    ca, cakey = c.path("ca.crt"), c.path("ca.key")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
        "-keyout", cakey, "-out", ca, "-subj", "/CN=test-ca", "-days", "2")
    key, csr, crt = c.path("srv.key"), c.path("srv.csr"), c.path("srv.crt")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
        "-out", csr, "-subj", "/CN=" + names[0])
    san = ",".join(["DNS:" + n for n in names] + ["IP:127.0.0.1"])
    ext = c.write("srv.ext", "subjectAltName=%s\n" % san)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey,
        "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext)
    os.chmod(key, 0o644)
    return ca, crt, key


def hash_of(password, tool):
    if tool[0] == "mkpasswd":
        out = run(*tool, "--stdin", input=password.encode()).stdout
    else:
        out = run(*tool, "-stdin", input=password.encode()).stdout
    return out.decode().strip()


def passwd_file(c, users=USERS, name="users"):
    lines = ["# login:crypt-hash"]
    for login, (pw, tool) in users.items():
        lines.append("%s:%s" % (login, hash_of(pw, tool)))
    return c.write(name, "\n".join(lines) + "\n")


class Node:
    """One msgtrkd with smtp_listen, submission_listen (587) and
    submissions_listen (465) on free loopback ports."""

    def __init__(self, c, auth=None, pki=None, **extra):
        self.c = c
        self.pki = pki or make_pki(c, ["mx.test"])
        self.sub = free_port()
        self.subs = free_port()
        self.users = passwd_file(c) if auth is None else None
        self.senders = c.write(
            "sender_logins",
            "shared@example.test: alice@example.test, bob@example.test\n")
        conf = {
            "submission_listen": "127.0.0.1:%d" % self.sub,
            "submissions_listen": "127.0.0.1:%d" % self.subs,
            "tls_cert_file": self.pki[1],
            "tls_key_file": self.pki[2],
            "auth": auth or "passwd:" + self.users,
            "sender_logins": self.senders,
            "local_domains": "dest.test",
        }
        conf.update(extra)
        self.d = c.msgtrkd(**conf)
        wait_port(self.sub)
        wait_port(self.subs)

    def log(self):
        return self.d.log()


def client_ctx(ca):
    ctx = ssl.create_default_context(cafile=ca)
    return ctx


def smtp587(n):
    s = smtplib.SMTP("127.0.0.1", n.sub, timeout=WAIT)
    s.ehlo("client.test")
    return s


def starttls(s, n):
    s.starttls(context=client_ctx(n.pki[0]))
    s.ehlo("client.test")
    return s


def smtp465(n):
    s = smtplib.SMTP_SSL("127.0.0.1", n.subs, timeout=WAIT,
                         context=client_ctx(n.pki[0]))
    s.ehlo("client.test")
    return s


def auth_plain(s, login, pw, authzid=""):
    msg = base64.b64encode(("%s\0%s\0%s" % (authzid, login, pw)).encode())
    return s.docmd("AUTH", "PLAIN " + msg.decode())


def submit(s, frm="alice@example.test", rcpt="rcpt@dest.test", msg=MSG,
           opts=()):
    code, text = s.mail(frm, list(opts))
    assert code == 250, (code, text)
    code, text = s.rcpt(rcpt)
    assert code == 250, (code, text)
    return s.data(msg.encode())


def secrets_in(log, users=USERS):
    """Every password, and the base64 forms clients sent, found in log."""
    found = []
    for login, (pw, _) in users.items():
        forms = [pw, base64.b64encode(pw.encode()).decode()]
        for authzid in ("", login):
            forms.append(base64.b64encode(
                ("%s\0%s\0%s" % (authzid, login, pw)).encode()).decode())
        found += [f for f in forms if f in log]
    return found


# --- real clients, the passwd backend -------------------------------

@suite.case
def smtplib_587_and_465(c):
    """smtplib: STARTTLS then AUTH PLAIN on 587, implicit TLS and AUTH
    LOGIN on 465; every hash scheme logs in; the 250 names the envid."""
    n = Node(c)
    for login, (pw, _) in USERS.items():
        s = starttls(smtp587(n), n)
        assert "auth" in s.esmtp_features, s.esmtp_features
        assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        code, text = auth_plain(s, login, pw)
        assert code == 235 and text == b"2.7.0 Authentication successful", \
            (login, code, text)
        code, text = submit(s, frm=login)
        assert code == 250, (code, text)
        m = re.match(rb"2\.0\.0 Ok: queued as (\w+), tracking (\S+@mx\.test)$",
                     text)
        assert m, text
        s.quit()
    s = smtp465(n)
    s.user, s.password = "bob@example.test", USERS["bob@example.test"][0]
    code, text = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
    assert code == 235, (code, text)
    code, text = submit(s, frm="bob@example.test")
    assert code == 250 and b", tracking " in text, text
    s.quit()
    log = n.log()
    assert "smtp auth result=ok mech=PLAIN login=carol@example.test" in log
    assert "smtp auth result=ok mech=LOGIN login=bob@example.test" in log
    assert " smtp tls version=TLSv1.3" in log, log
    assert "with ESMTPSA" in open(maildir_one(n.d, "rcpt")).read()
    assert secrets_in(log) == []


def maildir_one(d, local, domain="dest.test"):
    """The newest message in local@domain's Maildir of msgtrkd d."""
    new = d.data("mail", domain, local, "new")
    files = wait_for(lambda: os.path.isdir(new) and sorted(os.listdir(new)),
                     what="maildir")
    return os.path.join(new, files[-1])


@suite.case
def swaks_plain_login(c):
    """swaks --auth PLAIN and LOGIN --tls: 235, and the message queued
    with tracking; a wrong password: 535 5.7.8."""
    n = Node(c)
    pw = USERS["alice@example.test"][0]
    for mech in ("PLAIN", "LOGIN"):
        p = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(n.sub),
             "--tls", "--auth", mech, "--auth-user", "alice@example.test",
             "--auth-password", pw, "--from", "alice@example.test",
             "--to", "rcpt@dest.test", "--helo", "client.test",
             "--header", "Subject: swaks " + mech],
            capture_output=True, timeout=WAIT * 2)
        out = p.stdout.decode()
        assert p.returncode == 0, out
        assert "<~  235 2.7.0 Authentication successful" in out, out
        assert re.search(r"<~  250 2\.0\.0 Ok: queued as \w+, tracking "
                         r"\S+@mx\.test", out), out
    p = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(n.sub), "--tls",
         "--auth", "PLAIN", "--auth-user", "alice@example.test",
         "--auth-password", "wrong password", "--from",
         "alice@example.test", "--to", "rcpt@dest.test"],
        capture_output=True, timeout=WAIT * 2)
    out = p.stdout.decode()
    assert "<~* 535 5.7.8 Error: authentication credentials invalid" in out, \
        out
    log = n.log()
    assert secrets_in(log) == [], secrets_in(log)
    assert "wrong password" not in log
    assert base64.b64encode(
        b"\0alice@example.test\0wrong password").decode() not in log


@suite.case
def refusals(c):
    """538 before TLS, 530 before AUTH, 553 for another's address, 535
    for an authzid that is not the login, 503 for a second AUTH, and port
    25: AUTH never advertised (not after STARTTLS either) and refused."""
    n = Node(c)
    pw = USERS["alice@example.test"][0]
    s = smtp587(n)
    assert "auth" not in s.esmtp_features
    assert auth_plain(s, "alice@example.test", pw) == (
        538, b"5.7.11 Encryption required for requested authentication "
             b"mechanism")
    assert s.mail("alice@example.test") == (
        530, b"5.7.0 Authentication required")
    starttls(s, n)
    assert s.mail("alice@example.test") == (
        530, b"5.7.0 Authentication required")
    # RFC 4616 authzid: acting as another is refused
    assert auth_plain(s, "alice@example.test", pw,
                      authzid="bob@example.test")[0] == 535
    assert auth_plain(s, "alice@example.test", pw)[0] == 235
    assert auth_plain(s, "alice@example.test", pw) == (
        503, b"5.5.1 Error: already authenticated")
    assert s.mail("bob@example.test") == (
        553, b"5.7.1 <bob@example.test>: Sender address rejected: not "
             b"owned by user alice@example.test")
    assert s.mail("shared@example.test")[0] == 250  # sender_logins
    s.rset()
    assert s.mail("")[0] == 250  # the null sender
    # an authenticated client relays
    assert s.rcpt("someone@elsewhere.test")[0] == 250
    s.quit()
    # port 25 (smtp_listen, with STARTTLS): no AUTH ever
    s = smtplib.SMTP("127.0.0.1", n.d.smtp_port, timeout=WAIT)
    s.ehlo("client.test")
    assert "auth" not in s.esmtp_features
    starttls(s, n)
    assert "auth" not in s.esmtp_features, s.esmtp_features
    assert auth_plain(s, "alice@example.test", pw) == (
        503, b"5.5.1 Error: authentication not enabled")
    s.quit()
    log = n.log()
    assert "reason=auth-needs-tls" in log and "reason=auth-required" in log
    assert "result=sender-not-owned" in log
    assert secrets_in(log) == []


@suite.case
def failures_delay_and_limit(c):
    """Wrong passwords: 535 after a delay that grows with the client
    address's failures (0.5 s, 1 s, 2 s...); three in one session, then
    421 4.7.0 and the close; a success afterwards still waits (the
    timing does not tell a success from a failure)."""
    n = Node(c)
    s = starttls(smtp587(n), n)
    times = []
    for i in range(3):
        t0 = time.monotonic()
        r = auth_plain(s, "alice@example.test", "guess %d" % i)
        times.append(time.monotonic() - t0)
        assert r[0] == 535, r
    print("535 delays: %s" % ", ".join("%.2f s" % t for t in times),
          flush=True)
    assert 0.4 <= times[0] < 1.5, times
    assert times[1] >= 0.9 and times[2] >= 1.9, times
    assert times[0] < times[1] < times[2], times
    # the third failure closed the session (three_failures_421 reads
    # its 421)
    log = n.log()
    assert "disconnect reason=auth-failures" in log, log
    # a new session, the right password: 235, no faster than a failure
    s = starttls(smtp587(n), n)
    t0 = time.monotonic()
    assert auth_plain(s, "alice@example.test",
                      USERS["alice@example.test"][0])[0] == 235
    t = time.monotonic() - t0
    print("235 after 3 failures: %.2f s" % t, flush=True)
    assert t >= 3.5, t
    s.quit()


@suite.case
def three_failures_421(c):
    """The 421 after the third failure, as a raw client reads it."""
    n = Node(c)
    ctx = client_ctx(n.pki[0])
    raw = socket.create_connection(("127.0.0.1", n.subs), timeout=WAIT)
    t = ctx.wrap_socket(raw, server_hostname="mx.test")
    f = t.makefile("rwb")
    f.readline()
    f.write(b"EHLO client.test\r\n")
    f.flush()
    while not f.readline().startswith(b"250 "):
        pass
    bad = base64.b64encode(b"\0alice@example.test\0nope").decode()
    replies = []
    for _ in range(3):
        f.write(("AUTH PLAIN %s\r\n" % bad).encode())
        f.flush()
        replies.append(f.readline())
    replies.append(f.readline())
    assert replies[:3] == [
        b"535 5.7.8 Error: authentication credentials invalid\r\n"] * 3, \
        replies
    assert replies[3] == (b"421 4.7.0 mx.test Error: too many failed "
                          b"authentication attempts\r\n"), replies
    assert f.readline() == b""  # closed
    t.close()


# --- Dovecot as the backend ----------------------------------------

def dovecot(c):
    """A private Dovecot: its own base_dir, no protocols, a passwd-file
    passdb with CRYPT hashes, the auth-client socket mode 0666.  Returns
    its socket path."""
    d = c.path("dovecot")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    users = passwd_file(c, name="dovecot/users")
    conf = c.write("dovecot/dovecot.conf", (
        "base_dir = {d}/run\n"
        "state_dir = {d}/state\n"
        "log_path = {d}/dovecot.log\n"
        "protocols =\n"
        "ssl = no\n"
        "passdb {{\n"
        "  driver = passwd-file\n"
        "  args = scheme=CRYPT {u}\n"
        "}}\n"
        "service auth {{\n"
        "  unix_listener auth-client {{\n"
        "    mode = 0666\n"
        "  }}\n"
        "}}\n").format(d=d, u=users))
    p = subprocess.Popen(["dovecot", "-F", "-c", conf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=WAIT)
    c.on_cleanup(stop)
    sock = os.path.join(d, "run", "auth-client")
    wait_for(lambda: os.path.exists(sock), what="dovecot's auth-client")
    return sock


@suite.case
def dovecot_backend(c):
    """auth = dovecot:: every hash scheme logs in through Dovecot; a
    login in upper case comes back lower-cased (Dovecot's default
    auth_username_format) and that login decides sender_logins; a wrong
    password is 535; nothing secret in the log."""
    sock = dovecot(c)
    n = Node(c, auth="dovecot:" + sock)
    for login, (pw, _) in USERS.items():
        s = starttls(smtp587(n), n)
        assert auth_plain(s, login, pw)[0] == 235, login
        s.quit()
    s = smtp465(n)
    assert auth_plain(s, "Alice@Example.TEST",
                      USERS["alice@example.test"][0])[0] == 235
    code, text = submit(s, frm="alice@example.test")
    assert code == 250 and b"tracking" in text, text
    s.quit()
    s = smtp465(n)
    assert auth_plain(s, "bob@example.test", "not it")[0] == 535
    s.quit()
    log = n.log()
    assert "auth backend=dovecot" in log, log
    assert "login=alice@example.test" in log
    assert "Alice@Example.TEST" not in log
    assert secrets_in(log) == []


# --- SIGHUP ----------------------------------------------------------

@suite.case
def reload_passwd_and_senders(c):
    """SIGHUP re-reads the passwd file and sender_logins: a new login
    works, a new grant applies; a broken passwd file keeps the old tables
    (all or nothing) and the reload says why."""
    n = Node(c)
    dave = ("dave@example.test", "d4ve pass")
    s = starttls(smtp587(n), n)
    assert auth_plain(s, *dave)[0] == 535
    s.quit()
    users = dict(USERS)
    users[dave[0]] = (dave[1], ["openssl", "passwd", "-6"])
    passwd_file(c, users=users)
    c.write("sender_logins", "team@example.test: dave@example.test\n")
    n.d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "daemon reloaded" in n.log(), what="reload")
    s = starttls(smtp587(n), n)
    assert auth_plain(s, *dave)[0] == 235
    assert s.mail("team@example.test")[0] == 250
    s.quit()
    # a broken file: the reload fails, the old tables stay
    with open(n.users, "a") as f:
        f.write("broken line without a hash\n")
    before = n.log().count("daemon reloaded")
    n.d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "daemon reload auth error=" in n.log(),
             what="failed reload")
    assert n.log().count("daemon reloaded") == before
    s = starttls(smtp587(n), n)
    assert auth_plain(s, *dave)[0] == 235
    s.quit()


# --- msgtrk send --user ----------------------------------------------

def msgtrk(args, stdin=b"", env=None):
    e = dict(os.environ)
    e.pop("MSGTRK_PASSWORD", None)
    e.update(env or {})
    p = subprocess.run([MSGTRK] + args, input=stdin, capture_output=True,
                       timeout=WAIT * 4, env=e)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@suite.case
def msgtrk_send_user(c):
    """msgtrk send --user: AUTH PLAIN over STARTTLS (587) and --smtps
    (465), the certificate verified; a wrong password is refused (exit
    1); a server without TLS never gets the password."""
    n = Node(c)
    dns = c.dnsmasq(["--host-record=mx.test,127.0.0.1"])
    pw = USERS["carol@example.test"][0]
    kr = c.path("keyring")
    base = ["--dns", dns, "--ca-file", n.pki[0], "send", "--user",
            "carol@example.test", "--from", "carol@example.test",
            "--keyring", kr, "--mtqp", "mx.test"]
    for server in (["--server", "mx.test:%d" % n.sub],
                   ["--smtps", "--server", "mx.test:%d" % n.subs]):
        rc, out, err = msgtrk(base + server + ["rcpt@dest.test"],
                              stdin=MSG.encode(),
                              env={"MSGTRK_PASSWORD": pw})
        assert rc == 0, (rc, out, err)
        assert out.startswith("envid: "), out
    rc, out, err = msgtrk(base + ["--server", "mx.test:%d" % n.sub,
                                  "rcpt@dest.test"],
                          stdin=MSG.encode(),
                          env={"MSGTRK_PASSWORD": "wrong"})
    assert rc == 1 and "AUTH: 535 5.7.8" in err, (rc, out, err)
    # a server without TLS (port 25 of a node without certificates)
    plain = c.msgtrkd(local_domains="dest.test")
    rc, out, err = msgtrk(["--dns", dns, "send", "--user",
                           "carol@example.test", "--server",
                           "127.0.0.1:%d" % plain.smtp_port,
                           "--no-track", "rcpt@dest.test"],
                          stdin=MSG.encode(), env={"MSGTRK_PASSWORD": pw})
    assert rc == 1 and "--user needs TLS" in err, (rc, out, err)
    assert "AUTH" not in plain.log()
    log = n.log()
    assert log.count("smtp auth result=ok mech=PLAIN "
                     "login=carol@example.test") == 2, log
    assert secrets_in(log) == [] and "wrong" not in log


# --- end to end: msmtp through 587, tracked across two hops ----------

def msmtp(c, port, starttls_on, ca, login, pw, frm, rcpt, msg):
    cmd = ["msmtp", "--debug", "--host=127.0.0.1", "--port=%d" % port,
           "--tls=on", "--tls-starttls=%s" % ("on" if starttls_on else "off"),
           "--tls-trust-file=%s" % ca, "--auth=plain", "--user=%s" % login,
           "--passwordeval=cat %s" % c.write("pw", pw + "\n", 0o600),
           "--domain=client.test", "--from=%s" % frm, rcpt]
    p = subprocess.run(cmd, input=msg.encode(), capture_output=True,
                       timeout=WAIT * 2)
    return p.returncode, p.stdout.decode() + p.stderr.decode()


def two_hops(c, **hop1_extra):
    """hop1 (submission, TLS for hop1.test) relays dest.test to hop2,
    which delivers it; dnsmasq names both and has their MTQP SRV
    records.  Returns (dns, pki, hop1, hop2, mtqp ports)."""
    smtp = {h: free_port() for h in ("hop1", "hop2")}
    mtqp = {h: free_port() for h in ("hop1", "hop2")}
    recs = []
    for h in ("hop1", "hop2"):
        recs += ["--host-record=%s.test,127.0.0.1" % h,
                 "--srv-host=_mtqp._tcp.%s.test,%s.test,%d,0,0" % (
                     h, h, mtqp[h])]
    dns = c.dnsmasq(recs)
    hop2 = c.msgtrkd(hostname="hop2.test",
                     smtp_listen="127.0.0.1:%d" % smtp["hop2"],
                     mtqp_listen="127.0.0.1:%d" % mtqp["hop2"],
                     dns_servers=dns, local_domains="dest.test")
    routes = c.write("hop1.routes", "dest.test  hop2.test:%d\n" % smtp["hop2"])
    pki = make_pki(c, ["hop1.test"])
    hop1 = Node(c, pki=pki, hostname="hop1.test",
                smtp_listen="127.0.0.1:%d" % smtp["hop1"],
                mtqp_listen="127.0.0.1:%d" % mtqp["hop1"],
                dns_servers=dns, routes=routes, local_domains="local.test",
                **hop1_extra)
    return dns, pki, hop1, hop2, mtqp


@suite.case
def msmtp_two_hops_tracked(c):
    """msmtp submits through 587 (STARTTLS) and 465 (implicit TLS), no
    MTRK of its own; hop1 makes it trackable, relays it with MTRK to hop2
    (its log says mtrk=yes, its store has the same certifier), which
    delivers it; the secret kept in hop1's store lets msgtrk track follow
    it to delivered across both hops; another login's list is empty."""
    http = free_port()
    dns, pki, hop1, hop2, mtqp = two_hops(
        c, http_listen="127.0.0.1:%d" % http)
    pw = USERS["alice@example.test"][0]
    envids = []
    for port, st in ((hop1.sub, True), (hop1.subs, False)):
        rc, out = msmtp(c, port, st, pki[0], "alice@example.test", pw,
                        "alice@example.test", "rcpt@dest.test",
                        "Subject: msmtp %d\n\nHello through two hops.\n"
                        % port)
        assert rc == 0, out
        m = re.search(r"<-- 250 2\.0\.0 Ok: queued as (\w+), tracking "
                      r"(\S+@hop1\.test)", out)
        assert m, out
        print("--- msmtp through %d:\n%s" % (port, "\n".join(
            l for l in out.splitlines()
            if l.startswith(("<--", "-->")) and "AUTH" not in l)),
            flush=True)
        envids.append(m.group(2))
    # hop1: the secret is kept for alice, with the Subject
    rows = wait_for(lambda: len(hop1.d.query(
        "SELECT m.qid, m.envid, m.certifier, s.login, s.secret, s.subject"
        " FROM sent s JOIN msg m ON m.id = s.msg ORDER BY s.submitted")) == 2
        and hop1.d.query(
        "SELECT m.qid, m.envid, m.certifier, s.login, s.secret, s.subject"
        " FROM sent s JOIN msg m ON m.id = s.msg ORDER BY m.id"),
        what="the sent rows")
    assert [r["envid"] for r in rows] == envids, (rows, envids)
    assert rows[0]["login"] == "alice@example.test"
    assert rows[0]["subject"] == "msmtp %d" % hop1.sub
    assert hop1.d.query("SELECT * FROM sent WHERE login = ?",
                        ("bob@example.test",)) == []
    log1 = hop1.log()
    for e in envids:
        assert re.search(r"smtp mail from=<alice@example\.test> size=\d+ "
                         r"envid=%s mtrk=auto login=alice@example\.test"
                         % re.escape(e), log1), log1
    for r in rows:
        assert r["secret"] not in log1
    print("--- hop1 log:\n" + "\n".join(
        l for l in log1.splitlines()
        if " smtp " in l or " delivery " in l), flush=True)
    # hop2 got MTRK with the same certifier
    for r in rows:
        got = wait_for(lambda r=r: hop2.query(
            "SELECT certifier FROM msg WHERE envid = ?", (r["envid"],)),
            what="hop2's record")
        assert got[0]["certifier"] == r["certifier"], (got, r)
    assert hop2.log().count("mtrk=yes") >= 2, hop2.log()
    # msgtrk track with the kept secret: delivered, two hops
    for r in rows:
        def delivered(r=r):
            p = subprocess.run(
                [MSGTRK, "--dns", dns, "--ca-file", pki[0], "track",
                 "--tls-memory", c.path("tls-memory"), "--json", "--server",
                 "hop1.test:%d" % mtqp["hop1"], "--secret", r["secret"],
                 r["envid"]], capture_output=True, timeout=WAIT)
            if p.returncode != 0:
                return False
            j = json.loads(p.stdout)
            rc = j["recipients"]
            return rc and rc[0]["final_action"] == "delivered" and j
        try:
            j = wait_for(delivered, 40, "delivered", interval=0.5)
        except AssertionError:
            p = subprocess.run(
                [MSGTRK, "--dns", dns, "--ca-file", pki[0], "track",
                 "--tls-memory", c.path("tls-memory"), "--json", "--server",
                 "hop1.test:%d" % mtqp["hop1"], "--secret", r["secret"],
                 r["envid"]], capture_output=True, timeout=WAIT)
            raise AssertionError("not delivered: %r\nhop2:\n%s" % (
                p, hop2.log()))
        hops = j["recipients"][0]["hops"]
        assert [h["action"] for h in hops] == ["transferred", "delivered"], j
        assert hops[0]["remote_mta"] == "dns; hop2.test", hops
    p = subprocess.run([MSGTRK, "--dns", dns, "--ca-file", pki[0], "track",
                        "--tls-memory", c.path("tls-memory"), "--server",
                        "hop1.test:%d" % mtqp["hop1"], "--secret",
                        rows[0]["secret"], rows[0]["envid"]],
                       capture_output=True, timeout=WAIT)
    print("--- msgtrk track:\n" + p.stdout.decode(), flush=True)
    # alice's own list over HTTP: both messages, newest first, each
    # recipient where hop1 sent it (its secret not shown here).
    st, raw = http_get(http, "/api/v1/sent", basic("alice@example.test"))
    mine = json.loads(raw)
    assert st == 200 and [m["envid"] for m in mine] == envids[::-1], raw
    assert all(m["recipients"][0]["final_action"] == "transferred"
               for m in mine), raw
    for m in mine:
        m["secret"] = "(%d characters)" % len(m["secret"])
    print("--- GET /api/v1/sent (alice, HTTP Basic):\n" +
          json.dumps(mine, indent=1), flush=True)
    body = open(maildir_one(hop2, "rcpt")).read()
    assert "with ESMTPSA" in body and "Message-ID: <" in body, body
    assert "alice@example.test\n\tby" not in body


# --- the sender's list on the web -------------------------------------

def http_get(port, path, headers=None):
    import http.client
    h = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    h.request("GET", path, headers=headers or {})
    r = h.getresponse()
    body = r.read()
    h.close()
    return r.status, body


def basic(login):
    return {"Authorization": "Basic " + base64.b64encode(
        ("%s:%s" % (login, USERS[login][0])).encode()).decode()}


def certifier_of(secret):
    import hashlib
    raw = base64.b64decode(secret + "=" * (-len(secret) % 4))
    d = hashlib.sha1(raw).digest()
    return base64.b64encode(d).decode().rstrip("=")


@suite.case
def http_sent_and_track(c):
    """The sender's own list: alice submits two messages and bob one
    (smtplib, 587, STARTTLS, AUTH); /api/v1/sent with alice's login lists
    hers only, newest first, with the Subject, hop1's view of each
    recipient (transferred, 2.0.0) and the secret hop1 made, whose
    certifier is the one hop2 got with MTRK.  Then in headless Chromium,
    as a user would: log in, open My sent mail, press Track on a message:
    the page follows it from hop1 to hop2 and says delivered."""
    import cdp
    http = free_port()
    dns, pki, hop1, hop2, mtqp = two_hops(
        c, http_listen="127.0.0.1:%d" % http)
    wait_port(http)
    sent = []
    for login, subject in (("alice@example.test", "first of two"),
                           ("bob@example.test", "bob's"),
                           ("alice@example.test", "second of two")):
        s = starttls(smtp587(hop1), hop1)
        assert auth_plain(s, login, USERS[login][0])[0] == 235
        code, text = submit(s, frm=login, msg=MSG.replace(
            "submission test", subject))
        s.quit()
        m = re.search(rb"tracking (\S+)$", text)
        assert code == 250 and m, (code, text)
        sent.append((login, subject, m.group(1).decode()))
    wait_for(lambda: len(os.listdir(os.path.join(
        hop2.data("mail"), "dest.test", "rcpt", "new"))) == 3
        if os.path.isdir(os.path.join(hop2.data("mail"), "dest.test",
                                      "rcpt", "new")) else False,
        what="three messages delivered at hop2")

    def listed(login):
        st, body = http_get(http, "/api/v1/sent", basic(login))
        assert st == 200, (st, body)
        j = json.loads(body)
        final = all(r["final_action"] == "transferred"
                    for m in j for r in m["recipients"])
        return j if final else None
    mine = wait_for(lambda: listed("alice@example.test"),
                    what="alice's list, final")
    assert [(m["envid"], m["subject"]) for m in mine] == [
        (sent[2][2], "second of two"), (sent[0][2], "first of two")], mine
    for m in mine:
        assert set(m) == {"envid", "secret", "submitted", "subject",
                          "recipients"}, m
        assert m["recipients"] == [{"address": "rcpt@dest.test",
                                    "final_action": "transferred",
                                    "status": "2.0.0"}], m
        # The date form of msgtrk log --json (RFC 5322).
        assert re.fullmatch(r"\w{3}, \d{1,2} \w{3} \d{4} "
                            r"\d\d:\d\d:\d\d \+0000", m["submitted"]), m
        got = hop2.query("SELECT certifier FROM msg WHERE envid = ?",
                         (m["envid"],))
        assert got and got[0]["certifier"] == certifier_of(m["secret"]), \
            (got, m)
    bobs = listed("bob@example.test")
    assert [m["envid"] for m in bobs] == [sent[1][2]], bobs
    st, _ = http_get(http, "/api/v1/sent")
    assert st == 401
    # The browser: log in, the list, Track.
    b = cdp.Browser(c.dir)
    c.on_cleanup(b.close)
    base = "http://127.0.0.1:%d" % http
    b.call("Page.navigate", url=base + "/login?next=/sent")
    b.wait_loaded("login")
    b.eval("document.querySelector('input[name=login]').value = %s"
           % json.dumps("alice@example.test"))
    b.eval("document.querySelector('input[name=password]').value = %s"
           % json.dumps(USERS["alice@example.test"][0]))
    b.eval("document.querySelector('form button').click()")
    b.wait_loaded("sent")
    rows = b.eval("[...document.querySelectorAll('table tr')].slice(1)"
                  ".map(tr => tr.innerText)")
    assert len(rows) == 2 and "second of two" in rows[0] and \
        "first of two" in rows[1], rows
    assert "rcpt@dest.test: transferred 2.0.0" in rows[0], rows
    b.eval("document.querySelectorAll('form.sent-track button')[1]"
           ".click()")
    b.wait_loaded("track", timeout=WAIT * 2)
    end = b.eval("[...document.querySelectorAll('section.rcpt p.end')]"
                 ".map(p => p.textContent)")
    boxes = b.eval("[...document.querySelectorAll('svg.path g.hop')]"
                   ".map(g => g.textContent)")
    assert len(end) == 1 and end[0].startswith("Delivered"), (end, boxes)
    assert len(boxes) == 2 and "hop1.test" in boxes[0] and \
        "hop2.test" in boxes[1], boxes
    assert sent[0][2] in b.eval("document.body.innerText")
    log1 = hop1.log()
    for m in mine + bobs:
        assert m["secret"] not in log1
    assert USERS["alice@example.test"][0] not in log1


if __name__ == "__main__":
    suite.main()
