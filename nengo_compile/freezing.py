"""Trained parameters back into Nengo: `freeze` (NengoDL's ``sim.freeze_params``).

A module compiled with ``trainable=True`` trains Nengo's built values: an
ensemble's scaled encoders and biases, and a connection's weights (its
decoders combined with its transform, or its transform). `freeze` writes
them into the network's objects so that Nengo's builder builds exactly them
again, and sets everything else whose built value depended on a changed
ensemble (decoders Nengo would solve again) to the value it had, so that
``nengo.Simulator(network)`` runs the trained model.
"""

from __future__ import annotations

import re

import nengo
import numpy as np
from nengo.solvers import NoSolver

from .build import build

_KEY = re.compile(r"(ensembles|connections)\[(\d+)\]")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class FullWeights(NoSolver):
    """``NoSolver`` for a connection that solves for its full weight matrix
    (``solver.weights=True``): Nengo uses ``values.T`` as the weights
    ``(post.n_neurons, pre.n_neurons)`` as they are, without the post
    ensemble's encoders (a non-compositional solver)."""

    compositional = False

    def __init__(self, values=None):
        super().__init__(values, weights=True)


class ZeroFunction:
    """A connection function returning zeros of ``size`` (the decoders of a
    frozen connection hold its function and transform; its function only
    tells Nengo the size)."""

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, x):
        return np.zeros(self.size)

    def __repr__(self) -> str:
        return f"ZeroFunction({self.size})"


def freeze(network: nengo.Network, model) -> None:
    """Write the trained values of ``model`` (a compiled module's ``Model``,
    compiled with ``trainable=True`` from ``network``) into ``network``, so
    that ``nengo.Simulator(network)`` runs the trained model (float64: within
    1e-9 of the module).

    Per object (``TRAINABLE`` names them by their index in
    ``network.all_ensembles`` / ``network.all_connections``):

    - an ensemble whose encoders or bias trained gets ``gain`` (the built
      one), ``bias`` (the trained or the built one), ``encoders`` (the trained
      scaled encoders divided by ``gain / radius``, or the built ones) and
      ``normalize_encoders = False``; ``max_rates`` and ``intercepts`` go back
      to their defaults (the gains and biases fix them);
    - a connection whose weights ``W`` trained: from an Ensemble (decoded),
      ``solver = NoSolver(W.T)``, ``function`` returning zeros of
      ``W.shape[0]`` and ``transform = None`` (W holds function and
      transform); with a full-weight solver (``solver.weights``),
      `FullWeights(W.T)`; from a Node or Neurons, ``transform = W``;
    - decoded connections and decoded-output probes from a changed ensemble,
      and full-weight connections into one, keep their built weights the same
      way (Nengo would solve them again with the new encoders and biases).

    Gains come from building ``network`` with Nengo's builder at the module's
    ``SEED`` and ``DT``. If ``network.seed`` is not ``model.SEED``, it is set
    to ``model.SEED`` (``--seed N`` means "as if ``network.seed`` were N"), so
    that everything that did not train builds as the module has it.

    Raises ValueError, naming the object, where ``network`` does not match
    the module (an index out of range, another type, label or shape), before
    changing anything.
    """
    table = getattr(model, "TRAINABLE", None)
    if not table:
        raise ValueError(
            f"{getattr(model, 'NAME', model)} was compiled without trainable=True "
            "(nengo-compile --trainable): it has no trained values to freeze"
        )
    values = model.trained()
    labels = {
        (key, role): label for _, _, parts in table.values() for key, role, label, *_ in parts
    }
    built = build(network, dt=model.DT, seed=model.SEED).model
    ensembles, connections = network.all_ensembles, network.all_connections

    trained_ens: dict = {}  # ensemble -> {role: value}
    trained_conn: dict = {}  # connection -> weights
    for (key, role), value in values.items():
        obj = _lookup(key, labels[key, role], ensembles, connections)
        value = np.array(value, dtype=np.float64)
        if role == "weights":
            expected = _shape(built.sig[obj].get("weights"))
            trained_conn[obj] = value
        else:
            sig = built.sig[obj if role == "encoders" else obj.neurons].get(role)
            expected = _shape(sig)
            trained_ens.setdefault(obj, {})[role] = value
        if expected != value.shape:
            raise ValueError(
                f"{key} of the network, {obj}, does not match the compiled module: "
                f"{role} of shape {expected} in the network, {value.shape} in the module"
            )

    ensemble_params = {ens: _ensemble_params(ens, built, trained_ens[ens]) for ens in trained_ens}
    connection_params = {}
    for conn in connections:
        if conn in trained_conn:
            weights = trained_conn[conn]
        elif _depends_on(conn, trained_ens):
            weights = np.array(built.sig[conn]["weights"].initial_value, dtype=np.float64)
        else:
            continue
        connection_params[conn] = _connection_params(conn, weights)
    probe_solvers = _probe_solvers(network, built, trained_ens)

    # everything checked: change the network
    for ens, params in ensemble_params.items():
        for attr, value in params.items():
            setattr(ens, attr, value)
    for conn, params in connection_params.items():
        for attr, value in params.items():  # function before transform
            setattr(conn, attr, value)
    for probe, solver in probe_solvers.items():
        probe.solver = solver
    if network.seed != model.SEED:
        network.seed = model.SEED


def _lookup(key, label, ensembles, connections):
    """The object ``key`` ("ensembles[2]") names, checked against its label."""
    match = _KEY.fullmatch(key)
    if match is None:
        raise ValueError(f"the compiled module names an unknown object {key!r}")
    kind, index = match.group(1), int(match.group(2))
    objects, cls = (
        (ensembles, nengo.Ensemble) if kind == "ensembles" else (connections, nengo.Connection)
    )
    if index >= len(objects):
        raise ValueError(
            f"the network does not match the compiled module: it has {len(objects)} {kind}, "
            f"the module trains {key} ({label})"
        )
    obj = objects[index]
    if not isinstance(obj, cls) or _ADDRESS.sub("", str(obj)) != _ADDRESS.sub("", label):
        raise ValueError(
            f"the network does not match the compiled module: network.all_{kind}[{index}] "
            f"is {obj}, the module's {key} is {label}"
        )
    return obj


def _shape(signal):
    return None if signal is None else tuple(signal.shape)


def _ensemble_params(ens, built, trained: dict) -> dict:
    """What makes Nengo build ``ens`` with its trained values."""
    params = built.params[ens]
    gain = np.array(params.gain, dtype=np.float64)
    bias = trained.get("bias", np.array(params.bias, dtype=np.float64))
    if "encoders" in trained:
        if not np.all(np.isfinite(gain)) or np.any(gain == 0):
            raise ValueError(
                f"{ens} has a zero or non-finite gain: its trained scaled encoders "
                "cannot be written as encoders * gain / radius"
            )
        encoders = trained["encoders"] / (gain / ens.radius)[:, None]
    else:
        encoders = np.array(params.encoders, dtype=np.float64)
    return {
        "encoders": encoders,
        "normalize_encoders": False,
        "gain": gain,
        "bias": bias,
        "max_rates": nengo.Ensemble.max_rates.default,
        "intercepts": nengo.Ensemble.intercepts.default,
    }


def _decoded(conn) -> bool:
    pre = conn.pre_obj
    return isinstance(pre, nengo.Ensemble) and not isinstance(pre.neuron_type, nengo.Direct)


def _full_weights(conn) -> bool:
    return _decoded(conn) and conn.solver.weights and isinstance(conn.post_obj, nengo.Ensemble)


def _depends_on(conn, changed) -> bool:
    """Whether Nengo builds ``conn``'s weights from an ensemble in ``changed``."""
    return (_decoded(conn) and conn.pre_obj in changed) or (
        _full_weights(conn) and conn.post_obj in changed
    )


def _connection_params(conn, weights) -> dict:
    """What makes Nengo build ``conn`` with ``weights`` (its weights signal)."""
    if _full_weights(conn):
        return {"solver": FullWeights(weights.T)}
    if _decoded(conn):
        return {
            "function": ZeroFunction(weights.shape[0]),
            "transform": None,
            "solver": NoSolver(weights.T, weights=False),
        }
    return {"transform": nengo.Dense(weights.shape, init=weights)}


def _probe_solvers(network, built, changed) -> dict:
    """Decoded-output probes on a changed ensemble -> a NoSolver with their
    built decoders."""
    solvers = {}
    probes = set(network.all_probes)
    for obj, params in built.params.items():
        if (
            isinstance(obj, nengo.Connection)
            and obj.post_obj in probes
            and _decoded(obj)
            and obj.pre_obj in changed
        ):
            decoders = np.array(params.weights, dtype=np.float64)
            solvers[obj.post_obj] = NoSolver(decoders.T, weights=False)
    return solvers
