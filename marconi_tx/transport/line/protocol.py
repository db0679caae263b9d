"""One line-protocol connection: framing, commands, reservations.

Commands run one at a time in arrival order; input that arrives meanwhile is
buffered up to one command line plus one job body, then reading pauses, so a
client can never make the daemon buffer without bound. Answers are bounded
too: while the transport's write buffer is full (a client that sends but does
not read), no further command runs and reading pauses. An over-long line is
discarded as it arrives and answered ``BAD_FORMAT`` at its end; an over-big
body is discarded as it arrives and answered ``JOB_TOO_BIG``.

A reservation is a storage claim; the connection also keeps its exact
deadline (the clock's float seconds) to release the job when its ttr runs out
and to answer ``DEADLINE_SOON`` one second before, as beanstalkd does. The
connection's reservations are given back when it closes.
"""

from twisted.internet import defer
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from zope.interface import implementer

from marconi_tx import errors, validation
from marconi_tx.transport.line import bodies, grammar, replies
from marconi_tx.transport.sending import send_now
from marconi_tx.waiting import IWaiter

#: The last second of a reservation, in which ``reserve`` answers
#: DEADLINE_SOON rather than wait (beanstalkd's safety margin).
SAFETY_MARGIN = 1.0

_LINE, _BODY, _DISCARD, _SKIP_LINE = range(4)

#: What a command handler returns when its own callbacks write the answer
#: (one callback on the storage call instead of two: the hot commands).
_ANSWERING = object()


class Reservation:
    __slots__ = ("queue", "claim_id", "ttr", "deadline")

    def __init__(self, queue, claim_id, ttr, deadline):
        self.queue, self.claim_id, self.ttr, self.deadline = queue, claim_id, ttr, deadline


@implementer(IWaiter)
class PendingReserve:
    """A connection's blocked ``reserve``; fires ``deferred`` with the answer."""

    def __init__(self, protocol, tubes, immediate, give_up_answer):
        self.protocol = protocol
        self.tubes = tubes
        self.keys = frozenset((protocol.project, tube) for tube in tubes)
        self.immediate = immediate
        self.give_up_answer = give_up_answer
        self.deferred = defer.Deferred()
        self.timer = None
        self.done = False

    def _finish(self):
        self.done = True
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.protocol.waiter = None
        self.protocol.schedule_deadlines()

    def active(self):
        project = self.protocol.project
        return {(project, tube) for tube in self.protocol.server.active_tubes(self.tubes)}

    def take(self, keys):
        return self.protocol.jobs.reserve(self.protocol.project, [tube for _, tube in keys])

    def next_change(self, keys):
        return self.protocol.jobs.next_change(self.protocol.project,
                                              [tube for _, tube in keys])

    def give_back(self, job):
        return self.protocol.jobs.abandon(self.protocol.project, job.id, job.claim_id, False)

    def deliver(self, job):
        if self.done:
            return False
        self._finish()
        self.deferred.callback(self.protocol.reserved_answer(job))
        return True

    def give_up(self):
        self.stop(self.give_up_answer)

    def fail(self, failure):
        if not self.done:
            self._finish()
            self.deferred.errback(failure)

    def stop(self, answer):
        """End the wait with ``answer`` (timeout, deadline soon, hang-up)."""
        if not self.done:
            self.protocol.server.room.leave(self)
            self._finish()
            self.deferred.callback(answer)


@implementer(IPushProducer)
class _AnswerThrottle:
    """Registered with the transport: its write buffer's high and low water
    marks stop and restart the processing of commands."""

    def __init__(self, protocol):
        self.protocol = protocol

    def pauseProducing(self):
        self.protocol.answers_blocked(True)

    def resumeProducing(self):
        self.protocol.answers_blocked(False)

    def stopProducing(self):
        pass


@implementer(IHalfCloseableProtocol)
class LineProtocol(Protocol):
    log = Logger()

    def __init__(self, server):
        self.server = server
        self.jobs = server.jobs
        self.project = server.project
        self.clock = server.clock
        self.using = "default"
        self.watching = ["default"]
        self.reserved = {}
        self.waiter = None
        self.producer = self.worker = False
        self._deadline_timer = None
        self._buffer = bytearray()
        self._state = _LINE
        self._put_args = None
        self._discard = 0
        self._discard_answer = replies.JOB_TOO_BIG
        #: True until ``auth`` succeeds when the endpoint requires it.
        self.guarded = server.require_auth
        self._busy = self._pumping = self._paused = self._blocked = False
        self._closed = self._input_ended = False
        self._handlers = {
            "peek": self.peek, "peek-ready": self.peek_ready,
            "peek-delayed": self.peek_delayed, "peek-buried": self.peek_buried,
            "reserve": self.reserve, "reserve-with-timeout": self.reserve_with_timeout,
            "reserve-job": self.reserve_job, "delete": self.delete,
            "release": self.release, "bury": self.bury, "touch": self.touch,
            "kick": self.kick, "kick-job": self.kick_job, "stats-job": self.stats_job,
            "stats-tube": self.stats_tube, "stats": self.stats, "use": self.use,
            "watch": self.watch, "ignore": self.ignore,
            "list-tubes": self.list_tubes, "list-tube-used": self.list_tube_used,
            "list-tubes-watched": self.list_tubes_watched, "pause-tube": self.pause_tube,
        }

    # -- connection events -------------------------------------------------

    def connectionMade(self):
        self.transport.registerProducer(_AnswerThrottle(self), True)
        self.server.connection_made(self)

    def answers_blocked(self, blocked):
        """The transport's write buffer is full (True) or drained (False)."""
        self._blocked = blocked
        if not blocked:
            self._pump()
        else:
            self._flow()

    def connectionLost(self, reason):
        self._closed = True
        self._buffer.clear()
        if self.waiter is not None:
            self.waiter.stop(None)
        if self._deadline_timer is not None and self._deadline_timer.active():
            self._deadline_timer.cancel()
        reserved, self.reserved = self.reserved, {}
        for job_id, reservation in reserved.items():
            self._give_back(job_id, reservation, timed_out=False)
        self.server.connection_lost(self)

    def readConnectionLost(self):
        # A half-closed client gets TIMED_OUT for a pending reserve (as from
        # beanstalkd), the answers to what it already sent, then the close.
        self._input_ended = True
        if self.waiter is not None:
            self.waiter.stop(replies.TIMED_OUT)
        self._pump()

    def writeConnectionLost(self):
        self.transport.loseConnection()

    # -- framing -----------------------------------------------------------

    def dataReceived(self, data):
        if self._closed:
            return
        self._buffer += data
        self._pump()

    def _pump(self):
        if self._pumping:
            return
        self._pumping = True
        try:
            while not (self._busy or self._blocked or self._closed) and self._step():
                pass
        finally:
            self._pumping = False
        self._flow()
        if self._input_ended and not (self._busy or self._blocked or self._closed):
            self._closed = True
            self.transport.loseConnection()

    def _flow(self):
        # Pause reading while answers cannot be written, or while a command
        # runs and enough input is waiting.
        full = self._blocked or len(self._buffer) > self.server.max_input
        if full and not self._paused and not self._closed:
            self._paused = True
            self.transport.pauseProducing()
        elif not full and self._paused:
            self._paused = False
            self.transport.resumeProducing()

    def _step(self):
        """Handle one unit of input; False when more input is needed."""
        buf = self._buffer
        if self._state == _LINE:
            limit = self.server.max_line_length
            end = buf.find(b"\r\n", 0, limit)
            if end < 0:
                if len(buf) < limit:
                    return False
                self._state = _SKIP_LINE
                return True
            line = bytes(buf[:end])
            del buf[:end + 2]
            self._line(line)
            return True
        if self._state == _SKIP_LINE:
            end = buf.find(b"\r\n")
            if end < 0:
                # Keep a final CR: its LF may be in the next packet.
                del buf[:len(buf) - 1 if buf.endswith(b"\r") else len(buf)]
                return False
            del buf[:end + 2]
            self._state = _LINE
            self._reply(replies.BAD_FORMAT)
            return True
        if self._state == _DISCARD:
            count = min(len(buf), self._discard)
            del buf[:count]
            self._discard -= count
            if self._discard:
                return False
            self._state = _LINE
            self._reply(self._discard_answer)
            return True
        priority, delay, ttr, size = self._put_args
        if len(buf) < size + 2:
            return False
        body, crlf = bytes(buf[:size]), bytes(buf[size:size + 2])
        del buf[:size + 2]
        self._state = _LINE
        if crlf != b"\r\n":
            self._reply(replies.EXPECTED_CRLF)
        else:
            self._run(self.put, (priority, delay, ttr, body))
        return True

    def _line(self, line):
        try:
            command, args = grammar.parse(line)
        except grammar.BadFormat:
            return self._reply(replies.BAD_FORMAT)
        except grammar.UnknownCommand:
            if line.startswith(b"auth ") and self.server.require_auth:
                return self._run(self.auth, (line[5:].strip(b" "),))
            return self._reply(replies.UNKNOWN_COMMAND)
        if command == "quit":
            self._closed = True
            return self.transport.loseConnection()
        if self.guarded:  # a put's body is read and dropped, then answered
            if command == "put":
                self._state, self._discard = _DISCARD, args[3] + 2
                self._discard_answer = replies.UNAUTHORIZED
                return None
            return self._reply(replies.UNAUTHORIZED)
        if command == "put":
            size = args[3]
            if size > self.server.max_job_size:
                self._state, self._discard = _DISCARD, size + 2
                self._discard_answer = replies.JOB_TOO_BIG
            else:
                self._state, self._put_args = _BODY, args
            return None
        self.server.count(command)
        return self._run(self._handlers[command], args)

    def _run(self, handler, args):
        """Run a command; its answer (bytes, a Deferred of bytes, or
        ``_ANSWERING``: the handler's callbacks reply) is written before the
        next command starts."""
        # The per-command path keeps plain Deferred callbacks on purpose (the
        # job commands chain one callback on the storage call): a coroutine
        # wrapped in a Deferred costs about 3 µs more per command, and each
        # callback about 2.
        self._busy = True
        try:
            answer = handler(*args)
        except Exception:
            answer = defer.fail()
        if answer is _ANSWERING:
            return
        if isinstance(answer, defer.Deferred):
            answer.addCallbacks(self._reply, self._failed_reply)
        else:
            self._reply(answer)

    def _reply(self, answer):
        if answer is not None and not self._closed:
            if self._buffer:  # more commands to answer: one send for all
                self.transport.write(answer)
            else:
                send_now(self.transport, answer)
        self._busy = False
        if not self._pumping:
            self._pump()

    def _failed_reply(self, failure):
        if failure.check(errors.StorageUnavailable, errors.ServiceUnavailable):
            self.log.warn("Storage failed: {error}", error=failure.getErrorMessage())
            self._reply(replies.OUT_OF_MEMORY)
        else:
            self.log.failure("Line command failed", failure)
            self._reply(replies.INTERNAL_ERROR)

    # -- reservations ------------------------------------------------------

    def reserved_answer(self, job):
        """Record a job just reserved for this connection; its answer."""
        self.reserved[job.id] = Reservation(job.queue, job.claim_id, job.ttr,
                                            self.clock.seconds() + job.ttr)
        self.schedule_deadlines()
        return replies.job(b"RESERVED", job.id, bodies.to_bytes(job.body))

    def _deadline_soon(self, now):
        return any(r.deadline - SAFETY_MARGIN <= now for r in self.reserved.values())

    def schedule_deadlines(self):
        """Keep one timer at the next reservation deadline (its safety margin
        while a reserve waits). A timer already due earlier is kept: it
        reschedules when it runs, which spares a timer per reservation."""
        if not self.reserved or self._closed:
            return
        due = min(r.deadline for r in self.reserved.values())
        if self.waiter is not None:
            due -= SAFETY_MARGIN
        timer = self._deadline_timer
        if timer is not None and timer.active():
            if timer.getTime() <= due:
                return
            timer.cancel()
        self._deadline_timer = self.clock.callLater(max(0.0, due - self.clock.seconds()),
                                                    self._deadline_reached)

    def _deadline_reached(self):
        self._deadline_timer = None
        now = self.clock.seconds()
        for job_id, reservation in list(self.reserved.items()):
            if reservation.deadline <= now:
                del self.reserved[job_id]
                self.server.job_timeouts += 1
                self._give_back(job_id, reservation, timed_out=True)
        if self.waiter is not None and self._deadline_soon(now):
            self.waiter.stop(replies.DEADLINE_SOON)
        self.schedule_deadlines()

    def _give_back(self, job_id, reservation, timed_out):
        d = self.jobs.abandon(self.project, job_id, reservation.claim_id, timed_out)
        d.addErrback(self._not_given_back, job_id)

    def _not_given_back(self, failure, job_id):
        # The claim still ends by itself at its expiry: an outage (or the
        # storage closing first at shutdown) only delays the job.
        if failure.check(errors.StorageUnavailable):
            self.log.warn("Job {id} not given back: {error}", id=job_id,
                          error=failure.getErrorMessage())
        else:
            self.log.failure("Cannot give back job {id}", failure, id=job_id)

    def _forget(self, job_id):
        self.reserved.pop(job_id, None)

    # -- authentication (an extension: [drivers:transport:line] require_auth) --

    def auth(self, token):
        """``auth TOKEN``: with a valid token, the connection serves the
        token's project from now on (``AUTHENTICATED``); else
        ``UNAUTHORIZED``. Once authenticated it answers ``BAD_FORMAT``: a
        connection's project never changes."""
        if not self.guarded:
            return replies.BAD_FORMAT
        try:
            text = token.decode("utf-8")
        except UnicodeDecodeError:
            return replies.UNAUTHORIZED
        if not text:
            return replies.BAD_FORMAT
        identity = self.server.strategy.authenticate(text)
        if isinstance(identity, defer.Deferred):
            return identity.addCallback(self._authenticated)
        return self._authenticated(identity)

    def _authenticated(self, identity):
        if identity is None or self._closed:
            return replies.UNAUTHORIZED
        self.guarded = False
        self.server = self.server.moved(self, identity.project)
        self.project = self.server.project
        return replies.AUTHENTICATED

    # -- producer commands -------------------------------------------------

    def put(self, priority, delay, ttr, body):
        self.server.count("put")
        tube = self.using
        # A job lives message_ttl seconds once its delay is over (beanstalkd
        # jobs never expire; a delay must not eat their life). Both are below
        # 2**32, so now + ttl stays a 64-bit integer.
        ttl = self.server.message_ttl + delay
        d = self.jobs.put(self.project, tube, bodies.to_json(body), ttl, priority, delay,
                          ttr or 1)
        d.addCallbacks(self._inserted, self._failed_reply, (tube,))
        return _ANSWERING

    def _inserted(self, job_id, tube):
        self.producer = True
        self.server.job_created(tube)
        self._reply(replies.inserted(job_id))

    def use(self, tube):
        if not self._queue_name(tube):
            return replies.BAD_FORMAT
        d = self.server.queues.create(self.project, tube)
        return d.addCallback(self._used, tube)

    def _used(self, _, tube):
        self.server.stop_using(self.using)
        self.using = tube
        self.server.start_using(tube)
        return replies.using(tube)

    # -- worker commands ---------------------------------------------------

    def reserve(self):
        return self._reserve(None)

    def reserve_with_timeout(self, timeout):
        return self._reserve(timeout if timeout >= 0 else None)

    def _reserve(self, timeout):
        self.worker = True
        if not self._deadline_soon(self.clock.seconds()):
            # Nobody waits for these tubes: no turn to keep, so one storage
            # call takes a ready job (the room is entered if there is none).
            room = self.server.room
            project = self.project
            if not any(room.waiting_on((project, tube)) for tube in self.watching):
                tubes = self.server.active_tubes(self.watching)
                if tubes:
                    d = self.jobs.reserve(project, sorted(tubes))
                    d.addCallbacks(self._reserved_at_once, self._failed_reply, (timeout,))
                    return _ANSWERING
        return self._wait(timeout)

    def _reserved_at_once(self, job, timeout):
        if self._closed or self._input_ended:
            # Gone (or half-closed, which ends a reserve) meanwhile.
            if job is not None:
                self.jobs.abandon(self.project, job.id, job.claim_id, False).addErrback(
                    self._not_given_back, job.id)
            self._reply(replies.TIMED_OUT)
        elif job is None:
            self._wait(timeout).addCallbacks(self._reply, self._failed_reply)
        else:
            self._reply(self.reserved_answer(job))

    def _wait(self, timeout):
        """Wait in the room for a job of the watched tubes."""
        soon = self._deadline_soon(self.clock.seconds())
        give_up = replies.DEADLINE_SOON if soon else replies.TIMED_OUT
        waiter = PendingReserve(self, frozenset(self.watching),
                                immediate=soon or timeout == 0, give_up_answer=give_up)
        self.waiter = waiter
        if timeout and not soon:
            waiter.timer = self.clock.callLater(timeout, waiter.stop, replies.TIMED_OUT)
        self.schedule_deadlines()
        self.server.room.enter(waiter)
        return waiter.deferred

    def reserve_job(self, job_id):
        if job_id in self.reserved:
            return replies.NOT_FOUND
        d = self.jobs.reserve_job(self.project, job_id)
        return d.addCallback(lambda job: replies.NOT_FOUND if job is None
                             else self.reserved_answer(job))

    def delete(self, job_id):
        reservation = self.reserved.get(job_id)
        d = self.jobs.delete(self.project, job_id,
                             None if reservation is None else reservation.claim_id)
        d.addCallbacks(self._deleted, self._failed_reply, (job_id,))
        return _ANSWERING

    def _deleted(self, queue, job_id):
        self._forget(job_id)
        if queue is None:
            self._reply(replies.NOT_FOUND)
        else:
            self.server.tube(queue).deletes += 1
            self._reply(replies.DELETED)

    def release(self, job_id, priority, delay):
        reservation = self.reserved.get(job_id)
        if reservation is None:
            return replies.NOT_FOUND
        d = self.jobs.release(self.project, job_id, reservation.claim_id, priority, delay)
        return d.addCallback(self._ended, job_id, replies.RELEASED)

    def bury(self, job_id, priority):
        reservation = self.reserved.get(job_id)
        if reservation is None:
            return replies.NOT_FOUND
        d = self.jobs.bury(self.project, job_id, reservation.claim_id, priority)
        return d.addCallback(self._ended, job_id, replies.BURIED)

    def _ended(self, done, job_id, answer):
        self._forget(job_id)
        return answer if done else replies.NOT_FOUND

    def touch(self, job_id):
        reservation = self.reserved.get(job_id)
        if reservation is None:
            return replies.NOT_FOUND
        d = self.jobs.touch(self.project, job_id, reservation.claim_id)
        return d.addCallback(self._touched, job_id, reservation)

    def _touched(self, done, job_id, reservation):
        if not done:
            self._forget(job_id)
            return replies.NOT_FOUND
        reservation.deadline = self.clock.seconds() + reservation.ttr
        return replies.TOUCHED

    def watch(self, tube):
        if not self._queue_name(tube):
            return replies.BAD_FORMAT
        d = self.server.queues.create(self.project, tube)
        return d.addCallback(self._watched, tube)

    def _watched(self, _, tube):
        if tube not in self.watching:
            self.watching.append(tube)
            self.server.start_watching(tube)
        return replies.watching(len(self.watching))

    def ignore(self, tube):
        if tube in self.watching:
            if len(self.watching) == 1:
                return replies.NOT_IGNORED
            self.watching.remove(tube)
            self.server.stop_watching(tube)
        return replies.watching(len(self.watching))

    # -- other commands ----------------------------------------------------

    def _found(self, job):
        if job is None:
            return replies.NOT_FOUND
        return replies.job(b"FOUND", job.id, bodies.to_bytes(job.body))

    def peek(self, job_id):
        return self.jobs.peek(self.project, job_id).addCallback(self._found)

    def peek_ready(self):
        return self.jobs.peek_ready(self.project, self.using).addCallback(self._found)

    def peek_delayed(self):
        return self.jobs.peek_delayed(self.project, self.using).addCallback(self._found)

    def peek_buried(self):
        return self.jobs.peek_buried(self.project, self.using).addCallback(self._found)

    def kick(self, bound):
        return self.jobs.kick(self.project, self.using, bound).addCallback(replies.kicked)

    def kick_job(self, job_id):
        d = self.jobs.kick_job(self.project, job_id)
        return d.addCallback(lambda done: replies.KICKED if done else replies.NOT_FOUND)

    def stats_job(self, job_id):
        return self.jobs.peek(self.project, job_id).addCallback(self._job_stats)

    def _job_stats(self, job):
        if job is None:
            return replies.NOT_FOUND
        now = self.clock.seconds()
        mine = self.reserved.get(job.id)
        if job.state == "reserved":
            left = (mine.deadline if mine is not None else job.claim_expires) - now
        elif job.state == "delayed":
            left = job.available_at - now
        else:
            left = 0
        return replies.yaml_dict((
            ("id", job.id), ("tube", job.queue), ("state", job.state),
            ("pri", job.priority), ("age", job.age), ("delay", job.delay),
            ("ttr", job.ttr), ("time-left", max(0, int(left))), ("file", 0),
            ("reserves", job.reserves), ("timeouts", job.timeouts),
            ("releases", job.releases), ("buries", job.buries), ("kicks", job.kicks)))

    def stats_tube(self, tube):
        return self.server.tube_stats(tube)

    def stats(self):
        return self.server.stats()

    def list_tubes(self):
        return self.server.tube_names().addCallback(replies.yaml_list)

    def list_tube_used(self):
        return replies.using(self.using)

    def list_tubes_watched(self):
        return replies.yaml_list(self.watching)

    def pause_tube(self, tube, delay):
        return self.server.pause(tube, delay)

    @staticmethod
    def _queue_name(tube):
        """True if ``tube`` is also a valid queue name for the HTTP API."""
        try:
            validation.queue_identification(tube, None)
        except errors.ValidationError:
            return False
        return True
