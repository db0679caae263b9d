"""A client that pipelines requests and never reads the answers (issue 19.4):
the daemon stops reading its requests while too much of its output is
unsent, instead of answering them all into memory."""

import json
import os
import re
import socket
import time
import urllib.request

from twisted.internet import reactor, task
from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from marconi_tx.transport.http.site import make_site
from tests.daemon import Daemon
from tests.http_support import CLIENT_ID


class _Answers(Resource):
    """Answers every GET with ``body``: at once, or (``hold``) when the test
    says so."""

    isLeaf = True

    def __init__(self, body, hold=False):
        super().__init__()
        self.body = body
        self.hold = hold
        self.rendered = []

    def render_GET(self, request):
        self.rendered.append(request)
        if self.hold:
            return NOT_DONE_YET
        request.setHeader(b"content-length", b"%d" % len(self.body))
        return self.body


def _get(n, close=False):
    """``n`` pipelined GETs of /0, /1...; the last one closes if ``close``."""
    last = b"Connection: close\r\n" if close else b""
    return b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n%s\r\n" % (i, last if i == n - 1 else b"")
                    for i in range(n))


class ChannelPausingTests(unittest.SynchronousTestCase):
    """The channel's side of the producer/consumer exchange, driven by hand."""

    def test_next_request_waits_while_output_is_paused(self):
        """A pipelined request is not started while the transport has
        paused the channel (its buffer above the bound): the channel stops
        reading and keeps the bytes; once resumed, it serves them in order."""
        resource = _Answers(b"ok", hold=True)
        site = make_site(resource, max_body=1000)
        site.timeOut = None
        channel = site.buildProtocol(None)
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(_get(3))
        self.assertEqual(len(resource.rendered), 1)
        channel.pauseProducing()  # what a full transport does
        first = resource.rendered[0]
        channel.send_whole(first, b"ok")
        self.assertEqual(len(resource.rendered), 1)
        self.assertEqual(transport.producerState, "paused")
        channel.dataReceived(_get(1))  # still arriving: kept, not started
        self.assertEqual(len(resource.rendered), 1)
        channel.resumeProducing()  # the transport has sent everything
        self.assertEqual(transport.producerState, "producing")
        self.assertEqual([r.path for r in resource.rendered], [b"/0", b"/1"])
        for expected in (b"/2", b"/0"):
            channel.send_whole(resource.rendered[-1], b"ok")
            self.assertEqual(resource.rendered[-1].path, expected)
        self.assertEqual(transport.value().count(b"HTTP/1.1 200 OK"), 3)

    def test_bound_is_the_transports_buffer_size(self):
        """The site's max_unsent is the bound at which a TCP transport
        pauses its channel."""
        site = make_site(Resource(), max_body=1000, max_unsent=12345)
        site.timeOut = None
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = socket.create_connection(("127.0.0.1", port.getHost().port))
        self.addCleanup(client.close)
        while not site.connections:
            reactor.iterate(0.01)
        [channel] = list(site.connections)
        self.assertEqual(channel.transport.bufferSize, 12345)


class NeverReadingClientTests(unittest.TestCase):
    """Over a real TCP connection in this process."""

    BODY = b"x" * (1 << 20)
    REQUESTS = 30

    async def test_stops_reading_then_serves_everything(self):
        """A client pipelining 30 requests for 1 MiB answers without reading
        gets a few answered, then the connection stops reading (the rest
        stay unstarted); once the client reads, all 30 arrive, in order."""
        resource = _Answers(self.BODY)
        site = make_site(resource, max_body=1000, max_unsent=64 * 1024)
        site.timeOut = None
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = socket.socket()
        self.addCleanup(client.close)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(("127.0.0.1", port.getHost().port))
        client.sendall(_get(self.REQUESTS, close=True))
        client.setblocking(False)
        while not site.connections:
            await task.deferLater(reactor, 0.01, lambda: None)
        [channel] = list(site.connections)
        while not channel.paused and len(resource.rendered) < self.REQUESTS:
            await task.deferLater(reactor, 0.01, lambda: None)
        self.assertTrue(channel.paused)
        self.assertLess(len(resource.rendered), 4)
        self.assertNotIn(channel.transport, reactor.getReaders())

        received = []
        while True:  # until the server closes, after the last answer
            try:
                data = client.recv(1 << 20)
            except BlockingIOError:
                await task.deferLater(reactor, 0.001, lambda: None)
                continue
            if not data:
                break
            received.append(data)
        received = b"".join(received)
        self.assertEqual(received.count(b"HTTP/1.1 200 OK\r\n"), self.REQUESTS)
        self.assertEqual(len(re.sub(rb"HTTP/1.1 200 OK\r\n.*?\r\n\r\n", b"", received,
                                    flags=re.S)), self.REQUESTS * len(self.BODY))
        self.assertEqual([r.path for r in resource.rendered],
                         [b"/%d" % i for i in range(self.REQUESTS)])


def _rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


class DaemonUnderNeverReadingClientTests(unittest.TestCase):
    """The real twistd, as issue 19.4 measured it."""

    REQUESTS = 1000

    def call(self, daemon, method, path, body=None):
        request = urllib.request.Request(
            daemon.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Client-ID": CLIENT_ID})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status

    def test_rss_growth_bounded(self):
        """1,000 pipelined GET .../messages?limit=20 (answers of about 1 MiB)
        from a socket that never reads grow the daemon's RSS by less than
        64 MiB, and it answers only a few of them (it stopped reading); it
        used to answer all of them into memory (3.9 GiB)."""
        workdir = os.path.abspath(self.mktemp())
        os.makedirs(workdir)
        access_log = os.path.join(workdir, "access.log")
        conf = os.path.join(workdir, "marconi.conf")
        with open(conf, "w") as f:
            f.write(f"[drivers]\naccess_log = {access_log}\n")
        daemon = Daemon(workdir, "--config", conf, "--storage",
                        f"sqlite:{workdir}/m.db").start()
        self.addCleanup(daemon.stop)
        self.assertEqual(self.call(daemon, "PUT", "/v1/queues/big"), 201)
        for _ in range(5):
            messages = [{"ttl": 3600, "body": "b" * 50_000} for _ in range(4)]
            self.call(daemon, "POST", "/v1/queues/big/messages", messages)

        def answered():
            with open(access_log) as f:
                return sum(1 for line in f if "/messages?limit=20" in line)

        before = _rss_kib(daemon.process.pid)
        client = socket.socket()
        self.addCleanup(client.close)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(("127.0.0.1", daemon.port))
        client.setblocking(False)
        pipeline = (b"GET /v1/queues/big/messages?limit=20&echo=true HTTP/1.1\r\n"
                    b"Host: x\r\nClient-ID: " + CLIENT_ID.encode() + b"\r\n\r\n") * self.REQUESTS
        peak, counts = before, []
        # Until the daemon has answered nothing more for 2 s (it stopped
        # reading) or has answered everything (it did not).
        while len(counts) < 8 or len(set(counts[-8:])) > 1:
            if pipeline:
                try:
                    pipeline = pipeline[client.send(pipeline):]
                except BlockingIOError:
                    pass
            time.sleep(0.25)
            peak = max(peak, _rss_kib(daemon.process.pid))
            counts.append(answered())
            if counts[-1] == self.REQUESTS:
                break
        growth_mib = (peak - before) / 1024
        print(f"\nnever-reading client: {counts[-1]} of {self.REQUESTS} answered, "
              f"RSS {before / 1024:.0f} -> {peak / 1024:.0f} MiB (+{growth_mib:.1f} MiB)")
        self.assertLess(counts[-1], 10)
        self.assertLess(growth_mib, 64)
