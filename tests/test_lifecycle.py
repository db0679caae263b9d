"""The daemon's life: start-up failures, the drain at SIGTERM, SIGHUP."""

import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection
from twisted.trial import unittest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from marconi_tx.lifecycle import Drain, OrderedShutdown
from marconi_tx.transport.http.site import make_site
from tests.daemon import ROOT, Daemon, free_port, twistd_command, wait_for_port
from tests.test_auth_http import write_token_file

CLIENT_ID = "3381af92-2b9e-11e3-b191-71861300734c"


class _Pending(Resource):
    """Answers a request when the test says so."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.requests = []

    def render(self, request):
        self.requests.append(request)
        return NOT_DONE_YET


def _connect(site):
    channel = site.buildProtocol(None)
    transport = StringTransportWithDisconnection()
    transport.protocol = channel
    channel.makeConnection(transport)
    return channel, transport


class DrainTests(unittest.SynchronousTestCase):
    """Drain, on a real Site over fake transports and a Clock."""

    def setUp(self):
        self.clock = Clock()
        self.resource = _Pending()
        self.site = make_site(self.resource, max_body=1000)
        self.site.reactor = self.clock
        self.site.timeOut = None
        self.drain = Drain(self.site, None, 10.0, self.clock)
        self.drain.startService()

    def test_requests_in_flight_finish_then_connections_close(self):
        """A request in flight is answered (with Connection: close), idle
        keep-alive connections close at once, and the drain ends once the
        last answer is sent."""
        busy, busy_transport = _connect(self.site)
        busy.dataReceived(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        idle, idle_transport = _connect(self.site)
        stopped = self.drain.stopService()
        self.assertFalse(idle_transport.connected)
        self.assertTrue(busy_transport.connected)
        self.assertNoResult(stopped)
        [request] = self.resource.requests
        request.write(b"done")
        request.finish()
        self.successResultOf(stopped)
        answer = busy_transport.value()
        self.assertIn(b"Connection: close", answer)
        self.assertIn(b"done", answer)
        self.assertFalse(busy_transport.connected)

    def test_started_answer_closes_when_done(self):
        """An answer already started as keep-alive still closes its
        connection once it ends."""
        channel, transport = _connect(self.site)
        channel.dataReceived(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        [request] = self.resource.requests
        request.write(b"part")
        stopped = self.drain.stopService()
        self.assertTrue(transport.connected)
        request.finish()
        self.assertFalse(transport.connected)
        self.successResultOf(stopped)

    def test_timeout_cuts_what_is_left(self):
        """A request still running at shutdown_timeout has its connection
        cut, and the drain ends then."""
        channel, transport = _connect(self.site)
        channel.dataReceived(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        stopped = self.drain.stopService()
        self.clock.advance(9.9)
        self.assertNoResult(stopped)
        self.clock.advance(0.1)
        self.assertFalse(transport.connected)
        self.successResultOf(stopped)


class _Recorded(Service):
    def __init__(self, name, events, result=None):
        self.name, self.events, self.result = name, events, result

    def stopService(self):
        self.events.append(self.name)
        return self.result


class OrderedShutdownTests(unittest.SynchronousTestCase):
    def test_stops_one_after_the_other_last_first(self):
        """Children stop last started first, each only once the previous
        one has finished stopping."""
        events, slow = [], Deferred()
        root = OrderedShutdown()
        _Recorded("storage", events).setServiceParent(root)
        _Recorded("drain", events, slow).setServiceParent(root)
        _Recorded("ports", events).setServiceParent(root)
        root.running = True
        stopped = root.stopService()
        self.assertEqual(events, ["ports", "drain"])
        slow.callback(None)
        self.assertEqual(events, ["ports", "drain", "storage"])
        self.successResultOf(stopped)


def _run_to_exit(workdir, *args, timeout=60):
    os.makedirs(workdir, exist_ok=True)
    return subprocess.run(twistd_command(*args), cwd=workdir, capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, PYTHONPATH=ROOT))


class StartFailureTests(unittest.TestCase):
    """A real twistd that cannot start: exit status 1, one line on stderr."""

    def assertOneLineFailure(self, result, line):
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertEqual(result.stderr, f"marconi: {line}\n")
        self.assertIn(line, result.stdout)  # the log (stdout with -n)
        self.assertNotIn("Traceback", result.stdout)

    def test_port_in_use(self):
        """An HTTP port already in use."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            where = f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"
            result = _run_to_exit(self.mktemp(), "--http", where)
        self.assertOneLineFailure(result, f"cannot listen on {where}: address already in use")

    def test_mongodb_unreachable(self):
        """MongoDB not answering at start (a closed port); the password in
        the URI is not shown."""
        workdir = self.mktemp()
        os.makedirs(workdir)
        with open(os.path.join(workdir, "m.conf"), "w") as f:
            f.write("[drivers:storage:mongodb]\nconnect_timeout = 0.2\n"
                    "operation_timeout = 0.2\n")
        uri = f"mongodb://queue:secret@127.0.0.1:{free_port()}/marconi"
        result = _run_to_exit(workdir, "--config", "m.conf", "--http", "tcp:0",
                              "--storage", uri)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        [line] = result.stderr.splitlines()
        self.assertTrue(line.startswith("marconi: cannot open storage "
                                        "mongodb://queue:***@127.0.0.1:"), line)
        self.assertNotIn("secret", result.stdout + result.stderr)

    def test_sqlite_path_unusable(self):
        """A sqlite path that cannot be opened as a database (a directory)."""
        workdir = self.mktemp()
        os.makedirs(os.path.join(workdir, "adir"))
        result = _run_to_exit(workdir, "--http", "tcp:0", "--storage", "sqlite:adir")
        self.assertOneLineFailure(
            result, "cannot open storage sqlite:adir: cannot open adir: unable to open "
                    "database file")


def _post(port, results, index, sent):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/v1/queues/slow/messages",
                     json.dumps([{"ttl": 60, "body": index}]),
                     {"Client-ID": CLIENT_ID, "Content-Type": "application/json"})
        sent[index].set()
        response = conn.getresponse()
        results[index] = (response.status, response.read())
    except OSError as e:
        results[index] = e
    finally:
        conn.close()


def _refuses(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def _wait(predicate, what):
    for _ in range(3000):
        if predicate():
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"never: {what}")


class DaemonSignalTests(unittest.TestCase):
    """SIGTERM and SIGHUP sent to a real twistd."""

    def test_sigterm_lets_requests_in_flight_finish(self):
        """Posts waiting for the database lock when SIGTERM comes are all
        answered 201 once the lock is free (the port stops accepting first),
        and the daemon then exits 0."""
        workdir = self.mktemp()
        daemon = Daemon(workdir, "--storage", "sqlite:queues.db").start()
        self.addCleanup(daemon.stop, signal.SIGKILL)
        conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
        conn.request("PUT", "/v1/queues/slow", headers={"Client-ID": CLIENT_ID})
        self.assertEqual(conn.getresponse().status, 201)
        conn.close()
        # Another process holds the write lock: each post waits in the
        # driver's queue, retrying (busy_timeout 5 s).
        lock = sqlite3.connect(os.path.join(workdir, "queues.db"), isolation_level=None)
        self.addCleanup(lock.close)
        lock.execute("BEGIN IMMEDIATE")
        count = 8
        results = [None] * count
        sent = [threading.Event() for _ in range(count)]
        threads = [threading.Thread(target=_post, args=(daemon.port, results, i, sent))
                   for i in range(count)]
        for thread in threads:
            thread.start()
        _wait(lambda: all(e.is_set() for e in sent) and _all_read(daemon.port, count),
              "the daemon read every post")
        daemon.process.send_signal(signal.SIGTERM)
        _wait(lambda: _refuses(daemon.port), "the port closed")
        lock.execute("ROLLBACK")
        for thread in threads:
            thread.join(30)
        self.assertEqual([r[0] for r in results], [201] * count, results)
        self.assertEqual(daemon.process.wait(30), 0, daemon.log())

    def test_sighup_reopens_log_files(self):
        """After the log and the access log are moved away, SIGHUP makes the
        daemon write new ones (with the new lines), and it keeps serving."""
        workdir = self.mktemp()
        os.makedirs(workdir)
        with open(os.path.join(workdir, "m.conf"), "w") as f:
            f.write("[drivers]\naccess_log = access.log\n")
        daemon = Daemon(workdir, "--config", "m.conf",
                        twistd_args=("--logfile", "marconi.log")).start()
        self.addCleanup(daemon.stop)
        path = lambda name: os.path.join(workdir, name)  # noqa: E731
        self.assertEqual(_get(daemon.port, "/v1/health?before"), 204)
        _wait(lambda: os.path.exists(path("access.log"))
              and b"before" in open(path("access.log"), "rb").read(), "access logged")
        os.rename(path("access.log"), path("access.log.1"))
        os.rename(path("marconi.log"), path("marconi.log.1"))
        daemon.process.send_signal(signal.SIGHUP)
        _wait(lambda: os.path.exists(path("marconi.log")), "a new log file")
        self.assertEqual(_get(daemon.port, "/v1/health?after"), 204)
        _wait(lambda: os.path.exists(path("access.log"))
              and b"after" in open(path("access.log"), "rb").read(), "new access log")
        self.assertNotIn(b"after", open(path("access.log.1"), "rb").read())
        self.assertIn(b"log files reopened", open(path("marconi.log"), "rb").read())
        self.assertIsNone(daemon.process.poll())


def _get(port, target):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", target)
        return conn.getresponse().status
    finally:
        conn.close()


def _all_read(port, count):
    """True once the daemon has ``count`` connections on ``port`` and has
    read everything sent on them (loopback delivers a send at once)."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    queues = [int(line.split()[0]) for line in out.splitlines()]
    return len(queues) >= count and not any(queues)


def _reserved_ids(db_path):
    """Ids of the messages holding a live claim (a reservation)."""
    with sqlite3.connect(db_path) as db:
        return [i for i, in db.execute(
            "SELECT id FROM messages WHERE claim_expires > strftime('%s','now')")]


class LineReservationTests(unittest.TestCase):
    """Jobs reserved over the line endpoint of a real twistd when it stops."""

    def start(self, workdir, line_port, *args):
        daemon = Daemon(workdir, "--storage", "sqlite:q.db",
                        "--line", f"tcp:{line_port}:interface=127.0.0.1", *args).start()
        wait_for_port(line_port, daemon.process)
        self.addCleanup(daemon.stop, signal.SIGKILL)
        return daemon

    def reserve_one(self, line_port, first=b""):
        client = socket.create_connection(("127.0.0.1", line_port), timeout=10)
        self.addCleanup(client.close)
        client.sendall(first + b"put 0 0 600 5\r\nhello\r\nreserve\r\n")
        answer = b""
        while not answer.endswith(b"hello\r\n"):
            answer += client.recv(4096)
        job_id = int(answer.split(b"\r\n")[-3].split()[1])
        return client, job_id

    def reserve_again(self, line_port, first=b""):
        """The answer to a reserve (5 s at most) on a new connection."""
        client = socket.create_connection(("127.0.0.1", line_port), timeout=10)
        self.addCleanup(client.close)
        client.sendall(first + b"reserve-with-timeout 5\r\n")
        skip = 1 if first else 0  # the answer to ``first``
        answer = b""
        while answer.count(b"\r\n") <= skip:
            answer += client.recv(4096)
        return answer.split(b"\r\n")[skip]

    def test_graceful_stop_gives_back(self):
        """SIGTERM gives back the reservations of open line connections
        before the storage closes."""
        workdir, line_port = self.mktemp(), free_port()
        daemon = self.start(workdir, line_port)
        _, job_id = self.reserve_one(line_port)
        db = os.path.join(workdir, "q.db")
        self.assertEqual(_reserved_ids(db), [job_id])
        self.assertEqual(daemon.stop(), 0)
        self.assertEqual(_reserved_ids(db), [])

    def test_restart_after_kill_gives_back(self):
        """After kill -9, the next start gives back what the killed daemon's
        line clients held: the job can be reserved again at once."""
        workdir, line_port = self.mktemp(), free_port()
        daemon = self.start(workdir, line_port)
        _, job_id = self.reserve_one(line_port)
        daemon.stop(signal.SIGKILL)
        self.assertEqual(_reserved_ids(os.path.join(workdir, "q.db")), [job_id])
        self.start(workdir, line_port)
        answer = self.reserve_again(line_port)
        self.assertTrue(answer.startswith(b"RESERVED %d " % job_id), answer)

    def test_restart_after_kill_gives_back_in_the_token_project(self):
        """A reservation made by a connection authenticated into its
        token's project is given back in that project after a kill -9."""
        workdir, line_port = os.path.abspath(self.mktemp()), free_port()
        os.makedirs(workdir)
        conf = os.path.join(workdir, "marconi.conf")
        tokens = write_token_file(os.path.join(workdir, "tokens"),
                                  {"shop-token": ("shop", "")})
        with open(conf, "w", encoding="utf-8") as f:
            f.write(f"[auth]\nstrategy = token\ntoken_file = {tokens}\n\n"
                    "[drivers:transport:line]\nrequire_auth = true\n")
        auth = b"auth shop-token\r\n"
        daemon = self.start(workdir, line_port, "--config", conf)
        _, job_id = self.reserve_one(line_port, auth)
        daemon.stop(signal.SIGKILL)
        self.assertEqual(_reserved_ids(os.path.join(workdir, "q.db")), [job_id])
        self.start(workdir, line_port, "--config", conf)
        answer = self.reserve_again(line_port, auth)
        self.assertTrue(answer.startswith(b"RESERVED %d " % job_id), answer)


class LedgerTests(unittest.SynchronousTestCase):
    """The line endpoint's reservations file."""

    def test_records_survive_and_one_owner(self):
        """Recorded reservations are read back by the next owner; a line cut
        short by a crash is skipped; a second opener is refused while the
        first holds the file."""
        from marconi_tx.transport.line.ledger import LedgerInUse, ReservationLedger

        path = self.mktemp()
        ledger = ReservationLedger(path)
        ledger.add(7, "a" * 24, None, held=lambda: [])
        self.assertRaises(LedgerInUse, ReservationLedger, path)
        with open(path, "ab") as f:
            f.write(b"8 bbb")  # no newline: the crash came mid-write
        ledger.close()
        self.assertEqual(ReservationLedger(path).recorded(), [(7, "a" * 24, None)])

    def test_projects_recorded(self):
        """A reservation made in another project than the endpoint's (an
        authenticated connection) is read back with its project, any text
        (the global namespace too); lines without one, as files written
        before projects were recorded, belong to the endpoint's project."""
        from marconi_tx.transport.line.ledger import ReservationLedger

        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(b"1 " + b"a" * 24 + b"\n")  # an older file's line
        ledger = ReservationLedger(path, "line")
        for job_id, project in ((2, "line"), (3, "shop floor/é"), (4, None), (5, "*")):
            ledger.add(job_id, "b" * 24, project, held=lambda: [])
        ledger.close()
        self.assertEqual(ReservationLedger(path, "line").recorded(),
                         [(1, "a" * 24, "line"), (2, "b" * 24, "line"),
                          (3, "b" * 24, "shop floor/é"), (4, "b" * 24, None),
                          (5, "b" * 24, "*")])

    def test_rewritten_with_what_is_held(self):
        """Once most lines are stale, the file keeps only what is held."""
        from marconi_tx.transport.line import ledger as module

        self.patch(module, "COMPACT_MINIMUM", 4)
        ledger = module.ReservationLedger(self.mktemp())
        self.addCleanup(ledger.close)
        for job_id in range(1, 5):
            ledger.add(job_id, "c" * 24, "p", held=lambda: [(4, "c" * 24, "p")])
        self.assertEqual(ledger.recorded(), [(4, "c" * 24, "p")])
