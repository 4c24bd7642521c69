#!/usr/bin/env python3
"""Verified outbound TLS (smtp_tls_policy = verify) against a TLS-capable
SMTP peer with certificates the case makes with openssl (a private CA,
another CA, names right and wrong), and the difference with require
(encryption only, any certificate).

verify: the chain must lead to smtp_tls_ca_file, and the certificate must
name the host we routed to, or the route's tls-name= for an address
literal (the routes file: "dest.test [127.0.0.1]:PORT tls-name=NAME").
A refused certificate delays the recipients with 4.7.5 and says why; the
transaction never starts in plaintext.

    MSGTRK_BUILD=build-asan python3 tests/integration/test_delivery_tls.py
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import WAIT, Suite, wait_for  # noqa: E402
from test_delivery_gaps import CERT, TPeer, records, send  # noqa: E402

suite = Suite("delivery_tls")
NAME = "mx.dest.test"


def run(*a):
    return subprocess.run(a, check=True, capture_output=True, timeout=WAIT)


def make_ca(c, tag):
    ca, key = c.path(tag + ".crt"), c.path(tag + ".key")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
        "-keyout", key, "-out", ca, "-subj", "/CN=" + tag, "-days", "2")
    return ca, key


def make_cert(c, ca, name, tag):
    """A key and a certificate for name signed by ca (path, key)."""
    key, csr, crt = (c.path(tag + x) for x in (".key", ".csr", ".crt"))
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
        "-out", csr, "-subj", "/CN=" + name)
    ext = c.write(tag + ".ext", "subjectAltName=DNS:%s\n" % name)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
        "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext)
    os.chmod(key, 0o644)
    return crt, key


def tls_peer(c, cert):
    p = TPeer(ehlo=["PIPELINING", "DSN", "MTRK"], tls="ok", cert=cert)
    c.on_cleanup(p.close)
    return p


def daemon(c, p, route_extra="", policy="verify", ca=None, **conf):
    routes = c.write("routes", "dest.test [127.0.0.1]:%d %s\n" % (
        p.port, route_extra))
    if ca is not None:
        conf["smtp_tls_ca_file"] = ca
    return c.msgtrkd(routes=routes, smtp_tls_policy=policy, **conf)


def transaction_cmds(p):
    return [x for x in p.commands if x.split(" ")[0] in ("MAIL", "RCPT",
                                                         "DATA")]


def delayed_with(d, p, why):
    """Waits for the recipient delayed by a refused certificate (after a
    retry: retry_schedule is 1s) and checks what it says."""
    wait_for(lambda: p.sessions >= 2, what="a retry")
    r = wait_for(lambda: [x for x in records(d)
                          if x["action"] == "delayed" and x["status"]],
                 what="the delayed record")[0]
    assert r["status"] == "4.7.5", r
    assert r["reply"] == "[127.0.0.1]: TLS certificate verification " \
        "failed: " + why, r
    # Never in plaintext, never after the handshake.
    assert transaction_cmds(p) == [], p.commands
    assert p.messages == []
    assert "STARTTLS" in p.commands, p.commands
    assert 'status=4.7.5 reply="[127.0.0.1]:\\x20TLS\\x20certificate' \
        in d.log(), d.log()
    return r


def mtrk_send(d, tag):
    send(d, ["bob@dest.test"],
         mail_opts=["MTRK=%s" % CERT, "ENVID=%s@client.test" % tag])


@suite.case
def verify_wrong_name_delayed(c):
    ca = make_ca(c, "ca")
    p = tls_peer(c, make_cert(c, ca, "other.test", "peer"))
    d = daemon(c, p, "tls-name=" + NAME, ca=ca[0])
    mtrk_send(d, "vwn1x8f3kq2")
    delayed_with(d, p, "hostname mismatch (not valid for %s)" % NAME)


@suite.case
def verify_untrusted_ca_delayed(c):
    ca = make_ca(c, "ca")
    other = make_ca(c, "other-ca")
    p = tls_peer(c, make_cert(c, other, NAME, "peer"))
    d = daemon(c, p, "tls-name=" + NAME, ca=ca[0])
    mtrk_send(d, "vuc1x8f3kq2")
    delayed_with(d, p, "unable to get local issuer certificate")


@suite.case
def verify_literal_without_tls_name_delayed(c):
    ca = make_ca(c, "ca")
    p = tls_peer(c, make_cert(c, ca, NAME, "peer"))
    d = daemon(c, p, "", ca=ca[0])
    mtrk_send(d, "vln1x8f3kq2")
    wait_for(lambda: p.sessions >= 2, what="a retry")
    r = wait_for(lambda: [x for x in records(d)
                          if x["action"] == "delayed" and x["status"]],
                 what="the delayed record")[0]
    assert r["status"] == "4.7.5", r
    assert "no name to verify" in r["reply"] and "tls-name=" in r["reply"], r
    assert transaction_cmds(p) == [] and p.messages == [], p.commands


@suite.case
def verify_right_name_and_ca_delivered(c):
    ca = make_ca(c, "ca")
    p = tls_peer(c, make_cert(c, ca, NAME, "peer"))
    d = daemon(c, p, "tls-name=" + NAME, ca=ca[0])
    mtrk_send(d, "vok1x8f3kq2")
    m = p.wait_messages(1)[0]
    assert m["tls"] is True, m
    r = wait_for(lambda: [x for x in records(d)
                          if x["action"] == "transferred"],
                 what="transferred")[0]
    assert r["remote_mta"] == "dns; [127.0.0.1]", r


@suite.case
def verify_routed_host_name_delivered(c):
    # A host name route: the certificate must carry that name (no
    # tls-name needed); the same peer under another name is refused.
    ca = make_ca(c, "ca")
    p = tls_peer(c, make_cert(c, ca, NAME, "peer"))
    dns = c.dnsmasq(["--host-record=%s,127.0.0.1" % NAME,
                     "--host-record=alias.dest.test,127.0.0.1"])
    routes = c.write("routes", "dest.test %s:%d\nother.test "
                     "alias.dest.test:%d\n" % (NAME, p.port, p.port))
    d = c.msgtrkd(routes=routes, smtp_tls_policy="verify",
                  smtp_tls_ca_file=ca[0], dns_servers=dns)
    mtrk_send(d, "vrh1x8f3kq2")
    m = p.wait_messages(1)[0]
    assert m["tls"] is True, m
    send(d, ["bob@other.test"])
    r = wait_for(lambda: [x for x in records(d)
                          if x["action"] == "delayed" and x["status"]],
                 what="the refused name")[0]
    assert r["status"] == "4.7.5", r
    assert r["reply"] == "alias.dest.test: TLS certificate verification " \
        "failed: hostname mismatch (not valid for alias.dest.test)", r
    assert len(p.messages) == 1


@suite.case
def require_is_encryption_only(c):
    # require: encrypted, whatever the certificate (an unknown CA, another
    # name) -- the difference with verify.
    other = make_ca(c, "other-ca")
    p = tls_peer(c, make_cert(c, other, "other.test", "peer"))
    d = daemon(c, p, "", policy="require")
    mtrk_send(d, "req1x8f3kq2")
    m = p.wait_messages(1)[0]
    assert m["tls"] is True, m
    wait_for(lambda: [x for x in records(d) if x["action"] == "transferred"],
             what="transferred")


if __name__ == "__main__":
    suite.main()
