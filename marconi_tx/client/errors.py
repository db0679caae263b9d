"""The exceptions of the client library, all under ``MarconiClientError``.

A server's answer becomes an exception carrying its HTTP ``status`` and the
``title``/``description`` of the JSON error body (``None`` when the answer had
no body, as v1's 404s). Failures that never got an answer (refused
connection, timeout) and client-side refusals have ``status`` ``None``.
"""

from typing import Any


class MarconiClientError(Exception):
    """Base of every error the client raises.

    @ivar status: the HTTP status of the answer, or ``None``.
    @ivar title: the ``title`` of the server's error body, or ``None``.
    @ivar description: the ``description`` of the error body, or ``None``.
    @ivar method: the HTTP method of the failed request, or ``None``.
    @ivar url: the URL of the failed request, or ``None``.
    """

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None,
                 title: str | None = None, description: str | None = None,
                 method: str | None = None, url: str | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.title, self.description = title, description
        self.method, self.url = method, url


class ConnectionFailed(MarconiClientError):
    """The server could not be reached (after the retries, if refused)."""


class RequestTimeout(MarconiClientError):
    """No complete answer arrived within the client's timeout."""


class MessageTooLarge(MarconiClientError, ValueError):
    """One message is bigger than the server's request size limit on its own;
    raised before anything is sent."""


class UnsupportedByAPI(MarconiClientError):
    """The operation (or an argument of it, such as a message ``delay``)
    needs an API version the client does not speak with this server (pop,
    purge, delayed posts, metadata patches and signed URLs need v2); raised
    before anything is sent."""


class UnexpectedResponse(MarconiClientError):
    """An answer the API does not define here (an unexpected status, a body
    that is not JSON, a 5xx other than 503)."""


class BadRequest(MarconiClientError):
    """400: the server rejected the request's input."""

    status = 400


class Unauthorized(MarconiClientError):
    """401: authentication is enabled and the request had no valid token."""

    status = 401


class Forbidden(MarconiClientError):
    """403."""

    status = 403


class ClaimConflict(Forbidden):
    """403 on a message delete: the message is held by a live claim and the
    request gave no claim id, or a claim id that is not the message's."""


class NotFound(MarconiClientError):
    """404: the addressed resource does not exist (or has expired)."""

    status = 404


class QueueNotFound(NotFound):
    """404 from a request about a queue (metadata, stats, posting)."""


class MessageNotFound(NotFound):
    """404 from a request for one message."""


class ClaimNotFound(NotFound):
    """404 from a request for a claim: unknown, expired or malformed id."""


class SubscriptionNotFound(NotFound):
    """404 from a request for a subscription: unknown or expired."""


class PoolNotFound(NotFound):
    """404 from a request for a pool (or from a server without pooling)."""


class FlavorNotFound(NotFound):
    """404 from a request for a flavor (or from a server without pooling)."""


class PoolInUse(Forbidden):
    """403 on a pool delete: a flavor uses the pool or a queue lives in it."""


class Conflict(MarconiClientError):
    """409: the request contradicts the resource's state (v2: a metadata
    patch replacing or removing a key the queue does not have; a second
    subscription of one subscriber to a queue; a pool or flavor that
    exists already)."""

    status = 409


class ServiceUnavailable(MarconiClientError):
    """503 (after the retries): the server's storage is unavailable.

    @ivar retry_after: seconds from the ``Retry-After`` header, or ``None``.
    """

    status = 503

    def __init__(self, message: str, *, retry_after: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


#: HTTP status -> exception class, for answers without a more specific class.
BY_STATUS: dict[int, type[MarconiClientError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    503: ServiceUnavailable,
}
