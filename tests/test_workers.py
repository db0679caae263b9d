"""``--workers N``: several processes serving one port, run by one daemon."""

import collections
import http.client
import json
import os
import signal
import socket
import time

from twisted.internet import defer
from twisted.trial import unittest

from marconi_tx import config, workers
from marconi_tx.tap import Options
from tests.daemon import Daemon
from tests.http_support import CLIENT_ID
from tests.test_auth_http import write_token_file


def children(pid):
    """The pids of the processes ``pid`` started (Linux /proc)."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def _sockets(pids):
    """{socket inode: pid} of the sockets ``pids`` hold open."""
    owner = {}
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                owner[target[8:-1]] = pid
    return owner


def _established(port):
    """(inode, rx_queue bytes) of each established TCP connection of local
    ``port`` (Linux /proc/net/tcp)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].split(":")[1], 16) == port:
                yield fields[9], int(fields[4].split(":")[1], 16)


def established(pids, port):
    """How many established connections to ``port`` each of ``pids`` holds."""
    owner = _sockets(pids)
    return collections.Counter(owner[inode] for inode, _ in _established(port)
                               if inode in owner)


def wait_until(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {predicate}")
        time.sleep(0.05)


class WorkerOptionsTests(unittest.SynchronousTestCase):
    def parse(self, *args):
        options = Options()
        options.parseOptions(list(args))
        return options

    def test_workers_need_shared_storage_and_tcp(self):
        """More than one worker is refused, in one line, for an in-memory
        database (not shared) and for a non-TCP endpoint; 0 is refused."""
        cases = [("--workers", "2", "--storage", "sqlite::memory:"),
                 ("--workers", "2", "--http", "unix:/tmp/marconi-test.sock"),
                 ("--workers", "0")]
        for args in cases:
            with self.assertRaises(SystemExit) as caught:
                self.parse(*args)
            self.assertTrue(str(caught.exception.code).startswith("marconi: "), args)
            self.assertNotIn("\n", str(caught.exception.code))

    def test_worker_arguments(self):
        """A worker runs twistd marconi with the parent's settings, the
        inherited socket as its endpoint, no line endpoint and no workers."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("[drivers]\ngc_interval = 7\n")
        cfg = config.load(path, [("drivers", "storage", "sqlite:/tmp/x.db")])
        argv = workers.worker_argv(path, cfg, socket.AF_INET6)
        given = dict(zip(argv[3::2], argv[4::2]))
        self.assertEqual(argv[:3], ["-n", "--pidfile=", "marconi"])
        self.assertEqual(given, {"--config": os.path.abspath(path),
                                 "--storage": "sqlite:/tmp/x.db", "--gc-interval": "7.0",
                                 "--http": "systemd:domain=INET6:index=0", "--line": "",
                                 "--workers": "1"})


class WorkersTests(unittest.SynchronousTestCase):
    """A real daemon with two workers: the parent and one child process."""

    def setUp(self):
        self.workdir = self.mktemp()
        self.daemon = Daemon(self.workdir, "--storage", "sqlite:queues.db",
                             "--workers", "2").start()
        self.addCleanup(self.daemon.stop)
        self.parent = self.daemon.process.pid
        wait_until(lambda: len(children(self.parent)) == 1)
        [self.worker] = children(self.parent)

    def request(self, method, path, body=None, connection=None):
        conn = connection or http.client.HTTPConnection("127.0.0.1", self.daemon.port,
                                                        timeout=10)
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Client-ID": CLIENT_ID})
        response = conn.getresponse()
        content = response.read()
        if connection is None:
            conn.close()
        return response.status, (json.loads(content) if content else None)

    def test_both_processes_serve_one_store(self):
        """Connections are spread over both processes, and what is posted
        through either is in the one shared store."""
        self.assertEqual(self.request("PUT", "/v1/queues/jobs")[0], 201)
        connections = [http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=10)
                       for _ in range(16)]
        for index, conn in enumerate(connections):
            status, _ = self.request("POST", "/v1/queues/jobs/messages",
                                     [{"ttl": 60, "body": index}], conn)
            self.assertEqual(status, 201)
        counts = established([self.parent, self.worker], self.daemon.port)
        for conn in connections:
            conn.close()
        # All 16 on one socket of two would happen once in 2**15 runs.
        self.assertEqual(set(counts), {self.parent, self.worker})
        self.assertEqual(sum(counts.values()), 16)
        status, stats = self.request("GET", "/v1/queues/jobs/stats")
        self.assertEqual(stats["messages"]["total"], 16)

    def test_stop_stops_workers(self):
        """SIGTERM to the daemon stops its worker too, cleanly (exit status 0:
        nothing was in flight)."""
        self.assertEqual(self.daemon.stop(), 0)
        wait_until(lambda: not alive(self.worker))
        self.assertNotIn("Traceback", self.daemon.log())

    def test_parent_death_stops_workers(self):
        """A worker whose daemon is killed (no chance to stop it) exits."""
        self.daemon.stop(signal.SIGKILL)
        wait_until(lambda: not alive(self.worker))

    def test_dead_worker_is_replaced(self):
        """A worker that dies after starting is started again, and the
        port keeps serving meanwhile."""
        time.sleep(workers.STARTUP_GRACE)
        os.kill(self.worker, signal.SIGKILL)
        wait_until(lambda: children(self.parent) not in ([], [self.worker]))
        for _ in range(8):
            self.assertEqual(self.request("GET", "/v1/health")[0], 204)
        self.assertIn("worker 1 exited", self.daemon.log())


class WorkersLineTests(unittest.SynchronousTestCase):
    def test_post_through_a_worker_wakes_line_reserve(self):
        """A reserve waiting on the daemon's line endpoint is answered when
        the message is posted over HTTP through a worker process."""
        from tests.daemon import free_port, wait_for_port

        line_port = free_port()
        daemon = Daemon(self.mktemp(), "--storage", "sqlite:queues.db", "--workers", "2",
                        "--line", f"tcp:{line_port}:interface=127.0.0.1").start()
        self.addCleanup(daemon.stop)
        wait_until(lambda: len(children(daemon.process.pid)) == 1)
        [worker] = children(daemon.process.pid)
        wait_for_port(line_port, daemon.process)
        line = socket.create_connection(("127.0.0.1", line_port), timeout=10)
        self.addCleanup(line.close)
        line.sendall(b"watch jobs\r\nreserve\r\n")
        self.assertEqual(line.recv(100), b"WATCHING 2\r\n")

        # A connection the kernel gave to the worker (16 tries: 2**-16 to miss).
        def worker_connection():
            for _ in range(16):
                conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
                conn.request("GET", "/v1/health")
                conn.getresponse().read()
                if established([worker], daemon.port):
                    return conn
                conn.close()
            raise AssertionError("no connection reached the worker")

        conn = worker_connection()
        self.addCleanup(conn.close)
        headers = {"Client-ID": CLIENT_ID}
        conn.request("PUT", "/v1/queues/jobs", headers=headers)
        self.assertEqual(conn.getresponse().read(), b"")
        conn.request("POST", "/v1/queues/jobs/messages", json.dumps([{"ttl": 60, "body": "hi"}]),
                     headers=headers)
        [href] = json.loads(conn.getresponse().read())["resources"]
        answer = line.recv(200)
        self.assertEqual(answer, b"RESERVED %s 2\r\nhi\r\n" % href.rsplit("/", 1)[1].encode())


class StartupFailureTests(unittest.TestCase):
    async def test_worker_failing_to_start_stops_the_daemon(self):
        """A worker ending right after it was started (it could not start)
        stops the daemon rather than being started again and again."""
        from twisted.internet import reactor

        stopped = defer.Deferred()

        class ObservedReactor:
            """The real reactor, except that stop() is only recorded."""

            def __getattr__(self, name):
                return getattr(reactor, name)

            def stop(self):
                stopped.callback(None)

        pool = workers.WorkerPool(1, (socket.AF_INET, "127.0.0.1", 0, 50),
                                  ["--no-such-option"], ObservedReactor())
        pool.startService()
        self.addCleanup(pool.stopService)
        await stopped.addTimeout(30, reactor)
        self.assertEqual(pool.workers, {})


def unread(pids, port):
    """Bytes received but not yet read by ``pids`` on their connections to
    ``port`` (Linux /proc/net/tcp rx_queue)."""
    owner = _sockets(pids)
    return sum(queued for inode, queued in _established(port) if inode in owner)


def connection_to(port, pid):
    """An HTTP connection the kernel gave to process ``pid``."""
    for _ in range(32):  # 2**-32 to miss
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/v1/health")
        conn.getresponse().read()
        if established([pid], port):
            return conn
        conn.close()
    raise AssertionError(f"no connection reached {pid}")


class WorkersSighupTests(unittest.SynchronousTestCase):
    def test_sighup_reloads_the_token_file_in_every_process(self):
        """A SIGHUP to the daemon reaches its worker: a token added to the
        token file is then accepted by the worker's process too (before,
        the worker answered it 401)."""
        workdir = os.path.abspath(self.mktemp())
        os.makedirs(workdir)
        tokens, conf = os.path.join(workdir, "tokens"), os.path.join(workdir, "marconi.conf")
        write_token_file(tokens, {"old-token": ("p", "")})
        with open(conf, "w", encoding="utf-8") as f:
            f.write(f"[auth]\nstrategy = token\ntoken_file = {tokens}\n")
        daemon = Daemon(workdir, "--config", conf, "--storage", "sqlite:queues.db",
                        "--workers", "2").start()
        self.addCleanup(daemon.stop)
        wait_until(lambda: len(children(daemon.process.pid)) == 1)
        [worker] = children(daemon.process.pid)

        def worker_answers(token):
            conn = connection_to(daemon.port, worker)
            try:
                conn.request("GET", "/v2/queues", headers={"X-Auth-Token": token,
                                                           "Client-ID": CLIENT_ID})
                return conn.getresponse().status
            finally:
                conn.close()

        self.assertEqual(worker_answers("new-token"), 401)
        write_token_file(tokens, {"new-token": ("p", "")})
        os.kill(daemon.process.pid, signal.SIGHUP)
        wait_until(lambda: worker_answers("new-token") == 200)
        self.assertEqual(worker_answers("old-token"), 401)


class WorkersLongPollTests(unittest.SynchronousTestCase):
    def setUp(self):
        self.daemon = Daemon(self.mktemp(), "--storage", "sqlite:queues.db",
                             "--workers", "2").start()
        self.addCleanup(self.daemon.stop)
        self.parent = self.daemon.process.pid
        wait_until(lambda: len(children(self.parent)) == 1)
        [self.worker] = children(self.parent)

    def connection_to(self, pid):
        return connection_to(self.daemon.port, pid)

    def test_post_in_one_process_wakes_claim_waiting_in_the_other(self):
        """A claim waiting in one process (worker, then daemon) is answered
        201 with the message posted through the other process, long before
        its wait (20 s) runs out, which would be a 204."""
        headers = {"Client-ID": CLIENT_ID, "X-Project-ID": "p"}
        for waiting_in, posting_in in ((self.worker, self.parent),
                                       (self.parent, self.worker)):
            waiting, posting = self.connection_to(waiting_in), self.connection_to(posting_in)
            posting.request("PUT", "/v2/queues/jobs", headers=headers)
            posting.getresponse().read()
            waiting.request("POST", "/v2/queues/jobs/claims?wait=20", "{}", headers=headers)
            wait_until(lambda: unread([waiting_in], self.daemon.port) == 0)  # noqa: B023
            time.sleep(0.2)  # its first try done: the claim waits
            posting.request("POST", "/v2/queues/jobs/messages",
                            json.dumps({"messages": [{"body": waiting_in}]}), headers=headers)
            self.assertEqual(posting.getresponse().status, 201)
            answer = waiting.getresponse()
            self.assertEqual(answer.status, 201)
            self.assertEqual(json.loads(answer.read())["messages"][0]["body"], waiting_in)
            waiting.close()
            posting.close()
