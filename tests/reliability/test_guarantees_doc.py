"""docs/guarantees.md names real tests: every ``file::test`` exists, every bad-input case is in the table."""

import re
from pathlib import Path

from tests.reliability.test_bad_input import CASES

REPO = Path(__file__).resolve().parents[2]
PAGE = (REPO / "docs" / "guarantees.md").read_text()


def test_every_test_named_on_the_guarantees_page_exists():
    references = re.findall(r"(tests/[\w/]+\.py)::(\w+)", PAGE)
    assert len(references) > 30
    for file, name in references:
        source = REPO / file
        assert source.is_file(), f"docs/guarantees.md names {file}, which does not exist"
        assert re.search(rf"^def {name}\(", source.read_text(), re.MULTILINE), f"docs/guarantees.md names {file}::{name}"


def test_every_bad_input_case_is_in_the_table_and_every_table_case_runs():
    table_cases = set()
    for row in re.findall(r"^\|.*\|$", PAGE, re.MULTILINE):
        table_cases |= set(re.findall(r"`(\w+)`", row.rsplit("|", 2)[-2]))
    assert table_cases == {case.__name__ for case in CASES}
