"""Settings: the sample file, precedence, and refusal of bad values."""

import os
import subprocess

from twisted.trial import unittest

from marconi_tx import config
from tests.daemon import twistd_command

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ConfigTests(unittest.SynchronousTestCase):
    def write(self, text):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_sample_documents_every_option(self):
        """etc/marconi.conf is exactly the generated sample: every option with
        its default and help, so it cannot drift from the code."""
        with open(os.path.join(ROOT, "etc", "marconi.conf")) as f:
            self.assertEqual(f.read(), config.sample())
        loaded = config.load(os.path.join(ROOT, "etc", "marconi.conf"))
        self.assertEqual(loaded, config.load())

    def test_defaults_are_the_specs(self):
        """Without a file the limits are api-v1.md's defaults."""
        t = config.load().transport
        self.assertEqual((t.max_messages_per_page, t.max_message_size, t.max_message_ttl,
                          t.max_claim_ttl, t.max_queue_metadata, t.min_message_ttl),
                         (20, 262144, 1209600, 43200, 65536, 60))

    def test_v2_defaults_are_the_specs(self):
        """The v1.1/v2 settings default to api-v1.1.md §2 and api-v2.md §1.4:
        ttl 3600, claim ttl 300 and grace 60, delay up to 900, admin mode,
        checksums and signed URLs off."""
        loaded = config.load()
        t = loaded.transport
        self.assertEqual((t.default_message_ttl, t.default_claim_ttl, t.default_claim_grace,
                          t.max_message_delay), (3600, 300, 60, 900))
        self.assertEqual((loaded.drivers.admin_mode, loaded.drivers.enable_checksum,
                          loaded.signed_url.secret_key), (False, False, ""))
        path = self.write("[signed_url]\nsecret_key = s3cret\n[drivers]\nadmin_mode = on\n")
        loaded = config.load(path)
        self.assertEqual((loaded.signed_url.secret_key, loaded.drivers.admin_mode),
                         ("s3cret", True))

    def test_defaults_within_their_bounds(self):
        """A default ttl or grace outside its own minimum..maximum is refused,
        naming it."""
        for text, named in (
                ("default_message_ttl = 59\n", "default_message_ttl"),
                ("max_message_ttl = 1000\n", "default_message_ttl"),
                ("default_claim_ttl = 43201\n", "default_claim_ttl"),
                ("min_claim_grace = 61\n", "default_claim_grace")):
            error = self.assertRaises(config.ConfigError, config.load,
                                      self.write("[limits:transport]\n" + text))
            self.assertIn(named, str(error))

    def test_file_then_overrides(self):
        """File values replace defaults; command-line overrides replace both."""
        path = self.write("[drivers]\nhttp = tcp:9000\ngc_interval = 5\n"
                          "[limits:transport]\nmax_messages_per_page = 50\n")
        loaded = config.load(path, [("drivers", "http", "tcp:9001")])
        self.assertEqual(loaded.drivers.http, "tcp:9001")
        self.assertEqual(loaded.drivers.gc_interval, 5.0)
        self.assertEqual(loaded.transport.max_messages_per_page, 50)

    def test_bad_values_name_the_option(self):
        """Wrong types, out-of-range values, unknown choices or options and
        inconsistent minima are ConfigErrors naming the option."""
        cases = [
            ("[drivers]\ngc_interval = soon\n", "gc_interval"),
            ("[limits:transport]\nmax_messages_per_page = 0\n", "max_messages_per_page"),
            ("[drivers:storage:sqlite]\nsynchronous = OFF\n", "synchronous"),
            ("[drivers]\nnope = 1\n", "nope"),
            ("[limits:transport]\nmin_claim_ttl = 100\nmax_claim_ttl = 90\n", "min_claim_ttl"),
            ("not an ini file\n", "not a valid INI file"),
        ]
        for text, named in cases:
            error = self.assertRaises(config.ConfigError, config.load, self.write(text))
            self.assertIn(named, str(error))
        error = self.assertRaises(config.ConfigError, config.load, "/nonexistent/marconi.conf")
        self.assertIn("cannot read", str(error))


class CommandLineTests(unittest.TestCase):
    def run_twistd(self, *args):
        env = dict(os.environ, PYTHONPATH=ROOT)
        return subprocess.run(twistd_command(*args), capture_output=True, text=True,
                              env=env, timeout=60)

    def test_bad_option_values_exit_with_one_line(self):
        """A bad flag value or config file ends twistd with status 1 and a single
        line naming the problem, never a traceback."""
        bad_conf = self.mktemp()
        with open(bad_conf, "w") as f:
            f.write("[limits:transport]\nmax_claim_ttl = lots\n")
        cases = [(["--gc-interval", "abc"], "gc_interval"),
                 (["--storage", "redis://x"], "unknown storage URI"),
                 (["--http", "tcp:notaport"], "http endpoint"),
                 (["--config", bad_conf], "max_claim_ttl"),
                 (["--storage", "sqlite:/proc/forbidden/x.db"], "cannot create")]
        for args, named in cases:
            result = self.run_twistd(*args)
            self.assertEqual(result.returncode, 1, (args, result.stderr))
            lines = result.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, (args, result.stderr))
            self.assertIn(named, lines[0])
            self.assertNotIn("Traceback", result.stderr + result.stdout)
