"""Encoding documents as JSON text, with the C encoder built once.

``json.dumps`` and ``JSONEncoder.encode`` build a new C encoder for every
call: more than half the time of encoding a small message body. The
functions made here keep theirs. They skip the circular-reference check,
so documents must be acyclic, as every document parsed from JSON or built
by this package is.
"""

import json
from json.encoder import c_make_encoder, encode_basestring, encode_basestring_ascii


def encoder(separators=(",", ":"), ensure_ascii=False):
    """A function encoding a document to JSON text (``str``), as
    ``json.dumps(doc, separators=separators, ensure_ascii=ensure_ascii)``."""
    item_separator, key_separator = separators
    if c_make_encoder is None:  # a Python without the _json accelerator
        return json.JSONEncoder(ensure_ascii=ensure_ascii, separators=separators).encode
    chunks = c_make_encoder(
        None, json.JSONEncoder().default,
        encode_basestring_ascii if ensure_ascii else encode_basestring,
        None, key_separator, item_separator, False, False, True)

    def encode(doc):
        return "".join(chunks(doc, 0))

    return encode
