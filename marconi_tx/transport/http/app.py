"""The HTTP application: Klein routing, the per-request checks, error mapping.

Klein matches paths; each path gets one dispatcher that answers OPTIONS, 405
(with ``Allow``) and the checks of api-v1.md §1.2 before calling the handler
for the method. Paths are normalised first: a trailing slash is ignored and
the literal segments are matched case-insensitively (as upstream did).
"""

from klein import Klein
from twisted.web.resource import Resource
from werkzeug.exceptions import NotFound

from marconi_tx import errors, validation
from marconi_tx.transport.http import responses
from marconi_tx.transport.http.v1 import V1API

# Segments holding path parameters (queue names, ids) keep their case.
_LITERAL_SEGMENTS = (0, 1, 3)


def accepts_json(accept):
    """True if an Accept header value admits application/json."""
    if accept is None:
        return True
    for item in accept.split(b","):
        media, *params = item.strip().split(b";")
        if media.strip().lower() not in (b"*/*", b"application/*", b"application/json"):
            continue
        quality = [p.strip()[2:] for p in params if p.strip().startswith(b"q=")]
        try:
            if not quality or float(quality[0]) > 0:
                return True
        except ValueError:
            continue
    return False


def project_id(header):
    """The namespace named by an X-Project-ID header value (None: global)."""
    if header is None:
        return None
    if not header:
        raise errors.ValidationError("The X-Project-ID header may not be empty.",
                                     title="Empty project header not allowed")
    try:
        return header.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.ValidationError("The X-Project-ID header must be UTF-8.",
                                     title="Invalid project header")


def dispatcher(handlers):
    """A Klein endpoint answering every method of one path."""
    allow = ", ".join(sorted(handlers))

    async def dispatch(request, **params):
        method = request.method.decode("ascii", "replace")
        if method == "OPTIONS":
            return responses.empty(request, 204, Allow=allow)
        handler = handlers.get(method)
        if handler is None:
            return responses.empty(request, 405, Allow=allow)
        if not accepts_json(request.getHeader(b"accept")):
            return responses.empty(request, 406)
        try:
            project = project_id(request.getHeader(b"x-project-id"))
            if "queue_name" in params:
                validation.queue_identification(params["queue_name"], project)
            return await handler(request, project, **params)
        except Exception as e:
            return responses.render_error(request, e)

    return dispatch


class NormalizedPaths(Resource):
    """Ignore one trailing slash and the case of literal segments, then route."""

    isLeaf = True

    def __init__(self, routed):
        super().__init__()
        self.routed = routed

    def render(self, request):
        segments = list(request.postpath)
        if len(segments) > 1 and segments[-1] == b"":
            segments.pop()
        try:
            for segment in segments:
                segment.decode("utf-8")
        except UnicodeDecodeError:
            return responses.error_body(request, 400, "Malformed URL",
                                        "The request path must be UTF-8.")
        for index in _LITERAL_SEGMENTS:
            if index < len(segments):
                segments[index] = segments[index].lower()
        request.postpath = segments
        return self.routed.render(request)


def build_resource(driver, config):
    """The root resource serving the API over ``driver`` (whose clock gives
    the time)."""
    app = Klein()
    api = V1API(driver, config)
    for path, handlers in api.routes():
        app.route(path, endpoint=path)(dispatcher(handlers))

    @app.handle_errors(NotFound)
    def not_found(request, failure):
        return responses.empty(request, 404)

    return NormalizedPaths(app.resource())
