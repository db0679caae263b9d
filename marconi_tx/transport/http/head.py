"""Request heads with less of twisted.web's per-header work (``site``'s
private parser: nothing else imports it).

twisted.web parses a request line by line, header by header, in Python:
about half of the CPU of a small request that does nothing else. When a
request's whole head is in one read (as nearly every API request's is),
``parse`` reads it with two regular expressions instead, and ``Channel``
hands twisted.web the result in the state its own parser would have left.

``parse`` takes only what it is sure twisted.web would accept unchanged; for
anything else (a folded or malformed line, a NUL, Transfer-Encoding, a
repeated Content-Length, too many headers) it answers None, and twisted.web
parses the head itself, with its own answers (400) to bad input.

This, and ``site.FastRequest``'s header access, use twisted.web internals.
``SUPPORTED`` tells whether the installed Twisted has them; without them
every head goes to twisted.web, and every header through ``getHeader`` and
``setHeader``.
"""

import re

from twisted.protocols import basic
from twisted.web import http, http_headers, server

#: method SP request-target SP HTTP-version, with twisted.web's rules: the
#: method is a token, the target printable (bytes 0x21 to 0xb0), the
#: version HTTP/1.0 or HTTP/1.1.
_REQUEST_LINE = re.compile(
    rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\xb0]+) (HTTP/1\.[01])")
#: token ":" OWS value, the value free of NUL, CR and LF (and its trailing
#: blanks stripped after: a lazy match would cost three times as much).
_HEADER_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\x00\r\n]*)")

_names = getattr(http_headers, "_nameEncoder", None)  # canonical header names
#: Most digits of a Content-Length taken as it is. Longer values (beyond any
#: body, or padded with zeros) go to twisted.web's parser, where
#: ``Channel.headerReceived`` refuses the ones Python's ``int`` would not
#: convert (more than 4,300 digits) and any beyond this size.
MAX_LENGTH_DIGITS = 18
#: twisted.web's reader of a body of declared length (looked up once: each
#: attribute read on twisted.web.http goes through a deprecation proxy).
IdentityDecoder = getattr(http, "_IdentityTransferDecoder", None)


def parse(head, max_headers):
    """
    ``head`` (the bytes before the blank line) as ``(method, target,
    version, headers, length)``: ``headers`` maps canonical names to lists
    of values, as ``Headers`` keeps them, and ``length`` is the declared
    Content-Length (0 without one). None when twisted.web should parse it.
    """
    lines = head.split(b"\r\n")
    if len(lines) > max_headers + 1:
        return None
    request_line = _REQUEST_LINE.fullmatch(lines[0])
    if request_line is None:
        return None
    headers = {}
    length = None
    for line in lines[1:]:
        match = _HEADER_LINE.fullmatch(line)
        if match is None:
            return None
        name, value = match.groups()
        name = _names.encode(name)
        value = value.rstrip(b" \t")
        if name == b"Content-Length":
            if (length is not None or not value.isdigit()
                    or len(value) > MAX_LENGTH_DIGITS):
                return None
            length = int(value)
        elif name == b"Transfer-Encoding":
            return None
        values = headers.get(name)
        if values is None:
            headers[name] = [value]
        else:
            values.append(value)
    method, target, version = request_line.groups()
    return method, target, version, headers, length or 0


def _supported():
    """Whether the installed Twisted has the internals ``Channel`` sets."""
    channel = http.HTTPChannel()
    return (IdentityDecoder is not None and _names is not None
            and isinstance(getattr(http_headers.Headers(), "_rawHeaders", None), dict)
            and getattr(channel, "_HTTPChannel__first_line", None) == 1
            and all(hasattr(channel, name) for name in (
                "_receivedHeaderSize", "_transferDecoder", "_finishRequestBody",
                "allHeadersReceived", "allContentReceived"))
            and all(hasattr(basic.LineReceiver, name)
                    for name in ("_buffer", "_busyReceiving", "line_mode"))
            and all(hasattr(server.Request, name) for name in (
                "_encoder", "_inFakeHead", "_disconnected", "lastModified", "etag")))


SUPPORTED = _supported()

