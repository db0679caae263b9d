"""Which API version a client speaks: ``v1`` or ``v2``, given or discovered.

Discovery (``Client(api=None)``) asks ``GET /`` for the versions document
(``300``, ``{"versions": [{"id": "2", "status": "CURRENT", ...}]}``); a
server that does not answer one is asked ``GET /v2``. v2 is used when the
server offers it, v1 otherwise.

v2 requires an ``X-Project-ID`` on every request, where v1 without one
means the global namespace: a v2 client given no project sends
L{DEFAULT_PROJECT}.
"""

from typing import Any

V1 = "v1"
V2 = "v2"
#: The versions the client speaks, oldest first.
APIS = (V1, V2)

#: The X-Project-ID a v2 client sends when it was given no project.
DEFAULT_PROJECT = "default"

#: The Content-Type of a v2 queue metadata PATCH (a JSON-patch document).
JSON_PATCH = "application/openstack-messaging-v2.0-json-patch"

#: Version ids a versions document may give v2 (OpenStack spells it several ways).
_V2_IDS = ("2", "2.0", "v2", "v2.0")


def offers_v2(document: Any) -> bool:
    """Whether a versions document lists v2 as usable (any status but
    ``DEPRECATED`` or ``DELETED``)."""
    versions = document.get("versions") if isinstance(document, dict) else None
    for version in versions if isinstance(versions, list) else ():
        if isinstance(version, dict) and str(version.get("id")).lower() in _V2_IDS \
                and str(version.get("status")).upper() not in ("DEPRECATED", "DELETED"):
            return True
    return False


def check(api: str | None) -> str | None:
    """``api`` if it names a version the client speaks (or is ``None``).

    @raise ValueError: it does not.
    """
    if api is not None and api not in APIS:
        raise ValueError(f"unknown API version {api!r} (expected one of {', '.join(APIS)})")
    return api
