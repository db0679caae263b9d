"""JSON-patch of queue metadata (API v2's ``PATCH /v2/queues/{name}``, api-v2.md §2.5).

A patch is an array of operations ``{"op": "add"|"replace"|"remove", "path":
"/metadata/<key>"[, "value": any]}``; the path is a JSON pointer (RFC 6901,
``~1`` for ``/`` and ``~0`` for ``~`` in the key) of exactly two segments, the
first ``metadata`` (any case). ``parse`` checks a patch (ValidationError),
``apply`` runs it on a metadata dict (Conflict).
"""

from dataclasses import dataclass
from typing import Any

from marconi_tx.errors import Conflict, ValidationError

OPERATIONS = ("add", "replace", "remove")
#: The operations that carry a ``value``.
_VALUED = ("add", "replace")
_INVALID = "Invalid JSON-patch"


@dataclass(frozen=True)
class Operation:
    op: str
    #: The metadata key (the path's second segment, unescaped).
    key: str
    #: The new value of add and replace (None for remove).
    value: Any = None


def parse(doc):
    """The ``Operation`` list of the patch document ``doc`` (parsed JSON)."""
    if not isinstance(doc, list):
        raise ValidationError("A JSON-patch must be an array of operation objects.",
                              title=_INVALID)
    return [_operation(index, item) for index, item in enumerate(doc)]


def _operation(index, item):
    if not isinstance(item, dict):
        raise ValidationError(f"Operation {index} must be a JSON object.", title=_INVALID)
    op = item.get("op")
    if op not in OPERATIONS:
        raise ValidationError(f"The 'op' of operation {index} must be one of "
                              f"{', '.join(OPERATIONS)}.", title=_INVALID)
    key = _metadata_key(index, item.get("path"))
    if op in _VALUED:
        if "value" not in item:
            raise ValidationError(f"Operation {index} ({op}) needs a 'value'.", title=_INVALID)
        return Operation(op, key, item["value"])
    return Operation(op, key)


def _metadata_key(index, path):
    """The key of ``/metadata/<key>``, or a ValidationError naming the rule."""
    if not isinstance(path, str):
        raise ValidationError(f"The 'path' of operation {index} must be a string.",
                              title=_INVALID)
    segments = path.split("/")
    # "/metadata/key".split("/") == ["", "metadata", "key"]
    if (len(segments) != 3 or segments[0] or segments[1].lower() != "metadata"
            or not segments[2]):
        raise ValidationError(f"The 'path' of operation {index} must be /metadata/<key> "
                              f"(a JSON pointer of two segments), not {path!r}.",
                              title=_INVALID)
    key = segments[2]
    if "~" in key:
        if any(escape not in ("~0", "~1") for escape in _escapes(key)):
            raise ValidationError(f"The 'path' of operation {index} has a '~' that is "
                                  "neither ~0 nor ~1.", title=_INVALID)
        key = key.replace("~1", "/").replace("~0", "~")
    return key


def _escapes(segment):
    """Each ``~`` of ``segment`` with the character after it."""
    return [segment[i:i + 2] for i, char in enumerate(segment) if char == "~"]


def apply(metadata, ops, reserved):
    """
    A new dict: ``metadata`` after ``ops``, in order.

    ``add`` sets a key; ``replace`` sets one that is present or in
    ``reserved``; ``remove`` deletes one, a missing key of ``reserved`` being
    no change.

    @raise Conflict: replace or remove of a missing key not in ``reserved``.
    """
    result = dict(metadata)
    for operation in ops:
        key = operation.key
        if key in result or operation.op == "add":
            if operation.op == "remove":
                del result[key]
            else:
                result[key] = operation.value
        elif key not in reserved:
            raise Conflict(f"The queue metadata has no key {key!r} to {operation.op}.")
        elif operation.op == "replace":
            result[key] = operation.value
    return result
