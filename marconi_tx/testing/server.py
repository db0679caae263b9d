"""``StubServer``: the real HTTP API in-process, for tests of client code.

The server is the daemon's own resource (``build_resource``) over a
``MemoryDriver``; its clients are ``marconi_tx.client.Client`` objects
whose requests go through ``treq.testing.StubTreq``: no socket, no reactor
running, every answer there as soon as the request is made. One
``task.Clock`` is the storage's time and the clients' (timeouts, retry
sleeps): advancing it ages messages and expires claims, and a client
retrying a 503 waits until the test advances it past the backoff (or is
made with ``retries=0``).
"""

from treq.testing import StubTreq
from twisted.internet.task import Clock

from marconi_tx import config
from marconi_tx.client import Client
from marconi_tx.testing.memory import MemoryDriver
from marconi_tx.transport.http.app import build_resource

#: The base URL clients of a StubServer are given (nothing resolves it).
URL = "http://marconi.test"


class StubServer:
    """
    The API over ``driver`` (by default a new, opened ``MemoryDriver`` on
    ``clock``), with the settings ``settings`` (by default
    ``config.load()``: the daemon's defaults).

    @ivar clock: the ``task.Clock`` of the server and of its clients.
    @ivar driver: the storage, for a test to inspect or close (closed, it
        answers 503 as a daemon whose storage is down does).
    @ivar resource: the API's root resource.
    """

    def __init__(self, driver=None, clock=None, settings=None):
        """
        @param driver: an opened driver whose calls answer without the
            reactor running (as ``MemoryDriver``'s do); its clock should be
            ``clock``.
        @param clock: the ``task.Clock`` to use (a new one by default).
        """
        self.clock = Clock() if clock is None else clock
        if driver is None:
            driver = MemoryDriver(self.clock)
            driver.open()
        self.driver = driver
        self.resource = build_resource(driver, config.load() if settings is None else settings,
                                       clock=self.clock)
        self._stubs = []

    def client(self, resource=None, **kwargs):
        """
        A ``Client`` of this server (or of ``resource``, for instance one
        wrapping ``self.resource`` to record requests); ``kwargs`` go to
        ``Client`` (``project``, ``client_id``, ``retries``, ...).
        """
        kwargs.setdefault("reactor", self.clock)
        stub = StubTreq(resource or self.resource)
        self._stubs.append(stub)
        return Client(URL, treq=stub, **kwargs)

    def flush(self):
        """Deliver the answers given after their request was made (a
        long-poll claim answered by a later post, or when its wait runs
        out on the clock) to the clients."""
        for stub in self._stubs:
            stub.flush()
