#!/usr/bin/env python3
"""Crash safety of msgtrkd (issue 6): a 250 is a promise.

One msgtrkd relays (routes `* [127.0.0.1]:<port>`) to a sink (the
harness Peer on a fixed port).  CLIENTS concurrent clients send MESSAGES
tracked messages (ENVID in unique-envid form + MTRK, a unique X-Test-Id
and Message-ID in each), recording every 250 and its queue id.  msgtrkd
is killed with SIGKILL at a random moment, restarted on the same
data_dir, the sink is brought up, and the queue must drain (bounded).
Then: every message that got a 250 arrived at least once, and a TRACK
with its secret (raw MTQP socket) answers +OK+ for it.  Lost and
duplicated counts are printed per round.

Kill points (round i uses POINTS[i % len(POINTS)] unless --point):
  data      sink down; kill while the clients are inside DATA
  commit    sink down; the clients hold their final "." at a barrier and
            release it together, the kill lands while many commits are in
            flight (one group-commit batch)
  delivery  sink up from the start; kill while messages are delivered
  purge     sink up, purge_interval 1s; every other message has a 1 s
            retention, so the purge job runs (and is killed) while the
            rest are being accepted and delivered; TRACK is checked only
            for the messages with the long retention
  compact   journal compaction at the real segment size (64 MiB): 8
            held messages of 2 MiB (the sink answers 451 for them), then
            a stream of delivered ones of 2 MiB (--messages does not
            apply; 64-120 MiB a round) while the held ones are released
            (finished) at random moments, so the held messages' segment
            is mostly dead when it closes and compaction moves what is
            still held while others finish (within about 0.3 s of the
            segment's close); the kill lands 0-0.5 s after that close
            (7 rounds in 10), or 0.5-2.5 s.  Then also: no message
            whose DONE was durable (logged "delivery done") before the
            kill is delivered again after it, a duplicate is only one
            delivered before the kill and again after it (at least once),
            TRACK never says delayed again for a finished message, and
            nothing comes back after one more restart.  Only soak runs
            it (make test's 2 rounds are commit and delivery).

Run: MSGTRK_BUILD=build python3 tests/crash/crash.py [--rounds N]
     [--messages M] [--clients C] [--point P] [--seed S]
The last line is "N passed, N failed" (one case per round).
"""

import argparse
import base64
import hashlib
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import harness  # noqa: E402
from harness import Case, Msgtrkd, Peer, free_port, wait_for, wait_port  # noqa
import test_integrity as it  # noqa: E402

POINTS = ("commit", "delivery", "data", "purge", "compact")
QUEUED = re.compile(r"^250 2\.0\.0 Ok: queued as ([0-9A-Za-z]{1,32})$")
TESTID = re.compile(rb"^X-Test-Id: (\S+)\r?$", re.M)
IO_TIMEOUT = 20.0


class Msg:
    def __init__(self, rnd, client, i, short):
        self.tid = "r%dc%dm%d-%s" % (rnd, client, i, os.urandom(4).hex())
        self.envid = self.tid + "@crash.test"  # unique-envid: local@fqhn
        a = os.urandom(32)
        self.secret = base64.b64encode(a).decode()
        self.cert = base64.b64encode(hashlib.sha1(a).digest()).decode() \
            .rstrip("=")
        self.timeout = 1 if short else 86400
        self.qid = None


class Lines:
    """CRLF lines from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln.decode("latin-1")

    def reply(self):
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return lines[-1]


def client(port, msgs, acked, lock, barrier, stop, pace=0.0):
    """Sends msgs over one SMTP session (reconnecting once per error is
    pointless: the daemon is gone); appends each 250'd Msg to acked."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    except OSError:
        return
    r = Lines(s)
    try:
        if not r.reply().startswith("220"):
            return
        s.sendall(b"EHLO client.test\r\n")
        if not r.reply().startswith("250"):
            return
        for m in msgs:
            if stop.is_set():
                return
            s.sendall(("MAIL FROM:<a@sender.test> ENVID=%s MTRK=%s:%d\r\n"
                       "RCPT TO:<u@dest.test>\r\nDATA\r\n"
                       % (m.envid, m.cert, m.timeout)).encode())
            if not (r.reply().startswith("250") and
                    r.reply().startswith("250") and
                    r.reply().startswith("354")):
                return
            s.sendall(("From: <a@sender.test>\r\nTo: <u@dest.test>\r\n"
                       "Message-ID: <%s@crash.test>\r\nX-Test-Id: %s\r\n"
                       "Subject: crash %s\r\n\r\n" % (m.tid, m.tid, m.tid)
                       + "line of body text\r\n" * 20).encode())
            if barrier is not None:
                try:
                    barrier.wait(timeout=5)
                except threading.BrokenBarrierError:
                    pass
            s.sendall(b".\r\n")
            got = QUEUED.match(r.reply())
            if not got:
                return
            m.qid = got.group(1)
            with lock:
                acked.append(m)
            if pace:
                time.sleep(pace)
    except (OSError, EOFError):
        return
    finally:
        s.close()


def arrived(peer):
    """X-Test-Id -> number of deliveries at the sink."""
    n = {}
    with peer.lock:
        msgs = list(peer.messages)
    for m in msgs:
        for tid in TESTID.findall(m.get("data", b"")):
            tid = tid.decode()
            n[tid] = n.get(tid, 0) + 1
    return n


def track_all(port, msgs):
    """TRACKs every message, pipelined in batches; returns the envids
    whose answer was not +OK+ with their tracking-status."""
    bad = []
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    r = Lines(s)
    try:
        first = r.line()
        assert first.startswith("+OK"), first
        if first.startswith("+OK+"):
            while r.line() != ".":
                pass
        for i in range(0, len(msgs), 50):
            batch = msgs[i:i + 50]
            s.sendall("".join("TRACK %s %s\r\n" % (m.envid, m.secret)
                              for m in batch).encode())
            for m in batch:
                st = r.line()
                body = []
                if st.startswith("+OK+"):
                    while True:
                        ln = r.line()
                        if ln == ".":
                            break
                        body.append(ln)
                text = "\n".join(body)
                if not (st.startswith("+OK+") and
                        ("Original-Envelope-Id: " + m.envid) in text and
                        "message/tracking-status" in text):
                    bad.append((m.envid, st))
        s.sendall(b"QUIT\r\n")
    finally:
        s.close()
    return bad


def one_round(rnd, point, n_msgs, n_clients, rng, stats):
    c = Case("crash-%d" % rnd)
    try:
        sink_port = free_port()
        mtqp_port = free_port()
        c.write("routes", "*  [127.0.0.1]:%d\n" % sink_port)
        conf = dict(routes=c.path("routes"),
                    mtqp_listen="127.0.0.1:%d" % mtqp_port,
                    retry_schedule="1s", queue_lifetime="1h")
        if point == "purge":
            conf["purge_interval"] = "1s"
        d = Msgtrkd(c, conf)
        d.start()
        c.on_cleanup(d.stop)
        peer = None
        if point in ("delivery", "purge"):
            peer = Peer(port=sink_port)
            peer.server.handle_error = lambda *a: None  # killed peers
            c.on_cleanup(lambda: peer.close())

        msgs = [[Msg(rnd, k, i, point == "purge" and i % 2 == 1)
                 for i in range(k, n_msgs, n_clients)]
                for k in range(n_clients)]
        acked, lock, stop = [], threading.Lock(), threading.Event()
        barrier = threading.Barrier(n_clients) if point == "commit" else None
        threads = [threading.Thread(target=client, daemon=True,
                                    args=(d.smtp_port, msgs[k], acked, lock,
                                          barrier, stop,
                                          4.0 / len(msgs[k])
                                          if point == "purge" else 0.0))
                   for k in range(n_clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()

        # The random moment: a random fraction of the messages reached
        # the point (acked for data/commit, at the sink for delivery; a
        # few purge rounds have passed for purge), plus a random delay.
        frac = rng.uniform(0.1, 0.9)
        if point in ("data", "commit"):
            wait_for(lambda: len(acked) >= int(frac * n_msgs) or
                     not any(t.is_alive() for t in threads),
                     timeout=120, what="acks before the kill", interval=0.001)
        elif point == "delivery":
            wait_for(lambda: sum(arrived(peer).values()) >=
                     int(frac * n_msgs * 0.5) or
                     not any(t.is_alive() for t in threads),
                     timeout=120, what="deliveries before the kill",
                     interval=0.001)
        else:
            # Clients pace themselves over ~4 s; the kill lands after the
            # first purge that deleted records, at a random point of the
            # following purge intervals.
            wait_for(lambda: "store purge expired=" in d.log(), timeout=15,
                     what="a purge that deleted records", interval=0.05)
            time.sleep(rng.uniform(0, 1.5))
        time.sleep(rng.uniform(0, 0.02))
        d.kill()
        at_kill = len(acked)
        arrived_at_kill = sum(arrived(peer).values()) if peer else 0
        purges = d.log().count("store purge expired=")
        stop.set()
        for t in threads:
            t.join(timeout=IO_TIMEOUT + 5)

        d.start()
        wait_port(mtqp_port)
        if peer is None:
            peer = Peer(port=sink_port)
            peer.server.handle_error = lambda *a: None  # killed peers
            c.on_cleanup(lambda: peer.close())
        with lock:
            got = list(acked)
        want = {m.tid for m in got}
        bound = 60 + n_msgs / 5.0  # drain seen at ~11 msg/s (2 cores)

        try:
            wait_for(lambda: want <= set(arrived(peer)), timeout=bound,
                     what="every acked message at the sink", interval=0.2)
            wait_for(lambda: not _queued(d), timeout=bound,
                     what="an empty queue", interval=0.5)
        except AssertionError:
            traceback.print_exc(file=sys.stdout)  # lost: counted below
        a = arrived(peer)
        lost = sorted(m.tid for m in got if m.tid not in a)
        dup = sum(1 for v in a.values() if v > 1)
        unacked_arrived = len([t for t in a if t not in want])
        tracked = [m for m in got if m.timeout > 1]
        bad_track = track_all(mtqp_port, tracked) if tracked else []
        rc = d.stop()
        stats.append((lost, dup))
        print("round %d point=%s sent=%d acked=%d acked_at_kill=%d "
              "arrived_at_kill=%d purges_before_kill=%d arrived=%d lost=%d duplicated=%d unacked_arrived=%d "
              "tracked=%d track_failed=%d time=%.1fs"
              % (rnd, point, n_msgs, len(got), at_kill, arrived_at_kill,
                 purges, len(a), len(lost),
                 dup, unacked_arrived, len(tracked), len(bad_track),
                 time.monotonic() - t0), flush=True)
        log = d.log()
        assert not lost, "lost: %s" % lost[:20]
        assert not bad_track, "TRACK failed: %s" % bad_track[:10]
        assert len(got) > 0, "nothing was acknowledged"
        assert rc == 0, "msgtrkd exited %r on SIGTERM" % rc
        for bad in ("Sanitizer", "runtime error:"):
            assert bad not in log, log[-4000:]
    except Exception:
        for fn in c._cleanup:
            dd = getattr(fn, "__self__", None)
            if isinstance(dd, Msgtrkd):
                print("--- msgtrkd log (last 30 lines):")
                print("\n".join(dd.log().splitlines()[-30:]))
        raise
    finally:
        c.close()


def compact_round(rnd, rng, stats):
    """The "compact" kill point (see the header)."""
    c = Case("crash-%d" % rnd)
    try:
        held, lock = set(), threading.Lock()

        def rcpt(addr):
            with lock:
                return "451 4.3.0 held" if addr in held else "250 2.1.5 Ok"
        sink = it.Sink(rcpt_reply=rcpt)
        c.on_cleanup(sink.close)
        mtqp_port = free_port()
        c.write("routes", "*  [127.0.0.1]:%d\n" % sink.port)
        d = Msgtrkd(c, dict(routes=c.path("routes"),
                            mtqp_listen="127.0.0.1:%d" % mtqp_port,
                            retry_schedule="1s", queue_lifetime="1h"))
        d.mtqp_port = mtqp_port
        d.start()
        c.on_cleanup(d.stop)
        wait_port(mtqp_port)
        t0 = time.monotonic()
        hm = [it.Msg("c%dh" % rnd, i, "h%d@hold.test" % i, 2 * it.MiB,
                     tracked=True) for i in range(8)]
        with lock:
            held.update(m.rcpt for m in hm)
        it.join(it.send_all(d.smtp_port, hm, clients=4), 300)
        seg0 = it.newest_segment(d)
        sm = [it.Msg("c%ds" % rnd, i, "u@dest.test", 2 * it.MiB,
                     tracked=True) for i in range(60)]
        stop = threading.Event()
        ts = it.send_all(d.smtp_port, sm, clients=4, stop=stop)

        def releaser():
            while not stop.wait(rng.uniform(0.3, 1.2)):
                with lock:
                    if held:
                        held.difference_update(rng.sample(
                            sorted(held), min(rng.randint(1, 2), len(held))))
        rt = threading.Thread(target=releaser, daemon=True)
        rt.start()
        wait_for(lambda: it.newest_segment(d) > seg0 or
                 not any(t.is_alive() for t in ts), timeout=300,
                 what="the held messages' segment closed", interval=0.02)
        # Compaction moves the held messages left in that segment within
        # about 0.3 s (the 1 s tick, 32 MiB/s): most kills land then.
        time.sleep(rng.uniform(0, 0.5) if rng.random() < 0.7
                   else rng.uniform(0.5, 2.5))
        d.kill()
        t_kill = time.monotonic()
        with lock:
            held_at_kill = len(held)
        stop.set()
        rt.join(5)
        for t in ts:
            t.join(IO_TIMEOUT + 5)
        done = it.done_qids(d)
        at_kill = len(sink.deliveries())
        d.start()
        wait_port(mtqp_port)
        msgs = hm + sm
        back = [m for m in msgs if m.qid in done]
        res = it.track_many(mtqp_port, back)
        delayed_again = [m.tid for m in back
                         if "delayed" in res[m.envid][1]]
        with lock:
            held.clear()
        acked = [m for m in msgs if m.qid]
        want = {m.tid for m in acked}
        bound = 180
        try:
            wait_for(lambda: want <= set(sink.counts()), timeout=bound,
                     what="every acked message at the sink", interval=0.2)
            wait_for(lambda: it.queue_list(d) == [], timeout=bound,
                     what="an empty queue", interval=0.5)
        except AssertionError:
            traceback.print_exc(file=sys.stdout)  # lost: counted below
        counts = sink.counts()
        assert d.stop() == 0
        d.start()
        wait_port(mtqp_port)
        time.sleep(3)
        came_back = len(sink.deliveries()) - sum(counts.values())
        by_tid = {m.tid: m for m in acked}
        times = {}
        for g in sink.deliveries():
            times.setdefault(g["tid"], []).append(g["t"])
        resurrected, unexplained = [], []
        for tid, ts_ in times.items():
            m = by_tid.get(tid)
            if m is not None and m.qid in done and \
                    any(t > t_kill for t in ts_):
                resurrected.append(tid)
            elif len(ts_) > 1 and not (
                    len(ts_) == 2 and min(ts_) < t_kill < max(ts_)):
                unexplained.append(tid)
        lost = sorted(t for t in want if t not in counts)
        dup = sum(1 for v in counts.values() if v > 1)
        res = it.track_many(mtqp_port, acked)
        not_final = [m.tid for m in acked if res[m.envid][1] != {"relayed"}]
        stats.append((lost, dup))
        print("round %d point=compact acked=%d done_at_kill=%d "
              "arrived_at_kill=%d held_at_kill=%d arrived=%d "
              "lost=%d duplicated=%d resurrected=%d unexplained_dup=%d "
              "delayed_again=%d came_back=%d track_not_final=%d time=%.1fs"
              % (rnd, len(acked), len(done), at_kill, held_at_kill,
                 len(counts),
                 len(lost), dup, len(resurrected), len(unexplained),
                 len(delayed_again), came_back, len(not_final),
                 time.monotonic() - t0), flush=True)
        qids = [by_tid[t].qid for t in resurrected + delayed_again
                if t in by_tid]
        assert not lost, "lost: %s" % lost[:20]
        assert not resurrected and not delayed_again, \
            "back after DONE: %s %s\n%s" % (resurrected[:5],
                                            delayed_again[:5],
                                            it.qid_log(d, qids))
        assert not unexplained, "duplicated without a crash: %s" % [
            (t, ["%+.3f" % (x - t_kill) for x in times[t]],
             by_tid[t].qid if t in by_tid else None)
            for t in unexplained[:10]]
        assert came_back == 0, "delivered again after a clean restart"
        assert not not_final, "TRACK not final: %s" % not_final[:10]
        assert d.stop() == 0, "msgtrkd exited non-zero on SIGTERM"
        log = d.log()
        for bad in ("Sanitizer", "runtime error:"):
            assert bad not in log, log[-4000:]
    except Exception:
        for fn in c._cleanup:
            dd = getattr(fn, "__self__", None)
            if isinstance(dd, Msgtrkd):
                print("--- msgtrkd log (last 30 lines):")
                print("\n".join(dd.log().splitlines()[-30:]))
        raise
    finally:
        c.close()


def _queued(d):
    """True while `msgtrk queue` lists a message (or cannot tell)."""
    try:
        r = subprocess.run([harness.MSGTRK, "queue", "-c", d.conf_file,
                            "--json"], capture_output=True, timeout=IO_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return True
    return r.returncode != 0 or r.stdout.strip() != b""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--point", choices=POINTS)
    ap.add_argument("--seed", type=int, default=None)
    o = ap.parse_args()
    seed = o.seed if o.seed is not None else int.from_bytes(os.urandom(4),
                                                            "big")
    rng = random.Random(seed)
    print("crash: seed=%d build=%s" % (seed, harness.BUILD), flush=True)
    passed = failed = 0
    stats = []
    for rnd in range(o.rounds):
        point = o.point or POINTS[rnd % len(POINTS)]
        try:
            if point == "compact":
                compact_round(rnd, rng, stats)
            else:
                one_round(rnd, point, o.messages, o.clients, rng, stats)
            passed += 1
            print("ok   crash/round%d-%s" % (rnd, point), flush=True)
        except Exception:
            failed += 1
            print("FAIL crash/round%d-%s" % (rnd, point), flush=True)
            traceback.print_exc(file=sys.stdout)
    print("crash: rounds=%d lost=%d duplicated=%d"
          % (len(stats), sum(len(s[0]) for s in stats),
             sum(s[1] for s in stats)), flush=True)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
