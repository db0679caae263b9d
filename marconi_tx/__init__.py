"""marconi_tx: Queuing as a Service with the OpenStack Marconi API, on Twisted."""

__version__ = "0.1.0"
