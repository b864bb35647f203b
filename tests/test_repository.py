"""The repository as a newcomer meets it: what the root holds, what the install targets install, the licence."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]

#: Every entry the repository root may hold (tracked files). A new one is a decision: add it here.
ROOT_ENTRIES = {".ci", ".gitignore", "CHANGELOG.md", "CITATION.cff", "CONTRIBUTING.md", "LICENSE", "Makefile", "README.md",
                "benchmarks", "docs", "hubconf.py", "mkdocs.yml", "plugins", "pyproject.toml", "tests", "zslkit"}


def test_the_repository_root_holds_only_the_listed_entries():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split("\n")
    entries = {line.split("/")[0] for line in tracked if line}
    assert entries - ROOT_ENTRIES == set(), "unexpected at the repository root (debug output? add it to ROOT_ENTRIES if meant)"
    assert ROOT_ENTRIES - entries == set()


def test_what_pyproject_declares_exists():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    declared = project["tool"]["setuptools"]["package-data"]["zslkit"]
    assert "py.typed" in declared and (REPO / "zslkit" / "py.typed").is_file()
    assert project["project"]["license"] == "Apache-2.0" and project["project"]["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text()
    # the whole standard text: its title, all nine sections, the end of the terms and the appendix
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    sections = re.findall(r"^\s+(\d)\. [A-Z][a-z]", text, flags=re.M)
    assert sections == [str(n) for n in range(1, 10)], sections
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License to your work." in text
    assert len(text.splitlines()) > 190


def test_the_description_names_every_attention_model_zslkit_ships():
    description = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["description"]
    for model in ("MSDN", "DAZLE", "TransZero", "TransZero++", "APN", "GEM-ZSL", "PSVMA", "SVIP", "ZSLViT"):
        assert re.search(rf"(?<![\w+]){re.escape(model)}(?![\w+])", description), model
    assert "six embedding baselines" in description


def test_ci_lints_and_tests_through_the_makefile():
    commands = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert "make lint" in commands and "make test" in commands


def _dry_run(tmp_path: Path, target: str) -> list[str]:
    """The commands ``make -n TARGET`` would run in a checkout without a ``.venv``."""
    shutil.copy2(REPO / "Makefile", tmp_path / "Makefile")
    for name in ("pyproject.toml", "plugins/zslkit-example-plugin/pyproject.toml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    # under `make test` (CI) the parent make's MAKELEVEL/MAKEFLAGS would add "Entering directory" lines
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    result = subprocess.run(["make", "--no-print-directory", "-n", target], cwd=tmp_path, capture_output=True,
                            text=True, check=True, env=env)
    return result.stdout.splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_demo_installs_only_what_the_demo_needs_and_make_test_the_rest(tmp_path):
    demo = _dry_run(tmp_path, "demo")
    installs = [line for line in demo if " install " in f" {line} " and "--upgrade pip" not in line]
    assert len(installs) == 1, demo
    assert '-e ".[clip]" -e plugins/zslkit-example-plugin' in installs[0], installs[0]  # clip: the CLIP rows' check
    assert all(" -q " in line for line in installs), installs
    assert demo[-3].endswith("zslkit bench --dataset synthetic --out runs/demo")
    assert "--model clip_names,clip_attributes,clip_linear --clip zslkit-tiny --clip-random-init" in demo[-2], demo[-2]
    assert ".venv/bin/zslkit" in demo[-1] and "source .venv/bin/activate" in demo[-1], demo[-1]
    for target in ("test", "lint"):
        lines = _dry_run(tmp_path, target)
        assert any('-e ".[dev,docs,text]"' in line for line in lines), lines


def test_the_install_docs_install_from_a_checkout_or_a_wheel_and_say_how_to_run_the_command():
    install = (REPO / "docs" / "install.md").read_text()
    assert not re.search(r"pip install \"?zslkit\b", install), "zslkit is not on PyPI"
    assert "pip wheel --no-deps -w dist ." in install and "pip install -e ." in install
    for target in ("make install", "make demo", "make install-dev", "make test", "make lint", "make docs"):
        assert f"| `{target}` |" in install, target
    readme = (REPO / "README.md").read_text()
    assert "source .venv/bin/activate" in readme and ".venv/bin/zslkit" in readme


def test_citation_cff_is_valid_cff_1_2_0_and_matches_the_package():
    import yaml  # a dependency of zslkit (pyproject): never skipped
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    # the keys CFF 1.2.0 requires, with the types its schema gives them
    assert citation["cff-version"] == "1.2.0"
    assert isinstance(citation["message"], str) and citation["message"].strip()
    assert isinstance(citation["title"], str) and citation["title"].strip()
    authors = citation["authors"]
    assert isinstance(authors, list) and authors
    assert all(isinstance(a, dict) and (a.get("name") or a.get("family-names")) for a in authors), authors
    assert citation.get("type", "software") in ("software", "dataset")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert str(citation["version"]) == project["version"] and citation["license"] == project["license"]


def test_contributing_names_real_files_and_the_changelog_starts_at_the_package_version():
    contributing = (REPO / "CONTRIBUTING.md").read_text()
    assert "(docs/contributing.md)" in contributing and "## Checklist for a new built-in model" in contributing
    for item in ("Model file", "Registration", "Recipes", "Converter", "Bench defaults", "Published numbers",
                 "Docs page", "Tests"):
        assert f"- [ ] **{item}.**" in contributing, item
    named = set(re.findall(r"`((?:zslkit|tests|docs)/[\w/.]+\.(?:py|md|yaml))`", contributing))
    named |= set(re.findall(r"\]\(((?:docs/)?[\w.-]+\.(?:md|cff))(?:#[\w-]+)?\)", contributing))
    assert len(named) > 10
    for path in named:
        assert (REPO / path).is_file(), f"CONTRIBUTING.md names {path}, which does not exist"
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    releases = re.findall(r"^## (\d+\.\d+\.\d+)", (REPO / "CHANGELOG.md").read_text(), flags=re.M)
    assert releases and releases[0] == version
