"""``marconi-cli`` in-process against the real server resource (StubTreq)."""

import io
import json

from treq.testing import StubTreq
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from marconi_tx.client.cli import DEFAULT_TTL, main
from tests.test_client_support import Fixed, Recording, RefusingTreq, Server


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self):
        return True


class CLITestCase(SynchronousTestCase):
    #: The API version the commands speak ($MARCONI_API unless a test's
    #: environment says otherwise).
    api = "v1"

    def setUp(self):
        self.server = Server(self, self.api)
        self.client = self.server.client()

    def cli(self, *argv, stdin="", environ=None, resource=None, treq=None,
            stderr=None):
        """Run marconi-cli; (exit status, stdout, stderr)."""
        out, err = io.StringIO(), stderr or io.StringIO()
        deferred = main(
            list(argv), treq=treq or StubTreq(resource or self.server.resource),
            reactor=self.server.clock, stdin=io.StringIO(stdin), stdout=out,
            stderr=err, environ={"MARCONI_API": self.api, **(environ or {})})
        status = self.successResultOf(deferred)
        return status, out.getvalue(), err.getvalue()

    def ok(self, *argv, **kwargs):
        """Run a command that must succeed silently on stderr; its stdout."""
        status, out, err = self.cli(*argv, **kwargs)
        self.assertEqual((status, err), (0, ""), (argv, out))
        return out

    def json(self, *argv, **kwargs):
        return json.loads(self.ok("--json", *argv, **kwargs))

    def assertOneLineError(self, err, *fragments):
        self.assertEqual(err.count("\n"), 1, err)
        self.assertTrue(err.startswith("marconi-cli"), err)
        self.assertNotIn("Traceback", err)
        for fragment in fragments:
            self.assertIn(fragment, err)

    def queue_with(self, name, count):
        queue = self.successResultOf(self.client.create_queue(name))
        self.successResultOf(queue.post_messages(
            [{"ttl": 300, "body": {"n": n}} for n in range(count)]))
        return queue


class QueueCommandTests(CLITestCase):
    def test_create_and_list(self):
        """queue create makes the queue (reporting whether it was new);
        queue list shows it with its metadata."""
        self.assertIn("created queue jobs", self.ok("queue", "create", "jobs"))
        self.assertEqual(self.json("queue", "create", "jobs"),
                         {"name": "jobs", "created": False})
        self.ok("queue", "create", "alpha", "--metadata", '{"owner": "ops"}')
        out = self.ok("queue", "list")
        self.assertEqual(out.splitlines()[0].split(), ["NAME", "METADATA"])
        self.assertIn('alpha  {"owner":"ops"}', out)
        self.assertEqual(self.json("queue", "list"), [
            {"name": "alpha", "href": "/v1/queues/alpha", "metadata": {"owner": "ops"}},
            {"name": "jobs", "href": "/v1/queues/jobs", "metadata": {}}])

    def test_list_many_queues(self):
        """queue list shows every queue, across pages."""
        for n in range(23):
            self.successResultOf(self.client.create_queue(f"q{n:02d}"))
        self.assertEqual(len(self.json("queue", "list")), 23)

    def test_list_empty(self):
        """queue list with no queues says so (and [] in JSON)."""
        self.assertEqual(self.ok("queue", "list"), "no queues\n")
        self.assertEqual(self.json("queue", "list"), [])

    def test_exists_exit_status(self):
        """queue exists exits 0 for an existing queue and 1 otherwise, with
        nothing on stderr."""
        self.ok("queue", "create", "jobs")
        self.assertEqual(self.cli("queue", "exists", "jobs")[0], 0)
        status, out, err = self.cli("--json", "queue", "exists", "nope")
        self.assertEqual((status, err), (1, ""))
        self.assertEqual(json.loads(out), {"name": "nope", "exists": False})

    def test_delete(self):
        """queue delete removes the queue."""
        self.queue_with("jobs", 2)
        self.assertEqual(self.json("queue", "delete", "jobs"),
                         {"name": "jobs", "deleted": True})
        self.assertFalse(self.successResultOf(self.client.queue("jobs").exists()))

    def test_delete_missing_queue(self):
        """queue delete of a queue that does not exist says so and exits 1
        (as queue exists), nothing on stderr, and creates nothing."""
        status, out, err = self.cli("queue", "delete", "nope")
        self.assertEqual((status, out, err), (1, "queue nope did not exist\n", ""))
        status, out, _ = self.cli("--json", "queue", "delete", "nope")
        self.assertEqual((status, json.loads(out)), (1, {"name": "nope", "deleted": False}))
        self.assertFalse(self.successResultOf(self.client.queue("nope").exists()))

    def test_stats(self):
        """queue stats shows the counts (table), or the server's document
        (JSON)."""
        self.queue_with("jobs", 3)
        self.successResultOf(self.client.queue("jobs").claim(limit=1))
        out = self.ok("queue", "stats", "jobs")
        self.assertIn("claimed   1", out)
        self.assertIn("oldest", out)
        stats = self.json("queue", "stats", "jobs")["messages"]
        self.assertEqual((stats["free"], stats["claimed"], stats["total"]), (2, 1, 3))

    def test_stats_of_missing_queue(self):
        """queue stats of a missing queue exits 1 with one line on stderr."""
        status, out, err = self.cli("queue", "stats", "nope")
        self.assertEqual((status, out), (1, ""))
        self.assertOneLineError(err, "404", "nope")

    def test_metadata(self):
        """queue metadata prints the metadata; --set replaces it."""
        self.ok("queue", "create", "jobs", "--metadata", '{"a": 1}')
        self.assertEqual(self.json("queue", "metadata", "jobs"), {"a": 1})
        self.assertEqual(json.loads(self.ok("queue", "metadata", "jobs")), {"a": 1})
        self.ok("queue", "metadata", "jobs", "--set", '{"b": [1, 2]}')
        self.assertEqual(self.successResultOf(self.client.queue("jobs").metadata()),
                         {"b": [1, 2]})


class MessageCommandTests(CLITestCase):
    def test_post_arguments(self):
        """message post posts each BODY_JSON argument with --ttl and prints
        the ids."""
        self.ok("queue", "create", "jobs")
        posted = self.json("message", "post", "jobs", '{"a": 1}', '"text"', "-5",
                           "--ttl", "120")
        self.assertEqual(posted["queue"], "jobs")
        messages = self.successResultOf(self.client.queue("jobs").messages().collect())
        self.assertEqual([m.id for m in messages], posted["ids"])
        self.assertEqual([m.body for m in messages], [{"a": 1}, "text", -5])
        self.assertEqual({m.ttl for m in messages}, {120})

    def test_post_human_output(self):
        """Without --json, message post reports the count and the ids."""
        self.ok("queue", "create", "jobs")
        out = self.ok("message", "post", "jobs", "1", "2")
        self.assertEqual(out.splitlines()[0], "posted 2 message(s) to jobs")
        self.assertEqual(len(out.splitlines()), 3)

    def test_post_file(self):
        """--file reads JSON lines: an object with exactly ttl and body is a
        message, anything else a body with the default ttl; blank lines are
        skipped."""
        self.ok("queue", "create", "jobs")
        path = self.mktemp()
        with open(path, "w", encoding="utf-8") as f:
            f.write('{"ttl": 90, "body": "timed"}\n\n[1, 2]\n'
                    '{"body": "only body"}\n"\u00e9"\n')
        self.assertEqual(len(self.json("message", "post", "jobs", "--file", path)["ids"]), 4)
        messages = self.successResultOf(self.client.queue("jobs").messages().collect())
        self.assertEqual([(m.ttl, m.body) for m in messages], [
            (90, "timed"), (DEFAULT_TTL, [1, 2]),
            (DEFAULT_TTL, {"body": "only body"}), (DEFAULT_TTL, "\u00e9")])

    def test_post_stdin(self):
        """--file - reads the JSON lines from stdin, after the arguments."""
        self.ok("queue", "create", "jobs")
        self.ok("message", "post", "jobs", '"first"', "--file", "-",
                stdin='"second"\n{"ttl": 60, "body": 3}\n')
        messages = self.successResultOf(self.client.queue("jobs").messages().collect())
        self.assertEqual([m.body for m in messages], ["first", "second", 3])

    def test_post_bad_input_is_a_usage_error(self):
        """A BODY_JSON or file line that is not JSON, a missing file, or
        nothing to post exits 2 with one line and posts nothing."""
        self.ok("queue", "create", "jobs")
        for argv, stdin in ((("jobs", "{oops"), ""),
                            (("jobs", "--file", "-"), '"ok"\nnot json\n'),
                            (("jobs", "--file", self.mktemp()), ""),
                            (("jobs",), "")):
            status, out, err = self.cli("message", "post", *argv, stdin=stdin)
            self.assertEqual((status, out), (2, ""), argv)
            self.assertOneLineError(err)
        stats = self.successResultOf(self.client.queue("jobs").stats())
        self.assertEqual(stats["messages"]["total"], 0)

    def test_post_to_missing_queue(self):
        """Posting to a missing queue exits 1 with the server's 404."""
        status, out, err = self.cli("message", "post", "nope", "1")
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "nope")

    def test_large_file_progress_on_terminal(self):
        """A file bigger than one request is posted in batches; on a terminal
        stderr shows a progress bar ending at the total."""
        self.ok("queue", "create", "jobs")
        path = self.mktemp()
        with open(path, "w", encoding="utf-8") as f:
            for n in range(300):
                f.write(json.dumps({"n": n, "pad": "p" * 1000}) + "\n")
        recording = Recording(self.server.resource)
        terminal = Terminal()
        status, out, err = self.cli("--json", "message", "post", "jobs", "--file", path,
                                    resource=recording, stderr=terminal)
        self.assertEqual(status, 0)
        self.assertEqual(len(json.loads(out)["ids"]), 300)
        self.assertEqual(recording.methods().count("POST"), 2)
        self.assertIn("0/300", err)
        self.assertTrue(err.rstrip("\n").endswith("300/300"), err[-80:])
        # The same post off a terminal prints nothing on stderr.
        self.assertEqual(self.cli("message", "post", "jobs", "--file", path)[2], "")

    def test_list(self):
        """message list shows messages oldest first (table or JSON) and
        --limit caps them."""
        self.queue_with("jobs", 12)
        listed = self.json("message", "list", "jobs")
        self.assertEqual([m["body"] for m in listed], [{"n": n} for n in range(12)])
        self.assertEqual(sorted(listed[0]),
                         ["age", "body", "claim_id", "href", "id", "ttl"])
        self.assertEqual(len(self.json("message", "list", "jobs", "--limit", "3")), 3)
        out = self.ok("message", "list", "jobs", "--limit", "2")
        self.assertEqual(out.splitlines()[0].split(), ["ID", "AGE", "TTL", "BODY"])
        self.assertEqual(len(out.splitlines()), 3)

    def test_list_flags(self):
        """--include-claimed shows claimed messages; --echo asks echo=true."""
        self.queue_with("jobs", 3)
        self.successResultOf(self.client.queue("jobs").claim(limit=2))
        self.assertEqual(len(self.json("message", "list", "jobs")), 1)
        self.assertEqual(
            len(self.json("message", "list", "jobs", "--include-claimed")), 3)
        recording = Recording(self.server.resource)
        self.ok("message", "list", "jobs", "--echo", resource=recording)
        self.assertIn("echo=true", recording.requests[0]["uri"])
        self.assertEqual(self.ok("message", "list", "empty"), "no messages\n")

    def test_bad_limit_is_a_usage_error(self):
        """--limit 0 or a non-number exits 2."""
        for value in ("0", "many"):
            status, _, err = self.cli("message", "list", "jobs", "--limit", value)
            self.assertEqual(status, 2)
            self.assertOneLineError(err, "--limit")

    def test_get(self):
        """message get shows the messages asked for; an unknown id also
        exits 1 naming it."""
        self.queue_with("jobs", 3)
        ids = [m["id"] for m in self.json("message", "list", "jobs")]
        got = self.json("message", "get", "jobs", ids[2], ids[0])
        self.assertEqual([m["id"] for m in got], [ids[2], ids[0]])
        status, out, err = self.cli("--json", "message", "get", "jobs", ids[1], "424242")
        self.assertEqual(status, 1)
        self.assertEqual([m["id"] for m in json.loads(out)], [ids[1]])
        self.assertOneLineError(err, "424242")

    def test_delete(self):
        """message delete deletes unclaimed messages."""
        self.queue_with("jobs", 3)
        ids = [m["id"] for m in self.json("message", "list", "jobs")]
        self.assertEqual(self.json("message", "delete", "jobs", ids[0], ids[1]),
                         {"queue": "jobs", "deleted": ids[:2]})
        self.assertEqual([m["id"] for m in self.json("message", "list", "jobs")], ids[2:])

    def test_delete_missing_messages(self):
        """message delete with ids that are not there deletes the others,
        counts only those, names the missing ones in one stderr line (as
        message get) and exits 1."""
        self.queue_with("jobs", 2)
        ids = [m["id"] for m in self.json("message", "list", "jobs")]
        status, out, err = self.cli("message", "delete", "jobs", ids[0], "424242", "zz")
        self.assertEqual((status, out), (1, "deleted 1 message(s) from jobs\n"))
        self.assertOneLineError(err, "no such message(s) in jobs: 424242, zz")
        self.assertEqual([m["id"] for m in self.json("message", "list", "jobs")], ids[1:])
        status, out, err = self.cli("--json", "message", "delete", "jobs", ids[0])
        self.assertEqual((status, json.loads(out)), (1, {"queue": "jobs", "deleted": []}))
        self.assertOneLineError(err, ids[0])

    def test_delete_claimed(self):
        """A claimed message is deleted only with --claim; without it the
        command exits 1 with the server's 403 and the message stays."""
        self.queue_with("jobs", 1)
        claim = self.json("claim", "create", "jobs")
        message_id = claim["messages"][0]["id"]
        status, _, err = self.cli("message", "delete", "jobs", message_id)
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "403")
        self.ok("message", "delete", "jobs", message_id, "--claim", claim["id"])
        self.assertEqual(self.cli("message", "get", "jobs", message_id)[0], 1)


class ClaimCommandTests(CLITestCase):
    def test_create_json(self):
        """claim create --json prints the claim with its messages."""
        self.queue_with("jobs", 3)
        claim = self.json("claim", "create", "jobs", "--limit", "2", "--ttl", "120",
                          "--grace", "60")
        self.assertEqual(sorted(claim), ["age", "href", "id", "messages", "ttl"])
        self.assertEqual((claim["ttl"], claim["age"]), (120, 0))
        self.assertEqual(claim["href"], f"/v1/queues/jobs/claims/{claim['id']}")
        self.assertEqual([m["body"] for m in claim["messages"]], [{"n": 0}, {"n": 1}])
        self.assertEqual({m["claim_id"] for m in claim["messages"]}, {claim["id"]})

    def test_create_human_and_empty(self):
        """claim create prints the claim id and a message table; with nothing
        free it says so, exits 0, and JSON has a null id."""
        self.queue_with("jobs", 1)
        out = self.ok("claim", "create", "jobs")
        self.assertTrue(out.startswith("claim "), out)
        self.assertIn("ID", out.splitlines()[1])
        self.assertEqual(self.ok("claim", "create", "jobs"), "no messages to claim\n")
        empty = self.json("claim", "create", "jobs")
        self.assertEqual((empty["id"], empty["messages"]), (None, []))

    def test_get(self):
        """claim get shows a live claim; an unknown one exits 1."""
        self.queue_with("jobs", 1)
        claim = self.json("claim", "create", "jobs")
        self.server.clock.advance(5)
        read = self.json("claim", "get", "jobs", claim["id"])
        self.assertEqual((read["id"], read["age"]), (claim["id"], 5))
        self.assertEqual(read["messages"], [dict(m, age=5) for m in claim["messages"]])
        status, _, err = self.cli("claim", "get", "jobs", "0123456789abcdef01234567")
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "404")

    def test_renew(self):
        """claim renew sets a new ttl (default: the claim's own) from now."""
        self.queue_with("jobs", 1)
        claim = self.json("claim", "create", "jobs", "--ttl", "60")
        self.server.clock.advance(50)
        renewed = self.json("claim", "renew", "jobs", claim["id"], "--ttl", "300",
                            "--grace", "60")
        self.assertEqual((renewed["ttl"], renewed["age"]), (300, 0))
        self.server.clock.advance(250)
        self.assertIn("renewed", self.ok("claim", "renew", "jobs", claim["id"]))
        self.server.clock.advance(299)
        self.assertEqual(self.json("claim", "get", "jobs", claim["id"])["ttl"], 300)

    def test_renew_expired(self):
        """Renewing an expired claim exits 1."""
        self.queue_with("jobs", 1)
        claim = self.json("claim", "create", "jobs", "--ttl", "60")
        self.server.clock.advance(61)
        self.assertEqual(self.cli("claim", "renew", "jobs", claim["id"])[0], 1)

    def test_release(self):
        """claim release frees the messages."""
        self.queue_with("jobs", 2)
        claim = self.json("claim", "create", "jobs")
        self.assertEqual(self.json("claim", "release", "jobs", claim["id"]),
                         {"id": claim["id"], "released": True})
        self.assertEqual(len(self.json("claim", "create", "jobs")["messages"]), 2)

    def test_bad_claim_is_a_server_error(self):
        """A ttl the server refuses exits 1 with its 400 on one line."""
        status, _, err = self.cli("claim", "create", "jobs", "--ttl", "5")
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "400")


class GlobalTests(CLITestCase):
    def test_health(self):
        """health exits 0 when the server is up, 1 when its storage is not."""
        self.assertEqual(self.json("health"), {"healthy": True})
        self.assertEqual(self.ok("health"), "ok\n")
        self.successResultOf(self.server.driver.close())
        status, out, _ = self.cli("health")
        self.assertEqual((status, out), (1, "storage unavailable\n"))

    def test_options_after_the_command(self):
        """--json, --project and --url may follow the command."""
        self.ok("--project", "p1", "queue", "create", "jobs")
        self.assertEqual(self.json("queue", "list"), [])
        self.assertEqual(
            [q["name"] for q in json.loads(self.ok("queue", "list", "--json",
                                                   "--project", "p1"))], ["jobs"])

    def test_environment(self):
        """MARCONI_URL and MARCONI_PROJECT give the defaults of --url and
        --project; the options win over them."""
        root = Resource()
        root.putChild(b"mq", self.server.resource)
        environ = {"MARCONI_URL": "http://h/mq", "MARCONI_PROJECT": "p1"}
        self.ok("queue", "create", "jobs", environ=environ, resource=root)
        client = self.server.client(project="p1")
        self.assertEqual([q.name for q in self.successResultOf(client.queues().collect())],
                         ["jobs"])
        status, _, err = self.cli("queue", "create", "x", environ={}, resource=root)
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "404")
        self.ok("--project", "p2", "queue", "create", "other", environ=environ,
                resource=root)
        self.assertEqual(self.successResultOf(
            self.server.client(project="p2").queues().collect())[0].name, "other")

    def test_usage_errors(self):
        """A missing or unknown command, a missing argument, a bad option or
        a --url that is not http(s) exits 2 with one line on stderr and nothing on stdout."""
        for argv in ((), ("nope",), ("queue",), ("queue", "create"),
                     ("claim", "create", "jobs", "--ttl", "x"),
                     ("queue", "create", "jobs", "--metadata", "[1]"),
                     ("--bogus", "health"), ("--url", "localhost:8888", "health")):
            status, out, err = self.cli(*argv)
            self.assertEqual((status, out), (2, ""), argv)
            self.assertOneLineError(err)

    def test_help(self):
        """--help prints the usage on stdout and exits 0."""
        status, out, err = self.cli("--help")
        self.assertEqual((status, err), (0, ""))
        self.assertIn("usage: marconi-cli", out)
        self.assertIn("claim create", self.cli("claim", "create", "--help")[1])

    def test_connection_refused(self):
        """A refused connection is retried, then exits 1 with one line."""
        refusing = RefusingTreq(StubTreq(self.server.resource), refusals=100)
        out, err = io.StringIO(), io.StringIO()
        deferred = main(["queue", "list"], treq=refusing, reactor=self.server.clock,
                        stdout=out, stderr=err, environ={})
        self.server.clock.pump([1] * 20)
        self.assertEqual(self.successResultOf(deferred), 1)
        self.assertGreater(refusing.attempts, 1)
        self.assertOneLineError(err.getvalue(), "refused")

    def test_unexpected_answer(self):
        """An answer that is not the API's exits 1 with one line."""
        status, _, err = self.cli("queue", "list",
                                  resource=Fixed(200, b"<html>", b"text/html"))
        self.assertEqual(status, 1)
        self.assertOneLineError(err)


class V2CommandTests(CLITestCase):
    """The commands over API v2, which the CLI picks when the server offers
    it (these tests leave $MARCONI_API unset)."""

    api = "v2"

    def setUp(self):
        self.server = Server(self, self.api, overrides=[
            ("signed_url", "secret_key", "not-a-real-secret")])
        self.client = self.server.client()

    def discover(self, *argv, **kwargs):
        """ok() without $MARCONI_API: the CLI discovers the version."""
        return self.ok(*argv, environ={"MARCONI_API": ""}, **kwargs)

    def test_discovers_v2_in_the_default_project(self):
        """Without --api the CLI speaks v2 (GET / first) and, without a
        project, uses the documented default project."""
        recording = Recording(self.server.resource)
        self.discover("queue", "create", "jobs", resource=recording)
        self.assertEqual([r["uri"] for r in recording.requests], ["/", "/v2/queues/jobs"])
        self.assertEqual(recording.requests[1]["headers"]["x-project-id"], ["default"])
        listed = self.successResultOf(self.server.client(project="default").queues().collect())
        self.assertEqual([q.name for q in listed], ["jobs"])

    def test_post_delay_and_pop(self):
        """message post --delay hides the messages (on a queue with a default
        delay) until it passes; message pop removes and prints the oldest."""
        self.ok("queue", "create", "jobs", "--metadata", '{"_default_message_delay": 1}')
        self.ok("message", "post", "jobs", '"now"')
        self.ok("message", "post", "jobs", '"later"', "--delay", "60", "--file", "-",
                stdin='{"ttl": 300, "body": "file", "delay": 0}\n')
        self.server.clock.advance(1)  # "now" has the queue's default delay
        self.assertEqual([m["body"] for m in self.json("message", "list", "jobs")],
                         ["now", "file"])
        popped = self.json("message", "pop", "jobs", "--count", "5")
        self.assertEqual([m["body"] for m in popped], ["now", "later", "file"])
        self.assertEqual({(m["href"], m["claim_count"]) for m in popped}, {(None, 0)})
        self.assertEqual(self.ok("message", "pop", "jobs"), "no messages\n")

    def test_ttl_left_to_the_queue(self):
        """Without --ttl a v2 post sends no ttl: the queue's default applies."""
        self.ok("queue", "create", "jobs", "--metadata", '{"_default_message_ttl": 77}')
        self.ok("message", "post", "jobs", "1")
        self.assertEqual([m["ttl"] for m in self.json("message", "list", "jobs")], [77])

    def test_purge(self):
        """queue purge deletes the unclaimed messages; --only narrows it."""
        self.queue_with("jobs", 3)
        self.successResultOf(self.client.queue("jobs").claim(limit=1))
        self.assertEqual(self.json("queue", "purge", "jobs", "--only", "messages"),
                         {"name": "jobs", "purged": ["messages"]})
        stats = self.json("queue", "stats", "jobs")["messages"]
        self.assertEqual((stats["total"], stats["claimed"]), (1, 1))

    def test_metadata_patch(self):
        """queue metadata --patch applies JSON-patch operations and prints the
        result; a conflicting patch exits 1 with one line."""
        self.ok("queue", "create", "jobs", "--metadata", '{"a": 1}')
        patched = self.json("queue", "metadata", "jobs", "--patch",
                            '[{"op": "add", "path": "/metadata/b", "value": 2},'
                            ' {"op": "remove", "path": "/metadata/a"}]')
        self.assertEqual((patched.get("a"), patched["b"]), (None, 2))
        status, _, err = self.cli("queue", "metadata", "jobs", "--patch",
                                  '[{"op": "remove", "path": "/metadata/a"}]')
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "409")
        status, _, err = self.cli("queue", "metadata", "jobs", "--patch", '{"op": "add"}')
        self.assertEqual(status, 2)

    def test_share_and_use_the_share_file(self):
        """queue share prints a share document; --share-file makes the CLI
        send the requests it allows (listing), and only those."""
        self.queue_with("jobs", 2)
        document = self.json("queue", "share", "jobs", "--method", "get")
        self.assertEqual((document["paths"], document["methods"]),
                         (["/v2/queues/jobs/messages"], ["GET"]))
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump(document, f)
        listed = self.json("--share-file", path, "message", "list", "jobs")
        self.assertEqual([m["body"]["n"] for m in listed], [0, 1])
        status, _, err = self.cli("--share-file", path, "message", "post", "jobs", "1")
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "404")
        status, _, err = self.cli("--share-file", path + ".missing", "queue", "list")
        self.assertEqual(status, 2)
        self.assertOneLineError(err, "cannot read")

    def test_api_v1_keeps_working(self):
        """--api v1 speaks v1 to a v2 server (its paths, no pop); a bad
        $MARCONI_API is a usage error."""
        recording = Recording(self.server.resource)
        self.ok("--api", "v1", "queue", "create", "jobs", resource=recording)
        self.assertEqual([r["uri"] for r in recording.requests], ["/v1/queues/jobs"])
        status, _, err = self.cli("--api", "v1", "message", "pop", "jobs")
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "needs API v2")
        status, _, err = self.cli("queue", "list", environ={"MARCONI_API": "v9"})
        self.assertEqual(status, 2)
        self.assertOneLineError(err, "MARCONI_API")


class ClaimWaitCommandTests(CLITestCase):
    def test_claim_create_waits_for_a_message(self):
        """claim create --wait N on an empty queue waits: it prints the
        message posted meanwhile; without one it says there was nothing
        once the wait runs out."""
        self.queue_with("jobs", 0)
        treq = StubTreq(self.server.resource)
        out = io.StringIO()
        deferred = main(["--json", "claim", "create", "jobs", "--wait", "5"], treq=treq,
                        reactor=self.server.clock, stdin=io.StringIO(), stdout=out,
                        stderr=io.StringIO(), environ={"MARCONI_API": self.api})
        self.assertNoResult(deferred)
        self.successResultOf(self.client.queue("jobs").post_messages(
            [{"ttl": 300, "body": "late"}]))
        treq.flush()
        self.assertEqual(self.successResultOf(deferred), 0)
        self.assertEqual([m["body"] for m in json.loads(out.getvalue())["messages"]], ["late"])
        deferred = main(["claim", "create", "jobs", "--wait", "5"], treq=treq,
                        reactor=self.server.clock, stdin=io.StringIO(), stdout=out,
                        stderr=io.StringIO(), environ={"MARCONI_API": self.api})
        self.server.clock.advance(5)
        treq.flush()
        self.assertEqual(self.successResultOf(deferred), 0)
        self.assertTrue(out.getvalue().endswith("no messages to claim\n"))

    def test_claim_create_wait_above_maximum_fails(self):
        """--wait above the server's max_claim_wait exits 1 with the
        server's one-line reason."""
        self.queue_with("jobs", 0)
        status, _, err = self.cli("claim", "create", "jobs", "--wait", "21")
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "wait")


class SubscriptionCommandTests(CLITestCase):
    """The subscription commands (v2)."""

    api = "v2"

    def test_create_list_update_confirm_delete(self):
        """subscription create prints the stored subscription; list shows
        each (a table, or JSON); update changes ttl and options; confirm and
        confirm --no set its state; delete removes it; get of an unknown id
        exits 1 with one line."""
        made = self.json("subscription", "create", "jobs", "http://h.example/hook",
                         "--ttl", "600", "--options", '{"post_data": "$zaqar_message$"}')
        self.assertEqual((made["queue"], made["subscriber"], made["ttl"], made["options"],
                          made["confirmed"]),
                         ("jobs", "http://h.example/hook", 600,
                          {"post_data": "$zaqar_message$"}, False))
        self.ok("subscription", "create", "jobs", "https://other.example/")
        listed = self.json("subscription", "list", "jobs")
        self.assertEqual([s["subscriber"] for s in listed],
                         ["http://h.example/hook", "https://other.example/"])
        self.assertIn("http://h.example/hook", self.ok("subscription", "list", "jobs"))

        updated = self.json("subscription", "update", "jobs", made["id"], "--ttl", "900",
                            "--options", "{}")
        self.assertEqual((updated["ttl"], updated["options"]), (900, {}))
        self.ok("subscription", "confirm", "jobs", made["id"])
        self.assertTrue(self.json("subscription", "get", "jobs", made["id"])["confirmed"])
        self.ok("subscription", "confirm", "jobs", made["id"], "--no")
        self.assertFalse(self.json("subscription", "get", "jobs", made["id"])["confirmed"])

        self.ok("subscription", "delete", "jobs", made["id"])
        status, _, err = self.cli("subscription", "get", "jobs", made["id"])
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "404", made["id"])
        self.assertEqual(len(self.json("subscription", "list", "jobs")), 1)

    def test_usage_errors(self):
        """update without a change, a bad --options or a mailto: subscriber
        are refused with one line (2 for usage, 1 for the server's 400)."""
        status, _, err = self.cli("subscription", "update", "jobs", "abc")
        self.assertEqual(status, 2)
        self.assertOneLineError(err, "--ttl")
        status, _, err = self.cli("subscription", "create", "jobs", "http://h/",
                                  "--options", "[1]")
        self.assertEqual(status, 2)
        status, _, err = self.cli("subscription", "create", "jobs", "mailto:a@b.example")
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "400")
