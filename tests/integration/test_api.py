"""The server API for backends (docs/API.md): every call and every error, through real sockets.

Deliveries are checked on real WebSocket clients; HTTP goes through http.client (no Expect header,
so a 413 is answered to a body that was sent whole).
"""

import asyncio
import http.client
import json
import os
import socket
import subprocess
import tempfile
import unittest

import websockets.exceptions

import harness
from harness import RECV_TIMEOUT, expect_quiet, open_router, recv, recv_json, recv_until

KEY = "test-key-0123456789abcdef"


def api(port, method, path, body=None, key=KEY, headers=None):
    """One HTTP request; returns (status, headers dict with lower-case names, parsed JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=RECV_TIMEOUT)
    try:
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = "Bearer " + key
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":"))
        if isinstance(body, str):
            body = body.encode("utf-8")
        if body is not None:
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        raw = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        return r.status, hdrs, json.loads(raw.decode("utf-8"))
    finally:
        conn.close()


class ApiServerTest(harness.ServerTestCase):
    server_args = ["--api-key", KEY]

    def call(self, method, path, body=None, **kw):
        return api(self.port, method, path, body, **kw)

    def ok(self, method, path, body=None):
        status, hdrs, got = self.call(method, path, body)
        self.assertEqual(status, 200, got)
        self.assertEqual(hdrs.get("content-type"), "application/json")
        return got

    def error(self, status, code, method, path, body=None, **kw):
        got_status, hdrs, got = self.call(method, path, body, **kw)
        self.assertEqual(got_status, status, got)
        self.assertEqual(hdrs.get("content-type"), "application/json")
        self.assertEqual(set(got), {"error"}, got)
        self.assertEqual(got["error"]["code"], code, got)
        self.assertIsInstance(got["error"]["message"], str)
        return hdrs, got

    async def users(self, *names):
        """Open one router connection per name, in order; drains the presence joins."""
        conns = []
        for name in names:
            ws, _ = await open_router(self.port, name)
            conns.append(ws)
        for ws in conns:
            await self.drain(ws)
        return conns

    async def drain(self, ws):
        """Consumes whatever presence events are pending (bounded)."""
        for _ in range(100):
            try:
                m = json.loads(await asyncio.wait_for(ws.recv(), harness.QUIET))
            except asyncio.TimeoutError:
                return
            if m.get("type") != "presence":
                raise AssertionError("unexpected message while draining: %r" % m)

    async def close_all(self, conns):
        for ws in conns:
            await ws.close()

    async def join(self, ws, room):
        await ws.send(json.dumps({"type": "join", "room": room, "id": "j"}))
        self.assertEqual(await recv_json(ws), {"type": "ack", "id": "j", "delivered": 0})

    def in_thread(self, fn, *args):
        return asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def test_from_cannot_be_forged_by_the_body(self):
        async def go():
            (c,) = await self.users("f_c")
            got = await self.in_thread(self.ok, "POST", "/api/send", {"to": "f_c", "from": "alice", "data": 0})
            self.assertEqual(got["delivered"], 1)
            self.assertEqual(await recv_json(c), {"type": "message", "from": "@server", "to": "f_c", "data": 0})
            await self.close_all([c])
        harness.run_async(go())

    # ---- authentication

    def test_401_without_key(self):
        hdrs, got = self.error(401, "unauthorized", "GET", "/api/users", key=None)
        self.assertEqual(hdrs.get("www-authenticate"), "Bearer")

    def test_401_with_wrong_keys(self):
        for wrong in ["", "x", KEY[:-1], KEY + "x", KEY.upper(), "Basic " + KEY]:
            with self.subTest(key=wrong):
                hdrs, _ = self.error(401, "unauthorized", "POST", "/api/broadcast", {"data": 1}, key=wrong)
                self.assertEqual(hdrs.get("www-authenticate"), "Bearer")

    def test_401_with_other_scheme(self):
        hdrs, _ = self.error(401, "unauthorized", "GET", "/api/users", key=None,
                             headers={"Authorization": "Basic " + KEY})
        self.assertEqual(hdrs.get("www-authenticate"), "Bearer")

    def test_401_comes_before_404_and_405(self):
        self.error(401, "unauthorized", "GET", "/api/nothing-here", key="wrong")
        self.error(401, "unauthorized", "GET", "/api/send", key=None)

    def test_scheme_is_case_insensitive(self):
        status, _, got = self.call("GET", "/api/users", key=None, headers={"Authorization": "bearer " + KEY})
        self.assertEqual(status, 200, got)

    # ---- HTTP-level errors

    def test_404_unknown_path(self):
        for path in ["/api/nothing", "/api/", "/api/send/x", "/api/rooms"]:
            with self.subTest(path=path):
                self.error(404, "not_found", "GET", path)

    def test_405_with_allow(self):
        for method, path, allow in [("GET", "/api/send", "POST"), ("PUT", "/api/broadcast", "POST"),
                                    ("DELETE", "/api/disconnect", "POST"), ("GET", "/api/publish", "POST"),
                                    ("POST", "/api/users", "GET"), ("POST", "/api/rooms/r", "GET"),
                                    ("POST", "/api/users/u", "GET")]:
            with self.subTest(method=method, path=path):
                hdrs, _ = self.error(405, "method_not_allowed", method, path, {"data": 1})
                self.assertEqual(hdrs.get("allow"), allow)

    def test_413_body_over_max_message(self):
        body = json.dumps({"data": "a" * 70000})
        self.error(413, "too_large", "POST", "/api/broadcast", body)
        # one byte under the limit is taken
        fits = '{"data":"%s"}' % ("b" * (65536 - 11))
        self.assertEqual(len(fits), 65536)
        self.assertIn("delivered", self.ok("POST", "/api/broadcast", fits))

    def test_413_chunked_body_over_max_message(self):
        """Without a Content-Length the body is read up to the limit, then refused."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=RECV_TIMEOUT)
        try:
            chunks = [b'{"data":"'] + [b"c" * 8192] * 9 + [b'"}']
            conn.request("POST", "/api/broadcast", body=iter(chunks), encode_chunked=True,
                         headers={"Authorization": "Bearer " + KEY, "Transfer-Encoding": "chunked"})
            r = conn.getresponse()
            self.assertEqual(r.status, 413)
            self.assertEqual(json.loads(r.read())["error"]["code"], "too_large")
        finally:
            conn.close()
        body = b'{"data":"' + b"c" * 8192 + b'"}'
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=RECV_TIMEOUT)
        try:
            conn.request("POST", "/api/broadcast", body=iter([body[:100], body[100:]]), encode_chunked=True,
                         headers={"Authorization": "Bearer " + KEY, "Transfer-Encoding": "chunked"})
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertIn("delivered", json.loads(r.read()))
        finally:
            conn.close()

    def test_400_bodies(self):
        for body, code in [("", "bad_json"), ("not json", "bad_json"), ('{"data":1} x', "bad_json"),
                           ('{"data":1', "bad_json"), ("[1]", "bad_request"), ('"x"', "bad_request"),
                           ("[" * 65 + "]" * 65, "bad_json"), ("{}", "bad_request"),
                           ('{"data":01}', "bad_json"), ('{"data":"\x01"}', "bad_json"),
                           ('{"data":-.5}', "bad_json")]:
            with self.subTest(body=body[:20]):
                self.error(400, code, "POST", "/api/broadcast", body)

    # ---- send

    def test_send_to_every_connection_of_a_user(self):
        async def go():
            alice, bob1, bob2 = await self.users("s_alice", "s_bob", "s_bob")
            got = await self.in_thread(self.ok, "POST", "/api/send", {"to": "s_bob", "data": {"text": "hi"}})
            self.assertEqual(got, {"delivered": 2, "not_found": []})
            want = {"type": "message", "from": "@server", "to": "s_bob", "data": {"text": "hi"}}
            self.assertEqual(await recv_json(bob1), want)
            self.assertEqual(await recv_json(bob2), want)
            await expect_quiet(alice)
            await self.close_all([alice, bob1, bob2])
        harness.run_async(go())

    def test_send_list_duplicates_and_offline(self):
        async def go():
            a, b = await self.users("sl_a", "sl_b")
            got = await self.in_thread(self.ok, "POST", "/api/send",
                                       {"to": ["sl_a", "sl_off", "sl_b", "sl_a", "sl_off2"], "data": [1]})
            self.assertEqual(got, {"delivered": 2, "not_found": ["sl_off", "sl_off2"]})
            self.assertEqual(await recv_json(a), {"type": "message", "from": "@server", "to": "sl_a", "data": [1]})
            self.assertEqual(await recv_json(b), {"type": "message", "from": "@server", "to": "sl_b", "data": [1]})
            await expect_quiet(a)  # a duplicate target is delivered once
            await self.close_all([a, b])
        harness.run_async(go())

    def test_send_data_byte_for_byte(self):
        async def go():
            (c,) = await self.users("bb_c")
            data = '{ "id" : 9007199254740993, "f": 1.0, "e": 1E400, "s": "\\u00e9\\n" }'
            body = '{"to":"bb_c","data":%s}' % data
            status, _, got = await self.in_thread(self.call, "POST", "/api/send", body)
            self.assertEqual((status, got), (200, {"delivered": 1, "not_found": []}))
            raw = await recv(c)
            self.assertEqual(raw, '{"type":"message","from":"@server","to":"bb_c","data":%s}' % data)
            await self.close_all([c])
        harness.run_async(go())

    def test_send_target_errors(self):
        self.error(400, "too_large", "POST", "/api/send", {"to": ["u%d" % i for i in range(101)], "data": 1})
        self.error(400, "bad_request", "POST", "/api/send", {"to": "bad name", "data": 1})
        self.error(400, "bad_request", "POST", "/api/send", {"to": [], "data": 1})
        self.error(400, "bad_request", "POST", "/api/send", {"to": 5, "data": 1})
        self.error(400, "bad_request", "POST", "/api/send", {"to": "x"})
        self.error(400, "bad_request", "POST", "/api/send", {"data": 1})
        got = self.ok("POST", "/api/send", {"to": ["u%d" % i for i in range(100)], "data": 1})
        self.assertEqual(got["delivered"], 0)
        self.assertEqual(len(got["not_found"]), 100)

    def test_bad_data_reaches_nobody(self):
        async def go():
            (c,) = await self.users("bd_c")
            await self.in_thread(self.error, 400, "bad_json", "POST", "/api/send", '{"to":"bd_c","data":01}')
            await self.in_thread(self.error, 400, "bad_json", "POST", "/api/broadcast", '{"data":[1.]}')
            await expect_quiet(c)
            await self.close_all([c])
        harness.run_async(go())

    def test_invalid_utf8_reaches_nobody(self):
        """Issue 18: {"data":"\xff"} was answered delivered, and every client then failed with 1007."""
        async def go():
            (c,) = await self.users("u8_c")
            await self.drain(c)
            for path, body in [("/api/broadcast", b'{"data":"\xff"}'), ("/api/send", b'{"to":"u8_c","data":"a\xc3"}'),
                               ("/api/publish", b'{"room":"r","data":["\xed\xa0\x80"]}'),
                               ("/api/broadcast", b'{"data":1,"note":"\xc0\xaf"}')]:
                with self.subTest(path=path, body=body):
                    await self.in_thread(self.error, 400, "bad_json", "POST", path, body)
            await expect_quiet(c)
            # the connection lives: a valid broadcast still arrives
            got = await self.in_thread(self.ok, "POST", "/api/broadcast", {"data": "\u00e9"})
            self.assertGreaterEqual(got["delivered"], 1)
            self.assertEqual(await recv_json(c), {"type": "message", "from": "@server", "data": "\u00e9"})
            await self.close_all([c])
        harness.run_async(go())

    def test_401_and_413_from_the_head_before_any_body(self):
        """Issue 18: the body was read before the key was checked, so a POST announcing 60000 bytes and
        sending none held a worker until the request timeout (10 s) and only then got its 401. The head
        alone decides 401 and 413: each response arrives while the body was never sent, within a wait
        that is generous (8 s, for sanitizer builds too) but shorter than that timeout."""
        for auth, length, status in [(None, 60000, 401), ("Bearer wrong", 60000, 401), ("Bearer " + KEY, 70000, 413)]:
            with self.subTest(auth=auth, length=length):
                head = "POST /api/broadcast HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n" \
                       "Content-Length: %d\r\n%s\r\n" % (self.port, length, "Authorization: %s\r\n" % auth if auth else "")
                with socket.create_connection(("127.0.0.1", self.port), timeout=8) as sock:
                    sock.sendall(head.encode())
                    got = b""
                    while b"\r\n\r\n" not in got:  # each recv bounded by the socket's timeout; no body is ever sent
                        chunk = sock.recv(4096)
                        if not chunk:
                            break
                        got += chunk
                    self.assertTrue(got.startswith(b"HTTP/1.1 %d " % status), got[:200])

    # ---- broadcast and publish

    def test_broadcast_reaches_everyone(self):
        async def go():
            self.server.wait_connections(0)
            conns = await self.users("b_a", "b_b", "b_b")
            anon = await harness.ws_open(self.port, "/ws")
            await recv_json(anon)  # welcome
            for ws in conns:
                await self.drain(ws)
            got = await self.in_thread(self.ok, "POST", "/api/broadcast", {"data": "all"})
            self.assertEqual(got, {"delivered": 4})
            for ws in conns + [anon]:
                self.assertEqual(await recv_json(ws), {"type": "message", "from": "@server", "data": "all"})
            await self.close_all(conns + [anon])
        harness.run_async(go())

    def test_publish_reaches_members_only(self):
        async def go():
            m1, m2, other = await self.users("p_m1", "p_m2", "p_other")
            await self.join(m1, "p_room")
            await self.join(m2, "p_room")
            got = await self.in_thread(self.ok, "POST", "/api/publish", {"room": "p_room", "data": {"k": True}})
            self.assertEqual(got, {"delivered": 2})
            want = {"type": "message", "from": "@server", "room": "p_room", "data": {"k": True}}
            self.assertEqual(await recv_json(m1), want)
            self.assertEqual(await recv_json(m2), want)
            await expect_quiet(other)
            got = await self.in_thread(self.ok, "POST", "/api/publish", {"room": "p_empty", "data": 1})
            self.assertEqual(got, {"delivered": 0})
            await self.close_all([m1, m2, other])
        harness.run_async(go())

    def test_publish_errors(self):
        self.error(400, "bad_request", "POST", "/api/publish", {"room": "a b", "data": 1})
        self.error(400, "bad_request", "POST", "/api/publish", {"data": 1})
        self.error(400, "bad_request", "POST", "/api/publish", {"room": "r"})
        self.error(400, "bad_json", "POST", "/api/publish", '{"room":"r","data":tru}')

    # ---- listings

    def test_users_and_rooms(self):
        async def go():
            a, b1, b2 = await self.users("l_a", "l_b", "l_b")
            got = await self.in_thread(self.ok, "GET", "/api/users")
            self.assertIn("l_a", got["users"])
            self.assertEqual(got["users"], sorted(got["users"]))
            self.assertEqual(got["users"].count("l_b"), 1)
            await self.join(b1, "l_room")
            await self.join(b2, "l_room")
            await self.join(a, "l_room")
            got = await self.in_thread(self.ok, "GET", "/api/rooms/l_room")
            self.assertEqual(got, {"room": "l_room", "users": ["l_a", "l_b"]})
            got = await self.in_thread(self.ok, "GET", "/api/rooms/l_nobody")
            self.assertEqual(got, {"room": "l_nobody", "users": []})
            got = await self.in_thread(self.ok, "GET", "/api/users/l_b")
            self.assertEqual(got, {"user": "l_b", "online": True})
            await self.close_all([a, b1, b2])
            for _ in range(int(50 * harness.SLOW)):  # the closes reach the server in their own time
                got = await self.in_thread(self.ok, "GET", "/api/users/l_b")
                if not got["online"]:
                    break
                await asyncio.sleep(0.1)
            self.assertEqual(got, {"user": "l_b", "online": False})
        harness.run_async(go())

    def test_invalid_room_or_user_name_400(self):
        for path in ["/api/rooms/", "/api/rooms/a%20b", "/api/rooms/a/b", "/api/rooms/" + "r" * 65,
                     "/api/users/", "/api/users/a%20b", "/api/users/a/b"]:
            with self.subTest(path=path):
                self.error(400, "bad_request", "GET", path)

    # ---- disconnect

    def test_disconnect_closes_every_connection_with_code_and_reason(self):
        async def go():
            a, b1, b2 = await self.users("d_a", "d_b", "d_b")
            got = await self.in_thread(self.ok, "POST", "/api/disconnect",
                                       {"user": "d_b", "code": 4001, "reason": "bye now é"})
            self.assertEqual(got, {"closed": 2})
            for ws in (b1, b2):
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    await recv(ws)
                await ws.wait_closed()
                self.assertEqual((ws.close_code, ws.close_reason), (4001, "bye now é"))
            m, _ = await recv_until(a, lambda m: m.get("type") == "presence")
            self.assertEqual(m, {"type": "presence", "event": "leave", "user": "d_b"})
            await a.send('{"type":"ping"}')
            self.assertEqual(await recv_json(a), {"type": "pong"})  # alice stays
            got = await self.in_thread(self.ok, "POST", "/api/disconnect", {"user": "d_b"})
            self.assertEqual(got, {"closed": 0})
            await self.close_all([a])
        harness.run_async(go())

    def test_disconnect_default_code(self):
        async def go():
            (c,) = await self.users("dd_c")
            got = await self.in_thread(self.ok, "POST", "/api/disconnect", {"user": "dd_c"})
            self.assertEqual(got, {"closed": 1})
            with self.assertRaises(websockets.exceptions.ConnectionClosed):
                await recv(c)
            await c.wait_closed()
            self.assertEqual((c.close_code, c.close_reason), (4403, "disconnected by the server"))
        harness.run_async(go())

    def test_subscribe_then_publish_reaches_every_connection(self):
        async def go():
            s1, s2, other = await self.users("s_b", "s_b", "s_c")
            got = await self.in_thread(self.ok, "POST", "/api/subscribe", {"user": "s_b", "room": "s_news"})
            self.assertEqual(got, {"subscribed": 2})
            got = await self.in_thread(self.ok, "POST", "/api/subscribe", {"user": "s_b", "room": "s_news"})
            self.assertEqual(got, {"subscribed": 0})  # already in
            self.assertEqual(await self.in_thread(self.ok, "GET", "/api/rooms/s_news"),
                             {"room": "s_news", "users": ["s_b"]})
            got = await self.in_thread(self.ok, "POST", "/api/publish", {"room": "s_news", "data": 7})
            self.assertEqual(got, {"delivered": 2})
            for ws in (s1, s2):
                m, _ = await recv_until(ws, lambda m: m.get("type") == "message")
                self.assertEqual((m["room"], m["data"]), ("s_news", 7))
            # the client itself may now publish there, as after its own join
            await s1.send('{"type":"publish","room":"s_news","data":8,"id":1}')
            ack, _ = await recv_until(s1, lambda m: m.get("type") == "ack")
            self.assertEqual(ack["delivered"], 1)
            got = await self.in_thread(self.ok, "POST", "/api/unsubscribe", {"user": "s_b", "room": "s_news"})
            self.assertEqual(got, {"unsubscribed": 2})
            got = await self.in_thread(self.ok, "POST", "/api/publish", {"room": "s_news", "data": 9})
            self.assertEqual(got, {"delivered": 0})
            await self.close_all([s1, s2, other])
        harness.run_async(go())

    def test_subscribe_errors(self):
        for path in ("/api/subscribe", "/api/unsubscribe"):
            for body in [{"user": "x"}, {"room": "r"}, {"user": "bad name", "room": "r"}, {"user": "x", "room": 5}]:
                with self.subTest(path=path, body=body):
                    self.error(400, "bad_request", "POST", path, body)
            self.assertEqual(self.ok("POST", path, {"user": "nobody_here", "room": "r"}),
                             {"subscribed" if path.endswith("/subscribe") else "unsubscribed": 0})

    def test_disconnect_unlists_the_user_at_once_even_if_the_client_never_answers(self):
        """The user is gone when the API says so, not once the close handshake ends (issue 20): a client
        that never answers the close (it reads nothing) is no longer in GET /api/users, the room's list
        or a `users` reply right after the call, and the others hear its leave."""
        silent = harness.RawWS(self.port, "/ws?user=dg_gone")
        try:
            self.assertEqual(silent.recv_json().get("type"), "welcome")
            silent.send_text(json.dumps({"type": "join", "room": "dg_room", "id": "j"}))
            self.assertEqual(silent.recv_json(), {"type": "ack", "id": "j", "delivered": 0})

            async def go():
                (a,) = await self.users("dg_a")
                await self.join(a, "dg_room")
                self.assertIn("dg_gone", (await self.in_thread(self.ok, "GET", "/api/users"))["users"])
                got = await self.in_thread(self.ok, "POST", "/api/disconnect", {"user": "dg_gone"})
                self.assertEqual(got, {"closed": 1})
                self.assertNotIn("dg_gone", (await self.in_thread(self.ok, "GET", "/api/users"))["users"])
                got = await self.in_thread(self.ok, "GET", "/api/rooms/dg_room")
                self.assertEqual(got["users"], ["dg_a"])
                m, _ = await recv_until(a, lambda m: m.get("type") == "presence")
                self.assertEqual(m, {"type": "presence", "event": "leave", "user": "dg_gone"})
                await a.send('{"type":"users","id":"u"}')
                m, _ = await recv_until(a, lambda m: m.get("type") == "users")
                self.assertNotIn("dg_gone", m["users"])
                await self.close_all([a])
            harness.run_async(go())
        finally:
            silent.close_socket()

    def test_disconnect_errors(self):
        for body in [{"user": "x", "code": 3000}, {"user": "x", "code": 1001}, {"user": "x", "code": 5000},
                     {"user": "x", "code": 4000.5}, {"user": "x", "code": "4000"}, {"user": "x", "reason": 5},
                     {"user": "x", "reason": "r" * 124}, {"user": "bad name"}, {}]:
            with self.subTest(body=body):
                self.error(400, "bad_request", "POST", "/api/disconnect", body)
        for code in (1000, 1008, 4000, 4999):
            self.assertEqual(self.ok("POST", "/api/disconnect", {"user": "nobody_here", "code": code}), {"closed": 0})
        self.assertEqual(self.ok("POST", "/api/disconnect", {"user": "nobody_here", "reason": "é" * 61}), {"closed": 0})

    # ---- metrics

    def test_metrics_count_calls_and_deliveries(self):
        async def go():
            (c,) = await self.users("m_c")
            before = self.server.metrics()
            await self.in_thread(self.ok, "POST", "/api/send", {"to": "m_c", "data": 1})
            await self.in_thread(lambda: self.error(401, "unauthorized", "POST", "/api/send", {"to": "m_c", "data": 1},
                                                    key="nope"))
            await recv_json(c)
            after = self.server.metrics()
            name = "switchboard_api_requests_total"
            self.assertEqual(after.get(name, call="send", status="200") - before.get(name, call="send", status="200"), 1)
            self.assertEqual(after.get(name, call="send", status="401") - before.get(name, call="send", status="401"), 1)
            self.assertGreaterEqual(after.get("switchboard_messages_out_total")
                                    - before.get("switchboard_messages_out_total"), 1)
            await self.close_all([c])
        harness.run_async(go())


class NoKeyTest(harness.ServerTestCase):
    """Without a key the API does not exist: every /api/ path is the static 404 it was."""

    def test_api_paths_404(self):
        for method, path in [("GET", "/api/users"), ("POST", "/api/send"), ("GET", "/api/rooms/r")]:
            with self.subTest(path=path):
                r = harness.http_get(self.port, path, method=method, headers={"Authorization": "Bearer " + KEY})
                self.assertEqual(r.status, 404)
                self.assertIsNone(r.header("WWW-Authenticate"))
        self.assertFalse(self.server.metrics().sum("switchboard_api_requests_total"))


class KeyConfigTest(harness.FreshServerMixin, unittest.TestCase):
    def key_file(self, text):
        fd, path = tempfile.mkstemp(prefix="sb-key-")
        os.write(fd, text.encode("utf-8"))
        os.close(fd)
        self.addCleanup(os.unlink, path)
        return path

    def exits_2(self, args, env=None, words=()):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_API")}
        full_env.update(env or {})
        r = subprocess.run([harness.SB_BIN, "--port", "127.0.0.1:%d" % harness.free_port()] + list(args),
                           stdin=subprocess.DEVNULL, capture_output=True, env=full_env, timeout=10 * harness.SLOW)
        err = r.stderr.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 2, err[-500:])
        first = err.splitlines()[0]
        for w in words:
            self.assertIn(w, first)

    def test_key_file_trailing_newline_stripped(self):
        srv = self.start_server(["--api-key-file", self.key_file(KEY + "\n")])
        self.assertEqual(api(srv.port, "GET", "/api/users")[0], 200)
        self.assertEqual(api(srv.port, "GET", "/api/users", key=KEY + "x")[0], 401)

    def test_key_from_environment(self):
        srv = self.start_server([], env={"SWITCHBOARD_API_KEY_FILE": self.key_file(KEY)})
        self.assertEqual(api(srv.port, "GET", "/api/users")[0], 200)
        srv = self.start_server([], env={"SWITCHBOARD_API_KEY": "env-key"})
        self.assertEqual(api(srv.port, "GET", "/api/users", key="env-key")[0], 200)
        self.assertEqual(api(srv.port, "GET", "/api/users")[0], 401)

    def test_both_given_exit_2(self):
        self.exits_2(["--api-key", KEY, "--api-key-file", self.key_file(KEY)], words=["both"])
        self.exits_2(["--api-key-file", self.key_file(KEY)], env={"SWITCHBOARD_API_KEY": KEY}, words=["both"])

    def test_bad_key_exit_2(self):
        self.exits_2(["--api-key-file", "/nonexistent/key"], words=["--api-key-file", "/nonexistent/key"])
        self.exits_2(["--api-key-file", self.key_file("")], words=["empty"])
        self.exits_2(["--api-key-file", self.key_file("\n")], words=["empty"])
        self.exits_2(["--api-key-file", self.key_file("a\nb\n")], words=["single line"])
        self.exits_2(["--api-key", ""], words=["--api-key", "empty"])
        self.exits_2([], env={"SWITCHBOARD_API_KEY": ""}, words=["SWITCHBOARD_API_KEY"])

    def test_key_not_in_log(self):
        srv = self.start_server(["--api-key", KEY])
        api(srv.port, "GET", "/api/users")
        api(srv.port, "GET", "/api/users", key="wrong")
        srv.stop()
        self.assertNotIn(KEY, srv.stderr_text())
        self.assertNotIn("wrong", srv.stderr_text())


if __name__ == "__main__":
    unittest.main()
