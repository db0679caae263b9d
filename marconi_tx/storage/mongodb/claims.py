"""Claims on MongoDB.

A claim lives only in the messages it holds (``ci`` claim id, ``ce`` claim
expiry, ``ct`` claim ttl); there is no claim record, so a claim whose
messages are all gone is "not found". Creating one selects candidates in
marker order, then tags them with one conditional ``update_many`` that only
matches messages free *at update time*: a message a concurrent claimer
(another connection or daemon) tagged first is skipped, so two live claims
never share a message. What was won is then read back by claim id.

With a dead-letter policy, the selected messages claimed ``max_claims``
times or more are moved (``dead_letters``) instead of claimed, and the
claim's update requires fewer claims: a message is either moved or claimed,
by one consumer. Moved messages use up their places in the claim's
``limit``, as the other drivers count them.

Retries (a failover, a dropped connection): the claim id is fixed before
the first attempt, so messages an attempt tagged before it failed (its
answer lost) belong to the claim a retry returns: the retry first renews
them and counts them against the limit. A claim that fails for good must
not leave messages held by a claim nobody got: messages are first tagged
until a *provisional* expiry (``batches.pending_window``: past the time
any attempt can take) and given the claim's own expiry by the claim's last
write; a claim that fails is also released in the background. So what a
failed claim tagged is free again within that window at worst (a lasting
outage, a daemon killed mid-claim), not when its ttl ends. The residue: a
last write that ran but whose answer was lost, then no retry nor release
reaching the server: those messages wait for the claim's ttl. The price
is that last write (one more round trip when the ttl exceeds the window),
paid back when no message needs its life extended for the claim (the
candidates' expiries tell; the extension's round trip is then skipped).
"""

import itertools

from twisted.internet import defer
from txmongo import filter as qf
from zope.interface import implementer

from marconi_tx import errors
from marconi_tx.storage.ids import is_claim_id, new_claim_id
from marconi_tx.storage.interfaces import IClaimController
from marconi_tx.storage.mongodb import batches, dead_letters
from marconi_tx.storage.mongodb.driver import storage_call
from marconi_tx.storage.mongodb.messages import BY_MARKER, TAKE_ROUNDS, free
from marconi_tx.storage.mongodb.schema import ID_ONLY, find_queue, to_message
from marconi_tx.storage.records import Claim
from marconi_tx.storage.rules import whole_second_after
from marconi_tx.validation import INT64_MAX

FREE_ORDER = BY_MARKER + qf.hint("queue_claim_expiry")


def to_claim(claim_id, ttl, expires, docs, now):
    """A ``Claim`` of ``ttl`` seconds expiring at ``expires``, holding the
    message documents ``docs`` (its age counts from its last renewal)."""
    return Claim(id=claim_id, ttl=ttl, age=now - (expires - ttl), expires=expires,
                 messages=tuple(to_message(doc, now) for doc in docs))


@implementer(IClaimController)
class ClaimController:
    def __init__(self, driver):
        self.driver = driver

    def create(self, project, queue, ttl, grace, limit, dead_letter=None):
        if limit <= 0:
            return defer.succeed(None)
        claim_id = new_claim_id()
        attempts = itertools.count()
        d = self.driver.retried(lambda: self._create(
            project, queue, ttl, grace, limit, dead_letter, claim_id, next(attempts) > 0))

        def release(failure):
            # Until the claim would have ended: what an attempt tagged is
            # freed even if the storage stays away for a while.
            self.driver.background(lambda: self._release(project, queue, claim_id),
                                   until=self.driver.now() + ttl)
            return failure

        return d.addErrback(release)

    async def _create(self, project, queue, ttl, grace, limit, dead_letter, claim_id, retry):
        snapshot = await batches.view(self.driver, project, queue, ordered=True)
        if snapshot is None:
            return None
        messages = self.driver.db.messages
        now = self.driver.now()
        expires = whole_second_after(now, ttl)
        window = batches.pending_window(self.driver.settings.operation_timeout)
        provisional = min(expires, whole_second_after(now, window))
        until = whole_second_after(expires, grace)
        condition = {"q": snapshot.id, "e": {"$gt": now}, **free(now)}
        fields = {"_id": 1, "e": 1}
        if dead_letter is not None:
            condition["cc"] = {"$lt": dead_letter.max_claims}
            fields["cc"] = 1
        won = moved = 0
        # Whether a tagged message may expire before the claim's end plus
        # grace (it then needs extending; messages an earlier attempt tagged
        # are not known here).
        short_lived = retry
        if retry:
            # What an earlier attempt tagged is this claim's: renewed, counted.
            result = await messages.update_many(
                {"q": snapshot.id, "ci": claim_id}, {"$set": {"ce": provisional, "ct": ttl}})
            won = result.matched_count
        for _ in range(TAKE_ROUNDS):
            wanted = limit - won - moved
            if wanted <= 0:
                break
            candidates = await self._free(messages, snapshot, now, wanted, fields)
            if not candidates:
                break
            markers = [doc["_id"] for doc in candidates]
            if dead_letter is not None:
                dead = [doc["_id"] for doc in candidates
                        if doc["cc"] >= dead_letter.max_claims]
                moved += await dead_letters.move(
                    self.driver, project, snapshot.id, dead, dead_letter, now)
                markers = [m for m in markers if m not in dead]
            if markers:
                result = await messages.update_many(
                    {"_id": {"$in": markers}, **condition},
                    {"$set": {"ci": claim_id, "ce": provisional, "ct": ttl}, "$inc": {"cc": 1}})
                won += result.modified_count
                tagged = set(markers)
                short_lived = short_lived or any(
                    doc["e"] < until for doc in candidates if doc["_id"] in tagged)
            if won + moved >= limit or len(candidates) < wanted:
                break
        if not won:
            return None
        if short_lived:
            await self._extend(snapshot.id, claim_id, expires, ttl, grace, tagged=provisional)
        docs = await messages.find({"q": snapshot.id, "ci": claim_id}, sort=BY_MARKER)
        if provisional < expires:
            # The last write: the claim is whole (a retry would renew it).
            await messages.update_many({"q": snapshot.id, "ci": claim_id},
                                       {"$set": {"ce": expires}})
            for doc in docs:
                doc["ce"] = expires
        return to_claim(claim_id, ttl, expires, docs, now)

    @staticmethod
    async def _free(messages, snapshot, now, wanted, fields=ID_ONLY):
        """
        The ``fields`` of the oldest ``wanted`` free messages, in marker
        order, at a cost independent of the live claims ahead of them: the
        never claimed or released ones (ce 0) come in marker order from the
        queue_claim_expiry index, those whose claim expired from its ce range
        (sorted; few, as the next claims take them first, being the oldest),
        merged. The index is named: a planner may otherwise pick
        queue_marker for its order and walk the claimed messages again.
        """
        query = {**snapshot.query(now, ordered=True), "bu": False, "av": {"$lte": now}}
        found = []
        for claim_expiry in (0, {"$gt": 0, "$lte": now}):
            found += await messages.find({**query, "ce": claim_expiry}, fields,
                                         sort=FREE_ORDER, limit=wanted)
        return sorted(found, key=lambda doc: doc["_id"])[:wanted]

    async def _extend(self, qid, claim_id, expires, ttl, grace, tagged=None):
        """semantics.md 3.3: a claimed message outlives its claim (expiring
        at ``expires``) by the grace. ``tagged``: the claim expiry its
        messages carry now, if not ``expires`` (a claim being created)."""
        until = whole_second_after(expires, grace)
        await self.driver.db.messages.update_many(
            {"q": qid, "ci": claim_id, "ce": tagged or expires, "e": {"$lt": until}},
            {"$set": {"e": until, "t": min(ttl + grace, INT64_MAX)}})

    async def _queue_id(self, project, queue, claim_id):
        """The queue record's id; ClaimDoesNotExist for a malformed claim id
        or a missing queue."""
        if is_claim_id(claim_id):
            doc = await find_queue(self.driver, project, queue)
            if doc is not None:
                return doc["_id"]
        raise errors.ClaimDoesNotExist(claim_id, queue)

    @storage_call
    async def get(self, project, queue, claim_id):
        qid = await self._queue_id(project, queue, claim_id)
        now = self.driver.now()
        docs = await self.driver.db.messages.find(
            {"q": qid, "ci": claim_id, "ce": {"$gt": now}, "e": {"$gt": now}}, sort=BY_MARKER)
        if not docs:
            raise errors.ClaimDoesNotExist(claim_id, queue)
        return to_claim(claim_id, int(docs[0]["ct"]), int(docs[0]["ce"]), docs, now)

    @storage_call
    async def update(self, project, queue, claim_id, ttl, grace=0):
        qid = await self._queue_id(project, queue, claim_id)
        now = self.driver.now()
        expires = whole_second_after(now, ttl)
        result = await self.driver.db.messages.update_many(
            {"q": qid, "ci": claim_id, "ce": {"$gt": now}, "e": {"$gt": now}},
            {"$set": {"ce": expires, "ct": ttl}})
        if not result.matched_count:
            raise errors.ClaimDoesNotExist(claim_id, queue)
        await self._extend(qid, claim_id, expires, ttl, grace)

    @storage_call
    async def delete(self, project, queue, claim_id):
        if is_claim_id(claim_id):
            await self._release(project, queue, claim_id)

    async def _release(self, project, queue, claim_id):
        """Free the messages ``claim_id`` holds in (project, queue)."""
        doc = await find_queue(self.driver, project, queue)
        if doc is not None:
            result = await self.driver.db.messages.update_many(
                {"q": doc["_id"], "ci": claim_id},
                {"$unset": {"ci": ""}, "$set": {"ce": 0}})
            if result.modified_count:
                # Released messages are claimable again: wake waiting consumers.
                self.driver.events.notify(project, queue)
