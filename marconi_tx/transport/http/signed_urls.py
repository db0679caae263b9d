"""Pre-signed URLs of API v2 (api-v2.md §5): ``share`` signs, ``verify`` checks.

A share document grants, until ``expires``, the ``methods`` on the ``paths``
of one queue to whoever presents it in the headers ``URL-Signature``,
``URL-Expires``, ``URL-Methods``, ``URL-Paths`` and ``X-Project-ID``. The
signature is upstream Zaqar's, so documents signed by either server (with the
same key) verify on both: hex HMAC-SHA256, keyed by ``[signed_url]
secret_key``, of ``paths \\n methods \\n project \\n expires`` where paths and
methods are sorted and comma-joined, a missing project is ``None`` and each
``\\n`` is the two characters backslash and n (upstream used a raw string).

A URL-Paths entry authorises every request path containing it (upstream
searched with each entry as an unanchored regular expression). Here the entry
is taken literally: a pattern sent by a client is never compiled, so none can
fail to compile or backtrack for ever, and a ``.`` of a v2 queue name matches
only a dot. Every path ``share`` produces authorises the same requests as
upstream's search, ``…/messages`` thus also ``…/messages/{id}``.
"""

import hashlib
import hmac
import re
from datetime import datetime, timedelta, timezone

from marconi_tx.errors import ValidationError

#: What ``paths`` may name: each is ``/v2/queues/{name}/<path>``.
PATHS = frozenset({"messages", "subscriptions", "claims"})
#: What ``methods`` may name (upstream took any string; one no request can
#: have is refused here instead of granting nothing).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
#: A share document lasts this long when it gives no ``expires``.
DEFAULT_LIFETIME = timedelta(days=1)
#: The normalised form of ``expires`` (UTC, no fraction, no zone).
EXPIRES_FORMAT = "%Y-%m-%dT%H:%M:%S"

_KEYS = ("paths", "methods", "expires")
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*\Z")
_INVALID = "Invalid share request"


def _invalid(description):
    return ValidationError(description, title=_INVALID)


def _expiry(text):
    """The UTC datetime of an ISO-8601 ``text`` (no zone: UTC), to the
    second; ValueError if it is none."""
    if not isinstance(text, str) or _INTEGER.match(text):
        raise ValueError(text)
    try:
        moment = datetime.fromisoformat(text.strip())
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc)
    except OverflowError:  # a zone pushing the year past 9999
        raise ValueError(text)
    return moment.replace(tzinfo=timezone.utc, microsecond=0)


def signature(secret_key, paths, methods, project, expires):
    """The hex HMAC-SHA256 of a grant (see the module's documentation)."""
    text = r"\n".join((",".join(sorted(paths)), ",".join(sorted(methods)),
                       str(project), expires))
    return hmac.new(secret_key.encode("utf-8"), text.encode("utf-8"),
                    hashlib.sha256).hexdigest()


def _names(doc, key, allowed, default):
    """The list ``doc[key]`` (absent or empty: ``default``) of ``allowed`` names."""
    names = doc.get(key) or default
    if not isinstance(names, list):
        raise _invalid(f"'{key}' must be an array.")
    unknown = [name for name in names if not isinstance(name, str) or name not in allowed]
    if unknown:
        raise _invalid(f"'{key}' may only name {', '.join(sorted(allowed))}; "
                       f"not {', '.join(map(repr, unknown))}.")
    return names


def share(doc, project, queue, secret_key, now):
    """
    The share document (api-v2.md §5) granting ``doc``'s request on ``queue``.

    @param doc: the request body, a dict (empty: the defaults).
    @param project: the project id, or None.
    @param secret_key: ``[signed_url] secret_key`` (empty: no signed URLs).
    @param now: the time, in epoch seconds.
    @raise ValidationError: signed URLs are off, or ``doc`` is invalid.
    """
    if not secret_key:
        raise _invalid("Pre-signed URLs are not enabled on this server "
                       "([signed_url] secret_key is not set).")
    unknown = sorted(set(doc) - set(_KEYS))
    if unknown:
        raise _invalid(f"Unknown keys: {', '.join(unknown)} (known: {', '.join(_KEYS)}).")
    paths = sorted(f"/v2/queues/{queue}/{path}"
                   for path in _names(doc, "paths", PATHS, ["messages"]))
    methods = sorted(_names(doc, "methods", METHODS, ["GET"]))
    if doc.get("expires") is None:
        expires = datetime.fromtimestamp(now, timezone.utc) + DEFAULT_LIFETIME
    else:
        try:
            expires = _expiry(doc["expires"])
        except ValueError:
            raise _invalid("'expires' must be an ISO 8601 date and time, such as "
                           "2030-01-01T00:00:00 (UTC unless it names a zone).")
        if expires.timestamp() <= now:
            raise _invalid("'expires' must be in the future.")
    expires_text = expires.strftime(EXPIRES_FORMAT)
    return {"project": project, "expires": expires_text, "paths": paths, "methods": methods,
            "signature": signature(secret_key, paths, methods, project, expires_text)}


def verify(method, path, headers, secret_key, now):
    """
    The project a request's pre-signed URL headers grant it, or None when
    they grant nothing: no secret key, a header missing, ``method`` not
    among URL-Methods, ``path`` containing no URL-Paths entry, a signature
    that does not match (compared in constant time), or an expiry past.

    @param headers: header name (``URL-Signature``, ``URL-Expires``,
        ``URL-Methods``, ``URL-Paths``, ``X-Project-ID``) -> str or None.
    @param now: the time, in epoch seconds.
    """
    names = ("URL-Signature", "URL-Expires", "URL-Methods", "URL-Paths", "X-Project-ID")
    values = [headers.get(name) for name in names]
    if not secret_key or None in values:
        return None
    given, expires_text, methods_text, paths_text, project = values
    methods, paths = methods_text.split(","), paths_text.split(",")
    if method not in methods or not any(entry and entry in path for entry in paths):
        return None
    try:
        expires = _expiry(expires_text)
    except ValueError:
        return None
    expected = signature(secret_key, paths, methods, project,
                         expires.strftime(EXPIRES_FORMAT))
    if not hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace")):
        return None
    if expires.timestamp() <= now:
        return None
    return project
