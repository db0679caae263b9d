"""The client library's v2 pools and flavors, in-process against the real
server resource over a ``PooledDriver`` (a ``MemoryDriver`` catalog,
sqlite-file pools) with admin_mode and pooling on."""

import os

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from marconi_tx import config
from marconi_tx.client import (
    BadRequest,
    Conflict,
    FlavorNotFound,
    PoolInUse,
    PoolNotFound,
    UnsupportedByAPI,
)
from marconi_tx.storage.pooling.driver import PooledDriver
from marconi_tx.testing import MemoryDriver
from tests.test_client_support import ClientServer

SETTINGS = (("drivers", "admin_mode", "true"), ("drivers", "pooling", "true"),
            ("drivers:storage:sqlite", "group_commit", "false"))


class PooledServerMixin:
    """``self.server``: a StubServer over a PooledDriver with no pool yet
    (``self.catalog`` its catalog); ``self.client`` a v2 client of it;
    ``self.uri(name)`` a fresh sqlite file for a pool."""

    def setUp(self):
        self.clock = Clock()
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.catalog = MemoryDriver(self.clock)
        settings = config.load(overrides=list(SETTINGS))
        driver = PooledDriver(self.catalog, self.clock, settings)
        self.successResultOf(driver.open())
        self.addCleanup(driver.close)
        self.server = ClientServer(driver, self.clock, settings, "v2")
        self.client = self.server.client()

    def uri(self, name):
        return f"sqlite:{os.path.join(self.dir, name)}.db"

    def pool(self, name, weight=1, **kwargs):
        return self.successResultOf(self.client.create_pool(name, self.uri(name), weight,
                                                            **kwargs))


class ClientPoolTests(PooledServerMixin, SynchronousTestCase):
    def test_create_get_list(self):
        """create_pool fires with the pool as stored (options included);
        get_pool reads it; pools() lists every pool across pages, with
        options only when detailed."""
        made = self.pool("a", 5, options={"tier": "ssd"})
        self.assertEqual(made.as_dict(), {"name": "a", "uri": self.uri("a"), "weight": 5,
                                          "flavor": None, "options": {"tier": "ssd"}})
        for n in range(22):
            self.pool(f"p{n:02d}")
        got = self.successResultOf(self.client.get_pool("a"))
        self.assertEqual(got.as_dict(), made.as_dict())
        listed = self.successResultOf(self.client.pools().collect())
        self.assertEqual([p.name for p in listed], ["a"] + [f"p{n:02d}" for n in range(22)])
        self.assertIsNone(listed[0].options)
        detailed = self.successResultOf(self.client.pools(limit=2, detailed=True).collect())
        self.assertEqual([p.options for p in detailed], [{"tier": "ssd"}, {}])

    def test_errors(self):
        """A second create is Conflict, a bad body BadRequest, a missing
        pool PoolNotFound; deleting a pool that holds a queue PoolInUse."""
        self.pool("a")
        self.failureResultOf(self.client.create_pool("a", self.uri("b"), 1), Conflict)
        self.failureResultOf(self.client.create_pool("b", "redis://x", 1), BadRequest)
        self.failureResultOf(self.client.get_pool("b"), PoolNotFound)
        self.successResultOf(self.client.create_queue("jobs"))
        pool = self.successResultOf(self.client.get_pool("a"))
        self.failureResultOf(pool.delete(), PoolInUse)

    def test_update_and_delete(self):
        """Pool.update changes what it is given and reads the pool back
        (no_flavor detaches it); Pool.delete removes it."""
        pool = self.pool("a", flavor="gold", options={"k": 1})
        self.successResultOf(pool.update(weight=9, options={"k": 2}))
        self.assertEqual((pool.weight, pool.flavor, pool.options), (9, "gold", {"k": 2}))
        self.successResultOf(pool.update(no_flavor=True))
        self.assertIsNone(self.successResultOf(self.client.get_pool("a")).flavor)
        self.failureResultOf(pool.update(), BadRequest)
        self.successResultOf(pool.delete())
        self.failureResultOf(self.client.get_pool("a"), PoolNotFound)

    def test_v1_client(self):
        """Over v1 the calls fail before anything is sent."""
        client = self.server.client(api="v1")
        self.failureResultOf(client.create_pool("a", self.uri("a"), 1), UnsupportedByAPI)
        self.failureResultOf(client.pools().collect(), UnsupportedByAPI)
        self.failureResultOf(client.get_flavor("a"), UnsupportedByAPI)


class ClientFlavorTests(PooledServerMixin, SynchronousTestCase):
    def test_flavor_lifecycle(self):
        """create_flavor fires with the flavor (its pools, capabilities);
        flavors() lists them; Flavor.update replaces its pools (dropped
        ones leave it); Flavor.delete removes it."""
        for name in ("a", "b", "c"):
            self.pool(name)
        flavor = self.successResultOf(self.client.create_flavor("gold", ["a", "b"],
                                                                {"FAST": True}))
        self.assertEqual(flavor.as_dict(), {
            "name": "gold", "pool_list": ["a", "b"],
            "capabilities": ["FIFO", "CLAIMS", "DURABILITY", "AOD", "FAST"]})
        listed = self.successResultOf(self.client.flavors(detailed=True).collect())
        self.assertEqual([f.as_dict() for f in listed], [flavor.as_dict()])
        self.successResultOf(flavor.update(["c"]))
        self.assertEqual(flavor.pool_list, ["c"])
        self.assertIsNone(self.successResultOf(self.client.get_pool("a")).flavor)
        self.failureResultOf(self.client.create_flavor("gold", ["a"]), Conflict)
        self.failureResultOf(self.client.create_flavor("silver", ["nope"]), BadRequest)
        self.successResultOf(flavor.delete())
        self.failureResultOf(self.client.get_flavor("gold"), FlavorNotFound)

