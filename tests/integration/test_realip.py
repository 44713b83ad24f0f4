"""Client addresses behind trusted proxies (--trusted-proxies, issue 22): per-address limits and logs see
the real client, and only a trusted peer can name one.

Every server here runs `--trusted-proxies 127.0.0.1 --max-per-ip 2`. Clients get addresses of their own
by binding their sockets to 127.0.0.2, 127.0.0.3, ... (all of 127/8 is loopback on Linux); the proxies,
connecting to 127.0.0.1, come from 127.0.0.1, the one trusted address.

- Through real proxies running the deploy/ recipes (TLS, self-signed): HAProxy with `send-proxy-v2`
  (the PROXY protocol, X-Forwarded-For removed), HAProxy with `option forwardfor`, nginx and Caddy with
  X-Forwarded-For: two WebSockets from 127.0.0.2 and two from 127.0.0.3 open, a third from 127.0.0.2
  gets 429 (counted per proxy, the 3rd of the whole site would); the log names each client; an
  X-Forwarded-For a client forges is to the left of what the proxy appends, and names nobody.
- Raw sockets from the trusted address: PROXY v1 and v2 (IPv4, IPv6, LOCAL, sent in pieces), the limit
  per named client, an invalid header is 400 and counted.
- From an untrusted address: a PROXY header is 400, X-Forwarded-For is ignored (the limit counts the
  peer), and the log names the peer."""

import http.client
import re
import socket
import struct
import time
import unittest

import websockets

import harness
from harness import RECV_TIMEOUT, recv_json
from test_proxies import Caddy, HAProxyTLS, Nginx, replace_once, start_behind_proxy, stop_behind_proxy

SERVER_ARGS = ["--trusted-proxies", "127.0.0.1", "--max-per-ip", "2"]
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v1(src, sport, dport):
    family = "TCP6" if ":" in src else "TCP4"
    dst = "::1" if ":" in src else "127.0.0.1"
    return ("PROXY %s %s %s %d %d\r\n" % (family, src, dst, sport, dport)).encode()


def proxy_v2(src=None, sport=0, dport=0):
    """A v2 PROXY command naming src, or LOCAL (what HAProxy's health checks send) when src is None."""
    if src is None:
        return V2_SIG + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    if ":" in src:
        fam, addrs = 0x21, socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, "::1")
    else:
        fam, addrs = 0x11, socket.inet_aton(src) + socket.inet_aton("127.0.0.1")
    body = addrs + struct.pack("!HH", sport, dport)
    return V2_SIG + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


def connect_from(source, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(RECV_TIMEOUT)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def upgrade_request(port, extra=""):
    return ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n" % (port, harness.ws_key(), extra)).encode()


def get_request(port, extra=""):
    return ("GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n" % (port, extra)).encode()


def send_raw(source, port, pieces, pause=0.0):
    """Sends the byte strings in turn from `source`; returns (status, socket): the socket stays open on a
    101 (its --max-per-ip slot held), else it is closed and None."""
    sock = connect_from(source, port)
    for piece in pieces:
        sock.sendall(piece)
        if pause:
            time.sleep(pause)
    head, _ = harness._read_http_head(sock, time.monotonic() + RECV_TIMEOUT)
    status = harness._parse_head(head)[0]
    if status == 101:
        return status, sock
    sock.close()
    return status, None


class ServerMixin:
    def setUp(self):
        self.server = self.start_server(SERVER_ARGS)
        self.socks = []
        self.addCleanup(lambda: [s.close() for s in self.socks])

    def upgrade(self, source, pieces, pause=0.0):
        status, sock = send_raw(source, self.server.port, pieces, pause)
        if sock:
            self.socks.append(sock)
        return status

    def assert_logged(self, pattern):
        text = self.server.wait_log(pattern)
        self.assertRegex(text, pattern)

    def refused_bad(self):
        return self.server.metrics().get("switchboard_request_heads_refused_total", reason="bad_request")


class RawProxyHeaderTest(ServerMixin, harness.FreshServerMixin, unittest.TestCase):
    """PROXY headers sent by hand from the trusted 127.0.0.1."""

    def test_v1_names_the_client(self):
        port = self.server.port
        self.assertEqual(self.upgrade("127.0.0.1", [proxy_v1("198.51.100.7", 5555, port) + upgrade_request(port)]), 101)
        self.assert_logged(r"ws open conn-\S+ user=\S+ remote=198\.51\.100\.7:5555 ")
        self.assertEqual(self.upgrade("127.0.0.1", [proxy_v1("198.51.100.8", 5556, port) + get_request(port)]), 200)
        self.assert_logged(r"http GET / 200 198\.51\.100\.8\n")

    def test_v2_names_the_client_ipv4_and_ipv6(self):
        port = self.server.port
        self.assertEqual(self.upgrade("127.0.0.1", [proxy_v2("203.0.113.9", 4444, port) + upgrade_request(port)]), 101)
        self.assert_logged(r"remote=203\.0\.113\.9:4444 ")
        self.assertEqual(self.upgrade("127.0.0.1", [proxy_v2("2001:db8::7", 4445, port) + upgrade_request(port)]), 101)
        self.assert_logged(r"remote=2001:db8::7:4445 ")
        self.assertEqual(self.upgrade("127.0.0.1", [proxy_v2("2001:db8::8", 4446, port) + get_request(port)]), 200)
        self.assert_logged(r"http GET / 200 2001:db8::8\n")  # CivetWeb gets the IPv6 client too

    def test_header_in_pieces(self):
        """The header and the request arrive a few bytes at a time: read on until the header is whole."""
        port = self.server.port
        for header in (proxy_v1("198.51.100.20", 1000, port), proxy_v2("198.51.100.21", 1001, port)):
            data = header + upgrade_request(port)
            pieces = [data[i:i + 5] for i in range(0, len(data), 5)]
            with self.subTest(header=header[:6]):
                self.assertEqual(self.upgrade("127.0.0.1", pieces, pause=0.005), 101)
        self.assert_logged(r"remote=198\.51\.100\.20:1000 ")
        self.assert_logged(r"remote=198\.51\.100\.21:1001 ")

    def test_limit_counts_each_named_client(self):
        port = self.server.port
        for i in range(2):
            self.assertEqual(self.upgrade("127.0.0.1", [proxy_v2("198.51.100.1", 2000 + i, port) + upgrade_request(port)]), 101)
        self.assertEqual(self.upgrade("127.0.0.1", [proxy_v1("198.51.100.1", 2002, port) + upgrade_request(port)]), 429)
        for i in range(2):
            self.assertEqual(self.upgrade("127.0.0.1", [proxy_v1("198.51.100.2", 2100 + i, port) + upgrade_request(port)]), 101)
        self.server.wait_connections(4)
        # a slot is the named client's: one closed, that client may open one again
        self.socks.pop(0).close()
        self.server.wait_connections(3)
        self.assertEqual(self.upgrade("127.0.0.1", [proxy_v1("198.51.100.1", 2003, port) + upgrade_request(port)]), 101)

    def test_without_header_a_trusted_peer_is_served(self):
        """nginx, Caddy and HAProxy's health checks send no PROXY header: the request starts at once, and
        X-Forwarded-For names the client; a request with empty lines first is no header either."""
        port = self.server.port
        self.assertEqual(self.upgrade("127.0.0.1", [upgrade_request(port, "X-Forwarded-For: 198.51.100.30\r\n")]), 101)
        self.assert_logged(r"remote=198\.51\.100\.30:0 ")
        self.assertEqual(self.upgrade("127.0.0.1", [b"\r\n\r\n" + get_request(port)]), 200)
        self.assertEqual(self.upgrade("127.0.0.1", [b"\r\n", b"\r\n" + get_request(port)], pause=0.05), 200)
        self.assertEqual(self.server.get("/healthz").status, 200)

    def test_local_and_unknown_keep_the_proxy(self):
        """A header naming nobody (HAProxy's health checks with check-send-proxy) leaves the proxy's own
        address, and X-Forwarded-For is not read after it."""
        port = self.server.port
        xff = "X-Forwarded-For: 198.51.100.40\r\n"
        self.assertEqual(self.upgrade("127.0.0.1", [proxy_v2() + upgrade_request(port, xff)]), 101)
        self.assertEqual(self.upgrade("127.0.0.1", [b"PROXY UNKNOWN\r\n" + upgrade_request(port, xff)]), 101)
        self.assertEqual(self.upgrade("127.0.0.1", [proxy_v2() + upgrade_request(port, xff)]), 429)
        self.assert_logged(r"remote=127\.0\.0\.1:\d+ ")
        self.assertNotIn("198.51.100.40", self.server.stderr_text())

    def test_invalid_header_is_400_and_counted(self):
        port = self.server.port
        before = self.refused_bad()
        bad = [b"PROXY TCP4 nobody 127.0.0.1 1 2\r\n", b"PROXY TCP4 198.51.100.1 127.0.0.1 70000 2\r\n",
               V2_SIG + bytes([0x21, 0x11, 0, 4]) + b"\x00" * 4, V2_SIG + bytes([0x31, 0x11, 0, 0])]
        for header in bad:
            with self.subTest(header=header):
                self.assertEqual(self.upgrade("127.0.0.1", [header + upgrade_request(port)]), 400)
        self.assertEqual(self.refused_bad() - before, len(bad))
        self.assertEqual(self.server.get("/healthz").status, 200)


class UntrustedPeerTest(ServerMixin, harness.FreshServerMixin, unittest.TestCase):
    """From 127.0.0.5, not trusted: the headers that name a client are not believed."""

    def test_proxy_header_is_a_bad_request(self):
        port = self.server.port
        before = self.refused_bad()
        for header in (proxy_v1("198.51.100.50", 1, port), proxy_v2("198.51.100.51", 2, port)):
            with self.subTest(header=header[:6]):
                self.assertEqual(self.upgrade("127.0.0.5", [header + upgrade_request(port)]), 400)
        self.assertEqual(self.refused_bad() - before, 2)
        self.assertNotIn("198.51.100.5", self.server.stderr_text())

    def test_forged_forwarded_for_is_ignored(self):
        port = self.server.port
        for i in range(2):
            xff = "X-Forwarded-For: 198.51.100.%d\r\n" % (60 + i)
            self.assertEqual(self.upgrade("127.0.0.5", [upgrade_request(port, xff)]), 101)
        self.assertEqual(self.upgrade("127.0.0.5", [upgrade_request(port, "X-Forwarded-For: 198.51.100.62\r\n")]), 429)
        self.assertEqual(self.upgrade("127.0.0.6", [upgrade_request(port)]), 101)  # another peer: its own count
        self.assert_logged(r"remote=127\.0\.0\.5:\d+ ")
        self.assertEqual(self.upgrade("127.0.0.5", [get_request(port, "X-Forwarded-For: 198.51.100.63\r\n")]), 200)
        self.assert_logged(r"http GET / 200 127\.0\.0\.5\n")
        self.assertNotIn("198.51.100.6", self.server.stderr_text())


class ThroughProxyMixin:
    """The recipe of proxy_class in front of a server with SERVER_ARGS, clients from their own addresses.
    port_known: whether the log can name the client's port (the PROXY protocol carries it)."""
    proxy_class = None
    port_known = False
    edit = None  # what the test changes in the recipe

    @classmethod
    def setUpClass(cls):
        start_behind_proxy(cls, SERVER_ARGS, cls.edit)

    @classmethod
    def tearDownClass(cls):
        stop_behind_proxy(cls)

    async def open(self, source, headers=None):
        origin = "https://127.0.0.1:%d" % self.proxy.port
        ws = await websockets.connect("wss://127.0.0.1:%d/ws" % self.proxy.port, ssl=self.cert.context(),
                                      origin=origin, extra_headers=headers, open_timeout=RECV_TIMEOUT,
                                      ping_interval=None, local_addr=(source, 0))
        self.assertEqual((await recv_json(ws))["type"], "welcome")
        return ws

    async def status_of(self, source):
        try:
            ws = await self.open(source)
        except websockets.exceptions.InvalidStatusCode as e:
            return e.status_code
        await ws.close()
        return 101

    def test_limit_applies_per_real_client(self):
        async def go():
            a = [await self.open("127.0.0.2") for _ in range(2)]
            b = [await self.open("127.0.0.3") for _ in range(2)]
            self.assertEqual(await self.status_of("127.0.0.2"), 429)
            self.assertEqual(await self.status_of("127.0.0.3"), 429)
            ports = [ws.local_address[1] for ws in a + b]
            for ws in a + b:
                await ws.close()
            self.server.wait_connections(0)
            self.assertEqual(await self.status_of("127.0.0.2"), 101)  # the slots were given back
            return ports
        ports = harness.run_async(go())
        for i, client in enumerate(["127.0.0.2"] * 2 + ["127.0.0.3"] * 2):
            # the PROXY protocol carries the client's own port; X-Forwarded-For none (0)
            opened = r"ws open \S+ user=\S+ remote=%s:%d " % (re.escape(client), ports[i] if self.port_known else 0)
            self.assertRegex(self.server.wait_log(opened), opened)
            self.assertRegex(self.server.stderr_text(), r"ws refused " + re.escape(client) + r" /ws 429")
        self.assertNotRegex(self.server.stderr_text(), r"remote=127\.0\.0\.1:")

    def test_http_log_names_the_client(self):
        conn = http.client.HTTPSConnection("127.0.0.1", self.proxy.port, context=self.cert.context(),
                                                   timeout=RECV_TIMEOUT, source_address=("127.0.0.4", 0))
        try:
            conn.request("GET", "/")
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
        finally:
            conn.close()
        self.assertRegex(self.server.wait_log(r"http GET / 200 127\.0\.0\.4"), r"http GET / 200 127\.0\.0\.4\n")

    def test_forged_forwarded_for_names_nobody(self):
        """What a client writes in X-Forwarded-For is left of what the proxy appends (or replaced, or,
        with the PROXY protocol, not read): the client is still its real address."""
        async def go():
            ws = await self.open("127.0.0.5", headers={"X-Forwarded-For": "198.51.100.99"})
            await ws.close()
        harness.run_async(go())
        self.assertRegex(self.server.wait_log(r"remote=127\.0\.0\.5"), r"remote=127\.0\.0\.5:")
        self.assertNotIn("198.51.100.99", self.server.stderr_text())


def haproxy_send_proxy_v2(text):
    """The recipe's alternative: the PROXY protocol instead of X-Forwarded-For (so only it can name the client)."""
    text = replace_once(text, "    option forwardfor ", "    # option forwardfor ")
    return replace_once(text, " check inter 2s", " check inter 2s send-proxy-v2")


class HAProxyProxyProtocolTest(ThroughProxyMixin, unittest.TestCase):
    proxy_class = HAProxyTLS
    port_known = True
    edit = staticmethod(haproxy_send_proxy_v2)


class HAProxyForwardForTest(ThroughProxyMixin, unittest.TestCase):
    proxy_class = HAProxyTLS


class NginxForwardedForTest(ThroughProxyMixin, unittest.TestCase):
    proxy_class = Nginx


class CaddyForwardedForTest(ThroughProxyMixin, unittest.TestCase):
    proxy_class = Caddy


if __name__ == "__main__":
    unittest.main()
