"""WebSocket handshake: paths, Origin policy, subprotocols, names, capacity."""

import asyncio
import socket
import time
import unittest

import websockets
import websockets.exceptions

import harness
from harness import RECV_TIMEOUT


def assert_refused(tc, resp, status):
    """A real HTTP refusal: status line, no upgrade, a short text body."""
    tc.assertEqual(resp.status, status, "expected HTTP %d, got %r" % (status, resp))
    tc.assertTrue(resp.raw_head.startswith(("HTTP/1.1 %d" % status).encode()),
                  "status line: %r" % resp.raw_head[:40])
    tc.assertIsNone(resp.header("Sec-WebSocket-Accept"), "refusal carries Sec-WebSocket-Accept")
    tc.assertNotEqual((resp.header("Upgrade") or "").lower(), "websocket", "refusal carries Upgrade")
    tc.assertLess(len(resp.body), 1024, "body is not short: %r" % resp.body[:200])


class PathsAndOriginTest(harness.ServerTestCase):
    def test_ws_and_root_upgrade(self):
        async def go():
            for path in ("/ws", "/"):
                ws, welcome = await harness.open_router(self.port, path=path)
                self.assertEqual(welcome["type"], "welcome")
                await ws.close()
        harness.run_async(go())

    def test_other_path_404(self):
        for path in ("/other", "/ws/x", "/wss"):
            with self.subTest(path=path):
                resp, _, _ = harness.raw_handshake(self.port, path)
                assert_refused(self, resp, 404)

    def test_origin_absent_ok(self):
        resp, sock, _ = harness.raw_handshake(self.port, "/ws")
        sock.close()
        self.assertEqual(resp.status, 101)

    def test_origin_same_as_host_ok(self):
        async def go():
            ws, welcome = await harness.open_router(self.port, origin="http://127.0.0.1:%d" % self.port)
            await ws.close()
        harness.run_async(go())

    def test_origin_same_as_host_other_name(self):
        # The Host header is what counts, whatever name the client used.
        resp, sock, _ = harness.raw_handshake(self.port, "/ws", host="localhost:%d" % self.port,
                                              origin="http://localhost:%d" % self.port)
        if sock:
            sock.close()
        self.assertEqual(resp.status, 101, resp)

    def test_origin_other_port_403(self):
        other = harness.free_port()
        resp, _, _ = harness.raw_handshake(self.port, "/ws", origin="http://127.0.0.1:%d" % other)
        assert_refused(self, resp, 403)

    def test_origin_without_port_403(self):
        resp, _, _ = harness.raw_handshake(self.port, "/ws", origin="http://127.0.0.1")
        assert_refused(self, resp, 403)

    def test_origin_evil_403(self):
        resp, _, _ = harness.raw_handshake(self.port, "/ws", origin="http://evil.example")
        assert_refused(self, resp, 403)
        # also through a real client library
        async def go():
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
                await harness.ws_open(self.port, "/ws", origin="http://evil.example")
            self.assertEqual(cm.exception.status_code, 403)
        harness.run_async(go())

    def test_bad_user_400(self):
        for q in ("bad%20name!", "bad!", "", "x" * 65, "conn-5", "conn-"):
            with self.subTest(user=q):
                resp, _, _ = harness.raw_handshake(self.port, "/ws?user=" + q)
                assert_refused(self, resp, 400)

    def test_good_user_names(self):
        async def go():
            for name in ("A-z_0.9", "x" * 64, "connx"):
                ws, welcome = await harness.open_router(self.port, name)
                self.assertEqual(welcome["user"], name)
                await ws.close()
        harness.run_async(go())


    def upgrade_request(self, method="GET", version="13", key=None, connection="Upgrade"):
        return ("%s /ws?user=rfc HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: %s\r\n"
                "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: %s\r\n\r\n"
                % (method, self.port, connection, key or harness.ws_key(), version)).encode()

    def test_other_version_426(self):
        # RFC 6455 4.4: a version the server does not speak gets 426 naming the one it does.
        for version in ("8", "12", "14", "13, 8", ""):
            with self.subTest(version=version):
                resp = harness.raw_http(self.port, self.upgrade_request(version=version))
                assert_refused(self, resp, 426)
                self.assertEqual(resp.header("Sec-WebSocket-Version"), "13")

    def test_upgrade_must_be_get(self):
        resp = harness.raw_http(self.port, self.upgrade_request(method="POST"))
        assert_refused(self, resp, 400)

    def test_bad_key_400(self):
        for key in ("short==", "A" * 64, "dGhlIHNhbXBsZSBub25j-Q=="):
            with self.subTest(key=key):
                resp = harness.raw_http(self.port, self.upgrade_request(key=key))
                assert_refused(self, resp, 400)

    def test_connection_header_list(self):
        # Firefox sends "Connection: keep-alive, Upgrade"; the token counts wherever it is in the list.
        with socket.create_connection(("127.0.0.1", self.port), timeout=RECV_TIMEOUT) as sock:
            sock.sendall(self.upgrade_request(connection="keep-alive, Upgrade"))
            head, _ = harness._read_http_head(sock, time.monotonic() + RECV_TIMEOUT)
        self.assertTrue(head.startswith(b"HTTP/1.1 101 "), head[:100])


class AllowOriginTest(harness.ServerTestCase):
    server_args = ["--allow-origin", "http://evil.example"]

    def test_listed_origin_ok(self):
        resp, sock, _ = harness.raw_handshake(self.port, "/ws", origin="http://evil.example")
        if sock:
            sock.close()
        self.assertEqual(resp.status, 101, resp)

    def test_unlisted_origin_still_403(self):
        resp, _, _ = harness.raw_handshake(self.port, "/ws", origin="http://other.example")
        assert_refused(self, resp, 403)

    def test_same_origin_still_ok(self):
        resp, sock, _ = harness.raw_handshake(self.port, "/ws", origin="http://127.0.0.1:%d" % self.port)
        if sock:
            sock.close()
        self.assertEqual(resp.status, 101, resp)


class AllowAnyOriginTest(harness.ServerTestCase):
    server_args = ["--allow-origin", "*"]

    def test_any_origin_ok(self):
        for origin in ("http://evil.example", "https://a.b.c:8443", "http://127.0.0.1:1"):
            with self.subTest(origin=origin):
                resp, sock, _ = harness.raw_handshake(self.port, "/ws", origin=origin)
                if sock:
                    sock.close()
                self.assertEqual(resp.status, 101, resp)


class AllowedHostsTest(harness.ServerTestCase):
    """--allowed-hosts against DNS rebinding (issue 18): a page at http://rebind.evil.example:PORT whose
    name now resolves to this server sends Host: rebind.evil.example:PORT and a matching Origin, which
    the Origin check takes for same-origin. Only a listed Host is answered: anything else gets 421,
    WebSocket upgrade or plain HTTP."""
    server_args = ["--allowed-hosts", "127.0.0.1,localhost"]

    def rebind(self):
        return "rebind.evil.example:%d" % self.port

    def test_rebound_name_gets_421_at_the_handshake(self):
        resp, _, _ = harness.raw_handshake(self.port, "/ws?user=victim", host=self.rebind(),
                                           origin="http://" + self.rebind())
        assert_refused(self, resp, 421)

    def test_rebound_name_gets_421_over_http(self):
        for path in ("/", "/healthz", "/auth", "/nothere"):
            with self.subTest(path=path):
                resp = harness.raw_http(self.port, ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                                                    % (path, self.rebind())).encode())
                self.assertEqual(resp.status, 421, resp)

    def test_no_host_gets_421(self):
        resp = harness.raw_http(self.port, b"GET / HTTP/1.0\r\n\r\n")
        self.assertEqual(resp.status, 421, resp)

    def test_listed_hosts_answered(self):
        resp, sock, _ = harness.raw_handshake(self.port, "/ws", host="localhost:%d" % self.port,
                                              origin="http://localhost:%d" % self.port)
        if sock:
            sock.close()
        self.assertEqual(resp.status, 101, resp)
        resp = harness.raw_http(self.port, ("GET /healthz HTTP/1.1\r\nHost: LOCALHOST:%d\r\nConnection: close\r\n\r\n"
                                            % self.port).encode())
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(self.server.get("/").status, 200)  # Host: 127.0.0.1:PORT

    def test_refusals_counted(self):
        before = self.server.metrics().get("switchboard_handshakes_rejected_total", reason="host")
        harness.raw_handshake(self.port, "/ws", host=self.rebind())
        self.assertEqual(self.server.metrics().get("switchboard_handshakes_rejected_total", reason="host"), before + 1)


class AllowedHostsEnvTest(harness.ServerTestCase):
    server_env = {"SWITCHBOARD_ALLOWED_HOSTS": "127.0.0.1"}

    def test_from_the_environment(self):
        resp, _, _ = harness.raw_handshake(self.port, "/ws", host="localhost:%d" % self.port)
        assert_refused(self, resp, 421)
        self.assertEqual(self.server.get("/healthz").status, 200)


class SubprotocolTest(harness.ServerTestCase):
    def test_echo_protocol(self):
        async def go():
            ws = await harness.ws_open(self.port, "/ws", subprotocols=["echo-protocol"])
            self.assertEqual(ws.subprotocol, "echo-protocol")
            text = 'not json {"type":"ping"} \u00e9\u20ac\U0001F600'
            await ws.send(text)
            self.assertEqual(await harness.recv(ws), text, "text not echoed unchanged (or a welcome came)")
            blob = bytes(range(256))
            await ws.send(blob)
            self.assertEqual(await harness.recv(ws), blob)
            await ws.send('{"type":"ping"}')
            self.assertEqual(await harness.recv(ws), '{"type":"ping"}', "echo mode must not route")
            await harness.expect_quiet(ws)
            await ws.close()
        harness.run_async(go())

    def test_echo_protocol_at_root(self):
        async def go():
            ws = await harness.ws_open(self.port, "/", subprotocols=["echo-protocol"])
            await ws.send("hi")
            self.assertEqual(await harness.recv(ws), "hi")
            await ws.close()
        harness.run_async(go())

    def test_echo_clients_are_not_in_presence(self):
        async def go():
            a, _ = await harness.open_router(self.port, "sp_watch")
            e = await harness.ws_open(self.port, "/ws?user=sp_echo", subprotocols=["echo-protocol"])
            await e.send("x")
            self.assertEqual(await harness.recv(e), "x")
            await harness.send_json(a, {"type": "users"})
            users = await harness.recv_json(a)
            self.assertEqual(users.get("type"), "users", users)
            self.assertNotIn("sp_echo", users["users"])
            await e.close()
            await harness.expect_quiet(a)
            await a.close()
        harness.run_async(go())

    def test_json_protocol(self):
        resp, sock, rest = harness.raw_handshake(self.port, "/ws", protocols=["json"])
        self.assertEqual(resp.status, 101, resp)
        self.assertEqual(resp.header("Sec-WebSocket-Protocol"), "json", resp.headers)
        with harness.RawWS.wrap(resp, sock, rest) as ws:
            welcome = ws.recv_json()
            self.assertEqual(welcome.get("type"), "welcome", welcome)

    def test_json_protocol_with_websockets(self):
        async def go():
            ws = await harness.ws_open(self.port, "/ws", subprotocols=["chat.v9", "json"])
            self.assertEqual(ws.subprotocol, "json")
            self.assertEqual((await harness.recv_json(ws))["type"], "welcome")
            await ws.close()
        harness.run_async(go())

    def test_no_protocol(self):
        with harness.RawWS(self.port, "/ws") as ws:
            self.assertIsNone(ws.response.header("Sec-WebSocket-Protocol"), ws.response.headers)
            self.assertEqual(ws.recv_json().get("type"), "welcome")

    def test_only_unknown_protocol(self):
        with harness.RawWS(self.port, "/ws", protocols=["chat.v9"]) as ws:
            self.assertIsNone(ws.response.header("Sec-WebSocket-Protocol"), ws.response.headers)
            self.assertEqual(ws.recv_json().get("type"), "welcome")


class SubprotocolReuseTest(harness.ServerTestCase):
    """Regression for CivetWeb #1091: a worker thread that served a connection with a subprotocol
    must not answer a later, protocol-less handshake with the old Sec-WebSocket-Protocol.

    --max-connections 1 keeps the worker pool small; which worker takes a connection is up to
    CivetWeb, so many json connections (one at a time) first pass through the pool, then many
    protocol-less handshakes each must come back without the header."""

    server_args = ["--max-connections", "1"]
    ROUNDS = 40

    def handshake_when_free(self, protocols):
        deadline = time.monotonic() + RECV_TIMEOUT
        while True:
            resp, sock, rest = harness.raw_handshake(self.port, "/ws", protocols=protocols)
            if resp.status != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.assertEqual(resp.status, 101, resp)
        return harness.RawWS.wrap(resp, sock, rest)

    def one_connection(self, protocols):
        ws = self.handshake_when_free(protocols)
        try:
            header = ws.response.header("Sec-WebSocket-Protocol")
            self.assertEqual(ws.recv_json().get("type"), "welcome")
            ws.send_close(1000)
            self.assertEqual(ws.expect_close(reply=False).close_code, 1000)
        finally:
            ws.close_socket()
        return header

    def test_no_stale_protocol_header(self):
        for i in range(self.ROUNDS):
            self.assertEqual(self.one_connection(["json"]), "json")
        for i in range(self.ROUNDS):
            header = self.one_connection(None)
            self.assertIsNone(header, "handshake %d offered no subprotocol but got "
                              "Sec-WebSocket-Protocol: %s (stale, CivetWeb #1091)" % (i, header))
            header = self.one_connection(["chat.v9"])
            self.assertIsNone(header, "handshake %d offered only chat.v9 but got "
                              "Sec-WebSocket-Protocol: %s (stale, CivetWeb #1091)" % (i, header))

    def test_websockets_client_after_json(self):
        # The same through a real client: websockets refuses a subprotocol it did not offer.
        async def go():
            for i in range(self.ROUNDS // 2):
                for offer in (["json"], None):
                    deadline = time.monotonic() + RECV_TIMEOUT
                    while True:
                        try:
                            ws = await harness.ws_open(self.port, "/ws", subprotocols=offer)
                            break
                        except websockets.exceptions.InvalidStatusCode as e:
                            if e.status_code != 503 or time.monotonic() > deadline:
                                raise
                            await asyncio.sleep(0.02)
                    self.assertEqual(ws.subprotocol, offer[0] if offer else None)
                    self.assertEqual((await harness.recv_json(ws))["type"], "welcome")
                    await ws.close()
        harness.run_async(go())


class CapacityTest(harness.ServerTestCase):
    server_args = ["--max-connections", "2"]

    def test_third_gets_503(self):
        async def go():
            self.server.wait_connections(0)
            a, _ = await harness.open_router(self.port, "cap_a")
            b = await harness.ws_open(self.port, "/ws", subprotocols=["echo-protocol"])
            m0 = self.server.metrics()
            resp, sock, _ = harness.raw_handshake(self.port, "/ws?user=cap_c")
            if sock:
                sock.close()
            assert_refused(self, resp, 503)
            m1 = self.server.metrics()
            key = "switchboard_handshakes_rejected_total"
            self.assertEqual(m1.sum(key), m0.sum(key) + 1, "503 not counted as a rejected handshake")
            h = self.server.get("/healthz")
            self.assertEqual(h.status, 200, "/healthz must answer while the server is full")
            self.assertEqual(h.json()["connections"], 2)
            # The refused client did not join: cap_a saw nothing.
            await harness.expect_quiet(a)
            await b.close()
            self.server.wait_connections(1)
            c, welcome = await harness.open_router(self.port, "cap_c")
            self.assertEqual(welcome["user"], "cap_c")
            await c.close()
            await a.close()
        harness.run_async(go())


if __name__ == "__main__":
    unittest.main()
