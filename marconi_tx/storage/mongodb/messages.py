"""Messages on MongoDB.

Posting follows ``batches``; a post that may create its queue (lazy queues,
the line protocol's put) creates it when the batch finds it missing and
tries again, so a post to an existing queue costs what it always did.
Creating the queue and posting are two steps (this driver has no
multi-document transactions): a post that fails after creating the queue
leaves the queue, empty. Reads filter expired messages themselves (they
never wait for ``gc``). Deletes are conditional single-document operations,
re-read on a miss to tell why, so a concurrent claim is never overridden.
"""

from twisted.internet import defer
from txmongo import filter as qf
from zope.interface import implementer

from marconi_tx import errors
from marconi_tx.storage.ids import is_claim_id, parse_ids, parse_message_id
from marconi_tx.storage.interfaces import DEFAULT_PRIORITY, IMessageController
from marconi_tx.storage.mongodb import batches
from marconi_tx.storage.mongodb.driver import storage_call, storage_call_once
from marconi_tx.storage.mongodb.queues import create as create_queue
from marconi_tx.storage.mongodb.schema import dump_json, find_queue, marker, to_message
from marconi_tx.storage.rules import check_claim_id, check_delete, whole_second_after

#: Rounds of select-then-take a pop or claim makes when concurrent consumers
#: take some of its candidates first.
TAKE_ROUNDS = 3

BY_MARKER = qf.sort(qf.ASCENDING("_id"))

#: Attempts of a post that creates its queue, when the queue is deleted
#: again between its creation and the post.
CREATE_ROUNDS = 3


def free(now):
    """The condition of a message no live claim holds and not buried."""
    return {"ce": {"$lte": now}, "bu": False}


def documents(messages, now, client_uuid=None):
    """The stored fields of new messages, all but ``_id`` and ``q``."""
    client = client_uuid.hex if client_uuid is not None else None
    rows = []
    for m in messages:
        row = {"b": dump_json(m["body"]), "t": m["ttl"], "c": now,
               "e": whole_second_after(now, m["ttl"]), "cc": 0, "ce": 0,
               "pr": m.get("priority", DEFAULT_PRIORITY),
               "av": whole_second_after(now, m.get("delay", 0)), "bu": False}
        if client is not None:
            row["u"] = client
        rows.append(row)
    return rows


async def publish(driver, project, queue, rows, create=False, publication=None):
    """
    Post the message ``rows`` (from ``documents``) as one batch
    (``batches.publish``); with ``create``, a missing queue is created.

    @param publication: a ``batches.Publication`` shared by the attempts of
        one post.
    @return: the markers, in order.
    @raise QueueDoesNotExist: the queue is missing and not ``create``.
    """
    def build(qid, first):
        return [{"_id": marker(first + i), "q": qid, **row} for i, row in enumerate(rows)]

    expiry = max(row["e"] for row in rows)
    for attempt in range(CREATE_ROUNDS):
        if attempt:
            await create_queue(driver, project, queue)
        try:
            return await batches.publish(driver, project, queue, len(rows), expiry, build,
                                         publication)
        except errors.QueueDoesNotExist:
            if not create:
                raise
    raise errors.StorageUnavailable(
        f"queue {queue!r} kept being deleted while messages were posted to it; retry")


@implementer(IMessageController)
class MessageController:
    def __init__(self, driver):
        self.driver = driver

    def post(self, project, queue, messages, client_uuid=None, create=False):
        # The post's time and publication are fixed before the first
        # attempt: a retry settles what an earlier one published (batches).
        now = self.driver.now()
        publication = batches.Publication()
        return self.driver.retried(lambda: self._post(
            project, queue, documents(messages, now, client_uuid), create, publication))

    async def _post(self, project, queue, rows, create, publication):
        if not rows:
            if create:
                await create_queue(self.driver, project, queue)
            elif await find_queue(self.driver, project, queue) is None:
                raise errors.QueueDoesNotExist(queue, project)
            return []
        ids = await publish(self.driver, project, queue, rows, create, publication)
        # Wakes consumers of this process waiting on the queue (after commit).
        self.driver.events.notify(project, queue)
        return [str(i) for i in ids]

    @storage_call
    async def list(self, project, queue, marker=None, limit=10, echo=False,
                   client_uuid=None, include_claimed=False, include_delayed=False):
        after = None
        if marker is not None:
            after = parse_message_id(marker)
            if after is None:
                return []
        if limit <= 0:
            return []
        snapshot = await batches.view(self.driver, project, queue, ordered=True)
        if snapshot is None:
            return []
        now = self.driver.now()
        query = snapshot.query(now, after, ordered=True)
        if not include_claimed:
            query.update(free(now))
        if not echo and client_uuid is not None:
            query["u"] = {"$ne": client_uuid.hex}
        if not include_delayed:
            query["av"] = {"$lte": now}
        docs = await self.driver.db.messages.find(query, sort=BY_MARKER, limit=limit)
        return [to_message(doc, now) for doc in docs]

    @storage_call
    async def get(self, project, queue, message_id):
        mid = parse_message_id(message_id)
        doc = None
        if mid is not None:
            snapshot = await batches.view(self.driver, project, queue)
            if snapshot is not None and snapshot.visible(mid):
                doc = await self.driver.db.messages.find_one(
                    {"_id": marker(mid), "q": snapshot.id, "e": {"$gt": self.driver.now()}})
        if doc is None:
            raise errors.MessageDoesNotExist(message_id, queue)
        return to_message(doc, self.driver.now())

    @storage_call
    async def bulk_get(self, project, queue, message_ids):
        ids = parse_ids(message_ids)
        if not ids:
            return []
        snapshot = await batches.view(self.driver, project, queue)
        if snapshot is None:
            return []
        ids = [marker(i) for i in ids if snapshot.visible(i)]
        if not ids:
            return []
        now = self.driver.now()
        docs = await self.driver.db.messages.find(
            {"_id": {"$in": ids}, "q": snapshot.id, "e": {"$gt": now}}, sort=BY_MARKER)
        return [to_message(doc, now) for doc in docs]

    @storage_call
    async def delete(self, project, queue, message_id, claim_id=None):
        mid = parse_message_id(message_id)
        check_claim_id(claim_id, queue, is_claim_id)
        if mid is None:
            return
        record = await find_queue(self.driver, project, queue)
        if record is None:
            return
        where = {"_id": marker(mid), "q": record["_id"]}
        now = self.driver.now()
        if claim_id is None:
            condition = {"ce": {"$lte": now}}
        else:
            condition = {"ci": claim_id}
        # Delete optimistically; on a miss, read why. A concurrent change
        # (claim, release) can make the answer flip, hence the rounds.
        for _ in range(TAKE_ROUNDS):
            result = await self.driver.db.messages.delete_one({**where, **condition})
            if result.deleted_count:
                return
            doc = await self.driver.db.messages.find_one(where, {"ci": 1, "ce": 1})
            if doc is None:
                return
            check_delete(message_id, claim_id, doc.get("ci"), doc["ce"], now)
        raise errors.StorageUnavailable(
            f"message {message_id} kept changing while being deleted; retry")

    @storage_call
    async def bulk_delete(self, project, queue, message_ids):
        ids = parse_ids(message_ids)
        if not ids:
            return
        record = await find_queue(self.driver, project, queue)
        if record is not None:
            await self.driver.db.messages.delete_many(
                {"q": record["_id"], "_id": {"$in": [marker(i) for i in ids]}})

    # Not run again: what a failed attempt popped (deleted) is lost to the
    # client; a 503 says so, where a retry would hide it behind others.
    @storage_call_once
    async def pop(self, project, queue, limit):
        if limit <= 0:
            return []
        snapshot = await batches.view(self.driver, project, queue, ordered=True)
        if snapshot is None:
            return []
        now = self.driver.now()
        popped = []
        for _ in range(TAKE_ROUNDS):
            wanted = limit - len(popped)
            candidates = await self.driver.db.messages.find(
                {**snapshot.query(now, ordered=True), **free(now)}, {"_id": 1},
                sort=BY_MARKER, limit=wanted)
            # One find-and-delete per message: each is atomic, so two pops
            # never return the same message, nor a pop a claimed one.
            taken = await defer.gatherResults([
                self.driver.db.messages.find_one_and_delete(
                    {"_id": c["_id"], "q": snapshot.id, "e": {"$gt": now}, **free(now)})
                for c in candidates], consumeErrors=True)
            popped.extend(doc for doc in taken if doc is not None)
            if len(candidates) < wanted or len(popped) == limit:
                break
        popped.sort(key=lambda doc: doc["_id"])
        return [to_message(doc, now) for doc in popped]

    @storage_call
    async def purge(self, project, queue):
        snapshot = await batches.view(self.driver, project, queue)
        if snapshot is None:
            return 0
        now = self.driver.now()
        # Only published messages: a batch still pending is posted after
        # the purge. Buried messages hold no claim (ce 0).
        result = await self.driver.db.messages.delete_many(
            {**snapshot.query(now), "ce": {"$lte": now}})
        return result.deleted_count
