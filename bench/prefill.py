"""Fill a sqlite storage file with messages before a server opens it.

Depth runs need a million messages in a queue. Posting them over HTTP would
take longer than the whole benchmark, so the harness writes them into the
file directly. The schema and the queue row come from the real driver
(``SqliteDriver.open_now`` and ``queues.create``), so the file is exactly what
the server would have made; the message rows are then inserted with one
``executemany`` per batch, the same columns ``MessageController.post``
writes. Rows go in through the driver's own connection, in ``BEGIN
IMMEDIATE`` transactions, so filling a file that a running daemon has open
is safe too (the daemon's writes wait in its queue meanwhile).
"""

import json
import sqlite3
import time

from twisted.internet.task import Clock
from twisted.python.failure import Failure

from marconi_tx.storage.interfaces import DEFAULT_PRIORITY
from marconi_tx.storage.sqlite.driver import SqliteDriver

#: Rows per transaction: large enough that commits cost little, small enough
#: that a running daemon sharing the file is never locked out for long.
BATCH = 20000

#: Seconds between attempts to create the queue while the lock is taken.
RETRY = 0.001

#: Seconds a batch waits for a running daemon to let go of the lock.
LOCK_TIMEOUT = 30.0

#: The ttl of prefilled messages: they must outlive the whole benchmark.
PREFILL_TTL = 1209600


def open_driver(path, now=None):
    """
    A ``SqliteDriver`` opened on ``path``, its reactor a Clock set to ``now``.

    The default is the wall clock: the daemon that will serve the rows
    reads its reactor's time, and prefilled messages must look just posted.
    """
    clock = Clock()
    clock.advance(time.time() if now is None else now)
    driver = SqliteDriver(path, clock)
    driver.open_now()
    return driver


def ensure_queue(driver, queue, project=None):
    """Create ``queue`` through the driver's queue controller (idempotent)."""
    results = []
    driver.queues.create(project, queue).addBoth(results.append)
    while not results:
        # A running daemon holds the lock: the driver retries on its clock,
        # which here moves with the wall clock (it gives up after its
        # busy_timeout).
        time.sleep(RETRY)
        driver.reactor.advance(RETRY)
    if isinstance(results[0], Failure):
        results[0].raiseException()


def begin(db, timeout=LOCK_TIMEOUT):
    """
    BEGIN IMMEDIATE on ``db``, waiting up to ``timeout`` seconds while
    another process (a running daemon) holds the lock: the driver's
    connection does not wait by itself (its busy timeout is 0).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as e:
            busy = getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise
        time.sleep(RETRY)


def fill(path, queue, count, project=None, body=None, batch=BATCH, now=None):
    """
    Append ``count`` messages to ``queue`` (created if missing) in the sqlite
    file at ``path``, stamped as posted at ``now`` (default: the wall clock).

    @return: the seconds it took.
    """
    started = time.perf_counter()
    driver = open_driver(path, now)
    try:
        ensure_queue(driver, queue, project)
        encoded = json.dumps(body if body is not None else {"event": "prefill"},
                             separators=(",", ":"))
        now = driver.now()
        db = driver.db
        qid = driver.queue_id(db, project, queue)
        row = (qid, encoded, PREFILL_TTL, now, now + PREFILL_TTL, None,
               DEFAULT_PRIORITY, now)
        done = 0
        while done < count:
            size = min(batch, count - done)
            begin(db)
            db.executemany(
                "INSERT INTO messages (queue_id, body, ttl, created, expires, "
                "client_uuid, priority, available_at) VALUES (?,?,?,?,?,?,?,?)",
                (row for _ in range(size)))
            db.execute("COMMIT")
            done += size
        # Fold the WAL into the main file so the server starts without a
        # large WAL to replay and first reads do not walk it.
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        driver.close()
    return time.perf_counter() - started


def depth(path, queue, project=None):
    """The number of messages stored in ``queue`` (expired ones included)."""
    driver = open_driver(path)
    try:
        db = driver.read()
        qid = driver.queue_id(db, project, queue)
        if qid is None:
            return 0
        return db.execute("SELECT count(*) FROM messages WHERE queue_id=?",
                          (qid,)).fetchone()[0]
    finally:
        driver.close()
