"""Job bodies (bytes) <-> message bodies (JSON), both ways without loss.

Storage keeps every body as JSON so that the HTTP API shows line-protocol
jobs like any message:

* a body that is valid UTF-8 is stored as a JSON string;
* any other body is stored as ``{"base64": "<standard base64 of the bytes>"}``.

Going back, a JSON string gives its UTF-8 bytes, an object that is exactly
``{"base64": <valid base64 text>}`` gives the decoded bytes, and any other
JSON value (posted over HTTP) gives its compact JSON text in UTF-8. A body put
over the line protocol therefore always comes back byte for byte.
"""

import base64
import binascii

from marconi_tx import json_text

_encode = json_text.encoder()


def to_json(data):
    """The JSON value stored for the job body ``data`` (bytes)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def to_bytes(body):
    """The job body (bytes) of the stored JSON value ``body``."""
    if isinstance(body, str):
        # surrogatepass: a lone surrogate from elsewhere must not crash a read.
        return body.encode("utf-8", "surrogatepass")
    if isinstance(body, dict) and len(body) == 1 and isinstance(body.get("base64"), str):
        try:
            return base64.b64decode(body["base64"], validate=True)
        except (binascii.Error, ValueError):
            pass
    return _encode(body).encode("utf-8", "surrogatepass")
