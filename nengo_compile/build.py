"""Stage 2, build: Nengo's own builder turns the network into operators.

Parameters (encoders, decoders, gains, initial states) are exactly those that
``nengo.Simulator`` builds for the same network, dt and seed, because the same
builder makes them. Nengo's operator-merging optimizer is *not* run: merging is
our own analysis stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import nengo
import numpy as np
from nengo.builder import Model
from nengo.cache import NoDecoderCache
from nengo.exceptions import NengoException
from nengo.utils.numpy import maxint

from .errors import CompileError


@dataclass(frozen=True)
class Built:
    """The result of Nengo's builder, plus what we need to know about it."""

    model: Model
    network: nengo.Network
    dt: float
    seed: int
    operators: tuple
    probes: tuple  # (probe, signal) in model order

    @property
    def label(self) -> str:
        return self.network.label or ""


def build(network: nengo.Network, dt: float = 0.001, seed: int | None = None) -> Built:
    """Build ``network`` as ``nengo.Simulator`` would.

    ``seed`` acts as if ``network.seed`` were ``seed``. Without it, the
    network's own seed is used; an unseeded network gets a fresh random seed,
    as in Nengo, and that seed is recorded so the result can be reproduced.
    """
    if not dt > 0:
        raise CompileError(f"dt must be positive (got {dt})")
    if seed is None:
        seed = network.seed
    if seed is None:
        seed = int(np.random.randint(maxint))
    if not 0 <= seed < 2**32:
        raise CompileError(f"seed must be in [0, 2**32) (got {seed})")

    model = Model(dt=float(dt), label=f"{network}, dt={dt:f}", decoder_cache=NoDecoderCache())
    old_seed = network.seed
    network.seed = seed
    try:
        model.build(network)
    except NengoException as exc:
        raise CompileError(f"Nengo could not build the network: {exc}") from exc
    finally:
        network.seed = old_seed

    probes = tuple((probe, model.sig[probe]["in"]) for probe in model.probes)
    return Built(
        model=model,
        network=network,
        dt=float(dt),
        seed=int(seed),
        operators=tuple(model.operators),
        probes=probes,
    )
