"""The HTTP API v2 behaviour (api-v2.md), as a mixin run against every driver.

A concrete TestCase mixes ``HttpV2Mixin`` with ``twisted.trial.unittest.TestCase``
and provides ``make_driver(clock)`` returning an unopened driver. Every
"Tricky cases" item of api-v2.md §10 is a test here (named in its
docstring), but subscriptions (item 12): ``tests.http_subscriptions_tests``.
"""

import hashlib
import hmac
import json

from tests.http_support import claim_id_of, message_id
from tests.http_v1_1_tests import PROJECT, NewerApiMixin

PATCH_TYPE = "application/openstack-messaging-v2.0-json-patch"
DEFAULTS = {"_default_message_ttl": 3600, "_max_messages_post_size": 262144,
            "_default_message_delay": 0, "_dead_letter_queue": None,
            "_dead_letter_queue_messages_ttl": None, "_max_claim_count": None,
            "_enable_encrypt_messages": False}
SECRET = "s3cret"


class HttpV2Mixin(NewerApiMixin):
    prefix = "/v2"

    def patch_metadata(self, ops, path=None, content_type=PATCH_TYPE):
        return self.patch(path or self.q, ops, headers={"Content-Type": content_type})

    # -- entry points and checks ------------------------------------------------

    async def test_versions_document(self):
        """§10.1: GET / is 300 without any header and lists v1 and v1.1
        deprecated, v2 current, each with a self link."""
        answer = await self.api.get("/", client_id=None)
        self.assertEqual(answer.code, 300)
        versions = {v["id"]: v for v in answer.json["versions"]}
        self.assertEqual({k: v["status"] for k, v in versions.items()},
                         {"1": "DEPRECATED", "1.1": "DEPRECATED", "2": "CURRENT"})
        self.assertEqual(versions["2"]["links"], [{"href": "/v2/", "rel": "self"}])
        self.assertEqual(versions["2"]["media-types"][0]["type"],
                         "application/vnd.openstack.messaging-v2+json")

    async def test_headers_required(self):
        """§10.1: every /v2 request without Client-ID or X-Project-ID is 400
        with a JSON title."""
        for method, path in (("GET", "/v2"), ("GET", "/v2/ping"), ("GET", "/v2/queues"),
                             ("PUT", self.q), ("GET", self.q + "/messages"),
                             ("POST", self.q + "/claims"), ("POST", self.q + "/purge")):
            for kw in ({"client_id": None}, {"project": None}, {"project": ""},
                       {"client_id": "not-a-uuid"}):
                answer = await self.call(method, path, **kw)
                self.assertEqual(answer.code, 400, (path, kw))
                self.assertIn("title", answer.json)

    async def test_form_content_type_refused(self):
        """A body sent as a form (application/x-www-form-urlencoded) is 400
        "Invalid Content-Type", whatever the route."""
        answer = await self.put(self.q, b"a=1", headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((answer.code, answer.json["title"]), (400, "Invalid Content-Type"))

    async def test_home_and_errors(self):
        """GET /v2 and /v2/ are JSON-home with v2's rels; unknown paths and
        wrong methods answer JSON 404/405; ping is 204."""
        for path in ("/v2", "/v2/"):
            answer = await self.get(path)
            self.assertEqual(answer.headers["content-type"], "application/json-home")
            resources = answer.json["resources"]
            for rel in ("rel/queue_share", "rel/queue_purge", "rel/message_get", "rel/ping",
                        "rel/subscriptions_get", "rel/post_messages"):
                self.assertIn(rel, resources)
            self.assertEqual(resources["rel/queue"]["hints"]["allow"],
                             ["GET", "PUT", "DELETE", "PATCH"])
            self.assertNotIn("rel/health", resources)
        answer = await self.get("/v2/nothing/here")
        self.assertEqual((answer.code, answer.json["title"]), (404, "Not found"))
        answer = await self.post(self.q + "/stats")
        self.assertEqual(answer.code, 405)
        self.assertIn("title", answer.json)
        self.assertEqual((await self.get("/v2/ping")).code, 204)
        self.assertEqual((await self.get("/v2/health")).code, 404)

    async def test_dotted_queue_names(self):
        """§10.2: Service.test_queue is a valid v2 name (201); v1.1 refuses it."""
        self.assertEqual((await self.put("/v2/queues/Service.test_queue")).code, 201)
        ids = await self.post_messages(1, queue="Service.test_queue")
        self.assertEqual(await self.listed(queue="Service.test_queue"), ids)
        answer = await self.put("/v1.1/queues/Service.test_queue")
        self.assertEqual(answer.code, 400)

    # -- queue metadata -----------------------------------------------------------

    async def test_queue_get_shows_defaults(self):
        """§10.3: a never-created queue GETs 200 with the seven reserved
        defaults; after PUT {"messages": {"ttl": 600}} GET shows that key
        and the defaults; a detailed listing shows them too."""
        answer = await self.get("/v2/queues/never")
        self.assertEqual((answer.code, answer.json), (200, DEFAULTS))
        self.assertEqual((await self.put(self.q, {"messages": {"ttl": 600}})).code, 201)
        self.assertEqual((await self.get(self.q)).json, {"messages": {"ttl": 600}, **DEFAULTS})
        answer = await self.get("/v2/queues?detailed=true")
        self.assertEqual(answer.json["queues"][0]["metadata"],
                         {"messages": {"ttl": 600}, **DEFAULTS})

    async def test_reserved_attribute_values(self):
        """§10.4: out-of-range or wrongly typed reserved attributes are 400 on
        PUT; in-range ones are accepted."""
        for bad in ({"_default_message_ttl": 0}, {"_default_message_ttl": 59},
                    {"_default_message_ttl": 1209601}, {"_default_message_delay": 901},
                    {"_max_messages_post_size": 0}, {"_max_messages_post_size": 262145},
                    {"_dead_letter_queue_messages_ttl": "123"},
                    {"_dead_letter_queue_messages_ttl": 59},
                    {"_dead_letter_queue_messages_ttl": 0}, {"_max_claim_count": "123"}):
            answer = await self.put(self.q, bad)
            self.assertEqual(answer.code, 400, bad)
            self.assertIn("title", answer.json)
        answer = await self.put(self.q, {"_default_message_ttl": 60, "_max_claim_count": 0})
        self.assertEqual(answer.code, 201)

    async def test_reserved_attributes_across_versions(self):
        """v1 stores reserved attributes as plain metadata, unchecked, and
        applies none (its posts still need a ttl); v1.1 validates them on
        PUT and applies none; v2 applies what v1 stored."""
        await self.api.put("/v1/queues/jobs", project=PROJECT)
        answer = await self.api.put("/v1/queues/jobs/metadata",
                                    {"_default_message_ttl": 999, "_max_claim_count": "x"},
                                    project=PROJECT)
        self.assertEqual(answer.code, 204)
        answer = await self.api.post("/v1/queues/jobs/messages", [{"body": 1}],
                                     project=PROJECT)
        self.assertEqual(answer.code, 400)
        await self.api.put("/v1/queues/jobs/metadata", {"_default_message_ttl": 999},
                           project=PROJECT)
        for version, ttl in (("v1.1", 3600), ("v2", 999)):
            answer = await self.post(f"/{version}/queues/jobs/messages",
                                     {"messages": [{"body": 1}]})
            mid = message_id(answer.json["resources"][0])
            answer = await self.get(f"/{version}/queues/jobs/messages/{mid}")
            self.assertEqual(answer.json["ttl"], ttl, version)
        answer = await self.put("/v1.1/queues/other", {"_default_message_ttl": 59})
        self.assertEqual(answer.code, 400)

    async def test_patch(self):
        """§10.5: a wrong Content-Type is 415; path /a, op "a" are 400;
        replace or remove of a missing user key is 409; remove of a missing
        reserved key is 200; replace of an absent _default_message_ttl is 200
        and GET shows it; a missing queue is 404; a bad result value is 400."""
        await self.put(self.q, {"owner": "ops", "old": 1})
        answer = await self.patch_metadata([], content_type="application/json")
        self.assertEqual(answer.code, 415)
        self.assertIn("title", answer.json)
        for ops, code in (
                ([{"op": "add", "path": "/a", "value": 1}], 400),
                ([{"op": "a", "path": "/metadata/a", "value": 1}], 400),
                ({"op": "add", "path": "/metadata/a", "value": 1}, 400),
                ([{"op": "replace", "path": "/metadata/missing", "value": 1}], 409),
                ([{"op": "remove", "path": "/metadata/missing"}], 409),
                ([{"op": "replace", "path": "/metadata/_default_message_ttl", "value": 1}],
                 400)):
            answer = await self.patch_metadata(ops)
            self.assertEqual(answer.code, code, ops)
            self.assertIn("title", answer.json)
        answer = await self.patch_metadata([{"op": "remove",
                                             "path": "/metadata/_max_claim_count"}])
        self.assertEqual(answer.code, 200)
        answer = await self.patch_metadata([
            {"op": "add", "path": "/metadata/owner", "value": "dev"},
            {"op": "replace", "path": "/metadata/_default_message_ttl", "value": 300},
            {"op": "remove", "path": "/metadata/old"}])
        self.assertEqual(answer.code, 200)
        expected = {**DEFAULTS, "owner": "dev", "_default_message_ttl": 300}
        self.assertEqual(answer.json, expected)
        self.assertEqual((await self.get(self.q)).json, expected)
        answer = await self.patch_metadata([{"op": "add", "path": "/metadata/a", "value": 1}],
                                           path="/v2/queues/missing")
        self.assertEqual(answer.code, 404)

    async def test_list_queues_filters(self):
        """§10.14: name= keeps names containing it, ?owner=ops filters on
        metadata (integers compared as integers), with_count=true adds the
        project's count; an empty page is 200 with links []."""
        await self.put("/v2/queues/alpha", {"owner": "ops", "size": 3})
        await self.put("/v2/queues/beta", {"owner": "dev"})
        await self.put("/v2/queues/alphabet", {"owner": "dev"})
        answer = await self.get("/v2/queues?name=alpha")
        self.assertEqual([q["name"] for q in answer.json["queues"]], ["alpha", "alphabet"])
        answer = await self.get("/v2/queues?owner=ops")
        self.assertEqual([q["name"] for q in answer.json["queues"]], ["alpha"])
        answer = await self.get("/v2/queues?size=3&owner=ops")
        self.assertEqual([q["name"] for q in answer.json["queues"]], ["alpha"])
        answer = await self.get("/v2/queues?owner=dev&limit=1&with_count=true")
        self.assertEqual([q["name"] for q in answer.json["queues"]], ["alphabet"])
        self.assertEqual(answer.json["count"], 3)
        self.assertEqual(answer.json["links"][0]["href"],
                         "/v2/queues?marker=alphabet&limit=1&with_count=true&owner=dev")
        answer = await self.get(answer.json["links"][0]["href"])
        self.assertEqual([q["name"] for q in answer.json["queues"]], ["beta"])
        answer = await self.get("/v2/queues?with_count=true", project="other")
        self.assertEqual(answer.json, {"queues": [], "links": []})

    async def test_list_queues_odd_filters(self):
        """Metadata filters named with any text (non-ASCII, NUL, dots, $,
        & and =) are plain equality filters, never a 500; the next link
        percent-encodes them and can be followed."""
        for name, key in (("odd1", "ü&=x"), ("odd2", "ü&=x")):
            await self.put(f"/v2/queues/{name}", {key: "v.1", "a.b": 1, "$where": 2})
        for query in ("%C2%8D=null&%00%2A=1", "a.b=1", "%24where=2", "%24=1"):
            answer = await self.get("/v2/queues?" + query)
            self.assertEqual(answer.code, 200, query)
        answer = await self.get("/v2/queues?a.b=1&%24where=2")
        self.assertEqual([q["name"] for q in answer.json["queues"]], ["odd1", "odd2"])
        answer = await self.get("/v2/queues?limit=1&%C3%BC%26%3Dx=v.1")
        self.assertEqual([q["name"] for q in answer.json["queues"]], ["odd1"])
        link = answer.json["links"][0]["href"]
        self.assertEqual(link, "/v2/queues?marker=odd1&limit=1&%C3%BC%26%3Dx=v.1")
        answer = await self.get(link)
        self.assertEqual([q["name"] for q in answer.json["queues"]], ["odd2"])

    # -- messages -------------------------------------------------------------

    async def test_queue_default_ttl(self):
        """§10.6: on a queue with _default_message_ttl 999 a message posted
        without ttl has ttl 999; an explicit ttl is kept."""
        await self.put(self.q, {"_default_message_ttl": 999})
        answer = await self.post(self.q + "/messages",
                                 {"messages": [{"body": 1}, {"ttl": 120, "body": 2}]})
        ids = [message_id(h) for h in answer.json["resources"]]
        answer = await self.get(f"{self.q}/messages?ids={','.join(ids)}")
        self.assertEqual(sorted(m["ttl"] for m in answer.json["messages"]), [120, 999])

    async def test_policy_changed_elsewhere_applies_within_the_cache_window(self):
        """A queue's reserved attributes changed behind this process (in
        storage, as another --workers process does) apply to posts once
        [drivers] queue_metadata_cache_seconds (1 s) have passed; this
        process's own PUT applies at once."""
        await self.put(self.q, {"_default_message_ttl": 999})
        await self.post(self.q + "/messages", {"messages": [{"body": 0}]})  # reads, keeps
        await self.driver.queues.set_metadata(PROJECT, "jobs", {"_default_message_ttl": 500})
        self.assertEqual(await self.posted_ttl(), 999)
        self.clock.advance(1)
        self.assertEqual(await self.posted_ttl(), 500)
        await self.patch_metadata([{"op": "replace", "path": "/metadata/_default_message_ttl",
                                    "value": 700}])
        self.assertEqual(await self.posted_ttl(), 700)
        await self.delete(self.q)
        self.assertEqual(await self.posted_ttl(), 3600)

    async def test_dead_letter_policy_changed_elsewhere_applies_within_the_window(self):
        """A dead-letter policy set behind this process applies to claims
        once the cache window (1 s) has passed."""
        await self.post_messages(1)
        self.assertEqual((await self.claim(query="?limit=1")).code, 201)  # reads, keeps
        await self.driver.queues.create(PROJECT, "dlq")
        await self.driver.queues.set_metadata(
            PROJECT, "jobs", {"_max_claim_count": 1, "_dead_letter_queue": "dlq"})
        self.clock.advance(61)  # the claim and its grace expire; the window too
        self.assertEqual((await self.claim()).code, 204)  # claimed once: moved
        self.assertEqual(len(await self.listed(queue="dlq")), 1)

    async def posted_ttl(self):
        """The ttl of a message posted to "jobs" without one."""
        answer = await self.post(self.q + "/messages", {"messages": [{"body": 1}]})
        [mid] = [message_id(h) for h in answer.json["resources"]]
        return (await self.get(f"{self.q}/messages/{mid}")).json["ttl"]

    async def test_queue_post_size_cap(self):
        """§10.7: a queue with _max_messages_post_size 1023 refuses an
        1100-byte post (400) and takes a smaller one."""
        await self.put(self.q, {"_max_messages_post_size": 1023})
        body = b'{"messages": [{"body": "' + b"x" * 1072 + b'"}]}'
        self.assertEqual(len(body), 1100)
        answer = await self.post(self.q + "/messages", body)
        self.assertEqual(answer.code, 400)
        self.assertIn("title", answer.json)
        self.assertEqual((await self.post(self.q + "/messages", body[:1000] + b'"}]}')).code,
                         201)

    async def test_delayed_messages(self):
        """§10.8: on a queue with _default_message_delay 3 a new message is
        hidden from listing and claims for 3 s (listed with
        include_delayed=true, popped and fetched by id); on a queue without a
        default delay a "delay": 5 field is ignored."""
        await self.put(self.q, {"_default_message_delay": 3})
        [mid] = await self.post_messages(1)
        self.assertEqual(await self.listed(), [])
        self.assertEqual(await self.listed("&include_delayed=true"), [mid])
        self.assertEqual((await self.claim()).code, 204)
        self.assertEqual((await self.get(f"{self.q}/messages/{mid}")).code, 200)
        answer = await self.post(self.q + "/messages",
                                 {"messages": [{"body": 1, "delay": 901}]})
        self.assertEqual(answer.code, 400)
        self.clock.advance(3)
        self.assertEqual(await self.listed(), [mid])
        self.assertEqual((await self.claim()).code, 201)
        await self.put("/v2/queues/plain")
        answer = await self.post("/v2/queues/plain/messages",
                                 {"messages": [{"body": 1, "delay": 5}]})
        self.assertEqual(answer.code, 201)
        self.assertEqual((await self.claim(queue="plain")).code, 201)
        await self.put("/v2/queues/slow", {"_default_message_delay": 10})
        await self.post("/v2/queues/slow/messages", {"messages": [{"body": 1, "delay": 0}]})
        self.assertEqual((await self.claim(queue="slow")).code, 201)
        await self.post_messages(1, queue="slow")
        answer = await self.delete("/v2/queues/slow/messages?pop=5")
        self.assertEqual(len(answer.json["messages"]), 1)

    async def test_dead_letter_queue(self):
        """§10.9: with _max_claim_count 2, two claims (after expiry) return
        the message, the third is 204 and the message is in the DLQ with
        ttl = _dead_letter_queue_messages_ttl; pop shows the real claim count."""
        await self.put(self.q, {"_max_claim_count": 2, "_dead_letter_queue": "dlq",
                                "_dead_letter_queue_messages_ttl": 120})
        [mid] = await self.post_messages(1)
        for _ in range(2):
            answer = await self.claim()
            self.assertEqual([m["id"] for m in answer.json["messages"]], [mid])
            self.clock.advance(61)
        self.assertEqual((await self.claim()).code, 204)
        self.assertEqual(await self.listed("&include_claimed=true"), [])
        answer = await self.get("/v2/queues/dlq/messages?echo=true&include_claimed=true")
        [moved] = answer.json["messages"]
        self.assertEqual((moved["id"], moved["ttl"], moved["body"]), (mid, 120, {"n": 0}))
        [other] = await self.post_messages(1, queue="counted")
        await self.claim(queue="counted")
        self.clock.advance(61)
        answer = await self.delete("/v2/queues/counted/messages?pop=1")
        [popped] = answer.json["messages"]
        self.assertEqual((popped["id"], popped["claim_count"]), (other, 1))
        self.assertNotIn("href", popped)

    async def test_purge(self):
        """§10.10: purge with {"wrong_key": [...]} or an unknown type is 400;
        {"resource_types": ["messages"]} and no body are 204 and remove the
        unclaimed messages only."""
        ids = await self.post_messages(3)
        await self.claim(query="?limit=1")
        for body in ({"wrong_key": ["messages"]}, {"resource_types": ["x"]}, []):
            answer = await self.post(self.q + "/purge", body)
            self.assertEqual(answer.code, 400, body)
        answer = await self.post(self.q + "/purge", {"resource_types": ["messages"]})
        self.assertEqual(answer.code, 204)
        self.assertEqual(await self.listed("&include_claimed=true"), ids[:1])
        await self.post_messages(2)
        self.assertEqual((await self.post(self.q + "/purge")).code, 204)
        self.assertEqual(await self.listed("&include_claimed=true"), ids[:1])
        self.assertEqual((await self.post("/v2/queues/none/purge")).code, 204)

    async def test_claimed_message_links(self):
        """§10.13: GET of a claimed message has claim_id in its href, listing
        and ?ids= of unclaimed ones do not; ?ids=a,b,c is 404; DELETE with
        claim_id=invalid is 400."""
        a, b = await self.post_messages(2)
        claim = claim_id_of(await self.claim(query="?limit=1"))
        answer = await self.get(f"{self.q}/messages/{a}")
        self.assertEqual(answer.json["href"], f"{self.q}/messages/{a}?claim_id={claim}")
        answer = await self.get(f"{self.q}/messages?ids={b}")
        self.assertEqual(answer.json["messages"][0]["href"], f"{self.q}/messages/{b}")
        self.assertNotIn("checksum", answer.json["messages"][0])
        self.assertEqual((await self.get(self.q + "/messages?ids=a,b,c")).code, 404)
        answer = await self.delete(f"{self.q}/messages/{a}?claim_id=invalid")
        self.assertEqual(answer.code, 400)

    async def test_checksums(self):
        """With [drivers] enable_checksum messages (listed, fetched, claimed,
        popped) carry "MD5:" and the MD5 of their JSON body."""
        self.api = self.api_client(self.settings(("drivers", "enable_checksum", "true")))
        [mid] = await self.post_messages(1)
        expected = "MD5:" + hashlib.md5(json.dumps({"n": 0}).encode()).hexdigest()
        self.assertEqual((await self.get(f"{self.q}/messages/{mid}")).json["checksum"],
                         expected)
        answer = await self.claim()
        self.assertEqual(answer.json["messages"][0]["checksum"], expected)
        await self.delete(f"{self.q}/claims/{claim_id_of(answer)}")
        answer = await self.delete(self.q + "/messages?pop=1")
        self.assertEqual(answer.json["messages"][0]["checksum"], expected)

    # -- pre-signed URLs --------------------------------------------------------

    def signed(self, doc, method="GET"):
        """The headers using the share document ``doc``."""
        return {"URL-Signature": doc["signature"], "URL-Expires": doc["expires"],
                "URL-Methods": ",".join(doc["methods"]), "URL-Paths": ",".join(doc["paths"])}

    async def test_share(self):
        """§10.11: an unknown body key, a bad path, an integer expires and a
        past one are 400; the signature is the literal-backslash-n HMAC; a
        request with a wrong method, a wrong path or a tampered signature is
        404, a valid one is served."""
        self.api = self.api_client(self.settings(("signed_url", "secret_key", SECRET)))
        await self.post_messages(1)
        for body in ({"nope": 1}, {"paths": ["queues"]}, {"expires": "1234"},
                     {"expires": "2001-01-01T00:00:00"}):
            answer = await self.post(self.q + "/share", body)
            self.assertEqual(answer.code, 400, body)
        answer = await self.post(self.q + "/share", {"methods": ["POST", "GET"],
                                                     "expires": "2030-01-01T00:00:00"})
        self.assertEqual(answer.code, 200)
        doc = answer.json
        self.assertEqual((doc["project"], doc["paths"], doc["methods"], doc["expires"]),
                         (PROJECT, [self.q + "/messages"], ["GET", "POST"],
                          "2030-01-01T00:00:00"))
        text = rf"{self.q}/messages\nGET,POST\n{PROJECT}\n2030-01-01T00:00:00"
        self.assertEqual(doc["signature"],
                         hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest())
        headers = self.signed(doc)
        answer = await self.get(self.q + "/messages?echo=true", headers=headers)
        self.assertEqual((answer.code, len(answer.json["messages"])), (200, 1))
        self.assertEqual((await self.post(self.q + "/messages", {"messages": [{"body": 2}]},
                                          headers=headers)).code, 201)
        self.assertEqual((await self.delete(self.q + "/messages?pop=1",
                                            headers=headers)).code, 404)
        self.assertEqual((await self.post(self.q + "/claims", headers=headers)).code, 404)
        tampered = {**headers, "URL-Signature": "0" * 64}
        answer = await self.get(self.q + "/messages", headers=tampered)
        self.assertEqual(answer.code, 404)
        self.assertIn("title", answer.json)
        answer = await self.get(self.q + "/messages", headers=headers, project="p2")
        self.assertEqual(answer.code, 404)

    async def test_share_without_secret_key(self):
        """Without [signed_url] secret_key share is 400 and a request carrying
        URL-Signature is 404."""
        answer = await self.post(self.q + "/share")
        self.assertEqual(answer.code, 400)
        answer = await self.get(self.q + "/messages", headers={
            "URL-Signature": "0" * 64, "URL-Expires": "2030-01-01T00:00:00",
            "URL-Methods": "GET", "URL-Paths": self.q + "/messages"})
        self.assertEqual(answer.code, 404)
