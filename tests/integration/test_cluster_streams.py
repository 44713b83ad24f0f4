"""Stream positions across nodes (issue 21, --redis): Redis gives each message of a user's stream its
position (app/cluster/clusterhist.c), so every node delivers the same one.

  two tabs          a user with a protocol 2 connection on each of two nodes: messages sent to it from
                    both nodes reach both tabs with the same epoch and offsets, one more per message, in
                    the same order; a protocol 1 connection of the user gets them byte for byte as before
  Redis down        a node goes on delivering to its own protocol 2 connections, without positions
"""

import asyncio
import time
import unittest

import harness
from clusterkit import Cluster, ClusterTestCase, wait_users
from harness import SLOW, open_router, recv_json, recv_until, run_async, send_json

MESSAGES = 20


def is_message(m):
    return m.get("type") == "message"


async def open_v2(port, user):
    ws = await harness.ws_open(port, "/ws?user=%s&v=2" % user)
    welcome = await recv_json(ws)
    assert welcome["type"] == "welcome", welcome
    return ws


async def acked(ws, i):
    m, _ = await recv_until(ws, lambda m: m.get("type") in ("ack", "error") and m.get("id") == i)
    return m


class ClusterStreamsTest(ClusterTestCase):
    NODES = 2

    def test_two_tabs_on_two_nodes_see_the_same_offsets(self):
        async def go():
            tab0 = await open_v2(self.ports[0], "cs_bob")
            tab1 = await open_v2(self.ports[1], "cs_bob")
            old, _ = await open_router(self.ports[1], "cs_bob")
            alice, _ = await open_router(self.ports[0], "cs_alice")
            carol, _ = await open_router(self.ports[1], "cs_carol")
            for p in self.ports:
                await wait_users(p, ["cs_bob", "cs_alice", "cs_carol"])
            for i in range(MESSAGES):  # from both nodes, in turn
                sender = alice if i % 2 == 0 else carol
                await send_json(sender, {"type": "send", "to": "cs_bob", "data": i, "id": i})
                ack = await acked(sender, i)
                self.assertEqual(ack.get("type"), "ack", ack)
            seen = []
            for tab in (tab0, tab1):
                got = []
                for i in range(MESSAGES):
                    m, _ = await recv_until(tab, is_message)
                    got.append(m)
                seen.append(got)
            self.assertEqual(seen[0], seen[1])  # positions, order and content: the same on both nodes
            # One stream: consecutive offsets under one epoch, each sender's messages in the order sent
            # (an ack says the message is on its way, not that Redis has it: two senders on two nodes
            # may cross).
            epoch, first = seen[0][0]["epoch"], seen[0][0]["offset"]
            for i, m in enumerate(seen[0]):
                self.assertEqual((m["type"], m["epoch"], m["offset"], m["to"]), ("message", epoch, first + i, "cs_bob"))
                self.assertEqual(m["from"], "cs_alice" if m["data"] % 2 == 0 else "cs_carol")
            for sender in ("cs_alice", "cs_carol"):
                data = [m["data"] for m in seen[0] if m["from"] == sender]
                self.assertEqual(data, sorted(data))
            self.assertEqual(sorted(m["data"] for m in seen[0]), list(range(MESSAGES)))
            raws = []
            while len(raws) < MESSAGES:
                raw = await harness.recv(old)
                if '"type":"message"' in raw:
                    raws.append(raw)
            self.assertEqual(sorted(raws), sorted('{"type":"message","from":"%s","to":"cs_bob","data":%d}'
                                                  % (m["from"], m["data"]) for m in seen[0]))
            # One more from a node the user is not on: the stream goes on.
            dave, _ = await open_router(self.ports[0], "cs_dave")
            await send_json(dave, {"type": "send", "to": "cs_carol", "data": "x", "id": "c"})
            await acked(dave, "c")
            await send_json(carol, {"type": "send", "to": "cs_bob", "data": "last", "id": "l"})
            await acked(carol, "l")
            for tab in (tab0, tab1):
                m, _ = await recv_until(tab, is_message)
                self.assertEqual((m["epoch"], m["offset"], m["data"]), (epoch, first + MESSAGES, "last"))
            for ws in (tab0, tab1, old, alice, carol, dave):
                await ws.close()
        run_async(go(), timeout=60 * SLOW)


class ClusterStreamsRedisDownTest(unittest.TestCase):
    def test_local_delivery_goes_on_without_positions(self):
        cluster = Cluster(1)
        node = cluster.nodes[0]
        try:
            async def go():
                bob = await open_v2(cluster.ports()[0], "cd_bob")
                alice, _ = await open_router(cluster.ports()[0], "cd_alice")
                await send_json(alice, {"type": "send", "to": "cd_bob", "data": "up", "id": 1})
                m, _ = await recv_until(bob, is_message)
                self.assertEqual((m["offset"], m["data"]), (1, "up"))
                cluster.redis.stop()
                deadline = time.monotonic() + 10 * SLOW
                while node.healthz().get("redis") != "down" and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                self.assertEqual(node.healthz().get("redis"), "down")
                await send_json(alice, {"type": "send", "to": "cd_bob", "data": "down", "id": 2})
                self.assertEqual(await acked(alice, 2), {"type": "ack", "id": 2, "delivered": 1})
                m, _ = await recv_until(bob, is_message)
                self.assertEqual(m, {"type": "message", "from": "cd_alice", "to": "cd_bob", "data": "down"})
                for ws in (bob, alice):
                    await ws.close()
            run_async(go(), timeout=60 * SLOW)
            cluster.stop_and_check()
        finally:
            cluster.cleanup()


if __name__ == "__main__":
    unittest.main()
