"""Node functions translated to TensorFlow, against nengo.Simulator.

Every function form the translator accepts runs in one of the models below,
compiled in float64 and compared with Nengo (<= 1e-9, identical spikes); the
compiled models keep no hook and run under XLA (which cannot run Python).
Untranslatable functions stay hooks, with a warning naming the construct and
its file:line.
"""

from __future__ import annotations

import math
import random
import shutil
import subprocess
import sys
import warnings

import nengo
import numpy as np
import pytest

from nengo_compile import compile_network
from nengo_compile.cli import main
from nengo_compile.lower import TranslationWarning

from .conftest import (
    assert_close_across_kernels,
    assert_ruff_formatted,
    compile_and_load,
    compile_to,
    max_errors,
    reference,
)

N_STEPS = 1000  # t reaches 1.0: every branch on time is taken

# ---- closed-over constants and helpers ---------------------------------------
GAIN = 0.75
FREQS = np.array([1.0, 2.0, 3.0])
W = np.array([[0.5, -1.0], [2.0, 0.25], [1.0, 1.0]])
LEVELS = [0.0, 0.5, -0.5, 1.0]
SETTINGS = {"freq": 3.0, "phase": 0.25}


def helper(v, scale=2.0):
    """A user function called from a node function: inlined."""
    return np.tanh(scale * v)


def stimulus(t):
    if t < 0.3:
        return [np.sin(2 * np.pi * t), 0.0]
    elif t < 0.6:
        y = np.array([0.5, -0.5])
        y[1] = np.cos(t)
        return y
    return np.array([1, 2]) * GAIN


def ramp(t):
    """Local variables, a loop over a static range, augmented assignment."""
    total = 0.0
    for k in range(3):
        total += FREQS[k] * t**2
    out = np.zeros(3)
    out[0] = total
    out[1:] = [math.exp(-t), abs(math.sin(7 * t))]
    return out


def gate(t, x):
    if x[0] > 0 and t > 0.2:
        return x[1] * 2
    return -x[1]


def unpack(t, x):
    a, b = x
    return a * b / len(x)


def stats(t, x):
    return np.sum(x), np.mean(x), np.linalg.norm(x), np.max(x), x.min()


class Delay:
    """The delay line of Nengo's examples: state in a numpy buffer."""

    def __init__(self, dimensions, timesteps=50):
        self.history = np.zeros((timesteps, dimensions))

    def step(self, t, x):
        self.history = np.roll(self.history, -1)
        self.history[-1] = x
        return self.history[0]


class Accumulator:
    """A callable object with scalar and array state and a helper method."""

    def __init__(self):
        self.total = 0.0
        self.last = np.zeros(2)
        self.rate = 0.5

    def decay(self):
        self.total = self.total * (1 - self.rate * 0.01)

    def __call__(self, t, x):
        self.decay()
        self.total += x[0] * 0.001
        self.last[:] = x
        return [self.total, self.last[1]]


def time_forms():
    """Source nodes: functions of t only."""
    forms = {
        "ufunc": np.sin,
        "lambda": lambda t: np.sin(8 * t),
        "list": lambda t: [np.sin(t), np.cos(t)],
        "tuple": lambda t: (t, -t, 2.5),
        "array": lambda t: np.array([np.sin(t), 1.0]) * GAIN,
        "ifexp": lambda t: 2.0 if t > 0.75 else 0.0,
        "chained": lambda t: 1.0 if 0.2 < t <= 0.4 else -1.0,
        "def_if": stimulus,
        "ramp": ramp,
        "floordiv": lambda t: [t // 0.1, t % 0.25, (t * 1000) // 7],
        "lookup": lambda t: LEVELS[int(t / 0.25) % 4],
        "period": lambda t: [0, 0, 1, 0][int(t / 0.05) % 4],  # 0.15 / 0.05 < 3
        "bool": lambda t: t >= 0.5,
        "int_branches": lambda t: 0 if t < 0.4 else 1,
        "square_wave": lambda t: 1 if (t % 0.2) < 0.1 else -1,
        "round": lambda t: [np.round(t * 10) / 10, np.floor(t * 3), np.ceil(t * 3)],
        "closure_array": lambda t: np.sin(FREQS * t) * np.clip(t, 0.1, 0.5),
        "helper": lambda t: helper(t - 0.5) + helper(t, scale=4.0),
        "comprehension": lambda t: [np.cos(f * t) for f in FREQS],
        "maxmin": lambda t: [max(t, 0.5), min(t, 0.5), np.maximum(t - 0.3, 0)],
        "logic": lambda t: float((t > 0.3 and t < 0.7) or not t < 0.9),
        "where": lambda t: np.where(FREQS * t > 1.5, FREQS, -FREQS),
        "math": lambda t: math.sqrt(t) + math.atan2(t, 1.0) + math.pi,
        "int_index": lambda t: FREQS[int(t * 10) % 3],
        "constant": lambda t: [1.0, 2.0],
        "dict": lambda t: np.sin(SETTINGS["freq"] * t + SETTINGS["phase"]),
        "zip": lambda t: [i * a * t + b for i, (a, b) in enumerate(zip(FREQS, LEVELS))],
        "arrays": lambda t: np.hstack([np.full(2, t), np.outer([1, 2], [t, 1]).ravel()]),
        "stack": lambda t: np.stack([FREQS * t, np.zeros(3)]).sum(axis=0) / 3,
    }
    with nengo.Network(seed=21, label="time forms") as net:
        for name, fn in forms.items():
            node = nengo.Node(fn, label=name)
            nengo.Probe(node, label=name)
        for i in range(2):  # one lambda, two defaults
            nengo.Probe(nengo.Node(lambda t, i=i: np.sin(t + i), label=f"default{i}"))
        nengo.Probe(nengo.Node(lambda t: np.sin(t), size_out=3, label="broadcast"))
    return net


def input_forms():
    """Nodes with input, connection functions on Nodes and Direct ensembles,
    and stateful objects; their inputs come from spiking ensembles."""
    with nengo.Network(seed=22, label="input forms") as net:
        stim = nengo.Node(lambda t: [np.sin(6 * t), np.cos(4 * t)], label="stim")
        a = nengo.Ensemble(60, 2, label="a")
        nengo.Connection(stim, a)
        forms = {
            "product": lambda t, x: x[0] * x[1],
            "slices": lambda t, x: np.concatenate([x[::-1], x[:1] * t]),
            "matrix": lambda t, x: W @ x,
            "dot": lambda t, x: np.dot(x, x) + x.dot([1.0, -1.0]),
            "gate": gate,
            "unpack": unpack,
            "clip": lambda t, x: np.clip(x, -0.5, 0.5),
            "computed_index": lambda t, x: x[int(t * 10) % 2] + x[(x[0] > 0) * 1],
            "sum": lambda t, x: x.sum() * np.ones(2),
            "stats": stats,
            "abs_sign": lambda t, x: np.abs(x) * np.sign(x[0]),
            "ifexp_x": lambda t, x: x if x[0] > 0 else -x,
            "delay": Delay(2, timesteps=20).step,
            "accumulator": Accumulator(),
        }
        for name, fn in forms.items():
            node = nengo.Node(fn, size_in=2, label=name)
            nengo.Connection(a, node, synapse=0.01)
            nengo.Probe(node, label=name)

        direct = nengo.Ensemble(1, 2, neuron_type=nengo.Direct(), label="direct")
        nengo.Connection(a, direct, synapse=0.005)
        out = nengo.Node(size_in=3, label="out")
        nengo.Connection(direct, out[0], function=lambda x: x[0] * x[1])
        nengo.Connection(direct, out[1:], function=np.square)
        nengo.Connection(stim, out[0], function=lambda x: np.exp(-(x[0] ** 2)))
        const = nengo.Node([0.5, -0.2])  # a constant input: the function folds
        nengo.Connection(const, out[2], function=lambda x: x[0] * x[1] + 1, synapse=None)
        b = nengo.Ensemble(40, 1, label="b")
        nengo.Connection(out[0], b)
        nengo.Probe(out, label="out")
        nengo.Probe(b.neurons, label="b_spikes")
    return net


MODELS = {"time_forms": time_forms, "input_forms": input_forms}


@pytest.fixture(scope="module")
def references():
    return {}


def _reference(name, cache):
    if name not in cache:
        net = MODELS[name]()
        cache[name] = (net, *reference(net, N_STEPS))
    return cache[name]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_translated_matches_nengo(name, tmp_path, references):
    net = MODELS[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("error", TranslationWarning)  # everything translates
        _, module = compile_and_load(net, tmp_path, dtype="float64")
    assert module.HOOKS == {}
    # source nodes stay optional inputs, computed by the model unless fed
    sources = [n for n in net.all_nodes if n.size_in == 0 and callable(n.output)]
    assert len(module.INPUTS) == len(sources)
    source = (tmp_path / f"{module.__name__}.py").read_text()
    assert "numpy_function" not in source.split("class Model(CompiledModel)")[1]
    _, data, _ = _reference(name, references)  # objects' state is read at compile time
    for jit in (False, True):  # XLA cannot run Python: nothing of it remains
        outputs = module.Model(jit_compile=jit).run(N_STEPS)
        errors = max_errors(net, module, outputs, data)
        assert max(errors.values()) <= 1e-9, (jit, errors)


def test_float32_and_batches(tmp_path, references):
    """Both rows of a float32 batch match Nengo, and agree with each other to
    float32 rounding (a row's position may pick another kernel path)."""
    net, data, _ = _reference("time_forms", references)
    _, module = compile_and_load(net, tmp_path, dtype="float32")
    for jit in (True, False):
        outputs = module.Model(jit_compile=jit).run(N_STEPS, batch_size=2)
        for name, ref in zip(module.PROBES, data):
            got = outputs[name]
            assert got.dtype == np.float32
            assert_close_across_kernels(got[1], got[0], f"{name} row 1 (jit {jit})")
            error = np.max(np.abs(got[0] - ref))
            assert error <= 1e-5 * max(1.0, np.max(np.abs(ref))), (name, jit, error)


def test_state_streams_across_runs(tmp_path):
    """The delay line's buffer is model state: runs continue where they stopped."""
    with nengo.Network(seed=23) as net:
        stim = nengo.Node(lambda t: np.sin(10 * t))
        delay = nengo.Node(Delay(1, timesteps=30).step, size_in=1, size_out=1, label="delay")
        nengo.Connection(stim, delay, synapse=None)
        nengo.Probe(delay, label="delayed")
    _, module = compile_and_load(net, tmp_path, dtype="float64")
    data, _ = reference(net, 200)
    model = module.Model()
    first, state = model.run(120, return_state=True, batch_size=2)
    rest = model.run(80, state=state)
    got = np.concatenate([first["delayed"], rest["delayed"]], axis=1)
    assert np.max(np.abs(got[0] - data[0])) <= 1e-9
    assert np.max(np.abs(got[1] - data[0])) <= 1e-9
    assert np.all(got[0, :29] == 0) and np.any(got[0, 30:] != 0)


def _compile_warnings(net, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = compile_network(net, **options)
    return compiled, [str(w.message) for w in caught if w.category is TranslationWarning]


def _line_of(fn) -> int:
    return fn.__code__.co_firstlineno


class Opaque:
    def value(self):
        return 1.0


OPAQUE = Opaque()
RECORD = []


def uses_while(t):
    while t > 1:
        t -= 1
    return t


def records(t, x):
    RECORD.append(x[0])
    return x


UNTRANSLATABLE = {
    "prints": (lambda t: print(t) or t, "a call to print (input/output)"),
    "random": (lambda t: np.random.rand(), "numpy.random.rand (random numbers)"),
    "pyrandom": (lambda t: random.random(), "random.random (random numbers)"),
    "library": (lambda t: shutil.disk_usage("/").free, "a call to shutil.disk_usage"),
    "opaque": (lambda t: OPAQUE.value(), "the object 'OPAQUE', a Opaque"),
    "loop": (uses_while, "a while statement"),
}


def test_untranslatable_functions_stay_hooks_and_say_why(tmp_path):
    with nengo.Network(seed=24) as net:
        for name, (fn, _) in UNTRANSLATABLE.items():
            nengo.Probe(nengo.Node(fn, label=name))
        sink = nengo.Node(records, size_in=1, size_out=1, label="records")
        nengo.Connection(nengo.Node(0.5), sink)
    compiled, messages = _compile_warnings(net, dtype="float64")
    hooks = {h.name: h for h in compiled.program.hooks if not h.translated}
    assert sorted(hooks) == sorted([*UNTRANSLATABLE, "records"])
    assert len(messages) == len(hooks)
    for name, (fn, construct) in UNTRANSLATABLE.items():
        line = _line_of(fn) + (1 if name == "loop" else 0)
        assert construct in hooks[name].reason, hooks[name]
        (message,) = [m for m in messages if m.startswith(f"{name!r}")]
        assert f"test_translate.py:{line})" in message, message
    assert "append" in hooks["records"].reason


def test_untranslatable_hook_still_runs(tmp_path):
    """A hook left by a failed translation is served by the function itself."""
    with nengo.Network(seed=25) as net:
        node = nengo.Node(lambda t: np.cos(t), label="cos")
        hook = nengo.Node(lambda t, x: x * t + 0 * shutil.disk_usage("/").free, size_in=1)
        nengo.Connection(node, hook, synapse=None)
        nengo.Probe(hook, label="hook")
    with pytest.warns(TranslationWarning, match="shutil.disk_usage"):
        _, module = compile_and_load(net, tmp_path, dtype="float64")
    (name,) = module.HOOKS
    data, _ = reference(net, 100)
    fn = next(n.output for n in net.all_nodes if n.size_in == 1)
    outputs = module.Model(node_functions={name: fn}).run(100)
    assert np.max(np.abs(outputs["hook"][0] - data[0])) <= 1e-9


def test_shared_state_object_stays_python():
    """Two nodes calling one object's method share its state: both stay hooks."""
    delay = Delay(1, timesteps=5)
    with nengo.Network(seed=26) as net:
        stim = nengo.Node(0.3)
        for i in range(2):
            node = nengo.Node(delay.step, size_in=1, size_out=1, label=f"d{i}")
            nengo.Connection(stim, node)
        nengo.Node(np.sin)  # no state: sharing np.sin is harmless
        nengo.Node(np.sin)
    compiled, messages = _compile_warnings(net)
    assert sorted(h.name for h in compiled.program.hooks if not h.translated) == ["d0", "d1"]
    assert len(messages) == 2 and all("state several nodes share" in m for m in messages)


def test_no_translate_option_keeps_hooks(tmp_path):
    net = time_forms()
    compiled, messages = _compile_warnings(net, translate=False)
    assert len(compiled.program.hooks) == len(net.all_nodes)
    assert messages == []  # asked for: no warnings
    assert all("translation is off" in h.reason for h in compiled.program.hooks)


def test_generated_code_is_deterministic_formatted_and_commented(tmp_path):
    first, path = compile_to(input_forms(), tmp_path / "a", name="forms_tf")
    second, _ = compile_to(input_forms(), tmp_path / "b", name="forms_tf")
    assert first.source == second.source
    assert (tmp_path / "a" / "forms_tf.npz").read_bytes() == (
        tmp_path / "b" / "forms_tf.npz"
    ).read_bytes()
    assert_ruff_formatted(path)
    assert "# test_translate.py:" in first.source
    assert "lambda t, x: W @ x" in first.source  # the source line, as a comment only
    code = [line.split("#")[0] for line in first.source.splitlines()]
    assert not any("W @ x" in line for line in code)


HOSTILE = '"""; import os; os.system("touch PWNED") #\n{{ x }}'


def test_hostile_label_and_source_are_comments_only(tmp_path):
    with nengo.Network(seed=27) as net:
        node = nengo.Node(lambda t, note=HOSTILE: t * 2, label=HOSTILE)
        nengo.Probe(node, label="probe")
    _, module = compile_and_load(net, tmp_path, dtype="float64")
    assert module.HOOKS == {}
    data, _ = reference(net, 20)
    outputs = module.Model().run(20)
    assert np.max(np.abs(outputs["probe"][0] - data[0])) <= 1e-9


def test_cli_reports_translations_and_warnings(tmp_path, capsys):
    model = tmp_path / "model.py"
    model.write_text(
        "import nengo\nimport numpy as np\n"
        "model = nengo.Network(seed=1)\n"
        "with model:\n"
        "    a = nengo.Node(lambda t: np.sin(t), label='sine')\n"
        "    b = nengo.Node(lambda t: print(t), size_out=0, label='printer')\n"
        "    nengo.Probe(a)\n"
    )
    out = tmp_path / "model_tf.py"
    assert main([str(model), "-o", str(out), "--report"]) == 0
    stdout, stderr = capsys.readouterr()
    assert "translated to TensorFlow (1):" in stdout
    assert "'sine' translated to TensorFlow: model.py:5: lambda t: np.sin(t)" in stdout
    assert "not translated: a function without output" in stdout
    assert stderr.count("warning:") == 1 and "'printer' (model.py:6)" in stderr
    assert main([str(model), "-o", str(out), "--report", "--no-translate"]) == 0
    stdout, stderr = capsys.readouterr()
    assert "translated to TensorFlow (0):" in stdout and "warning" not in stderr


def test_translates_without_nengo_spa(tmp_path):
    """nengo-spa is optional: without it the translator recognises no Transcode
    and translates everything else as before."""
    script = (
        "import sys\n"
        "class Blocker:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'nengo_spa':\n"
        "            raise ImportError(name + ' is blocked in this test')\n"
        "sys.meta_path.insert(0, Blocker())\n"
        "import nengo, numpy as np\n"
        "from nengo_compile import compile_network\n"
        "from nengo_compile.translate import spa\n"
        "assert spa._transcode is None and spa.unwrap(lambda t: t) is None\n"
        "with nengo.Network(seed=1) as net:\n"
        "    nengo.Probe(nengo.Node(lambda t: np.sin(t)))\n"
        "compiled = compile_network(net)\n"
        "assert all(h.translated for h in compiled.program.hooks)\n"
        "assert 'nengo_spa' not in sys.modules\n"
    )
    path = tmp_path / "no_spa.py"  # a file: the translator reads the lambda's source
    path.write_text(script)
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
