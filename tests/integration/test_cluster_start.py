"""A node's start in a cluster (issue 22, docs/CLI.md --node-id and --redis): an id held by a live node
is refused (exit 2), one left by a killed node is taken over once its presence expires, and an
unreachable Redis is one warning line, then a degraded node that joins when Redis comes."""

import signal
import time
import unittest

import harness
from clusterkit import NODE_TTL, Cluster, Redis
from harness import SLOW


class NodeIdTest(unittest.TestCase):
    def setUp(self):
        self.cluster = Cluster(1)
        self.addCleanup(self.cluster.cleanup)

    def twin(self):
        """A second node with node0's id on the same Redis and prefix."""
        return self.cluster.make_node(0)

    def test_live_node_id_refused(self):
        twin = self.twin()
        twin.start(wait=False)
        self.addCleanup(twin.cleanup)
        code = twin.wait_exit(timeout=(NODE_TTL + 5) * SLOW)
        self.assertEqual(code, 2, twin.stderr_tail())
        self.assertIn("--node-id node0 is in use by a live node", twin.stderr_text())
        self.assertEqual(self.cluster.nodes[0].healthz()["status"], "ok")  # the holder is undisturbed

    def test_dead_node_id_taken_over_after_its_ttl(self):
        self.cluster.nodes[0].proc.send_signal(signal.SIGKILL)
        self.cluster.nodes[0].wait_exit()
        killed = time.monotonic()
        twin = self.twin()
        self.addCleanup(twin.cleanup)
        twin.start(wait=False)
        twin.wait_ready(timeout=(NODE_TTL + 5) * SLOW)
        self.assertLess(time.monotonic() - killed, NODE_TTL + 3 * SLOW)
        text = twin.stderr_text()
        self.assertIn("is held in Redis", text)
        self.assertIn("taking the id over", text)
        self.cluster.wait_redis_up([twin])
        self.assertEqual(twin.stop(), 0)

    def test_normal_restart_waits_for_nothing(self):
        self.assertEqual(self.cluster.nodes[0].stop(), 0)  # deletes its presence
        twin = self.twin()
        self.addCleanup(twin.cleanup)
        twin.start()
        self.assertNotIn("is held in Redis", twin.stderr_text())
        self.assertEqual(twin.stop(), 0)


class UnreachableRedisTest(unittest.TestCase):
    def test_one_warning_then_degraded_then_joins(self):
        redis = Redis()  # its port, not started yet
        self.addCleanup(redis.cleanup)
        node = harness.Server(["--redis", redis.url, "--node-id", "lonely", "--node-ttl", str(NODE_TTL)])
        self.addCleanup(node.cleanup)
        node.start()
        h = node.healthz()
        self.assertEqual((h["status"], h["redis"]), ("degraded", "down"))
        lines = [l for l in node.stderr_text().splitlines() if "unreachable" in l]
        self.assertEqual(len(lines), 1, node.stderr_tail())
        self.assertRegex(lines[0], r"warn .*redis 127\.0\.0\.1:%d is unreachable .*starting degraded" % redis.port)
        redis.start()
        deadline = time.monotonic() + 15 * SLOW
        while node.healthz().get("redis") != "up" and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(node.healthz()["status"], "ok")
        self.assertEqual(node.stop(), 0)


if __name__ == "__main__":
    unittest.main()
