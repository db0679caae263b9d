"""Driving the real HTTP API in-process: the daemon's Site through treq's
StubTreq (in-memory connections, no socket)."""

import json
from dataclasses import dataclass

from treq.testing import StubTreq
from twisted.internet import defer, task
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from marconi_tx import config
from marconi_tx.auth.strategies import strategy_from_config
from marconi_tx.tap import _max_body
from marconi_tx.transport.http.app import build_resource
from marconi_tx.transport.http.site import make_site

CLIENT_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
OTHER_CLIENT_ID = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
#: The time the tests' clocks start at (epoch seconds: November 2023).
START = 1_700_000_000


@dataclass
class Answer:
    code: int
    headers: dict  # lower-case name -> last value (str)
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


def stub_treq(site):
    """treq's StubTreq, its requests served by ``site`` (made by
    ``make_site``: its channels and requests, the fast path on or off).

    StubTreq wraps the resource it is given in a plain twisted.web Site
    (whose requests the API adopts: ``site.adopt``); it has no public way
    to take a Site, so its agent's is replaced."""
    stub = StubTreq(site.resource)
    stub._agent._serverFactory = site
    return stub


class ApiClient:
    """
    Requests to the real API over ``driver`` (with ``metrics``: also
    ``/metrics``), served by the daemon's Site (``fast``: the fast path on
    or off) through StubTreq.

    ``reactor`` (a ``task.Clock``, by default a fresh one) is the site's
    (Date, the health probe's timeout) and should be the driver's: after
    each exchange the calls it has due now run (a group commit's end of
    turn), until nothing is left to deliver. A driver answering then (sqlite
    on a clock) is answered without the real reactor turning: anything else
    fails, unless ``waits`` (a network engine, which answers later), when
    the real reactor turns until the answer is there.
    """

    def __init__(self, driver, settings=None, metrics=None, reactor=None, fast=True,
                 waits=False, access_log=None):
        self.settings = settings or config.load()
        self.reactor = new_clock() if reactor is None else reactor
        self.waits = waits
        #: The ``[auth] strategy`` serving the requests (None: noauth).
        self.strategy = strategy_from_config(self.settings, self.reactor)
        self.site = site = make_site(build_resource(driver, self.settings, metrics,
                                                    self.strategy),
                                     _max_body(self.settings), access_log=access_log,
                                     fast=fast)  # as the daemon's
        site.reactor = self.reactor
        self.stub = stub_treq(site)

    async def request(self, method, path, body=None, headers=None, project=None,
                      client_id=CLIENT_ID, settle=True):
        sent = {}
        if client_id is not None:
            sent["Client-ID"] = client_id
        if project is not None:
            sent["X-Project-ID"] = project
        sent.update(headers or {})
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode("utf-8")
        d = self.stub.request(method, "http://localhost" + path, data=body, headers=sent)
        response = await (self._settle(d) if settle else d)
        content = await (self._settle(response.content()) if settle else response.content())
        headers = {k.decode().lower(): v[-1].decode("utf-8")
                   for k, v in response.headers.getAllRawHeaders()}
        return Answer(response.code, headers, content)

    def start(self, method, path, body=None, headers=None, project=None,
              client_id=CLIENT_ID):
        """Send a request and return at once: a Deferred firing with its
        Answer once ``settle`` (or another exchange) has delivered it."""
        return defer.ensureDeferred(self.request(method, path, body, headers, project,
                                                 client_id, settle=False))

    async def settle(self, d):
        """The result of ``d``, once the exchange is pumped (as ``request``)."""
        return await self._settle(d)

    def _pump(self):
        """Deliver what either end wrote and run the reactor's calls due
        now, until neither has anything left."""
        self.stub.flush()
        while any(call.getTime() <= self.reactor.seconds()
                  for call in self.reactor.getDelayedCalls()):
            self.reactor.advance(0)
            self.stub.flush()

    async def _settle(self, d):
        """The result of ``d``, once the exchange is pumped.

        (``d.called`` is not enough: treq's Deferreds are "called" while
        still paused on an inner Deferred.)"""
        outcome = []
        d.addBoth(outcome.append)
        self._pump()
        while not outcome:
            if not self.waits:
                raise AssertionError("no answer without the real reactor: a driver that "
                                     "answers later needs ApiClient(..., waits=True)")
            from twisted.internet import reactor

            await task.deferLater(reactor, 0.001, lambda: None)
            self._pump()
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
    """A MemoryReactorClock (a ``task.Clock`` that is also a reactor without
    threads) at ``START``: the time and timers of a driver and a site."""
    clock = MemoryReactorClock()
    clock.advance(START)
    return clock


class ApiOverDriverMixin:
    """
    Opens ``make_driver(clock)`` on a fresh clock (``new_clock``, also the
    driver's reactor) and serves it to ``self.api``; the driver closes at
    cleanup.

    ``fast``: the site's fast path on or off. ``waits``: the driver may
    answer later, on the real reactor (a network engine); a suite over one
    that answers at once sets it False, and any wait is then a failure.
    """

    fast = True
    waits = True

    async def setUp(self):
        self.clock = new_clock()
        self.driver = self.make_driver(self.clock)
        await self.driver.open()
        self.addCleanup(self.driver.close)
        self.api = self.api_client()

    def api_client(self, settings=None):
        """A client of ``self.driver``, as ``self.api`` (with ``settings``)."""
        return ApiClient(self.driver, settings, reactor=self.clock, fast=self.fast,
                         waits=self.waits)
