"""How a compiled model calls its graphs: ``Graphs``, a mixin of
``CompiledModel`` (its ``tf.function``s, and short calls through concrete
functions with flat arguments)."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf


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

    def _make_graphs(self) -> None:
        """The ``tf.function``s of this model (made again when its variables
        are replaced: a traced graph holds the variables it read)."""
        options = dict(autograph=False, reduce_retracing=True, jit_compile=self._jit_compile)
        self._step_graph = tf.function(self._step_now, **options)
        self._flat_functions = {}  # see _call_flat
        self._parallel_shapes = set()  # (rows, capacity, inputs) that ran in parts before
        self._replica_functions = {}  # run(strategy=...)'s functions (see Distributed)
        self._run_graph = tf.function(self._run, **options)
        self._forward_graph = tf.function(self._forward, **options)
        self._forward_flat_graph = tf.function(self._forward_flat, **options)
        self._gradient_graph = tf.function(self._gradient, **options)
        self._initial_graph = tf.function(self._initial_state, autograph=False)

    def _call_flat(self, graph, state, inputs, *args, **static) -> tuple:
        """``graph(*args, state, inputs, **static)`` (a function of this model
        returning ``(state, outputs)``) through a concrete function cached per
        shape, called with flat tensors: ``AtomicFunction.call_flat`` skips
        ``tf.function``'s binding of nested arguments, most of a short call's
        time (a step: 3-5x faster). Returns ``(state, outputs)``."""
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
        return dict(zip(names, flat)), dict(zip(outputs, flat[len(names) :]))

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
        atomic = getattr(concrete, "inference_fn", None)
        if atomic is not None and hasattr(atomic, "call_flat"):
            captured = list(concrete.captured_inputs)

            def call(tensors):
                return atomic.call_flat(*tensors, *captured)
        else:  # another TensorFlow: the concrete function's own call

            def call(tensors):
                return concrete(*tensors)

        return call, names, tuple(outputs), [spec.dtype for spec in specs]
