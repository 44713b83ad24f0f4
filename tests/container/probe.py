#!/usr/bin/python3
"""Probes for tests/container/check.sh: HTTP and WebSocket checks against a running container.

  probe.py health URL SECONDS          poll URL until it answers 200 (exit 0) or SECONDS pass (exit 1)
  probe.py page URL INDEX_HTML         GET URL: 200 and the <title> of INDEX_HTML in the body
  probe.py same URL FILE               GET URL: 200 and exactly FILE's content (the client library)
  probe.py ws URL READY_FILE SECONDS   open a WebSocket, expect {"type":"welcome",...} first, then touch
                                       READY_FILE and wait (at most SECONDS) for the server's close;
                                       prints "close CODE REASON"; exit 0 only for close code 1001

Uses only the standard library and python3-websockets (Debian bookworm: 10.4). Every wait is bounded.
"""
import asyncio
import html
import json
import re
import sys
import time
import urllib.error
import urllib.request


def fail(msg):
    print(f"probe: {msg}", file=sys.stderr)
    sys.exit(1)


def http_get(url, timeout=3):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def health(url, seconds):
    deadline = time.monotonic() + float(seconds)
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, body = http_get(url, timeout=2)
            if status == 200:
                print(f"health: {url} -> 200 {body.strip()[:200]}")
                return
            last = f"HTTP {status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.5)
    fail(f"{url} did not answer 200 within {seconds}s (last: {last})")


def title_of(text):
    m = re.search(r"<title[^>]*>(.*?)</title>", text, re.S | re.I)
    return html.unescape(m.group(1)).strip() if m else None


def page(url, index_html):
    with open(index_html, encoding="utf-8") as f:
        want = title_of(f.read())
    if not want:
        fail(f"{index_html} has no <title>")
    status, body = http_get(url, timeout=5)
    if status != 200:
        fail(f"GET {url} -> {status}, want 200")
    got = title_of(body)
    if got != want:
        fail(f"GET {url}: <title> is {got!r}, want {want!r} (from {index_html})")
    print(f"page: GET {url} -> 200, <title>{got}</title>")


async def ws(url, ready_file, seconds):
    import websockets  # Debian's python3-websockets

    async with websockets.connect(url, open_timeout=10, close_timeout=5, ping_interval=None,
                                  max_size=None) as conn:
        first = json.loads(await asyncio.wait_for(conn.recv(), 10))
        # the image runs the default --presence rooms: a welcome names the connection, lists nobody
        if first.get("type") != "welcome" or "id" not in first or first.get("user") != "container-check":
            fail(f"first message is not a welcome: {first}")
        print(f"ws: welcome {json.dumps(first)}", flush=True)
        open(ready_file, "w").close()
        try:  # read (and ignore) whatever comes until the server closes
            await asyncio.wait_for(drain(conn), float(seconds))
        except asyncio.TimeoutError:
            fail(f"the server did not close the WebSocket within {seconds}s")
    print(f"close {conn.close_code} {conn.close_reason}", flush=True)
    if conn.close_code != 1001:
        fail(f"close code {conn.close_code}, want 1001 (going away)")


async def drain(conn):
    import websockets
    try:
        while True:
            await conn.recv()
    except websockets.ConnectionClosed:
        pass


def same(url, path):
    status, body = http_get(url)
    with open(path, encoding="utf-8") as f:
        want = f.read()
    if status != 200 or body != want:
        fail(f"GET {url}: {status}, {len(body)} bytes, want 200 and the {len(want)} bytes of {path}")
    print(f"same: GET {url} -> 200, {len(body)} bytes as {path}")


def main(argv):
    if len(argv) == 4 and argv[1] == "health":
        health(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "page":
        page(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "same":
        same(argv[2], argv[3])
    elif len(argv) == 5 and argv[1] == "ws":
        asyncio.run(ws(argv[2], argv[3], argv[4]))
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv)
