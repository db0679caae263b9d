"""What ``MemoryDriver`` keeps (its rows, in the engines' terms) and the
decorator every one of its storage calls shares."""

import functools
import uuid
from dataclasses import dataclass, field

from marconi_tx import json_text
from marconi_tx.deferreds import returns_deferred
from marconi_tx.storage.interfaces import DEFAULT_TTR
from marconi_tx.storage.records import Message

dump_json = json_text.encoder()


@dataclass(slots=True)
class Stored:
    """A message as the driver keeps it (the engines' row or document)."""

    id: int
    queue: str
    body: str  # JSON text
    ttl: int
    created: int
    expires: int
    client: uuid.UUID | None  # the poster's
    priority: int
    available_at: int
    claim_id: str | None = None
    claim_expires: int = 0
    claim_count: int = 0
    #: The burial order in its queue (1, 2, ...), 0 when not buried.
    buried: int = 0
    # What the line protocol keeps beyond the message (memory_jobs.py).
    ttr: int = DEFAULT_TTR
    delay: int = 0
    timeouts: int = 0
    releases: int = 0
    buries: int = 0
    kicks: int = 0

    def free(self, now):
        """Not under a live claim, not buried and not expired."""
        return self.claim_expires <= now and not self.buried and self.expires > now

    def extend(self, expires, ttl):
        """Outlive the instant ``expires``: a claim's rule (semantics.md §3.3)."""
        if self.expires < expires:
            self.expires, self.ttl = expires, ttl

    def record(self, now):
        """The ``Message`` record of this message at ``now``."""
        return Message(id=str(self.id), ttl=self.ttl, age=now - self.created,
                       created=self.created, body=json_text.stored(self.body),
                       claim_id=self.claim_id, claimed=self.claim_expires > now,
                       claim_count=self.claim_count, priority=self.priority,
                       available_at=self.available_at, buried=bool(self.buried))


@dataclass(slots=True)
class Term:
    """The ttl and end of an HTTP claim (reservations have none)."""

    ttl: int
    expires: int


@dataclass(slots=True)
class Table:
    """A queue: its metadata (JSON text), its messages by id (in id order,
    as ids only grow) and its claims by id (Term)."""

    metadata: str = "{}"
    messages: dict = field(default_factory=dict)
    claims: dict = field(default_factory=dict)

    def adopt(self, message):
        """Take in a message moved from another queue, keeping id order."""
        self.messages[message.id] = message
        if message.id < max(self.messages):
            self.messages = dict(sorted(self.messages.items()))

    def live(self, now):
        """The unexpired messages, oldest first."""
        return [m for m in self.messages.values() if m.expires > now]


def answers(method):
    """A storage call: it runs at once and delivers its result or error
    through a fired Deferred; StorageUnavailable while the driver is not
    open. ``self`` is a controller (with ``driver``) or the driver."""

    @returns_deferred
    @functools.wraps(method)
    async def call(self, *args, **kwargs):
        getattr(self, "driver", self).check_open()
        return method(self, *args, **kwargs)

    return call
