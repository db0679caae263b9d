from setuptools import find_packages, setup

from marconi_tx import __version__

setup(
    name="marconi_tx",
    version=__version__,
    description="Queuing as a Service (the OpenStack Marconi API) on Twisted",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(exclude=["tests", "tests.*", "bench", "bench.*"]) + ["twisted.plugins"],
    package_data={"twisted": ["plugins/marconi_tx_plugin.py"]},
    install_requires=[
        "twisted>=24.7",
        "klein>=23.5",
        "txmongo>=23.0",
        "pymongo>=4.6",
        "treq>=23.11",
        "zope.interface>=6.0",
    ],
    extras_require={
        "test": [
            "secantusdb==0.7.0b3",
            "greenstalk>=2.0",
            "pystalk>=0.7",
        ],
        "bench": ["py-spy>=0.3"],
    },
    entry_points={
        "console_scripts": ["marconi-cli = marconi_tx.client.cli:main"],
    },
)
