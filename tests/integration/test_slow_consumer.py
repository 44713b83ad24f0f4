"""A client that never reads must not hold up the others: its outbox overflows and it is closed.

The server's kernel send buffer for the slow socket absorbs data before anything counts as unsent
(on Linux it autotunes up to net.ipv4.tcp_wmem's maximum, 4 MiB by default, even towards a peer
with a 4 KiB receive buffer), so the sender broadcasts at least 400 messages of 4 KiB and keeps
going, bounded, until the slow consumer has been dropped: at most enough to overflow that maximum
plus --outbox with a margin.
"""

import asyncio
import socket
import time
import unittest

import harness
from harness import SLOW, open_router, recv_json, send_json

OUTBOX = 262144
MIN_COUNT = 400
AFTER_DROP = 50  # messages still broadcast after the drop: the rest keep flowing
SIZE = 4096
WINDOW = 16  # messages the sender may be ahead of the fast readers (64 KiB << --outbox)


def kernel_wmem_max():
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 1024 * 1024


MAX_COUNT = max(MIN_COUNT, int((kernel_wmem_max() + OUTBOX) * 1.5 / SIZE) + AFTER_DROP)


class SlowConsumerTest(harness.ServerTestCase):
    server_args = ["--outbox", str(OUTBOX)]

    def test_slow_consumer_dropped_others_get_everything(self):
        srv = self.server
        srv.wait_connections(0)
        m0 = srv.metrics()
        slow0 = m0.get("switchboard_slow_consumers_total")

        # The slow client: completes the handshake, then never reads.
        slow = harness.RawWS(self.port, "/ws?user=slowpoke", rcvbuf=4096)
        self.addCleanup(slow.close_socket)

        async def go():
            r1, _ = await open_router(self.port, "fast1")
            r2, _ = await open_router(self.port, "fast2")
            sender, _ = await open_router(self.port, "sender")
            for ws, n in ((r1, 2), (r2, 1)):  # presence joins of the later ones
                for _ in range(n):
                    p = await recv_json(ws)
                    self.assertEqual(p.get("type"), "presence", p)
            srv.wait_connections(4)

            # The fast clients read as fast as they can; the sender keeps at most WINDOW messages
            # ahead of the slower of them, so their outboxes stay far below --outbox whatever the
            # scheduling, while the never-reading client's outbox grows without bound.
            progress = asyncio.Condition()
            got = {"fast1": [], "fast2": []}
            state = {"sent": 0, "done": False}

            async def reader(name, ws):
                deadline = time.monotonic() + 120 * SLOW
                last = time.monotonic()
                while time.monotonic() < deadline and time.monotonic() - last < 20 * SLOW:
                    if state["done"] and len(got[name]) >= state["sent"]:
                        return
                    try:
                        m = await recv_json(ws, timeout=0.5)
                    except asyncio.TimeoutError:
                        continue
                    last = time.monotonic()
                    if m.get("type") == "presence":
                        self.assertEqual(m, {"type": "presence", "event": "leave", "user": "slowpoke"})
                        continue
                    self.assertEqual(m.get("type"), "message", m)
                    self.assertEqual(m.get("from"), "sender")
                    async with progress:
                        got[name].append(m["data"]["seq"])
                        progress.notify_all()

            t1 = asyncio.ensure_future(reader("fast1", r1))
            t2 = asyncio.ensure_future(reader("fast2", r2))
            pad = "x" * SIZE
            dropped_at = None
            for i in range(MAX_COUNT):
                async with progress:
                    await asyncio.wait_for(
                        progress.wait_for(lambda: t1.done() or t2.done()
                                          or min(len(got["fast1"]), len(got["fast2"])) >= i - WINDOW),
                        20 * SLOW)
                if t1.done() or t2.done():
                    break
                await send_json(sender, {"type": "broadcast", "data": {"seq": i, "pad": pad}})
                state["sent"] = i + 1
                if dropped_at is None and i % 50 == 49:
                    if srv.metrics().get("switchboard_slow_consumers_total") > slow0:
                        dropped_at = i
                if i + 1 >= MIN_COUNT and dropped_at is not None and i >= dropped_at + AFTER_DROP:
                    break
            state["done"] = True
            async with progress:
                progress.notify_all()
            await asyncio.gather(t1, t2)
            sent = state["sent"]
            self.assertGreaterEqual(sent, MIN_COUNT)
            self.assertEqual(got["fast1"], list(range(sent)), "fast1 lost or reordered messages")
            self.assertEqual(got["fast2"], list(range(sent)), "fast2 lost or reordered messages")

            # The slow one is closed: the counter moved and only 3 connections remain.
            deadline = time.monotonic() + 15 * SLOW
            m1 = None
            while time.monotonic() < deadline:
                m1 = srv.metrics()
                if (m1.get("switchboard_slow_consumers_total") >= slow0 + 1
                        and m1.get("switchboard_connections_open") == 3):
                    break
                await asyncio.sleep(0.1)
            self.assertGreaterEqual(m1.get("switchboard_slow_consumers_total"), slow0 + 1,
                                    "slow consumer not dropped after %d messages of %d bytes" % (sent, SIZE))
            self.assertEqual(m1.get("switchboard_connections_open"), 3, m1.text)
            self.assertEqual(srv.healthz()["connections"], 3)

            # The others still work.
            await send_json(r1, {"type": "ping"})
            _, skipped = await harness.recv_until(r1, lambda m: m == {"type": "pong"})
            for m in skipped:
                self.assertEqual(m, {"type": "presence", "event": "leave", "user": "slowpoke"})
            for ws in (r1, r2, sender):
                await ws.close()
            return sent

        sent = harness.run_async(go(), timeout=180 * SLOW)

        # What the slow client finally sees when it does read: queued data, then (if the server
        # could still send it) a close frame 1008, then the end of the TCP connection.
        deadline = time.monotonic() + 30 * SLOW
        close_code, frames, seqs = None, 0, 0
        while time.monotonic() < deadline and frames < 100000:
            try:
                f = slow.recv_frame(timeout=max(0.1, deadline - time.monotonic()))
            except socket.timeout:
                self.fail("slow client's connection still open after draining %d frames" % frames)
            if f is None:
                break
            frames += 1
            if f.opcode == harness.OP_TEXT and b'"seq"' in f.payload:
                seqs += 1
            if f.opcode == harness.OP_CLOSE:
                close_code = f.close_code
                slow.expect_eof()
                break
        self.assertIn(close_code, (None, 1008), "slow consumer closed with %r" % close_code)
        self.assertLess(seqs, sent, "the slow client got all %d messages: it was not cut off" % sent)
        self.assertEqual(srv.get("/healthz").status, 200)


if __name__ == "__main__":
    unittest.main()
