"""``MemoryDriver``'s pools, flavors and catalog (the catalog storage of a
pooled deployment: ``IPoolingStorage``)."""

import copy
from dataclasses import replace

from zope.interface import implementer

from marconi_tx import errors
from marconi_tx.storage.interfaces import (
    ICatalogController,
    IFlavorController,
    IPoolController,
)
from marconi_tx.storage.records import Flavor, Pool
from marconi_tx.testing.store import answers

_POOL_FIELDS = ("uri", "weight", "flavor", "options")


def _after(names, marker, limit):
    return [name for name in sorted(names) if marker is None or name > marker][:limit]


def _pool(pool):
    """A caller's copy of a kept pool: changing its options changes nothing kept."""
    return replace(pool, options=copy.deepcopy(pool.options))


def _flavor(flavor):
    """A caller's copy of a kept flavor."""
    return replace(flavor, capabilities=copy.deepcopy(flavor.capabilities))


@implementer(IPoolController)
class PoolController:
    def __init__(self, driver):
        self.driver = driver
        self.kept = {}  # name -> Pool
        self.last_number = 0

    @answers
    def create(self, name, uri, weight, flavor=None, options=None):
        if name in self.kept:
            raise errors.PoolExists(name)
        self.last_number += 1
        self.kept[name] = Pool(name=name, uri=uri, weight=weight, flavor=flavor,
                               options=copy.deepcopy(options or {}), number=self.last_number)
        return _pool(self.kept[name])

    @answers
    def get(self, name):
        if name not in self.kept:
            raise errors.PoolDoesNotExist(name)
        return _pool(self.kept[name])

    @answers
    def list(self, marker=None, limit=10, flavor=None):
        names = [n for n, p in self.kept.items() if flavor is None or p.flavor == flavor]
        return [_pool(self.kept[n]) for n in _after(names, marker, limit)]

    @answers
    def update(self, name, changes):
        if name not in self.kept:
            raise errors.PoolDoesNotExist(name)
        fields = {k: copy.deepcopy(v) for k, v in changes.items() if k in _POOL_FIELDS}
        self.kept[name] = replace(self.kept[name], **fields)
        return _pool(self.kept[name])

    @answers
    def delete(self, name):
        if self.kept.pop(name, None) is None:
            raise errors.PoolDoesNotExist(name)


@implementer(IFlavorController)
class FlavorController:
    def __init__(self, driver):
        self.driver = driver
        self.kept = {}  # name -> Flavor

    @answers
    def create(self, name, capabilities=None):
        if name in self.kept:
            raise errors.FlavorExists(name)
        self.kept[name] = Flavor(name=name, capabilities=copy.deepcopy(capabilities or {}))
        return _flavor(self.kept[name])

    @answers
    def get(self, name):
        if name not in self.kept:
            raise errors.FlavorDoesNotExist(name)
        return _flavor(self.kept[name])

    @answers
    def list(self, marker=None, limit=10):
        return [_flavor(self.kept[n]) for n in _after(self.kept, marker, limit)]

    @answers
    def update(self, name, capabilities):
        if name not in self.kept:
            raise errors.FlavorDoesNotExist(name)
        self.kept[name] = Flavor(name=name, capabilities=copy.deepcopy(capabilities))
        return _flavor(self.kept[name])

    @answers
    def delete(self, name):
        self.kept.pop(name, None)
        pools = self.driver.pools.kept
        for pool in list(pools.values()):
            if pool.flavor == name:
                pools[pool.name] = replace(pool, flavor=None)


def _pair_key(pair):
    project, queue = pair
    return (project is not None, project or "", queue)


@implementer(ICatalogController)
class CatalogController:
    def __init__(self, driver):
        self.driver = driver
        self.kept = {}  # (project, queue) -> pool name

    @answers
    def lookup(self, project, queue):
        return self.kept.get((project, queue))

    @answers
    def insert(self, project, queue, pool):
        return self.kept.setdefault((project, queue), pool)

    @answers
    def entries(self, pool, marker=None, limit=100):
        pairs = sorted((pair for pair, name in self.kept.items() if name == pool),
                       key=_pair_key)
        if marker is not None:
            pairs = [pair for pair in pairs if _pair_key(pair) > _pair_key(marker)]
        return pairs[:limit]

    @answers
    def remove_pool(self, pool):
        gone = [pair for pair, name in self.kept.items() if name == pool]
        for pair in gone:
            del self.kept[pair]
        return len(gone)
