"""The whole-head fast path: head.parse, and Channel handing its result to
twisted.web with the same outcome as twisted.web's own parser."""

import re

from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from twisted.web.resource import Resource

from marconi_tx.transport.http import head
from marconi_tx.transport.http.site import ApiRequest, Channel, FastRequest, make_site

TYPICAL = (b"POST /v1/queues/q/messages?echo=true HTTP/1.1\r\nHost: 127.0.0.1:8888\r\n"
           b"client-id: 3f2504e0-4f89-11d3-9a0c-0305e82c3301\r\n"
           b"Content-Type:application/json \t\r\nContent-Length: 12\r\n"
           b"X-Note: one\r\nx-note: two")


class ParseTests(unittest.SynchronousTestCase):
    def test_typical_head(self):
        """Method, target and version as sent; header names in twisted.web's
        canonical case; values without surrounding blanks, repeated ones in
        order; the declared length."""
        method, target, version, headers, length = head.parse(TYPICAL, 500)
        self.assertEqual((method, target, version, length),
                         (b"POST", b"/v1/queues/q/messages?echo=true", b"HTTP/1.1", 12))
        self.assertEqual(headers, {
            b"Host": [b"127.0.0.1:8888"],
            b"Client-Id": [b"3f2504e0-4f89-11d3-9a0c-0305e82c3301"],
            b"Content-Type": [b"application/json"],
            b"Content-Length": [b"12"],
            b"X-Note": [b"one", b"two"],
        })

    def test_no_body_declared(self):
        """Without Content-Length (or with 0) the length is 0."""
        self.assertEqual(head.parse(b"GET / HTTP/1.0", 500), (b"GET", b"/", b"HTTP/1.0", {}, 0))
        self.assertEqual(head.parse(b"PUT /x HTTP/1.1\r\nContent-Length: 0", 500)[4], 0)

    def test_unusual_heads_left_to_twisted(self):
        """Whatever twisted.web might answer otherwise than by taking the
        head as it is gets None."""
        request_line = b"GET /v1 HTTP/1.1"
        for bad in [
            b"",
            b"GET  /v1 HTTP/1.1",
            b"GE(T /v1 HTTP/1.1",
            b"GET /v 1 HTTP/1.1",
            b"GET /v\x7f\xb1 HTTP/1.1",
            b"GET /v1 HTTP/2.0",
            b"GET /v1 http/1.1",
            request_line + b"\r\nHost x",
            request_line + b"\r\n: empty name",
            request_line + b"\r\nHost : x",
            request_line + b"\r\nX-A: one\r\n  folded",
            request_line + b"\r\nX-A: n\x00l",
            request_line + b"\r\nX-A: bare\rcr",
            request_line + b"\r\nX-A: bare\nlf",
            request_line + b"\r\nTransfer-Encoding: chunked",
            request_line + b"\r\nContent-Length: 1\r\nContent-Length: 1",
            request_line + b"\r\nContent-Length: -1",
            request_line + b"\r\nContent-Length: 1e3",
            request_line + b"\r\nContent-Length: 1" + b"0" * head.MAX_LENGTH_DIGITS,
            request_line + b"\r\nContent-Length: " + b"9" * 5000,
        ]:
            self.assertIsNone(head.parse(bad, 500), bad)

    def test_header_count_limit(self):
        """More headers than allowed: None (twisted.web answers 400)."""
        lines = b"GET / HTTP/1.1" + b"\r\nX-A: 1" * 3
        self.assertIsNotNone(head.parse(lines, 3))
        self.assertIsNone(head.parse(lines, 2))

    def test_installed_twisted_is_supported(self):
        """The installed Twisted has the internals the fast path sets, so
        make_site's channels parse whole heads and its requests are
        FastRequests (were they gone, heads would go to twisted.web and this
        fails); with fast=False neither."""
        self.assertTrue(head.SUPPORTED)
        fast = make_site(Resource(), max_body=1000)
        self.assertTrue(fast.protocol.fast_heads)
        self.assertTrue(issubclass(fast.requestFactory, FastRequest))
        plain = make_site(Resource(), max_body=1000, fast=False)
        self.assertFalse(plain.protocol.fast_heads)
        self.assertFalse(issubclass(plain.requestFactory, FastRequest))


class HeaderAccessTests(unittest.SynchronousTestCase):
    """FastRequest reads and sets headers in the Headers' dict; the result
    is what ApiRequest's plain twisted.web calls give."""

    def requests(self):
        from twisted.web.test.requesthelper import DummyChannel

        return [kind(DummyChannel()) for kind in (FastRequest, ApiRequest)]

    def test_same_as_get_header(self):
        """A request header read directly is what getHeader gives: the last
        of repeated values, None when absent."""
        for request in self.requests():
            request.requestHeaders.addRawHeader(b"x-note", b"one")
            request.requestHeaders.addRawHeader(b"X-Note", b"two")
            request.requestHeaders.addRawHeader(b"client-id", b"c")
            for name in (b"X-Note", b"Client-Id", b"Accept"):
                self.assertEqual(request.header(name), request.getHeader(name))
            self.assertEqual(request.header(b"X-Note"), b"two")

    def test_same_as_set_header(self):
        """A clean header set directly replaces an earlier value and reads
        back exactly as one set through setHeader."""
        requests = self.requests()
        for request in requests:
            request.setHeader(b"content-length", b"1")
            request.set_clean_header(b"Content-Length", b"12")
            request.set_clean_header(b"Date", b"Fri, 02 Jan 1970 00:00:00 GMT")
        direct, checked = requests
        self.assertEqual(list(direct.responseHeaders.getAllRawHeaders()),
                         list(checked.responseHeaders.getAllRawHeaders()))
        self.assertEqual(direct.responseHeaders.getRawHeaders(b"content-length"), [b"12"])


class _Record(Resource):
    """Notes what each request carried; answers a small fixed body."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.seen = []

    def render(self, request):
        self.seen.append((request.method, request.uri, request.clientproto,
                          sorted(request.requestHeaders.getAllRawHeaders()),
                          request.content.read()))
        request.setHeader(b"content-length", b"2")
        return b"ok"


class _Counting(Channel):
    begun = 0

    def _begin(self, *parsed):
        self.begun += 1
        return super()._begin(*parsed)


VALID = {
    "get": [b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"],
    "post with its body": [TYPICAL + b"\r\n\r\n[1,2,3,4,56]"],
    "body read later": [TYPICAL + b"\r\n\r\n", b"[1,2,3,", b"4,56]"],
    "pipelined": [b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"],
    "pipelined after a body": [b"PUT /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
                               b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"],
    "http/1.0 closes": [b"GET /a HTTP/1.0\r\n\r\n", b"GET /ignored HTTP/1.0\r\n\r\n"],
    "connection close": [b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n"],
    "expect continue": [b"PUT /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
                        b"{}"],
    "empty body": [b"POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n"],
    "query and escapes": [b"GET /a%2Fb/c?x=1&y=%20 HTTP/1.1\r\nHost: x\r\n\r\n"],
}
#: Valid requests whose heads twisted.web parses (the fast path declines).
LEFT_TO_TWISTED = {
    "head in two reads": [b"GET /a HTTP/1.1\r\nHo", b"st: x\r\n\r\n"],
    "folded header": [b"GET /a HTTP/1.1\r\nX-A: 1\r\n 2\r\n\r\n"],
    "zero-padded length": [b"PUT /a HTTP/1.1\r\nContent-Length: " + b"0" * 30 + b"2\r\n\r\n{}"],
}

INVALID = {
    "nul in a value": [b"GET /a HTTP/1.1\r\nX-A: \x00\r\n\r\n"],
    "two lengths": [b"POST /a HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"],
    "chunked and length": [b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                           b"Content-Length: 3\r\n\r\n2\r\n{}\r\n0\r\n\r\n"],
    "bad version": [b"GET /a HTTP/3\r\n\r\n"],
    "bad target": [b"GET /\x01 HTTP/1.1\r\n\r\n"],
    "too many headers": [b"GET /a HTTP/1.1\r\n" + b"X-A: 1\r\n" * 11 + b"\r\n"],
    "head too big": [b"GET /a HTTP/1.1\r\nX-A: " + b"a" * 3000 + b"\r\n\r\n"],
    "length beyond any body": [b"PUT /a HTTP/1.1\r\nContent-Length: 1" + b"0" * 30
                               + b"\r\n\r\n{}"],
}


class ChannelTests(unittest.SynchronousTestCase):
    """The same bytes through the fast path and through twisted.web's
    parser give the same requests and the same answers."""

    def exchange(self, chunks, fast):
        resource = _Record()
        site = make_site(resource, max_body=1000, fast=fast)
        site.timeOut = None
        site.protocol = _Counting
        channel = site.buildProtocol(None)
        channel.fast_heads = fast
        channel.maxHeaders = 10
        channel.totalHeadersSize = 2048
        transport = StringTransport()
        channel.makeConnection(transport)
        for chunk in chunks:
            channel.dataReceived(chunk)
        answer = re.sub(rb"Date: [^\r]*", b"Date: -", transport.value())
        return resource.seen, answer, transport.disconnecting, channel.begun

    def test_valid_requests_alike(self):
        """Valid requests (bodies in the same or later reads, pipelining,
        HTTP/1.0, Connection: close, Expect: 100-continue) are seen and
        answered alike; the fast path took each whole head, and left split
        or folded ones to twisted.web."""
        for name, chunks in {**VALID, **LEFT_TO_TWISTED}.items():
            fast = self.exchange(chunks, fast=True)
            slow = self.exchange(chunks, fast=False)
            self.assertEqual(fast[:3], slow[:3], name)
            self.assertTrue(fast[0], name)
            self.assertEqual(slow[3], 0)
            self.assertEqual(fast[3] > 0, name in VALID, name)

    def test_invalid_requests_answered_by_twisted(self):
        """Malformed heads get twisted.web's own answer (400, closed), the
        same with the fast path as without."""
        for name, chunks in INVALID.items():
            fast = self.exchange(chunks, fast=True)
            slow = self.exchange(chunks, fast=False)
            self.assertEqual(fast[:3], slow[:3], name)
            self.assertEqual(fast[0], [], name)
            self.assertTrue(fast[1].startswith(b"HTTP/1.1 400 "), (name, fast[1][:60]))
            self.assertTrue(fast[2], name)


class HugeContentLengthTests(unittest.SynchronousTestCase):
    """A Content-Length beyond Python's int digit limit (4,300) used to raise
    out of the parser: no answer and a traceback for every such request."""

    def answer(self, raw, fast):
        site = make_site(_Record(), max_body=1000, fast=fast)
        site.timeOut = None
        channel = site.buildProtocol(None)
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(raw)
        return transport.value(), transport.disconnecting

    def test_answered_400_on_both_paths(self):
        """5,000 digits (zero-padded or not beyond 18 significant ones) get
        400 and the connection closed, with the whole-head parser and with
        twisted.web's; 5,000 zeros before a small length are that length."""
        for fast in (True, False):
            for digits in (b"9" * 5000, b"0" * 4990 + b"1" * 19):
                raw = b"POST /a HTTP/1.1\r\nContent-Length: " + digits + b"\r\n\r\n{}"
                answer, closed = self.answer(raw, fast)
                self.assertTrue(answer.startswith(b"HTTP/1.1 400 "), (fast, answer[:60]))
                self.assertTrue(closed)
            raw = b"POST /a HTTP/1.1\r\nContent-Length: " + b"0" * 5000 + b"2\r\n\r\n{}"
            answer, closed = self.answer(raw, fast)
            self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), (fast, answer[:60]))
            self.assertFalse(closed)
