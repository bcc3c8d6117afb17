"""A batch split into parts: over the replicas of a ``tf.distribute`` strategy
(``run(strategy=...)``: consecutive slices, one per replica, the probes
gathered in batch order), or, with XLA, over the cores in threads.
``CompiledModel`` inherits it."""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable
from typing import ClassVar

import tensorflow as tf

#: with XLA, ``run`` splits a batch into parts of at least this many rows, one
#: per core, run side by side (see ``Distributed._parts``)
PARALLEL_MIN_ROWS = 16


class Distributed:
    """A batch in parts (a mixin of ``CompiledModel``): ``run(...,
    strategy=...)`` over the replicas of a strategy, and ``run``'s parts on
    several cores with XLA.

    Each replica runs a slice of consecutive rows; its random draws are those
    of the whole batch (``_step``'s ``rows``), so every row gets the values a
    run on one device gives it, whatever the number of replicas.
    """

    # what CompiledModel defines
    RANDOM_GROUPS: ClassVar[tuple]
    _jit_compile: bool
    rng_seed: tf.Variable
    _run_graph: Callable
    _replica_functions: dict
    _parallel_shapes: set

    def _run_replicas(self, strategy, n, state, inputs, capacity) -> tuple:
        """``_run_graph`` over the replicas of ``strategy``: ``(state,
        outputs)`` of the whole batch, in batch order. The batch is split into
        equal slices of consecutive rows (padded at the end to a multiple of
        the number of replicas; the padding is dropped). Every worker of a
        multi-worker strategy passes the same batch and gets all of it back."""
        if not isinstance(strategy, tf.distribute.Strategy):
            raise TypeError(f"strategy must be a tf.distribute.Strategy (got {strategy!r})")
        if self._jit_compile and not strategy.extended.variable_created_in_scope(self.rng_seed):
            raise ValueError(
                "with XLA, run(strategy=...) needs the model's variables on every replica: "
                "construct the Model inside strategy.scope()"
            )
        replicas = int(strategy.num_replicas_in_sync)
        batch = int(state["step"].shape[0])
        rows = -(-batch // replicas)  # rows per replica
        extra = rows * replicas - batch
        if extra:  # the padding repeats the last row (and feeds it zeros)
            state = {k: tf.concat([v, tf.repeat(v[-1:], extra, 0)], 0) for k, v in state.items()}
            inputs = {k: tf.pad(v, [[0, extra], [0, 0], [0, 0]]) for k, v in inputs.items()}
        functions = self._replica_functions
        key = (id(strategy), batch, capacity, tuple(sorted(inputs)))
        if key not in functions:
            functions[key] = (strategy, _replica_function(self, strategy, rows, batch, capacity))
        parts = strategy.experimental_distribute_values_from_function(
            lambda context: _replica_slice(state, inputs, context.replica_id_in_sync_group, rows)
        )
        with strategy.scope():
            state, outputs = functions[key][1](n, parts)
        if extra:
            state = {k: v[:batch] for k, v in state.items()}
            outputs = {k: v[:batch] for k, v in outputs.items()}
        return state, outputs

    def _parts(self, batch: int) -> int:
        """Into how many equal parts ``run`` splits a batch, run side by side.

        XLA runs each elementwise kernel on one thread, so a large batch runs
        faster as parts on several cores. Not without XLA (TensorFlow's
        kernels use every core already), nor with random processes (a part's
        draws depend on its first row's index: a trace and compilation per part)."""
        if not self._jit_compile or self.RANDOM_GROUPS:
            return 1
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        parts = min(cores or 1, batch // PARALLEL_MIN_ROWS)
        while parts > 1 and batch % parts:
            parts -= 1
        return max(parts, 1)

    def _run_parts(self, parts, n, state, inputs, capacity):
        """``_run_graph`` on ``parts`` equal parts of the batch, in threads
        (TensorFlow releases the GIL while a graph runs); each batch row gives
        the values it gives in one run. A shape's first run (tracing and XLA
        compilation) goes one part after the other."""
        states = {k: tf.split(v, parts) for k, v in state.items()}
        feeds = {k: tf.split(v, parts) for k, v in inputs.items()}
        jobs = [
            ({k: v[i] for k, v in states.items()}, {k: v[i] for k, v in feeds.items()})
            for i in range(parts)
        ]
        key = (int(jobs[0][0]["step"].shape[0]), capacity, tuple(sorted(inputs)))

        def run(job):
            return self._run_graph(n, *job, capacity=capacity)

        if key in self._parallel_shapes:
            with concurrent.futures.ThreadPoolExecutor(parts) as pool:
                results = list(pool.map(run, jobs))
        else:
            results = [run(job) for job in jobs]
            self._parallel_shapes.add(key)
        return tuple(
            {k: tf.concat([r[i][k] for r in results], 0) for k in results[0][i]} for i in (0, 1)
        )


def _replica_slice(state, inputs, replica, rows) -> tuple:
    """The state and inputs of replica ``replica``: rows ``replica * rows`` on."""
    start = replica * rows
    return (
        {k: v[start : start + rows] for k, v in state.items()},
        {k: v[start : start + rows] for k, v in inputs.items()},
    )


def _replica_function(model, strategy, rows, batch, capacity) -> Callable:
    """A ``tf.function`` running each replica's slice of ``rows`` rows of a
    batch of ``batch`` (``_run_graph``, with the slice's place as ``rows``)
    and gathering the results in replica order (every replica gets the whole
    batch; the first local one's is returned)."""

    def replica(n, part):
        state, inputs = part
        # a Python int for MirroredStrategy and MultiWorkerMirroredStrategy:
        # each replica's graph is traced with its own row offset
        index = tf.get_static_value(tf.distribute.get_replica_context().replica_id_in_sync_group)
        if index is None:
            raise NotImplementedError(
                f"{type(strategy).__name__}: a replica's index is known only when it runs; "
                "run(strategy=...) needs it when tracing (MirroredStrategy, "
                "MultiWorkerMirroredStrategy)"
            )
        start = int(index) * rows
        span = (start, start + rows, batch)
        results = model._run_graph(n, state, inputs, capacity=capacity, rows=span)
        return tf.distribute.get_replica_context().all_gather(results, axis=0)

    def run(n, parts):
        # gathered in replica context: strategy.gather (cross-replica) gave one
        # replica's slice alone over logical CPU devices (TensorFlow 2.21)
        results = strategy.run(replica, args=(n, parts))
        return strategy.experimental_local_results(results)[0]

    return tf.function(run, autograph=False)
