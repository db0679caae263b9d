"""A real ``twistd marconi --workers 2`` with pooling on: every process and
every transport finds a queue's pool through the shared catalog."""

import http.client
import json
import os
import socket

from twisted.internet import task
from twisted.trial import unittest

from marconi_tx.storage.sqlite.driver import SqliteDriver
from tests.daemon import Daemon, free_port, wait_for_port
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
        self.line_port = free_port()
        self.daemon = Daemon(self.workdir, "--config", settings, "--storage",
                             "sqlite:catalog.db", "--workers", "2",
                             "--line", f"tcp:{self.line_port}:interface=127.0.0.1").start()
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

    def test_line_port_and_http_share_pooled_queues(self):
        """Jobs put over the line port (the daemon's process) are read over
        HTTP through both processes with the same ids; messages posted over
        HTTP through both processes are reserved and deleted by id over the
        line port."""
        wait_for_port(self.line_port, self.daemon.process)
        line = socket.create_connection(("127.0.0.1", self.line_port), timeout=10)
        self.addCleanup(line.close)
        replies = line.makefile("rb")

        def command(text):
            line.sendall(text)
            return replies.readline()

        put = set()
        for tube in ("t0", "t1", "t2", "t3"):
            self.assertEqual(command(f"use {tube}\r\n".encode()), f"USING {tube}\r\n".encode())
            answer = command(b"put 1 0 60 2\r\nhi\r\n")
            self.assertTrue(answer.startswith(b"INSERTED "), answer)
            put.add((tube, answer.split()[1].decode()))
        connections = []
        read = set()
        for tube in ("t0", "t1", "t2", "t3"):
            for _ in range(4):
                conn = self.connect()
                connections.append(conn)
                status, listed = self.request(conn, "GET",
                                              f"/v1/queues/{tube}/messages?echo=true")
                self.assertEqual(status, 200)
                read |= {(tube, m["href"].rsplit("/", 1)[1]) for m in listed["messages"]}
            self.assertEqual(self.request(conn, "POST", f"/v1/queues/{tube}/messages",
                                          [{"ttl": 60, "body": "posted"}])[0], 201)
        self.assertEqual(set(established(self.processes, self.daemon.port)),
                         set(self.processes))
        for conn in connections:
            conn.close()
        self.assertEqual(read, put)
        for tube in ("t0", "t1", "t2", "t3"):
            self.assertTrue(command(f"watch {tube}\r\n".encode()).startswith(b"WATCHING"))
        self.assertTrue(command(b"ignore default\r\n").startswith(b"WATCHING"))
        reserved = []
        for _ in range(8):
            answer = command(b"reserve-with-timeout 0\r\n")
            self.assertTrue(answer.startswith(b"RESERVED "), answer)
            reserved.append(answer.split()[1])
            replies.readline()  # the body
        self.assertEqual(command(b"reserve-with-timeout 0\r\n"), b"TIMED_OUT\r\n")
        for job in reserved:
            self.assertEqual(command(b"delete " + job + b"\r\n"), b"DELETED\r\n")
        conn = self.connect()
        self.addCleanup(conn.close)
        for tube in ("t0", "t1", "t2", "t3"):
            _, stats = self.request(conn, "GET", f"/v1/queues/{tube}/stats")
            self.assertEqual(stats["messages"]["total"], 0)
