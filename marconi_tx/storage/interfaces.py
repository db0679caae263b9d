"""The storage contract: zope.interface definitions only.

Every method returns a ``Deferred``. Drivers raise the errors of
``marconi_tx.errors`` through those Deferreds; engine types (ObjectId, sqlite
rows) never leave a driver. All times are whole seconds from the driver's
injected ``IReactorTime``.

Names used throughout:

``project``
    The tenant namespace: a string, or ``None`` for the global namespace
    (distinct from every named project).
``queue``
    A queue name (validated by the transport before it gets here).
Records (``storage/records.py``)
    ``Message``, ``Claim`` (with its ``Message`` tuple), ``Queue`` (a listing
    entry), ``QueueStats``, ``Job``, ``JobCounts`` and ``Subscription``: frozen dataclasses
    (``Message`` a NamedTuple), the same from every driver. "A message" below is a ``Message``.
"""

from collections.abc import Callable, Sequence
from typing import Any, Optional
from uuid import UUID

from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface

from marconi_tx.storage.records import (
    Claim,
    DeadLetter,
    Flavor,
    Job,
    JobCounts,
    Message,
    Pool,
    Queue,
    QueueStats,
    Subscription,
)

#: ``project`` of every call: a tenant, or None for the global namespace.
Project = Optional[str]
#: (The interfaces' own ``list`` methods hide the builtin inside them.)
Messages = list[Message]
Queues = list[Queue]
Subscriptions = list[Subscription]
Pools = list[Pool]
Flavors = list[Flavor]

#: Priority given to messages posted without one (beanstalkd's usual default).
DEFAULT_PRIORITY = 1024


class IStorageDriver(Interface):
    """A storage engine: three controllers and the engine-wide operations."""

    queues = Attribute("The IQueueController of this driver.")
    messages = Attribute("The IMessageController of this driver.")
    claims = Attribute("The IClaimController of this driver.")
    subscriptions = Attribute("The ISubscriptionController of this driver.")

    def open() -> "Deferred[None]":
        """
        Connect and create the schema and indexes (idempotently).

        @return: Deferred firing with None when the driver is ready.
        """

    def close() -> "Deferred[None]":
        """Release connections; Deferred firing with None."""

    def is_alive() -> "Deferred[bool]":
        """Deferred firing with True if the engine answers, else False."""

    def gc() -> "Deferred[int]":
        """
        Remove expired messages, claims and subscriptions.

        Never removes a message before its ``expires`` instant.

        @return: Deferred firing with the number of records removed.
        """


class IQueueController(Interface):
    def create(project: Project, queue: str,
               metadata: Optional[dict] = None) -> "Deferred[bool]":
        """
        Create a queue (idempotent).

        @param metadata: a dict stored as the initial metadata (default {}).
        @return: Deferred firing with True if created, False if it existed
            (an existing queue's metadata is left untouched).
        """

    def exists(project: Project, queue: str) -> "Deferred[bool]":
        """Deferred firing with True if the queue exists."""

    def delete(project: Project, queue: str) -> "Deferred[None]":
        """
        Delete the queue, its metadata, all its messages and claims.

        Idempotent: deleting a missing queue succeeds.
        """

    def list(project: Project, marker: Optional[str] = None, limit: int = 10,
             detailed: bool = False, name: Optional[str] = None,
             metadata: Optional[dict] = None) -> "Deferred[Queues]":
        """
        Queues of ``project`` with names strictly greater than ``marker``,
        ascending by name (byte order), at most ``limit``.

        @param name: keep only queues whose name contains this string.
        @param metadata: keep only queues whose metadata has each of these
            keys with an equal value (JSON equality: 1 equals 1.0, "1" does
            not equal 1).
        @return: Deferred firing with a list of ``Queue`` records, with
            ``metadata`` when ``detailed`` (else None).
        """

    def count(project: Project) -> "Deferred[int]":
        """The number of queues of ``project``."""

    def get_metadata(project: Project, queue: str) -> "Deferred[dict]":
        """Deferred firing with the metadata dict; QueueDoesNotExist."""

    def set_metadata(project: Project, queue: str, metadata: dict) -> "Deferred[None]":
        """Replace the metadata with ``metadata``; QueueDoesNotExist."""

    def stats(project: Project, queue: str) -> "Deferred[QueueStats]":
        """
        Deferred firing with a ``QueueStats``: ``oldest`` and ``newest``
        (``MessageStamp``, lowest and highest marker, claimed messages
        included) are set when ``total > 0``. Buried messages count as
        claimed. QueueDoesNotExist if the queue is missing.
        """


class IMessageController(Interface):
    def post(project: Project, queue: str, messages: Sequence[dict],
             client_uuid: Optional[UUID] = None,
             create: bool = False) -> "Deferred[list[str]]":
        """
        Enqueue a batch, all or nothing; with ``create``, a missing queue is
        created (with metadata {}) in the same transaction (lazy queues of
        API v1.1 and v2).

        @param messages: a list of dicts with ``ttl`` (int) and ``body``, and
            optionally ``delay`` (int seconds, default 0) and ``priority``
            (int, default DEFAULT_PRIORITY).
        @param client_uuid: the poster's ``uuid.UUID`` (for echo), or None.
        @return: Deferred firing with the new message ids in submission order;
            the batch gets consecutive, increasing markers and becomes visible
            at once (or after its delay). QueueDoesNotExist if the queue is
            missing and not ``create``.
        """

    def list(project: Project, queue: str, marker: Optional[str] = None, limit: int = 10,
             echo: bool = False, client_uuid: Optional[UUID] = None,
             include_claimed: bool = False,
             include_delayed: bool = False) -> "Deferred[Messages]":
        """
        Messages with a marker greater than ``marker``, oldest first.

        Hides messages under a live claim (unless ``include_claimed``), buried
        ones (unless ``include_claimed``), those posted by ``client_uuid``
        (unless ``echo``), delayed ones (unless ``include_delayed``) and
        expired ones. A malformed marker or a missing queue gives [].

        @return: Deferred firing with a list of messages.
        """

    def get(project: Project, queue: str, message_id: str) -> "Deferred[Message]":
        """
        One message, claimed or not; MessageDoesNotExist if the id is
        malformed, unknown, expired or of another queue.
        """

    def bulk_get(project: Project, queue: str,
                 message_ids: Sequence[str]) -> "Deferred[Messages]":
        """The existing, unexpired messages among ``message_ids`` (malformed
        and unknown ids skipped); Deferred firing with a list."""

    def delete(project: Project, queue: str, message_id: str,
               claim_id: Optional[str] = None) -> "Deferred[None]":
        """
        Delete one message.

        Without ``claim_id``: MessageIsClaimed if it is under a live claim.
        With ``claim_id``: deleted iff it equals the claim recorded on the
        message (even if that claim has expired but was not released or
        replaced); ClaimDoesNotExist if ``claim_id`` is malformed,
        MessageNotClaimed if no claim is recorded, ClaimMismatch if another is.
        An unknown or malformed ``message_id`` succeeds silently.
        """

    def bulk_delete(project: Project, queue: str,
                    message_ids: Sequence[str]) -> "Deferred[None]":
        """Delete the listed messages regardless of claims; unknown and
        malformed ids are ignored."""

    def pop(project: Project, queue: str, limit: int) -> "Deferred[Messages]":
        """
        Remove and return up to ``limit`` messages not under a live claim,
        oldest first; two concurrent pops never return the same message.
        Delayed messages are popped too (api-v2.md §3.2).
        """

    def purge(project: Project, queue: str) -> "Deferred[int]":
        """
        Remove every message of the queue not under a live claim (delayed
        and buried ones included); Deferred firing with how many. A missing
        queue purges nothing.
        """


class IClaimController(Interface):
    def create(project: Project, queue: str, ttl: int, grace: int, limit: int,
               dead_letter: Optional[DeadLetter] = None) -> "Deferred[Optional[Claim]]":
        """
        Claim up to ``limit`` free messages in marker order, atomically: a
        message is never held by two live claims. Messages whose life would
        end before ``now + ttl + grace`` are extended to that instant
        (``semantics.md`` §3.3). Each claimed message's ``claim_count`` grows
        by one.

        With ``dead_letter``, a selected message already claimed
        ``dead_letter.max_claims`` times or more is moved instead, in the
        same transaction, to the queue ``dead_letter.queue`` of the same
        project (created if missing): same id and body, free (no claim),
        ``claim_count`` 0, and, when ``dead_letter.ttl`` is set, that ttl
        from now. It is not part of the claim; a message is in exactly one
        queue at any time (api-v2.md §3.4).

        @return: Deferred firing with a ``Claim``, or None when nothing could be
            claimed (also for a missing queue, and when every selected
            message was moved).
        """

    def get(project: Project, queue: str, claim_id: str) -> "Deferred[Claim]":
        """A live claim with its live messages; ClaimDoesNotExist otherwise."""

    def update(project: Project, queue: str, claim_id: str, ttl: int,
               grace: int = 0) -> "Deferred[None]":
        """
        Renew a live claim: it expires ``now + ttl`` (age restarts) and its
        messages are extended as on creation with ``grace``.
        ClaimDoesNotExist if the claim is not live.
        """

    def delete(project: Project, queue: str, claim_id: str) -> "Deferred[None]":
        """Release a claim: its messages become claimable at once. Always
        succeeds (unknown, malformed and foreign ids have no effect)."""


class ISubscriptionController(Interface):
    """
    API v2 subscriptions (``driver.subscriptions``, api-v2.md §6): who is
    told of the messages posted to a queue, and how far delivery has got.

    A subscription belongs to (project, queue name), not to the queue
    record: deleting the queue keeps it, and it serves the queue again when
    the name is reused (api-v2.md §2.6). It is unique per (project, queue,
    subscriber). Expired subscriptions (``expires <= now``) are invisible
    to every call and removed by ``IStorageDriver.gc``. A malformed id is
    an unknown one.
    """

    def create(project: Project, queue: str, subscriber: str, ttl: int,
               options: dict) -> "Deferred[tuple[str, bool]]":
        """
        Subscribe ``subscriber`` to the queue for ``ttl`` seconds,
        unconfirmed, its cursor at the newest message id handed out so far
        (only later posts are delivered).

        @return: Deferred firing with (id, True) for a new subscription; with
            (the existing id, False), the existing one unchanged, when the
            subscriber is already subscribed unconfirmed;
            SubscriptionExists when it is subscribed and confirmed.
        """

    def list(project: Project, queue: str, marker: Optional[str] = None,
             limit: int = 10) -> "Deferred[Subscriptions]":
        """The queue's subscriptions with ids greater than ``marker``,
        ascending by id, at most ``limit``."""

    def get(project: Project, queue: str, subscription_id: str) -> "Deferred[Subscription]":
        """One subscription; SubscriptionDoesNotExist."""

    def update(project: Project, queue: str, subscription_id: str,
               subscriber: Optional[str] = None, ttl: Optional[int] = None,
               options: Optional[dict] = None) -> "Deferred[None]":
        """
        Change what is given: a new ``ttl`` restarts the expiry clock (age
        0); a new ``subscriber`` makes it unconfirmed; ``options`` replaces
        the options. SubscriptionDoesNotExist; SubscriptionExists if the new
        subscriber is subscribed to the queue by another subscription.
        """

    def delete(project: Project, queue: str, subscription_id: str) -> "Deferred[None]":
        """Remove one; unknown ids have no effect."""

    def confirm(project: Project, queue: str, subscription_id: str,
                confirmed: bool) -> "Deferred[None]":
        """
        Set ``confirmed``. Confirming an unconfirmed subscription moves its
        cursor to the newest message id handed out (what was posted while it
        was unconfirmed is not delivered). SubscriptionDoesNotExist.
        """

    def purge(project: Project, queue: str) -> "Deferred[int]":
        """Remove every subscription of the queue; Deferred firing with how
        many."""

    def scan(marker: Optional[str] = None, limit: int = 100) -> "Deferred[Subscriptions]":
        """Every project's subscriptions with ids greater than ``marker``,
        ascending by id, at most ``limit`` (the deliverer's walk)."""

    def advance(project: Project, queue: str, subscription_id: str,
                cursor: int) -> "Deferred[None]":
        """Move the cursor forward to ``cursor`` (never back); no effect on
        an unknown subscription."""


# -- The line protocol (a beanstalkd dialect) --------------------------------

#: Time-to-run of jobs that carry none (messages posted over HTTP), seconds.
DEFAULT_TTR = 60


class IQueueEvents(Interface):
    """
    The driver's notification hub (``driver.events``): drivers call
    ``notify`` after every committed change that may make messages of a queue
    claimable now or at a new instant (a post, a released claim, a released,
    kicked or timed-out job), so that waiting consumers are woken without
    polling. Notifications are per process: a daemon does not hear about
    changes made by another daemon sharing the database.
    """

    def subscribe(listener: Callable[[Project, str], Any]) -> None:
        """Call ``listener(project, queue)`` on every notification."""

    def unsubscribe(listener: Callable[[Project, str], Any]) -> None:
        """Stop calling ``listener`` (no effect if it is not subscribed)."""

    def notify(project: Project, queue: str) -> None:
        """Tell every listener; a failing listener does not stop the others."""


class IJobController(Interface):
    """
    Jobs: the line protocol's view of messages (``driver.jobs``).

    A job is a message (same row, same id, same body): its id is the message
    id as an ``int``. Beyond the message it has a priority, a time-to-run
    (``ttr``, ``DEFAULT_TTR`` for messages posted over HTTP), the delay last
    set, and the counters beanstalkd reports. Its state is derived:

    ``reserved``
        under a live claim (a line-protocol reservation *is* a claim: it
        hides the message from HTTP claims and listings, and an HTTP claim
        hides the message from ``reserve``);
    ``buried``
        buried (kept until kicked or deleted; hidden from HTTP claims);
    ``delayed``
        ``available_at`` is in the future;
    ``ready``
        otherwise.

    ``project`` scopes every call: a job of a queue of another project is
    "not found". Expired messages are not jobs.

    A job is a ``Job`` record (``storage/records.py``); its state is decided
    by ``storage.rules.job_state``.

    Mutations that may make a job claimable call ``driver.events.notify``
    after they commit.
    """

    def put(project: Project, queue: str, body: Any, ttl: int, priority: int, delay: int,
            ttr: int) -> "Deferred[int]":
        """
        Post one job, creating the queue if it is missing.

        ``delay`` seconds are rounded up to the driver's clock: the job is
        never ready before ``now + delay``.

        @return: Deferred firing with the new job id (int).
        """

    def reserve(project: Project, queues: Sequence[str]) -> "Deferred[Optional[Job]]":
        """
        Claim the ready job with the lowest ``(priority, id)`` across
        ``queues`` (names), for the job's ``ttr`` seconds: atomically, with a
        claim recorded on the message as HTTP claims are (never two live
        claims on one message), extending the message's life to outlast the
        claim. The claim id is not one the HTTP claim routes know.

        @return: Deferred firing with the job (``claim_id`` and
            ``claim_expires`` set; ``claim_expires`` is at least ``ttr``
            seconds of the driver's clock away), or None if no job is ready.
        """

    def reserve_job(project: Project, job_id: int) -> "Deferred[Optional[Job]]":
        """
        Claim one job by id if it is ready, delayed or buried (a delayed or
        buried job becomes reserved at once).

        @return: Deferred firing with the job as ``reserve`` gives it, or
            None (unknown, expired, of another project, or reserved).
        """

    def next_change(project: Project, queues: Sequence[str]) -> "Deferred[Optional[int]]":
        """
        The earliest instant (int epoch seconds, after now) at which a job of
        ``queues`` that is delayed or under a claim may become ready, or None
        if there is none. Waiting consumers set a timer for it.
        """

    def touch(project: Project, job_id: int, claim_id: str) -> "Deferred[bool]":
        """
        Extend the live claim ``claim_id`` on the job to ``ttr`` seconds from
        now; Deferred firing with True, or False if the job is not under that
        live claim.
        """

    def release(project: Project, job_id: int, claim_id: str, priority: int,
                delay: int) -> "Deferred[bool]":
        """
        End the claim ``claim_id`` on the job, give it ``priority`` and make
        it ready after ``delay`` seconds (rounded up as for ``put``); counts
        a release. Deferred firing with False if ``claim_id`` is not the
        claim recorded on the job.
        """

    def bury(project: Project, job_id: int, claim_id: str,
             priority: int) -> "Deferred[bool]":
        """
        End the claim ``claim_id`` on the job and bury it with ``priority``
        (after every job buried before it); counts a bury. Deferred firing
        with False if ``claim_id`` is not the claim recorded on the job.
        """

    def abandon(project: Project, job_id: int, claim_id: str,
                timed_out: bool) -> "Deferred[bool]":
        """
        End the claim ``claim_id`` on the job without other change (the
        reserving connection closed, or the time-to-run ran out: then
        ``timed_out`` is True and a timeout is counted). Deferred firing with
        False if ``claim_id`` is not the claim recorded on the job.
        """

    def delete(project: Project, job_id: int,
               claim_id: Optional[str] = None) -> "Deferred[Optional[str]]":
        """
        Delete the job. Without ``claim_id`` only if it is not under a live
        claim; with it, only if it is the claim recorded on the job.

        @return: Deferred firing with the name of the job's queue if it was
            deleted, else None.
        """

    def peek(project: Project, job_id: int) -> "Deferred[Optional[Job]]":
        """Deferred firing with the job in any state, or None."""

    def peek_ready(project: Project, queue: str) -> "Deferred[Optional[Job]]":
        """The ready job of ``queue`` that ``reserve`` would take, or None."""

    def peek_delayed(project: Project, queue: str) -> "Deferred[Optional[Job]]":
        """The delayed job of ``queue`` that becomes ready first (lowest
        ``available_at``, then id), or None."""

    def peek_buried(project: Project, queue: str) -> "Deferred[Optional[Job]]":
        """The job of ``queue`` buried first, or None."""

    def kick(project: Project, queue: str, bound: int) -> "Deferred[int]":
        """
        Make up to ``bound`` jobs of ``queue`` ready: the buried ones in
        burial order if there are any, else the delayed ones in the order they
        would become ready; counts a kick on each.

        @return: Deferred firing with the number of jobs kicked.
        """

    def kick_job(project: Project, job_id: int) -> "Deferred[bool]":
        """Make one buried or delayed job ready (a kick); Deferred firing
        with True, or False if the job is in another state or unknown."""

    def counts(project: Project, queue: Optional[str] = None) -> "Deferred[JobCounts]":
        """
        Jobs by state: a ``JobCounts`` (``urgent``: ready with priority
        below ``rules.URGENT_PRIORITY``), for one queue or, with
        ``queue`` None, every queue of ``project``. A missing queue counts
        as empty with ``queues`` 0.
        """


class ILineStorageDriver(IStorageDriver):
    """A storage driver that also serves the line protocol."""

    jobs = Attribute("The IJobController of this driver.")
    events = Attribute("The IQueueEvents hub this driver notifies after changes.")


class IPoolController(Interface):
    """
    The pools of a pooled deployment, kept in the catalog's storage (the
    ``[drivers] storage`` of the daemon; ``IPoolingStorage.pools``).
    Names are validated by the transport. Listings are ordered by name.
    """

    def create(name: str, uri: str, weight: int, flavor: Optional[str] = None,
               options: Optional[dict] = None) -> "Deferred[Pool]":
        """
        Record a pool, giving it the next ``number`` (1 + the highest ever
        given, never reused even after a delete).

        @raise errors.PoolExists: a pool of that name exists.
        """

    def get(name: str) -> "Deferred[Pool]":
        """@raise errors.PoolDoesNotExist: no such pool."""

    def list(marker: Optional[str] = None, limit: int = 10,
             flavor: Optional[str] = None) -> "Deferred[Pools]":
        """
        Up to ``limit`` pools with a name after ``marker``; only those of
        ``flavor`` when it is given.
        """

    def update(name: str, changes: dict) -> "Deferred[Pool]":
        """
        Change some of ``uri``, ``weight``, ``flavor`` (None detaches),
        ``options`` (the keys of ``changes``; others are ignored).

        @return: Deferred firing with the updated pool.
        @raise errors.PoolDoesNotExist: no such pool.
        """

    def delete(name: str) -> "Deferred[None]":
        """
        Forget the pool (the caller checks that it holds no queue).

        @raise errors.PoolDoesNotExist: no such pool.
        """


class IFlavorController(Interface):
    """
    Flavors, kept next to the pools (``IPoolingStorage.flavors``). A
    flavor's pools are the pools whose ``flavor`` is its name.
    """

    def create(name: str, capabilities: Optional[dict] = None) -> "Deferred[Flavor]":
        """@raise errors.FlavorExists: a flavor of that name exists."""

    def get(name: str) -> "Deferred[Flavor]":
        """@raise errors.FlavorDoesNotExist: no such flavor."""

    def list(marker: Optional[str] = None, limit: int = 10) -> "Deferred[Flavors]":
        """Up to ``limit`` flavors with a name after ``marker``, by name."""

    def update(name: str, capabilities: dict) -> "Deferred[Flavor]":
        """@raise errors.FlavorDoesNotExist: no such flavor."""

    def delete(name: str) -> "Deferred[None]":
        """
        Forget the flavor and detach its pools (their ``flavor`` becomes
        None). No error if it does not exist.
        """


class ICatalogController(Interface):
    """
    Where each queue lives: project + queue -> pool name
    (``IPoolingStorage.catalog``).

    An entry, once recorded, does not change while its pool exists: it is
    kept when its queue is deleted (so a queue created again goes back to
    its pool), and removed only with its pool. That is what lets every
    process cache entries without ever routing a write to the wrong pool.
    """

    def lookup(project: Project, queue: str) -> "Deferred[Optional[str]]":
        """The pool recorded for the queue, or None."""

    def insert(project: Project, queue: str, pool: str) -> "Deferred[str]":
        """
        Record ``pool`` for the queue unless an entry exists (atomically:
        of two processes inserting at once, one wins).

        @return: Deferred firing with the pool recorded, ``pool`` or the
            existing entry's.
        """

    def entries(pool: str, marker: Optional[tuple] = None,
                limit: int = 100) -> "Deferred[list]":
        """
        Up to ``limit`` ``(project, queue)`` pairs recorded in ``pool``,
        after ``marker`` (a pair), ordered by (project, queue), with
        ``None`` projects first.
        """

    def remove_pool(pool: str) -> "Deferred[int]":
        """Remove every entry of ``pool``; Deferred firing with how many."""


class IPoolingStorage(IStorageDriver):
    """A storage driver that can hold the catalog of a pooled deployment."""

    pools = Attribute("The IPoolController of this driver.")
    flavors = Attribute("The IFlavorController of this driver.")
    catalog = Attribute("The ICatalogController of this driver.")


class IPooledDriver(ILineStorageDriver):
    """
    The driver of a deployment with ``[drivers] pooling`` on: every queue
    lives in one pool (a storage driver of its own), found through the
    catalog; the pools, flavors and catalog are those of the catalog's
    storage (the same three attributes as ``IPoolingStorage``).
    """

    pools = Attribute("The catalog storage's IPoolController.")
    flavors = Attribute("The catalog storage's IFlavorController.")
    catalog = Attribute("The catalog storage's ICatalogController.")

    def check_uri(uri: str) -> "Deferred[None]":
        """
        Open a driver for ``uri``, see that it answers, and close it.

        @raise errors.ValidationError: the URI is not one the daemon
            supports, or its storage does not answer.
        """

    def pool_health() -> "Deferred[dict]":
        """Deferred firing with {pool name: True if its storage answers}."""
