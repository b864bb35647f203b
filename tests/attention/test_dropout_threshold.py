"""The dropout threshold exactly on a lane value: a lane equal to ``T`` (as an unsigned 16-bit
value) is kept, ``T - 1`` dropped, so exactly ``65536 - T`` of the 65536 lane values keep."""

from __future__ import annotations

import pytest
import torch

from zslkit.attention.dropout import Dropout, keep_mask


def unsigned_lanes(n: int, seed: int) -> torch.Tensor:
    """The documented stream as unsigned 16-bit values (0 .. 65535): four lanes of each full-range int64 draw."""
    torch.manual_seed(seed)
    words = torch.empty(-(-n // 4), dtype=torch.int64).random_(-(2**63), None)
    return words.view(torch.int16)[:n].to(torch.int32) + 32768


@pytest.mark.parametrize("p", [0.4, 0.5, 1 / 65536, 65535 / 65536])
def test_a_lane_on_the_threshold_is_kept_and_one_below_is_dropped(p):
    n, threshold = 1 << 20, round(p * 65536)
    u = unsigned_lanes(n, 7)
    on, below = u == threshold, u == threshold - 1
    assert on.any() and below.any()  # the stream reaches both values (16 of each expected)
    torch.manual_seed(7)
    keep, scale = keep_mask(torch.empty(n), p)
    assert keep[on].all() and not keep[below].any()
    assert torch.equal(keep, u >= threshold)
    assert scale == 65536 / (65536 - threshold)


def test_a_p_rounding_to_a_lane_value_keeps_the_same_mask_as_that_value():
    """p is put on the 1/65536 grid by rounding: half a step below and above the grid point give its mask."""
    x = torch.ones(4096)
    masks = []
    for p in (26214 / 65536, (26214 - 0.49) / 65536, (26214 + 0.49) / 65536):
        torch.manual_seed(3)
        masks.append(Dropout(p).train()(x))
    assert torch.equal(masks[0], masks[1]) and torch.equal(masks[0], masks[2])
    assert torch.equal(masks[0] != 0, unsigned_lanes(4096, 3) >= 26214)
