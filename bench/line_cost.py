"""The cost of the line port's put/reserve/delete cycle, in process.

``python -m bench.line_cost [--connections N] [--cycles N] [--metrics on|off]``
builds the line endpoint as the daemon does (sqlite file with group commit,
the metrics' counted driver, the reservations ledger) and feeds its
connections (in-memory transports) the commands greenstalk sends: ``put``,
``reserve``, ``delete``, each command of every connection, then the turn's
group commit as the reactor would run it, then the answers are checked. It
prints microseconds per command (noisy on a shared machine); with
``--cachegrind`` it runs two lengths under ``valgrind --tool=cachegrind`` and
prints instructions per command, which the noise does not move::

    python -m bench.line_cost --cachegrind                    # 1 and 16 connections
    python -m bench.line_cost --cachegrind --connections 16

The network, the reactor's polling and the client are not in it: the wall
clock ratio against beanstalkd is ``bench.line_cycle``.
"""

import argparse
import os
import re
import tempfile
import time

from bench.post_cost import cachegrind

#: Cycles run before measuring (caches, the first queue lookups).
WARM = 50
_INSERTED = re.compile(rb"INSERTED (\d+)\r\n")
_RESERVED = re.compile(rb"RESERVED (\d+) 3\r\njob\r\n")


def build(folder, connections, metrics):
    """(driver, cycle: runs one cycle on every connection)."""
    from twisted.internet import reactor
    from twisted.internet.testing import StringTransport

    from marconi_tx import config
    from marconi_tx.metrics import daemon_metrics
    from marconi_tx.storage.sqlite.driver import SqliteDriver
    from marconi_tx.transport.line import make_factory
    from marconi_tx.transport.line.ledger import ReservationLedger

    cfg = config.load(overrides=[("drivers", "metrics", "true" if metrics else "false")])
    driver = SqliteDriver(os.path.join(folder, "cost.db"), reactor, group_commit=True)
    driver.open_now()
    served = driver
    watching = daemon_metrics(cfg, reactor)
    if watching is not None:
        served = watching.watch_storage(driver)
    ledger = ReservationLedger(os.path.join(folder, "reservations"))
    factory = make_factory(served, cfg, reactor, ledger=ledger)
    channels = []
    for _ in range(connections):
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        channels.append((protocol, transport))

    def flush():
        if driver._turn is not None:
            driver._turn.cancel()
        driver._flush()

    def answers(pattern):
        found = []
        for _, transport in channels:
            match = pattern.fullmatch(transport.value())
            if match is None:
                raise RuntimeError(transport.value()[:200])
            transport.clear()
            found.append(match.group(1))
        return found

    def turn(commands):
        for (protocol, _), command in zip(channels, commands):
            protocol.dataReceived(command)
        flush()

    put = [b"put 1024 0 60 3\r\njob\r\n"] * connections
    reserve = [b"reserve\r\n"] * connections

    def cycle():
        turn(put)
        answers(_INSERTED)
        turn(reserve)
        ids = answers(_RESERVED)
        turn([b"delete %s\r\n" % job_id for job_id in ids])
        for _, transport in channels:
            if transport.value() != b"DELETED\r\n":
                raise RuntimeError(transport.value()[:200])
            transport.clear()

    return driver, cycle


def run(connections, cycles, metrics=True):
    """Microseconds a command."""
    with tempfile.TemporaryDirectory() as folder:
        driver, cycle = build(folder, connections, metrics)
        for _ in range(WARM):
            cycle()
        started = time.perf_counter()
        for _ in range(cycles):
            cycle()
        elapsed = time.perf_counter() - started
        driver.close()
    return elapsed / (cycles * connections * 3) * 1e6


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.line_cost",
                                description=__doc__.split("\n")[0])
    p.add_argument("--connections", type=int, action="append",
                   help="connections (repeatable; default: 1 and 16)")
    p.add_argument("--cycles", type=int, default=2000)
    p.add_argument("--metrics", choices=("on", "off"), default="on")
    p.add_argument("--cachegrind", action="store_true",
                   help="instructions per command under cachegrind")
    args = p.parse_args(argv)
    for connections in args.connections or (1, 16):
        if not args.cachegrind:
            cost = run(connections, args.cycles, args.metrics == "on")
            print(f"{connections} connection(s): {cost:.1f} µs a command")
            continue
        short, long = 10, 10 + args.cycles // connections
        runs = {n: cachegrind("bench.line_cost", "--connections", str(connections),
                              "--cycles", str(n), "--metrics", args.metrics)
                for n in (short, long)}
        per_command = (runs[long] - runs[short]) / ((long - short) * connections * 3)
        print(f"{connections} connection(s): {per_command / 1000:.1f} thousand "
              "instructions a command")


if __name__ == "__main__":
    main()
