"""Identifier rules shared by every driver.

Message ids are the decimal form of a positive 64-bit integer (the FIFO
marker and the line protocol's job id). Claim ids are 24 lowercase hex
digits drawn at random; subscription ids are 24 lowercase hex digits too:
the creation second, then this process's count, then random digits, so
that they sort by age (those one process makes in one second too).
Anything else is "not found", never an error.
"""

import itertools
import secrets

from marconi_tx.validation import INT64_MAX

MAX_MESSAGE_ID = INT64_MAX


def parse_message_id(text):
    """The integer behind a message id or marker, or None if malformed."""
    if (not isinstance(text, str) or not text.isascii() or not text.isdigit()
            or len(text) > 19 or text[0] == "0"):
        return None  # only the canonical decimal form names a message
    value = int(text)
    return value if 0 < value <= MAX_MESSAGE_ID else None


def parse_ids(message_ids):
    """The well-formed ids among ``message_ids``, as integers, deduplicated
    and ascending."""
    return sorted({i for i in map(parse_message_id, message_ids) if i is not None})


def is_job_id(job_id):
    """A line-protocol job id: the integer form of a message id."""
    return isinstance(job_id, int) and 0 < job_id <= MAX_MESSAGE_ID


def new_claim_id():
    return secrets.token_hex(12)


def is_claim_id(text):
    return (isinstance(text, str) and len(text) == 24
            and all(c in "0123456789abcdef" for c in text))


_SUBSCRIPTIONS_MADE = itertools.count(secrets.randbelow(1 << 23))


def new_subscription_id(now):
    """A subscription id created at epoch second ``now``."""
    made = next(_SUBSCRIPTIONS_MADE) & 0xFFFFFF
    return f"{int(now) & 0xFFFFFFFF:08x}{made:06x}{secrets.token_hex(5)}"
