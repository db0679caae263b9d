"""The pieces of answers every API version shares: hrefs under a version's
prefix (``/v1``, ``/v1.1``, ``/v2``), JSON-home documents, ``next`` links and
the stamps of queue stats."""

import time
from urllib.parse import quote

from marconi_tx.transport.http.inputs import query
from marconi_tx.transport.http.responses import json_body


def iso8601(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def queue_href(prefix, name):
    return f"{prefix}/queues/{name}"


def stamp_doc(prefix, queue, stamp):
    return {"age": stamp.age, "created": iso8601(stamp.created),
            "href": f"{queue_href(prefix, queue)}/messages/{stamp.id}"}


def stats_doc(prefix, queue, stats):
    """The ``messages`` object of a stats answer (``oldest``/``newest`` when
    the queue has messages)."""
    doc = {"free": stats.free, "claimed": stats.claimed, "total": stats.total}
    if stats.oldest is not None:
        doc["oldest"] = stamp_doc(prefix, queue, stats.oldest)
    if stats.newest is not None:
        doc["newest"] = stamp_doc(prefix, queue, stats.newest)
    return doc


def _escaped(text):
    """``text`` percent-encoded for a query; letters and digits (markers,
    limits, flags) as they are, without a call to ``quote``."""
    return text if text.isascii() and text.isalnum() else quote(text, safe="")


def next_link(path, marker, request, names):
    """A ``next`` link repeating the supplied parameters ``names``
    (percent-encoded where needed: v2's metadata filters may be any text)."""
    params = [f"marker={_escaped(marker)}"]
    for name in names:
        value = query(request, name)
        if value is not None:
            params.append(f"{_escaped(name)}={_escaped(value)}")
    return [{"rel": "next", "href": f"{path}?{'&'.join(params)}"}]


def json_home(request, resources):
    """Answer a JSON-home document (cached for a day) from ``resources``:
    {rel: (href template, allowed methods, href variables)}."""
    doc = {"resources": {
        rel: {"href-template": template, "href-vars": variables,
              "hints": {"allow": allow, "formats": {"application/json": {}}}}
        for rel, (template, allow, variables) in resources.items()}}
    return json_body(request, 200, doc, content_type=b"application/json-home",
                     Cache_Control="max-age=86400")
