"""A sequential HTTP client for set-up calls and per-request latency.

wrk measures throughput and the latency of a mix of requests; the depth
runs need the latency of one kind of request at a time (a claim, a page of a
listing) while the queue stays as deep as it was filled. This client sends
one request at a time on one keep-alive connection and times each with
``perf_counter``. Its own cost (tens of microseconds a request) is the same
at every depth, so depth ratios are unaffected.
"""

import http.client
import json
import math
import re
import time
import uuid

#: The Client-ID every harness request carries.
CLIENT_ID = str(uuid.UUID("5b1e2a0c-0d6e-4f1a-9f0e-be7c4b3a0001"))

_MESSAGE_ID = re.compile(r"/messages/([^\"?/]+)\?claim_id=")


class ProbeError(Exception):
    """An answer the harness did not expect (status and body in the text)."""


class Client:
    def __init__(self, host, port, timeout=30.0, token=None):
        self.connection = http.client.HTTPConnection(host, port, timeout=timeout)
        #: The X-Auth-Token sent, if any.
        self.token = token
        #: The Location header of the last answer, if any.
        self.location = None

    def close(self):
        self.connection.close()

    def request(self, method, path, body=None, expect=(200, 201, 204), project=None):
        """
        Send one request (in ``project``'s namespace when given); return
        ``(status, body bytes, seconds)``.

        @raise ProbeError: the status is not in ``expect``.
        """
        headers = {"Client-ID": CLIENT_ID}
        if project is not None:
            headers["X-Project-ID"] = project
        if self.token is not None:
            headers["X-Auth-Token"] = self.token
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        self.connection.request(method, path, payload, headers)
        response = self.connection.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        self.location = response.getheader("Location")
        if response.status not in expect:
            raise ProbeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return response.status, data, elapsed

    def create_queue(self, queue, project=None):
        self.request("PUT", f"/v1/queues/{queue}", expect=(201, 204), project=project)

    def claim(self, queue, limit=10):
        """Claim up to ``limit``; return ``(messages claimed, claim id, seconds)``."""
        status, data, elapsed = self.request(
            "POST", f"/v1/queues/{queue}/claims?limit={limit}", {"ttl": 60, "grace": 60},
            expect=(201, 204))
        if status != 201:
            return 0, None, elapsed
        claim_id = self.location.rsplit("/", 1)[-1] if self.location else None
        return len(_MESSAGE_ID.findall(data.decode())), claim_id, elapsed

    def release(self, queue, claim_id):
        _, _, elapsed = self.request("DELETE", f"/v1/queues/{queue}/claims/{claim_id}",
                                     expect=(204,))
        return elapsed

    def list_page(self, queue, limit=10):
        """List the first page; return ``(message count, seconds)``."""
        status, data, elapsed = self.request(
            "GET", f"/v1/queues/{queue}/messages?limit={limit}&echo=true", expect=(200, 204))
        count = len(json.loads(data)["messages"]) if status == 200 else 0
        return count, elapsed


def percentile(samples, fraction):
    """The ``fraction`` (0..1) percentile of ``samples``, nearest rank."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


def depth_latency(client, queue, samples):
    """
    Time ``samples`` claims and list pages on ``queue``, sequentially.

    Each claim is released at once, so the queue keeps its depth and its
    head never fills with claimed messages: every claim does the same work.

    @return: a dict of p50/p99 milliseconds for ``claim`` and ``list``, and
        how many claims and pages came back empty (``empty``: a sign that
        the queue was not filled as intended).
    """
    claims, pages, empty = [], [], 0
    for _ in range(samples):
        claimed, claim_id, seconds = client.claim(queue)
        claims.append(seconds)
        if claim_id:
            client.release(queue, claim_id)
        listed, seconds = client.list_page(queue)
        pages.append(seconds)
        empty += (claimed == 0) + (listed == 0)
    summary = {"samples": samples, "empty": empty}
    for name, values in (("claim", claims), ("list", pages)):
        summary[name] = {"p50_ms": round(percentile(values, 0.5) * 1000, 3),
                         "p99_ms": round(percentile(values, 0.99) * 1000, 3)}
    return summary
