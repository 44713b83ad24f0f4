"""Soak: a few hundred clients churn for SB_SOAK_SECONDS (default 60), then the server must be clean.

The server runs with --max-connections 1000 --ping-interval 2. Client slots (asyncio, one event loop):
  - WS_SLOTS websockets clients: connect (?user= from a small name pool, or anonymous then `hello`),
    join rooms, send valid and invalid commands (bad JSON, unknown types, binary, missing fields,
    too deep, too many targets), send to users that are leaving, publish, broadcast (a global budget
    keeps the fan-out within what one Python process can read), then end in one of several ways:
    a clean close, a TCP abort without a close frame (FIN), or an abort with SO_LINGER 0 (RST);
  - RAW_SLOTS hand-written clients: the same commands as raw frames plus fragmented messages,
    client pings and server-ping answers, echo-protocol, and endings the websockets client cannot
    produce: a dropped socket in the middle of a frame, a protocol error (close 1002), a drop
    during the HTTP handshake, and silence until the server's ping timeout (close 1001).
Every slot reconnects until the phase ends. Every loop is bounded in count and every wait in time.

Phases: a warm-up (WARMUP_SECONDS of the same load), then the soak. After each: every client goes,
the test waits (bounded) until /metrics shows no connection, user or room; then it opens --max-connections WebSockets at once (all must open: a connection that never
gave back its slot would show here, where a few hundred clients would not notice) and one more (503),
closes them, settles again and reads VmRSS from /proc/PID/status.

Afterwards it asserts: /healthz answers with 0 connections; a fresh client's welcome lists only
itself; RSS after the soak is within the bound below of RSS after the warm-up; ping timeouts
happened; SIGTERM gives exit 0 and stderr has no sanitizer report. The numbers are printed.

The RSS bound. Both readings are taken at rest after the same kind of load and after every worker
thread has served a WebSocket (the fill), so touched stacks and heap high-water marks match.
Measured on this server (gdb: malloc_stats / __sanitizer_get_current_allocated_bytes after each of
several 2000-connection rounds): the bytes in use do not grow at all (19945 kB, flat to the kB, in
a plain build; 19313 kB under ASan), but RSS does, by ~2.5 kB per connection in a plain build: that
is glibc's per-thread cache (tcache) filling up in ~1000 worker threads, not a leak; with
GLIBC_TUNABLES=glibc.malloc.tcache_count=0, which the server gets here, the drift is ~0.4 kB per
connection (stack pages touched deeper, fragmentation). So, plain build: after <= after-warm-up +
max(RSS_SLACK_MB, RSS_SLACK_PER_CONN x soak connections), i.e. +6 MB for a default soak (~5000-6000
connections; drift measured +2.1 MB). A leaked struct session (1136 bytes) per connection exceeds it
at ~5000 connections; checked with a build that does not free it (+8.6 MB: fails). Under ASan the
allocator's per-thread caches across ~1000 threads add ~15 kB per connection without a leak
(bytes in use flat, measured), so only a coarse x RSS_SANITIZER_RATIO is asserted (LeakSanitizer
at exit and the gauges above are the precise checks there); its quarantine is capped so that it
cannot fill up during the soak. Under TSan (RSS > 1 GB, shadow and history) RSS is only reported.
"""

import asyncio
import collections
import json
import os
import random
import re
import socket
import struct
import time
import unittest

import websockets
import websockets.exceptions

import harness
from harness import SLOW

SOAK_SECONDS = float(os.environ.get("SB_SOAK_SECONDS", "60"))
WARMUP_SECONDS = max(5.0, min(15.0, SOAK_SECONDS / 4))
SEED = int(os.environ.get("SB_SOAK_SEED", "0")) or random.SystemRandom().randrange(1, 1 << 30)

WS_SLOTS = 300
RAW_SLOTS = 60
MAX_CONNECTIONS = 1000
PING_INTERVAL = 2
USER_POOL = ["u%02d" % i for i in range(48)]   # ~8 connections per name: presence stays rare
ROOM_POOL = ["r%02d" % i for i in range(16)]
BROADCASTS_PER_S = 4.0       # every broadcast reaches all ~360 connections
SETTLE_S = 15.0 * SLOW       # after the clients are gone: closes settle (dropped sockets, 2 s grace)
RSS_SLACK_MB = 6.0           # plain build (see the module doc)
RSS_SLACK_PER_CONN = 512     # bytes per connection made in the soak, when that is more
RSS_SANITIZER_RATIO = 1.5    # ASan: after the soak <= 1.5 x after the warm-up
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "WARNING: ThreadSanitizer",
                     "ERROR: LeakSanitizer")
SERVER_TYPES = {"welcome", "presence", "message", "users", "pong", "ack", "error"}
OPEN_TIMEOUT = 20.0 * SLOW   # a handshake under load (a deadline, not an expectation)
IO_TIMEOUT = 20.0 * SLOW
MAX_SESSIONS = 100000        # per slot: the phase deadline ends it long before


class Soak:
    """Shared state of one phase: counters, anomalies (a server misbehaving), the leaving list."""

    def __init__(self, port, seconds, rng):
        self.port = port
        self.rng = rng
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + seconds
        self.stats = collections.Counter()
        self.anomalies = []
        self.leaving = collections.deque(maxlen=64)  # names whose connection is about to go
        self.bc_tokens = BROADCASTS_PER_S
        self.bc_at = self.loop.time()

    def left(self):
        return self.deadline - self.loop.time()

    def anomaly(self, text):
        self.stats["anomalies"] += 1
        if len(self.anomalies) < 50:
            self.anomalies.append(text)

    def may_broadcast(self):
        now = self.loop.time()
        self.bc_tokens = min(BROADCASTS_PER_S, self.bc_tokens + (now - self.bc_at) * BROADCASTS_PER_S)
        self.bc_at = now
        if self.bc_tokens >= 1.0:
            self.bc_tokens -= 1.0
            return True
        return False

    def target(self):
        """A user to send to: often one that is leaving right now, else any name of the pool."""
        if self.leaving and self.rng.random() < 0.5:
            return self.rng.choice(self.leaving)
        return self.rng.choice(USER_POOL)

    def check_server_message(self, text, who):
        """Every text message a router connection receives is a JSON object of a known type."""
        try:
            m = json.loads(text)
        except ValueError:
            self.anomaly("%s: server sent a text message that is not JSON: %r" % (who, text[:200]))
            return None
        if not isinstance(m, dict) or m.get("type") not in SERVER_TYPES:
            self.anomaly("%s: unexpected server message %r" % (who, text[:200]))
            return None
        return m


# --------------------------------------------------------------------------------------------
# Commands, valid and invalid (as JSON text, or bytes for binary)


def command(soak, rng, rooms, anonymous):
    """One client command; may add to `rooms` (the rooms this connection believes it joined)."""
    r = rng.random()
    mid = rng.randrange(1 << 20) if rng.random() < 0.5 else None

    def obj(o):
        if mid is not None:
            o["id"] = mid
        return json.dumps(o, separators=(",", ":"))

    if r < 0.22:
        return obj({"type": "send", "to": soak.target(), "data": {"n": rng.randrange(1000)}})
    if r < 0.30:
        return obj({"type": "send", "to": [soak.target() for _ in range(rng.randrange(1, 4))], "data": "multi"})
    if r < 0.40:
        room = rng.choice(ROOM_POOL)
        rooms.add(room)
        return obj({"type": "join", "room": room})
    if r < 0.52:
        room = rng.choice(sorted(rooms)) if rooms and rng.random() < 0.8 else rng.choice(ROOM_POOL)
        return obj({"type": "publish", "room": room, "data": {"t": "hi"}})
    if r < 0.57:
        room = rng.choice(ROOM_POOL)
        rooms.discard(room)
        return obj({"type": "leave", "room": room})
    if r < 0.60:
        if soak.may_broadcast():
            return obj({"type": "broadcast", "data": "all"})
        return obj({"type": "ping"})
    if r < 0.64:
        return obj({"type": "users"})
    if r < 0.70:
        return obj({"type": "ping"})
    if r < 0.72 and anonymous:
        return obj({"type": "hello", "user": rng.choice(USER_POOL)})
    # invalid ones: every error path
    bad = rng.randrange(9)
    if bad == 0:
        return '{"type": "send", "to": '        # not JSON
    if bad == 1:
        return obj({"type": "dance"})           # unknown type
    if bad == 2:
        return b"\x00\x01binary\xff"            # binary in router mode
    if bad == 3:
        return obj({"type": "send", "data": 1})  # no `to`
    if bad == 4:
        return "[" * 70 + "]" * 70              # too deep
    if bad == 5:
        return obj({"type": "send", "to": ["x%d" % i for i in range(101)], "data": 0})  # too many
    if bad == 6:
        return obj({"type": "join", "room": "no spaces"})
    if bad == 7:
        return obj({"type": "hello", "user": rng.choice(USER_POOL)})  # twice, or named already
    return '"just a string"'


def set_rst(sock_like):
    """SO_LINGER 0: closing the socket sends RST instead of FIN."""
    try:
        sock_like.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, AttributeError):
        pass


# --------------------------------------------------------------------------------------------
# websockets clients


async def ws_reader(soak, ws, who, router, sent_echo):
    """Drains a connection, checking what arrives. Returns the close code the server gave."""
    for _ in range(10 ** 7):
        try:
            msg = await ws.recv()
        except websockets.exceptions.ConnectionClosed as e:
            return e.rcvd.code if e.rcvd else None
        soak.stats["received"] += 1
        if not router:
            if sent_echo and msg == sent_echo[0]:
                sent_echo.popleft()
            else:
                soak.anomaly("%s: echo mismatch %r (expected %r)" % (who, msg[:100], list(sent_echo)[:1]))
            continue
        if isinstance(msg, bytes):
            soak.anomaly("%s: binary message from the server in router mode" % who)
            continue
        soak.check_server_message(msg, who)
    return None


async def ws_session(soak, rng, slot):
    st = soak.stats
    echo = rng.random() < 0.05
    anonymous = not echo and rng.random() < 0.08
    name = None if echo or anonymous else rng.choice(USER_POOL)
    path = rng.choice(["/ws", "/ws", "/"]) + ("?user=%s" % name if name else "")
    st["ws_attempts"] += 1
    try:
        ws = await websockets.connect(
            "ws://127.0.0.1:%d%s" % (soak.port, path), subprotocols=["echo-protocol"] if echo else None,
            ping_interval=None, max_size=1 << 20, compression=None,
            open_timeout=OPEN_TIMEOUT, close_timeout=5.0 * SLOW)
    except websockets.exceptions.InvalidStatusCode as e:
        st["ws_refused_%d" % e.status_code] += 1
        return
    except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
        st["ws_connect_failed"] += 1
        return
    st["connections"] += 1
    who = "ws slot %d (%s)" % (slot, name or ("echo" if echo else "anonymous"))
    reader = None
    try:
        if not echo:
            try:
                first = await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
            except asyncio.TimeoutError:
                st["ws_no_welcome_in_time"] += 1
                return
            m = soak.check_server_message(first, who) if isinstance(first, str) else None
            if not m or m.get("type") != "welcome":
                soak.anomaly("%s: first message is not a welcome: %r" % (who, first[:200]))
                return
            if name and m.get("user") != name:
                soak.anomaly("%s: welcome names %r" % (who, m.get("user")))
            st["received"] += 1
        sent_echo = collections.deque()
        reader = asyncio.ensure_future(ws_reader(soak, ws, who, not echo, sent_echo))
        rooms = set()
        ncmd = rng.randrange(5, 40)
        for _ in range(ncmd):
            if soak.left() <= 0 or reader.done():
                break
            if echo:
                msg = rng.choice(["echo %d" % rng.randrange(10 ** 6), os.urandom(rng.randrange(1, 64))])
                sent_echo.append(msg)
            else:
                msg = command(soak, rng, rooms, anonymous)
            await asyncio.wait_for(ws.send(msg), IO_TIMEOUT)
            st["sent"] += 1
            await asyncio.sleep(rng.uniform(0.02, 0.25))
        end = rng.random()
        if name:
            soak.leaving.append(name)
        if end < 0.4:
            st["end_close"] += 1
            await asyncio.wait_for(ws.close(), IO_TIMEOUT)
        elif end < 0.7:
            st["end_abort_fin"] += 1
            ws.transport.abort() if rng.random() < 0.5 else ws.transport.close()
        else:
            st["end_abort_rst"] += 1
            set_rst(ws.transport.get_extra_info("socket"))
            ws.transport.abort()
        code = await asyncio.wait_for(reader, IO_TIMEOUT)
        if code is not None:
            st["ws_close_code_%d" % code] += 1
    except (websockets.exceptions.ConnectionClosed, OSError) as e:
        st["ws_closed_early"] += 1
        if isinstance(e, websockets.exceptions.ConnectionClosed) and e.rcvd:
            st["ws_close_code_%d" % e.rcvd.code] += 1
    except asyncio.TimeoutError:
        st["ws_io_timeout"] += 1
    finally:
        if reader is not None and not reader.done():
            reader.cancel()
        ws.transport.abort()


# --------------------------------------------------------------------------------------------
# raw clients (asyncio streams + harness.build_frame)


async def read_frame(reader):
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    if n > (1 << 20):
        raise ValueError("server frame of %d bytes" % n)
    key = await reader.readexactly(4) if b1 & 0x80 else None
    payload = await reader.readexactly(n) if n else b""
    return b0, key, payload


async def raw_reader(soak, reader, writer, who, state):
    """Reads frames: answers server pings (unless state['silent']), records the close."""
    for _ in range(10 ** 7):
        try:
            b0, key, payload = await read_frame(reader)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            return state
        except ValueError as e:
            soak.anomaly("%s: %s" % (who, e))
            return state
        if key is not None:
            soak.anomaly("%s: the server masked a frame" % who)
        op = b0 & 0x0F
        if op == harness.OP_PING:
            state["pings"] += 1
            if not state["silent"]:
                writer.write(harness.build_frame(harness.OP_PONG, payload))
        elif op == harness.OP_CLOSE:
            state["close"] = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 0
            if state["answer_close"]:
                writer.write(harness.build_frame(harness.OP_CLOSE, payload[:2]))
            # the server ends the TCP connection next: keep reading until EOF
        elif op in (harness.OP_TEXT, harness.OP_BINARY):
            soak.stats["received"] += 1
            if state["router"] and op == harness.OP_TEXT:
                m = soak.check_server_message(payload.decode("utf-8", "replace"), who)
                if m and state["expect_welcome"]:
                    if m.get("type") != "welcome":
                        soak.anomaly("%s: first message is not a welcome: %r" % (who, m))
                    state["expect_welcome"] = False
            elif state["router"]:
                soak.anomaly("%s: binary frame from the server in router mode" % who)
    return state


async def raw_handshake(port, path, protocol):
    """Returns (reader, writer, status bytes); the socket stays open whatever the status."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, limit=1 << 20), OPEN_TIMEOUT)
    try:
        key = harness.ws_key()
        head = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (path, port, key))
        if protocol:
            head += "Sec-WebSocket-Protocol: %s\r\n" % protocol
        writer.write((head + "\r\n").encode())
        resp = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), OPEN_TIMEOUT)
    except BaseException:
        writer.transport.abort()
        raise
    return reader, writer, resp.split(b" ", 2)[1]


async def fill_to_capacity(port):
    """Opens --max-connections echo-protocol WebSockets at once, then one more.

    Returns (how many opened, status of the one more, how many the server closed meanwhile). A
    connection slot that a closed connection never gave back shows as opened < MAX_CONNECTIONS."""
    gate = asyncio.Semaphore(100)
    deadline = asyncio.get_running_loop().time() + 10 * SLOW

    async def keep(reader, writer, gone):  # answers the server's pings until the end
        try:
            for _ in range(10 ** 6):
                b0, _, payload = await read_frame(reader)
                if b0 & 0x0F == harness.OP_PING:
                    writer.write(harness.build_frame(harness.OP_PONG, payload))
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError):
            gone.append(1)

    async def one(gone):
        async with gate:
            for _ in range(1000):  # a 503 right after the settle: a slot still being given back
                try:
                    reader, writer, status = await raw_handshake(port, "/ws", "echo-protocol")
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                    return None
                if status == b"101":
                    return writer, asyncio.ensure_future(keep(reader, writer, gone))
                writer.transport.abort()
                if status != b"503" or asyncio.get_running_loop().time() > deadline:
                    return None
                await asyncio.sleep(0.05)
        return None

    gone = []
    opened = [c for c in await asyncio.gather(*(one(gone) for _ in range(MAX_CONNECTIONS))) if c]
    try:
        try:
            _, writer, extra = await raw_handshake(port, "/ws", "echo-protocol")
            writer.transport.abort()
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            extra = repr(e).encode()
        return len(opened), extra.decode("latin-1"), len(gone)
    finally:
        for writer, task in opened:
            writer.transport.close()
            task.cancel()
        await asyncio.gather(*(t for _, t in opened), return_exceptions=True)


async def raw_session(soak, rng, slot):
    st = soak.stats
    kind = rng.random()
    if kind < 0.06:  # a drop in the middle of the HTTP handshake
        st["raw_handshake_drops"] += 1
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", soak.port), OPEN_TIMEOUT)
            writer.write(b"GET /ws?user=half HTTP/1.1\r\nHost: x\r\nUpgrade: websock")
            await asyncio.sleep(rng.uniform(0, 0.3))
            if rng.random() < 0.5:
                set_rst(writer.get_extra_info("socket"))
            writer.transport.abort()
        except (OSError, asyncio.TimeoutError):
            pass
        return
    echo = rng.random() < 0.15
    name = None if echo or rng.random() < 0.2 else rng.choice(USER_POOL)
    path = rng.choice(["/ws", "/"]) + ("?user=%s" % name if name else "")
    protocol = "echo-protocol" if echo else rng.choice([None, "json", "chat.v9"])
    st["raw_attempts"] += 1
    try:
        reader, writer, status = await raw_handshake(soak.port, path, protocol)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        st["raw_connect_failed"] += 1
        return
    if status != b"101":
        st["raw_refused_%s" % status.decode("latin-1")] += 1
        writer.transport.abort()
        return
    st["connections"] += 1
    who = "raw slot %d (%s)" % (slot, name or ("echo" if echo else "anonymous"))
    ending = rng.choices(["close", "fin", "rst", "midframe", "protocol_error", "silent"],
                         [25, 20, 20, 15, 10, 10])[0]
    if ending == "silent" and soak.left() < 3 * PING_INTERVAL + 4:
        ending = "rst"
    state = {"pings": 0, "close": None, "silent": False, "answer_close": True, "router": not echo,
             "expect_welcome": not echo}
    task = asyncio.ensure_future(raw_reader(soak, reader, writer, who, state))
    rooms = set()
    try:
        for _ in range(rng.randrange(3, 25)):
            if soak.left() <= 0 or task.done():
                break
            r = rng.random()
            if echo:
                writer.write(harness.build_frame(harness.OP_TEXT, "echo-%d" % rng.randrange(1000)))
            elif r < 0.15:  # a fragmented command with a ping between the fragments
                text = json.dumps({"type": "send", "to": soak.target(), "data": "frag" * 10}).encode()
                cut = rng.randrange(1, len(text))
                writer.write(harness.build_frame(harness.OP_TEXT, text[:cut], fin=False)
                             + harness.build_frame(harness.OP_PING, b"p")
                             + harness.build_frame(harness.OP_CONT, text[cut:]))
            elif r < 0.22:
                writer.write(harness.build_frame(harness.OP_PING, b"raw"))
            else:
                msg = command(soak, rng, rooms, name is None)
                op = harness.OP_BINARY if isinstance(msg, bytes) else harness.OP_TEXT
                writer.write(harness.build_frame(op, msg))
            st["sent"] += 1
            await asyncio.wait_for(writer.drain(), IO_TIMEOUT)
            await asyncio.sleep(rng.uniform(0.02, 0.3))
        if name:
            soak.leaving.append(name)
        st["raw_end_" + ending] += 1
        if ending == "close":
            writer.write(harness.build_frame(harness.OP_CLOSE, struct.pack("!H", 1000)))
            state["answer_close"] = False
            await asyncio.wait_for(task, IO_TIMEOUT)
            if state["close"] is not None:
                st["raw_close_code_%d" % state["close"]] += 1
        elif ending == "midframe":  # header says 100 bytes, 16 follow, then the socket goes
            frame = harness.build_frame(harness.OP_TEXT, b"x" * 100)
            writer.write(frame[:2 + 4 + 16])
            await asyncio.sleep(rng.uniform(0, 0.5))
            if rng.random() < 0.5:
                set_rst(writer.get_extra_info("socket"))
            writer.transport.abort()
        elif ending == "protocol_error":  # RSV1 without an extension: close 1002
            writer.write(harness.build_frame(harness.OP_TEXT, "rsv", rsv=4))
            await asyncio.wait_for(task, IO_TIMEOUT)
            st["raw_close_code_%s" % state["close"]] += 1
            if state["close"] not in (1002, None):
                soak.anomaly("%s: RSV1 frame closed with %r, expected 1002" % (who, state["close"]))
        elif ending == "silent":  # no pong, nothing: the server's ping timeout closes it (1001)
            state["silent"] = True
            await asyncio.wait_for(task, 3 * PING_INTERVAL + 10 * SLOW)
            st["raw_close_code_%s" % state["close"]] += 1
            if state["close"] == 1001:
                st["raw_ping_timeouts_seen"] += 1
        elif ending == "rst":
            set_rst(writer.get_extra_info("socket"))
            writer.transport.abort()
        else:  # fin: the socket just closes, no close frame
            writer.transport.close()
    except (OSError, asyncio.IncompleteReadError):
        st["raw_closed_early"] += 1
    except asyncio.TimeoutError:
        st["raw_io_timeout"] += 1
    finally:
        writer.transport.abort()
        if not task.done():
            task.cancel()
        st["raw_server_pings"] += state["pings"]


# --------------------------------------------------------------------------------------------


async def slot_loop(soak, slot, session):
    rng = random.Random(SEED * 1000 + slot)
    await asyncio.sleep(rng.uniform(0, 2.0))  # a ramp, not a stampede
    for _ in range(MAX_SESSIONS):
        if soak.left() <= 0:
            return
        budget = soak.left() + 3 * PING_INTERVAL + 30 * SLOW
        try:
            await asyncio.wait_for(session(soak, rng, slot), budget)
        except asyncio.TimeoutError:
            soak.stats["session_overran"] += 1


async def run_phase(port, seconds):
    soak = Soak(port, seconds, random.Random(SEED))
    tasks = [slot_loop(soak, i, ws_session) for i in range(WS_SLOTS)]
    tasks += [slot_loop(soak, WS_SLOTS + i, raw_session) for i in range(RAW_SLOTS)]
    await asyncio.gather(*tasks)
    return soak


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1))


def sanitizer_of(pid):
    """'asan', 'tsan' or '' from the libraries mapped into the server."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            maps = f.read()
    except OSError:
        return ""
    if "libtsan" in maps:
        return "tsan"
    if "libasan" in maps:
        return "asan"
    return ""


class SoakTest(harness.FreshServerMixin, unittest.TestCase):
    def settle(self, srv, what):
        """Waits (bounded) until nothing is left open; returns the last metrics."""
        deadline = time.monotonic() + SETTLE_S
        m = None
        while time.monotonic() < deadline:
            m = srv.metrics()
            if (m.get("switchboard_connections_open"), m.get("switchboard_users_online"),
                    m.get("switchboard_rooms")) == (0, 0, 0):
                break
            time.sleep(0.2)
        self.assertEqual(
            (m.get("switchboard_connections_open"), m.get("switchboard_users_online"), m.get("switchboard_rooms")),
            (0, 0, 0), "%s: connections/users/rooms still open %.0f s after the clients left\n%s"
            % (what, SETTLE_S, m.text))
        return m

    def phase(self, srv, seconds, what):
        """The load, then every connection slot at once, then the settle; returns (soak, metrics, RSS)."""
        started = time.monotonic()
        soak = harness.run_async(run_phase(srv.port, seconds), timeout=seconds + 120 * SLOW)
        elapsed = time.monotonic() - started
        self.assertTrue(srv.alive(), "server died during the %s\n%s" % (what, srv.stderr_tail()))
        print("\n%s: %.0f s, %d connections, %d messages sent, %d received"
              % (what, elapsed, soak.stats["connections"], soak.stats["sent"], soak.stats["received"]), flush=True)
        print("  %s" % dict(sorted(soak.stats.items())), flush=True)
        self.assertEqual(soak.anomalies, [], "%s: the server misbehaved (%d anomalies)"
                         % (what, soak.stats["anomalies"]))
        self.assertGreater(soak.stats["connections"], 0, "%s: no client got in" % what)
        self.settle(srv, what)
        # Every slot must be free again: a connection that never gave its slot back (or its
        # --max-connections count) would leave fewer than MAX_CONNECTIONS to open now.
        opened, extra, gone = harness.run_async(fill_to_capacity(srv.port), timeout=120 * SLOW)
        print("  then %d of %d connections open at once, one more: %s, closed meanwhile: %d"
              % (opened, MAX_CONNECTIONS, extra, gone), flush=True)
        self.assertEqual(opened, MAX_CONNECTIONS, "%s: only %d of --max-connections %d could be open at "
                         "once after the clients left: connection slots leaked?" % (what, opened, MAX_CONNECTIONS))
        self.assertEqual((extra, gone), ("503", 0), "%s: one more than --max-connections" % what)
        m = self.settle(srv, what + " and the fill")
        rss = rss_kb(srv.proc.pid)
        print("  at rest: RSS %.1f MB" % (rss / 1024), flush=True)
        return soak, m, rss

    def test_soak(self):
        print("\nsoak: %.0f s after a %.0f s warm-up, %d websockets + %d raw slots, seed %d (SB_SOAK_SEED)"
              % (SOAK_SECONDS, WARMUP_SECONDS, WS_SLOTS, RAW_SLOTS, SEED), flush=True)
        # glibc's per-thread cache would hold freed blocks in each of ~1000 workers: RSS creeps up
        # with no leak (measured, module doc). Without it, RSS follows what is allocated.
        env = {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"}
        if harness.SANITIZE:
            # ASan's quarantine of freed blocks (global, and per thread times ~1000 threads) is capped
            # so that it cannot fill up during the soak alone.
            asan = os.environ.get("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
            env["ASAN_OPTIONS"] = asan + ":quarantine_size_mb=32:thread_local_quarantine_size_kb=16"
        srv = self.start_server(["--max-connections", str(MAX_CONNECTIONS),
                                 "--ping-interval", str(PING_INTERVAL)], env=env)
        kind = sanitizer_of(srv.proc.pid) or "plain"
        rss_start = rss_kb(srv.proc.pid)

        _, _, rss_warm = self.phase(srv, WARMUP_SECONDS, "warm-up")
        soak, m, rss_after = self.phase(srv, SOAK_SECONDS, "soak")

        self.assertEqual(srv.get("/healthz").status, 200)
        self.assertEqual(srv.healthz()["connections"], 0)

        async def fresh():
            ws, welcome = await harness.open_router(srv.port, "soak_fresh")
            await ws.close()
            return welcome
        welcome = harness.run_async(fresh())
        self.assertEqual(welcome.get("users"), ["soak_fresh"], welcome)

        conns = soak.stats["connections"]
        if kind == "plain":
            bound_kb = rss_warm + max(RSS_SLACK_MB * 1024, RSS_SLACK_PER_CONN * conns / 1024)
        else:
            bound_kb = rss_warm * RSS_SANITIZER_RATIO
        print("RSS (%s build): start %.1f MB, after the warm-up %.1f MB, after the soak %.1f MB (%+.1f MB "
              "for %d connections; bound %.1f MB%s)"
              % (kind, rss_start / 1024, rss_warm / 1024, rss_after / 1024, (rss_after - rss_warm) / 1024,
                 conns, bound_kb / 1024, ", not asserted under TSan" if kind == "tsan" else ""), flush=True)
        print("metrics: ping timeouts %d, slow consumers %d, closes sent %s" % (
            m.get("switchboard_ping_timeouts_total"), m.get("switchboard_slow_consumers_total"),
            {dict(k[1]).get("code"): int(v) for k, v in m.samples.items()
             if k[0] == "switchboard_closes_sent_total" and v}), flush=True)
        if kind != "tsan":
            self.assertLessEqual(rss_after, bound_kb,
                                 "RSS grew from %d kB after the warm-up to %d kB after a soak of %d "
                                 "connections: a leak?" % (rss_warm, rss_after, conns))
        if SOAK_SECONDS >= 3 * PING_INTERVAL + 14:  # silent clients start only with time left to time out
            self.assertGreater(m.get("switchboard_ping_timeouts_total"), 0,
                               "no ping timeout happened (silent raw clients should cause some)")

        rc = srv.stop(timeout=20 * SLOW)
        err = srv.stderr_text()
        self.assertEqual(rc, 0, "exit code after SIGTERM\n%s" % srv.stderr_tail())
        for marker in SANITIZER_MARKERS:
            self.assertNotIn(marker, err, "sanitizer report in the server's stderr\n%s" % srv.stderr_tail(200))


if __name__ == "__main__":
    unittest.main()
