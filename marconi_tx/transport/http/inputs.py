"""What a request carries, read for the handlers of every API version:
query parameters, the Client-ID header and JSON bodies. Each reader raises
``errors.ValidationError`` (a 400) for input it cannot take."""

from marconi_tx import errors, validation


def query(request, name):
    """A query parameter as text; None when absent or empty."""
    values = request.args.get(name.encode("utf-8"))
    if not values or not values[0]:
        return None
    return text(values[0], f"The value of '{name}'")


def queries(request):
    """Every query parameter with a value, as {name: its first value}, in
    text."""
    return {text(name, "A query parameter's name"): text(values[0], f"The value of {name!r}")
            for name, values in request.args.items() if values and values[0]}


def text(raw, what):
    """``raw`` (bytes of a query) decoded; 400 when it is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.ValidationError(f"{what} must be UTF-8.", title="Invalid query parameter")


def query_ids(request, name="ids"):
    """Every ``ids`` value (``?ids=1,2&ids=3``: python-zaqarclient repeats the
    parameter), as one list of ids; empty items dropped."""
    ids = []
    for raw in request.args.get(name.encode("ascii"), ()):
        try:
            ids += validation.query_ids(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise errors.ValidationError(f"The value of '{name}' must be UTF-8.",
                                         title="Invalid query parameter")
    return ids


#: Client-ID header values already parsed: a client sends the same one on
#: every request, and v1.1/v2 read it twice (the checks, then the handler).
_CLIENT_IDS: dict = {}
_MAX_CLIENT_IDS = 4096


def client_uuid(request):
    """The Client-ID header as a ``uuid.UUID``; 400 when missing or malformed."""
    header = request.header(b"Client-Id")
    known = _CLIENT_IDS.get(header)
    if known is not None:
        return known
    parsed = validation.client_uuid(None if header is None else header.decode("latin-1"))
    if len(_CLIENT_IDS) >= _MAX_CLIENT_IDS:
        _CLIENT_IDS.clear()
    _CLIENT_IDS[header] = parsed
    return parsed


def request_uri(request):
    return request.uri.decode("utf-8", "replace")


def read_json(request, limit=None, nesting=validation.ANY_NESTING):
    """The parsed JSON body; 400 when missing, too big, nested too deeply
    (``validation.parse_json``) or malformed."""
    length = request.header(b"Content-Length")
    if length is None:
        raise errors.ValidationError("A request body with a Content-Length is required.",
                                     title="Malformed request body")
    if limit is not None and int(length) > limit:
        raise errors.ValidationError(f"The request body may not be more than {limit} bytes.",
                                     title="Request body too large")
    if getattr(request.content, "overflowed", False):
        raise errors.ValidationError("The request body is too large.",
                                     title="Request body too large")
    request.content.seek(0)
    return validation.parse_json(request.content.read(), nesting)


def optional_json(request, limit=None, nesting=validation.ANY_NESTING):
    """As ``read_json``, but None when the request has no body (no
    Content-Length, or 0)."""
    if request.header(b"Content-Length") in (None, b"0"):
        return None
    return read_json(request, limit, nesting)
