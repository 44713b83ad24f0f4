"""Three nodes behind HAProxy (roundrobin) pass the router's contract as if they were one server.

The whole of test_routing.RoutingTest runs against the balancer's port: every client connection lands
on the next node, so each test's clients are spread over the three nodes, and the WebSocket upgrade
goes through HAProxy 2.6. Every test must pass unchanged, waiting only where the contract says
presence crosses nodes asynchronously (presence_settled).
"""

import time
import unittest

import test_routing
from clusterkit import Cluster, HAProxy
from harness import SLOW


class Front:
    """What ServerTestCase expects of `server`, for a balancer in front of a cluster."""

    def __init__(self, proxy, cluster):
        self.proxy = proxy
        self.cluster = cluster
        self.port = proxy.port

    def stderr_tail(self, n=60):
        return self.cluster.stderr()

    def stop_and_check(self):
        try:
            self.proxy.cleanup()
        finally:
            self.cluster.stop_and_check()


class RoutingThroughHAProxyTest(test_routing.RoutingTest):
    @classmethod
    def setUpClass(cls):
        cluster = Cluster(3)
        try:
            proxy = HAProxy(cluster.ports())
        except BaseException:
            cluster.cleanup()
            raise
        cls.server = Front(proxy, cluster)

    async def presence_settled(self):
        """Presence crosses nodes through Redis, milliseconds later (PROTOCOL.md, "Several nodes"):
        the tests that read it across nodes (a users list, a publish's `delivered`) wait until every
        node has heard every presence change the others announced."""
        await self.server.cluster.presence_settled()

    def wait_nobody_online(self):
        """The previous test's users have left every node (their leave events also cross Redis after
        the test ends)."""
        deadline = time.monotonic() + 10 * SLOW
        for node in self.server.cluster.nodes:
            while node.metrics().get("switchboard_users_online") != 0:
                if time.monotonic() > deadline:
                    raise AssertionError("users still online on node %d" % node.port)
                time.sleep(0.05)


if __name__ == "__main__":
    unittest.main()
