"""Driving the real HTTP resource in-process through treq's StubTreq."""

import json
from dataclasses import dataclass

from treq.testing import StubTreq
from twisted.internet import task
from twisted.python.failure import Failure

from marconi_tx import config
from marconi_tx.transport.http.app import build_resource

CLIENT_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
OTHER_CLIENT_ID = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"


@dataclass
class Answer:
    code: int
    headers: dict  # lower-case name -> last value (str)
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


class ApiClient:
    """Requests against ``build_resource(driver)``; works with drivers whose
    Deferreds fire later (a real network engine) as well as at once."""

    def __init__(self, driver, settings=None):
        self.settings = settings or config.load()
        self.stub = StubTreq(build_resource(driver, self.settings))

    async def request(self, method, path, body=None, headers=None, project=None,
                      client_id=CLIENT_ID):
        sent = {}
        if client_id is not None:
            sent["Client-ID"] = client_id
        if project is not None:
            sent["X-Project-ID"] = project
        sent.update(headers or {})
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode("utf-8")
        d = self.stub.request(method, "http://localhost" + path, data=body, headers=sent)
        response = await self._settle(d)
        content = await self._settle(response.content())
        headers = {k.decode().lower(): v[-1].decode("utf-8")
                   for k, v in response.headers.getAllRawHeaders()}
        return Answer(response.code, headers, content)

    async def _settle(self, d):
        """Pump the in-memory connection until ``d`` has its result.

        (``d.called`` is not enough: treq's Deferreds are "called" while
        still paused on an inner Deferred.)"""
        from twisted.internet import reactor

        outcome = []
        d.addBoth(outcome.append)
        self.stub.flush()
        while not outcome:
            await task.deferLater(reactor, 0.001, lambda: None)
            self.stub.flush()
        if isinstance(outcome[0], Failure):
            outcome[0].raiseException()
        return outcome[0]

    # Shorthands for the common calls.
    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body, **kw)

    async def post_messages(self, queue, count, ttl=300, first=0, **kw):
        """Post ``count`` messages with bodies {"n": first..}; their ids."""
        answer = await self.post(f"/v1/queues/{queue}/messages",
                                 [{"ttl": ttl, "body": {"n": first + i}} for i in range(count)],
                                 **kw)
        assert answer.code == 201, (answer.code, answer.body)
        return [href.rsplit("/", 1)[1] for href in answer.json["resources"]]


def message_id(href):
    return href.split("?")[0].rsplit("/", 1)[1]


def claim_id_of(answer):
    return answer.headers["location"].rsplit("/", 1)[1]


def new_clock():
    clock = task.Clock()
    clock.advance(1_700_000_000)
    return clock



class ApiOverDriverMixin:
    """Opens ``make_driver(clock)`` on a fresh clock and serves it to
    ``self.api``; the driver closes at cleanup."""

    async def setUp(self):
        self.clock = new_clock()
        self.driver = self.make_driver(self.clock)
        await self.driver.open()
        self.addCleanup(self.driver.close)
        self.api = ApiClient(self.driver)
