"""A real HTTP receiver of webhook deliveries, in the test process: a
twisted.web Site on a free 127.0.0.1 port recording what it is sent."""

import json

from twisted.internet import defer, endpoints, reactor, task
from twisted.web import resource, server


class Receiver(resource.Resource):
    """
    Records every request (method, path, headers, body) and answers as
    ``self.mode`` says: an int status (200, 500, ...), or "hang" (never
    answer: the request is kept until ``release``).
    """

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.requests = []  # (method, path, headers dict, body bytes)
        self.mode = 200
        self.hung = []
        self._waiting = []  # (count, Deferred)

    def render(self, request):
        headers = {k.decode().lower(): v[-1].decode("latin-1")
                   for k, v in request.requestHeaders.getAllRawHeaders()}
        self.requests.append((request.method.decode(), request.path.decode(), headers,
                              request.content.read()))
        for entry in list(self._waiting):
            if len(self.requests) >= entry[0]:
                self._waiting.remove(entry)
                entry[1].callback(None)
        if self.mode == "hang":
            self.hung.append(request)
            request.notifyFinish().addErrback(lambda _: None)
            return server.NOT_DONE_YET
        request.setResponseCode(self.mode)
        return b"{}"

    def received(self, count):
        """A Deferred firing once ``count`` requests have come in."""
        if len(self.requests) >= count:
            return defer.succeed(None)
        d = defer.Deferred()
        self._waiting.append((count, d))
        return d

    def bodies(self):
        return [json.loads(body) for _, _, _, body in self.requests]


async def start_receiver(test):
    """A listening Receiver (stopped at the test's cleanup) and its URL."""
    receiver = Receiver()
    site = server.Site(receiver)
    site.noisy = False
    connections = []
    build = site.buildProtocol

    def tracked(address):
        protocol = build(address)
        connections.append(protocol)
        return protocol

    site.buildProtocol = tracked
    port = await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)

    async def stop():
        lost = []
        for protocol in connections:
            transport = getattr(protocol, "transport", None)
            if transport is not None and transport.connected:
                d = defer.Deferred()
                lost.append(d)
                protocol.connectionLost = _then(protocol.connectionLost, d)
                transport.abortConnection()
        await port.stopListening()
        await defer.gatherResults(lost)
        for _ in range(3):  # the client ends hear of it
            await task.deferLater(reactor, 0, lambda: None)

    test.addCleanup(stop)
    return receiver, f"http://127.0.0.1:{port.getHost().port}/hook"


def _then(call, d):
    def wrapper(reason):
        try:
            return call(reason)
        finally:
            d.callback(None)

    return wrapper
