"""The pooled ``IJobController``: calls naming queues go to their pools,
calls naming a job go to the pool its id names (``ids``).

``reserve`` over queues of several pools first peeks at each pool's best
ready job and reserves in the pool of the lowest ``(priority, id)``, then
in the next if another consumer took it meanwhile: the priority order
across pools holds as long as no other consumer reserves at the same
moment (within one pool it always holds).
"""

import dataclasses

from zope.interface import implementer

from marconi_tx.deferreds import returns_deferred
from marconi_tx.storage.ids import is_job_id
from marconi_tx.storage.interfaces import IJobController
from marconi_tx.storage.pooling import ids
from marconi_tx.storage.pooling.merge import gathered
from marconi_tx.storage.records import JobCounts

_NO_JOBS = JobCounts(urgent=0, ready=0, reserved=0, delayed=0, buried=0, queues=0)


@implementer(IJobController)
class JobController:
    def __init__(self, driver):
        self.driver = driver

    async def _by_queue(self, project, queues):
        """[(pool, [queue, ...]), ...] for the placed ones among ``queues``."""
        groups = {}
        for queue in dict.fromkeys(queues):
            pool = await self.driver.route(project, queue)
            if pool is not None:
                groups.setdefault(pool.name, (pool, []))[1].append(queue)
        return list(groups.values())

    async def _by_id(self, job_id):
        """(the open pool the job id names, the job's id there), or (None,
        None)."""
        if not is_job_id(job_id):
            return None, None
        pool_set = self.driver.pool_set
        number = ids.pool_number(job_id)
        if number not in pool_set.by_number and number > max(pool_set.by_number, default=0):
            await pool_set.refresh()  # numbers grow: a pool created since
        pool = pool_set.by_number.get(number)
        if pool is None:
            return None, None
        return await pool.ready(), ids.to_local(job_id, number)

    @returns_deferred
    async def put(self, project, queue, body, ttl, priority, delay, ttr):
        pool = await self.driver.place(project, queue)
        local = await pool.driver.jobs.put(project, queue, body, ttl, priority, delay, ttr)
        return ids.to_global(local, pool.number)

    @returns_deferred
    async def reserve(self, project, queues):
        groups = await self._by_queue(project, queues)
        if len(groups) > 1:
            groups = await self._by_best_ready(project, groups)
        for pool, names in groups:
            job = await pool.driver.jobs.reserve(project, names)
            if job is not None:
                return ids.job(job, pool.number)
        return None

    async def _by_best_ready(self, project, groups):
        """The groups with a ready job, that of the lowest (priority, id)
        first."""
        ranked = []
        for pool, names in groups:
            peeked = await gathered(pool.driver.jobs.peek_ready(project, name) for name in names)
            ready = [(job.priority, ids.to_global(job.id, pool.number))
                     for job in peeked if job is not None]
            if ready:
                ranked.append((min(ready), pool.name, pool, names))
        return [(pool, names) for _, _, pool, names in sorted(ranked)]

    @returns_deferred
    async def reserve_job(self, project, job_id):
        pool, local = await self._by_id(job_id)
        if pool is None:
            return None
        return ids.job(await pool.driver.jobs.reserve_job(project, local), pool.number)

    @returns_deferred
    async def next_change(self, project, queues):
        changes = [await pool.driver.jobs.next_change(project, names)
                   for pool, names in await self._by_queue(project, queues)]
        return min((when for when in changes if when is not None), default=None)

    @returns_deferred
    async def touch(self, project, job_id, claim_id):
        pool, local = await self._by_id(job_id)
        return pool is not None and await pool.driver.jobs.touch(project, local, claim_id)

    @returns_deferred
    async def release(self, project, job_id, claim_id, priority, delay):
        pool, local = await self._by_id(job_id)
        return pool is not None and await pool.driver.jobs.release(project, local, claim_id,
                                                                   priority, delay)

    @returns_deferred
    async def bury(self, project, job_id, claim_id, priority):
        pool, local = await self._by_id(job_id)
        return pool is not None and await pool.driver.jobs.bury(project, local, claim_id,
                                                                priority)

    @returns_deferred
    async def abandon(self, project, job_id, claim_id, timed_out):
        pool, local = await self._by_id(job_id)
        return pool is not None and await pool.driver.jobs.abandon(project, local, claim_id,
                                                                   timed_out)

    @returns_deferred
    async def delete(self, project, job_id, claim_id=None):
        pool, local = await self._by_id(job_id)
        if pool is None:
            return None
        return await pool.driver.jobs.delete(project, local, claim_id)

    @returns_deferred
    async def peek(self, project, job_id):
        pool, local = await self._by_id(job_id)
        if pool is None:
            return None
        return ids.job(await pool.driver.jobs.peek(project, local), pool.number)

    async def _peek(self, which, project, queue):
        pool = await self.driver.route(project, queue)
        if pool is None:
            return None
        return ids.job(await getattr(pool.driver.jobs, which)(project, queue), pool.number)

    @returns_deferred
    async def peek_ready(self, project, queue):
        return await self._peek("peek_ready", project, queue)

    @returns_deferred
    async def peek_delayed(self, project, queue):
        return await self._peek("peek_delayed", project, queue)

    @returns_deferred
    async def peek_buried(self, project, queue):
        return await self._peek("peek_buried", project, queue)

    @returns_deferred
    async def kick(self, project, queue, bound):
        pool = await self.driver.route(project, queue)
        return 0 if pool is None else await pool.driver.jobs.kick(project, queue, bound)

    @returns_deferred
    async def kick_job(self, project, job_id):
        pool, local = await self._by_id(job_id)
        return pool is not None and await pool.driver.jobs.kick_job(project, local)

    @returns_deferred
    async def counts(self, project, queue=None):
        if queue is not None:
            pool = await self.driver.route(project, queue)
            return _NO_JOBS if pool is None else await pool.driver.jobs.counts(project, queue)
        every = await gathered(pool.driver.jobs.counts(project)
                               for pool in await self.driver.every_pool())
        return JobCounts(**{field.name: sum(getattr(counts, field.name) for counts in every)
                            for field in dataclasses.fields(JobCounts)})
