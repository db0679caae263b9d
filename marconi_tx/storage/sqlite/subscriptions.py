"""Subscriptions on sqlite (the ``subscriptions`` table of schema version 2)."""

import sqlite3

from zope.interface import implementer

from marconi_tx import errors, json_text
from marconi_tx.storage.ids import new_subscription_id
from marconi_tx.storage.interfaces import ISubscriptionController
from marconi_tx.storage.records import Subscription
from marconi_tx.storage.sqlite.transactions import deferred, dump_json, writes

COLUMNS = ("id, project, queue, subscriber, ttl, created, expires, CAST(options AS BLOB), "
           "confirmed, cursor")


def to_subscription(row, now):
    sid, project, queue, subscriber, ttl, created, expires, options, confirmed, cursor = row
    return Subscription(id=sid, project=project or None, queue=queue, subscriber=subscriber,
                        ttl=ttl, age=now - created, expires=expires,
                        options=json_text.stored(options), confirmed=bool(confirmed),
                        cursor=cursor)


def newest_marker(db):
    """The last message id handed out (AUTOINCREMENT's), 0 if none: every
    message with a lower id is committed, as writes take turns."""
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name='messages'").fetchone()
    return row[0] if row else 0


@implementer(ISubscriptionController)
class SubscriptionController:
    def __init__(self, driver):
        self.driver = driver

    @writes
    def create(self, db, project, queue, subscriber, ttl, options):
        now = self.driver.now()
        key = (project or "", queue, subscriber)
        db.execute("DELETE FROM subscriptions WHERE project=? AND queue=? AND subscriber=? "
                   "AND expires<=?", (*key, now))
        row = db.execute("SELECT id, confirmed FROM subscriptions WHERE project=? AND queue=? "
                         "AND subscriber=?", key).fetchone()
        if row is not None:
            if row[1]:
                raise errors.SubscriptionExists(subscriber)
            return row[0], False
        self.driver.make_queue_id(db, project, queue)
        sid = new_subscription_id(now)
        db.execute("INSERT INTO subscriptions (id, project, queue, subscriber, ttl, created, "
                   "expires, options, cursor) VALUES (?,?,?,?,?,?,?,?,?)",
                   (sid, *key, ttl, now, now + ttl, dump_json(options), newest_marker(db)))
        return sid, True

    @deferred
    def list(self, project, queue, marker=None, limit=10):
        now = self.driver.now()
        rows = self.driver.read().execute(
            f"SELECT {COLUMNS} FROM subscriptions WHERE project=? AND queue=? AND id>? "
            "AND expires>? ORDER BY id LIMIT ?",
            (project or "", queue, marker or "", now, limit)).fetchall()
        return [to_subscription(row, now) for row in rows]

    @deferred
    def get(self, project, queue, subscription_id):
        now = self.driver.now()
        row = self.driver.read().execute(
            f"SELECT {COLUMNS} FROM subscriptions WHERE id=? AND project=? AND queue=? "
            "AND expires>?", (subscription_id, project or "", queue, now)).fetchone()
        if row is None:
            raise errors.SubscriptionDoesNotExist(subscription_id)
        return to_subscription(row, now)

    @staticmethod
    def _find(db, project, queue, subscription_id, now):
        row = db.execute("SELECT subscriber FROM subscriptions WHERE id=? AND project=? "
                         "AND queue=? AND expires>?",
                         (subscription_id, project or "", queue, now)).fetchone()
        if row is None:
            raise errors.SubscriptionDoesNotExist(subscription_id)
        return row[0]

    @writes
    def update(self, db, project, queue, subscription_id, subscriber=None, ttl=None,
               options=None):
        now = self.driver.now()
        current = self._find(db, project, queue, subscription_id, now)
        changes, args = [], []
        if subscriber is not None and subscriber != current:
            db.execute("DELETE FROM subscriptions WHERE project=? AND queue=? AND "
                       "subscriber=? AND expires<=?", (project or "", queue, subscriber, now))
            changes.append("subscriber=?, confirmed=0")
            args.append(subscriber)
        if ttl is not None:
            changes.append("ttl=?, created=?, expires=?")
            args += [ttl, now, now + ttl]
        if options is not None:
            changes.append("options=?")
            args.append(dump_json(options))
        if not changes:
            return
        try:
            db.execute(f"UPDATE subscriptions SET {', '.join(changes)} WHERE id=?",
                       (*args, subscription_id))
        except sqlite3.IntegrityError:
            raise errors.SubscriptionExists(subscriber)

    @writes
    def delete(self, db, project, queue, subscription_id):
        db.execute("DELETE FROM subscriptions WHERE id=? AND project=? AND queue=?",
                   (subscription_id, project or "", queue))

    @writes
    def confirm(self, db, project, queue, subscription_id, confirmed):
        self._find(db, project, queue, subscription_id, self.driver.now())
        if confirmed:
            db.execute("UPDATE subscriptions SET confirmed=1, cursor=max(cursor, ?) "
                       "WHERE id=? AND NOT confirmed", (newest_marker(db), subscription_id))
        else:
            db.execute("UPDATE subscriptions SET confirmed=0 WHERE id=?", (subscription_id,))

    @writes
    def purge(self, db, project, queue):
        return db.execute("DELETE FROM subscriptions WHERE project=? AND queue=?",
                          (project or "", queue)).rowcount

    @deferred
    def scan(self, marker=None, limit=100):
        now = self.driver.now()
        rows = self.driver.read().execute(
            f"SELECT {COLUMNS} FROM subscriptions WHERE id>? AND expires>? ORDER BY id "
            "LIMIT ?", (marker or "", now, limit)).fetchall()
        return [to_subscription(row, now) for row in rows]

    @writes
    def advance(self, db, project, queue, subscription_id, cursor):
        db.execute("UPDATE subscriptions SET cursor=? WHERE id=? AND project=? AND queue=? "
                   "AND cursor<?", (cursor, subscription_id, project or "", queue, cursor))
