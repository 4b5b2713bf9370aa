#!/usr/bin/env python3
"""Drive an already started headless Chromium over the DevTools protocol (standard library only):
load one HTML page from a file:// URL, check it, and write a full-page PNG screenshot.

Called by scripts/render_html.sh, which installs, starts and kills Chromium:
    render_html.py PROFILE_DIR CHROMIUM_PID PAGE OUT.png MIN_SVG DEADLINE_SECONDS

The page fails (exit 1, one line per problem on stderr) on: a JavaScript exception; a console
message or browser log entry of level error or warning; a request whose URL is not file:, data:,
blob: or about: (such requests are also blocked, through the Fetch domain); a WebSocket; a failed
navigation or no load event; an XML parse error (<parsererror>, what Chromium shows for a
malformed XHTML/SVG document); an outermost <svg> element that is not rendered (no child
elements, a zero-sized box, or a getBBox() of zero width and height); fewer than MIN_SVG
rendered <svg> elements. Exit 2 is a failure of the tooling itself (Chromium did not start, ...).
"""
import base64
import json
import os
import socket
import struct
import sys
import time
import pathlib

ALLOWED_SCHEMES = ("file:", "data:", "blob:", "about:")
VIEWPORT = (1280, 800)
MAX_SHOT_HEIGHT = 16384  # a longer page is cut there in the screenshot (it is still checked whole)


class ToolError(Exception):
    """The tooling failed (not the page): exit 2."""


class WebSocket:
    """A minimal RFC 6455 client: text frames out (masked), text/binary/continuation/ping/close in."""

    def __init__(self, host, port, path, deadline):
        self.deadline = deadline
        self.sock = socket.create_connection((host, port), timeout=self._left())
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self._recv_some()
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ToolError(f"DevTools websocket handshake refused: {head[:200]!r}")

    def _left(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    def _recv_some(self):
        self.sock.settimeout(self._left())
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ToolError("DevTools connection closed by Chromium (did it crash?)")
        return chunk

    def _read(self, n):
        while len(self.buf) < n:
            self.buf += self._recv_some()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, text):
        payload = text.encode()
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        mask = os.urandom(4)
        body = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.settimeout(self._left())
        self.sock.sendall(head + mask + body)

    def _send_control(self, opcode, payload=b""):
        mask = os.urandom(4)
        body = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.sendall(struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + body)

    def recv(self):
        """The next whole text message."""
        parts = []
        while True:
            b0, b1 = self._read(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
            if opcode == 0x9:  # ping
                self._send_control(0xA, payload)
                continue
            if opcode == 0xA:  # pong
                continue
            if opcode == 0x8:
                raise ToolError("DevTools connection closed by Chromium")
            parts.append(payload)
            if b0 & 0x80:  # FIN
                return b"".join(parts).decode()


class Session:
    """One page target of the browser, reached through the browser's socket (flattened sessions)."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.session_id = None
        self.problems = []   # what is wrong with the page
        self.requests = []   # every URL the page asked for
        self.loaded = False
        self.load_error = None

    def post(self, method, params=None, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session_id:
            msg["sessionId"] = self.session_id
        self.ws.send(json.dumps(msg))
        return self.next_id

    def call(self, method, params=None, session=True):
        want = self.post(method, params, session)
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == want:
                if "error" in msg:
                    raise ToolError(f"{method}: {msg['error'].get('message')}")
                return msg.get("result", {})
            if "method" in msg:
                self.on_event(msg["method"], msg.get("params", {}))

    def pump_until(self, done):
        while not done():
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.on_event(msg["method"], msg.get("params", {}))

    def on_event(self, method, p):
        if method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            exc = d.get("exception", {}) or {}
            text = exc.get("description") or d.get("text", "exception")
            where = f"{d.get('url', '')}:{d.get('lineNumber', 0) + 1}" if d.get("url") else ""
            self.problems.append(f"JavaScript exception {where}: {text.splitlines()[0]}")
        elif method == "Runtime.consoleAPICalled":
            if p.get("type") in ("error", "warning", "assert"):
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
                self.problems.append(f"console.{p['type']}: {args}")
        elif method == "Log.entryAdded":
            e = p.get("entry", {})
            if e.get("level") in ("error", "warning"):
                url = f" ({e['url']})" if e.get("url") else ""
                self.problems.append(f"browser log {e['level']} [{e.get('source')}]: {e.get('text')}{url}")
        elif method == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            self.requests.append(url)
            if not url.startswith(ALLOWED_SCHEMES):
                self.problems.append(f"network request to {url[:200]} (the page must be self-contained)")
        elif method == "Network.webSocketCreated":
            self.problems.append(f"WebSocket to {p.get('url', '')[:200]} (the page must be self-contained)")
        elif method == "Fetch.requestPaused":
            url = p.get("request", {}).get("url", "")
            if url.startswith(ALLOWED_SCHEMES):
                self.post("Fetch.continueRequest", {"requestId": p["requestId"]})
            else:
                # Network.requestWillBeSent reports it; here it is only stopped before it leaves.
                self.post("Fetch.failRequest", {"requestId": p["requestId"], "errorReason": "BlockedByClient"})
        elif method == "Page.loadEventFired":
            self.loaded = True
        elif method == "Inspector.targetCrashed":
            self.load_error = "the page's renderer crashed"
            self.loaded = True


CHECK_JS = r"""
(async () => {
  // Let layout, fonts and two frames settle, and late timers (up to 200 ms) run.
  await document.fonts.ready;
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  await new Promise(r => setTimeout(r, 200));
  const all = Array.from(document.getElementsByTagNameNS('http://www.w3.org/2000/svg', 'svg'));
  const outer = all.filter(s => !(s.parentElement && s.parentElement.closest('svg')));
  const svgs = outer.map((s, i) => {
    const r = s.getBoundingClientRect();
    let bbox = null;
    try { const b = s.getBBox(); bbox = [b.width, b.height]; } catch (e) { bbox = null; }
    const cs = getComputedStyle(s);
    const label = s.id ? '#' + s.id : (s.getAttribute('aria-label') || s.getAttribute('class') || '').slice(0, 60);
    const why = [];
    if (s.childElementCount === 0) why.push('no child elements');
    if (!(r.width > 0 && r.height > 0)) why.push(`box ${r.width}x${r.height}`);
    if (!bbox || !(bbox[0] > 0 || bbox[1] > 0)) why.push(`getBBox ${bbox ? bbox.join('x') : 'failed'}`);
    if (cs.display === 'none' || cs.visibility === 'hidden') why.push(`display ${cs.display} visibility ${cs.visibility}`);
    return {n: i + 1, label, w: r.width, h: r.height, children: s.childElementCount, why};
  });
  const perr = document.getElementsByTagNameNS('*', 'parsererror');
  return JSON.stringify({
    title: document.title,
    readyState: document.readyState,
    contentType: document.contentType,
    parseErrors: Array.from(perr).map(e => e.textContent.replace(/\s+/g, ' ').trim().slice(0, 300)),
    svgs,
  });
})()
"""


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ToolError(f"{path} is not a PNG")
    return struct.unpack("!II", head[16:24])


def wait_for_port(profile, pid, deadline):
    port_file = pathlib.Path(profile) / "DevToolsActivePort"
    while True:
        try:
            lines = port_file.read_text().split("\n")
            if len(lines) >= 2 and lines[0].strip() and lines[1].strip():
                return int(lines[0]), lines[1].strip()
        except FileNotFoundError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise ToolError("Chromium exited before it opened its DevTools port")
        if time.monotonic() > deadline:
            raise ToolError("Chromium did not open its DevTools port in time")
        time.sleep(0.05)


def run(profile, pid, page, out, min_svg, deadline):
    port, path = wait_for_port(profile, pid, min(deadline, time.monotonic() + 20))
    ws = WebSocket("127.0.0.1", port, path, deadline)
    s = Session(ws)
    target = s.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
    s.session_id = s.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                          session=False)["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network", "Inspector"):
        s.call(f"{domain}.enable")
    s.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})
    s.call("Emulation.setDeviceMetricsOverride",
           {"width": VIEWPORT[0], "height": VIEWPORT[1], "deviceScaleFactor": 1, "mobile": False})
    url = pathlib.Path(page).resolve().as_uri()
    nav = s.call("Page.navigate", {"url": url})
    if nav.get("errorText"):
        s.problems.append(f"page load failed: {nav['errorText']} ({url})")
        return s, None, None
    s.pump_until(lambda: s.loaded)
    if s.load_error:
        s.problems.append(s.load_error)
        return s, None, None
    res = s.call("Runtime.evaluate", {"expression": CHECK_JS, "awaitPromise": True, "returnByValue": True})
    if "exceptionDetails" in res:
        raise ToolError(f"the check script failed: {res['exceptionDetails'].get('text')}")
    info = json.loads(res["result"]["value"])
    for e in info["parseErrors"]:
        s.problems.append(f"XML parse error shown on the page: {e}")
    rendered = [v for v in info["svgs"] if not v["why"]]
    for v in info["svgs"]:
        if v["why"]:
            s.problems.append(f"<svg> no. {v['n']}{' (' + v['label'] + ')' if v['label'] else ''} is not rendered: {', '.join(v['why'])}")
    if len(rendered) < min_svg:
        s.problems.append(f"only {len(rendered)} rendered <svg> element(s), at least {min_svg} required")

    metrics = s.call("Page.getLayoutMetrics")
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    width = max(1, int(round(size["width"])))
    height = max(1, min(MAX_SHOT_HEIGHT, int(round(size["height"]))))
    shot = s.call("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    pathlib.Path(out).write_bytes(base64.b64decode(shot["data"]))
    # Anything reported while the checks ran (a late timer's exception) is in s.problems by now.
    return s, info, rendered


def main(argv):
    if len(argv) != 7:
        print(__doc__, file=sys.stderr)
        return 2
    profile, pid, page, out, min_svg, seconds = argv[1:]
    deadline = time.monotonic() + float(seconds)
    try:
        s, info, rendered = run(profile, int(pid), page, out, int(min_svg), deadline)
    except TimeoutError:
        print(f"render_html: FAIL {page}: timed out after {seconds} s (no load event, or Chromium hung)",
              file=sys.stderr)
        return 1
    except (ToolError, OSError) as e:
        print(f"render_html: ERROR {page}: {e}", file=sys.stderr)
        return 2
    # The same problem may be reported twice (console and log); keep the first of each.
    problems = list(dict.fromkeys(s.problems))
    if problems:
        print(f"render_html: FAIL {page}:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        if os.path.exists(out) and info is not None:
            print(f"  (screenshot written anyway: {out})", file=sys.stderr)
        return 1
    w, h = png_size(out)
    print(f"render_html: OK {page}: {len(rendered)} svg rendered (min {min_svg}), "
          f"title {info['title']!r}, {out} {w}x{h} px {os.path.getsize(out)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
