"""Limits and input rules shared by every transport.

Each check raises ``marconi_tx.errors.ValidationError`` (a 400 for HTTP) with a
short title and a description naming the problem. Limits come from
``config.transport`` (``[limits:transport]``).
"""

import functools
import json
import re
import uuid

from marconi_tx import json_text
from marconi_tx.errors import ValidationError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_QUEUE_NAME = 64
MAX_PROJECT_ID = 256
_QUEUE_NAME = re.compile(r"[a-zA-Z0-9_-]+\Z")
#: API v2's queue names also allow dots.
_DOTTED_QUEUE_NAME = re.compile(r"[a-zA-Z0-9_.-]+\Z")
# Only documents with \uD8xx-\uDFxx escapes can hold lone surrogates.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
#: Identifications (queue and project, Client-ID) whose check is remembered:
#: clients repeat theirs on every request. Failures are not remembered.
CHECKED_CACHE = 4096


def is_queue_name(name, dots=False):
    """Whether ``name`` is a queue name: 1-64 of [a-zA-Z0-9_-] (and ``.`` with
    ``dots``, as API v2)."""
    pattern = _DOTTED_QUEUE_NAME if dots else _QUEUE_NAME
    return isinstance(name, str) and len(name) <= MAX_QUEUE_NAME and bool(pattern.match(name))


@functools.lru_cache(maxsize=CHECKED_CACHE)
def queue_identification(name, project, dots=False):
    """Queue names (``is_queue_name``); project ids: at most 256 characters."""
    if not is_queue_name(name, dots):
        allowed = "underscores, dots and dashes" if dots else "underscores and dashes"
        raise ValidationError(
            f"Queue names may not be more than {MAX_QUEUE_NAME} characters long and "
            f"may contain only ASCII letters, digits, {allowed}.",
            title="Invalid queue identification")
    if project is not None and len(project) > MAX_PROJECT_ID:
        raise ValidationError(
            f"Project ids may not be more than {MAX_PROJECT_ID} characters long.",
            title="Invalid queue identification")


@functools.lru_cache(maxsize=CHECKED_CACHE)
def client_uuid(value):
    """The ``uuid.UUID`` of a Client-ID header value (None: missing)."""
    if value is None:
        raise ValidationError("The Client-ID header is required.", title="Missing header")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationError("Malformed hexadecimal UUID in the Client-ID header.",
                              title="Malformed header")


# -- query parameters --------------------------------------------------------

def query_int(name, raw, default):
    """An integer query parameter; ``raw`` None or empty means absent."""
    if not raw:
        return default
    if not re.fullmatch(r"[+-]?[0-9]{1,20}", raw):
        raise ValidationError(f"The value of '{name}' must be an integer.",
                              title="Invalid query parameter")
    return int(raw)


_TRUE = ("true", "True", "yes", "1")
_FALSE = ("false", "False", "no", "0")


def query_bool(name, raw, default=False):
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValidationError(f"The value of '{name}' must be a boolean (true or false).",
                          title="Invalid query parameter")


def query_ids(raw):
    """The comma-separated ``ids`` list (empty items dropped)."""
    return [i for i in raw.split(",") if i] if raw else []


def page_limit(name, value, maximum):
    if not 1 <= value <= maximum:
        raise ValidationError(f"{name} must be at least 1 and may not be more than {maximum}.")
    return value


def claim_wait(raw, limits):
    """The ``wait`` of a long-poll claim: whole seconds, 0 (absent) to
    ``max_claim_wait``."""
    wait = query_int("wait", raw, 0)
    if not 0 <= wait <= limits.max_claim_wait:
        raise ValidationError(f"The value of 'wait' must be at least 0 and may not be more "
                              f"than {limits.max_claim_wait} (seconds).",
                              title="Invalid query parameter")
    return wait


# -- JSON documents -----------------------------------------------------------

class _Unacceptable(ValueError):
    """A value json can parse but the API refuses."""


_OUT_OF_RANGE = "an integer is outside the signed 64-bit range"


def _int64(text):
    if len(text) > 20:  # also spares int() Python's 4300-digit limit
        raise _Unacceptable(_OUT_OF_RANGE)
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise _Unacceptable(_OUT_OF_RANGE)
    return value


def _no_constant(name):
    raise _Unacceptable(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_int=_int64, parse_constant=_no_constant)

#: Arrays and objects around each message body in a v1 POST: ``[{"body": ...}]``.
V1_MESSAGE_ENVELOPE = 2


def _nesting_rule(depth, what):
    return depth, (f"{what} may not be nested more than {depth} levels deep "
                   "(arrays and objects within each other).")


#: The ``nesting`` of ``parse_json`` for documents that are never stored.
ANY_NESTING = _nesting_rule(json_text.READ_NESTING, "A request body")


def message_nesting(limits, envelope):
    """The ``nesting`` of ``parse_json`` for a POST of messages whose bodies
    sit inside ``envelope`` arrays and objects (v1: ``V1_MESSAGE_ENVELOPE``; a
    version posting ``{"messages": [{"body": ...}]}``: 3). Computed once per
    API, not per request."""
    depth, description = _nesting_rule(limits.max_json_nesting, "A message body")
    return depth + envelope, description


def metadata_nesting(limits):
    """The ``nesting`` of ``parse_json`` for queue metadata."""
    return _nesting_rule(limits.max_json_nesting, "Queue metadata")


def parse_json(raw, nesting=ANY_NESTING):
    """
    Parse a request body: UTF-8 JSON whose integers fit in signed 64 bits and
    whose strings are valid Unicode (no lone surrogates), nested at most
    ``nesting[0]`` deep (else ``nesting[1]`` is the description of the 400).

    The depth is measured on the text before parsing: every document stored
    is then one any read can decode and encode again (``json_text``).
    """
    if not raw:
        raise ValidationError("The request body is empty; a JSON document was expected.",
                              title="Malformed JSON")
    depth = nesting[0]
    # Only a text of 2 * (depth + 1) bytes or more, with more than ``depth``
    # brackets, can be deeper: small bodies cost a len(), others two counts.
    if (len(raw) > 2 * depth + 1 and raw.count(b"[") + raw.count(b"{") > depth
            and json_text.nesting(raw) > depth):
        raise ValidationError(nesting[1], title="Nested too deeply")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("it is not UTF-8")
    try:
        doc = _DECODER.decode(text)
    except json.JSONDecodeError as e:
        raise _malformed(f"{e.msg} at line {e.lineno} column {e.colno}")
    except _Unacceptable as e:
        raise _malformed(str(e))
    except RecursionError:
        raise _malformed("it is nested too deeply")
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise _malformed("a string holds a lone UTF-16 surrogate")
    return doc


def _malformed(reason):
    return ValidationError(f"The request body is not valid JSON: {reason}.",
                           title="Malformed JSON")


def document_type(doc, kind):
    if not isinstance(doc, kind):
        expected = "an object" if kind is dict else "an array"
        raise ValidationError(f"The JSON document must be {expected}.",
                              title="Invalid request body")
    return doc


def _integer_field(doc, name, where, low, high):
    if name not in doc:
        raise ValidationError(f"Missing '{name}' field{where}.", title="Invalid request body")
    value = doc[name]
    if type(value) is not int:
        raise ValidationError(f"'{name}'{where} must be an integer.",
                              title="Invalid request body")
    if not low <= value <= high:
        raise ValidationError(f"'{name}'{where} must be at least {low} and may not be more "
                              f"than {high}.", title="Invalid request body")
    return value


def messages(doc, limits, default_ttl=None, default_delay=None):
    """
    The message list of a POST: ``[{"ttl": int, "body": any}, ...]`` (v1's
    whole body), as dicts storage's ``post`` takes.

    @param default_ttl: the ttl of messages without one (None: ``ttl`` is
        required, as in v1).
    @param default_delay: with a non-zero value, each message gets a
        ``delay``, its own (an int 0..``max_message_delay``) or this one;
        otherwise any ``delay`` field is dropped (API v2's rule for queues
        without ``_default_message_delay``).
    """
    document_type(doc, list)
    if not doc:
        raise ValidationError("No messages to enqueue.", title="Invalid request body")
    result = []
    for index, item in enumerate(doc):
        where = f" of message {index}"
        if not isinstance(item, dict):
            raise ValidationError(f"Message {index} must be a JSON object.",
                                  title="Invalid request body")
        if "body" not in item:
            raise ValidationError(f"Missing 'body' field{where}.", title="Invalid request body")
        if default_ttl is None or "ttl" in item:
            ttl = _integer_field(item, "ttl", where, limits.min_message_ttl,
                                 limits.max_message_ttl)
        else:
            ttl = default_ttl
        message = {"ttl": ttl, "body": item["body"]}
        if default_delay:
            message["delay"] = (_integer_field(item, "delay", where, 0, limits.max_message_delay)
                                if "delay" in item else default_delay)
        result.append(message)
    return result


def messages_v1_1(doc, limits, default_ttl, default_delay=None):
    """The messages of a v1.1 or v2 POST: ``{"messages": [...]}`` whose items
    may omit ``ttl`` (``default_ttl``) and, in v2, carry a ``delay`` (see
    ``messages``)."""
    if not isinstance(doc, dict) or "messages" not in doc:
        raise ValidationError("The request body must be an object with a 'messages' array.",
                              title="Invalid request body")
    if not isinstance(doc["messages"], list):
        raise ValidationError("'messages' must be an array.", title="Invalid request body")
    return messages(doc["messages"], limits, default_ttl, default_delay)


def claim_ttl(doc, limits):
    """The ``ttl`` of a claim create or renew body (a JSON object)."""
    document_type(doc, dict)
    return _integer_field(doc, "ttl", "", limits.min_claim_ttl, limits.max_claim_ttl)


def claim_grace(doc, limits):
    """The ``grace`` of a claim create body."""
    return _integer_field(doc, "grace", "", limits.min_claim_grace, limits.max_claim_grace)


def claim_body_v1_1(doc, limits):
    """The ``(ttl, grace)`` of a v1.1 or v2 claim create or renew: ``doc`` is
    the body (None: none was sent), an object whose fields default to
    ``default_claim_ttl`` and ``default_claim_grace``."""
    if doc is None:
        return limits.default_claim_ttl, limits.default_claim_grace
    document_type(doc, dict)
    ttl = (_integer_field(doc, "ttl", "", limits.min_claim_ttl, limits.max_claim_ttl)
           if "ttl" in doc else limits.default_claim_ttl)
    grace = (claim_grace(doc, limits) if "grace" in doc else limits.default_claim_grace)
    return ttl, grace


PURGE_TYPES = frozenset({"messages", "subscriptions"})


def purge_types(doc):
    """The resource types a v2 purge removes: ``doc`` is the body (None: none
    was sent, both types), ``{"resource_types": [...]}`` naming some of
    ``PURGE_TYPES``."""
    if doc is None:
        return set(PURGE_TYPES)
    document_type(doc, dict)
    if "resource_types" not in doc:
        raise ValidationError("Missing 'resource_types' field.", title="Invalid request body")
    types = doc["resource_types"]
    if not isinstance(types, list) or not all(isinstance(t, str) and t in PURGE_TYPES
                                              for t in types):
        raise ValidationError("'resource_types' must be an array of "
                              f"{' and '.join(sorted(PURGE_TYPES))}.",
                              title="Invalid request body")
    return set(types)
