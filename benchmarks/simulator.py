"""Benchmark: ``nengo_compile.Simulator`` against ``nengo.Simulator`` and the
generated module's own ``run``, per network, in one process.

    python benchmarks/simulator.py                           # integrator_lif, cconv
    python benchmarks/simulator.py --networks all --repeats 5

For each network, at batch 1 and Nengo's precision (float64, the Simulator's
default; ``--dtype float32`` for the Simulator and its module), without
progress bars:

* Nengo: ``nengo.Simulator(net)``; the best of ``--repeats`` ``sim.run(1.0)``
  (``sim.reset()`` between them), as steps/s;
* Simulator: ``nengo_compile.Simulator(net)``; ``sim.run(1.0)`` calls with
  ``sim.reset()`` between: the first (its time includes tracing the loop),
  the second (without XLA: the Simulator's first ``XLA_AFTER`` = 2,000 steps),
  the third (where the switch to XLA happens: its time includes the XLA
  compilation), then the best of ``--repeats`` further ones (steady state);
* module: the Simulator's own generated module, ``Model()`` (its defaults:
  XLA where the model allows), the first ``run(1000)`` and the best of
  ``--repeats`` further ones, alternating with the Simulator's steady runs.

Ratios: Simulator steady over Nengo, and module over Simulator (both steady).
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # this checkout's nengo_compile

from run import best_of as _best  # noqa: E402  (benchmarks/run.py, beside this file)


def measure(name, build, repeats, seconds, dtype=None):
    import nengo

    import nengo_compile

    steps = int(round(seconds / 0.001))
    row = {"network": name}

    with nengo.Simulator(build(), progress_bar=False) as sim:
        sim.run(seconds)  # warm-up

        def nengo_run():
            sim.reset()
            sim.run(seconds)

        row["nengo"] = steps / _best(repeats, nengo_run)

    with nengo_compile.Simulator(build(), progress_bar=False, dtype=dtype) as sim:

        def sim_run():
            sim.reset()
            sim.run(seconds)

        row["sim_first_s"] = _best(1, sim_run)
        row["sim_graph"] = steps / _best(1, sim_run)
        row["sim_switch_s"] = _best(1, sim_run)
        row["sim_xla"] = sim._xla is not None
        model = sim._module.Model()
        row["module_first_s"] = _best(1, lambda: model.run(steps))
        row["module_xla"] = model.jit_compile
        # steady runs alternate, so that both see the same load
        sim_times, module_times = [], []
        for _ in range(repeats):
            sim_times.append(_best(1, sim_run))
            module_times.append(_best(1, lambda: model.run(steps)))
        row["sim"] = steps / min(sim_times)
        row["module"] = steps / min(module_times)
    return row


def main(argv=None):
    from networks import NETWORKS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--networks", default="integrator_lif,cconv", help="comma-separated, or all"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--dtype", choices=("float32", "float64"), default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.simplefilter("ignore")
    names = list(NETWORKS) if args.networks == "all" else args.networks.split(",")
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.2f}, run({args.seconds}), best of {args.repeats}, "
        f"dtype {args.dtype or 'float64 (Nengo precision)'}"
    )
    header = (
        "| network | Nengo steps/s | Simulator: first run (s) | 2nd run steps/s | "
        "3rd run (s) | steady steps/s | module: first run (s) | steady steps/s | "
        "Simulator / Nengo | module / Simulator |"
    )
    print(header)
    print("|" + "---|" * 10)
    for name in names:
        row = measure(name, NETWORKS[name][0], args.repeats, args.seconds, args.dtype)
        xla = " (XLA)" if row["sim_xla"] else ""
        print(
            f"| {name} | {row['nengo']:,.0f} | {row['sim_first_s']:.2f} | "
            f"{row['sim_graph']:,.0f} | {row['sim_switch_s']:.2f} | "
            f"{row['sim']:,.0f}{xla} | {row['module_first_s']:.2f} | {row['module']:,.0f}"
            f"{' (XLA)' if row['module_xla'] else ''} | {row['sim'] / row['nengo']:.1f} | "
            f"{row['module'] / row['sim']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
