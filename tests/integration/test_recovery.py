"""Recovery (PROTOCOL.md, "Recovery (protocol 2)"), through the real binary.

  positions          protocol 2 deliveries carry their stream's epoch and offset, one more per message;
                     a protocol 1 connection gets the same messages with none of it
  offline user       a send from the HTTP API and from a client to a user with no connection at all is
                     recovered when the user comes back (the client send answers not_found)
  ring bound         asking from a position older than --history-size gives recovered false and no
                     message, never a partial replay; /metrics counts both outcomes and the replayed
  TTL                past --history-ttl, the messages are gone: recovered false
  handshake checks   v other than 1 or 2, a malformed since_ value: HTTP 400
  many in a row      a burst sent while the user is away comes back whole and in order
"""

import asyncio
import json
import time
import unittest
import http.client

import harness
from harness import RECV_TIMEOUT, SLOW, expect_quiet, recv_json, recv_until, send_json

KEY = "recovery-key-0123456789abcdef"


def api_send(port, to, data):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=RECV_TIMEOUT)
    try:
        body = json.dumps({"to": to, "data": data})
        conn.request("POST", "/api/send", body=body, headers={"Authorization": "Bearer " + KEY,
                                                              "Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, json.loads(r.read().decode())
    finally:
        conn.close()


async def open_v2(port, user, since_user=None, since_broadcast=None):
    path = "/ws?user=%s&v=2" % user
    if since_user:
        path += "&since_user=%s:%d" % since_user
    if since_broadcast:
        path += "&since_broadcast=%s:%d" % since_broadcast
    ws = await harness.ws_open(port, path)
    welcome = await recv_json(ws)
    assert welcome["type"] == "welcome", welcome
    return ws, welcome


def pos(stream):
    return stream["epoch"], stream["offset"]


class RecoveryTest(harness.FreshServerMixin, unittest.TestCase):
    def test_positions_and_protocol_1_unchanged(self):
        srv = self.start_server([])

        async def go():
            alice, w = await open_v2(srv.port, "alice")
            old, _ = await harness.open_router(srv.port, "alice")
            bob, _ = await harness.open_router(srv.port, "bob")
            await recv_json(alice)  # presence bob
            await recv_json(old)
            epoch, off = pos(w["streams"]["user"])
            for i in range(3):
                await send_json(bob, {"type": "send", "to": "alice", "data": i})
            for i in range(3):
                m = await recv_json(alice)
                self.assertEqual(m, {"type": "message", "epoch": epoch, "offset": off + i + 1, "from": "bob",
                                     "to": "alice", "data": i})
                raw = await harness.recv(old)
                self.assertEqual(raw, '{"type":"message","from":"bob","to":"alice","data":%d}' % i)
            for ws in (alice, old, bob):
                await ws.close()

        harness.run_async(go())

    def test_offline_user_recovers_api_and_client_sends(self):
        srv = self.start_server(["--api-key", KEY])

        async def go():
            alice, w = await open_v2(srv.port, "alice")
            user_pos, bcast_pos = pos(w["streams"]["user"]), pos(w["streams"]["broadcast"])
            await alice.close()
            status, body = api_send(srv.port, "alice", {"n": 1})
            self.assertEqual(status, 200, body)
            bob, _ = await harness.open_router(srv.port, "bob")
            await send_json(bob, {"type": "send", "to": "alice", "data": {"n": 2}, "id": 1})
            err = await recv_json(bob)
            self.assertEqual((err["type"], err["code"]), ("error", "not_found"), err)
            alice, w = await open_v2(srv.port, "alice", user_pos, bcast_pos)
            self.assertEqual(w["streams"]["user"], {"epoch": user_pos[0], "offset": 2, "recovered": True})
            self.assertTrue(w["streams"]["broadcast"]["recovered"])
            got = [await recv_json(alice) for _ in range(2)]
            self.assertEqual([(m["from"], m["data"], m["offset"]) for m in got],
                             [("@server", {"n": 1}, 1), ("bob", {"n": 2}, 2)])
            await expect_quiet(alice)
            await alice.close()
            await bob.close()

        harness.run_async(go())

    def test_gap_older_than_history_is_not_recovered(self):
        srv = self.start_server(["--history-size", "5"])

        async def go():
            alice, w = await open_v2(srv.port, "alice")
            start = pos(w["streams"]["user"])
            await alice.close()
            bob, _ = await harness.open_router(srv.port, "bob")
            for i in range(6):  # one more than is kept
                await send_json(bob, {"type": "send", "to": "alice", "data": i})
            await send_json(bob, {"type": "ping", "id": "sync"})
            await recv_until(bob, lambda m: m.get("id") == "sync" and m["type"] == "ack")
            alice, w = await open_v2(srv.port, "alice", start)
            self.assertEqual(w["streams"]["user"], {"epoch": start[0], "offset": 6, "recovered": False})
            # nothing replayed: the next message is a live one
            await expect_quiet(alice)
            # one position later, the five kept are exactly what is missing: recovered
            await alice.close()
            alice, w = await open_v2(srv.port, "alice", (start[0], 1))
            self.assertTrue(w["streams"]["user"]["recovered"])
            got = [(await recv_json(alice))["data"] for _ in range(5)]
            self.assertEqual(got, [1, 2, 3, 4, 5])
            await alice.close()
            await bob.close()

        harness.run_async(go())
        m = srv.metrics()
        self.assertEqual(m.get("switchboard_history_not_recovered_total"), 1)
        self.assertEqual(m.get("switchboard_history_recovered_total"), 1)
        self.assertEqual(m.get("switchboard_history_replayed_total"), 5)
        self.assertGreaterEqual(m.get("switchboard_history_streams"), 1)

    def test_ttl(self):
        srv = self.start_server(["--history-ttl", "1"])

        async def go():
            alice, w = await open_v2(srv.port, "alice")
            start = pos(w["streams"]["user"])
            await alice.close()
            bob, _ = await harness.open_router(srv.port, "bob")
            await send_json(bob, {"type": "send", "to": "alice", "data": "old"})
            await asyncio.sleep(2.5)  # past the TTL, and a tick or two for the sweep
            alice, w = await open_v2(srv.port, "alice", start)
            self.assertFalse(w["streams"]["user"]["recovered"], w)
            await expect_quiet(alice)
            await alice.close()
            await bob.close()

        harness.run_async(go())

    def test_handshake_refusals(self):
        srv = self.start_server([])
        for q in ("v=3", "v=2&since_user=short:1", "v=2&since_broadcast=AbCd1234:x", "v=2&since_user=AbCd1234"):
            r, sock, _ = harness.raw_handshake(srv.port, "/ws?user=alice&" + q)
            if sock:
                sock.close()
            self.assertEqual(r.status, 400, q)

    def test_burst_while_away(self):
        srv = self.start_server(["--history-size", "1000"])

        async def go():
            alice, w = await open_v2(srv.port, "alice")
            start = pos(w["streams"]["user"])
            bstart = pos(w["streams"]["broadcast"])
            await alice.close()
            bob, _ = await harness.open_router(srv.port, "bob")
            for i in range(500):
                await send_json(bob, {"type": "send", "to": "alice", "data": i})
                await send_json(bob, {"type": "broadcast", "data": -i})
            await send_json(bob, {"type": "ping", "id": "sync"})
            await recv_until(bob, lambda m: m.get("id") == "sync" and m["type"] == "ack", limit=600)
            alice, w = await open_v2(srv.port, "alice", start, bstart)
            self.assertTrue(w["streams"]["user"]["recovered"] and w["streams"]["broadcast"]["recovered"], w)
            got = [await recv_json(alice) for _ in range(1000)]
            self.assertEqual([m["data"] for m in got if "to" in m], list(range(500)))
            self.assertEqual([m["data"] for m in got if "to" not in m], [-i for i in range(500)])
            await alice.close()
            await bob.close()

        harness.run_async(go(), timeout=60 * SLOW)


if __name__ == "__main__":
    unittest.main()
