"""The embedded default driver: one sqlite file in WAL mode.

Calls run in the reactor thread: each is a few indexed statements on a local
file, far cheaper than a thread hop (see the README's Performance section for
the measured times). The exceptions are reads that scan (stats) and WAL
checkpoints, which run on a second connection in one worker thread. Writes
take the database lock with ``BEGIN IMMEDIATE``, so that several daemons
sharing one file stay atomic, and never wait for it in the reactor thread
(``SqliteDriver.submit``); a controller's write is a ``@writes`` method
(``transactions.py``), handed the connection inside that transaction. Opening
brings the file's schema to the current version (``schema.py``).

Durability: a write is acknowledged after COMMIT. In WAL mode with
``synchronous=NORMAL`` the commit is in the WAL file (the OS page cache) when
COMMIT returns, so it survives a ``kill -9`` of the daemon; ``FULL`` adds an
fsync per commit and also survives power loss. The WAL is kept under a bound
by checkpoints (``storage/sqlite/wal.py``).
"""

import os
import sqlite3

from twisted.internet import defer
from twisted.internet.interfaces import IReactorThreads
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from marconi_tx import errors
from marconi_tx.storage.events import QueueEvents
from marconi_tx.storage.interfaces import ILineStorageDriver, IPoolingStorage
from marconi_tx.storage.sqlite import schema, wal
from marconi_tx.storage.sqlite.claims import ClaimController
from marconi_tx.storage.sqlite.jobs import JobController
from marconi_tx.storage.sqlite.messages import MessageController
from marconi_tx.storage.sqlite.pools import CatalogController, FlavorController, PoolController
from marconi_tx.storage.sqlite.queues import QueueController
from marconi_tx.storage.sqlite.subscriptions import SubscriptionController
from marconi_tx.storage.sqlite.transactions import run_now, unavailable

log = Logger()
#: Default bound of the WAL file, in bytes (see storage/sqlite/wal.py).
WAL_MAX_BYTES = 64 * 1024 * 1024
#: Seconds before the first and the longest retry of writes waiting for
#: another process's lock (see SqliteDriver.submit).
FIRST_RETRY, LAST_RETRY = 0.0002, 0.002


@implementer(ILineStorageDriver, IPoolingStorage)
class SqliteDriver:
    """
    The driver of the sqlite file ``path`` (or ``":memory:"``).

    ``reactor`` is its only source of time, timers and threads. Scans of a
    file database (stats, WAL checkpoints) run on a second connection: in a
    worker thread when the reactor provides ``IReactorThreads`` (stopped at
    the reactor's shutdown, so also ``IReactorCore``, as real reactors
    are); at once in the calling thread when it has no threads (a
    ``task.Clock``). With group commit the writes of a turn are flushed by
    ``reactor.callLater(0, ...)``: on a ``task.Clock``, when the test runs
    the calls due (``advance(0)``). ``tests.clock_reactor.ClockReactor``
    gives tests a Clock's time with the real reactor's turns and threads.
    """

    def __init__(self, path, reactor, synchronous="NORMAL", busy_timeout=5.0,
                 group_commit=False, wal_max_bytes=WAL_MAX_BYTES):
        self.path = path
        self.reactor = reactor
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.group_commit = group_commit
        self.wal_max_bytes = wal_max_bytes
        self.db = None
        self.wal = None  # the WalKeeper of a file database
        self._held = False  # writes wait for a WAL checkpoint (hold)
        self._queue = []  # (call, Deferred, submitted at) of writes to run
        self._flushing = False  # _flush is running the queue
        self._turn = None  # the end-of-turn flush, with group commit
        self._retry = None  # the next attempt while another process holds the lock
        self._retry_delay = FIRST_RETRY
        self._changes = []  # (project, queue) to notify after the COMMIT
        self._queue_ids = None  # (project, queue) -> id, while a batch runs (queue_id)
        self._scanning = None  # the connection of reads that scan, for a file
        self._pool = None  # the thread those reads run in, with a threaded reactor
        self._stop_trigger = None  # the reactor's shutdown trigger stopping _pool
        self.queues = QueueController(self)
        self.messages = MessageController(self)
        self.claims = ClaimController(self)
        self.jobs = JobController(self)
        self.subscriptions = SubscriptionController(self)
        self.pools = PoolController(self)
        self.flavors = FlavorController(self)
        self.catalog = CatalogController(self)
        self.events = QueueEvents()

    def now(self):
        return int(self.reactor.seconds())

    def open(self):
        try:
            self.open_now()
        except errors.StorageUnavailable as e:
            return defer.fail(e)
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
            if self.wal_max_bytes:
                # A writer restarting a checkpointed WAL cuts the file to this.
                db.execute(f"PRAGMA journal_size_limit={int(self.wal_max_bytes)}")
            schema.upgrade(db, self.path)
            # From now on the lock is never waited for in the reactor thread:
            # writes retry it by a timer (submit). In WAL mode reads take no
            # lock, save in rare moments (recovery after a crash), when they
            # fail at once (503, Retry-After) rather than stall the daemon.
            db.execute("PRAGMA busy_timeout=0")
        except BaseException:
            db.close()
            raise
        self.db = db
        if self.path != ":memory:":
            self._start_scanner()

    def _start_scanner(self):
        # Reads whose cost grows with the data (stats) run on their own
        # connection, in one worker thread when the reactor has threads: WAL
        # lets them read beside the writer, and sqlite releases the GIL while
        # it works. Its busy wait only matters to RESTART checkpoints
        # (wal.py): reads take no lock in WAL mode.
        self._scanning = sqlite3.connect(self.path, isolation_level=None,
                                         check_same_thread=False,
                                         timeout=wal.CHECKPOINT_WAIT)
        if IReactorThreads.providedBy(self.reactor):
            self._pool = ThreadPool(minthreads=0, maxthreads=1,
                                    name=f"sqlite-scan {self.path}")
            self._pool.start()
            self._stop_trigger = self.reactor.addSystemEventTrigger(
                "during", "shutdown", self._pool.stop)
        # Checkpoints copy the WAL into the database file. Left to sqlite they
        # run inside a writer's COMMIT, on the reactor thread (the 5 ms p99 of
        # small posts); here they run in the scan thread (wal.py).
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        self.wal = wal.WalKeeper(self, self.wal_max_bytes)
        self.wal.start()

    def close(self):
        self._cancel_timers()
        # A checkpoint still running keeps the lock: these writes then fail.
        self._held = False
        if self._queue:
            self._flush()  # what is queued gets one last chance
        self._cancel_timers()  # the last chance may have met a busy lock
        queue, self._queue = self._queue, []
        self._fail(queue, "database is closed")
        if self._scanning is not None:
            self.wal.stop()
            if self._pool is not None:
                self.reactor.removeSystemEventTrigger(self._stop_trigger)
                self._pool.stop()
                self._pool = self._stop_trigger = None
            self._scanning.close()
            self._scanning = None
        if self.db is not None:
            self.db.close()
            self.db = None
        return defer.succeed(None)

    def scan(self, read, *args):
        """
        ``read(connection, *args)`` as a Deferred: on the scan connection of
        a file, in its worker thread when there is one; on the only
        connection of an in-memory database.
        """
        if self._pool is not None:
            d = deferToThreadPool(self.reactor, self._pool, read, self._scanning, *args)
            d.addErrback(unavailable)
            return d
        if self._scanning is not None:
            return run_now(read, self._scanning, *args)
        return run_now(lambda: read(self.read(), *args))

    def is_alive(self):
        try:
            self.db.execute("SELECT 1").fetchone()
        except (sqlite3.Error, AttributeError):
            return defer.succeed(False)
        return defer.succeed(True)

    # -- writes ------------------------------------------------------------

    def submit(self, call):
        """
        Run the write ``call(db)`` in a write transaction (``db`` is the
        connection): a Deferred of its result, fired after the COMMIT
        (``@writes`` methods come here).

        Without group commit the call runs now, in its own transaction. With
        it, the writes submitted during one reactor turn run together at its
        end: one BEGIN IMMEDIATE, then the writes, then one COMMIT. A failing
        write is undone alone: the batch runs without a savepoint a write
        unless a failing write had changed rows, and then again with them.
        The lock is held only while the statements run, not while the turn's
        requests are being parsed.

        The lock is taken without waiting. While another process holds it the
        writes stay queued and a timer retries them (backing off from
        ``FIRST_RETRY`` to ``LAST_RETRY`` seconds), so the reactor goes on
        serving instead of sleeping in sqlite's busy handler; a write still
        queued after ``busy_timeout`` seconds fails with StorageUnavailable.
        """
        d = defer.Deferred()
        self._queue.append((call, d, self.reactor.seconds()))
        if self._retry is None and not self._flushing:
            if not self.group_commit:
                self._flush()
            elif self._turn is None:
                self._turn = self.reactor.callLater(0, self._flush)
        return d

    def _flush(self):
        """Run the queued writes, batch after batch (answering a batch may
        queue more), until none is left or another process has the lock."""
        self._turn = self._retry = None
        if self._held:  # resume() flushes
            return
        # Nested only when close() comes from a write's callback: the batches
        # are committed by then, and the outer loop finds the queue empty.
        nested, self._flushing = self._flushing, True
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                outcomes = self._commit(batch)
                if outcomes is None:  # the lock is taken
                    self._queue[:0] = batch
                    self._wait_for_lock()
                    return
                self._retry_delay = FIRST_RETRY
                changes, self._changes = self._changes, []
                for d, outcome in outcomes:
                    if isinstance(outcome, Failure):
                        d.errback(outcome)
                    else:
                        d.callback(outcome)
                for project, queue in changes:
                    self.events.notify(project, queue)
        finally:
            self._flushing = nested

    def _commit(self, batch):
        """
        Run ``batch`` in one transaction: [(Deferred, result or Failure)],
        or None when another process holds the lock.
        """
        db = self.db
        if db is None:
            self._fail(batch, "database is closed")
            return []
        try:
            db.execute("BEGIN IMMEDIATE")  # no waiting: see open_now
        except sqlite3.Error as e:
            if getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
                return None
            self._fail(batch, str(e))
            return []
        self._queue_ids = {}
        noted = len(self._changes)
        try:
            # Optimistically without a savepoint a write: a failing write
            # rarely changed anything before it failed.
            db.execute("SAVEPOINT batch")
            outcomes = self._run(db, batch, savepoints=False)
            if outcomes is None:  # one did: again, each in its own savepoint
                db.execute("ROLLBACK TO batch")
                del self._changes[noted:]
                self.forget_queue_ids()
                outcomes = self._run(db, batch, savepoints=True)
            db.execute("COMMIT")
        except sqlite3.Error as e:  # nothing of the batch is committed
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._changes = []
            self._fail(batch, str(e))
            return []
        finally:
            self._queue_ids = None
        return outcomes

    def _run(self, db, batch, savepoints):
        """
        Call the writes of ``batch`` inside the open transaction:
        [(Deferred, result or Failure)]. A failing write is undone alone:
        rolled back to its savepoint, or, without savepoints, found to have
        changed no row; None when, without savepoints, it had changed some.
        Raises sqlite3.Error once the transaction has ended: nothing of the
        batch may be written outside it.
        """
        outcomes = []
        for call, d, _ in batch:
            if not db.in_transaction:  # a write ended it (or sqlite, on an I/O error)
                raise sqlite3.OperationalError("the write transaction has ended")
            if savepoints:
                db.execute("SAVEPOINT request")
            noted = len(self._changes)
            changed = db.total_changes
            try:
                outcome = call(db)
            except sqlite3.Error as e:
                outcome = Failure(errors.StorageUnavailable(f"sqlite: {e}"))
            except Exception:
                outcome = Failure()
            if isinstance(outcome, Failure):
                if savepoints:
                    db.execute("ROLLBACK TO request")
                elif db.total_changes != changed:
                    return None
                del self._changes[noted:]
                self.forget_queue_ids()
            if savepoints:
                db.execute("RELEASE request")
            outcomes.append((d, outcome))
        return outcomes

    def hold(self):
        """Keep writes queued, not taking the lock, until ``resume``: a
        RESTART checkpoint needs a moment with no writer (wal.py)."""
        self._held = True

    def resume(self):
        self._held = False
        if self._queue and self._retry is None and not self._flushing:
            self._flush()

    def _wait_for_lock(self):
        """Fail the writes queued for longer than busy_timeout; retry the rest."""
        now = self.reactor.seconds()
        expired = [entry for entry in self._queue if now - entry[2] >= self.busy_timeout]
        self._queue = [entry for entry in self._queue if now - entry[2] < self.busy_timeout]
        self._fail(expired, "database is locked")
        if self._queue:
            self._retry = self.reactor.callLater(self._retry_delay, self._flush)
            self._retry_delay = min(self._retry_delay * 2, LAST_RETRY)

    def _cancel_timers(self):
        for call in (self._turn, self._retry):
            if call is not None and call.active():
                call.cancel()
        self._turn = self._retry = None

    @staticmethod
    def _fail(entries, reason):
        for _, d, _ in entries:
            d.errback(errors.StorageUnavailable(f"sqlite: {reason}"))

    def changed(self, project, queue):
        """Note a change that may wake consumers of ``queue`` (the line
        endpoint's reserve); they are told after the COMMIT."""
        self._changes.append((project, queue))

    def read(self):
        """The connection, for single-statement reads (autocommit)."""
        if self.db is None:
            raise sqlite3.OperationalError("database is closed")
        return self.db

    def queue_id(self, db, project, queue):
        """
        The row id of (project, queue), or None.

        While a batch of writes runs (``_commit``) no other process can
        change the queues, so an id found then is remembered until the batch
        ends, a write in it fails, or a queue is deleted
        (``forget_queue_ids``): the writes of one batch mostly name the same
        queue.
        """
        key = (project or "", queue)
        remembered = self._queue_ids if db is self.db else None
        if remembered and key in remembered:
            return remembered[key]
        row = db.execute("SELECT id FROM queues WHERE project=? AND name=?", key).fetchone()
        if row is None:
            return None
        qid, = row
        if remembered is not None:
            remembered[key] = qid
        return qid

    def make_queue_id(self, db, project, queue):
        """The row id of (project, queue), creating the queue (metadata {})
        if it is missing; inside a write."""
        qid = self.queue_id(db, project, queue)
        if qid is None:
            qid = db.execute("INSERT INTO queues (project, name, metadata, created) "
                             "VALUES (?, ?, '{}', ?)",
                             (project or "", queue, self.now())).lastrowid
        return qid

    def forget_queue_ids(self):
        """A write deleted a queue, or failed and was rolled back: ids
        remembered in this batch may be stale."""
        if self._queue_ids:
            self._queue_ids.clear()

    def gc(self):
        return self.submit(self._collect)

    def _collect(self, db):
        now = self.now()
        removed = db.execute("DELETE FROM messages WHERE expires<=?", (now,)).rowcount
        removed += db.execute("DELETE FROM claims WHERE expires<=?", (now,)).rowcount
        removed += db.execute("DELETE FROM subscriptions WHERE expires<=?", (now,)).rowcount
        return removed
