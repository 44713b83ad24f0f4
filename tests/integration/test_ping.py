"""Server pings: --ping-interval 1; a silent peer is closed 1001, a live one stays."""

import asyncio
import socket
import time
import unittest

import harness
from harness import OP_CLOSE, OP_PING, SLOW, open_router, recv_json, send_json


class PingTest(harness.ServerTestCase):
    server_args = ["--ping-interval", "1"]

    def test_silent_peer_pinged_then_closed(self):
        ws = harness.RawWS(self.port, "/ws", protocols=["echo-protocol"])
        self.addCleanup(ws.close_socket)
        deadline = time.monotonic() + 10 * SLOW
        pings, close = 0, None
        for _ in range(1000):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                f = ws.recv_frame(timeout=remaining)
            except socket.timeout:
                break
            if f is None:
                break  # TCP closed
            if f.opcode == OP_PING:
                pings += 1  # never answered
            elif f.opcode == OP_CLOSE:
                close = f
                ws.expect_eof()
                break
            else:
                self.fail("unexpected frame %r" % f)
        self.assertGreaterEqual(pings, 1, "no ping from the server")
        self.assertTrue(close is not None or ws.eof,
                        "silent peer still connected after %.0f s" % (10 * SLOW))
        if close is not None:
            self.assertEqual(close.close_code, 1001, close)

    def test_pinged_peer_that_answers_stays(self):
        async def go():
            ws, _ = await open_router(self.port, "pinged")  # websockets answers pings itself
            await asyncio.sleep(4)
            await send_json(ws, {"type": "ping"})
            self.assertEqual(await recv_json(ws), {"type": "pong"})
            await ws.close()
            self.assertEqual(ws.close_code, 1000)
        harness.run_async(go())

    def test_raw_client_answering_pings_stays(self):
        ws = harness.RawWS(self.port, "/ws", protocols=["echo-protocol"])
        self.addCleanup(ws.close_socket)
        end = time.monotonic() + 4
        pings = 0
        for _ in range(1000):
            remaining = end - time.monotonic()
            if remaining <= 0:
                break
            try:
                f = ws.recv_frame(timeout=remaining)
            except socket.timeout:
                break
            self.assertIsNotNone(f, "closed although every ping was answered")
            self.assertNotEqual(f.opcode, OP_CLOSE, "closed although every ping was answered: %r" % f)
            if f.opcode == OP_PING:
                pings += 1
                ws.send_frame(harness.OP_PONG, f.payload)
        self.assertGreaterEqual(pings, 1)
        ws.send_text("alive?")
        op, data = ws.recv_message()
        self.assertEqual(data, b"alive?")


if __name__ == "__main__":
    unittest.main()
