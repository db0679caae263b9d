"""``MemoryDriver``: the storage contract kept in Python objects, for tests.

It passes the storage conformance suite, so code written against the
storage interfaces (or served by the HTTP API over it) behaves as it will
on sqlite or MongoDB, without a file or a server. Its only source of time
is the reactor it is given: with a ``task.Clock`` a test moves time by
hand, and claims and messages expire when the clock says so.

Every call runs at once and answers with an already fired Deferred. Bodies
and metadata are kept as JSON text, as the engines keep them: what a caller
reads is its own copy. Closing keeps the data; a driver that is not open
fails every call with ``StorageUnavailable``, as an engine that is down
does, so a test can see how its code copes (the API answers 503).
"""

from twisted.internet import defer
from zope.interface import implementer

from marconi_tx import errors, json_text
from marconi_tx.storage import ids, rules
from marconi_tx.storage.events import QueueEvents
from marconi_tx.storage.interfaces import (
    DEFAULT_PRIORITY,
    IClaimController,
    ILineStorageDriver,
    IMessageController,
    IPoolingStorage,
    IQueueController,
)
from marconi_tx.storage.records import Claim, MessageStamp, Queue, QueueStats
from marconi_tx.testing.memory_jobs import JobController
from marconi_tx.testing.memory_pools import CatalogController, FlavorController, PoolController
from marconi_tx.testing.memory_subscriptions import SubscriptionController
from marconi_tx.testing.store import Stored, Table, Term, answers, dump_json


@implementer(ILineStorageDriver, IPoolingStorage)
class MemoryDriver:
    """An ``ILineStorageDriver`` in memory; time from ``reactor.seconds()``."""

    def __init__(self, reactor):
        self.clock = reactor
        self.opened = False
        self.tables = {}  # (project, name) -> Table
        self.last_id = 0  # message ids are never reused
        self.queues = QueueController(self)
        self.messages = MessageController(self)
        self.claims = ClaimController(self)
        self.jobs = JobController(self)
        self.subscriptions = SubscriptionController(self)
        self.pools = PoolController(self)
        self.flavors = FlavorController(self)
        self.catalog = CatalogController(self)
        self.events = QueueEvents()

    def now(self):
        return int(self.clock.seconds())

    def check_open(self):
        if not self.opened:
            raise errors.StorageUnavailable("memory: the driver is not open")

    def table(self, project, queue):
        """The Table of (project, queue), or None."""
        return self.tables.get((project, queue))

    def new_table(self, project, queue, metadata=None):
        """Create the queue (project, queue), which is missing; its Table."""
        table = self.tables[(project, queue)] = Table(dump_json(metadata or {}))
        return table

    def add(self, table, queue, body, ttl, client=None, priority=DEFAULT_PRIORITY,
            available_at=None):
        """Store a new message in ``table``; the Stored message."""
        now = self.now()
        self.last_id += 1
        message = Stored(id=self.last_id, queue=queue, body=dump_json(body), ttl=ttl,
                         created=now, expires=now + ttl, client=client, priority=priority,
                         available_at=now if available_at is None else available_at)
        table.messages[message.id] = message
        return message

    def open(self):
        self.opened = True
        return defer.succeed(None)

    def close(self):
        self.opened = False
        return defer.succeed(None)

    def is_alive(self):
        return defer.succeed(self.opened)

    @answers
    def gc(self):
        now = self.now()
        removed = 0
        for table in self.tables.values():
            for store in (table.messages, table.claims):
                expired = [key for key, kept in store.items() if kept.expires <= now]
                for key in expired:
                    del store[key]
                removed += len(expired)
        return removed + self.subscriptions.collect(now)


@implementer(IQueueController)
class QueueController:
    def __init__(self, driver):
        self.driver = driver

    def _table(self, project, queue):
        table = self.driver.table(project, queue)
        if table is None:
            raise errors.QueueDoesNotExist(queue, project)
        return table

    @answers
    def create(self, project, queue, metadata=None):
        if self.driver.table(project, queue) is not None:
            return False
        self.driver.new_table(project, queue, metadata)
        return True

    @answers
    def exists(self, project, queue):
        return self.driver.table(project, queue) is not None

    @answers
    def delete(self, project, queue):
        self.driver.tables.pop((project, queue), None)

    @answers
    def list(self, project, marker=None, limit=10, detailed=False, name=None,
             metadata=None):
        # Code point order is the byte order of UTF-8, the engines' order.
        found = sorted((queue, json_text.stored(table.metadata))
                       for (owner, queue), table in self.driver.tables.items()
                       if owner == project and queue > (marker or "")
                       and (name is None or name in queue))
        if metadata:
            found = [(queue, kept) for queue, kept in found
                     if rules.metadata_matches(kept, metadata)]
        return [Queue(queue, kept if detailed else None) for queue, kept in found[:limit]]

    @answers
    def count(self, project):
        return sum(1 for owner, _ in self.driver.tables if owner == project)

    @answers
    def get_metadata(self, project, queue):
        return json_text.stored(self._table(project, queue).metadata)

    @answers
    def set_metadata(self, project, queue, metadata):
        self._table(project, queue).metadata = dump_json(metadata)

    @answers
    def stats(self, project, queue):
        now = self.driver.now()
        live = self._table(project, queue).live(now)
        claimed = sum(1 for m in live if m.claim_expires > now or m.buried)
        if not live:
            return QueueStats(free=0, claimed=0, total=0)
        oldest, newest = (MessageStamp(id=str(m.id), created=m.created, age=now - m.created)
                          for m in (live[0], live[-1]))
        return QueueStats(free=len(live) - claimed, claimed=claimed, total=len(live),
                          oldest=oldest, newest=newest)


@implementer(IMessageController)
class MessageController:
    def __init__(self, driver):
        self.driver = driver

    @answers
    def post(self, project, queue, messages, client_uuid=None, create=False):
        table = self.driver.table(project, queue)
        if table is None and not create:
            raise errors.QueueDoesNotExist(queue, project)
        now = self.driver.now()
        # Every field read before anything is stored: all or nothing.
        batch = [(m["body"], m["ttl"], m.get("priority", DEFAULT_PRIORITY),
                  now + m.get("delay", 0)) for m in messages]
        if table is None:
            table = self.driver.new_table(project, queue)
        posted = [self.driver.add(table, queue, body, ttl, client_uuid, priority, available_at)
                  for body, ttl, priority, available_at in batch]
        self.driver.events.notify(project, queue)
        return [str(m.id) for m in posted]

    @answers
    def list(self, project, queue, marker=None, limit=10, echo=False,
             client_uuid=None, include_claimed=False, include_delayed=False):
        after = 0 if marker is None else ids.parse_message_id(marker)
        table = self.driver.table(project, queue)
        if after is None or table is None:
            return []
        now = self.driver.now()
        shown = []
        for m in table.live(now):
            if len(shown) == limit:
                break
            if (m.id > after
                    and (include_claimed or (m.claim_expires <= now and not m.buried))
                    and (echo or client_uuid is None or m.client != client_uuid)
                    and (include_delayed or m.available_at <= now)):
                shown.append(m.record(now))
        return shown

    @answers
    def get(self, project, queue, message_id):
        table = self.driver.table(project, queue)
        mid = ids.parse_message_id(message_id)
        message = None if table is None or mid is None else table.messages.get(mid)
        now = self.driver.now()
        if message is None or message.expires <= now:
            raise errors.MessageDoesNotExist(message_id, queue)
        return message.record(now)

    @answers
    def bulk_get(self, project, queue, message_ids):
        table = self.driver.table(project, queue)
        if table is None:
            return []
        now = self.driver.now()
        found = (table.messages.get(mid) for mid in ids.parse_ids(message_ids))
        return [m.record(now) for m in found if m is not None and m.expires > now]

    @answers
    def delete(self, project, queue, message_id, claim_id=None):
        rules.check_claim_id(claim_id, queue, ids.is_claim_id)
        table = self.driver.table(project, queue)
        mid = ids.parse_message_id(message_id)
        message = None if table is None or mid is None else table.messages.get(mid)
        if message is None:
            return
        rules.check_delete(message_id, claim_id, message.claim_id, message.claim_expires,
                           self.driver.now())
        del table.messages[mid]

    @answers
    def bulk_delete(self, project, queue, message_ids):
        table = self.driver.table(project, queue)
        if table is not None:
            for mid in ids.parse_ids(message_ids):
                table.messages.pop(mid, None)

    @answers
    def pop(self, project, queue, limit):
        table = self.driver.table(project, queue)
        if table is None:
            return []
        now = self.driver.now()
        # Delayed messages too: free() ignores available_at (api-v2.md §3.2).
        popped = [m for m in table.messages.values() if m.free(now)][:limit]
        for m in popped:
            del table.messages[m.id]
        return [m.record(now) for m in popped]

    @answers
    def purge(self, project, queue):
        table = self.driver.table(project, queue)
        if table is None:
            return 0
        now = self.driver.now()
        purged = [m for m in table.live(now) if m.claim_expires <= now]
        for m in purged:
            del table.messages[m.id]
        return len(purged)


@implementer(IClaimController)
class ClaimController:
    def __init__(self, driver):
        self.driver = driver

    @answers
    def create(self, project, queue, ttl, grace, limit, dead_letter=None):
        table = self.driver.table(project, queue)
        if table is None:
            return None
        now = self.driver.now()
        taken = [m for m in table.messages.values()
                 if m.free(now) and m.available_at <= now][:limit]
        if dead_letter is not None:
            dead = [m for m in taken if m.claim_count >= dead_letter.max_claims]
            taken = [m for m in taken if m.claim_count < dead_letter.max_claims]
            if dead:
                self._move(project, table, dead, dead_letter, now)
        if not taken:
            return None
        claim_id, expires = ids.new_claim_id(), now + ttl
        table.claims[claim_id] = Term(ttl, expires)
        for m in taken:
            m.claim_id, m.claim_expires = claim_id, expires
            m.claim_count += 1
            m.extend(expires + grace, ttl + grace)
        return self._claim(table, claim_id, now)

    def _move(self, project, table, messages, dead_letter, now):
        """Move ``messages`` of ``table`` to the dead-letter queue (created
        if missing), free and with their claim count restarted."""
        target = (self.driver.table(project, dead_letter.queue)
                  or self.driver.new_table(project, dead_letter.queue))
        for m in messages:
            del table.messages[m.id]
            m.queue, m.claim_id, m.claim_expires, m.claim_count = dead_letter.queue, None, 0, 0
            if dead_letter.ttl is not None:
                m.ttl, m.expires = dead_letter.ttl, now + dead_letter.ttl
            target.adopt(m)
        self.driver.events.notify(project, dead_letter.queue)

    @staticmethod
    def _claim(table, claim_id, now):
        term = table.claims[claim_id]
        held = tuple(m.record(now) for m in table.live(now)
                     if m.claim_id == claim_id and m.claim_expires > now)
        return Claim(id=claim_id, ttl=term.ttl, age=now - (term.expires - term.ttl),
                     expires=term.expires, messages=held)

    def _live(self, project, queue, claim_id, now):
        """The Table holding the live claim ``claim_id``; ClaimDoesNotExist."""
        table = self.driver.table(project, queue)
        term = None if table is None else table.claims.get(claim_id)
        if term is None or term.expires <= now:
            raise errors.ClaimDoesNotExist(claim_id, queue)
        return table

    @answers
    def get(self, project, queue, claim_id):
        now = self.driver.now()
        return self._claim(self._live(project, queue, claim_id, now), claim_id, now)

    @answers
    def update(self, project, queue, claim_id, ttl, grace=0):
        now = self.driver.now()
        table = self._live(project, queue, claim_id, now)
        expires = now + ttl
        table.claims[claim_id] = Term(ttl, expires)
        for m in table.live(now):
            if m.claim_id == claim_id:
                m.claim_expires = expires
                m.extend(expires + grace, ttl + grace)

    @answers
    def delete(self, project, queue, claim_id):
        table = self.driver.table(project, queue)
        if table is None or not ids.is_claim_id(claim_id):
            return
        table.claims.pop(claim_id, None)
        # Untag even when gc already dropped the expired claim: a released
        # claim id must no longer delete (semantics.md §2.5).
        for m in table.messages.values():
            if m.claim_id == claim_id:
                m.claim_id, m.claim_expires = None, 0
        self.driver.events.notify(project, queue)
