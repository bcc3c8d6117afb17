"""SimProcess: each process type's kind, and processes that stay Python.

A ``SimProcess`` operator is keyed by the kind registered for its process
type (``@register(WhiteNoise)``, found through the process type's MRO): the
synapses (`synapses`), noise (`noise`) and signal sources (`signals`). A
process type without a kind, or a variant that its kind refuses, becomes a
named hook that runs Nengo's own step (`ProcessHookKind`), like a Node
function. A synapse's refusal is the model's error, not a hook.
"""

from __future__ import annotations

import copy

import numpy as np
from nengo.builder.processes import SimProcess
from nengo.processes import WhiteSignal
from nengo.utils.graphs import toposort
from nengo.utils.simulator import operator_dependency_graph

from .. import ir
from ..ir import AccessRequest
from .base import OpKind, lookup, register, seg, tag
from .pyfunc import HookCall

#: the largest table (values per batch element) a process may precompute
MAX_TABLE = 2**24
#: random counters are ``step * STREAMS + stream``: at most this many streams
STREAMS = 2**24
MODES = {"update": "update", "set": "set", "inc": "inc"}


def write_mode(ops) -> str:
    return MODES[ops[0].mode]


def output_request(ops):
    return AccessRequest("output", write_mode(ops), tuple(seg(op.output) for op in ops))


#: Nengo's process types whose whole output is drawn in ``make_step`` (the
#: others draw every step, or not at all)
FIXED_AT_MAKE_STEP = (WhiteSignal,)


class SimulatorRngs:
    """The generator ``nengo.Simulator(seed=seed)`` gives each unseeded process.

    Nengo's rule (``Simulator.reset``): one ``RandomState(seed)`` is shared by
    the operators' ``make_step`` calls, made in the step order
    (``toposort(operator_dependency_graph(operators))``, keeping the operators
    that have ``make_step``); ``SimProcess.make_step`` passes it to
    ``process.get_rng``, which draws one ``randint(maxint)`` from it for a
    process without a seed (synapses included) and returns
    ``RandomState(that)``; a process with a seed gets ``RandomState(seed)``
    and draws nothing. No other built operator of Nengo's draws from it.

    The step order is computed with Nengo's own functions, on the operators
    Nengo built (its optimizer not run, as ``nengo.Simulator(optimize=False)``;
    see `nengo_compile.kinds.signals` for what the optimizer changes), only when
    a kind first asks (its cost grows with the model: 9-12 s on a loaded
    2-core machine for 100k operators, whose build took 134 s). ``rng(op)`` is
    a fresh copy of the generator ``op``'s process gets, so drawing from it
    replays Nengo's own draws (kept for the process types of
    `FIXED_AT_MAKE_STEP` only).
    """

    def __init__(self, operators, seed: int | None):
        self.operators = operators
        self.seed = seed  # None: no simulator seed Nengo could use (>= 2**32)
        self._states: dict | None = None

    def rng(self, op) -> np.random.RandomState | None:
        if self.seed is None:
            return None
        if self._states is None:
            shared = np.random.RandomState(self.seed)
            dg = operator_dependency_graph(self.operators)
            order = [o for o in toposort(dg) if hasattr(o, "make_step")]
            states: dict = {}
            for o in order:
                if isinstance(o, SimProcess):  # the call SimProcess.make_step makes
                    rng = o.process.get_rng(shared)
                    if o.process.seed is None and isinstance(o.process, FIXED_AT_MAKE_STEP):
                        states[o] = rng
            self._states = states
        rng = self._states.get(op)
        return None if rng is None else copy.deepcopy(rng)


class ProcessKind(OpKind):
    """The kind of a process type (registered by process type): its key
    refuses subclasses that change the step, and processes with an input;
    refused, the process becomes a hook."""

    rank = 4

    def key(self, op, ctx):
        process = op.process
        base = next(t for t in self.types if isinstance(process, t))
        for method in ("make_step", "make_state"):
            if getattr(type(process), method) is not getattr(base, method):
                raise NotImplementedError(
                    f"process {type(process).__name__} overrides {method} ({tag(op)})"
                )
        if op.input is not None:
            raise NotImplementedError(f"{type(process).__name__} with an input ({tag(op)})")
        return self.process_key(op, ctx)

    def process_key(self, op, ctx) -> tuple:
        return (self.name, "single")


class SourceKind(ProcessKind):
    """A process with no input: it only writes its output."""

    def accesses(self, ops, ctx):
        return [output_request(ops)]


class ProcessStep:
    """Nengo's own step function of a process, to serve its hook.

    The compiled module calls it as ``fn(t)`` or ``fn(t, x)``; it needs Nengo
    (the process object), so `nengo_compile.Simulator` serves it, and users of
    a compiled module can pass it in ``node_functions``. ``reset(rng)`` starts
    it over with fresh state, as ``nengo.Simulator.reset`` does.
    """

    def __init__(self, op, dt):
        self.op = op
        self.dt = dt
        self.step = None

    def reset(self, rng=np.random):
        op, process = self.op, self.op.process
        shape_in = op.input.shape if op.input is not None else (0,)
        state = {name: np.array(sig.initial_value) for name, sig in op.state.items()}
        self.step = process.make_step(
            shape_in, op.output.shape, self.dt, process.get_rng(rng), state
        )

    def __call__(self, t, *x):
        if self.step is None:
            self.reset()
        return self.step(t, *x)


@register(SimProcess)
class ProcessHookKind(OpKind):
    """A process that cannot be compiled (a custom ``Process``, or a variant of
    a standard one that has no TF form): a named hook, like a Node function.

    Its key is every ``SimProcess``'s: that of the process type's kind, else
    a hook (whose key holds the reason).
    """

    name = "process_hook"
    template = "pyfunc.py.j2"
    rank = 4

    def key(self, op, ctx):
        found = lookup(op.process)
        if found is not None and not found.hook_fallback:
            return found.key(op, ctx)
        try:
            if found is None:
                raise NotImplementedError(f"a process of type {type(op.process).__name__}")
            return found.key(op, ctx)
        except NotImplementedError as exc:
            # Python code, like a Node function: a hook that runs Nengo's own step
            return ("process_hook", "single", str(exc))

    def accesses(self, ops, ctx):
        (op,) = ops
        requests = [output_request(ops)]
        if op.input is not None and not ctx.is_const(op.input):
            requests.append(AccessRequest("x", "read", (seg(op.input),)))
        return requests

    def lower(self, index, ops, acc, params, ctx):
        (op,) = ops
        hook = ctx.hooks[op]
        consts = {}
        if op.input is not None and "x" not in acc:
            value = np.asarray(op.input.initial_value, dtype=np.float64).reshape(-1)
            consts["x"] = ir.Const(param=params.add("hook_x", value))
        return ir.Group(
            index,
            self.name,
            self.template,
            f"hook {hook.name!r} (process)",
            (ctx.names(op),),
            reads={"x": acc["x"].access} if "x" in acc else {},
            writes={"output": acc["output"].access},
            consts=consts,
            values=HookCall.of(hook, hook.reason),
        )
