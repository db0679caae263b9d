"""Pools: every queue in one of several storage drivers, found through a
catalog (``[drivers] pooling``).

``driver.PooledDriver`` is the driver the transports see; ``pools.PoolSet``
opens the pools' drivers, ``routes.RouteCache`` remembers where queues live,
``placement`` chooses a pool for a new queue and ``ids`` turns pool-local
message and job ids into ids that name their pool.
"""
