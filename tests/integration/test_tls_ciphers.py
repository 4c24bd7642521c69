#!/usr/bin/env python3
"""The TLS cipher policy (src/common/tls.h) on every context: TLS 1.2
with ECDHE key exchange and AEAD ciphers only, in the server's order.

Server side: `openssl s_client -starttls smtp -tls1_2 -cipher C` against
msgtrkd's SMTP STARTTLS, and the same OpenSSL through Python's ssl after
MTQP's STARTTLS: AES128-SHA, AES256-SHA and AES128-SHA256 (RSA key
exchange, CBC) are refused, ECDHE-RSA-AES128-GCM-SHA256 works, and with
several offered the server takes its own first choice.  Client side:
msgtrkd's outbound SMTP and msgtrk send --tls against a peer that offers
only AES128-SHA do not negotiate it.

    MSGTRK_BUILD=build-asan python3 tests/integration/test_tls_ciphers.py
"""

import os
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import MSGTRK, WAIT, Suite, free_port, wait_for  # noqa: E402
from harness import wait_port  # noqa: E402
from test_delivery_gaps import TPeer, records, send  # noqa: E402
from test_hostile import mtqp  # noqa: E402

suite = Suite("tls_ciphers")
WEAK = ("AES128-SHA", "AES256-SHA", "AES128-SHA256")
GOOD = "ECDHE-RSA-AES128-GCM-SHA256"
FIRST = "ECDHE-RSA-AES128-GCM-SHA256"  # the server's first RSA choice
# The client's own order puts these before FIRST.
CLIENT_ORDER = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:" + \
    FIRST


def run(*a):
    return subprocess.run(a, check=True, capture_output=True, timeout=WAIT)


def certs(c, name="mx.test"):
    ca, cakey = c.path("ca.crt"), c.path("ca.key")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
        "-keyout", cakey, "-out", ca, "-subj", "/CN=test-ca", "-days", "2")
    key, csr, crt = c.path("srv.key"), c.path("srv.csr"), c.path("srv.crt")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
        "-out", csr, "-subj", "/CN=" + name)
    ext = c.write("ext", "subjectAltName=DNS:%s\n" % name)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey,
        "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext)
    os.chmod(key, 0o644)
    return ca, crt, key


def tls_daemon(c):
    ca, crt, key = certs(c)
    mport = free_port()
    d = c.msgtrkd(tls_cert_file=crt, tls_key_file=key,
                  mtqp_listen="127.0.0.1:%d" % mport,
                  local_domains="dest.test")
    d.mtqp_port = mport
    wait_port(mport)
    return d, ca


def s_client_smtp(port, cipher):
    """(handshake done, negotiated cipher) of openssl s_client over SMTP
    STARTTLS with TLS 1.2 and the cipher list given (security level 0, so
    that the client really offers what it is told)."""
    p = subprocess.run(["openssl", "s_client", "-starttls", "smtp",
                        "-connect", "127.0.0.1:%d" % port, "-tls1_2",
                        "-cipher", cipher + ":@SECLEVEL=0", "-brief"],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=WAIT)
    out = (p.stdout + p.stderr).decode(errors="replace")
    got = None
    for line in out.splitlines():
        if line.startswith("Ciphersuite: "):
            got = line.split(": ", 1)[1].strip()
    return p.returncode == 0 and got is not None, got, out


def mtqp_tls(d, cipher):
    """(handshake done, negotiated cipher) after MTQP STARTTLS (RFC 3887
    §6), TLS 1.2 with the cipher list given."""
    k = mtqp(d)
    k.send("STARTTLS mx.test\r\n")
    assert k.line().startswith("+OK"), "no +OK to STARTTLS"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(cipher + ":@SECLEVEL=0")
    try:
        t = ctx.wrap_socket(k.sock, server_hostname="mx.test")
    except (ssl.SSLError, OSError) as e:
        k.close()
        return False, None, str(e)
    got = t.cipher()[0]
    t.close()
    return True, got, ""


@suite.case
def smtp_server_ciphers(c):
    d, _ = tls_daemon(c)
    for weak in WEAK:
        ok, got, out = s_client_smtp(d.smtp_port, weak)
        assert not ok, (weak, got, out)
    ok, got, out = s_client_smtp(d.smtp_port, GOOD)
    assert ok and got == GOOD, (got, out)
    # Several offered, in the client's order: the server's first wins.
    ok, got, out = s_client_smtp(d.smtp_port, CLIENT_ORDER)
    assert ok and got == FIRST, (got, out)
    # Weak and good offered together: the good one.
    ok, got, out = s_client_smtp(d.smtp_port, "AES128-SHA:AES256-SHA:" + GOOD)
    assert ok and got == GOOD, (got, out)


@suite.case
def mtqp_server_ciphers(c):
    d, _ = tls_daemon(c)
    for weak in WEAK:
        ok, got, why = mtqp_tls(d, weak)
        assert not ok, (weak, got)
    ok, got, why = mtqp_tls(d, GOOD)
    assert ok and got == GOOD, (got, why)
    ok, got, why = mtqp_tls(d, CLIENT_ORDER)
    assert ok and got == FIRST, (got, why)


def weak_peer(c, cert, **kw):
    """An SMTP peer whose TLS 1.2 offers AES128-SHA alone."""
    p = TPeer(ehlo=["PIPELINING"], tls="ok", cert=cert, **kw)
    c.on_cleanup(p.close)
    p.ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    p.ctx.set_ciphers("AES128-SHA:@SECLEVEL=0")
    return p


@suite.case
def relay_client_refuses_weak(c):
    # msgtrkd's outbound context does not negotiate AES128-SHA:
    # opportunistic TLS fails and the message goes in plaintext.
    ca, crt, key = certs(c, "tpeer.test")
    p = weak_peer(c, (crt, key))
    routes = c.write("routes", "dest.test [127.0.0.1]:%d\n" % p.port)
    d = c.msgtrkd(routes=routes)
    send(d, ["bob@dest.test"])
    m = p.wait_messages(1)[0]
    assert m["tls"] is False, m
    assert p.commands.count("STARTTLS") == 1, p.commands
    assert "delivery tls host=[127.0.0.1]" in d.log(), d.log()
    wait_for(lambda: [r for r in records(d) if r["action"] == "relayed"],
             what="relayed")


@suite.case
def cli_client_refuses_weak(c):
    ca, crt, key = certs(c, "tpeer.test")
    dns = c.dnsmasq(["--host-record=tpeer.test,127.0.0.1"])
    base = [MSGTRK, "--dns", dns, "--ca-file", ca, "send", "--tls",
            "--no-track", "a@dest.test"]
    p = weak_peer(c, (crt, key))
    r = subprocess.run(base + ["--server", "tpeer.test:%d" % p.port],
                       input=b"Subject: x\n\nx\n", capture_output=True,
                       timeout=WAIT)
    assert r.returncode == 1, r
    assert p.messages == [] and not [x for x in p.commands
                                     if x.startswith("MAIL")], p.commands
    # The same peer with its default ciphers: sent over TLS.
    ok = TPeer(ehlo=["PIPELINING"], tls="ok", cert=(crt, key))
    c.on_cleanup(ok.close)
    r = subprocess.run(base + ["--server", "tpeer.test:%d" % ok.port],
                       input=b"Subject: x\n\nx\n", capture_output=True,
                       timeout=WAIT)
    assert r.returncode == 0, r
    assert ok.wait_messages(1)[0]["tls"] is True


if __name__ == "__main__":
    suite.main()
