"""Compile-time scaling: time per stage for models of ~1k to ~100k operators.

A chain of EnsembleArrays (`networks.chain_of_ensemble_arrays`) grows the
operator count linearly; for each size this prints the time of each compiler
stage, and the time per 1,000 operators, so near-linear growth shows as a flat
column. Run through ``python benchmarks/run.py --scaling``.
"""

from __future__ import annotations

import time


def scaling(sizes) -> list:
    from networks import chain_of_ensemble_arrays

    from nengo_compile import compile_network

    rows = []
    stages = ("build", "analyse", "plan", "lower", "render")
    print("\ncompile-time scaling (seconds; per 1k operators in brackets)")
    print(f"{'arrays':>6s} {'ops':>7s} " + " ".join(f"{s:>16s}" for s in stages))
    for n in sizes:
        net = chain_of_ensemble_arrays(n)
        start = time.perf_counter()
        compiled = compile_network(net, module_name="scaling_tf")
        total = time.perf_counter() - start
        ops = compiled.stats.ops_before
        row = {"arrays": n, "ops": ops, "total_s": total, **compiled.timings}
        rows.append(row)
        cells = " ".join(f"{row[s]:7.3f} [{1000 * row[s] / ops:6.4f}]" for s in stages)
        print(f"{n:6d} {ops:7d} {cells}", flush=True)
    return rows
