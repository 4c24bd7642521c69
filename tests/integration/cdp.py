"""A headless Chromium driven through its DevTools protocol, with nothing
but Python's standard library (the WebSocket framing of RFC 6455 by hand).

Chromium runs as the machine notes say: --headless, --no-sandbox (root),
no GPU, no QUIC, no first-run, no background networking, component
updates or sync (the machine's network is closed), and a fresh
--user-data-dir.  It is started in its own process group and stopped by
that group's id.  Every wait is bounded.
"""

import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request

WAIT = 30.0


def chromium_path():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    raise AssertionError("chromium is not installed (build-aux/deps.sh test)")


class _WS:
    """A WebSocket client (RFC 6455) over a plain TCP socket."""

    def __init__(self, url, timeout=WAIT):
        assert url.startswith("ws://"), url
        hostport, path = url[5:].split("/", 1)
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % (path, hostport, key))
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError("websocket handshake: closed")
            head += chunk
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise AssertionError("websocket handshake: %r" % status)
        self.buf = head.split(b"\r\n\r\n", 1)[1]

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, text):
        data = text.encode()
        head = bytes([0x81])
        n = len(data)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(head + mask + body)

    def recv(self):
        """The next text message (continuations joined, pings answered)."""
        parts = []
        while True:
            b0, b1 = self._read(2)
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if op == 0x9:  # ping
                self.sock.sendall(bytes([0x8A, 0x80 | len(data)]) +
                                  b"\0\0\0\0" + data)
                continue
            if op == 0x8:
                raise AssertionError("websocket closed by the browser")
            parts.append(data)
            if b0 & 0x80:
                return b"".join(parts).decode()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Browser:
    """One Chromium with one page.  call(method, **params) sends a
    DevTools command and returns its result."""

    def __init__(self, workdir, width=1200, height=900):
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
        args = [chromium_path(), "--headless=new", "--no-sandbox",
                "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--disable-default-apps",
                "--user-data-dir=" + self.profile,
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=%d,%d" % (width, height), "about:blank"]
        self.log = open(os.path.join(workdir, "chromium.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        self.ws = None
        self.next_id = 0
        try:
            port = self._port()
            self._attach(port)
        except Exception:
            self.close()
            raise

    def _port(self):
        f = os.path.join(self.profile, "DevToolsActivePort")
        end = time.monotonic() + WAIT
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("chromium exited: %d" %
                                     self.proc.returncode)
            try:
                with open(f) as fh:
                    line = fh.readline().strip()
                if line:
                    return int(line)
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise AssertionError("chromium: no DevTools port")

    def _attach(self, port):
        end = time.monotonic() + WAIT
        while True:
            try:
                with urllib.request.urlopen(
                        "http://127.0.0.1:%d/json/list" % port,
                        timeout=5) as r:
                    targets = json.load(r)
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    self.ws = _WS(pages[0]["webSocketDebuggerUrl"])
                    return
            except OSError:
                pass
            if time.monotonic() > end:
                raise AssertionError("chromium: no page target")
            time.sleep(0.1)

    def call(self, method, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method,
                                 "params": params}))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == mid:
                if "error" in m:
                    raise AssertionError("%s: %s" % (method, m["error"]))
                return m.get("result", {})

    def eval(self, expr):
        """The value of a JavaScript expression in the page."""
        r = self.call("Runtime.evaluate", expression=expr,
                      returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError("evaluate %r: %s" % (
                expr, r["exceptionDetails"].get("text")))
        return r["result"].get("value")

    def goto(self, url):
        self.call("Page.navigate", url=url)
        self.wait_loaded(url.split("://", 1)[1].split("/", 1)[1]
                         if "/" in url.split("://", 1)[1] else "")

    def wait_loaded(self, path=None, timeout=WAIT):
        """Waits until the document is complete (at path, if given)."""
        end = time.monotonic() + timeout
        while True:
            try:
                st = self.eval("location.pathname + ' ' + document.readyState")
            except AssertionError:
                st = ""
            if st.endswith(" complete") and (
                    path is None or st.split(" ")[0] == "/" + path.lstrip("/")):
                return
            if time.monotonic() > end:
                raise AssertionError("page not loaded: %r" % st)
            time.sleep(0.1)

    def screenshot(self, path, width=None, height=None, mobile=False):
        if width:
            self.call("Emulation.setDeviceMetricsOverride", width=width,
                      height=height or 900, deviceScaleFactor=1,
                      mobile=mobile)
        r = self.call("Page.captureScreenshot", format="png",
                      captureBeyondViewport=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))
        return path

    def close(self):
        if self.ws is not None:
            self.ws.close()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
