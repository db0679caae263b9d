"""Several processes serving one HTTP port: ``[drivers] workers``.

Every process gets a listening socket of its own on the same address, with
``SO_REUSEPORT`` (Linux spreads new connections across them): the daemon
serves the first itself and starts a worker process for each of the others. A worker is
``twistd -n marconi`` with the parent's settings, handed its socket the
systemd way (``--http systemd:domain=INET:index=0``), without the line
endpoint (which stays in the parent). The workers share the storage: a sqlite
file (writes take its lock in turns without waiting, see
``SqliteDriver.submit``) or MongoDB.

Each worker's output goes to the parent's log, prefixed with its number.
With a line endpoint or long-poll claims, workers report their queue changes
to the parent, so that a post made through a worker wakes the parent's
waiting ``reserve`` and claims; with long-poll claims, the parent relays
every process's changes to the other workers (on their stdin), so that a
claim waiting in one worker is woken by a post answered by any process.
Changes are sent once per reactor turn, whatever the number of posts to a
queue in that turn. Stopping the daemon stops every worker; so does the
parent's death.
"""

import json
import os
import socket
import sys

from twisted.application.service import Service
from twisted.internet import abstract, defer, endpoints, fdesc, protocol
from twisted.internet.error import ProcessExitedAlready, ReactorNotRunning
from twisted.logger import Logger

from marconi_tx import config

#: The descriptor a worker finds its socket on (systemd's SD_LISTEN_FDS_START).
SOCKET_FD = 3
#: Set in a worker's environment (to its number): it then runs ParentWatch.
WORKER_ENV = "MARCONI_WORKER"
#: Set in a worker's environment when the daemon wants its queue changes,
#: which it then writes to descriptor EVENTS_FD.
EVENTS_ENV, EVENTS_FD = "MARCONI_WORKER_EVENTS", 4
#: A worker's program (``python -c``): the socket is for this process
#: (systemd's rule, checked when Twisted is imported), then twistd runs.
WORKER_MAIN = ("import os, sys; os.environ['LISTEN_PID'] = str(os.getpid()); "
               "sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()")
#: Seconds before a worker that exited unexpectedly is started again.
RESTART_DELAY = 1.0
#: A worker ending sooner than this after it was started could not start.
STARTUP_GRACE = 5.0
#: Seconds a stopping worker gets, beyond its own shutdown_timeout (the
#: drain of its requests), before it is killed.
STOP_GRACE = 10.0


def listen_address(description):
    """(family, host, port, backlog) of a ``tcp``/``tcp6`` strports
    description; ConfigError for any other kind of endpoint."""
    from twisted.internet import reactor

    endpoint = endpoints.serverFromString(reactor, description)
    if isinstance(endpoint, endpoints.TCP6ServerEndpoint):
        family = socket.AF_INET6
    elif isinstance(endpoint, endpoints.TCP4ServerEndpoint):
        family = socket.AF_INET
    else:
        raise config.ConfigError(
            f"workers > 1 needs a tcp: or tcp6: http endpoint, not {description!r}")
    return family, endpoint._interface or "", endpoint._port, endpoint._backlog


def reuseport_socket(family, host, port, backlog):
    """A listening socket on (host, port) that others may share
    (``SO_REUSEPORT``); port 0 picks a free port."""
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((host, port))
        s.listen(backlog)
    except OSError:
        s.close()
        raise
    s.setblocking(False)
    return s


class AdoptedPort(Service):
    """Serve ``factory`` on an already listening socket."""

    def __init__(self, sock, factory, reactor):
        self.sock = sock
        self.factory = factory
        self.reactor = reactor
        self.port = None

    def startService(self):
        super().startService()
        self.port = self.reactor.adoptStreamPort(self.sock.fileno(), self.sock.family,
                                                 self.factory)
        self.sock.close()  # the port holds its own descriptor now

    def stopService(self):
        super().stopService()
        return self.port.stopListening()


class _Worker(protocol.ProcessProtocol):
    """Relays a worker's output to the log and its queue changes to the
    pool; tells the pool when it ends."""

    log = Logger()

    def __init__(self, pool, number, started):
        self.pool = pool
        self.number = number
        self.started = started
        self.ended = defer.Deferred()
        self._partial = {}  # fd -> bytes after its last newline

    def childDataReceived(self, fd, data):
        *lines, self._partial[fd] = (self._partial.get(fd, b"") + data).split(b"\n")
        for line in lines:
            if fd == EVENTS_FD:
                self.pool.changed(line, self.number)
            else:
                self.log.info("worker {number}: {line}", number=self.number,
                              line=line.decode("utf-8", "replace"))

    def processEnded(self, reason):
        self.ended.callback(None)
        self.pool.ended(self, reason)


class WorkerPool(Service):
    """
    Runs ``count`` worker processes (twistd arguments ``argv``), each on a
    socket of its own bound to ``address`` (family, host, port, backlog).

    A worker's socket lives only in that worker, so the kernel stops sending
    connections its way when it dies. One that ends after running for
    ``STARTUP_GRACE`` seconds is started again (on a new socket); one that
    ends sooner could not start, and stops the daemon.
    """

    log = Logger()

    #: The workers' [drivers] shutdown_timeout (tap sets the daemon's).
    shutdown_timeout = 0.0

    def __init__(self, count, address, argv, reactor, events=None, relay=False):
        self.count = count
        self.address = address
        self.argv = argv
        self.reactor = reactor
        self.events = events  # the daemon's QueueEvents, to hear workers' changes
        #: Tell the workers of every process's changes (long-poll claims).
        self.relay = relay
        self.workers = {}  # number -> running _Worker
        self._heard_from = None  # the worker whose change is being notified
        self._relayed = {}  # (project, queue) -> {numbers of its sources} this turn
        self._relay_turn = None

    def startService(self):
        super().startService()
        if self.relay:
            self.events.subscribe(self._note_change)
        for number in range(1, self.count + 1):
            self.spawn(number)

    def spawn(self, number):
        worker = _Worker(self, number, self.reactor.seconds())
        sock = reuseport_socket(*self.address)
        env = dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES="http",
                   **{WORKER_ENV: str(number)})
        fds = {0: "w", 1: "r", 2: "r", SOCKET_FD: sock.fileno()}
        if self.events is not None:
            env[EVENTS_ENV] = "1"
            fds[EVENTS_FD] = "r"
        try:
            self.reactor.spawnProcess(
                worker, sys.executable, [sys.executable, "-c", WORKER_MAIN, *self.argv],
                env=env, path=os.getcwd(), childFDs=fds)
        finally:
            sock.close()  # the worker has its own copy
        self.workers[number] = worker

    def changed(self, line, number=None):
        """Worker ``number`` changed a queue (``[project, queue]`` in JSON):
        wake the daemon's consumers of it (the line endpoint's reserve, the
        waiting claims) and, with ``relay``, the other workers'."""
        try:
            project, queue = json.loads(line)
        except (ValueError, TypeError):
            self.log.error("unreadable change from a worker: {line!r}", line=line)
            return
        self._heard_from = number
        try:
            self.events.notify(project, queue)
        finally:
            self._heard_from = None

    def _note_change(self, project, queue):
        """A change in this process or a worker: relay it to the workers
        (but its source) at the end of the turn."""
        self._relayed.setdefault((project, queue), set()).add(self._heard_from)
        if self._relay_turn is None:
            self._relay_turn = self.reactor.callLater(0, self._send_changes)

    def _send_changes(self):
        changes, self._relayed, self._relay_turn = self._relayed, {}, None
        if not self.running:
            return
        for number, worker in self.workers.items():
            lines = [json.dumps(key).encode() + b"\n"
                     for key, sources in changes.items() if sources != {number}]
            if lines:
                worker.transport.writeToChild(0, b"".join(lines))

    def hangup(self):
        """Pass a SIGHUP on to every worker (each reopens its logs and
        reloads the token file, as the daemon does)."""
        for worker in self.workers.values():
            try:
                worker.transport.signalProcess("HUP")
            except ProcessExitedAlready:
                pass

    def ended(self, worker, reason):
        if self.workers.get(worker.number) is not worker:
            return
        del self.workers[worker.number]
        if not self.running:
            return
        if self.reactor.seconds() - worker.started < STARTUP_GRACE:
            self.log.critical("worker {number} could not start ({reason}); stopping",
                              number=worker.number, reason=reason.getErrorMessage())
            self.reactor.stop()
            return
        self.log.error("worker {number} exited ({reason}); starting it again in {delay} s",
                       number=worker.number, reason=reason.getErrorMessage(),
                       delay=RESTART_DELAY)
        self.reactor.callLater(RESTART_DELAY, self._restart, worker.number)

    def _restart(self, number):
        if self.running and number not in self.workers:
            self.spawn(number)

    def stopService(self):
        super().stopService()
        if self.relay:
            self.events.unsubscribe(self._note_change)
        if self._relay_turn is not None and self._relay_turn.active():
            self._relay_turn.cancel()
        self._relay_turn = None
        workers = list(self.workers.values())
        if not workers:
            return None
        for worker in workers:
            worker.transport.closeStdin()  # see ParentWatch
        killer = self.reactor.callLater(self.shutdown_timeout + STOP_GRACE, _kill, workers)
        done = defer.DeferredList([w.ended for w in workers])
        done.addCallback(lambda _: killer.cancel() if killer.active() else None)
        return done


def _kill(workers):
    for worker in workers:
        if not worker.ended.called:
            try:
                worker.transport.signalProcess("KILL")
            except ProcessExitedAlready:
                pass


class ParentWatch(Service):
    """
    In a worker: stop when the pipe from the parent daemon on stdin closes,
    because the parent is stopping or has died. (Stopping by pipe, not by
    signal, keeps a worker from being stopped twice when a supervisor
    signals the whole process group.) When the daemon asks for them, the
    worker's queue changes (``events``) are reported to it on ``EVENTS_FD``,
    so that its line endpoint wakes consumers of what workers posted; the
    changes the daemon relays on stdin (other processes') are notified here
    (and not reported back).
    """

    def __init__(self, reactor, events):
        self.reactor = reactor
        self.events = events
        self._pipe = None

    def startService(self):
        super().startService()
        _ParentPipe(self.reactor, self.heard).startReading()
        if os.environ.get(EVENTS_ENV):
            self._pipe = _EventPipe(self.reactor)
            self.events.subscribe(self._pipe.changed)

    def heard(self, line):
        """Another process changed a queue (``[project, queue]``, JSON)."""
        try:
            project, queue = json.loads(line)
        except (ValueError, TypeError):
            return
        if self._pipe is not None:
            self._pipe.muted = True
        try:
            self.events.notify(project, queue)
        finally:
            if self._pipe is not None:
                self._pipe.muted = False


class _EventPipe(abstract.FileDescriptor):
    """Writes ``[project, queue]`` lines to the daemon, never blocking,
    once per turn for each queue changed in it."""

    #: True while notifying a change the daemon relayed (not to send back).
    muted = False

    def __init__(self, reactor):
        super().__init__(reactor)
        fdesc.setNonBlocking(EVENTS_FD)
        self.connected = True
        self._changes = {}  # (project, queue) -> None, this turn's
        self._turn = None

    def fileno(self):
        return EVENTS_FD

    def writeSomeData(self, data):
        return fdesc.writeToFD(EVENTS_FD, data)

    def changed(self, project, queue):
        if self.muted:
            return
        self._changes[(project, queue)] = None
        if self._turn is None:
            self._turn = self.reactor.callLater(0, self._send)

    def _send(self):
        changes, self._changes, self._turn = self._changes, {}, None
        self.write(b"".join(json.dumps(key).encode() + b"\n" for key in changes))


class _ParentPipe(abstract.FileDescriptor):
    """The daemon's end: its relayed changes, one per line, go to
    ``heard``; EOF stops the worker."""

    def __init__(self, reactor, heard):
        super().__init__(reactor)
        self.heard = heard
        self._partial = b""

    def fileno(self):
        return 0

    def doRead(self):
        return fdesc.readFromFD(0, self._received)  # CONNECTION_DONE at EOF

    def _received(self, data):
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self.heard(line)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        try:
            self.reactor.stop()
        except ReactorNotRunning:  # already stopping
            pass


def worker_argv(config_file, cfg, family):
    """The twistd arguments of a worker of the daemon whose settings are
    ``cfg`` (read from ``config_file``, if any)."""
    argv = ["-n", "--pidfile=", "marconi"]
    if config_file:
        argv += ["--config", os.path.abspath(config_file)]
    domain = "INET6" if family == socket.AF_INET6 else "INET"
    return argv + ["--storage", cfg.drivers.storage,
                   "--gc-interval", str(cfg.drivers.gc_interval),
                   "--http", f"systemd:domain={domain}:index=0",
                   "--line", "", "--workers", "1"]
