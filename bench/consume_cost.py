"""The cost of the consume cycle and of listing a page, in process.

``python -m bench.consume_cost [--load consume|consume-v2|list] [--batches N]``
builds the daemon's Site over a sqlite file as ``bench.post_cost`` does
(group commit, metrics as configured by default) and feeds it the requests
of the wrk loads (``bench/lua/consume.lua``, ``bench/lua/list.lua``) on 16
connections, a reactor turn's worth a batch:

``consume``, ``consume-v2``
    claim 10 messages (``POST .../claims?limit=10``), then delete exactly
    those (``DELETE .../messages?ids=...``, the ids read from the claim's
    hrefs): two requests a cycle; the queue is stocked beforehand
    (``bench.prefill``) so that no claim comes back empty;
``list``
    ``GET /v1/queues/q/messages?limit=10&echo=true`` of a queue of 1,000
    messages.

It prints microseconds per request (noisy on a shared machine); with
``--cachegrind`` it runs two lengths under ``valgrind --tool=cachegrind``
and prints instructions per request, which the noise does not move::

    python -m bench.consume_cost --cachegrind                 # every load
    python -m bench.consume_cost --cachegrind --load list

Where they go: ``--callgrind FOLDER`` runs each load once under
``valgrind --tool=callgrind``, collecting only inside the measured batches
(they run in one ``functools.reduce`` call, which ``--toggle-collect``
names), and writes ``FOLDER/<load>.callgrind``, to read with
``callgrind_annotate --inclusive=yes`` (C functions: sqlite, the JSON
scanner, the GIL; Python frames show as the interpreter's)::

    python -m bench.consume_cost --callgrind /tmp/cg --load consume --batches 15
"""

import argparse
import functools
import os
import re
import subprocess
import sys
import tempfile
import time

from bench import prefill
from bench.post_cost import BATCH, cachegrind, serve

CLIENT_ID = b"3f2504e0-4f89-11d3-9a0c-0305e82c3301"
#: Messages a claim or a page takes.
PAGE = 10
#: Messages of the listed queue (as ``bench.run.LIST_DEPTH``).
LIST_DEPTH = 1000
#: Batches run before measuring (caches, the match cache, first labels).
WARM = 20
#: load -> (API prefix, project or None)
LOADS = {"consume": (b"/v1", None), "consume-v2": (b"/v2", b"p"), "list": (b"/v1", None)}
#: Message ids in a claim's answer, as consume.lua reads them.
_CLAIMED = re.compile(rb'/messages/([^"?/]+)\?claim_id=')


def request(method, target, project, body=None):
    head = (b"%s %s HTTP/1.1\r\nHost: localhost\r\nClient-ID: %s\r\n"
            % (method, target, CLIENT_ID))
    if project is not None:
        head += b"X-Project-ID: %s\r\n" % project
    if body is not None:
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    return head + b"\r\n" + (body or b"")


def answered(transport, status):
    """The body of the answer on ``transport`` (which is cleared), checked
    to have ``status``."""
    answer = transport.value()
    transport.clear()
    if not answer.startswith(b"HTTP/1.1 %d " % status):
        raise RuntimeError(answer[:300])
    return answer.partition(b"\r\n\r\n")[2]


def stock(load, batches):
    """The messages the queue of ``load`` is filled with, for ``batches``."""
    return LIST_DEPTH if load == "list" else (WARM + batches) * BATCH * PAGE


def build(path, load, messages):
    """(driver, batch: runs one batch, requests a batch), over a queue of
    ``messages``."""
    prefix, project = LOADS[load]
    queue = prefix + b"/queues/q"
    name = None if project is None else project.decode()
    prefill.fill(path, "q", messages, name)
    driver, channels, flush = serve(path, project=name)
    if load == "list":
        get = request(b"GET", queue + b"/messages?limit=%d&echo=true" % PAGE, project)

        def batch():
            for channel, _ in channels:
                channel.dataReceived(get)
            for _, transport in channels:
                answered(transport, 200)

        return driver, batch, BATCH

    claim = request(b"POST", queue + b"/claims?limit=%d" % PAGE, project,
                    b'{"ttl":60,"grace":60}')

    def batch():
        for channel, _ in channels:
            channel.dataReceived(claim)
        flush()
        deletes = []
        for _, transport in channels:
            ids = _CLAIMED.findall(answered(transport, 201))
            if len(ids) != PAGE:
                raise RuntimeError(f"claimed {len(ids)} messages")
            deletes.append(request(b"DELETE", queue + b"/messages?ids=" + b",".join(ids),
                                   project))
        for (channel, _), delete in zip(channels, deletes):
            channel.dataReceived(delete)
        flush()
        for _, transport in channels:
            answered(transport, 204)

    return driver, batch, 2 * BATCH


def run(load, batches, messages=None):
    """Microseconds a request."""
    with tempfile.TemporaryDirectory() as folder:
        driver, batch, requests = build(os.path.join(folder, "cost.db"), load,
                                        messages or stock(load, batches))
        for _ in range(WARM):
            batch()
        started = time.perf_counter()
        # One C call around the measured batches: ``--callgrind`` collects
        # only inside it.
        functools.reduce(lambda _, __: batch(), range(batches), None)
        elapsed = time.perf_counter() - started
        driver.close()
    return elapsed / (batches * requests) * 1e6


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.consume_cost",
                                description=__doc__.split("\n")[0])
    p.add_argument("--load", choices=sorted(LOADS), action="append",
                   help="the load (repeatable; default: every one)")
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--stock", type=int,
                   help="messages to fill the queue with (default: as the batches need)")
    p.add_argument("--cachegrind", action="store_true",
                   help="instructions per request under cachegrind (a minute a load)")
    p.add_argument("--callgrind", metavar="FOLDER",
                   help="write FOLDER/<load>.callgrind: callgrind of the measured batches")
    args = p.parse_args(argv)
    loads = args.load or sorted(LOADS)
    if args.callgrind:
        os.makedirs(args.callgrind, exist_ok=True)
        for load in loads:
            out = os.path.join(args.callgrind, f"{load}.callgrind")
            traced = subprocess.run(
                ["valgrind", "--tool=callgrind", "--toggle-collect=functools_reduce",
                 f"--callgrind-out-file={out}", sys.executable, "-m", "bench.consume_cost",
                 "--load", load, "--batches", str(args.batches)],
                capture_output=True, text=True, check=True)
            collected = int(re.search(r"Collected : (\d+)", traced.stderr).group(1))
            requests = 2 * BATCH if load.startswith("consume") else BATCH
            print(f"{load}: {collected / (args.batches * requests) / 1000:.1f} thousand "
                  f"instructions a request (measured batches only), in {out}")
        return
    for load in loads:
        if not args.cachegrind:
            print(f"{load}: {run(load, args.batches, args.stock):.1f} µs a request")
            continue
        short, long = 10, 10 + args.batches
        # Both runs fill the queue alike: only the requests differ.
        runs = {n: cachegrind("bench.consume_cost", "--load", load, "--batches", str(n),
                              "--stock", str(stock(load, long)))
                for n in (short, long)}
        requests = 2 * BATCH if load.startswith("consume") else BATCH
        per_request = (runs[long] - runs[short]) / ((long - short) * requests)
        print(f"{load}: {per_request / 1000:.1f} thousand instructions a request")


if __name__ == "__main__":
    main()
