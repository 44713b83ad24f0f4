#!/usr/bin/env python3
"""Writes the hand-made seed inputs of fuzz/corpus/<target>/ (seed-*); run from anywhere.

    fuzz/seed_corpus.py            rewrite the seeds in fuzz/corpus/
    fuzz/seed_corpus.py DIR        write them under DIR/<target>/ instead (DIR is created)
    fuzz/seed_corpus.py --check    write nothing; exit 1 and name every seed-* file of fuzz/corpus/
                                   that differs from what this script makes, is missing, or is stale

The router seeds include every client line of the session blocks in docs/PROTOCOL.md (```session and
```session token blocks alike, whatever their presence mode; TOKEN(...) placeholders become tokens minted here, as
tests/integration/test_protocol_doc.py mints them), and the api seeds every body of docs/API.md's curl
examples, so the corpus follows the documented protocol. Only the targets this script makes seeds for
are touched: their old seed-* files are replaced; other files in the corpus directories (crash-*,
regression inputs, anything libFuzzer found) and the seeds of other targets (cluster, redact: written
by hand) are left alone."""
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")  # where write() puts seeds; generate() points it at its target


def write(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- assembler: byte 0 = max selector (1 + 4 * b, 0xFF = 65536), then (bits, len16, payload)... ----
FIN, CONT, TEXT, BIN, CLOSE, PING, PONG = 0x80, 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def frames(max_sel, *fs):
    out = bytes([max_sel])
    for bits, payload in fs:
        out += bytes([bits]) + struct.pack(">H", len(payload)) + payload
    return out


def close(code, reason=b""):
    return struct.pack(">H", code) + reason


def assembler_seeds():
    s = {
        "single-text": frames(0xFF, (FIN | TEXT, b'{"type":"ping"}')),
        "single-binary": frames(0xFF, (FIN | BIN, b"\xff\x00\xc0")),
        "empty-text": frames(0xFF, (FIN | TEXT, b"")),
        "fragments-ping-pong-between": frames(0xFF, (TEXT, b"hel"), (FIN | PING, b"are you there"), (CONT, b"lo"),
                                              (FIN | PONG, b""), (FIN | CONT, b" world")),
        "fragments-binary": frames(0xFF, (BIN, b"\x01"), (CONT, b""), (FIN | CONT, b"\x02")),
        "orphan-continuation": frames(0xFF, (FIN | CONT, b"x")),
        "orphan-after-message": frames(0xFF, (FIN | TEXT, b"a"), (CONT, b"b")),
        "new-message-inside-fragmented": frames(0xFF, (TEXT, b"first"), (FIN | TEXT, b"second")),
        "rsv1": frames(0xFF, (FIN | 0x40 | TEXT, b"x")),
        "rsv-on-control": frames(0xFF, (FIN | 0x10 | PING, b"")),
        "reserved-opcode-3": frames(0xFF, (FIN | 0x3, b"")),
        "reserved-opcode-b": frames(0xFF, (FIN | 0xB, b"")),
        "ping-125": frames(0xFF, (FIN | PING, b"p" * 125)),
        "ping-126": frames(0xFF, (FIN | PING, b"p" * 126)),
        "close-126": frames(0xFF, (FIN | CLOSE, close(1000, b"r" * 124))),
        "fragmented-ping": frames(0xFF, (PING, b"")),
        "fragmented-close": frames(0xFF, (CLOSE, close(1000))),
        "close-1000-reason": frames(0xFF, (FIN | CLOSE, close(1000, b"bye"))),
        "close-empty": frames(0xFF, (FIN | CLOSE, b"")),
        "close-1-byte": frames(0xFF, (FIN | CLOSE, b"\x03")),
        "close-999": frames(0xFF, (FIN | CLOSE, close(999))),
        "close-1005": frames(0xFF, (FIN | CLOSE, close(1005))),
        "close-1015": frames(0xFF, (FIN | CLOSE, close(1015))),
        "close-2999": frames(0xFF, (FIN | CLOSE, close(2999))),
        "close-4999": frames(0xFF, (FIN | CLOSE, close(4999))),
        "close-5000": frames(0xFF, (FIN | CLOSE, close(5000))),
        "close-reason-bad-utf8": frames(0xFF, (FIN | CLOSE, close(1000, b"caf\xc3"))),
        "close-inside-fragmented": frames(0xFF, (TEXT, b"part"), (FIN | CLOSE, close(1001))),
        # max selector 15: --max-message 61
        "max-exact-single": frames(15, (FIN | TEXT, b"m" * 61)),
        "max-plus-one-single": frames(15, (FIN | TEXT, b"m" * 62)),
        "max-exact-fragments": frames(15, (TEXT, b"f" * 30), (FIN | PING, b""), (FIN | CONT, b"f" * 31)),
        "max-plus-one-fragments": frames(15, (TEXT, b"f" * 30), (CONT, b"f" * 31), (FIN | CONT, b"f")),
        "utf8-split-valid": frames(0xFF, (TEXT, b"\xf0\x9f"), (CONT, b"\x98"), (FIN | CONT, b"\x80")),
        "utf8-split-invalid": frames(0xFF, (TEXT, b"ok \xe2\x82"), (FIN | CONT, b"\x28")),
        "utf8-surrogate-split": frames(0xFF, (TEXT, b"\xed"), (FIN | CONT, b"\xa0\x80")),
        "utf8-incomplete-at-fin": frames(0xFF, (TEXT, b"abc"), (FIN | CONT, b"\xe2")),
        "utf8-incomplete-single": frames(0xFF, (FIN | TEXT, b"abc\xe2\x82")),
        "utf8-overlong": frames(0xFF, (FIN | TEXT, b"\xc0\x80")),
        "binary-not-utf8-fragments": frames(0xFF, (BIN, b"\xe2"), (FIN | CONT, b"\xff")),
        "many-messages": frames(0xFF, *[(FIN | TEXT, b"msg%d" % i) for i in range(20)]),
    }
    for name, data in s.items():
        write("assembler", name, data)


# ---- utf8: two split bytes, then the text ----
def utf8_seeds():
    texts = {
        "ascii": b"plain ascii", "two-byte": b"\xc2\x80\xdf\xbf", "three-byte": b"\xe0\xa0\x80\xef\xbf\xbf",
        "four-byte": b"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", "mixed": "héllo € 😀!".encode(),
        "overlong-2": b"\xc0\x80", "overlong-3": b"\xe0\x80\x80", "overlong-4": b"\xf0\x80\x80\x80",
        "surrogate": b"\xed\xa0\x80", "above-max": b"\xf4\x90\x80\x80", "f5": b"\xf5\x80\x80\x80",
        "ff": b"\xff", "lone-continuation": b"\x80", "truncated": b"\xf0\x9f\x98", "nul": b"a\x00b",
    }
    for name, t in texts.items():
        write("utf8", name, bytes([1, 3]) + t)


# ---- router: every client line of PROTOCOL.md's sessions, and malformed ones ----
# as tests/integration/test_protocol_doc.py reads them: ```session, then token and/or a presence mode
SESSION_OPENER_RE = re.compile(r"^```session(?: token)?(?: (?:global|rooms|off))?$")
TOKEN_RE = re.compile(r"TOKEN\(([^)]*)\)")


def doc_token(m):
    """A TOKEN(user, rooms=a|b, exp=+N, secret=S) placeholder as a token with a fixed clock (the fuzz
    target's server has no key, so only its shape matters; the seed stays the same from run to run)."""
    user, *opts = [a.strip() for a in m.group(1).split(",")]
    claims, key = {"sub": user, "exp": 1700000300}, JWT_SECRET
    for opt in opts:
        name, _, value = opt.partition("=")
        if name == "rooms":
            claims["rooms"] = value.split("|")
        elif name == "exp":
            claims["exp"] = 1700000000 + int(value)
        elif name == "secret":
            key = value.encode()
    body = json.dumps(claims, separators=(",", ":"))
    return hs256_token('{"alg":"HS256","typ":"JWT"}', body, key)


def doc_client_lines():
    """Every distinct `NAME> TEXT` line of the session blocks, in the order of the document."""
    with open(os.path.join(HERE, "..", "docs", "PROTOCOL.md"), encoding="utf-8") as f:
        doc = f.read().splitlines()
    lines, inside = [], False
    for line in doc:
        if not inside:
            inside = bool(SESSION_OPENER_RE.match(line.strip()))
        elif line.strip() == "```":
            inside = False
        else:
            m = re.match(r"^\w+> (.*)$", line)
            text = m and TOKEN_RE.sub(doc_token, m.group(1))
            if text and text not in lines:
                lines.append(text)
    return lines


def router_seeds():
    for i, line in enumerate(doc_client_lines()):
        write("router", "doc-%02d" % i, line)
    extra = {
        "trailing-garbage": '{"type":"ping"} x',
        "two-objects": '{"type":"ping"}{"type":"ping"}',
        "nested-100": '{"type":"broadcast","data":' + "[" * 99 + "1" + "]" * 99 + "}",
        "nested-64": '{"type":"broadcast","data":' + "[" * 63 + "1" + "]" * 63 + "}",
        "brackets-in-string": '{"type":"ping","x":"' + "[{" * 80 + '\\"]"}',
        "too-large": '{"type":"send","data":1,"to":[' + ",".join(['"bob"'] * 101) + "]}",
        "send-list-offline": '{"type":"send","to":["ghost","bob","spook"],"data":[1,{"k":null}],"id":5}',
        "send-self-and-dupes": '{"type":"send","to":["bob","bob","alice"],"data":true,"id":"d"}',
        "id-too-long": '{"type":"ping","id":"' + "i" * 65 + '"}',
        "id-bool": '{"type":"ping","id":true}',
        "id-float": '{"type":"ping","id":-3.5e10}',
        "type-number": '{"type":5}',
        "empty-object": "{}",
        "not-object": '"text"',
        "hello-reserved": '{"type":"hello","user":"conn-1"}',
        "hello-ok": '{"type":"hello","user":"zed","id":"h"}',
        "join-65-chars": '{"type":"join","room":"' + "r" * 65 + '"}',
        "publish-unjoined": '{"type":"publish","room":"lobby","data":1,"id":3}',
        "leave-unjoined": '{"type":"leave","room":"lobby","id":4}',
        "broadcast-no-data": '{"type":"broadcast"}',
        "users": '{"type":"users","id":0}',
        "unicode-data": '{"type":"broadcast","data":"\\u00e9\\ud83d\\ude00 é","id":1}',
        "lone-surrogate-escape": '{"type":"broadcast","data":"\\ud800","id":1}',
        "nul-escape": '{"type":"send","to":"bob","data":"a\\u0000b","id":1}',
        "empty": "",
        "nul-after": '{"type":"ping"}\x00',
        "join-since-bad": '{"type":"join","room":"lobby","since":{"epoch":"AbCd1234","offset":-2},"id":1}',
        "join-since-ok": '{"type":"join","room":"lobby","since":{"epoch":"AbCd1234","offset":0},"id":1}',
        "hello-since-array": '{"type":"hello","user":"zed","since":[{"epoch":"AbCd1234","offset":1}]}',
        "hello-since-ok": '{"type":"hello","user":"zed","since":{"user":{"epoch":"AbCd1234","offset":0},"broadcast":{"epoch":"AbCd1234","offset":0}}}',
    }
    for name, text in extra.items():
        write("router", name, text)


# ---- origin: Origin NUL Host NUL allow... ----
def origin_seeds():
    s = {
        "same": b"http://localhost:8080\0localhost:8080", "other-port": b"http://localhost:8081\0localhost:8080",
        "default-http": b"http://example.com\0example.com", "default-https": b"https://example.com\0example.com:443",
        "case": b"HTTP://LocalHost:8080\0localhost:8080", "ipv6": b"http://[::1]:8080\0[::1]:8080",
        "null": b"null\0localhost:8080", "file": b"file://\0localhost:8080", "bare-scheme": b"http://\0",
        "big-port": b"http://a:99999\0a:99999", "no-host": b"http://localhost:8080",
        "listed": b"http://localhost:3000\0localhost:8080\0http://localhost:3000\0https://x/",
        "listed-slash": b"http://localhost:3000/\0localhost:8080\0http://localhost:3000",
        "star": b"http://evil.example\0localhost:8080\0*", "userinfo": b"http://a@localhost:8080\0localhost:8080",
        "plus-port": b"http://a:+80\0a:80", "space-port": b"http://a: 80\0a:80",
        # DNS rebinding: the entries as --allowed-hosts against the Host
        "rebind": b"http://rebind.evil.example:8080\0rebind.evil.example:8080\0localhost\0127.0.0.1:8080",
        "hosts-listed": b"http://x\0LOCALHOST:8080\0localhost\0[::1]\0chat.example.com:8443",
        "hosts-v6": b"\0[::1]:8080\0[::1]",
    }
    for name, data in s.items():
        write("origin", name, data)


# ---- head: a cut byte (where two reads split it), then the bytes a client sent ----
def head_seeds():
    s = {
        "handshake": b"GET /ws?user=ann HTTP/1.1\r\nHost: localhost:8080\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, json\r\n\r\n",
        "get-lf-only": b"GET / HTTP/1.0\nHost: x\n\n",
        "post-with-body": b"POST /api/send HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
        "leading-crlf": b"\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n",
        "bearer-space": b"GET /ws HTTP/1.1\r\nAuthorization: Bearer \r\n\r\n",
        "obs-fold": b"GET / HTTP/1.1\r\nX: a\r\n  b\r\n\r\n",
        "http2": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "nul": b"GET /\0 HTTP/1.1\r\n\r\n",
        "no-colon": b"GET / HTTP/1.1\r\nHost\r\n\r\n",
        "unfinished": b"GET / HTTP/1.1\r\nHost: x\r\n",
        "many-fields": b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(70)) + b"\r\n",
    }
    for i, (name, data) in enumerate(s.items()):
        write("head", name, bytes([7 * i + 3]) + data)


# ---- names: cap byte, key byte (0 user, 1 u, 2 "", 3 a=b), query ----
def names_seeds():
    s = {
        "plain": (65, 0, b"user=bob"), "second": (65, 0, b"a=1&user=carol&b=2"), "suffix-key": (65, 0, b"xuser=a&user=b"),
        "percent": (65, 0, b"user=a%62c%4A"), "plus": (65, 0, b"user=a+b"), "bad-escape": (65, 0, b"user=%zz"),
        "short-escape": (65, 0, b"user=%4"), "nul": (65, 0, b"user=ab%00cd"), "too-long": (65, 0, b"user=" + b"x" * 65),
        "exact": (65, 0, b"user=" + b"x" * 64), "no-equals": (65, 0, b"user"), "empty-key": (10, 2, b"=v&x=1"),
        "tiny-cap": (1, 0, b"user=ab"), "conn-prefix": (65, 0, b"user=conn-5"), "amp-encoded": (65, 1, b"u=a%26b"),
    }
    for name, (cap, key, q) in s.items():
        write("names", name, bytes([cap - 1, key]) + q)


# ---- since: byte 0 even = a handshake query, odd = JSON ----
def since_seeds():
    q = {
        "query-both": "v=2&user=a&since_user=AbCd1234:17&since_broadcast=Zz9Zz9Zz:0",
        "query-v1": "v=1&since_user=AbCd1234:1", "query-v3": "v=3", "query-v-empty": "v=",
        "query-no-colon": "v=2&since_user=AbCd1234", "query-short-epoch": "v=2&since_user=Ab:1",
        "query-big-offset": "v=2&since_user=AbCd1234:9007199254740993", "query-neg": "v=2&since_user=AbCd1234:-1",
        "query-escaped": "v=2&since_user=AbCd1234%3A5", "query-empty-offset": "v=2&since_broadcast=AbCd1234:",
    }
    j = {
        "json-both": '{"user":{"epoch":"AbCd1234","offset":3},"broadcast":{"epoch":"Zz9Zz9Zz","offset":0}}',
        "json-pos": '{"epoch":"AbCd1234","offset":9007199254740992}', "json-float": '{"epoch":"AbCd1234","offset":1.5}',
        "json-neg": '{"epoch":"AbCd1234","offset":-1}', "json-string-offset": '{"epoch":"AbCd1234","offset":"1"}',
        "json-bad-epoch": '{"user":{"epoch":"AbCd12!4","offset":1}}', "json-not-object": '{"user":7}',
        "json-array": "[1,2]", "json-huge": '{"epoch":"AbCd1234","offset":1e300}',
    }
    for name, text in q.items():
        write("since", name, b"\x00" + text.encode())
    for name, text in j.items():
        write("since", name, b"\x01" + text.encode())


# ---- config: argv words separated by NUL ----
def config_seeds():
    s = {
        "none": [], "help": ["--help"], "version": ["--version"], "port": ["--port", "9000"],
        "port-host": ["--port=127.0.0.1:9001"], "port-bad": ["--port", "0"], "root": ["--root", "/tmp"],
        "root-missing": ["--root", "/nonexistent"], "origins": ["--allow-origin", "http://a", "--allow-origin", "*"],
        "origin-bad": ["--allow-origin", "ftp://a"], "numbers": ["--max-message", "1", "--max-connections=60000",
                                                                 "--outbox", "1024", "--ping-interval", "86400",
                                                                 "--rate-limit", "0", "--max-per-ip", "3"],
        "number-overflow": ["--max-message", "99999999999999999999999"], "presence": ["--presence", "off"],
        "log": ["--log-level=debug"], "healthcheck": ["--healthcheck"],
        "healthcheck-url": ["--healthcheck", "http://10.0.0.2:9/healthz", "--port", "9"],
        "unknown": ["--bogus"], "missing-value": ["--port"],
    }
    for name, words in s.items():
        write("config", name, b"\0".join(w.encode() for w in words))


# ---- wsframe: byte 0 = max_payload (0xFF none, 0xFE 65536, else the byte), then raw client bytes ----
KEY = b"\x37\xfa\x21\x3d"


def client_frame(bits, payload, form=None, masked=True, length=None):
    """A client frame as it goes on the wire; form 7/16/64 forces a length encoding."""
    n = len(payload) if length is None else length
    form = form or (7 if n < 126 else 16 if n < 65536 else 64)
    m = 0x80 if masked else 0
    head = bytes([bits]) + (bytes([m | n]) if form == 7 else bytes([m | 126]) + struct.pack(">H", n) if form == 16
                            else bytes([m | 127]) + struct.pack(">Q", n))
    if not masked:
        return head + payload
    return head + KEY + bytes(b ^ KEY[i % 4] for i, b in enumerate(payload))


def wsframe_seeds():
    f = client_frame
    s = {
        "text": (0xFF, f(FIN | TEXT, b'{"type":"ping"}')),
        "empty": (0xFF, f(FIN | TEXT, b"")),
        "len-125": (0xFF, f(FIN | BIN, bytes(range(125)))),
        "len-126-16bit": (0xFF, f(FIN | BIN, b"x" * 126)),
        "len-300-64bit": (0xFF, f(FIN | BIN, b"y" * 300, form=64)),
        "len-9-64bit": (0xFF, f(FIN | TEXT, b"nine long", form=64)),
        "len-5-16bit": (0xFF, f(FIN | TEXT, b"short", form=16)),
        "back-to-back": (0xFF, f(TEXT, b"hel") + f(FIN | PING, b"") + f(FIN | CONT, b"lo") + f(FIN | CLOSE, close(1000))),
        "many-small": (0xFF, b"".join(f(FIN | TEXT, bytes([65 + i % 26]) * (i % 9)) for i in range(40))),
        "truncated-header": (0xFF, f(FIN | BIN, b"z" * 200)[:5]),
        "truncated-payload": (0xFF, f(FIN | BIN, b"z" * 200)[:100]),
        "frame-then-partial": (0xFF, f(FIN | TEXT, b"a") + f(FIN | TEXT, b"bcdef")[:7]),
        "unmasked": (0xFF, f(FIN | TEXT, b"plain", masked=False)),
        "unmasked-after-frame": (0xFF, f(FIN | TEXT, b"ok") + f(FIN | TEXT, b"plain", masked=False)),
        "ping-125": (0xFF, f(FIN | PING, b"p" * 125)),
        "ping-126-16bit": (0xFF, f(FIN | PING, b"p" * 126)),
        "ping-5-16bit": (0xFF, f(FIN | PING, b"p" * 5, form=16)),
        "close-5-64bit": (0xFF, f(FIN | CLOSE, close(1000, b"bye"), form=64)),
        "reserved-control-0xb": (0xFF, f(FIN | 0xB, b"r" * 126)),
        "top-bit": (0xFF, f(FIN | BIN, b"", form=64, length=1 << 63)),
        "all-ones-length": (0xFF, f(FIN | BIN, b"", form=64, length=(1 << 64) - 1)),
        "huge-allowed": (0xFF, f(FIN | BIN, b"", form=64, length=(1 << 63) - 1)),
        "max-10-exact": (10, f(FIN | TEXT, b"0123456789") + f(FIN | TEXT, b"next")),
        "max-10-over": (10, f(FIN | TEXT, b"0123456789!")),
        "max-10-over-header-only": (10, f(FIN | BIN, b"q" * 200)[:8]),
        "max-0-empty": (0, f(FIN | TEXT, b"") + f(FIN | BIN, b"")),
        "max-65536-64bit-over": (0xFE, f(FIN | BIN, b"", form=64, length=65537)),
        "rsv-bits-passed": (0xFF, f(FIN | 0x70 | 0x3, b"rsv")),
    }
    for name, (max_sel, data) in s.items():
        write("wsframe", name, bytes([max_sel]) + data)


def jsonspan_seeds():
    data, to, e_acute = 0, 1, 2
    s = {
        "send": (data, '{"type":"send","to":"bob","data":{"text":"hi bob"},"id":7}'),
        "send-to": (to, '{"type":"send","to":["a","b"],"data":1}'),
        "big-numbers": (data, '{"data":[9007199254740993,12345678901234567890,1e400,-0.5E-7]}'),
        "whitespace": (data, ' { "x" : [ 1 ] , "data" : { "a" : [ true , false , null ] } } '),
        "first-of-two": (data, '{"data":1,"data":2}'),
        "escaped-key": (data, '{"d\\u0061ta":"v"}'),
        "nul-in-key": (data, '{"data\\u0000x":"v"}'),
        "utf8-key": (e_acute, '{"\\u00e9":[1]}'),
        "surrogate-key": (e_acute, '{"\\ud83d\\ude00":1,"\xc3\xa9":2}'),
        "nested-decoys": (data, '{"x":{"data":0},"s":"\\"data\\":1","data":"\\"}]"}'),
        "lenient-around": (data, '\x01{\x02"id":01,"data"\x1f:\x1f1}'),
        "not-strict-leading-zero": (data, '{"data":01}'),
        "not-strict-fraction": (data, '{"data":[-.5,1.]}'),
        "not-strict-control": (data, '{"data":"a\tb"}'),
        "bom": (data, '\ufeff{"data":true}'),
        "cut": (data, '{"data":{"k":[1,"x'),
        "deep": (data, '{"data":' + "[" * 130 + "]" * 130 + "}"),
    }
    for name, (key, text) in s.items():
        write("jsonspan", name, bytes([key]) + text.encode())


# ---- jwt: byte 0 = mode (0 HS256 token, 1 ES256 token, 2 header NUL claims signed by the target),
# byte 1 = clock (now = 1700000000 + 8 * (b - 128)), then the input ----
JWT_SECRET = b"fuzz-secret-0123456789abcdef0123"
JWT_CLOCK = 128  # now = 1700000000
RFC7515_A3 = ("eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb2"
              "90Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(header, claims, key=JWT_SECRET):
    signing = b64url(header.encode()) + "." + b64url(claims.encode())
    return signing + "." + b64url(hmac.new(key, signing.encode(), hashlib.sha256).digest())


def two_chars(i):
    """The i-th of 3844 distinct two-character member names."""
    a = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return a[i // 62] + a[i % 62]


def jwt_seeds():
    hdr = '{"alg":"HS256","typ":"JWT"}'
    good = '{"sub":"alice","exp":1700000100,"iat":1699999000,"rooms":["lobby","team-7.*"]}'
    aud = '{"sub":"alice","exp":1700000100,"aud":["x","switchboard"],"iss":"https://id.example","nbf":1699999999}'
    valid = hs256_token(hdr, good)
    tokens = {
        "hs-valid": valid,
        "hs-valid-aud": hs256_token(hdr, aud),
        "hs-truncated": valid[:-5],
        "hs-two-parts": valid.rsplit(".", 1)[0],
        "hs-bad-base64": valid.replace("e", "+", 1),
        "hs-padded": valid + "=",
        "hs-alg-none": hs256_token('{"alg":"none"}', good).rsplit(".", 1)[0] + ".",
        "hs-crit": hs256_token('{"alg":"HS256","crit":["b64"],"b64":false}', good),
        "hs-nested": hs256_token(hdr, '{"sub":"a","exp":1700000100,"x":' + "[" * 40 + "]" * 40 + "}"),
        "hs-not-object": hs256_token(hdr, '["sub","alice"]'),
        "hs-wrong-key": hs256_token(hdr, good, key=b"other"),
        "es-rfc7515-a3": RFC7515_A3,
        "es-truncated": RFC7515_A3[:-10],
        "es-hs-confusion": hs256_token(hdr, good),
        # issue 18: as many short header members as fit, once a quadratic duplicate check before alg
        "hs-header-members": hs256_token('{"alg":"HS256"' + "".join(',"%s":0' % two_chars(i) for i in range(860)) + "}",
                                         '{"sub":"alice","exp":1700000100}'),
    }
    for name, token in tokens.items():
        mode = 1 if name.startswith("es-") else 0
        write("jwt", name, bytes([mode, JWT_CLOCK]) + token.encode())
    pairs = {
        "signed-valid": (hdr, good),
        "signed-aud": (hdr, aud),
        "signed-no-exp": (hdr, '{"sub":"alice"}'),
        "signed-float-dates": (hdr, '{"sub":"alice","exp":1.7000001e9,"nbf":-1e300,"iat":1e999}'),
        "signed-rooms-many": (hdr, '{"sub":"bob","exp":1700000100,"rooms":[' + ",".join('"r%d"' % i for i in range(65)) + "]}"),
        "signed-rooms-patterns": (hdr, '{"sub":"bob","exp":1700000100,"rooms":["*","a*","*a","a.b-c_d*"]}'),
        "signed-dup": (hdr, '{"sub":"alice","sub":"bob","exp":1700000100}'),
        "signed-escapes": ('{"alg":"HS\\u0032\\u00356"}', '{"sub":"al\\u0069ce","exp":1700000100}'),
        "signed-claims-members": (hdr, '{"sub":"a","exp":1700000100' + "".join(',"%s":0' % two_chars(i) for i in range(130)) + "}"),
        "signed-bad-u-escape": (hdr, '{"sub":"alice\\uZZZZ","exp":1700000100}'),
        "signed-not-strict": (hdr, '{"sub":"alice","exp":1700000100,"x":01}'),
        "signed-deep": (hdr, '{"sub":"a","exp":1700000100,"x":' + "{\"a\":" * 20 + "1" + "}" * 20 + "}"),
    }
    for name, (h, c) in pairs.items():
        write("jwt", name, bytes([2, JWT_CLOCK]) + h.encode() + b"\0" + c.encode())


# ---- api: byte 0 = method and path, byte 1 = Authorization (fuzz_api.c's tables), then the body ----
API_SEND, API_BROADCAST, API_PUBLISH, API_USERS, API_ROOM, API_DISCONNECT = range(6)
API_BAD_ROOM, API_UNKNOWN, API_WRONG_METHOD = 6, 7, 8
API_SUBSCRIBE, API_UNSUBSCRIBE = 12, 13
API_PATHS = {"send": API_SEND, "broadcast": API_BROADCAST, "publish": API_PUBLISH, "disconnect": API_DISCONNECT,
             "subscribe": API_SUBSCRIBE, "unsubscribe": API_UNSUBSCRIBE}


def api_seeds():
    """Every body of docs/API.md's curl examples, then the edges of each call."""
    with open(os.path.join(HERE, "..", "docs", "API.md"), encoding="utf-8") as f:
        doc = f.read()
    n = 0
    for m in re.finditer(r"^curl .*?-d '([^']*)' \$SB/api/(\w+)$", doc, re.M):
        write("api", "doc-%02d" % n, bytes([API_PATHS[m.group(2)], 0]) + m.group(1).encode())
        n += 1
    s = {
        "users": (API_USERS, 0, ""),
        "room": (API_ROOM, 0, ""),
        "bad-room": (API_BAD_ROOM, 0, ""),
        "unknown": (API_UNKNOWN, 0, ""),
        "wrong-method": (API_WRONG_METHOD, 0, '{"data":1}'),
        "wrong-key": (API_BROADCAST, 1, '{"data":1}'),
        "no-key": (API_BROADCAST, 2, '{"data":1}'),
        "send-list": (API_SEND, 0, '{"to":["bob","alice","bob","carol"],"data":[1,{"a":null}]}'),
        "send-101": (API_SEND, 0, '{"data":0,"to":[' + ",".join('"u%d"' % i for i in range(101)) + "]}"),
        "send-bad-name": (API_SEND, 0, '{"to":"a b","data":0}'),
        "send-no-data": (API_SEND, 0, '{"to":"bob"}'),
        "send-not-strict": (API_SEND, 0, '{"to":"bob","data":-.5}'),
        "send-escapes": (API_SEND, 4, '{"to":"\\u0062ob","data":"\\u00e9\\ud83d\\ude00"}'),
        "publish-anon-room": (API_PUBLISH, 0, '{"room":"lobby","data":"x","from":"alice"}'),
        "disconnect-code": (API_DISCONNECT, 0, '{"user":"bob","code":4999,"reason":"\u00e9t\u00e9"}'),
        "disconnect-bad-code": (API_DISCONNECT, 0, '{"user":"bob","code":4000.5}'),
        "disconnect-long-reason": (API_DISCONNECT, 0, '{"user":"bob","reason":"' + "r" * 124 + '"}'),
        "disconnect-bad-utf8": (API_DISCONNECT, 0, b'{"user":"bob","reason":"\xff"}'),
        "broadcast-bad-utf8": (API_BROADCAST, 0, b'{"data":"\xff"}'),
        "send-bad-utf8-elsewhere": (API_SEND, 0, b'{"to":"bob","data":1,"note":"\xc3"}'),
        "deep": (API_BROADCAST, 0, '{"data":' + "[" * 70 + "]" * 70 + "}"),
        "trailing": (API_BROADCAST, 0, '{"data":1} 2'),
        "nul": (API_BROADCAST, 0, b'{"data":1}\x00'),
        "array": (API_BROADCAST, 0, "[1]"),
        "empty": (API_BROADCAST, 0, ""),
    }
    for name, (target, auth, body) in s.items():
        write("api", name, bytes([target, auth]) + (body if isinstance(body, bytes) else body.encode()))


GENERATORS = {  # target -> what writes its seeds
    "assembler": assembler_seeds, "utf8": utf8_seeds, "router": router_seeds, "origin": origin_seeds,
    "names": names_seeds, "config": config_seeds, "wsframe": wsframe_seeds, "jsonspan": jsonspan_seeds,
    "jwt": jwt_seeds, "api": api_seeds, "head": head_seeds, "since": since_seeds,
}


def seeds(corpus, target):
    d = os.path.join(corpus, target)
    return sorted(n for n in os.listdir(d) if n.startswith("seed-")) if os.path.isdir(d) else []


def generate(corpus):
    """Replaces the seed-* files of every target in GENERATORS under corpus."""
    global CORPUS
    CORPUS = corpus
    for target, make in GENERATORS.items():
        for name in seeds(corpus, target):
            os.remove(os.path.join(corpus, target, name))
        make()


def check(corpus):
    """Names every seed that differs between corpus and a fresh run; returns how many."""
    scratch = tempfile.mkdtemp(prefix="seed-corpus-")
    try:
        generate(scratch)
        bad = 0
        for target in GENERATORS:
            want, have = seeds(scratch, target), seeds(corpus, target)
            for name in sorted(set(want) | set(have)):
                path = os.path.join(target, name)
                if name not in have:
                    print("missing: %s" % path)
                elif name not in want:
                    print("stale: %s" % path)
                else:
                    with open(os.path.join(scratch, path), "rb") as a, open(os.path.join(corpus, path), "rb") as b:
                        if a.read() == b.read():
                            continue
                    print("differs: %s" % path)
                bad += 1
        return bad
    finally:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args == ["--check"]:
        bad = check(CORPUS)
        if bad:
            print("%d seed(s) out of date: run fuzz/seed_corpus.py and commit fuzz/corpus/" % bad)
        sys.exit(1 if bad else 0)
    if len(args) > 1 or (args and args[0].startswith("-")):
        sys.exit("usage: seed_corpus.py [--check | DIR]")
    generate(os.path.abspath(args[0]) if args else CORPUS)
