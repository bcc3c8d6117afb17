"""Replica scaling of ``run(strategy=...)``: throughput of a batch-512 run of
benchmark networks on 1 and 2 replicas.

Configurations (each in processes of its own: logical devices must be set
before TensorFlow starts):

- ``single``: ``run`` on one device, no strategy, in one part (one replica's
  work: XLA's kernels run on one thread);
- ``plain``: ``run`` on one device, no strategy, as it runs by default (with
  XLA, a batch this large in parts, one per core, in threads);
- ``mirrored1``: ``MirroredStrategy`` over one device (the strategy's overhead);
- ``mirrored2``: ``MirroredStrategy`` over two logical CPU devices;
- ``workers2``: ``MultiWorkerMirroredStrategy``, two local worker processes
  (127.0.0.1), one replica each.

Efficiency = throughput on 2 / (2 x throughput on 1 (``single``)); the
strategy's overhead: ``single`` against ``mirrored1``, and the time of a
1-step call (the fixed cost per call: splitting, dispatch to the replicas,
gathering). Logical CPU
devices share the machine's cores (each runs its replica's XLA kernels on one
thread): the scaling is bounded by the cores. Each model runs with XLA (its
default). ``python benchmarks/distribute.py [--steps N] [--networks a,b]``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BATCH = 512


def child(config, module_path, steps, repeats):
    """One process's measurement: seconds per run (best of ``repeats``)."""
    import numpy as np
    import tensorflow as tf

    if config.startswith("mirrored"):
        n = int(config[-1])
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * max(n, 1)
        )
        strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(n)])
    elif config == "workers2":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = None
    sys.path.insert(0, str(Path(module_path).parent))
    module = __import__(Path(module_path).stem)
    if strategy is None:
        model = module.Model()
        if config == "single":
            model._parts = lambda batch: 1
    else:
        with strategy.scope():
            model = module.Model()
    rng = np.random.RandomState(0)
    inputs = {
        k: rng.uniform(-1, 1, (BATCH, steps, n)).astype("float32") for k, n in model.INPUTS.items()
    }
    start = time.perf_counter()
    batch = None if inputs else BATCH
    model.run(steps, inputs, batch_size=batch, strategy=strategy)  # tracing, XLA compilation
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.run(steps, inputs, batch_size=batch, strategy=strategy)
        times.append(time.perf_counter() - start)
    model.run(1, {k: v[:, :1] for k, v in inputs.items()}, batch_size=batch, strategy=strategy)
    calls = []
    for _ in range(5):
        start = time.perf_counter()
        model.run(1, {k: v[:, :1] for k, v in inputs.items()}, batch_size=batch, strategy=strategy)
        calls.append(time.perf_counter() - start)
    print(json.dumps({"first_s": first, "run_s": min(times), "call_s": min(calls)}))


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def measure(config, module_path, steps, repeats, timeout=600) -> dict:
    command = [sys.executable, __file__, "--child", config, str(module_path)]
    command += ["--steps", str(steps), "--repeats", str(repeats)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    envs = [env]
    if config == "workers2":
        cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
        envs = [
            {
                **env,
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": i}}
                ),
            }
            for i in range(2)
        ]
    processes = [subprocess.Popen(command, env=e, stdout=subprocess.PIPE, text=True) for e in envs]
    try:
        outputs = [p.communicate(timeout=timeout)[0] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    results = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    return {k: max(r[k] for r in results) for k in results[0]}  # the slower worker


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "MODULE"))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--networks", default="integrator_lif,random")
    args = parser.parse_args()
    if args.child:
        return child(*args.child, args.steps, args.repeats)
    sys.path.insert(0, str(HERE))
    from networks import NETWORKS

    from nengo_compile import compile_network
    from nengo_compile.write import write

    folder = Path(tempfile.mkdtemp(prefix="distribute_bench_"))
    configs = ("single", "plain", "mirrored1", "mirrored2", "workers2")
    print(f"batch {BATCH}, {args.steps} steps; step/s x rows (best of {args.repeats})")
    print(
        f"{'network':16s} " + " ".join(f"{c:>18s}" for c in configs) + "  eff(mirrored2, workers2)"
    )
    for name in args.networks.split(","):
        build, _ = NETWORKS[name]
        compiled = compile_network(build(), module_name=f"{name}_dist_tf")
        path = folder / f"{name}_dist_tf.py"
        write(path, path.with_suffix(".npz"), compiled.source, compiled.params)
        rates, firsts, calls = {}, [], []
        cells = []
        for config in configs:
            r = measure(config, path, args.steps, args.repeats)
            rates[config] = BATCH * args.steps / r["run_s"]
            cells.append(f"{rates[config]:9.0f} ({r['run_s']:5.2f} s)")
            firsts.append(f"{r['first_s']:17.1f}s")
            calls.append(f"{1000 * r['call_s']:16.1f}ms")
        eff = [rates[c] / (2 * rates["single"]) for c in ("mirrored2", "workers2")]
        overhead = rates["single"] / rates["mirrored1"] - 1
        print(
            f"{name:16s} "
            + " ".join(f"{c:>18s}" for c in cells)
            + f"  {eff[0]:.2f}, {eff[1]:.2f}; 1-replica strategy overhead {100 * overhead:+.0f}%"
        )
        print(f"{'  first call':16s} " + " ".join(firsts))
        print(f"{'  1-step call':16s} " + " ".join(calls), flush=True)


if __name__ == "__main__":
    main()
