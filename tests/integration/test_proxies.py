"""The reverse-proxy recipes in deploy/ (issue 22), each run as written by a real proxy started here:
nginx (deploy/nginx.conf), HAProxy (deploy/haproxy-tls.cfg) and Caddy (deploy/Caddyfile), each
terminating TLS with a self-signed certificate made by `openssl req`, in front of a real switchboard.

Through each: the demo page; a WebSocket opened as the page's browser would (wss, Origin = the page's
origin: fails with 403 unless the proxy keeps the browser's Host); a message routed from alice to bob
with its ack; /api/ and /metrics refused with 403 (while switchboard itself answers them); and, against
a header-echo upstream, the Host, X-Forwarded-For and X-Forwarded-Proto the proxy sends on.

The test rewrites only what must differ here (listening port, certificate paths, upstream port, and
for Caddy its admin endpoint and storage) and asserts each rewrite hit, so the recipes stay runnable.
Everything listens on 127.0.0.1 free ports; nothing already installed as a service is used."""

import asyncio
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import websockets

import harness
from harness import RECV_TIMEOUT, SLOW, free_port, recv_json

DEPLOY = os.path.join(harness.SB_SRC, "deploy")
API_KEY = "proxy-test-key-0123456789"


def replace_once(text, old, new):
    if old not in text:
        raise AssertionError("the recipe no longer contains %r: update test_proxies.py" % old)
    return text.replace(old, new, 1)


def wait_tls(port, timeout):
    deadline = time.monotonic() + timeout
    ctx = ssl._create_unverified_context()
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                with ctx.wrap_socket(s, server_hostname="127.0.0.1"):
                    return
        except (OSError, ssl.SSLError):
            time.sleep(0.1)
    raise AssertionError("no TLS on 127.0.0.1:%d after %.0f s" % (port, timeout))


class Certificate:
    """A self-signed certificate for 127.0.0.1: cert, key, and both in one file (HAProxy)."""

    def __init__(self, directory):
        self.cert = os.path.join(directory, "fullchain.pem")
        self.key = os.path.join(directory, "privkey.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", self.key, "-out", self.cert], check=True, capture_output=True, timeout=60)
        self.both = os.path.join(directory, "switchboard.pem")
        with open(self.both, "w") as out:
            for path in (self.cert, self.key):
                with open(path) as f:
                    out.write(f.read())

    def context(self):
        return ssl.create_default_context(cafile=self.cert)


class Proxy:
    """One proxy process on a free port, its files in a temp dir; subclasses write the config."""
    binary = None

    def __init__(self, cert, upstream_port, edit=None):
        if not shutil.which(self.binary):
            raise AssertionError("%s is missing: apt-get install -y nginx caddy haproxy" % self.binary)
        self.dir = tempfile.mkdtemp(prefix="sb-proxy-")
        os.chmod(self.dir, 0o755)  # nginx's workers run unprivileged
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "proxy.log")
        self.log = open(self.log_path, "wb")
        argv, env = self.configure(cert, upstream_port, edit or (lambda text: text))
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     env=env, cwd=self.dir)
        try:
            wait_tls(self.port, 15 * SLOW)
        except AssertionError:
            log = self.log_text()
            self.stop()
            raise AssertionError("%s did not start:\n%s" % (self.binary, log))

    def read_recipe(self, name):
        with open(os.path.join(DEPLOY, name)) as f:
            return f.read()

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-3000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Nginx(Proxy):
    binary = "nginx"

    def configure(self, cert, upstream, edit):
        site = self.read_recipe("nginx.conf")
        site = replace_once(site, "listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % self.port)
        site = replace_once(site, "server 127.0.0.1:8080;", "server 127.0.0.1:%d;" % upstream)
        site = replace_once(site, "/etc/ssl/switchboard/fullchain.pem", cert.cert)
        site = replace_once(site, "/etc/ssl/switchboard/privkey.pem", cert.key)
        site_path = self.write("site.conf", edit(site))
        d = self.dir
        main = """daemon off;
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log info;
events { worker_connections 256; }
http {
    access_log %(d)s/access.log;
    client_body_temp_path %(d)s/body;
    proxy_temp_path %(d)s/proxy;
    fastcgi_temp_path %(d)s/fastcgi;
    uwsgi_temp_path %(d)s/uwsgi;
    scgi_temp_path %(d)s/scgi;
    include %(site)s;
}
""" % {"d": d, "site": site_path}
        conf = self.write("nginx.conf", main)
        return ["nginx", "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf], None


class HAProxyTLS(Proxy):
    binary = "haproxy"

    def configure(self, cert, upstream, edit):
        cfg = self.read_recipe("haproxy-tls.cfg")
        cfg = replace_once(cfg, "bind :443 ssl crt /etc/haproxy/certs/switchboard.pem",
                           "bind 127.0.0.1:%d ssl crt %s" % (self.port, cert.both))
        cfg = replace_once(cfg, "server sb1 127.0.0.1:8080", "server sb1 127.0.0.1:%d" % upstream)
        return ["haproxy", "-db", "-f", self.write("haproxy.cfg", edit(cfg))], None


class Caddy(Proxy):
    binary = "caddy"

    def configure(self, cert, upstream, edit):
        cfg = self.read_recipe("Caddyfile")
        # Tests run in parallel: no admin endpoint (it would take localhost:2019), no port 80 redirect.
        cfg = replace_once(cfg, "{\n", "{\n\tadmin off\n\tauto_https disable_redirects\n\tskip_install_trust\n", )
        cfg = replace_once(cfg, "chat.example.com {", "https://127.0.0.1:%d {" % self.port)
        cfg = replace_once(cfg, "/etc/ssl/switchboard/fullchain.pem", cert.cert)
        cfg = replace_once(cfg, "/etc/ssl/switchboard/privkey.pem", cert.key)
        cfg = replace_once(cfg, "reverse_proxy 127.0.0.1:8080", "reverse_proxy 127.0.0.1:%d" % upstream)
        path = self.write("Caddyfile", edit(cfg))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.dir,
               "XDG_DATA_HOME": os.path.join(self.dir, "data"), "XDG_CONFIG_HOME": os.path.join(self.dir, "config")}
        return ["caddy", "run", "--config", path, "--adapter", "caddyfile"], env


class EchoHeaders:
    """An HTTP upstream answering every GET with the request's headers as JSON."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def https_get(port, path, cert, headers=None):
    ctx = cert.context()
    import http.client
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=RECV_TIMEOUT)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def start_behind_proxy(cls, server_args, edit=None):
    """For a test class: cls.cert, a switchboard with server_args (cls.server), and cls.proxy_class's
    recipe (cls.proxy) in front of it; stop_behind_proxy(cls) ends them."""
    cls.tmp = tempfile.mkdtemp(prefix="sb-proxy-cert-")
    os.chmod(cls.tmp, 0o755)
    cls.cert = Certificate(cls.tmp)
    for path in (cls.cert.cert, cls.cert.key, cls.cert.both):
        os.chmod(path, 0o644)
    cls.server = harness.Server(server_args)
    cls.server.start()
    try:
        cls.proxy = cls.proxy_class(cls.cert, cls.server.port, edit)
    except BaseException:
        cls.server.cleanup()
        raise


def stop_behind_proxy(cls):
    cls.proxy.stop()
    cls.server.stop_and_check()
    shutil.rmtree(cls.tmp, ignore_errors=True)


class ProxyRecipeMixin:
    proxy_class = None

    @classmethod
    def setUpClass(cls):
        start_behind_proxy(cls, ["--api-key", API_KEY])

    @classmethod
    def tearDownClass(cls):
        stop_behind_proxy(cls)

    def origin(self, port=None):
        return "https://127.0.0.1:%d" % (port or self.proxy.port)

    async def open(self, user, port=None):
        port = port or self.proxy.port
        ws = await websockets.connect("wss://127.0.0.1:%d/ws?user=%s" % (port, user), ssl=self.cert.context(),
                                      origin=self.origin(port), open_timeout=RECV_TIMEOUT, ping_interval=None)
        welcome = await recv_json(ws)
        self.assertEqual((welcome["type"], welcome["user"]), ("welcome", user))
        return ws

    def test_page(self):
        status, body = https_get(self.proxy.port, "/", self.cert)
        self.assertEqual(status, 200)
        with open(os.path.join(harness.SB_SRC, "www", "index.html"), "rb") as f:
            self.assertEqual(body, f.read())

    def test_websocket_and_a_routed_message(self):
        async def go():
            bob = await self.open("bob")
            alice = await self.open("alice")
            await alice.send(json.dumps({"type": "send", "to": "bob", "data": "through the proxy", "id": 1}))
            ack = await recv_json(alice)
            self.assertEqual(ack, {"type": "ack", "id": 1, "delivered": 1})
            while True:
                m = await recv_json(bob)
                if m["type"] == "message":
                    break
            self.assertEqual((m["from"], m["data"]), ("alice", "through the proxy"))
            await alice.close()
            await bob.close()
        harness.run_async(go())

    def test_api_and_metrics_refused_from_outside(self):
        auth = {"Authorization": "Bearer " + API_KEY}
        for path in ("/api/users", "/api/", "/metrics"):
            with self.subTest(path=path):
                status, _ = https_get(self.proxy.port, path, self.cert, auth)
                self.assertEqual(status, 403)
        self.assertEqual(self.server.get("/api/users", headers=auth).status, 200)  # inside: answered
        self.assertEqual(self.server.get("/metrics").status, 200)

    def test_headers_sent_upstream(self):
        echo = EchoHeaders()
        proxy = self.proxy_class(self.cert, echo.port)
        try:
            status, body = https_get(proxy.port, "/anything", self.cert)
            self.assertEqual(status, 200)
            seen = json.loads(body)
            self.assertEqual(seen["host"], "127.0.0.1:%d" % proxy.port)  # the Host the browser sent
            self.assertEqual(seen["x-forwarded-for"].split(",")[-1].strip(), "127.0.0.1")
            self.assertEqual(seen["x-forwarded-proto"], "https")
        finally:
            proxy.stop()
            echo.stop()


class NginxRecipeTest(ProxyRecipeMixin, unittest.TestCase):
    proxy_class = Nginx

    def test_default_proxy_host_would_fail_the_origin_check(self):
        """Why the recipe sets Host: without that line, nginx sends $proxy_host and browsers get 403."""
        proxy = Nginx(self.cert, self.server.port,
                      edit=lambda text: replace_once(text, "proxy_set_header Host $http_host;", ""))
        try:
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
                harness.run_async(self.open("carol", port=proxy.port))
            self.assertEqual(cm.exception.status_code, 403)
        finally:
            proxy.stop()


class HAProxyRecipeTest(ProxyRecipeMixin, unittest.TestCase):
    proxy_class = HAProxyTLS


class CaddyRecipeTest(ProxyRecipeMixin, unittest.TestCase):
    proxy_class = Caddy


if __name__ == "__main__":
    unittest.main()
