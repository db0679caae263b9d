"""The rules of subscription requests (api-v2.md §6.1): subscriber URIs,
ttls, options, and the bodies of create, update and confirm.

What the spec leaves open, and the choices made here:

* Only ``http`` and ``https`` subscribers are delivered to, so those are
  the only schemes ``[limits:transport] subscriber_types`` may hold;
  ``mailto:``, ``trust+http(s):`` and any other scheme are 400. A
  subscriber must be ASCII (percent-encode the rest), name a host, and be
  at most ``max_subscriber_length`` characters.
* Bodies may hold only ``subscriber``, ``ttl`` and ``options`` (400 for
  any other key), ``confirmed`` alone for a confirmation.
* ``options`` is an object kept as given, but what delivery uses must be
  usable: ``post_headers`` an object of header names to string values
  (no line breaks), ``post_data`` a string, ``_retry_policy`` as
  ``retry_policy.check`` says.
"""

import re
from urllib.parse import urlsplit

from marconi_tx.errors import ValidationError
from marconi_tx.notification import retry_policy

FIELDS = ("subscriber", "ttl", "options")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
_HEADER_VALUE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*\Z")


def _invalid(description):
    return ValidationError(description, title="Invalid subscription")


def subscriber(value, limits):
    """A subscriber URI: http(s) (``subscriber_types``), with a host."""
    if not isinstance(value, str) or not value:
        raise _invalid("'subscriber' must be a non-empty string (a URI).")
    if len(value) > limits.max_subscriber_length:
        raise _invalid(f"'subscriber' may not be more than {limits.max_subscriber_length} "
                       "characters.")
    if not value.isascii() or _UNSAFE.search(value):
        raise _invalid("'subscriber' must be an ASCII URI without spaces or control "
                       "characters (percent-encode the rest).")
    scheme = value.split(":", 1)[0].lower() if ":" in value else ""
    if scheme not in limits.subscriber_types:
        raise _invalid(f"The subscriber type {scheme or value!r} is not supported: use one "
                       f"of {', '.join(limits.subscriber_types)}.")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise _invalid("'subscriber' is not a valid URI.")
    if not parts.hostname:
        raise _invalid("'subscriber' must name a host.")
    return value


def ttl(value, limits):
    if type(value) is not int:
        raise _invalid("'ttl' must be an integer.")
    low, high = limits.min_subscription_ttl, limits.max_subscription_ttl
    if not low <= value <= high:
        raise _invalid(f"'ttl' must be at least {low} and may not be more than {high}.")
    return value


def options(value):
    if not isinstance(value, dict):
        raise _invalid("'options' must be an object.")
    headers = value.get("post_headers")
    if headers is not None:
        if not isinstance(headers, dict):
            raise _invalid("'options.post_headers' must be an object.")
        for name, text in headers.items():
            if not _TOKEN.match(name):
                raise _invalid(f"'options.post_headers': {name!r} is not a header name.")
            if not isinstance(text, str) or not _HEADER_VALUE.match(text) or not all(
                    ord(c) < 256 for c in text):
                raise _invalid(f"'options.post_headers': the value of {name!r} must be a "
                               "string of Latin-1 characters without line breaks.")
    if "post_data" in value and not isinstance(value["post_data"], str):
        raise _invalid("'options.post_data' must be a string.")
    if "_retry_policy" in value:
        retry_policy.check(value["_retry_policy"])
    return value


def _only(doc, allowed):
    if not isinstance(doc, dict):
        raise ValidationError("The JSON document must be an object.",
                              title="Invalid request body")
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        raise _invalid(f"Unknown field {unknown[0]!r}: only {', '.join(allowed)} may be "
                       "given.")


def create_body(doc, limits):
    """(subscriber, ttl, options) of a POST body."""
    _only(doc, FIELDS)
    if "subscriber" not in doc:
        raise _invalid("Missing 'subscriber' field.")
    return (subscriber(doc["subscriber"], limits),
            ttl(doc["ttl"], limits) if "ttl" in doc else limits.default_subscription_ttl,
            options(doc["options"]) if "options" in doc else {})


def patch_body(doc, limits):
    """The changes of a PATCH body: {field: value}, at least one."""
    _only(doc, FIELDS)
    if not doc:
        raise _invalid("Give at least one of subscriber, ttl and options.")
    checks = {"subscriber": lambda v: subscriber(v, limits), "ttl": lambda v: ttl(v, limits),
              "options": options}
    return {name: checks[name](value) for name, value in doc.items()}


def confirm_body(doc):
    """The ``confirmed`` boolean of a confirmation body."""
    _only(doc, ("confirmed",))
    value = doc.get("confirmed")
    if type(value) is not bool:
        raise _invalid("'confirmed' must be true or false.")
    return value
