"""The pooled ``IMessageController`` and ``IClaimController``: each queue's
calls go to its pool, ids translated both ways (``ids``)."""

from zope.interface import implementer

from marconi_tx import errors
from marconi_tx.deferreds import returns_deferred
from marconi_tx.storage.interfaces import IClaimController, IMessageController
from marconi_tx.storage.pooling import ids


@implementer(IMessageController)
class MessageController:
    def __init__(self, driver):
        self.driver = driver

    @returns_deferred
    async def post(self, project, queue, messages, client_uuid=None, create=False):
        if create:
            pool = await self.driver.place(project, queue)
        else:
            pool = await self.driver.route(project, queue)
            if pool is None:
                raise errors.QueueDoesNotExist(queue, project)
        posted = await pool.driver.messages.post(project, queue, messages, client_uuid, create)
        number = pool.number
        return [str(ids.to_global(int(local), number)) for local in posted]

    @returns_deferred
    async def list(self, project, queue, marker=None, limit=10, echo=False, client_uuid=None,
                   include_claimed=False, include_delayed=False):
        pool = await self.driver.route(project, queue)
        if pool is None:
            return []
        if marker is not None:
            marker = ids.local_marker(marker, pool.number)
        listed = await pool.driver.messages.list(project, queue, marker, limit, echo,
                                                 client_uuid, include_claimed, include_delayed)
        return ids.messages(listed, pool.number)

    @returns_deferred
    async def get(self, project, queue, message_id):
        pool = await self.driver.route(project, queue)
        local = None if pool is None else ids.local_text(message_id, pool.number)
        if local is None:
            raise errors.MessageDoesNotExist(message_id)
        try:
            found = await pool.driver.messages.get(project, queue, local)
        except errors.MessageDoesNotExist:
            raise errors.MessageDoesNotExist(message_id, queue)  # named as the caller knows it
        return ids.message(found, pool.number)

    @returns_deferred
    async def bulk_get(self, project, queue, message_ids):
        pool = await self.driver.route(project, queue)
        if pool is None:
            return []
        found = await pool.driver.messages.bulk_get(
            project, queue, ids.local_texts(message_ids, pool.number))
        return ids.messages(found, pool.number)

    @returns_deferred
    async def delete(self, project, queue, message_id, claim_id=None):
        pool = await self.driver.route(project, queue)
        if pool is None:
            return
        # An id of another pool is one this queue does not have: "0" is one
        # no message has, and the pool's driver answers it as it does those.
        local = ids.local_text(message_id, pool.number) or "0"
        try:
            await pool.driver.messages.delete(project, queue, local, claim_id)
        except (errors.MessageIsClaimed, errors.MessageNotClaimed, errors.ClaimMismatch) as e:
            raise type(e)(message_id)  # named as the caller knows it

    @returns_deferred
    async def bulk_delete(self, project, queue, message_ids):
        pool = await self.driver.route(project, queue)
        if pool is not None:
            await pool.driver.messages.bulk_delete(
                project, queue, ids.local_texts(message_ids, pool.number))

    @returns_deferred
    async def pop(self, project, queue, limit):
        pool = await self.driver.route(project, queue)
        if pool is None:
            return []
        return ids.messages(await pool.driver.messages.pop(project, queue, limit), pool.number)

    @returns_deferred
    async def purge(self, project, queue):
        pool = await self.driver.route(project, queue)
        return 0 if pool is None else await pool.driver.messages.purge(project, queue)


@implementer(IClaimController)
class ClaimController:
    def __init__(self, driver):
        self.driver = driver

    @returns_deferred
    async def create(self, project, queue, ttl, grace, limit, dead_letter=None):
        pool = await self.driver.route(project, queue)
        if pool is None:
            return None
        if dead_letter is not None:
            # The move happens inside the pool: the dead-letter queue must be
            # there (set_metadata placed it; this places one named before).
            await self.driver.place_dead_letter_queue(project, queue, pool, dead_letter.queue)
        claim = await pool.driver.claims.create(project, queue, ttl, grace, limit, dead_letter)
        return ids.claim(claim, pool.number)

    @returns_deferred
    async def get(self, project, queue, claim_id):
        pool = await self.driver.route(project, queue)
        if pool is None:
            raise errors.ClaimDoesNotExist(claim_id)
        return ids.claim(await pool.driver.claims.get(project, queue, claim_id), pool.number)

    @returns_deferred
    async def update(self, project, queue, claim_id, ttl, grace=0):
        pool = await self.driver.route(project, queue)
        if pool is None:
            raise errors.ClaimDoesNotExist(claim_id)
        await pool.driver.claims.update(project, queue, claim_id, ttl, grace)

    @returns_deferred
    async def delete(self, project, queue, claim_id):
        pool = await self.driver.route(project, queue)
        if pool is not None:
            await pool.driver.claims.delete(project, queue, claim_id)
