import json
import re
import subprocess
import sys

import zslkit
from zslkit.cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert capsys.readouterr().out.strip() == f"zslkit {zslkit.__version__}"


def test_list_kind(capsys):
    assert main(["list", "method"]) == 0
    out = capsys.readouterr().out.split()
    assert out[0] == "method:" and "eszsl" in out


def test_plugins_lists_the_example(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "example 0.1.0 [ok]" in out and "attention:example_temperature_attention" in out


def test_bad_arguments_give_one_line_and_nonzero_exit():
    result = subprocess.run(
        [sys.executable, "-m", "zslkit", "bench", "--dataset", "synthetc"], capture_output=True, text=True
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "did you mean 'synthetic'" in lines[0]
    assert "Traceback" not in result.stderr
    result = subprocess.run([sys.executable, "-m", "zslkit", "list", "nope"], capture_output=True, text=True)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_bench_writes_csv_and_json(tmp_path, capsys):
    assert main(["bench", "--dataset", "synthetic", "--model", "eszsl", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| eszsl |" in out
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert rows[0]["method"] == "eszsl" and 0.0 <= rows[0]["H"] <= 1.0
    assert (tmp_path / "results.csv").read_text().startswith("dataset,method,")


def _options(parser, path=()):
    """``(command path, action)`` for every option of every (sub)command."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*path, name))
        elif action.option_strings and not isinstance(action, argparse._HelpAction | argparse._VersionAction):
            yield path, action


def test_every_options_help_states_its_default_or_where_it_comes_from():
    from zslkit.cli import build_parser

    found = list(_options(build_parser()))
    assert len(found) > 80
    silent = [(" ".join(path), action.option_strings[0]) for path, action in found
              if not action.help
              or (action.nargs != 0 and not action.required and not re.search(r"default|recipe", action.help, re.I))]
    assert silent == [], f"options whose help does not say their default: {silent}"


def test_the_same_concept_has_the_same_name_in_every_command():
    from zslkit.cli import build_parser

    names: dict[str, set[str]] = {}
    for path, action in _options(build_parser()):
        names.setdefault(path[0], set()).update(action.option_strings)
    for command in ("train", "eval", "bench"):
        assert "--dataset-option" in names[command] and "--data-option" in names[command], command  # the other name too
        assert "--import" in names[command]
    assert "--import" in names["viz"]
    assert {"--model", "--seed", "--methods", "--seeds"} <= names["bench"] and {"--model", "--seed"} <= names["train"]
