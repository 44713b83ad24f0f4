"""Logs on stderr: one line per HTTP request (method, path, status) and per WebSocket open/close."""

import asyncio
import os
import re
import time
import unittest

import harness
from harness import SLOW, open_router


def wait_for_lines(srv, pred, want=1, timeout=None):
    """Poll the captured stderr until `want` lines satisfy pred (bounded); returns them."""
    deadline = time.monotonic() + (timeout or 5 * SLOW)
    lines = []
    while time.monotonic() < deadline:
        lines = [l for l in srv.stderr_text().splitlines() if pred(l)]
        if len(lines) >= want:
            return lines
        time.sleep(0.05)
    return lines


class LoggingTest(harness.FreshServerMixin, unittest.TestCase):
    def test_http_request_lines(self):
        srv = self.start_server()
        probe = "/log-probe-%s" % os.urandom(4).hex()
        self.assertEqual(srv.get(probe).status, 404)
        lines = wait_for_lines(srv, lambda l: probe in l)
        self.assertEqual(len(lines), 1, "expected one log line for GET %s:\n%s" % (probe, srv.stderr_tail()))
        self.assertRegex(lines[0], r"\bGET\b")
        self.assertRegex(lines[0], r"\b404\b")
        # exactly one line per request
        before = len(wait_for_lines(srv, lambda l: probe in l))
        srv.get(probe)
        srv.get(probe)
        lines = wait_for_lines(srv, lambda l: probe in l, want=before + 2)
        time.sleep(0.2 * SLOW)
        lines = [l for l in srv.stderr_text().splitlines() if probe in l]
        self.assertEqual(len(lines), before + 2, "\n".join(lines))

    def test_probes_are_logged_at_debug_only(self):
        """Load balancers and scrapers poll /healthz and /metrics every few seconds: not at info."""
        quiet = self.start_server()
        for path in ("/healthz", "/metrics", "/healthz"):
            self.assertEqual(quiet.get(path).status, 200)
        marker = "/log-probe-%s" % os.urandom(4).hex()
        quiet.get(marker)
        wait_for_lines(quiet, lambda l: marker in l)  # every earlier request's line is out by now
        self.assertEqual([l for l in quiet.stderr_text().splitlines() if "/healthz" in l or "/metrics" in l], [])
        loud = self.start_server(["--log-level", "debug"])
        self.assertEqual(loud.get("/healthz").status, 200)
        self.assertEqual(loud.get("/metrics").status, 200)
        for path in ("/healthz", "/metrics"):
            ok = wait_for_lines(loud, lambda l, p=path: "debug" in l and re.search(r"\bGET %s 200\b" % p, l))
            self.assertTrue(ok, "no debug 'GET %s 200' line:\n%s" % (path, loud.stderr_tail()))

    def test_websocket_open_and_close_lines(self):
        srv = self.start_server()
        user = "logger_%s" % os.urandom(3).hex()

        async def go():
            ws, _ = await open_router(srv.port, user)
            opened = await asyncio.get_running_loop().run_in_executor(
                None, lambda: wait_for_lines(srv, lambda l: user in l))
            self.assertTrue(opened, "no log line naming %s after it connected:\n%s" % (user, srv.stderr_tail()))
            await ws.close(code=1000)
            await asyncio.sleep(0)

        harness.run_async(go())
        lines = wait_for_lines(srv, lambda l: user in l, want=2)
        self.assertGreaterEqual(len(lines), 2, "expected an open and a close line for %s:\n%s"
                                % (user, srv.stderr_tail()))
        self.assertTrue(any("127.0.0.1" in l for l in lines), "remote address not logged:\n%s" % "\n".join(lines))
        self.assertTrue(any(re.search(r"\b1000\b", l) for l in lines[1:]),
                        "close line lacks the close code 1000:\n%s" % "\n".join(lines))

    def test_rejected_handshake_logged(self):
        srv = self.start_server()
        resp, _, _ = harness.raw_handshake(srv.port, "/ws?user=logrej", origin="http://evil.example")
        self.assertEqual(resp.status, 403)
        lines = wait_for_lines(srv, lambda l: "/ws" in l and re.search(r"\b403\b", l))
        self.assertTrue(lines, "no log line for the refused handshake:\n%s" % srv.stderr_tail())

    def test_request_lines_carry_real_status(self):
        # Every request line's status is an HTTP status, also for WebSocket upgrades (accepted or
        # refused): no placeholder like -1.
        srv = self.start_server()

        async def go():
            ws, _ = await open_router(srv.port, "status_probe")
            await ws.close()
            e = await harness.ws_open(srv.port, "/", subprotocols=["echo-protocol"])
            await e.close()
        harness.run_async(go())
        harness.raw_handshake(srv.port, "/ws", origin="http://evil.example")
        harness.raw_handshake(srv.port, "/ws?user=conn-1")
        srv.get("/")  # not /healthz: probes are logged at debug only
        srv.wait_connections(0)
        time.sleep(0.2 * SLOW)
        bad = []
        seen = 0
        for line in srv.stderr_text().splitlines():
            m = re.search(r"\b(GET|HEAD|POST|PUT|DELETE|OPTIONS)\s+(/\S*)\s+(-?\d+)\b", line)
            if m:
                seen += 1
                if not 100 <= int(m.group(3)) <= 599:
                    bad.append(line)
        self.assertGreater(seen, 0, "no request lines found:\n%s" % srv.stderr_tail())
        self.assertEqual(bad, [], "request lines with a status that is not an HTTP status")

    def test_control_characters_cannot_forge_lines(self):
        # Issue 18: the decoded path went into the request log as is, so %0a wrote a second, well-formed
        # line ("ws open conn-99 user=admin"), %0d a raw CR and %1b a terminal escape. One request is one
        # line, with those characters escaped (\r, \n, \x1b).
        srv = self.start_server(["--log-level", "debug"])
        probe = "forge-%s" % os.urandom(4).hex()
        forged = "%0d%0a2026-12-07T11:00:00.000Z%20info%20%20ws%20open%20conn-99%20user=admin%1b[2J"
        r = harness.raw_http(srv.port, ("GET /%s%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"
                                        % (probe, forged, srv.port)).encode())
        self.assertEqual(r.status, 404)
        lines = wait_for_lines(srv, lambda l: probe in l)
        time.sleep(0.3 * SLOW)
        text = srv.stderr_text()
        self.assertEqual([l for l in text.splitlines() if probe in l or "user=admin" in l], lines,
                         "one line expected for the request, and no forged one:\n%s" % srv.stderr_tail())
        self.assertEqual(len(lines), 1, srv.stderr_tail())
        self.assertIn("%s\\r\\n2026-12-07T11:00:00.000Z info  ws open conn-99 user=admin\\x1b[2J 404" % probe, lines[0])
        self.assertNotIn("\r", text)
        self.assertNotIn("\x1b", text)

    def test_log_level_error_is_quiet(self):
        srv = self.start_server(["--log-level", "error"])
        probe = "/quiet-probe-%s" % os.urandom(4).hex()
        self.assertEqual(srv.get(probe).status, 404)
        time.sleep(0.3 * SLOW)
        self.assertNotIn(probe, srv.stderr_text(), "request logged at --log-level error")


if __name__ == "__main__":
    unittest.main()
