"""The catalog stores (pools, flavors, catalog): the conformance suite on a
sqlite file, the MongoDB-wire server and the memory driver; sqlite's schema
upgrade to version 3."""

import sqlite3

from twisted.internet import task
from twisted.trial import unittest

from marconi_tx.storage.sqlite import schema
from marconi_tx.storage.sqlite.driver import SqliteDriver
from marconi_tx.testing import MemoryDriver
from tests.clock_reactor import ClockReactor
from tests.pool_store_conformance import URI, PoolStoreConformanceMixin
from tests.storage_conformance import START


class SqlitePoolStoreTests(PoolStoreConformanceMixin, unittest.TestCase):
    """The suite on a fresh sqlite file; the second daemon is a second
    driver on the same file."""

    def make_driver(self, clock):
        self.path = self.mktemp()
        return SqliteDriver(self.path, ClockReactor(clock))

    def make_second_driver(self, clock):
        return SqliteDriver(self.path, ClockReactor(clock))


class SqliteGroupCommitPoolStoreTests(SqlitePoolStoreTests):
    """The suite with group commit on, as the daemon runs it: writes of one
    turn share a transaction."""

    def make_driver(self, clock):
        self.path = self.mktemp()
        return SqliteDriver(self.path, ClockReactor(clock), group_commit=True)

    def make_second_driver(self, clock):
        return SqliteDriver(self.path, ClockReactor(clock), group_commit=True)


class MemoryPoolStoreTests(PoolStoreConformanceMixin, unittest.TestCase):
    """The suite on the testing MemoryDriver."""

    def make_driver(self, clock):
        return MemoryDriver(clock)


class SchemaUpgradeTests(unittest.TestCase):
    """A version 2 file (before pools) is upgraded to version 3 with its
    data, and then holds the catalog."""

    async def test_version_2_file_gains_the_catalog(self):
        """Opening a version 2 file makes it version 3: its queues and
        subscriptions kept, pools numbered from 1, the catalog working."""
        path = self.mktemp()
        db = sqlite3.connect(path, isolation_level=None)
        for script in schema.UPGRADES[:2]:
            for statement in schema.statements(script):
                db.execute(statement)
        db.execute("PRAGMA user_version=2")
        db.execute("INSERT INTO queues (project, name, metadata, created) "
                   "VALUES ('p', 'q', '{\"k\":1}', ?)", (START,))
        db.close()
        clock = task.Clock()
        clock.advance(START)
        driver = SqliteDriver(path, clock)
        await driver.open()
        self.addCleanup(driver.close)
        check = sqlite3.connect(path)
        self.assertEqual(check.execute("PRAGMA user_version").fetchone()[0], 3)
        check.close()
        self.assertEqual(await driver.queues.get_metadata("p", "q"), {"k": 1})
        self.assertEqual((await driver.pools.create("a", URI, 1)).number, 1)
        self.assertEqual(await driver.catalog.insert("p", "q", "a"), "a")

    def test_version_3_can_be_applied_again(self):
        """Running version 3's statements on a version 3 database changes
        nothing: an upgrade interrupted after some statements by another
        process's is harmless, and the pool counter is not reset."""
        db = sqlite3.connect(":memory:", isolation_level=None)
        for script in schema.UPGRADES:
            for statement in schema.statements(script):
                db.execute(statement)
        db.execute("UPDATE pool_numbers SET last=7")
        for statement in schema.statements(schema.VERSION_3):
            db.execute(statement)
        self.assertEqual(db.execute("SELECT id, last FROM pool_numbers").fetchall(), [(1, 7)])
        db.close()

    def test_one_entry_per_queue_of_the_none_project(self):
        """The catalog's primary key holds for the None project (stored as
        ''): a second row for the same queue is refused by the engine."""
        db = sqlite3.connect(":memory:", isolation_level=None)
        for script in schema.UPGRADES:
            for statement in schema.statements(script):
                db.execute(statement)
        db.execute("INSERT INTO catalog (project, queue, pool) VALUES ('', 'q', 'a')")
        self.assertRaises(sqlite3.IntegrityError, db.execute,
                          "INSERT INTO catalog (project, queue, pool) VALUES ('', 'q', 'b')")
        db.close()
