"""
marconi_tx.auth.keystone: tokens validated by a real Keystone
(tests/keystone_server.py), over real HTTP on the running reactor, with the
cache on a task.Clock's time (tests/clock_reactor.py) set to the real time,
so that Keystone's expires_at means what it says.

Requests to Keystone are counted by an IAgent that passes each one on to a
real Agent: a validation the cache answers sends none.
"""

import time
from datetime import datetime

from treq.client import HTTPClient
from twisted.internet import defer, protocol, task
from twisted.internet import reactor as real_reactor
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial import unittest
from twisted.web import resource, server
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IAgent
from zope.interface import implementer

from marconi_tx import config
from marconi_tx.auth.identity import Identity
from marconi_tx.auth.interfaces import IAuthStrategy
from marconi_tx.auth.keystone import KeystoneStrategy
from marconi_tx.errors import ServiceUnavailable
from tests.clock_reactor import ClockReactor
from tests.keystone_server import shared_keystone
from tests.mongodb_server import _free_port


@implementer(IAgent)
class CountingAgent:
    """A real Agent that notes each request it sends."""

    def __init__(self, agent):
        self.agent = agent
        self.sent = []

    def request(self, method, uri, headers=None, bodyProducer=None):
        self.sent.append((method, uri))
        return self.agent.request(method, uri, headers, bodyProducer)


def settings(url, **options):
    """``config.keystone`` as the loader builds it from these values."""
    overrides = [("auth:keystone", "url", url)]
    overrides += [("auth:keystone", name, str(value)) for name, value in options.items()]
    return config.load(overrides=overrides).keystone


async def identity_of(strategy, token):
    """What ``authenticate`` gives, waited for when it is a Deferred."""
    return await defer.maybeDeferred(strategy.authenticate, token)


class KeystoneCase(unittest.TestCase):
    def setUp(self):
        self.keystone = shared_keystone()
        self.clock = Clock()
        self.clock.advance(time.time())
        pool = HTTPConnectionPool(real_reactor, persistent=False)
        self.agent = CountingAgent(Agent(real_reactor, pool=pool))

    def strategy(self, url=None, **options):
        return KeystoneStrategy(settings(url or self.keystone.url, **options),
                                ClockReactor(self.clock), HTTPClient(self.agent))

    def service_user(self):
        """(name, password) of a user with the 'service' role on a new project
        named as the user."""
        name = f"svc-{time.monotonic_ns()}"
        project = self.keystone.create_project(name)
        _, password = self.keystone.create_user(project, "service", name=name)
        return name, password


class ValidationTests(KeystoneCase):
    def test_provides_interface(self):
        """The strategy provides IAuthStrategy."""
        self.assertTrue(IAuthStrategy.providedBy(self.strategy()))

    async def test_project_token(self):
        """A member's project-scoped token gives its project and roles
        (lower case, with the roles they imply), without admin rights."""
        project, token = self.keystone.project_token("member")
        identity = await identity_of(self.strategy(), token)
        self.assertEqual(identity, Identity(project, frozenset({"member", "reader"})))
        self.assertFalse(identity.is_admin)

    async def test_admin_token(self):
        """The bootstrap admin's token is admin, of the 'admin' project."""
        identity = await identity_of(self.strategy(), self.keystone.admin_token())
        self.assertTrue(identity.is_admin)
        _, _, document = self.keystone.call("GET", "/projects?name=admin")
        self.assertEqual(identity.project, document["projects"][0]["id"])

    async def test_wrong_token(self):
        """A token Keystone does not know is not valid."""
        self.assertIsNone(await identity_of(self.strategy(), "gAAAAABnot-a-real-token"))
        self.assertEqual(len(self.agent.sent), 1)

    def test_unsendable_token(self):
        """A token that cannot be a Keystone token (empty, spaces, control
        or non-ASCII characters) is not valid, and Keystone is not asked."""
        strategy = self.strategy()
        for token in ("", "a b", "tok\r\nX-Auth-Token: x", "jeton-é"):
            self.assertIsNone(strategy.authenticate(token))
        self.assertEqual(self.agent.sent, [])

    async def test_unscoped_token(self):
        """A token without a project scope is not valid for us."""
        project = self.keystone.create_project()
        user, password = self.keystone.create_user(project)
        token = self.keystone.token(user, password)
        self.assertIsNone(await identity_of(self.strategy(), token))

    async def test_revoked_token(self):
        """A token revoked before its first use is not valid."""
        _, token = self.keystone.project_token()
        self.keystone.revoke(token)
        self.assertIsNone(await identity_of(self.strategy(), token))


class CacheTests(KeystoneCase):
    async def test_cached_until_cache_seconds(self):
        """A validated token is accepted without asking Keystone for
        cache_seconds, even once revoked; then Keystone's refusal counts."""
        project, token = self.keystone.project_token()
        strategy = self.strategy(cache_seconds=60)
        await identity_of(strategy, token)
        self.keystone.revoke(token)
        self.clock.advance(59)
        self.assertEqual(strategy.authenticate(token).project, project)
        self.assertEqual(len(self.agent.sent), 1)
        self.clock.advance(1)
        self.assertIsNone(await identity_of(strategy, token))
        self.assertEqual(len(self.agent.sent), 2)

    async def test_no_cache(self):
        """cache_seconds = 0: every validation asks Keystone."""
        _, token = self.keystone.project_token()
        strategy = self.strategy(cache_seconds=0)
        await identity_of(strategy, token)
        await identity_of(strategy, token)
        self.assertEqual(len(self.agent.sent), 2)

    async def test_never_past_expires_at(self):
        """A token's cached validation ends at its expires_at, however long
        cache_seconds: the next use asks Keystone again."""
        _, token = self.keystone.project_token()
        _, _, document = self.keystone.call("GET", "/auth/tokens",
                                            headers=[("X-Subject-Token", token)])
        # Keystone's tokens live an hour ([token] expiration). The clock
        # is moved relative to this token's end, not to setUp's time:
        # issuing the token can take seconds on a loaded machine.
        expires_at = datetime.fromisoformat(
            document["token"]["expires_at"].replace("Z", "+00:00")).timestamp()
        self.assertGreater(expires_at - self.clock.seconds(), 3000)
        strategy = self.strategy(cache_seconds=30 * 86400)
        await identity_of(strategy, token)
        self.clock.advance(expires_at - 10 - self.clock.seconds())
        self.assertIsNotNone(strategy.authenticate(token))
        self.clock.advance(10)
        await identity_of(strategy, token)
        self.assertEqual(len(self.agent.sent), 2)

    async def test_negative_cache(self):
        """A refused token is refused again without asking Keystone for
        negative_cache_seconds, then asked about again."""
        strategy = self.strategy(negative_cache_seconds=5)
        self.assertIsNone(await identity_of(strategy, "gAAAAABunknown"))
        self.clock.advance(4)
        self.assertIsNone(strategy.authenticate("gAAAAABunknown"))
        self.assertEqual(len(self.agent.sent), 1)
        self.clock.advance(1)
        self.assertIsNone(await identity_of(strategy, "gAAAAABunknown"))
        self.assertEqual(len(self.agent.sent), 2)

    async def test_no_negative_cache(self):
        """negative_cache_seconds = 0: every refusal comes from Keystone."""
        strategy = self.strategy(negative_cache_seconds=0)
        await identity_of(strategy, "gAAAAABunknown")
        await identity_of(strategy, "gAAAAABunknown")
        self.assertEqual(len(self.agent.sent), 2)

    async def test_concurrent_validations_share_a_request(self):
        """Validations of one token while Keystone is being asked wait for
        the same answer: one request."""
        project, token = self.keystone.project_token()
        strategy = self.strategy()
        first, second = strategy.authenticate(token), strategy.authenticate(token)
        identities = await defer.gatherResults([first, second])
        self.assertEqual([i.project for i in identities], [project, project])
        self.assertEqual(len(self.agent.sent), 1)

    async def test_cancelled_waiter(self):
        """A caller that gives up leaves the others' validation alone."""
        project, token = self.keystone.project_token()
        strategy = self.strategy()
        gone, staying = strategy.authenticate(token), strategy.authenticate(token)
        gone.cancel()
        self.failureResultOf(gone, defer.CancelledError)
        self.assertEqual((await staying).project, project)

    async def test_bounded(self):
        """At most max_cached tokens are remembered: the least recently used
        one is forgotten and asked about again."""
        _, first = self.keystone.project_token()
        _, second = self.keystone.project_token()
        strategy = self.strategy(max_cached=1)
        await identity_of(strategy, first)
        await identity_of(strategy, second)
        self.assertIsNotNone(strategy.authenticate(second))
        self.assertEqual(len(self.agent.sent), 2)
        await identity_of(strategy, first)
        self.assertEqual(len(self.agent.sent), 3)


def pause(seconds):
    """A Deferred that fires after ``seconds`` of the real reactor's time."""
    return task.deferLater(real_reactor, seconds, lambda: None)


class _Answer(resource.Resource):
    isLeaf = True

    def __init__(self, code):
        super().__init__()
        self.code = code

    def render(self, request):
        request.setResponseCode(self.code)
        return b'{"error": {"code": %d}}' % self.code


class _Silent(protocol.Protocol):
    """A server that reads a request and never answers."""


class OutageTests(KeystoneCase):
    def listen(self, factory):
        """The v3 URL of ``factory`` listening on a loopback port."""
        port = real_reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return f"http://127.0.0.1:{port.getHost().port}/v3"

    async def test_keystone_down(self):
        """Keystone not listening: ServiceUnavailable (503), not a refusal,
        and nothing is cached."""
        strategy = self.strategy(url=f"http://127.0.0.1:{_free_port()}/v3")
        with self.assertRaises(ServiceUnavailable):
            await identity_of(strategy, "gAAAAABany")
        with self.assertRaises(ServiceUnavailable):
            await identity_of(strategy, "gAAAAABany")
        self.assertEqual(len(self.agent.sent), 2)

    async def test_keystone_failing(self):
        """Keystone answering 500 or 503: ServiceUnavailable."""
        for code in (500, 503):
            strategy = self.strategy(url=self.listen(server.Site(_Answer(code))))
            with self.assertRaises(ServiceUnavailable):
                await identity_of(strategy, "gAAAAABany")

    async def test_timeout(self):
        """Keystone accepting the connection but not answering within
        ``timeout`` seconds: ServiceUnavailable then, and the connection is
        closed."""
        connections = []

        class Factory(protocol.Factory):
            def buildProtocol(self, addr):
                connections.append(_Silent())
                return connections[-1]

        strategy = self.strategy(url=self.listen(Factory()), timeout=2)
        outcome = defer.maybeDeferred(strategy.authenticate, "gAAAAABany")
        while not connections:
            await pause(0.01)
        self.clock.advance(1.9)
        self.assertNoResult(outcome)
        self.clock.advance(0.1)
        self.failureResultOf(outcome, ServiceUnavailable)
        while connections[0].transport.connected:
            await pause(0.01)

    async def test_no_token_logged(self):
        """Log events about a token (refused, Keystone failing) never contain
        it."""
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        token = "gAAAAABsecret-token-value"
        await identity_of(self.strategy(), token)
        strategy = self.strategy(url=self.listen(server.Site(_Answer(500))))
        with self.assertRaises(ServiceUnavailable):
            await identity_of(strategy, token)
        mine = [e for e in events if e.get("log_namespace", "").startswith("marconi_tx.auth")]
        self.assertTrue(mine)
        self.assertNotIn(token, repr(events))


class ServiceUserTests(KeystoneCase):
    async def test_service_token_validates(self):
        """With service credentials, tokens are validated with one service
        token, obtained once."""
        name, password = self.service_user()
        strategy = self.strategy(service_user=name, service_password=password,
                                 service_project=name)
        for _ in range(2):
            project, token = self.keystone.project_token()
            self.assertEqual((await identity_of(strategy, token)).project, project)
        self.assertIsNone(await identity_of(strategy, "gAAAAABunknown"))
        methods = [method for method, _ in self.agent.sent]
        self.assertEqual(methods, [b"POST", b"GET", b"GET", b"GET"])

    async def test_revoked_service_token_renewed(self):
        """A service token that Keystone stops accepting is replaced by a new
        one, and the validation goes on."""
        name, password = self.service_user()
        strategy = self.strategy(service_user=name, service_password=password,
                                 service_project=name)
        await identity_of(strategy, self.keystone.project_token()[1])
        self.keystone.revoke(strategy._service[0])
        project, token = self.keystone.project_token()
        self.assertEqual((await identity_of(strategy, token)).project, project)
        methods = [method for method, _ in self.agent.sent]
        self.assertEqual(methods, [b"POST", b"GET", b"GET", b"POST", b"GET"])

    async def test_wrong_service_password(self):
        """Service credentials Keystone refuses: ServiceUnavailable, not a
        refused client token."""
        name, _ = self.service_user()
        strategy = self.strategy(service_user=name, service_password="wrong",
                                 service_project=name)
        with self.assertRaises(ServiceUnavailable):
            await identity_of(strategy, self.keystone.project_token()[1])

    async def test_service_user_without_service_role(self):
        """A service user Keystone does not let validate tokens (no
        'service' role): ServiceUnavailable."""
        project = self.keystone.create_project()
        name = f"not-svc-{time.monotonic_ns()}"
        _, password = self.keystone.create_user(project, "member", name=name)
        _, _, document = self.keystone.call("GET", f"/projects/{project}")
        strategy = self.strategy(service_user=name, service_password=password,
                                 service_project=document["project"]["name"])
        with self.assertRaises(ServiceUnavailable):
            await identity_of(strategy, self.keystone.project_token()[1])


class ConfigurationTests(unittest.SynchronousTestCase):
    def test_url_must_be_http(self):
        """[auth:keystone] url must be an http(s) URL."""
        for url in ("ftp://keystone/v3", "keystone:5000", "http://"):
            self.assertRaises(config.ConfigError, KeystoneStrategy, settings(url), Clock())

    def test_service_user_needs_password(self):
        """service_user without service_password is a configuration error."""
        self.assertRaises(config.ConfigError, KeystoneStrategy,
                          settings("http://127.0.0.1:5000/v3", service_user="marconi"), Clock())
