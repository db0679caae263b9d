"""The line-protocol TCP endpoint: a beanstalkd 1.12 dialect over storage.

``twistd marconi --line tcp:11300`` (or ``[drivers] line``) serves it beside
the HTTP API; tubes are the queues of ``[drivers:transport:line] project``
and jobs are their messages (see ``README.rst``, "The line protocol").
"""

from marconi_tx.transport.line.server import LineFactory


def make_factory(driver, config, clock, max_connections=None, ledger=None, strategy=None):
    """
    The IProtocolFactory of the endpoint, holding at most
    ``max_connections`` connections (None: no limit), recording
    reservations in ``ledger`` (a ReservationLedger, or None).

    @param driver: an opened (or about to be opened) storage driver with
        ``jobs`` (IJobController) and ``events`` (IQueueEvents).
    @param config: the settings of ``marconi_tx.config.load``.
    @param clock: the IReactorTime every timer and time reading uses.
    @param strategy: the IAuthStrategy checking ``auth TOKEN`` when
        ``[drivers:transport:line] require_auth`` is on.
    """
    return LineFactory(driver, config, clock, max_connections, ledger, strategy)
