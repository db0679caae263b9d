"""From raw runs to the summary, the printed table and the result file.

A run is one measurement: a dict with ``section`` ("throughput", "scale",
"depth" or "line"), what was loaded and how, and the numbers. The machine is
shared and noisy, so every figure in the summary is the median over the
repeats of one configuration, and every rate is also given as a ratio to
the ceiling measured in the same run at the same concurrency: the median of
the ratios of each repeat, whose ceiling was loaded seconds before, so that
the machine's drift over minutes moves both sides of a ratio alike.
"""

import json
import os
import statistics

from bench import comparisons

#: Scenario -> label in the table.
LABELS = {
    "get": "GET fixed JSON",
    "post1": "POST 1 message",
    "post10": "POST 10 messages",
    "consume": "claim 10 + delete",
    "list": "GET page of 10",
    "line": "put/reserve/delete",
    "post1-v2": "v2 POST 1 message",
    "consume-v2": "v2 claim 10 + delete",
    "post1-token": "POST 1 message, token auth",
}

#: v2 loads -> the v1 load each is compared with (issue 14: within 10 %),
#: and the load with token auth -> the same load without (issue 15: within
#: 10 % too).
V2_OF_V1 = {"post1-v2": "post1", "consume-v2": "consume", "post1-token": "post1"}
#: The least rate ratio (v2/v1, token/none) the goal allows.
V2_GOAL = 0.9

SCHEMA_VERSION = 1

#: The ceiling load every ratio divides by (``bench.run.CEILING``).
REFERENCE = "get"
#: The raw protocol ceiling's target name (``bench.raw_ceiling``).
RAW = comparisons.RAW


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _group(runs, section, keys):
    groups = {}
    for run in runs:
        if run["section"] == section:
            groups.setdefault(tuple(run[k] for k in keys), []).append(run)
    return groups


def _rate_summary(group):
    """Medians of one configuration's repeats."""
    duration = [r["result"]["duration_s"] for r in group]
    return {
        "repeats": len(group),
        "requests_per_s": median([r["result"]["requests_per_s"] for r in group]),
        "messages_per_s": median([r["result"]["messages_per_s"] for r in group]),
        "p50_ms": median([r["result"]["latency_ms"]["p50"] for r in group]),
        "p99_ms": median([r["result"]["latency_ms"]["p99"] for r in group]),
        # CPU share: seconds of CPU per second of run (1.0 = one full core).
        "server_cpu": median([r["server_cpu_s"] / d for r, d in zip(group, duration) if d]),
        "client_cpu": median([r["result"]["client_cpu_s"] / d
                              for r, d in zip(group, duration) if d]),
        "failures": sum(r["result"]["unexpected"] + sum(r["result"]["errors"].values())
                        for r in group),
        "empty": sum(r["result"]["empty"] for r in group),
    }


def _ratio(value, reference):
    if value is None or not reference:
        return None
    return round(value / reference, 4)


#: The line section's references: each rate is also given as a ratio to
#: theirs at the same number of connections (beanstalkd in memory, with its
#: binlog, and the bare Twisted line protocol: ``bench.line_cycle``).
LINE_REFERENCES = ("beanstalkd", "beanstalkd-binlog", "line-ceiling")


def _line(runs):
    """Line rows: one per (target, connections), with the median of each
    repeat's ratio to each reference measured in the same repeat."""
    runs = [r for r in runs if r["section"] == "line"]
    rates = {(r["target"], r.get("connections", 1), r.get("repeat")): r["cycles_per_s"]
             for r in runs}
    rows = []
    for (target, connections), group in _group(
            [dict(r, connections=r.get("connections", 1)) for r in runs], "line",
            ("target", "connections")).items():
        row = {"target": target, "connections": connections, "repeats": len(group)}
        for key in ("cycles_per_s", "p50_ms", "p99_ms", "server_cpu_us"):
            row[key] = median([r.get(key) for r in group])
        for reference in LINE_REFERENCES:
            row[f"ratio_to_{reference}"] = median([
                _ratio(r["cycles_per_s"], rates.get((reference, connections, r.get("repeat"))))
                for r in group])
        rows.append(row)
    return rows


def summarize(runs):
    """The summary of ``runs``: one row per configuration, in run order."""
    summary = {"throughput": [], "v2_vs_v1": [], "scale": [], "depth": [], "line": [],
               "profile": [], "live_claims": [], "soak": [], "long_poll": []}

    groups = _group(runs, "throughput", ("target", "scenario", "concurrency"))
    references = {target: {(r["concurrency"], r.get("repeat")): r["result"]["requests_per_s"]
                           for r in runs if r["section"] == "throughput"
                           and r["target"] == target and r["scenario"] == REFERENCE}
                  for target in ("ceiling", RAW)}
    for (target, scenario, concurrency), group in groups.items():
        row = {"target": target, "scenario": scenario, "concurrency": concurrency,
               **_rate_summary(group)}
        # "ratio": over the twisted.web ceiling's GET; "ratio_raw": over the
        # raw protocol's GET (None in results from before it was measured).
        for key, target_of in (("ratio", "ceiling"), ("ratio_raw", RAW)):
            reference = references[target_of]
            row[key] = median([_ratio(r["result"]["requests_per_s"],
                                      reference.get((concurrency, r.get("repeat"))))
                               for r in group])
        summary["throughput"].append(row)
    summary["v2_vs_v1"] = _v2_vs_v1(runs)
    summary["post1_vs_ceilings"] = comparisons.post1_vs_ceilings(runs)
    summary["zaqar"] = comparisons.zaqar_ratios(runs)
    summary["pools"] = comparisons.pool_ratios(runs)

    groups = _group(runs, "scale", ("target", "scenario", "concurrency", "processes"))
    singles = {(t, s, c): _rate_summary(g)["requests_per_s"]
               for (t, s, c, p), g in groups.items() if p == 1}
    for (target, scenario, concurrency, processes), group in groups.items():
        row = {"target": target, "scenario": scenario, "concurrency": concurrency,
               "processes": processes, **_rate_summary(group)}
        row["speedup"] = _ratio(row["requests_per_s"], singles.get((target, scenario, concurrency)))
        row["per_process_cpu"] = [median(cpus) for cpus in zip(
            *[[c / r["result"]["duration_s"] for c in r["server_cpu_per_process_s"]]
              for r in group])]
        summary["scale"].append(row)

    depth_runs = [r for r in runs if r["section"] == "depth"]
    smallest = min(depth_runs, key=lambda r: r["depth"], default=None)
    for run in depth_runs:
        row = {key: run[key] for key in ("depth", "prefill_s", "samples", "empty")}
        for kind in ("claim", "list"):
            row[kind] = dict(run[kind])
            row[kind]["p50_vs_smallest"] = _ratio(run[kind]["p50_ms"],
                                                  smallest[kind]["p50_ms"])
        summary["depth"].append(row)

    summary["long_poll"] = [
        {key: run[key] for key in ("waiters", "samples", "p50_ms", "p99_ms",
                                   "after_answer_p50_ms", "after_answer_p99_ms")}
        for run in runs if run["section"] == "long_poll"]

    summary["line"] = _line(runs)

    for run in runs:
        if run["section"] == "live_claims":
            summary["live_claims"].append({
                "live_claims": run["live_claims"], "ratio": run["ratio"],
                "empty_head_p50_ms": run["empty_head"]["claim"]["p50_ms"],
                "behind_p50_ms": run["behind_live_claims"]["claim"]["p50_ms"]})
        if run["section"] == "soak":
            summary["soak"].append({
                key: run[key] for key in ("label", "wal_max_bytes", "seconds",
                                          "wal_peak_bytes", "wal_final_bytes")})
            for load in ("post1", "consume"):
                summary["soak"][-1][load] = {
                    key: run[load][key] for key in ("requests_per_s", "messages_per_s")}
                summary["soak"][-1][load]["p99_ms"] = run[load]["latency_ms"]["p99"]
        if run["section"] == "profile":
            summary["profile"].append({
                key: run[key] for key in ("scenario", "concurrency", "samples", "busy",
                                          "self", "total", "layers", "hot_spots")})
            summary["profile"][-1]["requests_per_s"] = run["result"]["requests_per_s"]
    return summary


def _v2_vs_v1(runs):
    """Each v2 load's rate over its v1 load's, per concurrency: the median
    of the repeats' ratios (both loaded in the same repeat, seconds apart)."""
    rates = {(r["scenario"], r["concurrency"], r.get("repeat")): r["result"]["requests_per_s"]
             for r in runs if r["section"] == "throughput" and r["target"] == "marconi"}
    rows = {}
    for (scenario, concurrency, repeat), rate in rates.items():
        if scenario in V2_OF_V1:
            v1 = rates.get((V2_OF_V1[scenario], concurrency, repeat))
            rows.setdefault((scenario, concurrency), []).append(_ratio(rate, v1))
    return [{"scenario": scenario, "v1_scenario": V2_OF_V1[scenario],
             "concurrency": concurrency, "ratio": median(ratios)}
            for (scenario, concurrency), ratios in rows.items()]


def _fmt(value, digits=0, width=8):
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float) or digits:
        return f"{value:{width}.{digits}f}"
    return f"{value:{width}d}"


#: Columns holding words, aligned left; numbers align right.
_TEXT_COLUMNS = {"target", "load", "server", "notes", "function (self)",
                 "function (total)"}


def _table(header, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    left = [name in _TEXT_COLUMNS for name in header]
    lines = []
    for index, cells in enumerate([header, *rows]):
        lines.append("  ".join(str(c).ljust(w) if is_text else str(c).rjust(w)
                               for c, w, is_text in zip(cells, widths, left)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def _flags(row):
    notes = []
    if row.get("failures"):
        notes.append(f"{row['failures']} failed")
    if row.get("empty"):
        notes.append(f"{row['empty']} empty")
    return ", ".join(notes)


def format_table(result):
    """The human report of a result document (see ``document``)."""
    meta, summary = result["meta"], result["summary"]
    settings = meta["settings"]
    out = [
        f"marconi_tx benchmark  {meta['date']}  commit {meta['commit']}"
        f"{' (uncommitted changes)' if meta.get('dirty') else ''}",
        f"{meta['cores']} cores, Python {meta['python']}, Twisted {meta['twisted']}, "
        f"{meta['wrk'] or 'wrk missing'}; storage sqlite; medians of "
        f"{settings['repeats']} runs of {settings['duration']} s",
        "ratio = requests/s over the twisted.web ceiling's GET at the same concurrency "
        "and repeat (median of the repeats); vs raw = the same over the raw protocol "
        "ceiling's GET; cpu = cores used by server / by wrk",
    ]
    if summary["throughput"]:
        out += ["", "Throughput (one daemon)"]
        rows = [[row["target"], LABELS.get(row["scenario"], row["scenario"]),
                 row["concurrency"], _fmt(row["requests_per_s"]),
                 _fmt(row["messages_per_s"]) if row["scenario"] != REFERENCE else "-",
                 _fmt(row["p50_ms"], 2), _fmt(row["p99_ms"], 2),
                 _fmt(row["ratio"], 3), _fmt(row.get("ratio_raw"), 3),
                 _fmt(row["server_cpu"], 2, 4), _fmt(row["client_cpu"], 2, 4), _flags(row)]
                for row in summary["throughput"]]
        rows.sort(key=lambda r: (r[2], {"ceiling": 0, RAW: 1}.get(r[0], 2)))
        out += _table(["target", "load", "conc", "req/s", "msg/s", "p50 ms", "p99 ms",
                       "ratio", "vs raw", "cpu", "wrk", "notes"], rows)
    if summary.get("post1_vs_ceilings"):
        out += ["", "POST 1 message against both ceilings (the same load on each; "
                    "marconi_tx's rate over each's, median of the repeats)"]
        rows = [[row["concurrency"], _fmt(row["marconi_rps"]), _fmt(row.get("ceiling_rps")),
                 _fmt(row.get("vs_ceiling"), 3), _fmt(row.get("raw_rps")),
                 _fmt(row.get("vs_raw"), 3)] for row in summary["post1_vs_ceilings"]]
        out += _table(["conc", "marconi req/s", "twisted.web req/s", "ratio",
                       "raw protocol req/s", "ratio"], rows)
    if summary.get("zaqar"):
        out += ["", f"marconi_tx against Zaqar {meta.get('zaqar', {}).get('version', '')} "
                    f"({meta.get('zaqar', {}).get('runner', '')}; messages/s, ratio = "
                    f"marconi_tx over Zaqar, median of the repeats; goal >= "
                    f"{comparisons.ZAQAR_GOAL:.0f}; cpu = cores used, Zaqar's with redis's)"]
        rows = [[LABELS.get(row["scenario"], row["scenario"]), row["api"],
                 row["concurrency"], _fmt(row["marconi_mps"]), _fmt(row["zaqar_mps"]),
                 _fmt(row["ratio"], 2), _fmt(row.get("marconi_cpu"), 2, 4),
                 _fmt(row.get("zaqar_cpu"), 2, 4),
                 ", ".join(f"{row[f'{side}_failures']} {side} failed"
                           for side in ("marconi", "zaqar") if row[f"{side}_failures"])
                 or ("" if (row["ratio"] or 0) >= comparisons.ZAQAR_GOAL else "below goal")]
                for row in summary["zaqar"]]
        out += _table(["load", "api", "conc", "marconi msg/s", "zaqar msg/s", "ratio",
                       "cpu", "zaqar cpu", "notes"], rows)
    if summary.get("v2_vs_v1"):
        out += ["", f"v2 against v1, token auth against none (requests/s of each load "
                    f"over its base load, median of the repeats; goal >= {V2_GOAL})"]
        rows = [[LABELS.get(row["scenario"], row["scenario"]), row["concurrency"],
                 _fmt(row["ratio"], 3),
                 "" if row["ratio"] is None or row["ratio"] >= V2_GOAL else "below goal"]
                for row in summary["v2_vs_v1"]]
        out += _table(["load", "conc", "ratio", "notes"], rows)
    if summary["depth"]:
        out += ["", "Depth (one daemon, sequential claim + release and first page, "
                    "ratio = p50 over the smallest depth's)"]
        rows = [[row["depth"], _fmt(row["prefill_s"], 1), _fmt(row["claim"]["p50_ms"], 2),
                 _fmt(row["claim"]["p99_ms"], 2), _fmt(row["claim"]["p50_vs_smallest"], 2),
                 _fmt(row["list"]["p50_ms"], 2), _fmt(row["list"]["p99_ms"], 2),
                 _fmt(row["list"]["p50_vs_smallest"], 2),
                 f"{row['empty']} empty" if row["empty"] else ""]
                for row in summary["depth"]]
        out += _table(["messages", "fill s", "claim p50", "claim p99", "ratio",
                       "list p50", "list p99", "ratio", "notes"], rows)
    for row in summary.get("live_claims", []):
        out += ["", f"Claim behind {row['live_claims']} live claims at the head: p50 "
                    f"{row['behind_p50_ms']:.2f} ms, empty head {row['empty_head_p50_ms']:.2f} "
                    f"ms, ratio {_fmt(row['ratio'], 2, 0)} (goal < 1.5)"]
    if summary.get("soak"):
        out += ["", "WAL soak (POST 1 and consume on one queue at once; WAL file sampled "
                    "every second)"]
        rows = [[row["label"], row["seconds"], _fmt(row["wal_peak_bytes"] / 2**20, 1),
                 _fmt(row["wal_final_bytes"] / 2**20, 1),
                 _fmt(row["post1"]["requests_per_s"]), _fmt(row["post1"]["p99_ms"], 2),
                 _fmt(row["consume"]["messages_per_s"]), _fmt(row["consume"]["p99_ms"], 2)]
                for row in summary["soak"]]
        out += _table(["WAL", "s", "peak MiB", "final MiB", "post1/s", "p99 ms",
                       "consumed/s", "p99 ms"], rows)
    if summary["scale"]:
        out += ["", f"Several daemons on one port (SO_REUSEPORT sockets, one shared "
                    f"sqlite file), concurrency {settings['scale_concurrency']}"]
        rows = [[row["target"], LABELS.get(row["scenario"], row["scenario"]),
                 row["processes"], _fmt(row["requests_per_s"]),
                 _fmt(row["messages_per_s"]) if row["scenario"] != REFERENCE else "-",
                 _fmt(row["p50_ms"], 2), _fmt(row["p99_ms"], 2),
                 _fmt(row["speedup"], 2),
                 "/".join(f"{c:.2f}" for c in row["per_process_cpu"]),
                 _fmt(row["client_cpu"], 2, 4), _flags(row)]
                for row in summary["scale"]]
        rows.sort(key=lambda r: (r[0] != "ceiling", r[1], r[2]))
        out += _table(["target", "load", "procs", "req/s", "msg/s", "p50 ms", "p99 ms",
                       "x one", "cpu each", "wrk", "notes"], rows)
    if summary.get("pools"):
        out += ["", f"Pools (queues spread over pools; messages/s; ratio = the layout over "
                    f"one process on one sqlite file, MongoDB layouts over one MongoDB pool, "
                    f"median of the repeats), concurrency {settings['scale_concurrency']}"]
        rows = [[row["layout"], row["processes"], LABELS.get(row["scenario"], row["scenario"]),
                 _fmt(row["mps"]), _fmt(row["ratio"], 2)] for row in summary["pools"]]
        out += _table(["layout", "procs", "load", "msg/s", "ratio"], rows)
    if summary["line"]:
        out += ["", "Line endpoint (put/reserve/delete cycles; 1 connection: greenstalk, "
                    "more: an asyncio client; ratios: medians of each repeat's)"]
        rows = [[row["target"], row.get("connections", 1), _fmt(row["cycles_per_s"]),
                 _fmt(row["p50_ms"], 3), _fmt(row["p99_ms"], 3),
                 _fmt(row.get("server_cpu_us")),
                 *[_fmt(row.get(f"ratio_to_{ref}"), 3) for ref in LINE_REFERENCES]]
                for row in summary["line"]]
        out += _table(["server", "conns", "cycles/s", "p50 ms", "p99 ms", "cpu us/cycle",
                       "vs beanstalkd", "vs beanstalkd -b", "vs line ceiling"], rows)
    if summary.get("long_poll"):
        out += ["", "Long-poll claims (wake-up: a post to a waiting claim's 201)"]
        rows = [[row["waiters"], row["samples"], _fmt(row["p50_ms"], 3),
                 _fmt(row["p99_ms"], 3), _fmt(row["after_answer_p50_ms"], 3),
                 _fmt(row["after_answer_p99_ms"], 3)] for row in summary["long_poll"]]
        out += _table(["waiting", "samples", "p50 ms from send", "p99 ms from send",
                       "p50 ms after post's 201", "p99 ms"], rows)
    for row in summary.get("profile", []):
        busy = 100.0 * row["busy"] / row["samples"] if row["samples"] else 0.0
        out += ["", f"Profile: {LABELS.get(row['scenario'], row['scenario'])}, concurrency "
                    f"{row['concurrency']}, {row['requests_per_s']:.0f} req/s while sampled; "
                    f"busy in {busy:.0f}% of {row['samples']} samples; "
                    f"% of busy samples"]
        out.append("layers (self time): " + ", ".join(
            f"{name} {percent:.0f}%" for name, percent in row["layers"]))
        out.append("known costs (inclusive): " + ", ".join(
            f"{name} {percent:.0f}%" for name, percent in row["hot_spots"]))
        width = max(len(row["self"]), len(row["total"]))
        pad = [None] * width
        rows = [[f"{a[1]:5.1f}" if a else "", a[0] if a else "",
                 f"{b[1]:5.1f}" if b else "", b[0] if b else ""]
                for a, b in zip(row["self"] + pad, row["total"] + pad)][:width]
        out += _table(["self %", "function (self)", "total %", "function (total)"], rows)
    for note in meta.get("notes", []):
        out.append(f"note: {note}")
    return "\n".join(out) + "\n"


def document(meta, runs):
    """The result file's content: metadata, raw runs and their summary."""
    return {"schema": SCHEMA_VERSION, "meta": meta, "runs": runs, "summary": summarize(runs)}


def result_path(folder, meta):
    """``<folder>/<date>-<commit>[-<preset>].json`` (the full run has no suffix)."""
    suffix = "" if meta["settings"]["preset"] == "full" else f"-{meta['settings']['preset']}"
    return os.path.join(folder, f"{meta['date']}-{meta['commit']}{suffix}.json")


def write(result, folder):
    """Write ``result`` as JSON in ``folder``; return the path."""
    os.makedirs(folder, exist_ok=True)
    path = result_path(folder, result["meta"])
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(temporary, path)
    return path
