"""The pooled ``IQueueController``: each queue's calls go to its pool."""

from zope.interface import implementer

from marconi_tx import errors
from marconi_tx.deferreds import returns_deferred
from marconi_tx.queue_attributes import DEAD_LETTER_QUEUE
from marconi_tx.storage.interfaces import IQueueController
from marconi_tx.storage.pooling import ids, placement
from marconi_tx.storage.pooling.merge import first, gathered


def _name(queue):
    return queue.name


@implementer(IQueueController)
class QueueController:
    def __init__(self, driver):
        self.driver = driver

    async def _pool(self, project, queue):
        pool = await self.driver.route(project, queue)
        if pool is None:
            raise errors.QueueDoesNotExist(queue, project)
        return pool

    @returns_deferred
    async def create(self, project, queue, metadata=None):
        pool = await self.driver.place(
            project, queue, (metadata or {}).get(placement.FLAVOR),
            near=await self.driver.dead_letter_home(project, metadata))
        await self.driver.place_dead_letter_queue(
            project, queue, pool, (metadata or {}).get(DEAD_LETTER_QUEUE))
        return await pool.driver.queues.create(project, queue, metadata)

    @returns_deferred
    async def exists(self, project, queue):
        pool = await self.driver.route(project, queue)
        return pool is not None and await pool.driver.queues.exists(project, queue)

    @returns_deferred
    async def delete(self, project, queue):
        pool = await self.driver.route(project, queue)
        if pool is not None:
            await pool.driver.queues.delete(project, queue)

    @returns_deferred
    async def list(self, project, marker=None, limit=10, detailed=False, name=None,
                   metadata=None):
        pages = await gathered(
            pool.driver.queues.list(project, marker, limit, detailed, name, metadata)
            for pool in await self.driver.every_pool())
        return first(pages, _name, limit)

    @returns_deferred
    async def count(self, project):
        counts = await gathered(pool.driver.queues.count(project)
                                for pool in await self.driver.every_pool())
        return sum(counts)

    @returns_deferred
    async def get_metadata(self, project, queue):
        pool = await self._pool(project, queue)
        return await pool.driver.queues.get_metadata(project, queue)

    @returns_deferred
    async def set_metadata(self, project, queue, metadata):
        pool = await self._pool(project, queue)
        await self.driver.place_dead_letter_queue(
            project, queue, pool, (metadata or {}).get(DEAD_LETTER_QUEUE))
        await pool.driver.queues.set_metadata(project, queue, metadata)

    @returns_deferred
    async def stats(self, project, queue):
        pool = await self._pool(project, queue)
        return ids.stats(await pool.driver.queues.stats(project, queue), pool.number)
