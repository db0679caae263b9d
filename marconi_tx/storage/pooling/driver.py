"""``PooledDriver``: the storage of a deployment with ``[drivers] pooling``
on, every queue in one pool.

Each call on a queue goes to the queue's pool: the route comes from a
bounded cache of the catalog (``routes``), else from the catalog, and a call
that may create the queue (``queues.create``, ``messages.post`` with
``create``, ``jobs.put``, ``subscriptions.create``) places it first:
``placement`` chooses a pool and ``catalog.insert`` records it, so that of
two processes placing one queue at once both use the pool that won. A
queue with no route does not exist. Calls that span queues (listings,
counts, ``gc``, ``subscriptions.scan``) ask every pool and merge; ids leaving
the driver name their pool (``ids``), so calls by id alone find it.
"""

from random import Random

from zope.interface import implementer

from marconi_tx import errors, storage
from marconi_tx.config import ConfigError
from marconi_tx.deferreds import returns_deferred
from marconi_tx.queue_attributes import DEAD_LETTER_QUEUE
from marconi_tx.storage.events import QueueEvents
from marconi_tx.storage.interfaces import IPooledDriver
from marconi_tx.storage.pooling import placement
from marconi_tx.storage.pooling.jobs import JobController
from marconi_tx.storage.pooling.messages import ClaimController, MessageController
from marconi_tx.storage.pooling.pools import PoolSet, RefreshingFlavors, RefreshingPools
from marconi_tx.storage.pooling.queues import QueueController
from marconi_tx.storage.pooling.routes import RouteCache
from marconi_tx.storage.pooling.subscriptions import SubscriptionController


@implementer(IPooledDriver)
class PooledDriver:
    """
    The pooled driver over ``catalog``, the ``IPoolingStorage`` holding the
    pools, flavors and catalog (opened and closed with this driver). Pools'
    drivers are made from their URIs with the engine settings of ``config``
    and ``reactor``; ``random`` (a ``random.Random``) draws placements.
    """

    def __init__(self, catalog, reactor, config, random=None):
        self.catalog_storage = catalog
        self.catalog = catalog.catalog
        self.reactor = reactor
        self.config = config
        self.random = random or Random()
        self.events = QueueEvents()
        self.routes = RouteCache(config.pooling.route_cache_size)
        self.pool_set = PoolSet(catalog.pools, reactor, config, self.events.notify,
                                self.routes.forget_pool, config.pooling.refresh_interval)
        self.pools = RefreshingPools(catalog.pools, self.pool_set)
        self.flavors = RefreshingFlavors(catalog.flavors, self.pool_set)
        self.queues = QueueController(self)
        self.messages = MessageController(self)
        self.claims = ClaimController(self)
        self.jobs = JobController(self)
        self.subscriptions = SubscriptionController(self)

    # -- routing -----------------------------------------------------------

    async def route(self, project, queue):
        """The open pool (``OpenPool``) of the queue, or None if the queue
        was never placed."""
        name = self.routes.get(project, queue)
        if name is not None:  # the usual case: known, open
            pool = self.pool_set.by_name.get(name)
            if pool is not None and pool.driver is not None:
                return pool
        else:
            name = await self.catalog.lookup(project, queue)
            if name is None:
                return None
        pool = await self.pool_set.get(name)
        if pool is None:  # removed, with its entries, since
            return None
        self.routes.put(project, queue, name)
        return await pool.ready()

    async def place(self, project, queue, flavor=None, near=None):
        """
        The open pool of the queue, placing it first if it has none: in the
        pool ``near`` (an ``OpenPool``) if given, else in one chosen by
        weight among those of ``flavor``.

        @raise errors.NoPoolAvailable: no pool can take it.
        """
        pool = await self.route(project, queue)
        if pool is not None:
            return pool
        if near is None:
            near = await self._choose(flavor)
        name = await self.catalog.insert(project, queue, near.name)
        pool = near if name == near.name else await self.pool_set.get(name)
        if pool is None:  # the winner's pool was removed since
            raise errors.NoPoolAvailable(f"pool {name!r} of queue {queue!r} was removed")
        self.routes.put(project, queue, name)
        return await pool.ready()

    async def _choose(self, flavor):
        records = [pool.record for pool in self.pool_set.all()]
        if not placement.candidates(records, flavor):
            await self.pool_set.refresh()  # a pool may have been added since
            records = [pool.record for pool in self.pool_set.all()]
            if flavor is not None and not placement.candidates(records, flavor):
                await self._check_flavor(flavor)
        return self.pool_set.by_name[placement.choose(records, flavor, self.random).name]

    async def _check_flavor(self, flavor):
        """A flavor that does not exist is the client's mistake (400), on
        every API version (v2 checks it before, v1 and v1.1 do not)."""
        if isinstance(flavor, str):
            try:
                await self.flavors.get(flavor)
                return  # it exists: no pool of it can take a queue (503)
            except errors.FlavorDoesNotExist:
                pass
        raise errors.ValidationError(f"flavor {flavor!r} does not exist",
                                     title="Invalid queue metadata")

    async def place_dead_letter_queue(self, project, source, pool, target):
        """
        Place ``target``, the dead-letter queue of ``source`` (None: it has
        none), in ``pool``, the pool of ``source``: messages move inside one
        pool. ValidationError if it lives in another pool already.
        """
        if not isinstance(target, str) or not target:
            return
        name = self.routes.get(project, target) or await self.catalog.insert(
            project, target, pool.name)
        if name != pool.name:
            raise errors.ValidationError(
                f"queue {target!r} is in pool {name!r} and {source!r} in pool {pool.name!r}: "
                "a dead-letter queue must be in the pool of its source queue",
                title="Dead-letter queue in another pool")
        self.routes.put(project, target, name)

    async def dead_letter_home(self, project, metadata):
        """Where a new queue with ``metadata`` goes first: the pool of its
        dead-letter queue when that is placed (and may take new queues of
        the queue's flavor), else None."""
        target = (metadata or {}).get(DEAD_LETTER_QUEUE)
        if not isinstance(target, str) or not target:
            return None
        pool = await self.route(project, target)
        flavor = (metadata or {}).get(placement.FLAVOR)
        if pool is None or not placement.candidates([pool.record], flavor):
            return None
        return pool

    async def every_pool(self):
        """Every pool, open, by name (reading the catalog when none is
        known yet)."""
        if not self.pool_set.by_name:
            await self.pool_set.refresh()
        return [await pool.ready() for pool in self.pool_set.all()]

    # -- IStorageDriver ----------------------------------------------------

    @returns_deferred
    async def open(self):
        await self.catalog_storage.open()
        await self.pool_set.refresh()
        self.pool_set.start()

    @returns_deferred
    async def close(self):
        await self.pool_set.close()
        await self.catalog_storage.close()

    @returns_deferred
    async def is_alive(self):
        if not await self.catalog_storage.is_alive():
            return False
        return all((await self.pool_health()).values())

    @returns_deferred
    async def gc(self):
        # A pool that is down does not keep the others from being collected;
        # its outage is still reported, once they have been.
        if not self.pool_set.by_name:
            await self.pool_set.refresh()
        removed, outage = 0, None
        for pool in self.pool_set.all():
            try:
                removed += await (await pool.ready()).driver.gc()
            except errors.StorageUnavailable as e:
                outage = outage or e
        if outage is not None:
            raise outage
        return removed

    # -- IPooledDriver -----------------------------------------------------

    @returns_deferred
    async def check_uri(self, uri):
        if uri == "sqlite::memory:":
            raise errors.ValidationError(
                "a pool must be storage every process shares, not sqlite::memory:",
                title="Invalid pool URI")
        try:
            driver = storage.driver_for_uri(uri, self.config, self.reactor)
        except ConfigError as e:
            raise errors.ValidationError(str(e), title="Invalid pool URI")
        try:
            await driver.open()
        except errors.StorageUnavailable as e:
            raise errors.ValidationError(f"storage {uri!r} does not answer: {e}",
                                         title="Invalid pool URI")
        try:
            if not await driver.is_alive():
                raise errors.ValidationError(f"storage {uri!r} does not answer",
                                             title="Invalid pool URI")
        finally:
            await driver.close()

    @returns_deferred
    async def pool_health(self):
        await self.pool_set.refresh()
        health = {}
        for pool in self.pool_set.all():
            try:
                health[pool.name] = await (await pool.ready()).driver.is_alive()
            except errors.StorageUnavailable:
                health[pool.name] = False
        return health

