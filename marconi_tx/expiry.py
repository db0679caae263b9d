"""The expiry loop: the periodic removal of expired messages and claims.

Expired records are already invisible to every read; this loop only reclaims
their space, so a failed run is logged and retried at the next interval.
"""

from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger


class ExpiryService(Service):
    """Calls ``driver.gc()`` every ``interval`` seconds of ``clock``."""

    log = Logger()

    def __init__(self, driver, interval, clock):
        self.driver = driver
        self.interval = interval
        self.clock = clock
        self._loop = None

    def startService(self):
        super().startService()
        self._loop = LoopingCall(self.collect)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=False)

    def stopService(self):
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def collect(self):
        """One run; a failure is logged so the loop keeps going."""
        d = self.driver.gc()
        d.addErrback(lambda f: self.log.failure("Expiry run failed", f))
        return d
