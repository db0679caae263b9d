"""The client library's ``token=`` and ``marconi-cli --token`` /
``$MARCONI_TOKEN`` against the real app with the token strategy."""

import io

from treq.testing import StubTreq
from twisted.trial.unittest import SynchronousTestCase

from marconi_tx.client import errors
from marconi_tx.client.cli import main
from marconi_tx.testing.server import StubServer
from tests.test_auth_http import token_settings, write_token_file


class ClientTokenTests(SynchronousTestCase):
    def setUp(self):
        self.server = StubServer(settings=token_settings(write_token_file(self.mktemp())))

    def test_token_sent_and_project_from_it(self):
        """With token= every request carries X-Auth-Token and, without a
        project, no X-Project-ID: the token's project is used (v1 and v2);
        another token's project never sees its queues."""
        for api in ("v1", "v2"):
            alpha = self.server.client(token="alpha-token", api=api)
            queue = self.successResultOf(alpha.create_queue(f"jobs-{api}"))
            self.successResultOf(queue.post_messages([{"ttl": 300, "body": api}]))
        alpha = self.server.client(token="alpha-token")
        names = [q.name for q in self.successResultOf(alpha.queues().collect())]
        self.assertEqual(names, ["jobs-v1", "jobs-v2"])
        beta = self.server.client(token="beta-token")
        self.assertEqual(self.successResultOf(beta.queues().collect()), [])

    def test_without_or_wrong_token(self):
        """No token, or a wrong one, raises Unauthorized; naming another
        project raises Forbidden."""
        for client in (self.server.client(api="v2"),
                       self.server.client(token="nope", api="v2")):
            self.failureResultOf(client.create_queue("q"), errors.Unauthorized)
        other = self.server.client(token="alpha-token", project="beta", api="v2")
        self.failureResultOf(other.create_queue("q"), errors.Forbidden)

    def cli(self, *argv, environ=None):
        out, err = io.StringIO(), io.StringIO()
        status = self.successResultOf(main(
            list(argv), treq=StubTreq(self.server.resource), reactor=self.server.clock,
            stdin=io.StringIO(""), stdout=out, stderr=err, environ=environ or {}))
        return status, out.getvalue(), err.getvalue()

    def test_cli_token(self):
        """marconi-cli sends --token, or $MARCONI_TOKEN; without either the
        server's 401 is a one-line error and a failure status."""
        self.assertEqual(self.cli("--token", "alpha-token", "queue", "create", "a")[0], 0)
        status, out, _ = self.cli("queue", "list", environ={"MARCONI_TOKEN": "alpha-token"})
        self.assertEqual(status, 0)
        self.assertIn("a", out.split())
        status, _, err = self.cli("queue", "list")
        self.assertNotEqual(status, 0)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertNotIn("Traceback", err)
