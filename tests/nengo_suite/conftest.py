"""What Nengo's repository-level ``conftest.py`` does for its test suite.

That file is not in the nengo wheel. Each test starts from Nengo's default rc
settings with the decoder cache and progress bars off, simplified exceptions
off and ``fail_fast`` on, as in Nengo's own runs.
"""

import os

import matplotlib
from nengo.rc import rc

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    matplotlib.use("agg")


def pytest_runtest_setup(item):
    rc.reload_rc([])
    rc["decoder_cache"]["enabled"] = "False"
    rc["exceptions"]["simplified"] = "False"
    rc["nengo.Simulator"]["fail_fast"] = "True"
    rc["progress"]["progress_bar"] = "False"
