"""The records storage returns: frozen, typed, the same from every driver.

They are frozen dataclasses, save ``Message``: a ``NamedTuple``, as
immutable, built for every message read (a page holds ten), at a fifth of
the instructions a frozen dataclass's ``__init__`` takes.

Drivers build them from engine rows and documents (which never leave a
driver); each transport renders them in its own format. All times are whole
seconds: ``created``, ``expires``, ``available_at`` and ``claim_expires`` are
epoch seconds of the driver's clock, ``age`` and ``ttl`` are durations.
"""

from dataclasses import dataclass
from typing import Any, NamedTuple, Optional


class Message(NamedTuple):
    """A message as any transport sees it."""

    #: The decimal form of the server-unique, monotonic integer that is the
    #: FIFO marker and the line protocol's job id.
    id: str
    ttl: int
    age: int
    created: int
    body: Any
    #: The recorded claim (it may have expired), or None.
    claim_id: Optional[str]
    #: Under a live claim.
    claimed: bool
    claim_count: int
    #: Lower first; messages posted over HTTP get ``DEFAULT_PRIORITY``.
    priority: int
    #: The end of a delay.
    available_at: int
    buried: bool
    #: The JSON text ``body`` was decoded from, when the driver read it
    #: from text (``json_text.read_stored``): an answer may write it as is
    #: instead of encoding ``body`` again. None: encode ``body`` (MongoDB's
    #: driver, whose texts are ASCII-escaped: answers write UTF-8).
    body_json: Optional[str] = None


@dataclass(frozen=True, slots=True)
class Claim:
    """A live claim and its live messages."""

    id: str
    ttl: int
    #: Seconds since creation or the last renewal.
    age: int
    expires: int
    messages: tuple


@dataclass(frozen=True, slots=True)
class Queue:
    """A queue in a listing; ``metadata`` only when asked for (else None)."""

    name: str
    metadata: Optional[dict] = None


@dataclass(frozen=True, slots=True)
class MessageStamp:
    """Where a message stands in its queue (the oldest or newest of stats)."""

    id: str
    created: int
    age: int


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts of a queue's messages; buried ones count as claimed.

    ``oldest`` and ``newest`` (lowest and highest marker, claimed messages
    included) are None when the queue is empty."""

    free: int
    claimed: int
    total: int
    oldest: Optional[MessageStamp] = None
    newest: Optional[MessageStamp] = None


@dataclass(frozen=True, slots=True)
class Job:
    """A message as the line protocol (beanstalkd) sees it."""

    id: int
    queue: str
    body: Any
    #: "ready", "reserved", "delayed" or "buried" (``rules.job_state``).
    state: str
    priority: int
    #: Time-to-run, seconds.
    ttr: int
    #: The delay last set, seconds.
    delay: int
    age: int
    created: int
    available_at: int
    claim_id: Optional[str]
    #: 0 if never claimed.
    claim_expires: int
    #: The message's claim count.
    reserves: int
    timeouts: int
    releases: int
    buries: int
    kicks: int


@dataclass(frozen=True, slots=True)
class JobCounts:
    """Jobs by state, for one queue or every queue of a project."""

    urgent: int
    ready: int
    reserved: int
    delayed: int
    buried: int
    #: The number of queues counted.
    queues: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A queue's dead-letter policy (API v2's ``_max_claim_count``,
    ``_dead_letter_queue`` and ``_dead_letter_queue_messages_ttl``), given to
    ``IClaimController.create``."""

    #: Claims a message may have had before the next one moves it.
    max_claims: int
    #: The queue (of the same project) moved messages go to.
    queue: str
    #: The ttl moved messages get from the moment they move; None keeps
    #: their expiry.
    ttl: Optional[int] = None


@dataclass(frozen=True, slots=True)
class Subscription:
    """A v2 subscription (api-v2.md §6): a subscriber told of each message
    posted to its queue, until it expires."""

    #: Opaque: 24 lowercase hex digits, creation-ordered.
    id: str
    project: Optional[str]
    #: The queue's name (the API's ``source``).
    queue: str
    #: The URI messages are delivered to.
    subscriber: str
    ttl: int
    #: Seconds since creation or the last change of ``ttl``.
    age: int
    expires: int
    options: dict
    confirmed: bool
    #: The marker (message id, as an int) of the last message delivered or
    #: given up on; later messages of the queue are still to deliver.
    cursor: int


@dataclass(frozen=True, slots=True)
class Pool:
    """A storage backend of a pooled deployment (api-v2.md §8)."""

    name: str
    #: A storage URI the daemon supports (sqlite:PATH, mongodb://...).
    uri: str
    #: Relative share of new queues placed in it (0: none).
    weight: int
    #: The flavor it serves, or None.
    flavor: Optional[str]
    options: dict
    #: Given at creation (1, 2, ...), never reused: the message ids of a
    #: pooled deployment carry it, so that an id names its pool.
    number: int


@dataclass(frozen=True, slots=True)
class Flavor:
    """A named set of pools (the pools whose ``flavor`` is its name)."""

    name: str
    capabilities: dict
