"""Replay every example of docs/API.md against a real server with real WebSocket clients.

The document's fenced blocks, by language:
  setup    once: the connections open before each example (NAME: open PATH, NAME> TEXT to send)
  sh       an example: one `curl -s ...` command using $SB and $KEY; it is run by sh with curl -i
  http     the response to the sh block before it: the status line, then header lines that must be
           present with these values, then a blank line and the body, compared byte for byte
  receive  optional, after the http block: what the setup's connections get, in order per connection
           (NAME< TEXT, compared byte for byte; NAME: closed CODE REASON); a connection not named
           gets nothing

Each example gets a fresh set of the setup's connections (the previous ones are closed first). One
test per example, named by its number and section heading.
"""

import asyncio
import os
import re
import shutil
import subprocess
import unittest

import websockets.exceptions

import harness
from harness import QUIET, RECV_TIMEOUT, SLOW

DOC = os.path.join(harness.SB_SRC, "docs", "API.md")
KEY = "doc-example-key"
LINE_RE = re.compile(r"^(?P<name>[A-Za-z0-9_]+)(?:(?P<colon>:)\s*(?P<cmd>.*)|(?P<dir>[<>])\s?(?P<text>.*))$")


def parse_doc(path):
    """Returns (setup lines, examples); each example is a dict with heading, line, sh, http, receive."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    blocks, heading, lang, body, start = [], "", None, [], 0
    for n, line in enumerate(lines, 1):
        if lang is None:
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            m = re.match(r"^```(\w+)\s*$", line)
            if m:
                lang, body, start = m.group(1), [], n
        elif line.strip() == "```":
            blocks.append((lang, body, heading, start))
            lang = None
        else:
            body.append(line)
    setup = [b[1] for b in blocks if b[0] == "setup"]
    examples = []
    for lang, body, heading, start in blocks:
        if lang == "sh":
            examples.append({"heading": heading, "line": start, "sh": "\n".join(body), "http": None, "receive": []})
        elif lang == "http":
            if not examples or examples[-1]["http"] is not None:
                raise AssertionError("API.md line %d: an http block without its sh block" % start)
            examples[-1]["http"] = body
        elif lang == "receive":
            if not examples or examples[-1]["http"] is None or examples[-1]["receive"]:
                raise AssertionError("API.md line %d: a receive block must follow an http block" % start)
            examples[-1]["receive"] = body
    if len(setup) != 1:
        raise AssertionError("API.md must have exactly one setup block, found %d" % len(setup))
    return setup[0], examples


def split_response(text):
    """(status line, [(name, value)], body) of an http block or of curl -i's output."""
    text = text.replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    head_lines = head.split("\n")
    headers = []
    for line in head_lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return head_lines[0].strip(), headers, body


class ApiDocTest(harness.ServerTestCase):
    server_args = ["--api-key", KEY]

    @classmethod
    def setUpClass(cls):
        if not shutil.which("curl"):
            raise AssertionError("curl is needed to run docs/API.md's examples")
        super().setUpClass()

    async def open_setup(self, setup):
        conns = {}
        for line in setup:
            m = LINE_RE.match(line)
            if not m:
                raise AssertionError("setup line %r" % line)
            name = m.group("name")
            if m.group("colon"):
                cmd = m.group("cmd").split()
                self.assertEqual(cmd[0], "open", line)
                conns[name], _ = await harness.open_router(self.port, path=cmd[1])
            else:
                self.assertEqual(m.group("dir"), ">", line)
                await conns[name].send(m.group("text"))
        # Every connection has handled what it was sent once its ping is answered; what arrived before
        # (presence, acks) is part of the setup.
        for ws in conns.values():
            await ws.send('{"type":"ping"}')
            await harness.recv_until(ws, lambda msg: msg.get("type") == "pong")
        for ws in conns.values():
            await harness.expect_quiet(ws)
        return conns

    def run_curl(self, sh):
        self.assertTrue(sh.startswith("curl -s "), "examples are curl -s commands: %r" % sh)
        env = dict(os.environ, SB="http://127.0.0.1:%d" % self.port, KEY=KEY)
        r = subprocess.run(["sh", "-c", "curl -i " + sh[len("curl "):]], capture_output=True, env=env,
                           timeout=RECV_TIMEOUT, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.decode("utf-8")

    def check_response(self, ex, output):
        want_status, want_headers, want_body = split_response("\n".join(ex["http"]))
        status, headers, body = split_response(output)
        self.assertEqual(status, want_status, output)
        for name, value in want_headers:
            self.assertIn((name, value), headers, output)
        self.assertEqual(body, want_body.strip("\n"))

    async def check_receive(self, ex, conns):
        closed = set()
        for line in ex["receive"]:
            m = LINE_RE.match(line)
            if not m:
                raise AssertionError("receive line %r" % line)
            ws = conns[m.group("name")]
            if m.group("dir") == "<":
                got = await harness.recv(ws)
                self.assertEqual(got, m.group("text"), "%s (%s)" % (line, ex["heading"]))
                continue
            parts = m.group("cmd").split(" ", 2)
            self.assertEqual(parts[0], "closed", line)
            with self.assertRaises(websockets.exceptions.ConnectionClosed, msg=line):
                await harness.recv(ws)
            await asyncio.wait_for(ws.wait_closed(), RECV_TIMEOUT)
            self.assertEqual((ws.close_code, ws.close_reason), (int(parts[1]), parts[2] if len(parts) > 2 else ""))
            closed.add(m.group("name"))
        for name, ws in conns.items():
            if name not in closed:
                await harness.expect_quiet(ws)

    def run_example(self, setup, ex):
        async def go():
            conns = await self.open_setup(setup)
            output = await asyncio.get_running_loop().run_in_executor(None, self.run_curl, ex["sh"])
            self.check_response(ex, output)
            await self.check_receive(ex, conns)
            for ws in conns.values():
                await ws.close()
        harness.run_async(go())
        self.server.wait_connections(0)

    def test_doc_parses(self):
        setup, examples = parse_doc(DOC)
        self.assertGreaterEqual(len(examples), 12)
        for ex in examples:
            self.assertIsNotNone(ex["http"], "API.md line %d: an sh block without its http block" % ex["line"])


def _make_test(index, ex):
    def test(self):
        setup, examples = parse_doc(DOC)
        self.run_example(setup, examples[index])
    slug = re.sub(r"[^a-z0-9]+", "_", ex["heading"].lower()).strip("_")
    test.__name__ = "test_example_%02d_%s" % (index + 1, slug)
    test.__doc__ = "API.md line %d: %s" % (ex["line"], ex["heading"])
    return test


for _i, _ex in enumerate(parse_doc(DOC)[1]):
    _t = _make_test(_i, _ex)
    setattr(ApiDocTest, _t.__name__, _t)


if __name__ == "__main__":
    unittest.main()
