"""Helpers for the cluster tests: a real redis-server, N switchboard nodes on it, HAProxy in front.

Everything listens on 127.0.0.1 free ports and is started and stopped by the test; every wait is
bounded. Nodes run with a short --node-ttl so that failure tests finish quickly.
"""

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import (RECV_TIMEOUT, SLOW, Server, free_port, http_get, open_router, recv_json)

REDIS_BIN = "/usr/bin/redis-server"
HAPROXY_BIN = "/usr/sbin/haproxy"
HAPROXY_CFG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "haproxy-cluster.cfg")
NODE_TTL = 3  # seconds: --node-ttl of the test nodes


def end_process(proc):
    """SIGTERM, and SIGKILL if it has not exited 10 s later."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def wait_port(port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nothing listens on 127.0.0.1:%d after %.0f s" % (port, timeout))


def bulk_end(data):
    """Where a RESP bulk string that data starts with ends."""
    head = data.split(b"\r\n", 1)[0]
    return len(head) + 2 + int(head[1:]) + 2


class Redis:
    """redis-server on a free port, no persistence. stop()/start() keep the port."""

    def __init__(self):
        if not os.access(REDIS_BIN, os.X_OK):
            raise AssertionError("%s is missing (apt-get install redis-server)" % REDIS_BIN)
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sb-redis-")
        self.proc = None

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--logfile", os.path.join(self.dir, "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, 10 * SLOW)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            end_process(self.proc)
        self.proc = None

    def command(self, *args):
        """One command on a connection of its own; the reply, undecoded (a bulk string's bytes)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10 * SLOW) as s:
            s.sendall(("*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a), a) for a in args)).encode())
            data = b""
            while b"\r\n" not in data or (data.startswith(b"$") and len(data) < bulk_end(data)):
                chunk = s.recv(65536)
                if not chunk:
                    raise AssertionError("Redis closed the connection: %r" % data)
                data += chunk
            head, _, rest = data.partition(b"\r\n")
            return rest[:int(head[1:])] if head.startswith(b"$") else head

    def kill_client(self, name):
        """Closes the connection CLIENT SETNAME called `name` (a node's: switchboard-NODE-cmd or -sub)."""
        for line in self.command("CLIENT", "LIST").decode().splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            if fields.get("name") == name:
                return self.command("CLIENT", "KILL", "ID", fields["id"])
        raise AssertionError("no Redis client named %s" % name)

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Cluster:
    """n switchboard nodes sharing one Redis (prefix unique per cluster)."""

    def __init__(self, n=3, extra_args=(), redis=None):
        self.redis = redis or Redis().start()
        self.own_redis = redis is None
        self.prefix = "sbtest%d" % os.getpid()
        self.extra_args = list(extra_args)
        self.nodes = []
        try:
            for i in range(n):
                self.nodes.append(self.make_node(i))
            for node in self.nodes:
                node.start()
            self.wait_redis_up()
        except BaseException:
            self.cleanup()
            raise

    def make_node(self, i):
        return Server(args=["--redis", self.redis.url, "--redis-prefix", self.prefix, "--node-id", "node%d" % i,
                            "--node-ttl", str(NODE_TTL), "--threads", "2"] + self.extra_args)

    def wait_redis_up(self, nodes=None, timeout=None):
        deadline = time.monotonic() + (timeout or 10 * SLOW)
        for node in nodes or self.nodes:
            while node.healthz().get("redis") != "up":
                if time.monotonic() > deadline:
                    raise AssertionError("node on %d never reported redis up: %r\n%s"
                                         % (node.port, node.healthz(), node.stderr_tail()))
                time.sleep(0.05)

    async def presence_settled(self, timeout=None):
        """Every node has heard every presence change the others announced (they cross Redis a few
        milliseconds apart: a user's first node may be known before its second)."""
        deadline = time.monotonic() + (timeout or 10 * SLOW)
        while True:
            m = [node.metrics() for node in self.nodes]
            out = [x.get("switchboard_cluster_presence_out_total") for x in m]
            heard = [x.get("switchboard_cluster_presence_in_total") for x in m]
            if all(heard[i] == sum(out) - out[i] for i in range(len(self.nodes))):
                return
            if time.monotonic() > deadline:
                raise AssertionError("presence not settled: out %r, in %r" % (out, heard))
            await asyncio.sleep(0.02)

    def ports(self):
        return [n.port for n in self.nodes]

    def stderr(self):
        return "\n".join(n.stderr_tail(30) for n in self.nodes)

    def stop_and_check(self):
        errors = []
        for node in self.nodes:
            try:
                node.stop_and_check()
            except AssertionError as e:
                errors.append(str(e))
        self.nodes = []
        if self.own_redis:
            self.redis.cleanup()
        if errors:
            raise AssertionError("\n".join(errors))

    def cleanup(self):
        for node in self.nodes:
            node.cleanup()
        self.nodes = []
        if self.own_redis:
            self.redis.cleanup()


class ClusterTestCase(unittest.TestCase):
    """One cluster of NODES nodes (with EXTRA_ARGS) for the whole class; a failing test prints the
    nodes' stderr."""

    NODES = 3
    EXTRA_ARGS = ()

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(cls.NODES, extra_args=cls.EXTRA_ARGS)
        cls.ports = cls.cluster.ports()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop_and_check()

    def run(self, result=None):
        result = super().run(result)
        if result and (result.failures or result.errors) and self.cluster.nodes:
            print(self.cluster.stderr())
        return result


async def users_of(port, timeout=None):
    """The users list one node gives a fresh anonymous connection's `users` command."""
    ws, _ = await open_router(port)
    try:
        await ws.send(json.dumps({"type": "users"}))
        while True:
            m = await recv_json(ws, timeout)
            if m.get("type") == "users":
                return m["users"]
    finally:
        await ws.close()


async def wait_users(port, want, absent=(), timeout=None):
    """Polls a node's `users` until every name in want is listed and none in absent (bounded)."""
    deadline = time.monotonic() + (timeout or RECV_TIMEOUT)
    got = None
    while time.monotonic() < deadline:
        got = await users_of(port)
        if all(u in got for u in want) and not any(u in got for u in absent):
            return got
        await asyncio.sleep(0.1)
    raise AssertionError("node %d lists %r; wanted %r and not %r" % (port, got, list(want), list(absent)))


class HAProxy:
    """haproxy 2.6, roundrobin over the given ports (haproxy-cluster.cfg), its config in a temp dir."""

    def __init__(self, ports):
        if not os.access(HAPROXY_BIN, os.X_OK):
            raise AssertionError("%s is missing (apt-get install haproxy)" % HAPROXY_BIN)
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sb-haproxy-")
        servers = "\n".join("    server n%d 127.0.0.1:%d check inter 500ms" % (i, p) for i, p in enumerate(ports))
        with open(HAPROXY_CFG) as f:
            cfg = f.read().format(port=self.port, servers=servers)
        self.cfg_path = os.path.join(self.dir, "haproxy.cfg")
        with open(self.cfg_path, "w") as f:
            f.write(cfg)
        self.log_path = os.path.join(self.dir, "haproxy.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([HAPROXY_BIN, "-f", self.cfg_path, "-db"], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        try:
            wait_port(self.port, 10 * SLOW)
            self.wait_backends_up(len(ports))
        except BaseException:
            self.cleanup()
            raise

    def wait_backends_up(self, n):
        """Until n consecutive requests went through (the health checks have passed)."""
        deadline = time.monotonic() + 10 * SLOW
        ok = 0
        while ok < n and time.monotonic() < deadline:
            try:
                ok = ok + 1 if http_get(self.port, "/healthz", timeout=2).status == 200 else 0
            except OSError:
                ok = 0
                time.sleep(0.1)
        if ok < n:
            raise AssertionError("haproxy on %d does not reach the nodes" % self.port)

    def cleanup(self):
        if self.proc.poll() is None:
            end_process(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
