"""A real ``twistd marconi --workers 2`` with pooling on: every process finds
a queue's pool through the shared catalog."""

import http.client
import json
import os

from twisted.internet import task
from twisted.trial import unittest

from marconi_tx.storage.sqlite.driver import SqliteDriver
from tests.daemon import Daemon
from tests.http_support import CLIENT_ID
from tests.test_workers import children, established, wait_until

QUEUES = 16
POSTS = 4


class PooledWorkersTests(unittest.SynchronousTestCase):
    """Two pools (sqlite files) registered in the catalog file before the
    daemon starts; the daemon's parent and its worker both serve."""

    def setUp(self):
        self.workdir = os.path.abspath(self.mktemp())
        os.makedirs(self.workdir)
        self.pools = {name: os.path.join(self.workdir, f"{name}.db")
                      for name in ("pool1", "pool2")}
        catalog = self.sqlite(os.path.join(self.workdir, "catalog.db"))
        for name, path in self.pools.items():
            self.successResultOf(catalog.pools.create(name, f"sqlite:{path}", 1))
        self.successResultOf(catalog.close())
        settings = os.path.join(self.workdir, "marconi.conf")
        with open(settings, "w") as f:
            f.write("[drivers]\npooling = true\n")
        self.daemon = Daemon(self.workdir, "--config", settings, "--storage",
                             "sqlite:catalog.db", "--workers", "2").start()
        self.addCleanup(self.daemon.stop)
        wait_until(lambda: len(children(self.daemon.process.pid)) == 1)
        self.processes = [self.daemon.process.pid, *children(self.daemon.process.pid)]

    def sqlite(self, path):
        driver = SqliteDriver(path, task.Clock())
        self.successResultOf(driver.open())
        return driver

    def connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=10)

    def request(self, conn, method, path, body=None):
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Client-ID": CLIENT_ID})
        response = conn.getresponse()
        content = response.read()
        return response.status, (json.loads(content) if content else None)

    def test_queue_found_by_every_process(self):
        """Queues created through one connection are posted to through
        others, spread over both processes; each queue has every message,
        in the one pool the catalog names, and the queues are spread over
        both pools."""
        names = [f"q{n}" for n in range(QUEUES)]
        connections = []
        for name in names:
            conn = self.connect()
            connections.append(conn)
            self.assertEqual(self.request(conn, "PUT", f"/v1/queues/{name}")[0], 201)
            for n in range(POSTS):
                conn = self.connect()
                connections.append(conn)
                status, _ = self.request(conn, "POST", f"/v1/queues/{name}/messages",
                                         [{"ttl": 60, "body": n}])
                self.assertEqual(status, 201)
        served = established(self.processes, self.daemon.port)
        for conn in connections:
            conn.close()
        self.assertEqual(set(served), set(self.processes))
        conn = self.connect()
        self.addCleanup(conn.close)
        for name in names:
            _, stats = self.request(conn, "GET", f"/v1/queues/{name}/stats")
            self.assertEqual(stats["messages"]["total"], POSTS, name)
        self.daemon.stop()
        catalog = self.sqlite(os.path.join(self.workdir, "catalog.db"))
        self.addCleanup(catalog.close)
        held = {}
        for pool, path in self.pools.items():
            driver = self.sqlite(path)
            self.addCleanup(driver.close)
            held[pool] = {q.name for q in self.successResultOf(driver.queues.list(None, limit=100))}
        self.assertEqual(held["pool1"] | held["pool2"], set(names))
        self.assertEqual(held["pool1"] & held["pool2"], set())
        self.assertTrue(held["pool1"] and held["pool2"])
        for name in names:
            recorded = self.successResultOf(catalog.catalog.lookup(None, name))
            self.assertIn(name, held[recorded])
