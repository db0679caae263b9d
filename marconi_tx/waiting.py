"""Consumers waiting for messages, woken by events and timers, not polls.

Both transports' blocking reads wait here: the line port's ``reserve`` and
HTTP's long-poll claims (``POST .../claims?wait=N``). A waiter watches keys,
``(project, queue)`` pairs (project None: the global namespace). The room
asks waiters to try again when the storage's notification hub
(``driver.events``) says a watched queue changed (a post from any transport
or, with ``--workers``, any process; a released claim or job; a kick) and
when a timer set for the next known change of a queue runs out: the end of a
delay or of a claim (a TCP reservation or an HTTP claim), or of a line pause.
A waiter costs a few objects and no polling: the room subscribes to the hub
only while someone waits, indexes waiters by key, and keeps one timer for
the earliest change it knows.

Tries go first-come first-served: what a change frees goes to the earliest
waiter watching it, and waiters whose keys were just found empty are not
asked again in the same round.
"""

import itertools

from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface

from marconi_tx.deferreds import returns_deferred

#: A round over every waiter (a line pause ended), not only some keys.
ALL = None


class IWaiter(Interface):
    """One pending blocking read (a ``reserve``, a long-poll claim)."""

    keys = Attribute("frozenset of the watched (project, queue) pairs.")
    immediate = Attribute(
        "True for one try only (reserve-with-timeout 0, or a reserve in the "
        "DEADLINE_SOON margin): the room calls give_up if that try finds nothing.")

    def active():
        """The watched keys to try now (the line port leaves paused tubes out)."""

    def take(keys):
        """Try to take messages of ``keys`` (sorted): a Deferred firing with
        what was taken (a job, a claim), or None if nothing was free."""

    def next_change(keys):
        """A Deferred firing with the earliest instant (epoch seconds) at
        which something of ``keys`` may become free, or None."""

    def deliver(taken):
        """Take ``taken``; False if no longer waiting (the room then calls
        ``give_back``)."""

    def give_back(taken):
        """Undo a take the waiter no longer wants; a Deferred."""

    def give_up():
        """An immediate try found nothing."""

    def fail(failure):
        """Storage failed while trying."""


def event_key(project, queue):
    """The key of a change notified for ``project`` and ``queue``."""
    return (project or None, queue)


class WaitingRoom:
    log = Logger()

    def __init__(self, events, clock):
        self.events = events
        self.clock = clock
        self._arrivals = itertools.count()
        self._waiters = {}  # waiter -> arrival number, insertion ordered
        self._by_key = {}  # key -> {waiter: None} (arrival ordered)
        self._due = {}  # key (or ALL) -> epoch seconds of its next known change
        self._pending = set()
        self._has_pending = False
        self._running = False
        self._timer = None
        self._timer_when = None

    def __len__(self):
        return len(self._waiters)

    @property
    def busy(self):
        """True while a round of tries is under way."""
        return self._running

    def waiters(self):
        """Every waiter, in arrival order."""
        return list(self._waiters)

    def waiting_on(self, key):
        """How many waiters watch ``key``."""
        return len(self._by_key.get(key, ()))

    def enter(self, waiter):
        """Queue ``waiter`` and try at once (it may be served right away)."""
        if not self._waiters:
            self.events.subscribe(self._changed)
        self._waiters[waiter] = next(self._arrivals)
        for key in waiter.keys:
            self._by_key.setdefault(key, {})[waiter] = None
        self._request(waiter.keys)

    def leave(self, waiter):
        """Forget ``waiter`` (served, timed out, or gone)."""
        if self._waiters.pop(waiter, None) is None:
            return
        for key in waiter.keys:
            watching = self._by_key[key]
            del watching[waiter]
            if not watching:
                del self._by_key[key]
                self._due.pop(key, None)
        if not self._waiters:
            self.events.unsubscribe(self._changed)
            self._due.clear()
            self._cancel_timer()

    def wake_at(self, when, keys=ALL):
        """Try the waiters of ``keys`` (ALL: every waiter) again at ``when``
        (epoch seconds of the clock)."""
        if not self._waiters:
            return
        for key in ([ALL] if keys is ALL else keys):
            due = self._due.get(key)
            if due is None or when < due:
                self._due[key] = when
        if self._timer is not None and self._timer_when <= when:
            return
        self._cancel_timer()
        self._timer_when = when
        self._timer = self.clock.callLater(max(0.0, when - self.clock.seconds()),
                                           self._timer_ran_out)

    def _cancel_timer(self):
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = self._timer_when = None

    def _timer_ran_out(self):
        ran_out, self._timer, self._timer_when = self._timer_when, None, None
        due = [key for key, when in self._due.items() if when <= ran_out]
        for key in due:
            del self._due[key]
        if self._due:
            later = min(self._due.values())
            self._timer_when = later
            self._timer = self.clock.callLater(max(0.0, later - self.clock.seconds()),
                                               self._timer_ran_out)
        self._request(ALL if ALL in due else set(due))

    def _changed(self, project, queue):
        key = event_key(project, queue)
        if key in self._by_key:
            self._request({key})

    def _request(self, keys):
        if keys is ALL or self._pending is ALL:
            self._pending = ALL
        else:
            self._pending |= keys
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

    def _candidates(self, changed):
        """The waiters of the ``changed`` keys, in arrival order."""
        if changed is ALL:
            return list(self._waiters)
        if len(changed) == 1:  # a post's change: its waiters are in order already
            [key] = changed
            return list(self._by_key.get(key, ()))
        found = {}
        for key in changed:
            found.update(self._by_key.get(key, ()))
        return sorted(found, key=self._waiters.__getitem__)

    async def _round(self, changed):
        empty = set()
        for waiter in self._candidates(changed):
            if waiter not in self._waiters:
                continue
            keys = waiter.active()
            if keys and not keys <= empty:
                ordered = sorted(keys, key=_sort_key)
                try:
                    taken = await waiter.take(ordered)
                except Exception:
                    failure = Failure()
                    if waiter in self._waiters:
                        self.leave(waiter)
                        waiter.fail(failure)
                    continue
                if taken is not None:
                    await self._hand_over(waiter, taken)
                    continue
                empty |= keys
                try:
                    when = await waiter.next_change(ordered)
                except Exception:
                    self.log.failure("Cannot read the next change of {keys}", keys=keys)
                    when = None
                if when is not None:
                    self.wake_at(when, keys)
            if waiter.immediate and waiter in self._waiters:
                self.leave(waiter)
                waiter.give_up()

    async def _hand_over(self, waiter, taken):
        if waiter in self._waiters:
            self.leave(waiter)
            if waiter.deliver(taken):
                return
        # The waiter left while storage was answering: what it took goes back.
        try:
            await waiter.give_back(taken)
        except Exception:
            self.log.failure("Cannot give back {taken!r}", taken=taken)


def _sort_key(key):
    project, queue = key
    return (project or "", queue)
