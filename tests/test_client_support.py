"""Fixtures of the client and CLI tests: the real server resource in-process.

The server is ``marconi_tx.testing.StubServer`` over an in-memory sqlite
driver, reached through ``treq.testing.StubTreq`` (no sockets). The few test-only resources
here wrap it to record requests or to answer 503/401 before it answers.
"""

from twisted.internet import error as network
from twisted.internet.defer import fail
from twisted.internet.task import Clock
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from marconi_tx import config
from marconi_tx.storage.sqlite.driver import SqliteDriver
from marconi_tx.testing.server import URL, StubServer

BASE_URL = URL


class ClientServer(StubServer):
    """A ``StubServer`` whose clients speak API ``api`` unless told
    otherwise (``None``: they discover it)."""

    def __init__(self, driver, clock, settings, api):
        super().__init__(driver, clock, settings)
        self.api = api

    def client(self, resource=None, **kwargs):
        kwargs.setdefault("api", self.api)
        return super().client(resource, **kwargs)


def Server(testcase, api="v1", overrides=(), **limits):
    """The real API over a fresh in-memory sqlite database, with the
    ``[limits:transport]`` settings ``limits`` and the other settings
    ``overrides`` (``(section, name, value)``): a ``ClientServer`` whose one
    ``Clock`` drives the server's time and the clients' timeouts and
    backoff sleeps."""
    clock = Clock()
    driver = SqliteDriver(":memory:", clock)
    testcase.successResultOf(driver.open())
    testcase.addCleanup(driver.close)
    settings = config.load(overrides=[
        ("limits:transport", name, str(value)) for name, value in limits.items()
    ] + list(overrides))
    return ClientServer(driver, clock, settings, api)


class Delegating(Resource):
    """A leaf resource handing requests to the real one."""

    isLeaf = True

    def __init__(self, real):
        super().__init__()
        self.real = real

    def render(self, request):
        return self.real.render(request)


class Recording(Delegating):
    """Records each request's method, URI, headers and body, then delegates."""

    def __init__(self, real):
        super().__init__(real)
        self.requests = []

    def render(self, request):
        body = request.content.read()
        request.content.seek(0)
        self.requests.append(dict(
            method=request.method.decode(), uri=request.uri.decode(),
            headers={name.decode().lower(): [v.decode() for v in values]
                     for name, values in request.requestHeaders.getAllRawHeaders()},
            body=body))
        return super().render(request)

    def methods(self):
        return [r["method"] for r in self.requests]


class Hiding(Delegating):
    """Answers 404 (without a body, as a server without the route) for the
    paths ``hidden``, delegates the others: an older server."""

    def __init__(self, real, *hidden):
        super().__init__(real)
        self.hidden = {path.encode() for path in hidden}

    def render(self, request):
        if (request.path.rstrip(b"/") or b"/") in self.hidden:
            request.setResponseCode(404)
            return b""
        return super().render(request)


class UnavailableFirst(Delegating):
    """Answers the first ``failures`` requests with the API's 503 (storage
    unavailable, with ``Retry-After``), then delegates."""

    def __init__(self, real, failures, retry_after=None):
        super().__init__(real)
        self.failures, self.retry_after = failures, retry_after
        self.answered_503 = 0

    def render(self, request):
        if self.answered_503 >= self.failures:
            return super().render(request)
        self.answered_503 += 1
        request.setResponseCode(503)
        request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
        if self.retry_after is not None:
            request.setHeader(b"Retry-After", str(self.retry_after).encode())
        return (b'{"title": "Service temporarily unavailable", '
                b'"description": "Please try again in a few seconds."}')


class Fixed(Resource):
    """Answers every request with one status, content type and body."""

    isLeaf = True

    def __init__(self, status, body=b"", content_type=None):
        super().__init__()
        self.status, self.body, self.content_type = status, body, content_type
        self.count = 0

    def render(self, request):
        self.count += 1
        request.setResponseCode(self.status)
        if self.content_type:
            request.setHeader(b"Content-Type", self.content_type)
        return self.body


class Hanging(Resource):
    """Never answers."""

    isLeaf = True

    def render(self, request):
        return NOT_DONE_YET


class RefusingTreq:
    """A treq whose first ``refusals`` requests fail as a refused TCP
    connection does, then are sent through ``stub``."""

    def __init__(self, stub, refusals):
        self.stub, self.refusals = stub, refusals
        self.attempts = 0

    def request(self, *args, **kwargs):
        self.attempts += 1
        if self.attempts <= self.refusals:
            return fail(network.ConnectionRefusedError("Connection refused"))
        return self.stub.request(*args, **kwargs)

    def content(self, response):
        return self.stub.content(response)
