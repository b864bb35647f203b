"""The shipped RMSprop/Adam/SGD recipes train bitwise as before the registered optimizers, schedules and samplers.

``data/recipe_trajectories.json`` holds the state-dict hash after every epoch of short
trainings of every packaged recipe (``recipe_trajectories.py``), recorded by running that
file on main at cc2c53a, the commit before the change. CPU float32, one thread. The TransZero and
TransZero++ entries were recorded again on the tzpp branch (c832ca7: issue 28's per-image dropout masks
and the released code's attention initialisation, which change their training on purpose, without the
registered optimizers, schedules and samplers); main with both gives the same hashes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.recipe_trajectories import CASES, case_key, trajectory

RECORDED = json.loads((Path(__file__).parent / "data" / "recipe_trajectories.json").read_text())


@pytest.mark.parametrize(("recipe", "backbone", "overrides"), CASES, ids=[case_key(r, b) for r, b, _ in CASES])
def test_recipe_trains_bitwise_as_recorded(recipe, backbone, overrides):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert trajectory(recipe, backbone, overrides) == RECORDED[case_key(recipe, backbone)]
    finally:
        torch.set_num_threads(threads)
