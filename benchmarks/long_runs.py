"""Long runs: resident memory and values over 10^6 steps in pieces and 20,000 step() calls.

    python benchmarks/long_runs.py [--network integrator_lif] [--steps 1000000]
        [--piece 10000] [--calls 20000] [--dtype float32]

A user streams a long simulation as ``run`` in pieces, carrying the state, or
as ``step`` calls. This script does both on a benchmark network (batch 1, XLA
where the model allows), prints the resident set size (RSS) after warm-up and
at the end, and checks the values: the first pieces against one run of the
same length (to float32 rounding: one graph of another length may round
differently), and ``step`` calls against ``run``. Not a test: it takes minutes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def main(argv=None) -> int:
    from networks import NETWORKS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--network", default="integrator_lif", choices=sorted(NETWORKS))
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--piece", type=int, default=10_000)
    p.add_argument("--calls", type=int, default=20_000)
    p.add_argument("--dtype", default="float32")
    args = p.parse_args(argv)

    import tensorflow as tf  # noqa: F401  (imported before the first measurement)

    from nengo_compile import compile_network
    from nengo_compile.write import write

    net = NETWORKS[args.network][0]()
    compiled = compile_network(net, dtype=args.dtype, module_name="long_tf")
    folder = Path(tempfile.mkdtemp())
    path = folder / "long_tf.py"
    write(path, path.with_suffix(".npz"), compiled.source, compiled.params)
    sys.path.insert(0, str(folder))
    import long_tf

    model = long_tf.Model()
    probe = next(iter(long_tf.PROBES))
    print(f"{args.network}, {args.dtype}, XLA {model.jit_compile}")

    # ---- run in pieces
    reference = model.run(3 * args.piece)[probe]  # one run, for the values
    state = model.initial_state(1)
    pieces = []
    n_pieces = args.steps // args.piece
    start = time.perf_counter()
    for i in range(n_pieces):
        out, state = model.run(args.piece, state=state, return_state=True)
        if i < 3:
            pieces.append(out[probe])
        if i == 2:
            warm = rss_mb()
    seconds = time.perf_counter() - start
    end = rss_mb()
    joined = np.concatenate(pieces, axis=1)
    scale = max(1.0, float(np.abs(reference).max()))
    diff = float(np.abs(joined - reference).max())
    print(
        f"run: {n_pieces} pieces of {args.piece} steps ({n_pieces * args.piece} steps) in "
        f"{seconds:.1f} s; RSS after 3 pieces {warm:.0f} MB, at the end {end:.0f} MB "
        f"(growth {end - warm:+.1f} MB); first 3 pieces against one run: max |diff| "
        f"{diff:.2e} (scale {scale:.2f})"
    )

    # ---- step calls
    state = model.initial_state(1)
    values = []
    start = time.perf_counter()
    for i in range(args.calls):
        state, probes = model.step(state)
        if i < 1000:
            values.append(np.asarray(probes[probe]))
        if i == 999:
            warm = rss_mb()
    seconds = time.perf_counter() - start
    end = rss_mb()
    stepped = np.stack(values, axis=1)
    diff = float(np.abs(stepped - reference[:, :1000]).max())
    print(
        f"step: {args.calls} calls in {seconds:.1f} s ({1e6 * seconds / args.calls:.0f} us a "
        f"call); RSS after 1000 calls {warm:.0f} MB, at the end {end:.0f} MB (growth "
        f"{end - warm:+.1f} MB); first 1000 steps against run: max |diff| {diff:.2e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
