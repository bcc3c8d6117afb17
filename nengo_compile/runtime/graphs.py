"""How a compiled model calls its graphs: ``Graphs``, a mixin of
``CompiledModel`` (its ``tf.function``s, and short calls through concrete
functions with flat arguments)."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from .checks import _state_of, _trusted


class Graphs:
    """The ``tf.function``s of a compiled model and how short calls reach them."""

    # what CompiledModel defines
    _jit_compile: bool
    _step_now: Callable
    _run: Callable
    _forward: Callable
    _forward_flat: Callable
    _gradient: Callable
    _initial_state: Callable
    _key: str  # what states of this model are marked with
    _flat_functions: dict  # see _call_flat

    def _make_graphs(self) -> None:
        """The ``tf.function``s of this model (made again when its variables
        are replaced: a traced graph holds the variables it read)."""
        options = dict(autograph=False, reduce_retracing=True, jit_compile=self._jit_compile)
        self._step_graph = tf.function(self._step_now, **options)
        # see _call_flat; set past tf.Module's attribute tracking, which would
        # wrap the dict in a proxy that every short call pays for
        object.__setattr__(self, "_flat_functions", {})
        self._parallel_shapes = set()  # (rows, capacity, inputs) that ran in parts before
        self._replica_functions = {}  # run(strategy=...)'s functions (see Distributed)
        self._run_graph = tf.function(self._run, **options)
        self._forward_graph = tf.function(self._forward, **options)
        self._forward_flat_graph = tf.function(self._forward_flat, **options)
        self._gradient_graph = tf.function(self._gradient, **options)
        self._initial_graph = tf.function(self._initial_state, autograph=False)

    def _call_flat(self, graph, state, inputs, *args, shapes=(), **static) -> tuple:
        """``graph(*args, state, inputs, **static)`` (a function of this model
        returning ``(state, outputs)``) through a concrete function cached per
        shape, called with flat tensors: that skips ``tf.function``'s binding
        of nested arguments, most of a short call's time (a step: 3-5x
        faster). Returns ``(state, outputs)``, the state a `State` that the
        next call trusts (``_trusted``: no check, no shape key to make);
        ``shapes`` is what ``_trusted`` said of ``state``, if the caller asked."""
        shapes = shapes or _trusted(state, self._key)
        if not shapes:
            shapes = tuple((k, tuple(v.shape)) for k, v in sorted(state.items()))
        feeds = tuple((k, tuple(v.shape)) for k, v in sorted(inputs.items()))
        key = (graph.__name__, shapes, feeds, len(args), tuple(sorted(static.items())))
        entry = self._flat_functions.get(key)
        if entry is None:
            entry = self._flat_functions[key] = self._flat_function(
                graph, state, inputs, args, static
            )
        call, names, outputs, dtypes = entry
        tensors = [*args, *(state[k] for k in names), *(inputs[k] for k, _ in feeds)]
        if not all(isinstance(t, tf.Tensor) for t in tensors):  # say, a state unpickled
            tensors = [tf.convert_to_tensor(t, d) for t, d in zip(tensors, dtypes)]
        flat = call(tensors)
        n = len(names)
        # graph's state keeps its shapes (its outputs are checked in _flat_function)
        new_state = _state_of(dict(zip(names, flat[:n])), self._key, shapes)
        return new_state, dict(zip(outputs, flat[n:]))

    def _flat_function(self, graph, state, inputs, args, static) -> tuple:
        names, feeds = sorted(state), sorted(inputs)
        outputs = []

        def flat(*tensors):
            n = len(args)
            new_state, result = graph(
                *tensors[:n],
                dict(zip(names, tensors[n : n + len(names)])),
                dict(zip(feeds, tensors[n + len(names) :])),
                **static,
            )
            outputs[:] = list(result)
            return [new_state[k] for k in names] + [result[k] for k in outputs]

        options = dict(autograph=False, jit_compile=self._jit_compile)
        specs = [tf.TensorSpec(a.shape, a.dtype) for a in args]
        specs += [tf.TensorSpec(state[k].shape, state[k].dtype) for k in names]
        specs += [tf.TensorSpec(inputs[k].shape, inputs[k].dtype) for k in feeds]
        concrete = tf.function(flat, **options).get_concrete_function(*specs)
        for k, spec, out in zip(names, specs[len(args) :], concrete.outputs):
            if out.shape != spec.shape or out.dtype != spec.dtype:  # a state is what it was
                raise AssertionError(f"{graph.__name__} changes state {k!r} to {out}")
        return _caller(concrete), names, tuple(outputs), [spec.dtype for spec in specs]


def _caller(concrete) -> Callable:
    """A function ``call(tensors) -> [tensor]`` that runs ``concrete`` (a
    concrete function) on its flat inputs, by the shortest path this
    TensorFlow has: eagerly, the function's op executed at once
    (``execute.quick_execute``, what ``AtomicFunction.call_flat`` ends in,
    without its per-call context managers and call options: about half of a
    short call's time); in a graph, or on another TensorFlow, ``call_flat``
    or the concrete function's own call."""
    atomic = getattr(concrete, "inference_fn", None)
    if atomic is None or not hasattr(atomic, "call_flat"):  # another TensorFlow

        def call_concrete(tensors):
            return concrete(*tensors)

        return call_concrete
    captured = list(concrete.captured_inputs)
    try:  # TensorFlow's own modules, not its public API: the fallback below
        from tensorflow.python.eager import context, execute

        ctx = context.context()
        name = atomic.name.decode()
        attrs = tuple(x for item in ctx.function_call_options.as_attrs().items() for x in item)
        n_outputs = len(atomic.function_type.flat_outputs)
        quick_execute = execute.quick_execute
    except (ImportError, AttributeError):  # another TensorFlow

        def call_atomic(tensors):
            return atomic.call_flat(*tensors, *captured)

        return call_atomic

    def call(tensors):
        if not ctx.executing_eagerly():  # a step inside someone's tf.function
            return atomic.call_flat(*tensors, *captured)
        return quick_execute(name, n_outputs, [*tensors, *captured], attrs, ctx)

    return call
