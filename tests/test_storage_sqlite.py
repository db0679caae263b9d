"""The sqlite driver: the conformance suite on a file and in memory, plus
what only sqlite has (the file format, WAL, AUTOINCREMENT, query plans)."""

import sqlite3
import uuid

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from marconi_tx import errors
from marconi_tx.storage.records import DeadLetter, QueueStats
from marconi_tx.storage.sqlite import schema, wal
from marconi_tx.storage.sqlite.driver import SqliteDriver
from tests.clock_reactor import ClockReactor
from tests.storage_conformance import START, StorageConformanceMixin, ids_of

QUEUE = "fizbit"


class SqliteFileConformanceTests(StorageConformanceMixin, unittest.TestCase):
    """The conformance suite on a fresh sqlite file per test, stats in the
    scan thread; the second daemon is another connection to the same file."""

    def make_driver(self, clock):
        self.path = self.mktemp()
        return SqliteDriver(self.path, ClockReactor(clock))

    def make_second_driver(self, clock):
        return SqliteDriver(self.path, ClockReactor(clock))


class SqliteMemoryConformanceTests(StorageConformanceMixin, unittest.TestCase):
    """The conformance suite on a private in-memory database."""

    def make_driver(self, clock):
        return SqliteDriver(":memory:", clock)


class SqliteDriverTests(unittest.TestCase):
    """Behaviour specific to the sqlite engine."""

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(START)
        self.reactor = ClockReactor(self.clock)
        self.path = self.mktemp()
        self.driver = SqliteDriver(self.path, self.reactor)
        return self.open(self.driver)

    def open(self, driver):
        d = driver.open()
        d.addCallback(lambda _: self.addCleanup(driver.close))
        return d

    async def reopen(self):
        """Close the driver and open a new one on the same file."""
        await self.driver.close()
        self.driver = SqliteDriver(self.path, self.reactor)
        await self.open(self.driver)

    async def post(self, count, queue=QUEUE, ttl=120, driver=None):
        batch = [{"ttl": ttl, "body": n} for n in range(count)]
        return await (driver or self.driver).messages.post(None, queue, batch)

    def rows(self, table):
        return self.driver.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    async def test_database_survives_reopen(self):
        """Queues, metadata, messages and claims are all there after the file
        is closed and opened again."""
        await self.driver.queues.create(None, QUEUE, {"keep": [1, "two"]})
        ids = await self.post(3)
        claim = await self.driver.claims.create(None, QUEUE, 60, 60, 1)
        await self.reopen()
        self.assertEqual(await self.driver.queues.get_metadata(None, QUEUE), {"keep": [1, "two"]})
        listed = await self.driver.messages.list(None, QUEUE, include_claimed=True)
        self.assertEqual(ids_of(listed), ids)
        self.assertEqual([m.body for m in listed], [0, 1, 2])
        self.assertEqual(ids_of(await self.driver.claims.get(None, QUEUE, claim.id)), ids[:1])
        stats = await self.driver.queues.stats(None, QUEUE)
        self.assertEqual((stats.free, stats.claimed), (2, 1))

    async def test_wal_mode_on_files(self):
        """A database file is in WAL mode, for every later connection too; an
        in-memory database cannot be and is not."""
        self.assertEqual(self.driver.db.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        raw = sqlite3.connect(self.path)
        self.addCleanup(raw.close)
        self.assertEqual(raw.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        memory = SqliteDriver(":memory:", self.clock)
        await self.open(memory)
        self.assertEqual(memory.db.execute("PRAGMA journal_mode").fetchone()[0], "memory")

    async def test_message_ids_never_reused(self):
        """Ids keep growing after the newest message is deleted, after its
        queue is deleted and after a reopen (AUTOINCREMENT)."""
        await self.driver.queues.create(None, QUEUE)
        ids = await self.post(3)
        newest = int(ids[-1])
        await self.driver.messages.delete(None, QUEUE, ids[-1])
        [after_delete] = await self.post(1)
        self.assertGreater(int(after_delete), newest)
        await self.driver.queues.delete(None, QUEUE)
        self.assertEqual(self.rows("messages"), 0)
        await self.driver.queues.create(None, QUEUE)
        [after_queue_delete] = await self.post(1)
        self.assertGreater(int(after_queue_delete), int(after_delete))
        await self.driver.messages.delete(None, QUEUE, after_queue_delete)
        await self.reopen()
        [after_reopen] = await self.post(1)
        self.assertGreater(int(after_reopen), int(after_queue_delete))

    async def test_list_and_claim_use_queue_index(self):
        """Listing, claiming and popping walk the (queue_id, id) index and
        claim lookups the claim index: no full scan of messages and no
        temporary b-tree for ORDER BY (the claim's search for free messages
        has its own indexes: test_claim_search_skips_live_claims)."""
        for queue in (QUEUE, "other"):
            await self.driver.queues.create(None, queue)
            ids = await self.post(30, queue)
        statements = []
        self.driver.db.set_trace_callback(statements.append)
        try:
            await self.driver.messages.list(None, "other", marker=ids[3], limit=5)
            await self.driver.messages.list(None, "other", limit=5, include_claimed=True,
                                            client_uuid=uuid.uuid4())
            claim = await self.driver.claims.create(None, "other", 60, 60, 5)
            await self.driver.claims.get(None, "other", claim.id)
            await self.driver.messages.pop(None, "other", 2)
            await self.driver.claims.delete(None, "other", claim.id)
        finally:
            self.driver.db.set_trace_callback(None)
        walks = 0
        for statement in statements:
            if not statement.startswith(("SELECT", "UPDATE", "DELETE")):
                continue
            if "UNION ALL" in statement:
                continue
            plan = " | ".join(row[3] for row in
                              self.driver.db.execute("EXPLAIN QUERY PLAN " + statement))
            self.assertNotIn("SCAN messages", plan, statement)
            self.assertNotIn("TEMP B-TREE", plan, statement)
            if "FROM messages WHERE queue_id=" in statement and "ORDER BY id" in statement:
                walks += 1
                self.assertIn("INDEX messages_by_queue (queue_id=?", plan, statement)
            if "messages" in statement and "WHERE claim_id=" in statement:
                self.assertIn("INDEX messages_by_claim (claim_id=?)", plan, statement)
        self.assertGreaterEqual(walks, 3)

    async def test_v2_statements_use_indexes(self):
        """Queue count and filtered listings search the (project, name) index
        in name order, purge and dead-letter moves reach messages by queue or
        id: no full scan of either table and no temporary b-tree."""
        for name in ("a-x", "b", "c-x"):
            await self.driver.queues.create(None, name, {"owner": name})
        await self.driver.queues.create(None, QUEUE)
        await self.post(10)
        claim = await self.driver.claims.create(None, QUEUE, 60, 60, 5)
        await self.driver.claims.delete(None, QUEUE, claim.id)
        statements = []
        self.driver.db.set_trace_callback(statements.append)
        try:
            self.assertEqual(await self.driver.queues.count(None), 4)
            listed = await self.driver.queues.list(None, "a-x", 5, name="-x",
                                                   metadata={"owner": "c-x"})
            self.assertEqual([q.name for q in listed], ["c-x"])
            claim = await self.driver.claims.create(None, QUEUE, 60, 60, 3,
                                                    DeadLetter(1, "dlq"))
            self.assertIsNone(claim)
            self.assertEqual(await self.driver.messages.purge(None, QUEUE), 7)
        finally:
            self.driver.db.set_trace_callback(None)
        plans = []
        for statement in statements:
            # (The claim's search has its own test below.)
            if (statement.startswith(("SELECT", "UPDATE", "DELETE"))
                    and "UNION ALL" not in statement):
                plan = " | ".join(row[3] for row in
                                  self.driver.db.execute("EXPLAIN QUERY PLAN " + statement))
                plans.append(plan)
                self.assertNotIn("SCAN", plan, statement)
                self.assertNotIn("TEMP B-TREE", plan, statement)
        self.assertGreaterEqual(len(plans), 5)

    async def test_claim_search_skips_live_claims(self):
        """A claim finds free messages through the two partial indexes: the
        unclaimed in marker order, from the head of the queue's range, and
        only the expired range of the claimed (claim_expires in (0, now]),
        so live claims are never walked; the one sort is of the expired
        range (the union itself is not sorted)."""
        await self.driver.queues.create(None, QUEUE)
        await self.post(30)
        await self.driver.claims.create(None, QUEUE, 60, 60, 20)
        statements = []
        self.driver.db.set_trace_callback(statements.append)
        try:
            claim = await self.driver.claims.create(None, QUEUE, 60, 60, 5)
        finally:
            self.driver.db.set_trace_callback(None)
        self.assertEqual(len(claim.messages), 5)
        [search] = [s for s in statements if "UNION ALL" in s]
        plan = {row[0]: (row[1], row[3]) for row in
                self.driver.db.execute("EXPLAIN QUERY PLAN " + search)}
        searches = sorted(detail for _, detail in plan.values()
                          if "messages" in detail)
        self.assertEqual(searches, [
            "SEARCH messages USING INDEX messages_claimed "
            "(queue_id=? AND claim_expires>? AND claim_expires<?)",
            "SEARCH messages USING INDEX messages_unclaimed (queue_id=?)"])
        # One sort, beside the claimed side's search: of the expired range.
        [claimed] = [node for node, (_, detail) in plan.items()
                     if "messages_claimed" in detail]
        sorts = [parent for parent, detail in plan.values() if "TEMP B-TREE" in detail]
        self.assertEqual(sorts, [plan[claimed][0]])

    async def test_new_claim_indexes_added_at_open(self):
        """A database made before the claim indexes existed (unversioned,
        as every file then was) gets them when the driver opens it, and
        keeps its messages."""
        await self.driver.queues.create(None, QUEUE)
        ids = await self.post(3)
        await self.driver.close()
        db = sqlite3.connect(self.path)
        db.execute("DROP INDEX messages_unclaimed")
        db.execute("DROP INDEX messages_claimed")
        db.execute("PRAGMA user_version=0")
        db.commit()
        db.close()
        self.driver = SqliteDriver(self.path, self.reactor)
        await self.open(self.driver)
        names = {row[0] for row in self.driver.db.execute(
            "SELECT name FROM sqlite_master WHERE type='index'")}
        self.assertLessEqual({"messages_unclaimed", "messages_claimed"}, names)
        claim = await self.driver.claims.create(None, QUEUE, 60, 60, 10)
        self.assertEqual(ids_of(claim), ids)

    async def test_gc_removes_only_expired_rows(self):
        """Expired rows stay (hidden) until gc, which deletes exactly the
        expired messages and claims and counts them."""
        await self.driver.queues.create(None, QUEUE)
        await self.driver.queues.create(None, "other")
        await self.post(2, ttl=60)
        [long] = await self.post(1, "other", ttl=300)
        live = await self.driver.claims.create(None, "other", 60, 60, 1)
        self.clock.advance(59)
        self.assertEqual(await self.driver.gc(), 0)
        self.assertEqual((self.rows("messages"), self.rows("claims")), (3, 1))
        self.clock.advance(1)
        self.assertEqual((self.rows("messages"), self.rows("claims")), (3, 1))
        self.assertEqual(await self.driver.gc(), 3)
        self.assertEqual((self.rows("messages"), self.rows("claims")), (1, 0))
        self.assertEqual(self.driver.db.execute("SELECT id FROM messages").fetchone()[0],
                         int(long))
        self.assertEqual(live.messages[0].id, long)

    async def test_wal_checkpoints_run_in_the_scan_thread(self):
        """The writer never checkpoints inside a COMMIT (autocheckpoint off);
        each second a PASSIVE checkpoint runs on the scan thread instead."""
        import threading

        self.assertEqual(self.driver.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0], 0)
        await self.driver.queues.create(None, QUEUE)
        await self.post(20)
        seen = []
        scanning = self.driver._scanning
        scanning.set_trace_callback(lambda sql: seen.append((sql, threading.current_thread())))
        self.clock.advance(1)
        for _ in range(500):
            if seen:
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        scanning.set_trace_callback(None)
        sql, thread = seen[0]
        self.assertIn("wal_checkpoint(PASSIVE)", sql)
        self.assertIsNot(thread, threading.main_thread())

    async def wal_driver(self, max_bytes):
        """A driver on a new file whose WAL is bounded by ``max_bytes``."""
        driver = SqliteDriver(self.mktemp(), self.reactor, wal_max_bytes=max_bytes)
        await self.open(driver)
        await driver.queues.create(None, QUEUE)
        return driver

    async def wal_check(self, driver):
        """Let the driver's timer look at the WAL once, and wait for the
        checkpoint it started, if any."""
        self.clock.advance(wal.CHECK_INTERVAL)
        if driver.wal.running is not None:
            await driver.wal.running

    async def test_wal_stays_under_its_bound(self):
        """Under steady posting and consuming the WAL is restarted whenever a
        look finds it past its bound, and the next commit cuts the file back
        to the bound: it overshoots only by what is written between two
        looks; every message written before a restart is still there, after
        a reopen too."""
        bound = 128 * 1024
        driver = await self.wal_driver(bound)
        self.assertEqual(driver.db.execute("PRAGMA journal_size_limit").fetchone()[0], bound)
        await driver.queues.create(None, "kept")
        kept = []
        sizes = []
        for _ in range(60):
            kept += await self.post(1, "kept", driver=driver)
            sizes.append(driver.wal.size())
            await self.post(20, driver=driver)
            claim = await driver.claims.create(None, QUEUE, 60, 60, 20)
            for message in claim.messages:
                await driver.messages.delete(None, QUEUE, message.id, claim.id)
            await self.wal_check(driver)
        self.assertLessEqual(max(sizes[1:]), bound)  # those after a look
        self.assertGreater(driver.wal.restarts, 3)
        listed = await driver.messages.list(None, "kept", limit=100)
        self.assertEqual(ids_of(listed), kept)
        await driver.close()
        reopened = SqliteDriver(driver.path, self.reactor)
        await self.open(reopened)
        listed = await reopened.messages.list(None, "kept", limit=100)
        self.assertEqual(ids_of(listed), kept)
        self.assertEqual(await reopened.messages.list(None, QUEUE, include_claimed=True), [])

    async def test_writes_wait_for_a_restart_and_then_commit(self):
        """While a RESTART checkpoint runs the driver's writes stay queued
        (they would stop it from copying the whole WAL), then commit in
        order; reads go on meanwhile."""
        driver = await self.wal_driver(4096)
        first = await self.post(50, driver=driver)
        posted, listed = [], []
        hold = driver.hold

        def hold_then_write():
            hold()
            posted.append(driver.messages.post(None, QUEUE, [{"ttl": 60, "body": "late"}]))
            self.assertFalse(posted[0].called)
            listed.append(driver.messages.list(None, QUEUE, limit=100))

        driver.hold = hold_then_write
        self.clock.advance(wal.CHECK_INTERVAL)
        self.assertIsNotNone(driver.wal.running)
        await driver.wal.running
        self.assertEqual(len(await listed[0]), 50)
        [late] = await posted[0]
        self.assertEqual(driver.wal.restarts, 1)
        self.assertGreater(int(late), int(first[-1]))

    async def test_restarted_wal_waits_for_a_writer(self):
        """A restarted WAL keeps its size until the next commit: looks in
        between start no checkpoint and hold no writes. That commit cuts the
        file to its bound, not to nothing (later commits overwrite the
        file's blocks); once writes have filled it past its bound again it
        is restarted again."""
        bound = 64 * 1024
        driver = await self.wal_driver(bound)
        await self.post(50, driver=driver)
        await self.wal_check(driver)
        self.assertEqual(driver.wal.restarts, 1)
        grown = driver.wal.size()
        self.assertGreater(grown, bound)
        for _ in range(5):
            self.clock.advance(wal.CHECK_INTERVAL)
            self.assertIsNone(driver.wal.running)
            self.assertFalse(driver._held)
        self.assertEqual(driver.wal.size(), grown)
        await self.post(1, driver=driver)
        self.assertEqual(driver.wal.size(), bound)
        for _ in range(30):
            await self.post(1, driver=driver)
        self.assertGreater(driver.wal.size(), bound)
        await self.wal_check(driver)
        self.assertEqual(driver.wal.restarts, 2)

    async def test_long_reader_does_not_stall_writes(self):
        """A reader holding an old snapshot keeps the WAL from being
        restarted: the attempt gives up after a short wait, writes go on, and
        later looks back off instead of holding writes each time; once the
        reader is done the WAL is restarted, and the next commit cuts the
        file back."""
        driver = await self.wal_driver(4096)
        await self.post(10, driver=driver)
        reader = sqlite3.connect(driver.path, isolation_level=None)
        self.addCleanup(reader.close)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM messages").fetchone()
        await self.post(50, driver=driver)
        await self.wal_check(driver)
        self.assertEqual((driver.wal.restarts, driver.wal.failures), (0, 1))
        self.assertFalse(driver._held)
        self.assertLess(driver.wal.longest_hold, 1.0)
        await self.post(5, driver=driver)
        for _ in range(int(wal.CHECKPOINT_INTERVAL / wal.CHECK_INTERVAL) - 1):
            self.clock.advance(wal.CHECK_INTERVAL)
            self.assertFalse(driver._held)  # backing off: writes are not held
            if driver.wal.running is not None:  # a PASSIVE one
                await driver.wal.running
        reader.execute("COMMIT")
        self.clock.advance(wal.CHECKPOINT_INTERVAL)
        await self.wal_check(driver)
        self.assertEqual(driver.wal.restarts, 1)
        grown = driver.wal.size()
        await self.post(1, driver=driver)
        self.assertLess(driver.wal.size(), grown)
        self.assertEqual(len(await driver.messages.list(None, QUEUE, limit=100)), 66)

    async def test_wal_unbounded_when_zero(self):
        """wal_max_bytes 0 keeps the earlier behaviour: PASSIVE checkpoints
        only, no journal_size_limit, writes never held."""
        driver = await self.wal_driver(0)
        self.assertEqual(driver.db.execute("PRAGMA journal_size_limit").fetchone()[0], -1)
        await self.post(50, driver=driver)
        for _ in range(12):
            await self.wal_check(driver)
            self.assertFalse(driver._held)
        self.assertEqual(driver.wal.restarts + driver.wal.failures, 0)
        self.assertGreater(driver.wal.size(), 0)

    async def test_stats_scan_runs_off_the_reactor_thread(self):
        """stats, whose cost grows with the queue, runs its statements in a
        worker thread, so a deep queue's count never stalls the reactor."""
        import threading

        await self.driver.queues.create(None, QUEUE)
        await self.post(3)
        threads = set()
        scanning = self.driver._scanning
        scanning.set_trace_callback(lambda sql: threads.add(threading.current_thread()))
        stats = await self.driver.queues.stats(None, QUEUE)
        scanning.set_trace_callback(None)
        self.assertEqual(stats.total, 3)
        self.assertTrue(threads)
        self.assertNotIn(threading.main_thread(), threads)

    async def test_stats_consistent_while_another_daemon_deletes(self):
        """Stats read one snapshot: a second daemon deleting every message
        between stats' statements cannot make it fail or mix states."""
        await self.driver.queues.create(None, QUEUE)
        ids = await self.post(3)
        other = SqliteDriver(self.path, self.reactor)
        await self.open(other)
        deletes = []

        def delete_midway(statement):
            # Fires as the oldest-message query starts, after the counts.
            if "ORDER BY id ASC" in statement and not deletes:
                deletes.append(other.messages.bulk_delete(None, QUEUE, ids))

        scanning = self.driver._scanning  # stats reads on the scan connection
        scanning.set_trace_callback(delete_midway)
        try:
            stats = await self.driver.queues.stats(None, QUEUE)
        finally:
            scanning.set_trace_callback(None)
        self.assertEqual(len(deletes), 1)
        await deletes[0]
        self.assertEqual((stats.total, stats.oldest.id, stats.newest.id),
                         (3, ids[0], ids[-1]))
        self.assertEqual(await self.driver.queues.stats(None, QUEUE),
                         QueueStats(free=0, claimed=0, total=0))


#: The schema of the releases before versioning, frozen: their files have
#: user_version 0 and exactly these tables.
SCHEMA_BEFORE_VERSIONS = """
CREATE TABLE IF NOT EXISTS queues (
    id       INTEGER PRIMARY KEY,
    project  TEXT NOT NULL,
    name     TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created  INTEGER NOT NULL,
    UNIQUE (project, name)
);

CREATE TABLE IF NOT EXISTS messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_id      INTEGER NOT NULL,
    body          TEXT NOT NULL,
    ttl           INTEGER NOT NULL,
    created       INTEGER NOT NULL,
    expires       INTEGER NOT NULL,
    client_uuid   BLOB,
    claim_id      TEXT,
    claim_expires INTEGER NOT NULL DEFAULT 0,
    claim_count   INTEGER NOT NULL DEFAULT 0,
    priority      INTEGER NOT NULL,
    available_at  INTEGER NOT NULL,
    buried        INTEGER NOT NULL DEFAULT 0
);
-- listing and claiming walk a queue in marker order
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue_id, id);
-- gc deletes what has expired, at the cost of what it deletes
CREATE INDEX IF NOT EXISTS messages_by_expiry ON messages (expires);
CREATE INDEX IF NOT EXISTS messages_by_claim ON messages (claim_id)
    WHERE claim_id IS NOT NULL;
-- Claims find free messages without walking the claimed ones: the unclaimed
-- in marker order, and those whose claim has expired by claim expiry (see
-- claims.py); a message is in one of them at most. Only queries naming
-- these literal conditions can use them, so no other plan changes.
CREATE INDEX IF NOT EXISTS messages_unclaimed ON messages (queue_id, id)
    WHERE claim_expires = 0 AND buried = 0;
CREATE INDEX IF NOT EXISTS messages_claimed ON messages (queue_id, claim_expires)
    WHERE claim_expires > 0;

CREATE TABLE IF NOT EXISTS claims (
    id       TEXT PRIMARY KEY,
    queue_id INTEGER NOT NULL,
    ttl      INTEGER NOT NULL,
    expires  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS claims_by_expiry ON claims (expires);

CREATE TABLE IF NOT EXISTS jobs (
    id       INTEGER PRIMARY KEY,
    ttr      INTEGER NOT NULL,
    delay    INTEGER NOT NULL DEFAULT 0,
    timeouts INTEGER NOT NULL DEFAULT 0,
    releases INTEGER NOT NULL DEFAULT 0,
    buries   INTEGER NOT NULL DEFAULT 0,
    kicks    INTEGER NOT NULL DEFAULT 0
);
CREATE TRIGGER IF NOT EXISTS jobs_follow_messages AFTER DELETE ON messages
BEGIN
    DELETE FROM jobs WHERE id = old.id;
END;
-- reserve and peek-ready take the lowest (priority, id) unburied job
CREATE INDEX IF NOT EXISTS messages_by_priority ON messages (queue_id, priority, id)
    WHERE buried = 0;
-- 'buried' holds the burial order (1, 2, ...) per queue: peek-buried, kick
CREATE INDEX IF NOT EXISTS messages_buried ON messages (queue_id, buried)
    WHERE buried > 0;
"""


class SchemaVersionTests(unittest.TestCase):
    """The file's schema version (PRAGMA user_version): a new file and one
    of the releases before versioning are brought to the current version at
    open; a file of a newer version is refused."""

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(START)
        self.path = self.mktemp()

    async def open(self):
        driver = SqliteDriver(self.path, self.clock)
        await driver.open()
        self.addCleanup(driver.close)
        return driver

    def user_version(self):
        db = sqlite3.connect(self.path)
        try:
            return db.execute("PRAGMA user_version").fetchone()[0]
        finally:
            db.close()

    def unversioned_file(self, claim_id):
        """A file as the releases before versioning left it: their schema,
        a queue with metadata, three messages (the first under a claim, the
        third a job with its own row)."""
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA_BEFORE_VERSIONS)
        db.execute("INSERT INTO queues (project, name, metadata, created) "
                   "VALUES ('', ?, '{\"keep\": 1}', ?)", (QUEUE, START))
        for n in range(3):
            db.execute("INSERT INTO messages (queue_id, body, ttl, created, expires, "
                       "priority, available_at) VALUES (1, ?, 300, ?, ?, 1024, ?)",
                       (str(n), START, START + 300, START))
        db.execute("INSERT INTO claims (id, queue_id, ttl, expires) VALUES (?, 1, 60, ?)",
                   (claim_id, START + 60))
        db.execute("UPDATE messages SET claim_id=?, claim_expires=?, claim_count=1 "
                   "WHERE id=1", (claim_id, START + 60))
        db.execute("INSERT INTO jobs (id, ttr, releases) VALUES (3, 30, 2)")
        db.close()

    async def test_new_file_is_current(self):
        """A new file is made at the current version."""
        await self.open()
        self.assertEqual(self.user_version(), schema.VERSION)

    async def test_unversioned_file_is_upgraded_with_its_data(self):
        """A file of the releases before versioning (user_version 0) opens
        at the current version, its queue, messages, claim and job intact,
        and message ids go on after the last one."""
        claim_id = "c" * 24
        self.unversioned_file(claim_id)
        self.assertEqual(self.user_version(), 0)
        driver = await self.open()
        self.assertEqual(self.user_version(), schema.VERSION)
        self.assertEqual(await driver.queues.get_metadata(None, QUEUE), {"keep": 1})
        listed = await driver.messages.list(None, QUEUE, echo=True, include_claimed=True)
        self.assertEqual([(m.id, m.body, m.claimed) for m in listed],
                         [("1", 0, True), ("2", 1, False), ("3", 2, False)])
        claim = await driver.claims.get(None, QUEUE, claim_id)
        self.assertEqual((ids_of(claim), claim.ttl, claim.expires), (["1"], 60, START + 60))
        job = await driver.jobs.peek(None, 3)
        self.assertEqual((job.state, job.ttr, job.releases), ("ready", 30, 2))
        self.assertEqual(await driver.messages.post(None, QUEUE, [{"ttl": 60, "body": 3}]),
                         ["4"])

    async def test_newer_version_is_refused(self):
        """A file whose version is newer than the code knows does not open:
        StorageUnavailable with a one-line reason, the file left as it was."""
        driver = await self.open()
        await driver.close()
        db = sqlite3.connect(self.path)
        db.execute(f"PRAGMA user_version={schema.VERSION + 1}")
        db.commit()
        db.close()
        failure = await self.assertFailure(SqliteDriver(self.path, self.clock).open(),
                                           errors.StorageUnavailable)
        reason = str(failure)
        self.assertIn(f"schema version {schema.VERSION + 1} is newer", reason)
        self.assertNotIn("\n", reason)
        self.assertEqual(self.user_version(), schema.VERSION + 1)


class SqliteGroupCommitConformanceTests(StorageConformanceMixin, unittest.TestCase):
    """The whole suite with group commit on, as the daemon runs it, two
    drivers on one file included (the lock is held only while a batch runs)."""

    def make_driver(self, clock):
        self.path = self.mktemp()
        return SqliteDriver(self.path, ClockReactor(clock), group_commit=True)

    def make_second_driver(self, clock):
        return SqliteDriver(self.path, ClockReactor(clock), group_commit=True)


class GroupCommitTests(unittest.TestCase):
    """What group commit adds: one COMMIT per reactor turn, each request
    still all or nothing, acknowledged only once committed."""

    async def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(START)
        self.reactor = ClockReactor(self.clock)
        self.path = self.mktemp()
        self.driver = SqliteDriver(self.path, self.reactor, group_commit=True)
        await self.driver.open()
        self.addCleanup(self.driver.close)
        await self.driver.queues.create(None, QUEUE)

    def post(self, body, queue=QUEUE):
        return self.driver.messages.post(None, queue, [{"ttl": 60, "body": body}])

    async def test_one_commit_per_turn(self):
        """Five posts made in one reactor turn share one COMMIT, and none is
        acknowledged before it."""
        statements = []
        self.driver.db.set_trace_callback(statements.append)
        posts = [self.post(i) for i in range(5)]
        self.assertFalse(any(d.called for d in posts))
        ids = await defer.gatherResults(posts)
        self.driver.db.set_trace_callback(None)
        self.assertEqual(statements.count("COMMIT"), 1)
        self.assertEqual(len(set(i for [i] in ids)), 5)

    async def test_failed_request_rolls_back_alone(self):
        """A request failing inside a group leaves its neighbours committed."""
        good = self.post("kept")
        bad = self.driver.messages.delete(None, QUEUE, "1", claim_id="malformed")
        other = self.driver.messages.post(None, "missing", [{"ttl": 60, "body": 1}])
        [(_, [kept]), (_, bad), (_, other)] = await defer.DeferredList(
            [good, bad, other], consumeErrors=True)
        self.assertTrue(bad.check(errors.ClaimDoesNotExist))
        self.assertTrue(other.check(errors.QueueDoesNotExist))
        reopened = SqliteDriver(self.path, self.reactor)
        await reopened.open()
        self.addCleanup(reopened.close)
        message = await reopened.messages.get(None, QUEUE, kept)
        self.assertEqual(message.body, "kept")

    async def test_close_commits_the_open_group(self):
        """Closing the driver commits and acknowledges what the turn wrote."""
        d = self.post("last")
        await self.driver.close()
        [mid] = self.successResultOf(d)
        reopened = SqliteDriver(self.path, self.reactor)
        await reopened.open()
        self.addCleanup(reopened.close)
        self.assertEqual((await reopened.messages.get(None, QUEUE, mid)).body, "last")

    async def test_write_is_handed_its_transaction(self):
        """A write is called with the connection inside the batch's write
        transaction, the one every write of the turn shares."""
        seen = await defer.gatherResults([
            self.driver.submit(lambda db: (db, db.in_transaction)) for _ in range(2)])
        self.assertEqual(seen, [(self.driver.db, True)] * 2)

    async def test_queue_ids_follow_deletes_within_a_turn(self):
        """Writes of one turn see a queue deleted and created again by an
        earlier write of the same turn: a post after the delete fails, a
        post after the re-creation lands in the new queue."""
        before = self.post("before")
        delete = self.driver.queues.delete(None, QUEUE)
        orphan = self.post("orphan")
        create = self.driver.queues.create(None, QUEUE)
        after = self.post("after")
        [(_, _), (_, _), (_, orphan), (_, _), (_, [mid])] = await defer.DeferredList(
            [before, delete, orphan, create, after], consumeErrors=True)
        self.assertTrue(orphan.check(errors.QueueDoesNotExist))
        [message] = await self.driver.messages.list(None, QUEUE, echo=True)
        self.assertEqual((message.id, message.body), (mid, "after"))

    async def test_queue_ids_follow_a_rolled_back_write(self):
        """A queue created by a write that then fails is rolled back with it:
        a later write of the same turn does not find it."""
        def create_then_fail(db):
            db.execute("INSERT INTO queues (project, name, metadata, created) "
                       "VALUES ('', 'brief', '{}', 0)")
            self.assertIsNotNone(self.driver.queue_id(db, None, "brief"))
            raise RuntimeError("fails after creating")

        failed = self.driver.submit(create_then_fail)
        post = self.post("lost", queue="brief")
        [(_, failed), (_, post)] = await defer.DeferredList([failed, post],
                                                           consumeErrors=True)
        self.assertTrue(failed.check(RuntimeError))
        self.assertTrue(post.check(errors.QueueDoesNotExist))


    async def test_write_failing_after_changes_is_undone_alone(self):
        """A write failing after it changed rows is undone, with its change
        notification; its neighbours commit and their answers name what
        was stored."""
        told = []
        self.driver.events.subscribe(lambda project, queue: told.append(queue))

        def post_then_fail(db):
            db.execute("INSERT INTO messages (queue_id, body, ttl, created, expires, "
                       "priority, available_at) SELECT id, '\"undone\"', 60, 0, ?, 0, 0 "
                       "FROM queues", (START + 60,))
            self.driver.changed(None, "undone")
            raise RuntimeError("fails after changing rows")

        first = self.post("first")
        failed = self.driver.submit(post_then_fail)
        last = self.post("last")
        [(_, [first]), (_, failed), (_, [last])] = await defer.DeferredList(
            [first, failed, last], consumeErrors=True)
        self.assertTrue(failed.check(RuntimeError))
        listed = await self.driver.messages.list(None, QUEUE, echo=True)
        self.assertEqual([(m.id, m.body) for m in listed],
                         [(first, "first"), (last, "last")])
        await task.deferLater(reactor, 0, lambda: None)  # the batch's notifications
        self.assertEqual(told, [QUEUE, QUEUE])

    async def test_write_ending_the_transaction_fails_the_batch(self):
        """When a failing write leaves no transaction (sqlite rolls back by
        itself after some I/O errors), the whole batch fails and nothing of
        it is stored: a later write of the batch finds no transaction to
        write in and does not write outside one."""
        def rollback_then_fail(db):
            db.execute("ROLLBACK")
            raise RuntimeError("the transaction is gone")

        posts = [self.post("before"), self.driver.submit(rollback_then_fail),
                 self.post("after")]
        results = await defer.DeferredList(posts, consumeErrors=True)
        self.assertTrue(all(r.check(errors.StorageUnavailable) for _, r in results), results)
        self.assertEqual(await self.driver.messages.list(None, QUEUE, echo=True), [])

    async def test_write_failing_without_changes_runs_once(self):
        """A write failing before it changed anything (a missing queue)
        needs no savepoints: its batch runs once, without one a write."""
        statements = []
        self.driver.db.set_trace_callback(statements.append)
        posts = [self.post("a"), self.post("b", queue="missing"), self.post("c")]
        [(_, _), (_, missing), (_, _)] = await defer.DeferredList(posts, consumeErrors=True)
        self.driver.db.set_trace_callback(None)
        self.assertTrue(missing.check(errors.QueueDoesNotExist))
        self.assertEqual(sum(s.startswith("INSERT INTO messages") for s in statements), 2)
        self.assertNotIn("ROLLBACK TO batch", statements)
        self.assertNotIn("SAVEPOINT request", statements)


class LockWaitTests(unittest.TestCase):
    """Writes meeting a lock held by another process (here: another
    connection) wait in a queue retried by timers, never in the reactor."""

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(START)
        self.path = self.mktemp()
        self.driver = SqliteDriver(self.path, self.clock, busy_timeout=1.0)
        self.successResultOf(self.driver.open())
        self.addCleanup(self.driver.close)
        self.successResultOf(self.driver.queues.create(None, QUEUE))
        self.other = sqlite3.connect(self.path, isolation_level=None)
        self.addCleanup(self.other.close)

    def post(self, body):
        return self.driver.messages.post(None, QUEUE, [{"ttl": 60, "body": body}])

    def test_waiting_write_lets_reads_through(self):
        """While another connection holds the lock a post stays unanswered
        and reads are answered at once; once the lock is free the next retry
        commits the waiting posts, in the order they were made."""
        self.other.execute("BEGIN IMMEDIATE")
        first, second = self.post("a"), self.post("b")
        self.assertNoResult(first)
        self.assertEqual(self.successResultOf(self.driver.messages.list(None, QUEUE)), [])
        self.clock.advance(0.1)  # retries meet the lock again
        self.assertNoResult(second)
        self.other.execute("COMMIT")
        self.clock.advance(0.1)
        [a], [b] = self.successResultOf(first), self.successResultOf(second)
        self.assertLess(int(a), int(b))
        listed = self.successResultOf(self.driver.messages.list(None, QUEUE, echo=True))
        self.assertEqual([m.body for m in listed], ["a", "b"])

    def test_write_gives_up_after_busy_timeout(self):
        """A write still waiting after busy_timeout fails with
        StorageUnavailable and stores nothing; later writes succeed."""
        self.other.execute("BEGIN IMMEDIATE")
        waiting = self.post("late")
        self.clock.pump([0.1] * 11)
        self.failureResultOf(waiting, errors.StorageUnavailable)
        self.other.execute("ROLLBACK")
        [mid] = self.successResultOf(self.post("now"))
        listed = self.successResultOf(self.driver.messages.list(None, QUEUE, echo=True))
        self.assertEqual([(m.id, m.body) for m in listed], [(mid, "now")])

    def test_consumers_are_told_after_the_commit(self):
        """A change notification comes once the write is committed: another
        connection sees the new message when the listener runs."""
        seen = []
        count = "SELECT count(*) FROM messages"
        self.driver.events.subscribe(
            lambda project, queue: seen.append(self.other.execute(count).fetchone()[0]))
        self.successResultOf(self.post("x"))
        self.assertEqual(seen, [1])
