"""Stream positions across nodes (issue 21, --redis): Redis gives each message of a stream (a user's,
a room's, the broadcast one) its position (app/cluster/clusterhist.c), so every node delivers the same.

  two tabs          a user with a protocol 2 connection on each of two nodes: messages sent to it from
                    both nodes reach both tabs with the same epoch and offsets, one more per message, in
                    the same order; a protocol 1 connection of the user gets them byte for byte as before
  rooms, broadcast  the same for a room's and the broadcast stream, from both nodes; a sender gets the
                    others' messages with those positions and never its own
  Redis down        a node goes on delivering to its own protocol 2 connections, without positions
  in-flight bound   past CLUSTER_INFLIGHT_MAX commands waiting for a paused Redis, each message goes
                    out once, in order
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


async def acked(ws, i, skipped=None):
    """The answer to command i; what came before it is appended to skipped (when given)."""
    m, before = await recv_until(ws, lambda m: m.get("type") in ("ack", "error") and m.get("id") == i)
    if skipped is not None:
        skipped.extend(before)
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

    def test_room_and_broadcast_positions_are_the_same_on_every_node(self):
        async def go():
            tab0 = await open_v2(self.ports[0], "cr_bob")
            tab1 = await open_v2(self.ports[1], "cr_bob")
            alice = await open_v2(self.ports[0], "cr_alice")
            dave, _ = await open_router(self.ports[1], "cr_dave")
            for ws in (tab0, tab1, alice, dave):
                await send_json(ws, {"type": "join", "room": "cr_lobby", "id": "j"})
                await acked(ws, "j")
            for p in self.ports:
                await wait_users(p, ["cr_bob", "cr_alice", "cr_dave"])
            alice_got = []  # what alice gets while waiting for her acks
            for i in range(MESSAGES):  # a room's stream, from both nodes in turn
                sender = alice if i % 2 == 0 else dave
                await send_json(sender, {"type": "publish", "room": "cr_lobby", "data": i, "id": i})
                await acked(sender, i, alice_got if sender is alice else None)
            for i in range(MESSAGES):  # the broadcast stream
                sender = alice if i % 2 == 0 else dave
                await send_json(sender, {"type": "broadcast", "data": "b%d" % i, "id": "b%d" % i})
                await acked(sender, "b%d" % i, alice_got if sender is alice else None)
            got = []
            for tab in (tab0, tab1):
                ms = []
                for i in range(2 * MESSAGES):
                    m, _ = await recv_until(tab, is_message)
                    ms.append(m)
                got.append(ms)
            self.assertEqual(got[0], got[1])
            room = [m for m in got[0] if m.get("room") == "cr_lobby"]
            everyone = [m for m in got[0] if "room" not in m]
            self.assertEqual(len(room), MESSAGES)
            self.assertEqual(len(everyone), MESSAGES)
            for stream, data in ((room, lambda i: i), (everyone, lambda i: "b%d" % i)):
                epoch, first = stream[0]["epoch"], stream[0]["offset"]
                self.assertEqual([(m["epoch"], m["offset"]) for m in stream],
                                 [(epoch, first + i) for i in range(MESSAGES)])
                self.assertEqual(sorted(m["data"] for m in stream), sorted(data(i) for i in range(MESSAGES)))
                for sender in ("cr_alice", "cr_dave"):  # each sender's in the order sent
                    mine = [m["data"] for m in stream if m["from"] == sender]
                    self.assertEqual(mine, [data(i) for i in range(MESSAGES) if (i % 2 == 0) == (sender == "cr_alice")])
            # The sender gets the others' messages with the same positions, never its own.
            alice_got = [m for m in alice_got if is_message(m)]
            while len(alice_got) < MESSAGES:
                m, _ = await recv_until(alice, is_message)
                alice_got.append(m)
            self.assertEqual(alice_got, [m for m in got[0] if m["from"] == "cr_dave"])
            for ws in (tab0, tab1, alice, dave):
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


class ClusterInflightBoundTest(unittest.TestCase):
    """More messages than the engine lets wait for Redis's answer (CLUSTER_INFLIGHT_MAX, 10000) while
    Redis is paused: the rest wait in the queue and each goes out once when Redis answers again (the
    queue's last batch once went out twice: a double free)."""

    COUNT = 12000

    def test_messages_past_the_inflight_bound_go_out_once_in_order(self):
        cluster = Cluster(2)
        try:
            async def go():
                bob = await open_v2(cluster.ports()[1], "ci_bob")
                alice, _ = await open_router(cluster.ports()[0], "ci_alice")
                await wait_users(cluster.ports()[0], ["ci_bob"])
                cluster.redis.pause()
                try:
                    for i in range(self.COUNT):
                        await send_json(alice, {"type": "send", "to": "ci_bob", "data": i})
                finally:
                    cluster.redis.resume()
                got = []
                while len(got) < self.COUNT:
                    m, _ = await recv_until(bob, is_message, timeout=10 * SLOW)
                    got.append(m)
                self.assertEqual([m["data"] for m in got], list(range(self.COUNT)))
                first = got[0]["offset"]
                self.assertEqual([m["offset"] for m in got], list(range(first, first + self.COUNT)))
                await harness.expect_quiet(bob)
                for ws in (bob, alice):
                    await ws.close()
            run_async(go(), timeout=120 * SLOW)
            cluster.stop_and_check()
        finally:
            cluster.cleanup()


if __name__ == "__main__":
    unittest.main()
