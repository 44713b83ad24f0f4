"""RFC 6455 frame handling, driven by a hand-written client (harness.RawWS).

Every rule runs in both modes (echo-protocol and router), as PROTOCOL.md says the frame rules hold
for both subprotocols. For each violation: the server's close frame carries the expected code and
the TCP connection then ends.
"""

import json
import unittest

import harness
from harness import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT

LIMIT = 1000  # --max-message for these servers


class FramesMixin:
    mode = None  # "echo" or "router"
    server_args = ["--max-message", str(LIMIT)]

    # ---- helpers

    def connect(self):
        if self.mode == "echo":
            ws = harness.RawWS(self.port, "/ws", protocols=["echo-protocol"])
            self.assertEqual(ws.response.header("Sec-WebSocket-Protocol"), "echo-protocol")
        else:
            ws = harness.RawWS(self.port, "/ws")
            welcome = ws.recv_json()
            self.assertEqual(welcome.get("type"), "welcome", welcome)
        self.addCleanup(ws.close_socket)
        return ws

    def ping_message(self, size=None):
        """A text message the server answers in this mode, padded to `size` bytes; and the answer."""
        if self.mode == "echo":
            text = "echo-me:" if size is None else "e" * size
            return text.encode(), (OP_TEXT, text.encode())
        base = '{"type":"ping","pad":"%s"}'
        pad = 0 if size is None else size - len(base % "")
        text = (base % ("p" * pad)).encode()
        if size is not None:
            assert len(text) == size
        return text, (OP_TEXT, b'{"type":"pong"}')

    def recv_answer(self, ws):
        op, data = ws.recv_message()
        if self.mode == "router":
            return op, json.loads(data.decode()) if op == OP_TEXT else data
        return op, data

    def assert_answer(self, ws, expected):
        op, data = ws.recv_message()
        exp_op, exp_data = expected
        self.assertEqual(op, exp_op)
        if self.mode == "router":
            self.assertEqual(json.loads(data.decode()), json.loads(exp_data.decode()))
        else:
            self.assertEqual(data, exp_data, "echo differs")

    def assert_alive(self, ws):
        msg, answer = self.ping_message()
        ws.send_frame(OP_TEXT, msg)
        self.assert_answer(ws, answer)

    def assert_closes(self, ws, code, what):
        try:
            f = ws.expect_close()
        except AssertionError as e:
            raise AssertionError("%s: %s" % (what, e))
        self.assertEqual(f.close_code, code, "%s: server closed with %r (payload %r), expected %d"
                         % (what, f.close_code, f.payload, code))

    def violation(self, frames, code, what):
        ws = self.connect()
        try:
            for fr in frames:
                ws.send_raw(fr)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.assert_closes(ws, code, what)
        ws.close_socket()

    # ---- pings, fragments, closes

    def test_ping_pong_same_payload(self):
        ws = self.connect()
        for payload in (b"", b"hello-ping", bytes(range(125))):
            ws.send_frame(OP_PING, payload)
            f = ws.recv_frame()
            self.assertIsNotNone(f, "connection closed instead of pong")
            self.assertEqual(f.opcode, OP_PONG, f)
            self.assertEqual(f.payload, payload)
            self.assertFalse(f.masked, "server frames must not be masked")
        self.assert_alive(ws)

    def test_unsolicited_pong_ignored(self):
        ws = self.connect()
        ws.send_frame(OP_PONG, b"unsolicited")
        self.assert_alive(ws)

    def test_fragmented_with_ping_between(self):
        ws = self.connect()
        if self.mode == "echo":
            parts = [b"Hel", b"lo, ", b"world"]
            expected = b"Hello, world"
        else:
            parts = [b'{"type":', b'"pi', b'ng"}']
            expected = None
        ws.send_frame(OP_TEXT, parts[0], fin=False)
        ws.send_frame(OP_PING, b"mid-ping")
        ws.send_frame(OP_CONT, parts[1], fin=False)
        ws.send_frame(OP_CONT, parts[2], fin=True)
        got_pong, got_msg = None, None
        data_frames = []
        for _ in range(10):
            if got_pong is not None and got_msg is not None:
                break
            f = ws.recv_frame()
            self.assertIsNotNone(f, "connection closed")
            self.assertNotEqual(f.opcode, OP_CLOSE, "server closed: %r" % f)
            if f.opcode == OP_PONG:
                got_pong = f.payload
            elif f.opcode in (OP_TEXT, OP_CONT):
                data_frames.append(f)
                if f.fin:
                    got_msg = b"".join(x.payload for x in data_frames)
        self.assertEqual(got_pong, b"mid-ping", "no pong for the ping between fragments")
        self.assertIsNotNone(got_msg, "reassembled message not handled")
        if self.mode == "echo":
            self.assertEqual(got_msg, expected)
        else:
            self.assertEqual(json.loads(got_msg.decode()), {"type": "pong"})

    def test_many_small_fragments(self):
        ws = self.connect()
        msg, answer = self.ping_message()
        chunks = [msg[i:i + 1] for i in range(len(msg))]
        for i, c in enumerate(chunks):
            ws.send_frame(OP_TEXT if i == 0 else OP_CONT, c, fin=(i == len(chunks) - 1))
        self.assert_answer(ws, answer)

    def test_client_close_echoed(self):
        for code in (1000, 1001, 3000, 4999):
            with self.subTest(code=code):
                ws = self.connect()
                ws.send_close(code, b"bye")
                f = ws.expect_close(reply=False)
                self.assertEqual(f.close_code, code)
                ws.close_socket()

    def test_empty_close_answered(self):
        ws = self.connect()
        ws.send_close(None)
        f = ws.expect_close(reply=False)
        self.assertIn(f.close_code, (None, 1000), "empty close answered with %r" % f.payload)

    # ---- UTF-8

    def test_invalid_utf8(self):
        self.violation([harness.build_frame(OP_TEXT, b"\xff\xfe")], 1007, "invalid UTF-8")

    def test_invalid_utf8_variants(self):
        for bad in (b"ab\xc0\xafcd", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ab\xe2"):
            with self.subTest(bad=bad):
                self.violation([harness.build_frame(OP_TEXT, bad)], 1007, "invalid UTF-8 %r" % bad)

    def test_invalid_utf8_split_across_fragments(self):
        self.violation([harness.build_frame(OP_TEXT, b"ab\xe2", fin=False),
                        harness.build_frame(OP_CONT, b"\x28cd", fin=True)],
                       1007, "invalid UTF-8 across fragments")

    def test_invalid_utf8_split_first_fragment_not_final(self):
        # The server should see the bad byte without waiting for the final fragment.
        self.violation([harness.build_frame(OP_TEXT, b"ab\xe2", fin=False),
                        harness.build_frame(OP_CONT, b"\x28cd", fin=False)],
                       1007, "invalid UTF-8 in a non-final fragment")

    def test_valid_utf8_split_across_fragments(self):
        ws = self.connect()
        if self.mode == "echo":
            ws.send_frame(OP_TEXT, b"ab\xe2\x82", fin=False)
            ws.send_frame(OP_CONT, b"\xacxy", fin=True)
            op, data = ws.recv_message()
            self.assertEqual((op, data.decode("utf-8")), (OP_TEXT, "ab\u20acxy"))
        else:
            ws.send_frame(OP_TEXT, b'{"type":"ping","x":"\xe2\x82', fin=False)
            ws.send_frame(OP_CONT, b'\xac\xf0\x9f', fin=False)
            ws.send_frame(OP_CONT, b'\x98\x80"}', fin=True)
            self.assertEqual(ws.recv_json(), {"type": "pong"})

    # ---- size limit

    def test_exactly_max_message_accepted(self):
        ws = self.connect()
        msg, answer = self.ping_message(LIMIT)
        ws.send_frame(OP_TEXT, msg)
        self.assert_answer(ws, answer)

    def test_exactly_max_message_fragmented_accepted(self):
        ws = self.connect()
        msg, answer = self.ping_message(LIMIT)
        ws.send_frame(OP_TEXT, msg[:600], fin=False)
        ws.send_frame(OP_CONT, msg[600:], fin=True)
        self.assert_answer(ws, answer)

    def test_one_over_max_message(self):
        msg, _ = self.ping_message(LIMIT + 1)
        self.violation([harness.build_frame(OP_TEXT, msg)], 1009, "message of max+1 bytes")

    def test_one_over_max_message_fragmented(self):
        # The second fragment crosses the limit and is not final: close 1009 without the rest.
        msg, _ = self.ping_message(LIMIT + 1)
        self.violation([harness.build_frame(OP_TEXT, msg[:600], fin=False),
                        harness.build_frame(OP_CONT, msg[600:], fin=False)],
                       1009, "fragmented message crossing max")

    def test_binary_over_max_message(self):
        self.violation([harness.build_frame(OP_BINARY, b"\x01" * (LIMIT + 1))], 1009, "binary over max")

    # ---- protocol errors

    def test_rsv_bits(self):
        for rsv in (4, 2, 1):
            with self.subTest(rsv=rsv):
                msg, _ = self.ping_message()
                self.violation([harness.build_frame(OP_TEXT, msg, rsv=rsv)], 1002, "RSV %d" % rsv)

    def test_rsv_on_control_frame(self):
        self.violation([harness.build_frame(OP_PING, b"x", rsv=4)], 1002, "RSV1 on ping")

    def test_reserved_opcodes(self):
        for op in (0x3, 0x7, 0xB, 0xF):
            with self.subTest(opcode=op):
                self.violation([harness.build_frame(op, b"x")], 1002, "opcode 0x%x" % op)

    def test_long_ping(self):
        self.violation([harness.build_frame(OP_PING, b"p" * 126)], 1002, "126-byte ping")

    def test_long_close(self):
        self.violation([harness.build_frame(OP_CLOSE, harness.close_payload(1000, b"r" * 124))],
                       1002, "126-byte close")

    def test_fragmented_ping(self):
        self.violation([harness.build_frame(OP_PING, b"x", fin=False)], 1002, "ping with FIN=0")

    def test_continuation_without_start(self):
        self.violation([harness.build_frame(OP_CONT, b"orphan", fin=True)], 1002, "orphan continuation")

    def test_new_data_frame_inside_fragmented_message(self):
        for op in (OP_TEXT, OP_BINARY):
            with self.subTest(opcode=op):
                self.violation([harness.build_frame(OP_TEXT, b"part", fin=False),
                                harness.build_frame(op, b"again", fin=True)],
                               1002, "new data frame in a fragmented message")

    def test_bad_close_codes(self):
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535):
            with self.subTest(code=code):
                self.violation([harness.build_frame(OP_CLOSE, harness.close_payload(code))],
                               1002, "close code %d" % code)

    def test_one_byte_close_payload(self):
        self.violation([harness.build_frame(OP_CLOSE, b"\x03")], 1002, "1-byte close payload")


class EchoFramesTest(FramesMixin, harness.ServerTestCase):
    mode = "echo"

    def test_fragmented_binary_echoed_whole(self):
        ws = self.connect()
        ws.send_frame(OP_BINARY, b"\x00\x01", fin=False)
        ws.send_frame(OP_PING, b"between")
        ws.send_frame(OP_CONT, b"\xff\xfe", fin=True)
        got = []
        for _ in range(5):
            f = ws.recv_frame()
            self.assertIsNotNone(f)
            got.append(f)
            if any(x.opcode == OP_PONG for x in got) and any(x.opcode == OP_BINARY and x.fin for x in got):
                break
        pongs = [x.payload for x in got if x.opcode == OP_PONG]
        self.assertEqual(pongs, [b"between"])
        data = [x for x in got if x.opcode in (OP_BINARY, OP_CONT)]
        self.assertEqual(data[0].opcode, OP_BINARY)
        self.assertEqual(b"".join(x.payload for x in data), b"\x00\x01\xff\xfe")

    def test_binary_at_max_accepted(self):
        ws = self.connect()
        blob = bytes(i % 256 for i in range(LIMIT))
        ws.send_frame(OP_BINARY, blob)
        op, data = ws.recv_message()
        self.assertEqual((op, data), (OP_BINARY, blob))


class RouterFramesTest(FramesMixin, harness.ServerTestCase):
    mode = "router"
    # The tests share one server; without presence, one test's connections closing cannot put
    # presence events in front of the next test's answers.
    server_args = FramesMixin.server_args + ["--presence", "off"]

    def test_binary_message_is_bad_request(self):
        ws = self.connect()
        ws.send_frame(OP_BINARY, b'{"type":"ping"}')
        err = ws.recv_json()
        self.assertEqual(err.get("type"), "error", err)
        self.assertEqual(err.get("code"), "bad_request", err)
        self.assertIsInstance(err.get("message"), str)
        ws.send_text('{"type":"ping"}')
        self.assertEqual(ws.recv_json(), {"type": "pong"})


if __name__ == "__main__":
    unittest.main()
