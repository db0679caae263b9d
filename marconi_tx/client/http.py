"""HTTP plumbing shared by the client objects: answers and paths."""

import json
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from marconi_tx.client.errors import UnexpectedResponse


class Reply:
    """A complete answer: status, headers and the whole body.

    @ivar status: the HTTP status code.
    @ivar headers: the response's L{twisted.web.http_headers.Headers}.
    @ivar content: the body, as bytes.
    """

    def __init__(self, status, headers, content, method=None, url=None):
        self.status, self.headers, self.content = status, headers, content
        self.method, self.url = method, url

    def header(self, name):
        """The last value of header ``name`` as text, or ``None``."""
        values = self.headers.getRawHeaders(name)
        if not values:
            return None
        value = values[-1]
        return value.decode("latin-1") if isinstance(value, bytes) else value

    def json(self):
        """The body parsed as JSON.

        @raise UnexpectedResponse: the body is not UTF-8 JSON.
        """
        try:
            return json.loads(self.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise UnexpectedResponse(
                f"{self.method} {self.url} answered {self.status} with a body "
                f"that is not JSON", status=self.status, method=self.method,
                url=self.url)

    def json_of(self, kind, what):
        """The JSON body, which must be an instance of ``kind``."""
        document = self.json()
        if not isinstance(document, kind):
            raise UnexpectedResponse(
                f"{self.method} {self.url} answered {what} that is not a JSON "
                f"{'object' if kind is dict else 'array'}", status=self.status,
                method=self.method, url=self.url)
        return document


def segment(value):
    """``value`` quoted as one path segment (a ``/`` cannot split it)."""
    return quote(str(value), safe="")


def with_query(path, **params):
    """``path`` plus the query string of the params that are not ``None``."""
    present = {name: value for name, value in params.items() if value is not None}
    return f"{path}?{urlencode(present)}" if present else path


def boolean(value):
    """A query-string boolean as the API spells it."""
    return "true" if value else "false"


def last_segment(href):
    """The last path segment of an href (a message or claim id)."""
    return urlsplit(href).path.rstrip("/").rsplit("/", 1)[-1]


def query_value(href, name):
    """The first value of query parameter ``name`` in ``href``, or ``None``."""
    values = parse_qs(urlsplit(href).query).get(name)
    return values[0] if values else None
