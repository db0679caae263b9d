"""The daemon's life: failing to start, draining at SIGTERM, reopening at SIGHUP.

**A start-up failure** (a port in use, storage that cannot be opened) is one
line on standard error and in the log, and exit status 1 (``fail``).

**Stopping** (SIGTERM, SIGINT): twistd stops the service tree, an
``OrderedShutdown``, whose children stop one after the other, last started
first: the listening ports close (no new connection), then ``Drain`` lets
every HTTP request in flight finish (a request waiting on storage is a
Deferred in its channel) and closes idle keep-alive connections, while the
line endpoint gives back its connections' reservations and closes them; at
``shutdown_timeout`` what is left is cut. Only then the workers, the expiry
loop and last the storage stop, so that writes queued in the driver complete.

**SIGHUP** reopens the log files (``logs.reopen``), reloads the token file
(``[auth] strategy = token``), is passed on to the ``--workers`` processes,
and never stops the daemon.
"""

import atexit
import os
import signal
import sys

from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.internet.error import CannotListenError, ReactorNotRunning
from twisted.logger import Logger

from marconi_tx import logs

log = Logger()


def fail(message, reactor=None):
    """
    Stop the start-up with ``message``: logged, written to standard error as
    ``marconi: message``, exit status 1. Before the reactor runs (``reactor``
    None) this raises SystemExit; once it runs, the reactor is stopped and
    the process exits with 1 once twistd has cleaned up.
    """
    log.critical("{message}", message=message)
    stderr = sys.__stderr__  # twistd sends sys.stderr to the log
    if stderr is not None:
        stderr.write(f"marconi: {message}\n")
        stderr.flush()
    if reactor is None:
        raise SystemExit(1)
    atexit.register(_exit, 1)  # twistd itself would exit with 0
    if not reactor.running:  # failed within startService: stop once it runs
        reactor.callWhenRunning(fail_stop, reactor)
    else:
        fail_stop(reactor)


def fail_stop(reactor):
    try:
        reactor.stop()
    except ReactorNotRunning:  # already stopping
        pass


def _exit(status):
    for stream in (sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    os._exit(status)


class Listener(Service):
    """Runs a listening service (``inner``: endpoints.service) whose failure
    to listen on ``description`` is a one-line start-up failure."""

    def __init__(self, description, inner):
        self.description = description
        self.inner = inner

    def privilegedStartService(self):
        super().privilegedStartService()
        self._listen(self.inner.privilegedStartService)

    def startService(self):
        super().startService()
        self._listen(self.inner.startService)

    def _listen(self, start):
        try:
            start()
        except CannotListenError as e:
            error = e.socketError
            reason = getattr(error, "strerror", None) or str(error)
            fail(f"cannot listen on {self.description}: {reason.lower()}")

    def stopService(self):
        super().stopService()
        return self.inner.stopService()


class OrderedShutdown(MultiService):
    """A MultiService stopping its children one at a time, last started
    first, each once the previous one has stopped (MultiService stops them
    all at once: the storage would close under requests in flight)."""

    def stopService(self):
        Service.stopService(self)
        d = defer.succeed(None)
        for service in reversed(list(self)):
            d.addCallback(lambda _, s=service: s.stopService())
            d.addErrback(lambda f, s=service: log.failure("Stopping {service} failed", f,
                                                          service=s))
        return d


class Drain(Service):
    """
    At stop: let the HTTP requests in flight on ``site`` finish and close
    its connections, give back the reservations of the line endpoint
    (``line``, a LineFactory, or None) and close its connections; after
    ``timeout`` seconds of ``reactor``, close what is still open.
    """

    def __init__(self, site, line, timeout, reactor):
        self.site = site
        self.line = line
        self.timeout = timeout
        self.reactor = reactor
        self._done = None

    def stopService(self):
        super().stopService()
        connections = self.site.connections
        busy = sum(1 for channel in connections if channel.requests)
        log.info("Stopping: {busy} HTTP connections have requests in flight (waiting up "
                 "to {timeout} s), closing {idle} idle ones", busy=busy,
                 timeout=self.timeout, idle=len(connections) - busy)
        work = [self._drain_http()]
        if self.line is not None:
            work.append(self.line.release_all())
        self._done = done = defer.Deferred()
        timer = self.reactor.callLater(self.timeout, self._cut)
        finished = defer.DeferredList(work, consumeErrors=True)
        finished.addCallback(lambda _: timer.cancel() if timer.active() else None)
        finished.addCallback(lambda _: self._finish())
        return done

    def _finish(self, cut=False):
        if self._done.called:
            return
        if not cut:
            # Everything in flight was answered: a clean stop, exit status 0.
            # (twistd would end the process by the signal that stopped it.)
            self.reactor._exitSignal = None
        self._done.callback(None)

    def _drain_http(self):
        long_poll = getattr(self.site.resource, "long_poll", None)
        if long_poll is not None:
            long_poll.stop_all()  # waiting claims answer 204 now, not at their end
        for channel in self.site.connections:
            if not channel.requests:
                channel.transport.loseConnection()
                continue
            # twisted.web closes a channel that is not persistent once its
            # answer is sent; a request whose head is still arriving decides
            # persistence at its end, from the request's Connection header.
            channel.persistent = False
            for request in channel.requests:
                request.requestHeaders.addRawHeader(b"connection", b"close")
                if not request.startedWriting:
                    request.responseHeaders.setRawHeaders(b"connection", [b"close"])
        return self.site.connections.emptied()

    def _cut(self):
        http = list(self.site.connections)
        line = list(self.line.connections) if self.line is not None else []
        log.warn("Shutdown timeout ({timeout} s): cutting {http} HTTP and {line} line "
                 "connections", timeout=self.timeout, http=len(http), line=len(line))
        for connection in http + line:
            connection.transport.abortConnection()
        self.site.connections.emptied().addCallback(lambda _: self._finish(cut=True))


class Reopen(Service):
    """SIGHUP reopens the log files and the access logs of ``sites``, then
    calls each of ``reloads`` (the token strategy reads its file again, the
    worker pool signals its workers)."""

    def __init__(self, sites, reactor, reloads=()):
        self.sites = sites
        self.reactor = reactor
        self.reloads = reloads
        self._previous = None

    def startService(self):
        super().startService()
        self._previous = signal.signal(signal.SIGHUP, self._signalled)

    def _signalled(self, signum, frame):
        self.reactor.callFromThread(self.reopen)

    def reopen(self):
        logs.reopen(self.sites)
        log.info("SIGHUP: log files reopened")
        for reload in self.reloads:
            reload()

    def stopService(self):
        super().stopService()
        if self._previous is not None:
            signal.signal(signal.SIGHUP, self._previous)
