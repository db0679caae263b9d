"""Pre-signed URLs (v2): the headers that present a share document.

``queue.share()`` answers a document ``{"project", "paths", "methods",
"expires", "signature"}``; whoever holds it may send the requests it allows
without credentials, by sending it back as headers (``Client.signed``).
"""

from typing import Any

#: The keys of a share document, each required.
FIELDS = ("project", "paths", "methods", "expires", "signature")


def headers(document: Any) -> dict[str, list[str]]:
    """The ``URL-*`` and ``X-Project-ID`` headers presenting ``document``.

    @raise ValueError: it is not a share document.
    """
    if not isinstance(document, dict) or not all(key in document for key in FIELDS):
        raise ValueError(f"not a share document (it needs {', '.join(FIELDS)})")
    lists = [document[key] for key in ("paths", "methods")]
    texts = [document[key] for key in ("project", "expires", "signature")]
    if not all(isinstance(value, list) and value
               and all(isinstance(item, str) for item in value) for value in lists) \
            or not all(isinstance(value, str) and value for value in texts):
        raise ValueError("a share document has lists of paths and methods and "
                         "strings project, expires and signature")
    return {"URL-Signature": [document["signature"]],
            "URL-Expires": [document["expires"]],
            "URL-Methods": [",".join(document["methods"])],
            "URL-Paths": [",".join(document["paths"])],
            "X-Project-ID": [document["project"]]}
