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


def build(
    network: nengo.Network | None,
    dt: float = 0.001,
    seed: int | None = None,
    model: Model | None = None,
) -> Built:
    """Build ``network`` as ``nengo.Simulator`` would.

    ``seed`` acts as if ``network.seed`` were ``seed``. Without it, the
    network's own seed is used; an unseeded network gets a fresh random seed,
    as in Nengo, and that seed is recorded so the result can be reproduced.

    ``model``, as in ``nengo.Simulator``: a Model to build ``network`` into
    (its ``dt`` and decoder cache are used), or, without a network, a Model
    that is already built (its ``toplevel`` network is then the network; a
    Model of hand-added operators has none, and may have ``dt=0``, as
    ``nengo.Simulator`` allows).
    """
    if model is not None and network is None:
        return _built(model)
    assert network is not None, "build needs a network or a built model"
    if model is not None:
        dt = model.dt
    if not dt > 0:
        raise CompileError(f"dt must be positive (got {dt})")
    if seed is None:
        seed = network.seed
    # An unseeded network stays unseeded (Nengo then draws its seed and, as in
    # nengo.Simulator, does not use the decoder cache); the seed Nengo drew is
    # recorded, and building with it gives the same parameters.
    if seed is not None and not 0 <= seed < 2**32:
        raise CompileError(f"seed must be in [0, 2**32) (got {seed})")

    if model is None:
        model = Model(dt=float(dt), label=f"{network}, dt={dt:f}", decoder_cache=NoDecoderCache())
    old_seed = network.seed
    network.seed = seed
    try:
        model.build(network)
    except NengoException as exc:
        raise CompileError(f"Nengo could not build the network: {exc}") from exc
    finally:
        network.seed = old_seed

    return _built(model, network, seed)


def _built(model: Model, network: nengo.Network | None = None, seed: int | None = None) -> Built:
    network = model.toplevel if network is None else network
    if not model.dt >= 0:
        raise CompileError(f"a prebuilt model needs dt >= 0 (got {model.dt})")
    if network is None:
        # operators added to a Model by hand, as Nengo's own tests do: the
        # network only names things and seeds them, so an empty one stands in
        # (no labels; the seed drawn as for an unseeded network)
        network = nengo.Network(add_to_container=False)
        seed = np.random.randint(2**31 - 1) if seed is None else seed
    if seed is None:
        seed = model.seeds[network]
    probes = tuple((probe, model.sig[probe]["in"]) for probe in model.probes)
    return Built(
        model=model,
        network=network,
        dt=float(model.dt),
        seed=int(seed),
        operators=tuple(model.operators),
        probes=probes,
    )
