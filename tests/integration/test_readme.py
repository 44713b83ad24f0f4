"""README.md against the server (issue 22): the quick try replayed, the /healthz body and the list of
/metrics compared with a live server's output (alone and as a cluster node), and the settings table
against --help and compose.yaml."""

import json
import os
import re
import subprocess
import unittest

import yaml

import harness
from clusterkit import Cluster, wait_port
from harness import SLOW, recv_json

README = os.path.join(harness.SB_SRC, "README.md")


def readme():
    with open(README) as f:
        return f.read()


def section(text, title):
    return text.split(title, 1)[1].split("\n## ", 1)[0]


def documented_metrics():
    """{name: (type, cluster_only)} from the table between the metrics markers."""
    table = readme().split("<!-- metrics -->", 1)[1].split("<!-- end of metrics -->", 1)[0]
    rows = re.findall(r"^\| `(switchboard_[a-z_]+)` \| (gauge|counter) \|([^|]*)\|([^|]*)\|$", table, re.M)
    return {name: (kind, meaning.strip().startswith("with `--redis`")) for name, kind, _, meaning in rows}


def live_metrics(port):
    """{name: type} from the # TYPE lines of a live /metrics."""
    r = harness.http_get(port, "/metrics")
    assert r.status == 200, r
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", r.body.decode(), re.M))


class QuickTryTest(harness.FreshServerMixin, unittest.TestCase):
    def test_two_terminals_replayed(self):
        blocks = re.findall(r"```console\n\$ [^\n]*'ws://127\.0\.0\.1:8080(/ws\?user=\w+)'\n(.*?)```",
                            section(readme(), "## Quick try"), re.S)
        self.assertEqual(len(blocks), 2, "expected bob's and alice's terminals")
        (bob_path, bob_lines), (alice_path, alice_lines) = blocks
        bob_want = [json.loads(l[2:]) for l in bob_lines.splitlines() if l.startswith("< ")]
        alice = [(l[0], json.loads(l[2:])) for l in alice_lines.splitlines() if l[:2] in ("< ", "> ")]
        srv = self.start_server(["--presence", "rooms"])  # the default (the harness would pick global)

        async def go():
            bob = await harness.ws_open(srv.port, bob_path)
            got_bob = [await recv_json(bob)]
            al = await harness.ws_open(srv.port, alice_path)
            for direction, msg in alice:
                if direction == ">":
                    await al.send(json.dumps(msg, separators=(",", ":")))
                else:
                    self.assertEqual(await recv_json(al), msg)
            while len(got_bob) < len(bob_want):
                got_bob.append(await recv_json(bob))
            self.assertEqual(got_bob, bob_want)
            await al.close()
            await bob.close()
        harness.run_async(go())


class MonitoringDocTest(unittest.TestCase):
    def check_metrics(self, port, clustered):
        documented = documented_metrics()
        self.assertGreater(len(documented), 20)
        want = {n: k for n, (k, cluster_only) in documented.items() if clustered or not cluster_only}
        self.assertEqual(live_metrics(port), want)

    def check_healthz(self, port, clustered):
        block = re.search(r"`GET /healthz`.*?```json\n(.*?)\n```", readme(), re.S).group(1)
        doc = json.loads(block)
        live = harness.http_get(port, "/healthz").json()
        keys = set(doc) | ({"redis"} if clustered else set())
        self.assertEqual(set(live), keys)
        self.assertEqual(live["status"], "ok")
        if clustered:
            self.assertEqual(live["redis"], "up")

    def test_alone(self):
        srv = harness.Server(["--api-key", "k"])
        srv.start()
        try:
            self.check_metrics(srv.port, False)
            self.check_healthz(srv.port, False)
        finally:
            srv.stop_and_check(self)

    def test_cluster_node(self):
        cluster = Cluster(1)
        try:
            self.check_metrics(cluster.nodes[0].port, True)
            self.check_healthz(cluster.nodes[0].port, True)
            cluster.stop_and_check()
        finally:
            cluster.cleanup()


class SettingsTableTest(unittest.TestCase):
    def table_variables(self):
        table = section(readme(), "### Settings").split("\n\n### ", 1)[0]
        return set(re.findall(r"`(SWITCHBOARD_[A-Z_]+)`", table))

    def test_every_setting_listed(self):
        helptext = subprocess.run([harness.SB_BIN, "--help"], capture_output=True, timeout=10 * SLOW).stdout.decode()
        self.assertEqual(set(re.findall(r"\[(SWITCHBOARD_[A-Z_]+)", helptext)), self.table_variables())

    def test_compose_carries_every_setting(self):
        with open(os.path.join(harness.SB_SRC, "compose.yaml")) as f:
            text = f.read()
        for var in self.table_variables():
            self.assertRegex(text, r"(?m)^\s*#? ?%s:" % var, "compose.yaml lacks " + var)
        self.assertIn("secrets:", text)
        self.assertIn("/run/secrets/switchboard-jwt", text)
        env = yaml.safe_load(text)["services"]["switchboard"]["environment"]
        resolved = {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}
        # compose's defaults, as written, start a server (outside the container: local port and root)
        resolved["SWITCHBOARD_PORT"] = "127.0.0.1:%d" % harness.free_port()
        resolved["SWITCHBOARD_ROOT"] = os.path.join(harness.SB_SRC, "www")
        srv_env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
        srv_env.update(resolved)
        proc = subprocess.Popen([harness.SB_BIN], env=srv_env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            port = int(resolved["SWITCHBOARD_PORT"].split(":")[1])
            wait_port(port, 10 * SLOW)
            self.assertEqual(harness.http_get(port, "/healthz").status, 200)
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=15 * SLOW)
        self.assertEqual(proc.returncode, 0, err.decode())


if __name__ == "__main__":
    unittest.main()
