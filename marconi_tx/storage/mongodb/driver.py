"""The MongoDB driver: txmongo, one connection pool per daemon.

Several daemons may share one database: every multi-step operation is made
safe by single-document atomic operations (see ``batches`` for posts and
``claims`` for claims); no multi-document transactions are used.

Time: the injected ``reactor`` is the driver's one source of time, for
ages, expiry and claim deadlines as for the timeouts of its calls (a test
passes a ``task.Clock`` and moves both by hand). The connections are
txmongo's: ``ConnectionPool`` takes no reactor (txmongo connects, reconnects
and pings through the global ``twisted.internet.reactor``, imported when
txmongo is), so the network I/O always runs on the global reactor.

Failures: every call gives up after ``operation_timeout`` seconds; a server
that cannot be reached, times out or answers with an error becomes
``errors.StorageUnavailable``. The pool reconnects by itself (every
``RECONNECT_INTERVAL`` seconds while the server is away).

Failover: what a replica set does while it changes primary (a "not
primary" or "node is recovering" answer, a dropped connection) is
``transient``: a call that is safe to run again (``storage_call``) is run
again, up to ``max_retries`` times after a doubling ``retry_backoff``,
within the same ``operation_timeout``. txmongo has no retryable writes, so
safety comes from the operations themselves: reads, conditional updates
and deletes are idempotent; posts, claims and creations fix their ids
before the first attempt and find out on a retry what an earlier attempt
did (see ``batches.settle``, ``ClaimController.create``). The line
protocol's state changes cannot, but they read before they write: they
are run again when a read failed before their first write
(``storage_call_unless_run``, ``read_first``), and answer
StorageUnavailable at once after a failure of a write (txmongo reports a
"not primary" refusal, which ran nothing, and a primary stepping down
during the write alike). A pop, whose rounds each delete, is never run
again (``storage_call_once``). A slow primary is only bounded by
``operation_timeout``: a retry would wait for the same server.
"""

import functools
import itertools
from types import SimpleNamespace

from bson.errors import InvalidDocument
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, PyMongoError
from pymongo.uri_parser import parse_uri
from twisted.internet import defer, task
from twisted.internet import error as net_error
from twisted.logger import Logger
from twisted.python.failure import Failure
from txmongo import filter as qf
from txmongo.connection import ConnectionPool
from txmongo.errors import TimeExceeded
from zope.interface import implementer

from marconi_tx import errors
from marconi_tx.config import ConfigError
from marconi_tx.deferreds import returns_deferred
from marconi_tx.storage.interfaces import ILineStorageDriver, IPoolingStorage
from marconi_tx.storage.mongodb import batches
from marconi_tx.storage.mongodb.schema import (
    CATALOG,
    COUNTERS,
    FLAVORS,
    INDEXES,
    MESSAGES,
    POOLS,
    QUEUES,
    SUBSCRIPTIONS,
)

#: Database used when the URI names none.
DEFAULT_DATABASE = "marconi"
#: Seconds between reconnection attempts while the server is unreachable.
RECONNECT_INTERVAL = 1.0
#: Seconds between two tries of a clean-up with a deadline (``background``).
BACKGROUND_PAUSE = 1.0

#: Exceptions meaning "the engine failed or could not be reached".
ENGINE_FAILURES = (PyMongoError, TimeExceeded, net_error.ConnectError,
                   net_error.ConnectionLost, net_error.ConnectionDone, ConnectionError)
TIMEOUTS = (defer.TimeoutError, net_error.TimeoutError, defer.CancelledError)
#: Failures of the connection itself (the request may or may not have run).
CONNECTION_FAILURES = (ConnectionFailure, net_error.ConnectError, net_error.ConnectionLost,
                       net_error.ConnectionDone, ConnectionError)
#: Server error codes of a replica set changing primary, shutting down or
#: failing to reach a member: the retryable writes specification's list.
TRANSIENT_CODES = frozenset({
    10107,  # NotWritablePrimary
    13435,  # NotPrimaryNoSecondaryOk
    13436,  # NotPrimaryOrSecondary
    10058,  # LegacyNotPrimary
    11602,  # InterruptedDueToReplStateChange
    189,    # PrimarySteppedDown
    91,     # ShutdownInProgress
    11600,  # InterruptedAtShutdown
    7,      # HostNotFound
    6,      # HostUnreachable
    89,     # NetworkTimeout
    9001,   # SocketException
    262,    # ExceededTimeLimit
    134,    # ReadConcernMajorityNotAvailableYet
})


def transient(error):
    """Whether ``error`` is what a failover or a dropped connection raises:
    the operation may succeed if run again (once it is safe to)."""
    while isinstance(error, defer.FirstError):  # from gatherResults
        error = error.subFailure.value
    if isinstance(error, NotRun):
        return True
    if isinstance(error, CONNECTION_FAILURES):
        return True
    if isinstance(error, BulkWriteError):
        details = error.details or {}
        codes = [e.get("code") for e in details.get("writeConcernErrors", ())]
        codes += [e.get("code") for e in details.get("writeErrors", ())]
        return bool(codes) and all(code in TRANSIENT_CODES for code in codes)
    if isinstance(error, OperationFailure):
        return error.code in TRANSIENT_CODES or error.has_error_label("RetryableWriteError")
    return False


class NotRun(Exception):
    """The transient failure ``error`` of a read made before its call's
    first write (``read_first``): the call changed nothing yet."""

    def __init__(self, error):
        super().__init__(error)
        self.error = error


async def read_first(awaitable):
    """Await a read that comes before the calling method's first write; a
    transient failure of it is raised as ``NotRun``, which
    ``storage_call_unless_run`` runs again."""
    try:
        return await awaitable
    except Exception as e:
        if transient(e):
            raise NotRun(e) from e
        raise


def storage_call(method):
    """Make an ``async`` controller method go through ``MongoDriver.retried``:
    a Deferred, bounded by ``operation_timeout``, run again after a
    transient failure (the method must be safe to run again), with engine
    failures as ``StorageUnavailable``."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        return self.driver.retried(lambda: method(self, *args, **kwargs))

    return wrapper


def storage_call_once(method):
    """``storage_call`` for a method that is not safe to run again after an
    unknown outcome: any failure is StorageUnavailable at once."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        return self.driver.call(method(self, *args, **kwargs))

    return wrapper


def storage_call_unless_run(method):
    """``storage_call`` for a method whose writes are not safe to run again
    (the line protocol's state changes), but whose reads come first
    (``read_first``): run again after a transient failure of those reads,
    when it had changed nothing; after any other failure,
    StorageUnavailable at once."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        return self.driver.retried(lambda: method(self, *args, **kwargs),
                                   retry_if=lambda e: isinstance(e, NotRun))

    return wrapper


#: Server error code of a document over the BSON size limit.
OBJECT_TOO_LARGE = 10334


def too_large(error):
    """Whether the server refused a write for the size of a document."""
    if isinstance(error, BulkWriteError):
        return any(e.get("code") == OBJECT_TOO_LARGE
                   for e in (error.details or {}).get("writeErrors", ()))
    return getattr(error, "code", None) == OBJECT_TOO_LARGE


def describe(error):
    """A short description of an engine error (never the documents it
    may quote, which can be megabytes)."""
    if isinstance(error, BulkWriteError):
        first = ((error.details or {}).get("writeErrors") or [{}])[0]
        return f"write error {first.get('code')}: {first.get('errmsg', '')}"[:200]
    return str(error)[:200] or type(error).__name__


def parse_write_concern(value):
    """``write_concern`` setting -> the ``w`` of a MongoDB write concern."""
    value = value.strip()
    if value.isdigit():
        if int(value) == 0:
            raise ConfigError("[drivers:storage:mongodb] write_concern: 0 (unacknowledged) "
                              "cannot report failed posts; use 1 or more, or majority")
        return int(value)
    if not value:
        raise ConfigError("[drivers:storage:mongodb] write_concern is empty")
    return value


@implementer(ILineStorageDriver, IPoolingStorage)
class MongoDriver:
    """
    @param uri: ``mongodb://HOST[:PORT][,HOST...]/[DB][?OPTIONS]``; the
        database defaults to ``marconi``.
    @param reactor: the ``IReactorTime`` of every time the driver reads or
        waits for (see the module docstring for txmongo's connections).
    @param settings: ``config.mongodb``.
    """

    log = Logger()

    def __init__(self, uri, reactor, settings):
        from marconi_tx.storage.events import QueueEvents
        from marconi_tx.storage.mongodb.claims import ClaimController
        from marconi_tx.storage.mongodb.jobs import JobController
        from marconi_tx.storage.mongodb.messages import MessageController
        from marconi_tx.storage.mongodb.pools import (
            CatalogController,
            FlavorController,
            PoolController,
        )
        from marconi_tx.storage.mongodb.queues import QueueController
        from marconi_tx.storage.mongodb.subscriptions import SubscriptionController

        try:
            parsed = parse_uri(uri)
        except (PyMongoError, ValueError) as e:
            raise ConfigError(f"storage URI {uri!r}: {e}")
        options = {k.lower(): v for k, v in parsed["options"].items()}
        if options.get("readpreference", "primary") != "primary":
            # Claims, posts and their re-reads must see the primary's state.
            raise ConfigError(f"storage URI {uri!r}: readPreference must be primary")
        self.uri = uri
        self.database = parsed["database"] or DEFAULT_DATABASE
        self.reactor = reactor
        self.settings = settings
        self.w = parse_write_concern(settings.write_concern)
        self.pool = None
        self._db = None
        self._background = set()
        self.queues = QueueController(self)
        self.messages = MessageController(self)
        self.claims = ClaimController(self)
        #: The line protocol's view of the messages (IJobController).
        self.jobs = JobController(self)
        self.subscriptions = SubscriptionController(self)
        #: The catalog of a pooled deployment (IPoolingStorage).
        self.pools = PoolController(self)
        self.flavors = FlavorController(self)
        self.catalog = CatalogController(self)
        #: Per-process notifications of posts and releases (IQueueEvents).
        self.events = QueueEvents()

    def now(self):
        """The current whole second."""
        return int(self.reactor.seconds())

    @property
    def db(self):
        """The collections (``queues``, ``messages``, ``counters``,
        ``subscriptions``, ``pools``, ``flavors``, ``catalog``)."""
        if self._db is None:
            raise errors.StorageUnavailable("the MongoDB driver is not open")
        return self._db

    def call(self, coroutine, timeout=None):
        """A Deferred of ``coroutine``, cancelled after ``timeout`` seconds
        (default ``operation_timeout``); engine failures -> StorageUnavailable."""
        limit = self.settings.operation_timeout if timeout is None else timeout
        d = defer.ensureDeferred(coroutine)
        d.addTimeout(limit, self.reactor)

        def translate(failure):
            while failure.check(defer.FirstError):  # from gatherResults
                failure = failure.value.subFailure
            if failure.check(NotRun):  # not run again: the failure itself
                failure = Failure(failure.value.error)
            if failure.check(*TIMEOUTS):
                raise errors.StorageUnavailable(f"MongoDB did not answer within {limit} s")
            if failure.check(InvalidDocument) or too_large(failure.value):
                # Only size can make our documents invalid: bodies and
                # metadata are stored as JSON text.
                raise errors.ValidationError(
                    "a message or metadata does not fit in one MongoDB document "
                    "(16 MiB)", "Content too large")
            if failure.check(*ENGINE_FAILURES):
                raise errors.StorageUnavailable(f"MongoDB: {describe(failure.value)}")
            return failure

        return d.addErrback(translate)

    def retried(self, operation, timeout=None, retry_if=transient):
        """``call`` of ``operation()`` (a coroutine function), run again after
        a failure that ``retry_if`` accepts (by default a transient one) up
        to ``max_retries`` times, waiting ``retry_backoff`` seconds, doubled
        at each retry; all within the one ``timeout``."""
        return self.call(self._attempts(operation, retry_if), timeout)

    async def _attempts(self, operation, retry_if):
        for attempt in itertools.count():
            try:
                return await operation()
            except Exception as e:
                if attempt >= self.settings.max_retries or not retry_if(e):
                    raise
            await task.deferLater(self.reactor, self.settings.retry_backoff * 2 ** attempt)

    def background(self, operation, until=None):
        """Run clean-up work nobody waits for (``operation()``, retried:
        it must be safe to run again; errors logged). With ``until`` (epoch
        seconds of the driver's clock) it is tried again, every
        ``BACKGROUND_PAUSE`` seconds, while the storage stays unavailable
        until then: a clean-up that a fault storm outlasts still happens
        once the storage is back."""
        d = defer.ensureDeferred(self._persist(operation, until))
        self._background.add(d)

        def done(result):
            self._background.discard(d)
            if isinstance(result, Failure) and not result.check(
                    errors.StorageUnavailable, defer.CancelledError):  # close() cancels
                self.log.failure("MongoDB background clean-up failed", result)

        d.addBoth(done)

    async def _persist(self, operation, until):
        while True:
            try:
                return await self.retried(operation)
            except errors.StorageUnavailable:
                if until is None or self.now() >= until:
                    raise
            await task.deferLater(self.reactor, BACKGROUND_PAUSE)

    def open(self):
        return self.retried(self._open, self.settings.connect_timeout
                            + self.settings.operation_timeout)

    async def _open(self):
        if self.pool is None:
            s = self.settings
            # retry_delay is txmongo's connect (and handshake) timeout;
            # config wins over write concern options given in the URI.
            self.pool = ConnectionPool(
                self.uri, pool_size=s.pool_size, retry_delay=s.connect_timeout,
                max_delay=RECONNECT_INTERVAL, w=self.w, j=s.journal,
                wtimeout=int(s.operation_timeout * 1000))
            for connection in self.pool.getprotocols():
                # A connection dropped after it was up waits this long before
                # reconnecting (connect_timeout, otherwise): a failover's
                # dropped connections come back within RECONNECT_INTERVAL.
                # It is also the reconnection's handshake timeout.
                connection.initialDelay = RECONNECT_INTERVAL
            db = self.pool[self.database]
            self._db = SimpleNamespace(queues=db[QUEUES], messages=db[MESSAGES],
                                       counters=db[COUNTERS],
                                       subscriptions=db[SUBSCRIPTIONS], pools=db[POOLS],
                                       flavors=db[FLAVORS], catalog=db[CATALOG])
        try:
            for collection, name, keys, options in INDEXES:
                await getattr(self._db, collection).create_index(
                    qf.sort(keys), name=name, **options)
            await batches.repair_counter(self)
        except BaseException:
            await self._disconnect()
            raise

    async def _disconnect(self):
        pool, self.pool, self._db = self.pool, None, None
        if pool is not None:
            await pool.disconnect()

    @returns_deferred
    async def close(self):
        for d in list(self._background):
            d.cancel()
        await self._disconnect()

    def is_alive(self):
        if self.pool is None:
            return defer.succeed(False)
        return self.retried(self._ping).addErrback(lambda _: False)

    async def _ping(self):
        await self.pool[self.database].command("ping")
        return True

    def gc(self):
        return self.retried(self._gc)

    async def _gc(self):
        now = self.now()
        result = await self.db.messages.delete_many({"e": {"$lte": now}})
        expired = await self.db.subscriptions.delete_many({"e": {"$lte": now}})
        return (result.deleted_count + expired.deleted_count
                + await batches.collect(self, now))
