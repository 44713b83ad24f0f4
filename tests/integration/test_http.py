"""HTTP side of the server: static files, 404s, traversal, /healthz and /metrics."""

import os
import shutil
import tempfile
import time
import unittest

import harness
from harness import SLOW

# Smallest valid PNG (1x1, transparent).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


class StaticRoot:
    """A temporary document root with known content, plus a secret file outside it."""

    def __init__(self):
        self.parent = tempfile.mkdtemp(prefix="sb-root-")
        self.root, self.secret_path, self.secret = harness.make_static_root(self.parent)
        r = self.root
        self.files = {
            "index.html": b"<!doctype html><title>switchboard test</title><p>INDEX-MARKER</p>\n",
            "style.css": b"body { color: #123456; } /* CSS-MARKER */\n",
            "app.js": b"console.log('JS-MARKER');\n",
            "data.json": b'{"marker": "JSON-MARKER"}\n',
            "logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"><!-- SVG-MARKER --></svg>\n',
            "pixel.png": PNG,
            "sub/inner-file.txt": b"INNER-MARKER\n",
            "assets/index.html": b"<p>ASSETS-INDEX-MARKER</p>\n",
            # Must be served as bytes, never run or expanded.
            "run.cgi": b"#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho CGI-RAN-$((6*7))\n",
            "page.shtml": (b"<p>SSI-MARKER</p><!--#include virtual=\"/data.json\" -->"
                           b"<!--#exec cmd=\"echo SSI-EXEC-$((6*7))\" -->\n"),
        }
        for rel, data in self.files.items():
            p = os.path.join(r, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)
        os.chmod(os.path.join(r, "run.cgi"), 0o755)

    def cleanup(self):
        shutil.rmtree(self.parent, ignore_errors=True)


class StaticFilesTest(harness.ServerTestCase):
    @classmethod
    def make_root(cls):
        cls.static = StaticRoot()
        return cls.static.root

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.static.cleanup()

    def get(self, path, headers=None):
        return self.server.get(path, headers)

    def assert_file(self, path, rel, ctype_prefixes):
        r = self.get(path)
        self.assertEqual(r.status, 200, "GET %s: %r" % (path, r))
        self.assertEqual(r.body, self.static.files[rel], "GET %s returned other content" % path)
        ctype = (r.header("Content-Type") or "").lower()
        self.assertTrue(any(ctype.startswith(p) for p in ctype_prefixes),
                        "GET %s: Content-Type %r, expected one of %r" % (path, ctype, ctype_prefixes))
        self.assertEqual((r.header("X-Content-Type-Options") or "").lower(), "nosniff",
                         "GET %s: missing X-Content-Type-Options: nosniff (%r)" % (path, r.headers))
        return r

    def test_html(self):
        self.assert_file("/index.html", "index.html", ["text/html"])

    def test_root_serves_index(self):
        self.assert_file("/", "index.html", ["text/html"])

    def test_subdir_index(self):
        r = self.get("/assets/")
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"ASSETS-INDEX-MARKER", r.body)

    def test_css(self):
        self.assert_file("/style.css", "style.css", ["text/css"])

    def test_js(self):
        self.assert_file("/app.js", "app.js", ["text/javascript", "application/javascript"])

    def test_json(self):
        self.assert_file("/data.json", "data.json", ["application/json"])

    def test_svg(self):
        self.assert_file("/logo.svg", "logo.svg", ["image/svg+xml"])

    def test_png(self):
        self.assert_file("/pixel.png", "pixel.png", ["image/png"])

    def test_file_in_subdir(self):
        r = self.get("/sub/inner-file.txt")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, self.static.files["sub/inner-file.txt"])
        self.assertTrue((r.header("Content-Type") or "").lower().startswith("text/plain"), r.headers)

    def test_unknown_path_404(self):
        r = self.get("/no-such-file.html")
        self.assertEqual(r.status, 404, r)
        self.assertGreater(len(r.body), 0, "404 without a body")
        self.assertLess(len(r.body), 1024, "404 body is not short: %r" % r.body[:200])

    def test_directory_without_index_is_404_not_listing(self):
        r = self.get("/sub/")
        self.assertEqual(r.status, 404, "directory without index: %r" % r)
        self.assertNotIn(b"inner-file.txt", r.body, "directory listing served")
        r = self.get("/sub")
        self.assertNotIn(r.status, (200, 403), "GET /sub: %r" % r)
        self.assertNotIn(b"inner-file.txt", r.body, "directory listing served")

    def test_no_cors_header(self):
        for path in ("/index.html", "/healthz", "/metrics", "/no-such-file"):
            r = self.get(path, {"Origin": "http://evil.example"})
            self.assertIsNone(r.header("Access-Control-Allow-Origin"),
                              "GET %s with an Origin answered with CORS: %r" % (path, r.headers))

    def test_cgi_served_as_bytes(self):
        r = self.get("/run.cgi")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, self.static.files["run.cgi"], "the .cgi file was not served verbatim")
        self.assertNotIn(b"CGI-RAN-42", r.body)

    def test_shtml_served_as_bytes(self):
        r = self.get("/page.shtml")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, self.static.files["page.shtml"], "the .shtml file was expanded")
        self.assertNotIn(b"JSON-MARKER", r.body)
        self.assertNotIn(b"SSI-EXEC-42", r.body)

    def test_traversal(self):
        secret = self.static.secret.encode()
        paths = [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E/secret.txt",
            "/sub/..%2f..%2fsecret.txt",
            "/sub/../../secret.txt",
            "/..%5csecret.txt",
            "/sub/..%5c..%5csecret.txt",
            "/%2e%2e%2fsecret.txt",
            "/.%2e/secret.txt",
            "//../secret.txt",
            "/sub/%2e%2e/%2e%2e/secret.txt",
        ]
        for p in paths:
            with self.subTest(path=p):
                try:
                    r = harness.raw_http(self.port, ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                                                     "Connection: close\r\n\r\n" % (p, self.port)).encode())
                except AssertionError:
                    continue  # connection dropped without an answer: nothing leaked
                self.assertNotIn(secret, r.body, "GET %s returned the file outside the root" % p)
                self.assertNotEqual(r.status, 200, "GET %s: %r" % (p, r))
        # Still serving afterwards.
        self.assertEqual(self.get("/healthz").status, 200)


class HealthzTest(harness.ServerTestCase):
    def test_shape(self):
        r = self.server.get("/healthz")
        self.assertEqual(r.status, 200)
        self.assertTrue((r.header("Content-Type") or "").lower().startswith("application/json"), r.headers)
        body = r.json()
        self.assertEqual(set(body), {"status", "connections", "uptime_s"}, body)
        self.assertEqual(body["status"], "ok")
        self.assertIsInstance(body["connections"], int)
        self.assertIsInstance(body["uptime_s"], (int, float))
        self.assertGreaterEqual(body["uptime_s"], 0)

    def test_connections_count_open_websockets(self):
        async def go():
            self.server.wait_connections(0)
            a, _ = await harness.open_router(self.port, "hz_a")
            b = await harness.ws_open(self.port, "/ws", subprotocols=["echo-protocol"])
            self.assertEqual(self.server.healthz()["connections"], 2)
            await a.close()
            self.server.wait_connections(1)
            await b.close()
            self.server.wait_connections(0)
        harness.run_async(go())

    def test_uptime_moves(self):
        u1 = self.server.healthz()["uptime_s"]
        deadline = time.monotonic() + 5 * SLOW
        u2 = u1
        while time.monotonic() < deadline and u2 <= u1:
            time.sleep(0.2)
            u2 = self.server.healthz()["uptime_s"]
        self.assertGreater(u2, u1, "uptime_s does not advance")


EXPECTED_METRICS = [
    "switchboard_connections_open",
    "switchboard_connections_total",
    "switchboard_handshakes_rejected_total",
    "switchboard_messages_in_total",
    "switchboard_messages_out_total",
    "switchboard_bytes_in_total",
    "switchboard_bytes_out_total",
    "switchboard_errors_total",
    "switchboard_slow_consumers_total",
]


class MetricsTest(harness.ServerTestCase):
    def test_format_and_names(self):
        r = self.server.get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue((r.header("Content-Type") or "").lower().startswith("text/plain"), r.headers)
        m = harness.Metrics(r.body.decode("utf-8"))  # raises if a line is not a sample
        for name in EXPECTED_METRICS:
            self.assertIn(name, m.names(), "/metrics lacks %s:\n%s" % (name, m.text))
        self.assertIn(("switchboard_handshakes_rejected_total", frozenset({("reason", "origin")})),
                      m.samples, "no handshakes_rejected_total{reason=\"origin\"} series")
        self.assertIn(("switchboard_errors_total", frozenset({("code", "bad_json")})), m.samples,
                      "no errors_total{code=\"bad_json\"} series")

    def test_connections_move(self):
        async def go():
            self.server.wait_connections(0)
            m0 = self.server.metrics()
            a, _ = await harness.open_router(self.port, "m_a")
            b, _ = await harness.open_router(self.port, "m_b")
            m1 = self.server.metrics()
            self.assertEqual(m1.get("switchboard_connections_open"), m0.get("switchboard_connections_open") + 2)
            self.assertEqual(m1.get("switchboard_connections_open"), 2)
            self.assertEqual(m1.get("switchboard_connections_total"),
                             m0.get("switchboard_connections_total") + 2)
            await a.close()
            await b.close()
            self.server.wait_connections(0)
            m2 = self.server.metrics()
            self.assertEqual(m2.get("switchboard_connections_open"), 0)
            self.assertEqual(m2.get("switchboard_connections_total"), m1.get("switchboard_connections_total"))
        harness.run_async(go())

    def test_origin_rejection_counted(self):
        m0 = self.server.metrics()
        resp, _, _ = harness.raw_handshake(self.port, "/ws", origin="http://evil.example")
        self.assertEqual(resp.status, 403)
        m1 = self.server.metrics()
        key = "switchboard_handshakes_rejected_total"
        self.assertEqual(m1.get(key, reason="origin"), m0.get(key, reason="origin") + 1, m1.text)

    def test_other_rejections_counted(self):
        # A refused name (400) is a rejected handshake too, under some reason.
        key = "switchboard_handshakes_rejected_total"
        m0 = self.server.metrics()
        resp, _, _ = harness.raw_handshake(self.port, "/ws?user=bad%20name")
        self.assertEqual(resp.status, 400)
        m1 = self.server.metrics()
        self.assertEqual(m1.sum(key), m0.sum(key) + 1, m1.text)
        self.assertEqual(m1.get(key, reason="origin"), m0.get(key, reason="origin"))

    def test_messages_bytes_errors_move(self):
        async def go():
            a, _ = await harness.open_router(self.port, "mm_a")
            b, _ = await harness.open_router(self.port, "mm_b")
            await harness.recv_json(a)  # presence join of mm_b
            m0 = self.server.metrics()
            await a.send("this is not json")
            err = await harness.recv_json(a)
            self.assertEqual(err.get("code"), "bad_json", err)
            await harness.send_json(a, {"type": "send", "to": "mm_b", "data": "x" * 100})
            got = await harness.recv_json(b)
            self.assertEqual(got.get("data"), "x" * 100)
            m1 = self.server.metrics()
            self.assertEqual(m1.get("switchboard_errors_total", code="bad_json"),
                             m0.get("switchboard_errors_total", code="bad_json") + 1)
            self.assertGreaterEqual(m1.get("switchboard_messages_in_total"),
                                    m0.get("switchboard_messages_in_total") + 2)
            self.assertGreaterEqual(m1.get("switchboard_messages_out_total"),
                                    m0.get("switchboard_messages_out_total") + 2)
            self.assertGreaterEqual(m1.get("switchboard_bytes_in_total"),
                                    m0.get("switchboard_bytes_in_total") + 100 + len("this is not json"))
            self.assertGreaterEqual(m1.get("switchboard_bytes_out_total"),
                                    m0.get("switchboard_bytes_out_total") + 100)
            await a.close()
            await b.close()
        harness.run_async(go())

    def test_error_codes_counted(self):
        async def go():
            a, _ = await harness.open_router(self.port, "me_a")
            m0 = self.server.metrics()
            await harness.send_json(a, {"type": "dance"})
            self.assertEqual((await harness.recv_json(a)).get("code"), "unknown_type")
            await harness.send_json(a, {"type": "send", "to": "nobody_here", "data": 1})
            self.assertEqual((await harness.recv_json(a)).get("code"), "not_found")
            m1 = self.server.metrics()
            for code in ("unknown_type", "not_found"):
                self.assertEqual(m1.get("switchboard_errors_total", code=code),
                                 m0.get("switchboard_errors_total", code=code) + 1, code)
            await a.close()
        harness.run_async(go())

    def test_slow_consumer_counter_present(self):
        m = self.server.metrics()
        self.assertIn("switchboard_slow_consumers_total", m.names())
        self.assertEqual(m.get("switchboard_slow_consumers_total", default=-1), 0)


if __name__ == "__main__":
    unittest.main()
