"""Shared helpers for switchboard's integration tests.

Environment (set by tests/CMakeLists.txt):
  SWITCHBOARD_BIN  path of the switchboard binary
  SWITCHBOARD_SRC  repository root
  SB_SANITIZE      "1" when the binary is built with ASan/UBSan (everything is slower: timeouts scale)

Everything here talks to 127.0.0.1 only; every loop is bounded in count and time and every socket
read has a timeout.
"""

import asyncio
import base64
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import websockets
import websockets.exceptions

SB_BIN = os.environ.get("SWITCHBOARD_BIN", "")
SB_SRC = os.environ.get("SWITCHBOARD_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SANITIZE = os.environ.get("SB_SANITIZE", "0").strip().lower() in ("1", "on", "true", "yes")

# Multiplier for every deadline: sanitizer builds are several times slower.
SLOW = 4.0 if SANITIZE else 1.0
# How long a test waits for a message it expects (generous: a deadline, not a timing assertion).
RECV_TIMEOUT = 5.0 * SLOW
# How long a test waits to make sure nothing more arrives.
QUIET = 0.3 * SLOW

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def require_binary():
    if not SB_BIN:
        raise AssertionError("SWITCHBOARD_BIN is not set (run through ctest, or export it)")
    if not os.path.isfile(SB_BIN) or not os.access(SB_BIN, os.X_OK):
        raise AssertionError("SWITCHBOARD_BIN=%r is not an executable file" % SB_BIN)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def closed_port():
    """A port on 127.0.0.1 that (almost certainly) nobody listens on."""
    return free_port()


# --------------------------------------------------------------------------------------------
# HTTP


class HttpResponse:
    def __init__(self, status, reason, headers, body, raw_head=b""):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value), names as sent
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def has_header(self, name):
        return self.header(name) is not None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "HttpResponse(%d %s, headers=%r, body=%r)" % (
            self.status, self.reason, self.headers, self.body[:300])


def http_get(port, path, headers=None, method="GET", timeout=None):
    """Plain HTTP/1.1 request via http.client; the path is sent exactly as given."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout or RECV_TIMEOUT)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        body = r.read()
        return HttpResponse(r.status, r.reason, r.getheaders(), body)
    finally:
        conn.close()


def _read_http_head(sock, deadline, limit=65536):
    """Read until the end of the HTTP head; returns (head bytes, leftover bytes)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > limit:
            raise AssertionError("HTTP response head larger than %d bytes: %r" % (limit, buf[:200]))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("timed out waiting for an HTTP response head; got %r" % buf[:300])
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            raise AssertionError("timed out waiting for an HTTP response head; got %r" % buf[:300])
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise AssertionError("connection closed before a complete HTTP response head; got %r"
                                 % buf[:300])
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def _parse_head(head):
    lines = head.split(b"\r\n")
    status_line = lines[0].decode("latin-1")
    m = re.match(r"^HTTP/1\.[01] (\d{3})(?: (.*))?$", status_line)
    if not m:
        raise AssertionError("not an HTTP status line: %r" % status_line)
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        k, _, v = line.decode("latin-1").partition(":")
        headers.append((k.strip(), v.strip()))
    return int(m.group(1)), m.group(2) or "", headers


def _read_body(sock, resp_headers, rest, deadline, limit=1 << 20):
    cl = None
    for k, v in resp_headers:
        if k.lower() == "content-length":
            cl = int(v)
    body = rest
    while True:
        if cl is not None and len(body) >= cl:
            return body[:cl]
        if len(body) > limit:
            return body
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if cl is None:
                return body  # no length and no close: what we have is the body
            raise AssertionError("timed out reading a %d-byte body (got %d)" % (cl, len(body)))
        sock.settimeout(min(remaining, 1.0 if cl is None else remaining))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            if cl is None:
                return body
            continue
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return body
        body += chunk


def ws_key():
    return base64.b64encode(os.urandom(16)).decode("ascii")


def ws_accept(key):
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + WS_GUID).digest()).decode("ascii")


def raw_handshake(port, path="/ws", protocols=None, origin=None, host=None, extra=None,
                  rcvbuf=None, timeout=None):
    """Send a WebSocket upgrade request on a raw socket.

    Returns (HttpResponse, socket, leftover bytes). On a 101 the socket is left open for frames;
    otherwise the body is read and the socket is closed (returned as None).
    """
    timeout = timeout or RECV_TIMEOUT
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    key = ws_key()
    lines = [
        "GET %s HTTP/1.1" % path,
        "Host: %s" % (host if host is not None else "127.0.0.1:%d" % port),
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: %s" % key,
        "Sec-WebSocket-Version: 13",
    ]
    if protocols:
        lines.append("Sec-WebSocket-Protocol: %s" % ", ".join(protocols))
    if origin is not None:
        lines.append("Origin: %s" % origin)
    for k, v in (extra or {}).items():
        lines.append("%s: %s" % (k, v))
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    deadline = time.monotonic() + timeout
    head, rest = _read_http_head(sock, deadline)
    status, reason, headers = _parse_head(head)
    if status == 101:
        resp = HttpResponse(status, reason, headers, b"", head)
        acc = resp.header("Sec-WebSocket-Accept")
        if acc != ws_accept(key):
            sock.close()
            raise AssertionError("bad Sec-WebSocket-Accept %r (expected %r)" % (acc, ws_accept(key)))
        return resp, sock, rest
    body = _read_body(sock, headers, rest, deadline)
    sock.close()
    return HttpResponse(status, reason, headers, body, head), None, b""


def raw_http(port, request, timeout=None):
    """Send raw request bytes, return an HttpResponse."""
    timeout = timeout or RECV_TIMEOUT
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        deadline = time.monotonic() + timeout
        head, rest = _read_http_head(sock, deadline)
        status, reason, headers = _parse_head(head)
        body = _read_body(sock, headers, rest, deadline)
        return HttpResponse(status, reason, headers, body, head)


# --------------------------------------------------------------------------------------------
# Prometheus text


_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_metrics(text):
    """Parse Prometheus text exposition into {(name, frozenset(labels.items())): float}."""
    out = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise AssertionError("line %d of /metrics is not a Prometheus sample: %r" % (lineno, line))
        name, _, labelstr, value = m.group(1), m.group(2), m.group(3), m.group(4)
        labels = {}
        if labelstr:
            pos = 0
            while pos < len(labelstr):
                lm = _LABEL_RE.match(labelstr, pos)
                if not lm or lm.end() == pos:
                    raise AssertionError("bad labels on line %d of /metrics: %r" % (lineno, line))
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        out[(name, frozenset(labels.items()))] = float(value)
    return out


class Metrics:
    def __init__(self, text):
        self.text = text
        self.samples = parse_metrics(text)

    def names(self):
        return {n for n, _ in self.samples}

    def get(self, name, default=0.0, **labels):
        """Value of the series name{labels}; an absent labelled series counts as `default` (0)."""
        key = (name, frozenset(labels.items()))
        if key in self.samples:
            return self.samples[key]
        return default

    def sum(self, name):
        """Sum of every series of `name`, whatever its labels."""
        return sum(v for (n, _), v in self.samples.items() if n == name)

    def has(self, name):
        return name in self.names()


# --------------------------------------------------------------------------------------------
# Server process


class Server:
    """One switchboard process on a free 127.0.0.1 port."""

    def __init__(self, args=(), env=None, root=None, port=None, port_via_env=False):
        require_binary()
        self.port_via_env = port_via_env
        self.port = port or free_port()
        self.root = root or os.path.join(SB_SRC, "www")
        self.args = list(args)
        # The suite was written before presence modes, when presence was global; the default (rooms) and
        # off are tested where a test asks for them with --presence or SWITCHBOARD_PRESENCE.
        if not any(a.startswith("--presence") for a in self.args) and "SWITCHBOARD_PRESENCE" not in (env or {}):
            self.args = ["--presence", "global"] + self.args
        self.env = dict(os.environ)
        # Our own settings must come from flags, not from the caller's environment.
        for k in list(self.env):
            if k.startswith("SWITCHBOARD_") and k not in ("SWITCHBOARD_BIN", "SWITCHBOARD_SRC"):
                del self.env[k]
        if SANITIZE:
            self.env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
            self.env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        if env:
            self.env.update(env)
        self.proc = None
        self.returncode = None
        self._final_stderr = None
        self._stderr_fd, self.stderr_path = tempfile.mkstemp(prefix="switchboard-", suffix=".stderr")

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def ws_uri(self, path="/ws"):
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    def start(self, wait=True):
        if self.port_via_env:
            self.env["SWITCHBOARD_PORT"] = "127.0.0.1:%d" % self.port
            cmd = [SB_BIN, "--root", self.root] + self.args
        else:
            cmd = [SB_BIN, "--port", "127.0.0.1:%d" % self.port, "--root", self.root] + self.args
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._stderr_fd,
                                     stderr=self._stderr_fd, env=self.env, cwd=SB_SRC)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=None):
        timeout = timeout or 10.0 * SLOW
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("switchboard exited with %s before it was ready\ncmd: %s\n%s"
                                     % (self.proc.returncode, " ".join(self.cmd), self.stderr_tail()))
            try:
                r = http_get(self.port, "/healthz", timeout=1.0 * SLOW)
                if r.status == 200:
                    return
                last = "status %d" % r.status
            except (OSError, http.client.HTTPException) as e:
                last = repr(e)
            time.sleep(0.05)
        raise AssertionError("switchboard did not answer GET /healthz 200 within %.0f s (last: %s)\n%s"
                             % (timeout, last, self.stderr_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait_exit(self, timeout=None):
        timeout = timeout or 10.0 * SLOW
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.returncode = None
        return self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Signal the server, wait for it; returns its exit code, or None if it had to be killed."""
        if self.proc is None:
            return 0
        if self.returncode is not None or self.proc.poll() is not None:
            self.returncode = self.proc.returncode
            return self.returncode
        self.proc.send_signal(sig)
        return self.wait_exit(timeout)

    def wait_log(self, pattern, timeout=None):
        """The server's stderr once it matches the regex `pattern` (bounded; the server logs its
        startup line after it already answers, so a test may read before the line is written)."""
        deadline = time.monotonic() + (timeout or RECV_TIMEOUT)
        text = self.stderr_text()
        while not re.search(pattern, text) and time.monotonic() < deadline:
            time.sleep(0.05)
            text = self.stderr_text()
        return text

    def stderr_text(self):
        if self._final_stderr is not None:
            return self._final_stderr
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_tail(self, n=60):
        lines = self.stderr_text().splitlines()
        return "---- switchboard stderr (last %d of %d lines) ----\n%s\n----" % (
            min(n, len(lines)), len(lines), "\n".join(lines[-n:]))

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self._final_stderr is None:
            self._final_stderr = self.stderr_text()
        try:
            os.close(self._stderr_fd)
        except OSError:
            pass
        try:
            os.unlink(self.stderr_path)
        except OSError:
            pass

    def stop_and_check(self, testcase=None):
        """SIGTERM, expect exit 0 (a sanitizer report makes it non-zero); always clean up."""
        try:
            rc = self.stop()
            msg = ("switchboard exited with %r after SIGTERM (expected 0)\n%s" % (rc, self.stderr_tail()))
            if rc != 0:
                raise AssertionError(msg)
        finally:
            self.cleanup()

    # convenience
    def get(self, path, headers=None, **kw):
        return http_get(self.port, path, headers, **kw)

    def healthz(self):
        r = http_get(self.port, "/healthz")
        if r.status != 200:
            raise AssertionError("GET /healthz -> %d %r" % (r.status, r.body[:200]))
        return r.json()

    def metrics(self):
        r = http_get(self.port, "/metrics")
        if r.status != 200:
            raise AssertionError("GET /metrics -> %d %r" % (r.status, r.body[:200]))
        return Metrics(r.body.decode("utf-8"))

    def wait_connections(self, n, timeout=None):
        """Poll /healthz until it reports n open websockets (bounded); returns the last value."""
        deadline = time.monotonic() + (timeout or RECV_TIMEOUT)
        v = None
        while time.monotonic() < deadline:
            v = self.healthz().get("connections")
            if v == n:
                return v
            time.sleep(0.05)
        raise AssertionError("/healthz connections stayed %r, expected %r" % (v, n))


class ServerTestCase(unittest.TestCase):
    """One fresh server per test class; its stderr is printed when a test of the class fails.

    Subclasses set `server_args` (a list of extra flags), optionally `server_env` and
    `make_root()` (returns a --root directory).
    """

    server_args = []
    server_env = None
    server = None

    @classmethod
    def make_root(cls):
        return None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = Server(cls.server_args, env=cls.server_env, root=cls.make_root())
        try:
            cls.server.start()
        except BaseException:
            cls.server.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.server is not None:
                cls.server.stop_and_check()
        finally:
            super().tearDownClass()

    @property
    def port(self):
        return self.server.port

    def run(self, result=None):
        before = (len(result.failures) + len(result.errors)) if result is not None else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            srv = getattr(self, "server", None) or getattr(type(self), "server", None)
            if srv is not None:
                sys.stderr.write("\n%s: server stderr:\n%s\n" % (self.id(), srv.stderr_tail()))
        return out


class FreshServerMixin:
    """For tests that need their own server: self.start_server(args) and automatic cleanup."""

    def start_server(self, args=(), env=None, root=None, wait=True, port_via_env=False):
        srv = Server(args, env=env, root=root, port_via_env=port_via_env)
        if not hasattr(self, "_servers"):
            self._servers = []
        self._servers.append(srv)
        self.addCleanup(self._stop_server, srv)
        srv.start(wait=wait)
        return srv

    def _stop_server(self, srv):
        if srv.proc is None:
            srv.cleanup()
            return
        srv.stop_and_check()

    def run(self, result=None):
        before = (len(result.failures) + len(result.errors)) if result is not None else 0
        self._servers = []
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            for srv in self._servers:
                sys.stderr.write("\n%s: server on port %d stderr:\n%s\n"
                                 % (self.id(), srv.port, srv.stderr_tail()))
        return out


# --------------------------------------------------------------------------------------------
# asyncio / websockets helpers


def run_async(coro, timeout=None):
    """Run a coroutine with an overall deadline."""
    timeout = timeout or 30.0 * SLOW

    async def guarded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(guarded())


async def ws_open(port, path="/ws", subprotocols=None, origin=None, extra_headers=None, **kw):
    return await websockets.connect(
        "ws://127.0.0.1:%d%s" % (port, path),
        subprotocols=subprotocols, origin=origin, extra_headers=extra_headers,
        ping_interval=None, max_size=None, compression=None,
        open_timeout=RECV_TIMEOUT, close_timeout=RECV_TIMEOUT, **kw)


async def recv(ws, timeout=None):
    return await asyncio.wait_for(ws.recv(), timeout or RECV_TIMEOUT)


async def recv_json(ws, timeout=None):
    msg = await recv(ws, timeout)
    if not isinstance(msg, str):
        raise AssertionError("expected a text message, got binary %r" % msg[:100])
    try:
        return json.loads(msg)
    except ValueError:
        raise AssertionError("server sent a text message that is not JSON: %r" % msg[:300])


async def recv_until(ws, pred, limit=100, timeout=None):
    """Receive JSON messages until pred(msg); returns (msg, skipped list). Bounded."""
    skipped = []
    deadline = time.monotonic() + (timeout or RECV_TIMEOUT)
    for _ in range(limit):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        m = await recv_json(ws, remaining)
        if pred(m):
            return m, skipped
        skipped.append(m)
    raise AssertionError("no matching message within %d messages; got %r" % (limit, skipped[-10:]))


async def expect_quiet(ws, wait=None):
    """Assert nothing arrives on ws for a short while (a bounded wait, not a timing assertion)."""
    try:
        m = await asyncio.wait_for(ws.recv(), wait or QUIET)
    except asyncio.TimeoutError:
        return
    except websockets.exceptions.ConnectionClosed:
        return
    raise AssertionError("unexpected extra message: %r" % (m[:300],))


async def open_router(port, user=None, path="/ws", **kw):
    """Open a router connection (optionally ?user=NAME) and consume its welcome."""
    p = path + ("?user=%s" % user if user else "")
    ws = await ws_open(port, p, **kw)
    welcome = await recv_json(ws)
    if welcome.get("type") != "welcome":
        await ws.close()
        raise AssertionError("first message was not a welcome: %r" % welcome)
    return ws, welcome


async def send_json(ws, obj):
    await ws.send(json.dumps(obj, separators=(",", ":")))


# --------------------------------------------------------------------------------------------
# Raw WebSocket client (for frames websockets will not send)


def build_frame(opcode, payload=b"", fin=True, rsv=0, mask=True):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class Frame:
    def __init__(self, fin, rsv, opcode, payload, masked=False):
        self.fin, self.rsv, self.opcode, self.payload, self.masked = fin, rsv, opcode, payload, masked

    @property
    def close_code(self):
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    def __repr__(self):
        return "Frame(fin=%d rsv=%d op=0x%x len=%d %r)" % (
            self.fin, self.rsv, self.opcode, len(self.payload), self.payload[:60])


class RawWS:
    """A hand-written client: complete the handshake, then send/receive frames byte by byte."""

    def __init__(self, port, path="/ws", protocols=None, origin=None, rcvbuf=None, timeout=None):
        resp, sock, rest = raw_handshake(port, path, protocols=protocols, origin=origin,
                                         rcvbuf=rcvbuf, timeout=timeout)
        if resp.status != 101:
            raise AssertionError("handshake to %s refused: %r" % (path, resp))
        self.response = resp
        self.sock = sock
        self.buf = rest
        self.eof = False

    @classmethod
    def wrap(cls, resp, sock, rest):
        """A RawWS around an already upgraded socket from raw_handshake()."""
        if resp.status != 101:
            raise AssertionError("handshake refused: %r" % resp)
        self = cls.__new__(cls)
        self.response, self.sock, self.buf, self.eof = resp, sock, rest, False
        return self

    def close_socket(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close_socket()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0):
        self.sock.sendall(build_frame(opcode, payload, fin=fin, rsv=rsv))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text)

    def send_close(self, code=None, reason=b""):
        self.send_frame(OP_CLOSE, b"" if code is None else close_payload(code, reason))

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("frame read timed out")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                self.eof = True
                return False
            self.buf += chunk
        return True

    def recv_frame(self, timeout=None):
        """Next frame, or None on EOF; raises socket.timeout after `timeout` seconds."""
        deadline = time.monotonic() + (timeout or RECV_TIMEOUT)
        if not self._fill(2, deadline):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        fin, rsv, opcode = bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF
        masked, n = bool(b1 & 0x80), b1 & 0x7F
        pos = 2
        if n == 126:
            if not self._fill(4, deadline):
                return None
            n = struct.unpack("!H", self.buf[2:4])[0]
            pos = 4
        elif n == 127:
            if not self._fill(10, deadline):
                return None
            n = struct.unpack("!Q", self.buf[2:10])[0]
            pos = 10
        key = None
        if masked:
            if not self._fill(pos + 4, deadline):
                return None
            key = self.buf[pos:pos + 4]
            pos += 4
        if not self._fill(pos + n, deadline):
            return None
        payload = self.buf[pos:pos + n]
        self.buf = self.buf[pos + n:]
        if key:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        return Frame(fin, rsv, opcode, payload, masked)

    def recv_data(self, timeout=None, limit=1000):
        """Next data frame (text/binary/continuation), skipping control frames; None on EOF/close."""
        deadline = time.monotonic() + (timeout or RECV_TIMEOUT)
        for _ in range(limit):
            f = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if f is None:
                return None
            if f.opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                return f
            if f.opcode == OP_CLOSE:
                raise AssertionError("server closed (code %r) while a data frame was expected"
                                     % f.close_code)
        raise AssertionError("no data frame within %d frames" % limit)

    def recv_message(self, timeout=None, limit=1000):
        """Reassemble the next data message; returns (opcode, payload bytes)."""
        deadline = time.monotonic() + (timeout or RECV_TIMEOUT)
        first = self.recv_data(max(0.01, deadline - time.monotonic()))
        if first is None:
            raise AssertionError("connection closed while a message was expected")
        op, data, f = first.opcode, first.payload, first
        for _ in range(limit):
            if f.fin:
                return op, data
            f = self.recv_data(max(0.01, deadline - time.monotonic()))
            if f is None:
                raise AssertionError("connection closed inside a fragmented message")
            data += f.payload
        raise AssertionError("message with more than %d fragments" % limit)

    def recv_json(self, timeout=None):
        op, data = self.recv_message(timeout)
        if op != OP_TEXT:
            raise AssertionError("expected a text message, got opcode %d %r" % (op, data[:100]))
        return json.loads(data.decode("utf-8"))

    def expect_close(self, timeout=None, limit=100000, reply=True):
        """Read (skipping data/ping/pong frames) until the server's close frame; answer it; then
        require the TCP connection to end. Returns the close frame (or raises)."""
        deadline = time.monotonic() + (timeout or RECV_TIMEOUT)
        seen = []
        for _ in range(limit):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                f = self.recv_frame(remaining)
            except socket.timeout:
                break
            if f is None:
                raise AssertionError("TCP connection ended without a close frame (after %d frames: %r)"
                                     % (len(seen), seen[-5:]))
            if f.opcode == OP_CLOSE:
                if reply:
                    try:
                        self.sock.sendall(build_frame(OP_CLOSE, f.payload[:2]))
                    except OSError:
                        pass
                self.expect_eof(max(1.0, deadline - time.monotonic()))
                return f
            seen.append(f)
        raise AssertionError("no close frame from the server within the deadline (frames: %r)"
                             % seen[-5:])

    def expect_eof(self, timeout=None):
        """Require the TCP connection to end (bounded); discards any bytes still arriving."""
        deadline = time.monotonic() + (timeout or RECV_TIMEOUT)
        total = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("TCP connection still open after the close handshake")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError("TCP connection still open after the close handshake")
            except (ConnectionResetError, BrokenPipeError):
                return
            if not chunk:
                return
            total += len(chunk)
            if total > (1 << 24):
                raise AssertionError("server kept sending after its close frame")


def make_static_root(parent):
    """Create a document root with known files in `parent`; returns (root, secret_path, secret)."""
    root = os.path.join(parent, "www")
    os.makedirs(os.path.join(root, "sub"))
    os.makedirs(os.path.join(root, "assets"))
    secret = "TOP-SECRET-%s" % os.urandom(8).hex()
    secret_path = os.path.join(parent, "secret.txt")
    with open(secret_path, "w") as f:
        f.write(secret + "\n")
    return root, secret_path, secret
