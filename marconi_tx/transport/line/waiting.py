"""Connections blocked in ``reserve``, woken by events and timers, not polls.

The room keeps the waiting connections in arrival order. It tries to reserve
a job for them when the storage's notification hub (``driver.events``) says a
queue changed (a post from either transport, a released claim or job, a kick,
a timeout) and when a timer set for the next known change runs out: the end
of a delay, of a claim (a TCP reservation or an HTTP claim), or of a pause.
Tries go first-come first-served: a job goes to the earliest waiter watching
its tube, and waiters whose tubes were just found empty are not asked again
in the same round.
"""

from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface

from marconi_tx.deferreds import returns_deferred

#: A round over every waiter (a timer ran out), not only some tubes.
ALL = None


class IWaiter(Interface):
    """One connection's pending ``reserve``."""

    tubes = Attribute("frozenset of the watched tube names.")
    immediate = Attribute(
        "True for one try only (reserve-with-timeout 0, or a reserve in the "
        "DEADLINE_SOON margin): the room calls give_up if that try finds nothing.")

    def deliver(job):
        """Take the reserved ``job``; False if no longer waiting (the room
        then gives the job back)."""

    def give_up():
        """An immediate try found no job."""

    def fail(failure):
        """Storage failed while trying."""


class WaitingRoom:
    log = Logger()

    def __init__(self, jobs, events, clock, project, active_tubes):
        """
        @param active_tubes: callable(tubes) -> the tubes not paused now.
        """
        self.jobs = jobs
        self.events = events
        self.clock = clock
        self.project = project
        self.active_tubes = active_tubes
        self._waiters = {}  # insertion ordered: arrival order
        self._pending = set()
        self._has_pending = False
        self._running = False
        self._timer = None

    def __len__(self):
        return len(self._waiters)

    def waiting_on(self, tube):
        """How many connections wait with ``tube`` on their watch list."""
        return sum(tube in w.tubes for w in self._waiters)

    def enter(self, waiter):
        """Queue ``waiter`` and try at once (it may be served right away)."""
        if not self._waiters:
            self.events.subscribe(self._changed)
        self._waiters[waiter] = None
        self._request(waiter.tubes)

    def leave(self, waiter):
        """Forget ``waiter`` (served, timed out, or its connection closed)."""
        if waiter not in self._waiters:
            return
        del self._waiters[waiter]
        if not self._waiters:
            self.events.unsubscribe(self._changed)
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            self._timer = None

    def wake_at(self, when):
        """Try every waiter again at ``when`` (epoch seconds of the clock)."""
        if not self._waiters:
            return
        delay = max(0.0, when - self.clock.seconds())
        if self._timer is not None and self._timer.active():
            if self._timer.getTime() <= self.clock.seconds() + delay:
                return
            self._timer.cancel()
        self._timer = self.clock.callLater(delay, self._timer_ran_out)

    def _timer_ran_out(self):
        self._timer = None
        self._request(ALL)

    def _changed(self, project, queue):
        if (project or None) == self.project:
            self._request({queue})

    def _request(self, tubes):
        if tubes is ALL or self._pending is ALL:
            self._pending = ALL
        else:
            self._pending |= tubes
        self._has_pending = True
        if not self._running:
            self._run()

    @returns_deferred
    async def _run(self):
        # Re-entrant calls (a served connection's next command may release a
        # job, which notifies) only add to _pending; this loop picks them up.
        self._running = True
        try:
            while self._has_pending:
                changed, self._pending, self._has_pending = self._pending, set(), False
                await self._round(changed)
        finally:
            self._running = False

    async def _round(self, changed):
        empty = set()
        for waiter in list(self._waiters):
            if waiter not in self._waiters:
                continue
            if changed is not ALL and not waiter.tubes & changed:
                continue
            tubes = self.active_tubes(waiter.tubes)
            if tubes and not tubes <= empty:
                try:
                    job = await self.jobs.reserve(self.project, sorted(tubes))
                except Exception:
                    failure = Failure()
                    if waiter in self._waiters:
                        self.leave(waiter)
                        waiter.fail(failure)
                    continue
                if job is not None:
                    await self._hand_over(waiter, job)
                    continue
                empty |= tubes
                try:
                    when = await self.jobs.next_change(self.project, sorted(tubes))
                except Exception:
                    self.log.failure("Cannot read the next change of {tubes}", tubes=tubes)
                    when = None
                if when is not None:
                    self.wake_at(when)
            if waiter.immediate and waiter in self._waiters:
                self.leave(waiter)
                waiter.give_up()

    async def _hand_over(self, waiter, job):
        if waiter in self._waiters:
            self.leave(waiter)
            if waiter.deliver(job):
                return
        # The waiter left while storage was answering: the job goes back.
        try:
            await self.jobs.abandon(self.project, job.id, job.claim_id, False)
        except Exception:
            self.log.failure("Cannot give back job {id}", id=job.id)
