"""The built wheel carries every recipe: built here, installed into a fresh venv, run outside the checkout.

The fresh venv sees the already installed dependencies (torch, timm, ...) through a ``.pth``
line naming this interpreter's site-packages: a path line adds that directory but does not run
the ``.pth`` files in it, so the editable install of zslkit there stays inactive and ``import
zslkit`` finds the wheel's copy (asserted). Nothing is downloaded: the wheel is built with
``--no-build-isolation`` from the setuptools already installed.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "zslkit" / "configs").rglob("*.yaml"))
TINY = ["--dataset-option", "num_classes=8", "--dataset-option", "images_per_class=8", "--dataset-option", "channels=8",
        "--dataset-option", "grid=3", "--dataset-option", "embedding_dim=6"]


def _run(argv, cwd, env=None, timeout=600):
    result = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{argv[:4]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel, built from a copy of the package sources (so no build/ or egg-info lands in the checkout)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "zslkit", source / "zslkit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", root / "dist", source], cwd=root)
    (built,) = (root / "dist").glob("zslkit-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_carries_every_recipe_and_runs_from_a_fresh_venv(wheel, tmp_path):
    assert len(RECIPES) >= 8 and "zslkit/configs/msdn/cub.yaml" in RECIPES and "zslkit/configs/dazle/sun.yaml" in RECIPES
    with zipfile.ZipFile(wheel) as archive:
        packed = {name for name in archive.namelist() if name.startswith("zslkit/configs/")}
    assert packed == set(RECIPES), f"missing from the wheel: {sorted(set(RECIPES) - packed)}"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        fields = archive.read(metadata).decode()
        licences = [n for n in names if n.endswith("/LICENSE") and ".dist-info/" in n]
        assert licences and archive.read(licences[0]) == (REPO / "LICENSE").read_bytes()
    assert "zslkit/py.typed" in names  # what pyproject's package-data declares (PEP 561)
    assert "License-Expression: Apache-2.0" in fields.splitlines()

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    fresh_site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           cwd=tmp_path).stdout.strip())
    (fresh_site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel], cwd=tmp_path)

    outside = tmp_path / "elsewhere"  # not the checkout: nothing there to import zslkit from
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["ZSLKIT_DISABLED_PLUGINS"] = "example"  # installed (editable) beside the dependencies, not in this venv
    where = _run([python, "-c", "import zslkit; print(zslkit.__file__)"], cwd=outside, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    result = _run([venv / "bin" / "zslkit", "train", "--model", "dazle", "--dataset", "synthetic", "--epochs", "1",
                   "--set", "batch_size=16", "--no-progress", *TINY], cwd=outside, env=env)
    assert "zslkit.training: recipe: dazle/synthetic (zslkit/configs/dazle/synthetic.yaml)" in result.stderr.splitlines()
    assert "| dazle |" in result.stdout
