"""Nengo's ``test_spiking_types[base_type1]`` (``PoissonSpiking`` of
``RectifiedLinear``) over 20 seeds, nengo.Simulator against ours: the numbers
in TRIAGE.md. Run from the repository root (about a minute on 2 cores):

    .venv/bin/python tests/nengo_suite/measure_poisson.py
"""

from __future__ import annotations

import warnings

import nengo
import numpy as np
from pytest_rng.plugin import Seed

from nengo_compile import Simulator

NODE_ID = "nengo/tests/test_neurons.py::test_spiking_types[base_type1]"
DELAY = 5


def error(simulator, seed):
    """The larger of the test's two errors (its tolerance is 0.15)."""
    base_type = nengo.RectifiedLinear()
    with nengo.Network(seed=seed) as net:
        u = nengo.Node(lambda t: np.sin(2 * np.pi * t))
        a = nengo.Ensemble(400, 1, neuron_type=base_type)
        nengo.Connection(u, a)
        u_p = nengo.Probe(u, synapse=0.001 * DELAY)
        a_p = nengo.Probe(a, synapse=0.001 * DELAY)
    with simulator(net, seed=seed, progress_bar=False) as sim:
        sim.run(1.0)
    baseline = sim.data[a_p][DELAY:]
    a.neuron_type = nengo.PoissonSpiking(base_type)
    with simulator(net, seed=seed + 1, progress_bar=False) as sim:
        sim.run(1.0)
    x, target = sim.data[a_p][DELAY:], sim.data[u_p][:-DELAY]
    return max(np.abs(x - target).max(), np.abs(x - baseline).max())


def main():
    warnings.simplefilter("ignore")
    seeds = [Seed.generate(NODE_ID)] + [Seed.generate(NODE_ID, str(k)) for k in range(1, 20)]
    errors = {name: [] for name in ("nengo", "ours")}
    for seed in seeds:
        errors["nengo"].append(error(nengo.Simulator, seed))
        errors["ours"].append(error(Simulator, seed))
        print(f"seed {seed}: nengo {errors['nengo'][-1]:.3f}, ours {errors['ours'][-1]:.3f}")
    for name, values in errors.items():
        values = np.array(values)
        print(
            f"{name}: mean {values.mean():.3f} (sd {values.std(ddof=1):.3f}), "
            f"over 0.15 on {(values > 0.15).sum()} of {len(values)} seeds"
        )


if __name__ == "__main__":
    main()
