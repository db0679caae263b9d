"""Jobs in memory: the line protocol's view of ``MemoryDriver``'s messages.

A job is a ``Stored`` message (store.py), which also keeps its time-to-run,
last delay and counters. A reservation is a claim tag on the message, as an
HTTP claim is (so either hides the message from the other), without a claim
``Term``: only HTTP requests name claims, and no HTTP client knows a
reservation's id.
"""

from zope.interface import implementer

from marconi_tx import json_text
from marconi_tx.storage import ids, rules
from marconi_tx.storage.interfaces import IJobController
from marconi_tx.storage.records import Job, JobCounts
from marconi_tx.testing.store import answers


@implementer(IJobController)
class JobController:
    def __init__(self, driver):
        self.driver = driver

    # -- helpers -----------------------------------------------------------

    def _after(self, seconds):
        """``seconds`` from now, rounded up to a whole second."""
        return rules.whole_second_after(self.driver.clock.seconds(), seconds)

    @staticmethod
    def _state(message, now):
        """ready, reserved, delayed or buried."""
        return rules.job_state(message.claim_expires, message.buried,
                               message.available_at, now)

    def _job(self, message, now):
        return Job(id=message.id, queue=message.queue, body=json_text.stored(message.body),
                   state=self._state(message, now), priority=message.priority,
                   ttr=message.ttr, delay=message.delay, age=now - message.created,
                   created=message.created, available_at=message.available_at,
                   claim_id=message.claim_id, claim_expires=message.claim_expires,
                   reserves=message.claim_count, timeouts=message.timeouts,
                   releases=message.releases, buries=message.buries, kicks=message.kicks)

    def _find(self, project, job_id):
        """The unexpired message ``job_id`` of a queue of ``project``, or None."""
        if not ids.is_job_id(job_id):
            return None
        now = self.driver.now()
        for (owner, _), table in self.driver.tables.items():
            message = table.messages.get(job_id) if owner == project else None
            if message is not None and message.expires > now:
                return message
        return None

    def _in_state(self, project, queues, state, now):
        """The unexpired messages of ``queues`` (names) in ``state``."""
        for queue in queues:
            table = self.driver.table(project, queue)
            if table is not None:
                yield from (m for m in table.live(now) if self._state(m, now) == state)

    def _claim(self, message, now):
        """Reserve ``message`` for its ttr; the job."""
        expires = self._after(message.ttr)
        message.claim_id, message.claim_expires = ids.new_claim_id(), expires
        message.claim_count += 1
        message.buried = 0
        message.available_at = min(message.available_at, now)
        message.extend(expires, message.ttr)
        return self._job(message, now)

    def _end_claim(self, project, job_id, claim_id):
        """The message ``job_id`` with its claim removed, if ``claim_id`` is
        the claim recorded on it; else None."""
        message = self._find(project, job_id)
        if message is None or claim_id is None or message.claim_id != claim_id:
            return None
        message.claim_id, message.claim_expires = None, 0
        return message

    def _kick(self, message, now):
        """Unbury ``message``, end its delay and count a kick."""
        message.buried = 0
        message.available_at = min(message.available_at, now)
        message.kicks += 1

    # -- IJobController ----------------------------------------------------

    @answers
    def put(self, project, queue, body, ttl, priority, delay, ttr):
        table = (self.driver.table(project, queue)
                 or self.driver.new_table(project, queue))
        available_at = self._after(delay) if delay else None
        message = self.driver.add(table, queue, body, ttl, priority=priority,
                                  available_at=available_at)
        message.ttr, message.delay = ttr, delay
        self.driver.events.notify(project, queue)
        return message.id

    @answers
    def reserve(self, project, queues):
        now = self.driver.now()
        ready = self._in_state(project, queues, "ready", now)
        best = min(ready, key=lambda m: (m.priority, m.id), default=None)
        return None if best is None else self._claim(best, now)

    @answers
    def reserve_job(self, project, job_id):
        now = self.driver.now()
        message = self._find(project, job_id)
        if message is None or message.claim_expires > now:
            return None
        return self._claim(message, now)

    @answers
    def next_change(self, project, queues):
        now = self.driver.now()
        instants = [m.available_at for m in self._in_state(project, queues, "delayed", now)]
        instants += [m.claim_expires for m in self._in_state(project, queues, "reserved", now)]
        return min(instants, default=None)

    @answers
    def touch(self, project, job_id, claim_id):
        message = self._find(project, job_id)
        if (message is None or claim_id is None or message.claim_id != claim_id
                or message.claim_expires <= self.driver.now()):
            return False
        message.claim_expires = self._after(message.ttr)
        message.extend(message.claim_expires, message.ttr)
        return True

    @answers
    def release(self, project, job_id, claim_id, priority, delay):
        message = self._end_claim(project, job_id, claim_id)
        if message is None:
            return False
        message.priority, message.delay = priority, delay
        message.available_at = self._after(delay) if delay else self.driver.now()
        message.releases += 1
        self.driver.events.notify(project, message.queue)
        return True

    @answers
    def bury(self, project, job_id, claim_id, priority):
        message = self._end_claim(project, job_id, claim_id)
        if message is None:
            return False
        table = self.driver.table(project, message.queue)
        message.priority = priority
        message.buried = max(m.buried for m in table.messages.values()) + 1
        message.buries += 1
        return True

    @answers
    def abandon(self, project, job_id, claim_id, timed_out):
        message = self._end_claim(project, job_id, claim_id)
        if message is None:
            return False
        message.timeouts += timed_out
        self.driver.events.notify(project, message.queue)
        return True

    @answers
    def delete(self, project, job_id, claim_id=None):
        message = self._find(project, job_id)
        if message is None:
            return None
        if claim_id is None:
            if message.claim_expires > self.driver.now():
                return None
        elif message.claim_id != claim_id:
            return None
        del self.driver.table(project, message.queue).messages[message.id]
        return message.queue

    @answers
    def peek(self, project, job_id):
        message = self._find(project, job_id)
        return None if message is None else self._job(message, self.driver.now())

    def _first(self, project, queue, state, order):
        now = self.driver.now()
        found = min(self._in_state(project, [queue], state, now), key=order, default=None)
        return None if found is None else self._job(found, now)

    @answers
    def peek_ready(self, project, queue):
        return self._first(project, queue, "ready", lambda m: (m.priority, m.id))

    @answers
    def peek_delayed(self, project, queue):
        return self._first(project, queue, "delayed", lambda m: (m.available_at, m.id))

    @answers
    def peek_buried(self, project, queue):
        return self._first(project, queue, "buried", lambda m: m.buried)

    @answers
    def kick(self, project, queue, bound):
        if bound <= 0:
            return 0
        now = self.driver.now()
        kicked = sorted(self._in_state(project, [queue], "buried", now),
                        key=lambda m: m.buried)[:bound]
        if not kicked:
            kicked = sorted(self._in_state(project, [queue], "delayed", now),
                            key=lambda m: (m.available_at, m.id))[:bound]
        for message in kicked:
            self._kick(message, now)
        if kicked:
            self.driver.events.notify(project, queue)
        return len(kicked)

    @answers
    def kick_job(self, project, job_id):
        now = self.driver.now()
        message = self._find(project, job_id)
        if message is None or self._state(message, now) not in ("buried", "delayed"):
            return False
        self._kick(message, now)
        self.driver.events.notify(project, message.queue)
        return True

    @answers
    def counts(self, project, queue=None):
        now = self.driver.now()
        tables = [table for (owner, name), table in self.driver.tables.items()
                  if owner == project and queue in (None, name)]
        states = {"ready": 0, "reserved": 0, "delayed": 0, "buried": 0}
        urgent = 0
        for table in tables:
            for message in table.live(now):
                state = self._state(message, now)
                states[state] += 1
                urgent += state == "ready" and message.priority < rules.URGENT_PRIORITY
        return JobCounts(urgent=urgent, queues=len(tables), **states)
