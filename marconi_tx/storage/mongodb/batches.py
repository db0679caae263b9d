"""How a posted batch becomes visible: all at once, in marker order.

Message ids come from one global counter document (``counters``), so an id
is unique across the server and is also the message's FIFO marker. Ids are
reserved before the messages are written, so two producers of one queue can
finish in either order; without care an observer paging by marker could see
the later block and then skip the earlier one. The queue record serializes
publication instead. Each step below is one atomic single-document operation
(no multi-document transactions, so a standalone server, a replica set and
a sharded cluster all work):

1. *reserve*: ``$inc`` the counter by n; the batch gets markers [a, b].
2. *register* on the queue record, only if ``top < a``: set ``top = b`` and
   add ``pend.<token> = {a, b, s: "p", d: deadline, x: expiry}``. If
   ``top >= a`` a producer with a later block registered first: reserve a
   new block and retry (at most ``max_post_retries`` times; skipped ids are
   simply never used).
3. *insert* the n message documents.
4. *commit*: remove ``pend.<token>`` if it is still ``"p"``. The batch is
   visible from this instant, entirely.

*abort* sets ``s`` to ``"x"`` if it is still ``"p"``; commit and abort are
therefore exclusive. A producer aborts when a step fails; readers and
``gc`` abort pending entries whose deadline has passed (the producer died
or hung). Aborted ranges stay hidden until every message they could hold has
expired (``x``), then ``gc`` forgets them.

A reader takes one snapshot of the queue record (``QueueView``) and sees only
markers ``<= top`` outside every pending or aborted range; ordered reads
(list, claim, pop) also stop below the lowest pending ``a`` (the horizon).

Why an observer never misses a message: if a read returned marker m, then at
its snapshot every pending batch started above m. A batch registered later
starts above ``top >= m``. So any batch that becomes visible afterwards lies
entirely above m. Markers are also per-queue increasing in registration order
(step 2), hence in visibility order.

A dead-letter move (``dead_letters``) brings a message with an older marker
into another queue: it raises that queue's ``top`` to the marker first, like
a one-message batch registered and committed at once, and the message then
shows in that queue in marker order (a reader that paged past its marker
before the move sees it only from a new pass).

Retries (a failover, a dropped connection): a post is run again by the
driver after a transient failure, with a ``Publication`` shared by its
attempts. The block and token are recorded there before step 2, so the
retry first *settles* the earlier attempt's batch: it aborts it if it is
still pending (never visible, then collected), or finds it committed (its
markers are the post's answer: no duplicate). Only then does it post
anew. A post that still fails may have committed (its last commit's answer
was lost): the client gets 503 for messages that exist, never the reverse.

Residual window: none for ordering. What remains is liveness: a producer
that dies between register and commit stalls ordered reads of that queue
above its ``a`` until the deadline (``2 x operation_timeout + 1`` s after the
post started), when the next reader or ``gc`` aborts it. Clock skew between
daemons only moves that instant. A post that times out may still have
committed on the server: the client got 503 but the messages exist (the
usual ambiguity of a lost reply; delivery is at-least-once anyway).
"""

import functools
import math
import secrets

from bson.int64 import Int64
from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError
from txmongo import filter as qf

from marconi_tx import errors
from marconi_tx.storage.ids import MAX_MESSAGE_ID
from marconi_tx.storage.mongodb.schema import (
    MESSAGE_ID_COUNTER,
    find_queue,
    marker,
    queue_key,
)
from marconi_tx.storage.rules import whole_second_after

PENDING = "p"
ABORTED = "x"

#: Queue record fields a view needs (metadata can be large).
VIEW_FIELDS = {"top": 1, "pend": 1}


class QueueView:
    """One snapshot of a queue record: which markers a reader may see."""

    def __init__(self, doc, now):
        self.id = doc["_id"]
        self.top = doc.get("top", 0)
        entries = doc.get("pend") or {}
        self.pending = sorted((e["a"], e["b"]) for e in entries.values()
                              if e["s"] == PENDING)
        self.hidden = sorted((e["a"], e["b"]) for e in entries.values())
        self.stale = [token for token, e in entries.items()
                      if e["s"] == PENDING and e["d"] <= now]

    def visible(self, mid):
        """Whether marker ``mid`` may be shown by an unordered read."""
        return mid <= self.top and not any(a <= mid <= b for a, b in self.hidden)

    def query(self, now, after=None, ordered=False):
        """The filter of this queue's visible, unexpired messages (above
        ``after``); ``ordered`` reads also stop below the horizon."""
        upper = self.top
        if ordered and self.pending:
            upper = min(upper, self.pending[0][0] - 1)
        ids = {"$lte": marker(upper)}
        if after is not None:
            ids["$gt"] = marker(after)
        query = {"q": self.id, "_id": ids, "e": {"$gt": now}}
        ranges = [{"_id": {"$gte": marker(a), "$lte": marker(b)}}
                  for a, b in self.hidden
                  if a <= upper and (after is None or b > after)]
        if ranges:
            query["$nor"] = ranges
        return query


async def view(driver, project, queue, ordered=False):
    """
    A ``QueueView`` of (project, queue), or None if the queue is missing.

    ``ordered`` readers first abort stale pending batches, since they may
    not pass a pending batch's range while it could still commit.
    """
    now = driver.now()
    doc = await find_queue(driver, project, queue, VIEW_FIELDS)
    if doc is None:
        return None
    snapshot = QueueView(doc, now)
    if ordered and snapshot.stale:
        record = {**queue_key(project, queue), "_id": snapshot.id}
        for token in snapshot.stale:
            await abort(driver, record, token)
        doc = await driver.db.queues.find_one(record, VIEW_FIELDS)
        if doc is None:
            return None
        snapshot = QueueView(doc, now)
    return snapshot


def pending_window(operation_timeout):
    """Seconds a registered batch may take to commit before readers may abort
    it: a post gives up after ``operation_timeout``; the rest is slack for
    clock skew between daemons."""
    return math.ceil(2 * operation_timeout) + 1


class Publication:
    """What the attempts of one post share: the batch the latest attempt
    registered, or was registering (token and markers), until settled."""

    def __init__(self):
        self.token = None
        self.first = self.last = 0


async def settle(driver, name, publication, build):
    """
    Settle the batch an earlier attempt of this post left (see the module
    docstring): abort it if still pending.

    @return: its markers if it was committed, else None.
    """
    token, publication.token = publication.token, None
    if token is None or await abort(driver, name, token):
        return None
    doc = await driver.db.queues.find_one(name, {f"pend.{token}": 1})
    if doc is None or token in (doc.get("pend") or {}):
        return None  # queue gone, or the batch aborted
    # No entry: committed, or never registered (then none of its markers was
    # inserted). The first message tells, if it is the one this post built.
    first = await driver.db.messages.find_one(
        {"_id": marker(publication.first), "q": doc["_id"]}, {"b": 1, "c": 1})
    mine = build(doc["_id"], publication.first)[0]
    if first is None or (first["b"], first["c"]) != (mine["b"], mine["c"]):
        return None
    return list(range(publication.first, publication.last + 1))


async def publish(driver, project, queue, count, expiry, build, publication=None):
    """
    Post one batch of ``count`` messages (steps 1-4 above).

    @param expiry: the latest ``expires`` among the batch's messages.
    @param build: ``build(queue_id, first_marker)`` -> the documents.
    @param publication: shared by the attempts of one post (retries).
    @return: the markers, in order.
    """
    publication = publication or Publication()
    deadline = whole_second_after(driver.now(),
                                  pending_window(driver.settings.operation_timeout))
    name = queue_key(project, queue)
    published = await settle(driver, name, publication, build)
    if published is not None:
        return published
    for _ in range(driver.settings.max_post_retries):
        last = await reserve(driver, count)
        first = last - count + 1
        token = secrets.token_hex(8)
        publication.token, publication.first, publication.last = token, first, last
        try:
            qid = await register(driver, project, queue, first, last, token, deadline, expiry)
        except BaseException:
            driver.background(functools.partial(abort, driver, name, token))
            raise
        if qid is None:
            continue  # a producer holding a later block registered first
        record = {**name, "_id": qid}
        try:
            await driver.db.messages.insert_many(build(qid, first), ordered=True)
        except PyMongoError as e:
            if not is_duplicate_key(e):
                driver.background(functools.partial(abort, driver, record, token))
                raise
            # The counter fell behind the stored ids (it was dropped or
            # restored from an old backup): skip past them and retry.
            await abort(driver, record, token)
            publication.token = None
            await repair_counter(driver)
            continue
        except BaseException:
            driver.background(functools.partial(abort, driver, record, token))
            raise
        try:
            committed = await commit(driver, record, token)
        except BaseException:
            driver.background(functools.partial(abort, driver, record, token))
            raise
        publication.token = None
        if committed:
            return list(range(first, last + 1))
        if await driver.db.queues.find_one(record, {"_id": 1}) is None:
            raise errors.QueueDoesNotExist(queue, project)
        raise errors.StorageUnavailable(
            "the batch was rolled back: it was not published within "
            f"{pending_window(driver.settings.operation_timeout)} s")
    raise errors.StorageUnavailable(
        f"could not post after {driver.settings.max_post_retries} attempts: "
        "other producers kept taking the markers")


async def register(driver, project, queue, first, last, token, deadline, expiry):
    """
    Step 2: record the pending batch [first, last] on the queue record.

    @return: the queue record's id, or None if a later block is registered.
    @raise QueueDoesNotExist: the queue is missing.
    """
    name = queue_key(project, queue)
    entry = {"a": marker(first), "b": marker(last), "s": PENDING, "d": deadline, "x": expiry}
    doc = await driver.db.queues.find_one_and_update(
        {**name, "top": {"$lt": marker(first)}},
        {"$set": {"top": marker(last), f"pend.{token}": entry}},
        projection={"_id": 1})
    if doc is not None:
        return doc["_id"]
    if await find_queue(driver, project, queue) is None:
        raise errors.QueueDoesNotExist(queue, project)
    return None


async def commit(driver, where, token):
    """Step 4: publish a pending batch of the queue record ``where``; False
    if it was aborted (or its queue deleted) first."""
    result = await driver.db.queues.update_one(
        {**where, f"pend.{token}.s": PENDING}, {"$unset": {f"pend.{token}": ""}})
    return bool(result.modified_count)


#: Attempts to read the counter back before a post gives up (503).
RESERVE_ATTEMPTS = 2


async def reserve(driver, count):
    """
    Take ``count`` consecutive ids from the global counter; the last one.

    The reply may lack the counter document: txmongo answers None for an
    unacknowledged or interrupted write (it was a TypeError, a 500, under
    kill -9 load), and two daemons creating the counter at once get a
    duplicate key. Both are asked again; ids a lost reply took are skipped,
    never reused. What still fails is StorageUnavailable (503).
    """
    for _ in range(RESERVE_ATTEMPTS):
        try:
            doc = await driver.db.counters.find_one_and_update(
                {"_id": MESSAGE_ID_COUNTER}, {"$inc": {"v": Int64(count)}},
                upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            continue
        last = doc.get("v") if isinstance(doc, dict) else None
        if isinstance(last, int):
            break
    else:
        raise errors.StorageUnavailable("MongoDB did not give back the message id counter")
    if last > MAX_MESSAGE_ID:
        raise errors.StorageUnavailable("message ids are exhausted")
    return last


async def abort(driver, where, token):
    """Mark a pending batch aborted; False if it had committed (or was gone)."""
    result = await driver.db.queues.update_one(
        {**where, f"pend.{token}.s": PENDING},
        {"$set": {f"pend.{token}.s": ABORTED}})
    return bool(result.modified_count)


async def repair_counter(driver):
    """Raise the counter to at least the highest stored id (idempotent)."""
    docs = await driver.db.messages.find(
        {}, {"_id": 1}, sort=qf.sort(qf.DESCENDING("_id")), limit=1)
    highest = docs[0]["_id"] if docs else 0
    update = ({"_id": MESSAGE_ID_COUNTER}, {"$max": {"v": Int64(highest)}})
    try:
        await driver.db.counters.update_one(*update, upsert=True)
    except DuplicateKeyError:
        # another daemon created the counter at the same moment
        await driver.db.counters.update_one(*update)


async def collect(driver, now):
    """
    Abort stale pending batches, delete the messages of aborted ones and
    forget those whose messages have all expired.

    @return: the number of messages deleted.
    """
    removed = 0
    docs = await driver.db.queues.find({"pend": {"$ne": {}}}, {"p": 1, "n": 1, "pend": 1})
    for doc in docs:
        qid = doc["_id"]
        record = {**queue_key(doc["p"], doc["n"]), "_id": qid}
        for token, entry in (doc.get("pend") or {}).items():
            if entry["s"] == PENDING and (
                    entry["d"] > now or not await abort(driver, record, token)):
                continue
            result = await driver.db.messages.delete_many(
                {"q": qid, "_id": {"$gte": entry["a"], "$lte": entry["b"]}})
            removed += result.deleted_count
            if entry["x"] <= now:
                await driver.db.queues.update_one(
                    {**record, f"pend.{token}.s": ABORTED},
                    {"$unset": {f"pend.{token}": ""}})
    return removed


def is_duplicate_key(error):
    if isinstance(error, DuplicateKeyError):
        return True
    if isinstance(error, BulkWriteError):
        return any(e.get("code") == 11000
                   for e in (error.details or {}).get("writeErrors", ()))
    return False
