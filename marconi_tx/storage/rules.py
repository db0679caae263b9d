"""Decisions every driver makes the same way, written once.

The engines differ in how they find and change records; what a state is,
which delete is allowed and how time is rounded do not.
"""

import math

from marconi_tx import errors
from marconi_tx.validation import INT64_MAX

#: Priorities below this count as urgent in beanstalkd's statistics.
URGENT_PRIORITY = 1024


def job_state(claim_expires, buried, available_at, now):
    """A job's state: under a live claim, buried, delayed or ready (in that
    order of precedence)."""
    if claim_expires > now:
        return "reserved"
    if buried:
        return "buried"
    if available_at > now:
        return "delayed"
    return "ready"


def check_claim_id(claim_id, queue, is_claim_id):
    """ClaimDoesNotExist for a malformed ``claim_id`` (None passes)."""
    if claim_id is not None and not is_claim_id(claim_id):
        raise errors.ClaimDoesNotExist(claim_id, queue)


def check_delete(message_id, claim_id, recorded, claim_expires, now):
    """
    May the message be deleted (``IMessageController.delete``)? Without
    ``claim_id`` only when no live claim holds it; with one, only when it is
    the claim recorded on the message (live or expired). Raises the error
    that says why not.
    """
    if claim_id is None:
        if claim_expires > now:
            raise errors.MessageIsClaimed(message_id)
    elif recorded is None:
        raise errors.MessageNotClaimed(message_id)
    elif recorded != claim_id:
        raise errors.ClaimMismatch(message_id)


def json_equal(left, right):
    """Equal as JSON values: numbers by value (1 equals 1.0), booleans only
    to booleans (true is not 1), arrays item by item, objects key by key."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(
            json_equal(value, right[key]) for key, value in left.items())
    return type(left) is type(right) and left == right


def metadata_matches(metadata, wanted):
    """Does ``metadata`` hold every key of ``wanted`` with a JSON-equal value
    (the ``metadata`` filter of ``IQueueController.list``)?"""
    return all(key in metadata and json_equal(metadata[key], value)
               for key, value in wanted.items())


def whole_second_after(now, seconds):
    """The whole second at or after ``now + seconds`` (bounded by the
    engines' 64-bit integers): a delay or a time-to-run is never cut short by
    the clock's granularity."""
    return min(math.ceil(now + seconds), INT64_MAX)
