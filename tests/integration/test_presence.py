"""The presence modes (--presence rooms|global|off, docs/PROTOCOL.md "Presence") through real sockets.

rooms, the default: an arrival reaches nobody who does not watch it or share a room with it, a room's
members hear who enters and leaves it (by leave, close, or a second tab that changes nothing), a join's
ack lists the members, watch lists hear their users only and are bounded, `users` pages; global is the
v1 suite's (every other test file runs it) plus `on` as its old name; off is silent. The HTTP API
answers a user's online status in every mode.
"""

import subprocess
import unittest

import harness
from harness import expect_quiet, open_router, recv_json, send_json

API_KEY = "presence-test-key"


def presence(event, user, room=None):
    m = {"type": "presence", "event": event, "user": user}
    if room:
        m["room"] = room
    return m


class RoomsModeTest(harness.ServerTestCase):
    # no --presence: the default must be rooms (harness adds global only when no mode is named, so
    # name it through the environment variable, which also checks SWITCHBOARD_PRESENCE)
    server_env = {"SWITCHBOARD_PRESENCE": "rooms", "SWITCHBOARD_API_KEY": API_KEY}

    def test_arrivals_reach_only_rooms_and_watchers(self):
        async def go():
            idle = [(await open_router(self.port, "ro_idle%d" % i))[0] for i in range(20)]
            a, wa = await open_router(self.port, "ro_a")
            self.assertEqual(wa, {"type": "welcome", "id": wa["id"], "user": "ro_a"})  # nobody listed
            await send_json(a, {"type": "join", "room": "ro_room", "id": 1})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": 1, "delivered": 0, "members": ["ro_a"]})
            b, _ = await open_router(self.port, "ro_b")
            await send_json(b, {"type": "join", "room": "ro_room"})  # acked without an id too
            self.assertEqual(await recv_json(b), {"type": "ack", "delivered": 0, "members": ["ro_a", "ro_b"]})
            self.assertEqual(await recv_json(a), presence("join", "ro_b", "ro_room"))
            b2, _ = await open_router(self.port, "ro_b")  # bob's second tab: the room hears nothing
            await send_json(b2, {"type": "join", "room": "ro_room", "id": 2})
            self.assertEqual(await recv_json(b2), {"type": "ack", "id": 2, "delivered": 0, "members": ["ro_a", "ro_b"]})
            await b2.close()
            await b.close()  # bob's last connection in the room
            self.assertEqual(await recv_json(a), presence("leave", "ro_b", "ro_room"))
            for ws in idle:  # twenty connections heard of none of it
                await expect_quiet(ws, 0.05)
            for ws in idle + [a]:
                await ws.close()
        harness.run_async(go())

    def test_watch_list(self):
        async def go():
            c, _ = await open_router(self.port, "rw_c")
            d, _ = await open_router(self.port, "rw_d")
            await send_json(c, {"type": "watch", "users": ["rw_d", "rw_e", "rw_d"], "id": "w"})
            self.assertEqual(await recv_json(c), {"type": "ack", "id": "w", "delivered": 0, "online": ["rw_d"]})
            e, _ = await open_router(self.port, "rw_e")
            f, _ = await open_router(self.port, "rw_f")  # not watched
            self.assertEqual(await recv_json(c), presence("join", "rw_e"))
            await d.close()
            self.assertEqual(await recv_json(c), presence("leave", "rw_d"))
            await send_json(c, {"type": "unwatch", "users": ["rw_e"], "id": 2})
            self.assertEqual(await recv_json(c), {"type": "ack", "id": 2, "delivered": 0})
            await e.close()
            await f.close()
            await send_json(c, {"type": "ping", "id": 3})  # the closes above came before this answer
            self.assertEqual(await recv_json(c), {"type": "pong"})
            self.assertEqual(await recv_json(c), {"type": "ack", "id": 3, "delivered": 0})
            await c.close()
        harness.run_async(go())

    def test_watch_bound_is_all_or_nothing(self):
        async def go():
            c, _ = await open_router(self.port, "rb_c")
            names = ["rb_u%d" % i for i in range(1000)]
            await send_json(c, {"type": "watch", "users": names[:600], "id": 1})
            self.assertEqual((await recv_json(c))["online"], [])
            await send_json(c, {"type": "watch", "users": names[600:] + ["rb_one_more"], "id": 2})
            self.assertEqual(await recv_json(c), {"type": "error", "code": "bad_request",
                                                  "message": "at most 1000 watched users per connection", "id": 2})
            await send_json(c, {"type": "watch", "users": names[600:] + ["rb_u0"], "id": 3})  # exactly 1000
            self.assertEqual((await recv_json(c))["online"], [])
            u0, _ = await open_router(self.port, "rb_u0")
            self.assertEqual(await recv_json(c), presence("join", "rb_u0"))
            extra, _ = await open_router(self.port, "rb_one_more")  # the refused command added nothing
            await expect_quiet(c)
            await send_json(c, {"type": "watch", "users": names + ["x"], "id": 4})
            self.assertEqual((await recv_json(c))["code"], "bad_request")  # 1001 in one command
            for ws in (u0, extra, c):
                await ws.close()
        harness.run_async(go())

    def test_users_is_a_page(self):
        async def go():
            a, _ = await open_router(self.port, "rp_a")
            b, _ = await open_router(self.port, "rp_b")
            await send_json(a, {"type": "users", "after": "rp_a"})
            m = await recv_json(a)
            self.assertEqual(m["users"][0], "rp_b")
            self.assertNotIn("more", m)
            await send_json(a, {"type": "users", "after": "no spaces", "id": 1})
            self.assertEqual(await recv_json(a), {"type": "error", "code": "bad_request", "message": "invalid after name", "id": 1})
            for ws in (a, b):
                await ws.close()
        harness.run_async(go())

    def test_api_online_status(self):
        async def go():
            a, _ = await open_router(self.port, "rs_a")
            r = harness.http_get(self.port, "/api/users/rs_a", headers={"Authorization": "Bearer " + API_KEY})
            self.assertEqual((r.status, r.json()), (200, {"user": "rs_a", "online": True}))
            r = harness.http_get(self.port, "/api/users/rs_nobody", headers={"Authorization": "Bearer " + API_KEY})
            self.assertEqual((r.status, r.json()), (200, {"user": "rs_nobody", "online": False}))
            await a.close()
        harness.run_async(go())


class OnIsGlobalTest(harness.ServerTestCase):
    server_args = ["--presence", "on"]

    def test_on_is_global(self):
        async def go():
            a, wa = await open_router(self.port, "og_a")
            self.assertEqual(wa["users"], ["og_a"])
            b, wb = await open_router(self.port, "og_b")
            self.assertEqual(wb["users"], ["og_a", "og_b"])
            self.assertEqual(await recv_json(a), presence("join", "og_b"))
            await send_json(a, {"type": "join", "room": "og_room", "id": 1})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": 1, "delivered": 0})  # v1: no members
            await send_json(a, {"type": "watch", "users": ["og_b"], "id": 2})
            self.assertEqual(await recv_json(a), {"type": "error", "code": "bad_request",
                                                  "message": "watch needs a server with --presence rooms", "id": 2})
            await b.close()
            self.assertEqual(await recv_json(a), presence("leave", "og_b"))
            await a.close()
        harness.run_async(go())


class OffModeTest(harness.ServerTestCase):
    server_args = ["--presence", "off"]

    def test_off_is_silent(self):
        async def go():
            a, wa = await open_router(self.port, "of_a")
            self.assertNotIn("users", wa)
            await send_json(a, {"type": "join", "room": "of_room", "id": 1})
            self.assertEqual(await recv_json(a), {"type": "ack", "id": 1, "delivered": 0})
            b, _ = await open_router(self.port, "of_b")
            await send_json(b, {"type": "join", "room": "of_room", "id": 1})
            self.assertEqual(await recv_json(b), {"type": "ack", "id": 1, "delivered": 0})
            await b.close()
            await expect_quiet(a)
            await a.close()
        harness.run_async(go())


class DefaultAndBadFlagTest(unittest.TestCase):
    def test_help_names_the_modes_and_rooms_is_the_default(self):
        out = subprocess.run([harness.SB_BIN, "--help"], capture_output=True, text=True, timeout=10)
        self.assertIn("global|rooms|off", out.stdout + out.stderr)
        self.assertIn("[SWITCHBOARD_PRESENCE, default rooms]", out.stdout + out.stderr)

    def test_bad_mode_exits_2(self):
        out = subprocess.run([harness.SB_BIN, "--presence", "room"], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 2)
        self.assertIn("global, rooms or off", out.stderr)


if __name__ == "__main__":
    unittest.main()
