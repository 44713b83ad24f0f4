"""Routing and errors beyond the PROTOCOL.md examples."""

import asyncio
import json
import time
import unittest

import websockets.exceptions

import harness
from harness import RECV_TIMEOUT, SLOW, expect_quiet, open_router, recv_json, send_json


class NobodyOnlineAtStart:
    """The class shares one server: the previous test's connections close as its test ends, and the
    server may handle those closes after this test's clients connected, which would then read the
    leaves as their replies. Each test starts once the server has seen them all go."""

    def setUp(self):
        super().setUp()
        self.wait_nobody_online()

    def wait_nobody_online(self):
        deadline = time.monotonic() + 10 * SLOW
        while self.server.healthz()["connections"] != 0:
            if time.monotonic() > deadline:
                raise AssertionError("the previous test's connections are still open")
            time.sleep(0.02)


class RoutingTest(NobodyOnlineAtStart, harness.ServerTestCase):
    def run_async(self, coro):
        return harness.run_async(coro)

    async def pair(self, *names):
        """Open router connections in order, consuming the presence joins the others see; each user
        is known everywhere (presence_settled) before the next one connects."""
        conns = []
        for name in names:
            ws, _ = await open_router(self.port, name)
            for other in conns:
                p = await recv_json(other)
                self.assertEqual(p, {"type": "presence", "event": "join", "user": name})
            conns.append(ws)
            await self.presence_settled()
        return conns

    async def presence_settled(self):
        """Every part of the server knows of every join and leave so far: at once for one server
        (nothing to wait for); test_cluster_haproxy waits for the nodes to hear each other."""

    async def close_all(self, *conns):
        for ws in conns:
            await ws.close()

    def test_send_list_with_offline_user(self):
        async def go():
            a, b = await self.pair("rl_a", "rl_b")
            await send_json(a, {"type": "send", "to": ["rl_b", "rl_offline"], "data": {"n": 1}, "id": "s1"})
            got = await recv_json(b)
            self.assertEqual(got, {"type": "message", "from": "rl_a", "to": "rl_b", "data": {"n": 1}})
            err = await recv_json(a)
            self.assertEqual(err.get("type"), "error", err)
            self.assertEqual(err.get("code"), "not_found", err)
            self.assertEqual(err.get("id"), "s1", err)
            self.assertIn("rl_offline", err.get("message", ""))
            self.assertNotIn("rl_b", err.get("message", "").replace("rl_offline", ""))
            await expect_quiet(a)
            await expect_quiet(b)
            await self.close_all(a, b)
        self.run_async(go())

    def test_send_list_two_targets(self):
        async def go():
            a, b, c = await self.pair("rt_a", "rt_b", "rt_c")
            await send_json(a, {"type": "send", "to": ["rt_b", "rt_c"], "data": [1, 2], "id": 5})
            self.assertEqual(await recv_json(b), {"type": "message", "from": "rt_a", "to": "rt_b", "data": [1, 2]})
            self.assertEqual(await recv_json(c), {"type": "message", "from": "rt_a", "to": "rt_c", "data": [1, 2]})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": 5, "delivered": 2})
            await self.close_all(a, b, c)
        self.run_async(go())

    def test_broadcast_reaches_others_not_sender(self):
        async def go():
            a, b, c = await self.pair("bc_a", "bc_b", "bc_c")
            echo = await harness.ws_open(self.port, "/ws", subprotocols=["echo-protocol"])
            await send_json(a, {"type": "broadcast", "data": {"k": "v"}, "from": "mallory", "id": "b1"})
            for ws in (b, c):
                self.assertEqual(await recv_json(ws), {"type": "message", "from": "bc_a", "data": {"k": "v"}})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": "b1", "delivered": 2})
            await expect_quiet(a)
            # an echo-mode connection is not a router connection: it gets nothing
            try:
                m = await asyncio.wait_for(echo.recv(), harness.QUIET)
                self.fail("echo-mode connection received a broadcast: %r" % m)
            except asyncio.TimeoutError:
                pass
            await echo.close()
            await self.close_all(a, b, c)
        self.run_async(go())

    def test_publish_only_to_other_members(self):
        async def go():
            a, b, c = await self.pair("pb_a", "pb_b", "pb_c")
            for ws, i in ((a, 1), (b, 2)):
                await send_json(ws, {"type": "join", "room": "pb_room", "id": i})
                self.assertEqual(await recv_json(ws), {"type": "ack", "id": i, "delivered": 0})
            await self.presence_settled()
            await send_json(a, {"type": "publish", "room": "pb_room", "data": "hey", "from": "mallory", "id": 3})
            self.assertEqual(await recv_json(b), {"type": "message", "from": "pb_a", "room": "pb_room", "data": "hey"})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": 3, "delivered": 1})
            await expect_quiet(c)
            await expect_quiet(a)
            # after leaving, b no longer receives
            await send_json(b, {"type": "leave", "room": "pb_room", "id": 4})
            self.assertEqual(await recv_json(b), {"type": "ack", "id": 4, "delivered": 0})
            await self.presence_settled()
            await send_json(a, {"type": "publish", "room": "pb_room", "data": "again", "id": 5})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": 5, "delivered": 0})
            await expect_quiet(b)
            await self.close_all(a, b, c)
        self.run_async(go())

    def test_from_is_set_by_server(self):
        async def go():
            a, b = await self.pair("fr_a", "fr_b")
            await send_json(a, {"type": "send", "to": "fr_b", "data": 1, "from": "fr_b"})
            self.assertEqual((await recv_json(b))["from"], "fr_a")
            await send_json(a, {"type": "broadcast", "data": 2, "from": ["x"]})
            self.assertEqual((await recv_json(b))["from"], "fr_a")
            await self.close_all(a, b)
        self.run_async(go())

    def test_presence_with_several_tabs(self):
        async def go():
            w, = await self.pair("tab_watch")
            t1, _ = await open_router(self.port, "tab_user")
            self.assertEqual(await recv_json(w), {"type": "presence", "event": "join", "user": "tab_user"})
            t2, welcome = await open_router(self.port, "tab_user")
            self.assertIn("tab_user", welcome["users"])
            self.assertEqual(welcome["users"].count("tab_user"), 1, welcome)
            await expect_quiet(w)  # second tab: no presence
            await t1.close()
            await expect_quiet(w)  # one tab left: no leave
            await t2.close()
            self.assertEqual(await recv_json(w), {"type": "presence", "event": "leave", "user": "tab_user"})
            await w.close()
        self.run_async(go())

    def test_welcome_ids_unique_and_users_sorted(self):
        async def go():
            names = ["us_c", "us_a", "us_b"]
            conns, ids = [], set()
            for n in names:
                ws, welcome = await open_router(self.port, n)
                conns.append(ws)
                ids.add(welcome["id"])
                self.assertEqual(welcome["users"], sorted(welcome["users"]))
            self.assertEqual(len(ids), 3)
            await self.presence_settled()
            await send_json(conns[0], {"type": "users"})
            users, _ = await harness.recv_until(conns[0], lambda m: m.get("type") == "users")
            self.assertEqual(users["users"], sorted(users["users"]))
            for n in names:
                self.assertIn(n, users["users"])
            await self.close_all(*conns)
        self.run_async(go())

    def test_anonymous_user_is_its_id(self):
        async def go():
            ws, welcome = await open_router(self.port)
            self.assertTrue(welcome["user"].startswith("conn-"), welcome)
            self.assertEqual(welcome["user"], welcome["id"])
            await ws.close()
        self.run_async(go())

    # ---- errors

    async def expect_error(self, ws, code, id_=None):
        m = await recv_json(ws)
        self.assertEqual(m.get("type"), "error", m)
        self.assertEqual(m.get("code"), code, m)
        self.assertIsInstance(m.get("message"), str, m)
        self.assertTrue(m["message"], m)
        if id_ is not None:
            self.assertEqual(m.get("id"), id_, m)
        else:
            self.assertNotIn("id", m)
        return m

    def test_every_error_code(self):
        async def go():
            a, = await self.pair("err_a")
            cases = [
                ("not json", "bad_json", None),
                ('{"type":"ping"', "bad_json", None),
                ('"just a string"', "bad_request", None),
                ("42", "bad_request", None),
                ('{"id":1}', "bad_request", 1),
                ('{"type":7,"id":2}', "bad_request", 2),
                ('{"type":"send","to":"x y","data":1,"id":3}', "bad_request", 3),
                ('{"type":"send","to":[],"data":1,"id":4}', "bad_request", 4),
                ('{"type":"send","to":"err_b","id":5}', "bad_request", 5),
                ('{"type":"send","to":5,"data":1,"id":6}', "bad_request", 6),
                ('{"type":"join","id":7}', "bad_request", 7),
                ('{"type":"join","room":"","id":8}', "bad_request", 8),
                ('{"type":"hello","user":"conn-9","id":9}', "bad_request", 9),
                ('{"type":"fly","id":"u"}', "unknown_type", "u"),
                ('{"type":"send","to":"nobody_at_all","data":1,"id":10}', "not_found", 10),
                ('{"type":"leave","room":"never_joined","id":11}', "not_found", 11),
                ('{"type":"publish","room":"not_mine","data":1,"id":12}', "unauthorized", 12),
            ]
            for text, code, id_ in cases:
                with self.subTest(msg=text):
                    await a.send(text)
                    await self.expect_error(a, code, id_)
            # too_large: 101 distinct valid names
            await send_json(a, {"type": "send", "to": ["u%03d" % i for i in range(101)], "data": 1, "id": 13})
            await self.expect_error(a, "too_large", 13)
            # 100 is not too large (they are all offline: not_found)
            await send_json(a, {"type": "send", "to": ["u%03d" % i for i in range(100)], "data": 1, "id": 14})
            await self.expect_error(a, "not_found", 14)
            # binary message in router mode
            await a.send(b'{"type":"ping"}')
            await self.expect_error(a, "bad_request")
            # still alive
            await send_json(a, {"type": "ping"})
            self.assertEqual(await recv_json(a), {"type": "pong"})
            await expect_quiet(a)
            await a.close()
        self.run_async(go())

    def test_deep_json(self):
        async def go():
            a, = await self.pair("deep_a")
            deep = '{"type":"ping","x":' + "[" * 100 + "]" * 100 + "}"
            await a.send(deep)
            await self.expect_error(a, "bad_json")
            deep_obj = '{"type":"ping","x":' + '{"a":' * 100 + "1" + "}" * 100 + "}"
            await a.send(deep_obj)
            await self.expect_error(a, "bad_json")
            # well within the limit: fine
            ok = '{"type":"ping","x":' + "[" * 30 + "]" * 30 + "}"
            await a.send(ok)
            self.assertEqual(await recv_json(a), {"type": "pong"})
            await a.close()
        self.run_async(go())

    def test_deep_data_is_delivered(self):
        async def go():
            a, b = await self.pair("dd_a", "dd_b")
            data = json.loads("[" * 50 + "]" * 50)
            await send_json(a, {"type": "send", "to": "dd_b", "data": data})
            self.assertEqual((await recv_json(b))["data"], data)
            await self.close_all(a, b)
        self.run_async(go())

    def test_data_arrives_byte_for_byte(self):
        """`data` is the sender's bytes: 64-bit ids, out-of-range numbers, whitespace and escapes
        survive, in a send, a broadcast and a publish; data that is not strict JSON is refused with
        bad_json and reaches nobody, and the connection carries on."""
        kept = ['{ "id" : 9007199254740993, "n": [1e400, -0, 1.0] }', '"\\u00e9 \\ud83d\\ude00 caf\u00e9"',
                "12345678901234567890", "[ ]"]

        async def go():
            a, b = await self.pair("raw_a", "raw_b")
            for data in kept:
                await a.send('{"type":"send","to":"raw_b","data":%s}' % data)
                self.assertEqual(await asyncio.wait_for(b.recv(), RECV_TIMEOUT),
                                 '{"type":"message","from":"raw_a","to":"raw_b","data":%s}' % data)
            await b.send('{"type":"broadcast","data":%s}' % kept[0])
            self.assertEqual(await asyncio.wait_for(a.recv(), RECV_TIMEOUT),
                             '{"type":"message","from":"raw_b","data":%s}' % kept[0])
            for ws in (a, b):
                await send_json(ws, {"type": "join", "room": "raw", "id": 1})
                self.assertEqual(await recv_json(ws), {"type": "ack", "id": 1, "delivered": 0})
            await a.send('{"type":"publish","room":"raw","data":%s}' % kept[1])
            self.assertEqual(await asyncio.wait_for(b.recv(), RECV_TIMEOUT),
                             '{"type":"message","from":"raw_a","room":"raw","data":%s}' % kept[1])
            for bad in ("01", "[-.5]", '{"x":1.}', '"tab\there"'):
                await a.send('{"type":"send","to":"raw_b","data":%s,"id":"bad"}' % bad)
                self.assertEqual(await recv_json(a), {"type": "error", "code": "bad_json",
                                                      "message": "send data is not strict JSON (RFC 8259)",
                                                      "id": "bad"})
            await expect_quiet(b)
            await send_json(a, {"type": "send", "to": "raw_b", "data": "still here", "id": 2})
            self.assertEqual(await recv_json(b), {"type": "message", "from": "raw_a", "to": "raw_b",
                                                  "data": "still here"})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": 2, "delivered": 1})
            await self.close_all(a, b)
        self.run_async(go())

    def test_name_length_limits(self):
        async def go():
            a, = await self.pair("nl_a")
            long65 = "n" * 65
            await send_json(a, {"type": "send", "to": long65, "data": 1, "id": 1})
            await self.expect_error(a, "bad_request", 1)
            await send_json(a, {"type": "join", "room": long65, "id": 2})
            await self.expect_error(a, "bad_request", 2)
            await send_json(a, {"type": "join", "room": "r" * 64, "id": 3})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": 3, "delivered": 0})
            anon, _ = await open_router(self.port)
            await recv_json(a)  # presence join of anon
            await send_json(anon, {"type": "hello", "user": long65, "id": 4})
            await self.expect_error(anon, "bad_request", 4)
            await send_json(anon, {"type": "hello", "user": "bad name", "id": 5})
            await self.expect_error(anon, "bad_request", 5)
            # still anonymous, so hello still works
            await send_json(anon, {"type": "hello", "user": "h" * 64})
            w = await recv_json(anon)
            self.assertEqual((w["type"], w["user"]), ("welcome", "h" * 64))
            await self.close_all(a, anon)
        self.run_async(go())

    def test_id_rules(self):
        async def go():
            a, = await self.pair("id_a")
            await send_json(a, {"type": "ping", "id": "i" * 64})
            self.assertEqual(await recv_json(a), {"type": "pong"})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": "i" * 64, "delivered": 0})
            await send_json(a, {"type": "ping", "id": 1.5})
            self.assertEqual(await recv_json(a), {"type": "pong"})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": 1.5, "delivered": 0})
            for bad in ("i" * 65, {"x": 1}, [1], True):
                with self.subTest(id=bad):
                    await send_json(a, {"type": "ping", "id": bad})
                    m = await recv_json(a)
                    self.assertEqual((m.get("type"), m.get("code")), ("error", "bad_request"), m)
            await send_json(a, {"type": "ping"})
            self.assertEqual(await recv_json(a), {"type": "pong"})
            await a.close()
        self.run_async(go())

    def test_room_limit(self):
        async def go():
            a, = await self.pair("rm_a")
            for i in range(64):
                await send_json(a, {"type": "join", "room": "room%02d" % i, "id": i})
                m = await recv_json(a)
                self.assertEqual(m, {"type": "ack", "id": i, "delivered": 0})
            await send_json(a, {"type": "join", "room": "room64", "id": 64})
            await self.expect_error(a, "bad_request", 64)
            # leave one, then there is room again
            await send_json(a, {"type": "leave", "room": "room00", "id": 65})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": 65, "delivered": 0})
            await send_json(a, {"type": "join", "room": "room64", "id": 66})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": 66, "delivered": 0})
            await a.close()
        self.run_async(go())

    def test_reserved_name_refused_at_handshake(self):
        resp, _, _ = harness.raw_handshake(self.port, "/ws?user=conn-5")
        self.assertEqual(resp.status, 400, resp)


class ThreadsTest(NobodyOnlineAtStart, harness.ServerTestCase):
    """With several event loops, connections live on different threads: every targeted send and
    broadcast between them arrives exactly once and in order, whichever loop sent it."""

    server_args = ["--threads", "3"]
    USERS = 6
    ROUNDS = 20

    def test_every_pair_across_loops(self):
        async def go():
            names = ["lp%d" % i for i in range(self.USERS)]
            conns = []
            for name in names:
                ws, _ = await open_router(self.port, name)
                for other in conns:
                    self.assertEqual(await recv_json(other), {"type": "presence", "event": "join", "user": name})
                conns.append(ws)
            for r in range(self.ROUNDS):
                for i, ws in enumerate(conns):
                    for j in range(self.USERS):
                        if j != i:
                            await send_json(ws, {"type": "send", "to": names[j], "data": [i, r]})
                    await send_json(ws, {"type": "broadcast", "data": {"from": i, "round": r}})
            for j, ws in enumerate(conns):
                want = {i: [] for i in range(self.USERS) if i != j}
                got = {i: [] for i in range(self.USERS) if i != j}
                for i in want:
                    for r in range(self.ROUNDS):
                        want[i] += [("send", r), ("broadcast", r)]
                for _ in range(2 * self.ROUNDS * (self.USERS - 1)):
                    m = await recv_json(ws)
                    self.assertEqual(m.get("type"), "message", m)
                    if "to" in m:
                        i, r = m["data"]
                        got[i].append(("send", r))
                    else:
                        i, r = m["data"]["from"], m["data"]["round"]
                        got[i].append(("broadcast", r))
                    self.assertEqual(m["from"], names[i], m)
                self.assertEqual(got, want, "user %d" % j)
            await expect_quiet(conns[0])
            for ws in conns:
                await ws.close()
        harness.run_async(go())


class RateLimitTest(NobodyOnlineAtStart, harness.ServerTestCase):
    server_args = ["--rate-limit", "5"]

    def test_burst_partially_refused_connection_stays(self):
        async def go():
            ws, _ = await open_router(self.port, "rate_a")
            n = 12  # burst 5: some refused; fewer than 20 refused, so no close
            for i in range(n):
                await send_json(ws, {"type": "ping", "id": i})
            pongs, errors, replies = 0, [], 0
            for _ in range(3 * n):
                if replies == n:
                    break
                m = await recv_json(ws)
                if m.get("type") == "pong":
                    pongs += 1
                elif m.get("type") == "ack":
                    replies += 1
                elif m.get("type") == "error":
                    self.assertEqual(m.get("code"), "rate_limited", m)
                    errors.append(m)
                    replies += 1
                else:
                    self.fail("unexpected %r" % m)
            self.assertEqual(replies, n)
            self.assertGreaterEqual(pongs, 1)
            self.assertGreaterEqual(len(errors), 1, "12 pings back-to-back with --rate-limit 5: none refused")
            # the bucket refills: after a pause the connection works again
            ok = False
            for _ in range(int(20 * SLOW)):
                await asyncio.sleep(0.25)
                await send_json(ws, {"type": "ping"})
                m = await recv_json(ws)
                if m == {"type": "pong"}:
                    ok = True
                    break
                self.assertEqual(m.get("code"), "rate_limited", m)
            self.assertTrue(ok, "still rate limited after waiting")
            await ws.close()
            return errors

        errors = harness.run_async(go())
        # "error ... id (if the command had one)": every refused ping carried an id.
        for m in errors:
            self.assertIn(m.get("id"), range(12), "rate_limited error without the command's id: %r" % m)

    def test_keeps_sending_closed_1008(self):
        async def go():
            ws, _ = await open_router(self.port, "rate_b")
            pongs, refused, streak, sent = 0, 0, 0, 0
            closed = None
            # Lockstep: one ping, one reply; far above 5/s, so after the burst nearly all are refused.
            for i in range(300):
                try:
                    await send_json(ws, {"type": "ping"})
                    sent += 1
                    # the reply, past presence from the class's other tests (their users may leave late)
                    m, _ = await harness.recv_until(ws, lambda m: m.get("type") != "presence")
                except websockets.exceptions.ConnectionClosed as e:
                    closed = e
                    break
                if m.get("type") == "pong":
                    pongs += 1
                    streak = 0
                else:
                    self.assertEqual((m.get("type"), m.get("code")), ("error", "rate_limited"), m)
                    refused += 1
                    streak += 1
            self.assertIsNotNone(closed, "not closed after %d refused messages" % refused)
            self.assertGreaterEqual(pongs, 1)
            self.assertGreaterEqual(refused, 1, "closed without any rate_limited error")
            # The message that triggered the close was refused too: streak + 1 refused in a row.
            self.assertGreaterEqual(streak + 1, 20, "closed after only %d refused in a row" % (streak + 1))
            self.assertEqual(ws.close_code, 1008, "closed with %r" % ws.close_code)
        harness.run_async(go())

    def test_back_to_back_30(self):
        async def go():
            ws, _ = await open_router(self.port, "rate_c")
            for i in range(30):
                try:
                    await send_json(ws, {"type": "ping", "id": i})
                except websockets.exceptions.ConnectionClosed:
                    break
            kinds = []
            for _ in range(100):
                try:
                    m = await recv_json(ws)
                except websockets.exceptions.ConnectionClosed:
                    break
                kinds.append(m.get("code") or m.get("type"))
            # 30 back-to-back with burst 5: 20 refused in a row happened, so the server closed 1008
            await asyncio.wait_for(ws.wait_closed(), RECV_TIMEOUT)
            why = ("30 pings back-to-back with --rate-limit 5: expected pongs for the burst and "
                   "rate_limited errors, then close 1008; received %r, then close %r" % (kinds, ws.close_code))
            self.assertIn("pong", kinds, why)
            self.assertIn("rate_limited", kinds, why)
            self.assertEqual(ws.close_code, 1008, why)
        harness.run_async(go())


if __name__ == "__main__":
    unittest.main()
