"""The server API (docs/API.md) on a cluster: a backend calls one node and reaches every node."""

import asyncio
import time
import unittest

import websockets

from clusterkit import Cluster, wait_users
from harness import RECV_TIMEOUT, open_router, recv_json, recv_until, run_async
from test_api import KEY, api


def is_message(m):
    return m.get("type") == "message"


class ClusterApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(2, extra_args=["--api-key", KEY])
        cls.ports = cls.cluster.ports()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop_and_check()

    def test_send_broadcast_publish_users_through_one_node(self):
        async def go():
            a, _ = await open_router(self.ports[0], "api_a")
            b, _ = await open_router(self.ports[1], "api_b")
            for p in self.ports:
                await wait_users(p, ["api_a", "api_b"])
            status, _, got = api(self.ports[0], "POST", "/api/send",
                                 {"to": ["api_b", "api_nobody"], "data": {"k": 1}})
            self.assertEqual((status, got), (200, {"delivered": 1, "not_found": ["api_nobody"]}))
            m, _ = await recv_until(b, is_message)
            self.assertEqual(m, {"type": "message", "from": "@server", "to": "api_b", "data": {"k": 1}})
            status, _, got = api(self.ports[0], "POST", "/api/broadcast", {"data": 2})
            self.assertEqual((status, got["delivered"]), (200, 2))  # a here, and b's node
            for ws in (a, b):
                m, _ = await recv_until(ws, is_message)
                self.assertEqual(m["data"], 2)
            await b.send('{"type":"join","room":"api_room","id":1}')
            await recv_until(b, lambda m: m.get("type") == "ack")
            status, _, got = api(self.ports[0], "POST", "/api/publish", {"room": "api_room", "data": 3})
            self.assertEqual(status, 200)
            m, _ = await recv_until(b, is_message)
            self.assertEqual((m["room"], m["data"]), ("api_room", 3))
            status, _, got = api(self.ports[0], "GET", "/api/users")
            self.assertTrue({"api_a", "api_b"} <= set(got["users"]), got)
            await a.close()
            await b.close()
        run_async(go())


class ClusterApiThreeNodesTest(unittest.TestCase):
    """Disconnect and a room's listing act on every node, whichever node the backend calls."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(3, extra_args=["--api-key", KEY])
        cls.ports = cls.cluster.ports()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop_and_check()

    def wait_api(self, path, want):
        """Polls GET path on node A until it answers want (bounded): presence crosses Redis."""
        deadline = time.monotonic() + RECV_TIMEOUT
        got = None
        while time.monotonic() < deadline:
            status, _, got = api(self.ports[0], "GET", path)
            self.assertEqual(status, 200, got)
            if got == want:
                return got
            time.sleep(0.1)
        self.fail("GET %s on node A gave %r, wanted %r" % (path, got, want))

    def test_disconnect_on_one_node_closes_the_user_everywhere(self):
        async def go():
            a, _ = await open_router(self.ports[0], "dx_a")
            b1, _ = await open_router(self.ports[1], "dx_b")
            b2, _ = await open_router(self.ports[2], "dx_b")
            b3, _ = await open_router(self.ports[2], "dx_b")
            for p in self.ports:
                await wait_users(p, ["dx_a", "dx_b"])
            await self.cluster.presence_settled()  # node A knows both of dx_b's nodes, not just one
            status, _, got = await asyncio.get_running_loop().run_in_executor(
                None, lambda: api(self.ports[0], "POST", "/api/disconnect",
                                  {"user": "dx_b", "code": 4002, "reason": "kicked é"}))
            # none here, plus the two nodes where dx_b is online
            self.assertEqual((status, got), (200, {"closed": 2}))
            for ws in (b1, b2, b3):
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    while True:
                        await recv_json(ws)
                await ws.wait_closed()
                self.assertEqual((ws.close_code, ws.close_reason), (4002, "kicked é"))
            await recv_until(a, lambda m: m == {"type": "presence", "event": "leave", "user": "dx_b"})
            await a.send('{"type":"ping"}')
            await recv_until(a, lambda m: m.get("type") == "pong")  # dx_a stays
            for p in self.ports:
                await wait_users(p, ["dx_a"], absent=["dx_b"])
            status, _, got = api(self.ports[1], "POST", "/api/disconnect", {"user": "dx_b"})
            self.assertEqual((status, got), (200, {"closed": 0}))
            await a.close()
        run_async(go())

    def test_room_listing_shows_members_of_every_node(self):
        async def go():
            async def member(port, user, room):
                ws, _ = await open_router(port, user)
                await ws.send('{"type":"join","room":"%s","id":1}' % room)
                await recv_until(ws, lambda m: m.get("type") == "ack")
                return ws
            a = await member(self.ports[0], "rl_a", "rl_room")
            b = await member(self.ports[1], "rl_b", "rl_room")
            c1 = await member(self.ports[2], "rl_c", "rl_room")
            c2 = await member(self.ports[2], "rl_c", "rl_room")  # one user, listed once
            b_elsewhere = await member(self.ports[1], "rl_b", "rl_other")
            outsider, _ = await open_router(self.ports[2], "rl_out")
            self.wait_api("/api/rooms/rl_room", {"room": "rl_room", "users": ["rl_a", "rl_b", "rl_c"]})
            self.wait_api("/api/rooms/rl_other", {"room": "rl_other", "users": ["rl_b"]})
            await c1.close()  # rl_c still has c2 in the room
            await b.close()   # rl_b's last connection in rl_room; it stays in rl_other
            self.wait_api("/api/rooms/rl_room", {"room": "rl_room", "users": ["rl_a", "rl_c"]})
            await b_elsewhere.send('{"type":"leave","room":"rl_other","id":2}')
            await recv_until(b_elsewhere, lambda m: m.get("type") == "ack")
            self.wait_api("/api/rooms/rl_other", {"room": "rl_other", "users": []})
            for ws in (a, c2, b_elsewhere, outsider):
                await ws.close()
            self.wait_api("/api/rooms/rl_room", {"room": "rl_room", "users": []})
        run_async(go())


if __name__ == "__main__":
    unittest.main()


class ClusterSubscribeTest(unittest.TestCase):
    """Server-side subscriptions (issue 22): one call on one node joins and removes the user's
    connections on every node; the room's publishes then reach them wherever they are."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(2, extra_args=["--api-key", KEY, "--client-allow", "none"])
        cls.ports = cls.cluster.ports()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop_and_check()

    def wait_room(self, want):
        deadline = time.monotonic() + RECV_TIMEOUT
        got = None
        while time.monotonic() < deadline:
            _, _, got = api(self.ports[0], "GET", "/api/rooms/sub_news")
            if got["users"] == want:
                return
            time.sleep(0.1)
        self.fail("room lists %r, wanted %r" % (got, want))

    def test_subscribe_on_one_node_joins_everywhere(self):
        async def go():
            here, _ = await open_router(self.ports[0], "sub_reader")  # receive-only: cannot join itself
            there, _ = await open_router(self.ports[1], "sub_reader")
            marker, _ = await open_router(self.ports[1], "sub_marker")
            # Node A has heard of B's sub_reader once it lists sub_marker, announced after it (`users`
            # is not allowed to these clients: the API lists them).
            deadline = time.monotonic() + RECV_TIMEOUT
            while "sub_marker" not in api(self.ports[0], "GET", "/api/users")[2]["users"] and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            status, _, got = api(self.ports[0], "POST", "/api/subscribe", {"user": "sub_reader", "room": "sub_news"})
            self.assertEqual((status, got), (200, {"subscribed": 2}))  # one here, plus the other node
            self.wait_room(["sub_reader"])
            status, _, got = api(self.ports[1], "POST", "/api/publish", {"room": "sub_news", "data": "extra"})
            self.assertEqual((status, got["delivered"]), (200, 2))
            for ws in (here, there):
                m, _ = await recv_until(ws, is_message)
                self.assertEqual((m["room"], m["data"]), ("sub_news", "extra"))
            status, _, got = api(self.ports[1], "POST", "/api/unsubscribe", {"user": "sub_reader", "room": "sub_news"})
            self.assertEqual((status, got), (200, {"unsubscribed": 2}))
            self.wait_room([])
            status, _, got = api(self.ports[0], "POST", "/api/publish", {"room": "sub_news", "data": "late"})
            self.assertEqual(got["delivered"], 0)
            await here.close()
            await there.close()
            await marker.close()
        run_async(go())
