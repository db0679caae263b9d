"""The sqlite schema and its versions (``PRAGMA user_version``).

``UPGRADES[n]`` takes a database from version ``n`` to ``n + 1``; a new file
(version 0) runs them all. Version 1 is the schema of the releases before
versioning, whose files say 0: its statements create only what is missing,
so opening such a file makes it version 1 and adds nothing else. A later
change of the schema is a new entry, never an edit of an earlier one.

Message ids come from AUTOINCREMENT, so they are never reused, even after the
newest message is deleted: an id is the FIFO marker, the line protocol's job
id, and stays valid for the message's life.
"""

import sqlite3

from marconi_tx import errors

VERSION_1 = """
CREATE TABLE IF NOT EXISTS queues (
    id       INTEGER PRIMARY KEY,
    project  TEXT NOT NULL,
    name     TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created  INTEGER NOT NULL,
    UNIQUE (project, name)
);

CREATE TABLE IF NOT EXISTS messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_id      INTEGER NOT NULL,
    body          TEXT NOT NULL,
    ttl           INTEGER NOT NULL,
    created       INTEGER NOT NULL,
    expires       INTEGER NOT NULL,
    client_uuid   BLOB,
    claim_id      TEXT,
    claim_expires INTEGER NOT NULL DEFAULT 0,
    claim_count   INTEGER NOT NULL DEFAULT 0,
    priority      INTEGER NOT NULL,
    available_at  INTEGER NOT NULL,
    buried        INTEGER NOT NULL DEFAULT 0
);
-- listing and claiming walk a queue in marker order
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue_id, id);
-- gc deletes what has expired, at the cost of what it deletes
CREATE INDEX IF NOT EXISTS messages_by_expiry ON messages (expires);
CREATE INDEX IF NOT EXISTS messages_by_claim ON messages (claim_id)
    WHERE claim_id IS NOT NULL;
-- Claims find free messages without walking the claimed ones: the unclaimed
-- in marker order, and those whose claim has expired by claim expiry (see
-- claims.py); a message is in one of them at most. Only queries naming
-- these literal conditions can use them, so no other plan changes.
CREATE INDEX IF NOT EXISTS messages_unclaimed ON messages (queue_id, id)
    WHERE claim_expires = 0 AND buried = 0;
CREATE INDEX IF NOT EXISTS messages_claimed ON messages (queue_id, claim_expires)
    WHERE claim_expires > 0;

CREATE TABLE IF NOT EXISTS claims (
    id       TEXT PRIMARY KEY,
    queue_id INTEGER NOT NULL,
    ttl      INTEGER NOT NULL,
    expires  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS claims_by_expiry ON claims (expires);
"""

# The line protocol (storage/sqlite/jobs.py): what beanstalkd keeps per job
# beyond the message row. Messages posted over HTTP have no row here and take
# the defaults; the trigger keeps the table in step with every message delete
# (API, queue delete, pop, gc).
VERSION_1 += """
CREATE TABLE IF NOT EXISTS jobs (
    id       INTEGER PRIMARY KEY,
    ttr      INTEGER NOT NULL,
    delay    INTEGER NOT NULL DEFAULT 0,
    timeouts INTEGER NOT NULL DEFAULT 0,
    releases INTEGER NOT NULL DEFAULT 0,
    buries   INTEGER NOT NULL DEFAULT 0,
    kicks    INTEGER NOT NULL DEFAULT 0
);
CREATE TRIGGER IF NOT EXISTS jobs_follow_messages AFTER DELETE ON messages
BEGIN
    DELETE FROM jobs WHERE id = old.id;
END;
-- reserve and peek-ready take the lowest (priority, id) unburied job
CREATE INDEX IF NOT EXISTS messages_by_priority ON messages (queue_id, priority, id)
    WHERE buried = 0;
-- 'buried' holds the burial order (1, 2, ...) per queue: peek-buried, kick
CREATE INDEX IF NOT EXISTS messages_buried ON messages (queue_id, buried)
    WHERE buried > 0;
"""

# API v2 subscriptions (storage/sqlite/subscriptions.py). Keyed by project
# and queue name, not queue row: they outlive a deleted queue (api-v2.md
# §2.6). ``cursor`` is the id of the last message delivered.
VERSION_2 = """
CREATE TABLE IF NOT EXISTS subscriptions (
    id         TEXT PRIMARY KEY,
    project    TEXT NOT NULL,
    queue      TEXT NOT NULL,
    subscriber TEXT NOT NULL,
    ttl        INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    expires    INTEGER NOT NULL,
    options    TEXT NOT NULL,
    confirmed  INTEGER NOT NULL DEFAULT 0,
    cursor     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (project, queue, subscriber)
);
CREATE INDEX IF NOT EXISTS subscriptions_by_queue ON subscriptions (project, queue, id);
CREATE INDEX IF NOT EXISTS subscriptions_by_expiry ON subscriptions (expires);
"""

# The catalog of a pooled deployment (storage/sqlite/pools.py): its pools,
# flavors and where each queue lives. The catalog stores the None project as
# '' like the other tables (a NULL would make every such row distinct to the
# primary key). Pool numbers come from the one row of pool_numbers, so a
# number is never given again, even after its pool is deleted.
VERSION_3 = """
CREATE TABLE IF NOT EXISTS pools (
    name    TEXT PRIMARY KEY,
    uri     TEXT NOT NULL,
    weight  INTEGER NOT NULL,
    flavor  TEXT,
    options TEXT NOT NULL,
    number  INTEGER NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS pools_by_flavor ON pools (flavor, name);
CREATE TABLE IF NOT EXISTS pool_numbers (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL
);
INSERT OR IGNORE INTO pool_numbers (id, last) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS flavors (
    name         TEXT PRIMARY KEY,
    capabilities TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS catalog (
    project TEXT NOT NULL,
    queue   TEXT NOT NULL,
    pool    TEXT NOT NULL,
    PRIMARY KEY (project, queue)
) WITHOUT ROWID;
-- a pool's entries in (project, queue) order: listing them, removing them
CREATE INDEX IF NOT EXISTS catalog_by_pool ON catalog (pool, project, queue);
"""

UPGRADES = (VERSION_1, VERSION_2, VERSION_3)
#: The version this code writes and reads.
VERSION = len(UPGRADES)


def statements(script):
    """The statements of ``script``, one by one (``executescript`` would
    commit the open transaction)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""


def version(db):
    return db.execute("PRAGMA user_version").fetchone()[0]


def upgrade(db, path):
    """
    Bring the database of connection ``db`` (not in a transaction) to
    ``VERSION``, in one transaction.

    @raise StorageUnavailable: the file has a newer version than this code
        knows.
    """
    if version(db) == VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        found = version(db)  # another process may have upgraded it meanwhile
        if found > VERSION:
            raise errors.StorageUnavailable(
                f"cannot open {path}: its schema version {found} is newer than "
                f"{VERSION}, the newest this marconi_tx knows")
        for script in UPGRADES[found:]:
            for statement in statements(script):
                db.execute(statement)
        db.execute(f"PRAGMA user_version={VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
