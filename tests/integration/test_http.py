"""msgtrkd's HTTP server (src/http): the tracking page in a real browser,
the JSON API against msgtrk track --json, logins, the operator's views,
/metrics (checked with promtool and against known traffic), /healthz,
HTTPS, and hostile clients.

The paths: three msgtrkd nodes on loopback with the case's own dnsmasq
(test_e2e.py's Net), hop1 serving HTTP; Postfix as a next hop that does
not track.  The browser is Debian's Chromium, headless, driven through its
DevTools protocol (cdp.py); its screenshots are kept in the directory
printed as "artifacts:" (MSGTRK_ARTIFACTS, default
test-artifacts/http/ in the tree, ignored by git)."""

import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MSGTRK, TOP, WAIT, Suite, free_port,  # noqa: E402
                     wait_for, wait_port)
import cdp  # noqa: E402
from test_e2e import Net, ended, postfix  # noqa: E402

suite = Suite("http")
ARTIFACTS = os.environ.get("MSGTRK_ARTIFACTS",
                           os.path.join(TOP, "test-artifacts", "http"))
MSG = b"Subject: http\n\nHello, page.\n"


def artifacts():
    os.makedirs(ARTIFACTS, exist_ok=True)
    return ARTIFACTS


def msgtrk(args, stdin=b""):
    p = subprocess.run([MSGTRK] + args, input=stdin, capture_output=True,
                       timeout=WAIT * 8)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


# --- a small HTTP/1.1 client over raw sockets (exact bytes, no magic) ---

class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (lower-case name, value)
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k == name.lower():
                return v
        return None

    def all(self, name):
        return [v for k, v in self.headers if k == name.lower()]

    def json(self):
        return json.loads(self.body)

    def text(self):
        return self.body.decode("utf-8", "replace")


def read_resp(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError("closed before an answer: %r" % data[:200])
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = []
    for l in lines[1:]:
        k, v = l.split(":", 1)
        headers.append((k.strip().lower(), v.strip()))
    n = int(dict(headers).get("content-length", "0"))
    while len(body) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return Resp(status, headers, body)


def request(port, method, path, body=b"", headers=None, host="127.0.0.1",
            src=None, tls=None):
    h = {"Host": "localhost", "Connection": "close"}
    h.update(headers or {})
    if body or method == "POST":
        h["Content-Length"] = str(len(body))
    raw = ("%s %s HTTP/1.1\r\n" % (method, path) +
           "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n").encode()
    s = socket.create_connection((host, port), timeout=WAIT,
                                 source_address=(src, 0) if src else None)
    if tls is not None:
        s = tls.wrap_socket(s, server_hostname="hop1.test")
    try:
        s.sendall(raw + body)
        return read_resp(s)
    finally:
        s.close()


def form(fields):
    return urllib.parse.urlencode(fields).encode()


def post_form(port, path, fields, cookies=None, headers=None):
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    if cookies:
        h["Cookie"] = "; ".join("%s=%s" % kv for kv in cookies.items())
    h.update(headers or {})
    return request(port, "POST", path, form(fields), h)


def cookies_of(resp, jar=None):
    jar = dict(jar or {})
    for c in resp.all("set-cookie"):
        name, rest = c.split("=", 1)
        jar[name] = rest.split(";", 1)[0]
    return jar


def csrf_of(text):
    m = re.search(r'name="csrf" value="([^"]*)"', text)
    assert m, text[:2000]
    return m.group(1)


def api_track(port, obj, raw=None):
    body = raw if raw is not None else json.dumps(obj).encode()
    return request(port, "POST", "/api/v1/track", body,
                   {"Content-Type": "application/json"})


def clean_stop(d):
    """Stops d by SIGTERM: exit 0, and no sanitizer report in its log."""
    rc = d.stop()
    log = d.log()
    assert rc == 0 and "Sanitizer" not in log and "runtime error" not in log, \
        (rc, log[-3000:])


def http_net(c, **kw):
    """test_e2e's three nodes (or Postfix in the middle), hop1 serving
    HTTP on a port of its own."""
    port = free_port()
    hop1 = dict(kw.pop("hop1", {}))
    hop1["http_listen"] = "127.0.0.1:%d" % port
    n = Net(c, hop1=hop1, **kw)
    n.http = port
    wait_port(port)
    return n


def delivered_trail(c, n, rcpt="a@dest.test", action="delivered"):
    envid, uri, kr = n.send([rcpt], ["--notify", "never"])
    j = n.track_until(["--keyring", kr, envid], ended(action))
    return envid, uri, kr, j


# --- the browser ---------------------------------------------------------

DOM_CHECK = r"""(() => {
  const secs = [...document.querySelectorAll('section.rcpt')];
  return secs.map(s => {
    const svg = s.querySelector('svg.path');
    return {
      heading: s.querySelector('h2').textContent,
      end: s.querySelector('p.end').textContent,
      role: svg.getAttribute('role'),
      labelledby: svg.getAttribute('aria-labelledby'),
      title: svg.querySelector('title').textContent,
      desc: svg.querySelector('desc').textContent,
      boxes: [...svg.querySelectorAll('g.hop')].map(g =>
        [...g.querySelectorAll('text')].map(t => t.textContent)),
      boxClasses: [...svg.querySelectorAll('g.hop')].map(g =>
        g.getAttribute('class')),
      arrows: svg.querySelectorAll('line.arrow').length,
      endBox: (svg.querySelector('g.end') || {getAttribute: () => null})
        .getAttribute('class'),
      endText: [...svg.querySelectorAll('g.end text')].map(
        t => t.textContent).join(' '),
      items: [...s.querySelectorAll('ol.hops li')].map(li => li.textContent),
      width: svg.getBoundingClientRect().width,
      height: svg.getBoundingClientRect().height,
    };
  });
})()"""


def browse_track(c, n, uri, shot):
    """Opens the tracking page, pastes uri, submits; returns the DOM
    summary of the result page and the screenshot paths."""
    b = cdp.Browser(c.dir)
    c.on_cleanup(b.close)
    base = "http://127.0.0.1:%d" % n.http
    b.goto(base + "/")
    assert b.eval("document.title") == "Track a message - msgtrk"
    # Paste the URI as a user would, into the focused field.
    b.eval("document.getElementById('uri').focus()")
    b.call("Input.insertText", text=uri)
    assert b.eval("document.getElementById('uri').value") == uri
    b.eval("document.querySelector('form.track button').click()")
    b.wait_loaded("track", timeout=cdp.WAIT * 2)
    dom = b.eval(DOM_CHECK)
    text = b.eval("document.body.innerText")
    html = b.eval("document.documentElement.outerHTML")
    d = artifacts()
    paths = [b.screenshot(os.path.join(d, shot + "-desktop.png"),
                          width=1000, height=900),
             b.screenshot(os.path.join(d, shot + "-phone.png"),
                          width=390, height=844, mobile=True)]
    # On a phone the picture and the page fit the screen.
    dom_phone = b.eval(DOM_CHECK)
    assert b.eval("document.documentElement.scrollWidth") <= 390, \
        b.eval("document.documentElement.scrollWidth")
    print("artifacts: %s" % " ".join(paths), flush=True)
    return dom, dom_phone, text, html, paths


@suite.case
def browser_three_hops(c):
    n = http_net(c)
    envid, uri, kr, j = delivered_trail(c, n)
    secret = uri.rsplit("/", 1)[1]
    dom, phone, text, html, paths = browse_track(c, n, uri, "three-hops")
    (r,) = dom
    assert "a@dest.test" in r["heading"] and "Delivered" in r["heading"], r
    # A box per hop, in path order, each naming its server, its action,
    # where it went, its time and the delay since the previous hop.
    assert len(r["boxes"]) == 3, r
    assert r["boxClasses"] == ["hop hop-transferred", "hop hop-transferred",
                               "hop hop-delivered"], r
    for i, (box, to) in enumerate(zip(r["boxes"], ["hop2.test", "hop3.test",
                                                   None])):
        assert box[0] == "%d. hop%d.test" % (i + 1, i + 1), box
        line = [t for t in box if t.startswith(("transferred", "delivered"))]
        assert line, box
        if to:
            assert "to " + to in line[0] and "2.0.0" in line[0], box
        assert any(t.endswith(" UTC") for t in box), box
        assert "" not in box, box
        assert any(t == "first hop" if i == 0 else t.endswith("later")
                   for t in box), box
    # Arrows between the boxes and into the end.
    assert r["arrows"] == 3, r
    assert r["endBox"] == "end end-delivered", r
    assert "Delivered" in r["endText"], r
    # Accessible text: the picture is an image named by its title and
    # described hop by hop; the same path is an ordered list.
    assert r["role"] == "img" and r["labelledby"] == "r0-t r0-d", r
    assert "3 hops" in r["title"] and "Delivered" in r["title"], r
    for h in ("hop1.test", "hop2.test", "hop3.test"):
        assert h in r["desc"], r["desc"]
    assert len(r["items"]) == 4 and "hop3.test" in r["items"][2], r
    assert "put it in the recipient's mailbox" in r["items"][3], r
    # The secret is not in the page (nor the URI).
    assert secret not in html and uri not in html
    # Phone width: the picture scales to the screen.
    assert 0 < phone[0]["width"] <= 390, phone
    for p in paths:
        assert os.path.getsize(p) > 5000, p
    # Nothing of the secret in the daemon's log either.
    log = n.nodes["hop1"].log()
    assert secret not in log and urllib.parse.unquote(secret) not in log
    clean_stop(n.nodes["hop1"])


@suite.case
def browser_untracked_next_hop(c):
    pport = free_port()
    n = http_net(c, middle=("postfix.test", pport))
    postfix(c, pport, n.smtp["hop3"])
    wait_port(pport)
    envid, uri, kr, j = delivered_trail(c, n, "p@dest.test", "relayed")
    dom, phone, text, html, paths = browse_track(c, n, uri, "untracked")
    (r,) = dom
    assert len(r["boxes"]) == 1 and r["arrows"] == 1, r
    assert r["boxClasses"] == ["hop hop-relayed"], r
    assert any("relayed to postfix.test" in t and "2.1.9" in t
               for t in r["boxes"][0]), r
    assert r["endBox"] == "end end-untracked", r
    for t in (r["end"], r["items"][-1]):
        assert "Transferred to postfix.test, a server that does not " \
            "track" in t, t
        assert "as far as we can track" in t, t
    assert "As far as we can track" in r["heading"], r
    assert "As far as we can track" in r["endText"], r


# --- the JSON API --------------------------------------------------------

@suite.case
def api_equals_cli(c):
    n = http_net(c)
    envid, uri, kr, j = delivered_trail(c, n)
    rc, out, err = n.track(["--json", uri])
    assert rc == 0, err
    r = api_track(n.http, {"uri": uri})
    assert r.status == 200 and r.header("content-type") == \
        "application/json", (r.status, r.text())
    # Exactly the object msgtrk track --json prints: byte for byte.
    assert r.body.decode() == out, (r.text(), out)
    # The same by envid, secret and server.
    u = urllib.parse.urlparse(uri)
    _, _, e, s = u.path.split("/")
    r2 = api_track(n.http, {"envid": urllib.parse.unquote(e),
                            "secret": urllib.parse.unquote(s),
                            "server": "hop1.test:%d" % n.mtqp["hop1"]})
    assert r2.status == 200 and r2.body == r.body, r2.text()
    # Without a port, SRV finds hop1's MTQP server, as for msgtrk.
    r3 = api_track(n.http, {"envid": urllib.parse.unquote(e),
                            "secret": urllib.parse.unquote(s),
                            "server": "hop1.test"})
    assert r3.status == 200 and r3.json() == json.loads(out), r3.text()


@suite.case
def api_errors_and_rate_limit(c):
    n = http_net(c)
    envid, uri, kr, j = delivered_trail(c, n)
    secret = urllib.parse.unquote(uri.rsplit("/", 1)[1])
    # 400: bad input (not counted by the rate limit).
    for raw in (b"", b"{", b"[1]", b'{"uri": "http://x/"}',
                b'{"uri": 1}', b'{"envid": "x@y"}',
                b'{"envid": "a@b.test", "secret": "*", "server": "h"}',
                b'{"uri": "%s", "extra": "1"}' % uri.encode()):
        r = api_track(n.http, None, raw)
        assert r.status == 400 and "error" in r.json(), (raw, r.text())
    # 415: not JSON; 405: not POST.
    r = request(n.http, "POST", "/api/v1/track", b"uri=x",
                {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 415 and "error" in r.json(), r.text()
    r = request(n.http, "GET", "/api/v1/track")
    assert r.status == 405 and r.header("allow") == "POST", r.text()
    # 404: noinfo (a wrong secret).
    bad = base64.b64encode(os.urandom(32)).decode().rstrip("=")
    r = api_track(n.http, {"envid": envid, "secret": bad,
                           "server": "hop1.test:%d" % n.mtqp["hop1"]})
    assert r.status == 404 and r.json() == {"error": "noinfo"}, r.text()
    # 502: the first server cannot be reached.
    r = api_track(n.http, {"envid": envid, "secret": secret,
                           "server": "127.0.0.1:%d" % free_port()})
    assert r.status == 502 and r.json()["error"], r.text()
    # 429: the client's burst (10 tracking requests; two used above),
    # then one per 6 s, with Retry-After.
    codes = []
    for _ in range(10):
        r = api_track(n.http, {"uri": uri})
        codes.append(r.status)
        if r.status == 429:
            break
    assert codes.count(200) == 8 and codes[-1] == 429, codes
    assert r.json() == {"error": "rate limited"}, r.text()
    ra = int(r.header("retry-after"))
    assert 1 <= ra <= 6, ra
    # The page says so too.
    r = request(n.http, "GET", "/")
    jar = cookies_of(r)
    r = post_form(n.http, "/track", {"uri": uri, "csrf": csrf_of(r.text())},
                  jar)
    assert r.status == 429 and "Too many tracking requests" in r.text()
    # After the wait, one more.
    time.sleep(ra + 0.2)
    r = api_track(n.http, {"uri": uri})
    assert r.status == 200, r.text()
    log = n.nodes["hop1"].log()
    assert "result=rate-limited" in log, log[-2000:]
    assert secret not in log and bad not in log
    clean_stop(n.nodes["hop1"])


# --- logins, the sender's list, the operator's views ----------------------

def passwd_line(login, password):
    h = subprocess.run(["openssl", "passwd", "-6", password],
                       capture_output=True, check=True).stdout.decode().strip()
    return "%s:%s\n" % (login, h)


def login(port, user, password, nxt="/sent"):
    r = request(port, "GET", "/login?next=" + nxt)
    assert r.status == 200, r.text()
    jar = cookies_of(r)
    r = post_form(port, "/login", {"login": user, "password": password,
                                   "csrf": csrf_of(r.text()), "next": nxt},
                  jar)
    return r, cookies_of(r, jar)


@suite.case
def login_sent_and_operator(c):
    pw = c.write("passwd", passwd_line("alice@src.test", "alice-pw") +
                 passwd_line("ops", "ops-pw"), 0o644)
    n = http_net(c, hop1={"auth": "passwd:" + pw, "http_admins": "ops"})
    port = n.http
    envid, uri, kr, j = delivered_trail(c, n)
    # A message that stays queued at hop1: down.test is routed to a port
    # where nothing listens (routes reloaded by SIGHUP).
    hop1 = n.nodes["hop1"]
    with open(c.path("hop1.routes"), "a") as f:
        f.write("down.test  [127.0.0.1]:%d\n" % free_port())
    hop1.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "daemon reloaded" in hop1.log(), what="reload")
    rc, out, err = msgtrk(["--dns", n.dns, "send", "--server",
                           "127.0.0.1:%d" % n.smtp["hop1"], "--keyring",
                           c.path("kr2"), "--from", "q@src.test",
                           "q@down.test"], MSG)
    assert rc == 0, err
    # /sent needs a login.
    r = request(port, "GET", "/sent")
    assert r.status == 303 and r.header("location") == "/login?next=/sent"
    # A POST without the CSRF token is refused.
    r = request(port, "GET", "/login")
    jar = cookies_of(r)
    assert jar.get("msgtrk_csrf"), r.headers
    r = post_form(port, "/login", {"login": "ops", "password": "ops-pw"},
                  jar)
    assert r.status == 403 and "msgtrk_session" not in cookies_of(r)
    # A wrong password: 403, no session, after the failure penalty.
    t0 = time.monotonic()
    r, jar = login(port, "ops", "wrong")
    assert r.status == 403 and "Wrong login or password" in r.text()
    assert "msgtrk_session" not in jar
    # The right one: a session cookie with the flags.
    r, jar = login(port, "alice@src.test", "alice-pw")
    assert r.status == 303 and r.header("location") == "/sent", r.text()
    (sc,) = [v for v in r.all("set-cookie") if v.startswith("msgtrk_session=")]
    for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert flag in sc.split("; "), sc
    tok = jar["msgtrk_session"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", tok), tok
    ck = {"Cookie": "msgtrk_session=" + tok}
    r = request(port, "GET", "/sent", headers=ck)
    assert r.status == 200 and "My sent mail" in r.text(), r.text()
    # Not an operator.
    r = request(port, "GET", "/admin", headers=ck)
    assert r.status == 403, r.status
    # Logout needs the session's token; then the session is gone.
    r = post_form(port, "/logout", {"csrf": "x" * 43}, {"msgtrk_session": tok})
    assert r.status == 403, r.status
    r = post_form(port, "/logout", {"csrf": csrf_of(
        request(port, "GET", "/sent", headers=ck).text())},
        {"msgtrk_session": tok})
    assert r.status == 303 and "Max-Age=0" in r.header("set-cookie")
    r = request(port, "GET", "/sent", headers=ck)
    assert r.status == 303, r.status
    # The API: HTTP Basic.
    basic = lambda u, p: {"Authorization": "Basic " + base64.b64encode(
        ("%s:%s" % (u, p)).encode()).decode()}
    r = request(port, "GET", "/api/v1/sent")
    assert r.status == 401 and r.header("www-authenticate").startswith(
        "Basic realm="), r.headers
    r = request(port, "GET", "/api/v1/sent",
                headers=basic("alice@src.test", "nope"))
    assert r.status == 401
    r = request(port, "GET", "/api/v1/sent",
                headers=basic("alice@src.test", "alice-pw"))
    assert r.status == 200 and r.json() == [], r.text()
    r = request(port, "GET", "/api/v1/log",
                headers=basic("alice@src.test", "alice-pw"))
    assert r.status == 403, r.text()
    # The operator: the log search and the queue, the objects msgtrk
    # log --json / msgtrk queue --json print.
    r, jar = login(port, "ops", "ops-pw", "/admin")
    assert r.status == 303 and r.header("location") == "/admin"
    page = request(port, "GET", "/admin?envid=" + urllib.parse.quote(envid),
                   headers={"Cookie": "msgtrk_session=" +
                            jar["msgtrk_session"]})
    assert page.status == 200 and envid in page.text(), page.text()
    assert "q@down.test" in page.text()  # the queue table
    ops = basic("ops", "ops-pw")

    def cli_lines(args):
        rc, out, err = msgtrk(args + ["-c", hop1.conf_file, "--json"])
        assert rc == 0, err
        return [json.loads(l) for l in out.splitlines()]
    def same_as_cli(path, args):
        # The API's answer must equal the CLI's read just before and
        # after it (were q@down.test retried meanwhile, its last attempt
        # would change: it is held below, and every API request here
        # waits auth's failure delay, 2 s after the two failed logins).
        for _ in range(10):
            before = cli_lines(args)
            r = request(port, "GET", path, headers=ops)
            assert r.status == 200, r.text()
            if cli_lines(args) == before:
                assert r.json() == before, (path, r.text())
                return before
        raise AssertionError("%s: the records kept changing" % path)
    wait_for(lambda: len(cli_lines(["log"])) >= 2, what="both in the store")
    (held,) = cli_lines(["queue"])
    rc, out, err = msgtrk(["queue", "-c", hop1.conf_file, "hold",
                           held["queue_id"]])
    assert rc == 0, err
    for q, args in (("", []), ("?envid=" + urllib.parse.quote(envid),
                               ["--envid", envid]),
                    ("?status=delivered", ["--status", "delivered"]),
                    ("?rcpt=q%40down.test&since=1h",
                     ["--rcpt", "q@down.test", "--since", "1h"])):
        same_as_cli("/api/v1/log" + q, ["log"] + args)
    r = request(port, "GET", "/api/v1/log?status=nonsense", headers=ops)
    assert r.status == 400, r.text()
    q = same_as_cli("/api/v1/queue", ["queue"])
    assert len(q) == 1, q
    assert q[0]["recipients"] == ["q@down.test"], q
    log = hop1.log()
    for secret in ("alice-pw", "ops-pw", tok):
        assert secret not in log
    assert "login=ops result=fail" in log and \
        "login=alice@src.test result=ok" in log, log[-3000:]
    assert time.monotonic() - t0 < WAIT * 3
    clean_stop(hop1)


# --- metrics and health -----------------------------------------------

def scrape(port, src=None):
    r = request(port, "GET", "/metrics", src=src)
    assert r.status == 200, r.text()
    v = {}
    for line in r.text().splitlines():
        if line and not line.startswith("#"):
            k, x = line.rsplit(" ", 1)
            v[k] = float(x)
    return r, v


@suite.case
def metrics_and_health(c):
    port = free_port()
    mtqp = free_port()
    d = c.msgtrkd(http_listen="127.0.0.1:%d" % port,
                  mtqp_listen="127.0.0.1:%d" % mtqp,
                  local_domains="dest.test",
                  metrics_networks="127.0.0.1/32")
    wait_port(port)
    r, before = scrape(port)
    # promtool's lint of the exposition format.
    if shutil.which("promtool") is None:
        raise AssertionError("promtool is not installed (deps.sh test)")
    p = subprocess.run(["promtool", "check", "metrics"], input=r.body,
                       capture_output=True, timeout=WAIT)
    assert p.returncode == 0, (p.stdout, p.stderr)
    # Known traffic: three messages, each tracked once.
    kr = c.path("kr")
    envids = []
    for i in range(3):
        rc, out, err = msgtrk(["send", "--server", "127.0.0.1:%d" %
                               d.smtp_port, "--mtqp",
                               "127.0.0.1:%d" % mtqp, "--keyring", kr,
                               "--from", "s@src.test",
                               "r%d@dest.test" % i], MSG)
        assert rc == 0, err
        envids.append(out.splitlines()[0][7:])
    wait_for(lambda: scrape(port)[1][
        'msgtrk_delivery_outcomes_total{action="delivered"}'] -
        before['msgtrk_delivery_outcomes_total{action="delivered"}'] >= 3,
        what="3 deliveries")
    for e in envids:
        rc, out, err = msgtrk(["track", "--keyring", kr, e])
        assert rc == 0, err
    rc, out, err = msgtrk(["track", "--server", "127.0.0.1:%d" % mtqp,
                           "--secret", "A" * 43, envids[0]])
    assert rc == 1
    r, after = scrape(port)
    delta = lambda k: after[k] - before[k]  # noqa: E731
    assert delta("msgtrk_smtp_messages_accepted_total") == 3, after
    assert delta("msgtrk_smtp_sessions_total") == 3, after
    # Each session: greeting, EHLO, MAIL, RCPT, 354, 250 queued, QUIT.
    assert delta('msgtrk_smtp_replies_total{class="2xx"}') == 3 * 6, after
    assert delta('msgtrk_smtp_replies_total{class="3xx"}') == 3, after
    assert delta('msgtrk_delivery_outcomes_total{action="delivered"}') == 3
    assert delta("msgtrk_delivery_finished_total") == 3, after
    assert delta('msgtrk_mtqp_track_total{result="found"}') == 3, after
    assert delta('msgtrk_mtqp_track_total{result="unknown"}') == 1, after
    assert after["msgtrk_queue_messages"] == 0, after
    assert delta("msgtrk_queue_commit_seconds_count") >= 6, after
    assert after['msgtrk_queue_commit_seconds_bucket{le="+Inf"}'] == \
        after["msgtrk_queue_commit_seconds_count"], after
    assert after['msgtrk_http_responses_total{class="2xx"}'] >= 2, after
    p = subprocess.run(["promtool", "check", "metrics"], input=r.body,
                       capture_output=True, timeout=WAIT)
    assert p.returncode == 0, (p.stdout, p.stderr)
    with open(os.path.join(artifacts(), "metrics.txt"), "wb") as f:
        f.write(r.body)
    # Outside metrics_networks: 403 (127.0.0.2 is loopback too).
    r = request(port, "GET", "/metrics", src="127.0.0.2")
    assert r.status == 403, r.text()
    # /healthz: ok; then the journal's directory unwritable: 503.
    r = request(port, "GET", "/healthz")
    assert r.status == 200 and r.body == b"ok\n", r.text()
    qdir = d.data("queue")
    mode = os.stat(qdir).st_mode
    os.chmod(qdir, 0o500)
    try:
        r = request(port, "GET", "/healthz")
        if os.geteuid() != 0 or d.log().count("privileges user=") > 0:
            assert r.status == 503 and b"journal" in r.body, r.text()
    finally:
        os.chmod(qdir, mode)
    r = request(port, "GET", "/healthz")
    assert r.status == 200, r.text()
    clean_stop(d)


@suite.case
def inflight_cancel_and_stop(c):
    """A trail waiting on a server that never answers: the client going
    away withdraws it; SIGTERM answers the others 503 and exits cleanly."""
    port = free_port()
    d = c.msgtrkd(http_listen="127.0.0.1:%d" % port)
    wait_port(port)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    silent.settimeout(WAIT)
    c.on_cleanup(silent.close)
    req = {"envid": "a@b.test", "secret": "A" * 43,
           "server": "127.0.0.1:%d" % silent.getsockname()[1]}
    body = json.dumps(req).encode()
    raw = (b"POST /api/v1/track HTTP/1.1\r\nHost: x\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
           % len(body)) + body
    held = []  # the trail's connections, held open and silent
    c.on_cleanup(lambda: [h.close() for h in held])
    gone = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    gone.sendall(raw)
    held.append(silent.accept()[0])
    time.sleep(0.3)
    gone.close()
    wait_for(lambda: "http cancelled" in d.log(), what="withdrawn")
    assert d.log().count("http track ") == 0, d.log()[-2000:]
    waiting = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    waiting.sendall(raw)
    held.append(silent.accept()[0])
    time.sleep(0.3)
    d.proc.send_signal(signal.SIGTERM)
    r = read_resp(waiting)
    waiting.close()
    assert r.status == 503 and r.json() == {"error": "shutting down"}, \
        r.text()
    d.proc.wait(timeout=WAIT)
    rc = d.stop()
    assert rc in (0, None), rc
    log = d.log()
    assert "Sanitizer" not in log and "daemon stopped" in log, log[-3000:]
    assert "A" * 43 not in log


# --- HTTPS ----------------------------------------------------------------

def make_cert(c, name):
    ca_key, ca = c.path("ca.key"), c.path("ca.crt")
    key, csr, crt = c.path("s.key"), c.path("s.csr"), c.path("s.crt")
    ext = c.write("ext", "subjectAltName=DNS:%s\n" % name)
    run = lambda a: subprocess.run(a, capture_output=True, check=True,  # noqa
                                   timeout=WAIT)
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", ca_key, "-out", ca, "-subj", "/CN=test-ca", "-days", "2"])
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
         "-out", csr, "-subj", "/CN=%s" % name])
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
         "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext])
    os.chmod(key, 0o644)
    return ca, crt, key


@suite.case
def https_listener(c):
    ca, crt, key = make_cert(c, "hop1.test")
    port = free_port()
    d = c.msgtrkd(https_listen="127.0.0.1:%d" % port, tls_cert_file=crt,
                  tls_key_file=key)
    wait_port(port)
    ctx = ssl.create_default_context(cafile=ca)
    r = request(port, "GET", "/", tls=ctx)
    assert r.status == 200 and "Track a message" in r.text()
    assert r.header("strict-transport-security"), r.headers
    # TLS 1.1 is refused, TLS 1.2 taken.
    for ver, ok in (("-tls1_1", False), ("-tls1_2", True)):
        p = subprocess.run(["openssl", "s_client", ver, "-connect",
                            "127.0.0.1:%d" % port, "-CAfile", ca],
                           input=b"", capture_output=True, timeout=WAIT)
        assert (p.returncode == 0) == ok, (ver, p.stdout[-500:],
                                           p.stderr[-500:])
    # Plaintext on the TLS port gets nothing useful.
    r = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    r.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = r.recv(4096)
    r.close()
    assert not data.startswith(b"HTTP/1.1 200"), data
    clean_stop(d)


# --- hostile clients ----------------------------------------------------

@suite.case
def hostile_clients(c):
    port = free_port()
    d = c.msgtrkd(http_listen="127.0.0.1:%d" % port)
    wait_port(port)
    # Oversized headers and body.
    r = request(port, "GET", "/", headers={"X-Big": "a" * 9000})
    assert r.status in (400, 413, 431), r.status
    r = request(port, "GET", "/", headers={"X-%d" % i: "v"
                                           for i in range(100)})
    assert r.status == 431, r.status
    r = request(port, "POST", "/api/v1/track", b"{" + b" " * 20000 + b"}",
                {"Content-Type": "application/json"})
    assert r.status == 413, r.status
    # Path tricks: only our exact paths answer.
    for path in ("/../", "/%2e%2e/", "/%2e%2e%2fetc%2fpasswd", "/track/..",
                 "//", "/api/v1/../v1/track", "/%00", "/metrics%00",
                 "/" + "a" * 7000, "/index.html", "/style.css/.."):
        try:
            r = request(port, "GET", path)
        except (AssertionError, OSError):
            continue  # closed: fine
        assert r.status in (400, 404, 405, 413, 414), (path[:40], r.status)
    r = request(port, "GET", "/style.css")
    assert r.status == 200 and r.header("content-type").startswith("text/css")
    # Security headers on every answer.
    r = request(port, "GET", "/")
    csp = r.header("content-security-policy")
    assert "frame-ancestors 'none'" in csp and "script" not in csp and \
        "default-src 'none'" in csp, csp
    assert r.header("x-content-type-options") == "nosniff"
    assert "<script" not in r.text() and "http://" not in r.text().replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    (cc,) = r.all("set-cookie")
    for flag in ("HttpOnly", "Secure", "SameSite=Strict"):
        assert flag in cc.split("; "), cc
    # CSRF: a form POST without the token, or with a token not matching
    # the cookie, is 403.
    r = post_form(port, "/track", {"uri": "mtqp://h/track/a@b/AAAA"})
    assert r.status == 403, r.status
    r = post_form(port, "/track", {"uri": "mtqp://h/track/a@b/AAAA",
                                   "csrf": "y" * 43}, {"msgtrk_csrf": "x" * 43})
    assert r.status == 403, r.status
    # Methods.
    r = request(port, "DELETE", "/")
    assert r.status in (405, 501), r.status
    # Slowloris: headers trickled a byte a second are cut after the
    # request deadline (15 s), not kept for ever.
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT * 2)
    t0 = time.monotonic()
    s.sendall(b"GET / HTTP/1.1\r\n")
    closed = False
    for i in range(40):
        try:
            s.sendall(b"X-%d: v\r\n" % i)
        except OSError:
            closed = True
            break
        s.settimeout(1.0)
        try:
            if s.recv(4096) == b"":
                closed = True
                break
        except socket.timeout:
            pass
        except OSError:
            closed = True
            break
    took = time.monotonic() - t0
    s.close()
    assert closed and 12 <= took <= 25, (closed, took)
    assert "http timeout" in d.log()
    # Many connections from one address: 32 are taken, the rest refused
    # with a 503 and closed.
    conns, refused = [], 0
    try:
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
            conns.append(s)
        time.sleep(0.5)
        for s in conns:
            s.settimeout(0.3)
            try:
                data = s.recv(4096)
                if data.startswith(b"HTTP/1.1 503"):
                    refused += 1
            except socket.timeout:
                pass
        assert refused == 40 - 32, refused
        # Another address still gets in.
        r = request(port, "GET", "/healthz", src="127.0.0.3")
        assert r.status == 200
    finally:
        for s in conns:
            s.close()
    assert "http refused reason=" in d.log(), d.log()[-2000:]
    # Once they are gone, the address gets in again.
    wait_for(lambda: request(port, "GET", "/healthz").status == 200,
             what="released")
    clean_stop(d)


if __name__ == "__main__":
    suite.main()
