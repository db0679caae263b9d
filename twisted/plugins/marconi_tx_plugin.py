"""The twistd dropin: ``twistd marconi``."""

from twisted.application.service import ServiceMaker

marconi = ServiceMaker(
    "marconi",
    "marconi_tx.tap",
    "Queuing as a Service: the Marconi HTTP API and a beanstalkd-style TCP endpoint",
    "marconi",
)
