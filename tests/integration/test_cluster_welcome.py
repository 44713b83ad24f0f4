"""A welcome is a promise cluster-wide (issue 19): from the moment a connection has its welcome, a
send to its user from any other node reaches it, and `not_found` only means no node holds the user.

Three nodes on a real redis-server, no waiting for presence to settle between the welcome and the
send: the sender's node may not have heard of the connection yet. 30 trials of each kind, zero
misses: a second connection of a user already online elsewhere; a user brand new to the cluster
(through `send` and through the API's `POST /api/send`).
"""

import asyncio
import unittest

from clusterkit import ClusterTestCase, wait_users
from harness import SLOW, open_router, recv_until, run_async, send_json
from test_api import KEY, api

TRIALS = 30
MISS_AFTER = 2.0 * SLOW  # seconds without the message: a miss (a delivery takes milliseconds)


def is_type(t):
    return lambda m: m.get("type") == t


def answer(i):
    return lambda m: m.get("type") in ("ack", "error") and m.get("id") == i


async def received(ws, i):
    """Whether message `i` reaches ws (MISS_AFTER seconds without it: a miss)."""
    try:
        m, _ = await recv_until(ws, is_type("message"), timeout=MISS_AFTER)
        return m["data"] == i
    except (AssertionError, asyncio.TimeoutError):
        return False


class WelcomePromiseTest(ClusterTestCase):
    EXTRA_ARGS = ("--api-key", KEY)

    def test_second_connection_gets_a_send_right_after_its_welcome(self):
        async def go():
            alice, _ = await open_router(self.ports[2], "wp_alice")
            misses = []
            for i in range(TRIALS):
                user = "wp_bob%d" % i
                first, _ = await open_router(self.ports[0], user)
                await wait_users(self.ports[2], [user])  # node 2 knows the user through node 0 only
                second, _ = await open_router(self.ports[1], user)  # welcomed on node 1
                await send_json(alice, {"type": "send", "to": user, "data": i, "id": i})
                ack, _ = await recv_until(alice, answer(i))
                self.assertEqual(ack.get("type"), "ack", ack)
                for ws in (first, second):
                    if not await received(ws, i):
                        misses.append((i, ws is second))
                await first.close()
                await second.close()
            self.assertEqual(misses, [], "trials whose connection missed the send (trial, second?)")
            await alice.close()
        run_async(go(), timeout=300)

    def test_new_user_gets_a_send_right_after_its_welcome(self):
        async def go():
            alice, _ = await open_router(self.ports[2], "wp_carol")
            misses = []
            for i in range(TRIALS):
                user = "wp_new%d" % i
                ws, _ = await open_router(self.ports[1], user)
                await send_json(alice, {"type": "send", "to": user, "data": i, "id": i})
                got, _ = await recv_until(alice, answer(i))
                if got != {"type": "ack", "id": i, "delivered": 1}:
                    misses.append((i, got))
                if not await received(ws, i):
                    misses.append((i, "not received"))
                await ws.close()
            self.assertEqual(misses, [])
            await alice.close()
        run_async(go(), timeout=300)

    def test_api_send_reaches_a_user_welcomed_a_moment_ago_elsewhere(self):
        async def go():
            misses = []
            for i in range(TRIALS):
                user = "wp_api%d" % i
                ws, _ = await open_router(self.ports[1], user)
                status, _, got = api(self.ports[2], "POST", "/api/send", {"to": [user, "wp_nobody"], "data": i})
                if (status, got) != (200, {"delivered": 1, "not_found": ["wp_nobody"]}):
                    misses.append((i, status, got))
                if not await received(ws, i):
                    misses.append((i, "not received"))
                await ws.close()
            self.assertEqual(misses, [])
        run_async(go(), timeout=300)


if __name__ == "__main__":
    unittest.main()
