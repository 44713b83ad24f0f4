"""Connections without threads (issue 13): thousands of WebSockets on a handful of threads.

The server runs with --http-threads 4 (CivetWeb's pool: HTTP and handshakes only) and --presence off.
The test counts the server's threads (/proc/PID/task), opens CONNS WebSockets on raw sockets (each
named ?user=uN, each must get its welcome), and counts again: the same number, since an open
WebSocket holds no thread. Then, with all of them open: a message from the first to the last is
routed, a new client is served (101 and its welcome), /healthz answers, /metrics shows the count and
the limits; after the clients close, /healthz goes back to 0 and the thread count is still the same.

A second test gives the server an open-file limit (hard and soft) too small for --max-connections:
it says so in one log line with the number it can hold, shows that number in /metrics, and answers
503 past it.

The test process holds the client ends, so it raises its own soft RLIMIT_NOFILE (within its hard
limit). Everything is bounded in time; no timing is asserted.
"""

import json
import os
import re
import resource
import selectors
import socket
import struct
import subprocess
import time
import unittest

import harness
from harness import SLOW, OP_TEXT

CONNS = 3000
HTTP_THREADS = 4
OPEN_CAP = 60.0 * SLOW   # seconds to open them all
BATCH = 200              # handshakes in flight at once


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def threads_of(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def upgrade_request(port, user):
    return ("GET /ws?user=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (user, port, harness.ws_key())).encode()


def first_frame(buf):
    """(opcode, payload, rest) of the first whole unmasked server frame in buf, or None."""
    if len(buf) < 2:
        return None
    op, n, off = buf[0] & 0x0F, buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, off = struct.unpack(">H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, off = struct.unpack(">Q", buf[2:10])[0], 10
    if len(buf) < off + n:
        return None
    return op, buf[off:off + n], buf[off + n:]


class Client:
    """One raw WebSocket client: handshake sent, waiting for 101 and then the welcome."""

    def __init__(self, port, user):
        self.user = user
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(5.0 * SLOW)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(upgrade_request(port, user))
        self.sock.setblocking(False)
        self.buf = b""
        self.status = None
        self.welcome = None
        self.failed = None

    def on_readable(self):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as e:
            self.failed = repr(e)
            return
        if not data:
            self.failed = "EOF (status %r)" % self.status
            return
        self.buf += data
        if self.status is None and b"\r\n\r\n" in self.buf:
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            self.status = int(head.split(b" ", 2)[1])
            if self.status != 101:
                self.failed = "status %d" % self.status
                return
        if self.status == 101 and self.welcome is None:
            f = first_frame(self.buf)
            if f:
                op, payload, self.buf = f
                self.welcome = json.loads(payload) if op == OP_TEXT else {"opcode": op}

    @property
    def done(self):
        return self.failed is not None or self.welcome is not None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def open_clients(port, count, prefix, deadline):
    """Opens `count` clients, BATCH handshakes at a time; returns them, each done or timed out."""
    clients, sel = [], selectors.DefaultSelector()
    pending = set()
    i = 0
    while (i < count or pending) and time.monotonic() < deadline:
        while i < count and len(pending) < BATCH:
            c = Client(port, "%s%d" % (prefix, i))
            clients.append(c)
            pending.add(c)
            sel.register(c.sock, selectors.EVENT_READ, c)
            i += 1
        for key, _ in sel.select(timeout=0.5):
            c = key.data
            c.on_readable()
            if c.done:
                sel.unregister(c.sock)
                pending.discard(c)
    sel.close()
    return clients


def recv_message(c, timeout):
    """The next whole text frame on a client opened by open_clients, as JSON."""
    c.sock.setblocking(True)
    c.sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        f = first_frame(c.buf)
        if f:
            op, payload, c.buf = f
            if op == OP_TEXT:
                return json.loads(payload)
            continue
        data = c.sock.recv(65536)
        if not data:
            raise AssertionError("%s: EOF while waiting for a message" % c.user)
        c.buf += data
    raise AssertionError("%s: no message within %.0f s" % (c.user, timeout))


class ManyConnsTest(harness.FreshServerMixin, unittest.TestCase):
    def setUp(self):
        have = raise_nofile(CONNS + 200)
        if have < CONNS + 100:
            self.skipTest("this process may open only %d descriptors, %d needed" % (have, CONNS + 100))
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()

    def test_thousands_on_a_few_threads(self):
        srv = self.start_server(["--http-threads", str(HTTP_THREADS), "--presence", "off",
                                 "--max-connections", str(CONNS + 10), "--log-level", "warn"])
        pid = srv.proc.pid
        before = threads_of(pid)
        # main, CivetWeb's master and workers, one event loop per CPU (up to 16), a few more at most
        small = 1 + 1 + HTTP_THREADS + min(os.cpu_count() or 1, 16) + 4
        self.assertLessEqual(before, small, "the server starts with %d threads" % before)
        self.clients = open_clients(srv.port, CONNS, "u", time.monotonic() + OPEN_CAP)
        failed = [(c.user, c.failed) for c in self.clients if c.failed]
        welcomed = [c for c in self.clients if c.welcome and c.welcome.get("type") == "welcome"]
        self.assertEqual(failed[:5], [], "%d of %d failed" % (len(failed), CONNS))
        self.assertEqual(len(welcomed), CONNS, "only %d of %d welcomed within %.0f s" % (len(welcomed), CONNS, OPEN_CAP))
        self.assertEqual([c.welcome["user"] for c in welcomed[:3]], ["u0", "u1", "u2"])
        srv.wait_connections(CONNS, timeout=10 * SLOW)
        during = threads_of(pid)
        self.assertEqual(during, before, "threads: %d before %d connections, %d with them" % (before, CONNS, during))

        first, last = self.clients[0], self.clients[-1]
        first.sock.setblocking(True)
        first.sock.sendall(harness.build_frame(OP_TEXT, json.dumps(
            {"type": "send", "to": last.user, "data": "across %d" % CONNS}).encode()))
        got = recv_message(last, 10.0 * SLOW)
        self.assertEqual((got.get("type"), got.get("from"), got.get("data")), ("message", "u0", "across %d" % CONNS))

        async def newcomer():
            import websockets
            async with websockets.connect(srv.ws_uri("/ws?user=newcomer"), open_timeout=10 * SLOW) as ws:
                return json.loads(await ws.recv())
        welcome = harness.run_async(newcomer(), timeout=20 * SLOW)
        self.assertEqual((welcome["type"], welcome["user"]), ("welcome", "newcomer"))

        m = srv.metrics()
        self.assertEqual(m.get("switchboard_connections_open"), CONNS)
        self.assertEqual(m.get("switchboard_connections_limit"), CONNS + 10)
        self.assertGreaterEqual(m.get("switchboard_open_files_limit"), CONNS + 10)
        self.assertEqual(threads_of(pid), before)

        for c in self.clients:
            c.close()
        self.clients = []
        srv.wait_connections(0, timeout=20 * SLOW)
        self.assertEqual(threads_of(pid), before)


class DescriptorLimitTest(harness.FreshServerMixin, unittest.TestCase):
    LIMIT = 512

    def test_limit_too_small_for_max_connections(self):
        srv = harness.Server(["--max-connections", "100000", "--http-threads", "4", "--threads", "1"])
        self.addCleanup(srv.cleanup)
        limit = self.LIMIT

        def cap():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        srv.cmd = [harness.SB_BIN, "--port", "127.0.0.1:%d" % srv.port, "--root", srv.root] + srv.args
        srv.proc = subprocess.Popen(srv.cmd, stdin=subprocess.DEVNULL, stdout=srv._stderr_fd, stderr=srv._stderr_fd,
                                    env=srv.env, cwd=harness.SB_SRC, preexec_fn=cap)
        srv.wait_ready()
        text = srv.wait_log(r"open-file limit")
        lines = [l for l in text.splitlines() if "open-file limit" in l]
        self.assertEqual(len(lines), 1, text)
        m = re.search(r"hard limit of (\d+) descriptors holds (\d+) WebSockets, not --max-connections 100000", lines[0])
        self.assertTrue(m, lines[0])
        self.assertEqual(int(m.group(1)), limit)
        holds = int(m.group(2))
        self.assertTrue(0 < holds < limit, lines[0])
        metrics = srv.metrics()
        self.assertEqual(metrics.get("switchboard_connections_limit"), holds)
        self.assertEqual(metrics.get("switchboard_open_files_limit"), limit)
        # every slot it holds opens; one more gets 503
        self.clients = open_clients(srv.port, holds, "v", time.monotonic() + OPEN_CAP)
        self.addCleanup(lambda: [c.close() for c in self.clients])
        welcomed = sum(1 for c in self.clients if c.welcome)
        self.assertEqual(welcomed, holds, [c.failed for c in self.clients if c.failed][:5])
        resp, sock, _ = harness.raw_handshake(srv.port)
        if sock:
            sock.close()
        self.assertEqual(resp.status, 503)
        self.assertEqual(srv.healthz()["connections"], holds)
        srv.stop_and_check(self)


if __name__ == "__main__":
    unittest.main()
