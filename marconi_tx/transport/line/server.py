"""The line endpoint's factory: settings and the state its connections share.

Tubes are the queues of one project (``[drivers:transport:line] project``).
Counters that beanstalkd keeps in memory (commands, connections, per-tube
deletes and pauses) live here, per process; job counts come from storage, so
they include messages posted and claimed over HTTP.
"""

import copy
import os
import resource
import secrets
import socket
from collections import Counter

from twisted.internet import defer
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from marconi_tx import limits
from marconi_tx.deferreds import returns_deferred
from marconi_tx.transport.line import replies
from marconi_tx.transport.line.protocol import LineProtocol
from marconi_tx.waiting import WaitingRoom

#: The protocol version this dialect speaks, reported by ``stats``.
PROTOCOL_VERSION = "1.12"

#: The ``cmd-*`` counters of ``stats``, in beanstalkd's order.
_COMMAND_COUNTERS = (
    "put", "peek", "peek-ready", "peek-delayed", "peek-buried", "reserve",
    "reserve-with-timeout", "delete", "release", "use", "watch", "ignore", "bury",
    "kick", "touch", "stats", "stats-job", "stats-tube", "list-tubes", "list-tube-used",
    "list-tubes-watched", "pause-tube")
#: Queues read per page when listing every tube.
_PAGE = 1000


class TubeState:
    """What this process knows of a tube beyond storage."""

    __slots__ = ("using", "watching", "total_jobs", "deletes", "pauses", "pause",
                 "paused_until")

    def __init__(self):
        self.using = self.watching = self.total_jobs = self.deletes = self.pauses = 0
        self.pause = 0
        self.paused_until = 0.0


class ServedLineProtocol(LineProtocol):
    """
    A connection of the endpoint: its reservations go to the factory's
    ledger (if any), and with an ``idle_timeout`` it is closed once that many
    seconds pass without input while no ``reserve`` waits.
    """

    _idle_timer = None

    def connectionMade(self):
        super().connectionMade()
        self._idle_reset()

    def dataReceived(self, data):
        self._idle_reset()
        super().dataReceived(data)

    def connectionLost(self, reason):
        if self._idle_timer is not None and self._idle_timer.active():
            self._idle_timer.cancel()
        super().connectionLost(reason)

    def reserved_answer(self, job):
        if self.server.ledger is not None:
            self.server.ledger.add(job.id, job.claim_id, self.project, self.server.held)
        return super().reserved_answer(job)

    def _idle_reset(self):
        timeout = self.server.idle_timeout
        if not timeout:
            return
        if self._idle_timer is not None and self._idle_timer.active():
            self._idle_timer.reset(timeout)
        else:
            self._idle_timer = self.clock.callLater(timeout, self._idle_over)

    def _idle_over(self):
        if self.waiter is not None:  # a waiting worker is not idle
            self._idle_timer = self.clock.callLater(self.server.idle_timeout,
                                                    self._idle_over)
        else:
            self.transport.loseConnection()


class LineFactory(Factory):
    """Builds ``LineProtocol`` connections over one storage driver, at most
    ``max_connections`` at once (None: no limit); ``ledger`` (a
    ReservationLedger, or None) records their reservations."""

    noisy = False
    log = Logger()

    def __init__(self, driver, config, clock, max_connections=None, ledger=None,
                 strategy=None):
        self.driver = driver
        self.jobs = driver.jobs
        self.queues = driver.queues
        self.clock = clock
        settings = config.line
        self.project = settings.project or None
        self.message_ttl = settings.message_ttl
        self.max_job_size = settings.max_job_size
        self.max_line_length = settings.max_line_length
        # Input buffered while a command runs: one line and one body.
        self.max_input = settings.max_line_length + settings.max_job_size + 2
        self.room = WaitingRoom(driver.events, clock)
        self.idle_timeout = settings.idle_timeout
        self.ledger = ledger
        self.connections = limits.ConnectionSet(
            "line", float("inf") if max_connections is None else max_connections)
        self.commands = Counter()
        self.tubes = {}
        self.job_timeouts = self.total_jobs = self.total_connections = 0
        self.started = clock.seconds()
        self.instance_id = secrets.token_hex(8)
        #: ``auth TOKEN`` is required first (``[drivers:transport:line]
        #: require_auth``), checked by ``strategy`` (an IAuthStrategy).
        self.require_auth = settings.require_auth
        self.strategy = strategy
        self.spaces = {}  # project -> the factory serving its authenticated connections

    def buildProtocol(self, addr):
        if self.connections.full():
            return None  # the port closes the accepted socket
        protocol = ServedLineProtocol(self)
        protocol.factory = self
        return protocol

    # -- projects of authenticated connections -----------------------------

    def moved(self, protocol, project):
        """Move ``protocol`` (authenticated for ``project``) to the factory
        of ``project``'s tubes; that factory."""
        space = self.spaces.get(project)
        if space is None:
            # It shares the process's connections, ledger, command counts and
            # waiting room (whose keys name the project); tubes and pauses
            # are the project's own.
            space = copy.copy(self)
            space.project = project
            space.tubes = {}
            self.spaces[project] = space
        self.stop_using(protocol.using)
        for tube in protocol.watching:
            self.stop_watching(tube)
        space.start_using(protocol.using)
        for tube in protocol.watching:
            space.start_watching(tube)
        return space

    # -- reservations across stops -----------------------------------------

    def held(self):
        """(job id, claim id, project) of every reservation an open
        connection holds."""
        for connection in self.connections:
            for job_id, reservation in connection.reserved.items():
                yield job_id, reservation.claim_id, connection.project

    @returns_deferred
    async def release_recorded(self):
        """At start: give back the reservations the ledger recorded (those a
        previous run left when it was killed); a Deferred."""
        if self.ledger is not None:
            await self._give_back(self.ledger.recorded(), "left by the previous run")

    @returns_deferred
    async def release_all(self):
        """At a graceful stop, before the storage closes: give back every
        open connection's reservations and close the connections; a Deferred
        that fires once both are done."""
        records = list(self.held())
        for connection in self.connections:
            connection.reserved = {}  # given back here, not by connectionLost
            connection.transport.loseConnection()
        await defer.gatherResults([self._give_back(records, "held at stop"),
                                   self.connections.emptied()])

    @returns_deferred
    async def _give_back(self, records, why):
        """Give back the reservations ``records`` (job id, claim id, project)."""
        results = await defer.DeferredList(
            [self.jobs.abandon(project, job_id, claim_id, False)
             for job_id, claim_id, project in records], consumeErrors=True)
        failed = [record for record, (ok, _) in zip(records, results) if not ok]
        released = sum(1 for ok, done in results if ok and done)
        if records:
            self.log.info("Line reservations {why}: {released} given back, {failed} "
                          "could not be", why=why, released=released, failed=len(failed))
        if self.ledger is not None:
            # What could not be given back is tried again at the next start.
            self.ledger.rewrite(failed + list(self.held()))

    # -- bookkeeping called by connections ---------------------------------

    def tube(self, name):
        state = self.tubes.get(name)
        if state is None:
            state = self.tubes[name] = TubeState()
        return state

    def count(self, command):
        self.commands[command] += 1

    def job_created(self, tube):
        self.total_jobs += 1
        self.tube(tube).total_jobs += 1

    def connection_made(self, protocol):
        self.connections.add(protocol)
        self.total_connections += 1
        self.start_using(protocol.using)
        for tube in protocol.watching:
            self.start_watching(tube)

    def connection_lost(self, protocol):
        if protocol in self.connections:
            self.connections.discard(protocol)
            self.stop_using(protocol.using)
            for tube in protocol.watching:
                self.stop_watching(tube)

    def start_using(self, tube):
        self.tube(tube).using += 1

    def stop_using(self, tube):
        self.tube(tube).using -= 1

    def start_watching(self, tube):
        self.tube(tube).watching += 1

    def stop_watching(self, tube):
        self.tube(tube).watching -= 1

    def referenced(self, name):
        """True if a connection uses or watches the tube (it then exists, as
        in beanstalkd, even if its queue was deleted over HTTP)."""
        state = self.tubes.get(name)
        return state is not None and (state.using > 0 or state.watching > 0)

    # -- pauses ------------------------------------------------------------

    def active_tubes(self, tubes):
        """The tubes among ``tubes`` not paused now; sets the waiting room's
        timer for the end of the pauses (a round over every waiter)."""
        now = self.clock.seconds()
        active = set()
        for name in tubes:
            state = self.tubes.get(name)
            if state is not None and state.paused_until > now:
                self.room.wake_at(state.paused_until)
            else:
                active.add(name)
        return active

    async def exists(self, tube):
        return (tube == "default" or self.referenced(tube)
                or await self.queues.exists(self.project, tube))

    @returns_deferred
    async def pause(self, tube, delay):
        if not await self.exists(tube):
            return replies.NOT_FOUND
        state = self.tube(tube)
        state.pauses += 1
        state.pause = delay
        state.paused_until = self.clock.seconds() + delay
        # A shorter pause (or 0: unpause) may free waiting connections now.
        self.room.wake_at(state.paused_until)
        return replies.PAUSED

    # -- statistics --------------------------------------------------------

    @returns_deferred
    async def tube_names(self):
        """Every tube: the project's queues, "default", and the tubes
        connections refer to, sorted."""
        names = {"default"}
        names.update(name for name in self.tubes if self.referenced(name))
        marker = None
        while True:
            page = await self.queues.list(self.project, marker=marker, limit=_PAGE)
            names.update(q.name for q in page)
            if len(page) < _PAGE:
                return sorted(names)
            marker = page[-1].name

    @returns_deferred
    async def tube_stats(self, tube):
        if not await self.exists(tube):
            return replies.NOT_FOUND
        counts = await self.jobs.counts(self.project, tube)
        state = self.tubes.get(tube) or TubeState()
        left = max(0, int(state.paused_until - self.clock.seconds()))
        return replies.yaml_dict((
            ("name", tube),
            *_current_jobs(counts),
            ("total-jobs", state.total_jobs),
            ("current-using", state.using),
            ("current-watching", state.watching),
            ("current-waiting", self.room.waiting_on((self.project, tube))),
            ("cmd-delete", state.deletes),
            ("cmd-pause-tube", state.pauses),
            ("pause", state.pause if left else 0),
            ("pause-time-left", left)))

    @returns_deferred
    async def stats(self):
        counts = await self.jobs.counts(self.project)
        tubes = await self.tube_names()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        system = os.uname()
        pairs = _current_jobs(counts)
        pairs += [(f"cmd-{name}", self.commands[name]) for name in _COMMAND_COUNTERS]
        pairs += [
            ("job-timeouts", self.job_timeouts),
            ("total-jobs", self.total_jobs),
            ("max-job-size", self.max_job_size),
            ("current-tubes", len(tubes)),
            ("current-connections", len(self.connections)),
            ("current-producers", sum(c.producer for c in self.connections)),
            ("current-workers", sum(c.worker for c in self.connections)),
            ("current-waiting", len(self.room)),
            ("total-connections", self.total_connections),
            ("pid", os.getpid()),
            ("version", f'"{PROTOCOL_VERSION}"'),
            ("rusage-utime", _seconds(usage.ru_utime)),
            ("rusage-stime", _seconds(usage.ru_stime)),
            ("uptime", int(self.clock.seconds() - self.started)),
            ("binlog-oldest-index", 0),
            ("binlog-current-index", 0),
            ("binlog-records-migrated", 0),
            ("binlog-records-written", 0),
            ("binlog-max-size", 0),
            ("draining", "false"),
            ("id", self.instance_id),
            ("hostname", socket.gethostname()),
            ("os", system.version),
            ("platform", system.machine),
        ]
        return replies.yaml_dict(pairs)


def _current_jobs(counts):
    """The ``current-jobs-*`` pairs of the ``JobCounts`` record ``counts``."""
    return [
        ("current-jobs-urgent", counts.urgent),
        ("current-jobs-ready", counts.ready),
        ("current-jobs-reserved", counts.reserved),
        ("current-jobs-delayed", counts.delayed),
        ("current-jobs-buried", counts.buried),
    ]


def _seconds(value):
    micro = round(value * 1e6)
    return f"{micro // 1000000}.{micro % 1000000:06d}"
