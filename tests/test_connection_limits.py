"""Descriptors: the open-files limit, per-endpoint caps, the line idle timeout."""

import http.client
import os
import socket
import subprocess
import time

from twisted.internet import task
from twisted.internet.testing import StringTransportWithDisconnection
from twisted.trial import unittest

from marconi_tx import config, limits
from marconi_tx.storage.sqlite.driver import SqliteDriver
from marconi_tx.transport.line import make_factory
from tests.daemon import Daemon, free_port


class ShareTests(unittest.SynchronousTestCase):
    def test_automatic_share_keeps_a_reserve(self):
        """Automatic caps split what is left after the reserve between the
        endpoints, so both together never take every descriptor."""
        self.assertEqual(limits.automatic_share(1024, 2), (1024 - 32 - 64) // 2)
        self.assertEqual(limits.automatic_share(1024, 1), 1024 - 32 - 64)
        self.assertLess(2 * limits.automatic_share(64, 2), 64 - 32)


class IdleTimeoutTests(unittest.SynchronousTestCase):
    """[drivers:transport:line] idle_timeout, over a Clock."""

    def setUp(self):
        self.clock = task.Clock()
        self.driver = SqliteDriver(":memory:", self.clock)
        self.driver.open_now()
        self.addCleanup(self.driver.close)

    def connect(self, idle_timeout):
        cfg = config.load(overrides=[("drivers:transport:line", "idle_timeout",
                                      str(idle_timeout))])
        protocol = make_factory(self.driver, cfg, self.clock).buildProtocol(None)
        transport = StringTransportWithDisconnection()
        transport.protocol = protocol
        protocol.makeConnection(transport)
        return protocol, transport

    def test_idle_connection_closed(self):
        """A connection that sends nothing for idle_timeout seconds is
        closed; input restarts the count."""
        protocol, transport = self.connect(30)
        self.clock.advance(20)
        protocol.dataReceived(b"list-tube-used\r\n")
        self.clock.advance(20)
        self.assertTrue(transport.connected)
        self.clock.advance(10)
        self.assertFalse(transport.connected)

    def test_waiting_reserve_is_not_idle(self):
        """A connection waiting in reserve stays open past idle_timeout."""
        protocol, transport = self.connect(30)
        protocol.dataReceived(b"reserve\r\n")
        self.clock.advance(95)
        self.assertTrue(transport.connected)

    def test_off_by_default(self):
        """With the default (0) a silent connection stays open."""
        protocol, transport = self.connect(0)
        self.clock.advance(10 ** 6)
        self.assertTrue(transport.connected)


def _closed_at_once(port):
    """True if a new connection to ``port`` is closed by the daemon without
    a byte sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            return s.recv(1) == b""
        except ConnectionResetError:
            return True


def _wait_closed(port):
    """Wait until the daemon has closed every connection to ``port`` (none
    left established or in CLOSE-WAIT on its side)."""
    for _ in range(1000):
        out = subprocess.run(["ss", "-Htn", f"( sport = :{port} )"], capture_output=True,
                             text=True, check=True).stdout
        if not [line for line in out.splitlines() if not line.startswith("TIME-WAIT")]:
            return
        time.sleep(0.01)
    raise AssertionError(f"connections to {port} stay open")


def _health(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/v1/health")
        return conn.getresponse().status
    finally:
        conn.close()


def _line(port, command):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(command)
        return s.recv(4096)


class FullEndpointTests(unittest.TestCase):
    """A real twistd with an open-files limit of 64 (hard 128) and caps of
    8 connections an endpoint."""

    def setUp(self):
        workdir = self.mktemp()
        os.makedirs(workdir)
        with open(os.path.join(workdir, "m.conf"), "w") as f:
            f.write("[drivers]\nhttp_max_connections = 8\nline_max_connections = 8\n")
        self.line_port = free_port()
        self.daemon = Daemon(workdir, "--config", "m.conf", "--storage", "sqlite:q.db",
                             "--line", f"tcp:{self.line_port}:interface=127.0.0.1",
                             limit_files=(64, 128)).start()
        self.addCleanup(self.daemon.stop)
        self.held = []
        self.addCleanup(lambda: [s.close() for s in self.held])

    def fill(self, port):
        _wait_closed(port)  # the daemon counted no earlier connection still open
        for _ in range(8):
            self.held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        # The eighth is accepted: a round trip on it proves the daemon saw them all.
        return self.held[-1]

    def test_soft_limit_raised(self):
        """The soft RLIMIT_NOFILE is raised to the hard limit, and both are
        logged."""
        self.assertEqual(_health(self.daemon.port), 204)
        self.assertIn("Open files: soft limit 64 -> 128 (hard limit 128)", self.daemon.log())

    def test_http_answers_while_line_full(self):
        """With the line endpoint full, a new line connection is closed at
        once, and the HTTP API still answers."""
        last = self.fill(self.line_port)
        last.sendall(b"list-tube-used\r\n")
        self.assertEqual(last.recv(100), b"USING default\r\n")
        self.assertTrue(_closed_at_once(self.line_port))
        self.assertEqual(_health(self.daemon.port), 204)
        self.assertIn("line endpoint is full (8 connections)", self.daemon.log())

    def test_line_answers_while_http_full(self):
        """With the HTTP endpoint full, a new HTTP connection is closed at
        once, and the line endpoint still answers."""
        last = self.fill(self.daemon.port)
        last.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(last.recv(100).startswith(b"HTTP/1.1 204"))
        self.assertTrue(_closed_at_once(self.daemon.port))
        self.assertEqual(_line(self.line_port, b"list-tube-used\r\n"), b"USING default\r\n")
        self.held.pop().close()
        # A closed connection makes room again.
        for _ in range(100):
            try:
                if _health(self.daemon.port) == 204:
                    break
            except (ConnectionError, http.client.HTTPException):
                continue
        else:
            self.fail("the HTTP endpoint never accepted again")
