"""The cluster's failures (issue 12): a node killed with SIGKILL, Redis stopped and started again,
Redis answering slowly (SIGSTOP for 2 s), and a send whose answer Redis holds back, which must not
stall the event loop that carries its sender (its reply comes when the node's bound passes). Each
test has its own Redis and nodes (--node-ttl 3)."""

import asyncio
import signal
import time
import unittest

from clusterkit import NODE_TTL, Cluster, wait_users
from harness import RECV_TIMEOUT, SLOW, open_router, recv_until, run_async, send_json


def is_type(t):
    return lambda m: m.get("type") == t


def presence_of(user, event):
    return lambda m: m.get("type") == "presence" and m.get("user") == user and m.get("event") == event


class ClusterFailureTest(unittest.TestCase):
    def setUp(self):
        self.cluster = None

    def tearDown(self):
        if self.cluster:
            self.cluster.stop_and_check()

    def start(self, n, extra_args=()):
        self.cluster = Cluster(n, extra_args=extra_args)
        return self.cluster.ports()

    def run(self, result=None):
        result = super().run(result)
        if result and (result.failures or result.errors) and self.cluster and self.cluster.nodes:
            print(self.cluster.stderr())
        return result

    def test_node_sigkill_its_users_leave_within_node_ttl(self):
        ports = self.start(3)

        async def go():
            w0, _ = await open_router(ports[0], "sb_w0")
            w1, _ = await open_router(ports[1], "sb_w1")
            doomed, _ = await open_router(ports[2], "sb_doomed")
            for p in ports:
                await wait_users(p, ["sb_w0", "sb_w1", "sb_doomed"])
            killed_at = time.monotonic()
            self.cluster.nodes[2].proc.send_signal(signal.SIGKILL)
            for ws in (w0, w1):
                await recv_until(ws, presence_of("sb_doomed", "leave"), timeout=NODE_TTL + 2 * SLOW + 1)
            elapsed = time.monotonic() - killed_at
            # within --node-ttl, plus a margin for the test's own polling on a shared machine
            self.assertLess(elapsed, NODE_TTL + 2 * SLOW + 1)
            for p in ports[:2]:
                await wait_users(p, ["sb_w0", "sb_w1"], absent=["sb_doomed"])
            # Nothing else is disturbed: the survivors still talk across nodes.
            await send_json(w0, {"type": "send", "to": "sb_w1", "data": "still here", "id": 1})
            m, _ = await recv_until(w1, is_type("message"))
            self.assertEqual(m["data"], "still here")
            ack, _ = await recv_until(w0, is_type("ack"))
            self.assertEqual(ack["delivered"], 1)
            await send_json(w0, {"type": "send", "to": "sb_doomed", "data": 1, "id": 2})
            e, _ = await recv_until(w0, is_type("error"))
            self.assertEqual(e["code"], "not_found")
            m = self.cluster.nodes[0].metrics()
            self.assertEqual(m.get("switchboard_cluster_nodes_alive"), 1)
            await w0.close()
            await w1.close()
        run_async(go(), timeout=60 * SLOW)
        self.cluster.nodes[2].cleanup()
        del self.cluster.nodes[2]

    def test_redis_stopped_nodes_serve_locally_then_resume(self):
        ports = self.start(2)
        node0 = self.cluster.nodes[0]

        async def go():
            a, _ = await open_router(ports[0], "sb_a")
            a2, _ = await open_router(ports[0], "sb_a2")
            b, _ = await open_router(ports[1], "sb_b")
            for p in ports:
                await wait_users(p, ["sb_a", "sb_a2", "sb_b"])
            self.cluster.redis.stop()
            deadline = time.monotonic() + 10 * SLOW
            while node0.healthz().get("redis") != "down" and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            health = node0.healthz()
            self.assertEqual((health["status"], health["redis"]), ("degraded", "down"))
            # Local traffic: sends, rooms, presence.
            await send_json(a, {"type": "send", "to": "sb_a2", "data": "local", "id": 1})
            m, _ = await recv_until(a2, is_type("message"))
            self.assertEqual(m["data"], "local")
            for ws in (a, a2):
                await send_json(ws, {"type": "join", "room": "sb_r", "id": "j"})
                await recv_until(ws, is_type("ack"))
            await send_json(a, {"type": "publish", "room": "sb_r", "data": "room", "id": 2})
            m, _ = await recv_until(a2, is_type("message"))
            self.assertEqual(m["data"], "room")
            c, _ = await open_router(ports[0], "sb_c")
            await recv_until(a, presence_of("sb_c", "join"))
            # Cross-node: dropped and counted, not queued.
            dropped = node0.metrics().get("switchboard_cluster_dropped_total")
            await send_json(a, {"type": "send", "to": "sb_b", "data": "lost", "id": 3})
            ack, _ = await recv_until(a, is_type("ack"))
            self.assertEqual(ack["delivered"], 0)
            await send_json(a, {"type": "broadcast", "data": "lost too"})
            deadline = time.monotonic() + RECV_TIMEOUT
            while node0.metrics().get("switchboard_cluster_dropped_total") < dropped + 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            m = node0.metrics()
            self.assertGreaterEqual(m.get("switchboard_cluster_dropped_total"), dropped + 2)
            self.assertEqual(m.get("switchboard_redis_up"), 0)
            self.assertEqual(m.get("switchboard_cluster_queue_bytes"), 0)
            # Redis back: the nodes reconnect, rebuild presence, and cross-node traffic resumes.
            self.cluster.redis.start()
            self.cluster.wait_redis_up(timeout=15 * SLOW)
            for p in ports:
                await wait_users(p, ["sb_a", "sb_a2", "sb_b", "sb_c"], timeout=10 * SLOW)
            await send_json(a, {"type": "send", "to": "sb_b", "data": "resumed", "id": 4})
            m, _ = await recv_until(b, lambda m: m.get("type") == "message" and m.get("data") == "resumed")
            await send_json(b, {"type": "send", "to": "sb_c", "data": "and back", "id": 5})
            m, _ = await recv_until(c, lambda m: m.get("type") == "message" and m.get("from") == "sb_b")
            self.assertEqual(m["data"], "and back")
            self.assertGreater(node0.metrics().get("switchboard_cluster_reconnects_total"), 0)
            for ws in (a, a2, b, c):
                await ws.close()
        run_async(go(), timeout=90 * SLOW)

    def test_slow_redis_never_blocks_local_traffic(self):
        # A TTL well above the pause: this Redis is slow, not gone (the test above covers gone).
        ports = self.start(2, ["--node-ttl", "30"])

        async def go():
            a, _ = await open_router(ports[0], "sb_sa")
            a2, _ = await open_router(ports[0], "sb_sa2")
            b, _ = await open_router(ports[1], "sb_sb")
            for p in ports:
                await wait_users(p, ["sb_sa", "sb_sa2", "sb_sb"])
            self.cluster.redis.pause()
            try:
                # Redis holds every command for 2 s: local sends and replies keep flowing meanwhile (Redis
                # stays stopped until they are all done, so waiting for it would never end: a timeout).
                paused_at = time.monotonic()
                for i in range(50):
                    await send_json(a, {"type": "send", "to": ["sb_sa2", "sb_sb"], "data": i, "id": i})
                    m, _ = await recv_until(a2, is_type("message"))
                    self.assertEqual(m["data"], i)
                    await send_json(a2, {"type": "ping"})
                    await recv_until(a2, is_type("pong"))
                self.assertEqual(self.cluster.nodes[0].healthz()["connections"], 2)
                await asyncio.sleep(max(0.0, 2.0 - (time.monotonic() - paused_at)))
            finally:
                self.cluster.redis.resume()
            # What waited for Redis arrives afterwards, in order.
            for i in range(50):
                m, _ = await recv_until(b, is_type("message"), timeout=10 * SLOW)
                self.assertEqual(m["data"], i)
            for ws in (a, a2, b):
                await ws.close()
        run_async(go(), timeout=60 * SLOW)

    def test_send_to_an_unlisted_user_never_stalls_its_loop(self):
        # One event loop per node: every connection of node 0 shares it. A send to a user node 0 does
        # not list waits for Redis's answer (PUBLISH's count of nodes); Redis is frozen, so that answer
        # never comes and the node answers not_found when its bound passes. Meanwhile the loop serves
        # carol, and alice's own later reply comes after that answer, in the order she asked.
        ports = self.start(2, ["--node-ttl", "30", "--threads", "1"])
        node0 = self.cluster.nodes[0]

        async def go():
            a, _ = await open_router(ports[0], "sb_ua")
            c, _ = await open_router(ports[0], "sb_uc")
            d, _ = await open_router(ports[0], "sb_ud")
            b, _ = await open_router(ports[1], "sb_ub")
            for p in ports:
                await wait_users(p, ["sb_ua", "sb_uc", "sb_ud", "sb_ub"])
            # Redis answering: a user online nowhere is not_found once Redis said no node holds it.
            await send_json(a, {"type": "send", "to": "sb_nobody", "data": 0, "id": 0})
            m, _ = await recv_until(a, is_type("error"))
            self.assertEqual((m["code"], m["id"]), ("not_found", 0))
            unanswered = node0.metrics().get("switchboard_cluster_asks_unanswered_total")
            events = []

            async def read_alice():
                for _ in range(3):
                    m, _ = await recv_until(a, lambda m: m.get("type") != "presence", timeout=10 * SLOW)
                    events.append(("alice", m))

            self.cluster.redis.pause()
            try:
                await send_json(a, {"type": "send", "to": ["sb_ghost", "sb_uc"], "data": 1, "id": 1})
                await send_json(a, {"type": "ping"})
                reader = asyncio.ensure_future(read_alice())
                # carol, on the same loop: a message from alice, her own ack and pong, before alice's answer
                m, _ = await recv_until(c, is_type("message"))
                events.append(("carol", m))
                await send_json(c, {"type": "send", "to": "sb_ua", "data": 2, "id": 2})
                m, _ = await recv_until(c, is_type("ack"))
                events.append(("carol", m))
                await send_json(c, {"type": "ping"})
                m, _ = await recv_until(c, is_type("pong"))
                events.append(("carol", m))
                # a connection that is gone before its answer comes: the answer is dropped, nothing else
                await send_json(d, {"type": "send", "to": "sb_ghost", "data": 3, "id": 3})
                d.transport.abort()
                await reader
            finally:
                self.cluster.redis.resume()
            got = [(who, m.get("type"), m.get("id")) for who, m in events]
            self.assertEqual(got[:3], [("carol", "message", None), ("carol", "ack", 2), ("carol", "pong", None)],
                             "the loop waited for Redis: %r" % got)
            # alice's replies in the order she asked, and what came for her meanwhile behind them
            alice = [m for who, m in events if who == "alice"]
            self.assertEqual([(m["type"], m.get("id")) for m in alice], [("error", 1), ("pong", None), ("message", None)],
                             repr(alice))
            self.assertEqual((alice[0]["code"], alice[0]["message"]), ("not_found", "not online: sb_ghost"))
            self.assertEqual(alice[2]["data"], 2)
            self.assertGreaterEqual(node0.metrics().get("switchboard_cluster_asks_unanswered_total"), unanswered + 1)
            # Redis back: sends cross nodes again; the node lived through the connection that left early.
            await send_json(a, {"type": "send", "to": "sb_ub", "data": 4, "id": 4})
            m, _ = await recv_until(b, is_type("message"), timeout=10 * SLOW)
            self.assertEqual(m["data"], 4)
            m, _ = await recv_until(a, is_type("ack"), timeout=10 * SLOW)
            self.assertEqual(m["id"], 4)
            metrics = node0.metrics()
            self.assertTrue(metrics.has("switchboard_cluster_sends_waiting"))
            self.assertEqual(metrics.get("switchboard_cluster_sends_waiting"), 0)
            for ws in (a, b, c):
                await ws.close()
        run_async(go(), timeout=60 * SLOW)

    def test_redis_that_stops_answering_counts_as_down_then_comes_back(self):
        ports = self.start(2)
        node0 = self.cluster.nodes[0]

        def wait_redis(state, timeout):
            deadline = time.monotonic() + timeout
            while node0.healthz().get("redis") != state:
                if time.monotonic() > deadline:
                    raise AssertionError("redis never %s: %r" % (state, node0.healthz()))
                time.sleep(0.1)

        self.cluster.redis.pause()
        try:
            # Frozen, not closed: the connection stays up, but nothing answers for --node-ttl.
            wait_redis("down", NODE_TTL + 5 * SLOW)
            self.assertEqual(node0.healthz()["status"], "degraded")
        finally:
            self.cluster.redis.resume()
        wait_redis("up", 15 * SLOW)

        async def go():
            a, _ = await open_router(ports[0], "sb_fa")
            b, _ = await open_router(ports[1], "sb_fb")
            for p in ports:
                await wait_users(p, ["sb_fa", "sb_fb"])
            await send_json(a, {"type": "send", "to": "sb_fb", "data": "after", "id": 1})
            m, _ = await recv_until(b, is_type("message"))
            self.assertEqual(m["data"], "after")
            await a.close()
            await b.close()
        run_async(go(), timeout=30 * SLOW)


if __name__ == "__main__":
    unittest.main()
