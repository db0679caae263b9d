"""Jobs on sqlite: the line protocol's view of messages (``IJobController``).

A job is a message row plus an optional row in ``jobs`` (time-to-run, the
last delay, counters), written only when a job needs one: a job put with
``DEFAULT_TTR`` and no delay has none until it is released, buried, kicked
or times out. A reservation is a claim tag on the message (``claim_id``,
``claim_expires``: what hides a message from HTTP claims and listings), set
in one ``BEGIN IMMEDIATE`` transaction, so a message is never held twice
whichever transport asks. A reservation has no row in ``claims``: that row
only serves HTTP requests naming the claim id, which an HTTP client cannot
know (MongoDB keeps claims in the messages in the same way).
``messages.buried`` holds the burial order (0: not buried).
"""

from collections import namedtuple

from zope.interface import implementer

from marconi_tx import json_text
from marconi_tx.storage.ids import is_job_id, new_claim_id
from marconi_tx.storage.interfaces import DEFAULT_TTR, IJobController
from marconi_tx.storage.records import Job, JobCounts
from marconi_tx.storage.rules import URGENT_PRIORITY, job_state, whole_second_after
from marconi_tx.storage.sqlite.transactions import deferred, dump_json, writes

#: What ``_JOB`` selects: a name for each column (the fields of ``JobRow``).
_COLUMNS = {
    "id": "m.id", "queue": "q.name", "body": "CAST(m.body AS BLOB)",
    "priority": "m.priority", "created": "m.created", "available_at": "m.available_at",
    "claim_id": "m.claim_id", "claim_expires": "m.claim_expires",
    "claim_count": "m.claim_count", "buried": "m.buried", "queue_id": "m.queue_id",
    "expires": "m.expires", "ttr": "j.ttr", "delay": "j.delay", "timeouts": "j.timeouts",
    "releases": "j.releases", "buries": "j.buries", "kicks": "j.kicks",
}
#: A job's row: its message, its queue and its ``jobs`` row (None columns
#: when it has none).
JobRow = namedtuple("JobRow", _COLUMNS)  # type: ignore[misc]

_JOB = (f"SELECT {', '.join(_COLUMNS.values())} "
        "FROM messages m JOIN queues q ON q.id = m.queue_id "
        "LEFT JOIN jobs j ON j.id = m.id "
        "WHERE m.id=? AND q.project=? AND m.expires>?")

# The ready job reserve takes: walks messages_by_priority (the literal
# "buried=0" lets sqlite use that partial index).
_READY = ("SELECT priority, id FROM messages WHERE queue_id=? AND buried=0 "
          "AND claim_expires<=? AND available_at<=? AND expires>? "
          "ORDER BY priority, id LIMIT 1")
# What reserve reads of the ready job it takes (the columns of _READY
# first, so that rows compare as _READY's do): all it needs, in one statement.
_READY_JOB = ("SELECT priority, id, CAST(body AS BLOB), created, available_at, claim_count, "
              "expires, (SELECT ttr FROM jobs WHERE id=messages.id) FROM messages "
              "WHERE queue_id=? AND buried=0 AND claim_expires<=? AND available_at<=? "
              "AND expires>? ORDER BY priority, id LIMIT 1")
_JOB_COUNTERS = "SELECT delay, timeouts, releases, buries, kicks FROM jobs WHERE id=?"
# delete by primary key, with the checks of _JOB in its WHERE: nothing is
# read first.
_DELETE = ("DELETE FROM messages WHERE id=? AND expires>? "
           "AND (SELECT project FROM queues WHERE id=queue_id)=? AND {claim} "
           "RETURNING (SELECT name FROM queues WHERE id=queue_id)")
_DELETE_FREE = _DELETE.format(claim="claim_expires<=?")
_DELETE_CLAIMED = _DELETE.format(claim="claim_id=?")
_DELAYED = ("SELECT id FROM messages WHERE queue_id=? AND buried=0 AND available_at>? "
            "AND claim_expires<=? AND expires>? ORDER BY available_at, id LIMIT ?")
_BURIED = ("SELECT id FROM messages WHERE queue_id=? AND buried>0 AND expires>? "
           "ORDER BY buried LIMIT ?")


def to_job(row, now, state=None):
    """The ``Job`` of a ``JobRow``; its state as it is at ``now`` unless
    ``state`` is given."""
    return Job(
        id=row.id, queue=row.queue, body=json_text.stored(row.body),
        state=state or job_state(row.claim_expires, row.buried, row.available_at, now),
        priority=row.priority, ttr=DEFAULT_TTR if row.ttr is None else row.ttr,
        delay=row.delay or 0, age=now - row.created, created=row.created,
        available_at=row.available_at, claim_id=row.claim_id,
        claim_expires=row.claim_expires, reserves=row.claim_count,
        timeouts=row.timeouts or 0, releases=row.releases or 0,
        buries=row.buries or 0, kicks=row.kicks or 0,
    )


@implementer(IJobController)
class JobController:
    def __init__(self, driver):
        self.driver = driver

    # -- helpers -----------------------------------------------------------

    def _after(self, seconds):
        """The whole second at or after ``seconds`` from now."""
        return whole_second_after(self.driver.reactor.seconds(), seconds)

    @staticmethod
    def _row(db, project, job_id, now):
        """The ``JobRow`` of a live job of ``project``, or None."""
        if not is_job_id(job_id):
            return None
        row = db.execute(_JOB, (job_id, project or "", now)).fetchone()
        return None if row is None else JobRow._make(row)

    @staticmethod
    def _count(db, mid, column, delay=None):
        """Add one to a counter of the job's ``jobs`` row (made if missing)."""
        db.execute(
            f"INSERT INTO jobs (id, ttr, {column}) VALUES (?, ?, 1) "
            f"ON CONFLICT(id) DO UPDATE SET {column} = {column} + 1",
            (mid, DEFAULT_TTR))
        if delay is not None:
            db.execute("UPDATE jobs SET delay=? WHERE id=?", (delay, mid))

    def _qid(self, db, project, queue):
        return self.driver.queue_id(db, project, queue)

    def _claim(self, db, row, now):
        """Tag the job of ``row`` with a new claim for its ttr; the job."""
        ttr = DEFAULT_TTR if row.ttr is None else row.ttr
        claim_id = new_claim_id()
        expires = self._after(ttr)
        sets = ["claim_id=?", "claim_expires=?", "claim_count=claim_count+1"]
        args = [claim_id, expires]
        # Only columns that change are set: each indexed column assigned
        # costs index pages in the commit (the hot path sets none).
        if job_state(row.claim_expires, row.buried, row.available_at, now) == "buried":
            sets.append("buried=0")
        if row.available_at > now:
            sets.append("available_at=?")
            args.append(now)
        if row.expires < expires:
            # The message outlives its claim (semantics.md 3.3, no grace).
            sets.append("expires=?, ttl=?")
            args += [expires, ttr]
        db.execute(f"UPDATE messages SET {', '.join(sets)} WHERE id=?", (*args, row.id))
        claimed = row._replace(claim_id=claim_id, claim_expires=expires,
                               claim_count=row.claim_count + 1,
                               available_at=min(row.available_at, now))
        return to_job(claimed, now, state="reserved")

    def _end_claim(self, db, project, job_id, claim_id, now):
        """The row of the job if ``claim_id`` is the claim recorded on it,
        with that claim removed; else None."""
        row = self._row(db, project, job_id, now)
        if row is None or claim_id is None or row.claim_id != claim_id:
            return None
        db.execute("UPDATE messages SET claim_id=NULL, claim_expires=0 WHERE id=?", (job_id,))
        return row

    # -- IJobController ----------------------------------------------------

    @writes
    def put(self, db, project, queue, body, ttl, priority, delay, ttr):
        now = self.driver.now()
        available_at = self._after(delay) if delay else now
        qid = self.driver.make_queue_id(db, project, queue)
        mid = db.execute(
            "INSERT INTO messages (queue_id, body, ttl, created, expires, priority, "
            "available_at) VALUES (?,?,?,?,?,?,?)",
            (qid, dump_json(body), ttl, now, now + ttl, priority, available_at)).lastrowid
        if ttr != DEFAULT_TTR or delay:
            db.execute("INSERT INTO jobs (id, ttr, delay) VALUES (?,?,?)", (mid, ttr, delay))
        self.driver.changed(project, queue)
        return mid

    @writes
    def reserve(self, db, project, queues):
        # Its _claim in place, from what _READY_JOB read: no second read of
        # the row, and only the claim's columns set (a ready job is neither
        # buried nor delayed).
        now = self.driver.now()
        best = None
        for queue in queues:
            qid = self._qid(db, project, queue)
            if qid is None:
                continue
            found = db.execute(_READY_JOB, (qid, now, now, now)).fetchone()
            if found is not None and (best is None or found < best[0]):
                best = found, queue  # (priority, id, ...): the lowest wins
        if best is None:
            return None
        (priority, mid, body, created, available_at, claims, expires, job_ttr), queue = best
        ttr = DEFAULT_TTR if job_ttr is None else job_ttr
        claim_id = new_claim_id()
        claim_expires = self._after(ttr)
        if expires < claim_expires:
            # The message outlives its claim (semantics.md 3.3, no grace).
            db.execute("UPDATE messages SET claim_id=?, claim_expires=?, "
                       "claim_count=claim_count+1, expires=?, ttl=? WHERE id=?",
                       (claim_id, claim_expires, claim_expires, ttr, mid))
        else:
            db.execute("UPDATE messages SET claim_id=?, claim_expires=?, "
                       "claim_count=claim_count+1 WHERE id=?", (claim_id, claim_expires, mid))
        delay, timeouts, releases, buries, kicks = (
            (0, 0, 0, 0, 0) if job_ttr is None  # no jobs row
            else db.execute(_JOB_COUNTERS, (mid,)).fetchone())
        return Job(id=mid, queue=queue, body=json_text.stored(body), state="reserved",
                   priority=priority, ttr=ttr, delay=delay, age=now - created,
                   created=created, available_at=available_at, claim_id=claim_id,
                   claim_expires=claim_expires, reserves=claims + 1, timeouts=timeouts,
                   releases=releases, buries=buries, kicks=kicks)

    @writes
    def reserve_job(self, db, project, job_id):
        now = self.driver.now()
        row = self._row(db, project, job_id, now)
        if row is None or row.claim_expires > now:
            return None
        return self._claim(db, row, now)

    @deferred
    def next_change(self, project, queues):
        now = self.driver.now()
        db = self.driver.read()
        soonest = None
        for queue in queues:
            qid = self._qid(db, project, queue)
            if qid is None:
                continue
            for when, in db.execute(
                    "SELECT min(available_at) FROM messages WHERE queue_id=? AND buried=0 "
                    "AND available_at>? AND expires>? UNION ALL "
                    "SELECT min(claim_expires) FROM messages WHERE queue_id=? "
                    "AND claim_expires>? AND expires>?", (qid, now, now, qid, now, now)):
                if when is not None and (soonest is None or when < soonest):
                    soonest = when
        return soonest

    @writes
    def touch(self, db, project, job_id, claim_id):
        now = self.driver.now()
        row = self._row(db, project, job_id, now)
        if (row is None or claim_id is None or row.claim_id != claim_id
                or row.claim_expires <= now):
            return False
        ttr = DEFAULT_TTR if row.ttr is None else row.ttr
        expires = self._after(ttr)
        db.execute("UPDATE messages SET claim_expires=?, expires=max(expires, ?), "
                   "ttl=CASE WHEN expires<? THEN ? ELSE ttl END WHERE id=?",
                   (expires, expires, expires, ttr, job_id))
        return True

    @writes
    def release(self, db, project, job_id, claim_id, priority, delay):
        now = self.driver.now()
        row = self._end_claim(db, project, job_id, claim_id, now)
        if row is None:
            return False
        db.execute("UPDATE messages SET priority=?, available_at=? WHERE id=?",
                   (priority, self._after(delay) if delay else now, job_id))
        self._count(db, job_id, "releases", delay=delay)
        self.driver.changed(project, row.queue)
        return True

    @writes
    def bury(self, db, project, job_id, claim_id, priority):
        now = self.driver.now()
        row = self._end_claim(db, project, job_id, claim_id, now)
        if row is None:
            return False
        db.execute(
            "UPDATE messages SET priority=?, buried=(SELECT coalesce(max(buried), 0) + 1 "
            "FROM messages WHERE queue_id=? AND buried>0) WHERE id=?",
            (priority, row.queue_id, job_id))
        self._count(db, job_id, "buries")
        return True

    @writes
    def abandon(self, db, project, job_id, claim_id, timed_out):
        now = self.driver.now()
        row = self._end_claim(db, project, job_id, claim_id, now)
        if row is None:
            return False
        if timed_out:
            self._count(db, job_id, "timeouts")
        self.driver.changed(project, row.queue)
        return True

    @writes
    def delete(self, db, project, job_id, claim_id=None):
        if not is_job_id(job_id):
            return None
        now = self.driver.now()
        if claim_id is None:
            sql, last = _DELETE_FREE, now
        else:
            sql, last = _DELETE_CLAIMED, claim_id
        row = db.execute(sql, (job_id, now, project or "", last)).fetchone()
        return None if row is None else row[0]

    @deferred
    def peek(self, project, job_id):
        now = self.driver.now()
        row = self._row(self.driver.read(), project, job_id, now)
        return None if row is None else to_job(row, now)

    def _peek(self, project, queue, sql, args):
        """The job of the first row ``sql`` finds in ``queue`` (its id is
        the last column), or None."""
        now = self.driver.now()
        db = self.driver.read()
        qid = self._qid(db, project, queue)
        if qid is None:
            return None
        found = db.execute(sql, (qid, *args(now))).fetchone()
        if found is None:
            return None
        *_, mid = found
        return to_job(self._row(db, project, mid, now), now)

    @deferred
    def peek_ready(self, project, queue):
        return self._peek(project, queue, _READY, lambda now: (now, now, now))

    @deferred
    def peek_delayed(self, project, queue):
        return self._peek(project, queue, _DELAYED, lambda now: (now, now, now, 1))

    @deferred
    def peek_buried(self, project, queue):
        return self._peek(project, queue, _BURIED, lambda now: (now, 1))

    @writes
    def kick(self, db, project, queue, bound):
        now = self.driver.now()
        qid = self._qid(db, project, queue)
        if qid is None or bound <= 0:
            return 0
        ids = [i for i, in db.execute(_BURIED, (qid, now, bound))]
        if not ids:
            ids = [i for i, in db.execute(_DELAYED, (qid, now, now, now, bound))]
        for mid in ids:
            db.execute("UPDATE messages SET buried=0, available_at=min(available_at, ?) "
                       "WHERE id=?", (now, mid))
            self._count(db, mid, "kicks")
        if ids:
            self.driver.changed(project, queue)
        return len(ids)

    @writes
    def kick_job(self, db, project, job_id):
        now = self.driver.now()
        row = self._row(db, project, job_id, now)
        if row is None or job_state(row.claim_expires, row.buried, row.available_at,
                                    now) not in ("buried", "delayed"):
            return False
        db.execute("UPDATE messages SET buried=0, available_at=min(available_at, ?) "
                   "WHERE id=?", (now, job_id))
        self._count(db, job_id, "kicks")
        self.driver.changed(project, row.queue)
        return True

    @deferred
    def counts(self, project, queue=None):
        now = self.driver.now()
        db = self.driver.read()
        params = {"now": now, "urgent": URGENT_PRIORITY, "project": project or "",
                  "queue": queue}
        queues = ("SELECT id FROM queues WHERE project=:project"
                  + ("" if queue is None else " AND name=:queue"))
        free = "buried=0 AND claim_expires<=:now"
        urgent, ready, reserved, delayed, buried = db.execute(
            f"SELECT coalesce(sum({free} AND available_at<=:now AND priority<:urgent), 0), "
            f"coalesce(sum({free} AND available_at<=:now), 0), "
            "coalesce(sum(claim_expires>:now), 0), "
            f"coalesce(sum({free} AND available_at>:now), 0), "
            "coalesce(sum(buried>0 AND claim_expires<=:now), 0) "
            f"FROM messages WHERE queue_id IN ({queues}) AND expires>:now", params).fetchone()
        counted, = db.execute(f"SELECT count(*) FROM ({queues})", params).fetchone()
        return JobCounts(urgent=urgent, ready=ready, reserved=reserved, delayed=delayed,
                         buried=buried, queues=counted)
