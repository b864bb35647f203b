"""The ``cli`` fixture: run ``zslkit`` commands in real, separate processes, cheaply (see ``cli_server.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import make_distribution

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

#: A plugin whose attention block registers fine but breaks its contract when first used.
BAD_SHAPE_PLUGIN = """
import torch
import zslkit
from zslkit.attention.base import AttentionOutput

class BadShape(torch.nn.Module):
    def __init__(self, feature_dim, embedding_dim, num_attributes):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(feature_dim))

    def forward(self, features, embeddings):
        return AttentionOutput(scores=features.mean(dim=2) * self.w, maps=None)  # (B, C), not (B, I)

@zslkit.hookimpl
def zslkit_register_components(registrar):
    registrar.register("attention", "reliability_bad_shape", BadShape)
"""


@dataclass
class CLIResult:
    """How a ``zslkit`` process ended, and what it printed."""

    exit: int | None
    signal: int | None
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        """stderr's lines less the log records before the error (``zslkit.<logger>: ...``) and blank lines."""
        return [line for line in self.stderr.strip().splitlines() if line.strip() and not line.startswith("zslkit.")]


@pytest.fixture(scope="session")
def cli(tmp_path_factory):
    """``cli(argv, setup="")`` -> :class:`CLIResult` of ``zslkit *argv`` run in a fresh child process.

    The children are forked from one server that imported zslkit once, with the
    ``zslkit-reliability-bad`` test plugin installed (entry point ``reliability_bad``).
    """
    scratch = tmp_path_factory.mktemp("cli")
    site = make_distribution(scratch / "site", "zslkit-reliability-bad", "1.0", {"reliability_bad": "reliability_bad_mod"},
                             {"reliability_bad_mod": BAD_SHAPE_PLUGIN})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(site), os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen([sys.executable, str(HERE / "cli_server.py")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env, cwd=scratch)
    count = {"n": 0}

    def run(argv: list[str], setup: str = "") -> CLIResult:
        count["n"] += 1
        out, err = scratch / f"{count['n']}.out", scratch / f"{count['n']}.err"
        request = {"argv": [str(a) for a in argv], "setup": setup, "stdout": str(out), "stderr": str(err)}
        server.stdin.write(json.dumps(request) + "\n")
        server.stdin.flush()
        reply = server.stdout.readline()
        assert reply, "the CLI server died"
        reply = json.loads(reply)
        return CLIResult(reply.get("exit"), reply.get("signal"), out.read_text(), err.read_text())

    yield run
    server.stdin.close()
    server.wait(timeout=60)
