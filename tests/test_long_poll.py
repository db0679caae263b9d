"""Long-poll claims over the sqlite driver (a file) and MongoDB."""

from twisted.trial import unittest

from marconi_tx.storage.sqlite.driver import SqliteDriver
from tests.long_poll_tests import LongPollMixin


class LongPollOnSqliteFileTests(LongPollMixin, unittest.TestCase):
    waits = False  # every answer is there before the request returns

    def make_driver(self, clock):
        return SqliteDriver(self.mktemp() + ".db", clock)


class LongPollOnMongoTests(LongPollMixin, unittest.TestCase):
    """The same over MongoDB (a real MongoDB-wire server, answering on the
    real reactor)."""

    def make_driver(self, clock):
        from marconi_tx import config
        from marconi_tx.storage.mongodb.driver import MongoDriver
        from tests.mongodb_server import fresh_database_uri

        return MongoDriver(fresh_database_uri(self), clock, config.load().mongodb)
