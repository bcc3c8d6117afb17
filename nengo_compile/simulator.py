"""A Nengo backend: ``nengo_compile.Simulator`` runs a network as compiled TF.

The Simulator compiles the network with the same pipeline as the command-line
tool, writes the module and its parameters to a temporary folder (kept until
``close``), imports it under a unique name and runs it. Node functions are
served as hooks (``Model(node_functions=...)``); probe data accumulate across
``run`` calls as in ``nengo.Simulator``, and every call continues from the
state the last one returned (``CompiledModel.run_from``); XLA after ``XLA_AFTER``.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf
from nengo.builder.signal import SignalDict
from nengo.exceptions import (
    NengoException,
    ReadonlyError,
    SimulationError,
    SimulatorClosed,
    ValidationError,
)
from nengo.rc import rc
from nengo.simulator import SimulationData
from nengo.utils.functions import function_name
from nengo.utils.numpy import maxint
from nengo.utils.progress import NoProgressBar, Progress, ProgressTracker

from .errors import CompileError
from .kinds.process import ProcessStep
from .options import DTYPES
from .pipeline import compile_network
from .write import import_generated, write

logger = logging.getLogger(__name__)

_modules = itertools.count()

#: the first XLA_AFTER steps (counted across ``reset``) run without XLA: an XLA
#: compilation costs about as much as this many steps without (0.5-3 s on the
#: benchmark networks), and most of Nengo's test suite runs less
XLA_AFTER = 2000
#: XLA calls of at most ``CHUNKS[-1]`` steps, each compiled for the smallest
#: length here that holds it (probe buffers): one compilation per entry, for
#: any lengths run; calls under ``CHUNKS[0]`` steps (``step()``) stay without
CHUNKS = (128, 1024)


class Simulator:
    """Nengo's ``Simulator`` API on top of a compiled TensorFlow module.

    Parameters
    ----------
    network : nengo.Network
        The network to compile and simulate.
    dt : float, optional
        The length of a time step, in seconds.
    seed : int, optional
        Seed of the random processes; by default ``network.seed + 1`` (random
        for an unseeded network), as in ``nengo.Simulator``. The built
        parameters always come from the network's own seeds.
    model : nengo.builder.Model, optional
        As in ``nengo.Simulator``: a Model to build ``network`` into, or,
        with ``network=None``, a built Model (compiled from its ``toplevel``,
        or from its operators alone where it has none).
    progress_bar : bool or nengo.utils.progress.ProgressBar, optional
        Show Nengo's progress bars for building and simulating.
    optimize : bool, optional
        Accepted for compatibility; operators are always merged.
    dtype : str, optional
        ``"float64"``, ``"float32"`` or ``"float16"``; by default Nengo's
        precision (``nengo.rc["precision"]["bits"]``, 64 unless changed).

    Attributes
    ----------
    data : nengo.simulator.SimulationData
        Probe data (``data[probe]``) and built parameters (``data[obj]``).
    model : nengo.builder.Model
        The model Nengo's builder made.
    closed : bool
        Whether the simulator has been closed.
    """

    def __init__(
        self,
        network,
        dt=0.001,
        seed=None,
        model=None,
        progress_bar=True,
        optimize=True,
        dtype=None,
    ):
        self.closed = True  # until the constructor succeeds
        self.progress_bar = progress_bar
        self.optimize = optimize
        self.dtype = _dtype(dtype)
        self._folder = None
        self._module_name = None

        name = f"nengo_compile_sim{next(_modules)}_{os.getpid()}"
        with ProgressTracker(progress_bar, Progress("Compiling", "Compile")):
            try:
                compiled = compile_network(
                    network,
                    dt=dt,
                    dtype=self.dtype,
                    module_name=name,
                    source_name="<Simulator>",
                    model=model,
                    check_finite=True,
                    runtime="import",  # this process has nengo-compile
                )
            except CompileError as exc:
                # Nengo's own build errors reach the user as Nengo raised them
                if isinstance(exc.__cause__, NengoException):
                    raise exc.__cause__.with_traceback(exc.__cause__.__traceback__) from None
                raise
            self._folder = Path(tempfile.mkdtemp(prefix="nengo_compile_"))
            self._module_name = name
            try:
                path = self._folder / f"{name}.py"
                write(path, path.with_suffix(".npz"), compiled.source, compiled.params)
                self._module = import_generated(name, path)
            except BaseException:
                self._cleanup()
                raise

        self.model = compiled.model
        self._layout = compiled.layout
        self._probe_names = dict(zip(self.model.probes, self._module.PROBES))
        self._hook_error = None
        self._process_steps = [
            fn for fn in compiled.hook_functions.values() if isinstance(fn, ProcessStep)
        ]
        functions = {
            name: (self._serve_process if isinstance(fn, ProcessStep) else self._serve)(
                fn, self._module.HOOKS[name][2]
            )
            for name, fn in compiled.hook_functions.items()
        }
        # XLA after XLA_AFTER steps if allowed (no hooks, stubs, ops without XLA), no
        # random draws (XLA's differ) and no finiteness checks (XLA drops them)
        self._program = self._module.Model(node_functions=functions, jit_compile=False)
        checks = any(getattr(g.values, "check_finite", False) for g in compiled.program.groups)
        blocked = checks or self._module.RANDOM_GROUPS or not self._program.can_jit_compile
        self._xla_allowed, self._xla = not blocked, None  # the XLA model, once made
        self._steps_run = 0  # steps run since construction (reset keeps counting)

        self._sim_data = self.model.params
        self.data = SimulationData(self._sim_data)
        if seed is None:
            network = self.model.toplevel if network is None else network
            if network is not None and network.seed is not None:
                seed = network.seed + 1
            else:
                seed = np.random.randint(maxint)
        self.closed = False
        self.reset(seed=seed)

    def __del__(self):
        """Warn, as Nengo does, when an open simulator is deallocated."""
        if not getattr(self, "closed", True):
            warnings.warn(
                f"Simulator with model={self.model} was deallocated while open. Please close "
                "simulators manually to ensure resources are properly freed.",
                ResourceWarning,
                stacklevel=2,
            )
        if getattr(self, "_folder", None) is not None:
            self._cleanup()

    def __getstate__(self):
        """Pickle the built model, the state and the probe data, as Nengo does."""
        state = None
        if not self.closed:
            state = {name: np.asarray(value) for name, value in self._state.items()}
        return {
            "model": self.model,
            "state": state,
            "probe_outputs": {probe: self._sim_data[probe] for probe in self.model.probes},
            "n_steps": self._n_steps,
            "dt": self.dt,
            "seed": self.seed,
            "dtype": self.dtype,
            "progress_bar": self.progress_bar,
            "optimize": self.optimize,
            "closed": self.closed,
        }

    def __setstate__(self, state):
        """Compile the pickled model again and continue where it was."""
        self.__init__(
            None,
            model=state["model"],
            seed=state["seed"],
            progress_bar=state["progress_bar"],
            optimize=state["optimize"],
            dtype=state["dtype"],
        )
        if state["state"] is not None:
            self._state = state["state"]
        for probe, data in state["probe_outputs"].items():
            self._sim_data[probe].extend(data)
        self._n_steps = state["n_steps"]
        self._time = self._n_steps * self.dt
        if state["closed"]:
            self.close()

    def __enter__(self):
        if self.closed:
            raise SimulatorClosed("Cannot re-open after simulator is closed")
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.close()

    @property
    def dt(self) -> float:
        """(float) The time step of the simulator."""
        return self.model.dt

    @dt.setter
    def dt(self, dummy):
        raise ReadonlyError(attr="dt", obj=self)

    @property
    def signals(self):
        """The current value of every signal the compiled model keeps (a copy:
        writing to it changes nothing), as Nengo's ``SignalDict``.

        Built from the state blocks (where the plan laid each signal out) and,
        for signals no operator changes, their initial values, each in the
        signal's own dtype. Signals that every step overwrites before reading
        them (an ensemble's input current, a connection's decoded value: the
        plan's transient blocks) are recomputed each step and not kept, and a
        learning rule's delta that no probe reads is added where it is
        computed and never stored; they are left out, and looking one up says
        so (probe it instead).
        """
        if self.closed:
            return None
        kept = {
            base for layout in self._layout if not layout.transient for base, _ in layout.segments
        }
        special = {self.model.step.base, self.model.time.base}
        ops = self.model.operators
        written = {sig.base for op in ops for sig in op.sets + op.incs + op.updates}
        dropped = written - kept - special  # recomputed, or folded away (a rule's delta)
        signals = _KeptSignals(dropped)
        for op in ops:
            for sig in op.all_signals:
                if sig not in signals and sig.base not in dropped:
                    signals.init(sig)  # views share their base's memory
        for layout in self._layout:
            if layout.transient:
                continue
            block = np.asarray(self._state[layout.name])[0]
            start = 0
            for base, index in layout.segments:
                if base in signals and not base.readonly:
                    flat = signals[base].reshape(-1)
                    flat[index] = block[start : start + len(index)]
                start += len(index)
        for sig, value in ((self.model.step, self._n_steps), (self.model.time, self._time)):
            if sig in signals:
                signals[sig][...] = value
        return signals

    @property
    def n_steps(self) -> int:
        """(int) The current time step of the simulator."""
        return self._n_steps

    @property
    def time(self) -> float:
        """(float) The current time of the simulator."""
        return self._time

    def close(self):
        """Close the simulator; its data stay readable, running it raises."""
        self.closed = True
        self._cleanup()

    def _cleanup(self):
        self._program = self._xla = None
        self._state = None
        if self._module_name is not None:
            sys.modules.pop(self._module_name, None)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def clear_probes(self):
        """Clear all probe histories."""
        for probe in self.model.probes:
            self._sim_data[probe] = []
        self.data.reset()

    def reset(self, seed=None):
        """Reset the state and clear the probes; ``seed`` reseeds the random processes."""
        if self.closed:
            raise SimulatorClosed("Cannot reset closed Simulator.")
        if seed is not None:
            self.seed = seed
        for program in filter(None, (self._program, self._xla)):
            program.set_seed(self.seed)
        rng = np.random.RandomState(self.seed)  # processes that stay Python
        for process_step in self._process_steps:
            process_step.reset(rng)
        self._state = self._program.initial_state(batch_size=1)
        self._n_steps = 0
        self._time = 0.0
        self.clear_probes()

    def run(self, time_in_seconds, progress_bar=None):
        """Simulate for ``time_in_seconds``, rounded to the nearest ``dt``."""
        if time_in_seconds < 0:
            raise ValidationError(
                f"Must be positive (got {time_in_seconds:g})", attr="time_in_seconds"
            )
        steps = int(np.round(float(time_in_seconds) / self.dt))
        if steps == 0:
            warnings.warn(
                f"{time_in_seconds} results in running for 0 timesteps. Simulator "
                f"still at time {self.time}.",
                stacklevel=2,
            )
        else:
            logger.info(
                "Running %s for %f seconds, or %d steps",
                self.model.label,
                time_in_seconds,
                steps,
            )
            self.run_steps(steps, progress_bar=progress_bar)

    def run_steps(self, steps, progress_bar=None):
        """Simulate for ``steps`` time steps."""
        if self.closed:
            raise SimulatorClosed("Simulator cannot run because it is closed.")
        if progress_bar is None:
            progress_bar = self.progress_bar
        steps = int(steps)
        with ProgressTracker(progress_bar, Progress("Simulating", "Simulation", steps)) as pt:
            # without XLA, one call up to XLA_AFTER (a visible bar gets about 20
            # updates); with XLA, calls of at most CHUNKS[-1]
            done = 0
            while done < steps:
                n, before = steps - done, XLA_AFTER - self._steps_run
                xla = self._xla_allowed and before <= 0 and n >= CHUNKS[0]
                if xla:
                    n = min(n, CHUNKS[-1])
                elif self._xla_allowed and before > 0:
                    n = min(n, before)
                if not xla and not isinstance(pt.progress_bar, NoProgressBar):
                    n = min(n, max(100, -(-steps // 20)))
                self._run(n, xla)
                done += n
                pt.total_progress.step(n)

    def step(self):
        """Advance the simulator by one step (``dt`` seconds)."""
        self.run_steps(1, progress_bar=False)

    def _run(self, steps, xla=False):
        if self.closed:
            raise SimulatorClosed("Simulator cannot run because it is closed.")
        self._hook_error = None
        program, capacity = self._program, None
        if xla:
            if self._xla is None:
                self._xla = self._module.Model(jit_compile=True, seed=self.seed)
            program, capacity = self._xla, next(size for size in CHUNKS if size >= steps)
        try:
            outputs, state = program.run_from(steps, self._state, capacity)
        except Exception as exc:
            if self._hook_error is not None:
                error, self._hook_error = self._hook_error, None
                raise error.with_traceback(error.__traceback__) from None
            if isinstance(exc, tf.errors.InvalidArgumentError) and "returned non-finite" in str(
                exc
            ):  # a translated function's output failed its check, as in Nengo's SimPyFunc
                message = str(exc).split("returned non-finite")[0].strip().splitlines()[-1]
                raise SimulationError(f"{message} returned non-finite value") from None
            raise
        self._state = state
        for probe, name in self._probe_names.items():
            self._sim_data[probe].extend(outputs[name][0])
        self._n_steps += steps
        self._steps_run += steps
        self._time = self._n_steps * self.dt

    def _serve_process(self, fn, size_out):
        """A process's own step, as Nengo's ``SimProcess`` calls it: its value is
        assigned to the output (``None`` becomes NaN), without checks."""

        def call(*args):
            try:
                output = np.zeros(size_out)
                output[...] = fn(*args)
                return output
            except Exception as exc:
                self._hook_error = exc
                raise

        return call

    def _serve(self, fn, size_out):
        """``fn`` as Nengo's ``SimPyFunc`` calls it: the output checked like
        Nengo does, and any exception kept to be re-raised outside TF."""
        name = function_name(fn)

        def call(*args):
            try:
                y = fn(*args)
                output = np.zeros(size_out)
                if size_out == 0:
                    return output
                try:
                    # None would become NaN
                    if y is None or not np.all(np.isfinite(y)):
                        raise SimulationError(f"Function '{name}' returned non-finite value")
                    output[...] = y
                except (TypeError, ValueError) as exc:
                    raise SimulationError(
                        f"Function '{name}' returned a value {y!r} of invalid type {type(y)!r}"
                    ) from exc
                return output
            except Exception as exc:
                self._hook_error = exc
                raise

        return call

    def trange(self, dt=None, sample_every=None):
        """The times of the probed samples (from ``dt``, not 0)."""
        if dt is not None:
            if sample_every is not None:
                raise ValidationError(
                    "Cannot specify both `dt` and `sample_every`. Use `sample_every` only.",
                    attr="dt",
                    obj=self,
                )
            warnings.warn(
                "`dt` is deprecated. Use `sample_every` instead.", DeprecationWarning, stacklevel=2
            )
            sample_every = dt
        period = 1 if sample_every is None else sample_every / self.dt
        steps = np.arange(1, self.n_steps + 1)
        return self.dt * steps[steps % period < 1]


def _dtype(dtype) -> str:
    """The compiled precision: ``dtype``, else Nengo's (``rc`` precision bits)."""
    if dtype is None:
        dtype = rc.float_dtype
    name = np.dtype(dtype).name
    if name not in DTYPES:
        raise ValidationError(
            f"nengo_compile compiles {' or '.join(DTYPES)} models (asked for {name})", attr="dtype"
        )
    return name


class _KeptSignals(SignalDict):
    """`Simulator.signals`: a lookup of a signal that is not kept says why."""

    def __init__(self, dropped):
        super().__init__()
        self._dropped = dropped

    def __missing__(self, sig):
        if getattr(sig, "base", None) in self._dropped:
            raise KeyError(
                f"{sig!r} is not kept between steps by the compiled model (recomputed "
                "every step before it is read, or a learning rule's delta added where "
                "it is computed); probe it to record its values"
            )
        raise KeyError(sig)
