"""Long-poll claims: ``POST .../claims?wait=N`` on every API version.

A claim that finds nothing free waits up to N seconds (``[limits:transport]
max_claim_wait``) in the site's ``WaitingRoom`` (``marconi_tx.waiting``,
shared with the line port's ``reserve``): it is tried again when the queue
changes (a post over any transport or worker, a released claim) and when a
delay or a claim of the queue ends, and answered 201 as soon as a try claims
something, 204 when the wait runs out. A waiting request holds a few objects
and a timer: no thread, no polling.

A client that goes away stops its wait (the request's ``notifyFinish``
errback); a claim made while it was going is released at once (the room's
``give_back``), so it leaves no claim behind.
"""

from twisted.internet.defer import Deferred
from zope.interface import implementer

from marconi_tx import validation
from marconi_tx.transport.http.inputs import query
from marconi_tx.waiting import IWaiter, WaitingRoom


@implementer(IWaiter)
class PendingClaim:
    """A waiting claim request; ``deferred`` fires with the Claim, or None
    (nothing came in time, or the client left)."""

    immediate = False

    def __init__(self, room, driver, project, queue, take):
        self.room = room
        self.driver = driver
        self.project = project
        self.queue = queue
        self.keys = frozenset([(project, queue)])
        self._take = take
        self.deferred = Deferred()
        self.timer = None
        self.done = False

    def active(self):
        return self.keys

    def take(self, keys):
        return self._take()

    def next_change(self, keys):
        return self.driver.jobs.next_change(self.project, [self.queue])

    def give_back(self, claim):
        return self.driver.claims.delete(self.project, self.queue, claim.id)

    def deliver(self, claim):
        if self.done:
            return False
        self._finish()
        self.deferred.callback(claim)
        return True

    def give_up(self):
        self.stop()

    def fail(self, failure):
        if not self.done:
            self._finish()
            self.deferred.errback(failure)

    def stop(self, _=None):
        """End the wait without a claim: it ran out, the client left, or the
        daemon is stopping."""
        if not self.done:
            self.room.leave(self)
            self._finish()
            self.deferred.callback(None)

    def _finish(self):
        self.done = True
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None


class LongPoll:
    """The long-poll claims of one site (every API version shares it)."""

    def __init__(self, driver, limits, clock=None):
        """
        @param clock: the IReactorTime of the waits; None: the site's
            reactor (``request.site.reactor``), as for the other handlers.
        """
        self.driver = driver
        self.limits = limits
        self.clock = clock
        self.room = None  # made at the first wait

    def wait(self, request):
        """The request's ``wait`` query parameter, checked (0 if absent)."""
        return validation.claim_wait(query(request, "wait"), self.limits)

    def claim(self, request, project, queue, wait, take):
        """
        ``take()`` (a Deferred of a Claim or None: the version's claim),
        waiting up to ``wait`` seconds for it to claim something; a Deferred
        of the Claim, or None.
        """
        if not wait:
            return take()
        if self.room is None:
            self.clock = self.clock or request.site.reactor
            self.room = WaitingRoom(self.driver.events, self.clock)
        waiter = PendingClaim(self.room, self.driver, project, queue, take)
        waiter.timer = self.clock.callLater(wait, waiter.stop)
        request.notifyFinish().addErrback(waiter.stop)
        self.room.enter(waiter)
        return waiter.deferred

    def stop_all(self):
        """Answer every waiting claim now (204): the daemon is stopping."""
        if self.room is not None:
            for waiter in self.room.waiters():
                waiter.stop()
