"""The sqlite schema, created idempotently at open.

Message ids come from AUTOINCREMENT, so they are never reused, even after the
newest message is deleted: an id is the FIFO marker, the line protocol's job
id, and stays valid for the message's life.
"""

SCHEMA = """
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
SCHEMA += """
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
