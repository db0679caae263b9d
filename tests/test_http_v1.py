"""The HTTP API v1 over the sqlite driver (file and in-memory)."""

from twisted.trial import unittest

from marconi_tx.storage.sqlite.driver import SqliteDriver
from tests.http_v1_tests import HttpV1Mixin


class HttpV1OnSqliteFileTests(HttpV1Mixin, unittest.TestCase):
    def make_driver(self, clock):
        return SqliteDriver(self.mktemp() + ".db", clock)


class HttpV1OnSqliteMemoryTests(HttpV1Mixin, unittest.TestCase):
    def make_driver(self, clock):
        return SqliteDriver(":memory:", clock)
