"""Stage 5, lower: merged groups become Nengo-free IR (`ir.Program`).

Each group is lowered by its op kind (`nengo_compile.kinds`); probes and hooks
are named here, and the state blocks get their initial values.
"""

from __future__ import annotations

import inspect
import re
import warnings
from dataclasses import replace
from pathlib import Path

import nengo
import numpy as np

from .. import ir
from ..analyse import Analysis
from ..build import Built
from ..ir import KeyContext, LowerContext
from ..kinds import KINDS, merge_key, neuron_stubs
from ..kinds.base import Params
from ..kinds.process import SimulatorRngs
from ..names import Namespace
from ..plan import Plan
from ..translate import Translation


class TranslationWarning(UserWarning):
    """A Node or connection function that stays Python (a hook)."""


def lower(
    built: Built,
    analysis: Analysis,
    plan: Plan,
    dtype: str,
    header: dict,
    translation: Translation | None = None,
    check_finite: bool = False,
    train_sources: dict | None = None,
) -> ir.Program:
    """The lowered program: every planned group lowered by its kind, the
    state blocks with their initial values, the probes and the hooks named.
    ``train_sources`` (`nengo_compile.trainable.parameter_sources`): the
    parameters to make trainable (None: a module that does not train)."""
    params = Params(dtype)
    for name, array in plan.index_params.items():
        params.arrays[name] = array
    hooks = _name_hooks(built, plan)
    describe = Describer(built.network)
    ctx = LowerContext(
        dt=built.dt,
        dtype=dtype,
        is_const=analysis.is_const,
        names=describe.op,
        hooks=hooks,
        translation=translation,
        check_finite=check_finite,
        # the random processes' default seed, SEED + 1, as nengo.Simulator's
        simulator_rngs=SimulatorRngs(
            built.operators, built.seed + 1 if built.seed + 1 < 2**32 else None
        ),
        train_sources=train_sources,
    )
    groups = []
    python_processes = set()
    for index, group in enumerate(plan.groups):
        lowered = KINDS[group.kind].lower(index, group.ops, group.accesses, params, ctx)
        groups.append(lowered)
        if group.kind in ("pyfunc", "process_hook"):
            op = group.ops[0]
            if lowered.template == KINDS["pyfunc"].template:
                hooks[op] = replace(hooks[op], index=index, reason=lowered.values.reason)
            else:  # translated: no Python left, but a source node stays an input
                hooks[op] = replace(hooks[op], index=index, translated=True)
            if group.kind == "process_hook":
                python_processes.add(op)
    translating = translation is not None and translation.enabled
    for op, hook in sorted(hooks.items(), key=lambda item: item[1].index):
        if not hook.translated and (translating or op in python_processes):
            warnings.warn(
                f"{hook.name!r} ({hook.source}) stays a Python hook; "
                f"cannot translate {hook.reason}",
                TranslationWarning,
                stacklevel=2,
            )
    groups, stubs = neuron_stubs.name_stubs(groups)

    # the shapes the groups' arithmetic writes blocks in: carried so when all agree
    carry: dict = {}
    for lowered in groups:
        for block, shape in lowered.carry.items():
            carry.setdefault(block, set()).add(tuple(shape))
    blocks = []
    for layout in plan.blocks:
        initial = ""
        if not layout.transient:
            values = [
                np.asarray(base.initial_value, dtype=np.float64).reshape(-1)[idx]
                for base, idx in layout.segments
            ]
            initial = params.add("init", np.concatenate(values))
        blocks.append(
            ir.Block(
                name=layout.name,
                size=layout.size,
                initial=initial,
                contents=tuple(describe.signal(base, idx) for base, idx in layout.segments),
                transient=layout.transient,
                shape=_carried(carry.get(layout.name, ()), layout),
            )
        )

    probes = _lower_probes(built, analysis, plan, params, train_sources)
    trainable = tuple(
        replace(t, parts=tuple(replace(s, label=describe.text(s.label)) for s in t.parts))
        for t in params.trainables()
    )
    if train_sources:
        _warn_untrained(train_sources, trainable, describe)
    return ir.Program(
        label=built.label,
        dt=built.dt,
        seed=built.seed,
        dtype=dtype,
        blocks=tuple(blocks),
        groups=tuple(groups),
        probes=tuple(probes),
        hooks=tuple(sorted(hooks.values(), key=lambda h: h.index)),
        params=dict(params.arrays),
        header=header,
        stubs=stubs,
        trainable=trainable,
    )


class TrainingWarning(UserWarning):
    """A parameter that was to train but does not (see the message)."""


def _warn_untrained(train_sources: dict, trainable: tuple, describe) -> None:
    """One warning naming the trainable parameters no op kind placed (say,
    a connection's weights applied to a constant input, folded into a
    constant)."""
    placed = {(part.key, part.role) for t in trainable for part in t.parts}
    missed = [s for s in train_sources.values() if (s.key, s.role) not in placed]
    if missed:
        names = "; ".join(f"{describe.text(s.label)} {s.role}" for s in missed[:3])
        more = f" and {len(missed) - 3} more" if len(missed) > 3 else ""
        warnings.warn(
            f"{len(missed)} trainable parameters do not train (their input is constant, "
            f"or their form is not one that trains): {names}{more}",
            TrainingWarning,
            stacklevel=2,
        )


class Describer:
    """Deterministic descriptions of operators and signals for comments.

    Nengo's names of unlabeled objects hold memory addresses; we replace them
    by the object's position in the network, so output is reproducible.
    """

    _ADDRESS = re.compile(r"<(\w+) \(unlabeled\) at (0x[0-9a-fA-F]+)>")

    def __init__(self, network):
        counts = {}
        self.names = {}
        self.anonymous = 0
        for obj in [network, *network.all_networks, *network.all_objects]:
            kind = type(obj).__name__
            counts[kind] = counts.get(kind, 0) + 1
            self.names[hex(id(obj))] = f"<{kind} #{counts[kind]}>"

    _AT = re.compile(r" at 0x[0-9a-fA-F]+")
    _HEX = re.compile(r"0x[0-9a-fA-F]{6,}")

    def text(self, text: str) -> str:
        if "0x" not in text:  # nothing to replace (most texts of large models)
            return text
        text = self._ADDRESS.sub(lambda m: self.names.get(m.group(2), f"<{m.group(1)}>"), text)
        text = self._AT.sub("", text)
        return self._HEX.sub(self._anonymous, text)

    def _anonymous(self, match) -> str:
        """Unnamed signals are named by their address: number them instead."""
        key = match.group(0)
        if key not in self.names:
            self.anonymous += 1
            self.names[key] = f"signal#{self.anonymous}"
        return self.names[key]

    def op(self, op) -> str:
        return self.text(f"{type(op).__name__}: {op.tag or op}")

    def signal(self, base, idx) -> str:
        size = f"[{base.size}]" if len(idx) == base.size else f"[{len(idx)} of {base.size}]"
        return self.text(f"{base.name} {size}")


def _source(fn) -> str:
    """Where a function was defined: ``file.py:line`` (no folder, so the
    generated module does not depend on where the model file lives)."""
    try:
        file = inspect.getsourcefile(fn)
        _, line = inspect.getsourcelines(fn)
        return f"{Path(file or '?').name}:{line}"
    except (TypeError, OSError):
        return getattr(fn, "__qualname__", type(fn).__name__)


def _name_hooks(built, plan) -> dict:
    """Name every SimPyFunc after the Node or Connection it came from."""
    model, network = built.model, built.network
    owners = {}
    for i, node in enumerate(network.all_nodes):
        owners.setdefault(id(node.output), []).append(("node", i, node))
    for i, conn in enumerate(network.all_connections):
        if conn.function is not None:
            owners.setdefault(id(conn.function), []).append(("conn", i, conn))

    names = Namespace()
    hooks = {}
    used = set()
    for group in plan.groups:
        if group.kind == "process_hook":
            (op,) = group.ops
            hooks[op] = _process_hook(op, model, network, names, built.dt)
            continue
        if group.kind != "pyfunc":
            continue
        (op,) = group.ops
        owner = None
        for kind, i, obj in owners.get(id(op.fn), []):
            if id(obj) in used:
                continue
            if kind == "node" and op.output is not model.sig[obj]["out"]:
                continue
            owner = (kind, i, obj)
            break
        obj = None
        if owner is None:
            label, fallback = op.tag or "", "hook"
        else:
            kind, i, obj = owner
            used.add(id(obj))
            label = obj.label or ""
            fallback = f"node{i}" if kind == "node" else f"conn{i}_function"
        name = names.name(label or fallback, fallback)
        hooks[op] = ir.Hook(
            name=name,
            label=label or name,
            source=_source(op.fn),
            index=-1,
            size_in=0 if op.x is None else op.x.size,
            size_out=0 if op.output is None else op.output.size,
            takes_t=op.t is not None,
            is_input=op.x is None and op.output is not None and op.t is not None,
            owner=obj,
        )
    return hooks


def _process_hook(op, model, network, names, dt) -> ir.Hook:
    """A process that stays Python, named after the Node or Ensemble it drives."""
    label, fallback = "", "process"
    for i, node in enumerate(network.all_nodes):
        if node.output is op.process and model.sig[node]["out"] is op.output:
            label, fallback = node.label or "", f"node{i}"
            break
    else:
        for i, ens in enumerate(network.all_ensembles):
            if ens.noise is op.process and model.sig[ens.neurons]["in"] is op.output.base:
                label, fallback = f"{ens.label or f'ensemble{i}'}_noise", f"ensemble{i}_noise"
                break
    name = names.name(label or fallback, fallback)
    return ir.Hook(
        name=name,
        label=label or name,
        source=_source(type(op.process).make_step),
        index=-1,
        size_in=0 if op.input is None else op.input.size,
        size_out=op.output.size,
        takes_t=True,
        is_input=op.input is None and op.mode == "set",
        reason=f"{_key_reason(op, dt)}: a process with no TensorFlow form",
    )


def _key_reason(op, dt) -> str:
    """Why a process stays Python: the reason its merge key recorded."""
    return merge_key(op, KeyContext(frozenset(), dt))[2]


def _label(obj) -> str:
    if isinstance(obj, nengo.ensemble.Neurons):
        return f"{_label(obj.ensemble)}.neurons"
    return getattr(obj, "label", None) or type(obj).__name__


def _lower_probes(built, analysis, plan, params, train_sources=None):
    names = Namespace()
    probes = []
    for (probe, sig), read in zip(built.probes, plan.probe_reads):
        target_label = _label(probe.target)
        if probe.label:
            name = names.name(probe.label, "probe")
        else:
            name = names.name(f"probe_{target_label}_{probe.attr}", "probe")
        if read is None:  # a constant signal
            if train_sources and sig in train_sources:
                warnings.warn(
                    f"probe {probe.label or target_label + '.' + probe.attr!r} shows the built "
                    f"values of a parameter that trains, not its trained values",
                    TrainingWarning,
                    stacklevel=3,
                )
            value = np.asarray(sig.initial_value, dtype=np.float64).reshape(-1)
            read = ir.Const(param=params.add("probe_const", value))
        period = None if probe.sample_every is None else probe.sample_every / built.dt
        probes.append(
            ir.Probe(
                name=name,
                label=probe.label or "",
                target=f"{target_label}.{probe.attr}",
                read=read,
                shape=tuple(int(d) for d in sig.shape),
                period=period,
            )
        )
    return probes


def _carried(shapes, layout) -> tuple:
    """The shape a block is carried in: the one its groups write it in, or ()."""
    if layout.transient or len(shapes) != 1:
        return ()
    (shape,) = shapes
    return shape if int(np.prod(shape)) == layout.size else ()
