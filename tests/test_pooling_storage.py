"""The pooled driver against the storage suites: the conformance suite, the
subscription suite and the job suite, each on a ``PooledDriver`` over two
sqlite-file pools with a sqlite catalog (queues spread over both by
weight), and the storage and job suites over a sqlite pool and a MongoDB
pool with a MongoDB catalog."""

from random import Random

from twisted.internet import defer, task
from twisted.python.failure import Failure
from twisted.trial import unittest

from marconi_tx import config
from marconi_tx.storage.mongodb.driver import MongoDriver
from marconi_tx.storage.pooling.driver import PooledDriver
from marconi_tx.storage.sqlite.driver import SqliteDriver
from tests.clock_reactor import ClockReactor
from tests.mongodb_server import fresh_database_uri
from tests.storage_conformance import StorageConformanceMixin
from tests.subscription_conformance import QUEUE, SubscriptionConformanceMixin
from tests.test_line_storage import JobConformanceMixin


def sqlite_pools(testcase, count=2):
    """``count`` pool URIs on fresh sqlite files of ``testcase``."""
    return [f"sqlite:{testcase.mktemp()}" for _ in range(count)]


def fired(d):
    """The result of the Deferred ``d``, which has fired (sqlite on a
    ``task.Clock`` answers at once)."""
    results = []
    d.addBoth(results.append)
    [result] = results
    if isinstance(result, Failure):
        result.raiseException()
    return result


def sqlite_catalog(path, clock, uris=(), weights=None, flavors=None):
    """An open catalog store on the sqlite file ``path``, with pools
    ``pool1``, ``pool2``, ... on ``uris`` (weight 1 and no flavor unless
    given)."""
    catalog = SqliteDriver(path, clock)
    fired(catalog.open())
    for n, uri in enumerate(uris):
        fired(catalog.pools.create(f"pool{n + 1}", uri, weights[n] if weights else 1,
                                   flavors[n] if flavors else None))
    return catalog


def pooled_config(**pooling):
    """The default settings, with ``[drivers:storage:pooling]`` ones
    given; sqlite commits each write at once, as the suites' own sqlite
    drivers do (group commit notifies at the end of the turn)."""
    overrides = [("drivers:storage:sqlite", "group_commit", "false"),
                 ("drivers:storage:mongodb", "pool_size", "3")]
    overrides += [("drivers:storage:pooling", name, str(value))
                  for name, value in pooling.items()]
    return config.load(None, overrides)


class PooledStorageMixin:
    """``make_driver`` of the suites: a PooledDriver over a sqlite catalog
    of two sqlite-file pools; the second driver is another process's, over
    the same catalog file and pools."""

    def pool_uris(self):
        return sqlite_pools(self)

    def make_driver(self, clock):
        self.catalog_path = self.mktemp()
        catalog = sqlite_catalog(self.catalog_path, clock, self.pool_uris())
        return PooledDriver(catalog, ClockReactor(clock), pooled_config(), Random(1))

    def make_second_driver(self, clock):
        return PooledDriver(sqlite_catalog(self.catalog_path, clock), ClockReactor(clock),
                            pooled_config(), Random(2))


class PooledConformanceTests(PooledStorageMixin, StorageConformanceMixin, unittest.TestCase):
    """The storage conformance suite through the pooled driver."""


class MixedPooledStorageMixin(PooledStorageMixin):
    """Pools on a sqlite file and on a fresh database of the MongoDB-wire
    server, the catalog on another (registered before the suite's
    ``setUp``: the MongoDB catalog answers over the network)."""

    def setUp(self):
        self.catalog_uri = fresh_database_uri(self)
        d = defer.ensureDeferred(self.register(sqlite_pools(self, 1) + [fresh_database_uri(self)]))
        d.addCallback(lambda _: super(MixedPooledStorageMixin, self).setUp())
        return d

    async def register(self, uris):
        catalog = self.mongo_catalog(task.Clock())
        await catalog.open()
        for n, uri in enumerate(uris):
            await catalog.pools.create(f"pool{n + 1}", uri, 1)
        await catalog.close()

    def mongo_catalog(self, clock):
        return MongoDriver(self.catalog_uri, clock, pooled_config().mongodb)

    def make_driver(self, clock):
        return PooledDriver(self.mongo_catalog(clock), ClockReactor(clock), pooled_config(),
                            Random(1))

    def make_second_driver(self, clock):
        return PooledDriver(self.mongo_catalog(clock), ClockReactor(clock), pooled_config(),
                            Random(2))


class MixedPooledConformanceTests(MixedPooledStorageMixin, StorageConformanceMixin,
                                  unittest.TestCase):
    """The storage conformance suite through the pooled driver, one pool on
    sqlite and one on MongoDB, the catalog on MongoDB."""


class PooledSubscriptionTests(PooledStorageMixin, SubscriptionConformanceMixin,
                              unittest.TestCase):
    """The subscription suite through the pooled driver."""

    async def test_advance_only_forward(self):
        """The cursor moves forward only. (A pooled cursor is a marker of
        its pool: the suite's version moves it by 7 and 3, which name no
        message there; this one moves it between real message ids.)"""
        sid = await self.subscribe()
        ids = await self.driver.messages.post(
            "p", QUEUE, [{"ttl": 60, "body": n} for n in range(3)], create=True)
        await self.subs.advance("p", QUEUE, sid, int(ids[2]))
        await self.subs.advance("p", QUEUE, sid, int(ids[1]))
        self.assertEqual((await self.subs.get("p", QUEUE, sid)).cursor, int(ids[2]))
        await self.subs.advance("p", QUEUE, "0" * 24, 99)  # unknown: no effect, no error


class PooledJobTests(PooledStorageMixin, JobConformanceMixin, unittest.TestCase):
    """The job suite through the pooled driver."""


class MixedPooledJobTests(MixedPooledStorageMixin, JobConformanceMixin, unittest.TestCase):
    """The job suite through the pooled driver, one pool on sqlite and one
    on MongoDB, the catalog on MongoDB."""
