"""The HTTP API suites (v1, v1.1, v2 and v2 subscriptions) and webhook
delivery over a ``PooledDriver`` of two sqlite-file pools: the answers are
those of one driver, whichever pool each queue is in."""

from random import Random

from twisted.trial import unittest

from marconi_tx.storage.pooling.driver import PooledDriver
from tests.http_subscriptions_tests import HttpSubscriptionsMixin
from tests.http_support import ApiOverDriverMixin
from tests.http_v1_1_tests import HttpV1_1Mixin
from tests.http_v1_tests import HttpV1Mixin
from tests.http_v2_tests import PATCH_TYPE, HttpV2Mixin
from tests.test_notifier import DeliveryMixin
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


class PoolRulesOverHttpTests(ApiOverDriverMixin, unittest.TestCase):
    """What pooling refuses, as the v2 API answers it: JSON errors, never a
    500."""

    waits = False

    def make_driver(self, clock):
        self.catalog = sqlite_catalog(self.mktemp(), clock, sqlite_pools(self))
        return PooledDriver(self.catalog, clock, pooled_config(), Random(1))

    def call(self, method, path, body=None):
        return self.api.request(method, path, body, project="p")

    async def test_dead_letter_queue_in_another_pool_is_400(self):
        """Naming as dead-letter queue a queue of another pool is 400 with a
        JSON title and description; one of the same pool is accepted."""
        await self.catalog.catalog.insert("p", "src", "pool1")
        await self.catalog.catalog.insert("p", "far", "pool2")
        await self.catalog.catalog.insert("p", "near", "pool1")
        self.assertEqual((await self.call("PUT", "/v2/queues/src")).code, 201)
        answer = await self.call("PUT", "/v2/queues/src2", {"_dead_letter_queue": "far"})
        self.assertEqual(answer.code, 201)  # a new queue goes to its DLQ's pool
        answer = await self.api.request(
            "PATCH", "/v2/queues/src", [{"op": "add", "path": "/metadata/_dead_letter_queue",
                                         "value": "far"}],
            headers={"Content-Type": PATCH_TYPE}, project="p")
        self.assertEqual(answer.code, 400)
        self.assertEqual(set(answer.json), {"title", "description"})
        self.assertIn("pool", answer.json["description"])
        answer = await self.api.request(
            "PATCH", "/v2/queues/src", [{"op": "add", "path": "/metadata/_dead_letter_queue",
                                         "value": "near"}],
            headers={"Content-Type": PATCH_TYPE}, project="p")
        self.assertEqual(answer.code, 200)

    async def test_no_pool_available_is_503(self):
        """With every pool at weight 0, creating a queue or posting to a new
        one is 503 with Retry-After and a JSON body."""
        for name in ("pool1", "pool2"):
            await self.catalog.pools.update(name, {"weight": 0})
        await self.driver.pool_set.refresh()
        for method, path, body in (("PUT", "/v2/queues/q", None),
                                   ("POST", "/v2/queues/q/messages",
                                    {"messages": [{"body": 1}]})):
            answer = await self.call(method, path, body)
            self.assertEqual(answer.code, 503, path)
            self.assertIn("retry-after", answer.headers)
            self.assertEqual(set(answer.json), {"title", "description"})


    async def test_unknown_flavor_is_400_on_every_version(self):
        """A queue created with a ``_flavor`` that does not exist (or is not
        a name) is 400 over v1.1, which does not check it before placement
        (v1 creates queues without metadata), as over v2; nothing is
        placed."""
        for version, flavor in (("v1.1", "nope"), ("v1.1", 5), ("v2", "nope")):
            answer = await self.api.request("PUT", f"/{version}/queues/q",
                                            {"_flavor": flavor}, project="p")
            self.assertEqual(answer.code, 400, (version, flavor))
            self.assertEqual(set(answer.json), {"title", "description"})
        self.assertIsNone(await self.catalog.catalog.lookup("p", "q"))

    async def test_flavor_without_pool_is_503(self):
        """A queue of a flavor that exists but has no pool able to take it
        is 503 (the operator's to fix), not 400."""
        await self.catalog.flavors.create("gold")
        answer = await self.api.request("PUT", "/v1.1/queues/q", {"_flavor": "gold"},
                                        project="p")
        self.assertEqual(answer.code, 503)


class PooledDeliveryTests(DeliveryMixin, unittest.TestCase):
    """Webhook delivery (the notifier's sweep, cursors) from two pools."""

    def make_driver(self, reactor):
        catalog = sqlite_catalog(self.mktemp(), reactor.clock, sqlite_pools(self))
        return PooledDriver(catalog, reactor, pooled_config(), Random(1))
