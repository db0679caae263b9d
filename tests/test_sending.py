"""transport/sending.py: answers leave on the socket at once, in order."""

import socket

from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.trial import unittest

from marconi_tx.transport.sending import send_now


class _Server(Protocol):
    def connectionMade(self):
        self.factory.connected.callback(self.transport)


class SendNowTests(unittest.TestCase):
    """send_now over a real TCP connection of the reactor, with a plain
    socket as the peer."""

    @defer.inlineCallbacks
    def setUp(self):
        factory = Factory.forProtocol(_Server)
        factory.connected = defer.Deferred()
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.peer = socket.create_connection(("127.0.0.1", port.getHost().port))
        self.addCleanup(self.peer.close)
        self.transport = yield factory.connected
        self.addCleanup(self.transport.loseConnection)

    def test_sent_before_the_next_turn(self):
        """On an idle connection the bytes are on the socket when send_now
        returns: the peer reads them while the reactor has not run again."""
        send_now(self.transport, b"INSERTED 1\r\n")
        self.peer.settimeout(5)
        self.assertEqual(self.peer.recv(100), b"INSERTED 1\r\n")

    @defer.inlineCallbacks
    def test_behind_buffered_bytes(self):
        """Bytes the transport still buffers go first: send_now then only
        buffers too, and the peer reads both in order once the reactor has
        sent them."""
        self.transport.write(b"first ")
        send_now(self.transport, b"second")
        self.peer.setblocking(False)
        self.assertRaises(BlockingIOError, self.peer.recv, 100)
        received = b""
        for _ in range(500):  # 5 s at most
            if len(received) >= 12:
                break
            yield deferLater(reactor, 0.01, lambda: None)
            try:
                received += self.peer.recv(100, socket.MSG_DONTWAIT)
            except BlockingIOError:
                pass
        self.assertEqual(received, b"first second")
