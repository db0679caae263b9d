"""The HTTP application: Klein routing, the per-request checks, error mapping.

Klein matches paths; each path gets one dispatcher that answers OPTIONS, 405
(with ``Allow``) and the checks of its API version (v1: api-v1.md §1.2;
v1.1: api-v1.1.md §1; v2: api-v2.md §1.2) before calling the handler for the
method. ``GET /`` is the versions document (``versions``); the OpenAPI
documents (``/<version>/openapi.json``) are public and take v1's checks.
Paths are normalised first: empty segments (a trailing or doubled slash) are
ignored and the literal segments are matched case-insensitively (as upstream
did).
"""

import functools
from inspect import iscoroutinefunction

from klein import Klein
from twisted.internet.defer import succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from werkzeug.exceptions import HTTPException

from marconi_tx.auth.strategies import strategy_from_config
from marconi_tx.deferreds import returns_deferred
from marconi_tx.transport.http import openapi, responses
from marconi_tx.transport.http.auth import AUTH_ANSWERS, Guard, route_kind
from marconi_tx.transport.http.long_poll import LongPoll
from marconi_tx.transport.http.metadata_cache import MetadataCache
from marconi_tx.transport.http.site import adopt
from marconi_tx.transport.http.v1 import V1API
from marconi_tx.transport.http.v1_1 import V1_1API
from marconi_tx.transport.http.v2 import V2API
from marconi_tx.transport.http.versions import Versions

log = Logger()

#: Paths whose match the Router remembers (it forgets them all when full).
MATCH_CACHE = 4096
# Segments holding path parameters (queue names, ids) keep their case.
_LITERAL_SEGMENTS = (0, 1, 3)


def dispatcher(handlers, api, guard=None, kind="project"):
    """A Klein endpoint answering every method of one path with a Deferred
    of the body.

    ``api`` (``V1API`` or a later version) runs its per-request checks
    (``api.checks``: the request's project, or a raised error) and answers
    errors with its table (``api.error_answers``); 404 and 405 have a JSON
    body when ``api.json_errors``. Handlers are ``async def``, adapted here
    by ``returns_deferred``; the exceptions, the busiest requests (posting,
    listing and claiming messages, deleting them by ids), return a Deferred
    themselves, which saves driving a coroutine for each. Failures, raised
    or delivered, are answered by ``responses.render_error``.
    """
    allow = ", ".join(sorted(handlers))
    handlers = {method: returns_deferred(handler) if iscoroutinefunction(handler) else handler
                for method, handler in handlers.items()}
    checks, answers, json_errors = api.checks, api.error_answers, api.json_errors
    # A strategy is on: ``auth.Guard`` authenticates, by the rules of ``kind``.
    call = None if guard is None else guard.caller(api, kind)
    if call is not None:
        answers = AUTH_ANSWERS + answers

    def dispatch(request, **params):
        method = request.method.decode("ascii", "replace")
        if method == "OPTIONS":
            return succeed(responses.empty(request, 204, Allow=allow))
        handler = handlers.get(method)
        if handler is None:
            return succeed(responses.refused(request, 405, json_errors, Allow=allow))
        try:
            if call is None:
                answer = handler(request, checks(request, params), **params)
            else:
                answer = call(request, handler, params)
        except Exception as e:
            return succeed(responses.render_error(request, e, answers))
        if answer.called and type(answer.result) is bytes:
            return answer  # answered already (a sqlite read): no errback to run
        return answer.addErrback(_error_answer, request, answers)

    return dispatch


def _error_answer(failure, request, answers):
    failure.trap(Exception)
    return responses.render_error(request, failure.value, answers)


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

    def __init__(self, app, metrics=None, json_roots=(), long_poll=None, views=None):
        super().__init__()
        self.app = app
        #: endpoint -> its ``dispatcher`` (which returns a Deferred of the body)
        self.views = views or {}
        #: The waiting claims (``LongPoll``), answered at once at a stop.
        self.long_poll = long_poll
        #: First path segments (b"v2") of the versions whose unknown paths
        #: answer a JSON 404.
        self.json_roots = frozenset(json_roots)
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
                json_errors = bool(segments) and segments[0].encode() in self.json_roots
                return self._unmatched(request,
                                       responses.refused(request, e.code, json_errors))
            if len(self.matches) >= MATCH_CACHE:
                self.matches.clear()
            route = None if self.metrics is None else self.metrics.route(endpoint)
            match = self.matches[request.path] = self._view(endpoint), params, route
        view, params, route = match
        started = None if route is None else route.seconds()
        d = view(request, **params)
        if d.called and type(d.result) is bytes:
            # Answered already (a sqlite read): sent now, without running
            # two callbacks, each a tenth of a short request's Python.
            try:
                request.send(d.result)
            except Exception:
                _failed(Failure(), request)
            if route is not None:
                route.finished(request, started)
        elif route is None:
            d.addCallback(request.send)
            d.addErrback(_failed, request)
        else:  # the same callbacks, each counting the answer it gave
            d.addCallback(_write_counted, request, route, started)
            d.addErrback(_failed_counted, request, route, started)
        return NOT_DONE_YET

    def _view(self, endpoint):
        """What runs ``endpoint``: its dispatcher, called directly (Klein's
        ``execute_endpoint`` adds three calls and a coroutine check), or,
        for any other endpoint, Klein."""
        view = self.views.get(endpoint)
        if view is None:
            return functools.partial(self.app.execute_endpoint, endpoint)
        return view

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


def build_resource(driver, config, metrics=None, strategy=None, clock=None):
    """The root resource serving the API over ``driver`` (whose clock gives
    the time); with ``metrics``, also ``GET /metrics``. ``strategy``: the
    IAuthStrategy (default: ``[auth] strategy``'s, on the global reactor;
    None with noauth). ``clock`` times the long-poll claims' waits (None:
    the site's reactor)."""
    if strategy is None and config.auth.strategy != "noauth":
        from twisted.internet import reactor

        strategy = strategy_from_config(config, reactor)
    guard = None if strategy is None else Guard(strategy)
    app = Klein()
    metadata = MetadataCache(driver, config.drivers.queue_metadata_cache_seconds)
    long_poll = LongPoll(driver, config.transport, clock)
    v1 = V1API(driver, config, metadata, long_poll)
    apis = [v1, V1_1API(driver, config, metadata, long_poll),
            V2API(driver, config, metadata, long_poll), Versions()]
    views = {}
    for api in apis:
        for path, handlers in api.routes():
            views[path] = app.route(path, endpoint=path)(
                dispatcher(handlers, api, guard, route_kind(api.prefix, path)))
    for path, handlers in openapi.routes():
        views[path] = app.route(path, endpoint=path)(dispatcher(handlers, v1, guard, "public"))
    if metrics is not None:
        scrape = metrics.endpoint()
        app.route("/metrics", endpoint="/metrics")(
            scrape if guard is None else guard.admin_endpoint(scrape))
    return Router(app, metrics, json_roots=[api.prefix[1:].encode() for api in apis
                                            if api.json_errors and api.prefix != "/"],
                  long_poll=long_poll, views=views)
