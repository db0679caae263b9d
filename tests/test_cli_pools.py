"""``marconi-cli pool`` and ``flavor``, in-process against the real server
resource over a ``PooledDriver`` (see ``tests.test_client_pools``)."""

import io
import json

from treq.testing import StubTreq
from twisted.trial.unittest import SynchronousTestCase

from marconi_tx.client.cli import main
from tests.test_client_pools import PooledServerMixin


class CLITests(PooledServerMixin, SynchronousTestCase):
    def cli(self, *argv):
        """Run marconi-cli over v2; (exit status, stdout, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        status = self.successResultOf(main(
            list(argv), treq=StubTreq(self.server.resource), reactor=self.clock,
            stdin=io.StringIO(), stdout=out, stderr=err, environ={"MARCONI_API": "v2"}))
        return status, out.getvalue(), err.getvalue()

    def ok(self, *argv):
        status, out, err = self.cli(*argv)
        self.assertEqual((status, err), (0, ""), (argv, out))
        return out

    def json(self, *argv):
        return json.loads(self.ok("--json", *argv))

    def test_pool_commands(self):
        """pool create, list, get, update and delete, as tables and JSON;
        delete of a missing pool exits 1; a server refusal is one line on
        stderr, exit 1."""
        out = self.ok("pool", "create", "a", "--uri", self.uri("a"), "--weight", "5",
                      "--options", '{"tier": "ssd"}')
        self.assertEqual(out.splitlines()[0].split(),
                         ["NAME", "URI", "WEIGHT", "FLAVOR", "OPTIONS"])
        self.assertIn('{"tier":"ssd"}', out)
        self.ok("pool", "create", "b", "--uri", self.uri("b"), "--weight", "0")
        self.assertEqual([p["name"] for p in self.json("pool", "list")], ["a", "b"])
        self.assertEqual(self.json("pool", "list", "--detailed")[0]["options"], {"tier": "ssd"})
        self.assertEqual(self.json("pool", "get", "a")["weight"], 5)
        changed = self.json("pool", "update", "a", "--weight", "7", "--flavor", "gold")
        self.assertEqual((changed["weight"], changed["flavor"]), (7, "gold"))
        self.assertIsNone(self.json("pool", "update", "a", "--no-flavor")["flavor"])
        status, _, err = self.cli("pool", "update", "a")
        self.assertEqual(status, 2)
        self.assertIn("--weight", err)
        self.assertEqual(self.json("pool", "delete", "b"), {"name": "b", "deleted": True})
        self.assertEqual(self.cli("pool", "delete", "b"), (1, "pool b did not exist\n", ""))
        status, out, err = self.cli("pool", "create", "a", "--uri", self.uri("a"),
                                    "--weight", "1")
        self.assertEqual((status, out, err.count("\n")), (1, "", 1))
        self.assertIn("409", err)
        self.assertEqual(self.ok("pool", "list", "--detailed").count("\n"), 2)

    def test_flavor_commands(self):
        """flavor create, list, get, update and delete; delete of a missing
        flavor exits 1."""
        for name in ("a", "b"):
            self.ok("pool", "create", name, "--uri", self.uri(name), "--weight", "1")
        self.assertEqual(self.ok("flavor", "list"), "no flavors\n")
        out = self.ok("flavor", "create", "gold", "--pool", "a", "--pool", "b")
        self.assertEqual(out.splitlines()[1].split(), ["gold", "a,b", "FIFO,CLAIMS,DURABILITY,AOD"])
        self.assertEqual(self.json("flavor", "get", "gold")["pool_list"], ["a", "b"])
        self.assertEqual(self.json("flavor", "update", "gold", "--pool", "b",
                                   "--capabilities", '{"FAST": true}'),
                         {"name": "gold", "pool_list": ["b"],
                          "capabilities": ["FIFO", "CLAIMS", "DURABILITY", "AOD", "FAST"]})
        self.assertEqual([f["name"] for f in self.json("flavor", "list")], ["gold"])
        self.assertEqual(self.json("pool", "get", "a")["flavor"], None)
        status, _, err = self.cli("flavor", "create", "silver")
        self.assertEqual(status, 2)
        self.assertIn("--pool", err)
        self.assertEqual(self.json("flavor", "delete", "gold"), {"name": "gold", "deleted": True})
        self.assertEqual(self.cli("flavor", "delete", "gold"),
                         (1, "flavor gold did not exist\n", ""))

