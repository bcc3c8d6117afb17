"""Streaming latency at batch 1 (issue 14, item 5): ``Model.step`` per call,
``run(k, state=..., return_state=True)`` per step for a few ``k`` (steps per
call, carrying the state), and the in-loop step time (``run(1000)`` / 1000).

    python benchmarks/latency.py                          # integrator, basal ganglia; XLA
    python benchmarks/latency.py --networks cconv --calls 500
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from roofline import _module  # noqa: E402


def _per_call(fn, calls: int, repeats: int) -> float:
    """Best of ``repeats`` mean seconds per call of ``fn`` over ``calls`` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main(argv=None) -> list:
    from networks import NETWORKS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", default="integrator_lif,basal_ganglia")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--per-call", default="1,4,16,64", help="steps per run call")
    parser.add_argument("--xla", choices=("on", "off"), default="on")
    args = parser.parse_args(argv)

    from nengo_compile import compile_network

    ks = [int(k) for k in args.per_call.split(",")]
    print(
        f"{'network':16s} {'step()':>9s} "
        + " ".join(f"{f'run({k})':>9s}" for k in ks)
        + f" {'in loop':>9s}   (microseconds per step, batch 1, XLA {args.xla})"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.networks.split(","):
            compiled = compile_network(NETWORKS[name][0](), module_name="roofline_tf")
            module = _module(compiled, Path(tmp))
            model = module.Model(jit_compile=args.xla == "on")
            holder = {"state": model.initial_state(1)}

            def step(model=model, holder=holder):
                holder["state"], _ = model.step(holder["state"])

            for _ in range(20):
                step()
            row = {"network": name, "step_us": 1e6 * _per_call(step, args.calls, args.repeats)}
            for k in ks:

                def run(model=model, holder=holder, k=k):
                    _, holder["state"] = model.run(k, state=holder["state"], return_state=True)

                run()  # tracing (and XLA compilation) for this k
                calls = max(args.calls // k, 10)
                row[f"run{k}_us"] = 1e6 * _per_call(run, calls, args.repeats) / k
            model.run(1000)
            loop = _per_call(lambda model=model: model.run(1000), 1, args.repeats)
            row["loop_us"] = 1e6 * loop / 1000
            rows.append(row)
            print(
                f"{name:16s} {row['step_us']:9.0f} "
                + " ".join(f"{row[f'run{k}_us']:9.0f}" for k in ks)
                + f" {row['loop_us']:9.1f}"
            )
    return rows


if __name__ == "__main__":
    main()
