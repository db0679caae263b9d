"""The benchmark harness of marconi_tx (``make bench``, ``python -m bench``).

It measures, in one run on one machine, the daemon against two ceilings (a
bare ``twisted.web`` answer, ``bench.ceiling``, and a raw Twisted
``Protocol`` writing a fixed answer, ``bench.raw_ceiling``) with wrk as the load
generator, and prints a table that ``bench.report`` also writes to
``bench/results/<date>-<commit>.json``. Benchmarks are never tests: ``make
test`` only runs ``tests/test_bench_smoke.py``, which checks the harness's
parts and that a tiny run produces a well-formed result.

Modules: ``run`` (the plan and its sections), ``wrk`` (scripts, command,
output), ``servers`` (processes, shared ports), ``adopt`` (the socket
trampoline), ``prefill`` (deep queues written directly), ``probe``
(sequential latency), ``profile`` (py-spy), ``report`` (summary, table,
file), ``comparisons`` (ratios between servers: the ceilings, Zaqar),
``deps`` (installing wrk and beanstalkd), ``line_cycle`` (the line
endpoint against beanstalkd and ``line_ceiling``, a bare Twisted line
protocol).
"""
