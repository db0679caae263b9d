"""Table-driven bad input: every row is a 4xx with a JSON error (or the spec's
empty-bodied 404/405/406), never a 500, and loses nothing already stored."""

from twisted.trial import unittest

from marconi_tx.storage.sqlite.driver import SqliteDriver
from tests.http_support import ApiClient, new_clock

Q = "/v1/queues/jobs"
GOOD_CLAIM = b'{"ttl": 60, "grace": 60}'

# (method, path, body, extra headers, expected status)
ROWS = [
    # malformed JSON and wrong document types
    ("POST", Q + "/messages", b"[{", {}, 400),
    ("POST", Q + "/messages", b"\xff\xfe[]", {}, 400),
    ("POST", Q + "/messages", b"[" * 100000 + b"]" * 100000, {}, 400),
    ("POST", Q + "/messages", b'[{"ttl": 60, "body": NaN}]', {}, 400),
    ("POST", Q + "/messages", b'[{"ttl": 60, "body": Infinity}]', {}, 400),
    ("POST", Q + "/messages", b'[{"ttl": 60, "body": "\\ud800"}]', {}, 400),
    ("POST", Q + "/messages", b'[{"ttl": 60, "body": 1}] trailing', {}, 400),
    # nested deeper than max_json_nesting (100), or than any read decodes (200)
    ("POST", Q + "/messages", b'[{"ttl": 60, "body": ' + b"[" * 101 + b"]" * 101 + b"}]",
     {}, 400),
    ("POST", Q + "/messages", b'[{"ttl": 60, "body": ' + b"[" * 958 + b"]" * 958 + b"}]",
     {}, 400),
    ("PUT", Q + "/metadata", b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}", {}, 400),
    ("POST", Q + "/claims", b'{"ttl": 60, "grace": 60, "x": ' + b"[" * 200 + b"]" * 200 + b"}",
     {}, 400),
    ("POST", Q + "/messages", b'{"messages": []}', {}, 400),
    ("POST", Q + "/messages", b'[null]', {}, 400),
    ("POST", Q + "/messages", b'[{"ttl": true, "body": 1}]', {}, 400),
    ("POST", Q + "/messages", b'[{"ttl": 1e2, "body": 1}]', {}, 400),
    ("POST", Q + "/messages", b'[{"ttl": 99999999999999999999, "body": 1}]', {}, 400),
    ("POST", Q + "/messages", b'[{"ttl": 60, "body": -9223372036854775809}]', {}, 400),
    ("PUT", Q + "/metadata", b'{"a": 9223372036854775808}', {}, 400),
    ("PUT", Q + "/metadata", b"null", {}, 400),
    ("PUT", Q + "/metadata", b"\x00", {}, 400),
    ("POST", Q + "/claims", b"[]", {}, 400),
    ("POST", Q + "/claims", b'{"ttl": 60, "grace": 60', {}, 400),
    ("POST", Q + "/claims", b'{"ttl": 9223372036854775807, "grace": 60}', {}, 400),
    ("POST", Q + "/claims", b'{"ttl": -9223372036854775808, "grace": 60}', {}, 400),
    ("PATCH", Q + "/claims/0123456789abcdef01234567", b'{"ttl": null}', {}, 400),
    # oversize bodies
    ("POST", Q + "/messages", b'[{"ttl": 60, "body": "' + b"x" * 262200 + b'"}]', {}, 400),
    ("PUT", Q + "/metadata", b'{"a": "' + b"x" * 65600 + b'"}', {}, 400),
    # bad queue names and project ids
    ("PUT", "/v1/queues/" + "x" * 65, None, {}, 400),
    ("PUT", "/v1/queues/bad%00name", None, {}, 400),
    ("PUT", "/v1/queues/%E2%98%83", None, {}, 400),
    ("PUT", "/v1/queues/%ff", None, {}, 400),
    ("GET", Q + "/messages/1", None, {"X-Project-ID": "p" * 257}, 400),
    ("GET", Q + "/stats", None, {"X-Project-ID": b"\xff\xfe"}, 400),
    # bad or missing headers
    ("GET", Q + "/messages", None, {"Client-ID": "nope"}, 400),
    ("GET", Q + "/messages", None, {"Client-ID": b"\xff" * 16}, 400),
    ("POST", Q + "/messages", b'[{"ttl": 60, "body": 1}]', {"Client-ID": "{}"}, 400),
    ("GET", Q + "/stats", None, {"Accept": "text/html"}, 406),
    ("GET", Q + "/stats", None, {"Accept": "application/json;q=zz"}, 406),
    # bad query values
    ("GET", Q + "/messages?limit=99999999999999999999999", None, {}, 400),
    ("GET", Q + "/messages?limit=%ff", None, {}, 400),
    ("GET", Q + "/messages?echo=%ff", None, {}, 400),
    ("GET", Q + "/messages?marker=%ff", None, {}, 400),
    ("GET", "/v1/queues?marker=%ff", None, {}, 400),
    ("GET", Q + "/messages?ids=" + ",".join(["1"] * 21), None, {}, 400),
    ("POST", Q + "/claims?limit=-5", GOOD_CLAIM, {}, 400),
    ("POST", Q + "/claims?limit=1e3", GOOD_CLAIM, {}, 400),
    ("DELETE", Q + "/messages?ids=", None, {}, 400),
    # unknown routes and wrong methods
    ("GET", "/v3/queues", None, {}, 404),
    ("GET", "/v1/queues/jobs/unknown", None, {}, 404),
    ("GET", "/v1/queues/jobs/messages/1/extra", None, {}, 404),
    ("PUT", "/v1/health", None, {}, 405),
    ("PATCH", Q + "/messages", None, {}, 405),
    ("BREW", Q, None, {}, 405),
    ("GET", Q + "/claims", None, {}, 405),
]


class BadInputTests(unittest.TestCase):
    async def setUp(self):
        self.driver = SqliteDriver(":memory:", new_clock())
        await self.driver.open()
        self.addCleanup(self.driver.close)
        self.api = ApiClient(self.driver)
        await self.api.put(Q)
        await self.api.put(Q + "/metadata", {"keep": True})
        self.kept = await self.api.post_messages("jobs", 2)

    async def test_every_row_is_a_clean_4xx(self):
        """Each bad request gets its 4xx: a JSON body with a title, or no
        body for 404/405/406; stored data is unchanged afterwards."""
        for method, path, body, headers, status in ROWS:
            answer = await self.api.request(method, path, body, headers=headers)
            row = (method, path[:60], (body or b"")[:40], headers)
            self.assertEqual(answer.code, status, row)
            if status in (404, 405, 406):
                self.assertEqual(answer.body, b"", row)
            else:
                self.assertIn("title", answer.json, row)
                self.assertTrue(answer.headers["content-type"].startswith("application/json"))
        answer = await self.api.get(Q + "/metadata")
        self.assertEqual(answer.json, {"keep": True})
        answer = await self.api.get(f"{Q}/messages?ids={','.join(self.kept)}")
        self.assertEqual(len(answer.json), 2)
