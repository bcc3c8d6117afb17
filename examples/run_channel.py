"""Compile the communication channel, run the compiled module, compare with Nengo.

python examples/run_channel.py
"""

import subprocess
import sys
from pathlib import Path

import numpy as np

here = Path(__file__).resolve().parent
build = here.parent / "build"
subprocess.run(
    [
        sys.executable,
        "-m",
        "nengo_compile",
        str(here / "communication_channel.py"),
        "-o",
        str(build / "channel_tf.py"),
        "--report",
    ],
    check=True,
)
sys.path.insert(0, str(build))
import channel_tf  # noqa: E402

n_steps = 1000
t = channel_tf.DT * np.arange(1, n_steps + 1)
stimulus = np.sin(2 * np.pi * t).reshape(1, n_steps, 1)
out = channel_tf.Model().run(n_steps, inputs={"stimulus": stimulus})
print({name: value.shape for name, value in out.items()})

import nengo  # noqa: E402  (only to compare; the compiled module does not need it)

sys.path.insert(0, str(here))
from communication_channel import model  # noqa: E402

with nengo.Simulator(model, progress_bar=False) as sim:
    sim.run_steps(n_steps)
for probe in model.probes:
    error = np.max(np.abs(out[probe.label][0] - sim.data[probe]))
    print(f"{probe.label}: max |compiled - nengo| = {error:.2e}")
