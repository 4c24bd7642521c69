"""msgtrk (the command-line tool) against real peers on 127.0.0.1.

send: against the harness's scripted SMTP peer (exact MAIL/RCPT lines)
and against a live msgtrkd (the MTRK it stored); usage errors; refused
recipients; STARTTLS with a private CA.  queue and log: against a
msgtrkd whose messages stay queued (routed to a closed port).  track:
against msgtrkd's MTQP listener when one is configured."""

import base64
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import MSGTRK, WAIT, Suite, free_port, wait_for  # noqa: E402

suite = Suite("cli")
MSG = b"Subject: test\n\nline one\n.leading dot\n..two dots\nlast"


def msgtrk(args, stdin=MSG, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([MSGTRK] + args, input=stdin, capture_output=True,
                       timeout=WAIT * 3, env=e)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def certifier(secret_b64):
    pad = "=" * (-len(secret_b64) % 4)
    a = base64.b64decode(secret_b64 + pad, validate=True)
    assert len(a) == 32, len(a)
    return base64.b64encode(hashlib.sha1(a).digest()).decode().rstrip("=")


def parse_send_output(out):
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert lines[0].startswith("envid: "), out
    assert lines[1].startswith("uri: mtqp://"), out
    return lines[0][7:], lines[1][5:]


def keyring_lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def mail_param(mail, name):
    for w in mail.split()[2:]:
        if w.upper().startswith(name + "="):
            return w.split("=", 1)[1]
    return None


@suite.case
def send_to_peer_tracked(c):
    p = c.peer(ehlo=("PIPELINING", "8BITMIME", "DSN", "MTRK", "SIZE 1000000"))
    kr = c.path("home", "sub", "keyring")
    rc, out, err = msgtrk(["send", "--server", "127.0.0.1:%d" % p.port,
                           "--keyring", kr, "--from", "me@src.test",
                           "--notify", "success,failure", "--ret", "hdrs",
                           "--timeout", "2d", "a@dest.test", "b+x@dest.test"])
    assert rc == 0, (rc, out, err)
    envid, uri = parse_send_output(out)
    assert err == "", err
    m = p.wait_messages(1)[0]
    assert m["mail"].startswith("MAIL FROM:<me@src.test>"), m
    assert mail_param(m["mail"], "ENVID") == envid, m
    assert mail_param(m["mail"], "RET") == "HDRS", m
    assert mail_param(m["mail"], "SIZE") is not None, m
    mtrk = mail_param(m["mail"], "MTRK")
    cert, timeout = mtrk.split(":")
    assert timeout == "172800", mtrk
    assert len(m["rcpts"]) == 2
    assert "NOTIFY=SUCCESS,FAILURE" in m["rcpts"][0], m["rcpts"]
    assert "ORCPT=rfc822;a@dest.test" in m["rcpts"][0], m["rcpts"]
    assert "ORCPT=rfc822;b+2Bx@dest.test" in m["rcpts"][1], m["rcpts"]
    assert m["data"] == (b"Subject: test\r\n\r\nline one\r\n.leading dot\r\n"
                         b"..two dots\r\nlast\r\n"), m["data"]
    st = os.stat(kr)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert stat.S_IMODE(os.stat(os.path.dirname(kr)).st_mode) == 0o700
    (k,) = keyring_lines(kr)
    assert k["envid"] == envid and k["recipients"] == ["a@dest.test",
                                                        "b+x@dest.test"], k
    assert k["server"] == "127.0.0.1:%d" % p.port, k
    assert k["mtqp"] == "127.0.0.1", k
    assert certifier(k["secret"]) == cert, (k, cert)
    assert uri == "mtqp://127.0.0.1/track/%s/%s" % (
        envid, k["secret"].replace("/", "%2F")), (uri, k)
    # A second send appends; the first line stays as it was.
    rc, out2, err = msgtrk(["send", "--server", "127.0.0.1:%d" % p.port,
                            "--keyring", kr, "--mtqp", "track.test:2000",
                            "x@dest.test"])
    assert rc == 0, err
    e2, uri2 = parse_send_output(out2)
    ks = keyring_lines(kr)
    assert len(ks) == 2 and ks[0] == k and ks[1]["envid"] == e2, ks
    assert uri2.startswith("mtqp://track.test:2000/track/"), uri2
    assert ks[0]["secret"] != ks[1]["secret"]


@suite.case
def send_no_track(c):
    p = c.peer(ehlo=("PIPELINING",))
    kr = c.path("keyring")
    rc, out, err = msgtrk(["send", "--no-track", "--server",
                           "127.0.0.1:%d" % p.port, "a@dest.test"],
                          env={"HOME": c.path("h")})
    assert rc == 0 and out == "" and err == "", (rc, out, err)
    m = p.wait_messages(1)[0]
    assert "MTRK=" not in m["mail"] and "ENVID=" not in m["mail"], m
    assert "ORCPT" not in m["rcpts"][0], m
    assert not os.path.exists(kr) and not os.path.exists(c.path("h"))


@suite.case
def send_no_track_ignores_tracking_options(c):
    # Scripts that always pass --mtqp/--timeout/--keyring and toggle
    # --no-track: accepted, ignored, one warning naming what was given.
    p = c.peer(ehlo=("PIPELINING", "DSN", "MTRK"))
    kr = c.path("keyring")
    srv = ["--server", "127.0.0.1:%d" % p.port]
    for opts, warn in (
            (["--mtqp", "track.test:1038", "--keyring", kr],
             "msgtrk: --no-track: ignoring --mtqp, --keyring\n"),
            (["--timeout", "2d", "--mtqp", "track.test", "--keyring", kr],
             "msgtrk: --no-track: ignoring --mtqp, --timeout, --keyring\n"),
            (["--timeout", "1d"],
             "msgtrk: --no-track: ignoring --timeout\n")):
        n = len(p.messages)
        rc, out, err = msgtrk(["send"] + srv + opts + ["--no-track",
                                                       "a@dest.test"],
                              env={"HOME": c.path("h")})
        assert rc == 0 and out == "" and err == warn, (opts, rc, out, err)
        m = p.wait_messages(n + 1)[n]
        assert "MTRK=" not in m["mail"] and "ENVID=" not in m["mail"], m
    assert not os.path.exists(kr) and not os.path.exists(c.path("h"))
    # The exit status is the transaction's, as without the options.
    p2 = c.peer(rcpt_reply=lambda a: "550 5.1.1 no such user")
    rc, out, err = msgtrk(["send", "--server", "127.0.0.1:%d" % p2.port,
                           "--no-track", "--keyring", kr, "a@dest.test"])
    assert rc == 1, (rc, out, err)
    assert err.splitlines()[0] == "msgtrk: --no-track: ignoring --keyring", err


@suite.case
def send_refused_recipient(c):
    p = c.peer(rcpt_reply=lambda a: "550 5.1.1 no such user"
               if a.startswith("bad") else "250 2.1.5 Ok")
    kr = c.path("keyring")
    rc, out, err = msgtrk(["send", "--server", "127.0.0.1:%d" % p.port,
                           "--keyring", kr, "ok@dest.test", "bad@dest.test"])
    assert rc == 1, (rc, out, err)
    assert out == "" and "550 5.1.1 no such user" in err, err
    assert "bad@dest.test" in err and len(err.splitlines()) == 1, err
    assert not os.path.exists(kr) and p.messages == []


@suite.case
def send_data_refused(c):
    p = c.peer(data_reply="554 5.7.1 rejected by policy")
    kr = c.path("keyring")
    rc, out, err = msgtrk(["send", "--server", "127.0.0.1:%d" % p.port,
                           "--keyring", kr, "a@dest.test"])
    assert rc == 1 and out == "" and "554 5.7.1" in err, (rc, out, err)
    assert not os.path.exists(kr)


@suite.case
def send_server_without_mtrk(c):
    p = c.peer(ehlo=("PIPELINING", "DSN"))
    rc, out, err = msgtrk(["send", "--server", "127.0.0.1:%d" % p.port,
                           "--keyring", c.path("k"), "a@dest.test"])
    assert rc == 1 and "MTRK" in err and "--no-track" in err, err
    rc, out, err = msgtrk(["send", "--tls", "--no-track", "--server",
                           "127.0.0.1:%d" % p.port, "a@dest.test"])
    assert rc == 1 and "STARTTLS" in err, err
    assert p.messages == []


@suite.case
def send_unreachable(c):
    port = free_port()
    rc, out, err = msgtrk(["send", "--server", "127.0.0.1:%d" % port,
                           "--keyring", c.path("k"), "a@dest.test"])
    assert rc == 1 and "connect" in err and "refused" in err, err
    assert not os.path.exists(c.path("k"))


@suite.case
def send_message_errors(c):
    p = c.peer()
    srv = "127.0.0.1:%d" % p.port
    for body, what in ((b"a\rb\n", "bare CR"), (b"a\0b\n", "NUL"),
                       (b"x" * 999 + b"\n", "longer than 998")):
        rc, out, err = msgtrk(["send", "--server", srv, "--keyring",
                               c.path("k"), "a@dest.test"], stdin=body)
        assert rc == 1 and what in err, (body[:10], rc, err)
    # 8-bit text needs 8BITMIME, which this peer does not offer.
    p2 = c.peer(ehlo=("DSN", "MTRK"))
    rc, out, err = msgtrk(["send", "--server", "127.0.0.1:%d" % p2.port,
                           "--keyring", c.path("k"), "a@dest.test"],
                          stdin="caf\u00e9\n".encode())
    assert rc == 1 and "8BITMIME" in err, err
    rc, out, err = msgtrk(["send", "--server", srv, "--keyring", c.path("k"),
                           "a@dest.test"], stdin="caf\u00e9\n".encode())
    assert rc == 0, err
    m = p.wait_messages(1)[0]
    assert "BODY=8BITMIME" in m["mail"], m
    assert not os.path.exists(c.path("k")) or len(keyring_lines(c.path("k"))) == 1


@suite.case
def usage_errors(c):
    cases = [
        [],
        ["frobnicate"],
        ["send"],
        ["send", "--ret", "all", "a@b.test"],
        ["send", "--notify", "never,success", "a@b.test"],
        ["send", "--notify", "sometimes", "a@b.test"],
        ["send", "--timeout", "0", "a@b.test"],
        ["send", "--timeout", "1000000000", "a@b.test"],
        ["send", "--server", "host:0", "a@b.test"],
        ["send", "--server", "bad host", "a@b.test"],
        ["send", "not-an-address"],
        ["send", "<a@b.test>"],
        ["send", "--bogus", "a@b.test"],
        ["send", "--no-track", "--timeout", "0", "a@b.test"],
        ["send", "--no-track", "--mtqp", "h:0", "a@b.test"],
        ["send", "--dns"],
        ["track"],
        ["track", "a@b.test", "c@d.test"],
        ["track", "--json", "--raw", "x@y.test"],
        ["track", "no-at-sign"],
        ["track", "mtqp://h.test/nottrack/a@b/c"],
        ["track", "--secret", "!!!", "x@y.test"],
        ["track", "--keyring", c.path("missing"), "x@y.test"],
        ["queue", "extra"],
        ["queue", "-c", c.path("missing.conf")],
        ["log", "--status", "lost"],
        ["log", "--since", "yesterday-ish"],
    ]
    for args in cases:
        rc, out, err = msgtrk(args, stdin=b"")
        assert rc == 2, (args, rc, out, err)
        assert err.startswith("msgtrk") or err.startswith("usage"), (args, err)
    rc, out, err = msgtrk(["--help"])
    assert rc == 0 and "msgtrk send" in out and "--dns" in out
    rc, out, err = msgtrk(["--version"])
    assert rc == 0 and out.startswith("msgtrk ")


@suite.case
def keyring_malformed(c):
    kr = c.write("keyring", '{"envid":"a@b.test","secret":"x"\n')
    rc, out, err = msgtrk(["track", "--keyring", kr, "a@b.test"])
    assert rc == 2 and "keyring:1:" in err, err
    kr = c.write("keyring2", '\n{"envid":"a@b.test","server":"h:25"}\n')
    rc, out, err = msgtrk(["track", "--keyring", kr, "a@b.test"])
    assert rc == 2 and "keyring2:2: no \"secret\"" in err, err


@suite.case
def track_unreachable(c):
    port = free_port()
    secret = base64.b64encode(b"k" * 32).decode().rstrip("=")
    uri = "mtqp://127.0.0.1:%d/track/abc@h.test/%s" % (
        port, secret.replace("/", "%2F"))
    rc, out, err = msgtrk(["track", uri])
    assert rc == 1, (rc, out, err)
    assert err.strip() != "", err


def _msgtrkd_queued(c, **extra):
    # Every message is routed to a closed port: it stays queued.
    routes = c.write("routes", "*  [127.0.0.1]:%d\n" % free_port())
    conf = dict(routes=routes, retry_schedule="1h")
    conf.update(extra)
    return c.msgtrkd(**conf)


@suite.case
def send_to_msgtrkd_and_inspect(c):
    d = _msgtrkd_queued(c)
    kr = c.path("keyring")
    rc, out, err = msgtrk(["send", "--server", "127.0.0.1:%d" % d.smtp_port,
                           "--keyring", kr, "--from", "me@src.test",
                           "a@dest.test", "b@dest.test"])
    assert rc == 0, (rc, out, err)
    envid, uri = parse_send_output(out)
    (k,) = keyring_lines(kr)
    db = sqlite3.connect("file:%s?mode=ro" % d.data("tracking.db"), uri=True)
    try:
        certs = [r[0] for r in db.execute("SELECT certifier FROM msg")]
    finally:
        db.close()
    assert certs == [certifier(k["secret"])], (certs, k)
    # queue: the message is there, text and JSON.
    rc, out, err = msgtrk(["queue", "-c", d.conf_file])
    assert rc == 0 and "me@src.test" in out and "a@dest.test" in out, (
        out, err)
    rc, out, err = msgtrk(["queue", "-c", d.conf_file, "--json"])
    assert rc == 0, err
    (q,) = [json.loads(l) for l in out.splitlines()]
    assert set(q) == {"queue_id", "envid", "sender", "recipients",
                      "arrival_date", "next_attempt", "attempts",
                      "held", "last_error"}, q
    assert q["held"] is False, q
    assert q["envid"] == envid and q["sender"] == "me@src.test", q
    assert q["recipients"] == ["a@dest.test", "b@dest.test"], q
    # log: one record per recipient, filters.
    wait_for(lambda: len(msgtrk(["log", "-c", d.conf_file, "--json"])[1]
                         .splitlines()) == 2, what="2 log records")
    rc, out, err = msgtrk(["log", "-c", d.conf_file, "--json"])
    recs = [json.loads(l) for l in out.splitlines()]
    assert {r["original_recipient"].split(";")[1].strip() for r in recs} == \
        {"a@dest.test", "b@dest.test"}, recs
    for r in recs:
        assert set(r) == {"queue_id", "envid", "sender", "original_recipient",
                          "final_recipient", "action", "status", "remote_mta",
                          "arrival_date", "last_attempt_date",
                          "will_retry_until", "expires", "reply"}, r
        assert r["queue_id"] == q["queue_id"] and r["envid"] == envid
        assert r["action"] == "delayed", r
    for args, n in ((["--rcpt", "A@dest.test"], 1), (["--envid", envid], 2),
                    (["--envid", "other@x.test"], 0),
                    (["--sender", "me@src.test"], 2),
                    (["--status", "delivered"], 0),
                    (["--status", "delayed"], 2), (["--since", "1h"], 2)):
        rc, out, err = msgtrk(["log", "-c", d.conf_file, "--json"] + args)
        assert rc == 0 and len(out.splitlines()) == n, (args, out, err)
    rc, out, err = msgtrk(["log", "-c", d.conf_file])
    assert rc == 0 and out.count("delayed") == 2 and envid in out, out


@suite.case
def send_starttls_ca(c):
    ca, cert, key = _make_certs(c, "mx.test")
    d = _msgtrkd_queued(c, tls_cert_file=cert, tls_key_file=key)
    dns = c.dnsmasq(["--host-record=mx.test,127.0.0.1",
                     "--host-record=other.test,127.0.0.1"])
    base = ["--dns", dns, "--ca-file", ca, "send", "--tls",
            "--keyring", c.path("k")]
    rc, out, err = msgtrk(base + ["--server", "mx.test:%d" % d.smtp_port,
                                  "a@dest.test"])
    assert rc == 0, (rc, out, err)
    parse_send_output(out)
    # The same server under a name its certificate does not carry.
    rc, out, err = msgtrk(base + ["--server", "other.test:%d" % d.smtp_port,
                                  "a@dest.test"])
    assert rc == 1 and "certificate" in err, (rc, err)
    assert len(keyring_lines(c.path("k"))) == 1
    # Global options after the command work too.
    rc, out, err = msgtrk(["send", "--tls", "--keyring", c.path("k"),
                           "--server", "mx.test:%d" % d.smtp_port,
                           "a@dest.test", "--dns", dns, "--ca-file", ca])
    assert rc == 0, err


@suite.case
def track_one_node(c):
    mport = free_port()
    d = _msgtrkd_queued(c, mtqp_listen="127.0.0.1:%d" % mport)
    kr = c.path("k")
    rc, out, err = msgtrk(["send", "--server", "127.0.0.1:%d" % d.smtp_port,
                           "--mtqp", "127.0.0.1:%d" % mport, "--keyring", kr,
                           "a@dest.test"])
    assert rc == 0, err
    envid, uri = parse_send_output(out)
    rc, out, err = msgtrk(["track", "--keyring", kr, "--json", envid])
    assert rc == 0, (rc, out, err)
    j = json.loads(out)
    assert j["envid"] == envid, j
    (r,) = j["recipients"]
    assert r["original_recipient"].replace(" ", "") == "rfc822;a@dest.test"
    assert r["final_action"] == "delayed", r
    assert r["hops"][0]["action"] == "delayed", r
    assert r["hops"][0]["server"].endswith(":%d" % mport), r
    rc, out2, err = msgtrk(["track", uri])
    assert rc == 0 and "delayed" in out2, (out2, err)
    rc, out3, err = msgtrk(["track", "--raw", uri])
    assert rc == 0 and out3.startswith("# 127.0.0.1:%d %s\n" % (mport, envid))
    # A wrong secret is -ERR/noinfo: exit 1.
    bad = base64.b64encode(b"z" * 32).decode().rstrip("=")
    rc, out, err = msgtrk(["track", "--server", "127.0.0.1:%d" % mport,
                           "--secret", bad, envid])
    assert rc == 1 and "noinfo" in err, (rc, out, err)


def _make_certs(c, name):
    def run(*a):
        subprocess.run(a, check=True, capture_output=True, timeout=WAIT)
    ca, cakey = c.path("ca.crt"), c.path("ca.key")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
        "-keyout", cakey, "-out", ca, "-subj", "/CN=test-ca", "-days", "2")
    key, csr, crt = c.path("srv.key"), c.path("srv.csr"), c.path("srv.crt")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
        "-out", csr, "-subj", "/CN=" + name)
    ext = c.write("ext", "subjectAltName=DNS:%s\n" % name)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey,
        "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext)
    return ca, crt, key


if __name__ == "__main__":
    suite.main()
