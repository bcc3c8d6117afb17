"""Training: ``forward`` (a run as TensorFlow, differentiable), the Keras
layer, and saving the trained parameters. ``CompiledModel`` inherits it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import tensorflow as tf

from .checks import _input_name


class Training:
    """What a compiled model offers for training (a mixin of ``CompiledModel``).

    A module compiled with ``trainable=True`` holds its trainable parameters
    (encoders, biases, connection weights) as ``trainable_variables``; which
    slice of which variable belongs to which Nengo object is in ``TRAINABLE``.
    """

    # what CompiledModel defines (its tables, and what its __init__ sets)
    NAME: ClassVar[str]
    DTYPE: ClassVar[tf.DType]
    INPUTS: ClassVar[dict]
    HOOKS: ClassVar[dict]
    PROBES: ClassVar[dict]
    PROBE_PERIODS: ClassVar[dict]
    TRAINABLE: ClassVar[dict]
    params: dict
    node_functions: dict
    training_neurons: str
    _jit_compile: bool
    _run: Callable
    _initial_state: Callable
    _forward_graph: Callable
    _forward_flat_graph: Callable
    _gradient_graph: Callable
    _make_graphs: Callable

    def forward(
        self,
        inputs=None,
        n_steps=None,
        state=None,
        batch_size=None,
        training=False,
        return_state=False,
    ):
        """``run`` as TensorFlow, for training: tensors in, tensors out,
        differentiable (``tf.GradientTape``) with respect to the
        ``trainable_variables`` and the inputs, with or without XLA.

        ``inputs`` maps names in ``INPUTS`` to tensors ``[batch, n_steps,
        size]`` (``n_steps`` and the batch size then come from their shape);
        without inputs give ``n_steps`` (and ``batch_size``, default 1).
        ``training=True`` runs spiking neurons as ``training_neurons`` says
        (their rate counterpart, or surrogate gradients); otherwise they spike.
        Returns ``{probe name: tensor [batch, steps, *shape]}`` (and the new
        state, if ``return_state``).
        """
        if training and not self.TRAINABLE:
            raise ValueError(
                f"{self.NAME} was compiled without trainable=True (nengo-compile --trainable): "
                "it has nothing to train"
            )
        inputs = self._forward_inputs(inputs)
        if inputs:
            first = next(iter(inputs.values()))
            steps = first.shape[1]
            if n_steps is not None and steps is not None and int(n_steps) != steps:
                raise ValueError(f"n_steps is {n_steps}, but the inputs have {steps} steps")
            n_steps = steps if steps is not None else n_steps
            batch = tf.shape(first)[0]
        else:
            batch = tf.constant(1 if batch_size is None else int(batch_size), tf.int32)
        if n_steps is None:
            raise ValueError("forward needs n_steps (or inputs of a known number of steps)")
        n_steps = int(n_steps)
        if n_steps < 1:
            raise ValueError(f"n_steps must be at least 1 (got {n_steps})")
        self._check_hooks_fed(inputs)
        start = None
        if state is None:
            state, start = self._initial_state(batch), 0
        else:
            state = {k: tf.convert_to_tensor(v) for k, v in state.items() if k != "model"}
        neurons = self.training_neurons if training else "spiking"
        if self._jit_compile:
            state, outputs = self._forward_xla(state, inputs, n_steps, neurons)
        else:
            state, outputs = self._forward_graph(state, inputs, n_steps, neurons)
        outputs = {k: self._sampled(k, v, n_steps, start, state) for k, v in outputs.items()}
        return (outputs, state) if return_state else outputs

    def _forward(self, state, inputs, n_steps, neurons):
        return self._run(n_steps, state, inputs, neurons=neurons, maximum_iterations=n_steps)

    def _forward_xla(self, state, inputs, n_steps, neurons):
        """``_forward`` with XLA, differentiable: XLA cannot hand the loop's
        saved values to a gradient outside it, so the gradient runs the loop
        again inside one compiled function (``_gradient``), forward and back."""
        keys = (tuple(sorted(state)), tuple(sorted(inputs)), tuple(self.TRAINABLE))
        args = [state[k] for k in keys[0]] + [inputs[k] for k in keys[1]]
        args += [tf.convert_to_tensor(self.params[k]) for k in keys[2]]

        @tf.custom_gradient
        def run(*args):
            # no tape may see inside (it would ask for the loop's saved values)
            held = [tf.stop_gradient(a) for a in args]
            flat = self._forward_flat_graph(keys, held, n_steps, neurons)

            def gradient(*upstream):
                return self._gradient_graph(keys, held, list(upstream), n_steps, neurons)

            return flat, gradient

        flat = run(*args)
        probes = dict(zip(self.PROBES, flat))
        return dict(zip(keys[0], flat[len(self.PROBES) :])), probes

    def _forward_flat(self, keys, args, n_steps, neurons) -> list:
        """``_forward`` on flat arguments (``_forward_xla``): the probes, in
        ``PROBES`` order, then the new state, by sorted name."""
        n_state, n_inputs = len(keys[0]), len(keys[1])
        state = dict(zip(keys[0], args[:n_state]))
        inputs = dict(zip(keys[1], args[n_state : n_state + n_inputs]))
        values = dict(zip(keys[2], args[n_state + n_inputs :]))
        state, outputs = self._run(
            n_steps, state, inputs, neurons=neurons, maximum_iterations=n_steps, values=values
        )
        return [outputs[k] for k in self.PROBES] + [state[k] for k in keys[0]]

    def _gradient(self, keys, args, upstream, n_steps, neurons) -> list:
        """The gradient of ``_forward_flat`` for ``upstream``, by its float arguments."""
        sources = [a for a in args if a.dtype.is_floating]
        with tf.GradientTape() as tape:
            tape.watch(sources)
            flat = self._forward_flat(keys, args, n_steps, neurons)
        pairs = [(f, u) for f, u in zip(flat, upstream) if f.dtype.is_floating]
        grads = iter(
            tape.gradient(
                [f for f, _ in pairs],
                sources,
                output_gradients=[u for _, u in pairs],
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )
        )
        return [next(grads) if a.dtype.is_floating else None for a in args]

    def _forward_inputs(self, inputs) -> dict:
        """``forward``'s inputs as tensors of the model's dtype, by input name."""
        if inputs is None:
            return {}
        if not isinstance(inputs, dict):
            if len(self.INPUTS) != 1:
                raise TypeError(f"inputs must be a dict {{name: tensor}} (inputs: {self.INPUTS})")
            inputs = {next(iter(self.INPUTS)): inputs}
        checked = {}
        for key, value in inputs.items():
            key = _input_name(key, self.INPUTS, self.HOOKS)
            value = tf.cast(value, self.DTYPE)
            if value.shape.rank != 3 or value.shape[2] not in (None, self.INPUTS[key]):
                raise ValueError(
                    f"input {key!r} has shape {value.shape}; expected "
                    f"[batch, n_steps, {self.INPUTS[key]}]"
                )
            checked[key] = value
        steps = {v.shape[1] for v in checked.values()}
        if len(steps) > 1:
            raise ValueError(f"the inputs have different numbers of steps: {sorted(steps)}")
        return checked

    def _check_hooks_fed(self, inputs) -> None:
        for name, (label, _, size_out, source) in self.HOOKS.items():
            if size_out and name not in inputs and name not in self.node_functions:
                raise ValueError(
                    f"hook {name!r} ({label!r}, defined at {source}) has no value: feed it "
                    f"through inputs or Model(node_functions=...)"
                )

    def _sampled(self, name, value, n_steps, start, state):
        """A probe's values at the steps Nengo keeps (``sample_every``)."""
        period = self.PROBE_PERIODS.get(name)
        if period is None:
            return value
        if start is not None:  # known when tracing: a gather XLA can compile
            steps = np.arange(start + 1, start + n_steps + 1)
            return tf.gather(value, np.flatnonzero(steps % period < 1), axis=1)
        first = tf.cast(state["step"][0], tf.float64) - n_steps + 1
        steps = first + tf.range(n_steps, dtype=tf.float64)
        return tf.boolean_mask(value, tf.math.floormod(steps, period) < 1.0, axis=1)

    def keras_layer(self, inputs=None, probes=None, name=None):
        """A Keras layer running this model: ``layer(x)`` maps the inputs
        ``x`` (one tensor ``[batch, n_steps, size]``, or a list in the order of
        ``inputs``, by default ``INPUTS``'s) to the probes (one tensor
        ``[batch, steps, *shape]``, or a list in the order of ``probes``, by
        default ``PROBES``'s). Keras ``fit`` runs it with ``training=True``.

        The layer's weights are this model's trainable variables (the same
        variables: what Keras trains, ``save_params`` writes). Keras's own XLA
        (``compile(jit_compile=True)``; ``"auto"`` chooses it only where a GPU
        is) compiles ``fit`` around the layer if the model can run with XLA
        (``can_jit_compile``); otherwise Keras warns and fits without it.
        """
        return _keras_layer_class()(self, inputs, probes, name=name)

    def save_params(self, path) -> None:
        """Write the parameters as they are now (trained values included) to
        ``path``, a parameter file that ``Model(params_file=path)`` loads;
        written to a temporary file and renamed into place."""
        path = os.fspath(path)
        if not path.endswith(".npz"):
            raise ValueError(f"a parameter file ends in .npz (got {path!r})")
        arrays = {key: var.numpy() for key, var in self.params.items()}
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(suffix=".npz", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def trained(self) -> dict:
        """Each Nengo object's trained values, from ``TRAINABLE``:
        ``{(object, parameter): array}`` (object as ``"ensembles[0]"``,
        parameter ``"encoders"``, ``"bias"`` or ``"weights"``, in Nengo's shape)."""
        values = {}
        for variable, (_, _, parts) in self.TRAINABLE.items():
            flat = self.params[variable].numpy()
            for key, role, _, shape, offset in parts:
                size = int(np.prod(shape))
                values[key, role] = flat[offset : offset + size].reshape(shape)
        return values


def _keras_layer_class():
    """The Keras layer class (Keras is imported only when it is asked for)."""
    import keras

    class CompiledModelLayer(keras.layers.Layer):
        """A compiled Nengo model as a Keras layer (see ``keras_layer``)."""

        def __init__(self, model, inputs=None, probes=None, **kwargs):
            kwargs["name"] = kwargs.get("name") or model.NAME
            super().__init__(dtype=model.DTYPE.name, **kwargs)
            self.model = model
            # Keras compiles fit with XLA (compile(jit_compile=True), or "auto" where
            # a GPU is) only if every layer supports it: not a module without XLA
            # (Python hooks, or jit_compile=False: its loop's gradient made XLA take
            # every input as a constant and recompile the whole step at every call)
            self.supports_jit = bool(model.jit_compile)
            self.input_names = list(model.INPUTS if inputs is None else inputs)
            self.probe_names = list(model.PROBES if probes is None else probes)
            for key in self.input_names:
                if key not in model.INPUTS:
                    raise ValueError(f"unknown input {key!r}; the model's: {sorted(model.INPUTS)}")
            for key in self.probe_names:
                if key not in model.PROBES:
                    raise ValueError(f"unknown probe {key!r}; the model's: {sorted(model.PROBES)}")
            if not self.input_names:
                raise ValueError("a Keras layer needs an input; this model has none to feed")
            for key in model.TRAINABLE:  # the model reads the layer's variables
                value = model.params[key].numpy()
                weight = self.add_weight(
                    shape=value.shape,
                    dtype=model.DTYPE.name,
                    initializer=keras.initializers.Constant(value),
                    trainable=True,
                    name=key,
                )
                model.params[key] = weight.value
            model._make_graphs()  # graphs traced before read the replaced variables

        def call(self, x, training=None):
            xs = x if isinstance(x, (list, tuple)) else [x]
            if len(xs) != len(self.input_names):
                raise ValueError(f"expected {len(self.input_names)} inputs {self.input_names}")
            outputs = self.model.forward(dict(zip(self.input_names, xs)), training=bool(training))
            result = [outputs[key] for key in self.probe_names]
            return result[0] if len(result) == 1 else result

    return CompiledModelLayer
