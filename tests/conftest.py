"""Shared fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout; ZSLKIT_SHARED_DATA overrides (e.g. for a git worktree elsewhere).
SHARED_DATA = Path(os.environ.get("ZSLKIT_SHARED_DATA") or REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def docs_site(tmp_path_factory):
    """The docs site, built once per session with ``mkdocs build --strict`` (tests/docs_site.py)."""
    pytest.importorskip("mkdocs", reason="building the docs needs the docs extra: pip install -e '.[docs]'")
    from tests.docs_site import build_site

    return build_site(tmp_path_factory.mktemp("site"))


@pytest.fixture
def shared_data():
    """``shared_data(name)``: ``<checkout>/../shared/data/<name>`` (real CUB/SUN/AWA2 metadata).

    Skips the test when it is absent: a fresh clone elsewhere has no ``../shared``.
    """

    def locate(name: str) -> Path:
        path = SHARED_DATA / name
        if not path.exists():
            pytest.skip(f"real benchmark metadata not available ({path})")
        return path

    return locate


def run_python(code: str, env: dict[str, str] | None = None, extra_path: list[Path] | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (so plugin loading starts from scratch)."""
    full_env = {**os.environ, **(env or {})}
    paths = [str(p) for p in (extra_path or [])] + [str(REPO)]
    full_env["PYTHONPATH"] = os.pathsep.join(paths + [full_env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=full_env, timeout=120
    )


def torchrun(*args: str, cwd: Path, nproc: int = 2) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node NPROC ARGS`` (CPU, gloo) with this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *args]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def make_distribution(root: Path, dist: str, version: str, entry_points: dict[str, str], modules: dict[str, str]) -> Path:
    """Write an installed-looking distribution (a real ``.dist-info`` with entry points) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = ["[zslkit]"] + [f"{name} = {target}" for name, target in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    return root
