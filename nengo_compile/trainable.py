"""Which parameters of a built model train, by NengoDL's ``trainable`` convention.

A network opts in with `configure_trainable`, which adds a ``trainable``
config attribute to Ensembles, Connections, Neurons and Networks (NengoDL's
``configure_settings(trainable=None)``). An object trains unless a setting
says otherwise; the most specific setting wins:

1. the object's own (``net.config[conn].trainable = False``), in any network
   config that holds one, innermost first; for an ensemble's biases,
   ``config[ens.neurons].trainable`` first, then the ensemble's;
2. a setting on a network that contains it (``net.config[subnet].trainable``),
   innermost first;
3. the class default (``net.config[nengo.Ensemble].trainable = False``), in
   the innermost network whose config sets one.

What trains, as in NengoDL: an ensemble's (scaled) encoders and its biases,
and a connection's weights (its decoders combined with its transform, or its
transform). `parameter_sources` finds their signals in the built model; the
op kinds place them (`kinds.base.Params.train`), and the generated module
records which slice of which variable holds each object's values.
"""

from __future__ import annotations

import nengo
from nengo.ensemble import Neurons
from nengo.params import BoolParam

from . import ir
from .errors import CompileError

#: the classes that take a ``trainable`` setting
CONFIGURED = (nengo.Ensemble, nengo.Connection, Neurons, nengo.Network)


def configure_trainable(network: nengo.Network, default: bool | None = None) -> None:
    """Add the ``trainable`` config attribute to ``network``'s config (for
    Ensembles, Connections, Neurons and Networks), as NengoDL's
    ``configure_settings(trainable=...)``; ``default`` is the class default
    (``None``: unset, so objects train unless a setting says otherwise)."""
    config = network.config
    for cls in CONFIGURED:
        if cls not in config.params:
            config.configures(cls)
        params = config.params[cls]
        if "trainable" in params.extra_params:
            params.trainable = default
        else:
            params.set_param("trainable", BoolParam("trainable", default, optional=True))


def _chains(network) -> dict:
    """Every object and subnetwork -> the networks containing it, outermost first."""
    chains = {}

    def walk(net, chain):
        chain = (*chain, net)
        for obj in [*net.ensembles, *net.connections, *net.nodes, *net.probes]:
            chains[obj] = chain
        for sub in net.networks:
            chains[sub] = chain
            walk(sub, chain)

    walk(network, ())
    return chains


def _setting(config, obj, explicit: bool):
    """``config``'s trainable setting for ``obj`` (its own if ``explicit``,
    else its class default), or None."""
    if explicit:  # only a setting made for obj (reading config[obj] would add one)
        params = config.params.get(obj)
        if params is None or "trainable" not in params._clsparams.extra_params:
            return None
        return params.trainable if "trainable" in params else None
    for cls in type(obj).__mro__:
        params = config.params.get(cls)
        if params is not None and "trainable" in params.extra_params:
            return params.trainable
    return None


def is_trainable(obj, chains: dict) -> bool:
    """Whether ``obj`` trains (see the module for the rule)."""
    owner = obj.ensemble if isinstance(obj, Neurons) else obj
    chain = chains.get(owner, ())
    candidates = [obj, owner] if owner is not obj else [obj]
    for target in candidates:  # 1. the object's own setting
        for net in reversed(chain):
            value = _setting(net.config, target, explicit=True)
            if value is not None:
                return bool(value)
    for i in range(len(chain) - 1, 0, -1):  # 2. a containing network's
        value = _setting(chain[i - 1].config, chain[i], explicit=True)
        if value is not None:
            return bool(value)
    for net in reversed(chain):  # 3. the class default
        value = _setting(net.config, owner, explicit=False)
        if value is not None:
            return bool(value)
    return True


def _signal(sigdict, key):
    try:
        return sigdict[key]
    except KeyError:
        return None


def parameter_sources(built) -> dict:
    """The trainable parameter signals of a built model: ``{signal: ir.TrainSource}``.

    Raises CompileError, naming the culprit, for what cannot train: learning
    rules (they change weights while the model runs).
    """
    network, model = built.network, built.model
    learning = [c for c in network.all_connections if c.learning_rule_type is not None]
    if learning:
        rules = ", ".join(f"{c} ({c.learning_rule_type})" for c in learning[:3])
        more = f" and {len(learning) - 3} more" if len(learning) > 3 else ""
        raise CompileError(f"cannot compile for training: online learning rules on {rules}{more}")
    chains = _chains(network)
    sources = {}

    def add(sig, key, role, obj, trains):
        if sig is not None and trains and sig.ndim in (1, 2) and sig.size:
            sources[sig] = ir.TrainSource(key, role, str(obj), tuple(sig.shape))

    for i, ens in enumerate(network.all_ensembles):
        if isinstance(ens.neuron_type, nengo.Direct):
            continue
        key = f"ensembles[{i}]"
        add(_signal(model.sig[ens], "encoders"), key, "encoders", ens, is_trainable(ens, chains))
        neurons = ens.neurons
        add(_signal(model.sig[neurons], "bias"), key, "bias", ens, is_trainable(neurons, chains))
    for i, conn in enumerate(network.all_connections):
        sig = _signal(model.sig[conn], "weights")
        if sig is not None and sig.ndim == 2:
            add(sig, f"connections[{i}]", "weights", conn, is_trainable(conn, chains))
    return sources


def _owner(obj):
    """The Ensemble a Neurons object belongs to; any other object itself."""
    return obj.ensemble if isinstance(obj, Neurons) else obj


def _fed_by_training(network, sources: dict) -> set:
    """The ids of the Ensembles and Nodes whose values depend on a parameter
    that trains (``sources``, `parameter_sources`): downstream of a trained
    ensemble or of a connection with trained weights."""
    trained = {source.key for source in sources.values()}
    fed = {id(e) for i, e in enumerate(network.all_ensembles) if f"ensembles[{i}]" in trained}
    connections = network.all_connections
    fed |= {
        id(_owner(c.post_obj)) for i, c in enumerate(connections) if f"connections[{i}]" in trained
    }
    changed = True
    while changed:
        changed = False
        for conn in connections:
            post = id(_owner(conn.post_obj))
            if post not in fed and id(_owner(conn.pre_obj)) in fed:
                fed.add(post)
                changed = True
    return fed


def check_gradient_path(built, sources: dict, hooks) -> None:
    """Raise CompileError, naming the culprit, for what would cut the
    gradient of a parameter that trains: a Python hook (a Node or Connection
    function that runs in Python, not translated to TensorFlow) or a neuron
    type without a template (it runs NumPy), fed by a trained parameter."""
    from .kinds.neurons import lowering_for  # (kinds import this module's siblings)

    network = built.network
    fed = _fed_by_training(network, sources)
    for hook in hooks:
        if hook.translated or not hook.size_in or not hook.size_out or hook.owner is None:
            continue
        owner = hook.owner
        inner = owner if isinstance(owner, nengo.Node) else _owner(owner.pre_obj)
        if id(inner) in fed:
            why = f": {hook.reason}" if hook.reason else ""
            raise CompileError(
                f"cannot compile for training: the Python function of {owner} ({hook.source}) "
                f"is fed by trained parameters but has no gradient (it is not translated to "
                f"TensorFlow{why}); make it translatable, or set trainable=False before it"
            )
    for ens in network.all_ensembles:
        neuron_type = ens.neuron_type
        if isinstance(neuron_type, nengo.Direct) or lowering_for(neuron_type) is not None:
            continue
        if id(ens) in fed:
            raise CompileError(
                f"cannot compile for training: {ens} has neuron type "
                f"{type(neuron_type).__name__!r}, which has no template (it runs NumPy) "
                f"and so no gradient; set trainable=False on it and what feeds it"
            )
