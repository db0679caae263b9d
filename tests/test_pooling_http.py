"""The HTTP API suites (v1, v1.1, v2 and v2 subscriptions) over a
``PooledDriver`` of two sqlite-file pools: the answers are those of one
driver, whichever pool each queue is in."""

from random import Random

from twisted.trial import unittest

from marconi_tx.storage.pooling.driver import PooledDriver
from tests.http_subscriptions_tests import HttpSubscriptionsMixin
from tests.http_v1_1_tests import HttpV1_1Mixin
from tests.http_v1_tests import HttpV1Mixin
from tests.http_v2_tests import HttpV2Mixin
from tests.test_pooling_storage import pooled_config, sqlite_catalog, sqlite_pools


class PooledHttpMixin:
    waits = False  # sqlite answers before the request returns

    def make_driver(self, clock):
        catalog = sqlite_catalog(self.mktemp(), clock, sqlite_pools(self))
        return PooledDriver(catalog, clock, pooled_config(), Random(1))


class HttpV1OnPoolsTests(PooledHttpMixin, HttpV1Mixin, unittest.TestCase):
    """The v1 suite over two pools."""


class HttpV1_1OnPoolsTests(PooledHttpMixin, HttpV1_1Mixin, unittest.TestCase):
    """The v1.1 suite over two pools."""


class HttpV2OnPoolsTests(PooledHttpMixin, HttpV2Mixin, unittest.TestCase):
    """The v2 suite over two pools (lazy queues, dead-letter moves)."""


class HttpSubscriptionsOnPoolsTests(PooledHttpMixin, HttpSubscriptionsMixin,
                                    unittest.TestCase):
    """The v2 subscription suite over two pools."""
