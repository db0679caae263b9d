"""The line ceiling: the floor of any line-protocol server on this Python and reactor.

A bare Twisted ``Protocol`` that splits its input into lines and answers each
command of ``bench.line_cycle`` with a fixed reply: it stores nothing,
checks nothing and keeps no job. It is what the reactor alone costs per
command (a read, a write, the Python of one ``dataReceived``), so that
marconi_tx's line endpoint and beanstalkd can be read against it.

What it answers, exactly (a command is a line ending in ``\\r\\n``):

* ``put <pri> <delay> <ttr> <bytes>``: the next ``<bytes>`` + 2 bytes are the
  job's body; then ``INSERTED 1``.
* ``reserve`` and ``reserve-with-timeout <s>``: ``RESERVED 1 <n>`` and the
  body of the last put on this connection (``job`` before any).
* ``delete <id>``: ``DELETED``.
* ``use <tube>``: ``USING <tube>``; ``watch`` and ``ignore``: ``WATCHING 1``.
* anything else: ``UNKNOWN_COMMAND``.

The replies to the commands completed by one ``dataReceived`` go out
together, sent at once as marconi_tx's line endpoint sends them
(``marconi_tx.transport.sending.send_now``). Run it as
``python -m bench.line_ceiling PORT`` (or a strports description).
"""

import sys

from twisted.internet import protocol

from bench import raw_ceiling
from marconi_tx.transport.sending import send_now

CRLF = b"\r\n"


class FixedReplies(protocol.Protocol):
    """One connection: a fixed reply to each complete command."""

    def connectionMade(self):
        self.buffer = b""
        self.body = b"job"

    def dataReceived(self, data):
        buffer = self.buffer + data
        out = []
        while True:
            end = buffer.find(CRLF)
            if end < 0:
                break
            words = buffer[:end].split()
            command = words[0] if words else b""
            if command == b"put":
                size = int(words[4])
                total = end + 2 + size + 2
                if len(buffer) < total:
                    break  # the body has not all come
                self.body = buffer[end + 2:end + 2 + size]
                buffer = buffer[total:]
                out.append(b"INSERTED 1\r\n")
                continue
            buffer = buffer[end + 2:]
            if command in (b"reserve", b"reserve-with-timeout"):
                out.append(b"RESERVED 1 %d\r\n%s\r\n" % (len(self.body), self.body))
            elif command == b"delete":
                out.append(b"DELETED\r\n")
            elif command == b"use":
                out.append(b"USING %s\r\n" % words[1])
            elif command in (b"watch", b"ignore"):
                out.append(b"WATCHING 1\r\n")
            else:
                out.append(b"UNKNOWN_COMMAND\r\n")
        self.buffer = buffer
        if out:
            send_now(self.transport, b"".join(out))


def main(argv):
    raw_ceiling.serve(argv, FixedReplies)


if __name__ == "__main__":
    main(sys.argv)
