"""``marconi-cli`` as a subprocess against the real ``twistd -n marconi``."""

import json
import os
import signal
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.daemon import ROOT, Daemon

CONSOLE_SCRIPT = os.path.join(os.path.dirname(sys.executable), "marconi-cli")


class CommandLineEndToEndTests(SynchronousTestCase):
    def setUp(self):
        self.workdir = os.path.abspath(self.mktemp())
        database = os.path.join(self.workdir, "queues.db")
        self.daemon = Daemon(self.workdir, "--storage", f"sqlite:{database}").start()
        self.addCleanup(self.daemon.stop, signal.SIGKILL)

    def cli(self, *argv, stdin=None, program=(sys.executable, "-m", "marconi_tx.client.cli")):
        """Run the command; (exit status, stdout, stderr)."""
        env = dict(os.environ, PYTHONPATH=ROOT, MARCONI_URL=self.daemon.url)
        env.pop("MARCONI_PROJECT", None)
        env.pop("MARCONI_API", None)
        done = subprocess.run([*program, *argv], input=stdin, capture_output=True,
                              text=True, env=env, cwd=self.workdir, timeout=60)
        return done.returncode, done.stdout, done.stderr

    def ok(self, *argv, **kwargs):
        status, out, err = self.cli(*argv, **kwargs)
        self.assertEqual((status, err), (0, ""), (argv, out))
        return out

    def test_v2_and_v1_side_by_side(self):
        """Over real HTTP the CLI discovers v2: a delayed post and pop work in
        the default project, purge empties a queue; --api v1 still works and
        sees what v2 posted in the same project."""
        self.ok("--project", "p1", "queue", "create", "jobs", "--metadata",
                '{"_default_message_delay": 1}')
        self.ok("--project", "p1", "message", "post", "jobs", '"a"', '"b"', "--delay", "0")
        self.ok("--project", "p1", "message", "post", "jobs", '"later"', "--delay", "600")
        listed = json.loads(self.ok("--api", "v1", "--project", "p1", "message", "list",
                                    "jobs", "--json"))
        self.assertEqual([m["body"] for m in listed], ["a", "b"])
        popped = json.loads(self.ok("--project", "p1", "message", "pop", "jobs", "--json"))
        self.assertEqual([m["body"] for m in popped], ["a"])
        self.ok("--project", "p1", "queue", "purge", "jobs")
        stats = json.loads(self.ok("--json", "--project", "p1", "queue", "stats", "jobs"))
        self.assertEqual(stats["messages"]["total"], 0)
        self.ok("message", "post", "other", "1")  # v2's default project
        self.assertEqual(self.ok("--api", "v1", "queue", "list"), "no queues\n")

    def test_queue_post_claim_delete(self):
        """Over real HTTP (v2, discovered): create a queue, post (arguments and stdin), claim,
        delete a claimed message with its claim, read the stats, delete the
        queue; after the daemon stops the CLI exits 1 with one line."""
        self.assertIn("created queue jobs",
                      self.ok("queue", "create", "jobs", program=(CONSOLE_SCRIPT,)))
        posted = json.loads(self.ok("--json", "message", "post", "jobs", '{"n": 1}',
                                    '{"n": 2}', "--ttl", "300"))
        self.assertEqual(len(posted["ids"]), 2)
        self.ok("message", "post", "jobs", "--file", "-",
                stdin='{"n": 3}\n{"ttl": 120, "body": {"n": 4}}\n')

        claim = json.loads(self.ok("claim", "create", "jobs", "--limit", "1", "--json"))
        [message] = claim["messages"]
        self.assertEqual((message["id"], message["body"]), (posted["ids"][0], {"n": 1}))
        status, _, err = self.cli("message", "delete", "jobs", message["id"])
        self.assertEqual(status, 1)
        self.assertEqual(err.count("\n"), 1, err)
        self.ok("message", "delete", "jobs", message["id"], "--claim", claim["id"])

        stats = json.loads(self.ok("--json", "queue", "stats", "jobs"))["messages"]
        self.assertEqual((stats["total"], stats["claimed"]), (3, 0))
        listed = json.loads(self.ok("message", "list", "jobs", "--json"))
        self.assertEqual([m["body"]["n"] for m in listed], [2, 3, 4])

        self.ok("queue", "delete", "jobs")
        self.assertEqual(self.cli("queue", "exists", "jobs")[0], 1)

        self.assertEqual(self.daemon.stop(signal.SIGTERM), 0)  # drained, clean
        status, out, err = self.cli("health")
        self.assertEqual((status, out), (1, ""))
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn("refused", err)
        self.assertNotIn("Traceback", err)
