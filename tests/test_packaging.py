"""Packaging: what a wheel is built from, and the versions the commands print.

The wheel itself, installed into a fresh venv and serving, is checked by
``make wheel-check`` (.ci/wheel-smoke), which CI runs after these tests.
"""

import io
import os
import re
import subprocess
import sys

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from marconi_tx import __version__
from marconi_tx.client.cli import main as cli_main
from tests.daemon import ROOT

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


class PackagesTests(SynchronousTestCase):
    """Every module is in a package setup.py's find_packages finds."""

    def test_every_folder_with_modules_is_a_package(self):
        """A folder of marconi_tx holding .py files has an __init__.py: without
        one find_packages skips it and a wheel lacks its modules (the sqlite
        driver and the HTTP transport were once missing)."""
        missing = []
        for folder, _, files in os.walk(os.path.join(ROOT, "marconi_tx")):
            if any(f.endswith(".py") for f in files) and "__init__.py" not in files:
                missing.append(os.path.relpath(folder, ROOT))
        self.assertEqual(missing, [])

    def test_setup_reads_the_version(self):
        """setup.py's version is marconi_tx.__version__ (read from the file,
        since a PEP 517 build cannot import the project)."""
        result = subprocess.run([sys.executable, "setup.py", "--version"], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.split()[-1], __version__)


class VersionTests(SynchronousTestCase):
    """``--version`` of the two commands prints marconi_tx's version."""

    def test_twistd_marconi_version(self):
        """``twistd marconi --version`` prints ``marconi_tx X.Y.Z`` and exits 0
        (twistd's own --version prints Twisted's)."""
        result = subprocess.run([TWISTD, "marconi", "--version"], cwd=ROOT,
                                capture_output=True, text=True, timeout=60,
                                env=dict(os.environ, PYTHONPATH=ROOT))
        self.assertEqual((result.returncode, result.stdout, result.stderr),
                         (0, f"marconi_tx {__version__}\n", ""))

    def test_cli_version(self):
        """``marconi-cli --version`` prints ``marconi-cli X.Y.Z`` and exits 0."""
        out, err = io.StringIO(), io.StringIO()
        status = self.successResultOf(cli_main(["--version"], reactor=Clock(), stdout=out,
                                               stderr=err, environ={}))
        self.assertEqual((status, out.getvalue(), err.getvalue()),
                         (0, f"marconi-cli {__version__}\n", ""))


class ChangelogTests(SynchronousTestCase):
    """CHANGELOG.rst keeps up with the version."""

    def test_current_version_has_a_section(self):
        """The version in marconi_tx/__init__.py is a section title of
        CHANGELOG.rst, so a release cannot go out undocumented."""
        with open(os.path.join(ROOT, "CHANGELOG.rst"), encoding="utf-8") as f:
            titles = re.findall(r"^(\S.*)\n-{3,}$", f.read(), re.M)
        self.assertIn(__version__, [title.split()[0] for title in titles])


class DocsTests(SynchronousTestCase):
    """The documents the code cites are in the repository, and listed."""

    def test_cited_specification_files_exist(self):
        """Every Markdown file a module, test or document of the project cites
        by name (``semantics.md`` §3.3) is a file of docs/spec."""
        cited = set()
        for top in ("marconi_tx", "tests", "bench", "docs", "README.rst"):
            for path in _files(os.path.join(ROOT, top)):
                if path.endswith((".py", ".rst")):
                    with open(path, encoding="utf-8") as f:
                        cited.update(re.findall(r"\b([\w.-]+\.md)\b", f.read()))
        self.assertIn("semantics.md", cited)
        self.assertEqual(sorted(cited - set(os.listdir(os.path.join(ROOT, "docs", "spec")))),
                         [])

    def test_index_lists_every_document(self):
        """docs/README.rst names every file and folder of docs/ and docs/spec/."""
        with open(os.path.join(ROOT, "docs", "README.rst"), encoding="utf-8") as f:
            index = f.read()
        names = set(os.listdir(os.path.join(ROOT, "docs"))) - {"README.rst"}
        names |= set(os.listdir(os.path.join(ROOT, "docs", "spec")))
        self.assertEqual(sorted(n for n in names if f"``{n.rstrip('/')}" not in index), [])


def _files(top):
    """``top`` if it is a file, else every file under it (caches skipped)."""
    if os.path.isfile(top):
        yield top
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            yield os.path.join(folder, name)
