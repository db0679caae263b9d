"""The ceiling: the fastest answer this Python and reactor can give.

A bare ``twisted.web`` resource that answers every request with the same
small JSON body: no routing, no validation, no storage, no access log, no
form parsing. The
harness runs it as its own process (``python -m bench.ceiling PORT``) and
loads it with the same wrk as marconi_tx, in the same run, so that every
marconi_tx rate can be read as a fraction of it.
"""

import sys

from twisted.internet import endpoints, reactor
from twisted.web import resource, server

#: About the size of a small marconi_tx answer (a claim of one message).
BODY = b'{"partial": false, "resources": ["/v1/queues/bench/messages/1"]}'


class FixedJSON(resource.Resource):
    """Every path: ``BODY``, with 201 for a POST (as a marconi_tx post) and
    200 for any other method."""

    isLeaf = True

    def render(self, request):
        if request.method == b"POST":
            request.setResponseCode(201)
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        return BODY


class QuietSite(server.Site):
    """A ``Site`` that writes no access log: the ceiling counts only HTTP."""

    def log(self, request):
        pass


def make_site():
    # No form parsing either: twisted.web would otherwise parse the
    # Content-Type of every POST with the email package, a cost a JSON API
    # does not have to pay.
    return QuietSite(FixedJSON(), parsePOSTFormSubmission=False)


def main(argv):
    """Serve on ``argv[1]``: a port number or a strports description."""
    description = argv[1]
    if description.isdigit():
        description = f"tcp:{description}:interface=127.0.0.1"
    endpoint = endpoints.serverFromString(reactor, description)
    endpoint.listen(make_site())
    reactor.run()


if __name__ == "__main__":
    main(sys.argv)
