"""Limits: each test fails if its limit were removed.

  --max-per-ip          the 4th WebSocket from 127.0.0.1 gets a real HTTP 429, counted in /metrics;
                        a closed (or dropped) one gives its slot back; the default (0) is no limit
  connections per user  64 per user name; the 65th is closed 1008, `hello` naming a full user is
                        bad_request
  rooms per connection  64; the 65th `join` is bad_request
  slowloris handshake   a request head that never ends is dropped (CivetWeb's request_timeout_ms,
                        10 s) while other clients carry on
  stalled frame         a frame stalled mid-payload blocks no one, counts against --max-per-ip, and
                        ends at the ping timeout (close 1001): a frame is not a sign of life until
                        it is whole
  announced size        a frame whose header announces more than --max-message is closed 1009
                        before any of its payload is sent (nothing is allocated for it)
  handshake failure     a handshake with a malformed key gets 400 and takes no connection slot
(--rate-limit is covered by test_routing.py.)
"""

import asyncio
import json
import os
import socket
import struct
import time
import unittest

import websockets.exceptions

import harness
from harness import OP_CLOSE, OP_TEXT, RECV_TIMEOUT, SLOW, open_router, recv_json, send_json

PER_USER = 64
PER_CONN_ROOMS = 64
# CivetWeb's request_timeout_ms is 10 s (server.c); a partial request head must be gone well before
# CivetWeb's own default (30 s) would end it. Wall-clock on the server side: not scaled by SLOW.
SLOWLORIS_DEADLINE = 20.0


def assert_refused(tc, resp, status):
    """A real HTTP refusal: a status line, no upgrade."""
    tc.assertEqual(resp.status, status, "expected HTTP %d, got %r" % (status, resp))
    tc.assertTrue(resp.raw_head.startswith(("HTTP/1.1 %d " % status).encode()),
                  "status line: %r" % resp.raw_head[:40])
    tc.assertIsNone(resp.header("Sec-WebSocket-Accept"), "a refusal with Sec-WebSocket-Accept")


def open_raw(tc, path="/ws", protocols=None, expect_welcome=True):
    ws = harness.RawWS(tc.port, path, protocols=protocols)
    tc.addCleanup(ws.close_socket)
    if expect_welcome:
        w = ws.recv_json()
        tc.assertEqual(w.get("type"), "welcome", w)
    return ws


def close_raw(ws):
    """Our close, the server's answer, the end of the TCP connection."""
    ws.send_close(1000)
    f = ws.expect_close(reply=False)
    ws.close_socket()
    return f


def stall_frame(ws):
    """Starts a masked text frame whose header says 100 bytes and sends only 16 of them."""
    frame = harness.build_frame(OP_TEXT, b"x" * 100)
    ws.send_raw(frame[:2 + 4 + 16])


def handshake_retrying(tc, path, refused_status, protocols=None):
    """A handshake that may still meet a refusal in `refused_status` (a status or a tuple of them)
    for a moment after a close (the close handler gives the slot back just after the connection
    leaves /healthz); bounded."""
    refused = refused_status if isinstance(refused_status, tuple) else (refused_status,)
    deadline = time.monotonic() + RECV_TIMEOUT
    for _ in range(1000):
        resp, sock, rest = harness.raw_handshake(tc.port, path, protocols=protocols)
        if resp.status not in refused or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    tc.assertEqual(resp.status, 101, resp)
    ws = harness.RawWS.wrap(resp, sock, rest)
    tc.addCleanup(ws.close_socket)
    return ws


class PerIpTest(harness.ServerTestCase):
    server_args = ["--max-per-ip", "3"]

    def rejected(self):
        return self.server.metrics().get("switchboard_handshakes_rejected_total", reason="per_ip")

    def test_fourth_gets_429_until_one_closes(self):
        srv = self.server
        srv.wait_connections(0)
        r0 = self.rejected()
        a = open_raw(self, "/ws?user=ip_a")
        b = open_raw(self, "/ws", protocols=["echo-protocol"], expect_welcome=False)  # every mode counts
        c = open_raw(self, "/?user=ip_c")
        srv.wait_connections(3)

        resp, sock, _ = harness.raw_handshake(self.port, "/ws?user=ip_d")
        self.assertIsNone(sock)
        assert_refused(self, resp, 429)

        async def websockets_client():  # a real client sees the status too
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
                await harness.ws_open(self.port, "/ws?user=ip_e")
            return cm.exception.status_code
        self.assertEqual(harness.run_async(websockets_client()), 429)
        self.assertEqual(self.rejected(), r0 + 2)
        # plain HTTP is not limited, and the three are unaffected
        self.assertEqual(srv.healthz()["connections"], 3)
        b.send_text("still here")
        self.assertEqual(b.recv_message(), (OP_TEXT, b"still here"))

        close_raw(c)
        srv.wait_connections(2)
        d = handshake_retrying(self, "/ws?user=ip_d", 429)
        self.assertEqual(d.recv_json().get("user"), "ip_d")
        # refusals took no slot: exactly one was free, and now none is (and each refusal is counted)
        r1 = self.rejected()
        resp, _, _ = harness.raw_handshake(self.port, "/ws?user=ip_f")
        assert_refused(self, resp, 429)
        self.assertEqual(self.rejected(), r1 + 1)
        for ws in (a, b, d):
            close_raw(ws)
        srv.wait_connections(0)

    def test_dropped_socket_gives_its_slot_back(self):
        srv = self.server
        srv.wait_connections(0)
        conns = [open_raw(self, "/ws?user=ip_drop%d" % i) for i in range(3)]
        resp, _, _ = harness.raw_handshake(self.port, "/ws?user=ip_drop3")
        assert_refused(self, resp, 429)
        # no close frame: RST (SO_LINGER 0) on one, FIN on another
        conns[0].sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conns[0].close_socket()
        conns[1].close_socket()
        srv.wait_connections(1)
        for i in range(2):
            ws = handshake_retrying(self, "/ws?user=ip_new%d" % i, 429)
            self.assertEqual(ws.recv_json().get("type"), "welcome")
        resp, _, _ = harness.raw_handshake(self.port, "/ws?user=ip_drop4")
        assert_refused(self, resp, 429)

    def test_stalled_frame_is_contained_by_the_limit(self):
        """A frame stalled mid-payload must not hold up anyone else, and it takes one of its
        address's --max-per-ip slots while it lasts (StalledFrameTest: until the ping timeout)."""
        srv = self.server
        srv.wait_connections(0)
        stalled = open_raw(self, "/ws?user=ip_stall")
        stall_frame(stalled)

        async def others():
            a, _ = await open_router(self.port, "ip_s1")
            b, _ = await open_router(self.port, "ip_s2")
            self.assertEqual(await recv_json(a), {"type": "presence", "event": "join", "user": "ip_s2"})
            # both work: targeted send, broadcast (which the stalled one is also sent), ping
            await send_json(a, {"type": "send", "to": "ip_s2", "data": "through", "id": 1})
            self.assertEqual(await recv_json(b), {"type": "message", "from": "ip_s1", "to": "ip_s2", "data": "through"})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": 1, "delivered": 1})
            await send_json(b, {"type": "broadcast", "data": "all", "id": 2})
            self.assertEqual(await recv_json(a), {"type": "message", "from": "ip_s2", "data": "all"})
            self.assertEqual(await recv_json(b), {"type": "ack", "id": 2, "delivered": 2})
            # the stalled one with the two others: the address is full
            resp, _, _ = harness.raw_handshake(self.port, "/ws?user=ip_s3")
            assert_refused(self, resp, 429)
            self.assertEqual(srv.healthz()["connections"], 3)
            await send_json(a, {"type": "ping"})
            self.assertEqual(await recv_json(a), {"type": "pong"})
            await a.close()
            await b.close()
        harness.run_async(others())
        # the stalled connection is still there (the default ping timeout is a minute away) ...
        srv.wait_connections(1)
        # ... and when its socket goes, so does its slot
        stalled.close_socket()
        srv.wait_connections(0)
        for i in range(3):
            handshake_retrying(self, "/ws?user=ip_after%d" % i, 429).recv_json()
        resp, _, _ = harness.raw_handshake(self.port, "/ws?user=ip_after3")
        assert_refused(self, resp, 429)


class PerIpDefaultTest(harness.ServerTestCase):
    def test_default_allows_20(self):
        srv = self.server
        srv.wait_connections(0)
        r0 = srv.metrics().get("switchboard_handshakes_rejected_total", reason="per_ip")
        conns = [open_raw(self, "/ws", protocols=["echo-protocol"], expect_welcome=False) for _ in range(20)]
        srv.wait_connections(20)
        for i, ws in enumerate(conns):
            ws.send_text("n%d" % i)
            self.assertEqual(ws.recv_message(), (OP_TEXT, b"n%d" % i))
        self.assertEqual(srv.metrics().get("switchboard_handshakes_rejected_total", reason="per_ip"), r0)
        for ws in conns:
            close_raw(ws)


class PerUserTest(harness.ServerTestCase):
    def test_65th_connection_closed_1008_and_hello_refused(self):
        srv = self.server
        srv.wait_connections(0)
        conns = []
        for i in range(PER_USER):
            ws = open_raw(self, "/ws?user=same", expect_welcome=False)
            w = ws.recv_json()
            self.assertEqual((w.get("type"), w.get("user")), ("welcome", "same"), w)
            conns.append(ws)
        srv.wait_connections(PER_USER)

        # the 65th: upgraded (the limit is the hub's), then closed 1008 with no welcome first
        extra = open_raw(self, "/ws?user=same", expect_welcome=False)
        first = extra.recv_frame()
        self.assertIsNotNone(first, "TCP closed without a close frame")
        self.assertEqual((first.opcode, first.close_code), (OP_CLOSE, 1008), first)
        extra.send_close(1008)
        extra.expect_eof()
        srv.wait_connections(PER_USER)

        # hello naming the full user: bad_request, and the connection stays usable and anonymous
        anon = open_raw(self, "/ws", expect_welcome=False)
        welcome = anon.recv_json()
        anon.send_text(json.dumps({"type": "hello", "user": "same", "id": "h1"}))
        err = anon.recv_json()
        self.assertEqual((err.get("type"), err.get("code"), err.get("id")), ("error", "bad_request", "h1"), err)
        self.assertIn("64", err.get("message", ""))
        anon.send_text('{"type":"users"}')
        users = anon.recv_json()
        self.assertEqual(users, {"type": "users", "users": sorted(["same", welcome["user"]])})

        # one of the 64 goes: the next one of that user is welcome again
        close_raw(conns.pop())
        srv.wait_connections(PER_USER)  # the 63 and anon
        again = open_raw(self, "/ws?user=same", expect_welcome=False)
        w = again.recv_json()
        self.assertEqual((w.get("type"), w.get("user")), ("welcome", "same"), w)
        # and hello works for a user with room to spare
        anon.send_text(json.dumps({"type": "hello", "user": "other", "id": "h2"}))
        m = None
        for _ in range(10):
            m = anon.recv_json()
            if m.get("type") == "welcome":
                break
        self.assertEqual((m.get("type"), m.get("user")), ("welcome", "other"), m)
        for ws in conns + [again, anon]:
            ws.close_socket()
        srv.wait_connections(0)


class RoomsPerConnectionTest(harness.ServerTestCase):
    def test_65th_join_refused(self):
        async def go():
            a, _ = await open_router(self.port, "rooms_a")
            for i in range(PER_CONN_ROOMS):
                await send_json(a, {"type": "join", "room": "lim%02d" % i, "id": i})
                self.assertEqual(await recv_json(a), {"type": "ack", "id": i, "delivered": 0})
            await send_json(a, {"type": "join", "room": "lim64", "id": 64})
            m = await recv_json(a)
            self.assertEqual((m.get("type"), m.get("code"), m.get("id")), ("error", "bad_request", 64), m)
            # at the limit, a room already joined is still fine, and the connection works
            await send_json(a, {"type": "join", "room": "lim07", "id": 65})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": 65, "delivered": 0})
            # the limit is per connection: another one joins lim64 and a's rooms still deliver
            b, _ = await open_router(self.port, "rooms_b")
            await recv_json(a)  # presence join of rooms_b
            await send_json(b, {"type": "join", "room": "lim64", "id": 1})
            self.assertEqual(await recv_json(b), {"type": "ack", "id": 1, "delivered": 0})
            await send_json(b, {"type": "join", "room": "lim63", "id": 2})
            self.assertEqual(await recv_json(b), {"type": "ack", "id": 2, "delivered": 0})
            await send_json(b, {"type": "publish", "room": "lim63", "data": "x", "id": 3})
            self.assertEqual(await recv_json(a), {"type": "message", "from": "rooms_b", "room": "lim63", "data": "x"})
            self.assertEqual(await recv_json(b), {"type": "ack", "id": 3, "delivered": 1})
            # leave one: the 65th fits
            await send_json(a, {"type": "leave", "room": "lim00", "id": 66})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": 66, "delivered": 0})
            await send_json(a, {"type": "join", "room": "lim64", "id": 67})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": 67, "delivered": 0})
            await a.close()
            await b.close()
        harness.run_async(go())
        self.server.wait_connections(0)
        self.assertEqual(self.server.metrics().get("switchboard_rooms"), 0)


class SlowlorisTest(harness.ServerTestCase):
    def wait_dropped(self, socks, deadline):
        """Reads (discarding) until each socket ends; returns how many ended before `deadline`."""
        ended = 0
        for s in socks:
            for _ in range(10000):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                s.settimeout(remaining)
                try:
                    if not s.recv(4096):
                        ended += 1
                        break
                except socket.timeout:
                    break
                except (ConnectionResetError, BrokenPipeError):
                    ended += 1
                    break
        return ended

    def test_partial_request_head_dropped_others_unaffected(self):
        srv = self.server
        start = time.monotonic()
        socks = []
        for i in range(5):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=RECV_TIMEOUT)
            self.addCleanup(s.close)
            s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        # a dribbler: one more header byte now and then, never the end of the head
        dribbler = socket.create_connection(("127.0.0.1", self.port), timeout=RECV_TIMEOUT)
        self.addCleanup(dribbler.close)
        dribbler.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nX-Slow: ")

        async def meanwhile():
            # the whole time they hang, everyone else is served
            a, _ = await open_router(self.port, "sl_a")
            b, _ = await open_router(self.port, "sl_b")
            await recv_json(a)  # presence join of sl_b
            rounds = 0
            for i in range(100):
                if time.monotonic() - start > 12:  # past request_timeout_ms
                    break
                await send_json(a, {"type": "send", "to": "sl_b", "data": i})
                self.assertEqual(await recv_json(b), {"type": "message", "from": "sl_a", "to": "sl_b", "data": i})
                r = await asyncio.get_running_loop().run_in_executor(None, srv.get, "/healthz")
                self.assertEqual(r.status, 200)
                try:
                    dribbler.sendall(b"a")
                except OSError:
                    pass
                rounds += 1
                await asyncio.sleep(0.5)
            await a.close()
            await b.close()
            return rounds
        rounds = harness.run_async(meanwhile(), timeout=60 * SLOW)
        self.assertGreater(rounds, 0)
        deadline = start + SLOWLORIS_DEADLINE
        self.assertEqual(self.wait_dropped(socks, deadline), len(socks),
                         "a partial request head was still open %.0f s after it began" % SLOWLORIS_DEADLINE)
        self.assertEqual(self.wait_dropped([dribbler], deadline), 1,
                         "a request head sent a byte at a time was still open %.0f s after it began"
                         % SLOWLORIS_DEADLINE)
        srv.wait_connections(0)


class HandshakeFailureSlotTest(harness.ServerTestCase):
    """Regression: when CivetWeb 1.15 answered upgrades, it failed one whose Sec-WebSocket-Key was 64
    characters or more after switchboard had accepted it, and never said so, so its --max-connections
    and --max-per-ip slots were never given back and a few such requests locked everyone out.
    switchboard answers upgrades itself now (app/front/upgrade.c), and any key that is not 24 characters of
    base64 gets 400 before a slot is taken."""

    server_args = ["--max-connections", "2", "--max-per-ip", "2"]

    def test_failed_upgrade_gives_its_slot_back(self):
        for i in range(4):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=RECV_TIMEOUT)
            s.sendall(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                       % (self.port, "A" * 64)).encode())
            head = b""
            deadline = time.monotonic() + RECV_TIMEOUT
            while b"\r\n\r\n" not in head and time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                head += chunk
            s.close()
            self.assertFalse(head.startswith(b"HTTP/1.1 101"), head[:100])
        self.assertEqual(self.server.healthz()["connections"], 0)
        ws = handshake_retrying(self, "/ws?user=after_bad_key", (429, 503))
        self.assertEqual(ws.recv_json().get("type"), "welcome")


class StalledFrameTest(harness.ServerTestCase):
    """A client that starts a frame and never finishes it is closed at the ping timeout like a
    silent one, however long ago its handshake was."""

    server_args = ["--ping-interval", "1"]

    def test_stalled_frame_closed_1001_at_the_ping_timeout(self):
        self.server.wait_connections(0)
        stalled = open_raw(self, "/ws?user=stall_ping")
        started = time.monotonic()
        stall_frame(stalled)
        f = stalled.expect_close(timeout=15 * SLOW, reply=False)  # 3 silent intervals, then the close
        self.assertEqual(f.close_code, 1001, f)
        self.assertGreaterEqual(time.monotonic() - started, 1.0, "closed before a single ping interval")
        self.server.wait_connections(0)
        self.assertGreaterEqual(self.server.metrics().get("switchboard_ping_timeouts_total"), 1)


class AnnouncedSizeTest(harness.ServerTestCase):
    """The 1009 comes from the header alone: the client has sent none of the payload it announced."""

    server_args = ["--max-message", "1000"]

    def test_header_over_max_message_closed_1009_at_once(self):
        for announced in (1001, 1 << 20, 1 << 40):
            ws = open_raw(self, "/ws?user=announce")
            ws.send_raw(struct.pack("!BBQ", 0x81, 0x80 | 127, announced) + os.urandom(4) + b"x" * 10)
            f = ws.expect_close()
            self.assertEqual(f.close_code, 1009, (announced, f))
            ws.close_socket()
        self.server.wait_connections(0)
        # the server is intact: a message at the limit still goes through in echo mode
        echo = open_raw(self, "/ws", protocols=["echo-protocol"], expect_welcome=False)
        echo.send_text("y" * 1000)
        self.assertEqual(echo.recv_message(), (OP_TEXT, b"y" * 1000))


class ConfiguredLimitsTest(harness.ServerTestCase):
    """--max-rooms and --max-user-connections move the two per-connection and per-user bounds, and
    each refusal is counted in /metrics."""

    server_args = ["--max-rooms", "2", "--max-user-connections", "2"]

    def test_flags_set_the_bounds(self):
        async def go():
            a, _ = await open_router(self.port, "cfg_a")
            for i in range(2):
                await send_json(a, {"type": "join", "room": "r%d" % i, "id": i})
                self.assertEqual(await recv_json(a), {"type": "ack", "id": i, "delivered": 0})
            await send_json(a, {"type": "join", "room": "r2", "id": 2})
            m = await recv_json(a)
            self.assertEqual((m.get("code"), m.get("id")), ("bad_request", 2), m)
            self.assertIn("at most 2 rooms", m.get("message", ""))
            await a.close()
        harness.run_async(go())
        first = [open_raw(self, "/ws?user=cfg_u", expect_welcome=False) for _ in range(2)]
        for ws in first:
            self.assertEqual(ws.recv_json().get("type"), "welcome")
        third = open_raw(self, "/ws?user=cfg_u", expect_welcome=False)
        f = third.recv_frame()
        self.assertEqual((f.opcode, f.close_code), (OP_CLOSE, 1008), f)
        third.send_close(1008)
        third.expect_eof()
        m = self.server.metrics()
        self.assertEqual(m.get("switchboard_room_limit_refusals_total"), 1, m)
        self.assertEqual(m.get("switchboard_user_limit_refusals_total"), 1, m)
        for ws in first:
            ws.close_socket()
        self.server.wait_connections(0)


if __name__ == "__main__":
    unittest.main()
