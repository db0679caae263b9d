"""Splitting a message post into requests that fit the server's size limit.

The size limit (v1's ``max_message_size``, v2's ``max_messages_post_size``)
applies to the whole POST body, so the client serialises every message
once, then packs them greedily, in order, into bodies of at most that many
bytes: a JSON array in v1, an object ``{"messages": [...]}`` in v2 (the
*envelope* around the comma-separated messages).
"""

import json

from marconi_tx.client.errors import MessageTooLarge

#: The v1 body: a bare array of messages.
ARRAY = (b"[", b"]")
#: The v2 body: an object whose ``messages`` key holds the array.
OBJECT = (b'{"messages":[', b"]}")


def encode(message):
    """One message object as compact UTF-8 JSON (the bytes that are sent).

    @raise TypeError: the message is not JSON-serialisable.
    @raise ValueError: it holds NaN or an infinity, which JSON cannot carry.
    """
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def body(encoded, envelope=ARRAY):
    """The request body posting the already-encoded messages ``encoded``."""
    opening, closing = envelope
    return opening + b",".join(encoded) + closing


def pack(encoded, max_size, envelope=ARRAY):
    """Group ``encoded`` messages into batches whose bodies
    (``body(batch, envelope)``) are at most ``max_size`` bytes, keeping their
    order.

    @raise MessageTooLarge: a message cannot fit even alone; nothing is packed.
    """
    overhead = len(envelope[0]) + len(envelope[1])
    batches, batch, size = [], [], overhead
    for index, item in enumerate(encoded):
        alone = len(item) + overhead
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
