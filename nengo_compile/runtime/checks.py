"""Checks of what a user hands a compiled model (states, inputs, batch sizes,
Python functions): one-line errors that name the problem."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import tensorflow as tf


def _load_params(path: str, expected: Mapping) -> dict:
    """The arrays of a parameter file, checked against ``expected`` (the model's
    ``PARAMS``: name -> (shape, dtype)). The file is data: nothing in it is
    unpickled, and a file with other arrays (missing, extra, another shape or
    dtype, objects) is refused with a message naming the array."""
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"parameter file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a parameter file (.npz): {exc}") from None
    if not hasattr(data, "files"):  # a single .npy array
        raise ValueError(f"{path} is not a parameter file (.npz): it holds one array")
    arrays = {}
    with data:
        missing = sorted(set(expected) - set(data.files))
        extra = sorted(set(data.files) - set(expected))
        if missing or extra:
            raise ValueError(
                f"{path} does not match this module: missing arrays {missing}, extra arrays {extra}"
            )
        for name in sorted(data.files):
            try:
                array = data[name]
            except ValueError as exc:  # object arrays need pickle, which is refused
                raise ValueError(
                    f"{path}: array {name!r} cannot be loaded as data ({exc})"
                ) from None
            except Exception as exc:  # a damaged member of the archive
                raise ValueError(f"{path}: array {name!r} is damaged ({exc})") from None
            shape, dtype = expected[name]
            if array.dtype != np.dtype(dtype) or array.shape != tuple(shape):
                raise ValueError(
                    f"{path}: array {name!r} is {array.dtype} {array.shape}; "
                    f"this module expects {dtype} {tuple(shape)}"
                )
            arrays[name] = array
    return arrays


class State(dict):
    """A model's state, ``{"step": [batch], block name: [batch, size]}``, that
    remembers which model made it (``model``), so that a state of another model
    is refused; a plain dict of the same form is accepted too.

    A state that a model's graph returned also remembers its tensors and their
    shapes (``_tensors``, ``_shapes``): handed back unchanged, it needs no check
    (``_trusted``), which is most of a short ``step`` call's time."""

    model: str = ""
    _tensors: tuple = ()  # ((name, tensor), ...) as the graph returned them
    _shapes: tuple = ()  # ((name, shape), ...) sorted by name, as _call_flat keys them
    _batch: int = 0  # the batch size of those tensors


def _state_of(values, key: str, shapes: tuple = ()) -> State:
    """``values`` as a state of model ``key``; ``shapes`` (``_call_flat``'s
    key of them) marks tensors that the model's graph returned."""
    state = State(values)
    state.model = key
    if shapes:
        state._tensors = tuple(values.items())
        state._shapes = shapes
        state._batch = dict(shapes)["step"][0]
    return state


def _trusted(state, key: str) -> tuple:
    """The shapes of ``state`` if it is a state that model ``key``'s graph
    returned and nobody changed since (the same tensors under the same names,
    none added or removed); ``()`` otherwise."""
    if type(state) is not State or state.model != key or not state._tensors:
        return ()
    if len(state) != len(state._tensors):
        return ()
    for name, tensor in state._tensors:
        if dict.get(state, name) is not tensor:
            return ()
    return state._shapes


def _checked_steps(n_steps) -> int:
    ok = isinstance(n_steps, (int, np.integer)) and not isinstance(n_steps, bool)
    if not ok and isinstance(n_steps, (float, np.floating)) and float(n_steps).is_integer():
        ok = True
    if not ok or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative integer (got {n_steps!r})")
    return int(n_steps)


def _input_arrays(inputs, dtype) -> dict:
    """``inputs`` as arrays of the model's dtype (by the names given), with a
    clear error for anything that is not a dict of real numbers."""
    if inputs is None:
        return {}
    if not isinstance(inputs, Mapping):
        raise TypeError(f"inputs must be a dict {{name: array}} (got {type(inputs).__name__})")
    arrays = {}
    for key, value in inputs.items():
        if isinstance(value, (tf.Tensor, tf.Variable)):
            value = value.numpy()
        try:
            array = np.asarray(value)
        except ValueError:
            raise ValueError(f"input {key!r} is not a rectangular array of numbers") from None
        if array.dtype == object:
            raise ValueError(f"input {key!r} is not a rectangular array of numbers")
        if array.dtype.kind not in "biuf":
            raise TypeError(f"input {key!r} holds {array.dtype} values; expected real numbers")
        arrays[key] = array.astype(dtype.as_numpy_dtype, copy=False)
    return arrays


def _available_memory() -> int | None:
    """Bytes of memory available to this process (None where not known)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


#: runs whose probe data needs less than this are not checked against the
#: memory available (reading it takes tens of microseconds per call)
SMALL_RUN_BYTES = 64 * 2**20


def _check_probe_memory(n_steps: int, batch: int, probes: Mapping, dtype) -> None:
    """Refuse at once a run whose probe data cannot fit in memory (instead of
    being killed or swapping for minutes), and say how to run it in pieces."""
    per_step = batch * sum(int(np.prod(shape, dtype=np.int64)) for shape in probes.values())
    # the loop's buffers, their batch-major copy and the NumPy result
    needed = 3 * n_steps * per_step * dtype.size
    if needed < SMALL_RUN_BYTES:  # no machine lacks this: skip reading /proc/meminfo
        return
    available = _available_memory()
    if available is not None and needed > available:
        piece = max(1, available // (6 * max(per_step, 1) * dtype.size))
        raise MemoryError(
            f"run({n_steps}) at batch {batch} needs about {needed / 2**30:.1f} GiB for its "
            f"probes and {available / 2**30:.1f} GiB are available: run it in pieces of at "
            f"most {piece} steps, carrying the state (out, state = model.run({piece}, "
            "state=state, return_state=True)), and keep only what you need of each piece"
        )


def _checked_state(state, blocks: Mapping, dtype, key: str = "") -> dict:
    """``state`` as tensors of the model's dtypes, with a clear error for
    anything that is not a state of this model (``initial_state``'s form);
    ``blocks`` is the model's ``BLOCKS``. A state that this model's graph
    returned, unchanged since (``_trusted``), is returned as it is."""
    if _trusted(state, key):
        return state
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict like initial_state() (got {type(state).__name__})")
    made_by = getattr(state, "model", "")
    if key and made_by not in ("", key):
        raise ValueError(f"this state belongs to another model ({made_by}), not {key}")
    missing = sorted({"step", *blocks} - set(state))
    unknown = sorted(set(state) - {"step", *blocks})
    if missing or unknown:
        raise ValueError(f"not a state of this model: missing {missing}, unknown {unknown}")
    step = np.shape(state["step"])
    if len(step) != 1 or step[0] < 1:
        raise ValueError(f"state 'step' has shape {step}; expected [batch]")
    checked = {"step": _as_tensor("step", state["step"], tf.int64, step)}
    for name, (size, _) in blocks.items():
        checked[name] = _as_tensor(name, state[name], dtype, (step[0], size))
    return checked


def _as_tensor(name: str, value, dtype, shape) -> tf.Tensor:
    if isinstance(value, tf.Tensor):
        if value.dtype != dtype:
            raise ValueError(f"state {name!r} is {value.dtype.name}; expected {dtype.name}")
    else:
        value = tf.constant(np.asarray(value, dtype=dtype.as_numpy_dtype))
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"state {name!r} has shape {tuple(value.shape)}; expected {tuple(shape)}")
    return value


def _batch_of(state) -> int:
    return int(np.shape(state["step"])[0])


def _batch_size(inputs, state, batch_size) -> int:
    """The batch size that ``inputs``, ``state`` and ``batch_size`` agree on (1 if none)."""
    sizes = {}
    if batch_size is not None:
        sizes["batch_size"] = int(batch_size)
    if state is not None:
        sizes["state"] = _batch_of(state)
    for name, value in dict(inputs or {}).items():
        sizes[f"inputs[{name!r}]"] = int(np.shape(value)[0]) if np.ndim(value) else -1
    if len(set(sizes.values())) > 1:
        raise ValueError(f"inconsistent batch sizes: {sizes}")
    size = next(iter(sizes.values()), 1)
    if size < 1:
        raise ValueError(f"batch size must be at least 1 (got {sizes})")
    return size


def _input_name(key: str, inputs: Mapping, hooks: Mapping) -> str:
    """The name in ``inputs`` (the model's ``INPUTS``) of an input given by name or label."""
    if key in inputs:
        return key
    for name, (label, *_) in hooks.items():
        if label == key and name in inputs:
            return name
    raise KeyError(f"no input named {key!r}; this model's inputs: {sorted(inputs) or 'none'}")


def _check_node_functions(functions, hooks: Mapping) -> dict:
    """``Model(node_functions=...)`` keyed by hook name (given by name or label)."""
    checked = {}
    for key, fn in dict(functions or {}).items():
        names = [name for name, (label, *_) in hooks.items() if key in (name, label)]
        if not names:
            raise KeyError(f"no hook named {key!r}; this model's hooks: {sorted(hooks) or 'none'}")
        if not callable(fn):
            raise TypeError(f"node_functions[{key!r}] is not callable")
        checked[names[0]] = fn
    return checked


def _check_neuron_steps(steps, stubs: Mapping) -> dict:
    """``Model(neuron_steps=...)``, and every stub whose step is not in the module served."""
    checked = {}
    for name, fn in dict(steps or {}).items():
        if name not in stubs:
            raise KeyError(
                f"no stubbed neuron type {name!r}; this model's stubs: {sorted(stubs) or 'none'}"
            )
        if not callable(fn):
            raise TypeError(f"neuron_steps[{name!r}] is not callable")
        checked[name] = fn
    for name, (source, copied) in stubs.items():
        if not copied and name not in checked:
            raise NotImplementedError(
                f"neuron type {name!r} ({source}) has no template and its step could not be "
                "copied into this module: pass Model(neuron_steps={" + repr(name) + ": step}), "
                "where step(dt, J, output, **state) works like NeuronType.step"
            )
    return checked


def _hook_output(name: str, value, size_out: int) -> np.ndarray:
    if size_out == 0:  # a sink: run for its effects, whatever it returns
        return np.zeros(0)
    value = np.asarray(value, dtype=np.float64)
    if value.size != size_out:
        raise ValueError(f"hook {name!r} returned {value.size} values; expected {size_out}")
    return value.reshape(size_out)


def _xla_blockers(node_functions, stubs: Mapping, no_xla_groups) -> list:
    """What keeps a model from XLA: Python functions, or operations without an XLA kernel."""
    blocking = []
    if node_functions:
        blocking.append("Python node_functions (feed them as inputs instead)")
    if stubs:
        blocking.append(f"the NumPy neuron stubs {sorted(stubs)}")
    blocking += [f"{title} (an operation without an XLA kernel)" for title in no_xla_groups]
    return blocking


def _check_exportable(model, portable_format: str | None = None) -> None:
    """Exports hold no Python: refuse models whose hooks need a Python function.
    TFLite and ONNX have no counter-based random generators either."""
    blocking = [
        f"{name!r} ({label!r}, defined at {source})"
        for name, (label, _, size_out, source) in model.HOOKS.items()
        if size_out and name not in model.INPUTS
    ]
    blocking += [f"neuron type {name!r} (a Python stub)" for name in model.STUBS]
    if portable_format and model.RANDOM_GROUPS:
        blocking.append(
            f"random number generation, which {portable_format} cannot hold "
            f"({'; '.join(model.RANDOM_GROUPS)}): export a SavedModel instead"
        )
    if blocking:
        raise ValueError(
            "cannot export: these parts of the model run Python, which exports cannot hold: "
            + "; ".join(blocking)
            + ". Make node functions translatable or drive them through inputs, "
            "and give custom neuron types a template."
        )
