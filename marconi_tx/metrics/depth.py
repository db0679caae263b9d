"""Queue depth gauges, refreshed in the background.

Counting a queue's messages walks its index: O(depth), which a scrape must
not pay (nor a storage outage stall). So the depths are read every
``interval`` seconds by a LoopingCall, one queue after the other, through
``queues.stats`` (which sqlite runs on its scan thread, off the reactor),
and a scrape shows the last values read.

Which queues: the last ``limit`` queues this process saw activity on (a
post, a put, a released claim or job: the driver's change notifications,
which the storage sends anyway), so that the number of series, and the
refresh's work, stay bounded however many queues exist. A queue that is
deleted, or falls out of the recent ones, loses its series at the next
refresh.
"""

from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from marconi_tx import errors
from marconi_tx.deferreds import returns_deferred

STATES = ("free", "claimed")
_ABSENT = object()


class QueueDepths(Service):
    log = Logger()

    def __init__(self, driver, gauge, clock, interval, limit):
        self.driver = driver
        self.gauge = gauge
        self.clock = clock
        self.interval = interval
        self.limit = limit
        self.recent = {}  # (project, queue) -> None, oldest activity first
        self.shown = set()  # (project, queue) with series in the gauge
        self._loop = None

    def noted(self, project, queue):
        """A change notification: ``queue`` is active."""
        key = (project, queue)
        recent = self.recent
        if recent.pop(key, _ABSENT) is _ABSENT and len(recent) >= self.limit:
            del recent[next(iter(recent))]
        recent[key] = None

    def startService(self):
        super().startService()
        if not self.limit:
            return
        self.driver.events.subscribe(self.noted)
        self._loop = LoopingCall(self.refresh)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=False).addErrback(
            lambda f: self.log.failure("Queue depth refresh stopped", f))

    def stopService(self):
        super().stopService()
        self.driver.events.unsubscribe(self.noted)
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    @returns_deferred
    async def refresh(self):
        """Read the depth of every recent queue; a Deferred (the loop waits
        for it, so refreshes never overlap)."""
        for key in list(self.recent):
            try:
                stats = await self.driver.queues.stats(*key)
            except errors.DoesNotExist:
                self.recent.pop(key, None)
                continue
            except errors.StorageUnavailable as e:
                # Keep the values last read; the next refresh tries again.
                self.log.warn("Queue depths not refreshed: {error}", error=e)
                return
            project, queue = key
            for state in STATES:
                self.gauge.labels(project or "", queue, state).set(getattr(stats, state))
            self.shown.add(key)
        for key in self.shown - set(self.recent):
            project, queue = key
            for state in STATES:
                self.gauge.remove(project or "", queue, state)
            self.shown.discard(key)
