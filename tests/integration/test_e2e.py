"""The end-to-end proof of msgtrk (issue 4): three msgtrkd nodes on
loopback, hop1 -> hop2 -> hop3, hop3 delivering to Maildir, a dnsmasq of
the case's own answering their A and _mtqp._tcp SRV records (and MX for
dest.test), and msgtrk track following the message across them.

Routing.  Every node listens on 127.0.0.1 with ports of its own, so an MX
record (which cannot carry a port) cannot reach the next hop: each
forwarding node has a routes file naming the next hop as "host:port"
(dest.test  hop2.test:PORT on hop1, dest.test  hop3.test:PORT on hop2).
The host is a NAME, looked up for A at the case's dnsmasq, and that name
is what Remote-MTA records ("dns; hop2.test"); the tracking client then
finds the next MTQP server through SRV _mtqp._tcp.hop2.test (the MTQP
ports are the dnsmasq's SRV targets).  So DNS carries the MTQP half of
the path (A + SRV), routes carry the SMTP ports.  dnsmasq also answers
MX dest.test -> hop3.test (unused for routing, kept as the record a real
deployment would have).

Cases: msgtrk send and smtplib (ENVID/MTRK by hand) across three MTRK
hops -> transferred, transferred, delivered; Postfix as a non-MTRK middle
hop -> relayed 2.1.9; 550 5.1.1 at the last hop -> failed with the remote
status; an alias to two addresses on hop3 -> expanded, no member shown;
firewall mode (mtqp_chain = yes on hop1) -> the whole path from hop1 with
--no-follow."""

import base64
import hashlib
import json
import os
import shutil
import smtplib
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MSGTRK, WAIT, Suite, free_port, wait_for,  # noqa: E402
                     wait_port)

suite = Suite("e2e")
MSG = b"Subject: e2e\n\nHello across three hops.\n"
TRACK_WAIT = 40.0  # seconds: the bound for a message to reach its end


def msgtrk(args, stdin=b""):
    p = subprocess.run([MSGTRK] + args, input=stdin, capture_output=True,
                       timeout=WAIT * 8)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


class Net:
    """dnsmasq + three msgtrkd nodes.  hop1 and hop2 forward dest.test to
    the next hop by routes; hop3 has dest.test in local_domains.
    middle: None, or ("postfix.test", port) put between hop1 and hop3
    instead of hop2 (hop2 is then not started)."""

    def __init__(self, c, hop1=None, hop3=None, middle=None):
        self.c = c
        self.smtp = {h: free_port() for h in ("hop1", "hop2", "hop3")}
        self.mtqp = {h: free_port() for h in ("hop1", "hop2", "hop3")}
        recs = ["--mx-host=dest.test,hop3.test,10"]
        for h in ("hop1", "hop2", "hop3"):
            recs += ["--host-record=%s.test,127.0.0.1" % h,
                     "--srv-host=_mtqp._tcp.%s.test,%s.test,%d,0,0" % (
                         h, h, self.mtqp[h])]
        if middle:
            recs.append("--host-record=%s,127.0.0.1" % middle[0])
        self.dns = c.dnsmasq(recs)
        self.nodes = {}
        # Start from the last hop so each next hop is up.
        self.nodes["hop3"] = self.node("hop3", None, hop3 or {})
        if middle:
            nxt1 = "%s:%d" % middle
        else:
            self.nodes["hop2"] = self.node(
                "hop2", "hop3.test:%d" % self.smtp["hop3"], {})
            nxt1 = "hop2.test:%d" % self.smtp["hop2"]
        self.nodes["hop1"] = self.node("hop1", nxt1, hop1 or {})

    def node(self, h, nexthop, extra):
        conf = {
            "hostname": "%s.test" % h,
            "smtp_listen": "127.0.0.1:%d" % self.smtp[h],
            "mtqp_listen": "127.0.0.1:%d" % self.mtqp[h],
            "dns_servers": self.dns,
        }
        if nexthop:
            conf["routes"] = self.c.write("%s.routes" % h,
                                          "dest.test  %s\n" % nexthop)
        else:
            conf["local_domains"] = "dest.test"
        conf.update(extra)
        d = self.c.msgtrkd(**conf)
        return d

    def send(self, rcpts, extra=()):
        """msgtrk send to hop1; returns (envid, uri, keyring)."""
        kr = self.c.path("keyring")
        rc, out, err = msgtrk(["--dns", self.dns, "send", "--server",
                               "hop1.test:%d" % self.smtp["hop1"],
                               "--mtqp", "hop1.test", "--keyring", kr,
                               "--from", "sender@src.test"] + list(extra) +
                              list(rcpts), stdin=MSG)
        assert rc == 0, (rc, out, err)
        lines = out.splitlines()
        assert len(lines) == 2 and lines[0].startswith("envid: "), out
        return lines[0][7:], lines[1][5:], kr

    def track(self, args):
        return msgtrk(["--dns", self.dns, "track"] + list(args))

    def track_until(self, args, done):
        """Runs msgtrk track --json until done(json) (bounded)."""
        last = {}

        def probe():
            rc, out, err = self.track(["--json"] + list(args))
            last.update(rc=rc, out=out, err=err)
            if rc != 0:
                return False
            j = json.loads(out)
            return j if done(j) else False
        try:
            return wait_for(probe, TRACK_WAIT, "the trail", interval=0.5)
        except AssertionError:
            raise AssertionError("trail not done: %r\nlogs:\n%s" % (
                last, self.logs()))

    def logs(self):
        return "\n".join("== %s\n%s" % (h, "\n".join(
            d.log().splitlines()[-25:])) for h, d in self.nodes.items())


def finals(j):
    return {r["original_recipient"].replace(" ", ""): r["final_action"]
            for r in j["recipients"]}


def ended(action):
    return lambda j: j["recipients"] and all(
        r["final_action"] == action for r in j["recipients"])



def hop(j, i):
    return j["recipients"][0]["hops"][i]


def check_three_hops(n, j, envid, rcpt="a@dest.test"):
    assert j["envid"] == envid, j
    (r,) = j["recipients"]
    assert r["original_recipient"].replace(" ", "") == "rfc822;" + rcpt, r
    assert r["final_action"] == "delivered", r
    hops = r["hops"]
    assert [h["action"] for h in hops] == [
        "transferred", "transferred", "delivered"], hops
    assert [h["reporting_mta"] for h in hops] == [
        "dns; hop1.test", "dns; hop2.test", "dns; hop3.test"], hops
    assert [h["remote_mta"] for h in hops] == [
        "dns; hop2.test", "dns; hop3.test", None], hops
    # Each part came from that hop's own MTQP server, found through SRV.
    assert [h["server"] for h in hops] == [
        "hop%d.test:%d" % (i + 1, n.mtqp["hop%d" % (i + 1)])
        for i in range(3)], hops
    for h in hops:
        assert h["status"] == "2.0.0", h
        assert h["final_recipient"].replace(" ", "") == "rfc822;" + rcpt, h
        assert h["arrival_date"] and h["last_attempt_date"], h
        assert h["will_retry_until"] is None, h


def maildir_files(node, local, domain="dest.test"):
    d = node.data("mail", domain, local, "new")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


@suite.case
def three_hops_msgtrk_send(c):
    n = Net(c)
    envid, uri, kr = n.send(["a@dest.test"], ["--notify", "never"])
    j = n.track_until(["--keyring", kr, envid], ended("delivered"))
    check_three_hops(n, j, envid)
    (f,) = maildir_files(n.nodes["hop3"], "a")
    with open(n.nodes["hop3"].data("mail", "dest.test", "a", "new", f),
              "rb") as fh:
        body = fh.read()
    assert b"Hello across three hops." in body, body
    assert body.count(b"Received:") >= 3, body
    # The text timeline: one line per hop, in path order.
    rc, out, err = n.track(["--keyring", kr, envid])
    assert rc == 0, (rc, out, err)
    print("--- msgtrk track transcript:\n" + out.rstrip(), flush=True)
    lines = [l.split() for l in out.splitlines() if l[:4].strip()[:1].isdigit()]
    assert [l[1] for l in lines] == ["transferred", "transferred",
                                     "delivered"], out
    assert "a@dest.test: delivered" in out, out
    # The URI alone (no keyring) gives the same trail.
    rc, out2, err = n.track(["--json", uri])
    assert rc == 0 and json.loads(out2) == j, (out2, err)
    # --raw: each server's body, preceded by "# <server> <envid>", in path
    # order.
    rc, raw, err = n.track(["--raw", "--keyring", kr, envid])
    assert rc == 0, err
    heads = [l for l in raw.splitlines() if l.startswith("# ")]
    assert heads == ["# hop%d.test:%d %s" % (i, n.mtqp["hop%d" % i], envid)
                     for i in (1, 2, 3)], heads
    assert raw.count("message/tracking-status") >= 3, raw


@suite.case
def three_hops_smtplib(c):
    n = Net(c)
    secret = os.urandom(32)
    cert = base64.b64encode(hashlib.sha1(secret).digest()).decode().rstrip("=")
    envid = "py%d@client.test" % int(time.time() * 1000)
    with smtplib.SMTP("127.0.0.1", n.smtp["hop1"], timeout=WAIT) as s:
        s.ehlo("client.test")
        assert s.has_extn("mtrk"), s.esmtp_features
        s.sendmail("sender@src.test", ["b@dest.test"],
                   b"Subject: smtplib\r\n\r\nby hand\r\n",
                   mail_options=["ENVID=" + envid, "MTRK=%s:86400" % cert],
                   rcpt_options=["NOTIFY=NEVER", "ORCPT=rfc822;b@dest.test"])
    b64 = base64.b64encode(secret).decode().rstrip("=")
    args = ["--server", "hop1.test", "--secret", b64, envid]
    # --server without a port: SRV _mtqp._tcp.hop1.test names the port.
    j = n.track_until(args, ended("delivered"))
    check_three_hops(n, j, envid, "b@dest.test")
    assert len(maildir_files(n.nodes["hop3"], "b")) == 1
    # A wrong secret: every hop says noinfo, the first one ends it: exit 1.
    bad = base64.b64encode(os.urandom(32)).decode().rstrip("=")
    rc, out, err = n.track(["--server", "hop1.test", "--secret", bad, envid])
    assert rc == 1 and "noinfo" in err, (rc, out, err)


@suite.case
def shared_orcpt_two_trails(c):
    # Two RCPTs with one ORCPT (legal: an address rewritten to two targets
    # upstream, RFC 3461 §4.2): two recipients, two trails, each to its
    # own final address; the same in firewall mode, where hop1 chains and
    # one answer holds every hop's part.
    _shared_orcpt(c, Net(c), [])
    _shared_orcpt(c, Net(c, hop1={"mtqp_chain": "yes"}), ["--no-follow"])


def _shared_orcpt(c, n, extra):
    secret = os.urandom(32)
    cert = base64.b64encode(hashlib.sha1(secret).digest()).decode().rstrip("=")
    envid = "orcpt%d@client.test" % int(time.time() * 1000)
    with smtplib.SMTP("127.0.0.1", n.smtp["hop1"], timeout=WAIT) as s:
        s.ehlo("client.test")
        s.sendmail("sender@src.test", ["x@dest.test", "y@dest.test"],
                   b"Subject: shared ORCPT\r\n\r\ntwo targets\r\n",
                   mail_options=["ENVID=" + envid, "MTRK=%s:86400" % cert],
                   rcpt_options=["NOTIFY=NEVER", "ORCPT=rfc822;a@orig.test"])
    b64 = base64.b64encode(secret).decode().rstrip("=")
    args = extra + ["--server", "hop1.test", "--secret", b64, envid]
    j = n.track_until(args, lambda j: len(j["recipients"]) == 2 and
                      ended("delivered")(j))
    finals_seen = []
    for r in j["recipients"]:
        assert r["original_recipient"].replace(" ", "") == \
            "rfc822;a@orig.test", r
        hops = r["hops"]
        assert [h["action"] for h in hops] == [
            "transferred", "transferred", "delivered"], hops
        assert [h["reporting_mta"] for h in hops] == [
            "dns; hop1.test", "dns; hop2.test", "dns; hop3.test"], hops
        fr = {h["final_recipient"].replace(" ", "") for h in hops}
        assert len(fr) == 1, hops  # one address all along
        finals_seen += list(fr)
    assert sorted(finals_seen) == ["rfc822;x@dest.test",
                                   "rfc822;y@dest.test"], finals_seen
    assert maildir_files(n.nodes["hop3"], "x") and \
        maildir_files(n.nodes["hop3"], "y")
    # The text view tells the two apart by the address they went to.
    rc, out, err = n.track(args)
    assert rc == 0, (rc, out, err)
    assert "a@orig.test (to x@dest.test): delivered" in out, out
    assert "a@orig.test (to y@dest.test): delivered" in out, out


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def postfix(c, port, relay_port):
    """A private Postfix on 127.0.0.1:port relaying everything to
    [127.0.0.1]:relay_port, no DNS.  Returns its config dir; stopped by
    "postfix -c DIR stop" when the case ends."""
    if shutil.which("postfix") is None:
        raise AssertionError("postfix is not installed (see TESTING.md)")
    d = c.path("postfix")
    for sub in ("queue", "data"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    shutil.chown(os.path.join(d, "data"), "postfix", "postfix")
    c.write("postfix/main.cf", "\n".join([
        "compatibility_level = 3.6",
        "queue_directory = %s/queue" % d,
        "data_directory = %s/data" % d,
        "myhostname = postfix.test",
        "mydomain = postfix.test",
        "myorigin = postfix.test",
        "inet_interfaces = 127.0.0.1",
        "inet_protocols = ipv4",
        "mydestination =",
        "local_recipient_maps =",
        "alias_maps =",
        "alias_database =",
        "mynetworks = 127.0.0.0/8",
        "smtpd_relay_restrictions = permit_mynetworks, reject",
        "relayhost = [127.0.0.1]:%d" % relay_port,
        "smtp_dns_support_level = disabled",
        "smtp_tls_security_level = none",
        "smtpd_tls_security_level = none",
        "maillog_file = %s/maillog" % d,
        # Postfix refuses (silently: it would say so in the log) a log
        # file outside these prefixes.
        "maillog_file_prefixes = %s" % d,
        "queue_run_delay = 1s",
        "minimal_backoff_time = 1s",
        "maximal_backoff_time = 2s",
        ""]))
    services = [
        ("127.0.0.1:%d" % port, "inet", "n", "-", "n", "-", "-", "smtpd"),
        ("pickup", "unix", "n", "-", "n", "60", "1", "pickup"),
        ("cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"),
        ("qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"),
        ("tlsmgr", "unix", "-", "-", "n", "1000?", "1", "tlsmgr"),
        ("rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"),
        ("bounce", "unix", "-", "-", "n", "-", "0", "bounce"),
        ("defer", "unix", "-", "-", "n", "-", "0", "bounce"),
        ("trace", "unix", "-", "-", "n", "-", "0", "bounce"),
        ("verify", "unix", "-", "-", "n", "-", "1", "verify"),
        ("flush", "unix", "n", "-", "n", "1000?", "0", "flush"),
        ("proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"),
        ("smtp", "unix", "-", "-", "n", "-", "-", "smtp"),
        ("relay", "unix", "-", "-", "n", "-", "-", "smtp"),
        ("showq", "unix", "n", "-", "n", "-", "-", "showq"),
        ("error", "unix", "-", "-", "n", "-", "-", "error"),
        ("retry", "unix", "-", "-", "n", "-", "-", "error"),
        ("discard", "unix", "-", "-", "n", "-", "-", "discard"),
        ("anvil", "unix", "-", "-", "n", "-", "1", "anvil"),
        ("scache", "unix", "-", "-", "n", "-", "1", "scache"),
        ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"),
    ]
    c.write("postfix/master.cf",
            "".join("%-20s %-10s %s\n" % (s[0], s[1], "  ".join(s[2:]))
                    for s in services))
    p = subprocess.run(["postfix", "-c", d, "start"], capture_output=True,
                       timeout=WAIT * 3)
    if p.returncode != 0:
        raise AssertionError("postfix start: %s %s %s" % (
            p.stdout, p.stderr, _read(os.path.join(d, "maillog"))))
    c.on_cleanup(lambda: subprocess.run(["postfix", "-c", d, "stop"],
                                        capture_output=True,
                                        timeout=WAIT * 3))
    return d


@suite.case
def postfix_middle_hop_relayed(c):
    pport = free_port()
    n = Net(c, middle=("postfix.test", pport))
    pdir = postfix(c, pport, n.smtp["hop3"])
    wait_port(pport)
    envid, uri, kr = n.send(["p@dest.test"], ["--notify", "success"])
    j = n.track_until(["--keyring", kr, envid], ended("relayed"))
    (r,) = j["recipients"]
    assert len(r["hops"]) == 1, r  # nothing to follow past a non-MTRK hop
    h = r["hops"][0]
    assert h["action"] == "relayed" and h["status"] == "2.1.9", h
    assert h["reporting_mta"] == "dns; hop1.test", h
    assert h["remote_mta"] == "dns; postfix.test", h
    # The message still went through Postfix to hop3 (ENVID passed on,
    # MTRK not): hop3 delivered it.
    try:
        wait_for(lambda: maildir_files(n.nodes["hop3"], "p"), WAIT,
                 "delivery at hop3 through postfix", interval=0.2)
    except AssertionError:
        raise AssertionError("postfix log:\n" +
                             _read(os.path.join(pdir, "maillog"))[-3000:])
    rc, out, err = n.track(["--keyring", kr, envid])
    assert rc == 0 and "relayed" in out and "2.1.9" in out, (out, err)


@suite.case
def last_hop_550_failed(c):
    n = Net(c, hop3={"local_recipients": c.write("rcpts", "a@dest.test\n")})
    envid, uri, kr = n.send(["nobody@dest.test"], ["--notify", "never"])
    j = n.track_until(["--keyring", kr, envid], ended("failed"))
    (r,) = j["recipients"]
    assert [h["action"] for h in r["hops"]] == ["transferred", "failed"], r
    f = r["hops"][1]
    assert f["reporting_mta"] == "dns; hop2.test", f
    assert f["status"] == "5.1.1", f  # hop3's 550 5.1.1 at RCPT
    assert f["remote_mta"] == "dns; hop3.test", f
    # A trail ending in failed is a successful track (exit 0).
    rc, out, err = n.track(["--keyring", kr, envid])
    assert rc == 0 and "failed" in out and "5.1.1" in out, (rc, out, err)
    assert maildir_files(n.nodes["hop3"], "nobody") == []


@suite.case
def alias_expanded(c):
    al = c.write("aliases",
                 "list@dest.test: member-one@dest.test, member-two@dest.test\n")
    n = Net(c, hop3={"aliases": al})
    envid, uri, kr = n.send(["list@dest.test"], ["--notify", "never"])
    j = n.track_until(["--keyring", kr, envid], ended("expanded"))
    (r,) = j["recipients"]
    assert [h["action"] for h in r["hops"]] == [
        "transferred", "transferred", "expanded"], r
    assert r["hops"][2]["reporting_mta"] == "dns; hop3.test", r
    # Both members got the message; neither is visible in any output.
    wait_for(lambda: maildir_files(n.nodes["hop3"], "member-one") and
             maildir_files(n.nodes["hop3"], "member-two"), WAIT,
             "member delivery")
    outs = [json.dumps(j)]
    for mode in ([], ["--raw"]):
        rc, out, err = n.track(mode + ["--keyring", kr, envid])
        assert rc == 0, err
        outs.append(out)
    for o in outs:
        assert "member-" not in o, o


@suite.case
def firewall_mode_chain(c):
    n = Net(c, hop1={"mtqp_chain": "yes"})
    envid, uri, kr = n.send(["a@dest.test"], ["--notify", "never"])
    # Wait until the normal (client-followed) trail is complete.
    n.track_until(["--keyring", kr, envid], ended("delivered"))
    # hop1 alone: the client does not follow, hop1 chains.
    j = n.track_until(["--no-follow", "--keyring", kr, envid],
                      lambda j: len(j["recipients"][0]["hops"]) == 3)
    (r,) = j["recipients"]
    hops = r["hops"]
    assert [h["action"] for h in hops] == [
        "transferred", "transferred", "delivered"], hops
    assert [h["reporting_mta"] for h in hops] == [
        "dns; hop1.test", "dns; hop2.test", "dns; hop3.test"], hops
    assert r["final_action"] == "delivered", r
    # Every part came through hop1's server.
    assert {h["server"] for h in hops} == {
        "hop1.test:%d" % n.mtqp["hop1"]}, hops
    # Without chaining, --no-follow stops at hop1's own part.
    n2 = Net(c)
    e2, _, kr2 = n2.send(["a@dest.test"], ["--notify", "never"])
    n2.track_until(["--keyring", kr2, e2], ended("delivered"))
    rc, out, err = n2.track(["--json", "--no-follow", "--keyring", kr2, e2])
    assert rc == 0, err
    assert len(json.loads(out)["recipients"][0]["hops"]) == 1, out


if __name__ == "__main__":
    suite.main()
