"""``MemoryDriver``'s subscriptions (``ISubscriptionController``)."""

from dataclasses import dataclass

from zope.interface import implementer

from marconi_tx import errors, json_text
from marconi_tx.storage.ids import new_subscription_id
from marconi_tx.storage.interfaces import ISubscriptionController
from marconi_tx.storage.records import Subscription
from marconi_tx.testing.store import answers, dump_json


@dataclass(slots=True)
class Kept:
    """A subscription as the driver keeps it (options as JSON text)."""

    id: str
    project: str | None
    queue: str
    subscriber: str
    ttl: int
    created: int
    expires: int
    options: str
    confirmed: bool = False
    cursor: int = 0

    def record(self, now):
        return Subscription(id=self.id, project=self.project, queue=self.queue,
                            subscriber=self.subscriber, ttl=self.ttl, age=now - self.created,
                            expires=self.expires, options=json_text.stored(self.options),
                            confirmed=self.confirmed, cursor=self.cursor)


@implementer(ISubscriptionController)
class SubscriptionController:
    def __init__(self, driver):
        self.driver = driver
        self.kept = {}  # id -> Kept

    def _live(self, now):
        return sorted((k for k in self.kept.values() if k.expires > now), key=lambda k: k.id)

    def _of_queue(self, project, queue, now):
        return [k for k in self._live(now) if (k.project, k.queue) == (project, queue)]

    def _find(self, project, queue, subscription_id, now):
        kept = self.kept.get(subscription_id)
        if kept is None or kept.expires <= now or (kept.project, kept.queue) != (project,
                                                                                  queue):
            raise errors.SubscriptionDoesNotExist(subscription_id)
        return kept

    @answers
    def create(self, project, queue, subscriber, ttl, options):
        now = self.driver.now()
        for kept in self._of_queue(project, queue, now):
            if kept.subscriber == subscriber:
                if kept.confirmed:
                    raise errors.SubscriptionExists(subscriber)
                return kept.id, False
        if self.driver.table(project, queue) is None:
            self.driver.new_table(project, queue)
        sid = new_subscription_id(now)
        self.kept[sid] = Kept(sid, project, queue, subscriber, ttl, now, now + ttl,
                              dump_json(options), cursor=self.driver.last_id)
        return sid, True

    @answers
    def list(self, project, queue, marker=None, limit=10):
        now = self.driver.now()
        return [k.record(now) for k in self._of_queue(project, queue, now)
                if k.id > (marker or "")][:max(limit, 0)]

    @answers
    def get(self, project, queue, subscription_id):
        now = self.driver.now()
        return self._find(project, queue, subscription_id, now).record(now)

    @answers
    def update(self, project, queue, subscription_id, subscriber=None, ttl=None,
               options=None):
        now = self.driver.now()
        kept = self._find(project, queue, subscription_id, now)
        if subscriber is not None and subscriber != kept.subscriber:
            if any(k.subscriber == subscriber for k in self._of_queue(project, queue, now)):
                raise errors.SubscriptionExists(subscriber)
            kept.subscriber, kept.confirmed = subscriber, False
        if ttl is not None:
            kept.ttl, kept.created, kept.expires = ttl, now, now + ttl
        if options is not None:
            kept.options = dump_json(options)

    @answers
    def delete(self, project, queue, subscription_id):
        kept = self.kept.get(subscription_id)
        if kept is not None and (kept.project, kept.queue) == (project, queue):
            del self.kept[subscription_id]

    @answers
    def confirm(self, project, queue, subscription_id, confirmed):
        kept = self._find(project, queue, subscription_id, self.driver.now())
        if confirmed and not kept.confirmed:
            kept.cursor = max(kept.cursor, self.driver.last_id)
        kept.confirmed = confirmed

    @answers
    def purge(self, project, queue):
        doomed = [k.id for k in self.kept.values() if (k.project, k.queue) == (project, queue)]
        for sid in doomed:
            del self.kept[sid]
        return len(doomed)

    @answers
    def scan(self, marker=None, limit=100):
        now = self.driver.now()
        return [k.record(now) for k in self._live(now) if k.id > (marker or "")][:max(limit, 0)]

    @answers
    def advance(self, project, queue, subscription_id, cursor):
        kept = self.kept.get(subscription_id)
        if kept is not None and (kept.project, kept.queue) == (project, queue):
            kept.cursor = max(kept.cursor, cursor)

    def collect(self, now):
        """Remove the expired subscriptions (gc); how many."""
        expired = [k.id for k in self.kept.values() if k.expires <= now]
        for sid in expired:
            del self.kept[sid]
        return len(expired)
