"""--presence rooms in a cluster of three nodes on a real redis-server (clusterkit.py).

A room's members on every node hear who enters and leaves it, wherever that user is connected, and a
join's ack lists the members of every node; a watch list hears its users come and go on any node; a
node killed with SIGKILL produces, within --node-ttl, the leaves of its users to exactly the rooms and
watchers concerned, and nothing to a bystander.
"""

import asyncio
import signal
import time
import unittest

import harness
from clusterkit import NODE_TTL, Cluster, wait_users
from harness import SLOW, expect_quiet, open_router, recv_json, run_async, send_json
from test_presence import presence

KEY = "cluster-presence-key"


async def wait_room(port, room, want):
    """Polls GET /api/rooms/ROOM on one node until it lists exactly `want` (bounded): presence
    crosses Redis in its own time."""
    deadline = time.monotonic() + 10 * SLOW
    got = None
    while time.monotonic() < deadline:
        got = harness.http_get(port, "/api/rooms/" + room, headers={"Authorization": "Bearer " + KEY}).json()
        if got["users"] == sorted(want):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("node %d lists %r in %s, wanted %r" % (port, got, room, sorted(want)))


class ClusterPresenceTest(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(3, extra_args=["--presence", "rooms", "--api-key", KEY])

    def tearDown(self):
        self.cluster.stop_and_check()

    def run(self, result=None):
        result = super().run(result)
        if result and (result.failures or result.errors) and self.cluster.nodes:
            print(self.cluster.stderr())
        return result

    def test_rooms_watches_and_a_dead_node(self):
        p0, p1, p2 = self.cluster.ports()

        async def go():
            a, _ = await open_router(p0, "cp_a")
            x, _ = await open_router(p0, "cp_x")  # a bystander: in no room, watches nobody
            b, _ = await open_router(p1, "cp_b")
            w, _ = await open_router(p1, "cp_w")
            await send_json(a, {"type": "join", "room": "cp_room", "id": 1})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": 1, "delivered": 0, "members": ["cp_a"]})
            await wait_room(p1, "cp_room", ["cp_a"])
            await send_json(b, {"type": "join", "room": "cp_room", "id": 2})
            self.assertEqual(await recv_json(b), {"type": "ack", "id": 2, "delivered": 0, "members": ["cp_a", "cp_b"]})
            self.assertEqual(await recv_json(a), presence("join", "cp_b", "cp_room"))

            await wait_users(p1, ["cp_a"])
            await send_json(w, {"type": "watch", "users": ["cp_a", "cp_doomed"], "id": 3})
            self.assertEqual(await recv_json(w), {"type": "ack", "id": 3, "delivered": 0, "online": ["cp_a"]})
            doomed, _ = await open_router(p2, "cp_doomed")
            self.assertEqual(await recv_json(w), presence("join", "cp_doomed"))
            await send_json(doomed, {"type": "join", "room": "cp_room", "id": 4})
            m = await recv_json(doomed)
            self.assertEqual(m["members"], ["cp_a", "cp_b", "cp_doomed"])
            for ws in (a, b):
                self.assertEqual(await recv_json(ws), presence("join", "cp_doomed", "cp_room"))

            killed_at = time.monotonic()
            self.cluster.nodes[2].proc.send_signal(signal.SIGKILL)
            limit = NODE_TTL + 2 * SLOW + 1
            for ws in (a, b):
                self.assertEqual(await recv_json(ws, limit), presence("leave", "cp_doomed", "cp_room"))
            self.assertEqual(await recv_json(w, limit), presence("leave", "cp_doomed"))
            self.assertLess(time.monotonic() - killed_at, limit)
            for ws in (a, b, w, x):
                await expect_quiet(ws)  # nothing twice, and nothing to the bystander
            for ws in (a, b, w, x):
                await ws.close()

        run_async(go(), timeout=60 * SLOW)
        self.cluster.nodes[2].cleanup()
        del self.cluster.nodes[2]


if __name__ == "__main__":
    unittest.main()
