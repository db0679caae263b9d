"""The catalog of a pooled deployment on MongoDB: pools, flavors and where
each queue lives, one document each.

``pools``::

    _id  str       the pool's name
    u    str       uri              w  int  weight
    f    str|null  flavor           o  str  options, as JSON text
    n    int64     number, from the ``pool_number`` counter (unique index)

``flavors``::

    _id  str  the flavor's name     c  str  capabilities, as JSON text

``catalog``::

    p     str|null  project (null: the global namespace)
    q     str       queue name
    pool  str       the pool's name

Options and capabilities are JSON text, as metadata is: a client's keys
(``$set``, ``a.b``) can never be read as operators or paths. The unique
indexes (``schema.INDEXES``) decide races: two pools of one name, two
catalog entries of one queue.
"""

from bson.int64 import Int64
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError
from txmongo import filter as qf
from zope.interface import implementer

from marconi_tx import errors, json_text
from marconi_tx.storage.interfaces import (
    ICatalogController,
    IFlavorController,
    IPoolController,
)
from marconi_tx.storage.mongodb.driver import storage_call, storage_call_once
from marconi_tx.storage.mongodb.schema import POOL_NUMBER_COUNTER, dump_json
from marconi_tx.storage.records import Flavor, Pool

BY_NAME = qf.sort(qf.ASCENDING("_id"))
BY_QUEUE = qf.sort(qf.ASCENDING("p") + qf.ASCENDING("q"))
#: ``update``'s changes -> the pool document's fields.
POOL_FIELDS = {"uri": "u", "weight": "w", "flavor": "f", "options": "o"}
#: Attempts at taking a pool number (see ``next_number``).
NUMBER_ATTEMPTS = 5


def to_pool(doc):
    return Pool(name=doc["_id"], uri=doc["u"], weight=int(doc["w"]), flavor=doc["f"],
                options=json_text.stored(doc["o"]), number=int(doc["n"]))


def to_flavor(doc):
    return Flavor(name=doc["_id"], capabilities=json_text.stored(doc["c"]))


async def next_number(driver):
    """
    Take the next pool number from the counter (1 the first time).

    The counter is created apart (by whoever comes first) rather than by an
    upsert: upserts racing to create it can be answered without the
    document, each losing a number. An answer without the document (no
    counter yet, or a lost reply) is asked again; a number a lost reply
    took is skipped, never given twice.
    """
    counters = driver.db.counters
    for _ in range(NUMBER_ATTEMPTS):
        doc = await counters.find_one_and_update(
            {"_id": POOL_NUMBER_COUNTER}, {"$inc": {"v": Int64(1)}},
            return_document=ReturnDocument.AFTER)
        number = doc.get("v") if isinstance(doc, dict) else None
        if isinstance(number, int):
            return number
        try:
            await counters.insert_one({"_id": POOL_NUMBER_COUNTER, "v": Int64(0)})
        except DuplicateKeyError:
            pass  # it exists: the reply was lost, or another daemon made it
    raise errors.StorageUnavailable("MongoDB did not give back the pool number counter")


@implementer(IPoolController)
class PoolController:
    def __init__(self, driver):
        self.driver = driver

    # Not run again (nor delete, nor a flavor's create): a retry would meet
    # its own first run's document and answer "exists" (or "not found").
    @storage_call_once
    async def create(self, name, uri, weight, flavor=None, options=None):
        pools = self.driver.db.pools
        # A taken name costs no number, save in a race with its creator.
        if await pools.find_one({"_id": name}, {"_id": 1}) is not None:
            raise errors.PoolExists(name)
        doc = {"_id": name, "u": uri, "w": weight, "f": flavor,
               "o": dump_json(options or {}), "n": Int64(await next_number(self.driver))}
        try:
            await pools.insert_one(doc)
        except DuplicateKeyError:
            raise errors.PoolExists(name)
        return to_pool(doc)

    @storage_call
    async def get(self, name):
        doc = await self.driver.db.pools.find_one({"_id": name})
        if doc is None:
            raise errors.PoolDoesNotExist(name)
        return to_pool(doc)

    @storage_call
    async def list(self, marker=None, limit=10, flavor=None):
        if limit <= 0:  # txmongo reads a limit of 0 as none
            return []
        where = {"_id": {"$gt": marker or ""}}
        if flavor is not None:
            where["f"] = flavor
        docs = await self.driver.db.pools.find(where, sort=BY_NAME, limit=limit)
        return [to_pool(doc) for doc in docs]

    @storage_call
    async def update(self, name, changes):
        pools = self.driver.db.pools
        fields = {POOL_FIELDS[k]: v for k, v in changes.items() if k in POOL_FIELDS}
        if "o" in fields:
            fields["o"] = dump_json(fields["o"])
        if fields:
            result = await pools.update_one({"_id": name}, {"$set": fields})
            if not result.matched_count:
                raise errors.PoolDoesNotExist(name)
        doc = await pools.find_one({"_id": name})
        if doc is None:
            raise errors.PoolDoesNotExist(name)
        return to_pool(doc)

    @storage_call_once
    async def delete(self, name):
        result = await self.driver.db.pools.delete_one({"_id": name})
        if not result.deleted_count:
            raise errors.PoolDoesNotExist(name)


@implementer(IFlavorController)
class FlavorController:
    def __init__(self, driver):
        self.driver = driver

    @storage_call_once
    async def create(self, name, capabilities=None):
        doc = {"_id": name, "c": dump_json(capabilities or {})}
        try:
            await self.driver.db.flavors.insert_one(doc)
        except DuplicateKeyError:
            raise errors.FlavorExists(name)
        return to_flavor(doc)

    @storage_call
    async def get(self, name):
        doc = await self.driver.db.flavors.find_one({"_id": name})
        if doc is None:
            raise errors.FlavorDoesNotExist(name)
        return to_flavor(doc)

    @storage_call
    async def list(self, marker=None, limit=10):
        if limit <= 0:
            return []
        docs = await self.driver.db.flavors.find({"_id": {"$gt": marker or ""}},
                                                 sort=BY_NAME, limit=limit)
        return [to_flavor(doc) for doc in docs]

    @storage_call
    async def update(self, name, capabilities):
        doc = {"_id": name, "c": dump_json(capabilities)}
        result = await self.driver.db.flavors.update_one({"_id": name},
                                                         {"$set": {"c": doc["c"]}})
        if not result.matched_count:
            raise errors.FlavorDoesNotExist(name)
        return to_flavor(doc)

    @storage_call
    async def delete(self, name):
        db = self.driver.db
        await db.pools.update_many({"f": name}, {"$set": {"f": None}})
        await db.flavors.delete_one({"_id": name})


@implementer(ICatalogController)
class CatalogController:
    def __init__(self, driver):
        self.driver = driver

    @storage_call
    async def lookup(self, project, queue):
        doc = await self.driver.db.catalog.find_one({"p": project, "q": queue}, {"pool": 1})
        return None if doc is None else doc["pool"]

    @storage_call
    async def insert(self, project, queue, pool):
        catalog = self.driver.db.catalog
        try:
            await catalog.insert_one({"p": project, "q": queue, "pool": pool})
        except DuplicateKeyError:  # the unique index: the first entry stays
            doc = await catalog.find_one({"p": project, "q": queue}, {"pool": 1})
            if doc is None:  # removed meanwhile with its pool: the caller may retry
                raise errors.StorageUnavailable("a catalog entry changed during its insertion")
            return doc["pool"]
        return pool

    @storage_call
    async def entries(self, pool, marker=None, limit=100):
        if limit <= 0:
            return []
        where = {"pool": pool}
        if marker is not None:
            project, queue = marker
            # null sorts before every string; $gt compares strings only
            later = {"$ne": None} if project is None else {"$gt": project}
            where["$or"] = [{"p": project, "q": {"$gt": queue}}, {"p": later}]
        docs = await self.driver.db.catalog.find(where, {"_id": 0, "p": 1, "q": 1},
                                                 sort=BY_QUEUE, limit=limit)
        return [(doc["p"], doc["q"]) for doc in docs]

    @storage_call
    async def remove_pool(self, pool):
        result = await self.driver.db.catalog.delete_many({"pool": pool})
        return result.deleted_count
