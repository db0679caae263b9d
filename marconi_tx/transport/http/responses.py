"""Writing answers, and the one table mapping domain errors to them.

Each function sets the status and headers of ``request`` (a
``site.ApiRequest``) and returns the body, which the Router sends.
"""

from twisted.logger import Logger
from twisted.python.failure import Failure

from marconi_tx import errors, json_text

log = Logger()

JSON_TYPE = b"application/json; charset=utf-8"
RETRY_AFTER = b"30"


_encode = json_text.encoder(separators=(", ", ": "))


def dump(doc):
    return _encode(doc).encode("utf-8")


def json_body(request, status, doc, content_type=JSON_TYPE, **headers):
    """Answer ``status`` with the JSON document ``doc``."""
    return encoded_body(request, status, dump(doc), content_type, **headers)


def encoded_body(request, status, body, content_type=JSON_TYPE, **headers):
    """Answer ``status`` with ``body``, a JSON document already encoded
    (to a HEAD request: its headers only)."""
    request.setResponseCode(status)
    request.set_clean_header(b"Content-Type", content_type)
    request.set_clean_header(b"Content-Length", b"%d" % len(body))
    _set_headers(request, headers)
    # twisted.web drops a body answering HEAD, but logs a warning each time.
    return b"" if request.method == b"HEAD" else body


def empty(request, status, **headers):
    """Answer ``status`` with no body (and no Content-Type)."""
    request.setResponseCode(status)
    request.defaultContentType = None
    if status != 204:  # a 204 may not carry Content-Length (RFC 9110 8.6)
        request.set_clean_header(b"Content-Length", b"0")
    _set_headers(request, headers)
    return b""


def _set_headers(request, headers):
    """Set keyword headers: ``Retry_After="30"`` -> ``Retry-After: 30``."""
    for name, value in headers.items():
        request.setHeader(name.replace("_", "-").encode("ascii"), value.encode("utf-8"))


def error_body(request, status, title, description=None, **headers):
    doc = {"title": title}
    if description:
        doc["description"] = description
    return json_body(request, status, doc, **headers)


def _unable_to_delete(request, e):
    return error_body(request, 403, "Unable to delete", str(e))


def _unavailable(request, e):
    return error_body(request, 503, "Service temporarily unavailable",
                      "Please try again in a few seconds.", Retry_After=RETRY_AFTER.decode())


#: Domain error -> answer. The most specific class must come first.
ERROR_ANSWERS = (
    (errors.ValidationError, lambda r, e: error_body(r, 400, e.title, e.description)),
    (errors.DoesNotExist, lambda r, e: empty(r, 404)),
    (errors.MessageIsClaimed, _unable_to_delete),
    (errors.MessageNotClaimed, _unable_to_delete),
    (errors.ClaimMismatch, _unable_to_delete),
    (errors.StorageUnavailable, _unavailable),
)


def render_error(request, exc):
    """The answer for an exception raised while handling ``request``."""
    for kind, answer in ERROR_ANSWERS:
        if isinstance(exc, kind):
            return answer(request, exc)
    # A bug, not the client's fault: log it (at most one of a kind every
    # few seconds: a client may repeat the request), never show a traceback.
    limiter = getattr(getattr(request, "site", None), "log_limiter", None)
    suppressed = 0 if limiter is None else limiter.admit(("500", type(exc)))
    if suppressed is not None:
        log.failure("Unexpected error handling {method} {uri}" + (
                        " ({suppressed} alike not logged before this)" if suppressed else ""),
                    Failure(exc, type(exc), exc.__traceback__),
                    method=request.method, uri=request.uri, suppressed=suppressed)
    return error_body(request, 500, "Internal server error",
                      "The server failed unexpectedly; the failure was logged.")
