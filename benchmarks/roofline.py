"""Batch throughput against the machine: each network's achieved FLOP/s at a
batch size, against this machine's measured peak (a large float32 matmul in
TensorFlow, in the same run). Issue 14, item 4.

    python benchmarks/roofline.py                       # integrator, cconv; batch 64
    python benchmarks/roofline.py --networks integrator,cconv,basal_ganglia --batch 64,256

What counts as a floating-point operation: a product's multiply-adds (2 per
stored weight: the dense matrix, the dense blocks, or the sparse nonzeros
that the module multiplies, per batch row and step) and each neuron's update
(`NEURON_FLOPS` per neuron: the arithmetic of its template, counting a
transcendental function as one); every other group as one per value it
writes. The ratio is achieved / peak.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: floating-point operations per neuron and step, by neuron template (the
#: arithmetic of templates/neurons/<name>.py.j2, a transcendental counting one)
NEURON_FLOPS = {
    "lif": 17,
    "lif_rate": 8,
    "rectified_linear": 2,
    "spiking_rectified_linear": 5,
    "adaptive_lif": 22,
    "sigmoid": 4,
    "tanh": 2,
}


def count_flops(program) -> dict:
    """Floating-point operations per batch row and step, by kind of group."""
    counts = {"products": 0, "neurons": 0, "other": 0}
    for g in program.groups:
        v = g.values
        form = getattr(type(v), "form", None)
        if form == "dense":
            counts["products"] += 2 * v.shape[0] * v.shape[1]
        elif form == "sparse":
            counts["products"] += 2 * v.nnz
        elif form == "blocks":
            counts["products"] += sum(
                2 * b.blocks[0] * b.blocks[1] * b.blocks[2] for b in v.buckets
            )
        elif hasattr(v, "neuron_template"):
            name = Path(v.neuron_template).name.split(".")[0]
            size = sum(a.size for a in g.writes.values()) // (1 + len(v.state))
            counts["neurons"] += NEURON_FLOPS.get(name, 10) * size
        else:
            counts["other"] += sum(a.size for a in g.writes.values())
    return counts


def peak_flops(n: int = 2048, repeats: int = 5) -> float:
    """This machine's float32 matmul FLOP/s in TensorFlow (best of ``repeats``)."""
    import tensorflow as tf

    a = tf.random.stateless_normal([n, n], [0, 1])
    b = tf.random.stateless_normal([n, n], [0, 2])
    matmul = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
    matmul(a, b).numpy()
    best = min(_timed(lambda: matmul(a, b).numpy()) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _module(compiled, folder: Path):
    from nengo_compile.write import import_generated, write

    path = folder / "roofline_tf.py"
    write(path, path.with_suffix(".npz"), compiled.source, compiled.params)
    return import_generated(path.stem, path)


def main(argv=None) -> list:
    from networks import NETWORKS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", default="integrator_lif,cconv")
    parser.add_argument("--batch", default="64")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from nengo_compile import compile_network

    peak = peak_flops()
    print(f"peak: {peak / 1e9:.1f} GFLOP/s (2048x2048 float32 matmul, TensorFlow)")
    columns = ("batch", "MFLOP/step", "steps/s", "GFLOP/s", "of peak")
    print(f"{'network':16s} " + " ".join(f"{c:>10s}" for c in columns))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.networks.split(","):
            compiled = compile_network(NETWORKS[name][0](), module_name="roofline_tf")
            counts = count_flops(compiled.program)
            per_row = sum(counts.values())
            module = _module(compiled, Path(tmp))
            for batch in (int(b) for b in args.batch.split(",")):
                model = module.Model(jit_compile=True)

                def run(model=model, batch=batch):
                    model.run(args.steps, batch_size=batch)

                run()  # tracing and XLA compilation
                best = min(_timed(run) for _ in range(args.repeats))
                rate = args.steps / best
                achieved = per_row * batch * rate
                rows.append(
                    dict(
                        network=name,
                        batch=batch,
                        counts=counts,
                        steps_per_s=rate,
                        flops=achieved,
                        peak=peak,
                    )
                )
                print(
                    f"{name:16s} {batch:10d} {per_row * batch / 1e6:10.2f} {rate:10.0f} "
                    f"{achieved / 1e9:10.2f} {achieved / peak:10.1%}"
                )
            flops = ", ".join(f"{k} {v:,}" for k, v in counts.items())
            print(f"{'':16s} FLOP per row and step: {flops}")
    return rows


if __name__ == "__main__":
    main()
