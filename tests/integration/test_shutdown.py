"""SIGTERM / SIGINT: every WebSocket gets close 1001, the process exits 0."""

import asyncio
import signal
import unittest

import harness
from harness import SLOW, open_router, recv_json


class ShutdownTest(harness.FreshServerMixin, unittest.TestCase):
    def shutdown_with(self, sig):
        srv = self.start_server()

        async def go():
            a, _ = await open_router(srv.port, "sd_a")
            b, _ = await open_router(srv.port, "sd_b")
            e = await harness.ws_open(srv.port, "/", subprotocols=["echo-protocol"])
            await recv_json(a)  # presence join of sd_b
            raw = harness.RawWS(srv.port, "/ws", protocols=["echo-protocol"])
            srv.wait_connections(4)
            srv.send_signal(sig)
            for ws in (a, b, e):
                await asyncio.wait_for(ws.wait_closed(), 10 * SLOW)
            codes = [ws.close_code for ws in (a, b, e)]
            raw_close = await asyncio.get_running_loop().run_in_executor(
                None, lambda: raw.expect_close(timeout=10 * SLOW))
            raw.close_socket()
            return codes, raw_close.close_code

        codes, raw_code = harness.run_async(go(), timeout=40 * SLOW)
        self.assertEqual(codes, [1001, 1001, 1001], "close codes on %s" % sig.name)
        self.assertEqual(raw_code, 1001)
        rc = srv.wait_exit(timeout=10 * SLOW)
        self.assertIsNotNone(rc, "switchboard did not exit within %.0f s of %s" % (10 * SLOW, sig.name))
        self.assertEqual(rc, 0, "exit code after %s\n%s" % (sig.name, srv.stderr_tail()))

    def test_sigterm(self):
        self.shutdown_with(signal.SIGTERM)

    def test_sigint(self):
        self.shutdown_with(signal.SIGINT)

    def test_sigterm_idle(self):
        srv = self.start_server()
        srv.send_signal(signal.SIGTERM)
        rc = srv.wait_exit(timeout=10 * SLOW)
        self.assertEqual(rc, 0, srv.stderr_tail())


if __name__ == "__main__":
    unittest.main()
