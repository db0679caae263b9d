"""``python -m bench`` (``make bench``): run the benchmark, print the table.

Examples::

    make bench                      # the full run, about 15 minutes on 2 cores
    make bench ARGS="--quick"       # about 3 minutes
    make bench ARGS="--sections depth --depths 1000,1000000"
    make bench ARGS="--duration 10 --repeats 5 --concurrency 64"
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback

from bench import deps, probe, report, run, servers, wrk


def _ints(text):
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers")
    if not values:
        raise argparse.ArgumentTypeError("empty list")
    return values


def _names(text):
    return tuple(v.strip() for v in text.split(",") if v.strip())


def parser():
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    preset = p.add_mutually_exclusive_group()
    preset.add_argument("--quick", dest="preset", action="store_const", const="quick",
                        help="shorter, fewer runs (about 3 minutes)")
    preset.add_argument("--smoke", dest="preset", action="store_const", const="smoke",
                        help="tiny sizes, proves the harness runs (seconds)")
    p.add_argument("--duration", type=int, help="seconds per wrk run")
    p.add_argument("--repeats", type=int, help="runs per configuration (medians are reported)")
    p.add_argument("--concurrency", type=_ints, help="connections, e.g. 1,16,64")
    p.add_argument("--scenarios", type=_names,
                   help=f"throughput loads among {','.join(run.SCENARIOS)}")
    p.add_argument("--depths", type=_ints, help="queue depths, e.g. 1000,100000,1000000")
    p.add_argument("--depth-samples", type=int, help="sequential samples per depth")
    p.add_argument("--processes", type=int, help="daemons in the scale section (default: cores)")
    p.add_argument("--scale-concurrency", type=int, help="connections in the scale section")
    p.add_argument("--soak-seconds", type=int,
                   help="seconds of the WAL soak, per setting (default 240)")
    p.add_argument("--live-claims", type=int,
                   help="live claims at the head in the depth section's claim case")
    p.add_argument("--sections", type=_names,
                   help=f"sections to run among {','.join(run.SECTIONS)} (default: all)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "results"),
                   help="folder of the result file (default: bench/results)")
    p.add_argument("--workdir", help="folder for databases and server logs "
                                     "(default: a temporary folder, removed afterwards)")
    p.add_argument("--no-install", action="store_true",
                   help="do not install what is missing (wrk, beanstalkd, redis-server "
                        "with apt-get; Zaqar with pip)")
    p.add_argument("--zaqar-concurrency", type=_ints,
                   help="connections in the zaqar section (default 16)")
    p.add_argument("--line-connections", type=_ints,
                   help="connections of the line section's loads (default 1,16)")
    return p


def settings_from(args):
    base = run.PRESETS[args.preset or "full"]
    return run.with_overrides(
        base, duration=args.duration, repeats=args.repeats, concurrency=args.concurrency,
        scenarios=args.scenarios, depths=args.depths, depth_samples=args.depth_samples,
        processes=args.processes, scale_concurrency=args.scale_concurrency,
        soak_seconds=args.soak_seconds, live_claims=args.live_claims,
        sections=args.sections, zaqar_concurrency=args.zaqar_concurrency,
        line_connections=args.line_connections)


def main(argv=None, say=run.say):
    args = parser().parse_args(argv)
    settings = settings_from(args)
    try:
        settings.check()
    except ValueError as e:
        raise SystemExit(f"bench: {e}")

    absent = deps.missing()
    if absent and not args.no_install:
        absent = deps.install(absent, say=say)
    notes = []
    if "wrk" in absent:
        skipped = [s for s in ("throughput", "scale", "pools", "zaqar") if s in settings.sections]
        if skipped:
            notes.append(f"wrk is missing: {', '.join(skipped)} skipped "
                         f"(apt-get install wrk)")
            settings = run.with_overrides(
                settings, sections=tuple(s for s in settings.sections if s not in skipped))
    for note in notes:
        say(f"bench: {note}")

    workdir = args.workdir or tempfile.mkdtemp(prefix="marconi-bench-")
    os.makedirs(workdir, exist_ok=True)
    started = run.now()
    say(f"bench: {settings.preset} run, {', '.join(settings.sections)}; wrk loads alone take "
        f"{settings.estimate() / 60:.1f} min; work folder {workdir}")
    bench = run.Bench(settings, workdir, log=say, install=not args.no_install)
    clock = time.monotonic()
    try:
        bench.run()
    except Exception as e:
        # What was measured so far is still written and printed.
        if not isinstance(e, (wrk.WrkError, servers.ServerError, probe.ProbeError)):
            traceback.print_exc()
        bench.notes.append(f"run stopped early: {type(e).__name__}: {e}")
        say(f"bench: run stopped early: {e}")
        failed = True
    else:
        failed = False
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    meta = run.metadata(settings, started)
    meta["elapsed_s"] = round(time.monotonic() - clock, 1)
    meta["notes"] = notes + bench.notes
    meta.update(bench.meta)
    result = report.document(meta, bench.runs)
    path = report.write(result, args.out)
    say("")
    say(report.format_table(result).rstrip("\n"))
    say(f"\nwritten to {os.path.relpath(path)} in {meta['elapsed_s'] / 60:.1f} min")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
