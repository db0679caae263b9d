"""Dead-letter moves on MongoDB (``IClaimController.create`` with a
``DeadLetter``).

A message a claim selects after ``max_claims`` claims moves instead to the
dead-letter queue of the same project: one conditional
``find_one_and_update`` per message sets its queue (``q``) to the
dead-letter queue's record, frees it and restarts its claim count, only if
it is still in the source queue, unexpired, free and claimed ``max_claims``
times or more. A message is thus in exactly one queue at any time, and of
two consumers selecting it at once one moves it and the other neither moves
nor claims it (the claim's own update requires fewer claims).

Visibility in the dead-letter queue (see ``batches``): a moved message keeps
its id, which is its marker. That marker was handed out by the global
counter for a batch of the source queue, so it lies in no pending or aborted
range of the dead-letter queue. Before the move, the dead-letter queue's
``top`` is raised to at least that marker (``$max``), as registering a batch
of one message would; there is nothing to commit, so the message is visible
there as soon as it moves, in marker order among that queue's messages
(ordered reads still stop below a pending batch of the dead-letter queue).
Raising ``top`` first is safe even if the move then loses its race: a
producer of the dead-letter queue holding a block below the new ``top``
only takes another block (``batches`` step 2). The consequence of keeping
the id: a moved message sorts in the dead-letter queue by when it was first
posted, so a reader that paged past its marker before the move does not see
it on that pass; claims, pops, gets, stats and a listing from the start do.
The other drivers order moved messages the same way (the marker is the id).
"""

from twisted.internet import defer

from marconi_tx import errors
from marconi_tx.storage.mongodb.messages import free
from marconi_tx.storage.mongodb.queues import create as create_queue
from marconi_tx.storage.mongodb.schema import marker, queue_key
from marconi_tx.storage.rules import whole_second_after

#: Attempts to find the dead-letter queue, creating it if missing, when it
#: is deleted again in between.
TARGET_ROUNDS = 3


async def target(driver, project, queue, highest):
    """The record id of the dead-letter queue (project, queue), created if
    missing, its ``top`` raised to at least marker ``highest``."""
    for attempt in range(TARGET_ROUNDS):
        if attempt:
            await create_queue(driver, project, queue)
        doc = await driver.db.queues.find_one_and_update(
            queue_key(project, queue), {"$max": {"top": marker(highest)}},
            projection={"_id": 1})
        if doc is not None:
            return doc["_id"]
    raise errors.StorageUnavailable(
        f"dead-letter queue {queue!r} kept being deleted while messages moved to it; retry")


async def move(driver, project, source, markers, dead_letter, now):
    """
    Move the messages ``markers`` of the queue record ``source`` to
    ``dead_letter.queue`` where they are still free and claimed
    ``dead_letter.max_claims`` times or more.

    @return: how many moved.
    """
    if not markers:
        return 0
    into = await target(driver, project, dead_letter.queue, max(markers))
    update = {"$set": {"q": into, "ce": 0, "cc": 0}, "$unset": {"ci": ""}}
    if dead_letter.ttl is not None:
        update["$set"].update(t=dead_letter.ttl, e=whole_second_after(now, dead_letter.ttl))
    moved = await defer.gatherResults([
        driver.db.messages.find_one_and_update(
            {"_id": m, "q": source, "e": {"$gt": now}, **free(now),
             "cc": {"$gte": dead_letter.max_claims}},
            update, projection={"_id": 1})
        for m in markers], consumeErrors=True)
    count = sum(doc is not None for doc in moved)
    if count:
        # Free messages arrived there: wake its waiting consumers.
        driver.events.notify(project, dead_letter.queue)
    return count
