"""Keeping the sqlite WAL file small under steady writes.

Automatic checkpoints are off (they would run inside a writer's COMMIT, on
the reactor thread). Instead, on the driver's scan connection (in its thread
when the reactor has threads, see ``SqliteDriver``):

- every ``CHECKPOINT_INTERVAL`` seconds a PASSIVE checkpoint copies the WAL
  into the database file without stopping writers. Under steady writes it
  never catches up with the last commit, so the WAL is never restarted and
  the file only grows;
- so every ``CHECK_INTERVAL`` seconds the size of the ``-wal`` file is
  looked at, and once it passes ``max_bytes`` a PASSIVE checkpoint copies
  what it can, then this process holds its writes back (they stay queued,
  see ``SqliteDriver.hold``) while a RESTART checkpoint copies the rest,
  syncs the database file and makes the next writer start the WAL again
  from its beginning. It waits at most ``CHECKPOINT_WAIT`` seconds for
  readers on old snapshots and for other processes' writers (``--workers``:
  each process has its own keeper; a keeper finding another's checkpoint
  running gives up at once); if it cannot finish it backs off, doubling up
  to ``LONGEST_BACKOFF``, so that a long reader does not keep stalling
  writes.

The first commit into a restarted WAL cuts the file to ``journal_size_limit``
(set at open to ``max_bytes``), as also happens when a writer restarts a
fully checkpointed WAL in a quiet moment. The file is not truncated to zero
bytes (a TRUNCATE checkpoint): writes into a restarted WAL overwrite blocks
the file already has, where writes to an emptied file had to extend it
again, frame by frame. On the line port's put/reserve/delete cycle that
extension cost some 15 % of the daemon's CPU.

Durability is unchanged: acknowledged writes are in the WAL (synchronous
NORMAL: written; FULL: also fsynced), and a checkpoint syncs the database
file before the WAL is restarted, so after a kill -9 at any
moment every acknowledged write is in one of the two files.
"""

import os

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

log = Logger()

#: Seconds between PASSIVE checkpoints.
CHECKPOINT_INTERVAL = 1.0
#: Seconds between looks at the WAL's size; the file can overshoot its bound
#: by what is written in that time.
CHECK_INTERVAL = 0.1
#: Longest wait of a TRUNCATE checkpoint for readers and other writers.
CHECKPOINT_WAIT = 0.2
#: Longest pause between attempts that could not finish (a long reader).
LONGEST_BACKOFF = 60.0


def passive(connection):
    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def restart(connection):
    """A RESTART checkpoint: True if the whole WAL was copied and the next
    writer starts it again from its beginning."""
    busy, _, _ = connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
    return not busy


class WalKeeper:
    """The checkpoints of one driver's file (see the module docstring)."""

    def __init__(self, driver, max_bytes):
        self.driver = driver
        self.reactor = driver.reactor
        self.path = driver.path + "-wal"
        #: 0: no bound (PASSIVE checkpoints only).
        self.max_bytes = max_bytes
        self._loop = None
        self._last_passive = self.reactor.seconds()
        self._not_before = 0.0  # no RESTART attempt before this time
        # The WAL header when the last RESTART finished: until a writer
        # starts the WAL again (writing a new header, and cutting the file)
        # there is nothing more to restart.
        self._restarted_header = None
        self._backoff = CHECKPOINT_INTERVAL
        #: The Deferred of the checkpoint running in the scan thread, if any.
        self.running = None
        #: RESTART checkpoints done and failed, and the longest time (s)
        #: this process's writes were held back for one.
        self.restarts = self.failures = 0
        self.longest_hold = 0.0

    def start(self):
        self._loop = LoopingCall(self.check)
        self._loop.clock = self.reactor
        self._loop.start(CHECK_INTERVAL, now=False).addErrback(
            lambda f: log.failure("WAL checkpoints stopped", f))

    def stop(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def header(self):
        """The WAL's checkpoint sequence number and salts (bytes 12-23 of
        its header, which a writer restarting the WAL writes anew), or b""
        when there is no WAL."""
        try:
            with open(self.path, "rb") as f:
                return f.read(24)[12:]
        except FileNotFoundError:
            return b""

    def size(self):
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0

    def check(self):
        """One look: a RESTART checkpoint if the WAL is past its bound (and
        has been written since the last one), a PASSIVE one if it is time;
        the Deferred of either (the loop waits for it), or None."""
        now = self.reactor.seconds()
        if (self.max_bytes and now >= self._not_before and self.size() > self.max_bytes
                and self.header() != self._restarted_header):
            return self._restart()
        if now - self._last_passive >= CHECKPOINT_INTERVAL:
            self._last_passive = now
            self.running = self.driver.scan(passive)
            self.running.addErrback(lambda f: log.failure("WAL checkpoint failed", f))
            self.running.addBoth(self._done)
            return self.running
        return None

    def _restart(self):
        # A PASSIVE pass first copies most of the WAL while writes go on, so
        # that they are held only while the RESTART copies the rest.
        self.running = self.driver.scan(passive)
        self.running.addCallback(self._hold_and_restart)
        self.running.addBoth(self._done)
        return self.running

    def _hold_and_restart(self, _):
        started = self.reactor.seconds()
        self.driver.hold()
        d = self.driver.scan(restart)
        d.addCallback(self._restarted, started)
        d.addErrback(self._failed, started)
        return d

    def _restarted(self, done, started):
        if done:  # read while the writes are still held
            self._restarted_header = self.header()
        self._resume(started)
        if done:
            self.restarts += 1
            self._last_passive = self.reactor.seconds()
            self._backoff = CHECKPOINT_INTERVAL
            return
        self.failures += 1
        if self._backoff == CHECKPOINT_INTERVAL:
            log.warn("WAL {path} is above {bound} bytes and cannot be restarted now "
                     "(a reader holds an old snapshot, or another process's checkpoint "
                     "runs); retrying with backoff", path=self.path, bound=self.max_bytes)
        self._not_before = self.reactor.seconds() + self._backoff
        self._backoff = min(self._backoff * 2, LONGEST_BACKOFF)

    def _failed(self, failure, started):
        self._resume(started)
        self.failures += 1
        self._not_before = self.reactor.seconds() + self._backoff
        self._backoff = min(self._backoff * 2, LONGEST_BACKOFF)
        log.failure("WAL checkpoint failed", failure)

    def _resume(self, started):
        self.longest_hold = max(self.longest_hold, self.reactor.seconds() - started)
        self.driver.resume()

    def _done(self, result):
        self.running = None
        return None
