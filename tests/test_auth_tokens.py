"""The token strategy's file, its helper command, the strategy settings and
the warning about endpoints served without authentication."""

import io
import os

from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial import unittest

from marconi_tx import config, endpoints, lifecycle
from marconi_tx.auth import strategies, tokens
from marconi_tx.auth.identity import Identity
from tests.test_auth_http import write_token_file

DIGEST = tokens.token_hash("secret")


def load(*overrides):
    return config.load(overrides=list(overrides))


class TokenFileTests(unittest.SynchronousTestCase):
    def test_parse(self):
        """Lines give a project and lower-cased roles (none if absent);
        comments and blank lines are skipped; the key is the raw digest."""
        parsed = tokens.parse(f"# c\n\nsha256:{DIGEST} p1 Admin,reader\n"
                              f"SHA256:{tokens.token_hash('b').upper()} p2\n")
        self.assertEqual(parsed[bytes.fromhex(DIGEST)],
                         Identity("p1", frozenset({"admin", "reader"})))
        self.assertEqual(parsed[bytes.fromhex(tokens.token_hash("b"))],
                         Identity("p2", frozenset()))
        self.assertTrue(parsed[bytes.fromhex(DIGEST)].is_admin)

    def test_errors_name_the_line_only(self):
        """A line without the prefix, a short digest, too many fields or a
        repeated token is an error naming the line, never its text."""
        for text in (f"{DIGEST} p", "sha256:abc p", f"sha256:{DIGEST} p r x",
                     f"sha256:{DIGEST}", f"sha256:{DIGEST} p\nsha256:{DIGEST} q"):
            lines = text.count("\n") + 1
            with self.assertRaises(tokens.TokenFileError) as caught:
                tokens.parse("# first\n" + text, "F")
            self.assertIn(f"F, line {lines + 1}:", str(caught.exception))
            self.assertNotIn(DIGEST, str(caught.exception))

    def test_authenticate(self):
        """authenticate answers at once: the Identity of a listed token,
        None for any other (also one with a lone surrogate)."""
        strategy = tokens.TokenStrategy(write_token_file(self.mktemp()))
        self.assertEqual(strategy.authenticate("alpha-token"), Identity("alpha", frozenset()))
        self.assertIsNone(strategy.authenticate("alpha-token "))
        self.assertIsNone(strategy.authenticate("\udc80"))

    def test_reload_keeps_tokens_on_error(self):
        """A reload of a broken or missing file keeps the tokens and logs an
        error; a good file replaces them."""
        path = write_token_file(self.mktemp())
        strategy = tokens.TokenStrategy(path)
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        with open(path, "a") as f:
            f.write("oops\n")
        strategy.reload()
        os.remove(path)
        strategy.reload()
        self.assertEqual(strategy.authenticate("alpha-token").project, "alpha")
        errors = [e for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual(len(errors), 2)
        write_token_file(path, {"other": ("zeta", "")})
        strategy.reload()
        self.assertIsNone(strategy.authenticate("alpha-token"))
        self.assertEqual(strategy.authenticate("other").project, "zeta")

    def test_sighup_reloads(self):
        """The SIGHUP service (``lifecycle.Reopen``) calls the strategy's
        reload after reopening the logs."""
        path = write_token_file(self.mktemp())
        strategy = tokens.TokenStrategy(path)
        write_token_file(path, {"other": ("zeta", "")})
        lifecycle.Reopen([], None, [strategy.reload]).reopen()
        self.assertEqual(strategy.authenticate("other").project, "zeta")

    def test_command_new_and_hash(self):
        """``new`` prints a fresh token and a file line that authenticates
        it; ``hash`` prints the line of a token read from standard input;
        bad arguments are status 2."""
        out = io.StringIO()
        self.assertEqual(tokens.main(["new", "proj", "admin"], out), 0)
        token, line = out.getvalue().splitlines()
        self.assertGreaterEqual(len(token), 43)
        identity = tokens.parse(line)[bytes.fromhex(tokens.token_hash(token))]
        self.assertEqual(identity, Identity("proj", frozenset({"admin"})))
        out = io.StringIO()
        self.assertEqual(tokens.main(["hash", "p"], out, io.StringIO("secret\n")), 0)
        self.assertEqual(out.getvalue(), f"sha256:{DIGEST} p\n")
        self.patch(tokens.sys, "stderr", io.StringIO())
        self.assertEqual(tokens.main(["hash", "a b"], out), 2)
        self.assertEqual(tokens.main(["make", "p"], out), 2)


class StrategySettingsTests(unittest.SynchronousTestCase):
    def test_strategies(self):
        """noauth is no strategy; token needs a readable token_file (a
        ConfigError otherwise); an unknown name is refused by the loader."""
        self.assertIsNone(strategies.strategy_from_config(load(), None))
        with self.assertRaises(config.ConfigError):
            strategies.strategy_from_config(load(("auth", "strategy", "token")), None)
        with self.assertRaises(config.ConfigError):
            strategies.strategy_from_config(load(("auth", "strategy", "token"),
                                                 ("auth", "token_file", self.mktemp())), None)
        with self.assertRaises(config.ConfigError):
            load(("auth", "strategy", "ldap"))
        with self.assertRaises(config.ConfigError):
            strategies.check(load(("drivers:transport:line", "require_auth", "true")))

    def test_local_endpoints(self):
        """Unix sockets and loopback interfaces are local; no interface,
        a public one or a systemd socket is not."""
        for description, local in (("unix:/tmp/s", True), ("tcp:80:interface=127.0.0.1", True),
                                   ("tcp6:80:interface=\\:\\:1", True),
                                   ("tcp:80:interface=localhost", True),
                                   ("ssl:80:interface=127.0.0.2:privateKey=k", True),
                                   ("tcp:80", False), ("tcp:80:interface=0.0.0.0", False),
                                   ("tcp:80:interface=10.0.0.1", False),
                                   ("systemd:domain=INET:index=0", False)):
            self.assertEqual(endpoints.is_local(description), local, description)

    def test_warning(self):
        """Only endpoints served without credentials on a public address
        are named, in one warning: HTTP with noauth, the line endpoints
        without require_auth."""
        public = ("drivers", "http", "tcp:8888")
        line = ("drivers", "line", "tcp:11300")
        token = [("auth", "strategy", "token"), ("auth", "token_file", "x")]
        self.assertEqual(strategies.unauthenticated_endpoints(load()), [])
        self.assertEqual(strategies.unauthenticated_endpoints(load(public, line)),
                         ["tcp:8888", "tcp:11300"])
        self.assertEqual(strategies.unauthenticated_endpoints(load(public, line, *token)),
                         ["tcp:11300"])
        self.assertEqual(strategies.unauthenticated_endpoints(load(
            public, line, *token, ("drivers:transport:line", "require_auth", "true"))), [])
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        from twisted.logger import Logger

        strategies.warn_unauthenticated(Logger(), load(public))
        strategies.warn_unauthenticated(Logger(), load())
        self.assertEqual([e["endpoints"] for e in events
                          if e["log_level"] == LogLevel.warn], ["tcp:8888"])

    def test_daemon_warns_at_start(self):
        """makeService logs the warning for a noauth HTTP endpoint on every
        interface, and none on loopback."""
        from marconi_tx import tap

        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        for http in ("tcp:0", "tcp:0:interface=127.0.0.1"):
            options = tap.Options()
            options.parseOptions(["--http", http, "--storage", "sqlite::memory:"])
            tap.makeService(options)
        self.assertEqual([e["endpoints"] for e in events if "endpoints" in e], ["tcp:0"])
