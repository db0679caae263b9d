"""The raw ceiling: the floor of any HTTP server on this Python and reactor.

A bare Twisted ``Protocol`` that parses nothing but the framing of its
requests and writes the same fixed HTTP/1.1 answer to each: no
``twisted.web``, no header objects, no date header, no access log. It is
what the reactor alone costs per request (a read, a write, the Python of
one ``dataReceived``), so that ``bench.ceiling`` (bare ``twisted.web``) and
marconi_tx can be read against it too.

What it does with the bytes it receives, exactly:

* A request is complete once its head has ended (``\\r\\n\\r\\n``) and, if
  the head has a ``Content-Length``, that many body bytes have followed
  (found by a case-insensitive search of the head; chunked bodies are not
  supported: wrk sends none).
* Each complete request gets one answer, in order, so pipelined requests
  are answered one each; the answers to the requests completed by one
  ``dataReceived`` go out in one ``write``.
* The answer is 201 to a head starting with ``POST`` (as marconi_tx answers
  a post), 200 to anything else, always with the same body as
  ``bench.ceiling``; the connection stays open (keep-alive) until the
  client closes it.

Run it as ``python -m bench.raw_ceiling PORT`` (or a strports description).
"""

import sys

from twisted.internet import endpoints, protocol, reactor

from bench.ceiling import BODY


def _answer(status):
    return (f"HTTP/1.1 {status}\r\nContent-Length: {len(BODY)}\r\n"
            f"Content-Type: application/json; charset=utf-8\r\n\r\n").encode() + BODY


OK = _answer("200 OK")
CREATED = _answer("201 Created")

HEAD_END = b"\r\n\r\n"
LENGTH = b"\r\ncontent-length:"


def body_length(head):
    """The Content-Length of ``head`` (bytes up to its blank line), 0 if none."""
    at = head.lower().find(LENGTH)
    if at < 0:
        return 0
    start = at + len(LENGTH)
    end = head.find(b"\r\n", start)
    return int(head[start:end if end >= 0 else len(head)].strip() or 0)


def answers(buffer):
    """
    The answers to the complete requests at the start of ``buffer``.

    @return: (the bytes to write, the bytes left over: an incomplete request).
    """
    out = []
    while True:
        end = buffer.find(HEAD_END)
        if end < 0:
            break
        head = buffer[:end]
        length = body_length(head)
        total = end + len(HEAD_END) + length
        if len(buffer) < total:
            break
        out.append(CREATED if head.startswith(b"POST") else OK)
        buffer = buffer[total:]
    return b"".join(out), buffer


class FixedAnswer(protocol.Protocol):
    """One connection: answers each complete request with the fixed answer."""

    def connectionMade(self):
        self.buffer = b""

    def dataReceived(self, data):
        out, self.buffer = answers(self.buffer + data)
        if out:
            self.transport.write(out)


def serve(argv, protocol_class):
    """Serve ``protocol_class`` on ``argv[1]`` (a port number or a strports
    description) until the process is stopped."""
    description = argv[1]
    if description.isdigit():
        description = f"tcp:{description}:interface=127.0.0.1"
    endpoint = endpoints.serverFromString(reactor, description)
    endpoint.listen(protocol.Factory.forProtocol(protocol_class))
    reactor.run()


def main(argv):
    serve(argv, FixedAnswer)


if __name__ == "__main__":
    main(sys.argv)
