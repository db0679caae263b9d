"""Fixtures of the client and CLI tests: the real server resource in-process.

The server is ``build_resource`` over an in-memory sqlite driver, reached
through ``treq.testing.StubTreq`` (no sockets). The few test-only resources
here wrap it to record requests or to answer 503/401 before it answers.
"""

from treq.testing import StubTreq
from twisted.internet import error as network
from twisted.internet.defer import fail
from twisted.internet.task import Clock
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from marconi_tx import config
from marconi_tx.client import Client
from marconi_tx.storage.sqlite.driver import SqliteDriver
from marconi_tx.transport.http.app import build_resource

BASE_URL = "http://marconi.test:8888"


class Server:
    """The real API resource over a fresh in-memory database.

    One L{Clock} drives the server's time and the client's timeouts and
    backoff sleeps.
    """

    def __init__(self, testcase, **limits):
        self.clock = Clock()
        self.driver = SqliteDriver(":memory:", self.clock)
        testcase.successResultOf(self.driver.open())
        testcase.addCleanup(self.driver.close)
        self.config = config.load(overrides=[
            ("limits:transport", name, str(value)) for name, value in limits.items()])
        self.resource = build_resource(self.driver, self.config)

    def client(self, resource=None, **kwargs):
        """A Client of this server (or of ``resource`` wrapping it)."""
        kwargs.setdefault("reactor", self.clock)
        return Client(BASE_URL, treq=StubTreq(resource or self.resource), **kwargs)


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
