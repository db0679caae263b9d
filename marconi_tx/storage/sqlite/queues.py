"""Queues on sqlite."""

from itertools import islice

from zope.interface import implementer

from marconi_tx import errors, json_text
from marconi_tx.storage.interfaces import IQueueController
from marconi_tx.storage.records import MessageStamp, Queue, QueueStats
from marconi_tx.storage.rules import metadata_matches
from marconi_tx.storage.sqlite.transactions import deferred, dump_json, writes


@implementer(IQueueController)
class QueueController:
    def __init__(self, driver):
        self.driver = driver

    @writes
    def create(self, db, project, queue, metadata=None):
        cursor = db.execute(
            "INSERT OR IGNORE INTO queues (project, name, metadata, created) "
            "VALUES (?, ?, ?, ?)",
            (project or "", queue, dump_json(metadata or {}), self.driver.now()))
        return cursor.rowcount == 1

    @deferred
    def exists(self, project, queue):
        return self.driver.queue_id(self.driver.read(), project, queue) is not None

    @writes
    def delete(self, db, project, queue):
        qid = self.driver.queue_id(db, project, queue)
        if qid is not None:
            db.execute("DELETE FROM messages WHERE queue_id=?", (qid,))
            db.execute("DELETE FROM claims WHERE queue_id=?", (qid,))
            db.execute("DELETE FROM queues WHERE id=?", (qid,))
            self.driver.forget_queue_ids()

    @deferred
    def list(self, project, marker=None, limit=10, detailed=False, name=None, metadata=None):
        sql = "SELECT name, CAST(metadata AS BLOB) FROM queues WHERE project=? AND name>?"
        args = [project or "", marker or ""]
        if name:
            sql += " AND instr(name, ?)"
            args.append(name)
        sql += " ORDER BY name"
        if not metadata:
            sql += " LIMIT ?"
            args.append(limit)
        # With a metadata filter the rows are read on until ``limit`` match
        # (the JSON equality of rules.metadata_matches is not sqlite's).
        rows = self.driver.read().execute(sql, args)
        try:
            return list(islice(self._matching(rows, detailed, metadata), limit))
        finally:
            rows.close()

    @staticmethod
    def _matching(rows, detailed, metadata):
        for name, raw in rows:
            stored = json_text.stored(raw) if detailed or metadata else None
            if not metadata or metadata_matches(stored, metadata):
                yield Queue(name, stored if detailed else None)

    @deferred
    def count(self, project):
        return self.driver.read().execute(
            "SELECT count(*) FROM queues WHERE project=?", (project or "",)).fetchone()[0]

    @deferred
    def get_metadata(self, project, queue):
        row = self.driver.read().execute(
            "SELECT CAST(metadata AS BLOB) FROM queues WHERE project=? AND name=?",
            (project or "", queue)).fetchone()
        if row is None:
            raise errors.QueueDoesNotExist(queue, project)
        metadata, = row
        return json_text.stored(metadata)

    @writes
    def set_metadata(self, db, project, queue, metadata):
        cursor = db.execute("UPDATE queues SET metadata=? WHERE project=? AND name=?",
                            (dump_json(metadata), project or "", queue))
        if cursor.rowcount == 0:
            raise errors.QueueDoesNotExist(queue, project)

    def stats(self, project, queue):
        return self.driver.scan(self._stats, project, queue, self.driver.now())

    def _stats(self, db, project, queue, now):
        # O(queue depth): the counts walk the queue's index, so this runs off
        # the reactor thread when it has threads (driver.scan). One read
        # transaction: the counts and oldest/newest come from one snapshot
        # while others write.
        snapshot = not db.in_transaction  # in-memory: may be inside a commit group
        if snapshot:
            db.execute("BEGIN")
        try:
            qid = self.driver.queue_id(db, project, queue)
            if qid is None:
                raise errors.QueueDoesNotExist(queue, project)
            total, claimed = db.execute(
                "SELECT count(*), coalesce(sum(claim_expires>? OR buried), 0) FROM messages "
                "WHERE queue_id=? AND expires>?", (now, qid, now)).fetchone()
            if not total:
                return QueueStats(free=0, claimed=0, total=0)
            oldest, newest = (self._stamp(db, qid, now, order) for order in ("ASC", "DESC"))
            return QueueStats(free=total - claimed, claimed=claimed, total=total,
                              oldest=oldest, newest=newest)
        finally:
            if snapshot:
                db.execute("COMMIT")

    @staticmethod
    def _stamp(db, qid, now, order):
        """The ``MessageStamp`` of the queue's first live message in marker
        ``order`` ("ASC" or "DESC")."""
        mid, created = db.execute(
            "SELECT id, created FROM messages WHERE queue_id=? AND expires>? "
            f"ORDER BY id {order} LIMIT 1", (qid, now)).fetchone()
        return MessageStamp(id=str(mid), created=created, age=now - created)
