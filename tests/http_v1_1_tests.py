"""The HTTP API v1.1 behaviour (api-v1.1.md), as a mixin run against every driver.

A concrete TestCase mixes ``HttpV1_1Mixin`` with ``twisted.trial.unittest.TestCase``
and provides ``make_driver(clock)`` returning an unopened driver. Every
"Tricky cases" item of api-v1.1.md §5 is a test here (named in its docstring).
"""

from tests.http_support import OTHER_CLIENT_ID, ApiOverDriverMixin, claim_id_of, message_id

PROJECT = "p1"


class NewerApiMixin(ApiOverDriverMixin):
    """Requests to a version that wants X-Project-ID on every request
    (``self.prefix``: "/v1.1" or "/v2"); ``self.q`` is the queue "jobs"."""

    prefix = "/v1.1"

    @property
    def q(self):
        return f"{self.prefix}/queues/jobs"

    def call(self, method, path, body=None, project=PROJECT, **kw):
        return self.api.request(method, path, body, project=project, **kw)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)

    async def post_messages(self, count, queue="jobs", ttl=300, **kw):
        """Post ``count`` messages {"n": i} to ``queue``; their ids."""
        answer = await self.post(f"{self.prefix}/queues/{queue}/messages",
                                 {"messages": [{"ttl": ttl, "body": {"n": i}}
                                               for i in range(count)]}, **kw)
        self.assertEqual(answer.code, 201, answer.body)
        return [message_id(href) for href in answer.json["resources"]]

    async def claim(self, body=None, query="", queue="jobs", **kw):
        return await self.post(f"{self.prefix}/queues/{queue}/claims{query}",
                               {"ttl": 60, "grace": 60} if body is None else body, **kw)

    async def listed(self, query="", queue="jobs"):
        answer = await self.get(f"{self.prefix}/queues/{queue}/messages?echo=true{query}")
        self.assertEqual(answer.code, 200, answer.body)
        return [m["id"] for m in answer.json["messages"]]

    def settings(self, *overrides):
        from marconi_tx import config

        return config.load(overrides=list(overrides))


class HttpV1_1Mixin(NewerApiMixin):

    # -- conventions ----------------------------------------------------------

    async def test_home_document(self):
        """GET /v1.1 (with or without a trailing slash) is a JSON-home
        document with v1.1's rels, all under /v1.1."""
        for path in ("/v1.1", "/v1.1/"):
            answer = await self.get(path)
            self.assertEqual(answer.code, 200)
            self.assertEqual(answer.headers["content-type"], "application/json-home")
            resources = answer.json["resources"]
            self.assertEqual(set(resources), {
                "rel/queues", "rel/queue", "rel/queue_stats", "rel/messages",
                "rel/post_messages", "rel/messages_delete", "rel/message_delete",
                "rel/claim", "rel/post_claim", "rel/patch_claim", "rel/delete_claim"})
            for resource in resources.values():
                self.assertTrue(resource["href-template"].startswith("/v1.1/"))
            claim = resources["rel/post_claim"]  # long polling is advertised
            self.assertTrue(claim["href-template"].endswith("/claims{?limit,wait}"))
            self.assertEqual(claim["href-vars"]["wait"], "param/claim_wait")

    async def test_project_header_required(self):
        """§5.1: every /v1.1 request without X-Project-ID is 400 (title
        "Project-Id Missing"), with it empty 400."""
        for method, path in (("GET", "/v1.1/ping"), ("GET", "/v1.1/queues"), ("PUT", self.q),
                             ("GET", self.q + "/messages"), ("GET", "/v1.1")):
            answer = await self.call(method, path, project=None)
            self.assertEqual(answer.code, 400, path)
            self.assertEqual(answer.json["title"], "Project-Id Missing")
            answer = await self.call(method, path, project="")
            self.assertEqual(answer.code, 400, path)

    async def test_client_id_required_everywhere(self):
        """§5.2: without Client-ID every request is 400, ping, queue PUT and
        claim POST included; a malformed UUID is 400; Client-ID is checked
        before X-Project-ID."""
        for method, path in (("GET", "/v1.1/ping"), ("PUT", self.q),
                             ("POST", self.q + "/claims"), ("GET", "/v1.1/queues")):
            for client in (None, "0xdeadbeef"):
                answer = await self.call(method, path, client_id=client)
                self.assertEqual(answer.code, 400, (path, client))
                self.assertIn("title", answer.json)
        answer = await self.call("GET", "/v1.1/queues", client_id=None, project=None)
        self.assertEqual(answer.json["title"], "Missing header")

    async def test_errors_have_json_bodies(self):
        """404 (unknown path, missing message) and 405 carry a JSON title."""
        answer = await self.get("/v1.1/nothing")
        self.assertEqual(answer.code, 404)
        self.assertIn("title", answer.json)
        answer = await self.get(self.q + "/messages/1")
        self.assertEqual((answer.code, answer.json["title"]), (404, "Not found"))
        answer = await self.post(self.q)
        self.assertEqual(answer.code, 405)
        self.assertEqual(answer.headers["allow"], "DELETE, GET, PUT")
        self.assertIn("title", answer.json)

    async def test_accept_must_admit_json(self):
        """A client not accepting JSON gets 406 with no body, before the
        Client-ID check."""
        answer = await self.get(self.q, headers={"Accept": "application/xml"},
                                client_id=None)
        self.assertEqual((answer.code, answer.body), (406, b""))

    async def test_ping_and_health(self):
        """§5.12: ping answers 204 to GET and HEAD (503 once the storage is
        gone); /v1.1/health is 404 unless admin mode, then a JSON report."""
        self.assertEqual((await self.get("/v1.1/ping")).code, 204)
        self.assertEqual((await self.call("HEAD", "/v1.1/ping")).code, 204)
        self.assertEqual((await self.get("/v1.1/health")).code, 404)
        self.api = self.api_client(self.settings(("drivers", "admin_mode", "true")))
        await self.post_messages(3)
        await self.claim(query="?limit=1")
        answer = await self.get("/v1.1/health")
        self.assertEqual(answer.code, 200)
        self.assertIs(answer.json["storage_reachable"], True)
        self.assertEqual(answer.json["message_volume"], {"free": 2, "claimed": 1, "total": 3})
        await self.driver.close()
        self.assertEqual((await self.get("/v1.1/ping")).code, 503)

    # -- queues ---------------------------------------------------------------

    async def test_lazy_queues(self):
        """§5.3: posting to a never-created queue is 201 and the queue is
        listed; a missing queue's GET is 200 {} and its stats zeros; HEAD on
        a queue is 405 and /metadata is 404."""
        answer = await self.get("/v1.1/queues/nope")
        self.assertEqual((answer.code, answer.json), (200, {}))
        answer = await self.get("/v1.1/queues/nope/stats")
        self.assertEqual(answer.json, {"messages": {"claimed": 0, "free": 0, "total": 0}})
        await self.post_messages(1, queue="lazy")
        answer = await self.get("/v1.1/queues")
        self.assertEqual(answer.json["queues"], [{"name": "lazy", "href": "/v1.1/queues/lazy"}])
        self.assertEqual((await self.call("HEAD", self.q)).code, 405)
        self.assertEqual((await self.get(self.q + "/metadata")).code, 404)
        answer = await self.claim(queue="never")
        self.assertEqual(answer.code, 204)
        answer = await self.get("/v1.1/queues/never/messages")
        self.assertEqual(answer.json, {"messages": [], "links": []})

    async def test_put_keeps_existing_metadata(self):
        """§5.4: PUT creates with the body's metadata (201, Location); PUT of
        an existing queue with new metadata is 204 and GET still shows the
        old metadata."""
        answer = await self.put(self.q, {"owner": "ops"})
        self.assertEqual((answer.code, answer.headers["location"]), (201, self.q))
        answer = await self.put(self.q, {"owner": "dev"})
        self.assertEqual((answer.code, answer.headers["location"]), (204, self.q))
        self.assertEqual((await self.get(self.q)).json, {"owner": "ops"})
        self.assertEqual((await self.put("/v1.1/queues/bare")).code, 201)
        self.assertEqual((await self.get("/v1.1/queues/bare")).json, {})

    async def test_put_validates_body_and_reserved_attributes(self):
        """PUT bodies must be objects within max_queue_metadata; reserved
        attributes are validated (and not applied: a queue ttl default does
        not change v1.1's default)."""
        for body in (b"[]", b'"x"', b"{"):
            self.assertEqual((await self.put(self.q, body)).code, 400, body)
        big = b'{"k": "' + b"x" * 65530 + b'"}'
        self.assertEqual((await self.put(self.q, big)).code, 400)
        for bad in ({"_default_message_ttl": 59}, {"_max_messages_post_size": 0},
                    {"_default_message_delay": 901}):
            self.assertEqual((await self.put(self.q, bad)).code, 400, bad)
        self.assertEqual((await self.put(self.q, {"_default_message_ttl": 999})).code, 201)
        answer = await self.post(self.q + "/messages", {"messages": [{"body": 1}]})
        mid = message_id(answer.json["resources"][0])
        self.assertEqual((await self.get(f"{self.q}/messages/{mid}")).json["ttl"], 3600)

    async def test_list_queues(self):
        """Listing is 200 with links (next repeats limit and detailed), and
        200 with empty queues and links past the end; detailed shows the
        stored metadata."""
        for name in ("c", "a", "b"):
            await self.put(f"/v1.1/queues/{name}", {"n": name})
        answer = await self.get("/v1.1/queues?limit=2&detailed=true")
        self.assertEqual(answer.json["queues"], [
            {"name": "a", "href": "/v1.1/queues/a", "metadata": {"n": "a"}},
            {"name": "b", "href": "/v1.1/queues/b", "metadata": {"n": "b"}}])
        [link] = answer.json["links"]
        self.assertEqual(link["href"], "/v1.1/queues?marker=b&limit=2&detailed=true")
        answer = await self.get(link["href"])
        self.assertEqual([q["name"] for q in answer.json["queues"]], ["c"])
        answer = await self.get(answer.json["links"][0]["href"])
        self.assertEqual((answer.code, answer.json), (200, {"queues": [], "links": []}))
        self.assertEqual((await self.get("/v1.1/queues", project="other")).json["queues"], [])

    async def test_delete_queue(self):
        """DELETE is 204 always and removes the queue's messages."""
        self.assertEqual((await self.delete(self.q)).code, 204)
        await self.post_messages(2)
        self.assertEqual((await self.delete(self.q)).code, 204)
        self.assertEqual(await self.listed(), [])

    # -- messages -------------------------------------------------------------

    async def test_post_messages(self):
        """§5.5: {"messages": [...]}; a bare array, [] and a message without
        body are 400; ttl defaults to 3600; the answer has resources and no
        partial, with a matching Location."""
        for body in ([{"ttl": 60, "body": 1}], {"messages": []}, {"messages": [{"ttl": 60}]},
                     {"messages": {"body": 1}}, {"other": []},
                     {"messages": [{"ttl": 59, "body": 1}]}):
            answer = await self.post(self.q + "/messages", body)
            self.assertEqual(answer.code, 400, body)
            self.assertIn("title", answer.json)
        answer = await self.post(self.q + "/messages",
                                 {"messages": [{"body": {"a": 1}}, {"ttl": 120, "body": None}]})
        self.assertEqual(answer.code, 201)
        self.assertEqual(set(answer.json), {"resources"})
        ids = [message_id(h) for h in answer.json["resources"]]
        self.assertTrue(all(h.startswith(self.q + "/messages/")
                            for h in answer.json["resources"]))
        self.assertEqual(answer.headers["location"], f"{self.q}/messages?ids={','.join(ids)}")
        first = (await self.get(f"{self.q}/messages/{ids[0]}")).json
        self.assertEqual((first["ttl"], first["body"], first["id"]), (3600, {"a": 1}, ids[0]))

    async def test_post_size_limit(self):
        """The whole POST is bounded by max_message_size (400 beyond)."""
        for size, code in ((262145, 400), (262144, 201)):
            body = b'{"messages": [{"body": "' + b"x" * (size - 28) + b'"}]}'
            self.assertEqual(len(body), size)
            self.assertEqual((await self.post(self.q + "/messages", body)).code, code, size)

    async def test_listing(self):
        """§5.6: an empty queue lists 200 {"messages": [], "links": []};
        messages carry id; a claimed message listed with include_claimed has
        ?claim_id= in its href, and GET by id shows the same href."""
        answer = await self.get(self.q + "/messages")
        self.assertEqual((answer.code, answer.json), (200, {"messages": [], "links": []}))
        ids = await self.post_messages(3)
        answer = await self.get(self.q + "/messages?echo=true&limit=2")
        self.assertEqual([m["id"] for m in answer.json["messages"]], ids[:2])
        self.assertEqual(answer.json["links"][0]["href"],
                         f"{self.q}/messages?marker={ids[1]}&limit=2&echo=true")
        self.assertEqual((await self.get(self.q + "/messages")).json["messages"], [])
        answer = await self.get(self.q + "/messages", client_id=OTHER_CLIENT_ID)
        self.assertEqual(len(answer.json["messages"]), 3)
        claim = claim_id_of(await self.claim(query="?limit=1"))
        self.assertEqual(await self.listed(), ids[1:])
        answer = await self.get(self.q + "/messages?echo=true&include_claimed=true")
        [first, *rest] = answer.json["messages"]
        href = f"{self.q}/messages/{ids[0]}?claim_id={claim}"
        self.assertEqual(first["href"], href)
        self.assertEqual([m["href"] for m in rest], [f"{self.q}/messages/{i}" for i in ids[1:]])
        self.assertEqual((await self.get(f"{self.q}/messages/{ids[0]}")).json["href"], href)

    async def test_get_by_ids(self):
        """§5.7: ?ids= answers {"messages": [...]} with claimed ones too;
        only unknown ids: 404; more than 20 ids: 400."""
        ids = await self.post_messages(2)
        await self.claim(query="?limit=1")
        answer = await self.get(f"{self.q}/messages?ids={','.join(ids)},99999")
        self.assertEqual(sorted(m["id"] for m in answer.json["messages"]), ids)
        answer = await self.get(self.q + "/messages?ids=88888,99999")
        self.assertEqual(answer.code, 404)
        self.assertIn("title", answer.json)
        answer = await self.get(self.q + "/messages?ids=" + ",".join(["1"] * 21))
        self.assertEqual(answer.code, 400)

    async def test_pop(self):
        """§5.8: pop=0, -1, 21, x, pop with ids, and neither are 400; pop=3
        of 5 returns 3 (no href, claim_id null) and 2 remain; claimed
        messages are never popped; an empty queue pops 200 []."""
        for query in ("pop=0", "pop=-1", "pop=21", "pop=x", "pop=10&ids=1", ""):
            answer = await self.delete(f"{self.q}/messages?{query}")
            self.assertEqual(answer.code, 400, query)
        ids = await self.post_messages(5)
        answer = await self.delete(self.q + "/messages?pop=3")
        self.assertEqual(answer.code, 200)
        popped = answer.json["messages"]
        self.assertEqual([m["id"] for m in popped], ids[:3])
        self.assertEqual(set(popped[0]), {"id", "ttl", "age", "body", "claim_id"})
        self.assertIsNone(popped[0]["claim_id"])
        self.assertEqual(await self.listed(), ids[3:])
        await self.claim(query="?limit=1")
        answer = await self.delete(self.q + "/messages?pop=5")
        self.assertEqual([m["id"] for m in answer.json["messages"]], ids[4:])
        self.assertEqual(await self.listed("&include_claimed=true"), [ids[3]])
        answer = await self.delete("/v1.1/queues/empty/messages?pop=1")
        self.assertEqual((answer.code, answer.json), (200, {"messages": []}))

    async def test_bulk_delete_by_ids(self):
        """DELETE ?ids= removes the listed messages, claimed or not (204)."""
        ids = await self.post_messages(3)
        await self.claim(query="?limit=1")
        answer = await self.delete(f"{self.q}/messages?ids={ids[0]},{ids[1]}")
        self.assertEqual(answer.code, 204)
        self.assertEqual(await self.listed("&include_claimed=true"), ids[2:])

    async def test_delete_message_matrix(self):
        """§5.9 (api-v1.1.md §3.11): malformed message id 204; claim_id
        malformed 400 and the message survives; claimed without claim_id
        403; the right claim deletes; a stale id after release 400; the id
        of another live claim 403; a free message without claim_id deletes."""
        a, b, c = await self.post_messages(3)
        self.assertEqual((await self.delete(f"{self.q}/messages/x1")).code, 204)
        self.assertEqual((await self.delete(f"{self.q}/messages/x1?claim_id=bad")).code, 204)
        answer = await self.delete(f"{self.q}/messages/{a}?claim_id=invalid")
        self.assertEqual(answer.code, 400)
        self.assertEqual((await self.get(f"{self.q}/messages/{a}")).code, 200)
        answer = await self.delete(f"{self.q}/messages/99999?claim_id=invalid")
        self.assertEqual(answer.code, 400)
        first = claim_id_of(await self.claim(query="?limit=1"))
        answer = await self.delete(f"{self.q}/messages/{a}")
        self.assertEqual((answer.code, answer.json["title"]), (403, "Unable to delete"))
        answer = await self.delete(f"{self.q}/messages/{a}?claim_id={first}")
        self.assertEqual(answer.code, 204)
        self.assertEqual((await self.get(f"{self.q}/messages/{a}")).code, 404)
        stale = claim_id_of(await self.claim(query="?limit=1"))
        await self.delete(f"{self.q}/claims/{stale}")
        answer = await self.delete(f"{self.q}/messages/{b}?claim_id={first}")
        self.assertEqual(answer.code, 400)
        live = claim_id_of(await self.claim(query="?limit=1"))
        answer = await self.delete(f"{self.q}/messages/{b}?claim_id={first}")
        self.assertEqual(answer.code, 403)
        self.assertEqual((await self.delete(f"{self.q}/messages/{b}?claim_id={live}")).code,
                         204)
        self.assertEqual((await self.delete(f"{self.q}/messages/{c}")).code, 204)
        self.assertEqual(await self.listed("&include_claimed=true"), [])
        self.assertEqual((await self.delete("/v1.1/queues/none/messages/1")).code, 204)

    # -- claims ---------------------------------------------------------------

    async def test_claim_defaults(self):
        """§5.10: a claim without a body is 201 with ttl 300 (GET shows it);
        the answer is {"messages": [...]} with ids and claim hrefs;
        {"grace": 30} is 400; {"ttl": 120} takes the default grace; nothing
        to claim is 204."""
        ids = await self.post_messages(3)
        answer = await self.post(self.q + "/claims?limit=1")
        self.assertEqual(answer.code, 201)
        claim = claim_id_of(answer)
        [message] = answer.json["messages"]
        self.assertEqual(message["id"], ids[0])
        self.assertEqual(message["href"], f"{self.q}/messages/{ids[0]}?claim_id={claim}")
        answer = await self.get(f"{self.q}/claims/{claim}")
        self.assertEqual(answer.json["ttl"], 300)
        self.assertEqual(answer.json["href"], f"{self.q}/claims/{claim}")
        self.assertEqual([m["id"] for m in answer.json["messages"]], ids[:1])
        for bad in ({"grace": 30}, {"ttl": 59}, {"ttl": "60"}, [], "x"):
            self.assertEqual((await self.claim(bad)).code, 400, bad)
        self.assertEqual((await self.claim(query="?limit=21")).code, 400)
        answer = await self.claim({"ttl": 120}, query="?limit=1")
        self.assertEqual((await self.get(f"{self.q}/claims/{claim_id_of(answer)}")).json["ttl"],
                         120)
        await self.claim()
        self.assertEqual((await self.claim()).code, 204)

    async def test_claim_renew(self):
        """§5.11: PATCH {} renews with the defaults (204, ttl 300, age 0); a
        PATCH without a body is 400; PATCH of an expired claim is 404;
        DELETE is 204 always and frees the messages."""
        await self.post_messages(1)
        claim = claim_id_of(await self.claim({"ttl": 60, "grace": 60}))
        path = f"{self.q}/claims/{claim}"
        self.clock.advance(10)
        self.assertEqual((await self.patch(path, {})).code, 204)
        answer = await self.get(path)
        self.assertEqual((answer.json["ttl"], answer.json["age"]), (300, 0))
        self.assertEqual((await self.patch(path)).code, 400)
        self.assertEqual((await self.patch(path, {"grace": 59})).code, 400)
        self.clock.advance(301)
        self.assertEqual((await self.patch(path, {})).code, 404)
        self.assertEqual((await self.get(path)).code, 404)
        claim = claim_id_of(await self.claim())
        self.assertEqual((await self.delete(f"{self.q}/claims/{claim}")).code, 204)
        self.assertEqual((await self.delete(f"{self.q}/claims/{claim}")).code, 204)
        self.assertEqual(len(await self.listed()), 1)

    async def test_stats(self):
        """Stats of an existing queue match v1's, hrefs under /v1.1."""
        ids = await self.post_messages(2)
        await self.claim(query="?limit=1")
        stats = (await self.get(self.q + "/stats")).json["messages"]
        self.assertEqual((stats["free"], stats["claimed"], stats["total"]), (1, 1, 2))
        self.assertEqual(stats["oldest"]["href"], f"{self.q}/messages/{ids[0]}")

    async def test_every_version_sees_every_post(self):
        """A message posted over v1, v1.1 or v2 is listed, fetched and
        claimable over each of the others (one storage, one namespace per
        project)."""
        await self.api.put("/v1/queues/jobs", project=PROJECT)
        posted = {}
        answer = await self.api.post("/v1/queues/jobs/messages", [{"ttl": 60, "body": "v1"}],
                                     project=PROJECT)
        posted["v1"] = message_id(answer.json["resources"][0])
        for version in ("v1.1", "v2"):
            answer = await self.post(f"/{version}/queues/jobs/messages",
                                     {"messages": [{"body": version}]})
            posted[version] = message_id(answer.json["resources"][0])
        ids = sorted(posted.values(), key=int)
        for version in ("v1.1", "v2"):
            answer = await self.get(f"/{version}/queues/jobs/messages?echo=true")
            self.assertEqual([m["id"] for m in answer.json["messages"]], ids, version)
        answer = await self.api.get("/v1/queues/jobs/messages?echo=true", project=PROJECT)
        self.assertEqual([message_id(m["href"]) for m in answer.json["messages"]], ids)
        for version, mid in posted.items():
            for reader in ("v1", "v1.1", "v2"):
                answer = await self.get(f"/{reader}/queues/jobs/messages/{mid}")
                self.assertEqual(answer.json["body"], version, (version, reader))
        answer = await self.post("/v2/queues/jobs/claims?limit=5")
        self.assertEqual([m["body"] for m in answer.json["messages"]], ["v1", "v1.1", "v2"])
