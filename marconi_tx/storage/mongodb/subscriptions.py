"""Subscriptions on MongoDB: one document per subscription in
``subscriptions``::

    _id  str     the subscription id
    p    str|null  project         q  str  queue name     s  str  subscriber
    t    int     ttl     c  int  start of the ttl     e  int  expires
    o    str     options, as JSON text
    cf   bool    confirmed
    cur  int64   the id of the last message delivered (the cursor)

They name the queue, not its record (its generation): a subscription
outlives a deleted queue (api-v2.md §2.6). The unique index on (p, q, s)
decides creation races.
"""

from bson.int64 import Int64
from pymongo.errors import DuplicateKeyError
from txmongo import filter as qf
from zope.interface import implementer

from marconi_tx import errors, json_text
from marconi_tx.storage.ids import new_subscription_id
from marconi_tx.storage.interfaces import ISubscriptionController
from marconi_tx.storage.mongodb.driver import storage_call
from marconi_tx.storage.mongodb.queues import create as create_queue
from marconi_tx.storage.mongodb.schema import MESSAGE_ID_COUNTER, dump_json
from marconi_tx.storage.records import Subscription

BY_ID = qf.sort(qf.ASCENDING("_id"))


def to_subscription(doc, now):
    return Subscription(id=doc["_id"], project=doc["p"], queue=doc["q"], subscriber=doc["s"],
                        ttl=int(doc["t"]), age=now - int(doc["c"]), expires=int(doc["e"]),
                        options=json_text.stored(doc["o"]), confirmed=bool(doc["cf"]),
                        cursor=int(doc["cur"]))


async def newest_marker(driver):
    """The last message id handed out (the global counter), 0 if none."""
    doc = await driver.db.counters.find_one({"_id": MESSAGE_ID_COUNTER})
    return int(doc["v"]) if doc else 0


@implementer(ISubscriptionController)
class SubscriptionController:
    def __init__(self, driver):
        self.driver = driver

    def _live(self, project, queue, now, **fields):
        return {"p": project, "q": queue, "e": {"$gt": now}, **fields}

    def create(self, project, queue, subscriber, ttl, options):
        # The id is fixed before the first attempt: a retry that meets the
        # subscription its first run inserted (the answer lost) reports it
        # created, not "already exists".
        sid = new_subscription_id(self.driver.now())
        return self.driver.retried(
            lambda: self._create(project, queue, subscriber, ttl, options, sid))

    async def _create(self, project, queue, subscriber, ttl, options, sid):
        db, now = self.driver.db, self.driver.now()
        key = {"p": project, "q": queue, "s": subscriber}
        await db.subscriptions.delete_many({**key, "e": {"$lte": now}})
        await create_queue(self.driver, project, queue)
        try:
            await db.subscriptions.insert_one({
                "_id": sid, **key, "t": ttl, "c": now, "e": now + ttl,
                "o": dump_json(options), "cf": False,
                "cur": Int64(await newest_marker(self.driver))})
        except DuplicateKeyError:
            existing = await db.subscriptions.find_one(key, {"cf": 1})
            if existing is None:  # deleted meanwhile: the caller may retry
                raise errors.StorageUnavailable("a subscription changed during its creation")
            if existing["_id"] == sid:
                return sid, True
            if existing["cf"]:
                raise errors.SubscriptionExists(subscriber)
            return existing["_id"], False
        return sid, True

    @storage_call
    async def list(self, project, queue, marker=None, limit=10):
        now = self.driver.now()
        if limit <= 0:
            return []
        docs = await self.driver.db.subscriptions.find(
            self._live(project, queue, now, _id={"$gt": marker or ""}), sort=BY_ID,
            limit=limit)
        return [to_subscription(doc, now) for doc in docs]

    @storage_call
    async def get(self, project, queue, subscription_id):
        now = self.driver.now()
        doc = await self.driver.db.subscriptions.find_one(
            self._live(project, queue, now, _id=subscription_id))
        if doc is None:
            raise errors.SubscriptionDoesNotExist(subscription_id)
        return to_subscription(doc, now)

    @storage_call
    async def update(self, project, queue, subscription_id, subscriber=None, ttl=None,
                     options=None):
        db, now = self.driver.db, self.driver.now()
        where = self._live(project, queue, now, _id=subscription_id)
        current = await db.subscriptions.find_one(where, {"s": 1})
        if current is None:
            raise errors.SubscriptionDoesNotExist(subscription_id)
        changes = {}
        if subscriber is not None and subscriber != current["s"]:
            await db.subscriptions.delete_many(
                {"p": project, "q": queue, "s": subscriber, "e": {"$lte": now}})
            changes.update(s=subscriber, cf=False)
        if ttl is not None:
            changes.update(t=ttl, c=now, e=now + ttl)
        if options is not None:
            changes["o"] = dump_json(options)
        if not changes:
            return
        try:
            result = await db.subscriptions.update_one(where, {"$set": changes})
        except DuplicateKeyError:
            raise errors.SubscriptionExists(subscriber)
        if result.matched_count == 0:
            raise errors.SubscriptionDoesNotExist(subscription_id)

    @storage_call
    async def delete(self, project, queue, subscription_id):
        await self.driver.db.subscriptions.delete_one(
            {"_id": subscription_id, "p": project, "q": queue})

    @storage_call
    async def confirm(self, project, queue, subscription_id, confirmed):
        db, now = self.driver.db, self.driver.now()
        where = self._live(project, queue, now, _id=subscription_id)
        if confirmed:
            newest = Int64(await newest_marker(self.driver))
            result = await db.subscriptions.update_one(
                {**where, "cf": False}, {"$set": {"cf": True}, "$max": {"cur": newest}})
            if result.matched_count:
                return
        else:
            result = await db.subscriptions.update_one(where, {"$set": {"cf": False}})
            if result.matched_count:
                return
        if await db.subscriptions.find_one(where, {"_id": 1}) is None:
            raise errors.SubscriptionDoesNotExist(subscription_id)

    @storage_call
    async def purge(self, project, queue):
        result = await self.driver.db.subscriptions.delete_many({"p": project, "q": queue})
        return result.deleted_count

    @storage_call
    async def scan(self, marker=None, limit=100):
        now = self.driver.now()
        if limit <= 0:
            return []
        docs = await self.driver.db.subscriptions.find(
            {"_id": {"$gt": marker or ""}, "e": {"$gt": now}}, sort=BY_ID, limit=limit)
        return [to_subscription(doc, now) for doc in docs]

    @storage_call
    async def advance(self, project, queue, subscription_id, cursor):
        await self.driver.db.subscriptions.update_one(
            {"_id": subscription_id, "p": project, "q": queue},
            {"$max": {"cur": Int64(cursor)}})
