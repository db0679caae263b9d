"""
``[auth] strategy = keystone``: tokens validated by Keystone (identity API v3).

A token is valid for us when Keystone validates it (``GET {url}/auth/tokens``
with ``X-Subject-Token``) and it is scoped to a project: the request then
acts for that project with the token's roles. Keystone's answer is kept for
``cache_seconds`` (never past the token's ``expires_at``), refusals for
``negative_cache_seconds``, at most ``max_cached`` tokens, so a busy client
costs Keystone one request per token and period; concurrent requests with
one token share one validation. A token revoked meanwhile is accepted until
its cached answer expires: that is the price of the cache.

``X-Auth-Token`` is a service token (from ``service_user``'s password) when
service credentials are configured, else the token itself: Keystone's
default policy lets a token validate itself. When Keystone cannot answer
(unreachable, too slow, 5xx, or refusing our service credentials) the
request fails with ``errors.ServiceUnavailable`` (503), never with 401: an
outage must not look like bad credentials to clients.

Tokens are kept and logged only as SHA-256 hashes (a short prefix in logs).
"""

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import treq
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from marconi_tx import errors
from marconi_tx.auth.identity import Identity
from marconi_tx.auth.interfaces import IAuthStrategy
from marconi_tx.config import ConfigError

#: A service token is renewed this many seconds before Keystone's expires_at.
SERVICE_TOKEN_MARGIN = 60.0


def token_digest(token: str) -> bytes:
    """What the cache keeps instead of the token."""
    return hashlib.sha256(token.encode("ascii")).digest()


def token_label(token: str) -> str:
    """How logs name a token: a short prefix of its hash, never the token."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()[:8]


def _sendable(token: str) -> bool:
    """A token Keystone could know: non-empty visible ASCII (anything else
    cannot be a Keystone token, nor be put in a header)."""
    return bool(token) and token.isascii() and token.isprintable() and " " not in token


def _epoch(text: str) -> float:
    """Keystone's ``2026-12-05T21:28:09.000000Z`` as POSIX seconds."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


class _SingleFlight:
    """One run of ``start()`` per key at a time, its result given to every
    caller that asked meanwhile (a caller cancelling its own Deferred leaves
    the others and the run alone)."""

    def __init__(self) -> None:
        self._waiting: dict[Any, list[Deferred]] = {}

    def __call__(self, key: Any, start: Callable[[], Deferred]) -> Deferred:
        waiters = self._waiting.get(key)
        fresh = waiters is None
        if waiters is None:
            waiters = self._waiting[key] = []
        waiter: Deferred = Deferred(canceller=waiters.remove)
        waiters.append(waiter)
        if fresh:
            start().addBoth(self._settle, key)
        return waiter

    def _settle(self, result: Any, key: Any) -> None:
        for waiter in self._waiting.pop(key):
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)


@implementer(IAuthStrategy)
class KeystoneStrategy:
    """
    @param settings: the ``[auth:keystone]`` options (``config.keystone``).
    @param reactor: the clock of the cache and the timeout.
    @param http_client: what sends requests: the ``treq`` module by default,
        or a ``treq.client.HTTPClient`` (``request(method, url, ...)``).
    @raise ConfigError: the URL is not http(s), or service credentials are
        incomplete.
    """

    log = Logger()

    def __init__(self, settings: Any, reactor: Any, http_client: Any = None) -> None:
        url = settings.url.rstrip("/")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ConfigError(f"[auth:keystone] url: {settings.url!r} is not an http(s) URL")
        if settings.service_user and not settings.service_password:
            raise ConfigError("[auth:keystone] service_user needs service_password")
        if http_client is None:
            http_client = treq
        self.settings = settings
        self.reactor = reactor
        self._http = http_client
        self._tokens_url = url + "/auth/tokens"
        #: digest -> (Identity or None, until): valid and refused tokens.
        self._cache: OrderedDict[bytes, tuple[Identity | None, float]] = OrderedDict()
        self._validations = _SingleFlight()
        self._service: tuple[str, float] | None = None  # (token, renew at)
        self._service_fetch = _SingleFlight()

    def authenticate(self, token: str) -> "Identity | None | Deferred[Identity | None]":
        if not _sendable(token):
            return None
        key = token_digest(token)
        cached = self._cache.get(key)
        if cached is not None:
            identity, until = cached
            if self.reactor.seconds() < until:
                self._cache.move_to_end(key)
                return identity
            del self._cache[key]
        return self._validations(key, lambda: Deferred.fromCoroutine(self._validate(token, key)))

    def _remember(self, key: bytes, identity: Identity | None, until: float) -> None:
        if until <= self.reactor.seconds():
            return
        self._cache[key] = (identity, until)
        self._cache.move_to_end(key)
        while len(self._cache) > self.settings.max_cached:
            self._cache.popitem(last=False)

    def _refuse(self, key: bytes) -> None:
        self._remember(key, None, self.reactor.seconds() + self.settings.negative_cache_seconds)

    async def _validate(self, token: str, key: bytes) -> Identity | None:
        label = token_label(token)
        for retry in (False, True):
            if self.settings.service_user:
                service_token = await self._service_token()
            else:
                service_token = token
            code, _, body = await self._exchange(
                "GET", self._tokens_url + "?nocatalog",
                {b"X-Auth-Token": [service_token.encode("ascii")],
                 b"X-Subject-Token": [token.encode("ascii")]})
            if code == 200:
                return self._accept(key, label, body)
            if code == 401 and self.settings.service_user:
                # Our service token was revoked or expired early: once more
                # with a new one, then it is Keystone refusing our credentials.
                self._service = None
                if not retry:
                    continue
                self.log.error("Keystone refuses the service token of [auth:keystone] "
                               "service_user {user}", user=self.settings.service_user)
                raise errors.ServiceUnavailable("Keystone refuses our service token")
            if code == 403:
                self.log.error(
                    "Keystone forbids validating tokens (HTTP 403): give [auth:keystone] "
                    "service_user the 'service' role on service_project, or configure one")
                raise errors.ServiceUnavailable("Keystone forbids validating tokens")
            if code in (400, 401, 404):
                self.log.debug("Keystone refused token {token} ({code})", token=label, code=code)
                self._refuse(key)
                return None
            self.log.warn("Keystone answered HTTP {code} validating token {token}",
                          code=code, token=label)
            raise errors.ServiceUnavailable(f"Keystone answered HTTP {code}")
        raise AssertionError("unreachable")  # pragma: no cover

    def _accept(self, key: bytes, label: str, body: bytes) -> Identity | None:
        """The Identity of a token Keystone validated (None: not project-scoped)."""
        try:
            document = json.loads(body)["token"]
            expires = _epoch(document["expires_at"])
            project = document.get("project")
            roles = frozenset(str(role["name"]).lower() for role in document.get("roles", ()))
            project_id = project["id"] if project is not None else None
            if project_id is not None and not isinstance(project_id, str):
                raise TypeError(project_id)
        except (ValueError, KeyError, TypeError) as e:
            self.log.error("Keystone's validation of token {token} is unreadable: {error}",
                           token=label, error=repr(e))
            raise errors.ServiceUnavailable("Keystone's answer is unreadable")
        if not project_id:
            self.log.debug("token {token} has no project scope", token=label)
            self._refuse(key)
            return None
        identity = Identity(project=project_id, roles=roles)
        self._remember(key, identity,
                       min(self.reactor.seconds() + self.settings.cache_seconds, expires))
        return identity

    async def _service_token(self) -> str:
        """The service token, asked for when there is none or it is about to expire."""
        if self._service is not None:
            token, renew_at = self._service
            if self.reactor.seconds() < renew_at:
                return token
        return await self._service_fetch(None, lambda: Deferred.fromCoroutine(self._login()))

    async def _login(self) -> str:
        s = self.settings
        domain = {"name": s.service_domain}
        request = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": s.service_user, "domain": domain, "password": s.service_password}}},
            "scope": {"project": {"name": s.service_project, "domain": domain}}}}
        code, headers, body = await self._exchange(
            "POST", self._tokens_url,
            {b"Content-Type": [b"application/json"]}, json.dumps(request).encode())
        token = headers.getRawHeaders(b"X-Subject-Token", [b""])[0].decode("ascii", "replace")
        if code != 201 or not token:
            self.log.error("Keystone refused the [auth:keystone] service credentials of "
                           "{user} (HTTP {code})", user=s.service_user, code=code)
            raise errors.ServiceUnavailable(f"Keystone refused our service credentials ({code})")
        try:
            expires = _epoch(json.loads(body)["token"]["expires_at"])
        except (ValueError, KeyError, TypeError):
            expires = self.reactor.seconds() + 2 * SERVICE_TOKEN_MARGIN
        self._service = (token, expires - SERVICE_TOKEN_MARGIN)
        return token

    async def _exchange(self, method: str, url: str, headers: dict[bytes, list[bytes]],
                        data: bytes | None = None) -> tuple[int, Any, bytes]:
        """(status, headers, body) of one request, its whole answer within
        ``timeout`` seconds; ServiceUnavailable when there is none."""
        attempt = Deferred.fromCoroutine(self._send(method, url, headers, data))
        timer = self.reactor.callLater(self.settings.timeout, attempt.cancel)
        try:
            return await attempt
        except Exception as e:
            if timer.active():
                self.log.warn("Keystone at {url} failed: {error}", url=url, error=repr(e))
            else:
                self.log.warn("Keystone at {url} gave no answer within {timeout} s",
                              url=url, timeout=self.settings.timeout)
            raise errors.ServiceUnavailable("Keystone did not answer")
        finally:
            if timer.active():
                timer.cancel()

    async def _send(self, method: str, url: str, headers: dict[bytes, list[bytes]],
                    data: bytes | None) -> tuple[int, Any, bytes]:
        response = await self._http.request(method, url, headers=headers, data=data)
        body = await treq.content(response)
        return response.code, response.headers, body
