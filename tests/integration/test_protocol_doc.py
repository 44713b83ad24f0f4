"""Replay every ```session block of docs/PROTOCOL.md against a fresh server.

Line forms inside a block:
  NAME: open PATH     open ws://127.0.0.1:PORT + PATH (router mode: no subprotocol offered)
  NAME: close         normal close (1000)
  NAME: closed CODE REASON   the server closes NAME's connection with CODE and REASON (bounded wait)
  NAME> TEXT          send TEXT as one text message, exactly as written
  NAME< JSON          the next message NAME receives must equal JSON; the string "…" matches any value,
                      and a string "{name}" (lowercase) matches any string the first time and names
                      it: later "{name}" must be that same string, and {name} in a path or in sent
                      text stands for it (stream epochs, which are random)

Messages are checked in order per connection. After the block (and before each `close`) the
connection must have received nothing beyond what the block shows.

A block runs against --presence global (protocol v1) unless its opener names another mode:
```session rooms, ```session off (after `token`, if both).

A block opened with ```session token runs against a server started with --jwt-secret, and its
TOKEN(...) placeholders (in paths and sent text) become tokens minted here with PyJWT for that secret:
  TOKEN(alice)                      sub alice, exp in 300 s
  TOKEN(alice, rooms=lobby|team-*)  with a rooms claim
  TOKEN(alice, exp=+2)              exp relative to now, in seconds
  TOKEN(alice, secret=other)        signed with another secret (so refused)
  TOKEN(alice, allow=send|join)     with an allow claim (allow= for an empty one)
  TOKEN(alice, send_to=support-*)   with a send_to claim

One test per block, named after the block's section heading.
"""

import asyncio
import json
import os
import re
import time
import unittest

import jwt

import websockets.exceptions

import harness
from harness import QUIET, RECV_TIMEOUT, SLOW

DOC = os.path.join(harness.SB_SRC, "docs", "PROTOCOL.md")
ANY = "\u2026"

# A connection's own sends are ordered, but two connections are handled by two server threads: when
# a line makes a *different* connection act right after a send that expects no reply (e.g. `bob> join`
# then `alice> publish`), wait briefly so the first send is handled first. A bounded settle delay, not
# an assertion on timing.
SETTLE = 0.25 * SLOW

DOC_SECRET = "protocol-doc-secret-" + "s" * 24
TOKEN_RE = re.compile(r"TOKEN\(([A-Za-z0-9_.-]+)((?:,\s*[a-z_]+=[^,)]*)*)\)")
# Bound for a close the server makes at a deadline (4401: exp + 5 s leeway, checked once a second).
CLOSE_WAIT = 20 * SLOW


def mint_placeholder(m):
    claims = {"sub": m.group(1), "iat": int(time.time()), "exp": int(time.time()) + 300}
    secret = DOC_SECRET
    for opt in filter(None, (o.strip() for o in m.group(2).split(","))):
        key, _, value = opt.partition("=")
        if key == "rooms":
            claims["rooms"] = value.split("|")
        elif key == "exp":
            claims["exp"] = int(time.time()) + int(value)
        elif key == "allow":
            claims["allow"] = value.split("|") if value else []
        elif key == "send_to":
            claims["send_to"] = value.split("|")
        elif key == "secret":
            secret = value + "-" + "o" * 32
        else:
            raise ValueError("unknown TOKEN option %r" % key)
    return jwt.encode(claims, secret, algorithm="HS256")


def fill_tokens(text):
    return TOKEN_RE.sub(mint_placeholder, text)


SESSION_RE = re.compile(r"^```session(?P<token> token)?(?: (?P<presence>global|rooms|off))?$")
LINE_RE = re.compile(r"^(?P<name>[A-Za-z0-9_]+)(?:(?P<colon>:)\s*(?P<cmd>.*)|(?P<dir>[<>])\s?(?P<text>.*))$")


class Block:
    def __init__(self, index, heading, start_line, token=False, presence="global"):
        self.index = index
        self.presence = presence  # the server's --presence
        self.heading = heading
        self.start_line = start_line
        self.token = token  # ```session token: a server with --jwt-secret
        self.lines = []  # (doc line number, raw text)

    def label(self):
        return "block %d (%r, PROTOCOL.md line %d)" % (self.index, self.heading, self.start_line)


def parse_blocks(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    blocks, heading, cur = [], "(no heading)", None
    for n, line in enumerate(lines, 1):
        if cur is None:
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            opener = SESSION_RE.match(line.strip())
            if opener:
                cur = Block(len(blocks) + 1, heading, n, token=bool(opener.group("token")),
                            presence=opener.group("presence") or "global")
            continue
        if line.strip() == "```":
            blocks.append(cur)
            cur = None
            continue
        if line.strip():
            cur.lines.append((n, line))
    if cur is not None:
        raise AssertionError("unterminated ```session block at PROTOCOL.md line %d" % cur.start_line)
    return blocks


def parse_line(text):
    """Returns (name, kind, arg): kind is 'open', 'close', 'send' or 'recv'."""
    m = LINE_RE.match(text)
    if not m:
        raise ValueError("unrecognised session line")
    name = m.group("name")
    if m.group("colon"):
        cmd = m.group("cmd").strip()
        if cmd == "close":
            return name, "close", None
        if cmd.startswith("closed "):
            code, _, reason = cmd[7:].strip().partition(" ")
            if not code.isdigit():
                raise ValueError("closed needs a close code")
            return name, "closed", (int(code), reason)
        if cmd.startswith("open "):
            path = cmd[5:].strip()
            if not path.startswith("/"):
                raise ValueError("open needs a path starting with /")
            return name, "open", path
        raise ValueError("unknown command %r" % cmd)
    if m.group("dir") == ">":
        return name, "send", m.group("text")
    expected = json.loads(m.group("text"))
    return name, "recv", expected


BIND_RE = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def matches(expected, actual, binds=None):
    """Structural equality where the string "…" matches any value (also inside arrays), and "{name}"
    binds a string in `binds` (a dict), or must equal the one bound."""
    if expected == ANY:
        return True
    if binds is not None and isinstance(expected, str) and BIND_RE.fullmatch(expected):
        name = expected[1:-1]
        if name in binds:
            return actual == binds[name]
        if isinstance(actual, str):
            binds[name] = actual
            return True
        return False
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and set(expected) == set(actual)
                and all(matches(expected[k], actual[k], binds) for k in expected))
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(matches(e, a, binds) for e, a in zip(expected, actual)))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return expected == actual
    return type(expected) is type(actual) and expected == actual


def dump(v):
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


class Replay:
    def __init__(self, block, port):
        self.block = block
        self.port = port
        self.conns = {}  # name -> websocket
        self.closed = set()
        self.transcript = []  # what actually happened, for the failure message
        self.binds = {}  # "{name}" values seen (see the top of this file)

    def fill(self, text):
        """TOKEN(...) placeholders and bound {name}s filled in."""
        return BIND_RE.sub(lambda m: self.binds.get(m.group(1), m.group(0)), fill_tokens(text))

    def fail(self, lineno, text, why):
        raise AssertionError("%s\n  at line %d: %s\n  %s\n  transcript so far:\n    %s" % (
            self.block.label(), lineno, text, why, "\n    ".join(self.transcript[-25:]) or "(empty)"))

    async def drain_extra(self, name, ws):
        """Everything that arrives on ws within a short bounded wait (should be nothing)."""
        extra = []
        for _ in range(20):
            try:
                m = await asyncio.wait_for(ws.recv(), QUIET)
            except (asyncio.TimeoutError, websockets.exceptions.ConnectionClosed):
                break
            extra.append(m)
        return extra

    async def run(self):
        lines = self.block.lines
        parsed = []
        for lineno, text in lines:
            try:
                parsed.append((lineno, text) + parse_line(text))
            except ValueError as e:
                self.fail(lineno, text, "cannot parse: %s" % e)
        try:
            for i, (lineno, text, name, kind, arg) in enumerate(parsed):
                await self.step(lineno, text, name, kind, arg)
                if kind == "send" and i + 1 < len(parsed):
                    nxt = parsed[i + 1]
                    if nxt[2] != name and nxt[3] in ("send", "open", "close", "closed"):
                        await asyncio.sleep(SETTLE)
            # Nothing beyond what the block shows.
            leftovers = []
            for name, ws in self.conns.items():
                if name in self.closed:
                    continue
                extra = await self.drain_extra(name, ws)
                for m in extra:
                    leftovers.append("%s< %s" % (name, m if isinstance(m, str) else repr(m)))
            if leftovers:
                self.fail(lines[-1][0], "(end of block)",
                          "connections received messages the block does not show:\n    "
                          + "\n    ".join(leftovers))
        finally:
            for name, ws in self.conns.items():
                if name not in self.closed:
                    try:
                        await asyncio.wait_for(ws.close(), RECV_TIMEOUT)
                    except Exception:
                        pass

    async def expect_closed(self, lineno, text, name, ws, want):
        """The server closes ws with want = (code, reason); nothing else may arrive first."""
        try:
            m = await asyncio.wait_for(ws.recv(), CLOSE_WAIT)
            self.fail(lineno, text, "expected the server to close, but %s received %r" % (name, m))
        except asyncio.TimeoutError:
            self.fail(lineno, text, "the server did not close %s within %.0f s" % (name, CLOSE_WAIT))
        except websockets.exceptions.ConnectionClosed as e:
            got = (e.rcvd.code, e.rcvd.reason) if e.rcvd is not None else (None, None)
            if got != want:
                self.fail(lineno, text, "closed with %r, expected %r" % (got, want))
        self.closed.add(name)
        self.transcript.append("%s: closed %s %s" % (name, want[0], want[1]))

    async def step(self, lineno, text, name, kind, arg):
        if kind == "open":
            if name in self.conns and name not in self.closed:
                self.fail(lineno, text, "%s is already open" % name)
            try:
                ws = await harness.ws_open(self.port, self.fill(arg))
            except Exception as e:
                self.fail(lineno, text, "open failed: %r" % e)
            if ws.response_headers.get("Sec-WebSocket-Protocol") is not None:
                self.fail(lineno, text, "server chose a subprotocol nobody offered: %r"
                          % ws.response_headers.get("Sec-WebSocket-Protocol"))
            self.conns[name] = ws
            self.closed.discard(name)
            self.transcript.append("%s: open %s -> ok" % (name, arg))
            return
        ws = self.conns.get(name)
        if ws is None or name in self.closed:
            self.fail(lineno, text, "%s is not open" % name)
        if kind == "close":
            extra = await self.drain_extra(name, ws)
            if extra:
                self.fail(lineno, text, "%s received messages the block does not show before closing: %s"
                          % (name, extra))
            await asyncio.wait_for(ws.close(), RECV_TIMEOUT)
            self.closed.add(name)
            self.transcript.append("%s: close" % name)
            return
        if kind == "closed":
            await self.expect_closed(lineno, text, name, ws, arg)
            return
        if kind == "send":
            try:
                await ws.send(self.fill(arg))
            except websockets.exceptions.ConnectionClosed as e:
                self.fail(lineno, text, "connection closed by the server: %r" % e)
            self.transcript.append("%s> %s" % (name, arg))
            return
        # recv
        try:
            msg = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
        except asyncio.TimeoutError:
            self.fail(lineno, text, "expected %s, but %s received nothing within %.0f s"
                      % (dump(arg), name, RECV_TIMEOUT))
        except websockets.exceptions.ConnectionClosed as e:
            self.fail(lineno, text, "expected %s, but the connection closed: %r" % (dump(arg), e))
        self.transcript.append("%s< %s" % (name, msg if isinstance(msg, str) else repr(msg)))
        if not isinstance(msg, str):
            self.fail(lineno, text, "expected a text message, got binary %r" % msg[:100])
        try:
            actual = json.loads(msg)
        except ValueError:
            self.fail(lineno, text, "received a message that is not JSON: %r" % msg)
        if not matches(arg, actual, self.binds):
            self.fail(lineno, text, "message differs:\n    expected %s\n    received %s"
                      % (dump(arg), dump(actual)))


BLOCKS = parse_blocks(DOC) if os.path.exists(DOC) else []


class ProtocolDocTest(harness.FreshServerMixin, unittest.TestCase):
    def test_doc_has_session_blocks(self):
        self.assertTrue(os.path.exists(DOC), "missing %s" % DOC)
        self.assertGreaterEqual(len(BLOCKS), 1, "no ```session blocks found in PROTOCOL.md")
        for b in BLOCKS:
            self.assertTrue(b.lines, "%s is empty" % b.label())
            for lineno, text in b.lines:
                try:
                    parse_line(text)
                except ValueError as e:
                    self.fail("%s line %d %r: %s" % (b.label(), lineno, text, e))

    def test_matcher(self):
        # The wildcard matcher itself: "…" matches any value, nothing else is loose.
        self.assertTrue(matches({"a": ANY, "b": [1, ANY]}, {"b": [1, {"x": 2}], "a": None}))
        self.assertFalse(matches({"a": 1}, {"a": 1, "b": 2}))
        self.assertFalse(matches({"a": [1, ANY]}, {"a": [1]}))
        self.assertFalse(matches({"a": 1}, {"a": True}))
        self.assertFalse(matches({"a": "1"}, {"a": 1}))
        binds = {}
        self.assertTrue(matches({"e": "{x}", "f": ["{x}"]}, {"e": "AbCd1234", "f": ["AbCd1234"]}, binds))
        self.assertEqual(binds, {"x": "AbCd1234"})
        self.assertFalse(matches({"e": "{x}"}, {"e": "other"}, binds))
        self.assertFalse(matches({"e": "{y}"}, {"e": 5}, {}))
        self.assertFalse(matches({"e": "{x}"}, {"e": "AbCd1234"}))  # without binds, a plain string

    def test_token_placeholders(self):
        # TOKEN(...) becomes a token PyJWT reads back with the claims the placeholder asked for.
        text = fill_tokens("a TOKEN(alice, rooms=lobby|team-7.*, exp=+2) b TOKEN(bob, secret=x)")
        first, second = text.split(" ")[1], text.split(" ")[3]
        claims = jwt.decode(first, DOC_SECRET, algorithms=["HS256"])
        self.assertEqual((claims["sub"], claims["rooms"]), ("alice", ["lobby", "team-7.*"]))
        self.assertAlmostEqual(claims["exp"], time.time() + 2, delta=5)
        with self.assertRaises(jwt.InvalidSignatureError):
            jwt.decode(second, DOC_SECRET, algorithms=["HS256"])


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40]


def _make_test(block):
    def test(self):
        srv = self.start_server((["--jwt-secret", DOC_SECRET] if block.token else []) + ["--presence", block.presence])
        harness.run_async(Replay(block, srv.port).run(), timeout=60 * SLOW)

    test.__doc__ = "PROTOCOL.md %s" % block.label()
    return test


for _b in BLOCKS:
    setattr(ProtocolDocTest, "test_block_%02d_%s" % (_b.index, _slug(_b.heading)), _make_test(_b))


if __name__ == "__main__":
    unittest.main()
