"""A ``reserve`` with nobody waiting for its tubes takes a ready job with
one storage call (the waiting room is entered only when there is none);
what it took while the connection went away goes back.

Group commit is on, as the daemon runs: a write is committed (and answered)
when the Clock runs the turn's flush (``advance(0)``), so the window between
a reserve and its answer is open for the tests to act in.
"""

from twisted.internet import task
from twisted.trial import unittest

from marconi_tx import config
from marconi_tx.storage.sqlite.driver import SqliteDriver
from marconi_tx.transport.line import make_factory
from tests.test_line_protocol import START, Connection, parse_job


class ReserveAtOnceTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(START)
        self.driver = SqliteDriver(":memory:", self.clock, group_commit=True)
        self.driver.open_now()
        self.addCleanup(self.driver.close)
        self.factory = make_factory(self.driver, config.load(), self.clock)

    def connect(self):
        connection = Connection(self.factory)
        self.addCleanup(lambda: connection.protocol._closed or connection.close())
        return connection

    def put(self, connection, body=b"x"):
        connection.send(b"put 1024 0 60 %d\r\n%s\r\n" % (len(body), body))
        self.clock.advance(0)
        answer = connection.take()
        self.assertTrue(answer.startswith(b"INSERTED "), answer)
        return int(answer.split()[1])

    def test_ready_job_reserved_without_waiting(self):
        """A reserve with a job ready is answered by the turn's commit, and
        leaves nobody in the waiting room."""
        c = self.connect()
        job_id = self.put(c)
        self.assertEqual(c.ask(b"reserve"), b"")
        self.clock.advance(0)
        self.assertEqual(parse_job(c.take()), (job_id, b"x"))
        self.assertEqual(len(self.factory.room), 0)

    def test_nothing_ready_waits_in_the_room(self):
        """With no job ready the reserve waits, and a later put reaches it."""
        c = self.connect()
        self.assertEqual(c.ask(b"reserve"), b"")
        self.clock.advance(0)
        self.assertEqual(len(self.factory.room), 1)
        job_id = self.put(self.connect())
        self.clock.advance(0)
        self.assertEqual(parse_job(c.take())[0], job_id)

    def test_connection_lost_meanwhile_gives_the_job_back(self):
        """A connection closed before its reserve is committed takes no job
        away: the job is ready again for the next reserve."""
        gone, other = self.connect(), self.connect()
        job_id = self.put(other)
        gone.ask(b"reserve")
        gone.close()
        self.clock.advance(0)
        self.assertEqual(gone.take(), b"")
        self.assertEqual(other.ask(b"reserve"), b"")
        self.clock.advance(0)
        self.assertEqual(parse_job(other.take())[0], job_id)

    def test_connection_lost_meanwhile_leaves_no_waiter(self):
        """A connection closed before its reserve found nothing ready does
        not enter the waiting room afterwards."""
        gone = self.connect()
        gone.ask(b"reserve")
        gone.close()
        self.clock.advance(0)
        self.assertEqual(len(self.factory.room), 0)
        self.assertEqual(gone.take(), b"")

    def test_half_close_meanwhile_times_out(self):
        """A client that half-closes while its reserve is in flight gets
        TIMED_OUT (as from a waiting reserve), and the job stays ready."""
        c, other = self.connect(), self.connect()
        job_id = self.put(other)
        c.ask(b"reserve")
        c.protocol.readConnectionLost()
        self.clock.advance(0)
        self.assertEqual(c.take(), b"TIMED_OUT\r\n")
        self.assertEqual(other.ask(b"reserve"), b"")
        self.clock.advance(0)
        self.assertEqual(parse_job(other.take())[0], job_id)

    def test_waiter_keeps_its_turn(self):
        """While a connection waits for a tube, a later reserve on it waits
        behind, even when it arrives in the turn the job is put."""
        first, second, producer = self.connect(), self.connect(), self.connect()
        self.assertEqual(first.ask(b"reserve"), b"")
        self.clock.advance(0)
        producer.send(b"put 1024 0 60 1\r\nx\r\n")
        second.ask(b"reserve")
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertEqual(parse_job(first.take())[1], b"x")
        self.assertEqual(second.take(), b"")
