"""The server API (docs/API.md) on a cluster: a backend calls one node and reaches every node."""

import unittest

from clusterkit import Cluster, wait_users
from harness import open_router, recv_until, run_async
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


if __name__ == "__main__":
    unittest.main()
