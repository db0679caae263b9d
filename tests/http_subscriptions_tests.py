"""The subscription routes of API v2 (api-v2.md §6.1, §10 item 12), as a
mixin run against every driver (``make_driver(clock)``, as
``tests.http_v2_tests``)."""

from tests.http_v1_1_tests import NewerApiMixin

HOOK = "http://127.0.0.1:9/hook"


class HttpSubscriptionsMixin(NewerApiMixin):
    prefix = "/v2"

    @property
    def subs(self):
        return f"{self.q}/subscriptions"

    async def subscribe(self, body=None, **kw):
        answer = await self.post(self.subs, body or {"subscriber": HOOK}, **kw)
        self.assertEqual(answer.code, 201, answer.body)
        return answer.json["subscription_id"]

    async def test_create_and_get(self):
        """POST answers 201 with the id and the collection as Location; GET
        shows id, source, subscriber, ttl, age, options and confirmed; the
        queue was created lazily."""
        answer = await self.post(self.subs, {"subscriber": HOOK, "ttl": 600,
                                             "options": {"post_headers": {"X-T": "a"}}})
        self.assertEqual(answer.code, 201)
        self.assertTrue(answer.headers["location"].endswith(self.subs))
        sid = answer.json["subscription_id"]
        self.clock.advance(3)
        got = await self.get(f"{self.subs}/{sid}")
        self.assertEqual((got.code, got.json),
                         (200, {"id": sid, "source": "jobs", "subscriber": HOOK, "ttl": 600,
                                "age": 3, "options": {"post_headers": {"X-T": "a"}},
                                "confirmed": False}))
        self.assertEqual((await self.get(self.q)).code, 200)

    async def test_default_ttl(self):
        """A subscription without ttl gets default_subscription_ttl (3600)."""
        sid = await self.subscribe()
        self.assertEqual((await self.get(f"{self.subs}/{sid}")).json["ttl"], 3600)

    async def test_bad_create_bodies(self):
        """§10.12: an ftp:// subscriber and ttl 59 are 400; so are mailto:
        (not delivered by this server), a missing or non-string subscriber,
        a subscriber without host, non-object options, unusable post_headers
        or post_data, an invalid _retry_policy, unknown keys and non-object
        bodies; each with a JSON title and description."""
        for body in ({"subscriber": "ftp://h/x"}, {"subscriber": HOOK, "ttl": 59},
                     {"subscriber": "mailto:a@example.com"}, {}, {"subscriber": 5},
                     {"subscriber": "http://"}, {"subscriber": "http:/x"},
                     {"subscriber": HOOK, "ttl": "60"}, {"subscriber": HOOK, "ttl": 2**63},
                     {"subscriber": HOOK, "options": []},
                     {"subscriber": HOOK, "options": {"post_headers": {"A": "b\r\nc"}}},
                     {"subscriber": HOOK, "options": {"post_headers": {"A B": "c"}}},
                     {"subscriber": HOOK, "options": {"post_data": 5}},
                     {"subscriber": HOOK, "options": {"_retry_policy": {
                         "minimum_delay": 10, "maximum_delay": 15}}},
                     {"subscriber": HOOK, "options": {"_retry_policy": {
                         "retry_backoff_function": "cubic"}}},
                     {"subscriber": HOOK, "extra": 1}, [HOOK], "x",
                     {"subscriber": "http://h:99999/x"}, {"subscriber": "http://h é"}):
            answer = await self.post(self.subs, body)
            self.assertEqual(answer.code, 400, body)
            self.assertEqual(set(answer.json), {"title", "description"})

    async def test_duplicate(self):
        """§10.12: a duplicate POST of an unconfirmed subscriber is 201 with
        the same id; once confirmed it is 409."""
        sid = await self.subscribe()
        self.assertEqual(await self.subscribe(), sid)
        self.assertEqual((await self.put(f"{self.subs}/{sid}/confirm",
                                         {"confirmed": True})).code, 204)
        answer = await self.post(self.subs, {"subscriber": HOOK})
        self.assertEqual(answer.code, 409)
        self.assertIn("title", answer.json)

    async def test_list_and_paging(self):
        """GET lists by id, ``limit`` 1-20 (default 10), a next link whose
        marker continues the listing, and links [] when empty."""
        empty = await self.get(self.subs)
        self.assertEqual((empty.code, empty.json), (200, {"subscriptions": [], "links": []}))
        made = sorted([await self.subscribe({"subscriber": f"{HOOK}/{n}"}) for n in range(3)])
        page = await self.get(f"{self.subs}?limit=2")
        self.assertEqual([s["id"] for s in page.json["subscriptions"]], made[:2])
        link = page.json["links"][0]
        self.assertEqual(link["rel"], "next")
        rest = await self.get(link["href"])
        self.assertEqual([s["id"] for s in rest.json["subscriptions"]], made[2:])
        for limit in ("0", "21", "x"):
            self.assertEqual((await self.get(f"{self.subs}?limit={limit}")).code, 400)
        other = await self.get(f"{self.prefix}/queues/other/subscriptions")
        self.assertEqual(other.json["subscriptions"], [])

    async def test_unknown_ids(self):
        """§10.12: GET, PATCH and confirm of an unknown id are 404 (JSON);
        DELETE of an unknown id is 204."""
        for method, path, body in (("GET", "/abc", None), ("PATCH", "/abc", {"ttl": 100}),
                                   ("PUT", "/abc/confirm", {"confirmed": True})):
            answer = await self.call(method, self.subs + path, body)
            self.assertEqual((answer.code, answer.json["title"]), (404, "Not found"))
        self.assertEqual((await self.delete(f"{self.subs}/abc")).code, 204)

    async def test_other_project_sees_nothing(self):
        """Another project's GET is 404 and its listing is empty."""
        sid = await self.subscribe()
        self.assertEqual((await self.get(f"{self.subs}/{sid}", project="other")).code, 404)
        listed = await self.get(self.subs, project="other")
        self.assertEqual(listed.json["subscriptions"], [])

    async def test_patch(self):
        """PATCH answers 204 with Location; a new ttl restarts the age;
        options are replaced; {} is 400; invalid values are 400; a subscriber
        of another subscription is 409."""
        sid = await self.subscribe()
        await self.subscribe({"subscriber": f"{HOOK}/2"})
        self.clock.advance(5)
        answer = await self.patch(f"{self.subs}/{sid}", {"ttl": 120, "options": {"a": 1}})
        self.assertEqual(answer.code, 204)
        self.assertTrue(answer.headers["location"].endswith(f"/subscriptions/{sid}"))
        got = (await self.get(f"{self.subs}/{sid}")).json
        self.assertEqual((got["ttl"], got["age"], got["options"]), (120, 0, {"a": 1}))
        self.assertEqual((await self.patch(f"{self.subs}/{sid}", {})).code, 400)
        for body in ({"ttl": 1}, {"subscriber": "ftp://x"}, {"options": 3}, {"nope": 1}, []):
            self.assertEqual((await self.patch(f"{self.subs}/{sid}", body)).code, 400, body)
        clash = await self.patch(f"{self.subs}/{sid}", {"subscriber": f"{HOOK}/2"})
        self.assertEqual(clash.code, 409)

    async def test_confirm(self):
        """PUT confirm with true or false is 204 and sets ``confirmed``;
        §10.12: "yes" (not a boolean) is 400."""
        sid = await self.subscribe()
        path = f"{self.subs}/{sid}/confirm"
        self.assertEqual((await self.put(path, {"confirmed": "yes"})).code, 400)
        self.assertEqual((await self.put(path, {})).code, 400)
        answer = await self.put(path, {"confirmed": True})
        self.assertEqual(answer.code, 204)
        self.assertTrue((await self.get(f"{self.subs}/{sid}")).json["confirmed"])
        self.assertEqual((await self.put(path, {"confirmed": False})).code, 204)
        self.assertFalse((await self.get(f"{self.subs}/{sid}")).json["confirmed"])

    async def test_expiry(self):
        """A subscription is gone (404) once its ttl has passed."""
        sid = await self.subscribe({"subscriber": HOOK, "ttl": 60})
        self.clock.advance(60)
        self.assertEqual((await self.get(f"{self.subs}/{sid}")).code, 404)

    async def test_delete(self):
        """DELETE answers 204 and the subscription is gone."""
        sid = await self.subscribe()
        self.assertEqual((await self.delete(f"{self.subs}/{sid}")).code, 204)
        self.assertEqual((await self.get(f"{self.subs}/{sid}")).code, 404)

    async def test_purge_subscriptions(self):
        """Purging "subscriptions" removes all of the queue's (more than
        upstream's 10) and keeps its messages; purging "messages" keeps the
        subscriptions."""
        for n in range(12):
            await self.subscribe({"subscriber": f"{HOOK}/{n}"})
        await self.post_messages(1)
        answer = await self.post(f"{self.q}/purge", {"resource_types": ["messages"]})
        self.assertEqual(answer.code, 204)
        self.assertEqual(len((await self.get(f"{self.subs}?limit=20")).json["subscriptions"]),
                         12)
        await self.post_messages(1)
        answer = await self.post(f"{self.q}/purge", {"resource_types": ["subscriptions"]})
        self.assertEqual(answer.code, 204)
        self.assertEqual((await self.get(self.subs)).json["subscriptions"], [])
        self.assertEqual(len(await self.listed()), 1)

    async def test_queue_delete_keeps_subscriptions(self):
        """Deleting the queue keeps its subscriptions (api-v2.md §2.6)."""
        sid = await self.subscribe()
        self.assertEqual((await self.delete(self.q)).code, 204)
        self.assertEqual((await self.get(f"{self.subs}/{sid}")).code, 200)

    async def test_queue_retry_policy_checked(self):
        """A queue's ``_retry_policy`` is checked on PUT: invalid is 400."""
        answer = await self.put(f"{self.prefix}/queues/rq",
                                {"_retry_policy": {"minimum_delay_retries": -1}})
        self.assertEqual(answer.code, 400)
        answer = await self.put(f"{self.prefix}/queues/rq",
                                {"_retry_policy": {"minimum_delay_retries": 2}})
        self.assertEqual(answer.code, 201)

