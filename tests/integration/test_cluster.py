"""Three switchboard nodes on one Redis behave as one server (issue 12): sends, broadcasts, rooms,
presence and user lists across nodes, not_found, the meaning of `delivered`, per-sender ordering.

One redis-server and three nodes for the whole class; each test uses its own user names.
"""

import asyncio
import json
import socket
import unittest

from clusterkit import ClusterTestCase, wait_users
from harness import (QUIET, RECV_TIMEOUT, open_router, recv_json, recv_until, run_async,
                     send_json)


def is_type(t):
    return lambda m: m.get("type") == t


async def expect_no_message(ws, about=None, wait=None):
    """Nothing but presence events about others arrives for a while (the tests' own `users` probes come
    and go as anonymous users); `about`: a presence event about this user counts too."""
    deadline = asyncio.get_running_loop().time() + (wait or QUIET)
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return
        try:
            m = json.loads(await asyncio.wait_for(ws.recv(), left))
        except asyncio.TimeoutError:
            return
        if m.get("type") != "presence" or (about and m.get("user") == about):
            raise AssertionError("unexpected message: %r" % (m,))


def redis_publish(port, channel, payload):
    """PUBLISH through a raw RESP connection, as any Redis client could; returns the receiver count."""
    parts = [b"PUBLISH", channel.encode(), payload]
    cmd = b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection(("127.0.0.1", port), timeout=RECV_TIMEOUT) as sock:
        sock.sendall(cmd)
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(64)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b":"), reply
    return int(reply[1:])


class ClusterTest(ClusterTestCase):
    async def visible_everywhere(self, *names):
        for port in self.ports:
            await wait_users(port, names)

    def test_invalid_utf8_from_redis_reaches_nobody(self):
        """Issue 18: whatever a Redis client publishes on the cluster's channels, a text frame carries
        UTF-8 only; a delivery that is not UTF-8 is ignored, and the clients stay connected and served."""
        async def go():
            ws, _ = await open_router(self.ports[0], "sb_utf8")
            await self.visible_everywhere("sb_utf8")
            channel = self.cluster.prefix + ".all"
            head = b"B 0 evil\n"
            for bad in (b'{"type":"message","from":"@server","data":"\xff"}', b'"\xc3"', b'"\xed\xa0\x80"'):
                self.assertGreaterEqual(redis_publish(self.cluster.redis.port, channel, head + bad), 1)
            good = {"type": "message", "from": "@server", "data": "after"}
            redis_publish(self.cluster.redis.port, channel, head + json.dumps(good).encode())
            m, _ = await recv_until(ws, lambda m: m.get("type") == "message")
            self.assertEqual(m, good)  # the first message to arrive: the bad ones never did
            await ws.close()
        run_async(go())

    def test_send_both_ways(self):
        async def go():
            a, _ = await open_router(self.ports[0], "sb_alice")
            b, _ = await open_router(self.ports[1], "sb_bob")
            await self.visible_everywhere("sb_alice", "sb_bob")
            await send_json(a, {"type": "send", "to": "sb_bob", "data": {"n": 1}, "id": 1})
            m, _ = await recv_until(b, is_type("message"))
            self.assertEqual(m, {"type": "message", "from": "sb_alice", "to": "sb_bob", "data": {"n": 1}})
            ack, _ = await recv_until(a, is_type("ack"))
            self.assertEqual(ack, {"type": "ack", "id": 1, "delivered": 1})
            await send_json(b, {"type": "send", "to": "sb_alice", "data": "back", "id": "x"})
            m, _ = await recv_until(a, is_type("message"))
            self.assertEqual(m, {"type": "message", "from": "sb_bob", "to": "sb_alice", "data": "back"})
            ack, _ = await recv_until(b, is_type("ack"))
            self.assertEqual(ack["delivered"], 1)
            await a.close()
            await b.close()
        run_async(go())

    def test_user_on_two_nodes_gets_each_message_once_per_connection(self):
        async def go():
            c0, _ = await open_router(self.ports[0], "sb_carol")
            c1, _ = await open_router(self.ports[1], "sb_carol")
            d, _ = await open_router(self.ports[2], "sb_dave")
            await self.visible_everywhere("sb_carol", "sb_dave")
            await send_json(d, {"type": "send", "to": "sb_carol", "data": 7, "id": 1})
            for ws in (c0, c1):
                m, _ = await recv_until(ws, is_type("message"))
                self.assertEqual(m["data"], 7)
                await expect_no_message(ws)
            ack, _ = await recv_until(d, is_type("ack"))
            self.assertEqual(ack["delivered"], 2)  # two other nodes have sb_carol
            # From a node that has one of her connections: 1 local connection + 1 other node.
            e, _ = await open_router(self.ports[0], "sb_erin")
            await send_json(e, {"type": "send", "to": "sb_carol", "data": 8, "id": 2})
            for ws in (c0, c1):
                m, _ = await recv_until(ws, is_type("message"))
                self.assertEqual(m["data"], 8)
                await expect_no_message(ws)
            ack, _ = await recv_until(e, is_type("ack"))
            self.assertEqual(ack["delivered"], 2)
            for ws in (c0, c1, d, e):
                await ws.close()
        run_async(go())

    def test_broadcast_reaches_every_other_connection_of_the_cluster(self):
        async def go():
            conns = []
            for i, port in enumerate(self.ports):
                ws, _ = await open_router(port, "sb_bc%d" % i)
                conns.append(ws)
            await self.visible_everywhere("sb_bc0", "sb_bc1", "sb_bc2")
            await send_json(conns[1], {"type": "broadcast", "data": "to all", "id": 5})
            for i in (0, 2):
                m, _ = await recv_until(conns[i], lambda m: m.get("type") == "message")
                self.assertEqual(m, {"type": "message", "from": "sb_bc1", "data": "to all"})
            ack, _ = await recv_until(conns[1], is_type("ack"))
            self.assertGreaterEqual(ack["delivered"], 2)
            await expect_no_message(conns[1])  # the sender does not get its own broadcast back
            for ws in conns:
                await ws.close()
        run_async(go())

    def test_room_publish_spans_nodes_and_only_members_get_it(self):
        async def go():
            members = []
            for i, port in enumerate(self.ports):
                ws, _ = await open_router(port, "sb_room%d" % i)
                await send_json(ws, {"type": "join", "room": "sb_lobby", "id": "j"})
                await recv_until(ws, is_type("ack"))
                members.append(ws)
            outsider, _ = await open_router(self.ports[2], "sb_outsider")
            await self.visible_everywhere("sb_room0", "sb_room1", "sb_room2", "sb_outsider")
            await send_json(members[0], {"type": "publish", "room": "sb_lobby", "data": [1, 2], "id": 9})
            for ws in members[1:]:
                m, _ = await recv_until(ws, is_type("message"))
                self.assertEqual(m, {"type": "message", "from": "sb_room0", "room": "sb_lobby", "data": [1, 2]})
            ack, _ = await recv_until(members[0], is_type("ack"))
            self.assertEqual(ack["delivered"], 2)  # two other nodes have members (PROTOCOL.md, Cluster)
            await expect_no_message(members[0])
            await expect_no_message(outsider)
            # A member who left gets nothing more.
            await send_json(members[2], {"type": "leave", "room": "sb_lobby", "id": "l"})
            await recv_until(members[2], is_type("ack"))
            await send_json(members[1], {"type": "publish", "room": "sb_lobby", "data": "again"})
            m, _ = await recv_until(members[0], is_type("message"))
            self.assertEqual(m["data"], "again")
            await expect_no_message(members[2])
            for ws in members + [outsider]:
                await ws.close()
        run_async(go())

    def test_presence_and_user_lists_agree_on_every_node(self):
        async def go():
            watchers = []
            for port in self.ports:
                ws, _ = await open_router(port, "sb_watch%d" % port)
                watchers.append(ws)
            names = ["sb_watch%d" % p for p in self.ports]
            await self.visible_everywhere(*names)
            # A user's first connection anywhere: every watcher gets one join.
            f0, _ = await open_router(self.ports[2], "sb_frank")
            for ws in watchers:
                m, _ = await recv_until(ws, lambda m: m.get("type") == "presence" and m.get("user") == "sb_frank")
                self.assertEqual(m["event"], "join")
            # A second connection elsewhere: no new join; its welcome lists the cluster's users.
            f1, welcome = await open_router(self.ports[0], "sb_frank")
            self.assertTrue(set(names) <= set(welcome["users"]), welcome)
            self.assertEqual(welcome["users"], sorted(welcome["users"]))
            lists = [await wait_users(p, names + ["sb_frank"]) for p in self.ports]
            self.assertEqual([sorted(set(l) & set(names + ["sb_frank"])) for l in lists],
                             [sorted(names + ["sb_frank"])] * 3)
            # Closing one of two connections: no leave; the last: every watcher gets one leave.
            await f0.close()
            for ws in watchers:
                await expect_no_message(ws, about="sb_frank", wait=QUIET * 3)
            await f1.close()
            for ws in watchers:
                m, skipped = await recv_until(ws, lambda m: m.get("type") == "presence" and m.get("user") == "sb_frank")
                self.assertEqual(m["event"], "leave")
            for p in self.ports:
                await wait_users(p, names, absent=["sb_frank"])
            for ws in watchers:
                await ws.close()
        run_async(go())

    def test_not_found_only_when_online_nowhere(self):
        async def go():
            g, _ = await open_router(self.ports[0], "sb_gina")
            h, _ = await open_router(self.ports[2], "sb_hank")
            await self.visible_everywhere("sb_gina", "sb_hank")
            await send_json(g, {"type": "send", "to": "sb_nobody_here", "data": 1, "id": 1})
            e, _ = await recv_until(g, is_type("error"))
            self.assertEqual((e["code"], e["id"]), ("not_found", 1))
            await send_json(g, {"type": "send", "to": ["sb_hank", "sb_nobody_here"], "data": 2, "id": 2})
            e, _ = await recv_until(g, is_type("error"))
            self.assertEqual(e["code"], "not_found")
            self.assertIn("sb_nobody_here", e["message"])
            self.assertNotIn("sb_hank", e["message"])
            m, _ = await recv_until(h, is_type("message"))  # the online one still got it
            self.assertEqual(m["data"], 2)
            await h.close()
            for p in self.ports:
                await wait_users(p, ["sb_gina"], absent=["sb_hank"])
            await send_json(g, {"type": "send", "to": "sb_hank", "data": 3, "id": 3})
            e, _ = await recv_until(g, is_type("error"))
            self.assertEqual(e["code"], "not_found")
            await g.close()
        run_async(go())

    def test_per_sender_order_across_nodes_under_load(self):
        n_each = 5000  # two senders on two nodes: 10,000 numbered messages to a receiver on a third

        async def go():
            r, _ = await open_router(self.ports[2], "sb_rcv")
            s0, _ = await open_router(self.ports[0], "sb_snd0")
            s1, _ = await open_router(self.ports[1], "sb_snd1")
            await self.visible_everywhere("sb_rcv", "sb_snd0", "sb_snd1")

            async def sender(ws):
                for i in range(n_each):
                    await ws.send('{"type":"send","to":"sb_rcv","data":%d}' % i)

            async def receiver():
                last = {"sb_snd0": -1, "sb_snd1": -1}
                got = 0
                while got < 2 * n_each:
                    m = json.loads(await asyncio.wait_for(r.recv(), RECV_TIMEOUT * 2))
                    if m.get("type") != "message":
                        continue
                    self.assertEqual(m["data"], last[m["from"]] + 1, "out of order from %s" % m["from"])
                    last[m["from"]] = m["data"]
                    got += 1
                return last

            last, _, _ = await asyncio.gather(receiver(), sender(s0), sender(s1))
            self.assertEqual(last, {"sb_snd0": n_each - 1, "sb_snd1": n_each - 1})
            for ws in (r, s0, s1):
                await ws.close()
        run_async(go(), timeout=120)

    def test_metrics_and_healthz_report_the_cluster(self):
        health = self.cluster.nodes[0].healthz()
        self.assertEqual((health["status"], health["redis"]), ("ok", "up"))
        m = self.cluster.nodes[0].metrics()
        self.assertEqual(m.get("switchboard_redis_up"), 1)
        self.assertEqual(m.get("switchboard_cluster_nodes_alive"), 2)
        for name in ("switchboard_cluster_publishes_total", "switchboard_cluster_messages_in_total",
                     "switchboard_cluster_presence_out_total", "switchboard_cluster_presence_in_total",
                     "switchboard_cluster_dropped_total", "switchboard_cluster_reconnects_total"):
            self.assertTrue(m.has(name), name)
        self.assertGreater(m.get("switchboard_cluster_publishes_total"), 0)


if __name__ == "__main__":
    unittest.main()
