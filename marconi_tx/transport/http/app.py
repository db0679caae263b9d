"""The HTTP application: Klein routing, the per-request checks, error mapping.

Klein matches paths; each path gets one dispatcher that answers OPTIONS, 405
(with ``Allow``) and the checks of api-v1.md §1.2 before calling the handler
for the method. Paths are normalised first: empty segments (a trailing or
doubled slash) are ignored and the literal segments are matched
case-insensitively (as upstream did).
"""

from inspect import iscoroutinefunction

from klein import Klein
from twisted.internet.defer import succeed
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from werkzeug.exceptions import HTTPException

from marconi_tx import errors, validation
from marconi_tx.deferreds import returns_deferred
from marconi_tx.transport.http import openapi, responses
from marconi_tx.transport.http.site import adopt
from marconi_tx.transport.http.v1 import V1API

log = Logger()

#: Paths whose match the Router remembers (it forgets them all when full).
MATCH_CACHE = 4096
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
    """A Klein endpoint answering every method of one path with a Deferred
    of the body.

    Handlers are ``async def``, adapted here by ``returns_deferred``; the
    one exception, posting messages (the busiest request), returns a
    Deferred itself, which saves driving a coroutine for each post. Failures,
    raised or delivered, are answered by ``responses.render_error``.
    """
    allow = ", ".join(sorted(handlers))
    handlers = {method: returns_deferred(handler) if iscoroutinefunction(handler) else handler
                for method, handler in handlers.items()}

    def dispatch(request, **params):
        method = request.method.decode("ascii", "replace")
        if method == "OPTIONS":
            return succeed(responses.empty(request, 204, Allow=allow))
        handler = handlers.get(method)
        if handler is None:
            return succeed(responses.empty(request, 405, Allow=allow))
        if not accepts_json(request.header(b"Accept")):
            return succeed(responses.empty(request, 406))
        try:
            project = project_id(request.header(b"X-Project-Id"))
            if "queue_name" in params:
                validation.queue_identification(params["queue_name"], project)
            answer = handler(request, project, **params)
        except Exception as e:
            return succeed(responses.render_error(request, e))
        return answer.addErrback(_error_answer, request)

    return dispatch


def _error_answer(failure, request):
    failure.trap(Exception)
    return responses.render_error(request, failure.value)


class Router(Resource):
    """Serve a Klein app's routes with less work per request than
    ``Klein.resource()``.

    Klein's own resource binds a werkzeug adapter, adapts the request and
    chains several Deferreds for every request: about a fifth of a small
    request's CPU. The app's rules are host-independent, so one adapter bound
    at start-up serves every request; endpoints run through
    ``Klein.execute_endpoint`` and return a Deferred of the body, which is
    sent directly (``ApiRequest.send``). A request built by another Site
    than ``site.make_site``'s (treq's StubTreq) is given the request API
    first (``site.adopt``).

    Paths are normalised before matching: empty segments (a trailing or
    doubled slash) are dropped and the literal segments are lower-cased.
    Every rule takes every method (the dispatcher answers 405), so a match
    depends on the path alone: the matches of the last ``MATCH_CACHE`` raw
    paths are kept, and a known path is neither decoded nor normalised.

    With ``metrics`` (a ``marconi_tx.metrics.Metrics``) every request is
    counted by its route's instruments, found with the match and cached
    with it: a request costs one more callback, not a label lookup.
    """

    isLeaf = True

    def __init__(self, app, metrics=None):
        super().__init__()
        self.app = app
        self.urls = app.url_map.bind("localhost")
        # raw path -> (endpoint, params, RouteMetrics or None): hot paths skip werkzeug
        self.matches = {}
        self.metrics = metrics

    def render(self, request):
        adopt(request)
        match = self.matches.get(request.path)
        if match is None:
            try:
                segments = [s.decode("utf-8") for s in request.postpath if s]
            except UnicodeDecodeError:
                return self._unmatched(request, responses.error_body(
                    request, 400, "Malformed URL", "The request path must be UTF-8."))
            for index in _LITERAL_SEGMENTS:
                if index < len(segments):
                    segments[index] = segments[index].lower()
            try:
                endpoint, params = self.urls.match("/" + "/".join(segments))
            except HTTPException as e:
                return self._unmatched(request, responses.empty(request, e.code))
            if len(self.matches) >= MATCH_CACHE:
                self.matches.clear()
            route = None if self.metrics is None else self.metrics.route(endpoint)
            match = self.matches[request.path] = endpoint, params, route
        endpoint, params, route = match
        if route is None:
            d = self.app.execute_endpoint(endpoint, request, **params)
            d.addCallback(request.send)
            d.addErrback(_failed, request)
        else:  # the same callbacks, each counting the answer it gave
            started = route.seconds()
            d = self.app.execute_endpoint(endpoint, request, **params)
            d.addCallback(_write_counted, request, route, started)
            d.addErrback(_failed_counted, request, route, started)
        return NOT_DONE_YET

    def _unmatched(self, request, body):
        """Count an answer given before any route matched (the route label
        is fixed, whatever the path); ``body``."""
        if self.metrics is not None:
            route = self.metrics.unmatched()
            route.finished(request, route.seconds())
        return body


def _failed(failure, request):
    """A bug, not the client's fault: log it, never show a traceback."""
    log.failure("Failed answering {method} {uri}", failure,
                method=request.method, uri=request.uri)
    if request.channel is None:
        return
    if request.startedWriting:  # too late for a status: end the connection
        request.loseConnection()
    else:
        responses.empty(request, 500)
        request.finish()


def _write_counted(body, request, route, started):
    request.send(body)
    route.finished(request, started)


def _failed_counted(failure, request, route, started):
    _failed(failure, request)
    route.finished(request, started)


def build_resource(driver, config, metrics=None):
    """The root resource serving the API over ``driver`` (whose clock gives
    the time); with ``metrics``, also ``GET /metrics``."""
    app = Klein()
    api = V1API(driver, config)
    for path, handlers in api.routes() + openapi.routes():
        app.route(path, endpoint=path)(dispatcher(handlers))
    if metrics is not None:
        app.route("/metrics", endpoint="/metrics")(metrics.endpoint())
    return Router(app, metrics)
