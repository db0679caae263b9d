"""The v2 subscription routes over a sqlite file and MongoDB."""

from twisted.trial import unittest

from marconi_tx import config
from marconi_tx.storage.mongodb.driver import MongoDriver
from marconi_tx.storage.sqlite.driver import SqliteDriver
from tests.http_subscriptions_tests import HttpSubscriptionsMixin
from tests.mongodb_server import fresh_database_uri


class SubscriptionsOnSqliteTests(HttpSubscriptionsMixin, unittest.TestCase):
    waits = False  # every answer is there before the request returns

    def make_driver(self, clock):
        return SqliteDriver(self.mktemp() + ".db", clock)


class SubscriptionsOnMongoTests(HttpSubscriptionsMixin, unittest.TestCase):
    """The same answers over the MongoDB-wire server."""

    def make_driver(self, clock):
        return MongoDriver(fresh_database_uri(self), clock, config.load().mongodb)
