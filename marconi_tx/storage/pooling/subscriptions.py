"""The pooled ``ISubscriptionController``: a subscription is kept in the
pool of its queue (placed when a subscription comes first), so that its
cursor is a marker of that pool; cursors leave as global ids (``ids``)."""

from zope.interface import implementer

from marconi_tx import errors
from marconi_tx.deferreds import returns_deferred
from marconi_tx.storage.interfaces import ISubscriptionController
from marconi_tx.storage.pooling import ids
from marconi_tx.storage.pooling.merge import first, gathered


def _id(subscription):
    return subscription.id


@implementer(ISubscriptionController)
class SubscriptionController:
    def __init__(self, driver):
        self.driver = driver

    async def _pool(self, project, queue, subscription_id):
        pool = await self.driver.route(project, queue)
        if pool is None:
            raise errors.SubscriptionDoesNotExist(subscription_id)
        return pool

    @returns_deferred
    async def create(self, project, queue, subscriber, ttl, options):
        pool = await self.driver.place(project, queue)
        return await pool.driver.subscriptions.create(project, queue, subscriber, ttl, options)

    @returns_deferred
    async def list(self, project, queue, marker=None, limit=10):
        pool = await self.driver.route(project, queue)
        if pool is None:
            return []
        listed = await pool.driver.subscriptions.list(project, queue, marker, limit)
        return [ids.subscription(s, pool.number) for s in listed]

    @returns_deferred
    async def get(self, project, queue, subscription_id):
        pool = await self._pool(project, queue, subscription_id)
        found = await pool.driver.subscriptions.get(project, queue, subscription_id)
        return ids.subscription(found, pool.number)

    @returns_deferred
    async def update(self, project, queue, subscription_id, subscriber=None, ttl=None,
                     options=None):
        pool = await self._pool(project, queue, subscription_id)
        await pool.driver.subscriptions.update(project, queue, subscription_id, subscriber,
                                               ttl, options)

    @returns_deferred
    async def delete(self, project, queue, subscription_id):
        pool = await self.driver.route(project, queue)
        if pool is not None:
            await pool.driver.subscriptions.delete(project, queue, subscription_id)

    @returns_deferred
    async def confirm(self, project, queue, subscription_id, confirmed):
        pool = await self._pool(project, queue, subscription_id)
        await pool.driver.subscriptions.confirm(project, queue, subscription_id, confirmed)

    @returns_deferred
    async def purge(self, project, queue):
        pool = await self.driver.route(project, queue)
        return 0 if pool is None else await pool.driver.subscriptions.purge(project, queue)

    @returns_deferred
    async def scan(self, marker=None, limit=100):
        pools = await self.driver.every_pool()
        pages = await gathered(pool.driver.subscriptions.scan(marker, limit) for pool in pools)
        return first(([ids.subscription(s, pool.number) for s in page]
                      for pool, page in zip(pools, pages)), _id, limit)

    @returns_deferred
    async def advance(self, project, queue, subscription_id, cursor):
        pool = await self.driver.route(project, queue)
        if pool is not None:
            await pool.driver.subscriptions.advance(project, queue, subscription_id,
                                                    ids.local_cursor(cursor, pool.number))
