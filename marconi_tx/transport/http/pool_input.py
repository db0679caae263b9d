"""The rules of the pool and flavor requests (api-v2.md §8): names, the
bodies of create and update, and what a pool's storage can do.

What the spec leaves open, and the choices made here:

* Pool and flavor names follow Zaqar's: 1 to 64 ASCII letters, digits,
  ``_`` and ``-`` (v1's queue names; no dots). A ``flavor`` named in a pool
  body follows the same rule; it need not exist yet (a flavor is made from
  pools that name it, or names them itself).
* Bodies are JSON objects of at most ``max_queue_metadata`` bytes holding
  only the keys the spec lists (400 for any other, in a PATCH too). A pool
  PATCH may set ``flavor`` to null (detach the pool).
* ``uri`` is a non-empty string of at most ``max_pool_uri_length``
  characters (255 by default, the spec's); ``weight`` an integer from 0 to
  2^32 - 1 (0: the pool takes no new queue).
* A pool's capabilities are its storage engine's (``CAPABILITIES``, by URI
  scheme, with Zaqar's names): every engine here keeps FIFO order, claims,
  durable writes and at-least-once delivery; MongoDB, shared by many
  daemons and shardable, adds ``HIGH_THROUGHPUT``. The pools of a flavor
  must have the same capabilities: a sqlite and a MongoDB pool are never
  one flavor. A flavor's ``capabilities`` object is kept as given; its
  keys with a true value are shown with its pools' (an operator's
  declaration, e.g. of a fast disk).
"""

from marconi_tx import validation
from marconi_tx.errors import ValidationError

POOL_FIELDS = ("uri", "weight", "flavor", "options")
FLAVOR_FIELDS = ("pool_list", "capabilities")
MAX_WEIGHT = 2**32 - 1

_COMMON = ("FIFO", "CLAIMS", "DURABILITY", "AOD")
#: URI scheme prefix -> the capabilities of its engine.
CAPABILITIES = {"sqlite:": _COMMON, "mongodb:": (*_COMMON, "HIGH_THROUGHPUT")}


def name(value, what):
    """A pool or flavor name (``what``: "pool" or "flavor")."""
    if not validation.is_queue_name(value):
        raise ValidationError(
            f"A {what} name must be 1 to {validation.MAX_QUEUE_NAME} ASCII letters, digits, "
            "underscores or dashes.", title=f"Invalid {what} name")
    return value


#: The health report's own key: no pool may have this name.
CATALOG_REACHABLE = "catalog_reachable"


def pool_name(value):
    name(value, "pool")
    if value == CATALOG_REACHABLE:
        raise ValidationError(f"{CATALOG_REACHABLE!r} is a key of the health report, not a "
                              "pool name.", title="Invalid pool name")
    return value


def _invalid(description, what):
    return ValidationError(description, title=f"Invalid {what}")


def _fields(doc, allowed, what):
    validation.document_type(doc, dict)
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        raise _invalid(f"Unknown field(s) {', '.join(map(repr, unknown))}: a {what} body "
                       f"may hold only {', '.join(allowed)}.", what)


def _uri(value, limits):
    if not isinstance(value, str) or not value:
        raise _invalid("'uri' must be a non-empty string (a storage URI).", "pool")
    if len(value) > limits.max_pool_uri_length:
        raise _invalid(f"'uri' may not be more than {limits.max_pool_uri_length} "
                       "characters.", "pool")
    return value


def _weight(value):
    if type(value) is not int or not 0 <= value <= MAX_WEIGHT:
        raise _invalid(f"'weight' must be an integer from 0 to {MAX_WEIGHT}.", "pool")
    return value


def _object(value, field, what):
    if not isinstance(value, dict):
        raise _invalid(f"'{field}' must be an object.", what)
    return value


_CHECKS = {
    "uri": lambda value, limits: _uri(value, limits),
    "weight": lambda value, limits: _weight(value),
    "flavor": lambda value, limits: name(value, "flavor"),
    "options": lambda value, limits: _object(value, "options", "pool"),
}


def pool_create(doc, limits):
    """The fields of a pool PUT: ``uri`` and ``weight`` required,
    ``flavor`` and ``options`` optional (a dict of the keys given)."""
    _fields(doc, POOL_FIELDS, "pool")
    for required in ("uri", "weight"):
        if required not in doc:
            raise _invalid(f"Missing '{required}' field.", "pool")
    return {key: _CHECKS[key](value, limits) for key, value in doc.items()}


def pool_patch(doc, limits):
    """The changes of a pool PATCH: at least one field; ``flavor`` may be
    null (detach)."""
    _fields(doc, POOL_FIELDS, "pool")
    if not doc:
        raise _invalid(f"A pool PATCH must change at least one of {', '.join(POOL_FIELDS)}.",
                       "pool")
    return {key: None if key == "flavor" and value is None else _CHECKS[key](value, limits)
            for key, value in doc.items()}


def flavor_body(doc):
    """The ``(pool_list, capabilities)`` of a flavor PUT or PATCH:
    ``pool_list`` a non-empty array of pool names (repeats dropped),
    ``capabilities`` an object or None when absent."""
    _fields(doc, FLAVOR_FIELDS, "flavor")
    pools = doc.get("pool_list")
    if not isinstance(pools, list) or not pools:
        raise _invalid("'pool_list' is required: a non-empty array of pool names.", "flavor")
    for pool in pools:
        if not isinstance(pool, str):
            raise _invalid("'pool_list' must hold pool names (strings).", "flavor")
        pool_name(pool)
    capabilities = doc.get("capabilities")
    if capabilities is not None:
        _object(capabilities, "capabilities", "flavor")
    return list(dict.fromkeys(pools)), capabilities


def capabilities(uri):
    """The capabilities of the engine of a pool's ``uri`` (a tuple)."""
    for prefix, found in CAPABILITIES.items():
        if uri.startswith(prefix):
            return found
    return ()


def check_same_capabilities(uris, what):
    """Refuse (400) pools of one flavor whose engines differ
    (``uris``: {pool name: uri}; ``what``: the flavor, for the message)."""
    kinds = {}
    for pool, uri in uris.items():
        kinds.setdefault(capabilities(uri), []).append(pool)
    if len(kinds) > 1:
        described = "; ".join(f"{', '.join(sorted(pools))}: {', '.join(found) or 'none'}"
                              for found, pools in kinds.items())
        raise ValidationError(f"The pools of flavor {what!r} must have the same "
                              f"capabilities ({described}).",
                              title="Capabilities mismatch")
