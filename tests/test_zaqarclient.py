"""python-zaqarclient (4.x, the OpenStack client, unchanged) against a real
``twistd -n marconi`` over API v2 with authentication off.

The client is synchronous (requests); the daemon is a subprocess, so the
tests call it directly from the test body.
"""

import os
import signal

from twisted.trial import unittest
from zaqarclient.queues import client as zaqar
from zaqarclient.transport import errors

from tests.daemon import Daemon

PROJECT = "compat-project"
SECRET = "a-secret-only-this-test-knows"
CONFIG = f"""\
[drivers]
admin_mode = true

[signed_url]
secret_key = {SECRET}
"""


def noauth(project=PROJECT):
    """The client configuration of a deployment without Keystone."""
    return {"auth_opts": {"backend": "noauth", "options": {"os_project_id": project}}}


class ZaqarClientTests(unittest.TestCase):
    timeout = 120

    def setUp(self):
        workdir = os.path.abspath(self.mktemp())
        os.makedirs(workdir)
        path = os.path.join(workdir, "marconi.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(CONFIG)
        self.daemon = Daemon(workdir, "--config", path).start()
        self.addCleanup(self.daemon.stop, signal.SIGKILL)
        self.client = zaqar.Client(self.daemon.url, version=2, conf=noauth())

    def queue(self, name="jobs"):
        return self.client.queue(name, force_create=True)

    def test_queue_lifecycle(self):
        """A queue is created (PUT), listed with its count, read with the
        reserved defaults, given metadata by the client's JSON-patch,
        counted by stats, purged and deleted. (The client's ``exists()``
        sends HEAD, which v2 does not serve, as upstream: 405, which the
        client takes for "exists"; it is not checked.)"""
        queue = self.queue("jobs")
        self.queue("other")
        listed, count = self.client.queues(with_count=True)
        self.assertEqual(sorted(q.name for q in listed), ["jobs", "other"])
        self.assertEqual(count, 2)

        metadata = queue.metadata(force_reload=True)
        self.assertEqual(metadata["_default_message_ttl"], 3600)
        updated = queue.metadata(new_meta={"owner": "ops", "_default_message_ttl": 300})
        self.assertEqual((updated["owner"], updated["_default_message_ttl"]), ("ops", 300))
        self.assertEqual(queue.metadata(force_reload=True)["owner"], "ops")
        listed, _ = self.client.queues(detailed=True)
        self.assertEqual({q.name: q.metadata().get("owner") for q in listed},
                         {"jobs": "ops", "other": None})

        queue.post([{"body": {"n": n}} for n in range(3)])
        self.assertEqual(queue.stats["messages"]["free"], 3)
        queue.purge(resource_types=["messages"])
        self.assertEqual(queue.stats["messages"]["total"], 0)
        queue.post({"body": "again"})
        queue.purge()
        self.assertEqual(queue.stats["messages"]["total"], 0)

        queue.delete()
        listed, _ = self.client.queues()
        self.assertEqual([q.name for q in listed], ["other"])

    def test_messages(self):
        """Posted messages are listed (own ones with echo), read one by one
        and by ids, deleted by id and by ids, and popped."""
        queue = self.queue()
        posted = queue.post([{"ttl": 300, "body": {"n": n}} for n in range(6)])
        ids = [href.rsplit("/", 1)[1] for href in posted["resources"]]
        self.assertEqual(len(ids), 6)

        self.assertEqual(list(queue.messages()), [])  # own messages need echo
        listed = list(queue.messages(echo=True))
        self.assertEqual([m.body["n"] for m in listed], list(range(6)))
        self.assertEqual([m.id for m in listed], ids)

        one = queue.message(ids[0])
        self.assertEqual((one.id, one.body, one.ttl), (ids[0], {"n": 0}, 300))
        many = queue.messages(*ids[1:3])
        self.assertEqual(sorted(m.body["n"] for m in many), [1, 2])

        one.delete()
        with self.assertRaises(errors.ResourceNotFound):
            queue.message(ids[0])
        queue.delete_messages(*ids[1:3])
        left = list(queue.messages(echo=True))
        self.assertEqual([m.body["n"] for m in left], [3, 4, 5])

        popped = list(queue.pop(count=2))
        self.assertEqual(len(popped), 2)
        self.assertLessEqual({m.body["n"] for m in popped}, {3, 4, 5})
        self.assertEqual([m.claim_count for m in popped], [0, 0])
        self.assertEqual(len(list(queue.messages(echo=True))), 1)

    def test_claims(self):
        """A claim is created with ttl, grace and limit, read back with its
        messages, renewed, and released; a claimed message is deleted with
        its claim id."""
        queue = self.queue()
        queue.post([{"ttl": 300, "body": n} for n in range(3)])

        claim = queue.claim(ttl=60, grace=60, limit=2)
        claimed = list(claim)
        self.assertEqual(sorted(m.body for m in claimed), [0, 1])
        self.assertTrue(all(m.claim_id == claim.id for m in claimed))

        again = queue.claim(id=claim.id)
        self.assertEqual(again.ttl, 60)
        self.assertGreaterEqual(again.age, 0)
        self.assertEqual(sorted(m.body for m in again), [0, 1])

        claim.update(ttl=120, grace=90)
        self.assertEqual(queue.claim(id=claim.id).ttl, 120)

        claimed[0].delete()  # carries ?claim_id=
        with self.assertRaises(errors.ResourceNotFound):
            queue.message(claimed[0].id)
        self.assertEqual(queue.stats["messages"]["claimed"], 1)

        claim.delete()
        with self.assertRaises(errors.ResourceNotFound):
            _ = queue.claim(id=claim.id).ttl  # reading it fetches the claim
        self.assertEqual(queue.stats["messages"]["claimed"], 0)
        self.assertEqual(sorted(m.body for m in queue.claim(ttl=60, grace=60, limit=5)), [1, 2])

    def test_signed_url(self):
        """A URL signed by ``queue.signed_url`` lets a client configured with
        only the signature (backend signed-url) read and post messages of
        that queue; other methods and paths are refused as not found."""
        queue = self.queue("shared")
        queue.post({"ttl": 300, "body": "Post It!"})
        signed = queue.signed_url(paths=["messages"], ttl_seconds=600,
                                  methods=["GET", "POST"])
        self.assertEqual(signed["project"], PROJECT)
        self.assertEqual(signed["paths"], ["/v2/queues/shared/messages"])
        self.assertEqual(len(signed["signature"]), 64)

        conf = {"auth_opts": {"backend": "signed-url", "options": {
            "paths": signed["paths"], "expires": signed["expires"],
            "methods": signed["methods"], "signature": signed["signature"],
            "os_project_id": signed["project"]}}}
        guest = zaqar.Client(self.daemon.url, version=2, conf=conf)
        shared = guest.queue("shared", auto_create=False)
        self.assertEqual([m.body for m in shared.messages()], ["Post It!"])
        shared.post({"ttl": 300, "body": "from the guest"})
        self.assertEqual(sorted(m.body for m in queue.messages(echo=True)),
                         ["Post It!", "from the guest"])

        with self.assertRaises(errors.ResourceNotFound):  # DELETE is not signed
            shared.delete_messages(*[m.id for m in queue.messages(echo=True)])
        with self.assertRaises(errors.ResourceNotFound):  # nor are claims
            shared.claim(ttl=60, grace=60)
        tampered = dict(conf["auth_opts"]["options"], signature="0" * 64)
        forged = zaqar.Client(self.daemon.url, version=2,
                              conf={"auth_opts": {"backend": "signed-url", "options": tampered}})
        with self.assertRaises(errors.ResourceNotFound):
            list(forged.queue("shared", auto_create=False).messages())

    def test_ping_health_and_home(self):
        """ping answers (True), the admin health document reports the
        storage, and the home document lists the v2 resources."""
        self.assertTrue(self.client.ping())
        health = self.client.health()
        self.assertTrue(health["storage_reachable"])
        home = self.client.homedoc()
        self.assertIn("rel/queues", home["resources"])

    def test_projects_are_separate(self):
        """The client's project header selects the namespace: another
        project sees none of the queues or messages."""
        self.queue("jobs").post({"body": 1})
        other = zaqar.Client(self.daemon.url, version=2, conf=noauth("someone-else"))
        listed, _ = other.queues()
        self.assertEqual(list(listed), [])
        self.assertEqual(other.queue("jobs", auto_create=False).stats["messages"]["total"], 0)

    def test_subscriptions(self):
        """The client's subscriptions: created (with ttl and options), read
        back, listed, updated and deleted, as the server stores them."""
        self.queue("jobs")
        hook = "http://127.0.0.1:9/hook"
        made = self.client.subscription("jobs", subscriber=hook, ttl=3600,
                                        options={"team": "ops"})
        self.assertTrue(made.id)
        self.assertEqual((made.subscriber, made.ttl, made.options, made.confirmed),
                         (hook, 3600, {"team": "ops"}, False))
        self.client.subscription("jobs", subscriber="https://example.net/other")
        self.assertEqual(sorted(s.subscriber for s in self.client.subscriptions("jobs")),
                         [hook, "https://example.net/other"])

        made.update({"ttl": 7200, "options": {"team": "dev"}})
        again = self.client.subscription("jobs", id=made.id)
        self.assertEqual((again.ttl, again.options), (7200, {"team": "dev"}))
        made.delete()
        self.assertEqual([s.subscriber for s in self.client.subscriptions("jobs")],
                         ["https://example.net/other"])


POOLED_CONFIG = """\
[drivers]
admin_mode = true
pooling = true
storage = sqlite:{catalog}
"""


class ZaqarPoolTests(unittest.TestCase):
    """python-zaqarclient's pool and flavor calls against ``twistd marconi``
    with pooling and admin_mode on, over sqlite-file pools."""

    timeout = 120

    def setUp(self):
        self.workdir = os.path.abspath(self.mktemp())
        os.makedirs(self.workdir)
        path = os.path.join(self.workdir, "marconi.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(POOLED_CONFIG.format(catalog=os.path.join(self.workdir, "catalog.db")))
        self.daemon = Daemon(self.workdir, "--config", path).start()
        self.addCleanup(self.daemon.stop, signal.SIGKILL)
        self.client = zaqar.Client(self.daemon.url, version=2, conf=noauth())

    def uri(self, name):
        return f"sqlite:{os.path.join(self.workdir, name)}.db"

    def test_pools(self):
        """client.pool creates a pool (a second time: a conflict), pools()
        lists them with their uri, weight and flavor, Pool.get reads one,
        Pool.update changes it, Pool.delete removes it (refused while a
        queue lives in it)."""
        pool = self.client.pool("a", uri=self.uri("a"), weight=10)
        self.client.pool("b", uri=self.uri("b"), weight=0, options={"tier": "ssd"})
        listed = list(self.client.pools())
        self.assertEqual([(p.name, p.uri, p.weight, p.flavor) for p in listed],
                         [("a", self.uri("a"), 10, None), ("b", self.uri("b"), 0, None)])
        self.assertEqual([p.options for p in self.client.pools(detailed=True)],
                         [{}, {"tier": "ssd"}])
        with self.assertRaises(errors.ConflictError):
            self.client.pool("a", uri=self.uri("a"), weight=1)

        pool.update({"weight": 5})
        self.assertEqual(pool.get()["weight"], 5)
        self.client.queue("jobs", force_create=True)  # weight 0: never in b
        with self.assertRaises(errors.ForbiddenError):
            pool.delete()
        self.client.queue("jobs", auto_create=False).delete()
        pool.delete()
        self.assertEqual([p.name for p in self.client.pools()], ["b"])
        with self.assertRaises(errors.ResourceNotFound):
            pool.get()

    def test_flavors(self):
        """client.flavor makes a flavor of pools; flavors() lists it,
        Flavor.get shows its pools and capabilities, Flavor.update changes
        its pools and Flavor.delete removes it; the health report shows
        every pool."""
        self.client.pool("a", uri=self.uri("a"), weight=1)
        self.client.pool("b", uri=self.uri("b"), weight=1)
        flavor = self.client.flavor("gold", pool_list=["a"])
        self.assertEqual([(f.name, f.pool_list) for f in self.client.flavors()],
                         [("gold", ["a"])])
        shown = flavor.get()
        self.assertEqual((shown["pool_list"], shown["capabilities"][:2]),
                         (["a"], ["FIFO", "CLAIMS"]))
        flavor.update({"pool_list": ["a", "b"]})
        self.assertEqual(flavor.get()["pool_list"], ["a", "b"])
        health = self.client.health()
        self.assertEqual((health["catalog_reachable"], health["a"]["storage_reachable"],
                          health["b"]["storage_reachable"]), (True, True, True))
        flavor.delete()
        self.assertEqual(list(self.client.flavors()), [])
        with self.assertRaises(errors.ResourceNotFound):
            flavor.get()
