"""Recovery across nodes (issue 21, --redis): history lives in Redis (app/cluster/clusterhist.c), so a
protocol 2 client that leaves one node recovers on another, and what it recovers and what it gets live
add up to every message once (app/hub/hubsync.c).

  another node      alice leaves node A; what was sent to her, to everyone and to her room meanwhile
                    (from either node, while she had no connection at all, and Redis's scripts
                    flushed) comes back on node B: the welcome and `joined` say recovered, the replay
                    follows in order, before the join's ack
  lost on the way   a node's subscriber connection cut mid-flood: the hole is read from the history
                    (every offset once, in order), or, past the history, the connection closed 1013
                    and its client told recovered: false when it comes back
  too old           a position older than --history-size gives recovered: false and no replay
  under a flood     while messages to her stream go on from the other node, she reconnects with her
                    position again and again: every offset exactly once, in order
  Redis down        the welcome says the positions are unknown (epoch "") and recovered: false
"""

import asyncio
import time
import unittest

import harness
import websockets
from clusterkit import Cluster, ClusterTestCase, wait_users
from harness import SLOW, open_router, recv_json, recv_until, run_async, send_json


def is_message(m):
    return m.get("type") == "message"


async def open_v2(port, user, since=""):
    ws = await harness.ws_open(port, "/ws?user=%s&v=2%s" % (user, since))
    welcome = await recv_json(ws)
    assert welcome["type"] == "welcome", welcome
    return ws, welcome


def since_query(streams):
    return "&since_user=%s:%d&since_broadcast=%s:%d" % (
        streams["user"]["epoch"], streams["user"]["offset"],
        streams["broadcast"]["epoch"], streams["broadcast"]["offset"])


async def acked(ws, i):
    m, before = await recv_until(ws, lambda m: m.get("type") in ("ack", "error") and m.get("id") == i)
    return m, before


class ClusterRecoveryTest(ClusterTestCase):
    NODES = 2
    EXTRA_ARGS = ("--history-size", "1000")  # more than a flood sends while a node reconnects to Redis

    def test_a_client_recovers_on_another_node(self):
        async def go():
            a, b = self.ports
            alice, welcome = await open_v2(a, "cr_alice")
            streams = welcome["streams"]
            self.assertEqual(len(streams["user"]["epoch"]), 8)
            await send_json(alice, {"type": "join", "room": "cr_hall", "id": "j"})
            joined, _ = await recv_until(alice, lambda m: m.get("type") == "joined")
            await acked(alice, "j")
            bob, _ = await open_router(b, "cr_bob")
            carol, _ = await open_router(a, "cr_carol")
            await send_json(carol, {"type": "join", "room": "cr_hall", "id": "j"})
            await acked(carol, "j")
            for p in self.ports:
                await wait_users(p, ["cr_alice", "cr_bob", "cr_carol"])
            await send_json(bob, {"type": "send", "to": "cr_alice", "data": "one", "id": 1})
            one, _ = await recv_until(alice, is_message)
            self.assertEqual((one["epoch"], one["offset"], one["data"]), (streams["user"]["epoch"], streams["user"]["offset"] + 1, "one"))
            await alice.close()
            for p in self.ports:
                await wait_users(p, ["cr_bob", "cr_carol"], absent=["cr_alice"])
            # The scripts forgotten (SCRIPT FLUSH): the nodes run them again with EVAL, which loads them.
            self.assertEqual(self.cluster.redis.command("SCRIPT", "FLUSH"), b"+OK")
            # Sent while alice has no connection anywhere, from both nodes.
            await send_json(bob, {"type": "send", "to": "cr_alice", "data": "two", "id": 2})
            self.assertEqual((await acked(bob, 2))[0]["code"], "not_found")
            await send_json(carol, {"type": "send", "to": "cr_alice", "data": "three", "id": 3})
            self.assertEqual((await acked(carol, 3))[0]["code"], "not_found")
            await send_json(bob, {"type": "broadcast", "data": "four", "id": 4})
            await acked(bob, 4)
            await send_json(carol, {"type": "publish", "room": "cr_hall", "data": "five", "id": 5})
            await acked(carol, 5)
            # Back on node B, from where she was.
            at = {"user": {"epoch": one["epoch"], "offset": one["offset"]}, "broadcast": streams["broadcast"]}
            alice, welcome = await open_v2(b, "cr_alice", since_query(at))
            s = welcome["streams"]
            self.assertEqual(s["user"], {"epoch": one["epoch"], "offset": one["offset"] + 2, "recovered": True})
            self.assertEqual(s["broadcast"]["recovered"], True)
            self.assertEqual(s["broadcast"]["offset"], streams["broadcast"]["offset"] + 1)
            got = [(await recv_until(alice, is_message))[0] for _ in range(3)]
            self.assertEqual([(m["data"], m["offset"]) for m in got],
                             [("two", one["offset"] + 1), ("three", one["offset"] + 2), ("four", s["broadcast"]["offset"])])
            await send_json(alice, {"type": "join", "room": "cr_hall", "id": "k",
                                    "since": {"epoch": joined["epoch"], "offset": joined["offset"]}})
            rejoined, _ = await recv_until(alice, lambda m: m.get("type") == "joined")
            self.assertEqual(rejoined, {"type": "joined", "room": "cr_hall", "epoch": joined["epoch"],
                                        "offset": joined["offset"] + 1, "recovered": True})
            five, _ = await recv_until(alice, lambda m: m.get("type") in ("message", "ack"))
            self.assertEqual((five["type"], five["data"], five["room"], five["offset"]),
                             ("message", "five", "cr_hall", joined["offset"] + 1))
            ack, _ = await acked(alice, "k")
            self.assertEqual(ack["type"], "ack")
            # Live again: the next message follows on.
            await send_json(carol, {"type": "send", "to": "cr_alice", "data": "six", "id": 6})
            six, _ = await recv_until(alice, is_message)
            self.assertEqual((six["data"], six["offset"]), ("six", one["offset"] + 3))
            for ws in (alice, bob, carol):
                await ws.close()
        run_async(go(), timeout=60 * SLOW)

    def test_a_flood_across_reconnects_arrives_once_in_order(self):
        async def go():
            a, b = self.ports
            sender, _ = await open_router(a, "cf_sender")
            tgt, welcome = await open_v2(b, "cf_tgt")
            pos = welcome["streams"]
            seen = []
            total = 600

            async def flood():
                for i in range(total):
                    await send_json(sender, {"type": "send", "to": "cf_tgt", "data": i})
                    if i % 20 == 19:
                        await asyncio.sleep(0.005)
            task = asyncio.ensure_future(flood())
            for round_ in range(6):  # read some, then leave and come back on the other node
                for _ in range(40):
                    m, _ = await recv_until(tgt, is_message)
                    seen.append(m)
                    pos["user"] = {"epoch": m["epoch"], "offset": m["offset"]}
                await tgt.close()
                tgt, welcome = await open_v2(self.ports[round_ % 2], "cf_tgt", since_query(pos))
                self.assertIs(welcome["streams"]["user"]["recovered"], True, welcome)
            await task
            while len(seen) < total:
                m, _ = await recv_until(tgt, is_message)
                seen.append(m)
            self.assertEqual([m["data"] for m in seen], list(range(total)))
            first = seen[0]["offset"]
            self.assertEqual([m["offset"] for m in seen], list(range(first, first + total)))
            for ws in (sender, tgt):
                await ws.close()
        run_async(go(), timeout=120 * SLOW)


    def test_messages_lost_on_their_way_to_a_node_are_read_from_history(self):
        """Node B's subscriber connection is cut while messages to its client flow from node A: those
        published before B subscribed again never reach B live; the next one shows the hole, which B
        reads from the history, so the client still gets every offset once, in order."""
        async def go():
            a, b = self.ports
            sender, _ = await open_router(a, "cg_sender")
            tgt, welcome = await open_v2(b, "cg_tgt")
            for p in self.ports:
                await wait_users(p, ["cg_sender", "cg_tgt"])
            before = self.cluster.nodes[1].metrics().get("switchboard_cluster_gaps_read_total", 0)
            total, seen = 300, []
            for i in range(total):
                if i == 100:
                    self.cluster.redis.kill_client("switchboard-node1-sub")
                await send_json(sender, {"type": "send", "to": "cg_tgt", "data": i})
                if i % 10 == 9:
                    await asyncio.sleep(0.01)
            self.cluster.wait_redis_up()
            for p in self.ports:  # B lists the user again, so sends keep coming to it
                await wait_users(p, ["cg_sender", "cg_tgt"])
            await send_json(sender, {"type": "send", "to": "cg_tgt", "data": total, "id": "last"})
            await acked(sender, "last")
            while len(seen) < total + 1:
                m, _ = await recv_until(tgt, is_message)
                seen.append(m)
            lost = [i for i in range(total + 1) if i not in {m["data"] for m in seen}]
            self.assertEqual(lost, [])
            self.assertEqual([m["data"] for m in seen], list(range(total + 1)))
            first = seen[0]["offset"]
            self.assertEqual([m["offset"] for m in seen], list(range(first, first + total + 1)))
            self.assertGreater(self.cluster.nodes[1].metrics().get("switchboard_cluster_gaps_read_total", 0), before)
            for ws in (sender, tgt):
                await ws.close()
        run_async(go(), timeout=120 * SLOW)


class ClusterRecoveryTooOldTest(ClusterTestCase):
    NODES = 2
    EXTRA_ARGS = ("--history-size", "2")

    def test_a_gap_past_the_history_is_not_recovered(self):
        async def go():
            a, b = self.ports
            tgt, welcome = await open_v2(a, "co_tgt")
            pos = welcome["streams"]
            await tgt.close()
            bob, _ = await open_router(b, "co_bob")
            for i in range(3):
                await send_json(bob, {"type": "send", "to": "co_tgt", "data": i, "id": i})
                await acked(bob, i)
            tgt, welcome = await open_v2(b, "co_tgt", since_query(pos))
            self.assertEqual(welcome["streams"]["user"], {"epoch": pos["user"]["epoch"], "offset": pos["user"]["offset"] + 3,
                                                          "recovered": False})
            await send_json(bob, {"type": "send", "to": "co_tgt", "data": "live", "id": "l"})
            m, skipped = await recv_until(tgt, is_message)
            self.assertEqual((m["data"], m["offset"]), ("live", pos["user"]["offset"] + 4))
            self.assertFalse([x for x in skipped if is_message(x)])
            for ws in (tgt, bob):
                await ws.close()
        run_async(go(), timeout=60 * SLOW)


    def test_a_live_hole_past_the_history_closes_the_connection(self):
        """Node B loses more of its client's messages on their way from Redis than the history holds:
        rather than a silent hole, B closes the connection 1013, and the client, back from its
        position, is told recovered: false."""
        async def go():
            a, b = self.ports
            sender, _ = await open_router(a, "ch_sender")
            tgt, welcome = await open_v2(b, "ch_tgt")
            for p in self.ports:
                await wait_users(p, ["ch_sender", "ch_tgt"])
            await send_json(sender, {"type": "send", "to": "ch_tgt", "data": "first", "id": 0})
            first, _ = await recv_until(tgt, is_message)
            self.cluster.redis.kill_client("switchboard-node1-sub")
            for i in range(1, 6):  # sent at once: B is still reconnecting when they are published
                await send_json(sender, {"type": "send", "to": "ch_tgt", "data": i})
            self.cluster.wait_redis_up()
            for p in self.ports:
                await wait_users(p, ["ch_sender", "ch_tgt"])
            await send_json(sender, {"type": "send", "to": "ch_tgt", "data": "after", "id": "a"})
            await acked(sender, "a")
            got = []
            try:
                for _ in range(10):
                    got.append(await recv_json(tgt))
            except websockets.ConnectionClosed as e:
                self.assertEqual(e.rcvd.code, 1013, got)
            else:
                self.fail("not closed: %r" % got)
            msgs = [m for m in got if is_message(m)]  # before the hole only: nothing past it, no gap
            self.assertNotIn("after", [m["data"] for m in msgs])
            self.assertEqual([m["offset"] for m in msgs], list(range(first["offset"] + 1, first["offset"] + 1 + len(msgs))))
            at = {"user": {"epoch": first["epoch"], "offset": first["offset"]}, "broadcast": welcome["streams"]["broadcast"]}
            tgt, welcome = await open_v2(a, "ch_tgt", since_query(at))
            self.assertIs(welcome["streams"]["user"]["recovered"], False)
            for ws in (tgt, sender):
                await ws.close()
        run_async(go(), timeout=60 * SLOW)


class ClusterRecoveryRedisDownTest(unittest.TestCase):
    def test_positions_are_unknown_while_redis_is_down(self):
        cluster = Cluster(1)
        node = cluster.nodes[0]
        try:
            async def go():
                tgt, welcome = await open_v2(cluster.ports()[0], "cn_tgt")
                pos = welcome["streams"]
                await tgt.close()
                cluster.redis.stop()
                deadline = time.monotonic() + 10 * SLOW
                while node.healthz().get("redis") != "down" and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                tgt, welcome = await open_v2(cluster.ports()[0], "cn_tgt", since_query(pos))
                self.assertEqual(welcome["streams"], {"user": {"epoch": "", "offset": 0, "recovered": False},
                                                      "broadcast": {"epoch": "", "offset": 0, "recovered": False}})
                metrics = harness.http_get(cluster.ports()[0], "/metrics").body.decode()
                self.assertIn("switchboard_cluster_history_reads_failed_total 1", metrics)
                await tgt.close()
            run_async(go(), timeout=60 * SLOW)
            cluster.stop_and_check()
        finally:
            cluster.cleanup()


if __name__ == "__main__":
    unittest.main()
