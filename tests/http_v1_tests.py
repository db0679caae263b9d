"""The HTTP API v1 behaviour (api-v1.md), as a mixin run against every driver.

A concrete TestCase mixes ``HttpV1Mixin`` with ``twisted.trial.unittest.TestCase``
and provides ``make_driver(clock)`` returning an unopened driver (and sets
``ApiOverDriverMixin``'s ``fast`` and ``waits`` where the defaults do not fit).
"""

from tests.http_support import OTHER_CLIENT_ID, ApiOverDriverMixin, claim_id_of, message_id

Q = "/v1/queues/jobs"


class HttpV1Mixin(ApiOverDriverMixin):

    async def make_queue(self, path=Q, **kw):
        answer = await self.api.put(path, **kw)
        self.assertIn(answer.code, (201, 204))

    async def code(self, method, path, body=None):
        """The status of ``method path`` (with ``body``)."""
        return (await self.api.request(method, path, body)).code

    # -- conventions ----------------------------------------------------------

    async def test_home_document(self):
        """GET /v1 is a JSON-home document with every rel, cached for a day."""
        answer = await self.api.get("/v1")
        self.assertEqual(answer.code, 200)
        self.assertEqual(answer.headers["content-type"], "application/json-home")
        self.assertEqual(answer.headers["cache-control"], "max-age=86400")
        resources = answer.json["resources"]
        self.assertEqual(set(resources), {
            "rel/queues", "rel/queue", "rel/queue-metadata", "rel/queue-stats",
            "rel/messages", "rel/post-messages", "rel/claim"})
        for resource in resources.values():
            self.assertTrue(resource["href-template"].startswith("/v1"))
            self.assertIn("allow", resource["hints"])
        claim = resources["rel/claim"]  # long polling is advertised
        self.assertTrue(claim["href-template"].endswith("/claims{?limit,wait}"))
        self.assertEqual(claim["href-vars"]["wait"], "param/claim_wait")

    async def test_accept_must_admit_json(self):
        """A client not accepting JSON gets 406 with no body; no Accept is fine;
        json-home alone is refused even for the home document."""
        for path in ("/v1", "/v1/queues", "/v1/health", Q):
            answer = await self.api.get(path, headers={"Accept": "application/xml"})
            self.assertEqual((answer.code, answer.body), (406, b""), path)
        answer = await self.api.get("/v1", headers={"Accept": "application/json-home"})
        self.assertEqual(answer.code, 406)
        for accept in ("application/json", "*/*", "application/*",
                       "text/html, application/json;q=0.5"):
            answer = await self.api.get("/v1", headers={"Accept": accept})
            self.assertEqual(answer.code, 200, accept)
        answer = await self.api.get("/v1", headers={"Accept": "application/json;q=0"})
        self.assertEqual(answer.code, 406)

    async def test_empty_project_header_refused_everywhere(self):
        """X-Project-ID: '' is a 400 with a JSON title on every routed path."""
        for method, path in (("GET", "/v1/health"), ("GET", "/v1/queues"), ("PUT", Q),
                             ("GET", Q + "/stats"), ("GET", "/v1")):
            answer = await self.api.request(method, path, project="")
            self.assertEqual(answer.code, 400, path)
            self.assertIn("title", answer.json)

    async def test_projects_are_isolated(self):
        """The global namespace (no header) and projects see only their own
        queues, messages and claims."""
        await self.make_queue()
        await self.make_queue(project="p1")
        [gid] = await self.api.post_messages("jobs", 1)
        [pid] = await self.api.post_messages("jobs", 1, project="p1")
        answer = await self.api.get(f"{Q}/messages/{pid}")
        self.assertEqual(answer.code, 404)
        answer = await self.api.get(f"{Q}/messages/{gid}", project="p1")
        self.assertEqual(answer.code, 404)
        answer = await self.api.post(f"{Q}/claims", {"ttl": 60, "grace": 60}, project="p1")
        claim = claim_id_of(answer)
        self.assertEqual([message_id(m["href"]) for m in answer.json], [pid])
        self.assertEqual((await self.api.get(f"{Q}/claims/{claim}")).code, 404)
        await self.api.delete(Q, project="p2")
        self.assertEqual((await self.api.get(Q, project="p1")).code, 204)
        await self.api.delete(Q)
        self.assertEqual((await self.api.get(Q, project="p1")).code, 204)
        self.assertEqual((await self.api.get(Q)).code, 404)

    async def test_queue_name_rules(self):
        """64-character names are accepted, 65 and bad characters are 400;
        a 257-character project id is 400 on queue routes."""
        answer = await self.api.put("/v1/queues/" + "a" * 64)
        self.assertEqual(answer.code, 201)
        answer = await self.api.get("/v1/queues/" + "b" * 64)
        self.assertEqual(answer.code, 404)
        for name in ("a" * 65, "Nice-Bo@t", "a.b", "caf%C3%A9", "sp%20ace"):
            answer = await self.api.put("/v1/queues/" + name)
            self.assertEqual(answer.code, 400, name)
            self.assertEqual(answer.json["title"], "Invalid queue identification")
        answer = await self.api.put(Q, project="p" * 257)
        self.assertEqual(answer.code, 400)
        answer = await self.api.put(Q, project="p" * 256)
        self.assertEqual(answer.code, 201)

    async def test_routing_conventions(self):
        """Unknown paths 404 with no body; known paths with a wrong method 405
        with Allow; OPTIONS 204 with Allow; trailing and doubled slashes and
        the case of literal segments are ignored; HEAD only where listed."""
        answer = await self.api.get("/v1/nothing")
        self.assertEqual((answer.code, answer.body), (404, b""))
        answer = await self.api.post(Q)
        self.assertEqual((answer.code, answer.body), (405, b""))
        self.assertEqual(answer.headers["allow"], "DELETE, GET, HEAD, PUT")
        answer = await self.api.request("OPTIONS", Q + "/messages")
        self.assertEqual(answer.code, 204)
        self.assertEqual(answer.headers["allow"], "DELETE, GET, POST")
        answer = await self.api.request("HEAD", "/v1/queues")
        self.assertEqual(answer.code, 405)
        self.assertEqual((await self.api.put("/V1/Queues/jobs/")).code, 201)
        self.assertEqual((await self.api.get("/v1/queues/JOBS")).code, 404)
        self.assertEqual((await self.api.get("/v1/queues/")).code, 200)
        answer = await self.api.get("//v1//queues/jobs//stats/")
        self.assertEqual(answer.code, 200)  # answered in place, not redirected
        self.assertEqual(answer.json["messages"]["total"], 0)
        # 405 and OPTIONS skip the header checks.
        answer = await self.api.post(Q, headers={"Accept": "text/plain"})
        self.assertEqual(answer.code, 405)

    async def test_health(self):
        """GET and HEAD /v1/health answer 204 while storage is reachable;
        GET answers 503 with Retry-After and a JSON title once it is not."""
        self.assertEqual((await self.api.get("/v1/health")).code, 204)
        self.assertEqual((await self.api.request("HEAD", "/v1/health")).code, 204)
        await self.driver.close()
        answer = await self.api.get("/v1/health")
        self.assertEqual(answer.code, 503)
        self.assertEqual(answer.headers["retry-after"], "30")
        self.assertEqual(answer.json["title"], "Service temporarily unavailable")
        self.assertEqual((await self.api.request("HEAD", "/v1/health")).code, 204)

    async def test_storage_failure_is_503(self):
        """A storage failure answers 503 with Retry-After and a JSON title."""
        await self.driver.close()
        answer = await self.api.put(Q)
        self.assertEqual(answer.code, 503)
        self.assertEqual(answer.headers["retry-after"], "30")
        self.assertEqual(answer.json["title"], "Service temporarily unavailable")

    # -- queues ---------------------------------------------------------------

    async def test_create_queue(self):
        """PUT creates (201) then reports existing (204), both with Location,
        and leaves existing metadata untouched."""
        answer = await self.api.put(Q)
        self.assertEqual((answer.code, answer.headers["location"]), (201, Q))
        await self.api.put(Q + "/metadata", {"a": 1})
        answer = await self.api.put(Q, {"ignored": True})
        self.assertEqual((answer.code, answer.headers["location"]), (204, Q))
        self.assertEqual((await self.api.get(Q + "/metadata")).json, {"a": 1})

    async def test_queue_existence_checks(self):
        """GET and HEAD on a queue are bodiless 204/404 existence checks."""
        for method in ("GET", "HEAD"):
            answer = await self.api.request(method, Q)
            self.assertEqual((answer.code, answer.body), (404, b""))
        await self.make_queue()
        for method in ("GET", "HEAD"):
            answer = await self.api.request(method, Q)
            self.assertEqual((answer.code, answer.body), (204, b""))
            self.assertEqual(answer.headers["content-location"], Q)

    async def test_delete_queue(self):
        """DELETE is 204 always and removes messages and claims with the queue."""
        self.assertEqual((await self.api.delete(Q)).code, 204)
        await self.make_queue()
        [mid] = await self.api.post_messages("jobs", 1)
        claim = claim_id_of(await self.api.post(Q + "/claims", {"ttl": 60, "grace": 60}))
        self.assertEqual((await self.api.delete(Q)).code, 204)
        await self.make_queue()
        self.assertEqual((await self.api.get(f"{Q}/messages/{mid}")).code, 404)
        self.assertEqual((await self.api.get(f"{Q}/claims/{claim}")).code, 404)
        stats = (await self.api.get(Q + "/stats")).json
        self.assertEqual(stats, {"messages": {"free": 0, "claimed": 0, "total": 0}})

    async def test_list_queues_paging(self):
        """Listing pages by name with limit and marker, repeats limit and
        detailed in the next link, shows metadata only when detailed, and
        answers 204 past the end."""
        for name in ("c", "a", "b"):
            await self.make_queue(f"/v1/queues/{name}")
        await self.api.put("/v1/queues/a/metadata", {"owner": "ops"})
        answer = await self.api.get("/v1/queues?limit=2&detailed=true")
        self.assertEqual(answer.code, 200)
        self.assertEqual(answer.headers["content-location"], "/v1/queues?limit=2&detailed=true")
        self.assertEqual(answer.json["queues"], [
            {"name": "a", "href": "/v1/queues/a", "metadata": {"owner": "ops"}},
            {"name": "b", "href": "/v1/queues/b", "metadata": {}}])
        [link] = answer.json["links"]
        self.assertEqual(link["rel"], "next")
        self.assertEqual(link["href"], "/v1/queues?marker=b&limit=2&detailed=true")
        answer = await self.api.get(link["href"])
        self.assertEqual(answer.json["queues"], [
            {"name": "c", "href": "/v1/queues/c", "metadata": {}}])
        answer = await self.api.get(answer.json["links"][0]["href"])
        self.assertEqual((answer.code, answer.body), (204, b""))
        answer = await self.api.get("/v1/queues")
        self.assertNotIn("metadata", answer.json["queues"][0])
        for bad in ("limit=0", "limit=21", "limit=x", "detailed=maybe"):
            self.assertEqual((await self.api.get("/v1/queues?" + bad)).code, 400, bad)
        self.assertEqual((await self.api.get("/v1/queues?limit=")).code, 200)

    async def test_limits_are_configurable(self):
        """The page maxima come from [limits:transport]."""
        from marconi_tx import config

        settings = config.load(overrides=[("limits:transport", "max_queues_per_page", "2")])
        api = self.api_client(settings)
        self.assertEqual((await api.get("/v1/queues?limit=3")).code, 400)
        self.assertEqual((await api.get("/v1/queues?limit=2")).code, 204)

    # -- metadata -------------------------------------------------------------

    async def test_metadata(self):
        """Metadata starts {}, PUT replaces it whole (keys vanish), 404 for a
        missing queue, Location on success."""
        self.assertEqual((await self.api.get(Q + "/metadata")).code, 404)
        self.assertEqual((await self.api.put(Q + "/metadata", {"a": 1})).code, 404)
        await self.make_queue()
        answer = await self.api.get(Q + "/metadata")
        self.assertEqual((answer.code, answer.json), (200, {}))
        self.assertEqual(answer.headers["content-location"], Q + "/metadata")
        answer = await self.api.put(Q + "/metadata", {"a": 1, "b": "ü"})
        self.assertEqual((answer.code, answer.headers["location"]), (204, Q + "/metadata"))
        await self.api.put(Q + "/metadata", {"c": [1, 2]})
        answer = await self.api.get(Q + "/metadata")
        self.assertEqual(answer.json, {"c": [1, 2]})
        self.assertIn("charset=utf-8", answer.headers["content-type"])

    async def test_metadata_bad_bodies(self):
        """Bodies [], "", {, none and 65537 bytes are 400 (size before parsing)."""
        await self.make_queue()
        for body in (b"[]", b'""', b"{", b""):
            self.assertEqual((await self.api.put(Q + "/metadata", body)).code, 400, body)
        big = b'{"k": "' + b"x" * 65530 + b'"}'
        self.assertEqual(len(big), 65539)
        self.assertEqual((await self.api.put(Q + "/metadata", big)).code, 400)
        # An oversize body is refused before parsing: malformed but too big is
        # still the size error.
        answer = await self.api.put(Q + "/metadata", b"{" * 65537)
        self.assertEqual(answer.json["title"], "Request body too large")

    # -- stats ----------------------------------------------------------------

    async def test_stats(self):
        """Stats count free and claimed messages, show oldest/newest only when
        there are messages, and 404 for a missing queue."""
        self.assertEqual((await self.api.get(Q + "/stats")).code, 404)
        await self.make_queue()
        answer = await self.api.get(Q + "/stats")
        self.assertEqual(answer.json, {"messages": {"free": 0, "claimed": 0, "total": 0}})
        ids = await self.api.post_messages("jobs", 3)
        self.clock.advance(10)
        [last] = await self.api.post_messages("jobs", 1)
        await self.api.post(Q + "/claims?limit=2", {"ttl": 60, "grace": 60})
        answer = await self.api.get(Q + "/stats")
        self.assertEqual(answer.headers["content-location"], Q + "/stats")
        stats = answer.json["messages"]
        self.assertEqual((stats["free"], stats["claimed"], stats["total"]), (2, 2, 4))
        self.assertEqual(stats["oldest"]["href"], f"{Q}/messages/{ids[0]}")
        self.assertEqual(stats["oldest"]["age"], 10)
        self.assertEqual(stats["oldest"]["created"], "2023-11-14T22:13:20Z")
        self.assertEqual(stats["newest"]["href"], f"{Q}/messages/{last}")
        self.assertEqual(stats["newest"]["age"], 0)

    # -- posting --------------------------------------------------------------

    async def test_post_messages(self):
        """POST answers 201 with resources in submission order, a matching
        Location and partial false; bodies of every JSON type round-trip."""
        await self.make_queue()
        bodies = [{"event": "x"}, [1, 2], "ü", 3.5, True, None]
        answer = await self.api.post(Q + "/messages",
                                     [{"ttl": 60, "body": b} for b in bodies])
        self.assertEqual(answer.code, 201)
        self.assertIs(answer.json["partial"], False)
        ids = [message_id(h) for h in answer.json["resources"]]
        self.assertEqual(answer.headers["location"], f"{Q}/messages?ids={','.join(ids)}")
        self.assertEqual(ids, sorted(ids, key=int))
        for mid, body in zip(ids, bodies):
            answer = await self.api.get(f"{Q}/messages/{mid}")
            self.assertEqual(answer.json["body"], body)

    async def test_post_messages_bad_input(self):
        """ttl out of range or of the wrong type, missing body, [], an object,
        2**63 anywhere, 262145 bytes: 400; an unknown queue: 404."""
        await self.make_queue()
        cases = [[{"ttl": t, "body": 1}] for t in (59, 1209601, -1, "60", 60.0, None)]
        cases += [[{"ttl": 60}], [], {"ttl": 60, "body": 1}, [1], [{"ttl": 60, "body": 1}, "x"]]
        for body in cases:
            answer = await self.api.post(Q + "/messages", body)
            self.assertEqual(answer.code, 400, body)
            self.assertIn("title", answer.json)
        too_big = b'[{"ttl": 60, "body": {"a": [9223372036854775808]}}]'
        self.assertEqual(await self.code("POST", Q + "/messages", too_big), 400)
        smallest = b'[{"ttl": 60, "body": -9223372036854775808}]'
        self.assertEqual(await self.code("POST", Q + "/messages", smallest), 201)
        for size, code in ((262145, 400), (262144, 201)):
            body = b'[{"ttl": 60, "body": "' + b"x" * (size - 25) + b'"}]'
            self.assertEqual(len(body), size)
            self.assertEqual((await self.api.post(Q + "/messages", body)).code, code, size)
        answer = await self.api.post(Q + "/messages", [{"ttl": 60, "body": None}])
        self.assertEqual(answer.code, 201)
        answer = await self.api.post("/v1/queues/nope/messages", [{"ttl": 60, "body": 1}])
        self.assertEqual((answer.code, answer.body), (404, b""))

    async def test_client_id_rules(self):
        """Listing and posting need a Client-ID that parses as a UUID in any of
        Python's spellings; other routes do not need one."""
        await self.make_queue()
        for client in (None, "", "0xdeadbeef", "not-a-uuid"):
            answer = await self.api.get(Q + "/messages", client_id=client)
            self.assertEqual(answer.code, 400, client)
            answer = await self.api.post(Q + "/messages", [{"ttl": 60, "body": 1}],
                                         client_id=client)
            self.assertEqual(answer.code, 400, client)
        spellings = ["{3F2504E0-4F89-11D3-9A0C-0305E82C3301}", "3f2504e04f8911d39a0c0305e82c3301",
                     "urn:uuid:3f2504e0-4f89-11d3-9a0c-0305e82c3301"]
        for client in spellings:
            answer = await self.api.get(Q + "/messages", client_id=client)
            self.assertEqual(answer.code, 204, client)
        self.assertEqual((await self.api.get(Q + "/stats", client_id=None)).code, 200)

    async def test_echo(self):
        """A client sees its own messages only with echo=true, whatever the
        spelling of its Client-ID; other clients see them by default."""
        await self.make_queue()
        await self.api.post_messages("jobs", 2)
        self.assertEqual((await self.api.get(Q + "/messages")).code, 204)
        answer = await self.api.get(Q + "/messages",
                                    client_id="{3F2504E0-4F89-11D3-9A0C-0305E82C3301}")
        self.assertEqual(answer.code, 204)
        answer = await self.api.get(Q + "/messages?echo=true")
        self.assertEqual(len(answer.json["messages"]), 2)
        answer = await self.api.get(Q + "/messages", client_id=OTHER_CLIENT_ID)
        self.assertEqual(len(answer.json["messages"]), 2)

    # -- listing --------------------------------------------------------------

    async def test_list_paging(self):
        """10 messages with limit=3 page as 3,3,3,1 then 204, in FIFO order,
        each 200 with a next link repeating limit and echo."""
        await self.make_queue()
        ids = await self.api.post_messages("jobs", 10)
        seen, sizes = [], []
        path = Q + "/messages?limit=3&echo=true"
        while True:
            answer = await self.api.get(path)
            self.assertEqual(answer.headers["content-location"], path)
            if answer.code == 204:
                break
            self.assertEqual(answer.code, 200)
            messages = answer.json["messages"]
            sizes.append(len(messages))
            seen += [message_id(m["href"]) for m in messages]
            for m in messages:
                self.assertEqual(set(m), {"href", "ttl", "age", "body"})
            [link] = answer.json["links"]
            self.assertIn("limit=3", link["href"])
            self.assertIn("echo=true", link["href"])
            path = link["href"]
        self.assertEqual(sizes, [3, 3, 3, 1])
        self.assertEqual(seen, ids)

    async def test_list_edge_cases(self):
        """Bad limits are 400; a bad marker and a missing queue are 204; the
        default page is 10."""
        await self.make_queue()
        await self.api.post_messages("jobs", 12)
        for bad in ("limit=0", "limit=21", "limit=-1", "limit=1.5", "echo=maybe",
                    "include_claimed=2"):
            answer = await self.api.get(f"{Q}/messages?{bad}")
            self.assertEqual(answer.code, 400, bad)
        for marker in ("zz", "-5", "99999999999999999999999"):
            answer = await self.api.get(f"{Q}/messages?echo=true&marker={marker}")
            self.assertEqual(answer.code, 204, marker)
        self.assertEqual((await self.api.get("/v1/queues/nope/messages")).code, 204)
        answer = await self.api.get(Q + "/messages?echo=true")
        self.assertEqual(len(answer.json["messages"]), 10)

    async def test_claimed_messages_hidden_from_listing(self):
        """Claimed messages leave the default listing, show with
        include_claimed=true (hrefs without claim_id), and return after release."""
        await self.make_queue()
        await self.api.post_messages("jobs", 3)
        answer = await self.api.post(Q + "/claims?limit=2", {"ttl": 60, "grace": 60})
        claim = claim_id_of(answer)
        answer = await self.api.get(Q + "/messages?echo=true")
        self.assertEqual(len(answer.json["messages"]), 1)
        answer = await self.api.get(Q + "/messages?echo=true&include_claimed=true")
        self.assertEqual(len(answer.json["messages"]), 3)
        self.assertFalse(any("claim_id" in m["href"] for m in answer.json["messages"]))
        await self.api.delete(f"{Q}/claims/{claim}")
        answer = await self.api.get(Q + "/messages?echo=true")
        self.assertEqual(len(answer.json["messages"]), 3)

    # -- by ids ---------------------------------------------------------------

    async def test_get_by_ids(self):
        """?ids= returns a bare array of the known ids, claimed ones included,
        without Client-ID; unknown ids alone give 204; 21 ids give 400."""
        await self.make_queue()
        ids = await self.api.post_messages("jobs", 3)
        await self.api.post(Q + "/claims?limit=1", {"ttl": 60, "grace": 60})
        answer = await self.api.get(f"{Q}/messages?ids={','.join(ids)},zz,0",
                                    client_id=None)
        self.assertEqual(answer.code, 200)
        self.assertIsInstance(answer.json, list)
        self.assertEqual(sorted(message_id(m["href"]) for m in answer.json), sorted(ids))
        answer = await self.api.get(f"{Q}/messages?ids=123456,zz")
        self.assertEqual(answer.code, 204)
        answer = await self.api.get(f"/v1/queues/nope/messages?ids={ids[0]}")
        self.assertEqual(answer.code, 204)
        many = ",".join(str(i) for i in range(1, 22))
        self.assertEqual((await self.api.get(f"{Q}/messages?ids={many}")).code, 400)
        twenty = ",".join(str(i) for i in range(1, 21))
        self.assertIn((await self.api.get(f"{Q}/messages?ids={twenty}")).code, (200, 204))

    async def test_bulk_delete(self):
        """DELETE ?ids= removes the listed messages even when claimed, ignores
        unknown ids, is 204 for a missing queue, and needs 1-20 ids."""
        await self.make_queue()
        ids = await self.api.post_messages("jobs", 3)
        await self.api.post(Q + "/claims?limit=1", {"ttl": 60, "grace": 60})
        answer = await self.api.delete(f"{Q}/messages?ids={ids[0]},{ids[1]},zz")
        self.assertEqual(answer.code, 204)
        answer = await self.api.get(f"{Q}/messages?ids={','.join(ids)}")
        self.assertEqual([message_id(m["href"]) for m in answer.json], [ids[2]])
        self.assertEqual((await self.api.delete("/v1/queues/nope/messages?ids=1")).code, 204)
        for query in ("", "?ids=", "?ids=,"):
            answer = await self.api.delete(f"{Q}/messages{query}")
            self.assertEqual(answer.code, 400, query)
        many = ",".join(str(i) for i in range(1, 23))
        self.assertEqual(await self.code("DELETE", f"{Q}/messages?ids={many}"), 400)

    async def test_repeated_ids_parameter(self):
        """?ids=a&ids=b (python-zaqarclient 3.0.1's form) means every id given,
        mixed with the comma form, for GET and DELETE; the limit of 20 ids is
        on the total of all the values."""
        await self.make_queue()
        ids = await self.api.post_messages("jobs", 4)
        query = f"ids={ids[0]}&ids={ids[1]},{ids[2]}"
        answer = await self.api.get(f"{Q}/messages?{query}")
        self.assertEqual(sorted(message_id(m["href"]) for m in answer.json), sorted(ids[:3]))
        self.assertEqual(await self.code("DELETE", f"{Q}/messages?{query}"), 204)
        answer = await self.api.get(f"{Q}/messages?ids={','.join(ids)}")
        self.assertEqual([message_id(m["href"]) for m in answer.json], [ids[3]])
        answer = await self.api.delete(f"{Q}/messages?ids=&ids={ids[3]}")
        self.assertEqual(answer.code, 204)
        self.assertEqual((await self.api.get(f"{Q}/messages/{ids[3]}")).code, 404)
        ten = ",".join(str(i) for i in range(1, 11))
        eleven = ",".join(str(i) for i in range(11, 22))
        for method in ("GET", "DELETE"):
            answer = await self.api.request(method, f"{Q}/messages?ids={ten}&ids={eleven}")
            self.assertEqual(answer.code, 400, method)
            answer = await self.api.request(method, f"{Q}/messages?ids={ten}&ids={ten}")
            self.assertIn(answer.code, (200, 204), method)

    # -- single message -------------------------------------------------------

    async def test_get_message(self):
        """GET by id answers the message (claimed or not, claim_id ignored)
        with Content-Location; malformed, unknown or foreign ids are 404."""
        await self.make_queue()
        await self.make_queue("/v1/queues/other")
        [mid] = await self.api.post_messages("jobs", 1, ttl=120)
        [other] = await self.api.post_messages("other", 1)
        await self.api.post(Q + "/claims", {"ttl": 60, "grace": 60})
        self.clock.advance(5)
        answer = await self.api.get(f"{Q}/messages/{mid}?claim_id=whatever")
        self.assertEqual(answer.code, 200)
        self.assertEqual(answer.headers["content-location"],
                         f"{Q}/messages/{mid}?claim_id=whatever")
        self.assertEqual(answer.json, {"href": f"{Q}/messages/{mid}", "ttl": 120, "age": 5,
                                       "body": {"n": 0}})
        for bad in ("a", "zz", "0" * 24, "-1", "99999999999999999999", other):
            answer = await self.api.get(f"{Q}/messages/{bad}")
            self.assertEqual((answer.code, answer.body), (404, b""), bad)

    async def test_delete_message_matrix(self):
        """The 2.15 matrix: unknown ids 204; claimed without claim_id 403;
        malformed claim_id 204 and kept; wrong claim 403; right claim 204;
        after release the old claim id is 403; unclaimed without claim_id 204."""
        await self.make_queue()
        ids = await self.api.post_messages("jobs", 3)
        for bad in ("zz", "12345"):
            self.assertEqual(await self.code("DELETE", f"{Q}/messages/{bad}"), 204)
        claim = claim_id_of(await self.api.post(Q + "/claims?limit=2", {"ttl": 60, "grace": 60}))
        answer = await self.api.delete(f"{Q}/messages/{ids[0]}")
        self.assertEqual(answer.code, 403)
        self.assertEqual(answer.json["title"], "Unable to delete")
        self.assertEqual(await self.code("DELETE", f"{Q}/messages/{ids[0]}?claim_id=invalid"), 204)
        self.assertEqual((await self.api.get(f"{Q}/messages/{ids[0]}")).code, 200)
        other = "0123456789abcdef01234567"
        self.assertEqual(await self.code("DELETE", f"{Q}/messages/{ids[0]}?claim_id={other}"), 403)
        self.assertEqual(await self.code("DELETE", f"{Q}/messages/{ids[0]}?claim_id={claim}"), 204)
        self.assertEqual((await self.api.get(f"{Q}/messages/{ids[0]}")).code, 404)
        await self.api.delete(f"{Q}/claims/{claim}")
        self.assertEqual(await self.code("DELETE", f"{Q}/messages/{ids[1]}?claim_id={claim}"), 403)
        self.assertEqual(await self.code("DELETE", f"{Q}/messages/{ids[1]}"), 204)
        self.assertEqual(await self.code("DELETE", f"{Q}/messages/{ids[2]}?claim_id="), 204)
        self.assertEqual((await self.api.get(f"{Q}/messages/{ids[2]}")).code, 404)

    async def test_stale_claim_id_still_deletes(self):
        """After a claim expires, its id still deletes the message if nobody
        reclaimed it; deleting without claim_id also works then."""
        await self.make_queue()
        ids = await self.api.post_messages("jobs", 2)
        claim = claim_id_of(await self.api.post(Q + "/claims", {"ttl": 60, "grace": 60}))
        self.clock.advance(61)
        self.assertEqual((await self.api.get(f"{Q}/claims/{claim}")).code, 404)
        self.assertEqual(await self.code("DELETE", f"{Q}/messages/{ids[0]}?claim_id={claim}"), 204)
        self.assertEqual((await self.api.get(f"{Q}/messages/{ids[0]}")).code, 404)
        self.assertEqual(await self.code("DELETE", f"{Q}/messages/{ids[1]}"), 204)

    # -- claims ---------------------------------------------------------------

    async def test_claim(self):
        """A claim answers 201, a Location, and a bare array of messages whose
        hrefs carry the claim id, oldest first, limited by ?limit."""
        await self.make_queue()
        ids = await self.api.post_messages("jobs", 5)
        answer = await self.api.post(Q + "/claims?limit=3", {"ttl": 60, "grace": 60})
        self.assertEqual(answer.code, 201)
        claim = claim_id_of(answer)
        self.assertEqual(answer.headers["location"], f"{Q}/claims/{claim}")
        self.assertEqual([m["href"] for m in answer.json],
                         [f"{Q}/messages/{i}?claim_id={claim}" for i in ids[:3]])
        answer = await self.api.post(Q + "/claims", {"ttl": 60, "grace": 60})
        self.assertEqual(len(answer.json), 2)
        answer = await self.api.post(Q + "/claims", {"ttl": 60, "grace": 60})
        self.assertEqual((answer.code, answer.body), (204, b""))
        self.assertNotIn("location", answer.headers)

    async def test_claim_edge_cases(self):
        """Claim limits and bodies are checked (400); a missing queue and an
        exhausted queue answer 204; producers may claim their own messages."""
        await self.make_queue()
        await self.api.post_messages("jobs", 1)
        for limit in ("21", "0", "x"):
            answer = await self.api.post(f"{Q}/claims?limit={limit}", {"ttl": 60, "grace": 60})
            self.assertEqual(answer.code, 400, limit)
        for ttl, grace in ((59, 60), (60, 59), (43201, 60), (60, 43201), ("60", 60), (60, 60.5)):
            answer = await self.api.post(Q + "/claims", {"ttl": ttl, "grace": grace})
            self.assertEqual(answer.code, 400, (ttl, grace))
        for body in (b'"fail"', b"{}", b"[]", b"", b'{"ttl": 60}'):
            self.assertEqual((await self.api.post(Q + "/claims", body)).code, 400, body)
        answer = await self.api.post("/v1/queues/nope/claims", {"ttl": 60, "grace": 60})
        self.assertEqual(answer.code, 204)
        answer = await self.api.post(Q + "/claims", {"ttl": 60, "grace": 60})
        self.assertEqual(answer.code, 201)

    async def test_get_claim(self):
        """GET of a claim shows href, ttl, age since creation and its messages;
        unknown, malformed and expired claims are 404."""
        await self.make_queue()
        await self.api.post_messages("jobs", 2)
        claim = claim_id_of(await self.api.post(Q + "/claims", {"ttl": 100, "grace": 60}))
        self.clock.advance(7)
        answer = await self.api.get(f"{Q}/claims/{claim}")
        self.assertEqual(answer.code, 200)
        self.assertEqual(answer.headers["content-location"], f"{Q}/claims/{claim}")
        self.assertEqual((answer.json["href"], answer.json["ttl"], answer.json["age"]),
                         (f"{Q}/claims/{claim}", 100, 7))
        self.assertEqual(len(answer.json["messages"]), 2)
        self.assertTrue(all(m["href"].endswith(f"?claim_id={claim}")
                            for m in answer.json["messages"]))
        for bad in ("a", "0123456789abcdef01234567"):
            self.assertEqual((await self.api.get(f"{Q}/claims/{bad}")).code, 404)
        self.clock.advance(100)
        self.assertEqual((await self.api.get(f"{Q}/claims/{claim}")).code, 404)

    async def test_renew_claim(self):
        """PATCH renews a live claim (ttl updated, age reset, 204) and extends
        its messages; bad bodies are 400; unknown or expired claims are 404."""
        await self.make_queue()
        [mid] = await self.api.post_messages("jobs", 1, ttl=60)
        claim = claim_id_of(await self.api.post(Q + "/claims", {"ttl": 60, "grace": 60}))
        self.clock.advance(30)
        self.assertEqual((await self.api.patch(f"{Q}/claims/{claim}", {"ttl": 300})).code, 204)
        answer = await self.api.get(f"{Q}/claims/{claim}")
        self.assertEqual((answer.json["ttl"], answer.json["age"]), (300, 0))
        self.assertEqual((await self.api.get(f"{Q}/messages/{mid}")).json["ttl"], 300)
        for body in (b"{}", b'{"ttl": 59}', b'{"ttl": "300"}', b"[]", b"nope"):
            self.assertEqual((await self.api.patch(f"{Q}/claims/{claim}", body)).code, 400, body)
        self.assertEqual((await self.api.patch(f"{Q}/claims/a", {"ttl": 60})).code, 404)
        self.clock.advance(300)
        self.assertEqual((await self.api.patch(f"{Q}/claims/{claim}", {"ttl": 60})).code, 404)

    async def test_release_claim(self):
        """DELETE of a claim is 204 for any id and frees its messages at once."""
        await self.make_queue()
        await self.api.post_messages("jobs", 2)
        claim = claim_id_of(await self.api.post(Q + "/claims", {"ttl": 60, "grace": 60}))
        for bad in ("a", "0123456789abcdef01234567"):
            self.assertEqual(await self.code("DELETE", f"{Q}/claims/{bad}"), 204)
        self.assertEqual((await self.api.post(Q + "/claims", {"ttl": 60, "grace": 60})).code, 204)
        self.assertEqual(await self.code("DELETE", f"{Q}/claims/{claim}"), 204)
        answer = await self.api.post(Q + "/claims", {"ttl": 60, "grace": 60})
        self.assertEqual(len(answer.json), 2)

    async def test_claim_extends_message_life(self):
        """A claim keeps its messages alive past the claim by the grace
        (ttl-120 message, claim 100/22 -> ttl 122); age is never reset."""
        await self.make_queue()
        [mid] = await self.api.post_messages("jobs", 1, ttl=120)
        self.clock.advance(3)
        answer = await self.api.post(Q + "/claims", {"ttl": 100, "grace": 60})
        self.assertEqual((answer.json[0]["ttl"], answer.json[0]["age"]), (160, 3))

    async def test_expired_messages_vanish(self):
        """A ttl-60 message is visible until 60 s pass, then gone from list,
        get, ids, claim and stats even before gc runs."""
        await self.make_queue()
        [mid] = await self.api.post_messages("jobs", 1, ttl=60)
        self.clock.advance(59)
        self.assertEqual((await self.api.get(f"{Q}/messages/{mid}")).code, 200)
        self.clock.advance(1)
        self.assertEqual((await self.api.get(f"{Q}/messages/{mid}")).code, 404)
        self.assertEqual((await self.api.get(f"{Q}/messages?ids={mid}")).code, 204)
        self.assertEqual((await self.api.get(f"{Q}/messages?echo=true")).code, 204)
        self.assertEqual((await self.api.post(Q + "/claims", {"ttl": 60, "grace": 60})).code, 204)
        self.assertEqual((await self.api.get(Q + "/stats")).json["messages"]["total"], 0)

    async def test_unicode_is_emitted_as_utf8(self):
        """Non-ASCII text comes back as UTF-8, not as \\u escapes."""
        await self.make_queue()
        answer = await self.api.post(Q + "/messages", [{"ttl": 60, "body": "grüß"}])
        mid = message_id(answer.json["resources"][0])
        answer = await self.api.get(f"{Q}/messages/{mid}")
        self.assertIn("grüß".encode("utf-8"), answer.body)
        self.assertEqual(answer.headers["content-type"], "application/json; charset=utf-8")
