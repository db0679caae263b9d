"""The HTTP API v1.1 over the sqlite driver (a file) and MongoDB."""

from twisted.trial import unittest

from marconi_tx.storage.sqlite.driver import SqliteDriver
from tests.http_v1_1_tests import HttpV1_1Mixin


class HttpV1_1OnSqliteFileTests(HttpV1_1Mixin, unittest.TestCase):
    waits = False  # every answer is there before the request returns

    def make_driver(self, clock):
        return SqliteDriver(self.mktemp() + ".db", clock)


class HttpV1_1OnMongoTests(HttpV1_1Mixin, unittest.TestCase):
    """The same answers over MongoDB (a real MongoDB-wire server, answering
    on the real reactor)."""

    def make_driver(self, clock):
        from marconi_tx import config
        from marconi_tx.storage.mongodb.driver import MongoDriver
        from tests.mongodb_server import fresh_database_uri

        return MongoDriver(fresh_database_uri(self), clock, config.load().mongodb)
