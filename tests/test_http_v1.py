"""The HTTP API v1 over the sqlite driver (file and in-memory)."""

from twisted.trial import unittest

from marconi_tx.storage.sqlite.driver import SqliteDriver
from tests.http_v1_tests import HttpV1Mixin


class HttpV1OnSqliteFileTests(HttpV1Mixin, unittest.TestCase):
    def make_driver(self, clock):
        return SqliteDriver(self.mktemp() + ".db", clock)


class HttpV1OnSqliteGroupCommitTests(HttpV1Mixin, unittest.TestCase):
    """As the daemon runs it: writes of one reactor turn commit together."""

    def make_driver(self, clock):
        return SqliteDriver(self.mktemp() + ".db", clock, group_commit=True)


class HttpV1OnSqliteMemoryTests(HttpV1Mixin, unittest.TestCase):
    def make_driver(self, clock):
        return SqliteDriver(":memory:", clock)


class HttpV1OnMongoTests(HttpV1Mixin, unittest.TestCase):
    """The same API answers over MongoDB (a real MongoDB-wire server)."""

    def make_driver(self, clock):
        from marconi_tx import config
        from marconi_tx.storage.mongodb.driver import MongoDriver
        from tests.mongodb_server import fresh_database_uri

        return MongoDriver(fresh_database_uri(self), clock, config.load().mongodb)
