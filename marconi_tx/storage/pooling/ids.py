"""Message and job ids of a pooled deployment: each names its pool.

Every pool numbers its messages by itself, so the ids of two pools collide.
Leaving the pooled driver an id becomes ``local * SPACING + pool.number``;
coming in it is turned back. Ids keep their order within a queue (a queue
is in one pool), an id alone finds its pool (the line port's calls by job
id), and an id of another pool is one the queue does not have.
"""

import dataclasses

from marconi_tx.storage.ids import parse_message_id

#: Pool numbers are 1 .. SPACING - 1. A pool's local ids must stay below
#: 2**63 / SPACING (9e15: engines count from 1) for global ids to fit.
SPACING = 1024


def routable(number):
    """Whether a pool's ``number`` fits in the ids (the 1023 first pools
    ever created do)."""
    return 0 < number < SPACING


def pool_number(global_id):
    """The number of the pool a global (int) id names."""
    return global_id % SPACING


def to_global(local_id, number):
    return local_id * SPACING + number


def to_local(global_id, number):
    """The pool-local id of ``global_id`` (an int) in pool ``number``, or
    None if it names another pool or no message."""
    local, owner = divmod(global_id, SPACING)
    return local if owner == number and local > 0 else None


def local_text(text, number):
    """The pool-local form of the message id ``text``, or None (malformed,
    or of another pool)."""
    global_id = parse_message_id(text)
    local = None if global_id is None else to_local(global_id, number)
    return None if local is None else str(local)


def local_texts(texts, number):
    """The pool-local forms of the ids among ``texts`` that are of pool
    ``number`` (others are skipped, as unknown ids are)."""
    return [local for local in (local_text(text, number) for text in texts)
            if local is not None]


def local_marker(text, number):
    """
    The pool-local marker listing what ``text`` lists: messages of pool
    ``number`` whose global id is greater. A malformed marker stays as it
    is (the pool's driver answers it as malformed); None when every message
    is after it.
    """
    global_id = parse_message_id(text)
    if global_id is None:
        return text
    local = (global_id - number) // SPACING
    return str(local) if local > 0 else None


def local_cursor(cursor, number):
    """The pool-local form of a subscription cursor (a marker, as an int)."""
    return max(0, (cursor - number) // SPACING)


def message(record, number):
    return record._replace(id=str(int(record.id) * SPACING + number))


def messages(records, number):
    return [message(record, number) for record in records]


def claim(record, number):
    return None if record is None else dataclasses.replace(
        record, messages=tuple(message(m, number) for m in record.messages))


def job(record, number):
    return None if record is None else dataclasses.replace(
        record, id=to_global(record.id, number))


def stamp(record, number):
    return None if record is None else dataclasses.replace(
        record, id=str(int(record.id) * SPACING + number))


def stats(record, number):
    return dataclasses.replace(record, oldest=stamp(record.oldest, number),
                               newest=stamp(record.newest, number))


def subscription(record, number):
    return dataclasses.replace(record, cursor=to_global(record.cursor, number))
