"""Benchmarks: compiled modules against nengo.Simulator, in the same run.

    python benchmarks/run.py                      # every network, the default grid
    python benchmarks/run.py --networks cconv,pes --batch 1 --xla off --steps 500
    python benchmarks/run.py --scaling            # compile-time scaling only
    python benchmarks/run.py --onednn 0           # TF_ENABLE_ONEDNN_OPTS=0 for this run
    python benchmarks/run.py --nengodl --xla on   # and NengoDL 3.6 (the peer venv)

For each network this measures, in one process:

* Nengo: ``nengo.Simulator`` construction (its build, optimizer and signal
  allocation), then steps/s of ``sim.run_steps`` (best of ``--repeats``);
* the compiler: each stage's time (``Compiled.timings``; ``build`` is Nengo's
  builder, the rest is ours);
* the compiled module (float32 by default), for each batch size and XLA
  setting: the first ``run`` (trace, XLA compile and the run itself) and the
  best of ``--repeats`` runs of ``--steps`` steps, as steps/s and throughput
  (batch x steps / s), and the ratio to Nengo's single-sample steps/s;
* with ``--nengodl`` (or ``--peer-python PATH``): NengoDL 3.6 in the peer venv
  (``benchmarks/peer.py``), a subprocess of this script per network, batch
  size and unroll (``--worker nengodl``; stopped after ``--peer-timeout``
  seconds), right after that network's other measurements:
  ``nengo_dl.Simulator(net, minibatch_size=batch, unroll_simulation=unroll)``
  with ``configure_settings(inference_only=True)`` and
  ``TF_ENABLE_ONEDNN_OPTS=0``, for each batch size and each ``--unroll``;
  a warm-up ``run_steps(--steps)`` (tracing), then the best of ``--repeats``
  (``sim.reset()`` between them, not timed). The best unroll per batch size is
  reported, with ratios ours / NengoDL and NengoDL / Nengo. Skipped, with a
  message, where the peer venv is missing.

Results go to stdout as a table and, with ``--json``, to a file.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # this checkout's nengo_compile

from peer import DEFAULT_PEER_PYTHON, peer_env, peer_missing, report, spawn_worker  # noqa: E402


def main(argv=None):
    from networks import NETWORKS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", default=",".join(NETWORKS), help="comma-separated names")
    parser.add_argument("--batch", default="1,64", help="comma-separated batch sizes")
    parser.add_argument("--xla", choices=("on", "off", "both"), default="both")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument(
        "--onednn", choices=("default", "0", "1"), default="default", help="TF_ENABLE_ONEDNN_OPTS"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="TF intra-op threads (0: TensorFlow's default)"
    )
    parser.add_argument("--no-nengo", action="store_true", help="skip nengo.Simulator")
    parser.add_argument("--scaling", action="store_true", help="only the compile-time scaling")
    parser.add_argument(
        "--scaling-sizes", default="12,40,120,400,1200", help="EnsembleArrays in the scaling chain"
    )
    parser.add_argument("--nengodl", action="store_true", help="also NengoDL 3.6, in the peer venv")
    parser.add_argument(
        "--peer-python", help=f"the peer venv's Python (implies --nengodl; {DEFAULT_PEER_PYTHON})"
    )
    parser.add_argument("--unroll", default="1,25", help="NengoDL's unroll_simulation values")
    parser.add_argument(
        "--peer-onednn",
        choices=("default", "0", "1"),
        default="0",
        help="TF_ENABLE_ONEDNN_OPTS for NengoDL (0: its faster setting here)",
    )
    parser.add_argument(
        "--peer-timeout",
        type=float,
        default=600,
        help="seconds per NengoDL configuration (network, batch, unroll) before it is stopped",
    )
    parser.add_argument("--worker", choices=("nengodl",), help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.worker:
        warnings.simplefilter("ignore")
        return report(nengodl_worker(args))
    peer = None
    if args.nengodl or args.peer_python:
        peer = args.peer_python or DEFAULT_PEER_PYTHON
        missing = peer_missing(peer)
        if missing:
            print(f"NengoDL skipped: {missing}", flush=True)
            peer = None

    if args.onednn != "default":
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = args.onednn
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.simplefilter("ignore")  # Nengo's gain/bias warnings in the basal ganglia

    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    print(machine_line(args))
    results = {"machine": machine_line(args), "networks": {}, "scaling": []}
    if args.scaling:
        from scaling import scaling

        results["scaling"] = scaling([int(n) for n in args.scaling_sizes.split(",")])
    else:
        batches = [int(b) for b in args.batch.split(",")]
        xlas = {"on": [True], "off": [False], "both": [False, True]}[args.xla]
        for name in args.networks.split(","):
            fn, description = NETWORKS[name]
            print(f"\n== {name}: {description}", flush=True)
            results["networks"][name] = bench_network(name, fn, batches, xlas, args)
            if peer:
                bench_nengodl(peer, name, args, results["networks"][name])
        print_table(results["networks"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def machine_line(args) -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")
    return (
        f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores ({cpu}), "
        f"load {os.getloadavg()[0]:.2f}, python {platform.python_version()}, "
        f"TF_ENABLE_ONEDNN_OPTS={onednn}, intra-op threads {args.threads or 'default'}, "
        f"steps={args.steps}, best of {args.repeats}"
    )


def best_of(repeats, fn):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_network(name, fn, batches, xlas, args) -> dict:
    import nengo
    import numpy as np

    from nengo_compile import compile_network
    from nengo_compile.write import write

    result = {"runs": []}
    net = fn()
    probe = net.all_probes[0]
    reference = None
    if not args.no_nengo:
        start = time.perf_counter()
        sim = nengo.Simulator(net, progress_bar=False, optimize=True)
        result["nengo_build_s"] = time.perf_counter() - start

        def run_nengo():
            sim.reset()
            sim.run_steps(args.steps)

        seconds = best_of(args.repeats, run_nengo)
        result["nengo_steps_per_s"] = args.steps / seconds
        reference = np.asarray(sim.data[probe])
        sim.close()
        print(
            f"nengo: build {result['nengo_build_s']:.2f} s, "
            f"{result['nengo_steps_per_s']:.0f} steps/s",
            flush=True,
        )

    module_name = f"bench_{name}_tf"
    net = fn()
    # stage times without Python's garbage collector, which otherwise walks the
    # objects of the runs above (0.1-0.3 s) in whichever stage it lands
    gc.collect()
    gc.disable()
    try:
        compiled = compile_network(net, dtype=args.dtype, module_name=module_name)
    finally:
        gc.enable()
    result["timings"] = dict(compiled.timings)
    result["ops"] = compiled.stats.ops_before
    result["stats"] = compiled.stats.lines()
    after_build = sum(v for k, v in compiled.timings.items() if k != "build")
    result["after_build_s"] = after_build
    stages = ", ".join(f"{k} {v:.3f}" for k, v in compiled.timings.items())
    print(f"compile: {stages} s; after build: {after_build:.3f} s", flush=True)
    for line in compiled.stats.lines():
        print(f"  {line}")

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{module_name}.py"
        write(path, path.with_suffix(".npz"), compiled.source, compiled.params)
        module = _import(path)
        for jit in xlas:
            for batch in batches:
                model = module.Model(jit_compile=jit)
                start = time.perf_counter()
                outputs = model.run(args.steps, batch_size=batch)
                first = time.perf_counter() - start
                again = functools.partial(model.run, args.steps, batch_size=batch)
                seconds = best_of(args.repeats, again)
                run = {
                    "xla": jit,
                    "batch": batch,
                    "first_call_s": first,
                    "steps_per_s": args.steps / seconds,
                    "throughput": batch * args.steps / seconds,
                    "step_us": 1e6 * _step_seconds(model, batch, args.repeats),
                }
                if reference is not None:
                    # compared through a 10 ms lowpass: unfiltered spiking outputs
                    # differ by a whole spike (1/dt) where float32 moves a spike a step
                    smooth = nengo.Lowpass(0.01)
                    got = smooth.filt(next(iter(outputs.values()))[0], dt=0.001, y0=0)
                    ref = smooth.filt(reference, dt=0.001, y0=0)
                    run["max_error"] = float(np.max(np.abs(got - ref)))
                    run["ratio"] = run["throughput"] / result["nengo_steps_per_s"]
                result["runs"].append(run)
                print(
                    f"xla={'on ' if jit else 'off'} batch={batch:3d}: first call {first:6.2f} s, "
                    f"{run['steps_per_s']:9.0f} steps/s, throughput {run['throughput']:10.0f}"
                    + (f", x{run['ratio']:.1f} nengo" if "ratio" in run else "")
                    + (f", filtered error {run['max_error']:.2g}" if "max_error" in run else "")
                    + f"; step() {run['step_us']:.0f} us",
                    flush=True,
                )
    return result


def nengodl_worker(args) -> dict:
    """In the peer venv: NengoDL's steps/s on one network (``--networks``), for
    each ``--batch`` (its ``minibatch_size``) and ``--unroll``."""
    import nengo_dl
    from networks import NETWORKS

    runs = []
    for batch in [int(b) for b in args.batch.split(",")]:
        for unroll in [int(u) for u in args.unroll.split(",")]:
            steps = -(-args.steps // unroll) * unroll  # run_steps runs whole unrolls
            net = NETWORKS[args.networks][0]()
            with net:
                nengo_dl.configure_settings(inference_only=True)
            start = time.perf_counter()
            options = dict(minibatch_size=batch, unroll_simulation=unroll, progress_bar=False)
            with nengo_dl.Simulator(net, **options) as sim:
                build = time.perf_counter() - start
                first = best_of(1, lambda: sim.run_steps(steps))  # noqa: B023
                times = []
                for _ in range(args.repeats):
                    sim.reset()
                    times.append(best_of(1, lambda: sim.run_steps(steps)))  # noqa: B023
            seconds = min(times)
            runs.append(
                {
                    "batch": batch,
                    "unroll": unroll,
                    "build_s": build,
                    "first_call_s": first,
                    "steps_per_s": steps / seconds,
                    "throughput": batch * steps / seconds,
                }
            )
    return {"version": nengo_dl.__version__, "runs": runs}


def bench_nengodl(python, name, args, ours) -> None:
    """NengoDL on one network, in the peer venv: its runs and the best unroll per
    batch size into ``ours["nengodl"]``, with ratios to ours and to Nengo."""
    env = peer_env(args.peer_onednn)
    result: dict = {"runs": [], "best": {}}
    # one process per configuration, so that one too slow (--peer-timeout) or
    # failing is reported as such and the others still run
    for batch in args.batch.split(","):
        for unroll in args.unroll.split(","):
            command = ["--worker", "nengodl", "--networks", name, "--batch", batch]
            command += ["--unroll", unroll, "--steps", str(args.steps)]
            command += ["--repeats", str(args.repeats)]
            label = f"nengodl unroll={int(unroll):2d} batch={int(batch):3d}"
            try:
                done = spawn_worker(
                    python, Path(__file__).resolve(), command, env, label, args.peer_timeout
                )
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                if isinstance(error, subprocess.TimeoutExpired):
                    failed, why = "timed_out", f"stopped after {args.peer_timeout:.0f} s"
                else:
                    failed, why = "error", str(error).splitlines()[0]
                print(f"{label}: {failed.replace('_', ' ')} ({why})", flush=True)
                result["runs"].append({"batch": int(batch), "unroll": int(unroll), failed: True})
                continue
            result["version"] = done["version"]
            (run,) = done["runs"]
            result["runs"].append(run)
            print(
                f"{label}: build {run['build_s']:5.1f} s, first call {run['first_call_s']:6.2f}"
                f" s, {run['steps_per_s']:9.0f} steps/s, throughput {run['throughput']:10.0f}",
                flush=True,
            )
            best = result["best"].get(batch)
            if best is None or run["throughput"] > best["throughput"]:
                result["best"][batch] = run
    ours["nengodl"] = result
    for batch, best in result["best"].items():
        line = f"nengodl batch={batch:>3s}: best unroll {best['unroll']}"
        if ours.get("nengo_steps_per_s"):
            line += f", x{best['throughput'] / ours['nengo_steps_per_s']:.2f} nengo"
        for run in ours["runs"]:
            if str(run["batch"]) == batch:
                xla = "on" if run["xla"] else "off"
                line += f"; ours (xla {xla}) x{run['throughput'] / best['throughput']:.2f}"
        print(line, flush=True)


#: ``Model.step`` calls timed per configuration (streaming: one call per step)
STEP_CALLS = 200


def _step_seconds(model, batch, repeats) -> float:
    """Seconds per ``model.step`` call, state passed from call to call."""
    state, _ = model.step(model.initial_state(batch))  # traced (and compiled) here

    def stream():
        current = state
        for _ in range(STEP_CALLS):
            current, _ = model.step(current)

    return best_of(repeats, stream) / STEP_CALLS


def _import(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def print_table(networks):
    if not networks:
        return
    print("\nthroughput (batch x steps/s) as a multiple of nengo.Simulator's steps/s")
    configs = sorted(
        {(r["xla"], r["batch"]) for res in networks.values() for r in res["runs"]},
        key=lambda c: (c[1], c[0]),
    )
    head = f"{'network':16s} {'nengo st/s':>10s}"
    for jit, batch in configs:
        head += f" {'b' + str(batch) + (' xla' if jit else ''):>9s}"
    head += f" {'nengo build':>11s} {'ours':>7s} {'ours %':>6s} {'1st call':>8s}"
    dl_batches = sorted(
        {int(b) for res in networks.values() for b in res.get("nengodl", {}).get("best", {})}
    )
    for batch in dl_batches:
        head += f" {'dl' + str(batch) + '/ng':>8s} {'unroll':>6s}"
        for jit, b in configs:
            if b == batch:
                head += f" {'b' + str(b) + ('x' if jit else '') + '/dl':>8s}"
    print(head)
    for name, res in networks.items():
        runs = {(r["xla"], r["batch"]): r for r in res["runs"]}
        ref = res.get("nengo_steps_per_s")
        line = f"{name:16s} {ref or 0:10.0f}"
        for config in configs:
            r = runs.get(config)
            line += f" {r.get('ratio', r['throughput']):9.1f}" if r else f" {'':9s}"
        build = res["timings"]["build"]
        firsts = [r["first_call_s"] for r in res["runs"]]
        after = res["after_build_s"]
        line += f" {build:10.2f}s {after:6.2f}s {100 * after / build:5.1f}%"
        line += f" {max(firsts):7.2f}s"
        dl = res.get("nengodl", {}).get("best", {})
        for batch in dl_batches:
            best = dl.get(str(batch))
            ours = [runs.get(c) for c in configs if c[1] == batch]
            if best is None:  # every unroll timed out or failed
                line += f" {'-':>8s} {'-':>6s}" + f" {'-':>8s}" * len(ours)
                continue
            line += f" {best['throughput'] / ref:8.2f}" if ref else f" {best['throughput']:8.0f}"
            line += f" {best['unroll']:6d}"
            for r in ours:
                line += f" {r['throughput'] / best['throughput']:8.2f}" if r else f" {'':8s}"
        print(line)


if __name__ == "__main__":
    main()
