"""The entry point of the library: a L{Client} for one server and project.

The client sends every request itself (``Client.request``): it adds the
headers, applies the timeout, retries 503 answers and refused connections
with bounded exponential backoff, and turns unexpected answers into the
exceptions of L{marconi_tx.client.errors}. It speaks API v1 or v2, as asked
or as discovered from the server (L{marconi_tx.client.versions}).
"""

import uuid
from typing import Any
from urllib.parse import urlsplit

from twisted.internet import error as network
from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.task import deferLater
from twisted.web.client import RequestTransmissionFailed, ResponseFailed
from twisted.web.http import RESPONSES

from marconi_tx.client import errors, pools, signed_urls, versions
from marconi_tx.client.http import Reply, boolean, with_query
from marconi_tx.client.listing import Listing
from marconi_tx.client.pools import Flavor, Pool
from marconi_tx.client.resources import Queue
from marconi_tx.deferreds import returns_deferred

DEFAULT_URL = "http://127.0.0.1:8888"


class Client:
    """A connection-less handle on one Marconi server, for one project.

    @ivar url: the server's base URL (without ``/v1`` or ``/v2``). Server
        hrefs such as ``/v1/queues/jobs`` are resolved against it.
    @ivar api: the API version spoken, ``"v1"`` or ``"v2"``; ``None`` until
        the first request has discovered it.
    @ivar project: the X-Project-ID sent, or ``None``: v1 then sends none
        (the global namespace) and v2 sends L{versions.DEFAULT_PROJECT}.
    @ivar token: the X-Auth-Token sent, or ``None``.
    @ivar client_id: the Client-ID sent (a UUID string, by default a new
        one per Client); it is what ``echo`` compares.
    """

    def __init__(self, url: str = DEFAULT_URL, project: str | None = None,
                 client_id: object = None, *, api: str | None = None,
                 treq: Any = None, reactor: Any = None,
                 retries: int = 3, backoff: float = 0.5, max_backoff: float = 8.0,
                 timeout: float | None = 30.0, max_message_size: int = 262144,
                 max_page_size: int = 20, token: str | None = None) -> None:
        """
        @param api: ``"v1"``, ``"v2"``, or ``None`` to use v2 when the
            server offers it (asked once, before the first request). A URL
            ending in ``/v1`` or ``/v2`` names the version too.
        @param treq: the treq API to send with (the ``treq`` module by
            default; tests give a L{treq.testing.StubTreq}).
        @param reactor: the clock timeouts and backoff sleeps use
            (the global reactor by default; tests give a
            L{twisted.internet.task.Clock}).
        @param retries: how many times a request answered 503, or whose
            connection was refused, is sent again before the error is raised.
        @param backoff: seconds before the first retry; each retry waits
            twice as long as the one before, at most ``max_backoff`` (a
            ``Retry-After`` header lengthens the wait, within that bound).
            ``0`` retries at once.
        @param timeout: seconds an attempt may take until its whole answer
            has arrived (``None``: no limit); then L{errors.RequestTimeout}.
        @param max_message_size: the server's ``max_message_size``: the
            largest message POST body; bigger posts are split.
        @param max_page_size: the server's per-request maximum of ``limit``
            and of ``ids`` (``max_messages_per_page`` and
            ``max_queues_per_page``, both 20 by default).
        @param token: sent as ``X-Auth-Token`` on every request (a server
            with ``[auth] strategy`` token or keystone). Without a
            ``project`` the token's project is used: no X-Project-ID is sent.
        """
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ValueError(f"not an http(s) URL: {url!r}")
        url = url.rstrip("/")
        named = url.rsplit("/", 1)[-1]
        if named in versions.APIS:
            url = url[:-len(named) - 1]
            if api is not None and api != named:
                raise ValueError(f"the URL names {named}, api= says {api}")
            api = named
        self.url = url
        self.api = versions.check(api)
        self._discovery = DeferredLock()
        self.project = project
        self.token = token
        self._signed: dict[str, list[str]] = {}
        self.client_id = str(client_id) if client_id is not None else str(uuid.uuid4())
        if treq is None:
            import treq
        if reactor is None:
            from twisted.internet import reactor
        self._treq = treq
        self._clock = reactor
        self.retries = retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self.timeout = timeout
        self.max_message_size = max_message_size
        self.max_page_size = max_page_size

    @classmethod
    def signed(cls, url: str, document: dict, client_id: object = None,
               **kwargs: Any) -> "Client":
        """A v2 client whose requests present the share document
        ``document`` (what L{Queue.share} returns) instead of credentials:
        it may send the methods to the paths the document allows, in its
        project, until it expires (the server answers anything else 404).

        @raise ValueError: ``document`` is not a share document.
        """
        headers = signed_urls.headers(document)
        client = cls(url, document["project"], client_id, api=versions.V2, **kwargs)
        client._signed = headers
        return client

    def __repr__(self) -> str:
        return f"<Client {self.url!r} api={self.api!r} project={self.project!r}>"

    @returns_deferred
    async def api_version(self) -> str:
        """Fires with the API version the client speaks, asking the server
        the first time when it was not given (see L{versions})."""
        if self.api is None:
            async with self._discovery:  # one discovery for concurrent callers
                if self.api is None:
                    self.api = await self._discover()
        return self.api

    async def _discover(self) -> str:
        reply = await self._request("GET", "/", expect=(200, 300, 404, 405, 406))
        if reply.status in (200, 300) and reply.content:
            try:
                if versions.offers_v2(reply.json()):
                    return versions.V2
            except errors.UnexpectedResponse:
                pass  # not a versions document: ask /v2 itself
        reply = await self._request("GET", "/v2", expect=(200, 400, 404, 405, 406))
        return versions.V2 if reply.status == 200 else versions.V1

    def require(self, api: str, what: str) -> None:
        """Refuse an operation the client's API version lacks.

        @raise errors.UnsupportedByAPI: the client speaks another version.
        """
        if self.api != api:
            raise errors.UnsupportedByAPI(
                f"{what} needs API {api}; this client speaks {self.api} with "
                f"{self.url}")

    # The API.

    def queues(self, marker: str | None = None, limit: int | None = None,
               detailed: bool = False, name: str | None = None) -> Listing[Queue]:
        """A L{Listing} of the project's L{Queue}s, sorted by name.

        @param marker: start after the queue of this name.
        @param limit: most queues to yield (``None``: all).
        @param detailed: also fetch each queue's metadata, in
            ``Queue.listed_metadata`` (in v2 with the reserved ``_``
            attributes' defaults filled in).
        @param name: v2 only: just the queues whose name contains this text.
        """

        def first(api: str) -> str:
            if name is not None:
                self.require(versions.V2, "filtering queues by name")
            return with_query("queues", marker=marker, limit=self.page_limit(limit),
                              detailed=boolean(True) if detailed else None, name=name)

        def queues(page: Any) -> list[Queue]:
            items = page.get("queues") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise errors.UnexpectedResponse(f"not a queue page: {page!r:.200}")
            return [self._listed_queue(item) for item in items]

        return Listing(self, first, queues, limit)

    def _listed_queue(self, item: Any) -> Queue:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise errors.UnexpectedResponse(f"not a queue object: {item!r:.200}")
        return Queue(self, item["name"], item.get("metadata"), item.get("href"))

    def queue(self, name: str) -> Queue:
        """The L{Queue} ``name`` (sends nothing; see L{Queue.exists})."""
        return Queue(self, name)

    @returns_deferred
    async def create_queue(self, name: str, metadata: dict | None = None) -> Queue:
        """Create queue ``name`` (no error if it exists) and, if ``metadata``
        is not ``None``, set its metadata. Fires with the L{Queue}."""
        queue = Queue(self, name)
        await queue.create(metadata)
        return queue

    @returns_deferred
    async def health(self) -> bool:
        """Fires with ``True`` if the server and its storage are up, ``False``
        if the server answers that its storage is unavailable (503; not
        retried). L{errors.ConnectionFailed} if it cannot be reached.
        (v1 asks ``/v1/health``, v2 ``/v2/ping``.)"""
        api = await self.api_version()
        reply = await self.request("GET", "health" if api == versions.V1 else "ping",
                                   expect=(204, 503), retry=False)
        return reply.status == 204

    @returns_deferred
    async def home(self) -> dict:
        """Fires with the API's JSON-home document (a dict)."""
        reply = await self.request("GET", "")
        return reply.json_of(dict, "a home document")

    # v2 pools and flavors (marconi_tx.client.pools; admin, pooled servers).

    def create_pool(self, name: str, uri: str, weight: int, flavor: str | None = None,
                    options: dict | None = None) -> Deferred[Pool]:
        """v2: register the storage at ``uri`` as pool ``name`` taking a
        ``weight`` share of new queues (for ``flavor`` if given); fires with
        the L{Pool}. L{Conflict} if it exists; L{BadRequest} if the storage
        does not answer or differs from the flavor's other pools."""
        return pools.create_pool(self, name, uri, weight, flavor, options)

    def pools(self, limit: int | None = None, detailed: bool = False) -> Listing[Pool]:
        """v2: a L{Listing} of the L{Pool}s by name (``detailed``: with
        their options)."""
        return pools.pool_listing(self, limit, detailed)

    def get_pool(self, name: str) -> Deferred[Pool]:
        """v2: fires with one L{Pool} (with its options); L{PoolNotFound}."""
        return pools.get_pool(self, name)

    def create_flavor(self, name: str, pool_list: list[str],
                      capabilities: dict | None = None) -> Deferred[Flavor]:
        """v2: make flavor ``name`` of the pools ``pool_list``; fires with the
        L{Flavor}. L{Conflict} if it exists; L{BadRequest} for an unknown
        pool or pools of different kinds."""
        return pools.create_flavor(self, name, pool_list, capabilities)

    def flavors(self, limit: int | None = None, detailed: bool = False) -> Listing[Flavor]:
        """v2: a L{Listing} of the L{Flavor}s by name (``detailed``: with
        their capabilities)."""
        return pools.flavor_listing(self, limit, detailed)

    def get_flavor(self, name: str) -> Deferred[Flavor]:
        """v2: fires with one L{Flavor}; L{FlavorNotFound}."""
        return pools.get_flavor(self, name)

    # Helpers of the resource objects.

    def page_limit(self, limit: int | None) -> int | None:
        """The ``limit`` to ask a page with, for at most ``limit`` items."""
        return None if limit is None else max(1, min(limit, self.max_page_size))

    def chunks(self, ids: list[str]) -> list[list[str]]:
        """``ids`` in lists of at most ``max_page_size``."""
        size = self.max_page_size
        return [ids[i:i + size] for i in range(0, len(ids), size)]

    def resolve(self, href: str) -> str:
        """The absolute URL of an href: server paths are relative to ``url``
        and other paths (``queues/jobs``) to the API version's root."""
        if href.startswith(("http://", "https://")):
            return href
        if not href.startswith("/"):
            href = f"/{self.api}" + (f"/{href}" if href else "")
        return self.url + "/" + href.lstrip("/")

    def headers(self, body: bytes | None,
                content_type: str = "application/json; charset=utf-8"
                ) -> dict[str, list[str]]:
        headers = {"Accept": ["application/json"], "Client-ID": [self.client_id]}
        project = self.project
        if self.token is not None:
            headers["X-Auth-Token"] = [self.token]
        elif project is None and self.api != versions.V1:
            project = versions.DEFAULT_PROJECT
        if project is not None:
            headers["X-Project-ID"] = [project]
        if body is not None:
            headers["Content-Type"] = [content_type]
        headers.update(self._signed)
        return headers

    @returns_deferred
    async def request(self, method: str, href: str, *, body: bytes | None = None,
                      content_type: str = "application/json; charset=utf-8",
                      expect: tuple[int, ...] = (200,),
                      not_found: type[errors.MarconiClientError] = errors.NotFound,
                      forbidden: type[errors.MarconiClientError] = errors.Forbidden,
                      missing: str | None = None, retry: bool = True,
                      server_wait: float = 0) -> Reply:
        """Send one API request and fire with its L{Reply} (the first
        request of a client without an ``api`` discovers it first).

        @param href: a server path such as ``/v1/queues`` (with its query),
            or a path relative to the API version's root (``queues``).
        @param body: the request body, as bytes.
        @param content_type: the Content-Type of ``body``.
        @param expect: statuses that are answers; others raise.
        @param not_found: the exception class for a 404.
        @param forbidden: the exception class for a 403.
        @param missing: the error text of a 404 without a body.
        @param retry: whether 503 answers are retried (refused connections
            always are).
        @param server_wait: seconds the server may hold the request before
            answering (a long-poll claim's wait), added to the timeout.
        """
        await self.api_version()
        return await self._request(method, href, body=body, content_type=content_type,
                                   expect=expect, not_found=not_found,
                                   forbidden=forbidden, missing=missing, retry=retry,
                                   server_wait=server_wait)

    async def _request(self, method: str, href: str, *, body: bytes | None = None,
                       content_type: str = "application/json; charset=utf-8",
                       expect: tuple[int, ...] = (200,),
                       not_found: type[errors.MarconiClientError] = errors.NotFound,
                       forbidden: type[errors.MarconiClientError] = errors.Forbidden,
                       missing: str | None = None, retry: bool = True,
                       server_wait: float = 0) -> Reply:
        url = self.resolve(href)
        headers = self.headers(body, content_type)
        attempt = 0
        while True:
            try:
                reply = await self._attempt(method, url, headers, body, server_wait)
            except network.ConnectionRefusedError as e:
                if attempt >= self.retries:
                    raise errors.ConnectionFailed(
                        f"cannot connect to {self.url}: connection refused",
                        method=method, url=url) from e
                delay = self._delay(attempt, None)
            else:
                if reply.status in expect:
                    return reply
                if not (reply.status == 503 and retry and attempt < self.retries):
                    raise self._error(reply, not_found, forbidden, missing)
                delay = self._delay(attempt, _retry_after(reply))
            attempt += 1
            if delay > 0:
                await deferLater(self._clock, delay, lambda: None)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        delay = self.backoff * 2 ** attempt
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.max_backoff)

    def _attempt(self, method: str, url: str, headers: dict[str, list[str]],
                 body: bytes | None, server_wait: float = 0) -> Deferred[Reply]:
        """One exchange, cut off after ``timeout`` (+ ``server_wait``) seconds."""
        exchange = self._exchange(method, url, headers, body)
        if not self.timeout:
            return exchange
        limit = self.timeout + server_wait
        expired = []

        def expire() -> None:
            expired.append(True)
            exchange.cancel()

        timer = self._clock.callLater(limit, expire)

        def settle(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            if expired:
                raise errors.RequestTimeout(
                    f"{method} {url}: no complete answer within {limit} s",
                    method=method, url=url)
            return result

        return exchange.addBoth(settle)

    @returns_deferred
    async def _exchange(self, method: str, url: str, headers: dict[str, list[str]],
                        body: bytes | None) -> Reply:
        try:
            response = await self._treq.request(
                method, url, headers=headers, data=body,
                allow_redirects=False)
            content = await self._treq.content(response)
        except network.ConnectionRefusedError:
            raise
        except network.ConnectError as e:
            raise errors.ConnectionFailed(
                f"cannot connect to {self.url}: {e}", method=method, url=url) from e
        except (network.ConnectionLost, network.ConnectionDone) as e:
            raise errors.ConnectionFailed(
                f"{method} {url}: connection lost", method=method, url=url) from e
        except Exception as e:
            if _is_transport_failure(e):
                raise errors.ConnectionFailed(
                    f"{method} {url}: connection failed ({_reason(e)})",
                    method=method, url=url) from e
            raise
        return Reply(response.code, response.headers, content, method, url)

    def _error(self, reply: Reply, not_found: type[errors.MarconiClientError],
               forbidden: type[errors.MarconiClientError],
               missing: str | None = None) -> errors.MarconiClientError:
        """The exception for an answer that was not expected."""
        title = description = None
        if reply.content:
            try:
                document = reply.json()
            except errors.UnexpectedResponse:
                document = None
            if isinstance(document, dict):
                title = _text(document.get("title"))
                description = _text(document.get("description"))
        kind = {404: not_found, 403: forbidden}.get(reply.status) or \
            errors.BY_STATUS.get(reply.status, errors.UnexpectedResponse)
        detail = ": ".join(part for part in (title, description) if part)
        if not detail and reply.status == 404 and missing:
            detail = missing
        if not detail:
            phrase = RESPONSES.get(reply.status, b"").decode("ascii", "replace")
            detail = f"{phrase} ({reply.method} {_path(reply.url)})".lstrip()
        message = f"{reply.status} {detail}"
        kwargs = dict(status=reply.status, title=title, description=description,
                      method=reply.method, url=reply.url)
        if kind is errors.ServiceUnavailable:
            return kind(message, retry_after=_retry_after(reply), **kwargs)
        return kind(message, **kwargs)


def _retry_after(reply: Reply) -> float | None:
    value = reply.header(b"Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None  # the HTTP-date form: fall back to the backoff
    return seconds if seconds is not None and seconds >= 0 else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _is_transport_failure(e: Exception) -> bool:
    """Twisted's "the connection broke" failures (the web client wraps the
    reasons in ResponseFailed and its kin)."""
    return isinstance(e, (ResponseFailed, RequestTransmissionFailed))


def _reason(e: Exception) -> str:
    reasons = getattr(e, "reasons", None)
    if reasons:
        return reasons[0].getErrorMessage()
    return str(e) or type(e).__name__

