"""A close frame survives a proxy (issue 19): the server lingers after closing instead of resetting.

A message over --max-message is closed 1009 from its header, while the rest of its payload is still
arriving. Closing the socket then, with input unread, makes the kernel send a reset, and HAProxy may
drop the close frame it had not forwarded yet: the client sees the connection dropped without a
reason. The server shuts down writing and reads the rest away (app/io/linger.c); through HAProxy 2.6
every one of 50 oversized messages gets its close frame with 1009. The same holds for the HTTP API's
413 to a body over the limit, answered before the body is read: CivetWeb reads the rest of the body
away after the answer (its discard_unread_request_data), so no reset overtakes it either.
"""

import re
import socket
import unittest

from clusterkit import HAProxy
from harness import OP_CLOSE, OP_TEXT, RECV_TIMEOUT, RawWS, Server
from test_api import KEY

TRIALS = 50
LIMIT = 1024
PAYLOAD = 48 * 1024  # under the lingering bound (64 KiB), far over the limit: most of it comes after the close


class CloseThroughProxyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = Server(["--max-message", str(LIMIT), "--api-key", KEY])
        cls.node.start()
        try:
            cls.proxy = HAProxy([cls.node.port])
        except BaseException:
            cls.node.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.proxy.cleanup()
        finally:
            cls.node.stop_and_check()

    def oversize(self, i):
        """Sends one oversized message through the proxy; the close code the client got, or why none."""
        ws = RawWS(self.proxy.port, "/ws?user=big%d" % i)
        try:
            try:
                ws.send_frame(OP_TEXT, b"m" * PAYLOAD)
            except OSError as e:
                return "send failed: %s" % e
            while True:
                f = ws.recv_frame()
                if f is None:
                    return "TCP closed without a close frame"
                if f.opcode == OP_CLOSE:
                    ws.send_close(f.close_code)
                    return f.close_code
        except (OSError, socket.timeout) as e:
            return "read failed: %s" % e
        finally:
            ws.close_socket()

    def test_fifty_oversized_messages_get_fifty_1009s(self):
        before = self.node.metrics().get("switchboard_lingering_closes_total") or 0
        got = [self.oversize(i) for i in range(TRIALS)]
        lost = [(i, g) for i, g in enumerate(got) if g != 1009]
        self.assertEqual(lost, [], "trials without a close 1009")
        after = self.node.metrics().get("switchboard_lingering_closes_total")
        self.assertGreaterEqual(after - before, TRIALS)

    def oversize_api(self):
        """POSTs a body over the limit through the proxy; the status line the client got, or why none."""
        body = b"m" * PAYLOAD
        head = ("POST /api/send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (KEY, len(body))).encode()
        got = b""
        try:
            with socket.create_connection(("127.0.0.1", self.proxy.port), timeout=RECV_TIMEOUT) as s:
                s.sendall(head + body)
                while True:  # the head and its Content-Length of body (HAProxy keeps the connection)
                    m = re.search(rb"(?is)\r\n\r\n", got)
                    n = re.search(rb"(?i)content-length: *(\d+)", got)
                    if m and n and len(got) >= m.end() + int(n.group(1)):
                        return got.split(b"\r\n", 1)[0].decode()
                    chunk = s.recv(65536)
                    if not chunk:
                        return "closed after %r" % got[:40]
                    got += chunk
        except OSError as e:
            return "failed: %s" % e

    def test_fifty_oversized_api_bodies_get_fifty_413s(self):
        got = [self.oversize_api() for _ in range(TRIALS)]
        lost = [(i, g) for i, g in enumerate(got) if not g.startswith("HTTP/1.1 413")]
        self.assertEqual(lost, [], "requests without their 413")


if __name__ == "__main__":
    unittest.main()
