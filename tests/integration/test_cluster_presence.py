"""--presence rooms in a cluster of three nodes on a real redis-server (clusterkit.py).

A room's members on every node hear who enters and leaves it, wherever that user is connected, and a
join's ack lists the members of every node; a watch list hears its users come and go on any node; a
node killed with SIGKILL produces, within --node-ttl, the leaves of its users to exactly the rooms and
watchers concerned, and nothing to a bystander.
"""

import asyncio
import json
import signal
import socket
import struct
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

    def test_a_burst_past_the_bound_on_redis_commands_in_flight(self):
        """3000 clients of one node join rooms of 10, then all reset at once: thousands of presence
        changes at a time, each up to 5 Redis commands, far past the engine's bound on commands in
        flight (CLUSTER_INFLIGHT_MAX), so its queue is drained in parts. Every user and room member
        reaches the other nodes, leaves them again, and every node stops cleanly (a drain that sent and
        freed the rest of the queue with the part it took crashed nodes here; under ASan, always)."""
        p0, p1, _ = self.cluster.ports()
        n, auth = 3000, {"Authorization": "Bearer " + KEY}
        linger = struct.pack("ii", 1, 0)  # close with a reset, at once
        socks = []

        def listed(port):
            return {u for u in harness.http_get(port, "/api/users", headers=auth).json()["users"] if u.startswith("bu")}

        def room(port, r):
            return harness.http_get(port, "/api/rooms/bu%d" % r, headers=auth).json()["users"]

        def wait_for(what, ok):
            deadline = time.monotonic() + 20 * SLOW
            while not ok():
                self.assertLess(time.monotonic(), deadline, what)
                time.sleep(0.1)

        try:
            for i in range(n):
                _, sock, _ = harness.raw_handshake(p0, "/ws?user=bu%d" % i)
                socks.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                sock.sendall(harness.build_frame(1, json.dumps({"type": "join", "room": "bu%d" % (i // 10)})))
            wait_for("node 1 lists all %d users" % n, lambda: len(listed(p1)) == n)
            wait_for("node 1 lists the last room's members", lambda: len(room(p1, n // 10 - 1)) == 10)
        finally:
            for sock in socks:
                sock.close()
        wait_for("node 1 lists none of them", lambda: not listed(p1))
        for r in (0, n // 20, n // 10 - 1):
            self.assertEqual(room(p1, r), [])
            self.assertEqual(room(p0, r), [])


if __name__ == "__main__":
    unittest.main()
