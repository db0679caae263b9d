"""Messages on sqlite."""

from zope.interface import implementer

from marconi_tx import errors, json_text
from marconi_tx.storage.ids import is_claim_id, parse_ids, parse_message_id
from marconi_tx.storage.interfaces import DEFAULT_PRIORITY, IMessageController
from marconi_tx.storage.records import Message
from marconi_tx.storage.rules import check_claim_id, check_delete
from marconi_tx.storage.sqlite.transactions import deferred, dump_json, writes

#: The columns every message read selects, in the order ``to_message`` takes.
#: The body as a BLOB: text that is not UTF-8 would fail the whole fetch.
COLUMNS = ("id, CAST(body AS BLOB), ttl, created, claim_id, claim_expires, claim_count, "
           "priority, available_at, buried")
_new_tuple = tuple.__new__


def to_message(row, now):
    """The ``Message`` of a row of ``COLUMNS``."""
    (mid, stored, ttl, created, claim_id, claim_expires, claim_count, priority, available_at,
     buried) = row
    body, body_json = json_text.read_stored(stored)  # never fails, whoever wrote it
    # Every field, in order, without the Python-level ``Message.__new__``
    # (as ``Message._make``): a page builds ten of them.
    return _new_tuple(Message, (str(mid), ttl, now - created, created, body, claim_id,
                                claim_expires > now, claim_count, priority, available_at,
                                bool(buried), body_json))


@implementer(IMessageController)
class MessageController:
    def __init__(self, driver):
        self.driver = driver

    @writes
    def post(self, db, project, queue, messages, client_uuid=None, create=False):
        now = self.driver.now()
        client = client_uuid.bytes if client_uuid is not None else None
        find = self.driver.make_queue_id if create else self.driver.queue_id
        qid = find(db, project, queue)
        if qid is None:
            raise errors.QueueDoesNotExist(queue, project)
        ids = []
        for m in messages:
            cursor = db.execute(
                "INSERT INTO messages (queue_id, body, ttl, created, expires, "
                "client_uuid, priority, available_at) VALUES (?,?,?,?,?,?,?,?)",
                (qid, dump_json(m["body"]), m["ttl"], now, now + m["ttl"], client,
                 m.get("priority", DEFAULT_PRIORITY), now + m.get("delay", 0)))
            ids.append(str(cursor.lastrowid))
        # Wakes line-protocol consumers waiting on this queue (after COMMIT).
        self.driver.changed(project, queue)
        return ids

    @deferred
    def list(self, project, queue, marker=None, limit=10, echo=False,
             client_uuid=None, include_claimed=False, include_delayed=False):
        after = 0
        if marker is not None:
            after = parse_message_id(marker)
            if after is None:
                return []
        now = self.driver.now()
        # The queue is found inside the query: one statement, and no rows
        # for a missing queue.
        sql = (f"SELECT {COLUMNS} FROM messages WHERE queue_id=(SELECT id FROM queues "
               "WHERE project=? AND name=?) AND id>? AND expires>?")
        args = [project or "", queue, after, now]
        if not include_claimed:
            sql += " AND claim_expires<=? AND NOT buried"
            args.append(now)
        if not echo and client_uuid is not None:
            sql += " AND client_uuid IS NOT ?"
            args.append(client_uuid.bytes)
        if not include_delayed:
            sql += " AND available_at<=?"
            args.append(now)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        return [to_message(row, now) for row in self.driver.read().execute(sql, args)]

    @deferred
    def get(self, project, queue, message_id):
        mid = parse_message_id(message_id)
        db = self.driver.read()
        qid = self.driver.queue_id(db, project, queue)
        now = self.driver.now()
        row = None
        if mid is not None and qid is not None:
            row = db.execute(f"SELECT {COLUMNS} FROM messages WHERE id=? AND queue_id=? "
                             "AND expires>?", (mid, qid, now)).fetchone()
        if row is None:
            raise errors.MessageDoesNotExist(message_id, queue)
        return to_message(row, now)

    @deferred
    def bulk_get(self, project, queue, message_ids):
        ids = parse_ids(message_ids)
        db = self.driver.read()
        qid = self.driver.queue_id(db, project, queue)
        if not ids or qid is None:
            return []
        now = self.driver.now()
        marks = ",".join("?" * len(ids))
        rows = db.execute(f"SELECT {COLUMNS} FROM messages WHERE queue_id=? AND expires>? "
                          f"AND id IN ({marks}) ORDER BY id", (qid, now, *ids))
        return [to_message(row, now) for row in rows]

    @writes
    def delete(self, db, project, queue, message_id, claim_id=None):
        mid = parse_message_id(message_id)
        check_claim_id(claim_id, queue, is_claim_id)
        qid = self.driver.queue_id(db, project, queue)
        if mid is None or qid is None:
            return
        row = db.execute("SELECT claim_id, claim_expires FROM messages "
                         "WHERE id=? AND queue_id=?", (mid, qid)).fetchone()
        if row is None:
            return
        recorded, claim_expires = row
        check_delete(message_id, claim_id, recorded, claim_expires, self.driver.now())
        db.execute("DELETE FROM messages WHERE id=?", (mid,))

    @writes
    def bulk_delete(self, db, project, queue, message_ids):
        ids = parse_ids(message_ids)
        qid = self.driver.queue_id(db, project, queue)
        if ids and qid is not None:
            # "+queue_id": the rows are found by id, then their queue
            # checked; through messages_by_queue the delete cost 7 % more.
            marks = ",".join("?" * len(ids))
            db.execute(f"DELETE FROM messages WHERE +queue_id=? AND id IN ({marks})",
                       (qid, *ids))

    @writes
    def pop(self, db, project, queue, limit):
        now = self.driver.now()
        qid = self.driver.queue_id(db, project, queue)
        if qid is None:
            return []
        rows = db.execute(f"SELECT {COLUMNS} FROM messages WHERE queue_id=? "
                          "AND expires>? AND claim_expires<=? AND NOT buried "
                          "ORDER BY id LIMIT ?", (qid, now, now, limit)).fetchall()
        popped = [to_message(row, now) for row in rows]
        if rows:
            marks = ",".join("?" * len(rows))
            db.execute(f"DELETE FROM messages WHERE id IN ({marks})",
                       [mid for mid, *_ in rows])
        return popped

    @writes
    def purge(self, db, project, queue):
        qid = self.driver.queue_id(db, project, queue)
        if qid is None:
            return 0
        now = self.driver.now()
        # Expired messages are left to gc: they are not counted as purged.
        return db.execute("DELETE FROM messages WHERE queue_id=? AND claim_expires<=? "
                          "AND expires>?", (qid, now, now)).rowcount
