"""Writing answers, and the tables mapping domain errors to them.

Each function sets the status and headers of ``request`` (a
``site.ApiRequest``) and returns the body, which the Router sends.

v1 answers "not found" with no body (api-v1.md §1.5); v1.1 and v2 give every
error a JSON ``{title, description}`` body (api-v2.md §1.3; v1.1 is given
the same: its [later] behaviour), with the table ``JSON_ERROR_ANSWERS``.
"""

from collections.abc import Callable
from json.encoder import encode_basestring

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


# -- answers holding messages, written as text ------------------------------------
# A message's document is written by hand around its body, and the body is
# the JSON text the storage read it from when it has one (it decoded, so it
# is JSON to write as is): a page of messages is neither built as dicts nor
# encoded again. Names and numbers need no escaping; strings use the
# encoder's own escaping (``json_string``), so the text is what ``dump``
# would write, save the spacing inside stored bodies.

#: The JSON text of a string.
json_string = encode_basestring


def text_of(doc):
    """The JSON text of ``doc``, as ``dump`` writes it."""
    return _encode(doc)


def body_text(message):
    """The JSON text of a ``records.Message``'s body."""
    stored = message.body_json
    return _encode(message.body) if stored is None else stored


def json_array(texts):
    """A JSON array of the JSON ``texts``."""
    return "[" + ", ".join(texts) + "]"


def with_member(object_text, name, value_text):
    """The JSON object ``object_text`` (with a member already) and one more
    member last: ``name`` (nothing to escape) and its JSON ``value_text``."""
    return f'{object_text[:-1]}, "{name}": {value_text}}}'


def text_body(request, status, text, **headers):
    """Answer ``status`` with the JSON ``text`` (``str``)."""
    return encoded_body(request, status, text.encode("utf-8"), **headers)


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


_REFUSALS = {404: "Not found", 405: "Method not allowed"}


def refused(request, status, json_errors, **headers):
    """A routing answer (404: no such path, 405: no such method): with no
    body (v1), or with a JSON error body when ``json_errors`` (v1.1, v2)."""
    if json_errors:
        return error_body(request, status, _REFUSALS.get(status, "Not found"),
                          f"{request.method.decode('ascii', 'replace')} "
                          f"{request.path.decode('utf-8', 'replace')} is not served.", **headers)
    return empty(request, status, **headers)


class NotAcceptable(Exception):
    """The client does not accept JSON: 406, with no body (it could not
    read one)."""


def _unable_to_delete(request, e):
    return error_body(request, 403, "Unable to delete", str(e))


def _unavailable(request, e):
    return error_body(request, 503, "Service temporarily unavailable",
                      "Please try again in a few seconds.", Retry_After=RETRY_AFTER.decode())


def _invalid(request, e):
    return error_body(request, 400, e.title, e.description)


#: A table of answers: (error class, answer(request, error) -> body), ...
ErrorAnswers = tuple[tuple[type[Exception], Callable], ...]

#: Domain error -> answer (v1). The most specific class must come first.
ERROR_ANSWERS: ErrorAnswers = (
    (errors.ValidationError, _invalid),
    (errors.DoesNotExist, lambda r, e: empty(r, 404)),
    (errors.MessageIsClaimed, _unable_to_delete),
    (errors.MessageNotClaimed, _unable_to_delete),
    (errors.ClaimMismatch, _unable_to_delete),
    (errors.StorageUnavailable, _unavailable),
    (NotAcceptable, lambda r, e: empty(r, 406)),
)

#: Domain error -> answer (v1.1 and v2): every error has a JSON body.
JSON_ERROR_ANSWERS: ErrorAnswers = (
    (errors.ValidationError, _invalid),
    (errors.DoesNotExist, lambda r, e: error_body(r, 404, "Not found", str(e))),
    (errors.MessageIsClaimed, _unable_to_delete),
    (errors.MessageNotClaimed, _unable_to_delete),
    (errors.ClaimMismatch, _unable_to_delete),
    (errors.PoolInUse, _unable_to_delete),
    (errors.Conflict, lambda r, e: error_body(r, 409, "Conflict", str(e))),
    (errors.UnsupportedMediaType,
     lambda r, e: error_body(r, 415, "Unsupported media type", str(e))),
    (errors.StorageUnavailable, _unavailable),
    (NotAcceptable, lambda r, e: empty(r, 406)),
)


def render_error(request, exc, answers=ERROR_ANSWERS):
    """The answer for an exception raised while handling ``request``
    (``answers``: the version's table)."""
    for kind, answer in answers:
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
