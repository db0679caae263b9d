"""Splitting a message post into requests that fit the server's size limit.

The v1 size limit (``max_message_size``) applies to the whole POST body, so
the client serialises every message once, then packs them greedily, in
order, into JSON arrays of at most that many bytes.
"""

import json

from marconi_tx.client.errors import MessageTooLarge


def encode(message):
    """One message object as compact UTF-8 JSON (the bytes that are sent).

    @raise TypeError: the message is not JSON-serialisable.
    @raise ValueError: it holds NaN or an infinity, which JSON cannot carry.
    """
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def body(encoded):
    """The request body posting the already-encoded messages ``encoded``."""
    return b"[" + b",".join(encoded) + b"]"


def pack(encoded, max_size):
    """Group ``encoded`` messages into batches whose bodies (``body(batch)``)
    are at most ``max_size`` bytes, keeping their order.

    @raise MessageTooLarge: a message cannot fit even alone; nothing is packed.
    """
    batches, batch, size = [], [], 2  # 2: the brackets of the array
    for index, item in enumerate(encoded):
        alone = len(item) + 2
        if alone > max_size:
            raise MessageTooLarge(
                f"message {index} is {alone} bytes as a request body; the "
                f"server accepts at most {max_size} bytes per request")
        grown = size + len(item) + (1 if batch else 0)  # 1: the comma
        if batch and grown > max_size:
            batches.append(batch)
            batch, grown = [], alone
        batch.append(item)
        size = grown
    if batch:
        batches.append(batch)
    return batches
