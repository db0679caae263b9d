"""Claims on sqlite.

A claim is a row in ``claims`` plus a tag (``claim_id``, ``claim_expires``)
on each message it holds. Selection and tagging happen in one ``BEGIN
IMMEDIATE`` transaction, so two claimers (connections or daemons) never tag
the same message while a claim on it is live. A dead-letter move (API v2)
happens in that transaction too: the message's row changes queue, so it is
in one queue at any instant.
"""

import sqlite3

from zope.interface import implementer

from marconi_tx import errors
from marconi_tx.storage.ids import is_claim_id, new_claim_id
from marconi_tx.storage.interfaces import IClaimController
from marconi_tx.storage.records import Claim
from marconi_tx.storage.sqlite.messages import COLUMNS, to_message
from marconi_tx.storage.sqlite.transactions import deferred, writes

# The oldest ``limit`` free messages, at a cost independent of the live claims
# ahead of them: up to ``limit`` never-claimed or released ones
# (claim_expires=0) in marker order from messages_unclaimed, and up to
# ``limit`` whose claim has expired from their range of messages_claimed
# (sorted; they are few, as the next claims take them first, being the
# oldest); ``create`` merges them by id. The union is not ordered here: an
# ORDER BY ran it through three temporary b-trees (a tenth of a claim's
# cost), where now only the expired range is sorted. The literal conditions
# select the partial indexes (schema.py). Delayed and expired messages not
# yet collected are still walked over: they are skipped, not indexed.
FREE = ("SELECT id, expires FROM (SELECT id, expires FROM messages WHERE queue_id=?1 "
        "AND claim_expires = 0 AND buried = 0 AND expires>?2 AND available_at<=?2 "
        "ORDER BY id LIMIT ?3) "
        "UNION ALL SELECT id, expires FROM (SELECT id, expires FROM messages WHERE queue_id=?1 "
        "AND claim_expires > 0 AND claim_expires<=?2 AND buried = 0 AND expires>?2 "
        "AND available_at<=?2 ORDER BY id LIMIT ?3)")

#: Tagging returns the tagged rows (``UPDATE ... RETURNING``, sqlite 3.35):
#: no second statement reads them back. Older sqlite reads them by claim id.
RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)


@implementer(IClaimController)
class ClaimController:
    def __init__(self, driver):
        self.driver = driver

    @writes
    def create(self, db, project, queue, ttl, grace, limit, dead_letter=None):
        now = self.driver.now()
        qid = self.driver.queue_id(db, project, queue)
        if qid is None:
            return None
        free = sorted(db.execute(FREE, (qid, now, limit)))[:limit]
        ids = [mid for mid, _ in free]
        if ids and dead_letter is not None:
            ids = self._move_dead(db, project, ids, dead_letter, now)
        if not ids:
            return None
        claim_id = new_claim_id()
        expires = now + ttl
        db.execute("INSERT INTO claims (id, queue_id, ttl, expires) VALUES (?,?,?,?)",
                   (claim_id, qid, ttl, expires))
        # Messages must outlive the claim by the grace (semantics.md 3.3).
        # Those that already do keep their expiry: an UPDATE that sets
        # ``expires`` rewrites their entry in messages_by_expiry.
        kept = {mid for mid, ends in free if ends >= expires + grace}
        rows = self._tag(db, claim_id, expires, ttl, grace,
                         [mid for mid in ids if mid in kept], extend=False)
        extended = [mid for mid in ids if mid not in kept]
        if extended:
            more = self._tag(db, claim_id, expires, ttl, grace, extended, extend=True)
            rows = None if rows is None or more is None else rows + more
        if rows is None:
            messages = self._messages(db, claim_id, now)
        else:  # every tagged row is live: free, it outlives the claim
            messages = tuple(to_message(row, now) for row in sorted(rows))
        return Claim(id=claim_id, ttl=ttl, age=0, expires=expires, messages=messages)

    def _move_dead(self, db, project, ids, dead_letter, now):
        """Move the messages of ``ids`` claimed ``dead_letter.max_claims``
        times or more to the dead-letter queue (made if missing), free and
        with their claim count reset; the ids left to claim."""
        marks = ",".join("?" * len(ids))
        dead = [mid for mid, in db.execute(
            f"SELECT id FROM messages WHERE id IN ({marks}) AND claim_count>=?",
            (*ids, dead_letter.max_claims))]
        if not dead:
            return ids
        sets = "queue_id=?, claim_id=NULL, claim_expires=0, claim_count=0"
        args = [self.driver.make_queue_id(db, project, dead_letter.queue)]
        if dead_letter.ttl is not None:
            sets += ", ttl=?, expires=?"
            args += [dead_letter.ttl, now + dead_letter.ttl]
        marks = ",".join("?" * len(dead))
        db.execute(f"UPDATE messages SET {sets} WHERE id IN ({marks})", (*args, *dead))
        # Claimable there at once: wake line-protocol consumers.
        self.driver.changed(project, dead_letter.queue)
        moved = set(dead)
        return [mid for mid in ids if mid not in moved]

    @staticmethod
    def _tag(db, claim_id, expires, ttl, grace, ids, extend):
        """Tag the messages of ``ids`` with the claim, extending their
        expiry to the claim's end plus ``grace`` when ``extend``; their rows
        (of ``COLUMNS``, in no order) when sqlite returns them
        (``RETURNING``), else None."""
        if not ids:
            return []
        sets = "claim_id=?, claim_expires=?, claim_count=claim_count+1"
        args = [claim_id, expires]
        if extend:
            # sqlite evaluates every right-hand side on the old row, so the
            # ttl test sees the old expires.
            sets += ", expires=max(expires, ?), ttl=CASE WHEN expires<? THEN ? ELSE ttl END"
            args += [expires + grace, expires + grace, ttl + grace]
        marks = ",".join("?" * len(ids))
        rows = db.execute(
            f"UPDATE messages SET {sets} WHERE id IN ({marks})"
            + (f" RETURNING {COLUMNS}" if RETURNING else ""), (*args, *ids))
        return rows.fetchall() if RETURNING else None

    @staticmethod
    def _messages(db, claim_id, now):
        rows = db.execute(f"SELECT {COLUMNS} FROM messages WHERE claim_id=? "
                          "AND claim_expires>? AND expires>? ORDER BY id",
                          (claim_id, now, now))
        return tuple(to_message(row, now) for row in rows)

    def _live(self, db, project, queue, claim_id, now):
        """(ttl, expires) of a live claim; ClaimDoesNotExist."""
        if is_claim_id(claim_id):
            qid = self.driver.queue_id(db, project, queue)
            row = db.execute("SELECT ttl, expires FROM claims WHERE id=? AND queue_id=? "
                             "AND expires>?", (claim_id, qid, now)).fetchone()
            if row is not None:
                return row
        raise errors.ClaimDoesNotExist(claim_id, queue)

    @deferred
    def get(self, project, queue, claim_id):
        now = self.driver.now()
        db = self.driver.read()
        ttl, expires = self._live(db, project, queue, claim_id, now)
        return Claim(id=claim_id, ttl=ttl, age=now - (expires - ttl), expires=expires,
                     messages=self._messages(db, claim_id, now))

    @writes
    def update(self, db, project, queue, claim_id, ttl, grace=0):
        now = self.driver.now()
        self._live(db, project, queue, claim_id, now)
        expires = now + ttl
        db.execute("UPDATE claims SET ttl=?, expires=? WHERE id=?", (ttl, expires, claim_id))
        db.execute(
            "UPDATE messages SET claim_expires=?, expires=max(expires, ?), "
            "ttl=CASE WHEN expires<? THEN ? ELSE ttl END "
            "WHERE claim_id=? AND expires>?",
            (expires, expires + grace, expires + grace, ttl + grace, claim_id, now))

    @writes
    def delete(self, db, project, queue, claim_id):
        if not is_claim_id(claim_id):
            return
        qid = self.driver.queue_id(db, project, queue)
        if qid is None:
            return
        db.execute("DELETE FROM claims WHERE id=? AND queue_id=?", (claim_id, qid))
        # Untag even when gc already dropped the expired claim's row: a
        # released claim id must no longer delete (semantics.md 2.5).
        db.execute("UPDATE messages SET claim_id=NULL, claim_expires=0 "
                   "WHERE claim_id=? AND queue_id=?", (claim_id, qid))
        # Released messages are claimable again: wake line-protocol consumers.
        self.driver.changed(project, queue)
