"""Authentication and project isolation over HTTP (every API version, signed
URLs, /metrics), with the token strategy, over sqlite and MongoDB."""

import json

from twisted.internet import defer
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from marconi_tx import config
from marconi_tx.auth.tokens import token_hash
from marconi_tx.metrics import daemon_metrics
from marconi_tx.storage.sqlite.driver import SqliteDriver
from tests.http_support import ApiClient, ApiOverDriverMixin

SECRET = "not-a-real-secret"
#: token -> (project, roles) of the tests' token file.
TOKENS = {"alpha-token": ("alpha", ""), "beta-token": ("beta", "member"),
          "root-token": ("ops", "Admin,member")}
ALPHA, BETA, ROOT = ({"X-Auth-Token": t} for t in TOKENS)
#: A path of every version, with the body that creates the queue ``q``.
QUEUES = {"/v1": None, "/v1.1": {}, "/v2": {}}


def write_token_file(path, tokens=TOKENS):
    with open(path, "w", encoding="utf-8") as f:
        f.write("# tokens of the tests\n\n")
        for token, (project, roles) in tokens.items():
            f.write(f"sha256:{token_hash(token)} {project} {roles}\n")
    return path


def token_settings(path, *extra):
    return config.load(overrides=[("auth", "strategy", "token"), ("auth", "token_file", path),
                                  *extra])


class AuthHttpMixin(ApiOverDriverMixin):
    async def setUp(self):
        await super().setUp()
        self.tokens = write_token_file(self.mktemp())
        self.api = self.api_client(token_settings(
            self.tokens, ("signed_url", "secret_key", SECRET), ("drivers", "admin_mode", "true")))

    async def post_one(self, version, queue, headers, body=1):
        if version == "/v1":
            doc = [{"ttl": 300, "body": body}]
        else:
            doc = {"messages": [{"ttl": 300, "body": body}]}
        return await self.api.post(f"{version}/queues/{queue}/messages", doc, headers=headers)

    def assertError(self, answer, code):
        self.assertEqual(answer.code, code, answer.body)
        doc = answer.json
        self.assertEqual(set(doc), {"title", "description"})
        self.assertEqual(answer.headers["content-type"], "application/json; charset=utf-8")

    async def test_missing_or_wrong_token(self):
        """Without a token, or with one not in the file (or not UTF-8), every
        version answers 401 with a JSON body and WWW-Authenticate, v1
        included; nothing is created."""
        for version in QUEUES:
            for headers in ({}, {"X-Auth-Token": "nope"}, {"X-Auth-Token": b"\xff"},
                            {"X-Auth-Token": token_hash("alpha-token")}):
                answer = await self.api.put(f"{version}/queues/q", headers=headers,
                                            project="alpha")
                self.assertError(answer, 401)
                self.assertIn("X-Auth-Token", answer.headers["www-authenticate"])
        answer = await self.api.get("/v2/queues", headers=ALPHA)
        self.assertEqual(answer.code, 200)
        self.assertEqual(answer.json["queues"], [])

    async def test_project_from_token(self):
        """A request needs no X-Project-ID (v1.1 and v2 too): the token's
        project is used, the same one as naming it."""
        for version, body in QUEUES.items():
            self.assertIn((await self.api.put(f"{version}/queues/q{version[2:].replace('.', '')}",
                                              body, headers=ALPHA)).code, (201, 204))
        answer = await self.api.get("/v2/queues", headers=ALPHA, project="alpha")
        self.assertEqual(sorted(q["name"] for q in answer.json["queues"]), ["q1", "q11", "q2"])

    async def test_projects_isolated(self):
        """What one project posts no other sees, over every version: queue
        listings, message listings, gets by id, claims, stats, deletes."""
        for version, body in QUEUES.items():
            await self.api.put(f"{version}/queues/shared", body, headers=ALPHA)
            answer = await self.post_one(version, "shared", ALPHA, body={"secret": version})
            self.assertEqual(answer.code, 201)
        href = answer.json["resources"][0]
        for version in QUEUES:
            listing = await self.api.get(f"{version}/queues", headers=BETA)
            self.assertIn(listing.code, (200, 204))
            if listing.code == 200:
                self.assertEqual(listing.json["queues"], [])
            messages = await self.api.get(f"{version}/queues/shared/messages?echo=true",
                                          headers=BETA)
            self.assertIn(messages.code, (204, 404, 200))
            if messages.code == 200:
                self.assertEqual(messages.json["messages"], [])
            claim = await self.api.post(f"{version}/queues/shared/claims",
                                        {"ttl": 60, "grace": 60}, headers=BETA)
            self.assertIn(claim.code, (204, 404))
        self.assertIn((await self.api.get(href, headers=BETA)).code, (404,))
        self.assertEqual((await self.api.delete(href, headers=BETA)).code, 204)
        stats = await self.api.get("/v2/queues/shared/stats", headers=BETA)
        self.assertEqual(stats.json["messages"]["total"], 0)
        # All still there for their owner.
        answer = await self.api.get(href, headers=ALPHA)
        self.assertEqual((answer.code, answer.json["body"]), (200, {"secret": "/v2"}))
        stats = await self.api.get("/v1/queues/shared/stats", headers=ALPHA)
        self.assertEqual(stats.json["messages"]["free"], 3)  # one a version

    async def test_other_project_forbidden(self):
        """Naming another project with X-Project-ID is 403 (JSON) for a token
        without the admin role, on every version."""
        await self.api.put("/v2/queues/q", {}, headers=ALPHA)
        for version in QUEUES:
            answer = await self.api.get(f"{version}/queues", headers=BETA, project="alpha")
            self.assertError(answer, 403)

    async def test_admin_names_any_project(self):
        """A token with the admin role (any case in the file) may name any
        project; without X-Project-ID it uses its own."""
        await self.post_one("/v2", "q", ALPHA, body="for alpha")
        answer = await self.api.get("/v1.1/queues/q/messages?echo=true", headers=ROOT,
                                    project="alpha")
        self.assertEqual([m["body"] for m in answer.json["messages"]], ["for alpha"])
        answer = await self.api.get("/v2/queues", headers=ROOT)
        self.assertEqual(answer.json["queues"], [])

    async def test_admin_routes(self):
        """/v1.1/health and /v2/health need the admin role: 401 without a
        token, 403 with another, 200 with it."""
        for path in ("/v1.1/health", "/v2/health"):
            self.assertError(await self.api.get(path), 401)
            self.assertError(await self.api.get(path, headers=ALPHA), 403)
            self.assertEqual((await self.api.get(path, headers=ROOT)).code, 200)

    async def test_public_routes(self):
        """The versions document, home documents, ping and v1 health answer
        without a token (as without a strategy); a wrong token sent to them
        is 401 all the same."""
        self.assertEqual((await self.api.get("/")).code, 300)
        self.assertEqual((await self.api.get("/v1/health")).code, 204)
        self.assertEqual((await self.api.get("/v2/ping", project="any")).code, 204)
        self.assertEqual((await self.api.get("/v1.1/ping", project="any")).code, 204)
        self.assertEqual((await self.api.get("/v2", project="any")).code, 200)
        self.assertEqual((await self.api.get("/v1")).code, 200)
        self.assertError(await self.api.get("/v2/ping", headers={"X-Auth-Token": "no"}), 401)

    async def share(self, headers, queue="q", **doc):
        answer = await self.api.post(f"/v2/queues/{queue}/share", doc, headers=headers)
        self.assertEqual(answer.code, 200, answer.body)
        doc = answer.json
        return {"URL-Signature": doc["signature"], "URL-Expires": doc["expires"],
                "URL-Methods": ",".join(doc["methods"]), "URL-Paths": ",".join(doc["paths"]),
                "X-Project-ID": doc["project"]}

    async def test_signed_url_needs_no_token(self):
        """A v2 request with a valid signature needs no token and uses the
        signed project (the token's, who shared); it is confined to the
        signed queue, paths and methods, and another project named in
        X-Project-ID makes it 404."""
        await self.post_one("/v2", "q", ALPHA, body="alpha's")
        await self.post_one("/v2", "q", BETA, body="beta's")
        await self.post_one("/v2", "other", ALPHA, body="not shared")
        signed = await self.share(ALPHA)
        self.assertEqual(signed["X-Project-ID"], "alpha")
        answer = await self.api.get("/v2/queues/q/messages?echo=true", headers=signed)
        self.assertEqual([m["body"] for m in answer.json["messages"]], ["alpha's"])
        for path in ("/v2/queues/other/messages", "/v2/queues", "/v2/queues/q/stats"):
            self.assertError(await self.api.get(path, headers=signed), 404)
        self.assertError(await self.api.post("/v2/queues/q/claims", headers=signed), 404)
        answer = await self.api.get("/v2/queues/q/messages",
                                    headers={**signed, "X-Project-ID": "beta"})
        self.assertError(answer, 404)
        # Over v1 and v1.1 a signature is no credential.
        for version in ("/v1", "/v1.1"):
            answer = await self.api.get(f"{version}/queues/q/messages", headers=signed)
            self.assertError(answer, 401)
        # A token sent with it must grant the signed project too.
        answer = await self.api.get("/v2/queues/q/messages", headers={**signed, **BETA})
        self.assertError(answer, 403)

    async def test_token_reloaded(self):
        """After the token file changes and ``reload`` runs (SIGHUP), a
        removed token is 401 and an added one works."""
        strategy = self.api.strategy
        write_token_file(self.tokens, {"new-token": ("alpha", "")})
        self.assertEqual((await self.api.get("/v2/queues", headers=ALPHA)).code, 200)
        strategy.reload()
        self.assertError(await self.api.get("/v2/queues", headers=ALPHA), 401)
        answer = await self.api.get("/v2/queues", headers={"X-Auth-Token": "new-token"})
        self.assertEqual(answer.code, 200)

    async def test_no_token_logged(self):
        """No log event and no access log line holds a token, whether it is
        valid, wrong, or the file's reload fails."""
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        access = self.mktemp()
        api = ApiClient(self.driver, self.api.settings, reactor=self.clock, waits=self.waits,
                        access_log=access)
        api.site.startFactory()  # opens the access log
        await api.get("/v2/queues", headers=ALPHA)
        await api.get("/v2/queues", headers={"X-Auth-Token": "wrong-secret"})
        await api.get("/metrics", headers={"Authorization": "Bearer wrong-secret"})
        with open(self.tokens, "a") as f:
            f.write("alpha-token beta\n")  # a token pasted in clear: a bad line
        api.strategy.reload()
        api.site.stopFactory()  # closes the access log
        with open(access, encoding="utf-8") as f:
            logged = f.read()
        self.assertIn("GET /v2/queues", logged)
        logged += "".join(json.dumps(event, default=repr) for event in events)
        self.assertIn("line 6", logged)  # the reload's error names the line only
        for secret in ("alpha-token", "wrong-secret"):
            self.assertNotIn(secret, logged)


class MetricsAuthTests(unittest.SynchronousTestCase):
    """GET /metrics with a strategy on (shows every project's queues)."""

    def test_metrics_need_admin(self):
        """/metrics is 401 without a token, 403 without the admin role, and
        served to an admin's X-Auth-Token or Authorization: Bearer."""
        from marconi_tx.testing import MemoryDriver
        from tests.http_support import new_clock

        clock = new_clock()
        settings = token_settings(write_token_file(self.mktemp()))
        driver = MemoryDriver(clock)
        api = ApiClient(driver, settings, daemon_metrics(settings, clock), reactor=clock)
        codes = [self.successResultOf(defer.ensureDeferred(api.get("/metrics", headers=h))).code
                 for h in ({}, ALPHA, ROOT, {"Authorization": "bearer root-token"},
                           {"Authorization": "Bearer alpha-token"})]
        self.assertEqual(codes, [401, 403, 200, 200, 403])


class AuthHttpOnSqliteFileTests(AuthHttpMixin, unittest.TestCase):
    waits = False

    def make_driver(self, clock):
        return SqliteDriver(self.mktemp() + ".db", clock)


class AuthHttpOnMongoTests(AuthHttpMixin, unittest.TestCase):
    """The same over MongoDB (a real MongoDB-wire server)."""

    def make_driver(self, clock):
        from marconi_tx.storage.mongodb.driver import MongoDriver
        from tests.mongodb_server import fresh_database_uri

        return MongoDriver(fresh_database_uri(self), clock, config.load().mongodb)
