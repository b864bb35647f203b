"""The cell cache answers only for the code that filled it, and says what it reused (``zslkit bench`` as a user runs it)."""

import json
import os
import subprocess
import sys
import textwrap

from tests.bench.conftest import SMALL
from tests.conftest import REPO, make_distribution

PLUGIN = """
    import zslkit
    from tempplug.method import TempESZSL

    @zslkit.hookimpl
    def zslkit_register_components(registrar):
        registrar.register("method", "temp_eszsl", TempESZSL)
    """
METHOD = """
    from zslkit.methods.eszsl import ESZSL

    class TempESZSL(ESZSL):
        param_grid = {{"gamma": [{gamma}], "lambda_": [1.0]}}
    """


def bench(site, out, *extra):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), "PYTHONDONTWRITEBYTECODE": "1"}
    options = [arg for key, value in SMALL.items() for arg in ("--dataset-option", f"{key}={value}")]
    result = subprocess.run([sys.executable, "-m", "zslkit", "bench", "--model", "temp_eszsl", "--out", str(out),
                             "--no-progress", "--no-published", *options, *extra],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    row = next(line for line in result.stdout.splitlines() if line.startswith("| temp_eszsl |"))
    return row, result.stderr


def test_an_edited_component_recomputes_its_cells_and_the_run_says_what_it_reused(tmp_path):
    site = tmp_path / "site"
    (site / "tempplug").mkdir(parents=True)
    make_distribution(site, "zslkit-tempplug", "1.0", {"tempplug": "tempplug.plugin"},
                      {"tempplug/__init__": "", "tempplug/plugin": PLUGIN, "tempplug/method": METHOD.format(gamma=1.0)})
    out = tmp_path / "run"

    first, err = bench(site, out)
    assert "reused 0 cached cells" in err and "computed 1 new cell" in err
    (cell,) = (out / "cells").glob("*.json")
    code = json.loads(cell.read_text())["code"]
    assert set(code) == {"zslkit", "tempplug"} and code["tempplug"].startswith("1.0+sha256:")

    again, err = bench(site, out)
    assert again == first
    assert f"reused 1 cached cell from {out / 'cells'} (same settings and code" in err

    (site / "tempplug" / "method.py").write_text(textwrap.dedent(METHOD.format(gamma=1000.0)))
    edited, err = bench(site, out)
    assert "1 cached cell was computed with other code (tempplug changed) and computed again" in err
    assert edited != first  # the new code's numbers, not the cached ones
    assert json.loads(cell.read_text())["code"]["tempplug"] != code["tempplug"]

    redone, err = bench(site, out, "--recompute")
    assert redone == edited and "recomputed every cell (--recompute)" in err


def test_recompute_needs_a_cache_to_replace(tmp_path):
    result = subprocess.run([sys.executable, "-m", "zslkit", "bench", "--recompute", "--no-cache", "--out", str(tmp_path)],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == 2 and "--recompute replaces the cells cached in --out" in result.stderr
    assert result.stderr.count("\n") == 1
