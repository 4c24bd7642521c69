"""Firewall mode (RFC 3887 §2.4) across two live msgtrkd nodes: node A
(a.test) relays dest.test to node B (b.test); a dnsmasq serves their A
records and _mtqp._tcp SRV records.  With mtqp_chain = yes, a TRACK at A
runs trail.c and mtqp_client.c against B's MTQP server (SRV discovery,
greeting, TRACK, multipart/related parsing) and returns the whole path:
A's part, then B's (P16).  A next hop that gives no answer within the
bound shows as relayed/2.1.9 (P11); hide_internal_hosts renames every
internal host to A's own name (RFC 3887 Example #12)."""

import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import MSGTRKD, Suite, free_port, wait_for, wait_port  # noqa
from test_mtqp import Conn, secret_pair, submit  # noqa

suite = Suite("mtqp_chain")
# RFC 3887 §2.4: a chaining server "MUST respond within 2 minutes".
CHAIN_BOUND = 120


def two_nodes(c, a_conf=None, b_conf=None, b_mtqp_port=None):
    """dnsmasq + node B (delivers dest.test locally) + node A (routes
    dest.test to b.test).  Returns (a, b, b_mtqp_port)."""
    a_smtp, b_smtp = free_port(), free_port()
    a_mtqp = free_port()
    b_mtqp = b_mtqp_port or free_port()
    dns = c.dnsmasq([
        "--host-record=a.test,127.0.0.1",
        "--host-record=b.test,127.0.0.1",
        "--srv-host=_mtqp._tcp.a.test,a.test,%d,0,0" % a_mtqp,
        "--srv-host=_mtqp._tcp.b.test,b.test,%d,0,0" % b_mtqp,
    ])
    bc = {"hostname": "b.test", "smtp_listen": "127.0.0.1:%d" % b_smtp,
          "mtqp_listen": "127.0.0.1:%d" % b_mtqp, "dns_servers": dns,
          "local_domains": "dest.test"}
    bc.update(b_conf or {})
    b = c.msgtrkd(**bc)
    if bc["mtqp_listen"] != "none":
        wait_port(b_mtqp)
    routes = c.write("routes", "dest.test b.test:%d\n" % b_smtp)
    ac = {"hostname": "a.test", "smtp_listen": "127.0.0.1:%d" % a_smtp,
          "mtqp_listen": "127.0.0.1:%d" % a_mtqp, "dns_servers": dns,
          "routes": routes, "mtqp_chain": "yes"}
    ac.update(a_conf or {})
    a = c.msgtrkd(**ac)
    a.mtqp_port = a_mtqp
    b.mtqp_port = b_mtqp
    wait_port(a_mtqp)
    return a, b


def track(port, envid, sec, timeout=CHAIN_BOUND + 10):
    k = Conn(port)
    k.s.settimeout(timeout)
    k.resp()
    t0 = time.monotonic()
    k.send("TRACK %s %s\r\n" % (envid, sec))
    first, data = k.resp()
    took = time.monotonic() - t0
    k.send("QUIT\r\n")
    k.close()
    return first, data, took


def parts(data):
    """The message/tracking-status bodies of a multipart/related entity,
    each as a list of blocks, each block a dict of field -> value."""
    head, _, body = data.partition("\r\n\r\n")
    m = re.search(r'boundary="?([^";\r\n]+)"?', head)
    assert m, head
    assert 'type="message/tracking-status"' in head, head
    out = []
    for chunk in body.split("--" + m.group(1))[1:]:
        if chunk.startswith("--"):
            break
        ph, _, pb = chunk.partition("\r\n\r\n")
        assert "message/tracking-status" in ph, ph
        blocks = []
        for blk in pb.strip("\r\n").split("\r\n\r\n"):
            f = {}
            for ln in blk.split("\r\n"):
                if ":" in ln:
                    n, v = ln.split(":", 1)
                    f[n.strip().lower()] = v.strip()
            blocks.append(f)
        out.append(blocks)
    return out


def wait_state(d, envid, sec, action):
    """Polls d's MTQP server (chaining off: raw own answer) until
    envid's first recipient has action."""
    def ok():
        first, data, _ = track(d.mtqp_port, envid, sec, timeout=20)
        return data is not None and "Action: %s" % action in data
    wait_for(ok, what="%s at %s" % (action, d.conf["hostname"]))


def wait_transferred(a):
    """A handed the message to B and recorded it (the store update comes
    before "delivery done")."""
    wait_for(lambda: "action=transferred" in a.log()
             and "delivery done" in a.log(), what="transferred at A")


def delivered_to_b(a, b, envid, sec):
    """Both hops done: A recorded transferred, B delivered to Maildir."""
    wait_transferred(a)
    maildir = b.data("mail", "dest.test", "x", "new")
    wait_for(lambda: os.path.isdir(maildir) and os.listdir(maildir),
             what="Maildir delivery at B")
    wait_state(b, envid, sec, "delivered")


@suite.case
def chain_whole_path(c):
    a, b = two_nodes(c)
    sec, cert = secret_pair()
    submit(a, "ch1@sender.test", cert)
    delivered_to_b(a, b, "ch1@sender.test", sec)
    first, data, took = track(a.mtqp_port, "ch1@sender.test", sec)
    assert first.startswith("+OK+"), first
    p = parts(data)
    assert len(p) == 2, data  # A's part, then B's (P16: path order)
    assert p[0][0]["reporting-mta"] == "dns; a.test", p[0]
    assert p[0][0]["original-envelope-id"] == "ch1@sender.test"
    r = p[0][1]
    assert r["action"] == "transferred" and r["remote-mta"] == "dns; b.test", r
    assert "last-attempt-date" in r and "will-retry-until" not in r, r
    assert p[1][0]["reporting-mta"] == "dns; b.test", p[1]
    r = p[1][1]
    assert r["action"] == "delivered", r
    assert r["original-recipient"] == "rfc822; x@dest.test", r
    assert r["status"].startswith("2."), r
    assert "will-retry-until" not in r, r
    log = a.log()
    assert "mtqp chain envid=ch1@sender.test answers=2 parts=2 relayed=0" \
        in log, log
    assert sec not in log and sec not in b.log()
    # B's own server saw A's query: the trail discovered it through SRV.
    assert "result=found" in b.log()
    # Both exit cleanly on SIGTERM, with nothing from the sanitizers.
    assert a.stop() == 0 and b.stop() == 0
    for d in (a, b):
        assert "Sanitizer" not in d.log() and "runtime error" not in d.log()


@suite.case
def chain_off_own_part_only(c):
    a, b = two_nodes(c, a_conf={"mtqp_chain": "no"})
    sec, cert = secret_pair()
    submit(a, "ch2@sender.test", cert)
    delivered_to_b(a, b, "ch2@sender.test", sec)
    first, data, _ = track(a.mtqp_port, "ch2@sender.test", sec)
    p = parts(data)
    assert len(p) == 1 and p[0][1]["action"] == "transferred", data


@suite.case
def chain_next_hop_delayed(c):
    dead = free_port()  # nothing listens: B keeps the message queued
    routes_b = "dest.test [127.0.0.1]:%d\n" % dead
    a, b = two_nodes(c, b_conf={"local_domains": "other.test",
                                "routes": c.write("routes_b", routes_b)})
    sec, cert = secret_pair()
    submit(a, "ch3@sender.test", cert)
    wait_transferred(a)
    first, data, _ = track(a.mtqp_port, "ch3@sender.test", sec)
    p = parts(data)
    assert len(p) == 2, data
    r = p[1][1]
    assert r["action"] == "delayed" and r["status"].startswith("4."), r
    assert "will-retry-until" in r, r  # still in B's queue
    assert p[0][1]["action"] == "transferred", p[0]


@suite.case
def chain_hop_down_relayed(c):
    a, b = two_nodes(c)
    sec, cert = secret_pair()
    submit(a, "ch4@sender.test", cert)
    delivered_to_b(a, b, "ch4@sender.test", sec)
    b.stop()  # B's MTQP port now refuses connections
    first, data, took = track(a.mtqp_port, "ch4@sender.test", sec)
    assert took < CHAIN_BOUND, took
    assert first.startswith("+OK+"), first
    p = parts(data)
    assert len(p) == 1, data
    r = p[0][1]
    # P11: passed on, no further information.
    assert r["action"] == "relayed" and r["status"] == "2.1.9", r
    assert r["remote-mta"] == "dns; b.test" and "last-attempt-date" in r, r
    assert "relayed=1" in a.log()


@suite.case
def chain_hop_silent_bounded(c):
    """B's SRV points at a socket that accepts and never answers: A still
    answers within 2 minutes, with B's hop as relayed/2.1.9."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    c.on_cleanup(silent.close)
    a, b = two_nodes(c, b_conf={"mtqp_listen": "none"},
                     b_mtqp_port=silent.getsockname()[1])
    sec, cert = secret_pair()
    submit(a, "ch5@sender.test", cert)
    wait_for(lambda: os.path.isdir(b.data("mail", "dest.test", "x", "new"))
             and os.listdir(b.data("mail", "dest.test", "x", "new")),
             what="Maildir delivery at B")
    wait_transferred(a)
    k = Conn(a.mtqp_port)
    k.resp()
    k.send("TRACK ch5@sender.test %s\r\n" % sec)
    k.s.settimeout(CHAIN_BOUND + 10)
    t0 = time.monotonic()
    first, data = k.resp()
    took = time.monotonic() - t0
    assert took < CHAIN_BOUND, took  # RFC 3887 §2.4
    assert first.startswith("+OK+"), first
    p = parts(data)
    r = p[0][1]
    if r["action"] == "transferred":
        raise AssertionError("unanswered hop left as transferred: %r" % r)
    assert r["action"] == "relayed" and r["status"] == "2.1.9", r


@suite.case
def chain_hide_internal_hosts(c):
    a, b = two_nodes(c, a_conf={"hide_internal_hosts": "yes"})
    sec, cert = secret_pair()
    submit(a, "ch6@sender.test", cert)
    delivered_to_b(a, b, "ch6@sender.test", sec)
    first, data, _ = track(a.mtqp_port, "ch6@sender.test", sec)
    assert first.startswith("+OK+"), first
    assert "b.test" not in data.lower(), data
    p = parts(data)
    assert len(p) == 2, data
    assert p[0][1]["remote-mta"] == "dns; a.test", p[0]
    assert p[1][0]["reporting-mta"] == "dns; a.test", p[1]
    assert p[1][1]["action"] == "delivered", p[1]
    # Recipient addresses are not host names: kept.
    assert p[1][1]["final-recipient"] == "rfc822; x@dest.test", p[1]


@suite.case
def chain_hide_with_hop_down(c):
    a, b = two_nodes(c, a_conf={"hide_internal_hosts": "yes"})
    sec, cert = secret_pair()
    submit(a, "ch7@sender.test", cert)
    delivered_to_b(a, b, "ch7@sender.test", sec)
    b.stop()
    first, data, _ = track(a.mtqp_port, "ch7@sender.test", sec)
    p = parts(data)
    r = p[0][1]
    assert r["action"] == "relayed" and r["remote-mta"] == "dns; a.test", r
    assert "b.test" not in data.lower(), data


@suite.case
def chain_wrong_secret_not_chained(c):
    a, b = two_nodes(c)
    sec, cert = secret_pair()
    submit(a, "ch8@sender.test", cert)
    delivered_to_b(a, b, "ch8@sender.test", sec)
    other, _ = secret_pair()
    first, data, _ = track(a.mtqp_port, "ch8@sender.test", other)
    assert first.startswith("-ERR/noinfo"), first
    # B was never asked with the wrong secret.
    assert b.log().count("result=unknown") == 0, b.log()


class Listener:
    """A TCP listener standing for an internal host's MTQP server: counts
    the connections it accepts and closes each at once."""

    def __init__(self, host, port):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.s.bind((host, port))
        self.s.listen(16)
        self.s.settimeout(0.2)
        self.accepted = 0
        self.running = True
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while self.running:
            try:
                conn, _ = self.s.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            conn.close()

    def close(self):
        self.running = False
        self.t.join(timeout=5)
        self.s.close()


def steered(c):
    """B hands dest.test to C (an MTRK SMTP peer at c.test), so B's answer
    names "dns; c.test".  C's MTQP service is _mtqp._tcp.c.test ->
    cm.test (127.0.0.2), where only a Listener runs.  Returns a function
    that starts a firewall node A with extra configuration, sends a
    message through A -> B -> C and returns (a, first, data) of a TRACK at
    A, and the listener."""
    peer = c.peer()
    lport = free_port()
    listener = Listener("127.0.0.2", lport)
    c.on_cleanup(listener.close)
    b_smtp, b_mtqp = free_port(), free_port()
    dns = c.dnsmasq([
        "--host-record=a.test,127.0.0.1",
        "--host-record=b.test,127.0.0.1",
        "--host-record=c.test,127.0.0.1",
        "--host-record=cm.test,127.0.0.2",
        "--srv-host=_mtqp._tcp.b.test,b.test,%d,0,0" % b_mtqp,
        "--srv-host=_mtqp._tcp.c.test,cm.test,%d,0,0" % lport,
    ])
    b = c.msgtrkd(hostname="b.test", smtp_listen="127.0.0.1:%d" % b_smtp,
                  mtqp_listen="127.0.0.1:%d" % b_mtqp, dns_servers=dns,
                  local_domains="other.test",
                  routes=c.write("routes_b", "dest.test c.test:%d\n"
                                 % peer.port))
    wait_port(b_mtqp)
    b.mtqp_port = b_mtqp
    routes_a = c.write("routes_a", "dest.test b.test:%d\n" % b_smtp)
    n = [0]

    def run(a_conf):
        n[0] += 1
        a_mtqp = free_port()
        conf = {"hostname": "a.test", "smtp_listen": "127.0.0.1:%d"
                % free_port(), "mtqp_listen": "127.0.0.1:%d" % a_mtqp,
                "dns_servers": dns, "routes": routes_a, "mtqp_chain": "yes"}
        conf.update(a_conf)
        a = c.msgtrkd(**conf)
        a.mtqp_port = a_mtqp
        wait_port(a_mtqp)
        sec, cert = secret_pair()
        envid = "st%d@sender.test" % n[0]
        submit(a, envid, cert)
        wait_transferred(a)
        wait_for(lambda: len(peer.messages) >= n[0], what="B -> C")
        wait_state(b, envid, sec, "transferred")
        first, data, took = track(a.mtqp_port, envid, sec)
        assert took < CHAIN_BOUND, took
        assert first.startswith("+OK+"), first
        a.stop()
        return a, data

    return run, listener


def b_block(data):
    """B's block for the recipient, as A's chained answer shows it."""
    p = parts(data)
    assert len(p) == 2, data  # A's part, then B's
    assert p[0][1]["action"] == "transferred", p[0]
    assert p[0][1]["remote-mta"] == "dns; b.test", p[0]
    assert p[1][0]["reporting-mta"] == "dns; b.test", p[1]
    return p[1][1]


@suite.case
def chain_hosts_unlisted_never_contacted(c):
    """mtqp_chain_hosts: B's answer names c.test, an internal host not in
    the list: its MTQP server is never connected to, and A's answer shows
    B's transferred block as relayed 2.1.9 (not followed).  Listing c.test
    (and its SRV target) makes A follow it; listing c.test but not the SRV
    target, or networks that do not hold the target's address, does
    not."""
    run, listener = steered(c)
    a, data = run({"mtqp_chain_hosts": "b.test"})
    r = b_block(data)
    assert r["action"] == "relayed" and r["status"] == "2.1.9", r
    assert r["remote-mta"] == "dns; c.test", r
    assert listener.accepted == 0, listener.accepted
    log = a.log()
    assert "mtqp chain-refused host=c.test addr=- via=127.0.0.1 " \
        "rule=mtqp_chain_hosts" in log, log
    assert "relayed=1 refused=1" in log, log
    # Listed, with its SRV target: followed (C's listener hangs up, so
    # that hop is unanswered: relayed 2.1.9 as well, but contacted).
    a, data = run({"mtqp_chain_hosts": "b.test, c.test, cm.test"})
    assert listener.accepted >= 1, listener.accepted
    assert "chain-refused" not in a.log(), a.log()
    assert "refused=0" in a.log(), a.log()
    seen = listener.accepted
    # The SRV target must be listed too.
    a, data = run({"mtqp_chain_hosts": "b.test, c.test"})
    assert b_block(data)["action"] == "relayed"
    assert listener.accepted == seen, listener.accepted
    assert "chain-refused host=cm.test addr=- " in a.log(), a.log()
    # Networks: cm.test resolves to 127.0.0.2, outside 127.0.0.1/32.
    a, data = run({"mtqp_chain_hosts":
                   "b.test, c.test, cm.test, 127.0.0.1/32"})
    assert b_block(data)["action"] == "relayed"
    assert listener.accepted == seen, listener.accepted
    assert "chain-refused host=cm.test addr=127.0.0.2 " in a.log(), a.log()
    assert "refused=1" in a.log(), a.log()


@suite.case
def chain_hosts_bad_entry_rejected(c):
    conf = c.write("bad.conf", "hostname = mx.test\ndata_dir = %s\n"
                   "mtqp_chain = yes\nmtqp_chain_hosts = b.test, "
                   "10.0.0.0/33\n" % c.path("data"))
    p = subprocess.run([MSGTRKD, "-n", "-c", conf], capture_output=True,
                       timeout=20)
    assert p.returncode != 0
    assert b":4: mtqp_chain_hosts: bad prefix length" in p.stderr + p.stdout


if __name__ == "__main__":
    suite.main()
