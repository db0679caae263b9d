"""Collections, document fields and indexes of the MongoDB driver.

``queues`` (one document per queue)::

    _id   ObjectId   the queue's generation: a re-created queue gets a new
                     one, so messages of a deleted queue never reappear
    p     str|null   project (null: the global namespace)
    n     str        name
    m     str        metadata, as JSON text
    c     int        creation time
    top   int64      highest marker registered for this queue
    pend  {token: {a, b, s, d, x}}   batches being published (see batches)

``messages`` (one document per message)::

    _id   int64      the message id and FIFO marker, from the global counter
    q     ObjectId   the queue's generation (set anew only by a dead-letter
                     move to another queue, see dead_letters)
    b     str        body, as JSON text (any JSON survives; nothing in a
                     body can be mistaken for a query operator)
    t     int        ttl (current)      c  int  created      e  int  expires
    u     str        the poster's client UUID (hex), absent if none
    ci    str        recorded claim id, absent if none (sparse index)
    ce    int        claim expiry (0: never claimed or released)
    ct    int        ttl of the claim (for the claim's age)
    cc    int        claim count        pr int  priority
    av    int        available at (end of the delay)
    bu    bool       buried

``counters``: ``{_id: "message_id", v: int64}``, the last id handed out;
``{_id: "pool_number", v: int64}``, the last pool number handed out.

The line protocol (``jobs``) adds fields, absent on messages posted over
HTTP (which take the defaults)::

    messages: tr int  time-to-run (default DEFAULT_TTR)
              dl int  the delay last set (0)
              bo int  burial order, while buried
              to, rl, bc, kc  int  timeouts, releases, buries, kicks (0)
    queues:   bn int  the last burial order handed out in this queue
"""

from bson.int64 import Int64

from marconi_tx import json_text
from marconi_tx.storage.records import Message

QUEUES = "queues"
MESSAGES = "messages"
COUNTERS = "counters"
#: API v2 subscriptions (its fields: storage/mongodb/subscriptions.py).
SUBSCRIPTIONS = "subscriptions"
#: The catalog of a pooled deployment (their fields: storage/mongodb/pools.py).
POOLS = "pools"
FLAVORS = "flavors"
CATALOG = "catalog"
MESSAGE_ID_COUNTER = "message_id"
POOL_NUMBER_COUNTER = "pool_number"

#: (collection, index name, keys, options). Created at every open; creating
#: an existing index with the same definition is a no-op for MongoDB.
INDEXES: tuple[tuple[str, str, tuple[tuple[str, int], ...], dict[str, bool]], ...] = (
    # one queue per (project, name); creation races are decided here
    (QUEUES, "queue_name", (("p", 1), ("n", 1)), {"unique": True}),
    # list, claim and pop walk a queue in marker order
    (MESSAGES, "queue_marker", (("q", 1), ("_id", 1)), {"unique": True}),
    # The line protocol's reserve and peek-ready: lowest priority, then FIFO.
    (MESSAGES, "queue_priority", (("q", 1), ("pr", 1), ("_id", 1)), {}),
    # Claims find free messages without walking the live claims: the never
    # claimed or released ones (ce 0) in marker order, those whose claim
    # expired as a range of ce (see claims.py).
    (MESSAGES, "queue_claim_expiry", (("q", 1), ("ce", 1), ("_id", 1)), {}),
    # gc deletes what has expired, at the cost of what it deletes
    (MESSAGES, "expiry", (("e", 1),), {}),
    # claim reads; only messages with a recorded claim are indexed
    (MESSAGES, "claim", (("ci", 1),), {"sparse": True}),
    # one subscription per (project, queue, subscriber); listings by id
    (SUBSCRIPTIONS, "subscriber", (("p", 1), ("q", 1), ("s", 1)), {"unique": True}),
    (SUBSCRIPTIONS, "queue_subscriptions", (("p", 1), ("q", 1), ("_id", 1)), {}),
    (SUBSCRIPTIONS, "subscription_expiry", (("e", 1),), {}),
    # a pool number names its pool in message ids; listings by flavor
    (POOLS, "pool_number", (("n", 1),), {"unique": True}),
    (POOLS, "flavor_pools", (("f", 1), ("_id", 1)), {}),
    # one catalog entry per queue, decided here; a pool's entries in order
    (CATALOG, "catalog_queue", (("p", 1), ("q", 1)), {"unique": True}),
    (CATALOG, "pool_entries", (("pool", 1), ("p", 1), ("q", 1)), {}),
)

#: The projection of a queue record's id alone.
ID_ONLY = {"_id": 1}


def queue_key(project, queue):
    """The filter of the queue record of (project, name)."""
    return {"p": project, "n": queue}


def find_queue(driver, project, queue, fields=ID_ONLY):
    """The queue record of (project, name) with ``fields``, or None
    (a Deferred)."""
    return driver.db.queues.find_one(queue_key(project, queue), fields)


def marker(value):
    """A marker as stored: always a 64-bit BSON integer."""
    return Int64(value)


# ASCII escapes keep lone surrogates (valid JSON, invalid UTF-8) storable.
dump_json = json_text.encoder(ensure_ascii=True)


def to_message(doc, now):
    """A stored message document -> a ``Message`` (plain ``int``: BSON's
    64-bit integers decode as ``bson.Int64``)."""
    created = int(doc["c"])
    return Message(
        id=str(int(doc["_id"])),
        ttl=int(doc["t"]),
        age=now - created,
        created=created,
        body=json_text.stored(doc["b"]),  # never fails, whoever wrote it
        claim_id=doc.get("ci"),
        claimed=doc["ce"] > now,
        claim_count=int(doc["cc"]),
        priority=int(doc["pr"]),
        available_at=int(doc["av"]),
        buried=bool(doc["bu"]),
    )
