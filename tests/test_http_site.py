"""The real twisted.web Site: raw HTTP bytes in, answers out."""

import re
import time

from klein import Klein
from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial import unittest
from twisted.web import server
from twisted.web.http import datetimeToString
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from marconi_tx import config, errors
from marconi_tx.deferreds import returns_deferred
from marconi_tx.storage.sqlite.driver import SqliteDriver
from marconi_tx.transport.http.app import MATCH_CACHE, Router, build_resource, dispatcher
from marconi_tx.transport.http.site import ApiRequest, BoundedBuffer, adopt, http_date, make_site
from marconi_tx.transport.http.v1 import V1API
from tests.http_support import CLIENT_ID, new_clock


def exchange(site, raw):
    """Feed raw request bytes to a new connection of ``site``; the raw answer."""
    site.timeOut = None  # no idle-timeout timers left on the global reactor
    channel = site.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    channel.dataReceived(raw)
    return transport.value()


class BoundedBufferTests(unittest.SynchronousTestCase):
    def test_keeps_at_most_limit_bytes(self):
        """Writes past the limit are dropped and flagged, earlier ones kept."""
        buffer = BoundedBuffer(5)
        buffer.write(b"abc")
        self.assertFalse(buffer.overflowed)
        buffer.write(b"defgh")
        buffer.write(b"ijk")
        self.assertTrue(buffer.overflowed)
        self.assertEqual(buffer.getvalue(), b"abcde")


class SiteTests(unittest.SynchronousTestCase):
    """Bodies through make_site's Site (its fast path on)."""

    fast = True

    def setUp(self):
        self.driver = SqliteDriver(":memory:", new_clock())
        self.successResultOf(self.driver.open())
        self.addCleanup(self.driver.close)
        self.site = make_site(build_resource(self.driver, config.load()), max_body=1000,
                              fast=self.fast)
        self.site.timeOut = None  # no idle-timeout timers left on the global reactor
        self.successResultOf(self.driver.queues.create(None, "jobs"))

    def exchange(self, raw):
        return exchange(self.site, raw)

    def test_chunked_body_refused(self):
        """A chunked body (no Content-Length) where one is required is 400 and
        stores nothing."""
        body = b'[{"ttl": 60, "body": 1}]'
        answer = self.exchange(
            b"POST /v1/queues/jobs/messages HTTP/1.1\r\nHost: x\r\n"
            b"Client-ID: " + CLIENT_ID.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 400 "), answer[:100])
        stats = self.successResultOf(self.driver.queues.stats(None, "jobs"))
        self.assertEqual(stats.total, 0)

    def test_huge_chunked_body_is_not_buffered(self):
        """An endless chunked body past the site's limit is discarded as it
        arrives: the buffer never grows beyond the limit."""
        channel = self.site.buildProtocol(None)
        channel.makeConnection(StringTransport())
        channel.dataReceived(b"PUT /v1/queues/jobs/metadata HTTP/1.1\r\nHost: x\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 4096
        for _ in range(100):
            channel.dataReceived(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        [request] = channel.requests
        self.assertTrue(request.content.overflowed)
        self.assertEqual(len(request.content.getvalue()), 1000)

    def test_huge_declared_body_is_not_buffered(self):
        """A body declaring a length past the site's limit is discarded as
        it arrives, like a chunked one."""
        channel = self.site.buildProtocol(None)
        channel.makeConnection(StringTransport())
        chunk = b"x" * 4096
        channel.dataReceived(b"PUT /v1/queues/jobs/metadata HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Length: %d\r\n\r\n" % (len(chunk) * 100 + 1))
        for _ in range(100):
            channel.dataReceived(chunk)
        [request] = channel.requests
        self.assertTrue(request.content.overflowed)
        self.assertEqual(len(request.content.getvalue()), 1000)

    def test_oversize_content_length_refused(self):
        """A body beyond the route's limit by Content-Length is 400."""
        body = b'[{"ttl": 60, "body": "' + b"x" * 2000 + b'"}]'
        answer = self.exchange(
            b"POST /v1/queues/jobs/messages HTTP/1.1\r\nHost: x\r\nClient-ID: "
            + CLIENT_ID.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        self.assertTrue(answer.startswith(b"HTTP/1.1 400 "), answer[:100])


class SiteWithoutFastPathTests(SiteTests):
    """The same, with the fast path off."""

    fast = False


class OtherSiteTests(unittest.SynchronousTestCase):
    """The API served by a plain twisted.web Site (as treq's StubTreq
    serves a resource): its requests get the plain request API."""

    def test_answers_as_through_make_site(self):
        """A POST, a GET and a DELETE (204, no body) through a plain Site
        are answered as through make_site's (status, headers, body), the
        Date and ids aside."""
        driver = SqliteDriver(":memory:", new_clock())
        self.successResultOf(driver.open())
        self.addCleanup(driver.close)
        resource = build_resource(driver, config.load())
        self.successResultOf(driver.queues.create(None, "jobs"))
        body = b'[{"ttl": 60, "body": 1}]'
        post = (b"POST /v1/queues/jobs/messages HTTP/1.1\r\nHost: x\r\nClient-ID: "
                + CLIENT_ID.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        get = (b"GET /v1/queues/jobs/messages/%s HTTP/1.1\r\nHost: x\r\n"
               b"Client-ID: " + CLIENT_ID.encode() + b"\r\n\r\n")
        answers = []
        for site in (server.Site(resource), make_site(resource, max_body=1000)):
            posted = exchange(site, post)
            [message] = re.findall(rb"/messages/(\d+)", posted.split(b"\r\n\r\n")[1])
            got = exchange(site, get % message)
            deleted = exchange(site, b"DELETE /v1/queues/jobs/messages/%s HTTP/1.1\r\n"
                                     b"Host: x\r\n\r\n" % message)
            answers.append([re.sub(rb"Date: [^\r]*|(?<=messages/)\d+|(?<=ids=)\d+", b"-", answer)
                            for answer in (posted, got, deleted)])
        plain, ours = answers
        self.assertEqual(plain, ours)
        self.assertTrue(plain[0].startswith(b"HTTP/1.1 201 "), plain[0][:80])
        self.assertTrue(plain[1].startswith(b"HTTP/1.1 200 "), plain[1][:80])
        self.assertTrue(plain[2].startswith(b"HTTP/1.1 204 "), plain[2][:80])

    def test_other_request_classes_refused(self):
        """A request class of another Site's own is not taken over (its
        methods could clash): TypeError."""
        from twisted.web.test.requesthelper import DummyChannel

        class Custom(server.Request):
            pass

        self.assertRaises(TypeError, adopt, Custom(DummyChannel()))
        request = server.Request(DummyChannel())
        adopt(request)
        self.assertIsInstance(request, ApiRequest)


class RouterTests(unittest.SynchronousTestCase):
    """The Router over a Klein app whose endpoint answers when told to."""

    def setUp(self):
        self.pending = Deferred()
        app = Klein()

        @app.route("/slow")
        def slow(request):
            return self.pending

        self.site = make_site(Router(app), max_body=1000)
        self.site.timeOut = None
        self.channel = self.site.buildProtocol(None)
        self.transport = StringTransport()
        self.channel.makeConnection(self.transport)
        self.channel.dataReceived(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")

    def test_answer_after_client_left_is_dropped(self):
        """An answer ready after the client disconnected is dropped quietly:
        nothing is written and no error is logged."""
        self.channel.connectionLost(Failure(ConnectionDone()))
        self.pending.callback(b"late")
        self.assertEqual(self.transport.value(), b"")
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_failure_is_a_logged_500(self):
        """An endpoint failing unexpectedly (a bug) gets a 500 with no body
        and the failure is logged."""
        self.pending.errback(RuntimeError("bug"))
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 500 "))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_failure_while_writing_closes_the_connection(self):
        """An answer failing once its status is written (an endpoint returning
        something other than bytes) closes the connection, logged."""
        self.pending.callback(42)
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)


#: v1's checks and error answers (its handlers are not used here).
V1_CHECKS = V1API(None, config.load())


class DispatcherTests(unittest.SynchronousTestCase):
    """Handlers (async def, or returning a Deferred) and their failures,
    through dispatcher and Router."""

    def answer(self, handler):
        app = Klein()
        app.route("/thing", endpoint="thing")(dispatcher({"GET": handler}, V1_CHECKS))
        return exchange(make_site(Router(app), max_body=1000),
                        b"GET /thing HTTP/1.1\r\nHost: x\r\n\r\n")

    def test_every_kind_of_answer(self):
        """What an async def handler returns, and what a handler's Deferred
        fires with, becomes the body."""
        async def coroutine(request, project):
            return b"from a coroutine"

        for handler, body in [(lambda request, project: succeed(b"deferred"), b"deferred"),
                              (coroutine, b"from a coroutine")]:
            answer = self.answer(handler)
            self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), answer[:80])
            self.assertIn(body, answer.split(b"\r\n\r\n", 1)[1])

    def test_domain_errors_answered_however_they_come(self):
        """A domain error raised, delivered by a Deferred or raised in a
        coroutine gets its mapped answer (404 for a missing queue)."""
        missing = errors.QueueDoesNotExist("q", None)

        def raises(request, project):
            raise missing

        async def coroutine(request, project):
            raise missing

        for handler in (raises, lambda request, project: fail(missing), coroutine):
            self.assertTrue(self.answer(handler).startswith(b"HTTP/1.1 404 "))

    def test_bugs_are_a_logged_500_however_they_come(self):
        """An unexpected exception raised, delivered by a Deferred or raised
        in a coroutine is a JSON 500 without a traceback, logged once."""
        def raises(request, project):
            raise RuntimeError("bug")

        async def coroutine(request, project):
            raise RuntimeError("bug")

        for handler in (raises, lambda request, project: fail(RuntimeError("bug")),
                        coroutine):
            answer = self.answer(handler)
            self.assertTrue(answer.startswith(b"HTTP/1.1 500 "), answer[:80])
            self.assertIn(b'"title": "Internal server error"', answer)
            self.assertNotIn(b"Traceback", answer)
            self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class RouterMatchCacheTests(unittest.SynchronousTestCase):
    def test_cache_is_bounded_and_answers_stay_right(self):
        """Remembered matches never exceed MATCH_CACHE paths, and each path
        keeps its own parameters, remembered or not."""
        app = Klein()

        @app.route("/items/<name>")
        @returns_deferred
        async def item(request, name):
            request.setHeader(b"content-length", b"%d" % len(name))
            return name.encode()

        router = Router(app)
        site = make_site(router, max_body=1000)
        site.timeOut = None
        channel = site.buildProtocol(None)
        transport = StringTransport()
        channel.makeConnection(transport)
        for _ in range(2):
            for n in range(MATCH_CACHE + 10):
                transport.clear()
                channel.dataReceived(b"GET /items/i%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
                self.assertTrue(transport.value().endswith(b"\r\n\r\ni%d" % n), n)
                self.assertLessEqual(len(router.matches), MATCH_CACHE)


class RequestProcessTests(unittest.SynchronousTestCase):
    """ApiRequest.process: the default headers, and what it leaves to
    twisted.web (a non-leaf root, the ``*`` target)."""

    def exchange(self, root, raw):
        return exchange(make_site(root, max_body=1000), raw)

    def test_date_and_server_headers(self):
        """Every answer has the current Date (formatted as RFC 9110 asks)
        and the Server header twisted.web gives."""
        driver = SqliteDriver(":memory:", new_clock())
        self.successResultOf(driver.open())
        self.addCleanup(driver.close)
        root = build_resource(driver, config.load())
        before = int(time.time())
        answers = [self.exchange(root, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                   for _ in range(2)]
        after = int(time.time())
        for answer in answers:
            [date] = re.findall(rb"\r\nDate: ([^\r]*)\r\n", answer)
            self.assertIn(date, [datetimeToString(s) for s in range(before, after + 1)])
            self.assertIn(b"\r\nServer: " + server.version + b"\r\n", answer)

    def test_date_follows_the_clock(self):
        """The remembered Date value changes with the second."""
        self.assertEqual(http_date(86400.5), b"Fri, 02 Jan 1970 00:00:00 GMT")
        self.assertEqual(http_date(86400.9), b"Fri, 02 Jan 1970 00:00:00 GMT")
        self.assertEqual(http_date(86401.0), b"Fri, 02 Jan 1970 00:00:01 GMT")

    def test_date_from_the_sites_reactor(self):
        """The Date header is the time of the site's reactor."""
        root = _Static(b"ok")
        site = make_site(root, max_body=1000)
        site.reactor = Clock()
        site.reactor.advance(86400 * 365)
        answer = exchange(site, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b"\r\nDate: Fri, 01 Jan 1971 00:00:00 GMT\r\n", answer)

    def test_tree_of_resources_is_traversed(self):
        """A root that is not a leaf is served by twisted.web's traversal
        (its children answer), with the same default headers."""
        root = Resource()
        root.putChild(b"child", _Static(b"from the child"))
        answer = self.exchange(root, b"GET /child HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), answer[:100])
        self.assertTrue(answer.endswith(b"from the child"))
        self.assertIn(b"\r\nDate: ", answer)

    def test_asterisk_target_left_to_twisted(self):
        """``OPTIONS *`` gets twisted.web's server-wide answer, not a route's."""
        answer = self.exchange(_Static(b"a route"), b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), answer[:100])
        self.assertNotIn(b"a route", answer)

    def test_leaf_sees_decoded_path_segments(self):
        """The leaf root gets the whole path, percent-decoded, as postpath."""
        seen = []
        leaf = _Static(b"ok", seen)
        self.exchange(leaf, b"GET /v1/queues/a%2Fb/ HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(seen, [([], [b"v1", b"queues", b"a/b", b""])])


class _Static(Resource):
    """A leaf answering ``body``; notes each request's prepath and postpath."""

    isLeaf = True

    def __init__(self, body, seen=None):
        super().__init__()
        self.body = body
        self.seen = [] if seen is None else seen

    def render(self, request):
        self.seen.append((request.prepath, request.postpath))
        return self.body


class AccessLogTests(unittest.SynchronousTestCase):
    def setUp(self):
        self.driver = SqliteDriver(":memory:", new_clock())
        self.successResultOf(self.driver.open())
        self.addCleanup(self.driver.close)

    def serve(self, site, raw):
        site.startFactory()
        self.addCleanup(site.stopFactory)
        return exchange(site, raw)

    def test_access_log_file(self):
        """With a file named, each request adds a combined-format line there."""
        path = self.mktemp()
        site = make_site(build_resource(self.driver, config.load()), 1000, access_log=path)
        answer = self.serve(site, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 204 "))
        site.stopFactory()
        with open(path) as f:
            self.assertIn('"GET /v1/health HTTP/1.1" 204', f.read())

    def test_no_access_log_by_default(self):
        """Without a file no access line reaches the process log."""
        from twisted.python import log

        seen = []
        log.addObserver(seen.append)
        self.addCleanup(log.removeObserver, seen.append)
        site = make_site(build_resource(self.driver, config.load()), 1000)
        self.serve(site, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertFalse([e for e in seen if "/v1/health" in str(e.get("message"))])

    def test_form_bodies_are_not_parsed(self):
        """A POST claiming to be a form is still read as the JSON it is."""
        self.successResultOf(self.driver.queues.create(None, "jobs"))
        site = make_site(build_resource(self.driver, config.load()), 1000)
        body = b'[{"ttl": 60, "body": "a=1&b=2"}]'
        answer = self.serve(site, b"POST /v1/queues/jobs/messages HTTP/1.1\r\nHost: x\r\n"
                            b"Client-ID: " + CLIENT_ID.encode() +
                            b"\r\nContent-Type: multipart/form-data; boundary=zz\r\n"
                            b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.assertTrue(answer.startswith(b"HTTP/1.1 201 "), answer[:200])


class _Answer(Resource):
    """Answers every request, a reactor turn later, with ``send_whole``."""

    isLeaf = True

    def __init__(self, bodies):
        super().__init__()
        self.bodies = bodies  # path -> body
        self.sent_at_once = []  # per answer: nothing left for the reactor?

    def render(self, request):
        body = self.bodies[request.path]
        request.setHeader(b"content-length", b"%d" % len(body))
        reactor.callLater(0, self.answer, request, body)
        return NOT_DONE_YET

    def answer(self, request, body):
        transport = request.channel.transport
        request.channel.send_whole(request, body)
        self.sent_at_once.append(transport not in reactor.getWriters())


class _Collect(Protocol):
    def __init__(self):
        self.data = []
        self.done = Deferred()

    def dataReceived(self, data):
        self.data.append(data)

    def connectionLost(self, reason):
        self.done.callback(b"".join(self.data))


class WholeResponseTests(unittest.TestCase):
    """Channel.send_whole over real TCP connections."""

    BIG = bytes(range(256)) * (64 * 1024)  # 16 MiB: more than a socket takes at once

    def setUp(self):
        self.listen()

    def listen(self, **site_options):
        self.resource = _Answer({b"/small": b'{"ok": true}', b"/big": self.BIG})
        site = make_site(self.resource, max_body=1000, **site_options)
        site.timeOut = None
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)

    async def exchange(self, raw):
        """Send ``raw`` on a new connection; everything received until the
        server closes it."""
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port.getHost().port)
        client = await connectProtocol(endpoint, _Collect())
        client.transport.write(raw)
        return await client.done

    def bodies(self, answer):
        """The bodies of the HTTP/1.1 answers in ``answer``, in order."""
        bodies = []
        while answer:
            head, answer = answer.split(b"\r\n\r\n", 1)
            length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
            bodies.append(answer[:length])
            answer = answer[length:]
        return bodies

    async def test_small_answer_sent_at_once(self):
        """A small answer is sent by the call itself (the reactor is never
        asked to watch the socket), whole; a closing request still gets its
        answer before the connection ends."""
        answer = await self.exchange(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n"
                                     b"GET /small HTTP/1.1\r\nHost: x\r\n"
                                     b"Connection: close\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:100])
        self.assertEqual(self.bodies(answer), [b'{"ok": true}'] * 2)
        # The second is followed by the close, which does wait for the reactor.
        self.assertEqual(self.resource.sent_at_once[0], True)

    async def test_big_answer_rest_goes_through_transport(self):
        """What the socket does not take at once is sent by the transport:
        the client receives the whole body."""
        answer = await self.exchange(b"GET /big HTTP/1.1\r\nHost: x\r\n"
                                     b"Connection: close\r\n\r\n")
        self.assertEqual(self.bodies(answer), [self.BIG])
        self.assertEqual(self.resource.sent_at_once, [False])

    async def test_pipelined_answers_keep_their_order(self):
        """An answer ready while an earlier one is still being sent by the
        transport is queued behind it, not sent ahead (with room for the big
        one's unsent bytes: else the next request waits until it is sent)."""
        self.listen(max_unsent=2 * len(self.BIG))
        answer = await self.exchange(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n"
                                     b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n"
                                     b"GET /small HTTP/1.1\r\nHost: x\r\n"
                                     b"Connection: close\r\n\r\n")
        self.assertEqual(self.bodies(answer), [self.BIG, b'{"ok": true}', b'{"ok": true}'])
        self.assertEqual(self.resource.sent_at_once[:2], [False, False])


class LogFloodTests(unittest.SynchronousTestCase):
    """What a client sends never costs more than one log line, never a
    traceback, and repeated lines of one kind are limited."""

    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        app = Klein()
        app.route("/bug", endpoint="bug")(dispatcher({"GET": self.bug}, V1_CHECKS))
        driver = SqliteDriver(":memory:", new_clock())
        self.successResultOf(driver.open())
        self.addCleanup(driver.close)
        self.api = make_site(build_resource(driver, config.load()), max_body=1000)
        self.buggy = make_site(Router(app), max_body=1000, log_interval=60)
        for site in (self.api, self.buggy):
            site.reactor = Clock()

    def bug(self, request, project):
        raise RuntimeError("bug")

    def lines(self):
        return [formatEvent(e) for e in self.events]

    def test_head_answers_have_no_body_and_log_nothing(self):
        """HEAD answered with an error document (a target that is not UTF-8,
        raw 0x8a; a bad queue name) sends the headers only, the
        Content-Length of the document, and logs nothing (it was a warning
        with 7 tracebacks for the 0x8a)."""
        for target in (b"/v1/\x8a", b"/v1/queues/bad!", b"/v1/queues/\x8a"):
            answer = exchange(self.api, b"HEAD " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            head, body = answer.split(b"\r\n\r\n", 1)
            self.assertTrue(head.startswith(b"HTTP/1.1 400 "), answer[:80])
            self.assertRegex(head, rb"Content-Length: [1-9]")
            self.assertEqual(body, b"")
        self.assertEqual(self.lines(), [])

    def test_non_ascii_target_in_a_log_line(self):
        """A request whose target holds raw non-ASCII bytes formats in a log
        line as one line (twisted.web's repr raised)."""
        channel = self.api.buildProtocol(None)
        channel.makeConnection(StringTransport())
        request = self.api.requestFactory(channel)
        request.method, request.uri, request.clientproto = b"GET", b"/v1/\x8a", b"HTTP/1.1"
        request._log.info("about {request}", request=request)
        [line] = self.lines()
        self.assertIn("uri=/v1/\\x8a", line)
        self.assertNotIn("Traceback", line)

    def test_repeated_failures_limited(self):
        """Five requests hitting a bug in one log_interval log one failure;
        the next one after the interval logs, counting the four suppressed."""
        for _ in range(5):
            answer = exchange(self.buggy, b"GET /bug HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(answer.startswith(b"HTTP/1.1 500 "))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.buggy.reactor.advance(60)
        exchange(self.buggy, b"GET /bug HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertIn("(4 alike not logged before this)", self.lines()[-1])

    def test_timed_out_clients_limited(self):
        """Idle connections timing out together log one line, not one each."""
        self.api.timeOut = 10
        for _ in range(3):
            self.api.buildProtocol(None).makeConnection(StringTransport())
        self.api.reactor.advance(10)
        self.assertEqual(sum("Timing out client" in line for line in self.lines()), 1)
