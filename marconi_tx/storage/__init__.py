"""Storage drivers behind the interfaces of ``storage.interfaces``."""

from marconi_tx.config import ConfigError


def driver_from_config(config, reactor):
    """
    The driver named by ``config.drivers.storage`` (not yet opened), on
    ``reactor`` (its time, timers and threads): with ``[drivers] pooling``,
    a ``PooledDriver`` whose catalog is kept in that storage.

    @raise ConfigError: an unknown or malformed storage URI.
    """
    driver = driver_for_uri(config.drivers.storage, config, reactor)
    if not config.drivers.pooling:
        return driver
    from marconi_tx.storage.pooling.driver import PooledDriver

    return PooledDriver(driver, reactor, config)


def driver_for_uri(uri, config, reactor):
    """
    The driver of the storage URI ``uri`` (not yet opened), with the engine
    settings of ``config``.

    @raise ConfigError: an unknown or malformed storage URI.
    """
    if uri.startswith("sqlite:"):
        from marconi_tx.storage.sqlite.driver import SqliteDriver

        path = uri[len("sqlite:"):]
        if not path:
            raise ConfigError(f"storage URI {uri!r} names no file "
                              "(use sqlite:PATH or sqlite::memory:)")
        return SqliteDriver(path, reactor, synchronous=config.sqlite.synchronous,
                            busy_timeout=config.sqlite.busy_timeout,
                            group_commit=config.sqlite.group_commit,
                            wal_max_bytes=config.sqlite.wal_max_bytes)
    if uri.startswith("mongodb://"):
        from marconi_tx.storage.mongodb.driver import MongoDriver

        return MongoDriver(uri, reactor, config.mongodb)
    raise ConfigError(f"unknown storage URI {uri!r} "
                      "(use sqlite:PATH, sqlite::memory: or mongodb://...)")
