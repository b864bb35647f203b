"""ZSLViT, PSVMA and SVIP trained data-parallel (2 gloo processes on the CPU) end with the weights of one
process over the same global batches (uneven shards: batches of 7 over 2 ranks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.models.ddp_compare import assert_ddp_equals_single_process
from tests.models.ddp_token_worker import MODELS


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_ddp_training_of_the_token_models_equals_single_process(tmp_path):
    assert_ddp_equals_single_process(Path(__file__).with_name("ddp_token_worker.py"), MODELS, tmp_path)
