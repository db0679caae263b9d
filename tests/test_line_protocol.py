"""The line protocol over a real sqlite driver, driven through
``StringTransport`` (and ``iosim``) with a ``task.Clock``.

Expected answers for bad input were taken from a real beanstalkd 1.12.
"""

import re

from twisted.internet import task
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.test import iosim
from twisted.trial import unittest

from marconi_tx import config
from marconi_tx.storage.sqlite.driver import SqliteDriver
from marconi_tx.transport.line import make_factory

START = 1_700_000_000

#: The keys of ``stats`` in beanstalkd 1.12's order.
STATS_KEYS = (
    "current-jobs-urgent current-jobs-ready current-jobs-reserved current-jobs-delayed "
    "current-jobs-buried cmd-put cmd-peek cmd-peek-ready cmd-peek-delayed cmd-peek-buried "
    "cmd-reserve cmd-reserve-with-timeout cmd-delete cmd-release cmd-use cmd-watch "
    "cmd-ignore cmd-bury cmd-kick cmd-touch cmd-stats cmd-stats-job cmd-stats-tube "
    "cmd-list-tubes cmd-list-tube-used cmd-list-tubes-watched cmd-pause-tube job-timeouts "
    "total-jobs max-job-size current-tubes current-connections current-producers "
    "current-workers current-waiting total-connections pid version rusage-utime "
    "rusage-stime uptime binlog-oldest-index binlog-current-index binlog-records-migrated "
    "binlog-records-written binlog-max-size draining id hostname os platform").split()


class RecordingTransport(StringTransport):
    """A StringTransport that remembers each write separately."""

    def __init__(self):
        super().__init__()
        self.writes = []

    def write(self, data):
        self.writes.append(data)
        super().write(data)


class Connection:
    """One client connection to the factory under test."""

    def __init__(self, factory):
        self.protocol = factory.buildProtocol(None)
        self.transport = RecordingTransport()
        self.protocol.makeConnection(self.transport)

    def send(self, data):
        """Feed ``data``; the bytes written in answer since the last call."""
        self.protocol.dataReceived(data)
        return self.take()

    def take(self):
        out = self.transport.value()
        self.transport.clear()
        return out

    def ask(self, *lines):
        return self.send(b"".join(line + b"\r\n" for line in lines))

    def put(self, body=b"x", priority=1024, delay=0, ttr=60):
        answer = self.send(b"put %d %d %d %d\r\n%s\r\n" % (priority, delay, ttr, len(body), body))
        match = re.fullmatch(rb"INSERTED (\d+)\r\n", answer)
        assert match, answer
        return int(match.group(1))

    def reserve(self, command=b"reserve"):
        """(id, body) of a RESERVED answer to ``command``."""
        return parse_job(self.ask(command), b"RESERVED")

    def close(self):
        self.protocol.connectionLost(None)


def parse_job(answer, word=b"RESERVED"):
    match = re.fullmatch(rb"%s (\d+) (\d+)\r\n(.*)\r\n" % word, answer, re.S)
    assert match, answer
    job_id, size, body = int(match.group(1)), int(match.group(2)), match.group(3)
    assert len(body) == size
    return job_id, body


def parse_yaml(answer):
    """The mapping (or list) of an ``OK <bytes>`` answer; checks the size."""
    match = re.fullmatch(rb"OK (\d+)\r\n(.*)\r\n", answer, re.S)
    assert match, answer
    data = match.group(2)
    assert len(data) == int(match.group(1))
    text = data.decode()
    assert text.startswith("---\n"), text
    lines = text[4:].splitlines()
    if lines and lines[0].startswith("- "):
        return [line[2:] for line in lines]
    return dict(line.split(": ", 1) for line in lines)


class LineTestCase(unittest.TestCase):
    """A factory over a fresh sqlite driver (``make_driver``) and a Clock."""

    settings = ()

    def make_driver(self):
        """The driver under test, on ``self.clock``: sqlite in memory."""
        return SqliteDriver(":memory:", self.clock)

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(START)
        self.driver = self.make_driver()
        self.driver.open_now()
        self.addCleanup(self.driver.close)
        self.config = config.load(overrides=[("drivers:transport:line", name, str(value))
                                             for name, value in self.settings])
        self.factory = make_factory(self.driver, self.config, self.clock)
        self.c = self.connect()

    def connect(self):
        connection = Connection(self.factory)
        self.addCleanup(lambda: connection.protocol._closed or connection.close())
        return connection


class CommandTests(LineTestCase):
    """Answers to well-formed commands."""

    def test_put_reserve_delete(self):
        """A put job is reserved with its exact bytes and deleted."""
        job_id = self.c.put(b"hello")
        self.assertEqual(self.c.reserve(), (job_id, b"hello"))
        self.assertEqual(self.c.ask(b"delete %d" % job_id), b"DELETED\r\n")
        self.assertEqual(self.c.ask(b"delete %d" % job_id), b"NOT_FOUND\r\n")

    def test_binary_bodies_round_trip(self):
        """Every byte value, CRLFs inside the body and an empty body come
        back unchanged."""
        bodies = [bytes(range(256)), b"a\r\nb\r\n", b"", "é€".encode()]
        ids = [self.c.put(body) for body in bodies]
        for job_id, body in zip(ids, bodies):
            self.assertEqual(parse_job(self.c.ask(b"peek %d" % job_id), b"FOUND"), (job_id, body))

    def test_priority_then_fifo(self):
        """reserve takes the lowest priority, oldest first within one."""
        a = self.c.put(priority=10)
        b = self.c.put(priority=0)
        c = self.c.put(priority=10)
        self.assertEqual([self.c.reserve()[0] for _ in range(3)], [b, a, c])

    def test_ttr_zero_becomes_one(self):
        """A ttr of 0 is stored as 1, as beanstalkd does."""
        job_id = self.c.put(ttr=0)
        self.assertEqual(parse_yaml(self.c.ask(b"stats-job %d" % job_id))["ttr"], "1")

    def test_delay(self):
        """A delayed job is delayed until its delay ends."""
        job_id = self.c.put(delay=5)
        self.assertEqual(self.c.ask(b"reserve-with-timeout 0"), b"TIMED_OUT\r\n")
        self.assertEqual(parse_job(self.c.ask(b"peek-delayed"), b"FOUND")[0], job_id)
        self.clock.advance(5)
        self.assertEqual(self.c.reserve(b"reserve-with-timeout 0")[0], job_id)

    def test_delay_does_not_shorten_life(self):
        """A delayed job lives message_ttl seconds after its delay: its
        message ttl is delay + message_ttl, which stays storable even with the
        largest settable message_ttl and delay."""
        job_id = self.c.put(delay=100)
        message = self.successResultOf(self.driver.messages.get(None, "default", str(job_id)))
        self.assertEqual(message.ttl, 100 + self.config.line.message_ttl)
        self.settings = (("message_ttl", 2**32),)
        self.setUp()
        job_id = self.c.put(delay=2**32 - 1)
        self.assertEqual(parse_yaml(self.c.ask(b"stats-job %d" % job_id))["state"], "delayed")

    def test_release_bury_kick_touch(self):
        """release, bury, kick and touch move a job through its states and
        the counters of stats-job follow."""
        job_id = self.c.put(priority=3, ttr=10)
        self.c.reserve()
        self.assertEqual(self.c.ask(b"release %d 7 20" % job_id), b"RELEASED\r\n")
        self.assertEqual(parse_yaml(self.c.ask(b"stats-job %d" % job_id))["state"], "delayed")
        self.assertEqual(self.c.ask(b"kick 10"), b"KICKED 1\r\n")
        self.c.reserve()
        self.clock.advance(8)
        self.assertEqual(self.c.ask(b"touch %d" % job_id), b"TOUCHED\r\n")
        self.clock.advance(8)
        self.assertEqual(self.c.ask(b"bury %d 9" % job_id), b"BURIED\r\n")
        self.assertEqual(parse_job(self.c.ask(b"peek-buried"), b"FOUND")[0], job_id)
        self.assertEqual(self.c.ask(b"kick-job %d" % job_id), b"KICKED\r\n")
        self.assertEqual(self.c.ask(b"kick-job %d" % job_id), b"NOT_FOUND\r\n")
        stats = parse_yaml(self.c.ask(b"stats-job %d" % job_id))
        self.assertEqual({k: stats[k] for k in ("state", "pri", "delay", "reserves", "releases",
                                                "buries", "kicks", "timeouts")},
                         {"state": "ready", "pri": "9", "delay": "20", "reserves": "2",
                          "releases": "1", "buries": "1", "kicks": "2", "timeouts": "0"})
        self.assertEqual(parse_job(self.c.ask(b"peek-ready"), b"FOUND")[0], job_id)

    def test_only_the_reserver_releases(self):
        """release, bury, touch and delete of a job reserved by another
        connection answer NOT_FOUND; the reserver's still work."""
        job_id = self.c.put()
        other = self.connect()
        other.reserve()
        for command in (b"release %d 1 0", b"bury %d 1", b"touch %d", b"delete %d"):
            self.assertEqual(self.c.ask(command % job_id), b"NOT_FOUND\r\n", command)
        self.assertEqual(other.ask(b"release %d 1 0" % job_id), b"RELEASED\r\n")
        self.assertEqual(self.c.ask(b"delete %d" % job_id), b"DELETED\r\n")

    def test_kick_bound(self):
        """kick kicks at most its bound; -1 wraps to 2**32-1 (all)."""
        for _ in range(3):
            self.c.put(delay=100)
        self.assertEqual(self.c.ask(b"kick 1"), b"KICKED 1\r\n")
        self.assertEqual(self.c.ask(b"kick 4294967296"), b"KICKED 0\r\n")
        self.assertEqual(self.c.ask(b"kick -1"), b"KICKED 2\r\n")
        self.assertEqual(self.c.ask(b"kick 5"), b"KICKED 0\r\n")

    def test_reserve_job(self):
        """reserve-job takes a delayed job by id; a reserved one is
        NOT_FOUND."""
        job_id = self.c.put(b"d", delay=100)
        self.assertEqual(self.c.reserve(b"reserve-job %d" % job_id), (job_id, b"d"))
        self.assertEqual(self.c.ask(b"reserve-job %d" % job_id), b"NOT_FOUND\r\n")
        self.assertEqual(self.connect().ask(b"reserve-job %d" % job_id), b"NOT_FOUND\r\n")

    def test_tubes(self):
        """use, watch, ignore and the lists, with NOT_IGNORED for the last
        watched tube; tubes are created on use and watch."""
        self.assertEqual(self.c.ask(b"use a"), b"USING a\r\n")
        self.assertEqual(self.c.ask(b"list-tube-used"), b"USING a\r\n")
        self.assertEqual(self.c.ask(b"watch b"), b"WATCHING 2\r\n")
        self.assertEqual(self.c.ask(b"watch b"), b"WATCHING 2\r\n")
        self.assertEqual(self.c.ask(b"ignore nothere"), b"WATCHING 2\r\n")
        self.assertEqual(self.c.ask(b"ignore default"), b"WATCHING 1\r\n")
        self.assertEqual(self.c.ask(b"ignore b"), b"NOT_IGNORED\r\n")
        self.assertEqual(parse_yaml(self.c.ask(b"list-tubes-watched")), ["b"])
        self.assertEqual(parse_yaml(self.c.ask(b"list-tubes")), ["a", "b", "default"])
        job_id = self.c.put()
        self.assertEqual(self.c.ask(b"reserve-with-timeout 0"), b"TIMED_OUT\r\n")
        self.assertEqual(self.c.ask(b"watch a"), b"WATCHING 2\r\n")
        self.assertEqual(self.c.reserve()[0], job_id)

    def test_tube_names_must_be_queue_names(self):
        """Names beanstalkd accepts but the HTTP API cannot address are
        refused by use and watch (BAD_FORMAT); such a tube cannot exist."""
        long_name = b"n" * 65
        for name in (b"a.b", b"a+b", b"x(1)", long_name):
            self.assertEqual(self.c.ask(b"use " + name), b"BAD_FORMAT\r\n", name)
            self.assertEqual(self.c.ask(b"watch " + name), b"BAD_FORMAT\r\n", name)
            self.assertEqual(self.c.ask(b"stats-tube " + name), b"NOT_FOUND\r\n", name)
            self.assertEqual(self.c.ask(b"ignore " + name), b"WATCHING 1\r\n", name)
        self.assertEqual(self.c.ask(b"use " + b"n" * 64), b"USING " + b"n" * 64 + b"\r\n")

    def test_quit(self):
        """quit closes the connection and ignores what follows."""
        self.assertEqual(self.c.send(b"quit\r\nstats\r\n"), b"")
        self.assertTrue(self.c.transport.disconnecting)

    def test_project_setting(self):
        """Tubes are the queues of the configured project."""
        self.settings = (("project", "tenant"),)
        self.setUp()
        self.c.ask(b"use work")
        job_id = self.c.put(b"p")
        self.assertTrue(self.successResultOf(self.driver.queues.exists("tenant", "work")))
        self.assertFalse(self.successResultOf(self.driver.queues.exists(None, "work")))
        message = self.successResultOf(self.driver.messages.get("tenant", "work", str(job_id)))
        self.assertEqual(message.body, "p")


class StatsTests(LineTestCase):
    """The YAML of stats, stats-tube and stats-job."""

    def test_stats_job(self):
        """stats-job has beanstalkd's keys in its order, with time-left for
        reserved and delayed jobs."""
        job_id = self.c.put(priority=5, ttr=30)
        self.clock.advance(3)
        self.c.reserve()
        self.clock.advance(10.5)
        answer = self.c.ask(b"stats-job %d" % job_id)
        yaml = (b"---\nid: %d\ntube: default\nstate: reserved\npri: 5\nage: 13\n"
                b"delay: 0\nttr: 30\ntime-left: 19\nfile: 0\nreserves: 1\ntimeouts: 0\n"
                b"releases: 0\nburies: 0\nkicks: 0\n" % job_id)
        self.assertEqual(answer, b"OK %d\r\n%s\r\n" % (len(yaml), yaml))
        other = self.connect()
        self.assertEqual(parse_yaml(other.ask(b"stats-job %d" % job_id))["time-left"], "19")
        delayed = self.c.put(delay=50)
        self.assertEqual(parse_yaml(self.c.ask(b"stats-job %d" % delayed))["time-left"], "50")
        self.assertEqual(self.c.ask(b"stats-job 999"), b"NOT_FOUND\r\n")

    def test_stats_tube(self):
        """stats-tube counts jobs by state and connections by role."""
        self.c.put(priority=1)
        self.c.put(priority=2000)
        self.c.put(delay=9)
        buried = self.c.put(priority=0)
        self.c.reserve()
        self.c.ask(b"bury %d 0" % buried)
        self.c.reserve()
        waiter = self.connect()
        waiter.ask(b"watch default")
        self.c.put()
        deleted = self.c.put(priority=2**31)
        self.c.ask(b"delete %d" % deleted)
        self.assertEqual(self.connect().ask(b"stats-tube default"), (
            b"OK 265\r\n---\nname: default\ncurrent-jobs-urgent: 0\ncurrent-jobs-ready: 2\n"
            b"current-jobs-reserved: 1\ncurrent-jobs-delayed: 1\ncurrent-jobs-buried: 1\n"
            b"total-jobs: 6\ncurrent-using: 3\ncurrent-watching: 3\ncurrent-waiting: 0\n"
            b"cmd-delete: 1\ncmd-pause-tube: 0\npause: 0\npause-time-left: 0\n\r\n"))
        self.assertEqual(self.c.ask(b"stats-tube nothere"), b"NOT_FOUND\r\n")

    def test_stats(self):
        """stats has beanstalkd 1.12's keys in its order and counts commands,
        jobs, tubes and connections."""
        self.c.put()
        self.c.ask(b"use other")
        self.c.reserve()
        self.connect().ask(b"reserve")
        stats = parse_yaml(self.c.ask(b"stats"))
        self.assertEqual(list(stats), STATS_KEYS)
        self.assertEqual({k: stats[k] for k in (
            "current-jobs-reserved", "cmd-put", "cmd-use", "cmd-reserve", "cmd-stats",
            "total-jobs", "current-tubes", "current-connections", "current-producers",
            "current-workers", "current-waiting", "total-connections", "version")},
            {"current-jobs-reserved": "1", "cmd-put": "1", "cmd-use": "1", "cmd-reserve": "2",
             "cmd-stats": "1", "total-jobs": "1", "current-tubes": "2",
             "current-connections": "2", "current-producers": "1", "current-workers": "2",
             "current-waiting": "1", "total-connections": "2", "version": '"1.12"'})

    def test_default_tube_always_exists(self):
        """"default" is listed and has stats even when its queue does not
        exist in storage."""
        self.assertFalse(self.successResultOf(self.driver.queues.exists(None, "default")))
        self.assertEqual(parse_yaml(self.c.ask(b"list-tubes")), ["default"])
        self.assertEqual(parse_yaml(self.c.ask(b"stats-tube default"))["name"], "default")


class BadInputTests(LineTestCase):
    """Malformed input gets beanstalkd's answers and never grows buffers."""

    # (input, answer) pairs answered so by beanstalkd 1.12.
    TABLE = (
        (b"foo\r\n", b"UNKNOWN_COMMAND\r\n"),
        (b"\r\n", b"UNKNOWN_COMMAND\r\n"),
        (b"PUT 1 0 1 1\r\nx\r\n", b"UNKNOWN_COMMAND\r\nUNKNOWN_COMMAND\r\n"),
        (b"put 1 0 5\r\n", b"BAD_FORMAT\r\n"),
        (b"put 1 0 5 \r\n\r\n", b"BAD_FORMAT\r\nUNKNOWN_COMMAND\r\n"),
        (b"put 4294967296 0 5 1\r\nx\r\n", b"BAD_FORMAT\r\nUNKNOWN_COMMAND\r\n"),
        (b"put -1 0 5 1\r\nx\r\n", b"BAD_FORMAT\r\nUNKNOWN_COMMAND\r\n"),
        (b"put 1 0 5 1 \r\nx\r\n", b"BAD_FORMAT\r\nUNKNOWN_COMMAND\r\n"),
        (b"put 1 0 5 1x\r\nx\r\n", b"BAD_FORMAT\r\nUNKNOWN_COMMAND\r\n"),
        (b"put 1 0 5 3\r\nabcd\r\n", b"EXPECTED_CRLF\r\n"),
        (b"put 1 0 1 1\r\nx\rput 1 0 1 1\r\nx\r\n",
         b"EXPECTED_CRLF\r\nUNKNOWN_COMMAND\r\nUNKNOWN_COMMAND\r\n"),
        (b"reserve \r\n", b"BAD_FORMAT\r\n"),
        (b"stats \r\n", b"BAD_FORMAT\r\n"),
        (b"stats-job\r\n", b"BAD_FORMAT\r\n"),
        (b"stats-job x\r\n", b"BAD_FORMAT\r\n"),
        (b"stats-job 1x\r\n", b"BAD_FORMAT\r\n"),
        (b"peek\r\n", b"UNKNOWN_COMMAND\r\n"),
        (b"peek \r\n", b"BAD_FORMAT\r\n"),
        (b"peek +1\r\n", b"BAD_FORMAT\r\n"),
        (b"peek-readyx\r\n", b"BAD_FORMAT\r\n"),
        (b"delete\r\n", b"UNKNOWN_COMMAND\r\n"),
        (b"delete 1 \r\n", b"BAD_FORMAT\r\n"),
        (b"delete 18446744073709551616\r\n", b"BAD_FORMAT\r\n"),
        (b"delete 18446744073709551615\r\n", b"NOT_FOUND\r\n"),
        (b"delete 0\r\n", b"NOT_FOUND\r\n"),
        (b"kick\r\n", b"UNKNOWN_COMMAND\r\n"),
        (b"kick x\r\n", b"BAD_FORMAT\r\n"),
        (b"kick 1x\r\n", b"KICKED 0\r\n"),
        (b"kick 99999999999999999999999\r\n", b"BAD_FORMAT\r\n"),
        (b"use \r\n", b"BAD_FORMAT\r\n"),
        (b"use -a\r\n", b"BAD_FORMAT\r\n"),
        (b"use a b\r\n", b"BAD_FORMAT\r\n"),
        (b"use \x80\r\n", b"BAD_FORMAT\r\n"),
        (b"ignore default\r\n", b"NOT_IGNORED\r\n"),
        (b"list-tubes \r\n", b"BAD_FORMAT\r\n"),
        (b"pause-tube default\r\n", b"BAD_FORMAT\r\n"),
        (b"pause-tube default 1 \r\n", b"BAD_FORMAT\r\n"),
        (b"pause-tube nothere 1\r\n", b"NOT_FOUND\r\n"),
        (b"pause-tubedefault 0\r\n", b"PAUSED\r\n"),
        (b"release 1 1\r\n", b"BAD_FORMAT\r\n"),
        (b"release 1 1 1\r\n", b"NOT_FOUND\r\n"),
        (b"bury 1\r\n", b"BAD_FORMAT\r\n"),
        (b"touch 1\r\n", b"NOT_FOUND\r\n"),
        (b"reserve-with-timeout\r\n", b"BAD_FORMAT\r\n"),
        (b"reserve-with-timeout x\r\n", b"TIMED_OUT\r\n"),
        (b"reserve-with-timeout 4294967296\r\n", b"TIMED_OUT\r\n"),
        (b"abc\x00def\r\n", b"BAD_FORMAT\r\n"),
        (b"x" * 222 + b"\r\n", b"UNKNOWN_COMMAND\r\n"),
        (b"x" * 300 + b"\r\n", b"BAD_FORMAT\r\n"),
    )

    def test_table(self):
        """Each input of the table gets beanstalkd 1.12's answer, on a fresh
        connection, whole or split into single bytes."""
        for data, expected in self.TABLE:
            self.assertEqual(self.connect().send(data), expected, data)
            c = self.connect()
            for i in range(len(data)):
                c.protocol.dataReceived(data[i:i + 1])
            self.assertEqual(c.take(), expected, data)

    def test_line_just_over_the_limit(self):
        """A line one byte too long (its CR at the limit) is BAD_FORMAT, where
        beanstalkd 1.12 would hang, and the next command is served."""
        self.assertEqual(self.c.send(b"x" * 223 + b"\r\nlist-tube-used\r\n"),
                         b"BAD_FORMAT\r\nUSING default\r\n")

    def test_endless_line_is_discarded_as_it_arrives(self):
        """A line without end is dropped as it comes: the buffer never holds
        more than one line's worth; its end gets BAD_FORMAT."""
        for _ in range(200):
            self.assertEqual(self.c.send(b"y" * 1000), b"")
            self.assertLessEqual(len(self.c.protocol._buffer), 224)
        self.assertEqual(self.c.ask(b"", b"list-tube-used"), b"BAD_FORMAT\r\nUSING default\r\n")

    def test_job_too_big_is_discarded_as_it_arrives(self):
        """An over-big body is discarded as it arrives, then JOB_TOO_BIG,
        and the connection goes on."""
        self.assertEqual(self.c.send(b"put 1 0 1 200000\r\n"), b"")
        for _ in range(200):
            self.assertEqual(self.c.send(b"z" * 1000), b"")
            self.assertLessEqual(len(self.c.protocol._buffer), 1000)
        self.assertEqual(self.c.send(b"\r\nlist-tube-used\r\n"),
                         b"JOB_TOO_BIG\r\nUSING default\r\n")

    def test_max_job_size_setting(self):
        """max_job_size bounds the body: equal is accepted, one more is
        JOB_TOO_BIG."""
        self.settings = (("max_job_size", 10),)
        self.setUp()
        self.c.put(b"0123456789")
        self.assertEqual(self.c.send(b"put 1 0 1 11\r\n01234567890\r\n"), b"JOB_TOO_BIG\r\n")

    def test_each_answer_is_one_write(self):
        """Pipelined commands get one transport.write per answer, each a
        complete answer (jobs and YAML bodies included)."""
        job_id = self.c.put(b"body")
        self.c.transport.writes.clear()
        self.c.send(b"peek %d\r\nreserve\r\nstats-job %d\r\nlist-tubes\r\nbogus\r\n"
                    b"stats\r\ndelete %d\r\n" % (job_id, job_id, job_id))
        writes = self.c.transport.writes
        self.assertEqual(len(writes), 7)
        parse_job(writes[0], b"FOUND")
        parse_job(writes[1], b"RESERVED")
        parse_yaml(writes[2])
        parse_yaml(writes[3])
        self.assertEqual(writes[4], b"UNKNOWN_COMMAND\r\n")
        parse_yaml(writes[5])
        self.assertEqual(writes[6], b"DELETED\r\n")

    def test_input_is_bounded_while_a_reserve_waits(self):
        """While a reserve blocks, pipelined input is buffered up to one line
        and one body, then reading pauses; it resumes once the reserve is
        answered and the commands are served in order."""
        self.assertEqual(self.c.ask(b"reserve"), b"")
        flood = b"list-tube-used\r\n" * 10000
        self.c.send(flood)
        self.assertEqual(self.c.transport.producerState, "paused")
        job_id = self.connect().put(b"w")
        out = self.c.take()
        self.assertTrue(out.startswith(b"RESERVED %d 1\r\nw\r\n" % job_id))
        self.assertEqual(out.count(b"USING default\r\n"), 10000)
        self.assertEqual(self.c.transport.producerState, "producing")

    def test_answers_wait_for_a_reading_client(self):
        """While the transport's write buffer is full no command runs and
        reading pauses once one line and body are buffered; when it drains
        the buffered commands are answered."""
        job_id = self.c.put(b"j" * 1000)
        throttle = self.c.transport.producer
        throttle.pauseProducing()
        self.assertEqual(self.c.send(b"peek %d\r\n" % job_id * 20000), b"")
        self.assertEqual(self.c.transport.producerState, "paused")
        throttle.resumeProducing()
        self.assertEqual(self.c.take().count(b"FOUND %d 1000\r\n" % job_id), 20000)
        self.assertEqual(self.c.transport.producerState, "producing")

    def test_storage_failure(self):
        """A storage outage answers OUT_OF_MEMORY (retry later); the daemon
        keeps serving, and commands work once storage is back."""
        self.driver.close()
        self.assertEqual(self.c.send(b"put 1 0 1 1\r\nx\r\n"), b"OUT_OF_MEMORY\r\n")
        self.assertEqual(self.c.ask(b"peek 1"), b"OUT_OF_MEMORY\r\n")
        self.assertEqual(self.c.ask(b"reserve-with-timeout 0"), b"OUT_OF_MEMORY\r\n")
        self.assertEqual(self.c.ask(b"reserve"), b"OUT_OF_MEMORY\r\n")
        self.assertEqual(self.c.ask(b"delete 1"), b"OUT_OF_MEMORY\r\n")
        self.assertEqual(self.c.ask(b"list-tube-used"), b"USING default\r\n")
        self.driver.open_now()
        self.c.put()


class WaitingTests(LineTestCase):
    """Blocking reserve: woken by events and timers, first come first served."""

    def test_woken_by_put_on_another_connection(self):
        """A blocked reserve is answered when another connection puts."""
        self.assertEqual(self.c.ask(b"reserve"), b"")
        job_id = self.connect().put(b"job")
        self.assertEqual(parse_job(self.c.take()), (job_id, b"job"))

    def test_woken_by_http_post(self):
        """A post through IMessageController.post (the HTTP path) wakes a
        blocked reserve."""
        self.c.ask(b"watch web")
        self.assertEqual(self.c.ask(b"reserve"), b"")
        self.successResultOf(self.driver.queues.create(None, "web"))
        [mid] = self.successResultOf(self.driver.messages.post(
            None, "web", [{"ttl": 60, "body": {"a": 1}}]))
        self.assertEqual(parse_job(self.c.take()), (int(mid), b'{"a":1}'))

    def test_woken_when_delay_ends(self):
        """A blocked reserve gets a delayed job when its delay ends (a timer,
        no polling: nothing happens before)."""
        job_id = self.connect().put(delay=30)
        self.assertEqual(self.c.ask(b"reserve"), b"")
        self.clock.advance(29)
        self.assertEqual(self.c.take(), b"")
        self.clock.advance(1)
        self.assertEqual(parse_job(self.c.take())[0], job_id)

    def test_woken_when_a_reservation_times_out(self):
        """When another connection's ttr runs out its job goes to the
        waiting connection, and the timeout is counted."""
        worker = self.connect()
        job_id = worker.put(ttr=5)
        worker.reserve()
        self.assertEqual(self.c.ask(b"reserve"), b"")
        self.clock.advance(5)
        self.assertEqual(parse_job(self.c.take())[0], job_id)
        self.assertEqual(worker.ask(b"delete %d" % job_id), b"NOT_FOUND\r\n")
        self.assertEqual(parse_yaml(self.c.ask(b"stats-job %d" % job_id))["timeouts"], "1")
        self.assertEqual(parse_yaml(self.c.ask(b"stats"))["job-timeouts"], "1")

    def test_woken_by_release_and_kick(self):
        """release and kick wake blocked reserves."""
        worker = self.connect()
        job_id = worker.put()
        worker.reserve()
        self.assertEqual(self.c.ask(b"reserve"), b"")
        worker.ask(b"bury %d 1" % job_id)
        self.assertEqual(self.c.take(), b"")
        worker.ask(b"kick 1")
        self.assertEqual(parse_job(self.c.take())[0], job_id)
        self.assertEqual(worker.ask(b"reserve"), b"")
        self.c.ask(b"release %d 1 0" % job_id)
        self.assertEqual(parse_job(worker.take())[0], job_id)

    def test_woken_by_http_claim_release_and_expiry(self):
        """A message under an HTTP claim is not reserved; the claim's release
        wakes the waiter, and so does its expiry (a timer)."""
        self.successResultOf(self.driver.queues.create(None, "default"))
        self.successResultOf(self.driver.messages.post(
            None, "default", [{"ttl": 600, "body": "m"}]))
        claim = self.successResultOf(self.driver.claims.create(None, "default", 60, 60, 1))
        self.assertEqual(self.c.ask(b"reserve"), b"")
        self.successResultOf(self.driver.claims.delete(None, "default", claim.id))
        job_id, _ = parse_job(self.c.take())
        self.c.ask(b"release %d 1 0" % job_id)
        claim = self.successResultOf(self.driver.claims.create(None, "default", 60, 60, 1))
        self.assertEqual(self.c.ask(b"reserve"), b"")
        self.clock.advance(59)
        self.assertEqual(self.c.take(), b"")
        self.clock.advance(1)
        self.assertEqual(parse_job(self.c.take())[0], job_id)

    def test_first_come_first_served(self):
        """Waiting connections get jobs in the order they started waiting."""
        waiters = [self.connect() for _ in range(3)]
        for waiter in waiters:
            self.assertEqual(waiter.ask(b"reserve"), b"")
        producer = self.connect()
        ids = [producer.put(b"%d" % i) for i in range(3)]
        self.assertEqual([parse_job(w.take())[0] for w in waiters], ids)

    def test_waiter_on_other_tube_is_skipped(self):
        """A job goes to the first waiter watching its tube, not to an
        earlier waiter on another tube."""
        self.c.ask(b"watch a", b"ignore default")
        self.assertEqual(self.c.ask(b"reserve"), b"")
        second = self.connect()
        self.assertEqual(second.ask(b"reserve"), b"")
        job_id = self.connect().put()
        self.assertEqual(self.c.take(), b"")
        self.assertEqual(parse_job(second.take())[0], job_id)

    def test_reserve_with_timeout(self):
        """reserve-with-timeout answers TIMED_OUT after its timeout, at once
        for 0, and a job arriving before the timeout is delivered."""
        self.assertEqual(self.c.ask(b"reserve-with-timeout 0"), b"TIMED_OUT\r\n")
        self.assertEqual(self.c.ask(b"reserve-with-timeout 10"), b"")
        self.clock.advance(9.9)
        self.assertEqual(self.c.take(), b"")
        self.clock.advance(0.1)
        self.assertEqual(self.c.take(), b"TIMED_OUT\r\n")
        self.assertEqual(self.c.ask(b"reserve-with-timeout 10"), b"")
        job_id = self.connect().put()
        self.assertEqual(parse_job(self.c.take())[0], job_id)
        self.clock.advance(20)
        self.assertEqual(self.c.take(), b"")

    def test_deadline_soon(self):
        """With a reservation in its last second a waiting reserve answers
        DEADLINE_SOON, a new reserve answers it at once unless a job is
        ready, and at the deadline the job is released."""
        job_id = self.c.put(ttr=3)
        self.c.reserve()
        self.assertEqual(self.c.ask(b"reserve"), b"")
        self.clock.advance(1.9)
        self.assertEqual(self.c.take(), b"")
        self.clock.advance(0.1)
        self.assertEqual(self.c.take(), b"DEADLINE_SOON\r\n")
        self.assertEqual(self.c.ask(b"reserve"), b"DEADLINE_SOON\r\n")
        other = self.c.put()
        self.assertEqual(self.c.reserve()[0], other)
        self.clock.advance(1)
        self.assertEqual(parse_yaml(self.c.ask(b"stats-job %d" % job_id))["state"], "ready")
        self.assertEqual(self.c.ask(b"touch %d" % job_id), b"NOT_FOUND\r\n")

    def test_pause_tube(self):
        """A paused tube gives no job until the pause ends, then a waiting
        reserve gets it; stats-tube shows the pause."""
        job_id = self.c.put()
        self.assertEqual(self.c.ask(b"pause-tube default 10"), b"PAUSED\r\n")
        self.assertEqual(self.c.ask(b"reserve-with-timeout 0"), b"TIMED_OUT\r\n")
        stats = parse_yaml(self.c.ask(b"stats-tube default"))
        self.assertEqual((stats["pause"], stats["pause-time-left"], stats["cmd-pause-tube"]),
                         ("10", "10", "1"))
        self.assertEqual(self.c.ask(b"reserve"), b"")
        self.clock.advance(10)
        self.assertEqual(parse_job(self.c.take())[0], job_id)

    def test_connection_drop_releases_reservations(self):
        """Jobs reserved by a connection that closes are ready again at once
        and go to a waiting connection."""
        worker = self.connect()
        job_id = worker.put()
        worker.reserve()
        self.assertEqual(self.c.ask(b"reserve"), b"")
        worker.close()
        self.assertEqual(parse_job(self.c.take())[0], job_id)

    def test_dropped_waiter_takes_nothing(self):
        """A connection that closes while waiting is forgotten: the next job
        goes to the next waiter."""
        gone = self.connect()
        gone.ask(b"reserve")
        gone.close()
        self.assertEqual(self.c.ask(b"reserve"), b"")
        job_id = self.connect().put()
        self.assertEqual(parse_job(self.c.take())[0], job_id)
        self.assertEqual(len(self.factory.room), 0)

    def test_half_close_times_out_a_waiting_reserve(self):
        """A client that half-closes while waiting gets TIMED_OUT, then the
        connection closes."""
        self.assertEqual(self.c.ask(b"reserve"), b"")
        self.c.protocol.readConnectionLost()
        self.assertEqual(self.c.take(), b"TIMED_OUT\r\n")
        self.assertTrue(self.c.transport.disconnecting)


class IOSimTests(LineTestCase):
    """Two real protocol pairs joined by iosim (a fuller transport)."""

    def test_pipelined_client_over_iosim(self):
        """A client that writes its commands in one burst reads each answer
        in order, across two connections that hand a job over."""
        received = {}

        class Client(Protocol):
            def __init__(self, name):
                self.name = name
                received[name] = b""

            def dataReceived(self, data):
                received[self.name] += data

        consumer, _, pump_consumer = self._connect(Client("consumer"))
        producer, _, pump_producer = self._connect(Client("producer"))
        consumer.transport.write(b"watch t\r\nreserve\r\n")
        pump_consumer.flush()
        producer.transport.write(b"use t\r\nput 0 0 10 2\r\nhi\r\n")
        pump_producer.flush()
        pump_consumer.flush()
        self.assertEqual(received["producer"], b"USING t\r\nINSERTED 1\r\n")
        self.assertEqual(received["consumer"], b"WATCHING 2\r\nRESERVED 1 2\r\nhi\r\n")

    def _connect(self, client):
        server = self.factory.buildProtocol(None)
        pump = iosim.connect(server, iosim.makeFakeServer(server), client,
                             iosim.makeFakeClient(client))
        return client, server, pump
