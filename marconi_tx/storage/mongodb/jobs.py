"""Jobs on MongoDB: the line protocol's view of messages (``IJobController``).

A job is a message document with a few more fields (see ``schema``): the
time-to-run ``tr``, the delay last set ``dl``, the burial order ``bo`` and
the beanstalkd counters. Messages posted over HTTP lack them and take the
defaults. A put is a one-message batch published like any HTTP post
(``batches``), so jobs become visible in marker order with HTTP posts.

A reservation is a claim tag on the message (``ci``, ``ce``, ``ct``) set by
one conditional single-document update that only matches a message free at
update time, exactly as ``claims`` tags messages: a message is never held by
two live claims whichever transport asks. Every later change to a reserved
job is conditioned on its recorded claim id, so a stale reserver can never
undo another's reservation. The burial order comes from a counter on the
queue record (``bn``), taken with one atomic ``$inc``.

Retries (see ``driver``): puts, reads and touches are run again after a
failover. The other state changes answer what they did only on their first
run (a release run again after its write would find its claim gone and
say NOT_FOUND; a reserve could leave a job reserved by nobody), so they
are run again only when one of their reads failed before their first
write (``storage_call_unless_run``; those reads go through
``read_first``). A bury reads its job again after taking a burial number:
run again then, it only leaves a gap in the numbers.
"""

from pymongo import ReturnDocument
from txmongo import filter as qf
from zope.interface import implementer

from marconi_tx import json_text
from marconi_tx.storage.ids import is_job_id, new_claim_id
from marconi_tx.storage.interfaces import DEFAULT_TTR, IJobController
from marconi_tx.storage.mongodb import batches
from marconi_tx.storage.mongodb.driver import read_first, storage_call, storage_call_unless_run
from marconi_tx.storage.mongodb.messages import documents, free, publish
from marconi_tx.storage.mongodb.schema import marker, queue_key
from marconi_tx.storage.records import Job, JobCounts
from marconi_tx.storage.rules import URGENT_PRIORITY, job_state, whole_second_after

BY_PRIORITY = qf.sort(qf.ASCENDING("pr") + qf.ASCENDING("_id"))
BY_AVAILABILITY = qf.sort(qf.ASCENDING("av") + qf.ASCENDING("_id"))
BY_BURIAL = qf.sort(qf.ASCENDING("bo"))
#: Queue record fields a job lookup needs (metadata can be large).
RECORD_FIELDS = {"p": 1, "n": 1, "top": 1, "pend": 1}


def ready(now):
    """The condition of a job ``reserve`` may take."""
    return {**free(now), "av": {"$lte": now}}


def delayed(now):
    return {**free(now), "av": {"$gt": now}}


def to_job(doc, queue, now):
    """A message document of ``queue`` -> a ``Job`` (plain ints)."""
    created = int(doc["c"])
    return Job(
        id=int(doc["_id"]), queue=queue, body=json_text.stored(doc["b"]),
        state=job_state(doc["ce"], doc["bu"], doc["av"], now), priority=int(doc["pr"]),
        ttr=int(doc.get("tr", DEFAULT_TTR)), delay=int(doc.get("dl", 0)),
        age=now - created, created=created,
        available_at=int(doc["av"]), claim_id=doc.get("ci"),
        claim_expires=int(doc["ce"]), reserves=int(doc["cc"]),
        timeouts=int(doc.get("to", 0)), releases=int(doc.get("rl", 0)),
        buries=int(doc.get("bc", 0)), kicks=int(doc.get("kc", 0)),
    )


@implementer(IJobController)
class JobController:
    def __init__(self, driver):
        self.driver = driver

    # -- helpers -----------------------------------------------------------

    @property
    def messages(self):
        return self.driver.db.messages

    def _after(self, seconds):
        """The whole second at or after ``seconds`` from now (not from the
        whole second ``driver.now()``)."""
        return whole_second_after(self.driver.reactor.seconds(), seconds)

    async def _lookup(self, project, job_id, now):
        """(document, queue name) of a live, visible job of ``project``, or
        None."""
        if not is_job_id(job_id):
            return None
        doc = await read_first(self.messages.find_one({"_id": marker(job_id),
                                                        "e": {"$gt": now}}))
        if doc is None:
            return None
        record = await read_first(self.driver.db.queues.find_one({"_id": doc["q"]},
                                                                 RECORD_FIELDS))
        # A message of a deleted queue, of another project, or of a batch not
        # yet published is no job.
        if (record is None or record["p"] != project
                or not batches.QueueView(record, now).visible(job_id)):
            return None
        return doc, record["n"]

    async def _take(self, doc, now, condition):
        """Tag ``doc`` with a new claim for its ttr if it still matches
        ``condition``; the updated document, or None if it changed first."""
        ttr = int(doc.get("tr", DEFAULT_TTR))
        claim_id = new_claim_id()
        expires = self._after(ttr)
        update = {"$set": {"ci": claim_id, "ce": expires, "ct": ttr}, "$inc": {"cc": 1}}
        # Only fields that change are written (the hot path sets none).
        if doc["bu"]:
            update["$set"]["bu"] = False
            update["$unset"] = {"bo": ""}
        if doc["av"] > now:
            update["$set"]["av"] = now
        taken = await self.messages.find_one_and_update(
            {"_id": doc["_id"], "q": doc["q"], "e": {"$gt": now}, **condition}, update,
            return_document=ReturnDocument.AFTER)
        if taken is not None and taken["e"] < expires:
            await self._outlive(taken, claim_id, expires, ttr)
        return taken

    async def _outlive(self, doc, claim_id, expires, ttr):
        """Extend the message to outlast its claim (semantics.md 3.3, no
        grace); conditioned on the claim, so a lost race changes nothing."""
        await self.messages.update_one(
            {"_id": doc["_id"], "q": doc["q"], "ci": claim_id, "e": {"$lt": expires}},
            {"$set": {"e": expires, "t": ttr}})
        doc["e"], doc["t"] = expires, ttr

    async def _end_claim(self, project, job_id, claim_id, now, update):
        """Apply ``update`` and remove the claim if ``claim_id`` is the claim
        recorded on the job; the queue name, or None."""
        found = await self._lookup(project, job_id, now)
        if found is None or claim_id is None or found[0].get("ci") != claim_id:
            return None
        doc, queue = found
        update.setdefault("$set", {})["ce"] = 0
        update.setdefault("$unset", {})["ci"] = ""
        result = await self.messages.update_one(
            {"_id": doc["_id"], "q": doc["q"], "ci": claim_id}, update)
        return queue if result.modified_count else None

    async def _views(self, project, queues, ordered=False):
        """(name, ``QueueView``) of each existing queue among ``queues``."""
        views = []
        for queue in queues:
            view = await read_first(batches.view(self.driver, project, queue, ordered=ordered))
            if view is not None:
                views.append((queue, view))
        return views

    async def _first(self, project, queue, condition, sort, ordered=False):
        """The first job of ``queue`` matching ``condition`` in ``sort``."""
        now = self.driver.now()
        view = await batches.view(self.driver, project, queue, ordered=ordered)
        if view is None:
            return None
        docs = await self.messages.find({**view.query(now, ordered=ordered), **condition},
                                        sort=sort, limit=1)
        return to_job(docs[0], queue, now) if docs else None

    # -- IJobController ----------------------------------------------------

    def put(self, project, queue, body, ttl, priority, delay, ttr):
        now = self.driver.now()
        publication = batches.Publication()  # see messages.MessageController.post
        return self.driver.retried(lambda: self._put(
            project, queue, body, ttl, priority, delay, ttr, now, publication))

    async def _put(self, project, queue, body, ttl, priority, delay, ttr, now, publication):
        [row] = documents([{"body": body, "ttl": ttl, "priority": priority}], now)
        row["av"] = self._after(delay) if delay else now
        row["tr"], row["dl"] = ttr, delay
        [job_id] = await publish(self.driver, project, queue, [row], create=True,
                                 publication=publication)
        self.driver.events.notify(project, queue)
        return job_id

    @storage_call_unless_run
    async def reserve(self, project, queues):
        views = await self._views(project, queues, ordered=True)
        # A lost race means another consumer took that job: look again until
        # a job is won or none is ready (giving up earlier could leave a
        # waiting consumer asleep beside ready jobs, since nothing notifies
        # it of jobs another daemon leaves). operation_timeout bounds this.
        while True:
            now = self.driver.now()
            best = None
            for queue, view in views:
                docs = await read_first(self.messages.find(
                    {**view.query(now, ordered=True), **ready(now)}, sort=BY_PRIORITY, limit=1))
                if docs and (best is None or (docs[0]["pr"], docs[0]["_id"])
                             < (best[0]["pr"], best[0]["_id"])):
                    best = docs[0], queue
            if best is None:
                return None
            doc, queue = best
            taken = await self._take(doc, now, ready(now))
            if taken is not None:
                return to_job(taken, queue, now)

    @storage_call_unless_run
    async def reserve_job(self, project, job_id):
        now = self.driver.now()
        found = await self._lookup(project, job_id, now)
        if found is None or found[0]["ce"] > now:
            return None
        doc, queue = found
        # Also unchanged since read: a release or kick in between would
        # otherwise be half overwritten by the fields _take derives from doc.
        taken = await self._take(doc, now, {"ce": {"$lte": now}, "av": doc["av"],
                                            "bu": doc["bu"]})
        return None if taken is None else to_job(taken, queue, now)

    @storage_call
    async def next_change(self, project, queues):
        now = self.driver.now()
        soonest = None
        for _, view in await self._views(project, queues):
            visible = view.query(now)
            for condition, field in (({"bu": False, "av": {"$gt": now}}, "av"),
                                     ({"ce": {"$gt": now}}, "ce")):
                docs = await self.messages.find({**visible, **condition}, {field: 1},
                                                sort=qf.sort(qf.ASCENDING(field)), limit=1)
                if docs and (soonest is None or docs[0][field] < soonest):
                    soonest = int(docs[0][field])
        return soonest

    @storage_call
    async def touch(self, project, job_id, claim_id):
        now = self.driver.now()
        found = await self._lookup(project, job_id, now)
        if (found is None or claim_id is None or found[0].get("ci") != claim_id
                or found[0]["ce"] <= now):
            return False
        doc = found[0]
        ttr = int(doc.get("tr", DEFAULT_TTR))
        expires = self._after(ttr)
        result = await self.messages.update_one(
            {"_id": doc["_id"], "q": doc["q"], "ci": claim_id, "ce": {"$gt": now}},
            {"$set": {"ce": expires}})
        if not result.modified_count:
            return False
        if doc["e"] < expires:
            await self._outlive(doc, claim_id, expires, ttr)
        return True

    @storage_call_unless_run
    async def release(self, project, job_id, claim_id, priority, delay):
        now = self.driver.now()
        queue = await self._end_claim(project, job_id, claim_id, now, {
            "$set": {"pr": priority, "av": self._after(delay) if delay else now, "dl": delay},
            "$inc": {"rl": 1}})
        if queue is None:
            return False
        self.driver.events.notify(project, queue)
        return True

    @storage_call_unless_run
    async def bury(self, project, job_id, claim_id, priority):
        now = self.driver.now()
        found = await self._lookup(project, job_id, now)
        if found is None or claim_id is None or found[0].get("ci") != claim_id:
            return False
        # Taking a burial number that ends up unused only leaves a gap.
        record = await self.driver.db.queues.find_one_and_update(
            {**queue_key(project, found[1]), "_id": found[0]["q"]}, {"$inc": {"bn": 1}},
            projection={"bn": 1},
            return_document=ReturnDocument.AFTER)
        if record is None:
            return False
        queue = await self._end_claim(project, job_id, claim_id, now, {
            "$set": {"pr": priority, "bu": True, "bo": record["bn"]}, "$inc": {"bc": 1}})
        return queue is not None

    @storage_call_unless_run
    async def abandon(self, project, job_id, claim_id, timed_out):
        now = self.driver.now()
        update = {"$inc": {"to": 1}} if timed_out else {}
        queue = await self._end_claim(project, job_id, claim_id, now, update)
        if queue is None:
            return False
        self.driver.events.notify(project, queue)
        return True

    @storage_call_unless_run
    async def delete(self, project, job_id, claim_id=None):
        now = self.driver.now()
        found = await self._lookup(project, job_id, now)
        if found is None:
            return None
        doc, queue = found
        if claim_id is None:
            condition = {"ce": {"$lte": now}}
        else:
            condition = {"ci": claim_id}
        result = await self.messages.delete_one({"_id": doc["_id"], "q": doc["q"], **condition})
        return queue if result.deleted_count else None

    @storage_call
    async def peek(self, project, job_id):
        now = self.driver.now()
        found = await self._lookup(project, job_id, now)
        return None if found is None else to_job(*found, now)

    @storage_call
    async def peek_ready(self, project, queue):
        return await self._first(project, queue, ready(self.driver.now()), BY_PRIORITY,
                                 ordered=True)

    @storage_call
    async def peek_delayed(self, project, queue):
        return await self._first(project, queue, delayed(self.driver.now()), BY_AVAILABILITY)

    @storage_call
    async def peek_buried(self, project, queue):
        return await self._first(project, queue, {"bu": True}, BY_BURIAL)

    @storage_call_unless_run
    async def kick(self, project, queue, bound):
        if bound <= 0:
            return 0
        now = self.driver.now()
        view = await read_first(batches.view(self.driver, project, queue))
        if view is None:
            return 0
        visible = view.query(now)
        kicked = 0
        # Buried jobs first, in burial order; only if there are none, the
        # delayed ones in the order they would become ready.
        for condition, sort, update in (
                ({"bu": True}, BY_BURIAL,
                 {"$set": {"bu": False}, "$unset": {"bo": ""}, "$min": {"av": now}}),
                (delayed(now), BY_AVAILABILITY, {"$set": {"av": now}})):
            docs = await read_first(self.messages.find({**visible, **condition}, {"_id": 1},
                                                       sort=sort, limit=bound))
            if not docs:
                continue
            result = await self.messages.update_many(
                {"_id": {"$in": [d["_id"] for d in docs]}, "q": view.id, **condition},
                {**update, "$inc": {"kc": 1}})
            kicked = result.modified_count
            break
        if kicked:
            self.driver.events.notify(project, queue)
        return kicked

    @storage_call_unless_run
    async def kick_job(self, project, job_id):
        now = self.driver.now()
        found = await self._lookup(project, job_id, now)
        if found is None:
            return False
        doc, queue = found
        state = job_state(doc["ce"], doc["bu"], doc["av"], now)
        if state == "buried":
            condition = {"bu": True}
            update = {"$set": {"bu": False}, "$unset": {"bo": ""}, "$min": {"av": now}}
        elif state == "delayed":
            condition = delayed(now)
            update = {"$set": {"av": now}}
        else:
            return False
        result = await self.messages.update_one(
            {"_id": doc["_id"], "q": doc["q"], **condition}, {**update, "$inc": {"kc": 1}})
        if not result.modified_count:
            return False
        self.driver.events.notify(project, queue)
        return True

    @storage_call
    async def counts(self, project, queue=None):
        now = self.driver.now()
        where = {"p": project} if queue is None else queue_key(project, queue)
        records = await self.driver.db.queues.find(where, batches.VIEW_FIELDS)
        if not records:
            return JobCounts(urgent=0, ready=0, reserved=0, delayed=0, buried=0, queues=0)
        queries = [batches.QueueView(r, now).query(now) for r in records]
        reserved = {"$gt": ["$ce", now]}
        unheld = {"$lte": ["$ce", now]}
        buried = {"$and": [unheld, {"$eq": ["$bu", True]}]}
        waiting = {"$and": [unheld, {"$eq": ["$bu", False]}]}
        is_ready = {"$and": [waiting, {"$lte": ["$av", now]}]}
        sums = {
            "urgent": {"$and": [is_ready, {"$lt": ["$pr", URGENT_PRIORITY]}]},
            "ready": is_ready,
            "reserved": reserved,
            "delayed": {"$and": [waiting, {"$gt": ["$av", now]}]},
            "buried": buried,
        }
        rows = await self.messages.aggregate([
            {"$match": queries[0] if len(queries) == 1 else {"$or": queries}},
            {"$group": {"_id": None, **{k: {"$sum": {"$cond": [v, 1, 0]}}
                                        for k, v in sums.items()}}},
        ])
        found = {k: int(rows[0][k]) for k in sums} if rows else dict.fromkeys(sums, 0)
        return JobCounts(**found, queues=len(records))
