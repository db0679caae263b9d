"""The embedded default driver: one sqlite file in WAL mode.

Calls run in the reactor thread: each is a few indexed statements on a local
file, far cheaper than a thread hop (see the README's Performance section for
the measured times). The exceptions are reads that scan (stats) and WAL
checkpoints, which run on a second connection in one worker thread. Writes take the database lock with ``BEGIN IMMEDIATE`` so
that several daemons sharing one file stay atomic.

Durability: a write is acknowledged after COMMIT. In WAL mode with
``synchronous=NORMAL`` the commit is in the WAL file (the OS page cache) when
COMMIT returns, so it survives a ``kill -9`` of the daemon; ``FULL`` adds an
fsync per commit and also survives power loss.
"""

import functools
import json
import os
import sqlite3
from contextlib import contextmanager

from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from marconi_tx import errors
from marconi_tx.storage.interfaces import ILineStorageDriver
from marconi_tx.storage.sqlite.schema import SCHEMA

log = Logger()
#: Seconds between WAL checkpoints (see SqliteDriver._start_scanner).
CHECKPOINT_INTERVAL = 1.0


def deferred(method):
    """Run a synchronous driver method, returning its result as a Deferred
    and turning engine failures into ``StorageUnavailable``. With group
    commit, a method that wrote is acknowledged after its group's COMMIT."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        driver = getattr(self, "driver", self)
        driver.wrote = False
        try:
            result = method(self, *args, **kwargs)
        except sqlite3.Error as e:
            return defer.fail(errors.StorageUnavailable(f"sqlite: {e}"))
        except Exception:
            return defer.fail()
        if driver.wrote and driver.group is not None:
            return driver.group.acknowledge(result)
        return defer.succeed(result)

    return wrapper


class CommitGroup:
    """The writes of one reactor turn: one transaction, one COMMIT.

    Each request writes inside its own SAVEPOINT, so a failing request rolls
    back alone; the others are acknowledged once the COMMIT has returned.
    """

    def __init__(self, db):
        self.db = db
        self.waiting = []  # (Deferred, result) to fire after the COMMIT

    def acknowledge(self, result):
        d = defer.Deferred()
        self.waiting.append((d, result))
        return d

    def commit(self):
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error as e:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            for d, _ in self.waiting:
                d.errback(errors.StorageUnavailable(f"sqlite: {e}"))
        else:
            for d, result in self.waiting:
                d.callback(result)


def _unavailable(failure):
    failure.trap(sqlite3.Error)
    raise errors.StorageUnavailable(f"sqlite: {failure.value}")


def _checkpoint(connection):
    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


#: Built once: ``json.dumps`` with options builds an encoder every call.
dump_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@implementer(ILineStorageDriver)
class SqliteDriver:
    def __init__(self, path, clock, synchronous="NORMAL", busy_timeout=5.0,
                 group_commit=False):
        from marconi_tx.storage.events import QueueEvents
        from marconi_tx.storage.sqlite.claims import ClaimController
        from marconi_tx.storage.sqlite.jobs import JobController
        from marconi_tx.storage.sqlite.messages import MessageController
        from marconi_tx.storage.sqlite.queues import QueueController

        self.path = path
        self.clock = clock
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.group_commit = group_commit
        self.group = None  # the open CommitGroup, with group_commit
        self.wrote = False  # set by write(), read by @deferred
        self.db = None
        self._scanner = None  # (thread pool, connection) for reads that scan
        self.queues = QueueController(self)
        self.messages = MessageController(self)
        self.claims = ClaimController(self)
        self.jobs = JobController(self)
        self.events = QueueEvents()

    def now(self):
        return int(self.clock.seconds())

    def open(self):
        try:
            self.open_now()
        except (sqlite3.Error, OSError) as e:
            return defer.fail(errors.StorageUnavailable(f"cannot open {self.path}: {e}"))
        return defer.succeed(None)

    def open_now(self):
        """Open synchronously (``open`` wraps this in a Deferred)."""
        if self.db is not None:
            return
        if self.path != ":memory:":
            folder = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(folder, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                             timeout=self.busy_timeout)
        try:
            if self.path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            db.executescript(SCHEMA)
        except sqlite3.Error:
            db.close()
            raise
        self.db = db
        if self.path != ":memory:":
            self._start_scanner()

    def _start_scanner(self):
        # Reads whose cost grows with the data (stats) run on their own
        # connection in one worker thread: WAL lets them read beside the
        # writer, and sqlite releases the GIL while it works.
        from twisted.internet import reactor

        pool = ThreadPool(minthreads=0, maxthreads=1, name=f"sqlite-scan {self.path}")
        pool.start()
        self._stop_trigger = reactor.addSystemEventTrigger("during", "shutdown", pool.stop)
        self._scanner = (pool, sqlite3.connect(self.path, isolation_level=None,
                                               check_same_thread=False))
        # Checkpoints copy the WAL into the database file. Left to sqlite they
        # run inside a writer's COMMIT, on the reactor thread (the 5 ms p99 of
        # small posts); here a PASSIVE one, which never blocks the writer, runs
        # in the scan thread every second instead.
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpoints = LoopingCall(self.scan, _checkpoint)
        self._checkpoints.clock = self.clock
        self._checkpoints.start(CHECKPOINT_INTERVAL, now=False).addErrback(
            lambda f: log.failure("WAL checkpoints stopped", f))

    def close(self):
        self._end_group()
        if self._scanner is not None:
            from twisted.internet import reactor

            pool, connection = self._scanner
            self._scanner = None
            if self._checkpoints.running:
                self._checkpoints.stop()
            reactor.removeSystemEventTrigger(self._stop_trigger)
            pool.stop()
            connection.close()
        if self.db is not None:
            self.db.close()
            self.db = None
        return defer.succeed(None)

    def scan(self, read, *args):
        """
        ``read(connection, *args)`` as a Deferred, off the reactor thread
        when the database is a file (an in-memory one has one connection).
        """
        if self._scanner is None:
            return deferred(lambda driver: read(driver.read(), *args))(self)
        from twisted.internet import reactor

        pool, connection = self._scanner
        d = deferToThreadPool(reactor, pool, read, connection, *args)
        d.addErrback(_unavailable)
        return d

    def is_alive(self):
        try:
            self.db.execute("SELECT 1").fetchone()
        except (sqlite3.Error, AttributeError):
            return defer.succeed(False)
        return defer.succeed(True)

    @contextmanager
    def write(self):
        """
        A write transaction holding the database lock; rolls back on error.
        With group commit it is a SAVEPOINT in the turn's shared transaction.
        """
        db = self.db
        if db is None:
            raise sqlite3.OperationalError("database is closed")
        if not self.group_commit:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return
        if self.group is None:
            from twisted.internet import reactor

            db.execute("BEGIN IMMEDIATE")
            self.group = CommitGroup(db)
            reactor.callLater(0, self._end_group)  # at the end of this turn
        db.execute("SAVEPOINT request")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK TO request")
            db.execute("RELEASE request")
            raise
        db.execute("RELEASE request")
        self.wrote = True

    def _end_group(self):
        """COMMIT the open group, if any (idempotent: close() may come first)."""
        group, self.group = self.group, None
        if group is not None:
            group.commit()

    def read(self):
        """The connection, for single-statement reads (autocommit)."""
        if self.db is None:
            raise sqlite3.OperationalError("database is closed")
        return self.db

    def queue_id(self, db, project, queue):
        """The row id of (project, queue), or None."""
        row = db.execute("SELECT id FROM queues WHERE project=? AND name=?",
                         (project or "", queue)).fetchone()
        return row[0] if row else None

    @deferred
    def gc(self):
        now = self.now()
        with self.write() as db:
            removed = db.execute("DELETE FROM messages WHERE expires<=?", (now,)).rowcount
            removed += db.execute("DELETE FROM claims WHERE expires<=?", (now,)).rowcount
        return removed
