"""The HTTP API v1 over the sqlite driver (file and in-memory)."""

import signal

from twisted.trial import unittest

from marconi_tx.storage.sqlite.driver import SqliteDriver
from tests.http_v1_tests import HttpV1Mixin


class HttpV1OnSqliteFileTests(HttpV1Mixin, unittest.TestCase):
    waits = False  # every answer is there before the request returns

    def make_driver(self, clock):
        return SqliteDriver(self.mktemp() + ".db", clock)


class HttpV1WithoutFastPathTests(HttpV1OnSqliteFileTests):
    """The same answers with the site's fast path off: twisted.web parses
    every head and every header goes through its public calls."""

    fast = False


class HttpV1OnSqliteGroupCommitTests(HttpV1Mixin, unittest.TestCase):
    """As the daemon runs it: writes of one reactor turn commit together
    (the turn ends when the client has run the clock's calls due now)."""

    waits = False

    def make_driver(self, clock):
        return SqliteDriver(self.mktemp() + ".db", clock, group_commit=True)


class HttpV1OnSqliteMemoryTests(HttpV1Mixin, unittest.TestCase):
    waits = False

    def make_driver(self, clock):
        return SqliteDriver(":memory:", clock)


class HttpV1OnMongoTests(HttpV1Mixin, unittest.TestCase):
    """The same API answers over MongoDB (a real MongoDB-wire server; it
    answers on the real reactor: ``waits``)."""

    def make_driver(self, clock):
        from marconi_tx import config
        from marconi_tx.storage.mongodb.driver import MongoDriver
        from tests.mongodb_server import fresh_database_uri

        return MongoDriver(fresh_database_uri(self), clock, config.load().mongodb)


class HealthDuringOutageTests(unittest.TestCase):
    """GET /v1/health while MongoDB is down answers within [drivers]
    health_timeout, not the storage's operation_timeout (10 s)."""

    async def test_health_bounded_by_health_timeout(self):
        """While the MongoDB-wire server is up, 204; once it stops answering
        (SIGSTOP), the probe gets 503 with Retry-After when the site's clock
        passes health_timeout, and not before, although the driver's own
        operation timeout (on a clock that never moves) has not elapsed;
        with the server killed, 503 too."""
        from twisted.internet import reactor, task
        from twisted.internet.testing import StringTransport

        from marconi_tx import config
        from marconi_tx.storage.mongodb.driver import MongoDriver
        from marconi_tx.transport.http.app import build_resource
        from marconi_tx.transport.http.site import make_site
        from tests.http_support import new_clock
        from tests.mongodb_server import dedicated_server

        server = dedicated_server(self)
        settings = config.load(overrides=[("drivers", "health_timeout", "1.5")])
        driver = MongoDriver(server.uri + "/health", new_clock(), settings.mongodb)
        await driver.open()
        self.addCleanup(driver.close)
        site = make_site(build_resource(driver, settings), max_body=1000)
        site.timeOut = None
        site.reactor = task.Clock()

        def ask():
            channel = site.buildProtocol(None)
            transport = StringTransport()
            channel.makeConnection(transport)
            channel.dataReceived(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            return transport

        up = ask()
        while not up.value():  # a real round trip to the server
            await task.deferLater(reactor, 0.01, lambda: None)
        self.assertTrue(up.value().startswith(b"HTTP/1.1 204 "), up.value()[:80])

        # A server that answers nothing (hung, or a network partition):
        # without the bound the probe would wait for the driver's own timeout.
        server.process.send_signal(signal.SIGSTOP)
        self.addCleanup(server.process.send_signal, signal.SIGCONT)
        while _state(server.process.pid) != "T":  # the signal is delivered later
            await task.deferLater(reactor, 0.01, lambda: None)
        down = ask()
        await task.deferLater(reactor, 0.2, lambda: None)
        self.assertEqual(down.value(), b"")
        site.reactor.advance(1.5)
        answer = down.value()
        self.assertTrue(answer.startswith(b"HTTP/1.1 503 "), answer[:80])
        self.assertIn(b"Retry-After: 30\r\n", answer)

        server.process.send_signal(signal.SIGCONT)
        server.stop()  # killed: the connection is refused
        down = ask()
        await task.deferLater(reactor, 0.2, lambda: None)
        site.reactor.advance(1.5)
        self.assertTrue(down.value().startswith(b"HTTP/1.1 503 "), down.value()[:80])


def _state(pid):
    """The process state letter of ``pid`` (T: stopped), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


class MongoCounterReplyTests(unittest.TestCase):
    """Issue 19.8: a POST under kill -9 load answered 500 (TypeError in
    batches.reserve) when the counter's reply held no document."""

    async def test_post_without_counter_document_is_503(self):
        """While the counter's findAndModify replies carry no document (what
        txmongo gives for an unacknowledged write: here a real server under
        write concern w=0), a POST is 503 with Retry-After and a JSON title,
        never a 500, and stores nothing; once replies are whole again posts
        succeed, with ids never used before."""
        from pymongo.write_concern import WriteConcern

        from marconi_tx import config
        from marconi_tx.storage.mongodb.driver import MongoDriver
        from tests.http_support import ApiClient, new_clock
        from tests.mongodb_server import fresh_database_uri

        driver = MongoDriver(fresh_database_uri(self), new_clock(), config.load().mongodb)
        await driver.open()
        self.addCleanup(driver.close)
        api = ApiClient(driver, waits=True)
        self.assertEqual((await api.put("/v1/queues/jobs")).code, 201)
        [before] = await api.post_messages("jobs", 1)
        counters = driver.db.counters
        driver.db.counters = counters.with_options(write_concern=WriteConcern(w=0))
        answer = await api.post("/v1/queues/jobs/messages", [{"ttl": 60, "body": 1}])
        self.assertEqual(answer.code, 503)
        self.assertEqual(answer.headers["retry-after"], "30")
        self.assertEqual(answer.json["title"], "Service temporarily unavailable")
        stats = await api.get("/v1/queues/jobs/stats")
        self.assertEqual(stats.json["messages"]["total"], 1)
        driver.db.counters = counters
        [after] = await api.post_messages("jobs", 1)
        self.assertGreater(int(after), int(before) + 1)
