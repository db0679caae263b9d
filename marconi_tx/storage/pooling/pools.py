"""The pools this process knows: their records, read from the catalog, and
their drivers, each opened once, on first use; the catalog's pool and
flavor controllers as the pooled driver offers them (changes made through
this process are known to it at once)."""

from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface import implementer

from marconi_tx import errors, storage
from marconi_tx.config import ConfigError
from marconi_tx.deferreds import returns_deferred
from marconi_tx.storage.interfaces import IFlavorController, IPoolController
from marconi_tx.storage.pooling import ids

#: Pools read from the catalog per call while refreshing.
_PAGE = 100


class OpenPool:
    """
    A pool: its ``record`` (a ``Pool``) and its driver, made and opened by
    ``ready`` the first time a call needs it. ``notify`` is called as
    ``notify(project, queue)`` with every notification of the pool's
    ``events`` hub while it is open.
    """

    def __init__(self, record, reactor, config, notify):
        self.record = record
        self.reactor = reactor
        self.config = config
        self.notify = notify
        self.driver = None  # once open
        self._waiting = None  # Deferreds of the calls waiting for an open under way
        self._closed = False

    @property
    def name(self):
        return self.record.name

    @property
    def number(self):
        return self.record.number

    async def ready(self):
        """This pool, its ``driver`` open. StorageUnavailable if it cannot be."""
        if self.driver is not None:
            return self
        if self._closed:
            raise errors.StorageUnavailable(f"pool {self.name!r} was closed")
        if self._waiting is not None:  # another call is opening it
            waiter = defer.Deferred()
            self._waiting.append(waiter)
            return await waiter
        self._waiting = []
        try:
            try:
                driver = storage.driver_for_uri(self.record.uri, self.config, self.reactor)
            except ConfigError as e:
                raise errors.StorageUnavailable(f"pool {self.name!r}: {e}")
            await driver.open()
        except Exception as e:
            waiting, self._waiting = self._waiting, None
            for waiter in waiting:
                waiter.errback(e)
            raise
        waiting, self._waiting = self._waiting, None
        if self._closed:  # closed while it opened
            await driver.close()
            error = errors.StorageUnavailable(f"pool {self.name!r} was closed")
            for waiter in waiting:
                waiter.errback(error)
            raise error
        self.driver = driver
        driver.events.subscribe(self.notify)
        for waiter in waiting:
            waiter.callback(self)
        return self

    async def close(self):
        self._closed = True
        driver, self.driver = self.driver, None
        if driver is not None:
            driver.events.unsubscribe(self.notify)
            await driver.close()


class PoolSet:
    """
    The pools of the catalog storage ``pools`` (an IPoolController), as
    ``OpenPool``s by name, read again every ``interval`` seconds of
    ``reactor`` (``start``) and whenever a caller names a pool not known
    yet (``get``). A pool whose URI changed is closed and opened again; a
    removed pool (or one made again under its name) is closed and
    ``forget(name)`` is called.
    """

    log = Logger()

    def __init__(self, pools, reactor, config, notify, forget, interval):
        self.catalog_pools = pools
        self.reactor = reactor
        self.config = config
        self.notify = notify
        self.forget = forget
        self.by_name = {}
        self.by_number = {}
        self._refreshing = None  # the waiters of a refresh under way
        self._unusable = set()  # numbers of pools ids cannot name (warned of)
        self._loop = task.LoopingCall(self._refresh_logged)
        self._loop.clock = reactor
        self._interval = interval

    def all(self):
        """Every known pool (``OpenPool``), by name."""
        return [self.by_name[name] for name in sorted(self.by_name)]

    async def get(self, name):
        """The pool ``name``, reading the catalog if it is not known; None if
        the catalog does not have it either."""
        pool = self.by_name.get(name)
        if pool is None:
            await self.refresh()
            pool = self.by_name.get(name)
        return pool

    def start(self):
        self._loop.start(self._interval, now=False)

    async def refresh(self):
        """Read the pools from the catalog (concurrent calls share one read)."""
        if self._refreshing is not None:
            waiter = defer.Deferred()
            self._refreshing.append(waiter)
            return await waiter
        self._refreshing = []
        try:
            await self._update(await self._read())
        except Exception as e:
            waiting, self._refreshing = self._refreshing, None
            for waiter in waiting:
                waiter.errback(e)
            raise
        waiting, self._refreshing = self._refreshing, None
        for waiter in waiting:
            waiter.callback(None)

    async def _read(self):
        records, marker = [], None
        while True:
            page = await self.catalog_pools.list(marker=marker, limit=_PAGE)
            records.extend(page)
            if len(page) < _PAGE:
                return records
            marker = page[-1].name

    async def _update(self, records):
        fresh = {}
        for record in records:
            if ids.routable(record.number):
                fresh[record.name] = record
            elif record.number not in self._unusable:
                self._unusable.add(record.number)
                self.log.warn("pool {name!r} has number {number}, past the {most} that message "
                              "ids can name: it is not used", name=record.name,
                              number=record.number, most=ids.SPACING - 1)
        gone = []
        for name, pool in list(self.by_name.items()):
            record = fresh.get(name)
            if record is None or (record.uri, record.number) != (pool.record.uri, pool.number):
                gone.append(pool)
                del self.by_name[name]
                del self.by_number[pool.number]
                if record is None or record.number != pool.number:
                    self.forget(name)  # removed (perhaps made again): its routes went with it
            else:
                pool.record = record  # weight, flavor, options
        for name, record in fresh.items():
            if name not in self.by_name:
                pool = OpenPool(record, self.reactor, self.config, self.notify)
                self.by_name[name] = self.by_number[record.number] = pool
        for pool in gone:
            await pool.close()

    @returns_deferred
    async def _refresh_logged(self):
        try:
            await self.refresh()
        except errors.StorageUnavailable as e:  # an outage: the next refresh tries again
            self.log.warn("Cannot read the pools from the catalog: {error}", error=e)
        except Exception:
            self.log.failure("Cannot read the pools from the catalog")

    async def close(self):
        if self._loop.running:
            self._loop.stop()
        pools = list(self.by_name.values())
        self.by_name.clear()
        self.by_number.clear()
        for pool in pools:
            await pool.close()


@implementer(IPoolController)
class RefreshingPools:
    """
    The catalog storage's IPoolController ``pools``, as the pooled driver
    offers it: a pool created, changed or deleted through it is read into
    ``pool_set`` at once, so this process places queues by the change from
    the next call (the others within their refresh interval).
    """

    def __init__(self, pools, pool_set):
        self._pools = pools
        self._pool_set = pool_set

    def get(self, name):
        return self._pools.get(name)

    def list(self, marker=None, limit=10, flavor=None):
        return self._pools.list(marker, limit, flavor)

    @returns_deferred
    async def create(self, name, uri, weight, flavor=None, options=None):
        pool = await self._pools.create(name, uri, weight, flavor, options)
        await self._pool_set.refresh()
        return pool

    @returns_deferred
    async def update(self, name, changes):
        pool = await self._pools.update(name, changes)
        await self._pool_set.refresh()
        return pool

    @returns_deferred
    async def delete(self, name):
        await self._pools.delete(name)
        await self._pool_set.refresh()


@implementer(IFlavorController)
class RefreshingFlavors:
    """The catalog storage's IFlavorController ``flavors``; deleting a
    flavor detaches its pools, read into ``pool_set`` at once."""

    def __init__(self, flavors, pool_set):
        self._flavors = flavors
        self._pool_set = pool_set

    def create(self, name, capabilities=None):
        return self._flavors.create(name, capabilities)

    def get(self, name):
        return self._flavors.get(name)

    def list(self, marker=None, limit=10):
        return self._flavors.list(marker, limit)

    def update(self, name, capabilities):
        return self._flavors.update(name, capabilities)

    @returns_deferred
    async def delete(self, name):
        await self._flavors.delete(name)
        await self._pool_set.refresh()
