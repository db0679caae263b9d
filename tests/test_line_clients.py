"""Real beanstalkd clients (greenstalk, pystalk) against a real listening
line endpoint: in this process on a loopback port (the clients block, so they
run in threads), and once through ``twistd marconi --line``."""

import os

import greenstalk
import pystalk
from twisted.internet import reactor, task, threads
from twisted.trial import unittest

from marconi_tx import config
from marconi_tx.deferreds import returns_deferred
from marconi_tx.storage.sqlite.driver import SqliteDriver
from marconi_tx.transport.line import make_factory
from tests.daemon import Daemon, free_port, wait_for_port


class ListeningEndpoint:
    """The factory over a sqlite file, listening on 127.0.0.1:<free port>."""

    def __init__(self, testcase):
        self.driver = SqliteDriver(testcase.mktemp(), reactor)
        self.driver.open_now()
        testcase.addCleanup(self.driver.close)
        self.factory = make_factory(self.driver, config.load(), reactor)
        self.port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        testcase.addCleanup(self.stop)
        self.address = ("127.0.0.1", self.port.getHost().port)

    def stop(self):
        """Stop listening and close the server side of every connection,
        waiting until each gave its reservations back (before the driver
        closes)."""
        self.port.stopListening()
        for protocol in list(self.factory.connections):
            protocol.transport.loseConnection()
        return _wait_until(lambda: not self.factory.connections)


class GreenstalkTests(unittest.TestCase):
    """greenstalk 2 works unchanged against the endpoint."""

    def setUp(self):
        self.endpoint = ListeningEndpoint(self)

    def client(self, **kwargs):
        client = greenstalk.Client(self.endpoint.address, **kwargs)
        self.addCleanup(client.close)
        return client

    def test_producer_consumer(self):
        """put, reserve in priority order, delete, and the error classes for
        TIMED_OUT, NOT_FOUND and NOT_IGNORED."""
        def scenario():
            c = self.client(use="work", watch="work")
            low = c.put("low", priority=10)
            high = c.put("high", priority=1)
            first = c.reserve(timeout=1)
            second = c.reserve(timeout=1)
            c.delete(first)
            c.delete(second)
            with self.assertRaises(greenstalk.TimedOutError):
                c.reserve(timeout=0)
            with self.assertRaises(greenstalk.NotFoundError):
                c.delete(first)
            with self.assertRaises(greenstalk.NotIgnoredError):
                c.ignore("work")
            return (first.id, first.body, second.id, second.body), (high, "high", low, "low")
        return threads.deferToThread(scenario).addCallback(lambda r: self.assertEqual(*r))

    def test_job_lifecycle_and_stats(self):
        """release with delay, bury, kick, peeks, touch and the three stats
        parse as greenstalk expects."""
        def scenario():
            c = self.client()
            job_id = c.put("j", ttr=30)
            job = c.reserve()
            c.touch(job)
            c.release(job, priority=5, delay=60)
            delayed = c.peek_delayed()
            c.kick(1)
            job = c.reserve()
            c.bury(job)
            buried = c.peek_buried()
            c.kick_job(job)
            ready = c.peek_ready()
            stats_job = c.stats_job(job_id)
            stats_tube = c.stats_tube("default")
            stats = c.stats()
            c.pause_tube("default", 0)
            return (delayed.id, buried.id, ready.id, stats_job["state"], stats_job["releases"],
                    stats_job["buries"], stats_job["kicks"], stats_tube["current-jobs-ready"],
                    stats["cmd-put"], c.tubes(), c.using(), c.watching()), job_id
        d = threads.deferToThread(scenario)

        def check(result):
            values, job_id = result
            self.assertEqual(values, (job_id, job_id, job_id, "ready", 1, 1, 2, 1, 1,
                                      ["default"], "default", ["default"]))
        return d.addCallback(check)

    def test_binary_body(self):
        """A non-UTF-8 body round-trips through a client without encoding."""
        body = bytes(range(256)) * 3

        def scenario():
            c = self.client(encoding=None)
            c.put(body)
            return c.reserve(timeout=1).body
        return threads.deferToThread(scenario).addCallback(self.assertEqual, body)

    async def test_blocking_reserve_is_woken(self):
        """A blocked reserve in one client returns when another client puts
        (both blocking, in two threads)."""
        # Clients connect in threads: their constructors block on answers.
        waiting = threads.deferToThread(lambda: self.client(watch="wake").reserve(10))
        await _wait_until(lambda: len(self.endpoint.factory.room) == 1)
        await threads.deferToThread(lambda: self.client(use="wake").put("wake up"))
        job = await waiting
        self.assertEqual(job.body, "wake up")


class PystalkTests(unittest.TestCase):
    """pystalk (single-recv reads, PyYAML parsing) against the endpoint."""

    def setUp(self):
        self.endpoint = ListeningEndpoint(self)

    def test_pystalk_session(self):
        """put_job_into, watchlist, reserve_iter, bury/kick, release, stats
        and list_tubes work with pystalk's reads."""
        def scenario():
            c = pystalk.BeanstalkClient(*self.endpoint.address)
            try:
                # pystalk answers a put with (status, id).
                ids = [c.put_job_into("py", "job %d" % i, pri=i)[1] for i in range(3)]
                c.watchlist = ["py"]
                first = c.reserve_job(1)
                c.bury_job(first.job_id)
                c.use("py")  # put_job_into went back to "default"; kick acts on "py"
                c.kick_jobs(10)
                c.release_job(c.reserve_job(1).job_id, pri=100)
                seen = [job.job_data for job in c.reserve_iter()]
                for job_id in ids:
                    c.delete_job(job_id)
                tube = c.stats_tube("py")
                stats = c.stats()
                return (ids, first.job_data, seen, tube["name"], tube["total-jobs"],
                        stats["cmd-bury"], stats["version"], c.list_tubes())
            finally:
                c.close()
        d = threads.deferToThread(scenario)

        def check(result):
            ids, first, seen, name, total, buries, version, tubes = result
            self.assertEqual(len(set(ids)), 3)
            self.assertEqual(first, b"job 0")
            self.assertEqual(seen, [b"job 2", b"job 1", b"job 0"])
            self.assertEqual((name, total, buries, version), ("py", 3, 1, "1.12"))
            self.assertEqual(tubes, ["default", "py"])
        return d.addCallback(check)


class TwistdLineTests(unittest.TestCase):
    """``twistd marconi --line`` serves the endpoint beside HTTP."""

    def test_twistd_serves_line_endpoint(self):
        """The daemon started with --line answers greenstalk, and its HTTP
        API lists the job put over TCP."""
        workdir = os.path.abspath(self.mktemp())
        line_port = free_port()
        daemon = Daemon(workdir, "--storage", f"sqlite:{workdir}/db.sqlite",
                        "--line", f"tcp:{line_port}:interface=127.0.0.1").start()
        self.addCleanup(daemon.stop)

        def scenario():
            import json
            import urllib.request

            wait_for_port(line_port, daemon.process)
            with greenstalk.Client(("127.0.0.1", line_port), use="e2e") as c:
                job_id = c.put("over tcp")
            request = urllib.request.Request(
                f"{daemon.url}/v1/queues/e2e/messages/{job_id}",
                headers={"Client-ID": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"})
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.loads(answer.read())["body"]
        return threads.deferToThread(scenario).addCallback(self.assertEqual, "over tcp")


@returns_deferred
async def _wait_until(predicate, timeout=10.0):
    """A Deferred firing once ``predicate()`` holds (checked on the reactor
    every 10 ms)."""
    elapsed = 0.0
    while not predicate():
        if elapsed > timeout:
            raise AssertionError("condition not reached")
        await task.deferLater(reactor, 0.01, lambda: None)
        elapsed += 0.01
