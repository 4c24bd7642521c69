#!/usr/bin/env python3
"""msgtrkd's delivery, the gaps of issue 3: MX routing over dnsmasq,
outbound STARTTLS (opportunistic, failed handshake, require), the delay
DSN, the relayed DSN owed for a hop with MTRK but without DSN, the
retention purge, the per-host connection queue, and the fully-qualified
host name in the envid of `msgtrk send`.

The peer here is a small SMTP server of this file (TLS-capable with a
certificate the case makes with openssl, slow on demand, counting its
concurrent sessions); messages go in through msgtrkd's own SMTP server
and tracking records are read read-only from <data_dir>/tracking.db."""

import glob
import os
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import MSGTRK, WAIT, Suite, wait_for, wait_port  # noqa: E402

suite = Suite("delivery_gaps")

CERT = "A" * 26 + "E"  # a certifier: 27 base64 characters
ACTIONS = ["delayed", "delayed", "delivered", "transferred", "relayed",
           "expanded", "failed"]


class TPeer:
    """A threaded SMTP server on (host, port).

    ehlo: keywords after the name; "STARTTLS" is added when tls is set.
    tls: None, "ok" (a real handshake with cert/key), or "broken" (220 to
    STARTTLS, then, after the ClientHello, bytes that are not TLS, then
    close).  rcpt_reply(addr)
    gives the RCPT reply; data_delay holds the reply to the final dot
    that many seconds.  .messages: dicts with mail, rcpts, data, tls;
    .commands: every command line seen; .max_concurrent sessions."""

    def __init__(self, host="127.0.0.1", port=0, ehlo=("PIPELINING",),
                 tls=None, cert=None, rcpt_reply=None, data_delay=0.0,
                 data_reply="250 2.0.0 Ok: queued as TPEER"):
        self.ehlo = list(ehlo)
        self.tls = tls
        self.rcpt_reply = rcpt_reply or (lambda a: "250 2.1.5 Ok")
        self.data_delay = data_delay
        self.data_reply = data_reply
        self.messages, self.commands = [], []
        self.sessions = self.concurrent = self.max_concurrent = 0
        self.lock = threading.Lock()
        self.ctx = None
        if tls == "ok":
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(*cert)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(conn,),
                             daemon=True).start()

    def _run(self, conn):
        with self.lock:
            self.sessions += 1
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            conn.settimeout(WAIT)
            self._session(conn)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with self.lock:
                self.concurrent -= 1
            conn.close()

    def _session(self, conn):
        f = conn.makefile("rb")
        out = [conn]

        def w(line):
            out[0].sendall((line + "\r\n").encode())

        w("220 tpeer.test ESMTP")
        cur, tls = None, False
        while True:
            line = f.readline(4096)
            if not line:
                return
            cmd = line.decode("latin-1").rstrip("\r\n")
            with self.lock:
                self.commands.append(cmd)
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                kws = ["tpeer.test"] + self.ehlo
                if self.tls and not tls:
                    kws.append("STARTTLS")
                for i, k in enumerate(kws):
                    w("250%s%s" % ("-" if i < len(kws) - 1 else " ", k))
                cur = {"rcpts": []}
            elif verb == "STARTTLS" and self.tls and not tls:
                w("220 2.0.0 Ready to start TLS")
                if self.tls == "broken":
                    # Wait for the ClientHello (bytes right after the
                    # 220 would be plaintext injection, RFC 3207 §4.2),
                    # then answer with something that is not TLS.
                    conn.recv(4096)
                    conn.sendall(b"this is not a TLS record\r\n" * 4)
                    return
                s = self.ctx.wrap_socket(conn, server_side=True)
                out[0] = s
                f = s.makefile("rb")
                tls, cur = True, None
            elif verb == "MAIL":
                cur = {"mail": cmd, "rcpts": [], "tls": tls}
                w("250 2.1.0 Ok")
            elif verb == "RCPT":
                addr = cmd.split("<", 1)[1].split(">", 1)[0]
                r = self.rcpt_reply(addr)
                if r.startswith("2"):
                    cur["rcpts"].append(cmd)
                w(r)
            elif verb == "DATA":
                if not cur or not cur.get("rcpts"):
                    w("554 5.5.1 no valid recipients")
                    continue
                w("354 go ahead")
                data = []
                while True:
                    l = f.readline(1 << 20)
                    if not l or l == b".\r\n":
                        break
                    data.append(l[1:] if l.startswith(b"..") else l)
                cur["data"] = b"".join(data)
                if self.data_delay:
                    time.sleep(self.data_delay)
                w(self.data_reply)
                if self.data_reply.startswith("2"):
                    with self.lock:
                        self.messages.append(cur)
                cur = {"rcpts": []}
            elif verb in ("RSET", "NOOP"):
                w("250 2.0.0 Ok")
            elif verb == "QUIT":
                w("221 2.0.0 Bye")
                return
            else:
                w("502 5.5.2 unknown command")

    def wait_messages(self, n, timeout=WAIT):
        wait_for(lambda: len(self.messages) >= n, timeout,
                 "%d messages at the peer" % n)
        return self.messages


def tpeer(c, **kw):
    p = TPeer(**kw)
    c.on_cleanup(p.close)
    return p


def cert(c, name="tpeer.test"):
    """A self-signed certificate and key for name, made by openssl."""
    key, crt = c.path("peer.key"), c.path("peer.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=%s" % name,
                    "-addext", "subjectAltName=DNS:%s" % name],
                   check=True, capture_output=True, timeout=WAIT)
    return crt, key


def send(d, rcpts, sender="alice@src.test", mail_opts=(), rcpt_opts=(),
         body=b"Subject: t\r\n\r\nhello\r\n", smtp=None):
    if smtp is not None:
        smtp.sendmail(sender, rcpts, body, list(mail_opts), list(rcpt_opts))
        return
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=20) as s:
        s.ehlo("client.test")
        s.sendmail(sender, rcpts, body, list(mail_opts), list(rcpt_opts))


def query(d, sql):
    return d.query(sql)


def records(d):
    rows = query(d, "SELECT r.*, m.envid AS envid, m.qid AS qid, "
                    "m.expires AS expires, m.queued AS queued "
                    "FROM rcpt r JOIN msg m ON r.msg = m.id")
    for r in rows:
        a = r["action"]
        r["action"] = ACTIONS[a] if isinstance(a, int) else a
    return rows


def wait_action(d, action, n=1, timeout=WAIT):
    def got():
        rs = [r for r in records(d) if r["action"] == action]
        return rs if len(rs) >= n else None
    return wait_for(got, timeout, "%d %s record(s)" % (n, action))


def routes(c, port):
    return c.write("routes", "dest.test [127.0.0.1]:%d\n" % port)


def maildir(d, domain, user):
    return sorted(glob.glob(os.path.join(d.data("mail"), domain, user,
                                         "new", "*")))


def read(path):
    with open(path, "rb") as f:
        return f.read()


# --- 1. MX routing ---------------------------------------------------

# Loopback addresses of their own, so that port 25 is free for us.
MX1, MX2 = "127.0.17.2", "127.0.17.3"


def _port25_free(addr):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((addr, 25))
            return True
        except OSError:
            return False


def _mx_dns(c):
    return c.dnsmasq(["--mx-host=mxdom.test,mx1.mxdom.test,10",
                      "--mx-host=mxdom.test,mx2.mxdom.test,20",
                      "--host-record=mx1.mxdom.test,%s" % MX1,
                      "--host-record=mx2.mxdom.test,%s" % MX2])


@suite.case
def mx_first_closed_second_used(c):
    assert _port25_free(MX1), "%s:25 is in use" % MX1
    p2 = tpeer(c, host=MX2, port=25, ehlo=["PIPELINING", "DSN", "MTRK"])
    d = c.msgtrkd(dns_servers=_mx_dns(c))
    send(d, ["bob@mxdom.test"],
         mail_opts=["MTRK=%s" % CERT, "ENVID=mx1x8f3kq2@client.test"])
    m = p2.wait_messages(1)[0]
    assert "MTRK=%s:" % CERT in m["mail"], m
    r = wait_action(d, "transferred")[0]
    assert r["remote_mta"] == "dns; mx2.mxdom.test", r
    assert "connect host=mx1.mxdom.test" in d.log(), d.log()


@suite.case
def mx_preference_order(c):
    p1 = tpeer(c, host=MX1, port=25, ehlo=["PIPELINING"])
    p2 = tpeer(c, host=MX2, port=25, ehlo=["PIPELINING"])
    d = c.msgtrkd(dns_servers=_mx_dns(c))
    send(d, ["bob@mxdom.test"],
         mail_opts=["MTRK=%s" % CERT, "ENVID=mx2x8f3kq2@client.test"])
    p1.wait_messages(1)
    r = wait_action(d, "relayed")[0]
    assert r["remote_mta"] == "dns; mx1.mxdom.test", r
    assert r["status"] == "2.1.9", r
    assert p2.sessions == 0


# --- 2. outbound STARTTLS ---------------------------------------------

@suite.case
def tls_opportunistic(c):
    p = tpeer(c, ehlo=["PIPELINING", "DSN", "MTRK"], tls="ok",
              cert=cert(c))
    d = c.msgtrkd(routes=routes(c, p.port))
    send(d, ["bob@dest.test"],
         mail_opts=["MTRK=%s" % CERT, "ENVID=tls1x8f3kq2@client.test"])
    m = p.wait_messages(1)[0]
    assert m["tls"] is True, m
    assert "STARTTLS" in p.commands, p.commands
    # Nothing of the transaction went in plaintext: MAIL after STARTTLS.
    assert p.commands.index("STARTTLS") < \
        [i for i, x in enumerate(p.commands) if x.startswith("MAIL")][0]
    wait_action(d, "transferred")


@suite.case
def tls_handshake_fails_plaintext_fallback(c):
    p = tpeer(c, ehlo=["PIPELINING"], tls="broken")
    d = c.msgtrkd(routes=routes(c, p.port))
    send(d, ["bob@dest.test"])
    m = p.wait_messages(1)[0]
    assert m["tls"] is False, m
    assert p.sessions >= 2, p.sessions
    # The second session did not try STARTTLS again.
    assert p.commands.count("STARTTLS") == 1, p.commands
    r = wait_action(d, "relayed")[0]
    assert r["remote_mta"] == "dns; [127.0.0.1]", r
    assert "delivery tls host=[127.0.0.1]" in d.log(), d.log()


@suite.case
def tls_required_peer_without_starttls(c):
    p = tpeer(c, ehlo=["PIPELINING", "DSN", "MTRK"])
    d = c.msgtrkd(routes=routes(c, p.port), smtp_tls_policy="require")
    send(d, ["bob@dest.test"],
         mail_opts=["MTRK=%s" % CERT, "ENVID=tls3x8f3kq2@client.test"])
    wait_for(lambda: "TLS required" in d.log(), what="TLS refusal")
    wait_for(lambda: p.sessions >= 2, what="a retry")  # retry_schedule 1s
    r = wait_action(d, "delayed")[0]
    assert r["status"].startswith("4."), r
    assert "TLS required" in (r["reply"] or ""), r
    # Never plaintext: not one transaction command reached the peer.
    assert not [x for x in p.commands
                if x.split(" ")[0] in ("MAIL", "RCPT", "DATA")], p.commands
    assert p.messages == []


# --- 3. the delay DSN ------------------------------------------------

@suite.case
def delay_dsn_once_with_notify_delay(c):
    p = tpeer(c, ehlo=["PIPELINING"],
              rcpt_reply=lambda a: "451 4.3.0 try later")
    d = c.msgtrkd(routes=routes(c, p.port), local_domains="src.test",
                  delay_warning="2s", queue_lifetime="1h")
    send(d, ["bob@dest.test"], sender="alice@src.test",
         rcpt_opts=["NOTIFY=DELAY,FAILURE"])
    send(d, ["bob@dest.test"], sender="carol@src.test",
         rcpt_opts=["NOTIFY=FAILURE"])
    send(d, ["bob@dest.test"], sender="dave@src.test")  # no NOTIFY
    files = wait_for(lambda: maildir(d, "src.test", "alice"),
                     what="delay DSN")
    text = read(files[0])
    assert b"multipart/report" in text and \
        b"report-type=delivery-status" in text, text
    assert b"Action: delayed" in text, text
    assert b"Will-Retry-Until:" in text, text
    assert b"Status: 4.3.0" in text, text
    # Several more attempts: still one DSN, none for the others.
    n = p.sessions
    wait_for(lambda: p.sessions >= n + 6, what="more attempts")
    assert len(maildir(d, "src.test", "alice")) == 1
    assert maildir(d, "src.test", "carol") == []
    assert maildir(d, "src.test", "dave") == []
    # ... and not again after a restart (delay_warned is durable).
    d.restart()
    n = p.sessions
    wait_for(lambda: p.sessions >= n + 3, what="attempts after restart")
    assert len(maildir(d, "src.test", "alice")) == 1


# --- 4. the relayed DSN of a hop with MTRK but no DSN ------------------

@suite.case
def success_dsn_for_mtrk_hop_without_dsn(c):
    p = tpeer(c, ehlo=["PIPELINING", "MTRK"])
    d = c.msgtrkd(routes=routes(c, p.port), local_domains="src.test")
    send(d, ["bob@dest.test"],
         mail_opts=["MTRK=%s" % CERT, "ENVID=sd1x8f3kq2@client.test"],
         rcpt_opts=["NOTIFY=SUCCESS", "ORCPT=rfc822;bob@dest.test"])
    m = p.wait_messages(1)[0]
    assert "MTRK=" in m["mail"] and "NOTIFY" not in m["rcpts"][0], m
    r = wait_action(d, "transferred")[0]
    assert r["status"] == "2.0.0", r
    files = wait_for(lambda: maildir(d, "src.test", "alice"),
                     what="relayed DSN")
    text = read(files[0])
    assert b"report-type=delivery-status" in text, text
    assert b"Action: relayed" in text, text
    assert b"Original-Envelope-Id: sd1x8f3kq2@client.test" in text, text
    assert b"Remote-MTA: dns; [127.0.0.1]" in text, text
    assert len(files) == 1


@suite.case
def no_success_dsn_when_hop_has_dsn(c):
    p = tpeer(c, ehlo=["PIPELINING", "MTRK", "DSN"],
              rcpt_reply=lambda a: "550 5.1.1 no such user"
              if a.startswith("nobody") else "250 2.1.5 Ok")
    d = c.msgtrkd(routes=routes(c, p.port), local_domains="src.test")
    send(d, ["bob@dest.test"],
         mail_opts=["MTRK=%s" % CERT, "ENVID=sd2x8f3kq2@client.test"],
         rcpt_opts=["NOTIFY=SUCCESS"])
    m = p.wait_messages(1)[0]
    assert "NOTIFY=SUCCESS" in m["rcpts"][0], m
    wait_action(d, "transferred")
    wait_for(lambda: "delivery done" in d.log(), what="done")
    # The DSN duty went on with the message.  A bounce sent after it is
    # the only mail that comes back here.
    send(d, ["nobody@dest.test"], rcpt_opts=["NOTIFY=FAILURE"])
    files = wait_for(lambda: maildir(d, "src.test", "alice"),
                     what="the bounce")
    assert len(files) == 1, files
    assert b"Action: failed" in read(files[0])


# --- 5. the retention purge ------------------------------------------

@suite.case
def retention_purge(c):
    # bob@here.test is delivered locally; x@dest.test stays queued (its
    # route is a closed port).
    d = c.msgtrkd(local_domains="here.test", purge_interval="1s",
                  routes=c.write("routes", "dest.test [127.0.0.1]:1\n"),
                  retry_schedule="1h")
    send(d, ["bob@here.test"],
         mail_opts=["MTRK=%s:2" % CERT, "ENVID=pg1x8f3kq2@client.test"])
    send(d, ["x@dest.test"],
         mail_opts=["MTRK=%s:2" % CERT, "ENVID=pg2x8f3kq2@client.test"])
    wait_action(d, "delivered")
    wait_action(d, "delayed")
    envids = lambda: sorted(r["envid"] for r in records(d))
    assert envids() == ["pg1x8f3kq2@client.test", "pg2x8f3kq2@client.test"]
    wait_for(lambda: envids() == ["pg2x8f3kq2@client.test"],
             what="the delivered message's record purged")
    assert "store purge expired=1" in d.log(), d.log()
    # The queued one is past its retention and stays while it is queued.
    r = records(d)[0]
    assert r["expires"] < time.time() and r["queued"] == 1, r
    time.sleep(2.5)  # > 2 purge intervals
    assert envids() == ["pg2x8f3kq2@client.test"]


# --- 7. the per-host connection queue --------------------------------

@suite.case
def conn_limit_waits_for_slot(c):
    n = 14  # > DELIVERY_CONN_PER_HOST_MAX (10)
    p = tpeer(c, ehlo=["PIPELINING", "MTRK", "DSN"], data_delay=3.0)
    # A retry an hour away: a message pushed to the next interval would
    # not arrive within this case.
    d = c.msgtrkd(routes=routes(c, p.port), retry_schedule="1h")
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=20) as s:
        s.ehlo("client.test")
        for i in range(n):
            send(d, ["bob%d@dest.test" % i], smtp=s,
                 mail_opts=["MTRK=%s" % CERT,
                            "ENVID=cl%dx8f3kq2@client.test" % i])
    p.wait_messages(n, timeout=WAIT * 2)
    wait_action(d, "transferred", n)
    assert p.max_concurrent == 10, p.max_concurrent
    assert "delivery wait host=[127.0.0.1]" in d.log(), d.log()
    assert "too many connections" not in d.log()
    assert [r for r in records(d) if r["action"] != "transferred"] == []


@suite.case
def conn_limit_sigterm_while_waiting(c):
    n = 12
    p = tpeer(c, ehlo=["PIPELINING", "MTRK", "DSN"], data_delay=3.0)
    d = c.msgtrkd(routes=routes(c, p.port), retry_schedule="1h")
    with smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=20) as s:
        s.ehlo("client.test")
        for i in range(n):
            send(d, ["bob%d@dest.test" % i], smtp=s)
    wait_for(lambda: d.log().count("delivery wait host=") >= 2,
             what="waiting attempts")
    # SIGTERM withdraws the waiting attempts (and the running ones).
    assert d.stop() == 0, d.log()
    p.data_delay = 0
    d.start()
    # (The peer still holds the first daemon's abandoned sessions, so its
    # concurrency says nothing about this daemon's limit here.)
    wait_action(d, "relayed", n)


# --- 6. msgtrk send: the envid's host name ----------------------------

def _send_cli(c, d, argv_prefix=()):
    body = b"Subject: envid\n\nhello\n"
    r = subprocess.run(list(argv_prefix) + [
        MSGTRK, "send", "--server", "127.0.0.1:%d" % d.smtp_port,
        "--keyring", c.path("keyring"), "bob@here.test"],
        input=body, capture_output=True, timeout=WAIT)
    assert r.returncode == 0, r
    line = r.stdout.decode().splitlines()[0]
    assert line.startswith("envid: "), r.stdout
    return line[len("envid: "):]


def _canonical():
    name = socket.gethostname()
    try:
        cn = socket.getaddrinfo(name, None, socket.AF_UNSPEC,
                                socket.SOCK_STREAM, 0,
                                socket.AI_CANONNAME)[0][3]
    except OSError:
        cn = ""
    return cn if "." in cn else name


def _unshare_ok():
    r = subprocess.run(["unshare", "-u", "-m", "true"], capture_output=True,
                       timeout=WAIT)
    return r.returncode == 0


@suite.case
def send_envid_host_is_canonical(c):
    d = c.msgtrkd(local_domains="here.test")
    envid = _send_cli(c, d)
    assert envid.rsplit("@", 1)[1] == _canonical(), envid
    if not _unshare_ok():
        print("  (no unshare here: the namespace checks are skipped)")
        return
    # A host whose short name "h17" maps to h17.example.test: the envid
    # carries the FQDN; with no dotted name known, the short name.
    for hosts, want in (("127.0.0.1 h17.example.test h17\n",
                         "h17.example.test"),
                        ("127.0.0.1 h17\n", "h17")):
        hf = c.write("hosts", hosts)
        envid = _send_cli(c, d, ["unshare", "-u", "-m", "sh", "-c",
                                 'hostname h17 && mount --bind "$0" '
                                 '/etc/hosts && exec "$@"', hf])
        assert envid.rsplit("@", 1)[1] == want, (hosts, envid)
        wait_for(lambda: [r for r in records(d) if r["envid"] == envid],
                 what="record of " + envid)


if __name__ == "__main__":
    suite.main()
