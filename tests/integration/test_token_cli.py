"""`switchboard token` and the --jwt-* settings (docs/CLI.md), checked by an independent JWT library.

Every token the command prints is decoded by Debian's PyJWT (python3-jwt), which knows nothing of our
code: the signature must verify with the configured secret and only HS256, and the claims must be what
was asked for. Bad arguments and bad key settings must exit 2 with a message that names the problem,
both for the token command and for the server itself (which refuses to start rather than run open)."""

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import harness
from harness import SLOW

SECRET = "s3cret-s3cret-s3cret-s3cret-0123456789"


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SWITCHBOARD_") or k in ("SWITCHBOARD_BIN", "SWITCHBOARD_SRC")}
    env.update(extra)
    return env


def run(args, env=None):
    harness.require_binary()
    return subprocess.run([harness.SB_BIN] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                          env=env or clean_env(), timeout=15 * SLOW, cwd=harness.SB_SRC)


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


class KeyFiles:
    """Secret and key files in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="switchboard-keys-")

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return path

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class TokenCommandTest(unittest.TestCase):
    def setUp(self):
        self.files = KeyFiles()
        self.addCleanup(self.files.remove)

    def mint(self, *args, env=None):
        r = run(["token"] + list(args), env=env)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        out = r.stdout.decode()
        self.assertTrue(out.endswith("\n") and out.count("\n") == 1, out)
        return out.strip()

    def decode(self, token, secret=SECRET):
        return jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "iat", "sub"]})

    def test_token_verified_by_pyjwt(self):
        before = int(time.time())
        token = self.mint("--user", "alice", "--jwt-secret", SECRET)
        after = int(time.time())
        self.assertEqual(jwt.get_unverified_header(token)["alg"], "HS256")
        claims = self.decode(token)
        self.assertEqual(claims["sub"], "alice")
        self.assertTrue(before <= claims["iat"] <= after, claims)
        self.assertEqual(claims["exp"] - claims["iat"], 3600)  # the default lifetime: 1h
        self.assertNotIn("rooms", claims)
        with self.assertRaises(jwt.InvalidSignatureError):
            self.decode(token, secret=SECRET + "x")

    def test_rooms_and_ttl(self):
        token = self.mint("--user", "bob.smith", "--ttl", "30m", "--rooms", "lobby,team-7.*",
                          "--jwt-secret", SECRET)
        claims = self.decode(token)
        self.assertEqual(claims["sub"], "bob.smith")
        self.assertEqual(claims["rooms"], ["lobby", "team-7.*"])
        self.assertEqual(claims["exp"] - claims["iat"], 1800)
        for ttl, seconds in (("90s", 90), ("45", 45), ("2d", 172800), ("1h", 3600), ("--ttl=5m", 300)):
            with self.subTest(ttl=ttl):
                args = [ttl] if ttl.startswith("--") else ["--ttl", ttl]
                c = self.decode(self.mint("--user", "carol", "--jwt-secret", SECRET, *args))
                self.assertEqual(c["exp"] - c["iat"], seconds)

    def test_secret_from_file_and_environment(self):
        path = self.files.write("secret", SECRET + "\n")  # the trailing newline is not part of the secret
        self.assertEqual(self.decode(self.mint("--user", "dave", "--jwt-secret-file", path))["sub"], "dave")
        env = clean_env(SWITCHBOARD_JWT_SECRET_FILE=path)
        self.assertEqual(self.decode(self.mint("--user", "erin", env=env))["sub"], "erin")
        env = clean_env(SWITCHBOARD_JWT_SECRET=SECRET)
        self.assertEqual(self.decode(self.mint("--user", "frank", env=env))["sub"], "frank")

    def test_short_secret_warns_but_works(self):
        r = run(["token", "--user", "gina", "--jwt-secret", "short"])
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertIn("5 bytes", r.stderr.decode())
        self.assertEqual(self.decode(r.stdout.decode().strip(), secret="short")["sub"], "gina")

    def assert_refused(self, args, mention, env=None):
        r = run(list(args), env=env)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 2, "exit %r for %r, stderr %r" % (r.returncode, args, err[-500:]))
        self.assertEqual(r.stdout, b"", "a refused command printed on stdout")
        self.assertIn(mention, err, "stderr does not say what is wrong")

    def test_bad_arguments(self):
        s = ["--jwt-secret", SECRET]
        cases = [
            (["token"] + s, "--user NAME is required"),
            (["token", "--user"] + s[:0], "--user needs a value"),
            (["token", "--user", "conn-12"] + s, "not a valid user name"),
            (["token", "--user", "al ice"] + s, "not a valid user name"),
            (["token", "--user", "a", "--ttl", "0"] + s, "--ttl"),
            (["token", "--user", "a", "--ttl", "-5"] + s, "--ttl"),
            (["token", "--user", "a", "--ttl", "1w"] + s, "--ttl"),
            (["token", "--user", "a", "--ttl", "1h30m"] + s, "--ttl"),
            (["token", "--user", "a", "--ttl", "400d"] + s, "--ttl"),
            (["token", "--user", "a", "--rooms", "lo bby"] + s, "--rooms"),
            (["token", "--user", "a", "--rooms", "a*b"] + s, "--rooms"),
            (["token", "--user", "a", "--rooms", ","] + s, "--rooms"),
            (["token", "--user", "a", "--bogus"] + s, "--bogus"),
        ]
        for args, mention in cases:
            with self.subTest(args=args):
                self.assert_refused(args, mention)

    def test_audience_and_issuer_from_flags_and_environment(self):
        """The token must carry what the server it is minted for requires (issue 22: it did not)."""
        token = self.mint("--user", "ann", "--jwt-secret", SECRET, "--jwt-audience", 'ch"at',
                          "--jwt-issuer", "https://id.example")
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience='ch"at', issuer="https://id.example")
        self.assertEqual(claims["sub"], "ann")
        env = clean_env(SWITCHBOARD_JWT_SECRET=SECRET, SWITCHBOARD_JWT_AUDIENCE="chat",
                        SWITCHBOARD_JWT_ISSUER="backend")
        claims = jwt.decode(self.mint("--user", "ben", env=env), SECRET, algorithms=["HS256"], audience="chat",
                            issuer="backend")
        self.assertEqual(claims["sub"], "ben")
        self.assertNotIn("aud", self.decode(self.mint("--user", "cy", "--jwt-secret", SECRET)))

    def test_server_only_options_refused(self):
        s = ["--jwt-secret", SECRET]
        for extra in (["--port", "9000"], ["--redis", "redis://127.0.0.1"], ["--root=/tmp"], ["--max-per-ip", "3"],
                      ["--api-key", "k"]):
            with self.subTest(extra=extra):
                self.assert_refused(["token", "--user", "a"] + s + extra, extra[0].split("=")[0])

    def test_no_secret_or_public_key(self):
        self.assert_refused(["token", "--user", "a"], "no secret configured")
        pem = self.files.write("ec.pem", public_pem(ec.generate_private_key(ec.SECP256R1())))
        self.assert_refused(["token", "--user", "a", "--jwt-public-key", pem], "--jwt-public-key")

    def test_help(self):
        r = run(["token", "--help"])
        self.assertEqual(r.returncode, 0)
        for word in ("--user", "--ttl", "--rooms", "--jwt-secret"):
            self.assertIn(word, r.stdout.decode())
        r = run(["--help"])
        self.assertIn("switchboard token", r.stdout.decode())
        for flag in ("--jwt-secret", "--jwt-secret-file", "--jwt-public-key", "--jwt-audience", "--jwt-issuer"):
            self.assertIn(flag, r.stdout.decode())


class KeySettingsTest(unittest.TestCase):
    """The server refuses key settings it cannot use: exit 2 and a message, never an open server."""

    def setUp(self):
        self.files = KeyFiles()
        self.addCleanup(self.files.remove)
        self.port = harness.free_port()

    def assert_refused(self, args, mention, env=None):
        r = run(["--port", "127.0.0.1:%d" % self.port] + list(args), env=env)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 2, "exit %r for %r, stderr %r" % (r.returncode, args, err[-500:]))
        self.assertIn(mention, err, "stderr does not say what is wrong")

    def test_conflicting_settings(self):
        pem = self.files.write("rsa.pem", public_pem(rsa.generate_private_key(65537, 2048)))
        secret_file = self.files.write("secret", SECRET)
        self.assert_refused(["--jwt-secret", SECRET, "--jwt-public-key", pem], "--jwt-public-key")
        self.assert_refused(["--jwt-secret-file", secret_file, "--jwt-public-key", pem], "--jwt-public-key")
        self.assert_refused(["--jwt-secret", SECRET, "--jwt-secret-file", secret_file], "--jwt-secret-file")
        self.assert_refused(["--jwt-public-key", pem], "--jwt-public-key",
                            env=clean_env(SWITCHBOARD_JWT_SECRET=SECRET))

    def test_unusable_files(self):
        missing = os.path.join(self.files.dir, "missing.pem")
        self.assert_refused(["--jwt-public-key", missing], "missing.pem")
        self.assert_refused(["--jwt-secret-file", missing], "missing.pem")
        self.assert_refused(["--jwt-public-key", self.files.dir], "not a regular file")
        self.assert_refused(["--jwt-secret-file", self.files.write("empty", "\n")], "empty secret")
        self.assert_refused(["--jwt-secret", ""], "--jwt-secret")
        self.assert_refused([], "SWITCHBOARD_JWT_SECRET", env=clean_env(SWITCHBOARD_JWT_SECRET=""))

    def test_audience_without_key(self):
        self.assert_refused(["--jwt-audience", "switchboard"], "need a key")
        self.assert_refused(["--jwt-issuer", "https://id.example"], "need a key")

    def test_bad_pem(self):
        not_pem = self.files.write("junk.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
        self.assert_refused(["--jwt-public-key", not_pem], "PEM")
        p384 = self.files.write("p384.pem", public_pem(ec.generate_private_key(ec.SECP384R1())))
        self.assert_refused(["--jwt-public-key", p384], "P-256")
        key = ec.generate_private_key(ec.SECP256R1())
        private = self.files.write("private.pem", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.assert_refused(["--jwt-public-key", private], "PEM public key")
        small = self.files.write("rsa1024.pem", public_pem(rsa.generate_private_key(65537, 1024)))
        self.assert_refused(["--jwt-public-key", small], "2048")

    def test_good_keys_start(self):
        """A usable key of each kind lets the server start (and answer /healthz)."""
        keys = [["--jwt-secret", SECRET],
                ["--jwt-public-key", self.files.write("rsa.pem", public_pem(rsa.generate_private_key(65537, 2048)))],
                ["--jwt-public-key", self.files.write("ec.pem", public_pem(ec.generate_private_key(ec.SECP256R1())))],
                ["--jwt-secret-file", self.files.write("secret", SECRET + "\n"), "--jwt-audience", "sb",
                 "--jwt-issuer", "https://id.example"]]
        for args in keys:
            with self.subTest(args=args[0]):
                srv = harness.Server(args).start()
                try:
                    self.assertEqual(harness.http_get(srv.port, "/healthz").status, 200)
                finally:
                    srv.stop()


if __name__ == "__main__":
    unittest.main()


def doc_snippets():
    """The ```python and ```js blocks of docs/CLI.md's "Minting tokens in your backend"."""
    with open(os.path.join(harness.SB_SRC, "docs", "CLI.md")) as f:
        text = f.read()
    section = text.split("### Minting tokens in your backend", 1)[1].split("\n## ", 1)[0]
    blocks = dict(re.findall(r"```(python|js)\n(.*?)```", section, re.S))
    assert set(blocks) == {"python", "js"}, "expected a python and a js snippet, found %r" % list(blocks)
    return blocks


class BackendSnippetsTest(harness.FreshServerMixin, unittest.TestCase):
    """docs/CLI.md's PyJWT and jose snippets, run as written, mint tokens the configured server accepts."""

    def setUp(self):
        self.files = KeyFiles()
        self.addCleanup(self.files.remove)
        self.secret_path = self.files.write("switchboard-jwt", SECRET + "\n")
        self.srv = self.start_server(["--jwt-secret-file", self.secret_path, "--jwt-audience", "chat",
                                      "--jwt-issuer", "my-backend"])

    def run_snippet(self, argv, name, code):
        path = self.files.write(name, code.replace("/run/secrets/switchboard-jwt", self.secret_path))
        r = subprocess.run(argv + [path], capture_output=True, timeout=30 * SLOW, cwd=self.files.dir)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        return r.stdout.decode().strip()

    def assert_accepted(self, token):
        async def go():
            ws, welcome = await harness.open_router(self.srv.port, path="/ws?token=%s" % token)
            await ws.close()
            return welcome
        welcome = harness.run_async(go())
        self.assertEqual(welcome["user"], "alice")

    def test_pyjwt_snippet(self):
        token = self.run_snippet(["/usr/bin/python3"], "mint.py", doc_snippets()["python"])
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="chat", issuer="my-backend")
        self.assertEqual(claims["rooms"], ["lobby"])
        self.assert_accepted(token)

    def test_jose_snippet(self):
        modules = os.path.join(harness.SB_SRC, "node_modules")
        self.assertTrue(os.path.isdir(os.path.join(modules, "jose")), "jose is missing: npm ci in %s" % harness.SB_SRC)
        os.symlink(modules, os.path.join(self.files.dir, "node_modules"))
        token = self.run_snippet(["node"], "mint.mjs", doc_snippets()["js"])
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="chat", issuer="my-backend")
        self.assertEqual((claims["sub"], claims["rooms"]), ("alice", ["lobby"]))
        self.assert_accepted(token)
