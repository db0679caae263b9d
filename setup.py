import re

from setuptools import find_packages, setup


def _version():
    # Read, not imported: a PEP 517 build does not put the project on sys.path.
    with open("marconi_tx/__init__.py", encoding="utf-8") as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


setup(
    name="marconi_tx",
    version=_version(),
    description="Queuing as a Service (the OpenStack Marconi API) on Twisted",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    license="Apache-2.0",
    python_requires=">=3.10",
    # The root as the one package dir: `pip install -e` then adds the work tree
    # to sys.path (a plain .pth file), where twistd finds twisted/plugins.
    package_dir={"": "."},
    packages=find_packages(exclude=["tests", "tests.*", "bench", "bench.*"]) + ["twisted.plugins"],
    package_data={"twisted": ["plugins/marconi_tx_plugin.py"],
                  # The OpenAPI documents the daemon serves.
                  "marconi_tx.transport.http.openapi": ["*.json"]},
    # <prefix>/share/marconi_tx/: the documented configuration and systemd units.
    data_files=[("share/marconi_tx", ["etc/marconi.conf", "etc/marconi.service",
                                      "etc/marconi.socket"])],
    install_requires=[
        # Versions are year.month: 26.10 is the newest tested, and transport/http/site.py
        # relies on twisted.web internals, so 2027's releases wait until tested.
        "twisted>=24.7,<27",
        "klein>=23.5",
        "txmongo>=23.0",
        "pymongo>=4.6",
        "treq>=23.11",
        "zope.interface>=6.0",
        "prometheus-client>=0.17",
    ],
    extras_require={
        "test": [
            "secantusdb==0.7.0b3",
            "greenstalk>=2.0",
            "pystalk>=0.7",
            "schemathesis>=4.0",
            "openapi-spec-validator>=0.7",
            # tests/test_zaqarclient.py: the OpenStack client, unchanged, over v2.
            "python-zaqarclient>=4,<5",
            # tests/keystone_server.py: a real Keystone for [auth] strategy = keystone.
            "keystone>=30,<31",
            # make lint, make typecheck (pyproject.toml configures both). Ruff
            # stays within one minor version: a newer one may check more.
            "ruff>=0.17,<0.18",
            "mypy>=2.4",
            "mypy-zope>=1.0.17",
        ],
        "bench": ["py-spy>=0.3"],
    },
    entry_points={
        "console_scripts": ["marconi-cli = marconi_tx.client.cli:main"],
    },
)
