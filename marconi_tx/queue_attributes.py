"""Reserved queue attributes: the ``_`` metadata keys of API v2 (api-v2.md §2.1).

They live in the queue's metadata next to user keys. What each version does
with them:

* v1 stores them as plain metadata: it neither checks nor applies them.
* v1.1 checks them on PUT (``check``) and applies none.
* v2 checks them on PUT and after a PATCH, shows them filled with defaults
  (``shown``) and applies them: the post rules (``post_policy``) and the
  dead-letter queue of claims (``dead_letter``); ``_retry_policy`` applies
  to deliveries to the queue's subscribers (``marconi_tx.notification.notifier``).
  With pooling, a v2 PUT's ``_flavor`` (``flavor``) must name a flavor.

v1 checks nothing, so v2 applies a value stored over v1 only when it has the
right type and, for the post rules, is within the limits; otherwise the value
counts as absent. Limits come from ``config.transport``.
"""

from dataclasses import dataclass

from marconi_tx import validation
from marconi_tx.config import MAX_SECONDS
from marconi_tx.errors import ValidationError
from marconi_tx.notification import retry_policy
from marconi_tx.storage.records import DeadLetter

DEFAULT_TTL = "_default_message_ttl"
MAX_POST_SIZE = "_max_messages_post_size"
DEFAULT_DELAY = "_default_message_delay"
MAX_CLAIM_COUNT = "_max_claim_count"
DEAD_LETTER_QUEUE = "_dead_letter_queue"
DEAD_LETTER_TTL = "_dead_letter_queue_messages_ttl"
ENCRYPT = "_enable_encrypt_messages"
#: The subscriptions' retry policy (``marconi_tx.retry_policy``), checked on
#: PUT and PATCH like the others but not shown with defaults.
RETRY_POLICY = "_retry_policy"

#: The flavor of a new queue, with pooling (api-v2.md §8): it places the
#: queue at creation and does nothing after; without pooling it is plain
#: metadata. Not shown with a default.
FLAVOR = "_flavor"

#: The keys shown with their defaults: JSON-patch may replace them when absent
#: and removing them when absent is no change.
RESERVED = frozenset({DEFAULT_TTL, MAX_POST_SIZE, DEFAULT_DELAY, MAX_CLAIM_COUNT,
                      DEAD_LETTER_QUEUE, DEAD_LETTER_TTL, ENCRYPT})

#: The bounds of the integer attributes, from the limits.
_RANGES = {
    DEFAULT_TTL: lambda t: (t.min_message_ttl, t.max_message_ttl),
    MAX_POST_SIZE: lambda t: (1, t.max_message_size),
    DEFAULT_DELAY: lambda t: (0, t.max_message_delay),
    DEAD_LETTER_TTL: lambda t: (t.min_message_ttl, t.max_message_ttl),
}


def _is_int(value):
    return type(value) is int  # JSON true and false are not integers


def _problem(key, value, limits):
    """Why ``value`` is no acceptable value of ``key``, or None.

    As the spec, type checks fire only for truthy values: ``0`` reaches the
    range check (``_default_message_ttl: 0`` is refused, ``_max_claim_count:
    0`` accepted, meaning no dead-letter queue). The integer attributes have
    ranges, which only integers pass.
    """
    if key in _RANGES:
        low, high = _RANGES[key](limits)
        if value is not None and not (_is_int(value) and low <= value <= high):
            return f"'{key}' must be an integer from {low} to {high}."
    elif not value:
        return None
    elif key == MAX_CLAIM_COUNT and not _is_int(value):
        return f"'{key}' must be an integer."
    elif key == DEAD_LETTER_QUEUE and not validation.is_queue_name(value, dots=True):
        return (f"'{key}' must be a queue name (at most {validation.MAX_QUEUE_NAME} ASCII "
                "letters, digits, underscores, dots and dashes).")
    elif key == ENCRYPT:
        if value is not True:
            return f"'{key}' must be a boolean."
        return "This server does not encrypt messages: '_enable_encrypt_messages' must be false."
    return None


def check(metadata, limits):
    """Refuse (ValidationError) queue metadata whose reserved attributes have
    a wrong type or are out of range; other keys are the client's."""
    for key in RESERVED.intersection(metadata):
        problem = _problem(key, metadata[key], limits)
        if problem:
            raise ValidationError(problem, title="Invalid queue attribute")
    if RETRY_POLICY in metadata:  # the subscriptions' (it does not affect posts)
        retry_policy.check(metadata[RETRY_POLICY])


def flavor(metadata):
    """The flavor a new queue's ``metadata`` asks for, or None; 400 when
    ``_flavor`` is not a flavor name."""
    value = metadata.get(FLAVOR)
    if value is None:
        return None
    if not validation.is_queue_name(value):
        raise ValidationError(f"'{FLAVOR}' must be a flavor name (at most "
                              f"{validation.MAX_QUEUE_NAME} ASCII letters, digits, underscores "
                              "and dashes).", title="Invalid queue attribute")
    return value


def _defaults(limits):
    return {DEFAULT_TTL: limits.default_message_ttl, MAX_POST_SIZE: limits.max_message_size,
            DEFAULT_DELAY: 0, MAX_CLAIM_COUNT: None, DEAD_LETTER_QUEUE: None,
            DEAD_LETTER_TTL: None, ENCRYPT: False}


def shown(metadata, limits):
    """A copy of ``metadata`` as v2 shows it: each reserved attribute absent or
    falsy replaced by its default."""
    doc = dict(metadata)
    for key, default in _defaults(limits).items():
        if not doc.get(key):
            doc[key] = default
    return doc


def _applied(metadata, key, limits):
    """The value of ``key`` v2 applies: a truthy acceptable one, else None."""
    value = metadata.get(key)
    if not value or _problem(key, value, limits):
        return None
    return value


@dataclass(frozen=True)
class PostPolicy:
    """How a queue takes a v2 message POST."""

    #: ttl of messages posted without one.
    default_ttl: int
    #: Largest POST body in bytes: the queue's cap, never above the config's.
    max_post_size: int
    #: delay of messages posted without one; 0: delays are off (dropped).
    default_delay: int


def post_policy(metadata, limits):
    """The ``PostPolicy`` of a queue with ``metadata`` (a missing queue: {})."""
    return PostPolicy(
        default_ttl=_applied(metadata, DEFAULT_TTL, limits) or limits.default_message_ttl,
        max_post_size=min(_applied(metadata, MAX_POST_SIZE, limits) or limits.max_message_size,
                          limits.max_message_size),
        default_delay=_applied(metadata, DEFAULT_DELAY, limits) or 0)


def dead_letter(metadata):
    """The queue's ``DeadLetter`` policy, or None unless it has both
    ``_max_claim_count`` and ``_dead_letter_queue``. The moved messages' ttl
    is ``_dead_letter_queue_messages_ttl`` when it is a positive integer (not
    above the longest duration of any setting), else they keep theirs."""
    max_claims = metadata.get(MAX_CLAIM_COUNT)
    queue = metadata.get(DEAD_LETTER_QUEUE)
    if (not (max_claims and queue) or _problem(MAX_CLAIM_COUNT, max_claims, None)
            or _problem(DEAD_LETTER_QUEUE, queue, None)):
        return None
    ttl = metadata.get(DEAD_LETTER_TTL)
    if not (_is_int(ttl) and 0 < ttl <= MAX_SECONDS):
        ttl = None
    return DeadLetter(max_claims, queue, ttl)
