"""Queues on MongoDB.

A queue record's ``_id`` is its generation: messages point at it, so a queue
deleted and created again under the same name starts empty even if a post
to the old one was still in flight (its messages point at a record that no
longer exists and are collected when they expire).

Listings filter names on the server (a substring, as an escaped regular
expression) and metadata here, as it is stored as JSON text: a listing with
a ``metadata`` filter reads the project's queue records page by page until
it has ``limit`` matches.
"""

import re

from bson.objectid import ObjectId
from pymongo.errors import DuplicateKeyError
from txmongo import filter as qf
from zope.interface import implementer

from marconi_tx import errors, json_text
from marconi_tx.storage.interfaces import IQueueController
from marconi_tx.storage.mongodb import batches
from marconi_tx.storage.mongodb.driver import storage_call
from marconi_tx.storage.mongodb.schema import dump_json, find_queue, marker, queue_key
from marconi_tx.storage.records import MessageStamp, Queue, QueueStats
from marconi_tx.storage.rules import metadata_matches

#: Queue records a listing filtered by metadata reads per round trip (at
#: least its limit).
SCAN_PAGE = 100
BY_NAME = qf.sort(qf.ASCENDING("n"))


async def create(driver, project, queue, metadata=None, record_id=None):
    """
    Create the queue record; False if it existed (``IQueueController``).

    @param record_id: the new record's id, fixed by the caller when the
        creation may be retried: a retry that finds the record its first
        run inserted (the answer lost) reports it created (semantics.md
        8.3), not "already existed".
    """
    record_id = record_id or ObjectId()
    try:
        await driver.db.queues.insert_one({
            "_id": record_id, **queue_key(project, queue),
            "m": dump_json(metadata or {}), "c": driver.now(),
            "top": marker(0), "pend": {}})
    except DuplicateKeyError:
        doc = await find_queue(driver, project, queue)
        return doc is not None and doc["_id"] == record_id
    return True


@implementer(IQueueController)
class QueueController:
    def __init__(self, driver):
        self.driver = driver

    def create(self, project, queue, metadata=None):
        record_id = ObjectId()
        return self.driver.retried(
            lambda: create(self.driver, project, queue, metadata, record_id))

    @storage_call
    async def exists(self, project, queue):
        return await find_queue(self.driver, project, queue) is not None

    @storage_call
    async def delete(self, project, queue):
        doc = await self.driver.db.queues.find_one_and_delete(
            queue_key(project, queue), projection={"_id": 1})
        if doc is not None:
            await self.driver.db.messages.delete_many({"q": doc["_id"]})

    @storage_call
    async def list(self, project, marker=None, limit=10, detailed=False, name=None,
                   metadata=None):
        if limit <= 0:
            return []
        names = {"$gt": marker or ""}
        if name:
            names["$regex"] = re.escape(name)
        query = {"p": project, "n": names}
        fields = {"n": 1, "m": 1} if detailed or metadata else {"n": 1}
        page = max(limit, SCAN_PAGE) if metadata else limit
        found = []
        while len(found) < limit:
            docs = await self.driver.db.queues.find(query, fields, sort=BY_NAME, limit=page)
            for doc in docs:
                kept = json_text.stored(doc["m"]) if "m" in doc else None
                if not metadata or metadata_matches(kept, metadata):
                    found.append(Queue(doc["n"], kept if detailed else None))
            if len(docs) < page:
                break
            names["$gt"] = docs[-1]["n"]
        return found[:limit]

    @storage_call
    async def count(self, project):
        return await self.driver.db.queues.count_documents({"p": project})

    @storage_call
    async def get_metadata(self, project, queue):
        doc = await find_queue(self.driver, project, queue, {"m": 1})
        if doc is None:
            raise errors.QueueDoesNotExist(queue, project)
        return json_text.stored(doc["m"])

    @storage_call
    async def set_metadata(self, project, queue, metadata):
        result = await self.driver.db.queues.update_one(
            queue_key(project, queue), {"$set": {"m": dump_json(metadata)}})
        if result.matched_count == 0:
            raise errors.QueueDoesNotExist(queue, project)

    @storage_call
    async def stats(self, project, queue):
        snapshot = await batches.view(self.driver, project, queue)
        if snapshot is None:
            raise errors.QueueDoesNotExist(queue, project)
        now = self.driver.now()
        claimed = {"$or": [{"$gt": ["$ce", now]}, {"$eq": ["$bu", True]}]}
        rows = await self.driver.db.messages.aggregate([
            {"$match": snapshot.query(now)},
            {"$sort": {"_id": 1}},
            {"$group": {"_id": None, "total": {"$sum": 1},
                        "claimed": {"$sum": {"$cond": [claimed, 1, 0]}},
                        "oldest": {"$first": "$_id"}, "oldest_created": {"$first": "$c"},
                        "newest": {"$last": "$_id"}, "newest_created": {"$last": "$c"}}},
        ])
        if not rows:
            return QueueStats(free=0, claimed=0, total=0)
        row = rows[0]
        total, claimed = int(row["total"]), int(row["claimed"])

        def stamp(key):
            created = int(row[f"{key}_created"])
            return MessageStamp(id=str(int(row[key])), created=created, age=now - created)

        return QueueStats(free=total - claimed, claimed=claimed, total=total,
                          oldest=stamp("oldest"), newest=stamp("newest"))
