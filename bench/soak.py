"""Long-running loads: the WAL soak and claims behind live claims.

``wal_soak`` posts and consumes one queue at full load (two wrk runs at
once) for minutes, sampling the size of the sqlite ``-wal`` file every
second, once with the WAL bound (``wal_max_bytes``) and once without it.

``claim_head`` tags the head of a prefilled queue as claimed (live claims,
an hour long), as 50,000 consumers that never delete would leave it.
"""

import os
import threading
import time

from bench import prefill, servers, wrk

#: (sqlite wal_max_bytes, label): the default bound, and none (the earlier
#: behaviour: PASSIVE checkpoints only).
WAL_SETTINGS = ((64 * 1024 * 1024, "bounded"), (0, "unbounded"))
#: Longest unbounded run: its WAL grows by hundreds of MiB a minute, and a
#: minute shows that and its throughput.
UNBOUNDED_SECONDS = 60


def seconds_of(wal_max_bytes, soak_seconds):
    """How long the soak with ``wal_max_bytes`` runs."""
    return soak_seconds if wal_max_bytes else min(soak_seconds, UNBOUNDED_SECONDS)


def claim_head(path, queue, count):
    """Tag the ``count`` oldest messages of ``queue`` with live claims."""
    driver = prefill.open_driver(path)
    try:
        db = driver.read()
        qid = driver.queue_id(db, None, queue)
        prefill.begin(db)
        db.execute("UPDATE messages SET claim_id='bench-live', claim_expires=? "
                   "WHERE id IN (SELECT id FROM messages WHERE queue_id=? ORDER BY id "
                   "LIMIT ?)", (int(time.time()) + 3600, qid, count))
        db.execute("COMMIT")
    finally:
        driver.close()


def write_config(workdir, name, wal_max_bytes):
    path = os.path.join(workdir, f"{name}.conf")
    with open(path, "w") as f:
        f.write(f"[drivers:storage:sqlite]\nwal_max_bytes = {wal_max_bytes}\n")
    return path


def sample_size(path, stop, sizes, interval=1.0):
    """Append the size of ``path`` to ``sizes`` every ``interval`` s until ``stop``."""
    while not stop.wait(interval):
        try:
            sizes.append(os.stat(path).st_size)
        except FileNotFoundError:
            sizes.append(0)


def wal_soak(workdir, db_path, wal_max_bytes, label, seconds, params, concurrency, log):
    """
    One soak: a daemon with ``wal_max_bytes``, POST 1 and the consume cycle
    on one queue at once for ``seconds``; the record of the run.
    """
    config = write_config(workdir, f"soak-{label}", wal_max_bytes)
    queue = params["queue"]
    prefill.fill(db_path, queue, 10000)
    with servers.start_marconi(workdir, db_path, name=f"marconi-soak-{label}",
                               config=config) as server:
        sizes, results, errors = [], {}, []
        stop = threading.Event()
        sampler = threading.Thread(target=sample_size, args=(db_path + "-wal", stop, sizes))

        def load(name, lua, batch):
            try:
                results[name] = wrk.run(server.url + "/", lua, {**params, "batch": batch},
                                        concurrency, seconds)
            except wrk.WrkError as e:
                errors.append(f"{name}: {e}")

        loads = [threading.Thread(target=load, args=("post1", "post", 1)),
                 threading.Thread(target=load, args=("consume", "consume", 10))]
        sampler.start()
        for thread in loads:
            thread.start()
        for thread in loads:
            thread.join()
        stop.set()
        sampler.join()
    if errors:
        raise wrk.WrkError("; ".join(errors))
    record = {"section": "soak", "label": label, "wal_max_bytes": wal_max_bytes,
              "seconds": seconds, "concurrency": concurrency,
              "wal_peak_bytes": max(sizes, default=0),
              "wal_final_bytes": sizes[-1] if sizes else 0,
              "wal_samples": sizes,
              "post1": results["post1"].as_dict(), "consume": results["consume"].as_dict()}
    log(f"  soak {label:9} {seconds} s: WAL peak {record['wal_peak_bytes'] / 2**20:.1f} MiB, "
        f"final {record['wal_final_bytes'] / 2**20:.1f} MiB; post1 {results['post1'].rps:.0f} "
        f"req/s p99 {results['post1'].latency_ms['p99']:.1f} ms; consume "
        f"{results['consume'].mps:.0f} msg/s p99 {results['consume'].latency_ms['p99']:.1f} ms")
    return record
