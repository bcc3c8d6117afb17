"""``CompiledModel``: what every compiled model does (run, step, batch parts,
Python hooks and neuron stubs); a generated module's ``Model`` adds its tables
and its ``_step``."""

from __future__ import annotations

import hashlib
import inspect
import os
from typing import ClassVar

import numpy as np
import tensorflow as tf

from .checks import (
    _batch_of,
    _batch_size,
    _check_exportable,
    _check_neuron_steps,
    _check_node_functions,
    _check_probe_memory,
    _checked_state,
    _checked_steps,
    _hook_output,
    _input_arrays,
    _input_name,
    _load_params,
    _state_of,
    _trusted,
    _xla_blockers,
)
from .distribute import Distributed
from .export import write_onnx, write_saved_model, write_tflite
from .graphs import Graphs
from .training import Training

#: what spiking neurons run in training (``forward(training=True)``): their rate
#: counterpart, or their spikes with the rate's derivative
TRAINING_NEURONS = ("rate", "surrogate")


class CompiledModel(Graphs, Training, Distributed, tf.Module):
    """A compiled Nengo model: the base class of every generated ``Model``.

    A subclass sets the tables below (the generated module's tables of the same
    names) and defines ``_step(state, inputs, p, neurons, rows) -> (new_state, probes)``.

    Parameters
    ----------
    params_file : str, optional
        The parameter file; by default ``PARAMS_FILE`` beside the module that
        defines the model class.
    node_functions : dict, optional
        Python functions serving the model's hooks (see ``HOOKS``), keyed by
        hook name or Node label. They run through ``tf.numpy_function``.
    jit_compile : bool, optional
        Compile ``run`` and ``step`` with XLA: several times faster per step,
        and a compilation per batch size and per power-of-two bound on
        ``n_steps``. ``None`` (the default): XLA unless the model needs Python
        (``node_functions``, ``STUBS``) or an operation XLA lacks
        (``NO_XLA_GROUPS``); ``self.jit_compile`` says which was chosen.
    seed : int, optional
        Seed of the model's random processes; by default ``SEED + 1``, as
        ``nengo.Simulator`` seeds them. Change it later with ``set_seed``.
    neuron_steps : dict, optional
        NumPy implementations of neuron types without a template (see ``STUBS``),
        keyed by type name: ``step(dt, J, output, **state)``, working like
        ``NeuronType.step`` (updating ``output`` and the state in place). Needed
        for types whose step is not in the module; replaces it otherwise.
    training_neurons : {"rate", "surrogate"}
        What spiking neurons run in training (``forward(training=True)``,
        Keras ``fit``) in a module compiled with ``trainable=True``: their rate
        counterpart (the rate swap: LIF trains as `SoftLIFRate`), or their
        spikes forward and the rate's derivative backward (surrogate
        gradients). Inference always spikes.
    """

    #: the model's tables (see the generated module for what each holds)
    NAME: ClassVar[str] = "model"
    DT: ClassVar[float] = 0.001
    SEED: ClassVar[int] = 0
    DTYPE: ClassVar[tf.DType] = tf.float32
    PARAMS_FILE: ClassVar[str] = ""
    PROBES: ClassVar[dict] = {}
    PROBE_PERIODS: ClassVar[dict] = {}
    HOOKS: ClassVar[dict] = {}
    INPUTS: ClassVar[dict] = {}
    RANDOM_GROUPS: ClassVar[tuple] = ()
    NO_XLA_GROUPS: ClassVar[tuple] = ()
    BLOCKS: ClassVar[dict] = {}
    LOOP_SHAPES: ClassVar[dict] = {}
    PARAMS: ClassVar[dict] = {}
    STUBS: ClassVar[dict] = {}
    TRAINABLE: ClassVar[dict] = {}

    def __init__(
        self,
        params_file=None,
        node_functions=None,
        jit_compile=None,
        seed=None,
        name=None,
        neuron_steps=None,
        training_neurons="rate",
    ):
        super().__init__(name=name or self.NAME)
        if params_file is None:
            folder = os.path.dirname(os.path.abspath(inspect.getfile(type(self))))
            params_file = os.path.join(folder, self.PARAMS_FILE)
        arrays = _load_params(str(params_file), self.PARAMS)
        self.params = {
            key: tf.Variable(value, trainable=key in self.TRAINABLE, name=key)
            for key, value in arrays.items()
        }
        if training_neurons not in TRAINING_NEURONS:
            raise ValueError(
                f"training_neurons must be one of {', '.join(map(repr, TRAINING_NEURONS))} "
                f"(got {training_neurons!r})"
            )
        self.training_neurons = training_neurons
        self.node_functions = _check_node_functions(node_functions, self.HOOKS)
        self.rng_seed = tf.Variable(0, dtype=tf.int64, trainable=False, name="rng_seed")
        self.set_seed(seed)
        self.neuron_steps = _check_neuron_steps(neuron_steps, self.STUBS)
        blocking = _xla_blockers(self.node_functions, self.STUBS, self.NO_XLA_GROUPS)
        self._can_jit_compile = not blocking
        if jit_compile is None:
            jit_compile = not blocking
        elif jit_compile and blocking:
            raise ValueError(f"jit_compile cannot run {'; '.join(blocking)}")
        self._portable_math = False  # set while exporting (ONNX has no Expm1/Log1p)
        self._fixed_parameters = None  # set while exporting (see _parameters)
        self._sparse_kernels = not jit_compile  # tf.sparse ops (no XLA or export kernels)
        self._jit_compile = bool(jit_compile)
        self._make_graphs()
        # states name their model: a state of another model is refused
        layout = repr((sorted(self.BLOCKS.items()), sorted(self.PARAMS.items())))
        self._key = f"{self.NAME} {hashlib.sha256(layout.encode()).hexdigest()[:12]}"

    @property
    def jit_compile(self) -> bool:
        """Whether ``run`` and ``step`` are compiled with XLA."""
        return self._jit_compile

    @property
    def can_jit_compile(self) -> bool:
        """Whether this model could run with XLA: no Python ``node_functions``,
        neuron stubs or operations without an XLA kernel."""
        return self._can_jit_compile

    def set_seed(self, seed: int | None = None) -> None:
        """Seed the random processes (``None``: ``SEED + 1``, Nengo's rule)."""
        self.rng_seed.assign(self.SEED + 1 if seed is None else int(seed))

    def initial_state(self, batch_size: int = 1) -> dict:
        """The state before the first step: ``{name: [batch_size, size]}``."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"batch_size must be an integer (got {batch_size!r})")
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1 (got {batch_size})")
        return _state_of(self._initial_graph(tf.constant(batch_size, tf.int32)), self._key)

    def _initial_state(self, batch_size):
        # one graph call, not an eager op per block (milliseconds per run)
        state = {"step": tf.zeros(tf.reshape(batch_size, [1]), tf.int64)}
        for name, (_, init) in self.BLOCKS.items():
            state[name] = tf.tile(self.params[init][None], tf.stack([batch_size, 1]))
        return state

    def step(self, state, inputs=None) -> tuple:
        """Advance one step: returns ``(new_state, probes)``.

        ``inputs`` maps names in ``INPUTS`` to arrays ``[batch, size]``;
        ``probes`` maps names in ``PROBES`` to arrays ``[batch, *shape]``
        (every step; ``sample_every`` applies only to ``run``).
        """
        shapes = _trusted(state, self._key)  # a state that step or run returned
        if shapes:
            batch = state._batch
        else:
            state = _checked_state(state, self.BLOCKS, self.DTYPE, self._key)
            batch = _batch_of(state)
        inputs = self._check_inputs(_input_arrays(inputs, self.DTYPE), (batch,))
        return self._call_flat(self._step_now, state, inputs, shapes=shapes)

    def run(
        self, n_steps, inputs=None, state=None, batch_size=None, return_state=False, strategy=None
    ):
        """Run ``n_steps`` steps inside one ``tf.function``.

        Returns ``{probe name: array [batch, steps, *shape]}`` (and the new
        state, if ``return_state``). ``inputs`` maps names in ``INPUTS`` to
        arrays ``[batch, n_steps, size]``. Without ``state``, starts from
        ``initial_state``. ``strategy`` (a ``tf.distribute`` strategy:
        ``MirroredStrategy``, ``MultiWorkerMirroredStrategy``) splits the batch
        into consecutive slices, one per replica, and gathers the probes in
        batch order: each row gets the values a run on one device gives it
        (random draws included). Every worker of a multi-worker strategy calls
        ``run`` with the same arguments and gets the whole batch's probes.
        """
        n_steps = _checked_steps(n_steps)
        if state is not None:
            state = _checked_state(state, self.BLOCKS, self.DTYPE, self._key)
        inputs = _input_arrays(inputs, self.DTYPE)
        batch = _batch_size(inputs, state, batch_size)
        inputs = self._check_inputs(inputs, (batch, n_steps))
        _check_probe_memory(n_steps, batch, self.PROBES, self.DTYPE)
        if state is None:
            state = self.initial_state(batch)
        if n_steps == 0:  # nothing to run: no probe values, the state as it was
            results = {
                name: np.zeros((batch, 0, *shape), self.DTYPE.as_numpy_dtype)
                for name, shape in self.PROBES.items()
            }
            return (results, _state_of(state, self._key)) if return_state else results
        capacity = None
        if self._jit_compile:
            # XLA compiles for fixed shapes: probe buffers (and fed inputs) of a
            # power-of-two length serve every n_steps up to it with one compilation
            capacity = 1 << (n_steps - 1).bit_length() if n_steps else 0
            padding = [[0, 0], [0, capacity - n_steps], [0, 0]]
            inputs = {name: tf.pad(value, padding) for name, value in inputs.items()}
        results, state = self._run_loop(n_steps, state, inputs, batch, capacity, strategy)
        return (results, state) if return_state else results

    def run_from(self, n_steps: int, state, capacity: int | None = None) -> tuple:
        """``run(n_steps, state=state, return_state=True)`` without inputs and
        without ``run``'s checks, for a caller that runs one state on and on
        (``nengo_compile.Simulator``): ``n_steps`` is a positive int and
        ``state`` one that this model's ``initial_state``, ``run`` or
        ``run_from`` returned. With XLA, ``capacity`` (at least ``n_steps``)
        is the length of the probe buffers that the loop is compiled for, so
        that one compilation serves every ``n_steps`` up to it (by default the
        next power of two, as in ``run``); without XLA it is ignored.
        Returns ``(probes, state)`` as ``run`` does.
        """
        if not self._jit_compile:
            capacity = None
        elif capacity is None:
            capacity = 1 << (n_steps - 1).bit_length()
        elif capacity < n_steps:
            raise ValueError(f"capacity {capacity} is less than n_steps {n_steps}")
        return self._run_loop(n_steps, state, {}, _batch_of(state), capacity)

    def _run_loop(self, n_steps, state, inputs, batch, capacity, strategy=None):
        """``run``'s loop on checked arguments: ``(probes, state)``."""
        start = int(np.asarray(state["step"])[0])
        n = tf.constant(n_steps, tf.int32)
        parts = self._parts(batch)
        if strategy is not None:
            state, outputs = self._run_replicas(strategy, n, state, inputs, capacity)
            state = _state_of(state, self._key)
        elif parts > 1:
            state, outputs = self._run_parts(parts, n, state, inputs, capacity)
            state = _state_of(state, self._key)
        else:  # the state a State already, which the next call trusts
            state, outputs = self._call_flat(
                self._run_loop_graph, state, inputs, n, capacity=capacity
            )
        results = {}
        for name, value in outputs.items():
            value = value.numpy()[:, :n_steps]
            if name in self.PROBE_PERIODS:
                steps = np.arange(start + 1, start + n_steps + 1)
                value = value[:, steps % self.PROBE_PERIODS[name] < 1]
            results[name] = value
        return results, state

    def _run_loop_graph(self, n, state, inputs, capacity=None):
        """``_run`` for `_call_flat` (its arguments in that order)."""
        return self._run(n, state, inputs, capacity=capacity)

    def _check_inputs(self, inputs, leading: tuple) -> dict:
        """Inputs (arrays from ``_input_arrays``) by input name, of the expected
        shapes; every hook with an output has a value."""
        checked = {}
        for key, value in inputs.items():
            name = _input_name(key, self.INPUTS, self.HOOKS)
            expected = (*leading, self.INPUTS[name])
            if value.shape != expected:
                raise ValueError(
                    f"input {name!r} has shape {value.shape}; expected {expected}"
                    + (" ([batch, n_steps, size])" if len(leading) == 2 else " ([batch, size])")
                )
            checked[name] = tf.constant(value)
        for name, (label, _, size_out, source) in self.HOOKS.items():
            if size_out and name not in checked and name not in self.node_functions:
                how = "construct Model(node_functions=dict(" + name + "=function))"
                if name in self.INPUTS:
                    how = "pass inputs=dict(" + name + "=array) or " + how
                where = f"{label!r}, defined at {source}"
                raise ValueError(f"hook {name!r} ({where}) has no value: {how}")
        return checked

    def _hook(self, name, t, x, batch):
        """Call the Python function serving hook ``name``, once per batch element."""
        fn = self.node_functions.get(name)
        if fn is None:  # a function with no output that nobody asked to run
            return None
        _, size_in, size_out, _ = self.HOOKS[name]
        dtype = self.DTYPE

        def call(t, x):
            rows = []
            for row in x:
                args = () if t is None else (float(t),)
                args += () if size_in == 0 else (np.array(row, dtype=np.float64),)
                rows.append(_hook_output(name, fn(*args), size_out))
            return np.asarray(rows, dtype=dtype.as_numpy_dtype).reshape(len(rows), size_out)

        args = [tf.constant(0.0, tf.float64) if t is None else t]
        args.append(tf.zeros(tf.stack([batch, 0]), dtype) if x is None else x)
        if t is None:
            y = tf.numpy_function(lambda _, x: call(None, x), args, dtype, name=f"hook_{name}")
        else:
            y = tf.numpy_function(call, args, dtype, name=f"hook_{name}")
        return tf.reshape(y, tf.stack([batch, size_out]))

    def _neuron_stub(self, type_name, step, names, J, *state):
        """Run a neuron type without a template (see ``STUBS``) in NumPy.

        ``step(dt, J, output, **state)`` (the stub, or ``neuron_steps[type_name]``)
        is called through ``tf.numpy_function`` once per batch element, in
        float64, as ``nengo.Simulator`` calls ``NeuronType.step``; it updates
        ``output`` and the state arrays in place. Returns ``[output, *state]``.
        """
        step = self.neuron_steps.get(type_name, step)
        dt, dtype = self.DT, self.DTYPE

        def call(J, *state):
            J = np.array(J, dtype=np.float64)
            state = [np.array(s, dtype=np.float64) for s in state]
            output = np.zeros_like(J)
            for i in range(J.shape[0]):
                step(dt, J[i], output[i], **{name: s[i] for name, s in zip(names, state)})
            return [np.asarray(v, dtype=dtype.as_numpy_dtype) for v in (output, *state)]

        values = tf.numpy_function(call, [J, *state], [dtype] * (1 + len(state)), name="stub")
        return [tf.reshape(v, tf.shape(J)) for v in values]

    def _parameters(self, values=None) -> dict:
        """The parameters a step reads: ``params``, with each trainable
        variable (or its value in ``values``) added where its values go (see
        ``TRAINABLE``); computed once per run, outside the loop (and
        differentiable)."""
        if not self.TRAINABLE:
            return self.params
        if self._fixed_parameters is not None:  # exporting: the values as they are now
            return self._fixed_parameters
        p = dict(self.params)
        for variable, (param, positions, _) in self.TRAINABLE.items():
            base = self.params[param]
            flat = tf.tensor_scatter_nd_add(
                tf.reshape(base, [-1]),
                tf.expand_dims(self.params[positions], 1),
                self.params[variable] if values is None else values[variable],
            )
            p[param] = tf.reshape(flat, base.shape)
        return p

    def _step_now(self, state, inputs):
        """One step with the parameters as they are (``step``'s graph)."""
        return self._step(state, inputs, self._parameters())

    def _run(
        self,
        n_steps,
        state,
        inputs,
        preallocate=False,
        capacity=None,
        neurons="spiking",
        maximum_iterations=None,
        values=None,
        rows=0,
    ):
        """The simulation loop; probe values are collected in TensorArrays (of
        ``capacity`` steps, if given: the first ``n_steps`` are written), or
        (``preallocate``, for TFLite and ONNX) in tensors of the final size.
        ``neurons``: see ``_step``; ``maximum_iterations`` (the number of
        steps, known when tracing) lets XLA differentiate the loop; ``values``:
        the trainable variables' values to use (see ``_parameters``); ``rows``:
        where the batch lies in a larger one (see ``_step``)."""
        batch = tf.shape(state["step"])[0]
        p = self._parameters(values)
        if preallocate:
            arrays = {
                name: tf.zeros(tf.concat([[n_steps, batch], shape], 0), self.DTYPE)
                for name, shape in self.PROBES.items()
            }
        else:
            arrays = {
                name: tf.TensorArray(
                    self.DTYPE,
                    size=n_steps if capacity is None else capacity,
                    element_shape=[None, *shape],
                )
                for name, shape in self.PROBES.items()
            }

        # blocks of LOOP_SHAPES go round the loop in their shape (the step's
        # reshapes to and from it cancel: XLA sees the step's arithmetic on them)
        shaped = {name: [batch, *shape] for name, shape in self.LOOP_SHAPES.items()}

        def reshaped(state, flat):
            return {
                k: tf.reshape(v, [batch, self.BLOCKS[k][0]] if flat else shaped[k])
                if k in shaped
                else v
                for k, v in state.items()
            }

        def body(i, state, arrays):
            feed = {k: v[:, i] for k, v in inputs.items()}
            state, probes = self._step(reshaped(state, True), feed, p, neurons, rows)
            state = reshaped(state, False)
            if preallocate:
                arrays = {
                    k: tf.tensor_scatter_nd_update(a, [[i]], probes[k][None])
                    for k, a in arrays.items()
                }
            else:
                arrays = {k: a.write(i, probes[k]) for k, a in arrays.items()}
            return i + 1, state, arrays

        _, state, arrays = tf.while_loop(
            lambda i, state, arrays: i < n_steps,
            body,
            (tf.constant(0), reshaped(state, False), arrays),
            maximum_iterations=maximum_iterations,
        )
        state = reshaped(state, True)
        outputs = {}
        for name, shape in self.PROBES.items():
            stacked = arrays[name] if preallocate else arrays[name].stack()
            outputs[name] = tf.transpose(stacked, [1, 0, *range(2, 2 + len(shape))])
        return state, outputs

    def _step(self, state, inputs, p, neurons="spiking", rows=0):
        """One simulation step: the generated ``Model`` defines it."""
        raise NotImplementedError("a compiled model's class defines _step")

    # ---- export ------------------------------------------------------------------------

    def export_saved_model(self, path, jit_compile: bool = False) -> None:
        """Write a SavedModel that serves with TensorFlow alone.

        Signatures: ``run`` (also ``serving_default``) maps ``input_<name>``
        ``[batch, n_steps, size]`` (or, without inputs, ``n_steps`` and
        ``batch_size``) to ``probe_<name>`` ``[batch, n_steps, *shape]``; ``step``
        maps ``state_<name>`` and ``input_<name>`` ``[batch, size]`` to
        ``next_state_<name>`` and ``probe_<name>``. ``jit_compile`` compiles both
        with XLA.
        """
        write_saved_model(self, path, jit_compile)

    def export_tflite(self, path, batch_size: int = 1) -> None:
        """Write a TFLite (LiteRT) model with ``run`` and ``step`` signatures.

        The batch size is fixed (TFLite's CPU delegate needs static batch
        shapes); ``n_steps`` stays dynamic. Only builtin ops are used.
        """
        write_tflite(self, path, batch_size)

    def export_onnx(self, path, opset: int = 17) -> None:
        """Write ONNX models of ``run`` (to ``path``) and ``step`` (to
        ``<path without .onnx>.step.onnx``), converted by tf2onnx."""
        write_onnx(self, path, opset)

    def check_exportable(self, portable_format: str | None = None) -> None:
        """Raise a ValueError naming what an export cannot hold (Python hooks,
        neuron stubs; random draws for TFLite and ONNX)."""
        _check_exportable(self, portable_format)
