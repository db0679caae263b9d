"""JSON text: encoders with the C encoder built once, the nesting depth of a
text measured without parsing it, and the decoding of stored documents.

``json.dumps`` and ``JSONEncoder.encode`` build a new C encoder for every
call: more than half the time of encoding a small message body. The
functions made here keep theirs. They skip the circular-reference check,
so documents must be acyclic, as every document parsed from JSON or built
by this package is.

Python's C decoder and encoder recurse once per nested array or object and
raise RecursionError near the interpreter's recursion limit (1000), counted
from wherever they are called: a document that one call site could parse
fails at a deeper one. So nothing nested deeper than ``READ_NESTING`` is
decoded here, and the API accepts nothing deeper (``validation``).
"""

import base64
import json
import re
from itertools import accumulate
from json.encoder import (  # type: ignore[attr-defined]
    c_make_encoder,
    encode_basestring,
    encode_basestring_ascii,
)
from json.scanner import c_make_scanner  # type: ignore[attr-defined]

#: The deepest stored document ``stored`` decodes, and the most the
#: configurable ``max_json_nesting`` may allow: a fifth of the recursion
#: limit, which leaves the rest to the stack of whoever decodes or encodes.
READ_NESTING = 200
#: The longest text that cannot be nested deeper than ``READ_NESTING``.
_SHALLOW = 2 * READ_NESTING + 1


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


# -- nesting -------------------------------------------------------------------

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
_STEP = {ord("["): 1, ord("]"): -1}


def nesting(text):
    """The deepest nesting of arrays and objects in the JSON ``text`` (bytes
    or str), without recursion or parsing: the strings are cut out, then the
    running count of the brackets left is taken in C (``accumulate``).

    Callers first compare the length and then the count of ``[`` and ``{``
    with their limit: a text shorter than ``2 * (limit + 1)`` or with fewer
    brackets cannot be deeper, and these cost far less than this."""
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogatepass")
    if b'"' in text:
        text = _STRING.sub(b"", text)
    return max(accumulate(map(_STEP.__getitem__, text.translate(_SQUARE, _NOT_BRACKET))),
               default=0)


# -- stored documents -------------------------------------------------------------

def _not_json(name):
    raise ValueError(f"{name} is not a JSON number")


_encode = encoder()
_encode_ascii = encoder(ensure_ascii=True)
# NaN and Infinity are Python's extensions, not JSON: such a text is shown as text.
_decoder = json.JSONDecoder(parse_constant=_not_json)
# The C scanner alone reads a text with no space around its value (every text
# this package writes) without the decoder's two Python frames and regexes.
_scan = None if c_make_scanner is None else c_make_scanner(_decoder)


def _decode(text):
    """The document of the JSON ``text``, as ``_decoder.decode``."""
    if _scan is not None:
        try:
            doc, end = _scan(text, 0)
        except (StopIteration, ValueError, RecursionError):
            pass  # the decoder says why, or skips leading space
        else:
            if end == len(text):
                return doc
    return _decoder.decode(text)


# Only texts with \uD8xx-\uDFxx escapes can decode to lone surrogates.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def stored(value):
    """The document stored as ``value`` (JSON text, normally), for a read
    that must never fail, whoever wrote the record:

    * JSON text nested at most ``READ_NESTING`` deep: the document;
    * any other text (not JSON, too deep, holding NaN or Infinity, or
      decoding to a string with a lone surrogate): that text itself, as a
      JSON string;
    * bytes: decoded as UTF-8 and then as text; bytes that are not UTF-8
      give ``{"base64": "<the bytes>"}``, as the line protocol stores them;
    * anything else (a value an engine decoded itself): the value if it
      encodes as JSON, else the name of its type.
    """
    return read_stored(value)[0]


def read_stored(value):
    """``(stored(value), text)``: ``text`` is the JSON text the document
    was decoded from (``value``, or ``value`` decoded from UTF-8), which an
    answer may write as is in place of the document encoded again; None
    when the document does not come from the stored text."""
    if type(value) is str:
        text = value
    elif isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode("ascii")}, None
    else:
        try:
            text = _encode_ascii(value)
        except (TypeError, ValueError, RecursionError):
            return f"<stored {type(value).__name__}>", None
        return _shown(text), None
    # What ``_shown`` does, inline for the common text (every message read
    # comes here): too short to be nested too deep, no \u escape, and read
    # whole by the C scanner.
    if len(text) <= _SHALLOW and _scan is not None and "\\u" not in text:
        try:
            doc, end = _scan(text, 0)
        except (StopIteration, ValueError, RecursionError):
            pass  # _shown says
        else:
            if end == len(text):
                return doc, text
    doc = _shown(text)
    return doc, (None if doc is text else text)


def _shown(text):
    """What ``stored`` shows of a value stored as ``text``: its document,
    or ``text`` itself when it is not JSON this package reads."""
    if (len(text) > _SHALLOW and text.count("[") + text.count("{") > READ_NESTING
            and nesting(text) > READ_NESTING):
        return text
    try:
        doc = _decode(text)
    except (ValueError, RecursionError):
        return text
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        try:
            _encode(doc).encode("utf-8")
        except UnicodeEncodeError:
            return text
    return doc
