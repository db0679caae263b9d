"""Ratios between two servers loaded in the same repeat of a run.

Each ratio here is the median, over the repeats, of one repeat's rate over
the other server's rate in that same repeat (loaded seconds apart), as
every ratio of ``bench.report``:

* ``post1_vs_ceilings``: marconi_tx's POST 1 message over the same load on
  each ceiling (the bare twisted.web one, ``bench.ceiling``, and the raw
  protocol, ``bench.raw_ceiling``).
* ``zaqar_ratios``: marconi_tx over upstream Zaqar (section ``zaqar``,
  ``bench.zaqar``) for each load, API version and concurrency, in messages
  per second (the work a load exists for; for POST 1 it is the request rate).
* ``pool_ratios``: each layout of the ``pools`` section (``bench.pools``)
  over its reference layout, per load, in messages per second.
"""

import statistics

#: The raw protocol ceiling's target name.
RAW = "raw-ceiling"
#: The POST 1 load compared with the ceilings.
POST1 = "post1"
#: marconi_tx / Zaqar: the goal of issue 16 for every load.
ZAQAR_GOAL = 3.0


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _ratio(value, reference):
    if value is None or not reference:
        return None
    return round(value / reference, 4)


def _paired(runs, section, key, numerator, denominator, measure="requests_per_s"):
    """
    {configuration: (numerator rates, denominator rates, per-repeat ratios)}.

    ``key(run)`` names a run's configuration (without its target and
    repeat); ``numerator`` and ``denominator`` are targets.
    """
    rates = {}
    for run in runs:
        if run["section"] == section and run["target"] in (numerator, denominator):
            rates[(run["target"], key(run), run.get("repeat"))] = run["result"][measure]
    out = {}
    for (target, config, repeat), rate in rates.items():
        if target != numerator:
            continue
        other = rates.get((denominator, config, repeat))
        mine, theirs, ratios = out.setdefault(config, ([], [], []))
        mine.append(rate)
        theirs.append(other)
        ratios.append(_ratio(rate, other))
    return out


def post1_vs_ceilings(runs):
    """One row per concurrency: marconi_tx's POST 1 rate, each ceiling's
    and marconi_tx's over each (median of the repeats' ratios)."""
    def key(run):
        return run["concurrency"] if run["scenario"] == POST1 else None

    rows = {}
    for ceiling, name in (("ceiling", "ceiling"), (RAW, "raw")):
        for concurrency, (mine, theirs, ratios) in _paired(
                runs, "throughput", key, "marconi", ceiling).items():
            if concurrency is None:
                continue
            row = rows.setdefault(concurrency, {"concurrency": concurrency,
                                                "marconi_rps": _median(mine)})
            row[f"{name}_rps"] = _median(theirs)
            row[f"vs_{name}"] = _median(ratios)
    return [rows[c] for c in sorted(rows)]


def zaqar_ratios(runs):
    """One row per load, API version and concurrency of the ``zaqar``
    section: both rates (medians) and marconi_tx / Zaqar."""
    def key(run):
        return (run["scenario"], run["api"], run["concurrency"])

    failures, cpu = {}, {}
    for run in runs:
        if run["section"] == "zaqar":
            result = run["result"]
            side = (run["target"], key(run))
            failures[side] = (failures.get(side, 0) + result["unexpected"]
                              + sum(result["errors"].values()))
            if result["duration_s"]:
                cpu.setdefault(side, []).append(run["server_cpu_s"] / result["duration_s"])
    rows = []
    for config, (mine, theirs, ratios) in _paired(runs, "zaqar", key, "marconi", "zaqar",
                                                  "messages_per_s").items():
        scenario, api, concurrency = config
        rows.append({"scenario": scenario, "api": api, "concurrency": concurrency,
                     "marconi_mps": _median(mine), "zaqar_mps": _median(theirs),
                     "ratio": _median(ratios), "repeats": len(ratios),
                     "marconi_failures": failures.get(("marconi", config), 0),
                     "zaqar_failures": failures.get(("zaqar", config), 0),
                     # Cores used: marconi_tx's process; Zaqar's gunicorn and redis.
                     "marconi_cpu": _median(cpu.get(("marconi", config), [])),
                     "zaqar_cpu": _median(cpu.get(("zaqar", config), []))})
    return rows


def pool_ratios(runs):
    """One row per layout and load of the ``pools`` section: its rate
    (median), its reference's and its rate over the reference's: one
    process on one sqlite file for sqlite layouts, the 1-pool MongoDB layout
    for MongoDB ones."""
    from bench import pools

    layouts = {}
    for run in runs:
        if run["section"] == "pools":
            layouts.setdefault(run["target"], (run["engine"], run["pools"], run["processes"]))
    rows = []
    for target, (engine, count, processes) in layouts.items():
        reference = pools.REFERENCE if engine == "sqlite" else pools.MONGO_REFERENCE
        for load, (mine, theirs, ratios) in _paired(
                runs, "pools", lambda run: run["scenario"], target, reference,
                "messages_per_s").items():
            rows.append({"layout": target, "engine": engine, "pools": count,
                         "processes": processes, "scenario": load, "reference": reference,
                         "mps": _median(mine), "reference_mps": _median(theirs),
                         "ratio": _median(ratios) if target != reference else 1.0})
    return rows
