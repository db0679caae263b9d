"""A reactor for tests: the real one, on a ``task.Clock``'s time."""

from twisted.internet import reactor as real_reactor
from zope.interface import directlyProvides, providedBy


class ClockReactor:
    """
    The running reactor (its turns, threads and system events), save that
    its time and timers are those of ``clock``, which the test advances by
    hand. A call due at once (``callLater(0, ...)``, the end of a turn) runs
    in the real reactor's next turn; a later one when ``clock`` passes it.
    """

    def __init__(self, clock):
        self.clock = clock
        directlyProvides(self, providedBy(real_reactor))

    def seconds(self):
        return self.clock.seconds()

    def callLater(self, delay, f, *args, **kwargs):
        call = self.clock.callLater(delay, f, *args, **kwargs)
        if delay <= 0:
            real_reactor.callLater(0, self.clock.advance, 0)
        return call

    def getDelayedCalls(self):
        return self.clock.getDelayedCalls()

    def __getattr__(self, name):
        return getattr(real_reactor, name)
