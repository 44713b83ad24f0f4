"""Command line and environment (docs/CLI.md)."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness
from harness import SLOW, OP_TEXT

FLAGS = ["--port", "--root", "--allow-origin", "--max-message", "--max-connections", "--outbox",
         "--ping-interval", "--rate-limit", "--threads", "--log-level", "--healthcheck", "--help", "--version"]


def project_version():
    with open(os.path.join(harness.SB_SRC, "CMakeLists.txt")) as f:
        m = re.search(r"project\(\s*switchboard\s+VERSION\s+([0-9.]+)", f.read())
    assert m, "no project VERSION in CMakeLists.txt"
    return m.group(1)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SWITCHBOARD_") or k in ("SWITCHBOARD_BIN", "SWITCHBOARD_SRC")}
    env.update(extra)
    return env


def run(args, env=None, timeout=None):
    harness.require_binary()
    return subprocess.run([harness.SB_BIN] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                          env=env or clean_env(), timeout=timeout or 15 * SLOW, cwd=harness.SB_SRC)


class CliTest(harness.FreshServerMixin, unittest.TestCase):
    def test_help(self):
        r = run(["--help"])
        self.assertEqual(r.returncode, 0, r)
        out = r.stdout.decode()
        for flag in FLAGS:
            self.assertIn(flag, out, "--help does not mention %s" % flag)

    def test_version(self):
        r = run(["--version"])
        self.assertEqual(r.returncode, 0, r)
        self.assertIn(project_version(), r.stdout.decode())

    def assert_usage_error(self, r, mention=None):
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 2, "exit %r, stderr %r" % (r.returncode, err[-500:]))
        self.assertTrue(err.strip(), "no message on stderr")
        if mention:
            self.assertIn(mention, err, "stderr does not say what is wrong")
        self.assertIn("--port", err, "stderr lacks the usage")

    def test_unknown_flag(self):
        self.assert_usage_error(run(["--bogus"]), "--bogus")

    def test_bad_values(self):
        port = harness.free_port()
        for args in (["--port", "abc"], ["--port", "70000"], ["--max-message", "0"],
                     ["--max-message", "-5"], ["--max-message", "12x"], ["--log-level", "loud"],
                     ["--max-connections", "0"], ["--ping-interval", "abc"], ["--rate-limit", "x"],
                     ["--outbox", "abc"], ["--port"]):
            with self.subTest(args=args):
                a = list(args)
                if a[0] != "--port":
                    a = ["--port", "127.0.0.1:%d" % port] + a
                self.assert_usage_error(run(a))

    def test_bad_env(self):
        port = harness.free_port()
        for k, v in (("SWITCHBOARD_PORT", "abc"), ("SWITCHBOARD_MAX_MESSAGE", "0"),
                     ("SWITCHBOARD_LOG_LEVEL", "loud")):
            with self.subTest(env=k):
                env = clean_env(**{k: v})
                args = [] if k == "SWITCHBOARD_PORT" else ["--port", "127.0.0.1:%d" % port]
                r = run(args, env=env)
                self.assertEqual(r.returncode, 2, r)
                self.assertTrue(r.stderr.strip())

    def test_origin_that_can_never_match(self):
        """A browser's Origin has no path and no trailing slash: such a value is a mistake, said at once."""
        port = ["--port", "127.0.0.1:%d" % harness.free_port()]
        for bad in ("http://app.example.com/", "https://app.example.com/chat", "http://a.example?x=1", "app.example.com",
                    "http://"):
            with self.subTest(origin=bad):
                self.assert_usage_error(run(port + ["--allow-origin", bad]), bad)
                r = run(port, env=clean_env(SWITCHBOARD_ALLOW_ORIGINS="http://ok.example," + bad))
                self.assertEqual(r.returncode, 2, r)
                self.assertIn("never has a path", r.stderr.decode())

    def test_trusted_proxies_checked(self):
        port = ["--port", "127.0.0.1:%d" % harness.free_port()]
        for bad in ("10.0.0.1/8", "10.0.0.0/33", "proxy.example", "10.0.0.0/8,"):
            with self.subTest(value=bad):
                self.assert_usage_error(run(port + ["--trusted-proxies", bad]), "--trusted-proxies")
        # a good list, from the variable: applied (the request log names the client X-Forwarded-For
        # names from the trusted 127.0.0.1; test_realip.py has the rest) and nothing to warn about
        srv = self.start_server(env={"SWITCHBOARD_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8,fd00::/8"})
        self.assertEqual(srv.get("/", headers={"X-Forwarded-For": "203.0.113.77"}).status, 200)
        self.assertRegex(srv.wait_log(r"http GET / 200 203\.0\.113\.77"), r"http GET / 200 203\.0\.113\.77\n")
        self.assertNotIn("trusted-proxies", srv.stderr_text())

    def test_rediss_refused_with_a_reason(self):
        r = run(["--port", "127.0.0.1:%d" % harness.free_port(), "--redis", "rediss://cache.example:6380"])
        self.assert_usage_error(r, "TLS to Redis (rediss://) is not supported yet")

    def test_missing_root_is_fatal(self):
        tmp = tempfile.mkdtemp(prefix="sb-noroot-")
        self.addCleanup(shutil.rmtree, tmp, True)
        port = ["--port", "127.0.0.1:%d" % harness.free_port()]
        r = run(port + ["--root", os.path.join(tmp, "nope")])
        self.assert_usage_error(r, "is not a directory")
        # No --root and no www beside the binary or in the working directory: the default finds nothing.
        os.mkdir(os.path.join(tmp, "bin"))
        exe = shutil.copy(harness.SB_BIN, os.path.join(tmp, "bin", "switchboard"))
        r = subprocess.run([exe] + port, capture_output=True, cwd=tmp, env=clean_env(), timeout=15 * SLOW)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("does not exist: give --root DIR", r.stderr.decode())

    def test_root_without_index_warns(self):
        tmp = tempfile.mkdtemp(prefix="sb-noindex-")
        self.addCleanup(shutil.rmtree, tmp, True)
        srv = self.start_server(root=tmp)
        line = srv.wait_log(r"has no readable index\.html")
        self.assertIn(tmp, line)
        self.assertEqual(srv.get("/").status, 404)

    def test_cli_md_is_generated_from_help(self):
        r = subprocess.run(["/usr/bin/python3", os.path.join(harness.SB_SRC, "scripts", "cli_doc.py"), "--check",
                            "--bin", harness.SB_BIN], capture_output=True, timeout=30 * SLOW)
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())
        with open(os.path.join(harness.SB_SRC, "docs", "CLI.md")) as f:
            doc = f.read()
        out = run(["--help"]).stdout.decode()
        flags = set(re.findall(r"^  (--[a-z-]+)", out, re.M))
        self.assertGreater(len(flags), 20)
        for flag in flags:
            self.assertIn("`%s" % flag, doc)
        token = run(["token", "--help"]).stdout.decode()
        for flag in set(re.findall(r"(--[a-z-]+)", token)):
            self.assertIn(flag, doc.split("## `switchboard token`", 1)[1], "CLI.md's token section lacks " + flag)

    def test_one_redis_url_form_everywhere(self):
        """--help, the docs, README and the compose files spell the Redis URL one way."""
        form = re.search(r"(redis://\[\S+)", run(["--help"]).stdout.decode()).group(1)
        self.assertEqual(form, "redis://[[user]:password@]host[:port][/db]")
        paths = ["README.md", "compose.yaml", "compose.cluster.yaml"] + \
            [os.path.join("docs", n) for n in os.listdir(os.path.join(harness.SB_SRC, "docs")) if n.endswith(".md")]
        seen = 0
        for rel in paths:
            with open(os.path.join(harness.SB_SRC, rel)) as f:
                for spelled in re.findall(r"redis://\[[^\s`'\"|)]*", f.read()):
                    seen += 1
                    self.assertEqual(spelled, form, "%s spells the Redis URL %s" % (rel, spelled))
        self.assertGreater(seen, 1)
        err = run(["--port", "127.0.0.1:%d" % harness.free_port(), "--redis", "redis://h:x"]).stderr.decode()
        self.assertIn(form, err)

    def oversize_closes(self, port, size):
        """Send an echo-mode text message of `size` bytes; returns ('echo', data) or ('close', code)."""
        ws = harness.RawWS(port, "/ws", protocols=["echo-protocol"])
        try:
            ws.send_frame(OP_TEXT, b"m" * size)
            f = ws.recv_frame()
            self.assertIsNotNone(f, "TCP closed without a close frame")
            if f.opcode == harness.OP_CLOSE:
                return "close", f.close_code
            self.assertEqual(f.opcode, OP_TEXT, f)
            return "echo", len(f.payload)
        finally:
            ws.close_socket()

    def test_env_max_message(self):
        srv = self.start_server(env={"SWITCHBOARD_MAX_MESSAGE": "1000"})
        self.assertEqual(self.oversize_closes(srv.port, 1000), ("echo", 1000))
        self.assertEqual(self.oversize_closes(srv.port, 1001), ("close", 1009))

    def test_flag_wins_over_env(self):
        srv = self.start_server(["--max-message", "2000"], env={"SWITCHBOARD_MAX_MESSAGE": "1000"})
        self.assertEqual(self.oversize_closes(srv.port, 1001), ("echo", 1001))
        self.assertEqual(self.oversize_closes(srv.port, 2001), ("close", 1009))

    def test_env_port(self):
        srv = self.start_server(port_via_env=True)  # no --port flag: SWITCHBOARD_PORT only
        self.assertEqual(srv.get("/healthz").status, 200)
        line = "listening on http://127.0.0.1:%d/" % srv.port
        self.assertIn(line, srv.wait_log(re.escape(line)))

    def test_flag_port_wins_over_env(self):
        srv = self.start_server(env={"SWITCHBOARD_PORT": "127.0.0.1:%d" % harness.free_port()})
        self.assertEqual(srv.get("/healthz").status, 200)

    def test_startup_line(self):
        srv = self.start_server()
        line = r"switchboard %s listening on http://127\.0\.0\.1:%d/ \(root [^)]+\)" % (
            re.escape(project_version()), srv.port)
        self.assertRegex(srv.wait_log(line), line)

    def test_healthcheck(self):
        srv = self.start_server()
        r = run(["--healthcheck", "http://127.0.0.1:%d/healthz" % srv.port])
        self.assertEqual(r.returncode, 0, r)
        r = run(["--healthcheck"], env=clean_env(SWITCHBOARD_PORT="127.0.0.1:%d" % srv.port))
        self.assertEqual(r.returncode, 0, r)
        r = run(["--healthcheck", "http://127.0.0.1:%d/no-such-page" % srv.port])
        self.assertEqual(r.returncode, 1, "non-200 must give exit 1: %r" % r)

    def test_healthcheck_closed_port(self):
        port = harness.closed_port()
        r = run(["--healthcheck", "http://127.0.0.1:%d/healthz" % port])
        self.assertEqual(r.returncode, 1, r)


if __name__ == "__main__":
    unittest.main()
