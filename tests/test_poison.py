"""No poison message (issue 19, item 1): documents nested deeper than
``[limits:transport] max_json_nesting`` are refused before they are stored,
everything accepted is readable through every read, and a record written
by anyone else (too deep, not JSON, not UTF-8) never breaks a read."""

import base64
import json

from bson.int64 import Int64
from twisted.trial import unittest

from marconi_tx import config, json_text, validation
from marconi_tx.errors import ValidationError
from marconi_tx.storage.sqlite.driver import SqliteDriver
from tests.http_support import ApiClient, ApiOverDriverMixin, claim_id_of, message_id
from tests.test_line_protocol import LineTestCase

LIMIT = config.load().transport.max_json_nesting
Q = "/v1/queues/poison"
#: Depths around the limit, the issue's ~958 and far beyond.
DEPTHS = (LIMIT - 1, LIMIT, LIMIT + 1, 958, 5000)


def nested_text(depth):
    """JSON text of arrays and objects alternating ``depth`` deep around 1."""
    opens = "".join('{"k":' if i % 2 else "[" for i in range(depth))
    closes = "".join("}" if i % 2 else "]" for i in reversed(range(depth)))
    return opens + "1" + closes


def post_text(bodies):
    """A v1 POST of messages with the JSON texts ``bodies``, written by hand
    (json.dumps itself recurses)."""
    return ("[" + ",".join(f'{{"ttl":300,"body":{b}}}' for b in bodies) + "]").encode()


def depth_of(doc):
    """The nesting of a parsed document, counted without recursion."""
    deepest, level = 0, [(doc, 0)]
    while level:
        value, depth = level.pop()
        if isinstance(value, (list, dict)):
            deepest = max(deepest, depth + 1)
            level.extend((v, depth + 1) for v in
                         (value.values() if isinstance(value, dict) else value))
    return deepest


class NestingTests(unittest.SynchronousTestCase):
    """json_text.nesting measures depth on the text, skipping strings."""

    def test_depths(self):
        """Arrays and objects count alike; brackets inside strings (with
        escaped quotes and backslashes) do not; scalars are depth 0."""
        cases = [(b"1", 0), (b"[]", 1), (b"{}", 1), (b'[{"a":[1,{}]}]', 4),
                 (b'["[[[[", "\\"[[[", "\\\\", [2]]', 2),
                 (b'{"a]}":"{{{{","b":[[["x\\\\\\"[["]]]}', 4),
                 (nested_text(LIMIT).encode(), LIMIT), (nested_text(5000).encode(), 5000)]
        for text, depth in cases:
            self.assertEqual(json_text.nesting(text), depth, text[:40])
            self.assertEqual(json_text.nesting(text.decode()), depth, text[:40])

    def test_agrees_with_the_parsed_document(self):
        """On documents json can parse, the text's depth is the document's."""
        docs = [{"a": [1, {"b": "]]]}"}], "c": {"d": [[[]]]}}, ["\\", "\"{", [{}]],
                json.loads(nested_text(LIMIT + 3))]
        for doc in docs:
            self.assertEqual(json_text.nesting(json.dumps(doc).encode()), depth_of(doc))


class StoredTests(unittest.SynchronousTestCase):
    """json_text.stored decodes any stored value without failing."""

    def test_documents_decode(self):
        """JSON text up to READ_NESTING deep (str or UTF-8 bytes) is its document."""
        deepest = nested_text(json_text.READ_NESTING)
        self.assertEqual(json_text.stored(deepest), json.loads(deepest))
        self.assertEqual(json_text.stored('{"a": ["é", 1]}'.encode()), {"a": ["é", 1]})
        self.assertEqual(json_text.stored('"[[[[' + "[" * 5000 + '"'), "[[[[" + "[" * 5000)

    def test_shortest_texts_at_the_cap(self):
        """The shortest texts one level deeper than READ_NESTING are shown as
        text, one level less decode (the length shortcut is exact)."""
        cap = json_text.READ_NESTING
        self.assertEqual(depth_of(json_text.stored("[" * cap + "]" * cap)), cap)
        too_deep = "[" * (cap + 1) + "]" * (cap + 1)
        self.assertEqual(json_text.stored(too_deep), too_deep)

    def test_undecodable_text_is_shown_as_text(self):
        """Text too deep, not JSON, with NaN, or decoding to a lone surrogate
        comes back as the stored text itself, a JSON string."""
        for text in (nested_text(json_text.READ_NESTING + 1), "[" * 5000 + "]" * 5000,
                     "[" * 5000, "plain words", "", "NaN", '[1, Infinity]', '"\\ud800"'):
            self.assertEqual(json_text.stored(text), text)
            json.dumps(json_text.stored(text)).encode("utf-8")

    def test_read_stored_gives_the_text_of_documents(self):
        """read_stored gives the stored text beside the document it decoded
        to (spaces around it and all), and no text when the document is not
        decoded from it: text shown as itself, base64, engine values."""
        for text in ('{"a": ["é", 1]}', ' \n[1, "\\u00e9", {"b": null}]\t', '"x"', "1e400",
                     '"\\ud83d\\ude00"', nested_text(json_text.READ_NESTING)):
            self.assertEqual(json_text.read_stored(text), (json.loads(text), text))
            self.assertEqual(json_text.read_stored(text.encode()), (json.loads(text), text))
        for value in ("NaN", "not JSON", '"\\ud800"', nested_text(json_text.READ_NESTING + 1),
                      b"\xff", {"a": 1}):
            self.assertEqual(json_text.read_stored(value),
                             (json_text.stored(value), None), value)

    def test_bytes_not_utf8_are_base64(self):
        """Bytes that are not UTF-8 are {"base64": ...}, as the line port stores them."""
        self.assertEqual(json_text.stored(b"\xff\xfe["), {"base64": base64.b64encode(
            b"\xff\xfe[").decode()})

    def test_engine_values(self):
        """A value an engine decoded itself is kept if it is JSON, else named."""
        self.assertEqual(json_text.stored({"a": [1]}), {"a": [1]})
        self.assertEqual(json_text.stored(object()), "<stored object>")
        deep = []
        for _ in range(json_text.READ_NESTING):
            deep = [deep]
        self.assertIsInstance(json_text.stored(deep), str)


class ParseJsonTests(unittest.SynchronousTestCase):
    """validation.parse_json refuses documents nested too deeply, before parsing."""

    def setUp(self):
        self.limits = config.load().transport

    def test_message_bodies_around_the_limit(self):
        """A v1 POST whose bodies are nested up to the limit parses; one level
        more is a 400 naming the limit; so is the issue's ~958."""
        rule = validation.message_nesting(self.limits, validation.V1_MESSAGE_ENVELOPE)
        for depth in (LIMIT - 1, LIMIT):
            doc = validation.parse_json(post_text(["1", nested_text(depth)]), rule)
            self.assertEqual(depth_of(doc[1]["body"]), depth)
        for depth in (LIMIT + 1, 958, 5000):
            e = self.assertRaises(ValidationError, validation.parse_json,
                                  post_text([nested_text(depth)]), rule)
            self.assertEqual(e.title, "Nested too deeply")
            self.assertEqual(e.description, f"A message body may not be nested more than "
                             f"{LIMIT} levels deep (arrays and objects within each other).")

    def test_metadata_and_other_bodies(self):
        """Metadata may be nested as deep as the limit; any other request body
        (claims) as deep as READ_NESTING."""
        rule = validation.metadata_nesting(self.limits)
        validation.parse_json(nested_text(LIMIT).encode(), rule)
        e = self.assertRaises(ValidationError, validation.parse_json,
                              nested_text(LIMIT + 1).encode(), rule)
        self.assertIn(f"Queue metadata may not be nested more than {LIMIT} levels", e.description)
        validation.parse_json(b"[" * LIMIT + b"]" * LIMIT, rule)
        self.assertRaises(ValidationError, validation.parse_json,
                          b"[" * (LIMIT + 1) + b"]" * (LIMIT + 1), rule)
        validation.parse_json(nested_text(json_text.READ_NESTING).encode())
        self.assertRaises(ValidationError, validation.parse_json,
                          nested_text(json_text.READ_NESTING + 1).encode())

    def test_configurable_up_to_what_reads_decode(self):
        """The limit is a setting whose largest value is what reads decode."""
        deepest = str(json_text.READ_NESTING)
        config.load(overrides=[("limits:transport", "max_json_nesting", deepest)])
        self.assertRaises(config.ConfigError, config.load, overrides=[
            ("limits:transport", "max_json_nesting", str(json_text.READ_NESTING + 1))])
        limits = config.load(overrides=[("limits:transport", "max_json_nesting", "3")]).transport
        rule = validation.message_nesting(limits, validation.V1_MESSAGE_ENVELOPE)
        validation.parse_json(post_text(["[[[1]]]"]), rule)
        self.assertRaises(ValidationError, validation.parse_json, post_text(["[[[[1]]]]"]), rule)


class PoisonMixin(ApiOverDriverMixin):
    """Over HTTP v1 on a driver: ``make_driver(clock)`` and ``plant(message
    id, stored value)`` writing a body with the engine's own API."""

    async def setUp(self):
        await super().setUp()
        answer = await self.api.put(Q)
        self.assertEqual(answer.code, 201)

    async def post(self, texts):
        return await self.api.post(Q + "/messages", post_text(texts))

    async def post_ids(self, texts):
        answer = await self.post(texts)
        self.assertEqual(answer.code, 201, answer.body)
        return [message_id(href) for href in answer.json["resources"]]

    async def read_everything(self, ids):
        """{id: body} as seen by the listing, GET by id, GET ?ids=, claim
        create and GET claim, which must all agree and answer 200/201."""
        seen = []
        answer = await self.api.get(Q + "/messages?echo=true&limit=20")
        self.assertEqual(answer.code, 200, answer.body)
        seen.append({message_id(m["href"]): m["body"] for m in answer.json["messages"]})
        by_id = {}
        for mid in ids:
            answer = await self.api.get(f"{Q}/messages/{mid}")
            self.assertEqual(answer.code, 200, answer.body)
            by_id[mid] = answer.json["body"]
        seen.append(by_id)
        answer = await self.api.get(f"{Q}/messages?ids={','.join(ids)}")
        self.assertEqual(answer.code, 200, answer.body)
        seen.append({message_id(m["href"]): m["body"] for m in answer.json})
        answer = await self.api.post(Q + "/claims?limit=20", {"ttl": 60, "grace": 60})
        self.assertEqual(answer.code, 201, answer.body)
        seen.append({message_id(m["href"]): m["body"] for m in answer.json})
        answer = await self.api.get(f"{Q}/claims/{claim_id_of(answer)}")
        self.assertEqual(answer.code, 200, answer.body)
        seen.append({message_id(m["href"]): m["body"] for m in answer.json["messages"]})
        for other in seen[1:]:
            self.assertEqual(other, seen[0])
        self.assertEqual(sorted(seen[0], key=int), ids)
        return seen[0]

    async def test_accepted_means_readable(self):
        """Bodies nested up to the limit are 201 and read back unchanged
        everywhere, with the messages around them; deeper ones (the limit + 1,
        the issue's 958, 5000) are 400 and nothing of their POST is stored."""
        ids, expected = await self.post_ids(['"before"']), ["before"]
        for depth in DEPTHS:
            text = nested_text(depth)
            answer = await self.post([text])
            if depth <= LIMIT:
                self.assertEqual(answer.code, 201, depth)
                ids.append(message_id(answer.json["resources"][0]))
                expected.append(json.loads(text))
            else:
                self.assertEqual((answer.code, answer.json["title"]),
                                 (400, "Nested too deeply"), depth)
                self.assertIn(f"more than {LIMIT} levels", answer.json["description"])
        ids += await self.post_ids(['"after"'])
        expected.append("after")
        bodies = await self.read_everything(ids)
        self.assertEqual([bodies[i] for i in ids], expected)

    async def test_metadata_around_the_limit(self):
        """Metadata nested up to the limit is stored and read back; deeper is
        400 and the stored metadata is unchanged."""
        text = '{"m":' + nested_text(LIMIT - 1) + "}"
        answer = await self.api.put(Q + "/metadata", text.encode())
        self.assertEqual(answer.code, 204, answer.body)
        for depth in (LIMIT + 1, 958, 5000):
            answer = await self.api.put(Q + "/metadata",
                                        ('{"m":' + nested_text(depth - 1) + "}").encode())
            self.assertEqual((answer.code, answer.json["title"]),
                             (400, "Nested too deeply"), depth)
        answer = await self.api.get(Q + "/metadata")
        self.assertEqual((answer.code, answer.json), (200, json.loads(text)))

    async def test_planted_records_never_break_reads(self):
        """Bodies written behind the API's back (deeper than any limit, not
        JSON, not UTF-8) are read as the stored text, or {"base64": ...} for
        bytes that are not UTF-8; every read still answers 200/201 and the
        other messages come back intact."""
        ids = await self.post_ids(['"first"', "1", "2", "3", "4", '{"last":[true]}'])
        planted = {ids[1]: "[" * 5000 + "]" * 5000,
                   ids[2]: nested_text(json_text.READ_NESTING + 1),
                   ids[3]: "not JSON at all {[",
                   ids[4]: b"\xff\xfe not UTF-8"}
        for mid, value in planted.items():
            await self.plant(mid, value)
        bodies = await self.read_everything(ids)
        self.assertEqual(bodies, {
            ids[0]: "first", ids[1]: planted[ids[1]], ids[2]: planted[ids[2]],
            ids[3]: planted[ids[3]],
            ids[4]: {"base64": base64.b64encode(planted[ids[4]]).decode()},
            ids[5]: {"last": [True]}})

    async def test_planted_json_text_read_as_its_document(self):
        """Bodies written behind the API's back as JSON text in another
        spelling (spaces, newlines, escapes, a surrogate pair) are read as
        their documents by every read, in answers that are JSON."""
        texts = [' {"a" :  [1,\n2] , "b":"\\u00e9"} ', '"\\ud83d\\ude00"', "[ ]", "\t-0.5e3"]
        ids = await self.post_ids(["0"] * len(texts))
        for mid, text in zip(ids, texts):
            await self.plant(mid, text)
        bodies = await self.read_everything(ids)
        self.assertEqual([bodies[mid] for mid in ids], [json.loads(t) for t in texts])

    async def test_planted_metadata_never_breaks_reads(self):
        """Metadata written behind the API's back too deep is read as its text."""
        deep = "[" * 5000 + "]" * 5000
        await self.plant_metadata(deep)
        answer = await self.api.get(Q + "/metadata")
        self.assertEqual((answer.code, answer.json), (200, deep))
        answer = await self.api.get("/v1/queues?detailed=true")
        self.assertEqual((answer.code, answer.json["queues"][0]["metadata"]), (200, deep))


class PoisonOnSqliteTests(PoisonMixin, unittest.TestCase):
    def make_driver(self, clock):
        return SqliteDriver(self.mktemp() + ".db", clock)

    async def plant(self, mid, value):
        # bytes as TEXT: what no Python client could write, invalid UTF-8 text
        cast = "CAST(? AS TEXT)" if isinstance(value, bytes) else "?"
        self.driver.db.execute(f"UPDATE messages SET body={cast} WHERE id=?", (value, int(mid)))

    async def plant_metadata(self, value):
        self.driver.db.execute("UPDATE queues SET metadata=?", (value,))


class PoisonOnMongoTests(PoisonMixin, unittest.TestCase):
    """The same over MongoDB (a real MongoDB-wire server)."""

    def make_driver(self, clock):
        from marconi_tx.storage.mongodb.driver import MongoDriver
        from tests.mongodb_server import fresh_database_uri

        return MongoDriver(fresh_database_uri(self), clock, config.load().mongodb)

    async def plant(self, mid, value):
        # bytes are stored as BSON binary, which decodes as bytes
        result = await self.driver.db.messages.update_one({"_id": Int64(int(mid))},
                                                          {"$set": {"b": value}})
        self.assertEqual(result.modified_count, 1)

    async def plant_metadata(self, value):
        await self.driver.db.queues.update_one({}, {"$set": {"m": value}})


class LinePoisonTests(LineTestCase):
    """The line port stores bytes as JSON strings: whatever their brackets,
    HTTP reads them; a planted body is reserved as its stored text."""

    def setUp(self):
        super().setUp()
        self.api = ApiClient(self.driver, self.config)

    async def test_bracket_bodies_read_over_http(self):
        """A job of 5000 '[' (and one not UTF-8) put over TCP is read over HTTP
        by id, listing and claim: 200/201, the body as a string (or base64)."""
        self.c.ask(b"use shared")
        text, raw = b"[" * 5000, b"\xff" + b"[" * 5000
        ids = [self.c.put(text), self.c.put(raw)]
        expected = [text.decode(), {"base64": base64.b64encode(raw).decode()}]
        for job_id, body in zip(ids, expected):
            answer = await self.api.get(f"/v1/queues/shared/messages/{job_id}")
            self.assertEqual((answer.code, answer.json["body"]), (200, body))
        answer = await self.api.get("/v1/queues/shared/messages?echo=true")
        self.assertEqual([m["body"] for m in answer.json["messages"]], expected)
        answer = await self.api.post("/v1/queues/shared/claims", {"ttl": 60, "grace": 60})
        self.assertEqual([m["body"] for m in answer.json], expected)

    def test_planted_body_reserved_as_its_text(self):
        """A stored body that does not decode is reserved and peeked as the
        bytes of its text, and the next job still comes."""
        self.c.ask(b"use t", b"watch t")
        first, second = self.c.put(b"a"), self.c.put(b"b")
        deep = "[" * 5000 + "]" * 5000
        self.driver.db.execute("UPDATE messages SET body=? WHERE id=?", (deep, first))
        self.assertEqual(self.c.reserve(), (first, deep.encode()))
        self.assertEqual(self.c.reserve(), (second, b"b"))
