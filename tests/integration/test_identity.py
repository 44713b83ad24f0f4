"""Identity you can trust (issue 11): with a key, every router connection proves its user with a JWT.

Tokens are minted here by Debian's PyJWT (python3-jwt), an implementation independent of the
server's, and keys for RS256/ES256 by the openssl command line. Covers: the handshake token (?token=
and Authorization: Bearer) and a 401 with a reason for each kind of bad token, counted in /metrics;
the ?user= spoof; hello with a token on a connection that came without one (invisible until then);
the 10 s limit (4408); expiry (4401) and refresh; the rooms claim; RS256 and ES256 keys and alg
confusion; tokens kept out of the log; and open mode (no key) as before, with its warning.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

import jwt
import websockets.exceptions

import harness
from harness import RECV_TIMEOUT, SLOW, expect_quiet, recv_json, send_json

SECRET = "test-secret-" + "k" * 32
AUDIENCE = "switchboard-test"
ISSUER = "https://issuer.test"
LEEWAY_S = 5          # app/identity/jwt.h JWT_LEEWAY_S
AUTH_TIMEOUT_S = 10   # app/identity/auth.h AUTH_TIMEOUT_MS
# Bound for a close the tick makes at a deadline: the tick runs once a second; generous, not a timing.
CLOSE_SLACK = 6.0 * SLOW


def mint(sub, exp_in=300, secret=SECRET, algorithm="HS256", headers=None, **claims):
    now = int(time.time())
    payload = {"sub": sub, "iat": now, "exp": now + exp_in, "aud": AUDIENCE, "iss": ISSUER}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, secret, algorithm=algorithm, headers=headers)


def b64url(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned(sub, signature=""):
    """An alg "none" token: header and claims, and an empty signature as RFC 7519 6.1 writes it, or a
    made-up one (PyJWT would want a key)."""
    now = int(time.time())
    return "%s.%s.%s" % (b64url({"alg": "none", "typ": "JWT"}),
                         b64url({"sub": sub, "exp": now + 300, "aud": AUDIENCE, "iss": ISSUER}), signature)


def hs256_with_key_bytes(sub, key):
    """An HS256 token whose secret is `key` (bytes), signed by hand: PyJWT refuses a PEM as an HMAC
    secret, which is exactly the alg-confusion attack this forges."""
    now = int(time.time())
    signing_input = "%s.%s" % (b64url({"alg": "HS256", "typ": "JWT"}),
                               b64url({"sub": sub, "exp": now + 300, "aud": AUDIENCE, "iss": ISSUER}))
    sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def close_code(exc):
    return exc.rcvd.code if exc.rcvd is not None else None


async def expect_close(ws, timeout):
    """Reads (skipping messages) until the server closes; returns (code, reason). Bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            await asyncio.wait_for(ws.recv(), max(0.05, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            break
        except websockets.exceptions.ConnectionClosed as e:
            return close_code(e), e.rcvd.reason if e.rcvd is not None else None
    raise AssertionError("the server did not close within %.0f s" % timeout)


async def open_token(port, token, path="/ws", via="query"):
    if via == "query":
        return await harness.open_router(port, path="%s?token=%s" % (path, token))
    return await harness.open_router(port, path=path, extra_headers={"Authorization": "Bearer " + token})


def bad_tokens():
    """(label, token, the reason label the server counts it under)."""
    now = int(time.time())
    big = mint("alice", pad="x" * 9000)
    return [
        ("alg none", unsigned("alice", "c2ln"), "alg_none"),
        ("alg none, empty signature", unsigned("alice"), None),  # jwt.c counts it malformed
        ("alg mismatch (HS384)", mint("alice", algorithm="HS384"), "alg_mismatch"),
        ("bad signature", mint("alice", secret="another-secret-" + "z" * 32), "bad_signature"),
        ("malformed", "not-a-jwt", "malformed"),
        ("malformed base64", "a.b.c", "malformed"),
        ("crit header", mint("alice", headers={"crit": ["exp"]}), "crit"),
        ("expired", mint("alice", exp_in=-60), "expired"),
        ("no exp", mint("alice", exp=None), "no_exp"),
        ("nbf in the future", mint("alice", nbf=now + 600), "not_yet_valid"),
        ("wrong audience", mint("alice", aud="someone-else"), "bad_audience"),
        ("wrong issuer", mint("alice", iss="https://evil.test"), "bad_issuer"),
        ("no sub", mint(None), "bad_subject"),
        ("sub not a name", mint("al ice"), "bad_subject"),
        ("rooms not names", mint("alice", rooms=["ok", "no spaces"]), "bad_rooms"),
        ("over 8 KiB", big, "too_large"),
    ]


def refusals(srv, where, reason):
    return srv.metrics().get("switchboard_token_refusals_total", where=where, reason=reason)


def assert_401(tc, resp, what):
    tc.assertEqual(resp.status, 401, "%s: expected 401, got %r" % (what, resp))
    tc.assertTrue(resp.raw_head.startswith(b"HTTP/1.1 401"), resp.raw_head[:40])
    tc.assertIsNone(resp.header("Sec-WebSocket-Accept"), "%s: upgraded anyway" % what)
    tc.assertEqual((resp.header("WWW-Authenticate") or "").split(" ")[0], "Bearer")
    body = resp.body.decode()
    tc.assertTrue(body.startswith("401 Unauthorized: ") and len(body.strip()) > len("401 Unauthorized: "),
                  "%s: no reason in %r" % (what, body))
    tc.assertLess(len(resp.body), 512)
    return body.strip()[len("401 Unauthorized: "):]


class TokenServer(harness.ServerTestCase):
    server_args = ["--jwt-secret", SECRET, "--jwt-audience", AUDIENCE, "--jwt-issuer", ISSUER,
                   "--log-level", "debug"]


class HandshakeTest(TokenServer):
    def test_query_token(self):
        async def go():
            ws, welcome = await open_token(self.port, mint("alice"))
            self.assertEqual(welcome["user"], "alice")
            self.assertIsInstance(welcome["exp"], int)
            self.assertAlmostEqual(welcome["exp"], int(time.time()) + 300, delta=30)
            await ws.close()
        harness.run_async(go())

    def test_bearer_header(self):
        async def go():
            ws, welcome = await open_token(self.port, mint("bob"), via="header")
            self.assertEqual(welcome["user"], "bob")
            await ws.close()
        harness.run_async(go())

    def test_each_bad_token_is_401_with_its_reason_and_counted(self):
        reasons = set()
        for label, token, metric in bad_tokens():
            with self.subTest(token=label):
                before = refusals(self.server, "handshake", metric) if metric else 0
                rejected = self.server.metrics().get("switchboard_handshakes_rejected_total", reason="token")
                resp, sock, _ = harness.raw_handshake(self.port, "/ws",
                                                      extra={"Authorization": "Bearer " + token})
                if sock:
                    sock.close()
                reasons.add(assert_401(self, resp, label))
                if metric:
                    self.assertEqual(refusals(self.server, "handshake", metric), before + 1,
                                     "%s not counted as %s" % (label, metric))
                self.assertEqual(self.server.metrics().get("switchboard_handshakes_rejected_total",
                                                           reason="token"), rejected + 1)
        self.assertGreaterEqual(len(reasons), 10, "refusals should say why: %r" % reasons)

    def test_bad_token_in_query_is_401(self):
        for label, token, metric in bad_tokens()[:-1]:  # 9 KiB does not belong in a URL
            with self.subTest(token=label):
                resp, sock, _ = harness.raw_handshake(self.port, "/ws?token=" + token)
                if sock:
                    sock.close()
                assert_401(self, resp, label)

    def test_empty_token_is_401(self):
        before = refusals(self.server, "handshake", "too_large")
        for path, extra in (("/ws?token=", None), ("/ws", {"Authorization": "Bearer "})):
            with self.subTest(path=path, header=extra):
                resp, sock, _ = harness.raw_handshake(self.port, path, extra=extra)
                if sock:
                    sock.close()
                assert_401(self, resp, "empty token")
        self.assertEqual(refusals(self.server, "handshake", "too_large"), before + 2)

    def test_token_from_a_real_client_library_is_refused_with_401(self):
        async def go():
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
                await harness.ws_open(self.port, "/ws?token=" + mint("alice", exp_in=-60))
            self.assertEqual(cm.exception.status_code, 401)
        harness.run_async(go())

    def test_user_in_query_cannot_override_sub(self):
        async def go():
            bob, bw = await open_token(self.port, mint("bob"))
            self.assertEqual(bw["user"], "bob")
            spoof, sw = await harness.open_router(self.port, path="/ws?user=bob&token=" + mint("alice"))
            self.assertEqual(sw["user"], "alice", "?user= overrode the token's sub")
            await recv_json(bob)  # presence join alice
            carol, _ = await open_token(self.port, mint("carol"))
            await send_json(carol, {"type": "send", "to": "bob", "data": "for bob only", "id": 1})
            got, _ = await harness.recv_until(bob, lambda m: m.get("type") == "message")
            self.assertEqual(got["data"], "for bob only")
            ack, _ = await harness.recv_until(carol, lambda m: m.get("type") == "ack")
            self.assertEqual(ack["delivered"], 1, "bob's message went to more than bob's connection")
            seen, _ = await harness.recv_until(spoof, lambda m: m.get("type") == "presence" and m["user"] == "carol")
            await expect_quiet(spoof)
            for ws in (bob, spoof, carol):
                await ws.close()
        harness.run_async(go())

    def test_echo_protocol_needs_no_token(self):
        async def go():
            ws = await harness.ws_open(self.port, "/ws", subprotocols=["echo-protocol"])
            await ws.send("ping me")
            self.assertEqual(await harness.recv(ws), "ping me")
            await ws.close()
        harness.run_async(go())

    def test_auth_endpoint_says_token(self):
        r = self.server.get("/auth")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"auth": "token"})

    def test_no_open_mode_warning(self):
        self.assertNotIn("identity is not verified", self.server.stderr_text())


class HelloTest(TokenServer):
    def test_pending_until_hello(self):
        async def go():
            alice, _ = await open_token(self.port, mint("alice"))
            anon = await harness.ws_open(self.port, "/ws?user=mallory")
            await expect_quiet(anon)  # no welcome before a token
            await expect_quiet(alice)  # no presence for a nobody
            await send_json(alice, {"type": "users"})
            users = await recv_json(alice)
            self.assertEqual(users["users"], ["alice"], "a pending connection is listed")
            await send_json(alice, {"type": "broadcast", "data": "anyone?", "id": 1})
            ack = await recv_json(alice)
            self.assertEqual(ack["delivered"], 0, "a broadcast reached a pending connection")
            await expect_quiet(anon)
            for cmd in ({"type": "users", "id": 2}, {"type": "ping", "id": 3},
                        {"type": "broadcast", "data": "x", "id": 4}, {"type": "join", "room": "r", "id": 5},
                        {"type": "send", "to": "alice", "data": "x", "id": 6}, {"type": "dance", "id": 7},
                        {"type": "refresh", "token": mint("carol"), "id": 8}):
                await send_json(anon, cmd)
                err = await recv_json(anon)
                self.assertEqual((err["type"], err["code"], err["id"]), ("error", "unauthorized", cmd["id"]), err)
            await send_json(anon, {"type": "hello", "user": "carol", "id": 9})
            err = await recv_json(anon)
            self.assertEqual((err["code"], err["id"]), ("unauthorized", 9), err)
            await expect_quiet(alice)
            await send_json(anon, {"type": "hello", "token": mint("carol"), "id": 10})
            welcome = await recv_json(anon)
            self.assertEqual((welcome["type"], welcome["user"]), ("welcome", "carol"))
            self.assertEqual(welcome["users"], ["alice", "carol"])
            self.assertIn("exp", welcome)
            ack = await recv_json(anon)
            self.assertEqual((ack["type"], ack["id"]), ("ack", 10))
            presence = await recv_json(alice)
            self.assertEqual(presence, {"type": "presence", "event": "join", "user": "carol"})
            await send_json(alice, {"type": "send", "to": "carol", "data": "hi carol"})
            msg = await recv_json(anon)
            self.assertEqual((msg["from"], msg["data"]), ("alice", "hi carol"))
            await send_json(anon, {"type": "hello", "token": mint("dave"), "id": 11})
            err = await recv_json(anon)
            self.assertEqual((err["type"], err["id"]), ("error", 11))
            await anon.close()
            await alice.close()
        harness.run_async(go())

    def test_bad_hello_token_keeps_the_connection(self):
        async def go():
            anon = await harness.ws_open(self.port, "/ws")
            for label, token, metric in bad_tokens():
                before = refusals(self.server, "hello", metric) if metric else 0
                await send_json(anon, {"type": "hello", "token": token, "id": label})
                err = await recv_json(anon)
                self.assertEqual((err["type"], err["code"], err["id"]), ("error", "unauthorized", label), err)
                self.assertTrue(err["message"], label)
                self.assertNotIn(token, err["message"])
                if metric:
                    self.assertEqual(refusals(self.server, "hello", metric), before + 1, label)
            await send_json(anon, {"type": "hello", "token": "", "id": "empty"})
            err = await recv_json(anon)
            self.assertEqual((err["code"], err["id"]), ("unauthorized", "empty"))
            await send_json(anon, {"type": "hello", "id": "none"})
            err = await recv_json(anon)
            self.assertEqual((err["code"], err["id"]), ("bad_request", "none"))
            await send_json(anon, {"type": "hello", "token": mint("erin")})
            welcome = await recv_json(anon)
            self.assertEqual((welcome["type"], welcome["user"]), ("welcome", "erin"))
            await anon.close()
        harness.run_async(go())

    def test_no_hello_within_10_s_closes_4408(self):
        async def go():
            anon = await harness.ws_open(self.port, "/ws")
            opened = time.monotonic()
            await send_json(anon, {"type": "hello", "token": "nonsense"})
            self.assertEqual((await recv_json(anon))["code"], "unauthorized")
            code, reason = await expect_close(anon, AUTH_TIMEOUT_S + CLOSE_SLACK)
            self.assertEqual(code, 4408)
            self.assertEqual(reason, "authentication timeout")
            self.assertGreaterEqual(time.monotonic() - opened, AUTH_TIMEOUT_S - 1)
        before = self.server.metrics().get("switchboard_closes_sent_total", code="4408")
        harness.run_async(go(), timeout=60 * SLOW)
        self.assertEqual(self.server.metrics().get("switchboard_closes_sent_total", code="4408"), before + 1)

    def test_hello_in_time_is_not_closed(self):
        async def go():
            anon = await harness.ws_open(self.port, "/ws")
            await send_json(anon, {"type": "hello", "token": mint("frank")})
            self.assertEqual((await recv_json(anon))["type"], "welcome")
            await asyncio.sleep(AUTH_TIMEOUT_S + 2)
            await send_json(anon, {"type": "ping"})
            self.assertEqual(await recv_json(anon), {"type": "pong"})
            await anon.close()
        harness.run_async(go(), timeout=60 * SLOW)


class ExpiryTest(TokenServer):
    def test_expired_token_closes_4401(self):
        async def go():
            ws, welcome = await open_token(self.port, mint("alice", exp_in=2))
            exp = welcome["exp"]
            code, reason = await expect_close(ws, 2 + LEEWAY_S + CLOSE_SLACK)
            self.assertEqual((code, reason), (4401, "token expired"))
            self.assertGreaterEqual(time.time(), exp + LEEWAY_S - 1, "closed before exp + leeway")
        harness.run_async(go(), timeout=60 * SLOW)
        self.assertGreaterEqual(self.server.metrics().get("switchboard_closes_sent_total", code="4401"), 1)

    def test_refresh_keeps_it_open_past_the_old_exp(self):
        async def go():
            ws, welcome = await open_token(self.port, mint("bob", exp_in=2))
            await send_json(ws, {"type": "refresh", "token": mint("bob", exp_in=120), "id": 1})
            self.assertEqual(await recv_json(ws), {"type": "ack", "id": 1, "delivered": 0})
            await asyncio.sleep(2 + LEEWAY_S + 3)
            await send_json(ws, {"type": "ping"})
            self.assertEqual(await recv_json(ws), {"type": "pong"})
            await ws.close()
        harness.run_async(go(), timeout=60 * SLOW)

    def test_refresh_for_another_user_or_invalid_changes_nothing(self):
        async def go():
            ws, welcome = await open_token(self.port, mint("carol", exp_in=2))
            before = refusals(self.server, "refresh", "other_subject")
            await send_json(ws, {"type": "refresh", "token": mint("dave", exp_in=120), "id": 1})
            err = await recv_json(ws)
            self.assertEqual((err["code"], err["id"]), ("unauthorized", 1), err)
            self.assertEqual(refusals(self.server, "refresh", "other_subject"), before + 1)
            await send_json(ws, {"type": "refresh", "token": mint("carol", exp_in=120, secret="x" * 40), "id": 2})
            err = await recv_json(ws)
            self.assertEqual((err["code"], err["id"]), ("unauthorized", 2), err)
            await send_json(ws, {"type": "refresh", "token": mint("carol", exp_in=1), "id": 3})
            err = await recv_json(ws)
            self.assertEqual((err["code"], err["id"]), ("unauthorized", 3), err)
            await send_json(ws, {"type": "whoami"})
            self.assertEqual((await recv_json(ws))["code"], "unknown_type")
            code, reason = await expect_close(ws, 2 + LEEWAY_S + CLOSE_SLACK)
            self.assertEqual(code, 4401)
        harness.run_async(go(), timeout=60 * SLOW)


class RoomsClaimTest(TokenServer):
    def test_rooms_claim_allows_and_forbids(self):
        async def go():
            a, _ = await open_token(self.port, mint("alice", rooms=["lobby", "team-7.*"]))
            b, _ = await open_token(self.port, mint("bob"))  # no claim: any room
            await recv_json(a)  # presence bob
            for room, ok in (("lobby", True), ("team-7.alpha", True), ("team-7.", True), ("team-8", False),
                             ("lobby2", False), ("team-7", False)):
                await send_json(a, {"type": "join", "room": room, "id": room})
                reply = await recv_json(a)
                if ok:
                    self.assertEqual(reply, {"type": "ack", "id": room, "delivered": 0})
                else:
                    self.assertEqual((reply["type"], reply["code"]), ("error", "unauthorized"), reply)
                    self.assertIn(room, reply["message"])
            await send_json(b, {"type": "join", "room": "secret", "id": 1})
            self.assertEqual((await recv_json(b))["type"], "ack")
            await send_json(a, {"type": "publish", "room": "secret", "data": "x", "id": 2})
            err = await recv_json(a)
            self.assertEqual((err["code"], err["id"]), ("unauthorized", 2))
            self.assertIn("does not allow", err["message"])
            await send_json(b, {"type": "join", "room": "team-7.alpha", "id": 3})
            self.assertEqual((await recv_json(b))["type"], "ack")
            await send_json(a, {"type": "publish", "room": "team-7.alpha", "data": "go", "id": 4})
            msg = await recv_json(b)
            self.assertEqual((msg["from"], msg["room"], msg["data"]), ("alice", "team-7.alpha", "go"))
            await a.close()
            await b.close()
        harness.run_async(go())


class LogTest(TokenServer):
    def test_tokens_never_reach_the_log(self):
        refused = mint("alice", exp_in=-60)
        accepted = mint("alice")
        header = mint("bob")
        hello = mint("carol")
        bad_hello = mint("carol", secret="y" * 40)
        resp, sock, _ = harness.raw_handshake(self.port, "/ws?token=" + refused)
        self.assertEqual(resp.status, 401)
        resp, sock, _ = harness.raw_handshake(self.port, "/ws?user=x&token=" + refused + "&a=1")
        self.assertEqual(resp.status, 401)
        self.assertEqual(self.server.get("/nothing?token=" + refused).status, 404)
        # an encoded "?": CivetWeb decodes the path, so the request log would show the token
        self.assertEqual(self.server.get("/nothing%3Ftoken=" + refused).status, 404)
        resp, _, _ = harness.raw_handshake(self.port, "/ws%3Ftoken=" + refused)
        self.assertEqual(resp.status, 404)

        async def go():
            for ws, _ in (await open_token(self.port, accepted), await open_token(self.port, header, via="header")):
                await ws.close()
            anon = await harness.ws_open(self.port, "/ws")
            await send_json(anon, {"type": "hello", "token": bad_hello})
            await recv_json(anon)
            await send_json(anon, {"type": "hello", "token": hello})
            await recv_json(anon)
            await anon.close()
        harness.run_async(go())
        text = self.server.wait_log(r"ws close .*user=carol")
        self.assertIn("ws refused", text)
        for token in (refused, accepted, header, hello, bad_hello):
            for part in token.split("."):  # not even a piece of one
                self.assertNotIn(part, text, "a token is in the log:\n%s" % self.server.stderr_tail())


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


class PublicKeyTest(harness.FreshServerMixin, unittest.TestCase):
    def keys(self, kind):
        d = tempfile.mkdtemp(prefix="switchboard-keys-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
        if kind == "rsa":
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "private.pem", cwd=d)
        else:
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "private.pem", cwd=d)
        openssl("pkey", "-in", "private.pem", "-pubout", "-out", "public.pem", cwd=d)
        with open(os.path.join(d, "private.pem")) as f:
            private = f.read()
        with open(os.path.join(d, "public.pem")) as f:
            public = f.read()
        return os.path.join(d, "public.pem"), private, public

    def check_server(self, kind, alg):
        path, private, public = self.keys(kind)
        srv = self.start_server(["--jwt-public-key", path, "--jwt-audience", AUDIENCE, "--jwt-issuer", ISSUER])

        async def go():
            ws, welcome = await open_token(srv.port, mint("alice", secret=private, algorithm=alg))
            self.assertEqual(welcome["user"], "alice")
            await ws.close()
        harness.run_async(go())
        # alg confusion: the public key's PEM text used as an HS256 secret
        confused = hs256_with_key_bytes("alice", public.encode())
        resp, _, _ = harness.raw_handshake(srv.port, "/ws?token=" + confused)
        assert_401(self, resp, "HS256 signed with the public key")
        self.assertEqual(srv.metrics().get("switchboard_token_refusals_total", where="handshake",
                                           reason="alg_mismatch"), 1)
        other = "ES256" if alg == "RS256" else "RS256"
        _, other_private, _ = self.keys("ec" if other == "ES256" else "rsa")
        resp, _, _ = harness.raw_handshake(srv.port, "/ws?token=" + mint("alice", secret=other_private, algorithm=other))
        assert_401(self, resp, "%s token on an %s server" % (other, alg))

    def test_rs256(self):
        self.check_server("rsa", "RS256")

    def test_es256(self):
        self.check_server("ec", "ES256")


class PendingLimitsTest(harness.FreshServerMixin, unittest.TestCase):
    """A connection without a token is nobody, but it is still a connection: it holds a slot of
    --max-connections and is closed 1001 at shutdown like any other."""

    def test_pending_counts_against_max_connections(self):
        srv = self.start_server(["--jwt-secret", SECRET, "--max-connections", "1"])

        async def go():
            anon = await harness.ws_open(srv.port, "/ws")
            resp, sock, _ = harness.raw_handshake(srv.port, "/ws?token=" + mint("alice", aud=None, iss=None))
            if sock:
                sock.close()
            self.assertEqual(resp.status, 503, resp)
            # A pending connection gets no welcome: its 101 can reach us before its loop has counted it.
            deadline = time.monotonic() + 5.0 * harness.SLOW
            while srv.healthz()["connections"] != 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            self.assertEqual(srv.healthz()["connections"], 1)
            await anon.close()
        harness.run_async(go())

    def test_pending_gets_1001_at_shutdown(self):
        srv = self.start_server(["--jwt-secret", SECRET])
        ws = harness.RawWS(srv.port, "/ws")
        try:
            srv.wait_connections(1)
            srv.send_signal(signal.SIGTERM)
            frame = ws.expect_close(timeout=10 * SLOW)
            self.assertEqual(frame.close_code, 1001)
        finally:
            ws.close_socket()
        self.assertEqual(srv.wait_exit(), 0)


class OpenModeTest(harness.FreshServerMixin, unittest.TestCase):
    def test_open_mode_as_before_with_one_warning(self):
        srv = self.start_server()
        text = srv.wait_log(r"identity is not verified")
        self.assertEqual(text.count("identity is not verified"), 1, text)
        self.assertEqual(srv.get("/auth").json(), {"auth": "open"})

        async def go():
            ws, welcome = await harness.open_router(srv.port, path="/ws?user=alice&token=" + mint("bob"))
            self.assertEqual(welcome["user"], "alice", "open mode must ignore ?token=")
            self.assertNotIn("exp", welcome)
            anon, _ = await harness.open_router(srv.port)
            await send_json(anon, {"type": "hello", "user": "carol", "token": mint("dave")})
            w, _ = await harness.recv_until(anon, lambda m: m.get("type") == "welcome")
            self.assertEqual(w["user"], "carol")
            await send_json(anon, {"type": "refresh", "token": mint("carol"), "id": 1})
            err = await recv_json(anon)
            self.assertEqual((err["code"], err["message"]), ("unknown_type", "unknown type refresh"))
            await ws.close()
            await anon.close()
        harness.run_async(go())


if __name__ == "__main__":
    unittest.main()
