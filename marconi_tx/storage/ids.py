"""Identifier rules shared by every driver.

Message ids are the decimal form of a positive 64-bit integer (the FIFO
marker and the line protocol's job id). Claim ids are 24 lowercase hex
digits drawn at random. Anything else is "not found", never an error.
"""

import secrets

MAX_MESSAGE_ID = 2**63 - 1


def parse_message_id(text):
    """The integer behind a message id or marker, or None if malformed."""
    if (not isinstance(text, str) or not text.isascii() or not text.isdigit()
            or len(text) > 19 or text[0] == "0"):
        return None  # only the canonical decimal form names a message
    value = int(text)
    return value if 0 < value <= MAX_MESSAGE_ID else None


def new_claim_id():
    return secrets.token_hex(12)


def is_claim_id(text):
    return (isinstance(text, str) and len(text) == 24
            and all(c in "0123456789abcdef" for c in text))
