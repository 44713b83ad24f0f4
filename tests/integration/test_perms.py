"""Client permissions (issue 22, docs/PROTOCOL.md "Permissions"): the server's defaults in open mode
(--client-allow, --client-send-to), refusals as `unauthorized` that leave the connection working, and
their count in /metrics. The token claims are replayed by test_protocol_doc.py."""

import unittest

import harness
from harness import open_router, recv_until, send_json


def is_type(t):
    return lambda m: m.get("type") == t


class OpenModeDefaultsTest(harness.FreshServerMixin, unittest.TestCase):
    def test_help_desk_defaults(self):
        srv = self.start_server(["--client-allow", "send,users", "--client-send-to", "support-*"])

        async def go():
            agent, _ = await open_router(srv.port, "support-1")
            visitor, _ = await open_router(srv.port, "visitor-9")
            await send_json(visitor, {"type": "broadcast", "data": "all", "id": 1})
            e, _ = await recv_until(visitor, is_type("error"))
            self.assertEqual((e["code"], e["message"], e["id"]),
                             ("unauthorized", "broadcast is not allowed on this connection", 1))
            await send_json(visitor, {"type": "send", "to": "mallory", "data": "x", "id": 2})
            e, _ = await recv_until(visitor, is_type("error"))
            self.assertEqual((e["code"], e["message"]), ("unauthorized", "you may not send to mallory"))
            await send_json(visitor, {"type": "join", "room": "r", "id": 3})
            e, _ = await recv_until(visitor, is_type("error"))
            self.assertEqual(e["message"], "join is not allowed on this connection")
            await send_json(visitor, {"type": "leave", "room": "r", "id": 4})  # always allowed: not_found
            e, _ = await recv_until(visitor, is_type("error"))
            self.assertEqual(e["code"], "not_found")
            # still connected and still allowed what it is allowed
            await send_json(visitor, {"type": "send", "to": "support-1", "data": "help", "id": 5})
            m, _ = await recv_until(agent, is_type("message"))
            self.assertEqual((m["from"], m["data"]), ("visitor-9", "help"))
            ack, _ = await recv_until(visitor, is_type("ack"))
            self.assertEqual(ack["delivered"], 1)
            await send_json(visitor, {"type": "users", "id": 6})
            u, _ = await recv_until(visitor, is_type("users"))
            self.assertEqual(u["users"], ["support-1", "visitor-9"])
            await agent.close()
            await visitor.close()
        harness.run_async(go())
        m = srv.metrics()
        self.assertEqual(m.get("switchboard_permission_refusals_total"), 3)
        self.assertEqual(m.get("switchboard_errors_total", code="unauthorized"), 3)

    def test_receive_only(self):
        srv = self.start_server(["--client-allow", "none"])

        async def go():
            ws, _ = await open_router(srv.port, "reader")
            for cmd in ({"type": "send", "to": "reader", "data": 1}, {"type": "publish", "room": "r", "data": 1},
                        {"type": "users"}):
                await send_json(ws, dict(cmd, id=cmd["type"]))
                e, _ = await recv_until(ws, is_type("error"))
                self.assertEqual((e["code"], e["id"]), ("unauthorized", cmd["type"]))
            await send_json(ws, {"type": "ping"})
            await recv_until(ws, is_type("pong"))
            await ws.close()
        harness.run_async(go())
        self.assertEqual(srv.metrics().get("switchboard_permission_refusals_total"), 3)

    def test_bad_flags_exit_2(self):
        import subprocess
        for args, mention in ((["--client-allow", "send,leave"], "'leave'"), (["--client-allow", ""], "empty"),
                              (["--client-send-to", "a b"], "--client-send-to")):
            with self.subTest(args=args):
                r = subprocess.run([harness.SB_BIN, "--port", "127.0.0.1:%d" % harness.free_port()] + args,
                                   capture_output=True, timeout=15 * harness.SLOW, cwd=harness.SB_SRC)
                self.assertEqual(r.returncode, 2, r)
                self.assertIn(mention, r.stderr.decode())


if __name__ == "__main__":
    unittest.main()
