"""The compile cache (issue 14, item 2): per network, seconds of a compile
without the cache, of the first compile with it (a miss: the key and the
entry written) and of a second (a hit), by stage; and ``nengo-compile`` of
an example file twice, wall time.

    python benchmarks/compile_cache.py
    python benchmarks/compile_cache.py --networks cconv --chain 120
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

AFTER_BUILD = ("rewrite", "analyse", "translate", "plan", "lower", "render")


def _compile(make, cache):
    from nengo_compile import compile_network

    net = make()
    start = time.perf_counter()
    compiled = compile_network(net, module_name="cached_tf", cache=cache)
    total = time.perf_counter() - start
    t = compiled.timings
    stages = sum(t.get(name, 0.0) for name in AFTER_BUILD)
    return total, t["build"], stages, t.get("key", 0.0), t.get("cache", 0.0)


def main(argv=None) -> None:
    from networks import NETWORKS, chain_of_ensemble_arrays

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", default="integrator_lif,cconv,basal_ganglia")
    parser.add_argument("--chain", type=int, default=120, help="EnsembleArrays in the chain")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    makers = {name: NETWORKS[name][0] for name in args.networks.split(",")}
    if args.chain:
        makers[f"chain{args.chain}"] = lambda: chain_of_ensemble_arrays(args.chain)
    print(
        f"{'network':16s} {'build':>7s} {'stages':>7s} | {'miss key':>8s} {'store':>7s} | "
        f"{'hit key':>7s} {'load':>6s} {'after build':>11s} | saved"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in makers.items():
            where = Path(tmp) / name
            total, build, stages, _, _ = _compile(make, False)
            miss = _compile(make, where)
            hit = _compile(make, where)
            store = miss[0] - miss[1] - miss[2] - miss[3] - miss[4]
            after = hit[0] - hit[1]
            print(
                f"{name:16s} {build:7.3f} {stages:7.3f} | {miss[3]:8.3f} {store:7.3f} | "
                f"{hit[3]:7.3f} {hit[4]:6.3f} {after:11.3f} | {1 - after / (total - build):.0%}"
            )
        example = HERE.parent / "examples" / "communication_channel.py"
        out = Path(tmp) / "cli" / "channel_tf.py"
        env_cache = str(Path(tmp) / "cli-cache")
        for attempt in ("first", "second"):
            start = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", "nengo_compile", str(example), "-o", str(out)],
                env={**os.environ, "NENGO_COMPILE_CACHE": env_cache},
                capture_output=True,
                text=True,
                check=True,
            )
            wall = time.perf_counter() - start
            print(
                f"nengo-compile {example.name} ({attempt}): {wall:.2f} s wall;",
                result.stdout.strip(),
            )


if __name__ == "__main__":
    main()
