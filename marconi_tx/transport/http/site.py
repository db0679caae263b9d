"""The twisted.web Site of the HTTP API, refusing to buffer huge bodies.

This module alone knows twisted.web's internals. Handlers see a request
(``ApiRequest``) with a small API: ``header(name)``, ``set_clean_header(name,
value)`` and ``send(body)``. ``make_site`` builds, by default, the fast
variant (``FastRequest`` and a ``Channel`` parsing whole heads: ``head``),
which reaches into twisted.web's internals when the installed Twisted has
them (``head.SUPPORTED``); with ``fast=False``, or without them, every call
is a plain twisted.web one.

A request built by another Site (treq's ``StubTreq`` builds a plain
twisted.web Site and Request) gets the plain variant when the API's resource
first sees it (``adopt``): tests may serve the resource either way.
"""

from io import BytesIO
from urllib.parse import unquote_to_bytes

from twisted.protocols import basic
from twisted.python.failure import Failure
from twisted.web import http, server
from twisted.web.http import NO_BODY_CODES, datetimeToString
from twisted.web.iweb import INonQueuedRequestFactory

from marconi_tx import limits
from marconi_tx.transport.http import head
from marconi_tx.transport.http.log_limit import LimitedLogger, LogLimiter
from marconi_tx.transport.sending import send_now


class BoundedBuffer(BytesIO):
    """A request body buffer that stops storing beyond ``limit`` bytes.

    The excess is read from the connection and dropped, so a huge (or
    endless chunked) body costs no memory; ``overflowed`` tells the handler,
    which answers 400.
    """

    def __init__(self, limit):
        super().__init__()
        self.limit = limit
        self.overflowed = False

    def write(self, data):
        room = self.limit - self.tell()
        if len(data) > room:
            self.overflowed = True
            data = data[:max(room, 0)]
        return super().write(data)


class Channel(http.HTTPChannel):
    """An HTTP connection that parses a request head that arrived whole in
    one go (``head.parse``), asks the kernel for its addresses once, not
    once per request, and can send a whole response with one system call
    (``send_whole``).

    A client that sends requests but does not read the answers must not
    make the daemon hold its answers without bound. The transport pauses
    this channel (``pauseProducing``) while more than ``max_unsent`` bytes
    wait to be sent, and resumes it once they are; twisted.web then reads
    no more from the socket, but would still start the requests it has
    already read (pipelined). Here they wait, too: no request starts while
    the output is paused.
    """

    #: Parse whole heads here (False: leave every head to twisted.web;
    #: ``make_site`` sets it).
    fast_heads = False

    _host = None
    _peer = None
    _held = None  # the response being gathered by send_whole, or None
    #: Unsent bytes above which no further request is read (``make_site``
    #: sets it from ``[drivers] max_unsent_bytes``).
    max_unsent = 1 << 20

    def connectionMade(self):
        super().connectionMade()
        if hasattr(self.transport, "bufferSize"):  # a FileDescriptor transport
            self.transport.bufferSize = self.max_unsent
        self.site.connections.add(self)  # for the shutdown's drain and the limit

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.site.connections.discard(self)

    def dataReceived(self, data):
        if self.paused:  # kept, in order, until resumeProducing
            self._buffer += data
            return
        if (self.fast_heads and self.line_mode and not self._buffer
                and not self._busyReceiving and self.persistent
                and self._HTTPChannel__first_line == 1 and not self._receivedHeaderSize):
            end = data.find(b"\r\n\r\n")
            if 0 < end <= min(self.totalHeadersSize, self.MAX_LENGTH):
                parsed = head.parse(data[:end], self.maxHeaders)
                if parsed is not None:
                    self.resetTimeout()
                    self._begin(*parsed)
                    rest = data[end + 4:]
                    if rest:  # a body, or pipelined requests
                        basic.LineReceiver.dataReceived(self, rest)
                    return
        super().dataReceived(data)

    def _begin(self, method, target, version, headers, length):
        """Start a request as twisted.web's parser does once it has read the
        head's blank line."""
        if INonQueuedRequestFactory.providedBy(self.requestFactory):
            request = self.requestFactory(self)
        else:
            request = self.requestFactory(self, len(self.requests))
        self.requests.append(request)
        request.requestHeaders._rawHeaders = headers
        self._HTTPChannel__first_line = 0
        self._command = method
        self._path = target
        self._version = version
        self.length = length
        if length:
            self._transferDecoder = head.IdentityDecoder(
                length, request.handleContentChunk, self._finishRequestBody)
        self.allHeadersReceived()
        if length:
            self.setRawMode()
        else:
            self.allContentReceived()

    def headerReceived(self, line):
        # twisted.web converts a Content-Length with int(), which raises
        # (uncaught: no answer, a traceback) beyond 4,300 digits.
        name, colon, value = line.partition(b":")
        value = value.strip(b" \t")
        if (colon and len(value) > head.MAX_LENGTH_DIGITS and value.isdigit()
                and name.lower() == b"content-length"):
            value = value.lstrip(b"0")
            if len(value) > head.MAX_LENGTH_DIGITS:
                self._respondToBadRequestAndDisconnect()
                return False
            line = b"Content-Length: " + (value or b"0")
        return super().headerReceived(line)

    def getHost(self):
        if self._host is None:
            self._host = super().getHost()
        return self._host

    def getPeer(self):
        if self._peer is None:
            self._peer = super().getPeer()
        return self._peer

    def send_whole(self, request, body):
        """
        Write ``body`` and finish ``request``, sending status line, headers
        and body together.

        twisted.web hands each piece to the transport, which asks the
        reactor to watch the socket for writability, sends on the next
        reactor turn and stops watching: two ``epoll_ctl`` calls and a
        reactor dispatch for every response. When nothing is waiting in the
        transport's buffer, the response is sent here at once; what the
        socket does not take goes to the transport as usual.
        """
        self._held = []
        try:
            if _plain(request):
                self._hold_whole(request, body)
            else:
                request.write(body)
            request.finish()
        finally:
            self._send_held()
            self._held = None

    def _hold_whole(self, request, body):
        """Hold ``request``'s status line, headers and ``body``, as its
        first ``write`` would (``_plain``: with nothing of that to add),
        without the three calls and header lookups it makes."""
        held = self._held
        held += (b"HTTP/1.1 ", b"%d" % request.code, b" ", request.code_message, b"\r\n")
        for name, values in request.responseHeaders._rawHeaders.items():
            for value in values:
                held += (name, b": ", value, b"\r\n")
        held += (b"\r\n", body)
        request.startedWriting = 1
        request.sentLength = len(body)

    def writeHeaders(self, version, code, reason, headers):
        if self._held is None:
            return super().writeHeaders(version, code, reason, headers)
        held = self._held
        held += (version, b" ", code, b" ", reason, b"\r\n")
        for name, values in headers.getAllRawHeaders():
            for value in values:
                held += (name, b": ", value, b"\r\n")
        held.append(b"\r\n")

    def write(self, data):
        if self._held is None:
            return super().write(data)
        self._held.append(data)

    def writeSequence(self, iovec):
        if self._held is None:
            return super().writeSequence(iovec)
        self._held.extend(iovec)

    def requestDone(self, request):
        # May close the connection, or start on the next pipelined request:
        # what is held goes first.
        self._send_held()
        if self._waitingForTransport:
            # Too much unsent: the next request waits (LineReceiver keeps what
            # it has read while paused) and nothing more is read.
            self.paused = True
            self._networkProducer.pauseProducing()
        super().requestDone(request)

    def resumeProducing(self):
        super().resumeProducing()
        if self.paused and not self._handlingRequest:
            self.paused = False
            self.dataReceived(b"")  # the requests read while paused

    def _send_held(self):
        if not self._held:
            return
        data = b"".join(self._held)
        self._held.clear()
        send_now(self.transport, data)


def _plain(request):
    """Whether ``request``'s first write would only send its status line,
    headers and body as they are: HTTP/1.1, not HEAD, a status with a body,
    its Content-Type and Content-Length set, nothing to add (chunking, a
    default Content-Type, Last-Modified, ETag, cookies) or encode."""
    headers = request.responseHeaders._rawHeaders
    return (not request.startedWriting and request.clientproto == b"HTTP/1.1"
            and request.method != b"HEAD" and request.code not in NO_BODY_CODES
            and b"Content-Length" in headers and b"Content-Type" in headers
            and request.lastModified is None and request.etag is None
            and not request.cookies and request._encoder is None
            and not request._inFakeHead and not request.finished
            and not request._disconnected)


class QuietSite(server.Site):
    """A Site writing access log lines only to a file it was given, and
    keeping its open connections (``connections``, a limits.ConnectionSet):
    beyond their maximum a new connection is closed at once."""

    connections = None

    def buildProtocol(self, addr):
        if self.connections.full():
            return None  # the port closes the accepted socket
        return super().buildProtocol(addr)

    def log(self, request):
        if self.logPath is not None:
            super().log(request)


SERVER = server.version
_date = [None, b""]  # [second, its Date header value]


def http_date(now):
    """The Date header value for the time ``now`` (epoch seconds), formatted
    once a second."""
    second = int(now)
    if second != _date[0]:
        _date[:] = second, datetimeToString(second)
    return _date[1]


class ApiRequest(server.Request):
    """A request whose body keeps at most ``max_body`` bytes (``make_site``
    sets it), served by a leaf resource without traversal, with the API
    handlers use, in plain twisted.web calls."""

    max_body = None

    def header(self, name):
        """The last value of the request header ``name`` (in canonical case:
        Client-Id), or None."""
        return self.getHeader(name)

    def set_clean_header(self, name, value):
        """Set the response header ``name`` (in canonical case:
        Content-Type) to ``value``: bytes known to hold no CR, LF or NUL (a
        constant, a number, a date)."""
        self.setHeader(name, value)

    def send(self, body):
        """Write ``body`` and finish; nothing if the client has gone away."""
        if self.channel is not None:
            self.write(body)
            self.finish()

    def gotLength(self, length):
        if length is not None and length <= self.max_body:
            # twisted.web reads no more than a declared length.
            self.content = BytesIO()
        else:
            self.content = BoundedBuffer(self.max_body)

    def __repr__(self):
        # twisted.web's decodes the target as ASCII: a request for /\x8a made
        # every log line naming it a traceback.
        return "<{} at 0x{:x} method={} uri={} clientproto={}>".format(
            type(self).__name__, id(self), *(
                value.decode("ascii", "backslashreplace")
                for value in (self.method, self.uri, self.clientproto)))

    def process(self):
        """
        What ``server.Request.process`` does for a leaf root resource (the
        API's Router), with less work: the Date header is formatted once a
        second, not for every request (a few percent of a small request's
        CPU), and there is no resource traversal or encoder lookup.
        """
        site = self.channel.site
        if not site.resource.isLeaf or self.path == b"*":
            return super().process()
        self.site = site
        self.set_clean_header(b"Server", SERVER)
        self.set_clean_header(b"Date", http_date(site.reactor.seconds()))
        self.prepath = []
        self.sitepath = []
        self.postpath = list(map(unquote_to_bytes, self.path[1:].split(b"/")))
        try:
            self.render(site.resource)
        except BaseException:
            self.processingFailed(Failure())


class FastRequest(ApiRequest):
    """The request API with less of twisted.web's work, on a ``Channel``.

    Headers are read and set straight in the ``Headers``' dict:
    ``Request.setHeader`` checks and cleans every value, about a twentieth
    of a small request's CPU for the four headers every answer has. The
    answer goes out in one system call (``Channel.send_whole``).
    """

    def header(self, name):
        values = self.requestHeaders._rawHeaders.get(name)
        return values[-1] if values else None

    def set_clean_header(self, name, value):
        self.responseHeaders._rawHeaders[name] = [value]

    def send(self, body):
        channel = self.channel
        if channel is not None:
            channel.send_whole(self, body)


def adopt(request):
    """Give ``request`` the request API if another Site built it: a plain
    twisted.web ``Request`` becomes an ``ApiRequest`` (whose class adds
    methods only, no state)."""
    if not isinstance(request, ApiRequest):
        if type(request) is not server.Request:
            raise TypeError(f"cannot serve a {type(request).__name__}")
        request.__class__ = ApiRequest


def make_site(resource, max_body, access_log=None, max_connections=None,
              max_unsent=Channel.max_unsent, log_interval=60.0, fast=True):
    """
    A Site over ``resource`` whose request bodies keep at most ``max_body``
    bytes, writing an access log (combined format) to the file
    ``access_log``, or none, and holding at most ``max_connections``
    connections (None: no limit). A connection reads no further request
    while more than ``max_unsent`` bytes of its answers are unsent.
    twisted.web's log lines (and ``responses``' log of a failure) are
    limited to one of a kind every ``log_interval`` seconds. With ``fast``
    (and an installed Twisted that has the internals it uses), whole heads
    are parsed here and requests are ``FastRequest``; without, twisted.web
    does all of it.
    """
    fast = fast and head.SUPPORTED
    site = None  # set below; the limiter reads its reactor when logging
    limiter = LogLimiter(log_interval, lambda: site.reactor)
    request_factory = type("ApiRequest", (FastRequest if fast else ApiRequest,), {
        "max_body": max_body, "_log": LimitedLogger(limiter=limiter)})
    channel = type("Channel", (Channel,), {
        "max_unsent": max_unsent, "fast_heads": fast, "_log": LimitedLogger(limiter=limiter)})
    # Bodies are JSON: parsing them as HTML form submissions is wasted work
    # (a fifth of a small POST's CPU) and would answer bad multipart itself.
    site = QuietSite(resource, requestFactory=request_factory,
                     parsePOSTFormSubmission=False, logPath=access_log)
    site.noisy = False
    site.protocol = channel
    site.log_limiter = limiter
    site.connections = limits.ConnectionSet(
        "http", float("inf") if max_connections is None else max_connections)
    return site
