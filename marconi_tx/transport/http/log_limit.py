"""Rate-limited logging of what clients can provoke.

A client can repeat a request that makes the server log (a bug's 500, a
timed-out connection) as fast as it likes; each repetition must not cost a
log line. ``LogLimiter`` lets one line of a kind through every ``interval``
seconds and counts the rest, which the next line of that kind reports.
"""

from twisted.logger import Logger


class LogLimiter:
    """
    @param interval: seconds between two lines of one kind (0: every line).
    @param clock: a callable giving the ``IReactorTime`` to read the time
        from (looked up at each line: a site's reactor may be replaced
        after the site is built).
    """

    def __init__(self, interval, clock):
        self.interval = interval
        self.clock = clock
        self._kinds = {}  # kind -> [instant of its last line, lines suppressed since]

    def admit(self, kind):
        """None if a line of ``kind`` must be suppressed now, else how many
        of its lines were suppressed since the last one written."""
        now = self.clock().seconds()
        state = self._kinds.get(kind)
        if state is None:
            self._kinds[kind] = [now, 0]
            return 0
        if now - state[0] < self.interval:
            state[1] += 1
            return None
        suppressed = state[1]
        state[:] = [now, 0]
        return suppressed


class LimitedLogger(Logger):
    """A ``Logger`` whose events go through a ``LogLimiter``, one kind per
    format string (twisted.web's own log calls are fixed strings)."""

    def __init__(self, namespace=None, source=None, observer=None, limiter=None):
        super().__init__(namespace, source, observer)
        self.limiter = limiter

    def __get__(self, instance, owner=None):
        bound = super().__get__(instance, owner)
        bound.limiter = self.limiter
        return bound

    def emit(self, level, format=None, **kwargs):
        suppressed = self.limiter.admit((self.namespace, format))
        if suppressed is None:
            return
        if suppressed:
            format = (format or "") + " ({log_suppressed} alike suppressed before this)"
            kwargs["log_suppressed"] = suppressed
        super().emit(level, format, **kwargs)
