"""Authenticated dispatch: who a request is, and what project it may use.

With a strategy (``[auth] strategy`` token or keystone) ``app.dispatcher``
runs each handler through ``Guard.caller`` (noauth calls it directly).
Every API version then follows the same rules:

* ``X-Auth-Token`` is required: missing, not valid -> 401 with a JSON
  ``{title, description}`` body and ``WWW-Authenticate`` (v1 too, whose 404s
  have no body).
* The project is the token's. A request may leave ``X-Project-ID`` out (on
  v1.1 and v2 too: it is required only without a strategy); one that names
  another project is 403, unless the token has the ``admin`` role: an admin
  may name any project.
* The admin routes (``/v1.1/health``, ``/v2/health``, ``/v2/pools...``,
  ``/v2/flavors...``, and ``/metrics``: it shows every project's queue
  names) need the ``admin`` role (403).
  ``/metrics`` also takes ``Authorization: Bearer TOKEN``, which scrapers
  such as Prometheus send.
* A v2 request with a ``URL-Signature`` needs no token: the signature is its
  credential (the v2 checks answer 404 unless it grants the request), and
  its project is the signed ``X-Project-ID``.
* Public: ``GET /``, each version's home document, ``/v1/health``,
  ``/v1.1/ping``, ``/v2/ping`` and the OpenAPI documents answer without a
  token (load balancers probe them; they show no project's data). A token
  sent to them is checked all the same.

A strategy that answers at once costs no Deferred (the token strategy: one
SHA-256 and a dict lookup); a Deferred (keystone) is waited for.
"""

from twisted.internet.defer import Deferred, succeed

from marconi_tx import errors
from marconi_tx.transport.http import responses

#: ``WWW-Authenticate`` of a 401 (RFC 9110 §11.6.1 requires a challenge).
CHALLENGE = 'Token realm="marconi", header="X-Auth-Token"'
_BEARER = b"bearer "


class Unauthorized(Exception):
    """No credentials, or credentials that are not valid: 401."""


class Forbidden(Exception):
    """Valid credentials that do not grant the request: 403."""


def _unauthorized(request, e):
    return responses.error_body(request, 401, "Unauthorized", str(e),
                                WWW_Authenticate=CHALLENGE)


def _forbidden(request, e):
    return responses.error_body(request, 403, "Forbidden", str(e))


def _unavailable(request, e):
    return responses.error_body(request, 503, "Service temporarily unavailable",
                                "Authentication is not available; please try again "
                                "in a few seconds.", Retry_After=responses.RETRY_AFTER.decode())


#: Answers of the authentication errors, before the API's own table.
AUTH_ANSWERS: responses.ErrorAnswers = (
    (Unauthorized, _unauthorized),
    (Forbidden, _forbidden),
    (errors.ServiceUnavailable, _unavailable),
)

_MISSING = "This request needs an X-Auth-Token header."
_INVALID = "The X-Auth-Token is not valid (unknown or expired)."


def route_kind(prefix, path):
    """"public", "admin" or "project": how the route ``path`` of the API
    version at ``prefix`` is guarded."""
    if path in ("/", prefix, "/v1/health") or path == f"{prefix}/ping":
        return "public"
    if path == f"{prefix}/health":  # v1.1 and v2's admin report
        return "admin"
    if path.startswith((f"{prefix}/pools", f"{prefix}/flavors")):  # v2's pooling admin
        return "admin"
    return "project"


class Guard:
    """Authenticates requests with ``strategy`` (an IAuthStrategy)."""

    def __init__(self, strategy):
        self.strategy = strategy

    def identify(self, token):
        """The Identity (or a Deferred of it) of the header value ``token``
        (bytes); Unauthorized when it is not valid."""
        try:
            text = token.decode("utf-8")
        except UnicodeDecodeError:
            raise Unauthorized(_INVALID)
        return self.strategy.authenticate(text)

    def caller(self, api, kind):
        """How ``app.dispatcher`` runs a handler of ``api`` with
        authentication: ``call(request, handler, params)``, the handler's
        Deferred (or a raised error). ``kind``: "public", "admin" or
        "project" (see the module's documentation)."""
        checks = api.checks
        signed = getattr(api, "verify_signature", None) is not None
        public, admin = kind == "public", kind == "admin"

        def authorized(identity, request, handler, params):
            if identity is None:
                raise Unauthorized(_INVALID)
            if admin and not identity.is_admin:
                raise Forbidden("This route needs the admin role.")
            own = identity.project.encode("utf-8")
            named = request.header(b"X-Project-Id")
            if named is None:
                request.requestHeaders.setRawHeaders(b"X-Project-Id", [own])
            elif named != own and not identity.is_admin:
                raise Forbidden("The X-Project-ID header names a project this token "
                                "does not grant.")
            return handler(request, checks(request, params), **params)

        def call(request, handler, params):
            token = request.header(b"X-Auth-Token")
            if token is None:
                if not (public or (signed and request.header(b"Url-Signature") is not None)):
                    raise Unauthorized(_MISSING)
                return handler(request, checks(request, params), **params)
            identity = self.identify(token)
            if isinstance(identity, Deferred):
                return identity.addCallback(authorized, request, handler, params)
            return authorized(identity, request, handler, params)

        return call

    def admin_endpoint(self, endpoint):
        """A Router endpoint answering as ``endpoint`` for a token with the
        admin role (``X-Auth-Token`` or ``Authorization: Bearer``)."""

        def guarded(request, **params):
            try:
                token = request.header(b"X-Auth-Token")
                if token is None:
                    authorization = request.header(b"Authorization")
                    if authorization is not None and authorization[:7].lower() == _BEARER:
                        token = authorization[7:].strip()
                if token is None:
                    raise Unauthorized(_MISSING)
                identity = self.identify(token)
                if not isinstance(identity, Deferred):
                    identity = succeed(identity)
            except Exception as e:
                return succeed(responses.render_error(request, e, AUTH_ANSWERS))

            def allowed(identity):
                if identity is None:
                    raise Unauthorized(_INVALID)
                if not identity.is_admin:
                    raise Forbidden("This route needs the admin role.")
                return endpoint(request, **params)

            return identity.addCallback(allowed).addErrback(_error_answer, request,
                                                             AUTH_ANSWERS)

        return guarded


def _error_answer(failure, request, answers):
    failure.trap(Exception)
    return responses.render_error(request, failure.value, answers)
